//! Executive: pool and system worker queues.
pub mod pool;
