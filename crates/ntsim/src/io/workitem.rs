//! Work items (IO_WORKITEM): `IoSizeofWorkItem`, `IoInitializeWorkItem`,
//! `IoUninitializeWorkItem`, `IoQueueWorkItem(Ex)`, `IoAllocateWorkItem`, `IoFreeWorkItem`.
//!
//! State machine per item (keyed by address; the authoritative state is here, not in the
//! caller's memory): Initialized → Queued → Running → Initialized (or removed by
//! IoUninitializeWorkItem, legal inside the routine because the item is dequeued before the
//! routine runs). A queued item travels on an executive worker queue as an [`IoWork`] entry
//! (IopProcessWorkItem's WORK_QUEUE_ITEM); the IoObject is referenced when the item is queued and
//! dereferenced after its routine returns; ntsim never touches the item's memory once the
//! routine has been called.
#![allow(non_snake_case)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use nt_abi::bugcheck::{self, worker_invalid as wi};
use nt_abi::*;

use crate::ex::worker::{WorkEntry, queue_index};
use crate::ids::{DriverId, ItemId};
use crate::ke::bugcheck::raise;
use crate::ke::thread::{self, current};
use crate::machine::{System, lock};
use crate::mm::MemClass;
use crate::ob::{ObjKind, ObjRef};
use crate::verifier::Bc;

pub use crate::ex::worker::{NQ, STALL_BEFORE_NEW_WORKER};

/// Pool tag of items from `IoAllocateWorkItem` (`'IoWk'`).
pub const IO_ALLOCATED_WORK_ITEM_TAG: u32 = pool_tag(*b"IoWk");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemState {
    Initialized,
    Queued,
    /// Dequeued, routine running (run id).
    Running(u64),
}

/// A work routine, as the driver passed it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum IoRoutine {
    /// From `IoQueueWorkItem`.
    Plain(IO_WORKITEM_ROUTINE),
    /// From `IoQueueWorkItemEx`.
    Ex(IO_WORKITEM_ROUTINE_EX),
}

impl IoRoutine {
    fn addr(self) -> usize {
        match self {
            IoRoutine::Plain(f) => f as usize,
            IoRoutine::Ex(f) => f as usize,
        }
    }
}

#[derive(Clone, Debug)]
struct Item {
    state: ItemState,
    /// The IoObject's header (counted while the item is queued or running).
    io_object: ObjRef,
    owner: DriverId,
    allocated: bool,
    /// Routine of the last queueing (for WORKER_INVALID parameters).
    routine: usize,
    /// Queue and order of the last queueing (pending items are reported in queue order).
    queue: usize,
    seq: u64,
}

/// A routine being run.
#[derive(Clone, Copy, Debug)]
struct Run {
    item: ItemId,
    routine: usize,
    owner: DriverId,
}

#[derive(Default)]
struct ItemTable {
    items: BTreeMap<ItemId, Item>,
    /// Routines running, by run id (an item may be uninitialized, or queued again, while its
    /// routine still runs).
    running: HashMap<u64, Run>,
    /// Items queued or running, per owning driver.
    outstanding: HashMap<DriverId, usize>,
    next_run: u64,
    next_seq: u64,
}

/// The I/O manager's work items.
#[derive(Default)]
pub(crate) struct Items {
    table: Mutex<ItemTable>,
    /// Signalled when an item's routine finishes (for idle waiters).
    idle_cv: Condvar,
    idle_waiters: AtomicUsize,
    routines_run: AtomicU64,
}

impl Items {
    /// Number of work-item routines that have returned so far.
    pub(crate) fn routines_run(&self) -> u64 {
        self.routines_run.load(Ordering::SeqCst)
    }

    /// Wake idle waiters (after a bug check).
    pub(crate) fn wake_all(&self) {
        drop(lock(&self.table));
        self.idle_cv.notify_all();
    }
}

/// A queued work item on an executive worker queue (IopProcessWorkItem with its parameter).
pub(crate) struct IoWork {
    item: ItemId,
    routine: IoRoutine,
    context: usize,
    io_object: ObjRef,
    owner: DriverId,
}

/// `IoSizeofWorkItem`: the configured size (0x58 by default).
///
/// # Safety
/// Always safe.
pub unsafe extern "win64" fn IoSizeofWorkItem() -> ULONG {
    current().config.size_of_work_item
}

fn init_item(sys: &System, io_object: usize, item: ItemId, allocated: bool) {
    let hdr = sys
        .ob
        .header(crate::ids::ObjectId(io_object))
        .filter(|h| matches!(h.kind(), ObjKind::Device | ObjKind::Driver) && !h.is_deleted());
    let Some(hdr) = hdr else {
        raise(
            sys,
            Bc::worker_invalid([wi::INVALID_IO_OBJECT, item.0 as u64, io_object as u64, 0]),
        )
    };
    if let Some(bc) = sys.verifier.on_work_item_init(item.0, || {
        let class = crate::ex::pool::classify(sys, item.0);
        (class.is_nonpaged(), class == MemClass::Stack)
    }) {
        raise(sys, bc);
    }
    let owner = thread::driver();
    // IoInitializeWorkItem on a queued item: the documentation's "must not be queued" rule,
    // which nothing shows Windows checks at run time (ReactOS's IoInitializeWorkItem just
    // rewrites the item): ntsim is stricter (documented-only 0xE4/2).
    check_not_queued(sys, item, true);
    let mut size = sys.config.size_of_work_item as usize;
    // Storage smaller than IoSizeofWorkItem(): the kernel's write would run past the pool block.
    if let Some(end) = sys.ex.pool.block_end(item.0)
        && item.0 + size > end
    {
        if let Some(bc) = sys.verifier.on_work_item_overflow(end, thread::caller()) {
            raise(sys, bc);
        }
        // Without special pool Windows would corrupt the neighbour silently; ntsim must not
        // corrupt its own heap, so it writes only up to the end of the block.
        size = end - item.0;
    }
    // SAFETY: the caller provides IoSizeofWorkItem() bytes of writable storage at `item` (the
    // documented contract); we fill it as the kernel would, zeroes plus the IoObject marker at
    // 0x28, and never read it back.
    unsafe {
        core::ptr::write_bytes(item.0 as *mut u8, 0, size);
    }
    if size >= 0x30 {
        // SAFETY: 0x28..0x30 lies within the `size` bytes just written; unaligned-safe write.
        unsafe { ((item.0 + 0x28) as *mut usize).write_unaligned(io_object) };
    }
    let mut g = lock(&sys.io.items.table);
    if let Some(old) = g.items.get(&item)
        && old.state == ItemState::Queued
    {
        let routine = old.routine;
        drop(g);
        raise(sys, queued_item_freed(item, routine).documented_only());
    }
    g.items.insert(
        item,
        Item {
            state: ItemState::Initialized,
            io_object: hdr,
            owner,
            allocated,
            routine: 0,
            queue: 0,
            seq: 0,
        },
    );
}

fn queued_item_freed(item: ItemId, routine: usize) -> Bc {
    Bc::worker_invalid([wi::QUEUED_ITEM_FREED, item.0 as u64, routine as u64, 0])
}

/// 0xE4/2 if `item` is queued (re-initializing it is illegal then); `stricter`: Windows does
/// not check this at run time (documented-only).
fn check_not_queued(sys: &System, item: ItemId, stricter: bool) {
    let g = lock(&sys.io.items.table);
    if let Some(old) = g.items.get(&item)
        && old.state == ItemState::Queued
    {
        let routine = old.routine;
        drop(g);
        let bc = queued_item_freed(item, routine);
        raise(sys, if stricter { bc.documented_only() } else { bc });
    }
}

/// `IoInitializeWorkItem`.
///
/// # Safety
/// `IoWorkItem` must point to `IoSizeofWorkItem()` writable bytes.
pub unsafe extern "win64" fn IoInitializeWorkItem(IoObject: PVOID, IoWorkItem: PIO_WORKITEM) {
    let m = current();
    init_item(&m, IoObject as usize, ItemId(IoWorkItem as usize), false);
}

/// `IoUninitializeWorkItem`: legal when not queued (including inside its own routine).
///
/// # Safety
/// `IoWorkItem` should be an initialized work item.
pub unsafe extern "win64" fn IoUninitializeWorkItem(IoWorkItem: PIO_WORKITEM) {
    forget_unless_queued(&current(), ItemId(IoWorkItem as usize));
}

/// Drop `item`'s state for IoUninitializeWorkItem / IoFreeWorkItem: legal unless it is queued
/// (0xE4 p1 = 2, p3 = the routine it was queued with).
fn forget_unless_queued(sys: &System, item: ItemId) {
    let mut g = lock(&sys.io.items.table);
    if let Some(it) = g.items.get(&item) {
        if it.state == ItemState::Queued {
            let routine = it.routine;
            drop(g);
            raise(sys, queued_item_freed(item, routine));
        }
        g.items.remove(&item);
    }
}

fn queue_common(item: ItemId, routine: IoRoutine, qt: WORK_QUEUE_TYPE, context: usize) {
    let m = current();
    let sys: &System = &m;
    let lvl = thread::irql();
    let i = item.0 as u64;
    if lvl > DISPATCH_LEVEL {
        raise(
            sys,
            Bc::new(bugcheck::IRQL_NOT_LESS_OR_EQUAL, [i, lvl as u64, 0, 0]),
        );
    }
    if !is_valid_work_queue_type(qt) {
        raise(
            sys,
            Bc::worker_invalid([wi::INVALID_QUEUE_TYPE, i, qt as i64 as u64, 0]),
        );
    }
    let raddr = routine.addr();
    if raddr == 0 {
        raise(
            sys,
            Bc::worker_invalid([wi::INVALID_ROUTINE, i, qt as i64 as u64, 0]),
        );
    }
    let snapshot = lock(&sys.io.items.table)
        .items
        .get(&item)
        .map(|it| (it.state, it.io_object.clone(), it.owner));
    let Some((state, io_object, owner)) = snapshot else {
        raise(
            sys,
            Bc::worker_invalid([wi::INVALID_IO_OBJECT, i, 0, 0]).documented_only(),
        );
    };
    // Microsoft, *Bug Check 0xE4*: p1 = 1, p2 = the item, p3 = the queue number, p4 = 0.
    let requeued = || Bc::worker_invalid([wi::QUEUED_ITEM_REQUEUED, i, qt as i64 as u64, 0]);
    if state == ItemState::Queued {
        raise(sys, requeued());
    }
    // A driver-owned (PE) item must have its routine inside a loaded image.
    if crate::io::driver::has_image(sys, owner) && !sys.mm.is_image_code(raddr) {
        // Microsoft, *Bug Check 0xE4*: p1 = 7, p2 = the item, p3 = the queue number, p4 = 0.
        raise(
            sys,
            Bc::worker_invalid([wi::INVALID_ROUTINE, i, qt as i64 as u64, 0]),
        );
    }
    // IoQueueWorkItem's routine takes a DEVICE_OBJECT, so its item must be initialized with
    // one (Microsoft, *IoInitializeWorkItem*: "IoObject: pointer to the caller's driver object
    // or to one of the caller's device objects" — the driver object only for
    // IoQueueWorkItemEx, *IoQueueWorkItem*: the routine gets "a pointer to the caller's device
    // object"). Nothing shows Windows checks it at run time (ReactOS passes whatever object
    // the item holds): ntsim is stricter (documented-only 0xE4/3).
    match (io_object.kind(), routine) {
        (ObjKind::Device, _) | (ObjKind::Driver, IoRoutine::Ex(_)) => {}
        _ => raise(
            sys,
            Bc::worker_invalid([wi::INVALID_IO_OBJECT, i, io_object.object().0 as u64, 0])
                .documented_only(),
        ),
    }
    if let Err(bc) = io_object.reference() {
        raise(sys, bc);
    }
    let q = queue_index(qt);
    let mut g = lock(&sys.io.items.table);
    g.next_seq += 1;
    let seq = g.next_seq;
    match g.items.get_mut(&item) {
        Some(cur) if cur.state != ItemState::Queued => {
            cur.state = ItemState::Queued;
            cur.routine = raddr;
            cur.queue = q;
            cur.seq = seq;
        }
        found => {
            let again = found.is_some();
            drop(g);
            let _ = io_object.dereference(&sys.verifier);
            crate::ob::release_if_gone(sys, &io_object);
            // Uninitialized by another thread during this call: as for an item that was never
            // initialized (0xE4 p1 = 5 is "queued before the worker queues were initialized",
            // which cannot happen in ntsim: its queues exist from the start).
            raise(
                sys,
                if again {
                    requeued()
                } else {
                    Bc::worker_invalid([wi::INVALID_IO_OBJECT, i, 0, 0]).documented_only()
                },
            );
        }
    }
    *g.outstanding.entry(owner).or_default() += 1;
    drop(g);
    sys.ex.workers.queue(
        sys,
        q,
        IoWork {
            item,
            routine,
            context,
            io_object,
            owner,
        },
    );
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
        ItemId(IoWorkItem as usize),
        IoRoutine::Plain(WorkerRoutine),
        QueueType,
        Context as usize,
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
        ItemId(IoWorkItem as usize),
        IoRoutine::Ex(WorkerRoutine),
        QueueType,
        Context as usize,
    );
}

/// `IoAllocateWorkItem`: a nonpaged, initialized item owned by the caller's driver.
///
/// # Safety
/// `DeviceObject` should be a device object.
pub unsafe extern "win64" fn IoAllocateWorkItem(DeviceObject: *mut DEVICE_OBJECT) -> PIO_WORKITEM {
    let m = current();
    let size = m.config.size_of_work_item as usize;
    let p = m.ex.pool.alloc_block(
        &m.mm,
        POOL_FLAG_NON_PAGED,
        size,
        IO_ALLOCATED_WORK_ITEM_TAG,
        thread::driver(),
    );
    if p.is_null() {
        return core::ptr::null_mut();
    }
    init_item(&m, DeviceObject as usize, ItemId(p as usize), true);
    p.cast()
}

/// `IoFreeWorkItem`: legal inside the item's routine, never while it is queued.
///
/// # Safety
/// `IoWorkItem` should come from `IoAllocateWorkItem`.
pub unsafe extern "win64" fn IoFreeWorkItem(IoWorkItem: PIO_WORKITEM) {
    let m = current();
    let item = ItemId(IoWorkItem as usize);
    forget_unless_queued(&m, item);
    crate::ex::pool::free_block(&m, item.0, None);
}

impl WorkEntry for IoWork {
    /// IopProcessWorkItem: mark the item running, call the routine at PASSIVE_LEVEL as its
    /// driver, check the IRQL it returns at, then drop the IoObject reference.
    fn run(self, sys: &System) {
        let items = &sys.io.items;
        let run = {
            let mut g = lock(&items.table);
            g.next_run += 1;
            let run = g.next_run;
            if let Some(it) = g.items.get_mut(&self.item) {
                it.state = ItemState::Running(run);
            }
            g.running.insert(
                run,
                Run {
                    item: self.item,
                    routine: self.routine.addr(),
                    owner: self.owner,
                },
            );
            run
        };
        let obj = self.io_object.object().0 as PVOID;
        thread::with_context(self.owner, "work item routine", || {
            thread::set_caller(0);
            thread::set_irql(PASSIVE_LEVEL);
            let apc = crate::ke::apc::snapshot();
            match self.routine {
                // SAFETY: the driver's routine, passed to IoQueueWorkItemEx (non-null,
                // checked), called with the documented arguments; the item is dequeued, as
                // Windows guarantees.
                IoRoutine::Ex(f) => unsafe { f(obj, self.context as PVOID, self.item.ptr()) },
                // SAFETY: as above, for IoQueueWorkItem's routine (IoObject is a device).
                IoRoutine::Plain(f) => unsafe { f(obj.cast(), self.context as PVOID) },
            }
            // 0xE1 (Microsoft, *Bug Check 0xE1*: p1 = the worker routine, p2 = the IRQL, p3 =
            // the work item's parameter, p4 = the work item). For an IO_WORKITEM Windows'
            // executive work item is the I/O manager's wrapper (ReactOS iowork.c:
            // IopWorkItemCallback, with the IO_WORKITEM as its parameter), so Windows shows
            // p1 = nt!IopProcessWorkItem, p3 = p4 = the IO_WORKITEM. ntsim gives p3 and p4 as
            // Windows does, but p1 = the driver's routine: ntsim has no ntoskrnl image to name,
            // and the driver's routine is the address a debugger would reach from the wrapper.
            let lvl = thread::irql();
            if lvl != PASSIVE_LEVEL {
                let r = self.routine.addr();
                raise(
                    sys,
                    Bc::new(
                        bugcheck::WORKER_THREAD_RETURNED_AT_BAD_IRQL,
                        [r as u64, lvl as u64, self.item.0 as u64, self.item.0 as u64],
                    )
                    .at(r),
                );
            }
            // APC_INDEX_MISMATCH (p4 = 1, a worker routine) when the routine left a critical
            // or guarded region unbalanced, or a KMUTEX owned (ke::apc).
            crate::ke::apc::check_after(sys, true, self.routine.addr(), apc);
        });
        {
            let mut g = lock(&items.table);
            if let Some(it) = g.items.get_mut(&self.item)
                && it.state == ItemState::Running(run)
            {
                it.state = ItemState::Initialized;
            }
            g.running.remove(&run);
        }
        if let Err(bc) = self.io_object.dereference(&sys.verifier) {
            raise(sys, bc);
        }
        crate::ob::release_if_gone(sys, &self.io_object);
        // Counted before the item stops being outstanding, so a caller that has seen the
        // queues idle (`wait_idle`) also sees every routine that ran.
        items.routines_run.fetch_add(1, Ordering::SeqCst);
        {
            let mut g = lock(&items.table);
            if let Some(n) = g.outstanding.get_mut(&self.owner) {
                *n = n.saturating_sub(1);
            }
        }
        if items.idle_waiters.load(Ordering::SeqCst) > 0 {
            drop(lock(&items.table));
            items.idle_cv.notify_all();
        }
    }
}

/// The pool hook ([`crate::ex::pool::FreeHook`]): pool `[start, start + size)` is being freed.
/// A queued item in it is 0xE4/0 (ntoskrnl checks this itself); an initialized one is the
/// verifier's documented-only 0xE4/0. Items in the block are forgotten.
pub(crate) fn on_pool_free(sys: &System, start: usize, size: usize) {
    let items = &sys.io.items;
    let range = ItemId(start)..ItemId(start + size.max(1));
    let live: Vec<(ItemId, ItemState)> = lock(&items.table)
        .items
        .range(range.clone())
        .map(|(&a, it)| (a, it.state))
        .collect();
    for (item, state) in live {
        let end = start + size;
        if state == ItemState::Queued {
            raise(
                sys,
                Bc::worker_invalid([
                    wi::ACTIVE_ITEM_IN_FREED_POOL,
                    item.0 as u64,
                    start as u64,
                    end as u64,
                ]),
            );
        }
        if let Some(bc) = sys.verifier.on_pool_free_with_work_item(item.0, start, end) {
            raise(sys, bc);
        }
    }
    // Without the verifier, forget initialized items in the freed memory.
    let mut g = lock(&items.table);
    let stale: Vec<ItemId> = g.items.range(range).map(|(&a, _)| a).collect();
    for a in stale {
        g.items.remove(&a);
    }
}

/// A work item still queued or running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingItem {
    pub item: usize,
    pub routine: usize,
    pub running: bool,
}

/// Items of `owner` that are queued (in queue order) or running.
pub(crate) fn pending_for(sys: &System, owner: DriverId) -> Vec<PendingItem> {
    let g = lock(&sys.io.items.table);
    let mut queued: Vec<(usize, u64, PendingItem)> = g
        .items
        .iter()
        .filter(|(_, it)| it.owner == owner && it.state == ItemState::Queued)
        .map(|(&a, it)| {
            (
                it.queue,
                it.seq,
                PendingItem {
                    item: a.0,
                    routine: it.routine,
                    running: false,
                },
            )
        })
        .collect();
    queued.sort_by_key(|q| (q.0, q.1));
    let mut v: Vec<PendingItem> = queued.into_iter().map(|q| q.2).collect();
    v.extend(
        g.running
            .values()
            .filter(|r| r.owner == owner)
            .map(|r| PendingItem {
                item: r.item.0,
                routine: r.routine,
                running: true,
            }),
    );
    v
}

/// Work items of `owner` initialized with IoInitializeWorkItem and never uninitialized.
pub(crate) fn initialized_of(sys: &System, owner: DriverId) -> Vec<usize> {
    lock(&sys.io.items.table)
        .items
        .iter()
        .filter(|(_, it)| it.owner == owner && !it.allocated)
        .map(|(&a, _)| a.0)
        .collect()
}

/// Wait until `owner` (or every driver) has no queued or running items, or the timeout.
pub(crate) fn wait_idle(sys: &System, owner: Option<DriverId>, timeout: Duration) -> bool {
    let items = &sys.io.items;
    let end = Instant::now() + timeout;
    let mut g = lock(&items.table);
    items.idle_waiters.fetch_add(1, Ordering::SeqCst);
    let r = loop {
        let busy = match owner {
            Some(o) => g.outstanding.get(&o).copied().unwrap_or(0),
            None => g.outstanding.values().sum(),
        };
        if busy == 0 {
            break true;
        }
        let now = Instant::now();
        if now >= end || sys.ke.is_bugged() {
            break false;
        }
        g = items
            .idle_cv
            .wait_timeout(g, (end - now).min(Duration::from_millis(20)))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    };
    items.idle_waiters.fetch_sub(1, Ordering::SeqCst);
    r
}
