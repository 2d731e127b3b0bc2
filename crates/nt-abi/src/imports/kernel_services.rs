//! Kernel services: DPCs, timers, dispatcher objects, mutexes, resources, system threads, spin locks, interlocked lists, time (issue 9, item 2).
#[allow(unused_imports)]
use super::*;

ntoskrnl_imports! {}
