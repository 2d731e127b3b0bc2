//! Work items: `IoSizeofWorkItem`, `IoInitializeWorkItem`, `IoUninitializeWorkItem`,
//! `IoQueueWorkItem(Ex)`, `IoAllocateWorkItem`, `IoFreeWorkItem`, and the system worker threads.
//!
//! State machine per item (keyed by address; the authoritative state is here, not in the
//! caller's memory): Initialized → Queued → Running → Initialized (or removed by
//! IoUninitializeWorkItem, legal inside the routine because the item is dequeued before the
//! routine runs). The IoObject is referenced when an item is queued and dereferenced after its
//! routine returns; ntsim never touches the item's memory once the routine has been called.
#![allow(non_snake_case)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use nt_abi::bugcheck::{self, verifier as vr, worker_invalid as wi};
use nt_abi::*;

use crate::ke::irql;
use crate::machine::{self, DRIVER, Inner, current, lock, raise};
use crate::mm::{self, MemClass};
use crate::ob::ObjKind;
use crate::verifier::Bc;

/// Number of worker queues: the seven fixed types plus one for custom priorities.
pub const NQ: usize = 8;

/// Pool tag of items from `IoAllocateWorkItem` (`'IoWk'`).
pub const IO_ALLOCATED_WORK_ITEM_TAG: u32 = pool_tag(*b"IoWk");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemState {
    Initialized,
    Queued,
    /// Dequeued, routine running (run id).
    Running(u64),
}

#[derive(Clone, Debug)]
pub struct Item {
    pub state: ItemState,
    pub io_object: usize,
    pub owner: usize,
    pub allocated: bool,
    /// Routine of the last queueing (for WORKER_INVALID parameters).
    pub routine: usize,
}

#[derive(Clone, Debug)]
pub struct QEntry {
    pub item: usize,
    pub routine: usize,
    pub context: usize,
    pub ex: bool,
    pub io_object: usize,
    pub owner: usize,
}

#[derive(Default)]
pub struct WorkItems {
    pub items: BTreeMap<usize, Item>,
    pub queues: [VecDeque<QEntry>; NQ],
    pub started: [usize; NQ],
    /// Workers per queue that are waiting for (or about to take) an item.
    pub idle: [usize; NQ],
    /// Since when items of a queue have waited with no idle worker and no progress.
    pub stalled_since: [Option<std::time::Instant>; NQ],
    pub balancer_started: bool,
    /// Items queued or running, per owning driver.
    pub outstanding: HashMap<usize, usize>,
    /// Routine currently running per item (routine address), for reports.
    pub running: HashMap<u64, (usize, usize, usize)>,
    pub next_run: u64,
    pub routines_run: u64,
}

fn queue_index(qt: WORK_QUEUE_TYPE) -> usize {
    if (0..MAXIMUM_WORK_QUEUE).contains(&qt) {
        qt as usize
    } else {
        NQ - 1
    }
}

/// `IoSizeofWorkItem`: the configured size (0x58 by default).
///
/// # Safety
/// Always safe.
pub unsafe extern "win64" fn IoSizeofWorkItem() -> ULONG {
    current().config.size_of_work_item
}

fn object_kind(m: &Inner, obj: usize) -> Option<(ObjKind, bool)> {
    lock(&m.ob).objects.get(&obj).map(|o| (o.kind, o.deleted))
}

fn init_item(m: &Inner, io_object: usize, item: usize, allocated: bool) {
    match object_kind(m, io_object) {
        Some((ObjKind::Device | ObjKind::Driver, false)) => {}
        _ => raise(
            m,
            Bc::worker_invalid([wi::INVALID_IO_OBJECT, item as u64, io_object as u64, 0]),
        ),
    }
    if m.verifier() {
        let class = mm::classify(m, item);
        if !class.is_nonpaged() {
            let bc = Bc::verifier(
                bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [vr::WORK_ITEM_IN_PAGEABLE_MEMORY, item as u64, 0, 0],
            );
            raise(
                m,
                if class == MemClass::Stack {
                    bc.documented_only()
                } else {
                    bc
                },
            );
        }
    }
    let owner = DRIVER.with(|d| d.get());
    let mut g = lock(&m.wi);
    if let Some(old) = g.items.get(&item)
        && old.state == ItemState::Queued
    {
        let routine = old.routine;
        drop(g);
        raise(
            m,
            Bc::worker_invalid([wi::QUEUED_ITEM_FREED, item as u64, routine as u64, 0]),
        );
    }
    let mut size = m.config.size_of_work_item as usize;
    // Storage smaller than IoSizeofWorkItem(): the kernel's write would run past the pool block.
    let block = {
        let p = lock(&m.pool);
        p.block_containing(item).map(|(start, b)| start + b.size)
    };
    if let Some(end) = block
        && item + size > end
    {
        if m.verifier() {
            drop(g);
            let caller = machine::CALLER.with(|c| c.get());
            raise(
                m,
                Bc::verifier(
                    bugcheck::DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION,
                    [end as u64, 1, caller as u64, 0],
                ),
            );
        }
        // Without special pool Windows would corrupt the neighbour silently; ntsim must not
        // corrupt its own heap, so it writes only up to the end of the block.
        size = end - item;
    }
    // SAFETY: the caller provides IoSizeofWorkItem() bytes of writable storage at `item` (the
    // documented contract); we fill it as the kernel would, zeroes plus the IoObject marker at
    // 0x28, and never read it back.
    unsafe {
        core::ptr::write_bytes(item as *mut u8, 0, size);
    }
    if size >= 0x30 {
        // SAFETY: 0x28..0x30 lies within the `size` bytes just written; unaligned-safe write.
        unsafe { ((item + 0x28) as *mut usize).write_unaligned(io_object) };
    }
    g.items.insert(
        item,
        Item {
            state: ItemState::Initialized,
            io_object,
            owner,
            allocated,
            routine: 0,
        },
    );
}

/// `IoInitializeWorkItem`.
///
/// # Safety
/// `IoWorkItem` must point to `IoSizeofWorkItem()` writable bytes.
pub unsafe extern "win64" fn IoInitializeWorkItem(IoObject: PVOID, IoWorkItem: PIO_WORKITEM) {
    let m = current();
    init_item(&m, IoObject as usize, IoWorkItem as usize, false);
}

/// `IoUninitializeWorkItem`: legal when not queued (including inside its own routine).
///
/// # Safety
/// `IoWorkItem` should be an initialized work item.
pub unsafe extern "win64" fn IoUninitializeWorkItem(IoWorkItem: PIO_WORKITEM) {
    forget_unless_queued(&current(), IoWorkItem as usize);
}

/// Drop `item`'s state for IoUninitializeWorkItem / IoFreeWorkItem: legal unless it is queued
/// (0xE4 p1 = 2, p3 = the routine it was queued with).
fn forget_unless_queued(m: &Arc<Inner>, item: usize) {
    let mut g = lock(&m.wi);
    if let Some(it) = g.items.get(&item) {
        if it.state == ItemState::Queued {
            let routine = it.routine;
            drop(g);
            raise(
                m,
                Bc::worker_invalid([wi::QUEUED_ITEM_FREED, item as u64, routine as u64, 0]),
            );
        }
        g.items.remove(&item);
    }
}

fn queue_common(item: usize, routine: usize, qt: WORK_QUEUE_TYPE, context: usize, ex: bool) {
    let m = current();
    let lvl = irql::get();
    if lvl > DISPATCH_LEVEL {
        raise(
            &m,
            Bc::new(
                bugcheck::IRQL_NOT_LESS_OR_EQUAL,
                [item as u64, lvl as u64, 0, 0],
            ),
        );
    }
    if !is_valid_work_queue_type(qt) {
        raise(
            &m,
            Bc::worker_invalid([wi::INVALID_QUEUE_TYPE, item as u64, qt as i64 as u64, 0]),
        );
    }
    if routine == 0 {
        raise(
            &m,
            Bc::worker_invalid([wi::INVALID_ROUTINE, item as u64, qt as i64 as u64, 0]),
        );
    }
    let snapshot = lock(&m.wi).items.get(&item).cloned();
    let Some(it) = snapshot else {
        raise(
            &m,
            Bc::worker_invalid([wi::INVALID_IO_OBJECT, item as u64, 0, 0]).documented_only(),
        );
    };
    if it.state == ItemState::Queued {
        raise(
            &m,
            Bc::worker_invalid([
                wi::QUEUED_ITEM_REQUEUED,
                item as u64,
                qt as i64 as u64,
                routine as u64,
            ]),
        );
    }
    // A driver-owned (PE) item must have its routine inside a loaded image.
    let owner_has_image = {
        let g = lock(&m.ob);
        g.drivers.get(it.owner).is_some_and(|d| d.image.is_some())
    };
    if owner_has_image && !m.is_image_code(routine) {
        raise(
            &m,
            Bc::worker_invalid([
                wi::INVALID_ROUTINE,
                item as u64,
                qt as i64 as u64,
                routine as u64,
            ]),
        );
    }
    match object_kind(&m, it.io_object) {
        Some((ObjKind::Device, _)) => {}
        Some((ObjKind::Driver, _)) if ex => {}
        _ => raise(
            &m,
            Bc::worker_invalid([wi::INVALID_IO_OBJECT, item as u64, it.io_object as u64, 0]),
        ),
    }
    if let Err(bc) = crate::ob::reference(&m, it.io_object) {
        raise(&m, bc);
    }
    let q = queue_index(qt);
    let mut g = lock(&m.wi);
    match g.items.get_mut(&item) {
        Some(cur) if cur.state != ItemState::Queued => {
            cur.state = ItemState::Queued;
            cur.routine = routine;
        }
        Some(_) => {
            drop(g);
            let _ = crate::ob::deref(&m, it.io_object);
            raise(
                &m,
                Bc::worker_invalid([
                    wi::QUEUED_ITEM_REQUEUED,
                    item as u64,
                    qt as i64 as u64,
                    routine as u64,
                ]),
            );
        }
        None => {
            drop(g);
            let _ = crate::ob::deref(&m, it.io_object);
            raise(
                &m,
                Bc::worker_invalid([wi::QUEUE_INSERT_FAILED, item as u64, 0, 0]),
            );
        }
    }
    g.queues[q].push_back(QEntry {
        item,
        routine,
        context,
        ex,
        io_object: it.io_object,
        owner: it.owner,
    });
    *g.outstanding.entry(it.owner).or_default() += 1;
    // Start the configured number of workers; the balancer adds more when a queue stalls.
    let need = m
        .config
        .workers_per_queue
        .max(1)
        .saturating_sub(g.started[q]);
    g.started[q] += need;
    g.idle[q] += need;
    if g.queues[q].len() > g.idle[q] && g.stalled_since[q].is_none() {
        g.stalled_since[q] = Some(std::time::Instant::now());
    }
    let start_balancer =
        !g.balancer_started && m.config.max_workers_per_queue > m.config.workers_per_queue;
    g.balancer_started |= start_balancer;
    drop(g);
    for _ in 0..need {
        spawn_worker(&m, q);
    }
    if start_balancer {
        spawn_balancer(&m);
    }
    m.wi_cv[q].notify_one();
}

/// `IoQueueWorkItem`.
///
/// # Safety
/// `IoWorkItem` must be an initialized work item; `WorkerRoutine` a valid routine.
pub unsafe extern "win64" fn IoQueueWorkItem(
    IoWorkItem: PIO_WORKITEM,
    WorkerRoutine: IO_WORKITEM_ROUTINE,
    QueueType: WORK_QUEUE_TYPE,
    Context: PVOID,
) {
    queue_common(
        IoWorkItem as usize,
        WorkerRoutine as usize,
        QueueType,
        Context as usize,
        false,
    );
}

/// `IoQueueWorkItemEx`.
///
/// # Safety
/// `IoWorkItem` must be an initialized work item; `WorkerRoutine` a valid routine.
pub unsafe extern "win64" fn IoQueueWorkItemEx(
    IoWorkItem: PIO_WORKITEM,
    WorkerRoutine: IO_WORKITEM_ROUTINE_EX,
    QueueType: WORK_QUEUE_TYPE,
    Context: PVOID,
) {
    queue_common(
        IoWorkItem as usize,
        WorkerRoutine as usize,
        QueueType,
        Context as usize,
        true,
    );
}

/// `IoAllocateWorkItem`: a nonpaged, initialized item owned by the caller's driver.
///
/// # Safety
/// `DeviceObject` should be a device object.
pub unsafe extern "win64" fn IoAllocateWorkItem(DeviceObject: *mut DEVICE_OBJECT) -> PIO_WORKITEM {
    let m = current();
    let owner = DRIVER.with(|d| d.get());
    let size = m.config.size_of_work_item as usize;
    let p = crate::ex::pool::alloc_block(
        &m,
        POOL_FLAG_NON_PAGED,
        size,
        IO_ALLOCATED_WORK_ITEM_TAG,
        owner,
    );
    if p.is_null() {
        return core::ptr::null_mut();
    }
    init_item(&m, DeviceObject as usize, p as usize, true);
    p.cast()
}

/// `IoFreeWorkItem`: legal inside the item's routine, never while it is queued.
///
/// # Safety
/// `IoWorkItem` should come from `IoAllocateWorkItem`.
pub unsafe extern "win64" fn IoFreeWorkItem(IoWorkItem: PIO_WORKITEM) {
    let m = current();
    let item = IoWorkItem as usize;
    forget_unless_queued(&m, item);
    crate::ex::pool::free_block(&m, item, None);
}

fn spawn_worker(m: &Arc<Inner>, q: usize) {
    let m2 = m.clone();
    let r = crate::ke::fault::spawn_driver_thread(&format!("ntsim-worker-{q}"), move || {
        worker_loop(m2, q)
    });
    if let Err(e) = r {
        eprintln!("ntsim: cannot spawn a worker thread: {e}");
    }
}

/// How long items of a queue must wait with every worker busy and no progress before the
/// balancer adds a worker (Windows' balance-set manager adds worker threads about once a second
/// when a queue is stuck).
pub const STALL_BEFORE_NEW_WORKER: std::time::Duration = std::time::Duration::from_millis(1000);

fn spawn_balancer(m: &Arc<Inner>) {
    let m2 = m.clone();
    let r = std::thread::Builder::new()
        .name("ntsim-balancer".into())
        .spawn(move || balancer_loop(m2));
    if let Err(e) = r {
        eprintln!("ntsim: cannot spawn the worker balancer: {e}");
    }
}

fn balancer_loop(m: Arc<Inner>) {
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if m.shutdown.load(Ordering::SeqCst) || m.bugged.load(Ordering::SeqCst) {
            return;
        }
        let cap = m.config.max_workers_per_queue;
        let mut spawn = Vec::new();
        {
            let mut g = lock(&m.wi);
            let now = std::time::Instant::now();
            for q in 0..NQ {
                let stuck = g.stalled_since[q]
                    .is_some_and(|t| now.duration_since(t) >= STALL_BEFORE_NEW_WORKER);
                if stuck && g.queues[q].len() > g.idle[q] && g.started[q] < cap {
                    g.started[q] += 1;
                    g.idle[q] += 1;
                    g.stalled_since[q] = Some(now);
                    spawn.push(q);
                }
            }
        }
        for q in spawn {
            spawn_worker(&m, q);
            m.wi_cv[q].notify_one();
        }
    }
}

fn worker_loop(m: Arc<Inner>, q: usize) {
    machine::enter_kernel(&m, machine::NO_DRIVER, "work item routine");
    loop {
        let (e, run) = {
            let mut g = lock(&m.wi);
            loop {
                if m.bugged.load(Ordering::SeqCst) {
                    drop(g);
                    machine::park_forever();
                }
                if let Some(e) = g.queues[q].pop_front() {
                    g.idle[q] = g.idle[q].saturating_sub(1);
                    // Progress: restart the stall clock (or stop it when nothing waits).
                    g.stalled_since[q] =
                        (g.queues[q].len() > g.idle[q]).then(std::time::Instant::now);
                    g.next_run += 1;
                    let run = g.next_run;
                    if let Some(it) = g.items.get_mut(&e.item) {
                        it.state = ItemState::Running(run);
                    }
                    g.running.insert(run, (e.item, e.routine, e.owner));
                    break (e, run);
                }
                if m.shutdown.load(Ordering::SeqCst) {
                    g.started[q] = g.started[q].saturating_sub(1);
                    g.idle[q] = g.idle[q].saturating_sub(1);
                    drop(g);
                    machine::set_current(None);
                    return;
                }
                g = m.wi_cv[q].wait(g).unwrap_or_else(|e| e.into_inner());
            }
        };
        machine::with_context(e.owner, "work item routine", || {
            machine::CALLER.with(|c| c.set(0));
            irql::set(PASSIVE_LEVEL);
            if e.ex {
                // SAFETY: `routine` was passed to IoQueueWorkItemEx as an IO_WORKITEM_ROUTINE_EX
                // (non-null, checked); the item is dequeued, as Windows guarantees.
                let f: IO_WORKITEM_ROUTINE_EX = unsafe { core::mem::transmute(e.routine) };
                // SAFETY: calling the driver's routine with the documented arguments.
                unsafe {
                    f(
                        e.io_object as PVOID,
                        e.context as PVOID,
                        e.item as PIO_WORKITEM,
                    )
                };
            } else {
                // SAFETY: `routine` was passed to IoQueueWorkItem as an IO_WORKITEM_ROUTINE.
                let f: IO_WORKITEM_ROUTINE = unsafe { core::mem::transmute(e.routine) };
                // SAFETY: calling the driver's routine with the documented arguments.
                unsafe { f(e.io_object as *mut DEVICE_OBJECT, e.context as PVOID) };
            }
            let lvl = irql::get();
            if lvl != PASSIVE_LEVEL {
                raise(
                    &m,
                    Bc::new(
                        bugcheck::WORKER_THREAD_RETURNED_AT_BAD_IRQL,
                        [
                            e.routine as u64,
                            lvl as u64,
                            e.context as u64,
                            e.item as u64,
                        ],
                    )
                    .at(e.routine),
                );
            }
        });
        {
            let mut g = lock(&m.wi);
            if let Some(it) = g.items.get_mut(&e.item)
                && it.state == ItemState::Running(run)
            {
                it.state = ItemState::Initialized;
            }
            g.running.remove(&run);
        }
        if let Err(bc) = crate::ob::deref(&m, e.io_object) {
            raise(&m, bc);
        }
        {
            let mut g = lock(&m.wi);
            if let Some(n) = g.outstanding.get_mut(&e.owner) {
                *n = n.saturating_sub(1);
            }
            g.routines_run += 1;
            g.idle[q] += 1;
        }
        m.wi_idle.notify_all();
    }
}

/// A work item still queued or running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingItem {
    pub item: usize,
    pub routine: usize,
    pub running: bool,
}

/// Items of `owner` that are queued or running.
pub(crate) fn pending_for(m: &Inner, owner: usize) -> Vec<PendingItem> {
    let g = lock(&m.wi);
    let mut v: Vec<PendingItem> = g
        .queues
        .iter()
        .flatten()
        .filter(|e| e.owner == owner)
        .map(|e| PendingItem {
            item: e.item,
            routine: e.routine,
            running: false,
        })
        .collect();
    v.extend(
        g.running
            .values()
            .filter(|r| r.2 == owner)
            .map(|r| PendingItem {
                item: r.0,
                routine: r.1,
                running: true,
            }),
    );
    v
}

/// Wait until `owner` (or every driver) has no queued or running items, or the timeout.
pub(crate) fn wait_idle(m: &Inner, owner: Option<usize>, timeout: std::time::Duration) -> bool {
    let end = std::time::Instant::now() + timeout;
    let mut g = lock(&m.wi);
    loop {
        let busy = match owner {
            Some(o) => g.outstanding.get(&o).copied().unwrap_or(0),
            None => g.outstanding.values().sum(),
        };
        if busy == 0 {
            return true;
        }
        let now = std::time::Instant::now();
        if now >= end || m.bugged.load(Ordering::SeqCst) {
            return false;
        }
        g = m
            .wi_idle
            .wait_timeout(g, (end - now).min(std::time::Duration::from_millis(20)))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}
