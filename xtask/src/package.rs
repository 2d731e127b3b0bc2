//! `cargo xtask package [--release]`: a folder to copy to a Windows test VM, built on Linux.
//!
//! `target/package/<profile>/` gets:
//! - `wdm_workitem.sys`: the cross-built driver, Authenticode test-signed (osslsigncode, SHA-256)
//!   with a valid PE checksum (osslsigncode recomputes it after appending the signature);
//! - `wdm_workitem_test.cer`: the test certificate (DER), to trust on the VM;
//! - `wdm_workitem.inf`: `driver.inx` stamped as wdk-build's `stampinf -d * -a amd64 -c
//!   wdm_workitem.cat` would: `DriverVer` (today's date, UTC, and the driver crate's version as
//!   `a.b.c.0`, where `-v *` would write the build time), `CatalogFile`, `$ARCH$` → `amd64`;
//! - `wictl.exe` (x86_64-pc-windows-gnu) and `INSTALL.txt` with the VM commands.
//!
//! No `.cat`: creating a catalog needs inf2cat (Windows only; no Linux tool writes one), and the
//! SCM path `wictl install --sys` uses needs only the signed .sys. `cargo make` on a Windows host
//! with the WDK produces the full package (catalog included) for `pnputil /add-driver`.
//!
//! The test certificate is generated on first use and kept OUTSIDE the repository, in
//! `$WDM_TEST_CERT_DIR`, else `$XDG_DATA_HOME/wdm-workitem/test-signing`, else
//! `~/.local/share/wdm-workitem/test-signing`, so `cargo clean` does not rotate it (a VM that
//! trusts it keeps trusting new builds). The folder is checked before it is reported: the image
//! passes sys-check's structure, link (checksum, FORCE_INTEGRITY) and signature checks.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sys_check::authenticode::{self, TestCert, Tools};

const INX: &str = "driver.inx";
const SYS: &str = "wdm_workitem.sys";
const INF: &str = "wdm_workitem.inf";
const CAT: &str = "wdm_workitem.cat";
const CER: &str = "wdm_workitem_test.cer";
const STAMP_ARCH: &str = "amd64";

/// Where the test certificate lives (see the module docs).
pub fn cert_dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("WDM_TEST_CERT_DIR") {
        return Ok(PathBuf::from(d));
    }
    let base = match std::env::var_os("XDG_DATA_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(
            std::env::var_os("HOME")
                .ok_or("neither WDM_TEST_CERT_DIR, XDG_DATA_HOME nor HOME is set")?,
        )
        .join(".local/share"),
    };
    Ok(base.join("wdm-workitem/test-signing"))
}

/// `(year, month, day)` of a Unix time, UTC (days-to-civil, proleptic Gregorian).
pub fn civil_date(unix_secs: u64) -> (i64, u32, u32) {
    let z = (unix_secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A crate version (`0.1.0`, `1.2.3-rc.1`) as the four-part INF version `a.b.c.0`.
pub fn inf_version(crate_version: &str) -> Result<String, String> {
    let core = crate_version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 {
        return Err(format!(
            "crate version {crate_version:?} is not MAJOR.MINOR.PATCH"
        ));
    }
    for p in &parts {
        match p.parse::<u32>() {
            Ok(n) if n <= 65_535 => {}
            _ => {
                return Err(format!(
                    "crate version {crate_version:?}: {p:?} does not fit an INF version field (0-65535)"
                ));
            }
        }
    }
    Ok(format!("{}.0", parts.join(".")))
}

/// Stamp an INX as stampinf does: in `[Version]`, set `DriverVer = MM/DD/YYYY,VERSION` and
/// `CatalogFile = CATALOG` (replacing the directives if present, else adding them after the
/// section header), and replace every `$ARCH$` with `arch`. Everything else, comments and line
/// endings included, is kept as it is. Fails if there is no `[Version]` section.
pub fn stamp_inf(
    inx: &str,
    date: (i64, u32, u32),
    version: &str,
    arch: &str,
    catalog: &str,
) -> Result<String, String> {
    let (y, m, d) = date;
    let driver_ver = format!("DriverVer = {m:02}/{d:02}/{y:04},{version}");
    let catalog_file = format!("CatalogFile = {catalog}");
    let eol = if inx.contains("\r\n") { "\r\n" } else { "\n" };
    let key_of = |line: &str| -> Option<String> {
        let t = line.trim_start();
        if t.starts_with(';') {
            return None;
        }
        t.split_once('=')
            .map(|(k, _)| k.trim().to_ascii_lowercase())
    };
    let section_of = |line: &str| -> Option<String> {
        let t = line.trim();
        let t = t.split(';').next().unwrap_or_default().trim();
        t.strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .map(|s| s.trim().to_ascii_lowercase())
    };
    let mut out: Vec<String> = Vec::new();
    let mut in_version = false;
    let mut version_header: Option<usize> = None;
    let (mut have_ver, mut have_cat) = (false, false);
    for line in inx.lines() {
        if let Some(s) = section_of(line) {
            in_version = s == "version";
            if in_version && version_header.is_none() {
                version_header = Some(out.len());
            }
            out.push(line.to_string());
            continue;
        }
        if in_version {
            match key_of(line).as_deref() {
                Some("driverver") => {
                    out.push(driver_ver.clone());
                    have_ver = true;
                    continue;
                }
                Some("catalogfile") => {
                    out.push(catalog_file.clone());
                    have_cat = true;
                    continue;
                }
                _ => {}
            }
        }
        out.push(line.to_string());
    }
    let Some(h) = version_header else {
        return Err("the INX has no [Version] section".into());
    };
    let mut insert = Vec::new();
    if !have_cat {
        insert.push(catalog_file);
    }
    if !have_ver {
        insert.push(driver_ver);
    }
    for (i, l) in insert.into_iter().enumerate() {
        out.insert(h + 1 + i, l);
    }
    let mut text = out.join(eol).replace("$ARCH$", arch);
    if inx.ends_with('\n') {
        text.push_str(eol);
    }
    Ok(text)
}

/// The driver crate's version, from `cargo metadata` (the root package `wdm-workitem`).
fn driver_crate_version(root: &Path) -> Result<String, String> {
    let o = super::cargo()
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    let j: serde_json::Value =
        serde_json::from_slice(&o.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    j["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == xbuild::DRIVER_PACKAGE))
        .and_then(|p| p["version"].as_str())
        .map(String::from)
        .ok_or_else(|| format!("cargo metadata lists no package {}", xbuild::DRIVER_PACKAGE))
}

fn today() -> (i64, u32, u32) {
    // SOURCE_DATE_EPOCH (reproducible builds) wins over the clock.
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    civil_date(secs)
}

fn install_txt(profile: &str, stamped_ver: &str, cert_subject: &str) -> String {
    format!(
        "wdm-workitem test package ({profile} build, DriverVer {stamped_ver})
Built on Linux by `cargo xtask package`. For a disposable Windows 10/11 x64 TEST VM only.

Files
  {SYS}             the driver, test-signed (SHA-256 Authenticode) with the certificate below
  {CER}        the test certificate: {cert_subject}
  {INF}             primitive-driver INF stamped from driver.inx (for reference; see below)
  wictl.exe                    the harness

1. Allow test-signed drivers (elevated prompt; Secure Boot must be off in the VM firmware),
   then reboot:
     bcdedit /set testsigning on
     shutdown /r /t 0

2. Trust the test certificate (elevated prompt, in this folder):
     certutil -addstore -f Root {CER}
     certutil -addstore -f TrustedPublisher {CER}

3. Turn Driver Verifier on for the driver before it first loads, then reboot (Verifier's
   settings apply from the next boot):
     verifier /standard /driver {SYS}
     shutdown /r /t 0

4. Install, start and drive it (elevated prompt, in this folder):
     wictl install --sys {SYS}
     wictl start
     wictl info
     wictl stress --mix --threads 4 --duration 60
     wictl fuzz
     wictl stats
   A bug check (blue screen) here is a finding: keep the memory dump.

5. Stop and remove it, and turn Verifier off:
     wictl stop
     wictl uninstall
     verifier /query
     verifier /reset

Why there is no {CAT}: a catalog is made by inf2cat, which exists only on Windows (no Linux
tool writes one). The SCM path above (wictl install/start, i.e. CreateService + StartService)
needs only the signed .sys. `pnputil /add-driver {INF} /install` needs the signed catalog:
build the full package with `cargo make` on a Windows host with the WDK.
"
    )
}

fn package(release: bool) -> Result<PathBuf, String> {
    let root = super::workspace_root();
    let profile = if release { "release" } else { "debug" };
    super::banner("prerequisites (osslsigncode, openssl)");
    let tools = match Tools::locate() {
        Ok(t) => t,
        Err(e) => {
            let debian = Path::new("/etc/debian_version").is_file();
            if !(debian && super::is_root()) {
                return Err(e);
            }
            xbuild::apt_install(&[
                authenticode::OSSLSIGNCODE_PACKAGE,
                authenticode::OPENSSL_PACKAGE,
            ])
            .map_err(|e| e.to_string())?;
            Tools::locate()?
        }
    };
    super::banner(&format!("build the driver and wictl.exe ({profile})"));
    let sys = super::build_sys(release, xbuild::TARGET).map_err(|e| e.to_string())?;
    let tc = xbuild::locate_toolchain(true).map_err(|e| e.to_string())?;
    let exe = xbuild::build_wictl(&tc, release, true).map_err(|e| e.to_string())?;

    super::banner("test certificate, signature, INF");
    let dir = cert_dir()?;
    let (cert, created) = TestCert::load_or_create(&tools, &dir)?;
    eprintln!(
        "xtask package: test certificate {} {}",
        if created { "created in" } else { "reused from" },
        dir.display()
    );
    let out = root.join("target/package").join(profile);
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    authenticode::sign(&tools, &cert, &sys, &out.join(SYS))?;
    std::fs::copy(&cert.cer, out.join(CER)).map_err(|e| e.to_string())?;
    std::fs::copy(&exe, out.join("wictl.exe")).map_err(|e| e.to_string())?;
    let inx = std::fs::read_to_string(root.join(INX)).map_err(|e| format!("{INX}: {e}"))?;
    let version = inf_version(&driver_crate_version(&root)?)?;
    let date = today();
    let inf = stamp_inf(&inx, date, &version, STAMP_ARCH, CAT)?;
    std::fs::write(out.join(INF), &inf).map_err(|e| e.to_string())?;
    let stamped = format!("{:02}/{:02}/{:04},{version}", date.1, date.2, date.0);
    std::fs::write(
        out.join("INSTALL.txt"),
        install_txt(
            profile,
            &stamped,
            authenticode::TEST_CERT_SUBJECT.trim_start_matches("/CN="),
        ),
    )
    .map_err(|e| e.to_string())?;

    super::banner("check the packaged image");
    let v = sys_check::check_package_image(
        &out.join(SYS),
        &sys_check::Policy::wdm_workitem(),
        &cert.cert_pem,
        Some(&tools),
    );
    if !v.is_empty() {
        return Err(format!(
            "the packaged {SYS} fails {} check(s):\n  {}",
            v.len(),
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        ));
    }
    eprintln!(
        "xtask package: {SYS}: structure, PE checksum, FORCE_INTEGRITY and the signature \
         (against {}) verified; DriverVer = {stamped}",
        cert.cer.display()
    );
    Ok(out)
}

pub fn run(release: bool) -> ExitCode {
    match package(release) {
        Ok(out) => {
            for e in std::fs::read_dir(&out).into_iter().flatten().flatten() {
                eprintln!("  {}", e.file_name().to_string_lossy());
            }
            println!("{}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask package: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        assert_eq!(civil_date(1_735_689_599), (2024, 12, 31));
        assert_eq!(civil_date(1_735_689_600), (2025, 1, 1));
    }

    #[test]
    fn inf_versions() {
        assert_eq!(inf_version("0.1.0").unwrap(), "0.1.0.0");
        assert_eq!(inf_version("1.22.333-rc.1+b").unwrap(), "1.22.333.0");
        assert!(
            inf_version("1.2")
                .unwrap_err()
                .contains("MAJOR.MINOR.PATCH")
        );
        assert!(inf_version("1.70000.0").unwrap_err().contains("0-65535"));
    }

    const SAMPLE: &str = "; c\n[Version]\nSignature = \"$WINDOWS NT$\"\nCatalogFile = old.cat\n\
                       DriverVer   = 01/01/2025,0.0.0.1 ; placeholder\n\n[Other.NT$ARCH$]\n\
                       DriverVer = keep\n";

    #[test]
    fn stamps_driver_ver_catalog_and_arch_in_place() {
        let s = stamp_inf(SAMPLE, (2026, 3, 7), "0.1.0.0", "amd64", "x.cat").unwrap();
        assert_eq!(
            s,
            "; c\n[Version]\nSignature = \"$WINDOWS NT$\"\nCatalogFile = x.cat\n\
             DriverVer = 03/07/2026,0.1.0.0\n\n[Other.NTamd64]\nDriverVer = keep\n"
        );
    }

    #[test]
    fn adds_missing_directives_and_keeps_crlf() {
        let inx = "[version] ; any case\r\nSignature=\"$WINDOWS NT$\"\r\n";
        let s = stamp_inf(inx, (2026, 12, 1), "1.2.3.0", "amd64", "y.cat").unwrap();
        assert_eq!(
            s,
            "[version] ; any case\r\nCatalogFile = y.cat\r\nDriverVer = 12/01/2026,1.2.3.0\r\n\
             Signature=\"$WINDOWS NT$\"\r\n"
        );
        // A commented-out directive is not the directive.
        let s = stamp_inf(
            "[Version]\n; DriverVer = x\n",
            (2026, 1, 2),
            "1.0.0.0",
            "amd64",
            "c",
        )
        .unwrap();
        assert!(s.contains("; DriverVer = x\n"));
        assert!(s.contains("DriverVer = 01/02/2026,1.0.0.0\n"));
    }

    #[test]
    fn refuses_an_inx_without_a_version_section() {
        let e = stamp_inf("[Strings]\nA=1\n", (2026, 1, 1), "1.0.0.0", "amd64", "c").unwrap_err();
        assert!(e.contains("[Version]"), "{e}");
    }

    #[test]
    fn the_repository_inx_stamps() {
        let inx = std::fs::read_to_string(super::super::workspace_root().join(super::INX)).unwrap();
        let s = stamp_inf(&inx, (2026, 12, 1), "0.1.0.0", "amd64", CAT).unwrap();
        let version: Vec<&str> = s
            .lines()
            .skip_while(|l| !l.trim().eq_ignore_ascii_case("[Version]"))
            .skip(1)
            .take_while(|l| !l.trim_start().starts_with('['))
            .collect();
        assert!(
            version.contains(&"DriverVer = 12/01/2026,0.1.0.0"),
            "{version:?}"
        );
        assert!(
            version.contains(&"CatalogFile = wdm_workitem.cat"),
            "{version:?}"
        );
        assert!(!s.contains("$ARCH$"));
        assert_eq!(s.matches("DriverVer =").count(), 1);
    }
}
