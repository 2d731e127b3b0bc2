//! Pool: `ExAllocatePool2` / `ExFreePoolWithTag` / `ExFreePool` over real 16-byte-aligned heap
//! blocks, tracked by address with tag, flags, size and owning driver.
#![allow(non_snake_case)]

use std::alloc::Layout;
use std::collections::{BTreeMap, HashMap};

use nt_abi::bugcheck::{
    self, bad_pool_caller, bad_pool_caller_ext, verifier as vr, worker_invalid,
};
use nt_abi::*;

use crate::io::workitem::ItemState;
use crate::ke::irql;
use crate::machine::{DRIVER, Inner, current, lock, raise};
use crate::verifier::Bc;

/// One live pool allocation.
#[derive(Clone, Debug)]
pub struct Block {
    pub size: usize,
    pub tag: u32,
    pub flags: u64,
    pub owner: usize,
    pub paged: bool,
}

/// ntsim-owned nonpaged memory (driver/device objects + extensions, IRPs, system buffers).
#[derive(Clone, Debug)]
pub struct SysRegion {
    pub size: usize,
    pub what: &'static str,
}

#[derive(Default)]
pub struct PoolTable {
    pub blocks: BTreeMap<usize, Block>,
    /// Recently freed blocks (address → size, tag), forgotten when the address is reused.
    pub freed: HashMap<usize, (usize, u32)>,
    pub system: BTreeMap<usize, SysRegion>,
    pub allocations: u64,
    pub frees: u64,
}

impl PoolTable {
    /// The live block containing `addr`.
    pub fn block_containing(&self, addr: usize) -> Option<(usize, &Block)> {
        let (&start, b) = self.blocks.range(..=addr).next_back()?;
        (addr < start + b.size.max(1)).then_some((start, b))
    }

    pub fn system_containing(&self, addr: usize) -> Option<(usize, &SysRegion)> {
        let (&start, r) = self.system.range(..=addr).next_back()?;
        (addr < start + r.size.max(1)).then_some((start, r))
    }
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size.max(1), MEMORY_ALLOCATION_ALIGNMENT).expect("pool layout")
}

/// Allocate zeroed ntsim-owned nonpaged memory and register it.
pub(crate) fn sys_alloc(m: &Inner, size: usize, what: &'static str) -> *mut u8 {
    // SAFETY: the layout has a non-zero size and a power-of-two alignment.
    let p = unsafe { std::alloc::alloc_zeroed(layout(size)) };
    if p.is_null() {
        std::alloc::handle_alloc_error(layout(size));
    }
    let mut g = lock(&m.pool);
    g.freed.remove(&(p as usize));
    g.system.insert(p as usize, SysRegion { size, what });
    p
}

/// Free memory from [`sys_alloc`].
pub(crate) fn sys_free(m: &Inner, p: *mut u8) {
    let r = lock(&m.pool).system.remove(&(p as usize));
    if let Some(r) = r {
        // SAFETY: `p` was returned by `sys_alloc` with this size (it was in the table, and is
        // removed from it exactly once).
        unsafe { std::alloc::dealloc(p, layout(r.size)) };
    }
}

/// Allocate a driver-owned pool block. Returns null on failure.
pub(crate) fn alloc_block(m: &Inner, flags: u64, size: usize, tag: u32, owner: usize) -> *mut u8 {
    let kinds = flags & (POOL_FLAG_NON_PAGED | POOL_FLAG_NON_PAGED_EXECUTE | POOL_FLAG_PAGED);
    if kinds.count_ones() != 1 || size > (1usize << 40) {
        return core::ptr::null_mut();
    }
    let lay = layout(size);
    let p = if flags & POOL_FLAG_UNINITIALIZED != 0 {
        // SAFETY: the layout has a non-zero size and a power-of-two alignment.
        unsafe { std::alloc::alloc(lay) }
    } else {
        // SAFETY: as above.
        unsafe { std::alloc::alloc_zeroed(lay) }
    };
    if p.is_null() {
        return p;
    }
    let mut g = lock(&m.pool);
    g.freed.remove(&(p as usize));
    g.allocations += 1;
    g.blocks.insert(
        p as usize,
        Block {
            size,
            tag,
            flags,
            owner,
            paged: kinds == POOL_FLAG_PAGED,
        },
    );
    p
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
    let lvl = irql::get();
    if m.verifier() {
        if NumberOfBytes == 0 {
            raise(
                &m,
                Bc::verifier(
                    bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                    [vr::ZERO_BYTE_ALLOCATION, lvl as u64, Flags, 0],
                ),
            );
        }
        if Flags & POOL_FLAG_PAGED != 0 && lvl > APC_LEVEL {
            raise(
                &m,
                Bc::verifier(
                    bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                    [
                        vr::PAGED_ALLOC_ABOVE_APC,
                        lvl as u64,
                        Flags,
                        NumberOfBytes as u64,
                    ],
                ),
            );
        }
        if lvl > DISPATCH_LEVEL {
            raise(
                &m,
                Bc::verifier(
                    bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                    [
                        vr::NONPAGED_ALLOC_ABOVE_DISPATCH,
                        lvl as u64,
                        Flags,
                        NumberOfBytes as u64,
                    ],
                ),
            );
        }
    }
    if m.verifier() && Flags & POOL_FLAG_NON_PAGED_EXECUTE != 0 {
        let caller = crate::machine::CALLER.with(|c| c.get());
        raise(
            &m,
            Bc::verifier(
                bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [vr::EXECUTABLE_POOL, caller as u64, Flags, Tag as u64],
            ),
        );
    }
    if Tag == 0 {
        return core::ptr::null_mut();
    }
    let owner = DRIVER.with(|d| d.get());
    alloc_block(&m, Flags, NumberOfBytes, Tag, owner).cast()
}

/// Free a driver pool block: the checks of ExFreePoolWithTag (tag = Some) / ExFreePool.
pub(crate) fn free_block(m: &Inner, p: usize, tag: Option<u32>) {
    let lvl = irql::get();
    let found = {
        let g = lock(&m.pool);
        match g.blocks.get(&p) {
            Some(b) => Ok(b.clone()),
            None => Err(g.freed.get(&p).copied()),
        }
    };
    let block = match found {
        Ok(b) => b,
        Err(Some((size, _))) => {
            let bc = if m.verifier() {
                Bc::verifier(
                    bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                    [vr::DOUBLE_FREE, 0, p as u64, size as u64],
                )
            } else {
                Bc::new(
                    bugcheck::BAD_POOL_CALLER,
                    [bad_pool_caller_ext::DOUBLE_FREE, 0, p as u64, size as u64],
                )
            };
            raise(m, bc);
        }
        Err(None) => {
            let bc = if m.verifier() {
                Bc::verifier(
                    bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                    [vr::FREE_BAD_ADDRESS, p as u64, 0, 0],
                )
            } else {
                Bc::new(
                    bugcheck::BAD_POOL_CALLER,
                    [bad_pool_caller_ext::FREE_INVALID_ADDRESS, p as u64, 0, 0],
                )
            };
            raise(m, bc);
        }
    };
    // Pool type in p3 as the bug-check reference gives it: 0 nonpaged, 1 paged.
    if m.verifier() && block.paged && lvl > APC_LEVEL {
        raise(
            m,
            Bc::verifier(
                bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [vr::PAGED_FREE_ABOVE_APC, lvl as u64, 1, p as u64],
            ),
        );
    }
    if m.verifier() && lvl > DISPATCH_LEVEL {
        raise(
            m,
            Bc::verifier(
                bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                [vr::NONPAGED_FREE_ABOVE_DISPATCH, lvl as u64, 0, p as u64],
            ),
        );
    }
    if let Some(t) = tag
        && t != block.tag
    {
        raise(
            m,
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
    // Work items that live in this block.
    {
        let wi = lock(&m.wi);
        let live: Vec<(usize, ItemState)> = wi
            .items
            .range(p..p + block.size.max(1))
            .map(|(&a, it)| (a, it.state))
            .collect();
        drop(wi);
        for (item, state) in live {
            let bc = Bc::worker_invalid([
                worker_invalid::ACTIVE_ITEM_IN_FREED_POOL,
                item as u64,
                p as u64,
                (p + block.size) as u64,
            ]);
            match state {
                ItemState::Queued => raise(m, bc),
                _ if m.verifier() => {
                    let mut bc = bc.documented_only();
                    bc.verifier_rule = true;
                    raise(m, bc)
                }
                _ => {}
            }
        }
        // Without verifier, forget initialized items in the freed memory.
        let mut wi = lock(&m.wi);
        let stale: Vec<usize> = wi
            .items
            .range(p..p + block.size.max(1))
            .map(|(&a, _)| a)
            .collect();
        for a in stale {
            wi.items.remove(&a);
        }
    }
    let mut g = lock(&m.pool);
    if g.blocks.remove(&p).is_some() {
        g.frees += 1;
        // Remember freed addresses for double-free detection; the allocator reuses addresses,
        // so this stays small, but bound it anyway.
        if g.freed.len() >= 1 << 20 {
            g.freed.clear();
        }
        g.freed.insert(p, (block.size, block.tag));
        drop(g);
        // SAFETY: `p` was allocated by `alloc_block` with this size and has just been removed
        // from the table, so it is freed exactly once.
        unsafe { std::alloc::dealloc(p as *mut u8, layout(block.size)) };
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
