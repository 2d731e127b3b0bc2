//! The ntsim backend (Linux): the driver `.sys` loaded in this process by ntsim, with the Driver
//! Verifier rules on. `finish` unloads the driver and turns the bug-check state and the unload
//! audit into the verifier's verdict.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nt_abi::{GENERIC_READ, GENERIC_WRITE, nt_success};

use crate::backend::{Access, Backend, BackendError, BugCheckInfo, DeviceHandle, IoReply, Verdict};
use crate::status::status_code;

/// Machine options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// What `IoSizeofWorkItem` returns (default: ntsim's, 0x58).
    pub size_of_work_item: Option<u32>,
    /// Device to open (default `\\.\WdmWorkItem`).
    pub device: Option<String>,
}

pub fn bugcheck_info(b: &ntsim::BugCheck) -> BugCheckInfo {
    let mut description = format!("{} at {} (in {})", b.meaning, b.address, b.context);
    if b.documented_only {
        description.push_str("; a documented rule Windows does not check at run time");
    }
    BugCheckInfo {
        code: b.code,
        name: b.name.to_string(),
        parameters: b.parameters,
        description,
    }
}

/// A fresh ntsim machine with the driver loaded and started.
pub struct NtsimBackend {
    machine: Arc<ntsim::Machine>,
    driver: ntsim::Driver,
    path: PathBuf,
    device: String,
}

impl NtsimBackend {
    /// Map `sys`, call DriverEntry. Errors: the image was refused, DriverEntry failed, or it
    /// bug-checked.
    pub fn load(sys: &Path, opts: &Options) -> Result<Self, BackendError> {
        let mut config = ntsim::Config {
            verifier: ntsim::Verifier::Standard,
            // A driver developer's test machine: every level of the IHV driver component is
            // shown (the `Debug Print Filter` key's IHVDRIVER = 0xFFFFFFFF), so the driver's
            // INFO-level messages reach the log, as on a VM set up for debugging.
            dbg_filter: vec![ntsim::DbgFilter {
                component: nt_abi::dbg::DPFLTR_IHVDRIVER_ID,
                mask: u32::MAX,
            }],
            ..ntsim::Config::default()
        };
        if let Some(size) = opts.size_of_work_item {
            config.size_of_work_item = size;
        }
        let machine = Arc::new(ntsim::Machine::new(config));
        let driver = machine
            .load_driver(sys)
            .map_err(|e| BackendError::Io(format!("ntsim refused {}: {e}", sys.display())))?;
        match driver.start() {
            Ok(st) if nt_success(st) => Ok(NtsimBackend {
                machine,
                driver,
                path: sys.to_path_buf(),
                device: opts
                    .device
                    .clone()
                    .unwrap_or_else(|| ioctl::USER_PATH.to_string()),
            }),
            Ok(st) => Err(BackendError::Io(format!(
                "DriverEntry of {} failed with {}",
                sys.display(),
                status_code(st)
            ))),
            Err(b) => Err(BackendError::BugCheck(bugcheck_info(&b))),
        }
    }

    /// The machine (for tests that look deeper).
    pub fn machine(&self) -> &ntsim::Machine {
        &self.machine
    }

    /// The machine, shared: for tests that keep using it while `unload` runs on another thread.
    pub fn shared_machine(&self) -> Arc<ntsim::Machine> {
        self.machine.clone()
    }

    /// Open a handle with an explicit access mask (e.g. `FILE_READ_DATA` only).
    pub fn open_mask(&self, access_mask: u32) -> Result<Arc<dyn DeviceHandle>, BackendError> {
        match self.machine.open(&self.device, access_mask) {
            Ok(h) => Ok(Arc::new(NtsimHandle(h))),
            Err(ntsim::OpenError::BugCheck(b)) => Err(BackendError::BugCheck(bugcheck_info(&b))),
            Err(ntsim::OpenError::Status(s)) => Err(BackendError::Io(format!(
                "opening {} failed with {}",
                self.device,
                status_code(s)
            ))),
        }
    }

    /// Unload and audit; the verifier's verdict.
    pub fn unload(self) -> Verdict {
        let mut lines = Vec::new();
        let unload = self.driver.unload();
        let bugcheck = self
            .machine
            .bugcheck()
            .or_else(|| unload.as_ref().err().and_then(|e| e.bugcheck().cloned()));
        let mut clean = bugcheck.is_none();
        match &unload {
            Ok(report) if report.is_clean() => {}
            Ok(report) => {
                clean = false;
                for b in &report.pool {
                    lines.push(format!(
                        "  leaked pool: {} bytes tag '{}' at {:#x}",
                        b.size,
                        b.tag_str(),
                        b.address
                    ));
                }
                for d in &report.devices {
                    lines.push(format!("  device not deleted: {d}"));
                }
                for l in &report.links {
                    lines.push(format!("  symbolic link not deleted: {l}"));
                }
                for w in &report.work_items {
                    lines.push(format!("  work item still queued or running: {w:?}"));
                }
                for a in &report.initialized_work_items {
                    lines.push(format!("  work item never uninitialized: {a:#x}"));
                }
                if !report.unload_routine {
                    lines.push("  the driver has no DriverUnload routine".into());
                }
            }
            Err(e @ ntsim::UnloadError::OpenHandles(_)) => {
                // Windows would keep the driver loaded, unload-pending, until they close.
                clean = false;
                lines.push(format!("  {e}"));
            }
            Err(ntsim::UnloadError::BugCheck(_)) => {}
        }
        let name = self
            .path
            .file_name()
            .map_or_else(|| "driver".into(), |n| n.to_string_lossy().into_owned());
        let head = match (&bugcheck, clean) {
            (Some(b), _) => format!("ntsim verifier: {name} BUG-CHECKED the machine:\n{b}"),
            (None, true) => format!(
                "ntsim verifier: clean — {name} unloaded with no bug check and nothing left behind (pool, devices, links, work items)"
            ),
            (None, false) if unload.is_err() => {
                format!("ntsim verifier: {name} could not be unloaded:")
            }
            (None, false) => format!("ntsim verifier: {name} left resources behind at unload:"),
        };
        lines.insert(0, head);
        Verdict {
            clean,
            lines,
            bugcheck: bugcheck.as_ref().map(bugcheck_info),
        }
    }
}

impl Backend for NtsimBackend {
    fn describe(&self) -> String {
        format!("ntsim ({}, verifier on)", self.path.display())
    }

    fn open(&self, access: Access) -> Result<Arc<dyn DeviceHandle>, BackendError> {
        self.open_mask(match access {
            Access::Read => GENERIC_READ,
            Access::ReadWrite => GENERIC_READ | GENERIC_WRITE,
        })
    }

    fn finish(self: Box<Self>) -> Option<Verdict> {
        Some(self.unload())
    }
}

struct NtsimHandle(ntsim::Handle);

impl DeviceHandle for NtsimHandle {
    fn ioctl(&self, code: u32, input: &[u8], out_len: u32) -> Result<IoReply, BackendError> {
        match self.0.device_io_control(code, input, out_len as usize) {
            Ok(r) => Ok(IoReply {
                status: r.status,
                information: r.information,
                output: r.output,
            }),
            Err(b) => Err(BackendError::BugCheck(bugcheck_info(&b))),
        }
    }
}
