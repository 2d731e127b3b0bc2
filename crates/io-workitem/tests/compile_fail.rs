//! Misuse that must not compile. Each file under `tests/ui/` is one misuse; trybuild checks
//! that it fails to build with the expected error (`.stderr` beside it). Regenerate the
//! expectations after a compiler upgrade with `TRYBUILD=overwrite cargo test -p io-workitem
//! --test compile_fail` and review the diff.
#![cfg(not(loom))]

#[test]
fn misuse_does_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
