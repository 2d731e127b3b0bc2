//! `ntsim imports`: the emulated-export list, the per-driver report (text and `--json`, exit
//! status = can it load), and the README's generated "Emulated exports" table.
//!
//! Regenerate the README table (after adding exports) with one command:
//! `NTSIM_UPDATE_README=1 cargo test -p ntsim --test imports readme`.

mod verifier_support;
use verifier_support::*;

mod c_fixtures;

use std::process::Command;

struct Cli {
    code: i32,
    stdout: String,
    stderr: String,
}

fn cli(args: &[&str]) -> Cli {
    let o = Command::new(env!("CARGO_BIN_EXE_ntsim"))
        .args(args)
        .output()
        .expect("run ntsim");
    Cli {
        code: o.status.code().expect("ntsim exits, never by a signal"),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn without_a_driver_it_lists_every_emulated_export() {
    let r = cli(&["imports"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let want: Vec<String> = ntsim::exports::names()
        .iter()
        .map(|n| format!("ntoskrnl.exe!{n}"))
        .collect();
    assert_eq!(r.stdout.lines().collect::<Vec<_>>(), want);
    for n in [
        "RtlAssert",
        "DbgBreakPointWithStatus",
        "vDbgPrintEx",
        "KdChangeOption",
    ] {
        assert!(want.contains(&format!("ntoskrnl.exe!{n}")), "{n}");
    }
}

#[test]
fn a_driver_with_a_missing_import_is_named_and_exits_2() {
    let sys = rulebreaker_missing_import_sys().display().to_string();
    let r = cli(&["imports", &sys, "--json"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let v = json(&r.stdout);
    assert_eq!(v["can_load"], false);
    assert!(v["load_error"].is_null());
    assert_eq!(
        v["missing_functions"],
        serde_json::json!(["ntoskrnl.exe!ZwRuleBreakerNonexistentRoutine"])
    );
    assert_eq!(v["missing_data"], serde_json::json!([]));
    let imports = v["imports"].as_array().unwrap();
    let missing: Vec<_> = imports.iter().filter(|i| i["emulated"] == false).collect();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["kind"], "function");
    assert_eq!(v["emulated"].as_u64().unwrap() as usize, imports.len() - 1);
    for i in imports.iter().filter(|i| i["emulated"] == true) {
        let name = i["name"].as_str().unwrap();
        assert!(ntsim::exports::lookup(name).is_some(), "{name}");
    }
    // The same in text.
    let r = cli(&["imports", &sys]);
    assert_eq!(r.code, 2);
    assert!(
        r.stdout.lines().any(
            |l| l.starts_with("ntoskrnl.exe!ZwRuleBreakerNonexistentRoutine")
                && l.ends_with("MISSING")
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("missing functions: ntoskrnl.exe!ZwRuleBreakerNonexistentRoutine")
    );
    assert!(
        r.stdout.contains("verdict: refused at load"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_driver_within_the_emulated_exports_can_load_and_exits_0() {
    let Some(sys) = c_fixtures::fixture("dbgchecked") else {
        return;
    };
    let sys = sys.display().to_string();
    let r = cli(&["imports", &sys, "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v = json(&r.stdout);
    assert_eq!(v["can_load"], true);
    let names: Vec<&str> = v["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    for n in [
        "RtlAssert",
        "DbgBreakPointWithStatus",
        "vDbgPrintExWithPrefix",
        "DbgPrompt",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let r = cli(&["imports", &sys]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("0 missing"), "{}", r.stdout);
    assert!(r.stdout.contains("the driver can load"), "{}", r.stdout);
}

#[test]
fn data_imports_are_named_as_data() {
    assert!(ntsim::imports::is_data_export("KdDebuggerEnabled"));
    assert!(ntsim::imports::is_data_export("PsThreadType"));
    assert!(!ntsim::imports::is_data_export("DbgPrint"));
}

#[test]
fn refused_images_and_bad_arguments() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("imports");
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.sys");
    std::fs::write(&garbage, b"not a PE image at all").unwrap();
    let g = garbage.display().to_string();
    let r = cli(&["imports", &g, "--json"]);
    assert_eq!(r.code, 2);
    let v = json(&r.stdout);
    assert!(
        v["load_error"]
            .as_str()
            .unwrap()
            .contains("no MZ signature"),
        "{v}"
    );
    assert_eq!(v["can_load"], false);
    let r = cli(&["imports", "/no/such/driver.sys"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stdout.contains("load error: cannot read image"),
        "{}",
        r.stdout
    );
    for bad in [
        &["imports", "--bogus"][..],
        &["imports", &g, "--markdown"][..],
        &["imports", "--json"][..],
        &["imports", &g, &g][..],
    ] {
        let r = cli(bad);
        assert_eq!(r.code, 1, "{bad:?}");
        assert!(r.stdout.is_empty(), "{bad:?}: {}", r.stdout);
        assert!(r.stderr.contains("ntsim:"), "{bad:?}: {}", r.stderr);
    }
}

const BEGIN: &str = "<!-- BEGIN generated by `ntsim imports --markdown` -->\n";
const END: &str = "<!-- END generated -->";

/// The README's "Emulated exports" section holds exactly what `ntsim imports --markdown`
/// prints. `NTSIM_UPDATE_README=1` rewrites it instead of failing.
#[test]
fn readme_emulated_exports_table_is_generated() {
    let r = cli(&["imports", "--markdown"]);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout, ntsim::imports::markdown());
    assert!(r.stdout.contains("| `RtlAssert` | function |"));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let section = readme
        .find("\n## Emulated exports\n")
        .expect("the README has an \"Emulated exports\" section");
    let begin = section
        + readme[section..]
            .find(BEGIN)
            .expect("the generated block's BEGIN")
        + BEGIN.len();
    let end = begin
        + readme[begin..]
            .find(END)
            .expect("the generated block's END");
    assert!(
        !readme[section + 1..begin].contains("\n## "),
        "the generated block is inside the section"
    );
    if readme[begin..end] != r.stdout {
        if std::env::var_os("NTSIM_UPDATE_README").is_some() {
            let new = format!("{}{}{}", &readme[..begin], r.stdout, &readme[end..]);
            std::fs::write(&path, new).unwrap();
        } else {
            panic!(
                "crates/ntsim/README.md's emulated-export table is stale; regenerate it with\n    \
                 NTSIM_UPDATE_README=1 cargo test -p ntsim --test imports readme"
            );
        }
    }
}
