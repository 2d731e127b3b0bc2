//! Driver Verifier rules: the bug-check record ([`BugCheck`]), what each rule means, which
//! rules Windows only documents (does not check at run time), and the verifier's hooks
//! ([`Hooks`]) that the subsystems call at their decision points (`on_pool_alloc`,
//! `on_pool_free`, `on_work_item_init`, `on_irp_complete`, …). A hook returns the bug check to
//! raise, or `None`; with `--verifier off` every verifier-only hook returns `None`, so no
//! subsystem tests "is the verifier on" itself. This module is a leaf: it imports no subsystem.
//!
//! Parameter conventions used by ntsim (Microsoft's bug-check reference where it defines them):
//!
//! | code / p1 | p2 | p3 | p4 | on by default without verifier |
//! |---|---|---|---|---|
//! | 0xE4 / 0 active item in freed pool | item | pool block start | pool block end | queued item: yes; initialized-only item: verifier, documented-only |
//! | 0xE4 / 1 queued twice | item | queue type | 0 | yes |
//! | 0xE4 / 2 queued item freed/uninitialized (re-initialized: documented-only) | item | routine it was queued with | 0 | yes |
//! | 0xE4 / 3 bad IoObject (IoQueueWorkItem with a driver object: documented-only) | item | IoObject | 0 | yes |
//! | 0xE4 / 6 bad queue type | item | queue type | 0 | yes |
//! | 0xE4 / 7 bad routine (null, or outside the driver's image) | item | queue type | 0 | yes |
//! | 0xE1 returned at bad IRQL | routine (p1; Windows: nt!IopProcessWorkItem) | IRQL (p2) | item (p3, the work item's parameter) | item (p4) — same order as 0x128/0x15B |
//! | 0xC4 / 0x00 zero-byte alloc | IRQL | pool flags | 0 | verifier |
//! | 0xC4 / 0x01 paged alloc above APC | IRQL | pool flags | size | verifier |
//! | 0xC4 / 0x02 nonpaged alloc above DISPATCH | IRQL | pool flags | size | verifier |
//! | 0xC4 / 0x10 free of a bad address | address | 0 | 0 | verifier (off: 0xC2/0x99) |
//! | 0xC4 / 0x11 paged pool freed above APC | IRQL | 1 (paged) | address | verifier |
//! | 0xC4 / 0x12 pool freed above DISPATCH | IRQL | 0 | address | verifier |
//! | 0xC4 / 0x14 double free | 0 | address | size | verifier (off: 0xC2/0x07) |
//! | 0xC4 / 0x32 KeReleaseSpinLock not at DISPATCH | IRQL | lock | 0 | verifier |
//! | 0xC4 / 0x3F ObDereference underflow | object | 0 | 0 | verifier |
//! | 0xC4 / 0x62 pool leaked at unload | DriverName (UNICODE_STRING*) | DRIVER_OBJECT | leaked allocations | verifier |
//! | 0xC4 / 0x131 work item not in nonpaged memory | item | 0 | 0 | verifier (stack: documented-only) |
//! | 0xC4 / 0x2000 executable pool (POOL_FLAG_NON_PAGED_EXECUTE) | caller address | pool flags | tag | verifier |
//! | 0xC2 / 0x0A free with wrong tag | address | allocation tag | tag passed | yes |
//! | 0xCE unload with work items queued, or running past the grace period (documented-only) | routine | 0 | item (p4 = DriverUnload) | misc_checks (off: reported as a leak) |
//! | 0xC9 / 0x06 complete with STATUS_PENDING or -1 | status | IRP | 0 | verifier |
//! | 0xC9 / 0x0E complete above DISPATCH | IRQL | IRP | 0 | verifier |
//! | 0xC9 / 0x226 dispatch returned neither completing nor pending | dispatch routine | IRP | returned status | verifier |
//! | 0xC9 / 0x312 Information > OutputBufferLength | IRP | Information | OutputBufferLength | verifier |
//! | 0xD6 work-item storage ends before IoSizeofWorkItem() bytes (pool block too small) | block end | 1 (write) | caller | special_pool (off: the write is clipped) |
//! | 0xD6 access to a special-pool guard page | address | 0 read / 1 write | code address | special_pool (block > 4080 bytes: documented-only) |
//! | 0xD5 access to a freed special-pool block (quarantine) | address | 0 read / 1 write | code address | special_pool |
//! | 0xC1 pattern around a special-pool block overwritten, at free | block | corrupted byte | 0 | special_pool; p4 = 0x24 after the end, 0x23 before it |
//! | 0x44 IRP completed twice (CurrentLocation > StackCount + 1), or not in flight | IRP | 0 | 0 | yes |
//! | 0x35 IoCallDriver with no stack location left | IRP | 0 | 0 | yes |
//! | 0xC9 / 0x01, 0x02 IoFreeIrp of a non-IRP / an IRP a thread owns | IRP | 0 | 0 | verifier |
//! | 0xC9 / 0x03, 0x04 IoCallDriver with a non-IRP / a non-device | IRP / device | 0 | 0 | verifier |
//! | 0xC9 / 0x05 IRQL changed across a dispatch routine | device | IRQL before | IRQL after | verifier |
//! | 0xC9 / 0x07 complete with a cancel routine set | routine | IRP | 0 | verifier |
//! | 0xC9 / 0x10 IoCallDriver above DISPATCH_LEVEL | IRQL | 0 | 0 | verifier |
//! | 0xC9 / 0x201, 0x202 (IoDeleteDevice still attached, IoDetachDevice not attached) | call site | 0 | device | verifier |
//! | 0xC9 / 0x203, 0x204, 0x20B (IoCallDriver with a cancel routine / NULL device, IoFreeIrp in use) | call site | IRP | device or 0 | verifier |
//! | 0xC9 / 0x23D, 0x23E (STATUS_PENDING vs IoMarkIrpPending) | dispatch routine | IRP | device | verifier |
//! | 0x18 reference to a deleted object | object | 0 | 0 | yes |
//! | 0x7F / 8 double fault: kernel stack overflow (guard page below the thread's stack hit) | stack address that faulted | low end of the stack | faulting instruction | yes (Windows' p2–p4 are processor state) |
use std::fmt;

use nt_abi::bugcheck::*;

mod deadlock;
mod hooks;
mod iorules;
mod locks;
pub(crate) use deadlock::LockKind;
pub(crate) use hooks::Hooks;
pub(crate) use iorules::{CallDriver, no_more_irp_stack_locations};
pub(crate) use locks::combined as combined_apc_disable;

/// A bug check: the emulated machine stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BugCheck {
    pub code: u32,
    pub parameters: [u64; 4],
    /// Symbolic name (e.g. `WORKER_INVALID`).
    pub name: &'static str,
    /// What the rule means.
    pub meaning: String,
    /// Where it happened: `image.sys+0x1234` (the return address of the export call, or the
    /// routine the check is about), `host+0x…` for in-process callers, or `unknown`.
    pub address: String,
    /// What the faulting thread was doing: `DriverEntry`, `IRP_MJ_DEVICE_CONTROL dispatch`,
    /// `work item routine`, `DriverUnload`, `unload audit`, `host kernel thread`.
    pub context: String,
    /// True when Windows documents the rule but does not check it at run time (ntsim is
    /// stricter than Windows here).
    pub documented_only: bool,
    /// True when the rule is a Driver Verifier rule (absent with `--verifier off`).
    pub verifier_rule: bool,
}

impl fmt::Display for BugCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [p1, p2, p3, p4] = self.parameters;
        write!(
            f,
            "*** STOP 0x{:08X} ({}) ({:#x}, {:#x}, {:#x}, {:#x})\n    {}\n    at {} (in {}){}",
            self.code,
            self.name,
            p1,
            p2,
            p3,
            p4,
            self.meaning,
            self.address,
            self.context,
            if self.documented_only {
                "\n    note: documented rule that Windows does not check at run time"
            } else {
                ""
            }
        )
    }
}

impl std::error::Error for BugCheck {}

/// A bug check being raised (before the machine records it).
#[derive(Clone, Debug)]
pub(crate) struct Bc {
    pub code: u32,
    pub p: [u64; 4],
    pub documented_only: bool,
    pub verifier_rule: bool,
    /// Use this address instead of the export caller's return address.
    pub address: Option<usize>,
}

impl Bc {
    pub fn new(code: u32, p: [u64; 4]) -> Self {
        Bc {
            code,
            p,
            documented_only: false,
            verifier_rule: false,
            address: None,
        }
    }
    pub fn verifier(code: u32, p: [u64; 4]) -> Self {
        Bc {
            verifier_rule: true,
            ..Bc::new(code, p)
        }
    }
    /// `WORKER_INVALID` (0xE4), which ntoskrnl's own work-item paths raise (verifier or not).
    pub fn worker_invalid(p: [u64; 4]) -> Self {
        Self::new(WORKER_INVALID, p)
    }
    pub fn documented_only(mut self) -> Self {
        self.documented_only = true;
        self
    }
    pub fn at(mut self, address: usize) -> Self {
        self.address = Some(address);
        self
    }
}

/// What a bug check (code + parameter 1) means.
pub fn meaning(code: u32, p1: u64) -> &'static str {
    if let Some(m) = iorules::meaning(code, p1) {
        return m;
    }
    match (code, p1) {
        (WORKER_INVALID, 0) => "an active work item is in pool that is being freed",
        (WORKER_INVALID, 1) => "a work item that is already queued was queued again",
        (WORKER_INVALID, 2) => "a queued work item was freed or uninitialized",
        (WORKER_INVALID, 3) => {
            "a work item was initialized or queued with an IoObject that is not a device object (or a driver object with the Ex variant)"
        }
        (WORKER_INVALID, 5) => "a work item was queued before the worker queues were initialized",
        (WORKER_INVALID, 6) => "a work item was queued with an invalid WORK_QUEUE_TYPE",
        (WORKER_INVALID, 7) => "a work item was queued with an invalid routine address",
        (WORKER_INVALID, _) => "invalid use of a work item",
        (WORKER_THREAD_RETURNED_AT_BAD_IRQL, _) => {
            "a work item routine returned at IRQL above PASSIVE_LEVEL"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0x00) => {
            "the driver requested a zero-byte pool allocation"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0x02) => {
            "the driver allocated nonpaged pool at IRQL above DISPATCH_LEVEL"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0x10) => {
            "the driver freed an address that no allocation returned"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0x01) => {
            "the driver allocated paged pool at IRQL above APC_LEVEL"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0x11) => {
            "the driver freed paged pool at IRQL above APC_LEVEL"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0x12) => {
            "the driver freed nonpaged pool at IRQL above DISPATCH_LEVEL"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0x13 | 0x14) => {
            "the driver freed pool that was already freed"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0x32) => {
            "KeReleaseSpinLock was called at an IRQL other than DISPATCH_LEVEL"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0x3F) => "an object reference count went below zero",
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0x62) => {
            "the driver unloaded without freeing all of its pool allocations"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0xE0) => "a work item is at a user-mode address",
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0x130) => "a work item is in session space",
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0xE1) => {
            "a synchronization object (event, timer, mutex, semaphore, spin lock, resource, fast mutex) is in pageable memory"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0x131) => {
            "a work item is not in nonpaged system memory (pageable pool, a stack, or memory that is not pool)"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0x0002_0011) => {
            "DDI compliance (IrqlKeDispatchLte): a timer, semaphore, mutex or event routine was called above DISPATCH_LEVEL"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0x0002_001C) => {
            "DDI compliance (IrqlPsPassive): PsCreateSystemThread or PsTerminateSystemThread was called above PASSIVE_LEVEL"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, 0xD5) => {
            "IoReleaseRemoveLock's tag matches no outstanding IoAcquireRemoveLock of the remove lock"
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, p) if locks_meaning(p).is_some() => {
            locks_meaning(p).unwrap_or_default()
        }
        (DRIVER_VERIFIER_DETECTED_VIOLATION, _) => "Driver Verifier detected a violation",
        (RESOURCE_NOT_OWNED, _) => "a thread released an ERESOURCE it does not own",
        (APC_INDEX_MISMATCH, _) => {
            "a driver routine returned with the thread's APC-disable count changed (an unbalanced KeEnterCriticalRegion/KeEnterGuardedRegion, or a guarded mutex or KMUTEX still held)"
        }
        (BAD_POOL_CALLER, 0x07) => "pool that was already freed was freed again",
        (BAD_POOL_CALLER, 0x0A) => "pool was freed with a tag other than the allocation's tag",
        (BAD_POOL_CALLER, 0x99) => "pool was freed at an address that is not a pool allocation",
        (BAD_POOL_CALLER, _) => "invalid pool request",
        (DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, _) => {
            "the driver unloaded while work items it queued, or system threads it created, were still queued or running"
        }
        (MAXIMUM_WAIT_OBJECTS_EXCEEDED, _) => {
            "a wait named more than MAXIMUM_WAIT_OBJECTS objects, or more than THREAD_WAIT_OBJECTS without a wait-block array"
        }
        (KERNEL_APC_PENDING_DURING_EXIT, _) => {
            "a system thread ended at raised IRQL (p3) or with APCs disabled (p2: a mutex still owned)"
        }
        (INVALID_KERNEL_HANDLE, _) => "ZwClose was called with a handle that is not open",
        (ATTEMPTED_SWITCH_FROM_DPC, _) => {
            "a DPC routine waited (or delayed) with a nonzero timeout"
        }
        (TIMER_OR_DPC_INVALID, 0) => {
            "a kernel timer is still set in memory that is being freed or unloaded (p3-p4)"
        }
        (TIMER_OR_DPC_INVALID, 1) => {
            "a DPC is still queued in memory that is being freed or unloaded (p3-p4)"
        }
        (TIMER_OR_DPC_INVALID, _) => {
            "a timer's or queued DPC's routine lies in memory that is being freed or unloaded (p3-p4)"
        }
        (IRQL_UNEXPECTED_VALUE, _) => {
            "a DPC routine returned at an IRQL other than DISPATCH_LEVEL (p1 = current << 16 | expected << 8)"
        }
        (DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x06) => "an IRP was completed with STATUS_PENDING",
        (DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x0E) => {
            "an IRP was completed at IRQL above DISPATCH_LEVEL"
        }
        (DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x226) => {
            "a dispatch routine returned without completing the IRP, passing it down or returning STATUS_PENDING"
        }
        (DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x312) => {
            "IoStatus.Information is larger than the output buffer length"
        }
        (DRIVER_VERIFIER_IOMANAGER_VIOLATION, _) => "I/O verification detected a violation",
        (PROCESS_HAS_LOCKED_PAGES, 0) => "the process ended with pages still locked by an MDL",
        (PROCESS_HAS_LOCKED_PAGES, 1) => "a driver unlocked pages that were not locked",
        (MULTIPLE_IRP_COMPLETE_REQUESTS, _) => "an IRP was completed more than once",
        (REFERENCE_BY_POINTER, _) => "a reference was taken on an object that has been deleted",
        (IRQL_NOT_LESS_OR_EQUAL, _) => {
            "a routine was called at too high an IRQL, or kernel code touched pageable memory for the driver at DISPATCH_LEVEL or above"
        }
        (DRIVER_IRQL_NOT_LESS_OR_EQUAL, _) => {
            "the driver touched pageable memory (paged pool, pageable code or data) at DISPATCH_LEVEL or above"
        }
        (DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION, _) => {
            "the driver accessed memory beyond its pool allocation (special pool's guard page, or work-item storage smaller than IoSizeofWorkItem())"
        }
        (DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, _) => {
            "the driver referenced pool it had freed (special pool keeps freed pages inaccessible)"
        }
        (SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION, _) => {
            "the driver wrote outside its allocation on the block's own page (special pool's pattern was overwritten; found at free)"
        }
        (PAGE_FAULT_IN_NONPAGED_AREA, _) => "driver code referenced invalid memory",
        (KMODE_EXCEPTION_NOT_HANDLED, 0xC000_0096) => {
            "a privileged instruction ntsim does not model (Windows would execute it in kernel mode)"
        }
        (KMODE_EXCEPTION_NOT_HANDLED, _) => {
            "a CPU exception (illegal instruction, breakpoint, divide error) in kernel code was not handled"
        }
        (SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, _) => {
            "an exception on a system thread (DriverEntry, DriverUnload, a work item) that no handler took"
        }
        (SYSTEM_SERVICE_EXCEPTION, _) => {
            "an exception in a dispatch routine serving a user-mode request that no handler took"
        }
        (KERNEL_SECURITY_CHECK_FAILURE, _) => {
            "the driver called __fastfail (int 29h): a security check failed; p1 is the FAST_FAIL code"
        }
        (UNEXPECTED_KERNEL_MODE_TRAP, 0x08) => {
            "double fault: kernel stack overflow in driver code (the thread ran into the guard page below its stack)"
        }
        (UNEXPECTED_KERNEL_MODE_TRAP, _) => {
            "the CPU raised a trap in kernel mode that the kernel does not handle"
        }
        (IRQL_GT_ZERO_AT_SYSTEM_SERVICE, _) => {
            "driver code returned to the I/O manager at raised IRQL"
        }
        (MANUALLY_INITIATED_CRASH, _) => {
            "the driver called KeBugCheckEx (a Rust panic handler does this)"
        }
        _ => "the driver called KeBugCheckEx",
    }
}

/// What the lock and region rules' 0xC4 parameter 1 means (`verifier::locks`).
fn locks_meaning(p1: u64) -> Option<&'static str> {
    use nt_abi::bugcheck::verifier_locks as vl;
    Some(match p1 {
        vl::ACQUIRE_FAST_MUTEX_ABOVE_APC => "a fast mutex was acquired at IRQL above APC_LEVEL",
        vl::RELEASE_FAST_MUTEX_NOT_AT_APC => {
            "a fast mutex was released at an IRQL other than APC_LEVEL"
        }
        vl::ACQUIRE_RESOURCE_APCS_ENABLED => {
            "an ERESOURCE was acquired with normal kernel APCs enabled (no KeEnterCriticalRegion)"
        }
        vl::RELEASE_RESOURCE_APCS_ENABLED => {
            "an ERESOURCE was released with normal kernel APCs enabled"
        }
        vl::ACQUIRE_MUTEX_UNSAFE_BAD_IRQL => {
            "a mutex was acquired \"unsafe\" below APC_LEVEL with APCs enabled"
        }
        vl::RELEASE_MUTEX_UNSAFE_BAD_IRQL => {
            "a mutex was released \"unsafe\" below APC_LEVEL with APCs enabled"
        }
        vl::LEAVE_CRITICAL_REGION_NOT_IN_ONE => {
            "KeLeaveCriticalRegion was called on a thread that is not in a critical region"
        }
        vl::ACQUIRE_SPINLOCK_AT_DPC_BELOW_DISPATCH => {
            "KeAcquireSpinLockAtDpcLevel was called below DISPATCH_LEVEL"
        }
        vl::RELEASE_SPINLOCK_FROM_DPC_BELOW_DISPATCH => {
            "KeReleaseSpinLockFromDpcLevel was called below DISPATCH_LEVEL"
        }
        vl::ACQUIRE_SPINLOCK_ABOVE_DISPATCH => {
            "a spin lock was acquired at IRQL above DISPATCH_LEVEL"
        }
        vl::DISPATCH_CHANGED_APC_DISABLE => {
            "a dispatch routine returned with the thread's APC-disable count changed"
        }
        vl::RESOURCE_REINITIALIZED => "an ERESOURCE that is in use was initialized again",
        vl::RESOURCE_DELETE_UNINITIALIZED => {
            "an ERESOURCE that was never initialized was used or deleted"
        }
        vl::RESOURCE_IN_FREED_POOL => {
            "pool was freed that still holds an initialized ERESOURCE (ExDeleteResourceLite was not called)"
        }
        vl::ENTER_CRITICAL_REGION_ABOVE_APC => "KeEnterCriticalRegion was called above APC_LEVEL",
        vl::LEAVE_CRITICAL_REGION_ABOVE_APC => "KeLeaveCriticalRegion was called above APC_LEVEL",
        vl::SELF_DEADLOCK => {
            "a thread asked for a resource it would wait on itself (shared owner acquiring exclusive)"
        }
        vl::UNACQUIRED_LOCK_RELEASED => "a lock was released that nobody holds",
        vl::DELETED_LOCK_STILL_OWNED => "a lock was deleted while a thread still owns it",
        _ => return None,
    })
}

/// Build the public record.
pub(crate) fn finish(bc: &Bc, address: String, context: String) -> BugCheck {
    BugCheck {
        code: bc.code,
        parameters: bc.p,
        name: bugcheck_name_ext(bc.code),
        meaning: meaning(bc.code, bc.p[0]).to_string(),
        address,
        context,
        documented_only: bc.documented_only,
        verifier_rule: bc.verifier_rule,
    }
}
