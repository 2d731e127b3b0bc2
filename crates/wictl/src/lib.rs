//! wictl: the harness for the wdm-workitem driver.
//!
//! The binary (`src/main.rs`) is a thin CLI over this library, which the integration tests use
//! directly: [`backend`] (how requests reach the driver), [`client`] (typed requests),
//! [`fuzz`] (malformed requests with their expected NTSTATUS), [`stress`], [`status`] (NTSTATUS
//! in sentences), and the two backends: [`ntsim_backend`] (Linux: the .sys loaded in-process
//! with the verifier on) and [`windows`] (the real device and the service control manager).
pub mod backend;
pub mod client;
pub mod fuzz;
pub mod status;
pub mod stress;

#[cfg(target_os = "linux")]
pub mod ntsim_backend;

#[cfg(windows)]
pub mod windows;

/// Process exit codes.
pub mod exit {
    /// Everything succeeded (and, under ntsim, the verifier stayed quiet).
    pub const OK: u8 = 0;
    /// The driver rejected a request, or a check (fuzz, stress consistency) failed.
    pub const FAILED: u8 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: u8 = 2;
    /// The backend could not be used: driver not loadable, device not openable, wrong platform.
    pub const BACKEND: u8 = 3;
    /// The verifier fired or the driver bug-checked the (simulated) system.
    pub const VERIFIER: u8 = 4;
}
