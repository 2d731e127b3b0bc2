//! The kernel debugger (attached or not) and debug-print filtering, end to end through the C
//! fixture `fixtures/c/fx_dbgdriver.h`, built twice: `dbgchecked` (DBG=1: ASSERT, KdPrint,
//! KdBreakPoint, NT_ASSERT live) and `dbgfree` (DBG=0, the same source as a free build).
//!
//! Missing clang/lld/llvm/mingw-w64 FAILS these tests naming the package, unless
//! `WDM_ALLOW_SKIP=1` (`cargo xtask test` installs them first).

use nt_abi::dbg::*;
use nt_abi::*;
use ntsim::{BugCheck, Config, DbgFilter, Driver, Handle, Machine};

mod c_fixtures;
use c_fixtures::fixture;

struct Loaded {
    machine: Machine,
    _driver: Driver,
    handle: Handle,
}

fn load(name: &'static str, f: impl FnOnce(&mut Config)) -> Option<Loaded> {
    let sys = fixture(name)?;
    let mut cfg = Config {
        unload_grace: std::time::Duration::from_millis(200),
        ..Config::default()
    };
    f(&mut cfg);
    let machine = Machine::new(cfg);
    let driver = machine.load_driver(&sys).expect("the fixture loads");
    assert_eq!(driver.start().expect("DriverEntry"), STATUS_SUCCESS);
    let handle = machine
        .open(r"\\.\NtsimDbg", GENERIC_READ | GENERIC_WRITE)
        .expect("open the fixture's device");
    Some(Loaded {
        machine,
        _driver: driver,
        handle,
    })
}

fn code(f: u32) -> u32 {
    ctl_code(
        FILE_DEVICE_UNKNOWN,
        0x800 + f,
        METHOD_BUFFERED,
        FILE_ANY_ACCESS,
    )
}

impl Loaded {
    fn call(&self, f: u32) -> Vec<u64> {
        let r = self
            .handle
            .device_io_control(code(f), &[], 256)
            .unwrap_or_else(|b| panic!("IOCTL {f} bug-checked: {b}"));
        assert_eq!(r.status, STATUS_SUCCESS, "IOCTL {f}");
        r.output
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
    fn bugcheck(&self, f: u32) -> BugCheck {
        match self.handle.device_io_control(code(f), &[], 256) {
            Err(b) => b,
            Ok(r) => panic!("IOCTL {f} returned {r:?} without a bug check"),
        }
    }
    fn lines(&self) -> Vec<String> {
        self.machine.dbgprint_lines()
    }
}

#[test]
fn both_builds_load() {
    let Some(c) = load("dbgchecked", |_| {}) else {
        return;
    };
    let Some(f) = load("dbgfree", |_| {}) else {
        return;
    };
    assert_eq!(c.lines(), ["dbgdrv: DriverEntry (checked build)"]);
    assert_eq!(f.lines(), ["dbgdrv: DriverEntry (free build)"]);
}
