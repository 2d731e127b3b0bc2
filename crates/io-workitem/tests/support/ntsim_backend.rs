//! The ntsim backend: io-workitem's raw calls served by ntsim's emulated ntoskrnl exports,
//! in-process, so tests get Windows semantics and ntsim's verifier checks (work-item state
//! machine, pool tracking by tag, IRQL, leaks). Every call must happen on an ntsim thread
//! (`Machine::run_in_kernel_thread` or a work-item routine).
#![allow(dead_code)]

use std::ffi::c_void;
use std::ptr;

use io_workitem::Backend;
use nt_abi::{
    EXECUTIVE, FALSE, IO_WORKITEM_ROUTINE, IO_WORKITEM_ROUTINE_EX, KERNEL_MODE, KEVENT,
    NOTIFICATION_EVENT, PIO_WORKITEM, POOL_FLAG_NON_PAGED, PVOID, WORK_QUEUE_TYPE,
};
use ntsim::exports;

/// io-workitem on ntsim.
pub struct Ntsim;

// SAFETY: each function forwards to the ntsim export of the same name, which implements the
// ntoskrnl semantics the trait documents (and bug-checks instead of misbehaving when a
// precondition is broken).
unsafe impl Backend for Ntsim {
    type Event = KEVENT;

    fn size_of_work_item() -> u32 {
        // SAFETY: no arguments; any IRQL.
        unsafe { exports::IoSizeofWorkItem() }
    }

    unsafe fn initialize(io_object: *mut c_void, item: PIO_WORKITEM) {
        // SAFETY: forwarded contract (caller).
        unsafe { exports::IoInitializeWorkItem(io_object, item) }
    }

    unsafe fn uninitialize(item: PIO_WORKITEM) {
        // SAFETY: forwarded contract (caller).
        unsafe { exports::IoUninitializeWorkItem(item) }
    }

    unsafe fn queue(
        item: PIO_WORKITEM,
        routine: IO_WORKITEM_ROUTINE,
        queue_type: WORK_QUEUE_TYPE,
        context: PVOID,
    ) {
        // SAFETY: forwarded contract (caller).
        unsafe { exports::IoQueueWorkItem(item, routine, queue_type, context) }
    }

    unsafe fn queue_ex(
        item: PIO_WORKITEM,
        routine: IO_WORKITEM_ROUTINE_EX,
        queue_type: WORK_QUEUE_TYPE,
        context: PVOID,
    ) {
        // SAFETY: forwarded contract (caller).
        unsafe { exports::IoQueueWorkItemEx(item, routine, queue_type, context) }
    }

    unsafe fn alloc_nonpaged(bytes: usize, tag: u32) -> *mut u8 {
        // SAFETY: forwarded contract (caller).
        unsafe { exports::ExAllocatePool2(POOL_FLAG_NON_PAGED, bytes, tag) }.cast()
    }

    unsafe fn free_pool(block: *mut u8, tag: u32) {
        // SAFETY: forwarded contract (caller).
        unsafe { exports::ExFreePoolWithTag(block.cast(), tag) }
    }

    unsafe fn event_init(event: *mut KEVENT) {
        // SAFETY: forwarded contract (caller).
        unsafe { exports::KeInitializeEvent(event, NOTIFICATION_EVENT, FALSE) }
    }

    unsafe fn event_signal(event: *mut KEVENT) {
        // SAFETY: forwarded contract (caller).
        unsafe { exports::KeSetEvent(event, 0, FALSE) };
    }

    unsafe fn event_wait(event: *mut KEVENT) {
        // SAFETY: forwarded contract (caller): initialized event, PASSIVE_LEVEL, no timeout.
        unsafe {
            exports::KeWaitForSingleObject(
                event.cast(),
                EXECUTIVE,
                KERNEL_MODE,
                FALSE,
                ptr::null_mut(),
            )
        };
    }

    unsafe fn reference_object(object: *mut c_void) {
        // SAFETY: forwarded contract (caller).
        unsafe { exports::ObfReferenceObject(object) };
    }

    unsafe fn dereference_object(object: *mut c_void) {
        // SAFETY: forwarded contract (caller).
        unsafe { exports::ObfDereferenceObject(object) };
    }

    unsafe fn event_destroy(_event: *mut KEVENT) {}
}
