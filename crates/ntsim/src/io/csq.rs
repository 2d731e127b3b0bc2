//! Cancel-safe IRP queues: `IoCsqInitialize(Ex)`, `IoCsqInsertIrp(Ex)`, `IoCsqRemoveIrp`,
//! `IoCsqRemoveNextIrp`, and the cancel routine they install, all through the driver's own
//! callbacks (the queue's storage and lock are the driver's).
//!
//! Sources: Microsoft, *Cancel-Safe IRP Queues*
//! (<https://learn.microsoft.com/windows-hardware/drivers/kernel/cancel-safe-irp-queues>),
//! *IoCsqInsertIrp* (lock, insert, mark pending, unlock; an IRP already cancelled is not left
//! queued), *IoCsqInsertIrpEx* (always STATUS_SUCCESS for an IoCsqInitialize queue; otherwise
//! what CsqInsertIrpEx returned, and nothing is queued when that is not a success),
//! *IoCsqRemoveIrp*, *IoCsqRemoveNextIrp* (NULL when no IRP matches); the routines own
//! `Irp->Tail.Overlay.DriverContext[3]`. ReactOS `sdk/lib/drivers/csq/csq.c` for the order of
//! the steps (set the cancel routine after queuing, then re-check `Irp->Cancel`).
#![allow(non_snake_case)]

use std::sync::atomic::Ordering;

use nt_abi::*;

use super::cancel::{IoReleaseCancelSpinLock, cancel_routine_word};
use crate::ke::thread::current;

fn slot(irp: *mut IRP) -> *mut PVOID {
    // SAFETY: a field address inside a live IRP (no read).
    let tail = unsafe { &raw mut (*irp).Tail };
    // Every member of a repr(C) union starts at offset 0: Tail.Overlay, and its first member
    // DriverContext.
    tail.cast::<PVOID>().wrapping_add(CSQ_DRIVER_CONTEXT_SLOT)
}

fn set_slot(irp: *mut IRP, v: PVOID) {
    // SAFETY: DriverContext[3] of a live IRP.
    unsafe { slot(irp).write(v) };
}

fn get_slot(irp: *mut IRP) -> PVOID {
    // SAFETY: DriverContext[3] of a live IRP.
    unsafe { slot(irp).read() }
}

/// `IoSetCancelRoutine` (inline in wdm.h): exchange `Irp->CancelRoutine`.
fn set_cancel_routine(irp: *mut IRP, r: Option<DRIVER_CANCEL>) -> usize {
    // SAFETY: a live IRP.
    unsafe { cancel_routine_word(irp) }.swap(r.map_or(0, |f| f as usize), Ordering::SeqCst)
}

struct Q(*mut IO_CSQ);

impl Q {
    fn csq(&self) -> &IO_CSQ {
        // SAFETY: an IO_CSQ the driver initialized (per each export's contract).
        unsafe { &*self.0 }
    }
    fn acquire(&self) -> KIRQL {
        let mut irql: KIRQL = 0;
        if let Some(f) = self.csq().CsqAcquireLock {
            // SAFETY: the driver's CsqAcquireLock with its queue and a writable local.
            unsafe { f(self.0, &mut irql) };
        }
        irql
    }
    fn release(&self, irql: KIRQL) {
        if let Some(f) = self.csq().CsqReleaseLock {
            // SAFETY: the driver's CsqReleaseLock with the IRQL its acquire returned.
            unsafe { f(self.0, irql) };
        }
    }
    fn remove(&self, irp: *mut IRP) {
        if let Some(f) = self.csq().CsqRemoveIrp {
            // SAFETY: the driver's CsqRemoveIrp, queue lock held, for an IRP it queued.
            unsafe { f(self.0, irp) };
        }
    }
    fn peek(&self, irp: *mut IRP, ctx: PVOID) -> *mut IRP {
        match self.csq().CsqPeekNextIrp {
            // SAFETY: the driver's CsqPeekNextIrp, queue lock held.
            Some(f) => unsafe { f(self.0, irp, ctx) },
            None => core::ptr::null_mut(),
        }
    }
    fn complete_canceled(&self, irp: *mut IRP) {
        if let Some(f) = self.csq().CsqCompleteCanceledIrp {
            // SAFETY: the driver's CsqCompleteCanceledIrp for an IRP removed from its queue.
            unsafe { f(self.0, irp) };
        }
    }
}

/// The cancel routine the IoCsq routines install (IopCsqCancelRoutine's role): release the
/// cancel spin lock, find the queue through DriverContext[3] (a queue, or an
/// IO_CSQ_IRP_CONTEXT whose Irp it clears), remove the IRP under the queue's lock, and hand it
/// to CsqCompleteCanceledIrp.
///
/// # Safety
/// Called by IoCancelIrp with the cancel spin lock held, for an IRP an IoCsq routine queued.
pub unsafe extern "win64" fn ntsim_csq_cancel_routine(
    _DeviceObject: *mut DEVICE_OBJECT,
    Irp: *mut IRP,
) {
    let _m = current();
    // SAFETY: a live IRP in cancellation.
    let irql = unsafe { (*Irp).CancelIrql };
    // SAFETY: IoCancelIrp called us with the cancel spin lock held.
    unsafe { IoReleaseCancelSpinLock(irql) };
    let p = get_slot(Irp);
    if p.is_null() {
        return;
    }
    // Both IO_CSQ and IO_CSQ_IRP_CONTEXT start with their ULONG Type.
    // SAFETY: DriverContext[3] holds the queue or the context the insert stored.
    let ty = unsafe { p.cast::<ULONG>().read() };
    let csq = if ty == IO_TYPE_CSQ_IRP_CONTEXT {
        let c = p.cast::<IO_CSQ_IRP_CONTEXT>();
        // SAFETY: the driver's IO_CSQ_IRP_CONTEXT, alive while its IRP is queued.
        unsafe { (*c).Irp = core::ptr::null_mut() };
        // SAFETY: as above.
        unsafe { (*c).Csq }
    } else {
        p.cast::<IO_CSQ>()
    };
    let q = Q(csq);
    let l = q.acquire();
    q.remove(Irp);
    set_slot(Irp, core::ptr::null_mut());
    q.release(l);
    q.complete_canceled(Irp);
}

/// `IoCsqInitialize`: store the callbacks, `Type` = IO_TYPE_CSQ. Always STATUS_SUCCESS.
///
/// # Safety
/// `Csq` must be writable nonpaged IO_CSQ storage.
pub unsafe extern "win64" fn IoCsqInitialize(
    Csq: *mut IO_CSQ,
    CsqInsertIrp: Option<PIO_CSQ_INSERT_IRP>,
    CsqRemoveIrp: Option<PIO_CSQ_REMOVE_IRP>,
    CsqPeekNextIrp: Option<PIO_CSQ_PEEK_NEXT_IRP>,
    CsqAcquireLock: Option<PIO_CSQ_ACQUIRE_LOCK>,
    CsqReleaseLock: Option<PIO_CSQ_RELEASE_LOCK>,
    CsqCompleteCanceledIrp: Option<PIO_CSQ_COMPLETE_CANCELED_IRP>,
) -> NTSTATUS {
    let _m = current();
    // SAFETY: writable IO_CSQ storage per the contract.
    unsafe {
        Csq.write(IO_CSQ {
            Type: IO_TYPE_CSQ,
            CsqInsertIrp: CsqInsertIrp.map_or(core::ptr::null_mut(), |f| f as PVOID),
            CsqRemoveIrp,
            CsqPeekNextIrp,
            CsqAcquireLock,
            CsqReleaseLock,
            CsqCompleteCanceledIrp,
            ReservePointer: core::ptr::null_mut(),
        })
    };
    STATUS_SUCCESS
}

/// `IoCsqInitializeEx`: as [`IoCsqInitialize`] with an insert routine that returns a status,
/// `Type` = IO_TYPE_CSQ_EX.
///
/// # Safety
/// `Csq` must be writable nonpaged IO_CSQ storage.
pub unsafe extern "win64" fn IoCsqInitializeEx(
    Csq: *mut IO_CSQ,
    CsqInsertIrp: Option<PIO_CSQ_INSERT_IRP_EX>,
    CsqRemoveIrp: Option<PIO_CSQ_REMOVE_IRP>,
    CsqPeekNextIrp: Option<PIO_CSQ_PEEK_NEXT_IRP>,
    CsqAcquireLock: Option<PIO_CSQ_ACQUIRE_LOCK>,
    CsqReleaseLock: Option<PIO_CSQ_RELEASE_LOCK>,
    CsqCompleteCanceledIrp: Option<PIO_CSQ_COMPLETE_CANCELED_IRP>,
) -> NTSTATUS {
    let _m = current();
    // SAFETY: writable IO_CSQ storage per the contract.
    unsafe {
        Csq.write(IO_CSQ {
            Type: IO_TYPE_CSQ_EX,
            CsqInsertIrp: CsqInsertIrp.map_or(core::ptr::null_mut(), |f| f as PVOID),
            CsqRemoveIrp,
            CsqPeekNextIrp,
            CsqAcquireLock,
            CsqReleaseLock,
            CsqCompleteCanceledIrp,
            ReservePointer: core::ptr::null_mut(),
        })
    };
    STATUS_SUCCESS
}

/// `IoCsqInsertIrp`: [`IoCsqInsertIrpEx`] without an insert context.
///
/// # Safety
/// As [`IoCsqInsertIrpEx`].
pub unsafe extern "win64" fn IoCsqInsertIrp(
    Csq: *mut IO_CSQ,
    Irp: *mut IRP,
    Context: *mut IO_CSQ_IRP_CONTEXT,
) {
    // SAFETY: forwarded contract.
    unsafe { IoCsqInsertIrpEx(Csq, Irp, Context, core::ptr::null_mut()) };
}

/// `IoCsqInsertIrpEx`: under the queue's lock, insert the IRP with the driver's routine (an
/// Ex queue's refusal is returned and nothing is queued), mark it pending, record the queue
/// (or the filled-in `Context`) in DriverContext[3], make it cancelable; an IRP whose `Cancel`
/// is already set is taken out again and, after the lock is released, handed to
/// CsqCompleteCanceledIrp (unless IoCancelIrp's call of the cancel routine got there first).
///
/// # Safety
/// `Csq` an initialized queue, `Irp` an IRP the caller owns, `Context` null or writable.
pub unsafe extern "win64" fn IoCsqInsertIrpEx(
    Csq: *mut IO_CSQ,
    Irp: *mut IRP,
    Context: *mut IO_CSQ_IRP_CONTEXT,
    InsertContext: PVOID,
) -> NTSTATUS {
    let _m = current();
    let q = Q(Csq);
    let l = q.acquire();
    let ins = q.csq().CsqInsertIrp;
    if q.csq().Type == IO_TYPE_CSQ_EX {
        if !ins.is_null() {
            // SAFETY: an Ex queue's CsqInsertIrp holds a PIO_CSQ_INSERT_IRP_EX.
            let f: PIO_CSQ_INSERT_IRP_EX = unsafe { core::mem::transmute(ins) };
            // SAFETY: the driver's insert routine, queue lock held.
            let st = unsafe { f(Csq, Irp, InsertContext) };
            if !nt_success(st) {
                q.release(l);
                return st;
            }
        }
    } else if !ins.is_null() {
        // SAFETY: an IoCsqInitialize queue's CsqInsertIrp is a PIO_CSQ_INSERT_IRP.
        let f: PIO_CSQ_INSERT_IRP = unsafe { core::mem::transmute(ins) };
        // SAFETY: the driver's insert routine, queue lock held.
        unsafe { f(Csq, Irp) };
    }
    // IoMarkIrpPending.
    // SAFETY: a live IRP the caller owns; its current stack location lies inside it.
    let sl = unsafe { io_get_current_irp_stack_location(Irp) };
    if !sl.is_null() {
        // SAFETY: as above.
        unsafe { (*sl).Control |= SL_PENDING_RETURNED };
    }
    if Context.is_null() {
        set_slot(Irp, Csq.cast());
    } else {
        // SAFETY: writable IO_CSQ_IRP_CONTEXT per the contract.
        unsafe {
            Context.write(IO_CSQ_IRP_CONTEXT {
                Type: IO_TYPE_CSQ_IRP_CONTEXT,
                Irp,
                Csq,
            })
        };
        set_slot(Irp, Context.cast());
    }
    set_cancel_routine(Irp, Some(ntsim_csq_cancel_routine));
    // SAFETY: a field address of a live IRP (no access).
    let cancel = unsafe { &raw const (*Irp).Cancel };
    // SAFETY: Cancel is a byte IoCancelIrp sets, possibly on another processor.
    let cancelled = unsafe { cancel.read_volatile() } != 0;
    if cancelled && set_cancel_routine(Irp, None) != 0 {
        // We took the cancel routine back: nobody else will complete it.
        q.remove(Irp);
        set_slot(Irp, core::ptr::null_mut());
        if !Context.is_null() {
            // SAFETY: the context written above.
            unsafe { (*Context).Irp = core::ptr::null_mut() };
        }
        q.release(l);
        q.complete_canceled(Irp);
        return STATUS_SUCCESS;
    }
    q.release(l);
    STATUS_SUCCESS
}

/// Take a queued IRP out: clear its cancel routine (NULL back means IoCancelIrp owns it now),
/// remove it with the driver's routine, and clear DriverContext[3] (and its context's Irp).
fn take(q: &Q, irp: *mut IRP) -> bool {
    if set_cancel_routine(irp, None) == 0 {
        return false;
    }
    q.remove(irp);
    let p = get_slot(irp);
    if !p.is_null() {
        // SAFETY: DriverContext[3] holds the queue or the driver's context.
        let ty = unsafe { p.cast::<ULONG>().read() };
        if ty == IO_TYPE_CSQ_IRP_CONTEXT {
            // SAFETY: the driver's context of this queued IRP.
            unsafe { (*p.cast::<IO_CSQ_IRP_CONTEXT>()).Irp = core::ptr::null_mut() };
        }
    }
    set_slot(irp, core::ptr::null_mut());
    true
}

/// `IoCsqRemoveIrp`: the IRP `Context` names, removed, or NULL if it is no longer queued
/// (already removed, or being cancelled).
///
/// # Safety
/// `Csq` an initialized queue, `Context` a context an insert filled in.
pub unsafe extern "win64" fn IoCsqRemoveIrp(
    Csq: *mut IO_CSQ,
    Context: *mut IO_CSQ_IRP_CONTEXT,
) -> *mut IRP {
    let _m = current();
    let q = Q(Csq);
    let l = q.acquire();
    // SAFETY: the driver's context per the contract.
    let irp = unsafe { (*Context).Irp };
    let r = if !irp.is_null() && take(&q, irp) {
        irp
    } else {
        core::ptr::null_mut()
    };
    q.release(l);
    r
}

/// `IoCsqRemoveNextIrp`: the first IRP CsqPeekNextIrp finds for `PeekContext` that is not
/// being cancelled, removed; NULL if there is none.
///
/// # Safety
/// `Csq` an initialized queue.
pub unsafe extern "win64" fn IoCsqRemoveNextIrp(Csq: *mut IO_CSQ, PeekContext: PVOID) -> *mut IRP {
    let _m = current();
    let q = Q(Csq);
    let l = q.acquire();
    let mut irp = q.peek(core::ptr::null_mut(), PeekContext);
    while !irp.is_null() {
        if take(&q, irp) {
            break;
        }
        irp = q.peek(irp, PeekContext);
    }
    q.release(l);
    irp
}
