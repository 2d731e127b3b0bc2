//! N threads issuing run-cycles requests concurrently, for a duration or a request count.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ioctl::{Mode, RunCyclesRequest};
use nt_abi::{CUSTOM_PRIORITY_MAX, CUSTOM_PRIORITY_WORK_QUEUE, MAXIMUM_WORK_QUEUE};
use serde::Serialize;

use crate::backend::{BackendError, DeviceHandle};
use crate::client::{Client, Failure};
use crate::fuzz::Rng;

/// When the run stops.
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    Duration(Duration),
    /// Requests in total, across all threads.
    Count(u64),
}

#[derive(Clone, Debug)]
pub struct StressConfig {
    pub threads: u32,
    pub limit: Limit,
    /// The request every thread sends; with `mix`, the mode (and depth) and the queue type
    /// rotate per request.
    pub request: RunCyclesRequest,
    pub mix: bool,
    pub seed: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ThreadResult {
    pub requests: u64,
    pub succeeded: u64,
    pub cycles: u64,
    pub routines: u64,
    pub max_in_flight: u32,
    pub exhaustion: u64,
    /// Failed requests by NTSTATUS name.
    pub failures: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StressReport {
    pub threads: Vec<ThreadResult>,
    pub requests: u64,
    pub succeeded: u64,
    pub cycles: u64,
    pub routines: u64,
    pub elapsed_secs: f64,
    pub cycles_per_sec: f64,
    pub by_mode: BTreeMap<&'static str, u64>,
    /// Successful requests by queue type: the fixed types by number, custom priorities together.
    pub by_queue: BTreeMap<String, u64>,
    /// A backend error or bug check that stopped the run.
    pub fatal: Option<String>,
}

/// `by_queue` key: the fixed queue types by number, every custom priority as `custom`.
fn queue_label(queue_type: u32) -> String {
    if queue_type < MAXIMUM_WORK_QUEUE as u32 {
        queue_type.to_string()
    } else {
        "custom".to_string()
    }
}

/// The request a thread sends as its `n`-th.
fn request_for(cfg: &StressConfig, rng: &mut Rng) -> RunCyclesRequest {
    if !cfg.mix {
        return cfg.request;
    }
    let mode = *rng.pick(&Mode::ALL);
    let mut r = cfg.request;
    r.mode = mode as u32;
    // Every fixed queue type (0..=6), or a custom priority (32 + 0..=31), about equally often.
    let fixed = MAXIMUM_WORK_QUEUE as u32;
    let pick = rng.range32(0, fixed);
    r.queue_type = if pick < fixed {
        pick
    } else {
        CUSTOM_PRIORITY_WORK_QUEUE as u32 + rng.range32(0, CUSTOM_PRIORITY_MAX as u32)
    };
    r.requeue_depth = if mode == Mode::RequeueChain {
        rng.range32(1, 8)
    } else {
        0
    };
    // Keep the routine bound: shrink iterations if the chain would exceed it.
    let max_iter = (ioctl::MAX_ROUTINES_PER_REQUEST / (1 + u64::from(r.requeue_depth))) as u32;
    r.iterations = r.iterations.min(max_iter);
    r
}

/// Run the stress test; `progress(done_requests)` is called from worker threads.
pub fn run_stress(
    handles: &[Arc<dyn DeviceHandle>],
    cfg: &StressConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> StressReport {
    let issued = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let fatal = std::sync::Mutex::new(None::<String>);
    let by_mode = std::sync::Mutex::new(BTreeMap::<&'static str, u64>::new());
    let by_queue = std::sync::Mutex::new(BTreeMap::<String, u64>::new());
    let start = Instant::now();
    let threads: Vec<ThreadResult> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..cfg.threads)
            .map(|t| {
                let handle = Arc::clone(&handles[t as usize % handles.len()]);
                let (issued, done, stop, fatal, by_mode, by_queue) =
                    (&issued, &done, &stop, &fatal, &by_mode, &by_queue);
                s.spawn(move || {
                    let mut rng = Rng::new(cfg.seed ^ (u64::from(t) << 32 | 0x5EED));
                    let mut res = ThreadResult::default();
                    let client = Client::new(handle.as_ref());
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        match cfg.limit {
                            Limit::Duration(d) if start.elapsed() >= d => break,
                            Limit::Count(n) if issued.fetch_add(1, Ordering::Relaxed) >= n => break,
                            _ => {}
                        }
                        let req = request_for(cfg, &mut rng);
                        res.requests += 1;
                        match client.run(&req) {
                            Ok(resp) => {
                                res.succeeded += 1;
                                res.cycles += resp.stats.cycles_completed;
                                res.routines += resp.stats.routines_run;
                                res.exhaustion += resp.stats.exhaustion_count;
                                res.max_in_flight = res.max_in_flight.max(resp.stats.max_in_flight);
                                if let Some(m) = Mode::from_u32(req.mode) {
                                    *by_mode.lock().unwrap().entry(m.name()).or_default() += 1;
                                }
                                *by_queue
                                    .lock()
                                    .unwrap()
                                    .entry(queue_label(req.queue_type))
                                    .or_default() += 1;
                            }
                            Err(Failure::Status(st)) => {
                                let name = nt_abi::status_name(st)
                                    .map_or_else(|| format!("{:#010X}", st as u32), str::to_string);
                                *res.failures.entry(name).or_default() += 1;
                            }
                            Err(e) => {
                                let fatal_now =
                                    matches!(e, Failure::Backend(BackendError::BugCheck(_)))
                                        || matches!(e, Failure::Backend(_));
                                *res.failures.entry("other".into()).or_default() += 1;
                                if fatal_now {
                                    fatal.lock().unwrap().get_or_insert_with(|| e.to_string());
                                    stop.store(true, Ordering::Relaxed);
                                }
                            }
                        }
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                    }
                    res
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("stress thread panicked"))
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let sum = |f: fn(&ThreadResult) -> u64| threads.iter().map(f).sum::<u64>();
    let cycles = sum(|t| t.cycles);
    StressReport {
        requests: sum(|t| t.requests),
        succeeded: sum(|t| t.succeeded),
        cycles,
        routines: sum(|t| t.routines),
        elapsed_secs: elapsed,
        cycles_per_sec: if elapsed > 0.0 {
            cycles as f64 / elapsed
        } else {
            0.0
        },
        by_mode: by_mode.into_inner().unwrap(),
        by_queue: by_queue.into_inner().unwrap(),
        fatal: fatal.into_inner().unwrap(),
        threads,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use ioctl::{Limits, RunCyclesResponse, Wire};

    use super::*;

    #[test]
    fn mix_covers_every_mode_and_queue_type_with_valid_requests() {
        let cfg = StressConfig {
            threads: 1,
            limit: Limit::Count(1),
            request: RunCyclesRequest::new(1000, 8, Mode::UninitInRoutine, 1, 0, 0),
            mix: true,
            seed: 7,
        };
        let limits = Limits { slab_capacity: 64 };
        let mut rng = Rng::new(cfg.seed);
        let (mut modes, mut queues) = (BTreeSet::new(), BTreeSet::new());
        for _ in 0..2000 {
            let r = request_for(&cfg, &mut rng);
            let out = RunCyclesResponse::SIZE as u32;
            assert!(
                ioctl::validate_run_cycles(r.as_bytes(), out, &limits).is_ok(),
                "mixed request rejected by the driver's validation: {r:?}"
            );
            modes.insert(r.mode);
            queues.insert(queue_label(r.queue_type));
        }
        assert_eq!(modes.len(), Mode::ALL.len(), "every mode: {modes:?}");
        let expected: BTreeSet<String> = (0..MAXIMUM_WORK_QUEUE as u32)
            .map(|q| q.to_string())
            .chain(Some("custom".to_string()))
            .collect();
        assert_eq!(
            queues, expected,
            "every fixed queue type and a custom priority"
        );
    }

    #[test]
    fn without_mix_the_request_is_sent_unchanged() {
        let request = RunCyclesRequest::new(10, 2, Mode::QueueEx, 4, 0, 0);
        let cfg = StressConfig {
            threads: 1,
            limit: Limit::Count(1),
            request,
            mix: false,
            seed: 1,
        };
        let r = request_for(&cfg, &mut Rng::new(1));
        assert_eq!((r.mode, r.queue_type), (request.mode, request.queue_type));
    }
}
