//! Checks on the built driver image — the artifact a Windows user would sign and load, not the
//! source that produced it (DESIGN.md §3, "Check the artifact"):
//!
//! - PE32+ for the policy's machine (x64 `0x8664`, or ARM64 `0xAA64` for the
//!   `aarch64-pc-windows-msvc` build), subsystem NATIVE;
//! - the entry point is `DriverEntry`: `AddressOfEntryPoint` equals the RVA of the image's
//!   `DriverEntry` export (a Rust cdylib exports its `#[unsafe(no_mangle)] pub extern` functions,
//!   and the linker was told `/ENTRY:DriverEntry`) and lies in an executable section;
//! - `NX_COMPAT` and `DYNAMIC_BASE` set; no section both writable and executable;
//! - no TLS directory, no delay-load imports (neither works in a kernel image);
//! - imports only from the allowed DLLs (`ntoskrnl.exe`), none by ordinal, every one declared in
//!   nt-abi (so ntsim can bind it), and the ones the driver must use present;
//! - x64 images only: no privileged instructions and no `gs:`/`fs:` accesses in executable
//!   sections ([`disasm`]). ARM64 images get every other check; the instruction rules are x86
//!   rules, so there is no ARM64 instruction scan (and the policy says so, [`Policy::scan`]).
//!
//! [`check`] returns every [`Violation`] found; an empty list means the image passed.
//!
//! [`inf`] checks `driver.inx` against Microsoft's documented primitive-driver INF rules (our own
//! checker of the written rules, not a replacement for infverif).

pub mod authenticode;
pub mod disasm;
pub mod inf;
pub mod pe;

use std::fmt;
use std::path::Path;

pub use pe::Image;

/// Kernel-mode imports the wdm-workitem driver is expected to have (DESIGN.md §1, §4, §6).
pub fn expected_driver_imports() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = nt_abi::imports::WORK_ITEM_IMPORTS.to_vec();
    v.extend([
        "IoCreateDevice",
        "IoDeleteDevice",
        "IoCreateSymbolicLink",
        "IoDeleteSymbolicLink",
        "IofCompleteRequest",
        "ExAllocatePool2",
        "ExFreePoolWithTag",
    ]);
    v
}

/// What an image must satisfy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// DLLs imports may come from (compared case-insensitively).
    pub allowed_dlls: Vec<String>,
    /// Imports that must be present.
    pub required_imports: Vec<String>,
    /// If set, every import must be in this list (nt-abi's declarations).
    pub known_imports: Option<Vec<String>>,
    /// `IMAGE_FILE_HEADER.Machine` the image must have.
    pub machine: u16,
    /// Whether [`check`] runs the x86 instruction scan (x64 images only).
    pub scan: bool,
}

impl Policy {
    /// The policy for wdm_workitem.sys.
    pub fn wdm_workitem() -> Policy {
        Policy {
            allowed_dlls: vec!["ntoskrnl.exe".into()],
            required_imports: expected_driver_imports()
                .into_iter()
                .map(String::from)
                .collect(),
            known_imports: Some(nt_abi::imports::all_imports().map(String::from).collect()),
            machine: pe::IMAGE_FILE_MACHINE_AMD64,
            scan: true,
        }
    }

    /// The policy for the ARM64 build of wdm_workitem.sys: the same structure and import rules,
    /// machine ARM64, no (x86) instruction scan.
    pub fn wdm_workitem_arm64() -> Policy {
        Policy {
            machine: nt_abi::pe::IMAGE_FILE_MACHINE_ARM64,
            scan: false,
            ..Policy::wdm_workitem()
        }
    }

    /// Structure-only policy for any driver built on nt-abi (fixtures): no required imports.
    pub fn any_nt_abi_driver() -> Policy {
        Policy {
            required_imports: Vec::new(),
            ..Policy::wdm_workitem()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    Malformed(String),
    WrongMachine {
        machine: u16,
        expected: u16,
    },
    NotPe32Plus {
        magic: u16,
    },
    SubsystemNotNative {
        subsystem: u16,
    },
    NoDriverEntryExport,
    EntryNotDriverEntry {
        entry_rva: u32,
        driver_entry_rva: u32,
    },
    EntryNotExecutable {
        entry_rva: u32,
    },
    NxCompatMissing,
    DynamicBaseMissing,
    WritableExecutableSection {
        name: String,
        characteristics: u32,
    },
    HasTls,
    HasDelayImports,
    ImportFromForbiddenDll {
        dll: String,
    },
    ImportByOrdinal {
        dll: String,
        ordinal: u16,
    },
    UndeclaredImport {
        name: String,
    },
    MissingImport {
        name: String,
    },
    Instruction(disasm::Finding),
    /// The disassembler could not be run (tool missing or failed): the check did not happen.
    DisassemblyUnavailable(String),
    /// [`check_link`]: the `CheckSum` field is zero (lld-link writes it only with `/RELEASE`).
    ChecksumMissing,
    /// [`check_link`]: the `CheckSum` field does not match the file.
    ChecksumMismatch {
        stored: u32,
        computed: u32,
    },
    /// [`check_link`]: `IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY` (`/INTEGRITYCHECK`) is clear.
    ForceIntegrityMissing,
    /// [`check_signature`]: no Authenticode signature (empty security directory).
    NotSigned,
    /// [`check_signature`]: osslsigncode rejected the signature (its report).
    SignatureRejected(String),
    /// [`check_signature`]: the signature could not be checked (tool missing or failed to run).
    SignatureCheckUnavailable(String),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Violation::*;
        match self {
            Malformed(m) => write!(f, "{m}"),
            WrongMachine { machine, expected } => write!(
                f,
                "machine {machine:#06x} is not {} ({expected:#06x})",
                machine_name(*expected)
            ),
            NotPe32Plus { magic } => {
                write!(f, "optional header magic {magic:#x} is not PE32+ (0x20b)")
            }
            SubsystemNotNative { subsystem } => {
                write!(
                    f,
                    "subsystem {subsystem} is not NATIVE (1): not a kernel driver image"
                )
            }
            NoDriverEntryExport => write!(
                f,
                "no DriverEntry export: cannot prove the entry point is DriverEntry"
            ),
            EntryNotDriverEntry {
                entry_rva,
                driver_entry_rva,
            } => write!(
                f,
                "AddressOfEntryPoint {entry_rva:#x} is not DriverEntry ({driver_entry_rva:#x})"
            ),
            EntryNotExecutable { entry_rva } => {
                write!(
                    f,
                    "entry point {entry_rva:#x} is not in an executable section"
                )
            }
            NxCompatMissing => write!(f, "IMAGE_DLLCHARACTERISTICS_NX_COMPAT is not set"),
            DynamicBaseMissing => write!(f, "IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE is not set"),
            WritableExecutableSection {
                name,
                characteristics,
            } => write!(
                f,
                "section {name} is writable and executable (characteristics {characteristics:#010x})"
            ),
            HasTls => write!(
                f,
                "image has a TLS directory (unsupported in kernel images)"
            ),
            HasDelayImports => write!(
                f,
                "image has delay-load imports (unsupported in kernel images)"
            ),
            ImportFromForbiddenDll { dll } => write!(f, "imports from {dll}, which is not allowed"),
            ImportByOrdinal { dll, ordinal } => write!(f, "imports ordinal {ordinal} from {dll}"),
            UndeclaredImport { name } => {
                write!(
                    f,
                    "import {name} is not declared in nt-abi (ntsim cannot bind it)"
                )
            }
            MissingImport { name } => write!(f, "expected import {name} is missing"),
            Instruction(i) => write!(f, "{i}"),
            DisassemblyUnavailable(m) => write!(f, "instruction scan not performed: {m}"),
            ChecksumMissing => write!(
                f,
                "the PE checksum is 0: Windows refuses drivers without a valid checksum (link with /RELEASE)"
            ),
            ChecksumMismatch { stored, computed } => write!(
                f,
                "the PE checksum is {stored:#010x}, but the file sums to {computed:#010x}"
            ),
            ForceIntegrityMissing => write!(
                f,
                "IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY is not set (wdk-build links with /INTEGRITYCHECK)"
            ),
            NotSigned => write!(f, "the image has no Authenticode signature"),
            SignatureRejected(m) => write!(f, "the Authenticode signature does not verify: {m}"),
            SignatureCheckUnavailable(m) => write!(f, "signature not checked: {m}"),
        }
    }
}

/// `AMD64`, `ARM64`, or `unknown`.
pub fn machine_name(machine: u16) -> &'static str {
    match machine {
        pe::IMAGE_FILE_MACHINE_AMD64 => "AMD64",
        nt_abi::pe::IMAGE_FILE_MACHINE_ARM64 => "ARM64",
        _ => "unknown",
    }
}

/// Header, section and import checks (everything but the instruction scan).
pub fn check_structure(data: &[u8], policy: &Policy) -> Vec<Violation> {
    let img = match Image::parse(data) {
        Ok(img) => img,
        Err(e) => return vec![Violation::Malformed(e.to_string())],
    };
    let mut v = Vec::new();
    if img.machine != policy.machine {
        v.push(Violation::WrongMachine {
            machine: img.machine,
            expected: policy.machine,
        });
    }
    if img.optional_magic != pe::PE32_PLUS_MAGIC {
        v.push(Violation::NotPe32Plus {
            magic: img.optional_magic,
        });
        return v;
    }
    if img.subsystem != pe::IMAGE_SUBSYSTEM_NATIVE {
        v.push(Violation::SubsystemNotNative {
            subsystem: img.subsystem,
        });
    }
    match img.exports.iter().find(|e| e.name == "DriverEntry") {
        None => v.push(Violation::NoDriverEntryExport),
        Some(e) if e.rva != img.entry_rva => v.push(Violation::EntryNotDriverEntry {
            entry_rva: img.entry_rva,
            driver_entry_rva: e.rva,
        }),
        Some(_) => {}
    }
    if !img
        .section_of_rva(img.entry_rva)
        .is_some_and(|s| s.is_executable())
    {
        v.push(Violation::EntryNotExecutable {
            entry_rva: img.entry_rva,
        });
    }
    if img.dll_characteristics & pe::IMAGE_DLLCHARACTERISTICS_NX_COMPAT == 0 {
        v.push(Violation::NxCompatMissing);
    }
    if img.dll_characteristics & pe::IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE == 0 {
        v.push(Violation::DynamicBaseMissing);
    }
    for s in &img.sections {
        if s.is_writable() && s.is_executable() {
            v.push(Violation::WritableExecutableSection {
                name: s.name.clone(),
                characteristics: s.characteristics,
            });
        }
    }
    if img.directory(pe::DIR_TLS) != (0, 0) {
        v.push(Violation::HasTls);
    }
    if img.directory(pe::DIR_DELAY_IMPORT) != (0, 0) {
        v.push(Violation::HasDelayImports);
    }
    let mut names = Vec::new();
    for dll in &img.imports {
        if !policy
            .allowed_dlls
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&dll.dll))
        {
            v.push(Violation::ImportFromForbiddenDll {
                dll: dll.dll.clone(),
            });
        }
        for f in &dll.functions {
            match f {
                pe::ImportName::Ordinal(o) => v.push(Violation::ImportByOrdinal {
                    dll: dll.dll.clone(),
                    ordinal: *o,
                }),
                pe::ImportName::Name(n) => names.push(n.clone()),
            }
        }
    }
    if let Some(known) = &policy.known_imports {
        for n in &names {
            if !known.contains(n) {
                v.push(Violation::UndeclaredImport { name: n.clone() });
            }
        }
    }
    for r in &policy.required_imports {
        if !names.contains(r) {
            v.push(Violation::MissingImport { name: r.clone() });
        }
    }
    v
}

/// What the link must give a driver the way wdk-build's flow does (`/INTEGRITYCHECK`) and what
/// Windows requires of a driver image (a correct checksum, which link.exe writes for `/DRIVER`).
pub fn check_link(data: &[u8]) -> Vec<Violation> {
    let img = match Image::parse(data) {
        Ok(img) => img,
        Err(e) => return vec![Violation::Malformed(e.to_string())],
    };
    if img.optional_magic != pe::PE32_PLUS_MAGIC {
        return vec![Violation::NotPe32Plus {
            magic: img.optional_magic,
        }];
    }
    let mut v = Vec::new();
    let computed = pe::checksum(data, img.optional_header_offset + pe::OPT_CHECKSUM);
    if img.checksum == 0 {
        v.push(Violation::ChecksumMissing);
    } else if img.checksum != computed {
        v.push(Violation::ChecksumMismatch {
            stored: img.checksum,
            computed,
        });
    }
    if img.dll_characteristics & pe::IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY == 0 {
        v.push(Violation::ForceIntegrityMissing);
    }
    v
}

/// The Authenticode signature of the image at `path`, verified against `trusted` (a PEM
/// certificate, the only root accepted).
pub fn check_signature(
    path: &Path,
    trusted: &Path,
    tools: Option<&authenticode::Tools>,
) -> Vec<Violation> {
    let data = match read_image(path) {
        Ok(d) => d,
        Err(v) => return v,
    };
    match Image::parse(&data) {
        Ok(img) if img.directory(pe::DIR_SECURITY) == (0, 0) => return vec![Violation::NotSigned],
        Ok(_) => {}
        Err(e) => return vec![Violation::Malformed(e.to_string())],
    }
    let Some(tools) = tools else {
        return vec![Violation::SignatureCheckUnavailable(format!(
            "osslsigncode not found; install {}",
            authenticode::OSSLSIGNCODE_PACKAGE
        ))];
    };
    match authenticode::verify(tools, path, trusted) {
        Ok(_) => Vec::new(),
        Err(report) => {
            // Keep the lines that say why.
            let why: Vec<&str> = report
                .lines()
                .filter(|l| {
                    let l = l.to_ascii_lowercase();
                    l.contains("mismatch")
                        || l.contains("fail")
                        || l.contains("error")
                        || l.contains("unable")
                })
                .take(6)
                .collect();
            vec![Violation::SignatureRejected(if why.is_empty() {
                report
            } else {
                why.join("; ")
            })]
        }
    }
}

/// The bytes of the image file at `path`, or the one violation saying why it cannot be read.
fn read_image(path: &Path) -> Result<Vec<u8>, Vec<Violation>> {
    std::fs::read(path).map_err(|e| vec![Violation::Malformed(format!("{}: {e}", path.display()))])
}

/// Everything `cargo xtask package` promises about the packaged image: the structure checks of
/// `policy`, [`check_link`], and [`check_signature`] against `trusted`.
pub fn check_package_image(
    path: &Path,
    policy: &Policy,
    trusted: &Path,
    tools: Option<&authenticode::Tools>,
) -> Vec<Violation> {
    let data = match read_image(path) {
        Ok(d) => d,
        Err(v) => return v,
    };
    let mut v = check_structure(&data, policy);
    v.extend(check_link(&data));
    v.extend(check_signature(path, trusted, tools));
    v
}

/// Instruction scan of the image at `path` (which must hold the same bytes that were checked).
pub fn check_instructions(
    path: &Path,
    disassembler: Option<&disasm::Disassembler>,
) -> Vec<Violation> {
    let Some(d) = disassembler else {
        return vec![Violation::DisassemblyUnavailable(format!(
            "no objdump found; install {}",
            disasm::OBJDUMP_PACKAGE
        ))];
    };
    match d.scan(path) {
        Ok((0, _)) => vec![Violation::DisassemblyUnavailable(format!(
            "{} decoded no instructions",
            d.path.display()
        ))],
        Ok((_, findings)) => findings.into_iter().map(Violation::Instruction).collect(),
        Err(e) => vec![Violation::DisassemblyUnavailable(e)],
    }
}

/// All checks on the image file at `path`.
pub fn check(
    path: &Path,
    policy: &Policy,
    disassembler: Option<&disasm::Disassembler>,
) -> Vec<Violation> {
    let data = match read_image(path) {
        Ok(d) => d,
        Err(v) => return v,
    };
    let mut v = check_structure(&data, policy);
    if policy.scan && !matches!(v.first(), Some(Violation::Malformed(_))) {
        v.extend(check_instructions(path, disassembler));
    }
    v
}
