//! The `wdk-sys` backend (`WdkSys`, feature `wdk-sys`), type-checked on this Linux host, where
//! the real wdk-sys cannot be built (its build script runs bindgen over an installed WDK).
//!
//! The test generates a throwaway workspace in which crates.io's `wdk-sys` is patched with a
//! stand-in of the same name (and a 0.5.x version) that has the *shape* bindgen gives
//! windows-drivers-rs 0.5 (checked against microsoft/windows-drivers-rs: `wdk_sys::ntddk::*`
//! functions in an `extern "C"` block, routine types as `Option<unsafe extern "C" fn(..)>`, C
//! enums as module-constant enums such as `_MODE::KernelMode`, `#[must_use]` on NTSTATUS
//! returns), and `cargo check`s io-workitem with the feature on, for both
//! `x86_64-pc-windows-msvc` and `aarch64-pc-windows-msvc` (build-std), plus a small driver-side
//! crate (`#![deny(unsafe_code)]`) that uses the `WdkSlab`/`WdkWorkItem` aliases. A second
//! stand-in with one wrong routine type proves the check is real: the one place that converts
//! routine pointers stops compiling.
//!
//! Not covered (needs a WDK on Windows): that the real bindings have exactly these names and
//! types — a real WDK build of a driver with the feature on checks that.

#![cfg(not(loom))]

use std::path::{Path, PathBuf};

/// bindgen-shaped subset of wdk-sys 0.5 that the backend uses. `ROUTINE_PARAMS` is replaced by
/// the work-item routine's parameter list.
const STANDIN: &str = r#"#![no_std]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals, dead_code)]
pub type ULONG = ::core::ffi::c_ulong;
pub type LONG = ::core::ffi::c_long;
pub type ULONG64 = ::core::ffi::c_ulonglong;
pub type LONG_PTR = ::core::ffi::c_longlong;
pub type ULONG_PTR = ::core::ffi::c_ulonglong;
pub type SIZE_T = ULONG_PTR;
pub type UCHAR = ::core::ffi::c_uchar;
pub type BOOLEAN = UCHAR;
pub type CCHAR = ::core::ffi::c_char;
pub type KPROCESSOR_MODE = CCHAR;
pub type KPRIORITY = LONG;
pub type NTSTATUS = LONG;
pub type PVOID = *mut ::core::ffi::c_void;
pub type POOL_FLAGS = ULONG64;
pub const POOL_FLAG_NON_PAGED: POOL_FLAGS = 0x40;
#[repr(C)] #[derive(Default, Copy, Clone)] pub struct _LARGE_INTEGER { pub QuadPart: i64 }
pub type LARGE_INTEGER = _LARGE_INTEGER;
pub type PLARGE_INTEGER = *mut _LARGE_INTEGER;
#[repr(C)] #[derive(Default, Copy, Clone)] pub struct _DISPATCHER_HEADER { pub Lock: LONG, pub SignalState: LONG, pub WaitListHead: [u64; 2] }
#[repr(C)] #[derive(Default, Copy, Clone)] pub struct _KEVENT { pub Header: _DISPATCHER_HEADER }
pub type KEVENT = _KEVENT;
pub type PRKEVENT = *mut _KEVENT;
#[repr(C)] pub struct _DEVICE_OBJECT { _opaque: [u8; 0x150] }
pub type DEVICE_OBJECT = _DEVICE_OBJECT;
pub type PDEVICE_OBJECT = *mut _DEVICE_OBJECT;
#[repr(C)] pub struct _IO_WORKITEM { _unused: [u8; 0] }
pub type PIO_WORKITEM = *mut _IO_WORKITEM;
pub type PIO_WORKITEM_ROUTINE = ::core::option::Option<unsafe extern "C" fn(ROUTINE_PARAMS)>;
pub type PIO_WORKITEM_ROUTINE_EX = ::core::option::Option<
    unsafe extern "C" fn(IoObject: PVOID, Context: PVOID, IoWorkItem: PIO_WORKITEM)>;
pub mod _WORK_QUEUE_TYPE { pub type Type = ::core::ffi::c_int; pub const DelayedWorkQueue: Type = 1; }
pub use self::_WORK_QUEUE_TYPE::Type as WORK_QUEUE_TYPE;
pub mod _EVENT_TYPE { pub type Type = ::core::ffi::c_int; pub const NotificationEvent: Type = 0; }
pub use self::_EVENT_TYPE::Type as EVENT_TYPE;
pub mod _KWAIT_REASON { pub type Type = ::core::ffi::c_int; pub const Executive: Type = 0; }
pub use self::_KWAIT_REASON::Type as KWAIT_REASON;
pub mod _MODE { pub type Type = ::core::ffi::c_int; pub const KernelMode: Type = 0; }
pub mod ntddk {
    use super::*;
    unsafe extern "C" {
        pub fn IoSizeofWorkItem() -> ULONG;
        pub fn IoInitializeWorkItem(IoObject: PVOID, IoWorkItem: PIO_WORKITEM);
        pub fn IoUninitializeWorkItem(IoWorkItem: PIO_WORKITEM);
        pub fn IoQueueWorkItem(IoWorkItem: PIO_WORKITEM, WorkerRoutine: PIO_WORKITEM_ROUTINE, QueueType: WORK_QUEUE_TYPE, Context: PVOID);
        pub fn IoQueueWorkItemEx(IoWorkItem: PIO_WORKITEM, WorkerRoutine: PIO_WORKITEM_ROUTINE_EX, QueueType: WORK_QUEUE_TYPE, Context: PVOID);
        pub fn ExAllocatePool2(Flags: POOL_FLAGS, NumberOfBytes: SIZE_T, Tag: ULONG) -> PVOID;
        pub fn ExFreePoolWithTag(P: PVOID, Tag: ULONG);
        pub fn KeInitializeEvent(Event: PRKEVENT, Type: EVENT_TYPE, State: BOOLEAN);
        pub fn KeSetEvent(Event: PRKEVENT, Increment: KPRIORITY, Wait: BOOLEAN) -> LONG;
        #[must_use]
        pub fn KeWaitForSingleObject(Object: PVOID, WaitReason: KWAIT_REASON, WaitMode: KPROCESSOR_MODE, Alertable: BOOLEAN, Timeout: PLARGE_INTEGER) -> NTSTATUS;
        pub fn ObfReferenceObject(Object: PVOID) -> LONG_PTR;
        pub fn ObfDereferenceObject(Object: PVOID) -> LONG_PTR;
    }
}
"#;

/// A driver-side crate: what a windows-drivers-rs driver writes with the feature on.
const USER: &str = r#"#![no_std]
#![deny(unsafe_code)]
use io_workitem::{Device, QueueType, Routine, WdkSlab, WdkSys, WdkWorkItem};

pub struct Job(pub u32);
pub struct Step;
impl Routine<WdkSys, Job> for Step {
    fn run(mut item: WdkWorkItem<'_, Job>) {
        item.payload_mut().0 -= 1;
        if item.payload().0 > 0 {
            item.queue::<Step>(QueueType::Delayed);
        }
    }
}

pub fn start(device: &Device) -> Option<WdkSlab<Job>> {
    let slab = WdkSlab::<Job>::new(device, 16, u32::from_le_bytes(*b"WiTp")).ok()?;
    if let Ok(item) = slab.acquire(Job(3)) {
        item.queue::<Step>(QueueType::Delayed);
    }
    Some(slab)
}
"#;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Generate the workspace and `cargo check` it for both Windows targets; (success, stderr).
///
/// Each stand-in gets its own `version` (any `0.5.x` satisfies io-workitem's requirement): the
/// two workspaces share one target directory, and cargo identifies a path package by name,
/// version and its path *relative to the workspace*, which is the same for both — with equal
/// versions the second check would reuse the first one's io-workitem.
fn check(name: &str, version: &str, routine_params: &str) -> Option<(bool, String)> {
    let tc = match xbuild::locate_toolchain(false) {
        Ok(tc) => tc,
        Err(e) if std::env::var("WDM_ALLOW_SKIP").as_deref() == Ok("1") => {
            eprintln!("SKIPPED (WDM_ALLOW_SKIP=1): {e}");
            return None;
        }
        Err(e) => panic!("no toolchain to type-check for Windows targets: {e}"),
    };
    let io_workitem = Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("wdk-sys-standin-{name}"));
    write(
        &dir.join("wdk-sys/Cargo.toml"),
        &format!("[package]\nname = \"wdk-sys\"\nversion = \"{version}\"\nedition = \"2024\"\n"),
    );
    write(
        &dir.join("wdk-sys/src/lib.rs"),
        &STANDIN.replace("ROUTINE_PARAMS", routine_params),
    );
    write(
        &dir.join("Cargo.toml"),
        &format!(
            "[workspace]\n[package]\nname = \"wdk-sys-user\"\nversion = \"0.0.0\"\n\
             edition = \"2024\"\n[lib]\npath = \"lib.rs\"\n[dependencies]\n\
             io-workitem = {{ path = {:?}, features = [\"wdk-sys\"] }}\n\
             [patch.crates-io]\nwdk-sys = {{ path = \"wdk-sys\" }}\n",
            io_workitem.to_str().unwrap()
        ),
    );
    write(&dir.join("lib.rs"), USER);
    let out = xbuild::kernel_cargo(&tc, "check", xbuild::DRIVER_TARGETS)
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        // One target directory for both stand-ins: `core` is built once per target.
        .arg("--target-dir")
        .arg(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wdk-sys-standin-target"))
        .output()
        .expect("run cargo");
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn wdk_sys_backend_type_checks_for_x64_and_arm64_against_a_bindgen_shaped_standin() {
    let Some((ok, stderr)) = check(
        "correct",
        "0.5.2",
        "DeviceObject: PDEVICE_OBJECT, Context: PVOID",
    ) else {
        return;
    };
    assert!(ok, "the wdk-sys backend does not type-check:\n{stderr}");
}

#[test]
fn a_routine_type_that_differs_from_nt_abi_is_rejected() {
    // One parameter missing: converting nt-abi's IO_WORKITEM_ROUTINE must no longer compile.
    let Some((ok, stderr)) = check("wrong-routine", "0.5.3", "Context: PVOID") else {
        return;
    };
    assert!(!ok, "a mismatched PIO_WORKITEM_ROUTINE type-checked");
    assert!(stderr.contains("src/wdk.rs"), "{stderr}");
    assert!(stderr.contains("mismatched types"), "{stderr}");
}
