//! IRP allocation and forwarding (IoCallDriver and friends) that I/O verification checks (issue 10, item 3).
#[allow(unused_imports)]
use super::*;

ntoskrnl_imports! {}
