//! IRP forwarding (stream ioverify): driver-allocated and driver-built IRPs, IoCallDriver,
//! device stacks, and the completion walk of IofCompleteRequest that runs each stack location's
//! completion routine.
//!
//! Semantics (Microsoft's pages for each routine, and ReactOS ntoskrnl/io/iomgr/irp.c and
//! device.c for the mechanics):
//! - An IRP is `sizeof(IRP)` (0xD0) followed by `StackCount` stack locations. `IoInitializeIrp`
//!   sets `CurrentLocation = StackCount + 1` and `Tail.Overlay.CurrentStackLocation` one past the
//!   last location, so the WDK's inline `IoGetNextIrpStackLocation` (CurrentStackLocation − 1)
//!   is the location the first driver receives. `IofCallDriver` decrements both (0x35 when
//!   `CurrentLocation` reaches 0), stores the device in the new location and calls the dispatch
//!   routine of its `MajorFunction` (Microsoft, *IoCallDriver*, *IoAllocateIrp*,
//!   *IoInitializeIrp*, *IoGetNextIrpStackLocation*).
//! - `IofCompleteRequest` walks from the current location up: for each it sets
//!   `Irp->PendingReturned` from SL_PENDING_RETURNED, clears the location, and calls the
//!   completion routine IoSetCompletionRoutine stored there when SL_INVOKE_ON_SUCCESS /
//!   _ON_ERROR / _ON_CANCEL matches the status (with the device of the location above, NULL for
//!   the topmost); STATUS_MORE_PROCESSING_REQUIRED stops the walk, and the IRP is the routine's
//!   driver's again. Without a routine, a pending return is propagated with IoMarkIrpPending on
//!   the location above. 0x44 when `CurrentLocation > StackCount + 1` (already completed)
//!   (Microsoft, *IoCompleteRequest*, *IoSetCompletionRoutine*, *Implementing an IoCompletion
//!   Routine*; ReactOS `IofCompleteRequest`).
//! - Threaded IRPs from `IoBuildDeviceIoControlRequest` / `IoBuildSynchronousFsdRequest` are
//!   finished by the I/O manager when the walk reaches the top: buffered output copied to the
//!   caller's buffer, MDLs unlocked and freed, `*UserIosb` written, the IRP freed, `UserEvent`
//!   signalled (ReactOS `IopCompleteRequest`). IRPs from `IoAllocateIrp` and
//!   `IoBuildAsynchronousFsdRequest` must be taken back by a completion routine returning
//!   STATUS_MORE_PROCESSING_REQUIRED and freed with `IoFreeIrp` (Microsoft, *IoAllocateIrp*,
//!   *IoBuildAsynchronousFsdRequest*).
//! - `IoAttachDeviceToDeviceStack` attaches on top of the target's stack, sets the new device's
//!   `StackSize` to the old top's + 1 and returns the old top; requests the I/O manager sends
//!   to a device go to the top of its stack (Microsoft, *IoAttachDeviceToDeviceStack*,
//!   *IoGetAttachedDeviceReference*; ReactOS `IoGetAttachedDevice`, `IopAttachDeviceToDeviceStackSafe`).
//!
//! IRP memory: with I/O verification on, every IRP (the I/O manager's and drivers') is in
//! special pool, as Driver Verifier's level-1 I/O verification allocates IRPs from special pool
//! (Microsoft, *I/O Verification*), so a touch or free of an IRP after its final completion is
//! 0xD5. Without it, IRPs drivers allocate are still on pages of their own (a touch after free
//! is 0x50, `documented_only`); the I/O manager's own are heap memory.
#![allow(non_snake_case)]

use std::collections::HashMap;
use std::mem::{offset_of, size_of};
use std::sync::Mutex;

use nt_abi::bugcheck;
use nt_abi::*;

use crate::ids::{DeviceId, ObjectId};
use crate::ke::bugcheck::raise;
use crate::ke::thread::{self, current};
use crate::machine::{System, lock};
use crate::mm::special::{SpecialFault, SpecialPoolMode};
use crate::ob::ObjKind;
use crate::verifier::{Bc, CallDriver, no_more_irp_stack_locations};

use super::driver::driver_id_of;

const STACK: usize = size_of::<IO_STACK_LOCATION>();
const IRP_BASE: usize = size_of::<IRP>();
/// `Irp->Tail.Overlay.CurrentStackLocation` (Overlay is at offset 0 of the Tail union).
const CUR_STACK: usize = offset_of!(IRP, Tail) + offset_of!(IRP_TAIL_OVERLAY, CurrentStackLocation);
/// `Irp->Tail.Overlay.Thread`.
const THREAD: usize = offset_of!(IRP, Tail) + offset_of!(IRP_TAIL_OVERLAY, Thread);
/// `Irp->CurrentLocation`: what IoCompleteRequest reads first.
const CURRENT_LOCATION: usize = offset_of!(IRP, CurrentLocation);

/// Where an IRP's memory came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mem {
    /// Special pool (I/O verification).
    Special,
    /// An ntsim object on pages of its own.
    Object,
    /// ntsim's heap.
    Heap,
    /// The driver's own storage (IoInitializeIrp).
    Caller,
}

/// What the I/O manager finishes when a driver-built IRP's walk reaches the top.
struct BuiltReq {
    /// A threaded IRP (IoBuildDeviceIoControlRequest / IoBuildSynchronousFsdRequest).
    threaded: bool,
    /// The system buffer ntsim allocated (0 if none).
    sysbuf: usize,
    /// The driver's buffer that receives buffered output (0 if none), and its length.
    copy_to: usize,
    out_len: usize,
}

enum Origin {
    /// IoAllocateIrp.
    Allocated,
    /// IoInitializeIrp on the driver's storage.
    Initialized,
    /// IoBuild*Request.
    Built(BuiltReq),
}

struct DrvIrp {
    mem: Mem,
    origin: Origin,
}

#[derive(Default)]
struct Inner {
    /// IRPs drivers allocated, built or initialized, by address.
    irps: HashMap<usize, DrvIrp>,
    /// The memory kind of the I/O manager's own IRPs.
    io_mem: HashMap<usize, Mem>,
    /// Upper device → the device it is attached to (Windows' DEVOBJ_EXTENSION.AttachedTo).
    attached_to: HashMap<usize, usize>,
    /// Per IRP: the stack locations completed so far (bit k = location k) and which of them
    /// had SL_PENDING_RETURNED when they completed (for the 0x23D / 0x23E rules).
    marks: HashMap<usize, (u128, u128)>,
    /// Dispatch routines that returned before their stack location completed, by (IRP,
    /// location): the 0x23D / 0x23E check runs when the location completes (a filter that
    /// returns the lower driver's STATUS_PENDING marks its own location in its completion
    /// routine, which runs later).
    returned: HashMap<(usize, usize), Returned>,
}

/// A dispatch routine's return, waiting for its stack location to complete.
#[derive(Clone, Copy)]
struct Returned {
    dispatch: usize,
    device: usize,
    status: NTSTATUS,
}

impl Inner {
    /// Forget the completion state of `irp` (freed, or reinitialized).
    fn forget(&mut self, irp: usize) {
        self.marks.remove(&irp);
        self.returned.retain(|&(i, _), _| i != irp);
    }
}

/// The forwarding state of the I/O manager.
#[derive(Default)]
pub(crate) struct Forward {
    inner: Mutex<Inner>,
}

fn bit(k: usize) -> u128 {
    1u128 << (k & 127)
}

fn alloc_mem(m: &System, size: usize, driver: bool) -> Option<(usize, Mem)> {
    if m.verifier.irps_in_special_pool() {
        let p = m.mm.special.alloc(size, SpecialPoolMode::Overrun)?;
        m.ex.pool.register_system(p, size, "IRP");
        return Some((p, Mem::Special));
    }
    if driver {
        let p = m.ex.pool.sys_alloc_object(&m.mm, size, "IRP");
        return Some((p as usize, Mem::Object));
    }
    Some((m.ex.pool.sys_alloc(size, "IRP") as usize, Mem::Heap))
}

fn free_mem(m: &System, p: usize, mem: Mem) {
    match mem {
        Mem::Special => {
            m.ex.pool.unregister_system(p);
            m.mm.special.free(p);
        }
        Mem::Object => {
            m.ex.pool.sys_free_object(&m.mm, p as *mut u8);
        }
        Mem::Heap => m.ex.pool.sys_free(p as *mut u8),
        Mem::Caller => {}
    }
}

/// Memory for an IRP the I/O manager builds for a request (zeroed).
pub(crate) fn alloc_io_irp(m: &System, size: usize) -> *mut u8 {
    let Some((p, mem)) = alloc_mem(m, size, false) else {
        // Special pool could not map: the heap still works (the IRP is just not guarded).
        return m.ex.pool.sys_alloc(size, "IRP");
    };
    lock(&m.io.fwd.inner).io_mem.insert(p, mem);
    p as *mut u8
}

/// Free an IRP from [`alloc_io_irp`] (after the request's final completion).
pub(crate) fn free_io_irp(m: &System, p: *mut u8) {
    let mem = {
        let mut g = lock(&m.io.fwd.inner);
        g.forget(p as usize);
        g.io_mem.remove(&(p as usize))
    };
    free_mem(m, p as usize, mem.unwrap_or(Mem::Heap));
}

/// The top of `dev`'s device stack (`IoGetAttachedDevice`).
pub(crate) fn attached_top(dev: *mut DEVICE_OBJECT) -> *mut DEVICE_OBJECT {
    let mut top = dev;
    for _ in 0..64 {
        // SAFETY: `top` is a live device object: ntsim's devices stay mapped while attached
        // (IoAttachDeviceToDeviceStack references the lower one), AttachedDevice is plain data.
        let next = unsafe { (*top).AttachedDevice };
        if next.is_null() {
            break;
        }
        top = next;
    }
    top
}

fn is_device(m: &System, dev: usize) -> bool {
    m.ob.header(ObjectId(dev))
        .is_some_and(|h| h.kind() == ObjKind::Device)
}

/// Read the `T` at `addr` inside an IRP.
///
/// # Safety
/// `addr` must lie in a live IRP, or in the freed special-pool pages of one (the read then
/// faults into the special-pool bug check, which does not return).
unsafe fn get<T: Copy>(addr: usize) -> T {
    // SAFETY: per the contract; IRP members are plain data.
    unsafe { (addr as *const T).read_volatile() }
}

/// Write the `T` at `addr` inside an IRP.
///
/// # Safety
/// As [`get`].
unsafe fn put<T>(addr: usize, v: T) {
    // SAFETY: per the contract.
    unsafe { (addr as *mut T).write_volatile(v) }
}

/// `IoInitializeIrp`'s work on `size` bytes at `irp`.
///
/// # Safety
/// `irp` must be writable for `size` bytes, which must hold an IRP and `stack` locations.
unsafe fn init_irp(irp: usize, size: usize, stack: i8) {
    // SAFETY: writable for `size` bytes per the contract.
    unsafe { core::ptr::write_bytes(irp as *mut u8, 0, size) };
    let i = irp as *mut IRP;
    // SAFETY: the fields of the IRP at the start of the block (plain data).
    unsafe { (*i).Type = IO_TYPE_IRP };
    // SAFETY: as above.
    unsafe { (*i).Size = size as u16 };
    // SAFETY: as above.
    unsafe { (*i).StackCount = stack };
    // SAFETY: as above.
    unsafe { (*i).CurrentLocation = stack.wrapping_add(1) };
    let list = irp + offset_of!(IRP, ThreadListEntry);
    // SAFETY: an empty LIST_ENTRY points at itself (InitializeListHead).
    unsafe {
        put(
            list,
            LIST_ENTRY {
                Flink: list as *mut LIST_ENTRY,
                Blink: list as *mut LIST_ENTRY,
            },
        )
    };
    let past = irp + IRP_BASE + stack.max(0) as usize * STACK;
    // SAFETY: the tail pointer of the IRP (plain data): one past the last stack location.
    unsafe { put(irp + CUR_STACK, past) };
}

fn register(m: &System, irp: usize, d: DrvIrp) {
    let mut g = lock(&m.io.fwd.inner);
    g.forget(irp);
    g.irps.insert(irp, d);
}

/// The bug check for a driver touching the freed (special-pool) IRP at `irp`, if it is one.
fn freed_irp_touch(m: &System, irp: usize, offset: usize, caller: usize) -> Option<Bc> {
    match m.mm.special.fault_at(irp) {
        Some(SpecialFault::Freed { .. }) => {
            Some(
                m.verifier
                    .on_special_pool_fault(true, irp + offset, false, caller, false),
            )
        }
        _ => None,
    }
}

/// `IoAllocateIrp`: an IRP with `StackSize` locations, initialized as IoInitializeIrp does, not
/// associated with a thread. NULL if `StackSize` < 1 or memory is short.
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn IoAllocateIrp(StackSize: CCHAR, _ChargeQuota: BOOLEAN) -> *mut IRP {
    let m = current();
    if StackSize < 1 {
        return core::ptr::null_mut();
    }
    let size = io_size_of_irp(StackSize as usize);
    let Some((p, mem)) = alloc_mem(&m, size, true) else {
        return core::ptr::null_mut();
    };
    // SAFETY: `p` is a fresh block of `size` bytes.
    unsafe { init_irp(p, size, StackSize) };
    register(
        &m,
        p,
        DrvIrp {
            mem,
            origin: Origin::Allocated,
        },
    );
    p as *mut IRP
}

/// `IoInitializeIrp`: zero `PacketSize` bytes of the caller's storage and make them an IRP
/// with `StackSize` locations.
///
/// # Safety
/// `Irp` must be writable nonpaged storage of `PacketSize` bytes (IoSizeOfIrp(StackSize)).
pub unsafe extern "win64" fn IoInitializeIrp(Irp: *mut IRP, PacketSize: USHORT, StackSize: CCHAR) {
    let m = current();
    let a = Irp as usize;
    if let Some(bc) = freed_irp_touch(&m, a, 0, thread::caller()) {
        raise(&m, bc);
    }
    // SAFETY: writable for PacketSize bytes per the contract.
    unsafe { init_irp(a, PacketSize as usize, StackSize) };
    let mut g = lock(&m.io.fwd.inner);
    g.forget(a);
    g.irps.entry(a).or_insert(DrvIrp {
        mem: Mem::Caller,
        origin: Origin::Initialized,
    });
}

/// `IoReuseIrp`: reinitialize an IRP for reuse (keeping its allocation), with `Iostatus`.
///
/// # Safety
/// `Irp` must be an IRP from IoAllocateIrp (or IoInitializeIrp) that no driver uses.
pub unsafe extern "win64" fn IoReuseIrp(Irp: *mut IRP, Iostatus: NTSTATUS) {
    let m = current();
    let a = Irp as usize;
    if let Some(bc) = freed_irp_touch(&m, a, 0, thread::caller()) {
        raise(&m, bc);
    }
    // SAFETY: a live IRP per the contract; Size, StackCount, AllocationFlags are plain data.
    let i = unsafe { &*Irp };
    let (size, stack, flags) = (i.Size, i.StackCount, i.AllocationFlags);
    // SAFETY: the IRP's own Size bytes.
    unsafe { init_irp(a, size as usize, stack) };
    // SAFETY: as above: the reinitialized IRP, not in use by any driver.
    let i = unsafe { &mut *Irp };
    i.AllocationFlags = flags;
    i.IoStatus.u.Status = Iostatus;
    lock(&m.io.fwd.inner).forget(a);
}

/// `IoFreeIrp`. With I/O verification: 0xC9/0x01 (not an IRP), 0x02 (an IRP a thread owns:
/// the I/O manager's, or a threaded IoBuild*Request IRP before completion), 0x20B (sent and not
/// completed). A freed IRP in special pool is 0xD5 (IoFreeIrp reads it).
///
/// # Safety
/// `Irp` should be an IRP the caller allocated and owns.
pub unsafe extern "win64" fn IoFreeIrp(Irp: *mut IRP) {
    let m = current();
    let a = Irp as usize;
    let caller = thread::caller();
    if Irp.is_null() {
        return;
    }
    let known_io = m.io.irps.contains(a);
    let known = known_io || lock(&m.io.fwd.inner).irps.contains_key(&a);
    if !known {
        if let Some(bc) = freed_irp_touch(&m, a, 0, caller) {
            raise(&m, bc);
        }
        // IoFreeIrp returns the IRP to pool: an IRP freed before (its pages of their own,
        // inaccessible now) is a double free, anything else an address pool never gave out.
        let freed = matches!(
            m.mm.special.fault_at(a),
            Some(SpecialFault::SystemObject { freed: true, .. })
        );
        raise(&m, m.verifier.on_bad_free(a, freed.then_some(0)));
    }
    // SAFETY: a live IRP (registered above); plain-data fields.
    let i = unsafe { &*Irp };
    let (ty, cur, count) = (i.Type, i.CurrentLocation, i.StackCount);
    let threaded = known_io
        || matches!(
            lock(&m.io.fwd.inner).irps.get(&a).map(|d| &d.origin),
            Some(Origin::Built(BuiltReq { threaded: true, .. }))
        );
    // Sent and not completed: its current location was handed to a driver (CurrentLocation
    // ≤ StackCount) and has not completed since.
    let in_use = cur >= 1
        && cur <= count
        && lock(&m.io.fwd.inner)
            .marks
            .get(&a)
            .is_none_or(|(done, _)| done & bit(cur as usize - 1) == 0);
    if let Some(bc) = m
        .verifier
        .on_free_irp(a, ty == IO_TYPE_IRP, threaded, in_use, caller)
    {
        raise(&m, bc);
    }
    if known_io {
        // The I/O manager still owns it (Windows would free it under the I/O manager, which
        // then uses freed memory): ntsim leaves it to the I/O manager.
        return;
    }
    let d = {
        let mut g = lock(&m.io.fwd.inner);
        g.forget(a);
        g.irps.remove(&a)
    };
    let Some(d) = d else { return };
    if let Origin::Built(b) = &d.origin
        && b.sysbuf != 0
    {
        m.ex.pool.sys_free(b.sysbuf as *mut u8);
    }
    if d.mem != Mem::Caller {
        super::mdl::release_irp_mdls(&m, Irp);
    }
    match d.mem {
        // IoFreeIrp of an IRP on the caller's storage returns that storage to pool.
        Mem::Caller => crate::ex::pool::free_block(&m, a, None),
        mem => free_mem(&m, a, mem),
    }
}

/// Build a driver's request (IoBuildDeviceIoControlRequest / IoBuild*FsdRequest).
struct Build {
    mj: u8,
    device: *mut DEVICE_OBJECT,
    code: u32,
    input: usize,
    in_len: u32,
    /// The output buffer (IOCTL), or the buffer of a read/write.
    output: usize,
    out_len: u32,
    offset: i64,
    event: *mut KEVENT,
    iosb: *mut IO_STATUS_BLOCK,
    threaded: bool,
}

fn build_request(m: &System, b: &Build) -> *mut IRP {
    if b.device.is_null() || !is_device(m, b.device as usize) {
        return core::ptr::null_mut();
    }
    // SAFETY: a live device object ntsim created (checked above); plain data.
    let d = unsafe { &*b.device };
    let (stack, dev_flags) = (d.StackSize.max(1), d.Flags);
    let size = io_size_of_irp(stack as usize);
    let Some((p, mem)) = alloc_mem(m, size, true) else {
        return core::ptr::null_mut();
    };
    // SAFETY: a fresh block of `size` bytes.
    unsafe { init_irp(p, size, stack) };
    let irp = p as *mut IRP;
    let mut flags = 0u32;
    let mut sysbuf = 0usize;
    let mut copy_to = 0usize;
    let mut user_buffer = b.output;
    let mut type3 = 0usize;
    let mut mdl_for: Option<(usize, u32, LOCK_OPERATION)> = None;
    let new_sysbuf = |n: usize, data: usize, data_len: usize, flags: &mut u32| -> usize {
        if n == 0 {
            return 0;
        }
        let s = m.ex.pool.sys_alloc(n, "SystemBuffer");
        if data != 0 && data_len > 0 {
            // SAFETY: the driver's input buffer of `data_len` ≤ n bytes (its contract with
            // IoBuild*Request) and the fresh system buffer of n bytes.
            unsafe { core::ptr::copy_nonoverlapping(data as *const u8, s, data_len) };
        }
        *flags |= IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER;
        s as usize
    };
    let (in_len, out_len) = (b.in_len as usize, b.out_len as usize);
    match b.mj {
        IRP_MJ_DEVICE_CONTROL | IRP_MJ_INTERNAL_DEVICE_CONTROL => match ctl_method(b.code) {
            METHOD_BUFFERED => {
                sysbuf = new_sysbuf(in_len.max(out_len), b.input, in_len, &mut flags);
                if out_len > 0 && sysbuf != 0 {
                    flags |= IRP_INPUT_OPERATION;
                    copy_to = b.output;
                }
            }
            METHOD_IN_DIRECT | METHOD_OUT_DIRECT => {
                sysbuf = new_sysbuf(in_len, b.input, in_len, &mut flags);
                if out_len > 0 && b.output != 0 {
                    let op = if ctl_method(b.code) == METHOD_IN_DIRECT {
                        IO_READ_ACCESS
                    } else {
                        IO_WRITE_ACCESS
                    };
                    mdl_for = Some((b.output, b.out_len, op));
                }
            }
            _ => type3 = b.input,
        },
        IRP_MJ_READ | IRP_MJ_WRITE => {
            let read = b.mj == IRP_MJ_READ;
            check_buffer_flags(m, b.device, dev_flags);
            if dev_flags & DO_BUFFERED_IO != 0 {
                let data = if read { 0 } else { b.output };
                sysbuf = new_sysbuf(out_len, data, out_len, &mut flags);
                if read && sysbuf != 0 {
                    flags |= IRP_INPUT_OPERATION;
                    copy_to = b.output;
                }
            } else if dev_flags & DO_DIRECT_IO != 0 && out_len > 0 {
                let op = if read {
                    IO_WRITE_ACCESS
                } else {
                    IO_READ_ACCESS
                };
                mdl_for = Some((b.output, b.out_len, op));
            }
        }
        _ => user_buffer = 0,
    }
    if let Some((va, len, op)) = mdl_for {
        let mdl = super::mdl::build_for_kernel(m, va, len, op);
        if mdl.is_null() {
            if sysbuf != 0 {
                m.ex.pool.sys_free(sysbuf as *mut u8);
            }
            free_mem(m, p, mem);
            return core::ptr::null_mut();
        }
        // SAFETY: the fresh IRP; plain data.
        unsafe { (*irp).MdlAddress = mdl.cast() };
    }
    // SAFETY: the fresh IRP, exclusively ours until returned; plain-data fields.
    let i = unsafe { &mut *irp };
    i.Flags = flags | if b.threaded { IRP_SYNCHRONOUS_API } else { 0 };
    i.AssociatedIrp.SystemBuffer = sysbuf as PVOID;
    i.UserBuffer = user_buffer as PVOID;
    i.UserIosb = b.iosb;
    i.UserEvent = b.event;
    i.RequestorMode = KERNEL_MODE;
    // SAFETY: as above (the tail's Thread pointer).
    unsafe { put(p + THREAD, crate::ke::cpu::current_thread()) };
    // The next stack location: the one the target device's driver receives.
    let sl = (p + IRP_BASE + (stack as usize - 1) * STACK) as *mut IO_STACK_LOCATION;
    // SAFETY: the last stack location of the fresh IRP, exclusively ours; plain data.
    let slr = unsafe { &mut *sl };
    slr.MajorFunction = b.mj;
    match b.mj {
        IRP_MJ_DEVICE_CONTROL | IRP_MJ_INTERNAL_DEVICE_CONTROL => {
            slr.Parameters.DeviceIoControl = DEVICE_IO_CONTROL_PARAMETERS {
                OutputBufferLength: b.out_len,
                _pad0: 0,
                InputBufferLength: b.in_len,
                _pad1: 0,
                IoControlCode: b.code,
                _pad2: 0,
                Type3InputBuffer: type3 as PVOID,
            };
        }
        IRP_MJ_READ | IRP_MJ_WRITE => {
            slr.Parameters.Read = READ_WRITE_PARAMETERS {
                Length: b.out_len,
                _pad0: 0,
                Key: 0,
                Flags: 0,
                ByteOffset: LARGE_INTEGER { QuadPart: b.offset },
            };
        }
        _ => {}
    }
    register(
        m,
        p,
        DrvIrp {
            mem,
            origin: Origin::Built(BuiltReq {
                threaded: b.threaded,
                sysbuf,
                copy_to,
                out_len,
            }),
        },
    );
    irp
}

/// Both DO_BUFFERED_IO and DO_DIRECT_IO on the target of a read or write (0xC9/0x245).
pub(crate) fn check_buffer_flags(m: &System, device: *mut DEVICE_OBJECT, flags: ULONG) {
    let both = DO_BUFFERED_IO | DO_DIRECT_IO;
    if flags & both == both
        && let Some(bc) = m.verifier.on_buffered_and_direct(device as usize)
    {
        raise(m, bc);
    }
}

/// `IoBuildDeviceIoControlRequest`: a threaded IRP_MJ_DEVICE_CONTROL (or INTERNAL_) request
/// for `DeviceObject`, its buffers described by the method of `IoControlCode` as for a user
/// request (METHOD_BUFFERED: a system buffer, output copied back at completion; DIRECT: the
/// input in a system buffer, an MDL locked for the output; NEITHER: Type3InputBuffer and
/// UserBuffer are the caller's). At completion `*IoStatusBlock` is written, the IRP freed and
/// `Event` signalled (Microsoft, *IoBuildDeviceIoControlRequest*).
///
/// # Safety
/// The buffers must be valid kernel memory of the given lengths; `Event` an initialized event
/// or NULL; `IoStatusBlock` writable until completion.
pub unsafe extern "win64" fn IoBuildDeviceIoControlRequest(
    IoControlCode: ULONG,
    DeviceObject: *mut DEVICE_OBJECT,
    InputBuffer: PVOID,
    InputBufferLength: ULONG,
    OutputBuffer: PVOID,
    OutputBufferLength: ULONG,
    InternalDeviceIoControl: BOOLEAN,
    Event: *mut KEVENT,
    IoStatusBlock: *mut IO_STATUS_BLOCK,
) -> *mut IRP {
    let m = current();
    build_request(
        &m,
        &Build {
            mj: if InternalDeviceIoControl != 0 {
                IRP_MJ_INTERNAL_DEVICE_CONTROL
            } else {
                IRP_MJ_DEVICE_CONTROL
            },
            device: DeviceObject,
            code: IoControlCode,
            input: InputBuffer as usize,
            in_len: InputBufferLength,
            output: OutputBuffer as usize,
            out_len: OutputBufferLength,
            offset: 0,
            event: Event,
            iosb: IoStatusBlock,
            threaded: true,
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn fsd(
    MajorFunction: ULONG,
    DeviceObject: *mut DEVICE_OBJECT,
    Buffer: PVOID,
    Length: ULONG,
    StartingOffset: *mut LARGE_INTEGER,
    Event: *mut KEVENT,
    IoStatusBlock: *mut IO_STATUS_BLOCK,
    threaded: bool,
) -> *mut IRP {
    let m = current();
    let mj = MajorFunction as u8;
    if MajorFunction > IRP_MJ_MAXIMUM_FUNCTION as u32 {
        return core::ptr::null_mut();
    }
    let offset = if StartingOffset.is_null() {
        0
    } else {
        // SAFETY: a valid LARGE_INTEGER per the routine's contract.
        let li = unsafe { &*StartingOffset };
        // SAFETY: every bit pattern is a valid i64 (QuadPart overlays the two halves).
        unsafe { li.QuadPart }
    };
    build_request(
        &m,
        &Build {
            mj,
            device: DeviceObject,
            code: 0,
            input: 0,
            in_len: 0,
            output: Buffer as usize,
            out_len: Length,
            offset,
            event: Event,
            iosb: IoStatusBlock,
            threaded,
        },
    )
}

/// `IoBuildSynchronousFsdRequest`: a threaded IRP_MJ_READ / WRITE / FLUSH_BUFFERS / SHUTDOWN
/// request; the buffer is described by the device's DO_BUFFERED_IO / DO_DIRECT_IO flag as for
/// a user request; completion as IoBuildDeviceIoControlRequest (Microsoft,
/// *IoBuildSynchronousFsdRequest*).
///
/// # Safety
/// As [`IoBuildDeviceIoControlRequest`]; `StartingOffset` NULL or valid.
pub unsafe extern "win64" fn IoBuildSynchronousFsdRequest(
    MajorFunction: ULONG,
    DeviceObject: *mut DEVICE_OBJECT,
    Buffer: PVOID,
    Length: ULONG,
    StartingOffset: *mut LARGE_INTEGER,
    Event: *mut KEVENT,
    IoStatusBlock: *mut IO_STATUS_BLOCK,
) -> *mut IRP {
    fsd(
        MajorFunction,
        DeviceObject,
        Buffer,
        Length,
        StartingOffset,
        Event,
        IoStatusBlock,
        true,
    )
}

/// `IoBuildAsynchronousFsdRequest`: as the synchronous form without an event and not
/// threaded: the caller's completion routine takes it back (STATUS_MORE_PROCESSING_REQUIRED)
/// and frees it with IoFreeIrp (Microsoft, *IoBuildAsynchronousFsdRequest*).
///
/// # Safety
/// As [`IoBuildSynchronousFsdRequest`].
pub unsafe extern "win64" fn IoBuildAsynchronousFsdRequest(
    MajorFunction: ULONG,
    DeviceObject: *mut DEVICE_OBJECT,
    Buffer: PVOID,
    Length: ULONG,
    StartingOffset: *mut LARGE_INTEGER,
    IoStatusBlock: *mut IO_STATUS_BLOCK,
) -> *mut IRP {
    fsd(
        MajorFunction,
        DeviceObject,
        Buffer,
        Length,
        StartingOffset,
        core::ptr::null_mut(),
        IoStatusBlock,
        false,
    )
}

/// The 0x23D / 0x23E check after `dispatch` (called for `dev` with the IRP at stack location
/// `k`) returned `status`: now if location k has completed, else when it completes ([`walk`]).
fn dispatch_return_rule(
    m: &System,
    dispatch: usize,
    irp: usize,
    dev: usize,
    status: NTSTATUS,
    k: usize,
) -> Option<Bc> {
    if !m.verifier.io_verification() {
        return None;
    }
    if let Some(bc) = m.verifier.on_dispatch_status(dispatch, irp, dev, status) {
        return Some(bc);
    }
    let mut g = lock(&m.io.fwd.inner);
    if let Some((done, pend)) = g.marks.get(&irp).copied()
        && done & bit(k) != 0
    {
        drop(g);
        return m
            .verifier
            .on_dispatch_pending(dispatch, irp, dev, status, pend & bit(k) != 0);
    }
    g.returned.insert(
        (irp, k),
        Returned {
            dispatch,
            device: dev,
            status,
        },
    );
    None
}

/// The I/O manager's own dispatch of a request returned `status`: the 0x23D / 0x23E check for
/// the top stack location.
pub(crate) fn io_dispatch_return_rule(
    m: &System,
    dispatch: usize,
    irp: *mut IRP,
    dev: *mut DEVICE_OBJECT,
    status: NTSTATUS,
) -> Option<Bc> {
    // SAFETY: the I/O manager's live IRP (freed only after this check); plain data.
    let count = unsafe { (*irp).StackCount }.max(1) as usize;
    dispatch_return_rule(m, dispatch, irp as usize, dev as usize, status, count - 1)
}

/// `IofCallDriver` (what the `IoCallDriver` macro calls).
///
/// With I/O verification: the checks of [`crate::verifier::Hooks::on_call_driver`] before the
/// call, 0xC9/0x05 when the dispatch routine returns at another IRQL, 0x23D / 0x23E when its
/// return value disagrees with IoMarkIrpPending. Always: 0x35 when no stack location is left.
/// A MajorFunction without a dispatch routine is completed with STATUS_INVALID_DEVICE_REQUEST
/// (the I/O manager's IopInvalidDeviceRequest).
///
/// # Safety
/// `DeviceObject` must be a device object and `Irp` an IRP the caller owns, its next stack
/// location set up.
pub unsafe extern "win64" fn IofCallDriver(
    DeviceObject: *mut DEVICE_OBJECT,
    Irp: *mut IRP,
) -> NTSTATUS {
    let m = current();
    let caller = thread::caller();
    let (a, dev) = (Irp as usize, DeviceObject as usize);
    let irql = thread::irql();
    if let Some(bc) = freed_irp_touch(&m, a, CURRENT_LOCATION, caller) {
        raise(&m, bc);
    }
    let device_is_device = dev != 0 && is_device(&m, dev);
    let irp_ok = !Irp.is_null();
    let (ty, cancel) = if irp_ok {
        // SAFETY: a non-null IRP the caller owns; plain data.
        let i = unsafe { &*Irp };
        (i.Type, i.CancelRoutine)
    } else {
        (0, None)
    };
    if let Some(bc) = m.verifier.on_call_driver(&CallDriver {
        irp: a,
        irp_is_irp: ty == IO_TYPE_IRP,
        device: dev,
        device_is_device,
        irql,
        cancel_routine: cancel.map_or(0, |f| f as usize),
        caller,
    }) {
        raise(&m, bc);
    }
    if irp_ok {
        // SAFETY: a non-null IRP the caller owns; plain data.
        let i = unsafe { &*Irp };
        if i.RequestorMode == KERNEL_MODE && m.verifier.security_checks() {
            // SAFETY: as above; the union member the I/O manager uses for SystemBuffer.
            let sysbuf = unsafe { i.AssociatedIrp.SystemBuffer } as usize;
            for addr in [sysbuf, i.UserBuffer as usize] {
                let user = addr != 0 && crate::ex::pool::is_user_address(&m, addr, 1);
                if user && let Some(bc) = m.verifier.on_kernel_irp_user_address(a, addr) {
                    raise(&m, bc.at(caller));
                }
            }
        }
    }
    if !irp_ok || !device_is_device {
        // Windows dereferences them: a kernel-mode page fault at the call site (stricter:
        // ntsim does not follow a wild pointer).
        let at = if irp_ok { dev } else { a + CURRENT_LOCATION };
        raise(
            &m,
            Bc::new(
                bugcheck::PAGE_FAULT_IN_NONPAGED_AREA,
                [at as u64, 0, caller as u64, 0],
            )
            .documented_only()
            .at(caller),
        );
    }
    // SAFETY: a live IRP the caller owns; plain data.
    let loc = unsafe { (*Irp).CurrentLocation }.wrapping_sub(1);
    // SAFETY: as above.
    unsafe { (*Irp).CurrentLocation = loc };
    if loc <= 0 {
        raise(&m, no_more_irp_stack_locations(a));
    }
    // SAFETY: the IRP's tail pointer (plain data).
    let cur: usize = unsafe { get(a + CUR_STACK) };
    let sl = cur - STACK;
    // SAFETY: as above.
    unsafe { put(a + CUR_STACK, sl) };
    let s = sl as *mut IO_STACK_LOCATION;
    // A caller that had a stack location of its own (it received the IRP) and copied it by
    // hand, completion routine included (0xC9/0x207).
    // SAFETY: as above; StackCount is plain data.
    if (loc as i32) < unsafe { (*Irp).StackCount } as i32 {
        // SAFETY: `cur` is location `loc` < StackCount of the live IRP; plain data.
        let upper = unsafe { &*(cur as *const IO_STACK_LOCATION) };
        // SAFETY: `s` is location loc − 1 of the same IRP; plain data.
        let lower = unsafe { &*s };
        let routine = |l: &IO_STACK_LOCATION| l.CompletionRoutine.map(|f| f as usize);
        if routine(upper).is_some()
            && routine(upper) == routine(lower)
            && upper.Context == lower.Context
            && let Some(bc) = m.verifier.on_copied_completion_routine(caller, a, dev)
        {
            raise(&m, bc);
        }
    }
    // SAFETY: `sl` is stack location `loc - 1` of the IRP (1 ≤ loc ≤ StackCount).
    unsafe { (*s).DeviceObject = DeviceObject };
    // SAFETY: as above.
    let mj = unsafe { (*s).MajorFunction };
    // SAFETY: a live device object ntsim created; DriverObject set by IoCreateDevice.
    let drv = unsafe { (*DeviceObject).DriverObject };
    let dispatch = if (mj as usize) < IRP_MJ_COUNT && !drv.is_null() {
        // SAFETY: the device's live driver object; MajorFunction is plain data.
        unsafe { (*drv).MajorFunction[mj as usize] }
    } else {
        None
    };
    let Some(dispatch) = dispatch else {
        // SAFETY: a live IRP the caller handed to this device; plain data.
        let i = unsafe { &mut *Irp };
        i.IoStatus.u.Status = STATUS_INVALID_DEVICE_REQUEST;
        i.IoStatus.Information = 0;
        // SAFETY: completing the caller's IRP, which this driver's stack now owns.
        unsafe { super::irp::IofCompleteRequest(Irp, 0) };
        return STATUS_INVALID_DEVICE_REQUEST;
    };
    let owner = driver_id_of(&m, drv as usize);
    let status = thread::with_context(owner, super::mj_context(mj), || {
        // SAFETY: calling the driver's dispatch routine with its device and the IRP whose
        // current stack location describes the request.
        unsafe { dispatch(DeviceObject, Irp) }
    });
    thread::set_caller(caller);
    let after = thread::irql();
    if let Some(bc) = m.verifier.on_dispatch_irql(dev, irql, after) {
        raise(&m, bc.at(dispatch as usize));
    }
    if let Some(bc) = dispatch_return_rule(&m, dispatch as usize, a, dev, status, loc as usize - 1)
    {
        thread::with_context(owner, super::mj_context(mj), || raise(&m, bc));
    }
    status
}

/// What the completion walk did.
enum Walk {
    /// A completion routine returned STATUS_MORE_PROCESSING_REQUIRED: the IRP is not touched
    /// again.
    Stopped,
    /// Every location completed.
    Done,
}

/// Clear stack location `s` as completion does (ReactOS `IopClearStackLocation`).
///
/// # Safety
/// `s` must be a stack location of a live IRP.
unsafe fn clear_location(s: *mut IO_STACK_LOCATION) {
    // SAFETY: per the contract; plain data.
    unsafe { (*s).MinorFunction = 0 };
    // SAFETY: as above.
    unsafe { (*s).Flags = 0 };
    // SAFETY: as above.
    unsafe { (*s).Control &= SL_ERROR_RETURNED };
    // SAFETY: as above (the first three Others arguments).
    unsafe {
        put(
            s as usize + offset_of!(IO_STACK_LOCATION, Parameters),
            [0usize; 3],
        )
    };
    // SAFETY: as above.
    unsafe { (*s).FileObject = core::ptr::null_mut() };
}

/// Walk the IRP's stack locations from the current one up, running completion routines.
///
/// # Safety
/// `irp` must be a live IRP being completed.
unsafe fn walk(m: &System, irp: *mut IRP) -> Walk {
    let a = irp as usize;
    // SAFETY: a live IRP; plain data.
    let count = unsafe { (*irp).StackCount } as i32;
    // SAFETY: as above.
    let mut k = unsafe { (*irp).CurrentLocation } as i32 - 1;
    loop {
        // Move the IRP to the location above k (what the completion routine sees as current).
        // SAFETY: as above.
        unsafe { (*irp).CurrentLocation = (k + 2) as i8 };
        // SAFETY: as above.
        unsafe { put(a + CUR_STACK, a + IRP_BASE + (k + 1) as usize * STACK) };
        // ReactOS's loop condition `CurrentLocation <= StackCount + 1`, i.e. k < StackCount:
        // after the last location CurrentLocation is StackCount + 2 (a second completion is
        // then 0x44).
        if k < 0 || k >= count {
            break;
        }
        let s = (a + IRP_BASE + k as usize * STACK) as *mut IO_STACK_LOCATION;
        let (control, routine, context) = {
            let mut g = lock(&m.io.fwd.inner);
            // SAFETY: stack location k (0 ≤ k < StackCount) of the live IRP; plain data,
            // changed under this lock only by completion.
            let sr = unsafe { &*s };
            let (control, routine, context) = (sr.Control, sr.CompletionRoutine, sr.Context);
            let e = g.marks.entry(a).or_default();
            e.0 |= bit(k as usize);
            if control & SL_PENDING_RETURNED != 0 {
                e.1 |= bit(k as usize);
            }
            let returned = g.returned.remove(&(a, k as usize));
            // SAFETY: as above.
            unsafe { clear_location(s) };
            drop(g);
            if let Some(r) = returned
                && let Some(bc) = m.verifier.on_dispatch_pending(
                    r.dispatch,
                    a,
                    r.device,
                    r.status,
                    control & SL_PENDING_RETURNED != 0,
                )
            {
                raise(m, bc);
            }
            (control, routine, context)
        };
        let pending = control & SL_PENDING_RETURNED != 0;
        // SAFETY: the live IRP; plain data.
        unsafe { (*irp).PendingReturned = pending as u8 };
        // SAFETY: as above.
        let i = unsafe { &*irp };
        let (status, cancel) = (i.IoStatus.status(), i.Cancel);
        let ok = nt_success(status);
        let invoke = routine.is_some()
            && ((ok && control & SL_INVOKE_ON_SUCCESS != 0)
                || (!ok && control & SL_INVOKE_ON_ERROR != 0)
                || (cancel != 0 && control & SL_INVOKE_ON_CANCEL != 0));
        let above = k + 1;
        if let (true, Some(routine)) = (invoke, routine) {
            let dev = if above >= count {
                core::ptr::null_mut()
            } else {
                let up = (a + IRP_BASE + above as usize * STACK) as *const IO_STACK_LOCATION;
                // SAFETY: location k + 1 < StackCount of the live IRP.
                unsafe { (*up).DeviceObject }
            };
            let caller = thread::caller();
            if m.verifier.io_verification()
                && matches!(
                    m.mm.classify(routine as usize),
                    crate::mm::MemClass::Image { paged: true }
                )
                && let Some(bc) =
                    m.verifier
                        .on_pageable_completion_routine(caller, a, routine as usize)
            {
                raise(m, bc);
            }
            let (irql, apc) = (thread::irql(), crate::ke::apc::snapshot());
            // SAFETY: the completion routine the driver set with IoSetCompletionRoutine, called
            // as IoCompleteRequest calls it.
            let r = unsafe { routine(dev, irp, context) };
            thread::set_caller(caller);
            if let Some(bc) = m.verifier.on_completion_routine_returned(
                routine as usize,
                (irql, thread::irql()),
                (apc, crate::ke::apc::snapshot()),
            ) {
                raise(m, bc);
            }
            if r == STATUS_MORE_PROCESSING_REQUIRED {
                return Walk::Stopped;
            }
        } else if above < count && pending {
            let up = (a + IRP_BASE + above as usize * STACK) as *mut IO_STACK_LOCATION;
            // SAFETY: location k + 1 < StackCount of the live IRP (IoMarkIrpPending on it).
            unsafe { (*up).Control |= SL_PENDING_RETURNED };
        }
        k += 1;
    }
    Walk::Done
}

/// The forwarding part of `IofCompleteRequest`: the checks (0x44; with I/O verification
/// 0xC9/0x06, 0x0E, 0x07; a freed special-pool IRP 0xD5), the completion walk, and the final
/// completion of driver-built IRPs.
///
/// 0x44 MULTIPLE_IRP_COMPLETE_REQUESTS, p1 = the IRP, p2–p4 reserved (0): "a driver has
/// requested that an IRP be completed, but the packet has already been completed" (Microsoft,
/// *Bug Check 0x44*,
/// <https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x44--multiple-irp-complete-requests>);
/// detected as ReactOS's `IofCompleteRequest` does, `CurrentLocation > StackCount + 1`, and for
/// an address that is no IRP in flight (one completed and released already). 0xC9/0x06 is
/// raised for STATUS_PENDING and -1 only, the two values the reference names; other odd values
/// are not checked. True when the caller must go on with the I/O manager's
/// final completion of its own request.
///
/// # Safety
/// `irp` should be an IRP the caller owns (anything else is reported, not followed).
pub(crate) unsafe fn complete(m: &System, irp: *mut IRP) -> bool {
    let a = irp as usize;
    let caller = thread::caller();
    let known_io = m.io.irps.contains(a);
    let known = known_io || lock(&m.io.fwd.inner).irps.contains_key(&a);
    if !known {
        if let Some(bc) = freed_irp_touch(m, a, CURRENT_LOCATION, caller) {
            raise(m, bc);
        }
        // Not an IRP in flight: one completed and released already (or never an IRP).
        raise(
            m,
            Bc::new(
                bugcheck::MULTIPLE_IRP_COMPLETE_REQUESTS,
                [a as u64, 0, 0, 0],
            ),
        );
    }
    // SAFETY: a live registered IRP; plain data.
    let i = unsafe { &*irp };
    let (cur, count) = (i.CurrentLocation, i.StackCount);
    if cur as i32 > count as i32 + 1 {
        raise(
            m,
            Bc::new(
                bugcheck::MULTIPLE_IRP_COMPLETE_REQUESTS,
                [a as u64, 0, 0, 0],
            ),
        );
    }
    let (status, cancel) = (i.IoStatus.status(), i.CancelRoutine);
    if let Some(bc) = m.verifier.on_irp_complete(a, status, thread::irql()) {
        raise(m, bc);
    }
    if let Some(bc) = m
        .verifier
        .on_complete_cancel_routine(a, cancel.map_or(0, |f| f as usize))
    {
        raise(m, bc);
    }
    // SAFETY: a live IRP being completed.
    if let Walk::Stopped = unsafe { walk(m, irp) } {
        return false;
    }
    if known_io {
        return true;
    }
    finish_driver_irp(m, irp);
    false
}

/// The I/O manager's final completion of a driver-built IRP whose walk finished.
fn finish_driver_irp(m: &System, irp: *mut IRP) {
    let a = irp as usize;
    // SAFETY: a live registered IRP; plain data.
    let i = unsafe { &*irp };
    let (iosb, event, io_status, flags) = (i.UserIosb, i.UserEvent, i.IoStatus, i.Flags);
    let (status, info) = (io_status.status(), io_status.Information);
    let built = {
        let g = lock(&m.io.fwd.inner);
        match g.irps.get(&a).map(|d| &d.origin) {
            Some(Origin::Built(b)) => Some((b.sysbuf, b.copy_to, b.out_len)),
            _ => None,
        }
    };
    let Some((sysbuf, copy_to, out_len)) = built else {
        // IoAllocateIrp / IoInitializeIrp: Windows queues the final completion to
        // Irp->Tail.Overlay.Thread, which such an IRP does not have; the driver's completion
        // routine should have taken it back. ntsim reports the status and leaves the IRP
        // to its driver (IoFreeIrp).
        if !iosb.is_null() {
            // SAFETY: the driver's IO_STATUS_BLOCK (its contract with the IRP).
            unsafe { iosb.write(io_status) };
        }
        if !event.is_null() {
            // SAFETY: the driver's initialized event.
            unsafe { crate::ke::KeSetEvent(event, 0, 0) };
        }
        return;
    };
    let n = info.min(out_len);
    if (status as u32) >> 30 != 3
        && flags & IRP_INPUT_OPERATION != 0
        && sysbuf != 0
        && copy_to != 0
        && n > 0
    {
        // SAFETY: the system buffer holds at least out_len ≥ n bytes; `copy_to` is the
        // driver's output buffer of out_len bytes (its contract with IoBuild*Request).
        unsafe { core::ptr::copy_nonoverlapping(sysbuf as *const u8, copy_to as *mut u8, n) };
    }
    super::mdl::release_irp_mdls(m, irp);
    if !iosb.is_null() {
        // SAFETY: the driver's IO_STATUS_BLOCK, valid until completion per the contract.
        unsafe { iosb.write(io_status) };
    }
    let d = {
        let mut g = lock(&m.io.fwd.inner);
        g.forget(a);
        g.irps.remove(&a)
    };
    if sysbuf != 0 {
        m.ex.pool.sys_free(sysbuf as *mut u8);
    }
    if let Some(d) = d {
        free_mem(m, a, d.mem);
    }
    if !event.is_null() {
        // SAFETY: the driver's initialized event (its contract with IoBuild*Request).
        unsafe { crate::ke::KeSetEvent(event, 0, 0) };
    }
}

/// `IoAttachDeviceToDeviceStack`: attach `SourceDevice` on top of `TargetDevice`'s stack; the
/// source's StackSize becomes the old top's + 1 (its AlignmentRequirement and SectorSize the
/// old top's). Returns the old top, referenced until IoDetachDevice; NULL when the source is
/// already attached or the target is being deleted.
///
/// # Safety
/// Both must be device objects.
pub unsafe extern "win64" fn IoAttachDeviceToDeviceStack(
    SourceDevice: *mut DEVICE_OBJECT,
    TargetDevice: *mut DEVICE_OBJECT,
) -> *mut DEVICE_OBJECT {
    let m = current();
    let (src, tgt) = (SourceDevice as usize, TargetDevice as usize);
    if !is_device(&m, src) || !is_device(&m, tgt) || src == tgt {
        return core::ptr::null_mut();
    }
    let top = attached_top(TargetDevice);
    let deleted =
        m.ob.header(DeviceId::from_ptr(top).object())
            .is_none_or(|h| h.is_deleted());
    if deleted || lock(&m.io.fwd.inner).attached_to.contains_key(&src) || top == SourceDevice {
        return core::ptr::null_mut();
    }
    if let Err(bc) = m.ob.reference(DeviceId::from_ptr(top).object()) {
        raise(&m, bc);
    }
    // SAFETY: live device objects ntsim created; plain data.
    let t = unsafe { &*top };
    let (size, align, sector) = (t.StackSize, t.AlignmentRequirement, t.SectorSize);
    // SAFETY: the source device, a live device object distinct from `top`; plain data.
    let src_dev = unsafe { &mut *SourceDevice };
    src_dev.StackSize = size.saturating_add(1);
    src_dev.AlignmentRequirement = align.max(src_dev.AlignmentRequirement);
    src_dev.SectorSize = sector;
    // SAFETY: as above.
    unsafe { (*top).AttachedDevice = SourceDevice };
    lock(&m.io.fwd.inner).attached_to.insert(src, top as usize);
    top
}

/// `IoDetachDevice`: detach the device attached to `TargetDevice` and drop the reference the
/// attach took.
///
/// # Safety
/// `TargetDevice` must be a device object.
pub unsafe extern "win64" fn IoDetachDevice(TargetDevice: *mut DEVICE_OBJECT) {
    let m = current();
    if !is_device(&m, TargetDevice as usize) {
        return;
    }
    // SAFETY: a live device object; plain data.
    let upper = unsafe { (*TargetDevice).AttachedDevice };
    if upper.is_null() {
        if let Some(bc) = m
            .verifier
            .on_detach_not_attached(thread::caller(), TargetDevice as usize)
        {
            raise(&m, bc);
        }
        return;
    }
    // SAFETY: as above.
    unsafe { (*TargetDevice).AttachedDevice = core::ptr::null_mut() };
    lock(&m.io.fwd.inner).attached_to.remove(&(upper as usize));
    if let Err(bc) =
        m.ob.dereference_and_release(&m, DeviceId::from_ptr(TargetDevice).object())
    {
        raise(&m, bc);
    }
}

/// IoDeleteDevice of `dev`: with I/O verification, a device still attached to a device below
/// it is WDM DRIVER ERROR 0x201 (the driver forgot IoDetachDevice).
pub(crate) fn on_delete_device(m: &System, dev: *mut DEVICE_OBJECT) -> Option<Bc> {
    let attached = lock(&m.io.fwd.inner)
        .attached_to
        .contains_key(&(dev as usize));
    if !attached {
        return None;
    }
    m.verifier
        .on_delete_attached_device(thread::caller(), dev as usize)
}

/// `IoGetAttachedDevice`: the top of `DeviceObject`'s stack (not referenced).
///
/// # Safety
/// `DeviceObject` must be a device object.
pub unsafe extern "win64" fn IoGetAttachedDevice(
    DeviceObject: *mut DEVICE_OBJECT,
) -> *mut DEVICE_OBJECT {
    let _m = current();
    attached_top(DeviceObject)
}

/// `IoGetAttachedDeviceReference`: the top of `DeviceObject`'s stack, referenced (release with
/// ObDereferenceObject).
///
/// # Safety
/// `DeviceObject` must be a device object.
pub unsafe extern "win64" fn IoGetAttachedDeviceReference(
    DeviceObject: *mut DEVICE_OBJECT,
) -> *mut DEVICE_OBJECT {
    let m = current();
    let top = attached_top(DeviceObject);
    if let Err(bc) = m.ob.reference(DeviceId::from_ptr(top).object()) {
        raise(&m, bc);
    }
    top
}
