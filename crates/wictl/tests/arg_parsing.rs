//! wictl's command line refuses what it cannot mean, with exit 2 and no panic: the same strict
//! number and hex grammar as ntsim (`nt_abi::text`), finite durations, and ntsim's one
//! IoSizeofWorkItem range (issue 8 §4).
#![cfg(target_os = "linux")]
mod common;

use std::process::Command;

use common::*;

fn wictl(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wictl"))
        .args(args)
        .output()
        .expect("run wictl");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_usage(args: &[&str], expect: &str) {
    let sys = sys().to_str().unwrap();
    let mut full = vec!["--ntsim", sys];
    full.extend_from_slice(args);
    let (code, out, err) = wictl(&full);
    assert_eq!(
        code,
        Some(wictl::exit::USAGE as i32),
        "{args:?}\n{out}\n{err}"
    );
    assert!(!err.contains("panicked"), "{args:?}\n{err}");
    assert!(
        err.contains(expect),
        "{args:?}: expected {expect:?} in\n{err}"
    );
}

#[test]
fn raw_input_and_codes_are_parsed_strictly() {
    // Non-ASCII input used to panic (slicing a char boundary); "+1+2" was sent as 01 02.
    for bad in ["é1", "0é", "+1+2", "abc", "0x01"] {
        assert_usage(&["raw", "--code", "0x226000", "--input", bad], "--input");
    }
    for bad in ["+5", "0x+5", "1_000", "0x100000000", " 5"] {
        assert_usage(&["raw", "--code", bad], "--code");
        assert_usage(
            &["raw", "--code", "0x226000", "--out-len", bad],
            "--out-len",
        );
    }
    assert_usage(&["cycles", "-n", "+5"], "--iterations");
    // What the grammar documents still works.
    let sys = sys().to_str().unwrap();
    let (code, out, err) = wictl(&[
        "--ntsim",
        sys,
        "--json",
        "raw",
        "--code",
        "0x226000",
        "--input",
        "0100000008000000",
        "--out-len",
        "72",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
}

#[test]
fn stress_duration_must_be_finite_and_positive() {
    // "inf" and "1e300" panicked in Duration::from_secs_f64; "NaN" ran as 0 seconds.
    for bad in ["inf", "-inf", "NaN", "1e300", "0", "-1", "forever"] {
        assert_usage(&["stress", &format!("--duration={bad}")], "--duration");
    }
    let sys = sys().to_str().unwrap();
    let (code, out, err) = wictl(&["--ntsim", sys, "--json", "stress", "--duration", "0.2"]);
    assert_eq!(code, Some(0), "{out}{err}");
}

#[test]
fn item_size_has_ntsims_range() {
    for bad in ["1", "0x2F", "0x18", "0x1008", "0x2000", "0"] {
        assert_usage(&["--item-size", bad, "info"], "--item-size");
    }
    let sys = sys().to_str().unwrap();
    for good in [
        nt_abi::EMULATED_IO_WORKITEM_SIZE_MIN,
        nt_abi::EMULATED_IO_WORKITEM_SIZE_MAX,
    ] {
        let (code, out, err) = wictl(&[
            "--ntsim",
            sys,
            "--json",
            "--item-size",
            &good.to_string(),
            "info",
        ]);
        assert_eq!(code, Some(0), "{good:#x}: {out}{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["result"]["io_sizeof_work_item"], good);
    }
}
