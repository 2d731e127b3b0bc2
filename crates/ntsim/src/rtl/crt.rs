//! The C run-time routines ntoskrnl.exe exports (names from Wine's `ntoskrnl.exe.spec`),
//! with the semantics of Microsoft's CRT reference
//! (`learn.microsoft.com/cpp/c-runtime-library/reference/<name>`) in the "C" locale:
//! `toupper`/`tolower`/`_stricmp`/`_strnicmp` change ASCII letters only; `_stricmp` and
//! `_wcsicmp` compare lower-cased characters (so `'_' > 'A'` but `'_' < 'a'`, as Microsoft's
//! page says); the wide case functions (`towupper`, `towlower`, `_wcsicmp`, `_wcsnicmp`) use
//! the simple Unicode mapping of [`super::string::upcase`]. `strtoul`/`wcstoul` saturate to
//! ULONG_MAX on overflow; `atoi`/`atol` wrap. The printers (`sprintf` …) are in `dbg::printf`,
//! sharing DbgPrint's formatter.
#![allow(non_snake_case)]

use core::ffi::c_void;

use super::string::{downcase, upcase, wlen};

type CInt = i32;

/// # Safety
/// `p` NUL-terminated.
unsafe fn slen(p: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: NUL-terminated per the contract.
    while unsafe { p.wrapping_add(n).read() } != 0 {
        n += 1;
    }
    n
}

/// `memcpy`.
///
/// # Safety
/// Ranges valid and not overlapping.
pub unsafe extern "win64" fn memcpy(
    Dest: *mut c_void,
    Src: *const c_void,
    Count: usize,
) -> *mut c_void {
    // SAFETY: per the contract (`copy` also tolerates overlap, which C leaves undefined).
    unsafe { core::ptr::copy(Src as *const u8, Dest as *mut u8, Count) };
    Dest
}

/// `memmove`.
///
/// # Safety
/// Ranges valid.
pub unsafe extern "win64" fn memmove(
    Dest: *mut c_void,
    Src: *const c_void,
    Count: usize,
) -> *mut c_void {
    // SAFETY: per the contract.
    unsafe { core::ptr::copy(Src as *const u8, Dest as *mut u8, Count) };
    Dest
}

/// `memset`: the low byte of `C`.
///
/// # Safety
/// `Dest` writable for `Count` bytes.
pub unsafe extern "win64" fn memset(Dest: *mut c_void, C: CInt, Count: usize) -> *mut c_void {
    // SAFETY: per the contract.
    unsafe { core::ptr::write_bytes(Dest as *mut u8, C as u8, Count) };
    Dest
}

/// `memcmp`: the difference of the first differing bytes (as unsigned char), or 0.
///
/// # Safety
/// Ranges readable.
pub unsafe extern "win64" fn memcmp(
    Buf1: *const c_void,
    Buf2: *const c_void,
    Count: usize,
) -> CInt {
    let (a, b) = (Buf1 as *const u8, Buf2 as *const u8);
    for i in 0..Count {
        // SAFETY: within Count bytes.
        let x = unsafe { a.wrapping_add(i).read() };
        // SAFETY: within Count bytes.
        let y = unsafe { b.wrapping_add(i).read() };
        if x != y {
            return x as CInt - y as CInt;
        }
    }
    0
}

/// `memchr`: the first byte equal to `(unsigned char)C`, or NULL.
///
/// # Safety
/// Range readable.
pub unsafe extern "win64" fn memchr(Buf: *const c_void, C: CInt, Count: usize) -> *mut c_void {
    let p = Buf as *const u8;
    for i in 0..Count {
        // SAFETY: within Count bytes.
        if unsafe { p.wrapping_add(i).read() } == C as u8 {
            return p.wrapping_add(i) as *mut c_void;
        }
    }
    core::ptr::null_mut()
}

/// `strlen`.
///
/// # Safety
/// NUL-terminated.
pub unsafe extern "win64" fn strlen(Str: *const u8) -> usize {
    // SAFETY: per the contract.
    unsafe { slen(Str) }
}

/// `wcslen`.
///
/// # Safety
/// NUL-terminated.
pub unsafe extern "win64" fn wcslen(Str: *const u16) -> usize {
    // SAFETY: per the contract.
    unsafe { wlen(Str) }
}

/// `strnlen`: at most NumberOfElements.
///
/// # Safety
/// Readable up to the NUL or NumberOfElements bytes.
pub unsafe extern "win64" fn strnlen(Str: *const u8, NumberOfElements: usize) -> usize {
    let mut n = 0;
    // SAFETY: bounded by NumberOfElements and the NUL.
    while n < NumberOfElements && unsafe { Str.wrapping_add(n).read() } != 0 {
        n += 1;
    }
    n
}

/// `wcsnlen`.
///
/// # Safety
/// Readable up to the NUL or NumberOfElements WCHARs.
pub unsafe extern "win64" fn wcsnlen(Str: *const u16, NumberOfElements: usize) -> usize {
    let mut n = 0;
    // SAFETY: bounded by NumberOfElements and the NUL.
    while n < NumberOfElements && unsafe { Str.wrapping_add(n).read_unaligned() } != 0 {
        n += 1;
    }
    n
}

/// Compare up to `n` units of two NUL-terminated strings after `f`.
unsafe fn cmp_n<T: Copy + Into<u32>>(
    a: *const T,
    b: *const T,
    n: usize,
    f: impl Fn(u32) -> u32,
) -> CInt {
    for i in 0..n {
        // SAFETY: both strings are readable up to their NULs; we stop at the first NUL.
        let x = unsafe { a.wrapping_add(i).read_unaligned().into() };
        // SAFETY: both strings are readable up to their NULs; we stop at the first NUL.
        let y = unsafe { b.wrapping_add(i).read_unaligned().into() };
        let (x, y) = (f(x), f(y));
        if x != y {
            return x as CInt - y as CInt;
        }
        if x == 0 {
            return 0;
        }
    }
    0
}

fn ascii_lower(c: u32) -> u32 {
    if (b'A' as u32..=b'Z' as u32).contains(&c) {
        c + 32
    } else {
        c
    }
}

fn wide_lower(c: u32) -> u32 {
    downcase(c as u16) as u32
}

/// `strcmp`.
///
/// # Safety
/// NUL-terminated strings.
pub unsafe extern "win64" fn strcmp(String1: *const u8, String2: *const u8) -> CInt {
    // SAFETY: per the contract.
    unsafe { cmp_n(String1, String2, usize::MAX, |c| c) }
}

/// `strncmp`.
///
/// # Safety
/// NUL-terminated or Count long.
pub unsafe extern "win64" fn strncmp(String1: *const u8, String2: *const u8, Count: usize) -> CInt {
    // SAFETY: per the contract.
    unsafe { cmp_n(String1, String2, Count, |c| c) }
}

/// `wcscmp`.
///
/// # Safety
/// NUL-terminated strings.
pub unsafe extern "win64" fn wcscmp(String1: *const u16, String2: *const u16) -> CInt {
    // SAFETY: per the contract.
    unsafe { cmp_n(String1, String2, usize::MAX, |c| c) }
}

/// `wcsncmp`.
///
/// # Safety
/// NUL-terminated or Count long.
pub unsafe extern "win64" fn wcsncmp(
    String1: *const u16,
    String2: *const u16,
    Count: usize,
) -> CInt {
    // SAFETY: per the contract.
    unsafe { cmp_n(String1, String2, Count, |c| c) }
}

/// `_stricmp`: compares ASCII-lower-cased characters.
///
/// # Safety
/// NUL-terminated strings.
pub unsafe extern "win64" fn _stricmp(String1: *const u8, String2: *const u8) -> CInt {
    // SAFETY: per the contract.
    unsafe { cmp_n(String1, String2, usize::MAX, ascii_lower) }
}

/// `_strnicmp`.
///
/// # Safety
/// NUL-terminated or Count long.
pub unsafe extern "win64" fn _strnicmp(
    String1: *const u8,
    String2: *const u8,
    Count: usize,
) -> CInt {
    // SAFETY: per the contract.
    unsafe { cmp_n(String1, String2, Count, ascii_lower) }
}

/// `_wcsicmp`: compares lower-cased WCHARs.
///
/// # Safety
/// NUL-terminated strings.
pub unsafe extern "win64" fn _wcsicmp(String1: *const u16, String2: *const u16) -> CInt {
    // SAFETY: per the contract.
    unsafe { cmp_n(String1, String2, usize::MAX, wide_lower) }
}

/// `_wcsnicmp`.
///
/// # Safety
/// NUL-terminated or Count long.
pub unsafe extern "win64" fn _wcsnicmp(
    String1: *const u16,
    String2: *const u16,
    Count: usize,
) -> CInt {
    // SAFETY: per the contract.
    unsafe { cmp_n(String1, String2, Count, wide_lower) }
}

/// Copy a NUL-terminated string of `T`, at most `max` units, then pad with NULs to `pad`
/// units (strncpy) or add one NUL (strcpy, strcat).
unsafe fn copy_units<T: Copy + Default + PartialEq>(
    dst: *mut T,
    src: *const T,
    max: usize,
    pad: Option<usize>,
) {
    let z = T::default();
    let mut i = 0;
    while i < max {
        // SAFETY: the source is readable to its NUL; the destination holds what C requires.
        let c = unsafe { src.wrapping_add(i).read_unaligned() };
        if c == z {
            break;
        }
        // SAFETY: as above.
        unsafe { dst.wrapping_add(i).write_unaligned(c) };
        i += 1;
    }
    match pad {
        Some(n) => {
            while i < n {
                // SAFETY: strncpy writes exactly Count units.
                unsafe { dst.wrapping_add(i).write_unaligned(z) };
                i += 1;
            }
        }
        // SAFETY: room for the terminator per C's contract.
        None => unsafe { dst.wrapping_add(i).write_unaligned(z) },
    }
}

/// `strcpy`.
///
/// # Safety
/// As C.
pub unsafe extern "win64" fn strcpy(Dest: *mut u8, Src: *const u8) -> *mut u8 {
    // SAFETY: per the contract.
    unsafe { copy_units(Dest, Src, usize::MAX, None) };
    Dest
}

/// `strncpy`: at most Count bytes; pads with NULs to Count; no terminator when Src is as long.
///
/// # Safety
/// As C.
pub unsafe extern "win64" fn strncpy(Dest: *mut u8, Src: *const u8, Count: usize) -> *mut u8 {
    // SAFETY: per the contract.
    unsafe { copy_units(Dest, Src, Count, Some(Count)) };
    Dest
}

/// `wcscpy`.
///
/// # Safety
/// As C.
pub unsafe extern "win64" fn wcscpy(Dest: *mut u16, Src: *const u16) -> *mut u16 {
    // SAFETY: per the contract.
    unsafe { copy_units(Dest, Src, usize::MAX, None) };
    Dest
}

/// `wcsncpy`.
///
/// # Safety
/// As C.
pub unsafe extern "win64" fn wcsncpy(Dest: *mut u16, Src: *const u16, Count: usize) -> *mut u16 {
    // SAFETY: per the contract.
    unsafe { copy_units(Dest, Src, Count, Some(Count)) };
    Dest
}

/// `strcat`.
///
/// # Safety
/// As C.
pub unsafe extern "win64" fn strcat(Dest: *mut u8, Src: *const u8) -> *mut u8 {
    // SAFETY: Dest is NUL-terminated per the contract.
    let end = Dest.wrapping_add(unsafe { slen(Dest) });
    // SAFETY: room for the result per C's contract.
    unsafe { copy_units(end, Src, usize::MAX, None) };
    Dest
}

/// `strncat`: appends at most Count bytes, then a NUL.
///
/// # Safety
/// As C.
pub unsafe extern "win64" fn strncat(Dest: *mut u8, Src: *const u8, Count: usize) -> *mut u8 {
    // SAFETY: Dest is NUL-terminated per the contract.
    let end = Dest.wrapping_add(unsafe { slen(Dest) });
    // SAFETY: room for the result per C's contract.
    unsafe { copy_units(end, Src, Count, None) };
    Dest
}

/// `wcscat`.
///
/// # Safety
/// As C.
pub unsafe extern "win64" fn wcscat(Dest: *mut u16, Src: *const u16) -> *mut u16 {
    // SAFETY: Dest is NUL-terminated per the contract.
    let end = Dest.wrapping_add(unsafe { wlen(Dest) });
    // SAFETY: room for the result per C's contract.
    unsafe { copy_units(end, Src, usize::MAX, None) };
    Dest
}

/// `wcsncat`.
///
/// # Safety
/// As C.
pub unsafe extern "win64" fn wcsncat(Dest: *mut u16, Src: *const u16, Count: usize) -> *mut u16 {
    // SAFETY: Dest is NUL-terminated per the contract.
    let end = Dest.wrapping_add(unsafe { wlen(Dest) });
    // SAFETY: room for the result per C's contract.
    unsafe { copy_units(end, Src, Count, None) };
    Dest
}

/// First (or last) occurrence of `c` in a NUL-terminated string; `c == 0` finds the NUL.
unsafe fn find_unit<T: Copy + Default + PartialEq>(s: *const T, c: T, last: bool) -> *mut T {
    let mut found = core::ptr::null_mut();
    let mut i = 0;
    loop {
        // SAFETY: readable to the NUL.
        let x = unsafe { s.wrapping_add(i).read_unaligned() };
        if x == c {
            found = s.wrapping_add(i) as *mut T;
            if !last {
                return found;
            }
        }
        if x == T::default() {
            return found;
        }
        i += 1;
    }
}

/// `strchr`.
///
/// # Safety
/// NUL-terminated.
pub unsafe extern "win64" fn strchr(Str: *const u8, C: CInt) -> *mut u8 {
    // SAFETY: per the contract.
    unsafe { find_unit(Str, C as u8, false) }
}

/// `wcschr`.
///
/// # Safety
/// NUL-terminated.
pub unsafe extern "win64" fn wcschr(Str: *const u16, C: u16) -> *mut u16 {
    // SAFETY: per the contract.
    unsafe { find_unit(Str, C, false) }
}

/// `strrchr`.
///
/// # Safety
/// NUL-terminated.
pub unsafe extern "win64" fn strrchr(Str: *const u8, C: CInt) -> *mut u8 {
    // SAFETY: per the contract.
    unsafe { find_unit(Str, C as u8, true) }
}

/// `wcsrchr`.
///
/// # Safety
/// NUL-terminated.
pub unsafe extern "win64" fn wcsrchr(Str: *const u16, C: u16) -> *mut u16 {
    // SAFETY: per the contract.
    unsafe { find_unit(Str, C, true) }
}

unsafe fn find_sub<T: Copy + Default + PartialEq>(s: *const T, needle: *const T) -> *mut T {
    let z = T::default();
    let mut i = 0;
    loop {
        let mut j = 0;
        loop {
            // SAFETY: both readable to their NULs; we stop at either.
            let n = unsafe { needle.wrapping_add(j).read_unaligned() };
            if n == z {
                return s.wrapping_add(i) as *mut T;
            }
            // SAFETY: as above.
            if unsafe { s.wrapping_add(i + j).read_unaligned() } != n {
                break;
            }
            j += 1;
        }
        // SAFETY: as above.
        if unsafe { s.wrapping_add(i).read_unaligned() } == z {
            return core::ptr::null_mut();
        }
        i += 1;
    }
}

/// `strstr`: an empty needle finds `Str` itself.
///
/// # Safety
/// NUL-terminated.
pub unsafe extern "win64" fn strstr(Str: *const u8, StrSearch: *const u8) -> *mut u8 {
    // SAFETY: per the contract.
    unsafe { find_sub(Str, StrSearch) }
}

/// `wcsstr`.
///
/// # Safety
/// NUL-terminated.
pub unsafe extern "win64" fn wcsstr(Str: *const u16, StrSearch: *const u16) -> *mut u16 {
    // SAFETY: per the contract.
    unsafe { find_sub(Str, StrSearch) }
}

/// `toupper` ("C" locale: a–z only).
///
/// # Safety
/// Always safe.
pub unsafe extern "win64" fn toupper(C: CInt) -> CInt {
    if (b'a' as CInt..=b'z' as CInt).contains(&C) {
        C - 32
    } else {
        C
    }
}

/// `tolower` ("C" locale: A–Z only).
///
/// # Safety
/// Always safe.
pub unsafe extern "win64" fn tolower(C: CInt) -> CInt {
    ascii_lower(C as u32) as CInt
}

/// `towupper`.
///
/// # Safety
/// Always safe.
pub unsafe extern "win64" fn towupper(C: u16) -> u16 {
    upcase(C)
}

/// `towlower`.
///
/// # Safety
/// Always safe.
pub unsafe extern "win64" fn towlower(C: u16) -> u16 {
    downcase(C)
}

fn is_space(c: u32) -> bool {
    matches!(c, 0x20 | 0x09..=0x0D)
}

/// strtoul's grammar over units: white space, sign, base prefix, digits. Returns (value,
/// units consumed — 0 when there are no digits).
fn strtoul_units(s: &dyn Fn(usize) -> u32, base: CInt) -> (u32, usize) {
    if base != 0 && !(2..=36).contains(&base) {
        return (0, 0);
    }
    let mut i = 0;
    while is_space(s(i)) {
        i += 1;
    }
    let mut neg = false;
    if s(i) == b'-' as u32 || s(i) == b'+' as u32 {
        neg = s(i) == b'-' as u32;
        i += 1;
    }
    let mut base = base as u32;
    if (base == 0 || base == 16) && s(i) == b'0' as u32 && ascii_lower(s(i + 1)) == b'x' as u32 {
        let d = ascii_lower(s(i + 2));
        if d.is_ascii_hexdigit_u32() {
            base = 16;
            i += 2;
        }
    }
    if base == 0 {
        base = if s(i) == b'0' as u32 { 8 } else { 10 };
    }
    let start = i;
    let mut v: u64 = 0;
    let mut over = false;
    loop {
        let c = ascii_lower(s(i));
        let d = match c {
            0x30..=0x39 => c - 0x30,
            0x61..=0x7A => c - 0x61 + 10,
            _ => break,
        };
        if d >= base {
            break;
        }
        v = v * base as u64 + d as u64;
        if v > u32::MAX as u64 {
            over = true;
            v = u32::MAX as u64;
        }
        i += 1;
    }
    if i == start {
        return (0, 0);
    }
    let v = if over {
        u32::MAX
    } else if neg {
        (v as u32).wrapping_neg()
    } else {
        v as u32
    };
    (v, i)
}

trait HexDigit {
    fn is_ascii_hexdigit_u32(&self) -> bool;
}
impl HexDigit for u32 {
    fn is_ascii_hexdigit_u32(&self) -> bool {
        matches!(*self, 0x30..=0x39 | 0x61..=0x66)
    }
}

/// `strtoul`: *EndPtr = after the number, or `Str` when there is none.
///
/// # Safety
/// NUL-terminated; `EndPtr` null or writable.
pub unsafe extern "win64" fn strtoul(Str: *const u8, EndPtr: *mut *mut u8, Base: CInt) -> u32 {
    // SAFETY: the parser stops at the NUL (not a digit, space or sign).
    let at = |i: usize| unsafe { Str.wrapping_add(i).read() } as u32;
    let (v, n) = strtoul_units(&at, Base);
    if !EndPtr.is_null() {
        // SAFETY: writable per the contract.
        unsafe { EndPtr.write_unaligned(Str.wrapping_add(n) as *mut u8) };
    }
    v
}

/// `wcstoul`.
///
/// # Safety
/// NUL-terminated; `EndPtr` null or writable.
pub unsafe extern "win64" fn wcstoul(Str: *const u16, EndPtr: *mut *mut u16, Base: CInt) -> u32 {
    // SAFETY: the parser stops at the NUL.
    let at = |i: usize| unsafe { Str.wrapping_add(i).read_unaligned() } as u32;
    let (v, n) = strtoul_units(&at, Base);
    if !EndPtr.is_null() {
        // SAFETY: writable per the contract.
        unsafe { EndPtr.write_unaligned(Str.wrapping_add(n) as *mut u16) };
    }
    v
}

/// `atoi`: decimal, white space and a sign accepted; wraps on overflow.
///
/// # Safety
/// NUL-terminated.
pub unsafe extern "win64" fn atoi(Str: *const u8) -> CInt {
    let mut i = 0;
    // SAFETY: NUL-terminated; every read stops at the NUL.
    let at = |i: usize| unsafe { Str.wrapping_add(i).read() };
    while is_space(at(i) as u32) {
        i += 1;
    }
    let mut neg = false;
    if at(i) == b'-' || at(i) == b'+' {
        neg = at(i) == b'-';
        i += 1;
    }
    let mut v: i32 = 0;
    while at(i).is_ascii_digit() {
        v = v.wrapping_mul(10).wrapping_add((at(i) - b'0') as i32);
        i += 1;
    }
    if neg { v.wrapping_neg() } else { v }
}

/// `atol` (a 32-bit long on Windows).
///
/// # Safety
/// NUL-terminated.
pub unsafe extern "win64" fn atol(Str: *const u8) -> i32 {
    // SAFETY: same contract.
    unsafe { atoi(Str) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoul_follows_c() {
        let p = |s: &str, b| {
            let v: Vec<u32> = s.bytes().map(u32::from).chain([0]).collect();
            strtoul_units(&|i| v[i], b)
        };
        assert_eq!(p("  42xyz", 10), (42, 4));
        assert_eq!(p("0x1f", 0), (0x1F, 4));
        assert_eq!(p("017", 0), (15, 3));
        assert_eq!(p("-1", 10), (u32::MAX, 2));
        assert_eq!(p("99999999999", 10), (u32::MAX, 11));
        assert_eq!(p("zz", 10), (0, 0));
        assert_eq!(p("10", 37), (0, 0));
        assert_eq!(p("0x", 16), (0, 1));
    }
}
