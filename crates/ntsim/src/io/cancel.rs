//! IRP cancellation: the system cancel spin lock, `IoCancelIrp`, and the cancel routine
//! protocol drivers build on (`IoSetCancelRoutine` is an inline `InterlockedExchangePointer`
//! on `Irp->CancelRoutine` in wdm.h, so it needs no export: the IRP layout in nt-abi is what
//! makes it work).
//!
//! Sources: Microsoft, *IoCancelIrp*
//! (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocancelirp>),
//! *IoAcquireCancelSpinLock* / *IoReleaseCancelSpinLock* (the holder runs at DISPATCH_LEVEL;
//! release restores the caller's IRQL; a cancel routine is called with the lock held and
//! releases it with `Irp->CancelIrql`), *IoSetCancelRoutine* (returns the previous routine,
//! NULL when none was set or cancellation is in progress), *Points to Consider When Canceling
//! IRPs*; ReactOS `ntoskrnl/io/iomgr/irp.c` (`IoCancelIrp`).
#![allow(non_snake_case)]

use std::sync::atomic::{AtomicUsize, Ordering};

use nt_abi::*;

use super::driver::driver_id_of;
use crate::ke::thread::{self, current};
use crate::ke::{KeAcquireSpinLockRaiseToDpc, KeReleaseSpinLock};
use crate::machine::System;

/// The system cancel spin lock (IopCancelSpinLock): one per machine.
#[derive(Default)]
pub(crate) struct CancelLock {
    word: AtomicUsize,
}

impl CancelLock {
    fn ptr(&self) -> *mut KSPIN_LOCK {
        self.word.as_ptr()
    }
}

/// `IoAcquireCancelSpinLock`: raise to DISPATCH_LEVEL, take the cancel spin lock, store the
/// previous IRQL in `*Irql`. Above DISPATCH_LEVEL it is 0xA IRQL_NOT_LESS_OR_EQUAL, as for
/// any spin lock.
///
/// # Safety
/// `Irql` must be writable.
pub unsafe extern "win64" fn IoAcquireCancelSpinLock(Irql: *mut KIRQL) {
    let m = current();
    // SAFETY: the machine's own lock word, alive as long as the machine.
    let old = unsafe { KeAcquireSpinLockRaiseToDpc(m.io.cancel.ptr()) };
    // SAFETY: writable out-pointer per the contract.
    unsafe { Irql.write(old) };
}

/// `IoReleaseCancelSpinLock`: release the cancel spin lock and return to `Irql`. As
/// `KeReleaseSpinLock` (which it is on Windows), releasing when not at DISPATCH_LEVEL is
/// 0xC4/0x32 with the verifier's IRQL checking.
///
/// # Safety
/// The caller must hold the cancel spin lock.
pub unsafe extern "win64" fn IoReleaseCancelSpinLock(Irql: KIRQL) {
    let m = current();
    // SAFETY: the machine's own lock word.
    unsafe { KeReleaseSpinLock(m.io.cancel.ptr(), Irql) };
}

/// `IRP.CancelRoutine` as an atomic word (what wdm.h's `IoSetCancelRoutine` exchanges).
///
/// # Safety
/// `irp` must be a live IRP.
pub(crate) unsafe fn cancel_routine_word(irp: *mut IRP) -> &'static AtomicUsize {
    // SAFETY: a field address of a live IRP; CancelRoutine is a naturally aligned pointer that
    // drivers and ntsim only change with interlocked operations.
    let p = unsafe { &raw mut (*irp).CancelRoutine }.cast::<usize>();
    // SAFETY: as above.
    unsafe { AtomicUsize::from_ptr(p) }
}

/// `IoCancelIrp`: take the cancel spin lock, set `Irp->Cancel`, exchange the cancel routine
/// with NULL; with no routine release the lock and return FALSE; otherwise store the old IRQL
/// in `Irp->CancelIrql` and call the routine (lock held, at DISPATCH_LEVEL) with the device of
/// the IRP's current stack location, and return TRUE. The cancel routine releases the lock.
///
/// # Safety
/// `Irp` must be a live IRP.
pub unsafe extern "win64" fn IoCancelIrp(Irp: *mut IRP) -> BOOLEAN {
    let m = current();
    cancel_irp(&m, Irp) as BOOLEAN
}

/// [`IoCancelIrp`] for ntsim's own callers (thread rundown, `Pending::cancel`).
pub(crate) fn cancel_irp(m: &System, irp: *mut IRP) -> bool {
    let mut old: KIRQL = 0;
    // SAFETY: a writable local.
    unsafe { IoAcquireCancelSpinLock(&mut old) };
    // SAFETY: a field address of the caller's live IRP (no access).
    let cancel = unsafe { &raw mut (*irp).Cancel };
    // SAFETY: Cancel is a plain byte the I/O manager sets; drivers read it volatile.
    unsafe { cancel.write_volatile(1) };
    // SAFETY: live IRP.
    let routine = unsafe { cancel_routine_word(irp) }.swap(0, Ordering::SeqCst);
    if routine == 0 {
        // SAFETY: we hold the cancel spin lock.
        unsafe { IoReleaseCancelSpinLock(old) };
        return false;
    }
    // SAFETY: live IRP.
    unsafe { (*irp).CancelIrql = old };
    // SAFETY: a live IRP's current stack location lies inside it.
    let sl = unsafe { io_get_current_irp_stack_location(irp) };
    let dev = if sl.is_null() {
        core::ptr::null_mut()
    } else {
        // SAFETY: as above.
        unsafe { (*sl).DeviceObject }
    };
    let owner = if dev.is_null() {
        thread::driver()
    } else {
        // SAFETY: a live device object.
        driver_id_of(m, unsafe { (*dev).DriverObject } as usize)
    };
    // SAFETY: a non-zero DRIVER_CANCEL pointer the driver stored with IoSetCancelRoutine.
    let f: DRIVER_CANCEL = unsafe { core::mem::transmute::<usize, DRIVER_CANCEL>(routine) };
    // The routine runs in the caller's context: a request's thread (CancelIoEx, a dispatch
    // routine) or a system thread.
    let ctx = if super::process::in_requestor_context() {
        super::process::CANCEL_IN_REQUESTOR
    } else {
        "cancel routine"
    };
    thread::with_context(owner, ctx, || {
        thread::set_caller(0);
        // SAFETY: calling the driver's cancel routine as IoCancelIrp does, lock held.
        unsafe { f(dev, irp) }
    });
    true
}
