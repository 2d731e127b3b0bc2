//! Typed ids of the emulated kernel's objects, so a driver id cannot be passed where a device
//! address is expected. Leaf module: every subsystem may use it, it uses none.
use nt_abi::{DEVICE_OBJECT, DRIVER_OBJECT, FILE_OBJECT, PIO_WORKITEM};

/// Index of a driver in the I/O manager's driver list (0 is the pseudo-driver "host").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DriverId(pub(crate) usize);

impl DriverId {
    /// No driver: threads of the I/O manager itself, system worker threads between routines.
    pub(crate) const NONE: DriverId = DriverId(usize::MAX);
    /// The in-process pseudo-driver "host" (created first by `Machine::new`).
    pub(crate) const HOST: DriverId = DriverId(0);
}

/// Address of an object ntsim created (DRIVER_OBJECT, DEVICE_OBJECT, FILE_OBJECT): the object
/// manager's key, as the object body address is on Windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ObjectId(pub(crate) usize);

/// A DEVICE_OBJECT ntsim created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DeviceId(pub(crate) usize);

impl DeviceId {
    pub(crate) fn from_ptr(p: *mut DEVICE_OBJECT) -> Self {
        DeviceId(p as usize)
    }
    pub(crate) fn ptr(self) -> *mut DEVICE_OBJECT {
        self.0 as *mut DEVICE_OBJECT
    }
    pub(crate) fn object(self) -> ObjectId {
        ObjectId(self.0)
    }
}

/// A FILE_OBJECT: what a host [`crate::Handle`] refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FileId(pub(crate) usize);

impl FileId {
    pub(crate) fn from_ptr(p: *mut FILE_OBJECT) -> Self {
        FileId(p as usize)
    }
    pub(crate) fn ptr(self) -> *mut FILE_OBJECT {
        self.0 as *mut FILE_OBJECT
    }
    pub(crate) fn object(self) -> ObjectId {
        ObjectId(self.0)
    }
}

/// A DRIVER_OBJECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DriverObj(pub(crate) usize);

impl DriverObj {
    pub(crate) fn ptr(self) -> *mut DRIVER_OBJECT {
        self.0 as *mut DRIVER_OBJECT
    }
    pub(crate) fn object(self) -> ObjectId {
        ObjectId(self.0)
    }
}

/// The caller-allocated storage of a work item (its IO_WORKITEM address): the work-item
/// table's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ItemId(pub(crate) usize);

impl ItemId {
    pub(crate) fn ptr(self) -> PIO_WORKITEM {
        self.0 as PIO_WORKITEM
    }
}
