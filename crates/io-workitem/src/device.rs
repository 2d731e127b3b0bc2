//! The I/O object work items are bound to.

use core::cell::UnsafeCell;
use core::ffi::c_void;

use nt_abi::{DEVICE_OBJECT, DRIVER_OBJECT};

/// A device object: the `IoObject` the work items of a [`Slab`](crate::Slab) are initialized
/// against.
///
/// A driver gets a `&Device` from the `PDEVICE_OBJECT` `IoCreateDevice` returned, with
/// [`Device::from_raw`] — the one `unsafe` step. [`Slab::new`](crate::Slab::new) only borrows it:
/// the slab takes its own reference on the object (`ObReferenceObject`) and releases it when its
/// teardown is complete, so the slab may live anywhere (in the device extension, in a static)
/// without a `'static` promise about the device. Rust never reads or writes the object through
/// this type; it only hands the pointer to the kernel.
///
/// ```
/// # #[path = "../tests/support/fake.rs"] mod fake;
/// # fn main() {
/// use io_workitem::{Device, Slab};
/// # type Kernel = fake::Fake<0>;
/// # let fake_device = fake::FakeDevice::new();
/// # let device_object: *mut io_workitem::nt_abi::DEVICE_OBJECT = fake_device.as_ptr();
///
/// // In DriverEntry, right after IoCreateDevice:
/// // SAFETY: `device_object` is the live device IoCreateDevice just created; the reference is
/// // only used within this function (the slab takes its own).
/// let device: &Device = unsafe { Device::from_raw(device_object) };
/// let slab = Slab::<Kernel, u64>::new(device, 256, u32::from_le_bytes(*b"WiSl")).unwrap();
/// assert_eq!(slab.capacity(), 256);
/// drop(slab); // in DriverUnload, before IoDeleteDevice: drains, frees, dereferences
/// # fake::Fake::<0>::state().assert_no_leaks();
/// # }
/// ```
///
/// # Invariants
///
/// A `&'a Device` points to a live `DEVICE_OBJECT` (one the I/O manager created, with a
/// reference count above zero) for all of `'a`. Every `&Device` is made by
/// [`Device::from_raw`], whose caller promises exactly that; the crate's `SAFETY` comments cite
/// this invariant when they hand the pointer to the kernel.
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
    /// `device` points to a live `DEVICE_OBJECT` (from `IoCreateDevice`, or one the driver holds
    /// a reference on) that is not deleted during `'a`. `'a` only needs to cover the uses of the
    /// reference itself (e.g. the [`Slab::new`](crate::Slab::new) call): a slab keeps the object
    /// alive by its own reference.
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

/// A driver object, usable as the `IoObject` of a slab whose items are only ever queued with
/// `IoQueueWorkItemEx` (the kernel accepts a driver object there, not for `IoQueueWorkItem`). On
/// a `Slab<B, P, Driver>`, [`WorkItem::queue`](crate::WorkItem::queue) does not exist; only
/// [`queue_ex`](crate::WorkItem::queue_ex) does.
///
/// ```
/// # #[path = "../tests/support/fake.rs"] mod fake;
/// # fn main() {
/// use core::sync::atomic::{AtomicU32, Ordering};
/// use io_workitem::{Backend, Driver, QueueType, Routine, Slab, WorkItem};
/// # type Kernel = fake::Fake<1>;
/// # let fake_driver = fake::FakeDriver::new();
/// # let driver_object = fake_driver.as_ptr();
///
/// static LOGGED: AtomicU32 = AtomicU32::new(0);
///
/// struct Log;
/// impl<B: Backend> Routine<B, u32, Driver> for Log {
///     fn run(item: WorkItem<'_, B, u32, Driver>) {
///         LOGGED.fetch_add(*item.payload(), Ordering::Relaxed);
///     }
/// }
///
/// // SAFETY: the driver object DriverEntry received, live while the driver is loaded.
/// let driver: &Driver = unsafe { Driver::from_raw(driver_object) };
/// let slab = Slab::<Kernel, u32, Driver>::new(driver, 8, u32::from_le_bytes(*b"WiDr")).unwrap();
/// let item = slab.acquire(5).unwrap();
/// item.queue_ex::<Log>(QueueType::Delayed);
/// drop(slab); // waits for the routine
/// assert_eq!(LOGGED.load(Ordering::Relaxed), 5);
/// # fake::Fake::<1>::state().assert_no_leaks();
/// # }
/// ```
///
/// # Invariants
///
/// As for [`Device`]: a `&'a Driver` points to a live `DRIVER_OBJECT` for all of `'a`.
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
    /// `driver` points to the live `DRIVER_OBJECT` passed to `DriverEntry`, and stays live during
    /// `'a` (a slab built on it takes its own reference).
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

pub(crate) mod sealed {
    use core::ffi::c_void;

    pub trait Sealed {
        /// The object behind an `IoObject` pointer this type produced.
        ///
        /// # Safety
        ///
        /// `object` came from `io_object_ptr` of a `Self` and the object is live for `'a`.
        unsafe fn from_io_object_ptr<'a>(object: *mut c_void) -> &'a Self;
    }
    impl Sealed for super::Device {
        unsafe fn from_io_object_ptr<'a>(object: *mut c_void) -> &'a Self {
            // SAFETY: the pointer is a `DEVICE_OBJECT`'s, live for `'a` (caller), and `Device` is
            // `repr(transparent)` over it.
            unsafe { super::Device::from_raw(object.cast()) }
        }
    }
    impl Sealed for super::Driver {
        unsafe fn from_io_object_ptr<'a>(object: *mut c_void) -> &'a Self {
            // SAFETY: as above, for a `DRIVER_OBJECT`.
            unsafe { super::Driver::from_raw(object.cast()) }
        }
    }
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
