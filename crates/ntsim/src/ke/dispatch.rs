//! Dispatcher objects and waits: what `KeWaitForSingleObject` / `KeWaitForMultipleObjects`
//! do with each object type (`DISPATCHER_HEADER.Type`), semaphores and mutexes.
//!
//! Every waitable object keeps its state in `DISPATCHER_HEADER.SignalState`, updated
//! atomically (ntsim's waiters poll it, then sleep on the dispatcher lock's condition; whoever
//! signals wakes them). What satisfying a wait does depends on the type (Microsoft, *Defining
//! and Using an Event Object*, *Semaphore Objects*, *Mutex Objects*, *Timer Objects*,
//! *KeWaitForSingleObject*; ReactOS `ke/wait.c` `KiSatisfyObjectWait`):
//!
//! | Type | signaled when | a satisfied wait |
//! |---|---|---|
//! | 0 notification event, 8 notification timer, 6 thread, 3 process | SignalState ≠ 0 | changes nothing |
//! | 1 synchronization event, 9 synchronization timer | SignalState ≠ 0 | resets it to 0 |
//! | 5 semaphore | count > 0 | decrements the count |
//! | 2 mutex | not owned (SignalState 1), or owned by the waiter (recursion) | makes the waiter the owner; SignalState counts down |
//!
//! A WaitAll is satisfied only when every object is, and then takes all of them at once; if
//! another thread takes one first, the ones already taken are given back and the wait goes
//! on (so no object is ever left half-acquired).
#![allow(non_snake_case)]

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nt_abi::bugcheck as codes;
use nt_abi::dispatcher::object_type as ot;
use nt_abi::*;

use super::bugcheck::raise;
use super::thread::{self, current, park_forever};
use super::trap::{capture_entry, dispatch_exception, record};
use super::{WAIT_SPIN, irql, spin_until};
use crate::machine::{System, lock};
use crate::verifier::{Bc, LockKind};

/// The object's `DISPATCHER_HEADER.Type`.
pub(crate) fn header_type(obj: PVOID) -> u8 {
    let h = obj.cast::<DISPATCHER_HEADER>();
    // SAFETY: computing a field address of the caller's dispatcher object reads nothing.
    let ty = unsafe { &raw const (*h).Type };
    // SAFETY: the driver passed a dispatcher object; its type byte is plain data.
    unsafe { ty.read() }
}

/// The object's `DISPATCHER_HEADER.SignalState`, viewed atomically.
pub(crate) fn signal_state(obj: PVOID) -> &'static AtomicI32 {
    let h = obj.cast::<DISPATCHER_HEADER>();
    // SAFETY: computing a field address of the caller's dispatcher object reads nothing.
    let p = unsafe { &raw mut (*h).SignalState };
    // SAFETY: SignalState is a naturally aligned LONG of a live dispatcher object supplied by
    // the driver, and every access ntsim makes to it is atomic; the reference never outlives
    // the export call that made it.
    unsafe { AtomicI32::from_ptr(p) }
}

fn mutex_owner(m: PVOID) -> &'static AtomicUsize {
    let mx = m.cast::<KMUTANT>();
    // SAFETY: computing a field address of the caller's KMUTANT reads nothing.
    let p = unsafe { &raw mut (*mx).OwnerThread };
    // SAFETY: OwnerThread is a naturally aligned pointer of a live KMUTANT, accessed only
    // atomically by ntsim.
    unsafe { AtomicUsize::from_ptr(p.cast::<usize>()) }
}

/// The waiting thread's identity: its KTHREAD (what `KMUTANT.OwnerThread` holds).
pub(crate) fn me() -> usize {
    super::cpu::current_thread() as usize
}

/// Try to satisfy a wait on `obj` for thread `me` (and take the object if that changes it).
fn try_take(obj: PVOID, me: usize) -> bool {
    let s = signal_state(obj);
    match header_type(obj) {
        ot::EVENT_SYNCHRONIZATION | ot::TIMER_SYNCHRONIZATION => s
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                (v != 0).then_some(0)
            })
            .is_ok(),
        ot::SEMAPHORE => s
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                (v > 0).then(|| v - 1)
            })
            .is_ok(),
        ot::MUTANT => {
            let owner = mutex_owner(obj);
            if owner.load(Ordering::SeqCst) == me && s.load(Ordering::SeqCst) <= 0 {
                // Recursive acquisition by the owner (only the owner changes an owned mutex).
                s.fetch_sub(1, Ordering::SeqCst);
                return true;
            }
            if s.compare_exchange(1, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                owner.store(me, Ordering::SeqCst);
                thread::mutex_ownership_changed(1);
                thread::current().verifier.on_lock_held(
                    me,
                    obj as usize,
                    crate::mm::on_current_stack(obj as usize),
                );
                return true;
            }
            false
        }
        _ => s.load(Ordering::SeqCst) != 0,
    }
}

/// Whether a wait on `obj` by `me` would be satisfied now (takes nothing).
fn available(obj: PVOID, me: usize) -> bool {
    let s = signal_state(obj).load(Ordering::SeqCst);
    match header_type(obj) {
        ot::MUTANT => s == 1 || mutex_owner(obj).load(Ordering::SeqCst) == me,
        ot::SEMAPHORE => s > 0,
        _ => s != 0,
    }
}

/// Undo [`try_take`] (a WaitAll that lost one of its objects to another thread).
fn give_back(obj: PVOID, me: usize) {
    let s = signal_state(obj);
    match header_type(obj) {
        ot::EVENT_SYNCHRONIZATION | ot::TIMER_SYNCHRONIZATION => s.store(1, Ordering::SeqCst),
        ot::SEMAPHORE => {
            s.fetch_add(1, Ordering::SeqCst);
        }
        ot::MUTANT => {
            if s.load(Ordering::SeqCst) == 0 {
                mutex_owner(obj).store(0, Ordering::SeqCst);
                thread::mutex_ownership_changed(-1);
                // Not a release by the driver: the wait undoes its own take (same thread).
                let _ =
                    thread::current()
                        .verifier
                        .on_lock_release(me, obj as usize, LockKind::Mutex);
                s.store(1, Ordering::SeqCst);
            } else {
                s.fetch_add(1, Ordering::SeqCst);
            }
            let _ = me;
        }
        _ => {}
    }
}

/// One attempt to satisfy a wait: WaitAny returns STATUS_WAIT_0 + the index of the first
/// object it took; WaitAll takes all or none.
fn attempt(objects: &[PVOID], wait_all: bool, me: usize) -> Option<NTSTATUS> {
    if !wait_all {
        return objects
            .iter()
            .position(|&o| try_take(o, me))
            .map(|i| STATUS_SUCCESS + i as NTSTATUS);
    }
    if !objects.iter().all(|&o| available(o, me)) {
        return None;
    }
    for (i, &o) in objects.iter().enumerate() {
        if !try_take(o, me) {
            for &t in objects[..i].iter().rev() {
                give_back(t, me);
            }
            return None;
        }
    }
    Some(STATUS_SUCCESS)
}

/// A DDI compliance IRQL rule ([`crate::verifier::Hooks::on_ddi_irql`]): bug check when the
/// caller runs above `max`.
pub(crate) fn ddi_irql(m: &System, max: KIRQL, rule: u64, condition: &'static core::ffi::CStr) {
    let lvl = irql::get();
    if lvl > max
        && let Some(bc) = m.verifier.on_ddi_irql(rule, condition, lvl)
    {
        raise(m, bc);
    }
}

/// IrqlKeDispatchLte (Microsoft, *IrqlKeDispatchLte rule (wdm)*: 0xC4 / 0x00020011).
pub(crate) fn dispatch_lte(m: &System) {
    ddi_irql(
        m,
        DISPATCH_LEVEL,
        codes::ddi_rule::IRQL_KE_DISPATCH_LTE,
        c"IrqlKeDispatchLte: called at IRQL > DISPATCH_LEVEL",
    );
}

/// Wake every thread sleeping in a wait (an object became signaled).
pub(crate) fn wake(m: &System) {
    if m.ke.sleepers.load(Ordering::SeqCst) > 0 {
        drop(lock(&m.ke.dispatcher));
        m.ke.dispatcher_cv.notify_all();
    }
}

/// The IRQL rules of a wait (Microsoft, *KeWaitForSingleObject*, *KeWaitForMultipleObjects*,
/// *KeDelayExecutionThread*: callers run at IRQL <= APC_LEVEL, or at DISPATCH_LEVEL only with
/// a zero timeout):
/// - in a DPC routine, a wait that may block is 0xB8 ATTEMPTED_SWITCH_FROM_DPC (p1 the
///   current thread, p2 0 — ntsim has no thread it would switch to —, p3 the caller's stack
///   address, p4 0; Microsoft, *Bug Check 0xB8*: "a wait operation … was attempted from a DPC
///   routine");
/// - otherwise above APC_LEVEL it is 0xA IRQL_NOT_LESS_OR_EQUAL (p1 the object, or 0 for a
///   delay; p2 the IRQL), ntsim's long-standing rule. Windows raises these when the wait
///   actually has to block; ntsim raises them even when the object is already signaled
///   (stricter: the rule is documented, the check on Windows depends on timing).
pub(crate) fn check_wait_irql(m: &System, object: u64, may_block: bool) {
    let lvl = irql::get();
    if !may_block || lvl <= APC_LEVEL {
        return;
    }
    if super::dpc::in_dpc() {
        let sp = 0u8;
        raise(
            m,
            Bc::new(
                codes::ATTEMPTED_SWITCH_FROM_DPC,
                [me() as u64, 0, &raw const sp as u64, 0],
            ),
        );
    }
    raise(
        m,
        Bc::new(codes::IRQL_NOT_LESS_OR_EQUAL, [object, lvl as u64, 0, 0]),
    );
}

/// Wait for `objects` (any or all) until `dl` (None: forever). Spins briefly, then sleeps on
/// the dispatcher lock's condition; parks for good after a bug check.
pub(crate) fn wait(m: &System, objects: &[PVOID], wait_all: bool, dl: Option<Instant>) -> NTSTATUS {
    let me = me();
    // Deadlock detection: each KMUTEX a wait that can block may take, checked against the lock
    // order before anything blocks (a zero timeout is a try, which cannot deadlock).
    if dl.is_none_or(|d| d > Instant::now()) {
        for &o in objects {
            if header_type(o) == ot::MUTANT
                && let Some(bc) = m.verifier.on_lock_acquire(
                    me,
                    o as usize,
                    LockKind::Mutex,
                    crate::mm::on_current_stack(o as usize),
                )
            {
                raise(m, bc);
            }
        }
    }
    if let Some(r) = attempt(objects, wait_all, me) {
        return r;
    }
    if dl.is_some_and(|d| d <= Instant::now()) {
        return STATUS_TIMEOUT;
    }
    let spin = dl.map_or(WAIT_SPIN, |d| {
        d.saturating_duration_since(Instant::now()).min(WAIT_SPIN)
    });
    let mut got = None;
    spin_until(spin, || {
        got = attempt(objects, wait_all, me);
        got.is_some() || m.ke.is_bugged()
    });
    if let Some(r) = got {
        return r;
    }
    let mut g = lock(&m.ke.dispatcher);
    m.ke.sleepers.fetch_add(1, Ordering::SeqCst);
    let r = loop {
        if let Some(r) = attempt(objects, wait_all, me) {
            break r;
        }
        if m.ke.is_bugged() {
            m.ke.sleepers.fetch_sub(1, Ordering::SeqCst);
            drop(g);
            park_forever();
        }
        let step = match dl {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    break STATUS_TIMEOUT;
                }
                (d - now).min(Duration::from_millis(50))
            }
            None => Duration::from_millis(50),
        };
        g =
            m.ke.dispatcher_cv
                .wait_timeout(g, step)
                .unwrap_or_else(|e| e.into_inner())
                .0;
    };
    m.ke.sleepers.fetch_sub(1, Ordering::SeqCst);
    r
}

/// `KeWaitForMultipleObjects`: WaitAny returns STATUS_WAIT_0 + the index of the object that
/// satisfied the wait, WaitAll STATUS_WAIT_0 once every object is signaled (and taken), both
/// STATUS_TIMEOUT when the timeout expires (Microsoft, *KeWaitForMultipleObjects*). More than
/// THREAD_WAIT_OBJECTS (3) objects need a caller-supplied `WaitBlockArray` of `Count`
/// KWAIT_BLOCKs, and `Count` may not exceed MAXIMUM_WAIT_OBJECTS (64): either violation is bug
/// check 0xC MAXIMUM_WAIT_OBJECTS_EXCEEDED, as the page says (p1–p4 0: Microsoft documents no
/// parameters). ntsim does not write the wait blocks (Windows uses them as scratch).
///
/// # Safety
/// `Object` must point to `Count` dispatcher-object pointers; `Timeout` null or valid.
pub unsafe extern "win64" fn KeWaitForMultipleObjects(
    Count: ULONG,
    Object: *mut PVOID,
    WaitType: WAIT_TYPE,
    _WaitReason: KWAIT_REASON,
    WaitMode: KPROCESSOR_MODE,
    _Alertable: BOOLEAN,
    Timeout: *mut LARGE_INTEGER,
    WaitBlockArray: PVOID,
) -> NTSTATUS {
    let m = current();
    if Count > MAXIMUM_WAIT_OBJECTS || (Count > THREAD_WAIT_OBJECTS && WaitBlockArray.is_null()) {
        raise(
            &m,
            Bc::new(codes::MAXIMUM_WAIT_OBJECTS_EXCEEDED, [0, 0, 0, 0]),
        );
    }
    let dl = super::deadline(Timeout);
    let may_block = dl.is_none_or(|d| d > Instant::now());
    check_wait_irql(&m, Object as u64, may_block);
    if Count == 0 || Object.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the caller passes `Count` object pointers at `Object` (checked non-null above).
    let objects = unsafe { core::slice::from_raw_parts(Object, Count as usize) }.to_vec();
    check_wait_mode(&m, WaitMode, &objects);
    wait(&m, &objects, WaitType == WAIT_ALL, dl)
}

/// A UserMode wait on an object on this thread's stack (0xC4/0x123, misc_checks).
pub(crate) fn check_wait_mode(m: &System, mode: KPROCESSOR_MODE, objects: &[PVOID]) {
    if mode != USER_MODE {
        return;
    }
    for &o in objects {
        if crate::mm::on_current_stack(o as usize)
            && let Some(bc) = m.verifier.on_user_mode_wait_on_stack(o as usize)
        {
            raise(m, bc);
        }
    }
}

/// `KeInitializeSemaphore`: a semaphore object with count `Count` and limit `Limit`
/// (Microsoft, *KeInitializeSemaphore*).
///
/// # Safety
/// `Semaphore` must be writable storage for a KSEMAPHORE.
pub unsafe extern "win64" fn KeInitializeSemaphore(
    Semaphore: *mut KSEMAPHORE,
    Count: LONG,
    Limit: LONG,
) {
    let m = current();
    dispatch_lte(&m);
    super::check_sync_object(&m, Semaphore as usize);
    init_header(
        Semaphore.cast(),
        ot::SEMAPHORE,
        core::mem::size_of::<KSEMAPHORE>(),
        Count,
    );
    let p = Semaphore
        .wrapping_byte_add(core::mem::offset_of!(KSEMAPHORE, Limit))
        .cast::<LONG>();
    // SAFETY: writable KSEMAPHORE storage per the contract; `p` is its Limit field.
    unsafe { p.write_unaligned(Limit) };
}

/// Write `v` at byte offset `off` of the object at `base` (unaligned: x64 does not fault on a
/// misaligned kernel object, so neither does ntsim).
///
/// # Safety
/// `base` must be writable storage of an object that has a field of type `F` at `off`.
pub(crate) unsafe fn write_field<T, F>(base: *mut T, off: usize, v: F) {
    let p = base.wrapping_byte_add(off).cast::<F>();
    // SAFETY: per the contract, `p` is a writable field of type `F`.
    unsafe { p.write_unaligned(v) }
}

/// A self-linked (empty) list head at byte offset `off` of the object at `base`.
///
/// # Safety
/// As [`write_field`], for a LIST_ENTRY field.
pub(crate) unsafe fn init_list_field<T>(base: *mut T, off: usize) {
    let head = base.wrapping_byte_add(off).cast::<LIST_ENTRY>();
    // SAFETY: forwarded contract.
    unsafe {
        write_field(
            base,
            off,
            LIST_ENTRY {
                Flink: head,
                Blink: head,
            },
        )
    };
}

/// Write a dispatcher header with an empty wait list.
pub(crate) fn init_header(obj: PVOID, ty: u8, size: usize, state: i32) {
    let h = obj.cast::<DISPATCHER_HEADER>();
    // SAFETY: the caller passes writable storage that begins with a DISPATCHER_HEADER.
    unsafe {
        h.write_unaligned(DISPATCHER_HEADER {
            Type: ty,
            Signalling: 0,
            Size: (size / 4) as u8,
            Reserved1: 0,
            SignalState: state,
            WaitListHead: LIST_ENTRY {
                Flink: core::ptr::null_mut(),
                Blink: core::ptr::null_mut(),
            },
        })
    };
    // SAFETY: computing the list head's address in the header just written.
    let head = unsafe { &raw mut (*h).WaitListHead };
    // SAFETY: the list head is writable (just written); it points at itself, as Windows
    // initializes an empty wait list.
    unsafe {
        head.write_unaligned(LIST_ENTRY {
            Flink: head,
            Blink: head,
        })
    };
}

/// `KeReadStateSemaphore`: the current count.
///
/// # Safety
/// `Semaphore` must be an initialized KSEMAPHORE.
pub unsafe extern "win64" fn KeReadStateSemaphore(Semaphore: *mut KSEMAPHORE) -> LONG {
    let _m = current();
    signal_state(Semaphore.cast()).load(Ordering::SeqCst)
}

capture_entry!("ntsim_KeReleaseSemaphore", release_semaphore);
capture_entry!("ntsim_KeReleaseMutex", release_mutex);

unsafe extern "win64" {
    /// `KeReleaseSemaphore`: adds `Adjustment` to the count and returns the previous count;
    /// a count that would pass the semaphore's limit (or overflow) raises
    /// STATUS_SEMAPHORE_LIMIT_EXCEEDED and changes nothing (Microsoft, *KeReleaseSemaphore*:
    /// "If the sum would exceed the limit, the count is not adjusted and an exception is
    /// raised"; ReactOS `ke/semphobj.c`).
    #[link_name = "ntsim_KeReleaseSemaphore"]
    pub fn KeReleaseSemaphore(
        Semaphore: *mut KSEMAPHORE,
        Increment: KPRIORITY,
        Adjustment: LONG,
        Wait: BOOLEAN,
    ) -> LONG;
    /// `KeReleaseMutex`: the owner releases one acquisition; returns the previous state. A
    /// release by a thread that does not own the mutex raises STATUS_MUTANT_NOT_OWNED
    /// (ReactOS `ke/mutex.c` `KeReleaseMutant`; Microsoft, *KeReleaseMutex*: the caller must
    /// own the mutex).
    #[link_name = "ntsim_KeReleaseMutex"]
    pub fn KeReleaseMutex(Mutex: *mut KMUTEX, Wait: BOOLEAN) -> LONG;
}

fn raise_status(status: NTSTATUS, ctx: *mut CONTEXT) -> ! {
    let _ = current();
    // SAFETY: the capture entry passes its own copy of the caller's context, live and
    // exclusive for the rest of this (never-returning) call.
    let c = unsafe { &mut *ctx };
    let mut rec = record(status, EXCEPTION_NONCONTINUABLE, c.Rip, &[]);
    dispatch_exception(&mut rec, c)
}

extern "win64" fn release_semaphore(
    sem: u64,
    _incr: u64,
    adj: u64,
    _wait: u64,
    ctx: *mut CONTEXT,
) -> i32 {
    let m = current();
    let sem = sem as *mut KSEMAPHORE;
    let adj = adj as u32 as i32;
    let p = sem
        .wrapping_byte_add(core::mem::offset_of!(KSEMAPHORE, Limit))
        .cast::<LONG>();
    // SAFETY: the driver passes an initialized KSEMAPHORE; `p` is its Limit field.
    let limit = unsafe { p.read_unaligned() };
    let s = signal_state(sem.cast());
    let r = s.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
        v.checked_add(adj).filter(|n| *n <= limit && adj > 0)
    });
    match r {
        Ok(prev) => {
            wake(&m);
            prev
        }
        Err(_) => raise_status(STATUS_SEMAPHORE_LIMIT_EXCEEDED, ctx),
    }
}

extern "win64" fn release_mutex(mx: u64, _wait: u64, _: u64, _: u64, ctx: *mut CONTEXT) -> i32 {
    let m = current();
    dispatch_lte(&m);
    let obj = mx as PVOID;
    let owner = mutex_owner(obj);
    let s = signal_state(obj);
    if owner.load(Ordering::SeqCst) != me() || s.load(Ordering::SeqCst) > 0 {
        raise_status(STATUS_MUTANT_NOT_OWNED, ctx)
    }
    let prev = s.load(Ordering::SeqCst);
    if prev == 0 {
        owner.store(0, Ordering::SeqCst);
        thread::mutex_ownership_changed(-1);
        // The owner was checked above, so this only forgets the hold.
        let _ = m
            .verifier
            .on_lock_release(me(), obj as usize, LockKind::Mutex);
    }
    s.store(prev + 1, Ordering::SeqCst);
    if prev == 0 {
        wake(&m);
    }
    prev
}

/// `KeInitializeMutex`: signaled (SignalState 1), no owner (Microsoft, *KeInitializeMutex*;
/// `Level` is ignored, as on Windows).
///
/// # Safety
/// `Mutex` must be writable storage for a KMUTEX.
pub unsafe extern "win64" fn KeInitializeMutex(Mutex: *mut KMUTEX, _Level: ULONG) {
    let m = current();
    super::check_sync_object(&m, Mutex as usize);
    init_header(Mutex.cast(), ot::MUTANT, core::mem::size_of::<KMUTEX>(), 1);
    use core::mem::offset_of;
    // SAFETY: writable KMUTEX storage per the contract; each write is one of its fields.
    unsafe { init_list_field(Mutex, offset_of!(KMUTEX, MutantListEntry)) };
    // SAFETY: as above.
    unsafe {
        write_field(
            Mutex,
            offset_of!(KMUTEX, OwnerThread),
            core::ptr::null_mut::<core::ffi::c_void>(),
        )
    };
    // SAFETY: as above.
    unsafe { write_field(Mutex, offset_of!(KMUTEX, Abandoned), 0u8) };
    // SAFETY: as above.
    unsafe { write_field(Mutex, offset_of!(KMUTEX, ApcDisable), 1u8) };
}

/// `KeReadStateMutex`: 1 when not owned, 0 (or less, for recursive acquisitions) when owned.
///
/// # Safety
/// `Mutex` must be an initialized KMUTEX.
pub unsafe extern "win64" fn KeReadStateMutex(Mutex: *mut KMUTEX) -> LONG {
    let _m = current();
    signal_state(Mutex.cast()).load(Ordering::SeqCst)
}
