//! The x64 processor state each emulated thread sees: a KPCR/KPRCB/KTHREAD block behind GS, the
//! IRQL as CR8, the interrupt flag (`cli`/`sti`), model-specific registers, and
//! KUSER_SHARED_DATA. Layouts and constants come from `nt_abi::cpu`.
//!
//! - **GS.** Every ntsim thread that runs driver code gets its own [`KPCR_BLOCK`] and KTHREAD
//!   when it starts (`enter_thread`, called by `ke::fault::spawn_driver_thread`), installed
//!   with `arch_prctl(ARCH_SET_GS)`. On Linux x86_64 user space leaves GS alone (glibc and Rust
//!   keep thread-local storage behind FS), so drivers' inline `gs:[0x188]`
//!   (`KeGetCurrentThread`), `gs:[0x184]`/`gs:[0x1A4]` (processor number) and `gs:[0x18]`
//!   (`KeGetPcr`) read real memory without faulting.
//! - **Processor numbers.** ntsim has no scheduler of its own: each thread is pinned, as far as
//!   the driver can tell, to processor `n mod N` where `n` counts threads and `N` is the host's
//!   available parallelism (`KeNumberProcessors`).
//! - **CR8** reads and writes fault at CPL 3; `ke::trap` emulates them on the thread's IRQL
//!   (`ke::irql`), so every rule the exports check (waits above APC_LEVEL, spin-lock release
//!   level, a work item returning at raised IRQL) sees the IRQL the driver set inline.
//! - **KUSER_SHARED_DATA** at 0xFFFFF78000000000 is a kernel address; loads from it are decoded
//!   and served from [`kuser_snapshot`], a live copy whose times move
//!   (KeQuerySystemTime/KeQueryInterruptTime/KeQueryTickCount are macros over it on x64).
#![allow(non_snake_case)]

use std::cell::{Cell, RefCell};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use nt_abi::*;

/// `arch_prctl` code to set the GS base (asm/prctl.h).
const ARCH_SET_GS: libc::c_int = 0x1001;

/// Bytes of zeroed KTHREAD storage per thread (the real KTHREAD is ~0x430 bytes on Windows 10;
/// drivers treat it as opaque).
const KTHREAD_SIZE: usize = 0x480;

struct ThreadBlock {
    pcr: Box<KPCR_BLOCK>,
    /// The thread's own KTHREAD storage (what `pcr.Prcb.CurrentThread` points at unless a
    /// system thread runs as its thread object).
    _kthread: Box<[u64; KTHREAD_SIZE / 8]>,
}

thread_local! {
    static BLOCK: RefCell<Option<ThreadBlock>> = const { RefCell::new(None) };
    /// The emulated RFLAGS.IF (`cli` clears it, `sti` sets it).
    static INTERRUPTS: Cell<bool> = const { Cell::new(true) };
}

static THREADS: AtomicU32 = AtomicU32::new(0);

/// The number of processors ntsim reports (`KeNumberProcessors`).
pub fn processor_count() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
        .clamp(1, 64)
}

fn set_gs(base: usize) -> bool {
    // SAFETY: arch_prctl(ARCH_SET_GS) only changes this thread's GS base; nothing in this
    // process uses GS (glibc and Rust TLS use FS on x86_64), and the block it points at lives
    // until `leave_thread` resets GS before freeing it.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_GS, base) == 0 }
}

/// Give the calling thread its KPCR/KPRCB/KTHREAD and point GS at it.
pub(crate) fn enter_thread() {
    // Cache the stack bounds now: the fault handler needs them and must not be the first caller
    // of pthread_getattr_np (which allocates).
    let _ = crate::mm::stack_bounds();
    let n = THREADS.fetch_add(1, Ordering::Relaxed) % processor_count();
    // SAFETY: KPCR_BLOCK is plain data (integers and raw pointers); all-zero is valid.
    let mut pcr: Box<KPCR_BLOCK> = Box::new(unsafe { core::mem::zeroed() });
    let mut kthread = Box::new([0u64; KTHREAD_SIZE / 8]);
    // DISPATCHER_HEADER.Type = ThreadObject; Size in DWORDs.
    kthread[0] = THREAD_OBJECT as u64 | (((KTHREAD_SIZE / 4) as u64 & 0xFF) << 16);
    let pcr_addr = &mut *pcr as *mut KPCR_BLOCK;
    pcr.Pcr.Self_ = pcr_addr.cast();
    pcr.Pcr.CurrentPrcb = &raw mut pcr.Prcb;
    pcr.Pcr.MajorVersion = 1;
    pcr.Pcr.MinorVersion = 1;
    pcr.Prcb.LegacyNumber = n as u8;
    pcr.Prcb.Number = n;
    pcr.Prcb.MxCsr = 0x1F80;
    pcr.Prcb.CurrentThread = kthread.as_mut_ptr().cast();
    if !set_gs(pcr_addr as usize) {
        return;
    }
    INTERRUPTS.with(|i| i.set(true));
    BLOCK.with(|b| {
        *b.borrow_mut() = Some(ThreadBlock {
            pcr,
            _kthread: kthread,
        })
    });
}

/// Report the calling thread as running on processor `n` (a DPC thread serves one processor).
pub(crate) fn set_processor(n: u32) {
    BLOCK.with(|b| {
        if let Some(t) = b.borrow_mut().as_mut() {
            t.pcr.Prcb.Number = n;
            t.pcr.Prcb.LegacyNumber = n as u8;
        }
    });
}

/// Make `object` the calling thread's KTHREAD (`gs:[0x188]`, KeGetCurrentThread): a system
/// thread runs as its thread object.
pub(crate) fn set_current_thread(object: PVOID) {
    BLOCK.with(|b| {
        if let Some(t) = b.borrow_mut().as_mut() {
            t.pcr.Prcb.CurrentThread = object;
        }
    });
}

/// Reset GS and free the calling thread's block.
pub(crate) fn leave_thread() {
    set_gs(0);
    BLOCK.with(|b| b.borrow_mut().take());
}

/// The calling thread's KTHREAD (null on threads without a block).
pub fn current_thread() -> PVOID {
    BLOCK
        .try_with(|b| {
            b.try_borrow()
                .ok()
                .and_then(|b| b.as_ref().map(|t| t.pcr.Prcb.CurrentThread))
        })
        .ok()
        .flatten()
        .unwrap_or(core::ptr::null_mut())
}

/// The calling thread's KPCR (GS base), 0 without a block.
pub fn current_pcr() -> u64 {
    BLOCK
        .try_with(|b| {
            b.try_borrow()
                .ok()
                .and_then(|b| b.as_ref().map(|t| &*t.pcr as *const KPCR_BLOCK as u64))
        })
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// The calling thread's processor number.
pub fn current_processor() -> u32 {
    BLOCK
        .try_with(|b| {
            b.try_borrow()
                .ok()
                .and_then(|b| b.as_ref().map(|t| t.pcr.Prcb.Number))
        })
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// The emulated interrupt flag.
pub fn interrupts_enabled() -> bool {
    INTERRUPTS.try_with(Cell::get).unwrap_or(true)
}

/// `cli` (false) / `sti` (true).
pub(crate) fn set_interrupts(on: bool) {
    let _ = INTERRUPTS.try_with(|i| i.set(on));
}

fn boot() -> Instant {
    static BOOT: OnceLock<Instant> = OnceLock::new();
    *BOOT.get_or_init(Instant::now)
}

/// Interrupt time: 100 ns units since ntsim's "boot" (the first use in this process).
pub fn interrupt_time() -> u64 {
    (boot().elapsed().as_nanos() / 100) as u64
}

/// Windows version ntsim reports in KUSER_SHARED_DATA: Windows 10 (NtMajorVersion 10,
/// NtMinorVersion 0), build 19045 (22H2) — the one version `nt_abi::rtl` defines, which
/// RtlGetVersion, PsGetVersion and the NtBuildNumber data export report too.
pub const NT_MAJOR_VERSION: u32 = nt_abi::rtl::NTSIM_MAJOR_VERSION;
pub const NT_MINOR_VERSION: u32 = nt_abi::rtl::NTSIM_MINOR_VERSION;
pub const NT_BUILD_NUMBER: u32 = nt_abi::rtl::NTSIM_BUILD_NUMBER;

fn ksystem_time(v: u64) -> KSYSTEM_TIME {
    KSYSTEM_TIME {
        LowPart: v as u32,
        High1Time: (v >> 32) as i32,
        High2Time: (v >> 32) as i32,
    }
}

/// A KUSER_SHARED_DATA page as it is now: the times are read from the host clock at each call,
/// so consecutive reads move forward (tick count = interrupt time / 15.625 ms).
pub fn kuser_snapshot() -> [u8; KUSER_SHARED_DATA_PAGE as usize] {
    // SAFETY: KUSER_SHARED_DATA is plain integers and arrays of them; all-zero is valid.
    let mut k: KUSER_SHARED_DATA = unsafe { core::mem::zeroed() };
    let it = interrupt_time();
    let ticks = it / CLOCK_TIME_INCREMENT;
    k.TickCountMultiplier = ((CLOCK_TIME_INCREMENT << 24) / 10_000) as u32;
    k.InterruptTime = ksystem_time(it);
    k.SystemTime = ksystem_time(super::system_time() as u64);
    k.TickCount = ksystem_time(ticks);
    k.TickCountLowDeprecated = ticks as u32;
    k.NtMajorVersion = NT_MAJOR_VERSION;
    k.NtMinorVersion = NT_MINOR_VERSION;
    k.NtBuildNumber = NT_BUILD_NUMBER;
    k.NtProductType = NT_PRODUCT_WIN_NT;
    k.ProductTypeIsValid = 1;
    k.MaxStackTraceDepth = 0;
    k.ImageNumberLow = nt_abi::pe::IMAGE_FILE_MACHINE_AMD64;
    k.ImageNumberHigh = nt_abi::pe::IMAGE_FILE_MACHINE_AMD64;
    k.NumberOfPhysicalPages = 0x0010_0000;
    k.KdDebuggerEnabled = 0;
    k.NXSupportPolicy = 2;
    k.ActiveConsoleId = 1;
    for (i, c) in "C:\\Windows".encode_utf16().enumerate() {
        k.NtSystemRoot[i] = c;
    }
    let mut page = [0u8; KUSER_SHARED_DATA_PAGE as usize];
    // SAFETY: `k` is a fully initialized repr(C) value; viewing its bytes is sound and they fit
    // in the page (asserted in nt-abi's layout checks).
    let bytes = unsafe {
        core::slice::from_raw_parts(
            (&raw const k).cast::<u8>(),
            core::mem::size_of::<KUSER_SHARED_DATA>(),
        )
    };
    page[..bytes.len()].copy_from_slice(bytes);
    page
}

/// Read `size` bytes at `KI_USER_SHARED_DATA + offset` from a live snapshot (None outside the
/// page).
pub fn kuser_read(addr: u64, size: u8) -> Option<u64> {
    let off = addr.checked_sub(KI_USER_SHARED_DATA)?;
    if off + size as u64 > KUSER_SHARED_DATA_PAGE {
        return None;
    }
    let page = kuser_snapshot();
    let mut v = [0u8; 8];
    v[..size as usize].copy_from_slice(&page[off as usize..off as usize + size as usize]);
    Some(u64::from_le_bytes(v))
}

/// Whether `addr` lies in the KUSER_SHARED_DATA page.
pub fn is_kuser(addr: u64) -> bool {
    (KI_USER_SHARED_DATA..KI_USER_SHARED_DATA + KUSER_SHARED_DATA_PAGE).contains(&addr)
}

/// `rdmsr`: the MSRs ntsim models (None: not implemented → #GP, as on hardware).
pub fn read_msr(msr: u32) -> Option<u64> {
    match msr {
        msr::IA32_TSC => Some(interrupt_time()),
        msr::IA32_APIC_BASE => Some(0xFEE0_0900),
        msr::IA32_EFER => Some(msr::EFER_WINDOWS_X64),
        msr::IA32_GS_BASE => Some(current_pcr()),
        msr::IA32_KERNEL_GS_BASE => Some(0),
        msr::IA32_TSC_AUX => Some(current_processor() as u64),
        _ => None,
    }
}

/// `KeGetCurrentThread` (x64 drivers usually inline it as `gs:[0x188]`; the export returns the
/// same pointer).
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn KeGetCurrentThread() -> PVOID {
    let _m = super::thread::current();
    current_thread()
}

/// `PsGetCurrentThread`: the ETHREAD, whose first member is the KTHREAD.
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn PsGetCurrentThread() -> PVOID {
    let _m = super::thread::current();
    current_thread()
}

/// `KeGetCurrentProcessorNumberEx`: the processor number (group 0).
///
/// # Safety
/// `ProcNumber` must be null or point to a writable PROCESSOR_NUMBER.
pub unsafe extern "win64" fn KeGetCurrentProcessorNumberEx(
    ProcNumber: *mut PROCESSOR_NUMBER,
) -> ULONG {
    let _m = super::thread::current();
    let n = current_processor();
    if !ProcNumber.is_null() {
        // SAFETY: non-null and writable per the contract.
        unsafe {
            ProcNumber.write(PROCESSOR_NUMBER {
                Group: 0,
                Number: n as u8,
                Reserved: 0,
            })
        };
    }
    n
}

/// `KeAreInterruptsEnabled`: the emulated RFLAGS.IF, which the driver's `cli`/`sti` change.
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn KeAreInterruptsEnabled() -> BOOLEAN {
    let _m = super::thread::current();
    interrupts_enabled() as BOOLEAN
}

/// `KeQueryTimeIncrement`: 156 250 (15.625 ms), the interval the tick count advances by.
///
/// # Safety
/// Always safe to call.
pub unsafe extern "win64" fn KeQueryTimeIncrement() -> ULONG {
    let _m = super::thread::current();
    CLOCK_TIME_INCREMENT as ULONG
}

/// Set the IRQL through CR8 (`mov cr8, reg`), with the rules the IRQL exports follow: values
/// above HIGH_LEVEL (15) set reserved CR8 bits, which the CPU refuses with #GP (returns false);
/// otherwise the thread's IRQL becomes `v`. Raising and lowering through CR8 are the same
/// instruction, so the ordering rules of KeRaiseIrql/KeLowerIrql (Driver Verifier's 0xC4/0x30
/// and 0x31) cannot be told apart from a legal lower/raise and are not applied; everything that
/// checks the current IRQL afterwards sees the new value.
pub(crate) fn write_cr8(v: u64) -> bool {
    if v > HIGH_LEVEL as u64 {
        return false;
    }
    let old = super::irql::get();
    super::irql::set(v as u8);
    // Force IRQL Checking: a raise to DISPATCH_LEVEL or above trims pageable memory.
    if v as u8 >= DISPATCH_LEVEL && v as u8 > old {
        super::on_driver_raise(&super::thread::current());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kuser_times_move_and_versions_are_set() {
        let a = kuser_read(KI_USER_SHARED_DATA + KUSER_SYSTEM_TIME, 8).unwrap();
        let i1 = kuser_read(KI_USER_SHARED_DATA + KUSER_INTERRUPT_TIME, 8).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = kuser_read(KI_USER_SHARED_DATA + KUSER_SYSTEM_TIME, 8).unwrap();
        let i2 = kuser_read(KI_USER_SHARED_DATA + KUSER_INTERRUPT_TIME, 8).unwrap();
        assert!(b > a && i2 > i1, "{a} {b} {i1} {i2}");
        assert_eq!(kuser_read(KI_USER_SHARED_DATA + 0x26C, 4), Some(10));
        assert_eq!(kuser_read(KI_USER_SHARED_DATA + 0xFFC, 4), Some(0));
        assert_eq!(kuser_read(KI_USER_SHARED_DATA + 0xFFE, 4), None);
        assert_eq!(kuser_read(0x1000, 4), None);
    }
}
