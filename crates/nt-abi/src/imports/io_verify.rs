//! IRP allocation and forwarding (IoCallDriver and friends) that I/O verification checks (issue 10, item 3).
#[allow(unused_imports)]
use super::*;

ntoskrnl_imports! {
    /// Send an IRP to a device's driver (what the `IoCallDriver` macro calls): moves to the
    /// next stack location and calls the dispatch routine for its MajorFunction.
    fn IofCallDriver(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP) -> NTSTATUS;
    /// Allocate an IRP with `StackSize` stack locations (not associated with a thread).
    fn IoAllocateIrp(StackSize: CCHAR, ChargeQuota: BOOLEAN) -> *mut IRP;
    /// Free an IRP from IoAllocateIrp (or one a driver built and still owns).
    fn IoFreeIrp(Irp: *mut IRP);
    /// Initialize caller storage of `PacketSize` bytes as an IRP with `StackSize` locations.
    fn IoInitializeIrp(Irp: *mut IRP, PacketSize: USHORT, StackSize: CCHAR);
    /// Reinitialize an IRP from IoAllocateIrp for reuse, with `Iostatus` as its status.
    fn IoReuseIrp(Irp: *mut IRP, Iostatus: NTSTATUS);
    /// Build a threaded IRP_MJ_(INTERNAL_)DEVICE_CONTROL request, completed into
    /// `IoStatusBlock` with `Event` signalled.
    fn IoBuildDeviceIoControlRequest(IoControlCode: ULONG, DeviceObject: *mut DEVICE_OBJECT, InputBuffer: PVOID, InputBufferLength: ULONG, OutputBuffer: PVOID, OutputBufferLength: ULONG, InternalDeviceIoControl: BOOLEAN, Event: *mut KEVENT, IoStatusBlock: *mut IO_STATUS_BLOCK) -> *mut IRP;
    /// Build a threaded read/write/flush/shutdown request that signals `Event` at completion.
    fn IoBuildSynchronousFsdRequest(MajorFunction: ULONG, DeviceObject: *mut DEVICE_OBJECT, Buffer: PVOID, Length: ULONG, StartingOffset: *mut LARGE_INTEGER, Event: *mut KEVENT, IoStatusBlock: *mut IO_STATUS_BLOCK) -> *mut IRP;
    /// Build a read/write/flush/shutdown request the caller frees in its completion routine.
    fn IoBuildAsynchronousFsdRequest(MajorFunction: ULONG, DeviceObject: *mut DEVICE_OBJECT, Buffer: PVOID, Length: ULONG, StartingOffset: *mut LARGE_INTEGER, IoStatusBlock: *mut IO_STATUS_BLOCK) -> *mut IRP;
    /// Attach `SourceDevice` on top of `TargetDevice`'s stack; returns the device it attached to.
    fn IoAttachDeviceToDeviceStack(SourceDevice: *mut DEVICE_OBJECT, TargetDevice: *mut DEVICE_OBJECT) -> *mut DEVICE_OBJECT;
    /// Detach whatever device is attached to `TargetDevice`.
    fn IoDetachDevice(TargetDevice: *mut DEVICE_OBJECT);
    /// The top of `DeviceObject`'s stack, referenced (the caller dereferences it).
    fn IoGetAttachedDeviceReference(DeviceObject: *mut DEVICE_OBJECT) -> *mut DEVICE_OBJECT;
    /// The top of `DeviceObject`'s stack, not referenced.
    fn IoGetAttachedDevice(DeviceObject: *mut DEVICE_OBJECT) -> *mut DEVICE_OBJECT;
}
