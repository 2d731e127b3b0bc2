//! The raw kernel calls the safe layer is built on, behind a zero-sized, statically dispatched
//! trait so the same code runs on ntoskrnl (the driver), on ntsim (tests) and on a pure-Rust
//! fake (loom).

use core::ffi::c_void;

use nt_abi::{IO_WORKITEM_ROUTINE, IO_WORKITEM_ROUTINE_EX, PIO_WORKITEM, PVOID, WORK_QUEUE_TYPE};

/// The kernel services the work-item layer needs, as associated functions of a zero-sized type.
///
/// Every function mirrors one ntoskrnl export (or a short sequence of them, for the event), with
/// the same contract and IRQL rules. There is no `self`: a backend is chosen by type, so the
/// calls are static and inline like the raw imports.
///
/// # Safety
///
/// An implementation promises Windows semantics for each call, as documented on it: in
/// particular `alloc_nonpaged` returns zeroed, 16-byte-aligned memory that stays valid until
/// `free_pool`; `queue`/`queue_ex` run `routine(…, context)` exactly once, later, on another
/// thread, after the item has been dequeued; `event_wait` returns only after `event_signal`
/// has been called on the same event, with everything written before the signal visible after
/// the wait; `reference_object` keeps the object's memory valid until the matching
/// `dereference_object`, whatever else happens to the object meanwhile (`IoDeleteDevice`
/// included). The safe types rely on these for memory safety.
///
/// Implementations in this crate: `NtKernel` (the raw `ntoskrnl.exe` imports, Windows targets)
/// and `WdkSys` (the same exports through windows-drivers-rs' `wdk-sys` bindings, feature
/// `wdk-sys`). The tests add an ntsim backend and a pure-Rust fake.
pub unsafe trait Backend: 'static {
    /// Storage for one event object (a `KEVENT` on ntoskrnl). It is initialized in place by
    /// [`Backend::event_init`] and never moved afterwards.
    type Event;

    /// `IoSizeofWorkItem()`: the size in bytes of an `IO_WORKITEM` on the running system.
    /// Any IRQL.
    fn size_of_work_item() -> u32;

    /// `IoInitializeWorkItem(io_object, item)`.
    ///
    /// # Safety
    ///
    /// `item` points to at least `size_of_work_item()` bytes of nonpaged, 16-byte-aligned memory
    /// that does not hold an initialized work item; `io_object` is a live device object (or a
    /// driver object, if the item is only ever queued with [`Backend::queue_ex`]).
    unsafe fn initialize(io_object: *mut c_void, item: PIO_WORKITEM);

    /// `IoUninitializeWorkItem(item)`.
    ///
    /// # Safety
    ///
    /// `item` was initialized by [`Backend::initialize`], is not queued, and is not
    /// uninitialized twice.
    unsafe fn uninitialize(item: PIO_WORKITEM);

    /// `IoQueueWorkItem(item, routine, queue_type, context)`. IRQL ≤ DISPATCH_LEVEL.
    ///
    /// # Safety
    ///
    /// `item` is initialized against a device object and not queued; `queue_type` is one the
    /// kernel accepts; `routine` may be called with `context` on a system worker thread.
    unsafe fn queue(
        item: PIO_WORKITEM,
        routine: IO_WORKITEM_ROUTINE,
        queue_type: WORK_QUEUE_TYPE,
        context: PVOID,
    );

    /// `IoQueueWorkItemEx(item, routine, queue_type, context)`. IRQL ≤ DISPATCH_LEVEL.
    ///
    /// # Safety
    ///
    /// As for [`Backend::queue`]; the item may also be initialized against a driver object.
    unsafe fn queue_ex(
        item: PIO_WORKITEM,
        routine: IO_WORKITEM_ROUTINE_EX,
        queue_type: WORK_QUEUE_TYPE,
        context: PVOID,
    );

    /// `ExAllocatePool2(POOL_FLAG_NON_PAGED, bytes, tag)`: zeroed, 16-byte aligned, or null.
    /// IRQL ≤ DISPATCH_LEVEL.
    ///
    /// # Safety
    ///
    /// `bytes` is not zero and `tag` is not zero.
    unsafe fn alloc_nonpaged(bytes: usize, tag: u32) -> *mut u8;

    /// `ExFreePoolWithTag(block, tag)`. IRQL ≤ DISPATCH_LEVEL.
    ///
    /// # Safety
    ///
    /// `block` came from [`Backend::alloc_nonpaged`] with the same `tag` and is not used or
    /// freed again.
    unsafe fn free_pool(block: *mut u8, tag: u32);

    /// Initialize a notification event, not signalled (`KeInitializeEvent(e, NotificationEvent,
    /// FALSE)`).
    ///
    /// # Safety
    ///
    /// `event` points to writable, nonpaged storage for a `Self::Event` that will not move until
    /// [`Backend::event_destroy`].
    unsafe fn event_init(event: *mut Self::Event);

    /// Signal the event (`KeSetEvent(e, IO_NO_INCREMENT, FALSE)`). IRQL ≤ DISPATCH_LEVEL.
    ///
    /// # Safety
    ///
    /// `event` was initialized by [`Backend::event_init`] and not destroyed.
    unsafe fn event_signal(event: *mut Self::Event);

    /// Wait until the event is signalled (`KeWaitForSingleObject(e, Executive, KernelMode,
    /// FALSE, NULL)`). PASSIVE_LEVEL only.
    ///
    /// # Safety
    ///
    /// `event` was initialized by [`Backend::event_init`] and not destroyed; the caller runs at
    /// PASSIVE_LEVEL.
    unsafe fn event_wait(event: *mut Self::Event);

    /// `ObfReferenceObject(object)` (what the `ObReferenceObject` macro calls): one more
    /// reference on a kernel object. IRQL ≤ DISPATCH_LEVEL.
    ///
    /// # Safety
    ///
    /// `object` is a live object (device or driver object) with a reference count above zero.
    unsafe fn reference_object(object: *mut c_void);

    /// `ObfDereferenceObject(object)`: release a reference taken by
    /// [`Backend::reference_object`]. IRQL ≤ DISPATCH_LEVEL.
    ///
    /// # Safety
    ///
    /// The caller owns a reference on `object` and does not use the object afterwards.
    unsafe fn dereference_object(object: *mut c_void);

    /// Release whatever [`Backend::event_init`] set up (nothing, for a `KEVENT`).
    ///
    /// # Safety
    ///
    /// `event` was initialized, nobody waits on or signals it any more, and it is not used again
    /// until re-initialized.
    unsafe fn event_destroy(event: *mut Self::Event);
}

/// The real `ntoskrnl.exe` imports as nt-abi declares them (linked with `raw-dylib`, so no WDK
/// or import library is needed): the backend the wdm-workitem driver uses, and the one to use
/// for a driver cross-built without the WDK. Windows targets (x64 and ARM64) only.
#[cfg(any(windows, doc))]
#[derive(Clone, Copy, Debug, Default)]
pub struct NtKernel;

// Documentation built on a non-Windows host has no ntoskrnl imports to call; the impl is shown
// (so the docs list every backend) with bodies that are never compiled into anything that runs.
#[cfg(all(doc, not(windows)))]
crate::backend::doc_stub_backend!(NtKernel, nt_abi::KEVENT);

#[cfg(windows)]
mod nt_kernel {
    use core::ffi::c_void;
    use core::ptr;

    use nt_abi::imports::{
        ExAllocatePool2, ExFreePoolWithTag, IoInitializeWorkItem, IoQueueWorkItem,
        IoQueueWorkItemEx, IoSizeofWorkItem, IoUninitializeWorkItem, KeInitializeEvent, KeSetEvent,
        KeWaitForSingleObject,
    };
    use nt_abi::imports::{ObfDereferenceObject, ObfReferenceObject};
    use nt_abi::{
        EXECUTIVE, FALSE, IO_WORKITEM_ROUTINE, IO_WORKITEM_ROUTINE_EX, KERNEL_MODE, KEVENT,
        NOTIFICATION_EVENT, PIO_WORKITEM, POOL_FLAG_NON_PAGED, PVOID, WORK_QUEUE_TYPE,
    };

    use super::{Backend, NtKernel};

    // SAFETY: each function forwards to the ntoskrnl export of the same name, which has exactly
    // the documented semantics the trait requires; the callers' obligations are the exports'.
    unsafe impl Backend for NtKernel {
        type Event = KEVENT;

        #[inline]
        fn size_of_work_item() -> u32 {
            // SAFETY: IoSizeofWorkItem takes no arguments, touches no caller memory and may be
            // called at any IRQL.
            unsafe { IoSizeofWorkItem() }
        }

        #[inline]
        unsafe fn initialize(io_object: *mut c_void, item: PIO_WORKITEM) {
            // SAFETY: the caller guarantees nonpaged storage of IoSizeofWorkItem bytes and a live
            // I/O object, which is IoInitializeWorkItem's whole contract.
            unsafe { IoInitializeWorkItem(io_object, item) }
        }

        #[inline]
        unsafe fn uninitialize(item: PIO_WORKITEM) {
            // SAFETY: the caller guarantees the item is initialized and not queued.
            unsafe { IoUninitializeWorkItem(item) }
        }

        #[inline]
        unsafe fn queue(
            item: PIO_WORKITEM,
            routine: IO_WORKITEM_ROUTINE,
            queue_type: WORK_QUEUE_TYPE,
            context: PVOID,
        ) {
            // SAFETY: the caller guarantees an initialized, unqueued item, a valid queue type
            // and a routine that may run with `context`.
            unsafe { IoQueueWorkItem(item, routine, queue_type, context) }
        }

        #[inline]
        unsafe fn queue_ex(
            item: PIO_WORKITEM,
            routine: IO_WORKITEM_ROUTINE_EX,
            queue_type: WORK_QUEUE_TYPE,
            context: PVOID,
        ) {
            // SAFETY: as for `queue`.
            unsafe { IoQueueWorkItemEx(item, routine, queue_type, context) }
        }

        #[inline]
        unsafe fn alloc_nonpaged(bytes: usize, tag: u32) -> *mut u8 {
            // SAFETY: non-zero size and tag are the caller's obligation; NON_PAGED (NX) memory
            // is what work items require.
            unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, bytes, tag) }.cast()
        }

        #[inline]
        unsafe fn free_pool(block: *mut u8, tag: u32) {
            // SAFETY: the caller guarantees `block` came from ExAllocatePool2 with `tag`.
            unsafe { ExFreePoolWithTag(block.cast(), tag) }
        }

        #[inline]
        unsafe fn event_init(event: *mut KEVENT) {
            // SAFETY: the caller provides writable nonpaged KEVENT storage that will not move.
            unsafe { KeInitializeEvent(event, NOTIFICATION_EVENT, FALSE) }
        }

        #[inline]
        unsafe fn event_signal(event: *mut KEVENT) {
            // SAFETY: the event is initialized (caller); Wait = FALSE keeps the IRQL unchanged.
            unsafe { KeSetEvent(event, 0, FALSE) };
        }

        #[inline]
        unsafe fn event_wait(event: *mut KEVENT) {
            // SAFETY: initialized event, PASSIVE_LEVEL caller, no timeout (NULL) so the wait ends
            // only when the event is signalled; a kernel-mode wait keeps the stack resident.
            unsafe {
                KeWaitForSingleObject(event.cast(), EXECUTIVE, KERNEL_MODE, FALSE, ptr::null_mut())
            };
        }

        #[inline]
        unsafe fn reference_object(object: *mut c_void) {
            // SAFETY: the caller guarantees a live object with a non-zero count; the returned
            // new count is not needed.
            unsafe { ObfReferenceObject(object) };
        }

        #[inline]
        unsafe fn dereference_object(object: *mut c_void) {
            // SAFETY: the caller owns the reference released here and stops using the object.
            unsafe { ObfDereferenceObject(object) };
        }

        #[inline]
        unsafe fn event_destroy(_event: *mut KEVENT) {}
    }
}

/// A `Backend` impl for documentation builds on hosts where the backend's imports do not exist
/// (rustdoc lists it as an implementor; no code built from it ever runs).
#[cfg(doc)]
macro_rules! doc_stub_backend {
    ($backend:ty, $event:ty) => {
        // SAFETY: documentation only: this impl exists when rustdoc documents the crate on a host
        // without the backend's kernel imports, and is never part of a build that runs. The real
        // impl (forwarding to the kernel) is compiled for the backend's targets.
        unsafe impl $crate::Backend for $backend {
            type Event = $event;
            fn size_of_work_item() -> u32 {
                unreachable!()
            }
            unsafe fn initialize(_: *mut core::ffi::c_void, _: nt_abi::PIO_WORKITEM) {}
            unsafe fn uninitialize(_: nt_abi::PIO_WORKITEM) {}
            unsafe fn queue(
                _: nt_abi::PIO_WORKITEM,
                _: nt_abi::IO_WORKITEM_ROUTINE,
                _: nt_abi::WORK_QUEUE_TYPE,
                _: nt_abi::PVOID,
            ) {
            }
            unsafe fn queue_ex(
                _: nt_abi::PIO_WORKITEM,
                _: nt_abi::IO_WORKITEM_ROUTINE_EX,
                _: nt_abi::WORK_QUEUE_TYPE,
                _: nt_abi::PVOID,
            ) {
            }
            unsafe fn alloc_nonpaged(_: usize, _: u32) -> *mut u8 {
                core::ptr::null_mut()
            }
            unsafe fn free_pool(_: *mut u8, _: u32) {}
            unsafe fn event_init(_: *mut Self::Event) {}
            unsafe fn event_signal(_: *mut Self::Event) {}
            unsafe fn event_wait(_: *mut Self::Event) {}
            unsafe fn reference_object(_: *mut core::ffi::c_void) {}
            unsafe fn dereference_object(_: *mut core::ffi::c_void) {}
            unsafe fn event_destroy(_: *mut Self::Event) {}
        }
    };
}
#[cfg(doc)]
pub(crate) use doc_stub_backend;
