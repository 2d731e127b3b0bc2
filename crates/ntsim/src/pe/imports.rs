//! Reading an image's import table without mapping or running anything (`ntsim imports`).
use std::path::Path;

use super::{LoadError, lay_out, parse_headers, read_image_file, walk_imports};

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
    let img = lay_out(&file, &h, h.size_of_image as usize)?;
    Ok(walk_imports(&img, &h)?
        .into_iter()
        .map(|(name, _iat)| name)
        .collect())
}
