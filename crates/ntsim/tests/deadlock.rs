//! Driver Verifier's Deadlock Detection through a C driver (`fixtures/c/deadlock.c`): a
//! consistent lock order is clean; an order inversion across threads, a self-deadlock, a
//! release by another thread and a KSPIN_LOCK used both ordinarily and queued are each 0xC4
//! with Windows' p1; without the option the inversion runs unnoticed.
mod c_fixtures;

use std::time::Duration;

use c_fixtures::{Rig, bugcheck_within, fixture_ioctl};
use nt_abi::bugcheck::{self, verifier_locks as vl};
use ntsim::{BugCheck, Config, Verifier, VerifierFlags};

const DEV: &str = r"\\.\NtsimDeadlock";

fn rig(verifier: Verifier) -> Option<Rig> {
    Some(
        Rig::start(
            "deadlock",
            DEV,
            Config {
                verifier,
                unload_grace: Duration::from_millis(200),
                ..Config::default()
            },
        )?
        .holding_handle(),
    )
}

struct Addrs {
    a: u64,
    f: u64,
    g: u64,
    q: u64,
}

fn addrs(r: &Rig) -> Addrs {
    let w = r.call_words(fixture_ioctl(9), &[], 32);
    Addrs {
        a: w[0],
        f: w[1],
        g: w[2],
        q: w[3],
    }
}

/// IOCTL `n`, which must bug-check (on this thread or, a little later, on another).
fn bugcheck(r: &Rig, n: u32) -> BugCheck {
    match r.h().device_io_control(fixture_ioctl(n), &[], 8) {
        Err(b) => b,
        Ok(_) => bugcheck_within(&r.machine, Duration::from_secs(10)).expect("a bug check"),
    }
}

fn expect(b: &BugCheck, p1: u64, p2: u64) {
    assert_eq!(b.code, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, "{b}");
    assert_eq!(b.parameters[0], p1, "{b}");
    assert_eq!(b.parameters[1], p2, "{b}");
    assert!(b.verifier_rule, "{b}");
}

#[test]
fn a_consistent_hierarchy_recursive_kmutex_and_stack_locks_are_clean() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    assert_eq!(r.call_words(fixture_ioctl(0), &[], 8), [1]);
    assert_eq!(r.call_words(fixture_ioctl(0), &[], 8), [1], "again");
    r.call_words(fixture_ioctl(1), &[], 0);
    r.finish();
}

#[test]
fn an_order_inversion_on_another_thread_is_0x1001() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    let a = addrs(&r);
    r.call_words(fixture_ioctl(1), &[], 0);
    let b = bugcheck(&r, 2);
    expect(&b, vl::DEADLOCK, a.a);
    assert_eq!(b.context, "system thread", "{b}");
}

#[test]
fn taking_a_spin_lock_or_fast_mutex_twice_is_0x1001() {
    for n in [3, 4] {
        let Some(r) = rig(Verifier::Standard) else {
            return;
        };
        let a = addrs(&r);
        let b = bugcheck(&r, n);
        expect(&b, vl::DEADLOCK, if n == 3 { a.a } else { a.f });
    }
}

#[test]
fn kmutex_then_fast_mutex_after_the_reverse_is_0x1001() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    let a = addrs(&r);
    r.call_words(fixture_ioctl(0), &[], 8);
    let b = bugcheck(&r, 5);
    expect(&b, vl::DEADLOCK, a.f);
}

#[test]
fn a_guarded_mutex_released_by_another_thread_is_0x1004() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    let a = addrs(&r);
    let b = bugcheck(&r, 6);
    expect(&b, vl::RELEASED_BY_WRONG_THREAD, a.g);
    assert_ne!(b.parameters[2], 0, "the owner thread");
    assert_ne!(b.parameters[3], 0, "the releasing thread");
    assert_ne!(b.parameters[2], b.parameters[3]);
}

#[test]
fn a_spin_lock_used_queued_and_ordinarily_is_0x1008_or_0x1009() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    let a = addrs(&r);
    r.call_words(fixture_ioctl(0), &[], 8);
    expect(&bugcheck(&r, 7), vl::MISMATCHED_ACQUIRE_API, a.q);
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    let a = addrs(&r);
    expect(&bugcheck(&r, 8), vl::MISMATCHED_RELEASE_API, a.q);
}

#[test]
fn without_deadlock_detection_the_inversion_and_mismatch_run_unnoticed() {
    let Some(r) = rig(Verifier::Custom(VerifierFlags {
        deadlock_detection: false,
        ..VerifierFlags::ALL
    })) else {
        return;
    };
    r.call_words(fixture_ioctl(0), &[], 8);
    r.call_words(fixture_ioctl(1), &[], 0);
    r.call_words(fixture_ioctl(2), &[], 0);
    r.call_words(fixture_ioctl(5), &[], 0);
    r.call_words(fixture_ioctl(7), &[], 0);
    assert!(r.machine.bugcheck().is_none());
    r.finish();
}
