//! Asynchronous (overlapped) requests and what the I/O manager does with requests still
//! pending when their handle is closed.
//!
//! **Overlapped requests.** On a handle opened for overlapped I/O, `DeviceIoControl`,
//! `ReadFile` and `WriteFile` return as soon as the dispatch routine returns: with
//! STATUS_PENDING (ERROR_IO_PENDING) the IRP stays in flight and its completion is observed
//! later through the OVERLAPPED's event / `GetOverlappedResult` (Microsoft, *Synchronous and
//! Asynchronous I/O*, <https://learn.microsoft.com/windows/win32/fileio/synchronous-and-asynchronous-i-o>;
//! *IoMarkIrpPending*). ntsim parks such an IRP here ([`AsyncIrp`]): its completion (status,
//! Information, the output copied back by `IofCompleteRequest`) is read when the caller polls
//! or waits, and the IRP with its buffers is released then (the I/O manager's completion APC
//! in the requesting thread, IopCompleteRequest, is where Windows frees it).
//!
//! **Cancel.** `CancelIoEx(handle, overlapped)` is `IoCancelIrp` on that IRP; `CancelIo` on
//! every IRP of the handle (Microsoft, *CancelIoEx*, *CancelIo*, *Canceling IRPs*).
//!
//! **Close with requests pending.** When the last handle to a file object is closed the I/O
//! manager sends IRP_MJ_CLEANUP — the driver is expected to complete (cancel) the IRPs it
//! holds for that file object there — and IRP_MJ_CLOSE only when the last reference to the
//! file object goes, which a pending IRP holds (Microsoft, *IRP_MJ_CLEANUP*, *IRP_MJ_CLOSE*).
//! A requesting thread that exits has its remaining IRPs cancelled by `IoCancelThreadIo`
//! (ReactOS `IoCancelThreadIo`: IoCancelIrp on each, then waits for them; Windows waits up to
//! five minutes and then disassociates the IRP from the thread). ntsim's requesting threads end
//! with the handle, so after IRP_MJ_CLEANUP ntsim cancels what is still pending as thread
//! rundown would, waits up to [`RUNDOWN_WAIT`] for it, then sends IRP_MJ_CLOSE. IRPs the driver
//! still does not complete keep the file object (and so the device, and the unload) waiting,
//! as on Windows; IRP_MJ_CLOSE follows when the last one completes.
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nt_abi::*;

use super::irp::{self, Built, Completion, IrpTrack, Request};
use super::{OpenFile, call_driver, close_file};
use crate::ids::FileId;
use crate::ke::thread::run_kernel;
use crate::machine::{System, lock};
use crate::verifier::BugCheck;

/// How long closing a handle waits for the IRPs it cancelled at rundown.
pub const RUNDOWN_WAIT: Duration = Duration::from_secs(5);

/// The I/O manager's overlapped IRPs in flight, by IRP address.
#[derive(Default)]
pub(crate) struct Overlapped {
    map: Mutex<HashMap<usize, Arc<AsyncIrp>>>,
}

/// An IRP the I/O manager owns (raw pointers into ntsim-owned memory, moved between the
/// kernel threads that serve one machine).
struct Owned(Built);
// SAFETY: a `Built` is plain addresses of ntsim-owned allocations; whoever holds it (under
// `AsyncIrp::built`) is the only one to free them.
unsafe impl Send for Owned {}

/// An overlapped IRP the dispatch routine left pending.
pub struct AsyncIrp {
    pub(crate) irp: usize,
    pub(crate) file: FileId,
    track: Arc<IrpTrack>,
    /// The IRP and its buffers until they are released (once), and how many cancels are
    /// using the IRP right now (it is not released while any is).
    built: Mutex<(Option<Owned>, u32)>,
    unpinned: Condvar,
}

impl AsyncIrp {
    /// The completion, once `IofCompleteRequest` has run.
    pub(crate) fn completion(&self) -> Option<Completion> {
        lock(&self.track.state).completed.clone()
    }
}

thread_local! {
    /// The file object whose next request the calling kernel thread sends overlapped.
    static WANT: Cell<usize> = const { Cell::new(0) };
    /// The IRP [`park`] took from `call_driver`.
    static PARKED: Cell<Option<Built>> = const { Cell::new(None) };
    /// The status the last dispatch routine returned on this thread.
    static DISPATCH_STATUS: Cell<NTSTATUS> = const { Cell::new(0) };
}

/// `call_driver`'s hook: the request is an overlapped one (its dispatch returned
/// STATUS_PENDING): do not wait.
pub(crate) fn wants(r: &Request<'_>) -> bool {
    !r.file.is_null() && WANT.with(Cell::get) == r.file as usize
}

/// `call_driver`'s hook: keep the pending IRP for [`start`] and return "pending".
pub(crate) fn park(b: Built) -> Completion {
    PARKED.with(|p| p.set(Some(b)));
    Completion {
        status: STATUS_PENDING,
        information: 0,
        output: Vec::new(),
    }
}

/// `call_driver`'s hook: what the dispatch routine returned.
pub(crate) fn note_dispatch_status(s: NTSTATUS) {
    DISPATCH_STATUS.with(|d| d.set(s));
}

/// How an overlapped request started.
pub(crate) enum Started {
    /// Completed before (or without) pending: the final result and the dispatch status.
    Done(Completion, NTSTATUS),
    /// In flight.
    Pending(Arc<AsyncIrp>),
}

/// Send `r` on `file` overlapped (kernel-thread side).
pub(crate) fn start(m: &System, file: OpenFile, r: &Request<'_>) -> Started {
    WANT.with(|w| w.set(file.file.ptr() as usize));
    DISPATCH_STATUS.with(|d| d.set(0));
    let c = call_driver(m, r);
    WANT.with(|w| w.set(0));
    match PARKED.with(Cell::take) {
        Some(b) => {
            let a = Arc::new(AsyncIrp {
                irp: b.irp as usize,
                file: file.file,
                track: b.track.clone(),
                built: Mutex::new((Some(Owned(b)), 0)),
                unpinned: Condvar::new(),
            });
            lock(&m.io.overlapped.map).insert(a.irp, a.clone());
            Started::Pending(a)
        }
        None => Started::Done(c, DISPATCH_STATUS.with(Cell::get)),
    }
}

/// Release a completed IRP and its buffers (once; kernel-thread side).
pub(crate) fn finish(m: &System, a: &AsyncIrp) {
    let mut g = lock(&a.built);
    while g.1 > 0 {
        g = a.unpinned.wait(g).unwrap_or_else(|e| e.into_inner());
    }
    let b = g.0.take();
    drop(g);
    if let Some(Owned(b)) = b {
        lock(&m.io.overlapped.map).remove(&a.irp);
        irp::free(m, b);
    }
}

/// `IoCancelIrp` on `a` unless it has completed or been released (kernel-thread side). True if
/// a cancel routine was called.
pub(crate) fn cancel(m: &System, a: &AsyncIrp) -> bool {
    {
        let mut g = lock(&a.built);
        if g.0.is_none() || a.completion().is_some() {
            return false;
        }
        // Pinned: `finish` (the only releaser) waits until the cancel is done with the IRP.
        g.1 += 1;
    }
    // No lock is held while the driver's cancel routine runs.
    let called = super::cancel::cancel_irp(m, a.irp as *mut IRP);
    lock(&a.built).1 -= 1;
    a.unpinned.notify_all();
    called
}

/// The overlapped IRPs of `file` not yet released.
pub(crate) fn of_file(m: &System, file: FileId) -> Vec<Arc<AsyncIrp>> {
    lock(&m.io.overlapped.map)
        .values()
        .filter(|a| a.file == file)
        .cloned()
        .collect()
}

/// Wait for `a` (host side, polling: completion may come from any thread). None on timeout.
pub(crate) fn wait(
    sys: &Arc<System>,
    a: &AsyncIrp,
    timeout: Duration,
) -> Result<Option<Completion>, BugCheck> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(b) = sys.ke.bugcheck() {
            return Err(b);
        }
        if let Some(c) = a.completion() {
            return Ok(Some(c));
        }
        let now = Instant::now();
        if now >= end {
            return Ok(None);
        }
        let g = lock(&a.track.state);
        if g.completed.is_none() {
            let _ = a
                .track
                .cv
                .wait_timeout(g, (end - now).min(Duration::from_millis(20)));
        }
    }
}

/// Close `f` (kernel-thread side) with IRP_MJ_CLEANUP, the rundown of its pending overlapped
/// IRPs, and IRP_MJ_CLOSE once none is pending (see the module docs).
pub(crate) fn close(sys: &Arc<System>, f: OpenFile) {
    let m: &System = sys;
    let pending = of_file(m, f.file);
    if pending.is_empty() {
        close_file(m, f, true);
        return;
    }
    send(m, f, IRP_MJ_CLEANUP);
    let end = Instant::now() + RUNDOWN_WAIT;
    for a in &pending {
        if a.completion().is_none() {
            cancel(m, a);
        }
    }
    let mut left = Vec::new();
    for a in pending {
        let now = Instant::now();
        let done = a.completion().is_some()
            || wait(sys, &a, end.saturating_duration_since(now)).is_ok_and(|c| c.is_some());
        if done {
            finish(m, &a);
        } else {
            left.push(a);
        }
    }
    if left.is_empty() {
        send(m, f, IRP_MJ_CLOSE);
        close_file(m, f, false);
        return;
    }
    // The file object stays referenced by the IRPs still pending: IRP_MJ_CLOSE when the last
    // one completes.
    let sys = sys.clone();
    std::thread::spawn(move || {
        for a in &left {
            loop {
                match wait(&sys, a, Duration::from_secs(1)) {
                    Err(_) => return,
                    Ok(Some(_)) => break,
                    Ok(None) => {}
                }
            }
        }
        let s2 = sys.clone();
        let _ = run_kernel(&sys, crate::ids::DriverId::NONE, "I/O manager", move || {
            for a in &left {
                finish(&s2, a);
            }
            send(&s2, f, IRP_MJ_CLOSE);
            close_file(&s2, f, false);
        });
    });
}

fn send(m: &System, f: OpenFile, mj: u8) {
    call_driver(
        m,
        &Request {
            mj,
            device: f.device.ptr(),
            file: f.file.ptr(),
            code: 0,
            input: &[],
            out_len: 0,
            byte_offset: 0,
        },
    );
}
