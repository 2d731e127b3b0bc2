//! The Windows backend: the real device `\\.\WdmWorkItem` (CreateFileW + NtDeviceIoControlFile,
//! so the driver's exact NTSTATUS comes back, not a Win32 error code), and the service control
//! manager (install / start / stop / uninstall a demand-start kernel-driver service), the way
//! Microsoft's C sample test apps do it.
use std::ffi::OsStr;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use windows_sys::Wdk::System::IO::NtDeviceIoControlFile;
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_SERVICE_ALREADY_RUNNING, ERROR_SERVICE_DOES_NOT_EXIST, ERROR_SERVICE_EXISTS,
    ERROR_SERVICE_NOT_ACTIVE, GENERIC_READ, GENERIC_WRITE, GetLastError, HANDLE,
    INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;
use windows_sys::Win32::System::Services::{
    CloseServiceHandle, ControlService, CreateServiceW, DeleteService, OpenSCManagerW,
    OpenServiceW, SC_HANDLE, SC_MANAGER_ALL_ACCESS, SERVICE_ALL_ACCESS, SERVICE_CONTROL_STOP,
    SERVICE_DEMAND_START, SERVICE_ERROR_NORMAL, SERVICE_KERNEL_DRIVER, SERVICE_STATUS,
    StartServiceW,
};

use crate::backend::{Access, Backend, BackendError, DeviceHandle, IoReply, Verdict};

fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain(std::iter::once(0)).collect()
}

fn last_error(what: &str) -> String {
    // SAFETY: GetLastError only reads the calling thread's last-error value.
    describe_error(what, unsafe { GetLastError() })
}

fn describe_error(what: &str, code: u32) -> String {
    let hint = match code {
        2 => " (not found: is the driver installed and started?)",
        5 => " (access denied: run as Administrator)",
        577 => " (the driver's signature was rejected: enable test signing)",
        // ERROR_SERVICE_REQUEST_TIMEOUT. For a kernel driver, the SCM gives this when loading the
        // image or its DriverEntry failed without a more specific status.
        1053 => {
            " (the driver did not load: DriverEntry failed, or the image or one of its imports \
             could not be loaded; check the System event log, or load the same .sys in ntsim \
             on Linux, `wictl --ntsim wdm_workitem.sys info`, to see where it stops)"
        }
        1056 => " (already running)",
        1060 => " (no such service: run `wictl install` first)",
        1062 => " (the service is not running)",
        1072 => " (the service is marked for deletion: reboot or close its handles)",
        1073 => " (the service already exists)",
        _ => "",
    };
    format!("{what} failed: Win32 error {code}{hint}")
}

/// The installed driver's device (`\\.\WdmWorkItem` unless told otherwise).
#[derive(Debug)]
pub struct DeviceBackend {
    pub path: String,
}

impl Default for DeviceBackend {
    fn default() -> Self {
        DeviceBackend {
            path: ioctl::USER_PATH.to_string(),
        }
    }
}

impl Backend for DeviceBackend {
    fn describe(&self) -> String {
        format!("device {}", self.path)
    }

    fn open(&self, access: Access) -> Result<Arc<dyn DeviceHandle>, BackendError> {
        let path = wide(&self.path);
        let desired = match access {
            Access::Read => GENERIC_READ,
            Access::ReadWrite => GENERIC_READ | GENERIC_WRITE,
        };
        // SAFETY: `path` is NUL-terminated UTF-16 that outlives the call; null security
        // attributes and template handle are allowed.
        let handle = unsafe {
            CreateFileW(
                path.as_ptr(),
                desired,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                std::ptr::null(),
                OPEN_EXISTING,
                FILE_ATTRIBUTE_NORMAL,
                std::ptr::null_mut(),
            )
        };
        if handle == INVALID_HANDLE_VALUE {
            return Err(BackendError::Io(last_error(&format!(
                "CreateFileW({})",
                self.path
            ))));
        }
        Ok(Arc::new(WinHandle(handle)))
    }

    fn finish(self: Box<Self>) -> Option<Verdict> {
        None
    }
}

/// A synchronous handle to the device. (A synchronous file object serializes its requests;
/// `stress` opens one handle per thread.)
struct WinHandle(HANDLE);

// SAFETY: a kernel handle is a process-wide value; the I/O manager synchronizes requests on it.
unsafe impl Send for WinHandle {}
// SAFETY: as above; `ioctl` takes `&self` and shares no Rust state.
unsafe impl Sync for WinHandle {}

impl Drop for WinHandle {
    fn drop(&mut self) {
        // SAFETY: we own the handle and close it once.
        unsafe { CloseHandle(self.0) };
    }
}

impl DeviceHandle for WinHandle {
    fn ioctl(&self, code: u32, input: &[u8], out_len: u32) -> Result<IoReply, BackendError> {
        let mut output = vec![0u8; out_len as usize];
        // SAFETY: IO_STATUS_BLOCK is plain data; all-zero is a valid value.
        let mut iosb: IO_STATUS_BLOCK = unsafe { std::mem::zeroed() };
        let in_ptr = if input.is_empty() {
            std::ptr::null()
        } else {
            input.as_ptr().cast()
        };
        let out_ptr = if output.is_empty() {
            std::ptr::null_mut()
        } else {
            output.as_mut_ptr().cast()
        };
        // SAFETY: the handle is open and synchronous (no FILE_FLAG_OVERLAPPED), so the call
        // returns only when the request completed and the buffers are no longer used; the
        // buffers are valid for the lengths passed; no event or APC.
        let status = unsafe {
            NtDeviceIoControlFile(
                self.0,
                std::ptr::null_mut(),
                None,
                std::ptr::null(),
                &mut iosb,
                code,
                in_ptr,
                input.len() as u32,
                out_ptr,
                out_len,
            )
        };
        // The I/O status block is written only for requests the driver completed successfully
        // (or with a warning); for errors, no bytes were returned.
        let information = if nt_abi::nt_success(status) {
            iosb.Information
        } else {
            0
        };
        Ok(IoReply {
            status,
            information,
            output,
        })
    }
}

/// An open SCM or service handle.
struct Sc(SC_HANDLE);

impl Drop for Sc {
    fn drop(&mut self) {
        // SAFETY: we own the handle and close it once.
        unsafe { CloseServiceHandle(self.0) };
    }
}

fn scm() -> Result<Sc, String> {
    // SAFETY: null machine and database names select the local active database.
    let h = unsafe { OpenSCManagerW(std::ptr::null(), std::ptr::null(), SC_MANAGER_ALL_ACCESS) };
    if h.is_null() {
        Err(last_error("OpenSCManagerW"))
    } else {
        Ok(Sc(h))
    }
}

/// Open service `name`; on failure, the Win32 error code and a message.
fn open_service(scm: &Sc, name: &str) -> Result<Sc, (u32, String)> {
    let name_w = wide(name);
    // SAFETY: valid SCM handle and NUL-terminated name.
    let h = unsafe { OpenServiceW(scm.0, name_w.as_ptr(), SERVICE_ALL_ACCESS) };
    if h.is_null() {
        // SAFETY: reads this thread's last-error value, right after the failing call.
        let code = unsafe { GetLastError() };
        Err((code, describe_error(&format!("OpenServiceW({name})"), code)))
    } else {
        Ok(Sc(h))
    }
}

fn service(scm: &Sc, name: &str) -> Result<Sc, String> {
    open_service(scm, name).map_err(|(_, m)| m)
}

/// What an SCM operation did.
pub type ScmResult = Result<String, String>;

/// Create the demand-start kernel-driver service `name` for the driver at `sys`.
pub fn install(name: &str, sys: &Path) -> ScmResult {
    let sys = std::fs::canonicalize(sys).map_err(|e| {
        format!(
            "driver file {}: {e} (pass the .sys with --sys PATH)",
            sys.display()
        )
    })?;
    // CreateServiceW wants a plain path, not the `\\?\` form canonicalize returns.
    let path = sys
        .to_string_lossy()
        .trim_start_matches(r"\\?\")
        .to_string();
    let scm = scm()?;
    let (name_w, path_w) = (wide(name), wide(&path));
    // SAFETY: valid SCM handle; NUL-terminated strings that outlive the call; the optional
    // parameters are null (no group, tag, dependencies or account: drivers run as the kernel).
    let h = unsafe {
        CreateServiceW(
            scm.0,
            name_w.as_ptr(),
            name_w.as_ptr(),
            SERVICE_ALL_ACCESS,
            SERVICE_KERNEL_DRIVER,
            SERVICE_DEMAND_START,
            SERVICE_ERROR_NORMAL,
            path_w.as_ptr(),
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if h.is_null() {
        // SAFETY: reads this thread's last-error value.
        if unsafe { GetLastError() } == ERROR_SERVICE_EXISTS {
            return Ok(format!("service {name} already exists"));
        }
        return Err(last_error("CreateServiceW"));
    }
    drop(Sc(h));
    Ok(format!(
        "installed service {name} (kernel driver, demand start) for {path}"
    ))
}

/// `StartServiceW`: loads the driver (DriverEntry runs).
pub fn start(name: &str) -> ScmResult {
    let scm = scm()?;
    let svc = service(&scm, name)?;
    // SAFETY: valid service handle; no arguments.
    if unsafe { StartServiceW(svc.0, 0, std::ptr::null()) } == 0 {
        // SAFETY: reads this thread's last-error value.
        if unsafe { GetLastError() } == ERROR_SERVICE_ALREADY_RUNNING {
            return Ok(format!("service {name} is already running"));
        }
        return Err(last_error("StartServiceW"));
    }
    Ok(format!("started service {name}"))
}

/// `ControlService(SERVICE_CONTROL_STOP)`: unloads the driver (DriverUnload runs).
pub fn stop(name: &str) -> ScmResult {
    let scm = scm()?;
    let svc = service(&scm, name)?;
    // SAFETY: SERVICE_STATUS is plain data; all-zero is valid.
    let mut status: SERVICE_STATUS = unsafe { std::mem::zeroed() };
    // SAFETY: valid service handle and out pointer.
    if unsafe { ControlService(svc.0, SERVICE_CONTROL_STOP, &mut status) } == 0 {
        // SAFETY: reads this thread's last-error value.
        if unsafe { GetLastError() } == ERROR_SERVICE_NOT_ACTIVE {
            return Ok(format!("service {name} is not running"));
        }
        return Err(last_error("ControlService(STOP)"));
    }
    Ok(format!("stopped service {name}"))
}

/// Stop (if running) and delete the service.
pub fn uninstall(name: &str) -> ScmResult {
    let scm = scm()?;
    let svc = match open_service(&scm, name) {
        Ok(s) => s,
        Err((ERROR_SERVICE_DOES_NOT_EXIST, _)) => {
            return Ok(format!("service {name} is not installed"));
        }
        Err((_, e)) => return Err(e),
    };
    // SAFETY: SERVICE_STATUS is plain data; all-zero is valid.
    let mut status: SERVICE_STATUS = unsafe { std::mem::zeroed() };
    // SAFETY: valid handle; stopping a stopped service just fails, which is fine here.
    unsafe { ControlService(svc.0, SERVICE_CONTROL_STOP, &mut status) };
    // SAFETY: valid service handle opened with DELETE (in SERVICE_ALL_ACCESS).
    if unsafe { DeleteService(svc.0) } == 0 {
        return Err(last_error("DeleteService"));
    }
    Ok(format!("deleted service {name}"))
}
