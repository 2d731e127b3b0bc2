//! A driver with a worker system thread, end to end (`fixtures/c/systhread.c`): the thread
//! is started in DriverEntry, fed through a semaphore and a mutex, waits with
//! KeWaitForMultipleObjects, and is stopped in DriverUnload by waiting on its thread object.
//! Also the dispatcher objects' semantics as the driver sees them, and the negative rules
//! (0xC, 0x20, 0x93, 0xA, 0xCE) with their codes and parameters. Under `--verifier standard`.
//!
//! Missing clang/lld/llvm/mingw-w64 FAILS these tests naming the package, unless
//! `WDM_ALLOW_SKIP=1` (`cargo xtask test` installs them first).
use std::path::PathBuf;
use std::time::Duration;

use nt_abi::bugcheck;
use nt_abi::*;
use ntsim::{BugCheck, Config, Verifier};

mod c_fixtures;
mod cli_support;
use c_fixtures::{Rig, bugcheck_within, fixture_ioctl as code, words};

const DEV: &str = r"\\.\NtsimSysThread";

fn fixture() -> Option<PathBuf> {
    c_fixtures::fixture("systhread")
}

impl Rig {
    fn new() -> Option<Rig> {
        rig_with(Verifier::Standard)
    }

    fn call(&self, n: u32, input: &[u8], out: usize) -> Result<Vec<u64>, Box<BugCheck>> {
        let r = self
            .h()
            .device_io_control(code(n), input, out)
            .map_err(Box::new)?;
        assert_eq!(r.status, STATUS_SUCCESS, "IOCTL {n}: {r:?}");
        Ok(words(&r.output))
    }

    fn ok(&self, n: u32, input: &[u8], out: usize) -> Vec<u64> {
        self.call(n, input, out)
            .unwrap_or_else(|b| panic!("IOCTL {n} bug-checked: {b}"))
    }

    /// Wait for a bug check raised on some other thread.
    fn bugcheck_soon(&self) -> BugCheck {
        bugcheck_within(&self.machine, Duration::from_secs(10)).expect("expected a bug check")
    }
}

#[test]
fn the_worker_thread_serves_requests_through_a_semaphore_and_a_mutex_and_stops_at_unload() {
    let Some(rig) = Rig::new() else { return };
    let mut sum = 0;
    for (i, v) in [7u64, 11, 1000, 3].into_iter().enumerate() {
        sum += v;
        let w = rig.ok(0, &v.to_le_bytes(), 72);
        assert_eq!(w[0], i as u64 + 1, "processed");
        assert_eq!(w[1], sum, "the thread's sum");
        assert_eq!(w[2], STATUS_SUCCESS as u64, "the answer event was set");
        let (cid, tid, is_sys, pid, irql, same) = (w[3], w[4], w[5], w[6], w[7], w[8]);
        assert!(cid != 0 && cid % 4 == 0);
        assert_eq!(
            tid, cid,
            "PsGetCurrentThreadId on the thread = its CLIENT_ID"
        );
        assert_eq!(is_sys, 1, "PsIsSystemThread(PsGetCurrentThread()) on it");
        assert_eq!(pid, SYSTEM_PROCESS_ID as u64, "the System process");
        assert_eq!(
            irql, PASSIVE_LEVEL as u64,
            "a system thread starts at PASSIVE_LEVEL"
        );
        assert_eq!(
            same, 1,
            "KeGetCurrentThread() on it is the object the handle names"
        );
    }
    rig.finish();
}

#[test]
fn thread_object_priorities_and_the_dispatch_threads_identity() {
    let Some(rig) = Rig::new() else { return };
    let w = rig.ok(1, &[], 72);
    assert_eq!(w[0], 1, "PsIsSystemThread(thread object)");
    assert_eq!(
        w[1], STATUS_TIMEOUT as u64,
        "a running thread is not signaled"
    );
    assert_eq!(w[2], 8, "a new system thread's priority");
    assert_eq!(w[3], 8, "KeSetPriorityThread returns the old priority");
    assert_eq!(w[4], 12);
    assert_eq!(w[5], 0, "KeSetBasePriorityThread returns the old increment");
    assert_eq!(w[6], 10, "base 8 + 2");
    assert_eq!(
        w[7], 0,
        "a dispatch routine for a user request is not a system thread"
    );
    assert_ne!(
        w[8], SYSTEM_PROCESS_ID as u64,
        "it runs in the requesting process"
    );
    rig.finish();
}

#[test]
fn wait_all_takes_everything_or_nothing_and_wait_any_returns_the_index() {
    let Some(rig) = Rig::new() else { return };
    let w = rig.ok(2, &[], 64);
    assert_eq!(w[0], STATUS_SUCCESS as u64, "WaitAll satisfied");
    assert_eq!(w[1], 0, "and it took the semaphore");
    assert_eq!(
        w[2], STATUS_TIMEOUT as u64,
        "WaitAll with the semaphore at 0"
    );
    assert_eq!((w[3], w[4], w[5]), (1, 1, 0), "took nothing");
    assert_eq!(
        w[6], 1,
        "WaitAny: STATUS_WAIT_1, the semaphore (the sync event is not set)"
    );
    assert_eq!(w[7], 0, "which it took");
    rig.finish();
}

#[test]
fn semaphore_limit_and_mutex_ownership_raise_their_statuses() {
    let Some(rig) = Rig::new() else { return };
    let w = rig.ok(3, &[], 16);
    assert_eq!(w[0], STATUS_SEMAPHORE_LIMIT_EXCEEDED as u32 as u64);
    assert_eq!(w[1], 2, "the count is unchanged");
    let w = rig.ok(4, &[], 56);
    assert_eq!(
        w[..6],
        [1, 0, (-1i64) as u64, (-1i64) as u64, 0, 1],
        "{w:?}"
    );
    assert_eq!(w[6], STATUS_MUTANT_NOT_OWNED as u32 as u64);
    let w = rig.ok(5, &[], 8);
    assert_eq!(
        w[0], STATUS_INVALID_PARAMETER as u32 as u64,
        "not a system thread"
    );
    let w = rig.ok(11, &[], 24);
    assert_eq!(
        w[0], 3,
        "STATUS_WAIT_3 with a caller-supplied wait-block array"
    );
    assert_eq!(w[1], STATUS_SUCCESS as u64, "KeDelayExecutionThread");
    assert!(w[2] >= 200_000, "20 ms of interrupt time passed: {}", w[2]);
    rig.finish();
}

fn expect_ioctl_bugcheck(n: u32) -> Option<(BugCheck, Rig)> {
    let rig = Rig::new()?;
    let b = match rig.call(n, &[], 8) {
        Err(b) => *b,
        Ok(_) => rig.bugcheck_soon(),
    };
    Some((b, rig))
}

#[test]
fn a_user_handle_referenced_with_kernel_access_is_0xc4_f6_with_misc_checks() {
    let Some(rig) = Rig::new() else { return };
    let ev = rig
        .machine
        .create_event(true, false, SYNCHRONIZE | EVENT_MODIFY_STATE);
    let b = *rig
        .call(17, &ev.handle().to_le_bytes(), 0)
        .expect_err("bug check");
    assert_eq!(b.code, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, "{b}");
    assert_eq!(
        b.parameters[..2],
        [
            bugcheck::verifier_locks::USER_HANDLE_KERNEL_ACCESS,
            ev.handle()
        ]
    );
    assert!(b.address.contains("systhread.sys+"), "p4 the driver: {b}");
    // Without the option the reference is taken (KernelMode skips the access check).
    let Some(off) = rig_with(Verifier::Off) else {
        return;
    };
    let ev = off.machine.create_event(true, false, SYNCHRONIZE);
    off.call(17, &ev.handle().to_le_bytes(), 0)
        .expect("no bug check");
    off.finish();
}

#[test]
fn a_user_mode_wait_on_a_stack_event_is_0xc4_123_with_misc_checks() {
    let Some((b, _rig)) = expect_ioctl_bugcheck(18) else {
        return;
    };
    assert_eq!(b.code, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, "{b}");
    assert_eq!(
        b.parameters[0],
        bugcheck::verifier_locks::USER_MODE_WAIT_ON_STACK_OBJECT
    );
    assert_ne!(b.parameters[1], 0, "the event");
    let Some(off) = rig_with(Verifier::Off) else {
        return;
    };
    let r = off
        .h()
        .device_io_control(code(18), &[], 0)
        .expect("no bug check");
    assert_eq!(r.status, STATUS_TIMEOUT);
    off.finish();
}

fn rig_with(verifier: Verifier) -> Option<Rig> {
    Rig::start(
        "systhread",
        DEV,
        Config {
            verifier,
            unload_grace: Duration::from_millis(300),
            ..Config::default()
        },
    )
    .map(Rig::holding_handle)
}

#[test]
fn a_user_event_handle_is_referenced_with_its_access_checked_and_set_by_the_thread() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.h();
    // A handle without EVENT_MODIFY_STATE: a UserMode reference is refused.
    let weak = rig.machine.create_event(true, false, SYNCHRONIZE);
    let r = h
        .device_io_control(code(14), &weak.handle().to_le_bytes(), 0)
        .expect("no bug check");
    assert_eq!(r.status, STATUS_ACCESS_DENIED);
    // Not a handle at all.
    let r = h
        .device_io_control(code(14), &0x7777_7770u64.to_le_bytes(), 0)
        .expect("no bug check");
    assert_eq!(r.status, STATUS_INVALID_HANDLE);
    let ev = rig
        .machine
        .create_event(true, false, SYNCHRONIZE | EVENT_MODIFY_STATE);
    rig.ok(14, &ev.handle().to_le_bytes(), 0);
    assert!(!ev.is_signaled());
    // The application may close its handle: the driver's reference keeps the event.
    let w = rig.ok(0, &5u64.to_le_bytes(), 24);
    assert_eq!(w[0], 1);
    assert!(
        ev.wait(Duration::from_secs(5)),
        "the system thread set the event"
    );
    drop(weak);
    ev.close();
    rig.finish();
}

#[test]
fn more_than_three_objects_without_wait_blocks_is_0xc() {
    let Some((b, _rig)) = expect_ioctl_bugcheck(6) else {
        return;
    };
    assert_eq!(b.code, bugcheck::MAXIMUM_WAIT_OBJECTS_EXCEEDED, "{b}");
    assert_eq!(b.parameters, [0; 4]);
    assert!(b.address.contains("systhread.sys+"), "{}", b.address);
}

#[test]
fn a_system_thread_exiting_at_dispatch_level_is_0x20_with_the_irql() {
    let Some((b, _rig)) = expect_ioctl_bugcheck(7) else {
        return;
    };
    assert_eq!(b.code, bugcheck::KERNEL_APC_PENDING_DURING_EXIT, "{b}");
    assert_eq!(b.parameters, [0, 0, DISPATCH_LEVEL as u64, 0]);
    assert_eq!(b.context, "system thread");
}

/// IOCTL `n` makes a system thread end with APCs disabled: 0x20 with p2 the CombinedApcDisable
/// (SpecialApcDisable << 16 | KernelApcDisable).
fn expect_exit_with_apcs_disabled(n: u32, combined: u64, why: &str) {
    let Some((b, _rig)) = expect_ioctl_bugcheck(n) else {
        return;
    };
    assert_eq!(
        b.code,
        bugcheck::KERNEL_APC_PENDING_DURING_EXIT,
        "{why}: {b}"
    );
    assert_eq!(b.parameters, [0, combined, 0, 0], "{why}");
    assert_eq!(b.context, "system thread");
}

#[test]
fn a_system_thread_exiting_with_a_mutex_is_0x20_with_the_apc_disable_count() {
    expect_exit_with_apcs_disabled(8, 0xFFFF, "a KMUTEX owned: KernelApcDisable −1");
}

#[test]
fn a_system_thread_exiting_in_a_guarded_region_is_0x20_with_special_apc_disable() {
    expect_exit_with_apcs_disabled(19, 0xFFFF_0000, "a guarded region: SpecialApcDisable −1");
}

#[test]
fn a_system_thread_exiting_in_a_critical_region_is_0x20_with_the_same_count() {
    expect_exit_with_apcs_disabled(16, 0xFFFF, "a critical region: KernelApcDisable −1");
}

#[test]
fn a_dispatch_routine_returning_with_a_mutex_is_0xc4_c5_with_io_verification() {
    // Owning a KMUTEX lowers KernelApcDisable, the count the I/O verifier compares around a
    // dispatch routine (Microsoft, Bug Check 0xC4 p1 0xC5).
    let Some((b, _rig)) = expect_ioctl_bugcheck(15) else {
        return;
    };
    assert_eq!(b.code, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, "{b}");
    assert_eq!(
        b.parameters[0],
        bugcheck::verifier_locks::DISPATCH_CHANGED_APC_DISABLE,
        "{b}"
    );
    assert_eq!(
        b.parameters[2..],
        [0xFFFF, 0],
        "KernelApcDisable −1 now, 0 before"
    );
    assert!(
        b.address.contains("systhread.sys+"),
        "p2 = the dispatch routine: {}",
        b.address
    );
}

#[test]
fn a_dispatch_routine_returning_with_a_mutex_is_0x1_without_the_verifier() {
    let Some(rig) = rig_with(Verifier::Off) else {
        return;
    };
    let b = *rig.call(15, &[], 8).expect_err("bug check");
    assert_eq!(b.code, bugcheck::APC_INDEX_MISMATCH, "{b}");
    assert_eq!(
        b.parameters[1..],
        [0, 0xFFFF, 0],
        "KernelApcDisable −1, a system call"
    );
    assert!(
        b.address.contains("systhread.sys+"),
        "p1 = the dispatch routine: {}",
        b.address
    );
}

#[test]
fn zw_close_of_a_handle_not_open_is_0x93() {
    let Some((b, _rig)) = expect_ioctl_bugcheck(9) else {
        return;
    };
    assert_eq!(b.code, bugcheck::INVALID_KERNEL_HANDLE, "{b}");
    assert_eq!(b.parameters, [0xFFFF_FFFF_8000_0444, 1, 0, 0]);
}

#[test]
fn a_wait_with_a_timeout_at_dispatch_level_is_0xa() {
    let Some((b, _rig)) = expect_ioctl_bugcheck(10) else {
        return;
    };
    assert_eq!(b.code, bugcheck::IRQL_NOT_LESS_OR_EQUAL, "{b}");
    assert_eq!(b.parameters[1], DISPATCH_LEVEL as u64);
    assert_ne!(b.parameters[0], 0, "p1 = the object");
}

#[test]
fn ps_create_system_thread_above_passive_is_ddi_irql_ps_passive() {
    let Some((b, _rig)) = expect_ioctl_bugcheck(13) else {
        return;
    };
    assert_eq!(b.code, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, "{b}");
    assert_eq!(b.parameters[0], bugcheck::ddi_rule::IRQL_PS_PASSIVE);
    assert_ne!(b.parameters[1], 0, "p2 = the rule's condition text");
    assert_eq!(b.parameters[2], DISPATCH_LEVEL as u64, "p3 = the IRQL");
    assert!(b.verifier_rule);
}

#[test]
fn unloading_with_the_thread_still_running_is_0xce() {
    let Some(mut rig) = Rig::new() else { return };
    rig.ok(12, &[], 0);
    drop(rig.handle.take());
    let e = rig
        .driver
        .unload()
        .expect_err("the thread outlives the driver");
    let b = e.bugcheck().expect("a bug check").clone();
    assert_eq!(
        b.code,
        bugcheck::DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS,
        "{b}"
    );
    assert_eq!(b.parameters[1], 0);
    assert_ne!(b.parameters[2], 0, "p3 = the thread object");
    assert!(
        b.address.contains("systhread.sys+"),
        "p1 = the start routine: {}",
        b.address
    );
}

#[test]
fn cli_runs_the_thread_driver_clean_under_the_verifier() {
    let Some(sys) = fixture() else { return };
    let submit = format!(r"{DEV}:{:#x}:0500000000000000:72", code(0));
    let run = cli_support::run_json(
        &sys,
        &[
            "--verifier",
            "standard",
            "--ioctl",
            &submit,
            "--ioctl",
            &submit,
        ],
    );
    let j = run.json();
    assert_eq!(run.exit, Some(0), "{run:#?}");
    assert_eq!(j["verdict"], "clean");
    let second = &j["ioctls"][1]["output_hex"];
    // processed 2, sum 10.
    assert!(
        second
            .as_str()
            .unwrap()
            .starts_with("02000000000000000a00000000000000"),
        "{second}"
    );
}
