//! Dispatcher and threads: DPCs, timers, semaphores, mutexes, multi-object waits, system
//! threads and handles, priorities, delays, time (issue 9, item 2).
#[allow(unused_imports)]
use super::*;
use crate::dispatcher::*;

ntoskrnl_imports! {
    /// Create a system thread running `StartRoutine(StartContext)` at PASSIVE_LEVEL.
    fn PsCreateSystemThread(ThreadHandle: *mut HANDLE, DesiredAccess: ULONG, ObjectAttributes: *mut OBJECT_ATTRIBUTES, ProcessHandle: HANDLE, ClientId: *mut CLIENT_ID, StartRoutine: KSTART_ROUTINE, StartContext: PVOID) -> NTSTATUS;
    /// End the calling system thread (does not return); an error status on other threads.
    fn PsTerminateSystemThread(ExitStatus: NTSTATUS) -> NTSTATUS;
    /// Close a handle.
    fn ZwClose(Handle: HANDLE) -> NTSTATUS;
    /// Reference the object behind a handle (checking its type and access).
    fn ObReferenceObjectByHandle(Handle: HANDLE, DesiredAccess: ACCESS_MASK, ObjectType: PVOID, AccessMode: KPROCESSOR_MODE, Object: *mut PVOID, HandleInformation: PVOID) -> NTSTATUS;
    /// The current process's id (4 on system threads).
    fn PsGetCurrentProcessId() -> HANDLE;
    /// The current thread's id.
    fn PsGetCurrentThreadId() -> HANDLE;
    /// Whether `Thread` is a system thread.
    fn PsIsSystemThread(Thread: PVOID) -> BOOLEAN;
    /// Set a thread's priority; returns the old one.
    fn KeSetPriorityThread(Thread: PVOID, Priority: KPRIORITY) -> KPRIORITY;
    /// A thread's current priority.
    fn KeQueryPriorityThread(Thread: PVOID) -> KPRIORITY;
    /// Set a thread's base priority increment; returns the old increment.
    fn KeSetBasePriorityThread(Thread: PVOID, Increment: LONG) -> LONG;
    /// Busy-wait for `MicroSeconds`.
    fn KeStallExecutionProcessor(MicroSeconds: ULONG);
    /// Active processors (and their affinity mask).
    fn KeQueryActiveProcessorCount(ActiveProcessors: *mut ULONG_PTR) -> ULONG;
    /// Active processors in a group (`ALL_PROCESSOR_GROUPS` for all).
    fn KeQueryActiveProcessorCountEx(GroupNumber: USHORT) -> ULONG;
    /// The most processors the system can have.
    fn KeQueryMaximumProcessorCount() -> ULONG;
    /// The most processors a group can have.
    fn KeQueryMaximumProcessorCountEx(GroupNumber: USHORT) -> ULONG;

    /// Initialize a DPC object.
    fn KeInitializeDpc(Dpc: *mut KDPC, DeferredRoutine: KDEFERRED_ROUTINE, DeferredContext: PVOID);
    /// Queue a DPC; FALSE if it is already queued.
    fn KeInsertQueueDpc(Dpc: *mut KDPC, SystemArgument1: PVOID, SystemArgument2: PVOID) -> BOOLEAN;
    /// Remove a queued DPC; FALSE if it was not queued.
    fn KeRemoveQueueDpc(Dpc: *mut KDPC) -> BOOLEAN;
    /// Wait until every queued DPC has run.
    fn KeFlushQueuedDpcs();
    /// Low / medium / high importance (where in the queue the DPC goes).
    fn KeSetImportanceDpc(Dpc: *mut KDPC, Importance: LONG);
    /// The processor the DPC is queued on.
    fn KeSetTargetProcessorDpc(Dpc: *mut KDPC, Number: CCHAR);
    /// Whether the caller runs in a DPC routine.
    fn KeIsExecutingDpc() -> BOOLEAN;

    /// Initialize a notification timer.
    fn KeInitializeTimer(Timer: *mut KTIMER);
    /// Initialize a notification or synchronization timer.
    fn KeInitializeTimerEx(Timer: *mut KTIMER, Type: TIMER_TYPE);
    /// Set a one-shot timer (negative: relative, positive: absolute system time, 100 ns).
    fn KeSetTimer(Timer: *mut KTIMER, DueTime: LARGE_INTEGER, Dpc: *mut KDPC) -> BOOLEAN;
    /// Set a timer, periodic when `Period` (ms) is nonzero.
    fn KeSetTimerEx(Timer: *mut KTIMER, DueTime: LARGE_INTEGER, Period: LONG, Dpc: *mut KDPC) -> BOOLEAN;
    /// Cancel a timer; TRUE if it was set.
    fn KeCancelTimer(Timer: *mut KTIMER) -> BOOLEAN;
    /// Whether the timer is signaled.
    fn KeReadStateTimer(Timer: *mut KTIMER) -> BOOLEAN;

    /// Initialize a semaphore with `Count` (≤ `Limit`).
    fn KeInitializeSemaphore(Semaphore: *mut KSEMAPHORE, Count: LONG, Limit: LONG);
    /// Add `Adjustment` to the count (raises STATUS_SEMAPHORE_LIMIT_EXCEEDED past the limit).
    fn KeReleaseSemaphore(Semaphore: *mut KSEMAPHORE, Increment: KPRIORITY, Adjustment: LONG, Wait: BOOLEAN) -> LONG;
    /// The semaphore's count.
    fn KeReadStateSemaphore(Semaphore: *mut KSEMAPHORE) -> LONG;
    /// Initialize a mutex (signaled, no owner).
    fn KeInitializeMutex(Mutex: *mut KMUTEX, Level: ULONG);
    /// Release a mutex the caller owns (once per acquisition).
    fn KeReleaseMutex(Mutex: *mut KMUTEX, Wait: BOOLEAN) -> LONG;
    /// The mutex's state (1: not owned).
    fn KeReadStateMutex(Mutex: *mut KMUTEX) -> LONG;
    /// Wait for any or all of `Count` dispatcher objects.
    fn KeWaitForMultipleObjects(Count: ULONG, Object: *mut PVOID, WaitType: WAIT_TYPE, WaitReason: KWAIT_REASON, WaitMode: KPROCESSOR_MODE, Alertable: BOOLEAN, Timeout: *mut LARGE_INTEGER, WaitBlockArray: PVOID) -> NTSTATUS;

    /// The system time (100 ns since 1601, UTC), read precisely.
    fn KeQuerySystemTimePrecise(CurrentTime: *mut LARGE_INTEGER);
    /// The interrupt time (100 ns since boot), read precisely; the QPC value at that moment.
    fn KeQueryInterruptTimePrecise(QpcTimeStamp: *mut ULONG64) -> ULONG64;
    /// The interrupt time without the time spent in sleep states.
    fn KeQueryUnbiasedInterruptTime() -> ULONG64;
}
