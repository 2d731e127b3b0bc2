//! The cycle engine: runs one validated run-cycles request to completion on the dispatch thread
//! (PASSIVE_LEVEL), keeping up to `concurrency` work items in flight.
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use nt_abi::imports::{IoAllocateWorkItem, IoFreeWorkItem, IoQueueWorkItemEx, IoSizeofWorkItem};
use nt_abi::status::*;
use nt_abi::*;

use crate::kernel::{Event, perf_counter, sleep_ms, yield_thread};
use ioctl::{CycleStats, Mode, RunCycles};

/// Slots in the slab: the largest concurrency a request may ask for.
pub const SLAB_CAPACITY: u32 = 64;
/// Consecutive 1 ms waits for a free slot, with nothing of our own in flight, before a request
/// gives up with `STATUS_INSUFFICIENT_RESOURCES`.
const EXHAUSTION_RETRIES: u32 = 2_000;

pub struct Engine {
    device: *mut DEVICE_OBJECT,
    io_sizeof_work_item: u32,
}

// SAFETY: the device pointer is only handed to kernel routines, which synchronize internally;
// the device outlives the engine (the engine is dropped in unload before IoDeleteDevice).
unsafe impl Sync for Engine {}
// SAFETY: as above.
unsafe impl Send for Engine {}

impl Engine {
    pub fn new(device: *mut DEVICE_OBJECT, _driver: *mut DRIVER_OBJECT) -> Result<Self, NTSTATUS> {
        // SAFETY: IoSizeofWorkItem has no preconditions.
        let io_sizeof_work_item = unsafe { IoSizeofWorkItem() };
        Ok(Engine {
            device,
            io_sizeof_work_item,
        })
    }

    pub fn io_sizeof_work_item(&self) -> u32 {
        self.io_sizeof_work_item
    }

    pub fn capacity(&self) -> u32 {
        SLAB_CAPACITY
    }

    pub fn stride(&self) -> u32 {
        0
    }

    /// Run one request. On error, the run's partial counts are discarded by the caller.
    pub fn run(&self, req: &RunCycles) -> Result<CycleStats, NTSTATUS> {
        let ctx = RunContext::new(req);
        // SAFETY: `ctx` stays on this stack frame, unmoved, until `finish` has waited for every
        // routine that references it.
        unsafe { ctx.init() };
        let (start, _) = perf_counter();
        let result = match req.mode {
            Mode::BaselineAllocFree => self.run_baseline(req, &ctx),
            _ => Err(STATUS_NOT_IMPLEMENTED),
        };
        ctx.finish();
        let (end, _) = perf_counter();
        result?;
        Ok(ctx.stats(end.wrapping_sub(start)))
    }

    /// Baseline: `IoAllocateWorkItem` + `IoQueueWorkItemEx` per cycle; the routine frees it.
    fn run_baseline(&self, req: &RunCycles, ctx: &RunContext) -> Result<(), NTSTATUS> {
        let mut started = 0;
        let mut retries = 0;
        while started < req.iterations {
            if !ctx.window_has_room(req.concurrency) {
                continue;
            }
            // SAFETY: our device object is live for the engine's lifetime.
            let item = unsafe { IoAllocateWorkItem(self.device) };
            if item.is_null() {
                ctx.exhausted(&mut retries)?;
                continue;
            }
            retries = 0;
            ctx.begin_item();
            // SAFETY: `item` was just allocated against our device and is not queued; the queue
            // type was validated; the routine frees the item and releases its reference on
            // `ctx`, which `finish` waits for before the frame goes away.
            unsafe {
                IoQueueWorkItemEx(
                    item,
                    baseline_routine,
                    req.queue_type,
                    ctx as *const RunContext as PVOID,
                )
            };
            started += 1;
        }
        Ok(())
    }
}

/// Routine of the baseline mode.
///
/// # Safety
/// Called once by the system worker for an item queued by `run_baseline`, with its context.
unsafe extern "win64" fn baseline_routine(_io_object: PVOID, context: PVOID, item: PIO_WORKITEM) {
    // SAFETY: the context is the run's `RunContext`, kept alive until this routine calls
    // `end_item` (the run waits for that).
    let ctx = unsafe { &*(context as *const RunContext) };
    ctx.routine_ran();
    // SAFETY: the item came from IoAllocateWorkItem and the system dequeued it before calling
    // us; freeing it inside its own routine is the documented pattern.
    unsafe { IoFreeWorkItem(item) };
    // SAFETY: last use of `ctx` in this routine.
    unsafe { RunContext::end_item(ctx) };
}

/// Shared state of one run, on the dispatch thread's stack. Routines hold a counted reference
/// (`refs`); the run does not return before the count drains to zero.
pub struct RunContext {
    yield_in_routine: bool,
    in_flight: AtomicU32,
    max_in_flight: AtomicU32,
    /// 1 (the run's own bias) + items whose routine has yet to finish.
    refs: AtomicU32,
    /// Synchronization event: an item finished (room in the window).
    window: Event,
    /// Notification event: `refs` reached zero.
    all_done: Event,
    queued: AtomicU64,
    routines_run: AtomicU64,
    uninit_in_routine: AtomicU64,
    requeues: AtomicU64,
    completed: AtomicU64,
    exhaustion: AtomicU64,
    slab_high_water: AtomicU32,
}

impl RunContext {
    fn new(req: &RunCycles) -> Self {
        RunContext {
            yield_in_routine: req.flags & ioctl::RUN_FLAG_YIELD_IN_ROUTINE != 0,
            in_flight: AtomicU32::new(0),
            max_in_flight: AtomicU32::new(0),
            refs: AtomicU32::new(1),
            window: Event::uninit(),
            all_done: Event::uninit(),
            queued: AtomicU64::new(0),
            routines_run: AtomicU64::new(0),
            uninit_in_routine: AtomicU64::new(0),
            requeues: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            exhaustion: AtomicU64::new(0),
            slab_high_water: AtomicU32::new(0),
        }
    }

    /// # Safety
    /// `self` does not move until [`RunContext::finish`] returned.
    unsafe fn init(&self) {
        // SAFETY: forwarded from the caller; nothing uses the events yet.
        unsafe { self.window.init(SYNCHRONIZATION_EVENT) };
        // SAFETY: as above.
        unsafe { self.all_done.init(NOTIFICATION_EVENT) };
    }

    /// `true` if another item may start; otherwise waits for one to finish and returns `false`
    /// (the caller loops).
    fn window_has_room(&self, concurrency: u32) -> bool {
        if self.in_flight.load(Ordering::Acquire) < concurrency {
            return true;
        }
        self.window.wait();
        false
    }

    /// Nothing to take (slab or pool exhausted): count it, then wait for one of our items to
    /// finish, or (with none in flight) sleep 1 ms; give up after `EXHAUSTION_RETRIES` sleeps.
    fn exhausted(&self, retries: &mut u32) -> Result<(), NTSTATUS> {
        self.exhaustion.fetch_add(1, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) > 0 {
            self.window.wait();
            return Ok(());
        }
        *retries += 1;
        if *retries > EXHAUSTION_RETRIES {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        sleep_ms(1);
        Ok(())
    }

    /// An item is about to be queued.
    fn begin_item(&self) {
        self.refs.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.max_in_flight.fetch_max(now, Ordering::Relaxed);
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// Called at the start of every routine.
    fn routine_ran(&self) {
        self.routines_run.fetch_add(1, Ordering::Relaxed);
        if self.yield_in_routine {
            yield_thread();
        }
    }

    /// An item's cycle is over (its storage is back in the slab or freed).
    ///
    /// # Safety
    /// The caller owns one reference taken by `begin_item` and does not touch `this` afterwards:
    /// once the count drains, the run's stack frame may be gone.
    unsafe fn end_item(this: &Self) {
        this.completed.fetch_add(1, Ordering::Relaxed);
        this.in_flight.fetch_sub(1, Ordering::AcqRel);
        this.window.set();
        if this.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Last reference: `finish` dropped its bias and is waiting on this event, so the
            // context is still alive for this one call.
            this.all_done.set();
        }
    }

    /// Drop the run's bias and wait until every routine has released the context.
    fn finish(&self) {
        if self.refs.fetch_sub(1, Ordering::AcqRel) != 1 {
            self.all_done.wait();
        }
    }

    fn stats(&self, elapsed_ticks: u64) -> CycleStats {
        CycleStats {
            cycles_completed: self.completed.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            routines_run: self.routines_run.load(Ordering::Relaxed),
            uninit_in_routine: self.uninit_in_routine.load(Ordering::Relaxed),
            requeues: self.requeues.load(Ordering::Relaxed),
            exhaustion_count: self.exhaustion.load(Ordering::Relaxed),
            elapsed_ticks,
            max_in_flight: self.max_in_flight.load(Ordering::Relaxed),
            slab_high_water: self.slab_high_water.load(Ordering::Relaxed),
            runs: 1,
        }
    }
}
