//! The composition root: the machine's configuration and [`System`], which holds one instance
//! of each subsystem. Each subsystem keeps its state private behind a small `pub(crate)` API;
//! this file only builds them and wires the two upward notifications a lower layer needs (the
//! bug-check waker of `ke`, the pool-free hook of `ex`) as plain function pointers, so no lower
//! layer imports a higher one. The layering and the lock order are documented in `lib.rs`.
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

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

/// One emulated machine: every subsystem's state.
pub(crate) struct System {
    pub(crate) config: Config,
    pub(crate) verifier: crate::verifier::Hooks,
    pub(crate) ke: crate::ke::Ke,
    pub(crate) mm: crate::mm::Mm,
    pub(crate) ex: crate::ex::Ex<crate::io::workitem::IoWork>,
    pub(crate) ob: crate::ob::Ob,
    pub(crate) io: crate::io::Io,
    pub(crate) dbg: crate::dbg::Dbg,
}

/// After a bug check: wake the threads that wait in the executive and the I/O manager, so they
/// see it (and park, or return `Err` to their host caller).
fn wake_after_bugcheck(sys: &System) {
    sys.ex.workers.wake_all();
    sys.io.wake_all();
}

/// Lock a mutex, ignoring poisoning (a panicking host test must not wedge the machine).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn new_system(config: Config) -> Arc<System> {
    crate::ke::fault::install();
    Arc::new(System {
        verifier: crate::verifier::Hooks::new(config.verifier == Verifier::Standard),
        ke: crate::ke::Ke::new(wake_after_bugcheck),
        mm: crate::mm::Mm::default(),
        ex: crate::ex::Ex::new(crate::io::workitem::on_pool_free),
        ob: crate::ob::Ob::default(),
        io: crate::io::Io::default(),
        dbg: crate::dbg::Dbg::new(config.echo_dbgprint),
        config,
    })
}
