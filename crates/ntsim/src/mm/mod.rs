//! Memory manager (the bottom layer; imports no other subsystem): image mappings
//! (mmap/mprotect, used by the loader in `pe`), import stubs, the loaded-module list, and
//! address classification (images and stacks; pool addresses are classified by `ex`, which
//! owns the pool, before it asks here).
use std::cell::Cell;
use std::sync::{Arc, RwLock};

use crate::pe::Image;

pub mod paging;
pub mod special;
pub mod user;

/// The memory manager's state: the loaded-module list (PsLoadedModuleList), special pool and
/// pageable memory.
#[derive(Default)]
pub(crate) struct Mm {
    images: RwLock<Vec<Arc<Image>>>,
    pub(crate) special: special::SpecialPool,
    /// Paged pool and `PAGE*` sections, trimmed under Force IRQL Checking (see [`paging`]).
    pub(crate) paging: paging::Pageable,
    /// The requesting process's buffers (see [`user`]).
    pub(crate) user: user::UserSpace,
}

impl Mm {
    /// `irql_checking`: Driver Verifier's Force IRQL Checking, which trims pageable memory.
    pub(crate) fn new(irql_checking: bool) -> Self {
        Mm {
            paging: paging::Pageable::new(irql_checking),
            ..Mm::default()
        }
    }

    fn images(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Image>>> {
        self.images.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Add a mapped image to the loaded-module list; its `PAGE*` sections are pageable.
    pub(crate) fn add_image(&self, img: Arc<Image>) {
        for s in img.sections.iter().filter(|s| s.name.starts_with("PAGE")) {
            self.paging.register(
                s.start,
                s.size,
                section_prot(s.characteristics),
                paging::PageableKind::ImageSection,
            );
        }
        self.images
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(img);
    }

    /// The loaded image containing `addr`, if any.
    pub(crate) fn image_of(&self, addr: usize) -> Option<Arc<Image>> {
        self.images()
            .iter()
            .find(|i| addr >= i.base && addr < i.base + i.size)
            .cloned()
    }

    /// `image.sys+0x…` for an address inside a loaded image, `host+0x…` otherwise.
    pub(crate) fn describe_address(&self, addr: usize) -> String {
        if addr == 0 {
            return "unknown".to_string();
        }
        for img in self.images().iter() {
            if addr >= img.base && addr < img.base + img.size {
                return format!("{}+{:#x}", img.name, addr - img.base);
            }
        }
        format!("host+{addr:#x}")
    }

    /// Whether `addr` lies in an executable section of a loaded image: the only place a
    /// driver's work routine can be.
    pub(crate) fn is_image_code(&self, addr: usize) -> bool {
        self.images().iter().any(|img| {
            addr >= img.base
                && addr < img.base + img.size
                && img.sections.iter().any(|s| {
                    s.characteristics & nt_abi::pe::IMAGE_SCN_MEM_EXECUTE != 0
                        && addr >= s.start
                        && addr < s.start + s.size
                })
        })
    }

    /// Classify an address that is not pool: an image section, the current thread's stack,
    /// or unknown.
    pub(crate) fn classify(&self, addr: usize) -> MemClass {
        if let Some(img) = self.image_of(addr) {
            let paged = img
                .sections
                .iter()
                .find(|s| addr >= s.start && addr < s.start + s.size)
                .is_some_and(|s| s.name.starts_with("PAGE"));
            return MemClass::Image { paged };
        }
        let (lo, hi) = stack_bounds();
        if addr >= lo && addr < hi {
            return MemClass::Stack;
        }
        MemClass::Unknown
    }
}

/// Page size on x86_64 Linux and Windows.
pub const PAGE_SIZE: usize = 0x1000;

pub fn round_up(v: usize, a: usize) -> usize {
    v.div_ceil(a) * a
}

/// Map `size` bytes of zeroed read-write memory, at `fixed` if given (never replacing a
/// mapping). Returns None on failure.
pub fn map_rw(size: usize, fixed: Option<usize>) -> Option<usize> {
    let (addr, flags) = match fixed {
        Some(a) => (a as *mut libc::c_void, libc::MAP_FIXED_NOREPLACE),
        None => (core::ptr::null_mut(), 0),
    };
    // SAFETY: an anonymous private mapping with no file; MAP_FIXED_NOREPLACE never clobbers an
    // existing mapping, so no Rust-owned memory can be affected.
    let p = unsafe {
        libc::mmap(
            addr,
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    if let Some(a) = fixed
        && p as usize != a
    {
        // SAFETY: `p` is the mapping we just created (an old kernel ignored the hint).
        unsafe { libc::munmap(p, size) };
        return None;
    }
    Some(p as usize)
}

/// Page protection for a mapped range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prot {
    R,
    Rw,
    Rx,
    Rwx,
}

/// The protection the loader gives a section with these characteristics.
pub fn section_prot(characteristics: u32) -> Prot {
    use nt_abi::pe::{IMAGE_SCN_MEM_EXECUTE, IMAGE_SCN_MEM_WRITE};
    match (
        characteristics & IMAGE_SCN_MEM_WRITE != 0,
        characteristics & IMAGE_SCN_MEM_EXECUTE != 0,
    ) {
        (true, true) => Prot::Rwx,
        (false, true) => Prot::Rx,
        (true, false) => Prot::Rw,
        (false, false) => Prot::R,
    }
}

/// Change the protection of a page-aligned range ntsim mapped.
pub fn protect(addr: usize, size: usize, prot: Prot) -> bool {
    let p = match prot {
        Prot::R => libc::PROT_READ,
        Prot::Rw => libc::PROT_READ | libc::PROT_WRITE,
        Prot::Rx => libc::PROT_READ | libc::PROT_EXEC,
        Prot::Rwx => libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
    };
    // SAFETY: callers pass ranges inside a mapping created by `map_rw` that holds no Rust
    // objects, only image bytes and stubs.
    unsafe { libc::mprotect(addr as *mut libc::c_void, size, p) == 0 }
}

/// Size of one import stub.
pub const STUB_SIZE: usize = 64;

/// Write an import stub at `at`: it records the caller's return address (via `note`) then
/// jumps to `target` with all argument registers and the stack untouched.
///
/// ```text
/// push rcx; push rdx; push r8; push r9      ; rsp ≡ 8 (mod 16) after these
/// sub rsp, 0x28                              ; shadow space, rsp ≡ 0 (mod 16)
/// mov rcx, [rsp+0x48]                        ; the return address into the driver
/// call [rip+note]
/// add rsp, 0x28; pop r9; pop r8; pop rdx; pop rcx
/// jmp [rip+target]
/// ```
pub fn stub_bytes(note: usize, target: usize) -> [u8; STUB_SIZE] {
    let mut code: Vec<u8> = vec![
        0x51, 0x52, 0x41, 0x50, 0x41, 0x51, // pushes
        0x48, 0x83, 0xEC, 0x28, // sub rsp, 0x28
        0x48, 0x8B, 0x4C, 0x24, 0x48, // mov rcx, [rsp+0x48]
        0xFF, 0x15, 0, 0, 0, 0, // call [rip+disp32]  (patched)
        0x48, 0x83, 0xC4, 0x28, // add rsp, 0x28
        0x41, 0x59, 0x41, 0x58, 0x5A, 0x59, // pops
        0xFF, 0x25, 0, 0, 0, 0, // jmp [rip+disp32]  (patched)
    ];
    let call_end = 21;
    let jmp_end = code.len();
    while code.len() < 48 {
        code.push(0xCC);
    }
    let note_at = 48usize;
    let target_at = 56usize;
    let d1 = (note_at - call_end) as u32;
    code[17..21].copy_from_slice(&d1.to_le_bytes());
    let d2 = (target_at - jmp_end) as u32;
    code[jmp_end - 4..jmp_end].copy_from_slice(&d2.to_le_bytes());
    code.extend_from_slice(&(note as u64).to_le_bytes());
    code.extend_from_slice(&(target as u64).to_le_bytes());
    let mut out = [0u8; STUB_SIZE];
    out.copy_from_slice(&code);
    out
}

/// Where an address lives, as far as work-item rules care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemClass {
    NonPagedPool {
        block: usize,
        tag: u32,
    },
    PagedPool {
        block: usize,
        tag: u32,
    },
    /// ntsim-owned nonpaged memory: device extensions, IRPs, system buffers…
    SystemNonPaged(&'static str),
    /// A driver image section (`PAGE*` sections are pageable).
    Image {
        paged: bool,
    },
    /// The current thread's stack.
    Stack,
    Unknown,
}

impl MemClass {
    pub fn is_nonpaged(&self) -> bool {
        matches!(
            self,
            MemClass::NonPagedPool { .. }
                | MemClass::SystemNonPaged(_)
                | MemClass::Image { paged: false }
        )
    }
}

thread_local! {
    static STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Whether `addr` lies on the current thread's stack.
pub fn on_current_stack(addr: usize) -> bool {
    let (lo, hi) = stack_bounds();
    addr >= lo && addr < hi
}

/// The current thread's stack range.
pub fn stack_bounds() -> (usize, usize) {
    let cached = STACK.with(Cell::get);
    if cached.1 != 0 {
        return cached;
    }
    let mut attr = core::mem::MaybeUninit::<libc::pthread_attr_t>::zeroed();
    let mut lo: *mut libc::c_void = core::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: pthread_getattr_np fills `attr` for the calling thread; on success we read the
    // stack range out of it and destroy it exactly once.
    let me = unsafe { libc::pthread_self() };
    // SAFETY: as above; `attr` is writable storage for a pthread_attr_t.
    let ok = unsafe { libc::pthread_getattr_np(me, attr.as_mut_ptr()) == 0 };
    if ok {
        // SAFETY: `attr` was initialized by the successful call above.
        let r = unsafe { libc::pthread_attr_getstack(attr.as_ptr(), &mut lo, &mut size) };
        // SAFETY: `attr` was initialized above and is destroyed once.
        unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
        if r == 0 {
            let b = (lo as usize, lo as usize + size);
            STACK.with(|s| s.set(b));
            return b;
        }
    }
    (0, 0)
}
