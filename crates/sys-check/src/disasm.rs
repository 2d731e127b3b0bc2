//! Scan the executable sections of a driver image for instructions a Rust WDM driver must never
//! contain: privileged (ring-0-only system) instructions, and `gs:`/`fs:` segment accesses
//! (inline KPCR/TEB reads). The driver reaches the kernel only through ntoskrnl exports, which is
//! also what lets ntsim run it in user mode; any of these would either fault under ntsim or show
//! that code bypasses the import surface the project audits.
//!
//! Disassembly is delegated to an objdump (`x86_64-w64-mingw32-objdump` from the Debian package
//! `mingw-w64`, else an `llvm-objdump`), in Intel syntax, and its text is parsed here.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Package that provides the preferred disassembler.
pub const OBJDUMP_PACKAGE: &str = "mingw-w64 (binutils-mingw-w64-x86-64)";

/// Mnemonics that only ring 0 may execute (or that a driver has no business executing).
pub const PRIVILEGED_MNEMONICS: &[&str] = &[
    "cli", "sti", "hlt", "in", "ins", "insb", "insw", "insd", "out", "outs", "outsb", "outsw",
    "outsd", "rdmsr", "wrmsr", "rdpmc", "invlpg", "invlpga", "invpcid", "invd", "wbinvd",
    "wbnoinvd", "lgdt", "lidt", "lldt", "ltr", "lmsw", "clts", "swapgs", "sysret", "sysretq",
    "sysexit", "sysexitq", "xsetbv", "wrgsbase", "wrfsbase", "rdgsbase", "rdfsbase", "vmcall",
    "vmlaunch", "vmresume", "vmxon", "vmxoff", "vmptrld", "vmptrst", "vmread", "vmwrite",
    "vmclear", "invept", "invvpid", "vmrun", "vmload", "vmsave", "vmmcall", "stgi", "clgi",
    "skinit", "monitor", "mwait", "encls", "wrpkru",
];

/// Instruction prefixes objdump prints before the mnemonic.
const PREFIXES: &[&str] = &[
    "lock", "rep", "repe", "repz", "repne", "repnz", "data16", "data32", "addr32", "addr16", "cs",
    "ds", "es", "ss", "notrack", "bnd", "xacquire", "xrelease", "rex", "rex.w", "rex.b", "rex.x",
    "rex.r", "rex.wb", "rex.wx", "rex.wr", "rex.rb", "rex.rx", "rex.xb", "rex.wrb", "rex.wxb",
    "rex.rxb", "rex.wrx", "rex.wrxb",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Privileged { address: u64, text: String },
    SegmentAccess { address: u64, text: String },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Privileged { address, text } => {
                write!(f, "privileged instruction at {address:#x}: {text}")
            }
            Finding::SegmentAccess { address, text } => {
                write!(f, "gs:/fs: segment access at {address:#x}: {text}")
            }
        }
    }
}

/// Classify one disassembled instruction (Intel syntax, no raw bytes).
pub fn classify(address: u64, text: &str) -> Option<Finding> {
    let text = text
        .split('#')
        .next()
        .unwrap_or("")
        .split("//")
        .next()
        .unwrap_or("");
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let mut tokens = lower.split_whitespace();
    let mut mnemonic = "";
    for t in tokens.by_ref() {
        if t == "fs" || t == "gs" {
            // A bare segment-override prefix.
            return Some(Finding::SegmentAccess {
                address,
                text: text.to_string(),
            });
        }
        if PREFIXES.contains(&t) {
            continue;
        }
        mnemonic = t;
        break;
    }
    let operands: String = tokens.collect::<Vec<_>>().join(" ");
    if operands.contains("gs:") || operands.contains("fs:") {
        return Some(Finding::SegmentAccess {
            address,
            text: text.to_string(),
        });
    }
    if PRIVILEGED_MNEMONICS.contains(&mnemonic) {
        return Some(Finding::Privileged {
            address,
            text: text.to_string(),
        });
    }
    // mov to/from control or debug registers.
    if mnemonic == "mov" {
        let is_cr_dr = operands.split([',', ' ']).map(str::trim).any(|op| {
            (op.starts_with("cr")
                || op.starts_with("dr")
                || op.starts_with("%cr")
                || op.starts_with("%dr"))
                && op.trim_start_matches('%')[2..]
                    .chars()
                    .all(|c| c.is_ascii_digit())
                && op.trim_start_matches('%').len() > 2
        });
        if is_cr_dr {
            return Some(Finding::Privileged {
                address,
                text: text.to_string(),
            });
        }
    }
    None
}

/// Parse objdump `-d --no-show-raw-insn -M intel` output.
pub fn scan_objdump_output(out: &str) -> (usize, Vec<Finding>) {
    let mut count = 0;
    let mut findings = Vec::new();
    for line in out.lines() {
        let Some((addr, rest)) = line.split_once(':') else {
            continue;
        };
        let addr = addr.trim();
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit()) || !line.starts_with(' ')
        {
            continue;
        }
        let Ok(address) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        count += 1;
        if let Some(f) = classify(address, rest) {
            findings.push(f);
        }
    }
    (count, findings)
}

#[derive(Debug, Clone)]
pub struct Disassembler {
    pub path: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Disassembler {
    /// `x86_64-w64-mingw32-objdump`, else `llvm-objdump` on PATH, else the newest
    /// `/usr/lib/llvm-*/bin/llvm-objdump`.
    pub fn locate() -> Option<Disassembler> {
        if let Some(p) = on_path("x86_64-w64-mingw32-objdump") {
            return Some(Disassembler { path: p });
        }
        if let Some(p) = on_path("llvm-objdump") {
            return Some(Disassembler { path: p });
        }
        let mut llvm: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin/llvm-objdump"))
            .filter(|p| p.is_file())
            .collect();
        llvm.sort_by_key(|p| {
            p.to_string_lossy()
                .split("llvm-")
                .nth(1)
                .and_then(|v| v.split('/').next())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
        llvm.pop().map(|path| Disassembler { path })
    }

    /// Disassemble every executable section; returns (instruction count, findings).
    pub fn scan(&self, image: &Path) -> Result<(usize, Vec<Finding>), String> {
        let out = Command::new(&self.path)
            .args(["-d", "--no-show-raw-insn", "-M", "intel"])
            .arg(image)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.path.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed on {}: {}",
                self.path.display(),
                image.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(scan_objdump_output(&String::from_utf8_lossy(&out.stdout)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_privileged_and_segment_instructions() {
        let bad = [
            "cli",
            "sti",
            "hlt",
            "in     al,dx",
            "out    dx,al",
            "rdmsr",
            "wrmsr",
            "mov    cr3,rax",
            "mov    rax,cr0",
            "mov    dr7,rax",
            "invlpg BYTE PTR [rax]",
            "lgdt   [rax]",
            "swapgs",
            "rep insb BYTE PTR es:[rdi],dx",
            "mov    rax,QWORD PTR gs:0x188",
            "mov    rax,qword ptr gs:[0x188]",
            "mov    eax,DWORD PTR fs:0x30",
            "gs",
        ];
        for b in bad {
            assert!(classify(0x1000, b).is_some(), "not flagged: {b}");
        }
        let good = [
            "mov    rax,QWORD PTR [rip+0x10bc]        # 0x1800020d0",
            "cs nop WORD PTR [rax+rax*1+0x0]",
            "data16 cs nop WORD PTR [rax+rax*1+0x0]",
            "int3",
            "ud2",
            "lock cmpxchg QWORD PTR [rcx],rdx",
            "mov    rcx,QWORD PTR [rcx+0x40]",
            "call   QWORD PTR [rip+0x10bc]",
            "inc    rax",
            "movabs rax,0x123",
            "mov    cr,rax",
            "pause",
            "rdtsc",
        ];
        for g in good {
            assert_eq!(classify(0x1000, g), None, "false positive: {g}");
        }
    }

    #[test]
    fn parses_objdump_lines() {
        let out = "\nfoo.sys:     file format pei-x86-64\n\nDisassembly of section .text:\n\n\
                   0000000180001000 <.text>:\n   180001000:\tsub    rsp,0x38\n   180001004:\tcli\n   \
                   180001005:\tmov    rax,QWORD PTR gs:0x188\n";
        let (n, f) = scan_objdump_output(out);
        assert_eq!(n, 3);
        assert_eq!(
            f,
            vec![
                Finding::Privileged {
                    address: 0x180001004,
                    text: "cli".into()
                },
                Finding::SegmentAccess {
                    address: 0x180001005,
                    text: "mov    rax,QWORD PTR gs:0x188".into()
                },
            ]
        );
    }
}
