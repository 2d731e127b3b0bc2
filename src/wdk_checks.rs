//! WDK build only (`feature = "wdk"`, Windows target): compile-time proof that nt-abi — the FFI
//! surface this driver actually uses, shared with ntsim — lays out every NT structure exactly as
//! the installed WDK does, as seen through windows-drivers-rs' bindgen output (`wdk-sys`).
//!
//! The rows come from nt-abi's own [`nt_abi::for_each_layout_fact!`] table (the same table the
//! mingw-w64 cross-check in `crates/nt-abi/tests/mingw_layouts.rs` consumes), so nothing is
//! restated: for each `(type, size)` row, `size_of::<nt_abi::T>() == size_of::<wdk_sys::T>()`,
//! and for each `(type, field, offset)` row, `offset_of!` agrees on both sides. Each side is
//! additionally pinned to the table's literal, so a disagreement names which side moved.
//!
//! A mismatch fails `cargo make` / `cargo build` on Windows with the row in the message.
//!
//! Wired in by `src/lib.rs` as `#[cfg(feature = "wdk")] mod wdk_checks;`. On Linux the wdk crates
//! are never compiled; `crates/sys-check/tests/wdk_checks_standin.rs` compiles this file there
//! against a stand-in `wdk-sys` (nt-abi plus a bindgen-shaped IRP) to prove the macro expansion,
//! the nt-abi side and the anonymous-member paths type-check. The real wdk-sys side (its type and
//! field names, its values) is only checked by a real WDK build on Windows.

use core::mem::{offset_of, size_of};

/// `offset_of!` on the wdk-sys side. bindgen names C11 anonymous members `__bindgen_anon_N`
/// (N counts the anonymous members of that struct, in order), so a field that the WDK declares
/// inside an anonymous union needs its bindgen path here. In the current WDK that is only
/// `IRP.UserIosb` (`union { PIO_STATUS_BLOCK UserIosb; PVOID IoRingContext; };`). If a future
/// WDK moves another row into an anonymous member, the build fails with "no field" — loudly,
/// never silently.
macro_rules! wdk_offset {
    (IRP, UserIosb) => {
        offset_of!(wdk_sys::IRP, __bindgen_anon_1.UserIosb)
    };
    ($t:ident, $f:ident) => {
        offset_of!(wdk_sys::$t, $f)
    };
}

macro_rules! assert_same_as_wdk_sys {
    (sizes: [$(($t:ident, $size:expr)),* $(,)?], offsets: [$(($ot:ident, $f:ident, $off:expr)),* $(,)?],) => {
        $(
            const _: () = assert!(
                size_of::<wdk_sys::$t>() == $size,
                concat!("wdk-sys: size of ", stringify!($t), " differs from nt-abi's table")
            );
            const _: () = assert!(
                size_of::<nt_abi::$t>() == size_of::<wdk_sys::$t>(),
                concat!("nt-abi vs wdk-sys: size of ", stringify!($t))
            );
        )*
        $(
            const _: () = assert!(
                wdk_offset!($ot, $f) == $off,
                concat!("wdk-sys: offset of ", stringify!($ot), ".", stringify!($f), " differs from nt-abi's table")
            );
            const _: () = assert!(
                offset_of!(nt_abi::$ot, $f) == wdk_offset!($ot, $f),
                concat!("nt-abi vs wdk-sys: offset of ", stringify!($ot), ".", stringify!($f))
            );
        )*
    };
}

nt_abi::for_each_layout_fact!(assert_same_as_wdk_sys);

// Members the driver reads through nested unions (IoGetCurrentIrpStackLocation,
// Parameters.DeviceIoControl, IoStatus.Information): the WDK names the path (bindgen spells the
// anonymous `struct { LIST_ENTRY ListEntry; union { CurrentStackLocation; PacketType; }; }`
// inside Tail.Overlay as `__bindgen_anon_2.__bindgen_anon_1`), nt-abi splits it into types.
const _: () = assert!(
    offset_of!(
        wdk_sys::IRP,
        Tail.Overlay
            .__bindgen_anon_2
            .__bindgen_anon_1
            .CurrentStackLocation
    ) == offset_of!(nt_abi::IRP, Tail) + offset_of!(nt_abi::IRP_TAIL_OVERLAY, CurrentStackLocation)
);
const _: () = assert!(
    offset_of!(wdk_sys::IRP, IoStatus.Information)
        == offset_of!(nt_abi::IRP, IoStatus) + offset_of!(nt_abi::IO_STATUS_BLOCK, Information)
);
const _: () = assert!(
    offset_of!(
        wdk_sys::IO_STACK_LOCATION,
        Parameters.DeviceIoControl.OutputBufferLength
    ) == offset_of!(nt_abi::IO_STACK_LOCATION, Parameters)
        + offset_of!(nt_abi::DEVICE_IO_CONTROL_PARAMETERS, OutputBufferLength)
);
const _: () = assert!(
    offset_of!(
        wdk_sys::IO_STACK_LOCATION,
        Parameters.DeviceIoControl.InputBufferLength
    ) == offset_of!(nt_abi::IO_STACK_LOCATION, Parameters)
        + offset_of!(nt_abi::DEVICE_IO_CONTROL_PARAMETERS, InputBufferLength)
);
const _: () = assert!(
    offset_of!(
        wdk_sys::IO_STACK_LOCATION,
        Parameters.DeviceIoControl.IoControlCode
    ) == offset_of!(nt_abi::IO_STACK_LOCATION, Parameters)
        + offset_of!(nt_abi::DEVICE_IO_CONTROL_PARAMETERS, IoControlCode)
);
const _: () =
    assert!(size_of::<nt_abi::DRIVER_EXTENSION>() == size_of::<wdk_sys::DRIVER_EXTENSION>());
const _: () = assert!(
    core::mem::align_of::<nt_abi::DEVICE_OBJECT>()
        == core::mem::align_of::<wdk_sys::DEVICE_OBJECT>()
);
