//! Pageable driver code at raised IRQL (`fixtures/c/pagedcode.c`): with IRQL checking a call
//! into ntoskrnl from a PAGE section at DISPATCH_LEVEL is 0xD1; the same code at
//! PASSIVE_LEVEL, and nonpaged code at DISPATCH_LEVEL, are clean; without the option nothing
//! is raised (Windows fails there only when the page happens to be out).
mod c_fixtures;

use nt_abi::*;
use ntsim::{Config, Machine, Verifier};

fn code(f: u32) -> u32 {
    ctl_code(
        FILE_DEVICE_UNKNOWN,
        0x800 + f,
        METHOD_BUFFERED,
        FILE_ANY_ACCESS,
    )
}

fn words(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Load the fixture with `verifier`; None when the C tools are missing and skipping is allowed.
fn load(verifier: Verifier) -> Option<(Machine, ntsim::Driver, ntsim::Handle)> {
    let sys = c_fixtures::fixture("pagedcode")?;
    let machine = Machine::new(Config {
        verifier,
        ..Config::default()
    });
    let driver = machine.load_driver(&sys).expect("the fixture loads");
    assert_eq!(driver.start().expect("DriverEntry"), STATUS_SUCCESS);
    let handle = machine
        .open(r"\\.\NtsimPaged", GENERIC_READ | GENERIC_WRITE)
        .expect("open");
    Some((machine, driver, handle))
}

#[test]
fn pageable_code_at_passive_and_nonpaged_code_at_dispatch_are_clean() {
    let Some((machine, driver, h)) = load(Verifier::Standard) else {
        return;
    };
    let r = h.device_io_control(code(0), &[], 16).expect("no bug check");
    assert_eq!(r.status, STATUS_SUCCESS);
    let w = words(&r.output);
    assert_eq!(w[0], 156_250, "KeQueryTimeIncrement's value came back");
    let img = driver.image();
    let sec = img
        .sections
        .iter()
        .find(|s| s.name == "PAGE")
        .expect("the fixture has a PAGE section");
    assert!(
        (w[1] as usize) >= sec.start && (w[1] as usize) < sec.start + sec.size,
        "the routine lives in PAGE"
    );
    let r = h.device_io_control(code(2), &[], 8).expect("no bug check");
    assert_eq!(words(&r.output), vec![156_250]);
    h.close().unwrap();
    driver.unload().expect("unload");
    assert!(machine.bugcheck().is_none());
}

#[test]
fn pageable_code_calling_at_dispatch_level_is_0xd1_with_irql_checking() {
    let Some((_machine, driver, h)) = load(Verifier::Standard) else {
        return;
    };
    let bc = h.device_io_control(code(1), &[], 8).expect_err("bug check");
    assert_eq!(bc.code, 0xD1, "{bc}");
    assert_eq!(bc.parameters[1], DISPATCH_LEVEL as u64);
    assert_eq!(bc.parameters[2], 8, "execute");
    assert_eq!(bc.parameters[0], bc.parameters[3]);
    let sec = driver
        .image()
        .sections
        .iter()
        .find(|s| s.name == "PAGE")
        .cloned()
        .expect("PAGE");
    let at = bc.parameters[0] as usize;
    assert!(
        at > sec.start && at <= sec.start + sec.size,
        "{at:#x} in PAGE"
    );
}

#[test]
fn without_irql_checking_nothing_is_raised() {
    let Some((machine, driver, h)) = load(Verifier::Off) else {
        return;
    };
    let r = h.device_io_control(code(1), &[], 8).expect("no bug check");
    assert_eq!(words(&r.output), vec![156_250]);
    h.close().unwrap();
    driver.unload().expect("unload");
    assert!(machine.bugcheck().is_none());
}
