//! I/O control code construction (`CTL_CODE`) and its fields.
use crate::types::ULONG;

pub const FILE_DEVICE_UNKNOWN: ULONG = 0x0000_0022;

pub const METHOD_BUFFERED: ULONG = 0;
pub const METHOD_IN_DIRECT: ULONG = 1;
pub const METHOD_OUT_DIRECT: ULONG = 2;
pub const METHOD_NEITHER: ULONG = 3;

pub const FILE_ANY_ACCESS: ULONG = 0;
pub const FILE_READ_ACCESS: ULONG = 1;
pub const FILE_WRITE_ACCESS: ULONG = 2;

/// Function numbers below this are reserved for Microsoft.
pub const VENDOR_FUNCTION_MIN: ULONG = 0x800;
pub const VENDOR_FUNCTION_MAX: ULONG = 0xFFF;

/// `CTL_CODE(DeviceType, Function, Method, Access)`.
pub const fn ctl_code(device_type: ULONG, function: ULONG, method: ULONG, access: ULONG) -> ULONG {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// The transfer method (low two bits) of an IOCTL code.
pub const fn ctl_method(code: ULONG) -> ULONG {
    code & 3
}

/// The required-access bits (bits 14–15) of an IOCTL code.
pub const fn ctl_access(code: ULONG) -> ULONG {
    (code >> 14) & 3
}

/// The function number (bits 2–13) of an IOCTL code.
pub const fn ctl_function(code: ULONG) -> ULONG {
    (code >> 2) & 0xFFF
}

/// The device type (bits 16–31) of an IOCTL code.
pub const fn ctl_device_type(code: ULONG) -> ULONG {
    code >> 16
}

// Generic access rights as they reach a file handle (winnt.h).
pub const FILE_READ_DATA: ULONG = 0x0001;
pub const FILE_WRITE_DATA: ULONG = 0x0002;
pub const GENERIC_READ: ULONG = 0x8000_0000;
pub const GENERIC_WRITE: ULONG = 0x4000_0000;
pub const GENERIC_ALL: ULONG = 0x1000_0000;
pub const SYNCHRONIZE: ULONG = 0x0010_0000;
