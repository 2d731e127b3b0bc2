//! The safe layer on the pure-Rust fake kernel (std threads): lifecycle, exhaustion, counters,
//! requeue chains, the Ex variant, queue types, leaked owners, and a multi-threaded stress run
//! that must end with zero leaks.
#![cfg(not(loom))]

#[path = "support/fake.rs"]
mod fake;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use fake::{Fake, FakeDevice, FakeDriver};
use io_workitem::{
    Backend, CustomPriority, Exhausted, QueueType, Routine, Slab, SlabError, WorkItem,
};

const TAG: u32 = u32::from_le_bytes(*b"WiTs");

/// Counts runs into a shared counter and drops the item in its routine.
struct Counter(Arc<AtomicU64>);
struct CountAndDrop;
impl<B: Backend> Routine<B, Counter> for CountAndDrop {
    fn run(item: WorkItem<'_, B, Counter>) {
        item.payload().0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn init_uninit_only_returns_every_slot() {
    type K = Fake<0>;
    K::reset();
    let dev = FakeDevice::new();
    {
        let slab = Slab::<K, u64>::new(dev.device(), 4, TAG).unwrap();
        for round in 0..3u64 {
            let items: Vec<_> = (0..4)
                .map(|i| slab.acquire(round * 10 + i).unwrap())
                .collect();
            assert_eq!(slab.stats().in_use, 4);
            let mut seen: Vec<u32> = items.iter().map(|i| i.slot_index()).collect();
            seen.sort();
            assert_eq!(seen, vec![0, 1, 2, 3]);
            for (i, item) in items.iter().enumerate() {
                assert_eq!(*item.payload(), round * 10 + i as u64);
            }
            drop(items);
            assert_eq!(slab.stats().in_use, 0);
        }
        let s = slab.stats();
        assert_eq!((s.high_water, s.exhausted, s.in_use), (4, 0, 0));
        assert_eq!(K::state().inits.load(Ordering::SeqCst), 12);
        assert_eq!(K::state().uninits.load(Ordering::SeqCst), 12);
    }
    K::state().assert_no_leaks();
}

#[test]
fn exhaustion_is_an_error_and_hands_the_payload_back() {
    type K = Fake<1>;
    K::reset();
    let dev = FakeDevice::new();
    let slab = Slab::<K, String>::new(dev.device(), 2, TAG).unwrap();
    let a = slab.acquire("a".into()).unwrap();
    let _b = slab.acquire("b".into()).unwrap();
    match slab.acquire("c".into()) {
        Err(Exhausted(p)) => assert_eq!(p, "c"),
        Ok(_) => panic!("third acquire from a 2-slot slab succeeded"),
    }
    assert_eq!(slab.stats().exhausted, 1);
    assert_eq!(a.into_payload(), "a");
    let c = slab.acquire("c".into()).unwrap();
    assert_eq!(c.payload(), "c");
    assert_eq!(slab.stats().high_water, 2);
    slab.reset_counters();
    let s = slab.stats();
    assert_eq!((s.exhausted, s.high_water, s.in_use), (0, 2, 2));
    drop((c, _b));
    drop(slab);
    K::state().assert_no_leaks();
}

#[test]
fn creation_errors() {
    type K = Fake<2>;
    let dev = FakeDevice::new();
    assert_eq!(
        Slab::<K, u8>::new(dev.device(), 0, TAG).err(),
        Some(SlabError::InvalidCapacity)
    );
    assert_eq!(
        Slab::<K, u8>::new(dev.device(), 1, 0).err(),
        Some(SlabError::InvalidTag)
    );
    assert_eq!(
        Slab::<K, u8>::new(dev.device(), u32::MAX, TAG).err(),
        Some(SlabError::InvalidCapacity)
    );
    assert_eq!(
        Slab::<K, u8>::new(dev.device(), io_workitem::MAX_CAPACITY + 1, TAG).err(),
        Some(SlabError::InvalidCapacity)
    );
    // The largest slab works end to end: every slot can be taken, the next acquire fails.
    let big = Slab::<K, u8>::new(dev.device(), io_workitem::MAX_CAPACITY, TAG).unwrap();
    let all: Vec<_> = (0..io_workitem::MAX_CAPACITY)
        .map(|_| big.acquire(0).unwrap())
        .collect();
    assert!(big.acquire(0).is_err());
    assert_eq!(big.stats().in_use, io_workitem::MAX_CAPACITY);
    drop(all);
    assert_eq!(big.stats().in_use, 0);
    assert_eq!(big.stats().high_water, io_workitem::MAX_CAPACITY);
    drop(big);
    K::state().item_size.store(0, Ordering::SeqCst);
    assert_eq!(
        Slab::<K, u8>::new(dev.device(), 1, TAG).err(),
        Some(SlabError::InvalidItemSize)
    );
    K::state().item_size.store(0x58, Ordering::SeqCst);
    K::state().assert_no_leaks();
}

#[test]
fn stride_follows_run_time_item_size() {
    type K = Fake<3>;
    K::reset();
    let dev = FakeDevice::new();
    for size in nt_abi::KNOWN_IO_WORKITEM_SIZES
        .into_iter()
        .chain([0x1000, 0x61])
    {
        K::state().item_size.store(size, Ordering::SeqCst);
        let slab = Slab::<K, [u8; 40]>::new(dev.device(), 3, TAG).unwrap();
        assert_eq!(slab.item_size(), size);
        assert!(
            slab.stride() >= size as usize + 40,
            "stride {} for {size:#x}",
            slab.stride()
        );
        assert_eq!(slab.stride() % 16, 0);
        // The fake checks each item lies inside the pool block and is 16-aligned.
        let items: Vec<_> = (0..3).map(|_| slab.acquire([7; 40]).unwrap()).collect();
        let mut addrs: Vec<usize> = items.iter().map(|i| i.as_raw() as usize).collect();
        addrs.sort();
        for w in addrs.windows(2) {
            assert_eq!(w[1] - w[0], slab.stride());
            assert!(w[1] - w[0] >= size as usize);
        }
    }
    K::state().item_size.store(0x58, Ordering::SeqCst);
    K::state().assert_no_leaks();
}

#[test]
fn queue_runs_routine_and_uninitializes_inside_it() {
    type K = Fake<4>;
    K::reset();
    let dev = FakeDevice::new();
    let runs = Arc::new(AtomicU64::new(0));
    {
        let slab = Slab::<K, Counter>::new(dev.device(), 8, TAG).unwrap();
        for _ in 0..8 {
            slab.acquire(Counter(runs.clone()))
                .unwrap()
                .queue::<CountAndDrop>(QueueType::Delayed);
        }
        let report = slab.shutdown();
        assert_eq!(report.leaked_items, 0);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 8);
    assert_eq!(Arc::strong_count(&runs), 1, "payloads were not dropped");
    assert_eq!(K::state().queues.load(Ordering::SeqCst), 8);
    assert_eq!(K::state().last_queue_type.load(Ordering::SeqCst), 1);
    K::state().assert_no_leaks();
}

/// Requeues itself `payload.hops` times, alternating plain and Ex, then drops.
struct Chain {
    hops: u32,
    runs: Arc<AtomicU64>,
}
struct ChainStep;
impl<B: Backend> Routine<B, Chain> for ChainStep {
    fn run(mut item: WorkItem<'_, B, Chain>) {
        item.payload().runs.fetch_add(1, Ordering::SeqCst);
        if item.payload().hops > 0 {
            item.payload_mut().hops -= 1;
            if item.payload().hops.is_multiple_of(2) {
                item.queue::<ChainStep>(QueueType::Normal);
            } else {
                item.queue_ex::<ChainStep>(QueueType::Custom(CustomPriority::new(7).unwrap()));
            }
        }
    }
}

#[test]
fn requeue_chains_and_ex_variant_drain_before_free() {
    type K = Fake<5>;
    K::reset();
    let dev = FakeDevice::new();
    let runs = Arc::new(AtomicU64::new(0));
    let slab = Slab::<K, Chain>::new(dev.device(), 4, TAG).unwrap();
    for _ in 0..4 {
        slab.acquire(Chain {
            hops: 9,
            runs: runs.clone(),
        })
        .unwrap()
        .queue::<ChainStep>(QueueType::Delayed);
    }
    // Dropping the slab right away must wait for all 4 × 10 runs.
    let report = slab.shutdown();
    assert_eq!(runs.load(Ordering::SeqCst), 40);
    assert_eq!(report.leaked_items, 0);
    let s = K::state();
    assert_eq!(
        s.queues.load(Ordering::SeqCst) + s.queues_ex.load(Ordering::SeqCst),
        40
    );
    assert_eq!(s.queues_ex.load(Ordering::SeqCst), 16); // hops 7, 5, 3, 1 per chain
    assert_eq!(
        s.inits.load(Ordering::SeqCst),
        4,
        "a requeue must not re-initialize"
    );
    s.assert_no_leaks();
}

#[test]
fn forgotten_items_are_uninitialized_at_teardown() {
    type K = Fake<6>;
    K::reset();
    let dev = FakeDevice::new();
    let slab = Slab::<K, u32>::new(dev.device(), 3, TAG).unwrap();
    std::mem::forget(slab.acquire(1).unwrap());
    drop(slab.acquire(2).unwrap());
    let report = slab.shutdown();
    assert_eq!(report.leaked_items, 1);
    K::state().assert_no_leaks();
}

/// Forgets its item inside the routine: the slot must still be cleaned up at teardown.
struct ForgetInRoutine;
impl<B: Backend> Routine<B, u32> for ForgetInRoutine {
    fn run(item: WorkItem<'_, B, u32>) {
        std::mem::forget(item);
    }
}

#[test]
fn item_forgotten_inside_routine_is_uninitialized_at_teardown() {
    type K = Fake<7>;
    K::reset();
    let dev = FakeDevice::new();
    let slab = Slab::<K, u32>::new(dev.device(), 2, TAG).unwrap();
    slab.acquire(5)
        .unwrap()
        .queue::<ForgetInRoutine>(QueueType::Critical);
    let report = slab.shutdown();
    assert_eq!(report.leaked_items, 1);
    K::state().assert_no_leaks();
}

/// Flips between requeue and drop according to its payload and records the queue types.
struct Mixed {
    left: u32,
    done: Arc<AtomicU64>,
}
struct MixedStep;
impl<B: Backend> Routine<B, Mixed> for MixedStep {
    fn run(mut item: WorkItem<'_, B, Mixed>) {
        if item.payload().left == 0 {
            item.payload().done.fetch_add(1, Ordering::SeqCst);
            return;
        }
        item.payload_mut().left -= 1;
        let q = QueueType::from_raw((item.payload().left % 7) as i32).unwrap();
        item.queue::<MixedStep>(q);
    }
}

#[test]
fn stress_threads_acquire_queue_requeue_drop() {
    type K = Fake<8>;
    K::reset();
    let dev = FakeDevice::new();
    const THREADS: usize = 4;
    const ROUNDS: u32 = 300;
    let done = Arc::new(AtomicU64::new(0));
    let expected = Arc::new(AtomicU64::new(0));
    let exhausted_seen = AtomicU32::new(0);
    let slab = Slab::<K, Mixed>::new(dev.device(), 16, TAG).unwrap();
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (slab, done, expected, barrier, exhausted_seen) =
                (&slab, &done, &expected, &barrier, &exhausted_seen);
            s.spawn(move || {
                barrier.wait();
                for r in 0..ROUNDS {
                    match slab.acquire(Mixed {
                        left: (r + t as u32) % 4,
                        done: done.clone(),
                    }) {
                        Ok(mut item) => match r % 3 {
                            0 => drop(item),
                            1 => {
                                item.payload_mut().left += 1;
                                expected.fetch_add(1, Ordering::SeqCst);
                                item.queue::<MixedStep>(QueueType::Delayed);
                            }
                            _ => {
                                expected.fetch_add(1, Ordering::SeqCst);
                                item.queue_ex::<MixedStep>(QueueType::Background);
                            }
                        },
                        Err(Exhausted(_)) => {
                            exhausted_seen.fetch_add(1, Ordering::SeqCst);
                            std::thread::yield_now();
                        }
                    }
                }
            });
        }
    });
    let stats = slab.stats();
    assert!(stats.high_water <= 16);
    assert_eq!(
        stats.exhausted,
        exhausted_seen.load(Ordering::SeqCst) as u64
    );
    let report = slab.shutdown();
    assert_eq!(report.leaked_items, 0);
    assert_eq!(done.load(Ordering::SeqCst), expected.load(Ordering::SeqCst));
    assert_eq!(Arc::strong_count(&done), 1);
    K::state().assert_no_leaks();
}

/// A job whose routine hands the item back to the requesting thread ("uninitialize in the
/// caller").
struct Back {
    runs: u32,
    returned: Arc<std::sync::Mutex<Vec<io_workitem::Detached<Fake<9>, Back>>>>,
}
struct GiveBack;
impl Routine<Fake<9>, Back> for GiveBack {
    fn run(mut item: WorkItem<'_, Fake<9>, Back>) {
        item.payload_mut().runs += 1;
        let returned = item.payload().returned.clone();
        returned.lock().unwrap().push(item.detach());
    }
}

#[test]
fn detached_items_cross_threads_and_hold_off_teardown() {
    type K = Fake<9>;
    K::reset();
    let dev = FakeDevice::new();
    let returned = Arc::new(std::sync::Mutex::new(Vec::new()));
    let other_slab = Slab::<K, Back>::new(dev.device(), 1, TAG).unwrap();
    let slab = Slab::<K, Back>::new(dev.device(), 4, TAG).unwrap();
    for _ in 0..4 {
        let job = Back {
            runs: 0,
            returned: returned.clone(),
        };
        slab.acquire(job)
            .unwrap()
            .queue::<GiveBack>(QueueType::Delayed);
    }
    while returned.lock().unwrap().len() < 4 {
        std::thread::yield_now();
    }
    let mut items: Vec<_> = returned.lock().unwrap().drain(..).collect();
    assert_eq!(slab.stats().in_use, 4);
    assert_eq!(slab.stats().active, 4, "detached items hold the rundown");
    // Re-attach one and run it again: the slab checks the item is its own.
    let one = items.pop().unwrap();
    let one = match one.attach(&other_slab) {
        Err(back) => back,
        Ok(_) => panic!("attached to a foreign slab"),
    };
    let one = one.attach(&slab).unwrap();
    assert_eq!(one.payload().runs, 1);
    one.queue::<GiveBack>(QueueType::Normal);
    // Uninitialize in the caller.
    drop(items);
    assert_eq!(K::state().uninits.load(Ordering::SeqCst), 3);
    // The requeued one comes back detached; another thread drops it late, and teardown must
    // wait for that.
    let late = loop {
        if let Some(d) = returned.lock().unwrap().pop() {
            break d;
        }
        std::thread::yield_now();
    };
    assert_eq!(late.payload().runs, 2);
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(late);
    });
    let report = slab.shutdown();
    assert!(report.waited);
    assert_eq!(report.leaked_items, 0);
    // Teardown returned, so the late drop (uninitialize) has happened.
    assert_eq!(K::state().uninits.load(Ordering::SeqCst), 4);
    t.join().unwrap();
    drop(other_slab);
    K::state().assert_no_leaks();
}

/// An endless chain that stops only when teardown starts.
struct Endless(Arc<AtomicU64>);
struct EndlessStep;
impl<B: Backend> Routine<B, Endless> for EndlessStep {
    fn run(item: WorkItem<'_, B, Endless>) {
        item.payload().0.fetch_add(1, Ordering::SeqCst);
        if !item.is_shutting_down() {
            item.queue::<EndlessStep>(QueueType::Delayed);
        }
    }
}

#[test]
fn shutdown_is_visible_to_requeue_chains() {
    type K = Fake<12>;
    K::reset();
    let dev = FakeDevice::new();
    let runs = Arc::new(AtomicU64::new(0));
    let slab = Slab::<K, Endless>::new(dev.device(), 1, TAG).unwrap();
    slab.acquire(Endless(runs.clone()))
        .unwrap()
        .queue::<EndlessStep>(QueueType::Delayed);
    while runs.load(Ordering::SeqCst) < 3 {
        std::thread::yield_now();
    }
    // Without `is_shutting_down` this teardown would wait forever.
    let report = slab.shutdown();
    assert_eq!(report.leaked_items, 0);
    let n = runs.load(Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(runs.load(Ordering::SeqCst), n, "chain ran after teardown");
    K::state().assert_no_leaks();
}

/// Routine of a driver-object slab (Ex only): requeues once, then drops the item.
struct DriverStep;
impl<B: Backend> Routine<B, (u32, Arc<AtomicU64>), io_workitem::Driver> for DriverStep {
    fn run(mut item: WorkItem<'_, B, (u32, Arc<AtomicU64>), io_workitem::Driver>) {
        item.payload().1.fetch_add(1, Ordering::SeqCst);
        if item.payload().0 > 0 {
            item.payload_mut().0 -= 1;
            item.queue_ex::<DriverStep>(QueueType::Delayed);
        }
    }
}

#[test]
fn driver_object_slab_queues_with_ex() {
    type K = Fake<13>;
    K::reset();
    let drv = FakeDriver::new();
    let runs = Arc::new(AtomicU64::new(0));
    let slab =
        Slab::<K, (u32, Arc<AtomicU64>), io_workitem::Driver>::new(drv.driver(), 2, TAG).unwrap();
    for _ in 0..2 {
        slab.acquire((1, runs.clone()))
            .unwrap()
            .queue_ex::<DriverStep>(QueueType::Critical);
    }
    assert_eq!(slab.shutdown().leaked_items, 0);
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert_eq!(K::state().queues_ex.load(Ordering::SeqCst), 4);
    assert_eq!(K::state().queues.load(Ordering::SeqCst), 0);
    K::state().assert_no_leaks();
}

/// The slab holds its own reference on the I/O object: it is taken by `new` (and not by a failed
/// `new`), released by teardown after the block is freed, and the slab may outlive the
/// `&Device` borrow it was built from (what used to need a `'static` promise).
#[test]
fn slab_references_its_io_object_and_outlives_the_borrow() {
    type K = Fake<14>;
    K::reset();
    let dev = FakeDevice::new();
    let object = dev.as_ptr().cast();
    assert!(Slab::<K, u32>::new(dev.device(), 0, TAG).is_err());
    assert_eq!(
        K::state().refs_on(object),
        0,
        "a failed new took a reference"
    );
    let slab = {
        // The borrow ends with this block; the slab does not.
        let device: &io_workitem::Device = dev.device();
        Slab::<K, u32>::new(device, 2, TAG).unwrap()
    };
    assert_eq!(K::state().refs_on(object), 1);
    let item = slab.acquire(7).unwrap();
    assert_eq!(item.io_object().as_raw(), dev.as_ptr());
    drop(item);
    let second = Slab::<K, u32>::new(dev.device(), 2, TAG).unwrap();
    assert_eq!(K::state().refs_on(object), 2);
    drop(second);
    assert_eq!(slab.shutdown().leaked_items, 0);
    assert_eq!(
        K::state().refs_on(object),
        0,
        "teardown did not dereference"
    );
    K::state().assert_no_leaks();
}

/// The fake catches the failure the reference exists to prevent: an object freed while a slab
/// still references it.
#[test]
#[should_panic(expected = "object freed while 1 reference(s) are held on it")]
fn freeing_a_referenced_object_is_caught() {
    type K = Fake<15>;
    K::reset();
    let dev = FakeDevice::new();
    let slab = Slab::<K, u32>::new(dev.device(), 1, TAG).unwrap();
    std::mem::forget(slab); // leaks the reference (and the block)
    drop(dev);
}
