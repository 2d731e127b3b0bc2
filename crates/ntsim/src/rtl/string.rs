//! Counted strings: `UNICODE_STRING` and `ANSI_STRING` routines (wdm.h / ntddk.h), with the
//! documented length rules, buffer-too-small statuses and pool allocation.
//!
//! Sources (Microsoft, `learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-<name>`
//! unless noted): RtlInitAnsiString, RtlInitString, RtlInitUnicodeStringEx (ntddk/wdm),
//! RtlCopyUnicodeString, RtlAppendUnicodeToString, RtlAppendUnicodeStringToString,
//! RtlCompareUnicodeString, RtlEqualUnicodeString, RtlPrefixUnicodeString, RtlUpcaseUnicodeChar,
//! RtlUpcaseUnicodeString, RtlDowncaseUnicodeChar (ntddk), RtlUnicodeStringToInteger,
//! RtlIntegerToUnicodeString, RtlAnsiStringToUnicodeString, RtlUnicodeStringToAnsiString,
//! RtlFreeUnicodeString, RtlFreeAnsiString, RtlCompareString / RtlEqualString (ntddk),
//! RtlCreateUnicodeString (ntddk). Where the pages are silent (which size includes the NUL,
//! what is left in the destination on failure), ReactOS `sdk/lib/rtl/unicode.c` is followed.
//!
//! Deviations: the ANSI code page is ISO-8859-1 (byte n ↔ U+00n; Windows uses the system ANSI
//! code page, 1252 on western systems, which differs in 0x80–0x9F) and a WCHAR above U+00FF
//! becomes `?` (the default character); case mapping of WCHARs is Unicode's simple one-to-one
//! mapping (characters whose upper case is several characters, like U+00DF, are unchanged),
//! where Windows uses its NLS upcase table; ANSI case-insensitivity is ASCII only (the "C"
//! locale). Allocations come from paged pool with the tags ReactOS uses
//! (`nt_abi::rtl::RTL_UNICODE_STRING_TAG` "USTR", `RTL_ANSI_STRING_TAG` "ASTR"), charged to the
//! calling driver, so pool tracking reports a string the driver never frees, and
//! `RtlFreeUnicodeString` of a buffer from elsewhere is a free with the wrong tag (0xC2/0x0A)
//! or of an unknown address (0xC4/0x10).
#![allow(non_snake_case)]

use nt_abi::rtl::*;
use nt_abi::*;

use super::pool;

/// Read a string header wherever it is (x64 does not fault on misaligned data).
unsafe fn hdr<T: Copy>(p: *const T) -> T {
    // SAFETY: the caller passes a readable header.
    unsafe { p.read_unaligned() }
}

/// The WCHARs of a UNICODE_STRING (`Length / 2` of them).
///
/// # Safety
/// `s` null or a valid UNICODE_STRING whose Buffer holds Length bytes.
pub(crate) unsafe fn wchars(s: *const UNICODE_STRING) -> Vec<u16> {
    if s.is_null() {
        return Vec::new();
    }
    // SAFETY: per the contract.
    let us = unsafe { hdr(s) };
    if us.Buffer.is_null() {
        return Vec::new();
    }
    (0..us.Length as usize / 2)
        // SAFETY: the buffer holds Length bytes.
        .map(|i| unsafe { us.Buffer.wrapping_add(i).read_unaligned() })
        .collect()
}

/// The bytes of an ANSI_STRING.
///
/// # Safety
/// `s` null or a valid ANSI_STRING whose Buffer holds Length bytes.
pub(crate) unsafe fn achars(s: *const ANSI_STRING) -> Vec<u8> {
    if s.is_null() {
        return Vec::new();
    }
    // SAFETY: per the contract.
    let a = unsafe { hdr(s) };
    if a.Buffer.is_null() || a.Length == 0 {
        return Vec::new();
    }
    // SAFETY: the buffer holds Length bytes.
    unsafe { core::slice::from_raw_parts(a.Buffer, a.Length as usize) }.to_vec()
}

/// Length in WCHARs of a NUL-terminated wide string (unaligned reads).
///
/// # Safety
/// `p` must be NUL-terminated.
pub(crate) unsafe fn wlen(p: *const u16) -> usize {
    let mut n = 0;
    // SAFETY: every index up to the terminator is readable.
    while unsafe { p.wrapping_add(n).read_unaligned() } != 0 {
        n += 1;
    }
    n
}

/// Unicode simple upper-case mapping of one UTF-16 unit (surrogates and characters whose upper
/// case is not a single BMP character are unchanged).
pub fn upcase(c: u16) -> u16 {
    map_case(c, true)
}

/// Unicode simple lower-case mapping (see [`upcase`]).
pub fn downcase(c: u16) -> u16 {
    map_case(c, false)
}

fn map_case(c: u16, up: bool) -> u16 {
    if c < 0x80 {
        let b = c as u8;
        return if up {
            b.to_ascii_uppercase()
        } else {
            b.to_ascii_lowercase()
        } as u16;
    }
    let Some(ch) = char::from_u32(c as u32) else {
        return c;
    };
    let mut it: Box<dyn Iterator<Item = char>> = if up {
        Box::new(ch.to_uppercase())
    } else {
        Box::new(ch.to_lowercase())
    };
    match (it.next(), it.next()) {
        (Some(m), None) if (m as u32) < 0x10000 => m as u16,
        _ => c,
    }
}

/// `RtlInitAnsiString` / `RtlInitString`: Length = strlen (bounded to 0xFFFE), MaximumLength =
/// Length + 1; a NULL source gives 0/0/NULL.
///
/// # Safety
/// `DestinationString` writable; `SourceString` null or NUL-terminated.
pub unsafe extern "win64" fn RtlInitAnsiString(
    DestinationString: *mut ANSI_STRING,
    SourceString: *const u8,
) {
    let mut n = 0usize;
    if !SourceString.is_null() {
        // SAFETY: NUL-terminated per the contract; bounded.
        while n < 0xFFFE && unsafe { SourceString.wrapping_add(n).read() } != 0 {
            n += 1;
        }
    }
    let a = ANSI_STRING {
        Length: n as u16,
        MaximumLength: if SourceString.is_null() {
            0
        } else {
            n as u16 + 1
        },
        Buffer: SourceString as *mut u8,
    };
    // SAFETY: writable per the contract.
    unsafe { DestinationString.write_unaligned(a) };
}

/// `RtlInitString`: the same as `RtlInitAnsiString`.
///
/// # Safety
/// As for [`RtlInitAnsiString`].
pub unsafe extern "win64" fn RtlInitString(
    DestinationString: *mut ANSI_STRING,
    SourceString: *const u8,
) {
    // SAFETY: same contract.
    unsafe { RtlInitAnsiString(DestinationString, SourceString) }
}

/// `RtlInitUnicodeStringEx`: as `RtlInitUnicodeString`, but a source longer than 0xFFFC bytes
/// (so that MaximumLength would pass UNICODE_STRING_MAX_BYTES) is STATUS_NAME_TOO_LONG and the
/// destination is left 0/0/NULL (ReactOS).
///
/// # Safety
/// `DestinationString` writable; `SourceString` null or NUL-terminated.
pub unsafe extern "win64" fn RtlInitUnicodeStringEx(
    DestinationString: *mut UNICODE_STRING,
    SourceString: *const WCHAR,
) -> NTSTATUS {
    let mut us = UNICODE_STRING {
        Length: 0,
        MaximumLength: 0,
        Buffer: core::ptr::null_mut(),
    };
    let mut status = STATUS_SUCCESS;
    if !SourceString.is_null() {
        let mut n = 0usize;
        // SAFETY: NUL-terminated per the contract; bounded just past the limit.
        while n <= 0x7FFE && unsafe { SourceString.wrapping_add(n).read_unaligned() } != 0 {
            n += 1;
        }
        if n * 2 > (UNICODE_STRING_MAX_BYTES - 2) as usize {
            status = STATUS_NAME_TOO_LONG;
        } else {
            us = UNICODE_STRING {
                Length: (n * 2) as u16,
                MaximumLength: (n * 2 + 2) as u16,
                Buffer: SourceString as *mut WCHAR,
            };
        }
    }
    // SAFETY: writable per the contract.
    unsafe { DestinationString.write_unaligned(us) };
    status
}

/// Copy `src` (WCHARs) to `dst`'s buffer at WCHAR index `at`, set Length, and NUL-terminate
/// when there is room after the new Length.
unsafe fn put_wchars(dst: *mut UNICODE_STRING, at: usize, src: &[u16]) {
    // SAFETY: the caller passes a writable destination whose buffer holds MaximumLength bytes
    // and checked that `at + src.len()` WCHARs fit.
    let mut d = unsafe { hdr(dst) };
    for (i, &c) in src.iter().enumerate() {
        // SAFETY: within MaximumLength (checked by the caller).
        unsafe { d.Buffer.wrapping_add(at + i).write_unaligned(c) };
    }
    let len = (at + src.len()) * 2;
    d.Length = len as u16;
    if len + 2 <= d.MaximumLength as usize {
        // SAFETY: room for the terminator inside MaximumLength.
        unsafe { d.Buffer.wrapping_add(at + src.len()).write_unaligned(0) };
    }
    // SAFETY: writable per the caller's contract.
    unsafe { dst.write_unaligned(d) };
}

/// `RtlCopyUnicodeString`: copies min(Source.Length, Destination.MaximumLength) bytes (whole
/// WCHARs), NUL-terminates when there is room; a NULL source sets Length 0.
///
/// # Safety
/// Valid strings (the destination's buffer holds MaximumLength bytes).
pub unsafe extern "win64" fn RtlCopyUnicodeString(
    DestinationString: *mut UNICODE_STRING,
    SourceString: *const UNICODE_STRING,
) {
    // SAFETY: per the contract.
    let d = unsafe { hdr(DestinationString) };
    // SAFETY: per the contract.
    let mut s = unsafe { wchars(SourceString) };
    s.truncate(d.MaximumLength as usize / 2);
    if SourceString.is_null() {
        let mut d = d;
        d.Length = 0;
        // SAFETY: writable.
        unsafe { DestinationString.write_unaligned(d) };
        return;
    }
    // SAFETY: `s` fits MaximumLength.
    unsafe { put_wchars(DestinationString, 0, &s) };
}

fn append(dst: *mut UNICODE_STRING, src: &[u16]) -> NTSTATUS {
    // SAFETY: the exports' callers pass a valid destination.
    let d = unsafe { hdr(dst) };
    let at = d.Length as usize / 2;
    if d.Length as usize + src.len() * 2 > d.MaximumLength as usize {
        return STATUS_BUFFER_TOO_SMALL;
    }
    // SAFETY: checked to fit.
    unsafe { put_wchars(dst, at, src) };
    STATUS_SUCCESS
}

/// `RtlAppendUnicodeToString`: STATUS_BUFFER_TOO_SMALL (nothing changed) when Length +
/// wcslen(Source)·2 exceeds MaximumLength; NUL-terminates when there is room; NULL Source is
/// success.
///
/// # Safety
/// Valid destination; `Source` null or NUL-terminated.
pub unsafe extern "win64" fn RtlAppendUnicodeToString(
    Destination: *mut UNICODE_STRING,
    Source: *const WCHAR,
) -> NTSTATUS {
    if Source.is_null() {
        return STATUS_SUCCESS;
    }
    // SAFETY: NUL-terminated per the contract.
    let n = unsafe { wlen(Source) };
    let src: Vec<u16> = (0..n)
        // SAFETY: within the string.
        .map(|i| unsafe { Source.wrapping_add(i).read_unaligned() })
        .collect();
    append(Destination, &src)
}

/// `RtlAppendUnicodeStringToString`: as above, with a counted source.
///
/// # Safety
/// Valid strings.
pub unsafe extern "win64" fn RtlAppendUnicodeStringToString(
    Destination: *mut UNICODE_STRING,
    Source: *const UNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: per the contract.
    let src = unsafe { wchars(Source) };
    append(Destination, &src)
}

fn compare_units(a: &[u16], b: &[u16], ci: bool) -> i32 {
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = if ci { (upcase(x), upcase(y)) } else { (x, y) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    a.len() as i32 - b.len() as i32
}

/// `RtlCompareUnicodeString`: < 0, 0, > 0 as String1 sorts before, equal to, after String2 —
/// WCHAR by WCHAR (upcased when CaseInSensitive), then by length.
///
/// # Safety
/// Valid strings.
pub unsafe extern "win64" fn RtlCompareUnicodeString(
    String1: *const UNICODE_STRING,
    String2: *const UNICODE_STRING,
    CaseInSensitive: BOOLEAN,
) -> LONG {
    // SAFETY: per the contract.
    let a = unsafe { wchars(String1) };
    // SAFETY: per the contract.
    let b = unsafe { wchars(String2) };
    compare_units(&a, &b, CaseInSensitive != 0)
}

/// `RtlEqualUnicodeString`: TRUE when the lengths and every WCHAR match.
///
/// # Safety
/// Valid strings.
pub unsafe extern "win64" fn RtlEqualUnicodeString(
    String1: *const UNICODE_STRING,
    String2: *const UNICODE_STRING,
    CaseInSensitive: BOOLEAN,
) -> BOOLEAN {
    // SAFETY: per the contract.
    let a = unsafe { wchars(String1) };
    // SAFETY: per the contract.
    let b = unsafe { wchars(String2) };
    (a.len() == b.len() && compare_units(&a, &b, CaseInSensitive != 0) == 0) as BOOLEAN
}

/// `RtlPrefixUnicodeString`: TRUE when String1 is a prefix of String2.
///
/// # Safety
/// Valid strings.
pub unsafe extern "win64" fn RtlPrefixUnicodeString(
    String1: *const UNICODE_STRING,
    String2: *const UNICODE_STRING,
    CaseInSensitive: BOOLEAN,
) -> BOOLEAN {
    // SAFETY: per the contract.
    let a = unsafe { wchars(String1) };
    // SAFETY: per the contract.
    let b = unsafe { wchars(String2) };
    (a.len() <= b.len() && compare_units(&a, &b[..a.len()], CaseInSensitive != 0) == 0) as BOOLEAN
}

/// `RtlUpcaseUnicodeChar`.
///
/// # Safety
/// Always safe.
pub unsafe extern "win64" fn RtlUpcaseUnicodeChar(SourceCharacter: WCHAR) -> WCHAR {
    upcase(SourceCharacter)
}

/// `RtlDowncaseUnicodeChar`.
///
/// # Safety
/// Always safe.
pub unsafe extern "win64" fn RtlDowncaseUnicodeChar(SourceCharacter: WCHAR) -> WCHAR {
    downcase(SourceCharacter)
}

/// Allocate a paged-pool string buffer of `bytes` with `tag`, charged to the calling driver.
fn alloc(bytes: usize, tag: u32) -> *mut u8 {
    (pool().alloc)(bytes, tag)
}

unsafe fn case_string(
    dst: *mut UNICODE_STRING,
    src: *const UNICODE_STRING,
    allocate: BOOLEAN,
    up: bool,
) -> NTSTATUS {
    // SAFETY: per the exports' contracts.
    let s = unsafe { wchars(src) };
    let bytes = s.len() * 2;
    // SAFETY: per the exports' contracts.
    let mut d = unsafe { hdr(dst) };
    if allocate != 0 {
        let b = alloc(bytes.max(1), RTL_UNICODE_STRING_TAG);
        if b.is_null() {
            return STATUS_NO_MEMORY;
        }
        d.Buffer = b.cast();
        d.MaximumLength = bytes as u16;
    } else if bytes > d.MaximumLength as usize {
        return STATUS_BUFFER_OVERFLOW;
    }
    for (i, &c) in s.iter().enumerate() {
        let m = if up { upcase(c) } else { downcase(c) };
        // SAFETY: the buffer holds at least `bytes` bytes (allocated or checked).
        unsafe { d.Buffer.wrapping_add(i).write_unaligned(m) };
    }
    d.Length = bytes as u16;
    // SAFETY: writable.
    unsafe { dst.write_unaligned(d) };
    STATUS_SUCCESS
}

/// `RtlUpcaseUnicodeString`: Destination = upcased Source (same Length, no NUL added). With
/// AllocateDestinationString a buffer of Source.Length bytes comes from paged pool (free it
/// with RtlFreeUnicodeString; STATUS_NO_MEMORY when it cannot); without,
/// STATUS_BUFFER_OVERFLOW when Source.Length > Destination.MaximumLength. Source and
/// destination may be the same string.
///
/// # Safety
/// Valid strings.
pub unsafe extern "win64" fn RtlUpcaseUnicodeString(
    DestinationString: *mut UNICODE_STRING,
    SourceString: *const UNICODE_STRING,
    AllocateDestinationString: BOOLEAN,
) -> NTSTATUS {
    // SAFETY: same contract.
    unsafe {
        case_string(
            DestinationString,
            SourceString,
            AllocateDestinationString,
            true,
        )
    }
}

/// `RtlDowncaseUnicodeString`: as RtlUpcaseUnicodeString, lower case (ntifs.h).
///
/// # Safety
/// Valid strings.
pub unsafe extern "win64" fn RtlDowncaseUnicodeString(
    DestinationString: *mut UNICODE_STRING,
    SourceString: *const UNICODE_STRING,
    AllocateDestinationString: BOOLEAN,
) -> NTSTATUS {
    // SAFETY: same contract.
    unsafe {
        case_string(
            DestinationString,
            SourceString,
            AllocateDestinationString,
            false,
        )
    }
}

/// Parse digits as `RtlUnicodeStringToInteger` / `strtoul` do: leading white space (anything up
/// to U+0020), an optional sign, for base 0 a `0x`/`0o`/`0b` prefix (else decimal), then digits
/// of the base until the first that is not one. Returns (value, units consumed, digits seen).
pub(crate) fn parse_ulong(s: &[u16], base: u32, c_prefixes: bool) -> (u32, usize, bool) {
    let mut i = 0;
    while i < s.len() && s[i] <= b' ' as u16 {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'-' as u16 || s[i] == b'+' as u16) {
        neg = s[i] == b'-' as u16;
        i += 1;
    }
    let mut base = base;
    let lower = |c: u16| {
        if c < 0x80 {
            (c as u8).to_ascii_lowercase()
        } else {
            0
        }
    };
    if i + 1 < s.len() && s[i] == b'0' as u16 {
        let p = lower(s[i + 1]);
        let prefixed = match (p, c_prefixes) {
            (b'x', _) if base == 0 || base == 16 => Some(16),
            (b'o', false) if base == 0 => Some(8),
            (b'b', false) if base == 0 => Some(2),
            _ => None,
        };
        if let Some(b) = prefixed {
            base = b;
            i += 2;
        }
    }
    if base == 0 {
        base = if c_prefixes && i < s.len() && s[i] == b'0' as u16 {
            8
        } else {
            10
        };
    }
    let mut v: u32 = 0;
    let mut any = false;
    while i < s.len() {
        let c = lower(s[i]);
        let d = match c {
            b'0'..=b'9' => (c - b'0') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 10,
            _ => break,
        };
        if d >= base {
            break;
        }
        v = v.wrapping_mul(base).wrapping_add(d);
        any = true;
        i += 1;
    }
    (if neg { v.wrapping_neg() } else { v }, i, any)
}

/// `RtlUnicodeStringToInteger`: Base 0 (prefix `0x` hex, `0o` octal, `0b` binary, else
/// decimal), 2, 8, 10 or 16 — anything else is STATUS_INVALID_PARAMETER with *Value unchanged.
/// Leading white space and a sign are accepted; conversion stops at the first character that is
/// not a digit of the base (no digits: 0); overflow wraps.
///
/// # Safety
/// Valid string; `Value` writable.
pub unsafe extern "win64" fn RtlUnicodeStringToInteger(
    String: *const UNICODE_STRING,
    Base: ULONG,
    Value: *mut ULONG,
) -> NTSTATUS {
    if !matches!(Base, 0 | 2 | 8 | 10 | 16) {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: per the contract.
    let s = unsafe { wchars(String) };
    let (v, _, _) = parse_ulong(&s, Base, false);
    // SAFETY: writable per the contract.
    unsafe { Value.write_unaligned(v) };
    STATUS_SUCCESS
}

/// Digits of `v` in `base` (upper-case letters).
pub(crate) fn digits(mut v: u64, base: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let d = (v % base as u64) as u8;
        out.push(if d < 10 { b'0' + d } else { b'A' + d - 10 });
        v /= base as u64;
        if v == 0 {
            break;
        }
    }
    out.reverse();
    out
}

/// `RtlIntegerToUnicodeString`: Base 0 means 10; 2, 8, 10, 16 (upper-case digits) — anything
/// else STATUS_INVALID_PARAMETER. The digits and a NUL must fit MaximumLength, else
/// STATUS_BUFFER_OVERFLOW (the conversion goes through RtlAnsiStringToUnicodeString, which
/// counts the NUL: ReactOS); Length excludes the NUL.
///
/// # Safety
/// Valid string (buffer of MaximumLength bytes).
pub unsafe extern "win64" fn RtlIntegerToUnicodeString(
    Value: ULONG,
    Base: ULONG,
    String: *mut UNICODE_STRING,
) -> NTSTATUS {
    let base = if Base == 0 { 10 } else { Base };
    if !matches!(base, 2 | 8 | 10 | 16) {
        return STATUS_INVALID_PARAMETER;
    }
    let d: Vec<u16> = digits(Value as u64, base)
        .into_iter()
        .map(u16::from)
        .collect();
    // SAFETY: per the contract.
    let us = unsafe { hdr(String) };
    if (d.len() + 1) * 2 > us.MaximumLength as usize {
        return STATUS_BUFFER_OVERFLOW;
    }
    // SAFETY: fits, with the NUL.
    unsafe { put_wchars(String, 0, &d) };
    STATUS_SUCCESS
}

/// `RtlAnsiStringToUnicodeString`: needs (Source.Length + 1)·2 bytes including the NUL (more
/// than 0xFFFF: STATUS_INVALID_PARAMETER_2). Allocate: MaximumLength = that, from paged pool
/// (STATUS_NO_MEMORY on failure); else STATUS_BUFFER_OVERFLOW when MaximumLength is smaller
/// (nothing written). The result is NUL-terminated; bytes map ISO-8859-1 (see module docs).
///
/// # Safety
/// Valid strings.
pub unsafe extern "win64" fn RtlAnsiStringToUnicodeString(
    DestinationString: *mut UNICODE_STRING,
    SourceString: *const ANSI_STRING,
    AllocateDestinationString: BOOLEAN,
) -> NTSTATUS {
    // SAFETY: per the contract.
    let s: Vec<u16> = unsafe { achars(SourceString) }
        .into_iter()
        .map(u16::from)
        .collect();
    let need = (s.len() + 1) * 2;
    if need > 0xFFFF {
        return STATUS_INVALID_PARAMETER_2;
    }
    // SAFETY: per the contract.
    let mut d = unsafe { hdr(DestinationString) };
    if AllocateDestinationString != 0 {
        let b = alloc(need, RTL_UNICODE_STRING_TAG);
        if b.is_null() {
            return STATUS_NO_MEMORY;
        }
        d.Buffer = b.cast();
        d.MaximumLength = need as u16;
        // SAFETY: writable.
        unsafe { DestinationString.write_unaligned(d) };
    } else if need > d.MaximumLength as usize {
        return STATUS_BUFFER_OVERFLOW;
    }
    // SAFETY: room for the characters and the NUL.
    unsafe { put_wchars(DestinationString, 0, &s) };
    STATUS_SUCCESS
}

/// `RtlUnicodeStringToAnsiString`: needs Source.Length/2 + 1 bytes (more than 0xFFFF:
/// STATUS_INVALID_PARAMETER_2). Allocate: MaximumLength = that, from paged pool. Without, a
/// smaller MaximumLength converts what fits (MaximumLength − 1 characters, NUL-terminated) and
/// returns STATUS_BUFFER_OVERFLOW (ReactOS); MaximumLength 0 changes nothing. WCHARs above
/// U+00FF become `?`.
///
/// # Safety
/// Valid strings.
pub unsafe extern "win64" fn RtlUnicodeStringToAnsiString(
    DestinationString: *mut ANSI_STRING,
    SourceString: *const UNICODE_STRING,
    AllocateDestinationString: BOOLEAN,
) -> NTSTATUS {
    // SAFETY: per the contract.
    let s: Vec<u8> = unsafe { wchars(SourceString) }
        .into_iter()
        .map(|c| if c <= 0xFF { c as u8 } else { b'?' })
        .collect();
    let mut need = s.len() + 1;
    if need > 0xFFFF {
        return STATUS_INVALID_PARAMETER_2;
    }
    // SAFETY: per the contract.
    let mut d = unsafe { hdr(DestinationString) };
    let mut status = STATUS_SUCCESS;
    if AllocateDestinationString != 0 {
        let b = alloc(need, RTL_ANSI_STRING_TAG);
        if b.is_null() {
            return STATUS_NO_MEMORY;
        }
        d.Buffer = b;
        d.MaximumLength = need as u16;
    } else if need > d.MaximumLength as usize {
        if d.MaximumLength == 0 {
            return STATUS_BUFFER_OVERFLOW;
        }
        need = d.MaximumLength as usize;
        status = STATUS_BUFFER_OVERFLOW;
    }
    let n = need - 1;
    // SAFETY: the buffer holds at least `need` bytes (allocated or checked above).
    unsafe {
        core::ptr::copy_nonoverlapping(s.as_ptr(), d.Buffer, n);
    }
    // SAFETY: index n < need.
    unsafe { d.Buffer.wrapping_add(n).write(0) };
    d.Length = n as u16;
    // SAFETY: writable.
    unsafe { DestinationString.write_unaligned(d) };
    status
}

unsafe fn free_string(buffer: *mut u8, tag: u32) {
    if !buffer.is_null() {
        (pool().free)(buffer, tag);
    }
}

/// `RtlFreeUnicodeString`: free a Buffer that an Rtl routine allocated (paged pool, tag
/// "USTR") and zero the string. A Buffer from anywhere else is a bad free, as on Windows.
///
/// # Safety
/// Valid string.
pub unsafe extern "win64" fn RtlFreeUnicodeString(UnicodeString: *mut UNICODE_STRING) {
    // SAFETY: per the contract.
    let us = unsafe { hdr(UnicodeString) };
    // SAFETY: the buffer is released through the pool, which checks it.
    unsafe { free_string(us.Buffer.cast(), RTL_UNICODE_STRING_TAG) };
    let z = UNICODE_STRING {
        Length: 0,
        MaximumLength: 0,
        Buffer: core::ptr::null_mut(),
    };
    // SAFETY: writable.
    unsafe { UnicodeString.write_unaligned(z) };
}

/// `RtlFreeAnsiString`: as RtlFreeUnicodeString, tag "ASTR".
///
/// # Safety
/// Valid string.
pub unsafe extern "win64" fn RtlFreeAnsiString(AnsiString: *mut ANSI_STRING) {
    // SAFETY: per the contract.
    let a = unsafe { hdr(AnsiString) };
    // SAFETY: the buffer is released through the pool, which checks it.
    unsafe { free_string(a.Buffer, RTL_ANSI_STRING_TAG) };
    let z = ANSI_STRING {
        Length: 0,
        MaximumLength: 0,
        Buffer: core::ptr::null_mut(),
    };
    // SAFETY: writable.
    unsafe { AnsiString.write_unaligned(z) };
}

/// `RtlCompareString`: as RtlCompareUnicodeString for ANSI strings (case-insensitive compares
/// upcase ASCII letters only: the "C" locale).
///
/// # Safety
/// Valid strings.
pub unsafe extern "win64" fn RtlCompareString(
    String1: *const ANSI_STRING,
    String2: *const ANSI_STRING,
    CaseInSensitive: BOOLEAN,
) -> LONG {
    // SAFETY: per the contract.
    let a = unsafe { achars(String1) };
    // SAFETY: per the contract.
    let b = unsafe { achars(String2) };
    let a: Vec<u16> = a.into_iter().map(u16::from).collect();
    let b: Vec<u16> = b.into_iter().map(u16::from).collect();
    compare_ascii(&a, &b, CaseInSensitive != 0)
}

fn compare_ascii(a: &[u16], b: &[u16], ci: bool) -> i32 {
    let f = |c: u16| {
        if ci && c < 0x80 {
            (c as u8).to_ascii_uppercase() as u16
        } else {
            c
        }
    };
    for (&x, &y) in a.iter().zip(b) {
        if f(x) != f(y) {
            return f(x) as i32 - f(y) as i32;
        }
    }
    a.len() as i32 - b.len() as i32
}

/// `RtlEqualString`.
///
/// # Safety
/// Valid strings.
pub unsafe extern "win64" fn RtlEqualString(
    String1: *const ANSI_STRING,
    String2: *const ANSI_STRING,
    CaseInSensitive: BOOLEAN,
) -> BOOLEAN {
    // SAFETY: per the contract.
    let a = unsafe { achars(String1) };
    // SAFETY: per the contract.
    let b = unsafe { achars(String2) };
    let a: Vec<u16> = a.into_iter().map(u16::from).collect();
    let b: Vec<u16> = b.into_iter().map(u16::from).collect();
    (a.len() == b.len() && compare_ascii(&a, &b, CaseInSensitive != 0) == 0) as BOOLEAN
}

/// `RtlCreateUnicodeString`: a paged-pool copy of the NUL-terminated source, NUL included
/// (MaximumLength = Length + 2); FALSE when it would pass 0xFFFE bytes or cannot be allocated.
///
/// # Safety
/// `DestinationString` writable; `SourceString` NUL-terminated.
pub unsafe extern "win64" fn RtlCreateUnicodeString(
    DestinationString: *mut UNICODE_STRING,
    SourceString: *const WCHAR,
) -> BOOLEAN {
    // SAFETY: NUL-terminated per the contract.
    let n = unsafe { wlen(SourceString) };
    let bytes = (n + 1) * 2;
    if bytes > UNICODE_STRING_MAX_BYTES as usize {
        return FALSE;
    }
    let b = alloc(bytes, RTL_UNICODE_STRING_TAG);
    if b.is_null() {
        return FALSE;
    }
    // SAFETY: `bytes` readable from the source (n WCHARs and the NUL) and writable at `b`.
    unsafe { core::ptr::copy_nonoverlapping(SourceString.cast::<u8>(), b, bytes) };
    let us = UNICODE_STRING {
        Length: (n * 2) as u16,
        MaximumLength: bytes as u16,
        Buffer: b.cast(),
    };
    // SAFETY: writable per the contract.
    unsafe { DestinationString.write_unaligned(us) };
    TRUE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn case_mapping_is_simple_and_one_to_one() {
        assert_eq!(upcase('a' as u16), 'A' as u16);
        assert_eq!(upcase(0xE9), 0xC9); // é → É
        assert_eq!(upcase(0xDF), 0xDF); // ß has no single upper case
        assert_eq!(downcase('Z' as u16), 'z' as u16);
        assert_eq!(upcase(0xD800), 0xD800);
    }

    #[test]
    fn integer_parsing_follows_the_documented_prefixes() {
        assert_eq!(parse_ulong(&w("  -12"), 10, false).0, (-12i32) as u32);
        assert_eq!(parse_ulong(&w("0x1F"), 0, false).0, 0x1F);
        assert_eq!(parse_ulong(&w("0b101"), 0, false).0, 5);
        assert_eq!(parse_ulong(&w("0o17"), 0, false).0, 15);
        assert_eq!(parse_ulong(&w("123abc"), 10, false).0, 123);
        assert_eq!(parse_ulong(&w("017"), 0, true).0, 15);
        assert_eq!(parse_ulong(&w("zz"), 10, false), (0, 0, false));
        assert_eq!(digits(255, 16), b"FF");
        assert_eq!(digits(0, 2), b"0");
    }

    #[test]
    fn comparisons_order_by_units_then_length() {
        assert!(compare_units(&w("abc"), &w("abd"), false) < 0);
        assert_eq!(compare_units(&w("ABC"), &w("abc"), true), 0);
        assert!(compare_units(&w("ab"), &w("abc"), false) < 0);
        assert!(compare_ascii(&w("b"), &w("A"), true) > 0);
    }
}
