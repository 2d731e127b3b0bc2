//! Building the C fixture drivers in `fixtures/c/` (shared by the test files that load them).
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/c")
}

/// Build one C fixture (once per test binary); None when the tools are missing and skipping
/// is allowed.
pub fn fixture(name: &'static str) -> Option<PathBuf> {
    static BUILT: OnceLock<
        std::sync::Mutex<std::collections::HashMap<&'static str, Result<PathBuf, String>>>,
    > = OnceLock::new();
    let map = BUILT.get_or_init(Default::default);
    let mut g = map.lock().unwrap_or_else(|e| e.into_inner());
    let r = g
        .entry(name)
        .or_insert_with(|| {
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join("c-fixtures")
                .join(name);
            let src = fixture_dir().join(format!("{name}.c"));
            xbuild::cdriver::build_c_driver(&xbuild::cdriver::CDriver {
                sources: &[src],
                include_dirs: &[fixture_dir()],
                out_dir: &out,
                name,
                opt_level: 1,
            })
            .map_err(|e| e.to_string())
        })
        .clone();
    match r {
        Ok(p) => Some(p),
        Err(e)
            if e.contains("missing Debian package")
                && std::env::var("WDM_ALLOW_SKIP").as_deref() == Ok("1") =>
        {
            eprintln!("SKIPPED: {e} (WDM_ALLOW_SKIP=1)");
            None
        }
        Err(e) => panic!("{e}"),
    }
}
