//! A small, bounds-checked PE32+ reader: headers, sections, imports, exports — just what the
//! artifact checks need. Every read goes through [`Bytes`], so a truncated or corrupt file is an
//! [`Error`], never a panic.

use std::fmt;

pub const IMAGE_FILE_MACHINE_AMD64: u16 = 0x8664;
pub const PE32_MAGIC: u16 = 0x10B;
pub const PE32_PLUS_MAGIC: u16 = 0x20B;
pub const IMAGE_SUBSYSTEM_NATIVE: u16 = 1;
pub const IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE: u16 = 0x0040;
pub const IMAGE_DLLCHARACTERISTICS_NX_COMPAT: u16 = 0x0100;
/// `/INTEGRITYCHECK`: the loader requires a valid signature.
pub const IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY: u16 = 0x0080;
pub const DIR_SECURITY: usize = 4;
pub const IMAGE_SCN_CNT_CODE: u32 = 0x0000_0020;
pub const IMAGE_SCN_MEM_EXECUTE: u32 = 0x2000_0000;
pub const IMAGE_SCN_MEM_WRITE: u32 = 0x8000_0000;
pub const DIR_EXPORT: usize = 0;
pub const DIR_IMPORT: usize = 1;
pub const DIR_TLS: usize = 9;
pub const DIR_DELAY_IMPORT: usize = 13;

/// Offsets inside the optional header (PE32+).
pub const OPT_MAGIC: usize = 0;
pub const OPT_ENTRY: usize = 16;
pub const OPT_IMAGE_BASE: usize = 24;
pub const OPT_CHECKSUM: usize = 64;
pub const OPT_SUBSYSTEM: usize = 68;
pub const OPT_DLL_CHARACTERISTICS: usize = 70;
pub const OPT_NUMBER_OF_RVA_AND_SIZES: usize = 108;
pub const OPT_DATA_DIRECTORIES: usize = 112;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed PE: {}", self.0)
    }
}

impl std::error::Error for Error {}

fn bad<T>(msg: impl Into<String>) -> Result<T, Error> {
    Err(Error(msg.into()))
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn slice(&self, off: usize, len: usize) -> Result<&[u8], Error> {
        off.checked_add(len)
            .and_then(|end| self.0.get(off..end))
            .ok_or_else(|| {
                Error(format!(
                    "read of {len} bytes at file offset {off:#x} is past the end"
                ))
            })
    }
    fn u16(&self, off: usize) -> Result<u16, Error> {
        let b = self.slice(off, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, off: usize) -> Result<u32, Error> {
        let b = self.slice(off, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&self, off: usize) -> Result<u64, Error> {
        let b = self.slice(off, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn cstr(&self, off: usize) -> Result<String, Error> {
        let rest = self
            .0
            .get(off..)
            .ok_or_else(|| Error(format!("string at {off:#x} is past the end")))?;
        let len = rest
            .iter()
            .position(|&c| c == 0)
            .ok_or_else(|| Error(format!("unterminated string at {off:#x}")))?;
        Ok(String::from_utf8_lossy(&rest[..len]).into_owned())
    }
}

/// The PE image checksum of `data`, whose `CheckSum` field is at `checksum_offset` (ImageHlp's
/// `CheckSumMappedFile`: the file summed as little-endian 16-bit words with end-around carry,
/// the field itself counted as zero, folded to 16 bits, plus the file length). Windows checks it
/// for drivers (and boot-loaded images): see Microsoft's "/RELEASE (Set the Checksum)" page.
pub fn checksum(data: &[u8], checksum_offset: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, pair) in data.chunks(2).enumerate() {
        let at = i * 2;
        if at >= checksum_offset && at < checksum_offset + 4 {
            continue;
        }
        let word = u16::from_le_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u64::from(word);
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum = (sum & 0xFFFF) + (sum >> 16);
    (sum as u32).wrapping_add(data.len() as u32)
}

#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    pub virtual_address: u32,
    pub virtual_size: u32,
    pub raw_offset: u32,
    pub raw_size: u32,
    pub characteristics: u32,
    /// File offset of this section's 40-byte header (for tests that mutate it).
    pub header_offset: usize,
}

impl Section {
    pub fn is_executable(&self) -> bool {
        self.characteristics & (IMAGE_SCN_MEM_EXECUTE | IMAGE_SCN_CNT_CODE) != 0
    }
    pub fn is_writable(&self) -> bool {
        self.characteristics & IMAGE_SCN_MEM_WRITE != 0
    }
    pub fn contains_rva(&self, rva: u32) -> bool {
        let size = self.virtual_size.max(self.raw_size);
        rva >= self.virtual_address && rva - self.virtual_address < size
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportName {
    Name(String),
    Ordinal(u16),
}

#[derive(Debug, Clone)]
pub struct ImportedDll {
    pub dll: String,
    pub functions: Vec<ImportName>,
}

#[derive(Debug, Clone)]
pub struct Export {
    pub name: String,
    pub rva: u32,
}

/// The parsed image. Offsets of header fields are kept so tests can mutate copies precisely.
#[derive(Debug, Clone)]
pub struct Image {
    pub machine: u16,
    pub file_characteristics: u16,
    pub optional_magic: u16,
    /// File offset of the optional header.
    pub optional_header_offset: usize,
    pub entry_rva: u32,
    pub image_base: u64,
    pub subsystem: u16,
    pub dll_characteristics: u16,
    /// The optional header's `CheckSum` field.
    pub checksum: u32,
    /// `(rva, size)` per data directory.
    pub directories: Vec<(u32, u32)>,
    pub sections: Vec<Section>,
    pub imports: Vec<ImportedDll>,
    pub exports: Vec<Export>,
}

impl Image {
    pub fn parse(data: &[u8]) -> Result<Image, Error> {
        let b = Bytes(data);
        if b.slice(0, 2)? != b"MZ" {
            return bad("no MZ signature");
        }
        let pe = b.u32(0x3C)? as usize;
        if b.slice(pe, 4)? != b"PE\0\0" {
            return bad(format!("no PE signature at {pe:#x}"));
        }
        let coff = pe + 4;
        let machine = b.u16(coff)?;
        let nsections = b.u16(coff + 2)? as usize;
        let opt_size = b.u16(coff + 16)? as usize;
        let file_characteristics = b.u16(coff + 18)?;
        let opt = coff + 20;
        let optional_magic = b.u16(opt + OPT_MAGIC)?;
        let mut img = Image {
            machine,
            file_characteristics,
            optional_magic,
            optional_header_offset: opt,
            entry_rva: 0,
            image_base: 0,
            subsystem: 0,
            dll_characteristics: 0,
            checksum: 0,
            directories: Vec::new(),
            sections: Vec::new(),
            imports: Vec::new(),
            exports: Vec::new(),
        };
        if optional_magic != PE32_PLUS_MAGIC {
            // Nothing below is laid out the same for PE32; the checker reports the magic.
            return Ok(img);
        }
        img.entry_rva = b.u32(opt + OPT_ENTRY)?;
        img.image_base = b.u64(opt + OPT_IMAGE_BASE)?;
        img.subsystem = b.u16(opt + OPT_SUBSYSTEM)?;
        img.dll_characteristics = b.u16(opt + OPT_DLL_CHARACTERISTICS)?;
        img.checksum = b.u32(opt + OPT_CHECKSUM)?;
        let ndirs = (b.u32(opt + OPT_NUMBER_OF_RVA_AND_SIZES)? as usize).min(16);
        if OPT_DATA_DIRECTORIES + ndirs * 8 > opt_size {
            return bad("data directories overflow the optional header");
        }
        for i in 0..ndirs {
            let d = opt + OPT_DATA_DIRECTORIES + i * 8;
            img.directories.push((b.u32(d)?, b.u32(d + 4)?));
        }
        let sec0 = opt + opt_size;
        for i in 0..nsections {
            let h = sec0 + i * 40;
            let raw_name = b.slice(h, 8)?;
            let name_len = raw_name.iter().position(|&c| c == 0).unwrap_or(8);
            img.sections.push(Section {
                name: String::from_utf8_lossy(&raw_name[..name_len]).into_owned(),
                virtual_size: b.u32(h + 8)?,
                virtual_address: b.u32(h + 12)?,
                raw_size: b.u32(h + 16)?,
                raw_offset: b.u32(h + 20)?,
                characteristics: b.u32(h + 36)?,
                header_offset: h,
            });
        }
        img.imports = img.parse_imports(&b)?;
        img.exports = img.parse_exports(&b)?;
        Ok(img)
    }

    pub fn directory(&self, index: usize) -> (u32, u32) {
        self.directories.get(index).copied().unwrap_or((0, 0))
    }

    pub fn section_of_rva(&self, rva: u32) -> Option<&Section> {
        self.sections.iter().find(|s| s.contains_rva(rva))
    }

    /// File offset of an RVA that has raw bytes.
    pub fn rva_to_offset(&self, rva: u32) -> Result<usize, Error> {
        let s = self
            .section_of_rva(rva)
            .ok_or_else(|| Error(format!("RVA {rva:#x} is in no section")))?;
        let delta = rva - s.virtual_address;
        if delta >= s.raw_size {
            return bad(format!(
                "RVA {rva:#x} is in the zero-filled part of {}",
                s.name
            ));
        }
        Ok(s.raw_offset as usize + delta as usize)
    }

    fn parse_imports(&self, b: &Bytes<'_>) -> Result<Vec<ImportedDll>, Error> {
        let (rva, size) = self.directory(DIR_IMPORT);
        if rva == 0 || size == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut desc = self.rva_to_offset(rva)?;
        loop {
            let lookup = b.u32(desc)?;
            let name_rva = b.u32(desc + 12)?;
            let iat = b.u32(desc + 16)?;
            if lookup == 0 && name_rva == 0 && iat == 0 {
                break;
            }
            let dll = b.cstr(self.rva_to_offset(name_rva)?)?;
            let mut functions = Vec::new();
            let mut thunk = self.rva_to_offset(if lookup != 0 { lookup } else { iat })?;
            loop {
                let t = b.u64(thunk)?;
                if t == 0 {
                    break;
                }
                if t & (1 << 63) != 0 {
                    functions.push(ImportName::Ordinal(t as u16));
                } else {
                    let hint_name = self.rva_to_offset(t as u32)?;
                    functions.push(ImportName::Name(b.cstr(hint_name + 2)?));
                }
                thunk += 8;
                if functions.len() > 100_000 {
                    return bad("unterminated import thunk list");
                }
            }
            out.push(ImportedDll { dll, functions });
            desc += 20;
            if out.len() > 10_000 {
                return bad("unterminated import descriptor list");
            }
        }
        Ok(out)
    }

    fn parse_exports(&self, b: &Bytes<'_>) -> Result<Vec<Export>, Error> {
        let (rva, size) = self.directory(DIR_EXPORT);
        if rva == 0 || size == 0 {
            return Ok(Vec::new());
        }
        let dir = self.rva_to_offset(rva)?;
        let nfunctions = b.u32(dir + 20)?;
        let nnames = b.u32(dir + 24)? as usize;
        let functions = b.u32(dir + 28)?;
        let names = b.u32(dir + 32)?;
        let ordinals = b.u32(dir + 36)?;
        let mut out = Vec::new();
        for i in 0..nnames {
            let name_rva = b.u32(self.rva_to_offset(names)? + i * 4)?;
            let index = b.u16(self.rva_to_offset(ordinals)? + i * 2)? as u32;
            if index >= nfunctions {
                return bad(format!(
                    "export #{i} has function index {index} >= {nfunctions}"
                ));
            }
            let f = b.u32(self.rva_to_offset(functions)? + index as usize * 4)?;
            out.push(Export {
                name: b.cstr(self.rva_to_offset(name_rva)?)?,
                rva: f,
            });
        }
        Ok(out)
    }
}
