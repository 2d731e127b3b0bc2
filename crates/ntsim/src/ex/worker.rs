//! System worker queues and their threads (ExQueueWorkItem's side of work items): one queue
//! per `WORK_QUEUE_TYPE` plus one for custom priorities, each with its own lock, condition
//! variable and worker threads, started lazily on the first queueing and grown by a balancer
//! when a queue stalls (as Windows' balance-set manager adds dynamic worker threads).
//!
//! An entry is any [`WorkEntry`]: the I/O manager's queued work items (`io::workitem`) are
//! one, the way IoQueueWorkItem queues a WORK_QUEUE_ITEM whose routine is IopProcessWorkItem.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nt_abi::{MAXIMUM_WORK_QUEUE, WORK_QUEUE_TYPE};

use crate::ids::DriverId;
use crate::ke::spin_until;
use crate::ke::thread::{self, KernelState, park_forever};
use crate::machine::{System, lock};

/// Number of worker queues: the seven fixed types plus one for custom priorities.
pub const NQ: usize = 8;

/// How long items of a queue must wait with every worker busy and no progress before the
/// balancer adds a worker (Windows' balance-set manager adds worker threads about once a second
/// when a queue is stuck).
pub const STALL_BEFORE_NEW_WORKER: Duration = Duration::from_millis(1000);

/// How long an idle worker spins for a new entry before it blocks: an entry queued from
/// another processor within this time is picked up without a sleep and a wake-up. Only one
/// worker per queue spins at a time (the others block at once), and the spin yields the
/// processor between short bursts, so an oversubscribed machine loses little to it.
const IDLE_SPIN: Duration = Duration::from_micros(20);

/// A unit of work on a system worker queue (a WORK_QUEUE_ITEM with its routine).
pub(crate) trait WorkEntry: Send + 'static {
    /// Run on a worker thread of `sys` (kernel state entered, PASSIVE_LEVEL, no driver).
    fn run(self, sys: &System);
}

/// The queue a `WORK_QUEUE_TYPE` selects (custom priorities share the last one).
pub(crate) fn queue_index(qt: WORK_QUEUE_TYPE) -> usize {
    if (0..MAXIMUM_WORK_QUEUE).contains(&qt) {
        qt as usize
    } else {
        NQ - 1
    }
}

struct QueueState<E> {
    entries: VecDeque<E>,
    /// Worker threads started for this queue.
    started: usize,
    /// Workers waiting for (or about to take) an entry.
    idle: usize,
    /// Workers blocked on the condition variable (a queueing wakes one only if there is one).
    sleeping: usize,
    /// Workers spinning for an entry (at most one): a queueing wakes a sleeper only for entries
    /// beyond what the spinners will take.
    spinning: usize,
    /// Since when entries have waited with no idle worker and no progress.
    stalled_since: Option<Instant>,
}

struct Queue<E> {
    st: Mutex<QueueState<E>>,
    cv: Condvar,
    /// `entries.len()`, readable without the lock by spinning workers.
    len: AtomicUsize,
}

/// The worker queues of one machine.
pub(crate) struct Workers<E> {
    queues: [Queue<E>; NQ],
    balancer_started: AtomicBool,
    shutdown: AtomicBool,
}

impl<E: WorkEntry> Workers<E> {
    pub(crate) fn new() -> Self {
        Workers {
            queues: std::array::from_fn(|_| Queue {
                st: Mutex::new(QueueState {
                    entries: VecDeque::new(),
                    started: 0,
                    idle: 0,
                    sleeping: 0,
                    spinning: 0,
                    stalled_since: None,
                }),
                cv: Condvar::new(),
                len: AtomicUsize::new(0),
            }),
            balancer_started: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
        }
    }

    /// Append `entry` to queue `q` (ExQueueWorkItem). Starts the queue's workers on first use.
    /// Called on a kernel thread of `sys`.
    pub(crate) fn queue(&self, sys: &System, q: usize, entry: E) {
        let queue = &self.queues[q];
        let mut g = lock(&queue.st);
        g.entries.push_back(entry);
        queue.len.store(g.entries.len(), Ordering::SeqCst);
        // Start the configured number of workers; the balancer adds more when a queue stalls.
        let need = sys
            .config
            .workers_per_queue
            .max(1)
            .saturating_sub(g.started);
        g.started += need;
        g.idle += need;
        if g.entries.len() > g.idle && g.stalled_since.is_none() {
            g.stalled_since = Some(Instant::now());
        }
        // A spinning worker takes one entry without a wake-up; wake a sleeper for the rest.
        let wake = g.sleeping > 0 && g.entries.len() > g.spinning;
        drop(g);
        if need > 0 {
            let sys = thread::current_arc();
            for _ in 0..need {
                spawn_worker(&sys, q);
            }
            if sys.config.max_workers_per_queue > sys.config.workers_per_queue
                && !self.balancer_started.swap(true, Ordering::SeqCst)
            {
                spawn_balancer(&sys);
            }
        }
        if wake {
            queue.cv.notify_one();
        }
    }

    /// Take the next entry of queue `q` for a worker; spins briefly, then blocks. `None` when
    /// the machine shuts down (the worker exits); parks for good after a bug check.
    fn take(&self, sys: &System, q: usize) -> Option<E> {
        let queue = &self.queues[q];
        let mut spun = false;
        let mut g = lock(&queue.st);
        loop {
            if sys.ke.is_bugged() {
                drop(g);
                park_forever();
            }
            if let Some(e) = g.entries.pop_front() {
                queue.len.store(g.entries.len(), Ordering::SeqCst);
                g.idle = g.idle.saturating_sub(1);
                // Progress: restart the stall clock (or stop it when nothing waits).
                g.stalled_since = (g.entries.len() > g.idle).then(Instant::now);
                return Some(e);
            }
            if self.shutdown.load(Ordering::SeqCst) {
                g.started = g.started.saturating_sub(1);
                g.idle = g.idle.saturating_sub(1);
                return None;
            }
            if !spun && g.spinning == 0 {
                spun = true;
                g.spinning += 1;
                drop(g);
                spin_until(IDLE_SPIN, || {
                    queue.len.load(Ordering::SeqCst) != 0
                        || self.shutdown.load(Ordering::Relaxed)
                        || sys.ke.is_bugged()
                });
                g = lock(&queue.st);
                g.spinning -= 1;
                continue;
            }
            g.sleeping += 1;
            g = queue.cv.wait(g).unwrap_or_else(|e| e.into_inner());
            g.sleeping -= 1;
            spun = false;
        }
    }

    /// A worker of queue `q` finished an entry and is idle again.
    fn done(&self, q: usize) {
        lock(&self.queues[q].st).idle += 1;
    }

    /// Wake every worker (after a bug check, so it parks; at shutdown, so it exits).
    pub(crate) fn wake_all(&self) {
        for q in &self.queues {
            drop(lock(&q.st));
            q.cv.notify_all();
        }
    }

    /// Stop the workers: each exits once its queue is empty.
    pub(crate) fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.wake_all();
    }
}

fn spawn_worker(sys: &Arc<System>, q: usize) {
    let sys = sys.clone();
    let r = crate::ke::fault::spawn_driver_thread(&format!("ntsim-worker-{q}"), move || {
        worker_loop(sys, q)
    });
    if let Err(e) = r {
        eprintln!("ntsim: cannot spawn a worker thread: {e}");
    }
}

fn worker_loop(sys: Arc<System>, q: usize) {
    let state = KernelState::enter(sys.clone(), DriverId::NONE, "work item routine");
    let workers = &sys.ex.workers;
    while let Some(e) = workers.take(&sys, q) {
        e.run(&sys);
        workers.done(q);
    }
    drop(state);
}

fn spawn_balancer(sys: &Arc<System>) {
    let sys = sys.clone();
    let r = std::thread::Builder::new()
        .name("ntsim-balancer".into())
        .spawn(move || balancer_loop(sys));
    if let Err(e) = r {
        eprintln!("ntsim: cannot spawn the worker balancer: {e}");
    }
}

fn balancer_loop(sys: Arc<System>) {
    let workers = &sys.ex.workers;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if workers.shutdown.load(Ordering::SeqCst) || sys.ke.is_bugged() {
            return;
        }
        let cap = sys.config.max_workers_per_queue;
        let now = Instant::now();
        for (q, queue) in workers.queues.iter().enumerate() {
            let mut g = lock(&queue.st);
            let stuck = g
                .stalled_since
                .is_some_and(|t| now.duration_since(t) >= STALL_BEFORE_NEW_WORKER);
            if stuck && g.entries.len() > g.idle && g.started < cap {
                g.started += 1;
                g.idle += 1;
                g.stalled_since = Some(now);
                let wake = g.sleeping > 0 && g.entries.len() > g.spinning;
                drop(g);
                spawn_worker(&sys, q);
                if wake {
                    queue.cv.notify_one();
                }
            }
        }
    }
}
