//! Memory descriptor lists: `IoAllocateMdl`, `IoFreeMdl`, `MmProbeAndLockPages`,
//! `MmUnlockPages`, `MmMapLockedPagesSpecifyCache`, `MmUnmapLockedPages`,
//! `MmBuildMdlForNonPagedPool`, and the MDLs the I/O manager builds for direct I/O.
//!
//! They live in the I/O manager (the top layer) because the probe raises exceptions through
//! `ke`'s dispatcher and classifies addresses through `ex` and `mm`; on Windows the `Mm`
//! routines belong to the memory manager.
//!
//! Semantics (Microsoft's reference pages for each routine, `wdm.h` of mingw-w64 for the
//! layout and flags, ReactOS `ntoskrnl/mm/ARM3/mdlsup.c` for what each does to the flags):
//! - `IoAllocateMdl(Va, Length, Secondary, ChargeQuota, Irp)`: an MDL of
//!   `sizeof(MDL) + 8 × pages spanned` bytes (`Size`), `StartVa = PAGE_ALIGN(Va)`,
//!   `ByteOffset = BYTE_OFFSET(Va)`, `ByteCount = Length`, `MdlFlags` 0; NULL when `Size`
//!   would not fit its 16 bits. With an IRP: `Irp->MdlAddress` (primary) or the end of its
//!   MDL chain (`SecondaryBuffer`).
//!   <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocatemdl>
//! - `MmProbeAndLockPages(Mdl, AccessMode, Operation)`: checks the buffer is accessible for
//!   the operation (write access for IoWriteAccess/IoModifyAccess) and, for `UserMode`, that it
//!   is a user-mode range; on failure raises STATUS_ACCESS_VIOLATION (callers wrap it in
//!   `__try`); on success fills the PFN array and sets `MDL_PAGES_LOCKED` (and
//!   `MDL_WRITE_OPERATION` for a write/modify lock).
//!   <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmprobeandlockpages>
//!   The user-mode address space ntsim models is the requesting caller's buffers
//!   (`mm::user`); any other address below `MmUserProbeAddress` is invalid.
//! - `MmUnlockPages`: releases the system mapping if there is one (ReactOS: it unmaps a
//!   `MDL_MAPPED_TO_SYSTEM_VA` MDL first), clears `MDL_PAGES_LOCKED`. Unlocking an MDL whose
//!   pages are not locked is 0x76 PROCESS_HAS_LOCKED_PAGES p1 = 1 (verifier `misc_checks`).
//!   <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmunlockpages>
//! - `MmMapLockedPagesSpecifyCache(Mdl, KernelMode, …)`: a system-space view of the locked
//!   pages (for a user buffer: a second mapping of the same pages at another address, itself
//!   kernel memory), `MappedSystemVa = view + ByteOffset`, `MDL_MAPPED_TO_SYSTEM_VA`; for an
//!   MDL already mapped or built for nonpaged pool, `MappedSystemVa`. NULL for `UserMode`
//!   mappings (not modelled) and for an MDL whose pages are not locked.
//!   <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmmaplockedpagesspecifycache>
//!   The inline `MmGetSystemAddressForMdlSafe` reads `MdlFlags` and `MappedSystemVa` and calls
//!   this otherwise.
//! - `MmUnmapLockedPages(Base, Mdl)`: removes the view, clears `MDL_MAPPED_TO_SYSTEM_VA`.
//! - `MmBuildMdlForNonPagedPool(Mdl)`: fills the PFN array, `MappedSystemVa = StartVa +
//!   ByteOffset`, sets `MDL_SOURCE_IS_NONPAGED_POOL` (no lock needed or allowed).
//!   <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmbuildmdlfornonpagedpool>
//! - Under Force IRQL Checking, pageable kernel memory (paged pool, a `PAGE*` section) locked
//!   by `MmProbeAndLockPages` is resident and not trimmed until `MmUnlockPages`
//!   (`mm::paging::Pageable::pin`): Microsoft, *MmProbeAndLockPages*: the routine "makes them
//!   resident in physical memory, and locks the physical pages".
//! - `IoFreeMdl`: frees the MDL (and a system view it still had). Pages still locked stay
//!   locked, as on Windows: the caller's buffer then goes away with locked pages, 0x76 p1 = 0.
//!   <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iofreemdl>
#![allow(non_snake_case)]

use std::collections::HashMap;
use std::sync::Mutex;

use nt_abi::*;

use crate::ke::bugcheck::raise;
use crate::ke::thread::current;
use crate::ke::trap::{CaptureImpl, capture_entry, dispatch_exception, record};
use crate::machine::{System, lock};
use crate::mm::{MemClass, PAGE_SIZE};

/// What ntsim knows about an MDL beyond its fields.
#[derive(Clone, Copy, Debug, Default)]
struct MdlState {
    /// Pages this MDL locked in the caller's user-mode buffers (0 for kernel memory).
    user_pages: usize,
    /// The system view made by MmMapLockedPagesSpecifyCache: (base, length).
    view: Option<(usize, usize)>,
    /// The MDL locked pageable kernel memory (paged pool, a PAGE section): it stays resident
    /// under Force IRQL Checking until the unlock (`mm::paging`).
    pinned: bool,
}

/// MDLs by address.
#[derive(Default)]
pub(crate) struct Mdls {
    map: Mutex<HashMap<usize, MdlState>>,
}

const MDL_HEADER: usize = core::mem::size_of::<MDL>();

fn mdl_va(d: &MDL) -> usize {
    d.StartVa as usize + d.ByteOffset as usize
}

fn pages_of(d: &MDL) -> usize {
    address_and_size_to_span_pages(mdl_va(d), d.ByteCount as usize)
}

/// Allocate and initialize an MDL for `[va, va + len)` (MmInitializeMdl's fields).
pub(crate) fn allocate(m: &System, va: usize, len: u32) -> *mut MDL {
    let pages = address_and_size_to_span_pages(va, len as usize);
    let size = MDL_HEADER + pages * core::mem::size_of::<PFN_NUMBER>();
    if size > u16::MAX as usize {
        return core::ptr::null_mut();
    }
    let p = m.ex.pool.sys_alloc(size, "MDL").cast::<MDL>();
    // SAFETY: `p` is a fresh zeroed block of `size` ≥ sizeof(MDL) bytes, exclusively ours.
    let d = unsafe { &mut *p };
    d.Size = size as u16 as CSHORT;
    d.StartVa = (va & !(PAGE_SIZE - 1)) as PVOID;
    d.ByteOffset = (va & (PAGE_SIZE - 1)) as ULONG;
    d.ByteCount = len;
    lock(&m.io.mdls.map).insert(p as usize, MdlState::default());
    p
}

/// Fill the PFN array after the MDL header: ntsim's "page frame numbers" are the virtual
/// page numbers (there is no physical memory to name).
fn fill_pfns(mdl: *mut MDL, start_va: usize, pages: usize) {
    // SAFETY: an MDL is followed by one PFN_NUMBER per page it spans (its `Size`, set by
    // IoAllocateMdl or MmInitializeMdl), so the array of `pages` entries is inside the MDL's
    // storage, which the caller owns and nothing else accesses during this call.
    let pfns = unsafe {
        core::slice::from_raw_parts_mut((mdl as usize + MDL_HEADER) as *mut PFN_NUMBER, pages)
    };
    for (i, p) in pfns.iter_mut().enumerate() {
        *p = (start_va >> 12) + i;
    }
}

/// Why a probe failed: the status to raise and ExceptionInformation[0] (0 read, 1 write).
fn probe_and_lock(
    m: &System,
    mdl: *mut MDL,
    mode: KPROCESSOR_MODE,
    op: LOCK_OPERATION,
) -> Result<(), (NTSTATUS, u64, usize)> {
    // SAFETY: the caller passes an MDL (allocated by IoAllocateMdl or initialized in its own
    // storage with MmInitializeMdl); the header fields are plain data.
    let d = unsafe { &mut *mdl };
    let va = mdl_va(d);
    let len = d.ByteCount as usize;
    let write = op != IO_READ_ACCESS;
    let info = write as u64;
    let class = crate::ex::pool::classify(m, va);
    let user = crate::ex::pool::is_user_address(m, va, len);
    if user {
        if !m.mm.user.contains(va, len, write) {
            return Err((STATUS_ACCESS_VIOLATION, info, va));
        }
    } else if mode == USER_MODE || class == MemClass::Unknown {
        // A user-mode request for kernel memory, or an address that is nothing ntsim mapped.
        return Err((STATUS_ACCESS_VIOLATION, info, va));
    }
    let pages = pages_of(d);
    fill_pfns(mdl, d.StartVa as usize, pages);
    d.MdlFlags |= MDL_PAGES_LOCKED | if write { MDL_WRITE_OPERATION } else { 0 };
    let user_pages = if user { pages } else { 0 };
    if user {
        m.mm.user.add_locked(va, pages as isize);
    }
    let pinned = !user && m.mm.paging.pin(va, len, 1);
    let mut g = lock(&m.io.mdls.map);
    let st = g.entry(mdl as usize).or_default();
    st.user_pages = user_pages;
    st.pinned = pinned;
    Ok(())
}

/// Remove the MDL's system view, if it has one.
fn unmap(m: &System, mdl: *mut MDL) {
    let view = lock(&m.io.mdls.map)
        .get_mut(&(mdl as usize))
        .and_then(|s| s.view.take());
    if let Some((base, len)) = view {
        m.ex.pool.unregister_system(base);
        crate::mm::user::unmap_view(base, len);
    }
    // SAFETY: a live MDL of the caller; MdlFlags is plain data.
    unsafe { (*mdl).MdlFlags &= !MDL_MAPPED_TO_SYSTEM_VA };
}

/// Unlock without checks (the I/O manager's own MDLs at completion). Returns whether the
/// pages were locked.
fn unlock(m: &System, mdl: *mut MDL) -> bool {
    // SAFETY: a live MDL; plain-data header.
    let flags = unsafe { (*mdl).MdlFlags };
    if flags & MDL_PAGES_LOCKED == 0 {
        return false;
    }
    if flags & MDL_MAPPED_TO_SYSTEM_VA != 0 {
        unmap(m, mdl);
    }
    let (user_pages, pinned) = lock(&m.io.mdls.map)
        .get_mut(&(mdl as usize))
        .map(|s| {
            (
                core::mem::take(&mut s.user_pages),
                core::mem::take(&mut s.pinned),
            )
        })
        .unwrap_or((0, false));
    if pinned {
        // SAFETY: a live MDL; plain-data header.
        let d = unsafe { &*mdl };
        m.mm.paging.pin(mdl_va(d), d.ByteCount as usize, -1);
    }
    if user_pages > 0 {
        // SAFETY: a live MDL; plain-data header.
        let va = mdl_va(unsafe { &*mdl });
        m.mm.user.add_locked(va, -(user_pages as isize));
    }
    // SAFETY: a live MDL; plain-data header.
    unsafe { (*mdl).MdlFlags &= !(MDL_PAGES_LOCKED | MDL_WRITE_OPERATION) };
    true
}

fn free(m: &System, mdl: *mut MDL) {
    // SAFETY: a live MDL; plain-data header.
    if unsafe { (*mdl).MdlFlags } & MDL_MAPPED_TO_SYSTEM_VA != 0 {
        unmap(m, mdl);
    }
    if lock(&m.io.mdls.map).remove(&(mdl as usize)).is_some() {
        m.ex.pool.sys_free(mdl.cast());
    }
}

/// The I/O manager's MDL for a caller buffer (direct I/O): allocated, probed and locked for
/// `op` in user mode, as IoAllocateMdl + MmProbeAndLockPages. Null if that fails.
pub(crate) fn build_for_caller(m: &System, va: usize, len: u32, op: LOCK_OPERATION) -> *mut MDL {
    let mdl = allocate(m, va, len);
    if mdl.is_null() {
        return mdl;
    }
    if probe_and_lock(m, mdl, USER_MODE, op).is_err() {
        free(m, mdl);
        return core::ptr::null_mut();
    }
    mdl
}

/// An MDL for a driver's kernel buffer (IoBuild*Request with direct I/O): allocated, probed and
/// locked for `op` in kernel mode. Null if that fails.
pub(crate) fn build_for_kernel(m: &System, va: usize, len: u32, op: LOCK_OPERATION) -> *mut MDL {
    let mdl = allocate(m, va, len);
    if mdl.is_null() {
        return mdl;
    }
    if probe_and_lock(m, mdl, KERNEL_MODE, op).is_err() {
        free(m, mdl);
        return core::ptr::null_mut();
    }
    mdl
}

/// At completion, the I/O manager unlocks and frees every MDL of `Irp->MdlAddress`'s chain
/// (Microsoft, *Using Direct I/O*: the I/O manager releases the MDL when the IRP completes;
/// ReactOS `IopCompleteRequest`).
pub(crate) fn release_irp_mdls(m: &System, irp: *mut IRP) {
    // SAFETY: a live IRP the I/O manager built; MdlAddress is plain data.
    let mut cur = unsafe { (*irp).MdlAddress }.cast::<MDL>();
    while !cur.is_null() {
        // SAFETY: every MDL of the chain is live (the driver may not free an IRP's MDLs).
        let next = unsafe { (*cur).Next };
        unlock(m, cur);
        free(m, cur);
        cur = next;
    }
    // SAFETY: as above.
    unsafe { (*irp).MdlAddress = core::ptr::null_mut() };
}

/// `IoAllocateMdl`.
///
/// # Safety
/// `Irp` must be null or an IRP the caller owns.
pub unsafe extern "win64" fn IoAllocateMdl(
    VirtualAddress: PVOID,
    Length: ULONG,
    SecondaryBuffer: BOOLEAN,
    _ChargeQuota: BOOLEAN,
    Irp: *mut IRP,
) -> PMDL {
    let m = current();
    let mdl = allocate(&m, VirtualAddress as usize, Length);
    if mdl.is_null() || Irp.is_null() {
        return mdl;
    }
    // SAFETY: the caller's IRP (contract); MdlAddress is plain data.
    let irp = unsafe { &mut *Irp };
    let head = irp.MdlAddress.cast::<MDL>();
    if SecondaryBuffer == 0 || head.is_null() {
        irp.MdlAddress = mdl.cast();
        return mdl;
    }
    let mut last = head;
    loop {
        // SAFETY: every MDL of an IRP's chain is a live MDL; `Next` is plain data.
        let next = unsafe { (*last).Next };
        if next.is_null() {
            break;
        }
        last = next;
    }
    // SAFETY: `last` is the live last MDL of the chain.
    unsafe { (*last).Next = mdl };
    mdl
}

/// `IoFreeMdl`.
///
/// # Safety
/// `Mdl` must be an MDL from IoAllocateMdl.
pub unsafe extern "win64" fn IoFreeMdl(Mdl: PMDL) {
    let m = current();
    if !Mdl.is_null() {
        free(&m, Mdl);
    }
}

capture_entry!("ntsim_MmProbeAndLockPages", probe_and_lock_entry);
const _: CaptureImpl = probe_and_lock_entry;

unsafe extern "win64" {
    /// `MmProbeAndLockPages` (raises STATUS_ACCESS_VIOLATION from the caller's context).
    #[link_name = "ntsim_MmProbeAndLockPages"]
    pub fn MmProbeAndLockPages(
        MemoryDescriptorList: PMDL,
        AccessMode: KPROCESSOR_MODE,
        Operation: LOCK_OPERATION,
    );
}

extern "win64" fn probe_and_lock_entry(mdl: u64, mode: u64, op: u64, _: u64, ctx: *mut CONTEXT) {
    let m = current();
    if let Err((code, rw, va)) = probe_and_lock(
        &m,
        mdl as *mut MDL,
        mode as KPROCESSOR_MODE,
        op as LOCK_OPERATION,
    ) {
        // SAFETY: the capture entry passes its own live copy of the caller's context.
        let c = unsafe { &mut *ctx };
        let mut rec = record(code, EXCEPTION_NONCONTINUABLE, c.Rip, &[rw, va as u64]);
        dispatch_exception(&mut rec, c)
    }
}

/// `MmUnlockPages`.
///
/// # Safety
/// `MemoryDescriptorList` must be a live MDL.
pub unsafe extern "win64" fn MmUnlockPages(MemoryDescriptorList: PMDL) {
    let m = current();
    if !unlock(&m, MemoryDescriptorList) {
        // SAFETY: a live MDL; plain-data header.
        let va = mdl_va(unsafe { &*MemoryDescriptorList });
        let locked = m.mm.user.add_locked(va, 0).unwrap_or(0);
        if let Some(bc) = m
            .verifier
            .on_unlock_not_locked(MemoryDescriptorList as usize, locked)
        {
            raise(&m, bc);
        }
    }
}

/// `MmMapLockedPagesSpecifyCache`.
///
/// # Safety
/// `MemoryDescriptorList` must be a live MDL.
pub unsafe extern "win64" fn MmMapLockedPagesSpecifyCache(
    MemoryDescriptorList: PMDL,
    AccessMode: KPROCESSOR_MODE,
    _CacheType: MEMORY_CACHING_TYPE,
    _RequestedAddress: PVOID,
    _BugCheckOnFailure: ULONG,
    _Priority: ULONG,
) -> PVOID {
    let m = current();
    let mdl = MemoryDescriptorList;
    // SAFETY: a live MDL of the caller; plain-data header.
    let d = unsafe { &mut *mdl };
    if d.MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
        return d.MappedSystemVa;
    }
    if AccessMode != KERNEL_MODE || d.MdlFlags & MDL_PAGES_LOCKED == 0 {
        return core::ptr::null_mut();
    }
    let user_pages = lock(&m.io.mdls.map)
        .get(&(mdl as usize))
        .map_or(0, |s| s.user_pages);
    let va = mdl_va(d);
    let system = if user_pages > 0 {
        let len = user_pages * PAGE_SIZE;
        let Some(view) = m.mm.user.map_view(d.StartVa as usize, len) else {
            return core::ptr::null_mut();
        };
        m.ex.pool.register_system(view, len, "MDL system mapping");
        lock(&m.io.mdls.map).entry(mdl as usize).or_default().view = Some((view, len));
        view + d.ByteOffset as usize
    } else {
        // Locked kernel memory is already in system space.
        va
    };
    d.MappedSystemVa = system as PVOID;
    d.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
    d.MappedSystemVa
}

/// `MmUnmapLockedPages`.
///
/// # Safety
/// `MemoryDescriptorList` must be a live MDL mapped at `BaseAddress`.
pub unsafe extern "win64" fn MmUnmapLockedPages(BaseAddress: PVOID, MemoryDescriptorList: PMDL) {
    let m = current();
    // SAFETY: a live MDL; plain-data header.
    let d = unsafe { &*MemoryDescriptorList };
    if d.MdlFlags & MDL_MAPPED_TO_SYSTEM_VA != 0 && d.MappedSystemVa == BaseAddress {
        unmap(&m, MemoryDescriptorList);
    }
}

/// `MmBuildMdlForNonPagedPool`.
///
/// # Safety
/// `MemoryDescriptorList` must be a live MDL describing nonpaged memory.
pub unsafe extern "win64" fn MmBuildMdlForNonPagedPool(MemoryDescriptorList: PMDL) {
    let _m = current();
    let mdl = MemoryDescriptorList;
    // SAFETY: a live MDL; plain-data header.
    let d = unsafe { &mut *mdl };
    fill_pfns(mdl, d.StartVa as usize, pages_of(d));
    d.MappedSystemVa = mdl_va(d) as PVOID;
    d.MdlFlags |= MDL_SOURCE_IS_NONPAGED_POOL;
}
