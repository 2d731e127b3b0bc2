//! Basic Windows scalar types and small structures.
#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::c_void;

pub type NTSTATUS = i32;
pub type ULONG = u32;
pub type LONG = i32;
pub type USHORT = u16;
pub type UCHAR = u8;
pub type BOOLEAN = u8;
pub type CCHAR = i8;
pub type CSHORT = i16;
pub type ULONG_PTR = usize;
pub type SIZE_T = usize;
pub type PVOID = *mut c_void;
pub type WCHAR = u16;
pub type KPROCESSOR_MODE = CCHAR;
pub type ACCESS_MASK = ULONG;
pub type LONGLONG = i64;
pub type ULONG64 = u64;
/// `KPRIORITY`, `LONG` in the headers.
pub type KPRIORITY = LONG;

pub const TRUE: BOOLEAN = 1;
pub const FALSE: BOOLEAN = 0;

/// `KernelMode` / `UserMode` values of `KPROCESSOR_MODE`.
pub const KERNEL_MODE: KPROCESSOR_MODE = 0;
pub const USER_MODE: KPROCESSOR_MODE = 1;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UNICODE_STRING {
    /// Length in bytes, not counting any terminating NUL.
    pub Length: USHORT,
    pub MaximumLength: USHORT,
    pub Buffer: *mut WCHAR,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LIST_ENTRY {
    pub Flink: *mut LIST_ENTRY,
    pub Blink: *mut LIST_ENTRY,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union LARGE_INTEGER {
    pub QuadPart: LONGLONG,
    pub u: LARGE_INTEGER_PARTS,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LARGE_INTEGER_PARTS {
    pub LowPart: ULONG,
    pub HighPart: LONG,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GUID {
    pub Data1: u32,
    pub Data2: u16,
    pub Data3: u16,
    pub Data4: [u8; 8],
}

/// `IO_STATUS_BLOCK`: `Status` shares its slot with a pointer, so it is 8-byte aligned.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IO_STATUS_BLOCK {
    pub u: IO_STATUS_BLOCK_STATUS,
    pub Information: ULONG_PTR,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STATUS_BLOCK_STATUS {
    pub Status: NTSTATUS,
    pub Pointer: PVOID,
}

impl IO_STATUS_BLOCK {
    /// The status half of the block.
    pub fn status(&self) -> NTSTATUS {
        // SAFETY: both union members start at offset 0 and every bit pattern of the low four
        // bytes is a valid i32, so reading `Status` is always defined.
        unsafe { self.u.Status }
    }
}
