//! Rtl strings, memory, bitmaps, version, the CRT exports, MmGetSystemRoutineAddress and the
//! data exports, end to end through the C fixture `fixtures/c/nametable.c` (a name-table
//! driver), under `--verifier standard`: every output the driver computed with the real
//! exports is asserted, and each validation has its negative case.
//!
//! Missing clang/lld/llvm/mingw-w64 FAILS these tests naming the package, unless
//! `WDM_ALLOW_SKIP=1` (`cargo xtask test` installs them first).

use std::path::PathBuf;

use nt_abi::*;
use ntsim::{BugCheck, Config, IoResult, LoadError, Machine, Verifier};

mod c_fixtures;
mod cli_support;
use c_fixtures::{Rig, call, fixture_ioctl, words};

fn fixture() -> Option<PathBuf> {
    c_fixtures::fixture("nametable")
}

impl Rig {
    fn with(cfg: Config) -> Option<Rig> {
        Rig::start("nametable", r"\\.\NameTable", cfg).map(Rig::holding_handle)
    }
    fn new() -> Option<Rig> {
        Rig::with(Config {
            verifier: Verifier::Standard,
            ..Config::default()
        })
    }
    fn call(&self, n: u32, input: &[u8], out: usize) -> IoResult {
        call(self.h(), fixture_ioctl(n), input, out)
    }
    fn words(&self, n: u32) -> Vec<u64> {
        self.call_words(fixture_ioctl(n), &[], 1024)
    }
    fn bugcheck(&self, n: u32) -> BugCheck {
        match self.h().device_io_control(fixture_ioctl(n), &[], 64) {
            Err(b) => b,
            Ok(r) => self
                .machine
                .bugcheck()
                .unwrap_or_else(|| panic!("no bug check: {r:?}")),
        }
    }
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn from_utf16(b: &[u8]) -> String {
    let u: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&u)
}

fn st(s: NTSTATUS) -> u64 {
    s as u32 as u64
}

#[test]
fn the_name_table_adds_finds_formats_and_removes_names() {
    let Some(rig) = Rig::new() else { return };
    let add = |name: &str| rig.call(0, &utf16(name), 4);
    let r = add("Alpha");
    assert_eq!(
        (r.status, r.output.clone()),
        (STATUS_SUCCESS, 0u32.to_le_bytes().to_vec())
    );
    assert_eq!(add("beta").output, 1u32.to_le_bytes().to_vec());
    // Case-insensitive duplicate (RtlEqualUnicodeString), bad input lengths.
    assert_eq!(add("ALPHA").status, STATUS_OBJECT_NAME_COLLISION);
    assert_eq!(rig.call(0, b"odd", 4).status, STATUS_INVALID_PARAMETER);
    assert_eq!(rig.call(0, &[], 4).status, STATUS_INVALID_PARAMETER);
    assert_eq!(add(&"x".repeat(65)).status, STATUS_INVALID_PARAMETER);
    // Lookup: exact (case-insensitive) or prefix; the reply is _snwprintf's "%wZ@%u" of the
    // upcased copy (RtlUpcaseUnicodeString with allocation).
    let look = |q: &str| rig.call(1, &utf16(q), 256);
    let r = look("alp");
    assert_eq!(
        (r.status, from_utf16(&r.output)),
        (STATUS_SUCCESS, "ALPHA@0".into())
    );
    assert_eq!(from_utf16(&look("BETA").output), "BETA@1");
    assert_eq!(look("gamma").status, STATUS_OBJECT_NAME_NOT_FOUND);
    assert_eq!(
        rig.call(1, &utf16("alpha"), 4).status,
        STATUS_BUFFER_TOO_SMALL
    );
    // ntstrsafe's RtlStringCbPrintfExW (inline in the driver, over _vsnwprintf).
    let r = rig.call(16, &[], 128);
    assert_eq!(
        (r.status, from_utf16(&r.output)),
        (STATUS_SUCCESS, "2 name(s), first ALPHA".into())
    );
    assert_eq!(
        rig.call(16, &[], 10).status,
        STATUS_BUFFER_OVERFLOW,
        "truncated"
    );
    // Remove frees the copy (RtlFreeUnicodeString) and clears the bit (RtlClearBits).
    assert_eq!(rig.call(2, &utf16("alpha"), 0).status, STATUS_SUCCESS);
    assert_eq!(
        rig.call(2, &utf16("alpha"), 0).status,
        STATUS_OBJECT_NAME_NOT_FOUND
    );
    assert_eq!(rig.call(14, &[], 4).output, 1u32.to_le_bytes().to_vec());
    // Fill the table: slot 0 is reused (RtlFindClearBitsAndSet), then it is full.
    assert_eq!(add("n0").output, 0u32.to_le_bytes().to_vec());
    for i in 1..7 {
        assert_eq!(add(&format!("n{i}")).status, STATUS_SUCCESS, "n{i}");
    }
    assert_eq!(add("overflow").status, STATUS_INSUFFICIENT_RESOURCES);
    assert_eq!(rig.call(14, &[], 4).output, 8u32.to_le_bytes().to_vec());
    // Unload frees every name: no pool left behind.
    rig.finish();
}

fn parse(rig: &Rig, base: u32, text: &str) -> (NTSTATUS, u32, String) {
    let mut input = base.to_le_bytes().to_vec();
    input.extend(utf16(text));
    let r = rig.call(3, &input, 64);
    assert_eq!(r.status, STATUS_SUCCESS);
    let o = &r.output;
    (
        u32::from_le_bytes(o[0..4].try_into().unwrap()) as NTSTATUS,
        u32::from_le_bytes(o[4..8].try_into().unwrap()),
        from_utf16(&o[8..]),
    )
}

#[test]
fn unicode_string_to_integer_and_back() {
    let Some(rig) = Rig::new() else { return };
    assert_eq!(parse(&rig, 0, "0x1F"), (STATUS_SUCCESS, 31, "1F".into()));
    assert_eq!(parse(&rig, 0, "0b101"), (STATUS_SUCCESS, 5, "5".into()));
    assert_eq!(parse(&rig, 0, "0o17"), (STATUS_SUCCESS, 15, "F".into()));
    assert_eq!(
        parse(&rig, 10, "  -5"),
        (STATUS_SUCCESS, 0xFFFF_FFFB, "FFFFFFFB".into())
    );
    assert_eq!(parse(&rig, 16, "ff zz"), (STATUS_SUCCESS, 255, "FF".into()));
    assert_eq!(parse(&rig, 8, "9"), (STATUS_SUCCESS, 0, "0".into()));
    // An invalid base is refused and *Value is left alone.
    assert_eq!(
        parse(&rig, 3, "1"),
        (STATUS_INVALID_PARAMETER, 0xDEAD_BEEF, String::new())
    );
    rig.finish();
}

#[test]
fn ansi_and_unicode_conversions_round_trip() {
    let Some(rig) = Rig::new() else { return };
    for text in [&b"Hello, ntsim"[..], b"caf\xE9"] {
        let r = rig.call(4, text, 256);
        assert_eq!(r.status, STATUS_SUCCESS);
        let w = words(&r.output[..24]);
        assert_eq!(
            w,
            vec![0, 0, 0],
            "both conversions succeed and compare equal"
        );
        let expect: String = text.iter().map(|&b| b as char).collect();
        assert_eq!(from_utf16(&r.output[24..]), expect, "ISO-8859-1 mapping");
    }
    rig.finish();
}

#[test]
fn version_is_windows_10_19045_everywhere() {
    let Some(rig) = Rig::new() else { return };
    let w = rig.words(5);
    let build = rtl::NTSIM_BUILD_NUMBER as u64;
    assert_eq!(
        &w[0..5],
        &[0, 10, 0, build, 2],
        "RtlGetVersion (OSVERSIONINFOW)"
    );
    assert_eq!(
        &w[5..8],
        &[0, 1, 0x100],
        "EX: workstation, single-user TS suite"
    );
    assert_eq!(
        w[8],
        st(STATUS_INVALID_PARAMETER),
        "a bad dwOSVersionInfoSize"
    );
    assert_eq!(&w[9..13], &[0, 10, 0, build], "PsGetVersion: free build");
    assert_eq!(&w[13..16], &[10, 0, build], "KUSER_SHARED_DATA agrees");
    assert_eq!(w[16], 0xF000_0000 | build, "NtBuildNumber data export");
    assert_eq!(w[17], 0, ">= 10.0");
    assert_eq!(w[18], st(STATUS_REVISION_MISMATCH), ">= 11.0 fails");
    assert_eq!(w[19], 0, "10.0 >= 6.5: major decides");
    assert_eq!(w[20], 0, "build == 19045");
    assert_eq!(w[21], st(STATUS_INVALID_PARAMETER), "TypeMask 0");
    rig.finish();
}

#[test]
fn mm_get_system_routine_address_answers_from_the_export_table() {
    let Some(rig) = Rig::new() else { return };
    let w = rig.words(6);
    assert_eq!(w[0], 1, "RtlGetVersion resolved");
    assert_eq!(
        (w[1], w[2]),
        (0, rtl::NTSIM_BUILD_NUMBER as u64),
        "and callable"
    );
    assert_eq!(w[3], 0, "a name ntsim does not export: NULL");
    assert_eq!(w[4], 0, "names are case-sensitive");
    assert_eq!(
        w[5], 1,
        "a data export resolves to the variable the IAT slot holds"
    );
    assert_eq!(
        &w[6..9],
        &[1, 0, 1],
        "MmIsAddressValid: system buffer, NULL, KUSER"
    );
    rig.finish();
}

#[test]
fn data_exports_are_bound_as_variables() {
    for debugger in [false, true] {
        let Some(rig) = Rig::with(Config {
            verifier: Verifier::Standard,
            debugger,
            ..Config::default()
        }) else {
            return;
        };
        let w = rig.words(7);
        assert_eq!(w[0], 1, "seven distinct non-NULL object types");
        assert_eq!(w[1], 10, "ExEventObjectType's Name is \"Event\"");
        assert_eq!(
            (w[2], w[3]),
            (debugger as u64, !debugger as u64),
            "KdDebugger*"
        );
        assert_eq!(w[4], rtl::MM_SYSTEM_RANGE_START);
        assert_eq!(w[5], rtl::MM_HIGHEST_USER_ADDRESS);
        assert_eq!(w[6], MM_USER_PROBE_ADDRESS);
        assert_eq!(w[7], 0, "InitSafeBootMode: a normal boot");
        let cpus = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 64);
        assert_eq!(w[8], cpus as u64, "KeNumberProcessors");
        rig.finish();
    }
}

#[test]
fn crt_routines_follow_the_c_runtime() {
    let Some(rig) = Rig::new() else { return };
    let r = rig.call(8, &[], 2048);
    assert_eq!(r.status, STATUS_SUCCESS);
    let n = 32;
    let w = words(&r.output[..n * 8]);
    let neg = |v: i64| v as u64;
    let expect = [
        15,
        4,
        4,
        neg(-1),
        4,
        3,
        14,
        5,
        1,
        1,
        0,
        0,
        0, // _stricmp("_", "A") compares lower case: '_' < 'a'
        0,
        0,
        0,
        b'Q' as u64,
        0xC9,
        0xC9,
        b'q' as u64,
        neg(-42),
        0x1F,
        b'z' as u64,
        0x5858_5800_0000_6261, // strncpy pads with NULs
        0x5858_5858_5863_6261, // no terminator when the source is longer
        neg(-1),               // _snprintf truncated
        0x5858_5858_7265_766F, // "over", no terminator
        3,                     // exactly full: count, no terminator
        0x5858_5858_5833_3231,
        neg(-1), // _snwprintf truncated
        0,
        2,
    ];
    assert_eq!(w, expect);
    let text = &r.output[n * 8..];
    let mut parts = text.splitn(4, |&b| b == 0);
    assert_eq!(
        parts.next().unwrap(),
        b"[  -42|ab  |0000BEEF|1122334455667788|0000000000001234|z|str|pr]"
    );
    assert_eq!(parts.next().unwrap(), b"Uni Ansi wide cap");
    assert_eq!(parts.next().unwrap(), b"v:7/ok");
    let wide = parts.next().unwrap();
    let wide = from_utf16(wide);
    assert_eq!(
        wide, "w|n|Uni|5\0vw=-1\0",
        "swprintf swaps %s/%S; _vsnwprintf"
    );
    rig.finish();
}

#[test]
fn bitmaps_and_rtl_memory() {
    let Some(rig) = Rig::new() else { return };
    let w = rig.words(9);
    let none = 0xFFFF_FFFF;
    assert_eq!(
        w,
        vec![
            0,  // RtlClearAllBits clears the whole last ULONG
            5,  // RtlSetBits(3, 5)
            8,  // first 4 clear bits after the set run
            50, // RtlFindClearBitsAndSet from the hint
            1,
            1, // RtlAreBitsSet / RtlAreBitsClear
            0, // RtlTestBit after RtlClearBits
            50,
            90,
            none,
            0,  // the search wraps from the hint to 0
            50, // RtlFindSetBitsAndClear
            100,
            0xFFFF_FFFF,
            9, // RtlCompareMemory: bytes before the first difference
            0x0000_0000_5A5A_5A5A,
            12,
            8, // RtlCompareMemoryUlong (Length rounded down to ULONGs)
            1, // RtlRandomEx in range, advancing the seed
        ]
    );
    rig.finish();
}

#[test]
fn string_routines_keep_their_documented_limits() {
    let Some(rig) = Rig::new() else { return };
    let w = rig.words(10);
    let e = [
        st(nt_abi::STATUS_NAME_TOO_LONG),
        0,
        0,
        0xFFFE_FFFC,
        0,
        st(STATUS_BUFFER_TOO_SMALL),
        4,
        0,
        8,
        8,
        1,
        0,
        0,
        1,
        0,
        st(STATUS_BUFFER_TOO_SMALL),
        12,
        1,
        1,
        1,
        0,
        0,
        0xC9,
        b'x' as u64,
        st(STATUS_INVALID_PARAMETER),
        77,
        st(STATUS_BUFFER_OVERFLOW),
        0,
        6,
        st(STATUS_INVALID_PARAMETER),
        st(STATUS_BUFFER_OVERFLOW),
        0,
        1,
        st(STATUS_BUFFER_OVERFLOW),
        3,
        1,
        st(STATUS_BUFFER_OVERFLOW),
        1,
        1,
        0x0010_000E,
        0,
    ];
    for (i, (got, want)) in w.iter().zip(e.iter()).enumerate() {
        assert_eq!(got, want, "result #{i}");
    }
    assert_eq!(w.len(), e.len());
    rig.finish();
}

#[test]
fn a_string_the_driver_never_frees_is_a_pool_leak_at_unload() {
    let Some(mut rig) = Rig::new() else { return };
    assert_eq!(rig.call(11, &[], 0).status, STATUS_SUCCESS);
    drop(rig.handle.take());
    let err = rig.driver.unload().expect_err("the leak is a bug check");
    let b = err.bugcheck().expect("a bug check").clone();
    assert_eq!(b.code, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, "{b}");
    assert_eq!(b.parameters[0], 0x62, "pool leaked at unload");
    assert!(
        b.documented_only,
        "Windows' verifier does not track Rtl's own allocations"
    );
    let leaks = rig.machine.last_unload_audit().expect("audit");
    assert_eq!(leaks.pool.len(), 1, "{leaks:?}");
    assert_eq!(
        leaks.pool[0].tag,
        rtl::RTL_UNICODE_STRING_TAG,
        "Rtl's string tag"
    );
    assert_eq!(leaks.pool[0].size, 24, "\"never freed\" and its NUL");
    assert_eq!(
        leaks.pool[0].flags & POOL_FLAG_PAGED,
        POOL_FLAG_PAGED,
        "paged pool"
    );
}

#[test]
fn freeing_a_buffer_rtl_did_not_allocate_is_a_wrong_tag_free() {
    let Some(rig) = Rig::new() else { return };
    let b = rig.bugcheck(12);
    assert_eq!(b.code, bugcheck::BAD_POOL_CALLER, "{b}");
    assert_eq!(b.parameters[0], 0x0A);
    assert_eq!(
        b.parameters[3],
        rtl::RTL_UNICODE_STRING_TAG as u64,
        "the tag passed"
    );
}

#[test]
fn rtl_string_allocation_at_dispatch_level_is_paged_pool_above_apc() {
    let Some(rig) = Rig::new() else { return };
    let b = rig.bugcheck(13);
    assert_eq!(b.code, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, "{b}");
    assert_eq!(b.parameters[0], 0x01);
    assert_eq!(b.parameters[1], DISPATCH_LEVEL as u64);
    assert_eq!(b.parameters[3], 24, "\"at dispatch\" and its NUL");
    assert!(b.documented_only, "Rtl allocates on the driver's behalf");
}

/// Replace one import name in the image with another of at most the same length.
fn with_import_renamed(from: &str, to: &str) -> Option<PathBuf> {
    let sys = fixture()?;
    let mut bytes = std::fs::read(&sys).unwrap();
    let pat = format!("{from}\0");
    let at = bytes
        .windows(pat.len())
        .position(|w| w == pat.as_bytes())
        .expect("import name present");
    let mut repl = to.as_bytes().to_vec();
    repl.resize(from.len(), 0);
    bytes[at..at + from.len()].copy_from_slice(&repl);
    let out = cli_support::tmp(&format!("nametable-{to}.sys"));
    std::fs::write(&out, bytes).unwrap();
    Some(out)
}

#[test]
fn missing_data_imports_are_named_as_data_not_functions() {
    let Some(p) = with_import_renamed("KdDebuggerEnabled", "SeExports") else {
        return;
    };
    let m = Machine::new(Config::default());
    let e = m.load_driver(&p).err().expect("refused");
    assert_eq!(
        e,
        LoadError::MissingImports(vec!["ntoskrnl.exe!SeExports".into()])
    );
    assert_eq!(
        e.to_string(),
        "the image imports 1 data export(s) (variables) ntsim does not emulate: ntoskrnl.exe!SeExports"
    );
    let Some(p) = with_import_renamed("RtlRandomEx", "RtlRandom") else {
        return;
    };
    let e = m.load_driver(&p).err().expect("refused");
    assert!(
        e.to_string()
            .contains("1 function(s) ntsim does not emulate: ntoskrnl.exe!RtlRandom"),
        "{e}"
    );
}

#[test]
fn the_cli_runs_the_name_table_clean() {
    let Some(sys) = fixture() else { return };
    let add = format!(r"\\.\NameTable:0x222000:{}:4", hex(&utf16("Gamma")));
    let look = format!(r"\\.\NameTable:0x222004:{}:64", hex(&utf16("gam")));
    let run = cli_support::run_json(&sys, &["--ioctl", &add, "--ioctl", &look]);
    let j = run.json();
    assert_eq!(j["verdict"], "clean", "{j}");
    assert_eq!(j["ioctls"][0]["output_hex"], "00000000");
    assert_eq!(j["ioctls"][1]["output_hex"], hex(&utf16("GAMMA@0")));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn the_rest_of_the_crt_and_the_ansi_string_routines() {
    let Some(rig) = Rig::new() else { return };
    let w = rig.words(15);
    let e: Vec<u64> = vec![
        0x3734_3332_3130_3130, // memmove with overlap
        3,
        2,
        1,
        0,
        0x0000_0000_0062_0061, // wcsncpy pads
        0,
        0,
        1,
        3,
        1,
        0xFFFF_FFFF_8000_0000, // atol: a 32-bit long
        511,
        b'q' as u64,
        0xFFFF_FFFF,
        4,
        0x5858_5858_3730_3030, // _vsnprintf exactly full: no terminator
        3,
        0x5858_5858_0063_7C6E,
        0x0006_0005,
        1,
        0,
        0,
        1,
        0,
    ];
    assert_eq!(w, e);
    rig.finish();
}

#[test]
fn the_export_table_tells_data_from_functions() {
    use ntsim::pe::Binding;
    for name in nt_abi::imports::data::NAMES {
        assert!(ntsim::exports::is_data(name), "{name}");
        assert!(
            matches!(ntsim::exports::binding(name, false), Some(Binding::Data(a)) if a != 0),
            "{name}"
        );
    }
    for name in [
        "memcpy",
        "RtlGetVersion",
        "sprintf",
        "DbgPrint",
        "IoCreateDevice",
    ] {
        assert!(!ntsim::exports::is_data(name), "{name}");
        assert!(
            matches!(ntsim::exports::binding(name, false), Some(Binding::Code(_))),
            "{name}"
        );
    }
    // KdDebuggerEnabled / KdDebuggerNotPresent are per machine; the rest are shared.
    for (name, differs) in [
        ("KdDebuggerEnabled", true),
        ("KdDebuggerNotPresent", true),
        ("NtBuildNumber", false),
    ] {
        let a = ntsim::exports::binding(name, false);
        let b = ntsim::exports::binding(name, true);
        assert_eq!(a != b, differs, "{name}");
    }
    assert_eq!(ntsim::exports::binding("SeExports", false), None);
    assert!(
        nt_abi::imports::data::is_data("SeExports"),
        "known, not emulated"
    );
}
