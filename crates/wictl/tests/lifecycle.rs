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

#[test]
fn unload_with_work_in_flight_drains_then_frees() {
    let b = boot();
    let h = rw(&b);
    let late = rw(&b);
    let request = RunCyclesRequest::new(20_000, 64, Mode::RequeueChain, 1, 0, 4);
    let worker = std::thread::spawn(move || (Client::new(h.as_ref()).run(&request), h));
    // Let the request get well under way, then unload underneath it.
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        !worker.is_finished(),
        "the request finished before unload; make it longer"
    );
    let unloader = std::thread::spawn(move || b.unload());
    // While unload waits for the in-flight request, new requests are refused, not served.
    let mut refused = false;
    while !worker.is_finished() {
        let r = late
            .ioctl(
                IOCTL_QUERY_INFO,
                QueryInfoRequest::new().as_bytes(),
                InfoResponse::SIZE as u32,
            )
            .unwrap();
        if r.status == STATUS_DELETE_PENDING {
            assert_eq!(r.information, 0);
            refused = true;
            break;
        }
        assert_eq!(r.status, STATUS_SUCCESS);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(refused, "no request was refused while unload was draining");
    let verdict = unloader.join().unwrap();
    let (result, h) = worker.join().unwrap();
    let r = result.expect("the in-flight request completes normally");
    assert_eq!(r.stats.cycles_completed, 20_000);
    assert_eq!(r.stats.routines_run, 100_000);
    assert!(verdict.clean, "{}", verdict.lines.join("\n"));
    drop((h, late));
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
    let m = ntsim::Machine::new(ntsim::Config::default());
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
    let m = ntsim::Machine::new(ntsim::Config::default());
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
