//! Kernel threads: the per-thread kernel state ([`KThread`]), how a thread enters and leaves
//! it, and the pool of kernel threads host calls run on.
//!
//! Every thread that runs driver code or emulated exports is an ntsim kernel thread: a pooled
//! kernel thread running a host call (DriverEntry, dispatch, unload, `run_in_kernel_thread`) or
//! a system worker thread. Each carries its machine: [`KThread::sys`] is the `Arc` of the
//! machine that started it, so an export always acts on the machine of the thread calling it,
//! never on a guess.
//!
//! **The current thread.** `CURRENT` is a thread-local pointer to the calling thread's
//! [`KThread`] (null on other threads). It is const-initialized (no lazy TLS set-up, no
//! allocation), so the fault handler ([`crate::ke::fault::on_fault`]) may read it in signal
//! context through [`current_ptr`]; the `KThread` it points to is owned by the [`KernelState`]
//! guard of that same thread and lives until the thread leaves kernel state, which a faulting
//! (parked) thread never does. Per-thread kernel state that a CPU model needs (a KPCR/KTHREAD
//! block, CR8) belongs in `KThread`.
//!
//! **Foreign threads.** A thread that is not an ntsim kernel thread (a host test's thread, or a
//! thread spawned from inside `run_in_kernel_thread`) has no machine. An export called there
//! prints what happened and how to fix it, then aborts the process ([`foreign_thread`]): an
//! export cannot return an error, and running it against some other machine would corrupt that
//! machine's state.
use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use nt_abi::{KIRQL, PASSIVE_LEVEL};

use crate::ids::DriverId;
use crate::machine::{System, lock};
use crate::verifier::BugCheck;

/// The kernel state of one emulated thread: what Windows keeps in the thread's KTHREAD and in
/// the KPCR of the processor running it.
pub(crate) struct KThread {
    /// The machine this thread belongs to.
    sys: Arc<System>,
    /// Current IRQL (the KPCR's Irql; CR8 on x64).
    irql: Cell<KIRQL>,
    /// Return address of the most recent export call made by driver code on this thread
    /// (recorded by the import stubs through [`note_caller`]).
    caller: Cell<usize>,
    /// What the thread is doing, for bug-check reports (`DriverEntry`, `work item routine`…).
    context: Cell<&'static str>,
    /// The driver whose code the thread is running: owner of new pool blocks, items, links.
    driver: Cell<DriverId>,
    /// KTHREAD.KernelApcDisable / SpecialApcDisable: decremented by KeEnterCriticalRegion /
    /// KeEnterGuardedRegion (`ke::apc`), and KernelApcDisable by each KMUTEX the thread comes
    /// to own ([`mutex_ownership_changed`]).
    apc_disable: Cell<(i16, i16)>,
}

impl KThread {
    pub(crate) fn sys(&self) -> &Arc<System> {
        &self.sys
    }
}

thread_local! {
    static CURRENT: Cell<*const KThread> = const { Cell::new(core::ptr::null()) };
}

/// The calling thread's [`KThread`], or null. Async-signal-safe (see the module docs).
pub(crate) fn current_ptr() -> *const KThread {
    CURRENT.try_with(Cell::get).unwrap_or(core::ptr::null())
}

/// Run `f` with the calling thread's kernel state, if it is a kernel thread.
pub(crate) fn with_thread<R>(f: impl FnOnce(&KThread) -> R) -> Option<R> {
    let p = current_ptr();
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null CURRENT points to the KThread owned by this thread's live
    // `KernelState` (it is reset before the KThread is freed), and only this thread uses it.
    Some(f(unsafe { &*p }))
}

/// A thread in kernel state: owns its [`KThread`] and makes it current; leaving (drop)
/// restores the previous state.
pub(crate) struct KernelState {
    thread: Box<KThread>,
    prev: *const KThread,
}

impl KernelState {
    /// Enter kernel state at PASSIVE_LEVEL as driver `driver`, doing `context`.
    pub(crate) fn enter(sys: Arc<System>, driver: DriverId, context: &'static str) -> Self {
        let thread = Box::new(KThread {
            sys,
            irql: Cell::new(PASSIVE_LEVEL),
            caller: Cell::new(0),
            context: Cell::new(context),
            driver: Cell::new(driver),
            apc_disable: Cell::new((0, 0)),
        });
        let prev = CURRENT.with(|c| c.replace(&*thread));
        KernelState { thread, prev }
    }
}

impl Drop for KernelState {
    fn drop(&mut self) {
        let me: *const KThread = &*self.thread;
        CURRENT.with(|c| {
            if c.get() == me {
                c.set(self.prev);
            }
        });
    }
}

/// The current thread's IRQL (PASSIVE_LEVEL on threads that are not kernel threads).
pub(crate) fn irql() -> KIRQL {
    with_thread(|t| t.irql.get()).unwrap_or(PASSIVE_LEVEL)
}

/// Set the current thread's IRQL (no effect on threads that are not kernel threads).
pub(crate) fn set_irql(v: KIRQL) {
    with_thread(|t| t.irql.set(v));
}

/// The calling thread came to own a KMUTEX (`+1`) or gave one up (`−1`): owning one disables
/// normal kernel APCs, so KernelApcDisable goes down by one per mutex owned — the same count
/// KeEnterCriticalRegion lowers (ReactOS `KiSatisfyMutantWait` / `KeReleaseMutant`; Microsoft,
/// *Bug Check 0xC4* p1 0xC5: "The APC disable count is decremented each time a driver calls
/// KeEnterCriticalRegion … or acquires a mutex").
pub(crate) fn mutex_ownership_changed(d: i16) {
    with_thread(|t| {
        let (k, s) = t.apc_disable.get();
        t.apc_disable.set((k.wrapping_sub(d), s));
    });
}

/// The driver return address recorded by the last import stub on this thread (0 if none).
pub(crate) fn caller() -> usize {
    with_thread(|t| t.caller.get()).unwrap_or(0)
}

pub(crate) fn set_caller(v: usize) {
    with_thread(|t| t.caller.set(v));
}

/// What this thread is doing, for reports.
pub(crate) fn context() -> &'static str {
    with_thread(|t| t.context.get()).unwrap_or("host thread")
}

/// The driver whose code this thread runs.
pub(crate) fn driver() -> DriverId {
    with_thread(|t| t.driver.get()).unwrap_or(DriverId::NONE)
}

/// The thread's (KernelApcDisable, SpecialApcDisable) counts ((0, 0) on other threads).
pub(crate) fn apc_disable() -> (i16, i16) {
    with_thread(|t| t.apc_disable.get()).unwrap_or((0, 0))
}

pub(crate) fn set_apc_disable(v: (i16, i16)) {
    with_thread(|t| t.apc_disable.set(v));
}

/// Called by the import stubs: remember the driver's return address.
///
/// A call made at DISPATCH_LEVEL or above from pageable driver code is the verifier's 0xD1
/// (`Hooks::on_pageable_code_at_raised_irql`).
pub(crate) extern "win64" fn note_caller(ret: usize) {
    set_caller(ret);
    let lvl = irql();
    if lvl >= nt_abi::DISPATCH_LEVEL {
        let m = current();
        if matches!(
            m.mm.classify(ret),
            crate::mm::MemClass::Image { paged: true }
        ) && let Some(bc) = m.verifier.on_pageable_code_at_raised_irql(lvl, ret)
        {
            super::bugcheck::raise(&m, bc);
        }
    }
}

/// Run `f` as driver `driver` doing `ctx`, restoring the previous driver and context after.
pub(crate) fn with_context<R>(driver: DriverId, ctx: &'static str, f: impl FnOnce() -> R) -> R {
    let prev = with_thread(|t| (t.driver.replace(driver), t.context.replace(ctx)));
    let r = f();
    if let Some((d, c)) = prev {
        with_thread(|t| {
            t.driver.set(d);
            t.context.set(c);
        });
    }
    r
}

/// Park this thread forever: used after a bug check, so no driver frame is ever returned to.
pub(crate) fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// The machine of the calling kernel thread, for the duration of one export call. Not `Send`:
/// it borrows the thread's [`KThread`], which outlives every export call made on the thread.
pub(crate) struct Cur {
    sys: *const System,
    _thread_bound: PhantomData<*const ()>,
}

impl Deref for Cur {
    type Target = System;
    fn deref(&self) -> &System {
        // SAFETY: `sys` comes from the `Arc<System>` held by this thread's KThread, which is
        // freed only when the thread leaves kernel state; a `Cur` is created by an export and
        // dropped before it returns, and it cannot move to another thread (not Send).
        unsafe { &*self.sys }
    }
}

/// The machine of the calling thread. After a bug check, every entry from driver code parks
/// here. On a thread that is not a kernel thread, see [`foreign_thread`].
pub(crate) fn current() -> Cur {
    let p = current_ptr();
    if p.is_null() {
        foreign_thread();
    }
    // SAFETY: non-null CURRENT: this thread's live KThread (see `with_thread`).
    let t = unsafe { &*p };
    if t.sys.ke.is_bugged() {
        park_forever();
    }
    Cur {
        sys: Arc::as_ptr(&t.sys),
        _thread_bound: PhantomData,
    }
}

/// The calling kernel thread's machine as an `Arc` (for starting threads that keep it).
pub(crate) fn current_arc() -> Arc<System> {
    match with_thread(|t| t.sys.clone()) {
        Some(s) => s,
        None => foreign_thread(),
    }
}

/// The documented behaviour of an export called on a thread that is not an ntsim kernel thread:
/// a message on stderr, then `abort` (the export has no machine to act on or to bug-check, and
/// cannot return an error).
pub(crate) fn foreign_thread() -> ! {
    eprintln!(
        "ntsim: an emulated export was called on a thread that is not an ntsim kernel thread, so \
         it has no machine to run on. Call exports inside Machine::run_in_kernel_thread, a work \
         item routine or driver code (a thread spawned there is not a kernel thread either)."
    );
    std::process::abort();
}

/// Run `f` on a pooled ntsim kernel thread of `sys` as driver `driver` doing `ctx`; wait for it
/// or for a bug check.
pub(crate) fn run_kernel<T: Send + 'static>(
    sys: &Arc<System>,
    driver: DriverId,
    ctx: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BugCheck> {
    if let Some(b) = sys.ke.bugcheck() {
        return Err(b);
    }
    type Slot<T> = (Mutex<Option<std::thread::Result<T>>>, Condvar);
    let slot: Arc<Slot<T>> = Arc::new((Mutex::new(None), Condvar::new()));
    let s2 = slot.clone();
    let sys2 = sys.clone();
    dispatch_kernel(Box::new(move || {
        let state = KernelState::enter(sys2, driver, ctx);
        let r = catch_unwind(AssertUnwindSafe(f));
        drop(state);
        *lock(&s2.0) = Some(r);
        s2.1.notify_all();
    }));
    let mut g = lock(&slot.0);
    loop {
        if let Some(r) = g.take() {
            return match r {
                Ok(v) => match sys.ke.bugcheck() {
                    Some(b) => Err(b),
                    None => Ok(v),
                },
                Err(p) => resume_unwind(p),
            };
        }
        if let Some(b) = sys.ke.bugcheck() {
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
/// reuse them instead of spawning a thread each time; a thread idle for 2 s exits. A thread that
/// bug-checks parks for good.
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

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use nt_abi::{POOL_FLAG_NON_PAGED, pool_tag};

    use crate::{Config, Machine, exports};

    const CHILD: &str = "NTSIM_FOREIGN_THREAD_CHILD";

    /// An export on a host thread has no machine: the documented message, then abort. Runs the
    /// call in a child process (this test binary, filtered to this test).
    #[test]
    fn an_export_on_a_foreign_thread_aborts_with_a_message() {
        if std::env::var_os(CHILD).is_some() {
            let _m = Machine::new(Config::default());
            // SAFETY: no preconditions; called on a host thread on purpose.
            let n = unsafe { exports::IoSizeofWorkItem() };
            println!("returned {n:#x}: no abort");
            return;
        }
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "ke::thread::tests::an_export_on_a_foreign_thread_aborts_with_a_message",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .expect("run the child");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "expected abort, got {} (stdout {}, stderr {stderr})",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.contains("not an ntsim kernel thread")
                && stderr.contains("Machine::run_in_kernel_thread"),
            "stderr: {stderr}"
        );
    }

    /// A kernel thread's exports act on its own machine, not on the newest one.
    #[test]
    fn exports_act_on_the_machine_of_the_calling_thread() {
        let older = Machine::new(Config::default());
        let newer = Machine::new(Config::default());
        let tag = pool_tag(*b"Mine");
        let p = older
            // SAFETY: no preconditions beyond an ntsim thread.
            .run_in_kernel_thread(move || unsafe {
                exports::ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, tag) as usize
            })
            .expect("no bug check");
        assert_eq!(older.pool_stats().outstanding_blocks, 1);
        assert_eq!(newer.pool_stats().outstanding_blocks, 0);
        older
            // SAFETY: the block allocated above, freed once, with its tag.
            .run_in_kernel_thread(move || unsafe {
                exports::ExFreePoolWithTag(p as *mut core::ffi::c_void, tag)
            })
            .expect("no bug check");
        assert_eq!(older.pool_stats().outstanding_blocks, 0);
    }
}
