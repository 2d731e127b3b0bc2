//! 64-bit NT kernel ABI (x64 and ARM64): the types, layouts, constants and `ntoskrnl.exe` import
//! declarations that the wdm-workitem driver uses and that ntsim emulates.
//!
//! This crate is the project's single source of truth for anything Windows defines. Every struct
//! carries compile-time size/offset assertions (see [`layout`]); an independent test checks the
//! same numbers against mingw-w64's `ddk/` headers so a mistake cannot hide in both the driver
//! and ntsim at once.
//!
//! ## Architectures
//!
//! The crate builds for `x86_64-pc-windows-msvc`, `aarch64-pc-windows-msvc` and (for ntsim and
//! tests) x86_64 hosts. Every structure here has the same layout on x64 and ARM64 (both are
//! LLP64 with 8-byte pointers and 16-byte `MEMORY_ALLOCATION_ALIGNMENT`; none of these types has
//! an architecture-specific member), so [`layout`]'s assertions are compiled, and must hold, for
//! both. What does differ between the two is not a fixed layout here: `IoSizeofWorkItem()` (read
//! at run time, never hard-coded), the PE machine ([`pe::IMAGE_FILE_MACHINE_ARM64`]) and the
//! CPU-state structures (`CONTEXT`, `KPCR`, unwind data).
//!
//! What checks the ARM64 claim: the assertions compile for `aarch64-pc-windows-msvc` (the ARM64
//! driver build), and a WDK build can assert them against `wdk-sys`. The independent mingw-w64
//! header check runs for x64 only: Debian 12's mingw-w64 `ddk/wdm.h` does not support aarch64
//! (`#error Unknown Architecture`; what clang computes from it for `aarch64-w64-mingw32` then
//! disagrees with Windows on `IO_STACK_LOCATION`), so it cannot serve as evidence there.
//!
//! ## Calling convention of kernel callbacks
//!
//! Routine types (work-item routines, dispatch routines, …) are `unsafe extern "system" fn` on
//! Windows targets, which is the platform C convention on both x64 and ARM64 — the spelling a
//! Windows driver uses. On a non-Windows x86_64 host they are `extern "win64"`, so ntsim can call
//! into (and be called from) a real driver image. [`kernel_fn!`] defines a function with
//! whichever of the two applies, for code (like `io-workitem`) that is built for both.
#![no_std]

/// Define `unsafe fn` items with the calling convention of nt-abi's routine types: `extern
/// "win64"` on a non-Windows x86_64 host (ntsim), `extern "system"` everywhere else (x64 and
/// ARM64 Windows). Generics, attributes and where-clauses pass through unchanged.
///
/// ```
/// nt_abi::kernel_fn! {
///     /// A work-item routine that does nothing.
///     unsafe fn ignore(_device: *mut nt_abi::DEVICE_OBJECT, _context: nt_abi::PVOID) {}
/// }
/// let _routine: nt_abi::IO_WORKITEM_ROUTINE = ignore;
/// ```
#[macro_export]
macro_rules! kernel_fn {
    ($(#[$attr:meta])* $vis:vis unsafe fn $name:ident $($rest:tt)*) => {
        #[cfg(all(target_arch = "x86_64", not(windows)))]
        $(#[$attr])* $vis unsafe extern "win64" fn $name $($rest)*
        #[cfg(not(all(target_arch = "x86_64", not(windows))))]
        $(#[$attr])* $vis unsafe extern "system" fn $name $($rest)*
    };
}

/// Define a routine (function-pointer) type alias with the kernel callback convention, as
/// [`kernel_fn!`] defines functions.
macro_rules! routine_type {
    ($(#[$attr:meta])* $vis:vis type $name:ident = unsafe fn $($sig:tt)*) => {
        $(#[$attr])*
        #[cfg(all(target_arch = "x86_64", not(windows)))]
        $vis type $name = unsafe extern "win64" fn $($sig)*;
        $(#[$attr])*
        #[cfg(not(all(target_arch = "x86_64", not(windows))))]
        $vis type $name = unsafe extern "system" fn $($sig)*;
    };
}
pub(crate) use routine_type;

pub mod bugcheck;
pub mod cpu;
pub mod ctl;
pub mod dbg;
pub mod dispatcher;
pub mod imports;
pub mod io;
pub mod io_forward;
pub mod ioasync;
pub mod ke;
pub mod layout;
pub mod locks;
pub mod mdl;
pub mod pe;
pub mod pool;
pub mod rtl;
pub mod seh;
pub mod status;
pub mod text;
pub mod types;
pub mod workitem;

pub use cpu::*;
pub use ctl::*;
pub use dispatcher::*;
pub use io::*;
pub use io_forward::*;
pub use ioasync::*;
pub use ke::*;
pub use locks::*;
pub use mdl::*;
pub use pool::*;
pub use seh::*;
pub use status::*;
pub use types::*;
pub use workitem::*;

/// The crate README's example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
