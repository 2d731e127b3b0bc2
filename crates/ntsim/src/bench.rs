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
    pub queue_cycle_per_sec: f64,
    pub iterations: u64,
}

struct Ctx {
    item: usize,
    event: KEVENT,
}

unsafe extern "win64" fn routine(_dev: *mut DEVICE_OBJECT, ctx: PVOID) {
    let c = ctx.cast::<Ctx>();
    // SAFETY: `ctx` is the bench's Ctx, alive until the waiter sees the event; the item is
    // dequeued, so uninitializing it inside its routine is legal.
    unsafe {
        IoUninitializeWorkItem((*c).item as PIO_WORKITEM);
        KeSetEvent(&raw mut (*c).event, 0, 0);
    }
}

/// Run both benchmarks with `iterations` cycles each.
pub fn run(verifier: Verifier, iterations: u64) -> BenchResult {
    let m = Machine::new(Config {
        verifier,
        ..Config::default()
    });
    let host = m.host_driver().expect("host driver");
    let dev = host.device_object() as usize;
    let (a, b) = m
        .run_in_kernel_thread(move || {
            let dev = dev as *mut DEVICE_OBJECT;
            // SAFETY: the exports are called on an ntsim kernel thread with valid arguments:
            // `item` is IoSizeofWorkItem() nonpaged bytes, `ctx` a nonpaged Ctx that outlives
            // every queued routine (each cycle waits for its routine's event).
            unsafe {
                let size = IoSizeofWorkItem() as usize;
                let tag = pool_tag(*b"Bnch");
                let item = ExAllocatePool2(POOL_FLAG_NON_PAGED, size, tag) as PIO_WORKITEM;
                let t0 = Instant::now();
                for _ in 0..iterations {
                    IoInitializeWorkItem(dev.cast(), item);
                    IoUninitializeWorkItem(item);
                }
                let a = iterations as f64 / t0.elapsed().as_secs_f64();
                let ctx = ExAllocatePool2(POOL_FLAG_NON_PAGED, core::mem::size_of::<Ctx>(), tag)
                    .cast::<Ctx>();
                (*ctx).item = item as usize;
                KeInitializeEvent(&raw mut (*ctx).event, SYNCHRONIZATION_EVENT, 0);
                let t1 = Instant::now();
                for _ in 0..iterations {
                    IoInitializeWorkItem(dev.cast(), item);
                    IoQueueWorkItem(item, routine, DELAYED_WORK_QUEUE, ctx.cast());
                    KeWaitForSingleObject(
                        ctx.cast(),
                        EXECUTIVE,
                        KERNEL_MODE,
                        0,
                        core::ptr::null_mut(),
                    );
                }
                let b = iterations as f64 / t1.elapsed().as_secs_f64();
                // The routine has signalled but may not have returned to its worker yet.
                (a, b, item as usize, ctx as usize, tag)
            }
        })
        .map(|(a, b, item, ctx, tag)| {
            m.wait_work_items_idle(std::time::Duration::from_secs(5));
            m.run_in_kernel_thread(move || {
                // SAFETY: both blocks came from ExAllocatePool2 with `tag`; no routine is
                // running any more.
                unsafe {
                    ExFreePoolWithTag(ctx as PVOID, tag);
                    ExFreePoolWithTag(item as PVOID, tag);
                }
            })
            .expect("free bench blocks");
            (a, b)
        })
        .expect("bench bug-checked");
    BenchResult {
        verifier,
        init_uninit_per_sec: a,
        queue_cycle_per_sec: b,
        iterations,
    }
}
