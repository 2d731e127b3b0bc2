//! Remove locks end to end through a C fixture driver (`fixtures/c/remlock.c`, and
//! `remlock_checked.c`: the same driver built with DBG=1, whose IO_REMOVE_LOCK has the debug
//! block): every IRP holds the lock while in flight, background work holds it too, and
//! DriverUnload's IoReleaseRemoveLockAndWait waits for all of them; afterwards
//! IoAcquireRemoveLock returns STATUS_DELETE_PENDING. Under `Verifier::Standard` (special pool
//! on); a release with a tag nobody acquired is 0xC4/0xD5.
//!
//! Missing clang/lld/llvm/mingw-w64 FAILS these tests naming the package, unless
//! `WDM_ALLOW_SKIP=1` (`cargo xtask test` installs them first).
use std::sync::Arc;
use std::time::{Duration, Instant};

use nt_abi::*;
use ntsim::{Config, Driver, Handle, Machine, Verifier};

mod c_fixtures;
mod cli_support;
use c_fixtures::{Rig, dbg_default_info, ioctl_code, words};

const DEV: &str = r"\\.\RemLock";

fn code(n: u32) -> u32 {
    ioctl_code(0xB00 + n, METHOD_BUFFERED)
}

fn start(name: &'static str, verifier: Verifier) -> Option<(Arc<Machine>, Driver)> {
    let rig = Rig::start(
        name,
        DEV,
        Config {
            dbg_filter: dbg_default_info(),
            verifier,
            ..Config::default()
        },
    )?;
    Some((rig.machine, rig.driver))
}

fn report(h: &Handle) -> Vec<u64> {
    let r = h.device_io_control(code(0), &[], 40).expect("no bug check");
    assert_eq!(r.status, STATUS_SUCCESS);
    words(&r.output)
}

fn check_unload_waits(name: &'static str, size: u64, checked: bool) {
    let Some((machine, driver)) = start(name, Verifier::Standard) else {
        return;
    };
    let h = machine
        .open(DEV, GENERIC_READ | GENERIC_WRITE)
        .expect("open");
    let r = report(&h);
    assert_eq!(r[0], size, "sizeof(IO_REMOVE_LOCK) = RemlockSize");
    // The initial bias (1) and this IOCTL's acquisition.
    assert_eq!((r[1], r[2]), (2, 0), "IoCount, Removed: {r:?}");
    if checked {
        assert_eq!(r[3] as u32 as i32, REMLOCK_SIGNATURE, "Dbg.Signature");
        assert_eq!(r[4], 100, "Dbg.HighWatermark");
    }
    // An IRP pended for 300 ms holds the lock while in flight.
    let p = h
        .device_io_control_overlapped(code(2), &300u32.to_le_bytes(), 0)
        .expect("no bug check");
    assert!(p.returned_pending());
    assert_eq!(report(&h)[1], 3, "bias + the pended IRP + this IOCTL");
    let done = p.wait(Duration::from_secs(10)).unwrap().expect("completed");
    assert_eq!(done.status, STATUS_SUCCESS);
    // Background work holding the lock for 1.5 s, still running when DriverUnload starts
    // (with room for a loaded machine's delays before the unload begins).
    let r = h
        .device_io_control(code(1), &1500u32.to_le_bytes(), 0)
        .expect("no bug check");
    assert_eq!(r.status, STATUS_SUCCESS);
    h.close().expect("no bug check");
    let t0 = Instant::now();
    let audit = driver.unload().expect("unload");
    assert!(audit.is_clean(), "{audit:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "DriverUnload waited for the background work ({:?})",
        t0.elapsed()
    );
    let lines = machine.dbgprint_lines();
    let at = |s: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(s))
            .unwrap_or_else(|| panic!("no {s:?} in {lines:?}"))
    };
    assert!(at("remlock: unload waiting") < at("remlock: background done"));
    assert!(at("remlock: background done") < at("remlock: unload wait returned"));
    assert!(
        lines.contains(&"remlock: unload wait returned, acquire now 0xc0000056".to_string()),
        "STATUS_DELETE_PENDING after IoReleaseRemoveLockAndWait: {lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("ASSERT")),
        "no DDK assertion failed: {lines:?}"
    );
    assert!(machine.bugcheck().is_none());
}

#[test]
fn free_build_lock_unload_waits_for_in_flight_holders() {
    check_unload_waits("remlock", REMLOCK_SIZE_FREE as u64, false);
}

#[test]
fn checked_build_lock_unload_waits_for_in_flight_holders() {
    check_unload_waits("remlock_checked", REMLOCK_SIZE_CHECKED as u64, true);
}

/// Releasing with a tag no acquisition used is 0xC4/0xD5 under I/O verification (p2 the lock,
/// p3 the tag); with the verifier off it goes unnoticed.
#[test]
fn release_with_an_unknown_tag_is_0xc4_0xd5() {
    let Some((machine, _driver)) = start("remlock", Verifier::Standard) else {
        return;
    };
    let h = machine.open(DEV, GENERIC_READ).expect("open");
    let bc = h.device_io_control(code(3), &[], 0).expect_err("bug check");
    assert_eq!(bc.code, 0xC4);
    assert_eq!(bc.parameters[0], 0xD5);
    assert_eq!(bc.parameters[2], 0x5EED);
    assert!(bc.meaning.contains("remove lock"), "{}", bc.meaning);
    assert!(bc.parameters[1] != 0);

    let Some((machine, _driver)) = start("remlock", Verifier::Off) else {
        return;
    };
    let h = machine.open(DEV, GENERIC_READ).expect("open");
    let r = h.device_io_control(code(3), &[], 0).expect("no bug check");
    assert_eq!(r.status, STATUS_SUCCESS);
}

/// The CLI drives the same driver clean under the verifier (special pool on).
#[test]
fn cli_run_is_clean() {
    let Some(sys) = c_fixtures::fixture("remlock") else {
        return;
    };
    let bg = format!(r"{DEV}:{:#x}:c8000000", code(1));
    let rep = format!(r"{DEV}:{:#x}::40", code(0));
    let run = cli_support::run_json_logged(&sys, &["--ioctl", &bg, "--ioctl", &rep]);
    assert_eq!(run.exit, Some(0), "{run:#?}");
    let j = run.json();
    assert_eq!(j["verdict"], "clean");
    assert!(
        j["dbgprint"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "remlock: unload wait returned, acquire now 0xc0000056")
    );
}
