//! The windows-drivers-rs crates must never be compiled on Linux (wdk-build refuses non-Windows
//! hosts and wdk-sys needs an installed WDK), yet must be there for a Windows `cargo make`.
//! `cargo tree` (offline, from Cargo.lock) shows what each build would compile.

use std::path::Path;
use std::process::Command;

fn tree(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&root)
        .args([
            "tree",
            "--offline",
            "-p",
            "wdm-workitem",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args(args)
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wdk_crates(tree: &str) -> Vec<&str> {
    let mut v: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name == "wdk" || name.starts_with("wdk-"))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn cross_build_compiles_no_wdk_crate() {
    // Exactly what `cargo xtask build-sys` builds: the Windows target without the wdk feature.
    let t = tree(&[
        "--target",
        "x86_64-pc-windows-msvc",
        "--no-default-features",
    ]);
    assert!(
        t.contains("nt-abi"),
        "sanity: the tree lists the driver's deps:\n{t}"
    );
    assert_eq!(wdk_crates(&t), Vec::<&str>::new(), "{t}");
}

#[test]
fn linux_host_build_compiles_no_wdk_crate_even_with_the_feature() {
    // Default features (wdk on), host target: cfg(windows) tables are off, and wdk-build is a
    // build-dependency of a Windows *host* only.
    let t = tree(&["--target", "x86_64-unknown-linux-gnu"]);
    assert_eq!(wdk_crates(&t), Vec::<&str>::new(), "{t}");
}

#[test]
fn windows_build_with_the_feature_has_the_wdk_crates() {
    // Positive control: the gate opens for a Windows target with `wdk` on (what `cargo make`
    // builds). wdk-build appears as wdk-sys's own build-dependency; the package's own
    // `[target.'cfg(windows)'.build-dependencies]` entry is decided by the host, not shown here.
    let t = tree(&["--target", "x86_64-pc-windows-msvc"]);
    let found = wdk_crates(&t);
    for name in ["wdk", "wdk-alloc", "wdk-build", "wdk-panic", "wdk-sys"] {
        assert!(found.contains(&name), "{name} missing from {found:?}:\n{t}");
    }
}
