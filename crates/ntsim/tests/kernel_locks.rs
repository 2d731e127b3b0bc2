//! Mutexes, resources, spin locks and interlocked lists, end to end through the C fixture
//! `fixtures/c/locks.c` (a driver that keeps a shared table behind an ERESOURCE, statistics
//! behind a fast mutex and a guarded mutex, and a work queue behind spin locks): each export's
//! documented semantics through the driver's real machine code, the table and queue driven
//! concurrently from several host threads, and every lock rule's bug check with its code and
//! parameter 1.
//!
//! Missing clang/lld/llvm/mingw-w64 FAILS these tests naming the package, unless
//! `WDM_ALLOW_SKIP=1` (`cargo xtask test` installs them first).

use nt_abi::bugcheck::{self, verifier_locks as vl};
use nt_abi::*;
use ntsim::{BugCheck, Config, Handle, Verifier, VerifierFlags};

mod c_fixtures;
mod cli_support;
use c_fixtures::{Rig, bugcheck_within, call_ok, fixture, fixture_ioctl as code, le_bytes, words};

const DEVICE: &str = r"\\.\NtsimLocks";

/// The fixture started on a Machine whose handle to its device is held.
type Loaded = Rig;

fn load(verifier: Verifier) -> Option<Loaded> {
    Rig::start(
        "locks",
        DEVICE,
        Config {
            verifier,
            unload_grace: std::time::Duration::from_millis(200),
            ..Config::default()
        },
    )
    .map(Rig::holding_handle)
}

fn call_on(h: &Handle, f: u32, input: &[u64]) -> Vec<u64> {
    words(&call_ok(h, code(f), &le_bytes(input), 512).output)
}

impl Rig {
    fn call(&self, f: u32, input: &[u64]) -> Vec<u64> {
        call_on(self.h(), f, input)
    }

    /// IOCTL `f`, which must bug-check (possibly on a work item, a little later).
    fn bugcheck(&self, f: u32) -> BugCheck {
        match self.h().device_io_control(code(f), &[], 64) {
            Err(b) => b,
            Ok(r) => bugcheck_within(&self.machine, std::time::Duration::from_secs(10))
                .unwrap_or_else(|| panic!("IOCTL {f} returned {r:?} without a bug check")),
        }
    }

    fn unload_clean(self) {
        self.finish();
    }
}

const APC: u64 = APC_LEVEL as u64;
const DISPATCH: u64 = DISPATCH_LEVEL as u64;

// ---- documented semantics ------------------------------------------------------------------

#[test]
fn fast_and_guarded_mutexes_raise_restore_and_exclude() {
    let Some(d) = load(Verifier::Standard) else {
        return;
    };
    let v = d.call(5, &[]);
    assert_eq!(
        v,
        [
            1, APC, 1, 0, 0, 0, 1, 1, APC, 0, 0, 1, // fast mutex
            1, 1, 0, 0, 1, 0, 1, // guarded mutex
        ],
        "fast: free Count, IRQL/Owner/Count held, try (not recursive), IRQL back, Owner NULL, \
         try, IRQL, unsafe IRQL, held, free; guarded: free, Owner, try, IRQL, try, held, free"
    );
    d.unload_clean();
}

#[test]
fn an_eresource_taken_while_owning_only_a_kmutex_is_legal() {
    // Owning a KMUTEX lowers KernelApcDisable as KeEnterCriticalRegion does, which is what
    // ExAcquireResourceExclusiveLite requires below APC_LEVEL (else 0xC4/0x37).
    let Some(d) = load(Verifier::Standard) else {
        return;
    };
    assert_eq!(d.call(9, &[]), [1, 1], "held exclusively; mutex free again");
    d.unload_clean();
}

#[test]
fn eresource_recursion_conversion_and_counts_follow_the_documentation() {
    let Some(d) = load(Verifier::Standard) else {
        return;
    };
    let v = d.call(6, &[]);
    assert_eq!(
        v,
        [
            1, 1, 1, 1, 3, 1, 1, 1, 1, 0, 1, 1, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0
        ],
        "excl, excl recursive, shared by the exclusive owner, IsExclusive, IsShared=3, \
         ActiveCount, Flag, OwnerThread, after 2 releases 1, convert → not exclusive, shared 1, \
         starve-exclusive, wait-for-exclusive, shared 3, exclusive by a sharer (Wait FALSE) 0, \
         released 0, ActiveCount 0, waiters 0/0, reinitialize, not held, delete"
    );
    d.unload_clean();
}

#[test]
fn spin_locks_at_dpc_level_try_test_for_dpc_and_in_stack_queued() {
    let Some(d) = load(Verifier::Standard) else {
        return;
    };
    let v = d.call(7, &[]);
    assert_eq!(
        v,
        [
            0, 0, DISPATCH, 1, 1, // DPC level, try, test
            0, DISPATCH, 0, // ForDpc
            DISPATCH, 0, 0, 1, 0, 1, // in-stack queued
            0, DISPATCH, // at DPC level
            DISPATCH, 0, // ForDpc in-stack
            0, 0, // KeAcquireSpinLock, lock word after release
        ]
    );
    d.unload_clean();
}

#[test]
fn interlocked_lists_counters_and_slists() {
    let Some(d) = load(Verifier::Standard) else {
        return;
    };
    let v = d.call(8, &[]);
    assert_eq!(
        v,
        [
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            1, // doubly linked
            1,
            1,
            1,
            1,
            1, // singly linked
            40,
            42,
            0x1_0000_0000,
            0xFFFF_FFFF,
            0, // counters, lock free after
            0,
            3,
            1,
            3,
            0,
            1,
            1, // SList
        ]
    );
    d.unload_clean();
}

/// Writers and readers on several host threads at once: every reader sees a consistent table
/// (sum 0 — a torn read of a writer's two-slot update would not be), every write and push is
/// counted once, under `/standard`, and the driver unloads clean.
#[test]
fn the_shared_table_and_queue_stay_consistent_under_concurrent_ioctls() {
    let Some(d) = load(Verifier::Standard) else {
        return;
    };
    const THREADS: u64 = 6;
    const ROUNDS: u64 = 150;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let m = &d.machine;
            s.spawn(move || {
                let h = m.open(DEVICE, GENERIC_READ | GENERIC_WRITE).expect("open");
                for i in 0..ROUNDS {
                    if (t + i) % 2 == 0 {
                        call_on(&h, 0, &[t * 7 + i, 1000 + i]);
                    } else {
                        let r = call_on(&h, 1, &[]);
                        assert_eq!(r[0], 0, "a reader saw a half-done write: {r:?}");
                        assert_eq!(r[1], 1, "the reader holds the resource once");
                    }
                    call_on(&h, 2, &[2, t + 1]);
                }
                h.close().expect("close");
            });
        }
    });
    let stats = d.call(4, &[]);
    let writes = (0..THREADS)
        .map(|t| (0..ROUNDS).filter(|i| (t + i) % 2 == 0).count() as u64)
        .sum::<u64>();
    let reads = THREADS * ROUNDS - writes;
    let pushes = THREADS * ROUNDS * 2;
    assert_eq!(stats, [writes, reads, pushes, writes, pushes]);
    let drained = d.call(3, &[]);
    let expected_sum: u64 = (0..THREADS).map(|t| (t + 1) * ROUNDS * 2).sum();
    assert_eq!(drained, [pushes, expected_sum]);
    let r = d.call(1, &[]);
    assert_eq!((r[0], r[2]), (0, writes), "sum 0, version = writes");
    d.unload_clean();
}

/// The same driver through the CLI, under `--verifier standard`: clean.
#[test]
fn cli_runs_the_locks_driver_clean_under_the_verifier() {
    let Some(sys) = fixture("locks") else { return };
    let sys = sys.to_str().unwrap();
    let mut args = vec!["run".to_string(), sys.to_string(), "--json".into()];
    args.extend(["--verifier".into(), "standard".into()]);
    for f in [0u32, 1, 2, 4, 5, 6, 7, 8, 3] {
        args.push("--ioctl".into());
        args.push(format!(
            r"{DEVICE}:{:#x}:0300000000000000e803000000000000:0x100",
            code(f)
        ));
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = cli_support::ntsim(&a);
    let j = run.json();
    assert_eq!(run.exit, Some(0), "{run:#?}");
    assert_eq!(j["verdict"], "clean");
    let r = j["ioctls"].as_array().expect("requests");
    assert_eq!(r.len(), 9);
    assert!(r.iter().all(|x| x["status"] == 0), "{r:?}");
}

// ---- rules -----------------------------------------------------------------------------------

#[track_caller]
fn expect(b: &BugCheck, code: u32, p1: u64) {
    assert_eq!((b.code, b.parameters[0]), (code, p1), "{b}");
}

fn dv(f: u32, p1: u64) -> BugCheck {
    let d = load(Verifier::Standard).expect("fixture");
    let b = d.bugcheck(f);
    expect(&b, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, p1);
    assert!(b.verifier_rule, "{b}");
    b
}

fn have_fixture() -> bool {
    fixture("locks").is_some()
}

#[test]
fn release_from_dpc_level_below_dispatch_is_0xc4_41() {
    if !have_fixture() {
        return;
    }
    let b = dv(10, vl::RELEASE_SPINLOCK_FROM_DPC_BELOW_DISPATCH);
    assert_eq!(b.parameters[1], PASSIVE_LEVEL as u64);
    assert_ne!(b.parameters[2], 0, "p3 = the lock");
}

#[test]
fn acquire_at_dpc_level_below_dispatch_is_0xc4_40() {
    if !have_fixture() {
        return;
    }
    let b = dv(11, vl::ACQUIRE_SPINLOCK_AT_DPC_BELOW_DISPATCH);
    assert_eq!(b.parameters[1], PASSIVE_LEVEL as u64);
}

#[test]
fn fast_mutex_above_apc_level_is_0xc4_33() {
    if !have_fixture() {
        return;
    }
    let b = dv(12, vl::ACQUIRE_FAST_MUTEX_ABOVE_APC);
    assert_eq!(b.parameters[1], DISPATCH);
    assert_ne!(b.parameters[2], 0, "p3 = the fast mutex");
}

#[test]
fn fast_mutex_released_below_apc_level_is_0xc4_34() {
    if !have_fixture() {
        return;
    }
    let b = dv(13, vl::RELEASE_FAST_MUTEX_NOT_AT_APC);
    assert_eq!(b.parameters[1], PASSIVE_LEVEL as u64);
}

#[test]
fn resource_acquired_with_apcs_enabled_is_0xc4_37() {
    if !have_fixture() {
        return;
    }
    let b = dv(14, vl::ACQUIRE_RESOURCE_APCS_ENABLED);
    assert_eq!(b.parameters[1..3], [PASSIVE_LEVEL as u64, 0]);
    assert_ne!(b.parameters[3], 0, "p4 = the resource");
}

#[test]
fn releasing_a_resource_not_owned_is_0xe3_with_and_without_the_verifier() {
    if !have_fixture() {
        return;
    }
    for v in [Verifier::Standard, Verifier::Off] {
        let d = load(v).expect("fixture");
        let b = d.bugcheck(15);
        assert_eq!(b.code, bugcheck::RESOURCE_NOT_OWNED, "{b}");
        assert_ne!(b.parameters[0], 0, "p1 = the resource");
        assert_ne!(b.parameters[1], 0, "p2 = the thread");
        assert_eq!(b.name, "RESOURCE_NOT_OWNED");
    }
}

#[test]
fn deleting_an_owned_resource_is_0xc4_100b() {
    if !have_fixture() {
        return;
    }
    let b = dv(16, vl::DELETED_LOCK_STILL_OWNED);
    assert_ne!(b.parameters[2], 0, "p3 = the owner thread");
}

#[test]
fn leaving_a_critical_region_never_entered_is_0xc4_3e() {
    if !have_fixture() {
        return;
    }
    dv(17, vl::LEAVE_CRITICAL_REGION_NOT_IN_ONE);
}

#[test]
fn a_dispatch_routine_returning_in_a_critical_region_is_0xc4_c5_or_apc_index_mismatch() {
    if !have_fixture() {
        return;
    }
    let b = dv(18, vl::DISPATCH_CHANGED_APC_DISABLE);
    assert_eq!(b.parameters[2..4], [0xFFFF, 0], "count now −1, before 0");
    let d = load(Verifier::Off).expect("fixture");
    let b = d.bugcheck(18);
    expect(&b, bugcheck::APC_INDEX_MISMATCH, b.parameters[0]);
    assert_eq!(b.parameters[1..4], [0, 0xFFFF, 0], "p4 0: a system call");
}

#[test]
fn a_work_item_returning_in_a_critical_region_is_apc_index_mismatch_worker() {
    if !have_fixture() {
        return;
    }
    let d = load(Verifier::Standard).expect("fixture");
    let b = d.bugcheck(22);
    assert_eq!(b.code, bugcheck::APC_INDEX_MISMATCH, "{b}");
    assert_eq!(b.parameters[1..4], [0, 0xFFFF, 1], "p4 1: a worker routine");
    assert!(b.address.contains("locks.sys+"), "{b}");
}

#[test]
fn releasing_a_spin_lock_nobody_holds_is_0xc4_1007() {
    if !have_fixture() {
        return;
    }
    let b = dv(19, vl::UNACQUIRED_LOCK_RELEASED);
    assert_ne!(b.parameters[1], 0, "p2 = the lock");
}

#[test]
fn unsafe_fast_mutex_with_apcs_enabled_is_0xc4_39() {
    if !have_fixture() {
        return;
    }
    let b = dv(20, vl::ACQUIRE_MUTEX_UNSAFE_BAD_IRQL);
    assert_eq!(b.parameters[1..3], [PASSIVE_LEVEL as u64, 0]);
}

#[test]
fn a_sharer_asking_for_exclusive_is_0xc4_1000() {
    if !have_fixture() {
        return;
    }
    dv(21, vl::SELF_DEADLOCK);
}

#[test]
fn spin_lock_above_dispatch_is_0xc4_42_and_0xa_without_the_verifier() {
    if !have_fixture() {
        return;
    }
    let b = dv(23, vl::ACQUIRE_SPINLOCK_ABOVE_DISPATCH);
    assert_eq!(b.parameters[1], HIGH_LEVEL as u64);
    let d = load(Verifier::Off).expect("fixture");
    let b = d.bugcheck(23);
    assert_eq!(
        (b.code, b.parameters[1]),
        (bugcheck::IRQL_NOT_LESS_OR_EQUAL, HIGH_LEVEL as u64)
    );
}

#[test]
fn resource_initialized_twice_is_0xc4_d0_and_deleted_uninitialized_0xd1() {
    if !have_fixture() {
        return;
    }
    dv(24, vl::RESOURCE_REINITIALIZED);
    dv(25, vl::RESOURCE_DELETE_UNINITIALIZED);
}

#[test]
fn freeing_pool_that_holds_a_live_resource_is_0xc4_d2() {
    if !have_fixture() {
        return;
    }
    let b = dv(27, vl::RESOURCE_IN_FREED_POOL);
    assert_eq!(
        b.parameters[1], b.parameters[2],
        "the resource is at the block's start"
    );
    assert_eq!(b.parameters[3], size_of::<ERESOURCE>() as u64);
}

#[test]
fn critical_region_at_dispatch_level_is_0xc4_11a() {
    if !have_fixture() {
        return;
    }
    let b = dv(26, vl::ENTER_CRITICAL_REGION_ABOVE_APC);
    assert_eq!(b.parameters[1], DISPATCH);
}

/// Each verifier-only lock rule is off with its option off: the same IOCTL then runs to its
/// end (or to ntoskrnl's own bug check).
#[test]
fn lock_rules_switch_off_with_their_option() {
    if !have_fixture() {
        return;
    }
    let no_irql = Verifier::Custom(VerifierFlags {
        irql_checking: false,
        ..VerifierFlags::ALL
    });
    let d = load(no_irql).expect("fixture");
    // 0x40 and 0x41 are IRQL checks: the acquisition at PASSIVE_LEVEL just works.
    assert_eq!(d.call(11, &[]), Vec::<u64>::new());
    assert!(d.machine.bugcheck().is_none());
    let no_misc = Verifier::Custom(VerifierFlags {
        misc_checks: false,
        ..VerifierFlags::ALL
    });
    let d = load(no_misc).expect("fixture");
    // 0x3E is a misc check: without it the count goes positive, and the dispatch routine's
    // return then shows the imbalance (I/O verification's 0xC4/0xC5).
    let b = d.bugcheck(17);
    expect(
        &b,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        vl::DISPATCH_CHANGED_APC_DISABLE,
    );
    assert_eq!(b.parameters[2], 1);
}

// ---- contention, in process (the blocking paths) ---------------------------------------------

/// Two kernel threads contend for one lock in the test's pool block: the owner takes it, lets
/// the waiter start, holds it for a while, releases; the waiter must get it only after that.
mod contention {
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use nt_abi::*;
    use ntsim::exports::*;
    use ntsim::{Config, Machine, Verifier};

    const TAG: u32 = pool_tag(*b"Test");
    const HOLD: Duration = Duration::from_millis(150);

    fn machine() -> Machine {
        Machine::new(Config {
            verifier: Verifier::Standard,
            ..Config::default()
        })
    }

    fn alloc(m: &Machine, size: usize) -> usize {
        m.run_in_kernel_thread(move || {
            // SAFETY: no preconditions beyond an ntsim thread.
            unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, size, TAG) as usize }
        })
        .expect("alloc")
    }

    fn free(m: &Machine, p: usize) {
        m.run_in_kernel_thread(move || {
            // SAFETY: a block from `alloc`, freed once with its tag.
            unsafe { ExFreePoolWithTag(p as PVOID, TAG) }
        })
        .expect("free");
    }

    /// Run `owner` and `waiter` on two kernel threads; `owner` gets the barrier to pass once it
    /// holds the lock, and must set `released` just before releasing.
    fn contend(
        m: &Machine,
        owner: impl FnOnce(&Barrier, &AtomicBool) + Send + 'static,
        waiter: impl FnOnce(&Barrier, &AtomicBool) -> Duration + Send + 'static,
    ) -> Duration {
        let go = std::sync::Arc::new(Barrier::new(2));
        let released = std::sync::Arc::new(AtomicBool::new(false));
        let (g1, r1) = (go.clone(), released.clone());
        std::thread::scope(|s| {
            let o = s.spawn(move || m.run_in_kernel_thread(move || owner(&g1, &r1)).is_ok());
            let waited = m
                .run_in_kernel_thread(move || waiter(&go, &released))
                .expect("waiter");
            assert!(o.join().expect("owner thread"), "the owner bug-checked");
            waited
        })
    }

    #[test]
    fn a_contended_fast_mutex_blocks_until_released_and_counts_the_contention() {
        let m = machine();
        let fm = alloc(&m, size_of::<FAST_MUTEX>());
        let waited = contend(
            &m,
            move |go, released| {
                let p = fm as *mut FAST_MUTEX;
                let init = FAST_MUTEX {
                    Count: FM_LOCK_BIT,
                    Owner: core::ptr::null_mut(),
                    Contention: 0,
                    // SAFETY: KEVENT is plain data; KeInitializeEvent below sets it up.
                    Event: unsafe { core::mem::zeroed() },
                    OldIrql: 0,
                };
                // SAFETY: the test's pool block, large enough and aligned for a FAST_MUTEX.
                unsafe { p.write(init) };
                let ev = p
                    .cast::<u8>()
                    .wrapping_add(core::mem::offset_of!(FAST_MUTEX, Event));
                // SAFETY: the mutex's event, as the WDK's inline ExInitializeFastMutex does.
                unsafe { KeInitializeEvent(ev.cast(), SYNCHRONIZATION_EVENT, 0) };
                // SAFETY: initialized above; released by this thread below.
                unsafe { ExAcquireFastMutex(p) };
                go.wait();
                std::thread::sleep(HOLD);
                released.store(true, Ordering::SeqCst);
                // SAFETY: held by this thread.
                unsafe { ExReleaseFastMutex(p) };
            },
            move |go, released| {
                let p = fm as *mut FAST_MUTEX;
                go.wait();
                // SAFETY: the shared, initialized mutex.
                assert_eq!(unsafe { ExTryToAcquireFastMutex(p) }, 0, "held elsewhere");
                let start = Instant::now();
                // SAFETY: as above.
                unsafe { ExAcquireFastMutex(p) };
                let waited = start.elapsed();
                assert!(
                    released.load(Ordering::SeqCst),
                    "acquired before the release"
                );
                assert_eq!(ntsim::ke::irql::get(), APC_LEVEL);
                // SAFETY: ours now.
                unsafe { ExReleaseFastMutex(p) };
                waited
            },
        );
        assert!(waited >= HOLD / 2, "{waited:?}");
        // SAFETY: the test's own block, read after both threads finished.
        let after = unsafe { (fm as *const FAST_MUTEX).read() };
        assert_eq!((after.Count, after.Contention), (FM_LOCK_BIT, 1));
        free(&m, fm);
        assert!(m.bugcheck().is_none());
    }

    #[test]
    fn a_shared_waiter_blocks_behind_an_exclusive_owner_and_is_counted() {
        let m = machine();
        let r = alloc(&m, size_of::<ERESOURCE>());
        m.run_in_kernel_thread(move || {
            // SAFETY: the test's writable block.
            unsafe { ExInitializeResourceLite(r as *mut ERESOURCE) }
        })
        .expect("init");
        let waited = contend(
            &m,
            move |go, released| {
                let p = r as *mut ERESOURCE;
                // SAFETY: no preconditions.
                unsafe { KeEnterCriticalRegion() };
                // SAFETY: the initialized resource, inside a critical region as documented.
                let got = unsafe { ExAcquireResourceExclusiveLite(p, 1) };
                assert_eq!(got, 1);
                go.wait();
                let end = Instant::now() + Duration::from_secs(5);
                // SAFETY: as above.
                while unsafe { ExGetSharedWaiterCount(p) } == 0 && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(1));
                }
                // SAFETY: as above.
                let n = unsafe { ExGetSharedWaiterCount(p) };
                assert_eq!(n, 1, "the waiter is counted");
                // SAFETY: as above; the mirror in the ERESOURCE shows it too.
                let mirrored = unsafe { p.read() }.NumberOfSharedWaiters;
                assert_eq!(mirrored, 1);
                std::thread::sleep(HOLD);
                released.store(true, Ordering::SeqCst);
                // SAFETY: held by this thread.
                unsafe { ExReleaseResourceLite(p) };
                // SAFETY: entered above.
                unsafe { KeLeaveCriticalRegion() };
            },
            move |go, released| {
                let p = r as *mut ERESOURCE;
                go.wait();
                // SAFETY: the initialized resource.
                unsafe { KeEnterCriticalRegion() };
                // SAFETY: as above.
                let got = unsafe { ExAcquireResourceSharedLite(p, 0) };
                assert_eq!(got, 0, "no wait: FALSE");
                let start = Instant::now();
                // SAFETY: as above.
                let got = unsafe { ExAcquireResourceSharedLite(p, 1) };
                assert_eq!(got, 1);
                let waited = start.elapsed();
                assert!(released.load(Ordering::SeqCst));
                // SAFETY: as above.
                let n = unsafe { ExGetSharedWaiterCount(p) };
                assert_eq!(n, 0);
                // SAFETY: held by this thread.
                unsafe { ExReleaseResourceLite(p) };
                // SAFETY: entered above.
                unsafe { KeLeaveCriticalRegion() };
                waited
            },
        );
        assert!(waited >= HOLD / 2, "{waited:?}");
        m.run_in_kernel_thread(move || {
            // SAFETY: unowned now.
            unsafe { ExDeleteResourceLite(r as *mut ERESOURCE) }
        })
        .expect("delete");
        free(&m, r);
        assert!(m.bugcheck().is_none());
    }

    #[test]
    fn an_in_stack_queued_spin_lock_hands_over_to_its_waiter() {
        let m = machine();
        let l = alloc(&m, 8);
        let waited = contend(
            &m,
            move |go, released| {
                let mut h = KLOCK_QUEUE_HANDLE {
                    LockQueue: KSPIN_LOCK_QUEUE {
                        Next: core::ptr::null_mut(),
                        Lock: core::ptr::null_mut(),
                    },
                    OldIrql: 0,
                };
                // SAFETY: a zeroed (free) KSPIN_LOCK in pool and a handle on this stack.
                unsafe { KeAcquireInStackQueuedSpinLock(l as *mut KSPIN_LOCK, &mut h) };
                go.wait();
                std::thread::sleep(HOLD);
                released.store(true, Ordering::SeqCst);
                // SAFETY: the handle of the acquisition above.
                unsafe { KeReleaseInStackQueuedSpinLock(&mut h) };
            },
            move |go, released| {
                let mut h = KLOCK_QUEUE_HANDLE {
                    LockQueue: KSPIN_LOCK_QUEUE {
                        Next: core::ptr::null_mut(),
                        Lock: core::ptr::null_mut(),
                    },
                    OldIrql: 0,
                };
                go.wait();
                let start = Instant::now();
                // SAFETY: as above.
                unsafe { KeAcquireInStackQueuedSpinLock(l as *mut KSPIN_LOCK, &mut h) };
                let waited = start.elapsed();
                assert!(released.load(Ordering::SeqCst));
                // SAFETY: the handle of the acquisition above.
                unsafe { KeReleaseInStackQueuedSpinLock(&mut h) };
                assert_eq!(ntsim::ke::irql::get(), PASSIVE_LEVEL);
                waited
            },
        );
        assert!(waited >= HOLD / 2, "{waited:?}");
        // SAFETY: the test's block after both threads finished.
        assert_eq!(unsafe { *(l as *const usize) }, 0, "free again");
        free(&m, l);
        assert!(m.bugcheck().is_none());
    }
}
