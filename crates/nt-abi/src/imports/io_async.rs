//! Asynchronous I/O, cancellation, cancel-safe queues, remove locks (issue 9, item 1).
#[allow(unused_imports)]
use super::*;
use crate::ioasync::*;

ntoskrnl_imports! {
    /// Cancel an IRP: set `Irp->Cancel`, call its cancel routine (if any) with the cancel spin
    /// lock held; TRUE if a cancel routine was called.
    fn IoCancelIrp(Irp: *mut IRP) -> BOOLEAN;
    /// Take the system cancel spin lock (raises to DISPATCH_LEVEL; `*Irql` = the old IRQL).
    fn IoAcquireCancelSpinLock(Irql: *mut KIRQL);
    /// Release the cancel spin lock and return to `Irql`.
    fn IoReleaseCancelSpinLock(Irql: KIRQL);
    /// Initialize a cancel-safe IRP queue (`Type` = IO_TYPE_CSQ).
    fn IoCsqInitialize(Csq: *mut IO_CSQ, CsqInsertIrp: Option<PIO_CSQ_INSERT_IRP>, CsqRemoveIrp: Option<PIO_CSQ_REMOVE_IRP>, CsqPeekNextIrp: Option<PIO_CSQ_PEEK_NEXT_IRP>, CsqAcquireLock: Option<PIO_CSQ_ACQUIRE_LOCK>, CsqReleaseLock: Option<PIO_CSQ_RELEASE_LOCK>, CsqCompleteCanceledIrp: Option<PIO_CSQ_COMPLETE_CANCELED_IRP>) -> NTSTATUS;
    /// Initialize a cancel-safe IRP queue with an insert routine that may refuse (`IO_TYPE_CSQ_EX`).
    fn IoCsqInitializeEx(Csq: *mut IO_CSQ, CsqInsertIrp: Option<PIO_CSQ_INSERT_IRP_EX>, CsqRemoveIrp: Option<PIO_CSQ_REMOVE_IRP>, CsqPeekNextIrp: Option<PIO_CSQ_PEEK_NEXT_IRP>, CsqAcquireLock: Option<PIO_CSQ_ACQUIRE_LOCK>, CsqReleaseLock: Option<PIO_CSQ_RELEASE_LOCK>, CsqCompleteCanceledIrp: Option<PIO_CSQ_COMPLETE_CANCELED_IRP>) -> NTSTATUS;
    /// Queue an IRP (marked pending, made cancelable) in a cancel-safe queue.
    fn IoCsqInsertIrp(Csq: *mut IO_CSQ, Irp: *mut IRP, Context: *mut IO_CSQ_IRP_CONTEXT);
    /// `IoCsqInsertIrp` with an insert context; returns what `CsqInsertIrpEx` returned.
    fn IoCsqInsertIrpEx(Csq: *mut IO_CSQ, Irp: *mut IRP, Context: *mut IO_CSQ_IRP_CONTEXT, InsertContext: PVOID) -> NTSTATUS;
    /// Remove the IRP `Context` names (NULL if it was cancelled meanwhile).
    fn IoCsqRemoveIrp(Csq: *mut IO_CSQ, Context: *mut IO_CSQ_IRP_CONTEXT) -> *mut IRP;
    /// Remove the next IRP matching `PeekContext` that is not being cancelled.
    fn IoCsqRemoveNextIrp(Csq: *mut IO_CSQ, PeekContext: PVOID) -> *mut IRP;
    /// Initialize a remove lock (`RemlockSize` = the driver's `sizeof(IO_REMOVE_LOCK)`).
    fn IoInitializeRemoveLockEx(Lock: *mut IO_REMOVE_LOCK_COMMON_BLOCK, AllocateTag: ULONG, MaxLockedMinutes: ULONG, HighWatermark: ULONG, RemlockSize: ULONG);
    /// Acquire a remove lock: STATUS_SUCCESS, or STATUS_DELETE_PENDING once removal started.
    fn IoAcquireRemoveLockEx(RemoveLock: *mut IO_REMOVE_LOCK_COMMON_BLOCK, Tag: PVOID, File: *const u8, Line: ULONG, RemlockSize: ULONG) -> NTSTATUS;
    /// Release one acquisition of a remove lock.
    fn IoReleaseRemoveLockEx(RemoveLock: *mut IO_REMOVE_LOCK_COMMON_BLOCK, Tag: PVOID, RemlockSize: ULONG);
    /// Release the caller's acquisition, refuse new ones, wait until every other is released.
    fn IoReleaseRemoveLockAndWaitEx(RemoveLock: *mut IO_REMOVE_LOCK_COMMON_BLOCK, Tag: PVOID, RemlockSize: ULONG);
    /// The current thread's process (`PsGetCurrentProcess` is a macro for it in wdm.h).
    fn IoGetCurrentProcess() -> PEPROCESS;
    /// The current thread's process (exported by ntoskrnl too).
    fn PsGetCurrentProcess() -> PEPROCESS;
    /// Whether the IRP's originator (NULL: the current process) is a 32-bit (WOW64) process.
    fn IoIs32bitProcess(Irp: *mut IRP) -> BOOLEAN;
    /// The process that requested the IRP (NULL if it has no thread).
    fn IoGetRequestorProcess(Irp: *mut IRP) -> PEPROCESS;
}
