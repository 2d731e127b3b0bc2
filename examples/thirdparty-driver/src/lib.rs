//! A third-party-style WDM driver built on io-workitem's public API (nothing else: nt-abi comes
//! re-exported as `io_workitem::nt_abi`).
//!
//! `DriverEntry` creates `\Device\ThirdPartyWorkItems`, keeps a [`NtSlab`] in the device
//! extension and starts [`CHAINS`] requeue chains of [`HOPS`] requeues each; every routine counts
//! its run in [`ROUTINES_RUN`]. `DriverUnload` takes the slab out of the extension and drops it
//! (waits for every chain, uninitializes, frees the pool block, releases the slab's reference on
//! the device) before `IoDeleteDevice`.
//!
//! Where the `unsafe` is: creating and deleting the device (FFI), viewing it as a `&Device`,
//! placing the slab in the extension and taking it out, and the panic handler's bug check. Using
//! the slab and its work items — acquire, queue, requeue, drop, teardown — needs none.
#![no_std]

use core::sync::atomic::{AtomicU32, Ordering};

use io_workitem::nt_abi::imports::{IoCreateDevice, IoDeleteDevice, KeBugCheckEx};
use io_workitem::nt_abi::{
    DEVICE_OBJECT, DO_DEVICE_INITIALIZING, DRIVER_OBJECT, FALSE, FILE_DEVICE_UNKNOWN, NTSTATUS,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_SUCCESS, UNICODE_STRING, nt_success,
};
use io_workitem::{Device, NtSlab, NtWorkItem, QueueType, Routine};

/// Chains started by DriverEntry.
pub const CHAINS: u32 = 8;
/// Requeues per chain (each chain's routine runs `HOPS + 1` times).
pub const HOPS: u32 = 4;
/// Work-item routines run so far.
pub static ROUTINES_RUN: AtomicU32 = AtomicU32::new(0);

/// One chain's state, inline in its slab slot.
struct Chain {
    hops_left: u32,
}

/// Requeue while hops are left (and the slab is not shutting down), then drop the item:
/// `IoUninitializeWorkItem` inside its own routine.
struct Hop;

impl Routine<io_workitem::NtKernel, Chain> for Hop {
    fn run(mut item: NtWorkItem<'_, Chain>) {
        ROUTINES_RUN.fetch_add(1, Ordering::Relaxed);
        // The routine has its device (e.g. to reach the extension), without a raw pointer in
        // the payload.
        let _device: &Device = item.io_object();
        if item.payload().hops_left > 0 && !item.is_shutting_down() {
            item.payload_mut().hops_left -= 1;
            item.queue::<Hop>(QueueType::Delayed);
        }
    }
}

/// The device extension.
struct Extension {
    slab: Option<NtSlab<Chain>>,
}

/// `\Device\ThirdPartyWorkItems`, NUL-terminated UTF-16.
const DEVICE_NAME: [u16; 29] = {
    let s = *b"\\Device\\ThirdPartyWorkItems\0\0";
    let mut w = [0u16; 29];
    let mut i = 0;
    while i < 28 {
        w[i] = s[i] as u16;
        i += 1;
    }
    w
};

fn device_name() -> UNICODE_STRING {
    UNICODE_STRING {
        Length: 27 * 2,
        MaximumLength: 28 * 2,
        Buffer: DEVICE_NAME.as_ptr().cast_mut(),
    }
}

/// Start the chains on a fresh slab; `None` if the slab cannot be created.
fn start(device: &Device) -> Option<NtSlab<Chain>> {
    let slab = NtSlab::<Chain>::new(device, CHAINS, u32::from_le_bytes(*b"TpWi")).ok()?;
    for _ in 0..CHAINS {
        match slab.acquire(Chain { hops_left: HOPS }) {
            Ok(item) => item.queue::<Hop>(QueueType::Delayed),
            Err(_exhausted) => break, // cannot happen: CHAINS slots, CHAINS chains
        }
    }
    Some(slab)
}

io_workitem::nt_abi::kernel_fn! {
    /// Driver entry point (the kernel callback convention of this target).
    ///
    /// # Safety
    /// Called once by the I/O manager at PASSIVE_LEVEL with a valid driver object.
    #[unsafe(no_mangle)]
    pub unsafe fn DriverEntry(driver: *mut DRIVER_OBJECT, _registry: *mut UNICODE_STRING) -> NTSTATUS {
        // SAFETY: forwarded from the caller.
        unsafe { driver_entry(driver) }
    }
}

io_workitem::nt_abi::kernel_fn! {
    /// `DriverUnload`.
    ///
    /// # Safety
    /// Called once by the I/O manager at PASSIVE_LEVEL after a successful DriverEntry.
    unsafe fn driver_unload(driver: *mut DRIVER_OBJECT) {
        // SAFETY: forwarded from the caller.
        unsafe { unload(driver) }
    }
}

/// Create the device, put a slab with running chains in its extension, set the unload routine.
///
/// # Safety
/// As for `DriverEntry`.
unsafe fn driver_entry(driver: *mut DRIVER_OBJECT) -> NTSTATUS {
    let mut name = device_name();
    let mut device: *mut DEVICE_OBJECT = core::ptr::null_mut();
    // SAFETY: `driver` is ours (caller); the name is a static string IoCreateDevice only reads;
    // `device` is a valid out pointer; the extension is sized for `Extension`.
    let status = unsafe {
        IoCreateDevice(
            driver,
            size_of::<Extension>() as u32,
            &mut name,
            FILE_DEVICE_UNKNOWN,
            0,
            FALSE,
            &mut device,
        )
    };
    if !nt_success(status) {
        return status;
    }
    // SAFETY: IoCreateDevice succeeded: `device` is live until IoDeleteDevice (below, or in
    // unload), and DriverEntry owns it exclusively until it returns.
    let device = unsafe { &mut *device };
    // SAFETY: `device` is live; this borrow ends with DriverEntry (the slab takes its own
    // reference on the object).
    let dev: &Device = unsafe { Device::from_raw(device) };
    let Some(slab) = start(dev) else {
        // SAFETY: created above, nothing refers to it.
        unsafe { IoDeleteDevice(device) };
        return STATUS_INSUFFICIENT_RESOURCES;
    };
    let extension = device.DeviceExtension.cast::<Extension>();
    // SAFETY: the zeroed, nonpaged extension of a fresh device is ours, sized and aligned for
    // `Extension` (device objects and their extensions are 16-aligned) and holds no value yet.
    unsafe { extension.write(Extension { slab: Some(slab) }) };
    device.Flags &= !DO_DEVICE_INITIALIZING;
    // SAFETY: the driver object is ours during DriverEntry (caller).
    unsafe { (*driver).DriverUnload = Some(driver_unload) };
    STATUS_SUCCESS
}

/// Drain and free the slab (dropping it waits for every chain), then delete the device.
///
/// # Safety
/// As for `driver_unload`.
unsafe fn unload(driver: *mut DRIVER_OBJECT) {
    // SAFETY: our driver object, valid during unload.
    let device = unsafe { (*driver).DeviceObject };
    // SAFETY: DriverEntry created this device; no request or routine writes it during unload.
    let extension = unsafe { (*device).DeviceExtension }.cast::<Extension>();
    // SAFETY: DriverEntry wrote an `Extension` there and unload runs once, so the slab is taken
    // out (and dropped: drain, free, dereference) exactly once.
    let slab = unsafe { (*extension).slab.take() };
    drop(slab);
    // SAFETY: the slab is gone, so no work item uses the device; nothing else refers to it.
    unsafe { IoDeleteDevice(device) };
}

/// The MSVC float marker `core` may reference; no CRT provides it in a kernel image.
#[unsafe(no_mangle)]
pub static _fltused: i32 = 0;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: KeBugCheckEx may be called at any IRQL and never returns.
    unsafe { KeBugCheckEx(0xE2, 0, 0, 0, 0) }
}
