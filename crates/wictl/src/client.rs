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
