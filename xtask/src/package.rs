//! `cargo xtask package`: see below.
use std::process::ExitCode;

pub fn run(_release: bool) -> ExitCode {
    eprintln!("xtask package: not implemented yet");
    ExitCode::FAILURE
}
