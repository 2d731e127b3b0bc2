//! The atomics the slab uses, swapped for loom's model-checked ones under `--cfg loom`.
//!
//! Everything lock-free in this crate goes through this module, so a loom build explores every
//! interleaving of the free list and of the drain-versus-routine handshake.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, fence};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, fence};

pub(crate) use core::sync::atomic::Ordering;
