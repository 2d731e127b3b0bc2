//! The Wine stage: `wictl.exe` and the real `wdm_workitem.sys` under Debian's Wine.
//!
//! Wine is an independent user-mode implementation of the Windows APIs: its service control
//! manager runs services, and its driver host (`winedevice.exe`) loads kernel drivers into a
//! user process and sends them IRPs built with Wine's own structure layouts. It is not the
//! Windows kernel (no IRQL, no real nonpaged pool, no Driver Verifier), but nobody on this
//! project wrote it, so it checks the parts of the harness and the driver that ntsim cannot:
//! wictl's Windows backend (CreateFileW, NtDeviceIoControlFile, the SCM calls) linked and run,
//! and the driver's DriverEntry, dispatch and unload against an I/O manager that is not ours.
//!
//! Two test-only shims, both built here with mingw-w64 into `target/wine/` and never packaged:
//! - `bcryptprimitives.dll` with `ProcessPrng` (over `BCryptGenRandom`): Rust's std imports it,
//!   Windows 10+ has it, Wine 8.0 does not (`wine/processprng.c`);
//! - `wdm_wine_gaps.dll`, the kernel exports Wine 8.0's ntoskrnl lacks (`wine/ntoskrnl_gaps.c`),
//!   and a copy of the .sys whose imports of exactly those names point at it
//!   ([`redirect_imports`]). Which names are missing is read from Wine's own ntoskrnl.exe at run
//!   time; every other import stays bound to Wine's ntoskrnl.
//!
//! All wictl commands run against one Wine session (a `wineserver -p` kept alive for the stage):
//! when the last Wine process exits, the server shuts services down and the driver with them.
//! Every command has a time limit, and the stage kills its wineserver when it ends.
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sys_check::pe::Image;

/// The provider DLL's file name (what the redirected import descriptors name).
pub const GAPS_DLL: &str = "wdm_wine_gaps.dll";
/// What `wine/ntoskrnl_gaps.c` implements.
pub const GAPS_PROVIDED: &[&str] = &[
    "ExAllocatePool2",
    "IoSizeofWorkItem",
    "IoInitializeWorkItem",
    "IoUninitializeWorkItem",
    "IoQueueWorkItemEx",
    "KeQueryPerformanceCounter",
];
/// What the provider's `IoSizeofWorkItem` returns: room for Wine's private `IO_WORKITEM`
/// layout (device, routine, context: 0x18 bytes, which Wine's own `IoQueueWorkItem` fills in),
/// rounded up to the smallest size ntsim emulates ([`nt_abi::EMULATED_IO_WORKITEM_SIZE_MIN`]),
/// so that ntsim can reproduce the driver's slab geometry for the comparison. No Windows build
/// uses this size, so a driver that hard-coded a Windows value would show up here.
pub const GAPS_ITEM_SIZE: u32 = nt_abi::EMULATED_IO_WORKITEM_SIZE_MIN;
/// Debian 12 packages: `wine` (the loader scripts, wineserver, the Windows-side DLLs) and
/// `wine64` (the 64-bit loader).
pub const WINE_PACKAGES: &[&str] = &["wine", "wine64"];

const PROVIDER_SOURCE: &str = "wine/ntoskrnl_gaps.c";
const PRNG_SOURCE: &str = "wine/processprng.c";
/// Where Debian's wine64 puts the PE half of Wine's ntoskrnl.
const WINE_NTOSKRNL: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows/ntoskrnl.exe",
    "/usr/lib/wine/x86_64-windows/ntoskrnl.exe",
    "/usr/lib64/wine/x86_64-windows/ntoskrnl.exe",
];

// ---------------------------------------------------------------------------------------------
// The import redirection (a test-time copy of the .sys)
// ---------------------------------------------------------------------------------------------

fn rd_u32(d: &[u8], off: usize) -> Result<u32, String> {
    d.get(off..off + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| format!("read at {off:#x} is past the end of the image"))
}

fn rd_u64(d: &[u8], off: usize) -> Result<u64, String> {
    let lo = rd_u32(d, off)? as u64;
    let hi = rd_u32(d, off + 4)? as u64;
    Ok(lo | hi << 32)
}

fn wr_u16(d: &mut [u8], off: usize, v: u16) {
    d[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn wr_u32(d: &mut [u8], off: usize, v: u32) {
    d[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn align_up(v: u32, a: u32) -> u32 {
    v.div_ceil(a) * a
}

/// One IAT slot: which DLL's import descriptor owns it after redirection.
struct Slot {
    /// Original lookup-table value (RVA of the hint/name entry; never an ordinal here).
    lookup: u64,
    iat_rva: u32,
    dll_name_rva: Option<u32>,
}

/// A copy of PE32+ image `data` in which the imports of `names` from `from_dll` are bound to
/// `to_dll` instead; every other import, and every IAT slot (which the code calls through), stays
/// where it is. Each maximal run of IAT slots bound to one DLL gets its own import descriptor
/// with its own lookup table, so the loader fills exactly those slots; the descriptors, the lookup
/// tables and the new DLL name go in a new read-only section `.wgaps`. The checksum is recomputed.
/// Fails if a name is not imported from `from_dll`, or the headers have no room for a section.
pub fn redirect_imports(
    data: &[u8],
    from_dll: &str,
    names: &[&str],
    to_dll: &str,
) -> Result<Vec<u8>, String> {
    let img = Image::parse(data).map_err(|e| e.to_string())?;
    let (imp_rva, _) = img.directory(sys_check::pe::DIR_IMPORT);
    if imp_rva == 0 {
        return Err("the image has no imports".into());
    }
    let name_of = |hint_name_rva: u32| -> Result<String, String> {
        let off = img
            .rva_to_offset(hint_name_rva)
            .map_err(|e| e.to_string())?;
        let rest = data.get(off + 2..).ok_or("hint/name past the end")?;
        let len = rest
            .iter()
            .position(|&c| c == 0)
            .ok_or("unterminated import name")?;
        Ok(String::from_utf8_lossy(&rest[..len]).into_owned())
    };
    // Walk the descriptors: per descriptor, its slots in IAT order.
    let mut groups: Vec<(u32, Vec<Slot>)> = Vec::new(); // (original Name RVA, slots)
    let mut found = Vec::new();
    let mut desc = img.rva_to_offset(imp_rva).map_err(|e| e.to_string())?;
    loop {
        let lookup_rva = rd_u32(data, desc)?;
        let name_rva = rd_u32(data, desc + 12)?;
        let iat_rva = rd_u32(data, desc + 16)?;
        if lookup_rva == 0 && name_rva == 0 && iat_rva == 0 {
            break;
        }
        let dll = {
            let off = img.rva_to_offset(name_rva).map_err(|e| e.to_string())?;
            let rest = &data[off..];
            let len = rest
                .iter()
                .position(|&c| c == 0)
                .ok_or("unterminated DLL name")?;
            String::from_utf8_lossy(&rest[..len]).into_owned()
        };
        let table = img
            .rva_to_offset(if lookup_rva != 0 { lookup_rva } else { iat_rva })
            .map_err(|e| e.to_string())?;
        let mut slots = Vec::new();
        for i in 0.. {
            let t = rd_u64(data, table + 8 * i)?;
            if t == 0 {
                break;
            }
            let moved = t & (1 << 63) == 0
                && dll.eq_ignore_ascii_case(from_dll)
                && names.contains(&name_of(t as u32)?.as_str());
            if moved {
                found.push(name_of(t as u32)?);
            }
            slots.push(Slot {
                lookup: t,
                iat_rva: iat_rva + 8 * i as u32,
                dll_name_rva: (!moved).then_some(name_rva),
            });
        }
        groups.push((name_rva, slots));
        desc += 20;
    }
    for n in names {
        if !found.iter().any(|f| f == n) {
            return Err(format!(
                "{n} is not imported from {from_dll}: nothing to redirect"
            ));
        }
    }
    // Runs of consecutive slots with the same owner.
    struct Run {
        dll_name_rva: Option<u32>,
        iat_rva: u32,
        lookups: Vec<u64>,
    }
    let mut runs: Vec<Run> = Vec::new();
    for (_, slots) in &groups {
        let mut current: Option<Run> = None;
        for s in slots {
            match &mut current {
                Some(r) if r.dll_name_rva == s.dll_name_rva => r.lookups.push(s.lookup),
                _ => {
                    runs.extend(current.take());
                    current = Some(Run {
                        dll_name_rva: s.dll_name_rva,
                        iat_rva: s.iat_rva,
                        lookups: vec![s.lookup],
                    });
                }
            }
        }
        runs.extend(current);
    }
    // Lay out the new section: descriptors, lookup tables, the DLL name.
    let sec_align = rd_u32(data, img.optional_header_offset + 32)?;
    let file_align = rd_u32(data, img.optional_header_offset + 36)?;
    let end_va = img
        .sections
        .iter()
        .map(|s| s.virtual_address + s.virtual_size.max(s.raw_size))
        .max()
        .ok_or("no sections")?;
    let va = align_up(end_va, sec_align);
    let mut body = vec![0u8; (runs.len() + 1) * 20];
    let mut lookup_rvas = Vec::new();
    for r in &runs {
        lookup_rvas.push(va + body.len() as u32);
        for l in &r.lookups {
            body.extend(l.to_le_bytes());
        }
        body.extend(0u64.to_le_bytes());
    }
    let to_name_rva = va + body.len() as u32;
    body.extend(to_dll.as_bytes());
    body.push(0);
    for (i, r) in runs.iter().enumerate() {
        let d = i * 20;
        wr_u32(&mut body, d, lookup_rvas[i]);
        wr_u32(&mut body, d + 12, r.dll_name_rva.unwrap_or(to_name_rva));
        wr_u32(&mut body, d + 16, r.iat_rva);
    }
    let vsize = body.len() as u32;
    // The section header goes after the last one; it must fit before the first section's bytes.
    let coff = img.optional_header_offset - 20;
    let nsections = img.sections.len();
    let header_off = img.sections[nsections - 1].header_offset + 40;
    let size_of_headers = rd_u32(data, img.optional_header_offset + 60)? as usize;
    let first_raw = img
        .sections
        .iter()
        .filter(|s| s.raw_size > 0)
        .map(|s| s.raw_offset as usize)
        .min()
        .unwrap_or(size_of_headers);
    if header_off + 40 > size_of_headers.min(first_raw) {
        return Err("no room in the headers for another section header".into());
    }
    let (cert_rva, cert_size) = img.directory(4);
    if cert_rva != 0 || cert_size != 0 {
        return Err("the image is signed: redirect an unsigned build".into());
    }
    let mut out = data.to_vec();
    let raw_off = align_up(out.len() as u32, file_align);
    let raw_size = align_up(vsize, file_align);
    out.resize(raw_off as usize, 0);
    body.resize(raw_size as usize, 0);
    out.extend(&body);
    let h = header_off;
    out[h..h + 8].copy_from_slice(b".wgaps\0\0");
    wr_u32(&mut out, h + 8, vsize);
    wr_u32(&mut out, h + 12, va);
    wr_u32(&mut out, h + 16, raw_size);
    wr_u32(&mut out, h + 20, raw_off);
    // IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ
    wr_u32(&mut out, h + 36, 0x4000_0040);
    wr_u16(&mut out, coff + 2, (nsections + 1) as u16);
    wr_u32(
        &mut out,
        img.optional_header_offset + 56,
        align_up(va + vsize, sec_align),
    );
    let imp_dir = img.optional_header_offset + sys_check::pe::OPT_DATA_DIRECTORIES + 8;
    wr_u32(&mut out, imp_dir, va);
    wr_u32(&mut out, imp_dir + 4, ((runs.len() + 1) * 20) as u32);
    let sum_off = img.optional_header_offset + sys_check::pe::OPT_CHECKSUM;
    let sum = sys_check::pe::checksum(&out, sum_off);
    wr_u32(&mut out, sum_off, sum);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------------------

fn first_existing(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// The Wine binaries: the 64-bit loader and its wineserver.
pub struct WineTools {
    pub wine: PathBuf,
    pub wineserver: PathBuf,
    pub ntoskrnl: PathBuf,
}

impl WineTools {
    /// Find Debian's wine64 (or a `wine64`/`wine` on PATH); `Err` names what is missing.
    pub fn locate() -> Result<WineTools, String> {
        let wine = first_existing(&["/usr/lib/wine/wine64"])
            .or_else(|| on_path("wine64"))
            .or_else(|| on_path("wine"));
        let wineserver =
            first_existing(&["/usr/lib/wine/wineserver64"]).or_else(|| on_path("wineserver"));
        let ntoskrnl = first_existing(WINE_NTOSKRNL);
        match (wine, wineserver, ntoskrnl) {
            (Some(wine), Some(wineserver), Some(ntoskrnl)) => Ok(WineTools {
                wine,
                wineserver,
                ntoskrnl,
            }),
            _ => Err(format!(
                "Wine is not installed (no wine64 loader, wineserver or Wine's 64-bit \
                 ntoskrnl.exe): install Debian's {} (sudo apt-get install {}; `cargo xtask test` \
                 does this as root)",
                WINE_PACKAGES.join(" and "),
                WINE_PACKAGES.join(" ")
            )),
        }
    }

    /// The kernel exports the driver imports that Wine's ntoskrnl does not export.
    pub fn missing_exports(&self, sys: &[u8]) -> Result<Vec<String>, String> {
        let nt = std::fs::read(&self.ntoskrnl)
            .map_err(|e| format!("{}: {e}", self.ntoskrnl.display()))?;
        let nt = Image::parse(&nt).map_err(|e| format!("{}: {e}", self.ntoskrnl.display()))?;
        let drv = Image::parse(sys).map_err(|e| e.to_string())?;
        let mut missing = Vec::new();
        for dll in drv
            .imports
            .iter()
            .filter(|d| d.dll.eq_ignore_ascii_case("ntoskrnl.exe"))
        {
            for f in &dll.functions {
                if let sys_check::pe::ImportName::Name(n) = f
                    && !nt.exports.iter().any(|e| &e.name == n)
                {
                    missing.push(n.clone());
                }
            }
        }
        Ok(missing)
    }
}

/// Install Debian's Wine packages when Wine is missing (as root on Debian, if allowed).
pub fn install(allow_install: bool) -> Result<(), String> {
    if WineTools::locate().is_ok() {
        return Ok(());
    }
    let debian = Path::new("/etc/debian_version").is_file();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !(allow_install && debian && root) {
        return Err(format!(
            "Wine is missing: sudo apt-get install {} (the Wine stage will fail)",
            WINE_PACKAGES.join(" ")
        ));
    }
    xbuild::apt_install(WINE_PACKAGES).map_err(|e| e.to_string())?;
    WineTools::locate().map(|_| ())
}

/// `wictl --ntsim SYS --item-size GAPS_ITEM_SIZE --json info` on this host: what the driver
/// reports about itself when the kernel's work items are [`GAPS_ITEM_SIZE`] bytes.
pub fn ntsim_info(host_wictl: &Path, sys: &Path) -> Result<Value, String> {
    let o = Command::new(host_wictl)
        .arg("--ntsim")
        .arg(sys)
        .args(["--item-size", &GAPS_ITEM_SIZE.to_string(), "--json", "info"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", host_wictl.display()))?;
    let r = Ran {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        timed_out: false,
    };
    let j = expect_exit(&r, 0).map_err(|e| format!("ntsim info: {e}"))?;
    Ok(j["result"].clone())
}

/// `-D` definitions for the provider, from crates/nt-abi (its one source for these values).
fn provider_defines() -> Vec<String> {
    use nt_abi::bugcheck::{WORKER_INVALID, worker_invalid as wi};
    use nt_abi::pool::*;
    use nt_abi::workitem::*;
    let d = |k: &str, v: String| format!("-D{k}={v}");
    vec![
        d("GAPS_ITEM_SIZE", format!("{GAPS_ITEM_SIZE:#x}")),
        d("POOL_FLAG_NON_PAGED", format!("{POOL_FLAG_NON_PAGED:#x}")),
        d(
            "POOL_FLAG_NON_PAGED_EXECUTE",
            format!("{POOL_FLAG_NON_PAGED_EXECUTE:#x}"),
        ),
        d("POOL_FLAG_PAGED", format!("{POOL_FLAG_PAGED:#x}")),
        d(
            "POOL_FLAG_UNINITIALIZED",
            format!("{POOL_FLAG_UNINITIALIZED:#x}"),
        ),
        d(
            "POOL_FLAG_RAISE_ON_FAILURE",
            format!("{POOL_FLAG_RAISE_ON_FAILURE:#x}"),
        ),
        d("NON_PAGED_POOL", NON_PAGED_POOL.to_string()),
        d("PAGED_POOL", PAGED_POOL.to_string()),
        d("NON_PAGED_POOL_NX", NON_PAGED_POOL_NX.to_string()),
        d(
            "STATUS_INSUFFICIENT_RESOURCES",
            format!("{:#x}", nt_abi::STATUS_INSUFFICIENT_RESOURCES as u32),
        ),
        d("WORKER_INVALID", format!("{WORKER_INVALID:#x}")),
        d(
            "WORKER_INVALID_INVALID_IO_OBJECT",
            wi::INVALID_IO_OBJECT.to_string(),
        ),
        d(
            "WORKER_INVALID_INVALID_QUEUE_TYPE",
            wi::INVALID_QUEUE_TYPE.to_string(),
        ),
        d(
            "WORKER_INVALID_INVALID_ROUTINE",
            wi::INVALID_ROUTINE.to_string(),
        ),
        d("CRITICAL_WORK_QUEUE", CRITICAL_WORK_QUEUE.to_string()),
        d("MAXIMUM_WORK_QUEUE", MAXIMUM_WORK_QUEUE.to_string()),
        d(
            "CUSTOM_PRIORITY_WORK_QUEUE",
            CUSTOM_PRIORITY_WORK_QUEUE.to_string(),
        ),
        d("CUSTOM_PRIORITY_MAX", CUSTOM_PRIORITY_MAX.to_string()),
    ]
}

/// Compile a freestanding DLL from `source` (under xtask/) with mingw-w64's gcc.
fn build_dll(
    source: &str,
    out: &Path,
    exports: &[&str],
    defines: &[String],
    libs: &[&str],
) -> Result<(), String> {
    let dll_name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("DLL path has no file name")?;
    let def = out.with_extension("def");
    let mut text = format!("LIBRARY {dll_name}\nEXPORTS\n");
    for e in exports {
        text.push_str(&format!("    {e}\n"));
    }
    std::fs::write(&def, text).map_err(|e| format!("{}: {e}", def.display()))?;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(source);
    let mut c = Command::new(xbuild::MINGW_GCC);
    c.args([
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-std=c11",
        "-ffreestanding",
    ])
    .args(["-shared", "-nostdlib", "-Wl,--entry,DllMain"])
    .args(defines)
    .arg("-o")
    .arg(out)
    .arg(&src)
    .arg(&def)
    .args(libs.iter().map(|l| format!("-l{l}")));
    let o = c.output().map_err(|e| {
        format!(
            "cannot run {}: {e} (package {})",
            xbuild::MINGW_GCC,
            xbuild::DEBIAN_MINGW_PACKAGE
        )
    })?;
    if !o.status.success() {
        return Err(format!(
            "{} {} failed:\n{}",
            xbuild::MINGW_GCC,
            src.display(),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// One Wine session
// ---------------------------------------------------------------------------------------------

/// A fresh Wine prefix with its own persistent wineserver; dropping it kills the server (and
/// with it every Wine process of the prefix: services, the driver host, wictl).
pub struct Session {
    tools: WineTools,
    prefix: PathBuf,
    pub run_dir: PathBuf,
}

/// What one command did.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Ran {
    /// The one JSON object wictl prints with `--json`.
    pub fn json(&self) -> Result<Value, String> {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .ok_or_else(|| {
                format!(
                    "no JSON on stdout: {:?} (stderr {:?})",
                    self.stdout, self.stderr
                )
            })?;
        serde_json::from_str(line).map_err(|e| format!("bad JSON {line:?}: {e}"))
    }
}

impl Session {
    fn env(&self, c: &mut Command) {
        c.env("WINEPREFIX", &self.prefix)
            .env("WINEARCH", "win64")
            .env("WINEDEBUG", "-all")
            // No Mono/Gecko install dialogs, no crash debugger: a crash must end the command.
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=;winedbg.exe=d")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
    }

    /// Run `program` with a time limit; on overrun, kill its process group.
    pub fn run(&self, program: &Path, args: &[&str], limit: Duration) -> Ran {
        let mut c = Command::new(program);
        c.args(args)
            .current_dir(&self.run_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.env(&mut c);
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        let mut child = match c.spawn() {
            Ok(ch) => ch,
            Err(e) => {
                return Ran {
                    code: None,
                    stdout: String::new(),
                    stderr: format!("cannot start {}: {e}", program.display()),
                    timed_out: false,
                };
            }
        };
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let t_out = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(o) = out.as_mut() {
                let _ = o.read_to_string(&mut s);
            }
            s
        });
        let t_err = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_string(&mut s);
            }
            s
        });
        let deadline = Instant::now() + limit;
        let (code, timed_out) = loop {
            match child.try_wait() {
                Ok(Some(s)) => break (s.code(), false),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = Command::new("kill")
                        .args(["-s", "KILL", "--", &format!("-{}", child.id())])
                        .status();
                    let _ = child.wait();
                    break (None, true);
                }
            }
        };
        // A Wine process can leave a descendant holding the pipes; do not wait for it forever.
        let join = |t: std::thread::JoinHandle<String>| {
            let until = Instant::now() + Duration::from_secs(5);
            while !t.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                t.join().unwrap_or_default()
            } else {
                String::from("(output not collected: a descendant kept the pipe open)")
            }
        };
        Ran {
            code,
            stdout: join(t_out),
            stderr: join(t_err),
            timed_out,
        }
    }

    /// `wine wictl.exe ARGS` in the run directory.
    pub fn wine(&self, args: &[&str], limit: Duration) -> Ran {
        let mut all = vec!["wictl.exe"];
        all.extend(args);
        let wine = self.tools.wine.clone();
        self.run(&wine, &all, limit)
    }

    fn kill_server(&self) {
        let mut c = Command::new(&self.tools.wineserver);
        c.arg("-k").stdout(Stdio::null()).stderr(Stdio::null());
        self.env(&mut c);
        let _ = c.status();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.kill_server();
    }
}

/// Create a fresh prefix under `root` (deleting an old one), start a persistent wineserver and
/// boot the prefix; install the shims and the test-time driver copy into it.
pub fn open_session(
    tools: WineTools,
    root: &Path,
    wictl_exe: &Path,
    sys: &Path,
    limit: Duration,
) -> Result<(Session, Vec<String>), String> {
    let prefix = root.join("prefix");
    let run_dir = root.join("run");
    let build = root.join("build");
    // A server left behind by an interrupted earlier stage would keep the old prefix alive.
    if prefix.is_dir() {
        let mut c = Command::new(&tools.wineserver);
        c.arg("-k")
            .env("WINEPREFIX", &prefix)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = c.status();
    }
    for d in [&prefix, &run_dir, &build] {
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
    }
    std::fs::create_dir_all(&prefix).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&run_dir).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&build).map_err(|e| e.to_string())?;
    let data = std::fs::read(sys).map_err(|e| format!("{}: {e}", sys.display()))?;
    let missing = tools.missing_exports(&data)?;
    let unprovided: Vec<&String> = missing
        .iter()
        .filter(|m| !GAPS_PROVIDED.contains(&m.as_str()))
        .collect();
    if !unprovided.is_empty() {
        return Err(format!(
            "Wine's ntoskrnl ({}) lacks {unprovided:?}, which the test-only provider \
             ({PROVIDER_SOURCE}) does not supply: add them there",
            tools.ntoskrnl.display()
        ));
    }
    let session = Session {
        tools,
        prefix,
        run_dir,
    };
    // Boot the prefix and let that first session end completely (`wineserver -w`): commands
    // issued while wineboot's first-run setup is still settling see the service database
    // come and go. Then one persistent server (-p) for the stage, so services (and the driver
    // host) outlive each wictl process.
    let wine = session.tools.wine.clone();
    let ws = session.tools.wineserver.clone();
    let r = session.run(&wine, &["wineboot", "--init"], limit);
    if r.code != Some(0) {
        return Err(format!(
            "wineboot --init failed ({:?}{}): {}",
            r.code,
            if r.timed_out { ", timed out" } else { "" },
            r.stderr
        ));
    }
    let r = session.run(&ws, &["-w"], limit);
    if r.code != Some(0) {
        return Err(format!("wineserver -w after wineboot failed: {}", r.stderr));
    }
    let r = session.run(&ws, &["-p"], limit);
    if r.code != Some(0) {
        return Err(format!("wineserver -p failed: {}", r.stderr));
    }
    let system32 = session.prefix.join("drive_c/windows/system32");
    if !system32.is_dir() {
        return Err(format!("wineboot did not create {}", system32.display()));
    }
    // Shims.
    build_dll(
        PRNG_SOURCE,
        &session.run_dir.join("bcryptprimitives.dll"),
        &["ProcessPrng"],
        &[],
        &["bcrypt"],
    )?;
    let provided: Vec<&str> = GAPS_PROVIDED.to_vec();
    let gaps = build.join(GAPS_DLL);
    build_dll(
        PROVIDER_SOURCE,
        &gaps,
        &provided,
        &provider_defines(),
        &["ntoskrnl", "ntdll"],
    )?;
    std::fs::copy(&gaps, system32.join(GAPS_DLL)).map_err(|e| e.to_string())?;
    std::fs::copy(wictl_exe, session.run_dir.join("wictl.exe")).map_err(|e| e.to_string())?;
    // The real image, unmodified (to show what Wine does without the provider), and the
    // test-time copy with only the missing names redirected.
    std::fs::write(session.run_dir.join("wdm_workitem.sys"), &data).map_err(|e| e.to_string())?;
    let names: Vec<&str> = missing.iter().map(String::as_str).collect();
    let copy = redirect_imports(&data, "ntoskrnl.exe", &names, GAPS_DLL)?;
    std::fs::write(session.run_dir.join(WINE_COPY), copy).map_err(|e| e.to_string())?;
    Ok((session, missing))
}

/// File name of the test-time copy of the driver in the run directory.
pub const WINE_COPY: &str = "wdm_workitem_wine_test_only.sys";

// ---------------------------------------------------------------------------------------------
// The stage
// ---------------------------------------------------------------------------------------------

/// Limit for one wictl command under Wine (`WDM_WINE_COMMAND_SECS`, default 120 s).
fn command_limit() -> Duration {
    let secs = std::env::var("WDM_WINE_COMMAND_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// Limit for the whole stage (`WDM_WINE_STAGE_SECS`, default 600 s): checks after it fail
/// without running.
fn stage_limit() -> Duration {
    let secs = std::env::var("WDM_WINE_STAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

/// Results of the stage's checks.
#[derive(Default)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
}

impl Tally {
    fn record(&mut self, name: &str, r: Result<(), String>) {
        match r {
            Ok(()) => {
                self.passed += 1;
                println!("wine: ok   {name}");
            }
            Err(e) => {
                self.failed += 1;
                println!("wine: FAIL {name}: {e}");
            }
        }
    }
}

/// glibc's message when its exit-time destructor walk finds the loaded-object list changed
/// under it: Wine 8's process teardown sometimes trips it after the program's `main` returned,
/// turning the exit status into 127.
const LD_SO_EXIT_ASSERTION: &str = "Inconsistency detected by ld.so: dl-fini.c";

/// Whether the process status is that teardown race after wictl had finished: exit 127 with
/// the ld.so assertion on stderr, and wictl's own JSON (printed before it returned) says `code`.
fn wine_teardown_race(r: &Ran, j: &Value, code: i32) -> bool {
    r.code == Some(127) && j["exit_code"] == code && r.stderr.contains(LD_SO_EXIT_ASSERTION)
}

fn expect_exit(r: &Ran, code: i32) -> Result<Value, String> {
    if r.timed_out {
        return Err(format!("timed out; stderr: {}", r.stderr.trim()));
    }
    let j = r.json()?;
    if wine_teardown_race(r, &j, code) {
        println!(
            "wine: note wictl returned {code} (its JSON), then Wine's process teardown hit \
             ld.so's _dl_fini assertion (exit 127): counted as wictl's {code}"
        );
        return Ok(j);
    }
    if r.code != Some(code) || j["exit_code"] != code {
        return Err(format!(
            "exit {:?} (json exit_code {}), wanted {code}: {j}; stderr: {}",
            r.code,
            j["exit_code"],
            r.stderr.trim()
        ));
    }
    Ok(j)
}

fn expect_message(j: &Value, error: Option<&str>, message: &str) -> Result<(), String> {
    let res = &j["result"];
    if let Some(e) = error
        && res["error"] != e
    {
        return Err(format!("error kind {}, wanted {e:?}: {j}", res["error"]));
    }
    match res["message"].as_str() {
        Some(m) if m == message => Ok(()),
        other => Err(format!("message {other:?}, wanted {message:?}")),
    }
}

fn u64_at(j: &Value, path: &[&str]) -> Result<u64, String> {
    let mut v = j;
    for p in path {
        v = &v[*p];
    }
    v.as_u64()
        .ok_or_else(|| format!("{} is not a number in {j}", path.join(".")))
}

/// The messages wictl's Windows backend gives, as the stage expects them verbatim.
const NO_DEVICE: &str = "CreateFileW(\\\\.\\WdmWorkItem) failed: Win32 error 2 (not found: is the driver installed and started?)";

fn no_service(name: &str) -> String {
    format!(
        "OpenServiceW({name}) failed: Win32 error 1060 (no such service: run `wictl install` first)"
    )
}

/// Run every Wine check. `host_info` is the `info` result of the same image in ntsim with
/// `--item-size GAPS_ITEM_SIZE` (what Wine's run must agree with).
pub fn stage(root: &Path, wictl_exe: &Path, sys: &Path, host_info: &Value) -> Tally {
    let mut t = Tally::default();
    let tools = match WineTools::locate() {
        Ok(w) => w,
        Err(e) => {
            t.record("Wine installed", Err(e));
            return t;
        }
    };
    let started = Instant::now();
    let limit = command_limit();
    let (s, missing) = match open_session(tools, root, wictl_exe, sys, limit) {
        Ok(x) => x,
        Err(e) => {
            t.record("fresh Wine prefix with the shims", Err(e));
            return t;
        }
    };
    println!(
        "wine: Wine's ntoskrnl lacks {} of the driver's imports: {} (supplied by the test-only {GAPS_DLL})",
        missing.len(),
        missing.join(", ")
    );
    t.record(
        "fresh Wine prefix (wineboot) with the test-only shims",
        Ok(()),
    );
    let svc = ioctl::SERVICE_NAME;
    let mut check = |name: &str, f: &mut dyn FnMut() -> Result<(), String>| {
        if started.elapsed() > stage_limit() {
            t.record(
                name,
                Err(format!(
                    "not run: the stage ran over {:?} (WDM_WINE_STAGE_SECS)",
                    stage_limit()
                )),
            );
        } else {
            t.record(name, f());
        }
    };

    check("wictl.exe --help", &mut || {
        let r = s.wine(&["--help"], limit);
        if r.code != Some(0) {
            return Err(format!("exit {:?}: {}", r.code, r.stderr.trim()));
        }
        for want in [
            "Usage: wictl.exe",
            "install",
            "uninstall",
            "start",
            "stop",
            "stress",
            "fuzz",
            "stats",
        ] {
            if !r.stdout.contains(want) {
                return Err(format!("--help does not mention {want:?}"));
            }
        }
        Ok(())
    });

    // No driver, no service.
    for cmd in [
        &["info"][..],
        &["stats"],
        &["reset"],
        &["cycles"],
        &["stress", "--count", "1"],
        &["fuzz", "-n", "1"],
        &["raw", "--code", "0x222000"],
    ] {
        let name = format!(
            "no driver: wictl {} -> Win32 error 2 with a hint",
            cmd.join(" ")
        );
        check(&name, &mut || {
            let mut a = vec!["--json"];
            a.extend(cmd);
            let j = expect_exit(&s.wine(&a, limit), 3)?;
            expect_message(&j, Some("backend"), NO_DEVICE)
        });
    }
    for cmd in ["start", "stop"] {
        check(
            &format!("no service: wictl {cmd} -> Win32 error 1060 with a hint"),
            &mut || {
                let j = expect_exit(&s.wine(&["--json", cmd], limit), 3)?;
                expect_message(&j, Some("scm"), &no_service(svc))
            },
        );
    }
    check(
        "no service: wictl uninstall says so and succeeds",
        &mut || {
            let j = expect_exit(&s.wine(&["--json", "uninstall"], limit), 0)?;
            expect_message(&j, None, &format!("service {svc} is not installed"))
        },
    );
    check(
        "wictl install --sys MISSING.sys -> names the file",
        &mut || {
            let j = expect_exit(
                &s.wine(&["--json", "install", "--sys", "missing.sys"], limit),
                3,
            )?;
            let m = j["result"]["message"].as_str().unwrap_or_default();
            if j["result"]["error"] == "scm"
                && m.starts_with("driver file missing.sys: ")
                && m.contains("--sys")
            {
                Ok(())
            } else {
                Err(format!("unexpected: {j}"))
            }
        },
    );
    // The real image without the provider: Wine cannot bind its imports, so the SCM's start
    // fails with 1053 (the service did not answer); wictl must explain that.
    let raw_svc = "wdm_workitem_unpatched";
    check(
        "the unmodified .sys under Wine: start -> Win32 error 1053 with a hint, then uninstall",
        &mut || {
            let j = expect_exit(
                &s.wine(
                    &[
                        "--json",
                        "install",
                        "--name",
                        raw_svc,
                        "--sys",
                        "wdm_workitem.sys",
                    ],
                    limit,
                ),
                0,
            )?;
            let m = j["result"]["message"].as_str().unwrap_or_default();
            if !m.starts_with(&format!(
                "installed service {raw_svc} (kernel driver, demand start) for "
            )) {
                return Err(format!("install: {j}"));
            }
            let j = expect_exit(&s.wine(&["--json", "start", "--name", raw_svc], limit), 3)?;
            let m = j["result"]["message"].as_str().unwrap_or_default();
            if !(m.starts_with("StartServiceW failed: Win32 error 1053 (")
                && m.contains("DriverEntry"))
            {
                return Err(format!("start: {j}"));
            }
            let j = expect_exit(
                &s.wine(&["--json", "uninstall", "--name", raw_svc], limit),
                0,
            )?;
            expect_message(&j, None, &format!("deleted service {raw_svc}"))
        },
    );

    // The driver, end to end, with only Wine's missing imports supplied.
    check(
        "install (the test-time copy with the provider)",
        &mut || {
            let j = expect_exit(
                &s.wine(&["--json", "install", "--sys", WINE_COPY], limit),
                0,
            )?;
            let m = j["result"]["message"].as_str().unwrap_or_default();
            if m.starts_with(&format!(
                "installed service {svc} (kernel driver, demand start) for "
            )) && m.ends_with(WINE_COPY)
            {
                Ok(())
            } else {
                Err(format!("{j}"))
            }
        },
    );
    check("install again -> already exists", &mut || {
        let j = expect_exit(
            &s.wine(&["--json", "install", "--sys", WINE_COPY], limit),
            0,
        )?;
        expect_message(&j, None, &format!("service {svc} already exists"))
    });
    check("start (DriverEntry in Wine's driver host)", &mut || {
        let j = expect_exit(&s.wine(&["--json", "start"], limit), 0)?;
        expect_message(&j, None, &format!("started service {svc}"))
    });
    check("start again -> already running", &mut || {
        let j = expect_exit(&s.wine(&["--json", "start"], limit), 0)?;
        expect_message(&j, None, &format!("service {svc} is already running"))
    });
    check(
        "info: IoSizeofWorkItem, capacity and stride (agree with ntsim on the same image)",
        &mut || {
            let j = expect_exit(&s.wine(&["--json", "info"], limit), 0)?;
            let r = &j["result"];
            let size = u64_at(r, &["io_sizeof_work_item"])?;
            if size != u64::from(GAPS_ITEM_SIZE) {
                return Err(format!(
                    "IoSizeofWorkItem {size:#x}, but the provider returns {GAPS_ITEM_SIZE:#x}"
                ));
            }
            for k in [
                "io_sizeof_work_item",
                "slab_capacity",
                "slab_stride",
                "protocol_version",
                "max_iterations",
                "max_requeue_depth",
                "build_flags",
                "driver_version",
                "build",
            ] {
                if r[k] != host_info[k] {
                    return Err(format!(
                        "{k}: Wine says {}, ntsim says {} for the same image",
                        r[k], host_info[k]
                    ));
                }
            }
            let (cap, stride) = (u64_at(r, &["slab_capacity"])?, u64_at(r, &["slab_stride"])?);
            if cap == 0 || stride < size || stride % 8 != 0 {
                return Err(format!("capacity {cap}, stride {stride}: not a valid slab"));
            }
            if u64_at(r, &["perf_frequency"])? == 0 {
                return Err("KeQueryPerformanceCounter reported frequency 0".into());
            }
            Ok(())
        },
    );
    let mut stress_totals = (0u64, 0u64);
    check(
        "stress --mix (every mode and queue type, 4 threads) with consistent statistics",
        &mut || {
            let j = expect_exit(
                &s.wine(
                    &[
                        "--json",
                        "stress",
                        "--mix",
                        "--threads",
                        "4",
                        "--count",
                        "240",
                    ],
                    limit,
                ),
                0,
            )?;
            let rep = &j["result"]["report"];
            let (req, ok) = (u64_at(rep, &["requests"])?, u64_at(rep, &["succeeded"])?);
            if req != 240 || ok != 240 {
                return Err(format!(
                    "{ok} of {req} requests succeeded, wanted 240 of 240"
                ));
            }
            if j["result"]["consistency"]["ok"] != Value::Bool(true) {
                return Err(format!(
                    "statistics disagree: {}",
                    j["result"]["consistency"]
                ));
            }
            let modes = rep["by_mode"].as_object().map(|m| m.len()).unwrap_or(0);
            if modes != ioctl::Mode::ALL.len() {
                return Err(format!(
                    "--mix used {modes} modes, wanted all {}: {}",
                    ioctl::Mode::ALL.len(),
                    rep["by_mode"]
                ));
            }
            stress_totals = (u64_at(rep, &["cycles"])?, ok);
            Ok(())
        },
    );
    check(
        "fuzz: every malformed request rejected, nothing changed",
        &mut || {
            let j = expect_exit(&s.wine(&["--json", "fuzz", "-n", "300"], limit), 0)?;
            let rep = if j["result"]["report"].is_object() {
                &j["result"]["report"]
            } else {
                &j["result"]
            };
            let (cases, passed) = (u64_at(rep, &["cases"])?, u64_at(rep, &["passed"])?);
            if cases != 300 || passed != 300 {
                return Err(format!(
                    "{passed} of {cases} cases passed, wanted 300 of 300"
                ));
            }
            Ok(())
        },
    );
    check("stats agree with the stress responses", &mut || {
        let j = expect_exit(&s.wine(&["--json", "stats"], limit), 0)?;
        let tot = &j["result"]["totals"];
        let got = (u64_at(tot, &["cycles_completed"])?, u64_at(tot, &["runs"])?);
        if got != stress_totals {
            return Err(format!(
                "stats say {} cycles / {} runs, the stress responses {} / {}",
                got.0, got.1, stress_totals.0, stress_totals.1
            ));
        }
        Ok(())
    });
    check("reset returns the totals, then stats are zero", &mut || {
        let j = expect_exit(&s.wine(&["--json", "reset"], limit), 0)?;
        let tot = &j["result"]["totals"];
        if (u64_at(tot, &["cycles_completed"])?, u64_at(tot, &["runs"])?) != stress_totals {
            return Err(format!("reset returned {tot}"));
        }
        let j = expect_exit(&s.wine(&["--json", "stats"], limit), 0)?;
        let tot = &j["result"]["totals"];
        if (u64_at(tot, &["cycles_completed"])?, u64_at(tot, &["runs"])?) != (0, 0) {
            return Err(format!("after reset: {tot}"));
        }
        Ok(())
    });
    check("stop (DriverUnload), then the device is gone", &mut || {
        let j = expect_exit(&s.wine(&["--json", "stop"], limit), 0)?;
        expect_message(&j, None, &format!("stopped service {svc}"))?;
        let j = expect_exit(&s.wine(&["--json", "info"], limit), 3)?;
        expect_message(&j, Some("backend"), NO_DEVICE)
    });
    check("stop again -> not running", &mut || {
        let j = expect_exit(&s.wine(&["--json", "stop"], limit), 0)?;
        expect_message(&j, None, &format!("service {svc} is not running"))
    });
    check("uninstall, then the service is gone", &mut || {
        let j = expect_exit(&s.wine(&["--json", "uninstall"], limit), 0)?;
        expect_message(&j, None, &format!("deleted service {svc}"))?;
        let j = expect_exit(&s.wine(&["--json", "start"], limit), 3)?;
        expect_message(&j, Some("scm"), &no_service(svc))
    });
    drop(s);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built image (`cargo xtask test` passes its path); without it the test fails, unless
    /// `WDM_ALLOW_SKIP=1` (then `None`: skipped, and it says so).
    fn driver() -> Option<Vec<u8>> {
        let p = std::env::var_os("WDM_WORKITEM_SYS_RELEASE")
            .or_else(|| std::env::var_os("WDM_WORKITEM_SYS"));
        match p {
            Some(p) => Some(std::fs::read(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"))),
            None if std::env::var("WDM_ALLOW_SKIP").as_deref() == Ok("1") => {
                eprintln!("SKIPPED (WDM_ALLOW_SKIP=1): WDM_WORKITEM_SYS is not set");
                None
            }
            None => panic!(
                "set WDM_WORKITEM_SYS to a built wdm_workitem.sys (`cargo xtask test` does), \
                 or WDM_ALLOW_SKIP=1 to skip"
            ),
        }
    }

    fn names_by_dll(img: &Image) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = img
            .imports
            .iter()
            .flat_map(|d| {
                d.functions.iter().map(move |f| match f {
                    sys_check::pe::ImportName::Name(n) => (d.dll.to_lowercase(), n.clone()),
                    sys_check::pe::ImportName::Ordinal(o) => {
                        (d.dll.to_lowercase(), format!("#{o}"))
                    }
                })
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn redirection_moves_exactly_the_named_imports_and_keeps_the_iat() {
        let Some(data) = driver() else { return };
        let moved = [
            "IoSizeofWorkItem",
            "ExAllocatePool2",
            "KeQueryPerformanceCounter",
        ];
        let out = redirect_imports(&data, "ntoskrnl.exe", &moved, GAPS_DLL).unwrap();
        let before = Image::parse(&data).unwrap();
        let after = Image::parse(&out).unwrap();
        let want: Vec<(String, String)> = names_by_dll(&before)
            .into_iter()
            .map(|(dll, n)| {
                if moved.contains(&n.as_str()) {
                    (GAPS_DLL.to_string(), n)
                } else {
                    (dll, n)
                }
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(names_by_dll(&after), want);
        // The original bytes are untouched (code still calls through the same IAT slots).
        assert_eq!(&out[..0x3c], &data[..0x3c]);
        for s in &before.sections {
            let r = s.raw_offset as usize..(s.raw_offset + s.raw_size) as usize;
            assert_eq!(&out[r.clone()], &data[r], "section {} changed", s.name);
        }
        // Every IAT slot is filled by exactly one descriptor, at its original address.
        let iat_of = |img: &Image, d: &[u8]| -> Vec<(u32, u64)> {
            let (rva, _) = img.directory(sys_check::pe::DIR_IMPORT);
            let mut off = img.rva_to_offset(rva).unwrap();
            let mut v = Vec::new();
            while rd_u32(d, off + 12).unwrap() != 0 {
                let lookup = img.rva_to_offset(rd_u32(d, off).unwrap()).unwrap();
                let iat = rd_u32(d, off + 16).unwrap();
                for i in 0.. {
                    let t = rd_u64(d, lookup + 8 * i).unwrap();
                    if t == 0 {
                        break;
                    }
                    v.push((iat + 8 * i as u32, t));
                }
                off += 20;
            }
            v.sort();
            v
        };
        assert_eq!(iat_of(&after, &out), iat_of(&before, &data));
        // The checksum was recomputed.
        let sum_off = after.optional_header_offset + sys_check::pe::OPT_CHECKSUM;
        assert_eq!(
            rd_u32(&out, sum_off).unwrap(),
            sys_check::pe::checksum(&out, sum_off)
        );
    }

    #[test]
    fn redirection_refuses_names_the_image_does_not_import() {
        let Some(data) = driver() else { return };
        let e = redirect_imports(&data, "ntoskrnl.exe", &["NoSuchExport"], GAPS_DLL).unwrap_err();
        assert!(
            e.contains("NoSuchExport is not imported from ntoskrnl.exe"),
            "{e}"
        );
        let e = redirect_imports(&data, "hal.dll", &["IoSizeofWorkItem"], GAPS_DLL).unwrap_err();
        assert!(e.contains("not imported from hal.dll"), "{e}");
        assert!(redirect_imports(b"MZ", "ntoskrnl.exe", &[], GAPS_DLL).is_err());
    }

    fn ran(code: Option<i32>, stdout: &str) -> Ran {
        Ran {
            code,
            stdout: stdout.into(),
            stderr: "diag".into(),
            timed_out: false,
        }
    }

    #[test]
    fn exit_and_message_checks_fire_on_every_difference() {
        let ok = r#"{"backend":null,"exit_code":3,"result":{"error":"scm","message":"m"}}"#;
        let j = expect_exit(&ran(Some(3), ok), 3).unwrap();
        assert!(expect_message(&j, Some("scm"), "m").is_ok());
        assert!(expect_message(&j, None, "m").is_ok());
        // Wrong message, wrong error kind, wrong exit code (process or JSON), no JSON, a timeout.
        assert!(
            expect_message(&j, Some("scm"), "other")
                .unwrap_err()
                .contains("wanted \"other\"")
        );
        assert!(
            expect_message(&j, Some("backend"), "m")
                .unwrap_err()
                .contains("error kind")
        );
        assert!(
            expect_exit(&ran(Some(0), ok), 3)
                .unwrap_err()
                .contains("wanted 3")
        );
        assert!(
            expect_exit(&ran(Some(3), ok), 0)
                .unwrap_err()
                .contains("wanted 0")
        );
        let lying = r#"{"exit_code":0,"result":{}}"#;
        assert!(expect_exit(&ran(Some(3), lying), 3).is_err());
        // Exit 127 from Wine's teardown race counts as wictl's own code, and only with the
        // ld.so assertion on stderr and a JSON exit_code that matches.
        let mut race = ran(Some(127), ok);
        race.stderr = format!("{LD_SO_EXIT_ASSERTION}: 87: _dl_fini: Assertion failed!");
        assert!(expect_exit(&race, 3).is_ok());
        assert!(expect_exit(&race, 0).is_err());
        assert!(expect_exit(&ran(Some(127), ok), 3).is_err());
        assert!(
            expect_exit(&ran(Some(3), "no json here"), 3)
                .unwrap_err()
                .contains("no JSON")
        );
        let mut t = ran(None, "");
        t.timed_out = true;
        assert!(expect_exit(&t, 0).unwrap_err().contains("timed out"));
        assert!(u64_at(&j, &["result", "message"]).is_err());
    }

    #[test]
    fn a_hanging_command_is_killed_at_its_limit() {
        let s = Session {
            tools: WineTools {
                wine: PathBuf::from("/nonexistent/wine64"),
                wineserver: PathBuf::from("/nonexistent/wineserver"),
                ntoskrnl: PathBuf::new(),
            },
            prefix: std::env::temp_dir(),
            run_dir: std::env::temp_dir(),
        };
        let t = Instant::now();
        // A child that leaves a grandchild holding the pipes, as Wine's services do.
        let r = s.run(
            Path::new("sh"),
            &["-c", "sleep 30 & sleep 30"],
            Duration::from_secs(1),
        );
        assert!(r.timed_out);
        assert_eq!(r.code, None);
        assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
        let r = s.run(
            Path::new("sh"),
            &["-c", "echo hi; exit 7"],
            Duration::from_secs(30),
        );
        assert_eq!(
            (r.code, r.stdout.as_str(), r.timed_out),
            (Some(7), "hi\n", false)
        );
    }
}
