//! Process objects as a driver sees them: `IoGetCurrentProcess` (= `PsGetCurrentProcess`),
//! `IoGetRequestorProcess`, `IoIs32bitProcess`.
//!
//! ntsim has two processes, each an opaque zeroed EPROCESS-sized block whose
//! `DISPATCHER_HEADER.Type` is ProcessObject: **System** (DriverEntry, DriverUnload, work
//! items, DPCs, host kernel threads) and the **requesting process** — the user-mode program
//! whose requests the library and CLI send: a dispatch routine serving one, and a cancel
//! routine called on its behalf, run in its context, as a top-level driver's dispatch routine
//! does on Windows (Microsoft, *Driver Thread Context*). Both are 64-bit processes, so
//! `IoIs32bitProcess` is FALSE (Microsoft, *IoIs32bitProcess*: TRUE only for a WOW64
//! originator). `IoGetRequestorProcess` returns the process of the thread that issued the IRP
//! (`Irp->Tail.Overlay.Thread`), NULL for an IRP with no thread (ReactOS
//! `ntoskrnl/io/iomgr/util.c`); ntsim's requests are all issued by the requesting process.
#![allow(non_snake_case)]

use nt_abi::*;

use crate::ke::thread::{self, current};

/// Bytes of each fake EPROCESS (Windows 10 x64's is about 0x850).
const EPROCESS_SIZE: usize = 0xA00;

/// The machine's two process objects.
pub(crate) struct Processes {
    system: Box<[u64; EPROCESS_SIZE / 8]>,
    requestor: Box<[u64; EPROCESS_SIZE / 8]>,
}

impl Default for Processes {
    fn default() -> Self {
        let make = || {
            let mut b = Box::new([0u64; EPROCESS_SIZE / 8]);
            b[0] = PROCESS_OBJECT as u64 | (((EPROCESS_SIZE / 4) as u64 & 0xFF) << 16);
            b
        };
        Processes {
            system: make(),
            requestor: make(),
        }
    }
}

impl Processes {
    pub(crate) fn system(&self) -> PEPROCESS {
        self.system.as_ptr() as PEPROCESS
    }
    pub(crate) fn requestor(&self) -> PEPROCESS {
        self.requestor.as_ptr() as PEPROCESS
    }
}

/// The thread context of a cancel routine called in a requesting thread's context.
pub(crate) const CANCEL_IN_REQUESTOR: &str = "cancel routine (requesting thread)";

/// Whether the calling thread runs in the requesting process's context: the I/O manager
/// threads that serve the library's requests (their dispatch routines, and cancel routines
/// called from them or from `Pending::cancel`).
pub(crate) fn in_requestor_context() -> bool {
    let c = thread::context();
    c == "I/O manager"
        || c.ends_with(" dispatch")
        || c == "dispatch routine"
        || c == CANCEL_IN_REQUESTOR
}

/// `IoGetCurrentProcess`: the process of the current thread.
///
/// # Safety
/// None beyond running on an ntsim thread.
pub unsafe extern "win64" fn IoGetCurrentProcess() -> PEPROCESS {
    let m = current();
    if in_requestor_context() {
        m.io.processes.requestor()
    } else {
        m.io.processes.system()
    }
}

/// `PsGetCurrentProcess` (ntoskrnl exports it; wdm.h maps it to `IoGetCurrentProcess`).
///
/// # Safety
/// None beyond running on an ntsim thread.
pub unsafe extern "win64" fn PsGetCurrentProcess() -> PEPROCESS {
    // SAFETY: no preconditions.
    unsafe { IoGetCurrentProcess() }
}

/// `IoGetRequestorProcess`: the process of the IRP's thread, NULL if it has none.
///
/// # Safety
/// `Irp` must be a live IRP.
pub unsafe extern "win64" fn IoGetRequestorProcess(Irp: *mut IRP) -> PEPROCESS {
    let m = current();
    // SAFETY: a live IRP (plain data, read once).
    let tail = unsafe { (*Irp).Tail };
    // SAFETY: Tail.Overlay is the active member while the IRP is in flight.
    let t = unsafe { tail.Overlay.Thread };
    if t.is_null() {
        core::ptr::null_mut()
    } else {
        m.io.processes.requestor()
    }
}

/// `IoIs32bitProcess`: FALSE (every ntsim process is 64-bit).
///
/// # Safety
/// `Irp` must be null or a live IRP.
pub unsafe extern "win64" fn IoIs32bitProcess(_Irp: *mut IRP) -> BOOLEAN {
    let _m = current();
    0
}
