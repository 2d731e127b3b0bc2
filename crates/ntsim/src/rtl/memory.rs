//! Rtl memory routines, `RtlRandomEx`, and bitmaps (`RTL_BITMAP`).
//!
//! Microsoft (`learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-<name>`):
//! RtlCompareMemory (bytes that match before the first difference), RtlCompareMemoryUlong
//! (ntddk: bytes of the ULONG-stepped prefix equal to Pattern; Length rounded down to a multiple
//! of 4, ReactOS), RtlMoveMemory / RtlFillMemory / RtlZeroMemory (macros over memmove/memset in
//! wdm.h, but ntoskrnl.exe exports them too — Wine's ntoskrnl.exe.spec — for callers that do
//! not use the macros; `RtlCopyMemory` is only a macro for memcpy on x64), RtlRandomEx
//! (ntddk: a value in [0, MAXLONG), updating *Seed; ntsim uses the linear congruential step of
//! ReactOS' RtlUniform, so the numbers differ from Windows'), and the bitmap routines
//! RtlInitializeBitMap, RtlClearAllBits, RtlSetAllBits, RtlSetBits, RtlClearBits, RtlTestBit,
//! RtlFindClearBits, RtlFindSetBits, RtlFindClearBitsAndSet, RtlFindSetBitsAndClear,
//! RtlNumberOfSetBits, RtlNumberOfClearBits, RtlAreBitsSet, RtlAreBitsClear. Bit n is bit
//! n % 32 of ULONG n / 32 (so byte n / 8, bit n % 8, on little-endian x64). The searches start
//! at HintIndex (0 when it is past the end), wrap around to 0, and return 0xFFFFFFFF when no run
//! exists; a search for 0 bits returns 0. Like Windows, ranges past SizeOfBitMap are the
//! caller's bug: they are not checked (the write lands past the buffer, where special pool
//! catches it).
#![allow(non_snake_case)]

use nt_abi::rtl::RTL_BITMAP;
use nt_abi::*;

/// `RtlCompareMemory`: the number of leading bytes that are equal.
///
/// # Safety
/// Both ranges readable for `Length` bytes.
pub unsafe extern "win64" fn RtlCompareMemory(
    Source1: *const core::ffi::c_void,
    Source2: *const core::ffi::c_void,
    Length: SIZE_T,
) -> SIZE_T {
    let (a, b) = (Source1 as *const u8, Source2 as *const u8);
    let mut i = 0;
    while i < Length {
        // SAFETY: both ranges are readable for Length bytes per the contract.
        let x = unsafe { a.wrapping_add(i).read() };
        // SAFETY: as above.
        let y = unsafe { b.wrapping_add(i).read() };
        if x != y {
            break;
        }
        i += 1;
    }
    i
}

/// `RtlCompareMemoryUlong`.
///
/// # Safety
/// `Source` readable for `Length` bytes.
pub unsafe extern "win64" fn RtlCompareMemoryUlong(
    Source: PVOID,
    Length: SIZE_T,
    Pattern: ULONG,
) -> SIZE_T {
    let p = Source as *const u32;
    let mut n = 0;
    // SAFETY: within the Length bytes the caller passed (rounded down to whole ULONGs).
    while n < Length / 4 && unsafe { p.wrapping_add(n).read_unaligned() } == Pattern {
        n += 1;
    }
    n * 4
}

/// `RtlMoveMemory`: overlapping ranges allowed.
///
/// # Safety
/// Ranges valid for `Length` bytes.
pub unsafe extern "win64" fn RtlMoveMemory(
    Destination: PVOID,
    Source: *const core::ffi::c_void,
    Length: SIZE_T,
) {
    // SAFETY: per the contract; `copy` handles overlap.
    unsafe { core::ptr::copy(Source as *const u8, Destination as *mut u8, Length) };
}

/// `RtlFillMemory(Destination, Length, Fill)`.
///
/// # Safety
/// `Destination` writable for `Length` bytes.
pub unsafe extern "win64" fn RtlFillMemory(Destination: PVOID, Length: SIZE_T, Fill: UCHAR) {
    // SAFETY: per the contract.
    unsafe { core::ptr::write_bytes(Destination as *mut u8, Fill, Length) };
}

/// `RtlZeroMemory(Destination, Length)`.
///
/// # Safety
/// `Destination` writable for `Length` bytes.
pub unsafe extern "win64" fn RtlZeroMemory(Destination: PVOID, Length: SIZE_T) {
    // SAFETY: per the contract.
    unsafe { core::ptr::write_bytes(Destination as *mut u8, 0, Length) };
}

/// `RtlRandomEx`: the next value of *Seed's sequence, in [0, 0x7FFFFFFF).
///
/// # Safety
/// `Seed` readable and writable.
pub unsafe extern "win64" fn RtlRandomEx(Seed: *mut ULONG) -> ULONG {
    // SAFETY: per the contract.
    let s = unsafe { Seed.read_unaligned() } as u64;
    let next = ((s * 0x7FFF_FFED + 0x7FFF_FFC3) % 0x7FFF_FFFF) as u32;
    // SAFETY: per the contract.
    unsafe { Seed.write_unaligned(next) };
    next
}

/// A bitmap as the header describes it.
struct Bits {
    bytes: *mut u8,
    size: u32,
}

impl Bits {
    /// # Safety
    /// `h` must be a valid RTL_BITMAP header.
    unsafe fn of(h: *mut RTL_BITMAP) -> Bits {
        // SAFETY: per the contract.
        let b = unsafe { h.read_unaligned() };
        Bits {
            bytes: b.Buffer.cast(),
            size: b.SizeOfBitMap,
        }
    }
    fn get(&self, i: u32) -> bool {
        // SAFETY: callers index bits the driver asked for; the buffer belongs to the bitmap.
        unsafe { self.bytes.wrapping_add((i / 8) as usize).read() & (1 << (i % 8)) != 0 }
    }
    fn set(&self, i: u32, v: bool) {
        let p = self.bytes.wrapping_add((i / 8) as usize);
        // SAFETY: `p` is a byte of the bitmap's buffer.
        let old = unsafe { p.read() };
        let new = if v {
            old | (1 << (i % 8))
        } else {
            old & !(1 << (i % 8))
        };
        // SAFETY: as above.
        unsafe { p.write(new) };
    }
    fn range(&self, start: u32, n: u32, v: bool) {
        for i in start..start.saturating_add(n) {
            self.set(i, v);
        }
    }
    fn all(&self, start: u32, n: u32, v: bool) -> bool {
        match start.checked_add(n) {
            Some(end) if end <= self.size => (start..end).all(|i| self.get(i) == v),
            _ => false,
        }
    }
    fn count(&self, v: bool) -> u32 {
        (0..self.size).filter(|&i| self.get(i) == v).count() as u32
    }
    /// First run of `n` bits equal to `v`, searching from `hint` then wrapping to 0.
    fn find(&self, n: u32, hint: u32, v: bool) -> u32 {
        if n == 0 {
            return 0;
        }
        if n > self.size {
            return u32::MAX;
        }
        let hint = if hint >= self.size { 0 } else { hint };
        let last = self.size - n;
        let from_hint = (hint..=last).find(|&s| self.all(s, n, v));
        from_hint
            .or_else(|| (0..hint.min(last + 1)).find(|&s| self.all(s, n, v)))
            .unwrap_or(u32::MAX)
    }
}

/// `RtlInitializeBitMap`: record the buffer and size (bits); the bits are not changed.
///
/// # Safety
/// `BitMapHeader` writable.
pub unsafe extern "win64" fn RtlInitializeBitMap(
    BitMapHeader: *mut RTL_BITMAP,
    BitMapBuffer: *mut ULONG,
    SizeOfBitMap: ULONG,
) {
    // SAFETY: per the contract.
    unsafe {
        BitMapHeader.write_unaligned(RTL_BITMAP {
            SizeOfBitMap,
            Buffer: BitMapBuffer,
        })
    };
}

/// Fill the bitmap's whole ULONGs (the bits past SizeOfBitMap in the last one too, as
/// ReactOS' RtlClearAllBits / RtlSetAllBits do).
unsafe fn fill_all(h: *mut RTL_BITMAP, v: u8) {
    // SAFETY: per the callers' contract.
    let b = unsafe { Bits::of(h) };
    let bytes = b.size.div_ceil(32) as usize * 4;
    // SAFETY: the buffer holds (SizeOfBitMap + 31) / 32 ULONGs.
    unsafe { core::ptr::write_bytes(b.bytes, v, bytes) };
}

/// `RtlClearAllBits`: zero every ULONG of the buffer.
///
/// # Safety
/// A valid bitmap.
pub unsafe extern "win64" fn RtlClearAllBits(BitMapHeader: *mut RTL_BITMAP) {
    // SAFETY: per the contract.
    unsafe { fill_all(BitMapHeader, 0) };
}

/// `RtlSetAllBits`: set every ULONG of the buffer to all ones.
///
/// # Safety
/// A valid bitmap.
pub unsafe extern "win64" fn RtlSetAllBits(BitMapHeader: *mut RTL_BITMAP) {
    // SAFETY: per the contract.
    unsafe { fill_all(BitMapHeader, 0xFF) };
}

/// `RtlSetBits(StartingIndex, NumberToSet)`.
///
/// # Safety
/// A valid bitmap; the range inside it.
pub unsafe extern "win64" fn RtlSetBits(
    BitMapHeader: *mut RTL_BITMAP,
    StartingIndex: ULONG,
    NumberToSet: ULONG,
) {
    // SAFETY: per the contract.
    unsafe { Bits::of(BitMapHeader) }.range(StartingIndex, NumberToSet, true);
}

/// `RtlClearBits(StartingIndex, NumberToClear)`.
///
/// # Safety
/// A valid bitmap; the range inside it.
pub unsafe extern "win64" fn RtlClearBits(
    BitMapHeader: *mut RTL_BITMAP,
    StartingIndex: ULONG,
    NumberToClear: ULONG,
) {
    // SAFETY: per the contract.
    unsafe { Bits::of(BitMapHeader) }.range(StartingIndex, NumberToClear, false);
}

/// `RtlTestBit`.
///
/// # Safety
/// A valid bitmap; `BitNumber` inside it.
pub unsafe extern "win64" fn RtlTestBit(
    BitMapHeader: *mut RTL_BITMAP,
    BitNumber: ULONG,
) -> BOOLEAN {
    // SAFETY: per the contract.
    unsafe { Bits::of(BitMapHeader) }.get(BitNumber) as BOOLEAN
}

/// `RtlFindClearBits`: index of the first run of NumberToFind clear bits, or 0xFFFFFFFF.
///
/// # Safety
/// A valid bitmap.
pub unsafe extern "win64" fn RtlFindClearBits(
    BitMapHeader: *mut RTL_BITMAP,
    NumberToFind: ULONG,
    HintIndex: ULONG,
) -> ULONG {
    // SAFETY: per the contract.
    unsafe { Bits::of(BitMapHeader) }.find(NumberToFind, HintIndex, false)
}

/// `RtlFindSetBits`: index of the first run of NumberToFind set bits, or 0xFFFFFFFF.
///
/// # Safety
/// A valid bitmap.
pub unsafe extern "win64" fn RtlFindSetBits(
    BitMapHeader: *mut RTL_BITMAP,
    NumberToFind: ULONG,
    HintIndex: ULONG,
) -> ULONG {
    // SAFETY: per the contract.
    unsafe { Bits::of(BitMapHeader) }.find(NumberToFind, HintIndex, true)
}

/// `RtlFindClearBitsAndSet`: RtlFindClearBits, then set the run found.
///
/// # Safety
/// A valid bitmap.
pub unsafe extern "win64" fn RtlFindClearBitsAndSet(
    BitMapHeader: *mut RTL_BITMAP,
    NumberToFind: ULONG,
    HintIndex: ULONG,
) -> ULONG {
    // SAFETY: per the contract.
    let b = unsafe { Bits::of(BitMapHeader) };
    let i = b.find(NumberToFind, HintIndex, false);
    if i != u32::MAX {
        b.range(i, NumberToFind, true);
    }
    i
}

/// `RtlFindSetBitsAndClear`: RtlFindSetBits, then clear the run found.
///
/// # Safety
/// A valid bitmap.
pub unsafe extern "win64" fn RtlFindSetBitsAndClear(
    BitMapHeader: *mut RTL_BITMAP,
    NumberToFind: ULONG,
    HintIndex: ULONG,
) -> ULONG {
    // SAFETY: per the contract.
    let b = unsafe { Bits::of(BitMapHeader) };
    let i = b.find(NumberToFind, HintIndex, true);
    if i != u32::MAX {
        b.range(i, NumberToFind, false);
    }
    i
}

/// `RtlNumberOfSetBits` (bits past SizeOfBitMap in the last ULONG are not counted).
///
/// # Safety
/// A valid bitmap.
pub unsafe extern "win64" fn RtlNumberOfSetBits(BitMapHeader: *mut RTL_BITMAP) -> ULONG {
    // SAFETY: per the contract.
    unsafe { Bits::of(BitMapHeader) }.count(true)
}

/// `RtlNumberOfClearBits`.
///
/// # Safety
/// A valid bitmap.
pub unsafe extern "win64" fn RtlNumberOfClearBits(BitMapHeader: *mut RTL_BITMAP) -> ULONG {
    // SAFETY: per the contract.
    unsafe { Bits::of(BitMapHeader) }.count(false)
}

/// `RtlAreBitsSet`: TRUE when every bit of the range is set (FALSE for a range past the end).
///
/// # Safety
/// A valid bitmap.
pub unsafe extern "win64" fn RtlAreBitsSet(
    BitMapHeader: *mut RTL_BITMAP,
    StartingIndex: ULONG,
    Length: ULONG,
) -> BOOLEAN {
    // SAFETY: per the contract.
    let b = unsafe { Bits::of(BitMapHeader) };
    (Length != 0 && b.all(StartingIndex, Length, true)) as BOOLEAN
}

/// `RtlAreBitsClear`.
///
/// # Safety
/// A valid bitmap.
pub unsafe extern "win64" fn RtlAreBitsClear(
    BitMapHeader: *mut RTL_BITMAP,
    StartingIndex: ULONG,
    Length: ULONG,
) -> BOOLEAN {
    // SAFETY: per the contract.
    let b = unsafe { Bits::of(BitMapHeader) };
    (Length != 0 && b.all(StartingIndex, Length, false)) as BOOLEAN
}
