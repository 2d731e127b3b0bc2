//! Loader defects the PE fuzz pointed at, each pinned by a test that fails without its fix.
mod cli_support;

use cli_support::*;
use ntsim::{Config, LoadError, Machine};

/// Bytes of address space mapped by this process (`VmSize`).
fn mapped_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmSize");
    kb * 1024
}

/// The wdm_workitem.sys relocation block, with its first entry's type set to `ty`.
fn with_reloc_type(name: &str, ty: u16) -> std::path::PathBuf {
    patched(name, |b| {
        let rd32 = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let oh = rd32(b, 0x3C) as usize + 24;
        let reloc_rva = rd32(b, oh + 112 + 5 * 8);
        let nsec = u16::from_le_bytes(b[oh - 20 + 2..oh - 20 + 4].try_into().unwrap()) as usize;
        let opt = u16::from_le_bytes(b[oh - 20 + 16..oh - 20 + 18].try_into().unwrap()) as usize;
        let raw = (0..nsec)
            .map(|i| oh + opt + i * 40)
            .find(|&s| rd32(b, s + 12) == reloc_rva)
            .map(|s| rd32(b, s + 20) as usize)
            .expect(".reloc");
        let e = u16::from_le_bytes(b[raw + 8..raw + 10].try_into().unwrap());
        b[raw + 8..raw + 10].copy_from_slice(&((ty << 12) | (e & 0xFFF)).to_le_bytes());
    })
}

#[test]
fn a_refused_image_leaves_no_mapping_behind() {
    // The relocation pass runs after the image is mapped: a refusal there used to leak the
    // mapping (a long-lived host fed bad images grew without bound).
    let bad = with_reloc_type("bad-reloc-type.sys", 5);
    let m = Machine::new(Config::default());
    match m.load_driver(&bad) {
        Err(LoadError::Malformed(e)) => assert!(e.contains("relocation type 5"), "{e}"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    let before = mapped_bytes();
    for _ in 0..200 {
        assert!(m.load_driver(&bad).is_err());
    }
    let grown = mapped_bytes().saturating_sub(before);
    // Each leaked image is at least 7 pages (28 KiB): 200 of them would be 5.6 MB.
    assert!(
        grown < 1 << 20,
        "200 refused images left {grown} bytes mapped"
    );
    // A good image still loads after all that.
    assert!(m.load_driver(wdm_sys()).is_ok());
}
