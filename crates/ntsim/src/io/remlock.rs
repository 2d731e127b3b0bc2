//! Remove locks: `IoInitializeRemoveLockEx`, `IoAcquireRemoveLockEx`, `IoReleaseRemoveLockEx`,
//! `IoReleaseRemoveLockAndWaitEx`, in the caller's `IO_REMOVE_LOCK` (free build: the common
//! block; checked build: plus the debug block, told apart by `RemlockSize`).
//!
//! Sources: Microsoft, *Using Remove Locks*, *IoInitializeRemoveLock*, *IoAcquireRemoveLock*
//! (STATUS_DELETE_PENDING once IoReleaseRemoveLockAndWait was called), *IoReleaseRemoveLock*,
//! *IoReleaseRemoveLockAndWait* (the caller must hold an acquisition; waits until every
//! acquisition is released) (<https://learn.microsoft.com/windows-hardware/drivers/kernel/using-remove-locks>);
//! ReactOS `ntoskrnl/io/iomgr/remlock.c` (IoCount starts at 1, a bias the wait releases; the
//! event is a SynchronizationEvent); Driver Verifier's remove-lock checking (Bug Check 0xC4,
//! p1 = 0xD5: a release whose tag no acquisition used; D. Holan, *New Driver Verifier feature
//! for Vista: runtime checking for remove locks on fre OS builds*: the verifier tracks tags in
//! a shadow lock for free-build locks too, so ntsim tracks tags for both sizes).
#![allow(non_snake_case)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

use nt_abi::bugcheck::{self, verifier_remlock};
use nt_abi::*;

use crate::ke::bugcheck::raise;
use crate::ke::thread::current;
use crate::ke::{KeInitializeEvent, KeSetEvent, KeWaitForSingleObject};
use crate::machine::{System, lock};
use crate::verifier::Bc;

/// The verifier's shadow of each remove lock: outstanding acquisitions by tag.
#[derive(Default)]
pub(crate) struct RemLocks {
    tags: Mutex<HashMap<usize, HashMap<usize, usize>>>,
}

fn io_count(l: *mut IO_REMOVE_LOCK_COMMON_BLOCK) -> &'static AtomicI32 {
    // SAFETY: a field address of the caller's lock; IoCount is a naturally aligned LONG that
    // only interlocked operations change.
    let p = unsafe { &raw mut (*l).IoCount };
    // SAFETY: as above.
    unsafe { AtomicI32::from_ptr(p) }
}

fn removed(l: *mut IO_REMOVE_LOCK_COMMON_BLOCK) -> *mut BOOLEAN {
    // SAFETY: a field address of the caller's lock (no read).
    unsafe { &raw mut (*l).Removed }
}

fn event(l: *mut IO_REMOVE_LOCK_COMMON_BLOCK) -> *mut KEVENT {
    // SAFETY: a field address of the caller's lock (no read).
    unsafe { &raw mut (*l).RemoveEvent }
}

fn checked(size: ULONG) -> bool {
    size == REMLOCK_SIZE_CHECKED
}

/// `IoInitializeRemoveLockEx`: Removed = FALSE, IoCount = 1, RemoveEvent a non-signalled
/// SynchronizationEvent; a checked lock's debug block gets its signature, watermark, tag and an
/// empty tracking list. A `RemlockSize` that is neither layout's size leaves the lock
/// untouched (ReactOS' switch; Windows asserts on checked builds only).
///
/// # Safety
/// `Lock` must be null or writable storage of `RemlockSize` bytes.
pub unsafe extern "win64" fn IoInitializeRemoveLockEx(
    Lock: *mut IO_REMOVE_LOCK_COMMON_BLOCK,
    AllocateTag: ULONG,
    MaxLockedMinutes: ULONG,
    HighWatermark: ULONG,
    RemlockSize: ULONG,
) {
    let m = current();
    if Lock.is_null() || (RemlockSize != REMLOCK_SIZE_FREE && !checked(RemlockSize)) {
        return;
    }
    if checked(RemlockSize) {
        let c = Lock.cast::<IO_REMOVE_LOCK_CHECKED>();
        // SAFETY: `RemlockSize` bytes of writable storage: the checked layout.
        let d = unsafe { &mut (*c).Dbg };
        d.Signature = REMLOCK_SIGNATURE;
        d.HighWatermark = HighWatermark as LONG;
        d.MaxLockedTicks = MaxLockedMinutes as i64 * 60 * 10_000_000 / 156_250;
        d.AllocateTag = AllocateTag as LONG;
        d.LockList = LIST_ENTRY {
            Flink: &raw mut d.LockList,
            Blink: &raw mut d.LockList,
        };
        d.Spin = 0;
        d.LowMemoryCount = 0;
        d.Blocks = core::ptr::null_mut();
    }
    // SAFETY: writable storage per the contract.
    unsafe { removed(Lock).write(0) };
    io_count(Lock).store(1, Ordering::SeqCst);
    // SAFETY: the lock's KEVENT storage.
    unsafe { KeInitializeEvent(event(Lock), SYNCHRONIZATION_EVENT, 0) };
    lock(&m.io.remlocks.tags).insert(Lock as usize, HashMap::new());
}

/// `IoAcquireRemoveLockEx`: count one acquisition; once `IoReleaseRemoveLockAndWaitEx` has
/// started, undo it (signalling the waiter if it was the last) and return
/// STATUS_DELETE_PENDING.
///
/// # Safety
/// `RemoveLock` must be an initialized remove lock of `RemlockSize` bytes.
pub unsafe extern "win64" fn IoAcquireRemoveLockEx(
    RemoveLock: *mut IO_REMOVE_LOCK_COMMON_BLOCK,
    Tag: PVOID,
    _File: *const u8,
    _Line: ULONG,
    _RemlockSize: ULONG,
) -> NTSTATUS {
    let m = current();
    let count = io_count(RemoveLock);
    count.fetch_add(1, Ordering::SeqCst);
    // SAFETY: an initialized lock per the contract; Removed is a plain byte.
    if unsafe { removed(RemoveLock).read_volatile() } != 0 {
        if count.fetch_sub(1, Ordering::SeqCst) == 1 {
            // SAFETY: the lock's initialized event.
            unsafe { KeSetEvent(event(RemoveLock), 0, 0) };
        }
        return STATUS_DELETE_PENDING;
    }
    *lock(&m.io.remlocks.tags)
        .entry(RemoveLock as usize)
        .or_default()
        .entry(Tag as usize)
        .or_default() += 1;
    STATUS_SUCCESS
}

/// Forget one acquisition under `tag`; with I/O verification, a tag no acquisition used is
/// 0xC4/0xD5.
fn release_tag(m: &System, l: *mut IO_REMOVE_LOCK_COMMON_BLOCK, tag: usize) {
    let found = {
        let mut g = lock(&m.io.remlocks.tags);
        let tags = g.entry(l as usize).or_default();
        match tags.get_mut(&tag) {
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    tags.remove(&tag);
                }
                true
            }
            None => false,
        }
    };
    if !found && m.config.verifier.flags().io_verification {
        raise(
            m,
            Bc::verifier(
                bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [
                    verifier_remlock::RELEASE_TAG_NOT_ACQUIRED,
                    l as u64,
                    tag as u64,
                    0,
                ],
            ),
        );
    }
}

/// `IoReleaseRemoveLockEx`: release one acquisition; the last one after removal started sets
/// the event `IoReleaseRemoveLockAndWaitEx` waits on.
///
/// # Safety
/// `RemoveLock` must be an initialized remove lock the caller acquired with `Tag`.
pub unsafe extern "win64" fn IoReleaseRemoveLockEx(
    RemoveLock: *mut IO_REMOVE_LOCK_COMMON_BLOCK,
    Tag: PVOID,
    _RemlockSize: ULONG,
) {
    let m = current();
    release_tag(&m, RemoveLock, Tag as usize);
    if io_count(RemoveLock).fetch_sub(1, Ordering::SeqCst) == 1 {
        // SAFETY: the lock's initialized event.
        unsafe { KeSetEvent(event(RemoveLock), 0, 0) };
    }
}

/// `IoReleaseRemoveLockAndWaitEx` (PASSIVE_LEVEL): mark the lock removed (later acquisitions
/// get STATUS_DELETE_PENDING), release the caller's acquisition and the initial bias, and wait
/// until every other acquisition has been released. A wait above APC_LEVEL is 0xA, as
/// `KeWaitForSingleObject`'s.
///
/// # Safety
/// `RemoveLock` must be an initialized remove lock the caller acquired with `Tag`.
pub unsafe extern "win64" fn IoReleaseRemoveLockAndWaitEx(
    RemoveLock: *mut IO_REMOVE_LOCK_COMMON_BLOCK,
    Tag: PVOID,
    _RemlockSize: ULONG,
) {
    let m = current();
    release_tag(&m, RemoveLock, Tag as usize);
    // SAFETY: an initialized lock per the contract.
    unsafe { removed(RemoveLock).write_volatile(1) };
    let count = io_count(RemoveLock);
    count.fetch_sub(1, Ordering::SeqCst);
    if count.fetch_sub(1, Ordering::SeqCst) > 1 {
        // SAFETY: the lock's initialized event; no timeout.
        unsafe { KeWaitForSingleObject(event(RemoveLock).cast(), 0, 0, 0, core::ptr::null_mut()) };
    }
}
