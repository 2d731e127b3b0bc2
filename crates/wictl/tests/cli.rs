//! The `wictl` binary end to end with `--ntsim`: JSON output, exit codes, status sentences.
// ntsim (the backend these tests drive) is Linux x86_64 only.
#![cfg(target_os = "linux")]
mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn wictl(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wictl"))
        .arg("--ntsim")
        .arg(sys())
        .arg("--json")
        .args(args)
        .output()
        .expect("run wictl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn info_and_cycles_succeed_with_a_clean_verdict() {
    let (code, j, err) = wictl(&["info"]);
    assert_eq!(code, 0, "{j} {err}");
    assert_eq!(j["result"]["slab_capacity"], 64);
    assert_eq!(j["result"]["io_sizeof_work_item"], 0x58);
    assert_eq!(j["verifier"]["clean"], true);
    let (code, j, _) = wictl(&[
        "cycles",
        "--mode",
        "requeue",
        "-n",
        "200",
        "-c",
        "16",
        "--requeue-depth",
        "2",
        "--queue",
        "custom:3",
    ]);
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["result"]["stats"]["routines_run"], 600);
    assert_eq!(j["result"]["request"]["queue_type"], 35);
    assert_eq!(j["exit_code"], 0);
}

#[test]
fn rejected_requests_exit_1_with_the_status_in_words() {
    let (code, j, _) = wictl(&["cycles", "--mode", "9"]);
    assert_eq!(code, 1, "{j}");
    assert_eq!(
        j["result"]["status"],
        "0xC000000D (STATUS_INVALID_PARAMETER)"
    );
    assert!(j["result"]["message"].as_str().unwrap().contains("mode"));
    assert_eq!(j["verifier"]["clean"], true);
    let (code, j, _) = wictl(&["cycles", "--queue", "7"]);
    assert_eq!(code, 1, "{j}");
    assert_eq!(j["result"]["ntstatus"], 0xC000_000Du32);
}

#[test]
fn raw_requests_and_expectations() {
    let reset = wictl::fuzz::to_hex(ioctl::Wire::as_bytes(&ioctl::ResetStatsRequest::new()));
    let code_arg = format!("{:#x}", ioctl::IOCTL_RESET_STATS);
    let (code, j, _) = wictl(&[
        "raw",
        "--code",
        &code_arg,
        "--input",
        &reset,
        "--out-len",
        "88",
        "--read-only",
        "--expect",
        "ACCESS_DENIED",
    ]);
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["result"]["status"], "0xC0000022 (STATUS_ACCESS_DENIED)");
    // Without --expect, a failure status exits 1.
    let (code, _, _) = wictl(&["raw", "--code", "0x222003", "--out-len", "4"]);
    assert_eq!(code, 1);
    let (code, j, _) = wictl(&[
        "raw",
        "--code",
        &code_arg,
        "--input",
        &reset,
        "--out-len",
        "88",
    ]);
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["result"]["information"], 88);
}

#[test]
fn fuzz_and_stress_commands() {
    let (code, j, _) = wictl(&["fuzz", "-n", "150", "--seed", "9"]);
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["result"]["passed"], 150);
    let (code, j, _) = wictl(&[
        "stress", "-t", "3", "--count", "30", "--mix", "-n", "100", "-c", "32",
    ]);
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["result"]["report"]["requests"], 30);
    assert_eq!(j["result"]["report"]["succeeded"], 30);
    assert_eq!(j["result"]["consistency"]["ok"], true);
}

#[test]
fn unusable_backends_exit_3() {
    let out = Command::new(env!("CARGO_BIN_EXE_wictl"))
        .args(["--ntsim", "/nonexistent/driver.sys", "--json", "info"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["result"]["error"], "backend");
    let out = Command::new(env!("CARGO_BIN_EXE_wictl"))
        .args(["--json", "start"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "SCM commands are Windows-only");
}

/// A driver that breaks a rule: wictl reports the bug check and exits 4.
#[test]
fn a_verifier_bug_check_exits_4() {
    let root = workspace_root();
    let tc = xbuild::locate_toolchain(false).unwrap_or_else(|e| panic!("{e}"));
    let rulebreaker = xbuild::build_sys(
        &tc,
        &xbuild::SysBuild {
            manifest_path: &root.join("Cargo.toml"),
            package: "rulebreaker",
            release: true,
            target_dir: &root.join("target/sys"),
            features: None,
            no_default_features: false,
            verbose: false,
        },
    )
    .expect("build the rulebreaker fixture");
    // Function 0x901: an initialized item's pool is freed without IoUninitializeWorkItem (0xE4).
    let code = format!(
        "{:#x}",
        nt_abi::ctl_code(nt_abi::FILE_DEVICE_UNKNOWN, 0x901, 0, 0)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wictl"))
        .arg("--ntsim")
        .arg(&rulebreaker)
        .args([
            "--device",
            r"\\.\RuleBreaker",
            "--json",
            "raw",
            "--code",
            &code,
        ])
        .output()
        .unwrap();
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(4), "{j}");
    assert_eq!(j["result"]["error"], "bugcheck", "{j}");
    assert_eq!(j["result"]["bugcheck"]["code"], 0xE4, "{j}");
    assert_eq!(j["verifier"]["clean"], false);
    assert_eq!(j["verifier"]["bugcheck"]["name"], "WORKER_INVALID");
}
