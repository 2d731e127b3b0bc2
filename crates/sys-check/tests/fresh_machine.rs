//! A truly fresh machine: `cargo xtask test` on a fresh clone with an empty cargo registry.
//!
//! The cargo calls the suite makes itself, beyond the host build that the outer `cargo test`
//! already downloaded for, must fetch what they need instead of relying on a warm cache. Two
//! kinds exist: `cargo tree` for the Windows target with the wdk crates (`wdk_gating.rs`; it once
//! ran offline and failed on a fresh machine for want of `cc`), and the build-std cargo calls of
//! the cross toolchain (the `.sys` cross builds in xbuild, the rulebreaker fixture, the Windows
//! type-check and clippy steps). Here each runs with its own new, empty `CARGO_HOME` (only the
//! user's cargo configuration copied in), bounded in time, and must succeed and leave the crates
//! it needed in that empty registry — proof that it downloaded them rather than finding them.
//!
//! Also here, the two source rules that keep it so: no cargo call in the repository is made
//! offline, and no test installs anything (`cargo xtask test`'s prerequisites step does).

#[path = "support/cargo.rs"]
mod support;

use std::path::{Path, PathBuf};

use support::{downloaded_crates, fresh_cargo_home};

fn allow_skip() -> bool {
    std::env::var("WDM_ALLOW_SKIP").as_deref() == Ok("1")
}

fn has_crate(downloaded: &[String], name: &str) -> bool {
    downloaded.iter().any(|f| {
        f.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('-'))
    })
}

#[test]
fn the_wdk_gating_trees_resolve_from_an_empty_registry() {
    let home = fresh_cargo_home("wdk-gating");
    for args in [
        support::CROSS_BUILD_TREE,
        support::LINUX_HOST_TREE,
        support::WDK_BUILD_TREE,
    ] {
        let t = support::cargo_tree(args, Some(&home));
        assert!(t.contains("nt-abi"), "cargo tree {args:?}:\n{t}");
    }
    let got = downloaded_crates(&home);
    // `cc` is what the offline tree lacked on a fresh machine; wdk-sys is the gated graph itself.
    for name in ["cc", "wdk-sys", "wdk-build"] {
        assert!(
            has_crate(&got, name),
            "{name} was not downloaded into the empty CARGO_HOME (was the ambient registry used?): {got:?}"
        );
    }
    std::fs::remove_dir_all(&home).expect("clean up");
}

#[test]
fn the_build_std_crates_fetch_from_an_empty_registry() {
    let tc = match xbuild::locate_toolchain(false) {
        Ok(tc) => tc,
        Err(e) if allow_skip() => {
            eprintln!("SKIPPED (WDM_ALLOW_SKIP=1): no cross toolchain: {e}");
            return;
        }
        Err(e) => panic!("{e}\n(`cargo xtask test` installs it; WDM_ALLOW_SKIP=1 skips this)"),
    };
    let home = fresh_cargo_home("build-std");
    // `-Zbuild-std=std,panic_abort` for the Windows target covers every build-std call the
    // suite makes (the kernel builds take core/alloc/compiler_builtins, a subset), and the
    // workspace's own Windows-target dependencies (wictl's windows-sys).
    let mut c = xbuild::windows_std_cargo(&tc, "fetch");
    c.arg("--manifest-path")
        .arg(support::workspace_root().join("Cargo.toml"))
        .env("CARGO_HOME", &home);
    let r = support::run_bounded(&mut c, support::CARGO_CALL_LIMIT);
    assert!(r.ok, "{c:?} failed:\n{}", r.stderr);
    let got = downloaded_crates(&home);
    for name in ["hashbrown", "windows-sys"] {
        assert!(
            has_crate(&got, name),
            "{name} was not downloaded into the empty CARGO_HOME: {got:?}"
        );
    }
    std::fs::remove_dir_all(&home).expect("clean up");
}

#[test]
fn has_crate_matches_whole_names_only() {
    let got = vec![
        "cc-1.2.3.crate".to_string(),
        "cexpr-0.6.0.crate".to_string(),
    ];
    assert!(has_crate(&got, "cc"));
    assert!(!has_crate(&got, "c"));
    assert!(!has_crate(&got, "wdk-sys"));
}

// ---------------------------------------------------------------------------------------------
// Source rules
// ---------------------------------------------------------------------------------------------

/// Every file under the workspace root (not `target/`, not hidden directories) whose name ends in
/// one of `exts`, or that is named in `names`.
fn workspace_files(exts: &[&str], names: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, exts: &[&str], names: &[&str], out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if (name != "target" && !name.starts_with('.')) || name == ".ci" || name == ".cargo"
                {
                    walk(&p, exts, names, out);
                }
            } else if exts.iter().any(|x| name.ends_with(x)) || names.contains(&name.as_str()) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&support::workspace_root(), exts, names, &mut out);
    out
}

/// The `(line number, line)`s of `text` that contain one of `needles`.
fn findings(text: &str, needles: &[String]) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| needles.iter().any(|n| l.contains(n.as_str())))
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .collect()
}

/// Calls that install software: what tests must never do. (Spelled in pieces so that this file
/// does not match itself.)
fn install_needles() -> Vec<String> {
    [
        ["locate_toolchain(", "true"].concat(),
        ["apt_", "install("].concat(),
        ["Command::new(\"apt", "-get\")"].concat(),
        ["\"component\", \"", "add\""].concat(),
        ["\"toolchain\", \"", "install\""].concat(),
    ]
    .to_vec()
}

fn offline_needles() -> Vec<String> {
    vec![["--", "offline"].concat()]
}

#[test]
fn no_cargo_call_in_the_repository_runs_offline() {
    let files = workspace_files(&[".rs", ".toml"], &["run"]);
    assert!(files.len() > 20, "sanity: found {} files", files.len());
    let mut bad = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for (n, l) in findings(&text, &offline_needles()) {
            bad.push(format!("{}:{n}: {l}", f.display()));
        }
    }
    assert!(
        bad.is_empty(),
        "offline cargo calls fail on a fresh machine (empty registry); let cargo download:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_test_installs_anything() {
    let files: Vec<PathBuf> = workspace_files(&[".rs"], &[])
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "tests"))
        .collect();
    assert!(
        files.iter().any(|p| p.ends_with("tests/common/mod.rs")),
        "sanity: the driver's tests/ are scanned"
    );
    let mut bad = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for (n, l) in findings(&text, &install_needles()) {
            bad.push(format!("{}:{n}: {l}", f.display()));
        }
    }
    assert!(
        bad.is_empty(),
        "tests must not install anything (`cargo xtask test`'s prerequisites step does; a \
         test fails with the command to run instead):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_source_rules_fire_on_offending_lines() {
    let offline = ["cargo tree ", "--", "offline -p x"].concat();
    assert_eq!(
        findings(&format!("ok\n{offline}\n"), &offline_needles()),
        vec![(2, offline.clone())]
    );
    for snippet in [
        ["let tc = xbuild::locate_toolchain(", "true)?;"].concat(),
        ["xbuild::apt_", "install(&[\"lld\"])"].concat(),
        ["Command::new(\"apt", "-get\").arg(\"install\")"].concat(),
        ["rustup.args([\"component\", \"", "add\", \"clippy\"])"].concat(),
        ["rustup.args([\"toolchain\", \"", "install\", \"nightly\"])"].concat(),
    ] {
        assert_eq!(
            findings(&snippet, &install_needles()).len(),
            1,
            "not flagged: {snippet}"
        );
    }
    assert!(
        findings(
            "xbuild::locate_toolchain(false)\n// install with apt\n",
            &install_needles()
        )
        .is_empty()
    );
}
