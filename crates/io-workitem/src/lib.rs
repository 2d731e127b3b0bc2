//! Safe RAII work items for Windows kernel drivers, over NtosKrnl's caller-allocated work-item
//! API (`IoSizeofWorkItem`, `IoInitializeWorkItem`, `IoQueueWorkItem[Ex]`,
//! `IoUninitializeWorkItem`) and a nonpaged-pool slab.
//!
//! - [`Backend`]: the raw calls, as a zero-sized statically dispatched trait. [`NtKernel`]
//!   (nt-abi's raw-dylib `ntoskrnl.exe` imports) and [`WdkSys`] (windows-drivers-rs' `wdk-sys`
//!   bindings, feature `wdk-sys`) are the kernel backends; tests plug in ntsim or a pure-Rust
//!   fake.
//! - [`Slab`]: one `ExAllocatePool2(POOL_FLAG_NON_PAGED)` block of `capacity` slots sized at run
//!   time from `IoSizeofWorkItem()`; lock-free tagged free list (IRQL ≤ DISPATCH_LEVEL);
//!   exhaustion is an error, never a wait; teardown drains queued and running items. It holds a
//!   reference on its I/O object (`ObReferenceObject`) until teardown is complete, so it needs
//!   no lifetime promise about the device.
//! - [`WorkItem`]: initialized and not queued. Drop = uninitialize once + return the slot.
//!   `queue(self, …)` consumes it; the [`Routine`] receives it back by value (and, through
//!   [`WorkItem::io_object`], the device) and may requeue it, drop it, or
//!   [`detach`](WorkItem::detach) it to hand it to another thread.
//! - [`Device`] / [`Driver`]: the I/O object. Items of a `Driver` slab can only be queued with
//!   `queue_ex` (`IoQueueWorkItemEx`).
//! - Aliases for the kernel backends: [`NtSlab<P>`](NtSlab), [`NtWorkItem<'_, P>`](NtWorkItem),
//!   [`NtDetached<P>`](NtDetached) and the `Wdk*` twins.
//!
//! Misuse does not compile: dropping, queueing or touching an item after it was queued (it
//! was moved), keeping an item (or the I/O object reference it hands out) past its slab
//! (lifetimes), tearing down a slab while an item is held (borrow), and queueing a payload that
//! is not `Send`. Dropping an item, a slab or a report unused is a `#[must_use]` warning.
//!
//! ```
//! # #[path = "../tests/support/fake.rs"] mod fake;
//! # fn main() {
//! use io_workitem::{Backend, Device, QueueType, Routine, Slab, WorkItem};
//! use core::sync::atomic::{AtomicU32, Ordering};
//! # type Kernel = fake::Fake<3>; // in a driver: NtKernel or WdkSys
//! # let dev = fake::FakeDevice::new();
//! # let device: &Device = dev.device();
//!
//! static DONE: AtomicU32 = AtomicU32::new(0);
//!
//! struct Job { requeues_left: u32 }
//! struct Step;
//! impl<B: Backend> Routine<B, Job> for Step {
//!     fn run(mut item: WorkItem<'_, B, Job>) {
//!         if item.payload().requeues_left > 0 && !item.is_shutting_down() {
//!             item.payload_mut().requeues_left -= 1;
//!             item.queue::<Step>(QueueType::Delayed);
//!         } else {
//!             DONE.fetch_add(1, Ordering::Release); // item dropped: uninitialized in its routine
//!         }
//!     }
//! }
//!
//! let slab = Slab::<Kernel, Job>::new(device, 64, u32::from_le_bytes(*b"WiSl")).unwrap();
//! for _ in 0..8 {
//!     let item = slab.acquire(Job { requeues_left: 2 }).unwrap();
//!     item.queue::<Step>(QueueType::Delayed);
//! }
//! // Init/uninit only: acquire and drop.
//! drop(slab.acquire(Job { requeues_left: 0 }));
//! let report = slab.shutdown(); // PASSIVE_LEVEL: waits for all chains, then frees
//! assert_eq!(report.leaked_items, 0);
//! assert_eq!(DONE.load(Ordering::Acquire), 8);
//! # fake::Fake::<3>::state().assert_no_leaks();
//! # }
//! ```
//!
//! ## In a driver
//!
//! The driver creates one slab in `DriverEntry` on its device and keeps it in the device
//! extension; `DriverUnload` drops it (drain + free + dereference) before `IoDeleteDevice`.
//! `NtKernel` needs nothing but nt-abi (it links `ntoskrnl.exe` with `raw-dylib`, so a Linux
//! cross build works); `WdkSys` goes through the WDK's bindings and import libraries, for drivers
//! built with windows-drivers-rs. Both build for x64 and ARM64 Windows.
//! Payloads must be `Send + 'static` to be queued; state shared with the requesting thread
//! (counters, a "request done" event) lives in a block the request keeps alive until every
//! routine has released it. To have the requesting thread uninitialize the items ("queue, then
//! uninitialize in the caller"), a routine hands its item back with [`WorkItem::detach`].
//!
//! ## Testing
//!
//! - `cargo test -p io-workitem`: the fake-kernel tests, the ntsim tests (Driver Verifier rules
//!   on, multi-threaded stress, clean audit), the compile-fail tests (`tests/ui`, trybuild), the
//!   `wdk-sys` backend type-checked against a bindgen-shaped stand-in, and these doc examples
//!   (which run against the fake kernel in `tests/support/fake.rs`).
//! - `RUSTFLAGS="--cfg loom" cargo test -p io-workitem --test loom --release`: loom models of
//!   the free list (ABA) and of teardown racing routines (about a minute to build, 15 s to run).
//! - `cargo run --release -p io-workitem --example cycle_bench`: callgrind instruction counts
//!   per work-item cycle against a hand-written raw loop and `IoAllocateWorkItem`.
#![no_std]

mod backend;
mod device;
mod item;
mod queue;
mod slab;
mod sync;
#[cfg(any(feature = "wdk-sys", doc))]
mod wdk;

/// nt-abi, re-exported: the raw types [`Backend`]'s signatures use (`PIO_WORKITEM`,
/// `IO_WORKITEM_ROUTINE`, `DEVICE_OBJECT`, …), so a backend or a driver needs no direct
/// dependency on it.
pub use nt_abi;

pub use backend::Backend;
#[cfg(any(windows, doc))]
pub use backend::NtKernel;
pub use device::{Device, Driver, IoObject};
pub use item::{Detached, Routine, WorkItem};
pub use queue::{CustomPriority, QueueType};
pub use slab::{
    Exhausted, MAX_CAPACITY, MAX_PAYLOAD_ALIGN, ShutdownReport, Slab, SlabError, SlabStats,
};
#[cfg(any(feature = "wdk-sys", doc))]
pub use wdk::WdkSys;

/// A [`Slab`] on the raw `ntoskrnl.exe` imports.
#[cfg(any(windows, doc))]
pub type NtSlab<P, O = Device> = Slab<NtKernel, P, O>;
/// A [`WorkItem`] of an [`NtSlab`].
#[cfg(any(windows, doc))]
pub type NtWorkItem<'slab, P, O = Device> = WorkItem<'slab, NtKernel, P, O>;
/// A [`Detached`] item of an [`NtSlab`].
#[cfg(any(windows, doc))]
pub type NtDetached<P, O = Device> = Detached<NtKernel, P, O>;

/// A [`Slab`] on windows-drivers-rs' `wdk-sys` bindings.
#[cfg(any(feature = "wdk-sys", doc))]
pub type WdkSlab<P, O = Device> = Slab<WdkSys, P, O>;
/// A [`WorkItem`] of a [`WdkSlab`].
#[cfg(any(feature = "wdk-sys", doc))]
pub type WdkWorkItem<'slab, P, O = Device> = WorkItem<'slab, WdkSys, P, O>;
/// A [`Detached`] item of a [`WdkSlab`].
#[cfg(any(feature = "wdk-sys", doc))]
pub type WdkDetached<P, O = Device> = Detached<WdkSys, P, O>;

/// The crate README's example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
