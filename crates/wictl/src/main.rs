//! `wictl`: drive the wdm-workitem driver. See `wictl --help`.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use ioctl::{CycleStats, InfoResponse, Mode, RunCyclesRequest, StatsResponse};
use nt_abi::text;
use wictl::backend::{Access, Backend, BackendError, DeviceHandle};
use wictl::client::{Client, Failure};
use wictl::exit;
use wictl::fuzz::{self, to_hex};
use wictl::status::{status_code, status_sentence};
use wictl::stress::{self, Limit, StressConfig};

#[derive(Parser, Debug)]
#[command(
    name = "wictl",
    version,
    about = "Drive the wdm-workitem driver: queue/uninitialize cycles, stress, fuzz, statistics",
    long_about = "Drive the wdm-workitem driver.\n\n\
        Backends: on Windows, the installed driver's device \\\\.\\WdmWorkItem (install it with \
        `wictl install --sys wdm_workitem.sys` and `wictl start`, as Administrator, on a \
        test-signed machine). On Linux, `--ntsim DRIVER.sys` loads the driver into ntsim with \
        the verifier on; every run is a fresh machine (so `stats` starts from zero), and the \
        verifier's verdict is printed at the end.\n\n\
        Exit codes: 0 success; 1 the driver rejected a request or a check failed; 2 bad command \
        line; 3 backend unusable (driver not loadable, device not openable, wrong platform); \
        4 the verifier fired or the driver bug-checked the system."
)]
struct Cli {
    /// Load this driver .sys into ntsim (Linux) instead of opening the real device.
    #[arg(long, global = true, value_name = "DRIVER.sys")]
    ntsim: Option<PathBuf>,
    /// With --ntsim: the value IoSizeofWorkItem returns (0x40 Windows 7, 0x58 Windows 10, 0x60;
    /// 0x20..=0x1000, a multiple of 8, as ntsim's --size-of-work-item).
    #[arg(long, global = true, value_name = "BYTES", value_parser = parse_item_size)]
    item_size: Option<u32>,
    /// Device to open instead of \\.\WdmWorkItem (e.g. another driver under --ntsim, with `raw`).
    #[arg(long, global = true, value_name = "PATH")]
    device: Option<String>,
    /// Print one JSON object on stdout instead of text (and no progress bar).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Driver and slab facts: versions, IoSizeofWorkItem, slab capacity and stride.
    Info,
    /// Run one batch of cycles and print its statistics.
    Cycles(CycleArgs),
    /// Many threads issuing cycle requests at once, for a duration or a count.
    Stress(StressArgs),
    /// The driver's cumulative statistics.
    Stats,
    /// Reset the cumulative statistics (prints the totals they had).
    Reset,
    /// Malformed and random requests: each must be rejected with its expected NTSTATUS and
    /// change nothing.
    Fuzz(FuzzArgs),
    /// Send one raw DeviceIoControl.
    Raw(RawArgs),
    /// Windows: create the demand-start kernel-driver service.
    Install(InstallArgs),
    /// Windows: stop and delete the service.
    Uninstall(ServiceArgs),
    /// Windows: start the service (loads the driver).
    Start(ServiceArgs),
    /// Windows: stop the service (unloads the driver).
    Stop(ServiceArgs),
}

#[derive(Args, Debug, Clone)]
struct CycleArgs {
    /// init-uninit, uninit-in-caller, uninit-in-routine, requeue, ex, baseline (or a number).
    #[arg(long, short, default_value = "uninit-in-routine", value_parser = parse_mode)]
    mode: u32,
    /// Cycles to run (1..=1000000).
    #[arg(long, short = 'n', default_value = "1000", value_parser = parse_u32)]
    iterations: u32,
    /// Work items in flight at once (1..=slab capacity).
    #[arg(long, short, default_value = "8", value_parser = parse_u32)]
    concurrency: u32,
    /// critical, delayed, hypercritical, normal, background, realtime, supercritical,
    /// custom:N (N = 0..31), or a raw WORK_QUEUE_TYPE number.
    #[arg(long, short, default_value = "delayed", value_parser = parse_queue)]
    queue: u32,
    /// Requeues per item in requeue mode (default 4 there, 0 elsewhere).
    #[arg(long, value_parser = parse_u32)]
    requeue_depth: Option<u32>,
    /// Do not add this run to the cumulative statistics.
    #[arg(long)]
    no_cumulative: bool,
    /// Each routine yields its thread once (widens race windows).
    #[arg(long = "yield")]
    yield_in_routine: bool,
    /// Raw flags word (overrides --no-cumulative/--yield).
    #[arg(long, value_parser = parse_u32)]
    flags: Option<u32>,
}

impl CycleArgs {
    fn request(&self) -> RunCyclesRequest {
        let depth = self
            .requeue_depth
            .unwrap_or(if self.mode == Mode::RequeueChain as u32 {
                4
            } else {
                0
            });
        let flags = self.flags.unwrap_or(
            (if self.no_cumulative {
                ioctl::RUN_FLAG_NO_CUMULATIVE
            } else {
                0
            }) | (if self.yield_in_routine {
                ioctl::RUN_FLAG_YIELD_IN_ROUTINE
            } else {
                0
            }),
        );
        let mut r = RunCyclesRequest::new(
            self.iterations,
            self.concurrency,
            Mode::InitUninit,
            self.queue,
            flags,
            depth,
        );
        r.mode = self.mode;
        r
    }
}

#[derive(Args, Debug)]
struct StressArgs {
    /// User threads issuing requests concurrently (each with its own handle).
    #[arg(long, short, default_value = "4", value_parser = parse_u32)]
    threads: u32,
    /// Stop after this many seconds (a finite number above 0, at most 31536000 = a year).
    #[arg(long, short, conflicts_with = "count", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many requests in total (default 100 if no --duration).
    #[arg(long, value_parser = parse_u64)]
    count: Option<u64>,
    /// Rotate through every mode and queue type, custom priorities included (per request, seeded).
    #[arg(long)]
    mix: bool,
    #[arg(long, default_value = "1", value_parser = parse_u64)]
    seed: u64,
    #[command(flatten)]
    cycle: CycleArgs,
}

#[derive(Args, Debug)]
struct FuzzArgs {
    /// Seed: the same seed sends the same requests.
    #[arg(long, default_value = "1", value_parser = parse_u64)]
    seed: u64,
    /// Number of requests.
    #[arg(long, short = 'n', default_value = "300", value_parser = parse_u64)]
    count: u64,
    /// Only these classes (comma-separated); see --list.
    #[arg(long, value_delimiter = ',')]
    class: Vec<String>,
    /// List the classes and exit.
    #[arg(long)]
    list: bool,
}

#[derive(Args, Debug)]
struct RawArgs {
    /// Control code (e.g. 0x22A004).
    #[arg(long, value_parser = parse_u32)]
    code: u32,
    /// Input bytes as hex, two digits per byte (e.g. 0100000008000000).
    #[arg(long, default_value = "", value_parser = parse_hex_input)]
    input: HexInput,
    /// Output buffer length.
    #[arg(long, default_value_t = 0, value_parser = parse_u32)]
    out_len: u32,
    /// Open the device read-only.
    #[arg(long)]
    read_only: bool,
    /// Succeed (exit 0) only if the request completes with this status (name or number).
    #[arg(long, value_parser = parse_status)]
    expect: Option<i32>,
}

#[derive(Args, Debug)]
struct InstallArgs {
    /// The driver file.
    #[arg(long, default_value = "wdm_workitem.sys")]
    sys: PathBuf,
    #[command(flatten)]
    service: ServiceArgs,
}

#[derive(Args, Debug)]
struct ServiceArgs {
    /// Service name.
    #[arg(long, default_value = ioctl::SERVICE_NAME)]
    name: String,
}

/// Numbers as ntsim spells them (`nt_abi::text`): decimal, or `0x` and hex digits; no sign,
/// spaces or separators.
fn parse_u32(s: &str) -> Result<u32, String> {
    text::parse_ulong(s).map_err(|e| e.to_string())
}

fn parse_u64(s: &str) -> Result<u64, String> {
    text::parse_u64(s).map_err(|e| e.to_string())
}

/// `raw --input` bytes (a newtype: clap would take a bare `Vec<u8>` as repeated values).
#[derive(Clone, Debug, PartialEq, Eq)]
struct HexInput(Vec<u8>);

fn parse_hex_input(s: &str) -> Result<HexInput, String> {
    Ok(HexInput(
        text::parse_hex_bytes(s)
            .map_err(|e| e.to_string())?
            .collect(),
    ))
}

/// `--item-size`: the range ntsim's `--size-of-work-item` takes (one definition, in nt-abi).
fn parse_item_size(s: &str) -> Result<u32, String> {
    let n = parse_u32(s)?;
    if nt_abi::is_emulated_io_workitem_size(n as u64) {
        Ok(n)
    } else {
        Err(format!(
            "IoSizeofWorkItem must be {:#x}..={:#x} and a multiple of {} (shipped x64 Windows: \
             0x40, 0x58, 0x60)",
            nt_abi::EMULATED_IO_WORKITEM_SIZE_MIN,
            nt_abi::EMULATED_IO_WORKITEM_SIZE_MAX,
            nt_abi::EMULATED_IO_WORKITEM_SIZE_ALIGN
        ))
    }
}

/// Longest `--duration`: a year. Longer runs are a typo, and `Duration::from_secs_f64` panics
/// on values that do not fit.
const MAX_DURATION_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// `--duration`: seconds, a finite number above 0 (decimals allowed), at most a year.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds (e.g. 2.5)"))?;
    if !v.is_finite() || v <= 0.0 || v > MAX_DURATION_SECS {
        return Err(format!(
            "{s:?}: give a finite number of seconds above 0 and at most {MAX_DURATION_SECS} \
             (a year)"
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

fn parse_mode(s: &str) -> Result<u32, String> {
    Mode::from_name(s).map(|m| m as u32).map_or_else(
        || {
            parse_u32(s).map_err(|_| {
                let names: Vec<_> = Mode::ALL.iter().map(|m| m.name()).collect();
                format!("unknown mode {s}; one of {} or a number", names.join(", "))
            })
        },
        Ok,
    )
}

const QUEUE_NAMES: [&str; 7] = [
    "critical",
    "delayed",
    "hypercritical",
    "normal",
    "background",
    "realtime",
    "supercritical",
];

fn parse_queue(s: &str) -> Result<u32, String> {
    let l = s.to_ascii_lowercase();
    if let Some(i) = QUEUE_NAMES.iter().position(|n| *n == l) {
        return Ok(i as u32);
    }
    if let Some(p) = l.strip_prefix("custom:") {
        let p = parse_u32(p)?;
        return if p <= 31 {
            Ok(32 + p)
        } else {
            Err(format!("custom priority {p} is above 31"))
        };
    }
    parse_u32(s).map_err(|_| {
        format!(
            "unknown queue type {s}; one of {}, custom:N or a number",
            QUEUE_NAMES.join(", ")
        )
    })
}

fn queue_name(q: u32) -> String {
    match q {
        0..=6 => QUEUE_NAMES[q as usize].to_string(),
        32..=63 => format!("custom:{}", q - 32),
        _ => q.to_string(),
    }
}

fn parse_status(s: &str) -> Result<i32, String> {
    let name = if s.starts_with("STATUS_") {
        s.to_string()
    } else {
        format!("STATUS_{}", s.to_ascii_uppercase())
    };
    for v in [
        0u32,
        0x103,
        0xC000_000D,
        0xC000_0010,
        0xC000_0022,
        0xC000_0023,
        0xC000_0059,
        0xC000_009A,
        0xC000_0056,
    ] {
        if nt_abi::status_name(v as i32) == Some(name.as_str()) {
            return Ok(v as i32);
        }
    }
    parse_u32(s).map(|v| v as i32)
}

/// What a command produced.
struct Outcome {
    code: u8,
    json: Value,
}

impl Outcome {
    fn ok(json: Value) -> Self {
        Outcome {
            code: exit::OK,
            json,
        }
    }
}

/// Turn a failed typed request into an outcome (and a message on stderr).
fn failure(cli: &Cli, what: &str, f: &Failure) -> Outcome {
    let (code, j) = match f {
        Failure::Status(s) => (
            exit::FAILED,
            json!({"error": "status", "status": status_code(*s), "ntstatus": *s as u32, "message": status_sentence(*s)}),
        ),
        Failure::Backend(BackendError::BugCheck(b)) => (
            exit::VERIFIER,
            json!({"error": "bugcheck", "bugcheck": b, "message": f.to_string()}),
        ),
        Failure::Backend(BackendError::Io(m)) => {
            (exit::BACKEND, json!({"error": "backend", "message": m}))
        }
        Failure::Protocol(m) => (exit::FAILED, json!({"error": "protocol", "message": m})),
    };
    if !cli.json {
        eprintln!("wictl: {what}: {f}");
    }
    Outcome { code, json: j }
}

fn freq_ms(ticks: u64, freq: u64) -> f64 {
    if freq == 0 {
        0.0
    } else {
        ticks as f64 * 1000.0 / freq as f64
    }
}

fn stats_json(s: &CycleStats, freq: u64) -> Value {
    json!({
        "cycles_completed": s.cycles_completed,
        "queued": s.queued,
        "routines_run": s.routines_run,
        "uninit_in_routine": s.uninit_in_routine,
        "requeues": s.requeues,
        "max_in_flight": s.max_in_flight,
        "slab_high_water": s.slab_high_water,
        "exhaustion_count": s.exhaustion_count,
        "elapsed_ticks": s.elapsed_ticks,
        "elapsed_ms": freq_ms(s.elapsed_ticks, freq),
        "runs": s.runs,
    })
}

fn stats_lines(s: &CycleStats, freq: u64) -> String {
    let rows: [(&str, String); 11] = [
        ("runs", s.runs.to_string()),
        ("cycles completed", s.cycles_completed.to_string()),
        ("queued", s.queued.to_string()),
        ("routines run", s.routines_run.to_string()),
        ("uninitialized in routine", s.uninit_in_routine.to_string()),
        ("requeues", s.requeues.to_string()),
        ("max in flight", s.max_in_flight.to_string()),
        ("slab high water", s.slab_high_water.to_string()),
        ("exhaustion count", s.exhaustion_count.to_string()),
        ("elapsed ticks", s.elapsed_ticks.to_string()),
        (
            "elapsed",
            format!("{:.3} ms", freq_ms(s.elapsed_ticks, freq)),
        ),
    ];
    rows.iter()
        .map(|(k, v)| format!("  {k:<26}{v}\n"))
        .collect()
}

fn info_json(i: &InfoResponse) -> Value {
    let (ma, mi, pa) = ioctl::unpack_version(i.driver_version);
    let build = String::from_utf8_lossy(&i.build)
        .trim_end_matches('\0')
        .to_string();
    json!({
        "protocol_version": i.protocol_version,
        "driver_version": format!("{ma}.{mi}.{pa}"),
        "io_sizeof_work_item": i.io_sizeof_work_item,
        "slab_capacity": i.slab_capacity,
        "slab_stride": i.slab_stride,
        "max_iterations": i.max_iterations,
        "max_requeue_depth": i.max_requeue_depth,
        "build_flags": i.build_flags,
        "perf_frequency": i.perf_frequency,
        "build": build,
    })
}

fn progress_bar(cli: &Cli, len: Option<u64>) -> ProgressBar {
    let visible = !cli.json && std::io::stderr().is_terminal();
    let pb = match len {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    if !visible {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = match len {
        Some(_) => {
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
        }
        None => ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} requests {msg}"),
    };
    if let Ok(style) = style {
        pb.set_style(style);
    }
    pb
}

fn cmd_info(cli: &Cli, h: &dyn DeviceHandle) -> Outcome {
    match Client::new(h).info() {
        Ok(i) => {
            let j = info_json(&i);
            if !cli.json {
                let wdk = if i.build_flags & ioctl::BUILD_FLAG_WDK != 0 {
                    "WDK"
                } else {
                    "cross-built"
                };
                println!(
                    "wdm-workitem driver {} ({}, {wdk})",
                    j["driver_version"].as_str().unwrap_or("?"),
                    j["build"].as_str().unwrap_or("")
                );
                println!("  protocol version        {}", i.protocol_version);
                println!(
                    "  IoSizeofWorkItem        {} bytes ({:#x})",
                    i.io_sizeof_work_item, i.io_sizeof_work_item
                );
                println!(
                    "  slab                    {} slots x {} bytes = {} bytes nonpaged",
                    i.slab_capacity,
                    i.slab_stride,
                    u64::from(i.slab_capacity) * u64::from(i.slab_stride)
                );
                println!("  max iterations          {}", i.max_iterations);
                println!("  max requeue depth       {}", i.max_requeue_depth);
                println!(
                    "  max routines / request  {}",
                    ioctl::MAX_ROUTINES_PER_REQUEST
                );
                println!("  performance counter     {} Hz", i.perf_frequency);
            }
            Outcome::ok(j)
        }
        Err(f) => failure(cli, "info", &f),
    }
}

fn cmd_cycles(cli: &Cli, h: &dyn DeviceHandle, a: &CycleArgs) -> Outcome {
    let req = a.request();
    match Client::new(h).run(&req) {
        Ok(r) => {
            let mode = Mode::from_u32(r.mode).map_or("?", Mode::name);
            if !cli.json {
                println!(
                    "{} cycles, mode {mode}, queue {}, concurrency {}:",
                    req.iterations,
                    queue_name(r.queue_type),
                    req.concurrency
                );
                print!("{}", stats_lines(&r.stats, r.perf_frequency));
            }
            Outcome::ok(json!({
                "request": {"iterations": req.iterations, "concurrency": req.concurrency, "mode": mode,
                            "queue_type": r.queue_type, "flags": req.flags, "requeue_depth": req.requeue_depth},
                "stats": stats_json(&r.stats, r.perf_frequency),
            }))
        }
        Err(f) => {
            let mut o = failure(cli, "cycles", &f);
            if f == Failure::Status(nt_abi::STATUS_INVALID_PARAMETER) {
                let capacity = Client::new(h).info().ok().map(|i| i.slab_capacity);
                if let Some(why) = wictl::client::explain_run_rejection(&req, capacity) {
                    if !cli.json {
                        eprintln!("wictl: cycles: the offending field: {why}");
                    }
                    o.json["field"] = json!(why);
                }
            }
            o
        }
    }
}

fn print_totals(cli: &Cli, title: &str, s: &StatsResponse) -> Value {
    if !cli.json {
        println!("{title}:");
        print!("{}", stats_lines(&s.totals, s.perf_frequency));
    }
    json!({"totals": stats_json(&s.totals, s.perf_frequency)})
}

fn cmd_stats(cli: &Cli, h: &dyn DeviceHandle, reset: bool) -> Outcome {
    let c = Client::new(h);
    let r = if reset { c.reset() } else { c.stats() };
    match r {
        Ok(s) => Outcome::ok(print_totals(
            cli,
            if reset {
                "statistics reset; they were"
            } else {
                "cumulative statistics"
            },
            &s,
        )),
        Err(f) => failure(cli, if reset { "reset" } else { "stats" }, &f),
    }
}

fn cmd_raw(cli: &Cli, h: &dyn DeviceHandle, a: &RawArgs) -> Outcome {
    match h.ioctl(a.code, &a.input.0, a.out_len) {
        Ok(r) => {
            let shown = &r.output[..r.information.min(r.output.len())];
            if !cli.json {
                println!("status      {}", status_code(r.status));
                println!("meaning     {}", status_sentence(r.status));
                println!("information {}", r.information);
                println!("output      {}", to_hex(shown));
            }
            let ok = match a.expect {
                Some(e) => r.status == e,
                None => nt_abi::nt_success(r.status),
            };
            if !ok
                && !cli.json
                && let Some(e) = a.expect
            {
                eprintln!(
                    "wictl raw: expected {}, got {}",
                    status_code(e),
                    status_code(r.status)
                );
            }
            Outcome {
                code: if ok { exit::OK } else { exit::FAILED },
                json: json!({"status": status_code(r.status), "ntstatus": r.status as u32, "message": status_sentence(r.status),
                             "information": r.information, "output": to_hex(shown), "expected": a.expect.map(status_code)}),
            }
        }
        Err(e) => failure(cli, "raw", &Failure::Backend(e)),
    }
}

fn cmd_fuzz(cli: &Cli, backend: &dyn Backend, a: &FuzzArgs) -> Outcome {
    let classes: Vec<&'static str> = if a.class.is_empty() {
        fuzz::CLASSES.to_vec()
    } else {
        let mut v = Vec::new();
        for c in &a.class {
            match fuzz::CLASSES.iter().find(|k| **k == c.as_str()) {
                Some(k) => v.push(*k),
                None => {
                    eprintln!(
                        "wictl fuzz: unknown class {c}; classes: {}",
                        fuzz::CLASSES.join(", ")
                    );
                    return Outcome {
                        code: exit::USAGE,
                        json: json!({"error": "usage"}),
                    };
                }
            }
        }
        v
    };
    let (rw, ro) = match (backend.open(Access::ReadWrite), backend.open(Access::Read)) {
        (Ok(rw), Ok(ro)) => (rw, ro),
        (Err(e), _) | (_, Err(e)) => return failure(cli, "open", &Failure::Backend(e)),
    };
    let pb = progress_bar(cli, Some(a.count));
    let result = fuzz::run_fuzz(rw.as_ref(), ro.as_ref(), a.seed, a.count, &classes, |n| {
        pb.set_position(n)
    });
    pb.finish_and_clear();
    match result {
        Ok(report) => {
            if !cli.json {
                println!(
                    "fuzz: seed {}, {} requests, {} rejected as expected with statistics unchanged",
                    report.seed, report.cases, report.passed
                );
                println!("  {:<20}{:>8}{:>8}", "class", "cases", "passed");
                for (c, t) in &report.classes {
                    println!("  {c:<20}{:>8}{:>8}", t.cases, t.passed);
                }
                for m in report.mismatches.iter().take(20) {
                    println!(
                        "  MISMATCH #{} {} code {:#x} in {} out {}: {}",
                        m.index,
                        m.case.class,
                        m.case.code,
                        to_hex(&m.case.input),
                        m.case.out_len,
                        m.problem
                    );
                }
            }
            let code = if report.mismatches.is_empty() {
                exit::OK
            } else {
                exit::FAILED
            };
            Outcome {
                code,
                json: serde_json::to_value(&report).unwrap_or(Value::Null),
            }
        }
        Err(f) => failure(cli, "fuzz", &f),
    }
}

fn cmd_stress(cli: &Cli, backend: &dyn Backend, a: &StressArgs) -> Outcome {
    if a.threads == 0 {
        eprintln!("wictl stress: --threads must be at least 1");
        return Outcome {
            code: exit::USAGE,
            json: json!({"error": "usage"}),
        };
    }
    let mut handles: Vec<Arc<dyn DeviceHandle>> = Vec::new();
    for _ in 0..a.threads {
        match backend.open(Access::ReadWrite) {
            Ok(h) => handles.push(h),
            Err(e) => return failure(cli, "open", &Failure::Backend(e)),
        }
    }
    let control = Arc::clone(&handles[0]);
    let before = match Client::new(control.as_ref()).stats() {
        Ok(s) => s,
        Err(f) => return failure(cli, "stats", &f),
    };
    let limit = match (a.duration, a.count) {
        (Some(d), _) => Limit::Duration(d),
        (None, Some(n)) => Limit::Count(n),
        (None, None) => Limit::Count(100),
    };
    let cfg = StressConfig {
        threads: a.threads,
        limit,
        request: a.cycle.request(),
        mix: a.mix,
        seed: a.seed,
    };
    let pb = progress_bar(
        cli,
        match limit {
            Limit::Count(n) => Some(n),
            Limit::Duration(_) => None,
        },
    );
    if let Limit::Duration(_) = limit {
        pb.enable_steady_tick(Duration::from_millis(200));
    }
    let report = stress::run_stress(&handles, &cfg, &|n| pb.set_position(n));
    pb.finish_and_clear();
    drop(handles);
    let after = Client::new(control.as_ref()).stats();
    let mut code = exit::OK;
    let mut consistency = json!(null);
    if let Some(f) = &report.fatal {
        if !cli.json {
            eprintln!("wictl stress: stopped: {f}");
        }
        code = if f.contains("bug check") {
            exit::VERIFIER
        } else {
            exit::BACKEND
        };
    }
    let cumulative = a.cycle.request().flags & ioctl::RUN_FLAG_NO_CUMULATIVE == 0;
    match &after {
        Ok(after) => {
            let d_cycles = after
                .totals
                .cycles_completed
                .wrapping_sub(before.totals.cycles_completed);
            let d_runs = after.totals.runs.wrapping_sub(before.totals.runs);
            let (want_cycles, want_runs) = if cumulative {
                (report.cycles, report.succeeded)
            } else {
                (0, 0)
            };
            let ok = d_cycles == want_cycles && d_runs == want_runs;
            consistency = json!({"ok": ok, "stats_delta_cycles": d_cycles, "stats_delta_runs": d_runs,
                                 "responses_cycles": want_cycles, "responses_runs": want_runs});
            if !ok {
                code = code.max(exit::FAILED);
                if !cli.json {
                    eprintln!(
                        "wictl stress: cumulative statistics moved by {d_cycles} cycles / {d_runs} runs, but the responses add up to {want_cycles} / {want_runs} (another client using the device also causes this)"
                    );
                }
            }
        }
        Err(f) => {
            let o = failure(cli, "stats", f);
            code = code.max(o.code);
        }
    }
    let failed_requests = report.requests - report.succeeded;
    if failed_requests > 0 {
        code = code.max(exit::FAILED);
    }
    if !cli.json {
        println!(
            "{:>6} {:>10} {:>10} {:>12} {:>12} {:>9} {:>10}  failures",
            "thread", "requests", "ok", "cycles", "routines", "max-infl", "exhausted"
        );
        for (i, t) in report.threads.iter().enumerate() {
            let fails: Vec<String> = t.failures.iter().map(|(k, v)| format!("{k}×{v}")).collect();
            println!(
                "{i:>6} {:>10} {:>10} {:>12} {:>12} {:>9} {:>10}  {}",
                t.requests,
                t.succeeded,
                t.cycles,
                t.routines,
                t.max_in_flight,
                t.exhaustion,
                if fails.is_empty() {
                    "-".into()
                } else {
                    fails.join(" ")
                }
            );
        }
        println!(
            "{:>6} {:>10} {:>10} {:>12} {:>12}",
            "total", report.requests, report.succeeded, report.cycles, report.routines
        );
        let counts = |m: &mut dyn Iterator<Item = (String, u64)>| {
            m.map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "{:.2} s, {:.0} cycles/s; modes: {}; queue types: {}",
            report.elapsed_secs,
            report.cycles_per_sec,
            counts(&mut report.by_mode.iter().map(|(k, v)| (k.to_string(), *v))),
            counts(&mut report.by_queue.iter().map(|(k, v)| (k.clone(), *v)))
        );
        if consistency["ok"] == json!(true) {
            println!("cumulative statistics agree with the responses");
        }
    }
    Outcome {
        code,
        json: json!({"report": report, "consistency": consistency}),
    }
}

#[cfg(windows)]
fn cmd_service(cli: &Cli) -> Outcome {
    use wictl::windows as w;
    let r = match &cli.command {
        Command::Install(a) => w::install(&a.service.name, &a.sys),
        Command::Uninstall(a) => w::uninstall(&a.name),
        Command::Start(a) => w::start(&a.name),
        Command::Stop(a) => w::stop(&a.name),
        _ => unreachable!("not a service command"),
    };
    match r {
        Ok(m) => {
            if !cli.json {
                println!("{m}");
            }
            Outcome::ok(json!({"message": m}))
        }
        Err(m) => {
            if !cli.json {
                eprintln!("wictl: {m}");
            }
            Outcome {
                code: exit::BACKEND,
                json: json!({"error": "scm", "message": m}),
            }
        }
    }
}

#[cfg(not(windows))]
fn cmd_service(cli: &Cli) -> Outcome {
    let m = "install/uninstall/start/stop talk to the Windows service control manager; on Linux, use --ntsim DRIVER.sys";
    if !cli.json {
        eprintln!("wictl: {m}");
    }
    Outcome {
        code: exit::BACKEND,
        json: json!({"error": "platform", "message": m}),
    }
}

fn make_backend(cli: &Cli) -> Result<Box<dyn Backend>, BackendError> {
    if let Some(sys) = &cli.ntsim {
        #[cfg(target_os = "linux")]
        {
            let cfg = wictl::ntsim_backend::Options {
                size_of_work_item: cli.item_size,
                device: cli.device.clone(),
            };
            return wictl::ntsim_backend::NtsimBackend::load(sys, &cfg)
                .map(|b| Box::new(b) as Box<dyn Backend>);
        }
        #[cfg(not(target_os = "linux"))]
        return Err(BackendError::Io(format!(
            "--ntsim {} needs Linux x86_64",
            sys.display()
        )));
    }
    #[cfg(windows)]
    {
        Ok(Box::new(wictl::windows::DeviceBackend {
            path: cli
                .device
                .clone()
                .unwrap_or_else(|| ioctl::USER_PATH.to_string()),
        }))
    }
    #[cfg(not(windows))]
    Err(BackendError::Io(
        "no device here: pass --ntsim DRIVER.sys to run the driver in ntsim".into(),
    ))
}

fn run(cli: &Cli) -> Outcome {
    if let Command::Fuzz(a) = &cli.command
        && a.list
    {
        for c in fuzz::CLASSES {
            println!("{c}");
        }
        return Outcome::ok(json!({"classes": fuzz::CLASSES}));
    }
    if matches!(
        cli.command,
        Command::Install(_) | Command::Uninstall(_) | Command::Start(_) | Command::Stop(_)
    ) {
        return cmd_service(cli);
    }
    let backend = match make_backend(cli) {
        Ok(b) => b,
        Err(e) => {
            let mut o = failure(cli, "backend", &Failure::Backend(e));
            o.json = json!({"backend": Value::Null, "result": o.json});
            return o;
        }
    };
    let mut out = {
        let single = |access| backend.open(access);
        match &cli.command {
            Command::Fuzz(a) => cmd_fuzz(cli, backend.as_ref(), a),
            Command::Stress(a) => cmd_stress(cli, backend.as_ref(), a),
            cmd => {
                let access = match cmd {
                    Command::Info | Command::Stats => Access::Read,
                    Command::Raw(a) if a.read_only => Access::Read,
                    _ => Access::ReadWrite,
                };
                match single(access) {
                    Err(e) => failure(cli, "open", &Failure::Backend(e)),
                    Ok(h) => match cmd {
                        Command::Info => cmd_info(cli, h.as_ref()),
                        Command::Cycles(a) => cmd_cycles(cli, h.as_ref(), a),
                        Command::Stats => cmd_stats(cli, h.as_ref(), false),
                        Command::Reset => cmd_stats(cli, h.as_ref(), true),
                        Command::Raw(a) => cmd_raw(cli, h.as_ref(), a),
                        _ => unreachable!(),
                    },
                }
            }
        }
    };
    let description = backend.describe();
    if let Some(v) = backend.finish() {
        if !cli.json {
            for line in &v.lines {
                println!("{line}");
            }
        }
        if !v.clean {
            out.code = exit::VERIFIER;
        }
        out.json = json!({"backend": description, "result": out.json, "verifier": v});
    } else {
        out.json = json!({"backend": description, "result": out.json});
    }
    out
}

/// Die quietly on a closed pipe (`wictl … | head`), like other Unix tools, instead of panicking
/// in `println!`.
#[cfg(unix)]
fn default_sigpipe() {
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    unsafe extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    // SAFETY: `signal` from the C library, with a valid signal number and the SIG_DFL
    // disposition; called once, before any other thread exists.
    unsafe { signal(SIGPIPE, SIG_DFL) };
}

#[cfg(not(unix))]
fn default_sigpipe() {}

fn main() -> ExitCode {
    default_sigpipe();
    let cli = Cli::parse();
    let out = run(&cli);
    if cli.json {
        // Every command prints {"backend", "result", ["verifier"], "exit_code"}.
        let mut j = if out.json.get("result").is_some() {
            out.json
        } else {
            json!({"backend": Value::Null, "result": out.json})
        };
        if let Some(o) = j.as_object_mut() {
            o.insert("exit_code".into(), json!(out.code));
        }
        println!("{j}");
    }
    ExitCode::from(out.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_parsers() {
        assert_eq!(parse_queue("delayed"), Ok(1));
        assert_eq!(parse_queue("SuperCritical"), Ok(6));
        assert_eq!(parse_queue("custom:5"), Ok(37));
        assert_eq!(parse_queue("custom:0x1f"), Ok(63));
        assert!(parse_queue("custom:32").is_err());
        assert_eq!(
            parse_queue("7"),
            Ok(7),
            "raw numbers pass through for bad-input tests"
        );
        assert!(parse_queue("slow").is_err());
        assert_eq!(queue_name(37), "custom:5");
        assert_eq!(parse_mode("requeue"), Ok(Mode::RequeueChain as u32));
        assert_eq!(parse_mode("9"), Ok(9));
        assert!(parse_mode("fast").is_err());
        assert_eq!(
            parse_status("ACCESS_DENIED"),
            Ok(nt_abi::STATUS_ACCESS_DENIED)
        );
        assert_eq!(
            parse_status("STATUS_INVALID_PARAMETER"),
            Ok(nt_abi::STATUS_INVALID_PARAMETER)
        );
        assert_eq!(
            parse_status("0xC0000010"),
            Ok(nt_abi::STATUS_INVALID_DEVICE_REQUEST)
        );
        // One strict grammar (nt_abi::text): no separators, no signs.
        assert!(parse_u32("1_000").is_err());
        assert!(parse_u32("+5").is_err());
        assert_eq!(parse_u32("0x1F"), Ok(31));
        assert!(parse_hex_input("é1").is_err());
        assert!(parse_hex_input("+1+2").is_err());
        assert_eq!(parse_hex_input("0aff"), Ok(HexInput(vec![0x0a, 0xff])));
        for bad in [
            "inf", "-inf", "NaN", "nan", "1e300", "0", "-1", "31536001", "",
        ] {
            assert!(parse_duration(bad).is_err(), "--duration {bad}");
        }
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        for bad in ["1", "0x2F", "0x18", "0x1008", "0"] {
            assert!(parse_item_size(bad).is_err(), "--item-size {bad}");
        }
        assert_eq!(parse_item_size("0x20"), Ok(0x20));
        assert_eq!(parse_item_size("0x1000"), Ok(0x1000));
    }

    #[test]
    fn cycle_args_build_the_request() {
        let cli = Cli::parse_from([
            "wictl",
            "cycles",
            "-m",
            "requeue",
            "-n",
            "5",
            "-c",
            "2",
            "--yield",
            "--no-cumulative",
        ]);
        let Command::Cycles(a) = cli.command else {
            panic!()
        };
        let r = a.request();
        assert_eq!(
            (r.iterations, r.concurrency, r.mode, r.requeue_depth),
            (5, 2, 3, 4)
        );
        assert_eq!(r.flags, ioctl::RUN_FLAGS_ALL);
        assert_eq!(r.header, ioctl::Header::for_struct::<RunCyclesRequest>());
    }
}
