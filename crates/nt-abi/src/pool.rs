//! Pool allocation flags (`POOL_FLAGS` for `ExAllocatePool2`) and legacy pool types.
#![allow(non_snake_case)]
#![allow(non_camel_case_types)]

pub type POOL_FLAGS = u64;

pub const POOL_FLAG_REQUIRED_START: POOL_FLAGS = 0x0000_0000_0000_0001;
pub const POOL_FLAG_USE_QUOTA: POOL_FLAGS = 0x0000_0000_0000_0001;
pub const POOL_FLAG_UNINITIALIZED: POOL_FLAGS = 0x0000_0000_0000_0002;
pub const POOL_FLAG_SESSION: POOL_FLAGS = 0x0000_0000_0000_0004;
pub const POOL_FLAG_CACHE_ALIGNED: POOL_FLAGS = 0x0000_0000_0000_0008;
pub const POOL_FLAG_RAISE_ON_FAILURE: POOL_FLAGS = 0x0000_0000_0000_0020;
pub const POOL_FLAG_NON_PAGED: POOL_FLAGS = 0x0000_0000_0000_0040;
pub const POOL_FLAG_NON_PAGED_EXECUTE: POOL_FLAGS = 0x0000_0000_0000_0080;
pub const POOL_FLAG_PAGED: POOL_FLAGS = 0x0000_0000_0000_0100;
pub const POOL_FLAG_REQUIRED_END: POOL_FLAGS = 0x0000_0000_8000_0000;

/// Legacy `POOL_TYPE` for `ExAllocatePoolWithTag`.
pub type POOL_TYPE = i32;
pub const NON_PAGED_POOL: POOL_TYPE = 0;
pub const PAGED_POOL: POOL_TYPE = 1;
pub const NON_PAGED_POOL_NX: POOL_TYPE = 512;
pub const NON_PAGED_POOL_MUST_SUCCEED: POOL_TYPE = 2;
pub const NON_PAGED_POOL_CACHE_ALIGNED: POOL_TYPE = 4;
pub const PAGED_POOL_CACHE_ALIGNED: POOL_TYPE = 5;
/// `POOL_TYPE` modifier bits (wdm.h): ExAllocatePoolWithQuotaTag returns NULL instead of
/// raising on failure.
pub const POOL_QUOTA_FAIL_INSTEAD_OF_RAISE: POOL_TYPE = 8;
pub const POOL_RAISE_IF_ALLOCATION_FAILURE: POOL_TYPE = 16;
pub const POOL_COLD_ALLOCATION: POOL_TYPE = 256;
/// The bit that makes `NonPagedPoolNx` (512) out of `NonPagedPool` (0).
pub const POOL_NX_ALLOCATION: POOL_TYPE = 512;
/// The tag `ExAllocatePool` (no tag argument) uses: `'None'`.
pub const NONE_POOL_TAG: u32 = pool_tag(*b"None");

/// `POOL_EXTENDED_PARAMETER_TYPE` values for `ExAllocatePool3`.
pub const POOL_EXTENDED_PARAMETER_PRIORITY: u64 = 1;
pub const POOL_EXTENDED_PARAMETER_SECURE_POOL: u64 = 2;
pub const POOL_EXTENDED_PARAMETER_NUMA_NODE: u64 = 3;

/// `POOL_EXTENDED_PARAMETER` (x64, 16 bytes): `Type:8, Optional:1, Reserved:55` bit fields,
/// then a pointer-sized union (priority, secure-pool parameters, preferred NUMA node).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct POOL_EXTENDED_PARAMETER {
    /// Bits 0–7: the type; bit 8: optional.
    pub Header: u64,
    pub Value: u64,
}

/// `SLIST_HEADER` (x64, 16-byte aligned): bits 0–15 of the first quadword are the depth
/// (what the WDK's inline `ExQueryDepthSList` reads), bits 16–63 a sequence number; the
/// second quadword holds the header type (bit 0 = 1, the 16-byte format) and the first entry's
/// address (bits 4–63).
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default)]
pub struct SLIST_HEADER {
    pub Alignment: u64,
    pub Region: u64,
}

/// `SLIST_ENTRY` / `SINGLE_LIST_ENTRY`: the link the list stores in each free entry.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct SLIST_ENTRY {
    pub Next: *mut SLIST_ENTRY,
}

crate::routine_type! {
    /// The allocate routine of a lookaside list (`PALLOCATE_FUNCTION` is `Option` of it).
    pub type ALLOCATE_FUNCTION = unsafe fn(
        PoolType: POOL_TYPE,
        NumberOfBytes: usize,
        Tag: u32,
    ) -> *mut core::ffi::c_void
}
/// `PALLOCATE_FUNCTION` of a lookaside list.
pub type PALLOCATE_FUNCTION = Option<ALLOCATE_FUNCTION>;
crate::routine_type! {
    /// The free routine of a lookaside list (`PFREE_FUNCTION` is `Option` of it).
    pub type FREE_FUNCTION = unsafe fn(Buffer: *mut core::ffi::c_void)
}
/// `PFREE_FUNCTION` of a lookaside list.
pub type PFREE_FUNCTION = Option<FREE_FUNCTION>;

/// `GENERAL_LOOKASIDE` (x64): the part of `NPAGED_LOOKASIDE_LIST` the WDK's inline
/// `ExAllocateFromNPagedLookasideList` / `ExFreeToNPagedLookasideList` read and write.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GENERAL_LOOKASIDE {
    pub ListHead: SLIST_HEADER,
    pub Depth: u16,
    pub MaximumDepth: u16,
    pub TotalAllocates: u32,
    /// `AllocateMisses` / `AllocateHits`.
    pub AllocateMisses: u32,
    pub TotalFrees: u32,
    /// `FreeMisses` / `FreeHits`.
    pub FreeMisses: u32,
    pub Type: POOL_TYPE,
    pub Tag: u32,
    pub Size: u32,
    pub Allocate: PALLOCATE_FUNCTION,
    pub Free: PFREE_FUNCTION,
    pub ListEntry: crate::types::LIST_ENTRY,
    pub LastTotalAllocates: u32,
    pub LastAllocateMisses: u32,
    pub Future: [u32; 2],
}

/// `NPAGED_LOOKASIDE_LIST` (x64: a cache-aligned GENERAL_LOOKASIDE, 0x80 bytes).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
pub struct NPAGED_LOOKASIDE_LIST {
    pub L: GENERAL_LOOKASIDE,
}

/// Allocations from pool are aligned to `MEMORY_ALLOCATION_ALIGNMENT` on x64.
pub const MEMORY_ALLOCATION_ALIGNMENT: usize = 16;

/// Build a pool tag the way C source writes `'abcd'`: the first character is the low byte, so
/// the tag reads correctly in a debugger's memory view.
pub const fn pool_tag(tag: [u8; 4]) -> u32 {
    u32::from_le_bytes(tag)
}

// x64 layouts (wdm.h's GENERAL_LOOKASIDE_LAYOUT; LOOKASIDE_ALIGN is DECLSPEC_CACHEALIGN on x64).
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<SLIST_HEADER>() == 16);
    assert!(size_of::<POOL_EXTENDED_PARAMETER>() == 16);
    assert!(offset_of!(GENERAL_LOOKASIDE, Depth) == 0x10);
    assert!(offset_of!(GENERAL_LOOKASIDE, TotalAllocates) == 0x14);
    assert!(offset_of!(GENERAL_LOOKASIDE, TotalFrees) == 0x1C);
    assert!(offset_of!(GENERAL_LOOKASIDE, Type) == 0x24);
    assert!(offset_of!(GENERAL_LOOKASIDE, Tag) == 0x28);
    assert!(offset_of!(GENERAL_LOOKASIDE, Size) == 0x2C);
    assert!(offset_of!(GENERAL_LOOKASIDE, Allocate) == 0x30);
    assert!(offset_of!(GENERAL_LOOKASIDE, Free) == 0x38);
    assert!(offset_of!(GENERAL_LOOKASIDE, ListEntry) == 0x40);
    assert!(offset_of!(GENERAL_LOOKASIDE, Future) == 0x58);
    assert!(size_of::<NPAGED_LOOKASIDE_LIST>() == 0x80);
};
