//! Issue 10: a DRIVER_OBJECT (with its extension) is freed at its last reference after the
//! driver is unloaded, on pages that then stay inaccessible, so a use after that faults as on
//! Windows (0x50, documented-only: Windows' freed pool may stay mapped) — like device objects
//! after IoDeleteDevice. Uses the C fixture `dbgfree` (tests/debugger.rs) as the driver.

use nt_abi::bugcheck;
use nt_abi::*;
use ntsim::{Config, Machine};

mod c_fixtures;

fn machine() -> Machine {
    Machine::new(Config {
        unload_grace: std::time::Duration::from_millis(200),
        ..Config::default()
    })
}

/// Read the driver object's `Type` from a kernel thread: Ok(Type) or the bug check.
fn read_type(m: &Machine, obj: usize) -> Result<i16, Box<ntsim::BugCheck>> {
    m.run_in_kernel_thread(move || {
        let p = obj as *const DRIVER_OBJECT;
        // SAFETY: only computes the field's address (no access).
        let ty = unsafe { &raw const (*p).Type };
        // SAFETY: deliberately reading an object that may have been freed: the access under
        // test (a freed object's pages are inaccessible; the fault is a bug check).
        unsafe { core::ptr::read_volatile(ty) }
    })
    .map_err(Box::new)
}

#[test]
fn the_driver_object_is_freed_at_unload_and_a_later_use_faults() {
    let Some(sys) = c_fixtures::fixture("dbgfree") else {
        return;
    };
    let m = machine();
    let d = m.load_driver(&sys).unwrap();
    assert_eq!(d.start().unwrap(), STATUS_SUCCESS);
    let obj = d.driver_object() as usize;
    // SAFETY: the live driver object; its extension points back at it.
    let ext = unsafe { (*(obj as *const DRIVER_OBJECT)).DriverExtension } as usize;
    // SAFETY: as above: the extension ntsim allocated with the object.
    let back = unsafe { (*(ext as *const DRIVER_EXTENSION)).DriverObject } as usize;
    assert_eq!(back, obj);
    assert_eq!(read_type(&m, obj).unwrap(), IO_TYPE_DRIVER);
    let r = d.unload().unwrap();
    assert!(r.is_clean(), "{r:?}");
    // A second unload and an audit do not touch the freed object.
    assert!(d.unload().unwrap().unload_routine);
    assert!(d.audit().unload_routine);
    assert_eq!(d.start().unwrap(), STATUS_UNSUCCESSFUL);
    let b = read_type(&m, obj).unwrap_err();
    assert_eq!(b.code, bugcheck::PAGE_FAULT_IN_NONPAGED_AREA, "{b}");
    assert_eq!((b.parameters[0], b.parameters[1]), (obj as u64, 0), "{b}");
    assert!(b.documented_only, "{b}");
}

/// A reference the driver took (`ObReferenceObject(DriverObject)`) keeps the object alive
/// after unload; it is freed when that reference is dropped.
#[test]
fn a_held_reference_keeps_the_driver_object_until_it_is_dropped() {
    let Some(sys) = c_fixtures::fixture("dbgfree") else {
        return;
    };
    let m = machine();
    let d = m.load_driver(&sys).unwrap();
    assert_eq!(d.start().unwrap(), STATUS_SUCCESS);
    let obj = d.driver_object() as usize;
    m.run_in_kernel_thread(move || {
        // SAFETY: referencing the live driver object.
        let n = unsafe { ntsim::exports::ObfReferenceObject(obj as PVOID) };
        assert_eq!(n, 2);
    })
    .unwrap();
    assert!(d.unload().unwrap().is_clean());
    assert_eq!(
        read_type(&m, obj).unwrap(),
        IO_TYPE_DRIVER,
        "still referenced"
    );
    m.run_in_kernel_thread(move || {
        // SAFETY: dropping the reference taken above (the last one).
        let n = unsafe { ntsim::exports::ObfDereferenceObject(obj as PVOID) };
        assert_eq!(n, 0);
    })
    .unwrap();
    let b = read_type(&m, obj).unwrap_err();
    assert_eq!(b.code, bugcheck::PAGE_FAULT_IN_NONPAGED_AREA, "{b}");
}
