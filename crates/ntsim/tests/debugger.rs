//! The kernel debugger (attached or not) and debug-print filtering, end to end through the C
//! fixture `fixtures/c/fx_dbgdriver.h`, built twice: `dbgchecked` (DBG=1: ASSERT, KdPrint,
//! KdBreakPoint, NT_ASSERT live) and `dbgfree` (DBG=0, the same source as a free build).
//!
//! Missing clang/lld/llvm/mingw-w64 FAILS these tests naming the package, unless
//! `WDM_ALLOW_SKIP=1` (`cargo xtask test` installs them first).

use nt_abi::dbg::*;
use nt_abi::*;
use ntsim::{BugCheck, Config, DbgFilter, Machine};

mod c_fixtures;
mod cli_support;
use c_fixtures::{Rig, fixture, fixture_ioctl as code};

/// A fixture started on a Machine whose handle to the fixture's device is held.
type Loaded = Rig;

fn load(name: &'static str, f: impl FnOnce(&mut Config)) -> Option<Loaded> {
    let mut cfg = Config {
        unload_grace: std::time::Duration::from_millis(200),
        ..Config::default()
    };
    f(&mut cfg);
    Rig::start(name, r"\\.\NtsimDbg", cfg).map(Rig::holding_handle)
}

impl Rig {
    fn call(&self, f: u32) -> Vec<u64> {
        self.call_words(code(f), &[], 256)
    }
    fn bugcheck(&self, f: u32) -> BugCheck {
        match self.h().device_io_control(code(f), &[], 256) {
            Err(b) => b,
            Ok(r) => panic!("IOCTL {f} returned {r:?} without a bug check"),
        }
    }
    fn lines(&self) -> Vec<String> {
        self.machine.dbgprint_lines()
    }
}

fn filter(component: u32, mask: u32) -> DbgFilter {
    DbgFilter { component, mask }
}

fn debugger(c: &mut Config) {
    c.debugger = true;
}

/// The 1-based line of the fixture source that contains `needle` (for RtlAssert's LineNumber).
fn source_line(needle: &str) -> u32 {
    let src = std::fs::read_to_string(c_fixtures::fixture_dir().join("fx_dbgdriver.h")).unwrap();
    let n = src
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the fixture"));
    n as u32 + 1
}

const P1_BREAKPOINT: u64 = STATUS_BREAKPOINT as u32 as u64;
const P1_ASSERTION: u64 = STATUS_ASSERTION_FAILURE as u32 as u64;

#[test]
fn both_builds_print_their_entry_message_at_the_error_level() {
    let Some(c) = load("dbgchecked", |_| {}) else {
        return;
    };
    let Some(f) = load("dbgfree", |_| {}) else {
        return;
    };
    // KdPrint (checked build only) is DbgPrint: DEFAULT/INFO, filtered out by default.
    assert_eq!(c.lines(), ["dbgdrv: DriverEntry (checked build)"]);
    assert_eq!(c.machine.dbgprint_filtered(), 1);
    assert_eq!(f.lines(), ["dbgdrv: DriverEntry (free build)"]);
    assert_eq!(f.machine.dbgprint_filtered(), 0);
}

/// Windows' default masks: only DPFLTR_ERROR_LEVEL (through Kd_WIN2000_Mask = 1) passes; a
/// Level above 31 is a bit field (0x20 has no bit in common with 1, 0x21 has); DbgPrint and
/// KdPrint (DEFAULT/INFO) are filtered out.
#[test]
fn default_filter_masks_show_the_error_level_only() {
    let Some(c) = load("dbgchecked", |_| {}) else {
        return;
    };
    c.call(0);
    assert_eq!(
        c.lines()[1..],
        [
            "dbgdrv: ihv error 0",
            "dbgdrv: ihv mask 0x21",
            "dbgdrv: video error",
            "dbgdrv: KdPrintEx error",
            "dbgdrv: vDbgPrintEx args -1 2 3 4",
            "[pfx] dbgdrv: prefixed abc",
        ]
    );
    // warning, trace, info, mask 0x20, video info, DbgPrint, KdPrint, vDbgPrintEx info, and
    // DriverEntry's KdPrint.
    assert_eq!(c.machine.dbgprint_filtered(), 9);
    // The free build compiles KdPrint/KdPrintEx away.
    let Some(f) = load("dbgfree", |_| {}) else {
        return;
    };
    f.call(0);
    assert!(
        !f.lines().iter().any(|l| l.contains("KdPrint")),
        "{:?}",
        f.lines()
    );
    assert_eq!(f.lines().len(), 6, "{:?}", f.lines());
}

/// `--dbg-filter IHVDRIVER=0xF` shows levels 0..3 of that component (and bit 5 of a mask
/// level stays out); DEFAULT=0x8 shows DbgPrint / KdPrint; another component is unaffected.
#[test]
fn widened_masks_show_what_they_name() {
    let Some(c) = load("dbgchecked", |c| {
        c.dbg_filter = vec![
            filter(DPFLTR_IHVDRIVER_ID, 0xF),
            filter(DPFLTR_DEFAULT_ID, 0x8),
        ]
    }) else {
        return;
    };
    c.call(0);
    assert_eq!(
        c.lines(),
        [
            "dbgdrv: DriverEntry (checked build)",
            "dbgdrv: KdPrint in DriverEntry",
            "dbgdrv: ihv error 0",
            "dbgdrv: ihv warning 1",
            "dbgdrv: ihv trace 2",
            "dbgdrv: ihv info 3",
            "dbgdrv: ihv mask 0x21",
            "dbgdrv: video error",
            "dbgdrv: DbgPrint plain",
            "dbgdrv: KdPrint 7",
            "dbgdrv: KdPrintEx error",
            "dbgdrv: vDbgPrintEx args -1 2 3 4",
            "dbgdrv: vDbgPrintEx info",
            "[pfx] dbgdrv: prefixed abc",
        ]
    );
    // mask 0x20 (bit 5) and video info.
    assert_eq!(c.machine.dbgprint_filtered(), 2);
    // The system-wide mask cleared: even the error level of every component is filtered out.
    let Some(q) = load("dbgfree", |c| {
        c.dbg_filter = vec![filter(DPFLTR_WIN2000_COMPONENT, 0)]
    }) else {
        return;
    };
    q.call(0);
    assert!(q.lines().is_empty(), "{:?}", q.lines());
}

/// DbgQueryDebugFilterState / DbgSetDebugFilterState from the driver: FALSE, set → TRUE and the
/// INFO message passes, cleared → FALSE and it is filtered; unknown components are
/// STATUS_INVALID_PARAMETER_1.
#[test]
fn the_driver_sets_and_queries_its_filter_state() {
    let Some(f) = load("dbgfree", |_| {}) else {
        return;
    };
    let bad = STATUS_INVALID_PARAMETER_1 as u32 as u64;
    assert_eq!(f.call(1), [0, 0, 1, 0, 0, bad, bad]);
    assert_eq!(f.lines()[1..], ["dbgdrv: info after set"]);
}

#[test]
fn checked_build_without_a_debugger_bug_checks_at_assert_breakpoint_and_nt_assert() {
    let Some(c) = load("dbgchecked", |_| {}) else {
        return;
    };
    // ASSERT → RtlAssert → STATUS_BREAKPOINT nobody handles, in a dispatch routine: 0x3B.
    let b = c.bugcheck(2);
    assert_eq!((b.code, b.parameters[0]), (0x3B, P1_BREAKPOINT), "{b}");
    assert!(b.address.starts_with("dbgchecked.sys+"), "{b}");
    let line = source_line("ASSERT(fx_zero == 1);");
    let log = c.lines().join("\n");
    assert!(log.contains("*** Assertion failed: fx_zero == 1"), "{log}");
    assert!(
        log.contains(&format!("fx_dbgdriver.h, line {line}")),
        "{log}"
    );
    assert!(c.machine.debugger_events().is_empty());

    let Some(c) = load("dbgchecked", |_| {}) else {
        return;
    };
    let b = c.bugcheck(3);
    assert_eq!((b.code, b.parameters[0]), (0x3B, P1_BREAKPOINT), "{b}");
    let Some(c) = load("dbgchecked", |_| {}) else {
        return;
    };
    let b = c.bugcheck(5);
    assert_eq!((b.code, b.parameters[0]), (0x3B, P1_ASSERTION), "{b}");
    let Some(c) = load("dbgchecked", |_| {}) else {
        return;
    };
    let b = c.bugcheck(4);
    assert_eq!((b.code, b.parameters[0]), (0x3B, P1_BREAKPOINT), "{b}");
    let Some(c) = load("dbgchecked", |_| {}) else {
        return;
    };
    let b = c.bugcheck(9);
    assert_eq!((b.code, b.parameters[0]), (0x3B, P1_BREAKPOINT), "{b}");
}

#[test]
fn free_build_without_a_debugger_compiles_the_checks_away() {
    let Some(f) = load("dbgfree", |_| {}) else {
        return;
    };
    for fun in [2, 3, 5] {
        assert_eq!(f.call(fun), [1], "IOCTL {fun}");
    }
    assert!(f.machine.bugcheck().is_none());
    // DbgBreakPointWithStatus is a call, not a macro: it still stops the machine.
    let b = f.bugcheck(4);
    assert_eq!((b.code, b.parameters[0]), (0x3B, P1_BREAKPOINT), "{b}");
}

#[test]
fn checked_build_with_a_debugger_prints_and_continues() {
    let Some(c) = load("dbgchecked", debugger) else {
        return;
    };
    for fun in [2, 3, 4, 5, 9] {
        assert_eq!(c.call(fun), [1], "IOCTL {fun} continues after the break");
    }
    assert!(c.machine.bugcheck().is_none());
    let ev = c.machine.debugger_events();
    let kinds: Vec<&str> = ev.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "assertion",
            "breakpoint",
            "breakpoint",
            "assertion_failure",
            "breakpoint"
        ]
    );
    let a = &ev[0];
    assert_eq!(a.expression.as_deref(), Some("fx_zero == 1"));
    assert!(
        a.file
            .as_deref()
            .is_some_and(|f| f.ends_with("fx_dbgdriver.h")),
        "{a:?}"
    );
    assert_eq!(a.line, Some(source_line("ASSERT(fx_zero == 1);")));
    assert_eq!(a.message, None);
    assert_eq!(a.code, STATUS_BREAKPOINT as u32);
    for e in &ev {
        assert!(e.address.starts_with("dbgchecked.sys+"), "{e:?}");
        assert_eq!(e.context, "IRP_MJ_DEVICE_CONTROL dispatch", "{e:?}");
    }
    assert!(ev[2].text.contains("status 0x1234"), "{:?}", ev[2]);
    assert_eq!(ev[3].code, STATUS_ASSERTION_FAILURE as u32);
    // The assertion text also went to the log, as RtlAssert prints it.
    assert!(
        c.lines()
            .iter()
            .any(|l| l == "*** Assertion failed: fx_zero == 1")
    );
}

/// Without a debugger a breakpoint is an ordinary exception the driver's `__except` may
/// handle; with one, the debugger takes it first and the handler never runs.
#[test]
fn a_debugger_takes_breakpoints_before_the_drivers_handler() {
    let Some(f) = load("dbgfree", |_| {}) else {
        return;
    };
    assert_eq!(f.call(7), [P1_BREAKPOINT]);
    assert!(f.machine.bugcheck().is_none());
    let Some(d) = load("dbgfree", debugger) else {
        return;
    };
    assert_eq!(d.call(7), [0]);
    assert_eq!(d.machine.debugger_events().len(), 1);
}

#[test]
fn kd_routines_without_and_with_a_debugger() {
    let inactive = STATUS_DEBUGGER_INACTIVE as u32 as u64;
    let Some(f) = load("dbgfree", |_| {}) else {
        return;
    };
    // NotPresent, Enable, Disable, NotPresent, Enable, ChangeOption ×3, DbgPrompt, response.
    assert_eq!(
        f.call(6),
        [
            1, inactive, inactive, 1, inactive, inactive, inactive, inactive, 0, 0
        ]
    );
    let Some(d) = load("dbgfree", debugger) else {
        return;
    };
    let invalid = STATUS_INVALID_PARAMETER as u32 as u64;
    let info_class = STATUS_INVALID_INFO_CLASS as u32 as u64;
    assert_eq!(
        d.call(6),
        [0, invalid, 0, 1, 0, info_class, invalid, 0, 0, 0]
    );
    let ev = d.machine.debugger_events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, "prompt");
    assert!(ev[0].text.starts_with("dbgdrv prompt?"), "{:?}", ev[0]);
    // KdDisableDebugger makes the debugger absent: a breakpoint is a bug check again.
    let Some(d) = load("dbgfree", debugger) else {
        return;
    };
    d.machine
        .run_in_kernel_thread(|| assert_eq!(ntsim::exports::KdDisableDebugger(), STATUS_SUCCESS))
        .unwrap();
    let b = d.bugcheck(4);
    assert_eq!((b.code, b.parameters[0]), (0x3B, P1_BREAKPOINT), "{b}");
}

/// Issue 10: any pool freed above DISPATCH_LEVEL (here raised through CR8 by the inline
/// KeRaiseIrql) is Driver Verifier's 0xC4/0x12 (p2 IRQL, p3 pool type, p4 address).
#[test]
fn pool_freed_above_dispatch_level_raised_through_cr8_is_c4_12() {
    let Some(f) = load("dbgfree", |_| {}) else {
        return;
    };
    let b = f.bugcheck(8);
    assert_eq!((b.code, b.parameters[0]), (0xC4, 0x12), "{b}");
    assert_eq!(b.parameters[1], 3, "the IRQL: {b}");
    assert!(b.address.starts_with("dbgfree.sys+"), "{b}");
}

// ---------------------------------------------------------------- the CLI

/// `ntsim ARGS…` (it must end within the runner's limit).
fn cli(args: &[&str]) -> cli_support::Run {
    cli_support::ntsim(args)
}

fn ioctl_arg(f: u32) -> String {
    format!(r"\\.\NtsimDbg:{:#x}::256", code(f))
}

fn run_json(name: &'static str, f: u32, extra: &[&str]) -> Option<(i32, serde_json::Value)> {
    let sys = fixture(name)?;
    let sys = sys.display().to_string();
    let io = ioctl_arg(f);
    let mut args = vec!["run", sys.as_str(), "--ioctl", io.as_str(), "--json"];
    args.extend(extra);
    let r = cli(&args);
    let v = serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
    Some((r.exit.expect("ntsim exits, never by a signal"), v))
}

#[test]
fn cli_checked_build_assert_without_and_with_debugger() {
    let Some((code, v)) = run_json("dbgchecked", 2, &[]) else {
        return;
    };
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["verdict"], "bugcheck");
    assert_eq!(v["bugcheck"]["code"], 0x3B);
    assert_eq!(v["bugcheck"]["parameters"][0], P1_BREAKPOINT);
    assert!(v["debugger"].is_null(), "{v}");
    let log = v["dbgprint"].to_string();
    assert!(log.contains("*** Assertion failed: fx_zero == 1"), "{log}");

    let Some((code, v)) = run_json("dbgchecked", 2, &["--debugger"]) else {
        return;
    };
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["verdict"], "clean");
    assert!(v["bugcheck"].is_null());
    let ev = v["debugger"].as_array().expect("debugger events");
    assert_eq!(ev.len(), 1, "{v}");
    assert_eq!(ev[0]["kind"], "assertion");
    assert_eq!(ev[0]["expression"], "fx_zero == 1");
    assert_eq!(ev[0]["line"], source_line("ASSERT(fx_zero == 1);"));
    assert!(ev[0]["file"].as_str().unwrap().ends_with("fx_dbgdriver.h"));
    assert!(
        ev[0]["address"]
            .as_str()
            .unwrap()
            .starts_with("dbgchecked.sys+0x")
    );
    assert_eq!(ev[0]["context"], "IRP_MJ_DEVICE_CONTROL dispatch");
    assert_eq!(ev[0]["code"], P1_BREAKPOINT);

    // The free build of the same source: nothing to report, with or without the debugger.
    for extra in [&[][..], &["--debugger"][..]] {
        let Some((code, v)) = run_json("dbgfree", 2, extra) else {
            return;
        };
        assert_eq!((code, v["verdict"].as_str()), (0, Some("clean")), "{v}");
        assert_eq!(v["ioctls"][0]["output_hex"], "0100000000000000");
    }
}

#[test]
fn cli_breakpoint_with_debugger_and_human_text() {
    let Some(sys) = fixture("dbgchecked") else {
        return;
    };
    let sys = sys.display().to_string();
    let io = ioctl_arg(3);
    let r = cli(&["run", &sys, "--ioctl", &io, "--debugger"]);
    assert_eq!(r.exit, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.lines().any(
            |l| l.starts_with("debugger: breakpoint at dbgchecked.sys+0x")
                && l.contains("(IRP_MJ_DEVICE_CONTROL dispatch)")
                && l.contains("Break instruction exception - code 80000003")
        ),
        "{}",
        r.stdout
    );
    // Without the debugger: the checked build's KdBreakPoint stops the machine.
    let r = cli(&["run", &sys, "--ioctl", &io]);
    assert_eq!(r.exit, Some(3), "{}", r.stdout);
    assert!(r.stdout.contains("0x80000003"), "{}", r.stdout);
    assert!(!r.stdout.contains("debugger:"), "{}", r.stdout);
}

#[test]
fn cli_dbg_filter_widens_and_bad_values_are_refused() {
    let Some((code, v)) = run_json("dbgfree", 0, &[]) else {
        return;
    };
    assert_eq!(code, 0);
    let lines: Vec<&str> = v["dbgprint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(!lines.contains(&"dbgdrv: ihv info 3"), "{lines:?}");
    assert!(lines.contains(&"dbgdrv: ihv error 0"), "{lines:?}");
    assert_eq!(v["dbgprint_filtered"], 7, "{v}");
    let Some((_, v)) = run_json(
        "dbgfree",
        0,
        &[
            "--dbg-filter",
            "IHVDRIVER=0xF",
            "--dbg-filter",
            "dpfltr_default_id=8",
        ],
    ) else {
        return;
    };
    let log = v["dbgprint"].to_string();
    for want in [
        "ihv info 3",
        "ihv trace 2",
        "DbgPrint plain",
        "vDbgPrintEx info",
    ] {
        assert!(log.contains(want), "{want}: {log}");
    }
    assert_eq!(v["dbgprint_filtered"], 2, "{v}");
    // A numeric component id works too (77 = IHVDRIVER).
    let Some((_, v)) = run_json("dbgfree", 0, &["--dbg-filter", "77=0x8"]) else {
        return;
    };
    assert!(v["dbgprint"].to_string().contains("ihv info 3"), "{v}");

    let Some(sys) = fixture("dbgfree") else {
        return;
    };
    let sys = sys.display().to_string();
    for bad in [
        "IHVDRIVER",
        "NOSUCH=1",
        "IHVDRIVER=-1",
        "146=1",
        "IHVDRIVER=0x100000000",
        "=1",
    ] {
        let r = cli(&["run", &sys, "--dbg-filter", bad]);
        assert_eq!(r.exit, Some(1), "{bad}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{bad}: nothing ran: {}", r.stdout);
        assert!(r.stderr.contains("--dbg-filter"), "{bad}: {}", r.stderr);
    }
}

/// KdChangeOption(KD_OPTION_SET_BLOCK_ENABLE): with KdBlockEnable set, KdDisableDebugger and
/// KdEnableDebugger are STATUS_ACCESS_DENIED; once its 0x80 bit is set it cannot change.
#[test]
fn kd_block_enable_denies_disable_and_enable() {
    let m = Machine::new(Config {
        debugger: true,
        ..Config::default()
    });
    m.run_in_kernel_thread(|| {
        use ntsim::exports::{KdChangeOption, KdDisableDebugger, KdEnableDebugger};
        let set = |v: u8| {
            let mut b = v;
            // SAFETY: a one-byte BOOLEAN input, no output, as the routine requires.
            unsafe {
                KdChangeOption(
                    KD_OPTION_SET_BLOCK_ENABLE,
                    1,
                    (&raw mut b).cast(),
                    0,
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                )
            }
        };
        assert_eq!(set(1), STATUS_SUCCESS);
        assert_eq!(KdDisableDebugger(), STATUS_ACCESS_DENIED);
        assert_eq!(KdEnableDebugger(), STATUS_ACCESS_DENIED);
        assert_eq!(set(0), STATUS_SUCCESS);
        assert_eq!(KdDisableDebugger(), STATUS_SUCCESS);
        assert_eq!(ntsim::exports::KdRefreshDebuggerNotPresent(), 1, "disabled");
        assert_eq!(KdEnableDebugger(), STATUS_SUCCESS);
        assert_eq!(ntsim::exports::KdRefreshDebuggerNotPresent(), 0);
        assert_eq!(set(0x81), STATUS_SUCCESS);
        assert_eq!(set(0), STATUS_ACCESS_DENIED, "0x80: permanently blocked");
        assert_eq!(KdDisableDebugger(), STATUS_ACCESS_DENIED);
        // A null input is refused.
        // SAFETY: a null InBuffer is checked before any access.
        let st = unsafe {
            KdChangeOption(
                KD_OPTION_SET_BLOCK_ENABLE,
                1,
                core::ptr::null_mut(),
                0,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        };
        assert_eq!(st, STATUS_INVALID_PARAMETER);
    })
    .unwrap();
}

/// vDbgPrintEx with a va_list built in Rust, and the filter state through the exports.
#[test]
fn vdbgprintex_and_filter_state_in_process() {
    let m = Machine::new(Config::default());
    let bus = dpfltr_component("IHVBUS").unwrap();
    assert_eq!(bus, 82);
    m.run_in_kernel_thread(move || {
        use ntsim::exports::{DbgQueryDebugFilterState, DbgSetDebugFilterState, vDbgPrintEx};
        let args: [u64; 2] = [42, c"x".as_ptr() as u64];
        let print = |level: u32| {
            // SAFETY: the va_list holds one slot per conversion of the format.
            unsafe {
                vDbgPrintEx(
                    bus,
                    level,
                    c"bus %d %s\n".as_ptr().cast(),
                    args.as_ptr() as PVOID,
                )
            }
        };
        assert_eq!(DbgQueryDebugFilterState(bus, DPFLTR_TRACE_LEVEL), 0);
        print(DPFLTR_TRACE_LEVEL);
        assert_eq!(
            DbgSetDebugFilterState(bus, DPFLTR_TRACE_LEVEL, 1),
            STATUS_SUCCESS
        );
        assert_eq!(DbgQueryDebugFilterState(bus, DPFLTR_TRACE_LEVEL), 1);
        print(DPFLTR_TRACE_LEVEL);
        // The system-wide mask through component 0xFFFFFFFF.
        assert_eq!(
            DbgSetDebugFilterState(DPFLTR_WIN2000_COMPONENT, 0, 0),
            STATUS_SUCCESS
        );
        assert_eq!(DbgQueryDebugFilterState(bus, DPFLTR_ERROR_LEVEL), 0);
        print(DPFLTR_ERROR_LEVEL);
    })
    .unwrap();
    assert_eq!(m.dbgprint_lines(), ["bus 42 x"]);
    assert_eq!(m.dbgprint_filtered(), 2);
}
