//! I/O manager: driver and device objects, symbolic links, file objects, IRP dispatch.
#![allow(non_snake_case)]

pub mod irp;
pub mod workitem;

use std::sync::Arc;

use nt_abi::bugcheck::{self, io_verifier as iv};
use nt_abi::*;

use crate::ex::pool::{sys_alloc, sys_free};
use crate::machine::{self, DRIVER, Inner, current, lock, raise};
use crate::ob::{self, LinkRec, ObjKind, ObjRec, norm};
use crate::rtl::{read_unicode, wide};
use crate::verifier::Bc;

fn alloc_unicode(m: &Inner, s: &str) -> UNICODE_STRING {
    let w = wide(s);
    let buf = sys_alloc(m, w.len() * 2, "name").cast::<u16>();
    // SAFETY: `buf` holds w.len() u16s.
    unsafe { core::ptr::copy_nonoverlapping(w.as_ptr(), buf, w.len()) };
    UNICODE_STRING {
        Length: ((w.len() - 1) * 2) as u16,
        MaximumLength: (w.len() * 2) as u16,
        Buffer: buf,
    }
}

/// Create a DRIVER_OBJECT (+ extension) for driver `name`; returns (driver id, object).
pub(crate) fn create_driver_object(
    m: &Inner,
    name: &str,
    image: Option<Arc<crate::pe::Image>>,
) -> (usize, *mut DRIVER_OBJECT) {
    let d = sys_alloc(m, core::mem::size_of::<DRIVER_OBJECT>(), "driver object")
        .cast::<DRIVER_OBJECT>();
    let ext = sys_alloc(
        m,
        core::mem::size_of::<DRIVER_EXTENSION>(),
        "driver extension",
    )
    .cast::<DRIVER_EXTENSION>();
    let dname = alloc_unicode(m, &format!("\\Driver\\{name}"));
    let key = alloc_unicode(m, name);
    // SAFETY: a fresh, zeroed, exclusively owned block sized for a DRIVER_EXTENSION.
    let e = unsafe { &mut *ext };
    e.DriverObject = d;
    e.ServiceKeyName = key;
    // SAFETY: a fresh, zeroed, exclusively owned block sized for a DRIVER_OBJECT.
    let o = unsafe { &mut *d };
    {
        o.Type = IO_TYPE_DRIVER;
        o.Size = core::mem::size_of::<DRIVER_OBJECT>() as i16;
        o.DriverExtension = ext;
        o.DriverName = dname;
        if let Some(img) = &image {
            o.DriverStart = img.base as PVOID;
            o.DriverSize = img.size as u32;
            // SAFETY: the loader validated `entry` as the image's entry point, DriverEntry.
            o.DriverInit =
                Some(unsafe { core::mem::transmute::<usize, DRIVER_INITIALIZE>(img.entry) });
        }
    }
    let mut g = lock(&m.ob);
    let id = g.drivers.len();
    g.drivers.push(ob::DriverRec {
        name: name.to_string(),
        object: d as usize,
        image,
        unload_pending: false,
        unloaded: false,
    });
    g.objects.insert(
        d as usize,
        ObjRec {
            kind: ObjKind::Driver,
            refs: 1,
            deleted: false,
            owner: id,
            name: Some(format!("\\Driver\\{name}")),
        },
    );
    (id, d)
}

fn driver_id_of(m: &Inner, driver_object: usize) -> usize {
    let g = lock(&m.ob);
    g.drivers
        .iter()
        .position(|d| d.object == driver_object)
        .unwrap_or_else(|| DRIVER.with(|d| d.get()))
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
    let key = name.as_deref().map(norm);
    if let Some(k) = &key
        && lock(&m.ob).devices.contains_key(k)
    {
        return STATUS_OBJECT_NAME_COLLISION;
    }
    let ext_size = (DeviceExtensionSize as usize).next_multiple_of(16);
    let size = core::mem::size_of::<DEVICE_OBJECT>() + ext_size;
    let dev = sys_alloc(&m, size, "device object + extension").cast::<DEVICE_OBJECT>();
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
    let mut g = lock(&m.ob);
    if let Some(k) = key {
        g.devices.insert(k, dev as usize);
    }
    g.objects.insert(
        dev as usize,
        ObjRec {
            kind: ObjKind::Device,
            refs: 1,
            deleted: false,
            owner,
            name,
        },
    );
    drop(g);
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
    let dev = DeviceObject as usize;
    {
        let mut g = lock(&m.ob);
        let Some(o) = g.objects.get_mut(&dev) else {
            return;
        };
        if o.kind != ObjKind::Device || o.deleted {
            return;
        }
        o.deleted = true;
        g.devices.retain(|_, v| *v != dev);
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
    if let Err(bc) = ob::deref(&m, dev) {
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
    let mut g = lock(&m.ob);
    let k = norm(&link);
    if g.links.contains_key(&k) {
        return STATUS_OBJECT_NAME_COLLISION;
    }
    g.links.insert(
        k,
        LinkRec {
            link,
            target,
            owner: DRIVER.with(|d| d.get()),
        },
    );
    STATUS_SUCCESS
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
    match lock(&m.ob).links.remove(&norm(&link)) {
        Some(_) => STATUS_SUCCESS,
        None => STATUS_OBJECT_NAME_NOT_FOUND,
    }
}

/// Resolve `\\.\Name`, `\DosDevices\Name`, `\??\Name` or `\Device\Name` to a device object.
pub(crate) fn resolve_device(m: &Inner, path: &str) -> Option<usize> {
    let g = lock(&m.ob);
    let p = if let Some(rest) = path.strip_prefix("\\\\.\\") {
        format!("\\dosdevices\\{rest}")
    } else {
        norm(path)
    };
    let mut name = norm(&p);
    for _ in 0..8 {
        if let Some(l) = g.links.get(&name) {
            name = norm(&l.target);
            continue;
        }
        break;
    }
    g.devices.get(&name).copied()
}

fn mj_context(mj: u8) -> &'static str {
    match mj {
        IRP_MJ_CREATE => "IRP_MJ_CREATE dispatch",
        IRP_MJ_CLOSE => "IRP_MJ_CLOSE dispatch",
        IRP_MJ_CLEANUP => "IRP_MJ_CLEANUP dispatch",
        IRP_MJ_DEVICE_CONTROL => "IRP_MJ_DEVICE_CONTROL dispatch",
        _ => "dispatch routine",
    }
}

/// Send a request to a device and wait for it (runs on an ntsim kernel thread).
pub(crate) fn call_driver(m: &Arc<Inner>, r: &irp::Request<'_>) -> irp::Completion {
    let dev = r.device;
    // SAFETY: `dev` is a live device object; DriverObject is set by IoCreateDevice.
    let drv = unsafe { (*dev).DriverObject };
    let owner = driver_id_of(m, drv as usize);
    // SAFETY: `drv` is the live driver object of the device; MajorFunction is plain data.
    let dispatch = unsafe { (*drv).MajorFunction[r.mj as usize] };
    let built = irp::build(m, r);
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
    let status = machine::with_context(owner, mj_context(r.mj), || {
        machine::CALLER.with(|c| c.set(0));
        // SAFETY: calling the driver's dispatch routine with its device and a fresh IRP whose
        // current stack location describes the request, as IoCallDriver does.
        unsafe { dispatch(dev, built.irp) }
    });
    let lvl = crate::ke::irql::get();
    if lvl != PASSIVE_LEVEL {
        raise(
            m,
            Bc::new(
                bugcheck::IRQL_GT_ZERO_AT_SYSTEM_SERVICE,
                [dispatch as usize as u64, lvl as u64, 0, 0],
            )
            .at(dispatch as usize),
        );
    }
    let completed = lock(&built.track.state).completed.clone();
    let result = match (status, completed) {
        (_, Some(c)) => c,
        (STATUS_PENDING, None) => irp::wait(m, &built.track),
        (s, None) => {
            if m.verifier() {
                machine::with_context(owner, mj_context(r.mj), || {
                    raise(
                        m,
                        Bc::verifier(
                            bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION,
                            [
                                iv::DISPATCH_RETURNED_WITHOUT_COMPLETING,
                                dispatch as usize as u64,
                                built.irp as u64,
                                s as u32 as u64,
                            ],
                        )
                        .at(dispatch as usize),
                    )
                });
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
pub(crate) struct OpenFile {
    pub file: *mut FILE_OBJECT,
    pub device: *mut DEVICE_OBJECT,
}

/// Open a device (kernel-thread side): FILE_OBJECT + IRP_MJ_CREATE.
pub(crate) fn open(m: &Arc<Inner>, path: &str, granted: u32) -> Result<OpenFile, NTSTATUS> {
    let Some(dev) = resolve_device(m, path) else {
        return Err(STATUS_OBJECT_NAME_NOT_FOUND);
    };
    let device = dev as *mut DEVICE_OBJECT;
    {
        // Check and count the open under the object lock, as IopCheckDeviceAndDriver does under
        // the I/O database lock: `Driver::unload` decides "no opens left" under the same lock.
        let g = lock(&m.ob);
        let owner = g.objects.get(&dev).map(|o| o.owner);
        if owner
            .and_then(|o| g.drivers.get(o))
            .is_some_and(|d| d.unload_pending)
        {
            // The driver is unload-pending (DOE_UNLOAD_PENDING): no new references.
            return Err(STATUS_NO_SUCH_DEVICE);
        }
        // SAFETY: a live device object (the object lock keeps it from being freed);
        // Flags/ReferenceCount are plain data the I/O manager owns.
        let d = unsafe { &mut *device };
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
    let file =
        sys_alloc(m, core::mem::size_of::<FILE_OBJECT>(), "file object").cast::<FILE_OBJECT>();
    // SAFETY: fresh zeroed FILE_OBJECT storage.
    unsafe {
        let f = &mut *file;
        f.Type = IO_TYPE_FILE;
        f.Size = core::mem::size_of::<FILE_OBJECT>() as i16;
        f.DeviceObject = device;
        f.ReadAccess = (granted & FILE_READ_DATA != 0) as u8;
        f.WriteAccess = (granted & FILE_WRITE_DATA != 0) as u8;
    }
    lock(&m.ob).objects.insert(
        file as usize,
        ObjRec {
            kind: ObjKind::File,
            refs: 1,
            deleted: false,
            owner: machine::NO_DRIVER,
            name: Some(path.to_string()),
        },
    );
    if let Err(bc) = ob::reference(m, dev) {
        raise(m, bc);
    }
    let c = call_driver(
        m,
        &irp::Request {
            mj: IRP_MJ_CREATE,
            device,
            file,
            code: 0,
            input: &[],
            out_len: 0,
        },
    );
    if !nt_success(c.status) {
        close_file(m, &OpenFile { file, device }, false);
        return Err(c.status);
    }
    Ok(OpenFile { file, device })
}

/// IRP_MJ_CLEANUP + IRP_MJ_CLOSE (when `send` is set), then release the file object.
pub(crate) fn close_file(m: &Arc<Inner>, f: &OpenFile, send: bool) {
    if send {
        for mj in [IRP_MJ_CLEANUP, IRP_MJ_CLOSE] {
            call_driver(
                m,
                &irp::Request {
                    mj,
                    device: f.device,
                    file: f.file,
                    code: 0,
                    input: &[],
                    out_len: 0,
                },
            );
        }
    }
    {
        let _g = lock(&m.ob);
        // SAFETY: the device is still referenced by this open; the open count changes under
        // the object lock (see `open`).
        unsafe { (*f.device).ReferenceCount -= 1 };
    }
    // Release a `Driver::unload` waiting for the last open to go.
    m.ob_cv.notify_all();
    if let Err(bc) = ob::deref(m, f.device as usize) {
        raise(m, bc);
    }
    lock(&m.ob).objects.remove(&(f.file as usize));
    sys_free(m, f.file.cast());
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
