//! Locks and lists: fast and guarded mutexes, ERESOURCE, critical and guarded regions, spin
//! locks at DPC level, in-stack queued spin locks, interlocked lists (issue 9, item 2).
#[allow(unused_imports)]
use super::*;

ntoskrnl_imports! {}
