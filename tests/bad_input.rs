//! Every malformed-request class, end to end: the cross-built driver in ntsim, driven through
//! wictl's backend. Each request must get its precise NTSTATUS, return no bytes, and leave the
//! cumulative statistics unchanged; the verifier must stay quiet throughout.
// ntsim (the backend these tests drive) is Linux x86_64 only.
#![cfg(target_os = "linux")]
mod common;

use common::*;
use ioctl::*;
use nt_abi::status::*;
use nt_abi::{FILE_ANY_ACCESS, FILE_DEVICE_UNKNOWN, FILE_READ_ACCESS, FILE_WRITE_ACCESS};
use nt_abi::{METHOD_IN_DIRECT, METHOD_NEITHER, METHOD_OUT_DIRECT, ctl_code};
use wictl::client::Client;

/// (code, a well-formed input, response size) for every IOCTL.
fn all_requests() -> Vec<(u32, Vec<u8>, usize)> {
    vec![
        (
            IOCTL_QUERY_INFO,
            bytes(&QueryInfoRequest::new()),
            InfoResponse::SIZE,
        ),
        (
            IOCTL_QUERY_STATS,
            bytes(&QueryStatsRequest::new()),
            StatsResponse::SIZE,
        ),
        (
            IOCTL_RESET_STATS,
            bytes(&ResetStatsRequest::new()),
            StatsResponse::SIZE,
        ),
        (
            IOCTL_RUN_CYCLES,
            bytes(&RunCyclesRequest::new(
                10,
                2,
                Mode::UninitInRoutine,
                1,
                0,
                0,
            )),
            RunCyclesResponse::SIZE,
        ),
    ]
}

fn good_run() -> RunCyclesRequest {
    RunCyclesRequest::new(10, 2, Mode::UninitInRoutine, 1, 0, 0)
}

fn run_rejected(
    b: &wictl::ntsim_backend::NtsimBackend,
    what: &str,
    r: &RunCyclesRequest,
    expected: i32,
) {
    let h = rw(b);
    expect_rejected(
        h.as_ref(),
        h.as_ref(),
        what,
        IOCTL_RUN_CYCLES,
        r.as_bytes(),
        RunCyclesResponse::SIZE as u32,
        expected,
    );
}

/// One variant of a well-formed request: (label, input bytes, output length).
type Variant = (String, Vec<u8>, u32);

/// Boot the driver, send every variant `variants` makes of each well-formed request (input,
/// output length), expect each rejected with `status` and the statistics unchanged, then
/// check the unload is clean.
fn reject_every_request(status: i32, variants: impl Fn(&[u8], u32) -> Vec<Variant>) {
    let b = boot();
    let h = rw(&b);
    seed_stats(h.as_ref());
    for (code, good, out) in all_requests() {
        for (label, input, out_len) in variants(&good, out as u32) {
            expect_rejected(
                h.as_ref(),
                h.as_ref(),
                &format!("{code:#x} {label}"),
                code,
                &input,
                out_len,
                status,
            );
        }
    }
    drop(h); // DriverUnload waits for the last handle to close, as on Windows
    assert_clean(b);
}

/// `good` with the little-endian u32 at `offset` replaced by `value`.
fn with_u32(good: &[u8], offset: usize, value: u32) -> Vec<u8> {
    let mut input = good.to_vec();
    input[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    input
}

#[test]
fn short_input_is_buffer_too_small() {
    reject_every_request(STATUS_BUFFER_TOO_SMALL, |good, out| {
        (0..good.len())
            .map(|len| (format!("input {len}"), good[..len].to_vec(), out))
            .collect()
    });
}

#[test]
fn oversized_input_is_invalid_parameter() {
    reject_every_request(STATUS_INVALID_PARAMETER, |good, out| {
        [1usize, 8, 4096]
            .into_iter()
            .map(|extra| {
                let mut input = good.to_vec();
                input.resize(good.len() + extra, 0);
                (format!("+{extra}"), input, out)
            })
            .collect()
    });
}

#[test]
fn wrong_version_is_revision_mismatch() {
    reject_every_request(STATUS_REVISION_MISMATCH, |good, out| {
        [0u32, 2, 0x100, u32::MAX]
            .into_iter()
            .map(|v| (format!("version {v}"), with_u32(good, 0, v), out))
            .collect()
    });
}

#[test]
fn wrong_size_field_is_invalid_parameter() {
    reject_every_request(STATUS_INVALID_PARAMETER, |good, out| {
        let len = good.len() as u32;
        [0u32, 7, len - 1, len + 1, 4096, u32::MAX]
            .into_iter()
            .map(|size| (format!("size {size}"), with_u32(good, 4, size), out))
            .collect()
    });
}

#[test]
fn short_output_is_buffer_too_small() {
    reject_every_request(STATUS_BUFFER_TOO_SMALL, |good, out| {
        [0, 1, 8, out - 1]
            .into_iter()
            .map(|out_len| (format!("out {out_len}"), good.to_vec(), out_len))
            .collect()
    });
}

#[test]
fn zero_or_excessive_iterations() {
    let b = boot();
    seed_stats(rw(&b).as_ref());
    for it in [0, MAX_ITERATIONS + 1, u32::MAX] {
        let r = RunCyclesRequest {
            iterations: it,
            ..good_run()
        };
        run_rejected(
            &b,
            &format!("iterations {it}"),
            &r,
            STATUS_INVALID_PARAMETER,
        );
    }
    // The per-request routine bound: iterations × (1 + depth) ≤ 4,000,000.
    let r = RunCyclesRequest::new(MAX_ITERATIONS, 1, Mode::RequeueChain, 1, 0, 4);
    run_rejected(&b, "routine bound", &r, STATUS_INVALID_PARAMETER);
    assert_clean(b);
}

#[test]
fn zero_concurrency_or_above_capacity() {
    let b = boot();
    let h = rw(&b);
    seed_stats(h.as_ref());
    let capacity = Client::new(h.as_ref()).info().unwrap().slab_capacity;
    assert!(capacity > 1);
    for c in [0, capacity + 1, capacity * 2, u32::MAX] {
        let r = RunCyclesRequest {
            concurrency: c,
            ..good_run()
        };
        run_rejected(
            &b,
            &format!("concurrency {c}"),
            &r,
            STATUS_INVALID_PARAMETER,
        );
    }
    drop(h); // DriverUnload waits for the last handle to close, as on Windows
    assert_clean(b);
}

#[test]
fn invalid_mode() {
    let b = boot();
    seed_stats(rw(&b).as_ref());
    for m in [6u32, 7, 64, 1000, u32::MAX] {
        let r = RunCyclesRequest {
            mode: m,
            ..good_run()
        };
        run_rejected(&b, &format!("mode {m}"), &r, STATUS_INVALID_PARAMETER);
    }
    assert_clean(b);
}

#[test]
fn queue_types_7_to_31_and_64_up() {
    let b = boot();
    seed_stats(rw(&b).as_ref());
    let bad = (7u32..=31).chain([64, 65, 100, 255, 0x7FFF_FFFF, 0x8000_0000, u32::MAX]);
    for q in bad {
        for mode in [
            Mode::UninitInRoutine,
            Mode::InitUninit,
            Mode::BaselineAllocFree,
        ] {
            let r = RunCyclesRequest {
                queue_type: q,
                mode: mode as u32,
                ..good_run()
            };
            run_rejected(
                &b,
                &format!("queue type {q} ({})", mode.name()),
                &r,
                STATUS_INVALID_PARAMETER,
            );
        }
    }
    assert_clean(b);
}

#[test]
fn bad_flags_and_requeue_depth() {
    let b = boot();
    seed_stats(rw(&b).as_ref());
    for f in [0x4u32, 0x100, 0x8000_0000, u32::MAX] {
        let r = RunCyclesRequest {
            flags: f,
            ..good_run()
        };
        run_rejected(&b, &format!("flags {f:#x}"), &r, STATUS_INVALID_PARAMETER);
    }
    for (mode, depth) in [
        (Mode::RequeueChain, 0),
        (Mode::RequeueChain, MAX_REQUEUE_DEPTH + 1),
        (Mode::UninitInRoutine, 1),
        (Mode::QueueEx, 5),
    ] {
        let r = RunCyclesRequest {
            mode: mode as u32,
            requeue_depth: depth,
            ..good_run()
        };
        run_rejected(
            &b,
            &format!("{} depth {depth}", mode.name()),
            &r,
            STATUS_INVALID_PARAMETER,
        );
    }
    assert_clean(b);
}

#[test]
fn unknown_codes_are_invalid_device_request() {
    let b = boot();
    let h = rw(&b);
    seed_stats(h.as_ref());
    let mut codes = vec![
        0,
        ctl_code(FILE_DEVICE_UNKNOWN, 0x804, 0, FILE_READ_ACCESS),
        ctl_code(FILE_DEVICE_UNKNOWN, 0xFFF, 0, FILE_ANY_ACCESS),
        ctl_code(FILE_DEVICE_UNKNOWN, 0x7FF, 0, FILE_READ_ACCESS),
        ctl_code(0x8000, 0x800, 0, FILE_READ_ACCESS),
        ctl_code(0x22 + 1, 0x800, 0, FILE_READ_ACCESS),
    ];
    // Our function numbers with the wrong method or access bits.
    for f in 0x800..=0x803 {
        for m in [METHOD_IN_DIRECT, METHOD_OUT_DIRECT, METHOD_NEITHER] {
            codes.push(ctl_code(FILE_DEVICE_UNKNOWN, f, m, FILE_READ_ACCESS));
        }
        codes.push(ctl_code(FILE_DEVICE_UNKNOWN, f, 0, FILE_ANY_ACCESS));
        codes.push(ctl_code(
            FILE_DEVICE_UNKNOWN,
            f,
            0,
            FILE_READ_ACCESS | FILE_WRITE_ACCESS,
        ));
    }
    for code in codes {
        assert!(!ALL_IOCTLS.contains(&code));
        expect_rejected(
            h.as_ref(),
            h.as_ref(),
            &format!("code {code:#x}"),
            code,
            &[0u8; 16],
            128,
            STATUS_INVALID_DEVICE_REQUEST,
        );
        expect_rejected(
            h.as_ref(),
            h.as_ref(),
            &format!("code {code:#x} empty"),
            code,
            &[],
            0,
            STATUS_INVALID_DEVICE_REQUEST,
        );
    }
    drop(h); // DriverUnload waits for the last handle to close, as on Windows
    assert_clean(b);
}

#[test]
fn write_ioctls_on_a_read_only_handle_are_access_denied() {
    let b = boot();
    let control = rw(&b);
    seed_stats(control.as_ref());
    for h in [ro(&b), read_data_only(&b)] {
        expect_rejected(
            h.as_ref(),
            control.as_ref(),
            "run cycles",
            IOCTL_RUN_CYCLES,
            good_run().as_bytes(),
            RunCyclesResponse::SIZE as u32,
            STATUS_ACCESS_DENIED,
        );
        expect_rejected(
            h.as_ref(),
            control.as_ref(),
            "reset",
            IOCTL_RESET_STATS,
            ResetStatsRequest::new().as_bytes(),
            StatsResponse::SIZE as u32,
            STATUS_ACCESS_DENIED,
        );
        // Queries stay allowed on the same handle.
        let c = Client::new(h.as_ref());
        assert!(c.info().is_ok());
        assert_eq!(c.stats().unwrap(), stats(control.as_ref()));
    }
    drop(control); // DriverUnload waits for the last handle to close, as on Windows
    assert_clean(b);
}

#[test]
fn seeded_fuzz_is_rejected_precisely_and_reproducibly() {
    let run = |seed| {
        let b = boot();
        let (h, r) = (rw(&b), ro(&b));
        seed_stats(h.as_ref());
        let report = wictl::fuzz::run_fuzz(
            h.as_ref(),
            r.as_ref(),
            seed,
            450,
            wictl::fuzz::CLASSES,
            |_| {},
        )
        .unwrap();
        drop((h, r));
        assert_clean(b);
        report
    };
    let a = run(0xC0FFEE);
    assert!(a.mismatches.is_empty(), "{:#?}", a.mismatches);
    assert_eq!(a.passed, 450);
    assert_eq!(a.classes.len(), wictl::fuzz::CLASSES.len());
    let again = run(0xC0FFEE);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&again).unwrap()
    );
}
