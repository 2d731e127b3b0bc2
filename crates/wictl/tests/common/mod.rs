//! Shared by wictl's CLI tests: the workspace root and the real cross-built driver, the device
//! `wictl --ntsim` drives. (The driver's own behavioural specification lives in the driver
//! package's `tests/` at the repository root.)
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The cross-built `wdm_workitem.sys` (built once per test binary). Tests never install
/// anything: without a cross toolchain this fails with the command to install one.
pub fn sys() -> &'static Path {
    static SYS: OnceLock<PathBuf> = OnceLock::new();
    SYS.get_or_init(|| {
        let tc = xbuild::locate_toolchain(false)
            .unwrap_or_else(|e| panic!("no toolchain can cross-build the driver: {e}"));
        xbuild::build_driver(&tc, true, false).expect("cross-build of wdm_workitem.sys")
    })
}
