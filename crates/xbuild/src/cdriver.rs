//! Build a WDM driver written in C into a real PE `.sys` on a Linux host: clang in MSVC mode
//! (`--target=x86_64-pc-windows-msvc`) against mingw-w64's DDK headers, an `ntoskrnl.exe`
//! import library made by `llvm-dlltool` from nt-abi's import list, and `lld-link` with the same
//! driver flags as the Rust build (`/SUBSYSTEM:NATIVE /DRIVER /ENTRY:DriverEntry /NODEFAULTLIB`).
//!
//! This is how ntsim's C fixture drivers (`crates/ntsim/fixtures/c/`) are built: their machine
//! code is what a C driver compiled for Windows contains (inline `gs:` reads, `mov cr8`,
//! KUSER_SHARED_DATA loads, `.pdata`/`.xdata` with `__C_specific_handler` scope tables).
//!
//! Header notes (mingw-w64 10 with clang 14): the DDK headers are taken with `-idirafter` so
//! clang's own `<intrin.h>` wins over mingw's, `-fgnuc-version` selects mingw's GCC-style
//! declarations (its non-GNU path expands `__attribute__` to nothing, which breaks clang's
//! vector intrinsics), and `-ffreestanding` drops the hosted `setjmp` declaration clang's
//! `<intrin.h>` would otherwise clash on. clang's C SEH covers the *calls* inside a `__try` body,
//! not instructions that fault inline there (MSVC covers both): fixtures put faulting
//! instructions in a called function. Missing tools fail with the Debian package to install.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// `(Debian package, binary it provides)` for the C driver build.
pub const C_DRIVER_PACKAGES: &[(&str, &str)] = &[
    ("clang", "clang"),
    ("lld", "lld-link"),
    ("llvm", "llvm-dlltool"),
    ("mingw-w64", "x86_64-w64-mingw32-gcc"),
];

/// Where Debian's `mingw-w64-common` puts the headers (`ddk/` inside).
pub const MINGW_INCLUDE: &str = "/usr/share/mingw-w64/include";

/// What to build.
#[derive(Clone, Debug)]
pub struct CDriver<'a> {
    /// The C sources (one translation unit each).
    pub sources: &'a [PathBuf],
    /// Extra include directories (e.g. the fixtures' shared header).
    pub include_dirs: &'a [PathBuf],
    /// Output directory (objects, import library, the `.sys`).
    pub out_dir: &'a Path,
    /// Stem of the `.sys` (`cpu_fixture` → `cpu_fixture.sys`).
    pub name: &'a str,
    /// `-O` level (0–2).
    pub opt_level: u8,
}

fn on_path(search: &std::ffi::OsStr, name: &str) -> Option<PathBuf> {
    std::env::split_paths(search)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The tools the C build needs (clang, lld-link, llvm-dlltool, found on `PATH`), or an error
/// naming every missing Debian package.
pub fn locate_c_tools() -> Result<[PathBuf; 3], Error> {
    locate_c_tools_in(&std::env::var_os("PATH").unwrap_or_default())
}

/// [`locate_c_tools`] with an explicit search path.
pub fn locate_c_tools_in(search: &std::ffi::OsStr) -> Result<[PathBuf; 3], Error> {
    let mut missing = Vec::new();
    let mut found = Vec::new();
    for (pkg, bin) in C_DRIVER_PACKAGES {
        match on_path(search, bin) {
            Some(p) => found.push(p),
            None => missing.push(*pkg),
        }
    }
    if !Path::new(MINGW_INCLUDE).join("ddk/ntddk.h").is_file() && !missing.contains(&"mingw-w64") {
        missing.push("mingw-w64");
    }
    if !missing.is_empty() {
        return Err(Error(format!(
            "cannot build C fixture drivers: missing Debian package(s) {} (apt-get install {}; \
             `cargo xtask test` installs them)",
            missing.join(", "),
            missing.join(" ")
        )));
    }
    Ok([found[0].clone(), found[1].clone(), found[2].clone()])
}

/// The `.def` file for `ntoskrnl.exe`: every import nt-abi declares (so ntsim emulates them).
/// Variables (`nt_abi::imports::data`) are marked `DATA`: the library then defines only
/// `__imp_<name>` (the IAT slot, holding the variable's address), no code thunk.
pub fn ntoskrnl_def() -> String {
    let mut def = String::from("LIBRARY ntoskrnl.exe\nEXPORTS\n");
    for name in nt_abi::imports::all_imports() {
        def.push_str(name);
        if nt_abi::imports::data::NAMES.contains(&name) {
            def.push_str(" DATA");
        }
        def.push('\n');
    }
    def
}

fn run(cmd: &mut Command, what: &str) -> Result<(), Error> {
    let out = cmd
        .output()
        .map_err(|e| Error(format!("cannot run {what}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error(format!(
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )))
}

/// Compile and link a C driver; returns the `.sys` path.
pub fn build_c_driver(req: &CDriver<'_>) -> Result<PathBuf, Error> {
    let [clang, lld_link, dlltool] = locate_c_tools()?;
    std::fs::create_dir_all(req.out_dir)
        .map_err(|e| Error(format!("{}: {e}", req.out_dir.display())))?;
    let def = req.out_dir.join("ntoskrnl.def");
    std::fs::write(&def, ntoskrnl_def()).map_err(|e| Error(format!("{}: {e}", def.display())))?;
    let lib = req.out_dir.join("ntoskrnl.lib");
    run(
        Command::new(&dlltool)
            .args(["-m", "i386:x86-64", "-d"])
            .arg(&def)
            .arg("-l")
            .arg(&lib),
        "llvm-dlltool",
    )?;
    let mut objects = Vec::new();
    for src in req.sources {
        let stem = src
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "src".into());
        let obj = req.out_dir.join(format!("{stem}.obj"));
        let mut cc = Command::new(&clang);
        cc.args([
            "--target=x86_64-pc-windows-msvc",
            "-ffreestanding",
            "-fgnuc-version=4.2.1",
            "-fms-extensions",
            "-fno-stack-protector",
            "-mno-red-zone",
            // Unwind info (.pdata/.xdata) for every non-leaf function, as MSVC emits it: without
            // it clang leaves functions that need no handler out of .pdata, and an exception
            // raised below one of them cannot be unwound to a __try in its caller.
            "-fasynchronous-unwind-tables",
            "-Wall",
            "-Wno-unknown-pragmas",
            "-Wno-ignored-attributes",
            "-Wno-pragma-pack",
            "-Wno-microsoft-anon-tag",
            "-Wno-unused-function",
        ])
        .arg(format!("-O{}", req.opt_level.min(2)))
        .arg("-idirafter")
        .arg(MINGW_INCLUDE)
        .arg("-idirafter")
        .arg(Path::new(MINGW_INCLUDE).join("ddk"));
        for inc in req.include_dirs {
            cc.arg("-I").arg(inc);
        }
        cc.arg("-c").arg(src).arg("-o").arg(&obj);
        run(&mut cc, &format!("clang ({})", src.display()))?;
        objects.push(obj);
    }
    let sys = req.out_dir.join(format!("{}.sys", req.name));
    let mut link = Command::new(&lld_link);
    link.args([
        "/SUBSYSTEM:NATIVE",
        "/DRIVER",
        "/ENTRY:DriverEntry",
        "/NODEFAULTLIB",
        "/DYNAMICBASE",
        "/NXCOMPAT",
    ])
    .args(&objects)
    .arg(&lib)
    .arg(format!("/OUT:{}", sys.display()));
    run(&mut link, "lld-link")?;
    Ok(sys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tools_name_their_packages() {
        let e = locate_c_tools_in(std::ffi::OsStr::new("/nonexistent-dir")).unwrap_err();
        let msg = e.to_string();
        for pkg in ["clang", "lld", "llvm", "mingw-w64"] {
            assert!(msg.contains(pkg), "{msg}");
        }
        assert!(
            msg.contains("apt-get install clang lld llvm mingw-w64"),
            "{msg}"
        );
    }

    #[test]
    fn the_import_library_lists_every_nt_abi_import() {
        let def = ntoskrnl_def();
        assert!(def.starts_with("LIBRARY ntoskrnl.exe\nEXPORTS\n"));
        for name in nt_abi::imports::all_imports() {
            let data = nt_abi::imports::data::NAMES.contains(&name);
            let line = if data {
                format!("{name} DATA")
            } else {
                name.to_string()
            };
            assert!(def.lines().any(|l| l == line), "{name}");
        }
        assert!(def.lines().any(|l| l == "__C_specific_handler"));
        assert!(def.lines().any(|l| l == "ExEventObjectType DATA"));
        assert!(def.lines().any(|l| l == "memcpy"));
    }
}
