//! Negative tests: every work-item, pool, IRQL and I/O-manager rule ntsim enforces fires, with
//! the bug-check code and parameters Windows uses, when the cross-built `rulebreaker.sys` fixture
//! breaks it — and nothing fires for the fixture's well-behaved request. Everything goes through
//! the `ntsim run ... --json` CLI, the interface users script.
//!
//! Parameters follow Microsoft's bug-check reference (WORKER_INVALID, DRIVER_VERIFIER_DETECTED_
//! VIOLATION, BAD_POOL_CALLER, WORKER_THREAD_RETURNED_AT_BAD_IRQL). The fixture prints the
//! addresses it uses (`rulebreaker: item=%p` ...), and the tests compare them with the report.

mod verifier_support;

use nt_abi::bugcheck::{
    self, bad_pool_caller as bpc, io_verifier as iov, verifier as vf, worker_invalid as wi,
};
use nt_abi::{
    DELAYED_WORK_QUEUE, DISPATCH_LEVEL, KNOWN_IO_WORKITEM_SIZES, PASSIVE_LEVEL,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER, STATUS_SUCCESS,
};
use serde_json::Value;
use verifier_support::codes::*;
use verifier_support::*;

fn run_one(code: u32) -> Run {
    run_rulebreaker(&[Ioctl::new(code)], &[])
}

fn run_one_without_verifier(code: u32) -> Run {
    run_rulebreaker(&[Ioctl::new(code)], &["--verifier", "off"])
}

fn ntstatus(s: i32) -> u32 {
    s as u32
}

/// Assert bug check `code` without constraining parameter 1 (for codes whose p1 is an address
/// rather than a sub-code, such as 0xCE and 0xE1). `enforced: None` leaves `documented_only`
/// unchecked.
fn expect_bugcheck_code(run: &Run, code: u32, enforced: Option<Enforced>) -> BugCheck {
    let bc = bugcheck(run).unwrap_or_else(|| {
        panic!(
            "expected bug check {code:#x}, got `bugcheck: null`.\n{}",
            run.describe()
        )
    });
    assert_eq!(
        bc.code,
        code,
        "wrong bug check {:#x} p = {:#x?}.\n{}",
        bc.code,
        bc.parameters,
        run.describe()
    );
    assert_eq!(
        run.exit,
        Some(EXIT_BUGCHECK),
        "a bug check must exit 3.\n{}",
        run.describe()
    );
    assert_eq!(
        bc.name,
        bugcheck::bugcheck_name(code),
        "bugcheck.name.\n{}",
        run.describe()
    );
    if let Some(enforced) = enforced {
        assert_eq!(
            bc.documented_only,
            enforced == Enforced::DocumentedOnly,
            "bugcheck.documented_only.\n{}",
            run.describe()
        );
    }
    assert_driver_relative(&bc.address, run);
    bc
}

fn assert_clean(run: &Run) {
    expect_no_bugcheck(run);
    assert_eq!(
        run.exit,
        Some(EXIT_CLEAN),
        "a clean run exits 0.\n{}",
        run.describe()
    );
    let json = run.json();
    let leaks = json.get("leaks").unwrap_or(&Value::Null);
    assert!(
        leaks_are_empty(leaks),
        "unexpected leaks: {leaks}.\n{}",
        run.describe()
    );
    assert_eq!(
        json.get("verdict").and_then(Value::as_str),
        Some("clean"),
        "verdict.\n{}",
        run.describe()
    );
    let entry = json
        .get("driver_entry")
        .and_then(|d| d.get("status"))
        .and_then(Value::as_u64);
    assert_eq!(
        entry,
        Some(0),
        "DriverEntry must succeed.\n{}",
        run.describe()
    );
}

// ------------------------------------------------------------------------------------------------
// No false positives
// ------------------------------------------------------------------------------------------------

#[test]
fn well_behaved_request_is_clean() {
    let run = run_rulebreaker(
        &[Ioctl {
            code: IOCTL_WELL_BEHAVED,
            input: None,
            output_len: Some(4),
        }],
        &[],
    );
    assert_clean(&run);
    let r = ioctl_result(&run, 0);
    assert_eq!(
        status_of(&r),
        ntstatus(STATUS_SUCCESS),
        "{}",
        run.describe()
    );
    assert_eq!(information_of(&r), 4, "{}", run.describe());
    let size = u32::from_le_bytes(output_of(&r)[..4].try_into().expect("4 output bytes"));
    assert!(
        KNOWN_IO_WORKITEM_SIZES.contains(&size),
        "IoSizeofWorkItem() = {size:#x} is not a size Windows x64 uses.\n{}",
        run.describe()
    );
    assert!(
        run.dbgprint_text()
            .contains(&format!("{DBG_PREFIX}{DBG_DRIVER_ENTRY}")),
        "the driver's DriverEntry DbgPrint is missing.\n{}",
        run.describe()
    );
}

#[test]
fn well_behaved_request_honours_size_of_work_item() {
    for size in [0x40u32, 0x60, 0x100] {
        let run = run_rulebreaker(
            &[Ioctl {
                code: IOCTL_WELL_BEHAVED,
                input: None,
                output_len: Some(4),
            }],
            &["--size-of-work-item", &size.to_string()],
        );
        assert_clean(&run);
        let out = output_of(&ioctl_result(&run, 0));
        assert_eq!(
            out,
            size.to_le_bytes(),
            "IoSizeofWorkItem() must return --size-of-work-item.\n{}",
            run.describe()
        );
    }
}

#[test]
fn well_behaved_request_accepts_every_valid_queue_type() {
    // 0–6 and CustomPriorityWorkQueue + 0..=31 are valid.
    let types: Vec<[u8; 4]> = [0u32, 1, 2, 3, 4, 5, 6, 32, 47, 63]
        .iter()
        .map(|t| t.to_le_bytes())
        .collect();
    let ioctls: Vec<Ioctl<'_>> = types
        .iter()
        .map(|t| Ioctl {
            code: IOCTL_WELL_BEHAVED,
            input: Some(t),
            output_len: Some(4),
        })
        .collect();
    let run = run_rulebreaker(&ioctls, &[]);
    assert_clean(&run);
    for i in 0..ioctls.len() {
        assert_eq!(
            status_of(&ioctl_result(&run, i)),
            ntstatus(STATUS_SUCCESS),
            "ioctl #{i}.\n{}",
            run.describe()
        );
    }
}

#[test]
fn well_behaved_request_repeated_has_no_false_positive() {
    // Routines signal and then return while the dispatch thread frees, completes and finally
    // unloads: a verifier that races with its own worker threads would fire here.
    let ioctls = vec![
        Ioctl {
            code: IOCTL_WELL_BEHAVED,
            input: None,
            output_len: Some(4)
        };
        30
    ];
    let run = run_rulebreaker(&ioctls, &[]);
    assert_clean(&run);
}

#[test]
fn well_behaved_request_is_clean_without_verifier() {
    let run = run_rulebreaker(&[Ioctl::new(IOCTL_WELL_BEHAVED)], &["--verifier", "off"]);
    expect_no_bugcheck(&run);
    assert_eq!(run.exit, Some(EXIT_CLEAN), "{}", run.describe());
}

#[test]
fn unknown_ioctl_and_refused_arguments_change_nothing() {
    let valid_type = 3u32.to_le_bytes();
    let run = run_rulebreaker(
        &[
            Ioctl::new(nt_abi::ctl_code(
                nt_abi::FILE_DEVICE_UNKNOWN,
                FUNCTION_BASE + 0x7F,
                0,
                0,
            )),
            // The queue-type breaker refuses a *valid* type instead of queueing.
            Ioctl {
                code: IOCTL_E4_INVALID_QUEUE_TYPE,
                input: Some(&valid_type),
                output_len: None,
            },
        ],
        &[],
    );
    assert_clean(&run);
    assert_eq!(
        status_of(&ioctl_result(&run, 0)),
        ntstatus(STATUS_INVALID_DEVICE_REQUEST),
        "{}",
        run.describe()
    );
    assert_eq!(
        status_of(&ioctl_result(&run, 1)),
        ntstatus(STATUS_INVALID_PARAMETER),
        "{}",
        run.describe()
    );
}

// ------------------------------------------------------------------------------------------------
// WORKER_INVALID (0xE4)
// ------------------------------------------------------------------------------------------------

#[test]
fn e4_0_initialized_item_in_freed_pool_is_documented_only() {
    let run = run_one(IOCTL_E4_FREE_INITIALIZED_ITEM);
    let bc = expect_bugcheck(
        &run,
        bugcheck::WORKER_INVALID,
        wi::ACTIVE_ITEM_IN_FREED_POOL,
        Enforced::DocumentedOnly,
    );
    let (item, block) = (run.reported(KEY_ITEM), run.reported(KEY_BLOCK));
    expect_param(&run, &bc, 1, item, "p2 = address of the work item.");
    expect_param(&run, &bc, 2, block, "p3 = start of the pool block.");
    assert!(
        bc.parameters[3] > item,
        "p4 = end of the pool block.\n{}",
        run.describe()
    );
}

#[test]
fn e4_0_queued_item_in_freed_pool() {
    let run = run_one(IOCTL_E4_FREE_QUEUED_ITEM);
    let bc = expect_bugcheck(
        &run,
        bugcheck::WORKER_INVALID,
        wi::ACTIVE_ITEM_IN_FREED_POOL,
        Enforced::AtRunTime,
    );
    let (item, block) = (run.reported(KEY_ITEM), run.reported(KEY_BLOCK));
    expect_param(&run, &bc, 1, item, "p2 = address of the work item.");
    expect_param(&run, &bc, 2, block, "p3 = start of the pool block.");
    assert!(
        bc.parameters[3] > item,
        "p4 = end of the pool block.\n{}",
        run.describe()
    );
}

#[test]
fn e4_1_queue_an_already_queued_item() {
    let run = run_one(IOCTL_E4_REQUEUE_QUEUED_ITEM);
    let bc = expect_bugcheck(
        &run,
        bugcheck::WORKER_INVALID,
        wi::QUEUED_ITEM_REQUEUED,
        Enforced::AtRunTime,
    );
    expect_param(&run, &bc, 1, run.reported(KEY_ITEM), "p2 = the work item.");
    expect_param(
        &run,
        &bc,
        2,
        DELAYED_WORK_QUEUE as u64,
        "p3 = queue number.",
    );
    expect_param(&run, &bc, 3, 0, "p4 = 0 (Bug Check 0xE4 reference).");
}

#[test]
fn e4_2_uninitialize_a_queued_item() {
    let run = run_one(IOCTL_E4_UNINITIALIZE_QUEUED_ITEM);
    let bc = expect_bugcheck(
        &run,
        bugcheck::WORKER_INVALID,
        wi::QUEUED_ITEM_FREED,
        Enforced::AtRunTime,
    );
    expect_param(&run, &bc, 1, run.reported(KEY_ITEM), "p2 = the work item.");
    expect_param(
        &run,
        &bc,
        2,
        run.reported(KEY_ROUTINE),
        "p3 = the I/O worker routine.",
    );
}

#[test]
fn e4_2_iofreeworkitem_of_a_queued_item() {
    let run = run_one(IOCTL_E4_IOFREE_QUEUED_ITEM);
    let bc = expect_bugcheck(
        &run,
        bugcheck::WORKER_INVALID,
        wi::QUEUED_ITEM_FREED,
        Enforced::AtRunTime,
    );
    expect_param(&run, &bc, 1, run.reported(KEY_ITEM), "p2 = the work item.");
    expect_param(
        &run,
        &bc,
        2,
        run.reported(KEY_ROUTINE),
        "p3 = the I/O worker routine.",
    );
}

#[test]
fn e4_3_initialize_with_an_object_that_is_not_a_device_or_driver() {
    let run = run_one(IOCTL_E4_INVALID_IO_OBJECT);
    let bc = expect_bugcheck(
        &run,
        bugcheck::WORKER_INVALID,
        wi::INVALID_IO_OBJECT,
        Enforced::AtRunTime,
    );
    expect_param(&run, &bc, 1, run.reported(KEY_ITEM), "p2 = the work item.");
    expect_param(
        &run,
        &bc,
        2,
        run.reported(KEY_OBJECT),
        "p3 = the invalid object.",
    );
}

#[test]
fn e4_6_invalid_queue_types() {
    // 7 = MaximumWorkQueue, 31 = between the ranges, 64 = past CustomPriority + 31, and -1.
    for queue_type in [7u32, 31, 64, u32::MAX] {
        let input = queue_type.to_le_bytes();
        let run = run_rulebreaker(
            &[Ioctl {
                code: IOCTL_E4_INVALID_QUEUE_TYPE,
                input: Some(&input),
                output_len: None,
            }],
            &[],
        );
        let bc = expect_bugcheck(
            &run,
            bugcheck::WORKER_INVALID,
            wi::INVALID_QUEUE_TYPE,
            Enforced::AtRunTime,
        );
        expect_param(&run, &bc, 1, run.reported(KEY_ITEM), "p2 = the work item.");
        assert_eq!(
            bc.parameters[2] as u32,
            queue_type,
            "p3 = the queue number ({queue_type}).\n{}",
            run.describe()
        );
    }
}

#[test]
fn e4_7_invalid_worker_routine_address() {
    let run = run_one(IOCTL_E4_INVALID_ROUTINE);
    let bc = expect_bugcheck(
        &run,
        bugcheck::WORKER_INVALID,
        wi::INVALID_ROUTINE,
        Enforced::AtRunTime,
    );
    expect_param(&run, &bc, 1, run.reported(KEY_ITEM), "p2 = the work item.");
    expect_param(
        &run,
        &bc,
        2,
        DELAYED_WORK_QUEUE as u64,
        "p3 = queue number.",
    );
    expect_param(&run, &bc, 3, 0, "p4 = 0 (Bug Check 0xE4 reference).");
}

#[test]
fn e4_7_routine_in_the_images_data_is_not_code() {
    let input = INVALID_ROUTINE_IN_IMAGE_DATA.to_le_bytes();
    let run = run_rulebreaker(
        &[Ioctl {
            code: IOCTL_E4_INVALID_ROUTINE,
            input: Some(&input),
            output_len: Some(8),
        }],
        &[],
    );
    let bc = expect_bugcheck(
        &run,
        bugcheck::WORKER_INVALID,
        wi::INVALID_ROUTINE,
        Enforced::AtRunTime,
    );
    // The routine points into rulebreaker.sys's data; Windows' reference puts 0 in p4 (the
    // routine is not a parameter).
    assert_ne!(run.reported(KEY_ROUTINE), 0);
    expect_param(&run, &bc, 3, 0, "p4 = 0 (Bug Check 0xE4 reference).");
}

// ------------------------------------------------------------------------------------------------
// DRIVER_VERIFIER_DETECTED_VIOLATION (0xC4)
// ------------------------------------------------------------------------------------------------

#[test]
fn c4_131_work_item_on_the_stack_is_documented_only() {
    let run = run_one(IOCTL_C4_ITEM_ON_STACK);
    let bc = expect_bugcheck(
        &run,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        vf::WORK_ITEM_IN_PAGEABLE_MEMORY,
        Enforced::DocumentedOnly,
    );
    expect_param(&run, &bc, 1, run.reported(KEY_ITEM), "p2 = the work item.");
}

#[test]
fn c4_131_work_item_in_paged_pool() {
    let run = run_one(IOCTL_C4_ITEM_IN_PAGED_POOL);
    let bc = expect_bugcheck(
        &run,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        vf::WORK_ITEM_IN_PAGEABLE_MEMORY,
        Enforced::AtRunTime,
    );
    expect_param(&run, &bc, 1, run.reported(KEY_ITEM), "p2 = the work item.");
}

#[test]
fn c4_62_pool_leaked_at_unload() {
    // The IOCTL itself succeeds; the unload that follows fires.
    let run = run_rulebreaker(
        &[
            Ioctl::new(IOCTL_WELL_BEHAVED),
            Ioctl::new(IOCTL_C4_LEAK_POOL_AT_UNLOAD),
        ],
        &[],
    );
    let bc = expect_bugcheck(
        &run,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        vf::POOL_LEAKED_AT_UNLOAD,
        Enforced::AtRunTime,
    );
    for i in 0..2 {
        assert_eq!(
            status_of(&ioctl_result(&run, i)),
            ntstatus(STATUS_SUCCESS),
            "ioctl #{i}.\n{}",
            run.describe()
        );
    }
    expect_param(&run, &bc, 3, 1, "p4 = number of allocations not freed.");
    let leaks = run.json().get("leaks").cloned().unwrap_or(Value::Null);
    assert!(
        !leaks_are_empty(&leaks),
        "the report must list the leaked block.\n{}",
        run.describe()
    );
    let leak_tag = String::from_utf8_lossy(&LEAK_TAG.to_le_bytes()).into_owned();
    let leaks_text = leaks.to_string();
    let block = run.reported(KEY_BLOCK);
    assert!(
        leaks_text.contains(&leak_tag)
            || leaks_text.contains(&LEAK_TAG.to_string())
            || leaks_text.contains(&format!("{block}"))
            || leaks_text
                .to_ascii_lowercase()
                .contains(&format!("{block:x}")),
        "`leaks` must identify the block (tag {leak_tag:?} or address {block:#x}).\n{}",
        run.describe()
    );
}

#[test]
fn c4_14_double_free() {
    let run = run_one(IOCTL_C4_DOUBLE_FREE);
    expect_bugcheck(
        &run,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        vf::DOUBLE_FREE,
        Enforced::AtRunTime,
    );
}

#[test]
fn c4_00_zero_byte_allocation() {
    let run = run_one(IOCTL_C4_ZERO_BYTE_ALLOCATION);
    let bc = expect_bugcheck(
        &run,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        vf::ZERO_BYTE_ALLOCATION,
        Enforced::AtRunTime,
    );
    expect_param(&run, &bc, 1, PASSIVE_LEVEL as u64, "p2 = current IRQL.");
    expect_param(&run, &bc, 3, 0, "p4 = 0.");
}

#[test]
fn c4_10_free_of_an_address_that_was_not_allocated() {
    let run = run_one(IOCTL_C4_FREE_BAD_ADDRESS);
    let bc = expect_bugcheck(
        &run,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        vf::FREE_BAD_ADDRESS,
        Enforced::AtRunTime,
    );
    expect_param(
        &run,
        &bc,
        1,
        run.reported(KEY_ADDRESS),
        "p2 = the bad address.",
    );
}

#[test]
fn c4_32_spin_lock_released_at_passive_level() {
    let run = run_one(IOCTL_C4_RELEASE_SPINLOCK_TWICE);
    let bc = expect_bugcheck(
        &run,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        vf::RELEASE_SPINLOCK_NOT_AT_DISPATCH,
        Enforced::AtRunTime,
    );
    expect_param(&run, &bc, 1, PASSIVE_LEVEL as u64, "p2 = current IRQL.");
    expect_param(&run, &bc, 2, run.reported(KEY_LOCK), "p3 = the spin lock.");
}

#[test]
fn c4_01_paged_pool_allocated_at_dispatch_level() {
    let run = run_one(IOCTL_C4_PAGED_ALLOC_AT_DISPATCH);
    let bc = expect_bugcheck(
        &run,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        vf::PAGED_ALLOC_ABOVE_APC,
        Enforced::AtRunTime,
    );
    expect_param(&run, &bc, 1, DISPATCH_LEVEL as u64, "p2 = current IRQL.");
    expect_param(&run, &bc, 3, 0x40, "p4 = size.");
}

#[test]
fn c4_11_paged_pool_freed_at_dispatch_level() {
    let run = run_one(IOCTL_C4_PAGED_FREE_AT_DISPATCH);
    let bc = expect_bugcheck(
        &run,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        vf::PAGED_FREE_ABOVE_APC,
        Enforced::AtRunTime,
    );
    expect_param(&run, &bc, 1, DISPATCH_LEVEL as u64, "p2 = current IRQL.");
    expect_param(&run, &bc, 2, 1, "p3 = pool type (paged).");
    expect_param(&run, &bc, 3, run.reported(KEY_BLOCK), "p4 = the block.");
}

#[test]
fn c4_2000_executable_pool() {
    let run = run_one(IOCTL_C4_EXECUTABLE_POOL);
    expect_bugcheck(
        &run,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        vf::EXECUTABLE_POOL,
        Enforced::AtRunTime,
    );
}

#[test]
fn c4_3f_dereference_below_zero() {
    let run = run_one(IOCTL_C4_DEREFERENCE_UNDERFLOW);
    let bc = expect_bugcheck(
        &run,
        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
        vf::REFERENCE_COUNT_UNDERFLOW,
        Enforced::AtRunTime,
    );
    expect_param(
        &run,
        &bc,
        1,
        run.reported(KEY_OBJECT),
        "p2 = the object (the device).",
    );
}

// ------------------------------------------------------------------------------------------------
// BAD_POOL_CALLER (0xC2)
// ------------------------------------------------------------------------------------------------

#[test]
fn c2_0a_free_with_the_wrong_tag() {
    let run = run_one(IOCTL_C2_FREE_WITH_WRONG_TAG);
    let bc = expect_bugcheck(
        &run,
        bugcheck::BAD_POOL_CALLER,
        bpc::FREE_WRONG_TAG,
        Enforced::AtRunTime,
    );
    expect_param(
        &run,
        &bc,
        1,
        run.reported(KEY_BLOCK),
        "p2 = the pool address.",
    );
    expect_param(&run, &bc, 2, POOL_TAG as u64, "p3 = the allocation's tag.");
    expect_param(
        &run,
        &bc,
        3,
        WRONG_TAG as u64,
        "p4 = the tag passed to the free.",
    );
}

// ------------------------------------------------------------------------------------------------
// 0xCE, 0xE1: work routines
// ------------------------------------------------------------------------------------------------

#[test]
fn ce_unload_while_a_work_routine_is_running() {
    let run = run_one(IOCTL_CE_UNLOAD_WITH_RUNNING_ITEM);
    // Windows keeps the image of an IoQueueWorkItem caller loaded until the routine returns
    // (the device object stays referenced): ntsim is stricter and says so.
    expect_bugcheck_code(
        &run,
        bugcheck::DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS,
        Some(Enforced::DocumentedOnly),
    );
    assert_eq!(
        status_of(&ioctl_result(&run, 0)),
        ntstatus(STATUS_SUCCESS),
        "the IOCTL itself succeeds.\n{}",
        run.describe()
    );
}

#[test]
fn ce_unload_while_a_work_item_is_still_queued() {
    let run = run_one(IOCTL_CE_UNLOAD_WITH_QUEUED_ITEM);
    expect_bugcheck_code(
        &run,
        bugcheck::DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS,
        Some(Enforced::DocumentedOnly),
    );
    assert_eq!(
        status_of(&ioctl_result(&run, 0)),
        ntstatus(STATUS_SUCCESS),
        "the IOCTL itself succeeds.\n{}",
        run.describe()
    );
}

#[test]
fn e1_work_routine_returns_at_dispatch_level() {
    let run = run_one(IOCTL_E1_ROUTINE_RETURNS_AT_DISPATCH);
    let bc = expect_bugcheck_code(
        &run,
        bugcheck::WORKER_THREAD_RETURNED_AT_BAD_IRQL,
        Some(Enforced::AtRunTime),
    );
    expect_param(
        &run,
        &bc,
        1,
        DISPATCH_LEVEL as u64,
        "p2 = the IRQL the routine returned at.",
    );
    expect_param(&run, &bc, 3, run.reported(KEY_ITEM), "p4 = the work item.");
    // p3 = the executive work item's parameter, which for an IO_WORKITEM is the IO_WORKITEM
    // itself (ReactOS iowork.c: IopWorkItemCallback).
    expect_param(
        &run,
        &bc,
        2,
        run.reported(KEY_ITEM),
        "p3 = the work item (its parameter).",
    );
}

// ------------------------------------------------------------------------------------------------
// DRIVER_VERIFIER_IOMANAGER_VIOLATION (0xC9)
// ------------------------------------------------------------------------------------------------

#[test]
fn c9_312_information_larger_than_the_output_buffer() {
    let run = run_rulebreaker(
        &[Ioctl {
            code: IOCTL_C9_INFORMATION_EXCEEDS_OUTPUT,
            input: None,
            output_len: Some(8),
        }],
        &[],
    );
    expect_bugcheck(
        &run,
        bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION,
        iov::INFORMATION_EXCEEDS_OUTPUT,
        Enforced::AtRunTime,
    );
}

#[test]
fn c9_226_dispatch_returns_without_completing_or_pending() {
    let run = run_one(IOCTL_C9_RETURN_WITHOUT_COMPLETING);
    expect_bugcheck(
        &run,
        bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION,
        iov::DISPATCH_RETURNED_WITHOUT_COMPLETING,
        Enforced::AtRunTime,
    );
}

#[test]
fn c9_06_complete_with_status_pending() {
    let run = run_one(IOCTL_C9_COMPLETE_WITH_STATUS_PENDING);
    expect_bugcheck(
        &run,
        bugcheck::DRIVER_VERIFIER_IOMANAGER_VIOLATION,
        iov::COMPLETED_WITH_STATUS_PENDING,
        Enforced::AtRunTime,
    );
}

// ------------------------------------------------------------------------------------------------
// I/O manager checks that are always on: 0x44, 0x4A
// ------------------------------------------------------------------------------------------------

fn expect_kernel_bugcheck(run: &Run, code: u32) -> BugCheck {
    let bc = bugcheck(run).unwrap_or_else(|| {
        panic!(
            "expected bug check {code:#x}, got `bugcheck: null`.\n{}",
            run.describe()
        )
    });
    assert_eq!(bc.code, code, "wrong bug check.\n{}", run.describe());
    assert_eq!(run.exit, Some(EXIT_BUGCHECK), "{}", run.describe());
    assert_eq!(
        bc.name,
        bugcheck::bugcheck_name_ext(code),
        "bugcheck.name.\n{}",
        run.describe()
    );
    assert!(!bc.documented_only, "{}", run.describe());
    assert_driver_relative(&bc.address, run);
    bc
}

#[test]
fn irp_completed_twice_with_and_without_verifier() {
    for extra in [&[][..], &["--verifier", "off"][..]] {
        let run = run_rulebreaker(&[Ioctl::new(IOCTL_44_COMPLETE_TWICE)], extra);
        let bc = expect_kernel_bugcheck(&run, bugcheck::MULTIPLE_IRP_COMPLETE_REQUESTS);
        expect_param(&run, &bc, 0, run.reported(KEY_OBJECT), "p1 = the IRP.");
    }
}

#[test]
fn dispatch_returning_at_dispatch_level_with_and_without_verifier() {
    for extra in [&[][..], &["--verifier", "off"][..]] {
        let run = run_rulebreaker(&[Ioctl::new(IOCTL_4A_DISPATCH_RETURNS_AT_DISPATCH)], extra);
        let bc = expect_kernel_bugcheck(&run, bugcheck::IRQL_GT_ZERO_AT_SYSTEM_SERVICE);
        expect_param(&run, &bc, 1, DISPATCH_LEVEL as u64, "p2 = the IRQL.");
    }
}

// ------------------------------------------------------------------------------------------------
// --verifier off: Driver Verifier's rules go quiet, ntoskrnl's own checks do not
// ------------------------------------------------------------------------------------------------

/// Rules only Driver Verifier detects (DESIGN §4): with the verifier off, Windows raises nothing.
///
/// 0xC2/0x0A (wrong tag) is deliberately absent: ReactOS checks the tag on every free, the
/// Windows Server 2003 pool only for PROTECTED_POOL tags, and later Windows is not documented,
/// so neither "fires" nor "silent" can be asserted for `--verifier off`. 0x226 is absent too:
/// without the verifier, Windows leaves the caller waiting forever on the lost IRP.
const VERIFIER_ONLY: &[(&str, u32)] = &[
    ("0xC4/0x131 stack", IOCTL_C4_ITEM_ON_STACK),
    ("0xC4/0x131 paged pool", IOCTL_C4_ITEM_IN_PAGED_POOL),
    ("0xC4/0x62 leak", IOCTL_C4_LEAK_POOL_AT_UNLOAD),
    ("0xC4/0x00 zero bytes", IOCTL_C4_ZERO_BYTE_ALLOCATION),
    ("0xC4/0x32 spin lock", IOCTL_C4_RELEASE_SPINLOCK_TWICE),
    ("0xC4/0x2000 executable pool", IOCTL_C4_EXECUTABLE_POOL),
    (
        "0xC9/0x312 information",
        IOCTL_C9_INFORMATION_EXCEEDS_OUTPUT,
    ),
    (
        "0xC9/0x06 completed pending",
        IOCTL_C9_COMPLETE_WITH_STATUS_PENDING,
    ),
    (
        "0xCE running routine at unload",
        IOCTL_CE_UNLOAD_WITH_RUNNING_ITEM,
    ),
    (
        "0xC4/0x01 paged alloc at DISPATCH",
        IOCTL_C4_PAGED_ALLOC_AT_DISPATCH,
    ),
    (
        "0xC4/0x11 paged free at DISPATCH",
        IOCTL_C4_PAGED_FREE_AT_DISPATCH,
    ),
];

#[test]
fn verifier_off_silences_verifier_only_rules() {
    let mut failures = Vec::new();
    for &(rule, code) in VERIFIER_ONLY {
        let run = run_rulebreaker(
            &[Ioctl {
                code,
                input: None,
                output_len: Some(8),
            }],
            &["--verifier", "off"],
        );
        match bugcheck(&run) {
            None if run.exit != Some(EXIT_BUGCHECK) => {}
            None => failures.push(format!(
                "{rule}: exit 3 without a bug check.\n{}",
                run.describe()
            )),
            Some(bc) => failures.push(format!(
                "{rule}: fired {:#x}/{:#x} with --verifier off.\n{}",
                bc.code,
                bc.parameters[0],
                run.describe()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} verifier-only rule(s) fired with --verifier off:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn verifier_off_pool_corruption_is_not_a_verifier_bugcheck() {
    // Without the verifier, Windows' own pool still stops a double free or a bad free (as
    // BAD_POOL_CALLER / BAD_POOL_HEADER), but never as a Driver Verifier violation.
    // Likewise a reference-count underflow frees the object early (a later, different crash).
    for code in [
        IOCTL_C4_DOUBLE_FREE,
        IOCTL_C4_FREE_BAD_ADDRESS,
        IOCTL_C4_DEREFERENCE_UNDERFLOW,
    ] {
        let run = run_one_without_verifier(code);
        if let Some(bc) = bugcheck(&run) {
            assert_ne!(
                bc.code,
                bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                "0xC4 with --verifier off.\n{}",
                run.describe()
            );
        }
    }
}

#[test]
fn verifier_off_keeps_ntoskrnl_work_item_checks() {
    let cases: &[(u32, u64)] = &[
        (IOCTL_E4_FREE_QUEUED_ITEM, wi::ACTIVE_ITEM_IN_FREED_POOL),
        (IOCTL_E4_REQUEUE_QUEUED_ITEM, wi::QUEUED_ITEM_REQUEUED),
        (IOCTL_E4_UNINITIALIZE_QUEUED_ITEM, wi::QUEUED_ITEM_FREED),
        (IOCTL_E4_IOFREE_QUEUED_ITEM, wi::QUEUED_ITEM_FREED),
        (IOCTL_E4_INVALID_IO_OBJECT, wi::INVALID_IO_OBJECT),
        (IOCTL_E4_INVALID_QUEUE_TYPE, wi::INVALID_QUEUE_TYPE),
        (IOCTL_E4_INVALID_ROUTINE, wi::INVALID_ROUTINE),
    ];
    for &(code, p1) in cases {
        let run = run_one_without_verifier(code);
        let bc = expect_bugcheck(&run, bugcheck::WORKER_INVALID, p1, Enforced::AtRunTime);
        expect_param(&run, &bc, 1, run.reported(KEY_ITEM), "p2 = the work item.");
    }
}

#[test]
fn verifier_off_keeps_the_return_irql_check() {
    let run = run_one_without_verifier(IOCTL_E1_ROUTINE_RETURNS_AT_DISPATCH);
    let bc = expect_bugcheck_code(
        &run,
        bugcheck::WORKER_THREAD_RETURNED_AT_BAD_IRQL,
        Some(Enforced::AtRunTime),
    );
    assert_eq!(
        bc.parameters[1],
        DISPATCH_LEVEL as u64,
        "{}",
        run.describe()
    );
}

// ------------------------------------------------------------------------------------------------
// Load errors: nothing of the image runs
// ------------------------------------------------------------------------------------------------

fn assert_load_error(run: &Run) {
    assert_eq!(
        run.exit,
        Some(EXIT_LOAD_ERROR),
        "a load error exits 2.\n{}",
        run.describe()
    );
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        !all.contains(&format!("{DBG_PREFIX}{DBG_DRIVER_ENTRY}")),
        "DriverEntry ran although the image could not be loaded.\n{}",
        run.describe()
    );
    if let Ok(json) = serde_json::from_str::<Value>(run.stdout.trim()) {
        assert!(
            json.get("bugcheck").is_none_or(Value::is_null),
            "a load error is not a bug check.\n{}",
            run.describe()
        );
        assert!(
            json.get("driver_entry").is_none_or(Value::is_null),
            "DriverEntry must not have been called.\n{}",
            run.describe()
        );
        assert!(
            json.get("dbgprint")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty),
            "no driver code may have run.\n{}",
            run.describe()
        );
        assert!(
            json.get("load_error")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty()),
            "`load_error` must say why the image was refused.\n{}",
            run.describe()
        );
    }
}

#[test]
fn load_error_missing_import_names_it() {
    let sys = rulebreaker_missing_import_sys();
    let run = run_sys(sys, &[Ioctl::new(IOCTL_WELL_BEHAVED)], &[]);
    assert_load_error(&run);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains(MISSING_IMPORT_NAME),
        "the message must name `{MISSING_IMPORT_NAME}`.\n{}",
        run.describe()
    );
    for present in ["IoQueueWorkItem", "ExAllocatePool2"] {
        assert!(
            !all.lines().any(|l| l
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|w| w == present)),
            "only missing imports may be listed, not `{present}`.\n{}",
            run.describe()
        );
    }
}

#[test]
fn load_error_garbage_and_truncated_files() {
    let dir = scratch_dir();
    let image = std::fs::read(rulebreaker_sys()).expect("read rulebreaker.sys");
    // A deterministic pseudo-random blob (xorshift), an empty file, a DOS header alone, the
    // headers without the section data, and the image minus its last byte-page.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let garbage: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage.sys", garbage),
        ("empty.sys", Vec::new()),
        ("dos-header-only.sys", image[..64].to_vec()),
        ("headers-only.sys", image[..1024].to_vec()),
        ("truncated.sys", image[..image.len() / 2].to_vec()),
    ];
    for (name, bytes) in cases {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).expect("write fixture file");
        let run = run_sys(&path, &[Ioctl::new(IOCTL_WELL_BEHAVED)], &[]);
        assert_load_error(&run);
    }
    let run = run_sys(&dir.join("does-not-exist.sys"), &[], &[]);
    assert_load_error(&run);
}

// ------------------------------------------------------------------------------------------------
// CPU traps: 0x7F
// ------------------------------------------------------------------------------------------------

/// A driver that exhausts its kernel stack: Windows raises UNEXPECTED_KERNEL_MODE_TRAP with
/// p1 = 8 (double fault). The fault handler must run on its alternate stack, report the bug
/// check with a driver-relative address and exit 3 — not die of SIGSEGV (`ntsim()` fails the
/// test if the process was killed by a signal).
#[test]
fn kernel_stack_overflow_is_a_double_fault() {
    let run = run_one(IOCTL_7F_STACK_OVERFLOW);
    let bc = expect_kernel_bugcheck(&run, bugcheck::UNEXPECTED_KERNEL_MODE_TRAP);
    expect_param(
        &run,
        &bc,
        0,
        bugcheck::kernel_mode_trap::DOUBLE_FAULT,
        "p1 = 8 (double fault).",
    );
    let meaning = run.json()["bugcheck"]["meaning"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        meaning.contains("stack overflow"),
        "meaning `{meaning}`.\n{}",
        run.describe()
    );
}
