//! I/O verification of IRP forwarding and completion (stream ioverify): the checks Driver
//! Verifier's *I/O Verification* option makes in IoCallDriver, IoCompleteRequest and IoFreeIrp,
//! and the one ntoskrnl makes by itself (0x35).
//!
//! Sources: Microsoft, *Bug Check 0xC9: DRIVER_VERIFIER_IOMANAGER_VIOLATION*
//! (<https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc9--driver-verifier-iomanager-violation>):
//! the parameter table for p1 < 0x200, and the "WDM DRIVER ERROR" codes (p1 ≥ 0x200) whose
//! crash-dump parameters are p2 = the address in the driver where the error was detected,
//! p3 = the IRP, p4 = the device object; Microsoft, *I/O Verification*
//! (<https://learn.microsoft.com/windows-hardware/drivers/devtest/i-o-verification>): level 1
//! allocates IRPs from special pool and checks "invalid I/O calls" (free of a non-IRP, invalid
//! device objects passed to IoCallDriver, completion with an invalid status or a cancel routine
//! still set, IRQL changed across a dispatch routine, free of an IRP still associated with a
//! thread).
use nt_abi::bugcheck::{self, iomanager as io};
use nt_abi::*;

use super::{Bc, Hooks};

/// `IoCallDriver` on an IRP whose stack locations are used up: 0x35 NO_MORE_IRP_STACK_LOCATIONS,
/// p1 = the IRP, p2–p4 reserved (0). ntoskrnl raises it by itself, verifier or not (Microsoft,
/// *Bug Check 0x35*,
/// <https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x35--no-more-irp-stack-locations>;
/// ReactOS `IofCallDriver`, ntoskrnl/io/iomgr/irp.c, checks `CurrentLocation <= 0` after the
/// decrement).
pub(crate) fn no_more_irp_stack_locations(irp: usize) -> Bc {
    Bc::new(bugcheck::NO_MORE_IRP_STACK_LOCATIONS, [irp as u64, 0, 0, 0])
}

/// What an I/O-verification bug check means, for the codes this module raises.
pub(super) fn meaning(code: u32, p1: u64) -> Option<&'static str> {
    Some(match (code, p1) {
        (bugcheck::NO_MORE_IRP_STACK_LOCATIONS, _) => {
            "IoCallDriver was called with an IRP that has no stack location left for the next driver"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::FREE_NOT_AN_IRP) => {
            "IoFreeIrp was called on an object whose type is not IO_TYPE_IRP"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::FREE_IRP_OF_A_THREAD) => {
            "IoFreeIrp was called on an IRP still associated with a thread (one the I/O manager owns)"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::CALL_NOT_AN_IRP) => {
            "IoCallDriver was called with an IRP whose type is not IO_TYPE_IRP"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::CALL_INVALID_DEVICE) => {
            "IoCallDriver was called with an invalid device object"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::IRQL_CHANGED_BY_DISPATCH) => {
            "the IRQL changed across a call to a driver's dispatch routine"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::COMPLETED_WITH_INVALID_STATUS) => {
            "an IRP was completed with STATUS_PENDING or -1 as its status"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::COMPLETED_WITH_CANCEL_ROUTINE) => {
            "an IRP was completed while its cancel routine was still set"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::CALL_ABOVE_DISPATCH) => {
            "IoCallDriver was called above DISPATCH_LEVEL"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::DELETE_ATTACHED_DEVICE) => {
            "WDM DRIVER ERROR 0x201: a device was deleted while still attached to a device below it (IoDetachDevice missing)"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::DETACH_NOT_ATTACHED) => {
            "WDM DRIVER ERROR 0x202: IoDetachDevice on a device that nothing is attached to (detached twice?)"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::CALL_NULL_DEVICE) => {
            "WDM DRIVER ERROR 0x204: IoCallDriver was called with a NULL device object"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::CALL_WITH_CANCEL_ROUTINE) => {
            "WDM DRIVER ERROR 0x203: IoCallDriver was called without setting the IRP's cancel routine to NULL"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::FREE_IRP_IN_USE) => {
            "WDM DRIVER ERROR 0x20B: IoFreeIrp was called on an IRP that is still in use (sent and not completed)"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::PENDING_NOT_MARKED) => {
            "WDM DRIVER ERROR 0x23D: a dispatch routine returned STATUS_PENDING without calling IoMarkIrpPending"
        }
        (bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, io::MARKED_NOT_PENDING) => {
            "WDM DRIVER ERROR 0x23E: a dispatch routine called IoMarkIrpPending but did not return STATUS_PENDING"
        }
        _ => return None,
    })
}

/// Facts IoCallDriver checks before it moves to the next stack location.
pub(crate) struct CallDriver {
    pub irp: usize,
    /// `Irp->Type == IO_TYPE_IRP`.
    pub irp_is_irp: bool,
    pub device: usize,
    /// `device` is a device object ntsim created (and not freed).
    pub device_is_device: bool,
    pub irql: KIRQL,
    /// `Irp->CancelRoutine`.
    pub cancel_routine: usize,
    /// The driver's call site.
    pub caller: usize,
}

impl Hooks {
    /// Whether IRPs go to special pool: I/O verification level 1 allocates them there, so a
    /// touch of a freed IRP faults (0xD5).
    pub(crate) fn irps_in_special_pool(&self) -> bool {
        self.f.io_verification
    }

    /// Whether I/O verification is on (ntsim keeps the bookkeeping its rules need only then).
    pub(crate) fn io_verification(&self) -> bool {
        self.f.io_verification
    }

    /// Whether Security Checks are on (IoCallDriver classifies a kernel IRP's buffers only then).
    pub(crate) fn security_checks(&self) -> bool {
        self.f.security_checks
    }

    /// `IofCallDriver`'s checks, in this order: a NULL device (WDM DRIVER ERROR 0x204: p2 the
    /// call site, p3 the IRP, p4 0), a device that is not a device object (0x04, p2 the
    /// device), an IRP whose Type is not IO_TYPE_IRP (0x03, p2 the IRP), above DISPATCH_LEVEL
    /// (0x10, p2 the IRQL), a cancel routine still set (0x203: p2 the call site, p3 the IRP,
    /// p4 the device). Windows checks these only with I/O verification on.
    pub(crate) fn on_call_driver(&self, c: &CallDriver) -> Option<Bc> {
        let (irp, dev) = (c.irp as u64, c.device as u64);
        if c.device == 0 {
            return self.io([io::CALL_NULL_DEVICE, c.caller as u64, irp, 0]);
        }
        if !c.device_is_device {
            return self.io([io::CALL_INVALID_DEVICE, dev, 0, 0]);
        }
        if !c.irp_is_irp {
            return self.io([io::CALL_NOT_AN_IRP, irp, 0, 0]);
        }
        if c.irql > DISPATCH_LEVEL {
            return self.io([io::CALL_ABOVE_DISPATCH, c.irql as u64, 0, 0]);
        }
        if c.cancel_routine != 0 {
            return self.io([io::CALL_WITH_CANCEL_ROUTINE, c.caller as u64, irp, dev]);
        }
        None
    }

    /// IoCallDriver of an IRP whose next stack location holds the same completion routine and
    /// context as the caller's own location: the driver copied its stack location by hand
    /// (`*next = *current`) instead of IoCopyCurrentIrpStackLocationToNext, which leaves the
    /// routine out, so the upper driver's routine would run twice. WDM DRIVER ERROR 0x207 (p2
    /// the address in the driver, p3 the IRP, p4 the device; Microsoft, *Bug Check 0xC9*).
    pub(crate) fn on_copied_completion_routine(
        &self,
        caller: usize,
        irp: usize,
        device: usize,
    ) -> Option<Bc> {
        self.io([
            io::COPIED_UPPER_COMPLETION_ROUTINE,
            caller as u64,
            irp as u64,
            device as u64,
        ])
        .map(|bc| bc.at(caller))
    }

    /// A dispatch routine returned 0xFFFFFFFF, "probably due to an uninitialized stack
    /// variable": WDM DRIVER ERROR 0x225 (p2 the dispatch routine, p3 the IRP, p4 the device;
    /// Microsoft, *Bug Check 0xC9*).
    pub(crate) fn on_dispatch_status(
        &self,
        dispatch: usize,
        irp: usize,
        device: usize,
        status: NTSTATUS,
    ) -> Option<Bc> {
        (status == -1)
            .then(|| {
                self.io([
                    io::DISPATCH_RETURNED_ILLEGAL_STATUS,
                    dispatch as u64,
                    irp as u64,
                    device as u64,
                ])
            })
            .flatten()
            .map(|bc| bc.at(dispatch))
    }

    /// IoCompleteRequest is about to call a completion routine that lies in pageable code (a
    /// `PAGE*` section), which "is never permitted": completion runs at up to DISPATCH_LEVEL.
    /// WDM DRIVER ERROR 0x227 (p2 the address in the driver where it was detected — the
    /// IoCompleteRequest call —, p3 the IRP, p4 the routine, ntsim's addition; Microsoft,
    /// *Bug Check 0xC9*).
    pub(crate) fn on_pageable_completion_routine(
        &self,
        caller: usize,
        irp: usize,
        routine: usize,
    ) -> Option<Bc> {
        self.io([
            io::PAGEABLE_COMPLETION_ROUTINE,
            caller as u64,
            irp as u64,
            routine as u64,
        ])
        .map(|bc| bc.at(routine))
    }

    /// IoDeleteDevice of a device object that was already deleted: WDM DRIVER ERROR 0x240 (p2
    /// the address in the driver, p3 the device object — ntsim's addition, Microsoft lists p3
    /// as reserved; *Bug Check 0xC9*). Without I/O verification the second call is ignored.
    pub(crate) fn on_delete_deleted_device(&self, caller: usize, device: usize) -> Option<Bc> {
        self.io([io::DELETE_DELETED_DEVICE, caller as u64, device as u64, 0])
            .map(|bc| bc.at(caller))
    }

    /// A read or write built for a device whose Flags have both DO_BUFFERED_IO and
    /// DO_DIRECT_IO ("mutually exclusive"): WDM DRIVER ERROR 0x245 (p2, p3 reserved: 0; p4 the
    /// device, ntsim's addition; Microsoft, *Bug Check 0xC9*). ntsim checks when a driver builds a
    /// read or write for the device with IoBuild*Request (Windows: when the flags are
    /// inspected). Without I/O verification buffered I/O wins.
    pub(crate) fn on_buffered_and_direct(&self, device: usize) -> Option<Bc> {
        self.io([io::BUFFERED_AND_DIRECT_IO, 0, 0, device as u64])
    }

    /// After a dispatch routine called through IoCallDriver returns: the IRQL changed (0x05:
    /// p2 the device, p3 the IRQL before, p4 after).
    pub(crate) fn on_dispatch_irql(
        &self,
        device: usize,
        before: KIRQL,
        after: KIRQL,
    ) -> Option<Bc> {
        if before == after {
            return None;
        }
        self.io([
            io::IRQL_CHANGED_BY_DISPATCH,
            device as u64,
            before as u64,
            after as u64,
        ])
    }

    /// After a dispatch routine returns `status`: `marked` is whether its stack location had
    /// SL_PENDING_RETURNED (IoMarkIrpPending) — at its completion, or now if not completed yet.
    /// STATUS_PENDING without the mark is WDM DRIVER ERROR 0x23D, the mark without
    /// STATUS_PENDING 0x23E (p2 the dispatch routine, p3 the IRP, p4 the device). Without the
    /// verifier Windows does not check: the first leaves the requester waiting forever (nobody
    /// queues the final completion), the second completes the request twice.
    pub(crate) fn on_dispatch_pending(
        &self,
        dispatch: usize,
        irp: usize,
        device: usize,
        status: NTSTATUS,
        marked: bool,
    ) -> Option<Bc> {
        let sub = match (status == STATUS_PENDING, marked) {
            (true, false) => io::PENDING_NOT_MARKED,
            (false, true) => io::MARKED_NOT_PENDING,
            _ => return None,
        };
        self.io([sub, dispatch as u64, irp as u64, device as u64])
            .map(|bc| bc.at(dispatch))
    }

    /// IoDeleteDevice of a device still attached below (WDM DRIVER ERROR 0x201: p2 the call
    /// site, p3 0, p4 the device). Without the verifier Windows does not check it.
    pub(crate) fn on_delete_attached_device(&self, caller: usize, device: usize) -> Option<Bc> {
        self.io([io::DELETE_ATTACHED_DEVICE, caller as u64, 0, device as u64])
    }

    /// IoDetachDevice of a device nothing is attached to (WDM DRIVER ERROR 0x202: p2 the call
    /// site, p3 0, p4 the device).
    pub(crate) fn on_detach_not_attached(&self, caller: usize, device: usize) -> Option<Bc> {
        self.io([io::DETACH_NOT_ATTACHED, caller as u64, 0, device as u64])
    }

    /// IoCompleteRequest with a cancel routine still set (0x07: p2 the routine, p3 the IRP).
    pub(crate) fn on_complete_cancel_routine(&self, irp: usize, routine: usize) -> Option<Bc> {
        if routine == 0 {
            return None;
        }
        self.io([
            io::COMPLETED_WITH_CANCEL_ROUTINE,
            routine as u64,
            irp as u64,
            0,
        ])
    }

    /// IoFreeIrp: Type not IO_TYPE_IRP (0x01, p2 the IRP), an IRP a thread still owns — one
    /// the I/O manager built for a request, or a threaded IoBuild*Request IRP before its
    /// completion (0x02, p2 the IRP), or an IRP sent down and not completed (WDM DRIVER ERROR
    /// 0x20B: p2 the call site, p3 the IRP, p4 0).
    pub(crate) fn on_free_irp(
        &self,
        irp: usize,
        is_irp: bool,
        threaded: bool,
        in_use: bool,
        caller: usize,
    ) -> Option<Bc> {
        if !is_irp {
            return self.io([io::FREE_NOT_AN_IRP, irp as u64, 0, 0]);
        }
        if threaded {
            return self.io([io::FREE_IRP_OF_A_THREAD, irp as u64, 0, 0]);
        }
        if in_use {
            return self.io([io::FREE_IRP_IN_USE, caller as u64, irp as u64, 0]);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::VerifierFlags;

    #[test]
    fn io_rules_follow_the_io_verification_option() {
        let on = Hooks::new(VerifierFlags::ALL);
        let off = Hooks::new(VerifierFlags {
            io_verification: false,
            ..VerifierFlags::ALL
        });
        let c = CallDriver {
            irp: 0x1000,
            irp_is_irp: true,
            device: 0x2000,
            device_is_device: true,
            irql: HIGH_LEVEL,
            cancel_routine: 0,
            caller: 0x3000,
        };
        let bc = on.on_call_driver(&c).expect("0xC9/0x10");
        assert_eq!(bc.p, [io::CALL_ABOVE_DISPATCH, HIGH_LEVEL as u64, 0, 0]);
        assert!(off.on_call_driver(&c).is_none());
        assert!(
            on.on_dispatch_pending(1, 2, 3, STATUS_PENDING, true)
                .is_none()
        );
        assert_eq!(
            on.on_dispatch_pending(1, 2, 3, STATUS_SUCCESS, true)
                .expect("0x23E")
                .p,
            [io::MARKED_NOT_PENDING, 1, 2, 3]
        );
        assert!(
            off.on_dispatch_pending(1, 2, 3, STATUS_PENDING, false)
                .is_none()
        );
        assert_eq!(no_more_irp_stack_locations(7).p, [7, 0, 0, 0]);
    }
}
