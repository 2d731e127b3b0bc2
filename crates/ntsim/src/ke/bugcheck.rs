//! The machine's bug-check state: the first bug check wins, is recorded with the address and
//! context of the thread that raised it, and stops the machine (every later entry from driver
//! code parks; host calls return `Err`).
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::thread;
use crate::machine::{System, lock};
use crate::verifier::{Bc, BugCheck};

/// Called after a bug check is recorded, to wake threads of higher layers that wait on their
/// own condition variables (worker queues, idle waiters). Registered by the composition root
/// (`machine.rs`), so this layer needs no knowledge of them.
pub(crate) type Waker = fn(&System);

pub(crate) struct BugState {
    bugged: AtomicBool,
    record: Mutex<Option<BugCheck>>,
    wake: Waker,
}

impl BugState {
    pub(crate) fn new(wake: Waker) -> Self {
        BugState {
            bugged: AtomicBool::new(false),
            record: Mutex::new(None),
            wake,
        }
    }

    pub(crate) fn is_bugged(&self) -> bool {
        self.bugged.load(Ordering::SeqCst)
    }

    pub(crate) fn get(&self) -> Option<BugCheck> {
        if self.is_bugged() {
            lock(&self.record).clone()
        } else {
            None
        }
    }
}

/// Record a bug check (the first one wins) and return the recorded one.
pub(crate) fn record(sys: &System, bc: &Bc) -> BugCheck {
    let addr = bc.address.unwrap_or_else(thread::caller);
    let address = sys.mm.describe_address(addr);
    let context = thread::context().to_string();
    let rec = crate::verifier::finish(bc, address, context);
    let state = &sys.ke.bug;
    let mut g = lock(&state.record);
    if g.is_none() {
        *g = Some(rec);
        state.bugged.store(true, Ordering::SeqCst);
    }
    let recorded = g.clone().expect("just recorded");
    drop(g);
    sys.ke.wake_waiters();
    (state.wake)(sys);
    recorded
}

/// Raise a bug check from kernel code: record it, then park this thread forever.
pub(crate) fn raise(sys: &System, bc: Bc) -> ! {
    record(sys, &bc);
    thread::park_forever()
}
