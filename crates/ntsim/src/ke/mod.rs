//! Kernel core (the lowest layer with `mm`): per-thread kernel state and IRQL ([`thread`]), the
//! bug-check state ([`bugcheck`]), dispatcher objects (events) and waits, spin locks, time,
//! KeBugCheckEx, and CPU exceptions in driver code ([`fault`]).
#![allow(non_snake_case)]

pub(crate) mod apc;
pub(crate) mod bugcheck;
pub mod cpu;
pub mod decode;
pub(crate) mod dispatch;
pub(crate) mod dpc;
pub(crate) mod except;
pub(crate) mod fault;
pub(crate) mod kd;
pub(crate) mod spinlock;
pub(crate) mod thread;
pub(crate) mod time;
pub(crate) mod timer;
pub(crate) mod trap;

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nt_abi::*;

use crate::machine::lock;
use crate::verifier::{Bc, BugCheck};
use bugcheck::raise;
use thread::current;

/// The kernel's own state: the bug check, and the dispatcher lock that event waits sleep on.
pub(crate) struct Ke {
    pub(crate) bug: bugcheck::BugState,
    /// The dispatcher lock (KiDispatcherLock): event state changes that wake waiters, and the
    /// condition waiters sleep on.
    dispatcher: Mutex<()>,
    dispatcher_cv: Condvar,
    /// Threads inside a blocking wait: `KeSetEvent` wakes only when there are some.
    sleepers: AtomicUsize,
    epoch: Instant,
    /// The per-processor DPC queues ([`dpc`]).
    pub(crate) dpcs: dpc::Dpcs,
    /// The timer queue ([`timer`]).
    pub(crate) timers: timer::Timers,
}

impl Ke {
    pub(crate) fn new(wake: bugcheck::Waker) -> Self {
        Ke {
            bug: bugcheck::BugState::new(wake),
            dispatcher: Mutex::new(()),
            dispatcher_cv: Condvar::new(),
            sleepers: AtomicUsize::new(0),
            epoch: Instant::now(),
            dpcs: dpc::Dpcs::new(),
            timers: timer::Timers::default(),
        }
    }

    pub(crate) fn is_bugged(&self) -> bool {
        self.bug.is_bugged()
    }

    pub(crate) fn bugcheck(&self) -> Option<BugCheck> {
        self.bug.get()
    }

    /// Wake every thread blocked in a wait (after a bug check, so it can park).
    pub(crate) fn wake_waiters(&self) {
        drop(lock(&self.dispatcher));
        self.dispatcher_cv.notify_all();
        self.dpcs.wake_all();
        self.timers.wake_all();
    }

    /// Stop the DPC and timer threads (the machine is being dropped).
    pub(crate) fn shutdown(&self) {
        self.dpcs.shutdown();
        self.timers.shutdown();
    }
}

/// Force IRQL Checking at a synchronization object a driver hands the kernel: in pageable
/// memory it is 0xC4/0xE1 (`Hooks::on_sync_object_pageable`).
pub(crate) fn check_sync_object(m: &crate::machine::System, object: usize) {
    let pageable = m.mm.paging.contains(object).is_some();
    if let Some(bc) = m.verifier.on_sync_object_pageable(object, pageable) {
        raise(m, bc);
    }
}

/// A driver raised the IRQL to DISPATCH_LEVEL or above, or asked for a spin lock: Force IRQL
/// Checking trims all pageable memory (`mm::paging`).
pub(crate) fn on_driver_raise(m: &crate::machine::System) {
    m.mm.paging.trim();
}

/// Per-thread IRQL (kept in the thread's [`thread::KThread`]).
pub mod irql {
    /// The current thread's IRQL (PASSIVE_LEVEL on a thread that is not an ntsim thread).
    pub fn get() -> u8 {
        super::thread::irql()
    }

    /// Set the current thread's IRQL (ntsim-internal; drivers use spin locks). No effect on a
    /// thread that is not an ntsim thread.
    pub fn set(v: u8) {
        super::thread::set_irql(v)
    }
}

/// How long a waiter spins on an event before it blocks: a wait satisfied by a thread running
/// on another processor within this time costs no sleep and wake-up (the spin yields the
/// processor between short bursts).
const WAIT_SPIN: Duration = Duration::from_micros(20);

/// How long [`spin_until`] spins on `pause` alone before it starts yielding the processor.
const PURE_SPIN: Duration = Duration::from_nanos(1000);

/// Spin until `done()` or `limit` passes: first [`PURE_SPIN`] of `pause` (a hand-off from a
/// thread running on another processor lands within it), then short bursts of `pause` with the
/// processor yielded between them (so an oversubscribed machine loses little to the spin).
pub(crate) fn spin_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let end = start + limit;
    let pure_end = start + PURE_SPIN.min(limit);
    loop {
        for _ in 0..16 {
            std::hint::spin_loop();
        }
        if done() {
            return true;
        }
        let now = Instant::now();
        if now >= end {
            return false;
        }
        if now >= pure_end {
            std::thread::yield_now();
            if done() {
                return true;
            }
        }
    }
}

fn event_state(ev: *mut KEVENT) -> &'static AtomicI32 {
    // SAFETY: the caller passed a KEVENT it owns; `SignalState` is a naturally aligned LONG
    // inside it, and every access ntsim makes to it is atomic, so viewing it as an AtomicI32
    // for the duration of the call is sound. The 'static lifetime never escapes the export.
    let p = unsafe { &raw mut (*ev).Header.SignalState };
    // SAFETY: as above: aligned, live, and only accessed atomically.
    unsafe { AtomicI32::from_ptr(p) }
}

/// `KeInitializeEvent`.
///
/// # Safety
/// `Event` must point to writable storage for a KEVENT.
pub unsafe extern "win64" fn KeInitializeEvent(
    Event: *mut KEVENT,
    Type: EVENT_TYPE,
    State: BOOLEAN,
) {
    let m = current();
    check_sync_object(&m, Event as usize);
    let ty = if Type == SYNCHRONIZATION_EVENT {
        EVENT_SYNCHRONIZATION_OBJECT
    } else {
        EVENT_NOTIFICATION_OBJECT
    };
    let header = DISPATCHER_HEADER {
        Type: ty,
        Signalling: 0,
        Size: (core::mem::size_of::<KEVENT>() / 4) as u8,
        Reserved1: 0,
        SignalState: (State != 0) as i32,
        WaitListHead: LIST_ENTRY {
            Flink: core::ptr::null_mut(),
            Blink: core::ptr::null_mut(),
        },
    };
    // SAFETY: the caller guarantees `Event` is writable KEVENT storage; we write the whole
    // header, and the wait list points at itself as Windows initializes it.
    // Unaligned: x64 does not fault on a misaligned KEVENT, so neither does ntsim.
    unsafe {
        Event.write_unaligned(KEVENT { Header: header });
    }
    let head = crate::ke::list_head(Event);
    // SAFETY: `Event` was just initialized and is writable; the list head is its own member.
    unsafe {
        head.write_unaligned(LIST_ENTRY {
            Flink: head,
            Blink: head,
        });
    }
}

fn list_head(ev: *mut KEVENT) -> *mut LIST_ENTRY {
    // SAFETY: computing a field address of a caller-provided KEVENT does not read it.
    unsafe { &raw mut (*ev).Header.WaitListHead }
}

/// `KeSetEvent`: returns the previous state.
///
/// # Safety
/// `Event` must be an initialized KEVENT.
pub unsafe extern "win64" fn KeSetEvent(
    Event: *mut KEVENT,
    _Increment: KPRIORITY,
    _Wait: BOOLEAN,
) -> LONG {
    let m = current();
    let prev = event_state(Event).swap(1, Ordering::SeqCst);
    // A sleeper counts itself before it last looks at the state, so either it sees the new
    // state or it is counted here (both SeqCst); taking the lock orders the notify after its
    // wait began.
    if m.ke.sleepers.load(Ordering::SeqCst) > 0 {
        drop(lock(&m.ke.dispatcher));
        m.ke.dispatcher_cv.notify_all();
    }
    prev
}

/// `KeClearEvent`.
///
/// # Safety
/// `Event` must be an initialized KEVENT.
pub unsafe extern "win64" fn KeClearEvent(Event: *mut KEVENT) {
    let m = current();
    dispatch::dispatch_lte(&m);
    event_state(Event).store(0, Ordering::SeqCst);
}

/// `KeResetEvent`: returns the previous state.
///
/// # Safety
/// `Event` must be an initialized KEVENT.
pub unsafe extern "win64" fn KeResetEvent(Event: *mut KEVENT) -> LONG {
    let m = current();
    dispatch::dispatch_lte(&m);
    event_state(Event).swap(0, Ordering::SeqCst)
}

/// `KeReadStateEvent`.
///
/// # Safety
/// `Event` must be an initialized KEVENT.
pub unsafe extern "win64" fn KeReadStateEvent(Event: *mut KEVENT) -> LONG {
    let m = current();
    dispatch::dispatch_lte(&m);
    event_state(Event).load(Ordering::SeqCst)
}

/// 100-ns intervals between 1601-01-01 and 1970-01-01.
const EPOCH_1601_TO_1970: i64 = 116_444_736_000_000_000;

/// Current system time as Windows counts it (100 ns since 1601).
pub fn system_time() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    EPOCH_1601_TO_1970 + (d.as_nanos() / 100) as i64
}

/// Turn a Windows timeout (NULL = infinite, negative = relative, positive = absolute) into a
/// deadline.
fn deadline(timeout: *mut LARGE_INTEGER) -> Option<Instant> {
    if timeout.is_null() {
        return None;
    }
    // SAFETY: non-null timeout pointers are caller-owned LARGE_INTEGERs; QuadPart covers all 8
    // bytes so every bit pattern is valid. Unaligned: x64 reads a misaligned one just as well.
    let li = unsafe { timeout.read_unaligned() };
    // SAFETY: every member of the LARGE_INTEGER union covers plain integer bits.
    let t = unsafe { li.QuadPart };
    let rel = if t < 0 {
        t.unsigned_abs()
    } else {
        (t - system_time()).max(0) as u64
    };
    // A deadline `Instant` cannot hold is as good as none (never reached).
    Instant::now().checked_add(Duration::from_nanos(rel.saturating_mul(100)))
}

/// `KeWaitForSingleObject`: wait for any dispatcher object — event, timer, semaphore, mutex,
/// thread — by its `DISPATCHER_HEADER.Type` ([`dispatch`]): STATUS_SUCCESS (STATUS_WAIT_0)
/// when it is signaled (and taken: a synchronization event or timer resets, a semaphore
/// counts down, a mutex becomes the caller's), STATUS_TIMEOUT when the timeout expires. IRQL
/// rules: [`dispatch::check_wait_irql`].
///
/// # Safety
/// `Object` must be an initialized dispatcher object; `Timeout` null or a valid LARGE_INTEGER.
pub unsafe extern "win64" fn KeWaitForSingleObject(
    Object: PVOID,
    _WaitReason: KWAIT_REASON,
    WaitMode: KPROCESSOR_MODE,
    _Alertable: BOOLEAN,
    Timeout: *mut LARGE_INTEGER,
) -> NTSTATUS {
    let m = current();
    dispatch::check_wait_mode(&m, WaitMode, &[Object]);
    let dl = deadline(Timeout);
    let may_block = dl.is_none_or(|d| d > Instant::now());
    dispatch::check_wait_irql(&m, Object as u64, may_block);
    dispatch::wait(&m, &[Object], false, dl)
}

/// `KeDelayExecutionThread`.
///
/// # Safety
/// `Interval` must point to a LARGE_INTEGER.
pub unsafe extern "win64" fn KeDelayExecutionThread(
    _WaitMode: KPROCESSOR_MODE,
    _Alertable: BOOLEAN,
    Interval: *mut LARGE_INTEGER,
) -> NTSTATUS {
    let m = current();
    dispatch::check_wait_irql(&m, 0, true);
    match deadline(Interval) {
        Some(d) => {
            let now = Instant::now();
            if d > now {
                std::thread::sleep(d - now);
            } else {
                std::thread::yield_now();
            }
        }
        // An interval too long for `Instant`: the thread sleeps for good.
        None if !Interval.is_null() => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        None => {}
    }
    STATUS_SUCCESS
}

/// `KeAcquireSpinLockRaiseToDpc`: raise to DISPATCH_LEVEL and take the lock; returns the old IRQL.
///
/// # Safety
/// `SpinLock` must point to a KSPIN_LOCK.
pub unsafe extern "win64" fn KeAcquireSpinLockRaiseToDpc(SpinLock: *mut KSPIN_LOCK) -> KIRQL {
    let m = current();
    let old = irql::get();
    spinlock::check_raise(&m, old, SpinLock);
    irql::set(DISPATCH_LEVEL);
    spinlock::acquire_word(&m, SpinLock);
    old
}

/// `KeReleaseSpinLock`.
///
/// # Safety
/// `SpinLock` must be a KSPIN_LOCK held by the caller.
pub unsafe extern "win64" fn KeReleaseSpinLock(SpinLock: *mut KSPIN_LOCK, NewIrql: KIRQL) {
    let m = current();
    if let Some(bc) = m
        .verifier
        .on_release_spinlock(irql::get(), SpinLock as usize)
    {
        raise(&m, bc);
    }
    spinlock::release_word(&m, SpinLock);
    irql::set(NewIrql);
}

/// Performance-counter frequency: 10 MHz, as on current x64 Windows.
pub const PERFORMANCE_FREQUENCY: i64 = 10_000_000;

/// `KeQueryPerformanceCounter`.
///
/// # Safety
/// `PerformanceFrequency` must be null or point to a writable LARGE_INTEGER.
pub unsafe extern "win64" fn KeQueryPerformanceCounter(
    PerformanceFrequency: *mut LARGE_INTEGER,
) -> LARGE_INTEGER {
    let m = current();
    if !PerformanceFrequency.is_null() {
        // SAFETY: non-null, caller-owned and writable per the contract.
        unsafe {
            PerformanceFrequency.write(LARGE_INTEGER {
                QuadPart: PERFORMANCE_FREQUENCY,
            });
        }
    }
    let ticks = (m.ke.epoch.elapsed().as_nanos() / 100) as i64;
    LARGE_INTEGER { QuadPart: ticks }
}

/// `KeBugCheckEx`: stop the machine with the driver's own code and parameters.
///
/// # Safety
/// Always safe to call; never returns.
pub unsafe extern "win64" fn KeBugCheckEx(
    BugCheckCode: ULONG,
    P1: ULONG_PTR,
    P2: ULONG_PTR,
    P3: ULONG_PTR,
    P4: ULONG_PTR,
) -> ! {
    let m = current();
    raise(
        &m,
        Bc::new(BugCheckCode, [P1 as u64, P2 as u64, P3 as u64, P4 as u64]),
    )
}
