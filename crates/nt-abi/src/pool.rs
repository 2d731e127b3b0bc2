//! Pool allocation flags (`POOL_FLAGS` for `ExAllocatePool2`) and legacy pool types.
#![allow(non_camel_case_types)]

pub type POOL_FLAGS = u64;

pub const POOL_FLAG_REQUIRED_START: POOL_FLAGS = 0x0000_0000_0000_0001;
pub const POOL_FLAG_USE_QUOTA: POOL_FLAGS = 0x0000_0000_0000_0001;
pub const POOL_FLAG_UNINITIALIZED: POOL_FLAGS = 0x0000_0000_0000_0002;
pub const POOL_FLAG_SESSION: POOL_FLAGS = 0x0000_0000_0000_0004;
pub const POOL_FLAG_CACHE_ALIGNED: POOL_FLAGS = 0x0000_0000_0000_0008;
pub const POOL_FLAG_RAISE_ON_FAILURE: POOL_FLAGS = 0x0000_0000_0000_0020;
pub const POOL_FLAG_NON_PAGED: POOL_FLAGS = 0x0000_0000_0000_0040;
pub const POOL_FLAG_NON_PAGED_EXECUTE: POOL_FLAGS = 0x0000_0000_0000_0080;
pub const POOL_FLAG_PAGED: POOL_FLAGS = 0x0000_0000_0000_0100;
pub const POOL_FLAG_REQUIRED_END: POOL_FLAGS = 0x0000_0000_8000_0000;

/// Legacy `POOL_TYPE` for `ExAllocatePoolWithTag`.
pub type POOL_TYPE = i32;
pub const NON_PAGED_POOL: POOL_TYPE = 0;
pub const PAGED_POOL: POOL_TYPE = 1;
pub const NON_PAGED_POOL_NX: POOL_TYPE = 512;

/// Allocations from pool are aligned to `MEMORY_ALLOCATION_ALIGNMENT` on x64.
pub const MEMORY_ALLOCATION_ALIGNMENT: usize = 16;

/// Build a pool tag the way C source writes `'abcd'`: the first character is the low byte, so
/// the tag reads correctly in a debugger's memory view.
pub const fn pool_tag(tag: [u8; 4]) -> u32 {
    u32::from_le_bytes(tag)
}
