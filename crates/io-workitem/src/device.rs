//! The I/O object work items are bound to.

use core::cell::UnsafeCell;
use core::ffi::c_void;

use nt_abi::{DEVICE_OBJECT, DRIVER_OBJECT};

/// A borrowed device object: the `IoObject` every work item in a [`Slab`](crate::Slab) is
/// initialized against.
///
/// A `&'dev Device` is what a slab borrows, so the compiler keeps the slab, and every item taken
/// from it, inside the device's lifetime. Rust never reads or writes the object through this
/// type; it only hands the pointer to the kernel.
///
/// ```
/// use io_workitem::{Backend, Device, Slab};
/// use nt_abi::{DEVICE_OBJECT, DRIVER_OBJECT};
///
/// /// `device` comes from `IoCreateDevice` in DriverEntry and is deleted in DriverUnload, after
/// /// the slab built here has been dropped.
/// unsafe fn slab_for<B: Backend>(device: *mut DEVICE_OBJECT) -> Option<Slab<'static, B, u64>> {
///     // SAFETY: (the caller's promise above) the device outlives every use of the slab.
///     let device: &'static Device = unsafe { Device::from_raw(device) };
///     Slab::new(device, 256, u32::from_le_bytes(*b"WiSl")).ok()
/// }
/// ```
#[repr(transparent)]
pub struct Device(UnsafeCell<DEVICE_OBJECT>);

// SAFETY: a `Device` is only ever used as an opaque address passed to kernel routines, which do
// their own synchronization; no Rust code reads or writes through a shared `&Device`.
unsafe impl Sync for Device {}
// SAFETY: as above; the object is owned by the I/O manager, not by any Rust thread.
unsafe impl Send for Device {}

impl Device {
    /// View a kernel device object as a `&'a Device`.
    ///
    /// # Safety
    ///
    /// `device` points to a live `DEVICE_OBJECT` (from `IoCreateDevice`) that is not deleted
    /// during `'a`. The driver chooses `'a`: for a device created in `DriverEntry` and deleted in
    /// `DriverUnload` it may be `'static` only if every [`Slab`](crate::Slab) built on it is torn
    /// down (dropped) before `IoDeleteDevice`.
    pub const unsafe fn from_raw<'a>(device: *mut DEVICE_OBJECT) -> &'a Device {
        // SAFETY: `Device` is `repr(transparent)` over `UnsafeCell<DEVICE_OBJECT>`, which has
        // the layout of `DEVICE_OBJECT`; liveness for `'a` is the caller's promise.
        unsafe { &*device.cast::<Device>() }
    }

    /// The `PDEVICE_OBJECT`.
    pub const fn as_raw(&self) -> *mut DEVICE_OBJECT {
        self.0.get()
    }

    /// The object as the untyped `IoObject` `IoInitializeWorkItem` takes.
    pub const fn as_io_object(&self) -> *mut c_void {
        self.0.get().cast()
    }
}

impl core::fmt::Debug for Device {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Device").field(&self.as_raw()).finish()
    }
}

/// A borrowed driver object, usable as the `IoObject` of a slab whose items are only ever
/// queued with `IoQueueWorkItemEx` (the kernel accepts a driver object there, not for
/// `IoQueueWorkItem`). On a `Slab<'_, B, P, Driver>`, [`WorkItem::queue`](crate::WorkItem::queue)
/// does not exist; only [`queue_ex`](crate::WorkItem::queue_ex) does.
///
/// ```
/// use io_workitem::{Backend, Driver, QueueType, Routine, Slab, WorkItem};
///
/// struct Log;
/// impl<B: Backend> Routine<B, u32, Driver> for Log {
///     fn run(item: WorkItem<'_, B, u32, Driver>) {
///         let _ = item.payload();
///     }
/// }
///
/// fn run<B: Backend>(driver: &Driver) {
///     let Ok(slab) = Slab::<B, u32, Driver>::new(driver, 8, u32::from_le_bytes(*b"WiDr")) else {
///         return;
///     };
///     if let Ok(item) = slab.acquire(1) {
///         item.queue_ex::<Log>(QueueType::Delayed);
///     }
/// }
/// ```
#[repr(transparent)]
pub struct Driver(UnsafeCell<DRIVER_OBJECT>);

// SAFETY: as for `Device`: only an opaque address handed to the kernel.
unsafe impl Sync for Driver {}
// SAFETY: as above.
unsafe impl Send for Driver {}

impl Driver {
    /// View a kernel driver object as a `&'a Driver`.
    ///
    /// # Safety
    ///
    /// `driver` points to the live `DRIVER_OBJECT` passed to `DriverEntry`, and every
    /// [`Slab`](crate::Slab) built on it is dropped before `'a` ends (at the latest in
    /// `DriverUnload`).
    pub const unsafe fn from_raw<'a>(driver: *mut DRIVER_OBJECT) -> &'a Driver {
        // SAFETY: `Driver` is `repr(transparent)` over `UnsafeCell<DRIVER_OBJECT>`; liveness for
        // `'a` is the caller's promise.
        unsafe { &*driver.cast::<Driver>() }
    }

    /// The `PDRIVER_OBJECT`.
    pub const fn as_raw(&self) -> *mut DRIVER_OBJECT {
        self.0.get()
    }
}

impl core::fmt::Debug for Driver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Driver").field(&self.as_raw()).finish()
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Device {}
    impl Sealed for super::Driver {}
}

/// The kinds of object a work item can be initialized against: [`Device`] (queue with either
/// entry point) or [`Driver`] (`IoQueueWorkItemEx` only). Sealed.
pub trait IoObject: sealed::Sealed + Sync + Send + 'static {
    /// The untyped `IoObject` pointer `IoInitializeWorkItem` takes.
    fn io_object_ptr(&self) -> *mut c_void;
}

impl IoObject for Device {
    fn io_object_ptr(&self) -> *mut c_void {
        self.as_io_object()
    }
}

impl IoObject for Driver {
    fn io_object_ptr(&self) -> *mut c_void {
        self.0.get().cast()
    }
}
