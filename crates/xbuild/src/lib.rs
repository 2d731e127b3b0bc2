//! Cross-build a Rust kernel driver into a real PE `.sys` on a Linux x86_64 host.
//!
//! `wdk-build` refuses non-Windows hosts, so the driver is built with `-Zbuild-std` for
//! `x86_64-pc-windows-msvc` and linked by `rust-lld` in `lld-link` mode (DESIGN.md §3). This crate
//! is the one place that recipe lives: `cargo xtask build-sys` and the test suites that build
//! fixture drivers both call [`build_sys`].
//!
//! Toolchains, in order of preference:
//! 1. rustup `nightly` with the `rust-src` component;
//! 2. Debian's `rustc-web` + `cargo-web` + `rust-web-src` (`/usr/bin/rustc`, sources under
//!    `/usr/lib/rustlib/src/rust`), driven with `RUSTC_BOOTSTRAP=1`;
//! 3. on Debian as root, those packages are installed with apt when missing.
//!
//! Otherwise [`locate_toolchain`] fails with the exact command to run.

pub mod cdriver;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "x86_64-pc-windows-msvc";
/// The ARM64 Windows target: the same recipe (build-std with the same toolchain, rust-lld in
/// `lld-link` mode) produces an ARM64 `.sys` (machine 0xAA64). ntsim cannot load it (it runs x64
/// images on an x86_64 host); sys-check checks it.
pub const ARM64_TARGET: &str = "aarch64-pc-windows-msvc";
/// Every driver target the cross build supports.
pub const DRIVER_TARGETS: &[&str] = &[TARGET, ARM64_TARGET];
/// Debian packages that provide a rustc with library sources for build-std.
pub const DEBIAN_TOOLCHAIN_PACKAGES: &[&str] = &["rustc-web", "cargo-web", "rust-web-src"];
/// Debian package that provides `lld-link` when no rustup `rust-lld` exists.
pub const DEBIAN_LINKER_PACKAGE: &str = "lld";

/// Linker arguments every kernel driver image gets: what wdk-build's `configure_wdk_binary_build`
/// passes link.exe for a WDM driver (microsoft/windows-drivers-rs, crates/wdk-build/src/lib.rs:
/// `/DRIVER /NODEFAULTLIB /SUBSYSTEM:NATIVE /KERNEL /ENTRY:DriverEntry`, then for every driver
/// `/NXCOMPAT /DYNAMICBASE /MAP /MAPINFO:EXPORTS /OPT:REF,ICF /INTEGRITYCHECK /MANIFEST:NO`), as far
/// as lld-link implements it. Left out: `/KERNEL` (link.exe's check that objects were compiled
/// for kernel mode; lld-link has no such check, and rustc cannot compile with `/kernel` anyway)
/// and `/MAP`/`/MAPINFO` (a map file next to the image; nothing reads it). Added: `/RELEASE`,
/// because link.exe writes the PE checksum for `/DRIVER` images by itself and lld-link writes it
/// only when asked; Windows refuses to load a driver whose checksum is wrong.
pub const DRIVER_LINK_ARGS: &[&str] = &[
    "/SUBSYSTEM:NATIVE",
    "/DRIVER",
    "/ENTRY:DriverEntry",
    "/NODEFAULTLIB",
    "/NXCOMPAT",
    "/DYNAMICBASE",
    "/OPT:REF,ICF",
    // Sets IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY: Windows loads the image only if it is signed.
    "/INTEGRITYCHECK",
    "/MANIFEST:NO",
    "/RELEASE",
];

#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn err<T>(msg: impl Into<String>) -> Result<T, Error> {
    Err(Error(msg.into()))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolchainKind {
    RustupNightly,
    Debian,
}

/// A compiler that can build `core` from source for the Windows target, plus a linker.
#[derive(Clone, Debug)]
pub struct Toolchain {
    pub kind: ToolchainKind,
    pub cargo: PathBuf,
    pub rustc: PathBuf,
    pub linker: PathBuf,
}

impl fmt::Display for Toolchain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ToolchainKind::RustupNightly => "rustup nightly + rust-src",
            ToolchainKind::Debian => "Debian rustc-web + rust-web-src",
        };
        write!(
            f,
            "{kind} ({}), linker {}",
            self.rustc.display(),
            self.linker.display()
        )
    }
}

fn capture(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn has_library_sources(sysroot: &Path) -> bool {
    sysroot
        .join("lib/rustlib/src/rust/library/core/Cargo.toml")
        .is_file()
}

fn rustup_nightly() -> Option<(PathBuf, PathBuf)> {
    let sysroot =
        capture(Command::new("rustup").args(["run", "nightly", "rustc", "--print", "sysroot"]))?;
    let sysroot = PathBuf::from(sysroot);
    if !has_library_sources(&sysroot) {
        return None;
    }
    let bin = sysroot.join("bin");
    Some((bin.join("cargo"), bin.join("rustc")))
}

fn debian_toolchain() -> Option<(PathBuf, PathBuf)> {
    let rustc = PathBuf::from("/usr/bin/rustc");
    let cargo = PathBuf::from("/usr/bin/cargo");
    if !rustc.is_file() || !cargo.is_file() {
        return None;
    }
    let sysroot = capture(Command::new(&rustc).args(["--print", "sysroot"]))?;
    has_library_sources(Path::new(&sysroot)).then_some((cargo, rustc))
}

fn is_debian() -> bool {
    Path::new("/etc/debian_version").is_file()
}

fn is_root() -> bool {
    capture(Command::new("id").arg("-u")).as_deref() == Some("0")
}

/// `apt-get install` the given packages, reporting progress on stderr.
pub fn apt_install(packages: &[&str]) -> Result<(), Error> {
    eprintln!("xbuild: installing Debian packages: {}", packages.join(" "));
    let update = Command::new("apt-get").args(["update", "-qq"]).status();
    if !matches!(update, Ok(s) if s.success()) {
        return err("`apt-get update` failed; check the package mirror and run it by hand");
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        _ => err(format!(
            "`apt-get install -y {}` failed",
            packages.join(" ")
        )),
    }
}

/// A path that exists after following symlinks (Debian's `/usr/bin/rust-lld` can dangle).
fn existing(p: PathBuf) -> Option<PathBuf> {
    p.canonicalize().ok().filter(|c| c.is_file()).map(|_| p)
}

fn find_linker(rustc: &Path) -> Option<PathBuf> {
    let host_bin = "lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld";
    let own = capture(Command::new(rustc).args(["--print", "sysroot"]))
        .and_then(|s| existing(Path::new(&s).join(host_bin)));
    let rustup = || {
        capture(Command::new("rustup").args(["run", "stable", "rustc", "--print", "sysroot"]))
            .and_then(|s| existing(Path::new(&s).join(host_bin)))
    };
    let on_path = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths).find_map(|d| existing(d.join("lld-link")))
        })
    };
    own.or_else(rustup).or_else(on_path)
}

/// Find (and on Debian as root, install) a toolchain that can cross-build drivers.
pub fn locate_toolchain(allow_install: bool) -> Result<Toolchain, Error> {
    let found = match rustup_nightly() {
        Some((cargo, rustc)) => Some((ToolchainKind::RustupNightly, cargo, rustc)),
        None => debian_toolchain().map(|(c, r)| (ToolchainKind::Debian, c, r)),
    };
    let (kind, cargo, rustc) = match found {
        Some(f) => f,
        None if allow_install && is_debian() && is_root() => {
            apt_install(DEBIAN_TOOLCHAIN_PACKAGES)?;
            let (c, r) = debian_toolchain().ok_or_else(|| {
                Error("installed rustc-web/rust-web-src, but /usr/lib/rustlib/src/rust is still missing".into())
            })?;
            (ToolchainKind::Debian, c, r)
        }
        None => {
            let why = if !is_debian() {
                "this host is not Debian, so the Debian toolchain packages cannot be used; \
                 install a rustup nightly with rust-src"
            } else if !is_root() {
                "not running as root, so the Debian packages were not installed automatically"
            } else {
                "installing packages was not allowed here"
            };
            return err(format!(
                "no toolchain can build `core` for x86_64-pc-windows-msvc ({why}).\n\
                 With rustup:    rustup toolchain install nightly --component rust-src\n\
                 On Debian 12:   sudo apt-get install rustc-web cargo-web rust-web-src lld\n\
                 Then run the command again."
            ));
        }
    };
    let linker = match find_linker(&rustc) {
        Some(l) => l,
        None if allow_install && is_debian() && is_root() => {
            apt_install(&[DEBIAN_LINKER_PACKAGE])?;
            find_linker(&rustc)
                .ok_or_else(|| Error("installed lld, but lld-link is still not on PATH".into()))?
        }
        None => {
            return err(
                "no PE linker found: need rustup's rust-lld or lld-link on PATH.\n\
                 On Debian 12:   sudo apt-get install lld\n\
                 With rustup:    rustup toolchain install stable (ships rust-lld)",
            );
        }
    };
    Ok(Toolchain {
        kind,
        cargo,
        rustc,
        linker,
    })
}

/// What to build.
#[derive(Clone, Debug)]
pub struct SysBuild<'a> {
    /// `Cargo.toml` of the driver package (or of its workspace).
    pub manifest_path: &'a Path,
    /// Package name, e.g. `wdm-workitem`.
    pub package: &'a str,
    pub release: bool,
    /// Where cargo puts its output; keep it apart from host builds.
    pub target_dir: &'a Path,
    /// `--features` list passed to cargo (comma-separated), if any.
    pub features: Option<&'a str>,
    pub no_default_features: bool,
    /// Print cargo's output instead of capturing it.
    pub verbose: bool,
}

/// What the calling cargo (often rustup's stable) put in the environment; removed so the chosen
/// toolchain, flags and target directory are the only ones in effect.
const INHERITED_VARS: &[&str] = &[
    "RUSTUP_TOOLCHAIN",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_MAKEFLAGS",
];

/// Advice for the failures this recipe is known to hit (DESIGN.md §3, "Pitfalls seen").
pub fn diagnose(log: &str) -> String {
    let mut advice = Vec::new();
    if log.contains("undefined symbol: _fltused") {
        advice.push(
            "`_fltused` is undefined: code that touches floats (often core::fmt in unoptimized \
             builds) references the MSVC CRT's float marker, which no kernel provides. Define \
             it once in the driver for builds without the `wdk` feature (wdk-sys defines its \
             own): `#[cfg(not(feature = \"wdk\"))] #[unsafe(no_mangle)] pub static _fltused: \
             i32 = 0;`",
        );
    }
    if log.contains("undefined symbol: __chkstk") {
        advice.push(
            "`__chkstk` is undefined: a function has a stack frame over 4 KiB. Kernel stacks are \
             small (12-24 KiB): move the buffer to pool, or provide a __chkstk probe",
        );
    }
    if log.contains("undefined symbol: fma") {
        advice.push(
            "libm's `fma`/`fmaf` are undefined: compiler_builtins was built with few codegen \
             units (xbuild passes codegen-units=10000 for it; check profile overrides)",
        );
    }
    if log.contains("undefined symbol: __imp_") {
        advice.push(
            "an `__imp_` symbol is undefined: the driver calls a kernel export that is not \
             declared in nt-abi's import list (crates/nt-abi/src/imports.rs)",
        );
    }
    if log.contains("rust-lld") && log.contains("error:") && advice.is_empty() {
        advice.push(
            "the link failed: check that the driver defines no symbol the kernel does not \
             export and that every kernel function it calls is declared in nt-abi",
        );
    }
    if log.contains("can't find crate for `core`")
        || (log.contains("-Zbuild-std") && log.contains("error") && advice.is_empty())
    {
        advice.push(
            "build-std failed: the toolchain needs its library sources (rustup component \
             rust-src, or Debian's rust-web-src)",
        );
    }
    if advice.is_empty() {
        "See the compiler output above.".to_string()
    } else {
        format!("What to do:\n  - {}", advice.join("\n  - "))
    }
}

/// Run a cross-build cargo command; on failure, the tail of its output (unless it was streamed)
/// and [`diagnose`]'s advice.
fn run_cargo(tc: &Toolchain, mut cmd: Command, verbose: bool, package: &str) -> Result<(), Error> {
    // stderr is always captured (for the diagnosis below); in verbose mode it is also streamed.
    cmd.stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Error(format!("cannot run {}: {e}", tc.cargo.display())))?;
    let mut log = String::new();
    if let Some(stderr) = child.stderr.take() {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if verbose {
                eprintln!("{line}");
            }
            log.push_str(&line);
            log.push('\n');
        }
    }
    let status = child
        .wait()
        .map_err(|e| Error(format!("waiting for {}: {e}", tc.cargo.display())))?;
    if !status.success() {
        let tail: Vec<&str> = log
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let shown = if verbose {
            String::new()
        } else {
            format!("{}\n", tail.join("\n"))
        };
        return err(format!(
            "cross-build of `{}` failed ({status}) with {tc}.\n{shown}{}",
            package,
            diagnose(&log)
        ));
    }
    Ok(())
}

/// Build the package for [`TARGET`] and return the absolute path of the `.sys` it produced.
pub fn build_sys(tc: &Toolchain, req: &SysBuild<'_>) -> Result<PathBuf, Error> {
    build_sys_for(tc, req, TARGET)
}

/// `CARGO_TARGET_<TRIPLE>_<what>`, cargo's per-target environment key.
fn target_env(target: &str, what: &str) -> String {
    format!(
        "CARGO_TARGET_{}_{what}",
        target.to_ascii_uppercase().replace(['-', '.'], "_")
    )
}

/// Build the package for `target` (one of [`DRIVER_TARGETS`]) and return the absolute path of
/// the `.sys` it produced.
pub fn build_sys_for(tc: &Toolchain, req: &SysBuild<'_>, target: &str) -> Result<PathBuf, Error> {
    if !DRIVER_TARGETS.contains(&target) {
        return err(format!(
            "unsupported driver target `{target}`: use one of {}",
            DRIVER_TARGETS.join(", ")
        ));
    }
    let mut rustflags = vec![
        "-C",
        "target-feature=+crt-static",
        "-C",
        "linker-flavor=lld-link",
    ];
    let link_args: Vec<String> = DRIVER_LINK_ARGS
        .iter()
        .map(|a| format!("link-arg={a}"))
        .collect();
    for a in &link_args {
        rustflags.extend(["-C", a]);
    }
    let mut cmd = Command::new(&tc.cargo);
    cmd.arg("build")
        .args(["--package", req.package, "--target", target])
        .arg("--manifest-path")
        .arg(req.manifest_path)
        .arg("--target-dir")
        .arg(req.target_dir)
        .args([
            "-Zbuild-std=core,compiler_builtins,alloc",
            "-Zbuild-std-features=compiler-builtins-mem",
        ])
        // The Rust distribution builds compiler_builtins with one codegen unit per intrinsic so
        // the linker only pulls in what is referenced; build-std uses our profile instead, and
        // with few units an unoptimized build drags in libm's `fma`/`fmaf` (which no kernel
        // exports) and fails to link. Restore the distribution's setting for every profile.
        .args([
            "--config",
            "profile.dev.package.compiler_builtins.codegen-units=10000",
            "--config",
            "profile.release.package.compiler_builtins.codegen-units=10000",
        ]);
    if req.release {
        cmd.arg("--release");
    }
    if req.no_default_features {
        cmd.arg("--no-default-features");
    }
    if let Some(f) = req.features {
        cmd.args(["--features", f]);
    }
    for var in INHERITED_VARS {
        cmd.env_remove(var);
    }
    cmd.env("RUSTC", &tc.rustc)
        .env(target_env(target, "LINKER"), &tc.linker)
        .env(target_env(target, "RUSTFLAGS"), rustflags.join(" "));
    if tc.kind == ToolchainKind::Debian {
        cmd.env("RUSTC_BOOTSTRAP", "1");
    }
    run_cargo(
        tc,
        cmd,
        req.verbose,
        &format!("{} for {target}", req.package),
    )?;
    let profile = if req.release { "release" } else { "debug" };
    let out_dir = req.target_dir.join(target).join(profile);
    let stem = req.package.replace('-', "_");
    let dll = out_dir.join(format!("{stem}.dll"));
    let sys = out_dir.join(format!("{stem}.sys"));
    std::fs::copy(&dll, &sys).map_err(|e| {
        Error(format!(
            "build succeeded but {} is missing: {e}",
            dll.display()
        ))
    })?;
    sys.canonicalize()
        .map_err(|e| Error(format!("{}: {e}", sys.display())))
}

/// `cargo <subcommand>` for [`TARGET`] with `std` built from source (`-Zbuild-std=std,panic_abort`),
/// for type-checking user-mode code (the harness) for Windows on this host. The caller adds
/// `-p <package>`, `--target-dir`, etc. Only non-linking subcommands (`check`, `clippy`, `doc`) can
/// work: linking a Windows executable needs the MSVC CRT and SDK import libraries, which a Linux
/// host does not have.
pub fn windows_std_cargo(tc: &Toolchain, subcommand: &str) -> Command {
    let mut cmd = Command::new(&tc.cargo);
    cmd.arg(subcommand)
        .args(["--target", TARGET, "-Zbuild-std=std,panic_abort"]);
    toolchain_env(tc, &mut cmd);
    cmd
}

/// `cargo <subcommand>` of kernel-mode (`no_std`) code for each of `targets` with `core` built
/// from source (`-Zbuild-std=core,compiler_builtins`): for type-checking libraries such as
/// io-workitem for x64 and ARM64 Windows on this host. The caller adds `--manifest-path`,
/// `--target-dir`, `-p`, features.
pub fn kernel_cargo(tc: &Toolchain, subcommand: &str, targets: &[&str]) -> Command {
    let mut cmd = Command::new(&tc.cargo);
    cmd.arg(subcommand);
    for t in targets {
        cmd.args(["--target", t]);
    }
    cmd.args([
        "-Zbuild-std=core,compiler_builtins",
        "-Zbuild-std-features=compiler-builtins-mem",
    ]);
    toolchain_env(tc, &mut cmd);
    cmd
}

/// Debian package that provides `cargo-clippy`/`clippy-driver` for the Debian toolchain.
pub const DEBIAN_CLIPPY_PACKAGE: &str = "rust-web-clippy";

/// The toolchain's own `cargo-clippy` (next to its `cargo`), if installed.
pub fn clippy_of(tc: &Toolchain) -> Option<PathBuf> {
    tc.cargo
        .parent()
        .map(|d| d.join("cargo-clippy"))
        .filter(|p| p.is_file())
}

/// `cargo clippy` of a kernel-mode package for [`TARGET`] (`-Zbuild-std=core,compiler_builtins,alloc`),
/// with the toolchain's own clippy. Invoked as `cargo-clippy clippy ...` directly: `cargo clippy`
/// would prefer a `cargo-clippy` in `$CARGO_HOME/bin` (rustup's proxy, another toolchain).
/// The caller adds `-p`, `--target-dir`, `--no-default-features` and `-- -D warnings`.
pub fn windows_kernel_clippy(tc: &Toolchain) -> Result<Command, Error> {
    windows_kernel_clippy_for(tc, TARGET)
}

/// [`windows_kernel_clippy`] for any of [`DRIVER_TARGETS`] (e.g. [`ARM64_TARGET`]).
pub fn windows_kernel_clippy_for(tc: &Toolchain, target: &str) -> Result<Command, Error> {
    let clippy = clippy_of(tc).ok_or_else(|| {
        Error(format!(
            "{} has no cargo-clippy next to it: install {} (Debian) or `rustup component add \
             clippy --toolchain nightly`",
            tc.cargo.display(),
            DEBIAN_CLIPPY_PACKAGE
        ))
    })?;
    let mut cmd = Command::new(clippy);
    cmd.args([
        "clippy",
        "--target",
        target,
        "-Zbuild-std=core,compiler_builtins,alloc",
        "-Zbuild-std-features=compiler-builtins-mem",
    ]);
    toolchain_env(tc, &mut cmd);
    cmd.env("CARGO", &tc.cargo);
    if let Some(dir) = tc.cargo.parent() {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let joined = std::env::join_paths(
            std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path)),
        )
        .map_err(|e| Error(format!("PATH: {e}")))?;
        cmd.env("PATH", joined);
    }
    Ok(cmd)
}

fn toolchain_env(tc: &Toolchain, cmd: &mut Command) {
    for var in INHERITED_VARS {
        cmd.env_remove(var);
    }
    cmd.env("RUSTC", &tc.rustc);
    if tc.kind == ToolchainKind::Debian {
        cmd.env("RUSTC_BOOTSTRAP", "1");
    }
}

/// Package name of the project's driver.
pub const DRIVER_PACKAGE: &str = "wdm-workitem";

/// The workspace this crate lives in (`crates/xbuild/../..`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// Cross-build `wdm_workitem.sys` the one way every caller (xtask, test suites) builds it:
/// without the WDK feature, into `<workspace>/target/sys`. Returns the `.sys` path.
pub fn build_driver(tc: &Toolchain, release: bool, verbose: bool) -> Result<PathBuf, Error> {
    build_driver_for(tc, TARGET, release, verbose)
}

/// [`build_driver`] for any of [`DRIVER_TARGETS`] (e.g. [`ARM64_TARGET`]), same recipe and
/// target directory (cargo keeps each target's output under its own triple).
pub fn build_driver_for(
    tc: &Toolchain,
    target: &str,
    release: bool,
    verbose: bool,
) -> Result<PathBuf, Error> {
    let root = workspace_root();
    build_sys_for(
        tc,
        &SysBuild {
            manifest_path: &root.join("Cargo.toml"),
            package: DRIVER_PACKAGE,
            release,
            target_dir: &root.join("target/sys"),
            features: None,
            no_default_features: true,
            verbose,
        },
        target,
    )
}

/// Target for user-mode Windows executables built here: the GNU ABI, because linking an MSVC
/// executable needs the MSVC CRT and the Windows SDK's import libraries, which a Linux host does
/// not have, while mingw-w64 ships both halves for the GNU target.
pub const EXE_TARGET: &str = "x86_64-pc-windows-gnu";
/// The linker for [`EXE_TARGET`] and the Debian package that provides it.
pub const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";
pub const DEBIAN_MINGW_PACKAGE: &str = "mingw-w64";

/// Cross-build one binary of a user-mode package as a real Windows executable for [`EXE_TARGET`]
/// (`std` built from source with `-Zbuild-std=std,panic_abort`, linked by mingw-w64's gcc) and
/// return the `.exe`'s absolute path.
pub fn build_exe(
    tc: &Toolchain,
    manifest_path: &Path,
    package: &str,
    bin: &str,
    release: bool,
    target_dir: &Path,
    verbose: bool,
) -> Result<PathBuf, Error> {
    let gcc = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).find_map(|d| existing(d.join(MINGW_GCC))))
        .ok_or_else(|| {
            Error(format!(
                "{MINGW_GCC} is not on PATH: it links Windows executables here.\n\
                 On Debian 12:   sudo apt-get install {DEBIAN_MINGW_PACKAGE}"
            ))
        })?;
    let mut cmd = Command::new(&tc.cargo);
    cmd.arg("build")
        .args(["--package", package, "--bin", bin, "--target", EXE_TARGET])
        .arg("--manifest-path")
        .arg(manifest_path)
        .arg("--target-dir")
        .arg(target_dir)
        .arg("-Zbuild-std=std,panic_abort");
    if release {
        cmd.arg("--release");
    }
    toolchain_env(tc, &mut cmd);
    cmd.env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER", &gcc);
    run_cargo(tc, cmd, verbose, package)?;
    let profile = if release { "release" } else { "debug" };
    let exe = target_dir
        .join(EXE_TARGET)
        .join(profile)
        .join(format!("{bin}.exe"));
    exe.canonicalize().map_err(|e| {
        Error(format!(
            "the build succeeded but {} is missing: {e}",
            exe.display()
        ))
    })
}

/// Cross-build the harness `wictl.exe` the one way every caller builds it: into
/// `<workspace>/target/winexe`. Returns the `.exe` path.
pub fn build_wictl(tc: &Toolchain, release: bool, verbose: bool) -> Result<PathBuf, Error> {
    let root = workspace_root();
    build_exe(
        tc,
        &root.join("Cargo.toml"),
        "wictl",
        "wictl",
        release,
        &root.join("target/winexe"),
        verbose,
    )
}
