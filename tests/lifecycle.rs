//! DriverEntry's undo on failure, and unload with work in flight.
// ntsim (the backend these tests drive) is Linux x86_64 only.
#![cfg(target_os = "linux")]
mod common;

use std::time::Duration;

use common::*;
use ioctl::*;
use nt_abi::status::*;
use nt_abi::*;
use wictl::client::Client;

/// Windows semantics for stopping a legacy driver while a request is in flight: the stop marks
/// the driver unload-pending (new opens fail with STATUS_NO_SUCH_DEVICE), the in-flight request
/// and every open handle keep being served, and DriverUnload runs only after the last handle is
/// closed; then it drains and frees everything (verdict clean).
///
/// The driver's own gate (a request arriving after DriverUnload began gets STATUS_DELETE_PENDING
/// from its rundown) is not reachable this way: the I/O manager never sends an IRP to a driver
/// whose DriverUnload has started, since every IRP comes through an open handle. The gate stays
/// in the driver as defence in depth; no faithful ntsim path exercises it.
#[test]
fn unload_with_work_in_flight_waits_for_the_last_handle() {
    let b = boot();
    let m = b.shared_machine();
    let unloaded = {
        let m = m.clone();
        move || {
            m.dbgprint_lines()
                .iter()
                .any(|l| l.contains("wdm-workitem: unloaded:"))
        }
    };
    let h = rw(&b);
    let idle = rw(&b);
    let request = RunCyclesRequest::new(20_000, 64, Mode::RequeueChain, 1, 0, 4);
    let worker = std::thread::spawn(move || (Client::new(h.as_ref()).run(&request), h));
    // Let the request get well under way, then stop the driver underneath it.
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        !worker.is_finished(),
        "the request finished before unload; make it longer"
    );
    let unloader = std::thread::spawn(move || b.unload());
    // Unload-pending: new opens are refused by the I/O manager; open handles still work.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let refused = loop {
        match m.open(USER_PATH, GENERIC_READ) {
            Ok(probe) => probe.close().unwrap(),
            Err(ntsim::OpenError::Status(s)) => break s,
            Err(ntsim::OpenError::BugCheck(bc)) => panic!("{bc}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the driver never became unload-pending"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(refused, STATUS_NO_SUCH_DEVICE);
    let info = |h: &dyn wictl::backend::DeviceHandle| {
        h.ioctl(
            IOCTL_QUERY_INFO,
            QueryInfoRequest::new().as_bytes(),
            InfoResponse::SIZE as u32,
        )
        .unwrap()
        .status
    };
    assert_eq!(info(idle.as_ref()), STATUS_SUCCESS);
    assert!(!unloaded(), "DriverUnload ran during the request");
    // The in-flight request completes normally.
    let (result, h) = worker.join().unwrap();
    let r = result.expect("the in-flight request completes normally");
    assert_eq!(r.stats.cycles_completed, 20_000);
    assert_eq!(r.stats.routines_run, 100_000);
    // Two handles still open: no DriverUnload yet.
    drop(h);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!unloaded(), "DriverUnload ran with a handle still open");
    assert!(!unloader.is_finished());
    assert_eq!(info(idle.as_ref()), STATUS_SUCCESS);
    // The last handle closes: DriverUnload runs, drains and frees.
    drop(idle);
    let verdict = unloader.join().unwrap();
    assert!(verdict.clean, "{}", verdict.lines.join("\n"));
    assert!(unloaded(), "{:?}", m.dbgprint_lines());
    assert!(m.bugcheck().is_none());
}

/// A machine on which the driver's INFO-level messages (`DbgPrintEx(DPFLTR_IHVDRIVER_ID,
/// DPFLTR_INFO_LEVEL, …)`) reach the log: Windows filters them out unless `Kd_IHVDRIVER_Mask`
/// has bit 3, so the test widens it as a developer does.
fn show_driver_info() -> ntsim::Config {
    ntsim::Config {
        dbg_filter: vec![ntsim::DbgFilter {
            component: nt_abi::dbg::DPFLTR_IHVDRIVER_ID,
            mask: 0xF,
        }],
        ..ntsim::Config::default()
    }
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain([0]).collect()
}

fn unicode(w: &mut [u16]) -> UNICODE_STRING {
    UNICODE_STRING {
        Length: ((w.len() - 1) * 2) as u16,
        MaximumLength: (w.len() * 2) as u16,
        Buffer: w.as_mut_ptr(),
    }
}

#[test]
fn driver_entry_failing_at_the_link_undoes_device_and_slab() {
    let m = ntsim::Machine::new(show_driver_info());
    m.host_driver().unwrap(); // creates \Device\NtsimHost, the link's target
    // Someone else owns \DosDevices\WdmWorkItem: our IoCreateSymbolicLink must fail.
    let st = m
        .run_in_kernel_thread(move || {
            let mut link = wide(DOS_DEVICE_NAME);
            let mut dev = wide("\\Device\\NtsimHost");
            let (mut l, mut d) = (unicode(&mut link), unicode(&mut dev));
            // SAFETY: valid UNICODE_STRINGs for the duration of the call, on an ntsim thread.
            unsafe { ntsim::exports::IoCreateSymbolicLink(&mut l, &mut d) }
        })
        .unwrap();
    assert!(nt_success(st), "host link: {st:#x}");
    let drv = m.load_driver(sys()).unwrap();
    let st = drv.start().expect("no bug check");
    assert_eq!(st, STATUS_OBJECT_NAME_COLLISION);
    // What the failed driver still owns: nothing (device deleted, slab freed, no link).
    let report = drv.unload().expect("no bug check");
    assert!(report.pool.is_empty(), "{report:?}");
    assert!(report.devices.is_empty(), "{report:?}");
    assert!(report.links.is_empty(), "{report:?}");
    assert!(m.bugcheck().is_none());
}

#[test]
fn a_second_copy_fails_at_the_device_name_and_leaves_nothing() {
    let m = ntsim::Machine::new(show_driver_info());
    let first = m.load_driver(sys()).unwrap();
    assert_eq!(first.start().unwrap(), STATUS_SUCCESS);
    let second = m.load_driver(sys()).unwrap();
    assert_eq!(second.start().unwrap(), STATUS_OBJECT_NAME_COLLISION);
    let report = second.unload().unwrap();
    assert!(
        report.pool.is_empty() && report.devices.is_empty() && report.links.is_empty(),
        "{report:?}"
    );
    // The first copy still works and unloads clean.
    let h = m.open(USER_PATH, GENERIC_READ).unwrap();
    let r = h
        .device_io_control(
            IOCTL_QUERY_INFO,
            QueryInfoRequest::new().as_bytes(),
            InfoResponse::SIZE,
        )
        .unwrap();
    assert_eq!(r.status, STATUS_SUCCESS);
    drop(h);
    let report = first.unload().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(m.bugcheck().is_none());
    // The driver's debug output tells the same story.
    let log = m.dbgprint_lines().join("\n");
    for want in [
        "wdm-workitem: loaded: IoSizeofWorkItem 88, slab 64 slots x 144 bytes",
        "wdm-workitem: IoCreateDevice failed: c0000035",
        "wdm-workitem: unloaded: work items drained, slab freed, device deleted",
    ] {
        assert!(log.contains(want), "missing {want:?} in:\n{log}");
    }
}
