//! The layering rule of the crate docs, checked on the sources: a subsystem never names a
//! subsystem above it (neither `crate::<higher>` nor a `sys.<higher>` / `m.<higher>` field).
const SOURCES: &[(&str, &str, &str)] = &[
    ("mm", "mm/mod.rs", include_str!("mm/mod.rs")),
    ("mm", "mm/user.rs", include_str!("mm/user.rs")),
    ("mm", "mm/paging.rs", include_str!("mm/paging.rs")),
    ("ke", "ke/mod.rs", include_str!("ke/mod.rs")),
    ("ke", "ke/thread.rs", include_str!("ke/thread.rs")),
    ("ke", "ke/bugcheck.rs", include_str!("ke/bugcheck.rs")),
    ("ke", "ke/fault.rs", include_str!("ke/fault.rs")),
    ("ke", "ke/cpu.rs", include_str!("ke/cpu.rs")),
    ("ke", "ke/decode.rs", include_str!("ke/decode.rs")),
    ("ke", "ke/trap.rs", include_str!("ke/trap.rs")),
    ("ke", "ke/except.rs", include_str!("ke/except.rs")),
    ("ke", "ke/kd.rs", include_str!("ke/kd.rs")),
    ("ke", "ke/dispatch.rs", include_str!("ke/dispatch.rs")),
    ("ke", "ke/dpc.rs", include_str!("ke/dpc.rs")),
    ("ke", "ke/timer.rs", include_str!("ke/timer.rs")),
    ("ke", "ke/time.rs", include_str!("ke/time.rs")),
    ("ob", "ob/handle.rs", include_str!("ob/handle.rs")),
    ("ob", "ob/user_event.rs", include_str!("ob/user_event.rs")),
    ("ps", "ps/mod.rs", include_str!("ps/mod.rs")),
    ("ke", "ke/apc.rs", include_str!("ke/apc.rs")),
    ("ke", "ke/spinlock.rs", include_str!("ke/spinlock.rs")),
    ("ex", "ex/fastmutex.rs", include_str!("ex/fastmutex.rs")),
    ("ex", "ex/resource.rs", include_str!("ex/resource.rs")),
    ("ex", "ex/interlocked.rs", include_str!("ex/interlocked.rs")),
    (
        "verifier",
        "verifier/locks.rs",
        include_str!("verifier/locks.rs"),
    ),
    ("ex", "ex/raise.rs", include_str!("ex/raise.rs")),
    ("ex", "ex/mod.rs", include_str!("ex/mod.rs")),
    ("ex", "ex/pool.rs", include_str!("ex/pool.rs")),
    ("ex", "ex/worker.rs", include_str!("ex/worker.rs")),
    ("ob", "ob/mod.rs", include_str!("ob/mod.rs")),
    (
        "verifier",
        "verifier/mod.rs",
        include_str!("verifier/mod.rs"),
    ),
    (
        "verifier",
        "verifier/hooks.rs",
        include_str!("verifier/hooks.rs"),
    ),
    (
        "verifier",
        "verifier/deadlock.rs",
        include_str!("verifier/deadlock.rs"),
    ),
    ("rtl", "rtl/mod.rs", include_str!("rtl/mod.rs")),
    ("rtl", "rtl/unwind.rs", include_str!("rtl/unwind.rs")),
    // rtlcrt
    ("rtl", "rtl/string.rs", include_str!("rtl/string.rs")),
    ("rtl", "rtl/memory.rs", include_str!("rtl/memory.rs")),
    ("rtl", "rtl/crt.rs", include_str!("rtl/crt.rs")),
    ("rtl", "rtl/version.rs", include_str!("rtl/version.rs")),
    (
        "ex",
        "ex/system_routine.rs",
        include_str!("ex/system_routine.rs"),
    ),
    ("ex", "ex/rtl_pool.rs", include_str!("ex/rtl_pool.rs")),
];

/// Subsystems a layer must not name.
fn forbidden(layer: &str) -> &'static [&'static str] {
    match layer {
        "mm" => &["ke", "ex", "ob", "io", "dbg", "ps"],
        "ke" => &["ex", "ob", "io", "dbg", "ps"],
        "ex" | "ob" => &["io", "dbg", "ps"],
        "ps" => &["io", "dbg"],
        "verifier" | "rtl" => &["mm", "ke", "ex", "ob", "io", "dbg", "ps"],
        _ => &[],
    }
}

fn violations(layer: &str, text: &str) -> Vec<String> {
    let mut v = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for up in forbidden(layer) {
            for pat in [
                format!("crate::{up}"),
                format!("sys.{up}."),
                format!("m.{up}."),
            ] {
                if code.contains(&pat) {
                    v.push(format!("line {}: `{pat}` in {}", n + 1, line.trim()));
                }
            }
        }
    }
    v
}

#[test]
fn lower_layers_never_name_higher_ones() {
    let mut bad = Vec::new();
    for (layer, file, text) in SOURCES {
        for e in violations(layer, text) {
            bad.push(format!("{file} ({layer}): {e}"));
        }
    }
    assert!(bad.is_empty(), "layering violations:\n{}", bad.join("\n"));
}

#[test]
fn the_check_finds_an_upward_reference() {
    assert_eq!(
        violations(
            "ex",
            "use crate::io::workitem::Item;\nlet x = sys.io.items;"
        )
        .len(),
        2
    );
    assert!(violations("io", "use crate::ex::pool;").is_empty());
    assert_eq!(
        violations("mm", "    m.ke.bug  // m.io. in a comment").len(),
        1
    );
}
