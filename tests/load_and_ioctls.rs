//! The driver's contract, end to end through the real artifact: the cross-built
//! `wdm_workitem.sys` loaded by ntsim (the verifier on), DriverEntry, every IOCTL through real
//! IRPs (query info, run cycles in every mode), the access bits of the IOCTL codes, several
//! run-time `IoSizeofWorkItem` values, concurrent requests, and an unload that leaves nothing.
// ntsim (the runtime these tests load the driver in) is Linux x86_64 only.
#![cfg(target_os = "linux")]
mod common;

use ioctl::{
    Header, IOCTL_QUERY_INFO, IOCTL_RUN_CYCLES, InfoResponse, QueryInfoRequest, RunCyclesRequest,
    RunCyclesResponse, Wire,
};
use nt_abi::*;
use ntsim::{Config, Machine, OpenError, Verifier};

use common::sys as wdm_sys;

const DEVICE: &str = r"\\.\WdmWorkItem";

fn query_info(h: &ntsim::Handle) -> InfoResponse {
    let req = QueryInfoRequest {
        header: Header::for_struct::<QueryInfoRequest>(),
    };
    let r = h
        .device_io_control(
            IOCTL_QUERY_INFO,
            req.as_bytes(),
            core::mem::size_of::<InfoResponse>(),
        )
        .expect("no bug check");
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(r.information, core::mem::size_of::<InfoResponse>());
    InfoResponse::from_bytes(&r.output).expect("InfoResponse")
}

fn run_cycles(h: &ntsim::Handle, mode: u32, iterations: u32, concurrency: u32) -> ntsim::IoResult {
    let req = RunCyclesRequest {
        header: Header::for_struct::<RunCyclesRequest>(),
        iterations,
        concurrency,
        mode,
        queue_type: DELAYED_WORK_QUEUE as u32,
        flags: 0,
        requeue_depth: if mode == ioctl::Mode::RequeueChain as u32 {
            3
        } else {
            0
        },
    };
    h.device_io_control(
        IOCTL_RUN_CYCLES,
        req.as_bytes(),
        core::mem::size_of::<RunCyclesResponse>(),
    )
    .expect("no bug check")
}

fn start(cfg: Config) -> (Machine, ntsim::Driver) {
    let m = Machine::new(cfg);
    let d = m.load_driver(wdm_sys()).expect("load");
    assert_eq!(d.start().expect("DriverEntry"), STATUS_SUCCESS);
    (m, d)
}

#[test]
fn loads_answers_and_unloads_clean() {
    let (m, d) = start(Config::default());
    let img = d.image();
    for name in nt_abi::imports::WORK_ITEM_IMPORTS {
        assert!(
            img.imports
                .iter()
                .any(|i| i == &format!("ntoskrnl.exe!{name}")),
            "{name} bound"
        );
    }
    assert!(img.sections.iter().any(|s| s.name == ".text"));
    if img.sections.iter().any(|s| s.name == ".reloc") {
        assert!(img.relocations_applied > 0, "DIR64 fixups applied");
    }
    // Per-section protections, as the kernel's mappings: code RX, read-only data R, no W+X.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let perms = |addr: usize| -> String {
        maps.lines()
            .find_map(|l| {
                let (range, rest) = l.split_once(' ')?;
                let (a, b) = range.split_once('-')?;
                let (a, b) = (
                    usize::from_str_radix(a, 16).ok()?,
                    usize::from_str_radix(b, 16).ok()?,
                );
                (addr >= a && addr < b).then(|| rest[..4].to_string())
            })
            .unwrap_or_default()
    };
    for sec in &img.sections {
        let p = perms(sec.start);
        match sec.name.as_str() {
            ".text" => assert_eq!(&p[..3], "r-x", ".text"),
            ".rdata" | ".pdata" | ".reloc" => assert_eq!(&p[..3], "r--", "{}", sec.name),
            ".data" | ".bss" => assert_eq!(&p[..3], "rw-", "{}", sec.name),
            _ => assert!(!(p.contains('w') && p.contains('x')), "{} is W+X", sec.name),
        }
    }
    let h = m.open(DEVICE, GENERIC_READ | GENERIC_WRITE).expect("open");
    let info = query_info(&h);
    assert_eq!(info.io_sizeof_work_item, 0x58);
    assert_eq!(info.perf_frequency, 10_000_000);
    for mode in ioctl::Mode::ALL {
        let r = run_cycles(&h, mode as u32, 200, 4);
        assert_eq!(r.status, STATUS_SUCCESS, "mode {mode:?}");
        let resp = RunCyclesResponse::from_bytes(&r.output).unwrap();
        assert_eq!(resp.stats.cycles_completed, 200, "mode {mode:?}");
    }
    h.close().unwrap();
    // While loaded, the driver owns its device, its link and its slab.
    let live = d.audit();
    assert!(live.unload_routine);
    assert_eq!(live.devices, vec![r"\Device\WdmWorkItem".to_string()]);
    assert_eq!(live.links.len(), 1, "{live:?}");
    assert!(!live.pool.is_empty(), "the slab is in nonpaged pool");
    assert!(live.work_items.is_empty());
    let audit = d.unload().expect("unload without bug check");
    assert!(audit.unload_routine);
    assert!(audit.is_clean(), "{audit:?}");
    assert!(m.bugcheck().is_none());
    assert!(
        m.open(DEVICE, GENERIC_READ).is_err(),
        "device gone after unload"
    );
}

#[test]
fn io_sizeof_work_item_0x40_0x58_0x60() {
    for size in [0x40u32, 0x58, 0x60] {
        let (m, d) = start(Config {
            size_of_work_item: size,
            ..Config::default()
        });
        let h = m.open(DEVICE, GENERIC_READ | GENERIC_WRITE).unwrap();
        let info = query_info(&h);
        assert_eq!(info.io_sizeof_work_item, size);
        assert!(
            info.slab_stride >= size,
            "stride {} covers the item",
            info.slab_stride
        );
        for mode in ioctl::Mode::ALL {
            assert_eq!(
                run_cycles(&h, mode as u32, 100, 8).status,
                STATUS_SUCCESS,
                "size {size:#x} mode {mode:?}"
            );
        }
        drop(h);
        let audit = d.unload().unwrap_or_else(|b| panic!("size {size:#x}: {b}"));
        assert!(audit.is_clean(), "size {size:#x}: {audit:?}");
    }
}

#[test]
fn verifier_off_runs_clean_too() {
    let (m, d) = start(Config {
        verifier: Verifier::Off,
        ..Config::default()
    });
    let h = m.open(DEVICE, GENERIC_READ | GENERIC_WRITE).unwrap();
    assert_eq!(run_cycles(&h, 2, 300, 8).status, STATUS_SUCCESS);
    drop(h);
    assert!(d.unload().unwrap().is_clean());
}

#[test]
fn ioctl_access_bits_are_enforced_against_the_handle() {
    let (m, d) = start(Config::default());
    let ro = m.open(DEVICE, FILE_READ_DATA).unwrap();
    assert_eq!(ro.granted_access(), FILE_READ_DATA);
    query_info(&ro);
    let r = run_cycles(&ro, 0, 10, 1);
    assert_eq!(r.status, STATUS_ACCESS_DENIED);
    assert_eq!(r.information, 0);
    ro.close().unwrap();
    let rw = m.open(DEVICE, GENERIC_READ | GENERIC_WRITE).unwrap();
    assert_eq!(run_cycles(&rw, 0, 10, 1).status, STATUS_SUCCESS);
    drop(rw);
    assert!(matches!(
        m.open(r"\\.\NoSuchDevice", GENERIC_READ),
        Err(OpenError::Status(STATUS_OBJECT_NAME_NOT_FOUND))
    ));
    assert!(d.unload().unwrap().is_clean());
}

#[test]
fn concurrent_ioctls_from_many_host_threads() {
    let (m, d) = start(Config::default());
    let shared = m.open(DEVICE, GENERIC_READ | GENERIC_WRITE).unwrap();
    std::thread::scope(|s| {
        for t in 0..6 {
            let (m, shared) = (&m, &shared);
            s.spawn(move || {
                let own = m.open(DEVICE, GENERIC_READ | GENERIC_WRITE).unwrap();
                for i in 0..10 {
                    let h = if i % 2 == 0 { shared } else { &own };
                    let r = run_cycles(h, (t + i) % 6, 50, 2);
                    assert_eq!(r.status, STATUS_SUCCESS);
                    query_info(h);
                }
                own.close().unwrap();
            });
        }
    });
    shared.close().unwrap();
    assert!(d.unload().unwrap().is_clean());
    assert!(m.bugcheck().is_none());
}
