//! The one textual grammar for numbers and byte strings on the project's command lines (ntsim's
//! `--ioctl NAME:CODE:INPUT_HEX:OUTPUT_LEN`, `--size-of-work-item`; wictl's `--code`,
//! `--input`, `--out-len`, `--item-size`, …), so both tools accept and refuse the same text.
//!
//! Strict on purpose: a number is either decimal digits (`1234`) or `0x`/`0X` followed by hex
//! digits (`0x22A004`); nothing else — no sign (`+5`), no whitespace, no `_`, no empty digit
//! string. A byte string is an even number of ASCII hex digits (`0100ff`, empty allowed).
//! `core`'s `from_str_radix` alone would take `+5`, and slicing a string two bytes at a time
//! panics on non-ASCII text, which is what this module exists to rule out.
use core::fmt;

/// Why a number or byte string was refused. `Display` says what was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextError {
    /// No digits (empty, or a bare `0x`).
    Empty,
    /// A character that is not a digit of the base, at this byte offset.
    BadDigit { at: usize, ch: char, hex: bool },
    /// The value does not fit: `max` is the largest accepted.
    TooLarge { max: u64 },
    /// A byte string with an odd number of hex digits.
    OddLength { digits: usize },
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TextError::Empty => write!(
                f,
                "no digits: write decimal digits (1234) or 0x and hex digits (0x4d2)"
            ),
            TextError::BadDigit { at, ch, hex } => write!(
                f,
                "{ch:?} at offset {at} is not a {} digit (no signs, spaces or separators)",
                if hex { "hex" } else { "decimal" }
            ),
            TextError::TooLarge { max } => {
                write!(
                    f,
                    "too large: the largest accepted value is {max:#x} ({max})"
                )
            }
            TextError::OddLength { digits } => write!(
                f,
                "{digits} hex digits is an odd number: write two hex digits per byte (e.g. 0100ff)"
            ),
        }
    }
}

/// Parse a number at most `max`: decimal, or hex after `0x` / `0X`.
pub fn parse_number(s: &str, max: u64) -> Result<u64, TextError> {
    let (digits, radix, skip) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16, 2),
        None => (s, 10, 0),
    };
    if digits.is_empty() {
        return Err(TextError::Empty);
    }
    let mut v: u64 = 0;
    for (i, ch) in digits.char_indices() {
        let d = ch.to_digit(radix).ok_or(TextError::BadDigit {
            at: skip + i,
            ch,
            hex: radix == 16,
        })?;
        v = v
            .checked_mul(radix as u64)
            .and_then(|v| v.checked_add(d as u64))
            .filter(|&v| v <= max)
            .ok_or(TextError::TooLarge { max })?;
    }
    Ok(v)
}

/// A `ULONG` (u32): an IOCTL code, an NTSTATUS written as a number, a buffer length.
pub fn parse_ulong(s: &str) -> Result<u32, TextError> {
    parse_number(s, u32::MAX as u64).map(|v| v as u32)
}

/// A `u64`.
pub fn parse_u64(s: &str) -> Result<u64, TextError> {
    parse_number(s, u64::MAX)
}

/// Check a hex byte string and return its bytes (two ASCII hex digits per byte).
pub fn parse_hex_bytes(s: &str) -> Result<HexBytes<'_>, TextError> {
    if let Some((at, ch)) = s.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(TextError::BadDigit { at, ch, hex: true });
    }
    if !s.len().is_multiple_of(2) {
        return Err(TextError::OddLength { digits: s.len() });
    }
    Ok(HexBytes(s.as_bytes()))
}

/// The bytes of a checked hex string ([`parse_hex_bytes`]).
#[derive(Clone, Debug)]
pub struct HexBytes<'a>(&'a [u8]);

impl Iterator for HexBytes<'_> {
    type Item = u8;
    fn next(&mut self) -> Option<u8> {
        let (pair, rest) = self.0.split_first_chunk::<2>()?;
        self.0 = rest;
        // Every byte was checked to be an ASCII hex digit.
        let d = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
        Some(d(pair[0]) << 4 | d(pair[1]))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.0.len() / 2, Some(self.0.len() / 2))
    }
}

impl ExactSizeIterator for HexBytes<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_ulong("0x22A004"), Ok(0x22A004));
        assert_eq!(parse_ulong("0X1f"), Ok(0x1f));
        assert_eq!(parse_ulong("4294967295"), Ok(u32::MAX));
        assert_eq!(parse_ulong("0"), Ok(0));
        assert_eq!(
            parse_ulong("4294967296"),
            Err(TextError::TooLarge {
                max: u32::MAX as u64
            })
        );
        assert_eq!(
            parse_ulong("0x100000000"),
            Err(TextError::TooLarge {
                max: u32::MAX as u64
            })
        );
        assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
        assert!(matches!(
            parse_u64("18446744073709551616"),
            Err(TextError::TooLarge { .. })
        ));
        for bad in [
            "+5", "-1", " 5", "5 ", "1_000", "0x", "", "0x+5", "５", "1e3", "0x-1",
        ] {
            assert!(parse_ulong(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(
            parse_ulong("+5"),
            Err(TextError::BadDigit {
                at: 0,
                ch: '+',
                hex: false
            })
        );
        assert_eq!(
            parse_ulong("0x+5"),
            Err(TextError::BadDigit {
                at: 2,
                ch: '+',
                hex: true
            })
        );
    }

    #[test]
    fn hex_bytes() {
        let v: [u8; 3] = {
            let mut it = parse_hex_bytes("0aFf10").unwrap();
            [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()]
        };
        assert_eq!(v, [0x0a, 0xff, 0x10]);
        assert_eq!(parse_hex_bytes("").unwrap().count(), 0);
        assert_eq!(
            parse_hex_bytes("abc").unwrap_err(),
            TextError::OddLength { digits: 3 }
        );
        // `from_str_radix` would accept "+1" as a byte; slicing "é1" by bytes would panic.
        for bad in ["+1+2", "é1", "1é", "0 1", "zz", "0x01", "€€"] {
            assert!(parse_hex_bytes(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(
            parse_hex_bytes("0é").unwrap_err(),
            TextError::BadDigit {
                at: 1,
                ch: 'é',
                hex: true
            }
        );
    }
}
