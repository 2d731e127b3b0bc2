//! The emulated machine: configuration, per-thread kernel state, kernel threads, bug checks.
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use crate::verifier::{Bc, BugCheck};

/// Which Driver Verifier rules are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verifier {
    /// Like `verifier /standard`: every rule ntsim knows.
    Standard,
    /// Only the checks ntoskrnl makes by itself (0xE4, 0xE1, 0xC2, 0x44, 0x18, 0xCE).
    Off,
}

/// Machine configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// What `IoSizeofWorkItem` returns (0x58 = Windows 10 x64; 0x40 Windows 7; 0x60 recent).
    pub size_of_work_item: u32,
    pub verifier: Verifier,
    /// System worker threads per work queue (spawned lazily, on the first queueing).
    pub workers_per_queue: usize,
    /// Like Windows' dynamic worker threads: when items of a queue have waited behind busy
    /// workers without progress for about a second, the queue gets another worker, up to this
    /// many (set it to `workers_per_queue` for a fixed pool).
    pub max_workers_per_queue: usize,
    /// Echo DbgPrint output to stderr as it happens.
    pub echo_dbgprint: bool,
    /// After DriverUnload returns, how long work-item routines that are already *running* get
    /// to return (Windows keeps the image alive through the IoObject reference while a routine
    /// finishes its epilogue). Items still queued, or still running after this, are 0xCE.
    pub unload_grace: Duration,
    /// How long `Driver::unload` waits for the last open handle to the driver's devices to be
    /// closed before it gives up with `UnloadError::OpenHandles` (DriverUnload not called; the
    /// driver stays unload-pending). Windows waits indefinitely.
    pub unload_wait: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            size_of_work_item: 0x58,
            verifier: Verifier::Standard,
            workers_per_queue: 2,
            max_workers_per_queue: 64,
            echo_dbgprint: false,
            unload_grace: Duration::from_millis(2000),
            unload_wait: Duration::from_secs(30),
        }
    }
}

pub(crate) const NO_DRIVER: usize = usize::MAX;
/// Driver id of the in-process pseudo-driver "host".
pub(crate) const HOST_DRIVER: usize = 0;

/// Machine state shared by every kernel thread.
pub(crate) struct Inner {
    pub config: Config,
    pub bugged: AtomicBool,
    pub bug: Mutex<Option<BugCheck>>,
    pub shutdown: AtomicBool,
    pub pool: Mutex<crate::ex::pool::PoolTable>,
    pub wi: Mutex<crate::io::workitem::WorkItems>,
    pub wi_cv: Vec<Condvar>,
    pub wi_idle: Condvar,
    pub ob: Mutex<crate::ob::Objects>,
    /// Signalled (with `ob`) when a file object is closed: releases `Driver::unload`.
    pub ob_cv: Condvar,
    pub ev: Mutex<()>,
    pub ev_cv: Condvar,
    pub dbg: Mutex<crate::dbg::DbgLog>,
    pub images: RwLock<Vec<Arc<crate::pe::Image>>>,
    pub irps: Mutex<std::collections::HashMap<usize, Arc<crate::io::irp::IrpTrack>>>,
    pub epoch: Instant,
    /// The audit of the last unload (kept when the unload bug-checks).
    pub last_audit: Mutex<Option<crate::UnloadReport>>,
}

impl Inner {
    pub fn verifier(&self) -> bool {
        self.config.verifier == Verifier::Standard
    }

    /// Record a bug check (the first one wins) and return the recorded one.
    pub fn record_bugcheck(&self, bc: &Bc) -> BugCheck {
        let addr = bc.address.unwrap_or_else(|| CALLER.with(Cell::get));
        let address = self.describe_address(addr);
        let context = CONTEXT.with(Cell::get).to_string();
        let rec = crate::verifier::finish(bc, address, context);
        let mut g = lock(&self.bug);
        if g.is_none() {
            *g = Some(rec);
            self.bugged.store(true, Ordering::SeqCst);
        }
        drop(g);
        for cv in &self.wi_cv {
            cv.notify_all();
        }
        self.wi_idle.notify_all();
        self.ev_cv.notify_all();
        lock(&self.bug).clone().expect("just recorded")
    }

    /// `image.sys+0x…` for an address inside a loaded image.
    pub fn describe_address(&self, addr: usize) -> String {
        if addr == 0 {
            return "unknown".to_string();
        }
        let images = self.images.read().unwrap_or_else(|e| e.into_inner());
        for img in images.iter() {
            if addr >= img.base && addr < img.base + img.size {
                return format!("{}+{:#x}", img.name, addr - img.base);
            }
        }
        format!("host+{addr:#x}")
    }

    /// The loaded image containing `addr`, if any.
    pub fn image_of(&self, addr: usize) -> Option<Arc<crate::pe::Image>> {
        let images = self.images.read().unwrap_or_else(|e| e.into_inner());
        images
            .iter()
            .find(|i| addr >= i.base && addr < i.base + i.size)
            .cloned()
    }

    /// Whether `addr` lies in an executable section of a loaded image: the only place a
    /// driver's work routine can be.
    pub fn is_image_code(&self, addr: usize) -> bool {
        self.image_of(addr).is_some_and(|img| {
            img.sections.iter().any(|s| {
                s.characteristics & nt_abi::pe::IMAGE_SCN_MEM_EXECUTE != 0
                    && addr >= s.start
                    && addr < s.start + s.size
            })
        })
    }

    pub fn bugcheck(&self) -> Option<BugCheck> {
        if self.bugged.load(Ordering::SeqCst) {
            lock(&self.bug).clone()
        } else {
            None
        }
    }
}

/// Lock a mutex, ignoring poisoning (a panicking host test must not wedge the machine).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Inner>>> = const { RefCell::new(None) };
    /// Return address of the most recent export call made by driver code on this thread.
    pub(crate) static CALLER: Cell<usize> = const { Cell::new(0) };
    /// What this thread is doing, for bug-check reports.
    pub(crate) static CONTEXT: Cell<&'static str> = const { Cell::new("host thread") };
    /// Id of the driver whose code this thread is running (owner of new pool blocks, items…).
    pub(crate) static DRIVER: Cell<usize> = const { Cell::new(NO_DRIVER) };
}

static FALLBACK: Mutex<Weak<Inner>> = Mutex::new(Weak::new());

/// Called by the import stubs: remember the driver's return address.
pub(crate) extern "win64" fn note_caller(ret: usize) {
    CALLER.with(|c| c.set(ret));
}

/// Park this thread forever: used after a bug check, so no driver frame is ever returned to.
pub(crate) fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// The machine this thread belongs to (a kernel thread's own, else the newest machine).
/// After a bug check, every entry from driver code parks here.
pub(crate) fn current() -> Arc<Inner> {
    let own = CURRENT.with(|c| c.borrow().clone());
    let foreign = own.is_none();
    let m = own.or_else(|| lock(&FALLBACK).upgrade());
    match m {
        Some(m) => {
            if m.bugged.load(Ordering::Relaxed) {
                if foreign {
                    // Parking a host thread would hang its caller forever.
                    eprintln!(
                        "ntsim: an export was called on a thread that is not an ntsim kernel thread \
                         after the machine bug-checked; call exports inside \
                         Machine::run_in_kernel_thread"
                    );
                    std::process::abort();
                }
                park_forever();
            }
            m
        }
        None => {
            eprintln!("ntsim: an emulated export was called on a thread with no machine");
            std::process::abort();
        }
    }
}

/// The machine of this thread, if it is an ntsim thread (no fallback, never parks).
pub(crate) fn current_no_park() -> Option<Arc<Inner>> {
    CURRENT
        .try_with(|c| c.try_borrow().ok().and_then(|b| b.clone()))
        .ok()
        .flatten()
}

/// Raise a bug check from kernel code: record it, then park this thread forever.
pub(crate) fn raise(m: &Inner, bc: Bc) -> ! {
    m.record_bugcheck(&bc);
    park_forever()
}

pub(crate) fn set_current(m: Option<Arc<Inner>>) {
    CURRENT.with(|c| *c.borrow_mut() = m);
}

/// Enter kernel-thread state on this thread.
pub(crate) fn enter_kernel(m: &Arc<Inner>, driver: usize, ctx: &'static str) {
    set_current(Some(m.clone()));
    DRIVER.with(|d| d.set(driver));
    CONTEXT.with(|c| c.set(ctx));
    CALLER.with(|c| c.set(0));
    crate::ke::irql::set(nt_abi::PASSIVE_LEVEL);
}

/// Run `f` on the calling (kernel) thread as driver `driver` in context `ctx`, restoring the
/// previous state afterwards.
pub(crate) fn with_context<R>(driver: usize, ctx: &'static str, f: impl FnOnce() -> R) -> R {
    let pd = DRIVER.with(|d| d.replace(driver));
    let pc = CONTEXT.with(|c| c.replace(ctx));
    let r = f();
    DRIVER.with(|d| d.set(pd));
    CONTEXT.with(|c| c.set(pc));
    r
}

/// Run `f` on a new ntsim kernel thread; wait for it or for a bug check.
pub(crate) fn run_kernel<T: Send + 'static>(
    m: &Arc<Inner>,
    driver: usize,
    ctx: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BugCheck> {
    if let Some(b) = m.bugcheck() {
        return Err(b);
    }
    type Slot<T> = (Mutex<Option<std::thread::Result<T>>>, Condvar);
    let slot: Arc<Slot<T>> = Arc::new((Mutex::new(None), Condvar::new()));
    let s2 = slot.clone();
    let m2 = m.clone();
    dispatch_kernel(Box::new(move || {
        enter_kernel(&m2, driver, ctx);
        let r = catch_unwind(AssertUnwindSafe(f));
        *lock(&s2.0) = Some(r);
        s2.1.notify_all();
        set_current(None);
    }));
    let mut g = lock(&slot.0);
    loop {
        if let Some(r) = g.take() {
            return match r {
                Ok(v) => match m.bugcheck() {
                    Some(b) => Err(b),
                    None => Ok(v),
                },
                Err(p) => resume_unwind(p),
            };
        }
        if let Some(b) = m.bugcheck() {
            return Err(b);
        }
        g = slot
            .1
            .wait_timeout(g, Duration::from_millis(10))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A pooled kernel thread's mailbox.
struct KSlot {
    st: Mutex<(Option<Job>, bool)>,
    cv: Condvar,
}

/// Idle kernel threads (process-wide; a job carries its machine). Host calls into the driver
/// (DriverEntry, dispatch, unload, `run_in_kernel_thread`) reuse them instead of spawning a
/// thread each time; a thread idle for 2 s exits. A thread that bug-checks parks for good.
static KPOOL: Mutex<Vec<Arc<KSlot>>> = Mutex::new(Vec::new());

const KTHREAD_IDLE: Duration = Duration::from_secs(2);

fn dispatch_kernel(job: Job) {
    let mut job = Some(job);
    loop {
        let idle = lock(&KPOOL).pop();
        let Some(slot) = idle else { break };
        let mut g = lock(&slot.st);
        if g.1 {
            continue;
        }
        g.0 = job.take();
        drop(g);
        slot.cv.notify_one();
        return;
    }
    let slot = Arc::new(KSlot {
        st: Mutex::new((job, false)),
        cv: Condvar::new(),
    });
    let spawned =
        crate::ke::fault::spawn_driver_thread("ntsim-kernel", move || kernel_thread(slot));
    if let Err(e) = spawned {
        panic!("ntsim: cannot spawn a kernel thread: {e}");
    }
}

fn kernel_thread(slot: Arc<KSlot>) {
    loop {
        let job = {
            let mut g = lock(&slot.st);
            loop {
                if let Some(j) = g.0.take() {
                    break j;
                }
                let (g2, to) = slot
                    .cv
                    .wait_timeout(g, KTHREAD_IDLE)
                    .unwrap_or_else(|e| e.into_inner());
                g = g2;
                if to.timed_out() && g.0.is_none() {
                    drop(g);
                    // Leave the pool atomically with respect to dispatchers: they pop under
                    // KPOOL and then check `exiting` under the slot lock.
                    let mut pool = lock(&KPOOL);
                    let mut g3 = lock(&slot.st);
                    if g3.0.is_none() {
                        g3.1 = true;
                        pool.retain(|s| !Arc::ptr_eq(s, &slot));
                        return;
                    }
                    drop(pool);
                    g = g3;
                }
            }
        };
        job();
        lock(&KPOOL).push(slot.clone());
    }
}

pub(crate) fn new_inner(config: Config) -> Arc<Inner> {
    crate::ke::fault::install();
    let inner = Arc::new(Inner {
        config,
        bugged: AtomicBool::new(false),
        bug: Mutex::new(None),
        shutdown: AtomicBool::new(false),
        pool: Mutex::new(Default::default()),
        wi: Mutex::new(Default::default()),
        wi_cv: (0..crate::io::workitem::NQ)
            .map(|_| Condvar::new())
            .collect(),
        wi_idle: Condvar::new(),
        ob: Mutex::new(Default::default()),
        ob_cv: Condvar::new(),
        ev: Mutex::new(()),
        ev_cv: Condvar::new(),
        dbg: Mutex::new(Default::default()),
        images: RwLock::new(Vec::new()),
        irps: Mutex::new(Default::default()),
        epoch: Instant::now(),
        last_audit: Mutex::new(None),
    });
    *lock(&FALLBACK) = Arc::downgrade(&inner);
    inner
}
