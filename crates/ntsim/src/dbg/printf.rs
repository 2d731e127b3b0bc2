//! The CRT printers ntoskrnl exports — `sprintf`, `_snprintf`, `swprintf`, `_snwprintf` (variadic,
//! entered like `DbgPrint`: a naked entry spills the register arguments into the caller's home
//! area, making the arguments one `va_list`) and `vsprintf`, `_vsnprintf`, `_vsnwprintf` (which
//! take a `va_list`, on x64 a pointer to the argument slots). All share DbgPrint's formatter
//! ([`super::format_in`]): `%wZ`, `%Z`, `%ws`/`%ls`, `%hs`, `%I64x`, `%p` (16 upper-case hex
//! digits), `%Iu`, widths, precisions, flags; in the wide printers `%s`/`%c` take WCHARs and
//! `%S`/`%C` narrow characters (Microsoft, *Format specification syntax: printf and wprintf
//! functions*, `learn.microsoft.com/cpp/c-runtime-library/format-specification-syntax-printf-and-wprintf-functions`).
//! Narrow output is ISO-8859-1 ("C" locale: a WCHAR above U+00FF becomes `?`).
//!
//! Termination (Microsoft, *_snprintf, _snwprintf …*,
//! `learn.microsoft.com/cpp/c-runtime-library/reference/snprintf-snprintf-snprintf-l-snwprintf-snwprintf-l`):
//! `_snprintf(buffer, count, …)` writes at most `count` characters; when the output has fewer it
//! is NUL-terminated and its length returned; exactly `count`: no terminator, `count` returned;
//! more: `count` characters, no terminator, −1. `sprintf` / `vsprintf` / ntoskrnl's legacy
//! `swprintf(buffer, format, …)` (no count) always terminate and return the length.
#![allow(non_snake_case)]

use super::{Dialect, VaList, format_in};

const NARROW: Dialect = Dialect {
    wide: false,
    latin1: true,
};
const WIDE: Dialect = Dialect {
    wide: true,
    latin1: true,
};

/// Format a narrow format string; the result as ISO-8859-1 bytes.
///
/// # Safety
/// `fmt` NUL-terminated; `va` supplies every conversion's argument.
unsafe fn narrow_out(fmt: *const u8, va: &mut VaList) -> Vec<u8> {
    // SAFETY: NUL-terminated per the contract.
    let f = unsafe { crate::rtl::read_cstr(fmt) }.unwrap_or_default();
    // The formatter reads literal text as UTF-8: hand it the format's bytes as characters.
    let f: String = f.iter().map(|&c| c as char).collect();
    // SAFETY: per the contract.
    let s = unsafe { format_in(f.as_bytes(), va, NARROW) };
    s.chars()
        .map(|c| {
            if (c as u32) <= 0xFF {
                c as u32 as u8
            } else {
                b'?'
            }
        })
        .collect()
}

/// Format a wide format string; the result as UTF-16.
///
/// # Safety
/// As [`narrow_out`], for a wide format.
unsafe fn wide_out(fmt: *const u16, va: &mut VaList) -> Vec<u16> {
    // SAFETY: NUL-terminated per the contract.
    let f = unsafe { crate::rtl::read_wstr(fmt) }.unwrap_or_default();
    // SAFETY: per the contract.
    let s = unsafe { format_in(f.as_bytes(), va, WIDE) };
    s.encode_utf16().collect()
}

/// Store `out` at `buf` under `_snprintf`'s rules (`count` = None: unbounded, always
/// terminated). Returns the printer's result.
///
/// # Safety
/// `buf` writable for `count` units (or the whole output and a NUL when unbounded).
unsafe fn store<T: Copy + Default>(buf: *mut T, count: Option<usize>, out: &[T]) -> i32 {
    let n = out.len();
    let (copy, terminate, ret) = match count {
        None => (n, true, n as i32),
        Some(c) if n < c => (n, true, n as i32),
        Some(c) if n == c => (n, false, n as i32),
        Some(c) => (c, false, -1),
    };
    for (i, &u) in out[..copy].iter().enumerate() {
        // SAFETY: within the caller's buffer (`copy` ≤ count).
        unsafe { buf.wrapping_add(i).write_unaligned(u) };
    }
    if terminate {
        // SAFETY: `copy` < count, or unbounded with room for the NUL per the contract.
        unsafe { buf.wrapping_add(copy).write_unaligned(T::default()) };
    }
    ret
}

/// `int vsprintf(char *buffer, const char *format, va_list argptr)`.
///
/// # Safety
/// C's contract.
pub unsafe extern "win64" fn vsprintf(
    Buffer: *mut u8,
    Format: *const u8,
    ArgList: *mut core::ffi::c_void,
) -> i32 {
    // SAFETY: a va_list points at the argument slots.
    let mut va = unsafe { VaList::new(ArgList as *const u64) };
    // SAFETY: C's contract.
    let out = unsafe { narrow_out(Format, &mut va) };
    // SAFETY: C's contract for the buffer.
    unsafe { store(Buffer, None, &out) }
}

/// `int _vsnprintf(char *buffer, size_t count, const char *format, va_list argptr)`.
///
/// # Safety
/// C's contract.
pub unsafe extern "win64" fn _vsnprintf(
    Buffer: *mut u8,
    Count: usize,
    Format: *const u8,
    ArgList: *mut core::ffi::c_void,
) -> i32 {
    // SAFETY: a va_list points at the argument slots.
    let mut va = unsafe { VaList::new(ArgList as *const u64) };
    // SAFETY: C's contract.
    let out = unsafe { narrow_out(Format, &mut va) };
    // SAFETY: C's contract for the buffer.
    unsafe { store(Buffer, Some(Count), &out) }
}

/// `int _vsnwprintf(wchar_t *buffer, size_t count, const wchar_t *format, va_list argptr)`.
///
/// # Safety
/// C's contract.
pub unsafe extern "win64" fn _vsnwprintf(
    Buffer: *mut u16,
    Count: usize,
    Format: *const u16,
    ArgList: *mut core::ffi::c_void,
) -> i32 {
    // SAFETY: a va_list points at the argument slots.
    let mut va = unsafe { VaList::new(ArgList as *const u64) };
    // SAFETY: C's contract.
    let out = unsafe { wide_out(Format, &mut va) };
    // SAFETY: C's contract for the buffer.
    unsafe { store(Buffer, Some(Count), &out) }
}

extern "win64" fn sprintf_impl(args: *const u64) -> i32 {
    // SAFETY: `args` is the spilled home area of a sprintf call: buffer, format, ….
    let mut va = unsafe { VaList::new(args) };
    let buf = va.next() as *mut u8;
    let fmt = va.next() as *const u8;
    // SAFETY: C's contract.
    let out = unsafe { narrow_out(fmt, &mut va) };
    // SAFETY: C's contract for the buffer.
    unsafe { store(buf, None, &out) }
}

extern "win64" fn snprintf_impl(args: *const u64) -> i32 {
    // SAFETY: buffer, count, format, ….
    let mut va = unsafe { VaList::new(args) };
    let buf = va.next() as *mut u8;
    let count = va.next() as usize;
    let fmt = va.next() as *const u8;
    // SAFETY: C's contract.
    let out = unsafe { narrow_out(fmt, &mut va) };
    // SAFETY: C's contract for the buffer.
    unsafe { store(buf, Some(count), &out) }
}

extern "win64" fn swprintf_impl(args: *const u64) -> i32 {
    // SAFETY: buffer, format, … (ntoskrnl's legacy swprintf has no count).
    let mut va = unsafe { VaList::new(args) };
    let buf = va.next() as *mut u16;
    let fmt = va.next() as *const u16;
    // SAFETY: C's contract.
    let out = unsafe { wide_out(fmt, &mut va) };
    // SAFETY: C's contract for the buffer.
    unsafe { store(buf, None, &out) }
}

extern "win64" fn snwprintf_impl(args: *const u64) -> i32 {
    // SAFETY: buffer, count, format, ….
    let mut va = unsafe { VaList::new(args) };
    let buf = va.next() as *mut u16;
    let count = va.next() as usize;
    let fmt = va.next() as *const u16;
    // SAFETY: C's contract.
    let out = unsafe { wide_out(fmt, &mut va) };
    // SAFETY: C's contract for the buffer.
    unsafe { store(buf, Some(count), &out) }
}

/// Naked variadic entries: spill RCX, RDX, R8, R9 into the home area and pass its address.
macro_rules! variadic_entry {
    ($(#[$m:meta])* $name:ident => $imp:ident) => {
        $(#[$m])*
        ///
        /// # Safety
        /// Call it as the variadic win64 function it is, with one argument per conversion.
        #[unsafe(naked)]
        pub unsafe extern "win64" fn $name() {
            core::arch::naked_asm!(
                "mov [rsp + 8], rcx",
                "mov [rsp + 16], rdx",
                "mov [rsp + 24], r8",
                "mov [rsp + 32], r9",
                "lea rcx, [rsp + 8]",
                "jmp {imp}",
                imp = sym $imp,
            )
        }
    };
}

variadic_entry!(
    /// `int sprintf(char *buffer, const char *format, ...)`.
    sprintf => sprintf_impl
);
variadic_entry!(
    /// `int _snprintf(char *buffer, size_t count, const char *format, ...)`.
    _snprintf => snprintf_impl
);
variadic_entry!(
    /// `int swprintf(wchar_t *buffer, const wchar_t *format, ...)` (ntoskrnl's legacy form).
    swprintf => swprintf_impl
);
variadic_entry!(
    /// `int _snwprintf(wchar_t *buffer, size_t count, const wchar_t *format, ...)`.
    _snwprintf => snwprintf_impl
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snprintf_terminates_only_when_there_is_room() {
        let mut b = [0xAAu8; 6];
        // SAFETY: `b` holds 6 bytes; the count stays within it.
        assert_eq!(unsafe { store(b.as_mut_ptr(), Some(6), b"abc") }, 3);
        assert_eq!(&b, b"abc\0\xAA\xAA");
        b = [0xAA; 6];
        // SAFETY: as above.
        assert_eq!(unsafe { store(b.as_mut_ptr(), Some(3), b"abc") }, 3);
        assert_eq!(&b, b"abc\xAA\xAA\xAA");
        b = [0xAA; 6];
        // SAFETY: as above.
        assert_eq!(unsafe { store(b.as_mut_ptr(), Some(2), b"abc") }, -1);
        assert_eq!(&b, b"ab\xAA\xAA\xAA\xAA");
    }

    #[test]
    fn wide_printers_swap_s_and_capital_s() {
        let narrow = b"nar\0";
        let wide: Vec<u16> = "wid\0".encode_utf16().collect();
        let args = [
            wide.as_ptr() as u64,
            narrow.as_ptr() as u64,
            wide.as_ptr() as u64,
        ];
        // SAFETY: three pointer slots for three string conversions, each NUL-terminated.
        let mut va = unsafe { VaList::new(args.as_ptr()) };
        let fmt: Vec<u16> = "%s %S %ls\0".encode_utf16().collect();
        // SAFETY: as above.
        let out = unsafe { wide_out(fmt.as_ptr(), &mut va) };
        assert_eq!(String::from_utf16_lossy(&out), "wid nar wid");
    }
}
