//! The verifier's hooks. Each takes what the calling subsystem knows at its decision point and
//! returns the bug check Driver Verifier would raise there (or, for the few checks whose code
//! differs with and without the verifier, the one ntoskrnl raises by itself).
use nt_abi::bugcheck::{
    self, bad_pool_caller_ext, io_verifier as iv, verifier as vr, worker_invalid,
};
use nt_abi::*;

use super::Bc;
use crate::machine::VerifierFlags;

/// Driver Verifier with the options of [`VerifierFlags`].
#[derive(Debug)]
pub(crate) struct Hooks {
    pub(super) f: VerifierFlags,
    /// Deadlock detection's lock-order graph.
    pub(super) deadlock: super::deadlock::LockGraph,
}

impl Hooks {
    pub(crate) fn new(f: VerifierFlags) -> Self {
        Hooks {
            f,
            deadlock: Default::default(),
        }
    }

    fn dv_if(&self, on: bool, p: [u64; 4]) -> Option<Bc> {
        on.then(|| Bc::verifier(bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, p))
    }

    /// `ExAllocatePool2` (0xC4 p1 = 0x00, 0x01, 0x02, 0x2000 — Microsoft, *Bug Check 0xC4*).
    pub(crate) fn on_pool_alloc(
        &self,
        irql: KIRQL,
        flags: u64,
        size: usize,
        tag: u32,
        caller: usize,
    ) -> Option<Bc> {
        let lvl = irql as u64;
        let f = self.f;
        if size == 0 && f.pool_tracking {
            return self.dv_if(true, [vr::ZERO_BYTE_ALLOCATION, lvl, flags, 0]);
        }
        if flags & POOL_FLAG_PAGED != 0 && irql > APC_LEVEL && f.irql_checking {
            return self.dv_if(true, [vr::PAGED_ALLOC_ABOVE_APC, lvl, flags, size as u64]);
        }
        if irql > DISPATCH_LEVEL && f.irql_checking {
            return self.dv_if(
                true,
                [vr::NONPAGED_ALLOC_ABOVE_DISPATCH, lvl, flags, size as u64],
            );
        }
        if flags & POOL_FLAG_NON_PAGED_EXECUTE != 0 {
            return self.dv_if(
                f.misc_checks,
                [vr::EXECUTABLE_POOL, caller as u64, flags, tag as u64],
            );
        }
        None
    }

    /// A free of a pool block at the wrong IRQL (0xC4 p1 = 0x11 paged above APC_LEVEL, 0x12 any
    /// above DISPATCH_LEVEL; p3 is the pool type as the reference gives it: 0 nonpaged, 1 paged).
    pub(crate) fn on_pool_free(&self, irql: KIRQL, paged: bool, addr: usize) -> Option<Bc> {
        let on = self.f.irql_checking;
        if paged && irql > APC_LEVEL {
            return self.dv_if(on, [vr::PAGED_FREE_ABOVE_APC, irql as u64, 1, addr as u64]);
        }
        if irql > DISPATCH_LEVEL {
            return self.dv_if(
                on,
                [
                    vr::NONPAGED_FREE_ABOVE_DISPATCH,
                    irql as u64,
                    0,
                    addr as u64,
                ],
            );
        }
        None
    }

    /// A free of an address that is no live block: `freed` is the size when the address was
    /// freed before (double free). The verifier's 0xC4/0x14 or 0x10; without it, ntoskrnl's own
    /// 0xC2/0x07 or 0x99.
    pub(crate) fn on_bad_free(&self, addr: usize, freed: Option<usize>) -> Bc {
        let a = addr as u64;
        match (self.f.pool_tracking, freed) {
            (true, Some(size)) => Bc::verifier(
                bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [vr::DOUBLE_FREE, 0, a, size as u64],
            ),
            (true, None) => Bc::verifier(
                bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [vr::FREE_BAD_ADDRESS, a, 0, 0],
            ),
            (false, Some(size)) => Bc::new(
                bugcheck::BAD_POOL_CALLER,
                [bad_pool_caller_ext::DOUBLE_FREE, 0, a, size as u64],
            ),
            (false, None) => Bc::new(
                bugcheck::BAD_POOL_CALLER,
                [bad_pool_caller_ext::FREE_INVALID_ADDRESS, a, 0, 0],
            ),
        }
    }

    /// Pool being freed holds an initialized work item that is not queued (0xE4/0). Windows
    /// does not check this (it checks only queued items, which the work-item code raises by
    /// itself), so with the verifier this is a documented-only verifier rule.
    pub(crate) fn on_pool_free_with_work_item(
        &self,
        item: usize,
        start: usize,
        end: usize,
    ) -> Option<Bc> {
        self.f.misc_checks.then(|| {
            let mut bc = Bc::worker_invalid([
                worker_invalid::ACTIVE_ITEM_IN_FREED_POOL,
                item as u64,
                start as u64,
                end as u64,
            ])
            .documented_only();
            bc.verifier_rule = true;
            bc
        })
    }

    /// Pageable driver code (a section whose name begins with `PAGE`) running at
    /// DISPATCH_LEVEL or above while resident, seen when it calls into ntoskrnl (the import
    /// stubs). After a driver's own raise or spin lock, Force IRQL Checking has trimmed it and
    /// the first instruction faults instead ([`Self::on_pageable_fault_at_raised_irql`]); this
    /// catches what runs at DISPATCH_LEVEL without such a trim, a pageable DPC routine (the
    /// system raised the IRQL). 0xD1 DRIVER_IRQL_NOT_LESS_OR_EQUAL (p1 the return address,
    /// p2 the IRQL, p3 8 = execute, p4 = p1; Microsoft, *Bug Check 0xD1*), marked stricter than
    /// Windows: there the resident page runs unnoticed until memory pressure pages it out.
    pub(crate) fn on_pageable_code_at_raised_irql(&self, irql: KIRQL, addr: usize) -> Option<Bc> {
        if irql < DISPATCH_LEVEL || !self.f.irql_checking {
            return None;
        }
        let a = addr as u64;
        Some(
            Bc::verifier(
                bugcheck::DRIVER_IRQL_NOT_LESS_OR_EQUAL,
                [a, irql as u64, 8, a],
            )
            .documented_only()
            .at(addr),
        )
    }

    /// Pageable memory (paged pool, a `PAGE*` section) touched at DISPATCH_LEVEL or above after
    /// Force IRQL Checking trimmed it (`mm::paging`): the page fault cannot be served at that
    /// IRQL. From the driver's own instruction (`in_driver`) 0xD1 DRIVER_IRQL_NOT_LESS_OR_EQUAL
    /// (p1 the address referenced, p2 the IRQL, p3 0 read / 1 write / 8 execute, p4 the
    /// instruction; Microsoft, *Bug Check 0xD1*); from ntsim's code servicing an export — ntoskrnl
    /// touching the driver's data on Windows — 0xA IRQL_NOT_LESS_OR_EQUAL (p3 bit 0 write, bit 3
    /// execute, p4 the instruction, here an address in ntsim; Microsoft, *Bug Check 0xA*).
    /// Microsoft, *Force IRQL Checking*: the trim happens whenever the driver "requests a spin
    /// lock … or raises the IRQL to DISPATCH_LEVEL or higher".
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_pageable_fault_at_raised_irql(
        &self,
        addr: usize,
        irql: KIRQL,
        write: bool,
        execute: bool,
        rip: usize,
        in_driver: bool,
        at: usize,
    ) -> Bc {
        let access = if execute { 8 } else { write as u64 };
        let code = if in_driver {
            bugcheck::DRIVER_IRQL_NOT_LESS_OR_EQUAL
        } else {
            bugcheck::IRQL_NOT_LESS_OR_EQUAL
        };
        Bc::verifier(code, [addr as u64, irql as u64, access, rip as u64]).at(at)
    }

    /// A synchronization object in pageable memory (paged pool or a `PAGE*` section): the
    /// kernel touches it at DISPATCH_LEVEL, so with Force IRQL Checking Driver Verifier looks
    /// for pageable KTIMER, KMUTEX, KSPIN_LOCK, KEVENT, KSEMAPHORE, ERESOURCE and FAST_MUTEX
    /// structures (Microsoft, *Force IRQL Checking*): 0xC4/0xE1 with p2 the object's address
    /// (Microsoft, *Bug Check 0xC4*: "A synchronization object was found to have an address
    /// that was either invalid or pageable"). ntsim checks where it first sees the object: at
    /// the initializing export, or at the first acquisition for the spin lock and fast mutex
    /// (whose initializers are inline in wdm.h).
    pub(crate) fn on_sync_object_pageable(&self, object: usize, pageable: bool) -> Option<Bc> {
        self.dv_if(
            self.f.irql_checking && pageable,
            [vr::SYNC_OBJECT_PAGEABLE, object as u64, 0, 0],
        )
    }

    /// IoCallDriver of an IRP whose RequestorMode is KernelMode with a user-mode address in
    /// `AssociatedIrp.SystemBuffer` or `UserBuffer`: the lower driver trusts kernel-mode
    /// requests' buffers, so a driver that passes a user pointer on lets user mode choose what
    /// the kernel writes. 0xC4/0xE2 (p2 the IRP, p3 the address). Microsoft, *Security Checks*:
    /// "Whenever the Irp->RequestorMode is set to KernelMode, Driver Verifier checks that no I/O
    /// Request parameters, Irp->AssociatedIrp.SystemBuffer or Irp->UserBuffer, are user-mode
    /// addresses"; *Bug Check 0xC4*.
    pub(crate) fn on_kernel_irp_user_address(&self, irp: usize, addr: usize) -> Option<Bc> {
        self.dv_if(
            self.f.security_checks,
            [vr::KERNEL_IRP_WITH_USER_ADDRESS, irp as u64, addr as u64, 0],
        )
    }

    /// `KeReleaseSpinLock` not at DISPATCH_LEVEL (0xC4/0x32).
    pub(crate) fn on_release_spinlock(&self, irql: KIRQL, lock: usize) -> Option<Bc> {
        if irql == DISPATCH_LEVEL {
            return None;
        }
        self.dv_if(
            self.f.irql_checking,
            [
                vr::RELEASE_SPINLOCK_NOT_AT_DISPATCH,
                irql as u64,
                lock as u64,
                0,
            ],
        )
    }

    /// Pool freed with a kernel timer still set, or a DPC still queued, inside it: 0xC7
    /// TIMER_OR_DPC_INVALID (p1 0 timer / 1 DPC / 2 DPC routine, p2 the object, p3–p4 the
    /// freed block's range; Microsoft, *Bug Check 0xC7*: "usually caused by a driver failing
    /// to cancel a timer or DPC before freeing the memory where it resides"). Under
    /// `pool_tracking` (Windows checks freed pool for timers when Driver Verifier tracks it).
    pub(crate) fn on_timer_or_dpc_in_freed_pool(
        &self,
        what: u64,
        object: usize,
        lo: usize,
        hi: usize,
    ) -> Option<Bc> {
        self.f.pool_tracking.then(|| {
            Bc::verifier(
                bugcheck::TIMER_OR_DPC_INVALID,
                [what, object as u64, lo as u64, hi as u64],
            )
        })
    }

    /// A DDI compliance IRQL rule (0xC4 p1 = the rule's code, p2 = a NUL-terminated string
    /// naming the violated condition, p3 = the IRQL, p4 = 0; Windows' p3/p4 are the rule's
    /// internal state). ntsim files these under `irql_checking` (Driver Verifier's own option
    /// is "DDI compliance checking", part of `/standard`).
    pub(crate) fn on_ddi_irql(
        &self,
        rule: u64,
        condition: &'static core::ffi::CStr,
        irql: KIRQL,
    ) -> Option<Bc> {
        self.dv_if(
            self.f.irql_checking,
            [rule, condition.as_ptr() as u64, irql as u64, 0],
        )
    }

    /// An object dereference below zero (0xC4/0x3F); without the verifier it goes unnoticed.
    pub(crate) fn on_deref_underflow(&self, object: usize) -> Option<Bc> {
        self.dv_if(
            self.f.misc_checks,
            [vr::REFERENCE_COUNT_UNDERFLOW, object as u64, 0, 0],
        )
    }

    /// `IoInitializeWorkItem` / `IoAllocateWorkItem`: the item must be in nonpaged system
    /// memory (0xC4/0x131; on a stack it is documented-only). `class` says where the item is,
    /// as (nonpaged, on a stack); it is computed only when the verifier is on.
    pub(crate) fn on_work_item_init(
        &self,
        item: usize,
        class: impl FnOnce() -> (bool, bool),
    ) -> Option<Bc> {
        if !self.f.misc_checks {
            return None;
        }
        let (nonpaged, stack) = class();
        if nonpaged {
            return None;
        }
        let bc = Bc::verifier(
            bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [vr::WORK_ITEM_IN_PAGEABLE_MEMORY, item as u64, 0, 0],
        );
        Some(if stack { bc.documented_only() } else { bc })
    }

    /// Work-item storage ends before `IoSizeofWorkItem()` bytes: special pool catches the write
    /// past the block (0xD6). Without it the caller clips the write.
    pub(crate) fn on_work_item_overflow(&self, block_end: usize, caller: usize) -> Option<Bc> {
        self.f.special_pool.then(|| {
            Bc::verifier(
                bugcheck::DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION,
                [block_end as u64, 1, caller as u64, 0],
            )
        })
    }

    pub(super) fn io(&self, p: [u64; 4]) -> Option<Bc> {
        self.f
            .io_verification
            .then(|| Bc::verifier(bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, p))
    }

    /// `IofCompleteRequest` (0xC9 p1 = 0x06 with STATUS_PENDING or -1: p2 the status, p3 the
    /// IRP; 0x0E above DISPATCH_LEVEL — Microsoft, *Bug Check 0xC9*).
    pub(crate) fn on_irp_complete(&self, irp: usize, status: NTSTATUS, irql: KIRQL) -> Option<Bc> {
        if status == STATUS_PENDING || status == -1 {
            return self.io([
                iv::COMPLETED_WITH_STATUS_PENDING,
                status as u32 as u64,
                irp as u64,
                0,
            ]);
        }
        if irql > DISPATCH_LEVEL {
            return self.io([iv::COMPLETED_ABOVE_DISPATCH, irql as u64, irp as u64, 0]);
        }
        None
    }

    /// Completion of an IOCTL whose Information exceeds the output buffer (0xC9/0x312).
    pub(crate) fn on_irp_information(
        &self,
        irp: usize,
        information: usize,
        out_len: usize,
    ) -> Option<Bc> {
        if information <= out_len {
            return None;
        }
        self.io([
            iv::INFORMATION_EXCEEDS_OUTPUT,
            irp as u64,
            information as u64,
            out_len as u64,
        ])
    }

    /// `MmUnlockPages` on an MDL whose pages are not locked (never locked, or unlocked
    /// already): 0x76 PROCESS_HAS_LOCKED_PAGES p1 = 1, p2 the MDL, p3 the pages locked in the
    /// process, p4 0 (Microsoft, *Bug Check 0x76: PROCESS_HAS_LOCKED_PAGES*,
    /// <https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x76--process-has-locked-pages>).
    /// Windows checks it when locked-page tracking is on; ntsim under `misc_checks`.
    pub(crate) fn on_unlock_not_locked(&self, mdl: usize, locked_pages: usize) -> Option<Bc> {
        self.f.misc_checks.then(|| {
            Bc::verifier(
                bugcheck::PROCESS_HAS_LOCKED_PAGES,
                [1, mdl as u64, locked_pages as u64, 0],
            )
        })
    }

    /// The caller's buffer of a request goes away with pages still locked by an MDL: 0x76 p1 =
    /// 0, p2 the process (ntsim has no EPROCESS: 0), p3 the locked pages, p4 0 (same page).
    /// Windows raises it when the process terminates; ntsim when the request's buffer is
    /// released (stricter: `documented_only`). Under `misc_checks`.
    pub(crate) fn on_buffer_released_locked(&self, locked_pages: usize) -> Option<Bc> {
        (self.f.misc_checks && locked_pages > 0).then(|| {
            Bc::verifier(
                bugcheck::PROCESS_HAS_LOCKED_PAGES,
                [0, 0, locked_pages as u64, 0],
            )
            .documented_only()
        })
    }

    /// A dispatch routine returned neither completing the IRP nor STATUS_PENDING (0xC9/0x226).
    pub(crate) fn on_dispatch_return(
        &self,
        dispatch: usize,
        irp: usize,
        status: NTSTATUS,
    ) -> Option<Bc> {
        self.io([
            iv::DISPATCH_RETURNED_WITHOUT_COMPLETING,
            dispatch as u64,
            irp as u64,
            status as u32 as u64,
        ])
        .map(|bc| bc.at(dispatch))
    }

    /// After DriverUnload: a work item of the driver still queued or running (0xCE).
    pub(crate) fn on_unload_pending_item(
        &self,
        routine: usize,
        item: usize,
        unload: usize,
    ) -> Option<Bc> {
        // Stricter than Windows (documented-only): on Windows the IoObject reference an
        // IO_WORKITEM holds keeps the driver image loaded until the routine returns (Microsoft,
        // *IoQueueWorkItem*: the I/O manager references the object so the driver cannot unload
        // while the item is queued; ReactOS iowork.c dereferences it after the routine), so an
        // unload with an item still queued or running is not a bug check there. ntsim raises
        // it so the driver's missing drain is visible.
        self.f.misc_checks.then(|| {
            Bc::verifier(
                bugcheck::DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS,
                [routine as u64, 0, item as u64, unload as u64],
            )
            .at(routine)
            .documented_only()
        })
    }

    /// After DriverUnload: pool still allocated (0xC4/0x62).
    pub(crate) fn on_unload_pool_leak(
        &self,
        driver_name: usize,
        driver_object: usize,
        blocks: usize,
        unload: usize,
    ) -> Option<Bc> {
        if blocks == 0 {
            return None;
        }
        self.dv_if(
            self.f.pool_tracking,
            [
                vr::POOL_LEAKED_AT_UNLOAD,
                driver_name as u64,
                driver_object as u64,
                blocks as u64,
            ],
        )
        .map(|bc| bc.at(unload))
    }

    /// A page fault in special pool: the guard page of a live block (0xD6
    /// DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION) or the quarantined pages of a freed one (0xD5
    /// DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL); both p1 = address referenced, p2 = 0 read /
    /// 1 write, p3 = the address that referenced memory, p4 = 0 (Microsoft, *Bug Check 0xD6* and
    /// *Bug Check 0xD5*). `stricter`: the block is larger than Windows puts in special pool.
    /// Special-pool regions exist only with the option on, so this always answers.
    pub(crate) fn on_special_pool_fault(
        &self,
        freed: bool,
        addr: usize,
        write: bool,
        code_address: usize,
        stricter: bool,
    ) -> Bc {
        let code = if freed {
            bugcheck::DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL
        } else {
            bugcheck::DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION
        };
        let bc = Bc::verifier(code, [addr as u64, write as u64, code_address as u64, 0])
            .at(code_address);
        if stricter { bc.documented_only() } else { bc }
    }

    /// The pattern around a special-pool block was overwritten, found when it is freed (0xC1
    /// SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION, p1 = the address freed, p2 = the first corrupted
    /// byte, p3 = 0, p4 = 0x24 after the end / 0x23 nearby on the same page — Microsoft, *Bug
    /// Check 0xC1*).
    pub(crate) fn on_special_pool_corruption(
        &self,
        block: usize,
        at: usize,
        after_end: bool,
    ) -> Bc {
        use nt_abi::bugcheck::special_pool as sp;
        let sub = if after_end {
            sp::BYTES_AFTER_END_OVERWRITTEN
        } else {
            sp::NEARBY_BYTES_CORRUPTED
        };
        Bc::verifier(
            bugcheck::SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION,
            [block as u64, at as u64, 0, sub],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::VerifierFlags;

    fn on() -> Hooks {
        Hooks::new(VerifierFlags::ALL)
    }

    #[test]
    fn nonpaged_pool_above_dispatch_level_is_0xc4_02_and_0x12() {
        let h = on();
        let bc = h
            .on_pool_alloc(HIGH_LEVEL, POOL_FLAG_NON_PAGED, 0x40, 1, 0)
            .expect("0xC4/0x02");
        assert_eq!(
            (bc.code, bc.p),
            (
                bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [
                    vr::NONPAGED_ALLOC_ABOVE_DISPATCH,
                    HIGH_LEVEL as u64,
                    POOL_FLAG_NON_PAGED,
                    0x40
                ]
            )
        );
        let bc = h
            .on_pool_free(HIGH_LEVEL, false, 0x1000)
            .expect("0xC4/0x12");
        assert_eq!(
            bc.p,
            [
                vr::NONPAGED_FREE_ABOVE_DISPATCH,
                HIGH_LEVEL as u64,
                0,
                0x1000
            ]
        );
        // At DISPATCH_LEVEL nonpaged pool is legal.
        assert!(
            h.on_pool_alloc(DISPATCH_LEVEL, POOL_FLAG_NON_PAGED, 0x40, 1, 0)
                .is_none()
        );
        assert!(h.on_pool_free(DISPATCH_LEVEL, false, 0x1000).is_none());
    }

    #[test]
    fn each_option_switches_only_its_rules() {
        let irql_off = Hooks::new(VerifierFlags {
            irql_checking: false,
            ..VerifierFlags::ALL
        });
        assert!(
            irql_off
                .on_pool_alloc(HIGH_LEVEL, POOL_FLAG_NON_PAGED, 0x40, 1, 0)
                .is_none()
        );
        assert!(irql_off.on_release_spinlock(PASSIVE_LEVEL, 8).is_none());
        // ...but pool tracking still sees a zero-byte allocation.
        assert!(
            irql_off
                .on_pool_alloc(PASSIVE_LEVEL, POOL_FLAG_NON_PAGED, 0, 1, 0)
                .is_some()
        );
        let tracking_off = Hooks::new(VerifierFlags {
            pool_tracking: false,
            ..VerifierFlags::ALL
        });
        assert_eq!(
            tracking_off.on_bad_free(0x10, Some(8)).code,
            bugcheck::BAD_POOL_CALLER,
            "without pool tracking a double free is ntoskrnl's own 0xC2/0x07"
        );
        assert!(tracking_off.on_unload_pool_leak(1, 2, 3, 4).is_none());
        let io_off = Hooks::new(VerifierFlags {
            io_verification: false,
            ..VerifierFlags::ALL
        });
        assert!(
            io_off
                .on_irp_complete(1, STATUS_PENDING, PASSIVE_LEVEL)
                .is_none()
        );
        assert!(
            on().on_irp_complete(1, STATUS_PENDING, PASSIVE_LEVEL)
                .is_some()
        );
        let sp_off = Hooks::new(VerifierFlags {
            special_pool: false,
            ..VerifierFlags::ALL
        });
        assert!(sp_off.on_work_item_overflow(0x1000, 0).is_none());
        assert!(on().on_work_item_overflow(0x1000, 0).is_some());
    }
}
