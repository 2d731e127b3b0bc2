//! Kernel debugger interface: debug-print filter components and levels (dpfilter.h), the
//! statuses the `Kd*`/`Dbg*` routines return, and `KD_OPTION`.
//!
//! Component ids and levels follow mingw-w64's `dpfilter.h` (the WDK's `dpfilter.h` has the
//! same values); the filtering rule is Microsoft's "Reading and Filtering Debugging Messages"
//! (<https://learn.microsoft.com/windows-hardware/drivers/debugger/reading-and-filtering-debugging-messages>).
use crate::types::ULONG;

/// `DPFLTR_ERROR_LEVEL` (0): passes the default system-wide (`WIN2000`) mask, so always shown.
pub const DPFLTR_ERROR_LEVEL: ULONG = 0;
/// `DPFLTR_WARNING_LEVEL` (1).
pub const DPFLTR_WARNING_LEVEL: ULONG = 1;
/// `DPFLTR_TRACE_LEVEL` (2).
pub const DPFLTR_TRACE_LEVEL: ULONG = 2;
/// `DPFLTR_INFO_LEVEL` (3): what `DbgPrint` / `KdPrint` use (with `DPFLTR_DEFAULT_ID`).
pub const DPFLTR_INFO_LEVEL: ULONG = 3;
/// `DPFLTR_MASK` (dpfilter.h): a Level with bit 31 set.
pub const DPFLTR_MASK: ULONG = 0x8000_0000;

/// `DPFLTR_IHVDRIVER_ID`, the component id third-party drivers pass to `DbgPrintEx`.
pub const DPFLTR_IHVDRIVER_ID: ULONG = 77;
/// `DPFLTR_DEFAULT_ID`: the component of `DbgPrint` / `KdPrint` (Windows Vista and later).
pub const DPFLTR_DEFAULT_ID: ULONG = 101;
/// `DPFLTR_ENDOFTABLE_ID`: component ids are `0..DPFLTR_ENDOFTABLE_ID`.
pub const DPFLTR_ENDOFTABLE_ID: ULONG = 146;
/// The component id `DbgSetDebugFilterState` / `DbgQueryDebugFilterState` take for the
/// system-wide mask (`Kd_WIN2000_Mask`), as `NtSetDebugFilterState` does (ReactOS
/// `ntoskrnl/kd64/kdapi.c`).
pub const DPFLTR_WIN2000_COMPONENT: ULONG = u32::MAX;
/// `Kd_WIN2000_Mask`'s default: the ERROR level of every component is shown.
pub const KD_WIN2000_MASK_DEFAULT: ULONG = 1;
/// Every other `Kd_<component>_Mask` starts at 0.
pub const KD_COMPONENT_MASK_DEFAULT: ULONG = 0;

/// The importance bit field of a `Level`: `1 << Level` for 0..=31, `Level` itself above.
pub const fn dpfltr_level_bits(level: ULONG) -> ULONG {
    if level < 32 { 1 << level } else { level }
}

/// Every `DPFLTR_<NAME>_ID` of dpfilter.h: (NAME, id), in id order.
pub const DPFLTR_COMPONENTS: &[(&str, ULONG)] = &[
    ("SYSTEM", 0),
    ("SMSS", 1),
    ("SETUP", 2),
    ("NTFS", 3),
    ("FSTUB", 4),
    ("CRASHDUMP", 5),
    ("CDAUDIO", 6),
    ("CDROM", 7),
    ("CLASSPNP", 8),
    ("DISK", 9),
    ("REDBOOK", 10),
    ("STORPROP", 11),
    ("SCSIPORT", 12),
    ("SCSIMINIPORT", 13),
    ("CONFIG", 14),
    ("I8042PRT", 15),
    ("SERMOUSE", 16),
    ("LSERMOUS", 17),
    ("KBDHID", 18),
    ("MOUHID", 19),
    ("KBDCLASS", 20),
    ("MOUCLASS", 21),
    ("TWOTRACK", 22),
    ("WMILIB", 23),
    ("ACPI", 24),
    ("AMLI", 25),
    ("HALIA64", 26),
    ("VIDEO", 27),
    ("SVCHOST", 28),
    ("VIDEOPRT", 29),
    ("TCPIP", 30),
    ("DMSYNTH", 31),
    ("NTOSPNP", 32),
    ("FASTFAT", 33),
    ("SAMSS", 34),
    ("PNPMGR", 35),
    ("NETAPI", 36),
    ("SCSERVER", 37),
    ("SCCLIENT", 38),
    ("SERIAL", 39),
    ("SERENUM", 40),
    ("UHCD", 41),
    ("RPCPROXY", 42),
    ("AUTOCHK", 43),
    ("DCOMSS", 44),
    ("UNIMODEM", 45),
    ("SIS", 46),
    ("FLTMGR", 47),
    ("WMICORE", 48),
    ("BURNENG", 49),
    ("IMAPI", 50),
    ("SXS", 51),
    ("FUSION", 52),
    ("IDLETASK", 53),
    ("SOFTPCI", 54),
    ("TAPE", 55),
    ("MCHGR", 56),
    ("IDEP", 57),
    ("PCIIDE", 58),
    ("FLOPPY", 59),
    ("FDC", 60),
    ("TERMSRV", 61),
    ("W32TIME", 62),
    ("PREFETCHER", 63),
    ("RSFILTER", 64),
    ("FCPORT", 65),
    ("PCI", 66),
    ("DMIO", 67),
    ("DMCONFIG", 68),
    ("DMADMIN", 69),
    ("WSOCKTRANSPORT", 70),
    ("VSS", 71),
    ("PNPMEM", 72),
    ("PROCESSOR", 73),
    ("DMSERVER", 74),
    ("SR", 75),
    ("INFINIBAND", 76),
    ("IHVDRIVER", 77),
    ("IHVVIDEO", 78),
    ("IHVAUDIO", 79),
    ("IHVNETWORK", 80),
    ("IHVSTREAMING", 81),
    ("IHVBUS", 82),
    ("HPS", 83),
    ("RTLTHREADPOOL", 84),
    ("LDR", 85),
    ("TCPIP6", 86),
    ("ISAPNP", 87),
    ("SHPC", 88),
    ("STORPORT", 89),
    ("STORMINIPORT", 90),
    ("PRINTSPOOLER", 91),
    ("VSSDYNDISK", 92),
    ("VERIFIER", 93),
    ("VDS", 94),
    ("VDSBAS", 95),
    ("VDSDYN", 96),
    ("VDSDYNDR", 97),
    ("VDSLDR", 98),
    ("VDSUTIL", 99),
    ("DFRGIFC", 100),
    ("DEFAULT", 101),
    ("MM", 102),
    ("DFSC", 103),
    ("WOW64", 104),
    ("ALPC", 105),
    ("WDI", 106),
    ("PERFLIB", 107),
    ("KTM", 108),
    ("IOSTRESS", 109),
    ("HEAP", 110),
    ("WHEA", 111),
    ("USERGDI", 112),
    ("MMCSS", 113),
    ("TPM", 114),
    ("THREADORDER", 115),
    ("ENVIRON", 116),
    ("EMS", 117),
    ("WDT", 118),
    ("FVEVOL", 119),
    ("NDIS", 120),
    ("NVCTRACE", 121),
    ("LUAFV", 122),
    ("APPCOMPAT", 123),
    ("USBSTOR", 124),
    ("SBP2PORT", 125),
    ("COVERAGE", 126),
    ("CACHEMGR", 127),
    ("MOUNTMGR", 128),
    ("CFR", 129),
    ("TXF", 130),
    ("KSECDD", 131),
    ("FLTREGRESS", 132),
    ("MPIO", 133),
    ("MSDSM", 134),
    ("UDFS", 135),
    ("PSHED", 136),
    ("STORVSP", 137),
    ("LSASS", 138),
    ("SSPICLI", 139),
    ("CNG", 140),
    ("EXFAT", 141),
    ("FILETRACE", 142),
    ("XSAVE", 143),
    ("SE", 144),
    ("DRIVEEXTENDER", 145),
];

/// The id of component `name` (`IHVDRIVER`, `DEFAULT`…, as in `Kd_<name>_Mask`; ASCII case
/// ignored; a `DPFLTR_` prefix and `_ID` suffix are accepted).
pub fn dpfltr_component(name: &str) -> Option<ULONG> {
    let n = match name.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("DPFLTR_") => &name[7..],
        _ => name,
    };
    let n = match n
        .len()
        .checked_sub(3)
        .and_then(|i| n.get(i..).map(|t| (i, t)))
    {
        Some((i, t)) if t.eq_ignore_ascii_case("_ID") => &n[..i],
        _ => n,
    };
    DPFLTR_COMPONENTS
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(n))
        .map(|&(_, id)| id)
}

/// The name of component `id` (`Kd_<name>_Mask`).
pub fn dpfltr_component_name(id: ULONG) -> Option<&'static str> {
    DPFLTR_COMPONENTS
        .iter()
        .find(|(_, i)| *i == id)
        .map(|&(n, _)| n)
}

/// `KD_OPTION_SET_BLOCK_ENABLE`, the only `KD_OPTION` (`KdChangeOption`).
pub const KD_OPTION_SET_BLOCK_ENABLE: ULONG = 0;

/// `BREAKPOINT_BREAK`: `ExceptionInformation[0]` of a plain breakpoint.
pub const BREAKPOINT_BREAK: usize = 0;

const _: () = assert!(DPFLTR_COMPONENTS.len() as ULONG == DPFLTR_ENDOFTABLE_ID);
const _: () = assert!(DPFLTR_COMPONENTS[DPFLTR_DEFAULT_ID as usize].1 == DPFLTR_DEFAULT_ID);
