//! The ARM64 build: cross-build wdm_workitem.sys for `aarch64-pc-windows-msvc` through xbuild
//! (same recipe, same toolchain, rust-lld) and check the image with the ARM64 policy: PE32+,
//! machine 0xAA64, NATIVE, DriverEntry entry point, NX/dynamic base, W^X, ntoskrnl-only
//! imports declared in nt-abi, the work-item imports present. No instruction scan: the scan's
//! rules are x86 rules. ntsim does not load ARM64 images (it runs x64 code on an x86_64 host).
//!
//! Negative tests show the checks fire on this image too: the x64 policy rejects it for its
//! machine, and a copy with `.text` made writable fails W^X.
//!
//! `WDM_WORKITEM_SYS_ARM64=<path>` checks a prebuilt image instead. A missing toolchain FAILS
//! (with what to install) unless `WDM_ALLOW_SKIP=1`.

#[path = "support/pe_edit.rs"]
mod pe_edit;

use std::path::PathBuf;
use std::sync::OnceLock;

use pe_edit::make_text_writable;
use sys_check::{Image, Policy, Violation, check, check_structure, pe};

fn arm64_sys() -> Option<&'static PathBuf> {
    static SYS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = SYS.get_or_init(|| {
        if let Some(p) = std::env::var_os("WDM_WORKITEM_SYS_ARM64") {
            return Ok(PathBuf::from(p));
        }
        let tc = xbuild::locate_toolchain(false).map_err(|e| e.to_string())?;
        xbuild::build_driver_for(&tc, xbuild::ARM64_TARGET, true, false).map_err(|e| e.to_string())
    });
    match built {
        Ok(p) => Some(p),
        Err(e) if std::env::var("WDM_ALLOW_SKIP").as_deref() == Ok("1") => {
            eprintln!("SKIPPED (WDM_ALLOW_SKIP=1): cannot build the ARM64 driver: {e}");
            None
        }
        Err(e) => panic!("cannot cross-build wdm_workitem.sys for ARM64:\n{e}"),
    }
}

#[test]
fn arm64_sys_passes_every_check_of_the_arm64_policy() {
    let Some(path) = arm64_sys() else { return };
    let policy = Policy::wdm_workitem_arm64();
    assert!(!policy.scan);
    let violations = check(path, &policy, None);
    assert!(
        violations.is_empty(),
        "{} fails: {violations:?}",
        path.display()
    );
    let img = Image::parse(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(img.machine, nt_abi::pe::IMAGE_FILE_MACHINE_ARM64);
    assert_eq!(img.subsystem, pe::IMAGE_SUBSYSTEM_NATIVE);
}

#[test]
fn x64_policy_rejects_the_arm64_image_for_its_machine_only() {
    let Some(path) = arm64_sys() else { return };
    let data = std::fs::read(path).unwrap();
    assert_eq!(
        check_structure(&data, &Policy::wdm_workitem()),
        vec![Violation::WrongMachine {
            machine: nt_abi::pe::IMAGE_FILE_MACHINE_ARM64,
            expected: pe::IMAGE_FILE_MACHINE_AMD64,
        }]
    );
    assert_eq!(
        Violation::WrongMachine {
            machine: 0x8664,
            expected: 0xAA64
        }
        .to_string(),
        "machine 0x8664 is not ARM64 (0xaa64)"
    );
}

#[test]
fn arm64_image_with_writable_text_fails_w_xor_x() {
    let Some(path) = arm64_sys() else { return };
    let mut data = std::fs::read(path).unwrap();
    let img = Image::parse(&data).unwrap();
    let ch = make_text_writable(&mut data, &img);
    assert_eq!(
        check_structure(&data, &Policy::wdm_workitem_arm64()),
        vec![Violation::WritableExecutableSection {
            name: ".text".into(),
            characteristics: ch
        }]
    );
}
