//! In-process edge cases of the asynchronous-I/O exports that the C fixtures do not reach:
//! an IRP without a thread, a remove lock initialized with a size that is neither layout's,
//! and the cancel spin lock's IRQLs seen from an ntsim kernel thread.
use nt_abi::*;
use ntsim::{Config, Machine, exports};

/// IoGetRequestorProcess of an IRP with no `Tail.Overlay.Thread` is NULL (ReactOS
/// `IoGetRequestorProcess`); outside a request's context IoGetCurrentProcess is the System
/// process, and PsGetCurrentProcess agrees.
#[test]
fn requestor_of_an_irp_without_thread_is_null() {
    let m = Machine::new(Config::default());
    let (req, cur, ps) = m
        .run_in_kernel_thread(|| {
            // A zeroed IRP-sized block: Tail.Overlay.Thread is NULL.
            let mut irp = vec![0u64; core::mem::size_of::<IRP>() / 8];
            let p = irp.as_mut_ptr().cast::<IRP>();
            // SAFETY: `p` is IRP-sized, zeroed, writable storage that outlives the calls.
            let req = unsafe { exports::IoGetRequestorProcess(p) } as usize;
            // SAFETY: no preconditions.
            let cur = unsafe { exports::IoGetCurrentProcess() } as usize;
            // SAFETY: no preconditions.
            let ps = unsafe { exports::PsGetCurrentProcess() } as usize;
            (req, cur, ps)
        })
        .expect("no bug check");
    assert_eq!(req, 0);
    assert!(cur != 0);
    assert_eq!(cur, ps);
    // The process object is a dispatcher object of type ProcessObject.
    // SAFETY: ntsim's process object lives as long as the machine.
    let ty = unsafe { *(cur as *const u8) };
    assert_eq!(ty, PROCESS_OBJECT);
}

/// IoInitializeRemoveLockEx with a RemlockSize that is neither the free (0x20) nor the
/// checked (0x78) size leaves the storage untouched; with the free size it sets IoCount = 1,
/// Removed = FALSE and a non-signalled synchronization event.
#[test]
fn remove_lock_size_selects_the_layout() {
    let m = Machine::new(Config::default());
    let (bad, good) = m
        .run_in_kernel_thread(|| {
            let mut bad = [0xABu8; 0x78];
            let mut good = [0xABu8; 0x20];
            // SAFETY: 0x78 writable bytes; the size is deliberately neither layout's.
            unsafe { exports::IoInitializeRemoveLockEx(bad.as_mut_ptr().cast(), 1, 0, 0, 0x40) };
            // SAFETY: 0x20 writable bytes, the free layout's size.
            unsafe {
                exports::IoInitializeRemoveLockEx(
                    good.as_mut_ptr().cast(),
                    1,
                    0,
                    0,
                    REMLOCK_SIZE_FREE,
                )
            };
            (bad, good)
        })
        .expect("no bug check");
    assert!(bad.iter().all(|&b| b == 0xAB), "untouched");
    assert_eq!(good[0], 0, "Removed");
    assert_eq!(
        i32::from_le_bytes(good[4..8].try_into().unwrap()),
        1,
        "IoCount"
    );
    assert_eq!(
        good[8], EVENT_SYNCHRONIZATION_OBJECT,
        "RemoveEvent.Header.Type"
    );
    assert_eq!(
        i32::from_le_bytes(good[12..16].try_into().unwrap()),
        0,
        "not signalled"
    );
}

/// IoAcquireCancelSpinLock raises to DISPATCH_LEVEL and returns the old IRQL;
/// IoReleaseCancelSpinLock restores it, and IoCancelIrp of an IRP with no cancel routine
/// returns FALSE with `Cancel` set.
#[test]
fn cancel_lock_and_cancel_without_routine() {
    let m = Machine::new(Config::default());
    let (old, held, after, cancelled, flag) = m
        .run_in_kernel_thread(|| {
            let mut old: KIRQL = 0xFF;
            // SAFETY: a writable local.
            unsafe { exports::IoAcquireCancelSpinLock(&mut old) };
            let held = ntsim::ke::irql::get();
            // SAFETY: we hold the cancel spin lock.
            unsafe { exports::IoReleaseCancelSpinLock(old) };
            let after = ntsim::ke::irql::get();
            let mut irp = vec![0u64; core::mem::size_of::<IRP>() / 8];
            let p = irp.as_mut_ptr().cast::<IRP>();
            // SAFETY: IRP-sized zeroed storage (no stack location, no cancel routine).
            let r = unsafe { exports::IoCancelIrp(p) };
            // SAFETY: as above.
            let flag = unsafe { (*p).Cancel };
            (old, held, after, r, flag)
        })
        .expect("no bug check");
    assert_eq!(
        (old, held, after),
        (PASSIVE_LEVEL, DISPATCH_LEVEL, PASSIVE_LEVEL)
    );
    assert_eq!(cancelled, 0);
    assert_eq!(flag, 1);
    assert!(m.bugcheck().is_none());
}
