//! I/O manager (the top layer: above `ex`, `ob`, `ke`, `mm`): driver and device objects and the
//! driver lifecycle ([`driver`]), symbolic links, file objects, IRP dispatch ([`irp`]), and work
//! items over the executive's worker queues ([`workitem`]).
#![allow(non_snake_case)]

pub mod cancel;
pub mod csq;
pub mod driver;
pub mod forward;
pub mod irp;
pub mod mdl;
pub mod overlapped;
pub mod process;
pub mod remlock;
pub mod workitem;

use std::sync::{Condvar, Mutex};

use nt_abi::*;

use crate::ids::{DeviceId, DriverId, FileId};
use crate::ke::bugcheck::raise;
use crate::ke::thread::{self, current};
use crate::machine::{System, lock};
use crate::ob::ObjKind;
use crate::rtl::read_unicode;
use driver::{UnloadReport, driver_id_of};

/// The I/O manager's state.
#[derive(Default)]
pub(crate) struct Io {
    /// The I/O database lock: the driver list, and every change of a device's open count
    /// (DEVICE_OBJECT.ReferenceCount), so an open and an unload's "no opens left" are atomic.
    pub(crate) db: Mutex<driver::Db>,
    /// Signalled (with `db`) when a file object is closed: releases `Driver::unload`.
    pub(crate) db_cv: Condvar,
    pub(crate) irps: irp::Irps,
    pub(crate) mdls: mdl::Mdls,
    pub(crate) items: workitem::Items,
    /// Driver-allocated IRPs, device stacks, completion marks (stream ioverify).
    pub(crate) fwd: forward::Forward,
    /// Asynchronous I/O: the cancel spin lock, overlapped IRPs, remove-lock shadows, processes.
    pub(crate) cancel: cancel::CancelLock,
    pub(crate) overlapped: overlapped::Overlapped,
    pub(crate) remlocks: remlock::RemLocks,
    pub(crate) processes: process::Processes,
    /// The audit of the last unload (kept when the unload bug-checks).
    pub(crate) last_audit: Mutex<Option<UnloadReport>>,
}

impl Io {
    /// Wake threads waiting in the I/O manager (after a bug check).
    pub(crate) fn wake_all(&self) {
        self.items.wake_all();
        drop(lock(&self.db));
        self.db_cv.notify_all();
    }
}

/// `IoCreateDevice`.
///
/// # Safety
/// `DriverObject` must be the caller's driver object; `DeviceName` null or a valid
/// UNICODE_STRING; `DeviceObject` writable.
pub unsafe extern "win64" fn IoCreateDevice(
    DriverObject: *mut DRIVER_OBJECT,
    DeviceExtensionSize: ULONG,
    DeviceName: *mut UNICODE_STRING,
    DeviceType: ULONG,
    DeviceCharacteristics: ULONG,
    Exclusive: BOOLEAN,
    DeviceObject: *mut *mut DEVICE_OBJECT,
) -> NTSTATUS {
    let m = current();
    // SAFETY: null or a valid UNICODE_STRING per the contract.
    let name = unsafe { read_unicode(DeviceName) };
    if let Some(n) = &name
        && m.ob.device_name_taken(n)
    {
        return STATUS_OBJECT_NAME_COLLISION;
    }
    let ext_size = (DeviceExtensionSize as usize).next_multiple_of(16);
    let size = core::mem::size_of::<DEVICE_OBJECT>() + ext_size;
    let dev =
        m.ex.pool
            .sys_alloc_object(&m.mm, size, "device object + extension")
            .cast::<DEVICE_OBJECT>();
    let owner = driver_id_of(&m, DriverObject as usize);
    // SAFETY: `DriverObject` is the caller's live driver object (its device list is updated as
    // IoCreateDevice does).
    let drv = unsafe { &mut *DriverObject };
    // SAFETY: `dev` is a fresh zeroed block of `size` bytes, exclusively ours.
    let d = unsafe { &mut *dev };
    d.Type = IO_TYPE_DEVICE;
    d.Size = size as u16;
    d.DriverObject = DriverObject;
    d.NextDevice = drv.DeviceObject;
    d.Flags = DO_DEVICE_INITIALIZING | if Exclusive != 0 { DO_EXCLUSIVE } else { 0 };
    d.Characteristics = DeviceCharacteristics;
    d.DeviceExtension = if DeviceExtensionSize > 0 {
        (dev as usize + core::mem::size_of::<DEVICE_OBJECT>()) as PVOID
    } else {
        core::ptr::null_mut()
    };
    d.DeviceType = DeviceType;
    d.StackSize = 1;
    drv.DeviceObject = dev;
    let id = DeviceId::from_ptr(dev).object();
    if let Some(n) = &name {
        m.ob.insert_device_name(n, id);
    }
    m.ob.insert(id, ObjKind::Device, owner, name);
    // SAFETY: writable out-pointer per the contract.
    unsafe { DeviceObject.write(dev) };
    STATUS_SUCCESS
}

/// `IoDeleteDevice`: unlink from the driver, drop the name, release the creation reference.
///
/// # Safety
/// `DeviceObject` must be a device object of the caller.
pub unsafe extern "win64" fn IoDeleteDevice(DeviceObject: *mut DEVICE_OBJECT) {
    let m = current();
    let dev = DeviceId::from_ptr(DeviceObject).object();
    // I/O verification: deleting a device still attached to one below it (0xC9/0x201).
    if let Some(bc) = forward::on_delete_device(&m, DeviceObject) {
        raise(&m, bc);
    }
    if !m.ob.mark_device_deleted(dev) {
        // Deleted before: still referenced, or its pages already freed (0xC9/0x240).
        let deleted = m.ob.header(dev).is_some_and(|h| h.is_deleted())
            || matches!(
                m.mm.special.fault_at(DeviceObject as usize),
                Some(crate::mm::special::SpecialFault::SystemObject { freed: true, .. })
            );
        if deleted
            && let Some(bc) = m
                .verifier
                .on_delete_deleted_device(thread::caller(), DeviceObject as usize)
        {
            raise(&m, bc);
        }
        return;
    }
    // SAFETY: a live device object ntsim created (checked in the object table above).
    let this = unsafe { &*DeviceObject };
    let (drv, next) = (this.DriverObject, this.NextDevice);
    if !drv.is_null() {
        // SAFETY: the device's live driver object.
        let drv = unsafe { &mut *drv };
        if drv.DeviceObject == DeviceObject {
            drv.DeviceObject = next;
        } else {
            let mut cur = drv.DeviceObject;
            while !cur.is_null() {
                // SAFETY: every entry of the driver's device list is a live ntsim-created
                // device object.
                let c = unsafe { &mut *cur };
                if c.NextDevice == DeviceObject {
                    c.NextDevice = next;
                    break;
                }
                cur = c.NextDevice;
            }
        }
    }
    if let Err(bc) = m.ob.dereference_and_release(&m, dev) {
        raise(&m, bc);
    }
}

/// `IoCreateSymbolicLink`.
///
/// # Safety
/// Both arguments must be valid UNICODE_STRINGs.
pub unsafe extern "win64" fn IoCreateSymbolicLink(
    SymbolicLinkName: *mut UNICODE_STRING,
    DeviceName: *mut UNICODE_STRING,
) -> NTSTATUS {
    let m = current();
    // SAFETY: valid UNICODE_STRINGs per the contract.
    let (Some(link), Some(target)) = (unsafe { read_unicode(SymbolicLinkName) }, unsafe {
        read_unicode(DeviceName)
    }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if m.ob.create_link(link, target, thread::driver()) {
        STATUS_SUCCESS
    } else {
        STATUS_OBJECT_NAME_COLLISION
    }
}

/// `IoDeleteSymbolicLink`.
///
/// # Safety
/// `SymbolicLinkName` must be a valid UNICODE_STRING.
pub unsafe extern "win64" fn IoDeleteSymbolicLink(
    SymbolicLinkName: *mut UNICODE_STRING,
) -> NTSTATUS {
    let m = current();
    // SAFETY: valid UNICODE_STRING per the contract.
    let Some(link) = (unsafe { read_unicode(SymbolicLinkName) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if m.ob.delete_link(&link) {
        STATUS_SUCCESS
    } else {
        STATUS_OBJECT_NAME_NOT_FOUND
    }
}

fn mj_context(mj: u8) -> &'static str {
    match mj {
        IRP_MJ_CREATE => "IRP_MJ_CREATE dispatch",
        IRP_MJ_CLOSE => "IRP_MJ_CLOSE dispatch",
        IRP_MJ_CLEANUP => "IRP_MJ_CLEANUP dispatch",
        IRP_MJ_DEVICE_CONTROL => "IRP_MJ_DEVICE_CONTROL dispatch",
        IRP_MJ_READ => "IRP_MJ_READ dispatch",
        IRP_MJ_WRITE => "IRP_MJ_WRITE dispatch",
        _ => "dispatch routine",
    }
}

/// Send a request to a device and wait for it (runs on an ntsim kernel thread).
pub(crate) fn call_driver(m: &System, r: &irp::Request<'_>) -> irp::Completion {
    // The I/O manager sends a request to the top of the device's stack (IoGetAttachedDevice).
    let r = &irp::Request {
        device: forward::attached_top(r.device),
        ..*r
    };
    let dev = r.device;
    // SAFETY: `dev` is a live device object; DriverObject is set by IoCreateDevice.
    let drv = unsafe { (*dev).DriverObject };
    let owner = driver_id_of(m, drv as usize);
    // SAFETY: `drv` is the live driver object of the device; MajorFunction is plain data.
    let dispatch = unsafe { (*drv).MajorFunction[r.mj as usize] };
    let built = match irp::build(m, r) {
        Ok(b) => b,
        Err(status) => {
            return irp::Completion {
                status,
                information: 0,
                output: Vec::new(),
            };
        }
    };
    let Some(dispatch) = dispatch else {
        // IopInvalidDeviceRequest.
        let c = irp::Completion {
            status: STATUS_INVALID_DEVICE_REQUEST,
            information: 0,
            output: Vec::new(),
        };
        irp::free(m, built);
        return c;
    };
    let apc = crate::ke::apc::snapshot();
    let status = thread::with_context(owner, mj_context(r.mj), || {
        thread::set_caller(0);
        // SAFETY: calling the driver's dispatch routine with its device and a fresh IRP whose
        // current stack location describes the request, as IoCallDriver does.
        unsafe { dispatch(dev, built.irp) }
    });
    driver::check_irql_after(m, dispatch as usize);
    if let Some(bc) = forward::io_dispatch_return_rule(m, dispatch as usize, built.irp, dev, status)
    {
        thread::with_context(owner, mj_context(r.mj), || raise(m, bc));
    }
    overlapped::note_dispatch_status(status);
    crate::ke::apc::check_after(m, false, dispatch as usize, apc);
    let completed = lock(&built.track.state).completed.clone();
    let result = match (status, completed) {
        (_, Some(c)) => c,
        (STATUS_PENDING, None) if overlapped::wants(r) => return overlapped::park(built),
        (STATUS_PENDING, None) => irp::wait(m, &built.track),
        (s, None) => {
            if let Some(bc) =
                m.verifier
                    .on_dispatch_return(dispatch as usize, built.irp as usize, s)
            {
                thread::with_context(owner, mj_context(r.mj), || raise(m, bc));
            }
            // Without the verifier the IRP is simply lost (it stays allocated, as on Windows).
            return irp::Completion {
                status: s,
                information: 0,
                output: Vec::new(),
            };
        }
    };
    irp::free(m, built);
    result
}

/// An open file object.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenFile {
    pub(crate) file: FileId,
    pub(crate) device: DeviceId,
}

/// Open a device (kernel-thread side): FILE_OBJECT + IRP_MJ_CREATE.
pub(crate) fn open(m: &System, path: &str, granted: u32) -> Result<OpenFile, NTSTATUS> {
    let Some(dev) = m.ob.resolve_device(path) else {
        return Err(STATUS_OBJECT_NAME_NOT_FOUND);
    };
    let device = DeviceId(dev.0);
    let owner = m.ob.header(dev).map(|h| h.owner());
    {
        // Check and count the open under the I/O database lock, as IopCheckDeviceAndDriver
        // does: `Driver::unload` decides "no opens left" under the same lock.
        let db = lock(&m.io.db);
        if owner.is_some_and(|o| driver::unload_pending(&db, o)) {
            // The driver is unload-pending (DOE_UNLOAD_PENDING): no new references.
            return Err(STATUS_NO_SUCH_DEVICE);
        }
        // SAFETY: a live device object (device objects are never freed); Flags and
        // ReferenceCount are plain data the I/O manager owns, changed under this lock.
        let d = unsafe { &mut *device.ptr() };
        // A device its driver has not finished initializing cannot be opened yet; the I/O
        // manager answers exactly as for an unload-pending one.
        if d.Flags & DO_DEVICE_INITIALIZING != 0 {
            return Err(STATUS_NO_SUCH_DEVICE);
        }
        if d.Flags & DO_EXCLUSIVE != 0 && d.ReferenceCount > 0 {
            return Err(STATUS_ACCESS_DENIED);
        }
        // The I/O manager's open count.
        d.ReferenceCount += 1;
    }
    let fp =
        m.ex.pool
            .sys_alloc(core::mem::size_of::<FILE_OBJECT>(), "file object")
            .cast::<FILE_OBJECT>();
    // SAFETY: fresh zeroed FILE_OBJECT storage.
    unsafe {
        let f = &mut *fp;
        f.Type = IO_TYPE_FILE;
        f.Size = core::mem::size_of::<FILE_OBJECT>() as i16;
        f.DeviceObject = device.ptr();
        f.ReadAccess = (granted & FILE_READ_DATA != 0) as u8;
        f.WriteAccess = (granted & FILE_WRITE_DATA != 0) as u8;
    }
    let file = FileId::from_ptr(fp);
    m.ob.insert(
        file.object(),
        ObjKind::File,
        DriverId::NONE,
        Some(path.to_string()),
    );
    if let Err(bc) = m.ob.reference(dev) {
        raise(m, bc);
    }
    let of = OpenFile { file, device };
    let c = call_driver(
        m,
        &irp::Request {
            mj: IRP_MJ_CREATE,
            device: device.ptr(),
            file: file.ptr(),
            code: 0,
            input: &[],
            out_len: 0,
            byte_offset: 0,
        },
    );
    if !nt_success(c.status) {
        close_file(m, of, false);
        return Err(c.status);
    }
    Ok(of)
}

/// IRP_MJ_CLEANUP + IRP_MJ_CLOSE (when `send` is set), then release the file object.
pub(crate) fn close_file(m: &System, f: OpenFile, send: bool) {
    if send {
        for mj in [IRP_MJ_CLEANUP, IRP_MJ_CLOSE] {
            call_driver(
                m,
                &irp::Request {
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
    }
    {
        let _db = lock(&m.io.db);
        // SAFETY: the device is still referenced by this open; the open count changes under
        // the I/O database lock (see `open`).
        unsafe { (*f.device.ptr()).ReferenceCount -= 1 };
    }
    // Release a `Driver::unload` waiting for the last open to go.
    m.io.db_cv.notify_all();
    if let Err(bc) = m.ob.dereference_and_release(m, f.device.object()) {
        raise(m, bc);
    }
    m.ob.remove(f.file.object());
    m.ex.pool.sys_free(f.file.ptr().cast());
}

/// Map a requested access mask to the granted FILE_* rights.
pub fn granted_access(desired: u32) -> u32 {
    let mut g = desired & (FILE_READ_DATA | FILE_WRITE_DATA);
    if desired & (GENERIC_READ | GENERIC_ALL) != 0 {
        g |= FILE_READ_DATA;
    }
    if desired & (GENERIC_WRITE | GENERIC_ALL) != 0 {
        g |= FILE_WRITE_DATA;
    }
    g
}

/// Whether `granted` allows an IOCTL `code` (its required-access bits).
pub fn ioctl_allowed(code: u32, granted: u32) -> bool {
    let need = ctl_access(code);
    (need & FILE_READ_ACCESS == 0 || granted & FILE_READ_DATA != 0)
        && (need & FILE_WRITE_ACCESS == 0 || granted & FILE_WRITE_DATA != 0)
}
