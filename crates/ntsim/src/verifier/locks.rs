//! The verifier's rules for spin locks, fast and guarded mutexes, ERESOURCE and APC regions.
//!
//! Codes and parameters: Microsoft, *Bug Check 0xC4: DRIVER_VERIFIER_DETECTED_VIOLATION*
//! (<https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc4--driver-verifier-detected-violation>),
//! *Bug Check 0xE3: RESOURCE_NOT_OWNED*, *Bug Check 0x1: APC_INDEX_MISMATCH*. Which Driver
//! Verifier option raises each is given per rule; the 0x1000-range rules belong to Windows'
//! Deadlock Detection option (`deadlock_detection`; the lock-order graph is `verifier::deadlock`).
use nt_abi::bugcheck::{self, apc_index_mismatch, verifier_locks as vl};
use nt_abi::*;

use super::{Bc, Hooks};

/// The APC-disable counts as one value (KTHREAD.CombinedApcDisable: special << 16 | kernel).
pub(crate) fn combined(apc: (i16, i16)) -> u64 {
    (((apc.1 as u16 as u32) << 16) | apc.0 as u16 as u32) as u64
}

impl Hooks {
    fn dv(&self, on: bool, p: [u64; 4]) -> Option<Bc> {
        on.then(|| Bc::verifier(bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, p))
    }

    /// `KeAcquireSpinLock` / `KeAcquireSpinLockRaiseToDpc` above DISPATCH_LEVEL: 0xC4/0x42
    /// (p2 IRQL, p3 lock). Without the verifier ntoskrnl's own 0xA follows.
    pub(crate) fn on_acquire_spinlock(&self, irql: KIRQL, lock: usize) -> Option<Bc> {
        (irql > DISPATCH_LEVEL)
            .then(|| {
                self.dv(
                    self.f.irql_checking,
                    [
                        vl::ACQUIRE_SPINLOCK_ABOVE_DISPATCH,
                        irql as u64,
                        lock as u64,
                        0,
                    ],
                )
            })
            .flatten()
    }

    /// `KeAcquireSpinLockAtDpcLevel` (and the in-stack `…AtDpcLevel` form) below DISPATCH_LEVEL:
    /// 0xC4/0x40 (p2 IRQL, p3 lock).
    pub(crate) fn on_acquire_spinlock_at_dpc(&self, irql: KIRQL, lock: usize) -> Option<Bc> {
        (irql < DISPATCH_LEVEL)
            .then(|| {
                self.dv(
                    self.f.irql_checking,
                    [
                        vl::ACQUIRE_SPINLOCK_AT_DPC_BELOW_DISPATCH,
                        irql as u64,
                        lock as u64,
                        0,
                    ],
                )
            })
            .flatten()
    }

    /// `KeReleaseSpinLockFromDpcLevel` (and the in-stack `…FromDpcLevel` form) below
    /// DISPATCH_LEVEL: 0xC4/0x41 (p2 IRQL, p3 lock).
    pub(crate) fn on_release_spinlock_from_dpc(&self, irql: KIRQL, lock: usize) -> Option<Bc> {
        (irql < DISPATCH_LEVEL)
            .then(|| {
                self.dv(
                    self.f.irql_checking,
                    [
                        vl::RELEASE_SPINLOCK_FROM_DPC_BELOW_DISPATCH,
                        irql as u64,
                        lock as u64,
                        0,
                    ],
                )
            })
            .flatten()
    }

    /// `KeWaitForSingleObject` / `KeWaitForMultipleObjects` with WaitMode UserMode on an
    /// object on the kernel stack: 0xC4/0x123 (p2 the object). A UserMode wait lets the kernel
    /// swap the thread's stack out, and the object with it (Microsoft, *Miscellaneous Checks*:
    /// "UserMode Wait for Synchronization Objects Allocated on the Kernel Stack"; *Bug Check
    /// 0xC4*). Under `misc_checks`.
    pub(crate) fn on_user_mode_wait_on_stack(&self, object: usize) -> Option<Bc> {
        self.dv(
            self.f.misc_checks,
            [vl::USER_MODE_WAIT_ON_STACK_OBJECT, object as u64, 0, 0],
        )
    }

    /// `ObReferenceObjectByHandle` of a user-mode handle with AccessMode KernelMode (the access
    /// check is skipped, so a user handle could reach objects its process may not touch):
    /// 0xC4/0xF6 (p2 the handle, p3 the current process — 0 here: ntsim's process objects belong
    /// to the I/O manager —, p4 the address in the driver that made the reference). Microsoft,
    /// *Miscellaneous Checks*: "It is now prohibited to pass a user-space handle with KernelMode
    /// access". Under `misc_checks`.
    pub(crate) fn on_user_handle_kernel_access(&self, handle: u64, caller: usize) -> Option<Bc> {
        self.dv(
            self.f.misc_checks,
            [vl::USER_HANDLE_KERNEL_ACCESS, handle, 0, caller as u64],
        )
        .map(|b| b.at(caller))
    }

    /// A completion routine returned at another IRQL than it was called at (0xC4/0xFA: p2 the
    /// routine, p3 the IRQL before, p4 after), or with the APC-disable count changed (0xC4/0xFB:
    /// p2 the routine, p3 the count now, p4 before). Microsoft, *Bug Check 0xC4*. Under
    /// `io_verification`.
    pub(crate) fn on_completion_routine_returned(
        &self,
        routine: usize,
        irql: (KIRQL, KIRQL),
        apc: ((i16, i16), (i16, i16)),
    ) -> Option<Bc> {
        let bc = if irql.0 != irql.1 {
            self.dv(
                self.f.io_verification,
                [
                    vl::COMPLETION_ROUTINE_CHANGED_IRQL,
                    routine as u64,
                    irql.0 as u64,
                    irql.1 as u64,
                ],
            )
        } else if apc.0 != apc.1 {
            self.dv(
                self.f.io_verification,
                [
                    vl::COMPLETION_ROUTINE_CHANGED_APC_DISABLE,
                    routine as u64,
                    combined(apc.1),
                    combined(apc.0),
                ],
            )
        } else {
            None
        };
        bc.map(|b| b.at(routine))
    }

    /// A spin lock or fast mutex released that nobody holds: 0xC4/0x1007 (deadlock detection:
    /// "a resource is released before it has been acquired", p2 the lock).
    pub(crate) fn on_release_unacquired(&self, lock: usize) -> Option<Bc> {
        self.dv(
            self.f.deadlock_detection,
            [vl::UNACQUIRED_LOCK_RELEASED, lock as u64, 0, 0],
        )
    }

    /// `ExAcquireFastMutex` / `ExTryToAcquireFastMutex` above APC_LEVEL: 0xC4/0x33 (p2 IRQL,
    /// p3 the fast mutex).
    pub(crate) fn on_acquire_fast_mutex(&self, irql: KIRQL, mutex: usize) -> Option<Bc> {
        (irql > APC_LEVEL)
            .then(|| {
                self.dv(
                    self.f.irql_checking,
                    [
                        vl::ACQUIRE_FAST_MUTEX_ABOVE_APC,
                        irql as u64,
                        mutex as u64,
                        0,
                    ],
                )
            })
            .flatten()
    }

    /// `ExReleaseFastMutex` at an IRQL other than APC_LEVEL: 0xC4/0x34 (p2 IRQL, p3 mutex).
    pub(crate) fn on_release_fast_mutex(&self, irql: KIRQL, mutex: usize) -> Option<Bc> {
        (irql != APC_LEVEL)
            .then(|| {
                self.dv(
                    self.f.irql_checking,
                    [
                        vl::RELEASE_FAST_MUTEX_NOT_AT_APC,
                        irql as u64,
                        mutex as u64,
                        0,
                    ],
                )
            })
            .flatten()
    }

    /// The "unsafe" mutex calls (`ExAcquire/ReleaseFastMutexUnsafe`,
    /// `KeAcquire/ReleaseGuardedMutexUnsafe`) need APC_LEVEL, or APCs disabled below it:
    /// 0xC4/0x39 (acquire) or 0x3A (release), p2 IRQL, p3 the APC-disable count, p4 the mutex.
    pub(crate) fn on_mutex_unsafe(
        &self,
        release: bool,
        irql: KIRQL,
        apc: (i16, i16),
        mutex: usize,
    ) -> Option<Bc> {
        let disabled = apc.0 != 0 || apc.1 != 0;
        let ok = irql == APC_LEVEL || (irql < APC_LEVEL && disabled);
        if ok {
            return None;
        }
        let p1 = if release {
            vl::RELEASE_MUTEX_UNSAFE_BAD_IRQL
        } else {
            vl::ACQUIRE_MUTEX_UNSAFE_BAD_IRQL
        };
        self.dv(
            self.f.irql_checking,
            [p1, irql as u64, combined(apc), mutex as u64],
        )
    }

    /// An ERESOURCE acquired (0xC4/0x37) or released (0x38) with normal kernel APCs enabled
    /// below APC_LEVEL (no KeEnterCriticalRegion): p2 IRQL, p3 the APC-disable count, p4 the
    /// resource. Microsoft, *ExAcquireResourceExclusiveLite*: "normal kernel APC delivery must
    /// be disabled".
    pub(crate) fn on_resource_apcs(
        &self,
        release: bool,
        irql: KIRQL,
        apc: (i16, i16),
        resource: usize,
    ) -> Option<Bc> {
        if irql >= APC_LEVEL || apc.0 != 0 || apc.1 != 0 {
            return None;
        }
        let p1 = if release {
            vl::RELEASE_RESOURCE_APCS_ENABLED
        } else {
            vl::ACQUIRE_RESOURCE_APCS_ENABLED
        };
        self.dv(
            self.f.irql_checking,
            [p1, irql as u64, combined(apc), resource as u64],
        )
    }

    /// A thread that already owns a resource shared asks for it exclusive and would wait for
    /// itself: 0xC4/0x1000 (deadlock detection: "self-deadlock", p2 the resource).
    pub(crate) fn on_resource_self_deadlock(&self, resource: usize) -> Option<Bc> {
        self.dv(
            self.f.deadlock_detection,
            [vl::SELF_DEADLOCK, resource as u64, 0, 0],
        )
    }

    /// `ExInitializeResourceLite` on a live resource: 0xC4/0xD0 (p2 the resource).
    pub(crate) fn on_resource_reinitialized(&self, resource: usize) -> Option<Bc> {
        self.dv(
            self.f.misc_checks,
            [vl::RESOURCE_REINITIALIZED, resource as u64, 0, 0],
        )
    }

    /// `ExDeleteResourceLite` (or `ExReinitializeResourceLite`) on a resource never
    /// initialized: 0xC4/0xD1 (p2 the resource).
    pub(crate) fn on_resource_uninitialized(&self, resource: usize) -> Option<Bc> {
        self.dv(
            self.f.misc_checks,
            [vl::RESOURCE_DELETE_UNINITIALIZED, resource as u64, 0, 0],
        )
    }

    /// Pool being freed still holds an initialized ERESOURCE (never deleted): 0xC4/0xD2 (p2 the
    /// resource, p3 the block, p4 its size).
    pub(crate) fn on_resource_in_freed_pool(
        &self,
        resource: usize,
        block: usize,
        size: usize,
    ) -> Option<Bc> {
        self.dv(
            self.f.misc_checks,
            [
                vl::RESOURCE_IN_FREED_POOL,
                resource as u64,
                block as u64,
                size as u64,
            ],
        )
    }

    /// `ExDeleteResourceLite` while a thread owns the resource: 0xC4/0x100B (deadlock
    /// detection: "the deleted lock is still owned by a thread", p2 the lock, p3 the owner).
    pub(crate) fn on_delete_owned_lock(&self, lock: usize, owner: usize) -> Option<Bc> {
        self.dv(
            self.f.deadlock_detection,
            [vl::DELETED_LOCK_STILL_OWNED, lock as u64, owner as u64, 0],
        )
    }

    /// Releasing a resource the thread does not own: ntoskrnl's own 0xE3 RESOURCE_NOT_OWNED
    /// (p1 the resource, p2 the thread, p3 the owner table — ntsim keeps none: 0, p4 0).
    pub(crate) fn on_resource_not_owned(&self, resource: usize, thread: usize) -> Bc {
        Bc::new(
            bugcheck::RESOURCE_NOT_OWNED,
            [resource as u64, thread as u64, 0, 0],
        )
    }

    /// `KeEnterCriticalRegion` (0xC4/0x11A) or `KeLeaveCriticalRegion` (0x11B) above
    /// APC_LEVEL (p2 IRQL).
    pub(crate) fn on_critical_region_irql(&self, leave: bool, irql: KIRQL) -> Option<Bc> {
        if irql <= APC_LEVEL {
            return None;
        }
        let p1 = if leave {
            vl::LEAVE_CRITICAL_REGION_ABOVE_APC
        } else {
            vl::ENTER_CRITICAL_REGION_ABOVE_APC
        };
        self.dv(self.f.irql_checking, [p1, irql as u64, 0, 0])
    }

    /// `KeLeaveCriticalRegion` on a thread that is not in one: 0xC4/0x3E (p2–p4 0).
    pub(crate) fn on_leave_critical_region_unbalanced(&self) -> Option<Bc> {
        self.dv(
            self.f.misc_checks,
            [vl::LEAVE_CRITICAL_REGION_NOT_IN_ONE, 0, 0, 0],
        )
    }

    /// A driver routine returned to the I/O manager (`worker` false: a dispatch routine, as a
    /// system service returns; true: a work item's routine) with the thread's APC-disable
    /// count changed. Dispatch routines with I/O verification: 0xC4/0xC5 (p2 the routine, p3 the
    /// count now, p4 the count before). Otherwise ntoskrnl's own 0x1 APC_INDEX_MISMATCH
    /// (p1 the routine, p2 ApcStateIndex — always 0 here, p3 the combined count, p4 0 system
    /// call / 1 worker routine).
    pub(crate) fn on_apc_disable_changed(
        &self,
        worker: bool,
        routine: usize,
        now: (i16, i16),
        before: (i16, i16),
    ) -> Option<Bc> {
        if now == before {
            return None;
        }
        if !worker && self.f.io_verification {
            return Some(
                Bc::verifier(
                    bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                    [
                        vl::DISPATCH_CHANGED_APC_DISABLE,
                        routine as u64,
                        combined(now),
                        combined(before),
                    ],
                )
                .at(routine),
            );
        }
        let kind = if worker {
            apc_index_mismatch::WORKER_ROUTINE
        } else {
            apc_index_mismatch::SYSTEM_CALL
        };
        Some(
            Bc::new(
                bugcheck::APC_INDEX_MISMATCH,
                [routine as u64, 0, combined(now), kind],
            )
            .at(routine),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::VerifierFlags;

    #[test]
    fn lock_rules_follow_their_options() {
        let on = Hooks::new(VerifierFlags::ALL);
        let off = Hooks::new(VerifierFlags {
            special_pool: false,
            pool_tracking: false,
            irql_checking: false,
            io_verification: false,
            misc_checks: false,
            deadlock_detection: false,
            security_checks: false,
        });
        assert!(on.on_acquire_fast_mutex(DISPATCH_LEVEL, 8).is_some());
        assert!(on.on_acquire_fast_mutex(APC_LEVEL, 8).is_none());
        assert!(off.on_acquire_fast_mutex(DISPATCH_LEVEL, 8).is_none());
        assert!(
            on.on_mutex_unsafe(false, PASSIVE_LEVEL, (-1, 0), 8)
                .is_none()
        );
        assert!(
            on.on_mutex_unsafe(false, PASSIVE_LEVEL, (0, 0), 8)
                .is_some()
        );
        assert!(on.on_resource_apcs(false, APC_LEVEL, (0, 0), 8).is_none());
        assert_eq!(combined((-1, -1)), 0xFFFF_FFFF);
        // Without I/O verification a dispatch routine's imbalance is ntoskrnl's 0x1.
        let bc = off
            .on_apc_disable_changed(false, 0x1000, (-1, 0), (0, 0))
            .expect("0x1");
        assert_eq!(
            (bc.code, bc.p),
            (bugcheck::APC_INDEX_MISMATCH, [0x1000, 0, 0xFFFF, 0])
        );
    }
}
