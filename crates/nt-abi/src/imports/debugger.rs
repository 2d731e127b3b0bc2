//! The kernel-debugger interface: assertions, debug-filter state (issue 9, item 4).
#[allow(unused_imports)]
use super::*;

ntoskrnl_imports! {}
