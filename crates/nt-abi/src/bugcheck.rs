//! Bug-check codes and the sub-codes (parameter 1) that the work-item paths and Driver Verifier
//! raise. Meanings follow Microsoft's bug-check reference.

pub const APC_INDEX_MISMATCH: u32 = 0x01;
pub const REFERENCE_BY_POINTER: u32 = 0x18;
pub const MUTEX_LEVEL_NUMBER_VIOLATION: u32 = 0x0D;
pub const DRIVER_VERIFIER_DETECTED_VIOLATION: u32 = 0xC4;
/// `PROCESS_HAS_LOCKED_PAGES`: p1 = 0 a process ended with pages still locked (p2 process,
/// p3 locked pages, p4 driver stacks or 0); p1 = 1 a driver unlocked pages that were not
/// locked (p2 MDL, p3 pages locked in the process, p4 0). Microsoft, *Bug Check 0x76*.
pub const PROCESS_HAS_LOCKED_PAGES: u32 = 0x76;
pub const BAD_POOL_CALLER: u32 = 0xC2;
pub const DRIVER_VERIFIER_IOMANAGER_VIOLATION: u32 = 0xC9;
pub const DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS: u32 = 0xCE;
pub const WORKER_THREAD_RETURNED_AT_BAD_IRQL: u32 = 0xE1;
pub const WORKER_INVALID: u32 = 0xE4;
pub const IRQL_NOT_LESS_OR_EQUAL: u32 = 0x0A;
pub const DRIVER_IRQL_NOT_LESS_OR_EQUAL: u32 = 0xD1;
pub const KMODE_EXCEPTION_NOT_HANDLED: u32 = 0x1E;
/// Raised by wdk-panic (and our panic handler) when Rust code panics.
pub const MANUALLY_INITIATED_CRASH: u32 = 0xE2;
/// `UNEXPECTED_KERNEL_MODE_TRAP`: the CPU raised a trap the kernel does not catch (p1 = the trap
/// number, see [`kernel_mode_trap`]).
pub const UNEXPECTED_KERNEL_MODE_TRAP: u32 = 0x7F;

/// `UNEXPECTED_KERNEL_MODE_TRAP` (0x7F) parameter 1: the x86 trap (interrupt vector) number.
pub mod kernel_mode_trap {
    /// Trap 8, double fault: an exception while delivering an earlier one. The common software
    /// cause is a kernel stack overflow (the guard page is hit and no stack is left to push the
    /// trap frame on).
    pub const DOUBLE_FAULT: u64 = 0x08;
}

/// `WORKER_INVALID` (0xE4) parameter 1.
pub mod worker_invalid {
    pub const ACTIVE_ITEM_IN_FREED_POOL: u64 = 0;
    pub const QUEUED_ITEM_REQUEUED: u64 = 1;
    pub const QUEUED_ITEM_FREED: u64 = 2;
    pub const INVALID_IO_OBJECT: u64 = 3;
    /// Queued before the worker queues were initialized (p4 = the NUMA node, or -1).
    pub const QUEUED_BEFORE_WORKER_QUEUES_INITIALIZED: u64 = 5;
    pub const INVALID_QUEUE_TYPE: u64 = 6;
    pub const INVALID_ROUTINE: u64 = 7;
}

/// `DRIVER_VERIFIER_DETECTED_VIOLATION` (0xC4) parameter 1.
pub mod verifier {
    pub const ZERO_BYTE_ALLOCATION: u64 = 0x00;
    pub const PAGED_ALLOC_ABOVE_APC: u64 = 0x01;
    pub const NONPAGED_ALLOC_ABOVE_DISPATCH: u64 = 0x02;
    pub const FREE_BAD_ADDRESS: u64 = 0x10;
    pub const PAGED_FREE_ABOVE_APC: u64 = 0x11;
    pub const NONPAGED_FREE_ABOVE_DISPATCH: u64 = 0x12;
    /// 0x13 and 0x14 both mean "freed pool that was already freed"; ntsim raises 0x14.
    pub const DOUBLE_FREE: u64 = 0x14;
    pub const RELEASE_SPINLOCK_NOT_AT_DISPATCH: u64 = 0x32;
    pub const REFERENCE_COUNT_UNDERFLOW: u64 = 0x3F;
    pub const POOL_LEAKED_AT_UNLOAD: u64 = 0x62;
    pub const WORK_ITEM_AT_USER_ADDRESS: u64 = 0xE0;
    /// A synchronization object (KEVENT, KTIMER, KSPIN_LOCK, ERESOURCE…) in pageable memory.
    pub const SYNC_OBJECT_PAGEABLE: u64 = 0xE1;
    pub const WORK_ITEM_IN_SESSION_SPACE: u64 = 0x130;
    /// An IRP whose RequestorMode is KernelMode holds a user-mode address (p2 the IRP, p3 the
    /// address).
    pub const KERNEL_IRP_WITH_USER_ADDRESS: u64 = 0xE2;
    pub const WORK_ITEM_IN_PAGEABLE_MEMORY: u64 = 0x131;
    pub const EXECUTABLE_POOL: u64 = 0x2000;
}

/// `BAD_POOL_CALLER` (0xC2) parameter 1.
pub mod bad_pool_caller {
    pub const FREE_WRONG_TAG: u64 = 0x0A;
}

/// `DRIVER_VERIFIER_IOMANAGER_VIOLATION` (0xC9) parameter 1.
pub mod io_verifier {
    pub const COMPLETED_WITH_STATUS_PENDING: u64 = 0x06;
    pub const COMPLETED_ABOVE_DISPATCH: u64 = 0x0E;
    pub const DISPATCH_RETURNED_WITHOUT_COMPLETING: u64 = 0x226;
    pub const INFORMATION_EXCEEDS_OUTPUT: u64 = 0x312;
}

/// The symbolic name of a bug-check code.
pub fn bugcheck_name(code: u32) -> &'static str {
    match code {
        APC_INDEX_MISMATCH => "APC_INDEX_MISMATCH",
        REFERENCE_BY_POINTER => "REFERENCE_BY_POINTER",
        MUTEX_LEVEL_NUMBER_VIOLATION => "MUTEX_LEVEL_NUMBER_VIOLATION",
        DRIVER_VERIFIER_DETECTED_VIOLATION => "DRIVER_VERIFIER_DETECTED_VIOLATION",
        BAD_POOL_CALLER => "BAD_POOL_CALLER",
        PROCESS_HAS_LOCKED_PAGES => "PROCESS_HAS_LOCKED_PAGES",
        DRIVER_VERIFIER_IOMANAGER_VIOLATION => "DRIVER_VERIFIER_IOMANAGER_VIOLATION",
        DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS => {
            "DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS"
        }
        WORKER_THREAD_RETURNED_AT_BAD_IRQL => "WORKER_THREAD_RETURNED_AT_BAD_IRQL",
        WORKER_INVALID => "WORKER_INVALID",
        IRQL_NOT_LESS_OR_EQUAL => "IRQL_NOT_LESS_OR_EQUAL",
        DRIVER_IRQL_NOT_LESS_OR_EQUAL => "DRIVER_IRQL_NOT_LESS_OR_EQUAL",
        KMODE_EXCEPTION_NOT_HANDLED => "KMODE_EXCEPTION_NOT_HANDLED",
        MANUALLY_INITIATED_CRASH => "MANUALLY_INITIATED_CRASH",
        UNEXPECTED_KERNEL_MODE_TRAP => "UNEXPECTED_KERNEL_MODE_TRAP",
        DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL => "DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL",
        PAGE_FAULT_IN_NONPAGED_AREA => "PAGE_FAULT_IN_NONPAGED_AREA",
        SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION => "SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION",
        DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION => "DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION",
        _ => "UNKNOWN_BUGCHECK",
    }
}

/// `MULTIPLE_IRP_COMPLETE_REQUESTS`: an IRP was completed twice (p1 = the IRP).
pub const MULTIPLE_IRP_COMPLETE_REQUESTS: u32 = 0x44;
/// `IRQL_GT_ZERO_AT_SYSTEM_SERVICE`: a request returned to its caller at raised IRQL.
pub const IRQL_GT_ZERO_AT_SYSTEM_SERVICE: u32 = 0x4A;
/// `PAGE_FAULT_IN_NONPAGED_AREA`: invalid memory referenced (p1 = address referenced,
/// p2 = 0 read / 1 write / 10 execute, p3 = the instruction's address, p4 = reserved).
pub const PAGE_FAULT_IN_NONPAGED_AREA: u32 = 0x50;
/// `DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION` (special pool): an access past the end of a
/// pool block (p1 = address referenced, p2 = 1 for a write, p3 = the code address, p4 = 0).
pub const DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION: u32 = 0xD6;
/// `DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL` (special pool): a driver referenced memory it
/// freed (p1 = address referenced, p2 = 0 read / 1 write, p3 = the code address, p4 = 0).
pub const DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL: u32 = 0xD5;
/// `SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION` (special pool): parameter **4** says what
/// ([`special_pool`]).
pub const SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION: u32 = 0xC1;

/// `SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION` (0xC1) parameter-4 values (Microsoft, *Bug Check
/// 0xC1*).
pub mod special_pool {
    /// Free of pool that was not allocated (p1 = address, p3 = 0).
    pub const FREE_NOT_ALLOCATED: u64 = 0x20;
    /// Free of a bad address (p1 = address, p2 = bytes requested, p3 = bytes given).
    pub const FREE_BAD_ADDRESS: u64 = 0x21;
    /// Freed, but nearby bytes on the same page were corrupted (p1 = address, p2 = where).
    pub const NEARBY_BYTES_CORRUPTED: u64 = 0x23;
    /// Freed, but bytes after the end of the allocation were overwritten (p1 = address,
    /// p2 = where).
    pub const BYTES_AFTER_END_OVERWRITTEN: u64 = 0x24;
}

/// More `BAD_POOL_CALLER` (0xC2) parameter-1 values.
pub mod bad_pool_caller_ext {
    /// Attempt to free pool that was already freed (p2 = reserved, p3 = header, p4 = contents).
    pub const DOUBLE_FREE: u64 = 0x07;
    /// Attempt to free pool at an address that was never allocated (p2 = the address).
    pub const FREE_INVALID_ADDRESS: u64 = 0x99;
}

/// The symbolic name of a bug-check code, including the codes added after [`bugcheck_name`].
pub fn bugcheck_name_ext(code: u32) -> &'static str {
    match code {
        MULTIPLE_IRP_COMPLETE_REQUESTS => "MULTIPLE_IRP_COMPLETE_REQUESTS",
        IRQL_GT_ZERO_AT_SYSTEM_SERVICE => "IRQL_GT_ZERO_AT_SYSTEM_SERVICE",
        DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION => "DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION",
        PAGE_FAULT_IN_NONPAGED_AREA => "PAGE_FAULT_IN_NONPAGED_AREA",
        IRQL_NOT_GREATER_OR_EQUAL => "IRQL_NOT_GREATER_OR_EQUAL",
        SYSTEM_SERVICE_EXCEPTION => "SYSTEM_SERVICE_EXCEPTION",
        SYSTEM_THREAD_EXCEPTION_NOT_HANDLED => "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED",
        KERNEL_SECURITY_CHECK_FAILURE => "KERNEL_SECURITY_CHECK_FAILURE",
        NO_MORE_IRP_STACK_LOCATIONS => "NO_MORE_IRP_STACK_LOCATIONS",
        RESOURCE_NOT_OWNED => "RESOURCE_NOT_OWNED",
        other => bugcheck_name_kernel_services(other).unwrap_or_else(|| bugcheck_name(other)),
    }
}

/// `IRQL_NOT_GREATER_OR_EQUAL` (0x09): `KeRaiseIrql` asked for an IRQL below the current one
/// (p1 = the current IRQL, p2 = the requested IRQL; Windows' p1 is the IRQL "at time of
/// fault").
pub const IRQL_NOT_GREATER_OR_EQUAL: u32 = 0x09;
/// `SYSTEM_SERVICE_EXCEPTION` (0x3B): an exception nobody handled while kernel code ran on behalf
/// of a system service called from user mode (p1 = exception code, p2 = its address,
/// p3 = the context record, p4 = 0).
pub const SYSTEM_SERVICE_EXCEPTION: u32 = 0x3B;
/// `SYSTEM_THREAD_EXCEPTION_NOT_HANDLED` (0x7E): an exception nobody handled on a system thread
/// (p1 = exception code, p2 = its address, p3 = the exception record, p4 = the context record).
pub const SYSTEM_THREAD_EXCEPTION_NOT_HANDLED: u32 = 0x7E;
/// `KERNEL_SECURITY_CHECK_FAILURE` (0x139): `__fastfail` / `int 29h` in kernel mode
/// (p1 = the fast-fail code, p2 = the trap frame, p3 = the exception record, p4 = reserved).
pub const KERNEL_SECURITY_CHECK_FAILURE: u32 = 0x139;

/// More `DRIVER_VERIFIER_DETECTED_VIOLATION` (0xC4) parameter-1 values: IRQL changes.
pub mod verifier_irql {
    /// "The driver tried to raise IRQL to a value lower than the current IRQL"
    /// (p2 = current IRQL, p3 = requested IRQL).
    pub const RAISE_IRQL_TO_LOWER: u64 = 0x30;
    /// "The driver tried to lower IRQL to a value higher than the current IRQL"
    /// (p2 = current IRQL, p3 = requested IRQL).
    pub const LOWER_IRQL_TO_HIGHER: u64 = 0x31;
}

// ---- stream ioverify: IRP forwarding and I/O verification ----------------------------------

/// `NO_MORE_IRP_STACK_LOCATIONS` (0x35): IoCallDriver on an IRP with no stack location left
/// (p1 = the IRP, p2–p4 reserved). Microsoft, *Bug Check 0x35*.
pub const NO_MORE_IRP_STACK_LOCATIONS: u32 = 0x35;

/// More `DRIVER_VERIFIER_IOMANAGER_VIOLATION` (0xC9) parameter-1 values (Microsoft, *Bug Check
/// 0xC9*). Codes 0x200 and above are the "WDM DRIVER ERROR" codes, whose crash-dump parameters
/// are p2 = the address in the driver where the error was detected, p3 = the IRP, p4 = the
/// device object.
pub mod iomanager {
    /// IoFreeIrp on an object whose Type is not IO_TYPE_IRP (p2 = the IRP).
    pub const FREE_NOT_AN_IRP: u64 = 0x01;
    /// IoFreeIrp on an IRP still associated with a thread (p2 = the IRP).
    pub const FREE_IRP_OF_A_THREAD: u64 = 0x02;
    /// IoCallDriver with an IRP whose Type is not IO_TYPE_IRP (p2 = the IRP).
    pub const CALL_NOT_AN_IRP: u64 = 0x03;
    /// IoCallDriver with an invalid device object (p2 = the device object).
    pub const CALL_INVALID_DEVICE: u64 = 0x04;
    /// The IRQL changed across a dispatch routine (p2 = device, p3 before, p4 after).
    pub const IRQL_CHANGED_BY_DISPATCH: u64 = 0x05;
    /// IoCompleteRequest with STATUS_PENDING or -1 (p2 = the status, p3 = the IRP).
    pub const COMPLETED_WITH_INVALID_STATUS: u64 = 0x06;
    /// IoCompleteRequest with a cancel routine still set (p2 = the routine, p3 = the IRP).
    pub const COMPLETED_WITH_CANCEL_ROUTINE: u64 = 0x07;
    /// IoCallDriver above DISPATCH_LEVEL (p2 = the IRQL).
    pub const CALL_ABOVE_DISPATCH: u64 = 0x10;
    /// WDM DRIVER ERROR 0x201: IoDeleteDevice of a device still attached to a device below it.
    pub const DELETE_ATTACHED_DEVICE: u64 = 0x201;
    /// WDM DRIVER ERROR 0x202: IoDetachDevice of a device nothing is attached to.
    pub const DETACH_NOT_ATTACHED: u64 = 0x202;
    /// WDM DRIVER ERROR 0x204: IoCallDriver with a NULL device object.
    pub const CALL_NULL_DEVICE: u64 = 0x204;
    /// WDM DRIVER ERROR 0x203: IoCallDriver with a cancel routine still set in the IRP.
    pub const CALL_WITH_CANCEL_ROUTINE: u64 = 0x203;
    /// WDM DRIVER ERROR 0x20B: IoFreeIrp on an IRP that is still in use (sent, not completed).
    pub const FREE_IRP_IN_USE: u64 = 0x20B;
    /// WDM DRIVER ERROR 0x207: a forwarded IRP's next stack location carries the caller's own
    /// completion routine (the stack location was copied by hand).
    pub const COPIED_UPPER_COMPLETION_ROUTINE: u64 = 0x207;
    /// WDM DRIVER ERROR 0x225: a dispatch routine returned the illegal status 0xFFFFFFFF.
    pub const DISPATCH_RETURNED_ILLEGAL_STATUS: u64 = 0x225;
    /// WDM DRIVER ERROR 0x227: an IRP completion routine in pageable code.
    pub const PAGEABLE_COMPLETION_ROUTINE: u64 = 0x227;
    /// WDM DRIVER ERROR 0x240: IoDeleteDevice of a device object already deleted.
    pub const DELETE_DELETED_DEVICE: u64 = 0x240;
    /// WDM DRIVER ERROR 0x245: a device with both DO_BUFFERED_IO and DO_DIRECT_IO set.
    pub const BUFFERED_AND_DIRECT_IO: u64 = 0x245;
    /// WDM DRIVER ERROR 0x23D: STATUS_PENDING returned without IoMarkIrpPending.
    pub const PENDING_NOT_MARKED: u64 = 0x23D;
    /// WDM DRIVER ERROR 0x23E: IoMarkIrpPending, but a status other than STATUS_PENDING returned.
    pub const MARKED_NOT_PENDING: u64 = 0x23E;
}

// Dispatcher objects, DPCs, timers and system threads (stream kedispatch).

/// `MAXIMUM_WAIT_OBJECTS_EXCEEDED` (0xC): a wait named more than MAXIMUM_WAIT_OBJECTS objects,
/// or more than THREAD_WAIT_OBJECTS without a wait-block array (no parameters).
pub const MAXIMUM_WAIT_OBJECTS_EXCEEDED: u32 = 0x0C;
/// `KERNEL_APC_PENDING_DURING_EXIT` (0x20): a thread exited with APCs disabled (p2 the APC
/// disable count, CombinedApcDisable: a mutex still owned, a region still entered) or at raised
/// IRQL (p3 the IRQL).
pub const KERNEL_APC_PENDING_DURING_EXIT: u32 = 0x20;
/// `INVALID_KERNEL_HANDLE` (0x93): NtClose/ZwClose of an invalid or protected handle (p1 the
/// handle, p2 0 protected / 1 invalid).
pub const INVALID_KERNEL_HANDLE: u32 = 0x93;
/// `ATTEMPTED_SWITCH_FROM_DPC` (0xB8): a wait, attach or yield from a DPC routine (p1 the
/// thread, p2 the new thread, p3 the original thread's stack address).
pub const ATTEMPTED_SWITCH_FROM_DPC: u32 = 0xB8;
/// `TIMER_OR_DPC_INVALID` (0xC7): a kernel timer or DPC in memory where it is not permitted
/// (p1 0 timer / 1 DPC / 2 DPC routine, p2 the object or routine, p3–p4 the memory range
/// checked: freed pool, an unloading image).
pub const TIMER_OR_DPC_INVALID: u32 = 0xC7;
/// `IRQL_UNEXPECTED_VALUE` (0xC8): the IRQL is not what it should be (p1 =
/// (current IRQL << 16) | (expected IRQL << 8) | UniqueValue).
pub const IRQL_UNEXPECTED_VALUE: u32 = 0xC8;

/// The symbolic names of the codes above.
pub fn bugcheck_name_kernel_services(code: u32) -> Option<&'static str> {
    Some(match code {
        MAXIMUM_WAIT_OBJECTS_EXCEEDED => "MAXIMUM_WAIT_OBJECTS_EXCEEDED",
        KERNEL_APC_PENDING_DURING_EXIT => "KERNEL_APC_PENDING_DURING_EXIT",
        INVALID_KERNEL_HANDLE => "INVALID_KERNEL_HANDLE",
        ATTEMPTED_SWITCH_FROM_DPC => "ATTEMPTED_SWITCH_FROM_DPC",
        TIMER_OR_DPC_INVALID => "TIMER_OR_DPC_INVALID",
        IRQL_UNEXPECTED_VALUE => "IRQL_UNEXPECTED_VALUE",
        _ => return None,
    })
}

/// DDI compliance rules (`DRIVER_VERIFIER_DETECTED_VIOLATION` p1 values; Microsoft, each rule's
/// page under *DDI compliance rules*; p2 points at a string naming the violated condition).
pub mod ddi_rule {
    /// IrqlKeDispatchLte: KeCancelTimer, KeClearEvent, KeInitializeSemaphore,
    /// KeInitializeTimer(Ex), KeReadStateEvent, KeReadStateTimer, KeReleaseMutex, KeResetEvent,
    /// KeSetTimer(Ex) … only at IRQL <= DISPATCH_LEVEL.
    pub const IRQL_KE_DISPATCH_LTE: u64 = 0x0002_0011;
    /// IrqlPsPassive: PsCreateSystemThread, PsTerminateSystemThread … only at PASSIVE_LEVEL.
    pub const IRQL_PS_PASSIVE: u64 = 0x0002_001C;
}

// Stream ioasync (issue 9: remove locks).
/// More `DRIVER_VERIFIER_DETECTED_VIOLATION` (0xC4) parameter-1 values: remove locks (I/O
/// Verification; Microsoft, *Bug Check 0xC4*, and D. Holan, *New Driver Verifier feature for
/// Vista: runtime checking for remove locks*).
pub mod verifier_remlock {
    /// "The current IoReleaseRemoveLock tag does not match the previous IoAcquireRemoveLock
    /// tag" (p2 = the IO_REMOVE_LOCK, p3 = the tag released, p4 = reserved).
    pub const RELEASE_TAG_NOT_ACQUIRED: u64 = 0xD5;
}

// ---- kelocks stream: locks, resources, regions (Microsoft, *Bug Check 0xC4:
// DRIVER_VERIFIER_DETECTED_VIOLATION*, *Bug Check 0xE3: RESOURCE_NOT_OWNED*,
// *Bug Check 0x1: APC_INDEX_MISMATCH*) ----

/// `RESOURCE_NOT_OWNED` (0xE3): a thread released an ERESOURCE it does not own (p1 = the
/// resource, p2 = the thread, p3 = the owner table if any, p4 = reserved).
pub const RESOURCE_NOT_OWNED: u32 = 0xE3;

/// `APC_INDEX_MISMATCH` (0x1) parameter 4: what returned with a changed APC-disable count.
pub mod apc_index_mismatch {
    /// A system call (for a driver: its dispatch routine returning to the I/O manager).
    pub const SYSTEM_CALL: u64 = 0;
    /// A worker routine (a work item's routine returning to its system worker thread).
    pub const WORKER_ROUTINE: u64 = 1;
}

/// `DRIVER_VERIFIER_DETECTED_VIOLATION` (0xC4) parameter-1 values for locks and regions.
pub mod verifier_locks {
    /// Fast mutex acquired above APC_LEVEL (p2 IRQL, p3 the fast mutex).
    pub const ACQUIRE_FAST_MUTEX_ABOVE_APC: u64 = 0x33;
    /// Fast mutex released at an IRQL other than APC_LEVEL (p2 IRQL, p3 the fast mutex).
    pub const RELEASE_FAST_MUTEX_NOT_AT_APC: u64 = 0x34;
    /// Resource acquired with APCs enabled (p2 IRQL, p3 APC-disable count, p4 the resource).
    pub const ACQUIRE_RESOURCE_APCS_ENABLED: u64 = 0x37;
    /// Resource released with APCs enabled (p2 IRQL, p3 APC-disable count, p4 the resource).
    pub const RELEASE_RESOURCE_APCS_ENABLED: u64 = 0x38;
    /// Mutex acquired "unsafe" below APC_LEVEL with APCs enabled (p2 IRQL, p3 APC-disable
    /// count, p4 the mutex).
    pub const ACQUIRE_MUTEX_UNSAFE_BAD_IRQL: u64 = 0x39;
    /// Mutex released "unsafe" below APC_LEVEL with APCs enabled (as 0x39).
    pub const RELEASE_MUTEX_UNSAFE_BAD_IRQL: u64 = 0x3A;
    /// KeLeaveCriticalRegion on a thread not in a critical region.
    pub const LEAVE_CRITICAL_REGION_NOT_IN_ONE: u64 = 0x3E;
    /// KeAcquireSpinLockAtDpcLevel below DISPATCH_LEVEL (p2 IRQL, p3 the lock).
    pub const ACQUIRE_SPINLOCK_AT_DPC_BELOW_DISPATCH: u64 = 0x40;
    /// KeReleaseSpinLockFromDpcLevel below DISPATCH_LEVEL (p2 IRQL, p3 the lock).
    pub const RELEASE_SPINLOCK_FROM_DPC_BELOW_DISPATCH: u64 = 0x41;
    /// KeAcquireSpinLock above DISPATCH_LEVEL (p2 IRQL, p3 the lock).
    pub const ACQUIRE_SPINLOCK_ABOVE_DISPATCH: u64 = 0x42;
    /// A dispatch routine changed the thread's APC-disable count (p2 the routine, p3 the count
    /// now, p4 the count before).
    pub const DISPATCH_CHANGED_APC_DISABLE: u64 = 0xC5;
    /// ExInitializeResourceLite on a resource that is already initialized (p2 the resource).
    pub const RESOURCE_REINITIALIZED: u64 = 0xD0;
    /// ExDeleteResourceLite on a resource that is not initialized (p2 the resource).
    pub const RESOURCE_DELETE_UNINITIALIZED: u64 = 0xD1;
    /// Pool freed that holds an initialized ERESOURCE (p2 the resource, p3 the block, p4 its
    /// size).
    pub const RESOURCE_IN_FREED_POOL: u64 = 0xD2;
    /// KeEnterCriticalRegion above APC_LEVEL (p2 IRQL).
    pub const ENTER_CRITICAL_REGION_ABOVE_APC: u64 = 0x11A;
    /// KeLeaveCriticalRegion above APC_LEVEL (p2 IRQL).
    pub const LEAVE_CRITICAL_REGION_ABOVE_APC: u64 = 0x11B;
    /// Deadlock detection: a thread acquires a resource it would wait on itself (p2 the lock).
    pub const SELF_DEADLOCK: u64 = 0x1000;
    /// ObReferenceObjectByHandle of a user-mode handle with AccessMode KernelMode (p2 the
    /// handle, p3 the current process, p4 the caller).
    pub const USER_HANDLE_KERNEL_ACCESS: u64 = 0xF6;
    /// An IRP completion routine returned at another IRQL than it was called at (p2 the
    /// routine, p3 the IRQL before, p4 the IRQL after).
    pub const COMPLETION_ROUTINE_CHANGED_IRQL: u64 = 0xFA;
    /// An IRP completion routine changed the thread's APC-disable count (p2 the routine, p3
    /// the count now, p4 the count before).
    pub const COMPLETION_ROUTINE_CHANGED_APC_DISABLE: u64 = 0xFB;
    /// A UserMode wait on an object on the kernel stack (p2 the object).
    pub const USER_MODE_WAIT_ON_STACK_OBJECT: u64 = 0x123;
    /// Deadlock detection: a lock-hierarchy violation, or a lock its holder takes again (p2 the
    /// lock that closed the cycle).
    pub const DEADLOCK: u64 = 0x1001;
    /// Deadlock detection: a lock released by another thread than the one that acquired it
    /// (p2 the lock, p3 the thread that acquired it, p4 the current thread).
    pub const RELEASED_BY_WRONG_THREAD: u64 = 0x1004;
    /// Deadlock detection: a lock released that was never acquired (p2 the lock).
    pub const UNACQUIRED_LOCK_RELEASED: u64 = 0x1007;
    /// Deadlock detection: a lock acquired through an API that does not match its type (p2 the
    /// lock): a KSPIN_LOCK taken both the ordinary way and as an in-stack queued spin lock.
    pub const MISMATCHED_ACQUIRE_API: u64 = 0x1008;
    /// Deadlock detection: a lock released through an API that does not match how it was
    /// acquired (p2 the lock).
    pub const MISMATCHED_RELEASE_API: u64 = 0x1009;
    /// Deadlock detection: a lock deleted while a thread still owns it (p2 the lock, p3 the
    /// owner thread).
    pub const DELETED_LOCK_STILL_OWNED: u64 = 0x100B;
}
