//! A driver outside the project's driver package, written as a third party would write it:
//! `examples/thirdparty-driver` (its own workspace, io-workitem's public API only, nt-abi through
//! io-workitem's re-export). Cross-built for x64 through xbuild (the same recipe as the main
//! driver), loaded in ntsim with Driver Verifier rules on: DriverEntry starts its requeue chains,
//! every routine runs, unload drains and frees, the audit is clean (no pool, device, work item
//! or reference left) and nothing bug-checks. It is also cross-built for ARM64, which ntsim
//! cannot load (it runs x64 images only).
#![cfg(not(loom))]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use nt_abi::STATUS_SUCCESS;
use ntsim::{Config, Machine, Verifier};

/// `CHAINS` and `HOPS` of the example (src/lib.rs).
const CHAINS: u64 = 8;
const HOPS: u64 = 4;

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/thirdparty-driver")
        .canonicalize()
        .expect("examples/thirdparty-driver")
}

fn build(target: &str) -> PathBuf {
    let tc =
        xbuild::locate_toolchain(false).expect("cross toolchain (cargo xtask test installs it)");
    let dir = example_dir();
    xbuild::build_sys_for(
        &tc,
        &xbuild::SysBuild {
            manifest_path: &dir.join("Cargo.toml"),
            package: "thirdparty-driver",
            release: true,
            target_dir: &xbuild::workspace_root().join("target/sys-thirdparty"),
            features: None,
            no_default_features: false,
            verbose: false,
        },
        target,
    )
    .expect("cross-build examples/thirdparty-driver")
}

fn x64_sys() -> &'static Path {
    static SYS: OnceLock<PathBuf> = OnceLock::new();
    SYS.get_or_init(|| build(xbuild::TARGET))
}

#[test]
fn thirdparty_driver_runs_its_chains_and_unloads_clean_in_ntsim() {
    let m = Machine::new(Config {
        verifier: Verifier::Standard,
        ..Config::default()
    });
    let d = m.load_driver(x64_sys()).expect("load the example driver");
    for name in [
        "IoInitializeWorkItem",
        "IoQueueWorkItem",
        "IoUninitializeWorkItem",
    ] {
        assert!(
            d.image()
                .imports
                .iter()
                .any(|i| i == &format!("ntoskrnl.exe!{name}")),
            "{name} not imported"
        );
    }
    assert_eq!(d.start().expect("DriverEntry"), STATUS_SUCCESS);
    assert!(
        m.wait_work_items_idle(Duration::from_secs(30)),
        "chains did not finish"
    );
    assert_eq!(m.work_item_routines_run(), CHAINS * (HOPS + 1));
    let report = d.unload().expect("unload");
    assert!(report.is_clean(), "unload audit: {report:?}");
    assert_eq!(m.bugcheck(), None);
    assert_eq!(m.pool_stats().outstanding_blocks, 0);
}

#[test]
fn thirdparty_driver_cross_builds_for_arm64() {
    let sys = build(xbuild::ARM64_TARGET);
    let data = std::fs::read(&sys).unwrap();
    // PE signature offset at 0x3C, then "PE\0\0" and the COFF header's Machine.
    let pe = u32::from_le_bytes(data[0x3C..0x40].try_into().unwrap()) as usize;
    assert_eq!(&data[pe..pe + 4], b"PE\0\0");
    let machine = u16::from_le_bytes(data[pe + 4..pe + 6].try_into().unwrap());
    assert_eq!(machine, nt_abi::pe::IMAGE_FILE_MACHINE_ARM64);
    // ntsim runs x64 images only, and says so instead of trying.
    let m = Machine::new(Config::default());
    let refused = m
        .load_driver(&sys)
        .err()
        .expect("ntsim loaded an ARM64 image");
    assert_eq!(
        refused,
        ntsim::LoadError::NotX64(nt_abi::pe::IMAGE_FILE_MACHINE_ARM64)
    );
    assert!(
        refused.to_string().contains("not an x64 image"),
        "{refused}"
    );
}
