//! PE loader for x64 NATIVE images: map SizeOfImage, copy sections, zero-fill, apply DIR64
//! relocations, bind imports by name to ntsim's exports (through caller-recording stubs), set
//! per-section protections. Nothing in the image runs before every check has passed.
use std::fmt;
use std::path::Path;

use nt_abi::pe::*;

use crate::mm::{self, PAGE_SIZE, Prot};

pub mod imports;

/// Why an image was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    Io(String),
    Malformed(String),
    /// `Machine` is not AMD64.
    NotX64(u16),
    /// `Subsystem` is not NATIVE.
    NotNative(u16),
    /// Imports ntsim does not emulate: every one, as `DLL!Name`.
    MissingImports(Vec<String>),
    Map(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "cannot read image: {e}"),
            LoadError::Malformed(e) => write!(f, "malformed PE image: {e}"),
            LoadError::NotX64(m) => {
                write!(
                    f,
                    "not an x64 image (Machine = {m:#06x}, expected {:#06x})",
                    nt_abi::pe::IMAGE_FILE_MACHINE_AMD64
                )
            }
            LoadError::NotNative(s) => {
                write!(
                    f,
                    "not a kernel driver (Subsystem = {s}, expected 1 = NATIVE)"
                )
            }
            LoadError::MissingImports(v) => {
                // Data exports (variables) are named as data, not functions (nt-abi's list).
                let is_data = |full: &String| {
                    full.rsplit('!')
                        .next()
                        .is_some_and(nt_abi::imports::data::is_data)
                };
                let (data, funcs): (Vec<&String>, Vec<&String>) =
                    v.iter().partition(|n| is_data(n));
                let join =
                    |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                match (funcs.is_empty(), data.is_empty()) {
                    (false, true) => write!(
                        f,
                        "the image imports {} function(s) ntsim does not emulate: {}",
                        funcs.len(),
                        join(&funcs)
                    ),
                    (true, false) => write!(
                        f,
                        "the image imports {} data export(s) (variables) ntsim does not emulate: {}",
                        data.len(),
                        join(&data)
                    ),
                    _ => write!(
                        f,
                        "the image imports {} function(s) and {} data export(s) (variables) ntsim does not emulate: functions {}; data {}",
                        funcs.len(),
                        data.len(),
                        join(&funcs),
                        join(&data)
                    ),
                }
            }
            LoadError::Map(e) => write!(f, "cannot map image: {e}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// A section of a mapped image.
#[derive(Clone, Debug)]
pub struct Section {
    pub name: String,
    pub start: usize,
    pub size: usize,
    pub characteristics: u32,
}

/// A mapped driver image.
#[derive(Debug)]
pub struct Image {
    /// File name, e.g. `wdm_workitem.sys`.
    pub name: String,
    pub base: usize,
    pub size: usize,
    pub entry: usize,
    pub sections: Vec<Section>,
    /// Bound imports, `DLL!Name`.
    pub imports: Vec<String>,
    pub relocations_applied: usize,
}

/// Largest image file ntsim reads, and largest `SizeOfImage` it maps: 256 MiB. Windows sets no
/// documented limit below the format's 4 GiB, but real drivers are far smaller (ntoskrnl.exe
/// itself is about 12 MiB); the bound keeps a wrong path (a disk image, `/dev/zero`) from being
/// read into memory whole.
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// Read a driver file: refuse anything that is not a regular file, or is larger than
/// [`MAX_IMAGE_BYTES`], before reading a byte (a FIFO, a device, `/dev/zero`, a directory).
pub fn read_image_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    let io = |e: std::io::Error| LoadError::Io(format!("{}: {e}", path.display()));
    let check = |md: &std::fs::Metadata| -> Result<(), LoadError> {
        if !md.is_file() {
            let ft = md.file_type();
            let kind = if ft.is_dir() {
                "a directory"
            } else {
                use std::os::unix::fs::FileTypeExt;
                if ft.is_fifo() {
                    "a FIFO"
                } else if ft.is_char_device() || ft.is_block_device() {
                    "a device"
                } else if ft.is_socket() {
                    "a socket"
                } else {
                    "not a regular file"
                }
            };
            return Err(LoadError::Io(format!(
                "{}: is {kind}, not a regular file; give the path of a driver .sys file",
                path.display()
            )));
        }
        if md.len() > MAX_IMAGE_BYTES {
            return Err(LoadError::Io(format!(
                "{}: the file is {} bytes, larger than any driver image ntsim loads ({} MiB)",
                path.display(),
                md.len(),
                MAX_IMAGE_BYTES >> 20
            )));
        }
        Ok(())
    };
    // Check the path before opening it (opening a FIFO would block), then the opened file
    // (the path may have been replaced in between), and never read more than the bound.
    check(&std::fs::metadata(path).map_err(io)?)?;
    let f = std::fs::File::open(path).map_err(io)?;
    let md = f.metadata().map_err(io)?;
    check(&md)?;
    let mut buf = Vec::with_capacity(md.len() as usize);
    f.take(MAX_IMAGE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_IMAGE_BYTES {
        return Err(LoadError::Io(format!(
            "{}: the file grew past {} MiB while it was read",
            path.display(),
            MAX_IMAGE_BYTES >> 20
        )));
    }
    Ok(buf)
}

fn bad<T>(msg: impl Into<String>) -> Result<T, LoadError> {
    Err(LoadError::Malformed(msg.into()))
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes(&self, off: usize, len: usize) -> Result<&[u8], LoadError> {
        match off.checked_add(len) {
            Some(end) if end <= self.0.len() => Ok(&self.0[off..end]),
            _ => bad(format!(
                "read of {len} bytes at {off:#x} is past the end of the file"
            )),
        }
    }
    fn u16(&self, off: usize) -> Result<u16, LoadError> {
        Ok(u16::from_le_bytes(
            self.bytes(off, 2)?.try_into().expect("2"),
        ))
    }
    fn u32(&self, off: usize) -> Result<u32, LoadError> {
        Ok(u32::from_le_bytes(
            self.bytes(off, 4)?.try_into().expect("4"),
        ))
    }
    fn u64(&self, off: usize) -> Result<u64, LoadError> {
        Ok(u64::from_le_bytes(
            self.bytes(off, 8)?.try_into().expect("8"),
        ))
    }
}

/// Parsed headers.
#[derive(Debug)]
pub struct Headers {
    pub characteristics: u16,
    pub entry_rva: u32,
    pub image_base: u64,
    pub size_of_image: u32,
    pub size_of_headers: u32,
    pub section_alignment: u32,
    pub dirs: Vec<(u32, u32)>,
    /// (name, rva, virtual size, raw offset, raw size, characteristics)
    pub sections: Vec<(String, u32, u32, u32, u32, u32)>,
}

/// Parse and validate the headers of a PE file.
pub fn parse_headers(file: &[u8]) -> Result<Headers, LoadError> {
    let r = Reader(file);
    if r.u16(0)? != IMAGE_DOS_SIGNATURE {
        return bad("no MZ signature");
    }
    let nt = r.u32(0x3C)? as usize;
    if r.u32(nt)? != IMAGE_NT_SIGNATURE {
        return bad("no PE signature");
    }
    let fh = nt + 4;
    let machine = r.u16(fh)?;
    if machine != IMAGE_FILE_MACHINE_AMD64 {
        return Err(LoadError::NotX64(machine));
    }
    let nsec = r.u16(fh + 2)? as usize;
    let opt_size = r.u16(fh + 16)? as usize;
    let characteristics = r.u16(fh + 18)?;
    let oh = fh + IMAGE_SIZEOF_FILE_HEADER;
    if r.u16(oh)? != IMAGE_NT_OPTIONAL_HDR64_MAGIC {
        return bad("optional header is not PE32+");
    }
    let entry_rva = r.u32(oh + 16)?;
    let image_base = r.u64(oh + 24)?;
    let section_alignment = r.u32(oh + 32)?;
    let size_of_image = r.u32(oh + 56)?;
    let size_of_headers = r.u32(oh + 60)?;
    let subsystem = r.u16(oh + 68)?;
    if subsystem != IMAGE_SUBSYSTEM_NATIVE {
        return Err(LoadError::NotNative(subsystem));
    }
    let ndirs = (r.u32(oh + 108)? as usize).min(16);
    let mut dirs = Vec::new();
    for i in 0..ndirs {
        let off = oh + OPTIONAL_HEADER64_DATA_DIRECTORY_OFFSET + i * 8;
        if off + 8 > oh + opt_size {
            break;
        }
        dirs.push((r.u32(off)?, r.u32(off + 4)?));
    }
    if size_of_image == 0 || size_of_image as u64 > MAX_IMAGE_BYTES {
        return bad(format!("SizeOfImage {size_of_image:#x} is out of range"));
    }
    if (size_of_headers as usize) > file.len() || size_of_headers > size_of_image {
        return bad("SizeOfHeaders is larger than the file or the image");
    }
    let st = oh + opt_size;
    let mut sections = Vec::new();
    for i in 0..nsec {
        let s = st + i * IMAGE_SIZEOF_SECTION_HEADER;
        let raw_name = r.bytes(s, 8)?;
        let name = String::from_utf8_lossy(raw_name)
            .trim_end_matches('\0')
            .to_string();
        let vsize = r.u32(s + 8)?;
        let rva = r.u32(s + 12)?;
        let raw_size = r.u32(s + 16)?;
        let raw_off = r.u32(s + 20)?;
        let ch = r.u32(s + 36)?;
        let span = vsize.max(raw_size) as u64;
        if rva as u64 + span > size_of_image as u64
            && rva as u64 + vsize as u64 > size_of_image as u64
        {
            return bad(format!("section {name} extends past SizeOfImage"));
        }
        if raw_size > 0 && raw_off as u64 + raw_size as u64 > file.len() as u64 {
            return bad(format!(
                "section {name} raw data is past the end of the file"
            ));
        }
        if (rva as usize) < size_of_headers as usize {
            return bad(format!("section {name} overlaps the headers"));
        }
        sections.push((name, rva, vsize, raw_off, raw_size, ch));
    }
    if entry_rva == 0 || entry_rva >= size_of_image {
        return bad("no entry point (DriverEntry)");
    }
    Ok(Headers {
        characteristics,
        entry_rva,
        image_base,
        size_of_image,
        size_of_headers,
        section_alignment,
        dirs,
        sections,
    })
}

fn read_cstr(img: &[u8], rva: usize) -> Result<String, LoadError> {
    let tail = img.get(rva..).ok_or(LoadError::Malformed(format!(
        "name RVA {rva:#x} out of image"
    )))?;
    let end = tail
        .iter()
        .position(|&b| b == 0)
        .ok_or(LoadError::Malformed("unterminated import name".into()))?;
    Ok(String::from_utf8_lossy(&tail[..end]).into_owned())
}

fn rd32(img: &[u8], off: usize) -> Result<u32, LoadError> {
    Reader(img).u32(off)
}
fn rd64(img: &[u8], off: usize) -> Result<u64, LoadError> {
    Reader(img).u64(off)
}

/// What an import name binds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// A function: the IAT slot gets a call-site-recording stub that jumps here.
    Code(usize),
    /// A variable (data export): the IAT slot holds this address, the variable's, itself.
    Data(usize),
}

/// An import thunk to bind: IAT slot offset and the resolved name.
struct Thunk {
    iat: usize,
    name: String,
    target: Option<Binding>,
}

/// Unmaps a half-built image mapping when dropped armed.
struct Unmap(Option<(usize, usize)>);

impl Drop for Unmap {
    fn drop(&mut self) {
        if let Some((base, len)) = self.0 {
            // SAFETY: `base..base + len` is the mapping `load` created for an image it then
            // refused: no code in it ran and no pointer to it was handed out.
            unsafe { libc::munmap(base as *mut libc::c_void, len) };
        }
    }
}

/// Upper bound on the imports of one image (all descriptors together): far above any driver
/// (ours has 31), low enough that a looping import table costs nothing.
pub const MAX_IMPORTS: usize = 16384;

/// The image's sections laid out at their RVAs in a zeroed buffer of `size` bytes (headers
/// first), as the loader maps them, so RVAs can be followed.
fn lay_out(file: &[u8], h: &Headers, size: usize) -> Result<Vec<u8>, LoadError> {
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
    Ok(img)
}

/// Every import of a laid-out image, in import-table order, with the offset of its IAT slot.
/// Refuses an import table that does not terminate, names outside the image, an IAT outside
/// the image, and more than [`MAX_IMPORTS`] imports.
fn walk_imports(img: &[u8], h: &Headers) -> Result<Vec<(imports::ImportName, usize)>, LoadError> {
    let mut out = Vec::new();
    let Some(&(irva, isize_)) = h.dirs.get(IMAGE_DIRECTORY_ENTRY_IMPORT) else {
        return Ok(out);
    };
    if irva == 0 || isize_ == 0 {
        return Ok(out);
    }
    let mut d = irva as usize;
    loop {
        let oft = rd32(img, d)? as usize;
        let name_rva = rd32(img, d + 12)? as usize;
        let ft = rd32(img, d + 16)? as usize;
        if oft == 0 && name_rva == 0 && ft == 0 {
            break;
        }
        let dll = read_cstr(img, name_rva)?;
        let lookup = if oft != 0 { oft } else { ft };
        let mut i = 0usize;
        loop {
            let entry = rd64(img, lookup + i * 8)?;
            if entry == 0 {
                break;
            }
            let name = if entry & IMAGE_ORDINAL_FLAG64 != 0 {
                format!("#{}", entry & 0xFFFF)
            } else {
                read_cstr(img, (entry as usize & 0x7FFF_FFFF) + 2)?
            };
            if ft + i * 8 + 8 > img.len() {
                return bad("import address table is outside the image");
            }
            out.push((
                imports::ImportName {
                    dll: dll.clone(),
                    name,
                },
                ft + i * 8,
            ));
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

/// Load `path` into this process. `resolve` maps an ntoskrnl export name to what it binds to.
pub fn load(
    path: &Path,
    resolve: &dyn Fn(&str) -> Option<Binding>,
    note: usize,
) -> Result<Image, LoadError> {
    let file = read_image_file(path)?;
    let h = parse_headers(&file)?;
    let size = mm::round_up(h.size_of_image as usize, PAGE_SIZE);

    // Build the image in a private buffer first; nothing is mapped executable until all checks
    // (imports included) have passed.
    let mut img = lay_out(&file, &h, size)?;

    // Imports.
    let mut thunks = Vec::new();
    let mut missing = Vec::new();
    let mut bound = Vec::new();
    for (imp, iat) in walk_imports(&img, &h)? {
        let is_nt = imp.dll.eq_ignore_ascii_case("ntoskrnl.exe");
        let full = format!("{}!{}", imp.dll, imp.name);
        let target = if is_nt { resolve(&imp.name) } else { None };
        if target.is_none() {
            missing.push(full.clone());
        }
        bound.push(full);
        thunks.push(Thunk {
            iat,
            name: imp.name,
            target,
        });
    }
    if !missing.is_empty() {
        return Err(LoadError::MissingImports(missing));
    }

    // Relocations: decide where to map.
    let reloc = h
        .dirs
        .get(IMAGE_DIRECTORY_ENTRY_BASERELOC)
        .copied()
        .filter(|&(r, s)| r != 0 && s != 0);
    let stripped = h.characteristics & IMAGE_FILE_RELOCS_STRIPPED != 0;
    let n_stubs = thunks
        .iter()
        .filter(|t| matches!(t.target, Some(Binding::Code(_))))
        .count();
    let stub_bytes_len = mm::round_up(n_stubs.max(1) * mm::STUB_SIZE, PAGE_SIZE);
    let total = size + stub_bytes_len;
    let base = if reloc.is_none() {
        match mm::map_rw(total, Some(h.image_base as usize)) {
            Some(b) => b,
            None if stripped => {
                return Err(LoadError::Map(format!(
                    "relocations are stripped and the preferred base {:#x} is not available",
                    h.image_base
                )));
            }
            // No .reloc but not stripped: the image has no absolute addresses (LLVM emits
            // none when all code is RIP-relative), so any base works.
            None => mm::map_rw(total, None).ok_or(LoadError::Map("mmap failed".into()))?,
        }
    } else {
        mm::map_rw(total, None).ok_or(LoadError::Map("mmap failed".into()))?
    };
    // Until the image is complete, a refusal unmaps it again (nothing in it has run, nothing
    // refers to it): a loader fed many bad images must not accumulate mappings.
    let mut mapping = Unmap(Some((base, total)));
    let delta = (base as u64).wrapping_sub(h.image_base);
    let mut applied = 0;
    if let Some((rrva, rsize)) = reloc {
        let mut off = rrva as usize;
        let end = rrva as usize + rsize as usize;
        while off + 8 <= end {
            let page = rd32(&img, off)? as usize;
            let block = rd32(&img, off + 4)? as usize;
            if block < 8 {
                return bad("relocation block too small");
            }
            for k in 0..(block - 8) / 2 {
                let e = Reader(&img).u16(off + 8 + k * 2)?;
                let ty = e >> 12;
                let at = page + (e & 0xFFF) as usize;
                match ty {
                    IMAGE_REL_BASED_ABSOLUTE => {}
                    IMAGE_REL_BASED_DIR64 => {
                        let v = rd64(&img, at)?.wrapping_add(delta);
                        img[at..at + 8].copy_from_slice(&v.to_le_bytes());
                        applied += 1;
                    }
                    other => return bad(format!("unsupported relocation type {other}")),
                }
            }
            off += block;
        }
    }

    // Stubs and IAT.
    let stubs = base + size;
    let mut i = 0;
    for t in &thunks {
        let slot = match t.target.expect("all imports resolved") {
            Binding::Data(var) => var,
            Binding::Code(target) => {
                let s = stubs + i * mm::STUB_SIZE;
                i += 1;
                let code = mm::stub_bytes(note, target);
                // SAFETY: `s` lies in the stub area of the fresh RW mapping of `total` bytes.
                unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), s as *mut u8, code.len()) };
                s
            }
        };
        img[t.iat..t.iat + 8].copy_from_slice(&(slot as u64).to_le_bytes());
        let _ = &t.name;
    }
    // SAFETY: `base` is a fresh RW mapping of at least `size` bytes; `img` is `size` bytes.
    unsafe { core::ptr::copy_nonoverlapping(img.as_ptr(), base as *mut u8, size) };

    // Protections.
    let mut sections = Vec::new();
    mm::protect(
        base,
        mm::round_up(h.size_of_headers as usize, PAGE_SIZE),
        Prot::R,
    );
    for (name, rva, vsize, _, raw_size, ch) in &h.sections {
        let span = if *vsize == 0 { *raw_size } else { *vsize } as usize;
        let start = base + *rva as usize;
        let len = mm::round_up(span.max(1), PAGE_SIZE);
        let prot = mm::section_prot(*ch);
        if !mm::protect(start, len.min(base + size - start), prot) {
            return Err(LoadError::Map(format!("mprotect of section {name} failed")));
        }
        sections.push(Section {
            name: name.clone(),
            start,
            size: span,
            characteristics: *ch,
        });
    }
    mm::protect(stubs, stub_bytes_len, Prot::Rx);
    mapping.0 = None;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "driver.sys".into());
    Ok(Image {
        name,
        base,
        size,
        entry: base + h.entry_rva as usize,
        sections,
        imports: bound,
        relocations_applied: applied,
    })
}
