//! Special pool (Driver Verifier's *Special Pool* option): every allocation on page(s) of its
//! own with a no-access guard page beside it, the rest of its pages filled with a pattern that
//! is checked when the block is freed, and freed blocks' pages kept inaccessible for a while (a
//! bounded quarantine) so a use after free faults.
//!
//! Source: Microsoft, *Special Pool* (Driver Verifier): "Verify End" (the default, ntsim's
//! [`SpecialPoolMode::Overrun`]) places each allocation at the highest address that fits on its
//! page, the previous portion of the page is written with a pattern and the following page is
//! marked no-access; "Verify Start" ([`SpecialPoolMode::Underrun`]) places the block at the page
//! start with the no-access page before it. Windows rounds the block to the pool's 16-byte
//! alignment (`MEMORY_ALLOCATION_ALIGNMENT`), so an overrun of less than the rounding stays on
//! the page and is found at free by the pattern (bug check 0xC1 p4 = 0x24).
//!
//! Cost per allocation: `round_up(size, 4 KiB)` bytes of memory (one page for every block of up
//! to 4080 bytes) plus one 4 KiB guard page of address space (no memory), and two mappings
//! (VMAs). Freed blocks stay mapped no-access until [`QUARANTINE_BLOCKS`] later frees (or
//! [`QUARANTINE_BYTES`] of quarantined pages) push them out.
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use nt_abi::MEMORY_ALLOCATION_ALIGNMENT;

use super::{PAGE_SIZE, round_up};

/// Where the guard page sits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpecialPoolMode {
    /// "Verify End": block at the end of its page(s), guard page after (catches overruns).
    #[default]
    Overrun,
    /// "Verify Start": block at the start of its page(s), guard page before (catches underruns).
    Underrun,
}

/// Freed special-pool blocks kept inaccessible (most recent frees).
pub const QUARANTINE_BLOCKS: usize = 4096;
/// Bound on the pages kept in quarantine.
pub const QUARANTINE_BYTES: usize = 64 << 20;
/// Largest block Windows puts in special pool: a page less the pool header. ntsim guards larger
/// blocks too (stricter than Windows).
pub const WINDOWS_SPECIAL_POOL_MAX: usize = PAGE_SIZE - MEMORY_ALLOCATION_ALIGNMENT;

/// Byte written over the unused part of a block's pages.
const PATTERN: u8 = 0xA5;

#[derive(Clone, Copy, Debug)]
struct Region {
    /// The whole mapping (data pages and the guard page).
    base: usize,
    len: usize,
    /// The data pages.
    data: usize,
    data_len: usize,
    block: usize,
    size: usize,
    /// An object ntsim allocated for the driver (a device object), not a driver allocation.
    system: bool,
}

#[derive(Default)]
struct Inner {
    /// Live regions by mapping base.
    live: BTreeMap<usize, Region>,
    /// Block address → mapping base of live regions.
    by_block: BTreeMap<usize, usize>,
    /// Freed regions (inaccessible) by mapping base, oldest first in `order`.
    freed: BTreeMap<usize, Region>,
    order: VecDeque<usize>,
    freed_bytes: usize,
}

fn containing(map: &BTreeMap<usize, Region>, addr: usize) -> Option<&Region> {
    let (_, r) = map.range(..=addr).next_back()?;
    (addr < r.base + r.len).then_some(r)
}

/// What a fault at an address in special pool hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecialFault {
    /// The guard page of a live block (an overrun, or an underrun in underrun mode).
    /// `stricter`: the block is larger than Windows would put in special pool.
    BeyondEnd { block: usize, stricter: bool },
    /// The pages of a freed block still in quarantine.
    Freed { block: usize },
    /// Outside an object ntsim allocated on pages of its own (a device object and its
    /// extension), or inside one after it was freed.
    SystemObject { object: usize, freed: bool },
}

/// The pattern bytes around a block were overwritten: found at free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// Bytes after the block's end (0xC1 p4 = 0x24), at this address.
    AfterEnd(usize),
    /// Bytes before the block on the same page (0xC1 p4 = 0x23), at this address.
    Nearby(usize),
}

/// The special-pool allocator.
#[derive(Default)]
pub(crate) struct SpecialPool {
    inner: Mutex<Inner>,
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn set_prot(addr: usize, len: usize, prot: libc::c_int) -> bool {
    // SAFETY: `[addr, addr + len)` is a page-aligned part of a mapping this allocator created
    // with `mmap` and still owns; it holds no Rust objects (only driver data and the pattern).
    unsafe { libc::mprotect(addr as *mut libc::c_void, len, prot) == 0 }
}

impl SpecialPool {
    /// Allocate `size` bytes (zeroed: fresh anonymous pages) in special pool. None when the
    /// mapping fails (address space or the mapping limit exhausted).
    pub(crate) fn alloc(&self, size: usize, mode: SpecialPoolMode) -> Option<usize> {
        self.alloc_region(size, mode, false)
    }

    /// Allocate an ntsim object (a device object) on pages of its own, so that it can be made
    /// inaccessible when it is freed (whatever the verifier options).
    pub(crate) fn alloc_object(&self, size: usize) -> Option<usize> {
        self.alloc_region(size, SpecialPoolMode::Overrun, true)
    }

    fn alloc_region(&self, size: usize, mode: SpecialPoolMode, system: bool) -> Option<usize> {
        let data_len = round_up(size.max(1), PAGE_SIZE);
        let len = data_len + PAGE_SIZE;
        let base = super::map_rw(len, None)?;
        let (data, guard, block) = match mode {
            SpecialPoolMode::Overrun => (
                base,
                base + data_len,
                base + data_len - round_up(size.max(1), MEMORY_ALLOCATION_ALIGNMENT),
            ),
            SpecialPoolMode::Underrun => (base + PAGE_SIZE, base, base + PAGE_SIZE),
        };
        if !set_prot(guard, PAGE_SIZE, libc::PROT_NONE) {
            // SAFETY: the mapping created above, not yet handed out.
            unsafe { libc::munmap(base as *mut libc::c_void, len) };
            return None;
        }
        // SAFETY: `[data, block)` and `[block + size, data + data_len)` lie in the read-write
        // data pages of the mapping created above, which nothing else uses yet.
        unsafe {
            core::ptr::write_bytes(data as *mut u8, PATTERN, block - data);
        }
        let tail = block + size;
        // SAFETY: as above.
        unsafe {
            core::ptr::write_bytes(tail as *mut u8, PATTERN, data + data_len - tail);
        }
        let r = Region {
            base,
            len,
            data,
            data_len,
            block,
            size,
            system,
        };
        let mut g = lock(&self.inner);
        g.live.insert(base, r);
        g.by_block.insert(block, base);
        Some(block)
    }

    /// Check the pattern around a live block (the free path's check, before [`free`]).
    ///
    /// [`free`]: SpecialPool::free
    pub(crate) fn check(&self, block: usize) -> Option<Corruption> {
        let g = lock(&self.inner);
        let r = *g.live.get(g.by_block.get(&block)?)?;
        drop(g);
        let scan = |from: usize, to: usize| -> Option<usize> {
            (from..to).find(|&a| {
                // SAFETY: `a` lies in the live block's read-write data pages (between the page
                // start and the block, or between the block's end and the page end).
                unsafe { (a as *const u8).read_volatile() != PATTERN }
            })
        };
        if let Some(a) = scan(r.block + r.size, r.data + r.data_len) {
            return Some(Corruption::AfterEnd(a));
        }
        scan(r.data, r.block).map(Corruption::Nearby)
    }

    /// Free a live block: its pages become inaccessible and go into quarantine (the oldest
    /// quarantined regions are unmapped). False if `block` is not a live special-pool block.
    pub(crate) fn free(&self, block: usize) -> bool {
        let mut g = lock(&self.inner);
        let Some(base) = g.by_block.remove(&block) else {
            return false;
        };
        let Some(r) = g.live.remove(&base) else {
            return false;
        };
        set_prot(r.base, r.len, libc::PROT_NONE);
        // The quarantine needs the addresses, not the memory: give the pages back (they read as
        // zero if ever made accessible again, and stay no-access until unmapped), so thousands of
        // quarantined blocks cost address space, not resident memory.
        // SAFETY: a private anonymous mapping this allocator created and owns; the freed block's
        // contents are dead (nothing may read them: that is what the quarantine catches).
        unsafe { libc::madvise(r.base as *mut libc::c_void, r.len, libc::MADV_DONTNEED) };
        g.freed.insert(base, r);
        g.order.push_back(base);
        g.freed_bytes += r.len;
        while g.order.len() > QUARANTINE_BLOCKS || g.freed_bytes > QUARANTINE_BYTES {
            let Some(old) = g.order.pop_front() else {
                break;
            };
            if let Some(o) = g.freed.remove(&old) {
                g.freed_bytes -= o.len;
                // SAFETY: a quarantined mapping this allocator created; nothing references
                // it (its block was freed and is no longer in any table).
                unsafe { libc::munmap(o.base as *mut libc::c_void, o.len) };
            }
        }
        true
    }

    /// What a fault at `addr` hit, if `addr` is special pool.
    pub(crate) fn fault_at(&self, addr: usize) -> Option<SpecialFault> {
        let g = lock(&self.inner);
        if let Some(r) = containing(&g.live, addr) {
            let in_data = addr >= r.data && addr < r.data + r.data_len;
            if in_data {
                return None;
            }
            return Some(if r.system {
                SpecialFault::SystemObject {
                    object: r.block,
                    freed: false,
                }
            } else {
                SpecialFault::BeyondEnd {
                    block: r.block,
                    stricter: r.size > WINDOWS_SPECIAL_POOL_MAX,
                }
            });
        }
        containing(&g.freed, addr).map(|r| {
            if r.system {
                SpecialFault::SystemObject {
                    object: r.block,
                    freed: true,
                }
            } else {
                SpecialFault::Freed { block: r.block }
            }
        })
    }
}

impl Drop for SpecialPool {
    fn drop(&mut self) {
        let g = lock(&self.inner);
        for r in g.live.values().chain(g.freed.values()) {
            // SAFETY: the machine is gone (this is its memory manager being dropped), so no
            // driver code of it can run any more; every region here is a mapping we created.
            unsafe { libc::munmap(r.base as *mut libc::c_void, r.len) };
        }
    }
}
