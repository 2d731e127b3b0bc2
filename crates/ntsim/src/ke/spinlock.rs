//! Spin locks beyond `KeAcquireSpinLockRaiseToDpc` / `KeReleaseSpinLock` (which live in
//! `ke/mod.rs` and share [`acquire_word`] / [`release_word`]): the DPC-level forms, try/test,
//! the `ForDpc` forms and in-stack queued spin locks.
//!
//! The lock word: 0 free; 1 held by an ordinary acquisition; otherwise the address of the
//! `KSPIN_LOCK_QUEUE` (inside the caller's `KLOCK_QUEUE_HANDLE`) at the tail of the queue of an
//! in-stack queued acquisition — the queued lock is a list of waiters in their own stack
//! handles, each spinning on its own entry and handed the lock in FIFO order (Microsoft,
//! *Queued Spin Locks*; ReactOS `ke/spinlock.c`). Each entry's `Lock` holds the lock's address
//! with bit 0 `LOCK_QUEUE_WAIT` (still waiting) and bit 1 `LOCK_QUEUE_OWNER` (holds it). An
//! ordinary acquisition waits for the word to be 0 and a queued one for it not to be 1, so the
//! two kinds exclude each other on one lock (Windows requires one kind per lock; ntsim does not
//! check it).
//!
//! IRQL rules (verifier `irql_checking`, Microsoft *Bug Check 0xC4*): `…AtDpcLevel` below
//! DISPATCH_LEVEL 0x40, `…FromDpcLevel` below DISPATCH_LEVEL 0x41, raising acquisitions above
//! DISPATCH_LEVEL 0x42 (0xA without the verifier), a raising release not at DISPATCH_LEVEL
//! 0x32; a release of a lock nobody holds 0x1007 (`deadlock_detection`, with the lock-order
//! rules of `verifier::deadlock`).
#![allow(non_snake_case)]

use std::sync::atomic::{AtomicUsize, Ordering};

use nt_abi::bugcheck as codes;
use nt_abi::*;

use super::bugcheck::raise;
use super::thread::{self, Cur, current, park_forever};
use crate::verifier::{Bc, LockKind};

/// The address of field `$f` of the `$t` at `$p`, by offset: plain pointer arithmetic, no
/// dereference (so it needs no `unsafe`); the caller's later access is what must be sound.
macro_rules! field {
    ($p:expr, $t:ty, $f:ident) => {
        ($p as *mut u8)
            .wrapping_add(core::mem::offset_of!($t, $f))
            .cast()
    };
    ($p:expr, $t:ty, $f:ident, $ft:ty) => {
        ($p as *mut u8)
            .wrapping_add(core::mem::offset_of!($t, $f))
            .cast::<$ft>()
    };
}
pub(crate) use field;

const LOCK_QUEUE_WAIT: usize = 1;
const LOCK_QUEUE_OWNER: usize = 2;
const HELD: usize = 1;

fn word(lock: *mut KSPIN_LOCK) -> &'static AtomicUsize {
    // SAFETY: a KSPIN_LOCK is a naturally aligned ULONG_PTR owned by the driver; every access
    // ntsim makes to it is atomic, and the reference does not outlive the export call.
    unsafe { AtomicUsize::from_ptr(lock) }
}

/// Spin (yielding, and parking after a bug check) until `f()`.
fn spin(m: &Cur, mut f: impl FnMut() -> bool) {
    let mut spins = 0u32;
    while !f() {
        spins += 1;
        if spins > 64 {
            std::thread::yield_now();
            if m.ke.is_bugged() {
                park_forever();
            }
        } else {
            std::hint::spin_loop();
        }
    }
}

/// What Force IRQL Checking does at every spin-lock request: the lock must not be pageable
/// (0xC4/0xE1), and pageable memory is trimmed.
fn on_lock_request(m: &Cur, lock: *mut KSPIN_LOCK) {
    super::check_sync_object(m, lock as usize);
    super::on_driver_raise(m);
}

/// Deadlock detection before a spin-lock acquisition spins (order, self-deadlock, API type).
fn check_order(m: &Cur, lock: *mut KSPIN_LOCK, kind: LockKind) {
    let on_stack = crate::mm::on_current_stack(lock as usize);
    if let Some(bc) =
        m.verifier
            .on_lock_acquire(super::dispatch::me(), lock as usize, kind, on_stack)
    {
        raise(m, bc);
    }
}

fn now_held(m: &Cur, lock: *mut KSPIN_LOCK) {
    let on_stack = crate::mm::on_current_stack(lock as usize);
    m.verifier
        .on_lock_held(super::dispatch::me(), lock as usize, on_stack);
}

/// Deadlock detection at a release: another thread's lock (0x1004), the wrong API (0x1009).
fn check_release(m: &Cur, lock: *mut KSPIN_LOCK, kind: LockKind) {
    if let Some(bc) = m
        .verifier
        .on_lock_release(super::dispatch::me(), lock as usize, kind)
    {
        raise(m, bc);
    }
}

/// Take `lock` the ordinary way (word 0 → 1).
pub(crate) fn acquire_word(m: &Cur, lock: *mut KSPIN_LOCK) {
    on_lock_request(m, lock);
    check_order(m, lock, LockKind::SpinLock);
    let w = word(lock);
    spin(m, || {
        w.compare_exchange_weak(0, HELD, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    });
    now_held(m, lock);
}

/// Release an ordinary hold; a lock nobody holds is 0xC4/0x1007 (verifier).
pub(crate) fn release_word(m: &Cur, lock: *mut KSPIN_LOCK) {
    check_release(m, lock, LockKind::SpinLock);
    let prev = word(lock).swap(0, Ordering::Release);
    if prev == 0
        && let Some(bc) = m.verifier.on_release_unacquired(lock as usize)
    {
        raise(m, bc);
    }
}

/// The check every raising acquisition makes: above DISPATCH_LEVEL is 0xC4/0x42 with the
/// verifier, ntoskrnl's 0xA without.
pub(crate) fn check_raise(m: &Cur, old: KIRQL, lock: *mut KSPIN_LOCK) {
    if let Some(bc) = m.verifier.on_acquire_spinlock(old, lock as usize) {
        raise(m, bc);
    }
    if old > DISPATCH_LEVEL {
        raise(
            m,
            Bc::new(
                codes::IRQL_NOT_LESS_OR_EQUAL,
                [lock as u64, old as u64, 0, 0],
            ),
        );
    }
}

fn check_at_dpc(m: &Cur, lock: *mut KSPIN_LOCK) {
    if let Some(bc) = m
        .verifier
        .on_acquire_spinlock_at_dpc(thread::irql(), lock as usize)
    {
        raise(m, bc);
    }
}

fn check_from_dpc(m: &Cur, lock: *mut KSPIN_LOCK) {
    if let Some(bc) = m
        .verifier
        .on_release_spinlock_from_dpc(thread::irql(), lock as usize)
    {
        raise(m, bc);
    }
}

/// `KeAcquireSpinLockAtDpcLevel` (Microsoft: callers run at DISPATCH_LEVEL).
///
/// # Safety
/// `SpinLock` must point to a KSPIN_LOCK.
pub unsafe extern "win64" fn KeAcquireSpinLockAtDpcLevel(SpinLock: *mut KSPIN_LOCK) {
    let m = current();
    check_at_dpc(&m, SpinLock);
    acquire_word(&m, SpinLock);
}

/// `KeReleaseSpinLockFromDpcLevel`: release; the IRQL stays.
///
/// # Safety
/// `SpinLock` must point to a KSPIN_LOCK.
pub unsafe extern "win64" fn KeReleaseSpinLockFromDpcLevel(SpinLock: *mut KSPIN_LOCK) {
    let m = current();
    check_from_dpc(&m, SpinLock);
    release_word(&m, SpinLock);
}

/// `KeTryToAcquireSpinLockAtDpcLevel`: one attempt; TRUE when acquired.
///
/// # Safety
/// `SpinLock` must point to a KSPIN_LOCK.
pub unsafe extern "win64" fn KeTryToAcquireSpinLockAtDpcLevel(
    SpinLock: *mut KSPIN_LOCK,
) -> BOOLEAN {
    let m = current();
    check_at_dpc(&m, SpinLock);
    on_lock_request(&m, SpinLock);
    let got = word(SpinLock)
        .compare_exchange(0, HELD, Ordering::Acquire, Ordering::Relaxed)
        .is_ok();
    if got {
        now_held(&m, SpinLock);
    }
    got as BOOLEAN
}

/// `KeTestSpinLock`: TRUE when the lock is free (Microsoft: FALSE if it is currently held);
/// it never acquires it.
///
/// # Safety
/// `SpinLock` must point to a KSPIN_LOCK.
pub unsafe extern "win64" fn KeTestSpinLock(SpinLock: *mut KSPIN_LOCK) -> BOOLEAN {
    let _m = current();
    (word(SpinLock).load(Ordering::Acquire) == 0) as BOOLEAN
}

/// `KeAcquireSpinLockForDpc`: at DISPATCH_LEVEL like `KeAcquireSpinLockAtDpcLevel`, below it
/// raise first; returns the old IRQL.
///
/// # Safety
/// `SpinLock` must point to a KSPIN_LOCK.
pub unsafe extern "win64" fn KeAcquireSpinLockForDpc(SpinLock: *mut KSPIN_LOCK) -> KIRQL {
    let m = current();
    let old = thread::irql();
    check_raise(&m, old, SpinLock);
    thread::set_irql(DISPATCH_LEVEL);
    acquire_word(&m, SpinLock);
    old
}

/// `KeReleaseSpinLockForDpc`: release and return to `OldIrql`.
///
/// # Safety
/// `SpinLock` must be held by the caller.
pub unsafe extern "win64" fn KeReleaseSpinLockForDpc(SpinLock: *mut KSPIN_LOCK, OldIrql: KIRQL) {
    let m = current();
    check_from_dpc(&m, SpinLock);
    release_word(&m, SpinLock);
    thread::set_irql(OldIrql);
}

/// The queue entry of a handle.
fn entry(h: *mut KLOCK_QUEUE_HANDLE) -> *mut KSPIN_LOCK_QUEUE {
    // SAFETY: projecting to a field of the caller's handle reads nothing.
    unsafe { &raw mut (*h).LockQueue }
}

fn entry_lock(q: *mut KSPIN_LOCK_QUEUE) -> &'static AtomicUsize {
    // SAFETY: `Lock` is a pointer-sized, aligned field of a live queue entry in the caller's
    // handle; ntsim accesses it only atomically while the handle is in use.
    unsafe { AtomicUsize::from_ptr(field!(q, KSPIN_LOCK_QUEUE, Lock)) }
}

fn entry_next(q: *mut KSPIN_LOCK_QUEUE) -> &'static AtomicUsize {
    // SAFETY: as for `entry_lock`, for the `Next` field.
    unsafe { AtomicUsize::from_ptr(field!(q, KSPIN_LOCK_QUEUE, Next)) }
}

fn queued_acquire(m: &Cur, lock: *mut KSPIN_LOCK, h: *mut KLOCK_QUEUE_HANDLE) {
    on_lock_request(m, lock);
    check_order(m, lock, LockKind::QueuedSpinLock);
    let q = entry(h);
    entry_next(q).store(0, Ordering::Relaxed);
    entry_lock(q).store(lock as usize | LOCK_QUEUE_WAIT, Ordering::Relaxed);
    let w = word(lock);
    let mut prev = 0usize;
    spin(m, || {
        let cur = w.load(Ordering::Relaxed);
        if cur == HELD {
            return false;
        }
        match w.compare_exchange_weak(cur, q as usize, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(p) => {
                prev = p;
                true
            }
            Err(_) => false,
        }
    });
    if prev != 0 {
        // Link behind the previous tail and wait for it to hand the lock over.
        entry_next(prev as *mut KSPIN_LOCK_QUEUE).store(q as usize, Ordering::Release);
        let l = entry_lock(q);
        spin(m, || l.load(Ordering::Acquire) & LOCK_QUEUE_WAIT == 0);
    }
    entry_lock(q).store(lock as usize | LOCK_QUEUE_OWNER, Ordering::Release);
    now_held(m, lock);
}

fn queued_release(m: &Cur, h: *mut KLOCK_QUEUE_HANDLE) {
    let q = entry(h);
    let tagged = entry_lock(q).load(Ordering::Acquire);
    let lock = (tagged & !(LOCK_QUEUE_WAIT | LOCK_QUEUE_OWNER)) as *mut KSPIN_LOCK;
    if tagged & LOCK_QUEUE_OWNER == 0 || lock.is_null() {
        // A handle that holds nothing: 0xC4/0x1007 with the verifier; without it, nothing to
        // release.
        if let Some(bc) = m.verifier.on_release_unacquired(lock as usize) {
            raise(m, bc);
        }
        return;
    }
    check_release(m, lock, LockKind::QueuedSpinLock);
    entry_lock(q).store(lock as usize, Ordering::Relaxed);
    let w = word(lock);
    if entry_next(q).load(Ordering::Acquire) == 0
        && w.compare_exchange(q as usize, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        return;
    }
    // A successor swapped itself in: wait until it has linked, then hand over.
    let mut next = 0usize;
    spin(m, || {
        next = entry_next(q).load(Ordering::Acquire);
        next != 0
    });
    let nl = entry_lock(next as *mut KSPIN_LOCK_QUEUE);
    nl.fetch_and(!LOCK_QUEUE_WAIT, Ordering::Release);
}

fn handle_lock(h: *mut KLOCK_QUEUE_HANDLE) -> usize {
    entry_lock(entry(h)).load(Ordering::Relaxed) & !(LOCK_QUEUE_WAIT | LOCK_QUEUE_OWNER)
}

fn set_old_irql(h: *mut KLOCK_QUEUE_HANDLE, old: KIRQL) {
    // SAFETY: the caller's writable handle (the documented contract).
    unsafe { field!(h, KLOCK_QUEUE_HANDLE, OldIrql, KIRQL).write(old) };
}

fn old_irql(h: *mut KLOCK_QUEUE_HANDLE) -> KIRQL {
    // SAFETY: the caller's handle, filled by the acquisition.
    unsafe { field!(h, KLOCK_QUEUE_HANDLE, OldIrql, KIRQL).read() }
}

/// `KeAcquireInStackQueuedSpinLock`: raise to DISPATCH_LEVEL, queue behind earlier waiters,
/// save the old IRQL in the handle.
///
/// # Safety
/// `SpinLock` must point to a KSPIN_LOCK and `LockHandle` to writable storage for a handle
/// that stays in place until the release.
pub unsafe extern "win64" fn KeAcquireInStackQueuedSpinLock(
    SpinLock: *mut KSPIN_LOCK,
    LockHandle: *mut KLOCK_QUEUE_HANDLE,
) {
    let m = current();
    let old = thread::irql();
    check_raise(&m, old, SpinLock);
    thread::set_irql(DISPATCH_LEVEL);
    queued_acquire(&m, SpinLock, LockHandle);
    set_old_irql(LockHandle, old);
}

/// `KeReleaseInStackQueuedSpinLock`: hand the lock to the next waiter (or free it) and return to
/// the handle's old IRQL. Not at DISPATCH_LEVEL: 0xC4/0x32 (p3 the lock), as KeReleaseSpinLock.
///
/// # Safety
/// `LockHandle` must be the handle of a held acquisition.
pub unsafe extern "win64" fn KeReleaseInStackQueuedSpinLock(LockHandle: *mut KLOCK_QUEUE_HANDLE) {
    let m = current();
    if let Some(bc) = m
        .verifier
        .on_release_spinlock(thread::irql(), handle_lock(LockHandle))
    {
        raise(&m, bc);
    }
    let old = old_irql(LockHandle);
    queued_release(&m, LockHandle);
    thread::set_irql(old);
}

/// `KeAcquireInStackQueuedSpinLockAtDpcLevel` (caller at DISPATCH_LEVEL: 0xC4/0x40 below it).
///
/// # Safety
/// As for `KeAcquireInStackQueuedSpinLock`.
pub unsafe extern "win64" fn KeAcquireInStackQueuedSpinLockAtDpcLevel(
    SpinLock: *mut KSPIN_LOCK,
    LockHandle: *mut KLOCK_QUEUE_HANDLE,
) {
    let m = current();
    check_at_dpc(&m, SpinLock);
    queued_acquire(&m, SpinLock, LockHandle);
}

/// `KeReleaseInStackQueuedSpinLockFromDpcLevel` (0xC4/0x41 below DISPATCH_LEVEL); the IRQL
/// stays.
///
/// # Safety
/// `LockHandle` must be the handle of a held acquisition.
pub unsafe extern "win64" fn KeReleaseInStackQueuedSpinLockFromDpcLevel(
    LockHandle: *mut KLOCK_QUEUE_HANDLE,
) {
    let m = current();
    check_from_dpc(&m, handle_lock(LockHandle) as *mut KSPIN_LOCK);
    queued_release(&m, LockHandle);
}

/// `KeAcquireInStackQueuedSpinLockForDpc`: raise to DISPATCH_LEVEL unless already there.
///
/// # Safety
/// As for `KeAcquireInStackQueuedSpinLock`.
pub unsafe extern "win64" fn KeAcquireInStackQueuedSpinLockForDpc(
    SpinLock: *mut KSPIN_LOCK,
    LockHandle: *mut KLOCK_QUEUE_HANDLE,
) {
    // SAFETY: same contract.
    unsafe { KeAcquireInStackQueuedSpinLock(SpinLock, LockHandle) }
}

/// `KeReleaseInStackQueuedSpinLockForDpc`: release and return to the handle's old IRQL.
///
/// # Safety
/// `LockHandle` must be the handle of a held acquisition.
pub unsafe extern "win64" fn KeReleaseInStackQueuedSpinLockForDpc(
    LockHandle: *mut KLOCK_QUEUE_HANDLE,
) {
    let m = current();
    check_from_dpc(&m, handle_lock(LockHandle) as *mut KSPIN_LOCK);
    let old = old_irql(LockHandle);
    queued_release(&m, LockHandle);
    thread::set_irql(old);
}
