//! Raising exceptions from driver calls: `ExRaiseStatus` and friends, `RtlRaiseException`,
//! `ProbeForRead`/`ProbeForWrite`, `DbgBreakPoint`, and the driver-callable `RtlUnwind(Ex)`.
//!
//! Each export's entry (`ke::trap::capture_entry!`) captures the caller's register state as a
//! CONTEXT — as if the export had returned — and the exception is dispatched from there, so
//! `ExceptionAddress` is the driver's return address and `__except` blocks resume in the
//! driver's frame (Windows' `RtlRaiseException` likewise reports its caller's context).
//!
//! - `ExRaiseStatus(Status)`: a non-continuable exception with that code (Microsoft:
//!   <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exraisestatus>);
//!   `ExRaiseAccessViolation` / `ExRaiseDatatypeMisalignment` raise STATUS_ACCESS_VIOLATION /
//!   STATUS_DATATYPE_MISALIGNMENT the same way.
//! - `ProbeForRead(Address, Length, Alignment)` / `ProbeForWrite`: nothing when `Length` is 0;
//!   STATUS_DATATYPE_MISALIGNMENT when `Address` is not a multiple of `Alignment`;
//!   STATUS_ACCESS_VIOLATION when the range wraps or is not a user-mode range — it reaches
//!   `MmUserProbeAddress` or lies in memory ntsim knows as kernel memory (pool, system buffers,
//!   images, stacks) (Microsoft:
//!   <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-probeforread>,
//!   <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-probeforwrite>).
//!   ntsim does not touch the pages (Windows' ProbeForWrite writes each one); a bad page faults
//!   on the driver's own access, which is the same exception.
//! - `DbgBreakPoint`: STATUS_BREAKPOINT (continuable) at the caller's return address; with no
//!   debugger it is a bug check unless the driver handles it.
#![allow(non_snake_case)]

use nt_abi::*;

use crate::ke::trap::{self, CaptureImpl, capture_entry, dispatch_exception, record};

capture_entry!("ntsim_ExRaiseStatus", ex_raise_status);
capture_entry!("ntsim_ExRaiseAccessViolation", ex_raise_access_violation);
capture_entry!(
    "ntsim_ExRaiseDatatypeMisalignment",
    ex_raise_datatype_misalignment
);
capture_entry!("ntsim_ProbeForRead", probe_for_read);
capture_entry!("ntsim_ProbeForWrite", probe_for_write);
capture_entry!("ntsim_DbgBreakPoint", dbg_break_point);
capture_entry!("ntsim_RtlRaiseException", rtl_raise_exception);
capture_entry!("ntsim_RtlUnwind", rtl_unwind);
capture_entry!("ntsim_RtlUnwindEx", rtl_unwind_ex);

// Keep the implementations' signatures in one place.
const _: [CaptureImpl; 9] = [
    ex_raise_status,
    ex_raise_access_violation,
    ex_raise_datatype_misalignment,
    probe_for_read,
    probe_for_write,
    dbg_break_point,
    rtl_raise_exception,
    rtl_unwind,
    rtl_unwind_ex,
];

unsafe extern "win64" {
    /// `ExRaiseStatus`.
    #[link_name = "ntsim_ExRaiseStatus"]
    pub fn ExRaiseStatus(Status: NTSTATUS) -> !;
    /// `ExRaiseAccessViolation`.
    #[link_name = "ntsim_ExRaiseAccessViolation"]
    pub fn ExRaiseAccessViolation() -> !;
    /// `ExRaiseDatatypeMisalignment`.
    #[link_name = "ntsim_ExRaiseDatatypeMisalignment"]
    pub fn ExRaiseDatatypeMisalignment() -> !;
    /// `ProbeForRead`.
    #[link_name = "ntsim_ProbeForRead"]
    pub fn ProbeForRead(Address: PVOID, Length: SIZE_T, Alignment: ULONG);
    /// `ProbeForWrite`.
    #[link_name = "ntsim_ProbeForWrite"]
    pub fn ProbeForWrite(Address: PVOID, Length: SIZE_T, Alignment: ULONG);
    /// `DbgBreakPoint`.
    #[link_name = "ntsim_DbgBreakPoint"]
    pub fn DbgBreakPoint();
    /// `RtlRaiseException`.
    #[link_name = "ntsim_RtlRaiseException"]
    pub fn RtlRaiseException(ExceptionRecord: *mut EXCEPTION_RECORD);
    /// `RtlUnwind`.
    #[link_name = "ntsim_RtlUnwind"]
    pub fn RtlUnwind(
        TargetFrame: PVOID,
        TargetIp: PVOID,
        ExceptionRecord: *mut EXCEPTION_RECORD,
        ReturnValue: PVOID,
    );
    /// `RtlUnwindEx`.
    #[link_name = "ntsim_RtlUnwindEx"]
    pub fn RtlUnwindEx(
        TargetFrame: PVOID,
        TargetIp: PVOID,
        ExceptionRecord: *mut EXCEPTION_RECORD,
        ReturnValue: PVOID,
        ContextRecord: *mut CONTEXT,
        HistoryTable: PVOID,
    );
}

fn ctx_of<'a>(ctx: *mut CONTEXT) -> &'a mut CONTEXT {
    // SAFETY: the capture entry passes its own stack copy of the caller's context, live and
    // exclusive until the implementation returns (or for good, when it never returns).
    unsafe { &mut *ctx }
}

fn raise(code: NTSTATUS, flags: ULONG, info: &[u64], ctx: *mut CONTEXT) -> ! {
    // Parks the thread if the machine has already bug-checked.
    let _ = crate::ke::thread::current();
    let c = ctx_of(ctx);
    let mut rec = record(code, flags, c.Rip, info);
    dispatch_exception(&mut rec, c)
}

extern "win64" fn ex_raise_status(status: u64, _: u64, _: u64, _: u64, ctx: *mut CONTEXT) {
    raise(
        status as u32 as NTSTATUS,
        EXCEPTION_NONCONTINUABLE,
        &[],
        ctx,
    )
}

extern "win64" fn ex_raise_access_violation(_: u64, _: u64, _: u64, _: u64, ctx: *mut CONTEXT) {
    raise(STATUS_ACCESS_VIOLATION, EXCEPTION_NONCONTINUABLE, &[], ctx)
}

extern "win64" fn ex_raise_datatype_misalignment(
    _: u64,
    _: u64,
    _: u64,
    _: u64,
    ctx: *mut CONTEXT,
) {
    raise(
        STATUS_DATATYPE_MISALIGNMENT,
        EXCEPTION_NONCONTINUABLE,
        &[],
        ctx,
    )
}

/// The ProbeFor* rule: Ok, or the status to raise.
pub(crate) fn probe(addr: u64, len: u64, align: u32) -> Result<(), NTSTATUS> {
    if len == 0 {
        return Ok(());
    }
    if align != 0 && !addr.is_multiple_of(align as u64) {
        return Err(STATUS_DATATYPE_MISALIGNMENT);
    }
    let m = crate::ke::thread::current();
    if crate::ex::pool::is_user_address(&m, addr as usize, len as usize) {
        Ok(())
    } else {
        Err(STATUS_ACCESS_VIOLATION)
    }
}

extern "win64" fn probe_for_read(addr: u64, len: u64, align: u64, _: u64, ctx: *mut CONTEXT) {
    if let Err(code) = probe(addr, len, align as u32) {
        raise(code, EXCEPTION_NONCONTINUABLE, &[0, addr], ctx)
    }
}

extern "win64" fn probe_for_write(addr: u64, len: u64, align: u64, _: u64, ctx: *mut CONTEXT) {
    if let Err(code) = probe(addr, len, align as u32) {
        raise(code, EXCEPTION_NONCONTINUABLE, &[1, addr], ctx)
    }
}

extern "win64" fn dbg_break_point(_: u64, _: u64, _: u64, _: u64, ctx: *mut CONTEXT) {
    raise(STATUS_BREAKPOINT, 0, &[0], ctx)
}

extern "win64" fn rtl_raise_exception(rec: u64, _: u64, _: u64, _: u64, ctx: *mut CONTEXT) {
    let _ = crate::ke::thread::current();
    let c = ctx_of(ctx);
    if rec == 0 {
        raise(
            STATUS_ACCESS_VIOLATION,
            EXCEPTION_NONCONTINUABLE,
            &[0, 0],
            ctx,
        )
    }
    // SAFETY: the driver passes its EXCEPTION_RECORD; we copy it (Windows reads it too).
    let mut r = unsafe { *(rec as *const EXCEPTION_RECORD) };
    r.ExceptionAddress = c.Rip as PVOID;
    dispatch_exception(&mut r, c)
}

fn unwind_from_driver(
    target_frame: u64,
    target_ip: u64,
    rec: u64,
    retval: u64,
    ctx: *mut CONTEXT,
) -> ! {
    let m = crate::ke::thread::current();
    let start = *ctx_of(ctx);
    let mut r = if rec == 0 {
        record(STATUS_UNWIND_STATUS, 0, start.Rip, &[])
    } else {
        // SAFETY: a driver-supplied EXCEPTION_RECORD, copied.
        unsafe { *(rec as *const EXCEPTION_RECORD) }
    };
    let target = crate::ke::except::UnwindTarget {
        frame: target_frame,
        ip: target_ip,
        return_value: retval,
    };
    trap::unwind_and_resume(&m, &start, target, &mut r)
}

/// `STATUS_UNWIND` (0xC0000027), the code of an unwind started without an exception record.
const STATUS_UNWIND_STATUS: NTSTATUS = 0xC000_0027u32 as NTSTATUS;

extern "win64" fn rtl_unwind(frame: u64, ip: u64, rec: u64, retval: u64, ctx: *mut CONTEXT) {
    unwind_from_driver(frame, ip, rec, retval, ctx)
}

extern "win64" fn rtl_unwind_ex(frame: u64, ip: u64, rec: u64, retval: u64, ctx: *mut CONTEXT) {
    unwind_from_driver(frame, ip, rec, retval, ctx)
}
