//! Driver Verifier's *Deadlock Detection*: the order in which each thread takes spin locks
//! (ordinary and in-stack queued), KMUTEXes, fast mutexes and guarded mutexes, kept as a graph
//! with an edge `held → taken` for every lock a thread takes while holding another. A cycle is
//! a lock-hierarchy violation: a deadlock waiting to happen, reported the first time the
//! second order is seen, before any thread blocks.
//!
//! Source: Microsoft, *Deadlock Detection*
//! (<https://learn.microsoft.com/windows-hardware/drivers/devtest/deadlock-detection>): the
//! option "builds a graph of resource acquisition order and checks for loops", watches spin
//! locks, mutexes and fast mutexes (not ERESOURCEs), and also reports a resource acquired twice
//! by one thread (a self-deadlock), released by another thread than the one that acquired it,
//! and one KSPIN_LOCK used both as an ordinary and as an in-stack queued spin lock. Codes:
//! Microsoft, *Bug Check 0xC4* p1 0x1001 (p2 the lock that closed the cycle), 0x1004 (p2 the
//! lock, p3 the thread that acquired it, p4 the current thread), 0x1008 / 0x1009 (p2 the lock:
//! acquired / released through an API that does not match its type).
//!
//! What ntsim leaves out: 0x1003 (a release out of acquisition order — legal for these locks
//! as long as the IRQLs are restored in order, which the IRQL rules check), 0x1005 (multiple
//! initialization: the spin-lock and fast-mutex initializers are inline in wdm.h), 0x100A (a
//! thread ending with a lock — 0x20 or the IRQL rules report it first). Locks on the current
//! thread's stack are not put in the graph: a stack address names a different lock in every
//! call, and ntsim cannot tell when the frame is gone; pool blocks' locks are forgotten when the
//! block is freed.
//!
//! This module is the verifier's data only; `ke` and `ex` call [`Hooks::on_lock_acquire`],
//! [`Hooks::on_lock_held`] and [`Hooks::on_lock_release`] at their acquisitions and releases.
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use nt_abi::bugcheck::verifier_locks as vl;

use super::{Bc, Hooks};

/// The kind of lock, as the API used on it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// KeAcquireSpinLock… / KeReleaseSpinLock… (and the ExInterlocked routines' lock).
    SpinLock,
    /// KeAcquireInStackQueuedSpinLock… on the same KSPIN_LOCK.
    QueuedSpinLock,
    /// A KMUTEX (recursive for its owner).
    Mutex,
    /// A FAST_MUTEX or KGUARDED_MUTEX (not recursive).
    FastMutex,
}

impl LockKind {
    fn is_spin(self) -> bool {
        matches!(self, LockKind::SpinLock | LockKind::QueuedSpinLock)
    }
}

#[derive(Debug, Default)]
struct Graph {
    /// lock → locks taken while it was held.
    after: HashMap<usize, HashSet<usize>>,
    /// The kind each spin lock was first taken as.
    kinds: HashMap<usize, LockKind>,
    /// thread → the locks it holds, in acquisition order (a KMUTEX once, however deep).
    held: HashMap<usize, Vec<usize>>,
    /// lock → the thread holding it.
    owner: HashMap<usize, usize>,
}

impl Graph {
    /// Whether `to` can be reached from `from` along acquisition-order edges.
    fn reaches(&self, from: usize, to: usize) -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![from];
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if seen.insert(n)
                && let Some(next) = self.after.get(&n)
            {
                stack.extend(next.iter().copied());
            }
        }
        false
    }
}

/// The deadlock verifier's state (one per machine).
#[derive(Debug, Default)]
pub(crate) struct LockGraph {
    g: Mutex<Graph>,
}

fn lock(m: &Mutex<Graph>) -> std::sync::MutexGuard<'_, Graph> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hooks {
    fn deadlock_bc(&self, p: [u64; 4]) -> Option<Bc> {
        self.f
            .deadlock_detection
            .then(|| Bc::verifier(nt_abi::bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, p))
    }

    /// Thread `thread` is about to take `lock` (and will block until it has it). Checks the
    /// API against the lock's type (0x1008), a non-recursive lock the thread already holds
    /// (0x1001: a self-deadlock), and the acquisition order against the graph (0x1001), then
    /// adds the order edges. `on_stack`: the lock lives on the caller's stack (not ordered).
    pub(crate) fn on_lock_acquire(
        &self,
        thread: usize,
        lock_addr: usize,
        kind: LockKind,
        on_stack: bool,
    ) -> Option<Bc> {
        if !self.f.deadlock_detection || on_stack {
            return None;
        }
        let mut g = lock(&self.deadlock.g);
        if kind.is_spin() {
            let first = *g.kinds.entry(lock_addr).or_insert(kind);
            if first != kind {
                return self.deadlock_bc([vl::MISMATCHED_ACQUIRE_API, lock_addr as u64, 0, 0]);
            }
        }
        // Moved out and back, so the graph can change while the list is read (no copy).
        let held = g.held.remove(&thread).unwrap_or_default();
        let verdict = if held.contains(&lock_addr) {
            (kind != LockKind::Mutex).then_some(lock_addr)
        } else {
            let mut cycle = None;
            for &h in &held {
                if g.after.get(&h).is_some_and(|s| s.contains(&lock_addr)) {
                    continue;
                }
                if g.reaches(lock_addr, h) {
                    cycle = Some(lock_addr);
                    break;
                }
                g.after.entry(h).or_default().insert(lock_addr);
            }
            cycle
        };
        if !held.is_empty() {
            g.held.insert(thread, held);
        }
        verdict.and_then(|l| self.deadlock_bc([vl::DEADLOCK, l as u64, 0, 0]))
    }

    /// Thread `thread` now holds `lock` (after [`Self::on_lock_acquire`], or a successful
    /// try-acquire, which cannot deadlock and adds no order edge).
    pub(crate) fn on_lock_held(&self, thread: usize, lock_addr: usize, on_stack: bool) {
        if !self.f.deadlock_detection || on_stack {
            return;
        }
        let mut g = lock(&self.deadlock.g);
        let list = g.held.entry(thread).or_default();
        if !list.contains(&lock_addr) {
            list.push(lock_addr);
        }
        g.owner.insert(lock_addr, thread);
    }

    /// Thread `thread` releases `lock` through an API of `kind`: 0x1009 when that does not
    /// match how the lock was taken, 0x1004 when another thread holds it. A lock nobody holds is
    /// the caller's 0x1007 ([`Self::on_release_unacquired`]).
    pub(crate) fn on_lock_release(
        &self,
        thread: usize,
        lock_addr: usize,
        kind: LockKind,
    ) -> Option<Bc> {
        if !self.f.deadlock_detection {
            return None;
        }
        let mut g = lock(&self.deadlock.g);
        if kind.is_spin()
            && let Some(&k) = g.kinds.get(&lock_addr)
            && k != kind
            && g.owner.contains_key(&lock_addr)
        {
            return self.deadlock_bc([vl::MISMATCHED_RELEASE_API, lock_addr as u64, 0, 0]);
        }
        match g.owner.get(&lock_addr).copied() {
            Some(o) if o != thread => self.deadlock_bc([
                vl::RELEASED_BY_WRONG_THREAD,
                lock_addr as u64,
                o as u64,
                thread as u64,
            ]),
            Some(_) => {
                g.owner.remove(&lock_addr);
                if let Some(list) = g.held.get_mut(&thread) {
                    list.retain(|&l| l != lock_addr);
                }
                None
            }
            None => None,
        }
    }

    /// Memory `[lo, hi)` was freed: the locks in it are gone (their order edges with them).
    pub(crate) fn on_lock_memory_freed(&self, lo: usize, hi: usize) {
        if !self.f.deadlock_detection {
            return;
        }
        let mut g = lock(&self.deadlock.g);
        let inside = |a: usize| a >= lo && a < hi;
        g.after.retain(|&k, _| !inside(k));
        for s in g.after.values_mut() {
            s.retain(|&a| !inside(a));
        }
        g.kinds.retain(|&k, _| !inside(k));
        g.owner.retain(|&k, _| !inside(k));
        for list in g.held.values_mut() {
            list.retain(|&a| !inside(a));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::VerifierFlags;

    fn p1(b: Option<Bc>) -> Option<u64> {
        b.map(|b| b.p[0])
    }

    #[test]
    fn an_order_inversion_across_threads_is_0x1001_and_a_consistent_order_is_not() {
        let h = Hooks::new(VerifierFlags::ALL);
        let (a, b, c) = (0x1000, 0x2000, 0x3000);
        // Thread 1: A then B, then B then C (A → B → C).
        assert!(h.on_lock_acquire(1, a, LockKind::SpinLock, false).is_none());
        h.on_lock_held(1, a, false);
        assert!(h.on_lock_acquire(1, b, LockKind::SpinLock, false).is_none());
        h.on_lock_held(1, b, false);
        assert!(h.on_lock_release(1, b, LockKind::SpinLock).is_none());
        assert!(h.on_lock_release(1, a, LockKind::SpinLock).is_none());
        h.on_lock_held(1, b, false);
        assert!(
            h.on_lock_acquire(1, c, LockKind::FastMutex, false)
                .is_none()
        );
        h.on_lock_held(1, c, false);
        h.on_lock_release(1, c, LockKind::FastMutex);
        h.on_lock_release(1, b, LockKind::SpinLock);
        // Thread 2 repeats A then B: fine. Then C then A closes A → B → C → A.
        h.on_lock_acquire(2, a, LockKind::SpinLock, false);
        h.on_lock_held(2, a, false);
        assert!(h.on_lock_acquire(2, b, LockKind::SpinLock, false).is_none());
        h.on_lock_release(2, a, LockKind::SpinLock);
        h.on_lock_acquire(2, c, LockKind::FastMutex, false);
        h.on_lock_held(2, c, false);
        let bc = h
            .on_lock_acquire(2, a, LockKind::SpinLock, false)
            .expect("cycle");
        assert_eq!(bc.p, [vl::DEADLOCK, a as u64, 0, 0]);
        // Off: nothing.
        let off = Hooks::new(VerifierFlags {
            deadlock_detection: false,
            ..VerifierFlags::ALL
        });
        off.on_lock_held(1, b, false);
        assert!(
            off.on_lock_acquire(1, a, LockKind::SpinLock, false)
                .is_none()
        );
    }

    #[test]
    fn self_deadlock_wrong_thread_and_mismatched_apis() {
        let h = Hooks::new(VerifierFlags::ALL);
        let (s, m, q) = (0x10, 0x20, 0x30);
        h.on_lock_acquire(1, s, LockKind::SpinLock, false);
        h.on_lock_held(1, s, false);
        assert_eq!(
            p1(h.on_lock_acquire(1, s, LockKind::SpinLock, false)),
            Some(vl::DEADLOCK)
        );
        // A KMUTEX is recursive for its owner.
        h.on_lock_acquire(1, m, LockKind::Mutex, false);
        h.on_lock_held(1, m, false);
        assert!(h.on_lock_acquire(1, m, LockKind::Mutex, false).is_none());
        let bc = h
            .on_lock_release(2, s, LockKind::SpinLock)
            .expect("wrong thread");
        assert_eq!(bc.p, [vl::RELEASED_BY_WRONG_THREAD, s as u64, 1, 2]);
        // A lock taken queued, then the ordinary way; and released with the wrong API.
        h.on_lock_acquire(3, q, LockKind::QueuedSpinLock, false);
        h.on_lock_held(3, q, false);
        assert_eq!(
            p1(h.on_lock_release(3, q, LockKind::SpinLock)),
            Some(vl::MISMATCHED_RELEASE_API)
        );
        assert_eq!(
            p1(h.on_lock_acquire(4, q, LockKind::SpinLock, false)),
            Some(vl::MISMATCHED_ACQUIRE_API)
        );
        // Locks on a stack and freed memory are forgotten.
        assert!(h.on_lock_acquire(1, s, LockKind::SpinLock, true).is_none());
        h.on_lock_memory_freed(0x30, 0x31);
        assert!(h.on_lock_acquire(4, q, LockKind::SpinLock, false).is_none());
    }
}
