#![no_std]
use nt_abi::*;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn DriverEntry(
    _d: *mut DRIVER_OBJECT,
    _r: *mut UNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: test
    let n = unsafe { nt_abi::imports::IoSizeofWorkItem() };
    n as i32
}
