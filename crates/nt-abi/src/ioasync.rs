//! Asynchronous I/O support structures: cancel-safe IRP queues (`IO_CSQ`,
//! `IO_CSQ_IRP_CONTEXT`), remove locks (`IO_REMOVE_LOCK`, free and checked layouts) and the
//! process object a driver may be handed (`PEPROCESS`, opaque).
//!
//! Layouts are x64 (the same on ARM64), asserted below and checked against mingw-w64's
//! `ddk/wdm.h` by `tests/mingw_io_async.rs` (with `DBG=1` for the checked remove lock).
#![allow(non_camel_case_types, non_snake_case)]

use core::mem::{offset_of, size_of};

use crate::io::IRP;
use crate::ke::{KEVENT, KIRQL, KSPIN_LOCK};
use crate::types::*;

/// `IO_CSQ_IRP_CONTEXT.Type`.
pub const IO_TYPE_CSQ_IRP_CONTEXT: ULONG = 1;
/// `IO_CSQ.Type` of a queue initialized by `IoCsqInitialize`.
pub const IO_TYPE_CSQ: ULONG = 2;
/// `IO_CSQ.Type` of a queue initialized by `IoCsqInitializeEx`.
pub const IO_TYPE_CSQ_EX: ULONG = 3;

/// Index of `Irp->Tail.Overlay.DriverContext` the `IoCsqXxx` routines own (Microsoft,
/// *IoCsqInsertIrp*: "the IoCsqXxx routines use the DriverContext\[3\] member of the IRP").
pub const CSQ_DRIVER_CONTEXT_SLOT: usize = 3;

crate::routine_type!(pub type PIO_CSQ_INSERT_IRP = unsafe fn(Csq: *mut IO_CSQ, Irp: *mut IRP));
crate::routine_type!(pub type PIO_CSQ_INSERT_IRP_EX = unsafe fn(Csq: *mut IO_CSQ, Irp: *mut IRP, InsertContext: PVOID) -> NTSTATUS);
crate::routine_type!(pub type PIO_CSQ_REMOVE_IRP = unsafe fn(Csq: *mut IO_CSQ, Irp: *mut IRP));
crate::routine_type!(pub type PIO_CSQ_PEEK_NEXT_IRP = unsafe fn(Csq: *mut IO_CSQ, Irp: *mut IRP, PeekContext: PVOID) -> *mut IRP);
crate::routine_type!(pub type PIO_CSQ_ACQUIRE_LOCK = unsafe fn(Csq: *mut IO_CSQ, Irql: *mut KIRQL));
crate::routine_type!(pub type PIO_CSQ_RELEASE_LOCK = unsafe fn(Csq: *mut IO_CSQ, Irql: KIRQL));
crate::routine_type!(pub type PIO_CSQ_COMPLETE_CANCELED_IRP = unsafe fn(Csq: *mut IO_CSQ, Irp: *mut IRP));

/// `IO_CSQ` (0x40 bytes): the queue's type and the driver's six callbacks. `CsqInsertIrp`
/// holds a `PIO_CSQ_INSERT_IRP_EX` when `Type` is [`IO_TYPE_CSQ_EX`].
#[repr(C)]
pub struct IO_CSQ {
    pub Type: ULONG,
    pub CsqInsertIrp: PVOID,
    pub CsqRemoveIrp: Option<PIO_CSQ_REMOVE_IRP>,
    pub CsqPeekNextIrp: Option<PIO_CSQ_PEEK_NEXT_IRP>,
    pub CsqAcquireLock: Option<PIO_CSQ_ACQUIRE_LOCK>,
    pub CsqReleaseLock: Option<PIO_CSQ_RELEASE_LOCK>,
    pub CsqCompleteCanceledIrp: Option<PIO_CSQ_COMPLETE_CANCELED_IRP>,
    pub ReservePointer: PVOID,
}

/// `IO_CSQ_IRP_CONTEXT` (0x18 bytes): what `IoCsqRemoveIrp` finds a queued IRP by.
#[repr(C)]
pub struct IO_CSQ_IRP_CONTEXT {
    pub Type: ULONG,
    pub Irp: *mut IRP,
    pub Csq: *mut IO_CSQ,
}

/// `IO_REMOVE_LOCK_COMMON_BLOCK` (0x20 bytes): all of a free-build `IO_REMOVE_LOCK`.
#[repr(C)]
pub struct IO_REMOVE_LOCK_COMMON_BLOCK {
    pub Removed: BOOLEAN,
    pub Reserved: [BOOLEAN; 3],
    pub IoCount: LONG,
    pub RemoveEvent: KEVENT,
}

/// `IO_REMOVE_LOCK_DBG_BLOCK` (0x58 bytes): what a checked (`DBG`) build adds.
#[repr(C)]
pub struct IO_REMOVE_LOCK_DBG_BLOCK {
    pub Signature: LONG,
    pub HighWatermark: LONG,
    pub MaxLockedTicks: i64,
    pub AllocateTag: LONG,
    pub LockList: LIST_ENTRY,
    pub Spin: KSPIN_LOCK,
    pub LowMemoryCount: LONG,
    pub Reserved1: [ULONG; 4],
    pub Reserved2: PVOID,
    pub Blocks: PVOID,
}

/// `IO_REMOVE_LOCK` as a checked build of a driver declares it (`#if DBG`): the common block
/// then the debug block. A free build's `IO_REMOVE_LOCK` is [`IO_REMOVE_LOCK_COMMON_BLOCK`]
/// alone; `RemlockSize` (the driver's `sizeof(IO_REMOVE_LOCK)`) tells the two apart.
#[repr(C)]
pub struct IO_REMOVE_LOCK_CHECKED {
    pub Common: IO_REMOVE_LOCK_COMMON_BLOCK,
    pub Dbg: IO_REMOVE_LOCK_DBG_BLOCK,
}

/// `RemlockSize` of a free build's `IO_REMOVE_LOCK`.
pub const REMLOCK_SIZE_FREE: ULONG = size_of::<IO_REMOVE_LOCK_COMMON_BLOCK>() as ULONG;
/// `RemlockSize` of a checked build's `IO_REMOVE_LOCK`.
pub const REMLOCK_SIZE_CHECKED: ULONG = size_of::<IO_REMOVE_LOCK_CHECKED>() as ULONG;
/// `IO_REMOVE_LOCK_DBG_BLOCK.Signature` of an initialized checked lock (`'COLR'` as a C
/// multi-character constant: the bytes "RLOC" in memory).
pub const REMLOCK_SIGNATURE: LONG = i32::from_be_bytes(*b"COLR");

/// `PEPROCESS`: a process object, opaque to drivers.
pub type PEPROCESS = PVOID;
/// `DISPATCHER_HEADER.Type` of a process object (`ProcessObject`).
pub const PROCESS_OBJECT: UCHAR = 3;

const _: () = assert!(size_of::<IO_CSQ>() == 0x40);
const _: () = assert!(offset_of!(IO_CSQ, CsqInsertIrp) == 0x08);
const _: () = assert!(offset_of!(IO_CSQ, CsqCompleteCanceledIrp) == 0x30);
const _: () = assert!(offset_of!(IO_CSQ, ReservePointer) == 0x38);
const _: () = assert!(size_of::<IO_CSQ_IRP_CONTEXT>() == 0x18);
const _: () = assert!(offset_of!(IO_CSQ_IRP_CONTEXT, Irp) == 0x08);
const _: () = assert!(offset_of!(IO_CSQ_IRP_CONTEXT, Csq) == 0x10);
const _: () = assert!(size_of::<IO_REMOVE_LOCK_COMMON_BLOCK>() == 0x20);
const _: () = assert!(offset_of!(IO_REMOVE_LOCK_COMMON_BLOCK, IoCount) == 0x04);
const _: () = assert!(offset_of!(IO_REMOVE_LOCK_COMMON_BLOCK, RemoveEvent) == 0x08);
const _: () = assert!(size_of::<IO_REMOVE_LOCK_DBG_BLOCK>() == 0x58);
const _: () = assert!(offset_of!(IO_REMOVE_LOCK_DBG_BLOCK, LockList) == 0x18);
const _: () = assert!(offset_of!(IO_REMOVE_LOCK_DBG_BLOCK, Blocks) == 0x50);
const _: () = assert!(REMLOCK_SIZE_FREE == 0x20 && REMLOCK_SIZE_CHECKED == 0x78);
