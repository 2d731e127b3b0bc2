//! The x64 virtual unwinder (`RtlLookupFunctionEntry` / `RtlVirtualUnwind`), pure: given a
//! function's `.pdata` entry and its `.xdata` unwind codes, compute the caller's context from a
//! context inside the function.
//!
//! Follows Microsoft's "x64 exception handling" reference
//! (<https://learn.microsoft.com/cpp/build/exception-handling-x64>: UNWIND_INFO, UNWIND_CODE operations,
//! chained unwind info, "unwinding in epilogs"): codes whose prolog offset has not been reached
//! yet are skipped; `UWOP_SET_FPREG` makes the frame register the establisher frame; a
//! `ControlPc` inside an epilog is unwound by emulating the rest of the epilog (`add rsp`/
//! `lea rsp`, `pop`s, `ret`) instead of the codes. Version 2's `UWOP_EPILOG` descriptors are
//! skipped (their epilogs are recognised by the instruction scan instead).
use nt_abi::uwop;
use nt_abi::*;

/// Memory the unwinder reads: image bytes (`.pdata`, `.xdata`, code) and the stack. Every read
/// is checked; an address outside what the implementation allows is `None`.
pub trait Mem {
    fn read(&self, addr: u64, out: &mut [u8]) -> Option<()>;
    fn u8(&self, addr: u64) -> Option<u8> {
        let mut b = [0u8; 1];
        self.read(addr, &mut b)?;
        Some(b[0])
    }
    fn u16(&self, addr: u64) -> Option<u16> {
        let mut b = [0u8; 2];
        self.read(addr, &mut b)?;
        Some(u16::from_le_bytes(b))
    }
    fn u32(&self, addr: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Some(u32::from_le_bytes(b))
    }
    fn u64(&self, addr: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Some(u64::from_le_bytes(b))
    }
}

/// Why a frame could not be unwound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnwindError {
    /// Unwind data outside the image or malformed.
    BadUnwindData,
    /// A stack read outside the thread's stack.
    BadStack,
}

/// A language handler found while unwinding a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handler {
    /// Absolute address of the handler (e.g. the image's `__C_specific_handler` thunk).
    pub routine: u64,
    /// Absolute address of its data (the scope table for `__C_specific_handler`).
    pub data: u64,
}

/// Result of unwinding one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unwound {
    pub handler: Option<Handler>,
    pub establisher_frame: u64,
}

/// Find the `.pdata` entry covering `pc` (an image-relative binary search).
pub fn lookup_function_entry(
    mem: &impl Mem,
    image_base: u64,
    pdata_rva: u32,
    pdata_size: u32,
    pc: u64,
) -> Option<RUNTIME_FUNCTION> {
    let rva = pc.checked_sub(image_base)? as u32;
    let n = pdata_size as u64 / 12;
    let (mut lo, mut hi) = (0u64, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        let at = image_base + pdata_rva as u64 + mid * 12;
        let begin = mem.u32(at)?;
        let end = mem.u32(at + 4)?;
        if rva < begin {
            hi = mid;
        } else if rva >= end {
            lo = mid + 1;
        } else {
            let mut rf = RUNTIME_FUNCTION {
                BeginAddress: begin,
                EndAddress: end,
                UnwindData: mem.u32(at + 8)?,
            };
            // RUNTIME_FUNCTION_INDIRECT: the entry points at the real one.
            if rf.UnwindData & 1 != 0 {
                let ind = image_base + (rf.UnwindData & !1) as u64;
                rf = RUNTIME_FUNCTION {
                    BeginAddress: mem.u32(ind)?,
                    EndAddress: mem.u32(ind + 4)?,
                    UnwindData: mem.u32(ind + 8)?,
                };
            }
            return Some(rf);
        }
    }
    None
}

fn set_xmm(ctx: &mut CONTEXT, n: u8, v: M128A) {
    ctx.FltSave.XmmRegisters[(n & 15) as usize] = v;
}

/// If `pc` is in an epilog, emulate the rest of it on `ctx` and return true.
fn unwind_epilog(mem: &impl Mem, pc: u64, ctx: &mut CONTEXT, frame_reg: u8) -> Option<bool> {
    let mut code = [0u8; 64];
    for (i, b) in code.iter_mut().enumerate() {
        match mem.u8(pc + i as u64) {
            Some(x) => *b = x,
            None => break,
        }
    }
    // First pass: recognise; second pass: apply.
    let scan = |apply: bool, ctx: &mut CONTEXT| -> Option<bool> {
        let mut i = 0usize;
        let mut rsp = ctx.Rsp;
        // Optional stack deallocation.
        if code[i] & 0xF8 == 0x48 && code[i + 1] == 0x83 && code[i + 2] == 0xC4 {
            rsp = rsp.wrapping_add(code[i + 3] as u64);
            i += 4;
        } else if code[i] & 0xF8 == 0x48 && code[i + 1] == 0x81 && code[i + 2] == 0xC4 {
            rsp = rsp.wrapping_add(u32::from_le_bytes(code[i + 3..i + 7].try_into().ok()?) as u64);
            i += 7;
        } else if code[i] & 0xF8 == 0x48 && code[i + 1] == 0x8D && frame_reg != 0 {
            // lea rsp, [frame + disp8/disp32]
            let modrm = code[i + 2];
            let base = (modrm & 7) | if code[i] & 1 != 0 { 8 } else { 0 };
            if (modrm >> 3) & 7 != 4 || base != frame_reg {
                return Some(false);
            }
            match modrm >> 6 {
                1 => {
                    rsp = ctx.gpr(base).wrapping_add(code[i + 3] as i8 as i64 as u64);
                    i += 4;
                }
                2 => {
                    let d = i32::from_le_bytes(code[i + 3..i + 7].try_into().ok()?);
                    rsp = ctx.gpr(base).wrapping_add(d as i64 as u64);
                    i += 7;
                }
                _ => return Some(false),
            }
        }
        // pops
        loop {
            if i + 8 >= code.len() {
                return Some(false);
            }
            let (rex, op) = if code[i] & 0xF0 == 0x40 {
                (code[i], code[i + 1])
            } else {
                (0, code[i])
            };
            if (0x58..=0x5F).contains(&op) {
                let reg = (op - 0x58) | if rex & 1 != 0 { 8 } else { 0 };
                if apply {
                    let v = mem.u64(rsp)?;
                    ctx.set_gpr(reg, v);
                }
                rsp = rsp.wrapping_add(8);
                i += if rex != 0 { 2 } else { 1 };
                continue;
            }
            break;
        }
        if i + 3 >= code.len() {
            return Some(false);
        }
        // ret, or a tail jump (jmp rel32 / jmp [rip+x] / rex.w jmp [rip+x]).
        let is_end = code[i] == 0xC3
            || code[i] == 0xC2
            || code[i] == 0xE9
            || (code[i] == 0xFF && code[i + 1] == 0x25)
            || (code[i] == 0x48 && code[i + 1] == 0xFF && code[i + 2] == 0x25);
        if !is_end {
            return Some(false);
        }
        if apply {
            ctx.Rip = mem.u64(rsp)?;
            ctx.Rsp = rsp.wrapping_add(8);
        }
        Some(true)
    };
    let mut probe = *ctx;
    if !scan(false, &mut probe)? {
        return Some(false);
    }
    scan(true, ctx)
}

/// Unwind one frame: `ctx` is the context at `control_pc` inside the function described by
/// `rf`; on return it is the caller's context. `handler_type` is
/// [`UNW_FLAG_EHANDLER`] (looking for an exception handler) or [`UNW_FLAG_UHANDLER`]
/// (unwinding); the handler is reported only when the function has one of that type and
/// `control_pc` is past the prolog and not in an epilog.
pub fn virtual_unwind(
    mem: &impl Mem,
    handler_type: u8,
    image_base: u64,
    control_pc: u64,
    rf: &RUNTIME_FUNCTION,
    ctx: &mut CONTEXT,
) -> Result<Unwound, UnwindError> {
    let bad = UnwindError::BadUnwindData;
    let st = UnwindError::BadStack;
    let mut rf = *rf;
    let mut primary = true;
    let mut handler = None;
    let mut establisher = ctx.Rsp;
    let mut machframe = false;
    let mut chain_depth = 0;
    loop {
        let ui_at = image_base + rf.UnwindData as u64;
        let vf = mem.u8(ui_at).ok_or(bad)?;
        let version = vf & 7;
        let flags = vf >> 3;
        if version != 1 && version != 2 {
            return Err(bad);
        }
        let prolog = mem.u8(ui_at + 1).ok_or(bad)? as u64;
        let count = mem.u8(ui_at + 2).ok_or(bad)? as u64;
        let fr = mem.u8(ui_at + 3).ok_or(bad)?;
        let frame_reg = fr & 0xF;
        let frame_off = (fr >> 4) as u64 * 16;
        let fn_start = image_base + rf.BeginAddress as u64;
        // For chained entries the primary's prolog has run entirely.
        let offset = if primary {
            control_pc.wrapping_sub(fn_start)
        } else {
            u64::MAX
        };
        if primary {
            // Establisher frame: the frame register (minus its offset) once SET_FPREG ran.
            let mut fp_set = false;
            let mut k = 0;
            while k < count {
                let c = mem.u16(ui_at + 4 + k * 2).ok_or(bad)?;
                let (co, op) = ((c & 0xFF) as u64, ((c >> 8) & 0xF) as u8);
                if op == uwop::SET_FPREG && offset >= co {
                    fp_set = true;
                }
                k += slots(op, ((c >> 12) & 0xF) as u8);
            }
            if frame_reg != 0 && (fp_set || offset >= prolog) {
                establisher = ctx.gpr(frame_reg).wrapping_sub(frame_off);
            }
            // In an epilog: emulate it; no handler.
            if offset >= prolog && unwind_epilog(mem, control_pc, ctx, frame_reg) == Some(true) {
                return Ok(Unwound {
                    handler: None,
                    establisher_frame: establisher,
                });
            }
            if flags & handler_type != 0 && offset >= prolog {
                let h_at = ui_at + 4 + count.div_ceil(2) * 4;
                let rva = mem.u32(h_at).ok_or(bad)?;
                handler = Some(Handler {
                    routine: image_base + rva as u64,
                    data: h_at + 4,
                });
            }
        }
        let mut k = 0;
        while k < count {
            let c = mem.u16(ui_at + 4 + k * 2).ok_or(bad)?;
            let co = (c & 0xFF) as u64;
            let op = ((c >> 8) & 0xF) as u8;
            let info = ((c >> 12) & 0xF) as u8;
            let n = slots(op, info);
            if k + n > count && op != uwop::EPILOG {
                return Err(bad);
            }
            let arg16 = |j: u64| mem.u16(ui_at + 4 + (k + j) * 2).ok_or(bad);
            if op == uwop::EPILOG || co > offset {
                // Not executed yet (or an epilog descriptor).
                k += n;
                continue;
            }
            match op {
                uwop::PUSH_NONVOL => {
                    let v = mem.u64(ctx.Rsp).ok_or(st)?;
                    ctx.set_gpr(info, v);
                    ctx.Rsp += 8;
                }
                uwop::ALLOC_LARGE => {
                    let size = if info == 0 {
                        arg16(1)? as u64 * 8
                    } else {
                        arg16(1)? as u64 | (arg16(2)? as u64) << 16
                    };
                    ctx.Rsp = ctx.Rsp.wrapping_add(size);
                }
                uwop::ALLOC_SMALL => ctx.Rsp = ctx.Rsp.wrapping_add(info as u64 * 8 + 8),
                uwop::SET_FPREG => {
                    ctx.Rsp = ctx.gpr(frame_reg).wrapping_sub(frame_off);
                }
                uwop::SAVE_NONVOL => {
                    let a = establisher.wrapping_add(arg16(1)? as u64 * 8);
                    let v = mem.u64(a).ok_or(st)?;
                    ctx.set_gpr(info, v);
                }
                uwop::SAVE_NONVOL_FAR => {
                    let off = arg16(1)? as u64 | (arg16(2)? as u64) << 16;
                    let v = mem.u64(establisher.wrapping_add(off)).ok_or(st)?;
                    ctx.set_gpr(info, v);
                }
                uwop::SAVE_XMM128 | uwop::SAVE_XMM128_FAR => {
                    let off = if op == uwop::SAVE_XMM128 {
                        arg16(1)? as u64 * 16
                    } else {
                        arg16(1)? as u64 | (arg16(2)? as u64) << 16
                    };
                    let a = establisher.wrapping_add(off);
                    let v = M128A {
                        Low: mem.u64(a).ok_or(st)?,
                        High: mem.u64(a + 8).ok_or(st)? as i64,
                    };
                    set_xmm(ctx, info, v);
                }
                uwop::PUSH_MACHFRAME => {
                    if info == 1 {
                        ctx.Rsp += 8;
                    }
                    ctx.Rip = mem.u64(ctx.Rsp).ok_or(st)?;
                    ctx.Rsp = mem.u64(ctx.Rsp + 24).ok_or(st)?;
                    machframe = true;
                }
                _ => return Err(bad),
            }
            k += n;
        }
        if flags & UNW_FLAG_CHAININFO == 0 {
            break;
        }
        chain_depth += 1;
        if chain_depth > 32 {
            return Err(bad);
        }
        let ch = ui_at + 4 + count.div_ceil(2) * 4;
        rf = RUNTIME_FUNCTION {
            BeginAddress: mem.u32(ch).ok_or(bad)?,
            EndAddress: mem.u32(ch + 4).ok_or(bad)?,
            UnwindData: mem.u32(ch + 8).ok_or(bad)?,
        };
        primary = false;
    }
    if !machframe {
        ctx.Rip = mem.u64(ctx.Rsp).ok_or(st)?;
        ctx.Rsp += 8;
    }
    Ok(Unwound {
        handler,
        establisher_frame: establisher,
    })
}

/// Unwind-code slots an operation occupies.
fn slots(op: u8, info: u8) -> u64 {
    match op {
        uwop::ALLOC_LARGE if info == 0 => 2,
        uwop::ALLOC_LARGE => 3,
        uwop::SAVE_NONVOL | uwop::SAVE_XMM128 | uwop::EPILOG => 2,
        uwop::SAVE_NONVOL_FAR | uwop::SAVE_XMM128_FAR => 3,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat memory: one buffer at `base`.
    struct Flat {
        base: u64,
        bytes: Vec<u8>,
    }
    impl Mem for Flat {
        fn read(&self, addr: u64, out: &mut [u8]) -> Option<()> {
            let off = addr.checked_sub(self.base)? as usize;
            out.copy_from_slice(self.bytes.get(off..off + out.len())?);
            Some(())
        }
    }

    const BASE: u64 = 0x10000;

    /// Image with one function at RVA 0x100..0x180, prolog `push rbp; push rsi; sub rsp,0x28;
    /// lea rbp,[rsp+0x20]` (what clang emitted for the fixture), unwind info at 0x200, pdata at
    /// 0x300, and a stack at 0x8000.
    fn image() -> Flat {
        let mut b = vec![0u8; 0x9000];
        // code: push rbp(1) push rsi(2) sub rsp,0x28 (6) lea rbp,[rsp+0x20] (11)
        b[0x100..0x10B].copy_from_slice(&[
            0x55, 0x56, 0x48, 0x83, 0xEC, 0x28, 0x48, 0x8D, 0x6C, 0x24, 0x20,
        ]);
        b[0x10B] = 0x90;
        // epilog at 0x170: add rsp,0x28; pop rsi; pop rbp; ret
        b[0x170..0x177].copy_from_slice(&[0x48, 0x83, 0xC4, 0x28, 0x5E, 0x5D, 0xC3]);
        // UNWIND_INFO v1, EHANDLER, prolog 11, 4 codes, frame reg RBP offset 2 (=0x20)
        let ui = [0x09u8, 11, 4, 0x25];
        b[0x200..0x204].copy_from_slice(&ui);
        let codes: [u16; 4] = [
            0x0B | (3 << 8),
            0x06 | (2 << 8) | (4 << 12),
            0x02 | (6 << 12),
            0x01 | (5 << 12),
        ];
        for (i, c) in codes.iter().enumerate() {
            b[0x204 + i * 2..0x206 + i * 2].copy_from_slice(&c.to_le_bytes());
        }
        b[0x20C..0x210].copy_from_slice(&0x150u32.to_le_bytes()); // handler rva
        // pdata
        for (i, v) in [0x100u32, 0x180, 0x200].iter().enumerate() {
            b[0x300 + i * 4..0x304 + i * 4].copy_from_slice(&v.to_le_bytes());
        }
        Flat {
            base: BASE,
            bytes: b,
        }
    }

    fn frame_at_body(img: &mut Flat) -> CONTEXT {
        // Stack after the prolog: [rsp+0x28]=rsi, [rsp+0x30]=rbp, [rsp+0x38]=return address.
        let rsp = BASE + 0x8000;
        let put = |img: &mut Flat, a: u64, v: u64| {
            let o = (a - BASE) as usize;
            img.bytes[o..o + 8].copy_from_slice(&v.to_le_bytes());
        };
        put(img, rsp + 0x28, 0x5151);
        put(img, rsp + 0x30, 0xB0B0);
        put(img, rsp + 0x38, 0xCA11E4);
        let mut c = CONTEXT::zeroed();
        c.Rsp = rsp;
        c.Rbp = rsp + 0x20;
        c
    }

    #[test]
    fn unwinds_a_frame_pointer_function_and_reports_its_handler() {
        let mut img = image();
        let mut c = frame_at_body(&mut img);
        let rf = lookup_function_entry(&img, BASE, 0x300, 12, BASE + 0x140).expect("pdata");
        assert_eq!(rf.BeginAddress, 0x100);
        let u = virtual_unwind(&img, UNW_FLAG_EHANDLER, BASE, BASE + 0x140, &rf, &mut c).unwrap();
        assert_eq!(u.establisher_frame, BASE + 0x8000, "rbp - 0x20");
        assert_eq!(
            u.handler,
            Some(Handler {
                routine: BASE + 0x150,
                data: BASE + 0x210
            })
        );
        assert_eq!(
            (c.Rip, c.Rsp, c.Rsi, c.Rbp),
            (0xCA11E4, BASE + 0x8040, 0x5151, 0xB0B0)
        );
        // Not looking for a termination handler: none reported.
        let mut c2 = frame_at_body(&mut img);
        let u2 = virtual_unwind(&img, UNW_FLAG_UHANDLER, BASE, BASE + 0x140, &rf, &mut c2).unwrap();
        assert_eq!(u2.handler, None);
        assert_eq!(c2.Rip, 0xCA11E4);
    }

    #[test]
    fn a_pc_inside_the_prolog_undoes_only_what_ran() {
        let mut img = image();
        // After `push rbp; push rsi` (offset 2): only the two pushes are undone.
        let rsp = BASE + 0x8000;
        let put = |img: &mut Flat, a: u64, v: u64| {
            let o = (a - BASE) as usize;
            img.bytes[o..o + 8].copy_from_slice(&v.to_le_bytes());
        };
        put(&mut img, rsp, 0x5151);
        put(&mut img, rsp + 8, 0xB0B0);
        put(&mut img, rsp + 16, 0xCA11E4);
        let mut c = CONTEXT::zeroed();
        c.Rsp = rsp;
        let rf = lookup_function_entry(&img, BASE, 0x300, 12, BASE + 0x102).unwrap();
        let u = virtual_unwind(&img, UNW_FLAG_EHANDLER, BASE, BASE + 0x102, &rf, &mut c).unwrap();
        assert_eq!(u.handler, None, "no handler inside the prolog");
        assert_eq!(
            (c.Rip, c.Rsi, c.Rbp, c.Rsp),
            (0xCA11E4, 0x5151, 0xB0B0, rsp + 24)
        );
    }

    #[test]
    fn a_pc_inside_the_epilog_is_unwound_by_emulating_it() {
        let mut img = image();
        let mut c = frame_at_body(&mut img);
        let rf = lookup_function_entry(&img, BASE, 0x300, 12, BASE + 0x170).unwrap();
        let u = virtual_unwind(&img, UNW_FLAG_EHANDLER, BASE, BASE + 0x170, &rf, &mut c).unwrap();
        assert_eq!(u.handler, None);
        assert_eq!((c.Rip, c.Rsi, c.Rbp), (0xCA11E4, 0x5151, 0xB0B0));
    }

    /// A function split in two: the second part (RVA 0x400..0x440) has chained unwind info
    /// (UNW_FLAG_CHAININFO) pointing at the primary's, plus its own `ALLOC_LARGE 0x1008` (the
    /// chained part's codes are undone first, then all of the primary's).
    #[test]
    fn chained_unwind_info_applies_both_parts() {
        let mut img = image();
        // Chained UNWIND_INFO at 0x500: version 1, CHAININFO, no prolog, 2 code slots:
        // ALLOC_LARGE info 0, size/8 in the next slot (0x1008 / 8 = 0x201).
        let ui = [0x01u8 | (UNW_FLAG_CHAININFO << 3), 0, 2, 0];
        img.bytes[0x500..0x504].copy_from_slice(&ui);
        let codes: [u16; 2] = [1 << 8, 0x201];
        for (i, c) in codes.iter().enumerate() {
            img.bytes[0x504 + i * 2..0x506 + i * 2].copy_from_slice(&c.to_le_bytes());
        }
        // The chained RUNTIME_FUNCTION follows the (even) code slots.
        for (i, v) in [0x100u32, 0x180, 0x200].iter().enumerate() {
            img.bytes[0x508 + i * 4..0x50C + i * 4].copy_from_slice(&v.to_le_bytes());
        }
        // pdata: the primary, then the chained part.
        for (i, v) in [0x400u32, 0x440, 0x500].iter().enumerate() {
            img.bytes[0x30C + i * 4..0x310 + i * 4].copy_from_slice(&v.to_le_bytes());
        }
        // Stack: the body of the second part runs 0x1008 below the primary's frame.
        let primary_rsp = BASE + 0x7000;
        let rsp = primary_rsp - 0x1008;
        let put = |img: &mut Flat, a: u64, v: u64| {
            let o = (a - BASE) as usize;
            img.bytes[o..o + 8].copy_from_slice(&v.to_le_bytes());
        };
        put(&mut img, primary_rsp + 0x28, 0x5151);
        put(&mut img, primary_rsp + 0x30, 0xB0B0);
        put(&mut img, primary_rsp + 0x38, 0xCA11E4);
        let mut c = CONTEXT::zeroed();
        c.Rsp = rsp;
        // The primary's frame register (RBP = its RSP + 0x20) is still set in the second part.
        c.Rbp = primary_rsp + 0x20;
        let rf = lookup_function_entry(&img, BASE, 0x300, 24, BASE + 0x410).expect("second entry");
        assert_eq!(rf.BeginAddress, 0x400);
        let u = virtual_unwind(&img, UNW_FLAG_EHANDLER, BASE, BASE + 0x410, &rf, &mut c).unwrap();
        assert_eq!(
            u.handler, None,
            "handlers come from the primary only when not chained"
        );
        assert_eq!((c.Rip, c.Rsi, c.Rbp), (0xCA11E4, 0x5151, 0xB0B0));
        assert_eq!(c.Rsp, primary_rsp + 0x40);
    }

    #[test]
    fn save_nonvol_and_machine_frames() {
        // UNWIND_INFO at 0x600: SAVE_NONVOL rbx at [rsp+0x10] (offset slot 2 -> 2*8), after an
        // ALLOC_SMALL 0x20; prolog 8 bytes; function 0x700..0x740.
        let mut img = image();
        let ui = [0x01u8, 8, 3, 0];
        img.bytes[0x600..0x604].copy_from_slice(&ui);
        let codes: [u16; 3] = [0x08 | (4 << 8) | (3 << 12), 2, 0x04 | (2 << 8) | (3 << 12)];
        for (i, c) in codes.iter().enumerate() {
            img.bytes[0x604 + i * 2..0x606 + i * 2].copy_from_slice(&c.to_le_bytes());
        }
        let rf = RUNTIME_FUNCTION {
            BeginAddress: 0x700,
            EndAddress: 0x740,
            UnwindData: 0x600,
        };
        let rsp = BASE + 0x6000;
        let put = |img: &mut Flat, a: u64, v: u64| {
            let o = (a - BASE) as usize;
            img.bytes[o..o + 8].copy_from_slice(&v.to_le_bytes());
        };
        put(&mut img, rsp + 0x10, 0xB8B8);
        put(&mut img, rsp + 0x20, 0xCA11E4);
        let mut c = CONTEXT::zeroed();
        c.Rsp = rsp;
        virtual_unwind(&img, UNW_FLAG_EHANDLER, BASE, BASE + 0x720, &rf, &mut c).unwrap();
        assert_eq!((c.Rbx, c.Rip, c.Rsp), (0xB8B8, 0xCA11E4, rsp + 0x28));
        // PUSH_MACHFRAME (a trap frame: RIP at [rsp], RSP at [rsp+24]).
        let ui = [0x01u8, 1, 1, 0];
        img.bytes[0x680..0x684].copy_from_slice(&ui);
        let code: u16 = 0x01 | (10 << 8);
        img.bytes[0x684..0x686].copy_from_slice(&code.to_le_bytes());
        let rf = RUNTIME_FUNCTION {
            BeginAddress: 0x700,
            EndAddress: 0x740,
            UnwindData: 0x680,
        };
        put(&mut img, rsp, 0x7777);
        put(&mut img, rsp + 24, BASE + 0x5F00);
        let mut c = CONTEXT::zeroed();
        c.Rsp = rsp;
        virtual_unwind(&img, UNW_FLAG_EHANDLER, BASE, BASE + 0x720, &rf, &mut c).unwrap();
        assert_eq!((c.Rip, c.Rsp), (0x7777, BASE + 0x5F00));
    }

    #[test]
    fn bad_data_and_bad_stacks_are_errors_not_crashes() {
        let mut img = image();
        assert!(lookup_function_entry(&img, BASE, 0x300, 12, BASE + 0x90).is_none());
        let mut c = frame_at_body(&mut img);
        c.Rsp = 0x10; // outside the memory
        c.Rbp = 0x30;
        let rf = lookup_function_entry(&img, BASE, 0x300, 12, BASE + 0x140).unwrap();
        assert_eq!(
            virtual_unwind(&img, UNW_FLAG_EHANDLER, BASE, BASE + 0x140, &rf, &mut c),
            Err(UnwindError::BadStack)
        );
        img.bytes[0x200] = 0x0F; // version 7
        let mut c = frame_at_body(&mut img);
        assert_eq!(
            virtual_unwind(&img, UNW_FLAG_EHANDLER, BASE, BASE + 0x140, &rf, &mut c),
            Err(UnwindError::BadUnwindData)
        );
    }
}
