//! Object manager: reference counts for driver, device and file objects; the namespace of
//! device names and symbolic links; the driver list.
#![allow(non_snake_case)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use nt_abi::bugcheck;
use nt_abi::*;

use crate::machine::{current, lock, raise};
use crate::verifier::Bc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjKind {
    Driver,
    Device,
    File,
}

#[derive(Clone, Debug)]
pub struct ObjRec {
    pub kind: ObjKind,
    pub refs: i64,
    /// IoDeleteDevice was called (the object stays until its last reference goes).
    pub deleted: bool,
    pub owner: usize,
    pub name: Option<String>,
}

#[derive(Clone, Debug)]
pub struct LinkRec {
    pub link: String,
    pub target: String,
    pub owner: usize,
}

pub struct DriverRec {
    pub name: String,
    pub object: usize,
    pub image: Option<Arc<crate::pe::Image>>,
    /// `Driver::unload` was asked for (DOE_UNLOAD_PENDING on its devices): opens of its
    /// devices fail with STATUS_NO_SUCH_DEVICE from then on.
    pub unload_pending: bool,
    pub unloaded: bool,
}

#[derive(Default)]
pub struct Objects {
    pub objects: HashMap<usize, ObjRec>,
    pub drivers: Vec<DriverRec>,
    /// Lower-cased device name → device object.
    pub devices: BTreeMap<String, usize>,
    /// Lower-cased link name → link.
    pub links: BTreeMap<String, LinkRec>,
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

/// `ObfReferenceObject`: returns the new count.
///
/// # Safety
/// `Object` should be an object ntsim created; unknown pointers are counted too.
pub unsafe extern "win64" fn ObfReferenceObject(Object: PVOID) -> isize {
    let m = current();
    let mut g = lock(&m.ob);
    match g.objects.get_mut(&(Object as usize)) {
        Some(o) => {
            if o.refs <= 0 && o.deleted {
                drop(g);
                raise(
                    &m,
                    Bc::new(bugcheck::REFERENCE_BY_POINTER, [Object as u64, 0, 0, 0]),
                );
            }
            o.refs += 1;
            o.refs as isize
        }
        None => 1,
    }
}

/// `ObfDereferenceObject`: returns the new count.
///
/// # Safety
/// `Object` should be an object ntsim created and referenced by the caller.
pub unsafe extern "win64" fn ObfDereferenceObject(Object: PVOID) -> isize {
    let m = current();
    match deref(&m, Object as usize) {
        Ok(n) => n as isize,
        Err(bc) => raise(&m, bc),
    }
}

pub(crate) fn reference(m: &crate::machine::Inner, obj: usize) -> Result<(), Bc> {
    let mut g = lock(&m.ob);
    if let Some(o) = g.objects.get_mut(&obj) {
        if o.deleted && o.refs <= 0 {
            return Err(Bc::new(
                bugcheck::REFERENCE_BY_POINTER,
                [obj as u64, 0, 0, 0],
            ));
        }
        o.refs += 1;
    }
    Ok(())
}

pub(crate) fn deref(m: &crate::machine::Inner, obj: usize) -> Result<i64, Bc> {
    let mut g = lock(&m.ob);
    match g.objects.get_mut(&obj) {
        Some(o) => {
            if o.refs <= 0 {
                if m.verifier() {
                    return Err(Bc::verifier(
                        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                        [
                            bugcheck::verifier::REFERENCE_COUNT_UNDERFLOW,
                            obj as u64,
                            0,
                            0,
                        ],
                    ));
                }
                return Ok(0);
            }
            o.refs -= 1;
            Ok(o.refs)
        }
        None => Ok(0),
    }
}
