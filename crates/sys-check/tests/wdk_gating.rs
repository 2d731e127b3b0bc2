//! The windows-drivers-rs crates must never be compiled on Linux (wdk-build refuses non-Windows
//! hosts and wdk-sys needs an installed WDK), yet must be there for a Windows `cargo make`.
//! `cargo tree` (from Cargo.lock; it downloads what the graph needs, like any cargo call on a fresh
//! machine) shows what each build would compile. `fresh_machine.rs` runs the same trees with an
//! empty `CARGO_HOME`.

#[path = "support/cargo.rs"]
mod support;

fn tree(args: &[&str]) -> String {
    support::cargo_tree(args, None)
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
    let t = tree(support::CROSS_BUILD_TREE);
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
    let t = tree(support::LINUX_HOST_TREE);
    assert_eq!(wdk_crates(&t), Vec::<&str>::new(), "{t}");
}

#[test]
fn windows_build_with_the_feature_has_the_wdk_crates() {
    // Positive control: the gate opens for a Windows target with `wdk` on (what `cargo make`
    // builds). wdk-build appears as wdk-sys's own build-dependency; the package's own
    // `[target.'cfg(windows)'.build-dependencies]` entry is decided by the host, not shown here.
    let t = tree(support::WDK_BUILD_TREE);
    let found = wdk_crates(&t);
    for name in ["wdk", "wdk-alloc", "wdk-build", "wdk-panic", "wdk-sys"] {
        assert!(found.contains(&name), "{name} missing from {found:?}:\n{t}");
    }
}
