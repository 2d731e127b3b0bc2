//! Dispatcher objects, DPCs, timers and system threads (x64 layouts from mingw-w64's
//! `ddk/wdm.h`, cross-checked by `tests/mingw_layouts.rs`; constants from the WDK headers).
#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::c_void;

use crate::ctl::SYNCHRONIZE;
use crate::ke::DISPATCHER_HEADER;
use crate::types::*;

/// `HANDLE`.
pub type HANDLE = *mut c_void;

/// `KOBJECTS` values a driver's dispatcher objects carry in `DISPATCHER_HEADER.Type`.
pub mod object_type {
    pub const EVENT_NOTIFICATION: u8 = 0;
    pub const EVENT_SYNCHRONIZATION: u8 = 1;
    pub const MUTANT: u8 = 2;
    pub const PROCESS: u8 = 3;
    pub const QUEUE: u8 = 4;
    pub const SEMAPHORE: u8 = 5;
    pub const THREAD: u8 = 6;
    pub const GATE: u8 = 7;
    pub const TIMER_NOTIFICATION: u8 = 8;
    pub const TIMER_SYNCHRONIZATION: u8 = 9;
    /// `DpcObject`: `KDPC.Type` after `KeInitializeDpc`.
    pub const DPC: u8 = 19;
    /// `ThreadedDpcObject`: `KDPC.Type` after `KeInitializeThreadedDpc`.
    pub const THREADED_DPC: u8 = 24;
}

crate::routine_type!(
    /// `KDEFERRED_ROUTINE`: a DPC routine (also a timer's DPC).
    pub type KDEFERRED_ROUTINE = unsafe fn(
        Dpc: *mut KDPC,
        DeferredContext: PVOID,
        SystemArgument1: PVOID,
        SystemArgument2: PVOID,
    )
);
crate::routine_type!(
    /// `KSTART_ROUTINE`: a system thread's start routine.
    pub type KSTART_ROUTINE = unsafe fn(StartContext: PVOID)
);

/// `KDPC` (0x40 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KDPC {
    pub Type: UCHAR,
    pub Importance: UCHAR,
    /// 0 = any processor (the one that queues it); `MAXIMUM_PROCESSORS + n` = processor n
    /// (`KeSetTargetProcessorDpc`).
    pub Number: USHORT,
    pub DpcListEntry: LIST_ENTRY,
    pub DeferredRoutine: Option<KDEFERRED_ROUTINE>,
    pub DeferredContext: PVOID,
    pub SystemArgument1: PVOID,
    pub SystemArgument2: PVOID,
    /// Non-null while the DPC is queued.
    pub DpcData: PVOID,
}

/// `KDPC_IMPORTANCE`.
pub const LOW_IMPORTANCE: UCHAR = 0;
pub const MEDIUM_IMPORTANCE: UCHAR = 1;
pub const HIGH_IMPORTANCE: UCHAR = 2;
pub const MEDIUM_HIGH_IMPORTANCE: UCHAR = 3;

/// `MAXIMUM_PROCESSORS` on x64 (the offset `KeSetTargetProcessorDpc` adds to `KDPC.Number`).
pub const MAXIMUM_PROCESSORS: USHORT = 64;

/// `KTIMER` (0x40 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KTIMER {
    pub Header: DISPATCHER_HEADER,
    /// When the timer expires (absolute interrupt time, 100 ns) while it is set.
    pub DueTime: u64,
    pub TimerListEntry: LIST_ENTRY,
    pub Dpc: *mut KDPC,
    pub Processor: ULONG,
    /// Milliseconds between expirations of a periodic timer (0: one-shot).
    pub Period: ULONG,
}

/// `TIMER_TYPE`.
pub type TIMER_TYPE = i32;
pub const NOTIFICATION_TIMER: TIMER_TYPE = 0;
pub const SYNCHRONIZATION_TIMER: TIMER_TYPE = 1;

/// `KSEMAPHORE` (0x20 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KSEMAPHORE {
    pub Header: DISPATCHER_HEADER,
    pub Limit: LONG,
}

/// `KMUTANT` / `KMUTEX` (0x38 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KMUTANT {
    pub Header: DISPATCHER_HEADER,
    pub MutantListEntry: LIST_ENTRY,
    pub OwnerThread: PVOID,
    pub Abandoned: BOOLEAN,
    pub ApcDisable: UCHAR,
}
pub type KMUTEX = KMUTANT;

/// `KWAIT_BLOCK` (x64, 0x30 bytes): what `KeWaitForMultipleObjects` needs one of per object
/// when it waits on more than [`THREAD_WAIT_OBJECTS`].
pub const KWAIT_BLOCK_SIZE: usize = 0x30;
/// `THREAD_WAIT_OBJECTS`: objects a wait may name without a caller-supplied wait-block array.
pub const THREAD_WAIT_OBJECTS: ULONG = 3;
/// `MAXIMUM_WAIT_OBJECTS`: the most objects one wait may name.
pub const MAXIMUM_WAIT_OBJECTS: ULONG = 64;

/// `WAIT_TYPE`.
pub type WAIT_TYPE = i32;
pub const WAIT_ALL: WAIT_TYPE = 0;
pub const WAIT_ANY: WAIT_TYPE = 1;

/// `CLIENT_ID`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CLIENT_ID {
    pub UniqueProcess: HANDLE,
    pub UniqueThread: HANDLE,
}

/// `OBJECT_ATTRIBUTES` (0x30 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct OBJECT_ATTRIBUTES {
    pub Length: ULONG,
    pub RootDirectory: HANDLE,
    pub ObjectName: *mut UNICODE_STRING,
    pub Attributes: ULONG,
    pub SecurityDescriptor: PVOID,
    pub SecurityQualityOfService: PVOID,
}

/// `OBJ_KERNEL_HANDLE`: the handle is in the kernel handle table.
pub const OBJ_KERNEL_HANDLE: ULONG = 0x200;

/// Access rights of thread and event handles (winnt.h).
pub const STANDARD_RIGHTS_REQUIRED: ACCESS_MASK = 0x000F_0000;
pub const THREAD_ALL_ACCESS: ACCESS_MASK = STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0xFFFF;
pub const EVENT_QUERY_STATE: ACCESS_MASK = 0x0001;
pub const EVENT_MODIFY_STATE: ACCESS_MASK = 0x0002;
pub const EVENT_ALL_ACCESS: ACCESS_MASK = STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0x3;

/// `NtCurrentProcess()`: the pseudo-handle of the current process.
pub const NT_CURRENT_PROCESS: isize = -1;

/// The `UniqueProcess` of the System process (`PsGetCurrentProcessId` on system threads).
pub const SYSTEM_PROCESS_ID: usize = 4;

/// `KPRIORITY` bounds: `LOW_PRIORITY` 0, `LOW_REALTIME_PRIORITY` 16, `HIGH_PRIORITY` 31.
pub const LOW_PRIORITY: LONG = 0;
pub const LOW_REALTIME_PRIORITY: LONG = 16;
pub const HIGH_PRIORITY: LONG = 31;
/// The priority a new system thread starts at (the System process's base priority, 8).
pub const SYSTEM_THREAD_PRIORITY: LONG = 8;

/// `KeQueryActiveProcessorCountEx` / `KeQueryMaximumProcessorCountEx` group argument meaning
/// "all groups".
pub const ALL_PROCESSOR_GROUPS: USHORT = 0xFFFF;

/// DISPATCHER_HEADER byte 3 of a timer: nonzero while the timer is in the timer queue
/// (`Inserted`), as ReactOS / older WDKs name it.
pub const TIMER_INSERTED_OFFSET: usize = 3;
