//! Locks and lists (x64): fast and guarded mutexes, ERESOURCE, in-stack queued spin-lock
//! handles, singly linked interlocked lists. Layouts follow the WDK's wdm.h as mingw-w64's
//! `ddk/wdm.h` reproduces it (re-checked by `tests/mingw_locks_layouts.rs`).
#![allow(non_camel_case_types, non_snake_case)]

use core::mem::{offset_of, size_of};

use crate::ke::{DISPATCHER_HEADER, KEVENT, KIRQL, KSPIN_LOCK};
use crate::types::*;

/// `FAST_MUTEX` (0x38 bytes). The WDK's inline `ExInitializeFastMutex` sets `Count` to
/// [`FM_LOCK_BIT`] (bit 0 set = free), `Owner` NULL, `Contention` 0, and initializes `Event` as
/// a synchronization event (through the export `KeInitializeEvent`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FAST_MUTEX {
    pub Count: LONG,
    pub Owner: PVOID,
    pub Contention: ULONG,
    pub Event: KEVENT,
    pub OldIrql: ULONG,
}

/// Bit 0 of `FAST_MUTEX.Count`: set while the mutex is free.
pub const FM_LOCK_BIT: LONG = 0x1;
/// Bit number of [`FM_LOCK_BIT`].
pub const FM_LOCK_BIT_V: LONG = 0x0;
/// What a waiter adds to `FAST_MUTEX.Count` (and `KGUARDED_MUTEX.Count`) while it waits.
pub const FM_LOCK_WAITER_INC: LONG = 0x2;

/// `KGATE`: a dispatcher header only.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KGATE {
    pub Header: DISPATCHER_HEADER,
}

/// `KGUARDED_MUTEX` (0x38 bytes): `Count` bit 0 set while free ([`GM_LOCK_BIT`]), the owner
/// KTHREAD, a gate waiters block on, and the owner's saved APC-disable counts.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KGUARDED_MUTEX {
    pub Count: LONG,
    pub Owner: PVOID,
    pub Contention: ULONG,
    pub Gate: KGATE,
    /// `KernelApcDisable` (low 16 bits) / `SpecialApcDisable` (high 16 bits).
    pub CombinedApcDisable: ULONG,
}

/// Bit 0 of `KGUARDED_MUTEX.Count`: set while the mutex is free.
pub const GM_LOCK_BIT: LONG = 0x1;

/// `ERESOURCE_THREAD`: an owner's identity (the ETHREAD address, or an owner pointer with the
/// low two bits set).
pub type ERESOURCE_THREAD = ULONG_PTR;

/// `OWNER_ENTRY` (0x10 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct OWNER_ENTRY {
    pub OwnerThread: ERESOURCE_THREAD,
    /// `OwnerCount` in bits 2–31 (with `IoPriorityBoosted`, `OwnerReferenced` below), or
    /// `TableSize`.
    pub OwnerCount: ULONG,
}

/// `ERESOURCE` (0x68 bytes on x64).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ERESOURCE {
    pub SystemResourcesList: LIST_ENTRY,
    pub OwnerTable: *mut OWNER_ENTRY,
    pub ActiveCount: i16,
    pub Flag: u16,
    pub SharedWaiters: PVOID,
    pub ExclusiveWaiters: *mut KEVENT,
    pub OwnerEntry: OWNER_ENTRY,
    pub ActiveEntries: ULONG,
    pub ContentionCount: ULONG,
    pub NumberOfSharedWaiters: ULONG,
    pub NumberOfExclusiveWaiters: ULONG,
    pub Reserved2: PVOID,
    pub Address: PVOID,
    pub SpinLock: KSPIN_LOCK,
}

/// `ERESOURCE.Flag`: owned exclusive.
pub const RESOURCE_OWNED_EXCLUSIVE: u16 = 0x0080;
/// `ERESOURCE.Flag`: `ResourceNeverExclusive`.
pub const RESOURCE_NEVER_EXCLUSIVE: u16 = 0x0010;
/// `ERESOURCE.Flag`: `ResourceReleaseByOtherThread`.
pub const RESOURCE_RELEASE_BY_OTHER_THREAD: u16 = 0x0020;

/// `KSPIN_LOCK_QUEUE` (0x10 bytes): one waiter's entry in a queued spin lock.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSPIN_LOCK_QUEUE {
    pub Next: *mut KSPIN_LOCK_QUEUE,
    pub Lock: *mut KSPIN_LOCK,
}

/// `KLOCK_QUEUE_HANDLE` (0x18 bytes): the caller's stack storage for an in-stack queued spin
/// lock.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KLOCK_QUEUE_HANDLE {
    pub LockQueue: KSPIN_LOCK_QUEUE,
    pub OldIrql: KIRQL,
}

/// `SINGLE_LIST_ENTRY` (8 bytes, pointer-aligned; unlike `SLIST_ENTRY`, not 16-byte aligned).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SINGLE_LIST_ENTRY {
    pub Next: *mut SINGLE_LIST_ENTRY,
}

/// `(type, field, offset)` rows for the locks' layouts: the table `tests/mingw_locks_layouts.rs`
/// generates its C asserts from.
#[macro_export]
macro_rules! for_each_locks_layout_fact {
    ($m:ident) => {
        $m! {
            sizes: [
                (FAST_MUTEX, 0x38), (KGUARDED_MUTEX, 0x38), (KGATE, 0x18), (OWNER_ENTRY, 0x10),
                (ERESOURCE, 0x68), (KSPIN_LOCK_QUEUE, 0x10), (KLOCK_QUEUE_HANDLE, 0x18),
                (SINGLE_LIST_ENTRY, 8)
            ],
            offsets: [
                (FAST_MUTEX, Count, 0x0), (FAST_MUTEX, Owner, 0x8), (FAST_MUTEX, Contention, 0x10),
                (FAST_MUTEX, Event, 0x18), (FAST_MUTEX, OldIrql, 0x30),
                (KGUARDED_MUTEX, Count, 0x0), (KGUARDED_MUTEX, Owner, 0x8),
                (KGUARDED_MUTEX, Contention, 0x10), (KGUARDED_MUTEX, Gate, 0x18),
                (KGUARDED_MUTEX, CombinedApcDisable, 0x30),
                (OWNER_ENTRY, OwnerThread, 0x0),
                (ERESOURCE, SystemResourcesList, 0x0), (ERESOURCE, OwnerTable, 0x10),
                (ERESOURCE, ActiveCount, 0x18), (ERESOURCE, Flag, 0x1A),
                (ERESOURCE, SharedWaiters, 0x20), (ERESOURCE, ExclusiveWaiters, 0x28),
                (ERESOURCE, OwnerEntry, 0x30), (ERESOURCE, ActiveEntries, 0x40),
                (ERESOURCE, ContentionCount, 0x44), (ERESOURCE, NumberOfSharedWaiters, 0x48),
                (ERESOURCE, NumberOfExclusiveWaiters, 0x4C), (ERESOURCE, Reserved2, 0x50),
                (ERESOURCE, Address, 0x58), (ERESOURCE, SpinLock, 0x60),
                (KSPIN_LOCK_QUEUE, Next, 0x0), (KSPIN_LOCK_QUEUE, Lock, 0x8),
                (KLOCK_QUEUE_HANDLE, LockQueue, 0x0), (KLOCK_QUEUE_HANDLE, OldIrql, 0x10),
                (SINGLE_LIST_ENTRY, Next, 0x0)
            ],
        }
    };
}

macro_rules! assert_locks_layout {
    (sizes: [$(($t:ident, $size:expr)),* $(,)?], offsets: [$(($ot:ident, $f:ident, $off:expr)),* $(,)?],) => {
        $(const _: () = assert!(size_of::<$t>() == $size, concat!("size of ", stringify!($t)));)*
        $(const _: () = assert!(offset_of!($ot, $f) == $off, concat!(stringify!($ot), ".", stringify!($f)));)*
    };
}
for_each_locks_layout_fact!(assert_locks_layout);
// A C bit field (`OwnerCount:30`) has no offsetof; the union member at 0x8 is `TableSize`.
const _: () = assert!(offset_of!(OWNER_ENTRY, OwnerCount) == 0x8);
