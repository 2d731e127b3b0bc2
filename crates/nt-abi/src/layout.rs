//! Compile-time layout assertions, for x64 and ARM64 alike (the layouts are the same on both; see
//! the crate docs). A wrong offset fails the build of every crate that depends on nt-abi, for
//! whichever of the two targets it is built. `tests/mingw_layouts.rs` re-checks the same numbers against mingw-w64's
//! headers with a C compiler, so the two sources of truth must agree.
use core::mem::{offset_of, size_of};

use crate::cpu::*;
use crate::dispatcher::*;
use crate::io::*;
use crate::ke::*;
use crate::mdl::*;
use crate::seh::*;
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
                (LARGE_INTEGER, 8),
                (KPCR, 0x178), (KSYSTEM_TIME, 0xC),
                (EXCEPTION_RECORD, 0x98), (EXCEPTION_POINTERS, 0x10), (M128A, 0x10),
                (XMM_SAVE_AREA32, 0x200), (CONTEXT, 0x4D0), (PROCESSOR_NUMBER, 4), (MDL, 0x30),
                (KDPC, 0x40), (KTIMER, 0x40), (KSEMAPHORE, 0x20), (KMUTANT, 0x38),
                (CLIENT_ID, 0x10), (OBJECT_ATTRIBUTES, 0x30)
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
                (MDL, Next, 0x0), (MDL, Size, 0x8), (MDL, MdlFlags, 0xA), (MDL, Process, 0x10),
                (MDL, MappedSystemVa, 0x18), (MDL, StartVa, 0x20), (MDL, ByteCount, 0x28),
                (MDL, ByteOffset, 0x2C),
                (KDPC, Number, 0x2), (KDPC, DpcListEntry, 0x8), (KDPC, DeferredRoutine, 0x18),
                (KDPC, DeferredContext, 0x20), (KDPC, SystemArgument1, 0x28),
                (KDPC, DpcData, 0x38), (KTIMER, DueTime, 0x18), (KTIMER, Dpc, 0x30),
                (KTIMER, Period, 0x3C), (KSEMAPHORE, Limit, 0x18),
                (KMUTANT, OwnerThread, 0x28), (KMUTANT, Abandoned, 0x30),
                (WORK_QUEUE_ITEM, WorkerRoutine, 0x10), (WORK_QUEUE_ITEM, Parameter, 0x18),
                (KPCR, GdtBase, 0x0), (KPCR, CurrentPrcb, 0x20), (KPCR, IdtBase, 0x38),
                (KPCR, Irql, 0x50), (KPCR, MajorVersion, 0x60), (KPCR, MinorVersion, 0x62),
                (KPCR, KdVersionBlock, 0x108),
                (PROCESSOR_NUMBER, Number, 0x2),
                (KSYSTEM_TIME, LowPart, 0x0), (KSYSTEM_TIME, High1Time, 0x4),
                (KSYSTEM_TIME, High2Time, 0x8),
                (KUSER_SHARED_DATA, TickCountMultiplier, 0x4),
                (KUSER_SHARED_DATA, InterruptTime, 0x8), (KUSER_SHARED_DATA, SystemTime, 0x14),
                (KUSER_SHARED_DATA, TimeZoneBias, 0x20), (KUSER_SHARED_DATA, NtSystemRoot, 0x30),
                (KUSER_SHARED_DATA, Reserved2, 0x248), (KUSER_SHARED_DATA, NtProductType, 0x264),
                (KUSER_SHARED_DATA, ProductTypeIsValid, 0x268),
                (KUSER_SHARED_DATA, NtMajorVersion, 0x26C),
                (KUSER_SHARED_DATA, NtMinorVersion, 0x270),
                (KUSER_SHARED_DATA, ProcessorFeatures, 0x274),
                (KUSER_SHARED_DATA, SystemExpirationDate, 0x2C8),
                (KUSER_SHARED_DATA, KdDebuggerEnabled, 0x2D4),
                (KUSER_SHARED_DATA, NumberOfPhysicalPages, 0x2E8),
                (KUSER_SHARED_DATA, SafeBootMode, 0x2EC), (KUSER_SHARED_DATA, TscQpcData, 0x2ED),
                (KUSER_SHARED_DATA, SharedDataFlags, 0x2F0),
                (KUSER_SHARED_DATA, TestRetInstruction, 0x2F8),
                (KUSER_SHARED_DATA, SystemCallPad, 0x308), (KUSER_SHARED_DATA, TickCount, 0x320),
                (KUSER_SHARED_DATA, Cookie, 0x330),
                (EXCEPTION_RECORD, ExceptionCode, 0x0), (EXCEPTION_RECORD, ExceptionFlags, 0x4),
                (EXCEPTION_RECORD, ExceptionRecord, 0x8),
                (EXCEPTION_RECORD, ExceptionAddress, 0x10),
                (EXCEPTION_RECORD, NumberParameters, 0x18),
                (EXCEPTION_RECORD, ExceptionInformation, 0x20),
                (EXCEPTION_POINTERS, ExceptionRecord, 0x0), (EXCEPTION_POINTERS, ContextRecord, 0x8),
                (XMM_SAVE_AREA32, MxCsr, 0x18), (XMM_SAVE_AREA32, FloatRegisters, 0x20),
                (XMM_SAVE_AREA32, XmmRegisters, 0xA0),
                (CONTEXT, P1Home, 0x0), (CONTEXT, ContextFlags, 0x30), (CONTEXT, MxCsr, 0x34),
                (CONTEXT, SegCs, 0x38), (CONTEXT, SegGs, 0x40), (CONTEXT, SegSs, 0x42),
                (CONTEXT, EFlags, 0x44), (CONTEXT, Dr0, 0x48), (CONTEXT, Dr7, 0x70),
                (CONTEXT, Rax, 0x78), (CONTEXT, Rcx, 0x80), (CONTEXT, Rdx, 0x88),
                (CONTEXT, Rbx, 0x90), (CONTEXT, Rsp, 0x98), (CONTEXT, Rbp, 0xA0),
                (CONTEXT, Rsi, 0xA8), (CONTEXT, Rdi, 0xB0), (CONTEXT, R8, 0xB8),
                (CONTEXT, R9, 0xC0), (CONTEXT, R10, 0xC8), (CONTEXT, R11, 0xD0),
                (CONTEXT, R12, 0xD8), (CONTEXT, R13, 0xE0), (CONTEXT, R14, 0xE8),
                (CONTEXT, R15, 0xF0), (CONTEXT, Rip, 0xF8), (CONTEXT, FltSave, 0x100),
                (CONTEXT, VectorRegister, 0x300), (CONTEXT, VectorControl, 0x4A0),
                (CONTEXT, DebugControl, 0x4A8), (CONTEXT, LastExceptionFromRip, 0x4C8)
            ],
        }
    };
}

/// Rows mingw-w64 declares only in its user-mode `winnt.h`, not in `ddk/` (the mingw test
/// checks them in a translation unit that includes `<windows.h>`).
#[macro_export]
macro_rules! for_each_winnt_layout_fact {
    ($m:ident) => {
        $m! {
            sizes: [(RUNTIME_FUNCTION, 0xC), (DISPATCHER_CONTEXT, 0x50)],
            offsets: [
                (RUNTIME_FUNCTION, BeginAddress, 0x0), (RUNTIME_FUNCTION, EndAddress, 0x4),
                (RUNTIME_FUNCTION, UnwindData, 0x8),
                (DISPATCHER_CONTEXT, ControlPc, 0x0), (DISPATCHER_CONTEXT, ImageBase, 0x8),
                (DISPATCHER_CONTEXT, FunctionEntry, 0x10),
                (DISPATCHER_CONTEXT, EstablisherFrame, 0x18),
                (DISPATCHER_CONTEXT, TargetIp, 0x20), (DISPATCHER_CONTEXT, ContextRecord, 0x28),
                (DISPATCHER_CONTEXT, LanguageHandler, 0x30),
                (DISPATCHER_CONTEXT, HandlerData, 0x38), (DISPATCHER_CONTEXT, HistoryTable, 0x40),
                (DISPATCHER_CONTEXT, ScopeIndex, 0x48)
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
for_each_winnt_layout_fact!(assert_layout);

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
// Parameters.Read / Parameters.Write (the same struct): Length 0x8, Key 0x10, ByteOffset 0x18.
const _: () = assert!(
    offset_of!(IO_STACK_LOCATION, Parameters) + offset_of!(READ_WRITE_PARAMETERS, Length) == 0x8
);
const _: () = assert!(
    offset_of!(IO_STACK_LOCATION, Parameters) + offset_of!(READ_WRITE_PARAMETERS, Key) == 0x10
);
const _: () = assert!(
    offset_of!(IO_STACK_LOCATION, Parameters) + offset_of!(READ_WRITE_PARAMETERS, ByteOffset)
        == 0x18
);
const _: () = assert!(size_of::<MDL>().is_multiple_of(size_of::<PFN_NUMBER>()));
const _: () = assert!(core::mem::align_of::<DEVICE_OBJECT>() == 16);
const _: () = assert!(size_of::<DRIVER_EXTENSION>() == 0x28);

// CPU model and SEH records mingw-w64 does not declare (or names differently); the mingw test
// checks the C-named ones (`KPCR.Self`, `SCOPE_TABLE_AMD64`) as extra facts.
const _: () = assert!(offset_of!(KPCR, Self_) == 0x18);
const _: () = assert!(size_of::<KPCR>() + 8 == KPCR_PRCB);
const _: () = assert!(offset_of!(KPCR_BLOCK, Prcb) == KPCR_PRCB);
const _: () = assert!(KPCR_PRCB + offset_of!(KPRCB, CurrentThread) == GS_CURRENT_THREAD);
const _: () = assert!(KPCR_PRCB + offset_of!(KPRCB, LegacyNumber) == GS_LEGACY_PROCESSOR_NUMBER);
const _: () = assert!(KPCR_PRCB + offset_of!(KPRCB, Number) == GS_PROCESSOR_NUMBER);
const _: () = assert!(offset_of!(KPCR, Self_) == GS_PCR_SELF);
const _: () = assert!(offset_of!(KPCR, CurrentPrcb) == GS_CURRENT_PRCB);
const _: () = assert!(offset_of!(KUSER_SHARED_DATA, NtBuildNumber) == 0x260);
const _: () = assert!(offset_of!(KUSER_SHARED_DATA, InterruptTime) as u64 == KUSER_INTERRUPT_TIME);
const _: () = assert!(offset_of!(KUSER_SHARED_DATA, SystemTime) as u64 == KUSER_SYSTEM_TIME);
const _: () = assert!(offset_of!(KUSER_SHARED_DATA, TickCount) as u64 == KUSER_TICK_COUNT);
const _: () = assert!(size_of::<KUSER_SHARED_DATA>() == 0x338);
const _: () = assert!(size_of::<KUSER_SHARED_DATA>() as u64 <= KUSER_SHARED_DATA_PAGE);
const _: () = assert!(size_of::<UNWIND_INFO>() == 4);
const _: () = assert!(size_of::<SCOPE_RECORD>() == 0x10);
const _: () = assert!(offset_of!(SCOPE_TABLE, ScopeRecord) == 4);
const _: () = assert!(core::mem::align_of::<CONTEXT>() == 16);
