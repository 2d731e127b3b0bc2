//! Pageable data at raised IRQL (`fixtures/c/pageddata.c`) under Force IRQL Checking: paged
//! pool and the PAGEDATA section are trimmed whenever the driver takes a spin lock or raises the
//! IRQL to DISPATCH_LEVEL, paged back in by a touch below DISPATCH_LEVEL, and a touch at
//! DISPATCH_LEVEL is 0xD1 (the driver's instruction) or 0xA (ntoskrnl's code, here ntsim's);
//! synchronization objects in pageable memory are 0xC4/0xE1. Without IRQL checking none of
//! these fire (Windows fails there only when the page happens to be out).
mod c_fixtures;

use c_fixtures::{Rig, fixture_ioctl};
use nt_abi::*;
use ntsim::{BugCheck, Config, Verifier};

const DEV: &str = r"\\.\NtsimPagedData";

fn rig(verifier: Verifier) -> Option<Rig> {
    Some(
        Rig::start(
            "pageddata",
            DEV,
            Config {
                verifier,
                ..Config::default()
            },
        )?
        .holding_handle(),
    )
}

/// The addresses request 0 reports (after checking its legal path came back right).
struct Addrs {
    buffer: u64,
    variable: u64,
    routine: u64,
    resource: u64,
    two_pages: u64,
}

fn legal_path(r: &Rig) -> Addrs {
    let w = r.call_words(fixture_ioctl(0), &[], 64);
    assert_eq!(
        &w[..3],
        &[11, 22, 12],
        "values read back after trims, and under a lock on locked pages"
    );
    Addrs {
        buffer: w[3],
        variable: w[4],
        routine: w[5],
        resource: w[6],
        two_pages: w[7],
    }
}

fn section(r: &Rig, name: &str) -> (u64, u64) {
    let s = r
        .driver
        .image()
        .sections
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("the fixture has a {name} section"));
    (s.start as u64, (s.start + s.size) as u64)
}

fn bugcheck(r: &Rig, n: u32) -> BugCheck {
    r.h()
        .device_io_control(fixture_ioctl(n), &[], 8)
        .expect_err("bug check")
}

fn in_image(r: &Rig, a: u64) -> bool {
    let img = r.driver.image();
    (img.base as u64..(img.base + img.size) as u64).contains(&a)
}

#[test]
fn pageable_data_touched_below_dispatch_is_paged_back_in_and_locked_pages_stay() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    let a = legal_path(&r);
    let (lo, hi) = section(&r, "PAGEDATA");
    assert!(
        (lo..hi).contains(&a.variable),
        "the variable lives in PAGEDATA"
    );
    // Again: the second round trims pages that were paged back in by the first.
    legal_path(&r);
    r.finish();
}

#[test]
fn driver_read_of_paged_pool_under_a_spin_lock_is_0xd1_read() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    let a = legal_path(&r);
    let bc = bugcheck(&r, 1);
    assert_eq!(bc.code, bugcheck::DRIVER_IRQL_NOT_LESS_OR_EQUAL, "{bc}");
    assert_eq!(bc.parameters[0], a.buffer);
    assert_eq!(bc.parameters[1], DISPATCH_LEVEL as u64);
    assert_eq!(bc.parameters[2], 0, "read");
    assert!(
        in_image(&r, bc.parameters[3]),
        "p4 is the driver's instruction"
    );
}

#[test]
fn driver_write_of_paged_pool_after_keraiseirql_is_0xd1_write() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    let a = legal_path(&r);
    let bc = bugcheck(&r, 2);
    assert_eq!(bc.code, bugcheck::DRIVER_IRQL_NOT_LESS_OR_EQUAL, "{bc}");
    assert_eq!(bc.parameters[0], a.buffer + 4, "paged_buf[1]");
    assert_eq!(bc.parameters[2], 1, "write");
    assert!(in_image(&r, bc.parameters[3]));
}

#[test]
fn pagedata_variable_under_a_spin_lock_is_0xd1() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    let a = legal_path(&r);
    let bc = bugcheck(&r, 3);
    assert_eq!(bc.code, bugcheck::DRIVER_IRQL_NOT_LESS_OR_EQUAL, "{bc}");
    assert_eq!(bc.parameters[0], a.variable);
    assert_eq!(bc.parameters[2], 0, "read");
}

#[test]
fn ntoskrnl_touching_paged_pool_for_the_driver_at_dispatch_is_0xa() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    let a = legal_path(&r);
    let bc = bugcheck(&r, 4);
    assert_eq!(bc.code, bugcheck::IRQL_NOT_LESS_OR_EQUAL, "{bc}");
    assert_eq!(bc.parameters[0], a.buffer);
    assert_eq!(bc.parameters[1], DISPATCH_LEVEL as u64);
    assert_eq!(bc.parameters[2], 0, "read");
    assert!(
        !in_image(&r, bc.parameters[3]),
        "p4 is kernel code, not the driver's"
    );
}

#[test]
fn synchronization_objects_in_pageable_memory_are_0xc4_0xe1() {
    for (n, what) in [
        (5, "event in paged pool"),
        (6, "spin lock in paged pool"),
        (7, "ERESOURCE in PAGEDATA"),
    ] {
        let Some(r) = rig(Verifier::Standard) else {
            return;
        };
        let a = legal_path(&r);
        let bc = bugcheck(&r, n);
        assert_eq!(
            bc.code,
            bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
            "{what}: {bc}"
        );
        assert_eq!(
            bc.parameters[0],
            bugcheck::verifier::SYNC_OBJECT_PAGEABLE,
            "{what}"
        );
        let object = if n == 7 { a.resource } else { a.buffer };
        assert_eq!(bc.parameters[1], object, "{what}");
    }
}

#[test]
fn pageable_code_run_after_a_raise_faults_on_its_first_instruction() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    let a = legal_path(&r);
    let (lo, hi) = section(&r, "PAGE");
    assert!((lo..hi).contains(&a.routine));
    let bc = bugcheck(&r, 8);
    assert_eq!(bc.code, bugcheck::DRIVER_IRQL_NOT_LESS_OR_EQUAL, "{bc}");
    assert_eq!(bc.parameters[0], a.routine, "the routine's entry");
    assert_eq!(bc.parameters[2], 8, "execute");
    assert_eq!(bc.parameters[3], a.routine);
}

#[test]
fn a_dpc_touching_the_page_a_passive_read_did_not_bring_back_is_0xd1() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    let a = legal_path(&r);
    let _ = r.h().device_io_control(fixture_ioctl(9), &[], 8);
    let bc = c_fixtures::bugcheck_within(&r.machine, std::time::Duration::from_secs(10))
        .expect("bug check from the DPC");
    assert_eq!(bc.code, bugcheck::DRIVER_IRQL_NOT_LESS_OR_EQUAL, "{bc}");
    assert_eq!(
        bc.parameters[0],
        a.two_pages + 4096,
        "page 1, not page 0: {bc}"
    );
    assert_eq!(bc.parameters[1], DISPATCH_LEVEL as u64);
    assert_eq!(bc.parameters[2], 0, "read");
    assert!(in_image(&r, bc.parameters[3]));
}

#[test]
fn without_irql_checking_nothing_is_raised() {
    let Some(r) = rig(Verifier::Off) else { return };
    legal_path(&r);
    assert_eq!(r.call_words(fixture_ioctl(1), &[], 8), vec![11]);
    r.call_words(fixture_ioctl(2), &[], 0);
    assert_eq!(r.call_words(fixture_ioctl(3), &[], 8), vec![22]);
    r.call_words(fixture_ioctl(4), &[], 8);
    r.call_words(fixture_ioctl(5), &[], 0);
    assert_eq!(r.call_words(fixture_ioctl(8), &[], 8), vec![42]);
    assert_eq!(r.call_words(fixture_ioctl(9), &[], 8), vec![3]);
    r.finish();
}
