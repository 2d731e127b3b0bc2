//! Nonpaged lookaside lists and the interlocked singly linked lists under them.
//!
//! What is inline and what is exported follows the WDK's wdm.h (as mingw-w64's ddk headers
//! reproduce it): `ExInitializeNPagedLookasideList` and `ExDeleteNPagedLookasideList` are
//! exports; `ExAllocateFromNPagedLookasideList` and `ExFreeToNPagedLookasideList` are inline
//! functions in the driver that count hits and misses in the `GENERAL_LOOKASIDE`, pop / push its
//! `ListHead` through `InterlockedPopEntrySList` / `InterlockedPushEntrySList` (on x64 the
//! exports `ExpInterlockedPopEntrySList` / `ExpInterlockedPushEntrySList`), read the depth
//! inline (`ExQueryDepthSList`: the low 16 bits of the header), and on a miss call the list's
//! `Allocate` / `Free` routine — by default `ExAllocatePoolWithTag` / `ExFreePool`, so every
//! entry is an ordinary tracked pool block (leaks, tags, double frees and IRQL are the pool's
//! rules).
#![allow(non_snake_case)]

use std::sync::Mutex;

use nt_abi::*;

use crate::ke::bugcheck::raise;
use crate::ke::thread::{self, current};
use crate::verifier::Bc;

/// One lock for every SLIST_HEADER's updates (ntsim's interlocked lists are not lock-free).
pub(crate) static SLIST: Mutex<()> = Mutex::new(());

/// Minimum depth Windows gives a new lookaside list (`ExMinimumLookasideDepth`).
pub const LOOKASIDE_MINIMUM_DEPTH: u16 = 4;
/// Upper bound of the depth ntsim's lists use (the `Depth` argument is ignored, as documented).
pub const LOOKASIDE_MAXIMUM_DEPTH: u16 = 256;

pub(crate) const ADDRESS_MASK: u64 = !0xF;
pub(crate) const HEADER16: u64 = 1;

/// `ExpInterlockedPopEntrySList`: remove the first entry (NULL when empty).
///
/// # Safety
/// `ListHead` must be an initialized SLIST_HEADER whose entries are live.
pub unsafe extern "win64" fn ExpInterlockedPopEntrySList(
    ListHead: *mut SLIST_HEADER,
) -> *mut SLIST_ENTRY {
    let _g = SLIST.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the caller's initialized header; updates are serialized by SLIST.
    let h = unsafe { &mut *ListHead };
    let first = (h.Region & ADDRESS_MASK) as *mut SLIST_ENTRY;
    if first.is_null() {
        return first;
    }
    // SAFETY: `first` is an entry the driver pushed and still owns the list's memory for.
    let next = unsafe { (*first).Next };
    h.Region = (next as u64 & ADDRESS_MASK) | HEADER16;
    let depth = (h.Alignment & 0xFFFF).saturating_sub(1);
    let seq = (h.Alignment >> 16).wrapping_add(1) & 0xFFFF_FFFF_FFFF;
    h.Alignment = (seq << 16) | depth;
    first
}

/// `ExpInterlockedPushEntrySList`: insert `ListEntry` first; returns the previous first entry.
///
/// # Safety
/// `ListHead` must be an initialized SLIST_HEADER and `ListEntry` 16-byte-aligned writable
/// memory the driver no longer uses.
pub unsafe extern "win64" fn ExpInterlockedPushEntrySList(
    ListHead: *mut SLIST_HEADER,
    ListEntry: *mut SLIST_ENTRY,
) -> *mut SLIST_ENTRY {
    let _g = SLIST.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the caller's initialized header; updates are serialized by SLIST.
    let h = unsafe { &mut *ListHead };
    let first = (h.Region & ADDRESS_MASK) as *mut SLIST_ENTRY;
    // SAFETY: the entry is writable memory handed to the list (the documented contract).
    unsafe { (*ListEntry).Next = first };
    h.Region = (ListEntry as u64 & ADDRESS_MASK) | HEADER16;
    let depth = ((h.Alignment & 0xFFFF) + 1) & 0xFFFF;
    let seq = (h.Alignment >> 16).wrapping_add(1) & 0xFFFF_FFFF_FFFF;
    h.Alignment = (seq << 16) | depth;
    first
}

unsafe extern "win64" fn default_allocate(t: POOL_TYPE, n: usize, tag: u32) -> PVOID {
    // SAFETY: ExAllocatePoolWithTag has no preconditions.
    unsafe { super::pool::ExAllocatePoolWithTag(t, n, tag) }
}

unsafe extern "win64" fn default_free(p: PVOID) {
    // SAFETY: `p` is an entry the list allocated with `default_allocate`.
    unsafe { super::pool::ExFreePool(p) }
}

/// `ExInitializeNPagedLookasideList` (Microsoft, *ExInitializeNPagedLookasideList*): IRQL ≤
/// DISPATCH_LEVEL; NULL `Allocate` / `Free` select the pool's own routines; `Flags` may add
/// `POOL_NX_ALLOCATION` / `POOL_RAISE_IF_ALLOCATION_FAILURE` to the pool type; `Depth` is
/// reserved (the system sizes the list). Entries are at least an SLIST_ENTRY long.
///
/// # Safety
/// `Lookaside` must point to writable, 16-byte-aligned nonpaged storage for the list.
pub unsafe extern "win64" fn ExInitializeNPagedLookasideList(
    Lookaside: *mut NPAGED_LOOKASIDE_LIST,
    Allocate: PALLOCATE_FUNCTION,
    Free: PFREE_FUNCTION,
    Flags: ULONG,
    Size: SIZE_T,
    Tag: ULONG,
    _Depth: USHORT,
) {
    let m = current();
    let lvl = thread::irql();
    if lvl > DISPATCH_LEVEL {
        raise(
            &m,
            Bc::new(
                nt_abi::bugcheck::IRQL_NOT_LESS_OR_EQUAL,
                [Lookaside as u64, lvl as u64, 0, 0],
            ),
        );
    }
    let size = Size.max(core::mem::size_of::<SLIST_ENTRY>()) as u32;
    let l = GENERAL_LOOKASIDE {
        ListHead: SLIST_HEADER {
            Alignment: 0,
            Region: HEADER16,
        },
        Depth: LOOKASIDE_MINIMUM_DEPTH,
        MaximumDepth: LOOKASIDE_MAXIMUM_DEPTH,
        TotalAllocates: 0,
        AllocateMisses: 0,
        TotalFrees: 0,
        FreeMisses: 0,
        Type: NON_PAGED_POOL
            | (Flags as POOL_TYPE & (POOL_NX_ALLOCATION | POOL_RAISE_IF_ALLOCATION_FAILURE)),
        Tag,
        Size: size,
        Allocate: Some(Allocate.unwrap_or(default_allocate)),
        Free: Some(Free.unwrap_or(default_free)),
        ListEntry: LIST_ENTRY {
            Flink: core::ptr::null_mut(),
            Blink: core::ptr::null_mut(),
        },
        LastTotalAllocates: 0,
        LastAllocateMisses: 0,
        Future: [0; 2],
    };
    // SAFETY: projecting to the caller's storage for the list (no read, no reference).
    let dst = unsafe { &raw mut (*Lookaside).L };
    // SAFETY: the caller's writable, aligned storage for the list (the documented contract).
    unsafe { dst.write(l) };
}

/// `ExDeleteNPagedLookasideList`: free every entry still cached on the list through its `Free`
/// routine (so those blocks are no longer the driver's).
///
/// # Safety
/// `Lookaside` must be a list initialized by `ExInitializeNPagedLookasideList`.
pub unsafe extern "win64" fn ExDeleteNPagedLookasideList(Lookaside: *mut NPAGED_LOOKASIDE_LIST) {
    // SAFETY: projecting to the caller's initialized list.
    let head = unsafe { &raw mut (*Lookaside).L.ListHead };
    // SAFETY: as above; the routine was stored by ExInitializeNPagedLookasideList.
    let free = unsafe { (*Lookaside).L.Free };
    loop {
        // SAFETY: the list's initialized header.
        let e = unsafe { ExpInterlockedPopEntrySList(head) };
        if e.is_null() {
            break;
        }
        if let Some(f) = free {
            // SAFETY: an entry of this list, handed back to the routine that frees its entries.
            unsafe { f(e.cast()) };
        }
    }
}
