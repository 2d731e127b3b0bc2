//! IRP forwarding: the stack-location control bits `IoSetCompletionRoutine` and
//! `IoMarkIrpPending` set, IRP flags of driver-built requests, and the status a completion
//! routine returns to stop completion (stream ioverify).
//!
//! Values from mingw-w64's `ddk/wdm.h` (checked against Microsoft's *IO_STACK_LOCATION* and
//! *IoSetCompletionRoutine* pages).

/// `IO_STACK_LOCATION.Control`: the completion routine of this location runs when the IRP is
/// completed with a cancelled IRP (`Irp->Cancel`).
pub const SL_INVOKE_ON_CANCEL: u8 = 0x20;
/// `IO_STACK_LOCATION.Control`: the completion routine runs on an `NT_SUCCESS` status.
pub const SL_INVOKE_ON_SUCCESS: u8 = 0x40;
/// `IO_STACK_LOCATION.Control`: the completion routine runs on an error status.
pub const SL_INVOKE_ON_ERROR: u8 = 0x80;
/// `IO_STACK_LOCATION.Control`: an error status was returned at this location (kept when the
/// location is cleared during completion).
pub const SL_ERROR_RETURNED: u8 = 0x02;

/// `IRP.Flags`: the IRP is a synchronous API request (IoBuildSynchronousFsdRequest).
pub const IRP_SYNCHRONOUS_API: u32 = 0x0000_0004;
/// `IRP.Flags`: the IRP is associated with a master IRP.
pub const IRP_ASSOCIATED_IRP: u32 = 0x0000_0008;

/// Size of an IRP with `stack_size` stack locations (`IoSizeOfIrp`, a WDK macro).
pub const fn io_size_of_irp(stack_size: usize) -> usize {
    core::mem::size_of::<crate::io::IRP>()
        + stack_size * core::mem::size_of::<crate::io::IO_STACK_LOCATION>()
}
