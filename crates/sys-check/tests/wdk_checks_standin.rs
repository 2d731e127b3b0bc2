//! What of `src/wdk_checks.rs` can be type-checked on Linux, where the real `wdk-sys` cannot be
//! built (its build script needs an installed WDK; wdk-build refuses non-Windows hosts).
//!
//! The test generates a throwaway crate that compiles `src/wdk_checks.rs` verbatim against a
//! stand-in crate *named* `wdk-sys`: nt-abi's types, except `IRP`, which is given the shape
//! bindgen produces from the WDK's `wdm.h` (C11 anonymous members as `__bindgen_anon_N`), so
//! the file's anonymous-member paths are exercised too. `cargo check` of that crate proves the
//! macro expansion over nt-abi's layout table, the nt-abi side of every assertion, and the
//! bindgen-style paths compile and hold for a correct layout. A second stand-in with one field
//! shifted proves the assertions fire.
//!
//! Not covered here (needs a WDK on Windows): that the real wdk-sys has these exact type and
//! field names and these values.

use std::path::{Path, PathBuf};
use std::process::Command;

/// bindgen-shaped IRP (x64, current WDK): `UserIosb` sits in an anonymous union, and
/// `CurrentStackLocation` in an anonymous union inside an anonymous struct of `Tail.Overlay`.
const IRP_STANDIN: &str = r#"
#[repr(C)] #[derive(Copy, Clone)] pub union _IRP__bindgen_ty_1 { pub MasterIrp: *mut IRP, pub IrpCount: i32, pub SystemBuffer: *mut core::ffi::c_void }
#[repr(C)] #[derive(Copy, Clone)] pub union _IRP__bindgen_ty_2 { pub UserIosb: *mut IO_STATUS_BLOCK, pub IoRingContext: *mut core::ffi::c_void }
#[repr(C)] #[derive(Copy, Clone)] pub union _IRP__bindgen_ty_3 { pub AsynchronousParameters: [u64; 2], pub AllocationSize: LARGE_INTEGER }
#[repr(C)] #[derive(Copy, Clone)] pub union _IRP__bindgen_ty_4__bindgen_ty_1__bindgen_ty_1 { pub DeviceQueueEntry: [u64; 3], pub DriverContext: [*mut core::ffi::c_void; 4] }
#[repr(C)] #[derive(Copy, Clone)] pub union _IRP__bindgen_ty_4__bindgen_ty_1__bindgen_ty_2__bindgen_ty_1 { pub CurrentStackLocation: *mut IO_STACK_LOCATION, pub PacketType: u32 }
#[repr(C)] #[derive(Copy, Clone)] pub struct _IRP__bindgen_ty_4__bindgen_ty_1__bindgen_ty_2 { pub ListEntry: LIST_ENTRY, pub __bindgen_anon_1: _IRP__bindgen_ty_4__bindgen_ty_1__bindgen_ty_2__bindgen_ty_1 }
#[repr(C)] #[derive(Copy, Clone)] pub struct _IRP__bindgen_ty_4__bindgen_ty_1 {
    pub __bindgen_anon_1: _IRP__bindgen_ty_4__bindgen_ty_1__bindgen_ty_1,
    pub Thread: *mut core::ffi::c_void,
    pub AuxiliaryBuffer: *mut i8,
    pub __bindgen_anon_2: _IRP__bindgen_ty_4__bindgen_ty_1__bindgen_ty_2,
    pub OriginalFileObject: *mut FILE_OBJECT,
    pub IrpExtension: *mut core::ffi::c_void,
}
#[repr(C)] #[derive(Copy, Clone)] pub union _IRP__bindgen_ty_4 { pub Overlay: _IRP__bindgen_ty_4__bindgen_ty_1, pub Apc: [u64; 11], pub CompletionKey: *mut core::ffi::c_void }
#[repr(C)] #[derive(Copy, Clone)] pub struct IRP {
    pub Type: i16,
    pub Size: u16,
    pub MdlAddress: *mut core::ffi::c_void,
    pub Flags: u32,
    SHIFT
    pub AssociatedIrp: _IRP__bindgen_ty_1,
    pub ThreadListEntry: LIST_ENTRY,
    pub IoStatus: IO_STATUS_BLOCK,
    pub RequestorMode: i8,
    pub PendingReturned: u8,
    pub StackCount: i8,
    pub CurrentLocation: i8,
    pub Cancel: u8,
    pub CancelIrql: u8,
    pub ApcEnvironment: i8,
    pub AllocationFlags: u8,
    pub __bindgen_anon_1: _IRP__bindgen_ty_2,
    pub UserEvent: *mut KEVENT,
    pub Overlay: _IRP__bindgen_ty_3,
    pub CancelRoutine: *mut core::ffi::c_void,
    pub UserBuffer: *mut core::ffi::c_void,
    pub Tail: _IRP__bindgen_ty_4,
}
"#;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Generate and `cargo check` the throwaway crate; returns (success, stderr).
fn check_with_standin(name: &str, shift: &str) -> (bool, String) {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir.join("../..").canonicalize().unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("wdk-standin-{name}"));
    let nt_abi = root.join("crates/nt-abi");
    write(
        &dir.join("wdk-sys/Cargo.toml"),
        &format!(
            "[package]\nname = \"wdk-sys\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
             [dependencies]\nnt-abi = {{ path = {:?} }}\n",
            nt_abi.to_str().unwrap()
        ),
    );
    write(
        &dir.join("wdk-sys/src/lib.rs"),
        &format!(
            "#![no_std]\n#![allow(non_camel_case_types, non_snake_case, dead_code)]\n\
             pub use nt_abi::*;\n{}",
            IRP_STANDIN.replace("SHIFT", shift)
        ),
    );
    write(
        &dir.join("Cargo.toml"),
        &format!(
            "[workspace]\n[package]\nname = \"wdk-checks-standin\"\nversion = \"0.0.0\"\n\
             edition = \"2024\"\n[lib]\npath = \"lib.rs\"\n[dependencies]\n\
             nt-abi = {{ path = {:?} }}\nwdk-sys = {{ path = \"wdk-sys\" }}\n",
            nt_abi.to_str().unwrap()
        ),
    );
    write(
        &dir.join("lib.rs"),
        &format!(
            "#![no_std]\n#[path = {:?}]\nmod wdk_checks;\n",
            root.join("src/wdk_checks.rs").to_str().unwrap()
        ),
    );
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["check", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.join("target"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn wdk_checks_compile_against_a_correct_bindgen_shaped_standin() {
    let (ok, stderr) = check_with_standin("correct", "");
    assert!(
        ok,
        "src/wdk_checks.rs does not type-check against the stand-in:\n{stderr}"
    );
}

#[test]
fn wdk_checks_reject_a_shifted_layout() {
    // Eight bytes after Flags (four would vanish into the padding before the 8-aligned
    // AssociatedIrp): AssociatedIrp and everything after it move by 8.
    let (ok, stderr) = check_with_standin("shifted", "pub Shift: u64,");
    assert!(!ok, "a shifted IRP layout passed the wdk-sys checks");
    assert!(
        stderr.contains("wdk-sys: offset of IRP.AssociatedIrp differs from nt-abi's table"),
        "{stderr}"
    );
    assert!(
        stderr.contains("wdk-sys: size of IRP differs from nt-abi's table"),
        "{stderr}"
    );
}
