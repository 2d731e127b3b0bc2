//! Fast mutexes (`FAST_MUTEX`) and guarded mutexes (`KGUARDED_MUTEX`).
//!
//! Both are a `Count` whose bit 0 is set while the mutex is free (the WDK's inline
//! `ExInitializeFastMutex` stores `FM_LOCK_BIT`; `KeInitializeGuardedMutex` stores
//! `GM_LOCK_BIT`) plus an auto-reset event the waiters block on — the FAST_MUTEX's own `Event`,
//! the guarded mutex's `Gate` (initialized here as a synchronization event; Windows uses a
//! gate object, which drivers never touch). Acquiring clears bit 0; a thread that finds it
//! clear adds `FM_LOCK_WAITER_INC` (2) to `Count`, waits on the event with the ordinary
//! `KeWaitForSingleObject` and retries; releasing sets bit 0 and signals the event when
//! waiters are counted. `Owner` is the owner's KTHREAD; `Contention` counts waits.
//!
//! Microsoft, *ExAcquireFastMutex*: raises to APC_LEVEL, saves the old IRQL in the mutex;
//! callers at IRQL ≤ APC_LEVEL (verifier 0xC4/0x33); *ExReleaseFastMutex*: at APC_LEVEL
//! (0xC4/0x34), restores the saved IRQL; not recursive. *ExAcquireFastMutexUnsafe* and
//! *KeAcquireGuardedMutexUnsafe*: no IRQL change; callers at APC_LEVEL or with APCs disabled
//! (0xC4/0x39, 0x3A for the releases). *KeAcquireGuardedMutex*: enters a guarded region,
//! left by *KeReleaseGuardedMutex*. A release of a mutex nobody holds: 0xC4/0x1007
//! (deadlock_detection), as are the lock-order rules (`verifier::deadlock`).
#![allow(non_snake_case)]

use std::sync::atomic::{AtomicI32, Ordering};

use nt_abi::*;

use crate::ke::bugcheck::raise;
use crate::ke::spinlock::field;
use crate::ke::thread::{self, Cur, current};
use crate::verifier::LockKind;

/// The parts of either mutex the algorithm uses.
#[derive(Clone, Copy)]
struct Core {
    count: *mut LONG,
    event: *mut KEVENT,
    contention: *mut ULONG,
    owner: *mut PVOID,
}

fn fast(m: *mut FAST_MUTEX) -> Core {
    Core {
        count: field!(m, FAST_MUTEX, Count),
        event: field!(m, FAST_MUTEX, Event),
        contention: field!(m, FAST_MUTEX, Contention),
        owner: field!(m, FAST_MUTEX, Owner),
    }
}

fn guarded(m: *mut KGUARDED_MUTEX) -> Core {
    // The gate has a KEVENT's layout (a DISPATCHER_HEADER).
    Core {
        count: field!(m, KGUARDED_MUTEX, Count),
        event: field!(m, KGUARDED_MUTEX, Gate),
        contention: field!(m, KGUARDED_MUTEX, Contention),
        owner: field!(m, KGUARDED_MUTEX, Owner),
    }
}

impl Core {
    fn count(&self) -> &'static AtomicI32 {
        // SAFETY: `Count` is an aligned LONG of a live mutex; every access ntsim makes to it
        // is atomic, and the reference does not outlive the export call.
        unsafe { AtomicI32::from_ptr(self.count) }
    }

    fn try_take(&self) -> bool {
        self.count().fetch_and(!FM_LOCK_BIT, Ordering::AcqRel) & FM_LOCK_BIT != 0
    }

    fn acquire(&self) {
        let c = self.count();
        loop {
            if self.try_take() {
                break;
            }
            let v = c.load(Ordering::Acquire);
            if v & FM_LOCK_BIT != 0 {
                continue;
            }
            if c.compare_exchange(
                v,
                v.wrapping_add(FM_LOCK_WAITER_INC),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
            {
                continue;
            }
            // SAFETY: `Contention` is a plain ULONG of the caller's mutex; only its owner-to-be
            // updates it (a statistic, as on Windows).
            let n = unsafe { self.contention.read() };
            // SAFETY: as above.
            unsafe { self.contention.write(n.wrapping_add(1)) };
            // SAFETY: the mutex's own synchronization event (initialized with the mutex), waited
            // on without a timeout.
            unsafe {
                crate::ke::KeWaitForSingleObject(
                    self.event.cast(),
                    EXECUTIVE,
                    KERNEL_MODE,
                    0,
                    core::ptr::null_mut(),
                );
            }
            c.fetch_sub(FM_LOCK_WAITER_INC, Ordering::AcqRel);
        }
        self.set_owner(crate::ke::cpu::current_thread());
    }

    fn set_owner(&self, t: PVOID) {
        // SAFETY: `Owner` is a pointer field of the caller's mutex, written only by its holder.
        unsafe { self.owner.write(t) };
    }

    fn held(&self) -> bool {
        self.count().load(Ordering::Acquire) & FM_LOCK_BIT == 0
    }

    /// Release; false when nobody held it (nothing changed).
    fn release(&self) -> bool {
        if !self.held() {
            return false;
        }
        self.set_owner(core::ptr::null_mut());
        let old = self.count().fetch_or(FM_LOCK_BIT, Ordering::AcqRel);
        if old >= FM_LOCK_WAITER_INC {
            // SAFETY: the mutex's own event, initialized with it.
            unsafe { crate::ke::KeSetEvent(self.event, 0, 0) };
        }
        true
    }
}

/// Acquire with Deadlock Detection's checks (order, self-deadlock) before blocking.
fn take(m: &Cur, core: Core, addr: usize) {
    let me = crate::ke::cpu::current_thread() as usize;
    let on_stack = crate::mm::on_current_stack(addr);
    if let Some(bc) = m
        .verifier
        .on_lock_acquire(me, addr, LockKind::FastMutex, on_stack)
    {
        raise(m, bc);
    }
    core.acquire();
    m.verifier.on_lock_held(me, addr, on_stack);
}

/// A successful try-acquire: held, with no order edge (a try cannot deadlock).
fn took(m: &Cur, addr: usize) {
    let me = crate::ke::cpu::current_thread() as usize;
    m.verifier
        .on_lock_held(me, addr, crate::mm::on_current_stack(addr));
}

fn release_checked(m: &Cur, core: Core, addr: usize) {
    let me = crate::ke::cpu::current_thread() as usize;
    if let Some(bc) = m.verifier.on_lock_release(me, addr, LockKind::FastMutex) {
        raise(m, bc);
    }
    if !core.release()
        && let Some(bc) = m.verifier.on_release_unacquired(addr)
    {
        raise(m, bc);
    }
}

/// `ExAcquireFastMutex`.
///
/// # Safety
/// `FastMutex` must be a FAST_MUTEX initialized by ExInitializeFastMutex.
pub unsafe extern "win64" fn ExAcquireFastMutex(FastMutex: *mut FAST_MUTEX) {
    let m = current();
    let old = thread::irql();
    if let Some(bc) = m.verifier.on_acquire_fast_mutex(old, FastMutex as usize) {
        raise(&m, bc);
    }
    crate::ke::check_sync_object(&m, FastMutex as usize);
    thread::set_irql(APC_LEVEL.max(old));
    take(&m, fast(FastMutex), FastMutex as usize);
    // SAFETY: the mutex is now ours; OldIrql is a plain ULONG of it.
    unsafe { field!(FastMutex, FAST_MUTEX, OldIrql, ULONG).write(old as ULONG) };
}

/// `ExTryToAcquireFastMutex`: TRUE (at APC_LEVEL, old IRQL saved) or FALSE (IRQL unchanged).
///
/// # Safety
/// `FastMutex` must be an initialized FAST_MUTEX.
pub unsafe extern "win64" fn ExTryToAcquireFastMutex(FastMutex: *mut FAST_MUTEX) -> BOOLEAN {
    let m = current();
    let old = thread::irql();
    if let Some(bc) = m.verifier.on_acquire_fast_mutex(old, FastMutex as usize) {
        raise(&m, bc);
    }
    let core = fast(FastMutex);
    if !core.try_take() {
        return 0;
    }
    core.set_owner(crate::ke::cpu::current_thread());
    took(&m, FastMutex as usize);
    thread::set_irql(APC_LEVEL.max(old));
    // SAFETY: the mutex is now ours.
    unsafe { field!(FastMutex, FAST_MUTEX, OldIrql, ULONG).write(old as ULONG) };
    1
}

/// `ExReleaseFastMutex`: release and return to the IRQL saved at acquisition.
///
/// # Safety
/// `FastMutex` must be held by the caller (acquired with ExAcquireFastMutex).
pub unsafe extern "win64" fn ExReleaseFastMutex(FastMutex: *mut FAST_MUTEX) {
    let m = current();
    if let Some(bc) = m
        .verifier
        .on_release_fast_mutex(thread::irql(), FastMutex as usize)
    {
        raise(&m, bc);
    }
    // SAFETY: the caller's mutex; OldIrql was stored by the acquisition.
    let old = unsafe { field!(FastMutex, FAST_MUTEX, OldIrql, ULONG).read() } as KIRQL;
    release_checked(&m, fast(FastMutex), FastMutex as usize);
    thread::set_irql(old);
}

fn check_unsafe(m: &Cur, release: bool, addr: usize) {
    if let Some(bc) =
        m.verifier
            .on_mutex_unsafe(release, thread::irql(), thread::apc_disable(), addr)
    {
        raise(m, bc);
    }
}

/// `ExAcquireFastMutexUnsafe`: acquire without changing the IRQL.
///
/// # Safety
/// `FastMutex` must be an initialized FAST_MUTEX.
pub unsafe extern "win64" fn ExAcquireFastMutexUnsafe(FastMutex: *mut FAST_MUTEX) {
    let m = current();
    check_unsafe(&m, false, FastMutex as usize);
    crate::ke::check_sync_object(&m, FastMutex as usize);
    take(&m, fast(FastMutex), FastMutex as usize);
}

/// `ExReleaseFastMutexUnsafe`.
///
/// # Safety
/// `FastMutex` must be held by the caller (acquired with ExAcquireFastMutexUnsafe).
pub unsafe extern "win64" fn ExReleaseFastMutexUnsafe(FastMutex: *mut FAST_MUTEX) {
    let m = current();
    check_unsafe(&m, true, FastMutex as usize);
    release_checked(&m, fast(FastMutex), FastMutex as usize);
}

/// `KeInitializeGuardedMutex`: free, no owner, the gate a synchronization event.
///
/// # Safety
/// `Mutex` must point to writable storage for a KGUARDED_MUTEX.
pub unsafe extern "win64" fn KeInitializeGuardedMutex(Mutex: *mut KGUARDED_MUTEX) {
    let _m = current();
    let core = guarded(Mutex);
    // SAFETY: the caller's writable storage for the mutex (each scalar field is written
    // before any use).
    unsafe { core.count.write(GM_LOCK_BIT) };
    // SAFETY: as above.
    unsafe { core.owner.write(core::ptr::null_mut()) };
    // SAFETY: as above.
    unsafe { core.contention.write(0) };
    // SAFETY: as above.
    unsafe { field!(Mutex, KGUARDED_MUTEX, CombinedApcDisable, ULONG).write(0) };
    // SAFETY: the gate is a DISPATCHER_HEADER inside the caller's storage (KEVENT layout).
    unsafe { crate::ke::KeInitializeEvent(core.event, SYNCHRONIZATION_EVENT, 0) };
}

/// `KeAcquireGuardedMutex`: enter a guarded region, then acquire.
///
/// # Safety
/// `Mutex` must be an initialized KGUARDED_MUTEX.
pub unsafe extern "win64" fn KeAcquireGuardedMutex(Mutex: *mut KGUARDED_MUTEX) {
    let m = current();
    crate::ke::apc::enter_guarded();
    take(&m, guarded(Mutex), Mutex as usize);
}

/// `KeTryToAcquireGuardedMutex`: TRUE (in a guarded region, holding it) or FALSE.
///
/// # Safety
/// `Mutex` must be an initialized KGUARDED_MUTEX.
pub unsafe extern "win64" fn KeTryToAcquireGuardedMutex(Mutex: *mut KGUARDED_MUTEX) -> BOOLEAN {
    let m = current();
    crate::ke::apc::enter_guarded();
    let core = guarded(Mutex);
    if core.try_take() {
        core.set_owner(crate::ke::cpu::current_thread());
        took(&m, Mutex as usize);
        1
    } else {
        crate::ke::apc::leave_guarded();
        0
    }
}

/// `KeReleaseGuardedMutex`: release, then leave the guarded region.
///
/// # Safety
/// `Mutex` must be held by the caller (KeAcquireGuardedMutex).
pub unsafe extern "win64" fn KeReleaseGuardedMutex(Mutex: *mut KGUARDED_MUTEX) {
    let m = current();
    release_checked(&m, guarded(Mutex), Mutex as usize);
    crate::ke::apc::leave_guarded();
}

/// `KeAcquireGuardedMutexUnsafe`: acquire without entering a guarded region.
///
/// # Safety
/// `FastMutex` must be an initialized KGUARDED_MUTEX.
pub unsafe extern "win64" fn KeAcquireGuardedMutexUnsafe(FastMutex: *mut KGUARDED_MUTEX) {
    let m = current();
    check_unsafe(&m, false, FastMutex as usize);
    take(&m, guarded(FastMutex), FastMutex as usize);
}

/// `KeReleaseGuardedMutexUnsafe`.
///
/// # Safety
/// `FastMutex` must be held by the caller (KeAcquireGuardedMutexUnsafe).
pub unsafe extern "win64" fn KeReleaseGuardedMutexUnsafe(FastMutex: *mut KGUARDED_MUTEX) {
    let m = current();
    check_unsafe(&m, true, FastMutex as usize);
    release_checked(&m, guarded(FastMutex), FastMutex as usize);
}
