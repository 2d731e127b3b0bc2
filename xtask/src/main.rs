//! Build orchestration: `cargo xtask <command>`.
use std::path::PathBuf;
use std::process::ExitCode;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Cross-build the driver; returns the .sys path.
fn build_sys(release: bool) -> Result<PathBuf, xbuild::Error> {
    let root = workspace_root();
    let tc = xbuild::locate_toolchain(true)?;
    eprintln!("xtask: cross-building wdm_workitem.sys with {tc}");
    xbuild::build_sys(
        &tc,
        &xbuild::SysBuild {
            manifest_path: &root.join("Cargo.toml"),
            package: "wdm-workitem",
            release,
            target_dir: &root.join("target/sys"),
            features: None,
            no_default_features: true,
            verbose: true,
        },
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let release = args.iter().any(|a| a == "--release");
    match args.first().map(String::as_str) {
        Some("build-sys") => match build_sys(release) {
            Ok(path) => {
                println!("{}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask build-sys: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo xtask build-sys [--release]");
            ExitCode::from(2)
        }
    }
}
