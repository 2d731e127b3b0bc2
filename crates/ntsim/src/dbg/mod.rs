//! Debug output: `DbgPrint` / `DbgPrintEx` / `vDbgPrintEx(WithPrefix)` with the kernel's printf
//! dialect, filtered by component and level as Windows filters them, and the kernel debugger
//! ([`kd`]).
//!
//! The printers are variadic. On x64 the first four integer arguments travel in registers and
//! the rest on the stack, right after the 32-byte home area the caller always reserves. A small
//! naked entry spills the four registers into that home area, which makes all arguments one
//! contiguous array (exactly what a Windows `va_list` is), and jumps to Rust with a pointer to
//! it. Stack slots are then read only as far as the format string asks.
//!
//! **Filtering** (Microsoft, "Reading and Filtering Debugging Messages",
//! <https://learn.microsoft.com/windows-hardware/drivers/debugger/reading-and-filtering-debugging-messages>,
//! and "DbgPrintEx", <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-dbgprintex>):
//! a `Level` of 0..=31 stands for the bit `1 << Level`, a larger `Level` is the bit field
//! itself; the message is sent when that field shares a bit with the component's mask
//! (`Kd_<component>_Mask`, default 0) or with the system-wide mask (`Kd_WIN2000_Mask`, default
//! 1, so `DPFLTR_ERROR_LEVEL` messages of every component are sent). `DbgPrint` and `KdPrint`
//! are `DbgPrintEx(DPFLTR_DEFAULT_ID, DPFLTR_INFO_LEVEL, …)` (Windows Vista and later), so they
//! are filtered out unless `Kd_DEFAULT_Mask` has bit 3. `Config::dbg_filter` (`--dbg-filter`)
//! sets masks at boot, as the `Debug Print Filter` registry key does; `DbgSetDebugFilterState`
//! changes them at run time. What passes is the report's `dbgprint` (the DbgPrint buffer, what
//! an attached debugger shows); what does not is only counted (`dbgprint_filtered`).
#![allow(non_snake_case)]

pub mod kd;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use nt_abi::dbg::*;
use nt_abi::status::STATUS_INVALID_PARAMETER_1;

use crate::ke::thread::current;
use crate::machine::lock;

#[derive(Default)]
struct DbgLog {
    lines: Vec<String>,
    partial: String,
}

/// One `--dbg-filter` setting: a component's filter mask at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DbgFilter {
    /// A `DPFLTR_<NAME>_ID`, or [`DPFLTR_WIN2000_COMPONENT`] for `Kd_WIN2000_Mask`.
    pub component: u32,
    /// The whole mask (replacing the default).
    pub mask: u32,
}

impl DbgFilter {
    /// Parse `NAME=MASK` (`IHVDRIVER=0xF`, `DEFAULT=0xFFFFFFFF`, `WIN2000=0x3`, or a numeric
    /// component id: `77=8`); NAME as in `Kd_<NAME>_Mask`, MASK a ULONG.
    pub fn parse(s: &str) -> Result<DbgFilter, String> {
        let (name, mask) = s.split_once('=').ok_or_else(|| {
            format!("bad --dbg-filter {s:?}: expected COMPONENT=MASK (e.g. IHVDRIVER=0xF)")
        })?;
        let component = if name.eq_ignore_ascii_case("WIN2000") {
            DPFLTR_WIN2000_COMPONENT
        } else if let Some(id) = dpfltr_component(name) {
            id
        } else {
            match nt_abi::text::parse_ulong(name) {
                Ok(id) if id < DPFLTR_ENDOFTABLE_ID => id,
                _ => {
                    return Err(format!(
                        "bad --dbg-filter component {name:?}: a dpfilter.h component name \
                         (IHVDRIVER, IHVVIDEO, IHVAUDIO, IHVNETWORK, IHVSTREAMING, IHVBUS, \
                         DEFAULT, …), WIN2000 (the system-wide mask) or an id below \
                         {DPFLTR_ENDOFTABLE_ID}"
                    ));
                }
            }
        };
        let mask = nt_abi::text::parse_ulong(mask)
            .map_err(|e| format!("bad --dbg-filter mask {mask:?} (a ULONG): {e}"))?;
        Ok(DbgFilter { component, mask })
    }
}

/// The filter masks: `Kd_<component>_Mask` for every component, and `Kd_WIN2000_Mask`.
struct Masks {
    component: Vec<AtomicU32>,
    win2000: AtomicU32,
}

impl Masks {
    fn new(settings: &[DbgFilter]) -> Masks {
        let m = Masks {
            component: (0..DPFLTR_ENDOFTABLE_ID)
                .map(|_| AtomicU32::new(KD_COMPONENT_MASK_DEFAULT))
                .collect(),
            win2000: AtomicU32::new(KD_WIN2000_MASK_DEFAULT),
        };
        for f in settings {
            if let Some(a) = m.slot(f.component) {
                a.store(f.mask, Ordering::Relaxed);
            }
        }
        m
    }
    fn slot(&self, component: u32) -> Option<&AtomicU32> {
        if component == DPFLTR_WIN2000_COMPONENT {
            Some(&self.win2000)
        } else {
            self.component.get(component as usize)
        }
    }
}

/// The debugger's view of DbgPrint output: every line that passed the filter, as it arrives.
pub(crate) struct Dbg {
    log: Mutex<DbgLog>,
    echo: bool,
    masks: Masks,
    filtered: AtomicU64,
    pub(crate) kd: kd::Kd,
}

impl Dbg {
    pub(crate) fn new(config: &crate::Config) -> Self {
        Dbg {
            log: Mutex::new(DbgLog::default()),
            echo: config.echo_dbgprint,
            masks: Masks::new(&config.dbg_filter),
            filtered: AtomicU64::new(0),
            kd: kd::Kd::new(config.debugger),
        }
    }

    /// Every complete line so far (plus a trailing partial line, if any).
    pub(crate) fn lines(&self) -> Vec<String> {
        let g = lock(&self.log);
        let mut v = g.lines.clone();
        if !g.partial.is_empty() {
            v.push(g.partial.clone());
        }
        v
    }

    /// How many messages the component/level filter kept from the log.
    pub(crate) fn filtered(&self) -> u64 {
        self.filtered.load(Ordering::Relaxed)
    }

    /// Whether `DbgPrintEx(component, level, …)` is sent (`DbgQueryDebugFilterState`); None
    /// for an unknown component.
    pub(crate) fn passes(&self, component: u32, level: u32) -> Option<bool> {
        let bits = dpfltr_level_bits(level);
        let c = self.masks.slot(component)?.load(Ordering::Relaxed);
        Some(bits & (c | self.masks.win2000.load(Ordering::Relaxed)) != 0)
    }

    /// `DbgSetDebugFilterState`: set or clear the level's bits; false for an unknown component.
    pub(crate) fn set_filter(&self, component: u32, level: u32, state: bool) -> bool {
        let Some(a) = self.masks.slot(component) else {
            return false;
        };
        let bits = dpfltr_level_bits(level);
        if state {
            a.fetch_or(bits, Ordering::Relaxed);
        } else {
            a.fetch_and(!bits, Ordering::Relaxed);
        }
        true
    }

    /// Append to the log unconditionally (the debugger's own output, assertion text).
    pub(crate) fn emit(&self, text: &str) {
        if self.echo {
            eprint!("{text}");
        }
        let mut g = lock(&self.log);
        g.partial.push_str(text);
        while let Some(pos) = g.partial.find('\n') {
            let line = g.partial[..pos].trim_end_matches('\r').to_string();
            g.partial.drain(..=pos);
            g.lines.push(line);
        }
    }
}

/// Arguments as a Windows x64 `va_list`.
pub struct VaList {
    p: *const u64,
}

impl VaList {
    /// # Safety
    /// `p` must point to the spilled register arguments followed by the caller's stack
    /// arguments, with at least as many slots as the format string consumes.
    pub unsafe fn new(p: *const u64) -> Self {
        VaList { p }
    }
    fn next(&mut self) -> u64 {
        // SAFETY: the constructor's contract: one slot per conversion the format asks for.
        let v = unsafe { self.p.read() };
        // SAFETY: stays within (or one past) the argument area described above.
        self.p = unsafe { self.p.add(1) };
        v
    }
}

pub mod printf;

/// Which printf a format belongs to: DbgPrint's, or the CRT's narrow or wide printers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dialect {
    /// A wide printer (`swprintf` …): `%s`/`%c` take WCHARs, `%S`/`%C` narrow ones.
    pub wide: bool,
    /// Narrow string arguments are ISO-8859-1 bytes (the CRT's "C" locale) rather than UTF-8.
    pub latin1: bool,
}

impl Dialect {
    /// DbgPrint / DbgPrintEx.
    pub(crate) const DBGPRINT: Dialect = Dialect {
        wide: false,
        latin1: false,
    };
}

/// Format `fmt` with Windows kernel printf semantics.
///
/// # Safety
/// `args` must supply a valid argument for every conversion; pointer arguments to `%s`, `%ws`,
/// `%wZ`, `%Z` must be null or valid.
pub unsafe fn format(fmt: &[u8], args: &mut VaList) -> String {
    // SAFETY: same contract.
    unsafe { format_in(fmt, args, Dialect::DBGPRINT) }
}

/// Narrow text as the dialect reads it.
fn narrow(b: &[u8], d: Dialect) -> String {
    if d.latin1 {
        b.iter().map(|&c| c as char).collect()
    } else {
        String::from_utf8_lossy(b).into_owned()
    }
}

/// [`format`] in a given dialect (the CRT printers share this formatter).
///
/// # Safety
/// As for [`format`].
pub(crate) unsafe fn format_in(fmt: &[u8], args: &mut VaList, dialect: Dialect) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' {
            let start = i;
            while i < fmt.len() && fmt[i] != b'%' {
                i += 1;
            }
            out.push_str(&String::from_utf8_lossy(&fmt[start..i]));
            continue;
        }
        i += 1;
        if i >= fmt.len() {
            break;
        }
        let (mut left, mut zero, mut plus, mut space, mut alt) =
            (false, false, false, false, false);
        while i < fmt.len() {
            match fmt[i] {
                b'-' => left = true,
                b'0' => zero = true,
                b'+' => plus = true,
                b' ' => space = true,
                b'#' => alt = true,
                _ => break,
            }
            i += 1;
        }
        let mut width: Option<usize> = None;
        if i < fmt.len() && fmt[i] == b'*' {
            width = Some(args.next() as i32 as usize);
            i += 1;
        } else {
            while i < fmt.len() && fmt[i].is_ascii_digit() {
                width = Some(width.unwrap_or(0) * 10 + (fmt[i] - b'0') as usize);
                i += 1;
            }
        }
        let mut prec: Option<usize> = None;
        if i < fmt.len() && fmt[i] == b'.' {
            i += 1;
            if i < fmt.len() && fmt[i] == b'*' {
                prec = Some(args.next() as i32 as usize);
                i += 1;
            } else {
                let mut p = 0;
                while i < fmt.len() && fmt[i].is_ascii_digit() {
                    p = p * 10 + (fmt[i] - b'0') as usize;
                    i += 1;
                }
                prec = Some(p);
            }
        }
        // Length modifiers. `l` is 32-bit on Windows (LLP64).
        let mut bits64 = false;
        let mut wide = false;
        let mut short = 0;
        loop {
            if i >= fmt.len() {
                break;
            }
            if fmt[i..].starts_with(b"I64") {
                bits64 = true;
                i += 3;
            } else if fmt[i..].starts_with(b"I32") {
                i += 3;
            } else if fmt[i] == b'I' || fmt[i] == b'z' || fmt[i] == b'j' || fmt[i] == b't' {
                bits64 = true;
                i += 1;
            } else if fmt[i..].starts_with(b"ll") {
                bits64 = true;
                i += 2;
            } else if fmt[i] == b'l' || fmt[i] == b'w' {
                wide = true;
                i += 1;
            } else if fmt[i] == b'h' {
                short += 1;
                i += 1;
            } else {
                break;
            }
        }
        if i >= fmt.len() {
            break;
        }
        let conv = fmt[i];
        i += 1;
        let body: String = match conv {
            b'%' => "%".into(),
            b'd' | b'i' => {
                let raw = args.next();
                let v: i64 = if bits64 {
                    raw as i64
                } else if short == 1 {
                    raw as i16 as i64
                } else if short >= 2 {
                    raw as i8 as i64
                } else {
                    raw as i32 as i64
                };
                let mut s = v.unsigned_abs().to_string();
                if let Some(p) = prec {
                    while s.len() < p {
                        s.insert(0, '0');
                    }
                }
                let sign = if v < 0 {
                    "-"
                } else if plus {
                    "+"
                } else if space {
                    " "
                } else {
                    ""
                };
                pad_num(sign, s, width, left, zero && prec.is_none())
            }
            b'u' | b'x' | b'X' | b'o' => {
                let raw = args.next();
                let v: u64 = if bits64 {
                    raw
                } else if short == 1 {
                    raw as u16 as u64
                } else if short >= 2 {
                    raw as u8 as u64
                } else {
                    raw as u32 as u64
                };
                let mut s = match conv {
                    b'u' => v.to_string(),
                    b'x' => format!("{v:x}"),
                    b'X' => format!("{v:X}"),
                    _ => format!("{v:o}"),
                };
                if let Some(p) = prec {
                    while s.len() < p {
                        s.insert(0, '0');
                    }
                }
                let prefix = match (alt && v != 0, conv) {
                    (true, b'x') => "0x",
                    (true, b'X') => "0X",
                    (true, b'o') => "0",
                    _ => "",
                };
                pad_num(prefix, s, width, left, zero && prec.is_none())
            }
            b'p' => {
                let v = args.next();
                pad(format!("{v:016X}"), width, left)
            }
            b'c' | b'C' => {
                let v = args.next();
                let wide = wide || (short == 0 && ((conv == b'C') != dialect.wide));
                let ch = if wide {
                    char::from_u32(v as u16 as u32).unwrap_or('?')
                } else {
                    v as u8 as char
                };
                pad(ch.to_string(), width, left)
            }
            b's' | b'S' => {
                let p = args.next() as usize;
                let wide = wide || (short == 0 && ((conv == b'S') != dialect.wide));
                let s = if p == 0 {
                    "(null)".to_string()
                } else if wide {
                    // SAFETY: a non-null wide string per the format contract.
                    unsafe { crate::rtl::read_wstr(p as *const u16) }.unwrap_or_default()
                } else {
                    // SAFETY: a non-null NUL-terminated string per the format contract.
                    let b = unsafe { crate::rtl::read_cstr(p as *const u8) }.unwrap_or_default();
                    narrow(&b, dialect)
                };
                let s = match prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                };
                pad(s, width, left)
            }
            b'Z' => {
                let p = args.next() as usize;
                let s = if p == 0 {
                    "(null)".to_string()
                } else if wide {
                    // SAFETY: `%wZ` takes a UNICODE_STRING*, non-null here.
                    unsafe { crate::rtl::read_unicode(p as *const nt_abi::UNICODE_STRING) }
                        .unwrap_or_default()
                } else {
                    // SAFETY: `%Z` takes an ANSI_STRING* (Length u16, MaximumLength u16, Buffer
                    // at +8), non-null here; Buffer holds Length bytes.
                    let len = unsafe { (p as *const u16).read() } as usize;
                    // SAFETY: as above, the Buffer member at +8 of the ANSI_STRING.
                    let buf = unsafe { ((p + 8) as *const *const u8).read() };
                    if buf.is_null() {
                        String::new()
                    } else {
                        // SAFETY: Buffer holds Length bytes.
                        let bytes = unsafe { core::slice::from_raw_parts(buf, len) };
                        narrow(bytes, dialect)
                    }
                };
                pad(s, width, left)
            }
            other => format!("%{}", other as char),
        };
        out.push_str(&body);
    }
    out
}

fn pad(s: String, width: Option<usize>, left: bool) -> String {
    let w = width.unwrap_or(0);
    let n = s.chars().count();
    if n >= w {
        return s;
    }
    let fill = " ".repeat(w - n);
    if left { s + &fill } else { fill + &s }
}

fn pad_num(prefix: &str, digits: String, width: Option<usize>, left: bool, zero: bool) -> String {
    let w = width.unwrap_or(0);
    let n = prefix.len() + digits.len();
    if n >= w {
        return format!("{prefix}{digits}");
    }
    if left {
        format!("{prefix}{digits}{}", " ".repeat(w - n))
    } else if zero {
        format!("{prefix}{}{digits}", "0".repeat(w - n))
    } else {
        format!("{}{prefix}{digits}", " ".repeat(w - n))
    }
}

/// Format and send one message: `prefix` + `Format` with `va`'s arguments, filtered by
/// `component`/`level`.
///
/// # Safety
/// `fmt` must be null or a NUL-terminated string whose conversions `va` supplies; `prefix`
/// null or NUL-terminated.
unsafe fn print(component: u32, level: u32, prefix: *const u8, fmt: *const u8, va: &mut VaList) {
    let m = current();
    // Skip the formatting (and its argument reads) when the message is filtered out anyway.
    if m.dbg.passes(component, level) != Some(true) {
        m.dbg.filtered.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // SAFETY: the caller's contract: NUL-terminated format.
    let Some(f) = (unsafe { crate::rtl::read_cstr(fmt) }) else {
        return;
    };
    let mut text = String::new();
    if !prefix.is_null() {
        // SAFETY: the caller's contract: a NUL-terminated prefix.
        if let Some(p) = unsafe { crate::rtl::read_cstr(prefix) } {
            text.push_str(&String::from_utf8_lossy(&p));
        }
    }
    // SAFETY: the caller's contract: `va` holds the format's arguments.
    text.push_str(&unsafe { format(&f, va) });
    m.dbg.emit(&text);
}

/// `DbgPrint` body: `args[0]` is Format, the rest follow. `DbgPrint(…)` is
/// `DbgPrintEx(DPFLTR_DEFAULT_ID, DPFLTR_INFO_LEVEL, …)` ("Reading and Filtering Debugging
/// Messages").
extern "win64" fn dbgprint_impl(args: *const u64) -> u32 {
    // SAFETY: `args` points at the spilled home area of a DbgPrint call (see module docs).
    let mut va = unsafe { VaList::new(args) };
    let fmt = va.next() as *const u8;
    // SAFETY: DbgPrint's Format is a NUL-terminated string; the remaining slots are its
    // variadic arguments.
    unsafe {
        print(
            DPFLTR_DEFAULT_ID,
            DPFLTR_INFO_LEVEL,
            core::ptr::null(),
            fmt,
            &mut va,
        )
    };
    0
}

/// `DbgPrintEx` body: `args` = ComponentId, Level, Format, ….
extern "win64" fn dbgprintex_impl(args: *const u64) -> u32 {
    // SAFETY: `args` points at the spilled home area of a DbgPrintEx call.
    let mut va = unsafe { VaList::new(args) };
    let component = va.next() as u32;
    let level = va.next() as u32;
    let fmt = va.next() as *const u8;
    // SAFETY: DbgPrintEx's Format is a NUL-terminated string; the remaining slots are its
    // variadic arguments.
    unsafe { print(component, level, core::ptr::null(), fmt, &mut va) };
    0
}

/// `ULONG vDbgPrintEx(ULONG ComponentId, ULONG Level, PCCH Format, va_list arglist)`: as
/// `DbgPrintEx`, with the arguments in a Windows x64 `va_list` (a pointer to 8-byte slots)
/// (Microsoft: <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-vdbgprintex>).
///
/// # Safety
/// `Format` null or NUL-terminated; `arglist` a `va_list` holding an argument for every
/// conversion of `Format`.
pub unsafe extern "win64" fn vDbgPrintEx(
    ComponentId: u32,
    Level: u32,
    Format: *const u8,
    arglist: nt_abi::PVOID,
) -> u32 {
    // SAFETY: a Windows x64 va_list points at one 8-byte slot per argument.
    let mut va = unsafe { VaList::new(arglist as *const u64) };
    // SAFETY: the caller's format and its va_list, as for DbgPrintEx.
    unsafe { print(ComponentId, Level, core::ptr::null(), Format, &mut va) };
    0
}

/// `ULONG vDbgPrintExWithPrefix(PCCH Prefix, ULONG ComponentId, ULONG Level, PCCH Format,
/// va_list arglist)`: `vDbgPrintEx` with `Prefix` in front of the message (Microsoft:
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-vdbgprintexwithprefix>).
///
/// # Safety
/// As [`vDbgPrintEx`]; `Prefix` null or NUL-terminated.
pub unsafe extern "win64" fn vDbgPrintExWithPrefix(
    Prefix: *const u8,
    ComponentId: u32,
    Level: u32,
    Format: *const u8,
    arglist: nt_abi::PVOID,
) -> u32 {
    // SAFETY: a Windows x64 va_list points at one 8-byte slot per argument.
    let mut va = unsafe { VaList::new(arglist as *const u64) };
    // SAFETY: the caller's prefix, format and va_list.
    unsafe { print(ComponentId, Level, Prefix, Format, &mut va) };
    0
}

/// `NTSTATUS DbgQueryDebugFilterState(ULONG ComponentId, ULONG Level)`: TRUE (1) when a
/// message of that component and level would be sent, FALSE (0) when not,
/// STATUS_INVALID_PARAMETER_1 for a component outside dpfilter.h's table (ReactOS
/// `NtQueryDebugFilterState`, `ntoskrnl/kd64/kdapi.c`; Microsoft:
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-dbgquerydebugfilterstate>).
pub extern "win64" fn DbgQueryDebugFilterState(ComponentId: u32, Level: u32) -> nt_abi::NTSTATUS {
    match current().dbg.passes(ComponentId, Level) {
        Some(p) => p as nt_abi::NTSTATUS,
        None => STATUS_INVALID_PARAMETER_1,
    }
}

/// `NTSTATUS DbgSetDebugFilterState(ULONG ComponentId, ULONG Level, BOOLEAN State)`: set
/// (State TRUE) or clear the Level's bits in the component's mask (`0xFFFFFFFF` = the
/// system-wide `Kd_WIN2000_Mask`); STATUS_INVALID_PARAMETER_1 for an unknown component
/// (Microsoft: <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-dbgsetdebugfilterstate>;
/// ReactOS `NtSetDebugFilterState`).
pub extern "win64" fn DbgSetDebugFilterState(
    ComponentId: u32,
    Level: u32,
    State: u8,
) -> nt_abi::NTSTATUS {
    if current().dbg.set_filter(ComponentId, Level, State != 0) {
        nt_abi::STATUS_SUCCESS
    } else {
        STATUS_INVALID_PARAMETER_1
    }
}

/// `ULONG DbgPrint(PCSTR Format, ...)`.
///
/// # Safety
/// Call it as the variadic win64 function it is (see [`dbgprint_fn`]): a NUL-terminated format
/// and one argument per conversion.
#[unsafe(naked)]
pub unsafe extern "win64" fn DbgPrint() {
    core::arch::naked_asm!(
        "mov [rsp + 8], rcx",
        "mov [rsp + 16], rdx",
        "mov [rsp + 24], r8",
        "mov [rsp + 32], r9",
        "lea rcx, [rsp + 8]",
        "jmp {imp}",
        imp = sym dbgprint_impl,
    )
}

/// `ULONG DbgPrintEx(ULONG ComponentId, ULONG Level, PCSTR Format, ...)`.
///
/// # Safety
/// As for [`DbgPrint`] (see [`dbgprintex_fn`]).
#[unsafe(naked)]
pub unsafe extern "win64" fn DbgPrintEx() {
    core::arch::naked_asm!(
        "mov [rsp + 8], rcx",
        "mov [rsp + 16], rdx",
        "mov [rsp + 24], r8",
        "mov [rsp + 32], r9",
        "lea rcx, [rsp + 8]",
        "jmp {imp}",
        imp = sym dbgprintex_impl,
    )
}

/// `DbgPrint` as a callable variadic function pointer (for in-process callers).
pub fn dbgprint_fn() -> unsafe extern "win64" fn(*const u8, ...) -> u32 {
    // SAFETY: the naked entry implements exactly this variadic win64 signature.
    unsafe {
        core::mem::transmute::<*const (), unsafe extern "win64" fn(*const u8, ...) -> u32>(
            DbgPrint as *const (),
        )
    }
}

/// `DbgPrintEx` as a callable variadic function pointer.
pub fn dbgprintex_fn() -> unsafe extern "win64" fn(u32, u32, *const u8, ...) -> u32 {
    // SAFETY: the naked entry implements exactly this variadic win64 signature.
    unsafe {
        core::mem::transmute::<*const (), unsafe extern "win64" fn(u32, u32, *const u8, ...) -> u32>(
            DbgPrintEx as *const (),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{VaList, format};

    fn fmt(f: &str, args: &[u64]) -> String {
        // SAFETY: `args` holds one slot per conversion in every case below (pointer-free).
        let mut va = unsafe { VaList::new(args.as_ptr()) };
        // SAFETY: as above.
        unsafe { format(f.as_bytes(), &mut va) }
    }

    #[test]
    fn integer_conversions_follow_llp64() {
        assert_eq!(
            fmt("%d %ld %lld", &[u64::MAX, u64::MAX, u64::MAX]),
            "-1 -1 -1"
        );
        assert_eq!(
            fmt("%u %lu %I64u", &[u64::MAX, u64::MAX, u64::MAX]),
            "4294967295 4294967295 18446744073709551615"
        );
        assert_eq!(
            fmt("%hx %hhx %#x %#X %o", &[0x12345, 0x1FF, 255, 255, 8]),
            "2345 ff 0xff 0XFF 10"
        );
        assert_eq!(
            fmt("[%08.3d] [%-6x] [%+d] [% d]", &[5, 0xab, 7, 7]),
            "[     005] [ab    ] [+7] [ 7]"
        );
        assert_eq!(fmt("%*d|%.*d", &[4, 9, 3, 9]), "   9|009");
        assert_eq!(fmt("%Id %zu", &[u64::MAX, 7]), "-1 7");
        assert_eq!(fmt("100%% %q", &[]), "100% %q");
    }

    #[test]
    fn pointers_and_null_strings() {
        assert_eq!(fmt("%p", &[0x1234]), "0000000000001234");
        assert_eq!(fmt("%s %ws %wZ", &[0, 0, 0]), "(null) (null) (null)");
    }
}
