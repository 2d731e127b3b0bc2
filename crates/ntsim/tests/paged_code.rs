//! Pageable driver code at raised IRQL (`fixtures/c/pagedcode.c`): with IRQL checking, PAGE code
//! run after a spin lock's trim is 0xD1 at its first instruction; the same code at
//! PASSIVE_LEVEL, and nonpaged code at DISPATCH_LEVEL, are clean; without the option nothing
//! is raised (Windows fails there only when the page happens to be out).
mod c_fixtures;

use c_fixtures::{Rig, fixture_ioctl};
use nt_abi::*;
use ntsim::{Config, Verifier};

const DEV: &str = r"\\.\NtsimPaged";
/// What KeQueryTimeIncrement returns (15.625 ms in 100-ns units).
const TIME_INCREMENT: u64 = 156_250;

fn rig(verifier: Verifier) -> Option<Rig> {
    Some(
        Rig::start(
            "pagedcode",
            DEV,
            Config {
                verifier,
                ..Config::default()
            },
        )?
        .holding_handle(),
    )
}

/// The fixture image's PAGE section as [start, end).
fn page_section(r: &Rig) -> (usize, usize) {
    let s = r
        .driver
        .image()
        .sections
        .iter()
        .find(|s| s.name == "PAGE")
        .expect("the fixture has a PAGE section");
    (s.start, s.start + s.size)
}

#[test]
fn pageable_code_at_passive_and_nonpaged_code_at_dispatch_are_clean() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    let w = r.call_words(fixture_ioctl(0), &[], 16);
    assert_eq!(
        w[0], TIME_INCREMENT,
        "KeQueryTimeIncrement's value came back"
    );
    let (lo, hi) = page_section(&r);
    assert!(
        (lo..hi).contains(&(w[1] as usize)),
        "the routine lives in PAGE"
    );
    assert_eq!(r.call_words(fixture_ioctl(2), &[], 8), vec![TIME_INCREMENT]);
    r.finish();
}

#[test]
fn pageable_code_calling_at_dispatch_level_is_0xd1_with_irql_checking() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    let routine = r.call_words(fixture_ioctl(0), &[], 16)[1];
    let bc = r
        .h()
        .device_io_control(fixture_ioctl(1), &[], 8)
        .expect_err("bug check");
    assert_eq!(bc.code, 0xD1, "{bc}");
    assert_eq!(bc.parameters[1], DISPATCH_LEVEL as u64);
    assert_eq!(bc.parameters[2], 8, "execute");
    // The spin lock's trim made PAGE inaccessible, so the routine's first instruction faults.
    assert_eq!(bc.parameters[0], routine, "{bc}");
    assert_eq!(bc.parameters[3], routine);
}

#[test]
fn resident_pageable_code_in_a_dpc_is_0xd1_at_its_call_into_ntoskrnl_marked_stricter() {
    let Some(r) = rig(Verifier::Standard) else {
        return;
    };
    // Request 0 runs the routine at PASSIVE_LEVEL, which pages PAGE back in.
    r.call_words(fixture_ioctl(0), &[], 16);
    let _ = r.h().device_io_control(fixture_ioctl(3), &[], 0);
    let bc = c_fixtures::bugcheck_within(&r.machine, std::time::Duration::from_secs(10))
        .expect("bug check from the DPC");
    assert_eq!(bc.code, 0xD1, "{bc}");
    assert_eq!(bc.parameters[1], DISPATCH_LEVEL as u64);
    assert_eq!(bc.parameters[2], 8, "execute");
    assert_eq!(bc.parameters[0], bc.parameters[3]);
    let (lo, hi) = page_section(&r);
    let at = bc.parameters[0] as usize;
    assert!(at > lo && at <= hi, "{at:#x} is a return address in PAGE");
    assert!(bc.documented_only, "stricter than Windows: {bc}");
}

#[test]
fn without_irql_checking_nothing_is_raised() {
    let Some(r) = rig(Verifier::Off) else { return };
    assert_eq!(r.call_words(fixture_ioctl(1), &[], 8), vec![TIME_INCREMENT]);
    r.finish();
}
