//! ntsim's loader and CLI on a real driver image (the cross-built `wdm_workitem.sys` as the
//! sample input): the loader's refusals of bad and corrupted images before anything runs, and the
//! `ntsim run` JSON contract, exit codes and timeout. The driver's own behaviour (DriverEntry,
//! IOCTLs, unload) is specified in the driver package's `tests/` at the repository root.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ioctl::IOCTL_QUERY_INFO;
use nt_abi::*;
use ntsim::{Config, LoadError, Machine};

/// Build (or reuse) the driver through xbuild, as `cargo xtask build-sys --release` does. Tests
/// never install anything: without a cross toolchain this fails with the command to install one.
fn wdm_sys() -> &'static Path {
    static SYS: OnceLock<PathBuf> = OnceLock::new();
    SYS.get_or_init(|| {
        let tc = xbuild::locate_toolchain(false).unwrap_or_else(|e| panic!("{e}"));
        xbuild::build_driver(&tc, true, false).expect("build wdm_workitem.sys")
    })
}

const DEVICE: &str = r"\\.\WdmWorkItem";

fn patched(name: &str, f: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut b = std::fs::read(wdm_sys()).unwrap();
    f(&mut b);
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&p, b).unwrap();
    p
}

fn pe_offset(b: &[u8]) -> usize {
    u32::from_le_bytes(b[0x3C..0x40].try_into().unwrap()) as usize
}

#[test]
fn the_loader_refuses_bad_images_before_running_anything() {
    let m = Machine::new(Config::default());
    let not_x64 = patched("not-x64.sys", |b| {
        let o = pe_offset(b) + 4;
        b[o..o + 2].copy_from_slice(&0x14Cu16.to_le_bytes());
    });
    assert_eq!(
        m.load_driver(&not_x64).err(),
        Some(LoadError::NotX64(0x14C))
    );
    let not_native = patched("not-native.sys", |b| {
        let o = pe_offset(b) + 24 + 68;
        b[o..o + 2].copy_from_slice(&2u16.to_le_bytes());
    });
    assert_eq!(
        m.load_driver(&not_native).err(),
        Some(LoadError::NotNative(2))
    );
    let truncated = patched("truncated.sys", |b| b.truncate(b.len() / 2));
    assert!(matches!(
        m.load_driver(&truncated),
        Err(LoadError::Malformed(_))
    ));
    let garbage = patched("garbage.sys", |b| {
        b.iter_mut().for_each(|x| *x = x.wrapping_mul(31))
    });
    assert!(matches!(
        m.load_driver(&garbage),
        Err(LoadError::Malformed(_))
    ));
    assert!(matches!(
        m.load_driver("/nonexistent/x.sys"),
        Err(LoadError::Io(_))
    ));
    // Rename two imports: both are listed, nothing else.
    let missing = patched("missing.sys", |b| {
        for (from, to) in [
            (&b"KeSetEvent\0"[..], &b"KeSetEvenX\0"[..]),
            (b"IoCreateDevice\0", b"IoCreateDevicX\0"),
        ] {
            let at = b
                .windows(from.len())
                .position(|w| w == from)
                .expect("import name in file");
            b[at..at + to.len()].copy_from_slice(to);
        }
    });
    match m.load_driver(&missing) {
        Err(LoadError::MissingImports(v)) => {
            let mut v = v;
            v.sort();
            assert_eq!(
                v,
                vec!["ntoskrnl.exe!IoCreateDevicX", "ntoskrnl.exe!KeSetEvenX"]
            );
        }
        other => panic!("expected MissingImports, got {:?}", other.err()),
    }
    assert!(m.dbgprint_lines().is_empty());
    assert!(m.bugcheck().is_none());
}

fn ntsim_cli(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ntsim"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_run_json_contract_and_exit_codes() {
    let sys = wdm_sys().to_str().unwrap().to_string();
    let q = format!("{DEVICE}:{IOCTL_QUERY_INFO:#x}:0100000008000000:72");
    let bad = format!("{DEVICE}:{}::0", 0x0022_3FFCu32);
    let (code, out, err) = ntsim_cli(&[
        "run",
        &sys,
        "--ioctl",
        &q,
        "--ioctl",
        &bad,
        "--size-of-work-item",
        "0x60",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["verdict"], "clean");
    assert_eq!(v["driver"], sys.as_str());
    assert_eq!(v["driver_entry"]["status"], 0);
    assert_eq!(v["driver_entry"]["status_name"], "STATUS_SUCCESS");
    assert!(v["bugcheck"].is_null());
    assert_eq!(v["ioctls"][0]["code"], IOCTL_QUERY_INFO);
    assert_eq!(v["ioctls"][0]["status"], 0);
    assert_eq!(v["ioctls"][0]["information"], 72);
    let hex = v["ioctls"][0]["output_hex"].as_str().unwrap();
    assert_eq!(
        &hex[32..40],
        "60000000",
        "IoSizeofWorkItem from --size-of-work-item"
    );
    assert_eq!(
        v["ioctls"][1]["status"],
        STATUS_INVALID_DEVICE_REQUEST as u32
    );
    assert_eq!(
        v["ioctls"][1]["status_name"],
        "STATUS_INVALID_DEVICE_REQUEST"
    );
    assert!(v["leaks"]["pool"].as_array().unwrap().is_empty());

    let (code, out, _) = ntsim_cli(&["run", "/nonexistent.sys", "--json"]);
    assert_eq!(code, Some(2));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["verdict"], "load_error");
    assert!(v["load_error"].as_str().unwrap().contains("nonexistent"));

    assert_eq!(ntsim_cli(&["run"]).0, Some(1));
    assert_eq!(ntsim_cli(&["run", &sys, "--ioctl", "nonsense"]).0, Some(1));
    assert_eq!(ntsim_cli(&["run", &sys, "--verifier", "maybe"]).0, Some(1));
    let (code, out, _) = ntsim_cli(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("EXIT CODES"));
    let (code, out, _) = ntsim_cli(&["imports"]);
    assert_eq!(code, Some(0));
    for name in nt_abi::imports::all_imports() {
        assert!(
            out.lines().any(|l| l == format!("ntoskrnl.exe!{name}")),
            "{name}"
        );
    }
    let (code, out, _) = ntsim_cli(&["run", &sys, "--ioctl", &q]);
    assert_eq!(code, Some(0));
    assert!(out.contains("verdict: clean"), "{out}");
}

#[test]
fn the_loader_survives_corrupted_headers() {
    // Deterministic mutations of the headers and the first pages (import/reloc tables live in
    // .rdata/.reloc further on, so also hit the whole file sparsely). Every outcome must be a
    // clean Ok or Err — never a panic or a crash — and nothing may run.
    let original = std::fs::read(wdm_sys()).unwrap();
    let m = Machine::new(Config::default());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("loader-fuzz");
    std::fs::create_dir_all(&dir).unwrap();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut ok, mut err) = (0, 0);
    for i in 0..600 {
        let mut b = original.clone();
        let flips = 1 + (next() % 4) as usize;
        for _ in 0..flips {
            let span = if i % 2 == 0 {
                0x400.min(b.len())
            } else {
                b.len()
            };
            let at = (next() as usize) % span;
            b[at] = next() as u8;
        }
        let p = dir.join(format!("m{i}.sys"));
        std::fs::write(&p, &b).unwrap();
        match m.load_driver(&p) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    assert!(err > 0, "some mutations must be refused");
    assert!(ok + err == 600);
    assert!(
        m.dbgprint_lines().is_empty() && m.bugcheck().is_none(),
        "nothing ran"
    );
}

/// File offset of the entry point (DriverEntry) of a PE image.
fn entry_file_offset(b: &[u8]) -> usize {
    let nt = pe_offset(b);
    let fh = nt + 4;
    let nsec = u16::from_le_bytes(b[fh + 2..fh + 4].try_into().unwrap()) as usize;
    let opt_size = u16::from_le_bytes(b[fh + 16..fh + 18].try_into().unwrap()) as usize;
    let oh = fh + 20;
    let entry = u32::from_le_bytes(b[oh + 16..oh + 20].try_into().unwrap()) as usize;
    for i in 0..nsec {
        let s = oh + opt_size + i * 40;
        let rd = |o: usize| u32::from_le_bytes(b[s + o..s + o + 4].try_into().unwrap()) as usize;
        let (vsize, rva, raw) = (rd(8), rd(12), rd(20));
        if entry >= rva && entry < rva + vsize {
            return raw + (entry - rva);
        }
    }
    panic!("entry point not in a section")
}

#[test]
fn cli_timeout_reports_a_hung_driver_entry() {
    // `jmp $` at DriverEntry: the driver never returns.
    let hung = patched("hung-entry.sys", |b| {
        let at = entry_file_offset(b);
        b[at..at + 2].copy_from_slice(&[0xEB, 0xFE]);
    });
    let t0 = std::time::Instant::now();
    let (code, out, err) = ntsim_cli(&["run", hung.to_str().unwrap(), "--timeout", "1", "--json"]);
    assert!(t0.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(code, Some(1), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["verdict"], "timeout");
    assert_eq!(v["timed_out_in"], "DriverEntry");
    assert!(v["bugcheck"].is_null());
}
