//! In-process tests of the kernel-services exports' documented semantics (system threads and
//! handles, dispatcher objects and waits, DPCs, timers, time): each export called through its
//! real entry on ntsim kernel threads. The C fixtures `systhread.c` and `timerdpc.c`
//! (`tests/kd_systhread.rs`, `tests/kd_timerdpc.rs`) drive the same exports from driver code.
mod ntsim_support;

use nt_abi::bugcheck;
use nt_abi::*;
use ntsim::Verifier;
use ntsim::exports::*;
use ntsim_support::*;

fn new_thread(routine: KSTART_ROUTINE, ctx: usize) -> (usize, CLIENT_ID) {
    let mut h: HANDLE = core::ptr::null_mut();
    let mut cid = CLIENT_ID {
        UniqueProcess: core::ptr::null_mut(),
        UniqueThread: core::ptr::null_mut(),
    };
    // SAFETY: writable out parameters; a win64 start routine.
    let st = unsafe {
        PsCreateSystemThread(
            &raw mut h,
            THREAD_ALL_ACCESS,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            &raw mut cid,
            routine,
            ctx as PVOID,
        )
    };
    assert_eq!(st, STATUS_SUCCESS);
    (h as usize, cid)
}

fn reference_handle(h: usize, ty: PVOID) -> (NTSTATUS, usize) {
    let mut obj: PVOID = core::ptr::null_mut();
    // SAFETY: writable out parameter.
    let st = unsafe {
        ObReferenceObjectByHandle(
            h as HANDLE,
            THREAD_ALL_ACCESS,
            ty,
            KERNEL_MODE,
            &raw mut obj,
            core::ptr::null_mut(),
        )
    };
    (st, obj as usize)
}

fn close(h: usize) -> NTSTATUS {
    // SAFETY: a handle value (validity is what is tested).
    unsafe { ZwClose(h as HANDLE) }
}

/// Context block for the thread routines (pool, 64 bytes): [0] counter, [1] event to wait
/// on, [2] what the thread saw.
unsafe extern "win64" fn counting_thread(ctx: PVOID) {
    let c = ctx as usize;
    if wait(read_usize(c + 8), None) != STATUS_SUCCESS {
        return;
    }
    // SAFETY: no preconditions on an ntsim thread.
    let me = unsafe { PsGetCurrentThread() };
    // SAFETY: `me` is the current thread.
    let sys = unsafe { PsIsSystemThread(me) };
    let same = KeGetCurrentThreadPtr() == me as usize;
    // SAFETY: no preconditions.
    let pid = unsafe { PsGetCurrentProcessId() } as usize;
    let lvl = ntsim::ke::irql::get();
    write_usize(
        c + 16,
        (sys as usize) | ((same as usize) << 1) | ((lvl as usize) << 4) | (pid << 8),
    );
    write_usize(c + 24, KeGetCurrentThreadPtr());
    atomic_add(c, 1);
}

#[allow(non_snake_case)]
fn KeGetCurrentThreadPtr() -> usize {
    // SAFETY: no preconditions.
    unsafe { KeGetCurrentThread() as usize }
}

unsafe extern "win64" fn terminating_thread(ctx: PVOID) {
    let c = ctx as usize;
    atomic_add(c, 1);
    // SAFETY: this is a system thread: the call does not return.
    unsafe { PsTerminateSystemThread(0x1234) };
    atomic_add(c, 100);
}

#[test]
fn a_system_thread_runs_at_passive_in_the_system_process_and_its_object_is_signaled_at_exit() {
    let m = machine(Verifier::Standard);
    let (counter, seen, is_sys, thread, self_ptr, cid) = m
        .run_in_kernel_thread(|| {
            let ctx = alloc_np(64);
            let go = new_event(NOTIFICATION_EVENT, false);
            write_usize(ctx + 8, go);
            let (h, cid) = new_thread(counting_thread, ctx);
            assert_eq!(
                h as u64 & 0xFFFF_FFFF_8000_0000,
                0xFFFF_FFFF_8000_0000,
                "a kernel handle: {h:#x}"
            );
            let (st, thread) = reference_handle(h, core::ptr::null_mut());
            assert_eq!(st, STATUS_SUCCESS);
            assert_eq!(close(h), STATUS_SUCCESS);
            assert_eq!(
                wait(thread, Some(0)),
                STATUS_TIMEOUT,
                "running: not signaled"
            );
            // SAFETY: a thread object from ObReferenceObjectByHandle.
            let is_sys = unsafe { PsIsSystemThread(thread as PVOID) };
            set_event(go);
            assert_eq!(wait(thread, Some(5000)), STATUS_SUCCESS, "signaled at exit");
            assert_eq!(wait(thread, Some(0)), STATUS_SUCCESS, "and stays signaled");
            let r = (
                read_usize(ctx),
                read_usize(ctx + 16),
                is_sys,
                thread,
                read_usize(ctx + 24),
            );
            dereference(thread);
            free(ctx, TAG);
            free(go, TAG);
            (
                r.0,
                r.1,
                r.2,
                r.3,
                r.4,
                (cid.UniqueProcess as usize, cid.UniqueThread as usize),
            )
        })
        .expect("no bug check");
    assert_eq!(counter, 1, "the routine ran once");
    assert_eq!(seen & 1, 1, "PsIsSystemThread(PsGetCurrentThread()) on it");
    assert_eq!(seen & 2, 2, "KeGetCurrentThread == PsGetCurrentThread");
    assert_eq!((seen >> 4) & 0xF, PASSIVE_LEVEL as usize, "PASSIVE_LEVEL");
    assert_eq!(seen >> 8, SYSTEM_PROCESS_ID, "the System process");
    assert_eq!(is_sys, 1);
    assert_eq!(
        self_ptr, thread,
        "gs:[0x188] on the thread is its thread object"
    );
    assert_eq!(cid.0, SYSTEM_PROCESS_ID);
    assert!(cid.1 != 0 && cid.1 % 4 == 0, "thread id {:#x}", cid.1);
    assert!(m.audit().is_clean(), "{:?}", m.audit());
}

#[test]
fn ps_terminate_system_thread_ends_the_thread_and_elsewhere_returns_invalid_parameter() {
    let m = machine(Verifier::Standard);
    let (counter, other) = m
        .run_in_kernel_thread(|| {
            let ctx = alloc_np(64);
            let (h, _) = new_thread(terminating_thread, ctx);
            let (st, thread) = reference_handle(h, core::ptr::null_mut());
            assert_eq!(st, STATUS_SUCCESS);
            assert_eq!(close(h), STATUS_SUCCESS);
            assert_eq!(wait(thread, Some(5000)), STATUS_SUCCESS);
            dereference(thread);
            // SAFETY: called on a thread PsCreateSystemThread did not create.
            let other = unsafe { PsTerminateSystemThread(STATUS_SUCCESS) };
            let c = read_usize(ctx);
            free(ctx, TAG);
            (c, other)
        })
        .expect("no bug check");
    assert_eq!(counter, 1, "nothing after PsTerminateSystemThread ran");
    assert_eq!(other, STATUS_INVALID_PARAMETER);
}

#[test]
fn ob_reference_object_by_handle_checks_the_handle_and_the_type() {
    let m = machine(Verifier::Standard);
    m.run_in_kernel_thread(|| {
        let ctx = alloc_np(64);
        let go = new_event(NOTIFICATION_EVENT, true);
        write_usize(ctx + 8, go);
        let (h, _) = new_thread(counting_thread, ctx);
        let thread_type = ntsim::ob::handle::type_object(ntsim::ob::ObjKind::Thread).unwrap();
        let event_type = ntsim::ob::handle::type_object(ntsim::ob::ObjKind::Event).unwrap();
        assert_eq!(
            reference_handle(h, event_type as PVOID).0,
            STATUS_OBJECT_TYPE_MISMATCH
        );
        let (st, thread) = reference_handle(h, thread_type as PVOID);
        assert_eq!(st, STATUS_SUCCESS);
        assert_eq!(
            reference_handle(0x1234, core::ptr::null_mut()).0,
            STATUS_INVALID_HANDLE
        );
        assert_eq!(close(h), STATUS_SUCCESS);
        assert_eq!(
            reference_handle(h, core::ptr::null_mut()).0,
            STATUS_INVALID_HANDLE,
            "closed"
        );
        assert_eq!(wait(thread, Some(5000)), STATUS_SUCCESS);
        dereference(thread);
        free(ctx, TAG);
        free(go, TAG);
    })
    .expect("no bug check");
}

#[test]
fn zw_close_of_a_handle_that_is_not_open_is_0x93() {
    let m = machine(Verifier::Off);
    let b = expect_bugcheck(&m, || close(0xFFFF_FFFF_8000_0444));
    assert_eq!(b.code, bugcheck::INVALID_KERNEL_HANDLE);
    assert_eq!(b.parameters[..2], [0xFFFF_FFFF_8000_0444, 1]);
    assert_eq!(b.name, "INVALID_KERNEL_HANDLE");
}
