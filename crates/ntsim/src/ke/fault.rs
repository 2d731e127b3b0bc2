//! CPU exceptions in driver code: SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP on an ntsim kernel or
//! worker thread become bug checks instead of killing the process.
//!
//! - access violation → 0x50 PAGE_FAULT_IN_NONPAGED_AREA (p1 = address referenced, p2 = 0 read /
//!   1 write / 10 execute, p3 = faulting instruction, p4 = 0);
//! - illegal instruction (`ud2`), breakpoint (`int3`), divide error → 0x1E
//!   KMODE_EXCEPTION_NOT_HANDLED (p1 = exception code, p2 = faulting instruction, p3 = 0,
//!   p4 = 0 or the address for faults).
//!
//! The faulting thread records the report and parks inside the signal handler for good (the
//! same "never return to the driver" rule as every other bug check). Faults on threads that are
//! not ntsim's go to the handler that was installed before (Rust's stack-overflow reporter, or
//! the default action).
use std::sync::Once;

use nt_abi::bugcheck;
use nt_abi::*;

use crate::machine::{self, CALLER};
use crate::verifier::Bc;

const SIGNALS: [libc::c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
];

static INSTALL: Once = Once::new();
static mut PREVIOUS: [core::mem::MaybeUninit<libc::sigaction>; 5] =
    [const { core::mem::MaybeUninit::zeroed() }; 5];

/// Install the handlers once per process.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        for (i, &sig) in SIGNALS.iter().enumerate() {
            let mut sa = core::mem::MaybeUninit::<libc::sigaction>::zeroed();
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                on_fault;
            // SAFETY: `sa` is zeroed storage for a sigaction that we fill before use.
            let sap = unsafe { &mut *sa.as_mut_ptr() };
            sap.sa_sigaction = handler as usize;
            sap.sa_flags = libc::SA_SIGINFO;
            // SAFETY: PREVIOUS is written only here, inside `call_once`, before any handler can
            // read it (the handler is installed by this very call).
            let prev = unsafe { (&raw mut PREVIOUS[i]).cast::<libc::sigaction>() };
            // SAFETY: valid signal number, initialized action, writable old-action storage.
            unsafe { libc::sigaction(sig, sa.as_ptr(), prev) };
        }
    });
}

fn previous(sig: libc::c_int) -> Option<*const libc::sigaction> {
    let i = SIGNALS.iter().position(|&s| s == sig)?;
    // SAFETY: PREVIOUS was filled by `install` before this handler could run; only read here.
    Some(unsafe { (&raw const PREVIOUS[i]).cast::<libc::sigaction>() })
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    let Some(m) = machine::current_no_park() else {
        // Not an ntsim thread: hand the signal back to whoever had it, and let the faulting
        // instruction run again into that handler.
        if let Some(prev) = previous(sig) {
            // SAFETY: restoring the action saved by `install`.
            unsafe { libc::sigaction(sig, prev, core::ptr::null_mut()) };
        }
        return;
    };
    if m.bugged.load(core::sync::atomic::Ordering::SeqCst) {
        machine::park_forever();
    }
    // SAFETY: the kernel passes a valid ucontext_t to SA_SIGINFO handlers.
    let uc = unsafe { &*(uctx as *const libc::ucontext_t) };
    let rip = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
    let err = uc.uc_mcontext.gregs[libc::REG_ERR as usize] as u64;
    // SAFETY: `info` is valid for the handler's duration.
    let info = unsafe { &*info };
    // SAFETY: si_addr is the valid union member for these signals.
    let addr = unsafe { info.si_addr() } as u64;
    let bc = match sig {
        libc::SIGSEGV | libc::SIGBUS => {
            let kind = if err & 0x10 != 0 {
                10
            } else if err & 0x2 != 0 {
                1
            } else {
                0
            };
            Bc::new(
                bugcheck::PAGE_FAULT_IN_NONPAGED_AREA,
                [addr, kind, rip as u64, 0],
            )
        }
        libc::SIGILL => Bc::new(
            bugcheck::KMODE_EXCEPTION_NOT_HANDLED,
            [STATUS_ILLEGAL_INSTRUCTION as u32 as u64, rip as u64, 0, 0],
        ),
        libc::SIGFPE => Bc::new(
            bugcheck::KMODE_EXCEPTION_NOT_HANDLED,
            [
                STATUS_INTEGER_DIVIDE_BY_ZERO as u32 as u64,
                rip as u64,
                0,
                0,
            ],
        ),
        _ => Bc::new(
            bugcheck::KMODE_EXCEPTION_NOT_HANDLED,
            [
                STATUS_BREAKPOINT as u32 as u64,
                rip.saturating_sub(1) as u64,
                0,
                0,
            ],
        ),
    };
    // In the driver's own code: report that instruction; in ntsim code servicing a driver call
    // (a bad pointer passed to an export): report the driver's call site.
    let at = if m.image_of(rip).is_some() {
        rip
    } else {
        let c = CALLER.with(|c| c.get());
        if c != 0 { c } else { rip }
    };
    machine::raise(&m, bc.at(at))
}
