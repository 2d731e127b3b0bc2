//! The artifact test: cross-build wdm_workitem.sys through xbuild (the same recipe as
//! `cargo xtask build-sys`), then check the image (see the crate docs for the list). Every check
//! has a negative test below that corrupts a copy of the real image in one specific way and
//! asserts the checker reports exactly that.
//!
//! `WDM_WORKITEM_SYS=<path>` checks a prebuilt debug image instead of building one
//! (`WDM_WORKITEM_SYS_RELEASE=<path>` likewise for the release image). Tests never
//! install anything: a missing toolchain or disassembler FAILS with the package to install
//! (`cargo xtask test` installs them), unless `WDM_ALLOW_SKIP=1`.

#[path = "support/pe_edit.rs"]
mod pe_edit;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pe_edit::make_text_writable;
use sys_check::disasm::{Disassembler, Finding};
use sys_check::{Image, Policy, Violation, check, check_structure, pe};

fn allow_skip() -> bool {
    std::env::var("WDM_ALLOW_SKIP").as_deref() == Ok("1")
}

fn build(release: bool) -> Result<PathBuf, String> {
    let var = if release {
        "WDM_WORKITEM_SYS_RELEASE"
    } else {
        "WDM_WORKITEM_SYS"
    };
    if let Some(p) = std::env::var_os(var) {
        return Ok(PathBuf::from(p));
    }
    let tc = xbuild::locate_toolchain(false).map_err(|e| e.to_string())?;
    xbuild::build_driver(&tc, release, false).map_err(|e| e.to_string())
}

/// The built image, once per profile per test run.
fn driver(release: bool) -> Option<&'static Path> {
    static DEBUG: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static RELEASE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let cell = if release { &RELEASE } else { &DEBUG };
    match cell.get_or_init(|| build(release)) {
        Ok(p) => Some(p.as_path()),
        Err(e) if allow_skip() => {
            eprintln!("SKIPPED (WDM_ALLOW_SKIP=1): cannot build wdm_workitem.sys: {e}");
            None
        }
        Err(e) => panic!(
            "cannot build wdm_workitem.sys through xbuild:\n{e}\n\
             (`cargo xtask test` installs the toolchain; set WDM_ALLOW_SKIP=1 to skip)"
        ),
    }
}

fn disassembler() -> Option<Disassembler> {
    let d = Disassembler::locate();
    if d.is_none() && !allow_skip() {
        panic!(
            "no disassembler: install the Debian package mingw-w64 (x86_64-w64-mingw32-objdump) \
             or llvm; `cargo xtask test` does this. WDM_ALLOW_SKIP=1 skips the instruction scan"
        );
    }
    d
}

fn assert_clean(path: &Path) {
    let d = disassembler();
    let mut violations = check(path, &Policy::wdm_workitem(), d.as_ref());
    if allow_skip() {
        violations.retain(|v| !matches!(v, Violation::DisassemblyUnavailable(_)));
    }
    assert!(
        violations.is_empty(),
        "{} fails {} artifact check(s):\n  {}",
        path.display(),
        violations.len(),
        violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

#[test]
fn debug_sys_passes_every_check() {
    if let Some(p) = driver(false) {
        assert_clean(p);
    }
}

#[test]
fn release_sys_passes_every_check() {
    if let Some(p) = driver(true) {
        assert_clean(p);
    }
}

// ---- negative tests: each corrupts a copy of the real image in one way ----------------------

/// Negative tests corrupt the release image: the LTO-optimized artifact users would sign.
fn image_bytes() -> Option<(Vec<u8>, Image)> {
    let p = driver(true)?;
    let data = std::fs::read(p).expect("read .sys");
    let img = Image::parse(&data).expect("the built image parses");
    Some((data, img))
}

fn put_u16(d: &mut [u8], off: usize, v: u16) {
    d[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(d: &mut [u8], off: usize, v: u32) {
    d[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn find(d: &[u8], needle: &[u8]) -> usize {
    d.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not in image", String::from_utf8_lossy(needle)))
}

/// Structural policy without the required-import list, so a negative test sees only the
/// violation it introduced even while the driver is still growing its imports.
fn structural() -> Policy {
    Policy::any_nt_abi_driver()
}

fn structure_violations(d: &[u8]) -> Vec<Violation> {
    check_structure(d, &structural())
}

#[test]
fn unmodified_copy_is_structurally_clean() {
    // Baseline for the negative tests below: any violation they see was introduced by them.
    let Some((d, _)) = image_bytes() else { return };
    assert_eq!(structure_violations(&d), vec![]);
}

#[test]
fn detects_wrong_subsystem() {
    let Some((mut d, img)) = image_bytes() else {
        return;
    };
    put_u16(&mut d, img.optional_header_offset + pe::OPT_SUBSYSTEM, 2); // WINDOWS_GUI
    assert_eq!(
        structure_violations(&d),
        vec![Violation::SubsystemNotNative { subsystem: 2 }]
    );
}

#[test]
fn detects_pe32_and_wrong_machine() {
    let Some((mut d, img)) = image_bytes() else {
        return;
    };
    put_u16(
        &mut d,
        img.optional_header_offset + pe::OPT_MAGIC,
        pe::PE32_MAGIC,
    );
    put_u16(&mut d, img.optional_header_offset - 20, 0x14c); // i386
    assert_eq!(
        structure_violations(&d),
        vec![
            Violation::WrongMachine {
                machine: 0x14c,
                expected: pe::IMAGE_FILE_MACHINE_AMD64
            },
            Violation::NotPe32Plus {
                magic: pe::PE32_MAGIC
            }
        ]
    );
}

#[test]
fn detects_missing_nx_and_dynamic_base() {
    let Some((mut d, img)) = image_bytes() else {
        return;
    };
    let off = img.optional_header_offset + pe::OPT_DLL_CHARACTERISTICS;
    put_u16(
        &mut d,
        off,
        img.dll_characteristics & !pe::IMAGE_DLLCHARACTERISTICS_NX_COMPAT,
    );
    assert_eq!(structure_violations(&d), vec![Violation::NxCompatMissing]);
    put_u16(
        &mut d,
        off,
        img.dll_characteristics & !pe::IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE,
    );
    assert_eq!(
        structure_violations(&d),
        vec![Violation::DynamicBaseMissing]
    );
}

#[test]
fn detects_writable_executable_section() {
    let Some((mut d, img)) = image_bytes() else {
        return;
    };
    let ch = make_text_writable(&mut d, &img);
    assert_eq!(
        structure_violations(&d),
        vec![Violation::WritableExecutableSection {
            name: ".text".into(),
            characteristics: ch
        }]
    );
    // And a data section made executable.
    let (mut d2, img2) = image_bytes().unwrap();
    let data = img2
        .sections
        .iter()
        .find(|s| s.is_writable())
        .map(|s| (s.name.clone(), s.header_offset, s.characteristics));
    if let Some((name, off, ch)) = data {
        let ch = ch | pe::IMAGE_SCN_MEM_EXECUTE;
        put_u32(&mut d2, off + 36, ch);
        assert!(
            structure_violations(&d2).contains(&Violation::WritableExecutableSection {
                name,
                characteristics: ch
            })
        );
    }
}

#[test]
fn detects_entry_point_that_is_not_driver_entry() {
    let Some((mut d, img)) = image_bytes() else {
        return;
    };
    let off = img.optional_header_offset + pe::OPT_ENTRY;
    put_u32(&mut d, off, img.entry_rva + 1);
    assert_eq!(
        structure_violations(&d),
        vec![Violation::EntryNotDriverEntry {
            entry_rva: img.entry_rva + 1,
            driver_entry_rva: img.entry_rva
        }]
    );
    // Into a non-executable section.
    let rdata = img
        .sections
        .iter()
        .find(|s| !s.is_executable())
        .expect("a data section");
    put_u32(&mut d, off, rdata.virtual_address);
    let v = structure_violations(&d);
    assert!(
        v.contains(&Violation::EntryNotExecutable {
            entry_rva: rdata.virtual_address
        }),
        "{v:?}"
    );
}

#[test]
fn detects_import_from_another_dll() {
    let Some((mut d, _)) = image_bytes() else {
        return;
    };
    let at = find(&d, b"ntoskrnl.exe\0");
    d[at..at + 12].copy_from_slice(b"kernel32.dll");
    assert_eq!(
        structure_violations(&d),
        vec![Violation::ImportFromForbiddenDll {
            dll: "kernel32.dll".into()
        }]
    );
}

#[test]
fn detects_missing_and_undeclared_imports() {
    let Some((mut d, _)) = image_bytes() else {
        return;
    };
    let at = find(&d, b"IoSizeofWorkItem\0");
    d[at + 15] = b'X';
    let v = check_structure(&d, &Policy::wdm_workitem());
    assert!(
        v.contains(&Violation::UndeclaredImport {
            name: "IoSizeofWorkIteX".into()
        }),
        "{v:?}"
    );
    assert!(
        v.contains(&Violation::MissingImport {
            name: "IoSizeofWorkItem".into()
        }),
        "{v:?}"
    );
}

#[test]
fn detects_tls_and_delay_imports() {
    let Some((mut d, img)) = image_bytes() else {
        return;
    };
    let dirs = img.optional_header_offset + pe::OPT_DATA_DIRECTORIES;
    put_u32(&mut d, dirs + pe::DIR_TLS * 8, 0x2000);
    put_u32(&mut d, dirs + pe::DIR_TLS * 8 + 4, 0x28);
    put_u32(&mut d, dirs + pe::DIR_DELAY_IMPORT * 8, 0x2000);
    put_u32(&mut d, dirs + pe::DIR_DELAY_IMPORT * 8 + 4, 0x20);
    assert_eq!(
        structure_violations(&d),
        vec![Violation::HasTls, Violation::HasDelayImports]
    );
}

#[test]
fn required_import_list_is_the_final_expectation() {
    let p = Policy::wdm_workitem();
    for name in [
        "IoSizeofWorkItem",
        "IoInitializeWorkItem",
        "IoUninitializeWorkItem",
        "IoQueueWorkItem",
        "IoQueueWorkItemEx",
        "IoCreateDevice",
        "IoDeleteDevice",
        "IoCreateSymbolicLink",
        "IoDeleteSymbolicLink",
        "IofCompleteRequest",
        "ExAllocatePool2",
        "ExFreePoolWithTag",
    ] {
        assert!(
            p.required_imports.iter().any(|r| r == name),
            "{name} not required"
        );
        assert!(
            nt_abi::imports::all_imports().any(|i| i == name),
            "{name} not declared in nt-abi"
        );
    }
}

#[test]
fn detects_privileged_instructions_and_gs_access_in_text() {
    let Some((mut d, img)) = image_bytes() else {
        return;
    };
    let Some(dis) = disassembler() else { return };
    let entry = img.rva_to_offset(img.entry_rva).expect("entry has bytes");
    #[rustfmt::skip]
    let code: &[u8] = &[
        0xFA,                                           // cli
        0x0F, 0x22, 0xD8,                               // mov cr3, rax
        0x65, 0x48, 0x8B, 0x04, 0x25, 0x88, 0x01, 0x00, 0x00, // mov rax, gs:[0x188]
        0xE4, 0x60,                                     // in al, 0x60
        0x0F, 0x30,                                     // wrmsr
        0xF4,                                           // hlt
    ];
    d[entry..entry + code.len()].copy_from_slice(code);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sys-check-privileged.sys");
    std::fs::write(&path, &d).unwrap();
    let v = sys_check::check_instructions(&path, Some(&dis));
    let at = |i: usize| img.image_base + u64::from(img.entry_rva) + i as u64;
    let addrs: Vec<(bool, u64)> = v
        .iter()
        .map(|x| match x {
            Violation::Instruction(Finding::Privileged { address, .. }) => (true, *address),
            Violation::Instruction(Finding::SegmentAccess { address, .. }) => (false, *address),
            other => panic!("unexpected {other}"),
        })
        .collect();
    for expected in [
        (true, at(0)),
        (true, at(1)),
        (false, at(4)),
        (true, at(13)),
        (true, at(15)),
        (true, at(17)),
    ] {
        assert!(addrs.contains(&expected), "missing {expected:x?} in {v:#?}");
    }
    // The unmodified image has none of these (checked by the positive tests); the scan found
    // exactly what was planted, plus nothing from the rest of DriverEntry's mangled bytes
    // that happens to decode as privileged.
    assert!(v.len() >= 6);
}

#[test]
fn instruction_scan_without_a_disassembler_is_a_failure_not_a_pass() {
    let v = sys_check::check_instructions(Path::new("/nonexistent.sys"), None);
    assert!(
        matches!(v.as_slice(), [Violation::DisassemblyUnavailable(m)] if m.contains("mingw-w64"))
    );
}

#[test]
fn detects_import_by_ordinal() {
    let Some((mut d, img)) = image_bytes() else {
        return;
    };
    let (dir, _) = img.directory(pe::DIR_IMPORT);
    let desc = img.rva_to_offset(dir).unwrap();
    let lookup = u32::from_le_bytes(d[desc..desc + 4].try_into().unwrap());
    let lookup = if lookup != 0 {
        lookup
    } else {
        u32::from_le_bytes(d[desc + 16..desc + 20].try_into().unwrap())
    };
    let thunk = img.rva_to_offset(lookup).unwrap();
    d[thunk..thunk + 8].copy_from_slice(&((1u64 << 63) | 0x1234).to_le_bytes());
    let v = structure_violations(&d);
    assert!(
        v.contains(&Violation::ImportByOrdinal {
            dll: "ntoskrnl.exe".into(),
            ordinal: 0x1234
        }),
        "{v:?}"
    );
}

#[test]
fn truncated_or_foreign_files_are_reported_not_panicked_on() {
    let Some((d, _)) = image_bytes() else { return };
    for len in [0, 1, 0x3C, 0x80, 0x100, 0x200] {
        let v = structure_violations(&d[..len.min(d.len())]);
        assert!(
            matches!(v.as_slice(), [Violation::Malformed(_)]),
            "len {len}: {v:?}"
        );
    }
    let mut not_pe = d.clone();
    not_pe[0] = b'Z';
    assert!(matches!(
        structure_violations(&not_pe).as_slice(),
        [Violation::Malformed(_)]
    ));
}

#[test]
fn detects_missing_driver_entry_export() {
    let Some((mut d, img)) = image_bytes() else {
        return;
    };
    let (dir, _) = img.directory(pe::DIR_EXPORT);
    let dir = img.rva_to_offset(dir).unwrap();
    let rd = |d: &[u8], o: usize| u32::from_le_bytes(d[o..o + 4].try_into().unwrap());
    let names = img.rva_to_offset(rd(&d, dir + 32)).unwrap();
    let count = rd(&d, dir + 24) as usize;
    let mut renamed = false;
    for i in 0..count {
        let name = img.rva_to_offset(rd(&d, names + 4 * i)).unwrap();
        if d[name..].starts_with(b"DriverEntry\0") {
            d[name + 10] = b'z';
            renamed = true;
        }
    }
    assert!(renamed, "the image exports DriverEntry");
    assert_eq!(
        structure_violations(&d),
        vec![Violation::NoDriverEntryExport]
    );
}
