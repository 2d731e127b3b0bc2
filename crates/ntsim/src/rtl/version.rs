//! The version routines: `RtlGetVersion`, `RtlVerifyVersionInfo`, `VerSetConditionMask`,
//! `PsGetVersion`. ntsim reports Windows 10 22H2, 10.0.19045, a free build, no service pack,
//! workstation (VER_NT_WORKSTATION, suite VER_SUITE_SINGLEUSERTS) — the same version as
//! KUSER_SHARED_DATA and the `NtBuildNumber` data export (one definition: `nt_abi::rtl`).
#![allow(non_snake_case)]

use nt_abi::rtl::*;
use nt_abi::*;

fn fill(v: &mut RTL_OSVERSIONINFOEXW) {
    v.dwMajorVersion = NTSIM_MAJOR_VERSION;
    v.dwMinorVersion = NTSIM_MINOR_VERSION;
    v.dwBuildNumber = NTSIM_BUILD_NUMBER;
    v.dwPlatformId = VER_PLATFORM_WIN32_NT;
    v.szCSDVersion = [0; 128];
    v.wServicePackMajor = 0;
    v.wServicePackMinor = 0;
    v.wSuiteMask = VER_SUITE_SINGLEUSERTS;
    v.wProductType = VER_NT_WORKSTATION;
    v.wReserved = 0;
}

/// `RtlGetVersion` (Microsoft, `…/ddi/wdm/nf-wdm-rtlgetversion`): fills an RTL_OSVERSIONINFOW
/// (dwOSVersionInfoSize 276) or RTL_OSVERSIONINFOEXW (284); any other size is
/// STATUS_INVALID_PARAMETER with nothing written (ReactOS `sdk/lib/rtl/version.c`).
///
/// # Safety
/// `lpVersionInformation` readable, and writable for the size it declares.
pub unsafe extern "win64" fn RtlGetVersion(
    lpVersionInformation: *mut RTL_OSVERSIONINFOW,
) -> NTSTATUS {
    // SAFETY: the size field is readable per the contract.
    let size = unsafe { lpVersionInformation.cast::<ULONG>().read_unaligned() } as usize;
    let want = match size {
        s if s == core::mem::size_of::<RTL_OSVERSIONINFOW>() => s,
        s if s == core::mem::size_of::<RTL_OSVERSIONINFOEXW>() => s,
        _ => return STATUS_INVALID_PARAMETER,
    };
    // SAFETY: RTL_OSVERSIONINFOEXW is plain integers; all-zero is valid.
    let mut v: RTL_OSVERSIONINFOEXW = unsafe { core::mem::zeroed() };
    v.dwOSVersionInfoSize = size as ULONG;
    fill(&mut v);
    // SAFETY: `want` bytes (the declared size) are writable; `v` is at least that long.
    unsafe {
        core::ptr::copy_nonoverlapping(
            (&v as *const RTL_OSVERSIONINFOEXW).cast::<u8>(),
            lpVersionInformation.cast::<u8>(),
            want,
        )
    };
    STATUS_SUCCESS
}

fn condition(mask: u64, bit: ULONG) -> u8 {
    ((mask >> (3 * bit.trailing_zeros())) & 7) as u8
}

fn holds(cond: u8, ord: core::cmp::Ordering) -> Option<bool> {
    use core::cmp::Ordering::*;
    Some(match cond {
        VER_EQUAL => ord == Equal,
        VER_GREATER => ord == Greater,
        VER_GREATER_EQUAL => ord != Less,
        VER_LESS => ord == Less,
        VER_LESS_EQUAL => ord != Greater,
        _ => return None,
    })
}

/// `RtlVerifyVersionInfo` (Microsoft, `…/ddi/wdm/nf-wdm-rtlverifyversioninfo`): compares the
/// running version (as observed: 10.0.19045 SP0 workstation) with the fields TypeMask selects,
/// each under its condition from ConditionMask (3 bits per type, `VerSetConditionMask`).
/// Major version, minor version, service-pack major and minor form one hierarchical comparison
/// under the condition of the most significant one present; the build number and platform are
/// compared alone; VER_SUITENAME takes VER_AND (all suites present) or VER_OR (any);
/// VER_PRODUCT_TYPE a relational condition. STATUS_SUCCESS when all hold, else
/// STATUS_REVISION_MISMATCH; TypeMask 0, ConditionMask 0, or a type without a condition is
/// STATUS_INVALID_PARAMETER.
///
/// # Safety
/// `VersionInfo` readable (an RTL_OSVERSIONINFOEXW).
pub unsafe extern "win64" fn RtlVerifyVersionInfo(
    VersionInfo: *mut RTL_OSVERSIONINFOEXW,
    TypeMask: ULONG,
    ConditionMask: u64,
) -> NTSTATUS {
    if TypeMask == 0 || ConditionMask == 0 {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: readable per the contract.
    let want = unsafe { VersionInfo.read_unaligned() };
    // SAFETY: plain integers; all-zero is valid.
    let mut have: RTL_OSVERSIONINFOEXW = unsafe { core::mem::zeroed() };
    fill(&mut have);
    let mut ok = true;
    // The hierarchy: major, minor, SP major, SP minor.
    let levels = [
        (VER_MAJORVERSION, have.dwMajorVersion, want.dwMajorVersion),
        (VER_MINORVERSION, have.dwMinorVersion, want.dwMinorVersion),
        (
            VER_SERVICEPACKMAJOR,
            have.wServicePackMajor as u32,
            want.wServicePackMajor as u32,
        ),
        (
            VER_SERVICEPACKMINOR,
            have.wServicePackMinor as u32,
            want.wServicePackMinor as u32,
        ),
    ];
    let present: Vec<_> = levels.iter().filter(|l| TypeMask & l.0 != 0).collect();
    if let Some(first) = present.first() {
        let ord = present
            .iter()
            .map(|l| l.1.cmp(&l.2))
            .find(|o| o.is_ne())
            .unwrap_or(core::cmp::Ordering::Equal);
        match holds(condition(ConditionMask, first.0), ord) {
            Some(h) => ok &= h,
            None => return STATUS_INVALID_PARAMETER,
        }
    }
    for (bit, h, w) in [
        (VER_BUILDNUMBER, have.dwBuildNumber, want.dwBuildNumber),
        (VER_PLATFORMID, have.dwPlatformId, want.dwPlatformId),
        (
            VER_PRODUCT_TYPE,
            have.wProductType as u32,
            want.wProductType as u32,
        ),
    ] {
        if TypeMask & bit != 0 {
            match holds(condition(ConditionMask, bit), h.cmp(&w)) {
                Some(x) => ok &= x,
                None => return STATUS_INVALID_PARAMETER,
            }
        }
    }
    if TypeMask & VER_SUITENAME != 0 {
        let (h, w) = (have.wSuiteMask, want.wSuiteMask);
        match condition(ConditionMask, VER_SUITENAME) {
            VER_AND => ok &= h & w == w,
            VER_OR => ok &= w == 0 || h & w != 0,
            _ => return STATUS_INVALID_PARAMETER,
        }
    }
    if ok {
        STATUS_SUCCESS
    } else {
        STATUS_REVISION_MISMATCH
    }
}

/// `VerSetConditionMask` (Microsoft, `…/ddi/wdm/nf-wdm-versetconditionmask`): put Condition
/// (3 bits) in the slot of every type in TypeMask; TypeMask 0 returns the mask unchanged.
///
/// # Safety
/// Always safe.
pub unsafe extern "win64" fn VerSetConditionMask(
    ConditionMask: u64,
    TypeMask: ULONG,
    Condition: UCHAR,
) -> u64 {
    let mut m = ConditionMask;
    for i in 0..8 {
        if TypeMask & (1 << i) != 0 {
            m = (m & !(7u64 << (3 * i))) | (((Condition & 7) as u64) << (3 * i));
        }
    }
    m
}

/// `PsGetVersion` (Microsoft, `…/ddi/ntddk/nf-ntddk-psgetversion`): each non-NULL output gets
/// the major, minor and build number; CSDVersion (when its Buffer is set) gets the empty
/// service-pack string (Length 0, NUL-terminated if MaximumLength allows). FALSE: a free build.
///
/// # Safety
/// Non-NULL arguments writable.
pub unsafe extern "win64" fn PsGetVersion(
    MajorVersion: *mut ULONG,
    MinorVersion: *mut ULONG,
    BuildNumber: *mut ULONG,
    CSDVersion: *mut UNICODE_STRING,
) -> BOOLEAN {
    for (p, v) in [
        (MajorVersion, NTSIM_MAJOR_VERSION),
        (MinorVersion, NTSIM_MINOR_VERSION),
        (BuildNumber, NTSIM_BUILD_NUMBER),
    ] {
        if !p.is_null() {
            // SAFETY: writable per the contract.
            unsafe { p.write_unaligned(v) };
        }
    }
    if !CSDVersion.is_null() {
        // SAFETY: writable per the contract.
        let mut s = unsafe { CSDVersion.read_unaligned() };
        s.Length = 0;
        if !s.Buffer.is_null() && s.MaximumLength >= 2 {
            // SAFETY: the buffer holds MaximumLength bytes.
            unsafe { s.Buffer.write_unaligned(0) };
        }
        // SAFETY: writable.
        unsafe { CSDVersion.write_unaligned(s) };
    }
    FALSE
}
