//! IRPs: allocation with stack locations laid out as on Windows, completion, and the
//! synchronous wait of the I/O manager.
#![allow(non_snake_case)]

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use nt_abi::bugcheck;
use nt_abi::*;

use crate::ke::bugcheck::raise;
use crate::ke::thread::{current, park_forever};
use crate::machine::{System, lock};
use crate::verifier::Bc;

/// IRPs in flight, by address.
#[derive(Default)]
pub(crate) struct Irps {
    map: Mutex<HashMap<usize, Arc<IrpTrack>>>,
}

impl Irps {
    /// Whether `irp` is a request of the I/O manager in flight.
    pub(crate) fn contains(&self, irp: usize) -> bool {
        lock(&self.map).contains_key(&irp)
    }
}

/// Completion outcome of an IRP.
#[derive(Clone, Debug)]
pub struct Completion {
    pub status: NTSTATUS,
    pub information: usize,
    pub output: Vec<u8>,
}

pub struct IrpState {
    pub completed: Option<Completion>,
    pub mj: u8,
    /// The caller's length of the buffer the request returns data in (IOCTL output, read).
    pub out_len: usize,
    /// The caller's output buffer (a user-mode address), 0 if none.
    pub user_out: usize,
    /// The system buffer whose first `Information` bytes the I/O manager copies to
    /// `user_out` at completion (buffered I/O with output), 0 if none.
    pub copy_from: usize,
}

pub struct IrpTrack {
    pub state: Mutex<IrpState>,
    pub cv: Condvar,
}

/// A request to build.
pub struct Request<'a> {
    pub mj: u8,
    pub device: *mut DEVICE_OBJECT,
    pub file: *mut FILE_OBJECT,
    pub code: u32,
    /// IOCTL input, or the data of a write.
    pub input: &'a [u8],
    /// IOCTL output length, or the length of a read.
    pub out_len: usize,
    /// `Parameters.Read/Write.ByteOffset`.
    pub byte_offset: i64,
}

/// An IRP in flight, owned by the I/O manager.
pub struct Built {
    pub irp: *mut IRP,
    pub track: Arc<IrpTrack>,
    /// System memory to free with the IRP (system buffers; the IRP is freed by `free`).
    pub buffers: Vec<*mut u8>,
    /// The caller's buffers (user-mode regions) to release after the IRP.
    pub user: Vec<usize>,
}

const IRP_BASE: usize = core::mem::size_of::<IRP>();
const STACK: usize = core::mem::size_of::<IO_STACK_LOCATION>();

/// How the I/O manager describes a request's buffers to the driver.
///
/// IOCTLs, by the method in the control code (Microsoft, *Buffer Descriptions for I/O Control
/// Codes*,
/// <https://learn.microsoft.com/windows-hardware/drivers/kernel/buffer-descriptions-for-i-o-control-codes>):
/// - METHOD_BUFFERED: one system buffer of max(input, output) bytes at
///   `AssociatedIrp.SystemBuffer`, holding the input; at completion the I/O manager copies
///   its first `Information` bytes to the caller's output buffer, which `Irp->UserBuffer`
///   points at (Microsoft, *Using Buffered I/O*,
///   <https://learn.microsoft.com/windows-hardware/drivers/kernel/using-buffered-i-o>;
///   ReactOS `IopDeviceFsIoControl` sets `UserBuffer` to the output buffer for every method).
/// - METHOD_IN_DIRECT / METHOD_OUT_DIRECT: a system buffer for the input (if any), and the
///   output buffer described by an MDL at `Irp->MdlAddress`, probed and locked for read
///   (IN_DIRECT) or write (OUT_DIRECT) access; `OutputBufferLength` is its size (Microsoft,
///   *Using Direct I/O*,
///   <https://learn.microsoft.com/windows-hardware/drivers/kernel/using-direct-i-o>).
/// - METHOD_NEITHER: no system buffer, no MDL: `Parameters.DeviceIoControl.Type3InputBuffer`
///   is the caller's input buffer and `Irp->UserBuffer` its output buffer, both user-mode
///   addresses (Microsoft, *Using Neither Buffered Nor Direct I/O*,
///   <https://learn.microsoft.com/windows-hardware/drivers/kernel/using-neither-buffered-nor-direct-i-o>).
///
/// IRP_MJ_READ / IRP_MJ_WRITE, by the device's flags (same pages): DO_BUFFERED_IO → a system
/// buffer of `Length` bytes (a write's data copied in; a read's first `Information` bytes copied
/// out at completion); DO_DIRECT_IO → an MDL for the caller's buffer (locked for write access
/// for a read, read access for a write); neither → `Irp->UserBuffer` is the caller's buffer.
/// A zero-length transfer gets no system buffer and no MDL.
///
/// The caller's buffers are user-mode memory of the requesting process (`mm::user`) that
/// lives until the request returns. Returns Err(STATUS_INSUFFICIENT_RESOURCES) when a buffer
/// cannot be allocated (the driver is not called).
pub(crate) fn build(m: &System, r: &Request<'_>) -> Result<Built, NTSTATUS> {
    let sys_alloc = |n, what| m.ex.pool.sys_alloc(n, what);
    // SAFETY: `device` is a live device object ntsim created; StackSize and Flags are plain data.
    let dev = unsafe { &*r.device };
    let (stack_count, dev_flags) = (dev.StackSize.max(1) as usize, dev.Flags);
    let size = IRP_BASE + stack_count * STACK;
    let method = ctl_method(r.code);
    let mut buffers = Vec::new();
    let mut user = Vec::new();
    let mut user_buffer = |len: usize, init: &[u8]| -> Result<usize, NTSTATUS> {
        if len == 0 {
            return Ok(0);
        }
        let a =
            m.mm.user
                .alloc(len, init, true)
                .ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
        user.push(a);
        Ok(a)
    };
    let fail = |m: &System, user: &[usize]| {
        for &u in user {
            m.mm.user.free(u);
        }
    };
    let mut sysbuf: *mut u8 = core::ptr::null_mut();
    let mut user_buf = 0usize;
    let mut type3 = 0usize;
    let mut user_out = 0usize;
    let mut copy_from = 0usize;
    let mut lock_out: Option<(usize, usize, LOCK_OPERATION)> = None;
    let mut flags = 0;
    let with_sysbuf = |n: usize, data: &[u8], flags: &mut u32| -> *mut u8 {
        if n == 0 {
            return core::ptr::null_mut();
        }
        let b = sys_alloc(n, "SystemBuffer");
        // SAFETY: `b` has n ≥ data.len() fresh bytes.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), b, data.len()) };
        *flags |= IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER;
        b
    };
    let step = (|| -> Result<(), NTSTATUS> {
        match r.mj {
            IRP_MJ_DEVICE_CONTROL => {
                let user_in = user_buffer(r.input.len(), r.input)?;
                user_out = user_buffer(r.out_len, &[])?;
                user_buf = user_out;
                match method {
                    METHOD_BUFFERED => {
                        sysbuf = with_sysbuf(r.input.len().max(r.out_len), r.input, &mut flags);
                        if r.out_len > 0 && !sysbuf.is_null() {
                            flags |= IRP_INPUT_OPERATION;
                            copy_from = sysbuf as usize;
                        }
                    }
                    METHOD_IN_DIRECT | METHOD_OUT_DIRECT => {
                        sysbuf = with_sysbuf(r.input.len(), r.input, &mut flags);
                        let op = if method == METHOD_IN_DIRECT {
                            IO_READ_ACCESS
                        } else {
                            IO_WRITE_ACCESS
                        };
                        if r.out_len > 0 {
                            lock_out = Some((user_out, r.out_len, op));
                        }
                    }
                    _ => type3 = user_in,
                }
            }
            IRP_MJ_READ => {
                user_out = user_buffer(r.out_len, &[])?;
                user_buf = user_out;
                if dev_flags & DO_BUFFERED_IO != 0 {
                    sysbuf = with_sysbuf(r.out_len, &[], &mut flags);
                    if !sysbuf.is_null() {
                        flags |= IRP_INPUT_OPERATION;
                        copy_from = sysbuf as usize;
                    }
                } else if dev_flags & DO_DIRECT_IO != 0 && r.out_len > 0 {
                    lock_out = Some((user_out, r.out_len, IO_WRITE_ACCESS));
                }
            }
            IRP_MJ_WRITE => {
                let user_in = user_buffer(r.input.len(), r.input)?;
                user_buf = user_in;
                if dev_flags & DO_BUFFERED_IO != 0 {
                    sysbuf = with_sysbuf(r.input.len(), r.input, &mut flags);
                } else if dev_flags & DO_DIRECT_IO != 0 && !r.input.is_empty() {
                    lock_out = Some((user_in, r.input.len(), IO_READ_ACCESS));
                }
            }
            _ => {}
        }
        Ok(())
    })();
    if let Err(e) = step {
        if !sysbuf.is_null() {
            m.ex.pool.sys_free(sysbuf);
        }
        fail(m, &user);
        return Err(e);
    }
    let mut mdl: *mut MDL = core::ptr::null_mut();
    if let Some((va, len, op)) = lock_out {
        let Ok(len32) = u32::try_from(len) else {
            fail(m, &user);
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        };
        mdl = super::mdl::build_for_caller(m, va, len32, op);
        if mdl.is_null() {
            if !sysbuf.is_null() {
                m.ex.pool.sys_free(sysbuf);
            }
            fail(m, &user);
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
    }
    let irp = super::forward::alloc_io_irp(m, size).cast::<IRP>();
    if !sysbuf.is_null() {
        buffers.push(sysbuf);
    }
    let stack0 = (irp as usize + IRP_BASE) as *mut IO_STACK_LOCATION;
    // SAFETY: `irp` is a fresh zeroed block of `size` bytes = IRP + stack_count locations, all
    // plain data; we own it until the driver gets it.
    let i = unsafe { &mut *irp };
    // SAFETY: the last of the `stack_count` locations that follow the IRP in the same block.
    let cur = unsafe { stack0.add(stack_count - 1) };
    // SAFETY: `cur` is in the fresh zeroed block, exclusively ours, disjoint from `*i`.
    let s = unsafe { &mut *cur };
    {
        i.Type = IO_TYPE_IRP;
        i.Size = size as u16;
        i.Flags = flags;
        i.MdlAddress = mdl.cast();
        i.AssociatedIrp.SystemBuffer = sysbuf.cast();
        i.RequestorMode = USER_MODE;
        i.StackCount = stack_count as i8;
        i.CurrentLocation = stack_count as i8;
        i.UserBuffer = user_buf as PVOID;
        i.Tail.Overlay.CurrentStackLocation = cur;
        i.Tail.Overlay.OriginalFileObject = r.file;
        // The requesting thread (IoGetRequestorProcess reads its process).
        i.Tail.Overlay.Thread = crate::ke::cpu::current_thread();
        s.MajorFunction = r.mj;
        s.DeviceObject = r.device;
        s.FileObject = r.file;
        match r.mj {
            IRP_MJ_DEVICE_CONTROL => {
                s.Parameters.DeviceIoControl = DEVICE_IO_CONTROL_PARAMETERS {
                    OutputBufferLength: r.out_len as u32,
                    _pad0: 0,
                    InputBufferLength: r.input.len() as u32,
                    _pad1: 0,
                    IoControlCode: r.code,
                    _pad2: 0,
                    Type3InputBuffer: type3 as PVOID,
                };
            }
            IRP_MJ_READ | IRP_MJ_WRITE => {
                let len = if r.mj == IRP_MJ_READ {
                    r.out_len
                } else {
                    r.input.len()
                };
                s.Parameters.Read = READ_WRITE_PARAMETERS {
                    Length: len as u32,
                    _pad0: 0,
                    Key: 0,
                    Flags: 0,
                    ByteOffset: LARGE_INTEGER {
                        QuadPart: r.byte_offset,
                    },
                };
            }
            _ => {}
        }
    }
    let track = Arc::new(IrpTrack {
        state: Mutex::new(IrpState {
            completed: None,
            mj: r.mj,
            out_len: r.out_len,
            user_out,
            copy_from,
        }),
        cv: Condvar::new(),
    });
    lock(&m.io.irps.map).insert(irp as usize, track.clone());
    Ok(Built {
        irp,
        track,
        buffers,
        user,
    })
}

/// Release an IRP, its MDLs (unlocked and freed, as at I/O completion), its system buffers,
/// and the caller's buffers (a buffer released with pages still locked by a driver's MDL is
/// 0x76 p1 = 0 under the verifier).
pub(crate) fn free(m: &System, b: Built) {
    lock(&m.io.irps.map).remove(&(b.irp as usize));
    super::mdl::release_irp_mdls(m, b.irp);
    for p in b.buffers {
        m.ex.pool.sys_free(p);
    }
    super::forward::free_io_irp(m, b.irp.cast());
    let mut locked = 0;
    for u in b.user {
        locked += m.mm.user.free(u);
    }
    if let Some(bc) = m.verifier.on_buffer_released_locked(locked) {
        raise(m, bc);
    }
}

/// Wait for completion (or a bug check, which parks this thread).
pub(crate) fn wait(m: &System, t: &IrpTrack) -> Completion {
    let mut g = lock(&t.state);
    loop {
        if let Some(c) = &g.completed {
            return c.clone();
        }
        if m.ke.is_bugged() {
            drop(g);
            park_forever();
        }
        g =
            t.cv.wait_timeout(g, Duration::from_millis(20))
                .unwrap_or_else(|e| e.into_inner())
                .0;
    }
}

fn nt_error(s: NTSTATUS) -> bool {
    (s as u32) >> 30 == 3
}

/// `IofCompleteRequest` (what the `IoCompleteRequest` macro calls).
///
/// # Safety
/// `Irp` should be an IRP the driver received and still owns.
pub unsafe extern "win64" fn IofCompleteRequest(Irp: *mut IRP, _PriorityBoost: CCHAR) {
    let m = current();
    // The checks, the walk up the stack locations with their completion routines, and the
    // final completion of driver-built IRPs (io::forward); on for the I/O manager's own
    // request only when the walk finished.
    // SAFETY: `Irp` per this function's contract (anything else is reported, not followed).
    if !unsafe { super::forward::complete(&m, Irp) } {
        return;
    }
    let Some(track) = lock(&m.io.irps.map).get(&(Irp as usize)).cloned() else {
        raise(
            &m,
            Bc::new(
                bugcheck::MULTIPLE_IRP_COMPLETE_REQUESTS,
                [Irp as u64, 0, 0, 0],
            ),
        );
    };
    // SAFETY: the IRP is registered, so it is a live ntsim-built IRP; IoStatus is plain data.
    let iosb = unsafe { (*Irp).IoStatus };
    let (status, information) = (iosb.status(), iosb.Information);
    let mut g = lock(&track.state);
    if g.completed.is_some() {
        drop(g);
        raise(
            &m,
            Bc::new(
                bugcheck::MULTIPLE_IRP_COMPLETE_REQUESTS,
                [Irp as u64, 0, 0, 0],
            ),
        );
    }
    let mut output = Vec::new();
    if g.mj == IRP_MJ_DEVICE_CONTROL
        && let Some(bc) = m
            .verifier
            .on_irp_information(Irp as usize, information, g.out_len)
    {
        drop(g);
        raise(&m, bc);
    }
    if matches!(g.mj, IRP_MJ_DEVICE_CONTROL | IRP_MJ_READ) {
        let n = information.min(g.out_len);
        if !nt_error(status) && n > 0 && g.user_out != 0 {
            if g.copy_from != 0 {
                // SAFETY: buffered I/O: `copy_from` is the ntsim-owned system buffer of at
                // least `out_len` ≥ n bytes and `user_out` the caller's buffer of `out_len`
                // bytes, both alive until the IRP is freed after this completion.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        g.copy_from as *const u8,
                        g.user_out as *mut u8,
                        n,
                    )
                };
            }
            // SAFETY: `user_out` is the caller's buffer of `out_len` ≥ n bytes, mapped until
            // the IRP is freed.
            output = unsafe { core::slice::from_raw_parts(g.user_out as *const u8, n) }.to_vec();
        }
    }
    g.completed = Some(Completion {
        status,
        information,
        output,
    });
    drop(g);
    track.cv.notify_all();
}
