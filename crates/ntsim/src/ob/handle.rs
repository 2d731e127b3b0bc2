//! The kernel handle table: handles to thread objects (PsCreateSystemThread), `ZwClose`, and
//! `ObReferenceObjectByHandle` (Microsoft, *ObReferenceObjectByHandle*, *ZwClose*; ReactOS
//! `ob/obref.c`, `ob/obhandle.c`).
//!
//! Handles are kernel handles (the high bit set, as OBJ_KERNEL_HANDLE handles are on x64:
//! 0xFFFFFFFF80000000 | 4n). Each handle holds one reference on its object; ZwClose drops it.
//! ObReferenceObjectByHandle checks the object type (NULL = any type) and, for UserMode
//! callers, the access the handle was opened with, then takes a reference the caller drops
//! with ObDereferenceObject.
#![allow(non_snake_case)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use nt_abi::bugcheck;
use nt_abi::*;

use super::ObjKind;
use crate::ids::ObjectId;
use crate::ke::bugcheck::raise;
use crate::ke::thread::current;
use crate::machine::lock;
use crate::verifier::Bc;

/// The high bit of a kernel handle (`KERNEL_HANDLE_MASK` on x64).
pub const KERNEL_HANDLE_BIT: u64 = 0xFFFF_FFFF_8000_0000;

#[derive(Clone, Copy, Debug)]
struct Entry {
    object: ObjectId,
    kind: ObjKind,
    access: ACCESS_MASK,
}

/// The kernel handle table, and the user-mode caller's process handle table.
#[derive(Default)]
pub(crate) struct Handles {
    table: Mutex<HashMap<u64, Entry>>,
    next: AtomicU64,
    /// The user-mode caller's handles (no kernel bit).
    user: Mutex<HashMap<u64, Entry>>,
    next_user: AtomicU64,
    /// Storage of the events [`super::user_event`] created (`Box<KEVENT>`s turned into
    /// addresses; freed when the machine drops).
    pub(crate) user_events: Mutex<Vec<usize>>,
}

impl Drop for Handles {
    fn drop(&mut self) {
        for &p in lock(&self.user_events).iter() {
            // SAFETY: each address came from `Box::into_raw` of a KEVENT in
            // `Machine::create_event` and is freed only here, once, when the machine (and with
            // it every thread that could use the event) is gone.
            drop(unsafe { Box::from_raw(p as *mut KEVENT) });
        }
    }
}

/// The object-type address of an object kind: what the type data export's variable holds
/// (`*PsThreadType`, `*ExEventObjectType`; the OBJECT_TYPEs themselves live with the data
/// exports, `crate::data`, so a driver's `ObReferenceObjectByHandle(h, …, *PsThreadType, …)`
/// names exactly the object ntsim checks against).
pub fn type_object(kind: ObjKind) -> Option<usize> {
    match kind {
        ObjKind::Thread => crate::data::object_type("PsThreadType"),
        ObjKind::Event => crate::data::object_type("ExEventObjectType"),
        _ => None,
    }
}

fn kind_of_type(ty: usize) -> Option<ObjKind> {
    [ObjKind::Thread, ObjKind::Event]
        .into_iter()
        .find(|&k| type_object(k) == Some(ty))
}

impl Handles {
    /// A new handle to `object` (the caller has taken the reference it holds).
    pub(crate) fn create(&self, object: ObjectId, kind: ObjKind, access: ACCESS_MASK) -> u64 {
        let n = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let h = KERNEL_HANDLE_BIT | (n * 4);
        lock(&self.table).insert(
            h,
            Entry {
                object,
                kind,
                access,
            },
        );
        h
    }

    /// A new handle in the user-mode caller's process (the caller has taken the reference it
    /// holds).
    pub(crate) fn create_user(&self, object: ObjectId, kind: ObjKind, access: ACCESS_MASK) -> u64 {
        let n = self.next_user.fetch_add(1, Ordering::SeqCst) + 1;
        let h = 0x100 + n * 4;
        lock(&self.user).insert(
            h,
            Entry {
                object,
                kind,
                access,
            },
        );
        h
    }

    /// Close a user handle (CloseHandle); false if it was not open.
    pub(crate) fn close_user(&self, h: u64) -> bool {
        lock(&self.user).remove(&h).is_some()
    }

    fn close(&self, h: u64) -> Option<Entry> {
        lock(&self.table).remove(&h)
    }

    fn get(&self, h: u64) -> Option<Entry> {
        lock(&self.table).get(&h).copied()
    }
}

/// Whether the calling thread runs in the user-mode caller's process (a dispatch routine
/// serving its request).
fn in_user_process() -> bool {
    let c = crate::ke::thread::context();
    c.ends_with("dispatch") || c == "dispatch routine"
}

/// `ZwClose`: close a handle, dropping its reference. Closing a handle that is not open is
/// bug check 0x93 INVALID_KERNEL_HANDLE (p1 the handle, p2 1 = invalid; Microsoft, *Bug Check
/// 0x93*: "an invalid or protected handle was passed to NtClose" — kernel-mode callers
/// bug-check where user-mode ones get STATUS_INVALID_HANDLE).
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn ZwClose(Handle: HANDLE) -> NTSTATUS {
    let m = current();
    let h = Handle as u64;
    if h & KERNEL_HANDLE_BIT != KERNEL_HANDLE_BIT && in_user_process() {
        // A handle of the requesting process, closed in its context.
        let e = lock(&m.ob.handles.user).remove(&h);
        if let Some(e) = e {
            if let Err(bc) = m.ob.dereference_and_release(&m, e.object) {
                raise(&m, bc);
            }
            return STATUS_SUCCESS;
        }
    }
    let Some(e) = m.ob.handles.close(h) else {
        raise(
            &m,
            Bc::new(bugcheck::INVALID_KERNEL_HANDLE, [Handle as u64, 1, 0, 0]),
        );
    };
    if let Err(bc) = m.ob.dereference_and_release(&m, e.object) {
        raise(&m, bc);
    }
    STATUS_SUCCESS
}

/// `ObReferenceObjectByHandle`: the object behind `Handle`, referenced. STATUS_INVALID_HANDLE
/// for a handle that is not open, STATUS_OBJECT_TYPE_MISMATCH when `ObjectType` (non-null)
/// is not the object's type, STATUS_ACCESS_DENIED when a UserMode caller asks for access the
/// handle lacks (KernelMode callers are granted any access, as the page says).
///
/// # Safety
/// `Object` must point to writable storage for a pointer.
pub unsafe extern "win64" fn ObReferenceObjectByHandle(
    Handle: HANDLE,
    DesiredAccess: ACCESS_MASK,
    ObjectType: PVOID,
    AccessMode: KPROCESSOR_MODE,
    Object: *mut PVOID,
    _HandleInformation: PVOID,
) -> NTSTATUS {
    let m = current();
    let h = Handle as u64;
    if h & KERNEL_HANDLE_BIT != KERNEL_HANDLE_BIT
        && AccessMode == KERNEL_MODE
        && in_user_process()
        && lock(&m.ob.handles.user).contains_key(&h)
        && let Some(bc) = m
            .verifier
            .on_user_handle_kernel_access(h, crate::ke::thread::caller())
    {
        raise(&m, bc);
    }
    let e = if h & KERNEL_HANDLE_BIT == KERNEL_HANDLE_BIT {
        m.ob.handles.get(h)
    } else if in_user_process() {
        lock(&m.ob.handles.user).get(&h).copied()
    } else {
        // A user handle on a thread of the System process: not in its handle table.
        None
    };
    let Some(e) = e else {
        return STATUS_INVALID_HANDLE;
    };
    if !ObjectType.is_null() && kind_of_type(ObjectType as usize) != Some(e.kind) {
        return STATUS_OBJECT_TYPE_MISMATCH;
    }
    if AccessMode != 0 && DesiredAccess & !e.access != 0 {
        return STATUS_ACCESS_DENIED;
    }
    if Object.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    if let Err(bc) = m.ob.reference(e.object) {
        raise(&m, bc);
    }
    // SAFETY: writable pointer storage per the contract.
    unsafe { Object.write_unaligned(e.object.0 as PVOID) };
    STATUS_SUCCESS
}
