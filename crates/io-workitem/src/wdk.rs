//! The `wdk-sys` backend: the same ntoskrnl exports as [`NtKernel`](crate::NtKernel), called
//! through windows-drivers-rs' bindgen bindings (`wdk_sys::ntddk`) and linked with the WDK's
//! import libraries. Feature `wdk-sys`; Windows targets (x64 and ARM64) only.
//!
//! The two crates spell the same C types differently: nt-abi's routine types are `unsafe extern
//! "system" fn(*mut nt_abi::DEVICE_OBJECT, …)`, bindgen's are `Option<unsafe extern "C"
//! fn(*mut wdk_sys::_DEVICE_OBJECT, …)>`, and every object pointer has its own nominal type on
//! each side. Data pointers are cast where they are passed; the two routine pointers are
//! converted in one place, `imp::routine` / `imp::routine_ex`, whose soundness argument is written
//! there once.

/// io-workitem over windows-drivers-rs' `wdk-sys`: for drivers built with the WDK
/// (`cargo make`, wdk-build), with `io-workitem = { version = "0.1", features = ["wdk-sys"] }`.
/// Same contract as [`NtKernel`](crate::NtKernel); use it through [`WdkSlab`](crate::WdkSlab),
/// [`WdkWorkItem`](crate::WdkWorkItem) and [`WdkDetached`](crate::WdkDetached).
#[derive(Clone, Copy, Debug, Default)]
pub struct WdkSys;

#[cfg(all(doc, not(feature = "wdk-sys")))]
crate::backend::doc_stub_backend!(WdkSys, nt_abi::KEVENT);

#[cfg(feature = "wdk-sys")]
mod imp {
    use core::ffi::c_void;
    use core::ptr;

    use nt_abi::{
        IO_WORKITEM_ROUTINE, IO_WORKITEM_ROUTINE_EX, PIO_WORKITEM, PVOID, WORK_QUEUE_TYPE,
    };
    use wdk_sys::ntddk;

    use super::WdkSys;
    use crate::Backend;

    // "system" (nt-abi) and "C" (bindgen) name the same convention only where `system` is not
    // `stdcall`, i.e. on 64-bit Windows. The conversion below relies on it.
    #[cfg(not(all(windows, any(target_arch = "x86_64", target_arch = "aarch64"))))]
    compile_error!(
        "io-workitem's wdk-sys backend is for x86_64/aarch64 Windows targets, where \
         extern \"system\" and extern \"C\" are the same calling convention"
    );

    /// nt-abi's `IO_WORKITEM_ROUTINE` as bindgen's `PIO_WORKITEM_ROUTINE`.
    ///
    /// This and [`routine_ex`] are the only places the two crates' function-pointer types meet.
    #[inline]
    fn routine(r: IO_WORKITEM_ROUTINE) -> wdk_sys::PIO_WORKITEM_ROUTINE {
        // SAFETY: on 64-bit Windows (enforced above) `extern "system"` and `extern "C"` are the
        // same calling convention; the parameters are, in order, a device-object pointer and a
        // `PVOID` on both sides (thin pointers of identical size and ABI class; the pointee
        // types are the same C struct, whose layout src/wdk_checks.rs and nt-abi's tables pin);
        // both return nothing. A non-null function pointer is a valid `Some` of the `Option`.
        Some(unsafe {
            core::mem::transmute::<
                IO_WORKITEM_ROUTINE,
                unsafe extern "C" fn(*mut wdk_sys::DEVICE_OBJECT, wdk_sys::PVOID),
            >(r)
        })
    }

    /// nt-abi's `IO_WORKITEM_ROUTINE_EX` as bindgen's `PIO_WORKITEM_ROUTINE_EX`.
    #[inline]
    fn routine_ex(r: IO_WORKITEM_ROUTINE_EX) -> wdk_sys::PIO_WORKITEM_ROUTINE_EX {
        // SAFETY: as in `routine`: same convention on 64-bit Windows, and three thin pointers
        // (I/O object, context, work item) in the same order on both sides, no return value.
        Some(unsafe {
            core::mem::transmute::<
                IO_WORKITEM_ROUTINE_EX,
                unsafe extern "C" fn(wdk_sys::PVOID, wdk_sys::PVOID, wdk_sys::PIO_WORKITEM),
            >(r)
        })
    }

    /// `KernelMode`, `Executive`, `NotificationEvent`: bindgen's module-constant enums.
    const KERNEL_MODE: wdk_sys::KPROCESSOR_MODE = wdk_sys::_MODE::KernelMode as _;
    const FALSE: wdk_sys::BOOLEAN = 0;

    // SAFETY: each function forwards to the ntoskrnl export of the same name (through the WDK's
    // import library), which has exactly the documented semantics the trait requires; the
    // callers' obligations are the exports'. Pointers are only re-typed, never changed.
    unsafe impl Backend for WdkSys {
        type Event = wdk_sys::KEVENT;

        #[inline]
        fn size_of_work_item() -> u32 {
            // SAFETY: no arguments, no caller memory, any IRQL.
            unsafe { ntddk::IoSizeofWorkItem() }
        }

        #[inline]
        unsafe fn initialize(io_object: *mut c_void, item: PIO_WORKITEM) {
            // SAFETY: the caller guarantees nonpaged storage of IoSizeofWorkItem bytes and a
            // live I/O object.
            unsafe { ntddk::IoInitializeWorkItem(io_object, item.cast()) }
        }

        #[inline]
        unsafe fn uninitialize(item: PIO_WORKITEM) {
            // SAFETY: the caller guarantees the item is initialized and not queued.
            unsafe { ntddk::IoUninitializeWorkItem(item.cast()) }
        }

        #[inline]
        unsafe fn queue(
            item: PIO_WORKITEM,
            r: IO_WORKITEM_ROUTINE,
            queue_type: WORK_QUEUE_TYPE,
            context: PVOID,
        ) {
            // SAFETY: the caller guarantees an initialized, unqueued item, a valid queue type
            // and a routine that may run with `context`; `routine` keeps the routine as is.
            unsafe { ntddk::IoQueueWorkItem(item.cast(), routine(r), queue_type as _, context) }
        }

        #[inline]
        unsafe fn queue_ex(
            item: PIO_WORKITEM,
            r: IO_WORKITEM_ROUTINE_EX,
            queue_type: WORK_QUEUE_TYPE,
            context: PVOID,
        ) {
            // SAFETY: as for `queue`.
            unsafe {
                ntddk::IoQueueWorkItemEx(item.cast(), routine_ex(r), queue_type as _, context)
            }
        }

        #[inline]
        unsafe fn alloc_nonpaged(bytes: usize, tag: u32) -> *mut u8 {
            // SAFETY: non-zero size and tag are the caller's obligation; NON_PAGED (NX) memory
            // is what work items require.
            unsafe { ntddk::ExAllocatePool2(wdk_sys::POOL_FLAG_NON_PAGED, bytes as _, tag) }.cast()
        }

        #[inline]
        unsafe fn free_pool(block: *mut u8, tag: u32) {
            // SAFETY: the caller guarantees `block` came from ExAllocatePool2 with `tag`.
            unsafe { ntddk::ExFreePoolWithTag(block.cast(), tag) }
        }

        #[inline]
        unsafe fn event_init(event: *mut wdk_sys::KEVENT) {
            // SAFETY: the caller provides writable nonpaged KEVENT storage that will not move.
            unsafe {
                ntddk::KeInitializeEvent(event, wdk_sys::_EVENT_TYPE::NotificationEvent, FALSE)
            }
        }

        #[inline]
        unsafe fn event_signal(event: *mut wdk_sys::KEVENT) {
            // SAFETY: the event is initialized (caller); Wait = FALSE keeps the IRQL unchanged.
            unsafe { ntddk::KeSetEvent(event, 0, FALSE) };
        }

        #[inline]
        unsafe fn event_wait(event: *mut wdk_sys::KEVENT) {
            // SAFETY: initialized event, PASSIVE_LEVEL caller, no timeout (NULL): the wait ends
            // only when the event is signalled, so the status is always STATUS_SUCCESS.
            let _ = unsafe {
                ntddk::KeWaitForSingleObject(
                    event.cast(),
                    wdk_sys::_KWAIT_REASON::Executive,
                    KERNEL_MODE,
                    FALSE,
                    ptr::null_mut(),
                )
            };
        }

        #[inline]
        unsafe fn reference_object(object: *mut c_void) {
            // SAFETY: the caller guarantees a live object with a non-zero count.
            unsafe { ntddk::ObfReferenceObject(object) };
        }

        #[inline]
        unsafe fn dereference_object(object: *mut c_void) {
            // SAFETY: the caller owns the reference released here and stops using the object.
            unsafe { ntddk::ObfDereferenceObject(object) };
        }

        #[inline]
        unsafe fn event_destroy(_event: *mut wdk_sys::KEVENT) {}
    }
}
