//! # ntsim — run a Windows WDM driver `.sys` on Linux with ntoskrnl semantics
//!
//! ntsim maps a real x64 NATIVE PE image into this process, binds its `ntoskrnl.exe` imports to
//! Rust `extern "win64"` implementations ([`exports`]), calls `DriverEntry`, routes
//! open / DeviceIoControl / close through real IRPs laid out as on Windows, runs work items on
//! system worker threads per `WORK_QUEUE_TYPE`, and enforces Driver-Verifier-style rules. A rule
//! violation is a *bug check*: the machine stops, the faulting thread parks forever (no driver
//! frame is ever returned into), and every host call returns `Err(BugCheck)`.
//!
//! ## Library API
//!
//! ```text
//! Config { size_of_work_item: u32 /*0x58*/,
//!          verifier: Verifier::{Standard, Off, Custom(VerifierFlags { special_pool, … })},
//!          special_pool: SpecialPoolMode::{Overrun, Underrun},
//!          workers_per_queue, echo_dbgprint, unload_grace, unload_wait } + Default
//! Machine::new(Config) -> Machine
//! machine.load_driver(path) -> Result<Driver, LoadError>   // LoadError::MissingImports(all names) …
//! driver.start() -> Result<NTSTATUS, BugCheck>              // DriverEntry
//! machine.open(r"\\.\WdmWorkItem", access_mask) -> Result<Handle, OpenError>
//! handle.device_io_control(code, &input, output_len) -> Result<IoResult, BugCheck>
//!                                      // &self, Send + Sync: call from many host threads at once
//! handle.device_io_control_overlapped(code, &input, output_len) -> Result<Pending, BugCheck>
//! handle.read_overlapped(offset, len) / write_overlapped(offset, &data) -> Result<Pending, _>
//!                                      // return when the dispatch routine returns
//! pending.returned_pending() / dispatch_status() / try_result() -> Option<IoResult>
//! pending.wait(timeout) -> Result<Option<IoResult>, BugCheck>   // None: timed out
//! pending.cancel() -> Result<bool, BugCheck>                     // CancelIoEx (IoCancelIrp)
//! handle.cancel_io() -> Result<usize, BugCheck>                  // CancelIo
//! handle.close() -> Result<(), BugCheck>   // CLEANUP, rundown of pending requests, CLOSE
//! driver.unload() -> Result<UnloadReport, UnloadError>      // unload-pending, wait for the
//!                  // last handle to close, DriverUnload, audit; UnloadError::{BugCheck(..),
//!                  // OpenHandles(Vec<OpenDevice>)} (handles still open after unload_wait)
//! driver.audit() -> UnloadReport                             // what it owns now
//! machine.last_unload_audit() -> Option<UnloadReport>        // also after 0x62/0xCE
//! machine.bugcheck() -> Option<BugCheck>
//! machine.dbgprint_lines() -> Vec<String>                   // what passed the DbgPrint filter
//! machine.dbgprint_filtered() -> u64                         // what it kept out
//! machine.debugger_events() -> Vec<DebuggerEvent>            // with Config::debugger
//! Report { .. }.to_json() / .to_human()                      // what the CLI prints
//! ```
//!
//! In-process use without a PE (tests of code that calls the exports directly):
//!
//! ```text
//! machine.host_driver() -> HostDriver { driver_object(), device_object() }   // pseudo-driver "host"
//! machine.run_in_kernel_thread(|| /* calls to ntsim::exports::IoInitializeWorkItem etc. */)
//!     -> Result<T, BugCheck>      // PASSIVE_LEVEL ntsim kernel thread; Err if a bug check happened
//! machine.wait_work_items_idle(timeout) -> bool
//! machine.audit() -> UnloadReport                            // what "host" still owns
//! machine.pool_stats() -> PoolStats
//! ntsim::exports::{IoInitializeWorkItem, ExAllocatePool2, …}  // every emulated export
//! ntsim::exports::table() / lookup(name) / names()
//! ```
//!
//! `Driver::unload` stops the driver as Windows stops a legacy driver: unload-pending first
//! (new opens of its devices fail with `STATUS_NO_SUCH_DEVICE`), DriverUnload only once the last
//! handle to its devices is closed (waiting up to `Config::unload_wait`, else
//! [`UnloadError::OpenHandles`]); see [`Driver::unload`].
//!
//! Exit codes and the JSON report of the `ntsim` CLI are documented in `src/main.rs` and the
//! crate README; verifier rules and their parameters in [`verifier`].
//!
//! ## Structure: subsystems, layers, lock order
//!
//! ntsim is shaped like the kernel it models. Each subsystem owns its state privately behind a
//! small `pub(crate)` API; `machine.rs` (the composition root) holds one of each in `System`.
//!
//! | layer | module | owns |
//! |---|---|---|
//! | bottom | [`mm`] | loaded-module list, image mappings and stubs (loader: [`pe`]), address classes |
//! | bottom | [`ke`] | kernel threads and their state (`ke::thread`: IRQL, driver, context, machine), bug-check state, events and waits, spin locks, time, CPU faults (`ke::fault`) |
//! | middle | [`ex`] | pool (`ex::pool`), system worker queues and threads (`ex::worker`) |
//! | middle | [`ob`] | object headers and reference counts, device names, symbolic links |
//! | top | [`io`] | drivers and their lifecycle (`io::driver`), devices, files, IRPs (`io::irp`), work items as an IO_WORKITEM state machine over `ex` worker queues (`io::workitem`) |
//! | leaf | [`verifier`] | bug-check records and the verifier's hooks the layers call (`on_pool_alloc`, `on_pool_free`, `on_work_item_init`, `on_irp_complete`, …) |
//! | leaf | [`rtl`], [`dbg`] | strings; DbgPrint and its log |
//!
//! A layer imports only layers below it (`ke` may name addresses through `mm` in reports; `ex`
//! and `ob` use `ke`/`mm`; `io` uses all); a unit test (`layering`) enforces it on the sources.
//! The two places where a lower layer must reach up are function pointers registered by the
//! composition root: `ke`'s bug-check waker and `ex`'s pool-free hook (the I/O manager checks
//! work items in freed pool there). Ids are typed (`DriverId`, `DeviceId`, `FileId`, `ItemId`,
//! `ObjectId`), and routines are stored as typed function pointers.
//!
//! **Lock order.** A thread holding a lock may take only locks further down this list:
//!
//! 1. `io.db` — the I/O database (driver list, device open counts); `Driver::unload` waits on it;
//! 2. `ob` namespace — object table, device names, links;
//! 3. `io.items` — the work-item table;
//! 4. `ex` worker queue locks (one per queue; never two at once);
//! 5. `ex` pool table;
//! 6. `io.irps` and an IRP's completion state (an overlapped IRP's release state, then its
//!    completion state);
//! 7. leaves: `mm` loaded-module list, `ke` dispatcher lock (event waits), the bug-check
//!    record, the DbgPrint log; the process-wide kernel-thread pool (list, then a mailbox).
//!
//! In practice only 1 → 2 nests (opening a device and the unload wait read the device list
//! under the database lock); every other lock is taken alone. No lock is held while a driver
//! routine runs, and none while a bug check is raised.
//!
//! **Threads.** Each kernel thread carries its machine (`ke::thread`). Exports must be called
//! on ntsim threads (inside `run_in_kernel_thread`, work-item routines,
//! or driver code): a bug check parks the calling thread forever, which must never be a test's
//! main thread. An export called on any other thread (a host thread, or one spawned inside
//! `run_in_kernel_thread`) has no machine: ntsim prints what happened and aborts the process.
#![allow(clippy::result_large_err)]

pub mod bench;
pub mod data;
pub mod dbg;
pub mod ex;
pub mod exports;
mod ids;
pub mod imports;
pub mod io;
pub mod json;
pub mod ke;
mod machine;
pub mod mm;
pub mod ob;
pub mod pe;
mod pending;
mod ps;
pub mod report;
pub mod rtl;
pub mod verifier;

#[cfg(test)]
mod layering;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use dbg::DbgFilter;
pub use dbg::kd::DebuggerEvent;
pub use ex::pool::{LeakedBlock, PoolStats};
use ids::{DeviceId, DriverId, DriverObj, FileId};
pub use io::driver::{OpenDevice, UnloadError, UnloadReport};
pub use io::workitem::PendingItem;
use ke::thread::run_kernel;
pub use machine::{Config, SpecialPoolMode, Verifier, VerifierFlags};
use machine::{System, lock};
use nt_abi::*;
pub use pe::LoadError;
pub use pending::Pending;
pub use report::{IoctlRecord, OverlappedRecord, Report, Verdict};
pub use verifier::BugCheck;

/// The emulated machine.
pub struct Machine {
    sys: Arc<System>,
    host: Mutex<Option<HostDriver>>,
}

/// Why `open` failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    Status(NTSTATUS),
    BugCheck(BugCheck),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Status(s) => write!(f, "open failed: {}", status_text(*s)),
            OpenError::BugCheck(b) => write!(f, "{b}"),
        }
    }
}

impl std::error::Error for OpenError {}

/// `NAME (0x…)` for an NTSTATUS.
pub fn status_text(s: NTSTATUS) -> String {
    match status_name(s) {
        Some(n) => format!("{n} ({:#010x})", s as u32),
        None => format!("{:#010x}", s as u32),
    }
}

/// Result of a DeviceIoControl.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoResult {
    pub status: NTSTATUS,
    pub information: usize,
    /// The first `information` bytes of the output buffer (empty on NT_ERROR statuses).
    pub output: Vec<u8>,
}

/// The in-process pseudo-driver "host".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostDriver {
    driver_object: DriverObj,
    device_object: DeviceId,
}

impl HostDriver {
    pub fn driver_object(&self) -> *mut DRIVER_OBJECT {
        self.driver_object.ptr()
    }
    pub fn device_object(&self) -> *mut DEVICE_OBJECT {
        self.device_object.ptr()
    }
}

/// A loaded driver.
pub struct Driver {
    sys: Arc<System>,
    id: DriverId,
    object: DriverObj,
    image: Arc<pe::Image>,
}

/// An open handle to a device. `Send + Sync`: IOCTLs may be issued concurrently.
pub struct Handle {
    sys: Arc<System>,
    file: io::OpenFile,
    granted: u32,
    closed: AtomicBool,
}

impl Machine {
    pub fn new(config: Config) -> Machine {
        let sys = machine::new_system(config);
        let (id, _) = io::driver::create_driver_object(&sys, "ntsim_host", None);
        debug_assert_eq!(id, DriverId::HOST);
        Machine {
            sys,
            host: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &Config {
        &self.sys.config
    }

    /// Map a driver image and create its DRIVER_OBJECT. Nothing in it runs yet.
    pub fn load_driver(&self, path: impl AsRef<Path>) -> Result<Driver, LoadError> {
        let path = path.as_ref();
        let debugger = self.sys.config.debugger;
        let img = pe::load(
            path,
            &|name| exports::binding(name, debugger),
            ke::thread::note_caller as *const () as usize,
        )?;
        let img = Arc::new(img);
        self.sys.mm.add_image(img.clone());
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "driver".into());
        let (id, object) = io::driver::create_driver_object(&self.sys, &stem, Some(img.clone()));
        Ok(Driver {
            sys: self.sys.clone(),
            id,
            object,
            image: img,
        })
    }

    /// Open a device by `\\.\Name` (or `\Device\Name`) with `access` (FILE_READ_DATA,
    /// GENERIC_READ | GENERIC_WRITE, …). Sends IRP_MJ_CREATE.
    pub fn open(&self, path: &str, access: u32) -> Result<Handle, OpenError> {
        let granted = io::granted_access(access);
        let m = self.sys.clone();
        let p = path.to_string();
        let r = run_kernel(&self.sys, DriverId::NONE, "I/O manager", move || {
            io::open(&m, &p, granted)
        });
        match r {
            Err(b) => Err(OpenError::BugCheck(b)),
            Ok(Err(s)) => Err(OpenError::Status(s)),
            Ok(Ok(file)) => Ok(Handle {
                sys: self.sys.clone(),
                file,
                granted,
                closed: AtomicBool::new(false),
            }),
        }
    }

    pub fn bugcheck(&self) -> Option<BugCheck> {
        self.sys.ke.bugcheck()
    }

    /// Every complete DbgPrint line so far (plus a trailing partial line, if any).
    pub fn dbgprint_lines(&self) -> Vec<String> {
        self.sys.dbg.lines()
    }

    /// How many DbgPrint messages the component/level filter kept out of
    /// [`Machine::dbgprint_lines`] (see `Config::dbg_filter`).
    pub fn dbgprint_filtered(&self) -> u64 {
        self.sys.dbg.filtered()
    }

    /// What the attached kernel debugger saw (`Config::debugger`): breakpoints, assertions,
    /// prompts, in order. Empty without a debugger.
    pub fn debugger_events(&self) -> Vec<DebuggerEvent> {
        self.sys.dbg.kd.events()
    }

    /// The pseudo-driver "host" and its device `\Device\NtsimHost` (created on first use).
    pub fn host_driver(&self) -> Result<HostDriver, BugCheck> {
        let mut g = lock(&self.host);
        if let Some(h) = *g {
            return Ok(h);
        }
        let drv = io::driver::driver_object(&self.sys, DriverId::HOST)
            .expect("the host driver is created with the machine");
        let dev = run_kernel(&self.sys, DriverId::HOST, "host kernel thread", move || {
            let mut name = rtl::wide("\\Device\\NtsimHost");
            let mut us = UNICODE_STRING {
                Length: 0,
                MaximumLength: 0,
                Buffer: core::ptr::null_mut(),
            };
            let mut dev: *mut DEVICE_OBJECT = core::ptr::null_mut();
            // SAFETY: `name` is NUL-terminated and outlives `us`; `us` is a writable local.
            unsafe { exports::RtlInitUnicodeString(&mut us, name.as_mut_ptr()) };
            // SAFETY: the host driver's live object, a valid name, a writable out-pointer.
            let st = unsafe {
                exports::IoCreateDevice(drv.ptr(), 0, &mut us, FILE_DEVICE_UNKNOWN, 0, 0, &mut dev)
            };
            assert_eq!(st, STATUS_SUCCESS, "IoCreateDevice for the host device");
            // SAFETY: `dev` was just created; clearing DO_DEVICE_INITIALIZING as DriverEntry's
            // caller does.
            unsafe { (*dev).Flags &= !DO_DEVICE_INITIALIZING };
            DeviceId::from_ptr(dev)
        })?;
        let h = HostDriver {
            driver_object: drv,
            device_object: dev,
        };
        *g = Some(h);
        Ok(h)
    }

    /// Run `f` on a new ntsim kernel thread at PASSIVE_LEVEL as the "host" driver. Returns
    /// `Err(BugCheck)` if the machine bug-checks before `f` returns (in `f` or in any work item).
    /// A panic in `f` is propagated.
    pub fn run_in_kernel_thread<T, F>(&self, f: F) -> Result<T, BugCheck>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        run_kernel(&self.sys, DriverId::HOST, "host kernel thread", f)
    }

    /// Wait until no work item (of any driver) is queued or running. False on timeout or bug
    /// check.
    pub fn wait_work_items_idle(&self, timeout: Duration) -> bool {
        io::workitem::wait_idle(&self.sys, None, timeout)
    }

    /// What the pseudo-driver "host" still owns (pool, devices other than NtsimHost, links,
    /// queued/running and initialized work items).
    pub fn audit(&self) -> UnloadReport {
        let host_dev = lock(&self.host).map(|h| h.device_object.0);
        let mut r = io::driver::collect_audit(&self.sys, DriverId::HOST);
        if let Some(d) = host_dev {
            let name = "\\Device\\NtsimHost".to_string();
            r.devices
                .retain(|n| *n != name && *n != format!("<unnamed>@{d:#x}"));
        }
        r.unload_routine = true;
        r
    }

    /// Pool statistics over every driver.
    pub fn pool_stats(&self) -> PoolStats {
        self.sys.ex.pool.stats()
    }

    /// The audit of the most recent `Driver::unload`, also when the unload bug-checked (0x62,
    /// 0xCE): what the driver still owned after DriverUnload returned.
    pub fn last_unload_audit(&self) -> Option<UnloadReport> {
        lock(&self.sys.io.last_audit).clone()
    }

    /// Number of work-item routines that have returned so far.
    pub fn work_item_routines_run(&self) -> u64 {
        self.sys.io.items.routines_run()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.sys.ex.workers.shutdown();
        self.sys.ke.shutdown();
    }
}

impl Driver {
    /// The mapped image (base, size, sections, bound imports).
    pub fn image(&self) -> &pe::Image {
        &self.image
    }

    pub fn driver_object(&self) -> *mut DRIVER_OBJECT {
        self.object.ptr()
    }

    /// What the driver owns right now (pool, devices, links, work items), without unloading.
    pub fn audit(&self) -> UnloadReport {
        io::driver::audit(&self.sys, self.id, self.object)
    }

    /// Call DriverEntry(DriverObject, RegistryPath) on a kernel thread.
    pub fn start(&self) -> Result<NTSTATUS, BugCheck> {
        let svc = self.image.name.trim_end_matches(".sys").to_string();
        io::driver::start(&self.sys, self.id, self.object, svc)
    }

    /// Stop the driver as the I/O manager stops a legacy driver, call DriverUnload, then audit
    /// what the driver still owns.
    ///
    /// As on Windows, the driver is first marked unload-pending: from then on opens of its
    /// devices fail with `STATUS_NO_SUCH_DEVICE`, and DriverUnload is called only once no
    /// handle to any of its devices is open (so no IRP is in flight). Handles already open keep
    /// working until closed, from any thread; this call waits up to `Config::unload_wait` for
    /// them, then returns [`UnloadError::OpenHandles`] without calling DriverUnload (the driver
    /// stays unload-pending; call `unload` again once they are closed). A driver without
    /// DriverUnload cannot be stopped: it is not marked, and the report has
    /// `unload_routine: false`.
    ///
    /// After DriverUnload: raises 0xCE when work items are still queued (or still running
    /// after `Config::unload_grace`), and 0xC4/0x62 (with the verifier) when pool is still
    /// allocated.
    pub fn unload(&self) -> Result<UnloadReport, UnloadError> {
        io::driver::unload(&self.sys, self.id, self.object)
    }
}

impl Handle {
    /// The access this handle was granted (FILE_READ_DATA | FILE_WRITE_DATA bits).
    pub fn granted_access(&self) -> u32 {
        self.granted
    }

    /// DeviceIoControl. The IOCTL's required access bits are checked against the handle first
    /// (STATUS_ACCESS_DENIED without reaching the driver).
    pub fn device_io_control(
        &self,
        code: u32,
        input: &[u8],
        output_len: usize,
    ) -> Result<IoResult, BugCheck> {
        let allowed = io::ioctl_allowed(code, self.granted);
        self.request(IRP_MJ_DEVICE_CONTROL, code, input, output_len, 0, allowed)
    }

    /// ReadFile of `length` bytes at byte offset 0: IRP_MJ_READ with `Parameters.Read`, the
    /// buffer described as the device's DO_BUFFERED_IO / DO_DIRECT_IO flags say (see
    /// `io::irp::build`). `output` is the first `information` bytes read. STATUS_ACCESS_DENIED
    /// without reaching the driver when the handle lacks FILE_READ_DATA.
    pub fn read(&self, length: usize) -> Result<IoResult, BugCheck> {
        self.read_at(0, length)
    }

    /// [`Handle::read`] at `byte_offset` (`Parameters.Read.ByteOffset`).
    pub fn read_at(&self, byte_offset: i64, length: usize) -> Result<IoResult, BugCheck> {
        let allowed = self.granted & FILE_READ_DATA != 0;
        self.request(IRP_MJ_READ, 0, &[], length, byte_offset, allowed)
    }

    /// WriteFile of `data` at byte offset 0 (IRP_MJ_WRITE; `information` is the byte count
    /// the driver reports written, `output` is empty). STATUS_ACCESS_DENIED without reaching
    /// the driver when the handle lacks FILE_WRITE_DATA.
    pub fn write(&self, data: &[u8]) -> Result<IoResult, BugCheck> {
        self.write_at(0, data)
    }

    /// [`Handle::write`] at `byte_offset` (`Parameters.Write.ByteOffset`).
    pub fn write_at(&self, byte_offset: i64, data: &[u8]) -> Result<IoResult, BugCheck> {
        let allowed = self.granted & FILE_WRITE_DATA != 0;
        self.request(IRP_MJ_WRITE, 0, data, 0, byte_offset, allowed)
    }

    fn request(
        &self,
        mj: u8,
        code: u32,
        input: &[u8],
        output_len: usize,
        byte_offset: i64,
        allowed: bool,
    ) -> Result<IoResult, BugCheck> {
        if let Some(b) = self.sys.ke.bugcheck() {
            return Err(b);
        }
        // Refused by the I/O manager without reaching the driver: a closed handle, then a
        // handle whose granted access does not cover the request.
        let refused = |status| {
            Ok(IoResult {
                status,
                information: 0,
                output: Vec::new(),
            })
        };
        if self.closed.load(Ordering::SeqCst) {
            return refused(STATUS_INVALID_HANDLE);
        }
        if !allowed {
            return refused(STATUS_ACCESS_DENIED);
        }
        let m = self.sys.clone();
        let input = input.to_vec();
        let (file, device): (FileId, DeviceId) = (self.file.file, self.file.device);
        run_kernel(&self.sys, DriverId::NONE, "I/O manager", move || {
            let c = io::call_driver(
                &m,
                &io::irp::Request {
                    mj,
                    device: device.ptr(),
                    file: file.ptr(),
                    code,
                    input: &input,
                    out_len: output_len,
                    byte_offset,
                },
            );
            IoResult {
                status: c.status,
                information: c.information,
                output: c.output,
            }
        })
    }

    /// Send IRP_MJ_CLEANUP and IRP_MJ_CLOSE and release the file object.
    pub fn close(self) -> Result<(), BugCheck> {
        self.close_inner()
    }

    fn close_inner(&self) -> Result<(), BugCheck> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let m = self.sys.clone();
        let file = self.file;
        run_kernel(&self.sys, DriverId::NONE, "I/O manager", move || {
            // IRP_MJ_CLEANUP, rundown of overlapped requests still pending, IRP_MJ_CLOSE.
            io::overlapped::close(&m, file);
        })
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.sys.ke.bugcheck().is_none() {
            let _ = self.close_inner();
        }
    }
}
