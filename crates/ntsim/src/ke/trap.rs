//! Traps in driver code and the kernel's exception dispatcher (`KiDispatchException`).
//!
//! The SIGSEGV/SIGILL/SIGFPE/SIGTRAP handler (`ke::fault::on_fault`) calls [`on_driver_trap`]
//! when the faulting instruction is in a loaded driver image. It decodes the instruction
//! (`ke::decode`) and either
//! - **emulates** it and advances RIP: `mov reg, cr8` / `mov cr8, reg` on the thread's IRQL,
//!   `cli`/`sti` on the emulated interrupt flag, `rdmsr` of the MSRs `ke::cpu` models, loads from
//!   KUSER_SHARED_DATA served from a live copy;
//! - **bug-checks** with Windows' code: `int 29h` (`__fastfail`) → 0x139
//!   KERNEL_SECURITY_CHECK_FAILURE with the fast-fail code (RCX) as p1, as
//!   `KiRaiseSecurityCheckFailure` does (Microsoft: "Bug Check 0x139",
//!   <https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x139--kernel-security-check-failure>);
//!   privileged instructions
//!   ntsim does not model (port I/O, other control registers, `wrmsr`, `hlt`, `lgdt`…) →
//!   0x1E with STATUS_PRIVILEGED_INSTRUCTION, marked as a limit of ntsim (Windows would run them);
//! - or **raises an exception**: the thread is redirected (its `ucontext` edited) to
//!   [`ki_trap_dispatch`] on its own stack, below the faulting frame, with the captured CONTEXT
//!   and EXCEPTION_RECORD — the same shape as `KiDispatchException` — so driver filters and
//!   `__finally` blocks never run inside the signal handler. Exceptions: access violations at
//!   user-mode addresses (STATUS_ACCESS_VIOLATION, ExceptionInformation = [0 read / 1 write /
//!   8 execute, address]), `ud2` (STATUS_ILLEGAL_INSTRUCTION), divide errors
//!   (STATUS_INTEGER_DIVIDE_BY_ZERO / STATUS_INTEGER_OVERFLOW), `int3` (STATUS_BREAKPOINT, at
//!   the `int3` itself), `int 2Ch` (STATUS_ASSERTION_FAILURE, resuming after it), an `rdmsr`
//!   of an MSR that does not exist and `mov cr8` of a value above 15 (both #GP on hardware:
//!   STATUS_ACCESS_VIOLATION with address −1, as Windows reports general-protection faults).
//!
//! Which addresses are "user-mode" (exceptions a driver may catch) and which are kernel
//! (0x50 PAGE_FAULT_IN_NONPAGED_AREA, not catchable): everything ntsim knows as kernel memory
//! — pool, ntsim's system buffers, images, the thread's stack — and addresses in the kernel
//! half are kernel; any other address below `MM_USER_PROBE_ADDRESS` is user (on Windows, an
//! invalid kernel-mode reference bug-checks while an invalid user-mode one raises an exception
//! the driver can handle — Microsoft: "Handling Exceptions",
//! <https://learn.microsoft.com/windows-hardware/drivers/kernel/handling-exceptions>, and
//! "Bug Check 0x50").
//!
//! An exception nobody handles is the bug check Windows raises for the thread it happened on
//! ([`unhandled`]).
#![allow(non_snake_case)]

use nt_abi::bugcheck;
use nt_abi::*;

use super::bugcheck::raise;
use super::decode::{self, Insn};
use super::except::{self as seh, ACTIVE, Active, Dispatch};
use super::thread;
use crate::machine::System;
use crate::verifier::Bc;

/// `si_code` values (asm-generic/siginfo.h) the libc crate does not export.
const FPE_INTOVF: libc::c_int = 2;
const SEGV_MAPERR: libc::c_int = 1;
const SEGV_ACCERR: libc::c_int = 2;

/// What the fault handler should do after [`on_driver_trap`].
pub(crate) enum Trap {
    /// The ucontext was edited (emulated, or redirected to the dispatcher): return from the
    /// handler.
    Resume,
    /// Not ours: the fault handler reports it as before (0x50, 0x7F…).
    NotMine,
}

/// The CONTEXT and EXCEPTION_RECORD written onto the faulting thread's stack.
#[repr(C)]
struct TrapFrame {
    ctx: CONTEXT,
    rec: EXCEPTION_RECORD,
}

/// Bytes left untouched below the faulting RSP before the trap frame.
const TRAP_GAP: usize = 0x80;
/// Stack the dispatcher needs below the trap frame (its own frames, the driver's filters and
/// `__finally` blocks).
const DISPATCH_STACK: usize = 48 * 1024;

core::arch::global_asm!(
    // ntsim_restore_context(ctx: *const CONTEXT) -> !   (System V: rdi = ctx)
    // Load every register of `ctx` and jump to ctx.Rip with RSP = ctx.Rsp. The three words
    // below the target RSP (free stack on Windows x64, which has no red zone) carry RIP, RDI
    // and RFLAGS across the switch.
    ".globl ntsim_restore_context",
    "ntsim_restore_context:",
    "fxrstor [rdi + 0x100]",
    "mov rax, [rdi + 0x98]",
    "mov rcx, [rdi + 0xF8]",
    "mov [rax - 8], rcx",
    "mov rcx, [rdi + 0xB0]",
    "mov [rax - 16], rcx",
    "mov ecx, [rdi + 0x44]",
    "and ecx, 0xCD5",
    "or ecx, 0x202",
    "mov [rax - 24], rcx",
    "mov rcx, [rdi + 0x80]",
    "mov rdx, [rdi + 0x88]",
    "mov rbx, [rdi + 0x90]",
    "mov rbp, [rdi + 0xA0]",
    "mov rsi, [rdi + 0xA8]",
    "mov r8, [rdi + 0xB8]",
    "mov r9, [rdi + 0xC0]",
    "mov r10, [rdi + 0xC8]",
    "mov r11, [rdi + 0xD0]",
    "mov r12, [rdi + 0xD8]",
    "mov r13, [rdi + 0xE0]",
    "mov r14, [rdi + 0xE8]",
    "mov r15, [rdi + 0xF0]",
    "lea rsp, [rax - 24]",
    "mov rax, [rdi + 0x78]",
    "popfq",
    "pop rdi",
    "ret",
);

unsafe extern "C" {
    fn ntsim_restore_context(ctx: *const CONTEXT) -> !;
}

/// Declare a win64 export whose entry captures the caller's CONTEXT (as if the export had just
/// returned: RIP = return address, RSP = the caller's RSP, every register as the caller left it)
/// and calls `$impl(rcx, rdx, r8, r9, &mut context)`. If `$impl` returns, the export returns to
/// its caller normally.
macro_rules! capture_entry {
    ($sym:literal, $impl:path) => {
        core::arch::global_asm!(
            concat!(".globl ", $sym),
            concat!($sym, ":"),
            "sub rsp, 0x508",
            "mov [rsp + 0x30 + 0x78], rax",
            "mov [rsp + 0x30 + 0x80], rcx",
            "mov [rsp + 0x30 + 0x88], rdx",
            "mov [rsp + 0x30 + 0x90], rbx",
            "mov [rsp + 0x30 + 0xA0], rbp",
            "mov [rsp + 0x30 + 0xA8], rsi",
            "mov [rsp + 0x30 + 0xB0], rdi",
            "mov [rsp + 0x30 + 0xB8], r8",
            "mov [rsp + 0x30 + 0xC0], r9",
            "mov [rsp + 0x30 + 0xC8], r10",
            "mov [rsp + 0x30 + 0xD0], r11",
            "mov [rsp + 0x30 + 0xD8], r12",
            "mov [rsp + 0x30 + 0xE0], r13",
            "mov [rsp + 0x30 + 0xE8], r14",
            "mov [rsp + 0x30 + 0xF0], r15",
            "lea rax, [rsp + 0x510]",
            "mov [rsp + 0x30 + 0x98], rax",
            "mov rax, [rsp + 0x508]",
            "mov [rsp + 0x30 + 0xF8], rax",
            "pushfq",
            "pop rax",
            "mov [rsp + 0x30 + 0x44], eax",
            "fxsave [rsp + 0x30 + 0x100]",
            "mov dword ptr [rsp + 0x30 + 0x30], 0x10000B",
            "lea rax, [rsp + 0x30]",
            "mov [rsp + 0x20], rax",
            "call {f}",
            "add rsp, 0x508",
            "ret",
            f = sym $impl,
        );
    };
}
pub(crate) use capture_entry;

/// The win64 signature of a [`capture_entry`] implementation.
pub(crate) type CaptureImpl = extern "win64" fn(u64, u64, u64, u64, *mut CONTEXT);

/// Resume execution with `ctx` (never returns). Dispatches whose frames lie below the new RSP
/// are abandoned.
pub(crate) fn resume(ctx: &CONTEXT) -> ! {
    let rsp = ctx.Rsp as usize;
    let (lo, hi) = crate::mm::stack_bounds();
    if rsp < lo + 64 || rsp > hi || !rsp.is_multiple_of(8) {
        // A filter edited the context to a stack pointer outside this thread's stack: Windows
        // would raise STATUS_BAD_STACK when continuing there.
        let m = thread::current();
        let r = record(STATUS_BAD_STACK, EXCEPTION_NONCONTINUABLE, ctx.Rip, &[]);
        unhandled(&m, &r, ctx)
    }
    ACTIVE.with(|a| a.borrow_mut().retain(|e| e.ctx > rsp));
    let mut c = *ctx;
    // MXCSR bits 16–31 are reserved (fxrstor would fault on them).
    c.FltSave.MxCsr &= 0xFFFF;
    // SAFETY: `c` is a complete register state of a driver frame on this thread's stack, above
    // every ntsim frame (which are abandoned here, holding no locks: the dispatcher calls this
    // only after dropping everything it owns).
    unsafe { ntsim_restore_context(&c) }
}

/// Run `RtlUnwindEx` to `target.frame` and resume at `target.ip` (never returns).
pub(crate) fn unwind_and_resume(
    m: &System,
    start: &CONTEXT,
    target: seh::UnwindTarget,
    rec: &mut EXCEPTION_RECORD,
) -> ! {
    match seh::unwind_to(m, start, target, rec) {
        Ok(ctx) => resume(&ctx),
        Err(seh::BadUnwind) => {
            let mut r = *rec;
            r.ExceptionCode = STATUS_INVALID_UNWIND_TARGET;
            r.ExceptionFlags = EXCEPTION_NONCONTINUABLE;
            let c = *start;
            unhandled(m, &r, &c)
        }
    }
}

/// `KiDispatchException`: look for a handler for `rec` raised in `ctx`; resume (continue
/// execution) or bug-check (nobody handled it). Handlers that execute an `__except` block never
/// come back here (they resume in the driver through `RtlUnwindEx`).
pub(crate) fn dispatch_exception(rec: &mut EXCEPTION_RECORD, ctx: &mut CONTEXT) -> ! {
    let m = thread::current();
    ACTIVE.with(|a| {
        a.borrow_mut().push(Active {
            ctx: ctx as *mut CONTEXT as usize,
        })
    });
    let r = seh::rtl_dispatch_exception(&m, rec, ctx);
    let me = ctx as *mut CONTEXT as usize;
    ACTIVE.with(|a| a.borrow_mut().retain(|e| e.ctx != me));
    match r {
        Dispatch::Continue => resume(ctx),
        Dispatch::Unhandled => unhandled(&m, rec, ctx),
    }
}

/// Entry of a thread redirected by the fault handler (System V: rdi = the trap frame).
extern "C" fn ki_trap_dispatch(frame: *mut TrapFrame) -> ! {
    // SAFETY: the fault handler wrote a complete TrapFrame at this address on this thread's
    // stack, below the faulting frame, and nothing else refers to it.
    let f = unsafe { &mut *frame };
    dispatch_exception(&mut f.rec, &mut f.ctx)
}

/// The bug check for an exception nobody handled, by the kind of thread it happened on
/// (Microsoft's bug-check reference:
/// <https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x7e--system-thread-exception-not-handled>,
/// <https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x3b--system-service-exception>,
/// <https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x1e--kmode-exception-not-handled>):
/// - a system thread — DriverEntry and DriverUnload (a demand-start driver is loaded and
///   unloaded by a system worker thread) and work-item routines (system worker threads) →
///   0x7E SYSTEM_THREAD_EXCEPTION_NOT_HANDLED (p1 code, p2 address, p3 exception record,
///   p4 context record; Microsoft: "Bug Check 0x7E");
/// - a dispatch routine running for a user-mode request (CreateFile, DeviceIoControl,
///   CloseHandle: a system service) → 0x3B SYSTEM_SERVICE_EXCEPTION (p1 code, p2 address,
///   p3 context record, p4 0; Microsoft: "Bug Check 0x3B");
/// - anything else → 0x1E KMODE_EXCEPTION_NOT_HANDLED (p1 code, p2 address,
///   p3/p4 ExceptionInformation[0]/[1]; Microsoft: "Bug Check 0x1E").
pub(crate) fn unhandled(m: &System, rec: &EXCEPTION_RECORD, ctx: &CONTEXT) -> ! {
    let what = thread::context();
    let code = rec.ExceptionCode as u32 as u64;
    let addr = rec.ExceptionAddress as u64;
    let r = rec as *const EXCEPTION_RECORD as u64;
    let c = ctx as *const CONTEXT as u64;
    let bc = if matches!(
        what,
        "DriverEntry" | "DriverUnload" | "work item routine" | "system thread"
    ) {
        Bc::new(
            bugcheck::SYSTEM_THREAD_EXCEPTION_NOT_HANDLED,
            [code, addr, r, c],
        )
    } else if what.ends_with("dispatch") || what == "dispatch routine" {
        Bc::new(bugcheck::SYSTEM_SERVICE_EXCEPTION, [code, addr, c, 0])
    } else {
        Bc::new(
            bugcheck::KMODE_EXCEPTION_NOT_HANDLED,
            [
                code,
                addr,
                rec.ExceptionInformation[0] as u64,
                rec.ExceptionInformation[1] as u64,
            ],
        )
    };
    raise(m, bc.at(addr as usize))
}

/// A fresh exception record.
pub(crate) fn record(code: NTSTATUS, flags: ULONG, address: u64, info: &[u64]) -> EXCEPTION_RECORD {
    let mut r = EXCEPTION_RECORD {
        ExceptionCode: code,
        ExceptionFlags: flags,
        ExceptionRecord: core::ptr::null_mut(),
        ExceptionAddress: address as PVOID,
        NumberParameters: info.len().min(EXCEPTION_MAXIMUM_PARAMETERS) as ULONG,
        ExceptionInformation: [0; EXCEPTION_MAXIMUM_PARAMETERS],
    };
    for (d, s) in r.ExceptionInformation.iter_mut().zip(info) {
        *d = *s as usize;
    }
    r
}

const GREGS: [(usize, u8); 16] = [
    (libc::REG_RAX as usize, 0),
    (libc::REG_RCX as usize, 1),
    (libc::REG_RDX as usize, 2),
    (libc::REG_RBX as usize, 3),
    (libc::REG_RSP as usize, 4),
    (libc::REG_RBP as usize, 5),
    (libc::REG_RSI as usize, 6),
    (libc::REG_RDI as usize, 7),
    (libc::REG_R8 as usize, 8),
    (libc::REG_R9 as usize, 9),
    (libc::REG_R10 as usize, 10),
    (libc::REG_R11 as usize, 11),
    (libc::REG_R12 as usize, 12),
    (libc::REG_R13 as usize, 13),
    (libc::REG_R14 as usize, 14),
    (libc::REG_R15 as usize, 15),
];

fn context_of(uc: &libc::ucontext_t) -> CONTEXT {
    let g = &uc.uc_mcontext.gregs;
    let mut c = CONTEXT::zeroed();
    for (i, n) in GREGS {
        c.set_gpr(n, g[i] as u64);
    }
    c.Rip = g[libc::REG_RIP as usize] as u64;
    c.EFlags = g[libc::REG_EFL as usize] as u32;
    c.ContextFlags = CONTEXT_FULL;
    c.SegCs = 0x10;
    c.SegSs = 0x18;
    c.SegDs = 0x2B;
    c.SegEs = 0x2B;
    c.SegFs = 0x53;
    c.SegGs = 0x2B;
    let fp = uc.uc_mcontext.fpregs;
    if !fp.is_null() {
        // SAFETY: the kernel's fpregs points at the 512-byte fxsave image of the interrupted
        // state (struct _libc_fpstate), the same layout as XMM_SAVE_AREA32.
        unsafe {
            core::ptr::copy_nonoverlapping(
                fp.cast::<u8>(),
                (&raw mut c.FltSave).cast::<u8>(),
                core::mem::size_of::<XMM_SAVE_AREA32>(),
            )
        };
        c.MxCsr = c.FltSave.MxCsr;
    }
    c
}

fn set_greg(uc: &mut libc::ucontext_t, n: u8, v: u64) {
    if let Some(&(i, _)) = GREGS.iter().find(|(_, r)| *r == n & 15) {
        uc.uc_mcontext.gregs[i] = v as i64;
    }
}

fn advance(uc: &mut libc::ucontext_t, len: usize) -> Trap {
    uc.uc_mcontext.gregs[libc::REG_RIP as usize] += len as i64;
    Trap::Resume
}

/// Write a trap frame below the faulting RSP and point the thread at the dispatcher.
fn redirect(uc: &mut libc::ucontext_t, m: &System, ctx: CONTEXT, rec: EXCEPTION_RECORD) -> Trap {
    let (lo, hi) = crate::mm::stack_bounds();
    let rsp = ctx.Rsp as usize;
    let size = core::mem::size_of::<TrapFrame>();
    let frame = rsp.wrapping_sub(TRAP_GAP + size) & !0xF;
    if lo == 0 || rsp > hi || frame < lo + DISPATCH_STACK {
        // No room to dispatch: Windows double-faults when the kernel stack cannot take a trap
        // frame.
        raise(
            m,
            Bc::new(
                bugcheck::UNEXPECTED_KERNEL_MODE_TRAP,
                [
                    bugcheck::kernel_mode_trap::DOUBLE_FAULT,
                    rsp as u64,
                    lo as u64,
                    ctx.Rip,
                ],
            )
            .at(ctx.Rip as usize),
        );
    }
    // SAFETY: `frame..frame+size` lies in this thread's own stack, below the interrupted RSP
    // (free memory: Windows x64 code has no red zone, and TRAP_GAP more is left untouched); the
    // thread is stopped in this signal handler, so nothing else uses that memory.
    unsafe { (frame as *mut TrapFrame).write(TrapFrame { ctx, rec }) };
    // SAFETY: the word just below the frame, same argument: the dispatcher's fake return
    // address (0 ends any stack walk there).
    unsafe { ((frame - 8) as *mut u64).write(0) };
    let g = &mut uc.uc_mcontext.gregs;
    g[libc::REG_RIP as usize] = ki_trap_dispatch as *const () as usize as i64;
    g[libc::REG_RSP as usize] = (frame - 8) as i64;
    g[libc::REG_RDI as usize] = frame as i64;
    // Clear DF and TF: the dispatcher is Rust code.
    g[libc::REG_EFL as usize] &= !0x500;
    Trap::Resume
}

/// `MM_USER_PROBE_ADDRESS`-style split: is `addr` a user-mode address in ntsim's model?
///
/// The kernel sees images and stacks (`mm`); the executive adds pool and its system buffers for
/// ProbeForRead/ProbeForWrite (`ex::raise`). A fault can only hit memory that is not mapped, and
/// pool is always mapped, so for faults the two answers agree.
pub(crate) fn is_user_address(m: &System, addr: u64, len: u64) -> bool {
    is_user_range(addr, len) && matches!(m.mm.classify(addr as usize), crate::mm::MemClass::Unknown)
}

/// `[addr, addr + len)` does not wrap and ends at or below `MmUserProbeAddress`.
pub(crate) fn is_user_range(addr: u64, len: u64) -> bool {
    addr.checked_add(len.max(1))
        .is_some_and(|end| end <= MM_USER_PROBE_ADDRESS)
}

/// A privileged instruction (`_what`, for the reader of the call site) ntsim does not model.
fn not_modelled(m: &System, _what: &str, rip: u64) -> ! {
    raise(
        m,
        Bc::new(
            bugcheck::KMODE_EXCEPTION_NOT_HANDLED,
            [STATUS_PRIVILEGED_INSTRUCTION as u32 as u64, rip, 0, 0],
        )
        .documented_only()
        .at(rip as usize),
    )
}

/// Handle a trap whose RIP is in a driver image (see the module docs).
pub(crate) fn on_driver_trap(
    m: &System,
    sig: libc::c_int,
    info: &libc::siginfo_t,
    uc: *mut libc::ucontext_t,
) -> Trap {
    // SAFETY: the kernel passes a valid, exclusive ucontext_t to an SA_SIGINFO handler.
    let uc = unsafe { &mut *uc };
    let ctx = context_of(uc);
    let rip = ctx.Rip;
    let Some(img) = m.mm.image_of(rip as usize) else {
        return Trap::NotMine;
    };
    let img_end = (img.base + img.size) as u64;
    let mut bytes = [0u8; 16];
    let avail = (img_end.saturating_sub(rip)).min(16) as usize;
    // SAFETY: `rip..rip+avail` lies in the mapped image (the faulting instruction's bytes).
    unsafe { core::ptr::copy_nonoverlapping(rip as *const u8, bytes.as_mut_ptr(), avail) };
    let bytes = &bytes[..avail];
    match sig {
        libc::SIGTRAP => {
            // int3 is a trap: RIP is past it. Report (and resume at) the int3 itself.
            let before = |n: u64| -> Option<u8> {
                let a = rip.checked_sub(n)?;
                (a >= img.base as u64).then(|| {
                    // SAFETY: `a` lies in the mapped image, just before the trapping RIP.
                    unsafe { *(a as *const u8) }
                })
            };
            let at = if before(1) == Some(0xCC) {
                rip - 1
            } else if before(2) == Some(0xCD) && before(1) == Some(0x03) {
                rip - 2
            } else {
                return Trap::NotMine;
            };
            let mut c = ctx;
            c.Rip = at;
            redirect(uc, m, c, record(STATUS_BREAKPOINT, 0, at, &[0]))
        }
        libc::SIGILL => redirect(uc, m, ctx, record(STATUS_ILLEGAL_INSTRUCTION, 0, rip, &[])),
        libc::SIGFPE => {
            let code = if info.si_code == FPE_INTOVF {
                STATUS_INTEGER_OVERFLOW
            } else {
                STATUS_INTEGER_DIVIDE_BY_ZERO
            };
            redirect(uc, m, ctx, record(code, 0, rip, &[]))
        }
        libc::SIGSEGV | libc::SIGBUS => segv(m, info, uc, ctx, bytes),
        _ => Trap::NotMine,
    }
}

/// A general-protection fault Windows turns into STATUS_ACCESS_VIOLATION (address unknown: −1).
fn gp_fault(uc: &mut libc::ucontext_t, m: &System, ctx: CONTEXT) -> Trap {
    let rip = ctx.Rip;
    redirect(
        uc,
        m,
        ctx,
        record(STATUS_ACCESS_VIOLATION, 0, rip, &[0, u64::MAX]),
    )
}

fn segv(
    m: &System,
    info: &libc::siginfo_t,
    uc: &mut libc::ucontext_t,
    ctx: CONTEXT,
    bytes: &[u8],
) -> Trap {
    let rip = ctx.Rip;
    match decode::decode(bytes, &ctx, rip) {
        Insn::ReadCr8 { reg, len } => {
            set_greg(uc, reg, super::irql::get() as u64);
            advance(uc, len)
        }
        Insn::WriteCr8 { reg, len } => {
            if super::cpu::write_cr8(ctx.gpr(reg)) {
                advance(uc, len)
            } else {
                gp_fault(uc, m, ctx)
            }
        }
        Insn::Cli { len } => {
            super::cpu::set_interrupts(false);
            advance(uc, len)
        }
        Insn::Sti { len } => {
            super::cpu::set_interrupts(true);
            advance(uc, len)
        }
        Insn::Rdmsr { len } => match super::cpu::read_msr(ctx.Rcx as u32) {
            Some(v) => {
                set_greg(uc, 0, v & 0xFFFF_FFFF);
                set_greg(uc, 2, v >> 32);
                advance(uc, len)
            }
            None => gp_fault(uc, m, ctx),
        },
        Insn::Int { vector, len } if vector == INT_FAST_FAIL => raise(
            m,
            Bc::new(bugcheck::KERNEL_SECURITY_CHECK_FAILURE, [ctx.Rcx, 0, 0, 0])
                .at(rip as usize + len - 2),
        ),
        Insn::Int { vector, len } if vector == INT_ASSERTION => {
            let mut c = ctx;
            c.Rip = rip + len as u64;
            redirect(uc, m, c, record(STATUS_ASSERTION_FAILURE, 0, rip, &[]))
        }
        Insn::Int { vector, len } if vector == INT_BREAKPOINT => {
            // `CD 03` faults (#GP) in user mode where `CC` traps; same exception.
            let _ = len;
            redirect(uc, m, ctx, record(STATUS_BREAKPOINT, 0, rip, &[0]))
        }
        Insn::Int { .. } => not_modelled(m, "int n", rip),
        Insn::Wrmsr { .. } => not_modelled(m, "wrmsr", rip),
        Insn::Hlt { .. } => not_modelled(m, "hlt", rip),
        Insn::OtherCr { .. } => not_modelled(m, "mov to/from CR0/CR2/CR3/CR4", rip),
        Insn::Privileged { what, .. } => not_modelled(m, what, rip),
        Insn::Load {
            dst,
            addr,
            size,
            ext,
            seg: None,
            len,
        } if super::cpu::is_kuser(addr) => match super::cpu::kuser_read(addr, size) {
            Some(v) => {
                let old = ctx.gpr(dst.reg);
                set_greg(uc, dst.reg, decode::apply_load(old, dst, v, size, ext));
                advance(uc, len)
            }
            None => Trap::NotMine,
        },
        insn => {
            // An access violation. #PF gives the address; #GP (non-canonical) does not.
            let pf = info.si_code == SEGV_MAPERR || info.si_code == SEGV_ACCERR;
            // SAFETY: si_addr is the valid union member for SIGSEGV/SIGBUS.
            let si_addr = unsafe { info.si_addr() } as u64;
            let addr = if pf {
                si_addr
            } else {
                match insn {
                    Insn::Load { addr, .. } | Insn::MemOther { addr, .. } => addr,
                    _ => u64::MAX,
                }
            };
            let err = uc.uc_mcontext.gregs[libc::REG_ERR as usize] as u64;
            let rw = if err & 0x10 != 0 {
                8
            } else if err & 0x2 != 0 {
                1
            } else {
                0
            };
            let canonical = !(0x0000_8000_0000_0000..0xFFFF_8000_0000_0000).contains(&addr);
            if !canonical {
                return redirect(
                    uc,
                    m,
                    ctx,
                    record(STATUS_ACCESS_VIOLATION, 0, rip, &[rw, u64::MAX]),
                );
            }
            if pf && is_user_address(m, addr, 1) {
                return redirect(
                    uc,
                    m,
                    ctx,
                    record(STATUS_ACCESS_VIOLATION, 0, rip, &[rw, addr]),
                );
            }
            Trap::NotMine
        }
    }
}
