//! A pure-Rust fake of the kernel's work-item, pool and event services, strict about the rules
//! ntoskrnl and Driver Verifier enforce. Used by the std tests and by the loom models (where
//! threads, mutexes and condition variables come from loom).
//!
//! Each `Fake<ID>` type has its own global state (tests in one binary run in parallel), checked
//! on every call:
//! - initialize: 16-aligned storage inside a live pool block, not already initialized;
//! - uninitialize: initialized and not queued (else "WORKER_INVALID 2");
//! - queue: initialized, not queued (else "WORKER_INVALID 1"), valid queue type;
//! - free: tag matches, and no initialized item is left in the block (else "WORKER_INVALID 0");
//! - dereference: only a referenced object (else "0xC4/0x3F reference count underflow"); a
//!   `FakeDevice`/`FakeDriver` dropped while referenced panics (its memory would be freed under
//!   a holder of a reference).
//!
//! A violation panics with the bug check it models.
#![allow(dead_code)]

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::{HashMap, HashSet};
use std::ffi::c_void;
use std::sync::LazyLock;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

#[cfg(loom)]
use loom::sync::{Condvar, Mutex};
#[cfg(loom)]
use loom::thread;
#[cfg(not(loom))]
use std::sync::{Condvar, Mutex};
#[cfg(not(loom))]
use std::thread;

use io_workitem::Backend;
use nt_abi::{
    DEVICE_OBJECT, DRIVER_OBJECT, IO_TYPE_DEVICE, IO_TYPE_DRIVER, IO_WORKITEM_ROUTINE,
    IO_WORKITEM_ROUTINE_EX, PIO_WORKITEM, PVOID, WORK_QUEUE_TYPE, is_valid_work_queue_type,
};

const UNINIT: u64 = 0;
const INIT: u64 = 0x1417_1417_1417_0001;
const QUEUED: u64 = 0x1417_1417_1417_0002;

/// Global state of one fake kernel.
pub struct State {
    pub item_size: AtomicU32,
    pub live_blocks: StdMutex<Vec<(usize, usize, u32)>>,
    pub live_items: LazyLock<StdMutex<HashSet<usize>>>,
    pub inits: AtomicU64,
    pub uninits: AtomicU64,
    pub queues: AtomicU64,
    pub queues_ex: AtomicU64,
    pub runs: AtomicU64,
    pub last_queue_type: AtomicU32,
    pub events_live: AtomicUsize,
    /// Object address → references taken with `reference_object` and not yet released.
    pub object_refs: LazyLock<StdMutex<HashMap<usize, i64>>>,
}

impl State {
    const fn new() -> Self {
        State {
            item_size: AtomicU32::new(0x58),
            live_blocks: StdMutex::new(Vec::new()),
            live_items: LazyLock::new(|| StdMutex::new(HashSet::new())),
            inits: AtomicU64::new(0),
            uninits: AtomicU64::new(0),
            queues: AtomicU64::new(0),
            queues_ex: AtomicU64::new(0),
            runs: AtomicU64::new(0),
            last_queue_type: AtomicU32::new(u32::MAX),
            events_live: AtomicUsize::new(0),
            object_refs: LazyLock::new(|| StdMutex::new(HashMap::new())),
        }
    }

    /// Panic unless nothing is allocated, initialized or live.
    pub fn assert_no_leaks(&self) {
        assert!(self.live_blocks.lock().unwrap().is_empty(), "pool leaked");
        assert!(
            self.live_items.lock().unwrap().is_empty(),
            "work item left initialized"
        );
        assert_eq!(
            self.events_live.load(Ordering::SeqCst),
            0,
            "event not destroyed"
        );
        assert_eq!(
            self.inits.load(Ordering::SeqCst),
            self.uninits.load(Ordering::SeqCst),
            "initialize/uninitialize imbalance"
        );
        assert!(
            self.object_refs.lock().unwrap().values().all(|&n| n == 0),
            "object reference leaked: {:?}",
            self.object_refs.lock().unwrap()
        );
    }

    /// References currently held on `object` through the fake's `reference_object`.
    pub fn refs_on(&self, object: *mut c_void) -> i64 {
        *self
            .object_refs
            .lock()
            .unwrap()
            .get(&(object as usize))
            .unwrap_or(&0)
    }
}

pub static STATES: [State; 16] = [const { State::new() }; 16];

/// The fake kernel number `ID` (0..16); give each test its own.
pub struct Fake<const ID: usize>;

impl<const ID: usize> Fake<ID> {
    pub fn state() -> &'static State {
        &STATES[ID]
    }

    /// Zero the counters (blocks and items must already be gone).
    pub fn reset() {
        let s = Self::state();
        s.assert_no_leaks();
        for c in [&s.inits, &s.uninits, &s.queues, &s.queues_ex, &s.runs] {
            c.store(0, Ordering::SeqCst);
        }
    }

    fn word(item: PIO_WORKITEM) -> &'static AtomicU64 {
        // SAFETY: callers pass initialized-or-initializable work-item storage of at least
        // `item_size` (≥ 8) bytes, 16-aligned, that outlives the call (checked to be inside a
        // live block first, for initialize).
        unsafe { &*(item as *const AtomicU64) }
    }

    fn in_live_block(addr: usize, len: usize) -> bool {
        Self::state()
            .live_blocks
            .lock()
            .unwrap()
            .iter()
            .any(|&(start, size, _)| addr >= start && addr + len <= start + size)
    }
}

/// Moves raw pointers to a worker thread.
struct Job {
    device: *mut c_void,
    context: PVOID,
    item: PIO_WORKITEM,
    routine: Option<IO_WORKITEM_ROUTINE>,
    routine_ex: Option<IO_WORKITEM_ROUTINE_EX>,
}
// SAFETY: the pointers are handed to the routine exactly as the kernel would hand them to a
// worker thread.
unsafe impl Send for Job {}

fn spawn_worker<const ID: usize>(job: Job) {
    thread::spawn(move || {
        let job = job;
        // The system dequeues the item before it calls the routine.
        let prev = Fake::<ID>::word(job.item).swap(INIT, Ordering::SeqCst);
        assert_eq!(prev, QUEUED, "fake: dequeued an item that was not queued");
        Fake::<ID>::state().runs.fetch_add(1, Ordering::SeqCst);
        match (job.routine, job.routine_ex) {
            // SAFETY: the routine and context were passed to IoQueueWorkItem together.
            (Some(r), None) => unsafe { r(job.device.cast::<DEVICE_OBJECT>(), job.context) },
            // SAFETY: as above, for IoQueueWorkItemEx.
            (None, Some(r)) => unsafe { r(job.device, job.context, job.item) },
            _ => unreachable!(),
        }
    });
}

/// Where each item's I/O object is remembered (item address → object), for the routines.
static IO_OBJECTS: LazyLock<StdMutex<HashMap<usize, usize>>> =
    LazyLock::new(|| StdMutex::new(HashMap::new()));

fn io_object_of(item: PIO_WORKITEM) -> *mut c_void {
    let objects = IO_OBJECTS.lock().unwrap();
    let obj = objects
        .get(&(item as usize))
        .expect("fake: queued item has no I/O object");
    *obj as *mut c_void
}

/// Event: a flag under a mutex, with a condition variable.
pub struct FakeEvent {
    signalled: Mutex<bool>,
    cond: Condvar,
}

// SAFETY: every call checks the documented preconditions the safe layer relies on and panics
// (the fake's bug check) when one is broken; the routine runs once, later, on another thread,
// after the item is marked dequeued; the event synchronizes through a mutex.
unsafe impl<const ID: usize> Backend for Fake<ID> {
    type Event = FakeEvent;

    fn size_of_work_item() -> u32 {
        Self::state().item_size.load(Ordering::SeqCst)
    }

    unsafe fn initialize(io_object: *mut c_void, item: PIO_WORKITEM) {
        assert!(
            !io_object.is_null(),
            "fake: WORKER_INVALID 3 (null I/O object)"
        );
        // SAFETY: the tests pass a real (zeroed) DEVICE_OBJECT or DRIVER_OBJECT, whose first
        // field is the `Type` (CSHORT) in both.
        let ty = unsafe { *io_object.cast::<i16>() };
        assert!(
            ty == IO_TYPE_DEVICE || ty == IO_TYPE_DRIVER,
            "fake: WORKER_INVALID 3 (not a device or driver object)"
        );
        assert_eq!(item as usize % 16, 0, "fake: misaligned work item");
        let size = Self::size_of_work_item() as usize;
        assert!(
            Self::in_live_block(item as usize, size),
            "fake: work item not in nonpaged pool"
        );
        let prev = Self::word(item).swap(INIT, Ordering::SeqCst);
        assert_eq!(prev, UNINIT, "fake: initialized an initialized work item");
        Self::state()
            .live_items
            .lock()
            .unwrap()
            .insert(item as usize);
        IO_OBJECTS
            .lock()
            .unwrap()
            .insert(item as usize, io_object as usize);
        Self::state().inits.fetch_add(1, Ordering::SeqCst);
    }

    unsafe fn uninitialize(item: PIO_WORKITEM) {
        let size = Self::size_of_work_item() as usize;
        assert!(
            Self::in_live_block(item as usize, size),
            "fake: uninitialize in freed pool"
        );
        let prev = Self::word(item).swap(UNINIT, Ordering::SeqCst);
        assert_ne!(
            prev, QUEUED,
            "fake: WORKER_INVALID 2 (queued item uninitialized)"
        );
        assert_eq!(
            prev, INIT,
            "fake: uninitialized an item that is not initialized"
        );
        assert!(
            Self::state()
                .live_items
                .lock()
                .unwrap()
                .remove(&(item as usize))
        );
        assert!(
            IO_OBJECTS
                .lock()
                .unwrap()
                .remove(&(item as usize))
                .is_some()
        );
        Self::state().uninits.fetch_add(1, Ordering::SeqCst);
    }

    unsafe fn queue(
        item: PIO_WORKITEM,
        routine: IO_WORKITEM_ROUTINE,
        queue_type: WORK_QUEUE_TYPE,
        context: PVOID,
    ) {
        assert!(
            is_valid_work_queue_type(queue_type),
            "fake: WORKER_INVALID 6"
        );
        let io_object = io_object_of(item);
        // SAFETY: the I/O object is one of the tests' live objects; `Type` is its first field.
        let ty = unsafe { *io_object.cast::<i16>() };
        assert_eq!(
            ty, IO_TYPE_DEVICE,
            "fake: IoQueueWorkItem on an item initialized with a driver object"
        );
        let prev = Self::word(item).swap(QUEUED, Ordering::SeqCst);
        assert_ne!(prev, QUEUED, "fake: WORKER_INVALID 1 (queued twice)");
        assert_eq!(prev, INIT, "fake: queued an uninitialized item");
        let s = Self::state();
        s.queues.fetch_add(1, Ordering::SeqCst);
        s.last_queue_type.store(queue_type as u32, Ordering::SeqCst);
        let device = io_object_of(item);
        spawn_worker::<ID>(Job {
            device,
            context,
            item,
            routine: Some(routine),
            routine_ex: None,
        });
    }

    unsafe fn queue_ex(
        item: PIO_WORKITEM,
        routine: IO_WORKITEM_ROUTINE_EX,
        queue_type: WORK_QUEUE_TYPE,
        context: PVOID,
    ) {
        assert!(
            is_valid_work_queue_type(queue_type),
            "fake: WORKER_INVALID 6"
        );
        let prev = Self::word(item).swap(QUEUED, Ordering::SeqCst);
        assert_ne!(prev, QUEUED, "fake: WORKER_INVALID 1 (queued twice)");
        assert_eq!(prev, INIT, "fake: queued an uninitialized item");
        let s = Self::state();
        s.queues_ex.fetch_add(1, Ordering::SeqCst);
        s.last_queue_type.store(queue_type as u32, Ordering::SeqCst);
        let device = io_object_of(item);
        spawn_worker::<ID>(Job {
            device,
            context,
            item,
            routine: None,
            routine_ex: Some(routine),
        });
    }

    unsafe fn alloc_nonpaged(bytes: usize, tag: u32) -> *mut u8 {
        assert!(
            bytes > 0,
            "fake: DRIVER_VERIFIER 0x00 (zero-byte allocation)"
        );
        assert_ne!(tag, 0, "fake: tag 0");
        let layout = Layout::from_size_align(bytes, 16).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { alloc_zeroed(layout) };
        assert!(!p.is_null());
        Self::state()
            .live_blocks
            .lock()
            .unwrap()
            .push((p as usize, bytes, tag));
        p
    }

    unsafe fn free_pool(block: *mut u8, tag: u32) {
        let (start, size, alloc_tag) = {
            let mut blocks = Self::state().live_blocks.lock().unwrap();
            let at = blocks
                .iter()
                .position(|&(s, _, _)| s == block as usize)
                .expect("fake: DRIVER_VERIFIER 0x10/0x14 (bad or double free)");
            blocks.swap_remove(at)
        };
        assert_eq!(alloc_tag, tag, "fake: BAD_POOL_CALLER 0x0A (wrong tag)");
        let items = Self::state().live_items.lock().unwrap();
        assert!(
            !items.iter().any(|&i| i >= start && i < start + size),
            "fake: WORKER_INVALID 0 (initialized work item in freed pool)"
        );
        drop(items);
        // SAFETY: allocated above with this layout.
        unsafe { dealloc(block, Layout::from_size_align(size, 16).unwrap()) };
    }

    unsafe fn event_init(event: *mut FakeEvent) {
        // SAFETY: the caller provides storage for a FakeEvent.
        unsafe {
            event.write(FakeEvent {
                signalled: Mutex::new(false),
                cond: Condvar::new(),
            })
        };
        Self::state().events_live.fetch_add(1, Ordering::SeqCst);
    }

    unsafe fn event_signal(event: *mut FakeEvent) {
        // SAFETY: initialized and live (caller).
        let event = unsafe { &*event };
        *event.signalled.lock().unwrap() = true;
        event.cond.notify_all();
    }

    unsafe fn event_wait(event: *mut FakeEvent) {
        // SAFETY: initialized and live (caller).
        let event = unsafe { &*event };
        let mut signalled = event.signalled.lock().unwrap();
        while !*signalled {
            signalled = event.cond.wait(signalled).unwrap();
        }
    }

    unsafe fn reference_object(object: *mut c_void) {
        assert!(!object.is_null(), "fake: reference on a null object");
        *Self::state()
            .object_refs
            .lock()
            .unwrap()
            .entry(object as usize)
            .or_insert(0) += 1;
        LIVE_REFS
            .lock()
            .unwrap()
            .entry(object as usize)
            .and_modify(|n| *n += 1)
            .or_insert(1);
    }

    unsafe fn dereference_object(object: *mut c_void) {
        let mut refs = Self::state().object_refs.lock().unwrap();
        let n = refs.entry(object as usize).or_insert(0);
        assert!(
            *n > 0,
            "fake: DRIVER_VERIFIER 0x3F (reference count underflow)"
        );
        *n -= 1;
        drop(refs);
        let mut live = LIVE_REFS.lock().unwrap();
        let n = live
            .get_mut(&(object as usize))
            .expect("fake: untracked reference");
        *n -= 1;
    }

    unsafe fn event_destroy(event: *mut FakeEvent) {
        // SAFETY: initialized, unused from now on (caller).
        unsafe { event.drop_in_place() };
        Self::state().events_live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// References held on each object, across all fake kernels: a fake object dropped while this is
/// non-zero would be freed under a reference holder.
static LIVE_REFS: LazyLock<StdMutex<HashMap<usize, i64>>> =
    LazyLock::new(|| StdMutex::new(HashMap::new()));

fn assert_unreferenced(object: usize) {
    let refs = LIVE_REFS.lock().unwrap().get(&object).copied().unwrap_or(0);
    if refs != 0 && !std::thread::panicking() {
        panic!("fake: object freed while {refs} reference(s) are held on it");
    }
}

/// A zeroed device object of type `IO_TYPE_DEVICE`, for the fake's I/O object checks.
///
/// Its storage is never freed (so no later object can reuse the address of one a test leaked a
/// reference on); dropping it checks that no reference is held on it any more.
pub struct FakeDevice(&'static std::cell::UnsafeCell<DEVICE_OBJECT>);

impl FakeDevice {
    pub fn new() -> Self {
        // SAFETY: DEVICE_OBJECT is plain old data (integers, raw pointers, `Option<fn>`), for
        // which all-zero bytes are valid.
        let mut obj: DEVICE_OBJECT = unsafe { std::mem::zeroed() };
        obj.Type = IO_TYPE_DEVICE;
        FakeDevice(Box::leak(Box::new(std::cell::UnsafeCell::new(obj))))
    }

    pub fn device(&self) -> &io_workitem::Device {
        // SAFETY: the object lives (boxed, never moved) as long as `self`, which the returned
        // borrow is tied to.
        unsafe { io_workitem::Device::from_raw(self.0.get()) }
    }

    /// The `PDEVICE_OBJECT`, as `IoCreateDevice` would return it.
    pub fn as_ptr(&self) -> *mut DEVICE_OBJECT {
        self.0.get()
    }
}

impl Drop for FakeDevice {
    fn drop(&mut self) {
        assert_unreferenced(self.0.get() as usize);
    }
}

/// A zeroed driver object of type `IO_TYPE_DRIVER`.
/// Never freed, as [`FakeDevice`].
pub struct FakeDriver(&'static std::cell::UnsafeCell<DRIVER_OBJECT>);

impl FakeDriver {
    pub fn new() -> Self {
        // SAFETY: DRIVER_OBJECT is plain old data; all-zero bytes are valid.
        let mut obj: DRIVER_OBJECT = unsafe { std::mem::zeroed() };
        obj.Type = IO_TYPE_DRIVER;
        FakeDriver(Box::leak(Box::new(std::cell::UnsafeCell::new(obj))))
    }

    pub fn driver(&self) -> &io_workitem::Driver {
        // SAFETY: the object lives (boxed) as long as `self`, which the borrow is tied to.
        unsafe { io_workitem::Driver::from_raw(self.0.get()) }
    }

    /// The `PDRIVER_OBJECT`, as `DriverEntry` receives it.
    pub fn as_ptr(&self) -> *mut DRIVER_OBJECT {
        self.0.get()
    }
}

impl Drop for FakeDriver {
    fn drop(&mut self) {
        assert_unreferenced(self.0.get() as usize);
    }
}
