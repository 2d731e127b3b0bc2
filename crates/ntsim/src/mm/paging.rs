//! Pageable memory under Driver Verifier's *Force IRQL Checking*: paged pool and the `PAGE*`
//! sections of driver images are "trimmed from the working set" (made no-access) whenever a
//! driver raises the IRQL to DISPATCH_LEVEL or above or takes a spin lock, and "paged back in"
//! (their protection restored) by the next touch below DISPATCH_LEVEL. A touch at
//! DISPATCH_LEVEL or above is a page fault the memory manager cannot serve at that IRQL: the
//! fault handler turns it into 0xD1 (the instruction is the driver's) or 0xA (it is ntsim's,
//! servicing an export — ntoskrnl's code on Windows).
//!
//! Source: Microsoft, *Force IRQL Checking*
//! (<https://learn.microsoft.com/windows-hardware/drivers/devtest/force-irql-checking>):
//! "whenever a driver being verified requests a spin lock, calls KeSynchronizeExecution, or
//! raises the IRQL to DISPATCH_LEVEL or higher, all of the system pageable pool, code, and data
//! (which includes the driver's pageable code and data) are trimmed from the working set". As on
//! Windows a trimmed page comes back at the next access below DISPATCH_LEVEL, from any thread,
//! so what a later access at DISPATCH_LEVEL finds depends on what touched the page since the
//! last trim; ntsim trims at exactly the moments the page names.
//!
//! Pages locked by `MmProbeAndLockPages` are not trimmed until `MmUnlockPages` ([`Pageable::pin`]).
//!
//! The table is process-wide (a fault on any thread, including threads that are not ntsim's,
//! must be able to page memory back in), each range tagged with the machine that owns it: a
//! machine trims only its own ranges, and forgets them when it is dropped.
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{PAGE_SIZE, Prot, round_up};

/// What a pageable range is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageableKind {
    /// The pages of a paged-pool block (its address).
    PagedPool { block: usize },
    /// A `PAGE*` section of a loaded image.
    ImageSection,
}

#[derive(Clone, Copy, Debug)]
struct Range {
    len: usize,
    prot: libc::c_int,
    resident: bool,
    /// MmProbeAndLockPages holds on it (never trimmed while > 0).
    pins: u32,
    owner: usize,
    kind: PageableKind,
}

static TABLE: Mutex<BTreeMap<usize, Range>> = Mutex::new(BTreeMap::new());
static NEXT_OWNER: AtomicUsize = AtomicUsize::new(1);
/// Resident ranges in the table (all machines), changed under its lock: a trim with nothing
/// resident — the common case for a driver without paged memory — skips the lock.
static RESIDENT: AtomicUsize = AtomicUsize::new(0);
/// Trimmed ranges in the table (all machines): with none, a fault is not a trimmed page's and
/// the handler skips the lock (KUSER_SHARED_DATA loads and SEH tests fault often). Raised
/// before a range's protection is removed, so a fault on it always finds the count non-zero.
static TRIMMED: AtomicUsize = AtomicUsize::new(0);

fn table() -> std::sync::MutexGuard<'static, BTreeMap<usize, Range>> {
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

fn prot_bits(p: Prot) -> libc::c_int {
    match p {
        Prot::R => libc::PROT_READ,
        Prot::Rw => libc::PROT_READ | libc::PROT_WRITE,
        Prot::Rx => libc::PROT_READ | libc::PROT_EXEC,
        Prot::Rwx => libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
    }
}

fn set_prot(start: usize, len: usize, prot: libc::c_int) -> bool {
    // SAFETY: `[start, start + len)` is a registered pageable range: page-aligned, inside a
    // mapping ntsim created for driver memory (a paged-pool block's own pages or an image
    // section), holding no Rust objects. Changing its protection only changes which accesses
    // fault, and the fault handler serves those.
    unsafe { libc::mprotect(start as *mut libc::c_void, len, prot) == 0 }
}

fn containing_mut(t: &mut BTreeMap<usize, Range>, addr: usize) -> Option<(usize, &mut Range)> {
    let (&start, r) = t.range_mut(..=addr).next_back()?;
    (addr < start + r.len).then_some((start, r))
}

/// Remove a range from the table, accessible again (its memory is about to be freed or reused).
fn forget(t: &mut BTreeMap<usize, Range>, start: usize, r: Range) {
    if r.resident {
        RESIDENT.fetch_sub(1, Ordering::Relaxed);
    } else {
        set_prot(start, r.len, r.prot);
        TRIMMED.fetch_sub(1, Ordering::SeqCst);
    }
    t.remove(&start);
}

/// What a fault at an address meant for pageable memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingFault {
    /// Not a trimmed pageable page: the fault is someone else's.
    NotPageable,
    /// A trimmed page touched below DISPATCH_LEVEL: paged back in, retry the instruction.
    PagedIn,
    /// A trimmed page touched at DISPATCH_LEVEL or above.
    AtRaisedIrql(PageableKind),
}

/// Serve a fault at `addr` by a thread at `irql` (async-signal-safe as far as ntsim needs: the
/// table's lock is never held by code that can fault on pageable memory).
pub(crate) fn on_fault(addr: usize, irql: u8) -> PagingFault {
    if TRIMMED.load(Ordering::SeqCst) == 0 {
        return PagingFault::NotPageable;
    }
    let mut t = table();
    let Some((start, r)) = containing_mut(&mut t, addr) else {
        return PagingFault::NotPageable;
    };
    if r.resident {
        // Resident, so the fault is not a trimmed page's (an execute of data, a write to code).
        return PagingFault::NotPageable;
    }
    if irql >= nt_abi::DISPATCH_LEVEL {
        return PagingFault::AtRaisedIrql(r.kind);
    }
    if set_prot(start, r.len, r.prot) {
        r.resident = true;
        RESIDENT.fetch_add(1, Ordering::Relaxed);
        TRIMMED.fetch_sub(1, Ordering::SeqCst);
        PagingFault::PagedIn
    } else {
        PagingFault::NotPageable
    }
}

/// One machine's pageable memory (its memory manager's view of the process-wide table).
pub(crate) struct Pageable {
    owner: usize,
    enabled: bool,
    /// This machine's registered ranges: with none, [`Pageable::contains`] (asked at every
    /// spin-lock acquisition) skips the table's lock.
    ranges: AtomicUsize,
}

impl Default for Pageable {
    fn default() -> Self {
        Pageable::new(false)
    }
}

impl Pageable {
    /// `enabled`: Force IRQL Checking is on (nothing is registered or trimmed otherwise).
    pub(crate) fn new(enabled: bool) -> Self {
        Pageable {
            owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
            enabled,
            ranges: AtomicUsize::new(0),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Register the page-aligned range `[start, start + len)`, whose normal protection is
    /// `prot`, as pageable. No effect when disabled or when `start` is not page-aligned (the
    /// range would share a page with memory that is not pageable).
    pub(crate) fn register(&self, start: usize, len: usize, prot: Prot, kind: PageableKind) {
        if !self.enabled || !start.is_multiple_of(PAGE_SIZE) || len == 0 {
            return;
        }
        let mut t = table();
        if let Some(old) = t.get(&start).copied() {
            // Re-registered (an address reused after a free that did not unregister): forget it.
            if old.resident {
                RESIDENT.fetch_sub(1, Ordering::Relaxed);
            } else {
                TRIMMED.fetch_sub(1, Ordering::SeqCst);
            }
            if old.owner == self.owner {
                self.ranges.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.ranges.fetch_add(1, Ordering::Relaxed);
        RESIDENT.fetch_add(1, Ordering::Relaxed);
        t.insert(
            start,
            Range {
                len: round_up(len, PAGE_SIZE),
                prot: prot_bits(prot),
                resident: true,
                pins: 0,
                owner: self.owner,
                kind,
            },
        );
    }

    /// Forget the range starting at `start`, making it accessible again first (its memory is
    /// about to be freed, which reads and writes it).
    pub(crate) fn unregister(&self, start: usize) {
        let mut t = table();
        if let Some(r) = t.get(&start).copied()
            && r.owner == self.owner
        {
            forget(&mut t, start, r);
            self.ranges.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Trim every resident, unlocked range of this machine (a driver raised the IRQL to
    /// DISPATCH_LEVEL or above, or asked for a spin lock).
    pub(crate) fn trim(&self) {
        if !self.enabled || RESIDENT.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut t = table();
        for (&start, r) in t.iter_mut() {
            if r.owner == self.owner && r.resident && r.pins == 0 {
                TRIMMED.fetch_add(1, Ordering::SeqCst);
                if set_prot(start, r.len, libc::PROT_NONE) {
                    r.resident = false;
                    RESIDENT.fetch_sub(1, Ordering::Relaxed);
                } else {
                    TRIMMED.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }

    /// Lock (`delta` +1) or unlock (−1) the pageable ranges overlapping `[va, va + len)`: locked
    /// pages are made resident and are not trimmed (MmProbeAndLockPages / MmUnlockPages).
    /// Returns whether any range was affected.
    pub(crate) fn pin(&self, va: usize, len: usize, delta: i32) -> bool {
        if !self.enabled {
            return false;
        }
        let end = va.saturating_add(len.max(1));
        let mut t = table();
        let first = t
            .range(..=va)
            .next_back()
            .filter(|(s, r)| va < **s + r.len)
            .map(|(s, _)| *s)
            .unwrap_or(va);
        let mut any = false;
        for (&start, r) in t.range_mut(first..end) {
            if r.owner != self.owner {
                continue;
            }
            any = true;
            if delta > 0 {
                r.pins += 1;
                if !r.resident && set_prot(start, r.len, r.prot) {
                    r.resident = true;
                    RESIDENT.fetch_add(1, Ordering::Relaxed);
                    TRIMMED.fetch_sub(1, Ordering::SeqCst);
                }
            } else {
                r.pins = r.pins.saturating_sub(1);
            }
        }
        any
    }

    /// Whether `addr` lies in a registered pageable range of this machine.
    pub(crate) fn contains(&self, addr: usize) -> Option<PageableKind> {
        if self.ranges.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut t = table();
        containing_mut(&mut t, addr)
            .filter(|(_, r)| r.owner == self.owner)
            .map(|(_, r)| r.kind)
    }
}

impl Drop for Pageable {
    fn drop(&mut self) {
        let mut t = table();
        let mine: Vec<(usize, Range)> = t
            .iter()
            .filter(|(_, r)| r.owner == self.owner)
            .map(|(s, r)| (*s, *r))
            .collect();
        for (start, r) in mine {
            forget(&mut t, start, r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_then_page_in_below_dispatch_and_refuse_at_dispatch() {
        let p = Pageable::new(true);
        let a = super::super::map_rw(2 * PAGE_SIZE, None).expect("map");
        p.register(
            a,
            2 * PAGE_SIZE,
            Prot::Rw,
            PageableKind::PagedPool { block: a },
        );
        p.trim();
        assert_eq!(
            on_fault(a + 8, nt_abi::DISPATCH_LEVEL),
            PagingFault::AtRaisedIrql(PageableKind::PagedPool { block: a })
        );
        assert_eq!(on_fault(a + 8, 0), PagingFault::PagedIn);
        // SAFETY: the range was paged back in (read-write) just above; we own the mapping.
        unsafe { (a as *mut u8).write_volatile(7) };
        assert_eq!(on_fault(a + 8, 0), PagingFault::NotPageable, "resident now");
        // Locked pages are not trimmed.
        assert!(p.pin(a + 100, 4, 1));
        p.trim();
        // SAFETY: pinned, so still read-write.
        assert_eq!(unsafe { (a as *const u8).read_volatile() }, 7);
        assert!(p.pin(a + 100, 4, -1));
        p.trim();
        assert!(matches!(
            on_fault(a, nt_abi::DISPATCH_LEVEL),
            PagingFault::AtRaisedIrql(_)
        ));
        p.unregister(a);
        assert_eq!(on_fault(a, 0), PagingFault::NotPageable);
        // SAFETY: unregister restored read-write.
        assert_eq!(unsafe { (a as *const u8).read_volatile() }, 7);
    }

    #[test]
    fn disabled_registers_nothing_and_other_machines_ranges_are_not_trimmed() {
        let off = Pageable::new(false);
        let a = super::super::map_rw(PAGE_SIZE, None).expect("map");
        off.register(a, PAGE_SIZE, Prot::Rw, PageableKind::ImageSection);
        assert_eq!(off.contains(a), None);
        let mine = Pageable::new(true);
        let other = Pageable::new(true);
        mine.register(a, PAGE_SIZE, Prot::Rw, PageableKind::ImageSection);
        other.trim();
        // SAFETY: only `other` trimmed, and the range is `mine`'s: still read-write.
        unsafe { (a as *mut u8).write_volatile(1) };
        drop(mine);
        assert_eq!(
            on_fault(a, 0),
            PagingFault::NotPageable,
            "forgotten at drop"
        );
    }
}
