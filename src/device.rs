//! The device extension: everything the driver owns lives here, in the nonpaged extension of
//! `\Device\WdmWorkItem`, created by DriverEntry and torn down by unload.
use nt_abi::status::*;
use nt_abi::*;

use crate::engine::Engine;
use crate::kernel::{Rundown, SpinLock, perf_counter};
use ioctl::CycleStats;

/// `'WiwX'`: marks an initialized extension.
const EXTENSION_MAGIC: u32 = pool_tag(*b"WiwX");

#[repr(C)]
pub struct DeviceExtension {
    magic: u32,
    /// What `IoSizeofWorkItem()` returned at DriverEntry.
    pub io_sizeof_work_item: u32,
    /// Ticks per second of `KeQueryPerformanceCounter`.
    pub perf_frequency: u64,
    /// Requests inside the driver; closed by unload.
    pub rundown: Rundown,
    /// Cumulative statistics of every successful run-cycles request.
    pub totals: SpinLock<CycleStats>,
    /// The work-item engine (slab and cycle runner).
    pub engine: Engine,
}

impl DeviceExtension {
    /// Build the extension in place.
    ///
    /// # Safety
    /// `device` is a freshly created device object whose extension is at least
    /// `size_of::<DeviceExtension>()` bytes, suitably aligned, and used by nothing else; `driver`
    /// is its driver object. On failure nothing has been written that needs tearing down.
    pub unsafe fn initialize(device: *mut DEVICE_OBJECT, driver: *mut DRIVER_OBJECT) -> NTSTATUS {
        // SAFETY: `device` is live (caller).
        let ext = unsafe { (*device).DeviceExtension }.cast::<DeviceExtension>();
        if ext.is_null() || !ext.is_aligned() {
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        let engine = match Engine::new(device, driver) {
            Ok(e) => e,
            Err(status) => return status,
        };
        let (_, perf_frequency) = perf_counter();
        let value = DeviceExtension {
            magic: EXTENSION_MAGIC,
            io_sizeof_work_item: engine.io_sizeof_work_item(),
            perf_frequency,
            rundown: Rundown::new(),
            totals: SpinLock::new(CycleStats::default()),
            engine,
        };
        // SAFETY: `ext` is valid, aligned, exclusively ours storage of the right size (caller);
        // the zeroed bytes there hold no value that needs dropping.
        unsafe { ext.write(value) };
        // SAFETY: `ext` now holds the value written just above.
        let written = unsafe { &*ext };
        // SAFETY: the extension is at its final address and no request can reach the device yet.
        unsafe { written.rundown.init() };
        STATUS_SUCCESS
    }

    /// The extension of our device.
    ///
    /// # Safety
    /// `device` is our device object, initialized by [`DeviceExtension::initialize`] and not yet
    /// torn down, and stays so for the returned lifetime.
    pub unsafe fn from_device<'a>(device: *mut DEVICE_OBJECT) -> &'a DeviceExtension {
        // SAFETY: `device` is our live device object (caller).
        let raw = unsafe { (*device).DeviceExtension }.cast::<DeviceExtension>();
        // SAFETY: per the caller, the extension holds an initialized `DeviceExtension` that stays
        // alive for `'a`.
        let ext = unsafe { &*raw };
        debug_assert_eq!(ext.magic, EXTENSION_MAGIC);
        ext
    }

    /// Wait for in-flight requests, then drain and free the engine (slab and all work items).
    ///
    /// # Safety
    /// `device` was initialized by [`DeviceExtension::initialize`] and is torn down only once;
    /// called at PASSIVE_LEVEL. Afterwards the extension holds no value.
    pub unsafe fn teardown(device: *mut DEVICE_OBJECT) {
        // SAFETY: initialized extension (caller).
        let ext = unsafe { (*device).DeviceExtension }.cast::<DeviceExtension>();
        // SAFETY: as above; shared access while requests may still run.
        let shared = unsafe { &*ext };
        shared.rundown.close_and_wait();
        // SAFETY: the gate is closed and every request has left, so nothing else references
        // the extension; dropping the engine drains its work items before freeing the slab.
        unsafe { core::ptr::drop_in_place(ext) };
        // SAFETY: still our storage; clearing the magic marks it dead for debuggers.
        unsafe { (*ext).magic = 0 };
    }
}

/// A `UNICODE_STRING` over a static NUL-terminated UTF-16 string (read-only uses only).
pub fn unicode(s: &'static [u16]) -> UNICODE_STRING {
    let chars = s.len().saturating_sub(1);
    UNICODE_STRING {
        Length: (chars * 2) as USHORT,
        MaximumLength: (s.len() * 2) as USHORT,
        Buffer: s.as_ptr().cast_mut(),
    }
}
