// A routine stashing its item somewhere that outlives the routine (and so the slab's drain):
// the item's lifetime is local to `run`, so it cannot become `'static`.
use std::ffi::c_void;
use std::sync::Mutex;

use io_workitem::{Backend, Routine, WorkItem};
use nt_abi::{IO_WORKITEM_ROUTINE, IO_WORKITEM_ROUTINE_EX, PIO_WORKITEM, PVOID, WORK_QUEUE_TYPE};

/// A backend that only has to type-check: this file must not compile anyway.
struct Kernel;
// SAFETY: never instantiated or called; the file is a compile-fail test.
unsafe impl Backend for Kernel {
    type Event = ();
    fn size_of_work_item() -> u32 { unimplemented!() }
    unsafe fn initialize(_: *mut c_void, _: PIO_WORKITEM) { unimplemented!() }
    unsafe fn uninitialize(_: PIO_WORKITEM) { unimplemented!() }
    unsafe fn queue(_: PIO_WORKITEM, _: IO_WORKITEM_ROUTINE, _: WORK_QUEUE_TYPE, _: PVOID) { unimplemented!() }
    unsafe fn queue_ex(_: PIO_WORKITEM, _: IO_WORKITEM_ROUTINE_EX, _: WORK_QUEUE_TYPE, _: PVOID) { unimplemented!() }
    unsafe fn alloc_nonpaged(_: usize, _: u32) -> *mut u8 { unimplemented!() }
    unsafe fn free_pool(_: *mut u8, _: u32) { unimplemented!() }
    unsafe fn event_init(_: *mut ()) { unimplemented!() }
    unsafe fn event_signal(_: *mut ()) { unimplemented!() }
    unsafe fn event_wait(_: *mut ()) { unimplemented!() }
    unsafe fn reference_object(_: *mut c_void) { unimplemented!() }
    unsafe fn dereference_object(_: *mut c_void) { unimplemented!() }
    unsafe fn event_destroy(_: *mut ()) { unimplemented!() }
}

static STASH: Mutex<Option<WorkItem<'static, Kernel, u32>>> = Mutex::new(None);

struct R;
impl Routine<Kernel, u32> for R {
    fn run(item: WorkItem<'_, Kernel, u32>) {
        *STASH.lock().unwrap() = Some(item);
    }
}

fn main() {}
