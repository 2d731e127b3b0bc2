//! NTSTATUS values (ntstatus.h) used by the driver, the harness and ntsim.
use crate::types::NTSTATUS;

macro_rules! statuses {
    ($($name:ident = $value:expr;)*) => {
        $(pub const $name: NTSTATUS = $value as u32 as NTSTATUS;)*
        /// The symbolic name of a known status, for reports and messages.
        pub fn status_name(status: NTSTATUS) -> Option<&'static str> {
            match status {
                $(x if x == $name => Some(stringify!($name)),)*
                _ => None,
            }
        }
    };
}

statuses! {
    STATUS_SUCCESS = 0x0000_0000u32;
    STATUS_PENDING = 0x0000_0103u32;
    STATUS_TIMEOUT = 0x0000_0102u32;
    STATUS_ALERTED = 0x0000_0101u32;
    STATUS_BUFFER_OVERFLOW = 0x8000_0005u32;
    STATUS_UNSUCCESSFUL = 0xC000_0001u32;
    STATUS_NOT_IMPLEMENTED = 0xC000_0002u32;
    STATUS_INVALID_HANDLE = 0xC000_0008u32;
    STATUS_INVALID_PARAMETER = 0xC000_000Du32;
    STATUS_NO_SUCH_DEVICE = 0xC000_000Eu32;
    STATUS_INVALID_DEVICE_REQUEST = 0xC000_0010u32;
    STATUS_ACCESS_DENIED = 0xC000_0022u32;
    STATUS_BUFFER_TOO_SMALL = 0xC000_0023u32;
    STATUS_OBJECT_NAME_INVALID = 0xC000_0033u32;
    STATUS_OBJECT_NAME_NOT_FOUND = 0xC000_0034u32;
    STATUS_OBJECT_NAME_COLLISION = 0xC000_0035u32;
    STATUS_INSUFFICIENT_RESOURCES = 0xC000_009Au32;
    STATUS_NOT_SUPPORTED = 0xC000_00BBu32;
    STATUS_DEVICE_BUSY = 0x8000_0011u32;
    STATUS_CANCELLED = 0xC000_0120u32;
    STATUS_REVISION_MISMATCH = 0xC000_0059u32;
    STATUS_INVALID_BUFFER_SIZE = 0xC000_0206u32;
    STATUS_DEVICE_NOT_READY = 0xC000_00A3u32;
    STATUS_DELETE_PENDING = 0xC000_0056u32;
    STATUS_INTEGER_OVERFLOW = 0xC000_0095u32;
    STATUS_ACCESS_VIOLATION = 0xC000_0005u32;
    STATUS_ILLEGAL_INSTRUCTION = 0xC000_001Du32;
    STATUS_BREAKPOINT = 0x8000_0003u32;
    STATUS_INTEGER_DIVIDE_BY_ZERO = 0xC000_0094u32;
}

/// `NT_SUCCESS(status)`: informational and success codes are non-negative.
pub const fn nt_success(status: NTSTATUS) -> bool {
    status >= 0
}
