//! ntoskrnl's exported variables (data exports), declared in `nt_abi::imports::data`.
//!
//! A data import is bound to the *address of the variable*: the driver's IAT slot holds it (no
//! code stub). The variables are process-wide, read-only statics; only `KdDebuggerEnabled` /
//! `KdDebuggerNotPresent` depend on the machine (`Config::debugger`), so each has one static per
//! value and a machine binds the one that matches it.
//!
//! Values: the object types are distinct opaque `OBJECT_TYPE` blocks whose `Name` (at 0x10, as
//! Windows 10 x64's type dumps place it) reads `Event`, `Semaphore`, `File`, `Device`, `Driver`,
//! `Thread`, `Process`, `Token`; `NtBuildNumber` = 0xF0000000 | 19045 (a free build; ReactOS
//! `ntoskrnl/ex/init.c` sets the high nibble so); `MmSystemRangeStart` 0xFFFF800000000000,
//! `MmHighestUserAddress` 0x7FFFFFFEFFFF, `MmUserProbeAddress` 0x7FFFFFFF0000 (x64 values,
//! Microsoft's *Virtual address spaces* and ntddk.h); `InitSafeBootMode` 0 (a normal boot);
//! `KeNumberProcessors` the processor count ntsim reports.
#![allow(non_upper_case_globals)]

use core::ffi::c_void;
use std::sync::atomic::{AtomicI8, Ordering};

use nt_abi::imports::data::types;
use nt_abi::rtl::*;
use nt_abi::*;

/// A variable as ntoskrnl exports it (`repr(transparent)`: the IAT slot points at the value).
#[repr(transparent)]
pub struct Var<T>(T);
// SAFETY: the values are plain data (integers, or pointers to immutable statics) never written.
unsafe impl<T> Sync for Var<T> {}

/// An emulated OBJECT_TYPE: opaque to drivers, with its Name where Windows has it.
#[repr(C, align(16))]
pub struct ObjectType {
    type_list: [usize; 2],
    name: UNICODE_STRING,
    rest: [u8; OBJECT_TYPE_SIZE - OBJECT_TYPE_NAME_OFFSET - 16],
}
// SAFETY: immutable after construction; the name buffer is an immutable static.
unsafe impl Sync for ObjectType {}

const _: () = assert!(core::mem::offset_of!(ObjectType, name) == OBJECT_TYPE_NAME_OFFSET);
const _: () = assert!(core::mem::size_of::<ObjectType>() >= OBJECT_TYPE_SIZE);

const fn wide<const N: usize>(s: &str) -> [u16; N] {
    let b = s.as_bytes();
    let mut o = [0u16; N];
    let mut i = 0;
    while i < b.len() {
        o[i] = b[i] as u16;
        i += 1;
    }
    o
}

macro_rules! object_types {
    ($($var:ident, $obj:ident, $nm:ident = $text:literal;)*) => {
        $(
            static $nm: [u16; $text.len()] = wide($text);
            static $obj: ObjectType = ObjectType {
                type_list: [0; 2],
                name: UNICODE_STRING {
                    Length: ($text.len() * 2) as u16,
                    MaximumLength: ($text.len() * 2) as u16,
                    Buffer: $nm.as_ptr() as *mut u16,
                },
                rest: [0; OBJECT_TYPE_SIZE - OBJECT_TYPE_NAME_OFFSET - 16],
            };
            static $var: Var<types::$var> = Var(&$obj as *const ObjectType as *mut c_void);
        )*
        /// The OBJECT_TYPE address a `*XxxObjectType` variable holds, by export name.
        pub fn object_type(name: &str) -> Option<usize> {
            match name {
                $(stringify!($var) => Some(&$obj as *const ObjectType as usize),)*
                _ => None,
            }
        }
        fn object_type_var(name: &str) -> Option<usize> {
            match name {
                $(stringify!($var) => Some(&$var as *const _ as usize),)*
                _ => None,
            }
        }
    };
}

object_types! {
    ExEventObjectType, EVENT_TYPE, EVENT_NAME = "Event";
    ExSemaphoreObjectType, SEMAPHORE_TYPE, SEMAPHORE_NAME = "Semaphore";
    IoFileObjectType, FILE_TYPE, FILE_NAME = "File";
    IoDeviceObjectType, DEVICE_TYPE, DEVICE_NAME = "Device";
    IoDriverObjectType, DRIVER_TYPE, DRIVER_NAME = "Driver";
    PsThreadType, THREAD_TYPE, THREAD_NAME = "Thread";
    PsProcessType, PROCESS_TYPE, PROCESS_NAME = "Process";
    SeTokenObjectType, TOKEN_TYPE, TOKEN_NAME = "Token";
}

static NtBuildNumber: Var<types::NtBuildNumber> = Var(NT_BUILD_NUMBER_FREE | NTSIM_BUILD_NUMBER);
static KD_ENABLED: [Var<types::KdDebuggerEnabled>; 2] = [Var(FALSE), Var(TRUE)];
static KD_NOT_PRESENT: [Var<types::KdDebuggerNotPresent>; 2] = [Var(TRUE), Var(FALSE)];
static MmSystemRangeStart: Var<types::MmSystemRangeStart> =
    Var(MM_SYSTEM_RANGE_START as usize as PVOID);
static MmHighestUserAddress: Var<types::MmHighestUserAddress> =
    Var(MM_HIGHEST_USER_ADDRESS as usize as PVOID);
static MmUserProbeAddress: Var<types::MmUserProbeAddress> = Var(MM_USER_PROBE_ADDRESS as usize);
static InitSafeBootMode: Var<types::InitSafeBootMode> = Var(0);
/// Set when first bound (the host's processor count is known at run time).
static KE_NUMBER_PROCESSORS: AtomicI8 = AtomicI8::new(0);
const _: () =
    assert!(core::mem::size_of::<AtomicI8>() == core::mem::size_of::<types::KeNumberProcessors>());

/// The address of the data export `name` for a machine with (`debugger` = true) or without a
/// kernel debugger, or None if `name` is not an emulated variable.
pub fn address(name: &str, debugger: bool) -> Option<usize> {
    if let Some(a) = object_type_var(name) {
        return Some(a);
    }
    let d = debugger as usize;
    Some(match name {
        "NtBuildNumber" => &NtBuildNumber as *const _ as usize,
        "KdDebuggerEnabled" => &KD_ENABLED[d] as *const _ as usize,
        "KdDebuggerNotPresent" => &KD_NOT_PRESENT[d] as *const _ as usize,
        "MmSystemRangeStart" => &MmSystemRangeStart as *const _ as usize,
        "MmHighestUserAddress" => &MmHighestUserAddress as *const _ as usize,
        "MmUserProbeAddress" => &MmUserProbeAddress as *const _ as usize,
        "InitSafeBootMode" => &InitSafeBootMode as *const _ as usize,
        "KeNumberProcessors" => {
            let n = crate::ke::cpu::processor_count().min(i8::MAX as u32) as i8;
            KE_NUMBER_PROCESSORS.store(n, Ordering::Relaxed);
            &KE_NUMBER_PROCESSORS as *const _ as usize
        }
        _ => return None,
    })
}
