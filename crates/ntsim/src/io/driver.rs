//! Driver lifecycle (the I/O manager's part): driver objects, DriverEntry, the legacy stop
//! sequence (unload-pending, wait for the last handle, DriverUnload), and the unload audit.
use std::sync::Arc;
use std::time::{Duration, Instant};

use nt_abi::bugcheck;
use nt_abi::*;

use crate::ex::pool::LeakedBlock;
use crate::ids::{DriverId, DriverObj, ObjectId};
use crate::io::workitem::{self, PendingItem};
use crate::ke::bugcheck::raise;
use crate::ke::thread::{self, run_kernel};
use crate::machine::{System, lock};
use crate::ob::ObjKind;
use crate::verifier::{Bc, BugCheck};

/// What a driver still owned after DriverUnload (or what "host" owns, for `Machine::audit`).
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

/// Why `Driver::unload` did not unload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnloadError {
    /// The machine bug-checked (before, during or after DriverUnload; see
    /// `Machine::last_unload_audit`).
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

/// One driver in the I/O manager's list.
pub(crate) struct DriverRec {
    pub(crate) object: DriverObj,
    pub(crate) image: Option<Arc<crate::pe::Image>>,
    /// `Driver::unload` was asked for (DOE_UNLOAD_PENDING on its devices): opens of its
    /// devices fail with STATUS_NO_SUCH_DEVICE from then on.
    pub(crate) unload_pending: bool,
    pub(crate) unloaded: bool,
}

/// The I/O database (under `Io::db`, the lock IopCheckDeviceAndDriver and the unload path
/// share): the driver list.
#[derive(Default)]
pub(crate) struct Db {
    pub(crate) drivers: Vec<DriverRec>,
}

fn alloc_unicode(sys: &System, s: &str) -> UNICODE_STRING {
    let w = crate::rtl::wide(s);
    let buf = sys.ex.pool.sys_alloc(w.len() * 2, "name").cast::<u16>();
    // SAFETY: `buf` holds w.len() u16s.
    unsafe { core::ptr::copy_nonoverlapping(w.as_ptr(), buf, w.len()) };
    UNICODE_STRING {
        Length: ((w.len() - 1) * 2) as u16,
        MaximumLength: (w.len() * 2) as u16,
        Buffer: buf,
    }
}

/// Offset of the DRIVER_EXTENSION in a driver object's allocation: right after the
/// DRIVER_OBJECT, as `IoCreateDriver` / `IopLoadDriver` allocate them together (ReactOS
/// `ntoskrnl/io/iomgr/driver.c`: one object body of `sizeof(DRIVER_OBJECT)` + the extension).
const DRIVER_EXTENSION_OFFSET: usize = (core::mem::size_of::<DRIVER_OBJECT>() + 15) & !15;

/// Create a DRIVER_OBJECT (+ extension) for driver `name`, on pages of their own (like device
/// objects), so a use after the object is freed faults (see [`release_driver_object`]).
pub(crate) fn create_driver_object(
    sys: &System,
    name: &str,
    image: Option<Arc<crate::pe::Image>>,
) -> (DriverId, DriverObj) {
    let pool = &sys.ex.pool;
    let size = DRIVER_EXTENSION_OFFSET + core::mem::size_of::<DRIVER_EXTENSION>();
    let d = pool
        .sys_alloc_object(&sys.mm, size, "driver object + extension")
        .cast::<DRIVER_OBJECT>();
    // SAFETY: the allocation holds the extension at this offset (sized above).
    let ext = unsafe { d.cast::<u8>().add(DRIVER_EXTENSION_OFFSET) }.cast::<DRIVER_EXTENSION>();
    let dname = alloc_unicode(sys, &format!("\\Driver\\{name}"));
    let key = alloc_unicode(sys, name);
    // SAFETY: a fresh, zeroed, exclusively owned block sized for a DRIVER_EXTENSION.
    let e = unsafe { &mut *ext };
    e.DriverObject = d;
    e.ServiceKeyName = key;
    // SAFETY: a fresh, zeroed, exclusively owned block sized for a DRIVER_OBJECT.
    let o = unsafe { &mut *d };
    o.Type = IO_TYPE_DRIVER;
    o.Size = core::mem::size_of::<DRIVER_OBJECT>() as i16;
    o.DriverExtension = ext;
    o.DriverName = dname;
    if let Some(img) = &image {
        o.DriverStart = img.base as PVOID;
        o.DriverSize = img.size as u32;
        // The one place an address becomes a routine: the loader validated `entry` as the
        // image's entry point, and from here on DriverEntry is the typed `DriverInit`.
        // SAFETY: `entry` is the address of the image's DriverEntry (validated by `pe::load`),
        // a win64 function of the DRIVER_INITIALIZE signature.
        o.DriverInit = Some(unsafe { core::mem::transmute::<usize, DRIVER_INITIALIZE>(img.entry) });
    }
    let object = DriverObj(d as usize);
    let mut g = lock(&sys.io.db);
    let id = DriverId(g.drivers.len());
    g.drivers.push(DriverRec {
        object,
        image,
        unload_pending: false,
        unloaded: false,
    });
    drop(g);
    sys.ob.insert(
        object.object(),
        ObjKind::Driver,
        id,
        Some(format!("\\Driver\\{name}")),
    );
    (id, object)
}

/// The driver that owns `driver_object` (the calling thread's driver if it is none of them).
pub(crate) fn driver_id_of(sys: &System, driver_object: usize) -> DriverId {
    lock(&sys.io.db)
        .drivers
        .iter()
        .position(|d| d.object.0 == driver_object)
        .map(DriverId)
        .unwrap_or_else(thread::driver)
}

/// The DRIVER_OBJECT of driver `id`.
pub(crate) fn driver_object(sys: &System, id: DriverId) -> Option<DriverObj> {
    lock(&sys.io.db).drivers.get(id.0).map(|d| d.object)
}

/// Whether driver `id` is a loaded PE image (its work routines must lie in its code).
pub(crate) fn has_image(sys: &System, id: DriverId) -> bool {
    lock(&sys.io.db)
        .drivers
        .get(id.0)
        .is_some_and(|d| d.image.is_some())
}

/// Whether driver `id` is unload-pending (the caller holds the I/O database lock).
pub(crate) fn unload_pending(db: &Db, id: DriverId) -> bool {
    db.drivers.get(id.0).is_some_and(|d| d.unload_pending)
}

/// What `owner` owns right now: pool, devices, links, work items.
pub(crate) fn collect_audit(sys: &System, owner: DriverId) -> UnloadReport {
    let mut devices: Vec<String> = sys
        .ob
        .devices_of(owner)
        .into_iter()
        .map(|(a, name)| name.unwrap_or_else(|| format!("<unnamed>@{:#x}", a.0)))
        .collect();
    devices.sort();
    UnloadReport {
        unload_routine: false,
        pool: sys.ex.pool.blocks_of(owner),
        devices,
        links: sys.ob.links_of(owner),
        work_items: workitem::pending_for(sys, owner),
        initialized_work_items: workitem::initialized_of(sys, owner),
    }
}

/// After DriverUnload: the I/O manager makes the driver object temporary and drops its own
/// reference; the object (and extension) is freed when the last reference goes — at once,
/// or when whoever still holds one (`ObReferenceObject`, a work item queued against it)
/// releases it (ReactOS `IopUnloadDriver` → `ObMakeTemporaryObject` + `ObDereferenceObject`,
/// `IopDeleteDriver`). Its pages then stay inaccessible for a while, so a later use faults
/// (0x50, documented-only: Windows' freed pool may stay mapped).
fn release_driver_object(sys: &System, obj: DriverObj) {
    if let Err(bc) = sys.ob.delete_and_release(sys, obj.object()) {
        raise(sys, bc);
    }
}

/// The driver was unloaded (its DRIVER_OBJECT may be freed: never read it again).
fn is_unloaded(sys: &System, id: DriverId) -> bool {
    lock(&sys.io.db)
        .drivers
        .get(id.0)
        .is_some_and(|d| d.unloaded)
}

/// Whether the driver set DriverUnload.
fn unload_routine(obj: DriverObj) -> Option<DRIVER_UNLOAD> {
    // SAFETY: the live driver object; DriverUnload is plain data set by DriverEntry.
    unsafe { (*obj.ptr()).DriverUnload }
}

/// What driver `id` owns now (its audit without unloading).
pub(crate) fn audit(sys: &System, id: DriverId, obj: DriverObj) -> UnloadReport {
    let mut r = collect_audit(sys, id);
    // An unloaded driver had a DriverUnload routine (it ran), and its object may be freed.
    r.unload_routine = is_unloaded(sys, id) || unload_routine(obj).is_some();
    r
}

/// Call DriverEntry(DriverObject, RegistryPath) on a kernel thread.
pub(crate) fn start(
    sys: &Arc<System>,
    id: DriverId,
    obj: DriverObj,
    service: String,
) -> Result<NTSTATUS, BugCheck> {
    if is_unloaded(sys, id) {
        // Its DRIVER_OBJECT may be freed: an unloaded image is not started again (load it
        // again instead, as Windows maps a fresh image and object).
        return Ok(STATUS_UNSUCCESSFUL);
    }
    let s2 = sys.clone();
    run_kernel(sys, id, "DriverEntry", move || {
        let mut path = crate::rtl::wide(&format!(
            "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\{service}"
        ));
        let mut reg = UNICODE_STRING {
            Length: ((path.len() - 1) * 2) as u16,
            MaximumLength: (path.len() * 2) as u16,
            Buffer: path.as_mut_ptr(),
        };
        // SAFETY: the live driver object; DriverInit was set from the image's entry point.
        let Some(entry) = (unsafe { (*obj.ptr()).DriverInit }) else {
            return STATUS_UNSUCCESSFUL;
        };
        // SAFETY: DriverEntry is called once with its driver object and a registry path that
        // outlives the call.
        let st = unsafe { entry(obj.ptr(), &mut reg) };
        check_irql_after(&s2, entry as usize);
        if nt_success(st) {
            // SAFETY: the driver object's device list holds ntsim-created device objects; the
            // I/O manager clears DO_DEVICE_INITIALIZING after DriverEntry.
            let mut d = unsafe { (*obj.ptr()).DeviceObject };
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

/// Stop driver `id` as the I/O manager stops a legacy driver (see `Driver::unload`).
pub(crate) fn unload(
    sys: &Arc<System>,
    id: DriverId,
    obj: DriverObj,
) -> Result<UnloadReport, UnloadError> {
    if let Some(b) = sys.ke.bugcheck() {
        return Err(UnloadError::BugCheck(b));
    }
    if is_unloaded(sys, id) {
        // Already stopped (its object may be freed): the report of that unload.
        let mut r = lock(&sys.io.last_audit)
            .clone()
            .unwrap_or_else(|| collect_audit(sys, id));
        r.unload_routine = true;
        return Ok(r);
    }
    if unload_routine(obj).is_some() {
        wait_unreferenced(sys, id)?;
    }
    Ok(call_unload(sys, id, obj)?)
}

/// Mark the driver unload-pending and wait until no handle to its devices is open.
fn wait_unreferenced(sys: &System, id: DriverId) -> Result<(), UnloadError> {
    let deadline = Instant::now() + sys.config.unload_wait;
    let mut g = lock(&sys.io.db);
    if let Some(d) = g.drivers.get_mut(id.0) {
        d.unload_pending = true;
    }
    loop {
        let open = open_devices(sys, id);
        if open.is_empty() {
            return Ok(());
        }
        if let Some(b) = sys.ke.bugcheck() {
            return Err(UnloadError::BugCheck(b));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(UnloadError::OpenHandles(open));
        }
        let step = (deadline - now).min(Duration::from_millis(50));
        g = sys
            .io
            .db_cv
            .wait_timeout(g, step)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// The driver's device objects (on its device list, i.e. not deleted) with handles open. The
/// caller holds the I/O database lock, under which open counts change.
fn open_devices(sys: &System, owner: DriverId) -> Vec<OpenDevice> {
    let mut v: Vec<OpenDevice> = sys
        .ob
        .devices_of(owner)
        .into_iter()
        .filter_map(|(a, name): (ObjectId, Option<String>)| {
            // SAFETY: a live device object (not deleted; device objects are never freed);
            // ReferenceCount is the I/O manager's open count, changed under the lock the
            // caller holds.
            let handles = unsafe { (*(a.0 as *const DEVICE_OBJECT)).ReferenceCount };
            (handles > 0).then(|| OpenDevice {
                device: name.unwrap_or_else(|| format!("<unnamed>@{:#x}", a.0)),
                handles: handles as u32,
            })
        })
        .collect();
    v.sort_by(|a, b| a.device.cmp(&b.device));
    v
}

fn call_unload(sys: &Arc<System>, id: DriverId, obj: DriverObj) -> Result<UnloadReport, BugCheck> {
    let m = sys.clone();
    run_kernel(sys, id, "DriverUnload", move || {
        let Some(unload) = unload_routine(obj) else {
            let mut r = collect_audit(&m, id);
            r.unload_routine = false;
            return r;
        };
        // SAFETY: calling the driver's unload routine with its own driver object.
        unsafe { unload(obj.ptr()) };
        check_irql_after(&m, unload as usize);
        thread::with_context(id, "unload audit", || {
            let pending = workitem::pending_for(&m, id);
            if !pending.is_empty() && pending.iter().all(|p| p.running) {
                workitem::wait_idle(&m, Some(id), m.config.unload_grace);
            }
            let mut audit = collect_audit(&m, id);
            audit.unload_routine = true;
            *lock(&m.io.last_audit) = Some(audit);
            if let Some(p) = workitem::pending_for(&m, id).first()
                && let Some(bc) =
                    m.verifier
                        .on_unload_pending_item(p.routine, p.item, unload as usize)
            {
                raise(&m, bc);
            }
            // System threads still running, timers still set and DPCs still queued in the
            // image (ps::check_unload).
            let image = lock(&m.io.db)
                .drivers
                .get(id.0)
                .and_then(|d| d.image.as_ref().map(|i| (i.base, i.base + i.size)));
            crate::ps::check_unload(&m, id, image, unload as usize);
            let mut r = collect_audit(&m, id);
            r.unload_routine = true;
            *lock(&m.io.last_audit) = Some(r.clone());
            // SAFETY: computing the address of the driver object's DriverName field.
            let name = unsafe { &raw mut (*obj.ptr()).DriverName };
            if let Some(bc) =
                m.verifier
                    .on_unload_pool_leak(name as usize, obj.0, r.pool.len(), unload as usize)
            {
                // Blocks Rtl's string routines allocated for the driver: ntsim tracks them,
                // Windows' verifier does not (see `ex::rtl_pool`).
                let rtl_only = r
                    .pool
                    .iter()
                    .all(|b| crate::ex::rtl_pool::is_rtl_string_tag(b.tag));
                raise(&m, if rtl_only { bc.documented_only() } else { bc });
            }
            if let Some(d) = lock(&m.io.db).drivers.get_mut(id.0) {
                d.unloaded = true;
            }
            release_driver_object(&m, obj);
            r
        })
    })
}

/// 0x4A IRQL_GT_ZERO_AT_SYSTEM_SERVICE when a driver routine returns to the I/O manager at
/// raised IRQL.
pub(crate) fn check_irql_after(sys: &System, routine: usize) {
    // DriverEntry and DriverUnload run on a system worker thread, which starts with APCs
    // enabled: returning with a KMUTEX still owned or a critical region still entered is 0x1
    // with call type 1 (a worker routine). Dispatch routines are checked by their caller
    // against the count they were called with (`io::call_driver`).
    if matches!(thread::context(), "DriverEntry" | "DriverUnload") {
        crate::ke::apc::check_after(sys, true, routine, (0, 0));
    }
    let lvl = thread::irql();
    if lvl != PASSIVE_LEVEL {
        raise(
            sys,
            Bc::new(
                bugcheck::IRQL_GT_ZERO_AT_SYSTEM_SERVICE,
                [routine as u64, lvl as u64, 0, 0],
            )
            .at(routine),
        );
    }
}
