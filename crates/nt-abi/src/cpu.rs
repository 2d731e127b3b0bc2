//! The x64 processor state kernel code reads inline: the KPCR/KPRCB block behind GS, CR8 (the
//! IRQL), KUSER_SHARED_DATA, and the privileged instructions and interrupt vectors a driver may
//! execute. Layouts are pinned in [`crate::layout`] and re-checked against mingw-w64's
//! `ddk/ntddk.h` by `tests/mingw_layouts.rs`.
//!
//! Where mingw-w64 does not declare a structure (x64 `KPRCB`), the offsets come from the inline
//! helpers that read them — `KeGetCurrentThread` is `__readgsqword(0x188)` in `ddk/wdm.h`,
//! `KeGetCurrentProcessorNumber` is `__readgsword(0x184)` in `ddk/ntddk.h` — and from public
//! Windows 10 x64 type dumps (`KPRCB.CurrentThread` +0x8, `KPRCB.Number` +0x24).
#![allow(non_camel_case_types, non_snake_case)]

use crate::types::*;

/// `KPCR` (x64), the part mingw-w64's `ddk/ntddk.h` declares: 0x178 bytes, followed in memory
/// (after 8 bytes of alignment) by the processor's `KPRCB` (`KPCR.Prcb` at 0x180, see
/// [`KPCR_PRCB`]).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KPCR {
    pub GdtBase: PVOID,
    pub TssBase: PVOID,
    pub UserRsp: ULONG64,
    /// The KPCR's own address: `KeGetPcr()` is `__readgsqword(FIELD_OFFSET(KPCR, Self))`.
    pub Self_: *mut KPCR,
    pub CurrentPrcb: *mut KPRCB,
    pub LockArray: PVOID,
    pub Used_Self: PVOID,
    pub IdtBase: PVOID,
    pub Unused: [ULONG64; 2],
    /// Not maintained on x64 (the IRQL lives in CR8).
    pub Irql: UCHAR,
    pub SecondLevelCacheAssociativity: UCHAR,
    pub ObsoleteNumber: UCHAR,
    pub Fill0: UCHAR,
    pub Unused0: [ULONG; 3],
    pub MajorVersion: USHORT,
    pub MinorVersion: USHORT,
    pub StallScaleFactor: ULONG,
    pub Unused1: [PVOID; 3],
    pub KernelReserved: [ULONG; 15],
    pub SecondLevelCacheSize: ULONG,
    pub HalReserved: [ULONG; 16],
    pub Unused2: ULONG,
    pub KdVersionBlock: PVOID,
    pub Unused3: PVOID,
    pub PcrAlign1: [ULONG; 24],
}

/// The head of the x64 `KPRCB` (public Windows 10 type dumps): the fields drivers' inline code
/// reads through GS. The real structure is much larger; ntsim models only this much.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KPRCB {
    pub MxCsr: ULONG,
    /// `gs:[0x184]`: what mingw-w64's inline `KeGetCurrentProcessorNumber` reads (as a WORD;
    /// the byte after it, `ReservedMustBeZero`, is zero).
    pub LegacyNumber: UCHAR,
    pub ReservedMustBeZero: UCHAR,
    pub InterruptRequest: BOOLEAN,
    pub IdleHalt: BOOLEAN,
    /// `gs:[0x188]`: `KeGetCurrentThread()`.
    pub CurrentThread: PVOID,
    pub NextThread: PVOID,
    pub IdleThread: PVOID,
    pub NestingLevel: UCHAR,
    pub ClockOwner: BOOLEAN,
    pub PendingTickFlags: UCHAR,
    pub PrcbPad00: UCHAR,
    /// `gs:[0x1A4]`: the full processor number (Windows 7 and later).
    pub Number: ULONG,
    pub Reserved: [ULONG64; 3],
}

/// `PROCESSOR_NUMBER`: a processor's group and number within it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PROCESSOR_NUMBER {
    pub Group: USHORT,
    pub Number: UCHAR,
    pub Reserved: UCHAR,
}

/// The block GS points at: the KPCR with its KPRCB right behind it, as on Windows x64.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KPCR_BLOCK {
    pub Pcr: KPCR,
    /// Windows aligns the embedded KPRCB; `KPCR.Prcb` is at 0x180.
    pub PrcbAlign: ULONG64,
    pub Prcb: KPRCB,
}

/// `KPCR.Prcb`: offset of the embedded KPRCB from GS base.
pub const KPCR_PRCB: usize = 0x180;
/// `gs:[0x188]`: the current thread (`KPCR.Prcb.CurrentThread`), what `KeGetCurrentThread`
/// (and so `PsGetCurrentThread`) reads inline.
pub const GS_CURRENT_THREAD: usize = 0x188;
/// `gs:[0x184]`: `KPCR.Prcb.LegacyNumber`, read by mingw-w64's `KeGetCurrentProcessorNumber`.
pub const GS_LEGACY_PROCESSOR_NUMBER: usize = 0x184;
/// `gs:[0x1A4]`: `KPCR.Prcb.Number`.
pub const GS_PROCESSOR_NUMBER: usize = 0x1A4;
/// `KPCR.Self` (`gs:[0x18]`).
pub const GS_PCR_SELF: usize = 0x18;
/// `KPCR.CurrentPrcb` (`gs:[0x20]`).
pub const GS_CURRENT_PRCB: usize = 0x20;

/// `KSYSTEM_TIME`: a 64-bit time that user-mode readers can read without a lock — the writer
/// stores `High2Time`, then `LowPart`, then `High1Time`; a reader retries while `High1Time !=
/// High2Time`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct KSYSTEM_TIME {
    pub LowPart: ULONG,
    pub High1Time: LONG,
    pub High2Time: LONG,
}

/// `MmUserProbeAddress` on x64 (0x7FFF_FFFF_0000): user-mode buffers end below it; ProbeForRead
/// and ProbeForWrite raise STATUS_ACCESS_VIOLATION for ranges that reach it.
pub const MM_USER_PROBE_ADDRESS: u64 = 0x7FFF_FFFF_0000;

/// `KI_USER_SHARED_DATA` on x64: the kernel-mode address of `KUSER_SHARED_DATA`.
pub const KI_USER_SHARED_DATA: u64 = 0xFFFF_F780_0000_0000;
/// The shared page is one page long; ntsim serves reads anywhere inside it (bytes past
/// [`KUSER_SHARED_DATA`]'s modelled prefix read as zero).
pub const KUSER_SHARED_DATA_PAGE: u64 = 0x1000;

/// `NT_PRODUCT_TYPE` value `NtProductWinNt` (a workstation).
pub const NT_PRODUCT_WIN_NT: ULONG = 1;
/// `PROCESSOR_FEATURE_MAX`.
pub const PROCESSOR_FEATURE_MAX: usize = 64;

/// `KUSER_SHARED_DATA`, the modelled prefix (through `Cookie`), at the offsets of mingw-w64's
/// `ddk/ntddk.h` (`NtBuildNumber` at 0x260, inside mingw's `Reserved2`, from Windows 10 type
/// dumps).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KUSER_SHARED_DATA {
    pub TickCountLowDeprecated: ULONG,
    pub TickCountMultiplier: ULONG,
    /// 100 ns units since boot (`KeQueryInterruptTime`, `SharedInterruptTime` = +0x8).
    pub InterruptTime: KSYSTEM_TIME,
    /// 100 ns units since 1601-01-01 UTC (`KeQuerySystemTime`, `SharedSystemTime` = +0x14).
    pub SystemTime: KSYSTEM_TIME,
    pub TimeZoneBias: KSYSTEM_TIME,
    pub ImageNumberLow: USHORT,
    pub ImageNumberHigh: USHORT,
    pub NtSystemRoot: [WCHAR; 260],
    pub MaxStackTraceDepth: ULONG,
    pub CryptoExponent: ULONG,
    pub TimeZoneId: ULONG,
    pub LargePageMinimum: ULONG,
    pub Reserved2: [ULONG; 6],
    pub NtBuildNumber: ULONG,
    pub NtProductType: ULONG,
    pub ProductTypeIsValid: BOOLEAN,
    pub NtMajorVersion: ULONG,
    pub NtMinorVersion: ULONG,
    pub ProcessorFeatures: [BOOLEAN; PROCESSOR_FEATURE_MAX],
    pub Reserved1: ULONG,
    pub Reserved3: ULONG,
    pub TimeSlip: ULONG,
    pub AlternativeArchitecture: ULONG,
    pub AltArchitecturePad: [ULONG; 1],
    pub SystemExpirationDate: LARGE_INTEGER,
    pub SuiteMask: ULONG,
    pub KdDebuggerEnabled: BOOLEAN,
    pub NXSupportPolicy: UCHAR,
    pub ActiveConsoleId: ULONG,
    pub DismountCount: ULONG,
    pub ComPlusPackage: ULONG,
    pub LastSystemRITEventTickCount: ULONG,
    pub NumberOfPhysicalPages: ULONG,
    pub SafeBootMode: BOOLEAN,
    pub TscQpcData: UCHAR,
    pub TscQpcPad: [UCHAR; 2],
    pub SharedDataFlags: ULONG,
    pub DataFlagsPad: [ULONG; 1],
    pub TestRetInstruction: ULONG64,
    pub SystemCall: ULONG,
    pub SystemCallReturn: ULONG,
    pub SystemCallPad: [ULONG64; 3],
    /// Clock ticks since boot (`KeQueryTickCount`, `SharedTickCount` = +0x320).
    pub TickCount: KSYSTEM_TIME,
    pub TickCountPad: [ULONG; 1],
    pub Cookie: ULONG,
    pub CookiePad: [ULONG; 1],
}

/// `SharedInterruptTime` (`KI_USER_SHARED_DATA + 0x8`).
pub const KUSER_INTERRUPT_TIME: u64 = 0x8;
/// `SharedSystemTime` (`KI_USER_SHARED_DATA + 0x14`).
pub const KUSER_SYSTEM_TIME: u64 = 0x14;
/// `SharedTickCount` (`KI_USER_SHARED_DATA + 0x320`).
pub const KUSER_TICK_COUNT: u64 = 0x320;

/// The clock interval Windows uses by default: 15.625 ms (156 250 × 100 ns), so the tick count
/// advances 64 times a second and `KeQueryTimeIncrement` returns 156 250.
pub const CLOCK_TIME_INCREMENT: u64 = 156_250;

/// Interrupt vector of `__int2c()`, `NT_ASSERT`'s assertion trap (`KiRaiseAssertion`):
/// raises `STATUS_ASSERTION_FAILURE`.
pub const INT_ASSERTION: u8 = 0x2C;
/// Interrupt vector of `__fastfail(code)` (`KiRaiseSecurityCheckFailure`): bug check 0x139 with
/// the fast-fail code (RCX) as parameter 1.
pub const INT_FAST_FAIL: u8 = 0x29;
/// Interrupt vector of `int3` (breakpoint).
pub const INT_BREAKPOINT: u8 = 0x03;

/// `__fastfail` codes (winnt.h `FAST_FAIL_*`) the fixtures and reports use.
pub mod fast_fail {
    pub const LEGACY_GS_VIOLATION: u64 = 0;
    pub const STACK_COOKIE_CHECK_FAILURE: u64 = 2;
    pub const CORRUPT_LIST_ENTRY: u64 = 3;
    pub const INVALID_ARG: u64 = 5;
    pub const GUARD_ICALL_CHECK_FAILURE: u64 = 10;
    pub const INVALID_FAST_FAIL_CODE: u64 = 0x26;
}

/// Model-specific registers ntsim serves to `rdmsr`.
pub mod msr {
    /// `IA32_TIME_STAMP_COUNTER`.
    pub const IA32_TSC: u32 = 0x10;
    /// `IA32_APIC_BASE`.
    pub const IA32_APIC_BASE: u32 = 0x1B;
    /// `IA32_MISC_ENABLE`.
    pub const IA32_MISC_ENABLE: u32 = 0x1A0;
    /// `IA32_EFER`: on Windows x64 SCE|LME|LMA|NXE are set.
    pub const IA32_EFER: u32 = 0xC000_0080;
    /// `IA32_LSTAR`: the system-call entry (KiSystemCall64).
    pub const IA32_LSTAR: u32 = 0xC000_0082;
    /// `IA32_FS_BASE`.
    pub const IA32_FS_BASE: u32 = 0xC000_0100;
    /// `IA32_GS_BASE`: in kernel mode, the KPCR.
    pub const IA32_GS_BASE: u32 = 0xC000_0101;
    /// `IA32_KERNEL_GS_BASE`: the user-mode TEB while in kernel mode.
    pub const IA32_KERNEL_GS_BASE: u32 = 0xC000_0102;
    /// `IA32_TSC_AUX`: Windows stores the processor number here (`rdtscp`).
    pub const IA32_TSC_AUX: u32 = 0xC000_0103;
    /// `EFER` bits: SCE | LME | LMA | NXE.
    pub const EFER_WINDOWS_X64: u64 = 0x1 | 0x100 | 0x400 | 0x800;
}

/// `DISPATCHER_HEADER.Type` of a thread object (`ThreadObject`).
pub const THREAD_OBJECT: UCHAR = 6;
