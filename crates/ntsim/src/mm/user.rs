//! The requesting process's user-mode memory: the buffers a `DeviceIoControl`, `ReadFile` or
//! `WriteFile` caller passes. ntsim has no user process, so the I/O manager allocates each
//! caller buffer here for the duration of the request, at a user-mode address (below
//! `MmUserProbeAddress`, in no kernel region), so that a driver sees for METHOD_NEITHER what
//! it sees on Windows: `ProbeForRead`/`ProbeForWrite` accept it, `MmProbeAndLockPages` with
//! `UserMode` locks it, and an access past its pages is a catchable access violation.
//!
//! Each region is a shared anonymous mapping, so a *system view* of the same pages — the
//! kernel mapping `MmMapLockedPagesSpecifyCache` returns for an MDL, at another address — can
//! be made with `mremap(old, 0, …)`, as the memory manager maps an MDL's physical pages into
//! system space.
use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{PAGE_SIZE, round_up};

/// Offset of a caller buffer in its first page: nonzero, so an MDL's `ByteOffset` and
/// `StartVa` differ from the buffer address as they do for a typical heap buffer, and
/// 16-aligned like a heap block.
pub const USER_BUFFER_PAGE_OFFSET: usize = 0x230;

#[derive(Clone, Copy, Debug)]
struct Region {
    len: usize,
    writable: bool,
    /// Pages of this region locked by MDLs (MmProbeAndLockPages − MmUnlockPages).
    locked_pages: usize,
}

/// User-mode regions, by base address.
#[derive(Default)]
pub(crate) struct UserSpace {
    regions: Mutex<BTreeMap<usize, Region>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn mmap_shared(len: usize) -> Option<usize> {
    // SAFETY: a fresh anonymous shared mapping at an address the kernel picks; no existing
    // memory is affected.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as usize)
}

impl UserSpace {
    /// A zeroed caller buffer of `len` bytes holding `init` at its start, at
    /// [`USER_BUFFER_PAGE_OFFSET`] in its first page. None when memory runs out.
    pub(crate) fn alloc(&self, len: usize, init: &[u8], writable: bool) -> Option<usize> {
        let size = round_up(
            USER_BUFFER_PAGE_OFFSET + len.max(init.len()).max(1),
            PAGE_SIZE,
        );
        let base = mmap_shared(size)?;
        let addr = base + USER_BUFFER_PAGE_OFFSET;
        // SAFETY: `addr..addr + init.len()` lies inside the fresh mapping of `size` bytes.
        unsafe { core::ptr::copy_nonoverlapping(init.as_ptr(), addr as *mut u8, init.len()) };
        if !writable {
            super::protect(base, size, super::Prot::R);
        }
        lock(&self.regions).insert(
            base,
            Region {
                len: size,
                writable,
                locked_pages: 0,
            },
        );
        Some(addr)
    }

    /// Release the region holding `addr`; returns the pages MDLs still had locked in it.
    pub(crate) fn free(&self, addr: usize) -> usize {
        let mut g = lock(&self.regions);
        let Some((base, r)) = g.range(..=addr).next_back().map(|(&b, &r)| (b, r)) else {
            return 0;
        };
        if addr >= base + r.len {
            return 0;
        }
        g.remove(&base);
        drop(g);
        // SAFETY: the region is a mapping this table created and no longer lists.
        unsafe { libc::munmap(base as *mut libc::c_void, r.len) };
        r.locked_pages
    }

    /// Whether `[addr, addr + len)` lies inside one live region (writable when `write`).
    pub(crate) fn contains(&self, addr: usize, len: usize, write: bool) -> bool {
        let g = lock(&self.regions);
        let Some((&base, r)) = g.range(..=addr).next_back() else {
            return false;
        };
        addr.checked_add(len)
            .is_some_and(|end| end <= base + r.len && (!write || r.writable))
    }

    /// Count `pages` locked (or, negative, unlocked) in the region holding `addr`. Returns
    /// the region's locked count before the change, or None when `addr` is in no region.
    pub(crate) fn add_locked(&self, addr: usize, pages: isize) -> Option<usize> {
        let mut g = lock(&self.regions);
        let (&base, r) = g.range_mut(..=addr).next_back()?;
        if addr >= base + r.len {
            return None;
        }
        let before = r.locked_pages;
        r.locked_pages = before.saturating_add_signed(pages);
        Some(before)
    }

    /// A second (system) view of the pages `[page, page + len)` of a region, or None.
    pub(crate) fn map_view(&self, page: usize, len: usize) -> Option<usize> {
        if !self.contains(page, len, false) {
            return None;
        }
        // SAFETY: `page..page+len` lies inside a shared anonymous mapping of this table;
        // mremap with old_size 0 creates a new mapping of the same pages without touching
        // the old one.
        let p = unsafe { libc::mremap(page as *mut libc::c_void, 0, len, libc::MREMAP_MAYMOVE) };
        (p != libc::MAP_FAILED).then_some(p as usize)
    }
}

/// Remove a view made by [`UserSpace::map_view`].
pub(crate) fn unmap_view(view: usize, len: usize) {
    // SAFETY: `view..view+len` is a mapping `map_view` created and nothing else uses.
    unsafe { libc::munmap(view as *mut libc::c_void, len) };
}
