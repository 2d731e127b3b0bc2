//! Export defects the PE mutation fuzz (`pe_fuzz.rs`) found, each pinned by a test that fails
//! without its fix: a mutated driver passes ntsim pointers and values a correct one would not,
//! and ntsim must answer as x64 Windows does (misaligned data is read, not faulted on) instead
//! of panicking.
mod ntsim_support;

use nt_abi::*;
use ntsim::Verifier;
use ntsim_support::machine;

/// `n` bytes of 16-aligned scratch, handed out at `offset` (to make it misaligned).
fn scratch(buf: &mut Vec<u64>, offset: usize) -> usize {
    buf.resize(64, 0);
    buf.as_mut_ptr() as usize + offset
}

#[test]
fn a_misaligned_unicode_string_is_read_as_x64_reads_it() {
    // Found by the fuzz: IoCreateDevice's DeviceName at an odd address panicked in read_unicode.
    let m = machine(Verifier::Standard);
    let drv = m.host_driver().unwrap().driver_object() as usize;
    m.run_in_kernel_thread(move || {
        let name: Vec<u16> = r"\Device\Odd".encode_utf16().collect();
        // A byte buffer for the name's characters, at an odd address too.
        let mut chars = vec![0u8; name.len() * 2 + 1];
        for (i, c) in name.iter().enumerate() {
            chars[1 + 2 * i..3 + 2 * i].copy_from_slice(&c.to_le_bytes());
        }
        let us = UNICODE_STRING {
            Length: (name.len() * 2) as u16,
            MaximumLength: (name.len() * 2) as u16,
            Buffer: chars.as_mut_ptr().wrapping_add(1).cast(),
        };
        let mut store = Vec::new();
        let at = scratch(&mut store, 3);
        // SAFETY: `at` has room for a UNICODE_STRING; an unaligned write is what x64 allows.
        unsafe { (at as *mut UNICODE_STRING).write_unaligned(us) };
        let mut dev: *mut DEVICE_OBJECT = core::ptr::null_mut();
        // SAFETY: the host driver object, a (misaligned) valid name, a writable out-pointer.
        let st = unsafe {
            ntsim::exports::IoCreateDevice(
                drv as *mut DRIVER_OBJECT,
                0,
                at as *mut UNICODE_STRING,
                FILE_DEVICE_UNKNOWN,
                0,
                0,
                &mut dev,
            )
        };
        assert_eq!(st, STATUS_SUCCESS);
        // SAFETY: the device just created.
        unsafe { ntsim::exports::IoDeleteDevice(dev) };
    })
    .unwrap();
}

#[test]
fn a_misaligned_kevent_initializes() {
    let m = machine(Verifier::Standard);
    m.run_in_kernel_thread(|| {
        let mut store = Vec::new();
        let at = scratch(&mut store, 4);
        // SAFETY: `at` has room for a KEVENT (x64 does not require it aligned to write it).
        unsafe { ntsim::exports::KeInitializeEvent(at as *mut KEVENT, NOTIFICATION_EVENT, 1) };
        // SAFETY: just initialized, read unaligned.
        let ev = unsafe { (at as *const KEVENT).read_unaligned() };
        assert_eq!(ev.Header.Type, EVENT_NOTIFICATION_OBJECT);
        assert_eq!(ev.Header.SignalState, 1);
        assert_eq!(ev.Header.WaitListHead.Flink as usize, at + 8);
    })
    .unwrap();
}

#[test]
fn a_misaligned_or_far_timeout_is_no_panic() {
    // Found by the fuzz: a misaligned LARGE_INTEGER timeout panicked (it is read as x64 reads
    // it now). Far-future absolute and huge relative timeouts do not overflow either. A wait on
    // a signaled event returns at once whatever the timeout.
    let m = machine(Verifier::Standard);
    m.run_in_kernel_thread(|| {
        let mut ev = core::mem::MaybeUninit::<KEVENT>::zeroed();
        // SAFETY: writable KEVENT storage.
        unsafe { ntsim::exports::KeInitializeEvent(ev.as_mut_ptr(), NOTIFICATION_EVENT, 1) };
        let mut store = Vec::new();
        for (offset, t) in [(0, i64::MAX), (5, i64::MAX), (1, -1), (3, i64::MIN + 1)] {
            let at = scratch(&mut store, offset);
            // SAFETY: `at` has room for 8 bytes.
            unsafe { (at as *mut i64).write_unaligned(t) };
            // SAFETY: an initialized event; a (possibly misaligned) LARGE_INTEGER timeout.
            let st = unsafe {
                ntsim::exports::KeWaitForSingleObject(
                    ev.as_mut_ptr().cast(),
                    EXECUTIVE,
                    KERNEL_MODE,
                    0,
                    at as *mut LARGE_INTEGER,
                )
            };
            assert_eq!(st, STATUS_SUCCESS, "timeout {t:#x} at +{offset}");
        }
    })
    .unwrap();
}
