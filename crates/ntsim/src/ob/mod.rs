//! Object manager (above `ke`; beside `ex`): object headers with their reference counts for
//! driver, device and file objects, and the namespace of device names and symbolic links.
//!
//! A reference count lives in the object's header ([`ObjHeader`], an atomic, as OBJECT_HEADER's
//! PointerCount is updated with interlocked operations); the table maps an object's address to
//! its header. Holders of an [`ObjRef`] (a queued work item's IoObject) count without the
//! table lock.
#![allow(non_snake_case)]

pub mod handle;
pub mod user_event;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use nt_abi::bugcheck;
use nt_abi::*;

use crate::ids::{DriverId, ObjectId};
use crate::ke::bugcheck::raise;
use crate::ke::thread::current;
use crate::machine::lock;
use crate::verifier::{Bc, Hooks};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjKind {
    Driver,
    Device,
    File,
    /// A thread object (PsCreateSystemThread).
    Thread,
    /// An event object reached through a handle.
    Event,
}

/// An object's header: type, owner, name, reference count, deletion.
#[derive(Debug)]
pub(crate) struct ObjHeader {
    object: ObjectId,
    kind: ObjKind,
    refs: AtomicI64,
    /// IoDeleteDevice was called (the object stays until its last reference goes).
    deleted: AtomicBool,
    /// The object's memory was freed (deleted, and its last reference gone).
    freed: AtomicBool,
    owner: DriverId,
    name: Option<String>,
}

/// A counted handle on an object header.
pub(crate) type ObjRef = Arc<ObjHeader>;

impl ObjHeader {
    pub(crate) fn object(&self) -> ObjectId {
        self.object
    }
    pub(crate) fn kind(&self) -> ObjKind {
        self.kind
    }
    pub(crate) fn owner(&self) -> DriverId {
        self.owner
    }
    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::SeqCst)
    }

    /// ObReferenceObject: 0x18 REFERENCE_BY_POINTER for a deleted object with no references.
    pub(crate) fn reference(&self) -> Result<i64, Bc> {
        if self.is_deleted() && self.refs.load(Ordering::SeqCst) <= 0 {
            return Err(Bc::new(
                bugcheck::REFERENCE_BY_POINTER,
                [self.object.0 as u64, 0, 0, 0],
            ));
        }
        Ok(self.refs.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// ObDereferenceObject: a count going below zero is the verifier's 0xC4/0x3F (without the
    /// verifier it is ignored and reads 0).
    pub(crate) fn dereference(&self, verifier: &Hooks) -> Result<i64, Bc> {
        match self
            .refs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| {
                (r > 0).then(|| r - 1)
            }) {
            Ok(prev) => Ok(prev - 1),
            Err(_) => match verifier.on_deref_underflow(self.object.0) {
                Some(bc) => Err(bc),
                None => Ok(0),
            },
        }
    }
}

#[derive(Clone, Debug)]
struct LinkRec {
    link: String,
    target: String,
    owner: DriverId,
}

#[derive(Default)]
struct Namespace {
    objects: HashMap<ObjectId, ObjRef>,
    /// Lower-cased device name → device object.
    devices: BTreeMap<String, ObjectId>,
    /// Lower-cased link name → link.
    links: BTreeMap<String, LinkRec>,
}

/// The object manager's state.
#[derive(Default)]
pub(crate) struct Ob {
    ns: Mutex<Namespace>,
    /// The kernel handle table ([`handle`]).
    pub(crate) handles: handle::Handles,
}

/// Normalize an object-manager path for lookups (case-insensitive; `\??\` = `\DosDevices\`).
pub fn norm(name: &str) -> String {
    let l = name.to_ascii_lowercase();
    if let Some(rest) = l.strip_prefix("\\??\\") {
        format!("\\dosdevices\\{rest}")
    } else if let Some(rest) = l.strip_prefix("\\global??\\") {
        format!("\\dosdevices\\{rest}")
    } else {
        l
    }
}

impl Ob {
    /// Create an object's header with one reference (the creator's).
    pub(crate) fn insert(
        &self,
        object: ObjectId,
        kind: ObjKind,
        owner: DriverId,
        name: Option<String>,
    ) -> ObjRef {
        let h = Arc::new(ObjHeader {
            object,
            kind,
            refs: AtomicI64::new(1),
            deleted: AtomicBool::new(false),
            freed: AtomicBool::new(false),
            owner,
            name,
        });
        lock(&self.ns).objects.insert(object, h.clone());
        h
    }

    /// The header of `object`, if ntsim created it.
    pub(crate) fn header(&self, object: ObjectId) -> Option<ObjRef> {
        lock(&self.ns).objects.get(&object).cloned()
    }

    /// Forget an object (a closed file object).
    pub(crate) fn remove(&self, object: ObjectId) {
        lock(&self.ns).objects.remove(&object);
    }

    /// Reference `object` (objects ntsim did not create are not counted).
    pub(crate) fn reference(&self, object: ObjectId) -> Result<(), Bc> {
        match self.header(object) {
            Some(h) => h.reference().map(drop),
            None => Ok(()),
        }
    }

    /// Dereference `object` and, if it is a device object that IoDeleteDevice deleted and this
    /// was its last reference, free it ([`release_if_gone`]).
    pub(crate) fn dereference_and_release(
        &self,
        sys: &crate::machine::System,
        object: ObjectId,
    ) -> Result<i64, Bc> {
        match self.header(object) {
            Some(h) => {
                let n = h.dereference(&sys.verifier)?;
                release_if_gone(sys, &h);
                Ok(n)
            }
            None => Ok(0),
        }
    }

    /// Mark `object` deleted (a driver object after DriverUnload: `ObMakeTemporaryObject`) and
    /// drop its creator's reference; freed now if that was the last one.
    pub(crate) fn delete_and_release(
        &self,
        sys: &crate::machine::System,
        object: ObjectId,
    ) -> Result<i64, Bc> {
        if let Some(h) = self.header(object) {
            h.deleted.store(true, Ordering::SeqCst);
        }
        self.dereference_and_release(sys, object)
    }

    /// Whether a device named `name` exists.
    pub(crate) fn device_name_taken(&self, name: &str) -> bool {
        lock(&self.ns).devices.contains_key(&norm(name))
    }

    /// Enter `\Device\Name` → `device` in the namespace.
    pub(crate) fn insert_device_name(&self, name: &str, device: ObjectId) {
        lock(&self.ns).devices.insert(norm(name), device);
    }

    /// IoDeleteDevice's part: mark a live device deleted and drop its name. False if `device`
    /// is not a live device object.
    pub(crate) fn mark_device_deleted(&self, device: ObjectId) -> bool {
        let mut g = lock(&self.ns);
        let Some(h) = g.objects.get(&device) else {
            return false;
        };
        if h.kind != ObjKind::Device || h.is_deleted() {
            return false;
        }
        h.deleted.store(true, Ordering::SeqCst);
        g.devices.retain(|_, v| *v != device);
        true
    }

    /// Create a symbolic link; false on a name collision.
    pub(crate) fn create_link(&self, link: String, target: String, owner: DriverId) -> bool {
        let mut g = lock(&self.ns);
        let k = norm(&link);
        if g.links.contains_key(&k) {
            return false;
        }
        g.links.insert(
            k,
            LinkRec {
                link,
                target,
                owner,
            },
        );
        true
    }

    /// Delete a symbolic link; false if there is none by that name.
    pub(crate) fn delete_link(&self, link: &str) -> bool {
        lock(&self.ns).links.remove(&norm(link)).is_some()
    }

    /// Resolve `\\.\Name`, `\DosDevices\Name`, `\??\Name` or `\Device\Name` (following links)
    /// to a device object.
    pub(crate) fn resolve_device(&self, path: &str) -> Option<ObjectId> {
        let g = lock(&self.ns);
        let p = if let Some(rest) = path.strip_prefix("\\\\.\\") {
            format!("\\dosdevices\\{rest}")
        } else {
            norm(path)
        };
        let mut name = norm(&p);
        for _ in 0..8 {
            if let Some(l) = g.links.get(&name) {
                name = norm(&l.target);
                continue;
            }
            break;
        }
        g.devices.get(&name).copied()
    }

    /// Live (not deleted) device objects of `owner`, with their names.
    pub(crate) fn devices_of(&self, owner: DriverId) -> Vec<(ObjectId, Option<String>)> {
        lock(&self.ns)
            .objects
            .values()
            .filter(|h| h.kind == ObjKind::Device && h.owner == owner && !h.is_deleted())
            .map(|h| (h.object, h.name.clone()))
            .collect()
    }

    /// `link -> target` of every symbolic link `owner` created.
    pub(crate) fn links_of(&self, owner: DriverId) -> Vec<String> {
        lock(&self.ns)
            .links
            .values()
            .filter(|l| l.owner == owner)
            .map(|l| format!("{} -> {}", l.link, l.target))
            .collect()
    }
}

/// Free a device object (with its extension) once IoDeleteDevice has deleted it and its last
/// reference is gone — and a driver object (with its extension) once the driver is unloaded
/// and its last reference is gone (`io::driver`) — as the object manager does on Windows (Microsoft, *IoDeleteDevice*: the
/// device object is freed when its reference count reaches zero; ReactOS
/// `IopDereferenceDeviceObject` / `IopDeleteDevice`). Its pages become inaccessible, so a later
/// use by the driver faults (0x50, reported as stricter than Windows, whose freed pool may stay
/// mapped) instead of going unnoticed.
pub(crate) fn release_if_gone(sys: &crate::machine::System, h: &ObjHeader) {
    if matches!(h.kind, ObjKind::Device | ObjKind::Driver)
        && h.is_deleted()
        && h.refs.load(Ordering::SeqCst) <= 0
        && !h.freed.swap(true, Ordering::SeqCst)
    {
        let p = h.object.0;
        if let Some(size) = sys.ex.pool.sys_free_object(&sys.mm, p as *mut u8) {
            // Locks in the device extension leave Deadlock Detection's graph.
            sys.verifier.on_lock_memory_freed(p, p + size);
        }
    }
}

/// `ObfReferenceObject`: returns the new count.
///
/// # Safety
/// `Object` should be an object ntsim created; unknown pointers are counted too.
pub unsafe extern "win64" fn ObfReferenceObject(Object: PVOID) -> isize {
    let m = current();
    match m.ob.header(ObjectId(Object as usize)) {
        Some(h) => match h.reference() {
            Ok(n) => n as isize,
            Err(bc) => raise(&m, bc),
        },
        None => 1,
    }
}

/// `ObfDereferenceObject`: returns the new count.
///
/// # Safety
/// `Object` should be an object ntsim created and referenced by the caller.
pub unsafe extern "win64" fn ObfDereferenceObject(Object: PVOID) -> isize {
    let m = current();
    match m.ob.dereference_and_release(&m, ObjectId(Object as usize)) {
        Ok(n) => n as isize,
        Err(bc) => raise(&m, bc),
    }
}
