//! The kernel's hook for a kernel debugger (`KiDebugRoutine`).
//!
//! `KiDispatchException` gives a kernel debugger the first chance at every kernel-mode
//! exception, before any frame-based handler runs (Microsoft, "Handling Exceptions":
//! <https://learn.microsoft.com/windows-hardware/drivers/kernel/handling-exceptions>; ReactOS
//! `ntoskrnl/ke/amd64/except.c`, `KiDispatchException` → `KiDebugRoutine`). The debugger itself
//! lives above the kernel (`dbg::kd`); the composition root registers it here, so `ke` calls
//! up only through this function pointer.
use std::sync::OnceLock;

use nt_abi::{CONTEXT, EXCEPTION_RECORD};

use crate::machine::System;

/// `KiDebugRoutine`: true when the debugger handled the exception (execution continues with
/// `ctx`, which the routine may have edited).
pub(crate) type DebugRoutine = fn(&System, &EXCEPTION_RECORD, &mut CONTEXT) -> bool;

static ROUTINE: OnceLock<DebugRoutine> = OnceLock::new();

/// Register the kernel debugger (once per process; every machine shares the routine, which
/// looks at the machine it is given).
pub(crate) fn set_debug_routine(f: DebugRoutine) {
    let _ = ROUTINE.set(f);
}

/// The debugger's first chance at `rec` (false: dispatch it to the frame handlers).
pub(crate) fn first_chance(m: &System, rec: &EXCEPTION_RECORD, ctx: &mut CONTEXT) -> bool {
    ROUTINE.get().is_some_and(|f| f(m, rec, ctx))
}
