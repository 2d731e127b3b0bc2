//! Editing a copy of a built image for the negative tests. Shared by `artifact.rs` and
//! `arm64.rs`.

use sys_check::{Image, pe};

/// Makes the `.text` section of `data` (whose parse is `img`) writable, in its section header's
/// `Characteristics` (offset 36); returns the new characteristics.
pub fn make_text_writable(data: &mut [u8], img: &Image) -> u32 {
    let text = img
        .sections
        .iter()
        .find(|s| s.name == ".text")
        .expect(".text");
    let ch = text.characteristics | pe::IMAGE_SCN_MEM_WRITE;
    let at = text.header_offset + 36;
    data[at..at + 4].copy_from_slice(&ch.to_le_bytes());
    ch
}
