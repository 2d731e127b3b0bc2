//! Small safe wrappers over the kernel primitives the driver shell needs: a spin lock, an event,
//! a rundown gate for in-flight requests, the performance counter and a thread yield.
//!
//! (Work items are not here: they come from `io-workitem`.)
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, Ordering};

use nt_abi::imports::{
    KeAcquireSpinLockRaiseToDpc, KeDelayExecutionThread, KeInitializeEvent,
    KeQueryPerformanceCounter, KeReleaseSpinLock, KeSetEvent, KeWaitForSingleObject,
};
use nt_abi::*;

/// A `KSPIN_LOCK` guarding a `T`. Usable at IRQL ≤ DISPATCH_LEVEL; the closure runs at
/// DISPATCH_LEVEL, so it must not wait, touch pageable memory or call anything PASSIVE-only.
pub struct SpinLock<T> {
    lock: UnsafeCell<KSPIN_LOCK>,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` only happens inside `with`, with the spin lock held, so at most one
// thread touches it at a time; moving `T` between threads is what `T: Send` allows.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: the lock word is a plain integer; ownership of `T` moves with the lock.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A released lock (`KeInitializeSpinLock` stores 0).
    pub const fn new(value: T) -> Self {
        SpinLock {
            lock: UnsafeCell::new(0),
            data: UnsafeCell::new(value),
        }
    }

    /// Run `f` with the lock held (at DISPATCH_LEVEL).
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: the lock word lives as long as `self` and is only used through these calls;
        // callers run at IRQL ≤ DISPATCH_LEVEL (dispatch routines and work-item routines).
        let old_irql = unsafe { KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        // SAFETY: the spin lock is held, so this is the only reference to `data` until release.
        let result = f(unsafe { &mut *self.data.get() });
        // SAFETY: we acquired this lock above at `old_irql` and are still at DISPATCH_LEVEL.
        unsafe { KeReleaseSpinLock(self.lock.get(), old_irql) };
        result
    }
}

/// A `KEVENT`. It must stay at one address from [`Event::init`] to its last use, because the
/// kernel links waiters to it; the types that hold one are never moved while in use.
#[repr(transparent)]
pub struct Event(UnsafeCell<KEVENT>);

// SAFETY: KEVENT is a dispatcher object designed to be signalled and waited on from any thread;
// every access goes through the kernel's Ke* calls, which synchronize internally.
unsafe impl Sync for Event {}
// SAFETY: as above; the event holds no thread affinity.
unsafe impl Send for Event {}

impl Event {
    /// An event that must be [`init`](Event::init)ialized in place before use.
    pub const fn uninit() -> Self {
        Event(UnsafeCell::new(KEVENT {
            Header: DISPATCHER_HEADER {
                Type: 0,
                Signalling: 0,
                Size: 0,
                Reserved1: 0,
                SignalState: 0,
                WaitListHead: LIST_ENTRY {
                    Flink: core::ptr::null_mut(),
                    Blink: core::ptr::null_mut(),
                },
            },
        }))
    }

    /// Initialize the event in place, non-signalled.
    ///
    /// # Safety
    /// `self` must not move between this call and its last use, and nobody may wait on or signal
    /// it concurrently with this call.
    pub unsafe fn init(&self, kind: EVENT_TYPE) {
        // SAFETY: the storage is a KEVENT owned by `self`; the caller guarantees no concurrent
        // use and a stable address.
        unsafe { KeInitializeEvent(self.0.get(), kind, FALSE) };
    }

    /// Signal the event.
    pub fn set(&self) {
        // SAFETY: the event was initialized in place (the holder's invariant); KeSetEvent with
        // Wait = FALSE is legal at IRQL ≤ DISPATCH_LEVEL.
        unsafe { KeSetEvent(self.0.get(), 0, FALSE) };
    }

    /// Signal the event through a raw pointer, without creating a reference: for the last
    /// touch of memory that a waiter may free as soon as the signal lands.
    ///
    /// # Safety
    /// `event` points to an initialized `Event` that is live when the call starts.
    pub unsafe fn signal_raw(event: *const Event) {
        // `Event` is `repr(transparent)` over `UnsafeCell<KEVENT>`.
        let kevent = UnsafeCell::raw_get(event.cast::<UnsafeCell<KEVENT>>());
        // SAFETY: the event is initialized and live at the call (caller); KeSetEvent with
        // Wait = FALSE is legal at IRQL <= DISPATCH_LEVEL.
        unsafe { KeSetEvent(kevent, 0, FALSE) };
    }

    /// Wait (kernel mode, not alertable, no timeout) until the event is signalled.
    /// Callable at PASSIVE_LEVEL only.
    pub fn wait(&self) {
        // SAFETY: the event was initialized in place; a kernel-mode wait keeps the stack
        // resident, and a null timeout means "wait forever", which is legal at PASSIVE_LEVEL.
        unsafe {
            KeWaitForSingleObject(
                self.0.get().cast(),
                EXECUTIVE,
                KERNEL_MODE,
                FALSE,
                core::ptr::null_mut(),
            )
        };
    }
}

/// Gate for requests in flight inside the driver: `acquire` before touching shared state,
/// `release` after; `close_and_wait` refuses new acquisitions and waits for the last release.
pub struct Rundown {
    /// Low bits: active count; [`Rundown::CLOSED`]: no new acquisitions.
    state: AtomicU32,
    drained: Event,
}

impl Rundown {
    const CLOSED: u32 = 1 << 31;

    pub const fn new() -> Self {
        Rundown {
            state: AtomicU32::new(0),
            drained: Event::uninit(),
        }
    }

    /// # Safety
    /// As [`Event::init`]: `self` does not move afterwards, and nothing uses it concurrently.
    pub unsafe fn init(&self) {
        // SAFETY: forwarded from the caller.
        unsafe { self.drained.init(NOTIFICATION_EVENT) };
    }

    /// Enter; `false` once the gate is closed.
    pub fn acquire(&self) -> bool {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if cur & Self::CLOSED != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    /// Leave; wakes `close_and_wait` when the last request leaves a closed gate.
    pub fn release(&self) {
        let prev = self.state.fetch_sub(1, Ordering::AcqRel);
        if prev == Self::CLOSED | 1 {
            self.drained.set();
        }
    }

    /// Close the gate and wait for every acquired request to release. PASSIVE_LEVEL only.
    pub fn close_and_wait(&self) {
        let prev = self.state.fetch_or(Self::CLOSED, Ordering::AcqRel);
        if prev & !Self::CLOSED != 0 {
            self.drained.wait();
        }
    }
}

/// `KeQueryPerformanceCounter`: (ticks, ticks per second).
pub fn perf_counter() -> (u64, u64) {
    let mut frequency = LARGE_INTEGER { QuadPart: 0 };
    // SAFETY: callable at any IRQL; `frequency` is a valid out pointer.
    let now = unsafe { KeQueryPerformanceCounter(&mut frequency) };
    // SAFETY: both unions were written as whole 64-bit integers (QuadPart), and every bit
    // pattern is a valid i64.
    let ticks = unsafe { now.QuadPart };
    // SAFETY: as above.
    let freq = unsafe { frequency.QuadPart };
    (ticks as u64, freq as u64)
}

/// Give up the processor once (relative zero-length delay). PASSIVE_LEVEL only.
pub fn yield_thread() {
    let mut interval = LARGE_INTEGER { QuadPart: 0 };
    // SAFETY: a kernel-mode, non-alertable relative delay of 0 at PASSIVE_LEVEL just yields;
    // `interval` is a valid pointer for the call.
    unsafe { KeDelayExecutionThread(KERNEL_MODE, FALSE, &mut interval) };
}

/// Sleep for `ms` milliseconds. PASSIVE_LEVEL only.
pub fn sleep_ms(ms: i64) {
    // Negative = relative, in 100 ns units.
    let mut interval = LARGE_INTEGER {
        QuadPart: -(ms * 10_000),
    };
    // SAFETY: as in `yield_thread`.
    unsafe { KeDelayExecutionThread(KERNEL_MODE, FALSE, &mut interval) };
}
