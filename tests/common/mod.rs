//! Shared by the driver's end-to-end tests: the real cross-built `wdm_workitem.sys` (built once
//! per test binary, or the image `cargo xtask test` just built), a fresh ntsim machine per test,
//! and request helpers that check "rejected and nothing changed".
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ioctl::{RunCyclesRequest, StatsResponse, Wire};
use nt_abi::{FILE_READ_DATA, GENERIC_READ, GENERIC_WRITE};
use wictl::backend::{Backend, DeviceHandle};
use wictl::client::Client;
use wictl::ntsim_backend::{NtsimBackend, Options};
use wictl::status::{status_code, status_sentence};

/// The driver package's root, which is also the workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap()
}

/// The cross-built release `wdm_workitem.sys`: `WDM_WORKITEM_SYS_RELEASE` when set (`cargo xtask
/// test` sets it to the image it just built), else built once per test binary through xbuild,
/// the recipe `cargo xtask build-sys --release` uses. Tests never install anything: without a
/// cross toolchain this fails with the command to install one (`cargo xtask test` installs it).
pub fn sys() -> &'static Path {
    static SYS: OnceLock<PathBuf> = OnceLock::new();
    SYS.get_or_init(|| {
        if let Some(p) = std::env::var_os("WDM_WORKITEM_SYS_RELEASE") {
            return PathBuf::from(p);
        }
        let tc = xbuild::locate_toolchain(false)
            .unwrap_or_else(|e| panic!("no toolchain can cross-build the driver: {e}"));
        xbuild::build_driver(&tc, true, false).expect("cross-build of wdm_workitem.sys")
    })
}

/// A fresh machine with the driver loaded and started (verifier on).
pub fn boot() -> NtsimBackend {
    boot_with(&Options::default())
}

pub fn boot_with(opts: &Options) -> NtsimBackend {
    NtsimBackend::load(sys(), opts).unwrap_or_else(|e| panic!("driver did not start: {e}"))
}

pub fn rw(b: &NtsimBackend) -> Arc<dyn DeviceHandle> {
    b.open_mask(GENERIC_READ | GENERIC_WRITE)
        .expect("open read-write")
}

pub fn ro(b: &NtsimBackend) -> Arc<dyn DeviceHandle> {
    b.open_mask(GENERIC_READ).expect("open read-only")
}

pub fn read_data_only(b: &NtsimBackend) -> Arc<dyn DeviceHandle> {
    b.open_mask(FILE_READ_DATA).expect("open FILE_READ_DATA")
}

pub fn stats(h: &dyn DeviceHandle) -> StatsResponse {
    Client::new(h).stats().expect("query stats")
}

/// Run a real request first so the totals are non-zero: "unchanged" then means something.
pub fn seed_stats(h: &dyn DeviceHandle) -> StatsResponse {
    let r = RunCyclesRequest::new(50, 4, ioctl::Mode::UninitInRoutine, 1, 0, 0);
    Client::new(h).run(&r).expect("seeding run");
    let s = stats(h);
    assert_eq!(s.totals.runs, 1);
    assert_eq!(s.totals.cycles_completed, 50);
    s
}

/// Send one request on `h` and check it is rejected with `expected`, returns no bytes, and
/// leaves the statistics (read through `control`) exactly as they were.
pub fn expect_rejected(
    h: &dyn DeviceHandle,
    control: &dyn DeviceHandle,
    what: &str,
    code: u32,
    input: &[u8],
    out_len: u32,
    expected: i32,
) {
    let before = stats(control);
    let reply = h
        .ioctl(code, input, out_len)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        reply.status,
        expected,
        "{what}: got {} ({}), expected {}",
        status_code(reply.status),
        status_sentence(reply.status),
        status_code(expected)
    );
    assert_eq!(
        reply.information, 0,
        "{what}: a rejected request returned bytes"
    );
    let after = stats(control);
    assert_eq!(after, before, "{what}: statistics changed");
}

/// Unload and require the verifier's verdict to be clean.
pub fn assert_clean(b: NtsimBackend) {
    let v = b.unload();
    assert!(v.clean, "verifier verdict:\n{}", v.lines.join("\n"));
}

pub fn bytes<T: Wire>(t: &T) -> Vec<u8> {
    t.as_bytes().to_vec()
}

/// Keep `Backend` in scope for `open`.
pub fn _uses(b: &dyn Backend) -> String {
    b.describe()
}
