//! Where requests go: the real device (Windows) or a driver loaded into ntsim (Linux).
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// Access a handle is opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Access {
    /// `GENERIC_READ`: queries only.
    Read,
    /// `GENERIC_READ | GENERIC_WRITE`: everything.
    ReadWrite,
}

/// How the driver completed a `DeviceIoControl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoReply {
    /// The NTSTATUS the request completed with.
    pub status: i32,
    /// `IoStatus.Information`: bytes returned.
    pub information: usize,
    /// The output buffer (`out_len` bytes; the first `information` are the response).
    pub output: Vec<u8>,
}

/// A bug check the driver caused (ntsim), or a system-level failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BugCheckInfo {
    pub code: u32,
    pub name: String,
    pub parameters: [u64; 4],
    pub description: String,
}

impl fmt::Display for BugCheckInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bug check {:#X} {} ({:#x}, {:#x}, {:#x}, {:#x})",
            self.code,
            self.name,
            self.parameters[0],
            self.parameters[1],
            self.parameters[2],
            self.parameters[3]
        )?;
        if !self.description.is_empty() {
            write!(f, ": {}", self.description)?;
        }
        Ok(())
    }
}

/// The request never completed: the backend failed or the driver crashed the (simulated) system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// Opening the device, loading the driver, or the transport failed.
    Io(String),
    /// The driver bug-checked the machine.
    BugCheck(BugCheckInfo),
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::Io(m) => f.write_str(m),
            BackendError::BugCheck(b) => write!(f, "the driver crashed the system: {b}"),
        }
    }
}

impl std::error::Error for BackendError {}

/// An open handle to the device. Usable from many threads at once.
pub trait DeviceHandle: Send + Sync {
    /// `DeviceIoControl(code, input, out_len)`.
    fn ioctl(&self, code: u32, input: &[u8], out_len: u32) -> Result<IoReply, BackendError>;
}

/// The end-of-run report of a backend that can check the driver (ntsim's verifier).
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// No bug check, and the unload audit found nothing.
    pub clean: bool,
    /// One line per finding (or a single "clean" line).
    pub lines: Vec<String>,
    pub bugcheck: Option<BugCheckInfo>,
}

/// A way to reach the driver.
pub trait Backend {
    /// One line for humans: what is being driven.
    fn describe(&self) -> String;
    /// Open `\\.\WdmWorkItem`.
    fn open(&self, access: Access) -> Result<Arc<dyn DeviceHandle>, BackendError>;
    /// Finish: for ntsim, unload the driver and return the verifier's verdict. All handles must
    /// have been dropped.
    fn finish(self: Box<Self>) -> Option<Verdict>;
}
