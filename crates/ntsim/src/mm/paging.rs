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
//! Residency is per page: a trim removes every page of a range, a touch brings back only the
//! page it hit. Pages locked by `MmProbeAndLockPages` are not trimmed until `MmUnlockPages`
//! ([`Pageable::pin`]).
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

/// Pages per table entry: a registration larger than this is split into entries of this many
/// pages (each with its own bitmask).
const CHUNK_PAGES: usize = 128;

/// One entry of the table: up to [`CHUNK_PAGES`] pages of one registration, each trimmed or
/// resident on its own, as pages are on Windows.
#[derive(Clone, Copy, Debug)]
struct Range {
    /// Where the registration this entry belongs to starts (its key for `unregister`).
    base: usize,
    len: usize,
    prot: libc::c_int,
    /// Bit i set: page i is trimmed (no-access).
    trimmed: u128,
    /// MmProbeAndLockPages holds on it (never trimmed while > 0).
    pins: u32,
    owner: usize,
    kind: PageableKind,
}

impl Range {
    fn pages(&self) -> u32 {
        (self.len / PAGE_SIZE) as u32
    }

    fn all(&self) -> u128 {
        match self.pages() {
            128 => u128::MAX,
            n => (1u128 << n) - 1,
        }
    }

    fn resident_pages(&self) -> usize {
        (self.pages() - self.trimmed.count_ones()) as usize
    }

    /// Make every page accessible again (a lock, or the range leaving the table).
    fn restore(&mut self, start: usize) {
        if self.trimmed != 0 && set_prot(start, self.len, self.prot) {
            let n = self.trimmed.count_ones() as usize;
            self.trimmed = 0;
            RESIDENT.fetch_add(n, Ordering::Relaxed);
            TRIMMED.fetch_sub(n, Ordering::SeqCst);
        }
    }
}

static TABLE: Mutex<BTreeMap<usize, Range>> = Mutex::new(BTreeMap::new());
static NEXT_OWNER: AtomicUsize = AtomicUsize::new(1);
/// Resident pages in the table (all machines), changed under its lock: a trim with nothing
/// resident — the common case for a driver without paged memory — skips the lock.
static RESIDENT: AtomicUsize = AtomicUsize::new(0);
/// Trimmed pages in the table (all machines): with none, a fault is not a trimmed page's and
/// the handler skips the lock (KUSER_SHARED_DATA loads and SEH tests fault often). Raised
/// before a page's protection is removed, so a fault on it always finds the count non-zero.
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
    // SAFETY: `[start, start + len)` is (part of) a registered pageable range: page-aligned,
    // inside a mapping ntsim created for driver memory (a paged-pool block's own pages or an
    // image section), holding no Rust objects. Changing its protection only changes which
    // accesses fault, and the fault handler serves those.
    unsafe { libc::mprotect(start as *mut libc::c_void, len, prot) == 0 }
}

fn containing_mut(t: &mut BTreeMap<usize, Range>, addr: usize) -> Option<(usize, &mut Range)> {
    let (&start, r) = t.range_mut(..=addr).next_back()?;
    (addr < start + r.len).then_some((start, r))
}

/// Remove an entry from the table, accessible again (its memory is about to be freed or reused).
fn forget(t: &mut BTreeMap<usize, Range>, start: usize) {
    if let Some(mut r) = t.remove(&start) {
        r.restore(start);
        RESIDENT.fetch_sub(r.resident_pages(), Ordering::Relaxed);
    }
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
/// table's lock is never held by code that can fault on pageable memory). Only the page
/// touched comes back in.
pub(crate) fn on_fault(addr: usize, irql: u8) -> PagingFault {
    if TRIMMED.load(Ordering::SeqCst) == 0 {
        return PagingFault::NotPageable;
    }
    let mut t = table();
    let Some((start, r)) = containing_mut(&mut t, addr) else {
        return PagingFault::NotPageable;
    };
    let page = (addr - start) / PAGE_SIZE;
    let bit = 1u128 << page;
    if r.trimmed & bit == 0 {
        // Resident, so the fault is not a trimmed page's (an execute of data, a write to code).
        return PagingFault::NotPageable;
    }
    if irql >= nt_abi::DISPATCH_LEVEL {
        return PagingFault::AtRaisedIrql(r.kind);
    }
    if set_prot(start + page * PAGE_SIZE, PAGE_SIZE, r.prot) {
        r.trimmed &= !bit;
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
    /// This machine's table entries: with none, [`Pageable::contains`] (asked at every
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
        let len = round_up(len, PAGE_SIZE);
        let mut t = table();
        let mut at = start;
        while at < start + len {
            let chunk = (start + len - at).min(CHUNK_PAGES * PAGE_SIZE);
            if let Some(old) = t.get(&at).copied() {
                // Re-registered (an address reused after a free that did not unregister).
                forget(&mut t, at);
                if old.owner == self.owner {
                    self.ranges.fetch_sub(1, Ordering::Relaxed);
                }
            }
            self.ranges.fetch_add(1, Ordering::Relaxed);
            RESIDENT.fetch_add(chunk / PAGE_SIZE, Ordering::Relaxed);
            t.insert(
                at,
                Range {
                    base: start,
                    len: chunk,
                    prot: prot_bits(prot),
                    trimmed: 0,
                    pins: 0,
                    owner: self.owner,
                    kind,
                },
            );
            at += chunk;
        }
    }

    /// Forget the registration starting at `start`, making it accessible again first (its
    /// memory is about to be freed, which reads and writes it).
    pub(crate) fn unregister(&self, start: usize) {
        let mut t = table();
        let entries: Vec<usize> = t
            .range(start..)
            .take_while(|(_, r)| r.base == start)
            .filter(|(_, r)| r.owner == self.owner)
            .map(|(&k, _)| k)
            .collect();
        for k in entries {
            forget(&mut t, k);
            self.ranges.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Trim every resident page of this machine's unlocked ranges (a driver raised the IRQL to
    /// DISPATCH_LEVEL or above, or asked for a spin lock).
    pub(crate) fn trim(&self) {
        if !self.enabled || RESIDENT.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut t = table();
        for (&start, r) in t.iter_mut() {
            if r.owner != self.owner || r.pins != 0 || r.trimmed == r.all() {
                continue;
            }
            let n = r.resident_pages();
            TRIMMED.fetch_add(n, Ordering::SeqCst);
            if set_prot(start, r.len, libc::PROT_NONE) {
                r.trimmed = r.all();
                RESIDENT.fetch_sub(n, Ordering::Relaxed);
            } else {
                TRIMMED.fetch_sub(n, Ordering::SeqCst);
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
                r.restore(start);
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
        let mine: Vec<usize> = t
            .iter()
            .filter(|(_, r)| r.owner == self.owner)
            .map(|(&k, _)| k)
            .collect();
        for k in mine {
            forget(&mut t, k);
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
        // Only that page came back: the second is still trimmed.
        assert!(matches!(
            on_fault(a + PAGE_SIZE + 8, nt_abi::DISPATCH_LEVEL),
            PagingFault::AtRaisedIrql(_)
        ));
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
    fn a_registration_larger_than_a_chunk_is_split_and_forgotten_whole() {
        let p = Pageable::new(true);
        let n = CHUNK_PAGES + 2;
        let a = super::super::map_rw(n * PAGE_SIZE, None).expect("map");
        p.register(a, n * PAGE_SIZE, Prot::Rw, PageableKind::ImageSection);
        assert_eq!(p.ranges.load(Ordering::Relaxed), 2);
        p.trim();
        let last = a + (n - 1) * PAGE_SIZE;
        assert_eq!(on_fault(last, 0), PagingFault::PagedIn);
        assert!(matches!(
            on_fault(a, nt_abi::DISPATCH_LEVEL),
            PagingFault::AtRaisedIrql(_)
        ));
        p.unregister(a);
        assert_eq!(p.ranges.load(Ordering::Relaxed), 0);
        assert_eq!(on_fault(a, 0), PagingFault::NotPageable);
        // SAFETY: unregister restored read-write on every page of the mapping we own.
        unsafe { (a as *mut u8).write_volatile(1) };
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
