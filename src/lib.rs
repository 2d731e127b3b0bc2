//! wdm-workitem: a WDM driver that runs work-item queue/uninitialize cycles on request.
//!
//! The driver is a thin shell: [`DriverEntry`] creates `\Device\WdmWorkItem` and its
//! `\DosDevices` link, [`dispatch`] answers CREATE/CLOSE/CLEANUP/DEVICE_CONTROL (the IOCTL
//! protocol lives in the `ioctl` crate), [`engine`] runs cycles on `io-workitem`'s safe types, and
//! `driver_unload` drains and frees everything. Every other major function is rejected with
//! `STATUS_INVALID_DEVICE_REQUEST`.
//!
//! The driver exists for Windows targets only (`x86_64-pc-windows-msvc`: `cargo make` with the
//! WDK, or `cargo xtask build-sys` on Linux). For any other target the crate is empty, so that
//! `cargo test` on a Linux host builds the package and runs its integration tests in `tests/`,
//! which load the real cross-built `.sys` in ntsim (see the comment in `Cargo.toml`).
#![cfg(windows)]
#![no_std]

// WDK builds (`cargo make`): windows-drivers-rs' panic handler and global allocator, wired as its
// samples do. `WdkAllocator` serves `alloc` from nonpaged pool (`ExAllocatePool2`) and may only
// be used at IRQL <= DISPATCH_LEVEL. The driver's own code allocates nothing through it (the
// work-item slab is one tagged pool allocation made by io-workitem); it is there so that `alloc`
// in this or any dependency crate links to kernel pool rather than to nothing. Without the `wdk`
// feature (the Linux cross build) neither exists: the panic handler is the one below, and
// nothing in the driver links `alloc`.
#[cfg(feature = "wdk")]
extern crate wdk_panic;

#[cfg(feature = "wdk")]
#[global_allocator]
static GLOBAL_ALLOCATOR: wdk_alloc::WdkAllocator = wdk_alloc::WdkAllocator;

#[cfg(feature = "wdk")]
mod wdk_checks;

/// `DbgPrintEx(DPFLTR_IHVDRIVER_ID, level, "wdm-workitem: " fmt "\n", args…)`. Arguments must be
/// what the format's conversions expect (`%u`/`%x`: `u32`, `%p`: a pointer).
macro_rules! trace {
    ($level:expr, $fmt:literal $(, $arg:expr)* $(,)?) => {{
        // SAFETY: the format is a NUL-terminated literal whose conversions match the argument
        // types (the macro's contract); DbgPrintEx may be called at any IRQL ≤ DIRQL.
        unsafe {
            nt_abi::imports::DbgPrintEx(
                nt_abi::imports::DPFLTR_IHVDRIVER_ID,
                $level,
                concat!("wdm-workitem: ", $fmt, "\n\0").as_ptr()
                $(, $arg)*
            )
        };
    }};
}

mod device;
mod dispatch;
mod engine;
mod kernel;

use nt_abi::imports::{
    DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL, IoCreateDevice, IoCreateSymbolicLink, IoDeleteDevice,
    IoDeleteSymbolicLink,
};
use nt_abi::status::*;
use nt_abi::*;

use device::{DeviceExtension, unicode};

/// Driver entry point: creates the device and link, installs dispatch and unload routines.
///
/// A failure part-way undoes what was done, in reverse order, and returns the failing status (the
/// I/O manager then discards the driver object without calling unload).
///
/// # Safety
/// Called once by the I/O manager at PASSIVE_LEVEL with a valid, exclusively owned driver object.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn DriverEntry(
    driver: *mut DRIVER_OBJECT,
    _registry_path: *mut UNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: the I/O manager hands DriverEntry a valid driver object that nothing else touches
    // until DriverEntry returns.
    let drv = unsafe { &mut *driver };
    // Every major function first goes to the rejecting routine; the four the driver serves are
    // overridden below. The I/O manager routes nothing to the device before DriverEntry returns.
    for slot in drv.MajorFunction.iter_mut() {
        *slot = Some(dispatch::dispatch_invalid);
    }
    drv.MajorFunction[usize::from(IRP_MJ_CREATE)] = Some(dispatch::dispatch_create);
    drv.MajorFunction[usize::from(IRP_MJ_CLOSE)] = Some(dispatch::dispatch_close);
    drv.MajorFunction[usize::from(IRP_MJ_CLEANUP)] = Some(dispatch::dispatch_cleanup);
    drv.MajorFunction[usize::from(IRP_MJ_DEVICE_CONTROL)] = Some(dispatch::dispatch_device_control);

    let mut device_name = unicode(&ioctl::DEVICE_NAME_W);
    let mut link_name = unicode(&ioctl::DOS_DEVICE_NAME_W);
    let mut device: *mut DEVICE_OBJECT = core::ptr::null_mut();
    // SAFETY: `driver` is our driver object; the name points to a static NUL-terminated UTF-16
    // string that IoCreateDevice only reads; `device` is a valid out pointer; the extension size
    // is the size of the type the extension is used as.
    let status = unsafe {
        IoCreateDevice(
            driver,
            core::mem::size_of::<DeviceExtension>() as ULONG,
            &mut device_name,
            FILE_DEVICE_UNKNOWN,
            FILE_DEVICE_SECURE_OPEN,
            FALSE,
            &mut device,
        )
    };
    if !nt_success(status) {
        trace!(
            DPFLTR_ERROR_LEVEL,
            "IoCreateDevice failed: %08x", status as u32
        );
        return status;
    }
    // SAFETY: IoCreateDevice succeeded, so `device` is a live device object whose zeroed,
    // nonpaged extension of `size_of::<DeviceExtension>()` bytes nothing else uses yet.
    let status = unsafe { DeviceExtension::initialize(device, driver) };
    if !nt_success(status) {
        // SAFETY: the device was created above, no link or handle refers to it, and a failed
        // `initialize` left nothing in its extension to tear down.
        unsafe { IoDeleteDevice(device) };
        trace!(
            DPFLTR_ERROR_LEVEL,
            "work-item slab setup failed: %08x", status as u32
        );
        return status;
    }
    // SAFETY: both names are static NUL-terminated strings that the call only reads.
    let status = unsafe { IoCreateSymbolicLink(&mut link_name, &mut device_name) };
    if !nt_success(status) {
        // SAFETY: the extension was initialized above and no request can have reached the device
        // (there is no link, and DriverEntry has not returned).
        unsafe { DeviceExtension::teardown(device) };
        // SAFETY: as above; the extension is torn down, nothing refers to the device.
        unsafe { IoDeleteDevice(device) };
        trace!(
            DPFLTR_ERROR_LEVEL,
            "IoCreateSymbolicLink failed: %08x", status as u32
        );
        return status;
    }
    drv.DriverUnload = Some(driver_unload);
    // SAFETY: `device` is live; DriverEntry still owns it exclusively.
    let dev = unsafe { &mut *device };
    dev.Flags |= DO_BUFFERED_IO;
    dev.Flags &= !DO_DEVICE_INITIALIZING;
    // SAFETY: the extension was initialized above and stays so until unload.
    let ext = unsafe { DeviceExtension::from_device(device) };
    trace!(
        DPFLTR_INFO_LEVEL,
        "loaded: IoSizeofWorkItem %u, slab %u slots x %u bytes",
        ext.io_sizeof_work_item,
        ext.engine.capacity(),
        ext.engine.stride(),
    );
    STATUS_SUCCESS
}

/// Unload: deletes the link (no new opens), stops and drains in-flight requests and work items,
/// frees the slab, deletes the device.
///
/// # Safety
/// Called once by the I/O manager at PASSIVE_LEVEL after a successful DriverEntry.
unsafe extern "system" fn driver_unload(driver: *mut DRIVER_OBJECT) {
    let mut link_name = unicode(&ioctl::DOS_DEVICE_NAME_W);
    // SAFETY: the link was created by DriverEntry; the name is static and only read. A failure
    // (nothing to delete) leaves nothing else to do, so the status is ignored.
    let _ = unsafe { IoDeleteSymbolicLink(&mut link_name) };
    // SAFETY: `driver` is our driver object, valid for the duration of unload.
    let device = unsafe { (*driver).DeviceObject };
    if device.is_null() {
        return;
    }
    // SAFETY: DriverEntry created this device with an initialized extension, and unload runs
    // once; `teardown` waits for in-flight requests and work items before freeing the slab.
    unsafe { DeviceExtension::teardown(device) };
    // SAFETY: the extension is torn down and no work item references the device any more.
    unsafe { IoDeleteDevice(device) };
    trace!(
        DPFLTR_INFO_LEVEL,
        "unloaded: work items drained, slab freed, device deleted"
    );
}

/// The MSVC "this image uses floating point" marker. `core` references it (float formatting,
/// linked in unoptimized builds); a kernel image has no CRT to provide it. wdk-sys defines its
/// own, so only the build without the WDK needs this one.
#[cfg(not(feature = "wdk"))]
#[unsafe(no_mangle)]
pub static _fltused: i32 = 0;

/// Without the WDK, a panic stops the system the way `wdk-panic` does: with a bug check.
/// Parameters: 1 = `'RsPn'` marker, 2 = source line, 3 = column, 4 = address of the file name.
#[cfg(not(feature = "wdk"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let (line, column, file) = info.location().map_or((0, 0, 0), |l| {
        (l.line(), l.column(), l.file().as_ptr() as usize)
    });
    // SAFETY: KeBugCheckEx may be called at any IRQL and never returns; the parameters are plain
    // numbers the debugger displays.
    unsafe {
        nt_abi::imports::KeBugCheckEx(
            nt_abi::bugcheck::MANUALLY_INITIATED_CRASH,
            pool_tag(*b"RsPn") as usize,
            line as usize,
            column as usize,
            file,
        )
    }
}
