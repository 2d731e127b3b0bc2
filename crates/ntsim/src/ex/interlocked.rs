//! Interlocked lists and counters guarded by a caller's spin lock (`ExInterlocked…`), and the
//! SList exports that complete `ExpInterlockedPush/PopEntrySList` (`ex::lookaside`):
//! `ExpInterlockedFlushSList` (what the WDK's `InterlockedFlushSList` calls on x64),
//! `ExQueryDepthSList` and `InitializeSListHead` (exports on x64 for drivers: wdm.h declares
//! them NTKERNELAPI under `_NTDDK_`/`_NTDRIVER_`; ReactOS `ntoskrnl.spec` lists them for
//! x86_64). All SList updates share `lookaside::SLIST`, so the five stay consistent.
//!
//! Microsoft, *ExInterlockedInsertHeadList* (and the other `ExInterlocked…` pages): the
//! routines take the spin lock themselves (with interrupts disabled), may be called at any
//! IRQL, and a lock used with them must be used with nothing else. They return the old first
//! (`…InsertHeadList`, `…PushEntryList`) or old last (`…InsertTailList`) entry, NULL when the
//! list was empty; `…RemoveHeadList` / `…PopEntryList` the removed entry or NULL;
//! `ExInterlockedAddUlong` / `…AddLargeInteger` the value before the addition. ntsim takes the
//! lock word without changing the IRQL (nothing can interrupt an emulated thread).
//!
//! Deviation: `InitializeSListHead` on a header that is not 16-byte aligned initializes it
//! anyway; Windows raises STATUS_DATATYPE_MISALIGNMENT.
#![allow(non_snake_case)]

use nt_abi::*;

use super::lookaside::{ADDRESS_MASK, HEADER16, SLIST};
use crate::ke::spinlock::{acquire_word, release_word};
use crate::ke::thread::{Cur, current};

fn locked<R>(m: &Cur, lock: *mut KSPIN_LOCK, f: impl FnOnce() -> R) -> R {
    acquire_word(m, lock);
    let r = f();
    release_word(m, lock);
    r
}

fn flink(e: *mut LIST_ENTRY) -> *mut LIST_ENTRY {
    // SAFETY: `e` is a live LIST_ENTRY of the caller's list (the documented contract); the
    // lock the caller passed serializes every update to it.
    unsafe { (*e).Flink }
}

fn blink(e: *mut LIST_ENTRY) -> *mut LIST_ENTRY {
    // SAFETY: as for `flink`.
    unsafe { (*e).Blink }
}

fn set_links(e: *mut LIST_ENTRY, f: *mut LIST_ENTRY, b: *mut LIST_ENTRY) {
    set_flink(e, f);
    set_blink(e, b);
}

fn set_flink(e: *mut LIST_ENTRY, f: *mut LIST_ENTRY) {
    // SAFETY: as for `set_links`.
    unsafe { (*e).Flink = f };
}

fn set_blink(e: *mut LIST_ENTRY, b: *mut LIST_ENTRY) {
    // SAFETY: as for `set_links`.
    unsafe { (*e).Blink = b };
}

/// `ExInterlockedInsertHeadList`: returns the old first entry, NULL if the list was empty.
///
/// # Safety
/// `ListHead` must be an initialized list head, `ListEntry` writable, `Lock` a KSPIN_LOCK used
/// only with the ExInterlocked routines.
pub unsafe extern "win64" fn ExInterlockedInsertHeadList(
    ListHead: *mut LIST_ENTRY,
    ListEntry: *mut LIST_ENTRY,
    Lock: *mut KSPIN_LOCK,
) -> *mut LIST_ENTRY {
    let m = current();
    locked(&m, Lock, || {
        let first = flink(ListHead);
        set_links(ListEntry, first, ListHead);
        set_blink(first, ListEntry);
        set_flink(ListHead, ListEntry);
        if first == ListHead {
            core::ptr::null_mut()
        } else {
            first
        }
    })
}

/// `ExInterlockedInsertTailList`: returns the old last entry, NULL if the list was empty.
///
/// # Safety
/// As for `ExInterlockedInsertHeadList`.
pub unsafe extern "win64" fn ExInterlockedInsertTailList(
    ListHead: *mut LIST_ENTRY,
    ListEntry: *mut LIST_ENTRY,
    Lock: *mut KSPIN_LOCK,
) -> *mut LIST_ENTRY {
    let m = current();
    locked(&m, Lock, || {
        let last = blink(ListHead);
        set_links(ListEntry, ListHead, last);
        set_flink(last, ListEntry);
        set_blink(ListHead, ListEntry);
        if last == ListHead {
            core::ptr::null_mut()
        } else {
            last
        }
    })
}

/// `ExInterlockedRemoveHeadList`: the removed first entry, NULL if the list is empty.
///
/// # Safety
/// `ListHead` must be an initialized list head, `Lock` its KSPIN_LOCK.
pub unsafe extern "win64" fn ExInterlockedRemoveHeadList(
    ListHead: *mut LIST_ENTRY,
    Lock: *mut KSPIN_LOCK,
) -> *mut LIST_ENTRY {
    let m = current();
    locked(&m, Lock, || {
        let first = flink(ListHead);
        if first == ListHead {
            return core::ptr::null_mut();
        }
        let next = flink(first);
        set_flink(ListHead, next);
        set_blink(next, ListHead);
        first
    })
}

/// `ExInterlockedPushEntryList`: returns the old first entry (NULL if empty).
///
/// # Safety
/// `ListHead` must be a SINGLE_LIST_ENTRY head, `ListEntry` writable, `Lock` its KSPIN_LOCK.
pub unsafe extern "win64" fn ExInterlockedPushEntryList(
    ListHead: *mut SINGLE_LIST_ENTRY,
    ListEntry: *mut SINGLE_LIST_ENTRY,
    Lock: *mut KSPIN_LOCK,
) -> *mut SINGLE_LIST_ENTRY {
    let m = current();
    locked(&m, Lock, || {
        // SAFETY: the caller's head and entry, serialized by `Lock` (this and the two below).
        let first = unsafe { (*ListHead).Next };
        // SAFETY: as above.
        unsafe { (*ListEntry).Next = first };
        // SAFETY: as above.
        unsafe { (*ListHead).Next = ListEntry };
        first
    })
}

/// `ExInterlockedPopEntryList`: the removed first entry, NULL if empty.
///
/// # Safety
/// `ListHead` must be a SINGLE_LIST_ENTRY head, `Lock` its KSPIN_LOCK.
pub unsafe extern "win64" fn ExInterlockedPopEntryList(
    ListHead: *mut SINGLE_LIST_ENTRY,
    Lock: *mut KSPIN_LOCK,
) -> *mut SINGLE_LIST_ENTRY {
    let m = current();
    locked(&m, Lock, || {
        // SAFETY: the caller's head and its live entries, serialized by `Lock`.
        let first = unsafe { (*ListHead).Next };
        if !first.is_null() {
            // SAFETY: as above; `first` is a live entry of the list.
            let next = unsafe { (*first).Next };
            // SAFETY: as above.
            unsafe { (*ListHead).Next = next };
        }
        first
    })
}

/// `ExInterlockedAddLargeInteger`: add under the lock; returns the value before.
///
/// # Safety
/// `Addend` must be a writable LARGE_INTEGER, `Lock` its KSPIN_LOCK.
pub unsafe extern "win64" fn ExInterlockedAddLargeInteger(
    Addend: *mut LARGE_INTEGER,
    Increment: LARGE_INTEGER,
    Lock: *mut KSPIN_LOCK,
) -> LARGE_INTEGER {
    let m = current();
    locked(&m, Lock, || {
        // SAFETY: every bit pattern of the union is a valid QuadPart.
        let inc = unsafe { Increment.QuadPart };
        let p: *mut i64 = Addend.cast();
        // SAFETY: the caller's LARGE_INTEGER, updated under `Lock`.
        let old = unsafe { p.read() };
        // SAFETY: as above.
        unsafe { p.write(old.wrapping_add(inc)) };
        LARGE_INTEGER { QuadPart: old }
    })
}

/// `ExInterlockedAddUlong`: add under the lock; returns the value before.
///
/// # Safety
/// `Addend` must be a writable ULONG, `Lock` its KSPIN_LOCK.
pub unsafe extern "win64" fn ExInterlockedAddUlong(
    Addend: *mut ULONG,
    Increment: ULONG,
    Lock: *mut KSPIN_LOCK,
) -> ULONG {
    let m = current();
    locked(&m, Lock, || {
        // SAFETY: the caller's ULONG, updated under `Lock`.
        let old = unsafe { Addend.read() };
        // SAFETY: as above.
        unsafe { Addend.write(old.wrapping_add(Increment)) };
        old
    })
}

/// `ExpInterlockedFlushSList`: detach every entry; returns the old first entry (the entries
/// stay chained through their `Next`), NULL when empty. Depth becomes 0.
///
/// # Safety
/// `ListHead` must be an initialized SLIST_HEADER.
pub unsafe extern "win64" fn ExpInterlockedFlushSList(
    ListHead: *mut SLIST_HEADER,
) -> *mut SLIST_ENTRY {
    let _m = current();
    let _g = SLIST.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the caller's initialized header; updates are serialized by SLIST.
    let h = unsafe { &mut *ListHead };
    let first = (h.Region & ADDRESS_MASK) as *mut SLIST_ENTRY;
    if !first.is_null() {
        let seq = (h.Alignment >> 16).wrapping_add(1) & 0xFFFF_FFFF_FFFF;
        h.Alignment = seq << 16;
        h.Region = HEADER16;
    }
    first
}

/// `ExQueryDepthSList`: the header's depth (bits 0–15).
///
/// # Safety
/// `ListHead` must be an initialized SLIST_HEADER.
pub unsafe extern "win64" fn ExQueryDepthSList(ListHead: *mut SLIST_HEADER) -> USHORT {
    let _m = current();
    let _g = SLIST.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the caller's initialized header, read under SLIST.
    (unsafe { (*ListHead).Alignment } & 0xFFFF) as USHORT
}

/// `InitializeSListHead`: an empty 16-byte-format header (depth 0, sequence 0).
///
/// # Safety
/// `SListHead` must point to writable storage for an SLIST_HEADER.
pub unsafe extern "win64" fn InitializeSListHead(SListHead: *mut SLIST_HEADER) {
    let _m = current();
    let _g = SLIST.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the caller's writable header storage (unaligned writes: see the module's
    // deviation note).
    unsafe {
        SListHead.write_unaligned(SLIST_HEADER {
            Alignment: 0,
            Region: HEADER16,
        })
    };
}
