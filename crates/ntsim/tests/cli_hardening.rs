//! `ntsim run` as a host no driver can kill, and its input checks: each test here fails
//! without the fix it names (issue 8 §4).
mod cli_support;

use std::time::Duration;

use cli_support::*;
use ioctl::IOCTL_QUERY_INFO;
use nt_abi::*;

fn sys() -> String {
    wdm_sys().to_str().unwrap().to_string()
}

fn query(input: &str, out_len: &str) -> String {
    format!("{DEVICE}:{IOCTL_QUERY_INFO:#x}:{input}:{out_len}")
}

/// Usage errors: exit 1, a precise message, no panic, nothing run.
fn assert_usage(args: &[&str], expect: &str) {
    let r = ntsim(args);
    assert_eq!(r.exit, Some(1), "{r:#?}");
    assert!(r.stderr.contains(expect), "expected {expect:?}\n{r:#?}");
    assert!(!r.stderr.contains("panicked"), "{r:#?}");
    assert!(r.stdout.is_empty(), "nothing ran, nothing reported\n{r:#?}");
}

#[test]
fn ioctl_text_is_parsed_strictly_and_never_panics() {
    let s = sys();
    // Non-ASCII INPUT_HEX used to panic slicing a char boundary.
    for bad in ["é1", "0é", "€€", "ü"] {
        assert_usage(&["run", &s, "--ioctl", &query(bad, "72")], "bad INPUT_HEX");
    }
    // `from_str_radix` takes "+1" as a byte: "+1+2" was sent as 01 02.
    assert_usage(
        &["run", &s, "--ioctl", &query("+1+2", "72")],
        "bad INPUT_HEX",
    );
    assert_usage(
        &["run", &s, "--ioctl", &query("0 1", "72")],
        "bad INPUT_HEX",
    );
    assert_usage(&["run", &s, "--ioctl", &query("abc", "72")], "odd number");
    // "+5" as a code / length.
    assert_usage(
        &["run", &s, "--ioctl", &format!("{DEVICE}:+5")],
        "bad IOCTL code",
    );
    assert_usage(&["run", &s, "--ioctl", &query("", "+5")], "bad OUTPUT_LEN");
    assert_usage(&["run", &s, "--ioctl", &query("", "7é")], "bad OUTPUT_LEN");
    assert_usage(&["run", &s, "--timeout", "+5"], "bad --timeout");
    assert_usage(
        &["run", &s, "--size-of-work-item", "+88"],
        "--size-of-work-item",
    );
    // The parser still takes what it documents.
    let r = ntsim(&[
        "run",
        &s,
        "--ioctl",
        &query("0100000008000000", "0X48"),
        "--json",
    ]);
    assert_eq!(r.exit, Some(0), "{r:#?}");
    assert_eq!(r.json()["ioctls"][0]["information"], 72);
    // A timeout too far away for a deadline is no timeout (it used to overflow `Instant`).
    let r = ntsim(&["run", &s, "--timeout", "18446744073709551615", "--json"]);
    assert_eq!(r.exit, Some(0), "{r:#?}");
}

#[test]
fn output_len_is_a_ulong() {
    let s = sys();
    // Above 0xFFFFFFFF: refused (was truncated to 0 or 1, or a LayoutError panic).
    for bad in [
        "0x100000000",
        "4294967296",
        "0x10000000000000048",
        "99999999999999999999",
    ] {
        assert_usage(&["run", &s, "--ioctl", &query("", bad)], "a ULONG");
    }
    assert_usage(
        &["run", &s, "--ioctl", &format!("{DEVICE}:0x100226000")],
        "bad IOCTL code",
    );
    // The largest ULONG is valid: the driver answers as usual.
    let r = ntsim(&[
        "run",
        &s,
        "--ioctl",
        &query("0100000008000000", "0xFFFFFFFF"),
        "--json",
    ]);
    assert_eq!(r.exit, Some(0), "{r:#?}");
    let v = r.json();
    assert_eq!(v["verdict"], "clean");
    assert_eq!(v["ioctls"][0]["status"], 0);
    assert_eq!(v["ioctls"][0]["information"], 72);
}

#[test]
fn a_system_buffer_that_cannot_be_allocated_fails_the_request_cleanly() {
    // With 3 GiB of address space, the 4 GiB system buffer of OUTPUT_LEN 0xFFFFFFFF cannot
    // exist: the I/O manager fails the request with STATUS_INSUFFICIENT_RESOURCES (ntsim used
    // to abort in the allocator).
    let s = sys();
    let q = query("0100000008000000", "0xFFFFFFFF");
    let script = format!(
        "ulimit -v 3145728 && exec {} run {s} --ioctl '{q}' --json",
        env!("CARGO_BIN_EXE_ntsim")
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        v["ioctls"][0]["status"], STATUS_INSUFFICIENT_RESOURCES as u32,
        "{v}"
    );
    assert_eq!(
        v["ioctls"][0]["status_name"],
        "STATUS_INSUFFICIENT_RESOURCES"
    );
    assert_eq!(v["verdict"], "clean");
}

#[test]
fn non_regular_and_oversized_files_are_refused_before_reading() {
    let fifo = tmp("a.fifo");
    let _ = std::fs::remove_file(&fifo);
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // 300 MiB, sparse: bigger than any driver, cheap to create.
    let big = tmp("big.sys");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(300 << 20).unwrap();
    drop(f);
    let dir = tmp("");
    let cases = [
        ("/dev/zero".to_string(), "is a device"),
        (fifo.display().to_string(), "is a FIFO"),
        (dir.display().to_string(), "is a directory"),
        (big.display().to_string(), "larger than any driver image"),
    ];
    for (path, why) in cases {
        // `/dev/zero` was read until memory ran out; a FIFO blocked forever.
        let r = ntsim_env(
            &["run", &path, "--json", "--timeout", "20"],
            &[],
            Duration::from_secs(30),
        );
        assert_eq!(r.exit, Some(2), "{r:#?}");
        let v = r.json();
        assert_eq!(v["verdict"], "load_error", "{r:#?}");
        let msg = v["load_error"].as_str().unwrap();
        assert!(msg.contains(why), "{path}: {msg}");
        assert!(
            r.elapsed < Duration::from_secs(10),
            "{path} took {:?}",
            r.elapsed
        );
    }
}

#[test]
fn an_ioctl_to_a_missing_device_is_not_clean() {
    let r = ntsim(&[
        "run",
        &sys(),
        "--ioctl",
        r"\\.\NoSuchDevice:0x226000",
        "--json",
    ]);
    assert_eq!(r.exit, Some(1), "{r:#?}");
    let v = r.json();
    assert_eq!(v["verdict"], "open_failed");
    assert_eq!(
        v["ioctls"][0]["open_status"],
        STATUS_OBJECT_NAME_NOT_FOUND as u32
    );
    assert!(v["ioctls"][0]["status"].is_null());
    // The rest of the run still happened (and was clean).
    assert!(v["leaks"]["pool"].as_array().unwrap().is_empty());
    let r = ntsim(&["run", &sys(), "--ioctl", r"\\.\NoSuchDevice:0x226000"]);
    assert!(r.stdout.contains("open failed") && r.stdout.contains("verdict: open_failed"));
}

#[test]
fn size_of_work_item_has_one_range() {
    let s = sys();
    for bad in ["1", "0x2F", "0x18", "0x1001", "0x1008", "0", "0x100000000"] {
        assert_usage(
            &["run", &s, "--size-of-work-item", bad],
            "--size-of-work-item",
        );
    }
    for good in [
        EMULATED_IO_WORKITEM_SIZE_MIN,
        0x58,
        EMULATED_IO_WORKITEM_SIZE_MAX,
    ] {
        let r = ntsim(&["run", &s, "--size-of-work-item", &good.to_string()]);
        assert_eq!(r.exit, Some(0), "{good:#x}\n{r:#?}");
    }
}

/// `mov eax, 39 (getpid); syscall; mov edi, eax; mov esi, 6 (SIGABRT); mov eax, 62 (kill);
/// syscall; jmp $`: DriverEntry kills the whole process, as a corrupted allocator does.
const KILL_SELF_SIGABRT: [u8; 24] = [
    0xB8, 0x27, 0, 0, 0, 0x0F, 0x05, 0x89, 0xC7, 0xBE, 0x06, 0, 0, 0, 0xB8, 0x3E, 0, 0, 0, 0x0F,
    0x05, 0xEB, 0xFE, 0x90,
];
/// `mov edi, 7; mov eax, 231 (exit_group); syscall`.
const EXIT_GROUP_7: [u8; 12] = [0xBF, 7, 0, 0, 0, 0xB8, 0xE7, 0, 0, 0, 0x0F, 0x05];

#[test]
fn a_driver_that_kills_its_host_still_gets_a_report() {
    let p = with_entry_code("kill-self.sys", &KILL_SELF_SIGABRT);
    for json in [true, false] {
        let mut args = vec!["run", p.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        let r = ntsim(&args);
        assert_eq!(r.exit, Some(4), "{r:#?}");
        if json {
            let v = r.json();
            assert_eq!(v["verdict"], "host_corrupted");
            assert!(v["bugcheck"].is_null());
            let how = v["host_error"].as_str().unwrap();
            assert!(how.contains("signal 6 (SIGABRT)"), "{how}");
        } else {
            assert!(r.stdout.contains("verdict: host_corrupted"), "{r:#?}");
            assert!(r.stdout.contains("host: "), "{r:#?}");
        }
    }
    let p = with_entry_code("exit-group.sys", &EXIT_GROUP_7);
    let r = ntsim(&["run", p.to_str().unwrap(), "--json"]);
    assert_eq!(r.exit, Some(4), "{r:#?}");
    let v = r.json();
    assert_eq!(v["verdict"], "host_corrupted");
    assert!(
        v["host_error"]
            .as_str()
            .unwrap()
            .contains("exited with status 7")
    );
}

#[test]
fn the_bug_check_survives_the_host_dying_after_it() {
    // `ud2` at DriverEntry: an unhandled exception on the system thread DriverEntry runs on,
    // bug check 0x7E; then the process dies by SIGSEGV before it can
    // finish the report (fault injection: what a corrupted heap does next).
    let p = with_entry_code("ud2-then-die.sys", &[0x0F, 0x0B]);
    let r = ntsim_env(
        &["run", p.to_str().unwrap(), "--json"],
        &[("NTSIM_TEST_HOST_FAULT", "after-bugcheck")],
        Duration::from_secs(60),
    );
    assert_eq!(r.exit, Some(4), "{r:#?}");
    let v = r.json();
    assert_eq!(v["verdict"], "host_corrupted");
    assert_eq!(
        v["bugcheck"]["code"],
        bugcheck::SYSTEM_THREAD_EXCEPTION_NOT_HANDLED
    );
    assert_eq!(v["bugcheck"]["context"], "DriverEntry");
    let how = v["host_error"].as_str().unwrap();
    assert!(
        how.contains("SIGSEGV") && how.contains("after the bug check"),
        "{how}"
    );
    // Without the fault, the same driver is an ordinary bug check.
    let r = ntsim(&["run", p.to_str().unwrap(), "--json"]);
    assert_eq!(r.exit, Some(3), "{r:#?}");
    assert_eq!(r.json()["verdict"], "bugcheck");
    assert!(r.json()["host_error"].is_null());
}

#[test]
fn a_hung_driver_is_killed_at_the_timeout_and_the_report_names_the_step() {
    // `jmp $` in DriverEntry; the supervisor kills the child after --timeout.
    let p = with_entry_code("hung.sys", &[0xEB, 0xFE]);
    let r = ntsim_env(
        &["run", p.to_str().unwrap(), "--timeout", "1", "--json"],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(r.exit, Some(1), "{r:#?}");
    let v = r.json();
    assert_eq!(v["verdict"], "timeout");
    assert_eq!(v["timed_out_in"], "DriverEntry");
    assert!(v["host_error"].is_null());
    assert!(r.elapsed < Duration::from_secs(15), "{:?}", r.elapsed);
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "{} run {} --json | true",
                env!("CARGO_BIN_EXE_ntsim"),
                sys()
            ),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
