//! IRP forwarding end to end through a C filter stack (`fixtures/c/iostack.c`): a lower device
//! and a filter attached with IoAttachDeviceToDeviceStack; the filter forwards with
//! IoSkipCurrentIrpStackLocation / IoCopyCurrentIrpStackLocationToNext + completion routines
//! (the WDK inlines, run against ntsim's IRP and stack-location layout) and builds IRPs of its
//! own (IoBuildDeviceIoControlRequest, IoBuildSynchronousFsdRequest,
//! IoBuildAsynchronousFsdRequest, IoAllocateIrp + IoReuseIrp + IoFreeIrp, IoInitializeIrp on
//! its own pool). Outputs are asserted; every run unloads clean, under `--verifier standard`
//! (IRPs in special pool) and `--verifier off`.
//!
//! Missing clang/lld/llvm/mingw-w64 FAILS these tests naming the package, unless
//! `WDM_ALLOW_SKIP=1` (`cargo xtask test` installs them first).
use nt_abi::*;
use ntsim::{Config, Handle, IoResult, Verifier};

mod c_fixtures;
mod cli_support;
use c_fixtures::{Rig, call_ok, fixture_ioctl as ioctl, words};

fn xor(b: &[u8], k: u8) -> Vec<u8> {
    b.iter().map(|x| x ^ k).collect()
}

fn call(h: &Handle, n: u32, input: &[u8], out: usize) -> IoResult {
    call_ok(h, ioctl(n), input, out)
}

/// Load, run `f` on a handle to `\\.\IoStack`, unload; the audit must be clean.
fn with_stack(verifier: Verifier, f: impl FnOnce(&Handle)) {
    let Some(rig) = Rig::start(
        "iostack",
        r"\\.\IoStack",
        Config {
            verifier,
            ..Config::default()
        },
    ) else {
        return;
    };
    let h = rig
        .machine
        .open(rig.device, GENERIC_READ | GENERIC_WRITE)
        .expect("open through the filter");
    f(&h);
    h.close().expect("close");
    rig.finish();
}

fn both(f: impl Fn(&Handle)) {
    for v in [Verifier::Standard, Verifier::Off] {
        with_stack(v, &f);
    }
}

#[test]
fn the_filter_forwards_an_ioctl_and_its_completion_routine_post_processes_the_output() {
    both(|h| {
        let input = b"filter stack!";
        let r = call(h, 0, input, input.len());
        assert_eq!(r.information, input.len());
        assert_eq!(
            r.output,
            xor(&xor(input, 0x5A), 0x0F),
            "lower: ^0x5A, then the filter's completion routine: ^0x0F"
        );
    });
}

#[test]
fn a_request_the_lower_driver_pends_completes_through_the_filter() {
    // The lower device marks the IRP pending, returns STATUS_PENDING and completes it from a
    // work item; the filter returns IoCallDriver's status and marks its own location in its
    // completion routine (PendingReturned): clean under the verifier's 0x23D/0x23E checks.
    both(|h| {
        let input = b"pended";
        let r = call(h, 3, input, input.len());
        assert_eq!(r.output, xor(&xor(input, 0x5A), 0x0F));
    });
}

#[test]
fn stack_locations_current_location_and_completion_device_arguments_are_windows_layout() {
    both(|h| {
        let r = call(h, 4, &[], 40);
        assert_eq!(r.information, 40);
        let w = words(&r.output);
        assert_eq!(w[0], 1, "the lower driver's location is CurrentLocation 1");
        assert_eq!(w[1], 2, "StackCount = the filter's StackSize (lower + 1)");
        assert_eq!(
            w[2], 1,
            "IoCallDriver stored the lower device in its location"
        );
        assert_eq!(
            w[3], 1,
            "the completion routine gets the filter's device (the location above)"
        );
        assert_eq!(
            w[4], 2,
            "in the completion routine, CurrentLocation is the filter's again"
        );
    });
}

#[test]
fn io_build_device_io_control_request_synchronous_with_an_event() {
    both(|h| {
        let input = b"12345678";
        let r = call(h, 1, input, 24);
        assert_eq!(r.information, 24);
        assert_eq!(
            &r.output[..8],
            &xor(input, 0x5A)[..],
            "buffered output copied back"
        );
        let w = words(&r.output[8..]);
        assert_eq!(w[0], STATUS_SUCCESS as u32 as u64, "iosb.Status");
        assert_eq!(w[1], 8, "iosb.Information");
    });
}

#[test]
fn io_allocate_irp_with_more_processing_required_io_reuse_irp_and_io_free_irp() {
    both(|h| {
        let input = b"async!";
        let r = call(h, 2, input, 64 + input.len());
        let w = words(&r.output[..64]);
        assert_eq!(
            &w[..3],
            &[0, 6, 0],
            "round 1: status, Information, DeviceObject = NULL"
        );
        assert_eq!(
            w[3], STATUS_NOT_SUPPORTED as u32 as u64,
            "IoReuseIrp sets IoStatus.Status"
        );
        assert_eq!(w[4], 1, "IoReuseIrp: CurrentLocation = StackCount + 1");
        assert_eq!(&w[5..8], &[0, 6, 0], "round 2");
        assert_eq!(&r.output[64..], &xor(input, 0x5A)[..]);
    });
}

#[test]
fn io_build_asynchronous_and_synchronous_fsd_requests_write_and_read_back() {
    both(|h| {
        let input = b"written!";
        let r = call(h, 5, input, 8 + 32);
        assert_eq!(
            &r.output[..8],
            &input[..],
            "read back what the async write stored"
        );
        let w = words(&r.output[8..]);
        assert_eq!(w, vec![0, 8, 0, 8], "write and read: status, Information");
    });
}

#[test]
fn attached_device_queries_and_stack_sizes() {
    both(|h| {
        let r = call(h, 6, &[], 32);
        assert_eq!(words(&r.output), vec![1, 1, 2, 1]);
    });
}

#[test]
fn io_detach_device_and_attaching_again() {
    both(|h| {
        let r = call(h, 8, &[], 32);
        assert_eq!(words(&r.output), vec![1, 1, 1, 1]);
        // Requests still reach the filter on top.
        let input = b"again";
        let r = call(h, 0, input, input.len());
        assert_eq!(r.output, xor(&xor(input, 0x5A), 0x0F));
    });
}

#[test]
fn io_initialize_irp_on_the_drivers_own_pool() {
    both(|h| {
        let input = b"mine";
        let r = call(h, 7, input, input.len());
        assert_eq!(r.output, xor(input, 0x5A));
    });
}

#[test]
fn reads_and_writes_pass_through_the_filter_with_io_skip_current_irp_stack_location() {
    both(|h| {
        let w = h.write_at(4, b"abc").expect("write");
        assert_eq!((w.status, w.information), (STATUS_SUCCESS, 3));
        let r = h.read_at(4, 3).expect("read");
        assert_eq!((r.status, r.information), (STATUS_SUCCESS, 3));
        assert_eq!(r.output, b"abc");
    });
}

/// The CLI: requests by name reach the filter on top of the stack; verdict clean.
#[test]
fn cli_run_through_the_filter_is_clean() {
    let Some(sys) = c_fixtures::fixture("iostack") else {
        return;
    };
    let x = format!(r"\\.\IoStack:{:#x}:0102:2", ioctl(0));
    let own = format!(r"\\.\IoStack:{:#x}:0a0b:0x40", ioctl(2));
    let run = cli_support::run_json(&sys, &["--ioctl", &x, "--ioctl", &own]);
    let j = run.json();
    assert_eq!(run.exit, Some(0), "{run:#?}");
    assert_eq!(j["verdict"], "clean");
    let r = j["ioctls"].as_array().expect("requests");
    assert_eq!(r[0]["output_hex"], "5457", "0x01^0x5A^0x0F, 0x02^0x5A^0x0F");
    assert_eq!(r[1]["information"], 0x40);
}
