//! Build orchestration: `cargo xtask <command>`.
//!
//! - `build-sys [--release] [--arm64]`: cross-build wdm_workitem.sys (last stdout line: its
//!   path); `--arm64` builds it for aarch64-pc-windows-msvc instead of x64.
//! - `run [--debug] [-- ARGS]`: the main job — build the .sys, load it in ntsim with the verifier
//!   on, drive it with wictl's stress run (ARGS go to it), print the report.
//! - `test [--no-install]`: install what is missing (Debian: apt), cross-build the .sys, run every
//!   test suite and check, print a summary ending in `N passed, N failed`.
//! - `bench [--quick]`: the performance targets, side by side in one run (see `bench.rs`).
//! - `build-wictl [--release]`: cross-build wictl.exe (last stdout line: its path).
//! - `wine [--no-install]`: only the Wine stage of `test` (see `wine.rs`).
//! - `package [--release]`: a test-signed driver folder for a Windows VM (see `package.rs`).
mod bench;
mod package;
mod wine;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: cargo xtask <command>
  build-sys [--release] [--arm64]
                            cross-build wdm_workitem.sys (x64, or ARM64); prints its path
  run [--debug] [-- ARGS]   build the .sys (release unless --debug), run it under ntsim with the
                            verifier, drive it with `wictl stress` (ARGS are passed to it)
  test [--no-install]       install missing tools (Debian, as root), build, run all tests and checks
  bench [--quick]           safe layer vs raw calls (callgrind), ntsim verifier cost, driver modes
                            vs the IoAllocateWorkItem baseline; ratios measured in one run
  build-wictl [--release]   cross-build wictl.exe (x86_64-pc-windows-gnu); prints its path
  wine [--no-install]       only the Wine stage of `test`: wictl.exe and the real .sys under Wine
  package [--release]       target/package/<profile>/: test-signed .sys, .cer, stamped .inf,
                            wictl.exe, INSTALL.txt, ready to copy to a test VM";

/// Debian packages the test suites use, with a binary that proves each is installed.
const TEST_PACKAGES: &[(&str, &str)] = &[
    ("mingw-w64", "x86_64-w64-mingw32-gcc"),
    ("valgrind", "valgrind"),
    // `cargo xtask package` and its signature checks.
    ("osslsigncode", "osslsigncode"),
    ("openssl", "openssl"),
];

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Where host builds go: the caller's CARGO_TARGET_DIR, else `<root>/target`.
fn host_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The cargo that started us (rustup's proxy or Debian's), for host builds.
fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn banner(msg: &str) {
    eprintln!("\n==> {msg}");
}

/// Cross-build the driver for `target`; returns the .sys path.
fn build_sys(release: bool, target: &str) -> Result<PathBuf, xbuild::Error> {
    let tc = xbuild::locate_toolchain(true)?;
    eprintln!(
        "xtask: cross-building wdm_workitem.sys for {target} ({}) with {tc}",
        if release { "release" } else { "debug" }
    );
    xbuild::build_driver_for(&tc, target, release, true)
}

// ---------------------------------------------------------------------------------------------
// test
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Outcome {
    /// Passed; `n` units (tests for test steps, 1 for checks).
    Passed(usize),
    /// `failed` units failed, `passed` passed.
    Failed { passed: usize, failed: usize },
}

struct Step {
    name: String,
    outcome: Outcome,
    took: Duration,
}

#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
    saw_result: bool,
}

/// Run `cmd`, echoing its stdout and parsing libtest's `test result:` lines.
fn run_counting(cmd: Command) -> (bool, Counts) {
    run_counting_with_limit(cmd, step_timeout())
}

/// [`run_counting`] with an explicit time limit.
fn run_counting_with_limit(mut cmd: Command, limit: Duration) -> (bool, Counts) {
    eprintln!("    $ {}", describe(&cmd));
    cmd.stdout(Stdio::piped());
    // Own process group, so a hung step (a deadlocked test binary two levels down) can be
    // killed as a whole when it overruns its time.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtask: cannot start {}: {e}", describe(&cmd));
            return (false, Counts::default());
        }
    };
    let out = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut counts = Counts::default();
        if let Some(out) = out {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                println!("{line}");
                if let Some(rest) = line.trim_start().strip_prefix("test result: ") {
                    counts.saw_result = true;
                    counts.passed += number_before(rest, " passed");
                    counts.failed += number_before(rest, " failed");
                }
            }
        }
        counts
    });
    let deadline = Instant::now() + limit;
    let ok = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.success(),
            Ok(None) => {}
            Err(_) => break false,
        }
        if Instant::now() >= deadline {
            eprintln!(
                "xtask: TIMEOUT: the step ran longer than {limit:?} (WDM_STEP_TIMEOUT_SECS); \
                 killing it — something in it hangs"
            );
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let counts = reader.join().unwrap_or_default();
    (ok, counts)
}

/// Longest one step may run: `WDM_STEP_TIMEOUT_SECS`, default 15 minutes (a cold `cargo xtask
/// test` takes about 10 minutes in total on 2 cores).
fn step_timeout() -> Duration {
    let secs = std::env::var("WDM_STEP_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15 * 60);
    Duration::from_secs(secs)
}

/// `"ok. 13 passed; 1 failed; ..."` → the number before `label`.
fn number_before(s: &str, label: &str) -> usize {
    s.split(';')
        .find_map(|part| part.trim().strip_suffix(label.trim()).map(str::trim))
        .and_then(|n| n.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn describe(cmd: &Command) -> String {
    let mut s: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| {
            let k = k.to_string_lossy();
            (k == "RUSTFLAGS" || k == "CARGO_TARGET_DIR" || k.starts_with("WDM_"))
                .then(|| format!("{k}={}", v.map(|v| v.to_string_lossy()).unwrap_or_default()))
        })
        .collect();
    s.push(cmd.get_program().to_string_lossy().into_owned());
    s.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    s.join(" ")
}

/// A test-running step: counts individual tests; a failure with no failed test (e.g. a compile
/// error) counts as one failure.
fn test_step(cmd: Command) -> Outcome {
    let (ok, c) = run_counting(cmd);
    match (ok, c.failed) {
        (true, 0) => Outcome::Passed(c.passed.max(usize::from(!c.saw_result))),
        (_, 0) => Outcome::Failed {
            passed: c.passed,
            failed: 1,
        },
        (_, failed) => Outcome::Failed {
            passed: c.passed,
            failed,
        },
    }
}

/// A pass/fail check step (counts as one unit).
fn check_step(cmd: Command) -> Outcome {
    let (ok, _) = run_counting(cmd);
    if ok {
        Outcome::Passed(1)
    } else {
        Outcome::Failed {
            passed: 0,
            failed: 1,
        }
    }
}

fn install_prerequisites(allow_install: bool) -> Outcome {
    // The C fixture drivers' toolchain (clang, lld, llvm) comes from xbuild's list.
    let mut missing: Vec<&str> = TEST_PACKAGES
        .iter()
        .chain(xbuild::cdriver::C_DRIVER_PACKAGES)
        .filter(|(_, bin)| !on_path(bin))
        .map(|(pkg, _)| *pkg)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        let debian = Path::new("/etc/debian_version").is_file();
        if allow_install && debian && is_root() {
            if let Err(e) = xbuild::apt_install(&missing) {
                problems.push(e.to_string());
            }
        } else {
            problems.push(format!(
                "missing packages: {} (install: sudo apt-get install {}); the tests that need \
                 them will fail",
                missing.join(", "),
                missing.join(" ")
            ));
        }
    }
    // The cross toolchain (installs rustc-web/cargo-web/rust-web-src and lld when needed).
    match xbuild::locate_toolchain(allow_install) {
        Ok(tc) => {
            eprintln!("xtask: cross toolchain: {tc}");
            // Its clippy, for linting the driver for the Windows target.
            if xbuild::clippy_of(&tc).is_none() {
                let debian = tc.kind == xbuild::ToolchainKind::Debian;
                if allow_install && debian && is_root() {
                    if let Err(e) = xbuild::apt_install(&[xbuild::DEBIAN_CLIPPY_PACKAGE]) {
                        problems.push(e.to_string());
                    }
                } else {
                    problems.push(format!(
                        "the cross toolchain has no clippy: install {} (Debian) or the nightly \
                         clippy component",
                        xbuild::DEBIAN_CLIPPY_PACKAGE
                    ));
                }
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    // Wine, for the Wine stage.
    if let Err(e) = wine::install(allow_install) {
        problems.push(e);
    }
    // clippy and rustfmt for the host cargo.
    for (component, sub) in [("clippy", "clippy"), ("rustfmt", "fmt")] {
        let have = cargo()
            .args([sub, "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !have {
            let added = allow_install
                && on_path("rustup")
                && Command::new("rustup")
                    .args(["component", "add", component])
                    .status()
                    .is_ok_and(|s| s.success());
            if !added {
                problems.push(format!(
                    "`cargo {sub}` is unavailable: rustup component add {component}"
                ));
            }
        }
    }
    if problems.is_empty() {
        Outcome::Passed(1)
    } else {
        for p in &problems {
            eprintln!("xtask: {p}");
        }
        Outcome::Failed {
            passed: 0,
            failed: 1,
        }
    }
}

fn test(allow_install: bool) -> ExitCode {
    let root = workspace_root();
    let started = Instant::now();
    let mut steps: Vec<Step> = Vec::new();
    let mut step = |name: &str, f: &mut dyn FnMut() -> Outcome| {
        banner(name);
        let t = Instant::now();
        let outcome = f();
        let took = t.elapsed();
        eprintln!("<== {name}: {}", describe_outcome(&outcome));
        steps.push(Step {
            name: name.to_string(),
            outcome,
            took,
        });
    };

    step(
        "prerequisites (apt: mingw-w64 valgrind osslsigncode openssl wine wine64 clang lld llvm; \
         cross toolchain; clippy, rustfmt)",
        &mut || install_prerequisites(allow_install),
    );

    let mut sys_env: Vec<(&str, PathBuf)> = Vec::new();
    for (release, var) in [
        (false, "WDM_WORKITEM_SYS"),
        (true, "WDM_WORKITEM_SYS_RELEASE"),
    ] {
        let name = format!(
            "cross-build wdm_workitem.sys ({})",
            if release { "release" } else { "debug" }
        );
        step(&name, &mut || match build_sys(release, xbuild::TARGET) {
            Ok(p) => {
                eprintln!("xtask: built {}", p.display());
                sys_env.push((var, p));
                Outcome::Passed(1)
            }
            Err(e) => {
                eprintln!("xtask: {e}");
                Outcome::Failed {
                    passed: 0,
                    failed: 1,
                }
            }
        });
    }

    step(
        "host tests: cargo test (the driver's tests/, all host crates, incl. artifact + INF + mingw checks)",
        &mut || {
            let mut c = cargo();
            c.args([
                "test",
                "--no-fail-fast",
                "--workspace",
                "--exclude",
                "rulebreaker",
            ]);
            for (k, v) in &sys_env {
                c.env(k, v);
            }
            test_step(c)
        },
    );

    step("loom models (io-workitem)", &mut || {
        let mut c = cargo();
        c.args([
            "test",
            "--no-fail-fast",
            "-p",
            "io-workitem",
            "--test",
            "loom",
            "--release",
        ])
        .env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", root.join("target/loom"));
        test_step(c)
    });

    step(
        "Windows type-check: cargo check -p wictl --target x86_64-pc-windows-msvc (build-std)",
        &mut || {
            let tc = match xbuild::locate_toolchain(allow_install) {
                Ok(tc) => tc,
                Err(e) => {
                    eprintln!("xtask: {e}");
                    return Outcome::Failed {
                        passed: 0,
                        failed: 1,
                    };
                }
            };
            let mut c = xbuild::windows_std_cargo(&tc, "check");
            c.current_dir(&root)
                .args(["-p", "wictl", "--target-dir"])
                .arg(root.join("target/wincheck"));
            check_step(c)
        },
    );

    step(
        "clippy -D warnings: the driver for x86_64-pc-windows-msvc (build-std)",
        &mut || {
            let cmd = xbuild::locate_toolchain(allow_install)
                .and_then(|tc| xbuild::windows_kernel_clippy(&tc));
            match cmd {
                Ok(mut c) => {
                    c.current_dir(&root)
                        .args([
                            "-p",
                            "wdm-workitem",
                            "--no-default-features",
                            "--target-dir",
                        ])
                        .arg(root.join("target/winclippy"))
                        .args(["--", "-D", "warnings"]);
                    check_step(c)
                }
                Err(e) => {
                    eprintln!("xtask: {e}");
                    Outcome::Failed {
                        passed: 0,
                        failed: 1,
                    }
                }
            }
        },
    );

    step(
        "end to end: the release .sys in ntsim (verifier /standard incl. special pool), wictl \
         stress, IoSizeofWorkItem 0x40, 0x58, 0x60",
        &mut || {
            let Some((_, sys)) = sys_env
                .iter()
                .find(|(k, _)| *k == "WDM_WORKITEM_SYS_RELEASE")
            else {
                eprintln!("xtask: no release image (its build failed above)");
                return Outcome::Failed {
                    passed: 0,
                    failed: 1,
                };
            };
            // Each allocation on its own page with a guard page after it: the slab's stride
            // arithmetic must never overrun a slot for any item size Windows has used.
            let (mut passed, mut failed) = (0, 0);
            for size in ["0x40", "0x58", "0x60"] {
                match main_job(false, sys, &[]) {
                    Ok(mut c) => {
                        c.args(["--item-size", size]);
                        match check_step(c) {
                            Outcome::Passed(n) => passed += n,
                            _ => failed += 1,
                        }
                    }
                    Err(e) => {
                        eprintln!("xtask: {e}");
                        failed += 1;
                    }
                }
            }
            if failed == 0 {
                Outcome::Passed(passed)
            } else {
                Outcome::Failed { passed, failed }
            }
        },
    );

    step(
        "Wine: wictl.exe and the real .sys (only Wine's missing imports supplied, test-only)",
        &mut || {
            let sys = sys_env
                .iter()
                .find(|(k, _)| *k == "WDM_WORKITEM_SYS_RELEASE")
                .map(|(_, p)| p.as_path());
            wine_outcome(&root, sys)
        },
    );

    step("clippy -D warnings (host crates)", &mut || {
        let mut c = cargo();
        c.args([
            "clippy",
            "--workspace",
            "--exclude",
            "rulebreaker",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]);
        check_step(c)
    });

    step(
        "ARM64: clippy -D warnings of nt-abi, io-workitem and the driver for aarch64-pc-windows-msvc",
        &mut || {
            let cmd = xbuild::locate_toolchain(allow_install)
                .and_then(|tc| xbuild::windows_kernel_clippy_for(&tc, xbuild::ARM64_TARGET));
            match cmd {
                Ok(mut c) => {
                    c.current_dir(&root)
                        .args(["-p", "nt-abi", "-p", "io-workitem", "-p", "wdm-workitem"])
                        .args(["--no-default-features", "--target-dir"])
                        .arg(root.join("target/winclippy"))
                        .args(["--", "-D", "warnings"]);
                    check_step(c)
                }
                Err(e) => {
                    eprintln!("xtask: {e}");
                    Outcome::Failed {
                        passed: 0,
                        failed: 1,
                    }
                }
            }
        },
    );

    step(
        "examples/thirdparty-driver: clippy -D warnings for x64 and ARM64, rustfmt --check",
        &mut || {
            let example = root.join("examples/thirdparty-driver/Cargo.toml");
            let mut fmt = cargo();
            fmt.args(["fmt", "--check", "--manifest-path"])
                .arg(&example);
            if !matches!(check_step(fmt), Outcome::Passed(_)) {
                return Outcome::Failed {
                    passed: 0,
                    failed: 1,
                };
            }
            let cmd = xbuild::locate_toolchain(allow_install)
                .and_then(|tc| xbuild::windows_kernel_clippy_for(&tc, xbuild::TARGET));
            match cmd {
                Ok(mut c) => {
                    c.args(["--target", xbuild::ARM64_TARGET, "--manifest-path"])
                        .arg(&example)
                        .arg("--target-dir")
                        .arg(root.join("target/winclippy-example"))
                        .args(["--", "-D", "warnings"]);
                    check_step(c)
                }
                Err(e) => {
                    eprintln!("xtask: {e}");
                    Outcome::Failed {
                        passed: 0,
                        failed: 1,
                    }
                }
            }
        },
    );

    step(
        "rustdoc -D warnings: cargo doc -p nt-abi -p io-workitem --no-deps (every backend shown)",
        &mut || {
            let mut c = cargo();
            c.args(["doc", "-p", "nt-abi", "-p", "io-workitem", "--no-deps"])
                .env("RUSTDOCFLAGS", "-D warnings");
            check_step(c)
        },
    );

    step(
        "cargo package -p nt-abi -p io-workitem (metadata, licenses, verify build; uses the registry)",
        &mut || {
            let mut c = cargo();
            // --allow-dirty: what is checked is that the crates package and build from their
            // tarballs, not the state of the git tree the test happens to run in.
            c.args([
                "package",
                "-p",
                "nt-abi",
                "-p",
                "io-workitem",
                "--allow-dirty",
            ]);
            check_step(c)
        },
    );

    step("cargo fmt --check", &mut || {
        let mut c = cargo();
        c.args(["fmt", "--all", "--check"]);
        check_step(c)
    });

    // Summary.
    let (mut passed, mut failed) = (0, 0);
    eprintln!("\n==> summary ({:.0?} total)", started.elapsed());
    for s in &steps {
        eprintln!(
            "  {:<7} {:>6.1?}  {}  ({})",
            status_word(&s.outcome),
            s.took,
            s.name,
            describe_outcome(&s.outcome)
        );
        match s.outcome {
            Outcome::Passed(n) => passed += n,
            Outcome::Failed {
                passed: p,
                failed: f,
            } => {
                passed += p;
                failed += f;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The Wine stage as a step: builds what it needs (wictl.exe, host wictl for the ntsim
/// comparison), then runs [`wine::stage`]. Missing Wine fails, unless `WDM_ALLOW_SKIP=1`.
fn wine_outcome(root: &Path, sys: Option<&Path>) -> Outcome {
    let fail = |e: String| {
        eprintln!("xtask: {e}");
        Outcome::Failed {
            passed: 0,
            failed: 1,
        }
    };
    if let Err(e) = wine::WineTools::locate() {
        if std::env::var("WDM_ALLOW_SKIP").as_deref() == Ok("1") {
            eprintln!("xtask: SKIPPED (WDM_ALLOW_SKIP=1): {e}");
            return Outcome::Passed(0);
        }
        return fail(format!(
            "{e}; or set WDM_ALLOW_SKIP=1 to skip the Wine stage"
        ));
    }
    let Some(sys) = sys else {
        return fail("no release image (its build failed above)".into());
    };
    let exe = match xbuild::locate_toolchain(false)
        .and_then(|tc| xbuild::build_wictl(&tc, true, false))
    {
        Ok(p) => p,
        Err(e) => return fail(format!("cannot build wictl.exe: {e}")),
    };
    let host = match host_tools(false, &["wictl"])
        .pop()
        .expect("one result per package")
    {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let info = match wine::ntsim_info(&host, sys) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let t = wine::stage(&root.join("target/wine"), &exe, sys, &info);
    if t.failed == 0 {
        Outcome::Passed(t.passed)
    } else {
        Outcome::Failed {
            passed: t.passed,
            failed: t.failed,
        }
    }
}

fn status_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Passed(_) => "PASS",
        Outcome::Failed { .. } => "FAIL",
    }
}

fn describe_outcome(o: &Outcome) -> String {
    match o {
        Outcome::Passed(n) => format!("{n} passed"),
        Outcome::Failed { passed, failed } => format!("{passed} passed, {failed} failed"),
    }
}

// ---------------------------------------------------------------------------------------------
// run
// ---------------------------------------------------------------------------------------------

/// Build the host tools (one cargo invocation) and return each binary's path or why it is missing.
fn host_tools(release: bool, packages: &[&str]) -> Vec<Result<PathBuf, String>> {
    let mut c = cargo();
    c.arg("build");
    if release {
        c.arg("--release");
    }
    for p in packages {
        c.args(["-p", p]);
    }
    let built = c.status().is_ok_and(|s| s.success());
    let profile = if release { "release" } else { "debug" };
    packages
        .iter()
        .map(|p| {
            let bin = host_target_dir().join(profile).join(p);
            if built && bin.is_file() {
                Ok(bin)
            } else if !built {
                Err(format!("`{}` failed", describe(&c)))
            } else {
                Err(format!(
                    "{} was not produced (no binary yet?)",
                    bin.display()
                ))
            }
        })
        .collect()
}

/// What the main job stresses when given no arguments: every mode and queue type.
const MAIN_JOB_DEFAULT_ARGS: &[&str] = &["--mix", "--threads", "4", "--count", "200"];

/// The main job's command: `wictl --ntsim <sys> stress ARGS` (default: a mix of every mode and
/// queue type).
fn main_job(release_tools: bool, sys: &Path, extra: &[String]) -> Result<Command, String> {
    let wictl = host_tools(release_tools, &["wictl"])
        .pop()
        .expect("one result per package")?;
    let mut c = Command::new(wictl);
    c.arg("--ntsim").arg(sys).arg("stress");
    if extra.is_empty() {
        c.args(MAIN_JOB_DEFAULT_ARGS);
    } else {
        c.args(extra);
    }
    Ok(c)
}

fn run(release: bool, extra: &[String]) -> ExitCode {
    banner("build the driver");
    let sys = match build_sys(release, xbuild::TARGET) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask run: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("xtask: driver image {}", sys.display());

    banner("build the harness (wictl; it links ntsim)");
    let mut cmd = match main_job(true, &sys, extra) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtask run: {e}");
            return ExitCode::FAILURE;
        }
    };
    banner(&format!("run: {}", describe(&cmd)));
    match cmd.status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("xtask run: the run reported a failure ({s})");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("xtask run: cannot start {}: {e}", describe(&cmd));
            ExitCode::FAILURE
        }
    }
}

fn bench_all(quick: bool) -> ExitCode {
    banner("prerequisites (valgrind for callgrind, the cross toolchain)");
    if let Outcome::Failed { .. } = install_prerequisites(true) {
        eprintln!("xtask bench: prerequisites are missing (see above)");
        return ExitCode::FAILURE;
    }
    banner("build the driver (release) and the host tools");
    let sys = match build_sys(true, xbuild::TARGET) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tools: Result<Vec<PathBuf>, String> = host_tools(true, &["wictl"]).into_iter().collect();
    let wictl = match tools.as_deref() {
        Ok([w]) => w.clone(),
        Ok(_) => unreachable!("host_tools returns one result per package"),
        Err(e) => {
            eprintln!("xtask bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    banner("measure");
    let sizes = bench::Sizes::new(quick);
    let results = [
        bench::workitem_instructions(&mut cargo(), &sizes)
            .map(|over| over <= bench::SAFE_OVER_RAW_TARGET_PCT),
        bench::ntsim_verifier_cost(&mut cargo(), &sizes).map(|()| true),
        bench::driver_modes(&wictl, &sys, &sizes).map(|()| true),
        bench::soak_rss(&wictl, &sys, if quick { 12 } else { 30 }).map(|()| true),
    ];
    let mut ok = true;
    for r in results {
        match r {
            Ok(met) => ok &= met,
            Err(e) => {
                eprintln!("xtask bench: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("\nxtask bench: a measurement failed or a target was missed (see above)");
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (ours, extra) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (&args[..], &[][..]),
    };
    let flag = |f: &str| ours.iter().any(|a| a == f);
    match ours.first().map(String::as_str) {
        Some("build-sys") => match build_sys(
            flag("--release"),
            if flag("--arm64") {
                xbuild::ARM64_TARGET
            } else {
                xbuild::TARGET
            },
        ) {
            Ok(path) => {
                println!("{}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask build-sys: {e}");
                ExitCode::FAILURE
            }
        },
        Some("run") => run(!flag("--debug"), extra),
        Some("test") => test(!flag("--no-install")),
        Some("bench") => bench_all(flag("--quick")),
        Some("build-wictl") => {
            match xbuild::locate_toolchain(true)
                .and_then(|tc| xbuild::build_wictl(&tc, flag("--release"), true))
            {
                Ok(path) => {
                    println!("{}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("xtask build-wictl: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("wine") => {
            banner("prerequisites");
            if let Err(e) = wine::install(!flag("--no-install")) {
                eprintln!("xtask wine: {e}");
            }
            banner("build the driver (release)");
            let sys = build_sys(true, xbuild::TARGET)
                .map_err(|e| eprintln!("xtask wine: {e}"))
                .ok();
            banner("Wine stage");
            let o = wine_outcome(&workspace_root(), sys.as_deref());
            println!("{}", describe_outcome(&o));
            match o {
                Outcome::Passed(_) => ExitCode::SUCCESS,
                Outcome::Failed { .. } => ExitCode::FAILURE,
            }
        }
        Some("package") => package::run(flag("--release")),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_result_lines() {
        let l = "ok. 13 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.48s";
        assert_eq!(number_before(l, " passed"), 13);
        assert_eq!(number_before(l, " failed"), 1);
        assert_eq!(number_before("FAILED. 0 passed; 7 failed;", " failed"), 7);
        assert_eq!(number_before("garbage", " passed"), 0);
    }

    #[test]
    fn a_hanging_step_is_killed_and_fails() {
        // A child that leaves a grandchild holding stdout: only killing the group ends it.
        let mut c = Command::new("sh");
        c.args(["-c", "sleep 30 & sleep 30; echo never"]);
        let t = Instant::now();
        let (ok, _) = run_counting_with_limit(c, Duration::from_secs(1));
        assert!(!ok);
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the whole group was killed"
        );
    }

    #[test]
    fn failed_step_without_results_counts_as_one_failure() {
        // `false` prints nothing and exits 1: a compile error looks like this.
        let o = test_step(Command::new("false"));
        assert!(
            matches!(
                o,
                Outcome::Failed {
                    passed: 0,
                    failed: 1
                }
            ),
            "{o:?}"
        );
        let o = check_step(Command::new("true"));
        assert!(matches!(o, Outcome::Passed(1)));
    }
}
