//! The owned work item and the routine trampolines.
//!
//! Ownership model: a [`WorkItem`] is an initialized, not-queued work item. `queue(self, …)`
//! moves it into the system work queue; the kernel hands it back by value to
//! [`Routine::run`] on a worker thread, which may queue it again or drop it (uninitializing it
//! inside its own routine, which the documentation explicitly allows).

use core::ffi::c_void;
use core::marker::PhantomData;
use core::mem;
use core::ptr::{self, NonNull};

use nt_abi::{DEVICE_OBJECT, PIO_WORKITEM, PVOID};

use crate::backend::Backend;
use crate::device::{Device, IoObject};
use crate::queue::QueueType;
use crate::slab::{Control, Geometry, Slab, SlotHeader};

/// The code a queued item runs on a system worker thread (PASSIVE_LEVEL).
///
/// `run` receives the item back by value: it owns it again and may read or change its payload,
/// [`queue`](WorkItem::queue) it again (a requeue chain), or let it drop (uninitialize inside
/// the routine and return the slot). Routines are types, usually zero-sized, picked at the
/// queue call (`item.queue::<MyRoutine>(…)`); the same payload type can have several.
///
/// A routine must return at PASSIVE_LEVEL, with no mutex held and its APC state unchanged
/// (bug checks 0xE1, 0x39 and 0x1 otherwise). A panic in a `no_std` driver is a bug check.
///
/// ```
/// # #[path = "../tests/support/fake.rs"] mod fake;
/// # fn main() {
/// use io_workitem::{Backend, QueueType, Routine, Slab, WorkItem};
/// use core::sync::atomic::{AtomicU32, Ordering};
/// # type Kernel = fake::Fake<4>;
/// # let dev = fake::FakeDevice::new();
/// # let device = dev.device();
///
/// static RUNS: AtomicU32 = AtomicU32::new(0);
///
/// /// Counts one run, then uninitializes the item inside its own routine (by dropping it).
/// struct CountAndDrop;
/// impl<B: Backend> Routine<B, u32> for CountAndDrop {
///     fn run(item: WorkItem<'_, B, u32>) {
///         // The device the item was initialized against, e.g. to reach its extension.
///         assert!(!item.io_object().as_raw().is_null());
///         RUNS.fetch_add(*item.payload(), Ordering::Relaxed);
///     }
/// }
///
/// let slab = Slab::<Kernel, u32>::new(device, 4, u32::from_le_bytes(*b"WiRt")).unwrap();
/// slab.acquire(3).unwrap().queue::<CountAndDrop>(QueueType::Delayed);
/// slab.acquire(4).unwrap().queue::<CountAndDrop>(QueueType::Delayed);
/// drop(slab); // waits for both routines
/// assert_eq!(RUNS.load(Ordering::Relaxed), 7);
/// # fake::Fake::<4>::state().assert_no_leaks();
/// # }
/// ```
///
/// `O` is the slab's I/O object kind ([`Device`] unless the slab was built on a
/// [`Driver`](crate::Driver)).
///
/// The routine reaches the I/O object the item was initialized against (the device whose
/// extension holds the driver's state, typically) through [`WorkItem::io_object`]: no raw
/// pointer needs to travel in the payload.
pub trait Routine<B: Backend, P, O: IoObject = Device>: 'static {
    /// Run the work. `item` is owned again: requeue it or drop it.
    fn run(item: WorkItem<'_, B, P, O>);
}

/// An initialized, not-queued work item in a [`Slab`] slot, with its payload.
///
/// - Dropping it calls `IoUninitializeWorkItem` exactly once, drops the payload and returns the
///   slot to the slab's free list (IRQL ≤ DISPATCH_LEVEL).
/// - [`queue`](WorkItem::queue) / [`queue_ex`](WorkItem::queue_ex) consume it: a queued item
///   has no owner on the caller's side, so it cannot be queued twice, used or uninitialized
///   while queued. The routine gets it back by value.
/// - `'slab` borrows the slab, so the slab cannot be torn down while an item is held, and the
///   I/O object an item hands out ([`io_object`](WorkItem::io_object)) cannot outlive it.
///
/// ```
/// # #[path = "../tests/support/fake.rs"] mod fake;
/// # fn main() {
/// use std::sync::Mutex;
/// use io_workitem::{Backend, QueueType, Routine, Slab, WorkItem};
/// # type Kernel = fake::Fake<5>;
/// # let dev = fake::FakeDevice::new();
/// # let device = dev.device();
///
/// static SEEN: Mutex<Vec<[u64; 2]>> = Mutex::new(Vec::new());
///
/// struct Bump;
/// impl<B: Backend> Routine<B, [u64; 2]> for Bump {
///     fn run(mut item: WorkItem<'_, B, [u64; 2]>) {
///         item.payload_mut()[1] += 1; // the routine owns the item (and its payload) again
///         SEEN.lock().unwrap().push(*item.payload());
///     }
/// }
///
/// let slab = Slab::<Kernel, [u64; 2]>::new(device, 1, u32::from_le_bytes(*b"WiCy")).unwrap();
/// let mut item = slab.acquire([7, 0]).unwrap(); // initialized, not queued
/// item.payload_mut()[0] += 1;
/// let first = item.into_payload(); // uninitialized, slot returned, payload handed back
/// assert_eq!(first, [8, 0]);
/// let item = slab.acquire(first).unwrap(); // the one slot is free again
/// item.queue::<Bump>(QueueType::Delayed); // `item` is gone: the queue owns it
/// drop(slab);
/// assert_eq!(*SEEN.lock().unwrap(), [[8, 1]]);
/// # fake::Fake::<5>::state().assert_no_leaks();
/// # }
/// ```
///
/// # Invariants
///
/// `slot` is a slot of a live slab whose control block is `control`, in state `IN_USE`, holding
/// an initialized, not-queued work item and a live, aligned payload `P`; this `WorkItem` is its
/// only owner. The slab (and so its pool block and its reference on the I/O object) stays alive
/// for `'slab`: a borrow of the `Slab` outside a routine, the routine's rundown activation
/// inside one.
#[must_use = "dropping a WorkItem uninitializes it at once: queue it, keep it, or drop it knowingly"]
pub struct WorkItem<'slab, B: Backend, P, O: IoObject = Device> {
    slot: NonNull<SlotHeader<B>>,
    /// The slab's control block (also in the slot header; cached to keep the hot path short).
    control: NonNull<Control<B>>,
    _marker: PhantomData<ItemMarker<'slab, P, O>>,
}

/// Borrows the slab for `'slab`, owns a `P`, and is bound to an `O`.
type ItemMarker<'slab, P, O> = (&'slab (), P, fn() -> O);

// SAFETY: a WorkItem owns its slot, its payload and the right to queue or uninitialize the work
// item; all of those may move to another thread with it as long as the payload may (`P: Send`).
// The slab state it touches is atomic.
unsafe impl<B: Backend, P: Send, O: IoObject> Send for WorkItem<'_, B, P, O> {}
// SAFETY: `&WorkItem` only gives `&P` and read-only queries.
unsafe impl<B: Backend, P: Sync, O: IoObject> Sync for WorkItem<'_, B, P, O> {}

impl<'slab, B: Backend, P, O: IoObject> WorkItem<'slab, B, P, O> {
    /// Wrap an owned slot.
    ///
    /// # Safety
    ///
    /// `slot` is a slot of a live slab whose control block is `control`, in state `IN_USE`,
    /// holding an initialized, not-queued work item and a live payload of type `P`; nobody else
    /// owns it; the slab outlives `'slab` (or, for a routine, cannot be freed before the
    /// routine's activation ends).
    #[inline]
    pub(crate) unsafe fn from_raw(slot: *mut SlotHeader<B>, control: *const Control<B>) -> Self {
        WorkItem {
            // SAFETY: a slot pointer of a live slab is never null (caller).
            slot: unsafe { NonNull::new_unchecked(slot) },
            // SAFETY: as above, for the control block.
            control: unsafe { NonNull::new_unchecked(control.cast_mut()) },
            _marker: PhantomData,
        }
    }

    #[inline]
    fn header(&self) -> &SlotHeader<B> {
        // SAFETY: the slot is owned by `self` and the slab is alive (`WorkItem` invariant).
        unsafe { self.slot.as_ref() }
    }

    #[inline]
    fn control(&self) -> &'slab Control<B> {
        // SAFETY: the slab, and so its control block, is alive for `'slab` (`WorkItem`
        // invariant).
        unsafe { self.control.as_ref() }
    }

    /// The I/O object (device or driver object) the item was initialized against — in a
    /// routine, the object the kernel passes to it. Valid for as long as the slab borrow is:
    /// the slab holds a reference on the object.
    #[inline]
    pub fn io_object(&self) -> &'slab O {
        // SAFETY: `io_object` came from `O::io_object_ptr` in `Slab::new` (a `Slab<B, P, O>`
        // built it), and the slab's reference keeps the object live while the slab is, i.e. for
        // `'slab` (`WorkItem` and `Slab` invariants).
        unsafe { O::from_io_object_ptr(self.control().io_object) }
    }

    #[inline]
    fn payload_ptr(&self) -> *mut P {
        self.slot
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(Geometry::<B, P>::PAYLOAD_OFFSET)
            .cast()
    }

    /// The raw `PIO_WORKITEM` (for diagnostics; using it is `unsafe` and outside this API).
    #[inline]
    pub fn as_raw(&self) -> PIO_WORKITEM {
        self.slot
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(Geometry::<B, P>::ITEM_OFFSET)
            .cast()
    }

    /// The payload.
    #[inline]
    pub fn payload(&self) -> &P {
        // SAFETY: an owned slot holds a live `P`, aligned (`WorkItem` invariant); `&self`
        // excludes mutation.
        unsafe { &*self.payload_ptr() }
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut P {
        // SAFETY: as for `payload`; `&mut self` makes the access unique.
        unsafe { &mut *self.payload_ptr() }
    }

    /// This item's slot index in its slab (`0..capacity`).
    #[inline]
    pub fn slot_index(&self) -> u32 {
        self.header().index
    }

    /// Whether the slab's teardown has started: a requeue chain should stop and drop its item.
    #[inline]
    pub fn is_shutting_down(&self) -> bool {
        self.control().is_draining()
    }

    /// Uninitialize the work item, return the slot, and hand the payload back.
    #[inline]
    #[must_use = "the payload is handed back; dropping it here is the same as dropping the item"]
    pub fn into_payload(self) -> P {
        // `self` is never dropped from here on, so the payload is neither dropped in place nor
        // retired twice, even if `retire` unwinds (host tests).
        let this = mem::ManuallyDrop::new(self);
        // SAFETY: the payload is live; it is read out exactly once (`this` is never dropped).
        let payload = unsafe { ptr::read(this.payload_ptr()) };
        this.retire();
        payload
    }

    /// Uninitialize and free the slot, leaving the payload alone. Called once per item.
    #[inline]
    fn retire(&self) {
        // SAFETY: the item is initialized and not queued (it is owned by `self`), and this is
        // the only uninitialize for this initialization (`retire` runs once: from `drop` or
        // from `into_payload`, which forgets `self`).
        unsafe { B::uninitialize(self.as_raw()) };
        self.control().release(self.header());
    }

    #[inline]
    fn begin_queue(self) -> (PIO_WORKITEM, PVOID) {
        self.control().activation_begin();
        let raw = self.as_raw();
        let context: PVOID = self.slot.as_ptr().cast();
        // Ownership passes to the queue: no uninitialize, no payload drop.
        mem::forget(self);
        (raw, context)
    }

    /// `IoQueueWorkItemEx`: as [`queue`](WorkItem::queue), through the Ex entry point (whose
    /// routine also receives the I/O object and the `PIO_WORKITEM`; the trampoline checks the
    /// latter against the slot). IRQL ≤ DISPATCH_LEVEL.
    #[inline]
    pub fn queue_ex<R: Routine<B, P, O>>(self, queue_type: QueueType)
    where
        P: Send + 'static,
    {
        let (raw, context) = self.begin_queue();
        // SAFETY: the item is initialized against a device or driver object (either is valid
        // for the Ex entry point) and was not queued (it was owned); `queue_type` is valid by
        // construction; `trampoline_ex::<B, P, O, R>` is exactly the routine that expects this
        // context (a slot header of a `Slab<B, P, O>`). The rundown activation taken above keeps
        // the slab alive until the routine returns.
        unsafe { B::queue_ex(raw, trampoline_ex::<B, P, O, R>, queue_type.raw(), context) };
    }

    /// Detach the item from the slab borrow, e.g. to hand it from a routine back to the thread
    /// that queued it ("uninitialize in the caller"). IRQL ≤ DISPATCH_LEVEL.
    ///
    /// A [`Detached`] item is `'static` (and `Send` if `P` is), and holds a rundown reference on
    /// the slab instead of a borrow: teardown waits until it is dropped or re-attached. So a
    /// thread must not tear the slab down while it still holds a `Detached` of that slab (that
    /// would wait forever), and forgetting one makes teardown wait forever.
    #[inline]
    pub fn detach(self) -> Detached<B, P, O> {
        self.control().detach_begin();
        let slot = self.slot;
        // The owner changes from `self` to the `Detached`: no uninitialize, no payload drop.
        mem::forget(self);
        Detached {
            slot,
            _marker: PhantomData,
        }
    }
}

impl<B: Backend, P> WorkItem<'_, B, P, Device> {
    /// `IoQueueWorkItem`: hand the item to the system work queue `queue_type`; the kernel runs
    /// `R::run` with it on a worker thread. IRQL ≤ DISPATCH_LEVEL.
    ///
    /// The payload travels to another thread, so it must be `Send`, and `'static`, because the
    /// routine may run after the caller's stack frame is gone. Only items of a [`Device`] slab
    /// have this method: the kernel requires a device object for `IoQueueWorkItem`.
    #[inline]
    pub fn queue<R: Routine<B, P>>(self, queue_type: QueueType)
    where
        P: Send + 'static,
    {
        let (raw, context) = self.begin_queue();
        // SAFETY: the item is initialized against a device object (this method exists only for
        // slabs built on a `Device`) and was not queued (it was owned); `queue_type` is valid
        // by construction; `trampoline::<B, P, R>` is exactly the routine that expects this
        // context (a slot header of a `Slab<B, P, Device>`). The rundown activation taken above
        // keeps the slab alive until the routine returns.
        unsafe { B::queue(raw, trampoline::<B, P, R>, queue_type.raw(), context) };
    }
}

/// An initialized, not-queued work item that holds a rundown reference on its slab instead of
/// a borrow: what [`WorkItem::detach`] returns.
///
/// It can cross threads and outlive any borrow (it is `'static`; `Send` if `P: Send`), which is
/// how a routine hands its item back to the requesting thread. Dropping it uninitializes the
/// work item, drops the payload, returns the slot and releases the rundown reference (IRQL ≤
/// DISPATCH_LEVEL); [`attach`](Detached::attach) turns it back into a borrowed [`WorkItem`]
/// (to queue it again).
///
/// ```
/// # #[path = "../tests/support/fake.rs"] mod fake;
/// # fn main() {
/// use std::sync::mpsc;
/// use std::sync::Mutex;
/// use io_workitem::{Backend, Detached, QueueType, Routine, Slab, WorkItem};
/// # type Kernel = fake::Fake<6>;
/// # let dev = fake::FakeDevice::new();
/// # let device = dev.device();
///
/// static RETURNED: Mutex<Option<mpsc::Sender<Detached<Kernel, u32>>>> = Mutex::new(None);
///
/// /// Hands the item back instead of dropping it; the caller uninitializes it.
/// struct GiveBack;
/// impl Routine<Kernel, u32> for GiveBack {
///     fn run(item: WorkItem<'_, Kernel, u32>) {
///         let detached: Detached<Kernel, u32> = item.detach(); // 'static and Send
///         RETURNED.lock().unwrap().as_ref().unwrap().send(detached).unwrap();
///     }
/// }
///
/// let (tx, rx) = mpsc::channel();
/// *RETURNED.lock().unwrap() = Some(tx);
/// let slab = Slab::<Kernel, u32>::new(device, 2, u32::from_le_bytes(*b"WiDt")).unwrap();
/// slab.acquire(1).unwrap().queue::<GiveBack>(QueueType::Delayed);
/// let mut back = rx.recv().unwrap(); // the requesting thread owns the item again
/// *back.payload_mut() += 1;
/// match back.attach(&slab) {
///     Ok(item) => item.queue::<GiveBack>(QueueType::Delayed), // once more
///     Err(other_slabs_item) => drop(other_slabs_item),
/// }
/// let back = rx.recv().unwrap();
/// assert_eq!(*back.payload(), 2);
/// drop(back); // uninitialized in the caller
/// drop(slab);
/// # fake::Fake::<6>::state().assert_no_leaks();
/// # }
/// ```
///
/// # Invariants
///
/// As for [`WorkItem`], except that what keeps the slab alive is one rundown reference counted in
/// its control block's `active` (taken by `detach`, released by `attach` or `drop`): teardown
/// waits for it, so the slot, the control block and the I/O object stay live while `self` is.
#[must_use = "dropping a Detached uninitializes the item at once"]
pub struct Detached<B: Backend, P, O: IoObject = Device> {
    slot: NonNull<SlotHeader<B>>,
    _marker: PhantomData<(P, fn() -> O)>,
}

// SAFETY: as for `WorkItem`: it owns its slot, payload and work item; the slab state it touches
// is atomic, and the slab's block stays alive while the rundown reference is held.
unsafe impl<B: Backend, P: Send, O: IoObject> Send for Detached<B, P, O> {}
// SAFETY: `&Detached` only gives `&P` and read-only queries.
unsafe impl<B: Backend, P: Sync, O: IoObject> Sync for Detached<B, P, O> {}

impl<B: Backend, P, O: IoObject> Detached<B, P, O> {
    #[inline]
    fn header(&self) -> &SlotHeader<B> {
        // SAFETY: the slot is owned by `self`; the rundown reference keeps the block alive
        // (`Detached` invariant).
        unsafe { self.slot.as_ref() }
    }

    /// The I/O object the item was initialized against (see [`WorkItem::io_object`]).
    #[inline]
    pub fn io_object(&self) -> &O {
        // SAFETY: the rundown reference keeps the control block alive while `self` is
        // (`Detached` invariant).
        let control = unsafe { &*self.header().control };
        // SAFETY: the same rundown reference keeps the slab's reference on the object alive;
        // the pointer came from `O::io_object_ptr` in `Slab::<B, P, O>::new`.
        unsafe { O::from_io_object_ptr(control.io_object) }
    }

    #[inline]
    fn payload_ptr(&self) -> *mut P {
        self.slot
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(Geometry::<B, P>::PAYLOAD_OFFSET)
            .cast()
    }

    /// The payload.
    #[inline]
    pub fn payload(&self) -> &P {
        // SAFETY: an owned slot holds a live, aligned `P`; `&self` excludes mutation.
        unsafe { &*self.payload_ptr() }
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut P {
        // SAFETY: as for `payload`; `&mut self` makes the access unique.
        unsafe { &mut *self.payload_ptr() }
    }

    /// This item's slot index in its slab.
    #[inline]
    pub fn slot_index(&self) -> u32 {
        self.header().index
    }

    /// Re-attach to `slab` (the slab the item came from), giving back a borrowed [`WorkItem`]
    /// and releasing the rundown reference. `Err(self)` if the item belongs to another slab.
    #[inline]
    pub fn attach<'s>(self, slab: &'s Slab<B, P, O>) -> Result<WorkItem<'s, B, P, O>, Self> {
        let control = self.header().control;
        if !ptr::eq(control, slab.control_ptr()) {
            return Err(self);
        }
        let slot = self.slot.as_ptr();
        mem::forget(self);
        // SAFETY: the rundown reference taken by `detach` ends here. `slab` is borrowed, so its
        // teardown has not started and its own reference keeps the count above zero: this does
        // not signal, and the block stays alive.
        unsafe { Control::<B>::activation_end(control) };
        // SAFETY: the slot is in use, initialized, not queued, with a live payload, owned by
        // nobody else (the `Detached` was forgotten); `'s` borrows the slab it belongs to.
        Ok(unsafe { WorkItem::from_raw(slot, control) })
    }
}

impl<B: Backend, P, O: IoObject> core::fmt::Debug for Detached<B, P, O> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Detached")
            .field("slot", &self.slot_index())
            .finish_non_exhaustive()
    }
}

impl<B: Backend, P, O: IoObject> Drop for Detached<B, P, O> {
    /// `IoUninitializeWorkItem`, drop the payload, return the slot, release the rundown
    /// reference. IRQL ≤ DISPATCH_LEVEL.
    fn drop(&mut self) {
        let control = self.header().control;
        // SAFETY: the payload is live and dropped exactly once, here.
        unsafe { ptr::drop_in_place(self.payload_ptr()) };
        let item: PIO_WORKITEM = self
            .slot
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(Geometry::<B, P>::ITEM_OFFSET)
            .cast();
        // SAFETY: the item is initialized and not queued (owned by `self`), uninitialized once.
        unsafe { B::uninitialize(item) };
        // SAFETY: the rundown reference keeps the control block alive.
        let ctl = unsafe { &*control };
        ctl.release(self.header());
        // SAFETY: the reference taken by `detach` ends here; nothing touches the slab after.
        unsafe { Control::<B>::activation_end(control) };
    }
}

impl<B: Backend, P, O: IoObject> Drop for WorkItem<'_, B, P, O> {
    /// `IoUninitializeWorkItem`, drop the payload, return the slot. IRQL ≤ DISPATCH_LEVEL.
    fn drop(&mut self) {
        // SAFETY: the payload is live and dropped exactly once, here.
        unsafe { ptr::drop_in_place(self.payload_ptr()) };
        self.retire();
    }
}

impl<B: Backend, P: core::fmt::Debug, O: IoObject> core::fmt::Debug for WorkItem<'_, B, P, O> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WorkItem")
            .field("slot", &self.slot_index())
            .field("payload", self.payload())
            .finish()
    }
}

/// Rebuild the owned item from the context pointer and run the routine.
///
/// # Safety
///
/// `context` is the slot-header pointer a `WorkItem<B, P>` passed when it queued itself, with
/// one rundown activation taken for this run.
#[inline(always)]
unsafe fn run_slot<B: Backend, P, O: IoObject, R: Routine<B, P, O>>(context: PVOID) {
    let slot = context.cast::<SlotHeader<B>>();
    // SAFETY: `slot` is a live slot header: the activation taken by `begin_queue` keeps the
    // slab's block alive (teardown waits for it), and the kernel passes our context unchanged.
    let header = unsafe { &*slot };
    // Read the control block address now: once `run` drops or requeues the item, the slot may
    // belong to someone else.
    let control: *const Control<B> = header.control;
    // SAFETY: the kernel dequeued the item before calling us, so the queue no longer owns it;
    // ownership returns to this routine. The slot is in use, initialized, with a live payload.
    // The item's lifetime is local to `run` (higher-ranked), so it cannot escape the routine
    // into anything longer-lived; the slab stays alive until `activation_end` below.
    let item = unsafe { WorkItem::<B, P, O>::from_raw(slot, control) };
    R::run(item);
    // SAFETY: this run's activation, taken in `begin_queue`, ends here; nothing below touches
    // the slab. The driver image stays mapped: the I/O manager holds its reference on the I/O
    // object until this function returns.
    unsafe { Control::<B>::activation_end(control) };
}

nt_abi::kernel_fn! {
    /// `IO_WORKITEM_ROUTINE` for [`WorkItem::queue`].
    ///
    /// # Safety
    ///
    /// Called by the kernel (or a backend) with the context `WorkItem::queue` passed.
    unsafe fn trampoline<B: Backend, P, R: Routine<B, P>>(
        _device: *mut DEVICE_OBJECT,
        context: PVOID,
    ) {
        // SAFETY: `context` comes from `WorkItem::<B, P>::queue` with an activation (caller).
        unsafe { run_slot::<B, P, Device, R>(context) }
    }
}

nt_abi::kernel_fn! {
    /// `IO_WORKITEM_ROUTINE_EX` for [`WorkItem::queue_ex`].
    ///
    /// # Safety
    ///
    /// Called by the kernel (or a backend) with the context `WorkItem::queue_ex` passed.
    unsafe fn trampoline_ex<B: Backend, P, O: IoObject, R: Routine<B, P, O>>(
        _io_object: *mut c_void,
        context: PVOID,
        io_work_item: PIO_WORKITEM,
    ) {
        debug_assert_eq!(
            io_work_item.cast::<u8>(),
            context
                .cast::<u8>()
                .wrapping_add(Geometry::<B, P>::ITEM_OFFSET),
            "IoQueueWorkItemEx passed a different work item than the context's"
        );
        let _ = io_work_item;
        // SAFETY: `context` comes from `WorkItem::<B, P, O>::queue_ex` with an activation
        // (caller).
        unsafe { run_slot::<B, P, O, R>(context) }
    }
}
