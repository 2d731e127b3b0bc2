//! Variables ntoskrnl.exe exports (data exports; issue 9, item 3; stream rtlcrt).
//!
//! A data import's IAT slot holds the *address of the variable*, not code: a driver that
//! declares `extern POBJECT_TYPE *ExEventObjectType;` (the WDK's spelling) reads the slot and
//! dereferences it once to get the POBJECT_TYPE. The import library for C fixtures marks these
//! `DATA`, and loaders must not bind them to code stubs.
#![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
#[allow(unused_imports)]
use super::*;

/// Declares the data exports: a `types` module (the Rust type of each variable, named after it)
/// and `NAMES`.
macro_rules! ntoskrnl_data {
    ($( $(#[doc = $doc:literal])* static $name:ident: $ty:ty; )*) => {
        /// The type of every exported variable, named after it.
        pub mod types {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[doc = $doc])* pub type $name = $ty; )*
        }
        /// Names of the exported variables ntsim emulates.
        pub const NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}

/// `POBJECT_TYPE`: OBJECT_TYPE is opaque to drivers.
pub type POBJECT_TYPE = *mut core::ffi::c_void;

ntoskrnl_data! {
    /// The event object type (ObReferenceObjectByHandle's ObjectType for event handles).
    static ExEventObjectType: POBJECT_TYPE;
    static ExSemaphoreObjectType: POBJECT_TYPE;
    static IoFileObjectType: POBJECT_TYPE;
    static IoDeviceObjectType: POBJECT_TYPE;
    static IoDriverObjectType: POBJECT_TYPE;
    static PsThreadType: POBJECT_TYPE;
    static PsProcessType: POBJECT_TYPE;
    static SeTokenObjectType: POBJECT_TYPE;
    /// Build number, high nibble 0xF (free build) or 0xC (checked).
    static NtBuildNumber: ULONG;
    /// TRUE when a kernel debugger is attached.
    static KdDebuggerEnabled: BOOLEAN;
    /// FALSE when a kernel debugger is attached and connected.
    static KdDebuggerNotPresent: BOOLEAN;
    /// The first kernel-mode address.
    static MmSystemRangeStart: PVOID;
    /// The highest user-mode address.
    static MmHighestUserAddress: PVOID;
    /// The first address ProbeForRead/ProbeForWrite refuse (a ULONG_PTR variable on x64).
    static MmUserProbeAddress: ULONG_PTR;
    /// 0 in a normal boot (1 SAFEBOOT_MINIMAL, 2 SAFEBOOT_NETWORK, 3 DSREPAIR).
    static InitSafeBootMode: ULONG;
    /// Number of processors (a CCHAR).
    static KeNumberProcessors: CCHAR;
}

/// ntoskrnl data exports ntsim does not emulate (so a missing-import error can call them data,
/// not functions). From Wine's `ntoskrnl.exe.spec` (`extern` entries and stubs of variables)
/// and mingw-w64's ddk headers.
pub const KNOWN_UNEMULATED: &[&str] = &[
    "SeExports",
    "PsInitialSystemProcess",
    "PsLoadedModuleList",
    "KeServiceDescriptorTable",
    "KeTickCount",
    "KeLoaderBlock",
    "KiBugCheckData",
    "HalDispatchTable",
    "HalPrivateDispatchTable",
    "IoAdapterObjectType",
    "IoDeviceHandlerObjectType",
    "CmKeyObjectType",
    "ExDesktopObjectType",
    "ExWindowStationObjectType",
    "LpcPortObjectType",
    "MmSectionObjectType",
    "PsJobType",
    "TmEnlistmentObjectType",
    "TmResourceManagerObjectType",
    "TmTransactionManagerObjectType",
    "TmTransactionObjectType",
    "NlsAnsiCodePage",
    "NlsMbCodePageTag",
    "NlsMbOemCodePageTag",
    "NlsOemCodePage",
    "NlsLeadByteInfo",
    "NlsOemLeadByteInfo",
    "FsRtlLegalAnsiCharacterArray",
    "NtGlobalFlag",
    "Mm64BitPhysicalAddress",
    "IoStatisticsLock",
    "IoReadOperationCount",
    "IoWriteOperationCount",
    "IoReadTransferCount",
    "IoWriteTransferCount",
    "KdEnteredDebugger",
    "MmBadPointer",
    "SePublicDefaultDacl",
    "SeSystemDefaultDacl",
];

/// Whether `name` is a variable ntoskrnl exports (emulated or not).
pub fn is_data(name: &str) -> bool {
    NAMES.contains(&name) || KNOWN_UNEMULATED.contains(&name)
}
