//! The `ntoskrnl.exe` exports this project uses, declared once.
//!
//! One list produces three things, so they cannot drift apart:
//! - on Windows targets, the `extern "system"` import block (linked with `raw-dylib`, so no
//!   import library is needed and a Linux cross build works);
//! - [`signatures`]: a function-pointer type per import with the kernel callback convention
//!   (`win64` on ntsim's x86_64 host, `system` on Windows targets; see [`crate::kernel_fn!`]),
//!   which ntsim's emulated exports are checked against at compile time;
//! - [`FIXED_ARITY_GROUPS`] / [`all_imports`]: the names, for loaders and artifact checks.
//!
//! Documentation built on a non-Windows host shows the import declarations too (they are
//! declared, unlinked, for `cfg(doc)`).
#![allow(non_snake_case, clippy::missing_safety_doc)]

use core::ffi::c_void;

use crate::cpu::PROCESSOR_NUMBER;
use crate::io::*;
use crate::ke::*;
use crate::mdl::*;
use crate::pool::{
    NPAGED_LOOKASIDE_LIST, PALLOCATE_FUNCTION, PFREE_FUNCTION, POOL_EXTENDED_PARAMETER, POOL_FLAGS,
    POOL_TYPE, SLIST_ENTRY, SLIST_HEADER,
};
use crate::seh::*;
use crate::types::*;
use crate::workitem::*;

/// Declares one group of fixed-arity imports: the Windows `extern` block, a `signatures`
/// module (one function-pointer type per import) and `NAMES`. Each group is a child module of
/// this one (see the `groups` list below), so work streams adding exports never edit the same
/// lines.
macro_rules! ntoskrnl_imports {
    ($( $(#[doc = $doc:literal])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?; )*) => {
        /// This group's import declarations (re-exported by the parent module).
        #[cfg(any(target_os = "windows", doc))]
        pub mod ffi {
            #[allow(unused_imports)]
            use super::*;
            #[cfg_attr(target_os = "windows", link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim"))]
            unsafe extern "system" {
                $( $(#[doc = $doc])* pub fn $name($($arg: $ty),*) $(-> $ret)?; )*
            }
        }

        /// A function-pointer type for every import of this group, named after it.
        #[allow(non_camel_case_types, dead_code)]
        pub mod signatures {
            #[allow(unused_imports)]
            use super::*;
            $( $crate::routine_type!(pub type $name = unsafe fn($($ty),*) $(-> $ret)?); )*
        }

        /// Names of this group's imports.
        pub const NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}

/// The first groups: work items, pool, devices, events, CPU, SEH, MDLs.
mod core_group {
    use super::*;

    ntoskrnl_imports! {
        /// Size in bytes of an `IO_WORKITEM` on the running system.
        fn IoSizeofWorkItem() -> ULONG;
        /// Initialize caller-allocated nonpaged storage as a work item bound to `IoObject`.
        fn IoInitializeWorkItem(IoObject: *mut c_void, IoWorkItem: PIO_WORKITEM);
        /// Uninitialize a work item that is not queued.
        fn IoUninitializeWorkItem(IoWorkItem: PIO_WORKITEM);
        fn IoQueueWorkItem(IoWorkItem: PIO_WORKITEM, WorkerRoutine: IO_WORKITEM_ROUTINE, QueueType: WORK_QUEUE_TYPE, Context: PVOID);
        fn IoQueueWorkItemEx(IoWorkItem: PIO_WORKITEM, WorkerRoutine: IO_WORKITEM_ROUTINE_EX, QueueType: WORK_QUEUE_TYPE, Context: PVOID);
        fn IoAllocateWorkItem(DeviceObject: *mut DEVICE_OBJECT) -> PIO_WORKITEM;
        fn IoFreeWorkItem(IoWorkItem: PIO_WORKITEM);

        fn ExAllocatePool2(Flags: POOL_FLAGS, NumberOfBytes: SIZE_T, Tag: ULONG) -> PVOID;
        fn ExFreePoolWithTag(P: PVOID, Tag: ULONG);
        fn ExFreePool(P: PVOID);
        /// Legacy allocation by `POOL_TYPE` (not zeroed; `NonPagedPool` is executable).
        fn ExAllocatePoolWithTag(PoolType: POOL_TYPE, NumberOfBytes: SIZE_T, Tag: ULONG) -> PVOID;
        /// `ExAllocatePoolWithTag` with the tag `'None'`.
        fn ExAllocatePool(PoolType: POOL_TYPE, NumberOfBytes: SIZE_T) -> PVOID;
        /// `ExAllocatePoolWithTag` charged to the current process's quota.
        fn ExAllocatePoolWithQuotaTag(PoolType: POOL_TYPE, NumberOfBytes: SIZE_T, Tag: ULONG) -> PVOID;
        /// `ExAllocatePool2` with extended parameters (priority, NUMA node, secure pool).
        fn ExAllocatePool3(Flags: POOL_FLAGS, NumberOfBytes: SIZE_T, Tag: ULONG, ExtendedParameters: *const POOL_EXTENDED_PARAMETER, ExtendedParametersCount: ULONG) -> PVOID;
        /// Initialize a nonpaged lookaside list (NULL `Allocate`/`Free` = the pool's defaults).
        fn ExInitializeNPagedLookasideList(Lookaside: *mut NPAGED_LOOKASIDE_LIST, Allocate: PALLOCATE_FUNCTION, Free: PFREE_FUNCTION, Flags: ULONG, Size: SIZE_T, Tag: ULONG, Depth: USHORT);
        /// Free every cached entry and unregister the list.
        fn ExDeleteNPagedLookasideList(Lookaside: *mut NPAGED_LOOKASIDE_LIST);
        /// What the WDK's inline `InterlockedPopEntrySList` calls on x64 (used by the inline
        /// `ExAllocateFromNPagedLookasideList`).
        fn ExpInterlockedPopEntrySList(ListHead: *mut SLIST_HEADER) -> *mut SLIST_ENTRY;
        /// What the inline `InterlockedPushEntrySList` calls on x64 (used by the inline
        /// `ExFreeToNPagedLookasideList`).
        fn ExpInterlockedPushEntrySList(ListHead: *mut SLIST_HEADER, ListEntry: *mut SLIST_ENTRY) -> *mut SLIST_ENTRY;

        fn IoCreateDevice(DriverObject: *mut DRIVER_OBJECT, DeviceExtensionSize: ULONG, DeviceName: *mut UNICODE_STRING, DeviceType: ULONG, DeviceCharacteristics: ULONG, Exclusive: BOOLEAN, DeviceObject: *mut *mut DEVICE_OBJECT) -> NTSTATUS;
        fn IoDeleteDevice(DeviceObject: *mut DEVICE_OBJECT);
        fn IoCreateSymbolicLink(SymbolicLinkName: *mut UNICODE_STRING, DeviceName: *mut UNICODE_STRING) -> NTSTATUS;
        fn IoDeleteSymbolicLink(SymbolicLinkName: *mut UNICODE_STRING) -> NTSTATUS;
        /// `IoCompleteRequest` is a macro for this.
        fn IofCompleteRequest(Irp: *mut IRP, PriorityBoost: CCHAR);
        fn ObfReferenceObject(Object: PVOID) -> isize;
        fn ObfDereferenceObject(Object: PVOID) -> isize;
        fn RtlInitUnicodeString(DestinationString: *mut UNICODE_STRING, SourceString: *const WCHAR);

        /// Allocate an MDL for `[VirtualAddress, +Length)`, optionally attached to `Irp`.
        fn IoAllocateMdl(VirtualAddress: PVOID, Length: ULONG, SecondaryBuffer: BOOLEAN, ChargeQuota: BOOLEAN, Irp: *mut IRP) -> PMDL;
        /// Free an MDL from IoAllocateMdl.
        fn IoFreeMdl(Mdl: PMDL);
        /// Probe the MDL's buffer for `Operation` and lock its pages (raises on a bad buffer).
        fn MmProbeAndLockPages(MemoryDescriptorList: PMDL, AccessMode: KPROCESSOR_MODE, Operation: LOCK_OPERATION);
        /// Unlock pages locked by MmProbeAndLockPages (and unmap their system mapping).
        fn MmUnlockPages(MemoryDescriptorList: PMDL);
        /// Map an MDL's locked pages into system space (what MmGetSystemAddressForMdlSafe calls).
        fn MmMapLockedPagesSpecifyCache(MemoryDescriptorList: PMDL, AccessMode: KPROCESSOR_MODE, CacheType: MEMORY_CACHING_TYPE, RequestedAddress: PVOID, BugCheckOnFailure: ULONG, Priority: ULONG) -> PVOID;
        /// Release a mapping made by MmMapLockedPagesSpecifyCache.
        fn MmUnmapLockedPages(BaseAddress: PVOID, MemoryDescriptorList: PMDL);
        /// Describe a nonpaged-pool buffer (MappedSystemVa = the buffer, no lock).
        fn MmBuildMdlForNonPagedPool(MemoryDescriptorList: PMDL);

        fn KeInitializeEvent(Event: *mut KEVENT, Type: EVENT_TYPE, State: BOOLEAN);
        fn KeSetEvent(Event: *mut KEVENT, Increment: KPRIORITY, Wait: BOOLEAN) -> LONG;
        fn KeClearEvent(Event: *mut KEVENT);
        fn KeResetEvent(Event: *mut KEVENT) -> LONG;
        fn KeReadStateEvent(Event: *mut KEVENT) -> LONG;
        fn KeWaitForSingleObject(Object: PVOID, WaitReason: KWAIT_REASON, WaitMode: KPROCESSOR_MODE, Alertable: BOOLEAN, Timeout: *mut LARGE_INTEGER) -> NTSTATUS;
        fn KeDelayExecutionThread(WaitMode: KPROCESSOR_MODE, Alertable: BOOLEAN, Interval: *mut LARGE_INTEGER) -> NTSTATUS;
        fn KeAcquireSpinLockRaiseToDpc(SpinLock: *mut KSPIN_LOCK) -> KIRQL;
        fn KeReleaseSpinLock(SpinLock: *mut KSPIN_LOCK, NewIrql: KIRQL);
        fn KeQueryPerformanceCounter(PerformanceFrequency: *mut LARGE_INTEGER) -> LARGE_INTEGER;

        /// The current thread's KTHREAD (inline on x64: `gs:[0x188]`; exported too).
        fn KeGetCurrentThread() -> PVOID;
        /// The current thread's ETHREAD (the KTHREAD is its first member).
        fn PsGetCurrentThread() -> PVOID;
        /// The current processor's number; fills `ProcNumber` (group, number) when non-null.
        fn KeGetCurrentProcessorNumberEx(ProcNumber: *mut PROCESSOR_NUMBER) -> ULONG;
        /// Whether interrupts are enabled on this processor (RFLAGS.IF, which `cli`/`sti` change).
        fn KeAreInterruptsEnabled() -> BOOLEAN;
        /// 100-ns units added to the interrupt time at every clock tick.
        fn KeQueryTimeIncrement() -> ULONG;
        /// Raise STATUS_ACCESS_VIOLATION unless `[Address, Address+Length)` is a properly aligned
        /// user-mode range (nothing is checked when `Length` is 0).
        fn ProbeForRead(Address: PVOID, Length: SIZE_T, Alignment: ULONG);
        /// As `ProbeForRead`, for a range the caller will write.
        fn ProbeForWrite(Address: PVOID, Length: SIZE_T, Alignment: ULONG);
        /// A breakpoint: STATUS_BREAKPOINT, a bug check when no debugger handles it.
        fn DbgBreakPoint();
        /// Raise the exception described by `ExceptionRecord` from the caller's context.
        fn RtlRaiseException(ExceptionRecord: *mut EXCEPTION_RECORD);
        /// Unwind to `TargetFrame`, running termination handlers, and resume at `TargetIp`.
        fn RtlUnwind(TargetFrame: PVOID, TargetIp: PVOID, ExceptionRecord: *mut EXCEPTION_RECORD, ReturnValue: PVOID);
        /// `RtlUnwind` with an explicit context buffer and history table.
        fn RtlUnwindEx(TargetFrame: PVOID, TargetIp: PVOID, ExceptionRecord: *mut EXCEPTION_RECORD, ReturnValue: PVOID, ContextRecord: *mut CONTEXT, HistoryTable: PVOID);
        /// The C language handler of `__try/__except/__finally` (scope-table driven).
        fn __C_specific_handler(ExceptionRecord: *mut EXCEPTION_RECORD, EstablisherFrame: PVOID, ContextRecord: *mut CONTEXT, DispatcherContext: *mut DISPATCHER_CONTEXT) -> EXCEPTION_DISPOSITION;
    }
}

// One file per work stream, under `imports/`; each invokes `ntoskrnl_imports!` once.
#[path = "imports/debugger.rs"]
mod debugger;
#[path = "imports/io_async.rs"]
mod io_async;
#[path = "imports/io_verify.rs"]
mod io_verify;
#[path = "imports/kernel_locks.rs"]
mod kernel_locks;
#[path = "imports/kernel_services.rs"]
mod kernel_services;
#[path = "imports/rtl_crt.rs"]
mod rtl_crt;

#[cfg(any(target_os = "windows", doc))]
#[allow(unused_imports)]
pub use core_group::ffi::*;
#[cfg(any(target_os = "windows", doc))]
#[allow(unused_imports)]
pub use debugger::ffi::*;
#[cfg(any(target_os = "windows", doc))]
#[allow(unused_imports)]
pub use io_async::ffi::*;
#[cfg(any(target_os = "windows", doc))]
#[allow(unused_imports)]
pub use io_verify::ffi::*;
#[cfg(any(target_os = "windows", doc))]
#[allow(unused_imports)]
pub use kernel_locks::ffi::*;
#[cfg(any(target_os = "windows", doc))]
#[allow(unused_imports)]
pub use kernel_services::ffi::*;
#[cfg(any(target_os = "windows", doc))]
#[allow(unused_imports)]
pub use rtl_crt::ffi::*;

/// A function-pointer type for every fixed-arity import, named after it, with the kernel
/// callback convention (`win64` on a non-Windows x86_64 host, `system` on Windows), plus the
/// diverging ones.
#[allow(non_camel_case_types, unused_imports)]
pub mod signatures {
    pub use super::core_group::signatures::*;
    pub use super::debugger::signatures::*;
    pub use super::io_async::signatures::*;
    pub use super::io_verify::signatures::*;
    pub use super::kernel_locks::signatures::*;
    pub use super::kernel_services::signatures::*;
    pub use super::rtl_crt::signatures::*;
    use super::*;
    crate::routine_type!(
        /// `KeBugCheckEx` never returns.
        pub type KeBugCheckEx = unsafe fn(ULONG, ULONG_PTR, ULONG_PTR, ULONG_PTR, ULONG_PTR) -> !
    );
    crate::routine_type!(
        /// `ExRaiseStatus` never returns (the exception is handled elsewhere or bug-checks).
        pub type ExRaiseStatus = unsafe fn(NTSTATUS) -> !
    );
    crate::routine_type!(
        /// `ExRaiseAccessViolation` never returns.
        pub type ExRaiseAccessViolation = unsafe fn() -> !
    );
    crate::routine_type!(
        /// `ExRaiseDatatypeMisalignment` never returns.
        pub type ExRaiseDatatypeMisalignment = unsafe fn() -> !
    );
}

/// Names of the fixed-arity imports, group by group.
pub const FIXED_ARITY_GROUPS: &[&[&str]] = &[
    core_group::NAMES,
    io_async::NAMES,
    io_verify::NAMES,
    kernel_services::NAMES,
    kernel_locks::NAMES,
    rtl_crt::NAMES,
    debugger::NAMES,
];

#[cfg(any(target_os = "windows", doc))]
#[cfg_attr(
    target_os = "windows",
    link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
)]
unsafe extern "system" {
    /// Stop the system with a bug check; used by the panic handler.
    pub fn KeBugCheckEx(
        BugCheckCode: ULONG,
        BugCheckParameter1: ULONG_PTR,
        BugCheckParameter2: ULONG_PTR,
        BugCheckParameter3: ULONG_PTR,
        BugCheckParameter4: ULONG_PTR,
    ) -> !;
}

#[cfg(any(target_os = "windows", doc))]
#[cfg_attr(
    target_os = "windows",
    link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
)]
unsafe extern "C" {
    /// `printf`-style debug output (variadic; `%wZ` prints a `UNICODE_STRING*`).
    pub fn DbgPrint(Format: *const u8, ...) -> ULONG;
    /// `DbgPrint` with a component id and level filter.
    pub fn DbgPrintEx(ComponentId: ULONG, Level: ULONG, Format: *const u8, ...) -> ULONG;
}

#[cfg(any(target_os = "windows", doc))]
#[cfg_attr(
    target_os = "windows",
    link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
)]
unsafe extern "system" {
    /// Raise `Status` as an exception (never returns).
    pub fn ExRaiseStatus(Status: NTSTATUS) -> !;
    /// Raise STATUS_ACCESS_VIOLATION.
    pub fn ExRaiseAccessViolation() -> !;
    /// Raise STATUS_DATATYPE_MISALIGNMENT.
    pub fn ExRaiseDatatypeMisalignment() -> !;
}

/// Imports outside the fixed-arity list: the diverging ones (`KeBugCheckEx`, the `ExRaise*`
/// family) and the variadic printers.
pub const SPECIAL_IMPORTS: &[&str] = &[
    "KeBugCheckEx",
    "DbgPrint",
    "DbgPrintEx",
    "ExRaiseStatus",
    "ExRaiseAccessViolation",
    "ExRaiseDatatypeMisalignment",
];

/// Every import this crate declares.
pub fn all_imports() -> impl Iterator<Item = &'static str> {
    FIXED_ARITY_GROUPS
        .iter()
        .flat_map(|g| g.iter())
        .chain(SPECIAL_IMPORTS.iter())
        .copied()
}

/// The work-item imports a driver built on `io-workitem` must have in its import table.
pub const WORK_ITEM_IMPORTS: &[&str] = &[
    "IoSizeofWorkItem",
    "IoInitializeWorkItem",
    "IoUninitializeWorkItem",
    "IoQueueWorkItem",
    "IoQueueWorkItemEx",
];

/// `DPFLTR_IHVDRIVER_ID`, the component id third-party drivers pass to `DbgPrintEx`.
pub const DPFLTR_IHVDRIVER_ID: ULONG = 77;
/// `DPFLTR_ERROR_LEVEL`: always printed.
pub const DPFLTR_ERROR_LEVEL: ULONG = 0;
/// `DPFLTR_INFO_LEVEL`.
pub const DPFLTR_INFO_LEVEL: ULONG = 3;
