//! Events a user-mode caller shares with a driver: `Machine::create_event` makes an event
//! object and a handle to it in the caller's process (what `CreateEvent` gives an
//! application), to pass in an IOCTL; the driver converts it with
//! `ObReferenceObjectByHandle(h, EVENT_MODIFY_STATE, *ExEventObjectType, UserMode, &event, …)`
//! (Microsoft, *Handle Management*: "call ObReferenceObjectByHandle … with the correct
//! AccessMode (usually Irp->RequestorMode), DesiredAccess and ObjectType (such as
//! ExEventObjectType)") and later sets it.
//!
//! User handles are process handles (no kernel bit): ObReferenceObjectByHandle accepts them
//! only on a thread running in the caller's process — a dispatch routine serving a user
//! request; on a system thread, a work item or a DPC they are STATUS_INVALID_HANDLE, as a
//! handle of another process's table is on Windows. The event object lives until the machine
//! is dropped (not freed at its last dereference).
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nt_abi::*;

use super::ObjKind;
use crate::ids::{DriverId, ObjectId};
use crate::machine::{System, lock};

/// An event created for the user-mode caller, and its handle.
pub struct UserEvent {
    sys: Arc<System>,
    handle: u64,
    event: usize,
    closed: bool,
}

impl crate::Machine {
    /// Create an event in the caller's process (a notification event if `notification`, else
    /// a synchronization event), with a handle granting `access` (EVENT_ALL_ACCESS,
    /// SYNCHRONIZE | EVENT_MODIFY_STATE, …): pass [`UserEvent::handle`] to the driver.
    pub fn create_event(&self, notification: bool, signaled: bool, access: u32) -> UserEvent {
        let sys = self.sys.clone();
        let storage = Box::new(KEVENT {
            Header: DISPATCHER_HEADER {
                Type: if notification {
                    EVENT_NOTIFICATION_OBJECT
                } else {
                    EVENT_SYNCHRONIZATION_OBJECT
                },
                Signalling: 0,
                Size: (core::mem::size_of::<KEVENT>() / 4) as u8,
                Reserved1: 0,
                SignalState: signaled as i32,
                WaitListHead: LIST_ENTRY {
                    Flink: core::ptr::null_mut(),
                    Blink: core::ptr::null_mut(),
                },
            },
        });
        let event = Box::into_raw(storage) as usize;
        lock(&sys.ob.handles.user_events).push(event);
        sys.ob
            .insert(ObjectId(event), ObjKind::Event, DriverId::NONE, None);
        let handle = sys
            .ob
            .handles
            .create_user(ObjectId(event), ObjKind::Event, access);
        UserEvent {
            sys,
            handle,
            event,
            closed: false,
        }
    }
}

impl UserEvent {
    /// The handle value (what the application would put in its IOCTL input).
    pub fn handle(&self) -> u64 {
        self.handle
    }

    fn state(&self) -> &std::sync::atomic::AtomicI32 {
        crate::ke::dispatch::signal_state(self.event as PVOID)
    }

    /// Whether the event is signaled now.
    pub fn is_signaled(&self) -> bool {
        self.state().load(Ordering::SeqCst) != 0
    }

    /// Wait up to `timeout` for the event (a synchronization event is reset by a satisfied
    /// wait, as `WaitForSingleObject` does). True if it was signaled.
    pub fn wait(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let sync =
            crate::ke::dispatch::header_type(self.event as PVOID) == EVENT_SYNCHRONIZATION_OBJECT;
        loop {
            let got = if sync {
                self.state()
                    .compare_exchange(1, 0, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            } else {
                self.is_signaled()
            };
            if got {
                return true;
            }
            if Instant::now() >= end || self.sys.ke.is_bugged() {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Set the event (`SetEvent`).
    pub fn set(&self) {
        self.state().store(1, Ordering::SeqCst);
        crate::ke::dispatch::wake(&self.sys);
    }

    /// Close the handle (`CloseHandle`); the driver's references keep the event alive.
    pub fn close(mut self) {
        self.close_inner();
    }

    fn close_inner(&mut self) {
        if !std::mem::replace(&mut self.closed, true) && self.sys.ob.handles.close_user(self.handle)
        {
            let _ = self
                .sys
                .ob
                .dereference_and_release(&self.sys, ObjectId(self.event));
        }
    }
}

impl Drop for UserEvent {
    fn drop(&mut self) {
        self.close_inner();
    }
}
