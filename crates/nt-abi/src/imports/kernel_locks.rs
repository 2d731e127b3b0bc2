//! Locks and lists: fast and guarded mutexes, ERESOURCE, critical and guarded regions, spin
//! locks at DPC level, in-stack queued spin locks, interlocked lists (issue 9, item 2).
//!
//! Which of these are exports on x64 follows the WDK's wdm.h (mingw-w64's `ddk/wdm.h`) and
//! ReactOS's `ntoskrnl.spec`: `ExInitializeFastMutex`, `KeInitializeSpinLock` and
//! `ExGetCurrentResourceThread` (`PsGetCurrentThread`) are inline/macros in the driver;
//! `InitializeSListHead`, `ExQueryDepthSList` and `ExpInterlockedFlushSList` are x64 exports.
#[allow(unused_imports)]
use super::*;
use crate::locks::*;

ntoskrnl_imports! {
    /// Raise to APC_LEVEL and acquire a fast mutex (the old IRQL is saved in it).
    fn ExAcquireFastMutex(FastMutex: *mut FAST_MUTEX);
    /// Release a fast mutex and restore the IRQL saved at acquisition.
    fn ExReleaseFastMutex(FastMutex: *mut FAST_MUTEX);
    /// Acquire a fast mutex without waiting (TRUE when acquired).
    fn ExTryToAcquireFastMutex(FastMutex: *mut FAST_MUTEX) -> BOOLEAN;
    /// Acquire a fast mutex without raising IRQL (caller at APC_LEVEL or in a critical region).
    fn ExAcquireFastMutexUnsafe(FastMutex: *mut FAST_MUTEX);
    /// Release a fast mutex acquired with ExAcquireFastMutexUnsafe.
    fn ExReleaseFastMutexUnsafe(FastMutex: *mut FAST_MUTEX);

    fn KeInitializeGuardedMutex(Mutex: *mut KGUARDED_MUTEX);
    /// Enter a guarded region and acquire the mutex.
    fn KeAcquireGuardedMutex(Mutex: *mut KGUARDED_MUTEX);
    /// Release the mutex and leave the guarded region.
    fn KeReleaseGuardedMutex(Mutex: *mut KGUARDED_MUTEX);
    fn KeTryToAcquireGuardedMutex(Mutex: *mut KGUARDED_MUTEX) -> BOOLEAN;
    /// Acquire without entering a guarded region (caller already in one, or at APC_LEVEL).
    fn KeAcquireGuardedMutexUnsafe(FastMutex: *mut KGUARDED_MUTEX);
    fn KeReleaseGuardedMutexUnsafe(FastMutex: *mut KGUARDED_MUTEX);
    /// Disable all APCs (special and normal) for the current thread.
    fn KeEnterGuardedRegion();
    fn KeLeaveGuardedRegion();
    /// Disable normal kernel APCs for the current thread.
    fn KeEnterCriticalRegion();
    fn KeLeaveCriticalRegion();

    fn ExInitializeResourceLite(Resource: *mut ERESOURCE) -> NTSTATUS;
    fn ExReinitializeResourceLite(Resource: *mut ERESOURCE) -> NTSTATUS;
    fn ExDeleteResourceLite(Resource: *mut ERESOURCE) -> NTSTATUS;
    fn ExAcquireResourceExclusiveLite(Resource: *mut ERESOURCE, Wait: BOOLEAN) -> BOOLEAN;
    fn ExAcquireResourceSharedLite(Resource: *mut ERESOURCE, Wait: BOOLEAN) -> BOOLEAN;
    fn ExAcquireSharedStarveExclusive(Resource: *mut ERESOURCE, Wait: BOOLEAN) -> BOOLEAN;
    fn ExAcquireSharedWaitForExclusive(Resource: *mut ERESOURCE, Wait: BOOLEAN) -> BOOLEAN;
    fn ExReleaseResourceLite(Resource: *mut ERESOURCE);
    fn ExReleaseResourceForThreadLite(Resource: *mut ERESOURCE, ResourceThreadId: ERESOURCE_THREAD);
    fn ExIsResourceAcquiredExclusiveLite(Resource: *mut ERESOURCE) -> BOOLEAN;
    /// The number of times the current thread holds the resource (shared or exclusive).
    fn ExIsResourceAcquiredSharedLite(Resource: *mut ERESOURCE) -> ULONG;
    fn ExGetExclusiveWaiterCount(Resource: *mut ERESOURCE) -> ULONG;
    fn ExGetSharedWaiterCount(Resource: *mut ERESOURCE) -> ULONG;
    fn ExConvertExclusiveToSharedLite(Resource: *mut ERESOURCE);
    /// KeEnterCriticalRegion + ExAcquireResourceExclusiveLite(Wait); returns the current thread.
    fn ExEnterCriticalRegionAndAcquireResourceExclusive(Resource: *mut ERESOURCE) -> PVOID;
    fn ExEnterCriticalRegionAndAcquireResourceShared(Resource: *mut ERESOURCE) -> PVOID;
    fn ExEnterCriticalRegionAndAcquireSharedWaitForExclusive(Resource: *mut ERESOURCE) -> PVOID;
    /// ExReleaseResourceLite + KeLeaveCriticalRegion.
    fn ExReleaseResourceAndLeaveCriticalRegion(Resource: *mut ERESOURCE);

    /// Acquire a spin lock; the caller is already at DISPATCH_LEVEL.
    fn KeAcquireSpinLockAtDpcLevel(SpinLock: *mut KSPIN_LOCK);
    /// Release a spin lock; the IRQL stays at DISPATCH_LEVEL.
    fn KeReleaseSpinLockFromDpcLevel(SpinLock: *mut KSPIN_LOCK);
    /// Try once to acquire a spin lock at DISPATCH_LEVEL (TRUE when acquired).
    fn KeTryToAcquireSpinLockAtDpcLevel(SpinLock: *mut KSPIN_LOCK) -> BOOLEAN;
    /// TRUE when the spin lock is free right now (it is not acquired).
    fn KeTestSpinLock(SpinLock: *mut KSPIN_LOCK) -> BOOLEAN;
    /// Raise to DISPATCH_LEVEL (unless already there) and acquire; returns the old IRQL.
    fn KeAcquireSpinLockForDpc(SpinLock: *mut KSPIN_LOCK) -> KIRQL;
    fn KeReleaseSpinLockForDpc(SpinLock: *mut KSPIN_LOCK, OldIrql: KIRQL);
    /// Raise to DISPATCH_LEVEL and acquire a queued spin lock, FIFO among waiters.
    fn KeAcquireInStackQueuedSpinLock(SpinLock: *mut KSPIN_LOCK, LockHandle: *mut KLOCK_QUEUE_HANDLE);
    fn KeReleaseInStackQueuedSpinLock(LockHandle: *mut KLOCK_QUEUE_HANDLE);
    fn KeAcquireInStackQueuedSpinLockAtDpcLevel(SpinLock: *mut KSPIN_LOCK, LockHandle: *mut KLOCK_QUEUE_HANDLE);
    fn KeReleaseInStackQueuedSpinLockFromDpcLevel(LockHandle: *mut KLOCK_QUEUE_HANDLE);
    fn KeAcquireInStackQueuedSpinLockForDpc(SpinLock: *mut KSPIN_LOCK, LockHandle: *mut KLOCK_QUEUE_HANDLE);
    fn KeReleaseInStackQueuedSpinLockForDpc(LockHandle: *mut KLOCK_QUEUE_HANDLE);

    fn ExInterlockedInsertHeadList(ListHead: *mut LIST_ENTRY, ListEntry: *mut LIST_ENTRY, Lock: *mut KSPIN_LOCK) -> *mut LIST_ENTRY;
    fn ExInterlockedInsertTailList(ListHead: *mut LIST_ENTRY, ListEntry: *mut LIST_ENTRY, Lock: *mut KSPIN_LOCK) -> *mut LIST_ENTRY;
    fn ExInterlockedRemoveHeadList(ListHead: *mut LIST_ENTRY, Lock: *mut KSPIN_LOCK) -> *mut LIST_ENTRY;
    fn ExInterlockedPushEntryList(ListHead: *mut SINGLE_LIST_ENTRY, ListEntry: *mut SINGLE_LIST_ENTRY, Lock: *mut KSPIN_LOCK) -> *mut SINGLE_LIST_ENTRY;
    fn ExInterlockedPopEntryList(ListHead: *mut SINGLE_LIST_ENTRY, Lock: *mut KSPIN_LOCK) -> *mut SINGLE_LIST_ENTRY;
    fn ExInterlockedAddLargeInteger(Addend: *mut LARGE_INTEGER, Increment: LARGE_INTEGER, Lock: *mut KSPIN_LOCK) -> LARGE_INTEGER;
    fn ExInterlockedAddUlong(Addend: *mut ULONG, Increment: ULONG, Lock: *mut KSPIN_LOCK) -> ULONG;
    /// Remove every entry of an SList at once; returns the old first entry (a NULL-ended chain).
    fn ExpInterlockedFlushSList(ListHead: *mut SLIST_HEADER) -> *mut SLIST_ENTRY;
    /// The number of entries on an SList (its header's depth).
    fn ExQueryDepthSList(ListHead: *mut SLIST_HEADER) -> USHORT;
    /// Initialize an SList header (16-byte aligned; raises STATUS_DATATYPE_MISALIGNMENT if not).
    fn InitializeSListHead(SListHead: *mut SLIST_HEADER);
}
