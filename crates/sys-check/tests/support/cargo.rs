//! Running cargo from a test: bounded in time, optionally with a fresh, empty `CARGO_HOME` (the
//! registry a fresh machine starts with). Shared by `wdk_gating.rs` and `fresh_machine.rs`.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// No cargo call made by these tests may take longer (downloads included).
pub const CARGO_CALL_LIMIT: Duration = Duration::from_secs(300);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The cargo running this test (rustup's or Debian's), in the workspace root.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Run `cmd` to completion, killing it (and failing) after `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = pipe(Box::new(child.stdout.take().expect("piped stdout")));
    let err = pipe(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + limit;
    let ok = loop {
        if let Some(status) = child.try_wait().expect("wait for cargo") {
            break status.success();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} ran longer than {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        ok,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// `cargo tree` of the driver package over normal and build edges, one crate per line, with
/// `CARGO_HOME` set to `cargo_home` when given. Without a lockfile-complete registry this
/// downloads what it needs, as every cargo call on a fresh machine must.
pub fn cargo_tree(args: &[&str], cargo_home: Option<&Path>) -> String {
    let mut c = cargo();
    c.args([
        "tree",
        "-p",
        "wdm-workitem",
        "-e",
        "normal,build",
        "--prefix",
        "none",
    ])
    .args(args);
    if let Some(home) = cargo_home {
        c.env("CARGO_HOME", home);
    }
    let r = run_bounded(&mut c, CARGO_CALL_LIMIT);
    assert!(r.ok, "cargo tree {args:?} failed:\n{}", r.stderr);
    r.stdout
}

/// The ambient cargo home: `CARGO_HOME`, else `~/.cargo`.
pub fn ambient_cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
}

/// A new, empty `CARGO_HOME` under this test's temporary directory: no registry index, no
/// downloaded crates, no git checkouts — only the user's cargo configuration (`config.toml` /
/// `config`), because a fresh machine would have the same mirror, proxy or source-replacement
/// settings. Credentials are never copied.
pub fn fresh_cargo_home(name: &str) -> PathBuf {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fresh-cargo-home")
        .join(name);
    if home.exists() {
        std::fs::remove_dir_all(&home).expect("remove the previous fresh CARGO_HOME");
    }
    std::fs::create_dir_all(&home).expect("create a fresh CARGO_HOME");
    if let Some(ambient) = ambient_cargo_home() {
        for file in ["config.toml", "config"] {
            let from = ambient.join(file);
            if from.is_file() {
                std::fs::copy(&from, home.join(file)).expect("copy the cargo configuration");
            }
        }
    }
    assert!(
        downloaded_crates(&home).is_empty() && !home.join("registry").exists(),
        "a fresh CARGO_HOME starts without a registry"
    );
    home
}

/// File names of the `.crate` archives in `cargo_home`'s registry cache (every registry).
pub fn downloaded_crates(cargo_home: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(registries) = std::fs::read_dir(cargo_home.join("registry/cache")) else {
        return names;
    };
    for reg in registries.flatten() {
        for f in std::fs::read_dir(reg.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            names.push(f.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    names
}

/// The trees `wdk_gating.rs` checks: exactly what `cargo xtask build-sys` builds (the Windows
/// target without the `wdk` feature) ...
pub const CROSS_BUILD_TREE: &[&str] = &[
    "--target",
    "x86_64-pc-windows-msvc",
    "--no-default-features",
];
/// ... a Linux host build with default features ...
pub const LINUX_HOST_TREE: &[&str] = &["--target", "x86_64-unknown-linux-gnu"];
/// ... and the WDK build `cargo make` does on Windows (the wdk crates' whole graph).
pub const WDK_BUILD_TREE: &[&str] = &["--target", "x86_64-pc-windows-msvc"];
