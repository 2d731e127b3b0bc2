//! Running the `ntsim` CLI from tests: the real driver artifact, patched copies of it, and a
//! runner that never hangs the test and insists on a documented exit code.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Every exit code `ntsim run` documents (crates/ntsim/README.md, CLI section).
pub const DOCUMENTED_EXIT_CODES: [i32; 5] = [0, 1, 2, 3, 4];

pub const DEVICE: &str = r"\\.\WdmWorkItem";

/// Build (or reuse) the driver through xbuild, as `cargo xtask build-sys --release` does.
pub fn wdm_sys() -> &'static Path {
    static SYS: OnceLock<PathBuf> = OnceLock::new();
    SYS.get_or_init(|| {
        let tc = xbuild::locate_toolchain(false).unwrap_or_else(|e| panic!("{e}"));
        xbuild::build_driver(&tc, true, false).expect("build wdm_workitem.sys")
    })
}

pub fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-hardening");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A copy of the driver, changed by `f`.
pub fn patched(name: &str, f: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut b = std::fs::read(wdm_sys()).unwrap();
    f(&mut b);
    let p = tmp(name);
    std::fs::write(&p, b).unwrap();
    p
}

fn rd16(b: &[u8], o: usize) -> usize {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap()) as usize
}
fn rd32(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize
}

/// File offset of the entry point (DriverEntry).
pub fn entry_file_offset(b: &[u8]) -> usize {
    let fh = rd32(b, 0x3C) + 4;
    let (nsec, opt_size) = (rd16(b, fh + 2), rd16(b, fh + 16));
    let oh = fh + 20;
    let entry = rd32(b, oh + 16);
    for i in 0..nsec {
        let s = oh + opt_size + i * 40;
        let (vsize, rva, raw) = (rd32(b, s + 8), rd32(b, s + 12), rd32(b, s + 20));
        if entry >= rva && entry < rva + vsize {
            return raw + (entry - rva);
        }
    }
    panic!("entry point not in a section")
}

/// Replace the first bytes of DriverEntry with `code`.
pub fn with_entry_code(name: &str, code: &[u8]) -> PathBuf {
    patched(name, |b| {
        let at = entry_file_offset(b);
        b[at..at + code.len()].copy_from_slice(code);
    })
}

#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub exit: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("one JSON object expected ({e})\n{self:#?}"))
    }
}

/// Run `ntsim` with `args` (and `env`); kill it after `limit` and fail the test if it gets there.
pub fn ntsim_env(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    use std::os::unix::process::ExitStatusExt;
    let t0 = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ntsim"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn ntsim");
    let mut o = child.stdout.take().unwrap();
    let mut e = child.stderr.take().unwrap();
    let ro = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = o.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let re = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = e.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let mut killed = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > limit {
            killed = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let run = Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        exit: status.code(),
        signal: status.signal(),
        stdout: ro.join().unwrap_or_default(),
        stderr: re.join().unwrap_or_default(),
        elapsed: t0.elapsed(),
    };
    assert!(!killed, "ntsim outlived {limit:?}\n{run:#?}");
    run
}

pub fn ntsim(args: &[&str]) -> Run {
    ntsim_env(args, &[], Duration::from_secs(120))
}

/// `ntsim run SYS --json ARGS…`: a driver run through the CLI, its report as one JSON object.
pub fn run_json(sys: &Path, args: &[&str]) -> Run {
    let sys = sys.to_str().expect("a UTF-8 path");
    let mut all = vec!["run", sys, "--json"];
    all.extend_from_slice(args);
    ntsim(&all)
}

/// [`run_json`] with `--dbg-filter DEFAULT=0xF`: the C fixtures report through DbgPrint
/// (DEFAULT, INFO level), so the default filter is widened, as a developer does.
pub fn run_json_logged(sys: &Path, args: &[&str]) -> Run {
    let mut all = vec!["--dbg-filter", "DEFAULT=0xF"];
    all.extend_from_slice(args);
    run_json(sys, &all)
}

/// The run ended with a documented exit code (not a signal, not a Rust panic's 101).
pub fn assert_documented(run: &Run) {
    assert!(
        run.exit.is_some_and(|c| DOCUMENTED_EXIT_CODES.contains(&c)),
        "undocumented end (exit {:?}, signal {:?})\n{run:#?}",
        run.exit,
        run.signal
    );
    assert!(!run.stderr.contains("panicked"), "a panic\n{run:#?}");
}
