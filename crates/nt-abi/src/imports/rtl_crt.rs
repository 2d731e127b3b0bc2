//! Rtl strings and memory, the CRT ntoskrnl exports, MmGetSystemRoutineAddress, version (issue 9, item 3).
//!
//! The CRT names (`memcpy`, `strlen`, …) are in the sibling group `imports/crt.rs`, the printers
//! (`sprintf`, `_snwprintf`, …) in its `VARIADIC` list, and ntoskrnl's exported variables in
//! `imports/data.rs`.
#[allow(unused_imports)]
use super::*;
#[allow(unused_imports)]
use crate::rtl::*;

ntoskrnl_imports! {
    /// Address of the ntoskrnl export named `SystemRoutineName`, or NULL.
    fn MmGetSystemRoutineAddress(SystemRoutineName: *mut UNICODE_STRING) -> PVOID;
    /// Whether a read of `VirtualAddress` would not fault.
    fn MmIsAddressValid(VirtualAddress: PVOID) -> BOOLEAN;
    /// Fill an RTL_OSVERSIONINFOW / RTL_OSVERSIONINFOEXW (by its dwOSVersionInfoSize).
    fn RtlGetVersion(lpVersionInformation: *mut RTL_OSVERSIONINFOW) -> NTSTATUS;
    /// Compare the running version with `VersionInfo` under `ConditionMask`.
    fn RtlVerifyVersionInfo(VersionInfo: *mut RTL_OSVERSIONINFOEXW, TypeMask: ULONG, ConditionMask: u64) -> NTSTATUS;
    /// Add one comparison to a condition mask for RtlVerifyVersionInfo.
    fn VerSetConditionMask(ConditionMask: u64, TypeMask: ULONG, Condition: UCHAR) -> u64;
    /// Major/minor/build and the CSD version; TRUE on a checked build.
    fn PsGetVersion(MajorVersion: *mut ULONG, MinorVersion: *mut ULONG, BuildNumber: *mut ULONG, CSDVersion: *mut UNICODE_STRING) -> BOOLEAN;

    fn RtlInitAnsiString(DestinationString: *mut ANSI_STRING, SourceString: *const u8);
    fn RtlInitString(DestinationString: *mut ANSI_STRING, SourceString: *const u8);
    fn RtlInitUnicodeStringEx(DestinationString: *mut UNICODE_STRING, SourceString: *const WCHAR) -> NTSTATUS;
    fn RtlCopyUnicodeString(DestinationString: *mut UNICODE_STRING, SourceString: *const UNICODE_STRING);
    fn RtlAppendUnicodeToString(Destination: *mut UNICODE_STRING, Source: *const WCHAR) -> NTSTATUS;
    fn RtlAppendUnicodeStringToString(Destination: *mut UNICODE_STRING, Source: *const UNICODE_STRING) -> NTSTATUS;
    fn RtlCompareUnicodeString(String1: *const UNICODE_STRING, String2: *const UNICODE_STRING, CaseInSensitive: BOOLEAN) -> LONG;
    fn RtlEqualUnicodeString(String1: *const UNICODE_STRING, String2: *const UNICODE_STRING, CaseInSensitive: BOOLEAN) -> BOOLEAN;
    fn RtlPrefixUnicodeString(String1: *const UNICODE_STRING, String2: *const UNICODE_STRING, CaseInSensitive: BOOLEAN) -> BOOLEAN;
    fn RtlUpcaseUnicodeChar(SourceCharacter: WCHAR) -> WCHAR;
    fn RtlDowncaseUnicodeChar(SourceCharacter: WCHAR) -> WCHAR;
    fn RtlUpcaseUnicodeString(DestinationString: *mut UNICODE_STRING, SourceString: *const UNICODE_STRING, AllocateDestinationString: BOOLEAN) -> NTSTATUS;
    fn RtlDowncaseUnicodeString(DestinationString: *mut UNICODE_STRING, SourceString: *const UNICODE_STRING, AllocateDestinationString: BOOLEAN) -> NTSTATUS;
    fn RtlUnicodeStringToInteger(String: *const UNICODE_STRING, Base: ULONG, Value: *mut ULONG) -> NTSTATUS;
    fn RtlIntegerToUnicodeString(Value: ULONG, Base: ULONG, String: *mut UNICODE_STRING) -> NTSTATUS;
    fn RtlAnsiStringToUnicodeString(DestinationString: *mut UNICODE_STRING, SourceString: *const ANSI_STRING, AllocateDestinationString: BOOLEAN) -> NTSTATUS;
    fn RtlUnicodeStringToAnsiString(DestinationString: *mut ANSI_STRING, SourceString: *const UNICODE_STRING, AllocateDestinationString: BOOLEAN) -> NTSTATUS;
    fn RtlFreeUnicodeString(UnicodeString: *mut UNICODE_STRING);
    fn RtlFreeAnsiString(AnsiString: *mut ANSI_STRING);
    fn RtlCompareString(String1: *const ANSI_STRING, String2: *const ANSI_STRING, CaseInSensitive: BOOLEAN) -> LONG;
    fn RtlEqualString(String1: *const ANSI_STRING, String2: *const ANSI_STRING, CaseInSensitive: BOOLEAN) -> BOOLEAN;
    fn RtlCreateUnicodeString(DestinationString: *mut UNICODE_STRING, SourceString: *const WCHAR) -> BOOLEAN;

    fn RtlCompareMemory(Source1: *const core::ffi::c_void, Source2: *const core::ffi::c_void, Length: SIZE_T) -> SIZE_T;
    fn RtlCompareMemoryUlong(Source: PVOID, Length: SIZE_T, Pattern: ULONG) -> SIZE_T;
    fn RtlMoveMemory(Destination: PVOID, Source: *const core::ffi::c_void, Length: SIZE_T);
    fn RtlFillMemory(Destination: PVOID, Length: SIZE_T, Fill: UCHAR);
    fn RtlZeroMemory(Destination: PVOID, Length: SIZE_T);
    fn RtlRandomEx(Seed: *mut ULONG) -> ULONG;

    fn RtlInitializeBitMap(BitMapHeader: *mut RTL_BITMAP, BitMapBuffer: *mut ULONG, SizeOfBitMap: ULONG);
    fn RtlClearAllBits(BitMapHeader: *mut RTL_BITMAP);
    fn RtlSetAllBits(BitMapHeader: *mut RTL_BITMAP);
    fn RtlSetBits(BitMapHeader: *mut RTL_BITMAP, StartingIndex: ULONG, NumberToSet: ULONG);
    fn RtlClearBits(BitMapHeader: *mut RTL_BITMAP, StartingIndex: ULONG, NumberToClear: ULONG);
    fn RtlTestBit(BitMapHeader: *mut RTL_BITMAP, BitNumber: ULONG) -> BOOLEAN;
    fn RtlFindClearBits(BitMapHeader: *mut RTL_BITMAP, NumberToFind: ULONG, HintIndex: ULONG) -> ULONG;
    fn RtlFindSetBits(BitMapHeader: *mut RTL_BITMAP, NumberToFind: ULONG, HintIndex: ULONG) -> ULONG;
    fn RtlFindClearBitsAndSet(BitMapHeader: *mut RTL_BITMAP, NumberToFind: ULONG, HintIndex: ULONG) -> ULONG;
    fn RtlFindSetBitsAndClear(BitMapHeader: *mut RTL_BITMAP, NumberToFind: ULONG, HintIndex: ULONG) -> ULONG;
    fn RtlNumberOfSetBits(BitMapHeader: *mut RTL_BITMAP) -> ULONG;
    fn RtlNumberOfClearBits(BitMapHeader: *mut RTL_BITMAP) -> ULONG;
    fn RtlAreBitsSet(BitMapHeader: *mut RTL_BITMAP, StartingIndex: ULONG, Length: ULONG) -> BOOLEAN;
    fn RtlAreBitsClear(BitMapHeader: *mut RTL_BITMAP, StartingIndex: ULONG, Length: ULONG) -> BOOLEAN;
}
