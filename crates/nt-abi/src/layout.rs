//! Compile-time layout assertions, for x64 and ARM64 alike (the layouts are the same on both; see
//! the crate docs). A wrong offset fails the build of every crate that depends on nt-abi, for
//! whichever of the two targets it is built. `tests/mingw_layouts.rs` re-checks the same numbers against mingw-w64's
//! headers with a C compiler, so the two sources of truth must agree.
use core::mem::{offset_of, size_of};

use crate::io::*;
use crate::ke::*;
use crate::types::*;
use crate::workitem::WORK_QUEUE_ITEM;

/// `(type, field, offset)` rows: the table the mingw cross-check generates its C asserts from.
#[macro_export]
macro_rules! for_each_layout_fact {
    ($m:ident) => {
        $m! {
            sizes: [
                (UNICODE_STRING, 0x10), (LIST_ENTRY, 0x10), (IO_STATUS_BLOCK, 0x10),
                (KEVENT, 0x18), (DISPATCHER_HEADER, 0x18), (KSPIN_LOCK, 8),
                (WORK_QUEUE_ITEM, 0x20), (DRIVER_OBJECT, 0x150), (DEVICE_OBJECT, 0x150),
                (IRP, 0xD0), (IO_STACK_LOCATION, 0x48), (FILE_OBJECT, 0xD8),
                (LARGE_INTEGER, 8)
            ],
            offsets: [
                (UNICODE_STRING, Length, 0x0), (UNICODE_STRING, MaximumLength, 0x2),
                (UNICODE_STRING, Buffer, 0x8),
                (IO_STATUS_BLOCK, Information, 0x8),
                (DRIVER_OBJECT, DeviceObject, 0x08), (DRIVER_OBJECT, Flags, 0x10),
                (DRIVER_OBJECT, DriverStart, 0x18), (DRIVER_OBJECT, DriverSize, 0x20),
                (DRIVER_OBJECT, DriverSection, 0x28), (DRIVER_OBJECT, DriverExtension, 0x30),
                (DRIVER_OBJECT, DriverName, 0x38), (DRIVER_OBJECT, DriverInit, 0x58),
                (DRIVER_OBJECT, DriverUnload, 0x68), (DRIVER_OBJECT, MajorFunction, 0x70),
                (DEVICE_OBJECT, Type, 0x0), (DEVICE_OBJECT, Size, 0x2),
                (DEVICE_OBJECT, ReferenceCount, 0x4), (DEVICE_OBJECT, DriverObject, 0x8),
                (DEVICE_OBJECT, NextDevice, 0x10), (DEVICE_OBJECT, CurrentIrp, 0x20),
                (DEVICE_OBJECT, Flags, 0x30), (DEVICE_OBJECT, Characteristics, 0x34),
                (DEVICE_OBJECT, DeviceExtension, 0x40), (DEVICE_OBJECT, DeviceType, 0x48),
                (DEVICE_OBJECT, StackSize, 0x4C), (DEVICE_OBJECT, AlignmentRequirement, 0x98),
                (DEVICE_OBJECT, ActiveThreadCount, 0x108), (DEVICE_OBJECT, DeviceLock, 0x118),
                (DEVICE_OBJECT, SectorSize, 0x130), (DEVICE_OBJECT, DeviceObjectExtension, 0x138),
                (DEVICE_OBJECT, Reserved, 0x140),
                (IRP, Type, 0x0), (IRP, Size, 0x2), (IRP, MdlAddress, 0x8), (IRP, Flags, 0x10),
                (IRP, AssociatedIrp, 0x18), (IRP, ThreadListEntry, 0x20), (IRP, IoStatus, 0x30),
                (IRP, RequestorMode, 0x40), (IRP, PendingReturned, 0x41),
                (IRP, StackCount, 0x42), (IRP, CurrentLocation, 0x43), (IRP, Cancel, 0x44),
                (IRP, CancelIrql, 0x45), (IRP, UserIosb, 0x48), (IRP, UserEvent, 0x50),
                (IRP, Overlay, 0x58), (IRP, CancelRoutine, 0x68), (IRP, UserBuffer, 0x70),
                (IRP, Tail, 0x78),
                (IO_STACK_LOCATION, MajorFunction, 0x0), (IO_STACK_LOCATION, MinorFunction, 0x1),
                (IO_STACK_LOCATION, Flags, 0x2), (IO_STACK_LOCATION, Control, 0x3),
                (IO_STACK_LOCATION, Parameters, 0x8), (IO_STACK_LOCATION, DeviceObject, 0x28),
                (IO_STACK_LOCATION, FileObject, 0x30), (IO_STACK_LOCATION, CompletionRoutine, 0x38),
                (IO_STACK_LOCATION, Context, 0x40),
                (FILE_OBJECT, DeviceObject, 0x8), (FILE_OBJECT, FsContext, 0x18),
                (FILE_OBJECT, FinalStatus, 0x38), (FILE_OBJECT, Flags, 0x50),
                (FILE_OBJECT, FileName, 0x58), (FILE_OBJECT, Lock, 0x80), (FILE_OBJECT, Event, 0x98),
                (FILE_OBJECT, CompletionContext, 0xB0),
                (WORK_QUEUE_ITEM, WorkerRoutine, 0x10), (WORK_QUEUE_ITEM, Parameter, 0x18)
            ],
        }
    };
}

macro_rules! assert_layout {
    (sizes: [$(($t:ident, $size:expr)),* $(,)?], offsets: [$(($ot:ident, $f:ident, $off:expr)),* $(,)?],) => {
        $(const _: () = assert!(size_of::<$t>() == $size, concat!("size of ", stringify!($t)));)*
        $(const _: () = assert!(offset_of!($ot, $f) == $off, concat!(stringify!($ot), ".", stringify!($f)));)*
    };
}
for_each_layout_fact!(assert_layout);

// Nested members a driver reads through unions, asserted by absolute position.
const _: () = assert!(offset_of!(IRP, Tail) + offset_of!(IRP_TAIL_OVERLAY, Thread) == 0x98);
const _: () = assert!(offset_of!(IRP, Tail) + offset_of!(IRP_TAIL_OVERLAY, ListEntry) == 0xA8);
const _: () =
    assert!(offset_of!(IRP, Tail) + offset_of!(IRP_TAIL_OVERLAY, CurrentStackLocation) == 0xB8);
const _: () =
    assert!(offset_of!(IRP, Tail) + offset_of!(IRP_TAIL_OVERLAY, OriginalFileObject) == 0xC0);
const _: () = assert!(offset_of!(IRP, IoStatus) + offset_of!(IO_STATUS_BLOCK, Information) == 0x38);
const _: () = assert!(
    offset_of!(IO_STACK_LOCATION, Parameters)
        + offset_of!(DEVICE_IO_CONTROL_PARAMETERS, OutputBufferLength)
        == 0x8
);
const _: () = assert!(
    offset_of!(IO_STACK_LOCATION, Parameters)
        + offset_of!(DEVICE_IO_CONTROL_PARAMETERS, InputBufferLength)
        == 0x10
);
const _: () = assert!(
    offset_of!(IO_STACK_LOCATION, Parameters)
        + offset_of!(DEVICE_IO_CONTROL_PARAMETERS, IoControlCode)
        == 0x18
);
const _: () = assert!(
    offset_of!(IO_STACK_LOCATION, Parameters)
        + offset_of!(DEVICE_IO_CONTROL_PARAMETERS, Type3InputBuffer)
        == 0x20
);
const _: () = assert!(size_of::<IO_STACK_PARAMETERS>() == 0x20);
const _: () = assert!(core::mem::align_of::<DEVICE_OBJECT>() == 16);
const _: () = assert!(size_of::<DRIVER_EXTENSION>() == 0x28);
