//! `MmGetSystemRoutineAddress` and `MmIsAddressValid`. They are Mm routines, but the first
//! needs the export table and the calling machine (thread state, `ke`) and the second the pool
//! (`ex`), so they live here, above both.
//!
//! - `MmGetSystemRoutineAddress(SystemRoutineName)` (Microsoft,
//!   `…/ddi/wdm/nf-wdm-mmgetsystemroutineaddress`): the address of the ntoskrnl (or HAL) export
//!   of that name, or NULL. ntsim answers from its own export table: a function it emulates
//!   gets a call-site-recording stub (like an import), so reports still name the driver's call
//!   site; a variable it emulates (`KdDebuggerEnabled`, `ExEventObjectType`…) the address of
//!   the variable; anything else NULL — also for names Windows has but ntsim does not emulate,
//!   so a driver that probes for an optional export (say, `ExAllocatePool3` on an older
//!   system) sees the routine as absent and takes its fallback path, as it would on an older
//!   Windows. The name is matched exactly (case-sensitive, as export names are).
//! - `MmIsAddressValid(VirtualAddress)` (Microsoft, `…/ddi/ntddk/nf-ntddk-mmisaddressvalid`):
//!   TRUE when a read of that byte would not fault — ntsim asks the host kernel whether the
//!   byte is readable (`process_vm_readv` on its own process), so guard pages, freed special
//!   pool and unmapped addresses are FALSE; KUSER_SHARED_DATA (emulated) is TRUE.
#![allow(non_snake_case)]

use std::sync::OnceLock;

use nt_abi::*;

use crate::ke::thread::current;

/// One call-recording stub per emulated function export, made on first use (read-execute).
fn stubs() -> &'static Vec<(&'static str, usize)> {
    static STUBS: OnceLock<Vec<(&'static str, usize)>> = OnceLock::new();
    STUBS.get_or_init(|| {
        let funcs: Vec<(&'static str, usize)> = crate::exports::table()
            .into_iter()
            .filter(|(n, _)| !crate::exports::is_data(n))
            .collect();
        let len = crate::mm::round_up(
            funcs.len().max(1) * crate::mm::STUB_SIZE,
            crate::mm::PAGE_SIZE,
        );
        let Some(base) = crate::mm::map_rw(len, None) else {
            return Vec::new();
        };
        let note = crate::ke::thread::note_caller as *const () as usize;
        let mut out = Vec::with_capacity(funcs.len());
        for (i, (name, target)) in funcs.into_iter().enumerate() {
            let at = base + i * crate::mm::STUB_SIZE;
            let code = crate::mm::stub_bytes(note, target);
            // SAFETY: `at` is inside the fresh RW mapping of `len` bytes.
            unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), at as *mut u8, code.len()) };
            out.push((name, at));
        }
        crate::mm::protect(base, len, crate::mm::Prot::Rx);
        out
    })
}

/// `MmGetSystemRoutineAddress`.
///
/// # Safety
/// `SystemRoutineName` a valid UNICODE_STRING.
pub unsafe extern "win64" fn MmGetSystemRoutineAddress(
    SystemRoutineName: *mut UNICODE_STRING,
) -> PVOID {
    // SAFETY: per the contract.
    let Some(name) = (unsafe { crate::rtl::read_unicode(SystemRoutineName) }) else {
        return core::ptr::null_mut();
    };
    let debugger = current().config.debugger;
    if let Some(a) = crate::data::address(&name, debugger) {
        return a as PVOID;
    }
    stubs()
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(core::ptr::null_mut(), |(_, a)| *a as PVOID)
}

/// `MmIsAddressValid`.
///
/// # Safety
/// Always safe (nothing is dereferenced).
pub unsafe extern "win64" fn MmIsAddressValid(VirtualAddress: PVOID) -> BOOLEAN {
    let a = VirtualAddress as usize;
    let kuser = KI_USER_SHARED_DATA as usize;
    if (kuser..kuser + KUSER_SHARED_DATA_PAGE as usize).contains(&a) {
        return TRUE;
    }
    let mut byte = 0u8;
    let local = libc::iovec {
        iov_base: (&mut byte as *mut u8).cast(),
        iov_len: 1,
    };
    let remote = libc::iovec {
        iov_base: VirtualAddress,
        iov_len: 1,
    };
    // SAFETY: process_vm_readv on our own pid copies one byte into `byte` if (and only if)
    // the source is readable; an unreadable source is an EFAULT return, not a fault.
    let n = unsafe {
        libc::process_vm_readv(std::process::id() as libc::pid_t, &local, 1, &remote, 1, 0)
    };
    (n == 1) as BOOLEAN
}
