//! Time and processor exports: KeQuerySystemTimePrecise, KeQueryInterruptTimePrecise,
//! KeQueryUnbiasedInterruptTime, KeStallExecutionProcessor, processor counts.
//!
//! On x64, `KeQuerySystemTime`, `KeQueryInterruptTime` and `KeQueryTickCount` are macros over
//! KUSER_SHARED_DATA (mingw-w64 `ddk/wdm.h`: `SharedSystemTime`, `SharedInterruptTime`,
//! `SharedTickCount`), not exports; the exports here read the same clocks the KUSER page
//! serves ([`super::cpu::kuser_snapshot`]): interrupt time = 100 ns since ntsim's boot, system
//! time = the host clock in 100 ns since 1601. ntsim never sleeps, so the unbiased interrupt
//! time equals the interrupt time (Microsoft, *KeQueryUnbiasedInterruptTime*: the interrupt
//! time minus time spent in sleep states).
#![allow(non_snake_case)]

use std::time::{Duration, Instant};

use nt_abi::*;

use super::cpu;
use super::thread::current;

/// `KeQuerySystemTimePrecise`: the current system time (Microsoft, *KeQuerySystemTimePrecise*).
///
/// # Safety
/// `CurrentTime` must be writable.
pub unsafe extern "win64" fn KeQuerySystemTimePrecise(CurrentTime: *mut LARGE_INTEGER) {
    let _m = current();
    // SAFETY: writable per the contract.
    unsafe {
        CurrentTime.write_unaligned(LARGE_INTEGER {
            QuadPart: super::system_time(),
        })
    };
}

/// `KeQueryInterruptTimePrecise`: the interrupt time, and in `*QpcTimeStamp` the performance
/// counter (KeQueryPerformanceCounter's) at the same moment.
///
/// # Safety
/// `QpcTimeStamp` must be writable.
pub unsafe extern "win64" fn KeQueryInterruptTimePrecise(QpcTimeStamp: *mut ULONG64) -> ULONG64 {
    let m = current();
    let t = cpu::interrupt_time();
    let qpc = (m.ke.epoch.elapsed().as_nanos() / 100) as u64;
    if !QpcTimeStamp.is_null() {
        // SAFETY: writable per the contract (checked non-null).
        unsafe { QpcTimeStamp.write_unaligned(qpc) };
    }
    t
}

/// `KeQueryUnbiasedInterruptTime`: the interrupt time (ntsim's machine never sleeps).
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn KeQueryUnbiasedInterruptTime() -> ULONG64 {
    let _m = current();
    cpu::interrupt_time()
}

/// `KeStallExecutionProcessor`: spin for `MicroSeconds` without giving up the processor (any
/// IRQL; Microsoft advises no more than 50 µs, which ntsim does not enforce).
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn KeStallExecutionProcessor(MicroSeconds: ULONG) {
    let _m = current();
    let end = Instant::now() + Duration::from_micros(MicroSeconds as u64);
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// `KeQueryActiveProcessorCount`: the number of processors ([`cpu::processor_count`]), and
/// their affinity mask in `*ActiveProcessors` when non-null.
///
/// # Safety
/// `ActiveProcessors` must be null or writable.
pub unsafe extern "win64" fn KeQueryActiveProcessorCount(
    ActiveProcessors: *mut ULONG_PTR,
) -> ULONG {
    let _m = current();
    let n = cpu::processor_count();
    if !ActiveProcessors.is_null() {
        let mask = if n >= 64 {
            usize::MAX
        } else {
            (1usize << n) - 1
        };
        // SAFETY: writable per the contract (checked non-null).
        unsafe { ActiveProcessors.write_unaligned(mask) };
    }
    n
}

/// `KeQueryActiveProcessorCountEx`: the processors of group 0 (the only group), or of all
/// groups for ALL_PROCESSOR_GROUPS; 0 for any other group.
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn KeQueryActiveProcessorCountEx(GroupNumber: USHORT) -> ULONG {
    let _m = current();
    match GroupNumber {
        0 | ALL_PROCESSOR_GROUPS => cpu::processor_count(),
        _ => 0,
    }
}

/// `KeQueryMaximumProcessorCount`: ntsim's processors cannot be added at run time, so the
/// maximum is the active count.
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn KeQueryMaximumProcessorCount() -> ULONG {
    let _m = current();
    cpu::processor_count()
}

/// `KeQueryMaximumProcessorCountEx`: as [`KeQueryActiveProcessorCountEx`].
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn KeQueryMaximumProcessorCountEx(GroupNumber: USHORT) -> ULONG {
    // SAFETY: no preconditions.
    unsafe { KeQueryActiveProcessorCountEx(GroupNumber) }
}
