//! Typed requests over a [`DeviceHandle`], with the response checked against the protocol.
use ioctl::*;

use crate::backend::{BackendError, DeviceHandle, IoReply};
use crate::status::{status_code, status_sentence};

/// Why a typed request did not produce its response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The driver completed the request with an error status.
    Status(i32),
    /// The backend failed or the driver crashed.
    Backend(BackendError),
    /// The driver said success but its response breaks the protocol.
    Protocol(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(s) => write!(f, "{} {}", status_code(*s), status_sentence(*s)),
            Failure::Backend(e) => write!(f, "{e}"),
            Failure::Protocol(m) => write!(f, "protocol violation: {m}"),
        }
    }
}

impl std::error::Error for Failure {}

impl From<BackendError> for Failure {
    fn from(e: BackendError) -> Self {
        Failure::Backend(e)
    }
}

/// Check a successful reply carries exactly one well-formed `R`.
pub fn decode_response<R: Wire>(
    reply: &IoReply,
    out_len: u32,
    header_of: impl Fn(&R) -> Header,
) -> Result<R, Failure> {
    if !nt_abi::nt_success(reply.status) {
        return Err(Failure::Status(reply.status));
    }
    if reply.information > out_len as usize {
        return Err(Failure::Protocol(format!(
            "Information {} exceeds the output buffer length {out_len}",
            reply.information
        )));
    }
    if reply.information != R::SIZE {
        return Err(Failure::Protocol(format!(
            "Information {} is not the response size {}",
            reply.information,
            R::SIZE
        )));
    }
    let bytes = reply
        .output
        .get(..R::SIZE)
        .ok_or_else(|| Failure::Protocol("output shorter than Information".into()))?;
    let r = R::from_bytes(bytes).ok_or_else(|| Failure::Protocol("undecodable response".into()))?;
    let h = header_of(&r);
    if h != Header::for_struct::<R>() {
        return Err(Failure::Protocol(format!(
            "response header version {} size {} (expected {} {})",
            h.version,
            h.size,
            PROTOCOL_VERSION,
            R::SIZE
        )));
    }
    Ok(r)
}

/// Typed calls on one handle.
pub struct Client<'h> {
    pub handle: &'h dyn DeviceHandle,
}

impl<'h> Client<'h> {
    pub fn new(handle: &'h dyn DeviceHandle) -> Self {
        Client { handle }
    }

    fn call<Req: Wire, Resp: Wire>(
        &self,
        code: u32,
        req: &Req,
        header_of: impl Fn(&Resp) -> Header,
    ) -> Result<Resp, Failure> {
        let out_len = Resp::SIZE as u32;
        let reply = self.handle.ioctl(code, req.as_bytes(), out_len)?;
        decode_response(&reply, out_len, header_of)
    }

    pub fn info(&self) -> Result<InfoResponse, Failure> {
        self.call(
            IOCTL_QUERY_INFO,
            &QueryInfoRequest::new(),
            |r: &InfoResponse| r.header,
        )
    }

    pub fn run(&self, req: &RunCyclesRequest) -> Result<RunCyclesResponse, Failure> {
        self.call(IOCTL_RUN_CYCLES, req, |r: &RunCyclesResponse| r.header)
    }

    pub fn stats(&self) -> Result<StatsResponse, Failure> {
        self.call(
            IOCTL_QUERY_STATS,
            &QueryStatsRequest::new(),
            |r: &StatsResponse| r.header,
        )
    }

    /// Reset; returns the totals as they were just before.
    pub fn reset(&self) -> Result<StatsResponse, Failure> {
        self.call(
            IOCTL_RESET_STATS,
            &ResetStatsRequest::new(),
            |r: &StatsResponse| r.header,
        )
    }
}

/// Which field of a run-cycles request the driver's rules reject, in words (for a request the
/// driver answered with `STATUS_INVALID_PARAMETER`). `capacity` is the slab capacity, if known.
pub fn explain_run_rejection(r: &RunCyclesRequest, capacity: Option<u32>) -> Option<String> {
    let mode = Mode::from_u32(r.mode);
    if mode.is_none() {
        return Some(format!("mode {} is not a mode (0..=5)", r.mode));
    }
    if r.iterations == 0 || r.iterations > MAX_ITERATIONS {
        return Some(format!(
            "iterations {} is outside 1..={MAX_ITERATIONS}",
            r.iterations
        ));
    }
    if let Some(cap) = capacity {
        if r.concurrency == 0 || r.concurrency > cap {
            return Some(format!(
                "concurrency {} is outside 1..={cap} (the slab capacity)",
                r.concurrency
            ));
        }
    } else if r.concurrency == 0 {
        return Some("concurrency 0".into());
    }
    let q = r.queue_type;
    if !(q <= 6 || (32..=63).contains(&q)) {
        return Some(format!(
            "queue type {q} is not one the kernel accepts (0..=6, or 32..=63 for custom priority)"
        ));
    }
    if r.flags & !RUN_FLAGS_ALL != 0 {
        return Some(format!(
            "flags {:#x} has undefined bits {:#x}",
            r.flags,
            r.flags & !RUN_FLAGS_ALL
        ));
    }
    match mode {
        Some(Mode::RequeueChain) if !(1..=MAX_REQUEUE_DEPTH).contains(&r.requeue_depth) => {
            return Some(format!(
                "requeue depth {} is outside 1..={MAX_REQUEUE_DEPTH}",
                r.requeue_depth
            ));
        }
        Some(m) if m != Mode::RequeueChain && r.requeue_depth != 0 => {
            return Some(format!(
                "requeue depth must be 0 outside requeue mode (got {})",
                r.requeue_depth
            ));
        }
        _ => {}
    }
    let routines = u64::from(r.iterations) * (1 + u64::from(r.requeue_depth));
    if routines > MAX_ROUTINES_PER_REQUEST {
        return Some(format!(
            "{} iterations x {} routines each = {routines} routines, above the per-request bound {MAX_ROUTINES_PER_REQUEST}",
            r.iterations,
            1 + r.requeue_depth
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanations_agree_with_validation() {
        let limits = Limits { slab_capacity: 64 };
        let mut rng = crate::fuzz::Rng::new(3);
        for _ in 0..20_000 {
            let r = RunCyclesRequest {
                header: Header::for_struct::<RunCyclesRequest>(),
                iterations: *rng.pick(&[0, 1, 500, MAX_ITERATIONS, MAX_ITERATIONS + 1]),
                concurrency: *rng.pick(&[0, 1, 64, 65]),
                mode: rng.range32(0, 7),
                queue_type: *rng.pick(&[0, 6, 7, 31, 32, 63, 64]),
                flags: *rng.pick(&[0, 1, 3, 4]),
                requeue_depth: *rng.pick(&[0, 1, 64, 65]),
            };
            let valid =
                validate_run_cycles(r.as_bytes(), RunCyclesResponse::SIZE as u32, &limits).is_ok();
            assert_eq!(
                explain_run_rejection(&r, Some(64)).is_none(),
                valid,
                "{r:?}"
            );
        }
    }
}
