//! Safe RAII work items for Windows kernel drivers, over NtosKrnl's caller-allocated work-item
//! API (`IoSizeofWorkItem`, `IoInitializeWorkItem`, `IoQueueWorkItem[Ex]`,
//! `IoUninitializeWorkItem`) and a nonpaged-pool slab.
//!
//! - [`Backend`]: the raw calls, as a zero-sized statically dispatched trait. `NtKernel` (Windows
//!   targets) calls the real imports; tests plug in ntsim or a pure-Rust fake.
//! - [`Slab`]: one `ExAllocatePool2(POOL_FLAG_NON_PAGED)` block of `capacity` slots sized at run
//!   time from `IoSizeofWorkItem()`; lock-free tagged free list (IRQL ≤ DISPATCH_LEVEL);
//!   exhaustion is an error, never a wait; teardown drains queued and running items.
//! - [`WorkItem`]: initialized and not queued. Drop = uninitialize once + return the slot.
//!   `queue(self, …)` consumes it; the [`Routine`] receives it back by value and may requeue
//!   it, drop it, or [`detach`](WorkItem::detach) it to hand it to another thread.
//! - [`Device`] / [`Driver`]: the I/O object the slab borrows. Items of a `Driver` slab can
//!   only be queued with `queue_ex` (`IoQueueWorkItemEx`).
//!
//! Misuse does not compile: dropping, queueing or touching an item after it was queued (it
//! was moved), keeping an item past its slab or a slab past its device (lifetimes), tearing
//! down a slab while an item is held (borrow), and queueing a payload that is not `Send`.
//!
//! ```
//! use io_workitem::{Backend, Device, QueueType, Routine, Slab, WorkItem};
//! use core::sync::atomic::{AtomicU32, Ordering};
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
//! fn run<B: Backend>(device: &Device) {
//!     let Ok(slab) = Slab::<B, Job>::new(device, 64, u32::from_le_bytes(*b"WiSl")) else { return };
//!     for _ in 0..8 {
//!         if let Ok(item) = slab.acquire(Job { requeues_left: 2 }) {
//!             item.queue::<Step>(QueueType::Delayed);
//!         }
//!     }
//!     // Init/uninit only: acquire and drop.
//!     drop(slab.acquire(Job { requeues_left: 0 }));
//!     let report = slab.shutdown(); // PASSIVE_LEVEL: waits for all chains, then frees
//!     assert_eq!(report.leaked_items, 0);
//! }
//! ```
//!
//! ## In a driver
//!
//! The driver creates one slab in `DriverEntry` on its device (`NtKernel` backend) and keeps it
//! in the device extension; `DriverUnload` drops it (drain + free) before `IoDeleteDevice`.
//! Payloads must be `Send + 'static` to be queued; state shared with the requesting thread
//! (counters, a "request done" event) lives in a block the request keeps alive until every
//! routine has released it. To have the requesting thread uninitialize the items ("queue, then
//! uninitialize in the caller"), a routine hands its item back with [`WorkItem::detach`].
//!
//! ## Testing
//!
//! - `cargo test -p io-workitem`: the fake-kernel tests, the ntsim tests (Driver Verifier rules
//!   on, multi-threaded stress, clean audit), the compile-fail tests (`tests/ui`, trybuild) and
//!   these doc examples.
//! - `RUSTFLAGS="--cfg loom" cargo test -p io-workitem --test loom --release`: loom models of
//!   the free list (ABA) and of teardown racing routines (about a minute to build, 15 s to run).
//! - `cargo run --release -p io-workitem --example cycle_bench`: callgrind instruction counts
//!   per work-item cycle against a hand-written raw loop and `IoAllocateWorkItem`.
#![no_std]
#![cfg(target_arch = "x86_64")]

mod backend;
mod device;
mod item;
mod queue;
mod slab;
mod sync;

pub use backend::Backend;
#[cfg(target_os = "windows")]
pub use backend::NtKernel;
pub use device::{Device, Driver, IoObject};
pub use item::{Detached, Routine, WorkItem};
pub use queue::{CustomPriority, QueueType};
pub use slab::{
    Exhausted, MAX_CAPACITY, MAX_PAYLOAD_ALIGN, ShutdownReport, Slab, SlabError, SlabStats,
};
