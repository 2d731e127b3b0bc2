//! CPU exceptions in driver code: SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP on an ntsim kernel or
//! worker thread become bug checks instead of killing the process.
//!
//! A trap whose instruction is in a loaded driver image goes to `ke::trap` first: it emulates
//! what kernel code may do inline (CR8, `cli`/`sti`, `rdmsr`, KUSER_SHARED_DATA loads) or
//! dispatches an exception to the driver's SEH handlers (an unhandled one is 0x7E/0x3B/0x1E).
//! What it leaves (kernel-address faults, stack overflows, faults in ntsim's own code) is
//! reported here:
//!
//! - access violation → 0x50 PAGE_FAULT_IN_NONPAGED_AREA (p1 = address referenced, p2 = 0 read /
//!   1 write / 10 execute, p3 = faulting instruction, p4 = 0);
//! - illegal instruction (`ud2`), breakpoint (`int3`), divide error → 0x1E
//!   KMODE_EXCEPTION_NOT_HANDLED (p1 = exception code, p2 = faulting instruction, p3 = 0,
//!   p4 = 0 or the address for faults);
//! - a kernel stack overflow (an access in the guard region just below the faulting thread's
//!   stack) → 0x7F UNEXPECTED_KERNEL_MODE_TRAP with p1 = 8 (double fault), which is what Windows
//!   raises when a driver exhausts its kernel stack (p2 = the stack address that faulted,
//!   p3 = the low end of the thread's stack, p4 = the faulting instruction; Windows' own p2–p4
//!   are processor state, ntsim reports these instead).
//!
//! Handlers run with `SA_ONSTACK` on a per-thread alternate signal stack: every ntsim thread that
//! runs driver code is started by [`spawn_driver_thread`], which gives it an explicit stack size
//! ([`KERNEL_THREAD_STACK`]), records its stack bounds (`pthread_getattr_np`) and installs its own
//! `sigaltstack` ([`ALT_STACK_SIZE`]), freed when the thread exits. Without that, a fault caused
//! by an exhausted stack could not run its handler and would kill the process.
//!
//! The faulting thread records the report and parks inside the signal handler for good (the
//! same "never return to the driver" rule as every other bug check). Faults on threads that are
//! not ntsim's go to the handler that was installed before (Rust's stack-overflow reporter, or
//! the default action).
use std::cell::Cell;
use std::sync::Once;

use nt_abi::bugcheck;
use nt_abi::*;

use super::bugcheck::raise;
use super::thread::{self, park_forever};
use crate::verifier::Bc;

const SIGNALS: [libc::c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
];

/// Stack size of every ntsim thread that runs driver code (kernel threads for host calls —
/// DriverEntry, dispatch, unload, `run_in_kernel_thread` — and system worker threads).
///
/// Windows x64 kernel stacks are 24 KiB (`KERNEL_STACK_SIZE` = 0x6000; threads that convert to
/// large stacks get 72 KiB and more). ntsim's own Rust code (the exports, unoptimized in debug
/// builds) runs on the same stack, so it gets a Linux-friendly 256 KiB: a driver that recurses
/// without bound overflows it quickly, but ntsim is more lenient than Windows with a driver that
/// uses, say, 40 KiB of stack. Below the stack sits the guard page glibc gives every thread,
/// which turns an overflow into a fault that [`on_fault`] reports as bug check 0x7F.
pub(crate) const KERNEL_THREAD_STACK: usize = 256 * 1024;

/// Size of each driver thread's alternate signal stack (plus one guard page below it). The fault
/// handler records the report (string formatting, locks) on it and then parks there for good.
pub(crate) const ALT_STACK_SIZE: usize = 64 * 1024;

thread_local! {
    /// This thread's stack `[low, high)` and guard size, recorded by [`spawn_driver_thread`]
    /// (all zero on other threads).
    static STACK: Cell<(usize, usize, usize)> = const { Cell::new((0, 0, 0)) };
}

/// Spawn an ntsim thread that will run driver code: [`KERNEL_THREAD_STACK`] bytes of stack, its
/// bounds recorded, and an alternate signal stack of its own for the lifetime of `f`.
pub(crate) fn spawn_driver_thread<F>(name: &str, f: F) -> std::io::Result<()>
where
    F: FnOnce() + Send + 'static,
{
    install();
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(KERNEL_THREAD_STACK)
        .spawn(move || {
            record_stack_bounds();
            let alt = AltStack::install();
            // The thread's KPCR/KPRCB/KTHREAD behind GS (ke::cpu).
            crate::ke::cpu::enter_thread();
            f();
            crate::ke::cpu::leave_thread();
            drop(alt);
            STACK.with(|s| s.set((0, 0, 0)));
        })
        .map(drop)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

/// Record the calling thread's stack bounds and guard size (glibc's `pthread_getattr_np`).
fn record_stack_bounds() {
    let mut attr = core::mem::MaybeUninit::<libc::pthread_attr_t>::zeroed();
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    // SAFETY: `me` is the calling thread; `attr` is writable storage that pthread_getattr_np
    // initializes on success.
    if unsafe { libc::pthread_getattr_np(me, attr.as_mut_ptr()) } != 0 {
        return;
    }
    let mut addr: *mut libc::c_void = core::ptr::null_mut();
    let mut size: libc::size_t = 0;
    let mut guard: libc::size_t = 0;
    // SAFETY: `attr` was initialized above; the out-pointers are valid locals.
    let ok = unsafe { libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size) } == 0;
    // SAFETY: as above.
    let ok_guard = unsafe { libc::pthread_attr_getguardsize(attr.as_ptr(), &mut guard) } == 0;
    // SAFETY: `attr` was initialized by pthread_getattr_np and is destroyed once.
    unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
    if ok && size != 0 {
        let guard = if ok_guard {
            guard.max(page_size())
        } else {
            page_size()
        };
        let low = addr as usize;
        STACK.with(|s| s.set((low, low + size, guard)));
    }
}

/// Whether `addr` lies in the guard region of the calling thread's stack. As in Rust's own
/// stack-overflow detection, glibc versions disagree on whether the reported stack includes the
/// guard, so the region is `guard` bytes either side of the reported low end.
fn in_stack_guard(addr: usize) -> Option<usize> {
    let (low, high, guard) = STACK.try_with(Cell::get).ok()?;
    (high != 0 && addr >= low.saturating_sub(guard) && addr < low + guard).then_some(low)
}

/// A thread's own alternate signal stack (`sigaltstack`), with a guard page below it; the
/// previous one (Rust's, if any) is put back and the mapping freed on drop.
struct AltStack {
    map: *mut libc::c_void,
    len: usize,
    old: libc::stack_t,
}

impl AltStack {
    fn install() -> Option<AltStack> {
        let page = page_size();
        let len = ALT_STACK_SIZE + page;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing.
        let map = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return None;
        }
        // SAFETY: the first page of the mapping we own becomes the guard.
        unsafe { libc::mprotect(map, page, libc::PROT_NONE) };
        // SAFETY: stack_t is plain data; all-zero is a valid value.
        let mut ss: libc::stack_t = unsafe { core::mem::zeroed() };
        ss.ss_sp = map.wrapping_byte_add(page);
        ss.ss_flags = 0;
        ss.ss_size = ALT_STACK_SIZE;
        // SAFETY: as above, for the out-parameter.
        let mut old: libc::stack_t = unsafe { core::mem::zeroed() };
        // SAFETY: `ss` describes writable memory we own for as long as it is installed (until
        // drop); `old` is a valid out-pointer. We are not running on an alternate stack.
        if unsafe { libc::sigaltstack(&ss, &mut old) } != 0 {
            // SAFETY: unmapping the mapping created above, never installed.
            unsafe { libc::munmap(map, len) };
            return None;
        }
        Some(AltStack { map, len, old })
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: restores the stack that was installed before ours (or disables the alternate
        // stack if there was none); this thread is not executing on ours (we are not inside a
        // handler: a faulting thread parks there and never returns to drop this).
        unsafe { libc::sigaltstack(&self.old, core::ptr::null_mut()) };
        // SAFETY: our mapping, no longer installed as any thread's alternate stack.
        unsafe { libc::munmap(self.map, self.len) };
    }
}

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
            // SA_ONSTACK: run on the thread's alternate stack, so a fault caused by an exhausted
            // stack can still be handled.
            sap.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
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

/// The signal handler. The faulting thread's kernel state is [`thread::current_ptr`] (its
/// [`thread::KThread`], which holds the machine, IRQL and the last driver call site); it is
/// null on threads that are not ntsim's.
extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    let kthread = thread::current_ptr();
    // Pageable memory trimmed by Force IRQL Checking (`mm::paging`): below DISPATCH_LEVEL the
    // page comes back in and the instruction runs again, on any thread.
    let paging = if matches!(sig, libc::SIGSEGV | libc::SIGBUS) {
        // SAFETY: the kernel passes a valid siginfo_t to SA_SIGINFO handlers, alive for the
        // handler's duration.
        let si = unsafe { &*info };
        // SAFETY: si_addr is the valid union member for SIGSEGV and SIGBUS.
        let addr = unsafe { si.si_addr() } as usize;
        match crate::mm::paging::on_fault(addr, thread::irql()) {
            crate::mm::paging::PagingFault::PagedIn => return,
            f => f,
        }
    } else {
        crate::mm::paging::PagingFault::NotPageable
    };
    if kthread.is_null() {
        // Not an ntsim thread: hand the signal back to whoever had it, and let the faulting
        // instruction run again into that handler.
        if let Some(prev) = previous(sig) {
            // SAFETY: restoring the action saved by `install`.
            unsafe { libc::sigaction(sig, prev, core::ptr::null_mut()) };
        }
        return;
    }
    // SAFETY: a non-null current pointer is this thread's live KThread (see `ke::thread`); the
    // handler runs on the same thread, which cannot leave kernel state while it is here.
    let m = unsafe { &*kthread }.sys();
    if m.ke.is_bugged() {
        park_forever();
    }
    // SAFETY: the kernel passes a valid ucontext_t to SA_SIGINFO handlers.
    let uc = unsafe { &*(uctx as *const libc::ucontext_t) };
    let rip = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
    let err = uc.uc_mcontext.gregs[libc::REG_ERR as usize] as u64;
    // SAFETY: `info` is valid for the handler's duration.
    let info = unsafe { &*info };
    // SAFETY: si_addr is the valid union member for these signals.
    let addr = unsafe { info.si_addr() } as u64;
    // A fault in the guard region just below this thread's stack: the stack is exhausted.
    let overflow = match sig {
        libc::SIGSEGV | libc::SIGBUS => in_stack_guard(addr as usize),
        _ => None,
    };
    // In the driver's own code: report that instruction; in ntsim code servicing a driver call
    // (a bad pointer passed to an export): report the driver's call site.
    let at = if m.mm.image_of(rip).is_some() {
        rip
    } else {
        let c = thread::caller();
        if c != 0 { c } else { rip }
    };
    // Pageable memory touched at DISPATCH_LEVEL or above after a trim: 0xD1 from the driver's
    // own instruction, 0xA from ntsim's code servicing an export (ntoskrnl's, on Windows).
    if let crate::mm::paging::PagingFault::AtRaisedIrql(_) = paging {
        let write = err & 0x2 != 0;
        let execute = err & 0x10 != 0 || rip as u64 == addr;
        raise(
            m,
            m.verifier.on_pageable_fault_at_raised_irql(
                addr as usize,
                thread::irql(),
                write,
                execute,
                rip,
                m.mm.image_of(rip).is_some(),
                at,
            ),
        );
    }
    // Special pool: a guard page or a freed block's quarantined pages (0xD6 / 0xD5). Checked
    // before the driver's exception handlers see the fault: Microsoft's 0xD6 page says it
    // "cannot be protected by a try - except handler -- it can only be protected by a probe".
    if matches!(sig, libc::SIGSEGV | libc::SIGBUS)
        && overflow.is_none()
        && let Some(f) = m.mm.special.fault_at(addr as usize)
    {
        use crate::mm::special::SpecialFault;
        let write = err & 0x2 != 0;
        let bc = match f {
            SpecialFault::BeyondEnd { stricter, .. } => {
                m.verifier
                    .on_special_pool_fault(false, addr as usize, write, at, stricter)
            }
            SpecialFault::Freed { .. } => {
                m.verifier
                    .on_special_pool_fault(true, addr as usize, write, at, false)
            }
            // A device object (or extension) overrun, or used after IoDeleteDevice and its last
            // dereference: 0x50, stricter than Windows (whose freed pool may stay mapped).
            SpecialFault::SystemObject { .. } => Bc::new(
                bugcheck::PAGE_FAULT_IN_NONPAGED_AREA,
                [addr, write as u64, at as u64, 0],
            )
            .documented_only()
            .at(at),
        };
        raise(m, bc);
    }
    // A trap in driver code: emulated instruction, or an exception for the driver's handlers
    // (ke::trap). Stack overflows keep the double-fault report below.
    if overflow.is_none()
        && let crate::ke::trap::Trap::Resume =
            crate::ke::trap::on_driver_trap(m, sig, info, uctx.cast())
    {
        return;
    }
    let bc = match sig {
        libc::SIGSEGV | libc::SIGBUS if overflow.is_some() => {
            let low = overflow.unwrap_or(0);
            Bc::new(
                bugcheck::UNEXPECTED_KERNEL_MODE_TRAP,
                [
                    bugcheck::kernel_mode_trap::DOUBLE_FAULT,
                    addr,
                    low as u64,
                    rip as u64,
                ],
            )
        }
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
    raise(m, bc.at(at))
}
