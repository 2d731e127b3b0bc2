//! `ntsim`: run a WDM driver `.sys` under emulated ntoskrnl with verifier rules.
//!
//! Exit codes: 0 clean; 1 usage error, DriverEntry failure, or leaks without a bug check
//! (verdict `leaks`); 2 the image was refused (verdict `load_error`); 3 bug check.
#![allow(clippy::result_large_err)]
use std::process::exit;

use nt_abi::*;
use ntsim::{Config, IoctlRecord, Machine, OpenError, Report, SpecialPoolMode, Verdict, Verifier};

const HELP: &str = "\
ntsim — run a Windows WDM driver (.sys) on Linux with ntoskrnl semantics and Driver Verifier rules

USAGE:
    ntsim run <driver.sys> [--ioctl \\\\.\\NAME:CODE[:INPUT_HEX[:OUTPUT_LEN]]]...
              [--size-of-work-item N] [--verifier standard|off|OPTION,...]
              [--special-pool overrun|underrun] [--json] [--echo-dbgprint] [--timeout SECONDS]
    ntsim imports            list the ntoskrnl exports ntsim emulates
    ntsim bench [--iterations N] [--json]
                             work-item cycles/s (init+uninit; queue->routine->uninit),
                             verifier on and off
    ntsim --help

run: load the image, call DriverEntry, send each --ioctl in order (each on its own handle opened
with read+write access, then closed), call DriverUnload, audit what the driver still owns.
CODE and N are hex (0x...) or decimal; INPUT_HEX may be empty; OUTPUT_LEN defaults to 0.
--verifier: standard (default, all options), off, or a comma-separated list of special_pool,
pool_tracking, irql_checking, io_verification, misc_checks. --special-pool: where special pool
puts the guard page (overrun = after the block, the default; underrun = before it).
--timeout (default 600, 0 = none): a step that does not finish in time (a driver deadlock)
ends the run with verdict \"timeout\" and the step named in \"timed_out_in\".

EXIT CODES:
    0  clean
    1  usage error, DriverEntry failed, a timeout, or leaks without a bug check (verdict \"leaks\")
    2  the image was refused (malformed, not x64/NATIVE, missing imports)
    3  bug check

--json prints one object:
    {\"driver\", \"load_error\", \"driver_entry\": {\"status\", \"status_name\"},
     \"ioctls\": [{\"device\", \"code\", \"status\", \"status_name\", \"open_status\", \"information\", \"output_hex\"}],
     \"dbgprint\": [...], \"bugcheck\": {\"code\", \"parameters\", \"name\", \"meaning\", \"address\",
     \"context\", \"documented_only\", \"verifier_rule\"} | null, \"leaks\": {...} | null,
     \"timed_out_in\": null | \"step\",
     \"verdict\": \"clean\"|\"leaks\"|\"bugcheck\"|\"load_error\"|\"start_failed\"|\"timeout\"}
";

fn usage(msg: &str) -> ! {
    eprintln!("ntsim: {msg}\n\n{HELP}");
    exit(1)
}

fn parse_num(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

struct IoctlSpec {
    device: String,
    code: u32,
    input: Vec<u8>,
    out_len: usize,
}

fn parse_ioctl(s: &str) -> Result<IoctlSpec, String> {
    let parts: Vec<&str> = s.splitn(4, ':').collect();
    if parts.len() < 2 || parts[0].is_empty() {
        return Err(format!(
            "bad --ioctl {s:?}: expected \\\\.\\NAME:CODE[:INPUT_HEX[:OUTPUT_LEN]]"
        ));
    }
    let code = parse_num(parts[1])
        .filter(|&c| c <= u32::MAX as u64)
        .ok_or(format!("bad IOCTL code {:?}", parts[1]))?;
    let input = match parts.get(2) {
        Some(h) => parse_hex(h).ok_or(format!("bad INPUT_HEX {h:?}"))?,
        None => Vec::new(),
    };
    let out_len = match parts.get(3) {
        Some(n) if !n.is_empty() => parse_num(n).ok_or(format!("bad OUTPUT_LEN {n:?}"))? as usize,
        _ => 0,
    };
    Ok(IoctlSpec {
        device: parts[0].to_string(),
        code: code as u32,
        input,
        out_len,
    })
}

fn finish(report: &Report, json: bool) -> ! {
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_human());
    }
    exit(report.verdict.exit_code())
}

/// `--timeout` default, seconds (0 = none).
const DEFAULT_TIMEOUT_SECS: u64 = 600;

/// The report so far and the step in progress, for the watchdog.
static PROGRESS: std::sync::Mutex<Option<(Report, String)>> = std::sync::Mutex::new(None);

fn checkpoint(r: &Report, step: &str) {
    *PROGRESS.lock().unwrap_or_else(|e| e.into_inner()) = Some((r.clone(), step.to_string()));
}

/// Report a step that never finishes (a driver deadlock) instead of hanging the caller.
fn watchdog(m: std::sync::Arc<Machine>, driver: String, secs: u64, json: bool) {
    std::thread::sleep(std::time::Duration::from_secs(secs));
    let snapshot = PROGRESS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (mut r, step) = snapshot.unwrap_or_else(|| {
        (
            Report {
                driver,
                load_error: None,
                driver_entry: None,
                ioctls: Vec::new(),
                dbgprint: Vec::new(),
                bugcheck: None,
                leaks: None,
                timed_out_in: None,
                verdict: Verdict::Timeout,
            },
            "loading".to_string(),
        )
    });
    r.dbgprint = m.dbgprint_lines();
    r.bugcheck = m.bugcheck();
    r.verdict = if r.bugcheck.is_some() {
        Verdict::Bugcheck
    } else {
        Verdict::Timeout
    };
    r.timed_out_in = Some(step);
    finish(&r, json)
}

fn cmd_run(args: &[String]) -> ! {
    let mut path: Option<String> = None;
    let mut ioctls = Vec::new();
    let mut cfg = Config::default();
    let mut json = false;
    let mut timeout = DEFAULT_TIMEOUT_SECS;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let mut value = |name: &str| -> String {
            i += 1;
            args.get(i)
                .cloned()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match a {
            "--ioctl" => {
                let v = value("--ioctl");
                ioctls.push(parse_ioctl(&v).unwrap_or_else(|e| usage(&e)));
            }
            "--size-of-work-item" => {
                let v = value("--size-of-work-item");
                cfg.size_of_work_item = parse_num(&v)
                    .filter(|&n| (0x20..=0x1000).contains(&n))
                    .unwrap_or_else(|| usage(&format!("bad --size-of-work-item {v:?}")))
                    as u32;
            }
            "--verifier" => {
                cfg.verifier = Verifier::parse(&value("--verifier")).unwrap_or_else(|e| usage(&e));
            }
            "--special-pool" => {
                let v = value("--special-pool");
                cfg.special_pool = match v.as_str() {
                    "overrun" => SpecialPoolMode::Overrun,
                    "underrun" => SpecialPoolMode::Underrun,
                    other => usage(&format!(
                        "bad --special-pool {other:?} (overrun|underrun; special pool itself is the verifier's special_pool option)"
                    )),
                };
            }
            "--json" => json = true,
            "--echo-dbgprint" => cfg.echo_dbgprint = true,
            "--timeout" => {
                let v = value("--timeout");
                timeout = parse_num(&v).unwrap_or_else(|| usage(&format!("bad --timeout {v:?}")));
            }
            "-h" | "--help" => {
                print!("{HELP}");
                exit(0)
            }
            s if s.starts_with("--") => usage(&format!("unknown option {s}")),
            s => {
                if path.is_some() {
                    usage(&format!("unexpected argument {s}"));
                }
                path = Some(s.to_string());
            }
        }
        i += 1;
    }
    let Some(path) = path else {
        usage("run needs a driver path")
    };
    let machine = std::sync::Arc::new(Machine::new(cfg));
    if timeout > 0 {
        let (m, base) = (machine.clone(), path.clone());
        std::thread::spawn(move || watchdog(m, base, timeout, json));
    }
    let mut report = Report {
        driver: path.clone(),
        load_error: None,
        driver_entry: None,
        ioctls: Vec::new(),
        dbgprint: Vec::new(),
        bugcheck: None,
        leaks: None,
        timed_out_in: None,
        verdict: Verdict::Clean,
    };
    let driver = match machine.load_driver(&path) {
        Ok(d) => d,
        Err(e) => {
            report.load_error = Some(e.to_string());
            report.verdict = Verdict::LoadError;
            if !json {
                eprintln!("ntsim: {e}");
            }
            finish(&report, json);
        }
    };
    let done = |mut report: Report| -> ! {
        report.dbgprint = machine.dbgprint_lines();
        if let Some(b) = machine.bugcheck() {
            report.bugcheck = Some(b);
            report.verdict = Verdict::Bugcheck;
        }
        finish(&report, json)
    };
    checkpoint(&report, "DriverEntry");
    match driver.start() {
        Err(_) => done(report),
        Ok(st) => {
            report.driver_entry = Some(st);
            if !nt_success(st) {
                // Windows unloads the image without calling DriverUnload: whatever the failed
                // DriverEntry left behind is reported.
                report.leaks = Some(driver.audit());
                report.verdict = Verdict::StartFailed;
                done(report);
            }
        }
    }
    for (n, spec) in ioctls.iter().enumerate() {
        checkpoint(&report, &format!("IOCTL #{n} ({:#x})", spec.code));
        let mut rec = IoctlRecord {
            device: spec.device.clone(),
            code: spec.code,
            status: None,
            open_status: None,
            information: 0,
            output: Vec::new(),
        };
        match machine.open(&spec.device, GENERIC_READ | GENERIC_WRITE) {
            Err(OpenError::Status(s)) => rec.open_status = Some(s),
            Err(OpenError::BugCheck(_)) => {
                report.ioctls.push(rec);
                done(report);
            }
            Ok(h) => {
                match h.device_io_control(spec.code, &spec.input, spec.out_len) {
                    Ok(r) => {
                        rec.status = Some(r.status);
                        rec.information = r.information;
                        rec.output = r.output;
                    }
                    Err(_) => {
                        report.ioctls.push(rec);
                        done(report);
                    }
                }
                if h.close().is_err() {
                    report.ioctls.push(rec);
                    done(report);
                }
            }
        }
        report.ioctls.push(rec);
    }
    checkpoint(&report, "DriverUnload");
    // Every handle is closed above, so the unload is not held up by an open handle.
    match driver.unload() {
        Err(ntsim::UnloadError::OpenHandles(open)) => {
            report.verdict = Verdict::Timeout;
            report.timed_out_in = Some(format!(
                "DriverUnload ({})",
                ntsim::UnloadError::OpenHandles(open)
            ));
            done(report)
        }
        Err(ntsim::UnloadError::BugCheck(_)) => {
            report.leaks = machine.last_unload_audit();
            done(report)
        }
        Ok(r) => {
            report.verdict = if r.is_clean() {
                Verdict::Clean
            } else {
                Verdict::Leaks
            };
            report.leaks = Some(r);
            done(report)
        }
    }
}

fn cmd_bench(args: &[String]) -> ! {
    let mut iterations = 20_000u64;
    let mut json = false;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--iterations" => {
                i += 1;
                iterations = args
                    .get(i)
                    .and_then(|s| parse_num(s))
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage("bad --iterations"));
            }
            "--json" => json = true,
            s => usage(&format!("unknown bench argument {s}")),
        }
        i += 1;
    }
    let results: Vec<_> = [Verifier::Standard, Verifier::Off]
        .into_iter()
        .map(|v| ntsim::bench::run(v, iterations))
        .collect();
    if json {
        let arr: Vec<String> = results
            .iter()
            .map(|r| {
                format!(
                    "{{\"verifier\":\"{}\",\"iterations\":{},\"init_uninit_per_sec\":{:.0},\"queue_routine_uninit_per_sec\":{:.0},\"ioctl_per_sec\":{:.0}}}",
                    if r.verifier == Verifier::Standard { "standard" } else { "off" },
                    r.iterations,
                    r.init_uninit_per_sec,
                    r.queue_cycle_per_sec,
                    r.ioctl_per_sec
                )
            })
            .collect();
        println!("[{}]", arr.join(","));
    } else {
        for r in &results {
            println!(
                "verifier {:<8} init+uninit: {:>12.0} cycles/s   queue->routine->uninit: {:>10.0} cycles/s   ioctl: {:>8.0}/s   ({} iterations)",
                if r.verifier == Verifier::Standard {
                    "standard"
                } else {
                    "off"
                },
                r.init_uninit_per_sec,
                r.queue_cycle_per_sec,
                r.ioctl_per_sec,
                r.iterations
            );
        }
    }
    exit(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            print!("{HELP}");
            exit(if args.is_empty() { 1 } else { 0 })
        }
        Some("run") => cmd_run(&args[1..]),
        Some("bench") => cmd_bench(&args[1..]),
        Some("imports") => {
            for n in ntsim::exports::names() {
                println!("ntoskrnl.exe!{n}");
            }
            exit(0)
        }
        Some(other) => usage(&format!("unknown command {other}")),
    }
}
