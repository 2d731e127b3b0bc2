//! A timer/DPC driver end to end (`fixtures/c/timerdpc.c`): a periodic timer's DPC completes
//! pended IOCTLs at DISPATCH_LEVEL; one-shot, synchronization and absolute timers; DPC queue
//! semantics (insert twice, remove, importance, target processor, flush); the time exports
//! against KUSER_SHARED_DATA; and the negative rules (0xC8, 0xB8, 0xC7) with their codes and
//! parameters. Under `--verifier standard`.
//!
//! Missing clang/lld/llvm/mingw-w64 FAILS these tests naming the package, unless
//! `WDM_ALLOW_SKIP=1` (`cargo xtask test` installs them first).
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nt_abi::bugcheck;
use nt_abi::*;
use ntsim::{BugCheck, Config, Verifier};

mod c_fixtures;
mod cli_support;
use c_fixtures::{Rig, bugcheck_within, call_ok, fixture_ioctl as code, words};

const DEV: &str = r"\\.\NtsimTimerDpc";

fn fixture() -> Option<PathBuf> {
    c_fixtures::fixture("timerdpc")
}

impl Rig {
    fn new() -> Option<Rig> {
        Rig::start(
            "timerdpc",
            DEV,
            Config {
                verifier: Verifier::Standard,
                ..Config::default()
            },
        )
    }

    fn ok(&self, n: u32, input: &[u8], out: usize) -> Vec<u64> {
        words(&call_ok(&self.open(), code(n), input, out).output)
    }

    fn bugcheck_after(&self, n: u32) -> BugCheck {
        let h = self.open();
        if let Err(b) = h.device_io_control(code(n), &[], 8) {
            return b;
        }
        bugcheck_within(&self.machine, Duration::from_secs(10)).expect("expected a bug check")
    }
}

#[test]
fn the_periodic_timers_dpc_completes_pended_requests_at_dispatch_level() {
    let Some(rig) = Rig::new() else { return };
    let w = rig.ok(0, &3u32.to_le_bytes(), 48);
    assert!(w[0] >= w[1], "completed at or after the due tick: {w:?}");
    assert_eq!(w[2], 1, "KeIsExecutingDpc() in the timer's DPC");
    assert_eq!(w[3], DISPATCH_LEVEL as u64, "DPCs run at DISPATCH_LEVEL");
    assert_eq!(w[4], 1, "SystemArgument1/2 carry the expiry's system time");
    assert_eq!(
        w[5], 1,
        "DeferredContext is the one KeInitializeDpc was given"
    );
    // Eight requests pended from eight threads at once, each completed by a later tick.
    let start = Instant::now();
    let threads: Vec<_> = (0..8u32)
        .map(|i| {
            let m = rig.machine.clone();
            std::thread::spawn(move || {
                let h = m.open(DEV, GENERIC_READ | GENERIC_WRITE).expect("open");
                let r = h
                    .device_io_control(code(0), &(1 + i % 4).to_le_bytes(), 48)
                    .expect("no bug check");
                (r.status, words(&r.output))
            })
        })
        .collect();
    for t in threads {
        let (st, w) = t.join().unwrap();
        assert_eq!(st, STATUS_SUCCESS);
        assert!(w[0] >= w[1] && w[2] == 1, "{w:?}");
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    rig.finish();
}

#[test]
fn one_shot_synchronization_and_absolute_timers() {
    let Some(rig) = Rig::new() else { return };
    let w = rig.ok(1, &[], 13 * 8);
    assert_eq!(w[0], 0, "a new timer is not signaled");
    assert_eq!(w[1], 0, "KeSetTimer on an unset timer: FALSE");
    assert_eq!(w[2], 1, "KeSetTimer on a set timer: TRUE (reset)");
    assert_eq!(w[3], STATUS_SUCCESS as u64, "the wait on the timer");
    assert!(w[4] >= 300_000, "at least 30 ms passed: {}", w[4]);
    assert_eq!(w[5], 1, "a notification timer stays signaled");
    assert_eq!(w[6], 0, "KeCancelTimer after it expired: FALSE");
    assert_eq!(w[7], STATUS_SUCCESS as u64, "synchronization timer wait");
    assert_eq!(
        w[8], 0,
        "a synchronization timer resets when a wait is satisfied"
    );
    assert_eq!(w[9], STATUS_SUCCESS as u64, "absolute due time");
    assert!(w[10] >= 150_000, "about 20 ms passed: {}", w[10]);
    assert_eq!(w[11], 1, "KeCancelTimer on a set timer: TRUE");
    assert_eq!(
        w[12], STATUS_TIMEOUT as u64,
        "a cancelled timer never fires"
    );
    rig.finish();
}

#[test]
fn dpc_queue_insert_remove_importance_and_flush() {
    let Some(rig) = Rig::new() else { return };
    let w = rig.ok(2, &[], 9 * 8);
    assert_eq!(
        w[..4],
        [1, 0, 1, 0],
        "insert TRUE, FALSE; remove TRUE, FALSE: {w:?}"
    );
    assert_eq!(w[4], 0, "a removed DPC never runs");
    assert_eq!(
        (w[5], w[6]),
        (0xC, 0xD),
        "HighImportance goes to the head of the queue"
    );
    assert_eq!(w[7], 0, "KeSetTargetProcessorDpc(0): ran on processor 0");
    assert_eq!(w[8], 0, "KeIsExecutingDpc() in a dispatch routine");
    let w = rig.ok(7, &[], 16);
    assert_eq!(
        w[0],
        w[1] - 1,
        "a timer's DPC targeted at the last processor ran there"
    );
    rig.finish();
}

#[test]
fn time_exports_agree_with_kuser_shared_data() {
    let Some(rig) = Rig::new() else { return };
    let w = rig.ok(6, &[], 9 * 8);
    let near = |v: u64, what: &str| {
        let d = v as i64;
        assert!((0..10_000_000).contains(&d), "{what}: {d} (100 ns)");
    };
    near(w[0], "KUSER SystemTime read after KeQuerySystemTimePrecise");
    near(
        w[1],
        "KUSER InterruptTime read after KeQueryInterruptTimePrecise",
    );
    near(
        w[2],
        "KeQueryUnbiasedInterruptTime after KUSER InterruptTime",
    );
    assert_eq!(w[3], 1, "a QPC stamp");
    let n = w[4];
    assert!(n >= 1);
    assert_eq!(w[5].count_ones() as u64, n, "affinity mask {:#x}", w[5]);
    assert_eq!(w[6], n);
    assert_eq!(w[7], n);
    assert!(
        w[8] >= 20_000,
        "KeStallExecutionProcessor(2000) stalls 2 ms: {}",
        w[8]
    );
    rig.finish();
}

#[test]
fn a_dpc_returning_below_dispatch_level_is_0xc8() {
    let Some(rig) = Rig::new() else { return };
    let b = rig.bugcheck_after(3);
    assert_eq!(b.code, bugcheck::IRQL_UNEXPECTED_VALUE, "{b}");
    assert_eq!(
        b.parameters[0],
        (PASSIVE_LEVEL as u64) << 16 | (DISPATCH_LEVEL as u64) << 8
    );
    assert_ne!(b.parameters[1], 0, "p2 = the DPC routine");
    assert_ne!(b.parameters[2], 0, "p3 = the KDPC");
    assert!(b.address.contains("timerdpc.sys+"), "{}", b.address);
    assert_eq!(b.context, "DPC routine");
}

#[test]
fn a_wait_in_a_dpc_is_0xb8() {
    let Some(rig) = Rig::new() else { return };
    let b = rig.bugcheck_after(4);
    assert_eq!(b.code, bugcheck::ATTEMPTED_SWITCH_FROM_DPC, "{b}");
    assert_ne!(b.parameters[0], 0, "p1 = the thread");
    assert_eq!(b.parameters[1], 0);
    assert_ne!(b.parameters[2], 0, "p3 = a stack address");
}

#[test]
fn ke_set_timer_above_dispatch_level_is_ddi_irql_ke_dispatch_lte() {
    let Some(rig) = Rig::new() else { return };
    let b = rig.bugcheck_after(8);
    assert_eq!(b.code, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, "{b}");
    assert_eq!(b.parameters[0], bugcheck::ddi_rule::IRQL_KE_DISPATCH_LTE);
    assert_ne!(b.parameters[1], 0, "p2 = the rule's condition text");
    assert_eq!(b.parameters[2], HIGH_LEVEL as u64, "p3 = the IRQL");
    assert!(b.verifier_rule);
}

#[test]
fn freeing_pool_that_holds_a_set_timer_is_0xc7() {
    let Some(rig) = Rig::new() else { return };
    let b = rig.bugcheck_after(9);
    assert_eq!(b.code, bugcheck::TIMER_OR_DPC_INVALID, "{b}");
    assert_eq!(b.parameters[0], 0, "a timer object");
    assert_eq!(
        b.parameters[1], b.parameters[2],
        "the timer is the block's start"
    );
    assert_eq!(
        b.parameters[3] - b.parameters[2],
        core::mem::size_of::<KTIMER>() as u64,
        "p3-p4: the freed block"
    );
    assert!(b.verifier_rule);
}

#[test]
fn unloading_with_a_timer_still_set_is_0xc7() {
    let Some(rig) = Rig::new() else { return };
    rig.ok(5, &[], 0);
    let e = rig.driver.unload().expect_err("a timer outlives the image");
    let b = e.bugcheck().expect("a bug check").clone();
    assert_eq!(b.code, bugcheck::TIMER_OR_DPC_INVALID, "{b}");
    assert_eq!(b.parameters[0], 0, "a timer object");
    let (obj, lo, hi) = (b.parameters[1], b.parameters[2], b.parameters[3]);
    assert!(
        lo <= obj && obj < hi,
        "the timer lies in the image range: {:x?}",
        b.parameters
    );
}

#[test]
fn cli_runs_the_timer_driver_clean_under_the_verifier() {
    let Some(sys) = fixture() else { return };
    let pend = format!(r"{DEV}:{:#x}:02000000:48", code(0));
    let run = cli_support::run_json(
        &sys,
        &["--verifier", "standard", "--ioctl", &pend, "--ioctl", &pend],
    );
    let j = run.json();
    assert_eq!(run.exit, Some(0), "{run:#?}");
    assert_eq!(j["verdict"], "clean");
    assert_eq!(j["ioctls"][1]["information"], 48);
}
