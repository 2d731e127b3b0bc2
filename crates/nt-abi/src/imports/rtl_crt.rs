//! Rtl strings and memory, the CRT ntoskrnl exports, MmGetSystemRoutineAddress, version (issue 9, item 3).
#[allow(unused_imports)]
use super::*;

ntoskrnl_imports! {}
