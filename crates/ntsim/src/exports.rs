//! Every emulated ntoskrnl export, callable in-process, plus the name → address table the PE
//! loader binds imports with. Each fixed-arity entry is type-checked against
//! `nt_abi::imports::signatures::<Name>` at compile time.
#![allow(non_snake_case)]

pub use crate::dbg::{DbgPrint, DbgPrintEx, dbgprint_fn, dbgprintex_fn};
pub use crate::ex::lookaside::{
    ExDeleteNPagedLookasideList, ExInitializeNPagedLookasideList, ExpInterlockedPopEntrySList,
    ExpInterlockedPushEntrySList,
};
pub use crate::ex::pool::{
    ExAllocatePool, ExAllocatePool2, ExAllocatePool3, ExAllocatePoolWithQuotaTag,
    ExAllocatePoolWithTag, ExFreePool, ExFreePoolWithTag,
};
pub use crate::ex::raise::{
    DbgBreakPoint, ExRaiseAccessViolation, ExRaiseDatatypeMisalignment, ExRaiseStatus,
    ProbeForRead, ProbeForWrite, RtlRaiseException, RtlUnwind, RtlUnwindEx,
};
pub use crate::io::irp::IofCompleteRequest;
pub use crate::io::mdl::{
    IoAllocateMdl, IoFreeMdl, MmBuildMdlForNonPagedPool, MmMapLockedPagesSpecifyCache,
    MmProbeAndLockPages, MmUnlockPages, MmUnmapLockedPages,
};
pub use crate::io::workitem::{
    IoAllocateWorkItem, IoFreeWorkItem, IoInitializeWorkItem, IoQueueWorkItem, IoQueueWorkItemEx,
    IoSizeofWorkItem, IoUninitializeWorkItem,
};
pub use crate::io::{IoCreateDevice, IoCreateSymbolicLink, IoDeleteDevice, IoDeleteSymbolicLink};
pub use crate::ke::cpu::{
    KeAreInterruptsEnabled, KeGetCurrentProcessorNumberEx, KeGetCurrentThread,
    KeQueryTimeIncrement, PsGetCurrentThread,
};
pub use crate::ke::except::__C_specific_handler;
pub use crate::ke::{
    KeAcquireSpinLockRaiseToDpc, KeBugCheckEx, KeClearEvent, KeDelayExecutionThread,
    KeInitializeEvent, KeQueryPerformanceCounter, KeReadStateEvent, KeReleaseSpinLock,
    KeResetEvent, KeSetEvent, KeWaitForSingleObject,
};
pub use crate::ob::{ObfDereferenceObject, ObfReferenceObject};
pub use crate::rtl::RtlInitUnicodeString;

use nt_abi::imports::signatures;

/// One group of fixed-arity exports: a function returning (name, address) pairs, each entry
/// type-checked against `nt_abi::imports::signatures::<Name>`. Groups follow nt-abi's import
/// groups, so work streams adding exports edit their own block only.
macro_rules! export_group {
    ($group:ident: $($name:ident),* $(,)?) => {
        fn $group() -> Vec<(&'static str, usize)> {
            vec![
                $((stringify!($name), {
                    let f: signatures::$name = $name;
                    f as usize
                }),)*
            ]
        }
    };
}

/// (name, address) of every emulated export.
pub fn table() -> Vec<(&'static str, usize)> {
    let mut v = core_group();
    v.extend(io_async());
    v.extend(io_verify());
    v.extend(kernel_services());
    v.extend(kernel_locks());
    v.extend(rtl_crt());
    v.extend(debugger());
    v.extend([
        ("DbgPrint", DbgPrint as *const () as usize),
        ("DbgPrintEx", DbgPrintEx as *const () as usize),
        ("ExRaiseStatus", {
            let f: signatures::ExRaiseStatus = ExRaiseStatus;
            f as usize
        }),
        ("ExRaiseAccessViolation", {
            let f: signatures::ExRaiseAccessViolation = ExRaiseAccessViolation;
            f as usize
        }),
        ("ExRaiseDatatypeMisalignment", {
            let f: signatures::ExRaiseDatatypeMisalignment = ExRaiseDatatypeMisalignment;
            f as usize
        }),
    ]);
    v
}

export_group! { core_group:
    IoSizeofWorkItem, IoInitializeWorkItem, IoUninitializeWorkItem, IoQueueWorkItem,
    IoQueueWorkItemEx, IoAllocateWorkItem, IoFreeWorkItem,
    ExAllocatePool2, ExFreePoolWithTag, ExFreePool, ExAllocatePoolWithTag, ExAllocatePool,
    ExAllocatePoolWithQuotaTag, ExAllocatePool3, ExInitializeNPagedLookasideList,
    ExDeleteNPagedLookasideList, ExpInterlockedPopEntrySList, ExpInterlockedPushEntrySList,
    IoCreateDevice, IoDeleteDevice, IoCreateSymbolicLink, IoDeleteSymbolicLink,
    IofCompleteRequest, ObfReferenceObject, ObfDereferenceObject, RtlInitUnicodeString,
    KeInitializeEvent, KeSetEvent, KeClearEvent, KeResetEvent, KeReadStateEvent,
    KeWaitForSingleObject, KeDelayExecutionThread, KeAcquireSpinLockRaiseToDpc,
    KeReleaseSpinLock, KeQueryPerformanceCounter, KeBugCheckEx,
    KeGetCurrentThread, PsGetCurrentThread, KeGetCurrentProcessorNumberEx, KeQueryTimeIncrement,
    KeAreInterruptsEnabled,
    ProbeForRead, ProbeForWrite, DbgBreakPoint, RtlRaiseException, RtlUnwind, RtlUnwindEx,
    __C_specific_handler,
    IoAllocateMdl, IoFreeMdl, MmProbeAndLockPages, MmUnlockPages, MmMapLockedPagesSpecifyCache,
    MmUnmapLockedPages, MmBuildMdlForNonPagedPool,
}

// Asynchronous I/O, cancellation, cancel-safe queues, remove locks (issue 9, item 1).
export_group! { io_async: }

// IRP allocation and forwarding, I/O verification (issue 10, item 3).
export_group! { io_verify: }

// DPCs, timers, semaphores, mutexes, multi-object waits, system threads, handles, time
// (issue 9, item 2).
export_group! { kernel_services: }

// Fast and guarded mutexes, ERESOURCE, regions, DPC-level and queued spin locks, interlocked
// lists (issue 9, item 2).
pub use crate::ex::fastmutex::{
    ExAcquireFastMutex, ExAcquireFastMutexUnsafe, ExReleaseFastMutex, ExReleaseFastMutexUnsafe,
    ExTryToAcquireFastMutex, KeAcquireGuardedMutex, KeAcquireGuardedMutexUnsafe,
    KeInitializeGuardedMutex, KeReleaseGuardedMutex, KeReleaseGuardedMutexUnsafe,
    KeTryToAcquireGuardedMutex,
};
pub use crate::ex::interlocked::{
    ExInterlockedAddLargeInteger, ExInterlockedAddUlong, ExInterlockedInsertHeadList,
    ExInterlockedInsertTailList, ExInterlockedPopEntryList, ExInterlockedPushEntryList,
    ExInterlockedRemoveHeadList, ExQueryDepthSList, ExpInterlockedFlushSList, InitializeSListHead,
};
pub use crate::ex::resource::{
    ExAcquireResourceExclusiveLite, ExAcquireResourceSharedLite, ExAcquireSharedStarveExclusive,
    ExAcquireSharedWaitForExclusive, ExConvertExclusiveToSharedLite, ExDeleteResourceLite,
    ExEnterCriticalRegionAndAcquireResourceExclusive,
    ExEnterCriticalRegionAndAcquireResourceShared,
    ExEnterCriticalRegionAndAcquireSharedWaitForExclusive, ExGetExclusiveWaiterCount,
    ExGetSharedWaiterCount, ExInitializeResourceLite, ExIsResourceAcquiredExclusiveLite,
    ExIsResourceAcquiredSharedLite, ExReinitializeResourceLite,
    ExReleaseResourceAndLeaveCriticalRegion, ExReleaseResourceForThreadLite, ExReleaseResourceLite,
};
pub use crate::ke::apc::{
    KeEnterCriticalRegion, KeEnterGuardedRegion, KeLeaveCriticalRegion, KeLeaveGuardedRegion,
};
pub use crate::ke::spinlock::{
    KeAcquireInStackQueuedSpinLock, KeAcquireInStackQueuedSpinLockAtDpcLevel,
    KeAcquireInStackQueuedSpinLockForDpc, KeAcquireSpinLockAtDpcLevel, KeAcquireSpinLockForDpc,
    KeReleaseInStackQueuedSpinLock, KeReleaseInStackQueuedSpinLockForDpc,
    KeReleaseInStackQueuedSpinLockFromDpcLevel, KeReleaseSpinLockForDpc,
    KeReleaseSpinLockFromDpcLevel, KeTestSpinLock, KeTryToAcquireSpinLockAtDpcLevel,
};
export_group! { kernel_locks:
    ExAcquireFastMutex, ExReleaseFastMutex, ExTryToAcquireFastMutex, ExAcquireFastMutexUnsafe,
    ExReleaseFastMutexUnsafe,
    KeInitializeGuardedMutex, KeAcquireGuardedMutex, KeReleaseGuardedMutex,
    KeTryToAcquireGuardedMutex, KeAcquireGuardedMutexUnsafe, KeReleaseGuardedMutexUnsafe,
    KeEnterGuardedRegion, KeLeaveGuardedRegion, KeEnterCriticalRegion, KeLeaveCriticalRegion,
    ExInitializeResourceLite, ExReinitializeResourceLite, ExDeleteResourceLite,
    ExAcquireResourceExclusiveLite, ExAcquireResourceSharedLite, ExAcquireSharedStarveExclusive,
    ExAcquireSharedWaitForExclusive, ExReleaseResourceLite, ExReleaseResourceForThreadLite,
    ExIsResourceAcquiredExclusiveLite, ExIsResourceAcquiredSharedLite, ExGetExclusiveWaiterCount,
    ExGetSharedWaiterCount, ExConvertExclusiveToSharedLite,
    ExEnterCriticalRegionAndAcquireResourceExclusive,
    ExEnterCriticalRegionAndAcquireResourceShared,
    ExEnterCriticalRegionAndAcquireSharedWaitForExclusive,
    ExReleaseResourceAndLeaveCriticalRegion,
    KeAcquireSpinLockAtDpcLevel, KeReleaseSpinLockFromDpcLevel, KeTryToAcquireSpinLockAtDpcLevel,
    KeTestSpinLock, KeAcquireSpinLockForDpc, KeReleaseSpinLockForDpc,
    KeAcquireInStackQueuedSpinLock, KeReleaseInStackQueuedSpinLock,
    KeAcquireInStackQueuedSpinLockAtDpcLevel, KeReleaseInStackQueuedSpinLockFromDpcLevel,
    KeAcquireInStackQueuedSpinLockForDpc, KeReleaseInStackQueuedSpinLockForDpc,
    ExInterlockedInsertHeadList, ExInterlockedInsertTailList, ExInterlockedRemoveHeadList,
    ExInterlockedPushEntryList, ExInterlockedPopEntryList, ExInterlockedAddLargeInteger,
    ExInterlockedAddUlong, ExpInterlockedFlushSList, ExQueryDepthSList, InitializeSListHead,
}

// Rtl strings and memory, CRT, MmGetSystemRoutineAddress, version (issue 9, item 3).
export_group! { rtl_crt: }

// The kernel-debugger interface (issue 9, item 4).
export_group! { debugger: }

/// Address of the export `name`, if ntsim emulates it.
pub fn lookup(name: &str) -> Option<usize> {
    table()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, a)| a)
}

/// Names of every emulated export, sorted.
pub fn names() -> Vec<&'static str> {
    let mut v: Vec<_> = table().into_iter().map(|(n, _)| n).collect();
    v.sort_unstable();
    v
}
