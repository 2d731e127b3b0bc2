//! The I/O manager's buffer handling, end to end through a C fixture driver
//! (`fixtures/c/iomethods.c`, built like the other C fixtures): an IOCTL for each transfer
//! method, the MDL routines, and IRP_MJ_READ / IRP_MJ_WRITE on a DO_DIRECT_IO device (plus
//! buffered and "neither" twins), through the library and the CLI, under the verifier
//! (special pool on). Outputs, Information and statuses are asserted; the MDL fields are
//! reported by the driver as it saw them.
//!
//! Missing clang/lld/llvm/mingw-w64 FAILS these tests naming the package, unless
//! `WDM_ALLOW_SKIP=1` (`cargo xtask test` installs them first).
use std::path::PathBuf;

use nt_abi::*;
use ntsim::{BugCheck, Config, Handle, Machine, Verifier};

mod c_fixtures;
mod cli_support;
use c_fixtures::{Rig, call, ioctl_code, words};

/// Offset of every caller buffer in its page (ntsim's `mm::user::USER_BUFFER_PAGE_OFFSET`).
const USER_OFFSET: u64 = 0x230;

fn fixture() -> Option<PathBuf> {
    c_fixtures::fixture("iomethods")
}

impl Rig {
    fn new() -> Option<Rig> {
        Rig::start(
            "iomethods",
            r"\\.\IoMethods",
            Config {
                verifier: Verifier::Standard,
                ..Config::default()
            },
        )
    }

    fn open_named(&self, name: &str) -> Handle {
        self.open_path(&format!(r"\\.\{name}"))
    }
}

fn ioctl(n: u32, method: u32) -> u32 {
    ioctl_code(0x900 + n, method)
}

fn xor(b: &[u8]) -> Vec<u8> {
    b.iter().map(|x| x ^ 0x5A).collect()
}

fn is_user(a: u64) -> bool {
    a != 0 && a < MM_USER_PROBE_ADDRESS
}

#[test]
fn method_buffered_copies_back_information_bytes_and_sets_user_buffer() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open_named("IoMethods");
    let r = call(&h, ioctl(0, METHOD_BUFFERED), b"hello, buffered", 8);
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(r.information, 8);
    assert_eq!(r.output, xor(b"hello, b"));
    let r = call(&h, ioctl(1, METHOD_BUFFERED), &[1, 2, 3], 40);
    assert_eq!(r.information, 32);
    let w = words(&r.output);
    let (user, sys, flags, mdl) = (w[0], w[1], w[2] as u32, w[3]);
    assert!(
        is_user(user),
        "UserBuffer is the caller's buffer: {user:#x}"
    );
    assert_eq!(user & 0xFFF, USER_OFFSET);
    assert!(
        sys != 0 && sys != user,
        "SystemBuffer is a separate system buffer"
    );
    assert_eq!(
        flags & (IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER | IRP_INPUT_OPERATION),
        IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER | IRP_INPUT_OPERATION
    );
    assert_eq!(mdl, 0, "no MDL for METHOD_BUFFERED");
    drop(h);
    rig.finish();
}

fn check_direct(method: u32, n: u32, expect_flags: i16) {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open_named("IoMethods");
    let out_len = 0x1200; // spans two pages from offset 0x230
    let r = call(&h, ioctl(n, method), b"direct input", out_len);
    assert_eq!(r.status, STATUS_SUCCESS, "{r:?}");
    assert_eq!(r.information, 64 + 12);
    let w = words(&r.output[..64]);
    assert_eq!(
        w[0] as i16, expect_flags,
        "MdlFlags as the driver received the MDL"
    );
    assert_eq!(
        w[1] as i16,
        expect_flags | MDL_MAPPED_TO_SYSTEM_VA,
        "after MmGetSystemAddressForMdlSafe"
    );
    assert_eq!(w[2], out_len as u64, "ByteCount = OutputBufferLength");
    assert_eq!(w[3], USER_OFFSET, "ByteOffset");
    let (start, mapped, user, sys) = (w[4], w[5], w[6], w[7]);
    assert!(is_user(user));
    assert_eq!(start, user & !0xFFF, "StartVa = PAGE_ALIGN(output buffer)");
    assert!(
        mapped != 0 && mapped != user,
        "MappedSystemVa is a system view"
    );
    assert_eq!(mapped & 0xFFF, USER_OFFSET);
    assert!(sys != 0, "the input is in a SystemBuffer");
    assert_eq!(&r.output[64..], &xor(b"direct input")[..]);
    drop(h);
    rig.finish();
}

#[test]
fn method_out_direct_gets_a_locked_mdl_for_write_and_a_system_buffer_for_input() {
    check_direct(METHOD_OUT_DIRECT, 2, MDL_PAGES_LOCKED | MDL_WRITE_OPERATION);
}

#[test]
fn method_in_direct_gets_a_locked_mdl_for_read() {
    check_direct(METHOD_IN_DIRECT, 3, MDL_PAGES_LOCKED);
}

#[test]
fn method_neither_passes_the_callers_user_addresses() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open_named("IoMethods");
    let r = call(&h, ioctl(4, METHOD_NEITHER), b"neither", 64);
    assert_eq!(
        r.status, STATUS_SUCCESS,
        "ProbeForRead/Write accept the buffers"
    );
    assert_eq!(r.information, 32 + 7);
    let w = words(&r.output[..32]);
    assert!(
        is_user(w[0]) && is_user(w[1]),
        "Type3InputBuffer, UserBuffer: {w:x?}"
    );
    assert_eq!(w[0] & 0xFFF, USER_OFFSET);
    assert_eq!((w[2], w[3]), (0, 0), "no SystemBuffer, no MDL");
    assert_eq!(&r.output[32..], &xor(b"neither")[..]);
    drop(h);
    rig.finish();
}

#[test]
fn driver_built_mdl_lock_map_unmap_unlock_free() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open_named("IoMethods");
    let out_len = 0x100;
    let r = call(&h, ioctl(5, METHOD_NEITHER), b"own mdl", out_len);
    assert_eq!(r.status, STATUS_SUCCESS, "{r:?}");
    assert_eq!(r.information, 56 + 7);
    let w = words(&r.output[..56]);
    // One page spanned: sizeof(MDL) + one PFN.
    assert_eq!(w[0], 0x30 + 8, "Size after IoAllocateMdl");
    assert_eq!(w[1], 0, "MdlFlags after IoAllocateMdl");
    assert_eq!(
        w[2] as i16,
        MDL_PAGES_LOCKED | MDL_WRITE_OPERATION,
        "after lock"
    );
    assert_eq!(
        w[3] as i16,
        MDL_PAGES_LOCKED | MDL_WRITE_OPERATION | MDL_MAPPED_TO_SYSTEM_VA,
        "after map"
    );
    assert_eq!(
        w[4] as i16,
        MDL_PAGES_LOCKED | MDL_WRITE_OPERATION,
        "after unmap"
    );
    assert_eq!(w[5], 0, "after unlock");
    assert_ne!(w[6], 0, "the PFN array is filled");
    assert_eq!(
        &r.output[56..],
        &xor(b"own mdl")[..],
        "written through the system view"
    );
    drop(h);
    rig.finish();
}

#[test]
fn mm_probe_and_lock_pages_raises_access_violation_on_bad_buffers() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open_named("IoMethods");
    let code = ioctl(6, METHOD_NEITHER);
    assert_eq!(
        call(&h, code, &[0], 16).status,
        STATUS_ACCESS_VIOLATION,
        "an unmapped user address"
    );
    assert_eq!(
        call(&h, code, &[1], 16).status,
        STATUS_ACCESS_VIOLATION,
        "kernel memory probed for UserMode"
    );
    assert_eq!(
        call(&h, code, &[2], 16).status,
        STATUS_SUCCESS,
        "kernel memory probed for KernelMode"
    );
    drop(h);
    rig.finish();
}

#[test]
fn mm_build_mdl_for_nonpaged_pool() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open_named("IoMethods");
    let r = call(&h, ioctl(7, METHOD_BUFFERED), &[], 40);
    assert_eq!(r.status, STATUS_SUCCESS);
    let w = words(&r.output);
    assert_eq!(w[0] as i16, MDL_SOURCE_IS_NONPAGED_POOL);
    assert_eq!(w[1], 1, "MappedSystemVa is the buffer");
    assert_eq!(w[3], 40, "ByteCount");
    assert_eq!(
        w[4], 1,
        "MmGetSystemAddressForMdlSafe returns MappedSystemVa"
    );
    drop(h);
    rig.finish();
}

#[test]
fn secondary_mdl_is_chained_and_freed_by_the_io_manager() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open_named("IoMethods");
    let r = call(&h, ioctl(10, METHOD_OUT_DIRECT), &[], 64);
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(words(&r.output), vec![1]);
    drop(h);
    rig.finish();
}

fn bugcheck_of(rig: &Rig, h: &Handle, code: u32) -> BugCheck {
    match h.device_io_control(code, &[], 64) {
        Err(b) => b,
        Ok(r) => rig
            .machine
            .bugcheck()
            .unwrap_or_else(|| panic!("no bug check: {r:?}")),
    }
}

#[test]
fn unlocking_pages_twice_is_process_has_locked_pages_1() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open_named("IoMethods");
    let b = bugcheck_of(&rig, &h, ioctl(8, METHOD_NEITHER));
    assert_eq!(b.code, bugcheck::PROCESS_HAS_LOCKED_PAGES, "{b}");
    assert_eq!(b.parameters[0], 1);
    assert_ne!(b.parameters[1], 0, "p2 = the MDL");
    assert_eq!(
        b.parameters[2], 0,
        "no pages locked in the process any more"
    );
    assert!(b.verifier_rule);
}

#[test]
fn freeing_a_locked_mdl_leaves_the_pages_locked_process_has_locked_pages_0() {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open_named("IoMethods");
    let b = bugcheck_of(&rig, &h, ioctl(9, METHOD_NEITHER));
    assert_eq!(b.code, bugcheck::PROCESS_HAS_LOCKED_PAGES, "{b}");
    assert_eq!(b.parameters[0], 0);
    assert_eq!(b.parameters[2], 1, "one page still locked");
    assert!(
        b.documented_only,
        "ntsim checks at the end of the request, not at process exit"
    );
}

#[test]
fn the_mdl_rules_are_off_without_the_verifier() {
    let Some(sys) = fixture() else { return };
    let machine = Machine::new(Config {
        verifier: Verifier::Off,
        ..Config::default()
    });
    let driver = machine.load_driver(&sys).expect("load");
    assert_eq!(driver.start().expect("DriverEntry"), STATUS_SUCCESS);
    let h = machine
        .open(r"\\.\IoMethods", GENERIC_READ | GENERIC_WRITE)
        .expect("open");
    for n in [8, 9] {
        let r = call(&h, ioctl(n, METHOD_NEITHER), &[], 64);
        assert_eq!(r.status, STATUS_SUCCESS);
    }
    assert!(machine.bugcheck().is_none());
    drop(h);
    driver.unload().expect("unload");
}

fn read_write_roundtrip(device: &str) {
    let Some(rig) = Rig::new() else { return };
    let h = rig.open_named(device);
    let w = h.write(b"0123456789abcdef").expect("write");
    assert_eq!((w.status, w.information), (STATUS_SUCCESS, 16), "{device}");
    assert!(w.output.is_empty());
    let w = h.write_at(250, b"tail-spill").expect("write_at");
    assert_eq!(
        (w.status, w.information),
        (STATUS_SUCCESS, 6),
        "clipped at the end"
    );
    let r = h.read(10).expect("read");
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 10));
    assert_eq!(r.output, b"0123456789");
    let r = h.read_at(4, 0x1800).expect("read spanning pages");
    assert_eq!(r.information, 252);
    assert_eq!(&r.output[..12], b"456789abcdef");
    assert_eq!(&r.output[246..], b"tail-s");
    let r = h.read_at(256, 4).expect("read at the end");
    assert_eq!(r.status, STATUS_END_OF_FILE);
    let r = h.read(0).expect("zero-length read");
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 0));
    drop(h);
    rig.finish();
}

#[test]
fn read_write_with_direct_io() {
    read_write_roundtrip("IoMethods");
}

#[test]
fn read_write_with_buffered_io() {
    read_write_roundtrip("IoMethodsBuf");
}

#[test]
fn read_write_with_neither_io() {
    read_write_roundtrip("IoMethodsNeither");
}

#[test]
fn read_and_write_need_the_handles_access() {
    let Some(rig) = Rig::new() else { return };
    let ro = rig
        .machine
        .open(r"\\.\IoMethods", GENERIC_READ)
        .expect("open read-only");
    assert_eq!(ro.write(b"x").unwrap().status, STATUS_ACCESS_DENIED);
    assert_eq!(ro.read(1).unwrap().status, STATUS_SUCCESS);
    drop(ro);
    let wo = rig
        .machine
        .open(r"\\.\IoMethods", GENERIC_WRITE)
        .expect("open write-only");
    assert_eq!(wo.read(1).unwrap().status, STATUS_ACCESS_DENIED);
    drop(wo);
    rig.finish();
}

/// The documented edges of the MDL exports, called in-process on a kernel thread: a length
/// whose MDL `Size` cannot fit is refused (NULL); IoAllocateMdl with an IRP attaches the MDL
/// (primary) or chains it (secondary); MmMapLockedPagesSpecifyCache needs locked pages;
/// MmBuildMdlForNonPagedPool's mapping is what MmMapLockedPagesSpecifyCache returns.
#[test]
fn mdl_exports_in_process() {
    use ntsim::exports::*;
    let machine = Machine::new(Config::default());
    let ok = machine
        .run_in_kernel_thread(|| {
            let mut store = [0u8; 0x40];
            let va: PVOID = store.as_mut_ptr().wrapping_add(0x10).cast();
            let null_irp: *mut IRP = core::ptr::null_mut();
            let map = |mdl: PMDL| {
                // SAFETY: `mdl` is a live MDL from IoAllocateMdl below.
                unsafe {
                    MmMapLockedPagesSpecifyCache(
                        mdl,
                        KERNEL_MODE,
                        MM_CACHED,
                        core::ptr::null_mut(),
                        0,
                        NORMAL_PAGE_PRIORITY as u32,
                    )
                }
            };
            // SAFETY: a null IRP; the length is refused before anything is touched.
            let huge = unsafe { IoAllocateMdl(va, u32::MAX, 0, 0, null_irp) };
            assert!(huge.is_null(), "Size would not fit 16 bits");
            // SAFETY: `store` outlives the MDL; a null IRP.
            let mdl = unsafe { IoAllocateMdl(va, 0x20, 0, 0, null_irp) };
            assert!(!mdl.is_null());
            // SAFETY: a live MDL; its header is plain data.
            let d = unsafe { *mdl };
            assert_eq!(d.StartVa as usize, va as usize & !0xFFF);
            assert_eq!(d.ByteOffset as usize, va as usize & 0xFFF);
            assert_eq!(d.ByteCount, 0x20);
            assert!(map(mdl).is_null(), "pages not locked");
            // SAFETY: a live MDL describing `store` (nonpaged kernel-thread stack memory).
            unsafe { MmBuildMdlForNonPagedPool(mdl) };
            assert_eq!(map(mdl), va, "MappedSystemVa of a nonpaged-pool MDL");
            // SAFETY: the MDL from IoAllocateMdl, freed once.
            unsafe { IoFreeMdl(mdl) };
            true
        })
        .expect("no bug check");
    assert!(ok);
}

/// The CLI drives the same requests: `--write`, `--read` and `--ioctl` of each method, in
/// command-line order, reported in `--json` with their major function, status, Information
/// and output; the run is clean under the verifier (special pool on by default).
#[test]
fn cli_reads_writes_and_ioctls_of_every_method() {
    let Some(sys) = fixture() else { return };
    let sys = sys.to_str().unwrap();
    let out_direct = format!(
        r"\\.\IoMethods:{:#x}:0102:0x50",
        ioctl(2, METHOD_OUT_DIRECT)
    );
    let neither = format!(r"\\.\IoMethods:{:#x}:414243:0x40", ioctl(4, METHOD_NEITHER));
    let buffered = format!(r"\\.\IoMethods:{:#x}:00ff:2", ioctl(0, METHOD_BUFFERED));
    let run = cli_support::ntsim(&[
        "run",
        sys,
        "--json",
        "--write",
        r"\\.\IoMethods:68656c6c6f",
        "--read",
        r"\\.\IoMethods:3",
        "--read",
        r"\\.\IoMethodsBuf:0",
        "--write",
        r"\\.\IoMethodsNeither:",
        "--ioctl",
        &out_direct,
        "--ioctl",
        &neither,
        "--ioctl",
        &buffered,
    ]);
    let j = run.json();
    assert_eq!(run.exit, Some(0), "{run:#?}");
    assert_eq!(j["verdict"], "clean");
    let r = j["ioctls"].as_array().expect("requests");
    assert_eq!(r.len(), 7);
    assert_eq!(r[0]["major"], "IRP_MJ_WRITE");
    assert_eq!(r[0]["length"], 5);
    assert_eq!(r[0]["information"], 5);
    assert_eq!(r[0]["output_hex"], "");
    assert_eq!(r[1]["major"], "IRP_MJ_READ");
    assert_eq!(r[1]["status_name"], "STATUS_SUCCESS");
    assert_eq!(r[1]["information"], 3);
    assert_eq!(
        r[1]["output_hex"], "68656c",
        "the direct-I/O device kept the write"
    );
    assert_eq!(r[2]["information"], 0, "zero-length read");
    assert_eq!(r[3]["major"], "IRP_MJ_WRITE");
    assert_eq!(r[3]["status"], 0);
    assert_eq!(r[4]["major"], "IRP_MJ_DEVICE_CONTROL");
    assert_eq!(r[4]["information"], 66);
    let hex = r[4]["output_hex"].as_str().unwrap();
    assert_eq!(
        &hex[128..],
        "5b58",
        "the input xor 0x5A, after the 64-byte report"
    );
    assert_eq!(r[5]["information"], 35);
    assert!(r[5]["output_hex"].as_str().unwrap().ends_with("1b1819"));
    assert_eq!(r[6]["output_hex"], "5aa5");
}

#[test]
fn cli_read_write_arguments_are_strict() {
    for (opt, arg, expect) in [
        ("--read", r"\\.\X", "expected"),
        ("--read", r"\\.\X:", "bad --read LEN"),
        ("--read", r"\\.\X:-1", "bad --read LEN"),
        ("--read", r"\\.\X:0x100000000", "bad --read LEN"),
        ("--read", r":4", "expected"),
        ("--write", r"\\.\X", "expected"),
        ("--write", r"\\.\X:abc", "bad --write HEX"),
        ("--write", r"\\.\X:0g", "bad --write HEX"),
    ] {
        let run = cli_support::ntsim(&["run", "no-such.sys", opt, arg]);
        assert_eq!(run.exit, Some(1), "{opt} {arg}: {run:#?}");
        assert!(run.stdout.is_empty(), "nothing ran");
        assert!(run.stderr.contains(expect), "{opt} {arg}: {}", run.stderr);
    }
}

#[test]
fn ntsim_imports_lists_the_mdl_exports() {
    let run = cli_support::ntsim(&["imports"]);
    assert_eq!(run.exit, Some(0), "{run:#?}");
    for name in [
        "IoAllocateMdl",
        "IoFreeMdl",
        "MmProbeAndLockPages",
        "MmUnlockPages",
        "MmMapLockedPagesSpecifyCache",
        "MmUnmapLockedPages",
        "MmBuildMdlForNonPagedPool",
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l == format!("ntoskrnl.exe!{name}")),
            "{name} missing from `ntsim imports`:\n{}",
            run.stdout
        );
    }
}
