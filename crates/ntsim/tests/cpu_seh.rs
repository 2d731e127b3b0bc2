//! The x64 CPU model and structured exception handling, end to end through C fixture drivers
//! (`crates/ntsim/fixtures/c/`, built by `xbuild::cdriver` with clang in MSVC mode against
//! mingw-w64's DDK headers): their real machine code reads `gs:`, CR8 and KUSER_SHARED_DATA,
//! executes privileged instructions and uses `__try/__except/__finally`. Every emulated
//! behaviour has a positive test asserting the values the driver saw; every bug check a
//! negative test asserting its code and parameters.
//!
//! Missing clang/lld/llvm/mingw-w64 FAILS these tests naming the package, unless
//! `WDM_ALLOW_SKIP=1` (`cargo xtask test` installs them first).

use nt_abi::bugcheck;
use nt_abi::*;
use ntsim::{BugCheck, Config, Machine, Verifier};

mod c_fixtures;
use c_fixtures::{Rig, bugcheck_within, fixture, fixture_ioctl as code};

/// A fixture started on a Machine whose handle to the fixture's device is held.
type Loaded = Rig;

fn load(name: &'static str, device: &'static str, verifier: Verifier) -> Option<Loaded> {
    Rig::start(
        name,
        device,
        Config {
            verifier,
            unload_grace: std::time::Duration::from_millis(200),
            ..Config::default()
        },
    )
    .map(Rig::holding_handle)
}

impl Rig {
    /// IOCTL `f`; the output as u64 words.
    fn call(&self, f: u32) -> Vec<u64> {
        self.call_words(code(f), &[], 256)
    }

    /// IOCTL `f`, which must bug-check.
    fn bugcheck(&self, f: u32) -> BugCheck {
        match self.h().device_io_control(code(f), &[], 256) {
            Err(b) => b,
            // A work item may be on its way to the bug check.
            Ok(r) => bugcheck_within(&self.machine, std::time::Duration::from_secs(10))
                .unwrap_or_else(|| panic!("IOCTL {f} returned {r:?} without a bug check")),
        }
    }
}

/// `b` is SYSTEM_SERVICE_EXCEPTION (0x3B) for the exception `status`.
#[track_caller]
fn expect_system_service_exception(b: &BugCheck, status: NTSTATUS) {
    assert_eq!(
        (b.code, b.parameters[0]),
        (bugcheck::SYSTEM_SERVICE_EXCEPTION, status as u32 as u64),
        "{b}"
    );
}

fn cpu() -> Option<Loaded> {
    load("cpu", r"\\.\NtsimCpu", Verifier::Standard)
}

fn seh() -> Option<Loaded> {
    load("seh", r"\\.\NtsimSeh", Verifier::Standard)
}

/// The byte at a driver address (the image stays mapped after a bug check).
fn byte_at(addr: u64) -> u8 {
    // SAFETY: `addr` is an instruction address inside the loaded fixture image, which stays
    // mapped for the life of the machine (the test holds it).
    unsafe { *(addr as *const u8) }
}

// ---- CPU model: positive -------------------------------------------------------------------

#[test]
fn inline_gs_reads_see_the_threads_kpcr_and_kthread() {
    let Some(d) = cpu() else { return };
    let v = d.call(0);
    let [
        inline,
        export,
        ps,
        pcr_self,
        prcb,
        num_inline,
        num_1a4,
        num_ex,
        pn,
    ] = v[..]
    else {
        panic!("9 words expected, got {v:?}")
    };
    assert_ne!(inline, 0, "gs:[0x188] is the current KTHREAD");
    assert_eq!(inline, export, "KeGetCurrentThread inline == export");
    assert_eq!(inline, ps, "PsGetCurrentThread returns the same thread");
    assert_ne!(pcr_self, 0);
    assert_eq!(
        prcb,
        pcr_self + KPCR_PRCB as u64,
        "KPCR.CurrentPrcb -> the embedded KPRCB"
    );
    assert_eq!(
        num_inline, num_ex,
        "gs:[0x184] == KeGetCurrentProcessorNumberEx"
    );
    assert_eq!(
        num_1a4, num_ex,
        "gs:[0x1A4] == KeGetCurrentProcessorNumberEx"
    );
    assert_eq!(pn, num_ex, "PROCESSOR_NUMBER.Number");
    assert!(num_ex < ntsim::ke::cpu::processor_count() as u64);
    // The KTHREAD is a thread dispatcher object.
    assert_eq!(byte_at(inline), THREAD_OBJECT);
}

#[test]
fn cr8_reads_and_writes_are_the_threads_irql() {
    let Some(d) = cpu() else { return };
    assert_eq!(
        d.call(1),
        vec![0, 0, DISPATCH_LEVEL as u64, 0],
        "before, old, raised, after"
    );
}

#[test]
fn kuser_shared_data_times_advance() {
    let Some(d) = cpu() else { return };
    let v = d.call(4);
    let [st1, st2, it1, it2, tc1, tc2, major, minor, inc] = v[..] else {
        panic!("{v:?}")
    };
    // System time is 100 ns since 1601: today is after 2020-01-01 (132 223 104 000 000 000).
    assert!(st1 > 132_223_104_000_000_000, "system time {st1}");
    assert!(st2 >= st1 + 250_000, "30 ms later: {st1} -> {st2}");
    assert!(it2 >= it1 + 250_000, "interrupt time {it1} -> {it2}");
    assert!(
        tc2 > tc1 || (it2 - it1) < CLOCK_TIME_INCREMENT,
        "tick count {tc1} -> {tc2}"
    );
    assert_eq!(
        tc2,
        it2 / CLOCK_TIME_INCREMENT,
        "tick count is interrupt time / 15.625 ms"
    );
    assert_eq!((major, minor), (10, 0), "NtMajorVersion / NtMinorVersion");
    assert_eq!(inc, CLOCK_TIME_INCREMENT);
}

#[test]
fn cli_and_sti_toggle_the_emulated_interrupt_flag() {
    let Some(d) = cpu() else { return };
    assert_eq!(d.call(5), vec![1, 0, 1], "enabled, after cli, after sti");
}

#[test]
fn rdmsr_serves_the_modelled_msrs() {
    let Some(d) = cpu() else { return };
    let v = d.call(6);
    let [gs_base, pcr_self, efer, t1, t2] = v[..] else {
        panic!("{v:?}")
    };
    assert_eq!(gs_base, pcr_self, "IA32_GS_BASE is the KPCR");
    assert_eq!(efer, msr::EFER_WINDOWS_X64);
    assert!(t2 >= t1, "TSC moves forward");
}

#[test]
fn rdmsr_of_a_missing_msr_raises_an_exception_the_driver_can_catch() {
    let Some(d) = cpu() else { return };
    assert_eq!(d.call(7), vec![STATUS_ACCESS_VIOLATION as u32 as u64, 0]);
}

// ---- CPU model: negative (bug checks) ------------------------------------------------------

#[test]
fn irql_raised_through_cr8_is_checked_by_the_exports() {
    let Some(d) = cpu() else { return };
    let b = d.bugcheck(2);
    assert_eq!(b.code, bugcheck::IRQL_NOT_LESS_OR_EQUAL, "{b}");
    assert_eq!(
        b.parameters[1], DISPATCH_LEVEL as u64,
        "the IRQL CR8 set: {b}"
    );
}

#[test]
fn returning_from_dispatch_at_an_irql_raised_through_cr8_is_caught() {
    let Some(d) = cpu() else { return };
    let b = d.bugcheck(13);
    assert_eq!(b.code, bugcheck::IRQL_GT_ZERO_AT_SYSTEM_SERVICE, "{b}");
}

#[test]
fn nonpaged_pool_above_dispatch_level_raised_through_cr8_is_c4_02() {
    // Reachable only through an inline raise: no export raises above DISPATCH_LEVEL.
    let Some(d) = cpu() else { return };
    let b = d.bugcheck(14);
    assert_eq!(b.code, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, "{b}");
    assert_eq!(
        b.parameters[0],
        bugcheck::verifier::NONPAGED_ALLOC_ABOVE_DISPATCH,
        "{b}"
    );
    assert_eq!(
        b.parameters[1],
        DISPATCH_LEVEL as u64 + 1,
        "p2: the IRQL: {b}"
    );
    assert_eq!(b.parameters[3], 16, "p4: the size: {b}");
}

#[test]
fn mov_cr8_of_a_reserved_value_is_a_general_protection_fault() {
    let Some(d) = cpu() else { return };
    let b = d.bugcheck(3);
    assert_eq!(b.code, bugcheck::SYSTEM_SERVICE_EXCEPTION, "{b}");
    assert_eq!(b.parameters[0], STATUS_ACCESS_VIOLATION as u32 as u64);
    assert_eq!(b.parameters[3], 0);
}

#[test]
fn fastfail_is_kernel_security_check_failure_with_its_code() {
    let Some(d) = cpu() else { return };
    let b = d.bugcheck(8);
    assert_eq!(b.code, bugcheck::KERNEL_SECURITY_CHECK_FAILURE, "{b}");
    assert_eq!(
        b.parameters[0],
        fast_fail::INVALID_ARG,
        "p1 is the fast-fail code"
    );
    assert!(b.address.starts_with("cpu.sys+"), "{}", b.address);
}

#[test]
fn int3_without_a_debugger_reports_the_int3_itself() {
    let Some(d) = cpu() else { return };
    let b = d.bugcheck(9);
    assert_eq!(
        b.code,
        bugcheck::SYSTEM_SERVICE_EXCEPTION,
        "a dispatch routine: {b}"
    );
    assert_eq!(b.parameters[0], STATUS_BREAKPOINT as u32 as u64);
    assert_eq!(byte_at(b.parameters[1]), 0xCC, "p2 points at the int3");
    assert!(b.address.starts_with("cpu.sys+"), "{}", b.address);
    assert_ne!(b.parameters[2], 0, "p3: the context record");
}

#[test]
fn dbgbreakpoint_without_a_debugger_is_a_breakpoint_bug_check() {
    let Some(d) = cpu() else { return };
    let b = d.bugcheck(10);
    expect_system_service_exception(&b, STATUS_BREAKPOINT);
    assert!(b.address.starts_with("cpu.sys+"), "{}", b.address);
}

#[test]
fn an_unhandled_assertion_trap_is_a_bug_check() {
    let Some(d) = cpu() else { return };
    let b = d.bugcheck(11);
    expect_system_service_exception(&b, STATUS_ASSERTION_FAILURE);
    assert_eq!(byte_at(b.parameters[1]), 0xCD, "p2 points at the int 2Ch");
}

#[test]
fn an_unmodelled_privileged_instruction_is_reported_as_ntsims_limit() {
    let Some(d) = cpu() else { return };
    let b = d.bugcheck(12);
    assert_eq!(b.code, bugcheck::KMODE_EXCEPTION_NOT_HANDLED, "{b}");
    assert_eq!(b.parameters[0], STATUS_PRIVILEGED_INSTRUCTION as u32 as u64);
    assert!(
        b.documented_only,
        "Windows would run wbinvd: the report must say ntsim is stricter"
    );
}

// ---- SEH: positive --------------------------------------------------------------------------

#[test]
fn probe_for_read_raises_what_windows_raises() {
    let Some(d) = seh() else { return };
    let av = STATUS_ACCESS_VIOLATION as u32 as u64;
    let mis = STATUS_DATATYPE_MISALIGNMENT as u32 as u64;
    assert_eq!(
        d.call(0),
        vec![av, av, mis, 0, 0],
        "pool (kernel) buffer, past MmUserProbeAddress, misaligned, user range, zero length"
    );
}

#[test]
fn ex_raise_status_is_caught_by_except() {
    let Some(d) = seh() else { return };
    assert_eq!(d.call(1), vec![STATUS_INVALID_PARAMETER as u32 as u64]);
}

#[test]
fn the_other_raise_exports_raise_their_codes() {
    let Some(d) = seh() else { return };
    assert_eq!(
        d.call(13),
        vec![
            STATUS_ACCESS_VIOLATION as u32 as u64,
            STATUS_DATATYPE_MISALIGNMENT as u32 as u64,
            1,
            0x1234,
            0x5678
        ],
        "ExRaiseAccessViolation, ExRaiseDatatypeMisalignment, RtlRaiseException continued with its parameters"
    );
}

#[test]
fn finally_runs_during_the_unwind_to_the_callers_except() {
    let Some(d) = seh() else { return };
    assert_eq!(
        d.call(2),
        vec![STATUS_INSUFFICIENT_RESOURCES as u32 as u64, 1, 3, 1, 2, 3],
        "code, AbnormalTermination, 3 events: try, finally, except"
    );
}

#[test]
fn nested_handlers_decline_and_rethrow() {
    let Some(d) = seh() else { return };
    let timeout_err = 0xC000_0102u64;
    assert_eq!(
        d.call(3),
        vec![
            timeout_err,
            timeout_err,
            STATUS_NOT_SUPPORTED as u32 as u64,
            0
        ],
        "inner filter saw it and declined; outer caught it; a raise inside __except went to the next handler"
    );
}

#[test]
fn an_exception_handled_inside_a_filter_leaves_the_outer_dispatch_intact() {
    let Some(d) = seh() else { return };
    assert_eq!(
        d.call(12),
        vec![
            STATUS_DELETE_PENDING as u32 as u64,
            STATUS_OBJECT_NAME_COLLISION as u32 as u64
        ],
        "the outer exception reached its __except; the filter's own one was handled inside it"
    );
}

#[test]
fn a_fault_on_a_bad_user_address_is_an_access_violation_the_driver_catches() {
    let Some(d) = seh() else { return };
    let av = STATUS_ACCESS_VIOLATION as u32 as u64;
    assert_eq!(
        d.call(4),
        vec![av, 0, 0x10, av, 1, 0x18],
        "read of 0x10, write of 0x18"
    );
}

#[test]
fn continue_execution_resumes_after_continuable_exceptions() {
    let Some(d) = seh() else { return };
    assert_eq!(d.call(5), vec![1, 1], "after int 2Ch, after DbgBreakPoint");
}

#[test]
fn the_machine_keeps_working_after_handled_exceptions() {
    let Some(d) = seh() else { return };
    for _ in 0..50 {
        assert_eq!(d.call(1), vec![STATUS_INVALID_PARAMETER as u32 as u64]);
        assert_eq!(d.call(4)[0], STATUS_ACCESS_VIOLATION as u32 as u64);
    }
    assert!(d.machine.bugcheck().is_none());
}

// ---- SEH: negative (unhandled exceptions) ---------------------------------------------------

#[test]
fn an_exception_raised_in_a_callee_is_caught_in_its_caller() {
    // The callee's frame is unwound from the return address after its call, which sits in
    // the callee's epilog (`add rsp, N; ret`) when the call is its last work.
    let Some(d) = seh() else { return };
    assert_eq!(d.call(15), vec![STATUS_ACCESS_VIOLATION as u32 as u64]);
}

#[test]
fn a_special_pool_overrun_inside_try_is_not_an_exception_the_driver_can_catch() {
    // Microsoft's 0xD6 page: "This cannot be protected by a try - except handler -- it can
    // only be protected by a probe." The read past the 8-byte block bug-checks although the
    // driver wraps it in __try/__except.
    let Some(d) = seh() else { return };
    let b = d.bugcheck(14);
    assert_eq!(
        b.code,
        bugcheck::DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION,
        "{b}"
    );
    assert_eq!(b.parameters[1], 0, "p2: a read");
    assert!(b.address.starts_with("seh.sys+"), "{}", b.address);
}

#[test]
fn unhandled_in_a_dispatch_routine_is_system_service_exception() {
    let Some(d) = seh() else { return };
    let b = d.bugcheck(6);
    assert_eq!(b.code, bugcheck::SYSTEM_SERVICE_EXCEPTION, "{b}");
    assert_eq!(b.parameters[0], 0xE000_0001);
    assert!(b.address.starts_with("seh.sys+"), "{}", b.address);
    assert_ne!(b.parameters[2], 0, "p3: the context record");
    assert_eq!(b.parameters[3], 0);
    assert_eq!(b.context, "IRP_MJ_DEVICE_CONTROL dispatch");
}

#[test]
fn unhandled_in_a_work_item_is_system_thread_exception_not_handled() {
    let Some(d) = seh() else { return };
    let b = d.bugcheck(7);
    assert_eq!(b.code, bugcheck::SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, "{b}");
    assert_eq!(b.parameters[0], STATUS_ACCESS_VIOLATION as u32 as u64);
    assert!(b.address.starts_with("seh.sys+"), "{}", b.address);
    assert_ne!(b.parameters[2], 0, "p3: the exception record");
    assert_ne!(b.parameters[3], 0, "p4: the context record");
    assert_eq!(b.context, "work item routine");
}

#[test]
fn unhandled_in_driver_entry_is_system_thread_exception_not_handled() {
    let Some(sys) = fixture("seh_entry") else {
        return;
    };
    let m = Machine::new(Config::default());
    let d = m.load_driver(&sys).expect("loads");
    let b = d.start().expect_err("DriverEntry raises");
    assert_eq!(b.code, bugcheck::SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, "{b}");
    assert_eq!(b.parameters[0], 0xE000_0002);
    assert!(b.address.starts_with("seh_entry.sys+"), "{}", b.address);
    assert_eq!(b.context, "DriverEntry");
}

#[test]
fn unhandled_in_driver_unload_is_system_thread_exception_not_handled() {
    let Some(mut d) = seh() else { return };
    assert_eq!(d.call(11), Vec::<u64>::new());
    d.handle.take().expect("held").close().expect("close");
    let b = match d.driver.unload() {
        Err(ntsim::UnloadError::BugCheck(b)) => b,
        other => panic!("expected a bug check, got {other:?}"),
    };
    assert_eq!(b.code, bugcheck::SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, "{b}");
    assert_eq!(b.parameters[0], STATUS_DEVICE_BUSY as u32 as u64);
    assert_eq!(b.context, "DriverUnload");
    drop(d);
}

#[test]
fn unhandled_on_another_kernel_thread_is_kmode_exception_not_handled() {
    let Some(d) = seh() else { return };
    let f = d.call(8)[0] as usize;
    let b = match d.machine.run_in_kernel_thread(move || {
        // SAFETY: `f` is the fixture's `void fx_fault_unhandled(void)`, a win64 function in the
        // loaded image; it faults by design and the bug check parks this thread.
        let g = unsafe { core::mem::transmute::<usize, extern "win64" fn()>(f) };
        g();
    }) {
        Err(b) => b,
        Ok(()) => panic!("no bug check"),
    };
    assert_eq!(b.code, bugcheck::KMODE_EXCEPTION_NOT_HANDLED, "{b}");
    assert_eq!(
        b.parameters,
        [
            STATUS_ACCESS_VIOLATION as u32 as u64,
            b.parameters[1],
            1,
            0x18
        ],
        "p3/p4: a write of 0x18"
    );
    assert!(b.address.starts_with("seh.sys+"), "{}", b.address);
}

#[test]
fn continuing_a_noncontinuable_exception_is_a_bug_check() {
    let Some(d) = seh() else { return };
    let b = d.bugcheck(9);
    expect_system_service_exception(&b, STATUS_NONCONTINUABLE_EXCEPTION);
}

#[test]
fn unhandled_probe_for_write_of_kernel_memory_is_a_bug_check() {
    let Some(d) = seh() else { return };
    let b = d.bugcheck(10);
    expect_system_service_exception(&b, STATUS_ACCESS_VIOLATION);
}

#[test]
fn every_fixture_import_is_emulated() {
    let Some(sys) = fixture("seh") else { return };
    let m = Machine::new(Config::default());
    m.load_driver(&sys).expect("no missing imports");
    let Some(sys) = fixture("cpu") else { return };
    m.load_driver(&sys).expect("no missing imports");
}
