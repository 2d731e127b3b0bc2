//! Dispatcher and threads: DPCs, timers, semaphores, mutexes, multi-object waits, system
//! threads and handles, priorities, delays, time (issue 9, item 2).
#[allow(unused_imports)]
use super::*;

ntoskrnl_imports! {}
