//! The library's asynchronous (overlapped) requests: [`Handle::device_io_control_overlapped`],
//! [`Handle::read_overlapped`], [`Handle::write_overlapped`] return a [`Pending`] as soon as
//! the dispatch routine returns, like `DeviceIoControl` / `ReadFile` / `WriteFile` with an
//! OVERLAPPED on a handle opened with FILE_FLAG_OVERLAPPED; [`Handle::cancel_io`] is
//! `CancelIo`. See `io::overlapped` for the I/O manager's side and the README for how closing
//! a handle treats requests still pending.
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nt_abi::*;

use crate::ids::DriverId;
use crate::io::overlapped::{self, AsyncIrp, Started};
use crate::ke::thread::run_kernel;
use crate::machine::System;
use crate::{BugCheck, Handle, IoResult, io};

enum State {
    /// The request completed before its dispatch routine returned (or was refused).
    Done(IoResult),
    /// The dispatch routine returned STATUS_PENDING and the IRP is in flight.
    InFlight(Arc<AsyncIrp>),
}

/// An overlapped request: its IRP's completion can be polled ([`Pending::try_result`]),
/// waited for ([`Pending::wait`]) and cancelled ([`Pending::cancel`], `CancelIoEx`).
/// `Send + Sync`. Dropping it does not cancel the request; closing its handle does what the
/// I/O manager does at rundown (see [`Handle::close`]).
pub struct Pending {
    sys: Arc<System>,
    dispatch_status: NTSTATUS,
    state: State,
}

fn to_result(c: io::irp::Completion) -> IoResult {
    IoResult {
        status: c.status,
        information: c.information,
        output: c.output,
    }
}

impl Pending {
    /// What the dispatch routine returned: STATUS_PENDING when the call "failed" with
    /// ERROR_IO_PENDING and completion comes later; otherwise the request completed
    /// synchronously (or was refused by the I/O manager) and the result is already there.
    pub fn dispatch_status(&self) -> NTSTATUS {
        self.dispatch_status
    }

    /// Whether the dispatch routine returned STATUS_PENDING (the call "failed" with
    /// ERROR_IO_PENDING). The IRP may have completed on another thread before the dispatch
    /// routine returned; the result is then available at once.
    pub fn returned_pending(&self) -> bool {
        self.dispatch_status == STATUS_PENDING
    }

    /// The IRP's address while it was still in flight when the dispatch routine returned (None
    /// when it had completed by then).
    pub fn irp(&self) -> Option<usize> {
        match &self.state {
            State::InFlight(a) => Some(a.irp),
            State::Done(_) => None,
        }
    }

    /// The result if the IRP has completed (`HasOverlappedIoCompleted` +
    /// `GetOverlappedResult(bWait = FALSE)`), else None. Releases the IRP once it completed.
    pub fn try_result(&self) -> Option<IoResult> {
        match &self.state {
            State::Done(r) => Some(r.clone()),
            State::InFlight(a) => {
                let c = a.completion()?;
                self.release(a);
                Some(to_result(c))
            }
        }
    }

    /// Wait up to `timeout` for completion (`GetOverlappedResultEx`): `Ok(None)` on timeout,
    /// `Err` if the machine bug-checks meanwhile.
    pub fn wait(&self, timeout: Duration) -> Result<Option<IoResult>, BugCheck> {
        match &self.state {
            State::Done(r) => Ok(Some(r.clone())),
            State::InFlight(a) => {
                let c = overlapped::wait(&self.sys, a, timeout)?;
                if c.is_some() {
                    self.release(a);
                }
                Ok(c.map(to_result))
            }
        }
    }

    /// `CancelIoEx` for this request: `IoCancelIrp` on its IRP. `Ok(true)` if a cancel routine
    /// was called; `Ok(false)` if the IRP had none (it stays pending, with `Irp->Cancel` set,
    /// until the driver completes it) or has already completed. The result still comes
    /// through [`Pending::wait`] (STATUS_CANCELLED if the driver cancelled it).
    pub fn cancel(&self) -> Result<bool, BugCheck> {
        match &self.state {
            State::Done(_) => Ok(false),
            State::InFlight(a) => {
                let (m, a) = (self.sys.clone(), a.clone());
                run_kernel(&self.sys, DriverId::NONE, "I/O manager", move || {
                    overlapped::cancel(&m, &a)
                })
            }
        }
    }

    fn release(&self, a: &Arc<AsyncIrp>) {
        let (m, a) = (self.sys.clone(), a.clone());
        let _ = run_kernel(&self.sys, DriverId::NONE, "I/O manager", move || {
            overlapped::finish(&m, &a)
        });
    }
}

impl Handle {
    /// Overlapped `DeviceIoControl`: returns when the dispatch routine returns. The access
    /// check is the synchronous call's (STATUS_ACCESS_DENIED, completed at once).
    pub fn device_io_control_overlapped(
        &self,
        code: u32,
        input: &[u8],
        output_len: usize,
    ) -> Result<Pending, BugCheck> {
        let allowed = io::ioctl_allowed(code, self.granted);
        self.request_overlapped(IRP_MJ_DEVICE_CONTROL, code, input, output_len, 0, allowed)
    }

    /// Overlapped `ReadFile` of `length` bytes at `byte_offset`.
    pub fn read_overlapped(&self, byte_offset: i64, length: usize) -> Result<Pending, BugCheck> {
        let allowed = self.granted & FILE_READ_DATA != 0;
        self.request_overlapped(IRP_MJ_READ, 0, &[], length, byte_offset, allowed)
    }

    /// Overlapped `WriteFile` of `data` at `byte_offset`.
    pub fn write_overlapped(&self, byte_offset: i64, data: &[u8]) -> Result<Pending, BugCheck> {
        let allowed = self.granted & FILE_WRITE_DATA != 0;
        self.request_overlapped(IRP_MJ_WRITE, 0, data, 0, byte_offset, allowed)
    }

    /// `CancelIo`: `IoCancelIrp` on every overlapped request of this handle still in flight;
    /// returns how many had a cancel routine called.
    pub fn cancel_io(&self) -> Result<usize, BugCheck> {
        let (m, file) = (self.sys.clone(), self.file.file);
        run_kernel(&self.sys, DriverId::NONE, "I/O manager", move || {
            overlapped::of_file(&m, file)
                .iter()
                .filter(|a| overlapped::cancel(&m, a))
                .count()
        })
    }

    fn request_overlapped(
        &self,
        mj: u8,
        code: u32,
        input: &[u8],
        output_len: usize,
        byte_offset: i64,
        allowed: bool,
    ) -> Result<Pending, BugCheck> {
        if let Some(b) = self.sys.ke.bugcheck() {
            return Err(b);
        }
        let refused = |status| Pending {
            sys: self.sys.clone(),
            dispatch_status: status,
            state: State::Done(IoResult {
                status,
                information: 0,
                output: Vec::new(),
            }),
        };
        if self.closed.load(Ordering::SeqCst) {
            return Ok(refused(STATUS_INVALID_HANDLE));
        }
        if !allowed {
            return Ok(refused(STATUS_ACCESS_DENIED));
        }
        let (m, input, file) = (self.sys.clone(), input.to_vec(), self.file);
        let started = run_kernel(&self.sys, DriverId::NONE, "I/O manager", move || {
            overlapped::start(
                &m,
                file,
                &io::irp::Request {
                    mj,
                    device: file.device.ptr(),
                    file: file.file.ptr(),
                    code,
                    input: &input,
                    out_len: output_len,
                    byte_offset,
                },
            )
        })?;
        Ok(match started {
            Started::Done(c, ds) => Pending {
                sys: self.sys.clone(),
                dispatch_status: ds,
                state: State::Done(to_result(c)),
            },
            Started::Pending(a) => Pending {
                sys: self.sys.clone(),
                dispatch_status: STATUS_PENDING,
                state: State::InFlight(a),
            },
        })
    }
}
