//! Special pool and pool tracking for every allocation API, through `ntsim run --json` on the
//! cross-built `rulebreaker.sys`: each rule fires with Windows' code and parameters (Microsoft,
//! *Bug Check 0xD6*, *0xD5*, *0xC1*, *0xC4*, *0xC2*), each allocation API behaves as documented,
//! and the `--verifier` / `--special-pool` knobs switch the rules as Driver Verifier's options do.

mod verifier_support;

use nt_abi::bugcheck::{self, bad_pool_caller as bpc, special_pool as sp, verifier as vf};
use nt_abi::{NONE_POOL_TAG, STATUS_SUCCESS};
use serde_json::Value;
use verifier_support::codes::*;
use verifier_support::*;

fn run_one(code: u32, extra: &[&str]) -> Run {
    run_rulebreaker(&[Ioctl::new(code)], extra)
}

fn with_api(code: u32, api: u32, extra: &[&str]) -> Run {
    let input = api.to_le_bytes();
    run_rulebreaker(
        &[Ioctl {
            code,
            input: Some(&input),
            output_len: None,
        }],
        extra,
    )
}

/// Runs `ioctl` once with `extra` and expects bug check `code` whose p1 is the value the driver
/// reported under `p1_key`; returns the run and the bug check for the rule's other parameters.
fn expect_p1_reported(
    ioctl: u32,
    extra: &[&str],
    code: u32,
    p1_key: &str,
    enforced: Enforced,
) -> (Run, BugCheck) {
    let run = run_one(ioctl, extra);
    let bc = expect_bugcheck(&run, code, run.reported(p1_key), enforced);
    (run, bc)
}

/// Runs `ioctl` once with allocation API `api` and expects bug check `code` with `p1`, enforced
/// at run time.
fn expect_api_bugcheck(ioctl: u32, api: u32, code: u32, p1: u64) -> (Run, BugCheck) {
    let run = with_api(ioctl, api, &[]);
    let bc = expect_bugcheck(&run, code, p1, Enforced::AtRunTime);
    (run, bc)
}

/// 0xC1 found at free: p1 = the block, p2 = the corrupted byte (reported as `address`), p4 as
/// given.
fn expect_c1_at_free(ioctl: u32, p4: u64, p4_msg: &str) {
    let (run, bc) = expect_p1_reported(
        ioctl,
        &[],
        bugcheck::SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION,
        KEY_BLOCK,
        Enforced::AtRunTime,
    );
    expect_param(
        &run,
        &bc,
        1,
        run.reported(KEY_ADDRESS),
        "p2 = the corrupted byte.",
    );
    expect_param(&run, &bc, 3, p4, p4_msg);
}

fn assert_clean(run: &Run) {
    expect_no_bugcheck(run);
    assert_eq!(
        run.exit,
        Some(EXIT_CLEAN),
        "clean exits 0.\n{}",
        run.describe()
    );
    let json = run.json();
    assert_eq!(
        json.get("verdict").and_then(Value::as_str),
        Some("clean"),
        "verdict.\n{}",
        run.describe()
    );
}

#[test]
fn d6_read_past_the_end_of_a_block() {
    let (run, bc) = expect_p1_reported(
        IOCTL_D6_READ_PAST_END,
        &[],
        bugcheck::DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION,
        KEY_ADDRESS,
        Enforced::AtRunTime,
    );
    assert_eq!(
        run.reported(KEY_ADDRESS),
        run.reported(KEY_BLOCK) + SPECIAL_BLOCK_SIZE as u64
    );
    expect_param(&run, &bc, 1, 0, "p2 = 0: a read.");
    assert_ne!(
        bc.parameters[2], 0,
        "p3 = the instruction that referenced memory"
    );
}

#[test]
fn d6_write_past_the_end_of_a_block() {
    let (run, bc) = expect_p1_reported(
        IOCTL_D6_WRITE_PAST_END,
        &[],
        bugcheck::DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION,
        KEY_ADDRESS,
        Enforced::AtRunTime,
    );
    expect_param(&run, &bc, 1, 1, "p2 = 1: a write.");
    expect_param(&run, &bc, 3, 0, "p4 = reserved (0).");
}

#[test]
fn d6_past_a_block_larger_than_a_page_is_stricter_than_windows() {
    expect_p1_reported(
        IOCTL_D6_LARGE_BLOCK_OVERRUN,
        &[],
        bugcheck::DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION,
        KEY_ADDRESS,
        Enforced::DocumentedOnly,
    );
}

#[test]
fn d5_read_after_free() {
    let (run, bc) = expect_p1_reported(
        IOCTL_D5_READ_AFTER_FREE,
        &[],
        bugcheck::DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL,
        KEY_BLOCK,
        Enforced::AtRunTime,
    );
    expect_param(&run, &bc, 1, 0, "p2 = 0: a read.");
}

#[test]
fn c1_24_slack_after_the_end_overwritten_found_at_free() {
    expect_c1_at_free(
        IOCTL_C1_SLACK_OVERWRITTEN,
        sp::BYTES_AFTER_END_OVERWRITTEN,
        "p4 = 0x24.",
    );
}

#[test]
fn c1_23_byte_before_the_block_found_at_free_in_overrun_mode() {
    expect_c1_at_free(
        IOCTL_SP_WRITE_BEFORE_START,
        sp::NEARBY_BYTES_CORRUPTED,
        "p4 = 0x23.",
    );
}

#[test]
fn underrun_mode_faults_before_the_block_and_not_after() {
    let (run, bc) = expect_p1_reported(
        IOCTL_SP_WRITE_BEFORE_START,
        &["--special-pool", "underrun"],
        bugcheck::DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION,
        KEY_ADDRESS,
        Enforced::AtRunTime,
    );
    expect_param(&run, &bc, 1, 1, "p2 = 1: a write.");
    // The block sits at its page's start: one byte past its end is the pattern, found at free.
    let (run, bc) = expect_p1_reported(
        IOCTL_D6_WRITE_PAST_END,
        &["--special-pool", "underrun"],
        bugcheck::SPECIAL_POOL_DETECTED_MEMORY_CORRUPTION,
        KEY_BLOCK,
        Enforced::AtRunTime,
    );
    expect_param(&run, &bc, 3, sp::BYTES_AFTER_END_OVERWRITTEN, "p4 = 0x24.");
}

#[test]
fn special_pool_option_off_means_no_special_pool_rules() {
    for code in [IOCTL_D6_READ_PAST_END, IOCTL_C1_SLACK_OVERWRITTEN] {
        for v in [
            "off",
            "pool_tracking,irql_checking,io_verification,misc_checks,deadlock_detection,security_checks",
        ] {
            let run = run_one(code, &["--verifier", v]);
            assert_clean(&run);
        }
    }
    // special_pool alone is enough.
    expect_p1_reported(
        IOCTL_D6_WRITE_PAST_END,
        &["--verifier", "special_pool"],
        bugcheck::DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION,
        KEY_ADDRESS,
        Enforced::AtRunTime,
    );
}

#[test]
fn bad_verifier_and_special_pool_arguments_are_usage_errors() {
    for args in [
        &["--verifier", "special_pool,bogus"][..],
        &["--verifier", ""],
        &["--special-pool", "sideways"],
    ] {
        let mut a = vec!["run".to_string(), rulebreaker_sys().display().to_string()];
        a.extend(args.iter().map(|s| s.to_string()));
        let run = ntsim(&a);
        assert_eq!(
            run.exit,
            Some(1),
            "{args:?} is a usage error.\n{}",
            run.describe()
        );
        assert!(
            run.stderr.contains("bad --"),
            "{args:?}: the error names the option.\n{}",
            run.describe()
        );
    }
}

#[test]
fn every_allocation_api_behaves_as_documented() {
    for extra in [&[][..], &["--verifier", "off"]] {
        let run = run_rulebreaker(
            &[Ioctl {
                code: IOCTL_POOL_APIS_WELL_BEHAVED,
                input: None,
                output_len: Some(POOL_API_CHECKS.len() * 4),
            }],
            extra,
        );
        assert_clean(&run);
        let r = ioctl_result(&run, 0);
        assert_eq!(status_of(&r), STATUS_SUCCESS as u32, "{}", run.describe());
        let out = output_of(&r);
        assert_eq!(out.len(), POOL_API_CHECKS.len() * 4, "{}", run.describe());
        for (i, what) in POOL_API_CHECKS.iter().enumerate() {
            let v = u32::from_le_bytes(out[i * 4..i * 4 + 4].try_into().unwrap());
            assert_eq!(v, 1, "{what} ({extra:?}).\n{}", run.describe());
        }
    }
}

#[test]
fn every_allocation_api_leak_is_c4_62_at_unload() {
    for api in POOL_APIS {
        let (run, _) = expect_api_bugcheck(
            IOCTL_POOL_API_LEAK,
            api,
            bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
            vf::POOL_LEAKED_AT_UNLOAD,
        );
        let leaks = run.json()["leaks"]["pool"].to_string();
        let block = run.reported(KEY_BLOCK);
        assert!(
            leaks.contains(&block.to_string()) || leaks.contains(&format!("{block:#x}")),
            "api {api}: the leak names the block.\n{}",
            run.describe()
        );
    }
}

#[test]
fn every_allocation_api_wrong_tag_is_c2_0a() {
    for api in POOL_APIS {
        let (run, bc) = expect_api_bugcheck(
            IOCTL_POOL_API_WRONG_TAG,
            api,
            bugcheck::BAD_POOL_CALLER,
            bpc::FREE_WRONG_TAG,
        );
        expect_param(&run, &bc, 1, run.reported(KEY_BLOCK), "p2 = the block.");
        let tag = match api {
            API_POOL => NONE_POOL_TAG,
            API_LOOKASIDE => LOOKASIDE_TAG,
            _ => POOL_TAG,
        };
        expect_param(&run, &bc, 2, tag as u64, "p3 = the allocation's tag.");
        expect_param(&run, &bc, 3, WRONG_TAG as u64, "p4 = the tag passed.");
    }
}

#[test]
fn every_allocation_api_double_free_is_c4_14() {
    for api in POOL_APIS {
        let (run, bc) = expect_api_bugcheck(
            IOCTL_POOL_API_DOUBLE_FREE,
            api,
            bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
            vf::DOUBLE_FREE,
        );
        expect_param(&run, &bc, 2, run.reported(KEY_BLOCK), "p3 = the block.");
    }
}

#[test]
fn every_paged_allocation_api_at_dispatch_is_c4_01() {
    for api in [
        API_POOL_WITH_TAG,
        API_POOL,
        API_POOL_WITH_QUOTA_TAG,
        API_POOL3,
    ] {
        let (run, bc) = expect_api_bugcheck(
            IOCTL_POOL_API_PAGED_AT_DISPATCH,
            api,
            bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
            vf::PAGED_ALLOC_ABOVE_APC,
        );
        expect_param(&run, &bc, 1, nt_abi::DISPATCH_LEVEL as u64, "p2 = IRQL.");
        expect_param(&run, &bc, 3, 0x40, "p4 = the size.");
        // With IRQL checking off the allocation succeeds.
        let run = with_api(
            IOCTL_POOL_API_PAGED_AT_DISPATCH,
            api,
            &["--verifier", "special_pool,pool_tracking"],
        );
        assert_clean(&run);
    }
}

#[test]
fn a_device_extension_used_after_io_delete_device_faults() {
    for extra in [&[][..], &["--verifier", "off"]] {
        let (run, bc) = expect_p1_reported(
            IOCTL_50_USE_DEVICE_EXTENSION_AFTER_DELETE,
            extra,
            bugcheck::PAGE_FAULT_IN_NONPAGED_AREA,
            KEY_ADDRESS,
            Enforced::DocumentedOnly,
        );
        expect_param(&run, &bc, 1, 0, "p2 = 0: a read.");
        assert_ne!(run.reported(KEY_OBJECT), 0);
    }
}
