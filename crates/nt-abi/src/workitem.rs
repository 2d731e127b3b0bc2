//! Work items: `IO_WORKITEM` (opaque, caller-sized), queue types and routine signatures.
#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::c_void;

use crate::io::DEVICE_OBJECT;
use crate::types::*;

/// `IO_WORKITEM` is opaque: its size comes from `IoSizeofWorkItem()` at run time (0x40 on
/// Windows 7, 0x58 on Windows 10 x64, 0x60 on recent builds) and must never be hard-coded.
#[repr(C)]
pub struct IO_WORKITEM {
    _opaque: [u8; 0],
    _pinned: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
}

pub type PIO_WORKITEM = *mut IO_WORKITEM;

crate::routine_type!(
    /// `IO_WORKITEM_ROUTINE`, for `IoQueueWorkItem`.
    pub type IO_WORKITEM_ROUTINE = unsafe fn(DeviceObject: *mut DEVICE_OBJECT, Context: PVOID)
);
crate::routine_type!(
    /// `IO_WORKITEM_ROUTINE_EX`, for `IoQueueWorkItemEx`.
    pub type IO_WORKITEM_ROUTINE_EX =
        unsafe fn(IoObject: *mut c_void, Context: PVOID, IoWorkItem: PIO_WORKITEM)
);
crate::routine_type!(
    /// `WORKER_THREAD_ROUTINE`, for `ExQueueWorkItem`.
    pub type WORKER_THREAD_ROUTINE = unsafe fn(Parameter: PVOID)
);

/// `WORK_QUEUE_TYPE`.
pub type WORK_QUEUE_TYPE = i32;
pub const CRITICAL_WORK_QUEUE: WORK_QUEUE_TYPE = 0;
pub const DELAYED_WORK_QUEUE: WORK_QUEUE_TYPE = 1;
pub const HYPER_CRITICAL_WORK_QUEUE: WORK_QUEUE_TYPE = 2;
pub const NORMAL_WORK_QUEUE: WORK_QUEUE_TYPE = 3;
pub const BACKGROUND_WORK_QUEUE: WORK_QUEUE_TYPE = 4;
pub const REAL_TIME_WORK_QUEUE: WORK_QUEUE_TYPE = 5;
pub const SUPER_CRITICAL_WORK_QUEUE: WORK_QUEUE_TYPE = 6;
pub const MAXIMUM_WORK_QUEUE: WORK_QUEUE_TYPE = 7;
/// `CustomPriorityWorkQueue`: add a priority (0–31) to this base.
pub const CUSTOM_PRIORITY_WORK_QUEUE: WORK_QUEUE_TYPE = 32;
/// Highest priority a custom-priority queue type may carry.
pub const CUSTOM_PRIORITY_MAX: i32 = 31;

/// Whether ntoskrnl accepts `queue_type` (0–6 and 32–63); anything else is bug check
/// `WORKER_INVALID` (0xE4) with parameter 1 = 6.
pub const fn is_valid_work_queue_type(queue_type: WORK_QUEUE_TYPE) -> bool {
    (queue_type >= CRITICAL_WORK_QUEUE && queue_type < MAXIMUM_WORK_QUEUE)
        || (queue_type >= CUSTOM_PRIORITY_WORK_QUEUE
            && queue_type <= CUSTOM_PRIORITY_WORK_QUEUE + CUSTOM_PRIORITY_MAX)
}

/// `WORK_QUEUE_ITEM`, the executive work item that `ExQueueWorkItem` takes.
#[repr(C)]
pub struct WORK_QUEUE_ITEM {
    pub List: LIST_ENTRY,
    pub WorkerRoutine: Option<WORKER_THREAD_ROUTINE>,
    pub Parameter: PVOID,
}

/// Sizes `IoSizeofWorkItem` returns on shipped x64 Windows versions, smallest first. (x64
/// figures: ARM64 builds report their own size at run time, which is why the value is never
/// hard-coded.)
pub const KNOWN_IO_WORKITEM_SIZES: [ULONG; 3] = [0x40, 0x58, 0x60];
