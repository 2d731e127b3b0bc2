//! A read/write driver whose requests wait in cancel-safe queues served by a worker system
//! thread (`fixtures/c/rwqueue.c`): writes fill a pipe, reads drain it or wait (cancelably)
//! for a write; synchronous and overlapped requests, cancel, close with a read pending, and a
//! clean unload that stops the thread — under `Verifier::Standard` (special pool on), through
//! the library and the CLI.
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

const DEV: &str = r"\\.\RwQueue";
const LONG: Duration = Duration::from_secs(10);

fn stats_code() -> u32 {
    ioctl_code(0xC00, METHOD_BUFFERED)
}

fn start() -> Option<(Arc<Machine>, Driver)> {
    let rig = Rig::start(
        "rwqueue",
        DEV,
        Config {
            dbg_filter: dbg_default_info(),
            verifier: Verifier::Standard,
            ..Config::default()
        },
    )?;
    Some((rig.machine, rig.driver))
}

/// [bytes in the pipe, reads waiting, served, worker IRQL, worker is a system thread,
/// worker in the System process].
fn stats(h: &Handle) -> Vec<u64> {
    let r = h
        .device_io_control(stats_code(), &[], 48)
        .expect("no bug check");
    assert_eq!(r.status, STATUS_SUCCESS);
    words(&r.output)
}

fn until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + LONG;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn finish(machine: Arc<Machine>, driver: Driver) {
    Rig {
        machine: Arc::clone(&machine),
        driver,
        device: DEV,
        handle: None,
    }
    .finish();
    assert!(
        machine
            .dbgprint_lines()
            .iter()
            .any(|l| l.starts_with("rwqueue: worker stopped after ")),
        "{:?}",
        machine.dbgprint_lines()
    );
}

/// Synchronous writes and reads go through the queue and the worker thread (the I/O manager
/// waits for each pending IRP); the worker runs at PASSIVE_LEVEL as a system thread of the
/// System process.
#[test]
fn synchronous_requests_are_served_by_the_worker_thread() {
    let Some((machine, driver)) = start() else {
        return;
    };
    let h = machine
        .open(DEV, GENERIC_READ | GENERIC_WRITE)
        .expect("open");
    let w = h.write(b"hello").expect("no bug check");
    assert_eq!((w.status, w.information), (STATUS_SUCCESS, 5));
    let r = h.read(3).expect("no bug check");
    assert_eq!(
        (r.status, r.output.as_slice()),
        (STATUS_SUCCESS, &b"hel"[..])
    );
    let r = h.read(10).expect("no bug check");
    assert_eq!(r.output, b"lo");
    let s = stats(&h);
    assert_eq!(s[0], 0);
    assert_eq!(s[2], 3, "served");
    assert_eq!(&s[3..], &[PASSIVE_LEVEL as u64, 1, 1]);
    // A write larger than the pipe: what fits is taken, STATUS_DEVICE_BUSY.
    let w = h.write(&[7u8; 80]).expect("no bug check");
    assert_eq!((w.status, w.information), (STATUS_DEVICE_BUSY, 64));
    assert_eq!(h.read(64).expect("no bug check").output, vec![7u8; 64]);
    drop(h);
    finish(machine, driver);
}

/// An overlapped read on an empty pipe waits in the readers queue; a later write completes it
/// with the written bytes; another is cancelled through the queue's cancel routine; a read
/// still pending when its handle closes is completed by the driver's IRP_MJ_CLEANUP.
#[test]
fn overlapped_reads_wait_for_writes_and_can_be_cancelled() {
    let Some((machine, driver)) = start() else {
        return;
    };
    let h = machine
        .open(DEV, GENERIC_READ | GENERIC_WRITE)
        .expect("open");
    let p = h.read_overlapped(0, 8).expect("no bug check");
    assert!(p.returned_pending());
    until("the read to wait", || stats(&h)[1] == 1);
    assert!(p.try_result().is_none());
    let w = h.write(b"abc").expect("no bug check");
    assert_eq!(w.status, STATUS_SUCCESS);
    let r = p.wait(LONG).expect("no bug check").expect("completed");
    assert_eq!(
        (r.status, r.information, r.output.as_slice()),
        (STATUS_SUCCESS, 3, &b"abc"[..])
    );

    let c = h.read_overlapped(0, 8).expect("no bug check");
    until("the read to wait", || stats(&h)[1] == 1);
    assert!(
        c.cancel().expect("no bug check"),
        "the CSQ's cancel routine ran"
    );
    let r = c.wait(LONG).expect("no bug check").expect("completed");
    assert_eq!((r.status, r.information), (STATUS_CANCELLED, 0));
    assert_eq!(stats(&h)[1], 0);

    let other = machine.open(DEV, GENERIC_READ).expect("open");
    let left = other.read_overlapped(0, 4).expect("no bug check");
    until("the read to wait", || stats(&h)[1] == 1);
    other.close().expect("no bug check");
    let r = left
        .wait(Duration::ZERO)
        .unwrap()
        .expect("completed at IRP_MJ_CLEANUP");
    assert_eq!(r.status, STATUS_CANCELLED);
    // Overlapped writes complete later too (the worker completes them).
    let pw = h.write_overlapped(0, b"xy").expect("no bug check");
    assert!(pw.returned_pending());
    assert_eq!(pw.wait(LONG).unwrap().unwrap().information, 2);
    assert_eq!(h.read(2).unwrap().output, b"xy");
    drop(h);
    finish(machine, driver);
}

/// The CLI: an overlapped read left pending, completed by the following write; clean.
#[test]
fn cli_overlapped_read_completed_by_a_later_write() {
    let Some(sys) = c_fixtures::fixture("rwqueue") else {
        return;
    };
    let run = cli_support::run_json_logged(
        &sys,
        &[
            "--read",
            &format!(r"{DEV}:4,overlapped"),
            "--write",
            &format!(r"{DEV}:61626364"),
            "--read",
            &format!(r"{DEV}:4,overlapped"),
            "--cancel",
            "2",
        ],
    );
    assert_eq!(run.exit, Some(0), "{run:#?}");
    let j = run.json();
    assert_eq!(j["verdict"], "clean");
    let r = j["ioctls"].as_array().unwrap();
    assert_eq!(r[0]["major"], "IRP_MJ_READ");
    assert_eq!(r[0]["overlapped"]["pending"], true);
    assert_eq!(r[0]["output_hex"], "61626364");
    assert_eq!(r[1]["information"], 4);
    assert_eq!(r[2]["status_name"], "STATUS_CANCELLED");
}
