//! Stopping a legacy driver as Windows does (I/O manager, `NtUnloadDriver`): the driver is marked
//! unload-pending, new opens of its devices fail with STATUS_NO_SUCH_DEVICE, handles already
//! open keep working, and DriverUnload runs only once the last handle is closed. Through the
//! real cross-built `wdm_workitem.sys`.
#![allow(clippy::result_large_err)]
// `UnloadError` carries a `BugCheck`, as the crate's results do
// ntsim (the runtime these tests load the driver in) is Linux x86_64 only.
#![cfg(target_os = "linux")]
mod common;

use std::time::{Duration, Instant};

use ioctl::{DEVICE_NAME, IOCTL_QUERY_INFO, InfoResponse, QueryInfoRequest, USER_PATH, Wire};
use nt_abi::*;
use ntsim::{Config, Machine, OpenDevice, OpenError, UnloadError};

use common::sys as wdm_sys;

/// What the driver prints at the end of its DriverUnload.
const UNLOADED: &str = "wdm-workitem: unloaded:";

fn start(cfg: Config) -> (Machine, ntsim::Driver) {
    // The driver prints UNLOADED at DPFLTR_INFO_LEVEL: widen Kd_IHVDRIVER_Mask so it reaches
    // the log (Windows' default mask shows only the error level).
    let m = Machine::new(Config {
        dbg_filter: vec![ntsim::DbgFilter {
            component: nt_abi::dbg::DPFLTR_IHVDRIVER_ID,
            mask: 0xF,
        }],
        ..cfg
    });
    let d = m.load_driver(wdm_sys()).expect("load");
    assert_eq!(d.start().expect("no bug check"), STATUS_SUCCESS);
    (m, d)
}

fn unload_ran(m: &Machine) -> bool {
    m.dbgprint_lines().iter().any(|l| l.contains(UNLOADED))
}

fn query_status(h: &ntsim::Handle) -> NTSTATUS {
    h.device_io_control(
        IOCTL_QUERY_INFO,
        QueryInfoRequest::new().as_bytes(),
        InfoResponse::SIZE,
    )
    .expect("no bug check")
    .status
}

/// Open until the driver is seen unload-pending (the unload thread marks it); the status.
fn open_while_pending(m: &Machine, path: &str) -> NTSTATUS {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match m.open(path, GENERIC_READ) {
            Ok(h) => h.close().expect("no bug check"),
            Err(OpenError::Status(s)) => return s,
            Err(OpenError::BugCheck(b)) => panic!("{b}"),
        }
        assert!(
            Instant::now() < deadline,
            "the driver never became unload-pending"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn driver_unload_waits_for_the_last_handle_closed_on_another_thread() {
    let (m, d) = start(Config::default());
    let h = m.open(USER_PATH, GENERIC_READ).expect("open");
    std::thread::scope(|s| {
        let unloader = s.spawn(|| d.unload());
        // New opens fail as soon as the unload is pending, by either name.
        assert_eq!(open_while_pending(&m, USER_PATH), STATUS_NO_SUCH_DEVICE);
        assert_eq!(
            m.open(DEVICE_NAME, GENERIC_READ).err(),
            Some(OpenError::Status(STATUS_NO_SUCH_DEVICE))
        );
        std::thread::sleep(Duration::from_millis(300));
        // DriverUnload has not run: the unload waits, the device is still there, and the open
        // handle is still served by the driver (its own unload gate is not closed yet).
        assert!(
            !unloader.is_finished(),
            "unload returned with a handle open"
        );
        assert!(!unload_ran(&m), "DriverUnload ran with a handle open");
        assert_eq!(d.audit().devices, vec![DEVICE_NAME.to_string()]);
        assert_eq!(query_status(&h), STATUS_SUCCESS);
        // The last handle closes on another thread: that releases the unload.
        s.spawn(move || h.close().expect("no bug check"))
            .join()
            .unwrap();
        let report = unloader.join().unwrap().expect("unload completes");
        assert!(report.unload_routine);
        assert!(report.is_clean(), "{report:?}");
    });
    assert!(unload_ran(&m), "{:?}", m.dbgprint_lines());
    assert!(m.bugcheck().is_none());
    assert_eq!(
        m.open(USER_PATH, GENERIC_READ).err(),
        Some(OpenError::Status(STATUS_OBJECT_NAME_NOT_FOUND)),
        "link and device are gone after DriverUnload"
    );
}

#[test]
fn an_unload_timed_out_on_open_handles_reports_them_and_does_not_unload() {
    let (m, d) = start(Config {
        unload_wait: Duration::from_millis(300),
        ..Config::default()
    });
    let h1 = m.open(USER_PATH, GENERIC_READ).expect("open");
    let h2 = m
        .open(USER_PATH, GENERIC_READ | GENERIC_WRITE)
        .expect("open");
    let t = Instant::now();
    let err = d.unload().expect_err("handles are open");
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        err,
        UnloadError::OpenHandles(vec![OpenDevice {
            device: DEVICE_NAME.to_string(),
            handles: 2,
        }])
    );
    assert_eq!(
        err.to_string(),
        r"unload pending, DriverUnload not called: 2 open handles on \Device\WdmWorkItem"
    );
    assert!(!unload_ran(&m));
    assert!(m.last_unload_audit().is_none(), "no DriverUnload, no audit");
    // Still unload-pending: no new opens; the open handles keep working.
    assert_eq!(
        m.open(USER_PATH, GENERIC_READ).err(),
        Some(OpenError::Status(STATUS_NO_SUCH_DEVICE))
    );
    assert_eq!(query_status(&h1), STATUS_SUCCESS);
    h1.close().unwrap();
    let err = d.unload().expect_err("one handle is open");
    assert!(
        err.to_string()
            .ends_with(r"1 open handle on \Device\WdmWorkItem")
    );
    h2.close().unwrap();
    // Once they are closed, a retry unloads.
    let report = d.unload().expect("unload completes");
    assert!(report.is_clean(), "{report:?}");
    assert!(unload_ran(&m));
    assert!(m.bugcheck().is_none());
}

#[test]
fn without_open_handles_unload_is_immediate() {
    let (m, d) = start(Config::default());
    m.open(USER_PATH, GENERIC_READ).unwrap().close().unwrap();
    let t = Instant::now();
    assert!(d.unload().unwrap().is_clean());
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(unload_ran(&m));
}
