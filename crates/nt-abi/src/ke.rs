//! Kernel executive primitives: IRQL, dispatcher objects, spin locks.
#![allow(non_camel_case_types, non_snake_case)]

use crate::types::*;

pub type KIRQL = u8;
pub const PASSIVE_LEVEL: KIRQL = 0;
pub const LOW_LEVEL: KIRQL = 0;
pub const APC_LEVEL: KIRQL = 1;
pub const DISPATCH_LEVEL: KIRQL = 2;
pub const HIGH_LEVEL: KIRQL = 15;

pub type KSPIN_LOCK = ULONG_PTR;

/// `EVENT_TYPE`.
pub type EVENT_TYPE = i32;
pub const NOTIFICATION_EVENT: EVENT_TYPE = 0;
pub const SYNCHRONIZATION_EVENT: EVENT_TYPE = 1;

/// `KWAIT_REASON` (only the values drivers pass).
pub type KWAIT_REASON = i32;
pub const EXECUTIVE: KWAIT_REASON = 0;

/// `DISPATCHER_HEADER`: the first 0x18 bytes of every waitable kernel object.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DISPATCHER_HEADER {
    pub Type: UCHAR,
    pub Signalling: UCHAR,
    pub Size: UCHAR,
    pub Reserved1: UCHAR,
    pub SignalState: LONG,
    pub WaitListHead: LIST_ENTRY,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct KEVENT {
    pub Header: DISPATCHER_HEADER,
}

/// `DISPATCHER_HEADER.Type` values for events.
pub const EVENT_NOTIFICATION_OBJECT: UCHAR = 0;
pub const EVENT_SYNCHRONIZATION_OBJECT: UCHAR = 1;
