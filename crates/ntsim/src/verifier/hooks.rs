//! The verifier's hooks. Each takes what the calling subsystem knows at its decision point and
//! returns the bug check Driver Verifier would raise there (or, for the few checks whose code
//! differs with and without the verifier, the one ntoskrnl raises by itself).
use nt_abi::bugcheck::{
    self, bad_pool_caller_ext, io_verifier as iv, verifier as vr, worker_invalid,
};
use nt_abi::*;

use super::Bc;

/// Driver Verifier, `/standard` when on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hooks {
    on: bool,
}

impl Hooks {
    pub(crate) fn new(on: bool) -> Self {
        Hooks { on }
    }

    fn dv(&self, p: [u64; 4]) -> Option<Bc> {
        self.on
            .then(|| Bc::verifier(bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, p))
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
        if !self.on {
            return None;
        }
        let lvl = irql as u64;
        if size == 0 {
            return self.dv([vr::ZERO_BYTE_ALLOCATION, lvl, flags, 0]);
        }
        if flags & POOL_FLAG_PAGED != 0 && irql > APC_LEVEL {
            return self.dv([vr::PAGED_ALLOC_ABOVE_APC, lvl, flags, size as u64]);
        }
        if irql > DISPATCH_LEVEL {
            return self.dv([vr::NONPAGED_ALLOC_ABOVE_DISPATCH, lvl, flags, size as u64]);
        }
        if flags & POOL_FLAG_NON_PAGED_EXECUTE != 0 {
            return self.dv([vr::EXECUTABLE_POOL, caller as u64, flags, tag as u64]);
        }
        None
    }

    /// A free of a pool block at the wrong IRQL (0xC4 p1 = 0x11 paged above APC_LEVEL, 0x12 any
    /// above DISPATCH_LEVEL; p3 is the pool type as the reference gives it: 0 nonpaged, 1 paged).
    pub(crate) fn on_pool_free(&self, irql: KIRQL, paged: bool, addr: usize) -> Option<Bc> {
        if paged && irql > APC_LEVEL {
            return self.dv([vr::PAGED_FREE_ABOVE_APC, irql as u64, 1, addr as u64]);
        }
        if irql > DISPATCH_LEVEL {
            return self.dv([
                vr::NONPAGED_FREE_ABOVE_DISPATCH,
                irql as u64,
                0,
                addr as u64,
            ]);
        }
        None
    }

    /// A free of an address that is no live block: `freed` is the size when the address was
    /// freed before (double free). The verifier's 0xC4/0x14 or 0x10; without it, ntoskrnl's own
    /// 0xC2/0x07 or 0x99.
    pub(crate) fn on_bad_free(&self, addr: usize, freed: Option<usize>) -> Bc {
        let a = addr as u64;
        match (self.on, freed) {
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
        self.on.then(|| {
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

    /// `KeReleaseSpinLock` not at DISPATCH_LEVEL (0xC4/0x32).
    pub(crate) fn on_release_spinlock(&self, irql: KIRQL, lock: usize) -> Option<Bc> {
        if irql == DISPATCH_LEVEL {
            return None;
        }
        self.dv([
            vr::RELEASE_SPINLOCK_NOT_AT_DISPATCH,
            irql as u64,
            lock as u64,
            0,
        ])
    }

    /// An object dereference below zero (0xC4/0x3F); without the verifier it goes unnoticed.
    pub(crate) fn on_deref_underflow(&self, object: usize) -> Option<Bc> {
        self.dv([vr::REFERENCE_COUNT_UNDERFLOW, object as u64, 0, 0])
    }

    /// `IoInitializeWorkItem` / `IoAllocateWorkItem`: the item must be in nonpaged system
    /// memory (0xC4/0x131; on a stack it is documented-only). `class` says where the item is,
    /// as (nonpaged, on a stack); it is computed only when the verifier is on.
    pub(crate) fn on_work_item_init(
        &self,
        item: usize,
        class: impl FnOnce() -> (bool, bool),
    ) -> Option<Bc> {
        if !self.on {
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
        self.on.then(|| {
            Bc::verifier(
                bugcheck::DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION,
                [block_end as u64, 1, caller as u64, 0],
            )
        })
    }

    fn io(&self, p: [u64; 4]) -> Option<Bc> {
        self.on
            .then(|| Bc::verifier(bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION, p))
    }

    /// `IofCompleteRequest` (0xC9 p1 = 0x06 with STATUS_PENDING, 0x0E above DISPATCH_LEVEL).
    pub(crate) fn on_irp_complete(&self, irp: usize, status: NTSTATUS, irql: KIRQL) -> Option<Bc> {
        if status == STATUS_PENDING {
            return self.io([iv::COMPLETED_WITH_STATUS_PENDING, irp as u64, 0, 0]);
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
        self.on.then(|| {
            Bc::verifier(
                bugcheck::DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS,
                [routine as u64, 0, item as u64, unload as u64],
            )
            .at(routine)
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
        self.dv([
            vr::POOL_LEAKED_AT_UNLOAD,
            driver_name as u64,
            driver_object as u64,
            blocks as u64,
        ])
        .map(|bc| bc.at(unload))
    }
}
