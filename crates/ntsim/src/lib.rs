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
//! Config { size_of_work_item: u32 /*0x58*/, verifier: Verifier::{Standard, Off},
//!          workers_per_queue, echo_dbgprint, unload_grace, unload_wait } + Default
//! Machine::new(Config) -> Machine
//! machine.load_driver(path) -> Result<Driver, LoadError>   // LoadError::MissingImports(all names) …
//! driver.start() -> Result<NTSTATUS, BugCheck>              // DriverEntry
//! machine.open(r"\\.\WdmWorkItem", access_mask) -> Result<Handle, OpenError>
//! handle.device_io_control(code, &input, output_len) -> Result<IoResult, BugCheck>
//!                                      // &self, Send + Sync: call from many host threads at once
//! handle.close() -> Result<(), BugCheck>
//! driver.unload() -> Result<UnloadReport, UnloadError>      // unload-pending, wait for the
//!                  // last handle to close, DriverUnload, audit; UnloadError::{BugCheck(..),
//!                  // OpenHandles(Vec<OpenDevice>)} (handles still open after unload_wait)
//! driver.audit() -> UnloadReport                             // what it owns now
//! machine.last_unload_audit() -> Option<UnloadReport>        // also after 0x62/0xCE
//! machine.bugcheck() -> Option<BugCheck>
//! machine.dbgprint_lines() -> Vec<String>
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
//! Exports must be called on ntsim threads (inside `run_in_kernel_thread`, work-item routines,
//! or driver code): a bug check parks the calling thread forever, which must never be a test's
//! main thread.
#![allow(clippy::missing_transmute_annotations, clippy::result_large_err)]

pub mod bench;
pub mod dbg;
pub mod ex;
pub mod exports;
pub mod io;
pub mod json;
pub mod ke;
mod machine;
pub mod mm;
pub mod ob;
pub mod pe;
pub mod report;
pub mod rtl;
pub mod verifier;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use ex::pool::PoolStats;
pub use io::workitem::PendingItem;
pub use machine::{Config, Verifier};
use machine::{Inner, lock};
use nt_abi::*;
pub use pe::LoadError;
pub use report::{IoctlRecord, Report, Verdict};
pub use verifier::BugCheck;

/// The emulated machine.
pub struct Machine {
    inner: Arc<Inner>,
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

/// A pool block still allocated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakedBlock {
    pub address: usize,
    pub size: usize,
    pub tag: u32,
    pub flags: u64,
}

impl LeakedBlock {
    /// The tag as its four characters (`'Wdmw'`).
    pub fn tag_str(&self) -> String {
        self.tag
            .to_le_bytes()
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect()
    }
}

/// What a driver still owned after DriverUnload (or what "host" owns, for [`Machine::audit`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnloadReport {
    /// The driver set `DriverUnload` (without it Windows cannot unload the driver).
    pub unload_routine: bool,
    pub pool: Vec<LeakedBlock>,
    /// Device names (or `<unnamed>@addr`) never deleted.
    pub devices: Vec<String>,
    pub links: Vec<String>,
    /// Work items still queued or running.
    pub work_items: Vec<PendingItem>,
    /// Work items initialized and never uninitialized (addresses).
    pub initialized_work_items: Vec<usize>,
}

impl UnloadReport {
    pub fn is_clean(&self) -> bool {
        self.pool.is_empty()
            && self.devices.is_empty()
            && self.links.is_empty()
            && self.work_items.is_empty()
            && self.initialized_work_items.is_empty()
    }
}

/// A device of a driver being unloaded that still has open handles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenDevice {
    /// `\Device\Name` (or `<unnamed>@addr`).
    pub device: String,
    /// Open handles (file objects) on it: the I/O manager's `ReferenceCount`.
    pub handles: u32,
}

/// Why [`Driver::unload`] did not unload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnloadError {
    /// The machine bug-checked (before, during or after DriverUnload; see
    /// [`Machine::last_unload_audit`]).
    BugCheck(BugCheck),
    /// Handles to the driver's devices were still open after `Config::unload_wait`:
    /// DriverUnload was not called and the driver stays unload-pending (new opens fail with
    /// `STATUS_NO_SUCH_DEVICE`), as a stop request leaves a legacy driver on Windows.
    OpenHandles(Vec<OpenDevice>),
}

impl UnloadError {
    /// The bug check, if that is why.
    pub fn bugcheck(&self) -> Option<&BugCheck> {
        match self {
            UnloadError::BugCheck(b) => Some(b),
            UnloadError::OpenHandles(_) => None,
        }
    }
}

impl From<BugCheck> for UnloadError {
    fn from(b: BugCheck) -> Self {
        UnloadError::BugCheck(b)
    }
}

impl std::fmt::Display for UnloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnloadError::BugCheck(b) => write!(f, "{b}"),
            UnloadError::OpenHandles(open) => {
                write!(f, "unload pending, DriverUnload not called: ")?;
                for (i, d) in open.iter().enumerate() {
                    let s = if d.handles == 1 { "" } else { "s" };
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{} open handle{s} on {}", d.handles, d.device)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for UnloadError {}

/// The in-process pseudo-driver "host".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostDriver {
    driver_object: usize,
    device_object: usize,
}

impl HostDriver {
    pub fn driver_object(&self) -> *mut DRIVER_OBJECT {
        self.driver_object as *mut DRIVER_OBJECT
    }
    pub fn device_object(&self) -> *mut DEVICE_OBJECT {
        self.device_object as *mut DEVICE_OBJECT
    }
}

/// A loaded driver.
pub struct Driver {
    inner: Arc<Inner>,
    id: usize,
    object: usize,
    image: Arc<pe::Image>,
}

/// An open handle to a device. `Send + Sync`: IOCTLs may be issued concurrently.
pub struct Handle {
    inner: Arc<Inner>,
    file: usize,
    device: usize,
    granted: u32,
    closed: AtomicBool,
}

impl Machine {
    pub fn new(config: Config) -> Machine {
        let inner = machine::new_inner(config);
        let (id, _) = io::create_driver_object(&inner, "ntsim_host", None);
        debug_assert_eq!(id, machine::HOST_DRIVER);
        Machine {
            inner,
            host: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Map a driver image and create its DRIVER_OBJECT. Nothing in it runs yet.
    pub fn load_driver(&self, path: impl AsRef<Path>) -> Result<Driver, LoadError> {
        let path = path.as_ref();
        let img = pe::load(
            path,
            &exports::lookup,
            machine::note_caller as *const () as usize,
        )?;
        let img = Arc::new(img);
        self.inner
            .images
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(img.clone());
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "driver".into());
        let (id, obj) = io::create_driver_object(&self.inner, &stem, Some(img.clone()));
        Ok(Driver {
            inner: self.inner.clone(),
            id,
            object: obj as usize,
            image: img,
        })
    }

    /// Open a device by `\\.\Name` (or `\Device\Name`) with `access` (FILE_READ_DATA,
    /// GENERIC_READ | GENERIC_WRITE, …). Sends IRP_MJ_CREATE.
    pub fn open(&self, path: &str, access: u32) -> Result<Handle, OpenError> {
        let granted = io::granted_access(access);
        let m = self.inner.clone();
        let p = path.to_string();
        let r = machine::run_kernel(&self.inner, machine::NO_DRIVER, "I/O manager", move || {
            io::open(&m, &p, granted).map(|f| (f.file as usize, f.device as usize))
        });
        match r {
            Err(b) => Err(OpenError::BugCheck(b)),
            Ok(Err(s)) => Err(OpenError::Status(s)),
            Ok(Ok((file, device))) => Ok(Handle {
                inner: self.inner.clone(),
                file,
                device,
                granted,
                closed: AtomicBool::new(false),
            }),
        }
    }

    pub fn bugcheck(&self) -> Option<BugCheck> {
        self.inner.bugcheck()
    }

    /// Every complete DbgPrint line so far (plus a trailing partial line, if any).
    pub fn dbgprint_lines(&self) -> Vec<String> {
        let g = lock(&self.inner.dbg);
        let mut v = g.lines.clone();
        if !g.partial.is_empty() {
            v.push(g.partial.clone());
        }
        v
    }

    /// The pseudo-driver "host" and its device `\Device\NtsimHost` (created on first use).
    pub fn host_driver(&self) -> Result<HostDriver, BugCheck> {
        let mut g = lock(&self.host);
        if let Some(h) = *g {
            return Ok(h);
        }
        let drv = lock(&self.inner.ob).drivers[machine::HOST_DRIVER].object;
        let dev = machine::run_kernel(
            &self.inner,
            machine::HOST_DRIVER,
            "host kernel thread",
            move || {
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
                    exports::IoCreateDevice(
                        drv as *mut DRIVER_OBJECT,
                        0,
                        &mut us,
                        FILE_DEVICE_UNKNOWN,
                        0,
                        0,
                        &mut dev,
                    )
                };
                assert_eq!(st, STATUS_SUCCESS, "IoCreateDevice for the host device");
                // SAFETY: `dev` was just created; clearing DO_DEVICE_INITIALIZING as DriverEntry's
                // caller does.
                unsafe { (*dev).Flags &= !DO_DEVICE_INITIALIZING };
                dev as usize
            },
        )?;
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
        machine::run_kernel(&self.inner, machine::HOST_DRIVER, "host kernel thread", f)
    }

    /// Wait until no work item (of any driver) is queued or running. False on timeout or bug
    /// check.
    pub fn wait_work_items_idle(&self, timeout: Duration) -> bool {
        io::workitem::wait_idle(&self.inner, None, timeout)
    }

    /// What the pseudo-driver "host" still owns (pool, devices other than NtsimHost, links,
    /// queued/running and initialized work items).
    pub fn audit(&self) -> UnloadReport {
        let host_dev = lock(&self.host).map(|h| h.device_object);
        let mut r = collect_audit(&self.inner, machine::HOST_DRIVER);
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
        let g = lock(&self.inner.pool);
        PoolStats {
            outstanding_blocks: g.blocks.len(),
            outstanding_bytes: g.blocks.values().map(|b| b.size).sum(),
            allocations: g.allocations,
            frees: g.frees,
        }
    }

    /// The audit of the most recent `Driver::unload`, also when the unload bug-checked (0x62,
    /// 0xCE): what the driver still owned after DriverUnload returned.
    pub fn last_unload_audit(&self) -> Option<UnloadReport> {
        lock(&self.inner.last_audit).clone()
    }

    /// Number of work-item routines that have returned so far.
    pub fn work_item_routines_run(&self) -> u64 {
        lock(&self.inner.wi).routines_run
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        for cv in &self.inner.wi_cv {
            cv.notify_all();
        }
    }
}

fn collect_audit(m: &Inner, owner: usize) -> UnloadReport {
    let mut r = UnloadReport::default();
    {
        let g = lock(&m.pool);
        r.pool = g
            .blocks
            .iter()
            .filter(|(_, b)| b.owner == owner)
            .map(|(&a, b)| LeakedBlock {
                address: a,
                size: b.size,
                tag: b.tag,
                flags: b.flags,
            })
            .collect();
    }
    {
        let g = lock(&m.ob);
        r.devices = g
            .objects
            .iter()
            .filter(|(_, o)| o.kind == ob::ObjKind::Device && o.owner == owner && !o.deleted)
            .map(|(&a, o)| {
                o.name
                    .clone()
                    .unwrap_or_else(|| format!("<unnamed>@{a:#x}"))
            })
            .collect();
        r.devices.sort();
        r.links = g
            .links
            .values()
            .filter(|l| l.owner == owner)
            .map(|l| format!("{} -> {}", l.link, l.target))
            .collect();
    }
    r.work_items = io::workitem::pending_for(m, owner);
    r.initialized_work_items = lock(&m.wi)
        .items
        .iter()
        .filter(|(_, it)| it.owner == owner && !it.allocated)
        .map(|(&a, _)| a)
        .collect();
    r
}

impl Driver {
    /// The mapped image (base, size, sections, bound imports).
    pub fn image(&self) -> &pe::Image {
        &self.image
    }

    pub fn driver_object(&self) -> *mut DRIVER_OBJECT {
        self.object as *mut DRIVER_OBJECT
    }

    /// What the driver owns right now (pool, devices, links, work items), without unloading.
    pub fn audit(&self) -> UnloadReport {
        let mut r = collect_audit(&self.inner, self.id);
        // SAFETY: the live driver object; DriverUnload is plain data.
        r.unload_routine = unsafe { (*(self.object as *mut DRIVER_OBJECT)).DriverUnload }.is_some();
        r
    }

    /// Call DriverEntry(DriverObject, RegistryPath) on a kernel thread.
    pub fn start(&self) -> Result<NTSTATUS, BugCheck> {
        let m = self.inner.clone();
        let obj = self.object;
        let entry = self.image.entry;
        let svc = self.image.name.trim_end_matches(".sys").to_string();
        machine::run_kernel(&self.inner, self.id, "DriverEntry", move || {
            let mut path = rtl::wide(&format!(
                "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\{svc}"
            ));
            let mut reg = UNICODE_STRING {
                Length: ((path.len() - 1) * 2) as u16,
                MaximumLength: (path.len() * 2) as u16,
                Buffer: path.as_mut_ptr(),
            };
            // SAFETY: `entry` is the image's entry point (DriverEntry), validated by the loader;
            // it is called once with its driver object and a registry path that outlives it.
            let f: DRIVER_INITIALIZE = unsafe { core::mem::transmute(entry) };
            // SAFETY: see above.
            let st = unsafe { f(obj as *mut DRIVER_OBJECT, &mut reg) };
            check_irql_after(&m, entry);
            if nt_success(st) {
                // SAFETY: the driver object's device list holds ntsim-created device objects;
                // the I/O manager clears DO_DEVICE_INITIALIZING after DriverEntry.
                let mut d = unsafe { (*(obj as *mut DRIVER_OBJECT)).DeviceObject };
                while !d.is_null() {
                    // SAFETY: as above, a live ntsim-created device object.
                    let dv = unsafe { &mut *d };
                    dv.Flags &= !DO_DEVICE_INITIALIZING;
                    d = dv.NextDevice;
                }
            }
            st
        })
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
        if let Some(b) = self.inner.bugcheck() {
            return Err(UnloadError::BugCheck(b));
        }
        // SAFETY: the live driver object; DriverUnload is plain data set by DriverEntry.
        let has_unload = unsafe { (*(self.object as *mut DRIVER_OBJECT)).DriverUnload }.is_some();
        if has_unload {
            self.wait_unreferenced()?;
        }
        Ok(self.call_unload()?)
    }

    /// Mark the driver unload-pending and wait until no handle to its devices is open.
    fn wait_unreferenced(&self) -> Result<(), UnloadError> {
        let m = &self.inner;
        let deadline = Instant::now() + m.config.unload_wait;
        let mut g = lock(&m.ob);
        if let Some(d) = g.drivers.get_mut(self.id) {
            d.unload_pending = true;
        }
        loop {
            let open = open_devices(&g, self.id);
            if open.is_empty() {
                return Ok(());
            }
            if let Some(b) = m.bugcheck() {
                return Err(UnloadError::BugCheck(b));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(UnloadError::OpenHandles(open));
            }
            let step = (deadline - now).min(Duration::from_millis(50));
            g = m
                .ob_cv
                .wait_timeout(g, step)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn call_unload(&self) -> Result<UnloadReport, BugCheck> {
        let m = self.inner.clone();
        let obj = self.object;
        let id = self.id;
        machine::run_kernel(&self.inner, self.id, "DriverUnload", move || {
            // SAFETY: the live driver object; DriverUnload is plain data set by DriverEntry.
            let unload = unsafe { (*(obj as *mut DRIVER_OBJECT)).DriverUnload };
            let Some(unload) = unload else {
                let mut r = collect_audit(&m, id);
                r.unload_routine = false;
                return r;
            };
            // SAFETY: calling the driver's unload routine with its own driver object.
            unsafe { unload(obj as *mut DRIVER_OBJECT) };
            check_irql_after(&m, unload as usize);
            machine::with_context(id, "unload audit", || {
                let pending = io::workitem::pending_for(&m, id);
                if !pending.is_empty() && pending.iter().all(|p| p.running) {
                    io::workitem::wait_idle(&m, Some(id), m.config.unload_grace);
                }
                let mut audit = collect_audit(&m, id);
                audit.unload_routine = true;
                *lock(&m.last_audit) = Some(audit);
                if let Some(p) = io::workitem::pending_for(&m, id).first()
                    && m.verifier()
                {
                    machine::raise(
                        &m,
                        verifier::Bc::verifier(
                            bugcheck::DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS,
                            [p.routine as u64, 0, p.item as u64, unload as usize as u64],
                        )
                        .at(p.routine),
                    );
                }
                let mut r = collect_audit(&m, id);
                r.unload_routine = true;
                *lock(&m.last_audit) = Some(r.clone());
                if m.verifier() && !r.pool.is_empty() {
                    // SAFETY: computing the address of the driver object's DriverName field.
                    let name = unsafe { &raw mut (*(obj as *mut DRIVER_OBJECT)).DriverName };
                    machine::raise(
                        &m,
                        verifier::Bc::verifier(
                            bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                            [
                                bugcheck::verifier::POOL_LEAKED_AT_UNLOAD,
                                name as u64,
                                obj as u64,
                                r.pool.len() as u64,
                            ],
                        )
                        .at(unload as usize),
                    );
                }
                if let Some(d) = lock(&m.ob).drivers.get_mut(id) {
                    d.unloaded = true;
                }
                r
            })
        })
    }
}

/// The driver's device objects (on its device list, i.e. not deleted) with handles open.
fn open_devices(g: &ob::Objects, owner: usize) -> Vec<OpenDevice> {
    let mut v: Vec<OpenDevice> = g
        .objects
        .iter()
        .filter(|(_, o)| o.kind == ob::ObjKind::Device && o.owner == owner && !o.deleted)
        .filter_map(|(&a, o)| {
            // SAFETY: a live device object (in the object table, not deleted; the caller holds
            // the object lock); ReferenceCount is the I/O manager's open count.
            let handles = unsafe { (*(a as *const DEVICE_OBJECT)).ReferenceCount };
            (handles > 0).then(|| OpenDevice {
                device: o
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("<unnamed>@{a:#x}")),
                handles: handles as u32,
            })
        })
        .collect();
    v.sort_by(|a, b| a.device.cmp(&b.device));
    v
}

fn check_irql_after(m: &Inner, routine: usize) {
    let lvl = ke::irql::get();
    if lvl != PASSIVE_LEVEL {
        machine::raise(
            m,
            verifier::Bc::new(
                bugcheck::IRQL_GT_ZERO_AT_SYSTEM_SERVICE,
                [routine as u64, lvl as u64, 0, 0],
            )
            .at(routine),
        );
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
        if let Some(b) = self.inner.bugcheck() {
            return Err(b);
        }
        if self.closed.load(Ordering::SeqCst) {
            return Ok(IoResult {
                status: STATUS_INVALID_HANDLE,
                information: 0,
                output: Vec::new(),
            });
        }
        if !io::ioctl_allowed(code, self.granted) {
            return Ok(IoResult {
                status: STATUS_ACCESS_DENIED,
                information: 0,
                output: Vec::new(),
            });
        }
        let m = self.inner.clone();
        let input = input.to_vec();
        let (file, device) = (self.file, self.device);
        machine::run_kernel(&self.inner, machine::NO_DRIVER, "I/O manager", move || {
            let c = io::call_driver(
                &m,
                &io::irp::Request {
                    mj: IRP_MJ_DEVICE_CONTROL,
                    device: device as *mut DEVICE_OBJECT,
                    file: file as *mut FILE_OBJECT,
                    code,
                    input: &input,
                    out_len: output_len,
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
        let m = self.inner.clone();
        let (file, device) = (self.file, self.device);
        machine::run_kernel(&self.inner, machine::NO_DRIVER, "I/O manager", move || {
            io::close_file(
                &m,
                &io::OpenFile {
                    file: file as *mut FILE_OBJECT,
                    device: device as *mut DEVICE_OBJECT,
                },
                true,
            );
        })
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.inner.bugcheck().is_none() {
            let _ = self.close_inner();
        }
    }
}
