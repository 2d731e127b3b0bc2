//! The nonpaged work-item slab: one pool block holding a control block and `capacity` slots,
//! a tagged lock-free free list, counters, and the rundown that makes teardown wait for every
//! queued or running item.
//!
//! Block layout (one `ExAllocatePool2(POOL_FLAG_NON_PAGED)` allocation):
//!
//! ```text
//! [ Control<B> | pad ][ slot 0 ][ slot 1 ] … [ slot capacity-1 ]
//! slot = [ SlotHeader<B> | payload P | pad to 16 | IO_WORKITEM (IoSizeofWorkItem bytes) | pad ]
//! ```

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::marker::PhantomData;
use core::mem::{self, MaybeUninit, align_of, size_of};
use core::ptr::{self, NonNull};

use nt_abi::{MEMORY_ALLOCATION_ALIGNMENT, PIO_WORKITEM};

use crate::backend::Backend;
use crate::device::{Device, IoObject};
use crate::item::WorkItem;
use crate::sync::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

/// Free-list head layout: `[tag:32][free count:16][index:16]`.
const INDEX_MASK: u64 = 0xFFFF;
/// End of the free list (an index no slot has).
const NIL: u32 = 0xFFFF;
/// Largest capacity: every index must fit 16 bits and differ from `NIL`.
pub const MAX_CAPACITY: u32 = NIL - 1;
/// One in the free-count field.
const FREE_ONE: u64 = 1 << 16;
/// One in the tag field (the tag wraps out of the word harmlessly).
const TAG_ONE: u64 = 1 << 32;

const fn free_count(head: u64) -> u32 {
    (head >> 16) as u16 as u32
}

/// Slot states (diagnostics, and how teardown finds items whose owner was leaked).
pub(crate) const FREE: u32 = 0;
/// Taken: the work item is initialized (owned by a `WorkItem` or `Detached`, or queued).
pub(crate) const IN_USE: u32 = 1;

/// Largest payload alignment a slot supports: pool blocks are 16-byte aligned.
pub const MAX_PAYLOAD_ALIGN: usize = MEMORY_ALLOCATION_ALIGNMENT;

const fn round_up(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// Per-slot header, at the start of every slot.
#[repr(C)]
pub(crate) struct SlotHeader<B: Backend> {
    /// The slab's control block; lets a routine find its slab from the context pointer alone.
    pub(crate) control: *const Control<B>,
    /// This slot's index.
    pub(crate) index: u32,
    /// Next free slot while this one is on the free list.
    pub(crate) next: AtomicU32,
    /// `FREE` or `IN_USE`.
    pub(crate) state: AtomicU32,
}

/// Compile-time slot geometry for payload type `P` (only the work-item size is dynamic).
pub(crate) struct Geometry<B, P>(PhantomData<(B, P)>);

impl<B: Backend, P> Geometry<B, P> {
    /// Alignment of every slot (and of the control block's end).
    pub(crate) const SLOT_ALIGN: usize = {
        assert!(
            align_of::<P>() <= MAX_PAYLOAD_ALIGN,
            "io-workitem: payload alignment above 16 is not supported (pool blocks are 16-aligned)"
        );
        assert!(align_of::<SlotHeader<B>>() <= MAX_PAYLOAD_ALIGN);
        assert!(align_of::<Control<B>>() <= MAX_PAYLOAD_ALIGN);
        max(
            MEMORY_ALLOCATION_ALIGNMENT,
            max(align_of::<P>(), align_of::<SlotHeader<B>>()),
        )
    };
    /// Offset of the payload in a slot.
    pub(crate) const PAYLOAD_OFFSET: usize = round_up(size_of::<SlotHeader<B>>(), align_of::<P>());
    /// Offset of the `IO_WORKITEM` in a slot.
    pub(crate) const ITEM_OFFSET: usize = round_up(
        Self::PAYLOAD_OFFSET + size_of::<P>(),
        MEMORY_ALLOCATION_ALIGNMENT,
    );
    /// Offset of the first slot in the block.
    pub(crate) const SLOTS_OFFSET: usize = round_up(size_of::<Control<B>>(), Self::SLOT_ALIGN);

    /// Stride for a run-time `IoSizeofWorkItem()`, or `None` on overflow.
    pub(crate) const fn stride(item_size: usize) -> Option<usize> {
        match Self::ITEM_OFFSET.checked_add(item_size) {
            Some(end) if end <= usize::MAX - Self::SLOT_ALIGN => {
                Some(round_up(end, Self::SLOT_ALIGN))
            }
            _ => None,
        }
    }
}

/// The control block at the start of the slab's pool block.
///
/// # Invariants
///
/// Written once by `Slab::new`, before the slab is shared; afterwards only its atomics change.
/// `slots` points to `capacity` slots of `stride` bytes inside the same block, each starting
/// with a `SlotHeader` whose `control` points back here. `io_object` is live for as long as the
/// block is (the slab's reference).
pub(crate) struct Control<B: Backend> {
    /// Free-list head: `[tag:32][free count:16][index:16]`. The tag changes on every successful
    /// update, so a compare-exchange that read a stale `(index, next)` pair (ABA) fails. The
    /// free count rides along in the same compare-exchange, so "in use" costs no extra atomic.
    head: AtomicU64,
    /// Lowest free count seen (high water of "in use" = capacity − this).
    min_free: AtomicU32,
    exhausted: AtomicU64,
    /// Rundown: 1 (the slab's own reference) + queued or running activations + `Detached`
    /// items.
    active: AtomicUsize,
    /// Set when teardown starts.
    draining: AtomicBool,
    /// Signalled by whoever drops `active` to zero.
    event: UnsafeCell<MaybeUninit<B::Event>>,
    pub(crate) io_object: *mut c_void,
    slots: *mut u8,
    stride: usize,
    capacity: u32,
    item_size: u32,
    tag: u32,
}

impl<B: Backend> Control<B> {
    fn slot(&self, index: u32) -> *mut SlotHeader<B> {
        debug_assert!(index < self.capacity);
        // `wrapping_add` keeps this free of `unsafe`; `index < capacity` keeps it in the block.
        self.slots.wrapping_add(index as usize * self.stride).cast()
    }

    /// Pop a free slot; also returns the free count after the pop. Lock-free, any IRQL ≤
    /// DISPATCH_LEVEL.
    fn pop(&self) -> Option<(*mut SlotHeader<B>, u32)> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let index = (head & INDEX_MASK) as u32;
            if index == NIL {
                return None;
            }
            let slot = self.slot(index);
            // SAFETY: `index < capacity` (only valid indices are ever pushed), so the header is
            // inside the block, which lives as long as `self`. The value may be stale if another
            // thread popped this slot meanwhile; the tag check below rejects that case.
            let next = unsafe { &(*slot).next }.load(Ordering::Relaxed);
            // Tag + 1, free count − 1 (≥ 1 while the list is not empty), index = next.
            let new = ((head & !INDEX_MASK) | u64::from(next)).wrapping_add(TAG_ONE - FREE_ONE);
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some((slot, free_count(new))),
                Err(actual) => head = actual,
            }
        }
    }

    /// Push `slot` (one of this slab's) back. Lock-free, any IRQL ≤ DISPATCH_LEVEL.
    fn push(&self, slot: &SlotHeader<B>) {
        let index = u64::from(slot.index);
        let next = &slot.next;
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            next.store((head & INDEX_MASK) as u32, Ordering::Relaxed);
            // Tag + 1, free count + 1 (≤ capacity < 2^16), index = this slot.
            let new = ((head & !INDEX_MASK) | index).wrapping_add(TAG_ONE + FREE_ONE);
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => head = actual,
            }
        }
    }

    /// Return an uninitialized slot to the free list.
    pub(crate) fn release(&self, slot: &SlotHeader<B>) {
        slot.state.store(FREE, Ordering::Relaxed);
        self.push(slot);
    }

    /// One more queued activation (called before the item is handed to the kernel).
    pub(crate) fn activation_begin(&self) {
        // Relaxed is enough, like `Arc::clone`: the caller already holds a reference that keeps
        // the count above zero (the slab's bias, or the running routine's own activation).
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// A [`Detached`](crate::Detached) item now holds a rundown reference.
    pub(crate) fn detach_begin(&self) {
        // Relaxed: as in `activation_begin`, the caller's own borrow or activation keeps the
        // count above zero.
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// A routine activation finished; signal teardown if it was the last one.
    ///
    /// # Safety
    ///
    /// `this` points to a live control block and the caller owns one activation. After this
    /// returns the block may already be freed: the caller must not touch it (or any slot) again.
    pub(crate) unsafe fn activation_end(this: *const Self) {
        // SAFETY: the caller's activation keeps `active > 0`, so teardown is still waiting and
        // the block is live.
        let active = unsafe { &(*this).active };
        if active.fetch_sub(1, Ordering::Release) == 1 {
            fence(Ordering::Acquire);
            // SAFETY: the count reached zero, so teardown is blocked in (or about to enter)
            // `event_wait`: it removed its bias first and cannot return before the signal below,
            // so the block is still live.
            let event = unsafe { (*this).event.get() };
            // SAFETY: the event is initialized and live (above). Nothing touches `this` after
            // the signal.
            unsafe { B::event_signal(event.cast()) };
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// Why a [`Slab`] could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlabError {
    /// `capacity` was zero or above [`MAX_CAPACITY`].
    InvalidCapacity,
    /// The pool tag was zero (`ExAllocatePool2` rejects it).
    InvalidTag,
    /// `IoSizeofWorkItem()` returned zero.
    InvalidItemSize,
    /// `capacity × stride` overflows.
    TooLarge,
    /// `ExAllocatePool2` returned null.
    OutOfMemory,
}

impl core::fmt::Display for SlabError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SlabError::InvalidCapacity => "invalid slab capacity",
            SlabError::InvalidTag => "pool tag must not be zero",
            SlabError::InvalidItemSize => "IoSizeofWorkItem returned zero",
            SlabError::TooLarge => "slab size overflows",
            SlabError::OutOfMemory => "nonpaged pool allocation failed",
        })
    }
}

/// Every slot is taken: [`Slab::acquire`] never waits. The rejected payload is handed back.
#[derive(PartialEq, Eq)]
#[must_use = "the rejected payload is inside: use it or drop it knowingly"]
pub struct Exhausted<P>(pub P);

impl<P> core::fmt::Debug for Exhausted<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Exhausted(..)")
    }
}

impl<P> core::fmt::Display for Exhausted<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("work-item slab exhausted")
    }
}

/// A snapshot of a slab's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlabStats {
    /// Number of slots.
    pub capacity: u32,
    /// Bytes per slot (header + payload + `IoSizeofWorkItem()`, rounded for alignment).
    pub stride: u32,
    /// `IoSizeofWorkItem()` as read when the slab was created.
    pub item_size: u32,
    /// Slots currently taken (initialized items, queued or not).
    pub in_use: u32,
    /// Largest `in_use` seen since creation or [`Slab::reset_counters`].
    pub high_water: u32,
    /// Acquisitions refused because every slot was taken.
    pub exhausted: u64,
    /// Items currently queued, running their routine, or [`Detached`](crate::Detached).
    pub active: u32,
}

/// What [`Slab::shutdown`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "a non-zero `leaked_items` means some owner was forgotten; check it"]
pub struct ShutdownReport {
    /// Items whose owner was leaked (`mem::forget`): teardown uninitialized them (their payloads
    /// are leaked, never dropped) before freeing the block.
    pub leaked_items: u32,
    /// Whether teardown had to wait for queued or running items.
    pub waited: bool,
}

/// A fixed-capacity slab of caller-allocated work items in one nonpaged pool block.
///
/// - `B`: the kernel [`Backend`] (`NtKernel` or `WdkSys` in a driver; see the aliases
///   [`NtSlab`](crate::NtSlab) and [`WdkSlab`](crate::WdkSlab)).
/// - `P`: the payload stored inline in each slot (no allocation per item).
/// - `O`: the kind of I/O object, [`Device`] by default; a [`Driver`](crate::Driver) slab's
///   items can only be queued with [`WorkItem::queue_ex`].
///
/// [`new`](Slab::new) takes a reference on the I/O object (`ObReferenceObject`) that the slab
/// holds until its teardown has drained and freed everything, so a slab has no lifetime tied to
/// the device: keep it in the device extension, drop it in `DriverUnload` before
/// `IoDeleteDevice`. (Dropping it later is not unsound: the reference keeps the object's memory
/// alive, and `IoDeleteDevice` only frees it at the last dereference.)
///
/// [`acquire`](Slab::acquire) takes a slot and initializes its work item; dropping the returned
/// [`WorkItem`] uninitializes it and gives the slot back. Both are lock-free and usable at
/// IRQL ≤ DISPATCH_LEVEL. Dropping the slab (or [`shutdown`](Slab::shutdown)) must happen at
/// PASSIVE_LEVEL: it waits for every queued or running item first, then frees the block and
/// releases the object reference. It cannot happen while any `WorkItem` borrowed from the slab
/// is alive.
///
/// # Example
///
/// ```
/// # #[path = "../tests/support/fake.rs"] mod fake;
/// # fn main() {
/// use core::sync::atomic::{AtomicU32, Ordering};
/// use io_workitem::{Backend, QueueType, Routine, Slab, WorkItem};
/// # type Kernel = fake::Fake<2>;
/// # let dev = fake::FakeDevice::new();
/// # let device = dev.device();
///
/// static FINISHED: AtomicU32 = AtomicU32::new(0);
///
/// struct Hops(u32);
/// struct Chain;
/// impl<B: Backend> Routine<B, Hops> for Chain {
///     fn run(mut item: WorkItem<'_, B, Hops>) {
///         item.payload_mut().0 -= 1;
///         if item.payload().0 > 0 {
///             item.queue::<Chain>(QueueType::Delayed); // requeue: ownership goes back to the queue
///         } else {
///             FINISHED.fetch_add(1, Ordering::Relaxed); // dropped below: uninitialized in its routine
///         }
///     }
/// }
///
/// let slab = Slab::<Kernel, Hops>::new(device, 256, u32::from_le_bytes(*b"WiSl")).unwrap();
/// match slab.acquire(Hops(3)) {
///     Ok(item) => item.queue::<Chain>(QueueType::Delayed),
///     Err(_exhausted) => unreachable!("256 free slots"),
/// }
/// drop(slab); // waits for the chain to finish, then frees the pool block
/// assert_eq!(FINISHED.load(Ordering::Relaxed), 1);
/// # fake::Fake::<2>::state().assert_no_leaks();
/// # }
/// ```
///
/// # Invariants
///
/// `control` points to the `Control<B>` at the start of a live pool block from
/// `B::alloc_nonpaged`, written by [`Slab::new`], which stays allocated until this `Slab`'s
/// teardown. The control block's `io_object` is a live `O` on which the slab owns one reference
/// (released by teardown, after the block is freed). The rundown count `active` includes one
/// reference for the slab itself until teardown starts.
#[must_use = "dropping a slab drains it and frees its pool block at once"]
pub struct Slab<B: Backend, P, O: IoObject = Device> {
    control: NonNull<Control<B>>,
    _marker: PhantomData<SlabMarker<P, O>>,
}

/// Bound to an `O` and invariant in `P` without owning one.
type SlabMarker<P, O> = (fn() -> O, fn(P) -> P);

// SAFETY: the slab is a handle to a control block whose shared state is all atomics. Payloads
// only move into slots (acquire) and out again through an owned `WorkItem`, which is Send only
// if `P: Send`; the slab itself never drops or reads a payload, so no `P` bound is needed. The
// I/O object is only handed to the kernel, which synchronizes internally (`O: Send + Sync`).
unsafe impl<B: Backend, P, O: IoObject> Send for Slab<B, P, O> {}
// SAFETY: as above: `&Slab` only allows atomic free-list/counter operations.
unsafe impl<B: Backend, P, O: IoObject> Sync for Slab<B, P, O> {}

impl<B: Backend, P, O: IoObject> Slab<B, P, O> {
    /// Allocate and set up a slab of `capacity` work items bound to `io_object` (a [`Device`],
    /// or a [`Driver`](crate::Driver) for Ex-only slabs), in one nonpaged block tagged `tag`,
    /// and take a reference on the object (`ObReferenceObject`) that the slab keeps until its
    /// teardown is complete. The slot stride comes from `B::size_of_work_item()` at run time.
    /// IRQL ≤ DISPATCH_LEVEL (PASSIVE_LEVEL in practice: the slab must be dropped there).
    ///
    /// On error nothing was allocated or referenced.
    pub fn new(io_object: &O, capacity: u32, tag: u32) -> Result<Self, SlabError> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(SlabError::InvalidCapacity);
        }
        if tag == 0 {
            return Err(SlabError::InvalidTag);
        }
        let item_size = B::size_of_work_item();
        if item_size == 0 {
            return Err(SlabError::InvalidItemSize);
        }
        let stride = Geometry::<B, P>::stride(item_size as usize).ok_or(SlabError::TooLarge)?;
        let bytes = stride
            .checked_mul(capacity as usize)
            .and_then(|b| b.checked_add(Geometry::<B, P>::SLOTS_OFFSET))
            .ok_or(SlabError::TooLarge)?;
        if u32::try_from(stride).is_err() || bytes > isize::MAX as usize {
            return Err(SlabError::TooLarge);
        }
        // SAFETY: `bytes > 0` (capacity ≥ 1, stride ≥ 16) and `tag != 0`, checked above.
        let block = unsafe { B::alloc_nonpaged(bytes, tag) };
        let Some(block_nn) = NonNull::new(block) else {
            return Err(SlabError::OutOfMemory);
        };
        debug_assert_eq!(block as usize % MEMORY_ALLOCATION_ALIGNMENT, 0);
        let slots = block.wrapping_add(Geometry::<B, P>::SLOTS_OFFSET);
        let control = block.cast::<Control<B>>();
        // SAFETY: `block` is a fresh, 16-aligned allocation of at least `SLOTS_OFFSET ≥
        // size_of::<Control<B>>()` bytes, and `Control`'s alignment is ≤ 16 (asserted in
        // `Geometry::SLOT_ALIGN`, evaluated by `stride` above).
        unsafe {
            ptr::write(
                control,
                Control {
                    head: AtomicU64::new(0),
                    min_free: AtomicU32::new(capacity),
                    exhausted: AtomicU64::new(0),
                    active: AtomicUsize::new(1),
                    draining: AtomicBool::new(false),
                    event: UnsafeCell::new(MaybeUninit::uninit()),
                    io_object: io_object.io_object_ptr(),
                    slots,
                    stride,
                    capacity,
                    item_size,
                    tag,
                },
            )
        };
        // SAFETY: `control` was just written and is only shared after `new` returns.
        let ctl = unsafe { &*control };
        // SAFETY: `io_object` is a live device or driver object for the duration of this borrow
        // (invariant of `Device` / `Driver`), so its count is above zero; the reference taken
        // here is the slab's, released by `teardown` (the `Slab` invariant).
        unsafe { B::reference_object(ctl.io_object) };
        // SAFETY: the event storage is inside the nonpaged block, which does not move.
        unsafe { B::event_init(ctl.event.get().cast()) };
        for index in 0..capacity {
            let next = if index + 1 == capacity {
                NIL
            } else {
                index + 1
            };
            // SAFETY: slot `index` lies inside the block (`SLOTS_OFFSET + index × stride +
            // stride ≤ bytes`) and is aligned to `SLOT_ALIGN` ≥ align of the header.
            unsafe {
                ptr::write(
                    ctl.slot(index),
                    SlotHeader {
                        control,
                        index,
                        next: AtomicU32::new(next),
                        state: AtomicU32::new(FREE),
                    },
                )
            };
        }
        // Tag 0, all slots free, head = slot 0. The stores above are published by handing out
        // `self`.
        ctl.head
            .store(u64::from(capacity) * FREE_ONE, Ordering::Release);
        Ok(Slab {
            control: block_nn.cast(),
            _marker: PhantomData,
        })
    }

    pub(crate) fn control_ptr(&self) -> *const Control<B> {
        self.control.as_ptr()
    }

    fn control(&self) -> &Control<B> {
        // SAFETY: the control block lives until `self` is dropped (`Slab` invariant).
        unsafe { self.control.as_ref() }
    }

    /// Take a free slot, move `payload` into it and initialize its work item
    /// (`IoInitializeWorkItem`). Lock-free and wait-free of any blocking: if every slot is taken
    /// the payload comes back in [`Exhausted`]. IRQL ≤ DISPATCH_LEVEL.
    ///
    /// No allocation happens here: the slot, payload and `IO_WORKITEM` are all in the slab.
    #[inline]
    pub fn acquire(&self, payload: P) -> Result<WorkItem<'_, B, P, O>, Exhausted<P>> {
        let ctl = self.control();
        let Some((slot, free)) = ctl.pop() else {
            ctl.exhausted.fetch_add(1, Ordering::Relaxed);
            return Err(Exhausted(payload));
        };
        // SAFETY: the slot is inside the live block and was just popped: this thread owns it.
        let header = unsafe { &*slot };
        // Two owners of one slot would mean a broken free list. Checked in debug and loom
        // builds (the loom models prove the list); release builds just record the state.
        #[cfg(any(debug_assertions, loom))]
        {
            let previous = header.state.swap(IN_USE, Ordering::Relaxed);
            assert_eq!(previous, FREE, "io-workitem: slot handed out twice");
        }
        #[cfg(not(any(debug_assertions, loom)))]
        header.state.store(IN_USE, Ordering::Relaxed);
        // Usually above the low mark: a plain load then, the read-modify-write only on a new low.
        if free < ctl.min_free.load(Ordering::Relaxed) {
            ctl.min_free.fetch_min(free, Ordering::Relaxed);
        }
        let base = slot.cast::<u8>();
        // SAFETY: the payload area of an owned slot is in bounds and aligned for `P`
        // (`PAYLOAD_OFFSET` is a multiple of `align_of::<P>()` and slots are `SLOT_ALIGN`-aligned);
        // it holds no live payload (the slot was free).
        unsafe {
            ptr::write(
                base.wrapping_add(Geometry::<B, P>::PAYLOAD_OFFSET)
                    .cast::<P>(),
                payload,
            )
        };
        let item: PIO_WORKITEM = base.wrapping_add(Geometry::<B, P>::ITEM_OFFSET).cast();
        // SAFETY: `item` is 16-aligned nonpaged storage of `item_size` bytes inside an owned
        // slot, not initialized (free slots are always uninitialized); the I/O object is live:
        // the slab holds a reference on it (`Slab` invariant).
        unsafe { B::initialize(ctl.io_object, item) };
        // SAFETY: the slot is owned, initialized and holds a payload: exactly `WorkItem`'s
        // invariant; the `'_` borrow of `self` keeps the slab alive.
        Ok(unsafe { WorkItem::from_raw(slot, ctl) })
    }

    /// A snapshot of the counters. Any IRQL.
    #[must_use]
    pub fn stats(&self) -> SlabStats {
        let ctl = self.control();
        SlabStats {
            capacity: ctl.capacity,
            stride: ctl.stride as u32,
            item_size: ctl.item_size,
            in_use: ctl.capacity - free_count(ctl.head.load(Ordering::Relaxed)),
            high_water: ctl.capacity - ctl.min_free.load(Ordering::Relaxed),
            exhausted: ctl.exhausted.load(Ordering::Relaxed),
            active: (ctl.active.load(Ordering::Relaxed).saturating_sub(1)) as u32,
        }
    }

    /// Reset the cumulative counter (`exhausted`) and set `high_water` to the current
    /// `in_use`.
    pub fn reset_counters(&self) {
        let ctl = self.control();
        ctl.exhausted.store(0, Ordering::Relaxed);
        ctl.min_free.store(
            free_count(ctl.head.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.control().capacity
    }

    /// Bytes per slot.
    pub fn stride(&self) -> usize {
        self.control().stride
    }

    /// `IoSizeofWorkItem()` as read at creation.
    pub fn item_size(&self) -> u32 {
        self.control().item_size
    }

    /// Drain and free the slab, reporting what teardown found. PASSIVE_LEVEL.
    ///
    /// Waits (on the backend event) until no item is queued or running, uninitializes any item
    /// whose owner was leaked with `mem::forget`, then frees the pool block. Routines still
    /// running during the drain may requeue their items; a requeue chain must end for the drain
    /// to end (routines can check [`WorkItem::is_shutting_down`]).
    pub fn shutdown(self) -> ShutdownReport {
        let report = self.teardown();
        mem::forget(self);
        report
    }

    fn teardown(&self) -> ShutdownReport {
        let control = self.control.as_ptr();
        let ctl = self.control();
        ctl.draining.store(true, Ordering::Relaxed);
        // Remove the slab's own rundown reference. Callers cannot queue or attach any more (no
        // `WorkItem` borrows `self`), so only running routines (which may requeue or detach)
        // and `Detached` items can still hold or add references.
        let waited = ctl.active.fetch_sub(1, Ordering::AcqRel) != 1;
        if waited {
            // SAFETY: initialized event, PASSIVE_LEVEL (documented requirement of dropping a
            // slab). The last `activation_end` signals it; the event synchronizes its writes
            // with us, and that routine touches nothing of the slab after signalling.
            unsafe { B::event_wait(ctl.event.get().cast()) };
        } else {
            fence(Ordering::Acquire);
        }
        let mut leaked_items = 0;
        for index in 0..ctl.capacity {
            let slot = ctl.slot(index);
            // SAFETY: slot headers are live until the block is freed below.
            let state = unsafe { &(*slot).state }.load(Ordering::Relaxed);
            if state != FREE {
                leaked_items += 1;
                let item: PIO_WORKITEM = slot
                    .cast::<u8>()
                    .wrapping_add(Geometry::<B, P>::ITEM_OFFSET)
                    .cast();
                // SAFETY: a non-free slot after the drain holds an initialized item that is
                // neither queued nor running; its owner was forgotten, so nobody else will
                // uninitialize it. Its payload is leaked, as `mem::forget` promised.
                unsafe { B::uninitialize(item) };
            }
        }
        for index in 0..ctl.capacity {
            // SAFETY: each slot header was written in `new`, is dropped exactly once, here, and
            // is not used afterwards (dropping matters for loom's atomics; core's are trivial).
            unsafe { ptr::drop_in_place(ctl.slot(index)) };
        }
        let tag = ctl.tag;
        let io_object = ctl.io_object;
        // SAFETY: nobody waits on or signals the event any more (rundown is complete).
        unsafe { B::event_destroy(ctl.event.get().cast()) };
        // SAFETY: the control block is dropped exactly once, here; `ctl` is not used after.
        unsafe { ptr::drop_in_place(control) };
        // SAFETY: the block came from `alloc_nonpaged(_, tag)` in `new`; every work item in it
        // is uninitialized and nothing references it any more.
        unsafe { B::free_pool(control.cast(), tag) };
        // SAFETY: the reference `new` took is the slab's own (`Slab` invariant); every item is
        // uninitialized and the block is gone, so nothing of the slab uses the object any more.
        unsafe { B::dereference_object(io_object) };
        ShutdownReport {
            leaked_items,
            waited,
        }
    }
}

impl<B: Backend, P, O: IoObject> Drop for Slab<B, P, O> {
    /// Drains and frees the slab: see [`Slab::shutdown`]. PASSIVE_LEVEL.
    fn drop(&mut self) {
        // Dropping instead of calling `shutdown` is the caller's choice not to look.
        let _ = self.teardown();
    }
}

impl<B: Backend, P, O: IoObject> core::fmt::Debug for Slab<B, P, O> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Slab")
            .field("stats", &self.stats())
            .finish()
    }
}
