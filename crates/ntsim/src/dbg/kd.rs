//! The kernel debugger, optionally attached (`Config::debugger`, `ntsim run --debugger`).
//!
//! **Attached** — as WinDbg attached to the target and answering every break with "ignore"
//! (`g`): the debugger has the first chance at each kernel-mode exception
//! (`KiDispatchException` → `KiDebugRoutine`, registered in `ke::kd`). A breakpoint — `int3`
//! (`__debugbreak`, and mingw-w64's inline `DbgBreakPoint`), the `DbgBreakPoint` and
//! `DbgBreakPointWithStatus` exports, a checked build's `KdBreakPoint` — is printed as WinDbg
//! prints it ("Break instruction exception - code 80000003 (first chance)") and execution
//! continues after the breakpoint; `int 2Ch` (`NT_ASSERT`'s `DbgRaiseAssertionFailure`) is
//! "Assertion failure - code c0000420 (first chance)" and continues after it; `RtlAssert`
//! (what `ASSERT`/`ASSERTMSG` call in a checked build) prints the assertion and its
//! `Break repeatedly, break Once, Ignore, terminate Process or terminate Thread (boipt)?`
//! prompt, and returns (ignore). Frame-based handlers never see these exceptions (the
//! debugger handled them first). Other exceptions are left to the frame handlers, and one
//! nobody handles is the same bug check as without a debugger.
//!
//! **Not attached** (the default), Windows' behaviour with no kernel debugger: a breakpoint is
//! an ordinary STATUS_BREAKPOINT exception — a driver's `__except` may handle it, and unhandled
//! it is the bug check of the thread it happened on with p1 = 0x80000003 (0x7E in DriverEntry,
//! DriverUnload and work-item routines; 0x3B in a dispatch routine; 0x1E elsewhere) — Microsoft
//! "Bug Check 0x1E" ("0x80000003 STATUS_BREAKPOINT: a breakpoint or ASSERT was encountered when
//! no kernel debugger was attached to the system",
//! <https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x1e--kmode-exception-not-handled>)
//! and "Bug Check 0x7E" (<https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x7e--system-thread-exception-not-handled>).
//! A failed `ASSERT` (`RtlAssert`) prints the assertion and then raises STATUS_BREAKPOINT from
//! its caller (its debugger prompt finds no debugger), so it ends the same way; ntsim reports
//! the driver's call site as the address (Windows' is inside ntoskrnl). `NT_ASSERT` raises
//! STATUS_ASSERTION_FAILURE (0xC0000420), which unhandled is that code's bug check.
//!
//! The `Kd*` routines follow their pages: `KdDisableDebugger` / `KdEnableDebugger` return
//! STATUS_DEBUGGER_INACTIVE with no debugger, STATUS_ACCESS_DENIED while `KdBlockEnable` is set
//! (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kddisabledebugger>,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kdenabledebugger>), and
//! nest (a disabled debugger behaves as an absent one until as many enables; an enable with
//! nothing disabled is STATUS_INVALID_PARAMETER, as ReactOS `KdEnableDebuggerWithLock`);
//! `KdChangeOption` (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kdchangeoption>)
//! takes only `KD_OPTION_SET_BLOCK_ENABLE` with a one-byte BOOLEAN input and no output.
#![allow(non_snake_case)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use nt_abi::dbg::*;
use nt_abi::*;

use crate::ke::thread;
use crate::ke::trap::{self, CaptureImpl, capture_entry};
use crate::machine::{System, lock};

/// What the attached debugger saw (the report's `debugger` list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebuggerEvent {
    /// `breakpoint`, `assertion` (RtlAssert), `assertion_failure` (int 2Ch / NT_ASSERT) or
    /// `prompt` (DbgPrompt).
    pub kind: String,
    /// The exception code (0x80000003, 0xC0000420; 0 for a prompt).
    pub code: u32,
    /// Where: `image.sys+0x…` (the breakpoint itself, or the caller of the export).
    pub address: String,
    /// What the thread was running (`DriverEntry`, `IRP_MJ_… dispatch`, …).
    pub context: String,
    /// What WinDbg would print, and what ntsim answered.
    pub text: String,
    /// RtlAssert: the failed expression, source file, line and message (if any).
    pub expression: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub message: Option<String>,
}

/// The kernel debugger's state in one machine.
pub(crate) struct Kd {
    attached: bool,
    /// `KdDisableDebugger` nesting.
    disabled: AtomicU32,
    /// `KdBlockEnable`.
    block_enable: AtomicU8,
    events: Mutex<Vec<DebuggerEvent>>,
}

impl Kd {
    pub(crate) fn new(attached: bool) -> Kd {
        Kd {
            attached,
            disabled: AtomicU32::new(0),
            block_enable: AtomicU8::new(0),
            events: Mutex::new(Vec::new()),
        }
    }

    /// Attached and not disabled: breakpoints go to the debugger.
    pub(crate) fn active(&self) -> bool {
        self.attached && self.disabled.load(Ordering::Relaxed) == 0
    }

    /// Everything the debugger saw so far.
    pub(crate) fn events(&self) -> Vec<DebuggerEvent> {
        lock(&self.events).clone()
    }

    fn push(&self, e: DebuggerEvent) {
        lock(&self.events).push(e);
    }
}

fn event(m: &System, kind: &str, code: u32, addr: u64, text: String) -> DebuggerEvent {
    DebuggerEvent {
        kind: kind.to_string(),
        code,
        address: m.mm.describe_address(addr as usize),
        context: thread::context().to_string(),
        text,
        expression: None,
        file: None,
        line: None,
        message: None,
    }
}

/// `KdpTrap`: the attached debugger's first chance at an exception (see the module docs).
/// Registered as `ke::kd`'s debug routine.
pub(crate) fn kdp_trap(m: &System, rec: &EXCEPTION_RECORD, ctx: &mut CONTEXT) -> bool {
    if !m.dbg.kd.active() {
        return false;
    }
    let addr = rec.ExceptionAddress as u64;
    match rec.ExceptionCode {
        STATUS_BREAKPOINT => {
            // An `int3` in driver code is reported at the instruction; continuing resumes
            // after it, as WinDbg steps over a hard-coded breakpoint. A breakpoint raised by
            // an export (DbgBreakPoint) already has the caller's return address as RIP.
            if ctx.Rip == addr && m.mm.image_of(addr as usize).is_some() {
                // SAFETY: `addr` lies in a mapped image (checked above): the breakpoint's bytes.
                let b0 = unsafe { *(addr as *const u8) };
                if b0 == 0xCC {
                    ctx.Rip += 1;
                } else if b0 == 0xCD && m.mm.image_of(addr as usize + 1).is_some() {
                    // SAFETY: as above, the next byte of the same image.
                    if unsafe { *((addr + 1) as *const u8) } == 0x03 {
                        ctx.Rip += 2;
                    }
                }
            }
            m.dbg.kd.push(event(
                m,
                "breakpoint",
                STATUS_BREAKPOINT as u32,
                addr,
                "Break instruction exception - code 80000003 (first chance); continued (g)"
                    .to_string(),
            ));
            true
        }
        STATUS_ASSERTION_FAILURE => {
            // `int 2Ch`: the record's RIP is already past the instruction.
            m.dbg.kd.push(event(
                m,
                "assertion_failure",
                STATUS_ASSERTION_FAILURE as u32,
                addr,
                "Assertion failure - code c0000420 (first chance); ignored (g)".to_string(),
            ));
            true
        }
        _ => false,
    }
}

capture_entry!("ntsim_RtlAssert", rtl_assert);
capture_entry!("ntsim_DbgBreakPointWithStatus", dbg_break_point_with_status);

const _: [CaptureImpl; 2] = [rtl_assert, dbg_break_point_with_status];

unsafe extern "win64" {
    /// `VOID RtlAssert(PVOID FailedAssertion, PVOID FileName, ULONG LineNumber, PCHAR
    /// Message)` (Microsoft: <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlassert>;
    /// see the module docs for what happens with and without a debugger).
    #[link_name = "ntsim_RtlAssert"]
    pub fn RtlAssert(FailedAssertion: PVOID, FileName: PVOID, LineNumber: ULONG, Message: *mut u8);
    /// `VOID DbgBreakPointWithStatus(ULONG Status)`: a breakpoint with `Status` in RCX
    /// (Microsoft: <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-dbgbreakpointwithstatus>).
    #[link_name = "ntsim_DbgBreakPointWithStatus"]
    pub fn DbgBreakPointWithStatus(Status: ULONG);
}

/// A driver string argument, or `fallback` when it is null or unreadable.
fn cstr(p: u64, fallback: &str) -> String {
    // SAFETY: a NUL-terminated string the driver passed, per the export's contract (null is
    // handled by read_cstr); a wild pointer faults in ntsim's code, reported at the call site.
    match unsafe { crate::rtl::read_cstr(p as *const u8) } {
        Some(b) if p != 0 => String::from_utf8_lossy(&b).into_owned(),
        _ => fallback.to_string(),
    }
}

fn breakpoint_without_debugger(ctx: *mut CONTEXT) -> ! {
    // SAFETY: the capture entry's own CONTEXT copy, live and exclusive for this call.
    let c = unsafe { &mut *ctx };
    let mut rec = trap::record(STATUS_BREAKPOINT, 0, c.Rip, &[BREAKPOINT_BREAK as u64]);
    trap::dispatch_exception(&mut rec, c)
}

extern "win64" fn rtl_assert(expr: u64, file: u64, line: u64, msg: u64, ctx: *mut CONTEXT) {
    let m = thread::current();
    let expression = cstr(expr, "(null)");
    let file = cstr(file, "(null)");
    let message = (msg != 0).then(|| cstr(msg, ""));
    let line = line as u32;
    // What RtlAssert prints through DbgPrint (ReactOS `sdk/lib/rtl/assert.c` has the same
    // shape): always recorded, whatever the filter masks.
    m.dbg.emit(&format!(
        "*** Assertion failed: {}{expression}\n***   Source File: {file}, line {line}\n",
        message.as_deref().unwrap_or("")
    ));
    // SAFETY: the capture entry's CONTEXT copy.
    let rip = unsafe { (*ctx).Rip };
    if !m.dbg.kd.active() {
        breakpoint_without_debugger(ctx)
    }
    let mut e = event(
        &m,
        "assertion",
        STATUS_BREAKPOINT as u32,
        rip,
        format!(
            "Assertion failed: {expression}, file {file}, line {line}; Break repeatedly, \
             break Once, Ignore, terminate Process or terminate Thread (boipt)? i"
        ),
    );
    e.expression = Some(expression);
    e.file = Some(file);
    e.line = Some(line);
    e.message = message;
    m.dbg.kd.push(e);
}

extern "win64" fn dbg_break_point_with_status(
    status: u64,
    _: u64,
    _: u64,
    _: u64,
    ctx: *mut CONTEXT,
) {
    let m = thread::current();
    if !m.dbg.kd.active() {
        breakpoint_without_debugger(ctx)
    }
    // SAFETY: the capture entry's CONTEXT copy.
    let rip = unsafe { (*ctx).Rip };
    m.dbg.kd.push(event(
        &m,
        "breakpoint",
        STATUS_BREAKPOINT as u32,
        rip,
        format!(
            "Break instruction exception - code 80000003 (first chance), status {:#x}; \
             continued (g)",
            status as u32
        ),
    ));
}

/// `ULONG DbgPrompt(PCCH Prompt, PCH Response, ULONG Length)`: with a debugger attached the
/// prompt is shown and, ntsim having no one to type, the response is empty: returns 0 and
/// leaves `Response` untouched; with none there is nothing to ask: 0 (Microsoft:
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/ntddk/nf-ntddk-dbgprompt>).
///
/// # Safety
/// `Prompt` null or NUL-terminated (`Response` is never written).
pub unsafe extern "win64" fn DbgPrompt(
    Prompt: *const u8,
    Response: *mut u8,
    Length: ULONG,
) -> ULONG {
    let _ = (Response, Length);
    let m = thread::current();
    if m.dbg.kd.active() {
        let text = cstr(Prompt as u64, "");
        let addr = thread::caller() as u64;
        m.dbg
            .kd
            .push(event(&m, "prompt", 0, addr, format!("{text} (no input)")));
    }
    0
}

/// `BOOLEAN KdRefreshDebuggerNotPresent(void)`: TRUE when no kernel debugger is attached (or
/// it is disabled) (Microsoft:
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kdrefreshdebuggernotpresent>).
pub extern "win64" fn KdRefreshDebuggerNotPresent() -> BOOLEAN {
    (!thread::current().dbg.kd.active()) as BOOLEAN
}

/// `NTSTATUS KdDisableDebugger(void)` (see the module docs).
pub extern "win64" fn KdDisableDebugger() -> NTSTATUS {
    let m = thread::current();
    let kd = &m.dbg.kd;
    if !kd.attached {
        STATUS_DEBUGGER_INACTIVE
    } else if kd.block_enable.load(Ordering::Relaxed) != 0 {
        STATUS_ACCESS_DENIED
    } else {
        kd.disabled.fetch_add(1, Ordering::Relaxed);
        STATUS_SUCCESS
    }
}

/// `NTSTATUS KdEnableDebugger(void)` (see the module docs).
pub extern "win64" fn KdEnableDebugger() -> NTSTATUS {
    let m = thread::current();
    let kd = &m.dbg.kd;
    if !kd.attached {
        STATUS_DEBUGGER_INACTIVE
    } else if kd.block_enable.load(Ordering::Relaxed) != 0 {
        STATUS_ACCESS_DENIED
    } else if kd
        .disabled
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
    {
        STATUS_SUCCESS
    } else {
        STATUS_INVALID_PARAMETER
    }
}

/// `NTSTATUS KdChangeOption(KD_OPTION Option, ULONG InBufferBytes, PVOID InBuffer, ULONG
/// OutBufferBytes, PVOID OutBuffer, PULONG OutBufferNeeded)` (see the module docs): sets
/// `KdBlockEnable` to the BOOLEAN at `InBuffer`; once its high bit (0x80) is set it can never
/// change again (STATUS_ACCESS_DENIED).
///
/// # Safety
/// `InBuffer` null or pointing at `InBufferBytes` readable bytes.
pub unsafe extern "win64" fn KdChangeOption(
    Option: ULONG,
    InBufferBytes: ULONG,
    InBuffer: PVOID,
    OutBufferBytes: ULONG,
    OutBuffer: PVOID,
    OutBufferNeeded: *mut ULONG,
) -> NTSTATUS {
    let _ = OutBufferNeeded;
    let m = thread::current();
    let kd = &m.dbg.kd;
    if !kd.attached {
        return STATUS_DEBUGGER_INACTIVE;
    }
    if Option != KD_OPTION_SET_BLOCK_ENABLE {
        return STATUS_INVALID_INFO_CLASS;
    }
    if InBufferBytes as usize != core::mem::size_of::<BOOLEAN>()
        || InBuffer.is_null()
        || OutBufferBytes != 0
        || !OutBuffer.is_null()
    {
        return STATUS_INVALID_PARAMETER;
    }
    if kd.block_enable.load(Ordering::Relaxed) & 0x80 != 0 {
        return STATUS_ACCESS_DENIED;
    }
    // SAFETY: InBuffer is a non-null BOOLEAN the caller passed (one byte, checked above).
    let v = unsafe { *(InBuffer as *const u8) };
    kd.block_enable.store(v, Ordering::Relaxed);
    STATUS_SUCCESS
}
