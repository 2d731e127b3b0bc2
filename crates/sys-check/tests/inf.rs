//! `driver.inx`: the harness agrees with it on the service they manage, and it follows the
//! primitive-driver INF rules Microsoft documents (checked by `sys_check::inf`, our own checker of
//! the written rules; infverif on Windows remains the authority).

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

// ---------------------------------------------------------------------------------------------
// Microsoft's documented primitive-driver INF rules (sys_check::inf; our checker of the written
// rules, not infverif). The real driver.inx passes every rule; each rule then fires on a copy
// broken in one specific way.
// ---------------------------------------------------------------------------------------------

use sys_check::inf::{Finding, Inf, Requirements, Rule, check, required_min_build};

/// What the INF must provide for wdm_workitem.sys: x64, and the build its imports need. nt-abi's
/// declarations are a superset of what the image imports (the artifact test holds the image to
/// them), so the requirement is never understated.
fn requirements() -> Requirements {
    Requirements {
        arch: "NTamd64",
        min_build: required_min_build(nt_abi::imports::all_imports()),
    }
}

fn findings(text: &str) -> Vec<Finding> {
    check(&Inf::parse(text), &requirements())
}

/// driver.inx with `from` (which must occur) replaced by `to` everywhere.
fn broken(from: &str, to: &str) -> String {
    let text = inx();
    assert!(
        text.contains(from),
        "driver.inx no longer contains {from:?}"
    );
    text.replace(from, to)
}

/// `text` breaks `rule` (and possibly others that follow from the same edit).
fn assert_fires(text: &str, rule: Rule) -> Vec<Finding> {
    let f = findings(text);
    assert!(
        f.iter().any(|x| x.rule == rule),
        "{rule:?} did not fire; findings: {f:#?}"
    );
    f
}

/// `text` breaks `rule` and nothing else.
fn assert_only(text: &str, rule: Rule) {
    let f = assert_fires(text, rule);
    assert!(f.iter().all(|x| x.rule == rule), "{f:#?}");
}

#[test]
fn driver_inx_follows_every_documented_rule() {
    let req = requirements();
    assert_eq!(
        req.min_build, 19041,
        "ExAllocatePool2 makes the driver Windows 10 2004+"
    );
    let f = findings(&inx());
    assert!(
        f.is_empty(),
        "driver.inx breaks documented INF rules:\n{}",
        f.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn version_must_be_complete() {
    assert_only(
        &broken("Provider    = %ProviderName%\n", ""),
        Rule::VersionComplete,
    );
    assert_only(&broken("$WINDOWS NT$", "$CHICAGO$"), Rule::VersionComplete);
    assert_only(
        &broken("CatalogFile = wdm_workitem.cat\n", ""),
        Rule::VersionComplete,
    );
}

#[test]
fn class_and_class_guid_must_pair() {
    // SCSIAdapter's GUID with Class = System.
    assert_only(
        &broken("4d36e97d-e325", "4d36e97b-e325"),
        Rule::ClassGuidPairing,
    );
    assert_only(
        &broken("Class       = System", "Class       = Net"),
        Rule::ClassGuidPairing,
    );
    assert_only(
        &broken("{4d36e97d-e325-11ce-bfc1-08002be10318}", "4d36e97d-e325"),
        Rule::ClassGuidPairing,
    );
}

#[test]
fn pnp_lockdown_must_be_1() {
    assert_only(
        &broken("PnpLockdown = 1", "PnpLockdown = 0"),
        Rule::PnpLockdown,
    );
    assert_only(&broken("PnpLockdown = 1\n", ""), Rule::PnpLockdown);
}

#[test]
fn a_primitive_driver_has_no_manufacturer_section() {
    let text = format!(
        "{}\n[Manufacturer]\n%ProviderName% = Models,NTamd64.10.0...19041\n",
        inx()
    );
    assert_only(&text, Rule::NoManufacturer);
}

#[test]
fn install_sections_must_be_architecture_decorated() {
    assert_fires(
        &broken("[DefaultInstall.NTamd64.10.0...19041]", "[DefaultInstall]"),
        Rule::ArchitectureDecoration,
    );
    // The right decoration for the wrong architecture (the .sys is x64).
    assert_only(
        &broken("NTamd64.10.0...19041", "NTarm64.10.0...19041"),
        Rule::ArchitectureDecoration,
    );
}

#[test]
fn install_sections_must_require_the_drivers_minimum_build() {
    // Windows 10 1903: primitive drivers work there, ExAllocatePool2 does not exist yet.
    assert_only(&broken("10.0...19041", "10.0...18362"), Rule::MinimumBuild);
    // No TargetOSVersion at all: installs on every Windows 10.
    assert_only(
        &broken("NTamd64.10.0...19041", "NTamd64"),
        Rule::MinimumBuild,
    );
}

#[test]
fn an_uninstall_section_needs_legacy_uninstall() {
    let text = format!(
        "{}\n[DefaultUninstall.NTamd64]\nDelService = %ServiceName%,0x200\n",
        inx()
    );
    let f = assert_fires(&text, Rule::LegacyUninstall);
    assert!(f.iter().any(|x| x.rule == Rule::NoDefaultUninstall));
}

#[test]
fn no_uninstall_section_when_every_install_needs_1903_or_later() {
    let text = format!(
        "{}\n[DefaultUninstall.NTamd64]\nLegacyUninstall = 1\n",
        inx()
    );
    assert_only(&text, Rule::NoDefaultUninstall);
}

#[test]
fn delfiles_must_not_name_dirid_13_files() {
    // A section of its own (DefaultDestDir is 13): only the DIRID rule (and the uninstall
    // section's own rule) fire, not the CopyFiles/DelFiles overlap.
    let text = format!(
        "{}\n[DefaultUninstall.NTamd64]\nLegacyUninstall = 1\nDelFiles = Old.Files\n[Old.Files]\nold.sys\n",
        inx()
    );
    let f = assert_fires(&text, Rule::NoDelFilesOnDirid13);
    assert!(
        f.iter()
            .all(|x| matches!(x.rule, Rule::NoDelFilesOnDirid13 | Rule::NoDefaultUninstall)),
        "{f:#?}"
    );
}

#[test]
fn copyfiles_and_delfiles_must_not_share_a_section() {
    // The uninstall section driver.inx used to have.
    let text = format!(
        "{}\n[DefaultUninstall.NTamd64]\nLegacyUninstall = 1\nDelFiles = WdmWorkitem.DriverFiles\n",
        inx()
    );
    let f = assert_fires(&text, Rule::CopyAndDelFilesDisjoint);
    assert!(f.iter().any(|x| x.rule == Rule::NoDelFilesOnDirid13));
}

#[test]
fn copied_files_go_to_dirid_13_unrenamed() {
    assert_only(
        &broken(
            "WdmWorkitem.DriverFiles   = 13",
            "WdmWorkitem.DriverFiles   = 12",
        ),
        Rule::CopyFilesToDirid13,
    );
    assert_only(
        &broken(
            "[WdmWorkitem.DriverFiles]\nwdm_workitem.sys",
            "[WdmWorkitem.DriverFiles]\nrenamed.sys,wdm_workitem.sys",
        ),
        Rule::CopyFilesToDirid13,
    );
}

#[test]
fn copied_files_must_be_listed_in_source_disks_files() {
    assert_only(
        &broken("wdm_workitem.sys = 1,,", "other.sys = 1,,"),
        Rule::SourceDisksFilesListed,
    );
}

#[test]
fn the_service_binary_is_a_copied_file_under_dirid_13() {
    assert_only(
        &broken(r"%13%\wdm_workitem.sys", r"%12%\drivers\wdm_workitem.sys"),
        Rule::ServiceBinaryUnder13,
    );
    assert_only(
        &broken(r"%13%\wdm_workitem.sys", r"%13%\other.sys"),
        Rule::ServiceBinaryUnder13,
    );
    assert_only(
        &broken(
            "AddService = %ServiceName%,,WdmWorkitem.Service",
            "AddService = %ServiceName%,,NoSuch.Service",
        ),
        Rule::ServiceBinaryUnder13,
    );
    assert_only(
        &broken("AddService = %ServiceName%,,WdmWorkitem.Service\n", ""),
        Rule::ServiceBinaryUnder13,
    );
}
