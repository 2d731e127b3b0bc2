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

/// The kernel handle table.
#[derive(Default)]
pub(crate) struct Handles {
    table: Mutex<HashMap<u64, Entry>>,
    next: AtomicU64,
}

/// An OBJECT_TYPE ntsim hands out as the value of a type data export (`*PsThreadType`,
/// `*ExEventObjectType`): opaque storage whose address identifies the type.
#[repr(C, align(16))]
pub struct TypeObject(pub [u8; 0x100]);

/// `*PsThreadType`.
pub static PS_THREAD_TYPE: TypeObject = TypeObject([0; 0x100]);
/// `*ExEventObjectType`.
pub static EX_EVENT_OBJECT_TYPE: TypeObject = TypeObject([0; 0x100]);

/// The object-type address of an object kind (what a type data export's variable holds).
pub fn type_object(kind: ObjKind) -> Option<usize> {
    match kind {
        ObjKind::Thread => Some(&PS_THREAD_TYPE as *const TypeObject as usize),
        ObjKind::Event => Some(&EX_EVENT_OBJECT_TYPE as *const TypeObject as usize),
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

    fn close(&self, h: u64) -> Option<Entry> {
        lock(&self.table).remove(&h)
    }

    fn get(&self, h: u64) -> Option<Entry> {
        lock(&self.table).get(&h).copied()
    }
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
    let Some(e) = m.ob.handles.close(Handle as u64) else {
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
    let Some(e) = m.ob.handles.get(Handle as u64) else {
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
