//! Build script of the driver package.
//!
//! Windows host + `wdk` feature (the users' path, `cargo make`): hand the build to windows-drivers-rs'
//! `wdk-build`, which locates the WDK, sets the kernel-mode link arguments (`/DRIVER`,
//! `/SUBSYSTEM:NATIVE`, `/ENTRY:DriverEntry`, ntoskrnl.lib, ...) from
//! `[package.metadata.wdk.driver-model]`.
//!
//! Anything else (the Linux cross build, `cargo xtask build-sys`): do nothing. `wdk-build` is a
//! `[target.'cfg(windows)'.build-dependencies]` entry, so it is not even compiled on a Linux host,
//! and xbuild passes the kernel link arguments itself.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CARGO_FEATURE_WDK");

    #[cfg(windows)]
    if std::env::var_os("CARGO_FEATURE_WDK").is_some() {
        if let Err(e) = wdk_build::configure_wdk_binary_build() {
            // Cargo shows a build script's stderr when it fails.
            eprintln!("wdk-build could not configure the WDK build: {e}");
            eprintln!(
                "Install the WDK (or mount an eWDK and run its LaunchBuildEnv.cmd), or build \
                 without it: cargo build --no-default-features"
            );
            std::process::exit(1);
        }
    }
}
