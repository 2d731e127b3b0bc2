//! Driver-side instructions per work-item cycle, counted by callgrind.
//!
//! One cycle = acquire a slot → initialize → queue → (worker) run the routine → uninitialize →
//! release the slot. Four variants do that work:
//!
//! - `safe`: io-workitem (`Slab::acquire`, `WorkItem::queue`, routine drops the item);
//! - `raw`: the same work hand-written with raw calls and no safety layer: a tagged lock-free
//!   free list over one block with the stride from `IoSizeofWorkItem`, a rundown counter, the
//!   payload in the slot (what a careful C driver with a work-item pool does);
//! - `raw-single`: the floor: one preallocated item, initialize / queue / uninitialize only
//!   (no pool, no counters, no concurrency support);
//! - `alloc`: `IoAllocateWorkItem` / `IoQueueWorkItem` / `IoFreeWorkItem` per cycle.
//!
//! The kernel is a null kernel: each export is a separate `nk_*` function that callgrind is told
//! not to count (`--toggle-collect=nk_*`), and the "worker" is the measuring loop itself taking
//! the pending (routine, context) from the null kernel and calling the routine. So the counts
//! are the driver's own instructions (including argument set-up for the kernel calls), not the
//! kernel's. Each variant runs twice (N and 2N cycles) and the per-cycle figure is the
//! difference divided by N, which cancels set-up costs.
//!
//! Usage: `cargo run --release -p io-workitem --example cycle_bench [-- N]` (needs valgrind).
//! `--measure VARIANT N` runs one loop without valgrind (what the report mode runs under it).

use std::cell::Cell;
use std::ffi::c_void;
use std::hint::black_box;
use std::process::Command;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use io_workitem::{Backend, Device, QueueType, Routine, Slab, WorkItem};
use nt_abi::{
    DELAYED_WORK_QUEUE, DEVICE_OBJECT, IO_TYPE_DEVICE, IO_WORKITEM_ROUTINE, IO_WORKITEM_ROUTINE_EX,
    PIO_WORKITEM, PVOID, WORK_QUEUE_TYPE,
};

// ---------------------------------------------------------------------------------------------
// Null kernel: the exports, as separate never-inlined functions callgrind can exclude.

const ITEM_SIZE: u32 = 0x58;

#[repr(C)]
#[derive(Clone, Copy)]
struct Pending {
    routine: Option<IO_WORKITEM_ROUTINE>,
    device: *mut DEVICE_OBJECT,
    context: PVOID,
}

thread_local! {
    static PENDING: Cell<Pending> = const {
        Cell::new(Pending { routine: None, device: ptr::null_mut(), context: ptr::null_mut() })
    };
}

#[unsafe(no_mangle)]
#[inline(never)]
extern "win64" fn nk_size_of_work_item() -> u32 {
    ITEM_SIZE
}

#[unsafe(no_mangle)]
#[inline(never)]
unsafe extern "win64" fn nk_initialize(io_object: *mut c_void, item: PIO_WORKITEM) {
    // SAFETY: `item` is writable work-item storage (caller); a real kernel fills it in too.
    unsafe { item.cast::<*mut c_void>().write(io_object) };
}

#[unsafe(no_mangle)]
#[inline(never)]
unsafe extern "win64" fn nk_uninitialize(item: PIO_WORKITEM) {
    // SAFETY: as above.
    unsafe { item.cast::<*mut c_void>().write(ptr::null_mut()) };
}

#[unsafe(no_mangle)]
#[inline(never)]
unsafe extern "win64" fn nk_queue(
    item: PIO_WORKITEM,
    routine: IO_WORKITEM_ROUTINE,
    _queue_type: WORK_QUEUE_TYPE,
    context: PVOID,
) {
    // SAFETY: the item was initialized with its device object in its first word (above).
    let device = unsafe { item.cast::<*mut DEVICE_OBJECT>().read() };
    PENDING.set(Pending {
        routine: Some(routine),
        device,
        context,
    });
}

#[unsafe(no_mangle)]
#[inline(never)]
extern "win64" fn nk_take_pending() -> Pending {
    PENDING.replace(Pending {
        routine: None,
        device: ptr::null_mut(),
        context: ptr::null_mut(),
    })
}

#[unsafe(no_mangle)]
#[inline(never)]
unsafe extern "win64" fn nk_alloc(bytes: usize, _tag: u32) -> *mut u8 {
    // SAFETY: forwarded.
    unsafe { kernel_alloc(bytes) }
}

/// Kernel-internal helpers: not `nk_*`, so calling them from an excluded export does not
/// toggle collection back on.
#[inline(never)]
unsafe fn kernel_alloc(bytes: usize) -> *mut u8 {
    let layout = std::alloc::Layout::from_size_align(bytes, 16).unwrap();
    // SAFETY: non-zero size (caller).
    unsafe { std::alloc::alloc_zeroed(layout) }
}

#[unsafe(no_mangle)]
#[inline(never)]
unsafe extern "win64" fn nk_free(block: *mut u8, bytes: usize) {
    // SAFETY: forwarded.
    unsafe { kernel_free(block, bytes) }
}

#[inline(never)]
unsafe fn kernel_free(block: *mut u8, bytes: usize) {
    let layout = std::alloc::Layout::from_size_align(bytes, 16).unwrap();
    // SAFETY: allocated by `nk_alloc` with this size (caller).
    unsafe { std::alloc::dealloc(block, layout) }
}

/// Sizes of live pool blocks are not tracked by the null kernel; the slab's block size is
/// remembered here so `free_pool` can pass it on.
static SLAB_BYTES: AtomicUsize = AtomicUsize::new(0);

#[unsafe(no_mangle)]
#[inline(never)]
unsafe extern "win64" fn nk_allocate_work_item(device: *mut DEVICE_OBJECT) -> PIO_WORKITEM {
    // SAFETY: non-zero size.
    let item: PIO_WORKITEM = unsafe { kernel_alloc(ITEM_SIZE as usize) }.cast();
    // SAFETY: fresh storage (what nk_initialize does).
    unsafe { item.cast::<*mut DEVICE_OBJECT>().write(device) };
    item
}

#[unsafe(no_mangle)]
#[inline(never)]
unsafe extern "win64" fn nk_free_work_item(item: PIO_WORKITEM) {
    // SAFETY: allocated by `nk_allocate_work_item`, not queued.
    unsafe { kernel_free(item.cast(), ITEM_SIZE as usize) };
}

/// io-workitem over the null kernel.
struct NullKernel;

// SAFETY: single-threaded benchmark: `queue` defers the routine to the measuring loop (the
// "worker"), which runs it exactly once after the item was dequeued; events are never waited on
// with anything pending (every routine has run before teardown).
unsafe impl Backend for NullKernel {
    type Event = ();
    fn size_of_work_item() -> u32 {
        nk_size_of_work_item()
    }
    unsafe fn initialize(io_object: *mut c_void, item: PIO_WORKITEM) {
        // SAFETY: forwarded.
        unsafe { nk_initialize(io_object, item) }
    }
    unsafe fn uninitialize(item: PIO_WORKITEM) {
        // SAFETY: forwarded.
        unsafe { nk_uninitialize(item) }
    }
    unsafe fn queue(item: PIO_WORKITEM, r: IO_WORKITEM_ROUTINE, q: WORK_QUEUE_TYPE, c: PVOID) {
        // SAFETY: forwarded.
        unsafe { nk_queue(item, r, q, c) }
    }
    unsafe fn queue_ex(_: PIO_WORKITEM, _: IO_WORKITEM_ROUTINE_EX, _: WORK_QUEUE_TYPE, _: PVOID) {
        unimplemented!("the benchmark uses IoQueueWorkItem")
    }
    unsafe fn alloc_nonpaged(bytes: usize, tag: u32) -> *mut u8 {
        SLAB_BYTES.store(bytes, Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { nk_alloc(bytes, tag) }
    }
    unsafe fn free_pool(block: *mut u8, _tag: u32) {
        // SAFETY: forwarded; the slab's block has the remembered size.
        unsafe { nk_free(block, SLAB_BYTES.load(Ordering::Relaxed)) }
    }
    unsafe fn event_init(_: *mut ()) {}
    unsafe fn event_signal(_: *mut ()) {}
    unsafe fn event_wait(_: *mut ()) {}
    unsafe fn reference_object(_: *mut c_void) {}
    unsafe fn dereference_object(_: *mut c_void) {}
    unsafe fn event_destroy(_: *mut ()) {}
}

/// The "worker": run the routine the null kernel holds.
#[inline(always)]
fn run_worker() {
    let p = nk_take_pending();
    // SAFETY: exactly the routine/context pair the driver queued, run once.
    unsafe { (p.routine.unwrap())(p.device, p.context) };
}

// ---------------------------------------------------------------------------------------------
// safe: io-workitem.

struct Sink;
impl<B: Backend> Routine<B, u64> for Sink {
    fn run(item: WorkItem<'_, B, u64>) {
        black_box(*item.payload());
        // Dropped: uninitialized inside the routine, slot returned.
    }
}

#[unsafe(no_mangle)]
#[inline(never)]
fn bench_safe_loop(slab: &Slab<NullKernel, u64>, n: u64) {
    for i in 0..n {
        let Ok(item) = slab.acquire(i) else {
            panic!("exhausted")
        };
        item.queue::<Sink>(QueueType::Delayed);
        run_worker();
    }
}

// ---------------------------------------------------------------------------------------------
// raw: the same work by hand (free list with ABA tag, rundown count, payload in the slot).

struct RawPool {
    head: AtomicU64,
    rundown: AtomicUsize,
    block: *mut u8,
    stride: usize,
    device: *mut DEVICE_OBJECT,
}

const RAW_HEADER: usize = 16; // next: u32, index: u32, payload: u64
const NIL: u32 = u32::MAX;

impl RawPool {
    fn new(device: *mut DEVICE_OBJECT, capacity: u32) -> RawPool {
        let stride = (RAW_HEADER + nk_size_of_work_item() as usize + 15) & !15;
        // SAFETY: non-zero size.
        let block = unsafe { nk_alloc(stride * capacity as usize, 1) };
        for i in 0..capacity {
            let next = if i + 1 == capacity { NIL } else { i + 1 };
            let header = block.wrapping_add(i as usize * stride);
            // SAFETY: slot `i` header is inside the block.
            unsafe { header.cast::<AtomicU32>().write(AtomicU32::new(next)) };
            // SAFETY: as above; the index word follows `next`.
            unsafe { header.wrapping_add(4).cast::<u32>().write(i) };
        }
        RawPool {
            head: AtomicU64::new(0),
            rundown: AtomicUsize::new(1),
            block,
            stride,
            device,
        }
    }

    #[inline(always)]
    fn slot(&self, i: u32) -> *mut u8 {
        self.block.wrapping_add(i as usize * self.stride)
    }

    #[inline(always)]
    fn pop(&self) -> Option<*mut u8> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let i = head as u32;
            if i == NIL {
                return None;
            }
            let slot = self.slot(i);
            // SAFETY: slot headers hold an AtomicU32 at offset 0 for the pool's lifetime.
            let next = unsafe { &*slot.cast::<AtomicU32>() }.load(Ordering::Relaxed);
            let new = (((head >> 32) + 1) << 32) | next as u64;
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(slot),
                Err(h) => head = h,
            }
        }
    }

    #[inline(always)]
    fn push(&self, slot: *mut u8, i: u32) {
        // SAFETY: slot headers hold an AtomicU32 at offset 0 for the pool's lifetime.
        let next = unsafe { &*slot.cast::<AtomicU32>() };
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            next.store(head as u32, Ordering::Relaxed);
            let new = (((head >> 32) + 1) << 32) | i as u64;
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }
}

/// Routine of a raw item; its context is the slot, the pool is the driver's global.
unsafe extern "win64" fn raw_routine(_device: *mut DEVICE_OBJECT, context: PVOID) {
    // SAFETY: the pool lives for the whole benchmark.
    let pool = unsafe { &*RAW_POOL.load(Ordering::Relaxed) };
    let slot = context.cast::<u8>();
    // SAFETY: the index word of the slot header.
    let index = unsafe { slot.wrapping_add(4).cast::<u32>().read() };
    // SAFETY: the payload word of an owned slot.
    black_box(unsafe { slot.wrapping_add(8).cast::<u64>().read() });
    // SAFETY: the slot's work item is initialized and was dequeued before this call.
    unsafe { nk_uninitialize(slot.wrapping_add(RAW_HEADER).cast()) };
    pool.push(slot, index);
    pool.rundown.fetch_sub(1, Ordering::Release);
}

static RAW_POOL: AtomicPtr<RawPool> = AtomicPtr::new(ptr::null_mut());

#[unsafe(no_mangle)]
#[inline(never)]
fn bench_raw_loop(pool: &RawPool, n: u64) {
    for i in 0..n {
        let Some(slot) = pool.pop() else {
            panic!("exhausted")
        };
        // SAFETY: the payload word of the slot just taken.
        unsafe { slot.wrapping_add(8).cast::<u64>().write(i) };
        let item: PIO_WORKITEM = slot.wrapping_add(RAW_HEADER).cast();
        // SAFETY: nonpaged, aligned, uninitialized work-item storage; live device.
        unsafe { nk_initialize(pool.device.cast(), item) };
        pool.rundown.fetch_add(1, Ordering::Relaxed);
        // SAFETY: initialized, not queued; the routine expects this context.
        unsafe { nk_queue(item, raw_routine, DELAYED_WORK_QUEUE, slot.cast()) };
        run_worker();
    }
}

// ---------------------------------------------------------------------------------------------
// raw-single: the floor.

unsafe extern "win64" fn single_routine(_device: *mut DEVICE_OBJECT, context: PVOID) {
    // SAFETY: the context is the item, dequeued before this call.
    unsafe { nk_uninitialize(context.cast()) };
}

#[unsafe(no_mangle)]
#[inline(never)]
fn bench_single_loop(device: *mut DEVICE_OBJECT, item: PIO_WORKITEM, n: u64) {
    for _ in 0..n {
        // SAFETY: uninitialized storage (the previous routine uninitialized it).
        unsafe { nk_initialize(device.cast(), item) };
        // SAFETY: initialized, not queued.
        unsafe { nk_queue(item, single_routine, DELAYED_WORK_QUEUE, item.cast()) };
        run_worker();
    }
}

// ---------------------------------------------------------------------------------------------
// alloc: IoAllocateWorkItem / IoFreeWorkItem per cycle.

unsafe extern "win64" fn alloc_routine(_device: *mut DEVICE_OBJECT, context: PVOID) {
    // SAFETY: the context is the item, dequeued before this call.
    unsafe { nk_free_work_item(context.cast()) };
}

#[unsafe(no_mangle)]
#[inline(never)]
fn bench_alloc_loop(device: *mut DEVICE_OBJECT, n: u64) {
    for _ in 0..n {
        // SAFETY: live device.
        let item = unsafe { nk_allocate_work_item(device) };
        // SAFETY: initialized, not queued.
        unsafe { nk_queue(item, alloc_routine, DELAYED_WORK_QUEUE, item.cast()) };
        run_worker();
    }
}

// ---------------------------------------------------------------------------------------------

const VARIANTS: [(&str, &str); 4] = [
    ("safe", "bench_safe_loop"),
    ("raw", "bench_raw_loop"),
    ("raw-single", "bench_single_loop"),
    ("alloc", "bench_alloc_loop"),
];

fn measure(variant: &str, n: u64) {
    // SAFETY: DEVICE_OBJECT is plain data; all-zero is valid.
    let mut object: DEVICE_OBJECT = unsafe { std::mem::zeroed() };
    object.Type = IO_TYPE_DEVICE;
    let raw_device: *mut DEVICE_OBJECT = &mut object;
    match variant {
        "safe" => {
            // SAFETY: `object` outlives the slab (dropped at the end of this arm).
            let device = unsafe { Device::from_raw(raw_device) };
            let slab = Slab::<NullKernel, u64>::new(device, 256, 0x6c53_6957).unwrap();
            bench_safe_loop(&slab, n);
            assert_eq!(slab.stats().in_use, 0);
            drop(slab);
        }
        "raw" => {
            let pool = RawPool::new(raw_device, 256);
            RAW_POOL.store(&pool as *const RawPool as *mut RawPool, Ordering::Relaxed);
            bench_raw_loop(&pool, n);
            assert_eq!(pool.rundown.load(Ordering::Relaxed), 1);
        }
        "raw-single" => {
            // SAFETY: non-zero size.
            let item = unsafe { nk_alloc(ITEM_SIZE as usize, 1) };
            bench_single_loop(raw_device, item.cast(), n);
        }
        "alloc" => bench_alloc_loop(raw_device, n),
        other => panic!("unknown variant {other}"),
    }
}

/// Instructions of `n` cycles of `variant` under callgrind: driver-side only, or with the null
/// kernel's exports included (`with_kernel`).
fn callgrind(variant: &str, function: &str, n: u64, with_kernel: bool) -> u64 {
    let exe = std::env::current_exe().unwrap();
    let out = std::env::temp_dir().join(format!(
        "cycle_bench.{variant}.{n}.{with_kernel}.{}.out",
        std::process::id()
    ));
    let mut args = vec![
        "--tool=callgrind".to_string(),
        "--collect-atstart=no".to_string(),
        format!("--toggle-collect={function}"),
        format!("--callgrind-out-file={}", out.display()),
    ];
    if !with_kernel {
        args.push("--toggle-collect=nk_*".to_string());
    }
    let status = Command::new("valgrind")
        .args(&args)
        .arg(&exe)
        .args(["--measure", variant, &n.to_string()])
        .output()
        .expect("valgrind (apt-get install valgrind)");
    assert!(
        status.status.success(),
        "valgrind failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("callgrind totals")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--measure") {
        measure(&args[1], args[2].parse().unwrap());
        return;
    }
    let n: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let per_cycle = |with_kernel: bool| -> Vec<(&str, f64)> {
        VARIANTS
            .iter()
            .map(|&(variant, function)| {
                let a = callgrind(variant, function, n, with_kernel);
                let b = callgrind(variant, function, 2 * n, with_kernel);
                (variant, (b - a) as f64 / n as f64)
            })
            .collect()
    };
    let driver = per_cycle(false);
    let total = per_cycle(true);
    let raw = driver[1].1;
    let over = (driver[0].1 / raw - 1.0) * 100.0;
    println!("instructions per acquire->init->queue->run->uninit->release cycle (callgrind Ir,");
    println!(
        "{n} vs {} cycles). 'driver' excludes the null kernel's exports; 'total'",
        2 * n
    );
    println!("includes them (its IoAllocateWorkItem/IoFreeWorkItem are glibc malloc/free).");
    println!(
        "  {:<11} {:>8} {:>10} {:>8}",
        "variant", "driver", "vs raw", "total"
    );
    for ((variant, ir), (_, all)) in driver.iter().zip(&total) {
        let vs = (ir / raw - 1.0) * 100.0;
        println!("  {variant:<11} {ir:>8.1} {vs:>+9.1}% {all:>8.1}");
    }
    let json = |v: &[(&str, f64)]| {
        let fields: Vec<String> = v
            .iter()
            .map(|(k, x)| format!("\"{}\":{x:.1}", k.replace('-', "_")))
            .collect();
        format!("{{{}}}", fields.join(","))
    };
    println!(
        "{{\"driver\":{},\"total\":{},\"safe_over_raw_pct\":{over:.1}}}",
        json(&driver),
        json(&total)
    );
}
