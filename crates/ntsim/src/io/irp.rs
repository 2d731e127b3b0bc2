//! IRPs: allocation with stack locations laid out as on Windows, completion, and the
//! synchronous wait of the I/O manager.
#![allow(non_snake_case)]

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use nt_abi::bugcheck;
use nt_abi::*;

use crate::ke::bugcheck::raise;
use crate::ke::thread::{self, current, park_forever};
use crate::machine::{System, lock};
use crate::verifier::Bc;

/// IRPs in flight, by address.
#[derive(Default)]
pub(crate) struct Irps {
    map: Mutex<HashMap<usize, Arc<IrpTrack>>>,
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
    pub method: u32,
    pub out_len: usize,
    /// Buffer whose first `Information` bytes are the output (SystemBuffer or UserBuffer).
    pub out_buf: usize,
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
    pub input: &'a [u8],
    pub out_len: usize,
}

/// An IRP in flight, owned by the I/O manager.
pub struct Built {
    pub irp: *mut IRP,
    pub track: Arc<IrpTrack>,
    pub buffers: Vec<*mut u8>,
}

const IRP_BASE: usize = core::mem::size_of::<IRP>();
const STACK: usize = core::mem::size_of::<IO_STACK_LOCATION>();

pub(crate) fn build(m: &System, r: &Request<'_>) -> Built {
    let sys_alloc = |n, what| m.ex.pool.sys_alloc(n, what);
    // SAFETY: `device` is a live device object ntsim created; StackSize is plain data.
    let stack_count = unsafe { (*r.device).StackSize }.max(1) as usize;
    let size = IRP_BASE + stack_count * STACK;
    let irp = sys_alloc(size, "IRP").cast::<IRP>();
    let method = ctl_method(r.code);
    let mut buffers = vec![irp.cast::<u8>()];
    let mut sysbuf: *mut u8 = core::ptr::null_mut();
    let mut user_buf: *mut u8 = core::ptr::null_mut();
    let mut type3: *mut u8 = core::ptr::null_mut();
    let mut flags = 0;
    let mut out_buf = 0usize;
    if r.mj == IRP_MJ_DEVICE_CONTROL {
        if method == METHOD_BUFFERED {
            let n = r.input.len().max(r.out_len);
            if n > 0 {
                sysbuf = sys_alloc(n, "SystemBuffer");
                buffers.push(sysbuf);
                // SAFETY: `sysbuf` has n ≥ input.len() fresh bytes.
                unsafe { core::ptr::copy_nonoverlapping(r.input.as_ptr(), sysbuf, r.input.len()) };
                flags = IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER;
                if r.out_len > 0 {
                    flags |= IRP_INPUT_OPERATION;
                }
            }
            out_buf = sysbuf as usize;
        } else {
            // METHOD_NEITHER (and the direct methods, which ntsim serves like NEITHER for the
            // input and a plain output buffer): user-mode pointers as the driver would see them.
            if !r.input.is_empty() {
                type3 = sys_alloc(r.input.len(), "Type3InputBuffer");
                buffers.push(type3);
                // SAFETY: fresh buffer of exactly input.len() bytes.
                unsafe { core::ptr::copy_nonoverlapping(r.input.as_ptr(), type3, r.input.len()) };
            }
            if r.out_len > 0 {
                user_buf = sys_alloc(r.out_len, "UserBuffer");
                buffers.push(user_buf);
            }
            out_buf = user_buf as usize;
        }
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
        i.AssociatedIrp.SystemBuffer = sysbuf.cast();
        i.RequestorMode = USER_MODE;
        i.StackCount = stack_count as i8;
        i.CurrentLocation = stack_count as i8;
        i.UserBuffer = user_buf.cast();
        i.Tail.Overlay.CurrentStackLocation = cur;
        i.Tail.Overlay.OriginalFileObject = r.file;
        s.MajorFunction = r.mj;
        s.DeviceObject = r.device;
        s.FileObject = r.file;
        if r.mj == IRP_MJ_DEVICE_CONTROL {
            s.Parameters.DeviceIoControl = DEVICE_IO_CONTROL_PARAMETERS {
                OutputBufferLength: r.out_len as u32,
                _pad0: 0,
                InputBufferLength: r.input.len() as u32,
                _pad1: 0,
                IoControlCode: r.code,
                _pad2: 0,
                Type3InputBuffer: type3.cast(),
            };
        }
    }
    let track = Arc::new(IrpTrack {
        state: Mutex::new(IrpState {
            completed: None,
            mj: r.mj,
            method,
            out_len: r.out_len,
            out_buf,
        }),
        cv: Condvar::new(),
    });
    lock(&m.io.irps.map).insert(irp as usize, track.clone());
    Built {
        irp,
        track,
        buffers,
    }
}

/// Release an IRP and its buffers.
pub(crate) fn free(m: &System, b: Built) {
    lock(&m.io.irps.map).remove(&(b.irp as usize));
    for p in b.buffers {
        m.ex.pool.sys_free(p);
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
    if let Some(bc) = m
        .verifier
        .on_irp_complete(Irp as usize, status, thread::irql())
    {
        raise(&m, bc);
    }
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
    if g.mj == IRP_MJ_DEVICE_CONTROL {
        if let Some(bc) = m
            .verifier
            .on_irp_information(Irp as usize, information, g.out_len)
        {
            drop(g);
            raise(&m, bc);
        }
        let n = information.min(g.out_len);
        if !nt_error(status) && n > 0 && g.out_buf != 0 {
            // SAFETY: `out_buf` is the ntsim-owned SystemBuffer/UserBuffer of at least
            // `out_len` ≥ n bytes, alive until the IRP is freed after this completion.
            output = unsafe { core::slice::from_raw_parts(g.out_buf as *const u8, n) }.to_vec();
        }
    }
    let _ = g.method;
    // As IoCompleteRequest does for the top-level location: propagate IoMarkIrpPending.
    // SAFETY: the registered IRP is live; its current stack location is ntsim-built.
    let irp = unsafe { &mut *Irp };
    // SAFETY: `Overlay` is the active tail member of an IRP the I/O manager built.
    let cur = unsafe { irp.Tail.Overlay.CurrentStackLocation };
    if !cur.is_null() {
        // SAFETY: the current stack location lies inside the same IRP allocation.
        let control = unsafe { (*cur).Control };
        irp.PendingReturned = (control & SL_PENDING_RETURNED != 0) as u8;
    }
    g.completed = Some(Completion {
        status,
        information,
        output,
    });
    drop(g);
    track.cv.notify_all();
}
