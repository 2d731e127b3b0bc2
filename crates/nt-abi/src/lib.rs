//! x64 NT kernel ABI: the types, layouts, constants and `ntoskrnl.exe` import declarations that
//! the wdm-workitem driver uses and that ntsim emulates.
//!
//! This crate is the project's single source of truth for anything Windows defines. Every struct
//! carries compile-time size/offset assertions (see [`layout`]); an independent test checks the
//! same numbers against mingw-w64's `ddk/` headers so a mistake cannot hide in both the driver
//! and ntsim at once.
//!
//! Function-pointer types use `extern "win64"`: on `x86_64-pc-windows-msvc` that is the same
//! convention as `extern "system"`, and on a Linux host it lets ntsim call into (and be called
//! from) a real driver image.
#![no_std]
#![cfg(target_arch = "x86_64")]

pub mod bugcheck;
pub mod cpu;
pub mod ctl;
pub mod imports;
pub mod io;
pub mod ke;
pub mod layout;
pub mod pe;
pub mod pool;
pub mod seh;
pub mod status;
pub mod types;
pub mod workitem;

pub use cpu::*;
pub use ctl::*;
pub use io::*;
pub use ke::*;
pub use pool::*;
pub use seh::*;
pub use status::*;
pub use types::*;
pub use workitem::*;
