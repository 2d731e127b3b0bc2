//! The C run-time routines ntoskrnl.exe exports (issue 9, item 3; stream rtlcrt): memory,
//! narrow and wide strings, character classes, conversions, and the `printf` family.
//!
//! Unlike the other groups, these declare no Windows `extern` block: a Rust driver gets the
//! `mem*` routines from `compiler_builtins` (and the names would clash with its symbols and
//! core's own declarations). The signatures and names serve ntsim (each emulated export is
//! checked against its signature) and the C fixtures' import library. The printers are
//! variadic (`VARIADIC`, bound like `DbgPrint`); their `va_list` twins are fixed-arity.
#![allow(non_camel_case_types, dead_code)]
#[allow(unused_imports)]
use super::*;

/// Declares the CRT signatures and names (no extern block; see the module docs).
macro_rules! crt_imports {
    ($( $(#[doc = $doc:literal])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?; )*) => {
        /// A function-pointer type for every CRT import of this group, named after it.
        #[allow(non_camel_case_types, dead_code)]
        pub mod signatures {
            #[allow(unused_imports)]
            use super::*;
            $( $crate::routine_type!($(#[doc = $doc])* pub type $name = unsafe fn($($ty),*) $(-> $ret)?); )*
        }

        /// Names of this group's fixed-arity imports.
        pub const NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}

type c_int = i32;
type c_long = i32;
type wchar = u16;
type VaList = *mut core::ffi::c_void;
type P = *mut core::ffi::c_void;
type CP = *const core::ffi::c_void;

crt_imports! {
    fn memcpy(Dest: P, Src: CP, Count: SIZE_T) -> P;
    fn memmove(Dest: P, Src: CP, Count: SIZE_T) -> P;
    fn memset(Dest: P, C: c_int, Count: SIZE_T) -> P;
    fn memcmp(Buf1: CP, Buf2: CP, Count: SIZE_T) -> c_int;
    fn memchr(Buf: CP, C: c_int, Count: SIZE_T) -> P;
    fn strlen(Str: *const u8) -> SIZE_T;
    fn wcslen(Str: *const wchar) -> SIZE_T;
    fn strnlen(Str: *const u8, NumberOfElements: SIZE_T) -> SIZE_T;
    fn wcsnlen(Str: *const wchar, NumberOfElements: SIZE_T) -> SIZE_T;
    fn strcmp(String1: *const u8, String2: *const u8) -> c_int;
    fn strncmp(String1: *const u8, String2: *const u8, Count: SIZE_T) -> c_int;
    fn wcscmp(String1: *const wchar, String2: *const wchar) -> c_int;
    fn wcsncmp(String1: *const wchar, String2: *const wchar, Count: SIZE_T) -> c_int;
    fn strcpy(Dest: *mut u8, Src: *const u8) -> *mut u8;
    fn strncpy(Dest: *mut u8, Src: *const u8, Count: SIZE_T) -> *mut u8;
    fn wcscpy(Dest: *mut wchar, Src: *const wchar) -> *mut wchar;
    fn wcsncpy(Dest: *mut wchar, Src: *const wchar, Count: SIZE_T) -> *mut wchar;
    fn strcat(Dest: *mut u8, Src: *const u8) -> *mut u8;
    fn strncat(Dest: *mut u8, Src: *const u8, Count: SIZE_T) -> *mut u8;
    fn wcscat(Dest: *mut wchar, Src: *const wchar) -> *mut wchar;
    fn wcsncat(Dest: *mut wchar, Src: *const wchar, Count: SIZE_T) -> *mut wchar;
    fn strchr(Str: *const u8, C: c_int) -> *mut u8;
    fn wcschr(Str: *const wchar, C: wchar) -> *mut wchar;
    fn strrchr(Str: *const u8, C: c_int) -> *mut u8;
    fn wcsrchr(Str: *const wchar, C: wchar) -> *mut wchar;
    fn strstr(Str: *const u8, StrSearch: *const u8) -> *mut u8;
    fn wcsstr(Str: *const wchar, StrSearch: *const wchar) -> *mut wchar;
    fn _stricmp(String1: *const u8, String2: *const u8) -> c_int;
    fn _strnicmp(String1: *const u8, String2: *const u8, Count: SIZE_T) -> c_int;
    fn _wcsicmp(String1: *const wchar, String2: *const wchar) -> c_int;
    fn _wcsnicmp(String1: *const wchar, String2: *const wchar, Count: SIZE_T) -> c_int;
    fn toupper(C: c_int) -> c_int;
    fn tolower(C: c_int) -> c_int;
    fn towupper(C: wchar) -> wchar;
    fn towlower(C: wchar) -> wchar;
    fn atoi(Str: *const u8) -> c_int;
    fn atol(Str: *const u8) -> c_long;
    fn strtoul(Str: *const u8, EndPtr: *mut *mut u8, Base: c_int) -> u32;
    fn wcstoul(Str: *const wchar, EndPtr: *mut *mut wchar, Base: c_int) -> u32;
    /// `vsprintf(buffer, format, va_list)`: no bound; always NUL-terminated.
    fn vsprintf(Buffer: *mut u8, Format: *const u8, ArgList: VaList) -> c_int;
    /// `_vsnprintf(buffer, count, format, va_list)`: −1 and no terminator when truncated.
    fn _vsnprintf(Buffer: *mut u8, Count: SIZE_T, Format: *const u8, ArgList: VaList) -> c_int;
    /// `_vsnwprintf(buffer, count, format, va_list)`: the wide twin (count in WCHARs).
    fn _vsnwprintf(Buffer: *mut wchar, Count: SIZE_T, Format: *const wchar, ArgList: VaList) -> c_int;
}

/// The variadic printers: `sprintf(buffer, format, ...)`, `_snprintf(buffer, count, format,
/// ...)`, `swprintf(buffer, format, ...)` (ntoskrnl's is the legacy two-argument form, no
/// count), `_snwprintf(buffer, count, format, ...)`.
pub const VARIADIC: &[&str] = &["sprintf", "_snprintf", "swprintf", "_snwprintf"];
