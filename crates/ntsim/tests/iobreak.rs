//! I/O verification, negative tests: one IRP-handling violation per IOCTL of the C fixture
//! `fixtures/c/iobreak.c` (a filter on top of a lower device), each asserting Windows' bug-check
//! code and parameters (Microsoft, *Bug Check 0xC9*, *0x35*, *0x44*, *0xD5*; the rule's doc
//! comment in `src/verifier/iorules.rs` / `src/io/forward.rs` cites its page). Rules Windows
//! checks only under Driver Verifier go quiet with `--verifier off` (tested too); ntoskrnl's own
//! checks (0x35, 0x44) fire either way.
//!
//! Missing clang/lld/llvm/mingw-w64 FAILS these tests naming the package, unless
//! `WDM_ALLOW_SKIP=1` (`cargo xtask test` installs them first).
use std::collections::HashMap;

use nt_abi::bugcheck::{self, iomanager as io};
use nt_abi::*;
use ntsim::{BugCheck, Config, IoResult, Machine, Verifier};

mod c_fixtures;
mod cli_support;
use c_fixtures::{dbg_default_info, fixture_ioctl as ioctl};

/// One IOCTL on a fresh machine: its result and the `iobreak: key=HEX` values the driver
/// printed before the violation.
struct Run {
    machine: Machine,
    result: Result<IoResult, BugCheck>,
    keys: HashMap<String, u64>,
    driver: ntsim::Driver,
}

impl Run {
    fn key(&self, k: &str) -> u64 {
        *self
            .keys
            .get(k)
            .unwrap_or_else(|| panic!("the driver did not report {k}: {:?}", self.keys))
    }

    fn bugcheck(&self) -> BugCheck {
        match &self.result {
            Err(b) => b.clone(),
            Ok(r) => panic!("expected a bug check, the IOCTL returned {r:?}"),
        }
    }
}

fn run(n: u32, verifier: Verifier) -> Option<Run> {
    let sys = c_fixtures::fixture("iobreak")?;
    let machine = Machine::new(Config {
        dbg_filter: dbg_default_info(),
        verifier,
        ..Config::default()
    });
    let driver = machine.load_driver(&sys).expect("the fixture loads");
    assert_eq!(driver.start().expect("DriverEntry"), STATUS_SUCCESS);
    let h = machine
        .open(r"\\.\IoBreak", GENERIC_READ | GENERIC_WRITE)
        .expect("open");
    let result = h.device_io_control(ioctl(n), &[1, 2, 3, 4], 4);
    if result.is_ok() {
        // A bug check at close is left in `machine.bugcheck()` for the test to see.
        let _ = h.close();
    } else {
        std::mem::forget(h);
    }
    let mut keys = HashMap::new();
    for l in machine.dbgprint_lines() {
        if let Some(kv) = l.trim().strip_prefix("iobreak: ")
            && let Some((k, v)) = kv.split_once('=')
        {
            keys.insert(k.to_string(), u64::from_str_radix(v.trim(), 16).unwrap());
        }
    }
    Some(Run {
        machine,
        result,
        keys,
        driver,
    })
}

/// The IOCTL bug-checks with `code` and `p1`; returns the record.
fn expect(n: u32, verifier: Verifier, code: u32, p1: Option<u64>) -> Option<(Run, BugCheck)> {
    let r = run(n, verifier)?;
    let b = r.bugcheck();
    assert_eq!(
        (b.code, b.name),
        (code, bugcheck::bugcheck_name_ext(code)),
        "IOCTL {n}: {b}"
    );
    if let Some(p1) = p1 {
        assert_eq!(b.parameters[0], p1, "IOCTL {n}: p1 of {b}");
    }
    assert_eq!(
        r.machine.bugcheck().as_ref(),
        Some(&b),
        "the machine stays stopped"
    );
    Some((r, b))
}

/// With `--verifier off` the IOCTL completes without a bug check and the driver unloads clean.
fn quiet_without_verifier(n: u32) -> Option<IoResult> {
    let r = run(n, Verifier::Off)?;
    let res = r
        .result
        .clone()
        .unwrap_or_else(|b| panic!("IOCTL {n} with --verifier off: {b}"));
    assert!(r.machine.bugcheck().is_none());
    let audit = r.driver.unload().expect("unload");
    assert!(audit.is_clean(), "IOCTL {n}: {audit:?}");
    Some(res)
}

fn c9(n: u32, sub: u64) -> Option<(Run, BugCheck)> {
    let (r, b) = expect(
        n,
        Verifier::Standard,
        bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION,
        Some(sub),
    )?;
    assert!(b.verifier_rule, "a Driver Verifier rule: {b}");
    assert!(!b.documented_only, "Windows checks it at run time: {b}");
    assert!(b.address.starts_with("iobreak.sys+"), "{}", b.address);
    Some((r, b))
}

#[test]
fn completing_an_irp_twice_is_0x44_with_and_without_the_verifier() {
    for v in [Verifier::Standard, Verifier::Off] {
        let Some((r, b)) = expect(0, v, bugcheck::MULTIPLE_IRP_COMPLETE_REQUESTS, None) else {
            return;
        };
        assert_eq!(b.parameters, [r.key("irp"), 0, 0, 0]);
        assert!(!b.verifier_rule);
    }
}

#[test]
fn status_pending_without_io_mark_irp_pending_is_0xc9_23d() {
    let Some((r, b)) = c9(1, io::PENDING_NOT_MARKED) else {
        return;
    };
    assert_eq!(
        b.parameters,
        [
            io::PENDING_NOT_MARKED,
            r.key("dispatch"),
            r.key("irp"),
            r.key("filter")
        ],
        "p2 the dispatch routine, p3 the IRP, p4 the device"
    );
    // Without the verifier Windows does not check it (the requester would wait forever);
    // ntsim returns the status the driver completed with.
    let res = quiet_without_verifier(1).unwrap();
    assert_eq!(res.status, STATUS_SUCCESS);
}

#[test]
fn io_mark_irp_pending_without_status_pending_is_0xc9_23e() {
    let Some((r, b)) = c9(2, io::MARKED_NOT_PENDING) else {
        return;
    };
    assert_eq!(
        b.parameters,
        [
            io::MARKED_NOT_PENDING,
            r.key("dispatch"),
            r.key("irp"),
            r.key("filter")
        ]
    );
    quiet_without_verifier(2);
}

#[test]
fn completing_with_status_minus_one_is_0xc9_06() {
    let Some((r, b)) = c9(3, io::COMPLETED_WITH_INVALID_STATUS) else {
        return;
    };
    assert_eq!(
        b.parameters,
        [0x06, 0xFFFF_FFFF, r.key("irp"), 0],
        "p2 the status, p3 the IRP"
    );
    let res = quiet_without_verifier(3).unwrap();
    assert_eq!(res.status as u32, 0xFFFF_FFFF);
}

#[test]
fn completing_with_a_cancel_routine_set_is_0xc9_07() {
    let Some((r, b)) = c9(4, io::COMPLETED_WITH_CANCEL_ROUTINE) else {
        return;
    };
    assert_eq!(b.parameters, [0x07, r.key("cancel"), r.key("irp"), 0]);
    quiet_without_verifier(4);
}

#[test]
fn forwarding_an_irp_with_no_stack_location_left_is_0x35_with_and_without_the_verifier() {
    for v in [Verifier::Standard, Verifier::Off] {
        let Some((r, b)) = expect(5, v, bugcheck::NO_MORE_IRP_STACK_LOCATIONS, None) else {
            return;
        };
        assert_eq!(b.parameters, [r.key("own"), 0, 0, 0], "p1 the IRP");
        assert_eq!(b.name, "NO_MORE_IRP_STACK_LOCATIONS");
        assert!(!b.verifier_rule, "ntoskrnl checks it by itself");
    }
}

#[test]
fn io_call_driver_above_dispatch_level_is_0xc9_10() {
    let Some((_, b)) = c9(6, io::CALL_ABOVE_DISPATCH) else {
        return;
    };
    assert_eq!(b.parameters[1], 3, "p2 the IRQL");
    quiet_without_verifier(6);
}

#[test]
fn a_dispatch_routine_returning_at_another_irql_is_0xc9_05() {
    let Some((r, b)) = c9(7, io::IRQL_CHANGED_BY_DISPATCH) else {
        return;
    };
    assert_eq!(
        b.parameters,
        [
            0x05,
            r.key("lower"),
            PASSIVE_LEVEL as u64,
            DISPATCH_LEVEL as u64
        ],
        "p2 the device, p3 the IRQL before, p4 after"
    );
    quiet_without_verifier(7);
}

#[test]
fn freeing_an_irp_twice_faults_in_freed_special_pool_or_is_a_double_free() {
    let Some((r, b)) = expect(
        8,
        Verifier::Standard,
        bugcheck::DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL,
        None,
    ) else {
        return;
    };
    assert_eq!(
        &b.parameters[..2],
        &[r.key("own"), 0],
        "p1 the address read, p2 read"
    );
    // Without the verifier the IRP goes back to pool twice: BAD_POOL_CALLER 0x07.
    let (r, b) = expect(8, Verifier::Off, bugcheck::BAD_POOL_CALLER, Some(0x07)).unwrap();
    assert_eq!(b.parameters[2], r.key("own"));
}

#[test]
fn touching_an_irp_after_its_final_completion_faults() {
    let Some((r, b)) = expect(
        9,
        Verifier::Standard,
        bugcheck::DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL,
        None,
    ) else {
        return;
    };
    let status = r.key("own") + std::mem::offset_of!(IRP, IoStatus) as u64;
    assert_eq!(
        &b.parameters[..2],
        &[status, 0],
        "p1 &Irp->IoStatus, p2 read"
    );
    assert!(
        b.address.starts_with("iobreak.sys+"),
        "the driver's own read: {}",
        b.address
    );
    // Without the verifier the IRP is still on pages of its own: 0x50, stricter than Windows
    // (whose freed IRP memory may stay mapped).
    let (r, b) = expect(
        9,
        Verifier::Off,
        bugcheck::PAGE_FAULT_IN_NONPAGED_AREA,
        None,
    )
    .unwrap();
    assert_eq!(b.parameters[0], r.key("own") + 0x30);
    assert!(b.documented_only);
}

#[test]
fn io_free_irp_of_the_io_managers_irp_is_0xc9_02() {
    let Some((r, b)) = c9(10, io::FREE_IRP_OF_A_THREAD) else {
        return;
    };
    assert_eq!(b.parameters, [0x02, r.key("irp"), 0, 0]);
    quiet_without_verifier(10);
}

#[test]
fn io_call_driver_with_a_null_device_is_0xc9_204() {
    let Some((r, b)) = c9(11, io::CALL_NULL_DEVICE) else {
        return;
    };
    assert_eq!(b.parameters[2], r.key("irp"), "p3 the IRP");
    assert_eq!(b.parameters[3], 0);
    // Without the verifier Windows dereferences it: a page fault (0x50, documented-only).
    let (_, b) = expect(
        11,
        Verifier::Off,
        bugcheck::PAGE_FAULT_IN_NONPAGED_AREA,
        Some(0),
    )
    .unwrap();
    assert!(b.documented_only);
}

#[test]
fn io_call_driver_with_something_that_is_not_a_device_is_0xc9_04() {
    let Some((r, b)) = c9(12, io::CALL_INVALID_DEVICE) else {
        return;
    };
    assert_eq!(b.parameters, [0x04, r.key("block"), 0, 0]);
    let (r, b) = expect(
        12,
        Verifier::Off,
        bugcheck::PAGE_FAULT_IN_NONPAGED_AREA,
        None,
    )
    .unwrap();
    assert_eq!(b.parameters[0], r.key("block"));
}

#[test]
fn io_free_irp_of_an_irp_still_in_use_is_0xc9_20b() {
    let Some((r, b)) = c9(13, io::FREE_IRP_IN_USE) else {
        return;
    };
    assert_eq!(b.parameters[2], r.key("own"), "p3 the IRP");
    quiet_without_verifier(13);
}

#[test]
fn completing_a_freed_irp_faults_or_is_0x44() {
    let Some((r, b)) = expect(
        14,
        Verifier::Standard,
        bugcheck::DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL,
        None,
    ) else {
        return;
    };
    let cur = r.key("own") + std::mem::offset_of!(IRP, CurrentLocation) as u64;
    assert_eq!(
        &b.parameters[..2],
        &[cur, 0],
        "IoCompleteRequest reads CurrentLocation"
    );
    let (r, b) = expect(
        14,
        Verifier::Off,
        bugcheck::MULTIPLE_IRP_COMPLETE_REQUESTS,
        None,
    )
    .unwrap();
    assert_eq!(b.parameters[0], r.key("own"));
}

#[test]
fn a_completion_routine_that_frees_its_irp_must_return_more_processing_required() {
    let Some((r, b)) = expect(
        15,
        Verifier::Standard,
        bugcheck::DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL,
        None,
    ) else {
        return;
    };
    let cur = r.key("own") + std::mem::offset_of!(IRP, CurrentLocation) as u64;
    assert_eq!(
        &b.parameters[..2],
        &[cur, 1],
        "completion goes on: writes CurrentLocation"
    );
    let (r, b) = expect(
        15,
        Verifier::Off,
        bugcheck::PAGE_FAULT_IN_NONPAGED_AREA,
        None,
    )
    .unwrap();
    assert_eq!(b.parameters[0], r.key("own") + 0x43);
}

#[test]
fn io_call_driver_with_an_irp_whose_type_is_not_io_type_irp_is_0xc9_03() {
    let Some((r, b)) = c9(16, io::CALL_NOT_AN_IRP) else {
        return;
    };
    assert_eq!(b.parameters, [0x03, r.key("own"), 0, 0]);
    quiet_without_verifier(16);
}

#[test]
fn io_free_irp_of_something_that_is_not_an_irp_is_0xc9_01() {
    let Some((r, b)) = c9(17, io::FREE_NOT_AN_IRP) else {
        return;
    };
    assert_eq!(b.parameters, [0x01, r.key("own"), 0, 0]);
    quiet_without_verifier(17);
}

#[test]
fn a_completion_routine_returning_at_another_irql_is_0xc4_fa() {
    let Some((r, b)) = expect(
        22,
        Verifier::Standard,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        Some(bugcheck::verifier_locks::COMPLETION_ROUTINE_CHANGED_IRQL),
    ) else {
        return;
    };
    assert_eq!(
        b.parameters[1..],
        [
            r.key("routine"),
            PASSIVE_LEVEL as u64,
            DISPATCH_LEVEL as u64
        ]
    );
    assert!(b.verifier_rule);
    quiet_without_verifier(22);
}

#[test]
fn a_completion_routine_changing_the_apc_disable_count_is_0xc4_fb() {
    let Some((r, b)) = expect(
        23,
        Verifier::Standard,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        Some(bugcheck::verifier_locks::COMPLETION_ROUTINE_CHANGED_APC_DISABLE),
    ) else {
        return;
    };
    assert_eq!(
        b.parameters[1..],
        [r.key("routine"), 0xFFFF, 0],
        "now −1, before 0"
    );
    quiet_without_verifier(23);
}

#[test]
fn a_kernel_mode_irp_carrying_a_user_mode_buffer_is_0xc4_e2_with_security_checks() {
    let Some((r, b)) = expect(
        24,
        Verifier::Standard,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        Some(bugcheck::verifier::KERNEL_IRP_WITH_USER_ADDRESS),
    ) else {
        return;
    };
    assert_eq!(b.parameters[1..3], [r.key("own"), r.key("user")]);
    assert_ne!(r.key("user"), 0);
    assert!(b.verifier_rule);
    quiet_without_verifier(24);
}

#[test]
fn a_stack_location_copied_with_its_completion_routine_is_0xc9_207() {
    let Some((r, b)) = c9(29, io::COPIED_UPPER_COMPLETION_ROUTINE) else {
        return;
    };
    assert_eq!(b.parameters[2..], [r.key("own"), r.key("lower")]);
    quiet_without_verifier(29);
}

#[test]
fn a_dispatch_routine_returning_0xffffffff_is_0xc9_225() {
    let Some((r, b)) = c9(25, io::DISPATCH_RETURNED_ILLEGAL_STATUS) else {
        return;
    };
    assert_eq!(b.parameters[1..3], [r.key("dispatch"), r.key("irp")]);
    quiet_without_verifier(25);
}

#[test]
fn a_completion_routine_in_pageable_code_is_0xc9_227() {
    let Some((r, b)) = c9(26, io::PAGEABLE_COMPLETION_ROUTINE) else {
        return;
    };
    assert_eq!(b.parameters[2..], [r.key("own"), r.key("routine")]);
    assert_ne!(b.parameters[1], 0, "where it was detected");
    quiet_without_verifier(26);
}

#[test]
fn deleting_a_device_twice_is_0xc9_240() {
    let Some((r, b)) = c9(27, io::DELETE_DELETED_DEVICE) else {
        return;
    };
    assert_eq!(b.parameters[2], r.key("extra"));
    assert!(b.address.contains("iobreak.sys+"), "{b}");
    quiet_without_verifier(27);
}

#[test]
fn a_device_with_both_buffered_and_direct_io_is_0xc9_245() {
    let Some((r, b)) = c9(28, io::BUFFERED_AND_DIRECT_IO) else {
        return;
    };
    assert_eq!(b.parameters[1..], [0, 0, r.key("lower")]);
    quiet_without_verifier(28);
}

#[test]
fn io_call_driver_with_a_cancel_routine_set_is_0xc9_203() {
    let Some((r, b)) = c9(18, io::CALL_WITH_CANCEL_ROUTINE) else {
        return;
    };
    assert_eq!(
        b.parameters[2..],
        [r.key("irp"), r.key("lower")],
        "p3 the IRP, p4 the device"
    );
    assert!(b.parameters[1] != 0, "p2 the call site");
    quiet_without_verifier(18);
}

#[test]
fn deleting_a_device_still_attached_is_0xc9_201() {
    let Some((r, b)) = c9(19, io::DELETE_ATTACHED_DEVICE) else {
        return;
    };
    assert_eq!(b.parameters[2..], [0, r.key("filter")], "p4 the device");
    // Without the verifier the device is deleted while the device below still points at it:
    // the next request (the handle's cleanup) follows AttachedDevice into freed memory, 0x50
    // (documented-only: Windows' freed device object may stay mapped a while).
    let r = run(19, Verifier::Off).unwrap();
    assert!(r.result.is_ok(), "{:?}", r.result);
    let b = r.machine.bugcheck().expect("the close faults");
    assert_eq!(b.code, bugcheck::PAGE_FAULT_IN_NONPAGED_AREA, "{b}");
    assert_eq!(
        b.parameters[0],
        r.key("filter") + 0x18,
        "p1 &filter->AttachedDevice"
    );
    assert!(b.documented_only);
}

#[test]
fn detaching_twice_is_0xc9_202() {
    let Some((r, b)) = c9(20, io::DETACH_NOT_ATTACHED) else {
        return;
    };
    assert_eq!(b.parameters[2..], [0, r.key("lower")], "p4 the device");
    quiet_without_verifier(20);
}

#[test]
fn completing_above_dispatch_level_is_0xc9_0e() {
    let Some((r, b)) = c9(21, nt_abi::bugcheck::io_verifier::COMPLETED_ABOVE_DISPATCH) else {
        return;
    };
    assert_eq!(
        b.parameters,
        [0x0E, 3, r.key("irp"), 0],
        "p2 the IRQL, p3 the IRP"
    );
    quiet_without_verifier(21);
}

/// The CLI reports the rule (exit 3, the code and parameters in `--json`) and, with
/// `--verifier off`, a clean run.
#[test]
fn cli_reports_an_io_verification_rule_and_is_clean_with_the_verifier_off() {
    let Some(sys) = c_fixtures::fixture("iobreak") else {
        return;
    };
    let spec = format!(r"\\.\IoBreak:{:#x}", ioctl(1));
    let run = cli_support::run_json_logged(&sys, &["--ioctl", &spec]);
    assert_eq!(run.exit, Some(3), "{run:#?}");
    let j = run.json();
    assert_eq!(j["verdict"], "bugcheck");
    assert_eq!(j["bugcheck"]["code"], 0xC9);
    assert_eq!(j["bugcheck"]["parameters"][0], io::PENDING_NOT_MARKED);
    assert_eq!(j["bugcheck"]["verifier_rule"], true);
    let run = cli_support::run_json_logged(&sys, &["--verifier", "off", "--ioctl", &spec]);
    assert_eq!(run.exit, Some(0), "{run:#?}");
    assert_eq!(run.json()["verdict"], "clean");
}

/// `--verifier io_verification` alone turns these rules on; the other options alone do not.
#[test]
fn the_io_verification_option_switches_the_rules() {
    use ntsim::VerifierFlags;
    let only = |io_verification| {
        Verifier::Custom(VerifierFlags {
            special_pool: false,
            pool_tracking: false,
            irql_checking: false,
            io_verification,
            misc_checks: false,
            deadlock_detection: false,
            security_checks: false,
        })
    };
    let Some((_, b)) = expect(
        3,
        only(true),
        bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION,
        Some(0x06),
    ) else {
        return;
    };
    assert!(b.verifier_rule);
    let r = run(
        3,
        Verifier::Custom(VerifierFlags {
            io_verification: false,
            ..VerifierFlags::ALL
        }),
    )
    .unwrap();
    assert!(r.result.is_ok(), "{:?}", r.result);
}
