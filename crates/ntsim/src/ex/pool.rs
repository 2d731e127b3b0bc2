//! Pool: `ExAllocatePool2/3`, `ExAllocatePoolWithTag`, `ExAllocatePool`,
//! `ExAllocatePoolWithQuotaTag`, `ExFreePoolWithTag` / `ExFreePool` over real 16-byte-aligned
//! heap blocks — or, with the verifier's special pool, over the memory manager's special pool
//! ([`crate::mm::special`]) — tracked by address with tag, flags, size and owning driver.
#![allow(non_snake_case)]

use std::alloc::Layout;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use nt_abi::bugcheck::{self, bad_pool_caller};
use nt_abi::*;

use crate::ids::DriverId;
use crate::ke::bugcheck::raise;
use crate::ke::thread::{self, current};
use crate::machine::{System, lock};
use crate::mm::{MemClass, PAGE_SIZE, round_up};
use crate::verifier::Bc;

/// One live pool allocation.
#[derive(Clone, Debug)]
struct Block {
    size: usize,
    tag: u32,
    flags: u64,
    owner: DriverId,
    paged: bool,
    /// In special pool (freed through the memory manager, pattern checked).
    special: bool,
    /// Paged pool on pages of its own (Force IRQL Checking trims them; `mm::paging`): the
    /// page-aligned range registered as pageable, and whether ntsim mapped it just for this
    /// block (outside special pool).
    pageable: Option<(usize, usize)>,
    own_pages: bool,
}

/// ntsim-owned nonpaged memory (driver/device objects + extensions, IRPs, system buffers).
#[derive(Clone, Debug)]
struct SysRegion {
    size: usize,
    what: &'static str,
}

#[derive(Default)]
struct PoolTable {
    blocks: BTreeMap<usize, Block>,
    /// Recently freed blocks (address → size, tag), forgotten when the address is reused.
    freed: HashMap<usize, (usize, u32)>,
    system: BTreeMap<usize, SysRegion>,
    allocations: u64,
    frees: u64,
}

impl PoolTable {
    /// The live block containing `addr`.
    fn block_containing(&self, addr: usize) -> Option<(usize, &Block)> {
        let (&start, b) = self.blocks.range(..=addr).next_back()?;
        (addr < start + b.size.max(1)).then_some((start, b))
    }

    fn system_containing(&self, addr: usize) -> Option<(usize, &SysRegion)> {
        let (&start, r) = self.system.range(..=addr).next_back()?;
        (addr < start + r.size.max(1)).then_some((start, r))
    }
}

/// Called while a driver pool block `[start, start + size)` is being freed, after the pool's
/// own checks and before the memory goes: the I/O manager checks and forgets the work items in
/// it (ExpCheckForWorker's job on Windows). Registered by the composition root.
pub(crate) type FreeHook = fn(&System, usize, usize);

/// The pool: every block by address, with tag, flags, size and owning driver.
pub(crate) struct Pool {
    table: Mutex<PoolTable>,
    on_free: FreeHook,
    /// Special pool's mode when the verifier's special-pool option is on.
    special: Option<crate::mm::special::SpecialPoolMode>,
}

/// A pool block still allocated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakedBlock {
    pub address: usize,
    pub size: usize,
    pub tag: u32,
    pub flags: u64,
}

impl LeakedBlock {
    /// The tag as its four characters (`'Wdmw'`).
    pub fn tag_str(&self) -> String {
        self.tag
            .to_le_bytes()
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect()
    }
}

impl Pool {
    pub(crate) fn new(
        on_free: FreeHook,
        special: Option<crate::mm::special::SpecialPoolMode>,
    ) -> Self {
        Pool {
            table: Mutex::new(PoolTable::default()),
            on_free,
            special,
        }
    }

    /// Allocate zeroed ntsim-owned nonpaged memory and register it.
    pub(crate) fn sys_alloc(&self, size: usize, what: &'static str) -> *mut u8 {
        // SAFETY: the layout has a non-zero size and a power-of-two alignment.
        let p = unsafe { std::alloc::alloc_zeroed(layout(size)) };
        if p.is_null() {
            std::alloc::handle_alloc_error(layout(size));
        }
        let mut g = lock(&self.table);
        g.freed.remove(&(p as usize));
        g.system.insert(p as usize, SysRegion { size, what });
        p
    }

    /// Record `[addr, addr + size)` as ntsim-owned kernel memory (an MDL's system view), so
    /// `classify` names it kernel memory; [`Pool::unregister_system`] forgets it.
    pub(crate) fn register_system(&self, addr: usize, size: usize, what: &'static str) {
        lock(&self.table)
            .system
            .insert(addr, SysRegion { size, what });
    }

    /// Forget a range recorded by [`Pool::register_system`].
    pub(crate) fn unregister_system(&self, addr: usize) {
        lock(&self.table).system.remove(&addr);
    }

    /// Allocate a zeroed ntsim object on pages of its own (device objects and their extensions:
    /// freed at the last reference after IoDeleteDevice, and inaccessible from then on).
    pub(crate) fn sys_alloc_object(
        &self,
        mm: &crate::mm::Mm,
        size: usize,
        what: &'static str,
    ) -> *mut u8 {
        let Some(p) = mm.special.alloc_object(size) else {
            return self.sys_alloc(size, what);
        };
        let mut g = lock(&self.table);
        g.freed.remove(&p);
        g.system.insert(p, SysRegion { size, what });
        p as *mut u8
    }

    /// Free an object from [`Pool::sys_alloc_object`]: its pages become inaccessible. Returns
    /// its size (None if it was not a live object).
    pub(crate) fn sys_free_object(&self, mm: &crate::mm::Mm, p: *mut u8) -> Option<usize> {
        let r = lock(&self.table).system.remove(&(p as usize))?;
        if !mm.special.free(p as usize) {
            // SAFETY: not a page-backed object, so `sys_alloc_object` fell back to `sys_alloc`
            // with this size; it was in the table and is removed from it exactly once.
            unsafe { std::alloc::dealloc(p, layout(r.size)) };
        }
        Some(r.size)
    }

    /// Free memory from [`Pool::sys_alloc`].
    pub(crate) fn sys_free(&self, p: *mut u8) {
        let r = lock(&self.table).system.remove(&(p as usize));
        if let Some(r) = r {
            // SAFETY: `p` was returned by `sys_alloc` with this size (it was in the table, and
            // is removed from it exactly once).
            unsafe { std::alloc::dealloc(p, layout(r.size)) };
        }
    }

    /// Allocate a driver-owned pool block (in special pool when it is on). Returns null on
    /// failure.
    pub(crate) fn alloc_block(
        &self,
        mm: &crate::mm::Mm,
        flags: u64,
        size: usize,
        tag: u32,
        owner: DriverId,
    ) -> *mut u8 {
        let kinds = flags & (POOL_FLAG_NON_PAGED | POOL_FLAG_NON_PAGED_EXECUTE | POOL_FLAG_PAGED);
        if kinds.count_ones() != 1 || size > (1usize << 40) {
            return core::ptr::null_mut();
        }
        let special = self.special;
        let paged = kinds == POOL_FLAG_PAGED;
        // Force IRQL Checking trims paged pool, which needs the block on pages of its own.
        let own_pages = paged && special.is_none() && mm.paging.enabled();
        let p = if own_pages {
            match crate::mm::map_rw(round_up(size.max(1), PAGE_SIZE), None) {
                Some(p) => p as *mut u8,
                None => return core::ptr::null_mut(),
            }
        } else if let Some(mode) = special {
            // Fresh anonymous pages: zeroed whether or not the caller asked for it.
            match mm.special.alloc(size, mode) {
                Some(p) => p as *mut u8,
                None => return core::ptr::null_mut(),
            }
        } else {
            let lay = layout(size);
            if flags & POOL_FLAG_UNINITIALIZED != 0 {
                // SAFETY: the layout has a non-zero size and a power-of-two alignment.
                unsafe { std::alloc::alloc(lay) }
            } else {
                // SAFETY: as above.
                unsafe { std::alloc::alloc_zeroed(lay) }
            }
        };
        if p.is_null() {
            return p;
        }
        let pageable = (paged && mm.paging.enabled()).then(|| {
            let start = p as usize & !(PAGE_SIZE - 1);
            let end = round_up(p as usize + size.max(1), PAGE_SIZE);
            mm.paging.register(
                start,
                end - start,
                crate::mm::Prot::Rw,
                crate::mm::paging::PageableKind::PagedPool { block: p as usize },
            );
            (start, end - start)
        });
        let mut g = lock(&self.table);
        g.freed.remove(&(p as usize));
        g.allocations += 1;
        g.blocks.insert(
            p as usize,
            Block {
                size,
                tag,
                flags,
                owner,
                paged,
                special: special.is_some(),
                pageable,
                own_pages,
            },
        );
        p
    }

    /// The end of the live driver block containing `addr`, if any.
    pub(crate) fn block_end(&self, addr: usize) -> Option<usize> {
        lock(&self.table)
            .block_containing(addr)
            .map(|(start, b)| start + b.size)
    }

    /// Where `addr` lies if it is pool (driver blocks or ntsim's own nonpaged memory).
    fn classify(&self, addr: usize) -> Option<MemClass> {
        let g = lock(&self.table);
        if let Some((start, b)) = g.block_containing(addr) {
            return Some(if b.paged {
                MemClass::PagedPool {
                    block: start,
                    tag: b.tag,
                }
            } else {
                MemClass::NonPagedPool {
                    block: start,
                    tag: b.tag,
                }
            });
        }
        g.system_containing(addr)
            .map(|(_, r)| MemClass::SystemNonPaged(r.what))
    }

    /// Blocks `owner` still holds.
    pub(crate) fn blocks_of(&self, owner: DriverId) -> Vec<LeakedBlock> {
        lock(&self.table)
            .blocks
            .iter()
            .filter(|(_, b)| b.owner == owner)
            .map(|(&a, b)| LeakedBlock {
                address: a,
                size: b.size,
                tag: b.tag,
                flags: b.flags,
            })
            .collect()
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let g = lock(&self.table);
        PoolStats {
            outstanding_blocks: g.blocks.len(),
            outstanding_bytes: g.blocks.values().map(|b| b.size).sum(),
            allocations: g.allocations,
            frees: g.frees,
        }
    }
}

/// Classify `addr`: pool first, then the memory manager (images, stacks).
/// Whether `[addr, addr + len)` is a user-mode range in ntsim's model: below
/// `MmUserProbeAddress` and nothing the kernel owns (pool, ntsim's system buffers, images,
/// the current stack).
pub(crate) fn is_user_address(sys: &System, addr: usize, len: usize) -> bool {
    crate::ke::trap::is_user_range(addr as u64, len as u64)
        && classify(sys, addr) == MemClass::Unknown
}

pub(crate) fn classify(sys: &System, addr: usize) -> MemClass {
    sys.ex
        .pool
        .classify(addr)
        .unwrap_or_else(|| sys.mm.classify(addr))
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size.max(1), MEMORY_ALLOCATION_ALIGNMENT).expect("pool layout")
}

/// `ExAllocatePool2`: zeroed unless `POOL_FLAG_UNINITIALIZED`, 16-byte aligned, NULL when the
/// tag is 0, the flags name no (or more than one) pool type, or memory runs out.
///
/// # Safety
/// Always safe to call from driver code at IRQL ≤ DISPATCH_LEVEL.
pub unsafe extern "win64" fn ExAllocatePool2(
    Flags: POOL_FLAGS,
    NumberOfBytes: SIZE_T,
    Tag: ULONG,
) -> PVOID {
    let m = current();
    if let Some(bc) =
        m.verifier
            .on_pool_alloc(thread::irql(), Flags, NumberOfBytes, Tag, thread::caller())
    {
        raise(&m, bc);
    }
    if Tag == 0 {
        return core::ptr::null_mut();
    }
    m.ex.pool
        .alloc_block(&m.mm, Flags, NumberOfBytes, Tag, thread::driver())
        .cast()
}

/// A legacy `POOL_TYPE` as `POOL_FLAGS` (wdm.h's values: the low bits choose nonpaged (even) or
/// paged (odd), `POOL_NX_ALLOCATION` makes nonpaged pool no-execute, 8/16/256 are modifiers).
/// None for a type ntsim does not model (session pool, `DontUseThisType`, unknown bits).
fn pool_type_flags(t: POOL_TYPE) -> Option<u64> {
    let modifiers =
        POOL_QUOTA_FAIL_INSTEAD_OF_RAISE | POOL_RAISE_IF_ALLOCATION_FAILURE | POOL_COLD_ALLOCATION;
    let t = t & !modifiers;
    let nx = t & POOL_NX_ALLOCATION != 0;
    let base = t & !POOL_NX_ALLOCATION;
    if !(0..=6).contains(&base) || base == 3 {
        return None;
    }
    Some(
        match (base % 2 == 1, nx) {
            (true, false) => POOL_FLAG_PAGED,
            (true, true) => return None,
            (false, true) => POOL_FLAG_NON_PAGED,
            (false, false) => POOL_FLAG_NON_PAGED_EXECUTE,
        } | POOL_FLAG_UNINITIALIZED,
    )
}

/// The legacy allocators' common path: the verifier's allocation checks (parameter 2 of 0xC4 is
/// the `POOL_TYPE`, as the reference gives it for these routines), then a tracked block (not
/// zeroed). `extra` flags (quota) are recorded with the block.
fn alloc_legacy(pool_type: POOL_TYPE, size: usize, tag: u32, extra: u64) -> PVOID {
    let m = current();
    let flags = pool_type_flags(pool_type);
    let checked = flags.unwrap_or(POOL_FLAG_NON_PAGED) & !POOL_FLAG_UNINITIALIZED;
    if let Some(mut bc) =
        m.verifier
            .on_pool_alloc(thread::irql(), checked, size, tag, thread::caller())
    {
        bc.p[2] = pool_type as u32 as u64;
        raise(&m, bc);
    }
    let Some(flags) = flags else {
        return core::ptr::null_mut();
    };
    m.ex.pool
        .alloc_block(&m.mm, flags | extra, size, tag, thread::driver())
        .cast()
}

/// `ExAllocatePoolWithTag`: memory of `PoolType` (Microsoft, *ExAllocatePoolWithTag*: not
/// zeroed; `NonPagedPool` is executable — the verifier's 0xC4/0x2000 —, paged pool only at
/// IRQL ≤ APC_LEVEL, nonpaged at ≤ DISPATCH_LEVEL). NULL for session pool or an unknown type.
///
/// # Safety
/// Always safe to call from driver code.
pub unsafe extern "win64" fn ExAllocatePoolWithTag(
    PoolType: POOL_TYPE,
    NumberOfBytes: SIZE_T,
    Tag: ULONG,
) -> PVOID {
    alloc_legacy(PoolType, NumberOfBytes, Tag, 0)
}

/// `ExAllocatePool`: `ExAllocatePoolWithTag` with the tag `'None'` (wdm.h).
///
/// # Safety
/// Always safe to call from driver code.
pub unsafe extern "win64" fn ExAllocatePool(PoolType: POOL_TYPE, NumberOfBytes: SIZE_T) -> PVOID {
    alloc_legacy(PoolType, NumberOfBytes, NONE_POOL_TAG, 0)
}

/// `ExAllocatePoolWithQuotaTag`: charged to the current process's quota (recorded as
/// `POOL_FLAG_USE_QUOTA`). Windows raises STATUS_INSUFFICIENT_RESOURCES on failure unless
/// `POOL_QUOTA_FAIL_INSTEAD_OF_RAISE`; ntsim returns NULL either way (it raises no SEH
/// exceptions).
///
/// # Safety
/// Always safe to call from driver code.
pub unsafe extern "win64" fn ExAllocatePoolWithQuotaTag(
    PoolType: POOL_TYPE,
    NumberOfBytes: SIZE_T,
    Tag: ULONG,
) -> PVOID {
    alloc_legacy(PoolType, NumberOfBytes, Tag, POOL_FLAG_USE_QUOTA)
}

/// `ExAllocatePool3`: `ExAllocatePool2` plus extended parameters (Microsoft, *ExAllocatePool3*).
/// Priority and NUMA-node parameters are accepted (ntsim has one node and never runs low);
/// secure pool, unknown types, or a count without an array are refused with NULL.
///
/// # Safety
/// `ExtendedParameters` must point to `ExtendedParametersCount` readable entries.
pub unsafe extern "win64" fn ExAllocatePool3(
    Flags: POOL_FLAGS,
    NumberOfBytes: SIZE_T,
    Tag: ULONG,
    ExtendedParameters: *const POOL_EXTENDED_PARAMETER,
    ExtendedParametersCount: ULONG,
) -> PVOID {
    if ExtendedParametersCount != 0 && ExtendedParameters.is_null() {
        return core::ptr::null_mut();
    }
    for i in 0..ExtendedParametersCount as usize {
        // SAFETY: entry `i` of the caller's `ExtendedParametersCount` entries (in bounds).
        let at = unsafe { ExtendedParameters.add(i) };
        // SAFETY: a readable entry (the documented contract); unaligned-safe read.
        let p = unsafe { at.read_unaligned() };
        match p.Header & 0xFF {
            POOL_EXTENDED_PARAMETER_PRIORITY | POOL_EXTENDED_PARAMETER_NUMA_NODE => {}
            _ => return core::ptr::null_mut(),
        }
    }
    // SAFETY: the same contract as ExAllocatePool2, which has none beyond running on an ntsim
    // thread.
    unsafe { ExAllocatePool2(Flags, NumberOfBytes, Tag) }
}

/// Free a driver pool block: the checks of ExFreePoolWithTag (tag = Some) / ExFreePool.
pub(crate) fn free_block(sys: &System, p: usize, tag: Option<u32>) {
    let pool = &sys.ex.pool;
    let found = {
        let g = lock(&pool.table);
        match g.blocks.get(&p) {
            Some(b) => Ok(b.clone()),
            None => Err(g.freed.get(&p).map(|f| f.0)),
        }
    };
    let block = match found {
        Ok(b) => b,
        Err(freed) => raise(sys, sys.verifier.on_bad_free(p, freed)),
    };
    if let Some(bc) = sys.verifier.on_pool_free(thread::irql(), block.paged, p) {
        raise(sys, bc);
    }
    if let Some(t) = tag
        && t != block.tag
    {
        raise(
            sys,
            Bc::new(
                bugcheck::BAD_POOL_CALLER,
                [
                    bad_pool_caller::FREE_WRONG_TAG,
                    p as u64,
                    block.tag as u64,
                    t as u64,
                ],
            ),
        );
    }
    // Freeing reads and writes the block: bring trimmed pages back first.
    if let Some((start, _)) = block.pageable {
        sys.mm.paging.unregister(start);
    }
    // Special pool: the pattern around the block must be intact (0xC1).
    if block.special
        && let Some(c) = sys.mm.special.check(p)
    {
        use crate::mm::special::Corruption;
        let bc = match c {
            Corruption::AfterEnd(at) => sys.verifier.on_special_pool_corruption(p, at, true),
            Corruption::Nearby(at) => sys.verifier.on_special_pool_corruption(p, at, false),
        };
        raise(sys, bc);
    }
    // A timer still set, or a DPC still queued, in this block (0xC7).
    if let Some((what, obj)) = crate::ke::timer::active_in(sys, p, p + block.size)
        && let Some(bc) = sys
            .verifier
            .on_timer_or_dpc_in_freed_pool(what, obj, p, p + block.size)
    {
        raise(sys, bc);
    }
    // ERESOURCEs that live in this block (0xC4/0xD2).
    super::resource::on_pool_free(sys, p, block.size);
    // Locks that lived in it leave Deadlock Detection's graph.
    sys.verifier.on_lock_memory_freed(p, p + block.size);
    // Work items that live in this block.
    (pool.on_free)(sys, p, block.size);
    let mut g = lock(&pool.table);
    if g.blocks.remove(&p).is_some() {
        g.frees += 1;
        // Remember freed addresses for double-free detection; the allocator reuses addresses,
        // so this stays small, but bound it anyway.
        if g.freed.len() >= 1 << 20 {
            g.freed.clear();
        }
        g.freed.insert(p, (block.size, block.tag));
        drop(g);
        if block.special {
            // Its pages become inaccessible (quarantine): a later use is 0xD5.
            sys.mm.special.free(p);
        } else if let (true, Some((start, len))) = (block.own_pages, block.pageable) {
            // SAFETY: the block's own mapping from `alloc_block`, just removed from the table
            // (so unmapped once) and no longer registered as pageable.
            unsafe { libc::munmap(start as *mut libc::c_void, len) };
        } else {
            // SAFETY: `p` was allocated by `alloc_block` with this size and has just been
            // removed from the table, so it is freed exactly once.
            unsafe { std::alloc::dealloc(p as *mut u8, layout(block.size)) };
        }
    }
}

/// `ExFreePoolWithTag`.
///
/// # Safety
/// `P` should be a block from `ExAllocatePool2` (anything else is a bug check, not UB).
pub unsafe extern "win64" fn ExFreePoolWithTag(P: PVOID, Tag: ULONG) {
    let m = current();
    free_block(&m, P as usize, Some(Tag));
}

/// `ExFreePool`.
///
/// # Safety
/// `P` should be a block from `ExAllocatePool2` (anything else is a bug check, not UB).
pub unsafe extern "win64" fn ExFreePool(P: PVOID) {
    let m = current();
    free_block(&m, P as usize, None);
}

/// Summary of outstanding pool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub outstanding_blocks: usize,
    pub outstanding_bytes: usize,
    pub allocations: u64,
    pub frees: u64,
}
