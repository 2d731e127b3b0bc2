//! Pageable driver code at raised IRQL (`fixtures/c/pagedcode.c`): with IRQL checking a call
//! into ntoskrnl from a PAGE section at DISPATCH_LEVEL is 0xD1; the same code at
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
    let bc = r
        .h()
        .device_io_control(fixture_ioctl(1), &[], 8)
        .expect_err("bug check");
    assert_eq!(bc.code, 0xD1, "{bc}");
    assert_eq!(bc.parameters[1], DISPATCH_LEVEL as u64);
    assert_eq!(bc.parameters[2], 8, "execute");
    assert_eq!(bc.parameters[0], bc.parameters[3]);
    let (lo, hi) = page_section(&r);
    let at = bc.parameters[0] as usize;
    assert!(at > lo && at <= hi, "{at:#x} is a return address in PAGE");
}

#[test]
fn without_irql_checking_nothing_is_raised() {
    let Some(r) = rig(Verifier::Off) else { return };
    assert_eq!(r.call_words(fixture_ioctl(1), &[], 8), vec![TIME_INCREMENT]);
    r.finish();
}
