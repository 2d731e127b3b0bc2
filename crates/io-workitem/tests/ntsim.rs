//! The safe layer on ntsim (in-process emulated ntoskrnl, Driver Verifier rules on): the
//! lifecycle, every queueing mode, several run-time `IoSizeofWorkItem` values, and a stress
//! run with several kernel threads acquiring, queueing, requeueing, detaching and dropping at
//! once, ending with ntsim's audit clean (no pool, no initialized or queued item left) and no
//! bug check. A raw misuse through the same backend shows the checks are live.
#![cfg(not(loom))]

#[path = "support/ntsim_backend.rs"]
mod ntsim_backend;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use io_workitem::{
    Backend, CustomPriority, Detached, Device, Driver, QueueType, Routine, Slab, WorkItem,
};
use nt_abi::bugcheck::{WORKER_INVALID, worker_invalid};
use ntsim::{Config, Machine, Verifier};
use ntsim_backend::Ntsim;

const TAG: u32 = u32::from_le_bytes(*b"WiNs");

fn machine(size_of_work_item: u32) -> Machine {
    Machine::new(Config {
        size_of_work_item,
        verifier: Verifier::Standard,
        workers_per_queue: 2,
        ..Config::default()
    })
}

/// The host pseudo-driver's device, as a `&'static Device`.
fn host_device(m: &Machine) -> &'static Device {
    let dev = m.host_driver().expect("host device").device_object();
    // SAFETY: the host device lives as long as the machine, and every test tears its slab down
    // (inside a kernel thread) before the machine is dropped.
    unsafe { Device::from_raw(dev) }
}

fn assert_clean(m: &Machine) {
    // A slab's teardown returns once the last routine has signalled the rundown event; that
    // routine's epilogue may still be returning to its worker thread (as on Windows, where the
    // I/O manager's reference on the device covers it). Wait for the workers to go idle.
    assert!(m.wait_work_items_idle(Duration::from_secs(10)));
    assert_eq!(m.bugcheck(), None);
    let audit = m.audit();
    assert!(audit.is_clean(), "ntsim audit: {audit:?}");
    assert_eq!(m.pool_stats().outstanding_blocks, 0);
}

#[derive(Default)]
struct Stats {
    runs: AtomicU64,
    uninit_in_routine: AtomicU64,
    requeues: AtomicU64,
    handed_back: Mutex<Vec<Detached<Ntsim, Job>>>,
}

struct Job {
    stats: Arc<Stats>,
    requeues_left: u32,
    hand_back: bool,
}

/// Requeues (alternating plain and Ex) while the payload says so, even during teardown (the
/// drain must follow the chain); then hands the item back to the requesting thread or
/// uninitializes it inside the routine.
struct Step;
impl Routine<Ntsim, Job> for Step {
    fn run(mut item: WorkItem<'_, Ntsim, Job>) {
        let stats = item.payload().stats.clone();
        stats.runs.fetch_add(1, Ordering::Relaxed);
        if item.payload().requeues_left > 0 {
            item.payload_mut().requeues_left -= 1;
            stats.requeues.fetch_add(1, Ordering::Relaxed);
            if item.payload().requeues_left.is_multiple_of(2) {
                item.queue::<Step>(QueueType::Delayed);
            } else {
                item.queue_ex::<Step>(QueueType::Custom(CustomPriority::new(12).unwrap()));
            }
        } else if item.payload().hand_back {
            stats.handed_back.lock().unwrap().push(item.detach());
        } else {
            drop(item);
            stats.uninit_in_routine.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn job(stats: &Arc<Stats>, requeues_left: u32, hand_back: bool) -> Job {
    Job {
        stats: stats.clone(),
        requeues_left,
        hand_back,
    }
}

#[test]
fn every_mode_on_ntsim_with_verifier() {
    let m = machine(0x58);
    let dev = host_device(&m);
    let stats = Arc::new(Stats::default());
    let s = stats.clone();
    let report = m
        .run_in_kernel_thread(move || {
            let slab = Slab::<Ntsim, Job>::new(dev, 8, TAG).unwrap();
            assert_eq!(slab.item_size(), 0x58);
            // Init/uninit only.
            for _ in 0..20 {
                drop(slab.acquire(job(&s, 0, false)).unwrap());
            }
            // Uninitialize inside the routine, plain and Ex.
            slab.acquire(job(&s, 0, false))
                .unwrap()
                .queue::<Step>(QueueType::Delayed);
            slab.acquire(job(&s, 0, false))
                .unwrap()
                .queue_ex::<Step>(QueueType::Critical);
            // Requeue chains.
            slab.acquire(job(&s, 5, false))
                .unwrap()
                .queue::<Step>(QueueType::Normal);
            // Queue, then uninitialize in the caller.
            slab.acquire(job(&s, 0, true))
                .unwrap()
                .queue::<Step>(QueueType::Background);
            let back = loop {
                if let Some(d) = s.handed_back.lock().unwrap().pop() {
                    break d;
                }
                std::thread::yield_now();
            };
            drop(back);
            slab.shutdown()
        })
        .expect("no bug check");
    assert_eq!(report.leaked_items, 0);
    assert_eq!(stats.runs.load(Ordering::Relaxed), 2 + 6 + 1);
    assert_eq!(stats.requeues.load(Ordering::Relaxed), 5);
    assert_eq!(stats.uninit_in_routine.load(Ordering::Relaxed), 3);
    assert_eq!(m.work_item_routines_run(), 9);
    assert_clean(&m);
}

#[test]
fn stride_follows_ntsim_item_size() {
    for size in nt_abi::KNOWN_IO_WORKITEM_SIZES {
        let m = machine(size);
        let dev = host_device(&m);
        let stats = Arc::new(Stats::default());
        let s = stats.clone();
        let stride = m
            .run_in_kernel_thread(move || {
                let slab = Slab::<Ntsim, Job>::new(dev, 4, TAG).unwrap();
                assert_eq!(slab.item_size(), size);
                for _ in 0..4 {
                    slab.acquire(job(&s, 1, false))
                        .unwrap()
                        .queue::<Step>(QueueType::Delayed);
                }
                let stride = slab.stride();
                assert_eq!(slab.shutdown().leaked_items, 0);
                stride
            })
            .expect("no bug check");
        assert!(
            stride >= size as usize && stride % 16 == 0,
            "stride {stride} for {size:#x}"
        );
        assert_eq!(stats.runs.load(Ordering::Relaxed), 8);
        assert_clean(&m);
    }
}

#[test]
fn stress_kernel_threads_acquire_queue_requeue_drop_with_verifier() {
    const THREADS: usize = 4;
    const ROUNDS: u32 = 3000;
    let m = Arc::new(machine(0x60));
    let dev = host_device(&m);
    let stats = Arc::new(Stats::default());
    let slab = Arc::new(
        m.run_in_kernel_thread(move || Slab::<Ntsim, Job>::new(dev, 32, TAG).unwrap())
            .expect("no bug check"),
    );
    let expected_runs = Arc::new(AtomicU64::new(0));
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (m, slab, stats, expected_runs) = (
                m.clone(),
                slab.clone(),
                stats.clone(),
                expected_runs.clone(),
            );
            scope.spawn(move || {
                m.run_in_kernel_thread(move || {
                    let mut exhausted = 0u32;
                    for r in 0..ROUNDS {
                        let mode = (r + t as u32) % 5;
                        let requeues = if mode == 2 { r % 4 } else { 0 };
                        let item = match slab.acquire(job(&stats, requeues, mode == 4)) {
                            Ok(item) => item,
                            Err(_) => {
                                exhausted += 1;
                                std::thread::yield_now();
                                continue;
                            }
                        };
                        match mode {
                            0 => drop(item),
                            1 => item.queue::<Step>(QueueType::Delayed),
                            2 => {
                                expected_runs.fetch_add(requeues as u64, Ordering::Relaxed);
                                item.queue::<Step>(QueueType::Critical);
                            }
                            3 => item.queue_ex::<Step>(QueueType::HyperCritical),
                            _ => item.queue::<Step>(QueueType::Normal),
                        }
                        if mode != 0 {
                            expected_runs.fetch_add(1, Ordering::Relaxed);
                        }
                        // Uninitialize in the caller whatever was handed back so far.
                        let back: Vec<_> = stats.handed_back.lock().unwrap().drain(..).collect();
                        drop(back);
                    }
                    exhausted
                })
                .expect("no bug check")
            });
        }
    });
    let slab = Arc::try_unwrap(slab).expect("all threads done");
    let st = slab.stats();
    eprintln!("stress on ntsim: {st:?}");
    assert!(st.high_water > 1, "no concurrency happened");
    // Routines still running may hand items back; once the queues are idle every handed-back
    // item is in the list. Teardown waits for detached items, so they are dropped (uninitialize
    // in the caller) first.
    assert!(m.wait_work_items_idle(Duration::from_secs(10)));
    let s = stats.clone();
    let report = m
        .run_in_kernel_thread(move || {
            drop(s.handed_back.lock().unwrap().drain(..).collect::<Vec<_>>());
            slab.shutdown()
        })
        .unwrap_or_else(|b| panic!("bug check: {b}"));
    assert_eq!(report.leaked_items, 0);
    assert_eq!(
        stats.runs.load(Ordering::Relaxed),
        expected_runs.load(Ordering::Relaxed)
    );
    assert!(m.wait_work_items_idle(Duration::from_secs(5)));
    assert_clean(&m);
}

#[test]
fn raw_misuse_is_caught_by_ntsim() {
    // What the safe types rule out, done by hand through the same backend: free pool that still
    // holds an initialized work item. ntsim must bug-check, or the tests above prove nothing.
    let m = machine(0x58);
    let dev = host_device(&m).as_io_object();
    let dev = dev as usize;
    let r = m.run_in_kernel_thread(move || {
        let size = Ntsim::size_of_work_item() as usize;
        // SAFETY: non-zero size and tag.
        let block = unsafe { Ntsim::alloc_nonpaged(size, TAG) };
        // SAFETY: fresh nonpaged block of the right size; the host device is live.
        unsafe { Ntsim::initialize(dev as *mut _, block.cast()) };
        // SAFETY: deliberately wrong: the block still holds an initialized work item.
        unsafe { Ntsim::free_pool(block, TAG) };
    });
    let bc = r.expect_err("freeing an initialized work item must bug-check");
    assert_eq!(bc.code, WORKER_INVALID, "{bc}");
    assert_eq!(
        bc.parameters[0],
        worker_invalid::ACTIVE_ITEM_IN_FREED_POOL,
        "{bc}"
    );
}

/// Ex-only routine for a slab on the driver object: counts and drops the item.
struct OnDriver;
impl Routine<Ntsim, Arc<AtomicU64>, Driver> for OnDriver {
    fn run(item: WorkItem<'_, Ntsim, Arc<AtomicU64>, Driver>) {
        item.payload().fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn driver_object_slab_on_ntsim() {
    let m = machine(0x58);
    let drv = m.host_driver().expect("host driver").driver_object();
    // SAFETY: the host driver object lives as long as the machine; the slab is torn down in
    // the kernel thread below.
    let drv: &'static Driver = unsafe { Driver::from_raw(drv) };
    let runs = Arc::new(AtomicU64::new(0));
    let r = runs.clone();
    let report = m
        .run_in_kernel_thread(move || {
            let slab = Slab::<Ntsim, Arc<AtomicU64>, Driver>::new(drv, 4, TAG).unwrap();
            for _ in 0..16 {
                loop {
                    match slab.acquire(r.clone()) {
                        Ok(item) => break item.queue_ex::<OnDriver>(QueueType::Delayed),
                        Err(_) => std::thread::yield_now(),
                    }
                }
            }
            slab.shutdown()
        })
        .expect("no bug check");
    assert_eq!(report.leaked_items, 0);
    assert_eq!(runs.load(Ordering::Relaxed), 16);
    assert_clean(&m);
}

/// ntsim's object manager sees the slab's reference on its device: one more while the slab
/// lives, back to the original count after teardown (an unbalanced dereference would be
/// Driver Verifier's 0xC4/0x3F, a missing one a reference leak).
#[test]
fn slab_holds_a_reference_on_its_device_on_ntsim() {
    let m = machine(0x58);
    let device = host_device(&m);
    let (before, during, after) = m
        .run_in_kernel_thread(move || {
            let object = device.as_io_object();
            let count = || {
                // SAFETY: the host device is live; this reference is released right away.
                let n = unsafe { ntsim::exports::ObfReferenceObject(object) };
                // SAFETY: releases the reference just taken.
                unsafe { ntsim::exports::ObfDereferenceObject(object) };
                n - 1
            };
            let before = count();
            let slab = Slab::<Ntsim, u32>::new(device, 4, TAG).unwrap();
            let item = slab.acquire(1).unwrap();
            assert_eq!(item.io_object().as_raw(), device.as_raw());
            drop(item);
            let during = count();
            assert_eq!(slab.shutdown().leaked_items, 0);
            (before, during, count())
        })
        .expect("no bug check");
    assert_eq!(during, before + 1);
    assert_eq!(after, before);
    assert_clean(&m);
}
