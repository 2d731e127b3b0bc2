//! Deferred procedure calls: one DPC queue per processor, each drained by a DPC thread of its
//! own that runs the routines at DISPATCH_LEVEL on that processor (Microsoft, *Introduction to
//! DPC Objects*, *KeInsertQueueDpc*, *KeRemoveQueueDpc*, *KeFlushQueuedDpcs*,
//! *KeSetImportanceDpc*, *KeSetTargetProcessorDpc*; ReactOS `ke/dpc.c`).
//!
//! - `KDPC.DpcData` is non-null exactly while the DPC is queued (ntsim stores the queue's
//!   number + 1 there), so KeInsertQueueDpc of a queued DPC returns FALSE and changes nothing,
//!   and KeRemoveQueueDpc knows which queue to take it from. The DPC thread clears it before it
//!   calls the routine, so the routine may queue its own DPC again.
//! - HighImportance DPCs go to the head of the queue, the others to the tail (Windows also
//!   lets LowImportance DPCs wait for the queue to grow; ntsim runs every DPC as soon as its
//!   DPC thread gets to it).
//! - `Number` ≥ MAXIMUM_PROCESSORS (set by KeSetTargetProcessorDpc) selects processor
//!   `Number − MAXIMUM_PROCESSORS`; otherwise the processor of the thread that queues it.
//! - Inside a routine: IRQL DISPATCH_LEVEL, `KeIsExecutingDpc()` TRUE, the processor number
//!   of the queue, context `DPC routine` in reports. A routine that returns at another IRQL is
//!   bug check 0xC8 IRQL_UNEXPECTED_VALUE with p1 = (IRQL << 16) | (DISPATCH_LEVEL << 8) | 0,
//!   p2 the routine, p3 the KDPC, p4 0 (Microsoft, *Bug Check 0xC8*: "usually caused by a
//!   driver that changed the IRQL … and did not restore it", e.g. a spin lock it did not
//!   release; the page defines p1's bit layout but no UniqueValue or p2–p4 for DPCs, so those
//!   are ntsim's). The KPRCB's DpcRoutineActive is not in ntsim's modelled KPRCB prefix; drivers
//!   ask KeIsExecutingDpc.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use nt_abi::bugcheck as codes;
use nt_abi::dispatcher::object_type as ot;
use nt_abi::*;

use super::bugcheck::raise;
use super::thread::{self, KernelState, current, park_forever};
use super::{cpu, irql};
use crate::ids::DriverId;
use crate::machine::{System, lock};
use crate::verifier::Bc;

/// What a thread running a DPC routine is doing (reports; KeIsExecutingDpc).
pub(crate) const DPC_CONTEXT: &str = "DPC routine";

/// How long an idle DPC thread waits for work before it exits (it is restarted on demand).
const DPC_THREAD_IDLE: Duration = Duration::from_secs(2);

#[derive(Clone, Copy)]
struct Entry {
    dpc: usize,
    driver: DriverId,
}

#[derive(Default)]
struct QueueState {
    entries: VecDeque<Entry>,
    /// A routine from this queue is running now.
    running: bool,
    /// The queue's DPC thread exists.
    thread: bool,
}

#[derive(Default)]
struct Queue {
    st: Mutex<QueueState>,
    cv: Condvar,
}

/// The per-processor DPC queues of one machine.
pub(crate) struct Dpcs {
    queues: Vec<Queue>,
    shutdown: std::sync::atomic::AtomicBool,
}

impl Dpcs {
    pub(crate) fn new() -> Self {
        Dpcs {
            queues: (0..cpu::processor_count())
                .map(|_| Queue::default())
                .collect(),
            shutdown: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Stop the DPC threads (each exits once its queue is empty).
    pub(crate) fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    /// Wake every DPC thread and flush waiter (after a bug check or at shutdown).
    pub(crate) fn wake_all(&self) {
        for q in &self.queues {
            drop(lock(&q.st));
            q.cv.notify_all();
        }
    }

    /// Whether any queued DPC or running routine belongs to `[lo, hi)` (object or routine):
    /// (p1, object) for TIMER_OR_DPC_INVALID.
    pub(crate) fn queued_in_range(&self, lo: usize, hi: usize) -> Option<(u64, usize)> {
        for q in &self.queues {
            let g = lock(&q.st);
            for e in &g.entries {
                if (lo..hi).contains(&e.dpc) {
                    return Some((1, e.dpc));
                }
                let r = routine_of(e.dpc);
                if (lo..hi).contains(&r) {
                    return Some((2, r));
                }
            }
        }
        None
    }
}

fn dpc_data(dpc: *mut KDPC) -> &'static AtomicPtr<core::ffi::c_void> {
    // SAFETY: computing a field address of the caller's KDPC reads nothing.
    let p = unsafe { &raw mut (*dpc).DpcData };
    // SAFETY: DpcData is a naturally aligned pointer of a live KDPC, and ntsim only accesses it
    // atomically.
    unsafe { AtomicPtr::from_ptr(p) }
}

/// A copy of the driver's KDPC.
fn read_dpc(dpc: *const KDPC) -> KDPC {
    // SAFETY: callers pass a KDPC the driver keeps alive while it is queued or in use (the
    // contract of every DPC export); KDPC is plain data (a null routine reads as None).
    unsafe { dpc.read_unaligned() }
}

/// A pointer to a field of a KDPC at `offset` (no access).
fn field<T>(dpc: *mut KDPC, offset: usize) -> *mut T {
    dpc.wrapping_byte_add(offset).cast::<T>()
}

fn routine_of(dpc: usize) -> usize {
    read_dpc(dpc as *const KDPC)
        .DeferredRoutine
        .map_or(0, |f| f as usize)
}

/// Whether the calling thread is running a DPC routine.
pub(crate) fn in_dpc() -> bool {
    thread::context() == DPC_CONTEXT
}

/// The queue a DPC goes to.
fn target(dpc: *mut KDPC, n: usize) -> usize {
    let number = read_dpc(dpc).Number;
    if number >= MAXIMUM_PROCESSORS {
        (number - MAXIMUM_PROCESSORS) as usize % n
    } else {
        cpu::current_processor() as usize % n
    }
}

/// Queue `dpc` with its system arguments (KeInsertQueueDpc; also a timer's expiry). FALSE if
/// it is already queued.
pub(crate) fn insert(
    sys: &Arc<System>,
    dpc: *mut KDPC,
    a1: PVOID,
    a2: PVOID,
    driver: DriverId,
) -> bool {
    let dpcs = &sys.ke.dpcs;
    let qi = target(dpc, dpcs.queues.len());
    let q = &dpcs.queues[qi];
    let mut g = lock(&q.st);
    if dpc_data(dpc)
        .compare_exchange(
            core::ptr::null_mut(),
            (qi + 1) as PVOID,
            Ordering::SeqCst,
            Ordering::SeqCst,
        )
        .is_err()
    {
        return false;
    }
    let p1 = field::<PVOID>(dpc, core::mem::offset_of!(KDPC, SystemArgument1));
    let p2 = field::<PVOID>(dpc, core::mem::offset_of!(KDPC, SystemArgument2));
    // SAFETY: the driver's KDPC, now queued by us: its argument fields are ours to set.
    unsafe { p1.write_unaligned(a1) };
    // SAFETY: as above.
    unsafe { p2.write_unaligned(a2) };
    let importance = read_dpc(dpc).Importance;
    let e = Entry {
        dpc: dpc as usize,
        driver,
    };
    if importance == HIGH_IMPORTANCE {
        g.entries.push_front(e);
    } else {
        g.entries.push_back(e);
    }
    let start = !g.thread;
    g.thread = true;
    drop(g);
    q.cv.notify_all();
    if start {
        spawn_dpc_thread(sys.clone(), qi);
    }
    true
}

fn spawn_dpc_thread(sys: Arc<System>, qi: usize) {
    let r =
        super::fault::spawn_driver_thread(&format!("ntsim-dpc-{qi}"), move || dpc_thread(sys, qi));
    if let Err(e) = r {
        eprintln!("ntsim: cannot spawn a DPC thread: {e}");
    }
}

fn dpc_thread(sys: Arc<System>, qi: usize) {
    let state = KernelState::enter(sys.clone(), DriverId::NONE, DPC_CONTEXT);
    cpu::set_processor(qi as u32);
    let q = &sys.ke.dpcs.queues[qi];
    loop {
        let mut g = lock(&q.st);
        let e = loop {
            if sys.ke.is_bugged() {
                drop(g);
                park_forever();
            }
            if let Some(e) = g.entries.pop_front() {
                g.running = true;
                break e;
            }
            let stop = sys.ke.dpcs.shutdown.load(Ordering::SeqCst);
            let (g2, to) = if stop {
                (g, true)
            } else {
                let (g2, r) =
                    q.cv.wait_timeout(g, DPC_THREAD_IDLE)
                        .unwrap_or_else(|e| e.into_inner());
                (g2, r.timed_out())
            };
            g = g2;
            if to && g.entries.is_empty() {
                g.thread = false;
                drop(g);
                drop(state);
                return;
            }
        };
        drop(g);
        run_one(&sys, e);
        let mut g = lock(&q.st);
        g.running = false;
        drop(g);
        q.cv.notify_all();
    }
}

fn run_one(sys: &System, e: Entry) {
    let dpc = e.dpc as *mut KDPC;
    // The KDPC was queued by the driver, which must keep it alive while queued; it is dequeued
    // now (DpcData cleared below, before the routine runs, as Windows does).
    let d = read_dpc(dpc);
    let (routine, ctx, a1, a2) = (
        d.DeferredRoutine,
        d.DeferredContext,
        d.SystemArgument1,
        d.SystemArgument2,
    );
    dpc_data(dpc).store(core::ptr::null_mut(), Ordering::SeqCst);
    let Some(routine) = routine else { return };
    thread::with_context(e.driver, DPC_CONTEXT, || {
        irql::set(DISPATCH_LEVEL);
        // SAFETY: the driver's DPC routine, called as KiExecuteAllDpcs does, at DISPATCH_LEVEL
        // with the KDPC, its context and the two system arguments.
        unsafe { routine(dpc, ctx, a1, a2) };
        let lvl = irql::get();
        if lvl != DISPATCH_LEVEL {
            raise(
                sys,
                Bc::new(
                    codes::IRQL_UNEXPECTED_VALUE,
                    [
                        ((lvl as u64) << 16) | ((DISPATCH_LEVEL as u64) << 8),
                        routine as usize as u64,
                        dpc as u64,
                        0,
                    ],
                )
                .at(routine as usize),
            );
        }
        irql::set(PASSIVE_LEVEL);
    });
}

/// `KeInitializeDpc`: Type DpcObject, MediumImportance, any processor, not queued.
///
/// # Safety
/// `Dpc` must be writable storage for a KDPC.
pub unsafe extern "win64" fn KeInitializeDpc(
    Dpc: *mut KDPC,
    DeferredRoutine: KDEFERRED_ROUTINE,
    DeferredContext: PVOID,
) {
    let _m = current();
    // SAFETY: writable KDPC storage per the contract.
    unsafe {
        Dpc.write_unaligned(KDPC {
            Type: ot::DPC,
            Importance: MEDIUM_IMPORTANCE,
            Number: 0,
            DpcListEntry: LIST_ENTRY {
                Flink: core::ptr::null_mut(),
                Blink: core::ptr::null_mut(),
            },
            DeferredRoutine: Some(DeferredRoutine),
            DeferredContext,
            SystemArgument1: core::ptr::null_mut(),
            SystemArgument2: core::ptr::null_mut(),
            DpcData: core::ptr::null_mut(),
        })
    };
}

/// `KeInsertQueueDpc`: TRUE if queued, FALSE if it already was (any IRQL).
///
/// # Safety
/// `Dpc` must be an initialized KDPC that stays valid while queued.
pub unsafe extern "win64" fn KeInsertQueueDpc(
    Dpc: *mut KDPC,
    SystemArgument1: PVOID,
    SystemArgument2: PVOID,
) -> BOOLEAN {
    let _m = current();
    let sys = thread::current_arc();
    insert(
        &sys,
        Dpc,
        SystemArgument1,
        SystemArgument2,
        thread::driver(),
    ) as BOOLEAN
}

/// `KeRemoveQueueDpc`: TRUE if the DPC was queued (it is removed and will not run).
///
/// # Safety
/// `Dpc` must be an initialized KDPC.
pub unsafe extern "win64" fn KeRemoveQueueDpc(Dpc: *mut KDPC) -> BOOLEAN {
    let m = current();
    let qi = dpc_data(Dpc).load(Ordering::SeqCst) as usize;
    if qi == 0 || qi > m.ke.dpcs.queues.len() {
        return 0;
    }
    let q = &m.ke.dpcs.queues[qi - 1];
    let mut g = lock(&q.st);
    let before = g.entries.len();
    g.entries.retain(|e| e.dpc != Dpc as usize);
    let removed = g.entries.len() != before;
    if removed {
        dpc_data(Dpc).store(core::ptr::null_mut(), Ordering::SeqCst);
    }
    removed as BOOLEAN
}

/// `KeFlushQueuedDpcs`: returns when every DPC queued before the call has run (each queue was
/// seen empty with no routine running). PASSIVE_LEVEL only (Microsoft, *KeFlushQueuedDpcs*);
/// called above it, it is 0xA IRQL_NOT_LESS_OR_EQUAL (p1 0, p2 the IRQL), as a wait would be.
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn KeFlushQueuedDpcs() {
    let m = current();
    let lvl = irql::get();
    if lvl > PASSIVE_LEVEL {
        raise(
            &m,
            Bc::new(codes::IRQL_NOT_LESS_OR_EQUAL, [0, lvl as u64, 0, 0]),
        );
    }
    for q in &m.ke.dpcs.queues {
        let mut g = lock(&q.st);
        while !g.entries.is_empty() || g.running {
            if m.ke.is_bugged() {
                drop(g);
                park_forever();
            }
            g =
                q.cv.wait_timeout(g, Duration::from_millis(20))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
        }
    }
}

/// `KeSetImportanceDpc`: LowImportance, MediumImportance, HighImportance (head of the queue)
/// or MediumHighImportance.
///
/// # Safety
/// `Dpc` must be an initialized KDPC.
pub unsafe extern "win64" fn KeSetImportanceDpc(Dpc: *mut KDPC, Importance: LONG) {
    let _m = current();
    let p = field::<u8>(Dpc, core::mem::offset_of!(KDPC, Importance));
    // SAFETY: the driver's initialized KDPC; `p` is its Importance byte.
    unsafe { p.write(Importance as u8) };
}

/// `KeSetTargetProcessorDpc`: queue the DPC on processor `Number` (stored as
/// MAXIMUM_PROCESSORS + Number, as Windows does).
///
/// # Safety
/// `Dpc` must be an initialized KDPC.
pub unsafe extern "win64" fn KeSetTargetProcessorDpc(Dpc: *mut KDPC, Number: CCHAR) {
    let _m = current();
    let n = (Number as u8 as USHORT) + MAXIMUM_PROCESSORS;
    let p = field::<USHORT>(Dpc, core::mem::offset_of!(KDPC, Number));
    // SAFETY: the driver's initialized KDPC; `p` is its Number field.
    unsafe { p.write_unaligned(n) };
}

/// `KeIsExecutingDpc`: TRUE inside a DPC routine.
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn KeIsExecutingDpc() -> BOOLEAN {
    let _m = current();
    in_dpc() as BOOLEAN
}
