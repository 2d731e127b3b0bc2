//! Loom models of the slab's lock-free parts, run over the crate's real code (its atomics are
//! loom's under `--cfg loom`) and the strict fake kernel (workers are loom threads):
//!
//! - the tagged free list under concurrent acquire/release, including the ABA interleaving
//!   (a popper preempted between reading `next` and its compare-exchange while another thread
//!   pops that slot and the next one and pushes the first back);
//! - teardown racing routines: plain runs, in-routine uninitialize, requeues (plain and Ex),
//!   and an acquire/drop racing a queue.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target-loom cargo test -p io-workitem --test loom --release`
#![cfg(loom)]

#[path = "support/fake.rs"]
mod fake;

use std::sync::Arc;

use fake::{Fake, FakeDevice};
use io_workitem::{Backend, QueueType, Routine, Slab, WorkItem};
use loom::sync::atomic::{AtomicU32, Ordering};

const TAG: u32 = u32::from_le_bytes(*b"WiLm");

/// Explore `f` under loom with at most `preemptions` forced preemptions (override with
/// `LOOM_MAX_PREEMPTIONS`), and check that it explored more than one interleaving.
fn model(name: &str, preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    let iterations = Arc::new(AtomicUsize::new(0));
    let counter = iterations.clone();
    builder.check(move || {
        counter.fetch_add(1, Relaxed);
        f()
    });
    let n = iterations.load(Relaxed);
    eprintln!("loom: {name}: {n} interleavings explored");
    assert!(
        n > 1,
        "loom explored a single interleaving: the model has no concurrency"
    );
}

/// The ABA interleaving on a 4-slot slab. Thread Y takes D, then A and B, returns D and then A:
/// the head is `A` again, with the same free count, but `A.next` is now `D`. If thread X read
/// `(head A, next B)` before that and its compare-exchange succeeded, B (still Y's) would be
/// handed out twice (the crate asserts on that in loom builds) or a slot would be lost (the
/// final checks catch that). The tag in the head word makes X's compare-exchange fail.
#[test]
fn free_list_acquire_release_aba() {
    type K = Fake<10>;
    model("free_list_acquire_release_aba", 8, || {
        K::reset();
        let dev = FakeDevice::new();
        // The device must outlive the slab; leak the fake device's box for the 'static thread.
        let dev: &'static FakeDevice = Box::leak(Box::new(dev));
        let slab: &'static Slab<K, u32> =
            Box::leak(Box::new(Slab::<K, u32>::new(dev.device(), 4, TAG).unwrap()));
        let t = loom::thread::spawn(move || {
            let d = slab.acquire(1).unwrap();
            let a = slab.acquire(2).unwrap();
            let b = slab.acquire(3).unwrap();
            assert_ne!(a.slot_index(), b.slot_index());
            drop(d);
            drop(a);
            assert_eq!(*b.payload(), 3, "slot handed out twice");
            drop(b);
        });
        let c = slab.acquire(4).unwrap();
        assert_eq!(*c.payload(), 4);
        drop(c);
        t.join().unwrap();
        assert_eq!(slab.stats().in_use, 0);
        // All four slots must be back on the list, each once.
        let all: Vec<_> = (0..4).map(|i| slab.acquire(10 + i).unwrap()).collect();
        let mut idx: Vec<u32> = all.iter().map(|i| i.slot_index()).collect();
        idx.sort();
        assert_eq!(idx, vec![0, 1, 2, 3]);
        assert!(slab.acquire(6).is_err());
        drop(all);
        let slab = unsafe_take(slab);
        assert_eq!(slab.shutdown().leaked_items, 0);
        K::state().assert_no_leaks();
    });
}

/// Turns a leaked `&'static Slab` back into an owned one so it can be torn down.
fn unsafe_take<T>(leaked: &'static T) -> T {
    let ptr = leaked as *const T as *mut T;
    // SAFETY: `leaked` came from `Box::leak` and no other reference to it is used afterwards
    // (every thread that borrowed it has been joined); reading it out and freeing the box is
    // what dropping the box would have done.
    unsafe { *Box::from_raw(ptr) }
}

struct Runs(Arc<AtomicU32>, u32);

/// Drops the item (uninitializes inside the routine) or requeues while `.1 > 0`.
struct Step;
impl<B: Backend> Routine<B, Runs> for Step {
    fn run(mut item: WorkItem<'_, B, Runs>) {
        item.payload().0.fetch_add(1, Ordering::Relaxed);
        if item.payload().1 > 0 {
            item.payload_mut().1 -= 1;
            item.queue_ex::<Step>(QueueType::Delayed);
        }
    }
}

/// Teardown starts while the routine may be queued, running, dropping its item or returning:
/// it must wait, then free with no initialized item left (the fake panics on a free with an
/// initialized item, on an uninitialize in freed pool, and on a leak).
#[test]
fn drain_races_routine_that_drops_its_item() {
    type K = Fake<11>;
    model("drain_races_routine_that_drops_its_item", 10, || {
        K::reset();
        let runs = Arc::new(AtomicU32::new(0));
        let dev = FakeDevice::new();
        let slab = Slab::<K, Runs>::new(dev.device(), 2, TAG).unwrap();
        slab.acquire(Runs(runs.clone(), 0))
            .unwrap()
            .queue::<Step>(QueueType::Delayed);
        let report = slab.shutdown();
        assert_eq!(
            runs.load(Ordering::Relaxed),
            1,
            "teardown returned before the routine ran"
        );
        assert_eq!(report.leaked_items, 0);
        assert_eq!(Arc::strong_count(&runs), 1, "payload not dropped");
        K::state().assert_no_leaks();
    });
}

/// As above with one requeue: the drain must follow the chain to its end.
#[test]
fn drain_races_requeue_chain() {
    type K = Fake<12>;
    model("drain_races_requeue_chain", 10, || {
        K::reset();
        let runs = Arc::new(AtomicU32::new(0));
        let dev = FakeDevice::new();
        let slab = Slab::<K, Runs>::new(dev.device(), 1, TAG).unwrap();
        slab.acquire(Runs(runs.clone(), 1))
            .unwrap()
            .queue::<Step>(QueueType::Critical);
        slab.shutdown();
        assert_eq!(
            runs.load(Ordering::Relaxed),
            2,
            "teardown returned before the chain ended"
        );
        assert_eq!(Arc::strong_count(&runs), 1);
        K::state().assert_no_leaks();
    });
}

/// A routine drops its item (returning the slot) while the caller acquires concurrently on a
/// 1-slot slab: the caller gets the slot only after the routine released it, and teardown waits
/// for the routine's activation even after the slot is reused.
#[test]
fn slot_reuse_races_running_routine() {
    type K = Fake<13>;
    model("slot_reuse_races_running_routine", 10, || {
        K::reset();
        let runs = Arc::new(AtomicU32::new(0));
        let dev = FakeDevice::new();
        let slab = Slab::<K, Runs>::new(dev.device(), 1, TAG).unwrap();
        slab.acquire(Runs(runs.clone(), 0))
            .unwrap()
            .queue::<Step>(QueueType::Delayed);
        if let Ok(item) = slab.acquire(Runs(runs.clone(), 0)) {
            // The routine has released the slot, so it has run.
            assert_eq!(runs.load(Ordering::Relaxed), 1);
            drop(item);
        }
        slab.shutdown();
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(Arc::strong_count(&runs), 1);
        K::state().assert_no_leaks();
    });
}

/// A detached item dropped on another thread while the owner tears the slab down: teardown
/// must wait for the drop (the fake panics on a free with an initialized item in the block).
#[test]
fn drain_races_detached_drop() {
    type K = Fake<14>;
    model("drain_races_detached_drop", 10, || {
        K::reset();
        let runs = Arc::new(AtomicU32::new(0));
        let dev = FakeDevice::new();
        let slab = Slab::<K, Runs>::new(dev.device(), 1, TAG).unwrap();
        let detached = slab.acquire(Runs(runs.clone(), 0)).unwrap().detach();
        let t = loom::thread::spawn(move || drop(detached));
        let report = slab.shutdown();
        assert_eq!(report.leaked_items, 0);
        assert_eq!(
            K::state().uninits.load(std::sync::atomic::Ordering::SeqCst),
            1
        );
        t.join().unwrap();
        assert_eq!(Arc::strong_count(&runs), 1);
        K::state().assert_no_leaks();
    });
}

/// Three threads on a 3-slot slab, each taking two slots and returning them in the opposite
/// order, with the main thread also cycling one: every slot must be handed to one owner at a
/// time and all must be back at the end.
#[test]
fn free_list_three_threads() {
    type K = Fake<15>;
    model("free_list_three_threads", 2, || {
        K::reset();
        let dev: &'static FakeDevice = Box::leak(Box::new(FakeDevice::new()));
        let slab: &'static Slab<K, u32> =
            Box::leak(Box::new(Slab::<K, u32>::new(dev.device(), 3, TAG).unwrap()));
        let workers: Vec<_> = (0..2)
            .map(|t| {
                loom::thread::spawn(move || {
                    let a = slab.acquire(t);
                    let b = slab.acquire(t + 10);
                    drop(b);
                    drop(a);
                })
            })
            .collect();
        drop(slab.acquire(99));
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(slab.stats().in_use, 0);
        let all: Vec<_> = (0..3).map(|i| slab.acquire(i).unwrap()).collect();
        let mut idx: Vec<u32> = all.iter().map(|i| i.slot_index()).collect();
        idx.sort();
        assert_eq!(idx, vec![0, 1, 2]);
        drop(all);
        assert_eq!(unsafe_take(slab).shutdown().leaked_items, 0);
        K::state().assert_no_leaks();
    });
}
