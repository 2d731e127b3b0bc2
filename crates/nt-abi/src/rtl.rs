//! Run-time library layouts and constants: counted ANSI strings, OS version structures, bitmaps,
//! the version ntsim reports, address-space bounds of the Mm data exports, and the statuses the
//! Rtl routines return (issue 9, item 3; stream rtlcrt).
#![allow(non_camel_case_types, non_snake_case)]

use core::mem::{offset_of, size_of};

use crate::types::*;

/// `STRING` / `ANSI_STRING` / `OEM_STRING` (wdm.h): a counted 8-bit string.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ANSI_STRING {
    /// Length in bytes, not counting any terminating NUL.
    pub Length: USHORT,
    pub MaximumLength: USHORT,
    pub Buffer: *mut u8,
}
/// `STRING` is the same structure.
pub type STRING = ANSI_STRING;

/// `RTL_OSVERSIONINFOW` (wdm.h): what `RtlGetVersion` fills.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RTL_OSVERSIONINFOW {
    pub dwOSVersionInfoSize: ULONG,
    pub dwMajorVersion: ULONG,
    pub dwMinorVersion: ULONG,
    pub dwBuildNumber: ULONG,
    pub dwPlatformId: ULONG,
    pub szCSDVersion: [WCHAR; 128],
}

/// `RTL_OSVERSIONINFOEXW` (wdm.h): the extended form (service pack, suite, product type).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RTL_OSVERSIONINFOEXW {
    pub dwOSVersionInfoSize: ULONG,
    pub dwMajorVersion: ULONG,
    pub dwMinorVersion: ULONG,
    pub dwBuildNumber: ULONG,
    pub dwPlatformId: ULONG,
    pub szCSDVersion: [WCHAR; 128],
    pub wServicePackMajor: USHORT,
    pub wServicePackMinor: USHORT,
    pub wSuiteMask: USHORT,
    pub wProductType: UCHAR,
    pub wReserved: UCHAR,
}

/// `RTL_BITMAP` (wdm.h): `SizeOfBitMap` bits in ULONGs at `Buffer`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RTL_BITMAP {
    pub SizeOfBitMap: ULONG,
    pub Buffer: *mut ULONG,
}

const _: () = assert!(size_of::<ANSI_STRING>() == 0x10);
const _: () = assert!(offset_of!(ANSI_STRING, Buffer) == 8);
const _: () = assert!(size_of::<RTL_OSVERSIONINFOW>() == 276);
const _: () = assert!(size_of::<RTL_OSVERSIONINFOEXW>() == 284);
const _: () = assert!(offset_of!(RTL_OSVERSIONINFOEXW, wServicePackMajor) == 276);
const _: () = assert!(offset_of!(RTL_OSVERSIONINFOEXW, wProductType) == 282);
const _: () = assert!(size_of::<RTL_BITMAP>() == 0x10);
const _: () = assert!(offset_of!(RTL_BITMAP, Buffer) == 8);

/// The Windows version ntsim reports everywhere (KUSER_SHARED_DATA's NtMajorVersion /
/// NtMinorVersion / NtBuildNumber, `RtlGetVersion`, `PsGetVersion`, the `NtBuildNumber` data
/// export): Windows 10 22H2, 10.0.19045.
pub const NTSIM_MAJOR_VERSION: ULONG = 10;
pub const NTSIM_MINOR_VERSION: ULONG = 0;
pub const NTSIM_BUILD_NUMBER: ULONG = 19045;
/// High bits of the exported `NtBuildNumber` variable: 0xF… for a free (retail) build, 0xC… for
/// a checked one (ReactOS `ntoskrnl/ex/init.c`); `NtBuildNumber & 0xFFFF` is the build.
pub const NT_BUILD_NUMBER_FREE: ULONG = 0xF000_0000;

/// `VER_PLATFORM_WIN32_NT`.
pub const VER_PLATFORM_WIN32_NT: ULONG = 2;
/// `VER_NT_WORKSTATION` (wProductType).
pub const VER_NT_WORKSTATION: UCHAR = 1;
/// `VER_SUITE_SINGLEUSERTS` (what a Windows 10 workstation reports in wSuiteMask).
pub const VER_SUITE_SINGLEUSERTS: USHORT = 0x0100;

/// `RtlVerifyVersionInfo` TypeMask bits (ntddk.h).
pub const VER_MINORVERSION: ULONG = 0x01;
pub const VER_MAJORVERSION: ULONG = 0x02;
pub const VER_BUILDNUMBER: ULONG = 0x04;
pub const VER_PLATFORMID: ULONG = 0x08;
pub const VER_SERVICEPACKMINOR: ULONG = 0x10;
pub const VER_SERVICEPACKMAJOR: ULONG = 0x20;
pub const VER_SUITENAME: ULONG = 0x40;
pub const VER_PRODUCT_TYPE: ULONG = 0x80;
/// Conditions (3 bits each in a condition mask, at 3 × the TypeMask bit index).
pub const VER_EQUAL: u8 = 1;
pub const VER_GREATER: u8 = 2;
pub const VER_GREATER_EQUAL: u8 = 3;
pub const VER_LESS: u8 = 4;
pub const VER_LESS_EQUAL: u8 = 5;
pub const VER_AND: u8 = 6;
pub const VER_OR: u8 = 7;

/// `MmSystemRangeStart` on x64 (the start of the kernel half).
pub const MM_SYSTEM_RANGE_START: u64 = 0xFFFF_8000_0000_0000;
/// `MmHighestUserAddress` on x64.
pub const MM_HIGHEST_USER_ADDRESS: u64 = 0x7FFF_FFFE_FFFF;

/// Largest byte length of a counted string (`UNICODE_STRING_MAX_BYTES`, MAXUSHORT rounded down to
/// whole WCHARs).
pub const UNICODE_STRING_MAX_BYTES: USHORT = 0xFFFE;

/// Pool tags of Rtl's string allocations (`RtlCreateUnicodeString`, `RtlAnsiStringToUnicodeString`
/// with AllocateDestinationString …), freed by `RtlFreeUnicodeString` / `RtlFreeAnsiString` with
/// the same tag. ReactOS `sdk/lib/rtl/rtlp.h`: TAG_USTR / TAG_ASTR (bytes "USTR" / "ASTR").
pub const RTL_UNICODE_STRING_TAG: ULONG = u32::from_le_bytes(*b"USTR");
pub const RTL_ANSI_STRING_TAG: ULONG = u32::from_le_bytes(*b"ASTR");

/// Bytes ntsim gives each emulated `OBJECT_TYPE` (the data exports `ExEventObjectType` and
/// friends point at one each). Drivers treat OBJECT_TYPE as opaque; Windows 10 x64's is 0xD8
/// bytes with its `Name` UNICODE_STRING at 0x10 (public type dumps).
pub const OBJECT_TYPE_SIZE: usize = 0xD8;
/// Offset of `OBJECT_TYPE.Name`.
pub const OBJECT_TYPE_NAME_OFFSET: usize = 0x10;
