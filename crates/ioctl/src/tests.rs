extern crate std;
use std::vec::Vec;

use super::*;
use nt_abi::{ctl_access, ctl_device_type, ctl_function, ctl_method};

const LIMITS: Limits = Limits { slab_capacity: 64 };

fn run(req: &RunCyclesRequest) -> Result<RunCycles, NTSTATUS> {
    validate_run_cycles(req.as_bytes(), RunCyclesResponse::SIZE as u32, &LIMITS)
}

fn good() -> RunCyclesRequest {
    RunCyclesRequest::new(100, 8, Mode::UninitInRoutine, 1, 0, 0)
}

#[test]
fn codes_are_buffered_vendor_codes_with_the_right_access() {
    for code in ALL_IOCTLS {
        assert_eq!(ctl_method(code), METHOD_BUFFERED, "{code:#x}");
        assert_eq!(ctl_device_type(code), FILE_DEVICE_UNKNOWN);
        assert!((0x800..=0xFFF).contains(&ctl_function(code)));
        assert!(ioctl_name(code).is_some());
    }
    assert_eq!(ctl_access(IOCTL_QUERY_INFO), FILE_READ_ACCESS);
    assert_eq!(ctl_access(IOCTL_QUERY_STATS), FILE_READ_ACCESS);
    assert_eq!(ctl_access(IOCTL_RUN_CYCLES), FILE_WRITE_ACCESS);
    assert_eq!(ctl_access(IOCTL_RESET_STATS), FILE_WRITE_ACCESS);
    let mut functions: Vec<u32> = ALL_IOCTLS.iter().map(|&c| ctl_function(c)).collect();
    functions.dedup();
    assert_eq!(functions.len(), ALL_IOCTLS.len());
}

#[test]
fn wire_round_trip_and_layout() {
    let r = RunCyclesRequest::new(7, 3, Mode::RequeueChain, 33, RUN_FLAG_NO_CUMULATIVE, 5);
    let bytes = r.as_bytes();
    assert_eq!(bytes.len(), 32);
    assert_eq!(&bytes[0..4], &PROTOCOL_VERSION.to_le_bytes());
    assert_eq!(&bytes[4..8], &32u32.to_le_bytes());
    assert_eq!(&bytes[8..12], &7u32.to_le_bytes());
    assert_eq!(&bytes[16..20], &(Mode::RequeueChain as u32).to_le_bytes());
    assert_eq!(RunCyclesRequest::from_bytes(bytes), Some(r));
    assert_eq!(RunCyclesRequest::from_bytes(&bytes[..31]), None);
    let mut out = [0xAAu8; 40];
    assert_eq!(r.write_to(&mut out), Some(32));
    assert_eq!(
        out[32], 0xAA,
        "write_to must not touch bytes past the struct"
    );
    assert_eq!(r.write_to(&mut out[..31]), None);
    assert_eq!(core::mem::offset_of!(RunCyclesResponse, stats), 24);
    assert_eq!(core::mem::offset_of!(StatsResponse, totals), 16);
}

#[test]
fn a_good_request_validates() {
    let v = run(&good()).unwrap();
    assert_eq!(v.mode, Mode::UninitInRoutine);
    assert_eq!(v.queue_type, 1);
    let chain = RunCyclesRequest::new(10, 64, Mode::RequeueChain, 63, RUN_FLAGS_ALL, 64);
    assert!(run(&chain).is_ok());
    // Init/uninit never queues, but the queue type is still checked so every mode agrees.
    let r = RunCyclesRequest::new(1, 1, Mode::InitUninit, 7, 0, 0);
    assert_eq!(run(&r), Err(STATUS_INVALID_PARAMETER));
}

#[test]
fn short_and_oversized_input() {
    let r = good();
    for len in [0, 4, 8, 31] {
        assert_eq!(
            validate_run_cycles(&r.as_bytes()[..len], 96, &LIMITS),
            Err(STATUS_BUFFER_TOO_SMALL),
            "len {len}"
        );
    }
    let mut big = r.as_bytes().to_vec();
    big.push(0);
    assert_eq!(
        validate_run_cycles(&big, 96, &LIMITS),
        Err(STATUS_INVALID_PARAMETER)
    );
    assert_eq!(
        validate_query_info(&[0; 7], 72),
        Err(STATUS_BUFFER_TOO_SMALL)
    );
    assert_eq!(
        validate_query_info(&[0; 9], 72),
        Err(STATUS_INVALID_PARAMETER)
    );
    assert_eq!(validate_query_stats(&[], 88), Err(STATUS_BUFFER_TOO_SMALL));
    assert_eq!(
        validate_reset_stats(&[0; 16], 88),
        Err(STATUS_INVALID_PARAMETER)
    );
}

#[test]
fn short_output() {
    let r = good();
    assert_eq!(
        validate_run_cycles(r.as_bytes(), 95, &LIMITS),
        Err(STATUS_BUFFER_TOO_SMALL)
    );
    assert!(validate_run_cycles(r.as_bytes(), 4096, &LIMITS).is_ok());
    let q = QueryInfoRequest::new();
    assert_eq!(
        validate_query_info(q.as_bytes(), 71),
        Err(STATUS_BUFFER_TOO_SMALL)
    );
    assert!(validate_query_info(q.as_bytes(), 72).is_ok());
    let s = QueryStatsRequest::new();
    assert_eq!(
        validate_query_stats(s.as_bytes(), 0),
        Err(STATUS_BUFFER_TOO_SMALL)
    );
    let z = ResetStatsRequest::new();
    assert_eq!(
        validate_reset_stats(z.as_bytes(), 87),
        Err(STATUS_BUFFER_TOO_SMALL)
    );
    assert!(validate_reset_stats(z.as_bytes(), 88).is_ok());
}

#[test]
fn version_and_size_fields() {
    for version in [0, 2, u32::MAX] {
        let mut r = good();
        r.header.version = version;
        assert_eq!(run(&r), Err(STATUS_REVISION_MISMATCH));
    }
    for size in [0, 8, 31, 33, u32::MAX] {
        let mut r = good();
        r.header.size = size;
        assert_eq!(run(&r), Err(STATUS_INVALID_PARAMETER));
    }
    // Version is checked before size, and both before output length.
    let mut r = good();
    r.header.version = 9;
    r.header.size = 1;
    assert_eq!(
        validate_run_cycles(r.as_bytes(), 0, &LIMITS),
        Err(STATUS_REVISION_MISMATCH)
    );
}

#[test]
fn iterations_concurrency_mode_flags_depth() {
    let with = |f: &dyn Fn(&mut RunCyclesRequest)| {
        let mut r = good();
        f(&mut r);
        run(&r)
    };
    assert_eq!(with(&|r| r.iterations = 0), Err(STATUS_INVALID_PARAMETER));
    assert_eq!(
        with(&|r| r.iterations = MAX_ITERATIONS + 1),
        Err(STATUS_INVALID_PARAMETER)
    );
    assert!(with(&|r| r.iterations = MAX_ITERATIONS).is_ok());
    assert_eq!(with(&|r| r.concurrency = 0), Err(STATUS_INVALID_PARAMETER));
    assert_eq!(with(&|r| r.concurrency = 65), Err(STATUS_INVALID_PARAMETER));
    assert!(with(&|r| r.concurrency = 64).is_ok());
    for mode in [6, 7, 100, u32::MAX] {
        assert_eq!(
            with(&|r| r.mode = mode),
            Err(STATUS_INVALID_PARAMETER),
            "mode {mode}"
        );
    }
    assert_eq!(with(&|r| r.flags = 0x4), Err(STATUS_INVALID_PARAMETER));
    assert_eq!(
        with(&|r| r.flags = 0x8000_0000),
        Err(STATUS_INVALID_PARAMETER)
    );
    assert_eq!(
        with(&|r| r.requeue_depth = 1),
        Err(STATUS_INVALID_PARAMETER)
    );
    let chain = |depth: u32, iterations: u32| {
        run(&RunCyclesRequest::new(
            iterations,
            1,
            Mode::RequeueChain,
            1,
            0,
            depth,
        ))
    };
    assert_eq!(chain(0, 1), Err(STATUS_INVALID_PARAMETER));
    assert_eq!(
        chain(MAX_REQUEUE_DEPTH + 1, 1),
        Err(STATUS_INVALID_PARAMETER)
    );
    // 1,000,000 × 65 routines exceeds the per-request bound.
    assert_eq!(
        chain(MAX_REQUEUE_DEPTH, MAX_ITERATIONS),
        Err(STATUS_INVALID_PARAMETER)
    );
    assert!(chain(3, MAX_ITERATIONS).is_ok());
}

#[test]
fn queue_types() {
    let q = |t: u32| run(&RunCyclesRequest::new(1, 1, Mode::UninitInRoutine, t, 0, 0));
    for t in (0..=6).chain(32..=63) {
        assert!(q(t).is_ok(), "queue type {t} is valid");
    }
    for t in (7..=31).chain([64, 65, 1000, 0x7FFF_FFFF, 0x8000_0000, u32::MAX]) {
        assert_eq!(q(t), Err(STATUS_INVALID_PARAMETER), "queue type {t}");
    }
}

#[test]
fn accumulate_sums_and_maxes() {
    let mut t = CycleStats::default();
    let a = CycleStats {
        cycles_completed: 10,
        queued: 10,
        routines_run: 10,
        max_in_flight: 4,
        slab_high_water: 6,
        runs: 1,
        elapsed_ticks: 5,
        ..Default::default()
    };
    let b = CycleStats {
        max_in_flight: 2,
        slab_high_water: 9,
        ..a
    };
    t.accumulate(&a);
    t.accumulate(&b);
    assert_eq!(t.cycles_completed, 20);
    assert_eq!(t.runs, 2);
    assert_eq!(t.elapsed_ticks, 10);
    assert_eq!(t.max_in_flight, 4);
    assert_eq!(t.slab_high_water, 9);
}

#[test]
fn names_and_modes() {
    assert_eq!(DEVICE_NAME_W[0], u16::from(b'\\'));
    assert_eq!(*DEVICE_NAME_W.last().unwrap(), 0);
    assert_eq!(DOS_DEVICE_NAME_W.len(), DOS_DEVICE_NAME.len() + 1);
    for m in Mode::ALL {
        assert_eq!(Mode::from_u32(m as u32), Some(m));
        assert_eq!(Mode::from_name(m.name()), Some(m));
    }
    assert_eq!(unpack_version(pack_version(1, 2, 3)), (1, 2, 3));
}
