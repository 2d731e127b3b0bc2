//! Critical and guarded regions: the per-thread APC-disable counts (KTHREAD.KernelApcDisable /
//! SpecialApcDisable, kept in `ke::thread::KThread`), and the checks made when a driver
//! routine returns with them changed.
//!
//! Microsoft, *KeEnterCriticalRegion*: disables normal kernel APCs; calls nest and must be
//! matched by KeLeaveCriticalRegion; IRQL ≤ APC_LEVEL. *KeEnterGuardedRegion*: disables all
//! kernel APCs (special too); IRQL ≤ APC_LEVEL. ntsim delivers no APCs, so the counts only
//! decide what the rules see: ERESOURCE and the "unsafe" mutex calls require them, and a
//! dispatch or work-item routine must return with them as it found them (APC_INDEX_MISMATCH,
//! 0xC4/0xC5 — `verifier::locks`).
#![allow(non_snake_case)]

use super::bugcheck::raise;
use super::thread::{self, current};
use crate::machine::System;

/// `KeEnterCriticalRegion`: KernelApcDisable − 1. Above APC_LEVEL: 0xC4/0x11A (verifier).
///
/// # Safety
/// Always safe to call from driver code.
pub unsafe extern "win64" fn KeEnterCriticalRegion() {
    let m = current();
    if let Some(bc) = m.verifier.on_critical_region_irql(false, thread::irql()) {
        raise(&m, bc);
    }
    let (k, s) = thread::apc_disable();
    thread::set_apc_disable((k.wrapping_sub(1), s));
}

/// `KeLeaveCriticalRegion`: KernelApcDisable + 1. Above APC_LEVEL 0xC4/0x11B; on a thread
/// that is not in a critical region 0xC4/0x3E (verifier; without it the count goes positive,
/// which the routine-return check reports as APC_INDEX_MISMATCH).
///
/// # Safety
/// Always safe to call from driver code.
pub unsafe extern "win64" fn KeLeaveCriticalRegion() {
    let m = current();
    if let Some(bc) = m.verifier.on_critical_region_irql(true, thread::irql()) {
        raise(&m, bc);
    }
    let (k, s) = thread::apc_disable();
    if k >= 0
        && let Some(bc) = m.verifier.on_leave_critical_region_unbalanced()
    {
        raise(&m, bc);
    }
    thread::set_apc_disable((k.wrapping_add(1), s));
}

/// `KeEnterGuardedRegion`: SpecialApcDisable − 1 (Microsoft, *KeEnterGuardedRegion*).
///
/// # Safety
/// Always safe to call from driver code.
pub unsafe extern "win64" fn KeEnterGuardedRegion() {
    let _m = current();
    enter_guarded();
}

/// `KeLeaveGuardedRegion`: SpecialApcDisable + 1.
///
/// # Safety
/// Always safe to call from driver code.
pub unsafe extern "win64" fn KeLeaveGuardedRegion() {
    let _m = current();
    leave_guarded();
}

pub(crate) fn enter_guarded() {
    let (k, s) = thread::apc_disable();
    thread::set_apc_disable((k, s.wrapping_sub(1)));
}

pub(crate) fn leave_guarded() {
    let (k, s) = thread::apc_disable();
    thread::set_apc_disable((k, s.wrapping_add(1)));
}

/// The calling thread's APC-disable counts, for the layers that check them around a driver
/// routine (take it before, pass it to [`check_after`]).
pub(crate) fn snapshot() -> (i16, i16) {
    thread::apc_disable()
}

/// After a driver routine returned to the I/O manager (`worker`: a work item's routine): its
/// APC-disable counts must be what they were (`before`). Raises APC_INDEX_MISMATCH or
/// 0xC4/0xC5 (see `verifier::locks`), then parks.
pub(crate) fn check_after(sys: &System, worker: bool, routine: usize, before: (i16, i16)) {
    let now = thread::apc_disable();
    if let Some(bc) = sys
        .verifier
        .on_apc_disable_changed(worker, routine, now, before)
    {
        raise(sys, bc);
    }
}
