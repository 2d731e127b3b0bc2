//! `driver.inx` and the harness agree on the service they manage.

use std::path::Path;

fn inx() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../driver.inx");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of `key = "value"` (or `key = value`) in the INF text, outside comments.
fn inf_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .map(|l| l.split(';').next().unwrap_or(""))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
}

#[test]
fn inf_installs_the_service_wictl_manages() {
    let service = inf_value(&inx(), "ServiceName").expect("driver.inx defines ServiceName");
    assert_eq!(
        service,
        ioctl::SERVICE_NAME,
        "driver.inx installs service `{service}` but wictl's default --name is `{}`",
        ioctl::SERVICE_NAME
    );
}

#[test]
fn inf_value_reads_only_the_named_key() {
    let text = "; ServiceName = \"commented\"\n[Strings]\nOther = \"x\"\nServiceName = \"svc\" ; trailing\n";
    assert_eq!(inf_value(text, "ServiceName").as_deref(), Some("svc"));
    assert_eq!(inf_value("Other = x\n", "ServiceName"), None);
    assert_ne!(
        inf_value(text, "Other").as_deref(),
        Some(ioctl::SERVICE_NAME)
    );
}
