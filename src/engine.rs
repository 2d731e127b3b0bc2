//! The cycle engine: runs one validated run-cycles request to completion on the dispatch thread
//! (PASSIVE_LEVEL), keeping up to `concurrency` work items in flight, on `io-workitem`'s slab.
//!
//! Every mode except the baseline goes through the safe API: `Slab::acquire` initializes an
//! item, `WorkItem::queue[_ex]` hands it to the system queue, the [`Routine`] gets it back by
//! value and drops it (uninitialize in the routine), requeues it, or hands it back to the
//! requesting thread (uninitialize in the caller). The baseline uses `IoAllocateWorkItem` /
//! `IoFreeWorkItem` directly, as the comparison point.
use core::mem::offset_of;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use io_workitem::{
    Device, NtDetached, NtKernel, NtSlab, NtWorkItem, QueueType, Routine, SlabError,
};
use nt_abi::imports::{IoAllocateWorkItem, IoFreeWorkItem, IoQueueWorkItemEx};
use nt_abi::status::*;
use nt_abi::*;

use crate::kernel::{Event, SpinLock, perf_counter, sleep_ms, yield_thread};
use ioctl::{CycleStats, Mode, RunCycles};

/// Slots in the slab: the largest concurrency a request may ask for.
pub const SLAB_CAPACITY: u32 = 64;
const CAPACITY: usize = SLAB_CAPACITY as usize;
/// `'WiwS'`: the slab's pool tag.
const SLAB_TAG: u32 = pool_tag(*b"WiwS");
/// Consecutive 1 ms waits for a free slot, with nothing of our own in flight, before a request
/// gives up with `STATUS_INSUFFICIENT_RESOURCES`.
const EXHAUSTION_RETRIES: u32 = 2_000;

/// An item of the driver's slab, as held by a routine or handed back to the caller.
type Item<'s> = NtWorkItem<'s, Job>;

/// Payload of every slab item: the run it belongs to and its remaining requeues.
pub struct Job {
    ctx: NonNull<RunContext>,
    requeues_left: u32,
    queue_type: QueueType,
}

// SAFETY: `ctx` points to a `RunContext`, which is `Sync` (atomics, events, a spin lock); the
// run keeps it alive until every item's routine has released it, so sending the pointer to a
// worker thread is sound.
unsafe impl Send for Job {}

pub struct Engine {
    device: *mut DEVICE_OBJECT,
    slab: NtSlab<Job>,
}

// SAFETY: the device pointer is only handed to kernel routines, which synchronize internally;
// the slab is Send + Sync. The device outlives the engine (dropped in unload before
// IoDeleteDevice).
unsafe impl Sync for Engine {}
// SAFETY: as above.
unsafe impl Send for Engine {}

impl Engine {
    pub fn new(device: *mut DEVICE_OBJECT, _driver: *mut DRIVER_OBJECT) -> Result<Self, NTSTATUS> {
        // SAFETY: `device` is our live device object for the duration of this call; the slab
        // takes its own reference on it, released by its teardown.
        let dev: &Device = unsafe { Device::from_raw(device) };
        let slab = NtSlab::new(dev, SLAB_CAPACITY, SLAB_TAG).map_err(|e| match e {
            SlabError::OutOfMemory => STATUS_INSUFFICIENT_RESOURCES,
            _ => STATUS_UNSUCCESSFUL,
        })?;
        Ok(Engine { device, slab })
    }

    pub fn io_sizeof_work_item(&self) -> u32 {
        self.slab.item_size()
    }

    pub fn capacity(&self) -> u32 {
        self.slab.capacity()
    }

    pub fn stride(&self) -> u32 {
        self.slab.stride() as u32
    }

    /// Reset the slab's high-water mark (with the cumulative statistics).
    pub fn reset_counters(&self) {
        self.slab.reset_counters();
    }

    /// Run one request. On error the run's partial counts are discarded by the caller.
    pub fn run(&self, req: &RunCycles) -> Result<CycleStats, NTSTATUS> {
        let queue_type = QueueType::from_raw(req.queue_type).ok_or(STATUS_INVALID_PARAMETER)?;
        let ctx = RunContext::new(req);
        // SAFETY: `ctx` stays in this frame, unmoved, until `finish` has waited for every
        // routine that references it.
        unsafe { ctx.init() };
        let (start, _) = perf_counter();
        let result = match req.mode {
            Mode::InitUninit => self.run_init_uninit(req, &ctx),
            Mode::BaselineAllocFree => self.run_baseline(req, &ctx),
            _ => self.run_queued(req, queue_type, &ctx),
        };
        ctx.finish();
        let (end, _) = perf_counter();
        result?;
        let mut stats = ctx.stats(end.wrapping_sub(start));
        stats.slab_high_water = self.slab.stats().high_water;
        Ok(stats)
    }

    /// Take up to `concurrency` items at once, then return them all, until `iterations`.
    fn run_init_uninit(&self, req: &RunCycles, ctx: &RunContext) -> Result<(), NTSTATUS> {
        let mut done = 0u32;
        let mut retries = 0;
        let mut held: [Option<Item<'_>>; CAPACITY] = [const { None }; CAPACITY];
        while done < req.iterations {
            let batch = (req.iterations - done).min(req.concurrency) as usize;
            let mut taken = 0;
            for slot in held.iter_mut().take(batch) {
                match self.slab.acquire(ctx.job(0, QueueType::Delayed)) {
                    Ok(item) => {
                        *slot = Some(item);
                        taken += 1;
                    }
                    Err(_) => {
                        ctx.exhaustion.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            ctx.max_in_flight.fetch_max(taken, Ordering::Relaxed);
            // Uninitialize every item of the batch (drop) and give the slots back.
            for slot in held.iter_mut() {
                *slot = None;
            }
            if taken == 0 {
                retries += 1;
                if retries > EXHAUSTION_RETRIES {
                    return Err(STATUS_INSUFFICIENT_RESOURCES);
                }
                sleep_ms(1);
                continue;
            }
            retries = 0;
            done += taken;
            ctx.completed.fetch_add(u64::from(taken), Ordering::Relaxed);
        }
        Ok(())
    }

    /// The queueing modes, on the slab.
    fn run_queued(
        &self,
        req: &RunCycles,
        queue_type: QueueType,
        ctx: &RunContext,
    ) -> Result<(), NTSTATUS> {
        let mut started = 0;
        let mut retries = 0;
        let mut result = Ok(());
        while started < req.iterations {
            ctx.uninit_returned();
            if !ctx.window_has_room(req.concurrency) {
                continue;
            }
            let item = match self.slab.acquire(ctx.job(req.requeue_depth, queue_type)) {
                Ok(item) => item,
                Err(_) => {
                    if let Err(e) = ctx.exhausted(&mut retries) {
                        result = Err(e);
                        break;
                    }
                    continue;
                }
            };
            retries = 0;
            ctx.begin_item();
            match req.mode {
                Mode::QueueUninitInCaller => item.queue::<ReturnToCaller>(queue_type),
                Mode::RequeueChain => item.queue::<Requeue>(queue_type),
                Mode::QueueEx => item.queue_ex::<UninitInRoutine>(queue_type),
                _ => item.queue::<UninitInRoutine>(queue_type),
            }
            started += 1;
        }
        // Items handed back to us are ours to uninitialize; wait for the rest.
        loop {
            ctx.uninit_returned();
            if ctx.in_flight.load(Ordering::Acquire) == 0 {
                break;
            }
            ctx.window.wait();
        }
        result
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
            // `ctx`, which `finish` waits for before this frame goes away.
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
unsafe extern "system" fn baseline_routine(_io_object: PVOID, context: PVOID, item: PIO_WORKITEM) {
    let ctx = context as *const RunContext;
    // SAFETY: the context is the run's `RunContext`, alive until this routine releases its
    // reference below (the run waits for that).
    let run = unsafe { &*ctx };
    run.routine_ran();
    // SAFETY: the item came from IoAllocateWorkItem and the system dequeued it before calling
    // us; freeing it inside its own routine is the documented pattern.
    unsafe { IoFreeWorkItem(item) };
    run.item_done();
    // SAFETY: this routine's reference, taken by `begin_item`; nothing touches `ctx` after.
    unsafe { RunContext::release_ref(ctx) };
}

/// Uninitialize inside the routine: the item is dropped here.
struct UninitInRoutine;

impl Routine<NtKernel, Job> for UninitInRoutine {
    fn run(item: Item<'_>) {
        let ctx = item.payload().ctx.as_ptr().cast_const();
        // SAFETY: the run keeps its context alive until this routine releases its reference.
        let run = unsafe { &*ctx };
        run.routine_ran();
        drop(item);
        run.uninit_in_routine.fetch_add(1, Ordering::Relaxed);
        run.item_done();
        // SAFETY: this routine's reference; nothing touches `ctx` after.
        unsafe { RunContext::release_ref(ctx) };
    }
}

/// Requeue chain: requeue while requeues are left, then uninitialize inside the routine.
struct Requeue;

impl Routine<NtKernel, Job> for Requeue {
    fn run(mut item: Item<'_>) {
        let ctx = item.payload().ctx.as_ptr().cast_const();
        // SAFETY: the run keeps its context alive until the chain's last routine releases the
        // reference taken when the chain started.
        let run = unsafe { &*ctx };
        run.routine_ran();
        if item.payload().requeues_left > 0 && !item.is_shutting_down() {
            item.payload_mut().requeues_left -= 1;
            run.requeues.fetch_add(1, Ordering::Relaxed);
            run.queued.fetch_add(1, Ordering::Relaxed);
            let queue_type = item.payload().queue_type;
            // The chain keeps the run's reference; the next routine releases it.
            item.queue::<Requeue>(queue_type);
            return;
        }
        drop(item);
        run.uninit_in_routine.fetch_add(1, Ordering::Relaxed);
        run.item_done();
        // SAFETY: the chain's reference; nothing touches `ctx` after.
        unsafe { RunContext::release_ref(ctx) };
    }
}

/// Hand the item back to the requesting thread, which uninitializes it.
struct ReturnToCaller;

impl Routine<NtKernel, Job> for ReturnToCaller {
    fn run(item: Item<'_>) {
        let ctx = item.payload().ctx.as_ptr().cast_const();
        // SAFETY: the run keeps its context alive until this routine releases its reference.
        let run = unsafe { &*ctx };
        run.routine_ran();
        // Detached: 'static and Send, holding a rundown reference on the slab; the requesting
        // thread drops it (uninitialize in the caller) before the request completes.
        run.returned.with(|r| r.push(item.detach()));
        // SAFETY: this routine's reference; nothing touches `ctx` after.
        unsafe { RunContext::release_ref(ctx) };
    }
}

/// Items routines handed back, waiting for the caller to uninitialize them.
struct Returned {
    items: [Option<NtDetached<Job>>; CAPACITY],
    len: usize,
}

impl Returned {
    fn push(&mut self, item: NtDetached<Job>) {
        // At most `concurrency ≤ CAPACITY` items are in flight per run, so there is room.
        self.items[self.len] = Some(item);
        self.len += 1;
    }
}

/// Where `all_done` sits in a `RunContext` (signalled through a raw pointer).
const ALL_DONE_OFFSET: usize = offset_of!(RunContext, all_done);

/// Shared state of one run, on the dispatch thread's stack. Routines hold a counted reference
/// (`refs`); the run does not return before the count drains to zero.
pub struct RunContext {
    yield_in_routine: bool,
    /// Items whose cycle has not finished (queued, running, or handed back but not yet dropped).
    in_flight: AtomicU32,
    max_in_flight: AtomicU32,
    /// 1 (the run's own bias) + queued chains whose routine has not released the context.
    refs: AtomicU32,
    /// Synchronization event: a routine finished (room in the window, or an item handed back).
    window: Event,
    /// Notification event: `refs` reached zero.
    all_done: Event,
    returned: SpinLock<Returned>,
    queued: AtomicU64,
    routines_run: AtomicU64,
    uninit_in_routine: AtomicU64,
    requeues: AtomicU64,
    completed: AtomicU64,
    exhaustion: AtomicU64,
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
            returned: SpinLock::new(Returned {
                items: [const { None }; CAPACITY],
                len: 0,
            }),
            queued: AtomicU64::new(0),
            routines_run: AtomicU64::new(0),
            uninit_in_routine: AtomicU64::new(0),
            requeues: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            exhaustion: AtomicU64::new(0),
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

    fn job(&self, requeues_left: u32, queue_type: QueueType) -> Job {
        Job {
            ctx: NonNull::from(self),
            requeues_left,
            queue_type,
        }
    }

    /// `true` if another item may start; otherwise waits for a routine to finish and returns
    /// `false` (the caller loops).
    fn window_has_room(&self, concurrency: u32) -> bool {
        if self.in_flight.load(Ordering::Acquire) < concurrency {
            return true;
        }
        self.window.wait();
        false
    }

    /// Nothing to take (slab or pool exhausted): count it, then wait for one of our routines,
    /// or (with none in flight) sleep 1 ms; give up after `EXHAUSTION_RETRIES` sleeps.
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

    /// An item's cycle is over: its work item is uninitialized (or freed).
    fn item_done(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Uninitialize (drop) every item routines handed back. Requesting thread only.
    fn uninit_returned(&self) {
        loop {
            let item = self.returned.with(|r| {
                if r.len == 0 {
                    None
                } else {
                    r.len -= 1;
                    r.items[r.len].take()
                }
            });
            let Some(item) = item else { break };
            drop(item);
            self.item_done();
        }
    }

    /// Release a routine's reference: wake the requesting thread, and if this was the last
    /// reference, signal `all_done`.
    ///
    /// # Safety
    /// `this` is a live context and the caller owns one reference taken by `begin_item`; it
    /// touches nothing of the context afterwards (the run's frame may be gone).
    unsafe fn release_ref(this: *const Self) {
        // SAFETY: the caller's reference keeps the context alive until the decrement below.
        let run = unsafe { &*this };
        run.window.set();
        if run.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Last reference: `finish` dropped its bias and waits on `all_done`, so the context
            // is alive for this one signal, which is its last use (no reference is created).
            // SAFETY: live and initialized, as argued above.
            unsafe { Event::signal_raw(this.wrapping_byte_add(ALL_DONE_OFFSET).cast::<Event>()) };
        }
    }

    /// Drop the run's bias and wait until every routine has released the context.
    fn finish(&self) {
        if self.refs.fetch_sub(1, Ordering::AcqRel) != 1 {
            self.all_done.wait();
        }
        // Any item handed back after the last drain (none: the drain loop waits for in_flight
        // to reach zero) would be uninitialized here rather than leaked.
        self.uninit_returned();
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
            slab_high_water: 0,
            runs: 1,
        }
    }
}
