//! Run-time library: `RtlInitUnicodeString` and string helpers; counted strings
//! ([`string`]), memory and bitmaps ([`memory`]), the CRT routines ntoskrnl exports ([`crt`]).
#![allow(non_snake_case)]

use std::sync::OnceLock;

use nt_abi::*;

pub mod crt;
pub mod memory;
pub mod string;
pub mod unwind;
pub mod version;

/// How Rtl allocates and frees string buffers: paged pool, charged to the calling driver. The
/// pool lives in `ex`, above this leaf layer, so the composition root registers these.
#[derive(Clone, Copy)]
pub(crate) struct PoolHooks {
    /// Allocate `bytes` of paged pool with a tag (NULL on failure).
    pub alloc: fn(usize, u32) -> *mut u8,
    /// Free a block with the tag it was allocated with.
    pub free: fn(*mut u8, u32),
}

static POOL: OnceLock<PoolHooks> = OnceLock::new();

/// Register the pool hooks (the first registration wins; every machine uses the same ones).
pub(crate) fn set_pool_hooks(h: PoolHooks) {
    let _ = POOL.set(h);
}

fn pool() -> PoolHooks {
    *POOL
        .get()
        .expect("rtl pool hooks are registered when a machine is created")
}

/// `RtlInitUnicodeString`: point `DestinationString` at the NUL-terminated `SourceString`.
///
/// # Safety
/// `DestinationString` must be writable; `SourceString` null or NUL-terminated.
pub unsafe extern "win64" fn RtlInitUnicodeString(
    DestinationString: *mut UNICODE_STRING,
    SourceString: *const WCHAR,
) {
    let mut n = 0usize;
    if !SourceString.is_null() {
        // The caller guarantees a NUL-terminated string; we stop at the NUL (and at the largest
        // length a UNICODE_STRING can describe).
        // SAFETY: index `n` is at or before the terminator.
        while n < 0x7FFE && unsafe { SourceString.wrapping_add(n).read() } != 0 {
            n += 1;
        }
    }
    let len = (n * 2).min(0xFFFC) as u16;
    let us = UNICODE_STRING {
        Length: len,
        MaximumLength: if SourceString.is_null() { 0 } else { len + 2 },
        Buffer: SourceString as *mut WCHAR,
    };
    // SAFETY: the caller guarantees `DestinationString` is writable.
    unsafe { DestinationString.write(us) };
}

/// Read a `UNICODE_STRING*` into a Rust string (lossy). Null → None.
///
/// # Safety
/// `s` must be null or point to a valid UNICODE_STRING whose buffer holds `Length` bytes.
pub unsafe fn read_unicode(s: *const UNICODE_STRING) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // x64 Windows does not fault on misaligned data, so a driver's misaligned pointer is read as
    // the CPU would read it (Rust references and `*p` require alignment; `read_unaligned` does
    // not). A bad address still faults, and the fault handler makes it a bug check.
    // SAFETY: non-null per the contract; the struct is plain data.
    let us = unsafe { s.read_unaligned() };
    if us.Buffer.is_null() || us.Length == 0 {
        return Some(String::new());
    }
    let w: Vec<u16> = (0..us.Length as usize / 2)
        // SAFETY: the buffer holds `Length` bytes (= Length/2 WCHARs) per the contract.
        .map(|i| unsafe { us.Buffer.wrapping_add(i).read_unaligned() })
        .collect();
    Some(String::from_utf16_lossy(&w))
}

/// Read a NUL-terminated wide string.
///
/// # Safety
/// `p` must be null or NUL-terminated.
pub unsafe fn read_wstr(p: *const u16) -> Option<String> {
    if p.is_null() {
        return None;
    }
    let mut v = Vec::new();
    let mut i = 0;
    // NUL-terminated per the contract; bounded to 64 Ki characters.
    loop {
        // SAFETY: index `i` is at or before the terminator (unaligned: see `read_unicode`).
        let c = unsafe { p.wrapping_add(i).read_unaligned() };
        if c == 0 || i >= 65536 {
            break;
        }
        v.push(c);
        i += 1;
    }
    Some(String::from_utf16_lossy(&v))
}

/// Read a NUL-terminated narrow string.
///
/// # Safety
/// `p` must be null or NUL-terminated.
pub unsafe fn read_cstr(p: *const u8) -> Option<Vec<u8>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: NUL-terminated per the contract.
    Some(
        unsafe { core::ffi::CStr::from_ptr(p.cast()) }
            .to_bytes()
            .to_vec(),
    )
}

/// Encode a Rust string as a NUL-terminated UTF-16 vector.
pub fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(core::iter::once(0)).collect()
}
