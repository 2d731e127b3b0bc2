//! Kernel timers: dispatcher objects that become signaled at their due time and queue their
//! DPC (Microsoft, *Timer Objects and DPCs*, *KeSetTimer*, *KeSetTimerEx*, *KeCancelTimer*,
//! *KeReadStateTimer*, *KeInitializeTimerEx*; ReactOS `ke/timerobj.c`, `ke/dpc.c`
//! `KiTimerListExpire`).
//!
//! - Due times are in 100-ns units: negative = relative to now, positive = an absolute system
//!   time (100 ns since 1601, as KeQuerySystemTime returns), zero = now. `KTIMER.DueTime` holds
//!   the absolute *interrupt* time of expiry while the timer is set, `Period` the period in ms,
//!   `Dpc` the DPC, and header byte 3 (`Inserted`) is 1 while the timer is in the timer queue.
//! - Setting a timer clears its signal state and replaces an earlier setting (KeSetTimer(Ex)
//!   returns TRUE if the timer was already set). At expiry the timer is signaled (a
//!   synchronization timer releases one waiter and resets, a notification timer releases all
//!   and stays signaled), a periodic timer is set again `Period` ms later, and its DPC is
//!   queued with SystemArgument1/2 = the low/high parts of the system time.
//! - One timer thread per machine expires timers (started on the first KeSetTimer; it exits
//!   when no timer has been set for a while and restarts on demand).
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nt_abi::dispatcher::object_type as ot;
use nt_abi::*;

use super::dispatch::{
    dispatch_lte, init_header, init_list_field, signal_state, wake, write_field,
};
use super::thread::{self, current};
use crate::ids::DriverId;
use crate::machine::{System, lock};

/// How long the timer thread lingers with no timer set before it exits.
const TIMER_THREAD_IDLE: Duration = Duration::from_secs(2);

#[derive(Clone, Copy)]
struct Rec {
    due: Instant,
    period: Option<Duration>,
    dpc: usize,
    driver: DriverId,
}

#[derive(Default)]
struct State {
    set: HashMap<usize, Rec>,
    thread: bool,
}

/// The machine's timer queue.
#[derive(Default)]
pub(crate) struct Timers {
    st: Mutex<State>,
    cv: Condvar,
    shutdown: AtomicBool,
}

impl Timers {
    pub(crate) fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    pub(crate) fn wake_all(&self) {
        drop(lock(&self.st));
        self.cv.notify_all();
    }

    /// A set timer whose object or DPC routine lies in `[lo, hi)`: (p1, object) for
    /// TIMER_OR_DPC_INVALID (0 the timer, 2 the DPC routine).
    pub(crate) fn set_in_range(&self, lo: usize, hi: usize) -> Option<(u64, usize)> {
        let g = lock(&self.st);
        for (&t, r) in &g.set {
            if (lo..hi).contains(&t) {
                return Some((0, t));
            }
            if r.dpc != 0 {
                let d = r.dpc as *const KDPC;
                // SAFETY: the DPC of a set timer must stay valid while the timer is set.
                let dpc = unsafe { d.read_unaligned() };
                let routine = dpc.DeferredRoutine.map_or(0, |f| f as usize);
                if (lo..hi).contains(&routine) {
                    return Some((2, routine));
                }
            }
        }
        None
    }

    /// Forget a timer whose storage is being reinitialized.
    fn forget(&self, timer: usize) {
        lock(&self.st).set.remove(&timer);
    }
}

/// A timer still set or a DPC still queued in `[lo, hi)`, or whose DPC routine lies there:
/// (TIMER_OR_DPC_INVALID p1, the object or routine).
pub(crate) fn active_in(sys: &System, lo: usize, hi: usize) -> Option<(u64, usize)> {
    sys.ke
        .timers
        .set_in_range(lo, hi)
        .or_else(|| sys.ke.dpcs.queued_in_range(lo, hi))
}

fn inserted(timer: *mut KTIMER, on: bool) {
    let p = timer.cast::<u8>().wrapping_add(TIMER_INSERTED_OFFSET);
    // SAFETY: byte 3 of the timer's dispatcher header, inside the driver's KTIMER.
    unsafe { p.write(on as u8) };
}

/// `KeInitializeTimer`: a notification timer.
///
/// # Safety
/// `Timer` must be writable storage for a KTIMER.
pub unsafe extern "win64" fn KeInitializeTimer(Timer: *mut KTIMER) {
    // SAFETY: forwarded contract.
    unsafe { KeInitializeTimerEx(Timer, NOTIFICATION_TIMER) }
}

/// `KeInitializeTimerEx`: a notification (`NotificationTimer`) or synchronization timer, not
/// set, not signaled.
///
/// # Safety
/// `Timer` must be writable storage for a KTIMER.
pub unsafe extern "win64" fn KeInitializeTimerEx(Timer: *mut KTIMER, Type: TIMER_TYPE) {
    let m = current();
    dispatch_lte(&m);
    super::check_sync_object(&m, Timer as usize);
    m.ke.timers.forget(Timer as usize);
    let ty = if Type == SYNCHRONIZATION_TIMER {
        ot::TIMER_SYNCHRONIZATION
    } else {
        ot::TIMER_NOTIFICATION
    };
    init_header(Timer.cast(), ty, core::mem::size_of::<KTIMER>(), 0);
    use core::mem::offset_of;
    // SAFETY: writable KTIMER storage per the contract; each write is one of its fields.
    unsafe { write_field(Timer, offset_of!(KTIMER, DueTime), 0u64) };
    // SAFETY: as above.
    unsafe { init_list_field(Timer, offset_of!(KTIMER, TimerListEntry)) };
    // SAFETY: as above.
    unsafe {
        write_field(
            Timer,
            offset_of!(KTIMER, Dpc),
            core::ptr::null_mut::<KDPC>(),
        )
    };
    // SAFETY: as above.
    unsafe { write_field(Timer, offset_of!(KTIMER, Processor), 0u32) };
    // SAFETY: as above.
    unsafe { write_field(Timer, offset_of!(KTIMER, Period), 0u32) };
}

/// The time until a due time in 100-ns units (negative relative, positive absolute).
fn until(due: i64) -> Duration {
    let ticks = if due < 0 {
        due.unsigned_abs()
    } else {
        (due - super::system_time()).max(0) as u64
    };
    Duration::from_nanos(ticks.saturating_mul(100))
}

/// `KeSetTimer`: `KeSetTimerEx` with no period.
///
/// # Safety
/// See [`KeSetTimerEx`].
pub unsafe extern "win64" fn KeSetTimer(
    Timer: *mut KTIMER,
    DueTime: LARGE_INTEGER,
    Dpc: *mut KDPC,
) -> BOOLEAN {
    // SAFETY: forwarded contract.
    unsafe { KeSetTimerEx(Timer, DueTime, 0, Dpc) }
}

/// `KeSetTimerEx`: set (or reset) the timer; TRUE if it was already set. `Period` in ms
/// (0: one-shot). Callable at IRQL <= DISPATCH_LEVEL.
///
/// # Safety
/// `Timer` must be an initialized KTIMER and `Dpc` null or an initialized KDPC, both valid
/// until the timer is cancelled or expires for the last time.
pub unsafe extern "win64" fn KeSetTimerEx(
    Timer: *mut KTIMER,
    DueTime: LARGE_INTEGER,
    Period: LONG,
    Dpc: *mut KDPC,
) -> BOOLEAN {
    let m = current();
    dispatch_lte(&m);
    // SAFETY: every member of the LARGE_INTEGER union is plain integer bits.
    let due = unsafe { DueTime.QuadPart };
    let wait = until(due);
    let now = Instant::now();
    let at = now
        .checked_add(wait)
        .unwrap_or(now + Duration::from_secs(1 << 40));
    let period = (Period > 0).then(|| Duration::from_millis(Period as u64));
    let timers = &m.ke.timers;
    let mut g = lock(&timers.st);
    let was = g
        .set
        .insert(
            Timer as usize,
            Rec {
                due: at,
                period,
                dpc: Dpc as usize,
                driver: thread::driver(),
            },
        )
        .is_some();
    signal_state(Timer.cast()).store(0, Ordering::SeqCst);
    let due_at = super::cpu::interrupt_time()
        .saturating_add((wait.as_nanos() / 100).min(u64::MAX as u128) as u64);
    // The fields are written through their own pointers (the header's SignalState may be
    // accessed atomically by other threads meanwhile, so no reference to the whole KTIMER).
    let p_due = Timer
        .wrapping_byte_add(core::mem::offset_of!(KTIMER, DueTime))
        .cast::<u64>();
    let p_dpc = Timer
        .wrapping_byte_add(core::mem::offset_of!(KTIMER, Dpc))
        .cast::<*mut KDPC>();
    let p_period = Timer
        .wrapping_byte_add(core::mem::offset_of!(KTIMER, Period))
        .cast::<u32>();
    // SAFETY: the driver's initialized KTIMER: its DueTime field, the timer's own bookkeeping.
    unsafe { p_due.write_unaligned(due_at) };
    // SAFETY: as above, its Dpc field.
    unsafe { p_dpc.write_unaligned(Dpc) };
    // SAFETY: as above, its Period field.
    unsafe { p_period.write_unaligned(Period.max(0) as u32) };
    inserted(Timer, true);
    let start = !g.thread;
    g.thread = true;
    drop(g);
    timers.cv.notify_all();
    if start {
        spawn_timer_thread(thread::current_arc());
    }
    was as BOOLEAN
}

/// `KeCancelTimer`: TRUE if the timer was set (it will not expire); its signal state is left
/// as it is.
///
/// # Safety
/// `Timer` must be an initialized KTIMER.
pub unsafe extern "win64" fn KeCancelTimer(Timer: *mut KTIMER) -> BOOLEAN {
    let m = current();
    dispatch_lte(&m);
    let was = lock(&m.ke.timers.st)
        .set
        .remove(&(Timer as usize))
        .is_some();
    inserted(Timer, false);
    was as BOOLEAN
}

/// `KeReadStateTimer`: TRUE if the timer is signaled.
///
/// # Safety
/// `Timer` must be an initialized KTIMER.
pub unsafe extern "win64" fn KeReadStateTimer(Timer: *mut KTIMER) -> BOOLEAN {
    let m = current();
    dispatch_lte(&m);
    (signal_state(Timer.cast()).load(Ordering::SeqCst) != 0) as BOOLEAN
}

fn spawn_timer_thread(sys: Arc<System>) {
    let r = std::thread::Builder::new()
        .name("ntsim-timer".into())
        .spawn(move || timer_thread(sys));
    if let Err(e) = r {
        eprintln!("ntsim: cannot spawn the timer thread: {e}");
    }
}

fn timer_thread(sys: Arc<System>) {
    let timers = &sys.ke.timers;
    let mut idle_since = Instant::now();
    let mut g = lock(&timers.st);
    loop {
        if sys.ke.is_bugged() || timers.shutdown.load(Ordering::SeqCst) {
            g.thread = false;
            return;
        }
        let now = Instant::now();
        let expired: Vec<(usize, Rec)> = g
            .set
            .iter()
            .filter(|(_, r)| r.due <= now)
            .map(|(&t, &r)| (t, r))
            .collect();
        if !expired.is_empty() {
            for (t, r) in &expired {
                match r.period {
                    Some(p) => {
                        let next = (r.due + p).max(now);
                        if let Some(e) = g.set.get_mut(t) {
                            e.due = next;
                        }
                    }
                    None => {
                        g.set.remove(t);
                        inserted(*t as *mut KTIMER, false);
                    }
                }
                signal_state(*t as PVOID).store(1, Ordering::SeqCst);
            }
            drop(g);
            wake(&sys);
            let st = super::system_time();
            for (_, r) in expired {
                if r.dpc != 0 {
                    super::dpc::insert(
                        &sys,
                        r.dpc as *mut KDPC,
                        (st as u32 as usize) as PVOID,
                        ((st >> 32) as u32 as usize) as PVOID,
                        r.driver,
                    );
                }
            }
            idle_since = Instant::now();
            g = lock(&timers.st);
            continue;
        }
        if g.set.is_empty() && now.duration_since(idle_since) >= TIMER_THREAD_IDLE {
            g.thread = false;
            return;
        }
        if !g.set.is_empty() {
            idle_since = now;
        }
        let next = g
            .set
            .values()
            .map(|r| r.due)
            .min()
            .map_or(TIMER_THREAD_IDLE, |d| d.saturating_duration_since(now))
            .min(Duration::from_millis(100));
        g = timers
            .cv
            .wait_timeout(g, next)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}
