//! Independent cross-check of nt-abi's lock and list layouts (`nt_abi::locks`) against
//! mingw-w64's DDK headers, compiled by `x86_64-w64-mingw32-gcc`: every number in the generated
//! C is what rustc computes for nt-abi's types, so the check is "Rust layout == mingw layout".
//! A missing compiler FAILS naming the package, unless `WDM_ALLOW_SKIP=1`.

use core::mem::{offset_of, size_of};
use std::process::Command;

use nt_abi::*;

const CC: &str = "x86_64-w64-mingw32-gcc";

macro_rules! facts {
    (sizes: [$(($t:ident, $size:expr)),* $(,)?], offsets: [$(($ot:ident, $f:ident, $off:expr)),* $(,)?],) => {
        fn table_facts() -> Vec<(String, String, usize)> {
            let mut v = Vec::new();
            $(
                assert_eq!(size_of::<$t>(), $size);
                v.push((concat!("sizeof ", stringify!($t)).to_string(),
                        concat!("sizeof(", stringify!($t), ")").to_string(), size_of::<$t>()));
            )*
            $(
                assert_eq!(offset_of!($ot, $f), $off);
                v.push((concat!("offsetof ", stringify!($ot), ".", stringify!($f)).to_string(),
                        concat!("offsetof(", stringify!($ot), ", ", stringify!($f), ")").to_string(),
                        offset_of!($ot, $f)));
            )*
            v
        }
    };
}
nt_abi::for_each_locks_layout_fact!(facts);

fn all_facts() -> Vec<(String, String, usize)> {
    let mut v = table_facts();
    v.push((
        "offsetof OWNER_ENTRY.TableSize".into(),
        "offsetof(OWNER_ENTRY, TableSize)".into(),
        offset_of!(OWNER_ENTRY, OwnerCount),
    ));
    for (name, value) in [
        ("FM_LOCK_BIT", FM_LOCK_BIT as usize),
        ("FM_LOCK_BIT_V", FM_LOCK_BIT_V as usize),
        ("GM_LOCK_BIT", GM_LOCK_BIT as usize),
        ("ResourceNeverExclusive", RESOURCE_NEVER_EXCLUSIVE as usize),
        (
            "ResourceReleaseByOtherThread",
            RESOURCE_RELEASE_BY_OTHER_THREAD as usize,
        ),
    ] {
        v.push((format!("value {name}"), name.to_string(), value));
    }
    v
}

fn check(name: &str, facts: &[(String, String, usize)]) -> Result<(), String> {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mingw_locks_layouts");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let c = dir.join(format!("{name}.c"));
    let mut src = String::from("#include <stddef.h>\n#include <ddk/ntddk.h>\n");
    for (label, expr, value) in facts {
        src.push_str(&format!(
            "_Static_assert((long long)({expr}) == {value:#x}LL, \"{label}\");\n"
        ));
    }
    std::fs::write(&c, src).expect("write C");
    let out = match Command::new(CC)
        .args(["-std=c11", "-fsyntax-only", "-fmax-errors=0", "-w"])
        .arg("-I/usr/share/mingw-w64/include/ddk")
        .arg(&c)
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var("WDM_ALLOW_SKIP").as_deref() == Ok("1") {
                eprintln!("SKIPPED: {CC} not found (WDM_ALLOW_SKIP=1)");
                return Ok(());
            }
            panic!(
                "{CC} not found: install the Debian package `mingw-w64` (cargo xtask test does)"
            );
        }
        Err(e) => panic!("cannot run {CC}: {e}"),
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn lock_layouts_match_mingw_ddk_headers() {
    let facts = all_facts();
    assert!(facts.len() > 30, "{} facts", facts.len());
    if let Err(e) = check("positive", &facts) {
        panic!("nt-abi's lock layouts disagree with mingw-w64:\n{e}");
    }
}

/// The check can fail: a wrong offset is rejected by the compiler.
#[test]
fn a_wrong_lock_layout_is_caught() {
    let bad = vec![(
        "offsetof ERESOURCE.SpinLock (wrong)".to_string(),
        "offsetof(ERESOURCE, SpinLock)".to_string(),
        offset_of!(ERESOURCE, SpinLock) + 8,
    )];
    if which_cc() {
        let e = check("negative", &bad).expect_err("a wrong offset must not pass");
        assert!(e.contains("ERESOURCE.SpinLock (wrong)"), "{e}");
    }
}

fn which_cc() -> bool {
    Command::new(CC).arg("--version").output().is_ok()
}
