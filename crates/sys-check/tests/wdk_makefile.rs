//! `Makefile.toml` against the wdk-build release it extends. The Windows flow cannot run here,
//! but its definition can be read: this unpacks the wdk-build crate of the version in Cargo.lock
//! from the cargo registry (downloading it if needed) and checks that what Makefile.toml and the
//! README say about the flow is what that release's `rust-driver-makefile.toml`, `cargo_make.rs`
//! and `lib.rs` do — the package folder, no map file in it, `infverif /v /w`, the timestamping
//! signtool call, the symbolic link, `/INTEGRITYCHECK` — and that the two tasks Makefile.toml
//! replaces exist upstream and differ only where intended.

#[path = "support/cargo.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use toml::{Table, Value};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn table(text: &str, what: &str) -> Table {
    text.parse::<Table>()
        .unwrap_or_else(|e| panic!("{what} is not valid TOML: {e}"))
}

/// The version of `name` in the workspace's Cargo.lock.
fn locked_version(name: &str) -> String {
    let lock = table(
        &read(&support::workspace_root().join("Cargo.lock")),
        "Cargo.lock",
    );
    let versions: Vec<String> = lock["package"]
        .as_array()
        .expect("[[package]]")
        .iter()
        .filter(|p| p["name"].as_str() == Some(name))
        .filter_map(|p| p["version"].as_str().map(String::from))
        .collect();
    assert_eq!(versions.len(), 1, "{name} in Cargo.lock: {versions:?}");
    versions[0].clone()
}

/// The unpacked wdk-build source of the locked version.
fn wdk_build_source() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let version = locked_version("wdk-build");
        // The WDK build's tree needs wdk-build's manifest, so cargo downloads its .crate.
        support::cargo_tree(support::WDK_BUILD_TREE, None);
        let home = support::ambient_cargo_home().expect("a cargo home");
        let file = format!("wdk-build-{version}.crate");
        let archive = std::fs::read_dir(home.join("registry/cache"))
            .expect("the cargo registry cache")
            .flatten()
            .map(|reg| reg.path().join(&file))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{file} not in {}/registry/cache", home.display()));
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wdk-build-src");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let ok = Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&out)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "tar -xzf {} failed", archive.display());
        out.join(format!("wdk-build-{version}"))
    })
}

fn upstream_makefile() -> Table {
    table(
        &read(&wdk_build_source().join("rust-driver-makefile.toml")),
        "rust-driver-makefile.toml",
    )
}

fn ours() -> Table {
    table(
        &read(&support::workspace_root().join("Makefile.toml")),
        "Makefile.toml",
    )
}

fn task<'a>(t: &'a Table, name: &str) -> &'a Table {
    t["tasks"][name]
        .as_table()
        .unwrap_or_else(|| panic!("no [tasks.{name}]"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_str().expect("a string").to_string())
        .collect()
}

/// Our signtool arguments with the optional timestamp expanded to `timestamp` (what the task
/// runs with WDM_SIGN_WITHOUT_TIMESTAMP unset).
fn with_timestamp(args: &[String], timestamp: &str) -> Vec<String> {
    args.iter()
        .flat_map(|a| {
            if a == "@@split(WDM_SIGNTOOL_TIMESTAMP_ARGS, ,remove-empty)" {
                timestamp
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            } else {
                vec![a.clone()]
            }
        })
        .collect()
}

#[test]
fn makefile_and_build_dependency_name_the_locked_wdk_build() {
    let version = locked_version("wdk-build");
    let script = ours()["config"]["load_script"]
        .as_str()
        .expect("load_script")
        .to_string();
    assert!(
        script.contains(&format!("wdk-build = \"{version}\"")),
        "Makefile.toml's load_script must use wdk-build {version} (one version in the graph):\n{script}"
    );
    let manifest = table(
        &read(&support::workspace_root().join("Cargo.toml")),
        "Cargo.toml",
    );
    let dep = &manifest["target"]["cfg(windows)"]["build-dependencies"]["wdk-build"];
    assert_eq!(dep.as_str(), Some(version.as_str()));
}

#[test]
fn signing_differs_from_wdk_build_only_in_the_optional_timestamp() {
    let up = strings(&task(&upstream_makefile(), "signtool-sign")["args"]);
    let mine = strings(&task(&ours(), "signtool-sign")["args"]);
    let ts = ours()["env"]["WDM_SIGNTOOL_TIMESTAMP_ARGS"]["value"]
        .as_str()
        .expect("the default timestamp arguments")
        .to_string();
    assert_eq!(ts, "/t http://timestamp.digicert.com");
    assert_eq!(
        with_timestamp(&mine, &ts),
        up,
        "wdk-build's signtool-sign changed"
    );
    // Offline (WDM_SIGN_WITHOUT_TIMESTAMP set): the same call without the network.
    let offline = with_timestamp(&mine, "");
    assert!(!offline.iter().any(|a| a == "/t" || a.starts_with("http")));
    assert_eq!(offline.len() + 2, up.len());
}

#[test]
fn with_timestamp_expands_only_the_placeholder() {
    let args: Vec<String> = [
        "sign",
        "@@split(WDM_SIGNTOOL_TIMESTAMP_ARGS, ,remove-empty)",
        "f",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(with_timestamp(&args, "/t u"), ["sign", "/t", "u", "f"]);
    assert_ne!(
        with_timestamp(&args, "/t u"),
        ["sign", "/t", "http://timestamp.digicert.com", "f"]
    );
}

#[test]
fn the_inx_copy_replaces_an_upstream_task_and_feeds_stampinf() {
    let up = upstream_makefile();
    let upstream_copy = task(&up, "copy-inx-to-output")["script"]
        .as_str()
        .expect("script")
        .to_string();
    assert!(
        upstream_copy
            .contains("format!(\"{}.inx\", wdk_build::cargo_make::get_current_package_name())"),
        "upstream copies <package>.inx (why Makefile.toml replaces it):\n{upstream_copy}"
    );
    let mine = ours();
    let ours_copy = task(&mine, "copy-inx-to-output");
    assert_eq!(ours_copy["clear"].as_bool(), Some(true));
    let script = ours_copy["script"].as_str().unwrap();
    assert!(script.contains("/driver.inx\""), "{script}");
    let inf = "${WDK_BUILD_OUTPUT_DIRECTORY}/${CARGO_MAKE_CRATE_FS_NAME}.inf";
    assert!(script.contains(inf), "{script}");
    let stampinf = strings(&task(&up, "stampinf")["args"]);
    assert!(
        stampinf.iter().any(|a| a == inf),
        "stampinf stamps {inf}: {stampinf:?}"
    );
}

#[test]
fn what_the_docs_say_about_the_flow_is_what_wdk_build_does() {
    let up = upstream_makefile();
    // infverif runs as `/v /w` for a WDM driver.
    assert_eq!(
        up["env"]["WDK_BUILD_BASE_INFVERIF_FLAGS"].as_str(),
        Some("/v")
    );
    let infverif_env =
        task(&up, "infverif")["env"]["WDK_BUILD_BASE_INFVERIF_FLAGS"]["default_value"]
            .as_str()
            .unwrap()
            .to_string();
    assert_eq!(infverif_env, "${WDK_BUILD_BASE_INFVERIF_FLAGS} /w");
    // No task puts the linker map into the package (0.6.0 removed copy-map-to-package).
    let tasks = up["tasks"].as_table().unwrap();
    assert!(
        !tasks.keys().any(|k| k.contains("map")),
        "{:?}",
        tasks.keys().collect::<Vec<_>>()
    );
    let package = strings(&task(&up, "package-driver")["dependencies"]);
    for t in [
        "copy-driver-binary-to-package",
        "copy-pdb-to-package",
        "copy-inf-to-package",
        "copy-certificate-to-package",
        "sign-driver-binary",
        "sign-cat",
        "infverif",
    ] {
        assert!(package.iter().any(|p| p == t), "{t} not in {package:?}");
    }
    // The signed driver is the package folder's copy; the package folder is <output>/<crate>_package.
    let sign_input = task(&up, "sign-driver-binary")["env"]["WDK_BUILD_SIGNTOOL_SIGN_INPUT_FILE"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        sign_input,
        "${WDK_BUILD_OUTPUT_DIRECTORY}/${CARGO_MAKE_CRATE_FS_NAME}_package/${CARGO_MAKE_CRATE_FS_NAME}.${WDK_BUILD_DRIVER_EXTENSION}"
    );
    let cargo_make = read(&wdk_build_source().join("src/cargo_make.rs"));
    assert!(cargo_make.contains("format!(\"{}_package\", get_current_package_name())"));
    // The makefile link in target\ is a Windows symbolic link (Developer Mode or elevation).
    assert!(cargo_make.contains("std::os::windows::fs::symlink_file"));
    // The output folder is target\<profile> (dev -> debug), below the triple with --target.
    assert!(cargo_make.contains("output_dir += \"/debug\";"));
    // Unsigned images do not load.
    let lib = read(&wdk_build_source().join("src/lib.rs"));
    assert!(lib.contains("cargo::rustc-cdylib-link-arg=/INTEGRITYCHECK"));
    assert!(lib.contains("cargo::rustc-cdylib-link-arg=/MAP"));
}

#[test]
fn the_readme_names_the_real_package_folder() {
    let readme = read(&support::workspace_root().join("README.md"));
    assert!(readme.contains(r"target\debug\wdm_workitem_package\"));
    assert!(readme.contains(r"target\release\wdm_workitem_package\"));
    assert!(
        !readme.contains(r"target\debug\package\") && !readme.contains(r"target\release\package\"),
        "README names a package folder wdk-build does not produce"
    );
    assert!(
        readme.contains(r"wictl install --sys target\debug\wdm_workitem_package\wdm_workitem.sys")
    );
}
