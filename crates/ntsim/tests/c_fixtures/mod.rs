//! Building the C fixture drivers in `fixtures/c/` (shared by the test files that load them),
//! and the scaffolding those test files share: the fixtures' IOCTL codes, output words, IOCTL
//! calls that must not bug-check, and [`Rig`] (fixture loaded and started on a fresh machine,
//! unloaded with a clean audit). Each test binary uses its own subset (`mod c_fixtures;`).
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use nt_abi::*;
use ntsim::{BugCheck, Config, DbgFilter, Driver, Handle, IoResult, Machine};

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/c")
}

/// Build one C fixture (once per test binary); None when the tools are missing and skipping
/// is allowed.
pub fn fixture(name: &'static str) -> Option<PathBuf> {
    static BUILT: OnceLock<
        std::sync::Mutex<std::collections::HashMap<&'static str, Result<PathBuf, String>>>,
    > = OnceLock::new();
    let map = BUILT.get_or_init(Default::default);
    let mut g = map.lock().unwrap_or_else(|e| e.into_inner());
    let r = g
        .entry(name)
        .or_insert_with(|| {
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join("c-fixtures")
                .join(name);
            let src = fixture_dir().join(format!("{name}.c"));
            xbuild::cdriver::build_c_driver(&xbuild::cdriver::CDriver {
                sources: &[src],
                include_dirs: &[fixture_dir()],
                out_dir: &out,
                name,
                opt_level: 1,
            })
            .map_err(|e| e.to_string())
        })
        .clone();
    match r {
        Ok(p) => Some(p),
        Err(e)
            if e.contains("missing Debian package")
                && std::env::var("WDM_ALLOW_SKIP").as_deref() == Ok("1") =>
        {
            eprintln!("SKIPPED: {e} (WDM_ALLOW_SKIP=1)");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// `CTL_CODE(FILE_DEVICE_UNKNOWN, function, method, FILE_ANY_ACCESS)`: how every C fixture
/// defines its IOCTLs.
pub fn ioctl_code(function: u32, method: u32) -> u32 {
    ctl_code(FILE_DEVICE_UNKNOWN, function, method, FILE_ANY_ACCESS)
}

/// The fixtures' common numbering: IOCTL `n` is function `0x800 + n`, METHOD_BUFFERED.
pub fn fixture_ioctl(n: u32) -> u32 {
    ioctl_code(0x800 + n, METHOD_BUFFERED)
}

/// A driver's output as little-endian u64 words (a trailing partial word is dropped).
pub fn words(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// u64 words as the little-endian input bytes a fixture reads.
pub fn le_bytes(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// IOCTL `code` on `h`, which must not bug-check; any status.
pub fn call(h: &Handle, code: u32, input: &[u8], out: usize) -> IoResult {
    h.device_io_control(code, input, out)
        .unwrap_or_else(|b| panic!("IOCTL {code:#x} bug-checked: {b}"))
}

/// IOCTL `code` on `h`, which must not bug-check and must return STATUS_SUCCESS.
pub fn call_ok(h: &Handle, code: u32, input: &[u8], out: usize) -> IoResult {
    let r = call(h, code, input, out);
    assert_eq!(r.status, STATUS_SUCCESS, "IOCTL {code:#x}: {r:?}");
    r
}

/// The fixtures report through DbgPrint (DEFAULT, INFO level): the default filter widened, as
/// a developer does, so their lines are logged.
pub fn dbg_default_info() -> Vec<DbgFilter> {
    vec![DbgFilter {
        component: nt_abi::dbg::DPFLTR_DEFAULT_ID,
        mask: 0xF,
    }]
}

/// A bug check raised on some other thread (a work item, a DPC, a system thread) within
/// `within`, if any.
pub fn bugcheck_within(machine: &Machine, within: Duration) -> Option<BugCheck> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if let Some(b) = machine.bugcheck() {
            return Some(b);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// A C fixture loaded and started (DriverEntry returned STATUS_SUCCESS) on a fresh machine,
/// with the path of the device it creates and, after [`Rig::holding_handle`], a handle to it
/// held until [`Rig::finish`].
pub struct Rig {
    pub machine: Arc<Machine>,
    pub driver: Driver,
    pub device: &'static str,
    pub handle: Option<Handle>,
}

impl Rig {
    /// Build fixture `name` and start it on a machine configured by `config`; None when the
    /// tools are missing and skipping is allowed.
    pub fn start(name: &'static str, device: &'static str, config: Config) -> Option<Rig> {
        let sys = fixture(name)?;
        let machine = Arc::new(Machine::new(config));
        let driver = machine.load_driver(&sys).expect("the fixture loads");
        assert_eq!(driver.start().expect("DriverEntry"), STATUS_SUCCESS);
        Some(Rig {
            machine,
            driver,
            device,
            handle: None,
        })
    }

    /// Open the device and hold the handle (see [`Rig::h`]) until [`Rig::finish`].
    pub fn holding_handle(mut self) -> Rig {
        self.handle = Some(self.open());
        self
    }

    /// The handle [`Rig::holding_handle`] opened.
    pub fn h(&self) -> &Handle {
        self.handle.as_ref().expect("Rig::holding_handle opened it")
    }

    /// IOCTL `code` on the held handle, which must not bug-check and must return
    /// STATUS_SUCCESS; its output as u64 words.
    pub fn call_words(&self, code: u32, input: &[u8], out: usize) -> Vec<u64> {
        words(&call_ok(self.h(), code, input, out).output)
    }

    /// A read/write handle to the fixture's device.
    pub fn open(&self) -> Handle {
        self.open_path(self.device)
    }

    /// A read/write handle to `path`.
    pub fn open_path(&self, path: &str) -> Handle {
        self.machine
            .open(path, GENERIC_READ | GENERIC_WRITE)
            .expect("open")
    }

    /// Close the held handle (if any; the close must not bug-check); no bug check so far;
    /// unload with a clean audit (no leaks); still no bug check.
    pub fn finish(mut self) {
        if let Some(h) = self.handle.take() {
            h.close().expect("close");
        }
        assert!(
            self.machine.bugcheck().is_none(),
            "{:?}",
            self.machine.bugcheck()
        );
        let r = self.driver.unload().expect("unload");
        assert!(r.is_clean(), "unload audit: {r:?}");
        assert!(self.machine.bugcheck().is_none());
    }
}
