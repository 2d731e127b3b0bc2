//! Process and thread manager (above `ke` and `ob`, beside `io`): system threads
//! (`PsCreateSystemThread`, `PsTerminateSystemThread`), thread and process ids, thread
//! priorities (Microsoft, *PsCreateSystemThread*, *PsTerminateSystemThread*,
//! *KeSetPriorityThread*, *KeQueryPriorityThread*, *KeSetBasePriorityThread*,
//! *PsGetCurrentProcessId*, *PsGetCurrentThreadId*, *PsIsSystemThread*; ReactOS `ps/thread.c`,
//! `ps/kill.c`).
//!
//! A system thread runs on a Linux thread of its own (256 KiB stack, like the other ntsim
//! threads that run driver code), at PASSIVE_LEVEL, in the System process (process id 4),
//! with context `system thread` in reports. Its thread object is a KTHREAD-sized block ntsim
//! allocates (DISPATCHER_HEADER.Type = ThreadObject), which is also what `gs:[0x188]` /
//! `KeGetCurrentThread` / `PsGetCurrentThread` return on it; the object is signaled when the
//! thread terminates, so `KeWaitForSingleObject(thread, …)` returns then. The creator gets a
//! kernel handle (one reference); the thread itself holds another until it ends.
//!
//! The thread ends when its start routine returns or calls `PsTerminateSystemThread` (which
//! does not return: ntsim switches back to the thread's base frame). On any other thread
//! PsTerminateSystemThread returns STATUS_INVALID_PARAMETER (ReactOS `ps/kill.c`; Windows'
//! page: "If the routine cannot terminate the thread (for example, if the thread is not a
//! system thread), the routine returns an error NTSTATUS value"). ntsim also refuses to end
//! system worker threads and DPC threads the driver did not create (Windows would end a
//! system worker thread: the driver must not, its page says).
//!
//! A thread that ends at an IRQL above PASSIVE_LEVEL, or with APCs disabled (a mutex still
//! owned, a critical or guarded region still entered, a guarded mutex still held), is bug check
//! 0x20 KERNEL_APC_PENDING_DURING_EXIT: p1 0 (no APC), p2 the APC disable count as the
//! KTHREAD's CombinedApcDisable (SpecialApcDisable << 16 | KernelApcDisable, 16 bits each:
//! 0xFFFF for one mutex), p3 the IRQL, p4 0 (Microsoft, *Bug Check 0x20*: "the current IRQL
//! (Parameter 3) should be 0"; the count is nonzero when a driver called KeEnterCriticalRegion
//! or acquired a mutex without the matching call; ReactOS `ps/kill.c` PspExitThread tests
//! CombinedApcDisable).
#![allow(non_snake_case)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nt_abi::bugcheck as codes;
use nt_abi::dispatcher::object_type as ot;
use nt_abi::*;

use crate::ids::{DriverId, ObjectId};
use crate::ke::bugcheck::raise;
use crate::ke::thread::{self, KernelState, current};
use crate::ke::{cpu, dispatch, irql};
use crate::machine::{System, lock};
use crate::ob::ObjKind;
use crate::verifier::Bc;

/// What a thread created by PsCreateSystemThread is doing, for reports.
pub(crate) const SYSTEM_THREAD_CONTEXT: &str = "system thread";

/// Bytes of a thread object (Windows 10's KTHREAD is about 0x430 of them; drivers treat it as
/// opaque).
const THREAD_OBJECT_SIZE: usize = 0x480;

/// One thread created by PsCreateSystemThread.
pub(crate) struct SysThread {
    /// The thread object (KTHREAD storage); its address is the object's identity.
    object: Box<[u64; THREAD_OBJECT_SIZE / 8]>,
    pub(crate) driver: DriverId,
    pub(crate) routine: usize,
    running: AtomicBool,
    exit_status: AtomicI32,
}

impl SysThread {
    pub(crate) fn address(&self) -> usize {
        self.object.as_ptr() as usize
    }
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
}

/// The thread manager's state.
#[derive(Default)]
pub(crate) struct Ps {
    /// Threads created by PsCreateSystemThread, by thread-object address. Thread objects are
    /// kept until the machine is dropped (not freed at their last dereference).
    threads: Mutex<HashMap<usize, Arc<SysThread>>>,
    /// Thread ids, by KTHREAD address, assigned on first use.
    tids: Mutex<HashMap<usize, u64>>,
    next_tid: AtomicU64,
    /// Priorities set by KeSetPriorityThread / KeSetBasePriorityThread: (priority, base
    /// increment), by KTHREAD address.
    priorities: Mutex<HashMap<usize, (KPRIORITY, LONG)>>,
}

impl Ps {
    fn tid(&self, kthread: usize) -> u64 {
        *lock(&self.tids).entry(kthread).or_insert_with(|| {
            // Thread ids are multiples of 4 above the System process's 4 (as CLIENT_IDs are).
            0x100 + 4 * self.next_tid.fetch_add(1, Ordering::SeqCst)
        })
    }

    fn system_thread(&self, kthread: usize) -> Option<Arc<SysThread>> {
        lock(&self.threads).get(&kthread).cloned()
    }

    /// The driver's system threads that are still running.
    pub(crate) fn running_threads_of(&self, driver: DriverId) -> Vec<Arc<SysThread>> {
        lock(&self.threads)
            .values()
            .filter(|t| t.driver == driver && t.is_running())
            .cloned()
            .collect()
    }

    /// Wait up to `limit` for the driver's system threads to end.
    pub(crate) fn wait_threads_of(&self, driver: DriverId, limit: Duration) {
        let end = Instant::now() + limit;
        loop {
            if self.running_threads_of(driver).is_empty() || Instant::now() >= end {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

thread_local! {
    /// The saved stack pointer of this system thread's base frame (0 on other threads): where
    /// PsTerminateSystemThread switches back to.
    static EXIT_RSP: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

// ntsim_systhread_call(routine, context, &saved_rsp) (System V): save the callee-saved
// registers, record RSP, call the win64 `routine(context)` with its home area, and return 0.
// ntsim_systhread_exit(saved_rsp) (System V): switch back to that frame and return 1 from
// ntsim_systhread_call, abandoning everything the thread ran since.
core::arch::global_asm!(
    ".globl ntsim_systhread_call",
    "ntsim_systhread_call:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov [rdx], rsp",
    "sub rsp, 40",
    "mov rcx, rsi",
    "call rdi",
    "add rsp, 40",
    "xor eax, eax",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    ".globl ntsim_systhread_exit",
    "ntsim_systhread_exit:",
    "mov rsp, rdi",
    "mov eax, 1",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
);

unsafe extern "C" {
    fn ntsim_systhread_call(routine: KSTART_ROUTINE, context: PVOID, saved_rsp: *mut u64) -> u64;
    fn ntsim_systhread_exit(saved_rsp: u64) -> !;
}

/// `PsCreateSystemThread`: start `StartRoutine(StartContext)` on a new system thread and
/// return a handle to it (and its CLIENT_ID). `ProcessHandle` must be NULL (the System
/// process) or NtCurrentProcess(); other handles are STATUS_INVALID_HANDLE (ntsim has no other
/// processes). A NULL `ThreadHandle` is STATUS_INVALID_PARAMETER_1.
///
/// # Safety
/// `ThreadHandle` must be writable; `ClientId` null or writable; `StartRoutine` a win64
/// function taking one pointer.
pub unsafe extern "win64" fn PsCreateSystemThread(
    ThreadHandle: *mut HANDLE,
    DesiredAccess: ULONG,
    _ObjectAttributes: *mut OBJECT_ATTRIBUTES,
    ProcessHandle: HANDLE,
    ClientId: *mut CLIENT_ID,
    StartRoutine: KSTART_ROUTINE,
    StartContext: PVOID,
) -> NTSTATUS {
    let m = current();
    ps_passive(&m);
    if ThreadHandle.is_null() {
        return STATUS_INVALID_PARAMETER_1;
    }
    if !ProcessHandle.is_null() && ProcessHandle as isize != NT_CURRENT_PROCESS {
        return STATUS_INVALID_HANDLE;
    }
    let driver = thread::driver();
    let mut object = Box::new([0u64; THREAD_OBJECT_SIZE / 8]);
    dispatch::init_header(
        object.as_mut_ptr().cast(),
        ot::THREAD,
        THREAD_OBJECT_SIZE,
        0,
    );
    let t = Arc::new(SysThread {
        object,
        driver,
        routine: StartRoutine as usize,
        running: AtomicBool::new(true),
        exit_status: AtomicI32::new(STATUS_PENDING),
    });
    let addr = t.address();
    let tid = m.ps.tid(addr);
    lock(&m.ps.threads).insert(addr, t.clone());
    // One reference for the handle, one for the running thread.
    let h = m.ob.insert(ObjectId(addr), ObjKind::Thread, driver, None);
    if let Err(bc) = h.reference() {
        raise(&m, bc);
    }
    let access = if DesiredAccess == 0 {
        THREAD_ALL_ACCESS
    } else {
        DesiredAccess
    };
    let handle = m.ob.handles.create(ObjectId(addr), ObjKind::Thread, access);
    // SAFETY: writable handle storage per the contract (checked non-null).
    unsafe { ThreadHandle.write_unaligned(handle as HANDLE) };
    if !ClientId.is_null() {
        // SAFETY: non-null and writable per the contract.
        unsafe {
            ClientId.write_unaligned(CLIENT_ID {
                UniqueProcess: SYSTEM_PROCESS_ID as HANDLE,
                UniqueThread: tid as HANDLE,
            })
        };
    }
    let sys = thread::current_arc();
    let ctx = StartContext as usize;
    let spawned = crate::ke::fault::spawn_driver_thread("ntsim-systhread", move || {
        system_thread(sys, t, StartRoutine, ctx)
    });
    if let Err(e) = spawned {
        eprintln!("ntsim: cannot spawn a system thread: {e}");
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    STATUS_SUCCESS
}

/// IrqlPsPassive (Microsoft, *IrqlPsPassive rule (wdm)*: 0xC4 / 0x0002001C).
fn ps_passive(m: &System) {
    dispatch::ddi_irql(
        m,
        PASSIVE_LEVEL,
        codes::ddi_rule::IRQL_PS_PASSIVE,
        c"IrqlPsPassive: called at IRQL > PASSIVE_LEVEL",
    );
}

fn system_thread(sys: Arc<System>, t: Arc<SysThread>, routine: KSTART_ROUTINE, ctx: usize) {
    let state = KernelState::enter(sys.clone(), t.driver, SYSTEM_THREAD_CONTEXT);
    cpu::set_current_thread(t.address() as PVOID);
    let mut saved = 0u64;
    // SAFETY: the driver's start routine, called with its context on this new thread at
    // PASSIVE_LEVEL; the trampoline records the frame PsTerminateSystemThread returns to.
    EXIT_RSP.with(|e| e.set(&raw mut saved as u64));
    // SAFETY: as above; `saved` lives in this frame, which outlives the call.
    let terminated = unsafe { ntsim_systhread_call(routine, ctx as PVOID, &raw mut saved) };
    EXIT_RSP.with(|e| e.set(0));
    if terminated == 0 {
        t.exit_status.store(STATUS_SUCCESS, Ordering::SeqCst);
    }
    let lvl = irql::get();
    // CombinedApcDisable: a KMUTEX still owned, a critical or guarded region still entered.
    let apc = crate::verifier::combined_apc_disable(thread::apc_disable());
    if lvl != PASSIVE_LEVEL || apc != 0 {
        raise(
            &sys,
            Bc::new(
                codes::KERNEL_APC_PENDING_DURING_EXIT,
                [0, apc, lvl as u64, 0],
            )
            .at(t.routine),
        );
    }
    // The thread object is signaled: waiters on it are released.
    dispatch::signal_state(t.address() as PVOID).store(1, Ordering::SeqCst);
    t.running.store(false, Ordering::SeqCst);
    dispatch::wake(&sys);
    if let Err(bc) = sys.ob.dereference_and_release(&sys, ObjectId(t.address())) {
        raise(&sys, bc);
    }
    drop(state);
}

/// `PsTerminateSystemThread`: end the calling system thread with `ExitStatus` (does not
/// return); STATUS_INVALID_PARAMETER on a thread PsCreateSystemThread did not create.
///
/// # Safety
/// Always safe to call; on a system thread, nothing of the caller's frames runs again.
pub unsafe extern "win64" fn PsTerminateSystemThread(ExitStatus: NTSTATUS) -> NTSTATUS {
    let rsp = {
        let m = current();
        ps_passive(&m);
        let rsp = EXIT_RSP.with(|e| e.get());
        let me = cpu::current_thread() as usize;
        let Some(t) = m.ps.system_thread(me).filter(|_| rsp != 0) else {
            return STATUS_INVALID_PARAMETER;
        };
        t.exit_status.store(ExitStatus, Ordering::SeqCst);
        // SAFETY: `rsp` points at the saved-RSP slot of this thread's base frame, which is
        // live (the thread is still inside ntsim_systhread_call).
        unsafe { *(rsp as *const u64) }
    };
    // SAFETY: switching back to this thread's base frame (saved by ntsim_systhread_call on this
    // same thread); every frame between it and here is the driver's or this function's, which
    // holds nothing that needs dropping (the block above has ended).
    unsafe { ntsim_systhread_exit(rsp) }
}

/// `PsGetCurrentProcessId`: 4 (the System process) on system threads — DriverEntry,
/// DriverUnload, work items, DPCs, PsCreateSystemThread threads; the requesting process's id on
/// a dispatch routine serving a user-mode request (ntsim's caller process: the id of the Linux
/// process running the machine, rounded to a multiple of 4).
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn PsGetCurrentProcessId() -> HANDLE {
    let _m = current();
    if is_user_context() {
        ((std::process::id() as usize * 4) | 0x1000) as HANDLE
    } else {
        SYSTEM_PROCESS_ID as HANDLE
    }
}

/// Whether the calling thread is a user thread (a dispatch routine serving a user request).
fn is_user_context() -> bool {
    let c = thread::context();
    c.ends_with("dispatch") || c == "dispatch routine"
}

/// `PsGetCurrentThreadId`: a stable id per thread (a multiple of 4).
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn PsGetCurrentThreadId() -> HANDLE {
    let m = current();
    m.ps.tid(cpu::current_thread() as usize) as HANDLE
}

/// `PsIsSystemThread`: TRUE for threads PsCreateSystemThread created, and for the calling
/// thread when it is a system thread (not a dispatch routine serving a user request); FALSE
/// for other pointers.
///
/// # Safety
/// `Thread` should be a thread object.
pub unsafe extern "win64" fn PsIsSystemThread(Thread: PVOID) -> BOOLEAN {
    let m = current();
    if m.ps.system_thread(Thread as usize).is_some() {
        return 1;
    }
    (Thread == cpu::current_thread() && !is_user_context()) as BOOLEAN
}

fn priority_of(m: &System, t: usize) -> (KPRIORITY, LONG) {
    lock(&m.ps.priorities)
        .get(&t)
        .copied()
        .unwrap_or((SYSTEM_THREAD_PRIORITY, 0))
}

/// `KeSetPriorityThread`: set the thread's priority (LOW_PRIORITY+1..=HIGH_PRIORITY; others
/// are clamped) and return the old one. ntsim records it (KeQueryPriorityThread reads it back);
/// Linux scheduling is not changed.
///
/// # Safety
/// `Thread` should be a thread object.
pub unsafe extern "win64" fn KeSetPriorityThread(Thread: PVOID, Priority: KPRIORITY) -> KPRIORITY {
    let m = current();
    let mut g = lock(&m.ps.priorities);
    let e = g
        .entry(Thread as usize)
        .or_insert((SYSTEM_THREAD_PRIORITY, 0));
    let old = e.0;
    e.0 = Priority.clamp(LOW_PRIORITY + 1, HIGH_PRIORITY);
    old
}

/// `KeQueryPriorityThread`: the thread's current priority (8 until set).
///
/// # Safety
/// `Thread` should be a thread object.
pub unsafe extern "win64" fn KeQueryPriorityThread(Thread: PVOID) -> KPRIORITY {
    let m = current();
    priority_of(&m, Thread as usize).0
}

/// `KeSetBasePriorityThread`: set the base-priority increment (relative to the process's base
/// priority 8) and return the previous increment; the priority becomes 8 + increment (clamped
/// to 1..=15, the variable range).
///
/// # Safety
/// `Thread` should be a thread object.
pub unsafe extern "win64" fn KeSetBasePriorityThread(Thread: PVOID, Increment: LONG) -> LONG {
    let m = current();
    let mut g = lock(&m.ps.priorities);
    let e = g
        .entry(Thread as usize)
        .or_insert((SYSTEM_THREAD_PRIORITY, 0));
    let old = e.1;
    e.1 = Increment;
    e.0 = (SYSTEM_THREAD_PRIORITY + Increment).clamp(1, LOW_REALTIME_PRIORITY - 1);
    old
}

/// The unload checks of a driver's threads, timers and DPCs, after DriverUnload returned:
/// - a system thread the driver created still running after `Config::unload_grace` is bug
///   check 0xCE DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS (p1 its start routine,
///   p2 0, p3 the thread object, p4 DriverUnload), ntsim's parameters as for work items: on
///   Windows the thread goes on running code in the unloaded image and the 0xCE comes when it
///   next does (p1 the address it referenced). Drivers stop their threads in DriverUnload by
///   signaling them and waiting on the thread object (Microsoft, *PsCreateSystemThread*:
///   "the driver must … ensure that each such thread terminates");
/// - a timer still set, or a DPC still queued, that lies in the driver's image or whose DPC
///   routine does is bug check 0xC7 TIMER_OR_DPC_INVALID (p1 0 timer / 1 DPC / 2 DPC routine,
///   p2 the object or routine, p3–p4 the image's range), as Windows' image unload checks
///   (Microsoft, *Bug Check 0xC7*: "usually caused by a driver failing to cancel a timer or
///   DPC before freeing the memory where it resides"; ReactOS/Windows MmUnloadSystemImage →
///   KeCheckForTimer).
pub(crate) fn check_unload(
    sys: &System,
    driver: DriverId,
    image: Option<(usize, usize)>,
    unload: usize,
) {
    sys.ps.wait_threads_of(driver, sys.config.unload_grace);
    if let Some(t) = sys.ps.running_threads_of(driver).first() {
        raise(
            sys,
            Bc::new(
                codes::DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS,
                [t.routine as u64, 0, t.address() as u64, unload as u64],
            )
            .at(t.routine),
        );
    }
    let Some((lo, hi)) = image else { return };
    if let Some((p1, what)) = crate::ke::timer::active_in(sys, lo, hi) {
        raise(
            sys,
            Bc::new(
                codes::TIMER_OR_DPC_INVALID,
                [p1, what as u64, lo as u64, hi as u64],
            )
            .at(unload),
        );
    }
}
