//! Executive resources (`ERESOURCE`): reader/writer locks owned by threads, recursive for their
//! owner.
//!
//! ntsim keeps each resource's owners and waiters in a per-machine table keyed by the
//! ERESOURCE's address ([`Resources`]) and mirrors the state a debugger reads into the
//! driver's ERESOURCE (`ActiveCount`, `Flag` bit `ResourceOwnedExclusive` 0x80, `OwnerEntry`,
//! `NumberOfSharedWaiters`, `NumberOfExclusiveWaiters`, `ContentionCount`); `OwnerTable`,
//! `SharedWaiters` and `ExclusiveWaiters` stay NULL (waiters block on the table's condition
//! variable). An owner is an `ERESOURCE_THREAD`: the ETHREAD address, which is what
//! `ExGetCurrentResourceThread()` (a wdm.h macro over `PsGetCurrentThread`) yields.
//!
//! Granting follows Microsoft's pages for each routine (*ExAcquireResourceExclusiveLite*,
//! *ExAcquireResourceSharedLite*, *ExAcquireSharedStarveExclusive*,
//! *ExAcquireSharedWaitForExclusive*, *ExReleaseResourceLite*,
//! *ExConvertExclusiveToSharedLite*):
//! - exclusive: granted when unowned, or recursively to its exclusive owner; otherwise wait
//!   (or FALSE with `Wait` FALSE). A thread that owns it shared and asks for exclusive would
//!   wait for itself: 0xC4/0x1000 with the verifier (deadlock_detection), a deadlock without it;
//! - shared (`…SharedLite`): unowned → granted; its exclusive owner → granted recursively;
//!   owned shared → granted to a thread that already shares it, and to a new one only when no
//!   thread waits for exclusive access;
//! - `…StarveExclusive`: as shared, but granted even when exclusive waiters exist;
//! - `…WaitForExclusive`: as shared, but with exclusive waiters even a thread that already
//!   shares it waits (the documented self-deadlock risk);
//! - normal kernel APCs must be disabled (KeEnterCriticalRegion) unless at APC_LEVEL:
//!   0xC4/0x37 on acquire, 0x38 on release (irql_checking); a wait above APC_LEVEL is 0xA;
//! - releasing a resource the thread does not own: 0xE3 RESOURCE_NOT_OWNED (always);
//! - ExInitializeResourceLite on a live resource 0xC4/0xD0, ExDeleteResourceLite of one never
//!   initialized 0xC4/0xD1, of one still owned 0xC4/0x100B, pool freed with an initialized
//!   resource in it 0xC4/0xD2 (misc_checks).
//!
//! Not modelled: `ExSetResourceOwnerPointer` owner pointers, priority boosts, the resource
//! timeout messages.
#![allow(non_snake_case)]

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use nt_abi::bugcheck as codes;
use nt_abi::*;

use crate::ke::bugcheck::raise;
use crate::ke::spinlock::field;
use crate::ke::thread::{self, Cur, current, park_forever};
use crate::machine::lock;
use crate::verifier::Bc;

/// One resource's owners and waiters.
#[derive(Default)]
struct Res {
    /// The exclusive owner and its recursion count.
    excl: Option<(usize, u32)>,
    /// Shared owners and their recursion counts.
    shared: Vec<(usize, u32)>,
    shared_waiters: u32,
    excl_waiters: u32,
    contention: u32,
}

/// Every initialized ERESOURCE of one machine.
#[derive(Default)]
pub(crate) struct Resources {
    table: Mutex<HashMap<usize, Res>>,
    cv: Condvar,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exclusive,
    Shared,
    StarveExclusive,
    WaitForExclusive,
}

enum Grant {
    Now,
    Wait,
    SelfDeadlock,
}

impl Res {
    fn shared_count(&self, t: usize) -> Option<u32> {
        self.shared.iter().find(|e| e.0 == t).map(|e| e.1)
    }

    fn grant(&self, kind: Kind, me: usize) -> Grant {
        match (self.excl, kind) {
            (Some((o, _)), _) if o == me => Grant::Now,
            (Some(_), _) => Grant::Wait,
            (None, Kind::Exclusive) if self.shared.is_empty() => Grant::Now,
            (None, Kind::Exclusive) if self.shared_count(me).is_some() => Grant::SelfDeadlock,
            (None, Kind::Exclusive) => Grant::Wait,
            (None, Kind::StarveExclusive) => Grant::Now,
            (None, Kind::Shared) if self.shared_count(me).is_some() => Grant::Now,
            (None, _) if self.excl_waiters > 0 && !self.shared.is_empty() => Grant::Wait,
            (None, _) => Grant::Now,
        }
    }

    fn take(&mut self, kind: Kind, me: usize) {
        if let Some((o, n)) = &mut self.excl
            && *o == me
        {
            *n += 1;
            return;
        }
        if kind == Kind::Exclusive {
            self.excl = Some((me, 1));
            return;
        }
        match self.shared.iter_mut().find(|e| e.0 == me) {
            Some(e) => e.1 += 1,
            None => self.shared.push((me, 1)),
        }
    }

    /// Release one hold of `t`; false when `t` holds nothing.
    fn release(&mut self, t: usize) -> bool {
        if let Some((o, n)) = &mut self.excl
            && *o == t
        {
            *n -= 1;
            if *n == 0 {
                self.excl = None;
            }
            return true;
        }
        if let Some(i) = self.shared.iter().position(|e| e.0 == t) {
            self.shared[i].1 -= 1;
            if self.shared[i].1 == 0 {
                self.shared.remove(i);
            }
            return true;
        }
        false
    }

    fn owner(&self) -> Option<usize> {
        self.excl.map(|e| e.0).or(self.shared.first().map(|e| e.0))
    }
}

/// Write the state a debugger (or a driver) reads into the ERESOURCE itself.
fn mirror(r: *mut ERESOURCE, res: &Res) {
    let (active, flag, entry) = match (res.excl, res.shared.first()) {
        (Some((t, n)), _) => (1i16, RESOURCE_OWNED_EXCLUSIVE, (t, n)),
        (None, Some(&(t, n))) => (res.shared.len() as i16, 0, (t, n)),
        (None, None) => (0, 0, (0, 0)),
    };
    let f = field!(r, ERESOURCE, Flag, u16);
    // SAFETY: `r` is the caller's initialized ERESOURCE (nonpaged, naturally aligned, as the
    // documentation requires); these are plain integer fields that only ntsim writes, under the
    // table lock (the same holds for the writes below).
    let old_flag = unsafe { f.read() };
    // SAFETY: as above.
    unsafe { f.write((old_flag & !RESOURCE_OWNED_EXCLUSIVE) | flag) };
    // SAFETY: as above.
    unsafe { field!(r, ERESOURCE, ActiveCount, i16).write(active) };
    let owner = OWNER_ENTRY {
        OwnerThread: entry.0,
        OwnerCount: entry.1 << 2,
    };
    // SAFETY: as above.
    unsafe { field!(r, ERESOURCE, OwnerEntry, OWNER_ENTRY).write(owner) };
    let entries = res.shared.len() as u32 + res.excl.is_some() as u32;
    // SAFETY: as above.
    unsafe { field!(r, ERESOURCE, ActiveEntries, u32).write(entries) };
    // SAFETY: as above.
    unsafe { field!(r, ERESOURCE, ContentionCount, u32).write(res.contention) };
    // SAFETY: as above.
    unsafe { field!(r, ERESOURCE, NumberOfSharedWaiters, u32).write(res.shared_waiters) };
    // SAFETY: as above.
    unsafe { field!(r, ERESOURCE, NumberOfExclusiveWaiters, u32).write(res.excl_waiters) };
}

fn me() -> usize {
    crate::ke::cpu::current_thread() as usize
}

fn acquire(m: &Cur, r: *mut ERESOURCE, kind: Kind, wait: bool) -> BOOLEAN {
    let irql = thread::irql();
    if let Some(bc) = m
        .verifier
        .on_resource_apcs(false, irql, thread::apc_disable(), r as usize)
    {
        raise(m, bc);
    }
    let t = me();
    let rs = &m.ex.resources;
    let mut g = lock(&rs.table);
    let mut waiting = false;
    loop {
        let Some(res) = g.get_mut(&(r as usize)) else {
            drop(g);
            // Acquiring a resource never initialized: verifier 0xD1 names it (stricter: Windows
            // reports 0x1002 only with deadlock detection); without the verifier treat it as a
            // fresh resource, as Windows' zeroed ERESOURCE would behave.
            if let Some(bc) = m.verifier.on_resource_uninitialized(r as usize) {
                raise(m, bc.documented_only());
            }
            g = lock(&rs.table);
            g.entry(r as usize).or_default();
            continue;
        };
        match res.grant(kind, t) {
            Grant::Now => {
                if waiting {
                    if kind == Kind::Exclusive {
                        res.excl_waiters -= 1;
                    } else {
                        res.shared_waiters -= 1;
                    }
                }
                res.take(kind, t);
                mirror(r, res);
                return 1;
            }
            Grant::SelfDeadlock if !wait => return 0,
            Grant::SelfDeadlock => {
                if let Some(bc) = m.verifier.on_resource_self_deadlock(r as usize) {
                    drop(g);
                    raise(m, bc);
                }
            }
            Grant::Wait if !wait => return 0,
            Grant::Wait => {}
        }
        if !waiting {
            if irql > APC_LEVEL {
                drop(g);
                raise(
                    m,
                    Bc::new(codes::IRQL_NOT_LESS_OR_EQUAL, [r as u64, irql as u64, 0, 0]),
                );
            }
            waiting = true;
            res.contention += 1;
            if kind == Kind::Exclusive {
                res.excl_waiters += 1;
            } else {
                res.shared_waiters += 1;
            }
            mirror(r, res);
        }
        if m.ke.is_bugged() {
            drop(g);
            park_forever();
        }
        g = rs
            .cv
            .wait_timeout(g, Duration::from_millis(50))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn release(m: &Cur, r: *mut ERESOURCE, t: usize) {
    if let Some(bc) =
        m.verifier
            .on_resource_apcs(true, thread::irql(), thread::apc_disable(), r as usize)
    {
        raise(m, bc);
    }
    let rs = &m.ex.resources;
    let mut g = lock(&rs.table);
    let released = match g.get_mut(&(r as usize)) {
        Some(res) => {
            let ok = res.release(t);
            if ok {
                mirror(r, res);
            }
            ok
        }
        None => false,
    };
    drop(g);
    if !released {
        raise(m, m.verifier.on_resource_not_owned(r as usize, t));
    }
    rs.cv.notify_all();
}

/// Pool `[block, block + size)` is being freed: an ERESOURCE still initialized inside it is
/// 0xC4/0xD2 with the verifier (misc_checks); without it the resource is forgotten.
pub(crate) fn on_pool_free(sys: &crate::machine::System, block: usize, size: usize) {
    let mut g = lock(&sys.ex.resources.table);
    let inside: Vec<usize> = g
        .keys()
        .copied()
        .filter(|&r| r >= block && r < block + size)
        .collect();
    if let Some(&r) = inside.first()
        && let Some(bc) = sys.verifier.on_resource_in_freed_pool(r, block, size)
    {
        drop(g);
        raise(sys, bc);
    }
    for r in inside {
        g.remove(&r);
    }
}

/// `ExInitializeResourceLite`: an unowned resource. Already initialized (and not deleted):
/// 0xC4/0xD0 with the verifier; without it, reset.
///
/// # Safety
/// `Resource` must point to writable, 8-byte-aligned storage for an ERESOURCE.
pub unsafe extern "win64" fn ExInitializeResourceLite(Resource: *mut ERESOURCE) -> NTSTATUS {
    let m = current();
    crate::ke::check_sync_object(&m, Resource as usize);
    let mut g = lock(&m.ex.resources.table);
    if g.contains_key(&(Resource as usize))
        && let Some(bc) = m.verifier.on_resource_reinitialized(Resource as usize)
    {
        drop(g);
        raise(&m, bc);
    }
    // SAFETY: the caller's writable ERESOURCE storage; all-zero is a valid ERESOURCE.
    unsafe { Resource.write_bytes(0, 1) };
    let res = Res::default();
    mirror(Resource, &res);
    g.insert(Resource as usize, res);
    STATUS_SUCCESS
}

/// `ExReinitializeResourceLite`: back to unowned (owners and counts dropped). Never
/// initialized: 0xC4/0xD1 (verifier).
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExReinitializeResourceLite(Resource: *mut ERESOURCE) -> NTSTATUS {
    let m = current();
    let mut g = lock(&m.ex.resources.table);
    if !g.contains_key(&(Resource as usize))
        && let Some(bc) = m.verifier.on_resource_uninitialized(Resource as usize)
    {
        drop(g);
        raise(&m, bc);
    }
    let res = Res::default();
    mirror(Resource, &res);
    g.insert(Resource as usize, res);
    drop(g);
    m.ex.resources.cv.notify_all();
    STATUS_SUCCESS
}

/// `ExDeleteResourceLite`: forget the resource. Still owned: 0xC4/0x100B (p3 an owner); never
/// initialized: 0xC4/0xD1 (verifier).
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExDeleteResourceLite(Resource: *mut ERESOURCE) -> NTSTATUS {
    let m = current();
    let mut g = lock(&m.ex.resources.table);
    let bc = match g.get(&(Resource as usize)) {
        None => m.verifier.on_resource_uninitialized(Resource as usize),
        Some(res) => res
            .owner()
            .and_then(|o| m.verifier.on_delete_owned_lock(Resource as usize, o)),
    };
    if let Some(bc) = bc {
        drop(g);
        raise(&m, bc);
    }
    g.remove(&(Resource as usize));
    STATUS_SUCCESS
}

/// `ExAcquireResourceExclusiveLite`.
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExAcquireResourceExclusiveLite(
    Resource: *mut ERESOURCE,
    Wait: BOOLEAN,
) -> BOOLEAN {
    let m = current();
    acquire(&m, Resource, Kind::Exclusive, Wait != 0)
}

/// `ExAcquireResourceSharedLite`.
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExAcquireResourceSharedLite(
    Resource: *mut ERESOURCE,
    Wait: BOOLEAN,
) -> BOOLEAN {
    let m = current();
    acquire(&m, Resource, Kind::Shared, Wait != 0)
}

/// `ExAcquireSharedStarveExclusive`.
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExAcquireSharedStarveExclusive(
    Resource: *mut ERESOURCE,
    Wait: BOOLEAN,
) -> BOOLEAN {
    let m = current();
    acquire(&m, Resource, Kind::StarveExclusive, Wait != 0)
}

/// `ExAcquireSharedWaitForExclusive`.
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExAcquireSharedWaitForExclusive(
    Resource: *mut ERESOURCE,
    Wait: BOOLEAN,
) -> BOOLEAN {
    let m = current();
    acquire(&m, Resource, Kind::WaitForExclusive, Wait != 0)
}

/// `ExReleaseResourceLite`: release one hold of the current thread.
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExReleaseResourceLite(Resource: *mut ERESOURCE) {
    let m = current();
    release(&m, Resource, me());
}

/// `ExReleaseResourceForThreadLite`: release one hold of `ResourceThreadId` (which may be
/// another thread: the documented way to release on an owner's behalf).
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExReleaseResourceForThreadLite(
    Resource: *mut ERESOURCE,
    ResourceThreadId: ERESOURCE_THREAD,
) {
    let m = current();
    release(&m, Resource, ResourceThreadId);
}

/// `ExIsResourceAcquiredExclusiveLite`: TRUE when the current thread owns it exclusively.
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExIsResourceAcquiredExclusiveLite(
    Resource: *mut ERESOURCE,
) -> BOOLEAN {
    let m = current();
    let g = lock(&m.ex.resources.table);
    let t = me();
    g.get(&(Resource as usize))
        .is_some_and(|r| r.excl.is_some_and(|e| e.0 == t)) as BOOLEAN
}

/// `ExIsResourceAcquiredSharedLite`: how many times the current thread holds it (shared or
/// exclusive; 0 when it does not).
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExIsResourceAcquiredSharedLite(Resource: *mut ERESOURCE) -> ULONG {
    let m = current();
    let g = lock(&m.ex.resources.table);
    let t = me();
    g.get(&(Resource as usize)).map_or(0, |r| match r.excl {
        Some((o, n)) if o == t => n,
        _ => r.shared_count(t).unwrap_or(0),
    })
}

/// `ExGetExclusiveWaiterCount`.
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExGetExclusiveWaiterCount(Resource: *mut ERESOURCE) -> ULONG {
    let m = current();
    let g = lock(&m.ex.resources.table);
    g.get(&(Resource as usize)).map_or(0, |r| r.excl_waiters)
}

/// `ExGetSharedWaiterCount`.
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExGetSharedWaiterCount(Resource: *mut ERESOURCE) -> ULONG {
    let m = current();
    let g = lock(&m.ex.resources.table);
    g.get(&(Resource as usize)).map_or(0, |r| r.shared_waiters)
}

/// `ExConvertExclusiveToSharedLite`: the exclusive owner keeps its holds as shared ones, and
/// waiting sharers may proceed. Not owned exclusive by the caller: 0xE3.
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExConvertExclusiveToSharedLite(Resource: *mut ERESOURCE) {
    let m = current();
    let t = me();
    let mut g = lock(&m.ex.resources.table);
    let ok = match g.get_mut(&(Resource as usize)) {
        Some(r) if r.excl.is_some_and(|e| e.0 == t) => {
            let (_, n) = r.excl.take().expect("checked");
            r.shared.push((t, n));
            mirror(Resource, r);
            true
        }
        _ => false,
    };
    drop(g);
    if !ok {
        raise(&m, m.verifier.on_resource_not_owned(Resource as usize, t));
    }
    m.ex.resources.cv.notify_all();
}

/// `ExEnterCriticalRegionAndAcquireResourceExclusive`: KeEnterCriticalRegion, then acquire
/// exclusive (waiting). Returns the thread's Win32Thread, which is NULL for a kernel-mode
/// driver's threads (ReactOS ex/resource.c returns `KeGetCurrentThread()->Win32Thread`).
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExEnterCriticalRegionAndAcquireResourceExclusive(
    Resource: *mut ERESOURCE,
) -> PVOID {
    // SAFETY: no preconditions.
    unsafe { crate::ke::apc::KeEnterCriticalRegion() };
    let m = current();
    acquire(&m, Resource, Kind::Exclusive, true);
    core::ptr::null_mut()
}

/// `ExEnterCriticalRegionAndAcquireResourceShared` (as the exclusive form, shared).
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExEnterCriticalRegionAndAcquireResourceShared(
    Resource: *mut ERESOURCE,
) -> PVOID {
    // SAFETY: no preconditions.
    unsafe { crate::ke::apc::KeEnterCriticalRegion() };
    let m = current();
    acquire(&m, Resource, Kind::Shared, true);
    core::ptr::null_mut()
}

/// `ExEnterCriticalRegionAndAcquireSharedWaitForExclusive`.
///
/// # Safety
/// `Resource` must be an initialized ERESOURCE.
pub unsafe extern "win64" fn ExEnterCriticalRegionAndAcquireSharedWaitForExclusive(
    Resource: *mut ERESOURCE,
) -> PVOID {
    // SAFETY: no preconditions.
    unsafe { crate::ke::apc::KeEnterCriticalRegion() };
    let m = current();
    acquire(&m, Resource, Kind::WaitForExclusive, true);
    core::ptr::null_mut()
}

/// `ExReleaseResourceAndLeaveCriticalRegion`: ExReleaseResourceLite, then
/// KeLeaveCriticalRegion.
///
/// # Safety
/// `Resource` must be held by the caller.
pub unsafe extern "win64" fn ExReleaseResourceAndLeaveCriticalRegion(Resource: *mut ERESOURCE) {
    let m = current();
    release(&m, Resource, me());
    // SAFETY: no preconditions.
    unsafe { crate::ke::apc::KeLeaveCriticalRegion() };
}
