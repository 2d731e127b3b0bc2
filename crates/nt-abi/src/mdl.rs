//! Memory descriptor lists and the read/write stack parameters (mingw-w64 `ddk/wdm.h` layouts;
//! asserted in `layout.rs`, cross-checked by `tests/mingw_layouts.rs`).
//!
//! An MDL is followed in memory by one PFN_NUMBER per page the buffer spans
//! (`MmGetMdlPfnArray`); `Size` counts the header and that array. The inline
//! `MmGetSystemAddressForMdlSafe` reads `MdlFlags` (`MDL_MAPPED_TO_SYSTEM_VA |
//! MDL_SOURCE_IS_NONPAGED_POOL` → `MappedSystemVa`) and otherwise calls
//! `MmMapLockedPagesSpecifyCache`; `MmGetMdlVirtualAddress` is `StartVa + ByteOffset`.
#![allow(non_camel_case_types, non_snake_case)]

use crate::types::*;

/// `MDL`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MDL {
    pub Next: *mut MDL,
    pub Size: CSHORT,
    pub MdlFlags: CSHORT,
    /// `struct _EPROCESS *`: the process whose pages are locked (user buffers), else NULL.
    pub Process: PVOID,
    pub MappedSystemVa: PVOID,
    /// The page-aligned start of the buffer (`PAGE_ALIGN(va)`).
    pub StartVa: PVOID,
    pub ByteCount: ULONG,
    /// `BYTE_OFFSET(va)`: the buffer's offset in its first page.
    pub ByteOffset: ULONG,
}
pub type PMDL = *mut MDL;
/// `PFN_NUMBER` (x64: `ULONG_PTR`).
pub type PFN_NUMBER = ULONG_PTR;

pub const MDL_MAPPED_TO_SYSTEM_VA: CSHORT = 0x0001;
pub const MDL_PAGES_LOCKED: CSHORT = 0x0002;
pub const MDL_SOURCE_IS_NONPAGED_POOL: CSHORT = 0x0004;
pub const MDL_ALLOCATED_FIXED_SIZE: CSHORT = 0x0008;
pub const MDL_PARTIAL: CSHORT = 0x0010;
pub const MDL_PARTIAL_HAS_BEEN_MAPPED: CSHORT = 0x0020;
pub const MDL_IO_PAGE_READ: CSHORT = 0x0040;
pub const MDL_WRITE_OPERATION: CSHORT = 0x0080;
pub const MDL_PARENT_MAPPED_SYSTEM_VA: CSHORT = 0x0100;
pub const MDL_FREE_EXTRA_PTES: CSHORT = 0x0200;
pub const MDL_DESCRIBES_AWE: CSHORT = 0x0400;
pub const MDL_IO_SPACE: CSHORT = 0x0800;
pub const MDL_NETWORK_HEADER: CSHORT = 0x1000;
pub const MDL_MAPPING_CAN_FAIL: CSHORT = 0x2000;
pub const MDL_ALLOCATED_MUST_SUCCEED: CSHORT = 0x4000;
pub const MDL_INTERNAL: CSHORT = 0x8000u16 as CSHORT;

/// `LOCK_OPERATION` (MmProbeAndLockPages' `Operation`).
pub type LOCK_OPERATION = i32;
pub const IO_READ_ACCESS: LOCK_OPERATION = 0;
pub const IO_WRITE_ACCESS: LOCK_OPERATION = 1;
pub const IO_MODIFY_ACCESS: LOCK_OPERATION = 2;

/// `MEMORY_CACHING_TYPE`.
pub type MEMORY_CACHING_TYPE = i32;
pub const MM_NON_CACHED: MEMORY_CACHING_TYPE = 0;
pub const MM_CACHED: MEMORY_CACHING_TYPE = 1;
pub const MM_WRITE_COMBINED: MEMORY_CACHING_TYPE = 2;

/// `MM_PAGE_PRIORITY` (the low bits; `MdlMapping*` flags may be OR-ed in).
pub type MM_PAGE_PRIORITY = i32;
pub const LOW_PAGE_PRIORITY: MM_PAGE_PRIORITY = 0;
pub const NORMAL_PAGE_PRIORITY: MM_PAGE_PRIORITY = 16;
pub const HIGH_PAGE_PRIORITY: MM_PAGE_PRIORITY = 32;

/// `Parameters.Read` / `Parameters.Write` of an IO_STACK_LOCATION (`Key` is
/// `POINTER_ALIGNMENT`; `Flags` exists from Windows 8).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct READ_WRITE_PARAMETERS {
    pub Length: ULONG,
    pub _pad0: ULONG,
    pub Key: ULONG,
    pub Flags: ULONG,
    pub ByteOffset: LARGE_INTEGER,
}

/// Pages spanned by `[va, va + len)` (`ADDRESS_AND_SIZE_TO_SPAN_PAGES`).
pub const fn address_and_size_to_span_pages(va: usize, len: usize) -> usize {
    ((va & 0xFFF) + len + 0xFFF) >> 12
}
