//! Shared helpers for ntsim's `verifier_*` integration tests: build the rulebreaker fixture
//! driver once, run the `ntsim` CLI on it, and pick apart its `--json` report.
#![allow(dead_code)]

/// The fixture's IOCTL codes, names and tags: the very file the driver compiles.
#[path = "../../fixtures/rulebreaker/src/codes.rs"]
pub mod codes;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Exit codes of `ntsim run` (the CLI contract).
pub const EXIT_CLEAN: i32 = 0;
pub const EXIT_LOAD_ERROR: i32 = 2;
pub const EXIT_BUGCHECK: i32 = 3;

/// No single ntsim run of the fixture may take longer than this (the slowest breaker waits
/// `STUCK_ROUTINE_TIMEOUT_MS` in a work routine).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn build_fixture(features: Option<&str>, target_subdir: &str) -> Result<PathBuf, String> {
    let ws = workspace_root();
    let tc = xbuild::locate_toolchain(false).map_err(|e| format!("no cross toolchain: {e}"))?;
    let target_dir = ws.join("target/sys").join(target_subdir);
    let sys = xbuild::build_sys(
        &tc,
        &xbuild::SysBuild {
            manifest_path: &ws.join("Cargo.toml"),
            package: "rulebreaker",
            release: true,
            target_dir: &target_dir,
            features,
            no_default_features: false,
            verbose: false,
        },
    )
    .map_err(|e| format!("cross-building rulebreaker failed: {e}"))?;
    Ok(sys)
}

/// The rulebreaker `.sys`, cross-built once per test binary.
pub fn rulebreaker_sys() -> &'static Path {
    static SYS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match SYS.get_or_init(|| build_fixture(None, "")) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// The rulebreaker `.sys` built with the `missing-import` feature (its own target directory, so
/// the two builds never overwrite each other's `rulebreaker.sys`).
pub fn rulebreaker_missing_import_sys() -> &'static Path {
    static SYS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match SYS.get_or_init(|| build_fixture(Some("missing-import"), "rulebreaker-missing-import")) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// A scratch directory for files a test fabricates.
pub fn scratch_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("verifier_rules");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// One finished `ntsim` invocation.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub exit: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The `--json` report (the whole of stdout must be one JSON object).
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "ntsim stdout is not one JSON object ({e}).\n{}",
                self.describe()
            )
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "ntsim {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.exit,
            self.stdout,
            self.stderr
        )
    }

    /// Everything the driver printed (the report's `dbgprint`), as text.
    pub fn dbgprint_text(&self) -> String {
        let mut out = String::new();
        if let Some(v) = self.json().get("dbgprint") {
            collect_strings(v, &mut out);
        }
        out
    }

    /// The address the fixture reported as `rulebreaker: <key>=<%p>` (the first such line).
    pub fn reported(&self, key: &str) -> u64 {
        let text = self.dbgprint_text();
        let marker = format!("{}{}=", codes::DBG_PREFIX, key);
        let line = text
            .lines()
            .find_map(|l| l.find(&marker).map(|at| &l[at + marker.len()..]))
            .unwrap_or_else(|| {
                panic!(
                    "the fixture's `{marker}` line is missing from dbgprint.\n{}",
                    self.describe()
                )
            });
        let digits: String = line
            .trim()
            .trim_start_matches("0x")
            .trim_start_matches("0X")
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        u64::from_str_radix(&digits, 16)
            .unwrap_or_else(|e| panic!("bad %p value in `{line}`: {e}\n{}", self.describe()))
    }
}

fn collect_strings(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            if !s.ends_with('\n') {
                out.push('\n');
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Value::Object(map) => map.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

/// Run the `ntsim` binary with `args`, killing it if it outlives [`RUN_TIMEOUT`].
pub fn ntsim(args: &[String]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ntsim"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ntsim");
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out_pipe.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err_pipe.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait ntsim") {
            break status;
        }
        if start.elapsed() > RUN_TIMEOUT {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait killed ntsim");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        args: args.to_vec(),
        exit: status.code(),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    };
    assert!(
        !timed_out,
        "ntsim did not finish within {RUN_TIMEOUT:?}.\n{}",
        run.describe()
    );
    assert!(
        run.exit.is_some(),
        "ntsim was killed by a signal ({status}) instead of reporting.\n{}",
        run.describe()
    );
    run
}

/// How to send one IOCTL to `\\.\RuleBreaker`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ioctl<'a> {
    pub code: u32,
    pub input: Option<&'a [u8]>,
    pub output_len: Option<usize>,
}

impl Ioctl<'_> {
    pub fn new(code: u32) -> Self {
        Ioctl {
            code,
            input: None,
            output_len: None,
        }
    }

    /// The `--ioctl` argument: `\\.\NAME:CODE[:INPUT_HEX[:OUTPUT_LEN]]`.
    pub fn arg(&self) -> String {
        let mut s = format!("{}:{:#x}", codes::USER_PATH, self.code);
        if self.input.is_some() || self.output_len.is_some() {
            s.push(':');
            for b in self.input.unwrap_or(&[]) {
                s.push_str(&format!("{b:02x}"));
            }
        }
        if let Some(n) = self.output_len {
            s.push_str(&format!(":{n}"));
        }
        s
    }
}

/// `ntsim run <sys> --ioctl ... [extra] --json`.
pub fn run_sys(sys: &Path, ioctls: &[Ioctl<'_>], extra: &[&str]) -> Run {
    let mut args = vec!["run".to_string(), sys.display().to_string()];
    for i in ioctls {
        args.push("--ioctl".into());
        args.push(i.arg());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--json".into());
    ntsim(&args)
}

/// Run the rulebreaker with the given IOCTLs (verifier at its default, standard).
pub fn run_rulebreaker(ioctls: &[Ioctl<'_>], extra: &[&str]) -> Run {
    // The fixture prints its addresses with DbgPrint (DPFLTR_DEFAULT_ID, INFO level), which
    // Windows' default filter drops: widen Kd_DEFAULT_Mask, as a developer does.
    let mut extra = extra.to_vec();
    extra.extend(["--dbg-filter", "DEFAULT=0xF"]);
    run_sys(rulebreaker_sys(), ioctls, &extra)
}

/// A decoded `bugcheck` object.
#[derive(Debug)]
pub struct BugCheck {
    pub code: u32,
    pub parameters: [u64; 4],
    pub name: String,
    pub address: Value,
    pub documented_only: bool,
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let s = s.trim();
            match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            }
        }
        _ => None,
    }
}

/// The report's `bugcheck`, or `None` when it is `null`.
pub fn bugcheck(run: &Run) -> Option<BugCheck> {
    let json = run.json();
    let bc = json
        .get("bugcheck")
        .unwrap_or_else(|| panic!("report has no `bugcheck` key.\n{}", run.describe()));
    if bc.is_null() {
        return None;
    }
    let field = |k: &str| {
        bc.get(k)
            .unwrap_or_else(|| panic!("bugcheck has no `{k}`.\n{}", run.describe()))
    };
    let code = as_u64(field("code"))
        .unwrap_or_else(|| panic!("bugcheck.code is not a number.\n{}", run.describe()));
    let params = field("parameters")
        .as_array()
        .unwrap_or_else(|| panic!("bugcheck.parameters is not an array.\n{}", run.describe()));
    assert_eq!(
        params.len(),
        4,
        "bugcheck.parameters must have 4 entries.\n{}",
        run.describe()
    );
    let mut parameters = [0u64; 4];
    for (slot, v) in parameters.iter_mut().zip(params) {
        *slot =
            as_u64(v).unwrap_or_else(|| panic!("bad bugcheck parameter {v}.\n{}", run.describe()));
    }
    Some(BugCheck {
        code: u32::try_from(code).expect("bug-check code fits u32"),
        parameters,
        name: field("name").as_str().unwrap_or_default().to_string(),
        address: field("address").clone(),
        documented_only: field("documented_only").as_bool().unwrap_or_else(|| {
            panic!(
                "bugcheck.documented_only is not a bool.\n{}",
                run.describe()
            )
        }),
    })
}

/// Whether a real Windows kernel checks the rule at run time, or only documents it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforced {
    AtRunTime,
    DocumentedOnly,
}

/// Assert bug-check parameter `index` (0-based) of `bc` equals `expected`; `msg` says which.
pub fn expect_param(run: &Run, bc: &BugCheck, index: usize, expected: u64, msg: &str) {
    assert_eq!(bc.parameters[index], expected, "{msg}\n{}", run.describe());
}

/// Assert that `run` stopped with bug check `code` / parameter 1 `p1`, that the report names it
/// as Windows does, flags documented-only rules, and blames a location inside the driver image.
pub fn expect_bugcheck(run: &Run, code: u32, p1: u64, enforced: Enforced) -> BugCheck {
    let bc = bugcheck(run).unwrap_or_else(|| {
        panic!(
            "expected bug check {code:#x} (p1 = {p1:#x}), got `bugcheck: null`.\n{}",
            run.describe()
        )
    });
    assert_eq!(
        (bc.code, bc.parameters[0]),
        (code, p1),
        "wrong bug check: expected {code:#x}/p1={p1:#x}, got {:#x}/p1={:#x}.\n{}",
        bc.code,
        bc.parameters[0],
        run.describe()
    );
    assert_eq!(
        run.exit,
        Some(EXIT_BUGCHECK),
        "a bug check must exit 3.\n{}",
        run.describe()
    );
    assert_eq!(
        bc.name,
        nt_abi::bugcheck::bugcheck_name(code),
        "bugcheck.name.\n{}",
        run.describe()
    );
    assert_eq!(
        bc.documented_only,
        enforced == Enforced::DocumentedOnly,
        "bugcheck.documented_only must say whether Windows checks this rule at run time.\n{}",
        run.describe()
    );
    assert_driver_relative(&bc.address, run);
    bc
}

/// `address` must name a location inside the rulebreaker image, e.g. `rulebreaker.sys+0x1a2b`.
pub fn assert_driver_relative(address: &Value, run: &Run) {
    let text = match address {
        Value::String(s) => s.clone(),
        Value::Object(_) => address.to_string(),
        other => panic!(
            "bugcheck.address must name a driver-relative location, got {other}.\n{}",
            run.describe()
        ),
    };
    let lower = text.to_ascii_lowercase();
    assert!(
        lower.contains("rulebreaker") && lower.contains('+'),
        "bugcheck.address `{text}` does not name a location inside rulebreaker.sys.\n{}",
        run.describe()
    );
}

/// Assert that `run` finished without a bug check.
pub fn expect_no_bugcheck(run: &Run) {
    if let Some(bc) = bugcheck(run) {
        panic!(
            "unexpected bug check {:#x} ({}) p = {:#x?}.\n{}",
            bc.code,
            bc.name,
            bc.parameters,
            run.describe()
        );
    }
}

/// Whether the report's `leaks` says nothing leaked (accepts `null`, `[]`, `{}`, `0`, or an
/// object whose counts are all zero / lists all empty; booleans are flags, not leaks).
pub fn leaks_are_empty(leaks: &Value) -> bool {
    match leaks {
        Value::Null => true,
        Value::Bool(_) => true,
        Value::Number(n) => n.as_u64() == Some(0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.values().all(leaks_are_empty),
    }
}

/// The report's `ioctls[i]`.
pub fn ioctl_result(run: &Run, i: usize) -> Value {
    let json = run.json();
    json.get("ioctls")
        .and_then(|v| v.get(i))
        .cloned()
        .unwrap_or_else(|| panic!("report has no ioctls[{i}].\n{}", run.describe()))
}

pub fn status_of(v: &Value) -> u32 {
    as_u64(v.get("status").unwrap_or(&Value::Null))
        .map(|s| s as u32)
        .unwrap_or_else(|| panic!("no numeric `status` in {v}"))
}

pub fn information_of(v: &Value) -> u64 {
    as_u64(v.get("information").unwrap_or(&Value::Null))
        .unwrap_or_else(|| panic!("no numeric `information` in {v}"))
}

pub fn output_of(v: &Value) -> Vec<u8> {
    let hex = v
        .get("output_hex")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no `output_hex` in {v}"));
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}
