//! The pool behind Rtl's string routines (`RtlCreateUnicodeString`, `RtlAnsiStringToUnicodeString`
//! and the other `AllocateDestinationString` forms; `RtlFreeUnicodeString`, `RtlFreeAnsiString`),
//! registered with `rtl` by the composition root.
//!
//! The blocks are paged pool charged to the calling driver (so `pool_stats` and the unload audit
//! see them), but on Windows ntoskrnl allocates them itself: Driver Verifier, which watches the
//! driver's own pool calls, would not report these the way ntsim does. So the bug checks that
//! come from them are marked stricter than Windows (`documented_only`): an allocation above
//! APC_LEVEL (0xC4/0x01; the routines are documented for PASSIVE_LEVEL, Microsoft
//! *RtlAnsiStringToUnicodeString* …), and a free whose buffer carries another tag than the
//! routine's (0xC2/0x0A; ntsim frees with ReactOS' tags, Windows' own tag check is not
//! documented). The pool-leak bug check at unload is marked the same way when every leaked block
//! carries an Rtl string tag (`io::driver`).
use nt_abi::bugcheck::{BAD_POOL_CALLER, bad_pool_caller};
use nt_abi::*;

use crate::ke::bugcheck::raise;
use crate::ke::thread::{self, current};
use crate::mm::MemClass;
use crate::verifier::Bc;

/// Allocate `bytes` of paged pool with `tag` for an Rtl routine (NULL on failure).
pub(crate) fn rtl_alloc(bytes: usize, tag: u32) -> *mut u8 {
    let sys = current();
    if let Some(bc) = sys.verifier.on_pool_alloc(
        thread::irql(),
        POOL_FLAG_PAGED,
        bytes,
        tag,
        thread::caller(),
    ) {
        raise(&sys, bc.documented_only());
    }
    // SAFETY: an ordinary pool allocation on the calling (driver) thread.
    unsafe { super::pool::ExAllocatePoolWithTag(PAGED_POOL, bytes, tag) }.cast()
}

/// Free a string buffer an Rtl routine allocated with `tag`.
pub(crate) fn rtl_free(p: *mut u8, tag: u32) {
    let sys = current();
    if let MemClass::PagedPool { block, tag: t } | MemClass::NonPagedPool { block, tag: t } =
        super::pool::classify(&sys, p as usize)
        && block == p as usize
        && t != tag
    {
        raise(
            &sys,
            Bc::new(
                BAD_POOL_CALLER,
                [
                    bad_pool_caller::FREE_WRONG_TAG,
                    p as u64,
                    t as u64,
                    tag as u64,
                ],
            )
            .documented_only(),
        );
    }
    // SAFETY: the pool checks the address (an unknown one is a bug check, as on Windows).
    unsafe { super::pool::ExFreePoolWithTag(p.cast(), tag) }
}

/// Whether a pool tag is one of Rtl's string tags.
pub(crate) fn is_rtl_string_tag(tag: u32) -> bool {
    tag == rtl::RTL_UNICODE_STRING_TAG || tag == rtl::RTL_ANSI_STRING_TAG
}
