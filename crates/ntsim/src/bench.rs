//! `ntsim bench`: work-item cycle throughput of the emulated exports, in-process.
#![allow(non_snake_case)]

use std::time::Instant;

use nt_abi::*;

use crate::exports::*;
use crate::{Config, Machine, Verifier};

/// Results of one benchmark configuration.
#[derive(Clone, Debug)]
pub struct BenchResult {
    pub verifier: Verifier,
    pub init_uninit_per_sec: f64,
    /// init → IoQueueWorkItem → routine (uninitializes, signals) → wait, per second (median of
    /// the rounds).
    pub queue_cycle_per_sec: f64,
    /// The same cycle through IoQueueWorkItemEx, in rounds alternating with the above.
    pub queue_ex_cycle_per_sec: f64,
    /// METHOD_BUFFERED DeviceIoControl round trips (host thread → IRP → dispatch → completion).
    pub ioctl_per_sec: f64,
    pub iterations: u64,
}

unsafe extern "win64" fn dispatch(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the IRP this dispatch routine owns until it completes it below.
    let i = unsafe { &mut *irp };
    i.IoStatus.u.Status = STATUS_SUCCESS;
    i.IoStatus.Information = 0;
    // SAFETY: completing the IRP we own, once.
    unsafe { IofCompleteRequest(irp, 0) };
    STATUS_SUCCESS
}

struct Ctx {
    item: usize,
    event: KEVENT,
}

unsafe extern "win64" fn routine(_dev: *mut DEVICE_OBJECT, ctx: PVOID) {
    let c = ctx.cast::<Ctx>();
    // SAFETY: `ctx` is the bench's Ctx, alive until the waiter sees the event.
    let item = unsafe { (*c).item };
    // SAFETY: the item is dequeued, so uninitializing it inside its routine is legal.
    unsafe { IoUninitializeWorkItem(item as PIO_WORKITEM) };
    // SAFETY: projecting to the event of the live Ctx.
    let ev = unsafe { &raw mut (*c).event };
    // SAFETY: the event was initialized by the bench before queueing.
    unsafe { KeSetEvent(ev, 0, 0) };
}

unsafe extern "win64" fn routine_ex(_io_object: PVOID, ctx: PVOID, item: PIO_WORKITEM) {
    let c = ctx.cast::<Ctx>();
    // SAFETY: the item is dequeued, so uninitializing it inside its routine is legal.
    unsafe { IoUninitializeWorkItem(item) };
    // SAFETY: projecting to the event of the live Ctx (alive until the waiter sees the event).
    let ev = unsafe { &raw mut (*c).event };
    // SAFETY: the event was initialized by the bench before queueing.
    unsafe { KeSetEvent(ev, 0, 0) };
}

/// One queue→routine→uninit cycle per iteration on `item`, through IoQueueWorkItemEx when
/// `ex`; cycles per second.
fn queue_cycles(dev: usize, item: usize, ctx: *mut Ctx, iterations: u64, ex: bool) -> f64 {
    // SAFETY: projecting to the event of the live Ctx.
    let ev = unsafe { &raw mut (*ctx).event };
    let t = Instant::now();
    for _ in 0..iterations {
        init(dev, item);
        if ex {
            // SAFETY: `item` is initialized and idle; `ctx` outlives the routine because this
            // loop waits for the routine's event before reusing or freeing anything.
            unsafe {
                IoQueueWorkItemEx(
                    item as PIO_WORKITEM,
                    routine_ex,
                    DELAYED_WORK_QUEUE,
                    ctx.cast(),
                )
            };
        } else {
            // SAFETY: as above.
            unsafe {
                IoQueueWorkItem(
                    item as PIO_WORKITEM,
                    routine,
                    DELAYED_WORK_QUEUE,
                    ctx.cast(),
                )
            };
        }
        // SAFETY: waiting on the initialized event.
        unsafe {
            KeWaitForSingleObject(ev.cast(), EXECUTIVE, KERNEL_MODE, 0, core::ptr::null_mut())
        };
    }
    iterations as f64 / t.elapsed().as_secs_f64()
}

fn alloc(size: usize, tag: u32) -> usize {
    // SAFETY: ExAllocatePool2 has no preconditions beyond running on an ntsim thread.
    unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, size, tag) as usize }
}

fn free(p: usize, tag: u32) {
    // SAFETY: `p` came from `alloc` with `tag` and is freed once.
    unsafe { ExFreePoolWithTag(p as PVOID, tag) };
}

fn init(dev: usize, item: usize) {
    // SAFETY: `item` is IoSizeofWorkItem() bytes of nonpaged pool; `dev` the host device.
    unsafe { IoInitializeWorkItem(dev as PVOID, item as PIO_WORKITEM) };
}

fn uninit(item: usize) {
    // SAFETY: `item` is initialized and not queued.
    unsafe { IoUninitializeWorkItem(item as PIO_WORKITEM) };
}

/// The queue cycles run in this many alternating IoQueueWorkItem / IoQueueWorkItemEx rounds;
/// each variant's figure is the median round (a round in which another process held the
/// processors does not decide the comparison).
const ROUNDS: u64 = 20;

/// Minimum warm-up before the queue rounds.
const WARM_UP: std::time::Duration = std::time::Duration::from_millis(200);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Run the benchmarks with `iterations` cycles each (after a warm-up of a tenth of that).
pub fn run(verifier: Verifier, iterations: u64) -> BenchResult {
    let m = Machine::new(Config {
        verifier,
        ..Config::default()
    });
    let host = m.host_driver().expect("host driver");
    let dev = host.device_object() as usize;
    let (a, b, bx) = m
        .run_in_kernel_thread(move || {
            // SAFETY: trivially safe export.
            let size = unsafe { IoSizeofWorkItem() } as usize;
            let tag = pool_tag(*b"Bnch");
            let item = alloc(size, tag);
            let t0 = Instant::now();
            for _ in 0..iterations {
                init(dev, item);
                uninit(item);
            }
            let a = iterations as f64 / t0.elapsed().as_secs_f64();
            let ctx = alloc(core::mem::size_of::<Ctx>(), tag) as *mut Ctx;
            // SAFETY: `ctx` is a fresh, zeroed, nonpaged Ctx-sized block.
            unsafe { (*ctx).item = item };
            // SAFETY: projecting to the event of the live Ctx.
            let ev = unsafe { &raw mut (*ctx).event };
            // SAFETY: `ev` is writable KEVENT storage.
            unsafe { KeInitializeEvent(ev, SYNCHRONIZATION_EVENT, 0) };
            // Warm up for at least WARM_UP (worker threads start on first use, and the
            // scheduler settles where they run), then alternate the two exports in rounds,
            // ABBA, so both see the same machine load and neither always goes first.
            let warm = Instant::now();
            while warm.elapsed() < WARM_UP {
                queue_cycles(dev, item, ctx, (iterations / 10).max(1), false);
                queue_cycles(dev, item, ctx, (iterations / 10).max(1), true);
            }
            let per = (iterations / ROUNDS).max(1);
            let (mut rb, mut rbx) = (Vec::new(), Vec::new());
            for r in 0..ROUNDS {
                for ex in [r % 2 == 1, r % 2 == 0] {
                    let rate = queue_cycles(dev, item, ctx, per, ex);
                    if ex { rbx.push(rate) } else { rb.push(rate) }
                }
            }
            let (b, bx) = (median(rb), median(rbx));
            // The routine has signalled but may not have returned to its worker yet.
            (a, b, bx, item, ctx as usize, tag)
        })
        .map(|(a, b, bx, item, ctx, tag)| {
            m.wait_work_items_idle(std::time::Duration::from_secs(5));
            m.run_in_kernel_thread(move || {
                free(ctx, tag);
                free(item, tag);
            })
            .expect("free bench blocks");
            (a, b, bx)
        })
        .expect("bench bug-checked");
    let drv = host.driver_object() as usize;
    m.run_in_kernel_thread(move || {
        // SAFETY: the host driver object; installing dispatch routines as DriverEntry does.
        let d = unsafe { &mut *(drv as *mut DRIVER_OBJECT) };
        for mj in [
            IRP_MJ_CREATE,
            IRP_MJ_CLEANUP,
            IRP_MJ_CLOSE,
            IRP_MJ_DEVICE_CONTROL,
        ] {
            d.MajorFunction[mj as usize] = Some(dispatch);
        }
    })
    .expect("install dispatch");
    let h = m
        .open(r"\Device\NtsimHost", GENERIC_READ | GENERIC_WRITE)
        .expect("open host device");
    let n = (iterations / 10).max(100);
    let code = ctl_code(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS);
    let t2 = Instant::now();
    for _ in 0..n {
        h.device_io_control(code, &[0u8; 16], 16).expect("ioctl");
    }
    let c = n as f64 / t2.elapsed().as_secs_f64();
    h.close().expect("close");
    BenchResult {
        ioctl_per_sec: c,
        verifier,
        init_uninit_per_sec: a,
        queue_cycle_per_sec: b,
        queue_ex_cycle_per_sec: bx,
        iterations,
    }
}

impl BenchResult {
    /// One JSON object with every figure (what `examples/bench_json.rs` prints).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"verifier\":\"{}\",\"iterations\":{},\"init_uninit_per_sec\":{:.0},\"queue_routine_uninit_per_sec\":{:.0},\"queue_ex_routine_uninit_per_sec\":{:.0},\"queue_vs_queue_ex\":{:.3},\"ioctl_per_sec\":{:.0}}}",
            if self.verifier == Verifier::Standard {
                "standard"
            } else {
                "off"
            },
            self.iterations,
            self.init_uninit_per_sec,
            self.queue_cycle_per_sec,
            self.queue_ex_cycle_per_sec,
            self.queue_cycle_per_sec / self.queue_ex_cycle_per_sec,
            self.ioctl_per_sec
        )
    }
}
