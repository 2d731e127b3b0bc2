//! Executive: pool and system worker queues.
pub mod pool;
pub mod raise;
