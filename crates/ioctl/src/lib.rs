//! The wdm-workitem IOCTL protocol, shared by the driver and the `wictl` harness.
//!
//! Every control code uses `FILE_DEVICE_UNKNOWN`, a vendor function number (0x800+) and
//! `METHOD_BUFFERED`. Queries need `FILE_READ_ACCESS`; anything that starts work or changes
//! state needs `FILE_WRITE_ACCESS`, so the I/O manager keeps it away from read-only handles.
//!
//! Every request and response starts with a [`Header`] (`version`, `size`). Structs are
//! `#[repr(C)]`, little-endian, have no padding (asserted at compile time) and a fixed size that is
//! part of the protocol (asserted too). Each request has one validation function that returns the
//! precise NTSTATUS for a malformed request; the driver completes such a request with that status
//! and changes nothing.
//!
//! | code | value | access | input | output |
//! | --- | --- | --- | --- | --- |
//! | [`IOCTL_QUERY_INFO`] | `0x226000` | read | [`QueryInfoRequest`] (8) | [`InfoResponse`] (72) |
//! | [`IOCTL_RUN_CYCLES`] | `0x22A004` | write | [`RunCyclesRequest`] (32) | [`RunCyclesResponse`] (96) |
//! | [`IOCTL_QUERY_STATS`] | `0x226008` | read | [`QueryStatsRequest`] (8) | [`StatsResponse`] (88) |
//! | [`IOCTL_RESET_STATS`] | `0x22A00C` | write | [`ResetStatsRequest`] (8) | [`StatsResponse`] (88), the totals before the reset |
//!
//! Any other code is `STATUS_INVALID_DEVICE_REQUEST`. `IoStatus.Information` is the response
//! size on success (never more than `OutputBufferLength`) and 0 on any error.
//!
//! Validation order (the same for every request, so a status is predictable):
//! 1. input shorter than the request struct: `STATUS_BUFFER_TOO_SMALL`;
//! 2. input longer than the request struct: `STATUS_INVALID_PARAMETER`;
//! 3. `header.version != PROTOCOL_VERSION`: `STATUS_REVISION_MISMATCH`;
//! 4. `header.size` not the request's size: `STATUS_INVALID_PARAMETER`;
//! 5. output shorter than the response struct: `STATUS_BUFFER_TOO_SMALL`;
//! 6. field checks (`STATUS_INVALID_PARAMETER`).
#![no_std]

use nt_abi::status::*;
use nt_abi::{
    FILE_DEVICE_UNKNOWN, FILE_READ_ACCESS, FILE_WRITE_ACCESS, METHOD_BUFFERED, NTSTATUS, ctl_code,
    is_valid_work_queue_type,
};

/// Version carried in every header. Bump it when any struct or rule changes.
pub const PROTOCOL_VERSION: u32 = 1;

/// NT name of the device object.
pub const DEVICE_NAME: &str = "\\Device\\WdmWorkItem";
/// NT name of the symbolic link user mode opens.
pub const DOS_DEVICE_NAME: &str = "\\DosDevices\\WdmWorkItem";
/// Win32 path of the device (`CreateFileW`).
pub const USER_PATH: &str = "\\\\.\\WdmWorkItem";
/// Service name: the one `driver.inx` installs (`ServiceName`, checked by
/// `crates/sys-check/tests/inf.rs`) and the default of `wictl install/start/stop/uninstall`.
pub const SERVICE_NAME: &str = "wdm_workitem";

/// A NUL-terminated UTF-16 copy of an ASCII string, computed at compile time.
pub const fn ascii_to_utf16<const N: usize>(s: &str) -> [u16; N] {
    let bytes = s.as_bytes();
    assert!(
        bytes.len() + 1 == N,
        "N must be the string length plus the NUL"
    );
    let mut out = [0u16; N];
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii(), "ASCII only");
        out[i] = bytes[i] as u16;
        i += 1;
    }
    out
}

/// `DEVICE_NAME` as NUL-terminated UTF-16.
pub const DEVICE_NAME_W: [u16; DEVICE_NAME.len() + 1] = ascii_to_utf16(DEVICE_NAME);
/// `DOS_DEVICE_NAME` as NUL-terminated UTF-16.
pub const DOS_DEVICE_NAME_W: [u16; DOS_DEVICE_NAME.len() + 1] = ascii_to_utf16(DOS_DEVICE_NAME);

/// First vendor function number this protocol uses.
pub const FUNCTION_BASE: u32 = 0x800;

/// Query driver and slab facts: [`QueryInfoRequest`] → [`InfoResponse`]. Read access.
pub const IOCTL_QUERY_INFO: u32 = ctl_code(
    FILE_DEVICE_UNKNOWN,
    FUNCTION_BASE,
    METHOD_BUFFERED,
    FILE_READ_ACCESS,
);
/// Run work-item cycles: [`RunCyclesRequest`] → [`RunCyclesResponse`]. Write access.
pub const IOCTL_RUN_CYCLES: u32 = ctl_code(
    FILE_DEVICE_UNKNOWN,
    FUNCTION_BASE + 1,
    METHOD_BUFFERED,
    FILE_WRITE_ACCESS,
);
/// Read the cumulative statistics: [`QueryStatsRequest`] → [`StatsResponse`]. Read access.
pub const IOCTL_QUERY_STATS: u32 = ctl_code(
    FILE_DEVICE_UNKNOWN,
    FUNCTION_BASE + 2,
    METHOD_BUFFERED,
    FILE_READ_ACCESS,
);
/// Reset the cumulative statistics: [`ResetStatsRequest`] → [`StatsResponse`] (the totals as
/// they were just before the reset). Write access.
pub const IOCTL_RESET_STATS: u32 = ctl_code(
    FILE_DEVICE_UNKNOWN,
    FUNCTION_BASE + 3,
    METHOD_BUFFERED,
    FILE_WRITE_ACCESS,
);

/// Every control code the driver answers; anything else is `STATUS_INVALID_DEVICE_REQUEST`.
pub const ALL_IOCTLS: [u32; 4] = [
    IOCTL_QUERY_INFO,
    IOCTL_RUN_CYCLES,
    IOCTL_QUERY_STATS,
    IOCTL_RESET_STATS,
];

/// The known control codes, by name (for harness output).
pub const fn ioctl_name(code: u32) -> Option<&'static str> {
    match code {
        IOCTL_QUERY_INFO => Some("IOCTL_QUERY_INFO"),
        IOCTL_RUN_CYCLES => Some("IOCTL_RUN_CYCLES"),
        IOCTL_QUERY_STATS => Some("IOCTL_QUERY_STATS"),
        IOCTL_RESET_STATS => Some("IOCTL_RESET_STATS"),
        _ => None,
    }
}

/// Upper bound on `iterations` of one run-cycles request.
pub const MAX_ITERATIONS: u32 = 1_000_000;
/// Upper bound on `requeue_depth` in [`Mode::RequeueChain`].
pub const MAX_REQUEUE_DEPTH: u32 = 64;
/// Upper bound on routines one request may run: `iterations × (1 + requeue_depth)`.
pub const MAX_ROUTINES_PER_REQUEST: u64 = 4_000_000;

/// Plain-old-data wire structs: `#[repr(C)]`, integer fields only, no padding.
///
/// # Safety
/// Implementors must be `#[repr(C)]`, contain only integer fields (and arrays/structs of them
/// that are `Wire` themselves) and have no padding bytes, so every byte pattern of
/// `size_of::<Self>()` bytes is a valid value and every value's bytes are initialized.
pub unsafe trait Wire: Copy + Sized {
    /// The wire size, equal to `size_of::<Self>()`.
    const SIZE: usize = core::mem::size_of::<Self>();

    /// Decode from exactly `Self::SIZE` bytes (any alignment); `None` if the length differs.
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::SIZE {
            return None;
        }
        // SAFETY: `bytes` holds exactly `size_of::<Self>()` readable bytes, `read_unaligned`
        // needs no alignment, and the `Wire` contract makes every byte pattern a valid `Self`.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<Self>()) })
    }

    /// The value's bytes.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: `self` is a live, initialized value of `size_of::<Self>()` bytes; the `Wire`
        // contract rules out padding, so all of those bytes are initialized, and `u8` has
        // alignment 1. The slice borrows `self`, so it cannot outlive it.
        unsafe { core::slice::from_raw_parts((self as *const Self).cast::<u8>(), Self::SIZE) }
    }

    /// Copy the value into the front of `out`; returns the bytes written, or `None` (and
    /// writes nothing) if `out` is too short.
    fn write_to(&self, out: &mut [u8]) -> Option<usize> {
        let dst = out.get_mut(..Self::SIZE)?;
        dst.copy_from_slice(self.as_bytes());
        Some(Self::SIZE)
    }
}

/// Declares a wire struct, asserts its size equals the sum of its field sizes (no padding) and
/// equals the protocol size, and implements [`Wire`].
macro_rules! wire_struct {
    ($(#[$m:meta])* pub struct $name:ident = $size:literal { $($(#[$fm:meta])* pub $f:ident: $t:ty,)* }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name { $($(#[$fm])* pub $f: $t,)* }
        const _: () = assert!(core::mem::size_of::<$name>() == $size, concat!("wire size of ", stringify!($name)));
        const _: () = assert!(0 $(+ core::mem::size_of::<$t>())* == $size, concat!(stringify!($name), " has padding"));
        // SAFETY: `#[repr(C)]`, integer (or `Wire`) fields only, and the assertions above prove
        // the fields fill the struct exactly, so there is no padding.
        unsafe impl Wire for $name {}
    };
}

wire_struct! {
    /// Leads every request and response.
    pub struct Header = 8 {
        /// [`PROTOCOL_VERSION`].
        pub version: u32,
        /// Size in bytes of the whole struct this header leads.
        pub size: u32,
    }
}

impl Header {
    /// The header a struct of `T` carries.
    pub const fn for_struct<T: Wire>() -> Header {
        Header {
            version: PROTOCOL_VERSION,
            size: core::mem::size_of::<T>() as u32,
        }
    }
}

wire_struct! {
    /// Input of [`IOCTL_QUERY_INFO`].
    pub struct QueryInfoRequest = 8 {
        pub header: Header,
    }
}

/// `InfoResponse::build_flags`: the driver was built in a debug profile.
pub const BUILD_FLAG_DEBUG: u32 = 0x1;
/// `InfoResponse::build_flags`: the driver was built with the WDK (`wdk` feature).
pub const BUILD_FLAG_WDK: u32 = 0x2;

wire_struct! {
    /// Output of [`IOCTL_QUERY_INFO`].
    pub struct InfoResponse = 72 {
        pub header: Header,
        pub protocol_version: u32,
        /// `major << 16 | minor << 8 | patch` of the driver package.
        pub driver_version: u32,
        /// What `IoSizeofWorkItem()` returned on this system.
        pub io_sizeof_work_item: u32,
        /// Slots in the nonpaged slab.
        pub slab_capacity: u32,
        /// Bytes per slab slot (header + work item, aligned).
        pub slab_stride: u32,
        pub max_iterations: u32,
        pub max_requeue_depth: u32,
        /// `BUILD_FLAG_*`.
        pub build_flags: u32,
        /// `KeQueryPerformanceCounter` frequency (ticks per second).
        pub perf_frequency: u64,
        /// ASCII build tag, NUL padded (e.g. `0.1.0 release`).
        pub build: [u8; 24],
    }
}

/// Pack a `major.minor.patch` version into `InfoResponse::driver_version`.
pub const fn pack_version(major: u32, minor: u32, patch: u32) -> u32 {
    (major << 16) | ((minor & 0xFF) << 8) | (patch & 0xFF)
}

/// Unpack `InfoResponse::driver_version`.
pub const fn unpack_version(v: u32) -> (u32, u32, u32) {
    (v >> 16, (v >> 8) & 0xFF, v & 0xFF)
}

/// What a run-cycles request does per iteration.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Take a slab slot (initialize the work item) and return it (uninitialize); never queue.
    InitUninit = 0,
    /// Queue the item; the routine hands it back and the caller uninitializes it.
    QueueUninitInCaller = 1,
    /// Queue the item; the routine uninitializes it (drops it) inside the routine.
    UninitInRoutine = 2,
    /// Queue the item; the routine requeues it `requeue_depth` times, then drops it.
    RequeueChain = 3,
    /// Like `UninitInRoutine`, through `IoQueueWorkItemEx` (driver object as IoObject).
    QueueEx = 4,
    /// Baseline: `IoAllocateWorkItem` / `IoQueueWorkItem` / `IoFreeWorkItem` per cycle.
    BaselineAllocFree = 5,
}

impl Mode {
    pub const ALL: [Mode; 6] = [
        Mode::InitUninit,
        Mode::QueueUninitInCaller,
        Mode::UninitInRoutine,
        Mode::RequeueChain,
        Mode::QueueEx,
        Mode::BaselineAllocFree,
    ];

    pub const fn from_u32(v: u32) -> Option<Mode> {
        match v {
            0 => Some(Mode::InitUninit),
            1 => Some(Mode::QueueUninitInCaller),
            2 => Some(Mode::UninitInRoutine),
            3 => Some(Mode::RequeueChain),
            4 => Some(Mode::QueueEx),
            5 => Some(Mode::BaselineAllocFree),
            _ => None,
        }
    }

    /// Short name used on the harness command line.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::InitUninit => "init-uninit",
            Mode::QueueUninitInCaller => "uninit-in-caller",
            Mode::UninitInRoutine => "uninit-in-routine",
            Mode::RequeueChain => "requeue",
            Mode::QueueEx => "ex",
            Mode::BaselineAllocFree => "baseline",
        }
    }

    pub fn from_name(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Whether the mode queues work items (and so needs a valid queue type).
    pub const fn queues(self) -> bool {
        !matches!(self, Mode::InitUninit)
    }
}

/// `RunCyclesRequest::flags`: do not add this run's statistics to the cumulative totals.
pub const RUN_FLAG_NO_CUMULATIVE: u32 = 0x1;
/// `RunCyclesRequest::flags`: each routine yields its thread once (widens race windows).
pub const RUN_FLAG_YIELD_IN_ROUTINE: u32 = 0x2;
/// Every defined `RUN_FLAG_*` bit; any other bit is `STATUS_INVALID_PARAMETER`.
pub const RUN_FLAGS_ALL: u32 = RUN_FLAG_NO_CUMULATIVE | RUN_FLAG_YIELD_IN_ROUTINE;

wire_struct! {
    /// Input of [`IOCTL_RUN_CYCLES`].
    pub struct RunCyclesRequest = 32 {
        pub header: Header,
        /// Cycles to run, 1..=[`MAX_ITERATIONS`].
        pub iterations: u32,
        /// Items in flight at once, 1..=slab capacity.
        pub concurrency: u32,
        /// A [`Mode`].
        pub mode: u32,
        /// `WORK_QUEUE_TYPE`: 0–6 or 32–63 (CustomPriority + 0..31).
        pub queue_type: u32,
        /// `RUN_FLAG_*`.
        pub flags: u32,
        /// [`Mode::RequeueChain`]: 1..=[`MAX_REQUEUE_DEPTH`]; every other mode: 0.
        pub requeue_depth: u32,
    }
}

wire_struct! {
    /// Counters of one run, and (in [`StatsResponse`]) the cumulative totals.
    pub struct CycleStats = 72 {
        /// Cycles whose item was returned to the slab (or freed, in the baseline).
        pub cycles_completed: u64,
        /// Calls to `IoQueueWorkItem[Ex]`, requeues included.
        pub queued: u64,
        /// Work-item routines that ran.
        pub routines_run: u64,
        /// Items uninitialized inside their own routine.
        pub uninit_in_routine: u64,
        /// Requeues from inside a routine.
        pub requeues: u64,
        /// Times the slab (or `IoAllocateWorkItem`) had nothing to give.
        pub exhaustion_count: u64,
        /// `KeQueryPerformanceCounter` ticks the run took (summed in the totals).
        pub elapsed_ticks: u64,
        /// Most items this run had in flight at once (the maximum, in the totals).
        pub max_in_flight: u32,
        /// Most slab slots in use at once, across all requests (the maximum, in the totals).
        pub slab_high_water: u32,
        /// Run-cycles requests these numbers cover (1 for a single run).
        pub runs: u64,
    }
}

impl CycleStats {
    /// Fold one run into cumulative totals: sums, except the two maxima.
    pub fn accumulate(&mut self, run: &CycleStats) {
        self.cycles_completed = self.cycles_completed.wrapping_add(run.cycles_completed);
        self.queued = self.queued.wrapping_add(run.queued);
        self.routines_run = self.routines_run.wrapping_add(run.routines_run);
        self.uninit_in_routine = self.uninit_in_routine.wrapping_add(run.uninit_in_routine);
        self.requeues = self.requeues.wrapping_add(run.requeues);
        self.exhaustion_count = self.exhaustion_count.wrapping_add(run.exhaustion_count);
        self.elapsed_ticks = self.elapsed_ticks.wrapping_add(run.elapsed_ticks);
        self.max_in_flight = self.max_in_flight.max(run.max_in_flight);
        self.slab_high_water = self.slab_high_water.max(run.slab_high_water);
        self.runs = self.runs.wrapping_add(run.runs);
    }
}

wire_struct! {
    /// Output of [`IOCTL_RUN_CYCLES`].
    pub struct RunCyclesResponse = 96 {
        pub header: Header,
        /// The request's mode and queue type, echoed.
        pub mode: u32,
        pub queue_type: u32,
        /// Ticks per second of `elapsed_ticks`.
        pub perf_frequency: u64,
        pub stats: CycleStats,
    }
}

wire_struct! {
    /// Input of [`IOCTL_QUERY_STATS`].
    pub struct QueryStatsRequest = 8 {
        pub header: Header,
    }
}

wire_struct! {
    /// Input of [`IOCTL_RESET_STATS`].
    pub struct ResetStatsRequest = 8 {
        pub header: Header,
    }
}

wire_struct! {
    /// Output of [`IOCTL_QUERY_STATS`] and [`IOCTL_RESET_STATS`].
    pub struct StatsResponse = 88 {
        pub header: Header,
        /// Ticks per second of `totals.elapsed_ticks`.
        pub perf_frequency: u64,
        pub totals: CycleStats,
    }
}

/// Driver-side facts a request is validated against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Slots in the slab: the largest `concurrency` a request may ask for.
    pub slab_capacity: u32,
}

/// Steps 1–5 of the validation order for request `Req` with response `Resp`.
fn validate_frame<Req: Wire, Resp: Wire>(
    input: &[u8],
    output_len: u32,
    header_of: impl Fn(&Req) -> Header,
) -> Result<Req, NTSTATUS> {
    if input.len() < Req::SIZE {
        return Err(STATUS_BUFFER_TOO_SMALL);
    }
    if input.len() > Req::SIZE {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let req = Req::from_bytes(input).ok_or(STATUS_INVALID_PARAMETER)?;
    let header = header_of(&req);
    if header.version != PROTOCOL_VERSION {
        return Err(STATUS_REVISION_MISMATCH);
    }
    if header.size as usize != Req::SIZE {
        return Err(STATUS_INVALID_PARAMETER);
    }
    if (output_len as usize) < Resp::SIZE {
        return Err(STATUS_BUFFER_TOO_SMALL);
    }
    Ok(req)
}

/// Validate an [`IOCTL_QUERY_INFO`] request.
pub fn validate_query_info(input: &[u8], output_len: u32) -> Result<QueryInfoRequest, NTSTATUS> {
    validate_frame::<QueryInfoRequest, InfoResponse>(input, output_len, |r| r.header)
}

/// Validate an [`IOCTL_QUERY_STATS`] request.
pub fn validate_query_stats(input: &[u8], output_len: u32) -> Result<QueryStatsRequest, NTSTATUS> {
    validate_frame::<QueryStatsRequest, StatsResponse>(input, output_len, |r| r.header)
}

/// Validate an [`IOCTL_RESET_STATS`] request.
pub fn validate_reset_stats(input: &[u8], output_len: u32) -> Result<ResetStatsRequest, NTSTATUS> {
    validate_frame::<ResetStatsRequest, StatsResponse>(input, output_len, |r| r.header)
}

/// A run-cycles request that passed validation, with typed fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunCycles {
    pub iterations: u32,
    pub concurrency: u32,
    pub mode: Mode,
    /// A `WORK_QUEUE_TYPE` ntoskrnl accepts.
    pub queue_type: i32,
    pub flags: u32,
    pub requeue_depth: u32,
}

/// Validate an [`IOCTL_RUN_CYCLES`] request against the driver's limits.
pub fn validate_run_cycles(
    input: &[u8],
    output_len: u32,
    limits: &Limits,
) -> Result<RunCycles, NTSTATUS> {
    let req =
        validate_frame::<RunCyclesRequest, RunCyclesResponse>(input, output_len, |r| r.header)?;
    let mode = Mode::from_u32(req.mode).ok_or(STATUS_INVALID_PARAMETER)?;
    if req.iterations == 0 || req.iterations > MAX_ITERATIONS {
        return Err(STATUS_INVALID_PARAMETER);
    }
    if req.concurrency == 0 || req.concurrency > limits.slab_capacity {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let queue_type = i32::try_from(req.queue_type).map_err(|_| STATUS_INVALID_PARAMETER)?;
    if !is_valid_work_queue_type(queue_type) {
        return Err(STATUS_INVALID_PARAMETER);
    }
    if req.flags & !RUN_FLAGS_ALL != 0 {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let depth_ok = match mode {
        Mode::RequeueChain => (1..=MAX_REQUEUE_DEPTH).contains(&req.requeue_depth),
        _ => req.requeue_depth == 0,
    };
    if !depth_ok {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let routines = u64::from(req.iterations) * (1 + u64::from(req.requeue_depth));
    if routines > MAX_ROUTINES_PER_REQUEST {
        return Err(STATUS_INVALID_PARAMETER);
    }
    Ok(RunCycles {
        iterations: req.iterations,
        concurrency: req.concurrency,
        mode,
        queue_type,
        flags: req.flags,
        requeue_depth: req.requeue_depth,
    })
}

impl RunCyclesRequest {
    /// A well-formed request (header filled in).
    pub const fn new(
        iterations: u32,
        concurrency: u32,
        mode: Mode,
        queue_type: u32,
        flags: u32,
        requeue_depth: u32,
    ) -> Self {
        RunCyclesRequest {
            header: Header::for_struct::<RunCyclesRequest>(),
            iterations,
            concurrency,
            mode: mode as u32,
            queue_type,
            flags,
            requeue_depth,
        }
    }
}

impl QueryInfoRequest {
    pub const fn new() -> Self {
        QueryInfoRequest {
            header: Header::for_struct::<QueryInfoRequest>(),
        }
    }
}

impl QueryStatsRequest {
    pub const fn new() -> Self {
        QueryStatsRequest {
            header: Header::for_struct::<QueryStatsRequest>(),
        }
    }
}

impl ResetStatsRequest {
    pub const fn new() -> Self {
        ResetStatsRequest {
            header: Header::for_struct::<ResetStatsRequest>(),
        }
    }
}

/// What one request needs, by control code: input size, and the output size it returns.
pub const fn request_sizes(code: u32) -> Option<(usize, usize)> {
    match code {
        IOCTL_QUERY_INFO => Some((QueryInfoRequest::SIZE, InfoResponse::SIZE)),
        IOCTL_RUN_CYCLES => Some((RunCyclesRequest::SIZE, RunCyclesResponse::SIZE)),
        IOCTL_QUERY_STATS => Some((QueryStatsRequest::SIZE, StatsResponse::SIZE)),
        IOCTL_RESET_STATS => Some((ResetStatsRequest::SIZE, StatsResponse::SIZE)),
        _ => None,
    }
}

// The codes are part of the protocol: pin their values.
const _: () = assert!(IOCTL_QUERY_INFO == 0x0022_6000);
const _: () = assert!(IOCTL_RUN_CYCLES == 0x0022_A004);
const _: () = assert!(IOCTL_QUERY_STATS == 0x0022_6008);
const _: () = assert!(IOCTL_RESET_STATS == 0x0022_A00C);

#[cfg(test)]
mod tests;
