//! IRP dispatch: CREATE/CLOSE/CLEANUP succeed, DEVICE_CONTROL speaks the `ioctl` protocol, and
//! every other major function is `STATUS_INVALID_DEVICE_REQUEST`. Every IRP is completed before
//! the dispatch routine returns (nothing pends), with `Information` ≤ `OutputBufferLength`.
use nt_abi::imports::IofCompleteRequest;
use nt_abi::status::*;
use nt_abi::*;

use crate::device::DeviceExtension;
use ioctl::Wire;

/// Complete `irp` with `status` and `information` bytes; returns `status`.
///
/// # Safety
/// `irp` is a live IRP owned by the calling dispatch routine; it must not be touched afterwards.
unsafe fn complete(irp: *mut IRP, status: NTSTATUS, information: usize) -> NTSTATUS {
    // SAFETY: the caller owns the live IRP until IofCompleteRequest; `IoStatus` is a plain
    // struct inside it.
    let io_status = unsafe { &mut (*irp).IoStatus };
    io_status.u.Status = status;
    io_status.Information = information;
    // SAFETY: the IRP is ours and fully set up; after this call it belongs to the I/O manager.
    unsafe { IofCompleteRequest(irp, IO_NO_INCREMENT) };
    status
}

/// Any major function the driver does not serve.
///
/// # Safety
/// Called by the I/O manager with our device and a live IRP.
pub unsafe extern "system" fn dispatch_invalid(
    _device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: the I/O manager passed us ownership of the live IRP.
    unsafe { complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0) }
}

/// IRP_MJ_CREATE: any open of the device succeeds (access is checked by the I/O manager
/// against the device's security descriptor, FILE_DEVICE_SECURE_OPEN covers namespace opens).
///
/// # Safety
/// As [`dispatch_invalid`].
pub unsafe extern "system" fn dispatch_create(
    _device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: the I/O manager passed us ownership of the live IRP.
    unsafe { complete(irp, STATUS_SUCCESS, 0) }
}

/// IRP_MJ_CLOSE: nothing per handle to free.
///
/// # Safety
/// As [`dispatch_invalid`].
pub unsafe extern "system" fn dispatch_close(
    _device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: the I/O manager passed us ownership of the live IRP.
    unsafe { complete(irp, STATUS_SUCCESS, 0) }
}

/// IRP_MJ_CLEANUP: no IRPs are ever queued, so there is nothing to cancel.
///
/// # Safety
/// As [`dispatch_invalid`].
pub unsafe extern "system" fn dispatch_cleanup(
    _device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: the I/O manager passed us ownership of the live IRP.
    unsafe { complete(irp, STATUS_SUCCESS, 0) }
}

/// IRP_MJ_DEVICE_CONTROL.
///
/// # Safety
/// As [`dispatch_invalid`]; `device` is our initialized device.
pub unsafe extern "system" fn dispatch_device_control(
    device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: the device is ours and its extension stays initialized until unload, which waits
    // for this request through the rundown gate below.
    let ext = unsafe { DeviceExtension::from_device(device) };
    if !ext.rundown.acquire() {
        // SAFETY: we own the live IRP.
        return unsafe { complete(irp, STATUS_DELETE_PENDING, 0) };
    }
    // SAFETY: the I/O manager set the current stack location of the live IRP.
    let stack = unsafe { io_get_current_irp_stack_location(irp) };
    // SAFETY: the stack location belongs to the live IRP we own; this copies its parameters.
    let parameters = unsafe { (*stack).Parameters };
    // SAFETY: for IRP_MJ_DEVICE_CONTROL, `Parameters.DeviceIoControl` is the active member.
    let params = unsafe { parameters.DeviceIoControl };
    // SAFETY: we own the live IRP; this copies the `AssociatedIrp` union.
    let associated = unsafe { (*irp).AssociatedIrp };
    // SAFETY: for METHOD_BUFFERED requests `AssociatedIrp.SystemBuffer` is the active member.
    let system_buffer = unsafe { associated.SystemBuffer }.cast::<u8>();
    let buffer = SystemBuffer {
        ptr: system_buffer,
        input_len: params.InputBufferLength as usize,
        output_len: params.OutputBufferLength,
    };
    let (status, information) = match params.IoControlCode {
        code if ioctl::ALL_IOCTLS.contains(&code) => {
            // SAFETY: every code we serve is METHOD_BUFFERED (asserted in the ioctl crate), so
            // the I/O manager allocated a nonpaged SystemBuffer of max(in, out) bytes, holding
            // the input, that we own until completion.
            match unsafe { handle(ext, code, &buffer) } {
                Ok(n) => (STATUS_SUCCESS, n),
                Err(status) => (status, 0),
            }
        }
        _ => (STATUS_INVALID_DEVICE_REQUEST, 0),
    };
    // SAFETY: we own the live IRP; `information` never exceeds OutputBufferLength (each
    // response's size was checked against it by validation before anything was written).
    unsafe { complete(irp, status, information) };
    ext.rundown.release();
    status
}

/// A METHOD_BUFFERED buffer: input first, then overwritten with the output.
struct SystemBuffer {
    ptr: *mut u8,
    input_len: usize,
    output_len: u32,
}

impl SystemBuffer {
    /// Decode the input with `validate`, which sees the input bytes and the output length.
    ///
    /// # Safety
    /// `ptr` points to at least `max(input_len, output_len)` bytes owned by this request, or is
    /// null only when both lengths are 0.
    unsafe fn validate<T>(
        &self,
        validate: impl FnOnce(&[u8], u32) -> Result<T, NTSTATUS>,
    ) -> Result<T, NTSTATUS> {
        let input: &[u8] = if self.input_len == 0 || self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: the caller guarantees `input_len` readable bytes at `ptr`; no mutable view
            // of the buffer exists while this slice lives (validation copies what it keeps).
            unsafe { core::slice::from_raw_parts(self.ptr, self.input_len) }
        };
        validate(input, self.output_len)
    }

    /// Write `response` to the front of the buffer; returns the bytes written.
    ///
    /// # Safety
    /// As [`SystemBuffer::validate`], and no input view is alive.
    unsafe fn respond<R: Wire>(&self, response: &R) -> Result<usize, NTSTATUS> {
        if (self.output_len as usize) < R::SIZE || self.ptr.is_null() {
            return Err(STATUS_BUFFER_TOO_SMALL);
        }
        // SAFETY: the buffer holds at least `output_len` ≥ `R::SIZE` writable bytes owned by
        // this request, and nothing else views them now.
        let out = unsafe { core::slice::from_raw_parts_mut(self.ptr, self.output_len as usize) };
        response.write_to(out).ok_or(STATUS_BUFFER_TOO_SMALL)
    }
}

/// Serve one of our IOCTLs. A rejected request changes nothing.
///
/// # Safety
/// `buffer` satisfies [`SystemBuffer::validate`]'s contract.
unsafe fn handle(
    ext: &DeviceExtension,
    code: u32,
    buffer: &SystemBuffer,
) -> Result<usize, NTSTATUS> {
    match code {
        ioctl::IOCTL_QUERY_INFO => {
            // SAFETY: forwarded from the caller.
            unsafe { buffer.validate(ioctl::validate_query_info) }?;
            let info = info_response(ext);
            // SAFETY: the input view ended with validation.
            unsafe { buffer.respond(&info) }
        }
        ioctl::IOCTL_QUERY_STATS => {
            // SAFETY: forwarded from the caller.
            unsafe { buffer.validate(ioctl::validate_query_stats) }?;
            let totals = ext.totals.with(|t| *t);
            // SAFETY: the input view ended with validation.
            unsafe { buffer.respond(&stats_response(ext, totals)) }
        }
        ioctl::IOCTL_RESET_STATS => {
            // SAFETY: forwarded from the caller.
            unsafe { buffer.validate(ioctl::validate_reset_stats) }?;
            let before = ext.totals.with(core::mem::take);
            ext.engine.reset_counters();
            // SAFETY: the input view ended with validation.
            unsafe { buffer.respond(&stats_response(ext, before)) }
        }
        ioctl::IOCTL_RUN_CYCLES => {
            let limits = ioctl::Limits {
                slab_capacity: ext.engine.capacity(),
            };
            // SAFETY: forwarded from the caller.
            let request = unsafe {
                buffer
                    .validate(|input, out_len| ioctl::validate_run_cycles(input, out_len, &limits))
            }?;
            let stats = ext.engine.run(&request)?;
            if request.flags & ioctl::RUN_FLAG_NO_CUMULATIVE == 0 {
                ext.totals.with(|t| t.accumulate(&stats));
            }
            let response = ioctl::RunCyclesResponse {
                header: ioctl::Header::for_struct::<ioctl::RunCyclesResponse>(),
                mode: request.mode as u32,
                queue_type: request.queue_type as u32,
                perf_frequency: ext.perf_frequency,
                stats,
            };
            // SAFETY: the input view ended with validation.
            unsafe { buffer.respond(&response) }
        }
        _ => Err(STATUS_INVALID_DEVICE_REQUEST),
    }
}

fn stats_response(ext: &DeviceExtension, totals: ioctl::CycleStats) -> ioctl::StatsResponse {
    ioctl::StatsResponse {
        header: ioctl::Header::for_struct::<ioctl::StatsResponse>(),
        perf_frequency: ext.perf_frequency,
        totals,
    }
}

const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut v = 0u32;
    let mut i = 0;
    while i < b.len() {
        v = v * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    v
}

const DRIVER_VERSION: u32 = ioctl::pack_version(
    parse_u32(env!("CARGO_PKG_VERSION_MAJOR")),
    parse_u32(env!("CARGO_PKG_VERSION_MINOR")),
    parse_u32(env!("CARGO_PKG_VERSION_PATCH")),
);

const BUILD_TAG: &str = if cfg!(debug_assertions) {
    concat!(env!("CARGO_PKG_VERSION"), " debug")
} else {
    concat!(env!("CARGO_PKG_VERSION"), " release")
};

const fn build_tag() -> [u8; 24] {
    let src = BUILD_TAG.as_bytes();
    let mut out = [0u8; 24];
    let mut i = 0;
    while i < src.len() && i < out.len() - 1 {
        out[i] = src[i];
        i += 1;
    }
    out
}

const BUILD_FLAGS: u32 = (if cfg!(debug_assertions) {
    ioctl::BUILD_FLAG_DEBUG
} else {
    0
}) | (if cfg!(feature = "wdk") {
    ioctl::BUILD_FLAG_WDK
} else {
    0
});

fn info_response(ext: &DeviceExtension) -> ioctl::InfoResponse {
    ioctl::InfoResponse {
        header: ioctl::Header::for_struct::<ioctl::InfoResponse>(),
        protocol_version: ioctl::PROTOCOL_VERSION,
        driver_version: DRIVER_VERSION,
        io_sizeof_work_item: ext.io_sizeof_work_item,
        slab_capacity: ext.engine.capacity(),
        slab_stride: ext.engine.stride(),
        max_iterations: ioctl::MAX_ITERATIONS,
        max_requeue_depth: ioctl::MAX_REQUEUE_DEPTH,
        build_flags: BUILD_FLAGS,
        perf_frequency: ext.perf_frequency,
        build: build_tag(),
    }
}
