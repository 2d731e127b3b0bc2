//! Classify the instruction a driver faulted on (pure: bytes at RIP + registers → [`Insn`]).
//!
//! Kernel code runs in user mode here, so the instructions Windows lets kernel code execute but
//! the CPU refuses at CPL 3 — `mov reg, cr8` / `mov cr8, reg` (the x64 IRQL), `cli`/`sti`,
//! `rdmsr`/`wrmsr`, `int 2Ch` / `int 29h` — and loads from KUSER_SHARED_DATA (a kernel address)
//! fault. The fault handler decodes them with this module and emulates them
//! (`ke::trap`). The decoder is a small hand-written x64 decoder for exactly those forms:
//! legacy/REX prefixes, `0F` two-byte opcodes, ModRM/SIB/displacement and RIP-relative
//! addressing; everything else is [`Insn::Other`].

/// Register access the decoder needs (x64 encoding order: RAX=0 … R15=15).
pub trait Regs {
    fn gpr(&self, n: u8) -> u64;
}

impl Regs for nt_abi::CONTEXT {
    fn gpr(&self, n: u8) -> u64 {
        nt_abi::CONTEXT::gpr(self, n)
    }
}

/// How a load extends its value into the destination register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extend {
    /// `mov`: 8/16-bit destinations merge, 32-bit zero-extends to 64, 64-bit replaces.
    Mov,
    /// `movzx`: zero-extend to the destination width.
    Zero,
    /// `movsx` / `movsxd`: sign-extend to the destination width.
    Sign,
}

/// A general-purpose destination register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dst {
    /// Register number (0–15); for `high_byte`, 0–3 mean AH, CH, DH, BH.
    pub reg: u8,
    /// Destination width in bytes (1, 2, 4, 8).
    pub width: u8,
    /// AH/CH/DH/BH (an 8-bit register 4–7 without a REX prefix).
    pub high_byte: bool,
}

/// A decoded instruction of interest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insn {
    /// `mov r64, cr8` (`44 0F 20 /r` with REX.R): read the IRQL.
    ReadCr8 {
        reg: u8,
        len: usize,
    },
    /// `mov cr8, r64` (`44 0F 22 /r`): set the IRQL.
    WriteCr8 {
        reg: u8,
        len: usize,
    },
    /// `mov` to/from another control register (CR0, CR2, CR3, CR4): `cr` is its number.
    OtherCr {
        cr: u8,
        write: bool,
        len: usize,
    },
    Cli {
        len: usize,
    },
    Sti {
        len: usize,
    },
    Rdmsr {
        len: usize,
    },
    Wrmsr {
        len: usize,
    },
    /// `int imm8` (`CD ib`).
    Int {
        vector: u8,
        len: usize,
    },
    /// `int3` (`CC`).
    Int3 {
        len: usize,
    },
    Hlt {
        len: usize,
    },
    /// Port I/O (`in`/`out`/`ins`/`outs`), `wbinvd`, `invd`, `invlpg`, `lgdt`/`lidt`, `swapgs`…:
    /// privileged instructions ntsim does not model.
    Privileged {
        what: &'static str,
        len: usize,
    },
    /// A load from memory into a general-purpose register: `mov r, m` (`8A`/`8B`),
    /// `movzx`/`movsx` (`0F B6/B7/BE/BF`), `movsxd` (`63`), `mov rAX, moffs` (`A0`/`A1`).
    Load {
        dst: Dst,
        /// Effective address (segment prefixes other than none are reported in `seg`).
        addr: u64,
        /// Bytes read.
        size: u8,
        ext: Extend,
        /// `0x64` (FS) or `0x65` (GS) if a segment override was present.
        seg: Option<u8>,
        len: usize,
    },
    /// A memory access the decoder can describe but ntsim does not emulate: `addr` is its
    /// effective address.
    MemOther {
        addr: u64,
        seg: Option<u8>,
        len: usize,
    },
    /// Anything else (or undecodable bytes).
    Other,
}

struct Prefixes {
    rex: u8,
    opsize: bool,
    seg: Option<u8>,
    len: usize,
}

fn prefixes(b: &[u8]) -> Option<Prefixes> {
    let mut p = Prefixes {
        rex: 0,
        opsize: false,
        seg: None,
        len: 0,
    };
    loop {
        let x = *b.get(p.len)?;
        match x {
            0x66 => p.opsize = true,
            0x64 | 0x65 => p.seg = Some(x),
            0x26 | 0x2E | 0x36 | 0x3E | 0x67 | 0xF0 | 0xF2 | 0xF3 => {}
            0x40..=0x4F => {
                p.rex = x;
                p.len += 1;
                return Some(p);
            }
            _ => return Some(p),
        }
        p.len += 1;
        if p.len > 14 {
            return None;
        }
    }
}

/// ModRM memory operand: (effective address, bytes consumed after the ModRM byte's start).
/// `None` for register operands (mod = 3).
fn modrm_mem(
    b: &[u8],
    at: usize,
    rex: u8,
    regs: &impl Regs,
    rip: u64,
    imm_len: usize,
) -> Option<(u64, usize, u8)> {
    let modrm = *b.get(at)?;
    let md = modrm >> 6;
    let reg = ((modrm >> 3) & 7) | if rex & 4 != 0 { 8 } else { 0 };
    let rm = modrm & 7;
    if md == 3 {
        return None;
    }
    let mut n = 1;
    let mut addr: u64;
    if rm == 4 {
        let sib = *b.get(at + 1)?;
        n += 1;
        let scale = 1u64 << (sib >> 6);
        let idx = ((sib >> 3) & 7) | if rex & 2 != 0 { 8 } else { 0 };
        let base = (sib & 7) | if rex & 1 != 0 { 8 } else { 0 };
        addr = if idx == 4 {
            0
        } else {
            regs.gpr(idx).wrapping_mul(scale)
        };
        if (sib & 7) == 5 && md == 0 {
            let d = i32::from_le_bytes(b.get(at + n..at + n + 4)?.try_into().ok()?);
            n += 4;
            addr = addr.wrapping_add(d as i64 as u64);
        } else {
            addr = addr.wrapping_add(regs.gpr(base));
        }
    } else if rm == 5 && md == 0 {
        let d = i32::from_le_bytes(b.get(at + n..at + n + 4)?.try_into().ok()?);
        n += 4;
        // RIP-relative: relative to the end of the instruction.
        let end = rip
            .wrapping_add(at as u64)
            .wrapping_add(n as u64)
            .wrapping_add(imm_len as u64);
        return Some((end.wrapping_add(d as i64 as u64), n, reg));
    } else {
        let base = rm | if rex & 1 != 0 { 8 } else { 0 };
        addr = regs.gpr(base);
    }
    match md {
        1 => {
            let d = *b.get(at + n)? as i8;
            n += 1;
            addr = addr.wrapping_add(d as i64 as u64);
        }
        2 => {
            let d = i32::from_le_bytes(b.get(at + n..at + n + 4)?.try_into().ok()?);
            n += 4;
            addr = addr.wrapping_add(d as i64 as u64);
        }
        _ => {}
    }
    Some((addr, n, reg))
}

fn gpr_dst(reg: u8, width: u8, rex: u8) -> Dst {
    Dst {
        reg,
        width,
        high_byte: width == 1 && rex == 0 && (4..8).contains(&reg),
    }
}

/// Decode the instruction at `rip` (`b` holds the bytes there, at most 15 are looked at).
pub fn decode(b: &[u8], regs: &impl Regs, rip: u64) -> Insn {
    decode_inner(b, regs, rip).unwrap_or(Insn::Other)
}

fn decode_inner(b: &[u8], regs: &impl Regs, rip: u64) -> Option<Insn> {
    let p = prefixes(b)?;
    let i = p.len;
    let op = *b.get(i)?;
    let w = p.rex & 8 != 0;
    let opw: u8 = if w {
        8
    } else if p.opsize {
        2
    } else {
        4
    };
    let one = |len: usize| Some(i + len);
    match op {
        0xFA => return Some(Insn::Cli { len: one(1)? }),
        0xFB => return Some(Insn::Sti { len: one(1)? }),
        0xF4 => return Some(Insn::Hlt { len: one(1)? }),
        0xCC => return Some(Insn::Int3 { len: one(1)? }),
        0xCD => {
            let v = *b.get(i + 1)?;
            return Some(Insn::Int {
                vector: v,
                len: i + 2,
            });
        }
        0xE4..=0xE7 => {
            return Some(Insn::Privileged {
                what: "in/out (port I/O)",
                len: i + 2,
            });
        }
        0xEC..=0xEF | 0x6C..=0x6F => {
            return Some(Insn::Privileged {
                what: "in/out (port I/O)",
                len: i + 1,
            });
        }
        0x8A | 0x8B | 0x63 => {
            let (addr, n, reg) = modrm_mem(b, i + 1, p.rex, regs, rip, 0)?;
            let (width, size, ext) = match op {
                0x8A => (1, 1, Extend::Mov),
                0x8B => (opw, opw, Extend::Mov),
                _ => (opw, 4, if w { Extend::Sign } else { Extend::Mov }),
            };
            return Some(Insn::Load {
                dst: gpr_dst(reg, width, p.rex),
                addr,
                size,
                ext,
                seg: p.seg,
                len: i + 1 + n,
            });
        }
        0xA0 | 0xA1 => {
            let a = u64::from_le_bytes(b.get(i + 1..i + 9)?.try_into().ok()?);
            let width = if op == 0xA0 { 1 } else { opw };
            return Some(Insn::Load {
                dst: gpr_dst(0, width, p.rex),
                addr: a,
                size: width,
                ext: Extend::Mov,
                seg: p.seg,
                len: i + 9,
            });
        }
        0x0F => {}
        _ => {
            // Some other memory-operand instruction (ALU ops with a ModRM memory operand):
            // describe its address so the caller can say what was touched.
            let modrm_ops = matches!(op, 0x00..=0x03 | 0x08..=0x0B | 0x10..=0x13 | 0x18..=0x1B
                | 0x20..=0x23 | 0x28..=0x2B | 0x30..=0x33 | 0x38..=0x3B | 0x84..=0x89 | 0xF6 | 0xF7 | 0xFE | 0xFF);
            if modrm_ops && let Some((addr, n, _)) = modrm_mem(b, i + 1, p.rex, regs, rip, 0) {
                return Some(Insn::MemOther {
                    addr,
                    seg: p.seg,
                    len: i + 1 + n,
                });
            }
            return Some(Insn::Other);
        }
    }
    // Two-byte opcodes.
    let op2 = *b.get(i + 1)?;
    match op2 {
        0x20 | 0x22 => {
            let modrm = *b.get(i + 2)?;
            let cr = ((modrm >> 3) & 7) | if p.rex & 4 != 0 { 8 } else { 0 };
            let reg = (modrm & 7) | if p.rex & 1 != 0 { 8 } else { 0 };
            let len = i + 3;
            let write = op2 == 0x22;
            return Some(match (cr, write) {
                (8, false) => Insn::ReadCr8 { reg, len },
                (8, true) => Insn::WriteCr8 { reg, len },
                _ => Insn::OtherCr { cr, write, len },
            });
        }
        0x21 | 0x23 => {
            return Some(Insn::Privileged {
                what: "mov to/from a debug register",
                len: i + 3,
            });
        }
        0x32 => return Some(Insn::Rdmsr { len: i + 2 }),
        0x30 => return Some(Insn::Wrmsr { len: i + 2 }),
        0x08 => {
            return Some(Insn::Privileged {
                what: "invd",
                len: i + 2,
            });
        }
        0x09 => {
            return Some(Insn::Privileged {
                what: "wbinvd",
                len: i + 2,
            });
        }
        0x06 => {
            return Some(Insn::Privileged {
                what: "clts",
                len: i + 2,
            });
        }
        0x01 => {
            let modrm = *b.get(i + 2)?;
            let what = match modrm {
                0xF8 => "swapgs",
                0xF9 => return Some(Insn::Other), // rdtscp is unprivileged
                _ => match (modrm >> 3) & 7 {
                    2 => "lgdt",
                    3 => "lidt",
                    6 => "lmsw",
                    7 => "invlpg",
                    _ => return Some(Insn::Other),
                },
            };
            let len = match modrm_mem(b, i + 2, p.rex, regs, rip, 0) {
                Some((_, n, _)) => i + 2 + n,
                None => i + 3,
            };
            return Some(Insn::Privileged { what, len });
        }
        0xB6 | 0xB7 | 0xBE | 0xBF => {
            let (addr, n, reg) = modrm_mem(b, i + 2, p.rex, regs, rip, 0)?;
            let size = if op2 & 1 == 0 { 1 } else { 2 };
            let ext = if op2 >= 0xBE {
                Extend::Sign
            } else {
                Extend::Zero
            };
            return Some(Insn::Load {
                dst: gpr_dst(reg, opw, p.rex),
                addr,
                size,
                ext,
                seg: p.seg,
                len: i + 2 + n,
            });
        }
        _ => {}
    }
    Some(Insn::Other)
}

/// Apply a load's value to the destination register's old value, as the CPU would.
pub fn apply_load(old: u64, dst: Dst, value: u64, size: u8, ext: Extend) -> u64 {
    let bits = size as u32 * 8;
    let raw = if bits >= 64 {
        value
    } else {
        value & ((1u64 << bits) - 1)
    };
    let v = match ext {
        Extend::Sign if bits < 64 => (((raw << (64 - bits)) as i64) >> (64 - bits)) as u64,
        _ => raw,
    };
    match dst.width {
        8 => v,
        4 => v & 0xFFFF_FFFF,
        2 => (old & !0xFFFF) | (v & 0xFFFF),
        _ if dst.high_byte => (old & !0xFF00) | ((v & 0xFF) << 8),
        _ => (old & !0xFF) | (v & 0xFF),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct R([u64; 16]);
    impl Regs for R {
        fn gpr(&self, n: u8) -> u64 {
            self.0[n as usize & 15]
        }
    }

    #[test]
    fn decodes_the_cr8_forms_clang_emits() {
        let r = R([0; 16]);
        assert_eq!(
            decode(&[0x44, 0x0F, 0x20, 0xC0], &r, 0),
            Insn::ReadCr8 { reg: 0, len: 4 }
        );
        assert_eq!(
            decode(&[0x44, 0x0F, 0x22, 0xC1], &r, 0),
            Insn::WriteCr8 { reg: 1, len: 4 }
        );
        assert_eq!(
            decode(&[0x45, 0x0F, 0x22, 0xC0], &r, 0),
            Insn::WriteCr8 { reg: 8, len: 4 }
        );
        assert_eq!(
            decode(&[0x0F, 0x20, 0xD8], &r, 0),
            Insn::OtherCr {
                cr: 3,
                write: false,
                len: 3
            }
        );
    }

    #[test]
    fn decodes_kuser_loads() {
        let mut regs = [0u64; 16];
        regs[0] = 0xFFFF_F780_0000_0014;
        regs[1] = 0xFFFF_F780_0000_0000;
        let r = R(regs);
        // mov rax, [rax]
        assert_eq!(
            decode(&[0x48, 0x8B, 0x00], &r, 0),
            Insn::Load {
                dst: Dst {
                    reg: 0,
                    width: 8,
                    high_byte: false
                },
                addr: 0xFFFF_F780_0000_0014,
                size: 8,
                ext: Extend::Mov,
                seg: None,
                len: 3
            }
        );
        // mov edx, [rcx+0x320]
        match decode(&[0x8B, 0x91, 0x20, 0x03, 0, 0], &r, 0) {
            Insn::Load { dst, addr, len, .. } => {
                assert_eq!(
                    (dst.reg, dst.width, addr, len),
                    (2, 4, 0xFFFF_F780_0000_0320, 6)
                );
            }
            other => panic!("{other:?}"),
        }
        // movabs rax, [moffs64]
        let mut b = vec![0x48, 0xA1];
        b.extend_from_slice(&0xFFFF_F780_0000_0008u64.to_le_bytes());
        match decode(&b, &r, 0) {
            Insn::Load {
                addr, size, len, ..
            } => assert_eq!((addr, size, len), (0xFFFF_F780_0000_0008, 8, 10)),
            other => panic!("{other:?}"),
        }
        // movzx eax, word ptr [rcx+rax*1+8] (SIB) with rax = 0
        let r0 = R({
            let mut x = [0u64; 16];
            x[1] = 0x1000;
            x
        });
        match decode(&[0x0F, 0xB7, 0x44, 0x01, 0x08], &r0, 0) {
            Insn::Load {
                addr,
                size,
                ext,
                len,
                ..
            } => {
                assert_eq!((addr, size, ext, len), (0x1008, 2, Extend::Zero, 5))
            }
            other => panic!("{other:?}"),
        }
        // RIP-relative: mov eax, [rip+0x10] at rip 0x1000, 6 bytes long
        match decode(&[0x8B, 0x05, 0x10, 0, 0, 0], &r, 0x1000) {
            Insn::Load { addr, .. } => assert_eq!(addr, 0x1000 + 6 + 0x10),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decodes_the_other_privileged_forms() {
        let r = R([0; 16]);
        assert_eq!(decode(&[0xFA], &r, 0), Insn::Cli { len: 1 });
        assert_eq!(decode(&[0xFB], &r, 0), Insn::Sti { len: 1 });
        assert_eq!(decode(&[0x0F, 0x32], &r, 0), Insn::Rdmsr { len: 2 });
        assert_eq!(
            decode(&[0xCD, 0x29], &r, 0),
            Insn::Int {
                vector: 0x29,
                len: 2
            }
        );
        assert_eq!(
            decode(&[0xCD, 0x2C], &r, 0),
            Insn::Int {
                vector: 0x2C,
                len: 2
            }
        );
        assert!(matches!(decode(&[0xEE], &r, 0), Insn::Privileged { .. }));
        assert_eq!(decode(&[0x90], &r, 0), Insn::Other);
        assert_eq!(decode(&[], &r, 0), Insn::Other);
    }

    #[test]
    fn loads_extend_like_the_cpu() {
        let d = |reg, width, high_byte| Dst {
            reg,
            width,
            high_byte,
        };
        assert_eq!(
            apply_load(!0, d(0, 4, false), 0x1234_5678_9ABC, 4, Extend::Mov),
            0x5678_9ABC
        );
        assert_eq!(
            apply_load(!0, d(0, 2, false), 0xBEEF, 2, Extend::Mov),
            0xFFFF_FFFF_FFFF_BEEF
        );
        assert_eq!(apply_load(0, d(0, 1, true), 0x7F, 1, Extend::Mov), 0x7F00);
        assert_eq!(
            apply_load(0, d(0, 8, false), 0x80, 1, Extend::Sign),
            0xFFFF_FFFF_FFFF_FF80
        );
        assert_eq!(apply_load(!0, d(0, 4, false), 0x80, 1, Extend::Zero), 0x80);
    }
}
