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
    v.extend(crt());
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
    v.extend(rtl_crt_special());
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
pub use crate::io::cancel::{IoAcquireCancelSpinLock, IoCancelIrp, IoReleaseCancelSpinLock};
pub use crate::io::csq::{
    IoCsqInitialize, IoCsqInitializeEx, IoCsqInsertIrp, IoCsqInsertIrpEx, IoCsqRemoveIrp,
    IoCsqRemoveNextIrp,
};
pub use crate::io::process::{
    IoGetCurrentProcess, IoGetRequestorProcess, IoIs32bitProcess, PsGetCurrentProcess,
};
pub use crate::io::remlock::{
    IoAcquireRemoveLockEx, IoInitializeRemoveLockEx, IoReleaseRemoveLockAndWaitEx,
    IoReleaseRemoveLockEx,
};
export_group! { io_async:
    IoCancelIrp, IoAcquireCancelSpinLock, IoReleaseCancelSpinLock,
    IoCsqInitialize, IoCsqInitializeEx, IoCsqInsertIrp, IoCsqInsertIrpEx, IoCsqRemoveIrp,
    IoCsqRemoveNextIrp,
    IoInitializeRemoveLockEx, IoAcquireRemoveLockEx, IoReleaseRemoveLockEx,
    IoReleaseRemoveLockAndWaitEx,
    IoGetCurrentProcess, PsGetCurrentProcess, IoIs32bitProcess, IoGetRequestorProcess,
}

// IRP allocation and forwarding, I/O verification (issue 10, item 3).
pub use crate::io::forward::{
    IoAllocateIrp, IoAttachDeviceToDeviceStack, IoBuildAsynchronousFsdRequest,
    IoBuildDeviceIoControlRequest, IoBuildSynchronousFsdRequest, IoDetachDevice, IoFreeIrp,
    IoGetAttachedDevice, IoGetAttachedDeviceReference, IoInitializeIrp, IoReuseIrp, IofCallDriver,
};
export_group! { io_verify:
    IofCallDriver, IoAllocateIrp, IoFreeIrp, IoInitializeIrp, IoReuseIrp,
    IoBuildDeviceIoControlRequest, IoBuildSynchronousFsdRequest, IoBuildAsynchronousFsdRequest,
    IoAttachDeviceToDeviceStack, IoDetachDevice, IoGetAttachedDeviceReference, IoGetAttachedDevice,
}

// DPCs, timers, semaphores, mutexes, multi-object waits, system threads, handles, time
// (issue 9, item 2).
pub use crate::ke::dispatch::{
    KeInitializeMutex, KeInitializeSemaphore, KeReadStateMutex, KeReadStateSemaphore,
    KeReleaseMutex, KeReleaseSemaphore, KeWaitForMultipleObjects,
};
pub use crate::ke::dpc::{
    KeFlushQueuedDpcs, KeInitializeDpc, KeInsertQueueDpc, KeIsExecutingDpc, KeRemoveQueueDpc,
    KeSetImportanceDpc, KeSetTargetProcessorDpc,
};
pub use crate::ke::time::{
    KeQueryActiveProcessorCount, KeQueryActiveProcessorCountEx, KeQueryInterruptTimePrecise,
    KeQueryMaximumProcessorCount, KeQueryMaximumProcessorCountEx, KeQuerySystemTimePrecise,
    KeQueryUnbiasedInterruptTime, KeStallExecutionProcessor,
};
pub use crate::ke::timer::{
    KeCancelTimer, KeInitializeTimer, KeInitializeTimerEx, KeReadStateTimer, KeSetTimer,
    KeSetTimerEx,
};
pub use crate::ob::handle::{ObReferenceObjectByHandle, ZwClose};
pub use crate::ps::{
    KeQueryPriorityThread, KeSetBasePriorityThread, KeSetPriorityThread, PsCreateSystemThread,
    PsGetCurrentProcessId, PsGetCurrentThreadId, PsIsSystemThread, PsTerminateSystemThread,
};
export_group! { kernel_services:
    PsCreateSystemThread, PsTerminateSystemThread, ZwClose, ObReferenceObjectByHandle,
    PsGetCurrentProcessId, PsGetCurrentThreadId, PsIsSystemThread, KeSetPriorityThread,
    KeQueryPriorityThread, KeSetBasePriorityThread, KeStallExecutionProcessor,
    KeQueryActiveProcessorCount, KeQueryActiveProcessorCountEx, KeQueryMaximumProcessorCount,
    KeQueryMaximumProcessorCountEx,
    KeInitializeDpc, KeInsertQueueDpc, KeRemoveQueueDpc, KeFlushQueuedDpcs, KeSetImportanceDpc,
    KeSetTargetProcessorDpc, KeIsExecutingDpc,
    KeInitializeTimer, KeInitializeTimerEx, KeSetTimer, KeSetTimerEx, KeCancelTimer,
    KeReadStateTimer,
    KeInitializeSemaphore, KeReleaseSemaphore, KeReadStateSemaphore, KeInitializeMutex,
    KeReleaseMutex, KeReadStateMutex, KeWaitForMultipleObjects,
    KeQuerySystemTimePrecise, KeQueryInterruptTimePrecise, KeQueryUnbiasedInterruptTime,
}

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
pub use crate::dbg::printf::{
    _snprintf, _snwprintf, _vsnprintf, _vsnwprintf, sprintf, swprintf, vsprintf,
};
pub use crate::ex::system_routine::{MmGetSystemRoutineAddress, MmIsAddressValid};
pub use crate::rtl::crt::{
    _stricmp, _strnicmp, _wcsicmp, _wcsnicmp, atoi, atol, memchr, memcmp, memcpy, memmove, memset,
    strcat, strchr, strcmp, strcpy, strlen, strncat, strncmp, strncpy, strnlen, strrchr, strstr,
    strtoul, tolower, toupper, towlower, towupper, wcscat, wcschr, wcscmp, wcscpy, wcslen, wcsncat,
    wcsncmp, wcsncpy, wcsnlen, wcsrchr, wcsstr, wcstoul,
};
pub use crate::rtl::memory::{
    RtlAreBitsClear, RtlAreBitsSet, RtlClearAllBits, RtlClearBits, RtlCompareMemory,
    RtlCompareMemoryUlong, RtlFillMemory, RtlFindClearBits, RtlFindClearBitsAndSet, RtlFindSetBits,
    RtlFindSetBitsAndClear, RtlInitializeBitMap, RtlMoveMemory, RtlNumberOfClearBits,
    RtlNumberOfSetBits, RtlRandomEx, RtlSetAllBits, RtlSetBits, RtlTestBit, RtlZeroMemory,
};
pub use crate::rtl::string::{
    RtlAnsiStringToUnicodeString, RtlAppendUnicodeStringToString, RtlAppendUnicodeToString,
    RtlCompareString, RtlCompareUnicodeString, RtlCopyUnicodeString, RtlCreateUnicodeString,
    RtlDowncaseUnicodeChar, RtlDowncaseUnicodeString, RtlEqualString, RtlEqualUnicodeString,
    RtlFreeAnsiString, RtlFreeUnicodeString, RtlInitAnsiString, RtlInitString,
    RtlInitUnicodeStringEx, RtlIntegerToUnicodeString, RtlPrefixUnicodeString,
    RtlUnicodeStringToAnsiString, RtlUnicodeStringToInteger, RtlUpcaseUnicodeChar,
    RtlUpcaseUnicodeString,
};
pub use crate::rtl::version::{
    PsGetVersion, RtlGetVersion, RtlVerifyVersionInfo, VerSetConditionMask,
};
export_group! { rtl_crt:
    MmGetSystemRoutineAddress, MmIsAddressValid, RtlGetVersion, RtlVerifyVersionInfo,
    VerSetConditionMask, PsGetVersion,
    RtlInitAnsiString, RtlInitString, RtlInitUnicodeStringEx, RtlCopyUnicodeString,
    RtlAppendUnicodeToString, RtlAppendUnicodeStringToString, RtlCompareUnicodeString,
    RtlEqualUnicodeString, RtlPrefixUnicodeString, RtlUpcaseUnicodeChar, RtlDowncaseUnicodeChar,
    RtlUpcaseUnicodeString, RtlDowncaseUnicodeString, RtlUnicodeStringToInteger,
    RtlIntegerToUnicodeString, RtlAnsiStringToUnicodeString, RtlUnicodeStringToAnsiString,
    RtlFreeUnicodeString, RtlFreeAnsiString, RtlCompareString, RtlEqualString,
    RtlCreateUnicodeString,
    RtlCompareMemory, RtlCompareMemoryUlong, RtlMoveMemory, RtlFillMemory, RtlZeroMemory,
    RtlRandomEx,
    RtlInitializeBitMap, RtlClearAllBits, RtlSetAllBits, RtlSetBits, RtlClearBits, RtlTestBit,
    RtlFindClearBits, RtlFindSetBits, RtlFindClearBitsAndSet, RtlFindSetBitsAndClear,
    RtlNumberOfSetBits, RtlNumberOfClearBits, RtlAreBitsSet, RtlAreBitsClear,
}
export_group! { crt:
    memcpy, memmove, memset, memcmp, memchr, strlen, wcslen, strnlen, wcsnlen, strcmp, strncmp,
    wcscmp, wcsncmp, strcpy, strncpy, wcscpy, wcsncpy, strcat, strncat, wcscat, wcsncat, strchr,
    wcschr, strrchr, wcsrchr, strstr, wcsstr, _stricmp, _strnicmp, _wcsicmp, _wcsnicmp, toupper,
    tolower, towupper, towlower, atoi, atol, strtoul, wcstoul, vsprintf, _vsnprintf, _vsnwprintf,
}

/// The variadic printers (naked entries, as DbgPrint) and the data exports (for a machine
/// without a debugger; [`binding`] picks per machine).
fn rtl_crt_special() -> Vec<(&'static str, usize)> {
    let mut v = vec![
        ("sprintf", sprintf as *const () as usize),
        ("_snprintf", _snprintf as *const () as usize),
        ("swprintf", swprintf as *const () as usize),
        ("_snwprintf", _snwprintf as *const () as usize),
    ];
    debug_assert_eq!(v.len(), nt_abi::imports::crt::VARIADIC.len());
    for name in nt_abi::imports::data::NAMES {
        if let Some(a) = crate::data::address(name, false) {
            v.push((name, a));
        }
    }
    v
}

/// Whether the export `name` is a variable (bound as data: the IAT slot holds its address)
/// rather than a function. One source: `nt_abi::imports::data`.
pub fn is_data(name: &str) -> bool {
    nt_abi::imports::data::NAMES.contains(&name)
}

/// What the import `name` binds to on a machine with (`debugger`) or without a kernel debugger
/// (`KdDebuggerEnabled` / `KdDebuggerNotPresent` differ), or None if ntsim does not emulate it.
pub fn binding(name: &str, debugger: bool) -> Option<crate::pe::Binding> {
    if is_data(name) {
        return crate::data::address(name, debugger).map(crate::pe::Binding::Data);
    }
    lookup(name).map(crate::pe::Binding::Code)
}

// The kernel-debugger interface (issue 9, item 4).
pub use crate::dbg::kd::{
    DbgBreakPointWithStatus, DbgPrompt, KdChangeOption, KdDisableDebugger, KdEnableDebugger,
    KdRefreshDebuggerNotPresent, RtlAssert,
};
pub use crate::dbg::{
    DbgQueryDebugFilterState, DbgSetDebugFilterState, vDbgPrintEx, vDbgPrintExWithPrefix,
};
export_group! { debugger:
    RtlAssert, DbgBreakPointWithStatus, DbgPrompt, vDbgPrintEx, vDbgPrintExWithPrefix,
    DbgSetDebugFilterState, DbgQueryDebugFilterState, KdRefreshDebuggerNotPresent,
    KdDisableDebugger, KdEnableDebugger, KdChangeOption,
}

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
