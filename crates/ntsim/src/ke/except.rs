//! x64 structured exception handling over a driver image's `.pdata`/`.xdata`:
//! `RtlDispatchException` (walk the frames, call each language handler), `RtlUnwindEx` (unwind
//! to a target frame, calling termination handlers, and resume there) and the C language handler
//! `__C_specific_handler` (the scope table clang and MSVC emit for `__try/__except/__finally`).
//!
//! Semantics follow Microsoft's "x64 exception handling" reference
//! (<https://learn.microsoft.com/cpp/build/exception-handling-x64>: language-specific handler,
//! `DISPATCHER_CONTEXT`, `EXCEPTION_UNWINDING` / `EXCEPTION_TARGET_UNWIND`) and the documented
//! `__try/__except` filter values (`EXCEPTION_EXECUTE_HANDLER` 1 → unwind to the `__except`
//! block with the exception code in EAX; `EXCEPTION_CONTINUE_SEARCH` 0; `EXCEPTION_CONTINUE_EXECUTION`
//! −1 → resume at the faulting instruction; a non-continuable exception continued raises
//! `STATUS_NONCONTINUABLE_EXCEPTION`).
//!
//! Frames that are not in a loaded image are ntsim's own (the host call that entered the driver,
//! or ntsim's dispatcher running a filter or `__finally`). The walk never looks inside them: it
//! ends at the first one (nobody handled the exception) unless an outer exception is being
//! dispatched on this thread, in which case it continues with the frames of that outer
//! exception (`EXCEPTION_NESTED_CALL`), as Windows' dispatcher does when a filter faults.
#![allow(non_snake_case)]

use std::cell::RefCell;

use nt_abi::*;

use crate::machine::System;
use crate::rtl::unwind::{self, Mem};

/// Exceptions being dispatched on this thread, innermost last: the addresses of their original
/// contexts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Active {
    pub ctx: usize,
}

thread_local! {
    pub(crate) static ACTIVE: RefCell<Vec<Active>> = const { RefCell::new(Vec::new()) };
}

/// Reads of loaded images and of the calling thread's stack.
pub(crate) struct LiveMem<'a> {
    pub m: &'a System,
    pub stack: (usize, usize),
}

impl Mem for LiveMem<'_> {
    fn read(&self, addr: u64, out: &mut [u8]) -> Option<()> {
        let a = addr as usize;
        let end = a.checked_add(out.len())?;
        let in_stack = a >= self.stack.0 && end <= self.stack.1;
        let in_image = self
            .m
            .mm
            .image_of(a)
            .is_some_and(|img| end <= img.base + img.size);
        if !in_stack && !in_image {
            return None;
        }
        // SAFETY: the range lies inside this thread's stack or a mapped driver image (checked
        // above); both stay mapped while this thread runs.
        unsafe { core::ptr::copy_nonoverlapping(a as *const u8, out.as_mut_ptr(), out.len()) };
        Some(())
    }
}

/// `(pdata rva, size)` of a mapped image, read from its PE headers in memory.
pub(crate) fn exception_directory(mem: &impl Mem, base: u64) -> Option<(u32, u32)> {
    let lfanew = mem.u32(base + 0x3C)? as u64;
    if mem.u32(base + lfanew)? != 0x0000_4550 {
        return None;
    }
    let oh = base + lfanew + 24;
    if mem.u16(oh)? != 0x20B {
        return None;
    }
    let n = mem.u32(oh + 108)? as usize;
    if n <= IMAGE_DIRECTORY_ENTRY_EXCEPTION {
        return None;
    }
    let d = oh + 112 + IMAGE_DIRECTORY_ENTRY_EXCEPTION as u64 * 8;
    let (rva, size) = (mem.u32(d)?, mem.u32(d + 4)?);
    (rva != 0 && size != 0).then_some((rva, size))
}

/// One step of a frame walk.
enum Step {
    /// A driver frame: its function entry (None for a leaf function) and image base.
    Frame(Option<RUNTIME_FUNCTION>, u64),
    /// ntsim code: continue with this outer exception's context, or stop.
    Host(Option<Box<CONTEXT>>),
}

fn step(m: &System, mem: &LiveMem<'_>, ctx: &CONTEXT) -> Step {
    let pc = ctx.Rip as usize;
    match m.mm.image_of(pc) {
        Some(img) => {
            let base = img.base as u64;
            let rf = exception_directory(mem, base).and_then(|(rva, size)| {
                unwind::lookup_function_entry(mem, base, rva, size, ctx.Rip)
            });
            Step::Frame(rf, base)
        }
        None => {
            let outer = ACTIVE.with(|a| {
                a.borrow()
                    .iter()
                    .rev()
                    .map(|e| e.ctx)
                    // SAFETY: ACTIVE holds contexts of exceptions being dispatched on this thread;
                    // their frames are above the current stack pointer and still live.
                    .map(|c| unsafe { *(c as *const CONTEXT) })
                    .find(|c| c.Rsp > ctx.Rsp)
                    .map(Box::new)
            });
            Step::Host(outer)
        }
    }
}

/// Unwind a leaf function (no `.pdata` entry): the return address is at RSP.
fn leaf(mem: &LiveMem<'_>, ctx: &mut CONTEXT) -> Option<()> {
    ctx.Rip = mem.u64(ctx.Rsp)?;
    ctx.Rsp += 8;
    Some(())
}

/// What `rtl_dispatch_exception` concluded.
pub(crate) enum Dispatch {
    /// A handler returned `ExceptionContinueExecution`: resume with the (possibly edited)
    /// context.
    Continue,
    /// No handler took it.
    Unhandled,
}

fn call_handler(
    routine: u64,
    rec: *mut EXCEPTION_RECORD,
    frame: u64,
    ctx: *mut CONTEXT,
    dc: *mut DISPATCHER_CONTEXT,
) -> EXCEPTION_DISPOSITION {
    // SAFETY: `routine` is the language handler named by the image's own unwind info (inside a
    // loaded image, checked by the caller's walk); it is called with the x64 handler ABI.
    let f = unsafe { core::mem::transmute::<usize, EXCEPTION_ROUTINE>(routine as usize) };
    // SAFETY: the records and contexts are live for the call; the handler is driver (or ntsim
    // `__C_specific_handler`) code following the documented contract.
    unsafe { f(rec, frame, ctx, dc) }
}

/// `RtlDispatchException`: find a frame whose handler takes the exception.
pub(crate) fn rtl_dispatch_exception(
    m: &System,
    rec: &mut EXCEPTION_RECORD,
    ctx: &mut CONTEXT,
) -> Dispatch {
    let mem = LiveMem {
        m,
        stack: crate::mm::stack_bounds(),
    };
    let mut walk = *ctx;
    let mut nested = false;
    for _ in 0..4096 {
        match step(m, &mem, &walk) {
            Step::Host(Some(outer)) => {
                walk = *outer;
                nested = true;
                continue;
            }
            Step::Host(None) => return Dispatch::Unhandled,
            Step::Frame(None, _) => {
                if leaf(&mem, &mut walk).is_none() {
                    return Dispatch::Unhandled;
                }
            }
            Step::Frame(Some(mut rf), base) => {
                let pc = walk.Rip;
                let mut next = walk;
                let Ok(u) =
                    unwind::virtual_unwind(&mem, UNW_FLAG_EHANDLER, base, pc, &rf, &mut next)
                else {
                    rec.ExceptionFlags |= EXCEPTION_STACK_INVALID;
                    return Dispatch::Unhandled;
                };
                let (lo, hi) = mem.stack;
                if u.establisher_frame & 7 != 0
                    || (u.establisher_frame as usize) < lo
                    || (u.establisher_frame as usize) >= hi
                {
                    rec.ExceptionFlags |= EXCEPTION_STACK_INVALID;
                    return Dispatch::Unhandled;
                }
                if let Some(h) = u.handler {
                    if !m.mm.is_image_code(h.routine as usize) {
                        // Unwind info naming a handler outside the image's code.
                        rec.ExceptionFlags |= EXCEPTION_STACK_INVALID;
                        return Dispatch::Unhandled;
                    }
                    if nested {
                        rec.ExceptionFlags |= EXCEPTION_NESTED_CALL;
                    }
                    let mut dc = DISPATCHER_CONTEXT {
                        ControlPc: pc,
                        ImageBase: base,
                        FunctionEntry: &mut rf,
                        EstablisherFrame: u.establisher_frame,
                        TargetIp: 0,
                        ContextRecord: ctx,
                        LanguageHandler: h.routine as PVOID,
                        HandlerData: h.data as PVOID,
                        HistoryTable: core::ptr::null_mut(),
                        ScopeIndex: 0,
                        Fill0: 0,
                    };
                    let disp = call_handler(h.routine, rec, u.establisher_frame, ctx, &mut dc);
                    rec.ExceptionFlags &= !EXCEPTION_NESTED_CALL;
                    match disp {
                        EXCEPTION_CONTINUE_EXECUTION_DISPOSITION => {
                            if rec.ExceptionFlags & EXCEPTION_NONCONTINUABLE != 0 {
                                // Continuing a non-continuable exception is itself an exception.
                                rec.ExceptionCode = STATUS_NONCONTINUABLE_EXCEPTION;
                                return Dispatch::Unhandled;
                            }
                            return Dispatch::Continue;
                        }
                        EXCEPTION_CONTINUE_SEARCH_DISPOSITION => {}
                        _ => {
                            rec.ExceptionCode = STATUS_INVALID_DISPOSITION;
                            return Dispatch::Unhandled;
                        }
                    }
                }
                walk = next;
            }
        }
    }
    Dispatch::Unhandled
}

/// Why an unwind could not reach its target.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BadUnwind;

/// `RtlUnwindEx`'s walk: starting at `start` (the innermost context of the exception being
/// handled), unwind frame by frame to `target_frame`, calling every termination handler on the
/// way (`EXCEPTION_UNWINDING`, plus `EXCEPTION_TARGET_UNWIND` at the target), and return the
/// target frame's context with `Rip = target_ip`, `Rax = return_value`.
pub(crate) fn unwind_to(
    m: &System,
    start: &CONTEXT,
    target_frame: u64,
    target_ip: u64,
    rec: &mut EXCEPTION_RECORD,
    return_value: u64,
) -> Result<CONTEXT, BadUnwind> {
    let mem = LiveMem {
        m,
        stack: crate::mm::stack_bounds(),
    };
    rec.ExceptionFlags |= EXCEPTION_UNWINDING;
    if target_frame == 0 {
        rec.ExceptionFlags |= EXCEPTION_EXIT_UNWIND;
    }
    let mut walk = *start;
    for _ in 0..4096 {
        match step(m, &mem, &walk) {
            Step::Host(Some(outer)) => {
                walk = *outer;
                continue;
            }
            Step::Host(None) => return Err(BadUnwind),
            Step::Frame(None, _) => {
                leaf(&mem, &mut walk).ok_or(BadUnwind)?;
            }
            Step::Frame(Some(mut rf), base) => {
                let pc = walk.Rip;
                let mut next = walk;
                let u = unwind::virtual_unwind(&mem, UNW_FLAG_UHANDLER, base, pc, &rf, &mut next)
                    .map_err(|_| BadUnwind)?;
                if target_frame != 0 && u.establisher_frame > target_frame {
                    return Err(BadUnwind);
                }
                let at_target = u.establisher_frame == target_frame;
                if at_target {
                    rec.ExceptionFlags |= EXCEPTION_TARGET_UNWIND;
                }
                if let Some(h) = u.handler {
                    if !m.mm.is_image_code(h.routine as usize) {
                        return Err(BadUnwind);
                    }
                    let mut here = walk;
                    let mut dc = DISPATCHER_CONTEXT {
                        ControlPc: pc,
                        ImageBase: base,
                        FunctionEntry: &mut rf,
                        EstablisherFrame: u.establisher_frame,
                        TargetIp: target_ip,
                        ContextRecord: &mut here,
                        LanguageHandler: h.routine as PVOID,
                        HandlerData: h.data as PVOID,
                        HistoryTable: core::ptr::null_mut(),
                        ScopeIndex: 0,
                        Fill0: 0,
                    };
                    call_handler(h.routine, rec, u.establisher_frame, &mut here, &mut dc);
                }
                if at_target {
                    let mut out = walk;
                    out.Rip = target_ip;
                    out.Rax = return_value;
                    rec.ExceptionFlags &= !(EXCEPTION_UNWINDING | EXCEPTION_TARGET_UNWIND);
                    return Ok(out);
                }
                walk = next;
            }
        }
    }
    Err(BadUnwind)
}

/// `__C_specific_handler`: the language handler for `__try/__except/__finally` (one scope-table
/// entry per guarded range, innermost first).
///
/// While dispatching, the first entry whose range holds the frame's `ControlPc` and that has an
/// `__except` (`JumpTarget != 0`) runs its filter (`HandlerAddress`, or the constant 1); a
/// positive result unwinds to the `__except` block (`RtlUnwindEx` with the exception code as the
/// return value, which the block finds in EAX), −1 continues execution, 0 keeps looking. While
/// unwinding, each `__finally` (`JumpTarget == 0`) whose range holds `ControlPc` runs with
/// `AbnormalTermination` = TRUE, `DISPATCHER_CONTEXT.ScopeIndex` recording progress; the walk stops
/// at the scope that contains the unwind target.
///
/// # Safety
/// Called by the exception dispatcher with live records, as the x64 handler ABI specifies.
pub unsafe extern "win64" fn __C_specific_handler(
    ExceptionRecord: *mut EXCEPTION_RECORD,
    EstablisherFrame: PVOID,
    ContextRecord: *mut CONTEXT,
    DispatcherContext: *mut DISPATCHER_CONTEXT,
) -> EXCEPTION_DISPOSITION {
    let m = super::thread::current();
    // SAFETY: the dispatcher passes valid, exclusive pointers for the duration of the call.
    let dc = unsafe { &mut *DispatcherContext };
    // SAFETY: as above.
    let rec = unsafe { &mut *ExceptionRecord };
    let base = dc.ImageBase;
    let pc = dc.ControlPc.wrapping_sub(base);
    let table = dc.HandlerData as *const SCOPE_TABLE;
    let mem = LiveMem {
        m: &m,
        stack: crate::mm::stack_bounds(),
    };
    let Some(count) = mem.u32(table as u64) else {
        return EXCEPTION_CONTINUE_SEARCH_DISPOSITION;
    };
    let scope = |i: u32| -> Option<SCOPE_RECORD> {
        let a = table as u64 + 4 + i as u64 * 16;
        Some(SCOPE_RECORD {
            BeginAddress: mem.u32(a)?,
            EndAddress: mem.u32(a + 4)?,
            HandlerAddress: mem.u32(a + 8)?,
            JumpTarget: mem.u32(a + 12)?,
        })
    };
    let frame = EstablisherFrame as u64;
    if rec.ExceptionFlags & EXCEPTION_UNWIND == 0 {
        let mut i = dc.ScopeIndex;
        while i < count.min(4096) {
            let Some(s) = scope(i) else { break };
            i += 1;
            let inside = pc >= s.BeginAddress as u64 && pc < s.EndAddress as u64;
            if !inside || s.JumpTarget == 0 {
                continue;
            }
            let verdict = if s.HandlerAddress == EXCEPTION_EXECUTE_HANDLER as u32 {
                EXCEPTION_EXECUTE_HANDLER
            } else {
                let mut ptrs = EXCEPTION_POINTERS {
                    ExceptionRecord,
                    ContextRecord,
                };
                let filter = base + s.HandlerAddress as u64;
                if !m.mm.is_image_code(filter as usize) {
                    continue;
                }
                // SAFETY: the filter is a function of the driver image named by its scope
                // table (checked to be image code), called as `LONG filter(EXCEPTION_POINTERS*,
                // PVOID EstablisherFrame)`.
                let f = unsafe { core::mem::transmute::<usize, EXCEPTION_FILTER>(filter as usize) };
                // SAFETY: `ptrs` and the records it points to outlive the call.
                unsafe { f(&mut ptrs, frame) }
            };
            if verdict < 0 {
                return EXCEPTION_CONTINUE_EXECUTION_DISPOSITION;
            }
            if verdict > 0 {
                let target_ip = base + s.JumpTarget as u64;
                // SAFETY: ContextRecord is the exception's original context, live for the
                // dispatch.
                let start = unsafe { *dc.ContextRecord };
                let code = rec.ExceptionCode as u32 as u64;
                super::trap::unwind_and_resume(&m, &start, frame, target_ip, rec, code);
            }
        }
    } else {
        let target = dc.TargetIp.wrapping_sub(base);
        let target_unwind = rec.ExceptionFlags & EXCEPTION_TARGET_UNWIND != 0;
        let mut i = dc.ScopeIndex;
        while i < count.min(4096) {
            let Some(s) = scope(i) else { break };
            i += 1;
            let inside = pc >= s.BeginAddress as u64 && pc < s.EndAddress as u64;
            if !inside {
                continue;
            }
            if target_unwind && target >= s.BeginAddress as u64 && target < s.EndAddress as u64 {
                break;
            }
            if s.JumpTarget != 0 {
                if target_unwind && target == s.JumpTarget as u64 {
                    break;
                }
                continue;
            }
            let handler = base + s.HandlerAddress as u64;
            if !m.mm.is_image_code(handler as usize) {
                continue;
            }
            dc.ScopeIndex = i;
            // SAFETY: a `__finally` block of the driver image (checked to be image code), called
            // as `void handler(BOOLEAN AbnormalTermination, PVOID EstablisherFrame)`.
            let f = unsafe { core::mem::transmute::<usize, TERMINATION_HANDLER>(handler as usize) };
            // SAFETY: the frame it refers to is still on the stack (unwinding has not yet
            // passed it).
            unsafe { f(1, frame) };
        }
    }
    EXCEPTION_CONTINUE_SEARCH_DISPOSITION
}
