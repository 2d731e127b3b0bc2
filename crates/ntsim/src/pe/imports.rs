//! Reading an image's import table without mapping or running anything (`ntsim imports`).
use std::path::Path;

use nt_abi::pe::*;

use super::{LoadError, MAX_IMPORTS, bad, parse_headers, rd32, rd64, read_cstr, read_image_file};

/// One imported name: `dll` as the import descriptor spells it, `name` (or `#ordinal`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportName {
    pub dll: String,
    pub name: String,
}

/// Every import of the image at `path`, in import-table order. The same checks as the loader
/// (regular file, size, headers, x64, NATIVE, a terminating import table) come first.
pub fn import_names(path: &Path) -> Result<Vec<ImportName>, LoadError> {
    let file = read_image_file(path)?;
    let h = parse_headers(&file)?;
    // Lay the sections out at their RVAs, as the loader does, so RVAs can be followed.
    let size = h.size_of_image as usize;
    let mut img = vec![0u8; size];
    let hdr = (h.size_of_headers as usize).min(size).min(file.len());
    img[..hdr].copy_from_slice(&file[..hdr]);
    for (name, rva, vsize, raw_off, raw_size, _) in &h.sections {
        let n = (*raw_size).min(if *vsize == 0 { *raw_size } else { *vsize }) as usize;
        let (dst, src) = (*rva as usize, *raw_off as usize);
        if n == 0 {
            continue;
        }
        if dst.checked_add(n).is_none_or(|e| e > size)
            || src.checked_add(n).is_none_or(|e| e > file.len())
        {
            return bad(format!("section {name} does not fit in the image"));
        }
        img[dst..dst + n].copy_from_slice(&file[src..src + n]);
    }
    let mut out = Vec::new();
    let Some(&(irva, isize_)) = h.dirs.get(IMAGE_DIRECTORY_ENTRY_IMPORT) else {
        return Ok(out);
    };
    if irva == 0 || isize_ == 0 {
        return Ok(out);
    }
    let mut d = irva as usize;
    loop {
        let oft = rd32(&img, d)? as usize;
        let name_rva = rd32(&img, d + 12)? as usize;
        let ft = rd32(&img, d + 16)? as usize;
        if oft == 0 && name_rva == 0 && ft == 0 {
            break;
        }
        let dll = read_cstr(&img, name_rva)?;
        let lookup = if oft != 0 { oft } else { ft };
        let mut i = 0usize;
        loop {
            let entry = rd64(&img, lookup + i * 8)?;
            if entry == 0 {
                break;
            }
            let name = if entry & IMAGE_ORDINAL_FLAG64 != 0 {
                format!("#{}", entry & 0xFFFF)
            } else {
                read_cstr(&img, (entry as usize & 0x7FFF_FFFF) + 2)?
            };
            out.push(ImportName {
                dll: dll.clone(),
                name,
            });
            i += 1;
            if out.len() > MAX_IMPORTS {
                return bad(format!(
                    "more than {MAX_IMPORTS} imports (an import table that does not terminate?)"
                ));
            }
        }
        d += IMAGE_SIZEOF_IMPORT_DESCRIPTOR;
        if d > img.len() {
            return bad("import directory does not terminate");
        }
    }
    Ok(out)
}
