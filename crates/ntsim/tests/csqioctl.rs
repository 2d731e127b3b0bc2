//! Asynchronous I/O, cancellation and cancel-safe queues end to end through a C fixture driver
//! (`fixtures/c/csqioctl.c`): IOCTLs of all four methods, synchronous and overlapped; requests
//! pended in an IoCsqInitializeEx queue and completed by a later IOCTL, removed by context,
//! refused by the insert routine, cancelled with `Pending::cancel` (IoCancelIrp → the CSQ's
//! cancel routine) and by handle rundown; the cancel spin lock's IRQLs and the process exports
//! as the driver sees them. Every run is under `Verifier::Standard` (special pool on) and must
//! unload clean.
//!
//! Missing clang/lld/llvm/mingw-w64 FAILS these tests naming the package, unless
//! `WDM_ALLOW_SKIP=1` (`cargo xtask test` installs them first).
use std::time::Duration;

use nt_abi::*;
use ntsim::{Config, Handle, Pending, Verifier};

mod c_fixtures;
mod cli_support;
use c_fixtures::{Rig, call, dbg_default_info, ioctl_code, le_bytes as u64s, words};

const DEV: &str = r"\\.\CsqIoctl";
const SHORT: Duration = Duration::from_millis(200);
const LONG: Duration = Duration::from_secs(10);

fn code(n: u32, method: u32) -> u32 {
    ioctl_code(0xA00 + n, method)
}

fn b(n: u32) -> u32 {
    code(n, METHOD_BUFFERED)
}

impl Rig {
    fn new() -> Option<Rig> {
        Rig::start(
            "csqioctl",
            DEV,
            Config {
                dbg_filter: dbg_default_info(),
                verifier: Verifier::Standard,
                ..Config::default()
            },
        )
    }
}

fn pend(h: &Handle, key: u64) -> Pending {
    let p = h
        .device_io_control_overlapped(b(1), &u64s(&[key]), 8)
        .expect("no bug check");
    assert!(p.returned_pending(), "the CSQ pends it");
    assert_eq!(p.dispatch_status(), STATUS_PENDING);
    p
}

fn queued(h: &Handle) -> u64 {
    words(&call(h, b(7), &[], 8).output)[0]
}

/// The echo IOCTL through each method, synchronous and overlapped (a request that completes
/// in its dispatch routine comes back from the overlapped call already complete).
#[test]
fn all_four_methods_synchronous_and_overlapped() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open();
    for m in [
        METHOD_BUFFERED,
        METHOD_IN_DIRECT,
        METHOD_OUT_DIRECT,
        METHOD_NEITHER,
    ] {
        let r = call(&h, code(0, m), b"abcdef", 4);
        assert_eq!(r.status, STATUS_SUCCESS, "method {m}: {r:?}");
        assert_eq!(r.information, 4);
        assert_eq!(
            r.output,
            b"abcd".iter().map(|x| x ^ 0x5A).collect::<Vec<_>>()
        );
        let p = h
            .device_io_control_overlapped(code(0, m), b"xyz", 3)
            .expect("no bug check");
        assert!(!p.returned_pending(), "completed in dispatch");
        assert_eq!(p.dispatch_status(), STATUS_SUCCESS);
        assert_eq!(p.irp(), None);
        let r = p.try_result().expect("already complete");
        assert_eq!(
            r.output,
            b"xyz".iter().map(|x| x ^ 0x5A).collect::<Vec<_>>()
        );
    }
    drop(h);
    rig.finish();
}

/// A pended IOCTL returns at once; completion (status, Information, output copied back) is
/// observed later, after another IOCTL completes it; polling before then sees nothing.
#[test]
fn overlapped_request_completes_later_through_the_queue() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open();
    let p = pend(&h, 42);
    assert!(p.irp().is_some());
    assert!(p.try_result().is_none(), "still pending");
    assert_eq!(p.wait(SHORT).expect("no bug check"), None, "times out");
    assert_eq!(queued(&h), 1);
    // No IRP with key 7 is queued.
    assert_eq!(
        call(&h, b(2), &u64s(&[7, 1]), 8).status,
        STATUS_UNSUCCESSFUL
    );
    let r = call(&h, b(2), &u64s(&[42, 0x1000]), 8);
    assert_eq!((r.status, words(&r.output)), (STATUS_SUCCESS, vec![1]));
    let done = p.wait(LONG).expect("no bug check").expect("completed");
    assert_eq!(done.status, STATUS_SUCCESS);
    assert_eq!(done.information, 8);
    assert_eq!(words(&done.output), vec![0x1000 ^ 42]);
    assert_eq!(p.try_result(), Some(done), "the result stays readable");
    assert_eq!(queued(&h), 0);
    drop(h);
    rig.finish();
}

/// `Pending::cancel` is IoCancelIrp: the CSQ's cancel routine runs (TRUE), removes the IRP
/// through CsqRemoveIrp and hands it to CsqCompleteCanceledIrp: STATUS_CANCELLED. A second
/// cancel, of a completed request, calls nothing (FALSE).
#[test]
fn cancel_runs_the_queues_cancel_routine() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open();
    let a = pend(&h, 1);
    let keep = pend(&h, 2);
    assert_eq!(queued(&h), 2);
    assert!(
        a.cancel().expect("no bug check"),
        "a cancel routine was called"
    );
    let r = a.wait(LONG).expect("no bug check").expect("completed");
    assert_eq!((r.status, r.information), (STATUS_CANCELLED, 0));
    assert!(!a.cancel().expect("no bug check"), "already completed");
    assert!(
        rig.machine
            .dbgprint_lines()
            .contains(&"csq: cancelled in the requesting process".to_string()),
        "CancelIoEx runs the cancel routine in the requester's context: {:?}",
        rig.machine.dbgprint_lines()
    );
    assert_eq!(queued(&h), 1, "only the cancelled IRP left the queue");
    assert_eq!(keep.wait(SHORT).expect("no bug check"), None);
    // CancelIo cancels the rest of the handle's requests.
    assert_eq!(h.cancel_io().expect("no bug check"), 1);
    let r = keep.wait(LONG).expect("no bug check").expect("completed");
    assert_eq!(r.status, STATUS_CANCELLED);
    drop(h);
    rig.finish();
}

/// IoCsqRemoveIrp finds an IRP by the IO_CSQ_IRP_CONTEXT its insert filled in; once the IRP
/// was cancelled the context no longer names it and the remove returns NULL.
#[test]
fn remove_by_context_and_after_cancel() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open();
    let slot = |n: u32| n.to_le_bytes().to_vec();
    let p0 = h
        .device_io_control_overlapped(b(3), &slot(0), 0)
        .expect("no bug check");
    let p1 = h
        .device_io_control_overlapped(b(3), &slot(1), 0)
        .expect("no bug check");
    assert!(p0.returned_pending() && p1.returned_pending());
    let r = call(&h, b(4), &slot(0), 8);
    assert_eq!(words(&r.output), vec![1], "removed by context");
    assert_eq!(
        p0.wait(LONG).expect("no bug check").map(|r| r.status),
        Some(STATUS_SUCCESS)
    );
    assert!(p1.cancel().expect("no bug check"));
    assert_eq!(
        p1.wait(LONG).expect("no bug check").map(|r| r.status),
        Some(STATUS_CANCELLED)
    );
    let r = call(&h, b(4), &slot(1), 8);
    assert_eq!(
        words(&r.output),
        vec![0],
        "the cancel routine cleared Context->Irp"
    );
    drop(h);
    rig.finish();
}

/// IoCsqInsertIrpEx returns what the queue's CsqInsertIrpEx returned and queues nothing on a
/// refusal; IoCsqInsertIrp (an IoCsqInitialize queue) always queues.
#[test]
fn insert_ex_refusal_and_plain_insert() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open();
    let p = h
        .device_io_control_overlapped(b(1), &u64s(&[0xDEAD]), 8)
        .expect("no bug check");
    assert!(!p.returned_pending());
    assert_eq!(p.dispatch_status(), STATUS_INVALID_PARAMETER);
    assert_eq!(queued(&h), 0);
    let plain = h
        .device_io_control_overlapped(b(13), &u64s(&[77]), 8)
        .expect("no bug check");
    assert!(plain.returned_pending());
    let r = call(&h, b(2), &u64s(&[77, 5]), 8);
    assert_eq!(words(&r.output), vec![1]);
    assert_eq!(
        words(&plain.wait(LONG).unwrap().unwrap().output),
        vec![5 ^ 77]
    );
    drop(h);
    rig.finish();
}

/// IoCancelIrp on an IRP without a cancel routine returns FALSE and sets Irp->Cancel; the
/// queue then refuses to keep the cancelled IRP and completes it STATUS_CANCELLED.
#[test]
fn self_cancel_before_insert() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open();
    let p = h
        .device_io_control_overlapped(b(6), &[], 0)
        .expect("no bug check");
    let r = p.wait(LONG).unwrap().unwrap();
    assert_eq!(r.status, STATUS_CANCELLED);
    assert!(
        rig.machine
            .dbgprint_lines()
            .iter()
            .any(|l| l == "csq: self-cancel returned 0, Cancel 1"),
        "{:?}",
        rig.machine.dbgprint_lines()
    );
    assert_eq!(queued(&h), 0);
    drop(h);
    rig.finish();
}

/// The cancel spin lock raises to DISPATCH_LEVEL and IoReleaseCancelSpinLock restores the
/// caller's IRQL; the dispatch routine of a user request runs in the requesting process.
#[test]
fn cancel_spin_lock_irqls_and_processes() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open();
    let r = call(&h, b(5), &[], 64);
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(
        words(&r.output),
        vec![
            1,
            1,
            0,
            1,
            PASSIVE_LEVEL as u64,
            DISPATCH_LEVEL as u64,
            0,
            0
        ]
    );
    drop(h);
    rig.finish();
}

/// IoReleaseCancelSpinLock is KeReleaseSpinLock on the cancel spin lock: released at
/// PASSIVE_LEVEL it is 0xC4/0x32 with the verifier.
#[test]
fn releasing_the_cancel_lock_at_passive_is_0xc4_0x32() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open();
    let r = h.device_io_control(b(8), &[], 0);
    let bc = r.expect_err("bug check");
    assert_eq!(bc.code, 0xC4);
    assert_eq!(bc.parameters[0], 0x32);
    assert_eq!(bc.parameters[1], PASSIVE_LEVEL as u64);
}

/// Closing a handle with requests pending: IRP_MJ_CLEANUP lets the driver complete them
/// (mode 0); when it leaves them (mode 1), the I/O manager's rundown cancels them through
/// their cancel routines; IRP_MJ_CLOSE comes after they completed.
#[test]
fn close_with_pending_requests_cleanup_then_rundown() {
    let Some(rig) = Rig::new() else { return };
    for mode in [0u32, 1] {
        let ctl = rig.open();
        call(&ctl, b(9), &mode.to_le_bytes(), 0);
        let h = rig.open();
        let p = pend(&h, 100 + mode as u64);
        let before = words(&call(&ctl, b(12), &[], 24).output);
        h.close().expect("no bug check");
        let r = p
            .wait(Duration::ZERO)
            .unwrap()
            .expect("completed by the close");
        assert_eq!(r.status, STATUS_CANCELLED, "mode {mode}");
        let after = words(&call(&ctl, b(12), &[], 24).output);
        assert_eq!(
            (after[1], after[2]),
            (before[1] + 1, before[2] + 1),
            "the closed handle got CLEANUP and CLOSE"
        );
        assert_eq!(queued(&ctl), 0);
        call(&ctl, b(9), &0u32.to_le_bytes(), 0);
    }
    rig.finish();
}

/// A request that cannot be cancelled keeps its file object: closing the handle sends
/// IRP_MJ_CLEANUP, not IRP_MJ_CLOSE, until the driver completes the IRP; then IRP_MJ_CLOSE
/// follows, and the driver can be unloaded clean.
#[test]
fn uncancelable_request_defers_irp_mj_close() {
    let Some(rig) = Rig::new() else { return };
    let ctl = rig.open();
    let h = rig.open();
    let p = h
        .device_io_control_overlapped(b(10), &[], 0)
        .expect("no bug check");
    assert!(p.returned_pending());
    let before = words(&call(&ctl, b(12), &[], 24).output);
    h.close().expect("no bug check");
    let after = words(&call(&ctl, b(12), &[], 24).output);
    assert_eq!(after[1], before[1] + 1, "IRP_MJ_CLEANUP sent");
    assert_eq!(
        after[2], before[2],
        "IRP_MJ_CLOSE not yet: an IRP holds the file"
    );
    assert_eq!(words(&call(&ctl, b(11), &[], 8).output), vec![1]);
    let r = p.wait(LONG).unwrap().expect("completed");
    assert_eq!(r.status, STATUS_SUCCESS);
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let now = words(&call(&ctl, b(12), &[], 24).output);
        if now[2] == before[2] + 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "IRP_MJ_CLOSE never came: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(ctl);
    rig.finish();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The CLI: `,overlapped` requests return at once; one is completed by a later IOCTL, one is
/// cancelled with `--cancel`, one completes in its dispatch routine, one is left pending and
/// cancelled by the rundown when its handle closes; records come in request order with their
/// final status, and the run is clean under the verifier.
#[test]
fn cli_overlapped_requests_and_cancel() {
    let Some(sys) = c_fixtures::fixture("csqioctl") else {
        return;
    };
    let spec = |n: u32, m: u32, input: &[u8], out: u32, ov: bool| {
        format!(
            r"{DEV}:{:#x}:{}:{out}{}",
            code(n, m),
            hex(input),
            if ov { ",overlapped" } else { "" }
        )
    };
    let args = [
        spec(1, METHOD_BUFFERED, &u64s(&[5]), 8, true),
        spec(1, METHOD_BUFFERED, &u64s(&[6]), 8, true),
        spec(2, METHOD_BUFFERED, &u64s(&[5, 0x30]), 8, false),
        spec(0, METHOD_NEITHER, b"hi", 2, true),
        spec(1, METHOD_BUFFERED, &u64s(&[9]), 8, true),
    ];
    let run = cli_support::run_json_logged(
        &sys,
        &[
            "--ioctl", &args[0], "--ioctl", &args[1], "--ioctl", &args[2], "--cancel", "1",
            "--cancel", "0", "--ioctl", &args[3], "--ioctl", &args[4],
        ],
    );
    assert_eq!(run.exit, Some(0), "{run:#?}");
    let j = run.json();
    assert_eq!(j["verdict"], "clean");
    let r = j["ioctls"].as_array().expect("requests");
    assert_eq!(r.len(), 5, "{r:#?}");
    assert_eq!(r[0]["status_name"], "STATUS_SUCCESS");
    assert_eq!(r[0]["output_hex"], hex(&u64s(&[0x30 ^ 5])));
    assert_eq!(r[0]["overlapped"]["pending"], true);
    assert_eq!(
        r[0]["overlapped"]["cancel_routine_called"], false,
        "completed before its --cancel"
    );
    assert_eq!(r[1]["status_name"], "STATUS_CANCELLED");
    assert_eq!(r[1]["overlapped"]["cancel_routine_called"], true);
    assert_eq!(r[2]["overlapped"], serde_json::Value::Null);
    assert_eq!(r[2]["output_hex"], hex(&u64s(&[1])));
    assert_eq!(r[3]["overlapped"]["pending"], false);
    assert_eq!(r[3]["output_hex"], hex(&[b'h' ^ 0x5A, b'i' ^ 0x5A]));
    assert_eq!(
        r[4]["status_name"], "STATUS_CANCELLED",
        "cancelled at rundown"
    );
    assert_eq!(
        r[4]["overlapped"]["cancel_routine_called"],
        serde_json::Value::Null
    );
}

#[test]
fn cli_cancel_arguments_are_checked() {
    let ov = format!(r"{DEV}:{:#x}::8,overlapped", b(1));
    let sync = format!(r"{DEV}:{:#x}::8", b(1));
    for (args, expect) in [
        (vec!["--cancel", "0"], "only 0 request(s) come before it"),
        (vec!["--ioctl", &sync, "--cancel", "0"], "is not overlapped"),
        (vec!["--ioctl", &ov, "--cancel", "1"], "only 1 request(s)"),
        (vec!["--ioctl", &ov, "--cancel", "-1"], "bad --cancel"),
        (vec!["--ioctl", &ov, "--cancel"], "--cancel needs a value"),
    ] {
        let mut a = vec!["run", "no-such.sys"];
        a.extend(args.iter().copied());
        let run = cli_support::ntsim(&a);
        assert_eq!(run.exit, Some(1), "{a:?}: {run:#?}");
        assert!(run.stdout.is_empty(), "nothing ran");
        assert!(run.stderr.contains(expect), "{a:?}: {}", run.stderr);
    }
}

/// IoCancelIrp called by the driver on a queued IRP returns TRUE: the CSQ's cancel routine
/// ran and the IRP completed STATUS_CANCELLED.
#[test]
fn driver_side_io_cancel_irp_returns_true() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open();
    let p = pend(&h, 3);
    let r = call(&h, b(14), &[], 8);
    assert_eq!(words(&r.output), vec![1], "IoCancelIrp returned TRUE");
    let done = p.wait(LONG).unwrap().expect("completed");
    assert_eq!(done.status, STATUS_CANCELLED);
    assert_eq!(queued(&h), 0);
    drop(h);
    rig.finish();
}

/// IoAcquireCancelSpinLock above DISPATCH_LEVEL is a spin-lock acquisition above
/// DISPATCH_LEVEL: with IRQL checking (the rig runs `/standard`) 0xC4/0x42 (p2 the IRQL), as
/// for every spin lock (`verifier::locks`); without it Windows' 0xA.
#[test]
fn acquiring_the_cancel_lock_at_high_level_is_0xc4_42() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open();
    let bc = h.device_io_control(b(15), &[], 0).expect_err("bug check");
    assert_eq!(bc.code, 0xC4);
    assert_eq!(bc.parameters[0], 0x42);
    assert_eq!(bc.parameters[1], HIGH_LEVEL as u64);
}

/// `ntsim imports` lists every export of this stream.
#[test]
fn ntsim_imports_lists_the_async_exports() {
    let run = cli_support::ntsim(&["imports"]);
    assert_eq!(run.exit, Some(0), "{run:#?}");
    // FIXED_ARITY_GROUPS[1] is this stream's group (imports/io_async.rs).
    let names = nt_abi::imports::FIXED_ARITY_GROUPS[1];
    assert!(
        names.contains(&"IoCsqInsertIrpEx") && names.len() == 17,
        "{names:?}"
    );
    for name in names {
        assert!(
            run.stdout.contains(&format!("ntoskrnl.exe!{name}\n")),
            "{name} missing"
        );
    }
}
