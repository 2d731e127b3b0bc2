//! Authenticode test signing and its verification, with `osslsigncode` and `openssl` (Debian
//! packages of the same names), for the package `cargo xtask package` builds on Linux.
//!
//! A test signature is what a Windows test machine accepts once test signing is on
//! (`bcdedit /set testsigning on`) and the test certificate is trusted: Microsoft's "Test Signing"
//! pages for driver packages. [`verify`] checks the signature cryptographically against that
//! certificate (the PE's Authenticode hash, the signer, the chain to the given root); whether a
//! particular Windows build then loads the driver is Windows' decision and is not claimed here.
use std::path::{Path, PathBuf};
use std::process::Command;

pub const OSSLSIGNCODE_PACKAGE: &str = "osslsigncode";
pub const OPENSSL_PACKAGE: &str = "openssl";

/// Subject of the generated test certificate: says what it is, so nobody trusts it by accident.
pub const TEST_CERT_SUBJECT: &str =
    "/CN=wdm-workitem test signing (NOT TRUSTED, test machines only)";

fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let o = cmd
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if o.status.success() {
        Ok(text)
    } else {
        Err(format!("{shown} failed ({}):\n{}", o.status, text.trim()))
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// The two tools, found on PATH.
#[derive(Debug, Clone)]
pub struct Tools {
    pub osslsigncode: PathBuf,
    pub openssl: PathBuf,
}

impl Tools {
    /// `Err` names the Debian packages to install.
    pub fn locate() -> Result<Tools, String> {
        match (on_path("osslsigncode"), on_path("openssl")) {
            (Some(osslsigncode), Some(openssl)) => Ok(Tools {
                osslsigncode,
                openssl,
            }),
            (o, s) => {
                let missing: Vec<&str> = [
                    (o.is_none(), OSSLSIGNCODE_PACKAGE),
                    (s.is_none(), OPENSSL_PACKAGE),
                ]
                .iter()
                .filter(|(m, _)| *m)
                .map(|(_, p)| *p)
                .collect();
                Err(format!(
                    "missing {}: sudo apt-get install {} (`cargo xtask test` installs them)",
                    missing.join(" and "),
                    missing.join(" ")
                ))
            }
        }
    }
}

/// A self-signed code-signing certificate and its key, kept in one directory.
#[derive(Debug, Clone)]
pub struct TestCert {
    /// Private key (PEM, unencrypted: it signs test builds only).
    pub key: PathBuf,
    /// Certificate (PEM): what [`sign`] embeds and [`verify`] trusts.
    pub cert_pem: PathBuf,
    /// The same certificate in DER form (`.cer`), for `certutil -addstore` on the test machine.
    pub cer: PathBuf,
}

impl TestCert {
    /// The certificate in `dir`, generated there (RSA 3072, SHA-256, code-signing EKU, ten
    /// years) if it does not exist yet. Returns whether it was created now.
    pub fn load_or_create(tools: &Tools, dir: &Path) -> Result<(TestCert, bool), String> {
        let c = TestCert {
            key: dir.join("test-signing.key.pem"),
            cert_pem: dir.join("test-signing.cert.pem"),
            cer: dir.join("test-signing.cer"),
        };
        if c.key.is_file() && c.cert_pem.is_file() && c.cer.is_file() {
            return Ok((c, false));
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        run(Command::new(&tools.openssl)
            .args([
                "req", "-x509", "-newkey", "rsa:3072", "-sha256", "-days", "3650", "-nodes",
            ])
            .arg("-keyout")
            .arg(&c.key)
            .arg("-out")
            .arg(&c.cert_pem)
            .args(["-subj", TEST_CERT_SUBJECT])
            .args(["-addext", "keyUsage=critical,digitalSignature"])
            .args(["-addext", "extendedKeyUsage=codeSigning"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"]))?;
        run(Command::new(&tools.openssl)
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&c.cert_pem)
            .arg("-out")
            .arg(&c.cer))?;
        Ok((c, true))
    }
}

/// Authenticode-sign `input` into `output` (SHA-256, the certificate embedded).
pub fn sign(tools: &Tools, cert: &TestCert, input: &Path, output: &Path) -> Result<(), String> {
    if output.exists() {
        std::fs::remove_file(output).map_err(|e| format!("{}: {e}", output.display()))?;
    }
    run(Command::new(&tools.osslsigncode)
        .arg("sign")
        .arg("-certs")
        .arg(&cert.cert_pem)
        .arg("-key")
        .arg(&cert.key)
        .args(["-h", "sha256", "-n", "wdm-workitem test driver"])
        .arg("-in")
        .arg(input)
        .arg("-out")
        .arg(output))
    .map(|_| ())
}

/// `osslsigncode verify` of `image` against `trusted` (PEM) as the only root: `Ok` with its
/// report if the signature is intact and chains to it.
pub fn verify(tools: &Tools, image: &Path, trusted: &Path) -> Result<String, String> {
    run(Command::new(&tools.osslsigncode)
        .arg("verify")
        .arg("-CAfile")
        .arg(trusted)
        .arg("-in")
        .arg(image))
}
