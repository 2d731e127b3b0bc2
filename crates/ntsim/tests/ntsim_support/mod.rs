//! Safe wrappers over ntsim's exports for in-process tests. Every wrapper must run on an ntsim
//! kernel thread (inside `Machine::run_in_kernel_thread` or a work-item routine). Addresses are
//! passed as `usize` so closures stay `Send`.
#![allow(dead_code)]

use nt_abi::*;
use ntsim::exports::*;
use ntsim::{BugCheck, Config, Machine, Verifier};

pub fn machine(verifier: Verifier) -> Machine {
    Machine::new(Config {
        verifier,
        unload_grace: std::time::Duration::from_millis(200),
        ..Config::default()
    })
}

pub fn machine_with(f: impl FnOnce(&mut Config)) -> Machine {
    let mut c = Config {
        unload_grace: std::time::Duration::from_millis(200),
        ..Config::default()
    };
    f(&mut c);
    Machine::new(c)
}

/// Run `f` on a kernel thread and expect a bug check.
pub fn expect_bugcheck<T: Send + 'static>(
    m: &Machine,
    f: impl FnOnce() -> T + Send + 'static,
) -> BugCheck {
    match m.run_in_kernel_thread(f) {
        Ok(_) => {
            // A work item may still be on its way to the bug check.
            let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::time::Instant::now() < end {
                if let Some(b) = m.bugcheck() {
                    return b;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            panic!("expected a bug check, none happened")
        }
        Err(b) => b,
    }
}

pub const TAG: u32 = pool_tag(*b"Test");

pub fn size_of_work_item() -> usize {
    // SAFETY: no preconditions.
    unsafe { IoSizeofWorkItem() as usize }
}

pub fn alloc(flags: u64, size: usize, tag: u32) -> usize {
    // SAFETY: no preconditions beyond an ntsim thread.
    unsafe { ExAllocatePool2(flags, size, tag) as usize }
}

pub fn alloc_np(size: usize) -> usize {
    let p = alloc(POOL_FLAG_NON_PAGED, size, TAG);
    assert_ne!(p, 0, "nonpaged allocation");
    p
}

pub fn free(p: usize, tag: u32) {
    // SAFETY: misuse is reported as a bug check by ntsim, never UB in the test.
    unsafe { ExFreePoolWithTag(p as PVOID, tag) };
}

pub fn free_untagged(p: usize) {
    // SAFETY: as for `free`.
    unsafe { ExFreePool(p as PVOID) };
}

pub fn init(io_object: usize, item: usize) {
    // SAFETY: tests pass IoSizeofWorkItem() bytes at `item` (or deliberately bad storage that
    // ntsim must reject before writing).
    unsafe { IoInitializeWorkItem(io_object as PVOID, item as PIO_WORKITEM) };
}

pub fn uninit(item: usize) {
    // SAFETY: misuse is a bug check.
    unsafe { IoUninitializeWorkItem(item as PIO_WORKITEM) };
}

pub fn queue(item: usize, routine: IO_WORKITEM_ROUTINE, qt: WORK_QUEUE_TYPE, ctx: usize) {
    // SAFETY: misuse is a bug check; contexts outlive their routines in every test.
    unsafe { IoQueueWorkItem(item as PIO_WORKITEM, routine, qt, ctx as PVOID) };
}

pub fn queue_ex(item: usize, routine: IO_WORKITEM_ROUTINE_EX, qt: WORK_QUEUE_TYPE, ctx: usize) {
    // SAFETY: as for `queue`.
    unsafe { IoQueueWorkItemEx(item as PIO_WORKITEM, routine, qt, ctx as PVOID) };
}

/// A KEVENT in nonpaged pool.
pub fn new_event(ty: EVENT_TYPE, signaled: bool) -> usize {
    let e = alloc_np(core::mem::size_of::<KEVENT>());
    // SAFETY: `e` is KEVENT-sized writable pool.
    unsafe { KeInitializeEvent(e as *mut KEVENT, ty, signaled as u8) };
    e
}

pub fn set_event(e: usize) -> i32 {
    // SAFETY: an initialized event.
    unsafe { KeSetEvent(e as *mut KEVENT, 0, 0) }
}

pub fn reset_event(e: usize) -> i32 {
    // SAFETY: an initialized event.
    unsafe { KeResetEvent(e as *mut KEVENT) }
}

pub fn clear_event(e: usize) {
    // SAFETY: an initialized event.
    unsafe { KeClearEvent(e as *mut KEVENT) };
}

pub fn read_event(e: usize) -> i32 {
    // SAFETY: an initialized event.
    unsafe { KeReadStateEvent(e as *mut KEVENT) }
}

/// Wait with an optional relative timeout in milliseconds.
pub fn wait(e: usize, timeout_ms: Option<i64>) -> NTSTATUS {
    let mut li = LARGE_INTEGER {
        QuadPart: -timeout_ms.unwrap_or(0) * 10_000,
    };
    let t = if timeout_ms.is_some() {
        &raw mut li
    } else {
        core::ptr::null_mut()
    };
    // SAFETY: an initialized event; `t` null or a live local.
    unsafe { KeWaitForSingleObject(e as PVOID, EXECUTIVE, KERNEL_MODE, 0, t) }
}

pub fn reference(obj: usize) -> isize {
    // SAFETY: an ntsim object.
    unsafe { ObfReferenceObject(obj as PVOID) }
}

pub fn dereference(obj: usize) -> isize {
    // SAFETY: an ntsim object the caller referenced.
    unsafe { ObfDereferenceObject(obj as PVOID) }
}

pub fn unicode(s: &'static str) -> (Vec<u16>, UNICODE_STRING) {
    let mut w: Vec<u16> = s.encode_utf16().chain(Some(0)).collect();
    let mut us = UNICODE_STRING {
        Length: 0,
        MaximumLength: 0,
        Buffer: core::ptr::null_mut(),
    };
    // SAFETY: `w` is NUL-terminated; the returned Vec keeps the buffer alive (moving a Vec
    // does not move its heap buffer).
    unsafe { RtlInitUnicodeString(&mut us, w.as_mut_ptr()) };
    (w, us)
}

/// Write `len` bytes of `byte` at `p`.
pub fn fill(p: usize, byte: u8, len: usize) {
    // SAFETY: tests only fill blocks they allocated with at least `len` bytes.
    unsafe { core::ptr::write_bytes(p as *mut u8, byte, len) };
}

pub fn bytes(p: usize, len: usize) -> Vec<u8> {
    if len == 0 {
        return Vec::new();
    }
    // SAFETY: tests only read blocks they own with at least `len` bytes.
    unsafe { core::slice::from_raw_parts(p as *const u8, len) }.to_vec()
}

pub fn read_usize(p: usize) -> usize {
    // SAFETY: tests read their own aligned context words.
    unsafe { (p as *const usize).read() }
}

pub fn write_usize(p: usize, v: usize) {
    // SAFETY: tests write their own aligned context words.
    unsafe { (p as *mut usize).write(v) };
}

pub fn atomic_add(p: usize, v: usize) -> usize {
    // SAFETY: an aligned usize in a live pool block, only accessed atomically while shared.
    let a = unsafe { core::sync::atomic::AtomicUsize::from_ptr(p as *mut usize) };
    a.fetch_add(v, core::sync::atomic::Ordering::SeqCst)
}
