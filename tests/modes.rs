//! Every cycle mode end to end with exact counts, statistics accumulate/reset, IoSizeofWorkItem
//! variants, and concurrent requests sharing the slab.
// ntsim (the backend these tests drive) is Linux x86_64 only.
#![cfg(target_os = "linux")]
mod common;

use std::sync::Arc;

use common::*;
use ioctl::*;
use wictl::backend::DeviceHandle;
use wictl::client::Client;
use wictl::ntsim_backend::Options;

#[test]
fn every_mode_runs_with_exact_counts() {
    let b = boot();
    let h = rw(&b);
    let c = Client::new(h.as_ref());
    let n = 300u32;
    for mode in Mode::ALL {
        for queue_type in [0u32, 1, 2, 3, 4, 5, 6, 32, 47, 63] {
            let depth = if mode == Mode::RequeueChain { 3 } else { 0 };
            let r = c
                .run(&RunCyclesRequest::new(
                    n,
                    16,
                    mode,
                    queue_type,
                    RUN_FLAG_YIELD_IN_ROUTINE,
                    depth,
                ))
                .unwrap_or_else(|e| panic!("{} queue {queue_type}: {e}", mode.name()));
            let s = r.stats;
            let what = format!("{} queue {queue_type}: {s:?}", mode.name());
            assert_eq!(r.mode, mode as u32);
            assert_eq!(r.queue_type, queue_type);
            assert_eq!(s.cycles_completed, u64::from(n), "{what}");
            assert_eq!(s.runs, 1);
            assert!(s.max_in_flight >= 1 && s.max_in_flight <= 16, "{what}");
            assert!(s.elapsed_ticks > 0 && r.perf_frequency > 0, "{what}");
            let routines = u64::from(n) * (1 + u64::from(depth));
            match mode {
                Mode::InitUninit => {
                    assert_eq!(
                        (s.queued, s.routines_run, s.uninit_in_routine),
                        (0, 0, 0),
                        "{what}"
                    );
                    assert_eq!(s.max_in_flight, 16, "{what}");
                }
                Mode::QueueUninitInCaller => {
                    assert_eq!(
                        (s.queued, s.routines_run, s.uninit_in_routine),
                        (routines, routines, 0),
                        "{what}"
                    );
                }
                Mode::UninitInRoutine | Mode::QueueEx | Mode::RequeueChain => {
                    assert_eq!(
                        (s.queued, s.routines_run, s.uninit_in_routine),
                        (routines, routines, u64::from(n)),
                        "{what}"
                    );
                    assert_eq!(s.requeues, routines - u64::from(n), "{what}");
                }
                Mode::BaselineAllocFree => {
                    assert_eq!(
                        (s.queued, s.routines_run, s.uninit_in_routine),
                        (routines, routines, 0),
                        "{what}"
                    );
                }
            }
            if mode != Mode::BaselineAllocFree {
                assert!(s.slab_high_water >= s.max_in_flight, "{what}");
            }
        }
    }
    drop(h);
    assert_clean(b);
}

#[test]
fn statistics_accumulate_reset_and_skip_no_cumulative_runs() {
    let b = boot();
    let h = rw(&b);
    let c = Client::new(h.as_ref());
    assert_eq!(c.stats().unwrap().totals, CycleStats::default());
    let a = c
        .run(&RunCyclesRequest::new(
            100,
            8,
            Mode::UninitInRoutine,
            1,
            0,
            0,
        ))
        .unwrap()
        .stats;
    let r = c
        .run(&RunCyclesRequest::new(40, 4, Mode::RequeueChain, 1, 0, 2))
        .unwrap()
        .stats;
    let skipped = c
        .run(&RunCyclesRequest::new(
            77,
            2,
            Mode::InitUninit,
            1,
            RUN_FLAG_NO_CUMULATIVE,
            0,
        ))
        .unwrap();
    assert_eq!(skipped.stats.cycles_completed, 77);
    let mut want = CycleStats::default();
    want.accumulate(&a);
    want.accumulate(&r);
    let totals = c.stats().unwrap().totals;
    assert_eq!(totals.runs, 2);
    assert_eq!(totals.cycles_completed, 140);
    assert_eq!(totals.routines_run, 100 + 120);
    assert_eq!(totals.requeues, 80);
    assert_eq!(totals.elapsed_ticks, want.elapsed_ticks);
    // Maxima, not sums (a run need not fill its window: routines may finish as fast as it queues).
    assert_eq!(totals.max_in_flight, a.max_in_flight.max(r.max_in_flight));
    assert_eq!(
        totals.slab_high_water,
        a.slab_high_water.max(r.slab_high_water)
    );
    let before_reset = c.reset().unwrap();
    assert_eq!(
        before_reset.totals, totals,
        "reset returns the totals it cleared"
    );
    let after = c.stats().unwrap().totals;
    assert_eq!(after, CycleStats::default());
    drop(h);
    assert_clean(b);
}

#[test]
fn io_sizeof_work_item_is_read_at_run_time() {
    let mut strides = Vec::new();
    for size in nt_abi::KNOWN_IO_WORKITEM_SIZES {
        let b = boot_with(&Options {
            size_of_work_item: Some(size),
            ..Options::default()
        });
        let h = rw(&b);
        let c = Client::new(h.as_ref());
        let info = c.info().unwrap();
        assert_eq!(info.io_sizeof_work_item, size);
        assert_eq!(info.protocol_version, PROTOCOL_VERSION);
        assert!(
            info.slab_stride >= size + 16 && info.slab_stride.is_multiple_of(16),
            "{info:?}"
        );
        assert_eq!(info.slab_capacity, 64);
        strides.push(info.slab_stride);
        let r = c
            .run(&RunCyclesRequest::new(500, 64, Mode::QueueEx, 1, 0, 0))
            .unwrap();
        assert_eq!(r.stats.cycles_completed, 500);
        drop(h);
        assert_clean(b);
    }
    // Strides are rounded to 16-byte slots, so 0x58 and 0x60 may share one; 0x40 must be smaller.
    assert!(
        strides.windows(2).all(|w| w[0] <= w[1]),
        "stride follows the item size: {strides:?}"
    );
    assert!(strides[0] < strides[2], "{strides:?}");
}

#[test]
fn concurrent_requests_share_the_slab() {
    let b = boot();
    let handles: Vec<Arc<dyn DeviceHandle>> = (0..4).map(|_| rw(&b)).collect();
    let results: Vec<CycleStats> = std::thread::scope(|s| {
        let ts: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(i, h)| {
                s.spawn(move || {
                    let c = Client::new(h.as_ref());
                    let mode = [
                        Mode::UninitInRoutine,
                        Mode::QueueUninitInCaller,
                        Mode::QueueEx,
                        Mode::InitUninit,
                    ][i];
                    let mut total = CycleStats::default();
                    for _ in 0..5 {
                        total.accumulate(
                            &c.run(&RunCyclesRequest::new(400, 64, mode, 1, 0, 0))
                                .unwrap()
                                .stats,
                        );
                    }
                    total
                })
            })
            .collect();
        ts.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut sum = CycleStats::default();
    for r in &results {
        assert_eq!(r.cycles_completed, 2000);
        sum.accumulate(r);
    }
    let totals = stats(handles[0].as_ref()).totals;
    assert_eq!(totals.cycles_completed, sum.cycles_completed);
    assert_eq!(totals.runs, 20);
    assert_eq!(
        totals.slab_high_water, 64,
        "four requests of 64 must fill the slab"
    );
    drop(handles);
    assert_clean(b);
}
