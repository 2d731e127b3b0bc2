//! PE/COFF constants a loader or checker of 64-bit (x64, ARM64) driver images needs (winnt.h
//! names).

pub const IMAGE_DOS_SIGNATURE: u16 = 0x5A4D;
pub const IMAGE_NT_SIGNATURE: u32 = 0x0000_4550;
pub const IMAGE_FILE_MACHINE_AMD64: u16 = 0x8664;
/// `IMAGE_FILE_MACHINE_ARM64`: an `aarch64-pc-windows-msvc` image.
pub const IMAGE_FILE_MACHINE_ARM64: u16 = 0xAA64;
pub const IMAGE_NT_OPTIONAL_HDR64_MAGIC: u16 = 0x20B;
pub const IMAGE_SUBSYSTEM_NATIVE: u16 = 1;

pub const IMAGE_FILE_RELOCS_STRIPPED: u16 = 0x0001;
pub const IMAGE_FILE_EXECUTABLE_IMAGE: u16 = 0x0002;
pub const IMAGE_FILE_DLL: u16 = 0x2000;

pub const IMAGE_DIRECTORY_ENTRY_EXPORT: usize = 0;
pub const IMAGE_DIRECTORY_ENTRY_IMPORT: usize = 1;
pub const IMAGE_DIRECTORY_ENTRY_BASERELOC: usize = 5;

pub const IMAGE_SCN_CNT_CODE: u32 = 0x0000_0020;
pub const IMAGE_SCN_CNT_INITIALIZED_DATA: u32 = 0x0000_0040;
pub const IMAGE_SCN_CNT_UNINITIALIZED_DATA: u32 = 0x0000_0080;
pub const IMAGE_SCN_MEM_DISCARDABLE: u32 = 0x0200_0000;
pub const IMAGE_SCN_MEM_NOT_PAGED: u32 = 0x0800_0000;
pub const IMAGE_SCN_MEM_EXECUTE: u32 = 0x2000_0000;
pub const IMAGE_SCN_MEM_READ: u32 = 0x4000_0000;
pub const IMAGE_SCN_MEM_WRITE: u32 = 0x8000_0000;

pub const IMAGE_REL_BASED_ABSOLUTE: u16 = 0;
pub const IMAGE_REL_BASED_DIR64: u16 = 10;

pub const IMAGE_ORDINAL_FLAG64: u64 = 0x8000_0000_0000_0000;

/// Size of `IMAGE_SECTION_HEADER`.
pub const IMAGE_SIZEOF_SECTION_HEADER: usize = 40;
/// Size of `IMAGE_FILE_HEADER` (the COFF header after the PE signature).
pub const IMAGE_SIZEOF_FILE_HEADER: usize = 20;
/// Size of `IMAGE_IMPORT_DESCRIPTOR`.
pub const IMAGE_SIZEOF_IMPORT_DESCRIPTOR: usize = 20;
/// Offset of `DataDirectory` inside `IMAGE_OPTIONAL_HEADER64`.
pub const OPTIONAL_HEADER64_DATA_DIRECTORY_OFFSET: usize = 112;
