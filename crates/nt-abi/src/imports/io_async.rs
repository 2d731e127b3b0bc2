//! Asynchronous I/O, cancellation, cancel-safe queues, remove locks (issue 9, item 1).
#[allow(unused_imports)]
use super::*;

ntoskrnl_imports! {}
