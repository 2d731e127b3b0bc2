//! I/O manager objects: driver and device objects, IRPs, stack locations, file objects.
//!
//! Offsets are x64 and asserted in [`crate::layout`]. Members a driver never touches (DPC, device
//! queue, wait block, APC) are opaque, pointer-aligned byte blocks of the exact Windows size.
#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::c_void;

use crate::ke::KEVENT;
use crate::types::*;

pub const IO_TYPE_DEVICE: CSHORT = 3;
pub const IO_TYPE_DRIVER: CSHORT = 4;
pub const IO_TYPE_FILE: CSHORT = 5;
pub const IO_TYPE_IRP: CSHORT = 6;

pub const IRP_MJ_CREATE: u8 = 0x00;
pub const IRP_MJ_CLOSE: u8 = 0x02;
pub const IRP_MJ_READ: u8 = 0x03;
pub const IRP_MJ_WRITE: u8 = 0x04;
pub const IRP_MJ_DEVICE_CONTROL: u8 = 0x0E;
pub const IRP_MJ_INTERNAL_DEVICE_CONTROL: u8 = 0x0F;
pub const IRP_MJ_SHUTDOWN: u8 = 0x10;
pub const IRP_MJ_CLEANUP: u8 = 0x12;
pub const IRP_MJ_MAXIMUM_FUNCTION: u8 = 0x1B;
/// Number of `MajorFunction` slots in a `DRIVER_OBJECT`.
pub const IRP_MJ_COUNT: usize = IRP_MJ_MAXIMUM_FUNCTION as usize + 1;

/// `IoCompleteRequest` priority boost for requests that waited on nothing.
pub const IO_NO_INCREMENT: CCHAR = 0;

// DEVICE_OBJECT.Flags
pub const DO_BUFFERED_IO: ULONG = 0x0000_0004;
pub const DO_EXCLUSIVE: ULONG = 0x0000_0008;
pub const DO_DIRECT_IO: ULONG = 0x0000_0010;
pub const DO_DEVICE_INITIALIZING: ULONG = 0x0000_0080;

// DEVICE_OBJECT.Characteristics
pub const FILE_DEVICE_SECURE_OPEN: ULONG = 0x0000_0100;

// IRP.Flags
pub const IRP_BUFFERED_IO: ULONG = 0x0000_0010;
pub const IRP_DEALLOCATE_BUFFER: ULONG = 0x0000_0020;
pub const IRP_INPUT_OPERATION: ULONG = 0x0000_0040;

// IO_STACK_LOCATION.Control
pub const SL_PENDING_RETURNED: u8 = 0x01;

crate::routine_type!(pub type DRIVER_DISPATCH = unsafe fn(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP) -> NTSTATUS);
crate::routine_type!(pub type DRIVER_UNLOAD = unsafe fn(DriverObject: *mut DRIVER_OBJECT));
crate::routine_type!(pub type DRIVER_INITIALIZE = unsafe fn(
    DriverObject: *mut DRIVER_OBJECT,
    RegistryPath: *mut UNICODE_STRING,
) -> NTSTATUS);
crate::routine_type!(pub type DRIVER_ADD_DEVICE = unsafe fn(
    DriverObject: *mut DRIVER_OBJECT,
    PhysicalDeviceObject: *mut DEVICE_OBJECT,
) -> NTSTATUS);
crate::routine_type!(pub type DRIVER_CANCEL = unsafe fn(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP));
crate::routine_type!(pub type IO_COMPLETION_ROUTINE = unsafe fn(
    DeviceObject: *mut DEVICE_OBJECT,
    Irp: *mut IRP,
    Context: PVOID,
) -> NTSTATUS);

#[repr(C)]
pub struct DRIVER_EXTENSION {
    pub DriverObject: *mut DRIVER_OBJECT,
    pub AddDevice: Option<DRIVER_ADD_DEVICE>,
    pub Count: ULONG,
    pub ServiceKeyName: UNICODE_STRING,
}

#[repr(C)]
pub struct DRIVER_OBJECT {
    pub Type: CSHORT,
    pub Size: CSHORT,
    pub DeviceObject: *mut DEVICE_OBJECT,
    pub Flags: ULONG,
    pub DriverStart: PVOID,
    pub DriverSize: ULONG,
    pub DriverSection: PVOID,
    pub DriverExtension: *mut DRIVER_EXTENSION,
    pub DriverName: UNICODE_STRING,
    pub HardwareDatabase: *mut UNICODE_STRING,
    pub FastIoDispatch: PVOID,
    pub DriverInit: Option<DRIVER_INITIALIZE>,
    pub DriverStartIo: PVOID,
    pub DriverUnload: Option<DRIVER_UNLOAD>,
    pub MajorFunction: [Option<DRIVER_DISPATCH>; IRP_MJ_COUNT],
}

/// Pointer-aligned opaque storage for kernel structures a driver never looks inside.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct Opaque<const N: usize>(pub [u8; N]);

/// `KDEVICE_QUEUE` (0x28 bytes on x64).
pub type KDEVICE_QUEUE = Opaque<0x28>;
/// `KDEVICE_QUEUE_ENTRY` (0x18 bytes on x64).
pub type KDEVICE_QUEUE_ENTRY = Opaque<0x18>;
/// `KDPC` (0x40 bytes on x64): [`crate::dispatcher::KDPC`].
pub use crate::dispatcher::KDPC;
/// `WAIT_CONTEXT_BLOCK` (0x48 bytes on x64).
pub type WAIT_CONTEXT_BLOCK = Opaque<0x48>;
/// `KAPC` (0x58 bytes on x64).
pub type KAPC = Opaque<0x58>;

#[repr(C)]
pub union DEVICE_OBJECT_QUEUE {
    pub ListEntry: LIST_ENTRY,
    pub Wcb: WAIT_CONTEXT_BLOCK,
}

/// `DEVICE_OBJECT`: 0x150 bytes. Windows declares it `DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT)`,
/// which pads the 0x148 bytes of members to 0x150; mingw-w64 omits the alignment and says 0x148.
#[repr(C, align(16))]
pub struct DEVICE_OBJECT {
    pub Type: CSHORT,
    pub Size: USHORT,
    pub ReferenceCount: LONG,
    pub DriverObject: *mut DRIVER_OBJECT,
    pub NextDevice: *mut DEVICE_OBJECT,
    pub AttachedDevice: *mut DEVICE_OBJECT,
    pub CurrentIrp: *mut IRP,
    pub Timer: PVOID,
    pub Flags: ULONG,
    pub Characteristics: ULONG,
    pub Vpb: PVOID,
    pub DeviceExtension: PVOID,
    pub DeviceType: ULONG,
    pub StackSize: CCHAR,
    pub Queue: DEVICE_OBJECT_QUEUE,
    pub AlignmentRequirement: ULONG,
    pub DeviceQueue: KDEVICE_QUEUE,
    pub Dpc: KDPC,
    pub ActiveThreadCount: ULONG,
    pub SecurityDescriptor: PVOID,
    pub DeviceLock: KEVENT,
    pub SectorSize: USHORT,
    pub Spare1: USHORT,
    pub DeviceObjectExtension: PVOID,
    pub Reserved: PVOID,
}

#[repr(C)]
pub struct FILE_OBJECT {
    pub Type: CSHORT,
    pub Size: CSHORT,
    pub DeviceObject: *mut DEVICE_OBJECT,
    pub Vpb: PVOID,
    pub FsContext: PVOID,
    pub FsContext2: PVOID,
    pub SectionObjectPointer: PVOID,
    pub PrivateCacheMap: PVOID,
    pub FinalStatus: NTSTATUS,
    pub RelatedFileObject: *mut FILE_OBJECT,
    pub LockOperation: BOOLEAN,
    pub DeletePending: BOOLEAN,
    pub ReadAccess: BOOLEAN,
    pub WriteAccess: BOOLEAN,
    pub DeleteAccess: BOOLEAN,
    pub SharedRead: BOOLEAN,
    pub SharedWrite: BOOLEAN,
    pub SharedDelete: BOOLEAN,
    pub Flags: ULONG,
    pub FileName: UNICODE_STRING,
    pub CurrentByteOffset: LARGE_INTEGER,
    pub Waiters: ULONG,
    pub Busy: ULONG,
    pub LastLock: PVOID,
    pub Lock: KEVENT,
    pub Event: KEVENT,
    pub CompletionContext: PVOID,
    pub IrpListLock: crate::ke::KSPIN_LOCK,
    pub IrpList: LIST_ENTRY,
    pub FileObjectExtension: PVOID,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_ASSOCIATED {
    pub MasterIrp: *mut IRP,
    pub IrpCount: LONG,
    pub SystemBuffer: PVOID,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct IRP_ASYNC_PARAMETERS {
    pub UserApcRoutine: PVOID,
    pub UserApcContext: PVOID,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_OVERLAY {
    pub AsynchronousParameters: IRP_ASYNC_PARAMETERS,
    pub AllocationSize: LARGE_INTEGER,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_TAIL_OVERLAY_QUEUE {
    pub DeviceQueueEntry: KDEVICE_QUEUE_ENTRY,
    pub DriverContext: [PVOID; 4],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct IRP_TAIL_OVERLAY {
    pub u: IRP_TAIL_OVERLAY_QUEUE,
    pub Thread: PVOID,
    pub AuxiliaryBuffer: *mut i8,
    pub ListEntry: LIST_ENTRY,
    /// Union of `CurrentStackLocation` and `PacketType`.
    pub CurrentStackLocation: *mut IO_STACK_LOCATION,
    pub OriginalFileObject: *mut FILE_OBJECT,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_TAIL {
    pub Overlay: IRP_TAIL_OVERLAY,
    pub Apc: KAPC,
    pub CompletionKey: PVOID,
}

#[repr(C)]
pub struct IRP {
    pub Type: CSHORT,
    pub Size: USHORT,
    pub AllocationProcessorNumber: USHORT,
    pub Reserved: USHORT,
    pub MdlAddress: PVOID,
    pub Flags: ULONG,
    pub AssociatedIrp: IRP_ASSOCIATED,
    pub ThreadListEntry: LIST_ENTRY,
    pub IoStatus: IO_STATUS_BLOCK,
    pub RequestorMode: KPROCESSOR_MODE,
    pub PendingReturned: BOOLEAN,
    pub StackCount: CCHAR,
    pub CurrentLocation: CCHAR,
    pub Cancel: BOOLEAN,
    pub CancelIrql: u8,
    pub ApcEnvironment: CCHAR,
    pub AllocationFlags: UCHAR,
    pub UserIosb: *mut IO_STATUS_BLOCK,
    pub UserEvent: *mut KEVENT,
    pub Overlay: IRP_OVERLAY,
    pub CancelRoutine: Option<DRIVER_CANCEL>,
    pub UserBuffer: PVOID,
    pub Tail: IRP_TAIL,
}

/// `Parameters.DeviceIoControl`: each ULONG after the first is `POINTER_ALIGNMENT`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DEVICE_IO_CONTROL_PARAMETERS {
    pub OutputBufferLength: ULONG,
    pub _pad0: ULONG,
    pub InputBufferLength: ULONG,
    pub _pad1: ULONG,
    pub IoControlCode: ULONG,
    pub _pad2: ULONG,
    pub Type3InputBuffer: PVOID,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct CREATE_PARAMETERS {
    pub SecurityContext: PVOID,
    pub Options: ULONG,
    pub _pad0: ULONG,
    pub FileAttributes: USHORT,
    pub ShareAccess: USHORT,
    pub _pad1: ULONG,
    pub EaLength: ULONG,
    pub _pad2: ULONG,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct OTHERS_PARAMETERS {
    pub Argument1: PVOID,
    pub Argument2: PVOID,
    pub Argument3: PVOID,
    pub Argument4: PVOID,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STACK_PARAMETERS {
    pub Create: CREATE_PARAMETERS,
    pub DeviceIoControl: DEVICE_IO_CONTROL_PARAMETERS,
    /// `Parameters.Read` (IRP_MJ_READ).
    pub Read: crate::mdl::READ_WRITE_PARAMETERS,
    /// `Parameters.Write` (IRP_MJ_WRITE).
    pub Write: crate::mdl::READ_WRITE_PARAMETERS,
    pub Others: OTHERS_PARAMETERS,
}

#[repr(C)]
pub struct IO_STACK_LOCATION {
    pub MajorFunction: UCHAR,
    pub MinorFunction: UCHAR,
    pub Flags: UCHAR,
    pub Control: UCHAR,
    pub Parameters: IO_STACK_PARAMETERS,
    pub DeviceObject: *mut DEVICE_OBJECT,
    pub FileObject: *mut FILE_OBJECT,
    pub CompletionRoutine: Option<IO_COMPLETION_ROUTINE>,
    pub Context: PVOID,
}

/// `IoGetCurrentIrpStackLocation`, which the WDK defines inline.
///
/// # Safety
/// `irp` must point to a live IRP owned by the caller's dispatch routine.
pub unsafe fn io_get_current_irp_stack_location(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: the caller guarantees `irp` is live, so projecting to its `Tail` field stays in
    // bounds of the allocation.
    let tail = unsafe { &raw const (*irp).Tail };
    // Every member of a `repr(C)` union starts at offset 0, so `Tail.Overlay` is at `tail`.
    let overlay = tail.cast::<IRP_TAIL_OVERLAY>();
    // SAFETY: `Overlay` is the active member of the tail union while a driver owns the IRP, and
    // `CurrentStackLocation` is plain pointer data.
    unsafe { (*overlay).CurrentStackLocation }
}

/// Unused-argument marker keeping `c_void` imported for downstream doc links.
pub type PDEVICE_OBJECT = *mut DEVICE_OBJECT;
pub type PDRIVER_OBJECT = *mut DRIVER_OBJECT;
pub type PIRP = *mut IRP;
pub type PCVOID = *const c_void;
