//! `ntsim`: run a WDM driver `.sys` under emulated ntoskrnl with verifier rules.
//!
//! Exit codes: 0 clean; 1 usage error, DriverEntry failure, timeout, leaks without a bug check
//! (verdict `leaks`) or an unopenable `--ioctl` device (`open_failed`); 2 the image was refused
//! (verdict `load_error`); 3 bug check; 4 the machine's process died (`host_corrupted`).
#![allow(clippy::result_large_err)]
use std::process::exit;

mod supervise;

use nt_abi::text;
use nt_abi::*;
use ntsim::{Config, IoctlRecord, Machine, OpenError, Report, SpecialPoolMode, Verdict, Verifier};
use supervise::ChildStream;

const HELP: &str = "\
ntsim — run a Windows WDM driver (.sys) on Linux with ntoskrnl semantics and Driver Verifier rules

USAGE:
    ntsim run <driver.sys> [--ioctl \\\\.\\NAME:CODE[:INPUT_HEX[:OUTPUT_LEN]]]...
              [--read \\\\.\\NAME:LEN]... [--write \\\\.\\NAME:HEX]...
              (each of the three may end in ,overlapped) [--cancel N]...
              [--size-of-work-item N] [--verifier standard|off|OPTION,...]
              [--special-pool overrun|underrun] [--json] [--echo-dbgprint] [--timeout SECONDS]
              [--debugger] [--dbg-filter COMPONENT=MASK]...
    ntsim imports            list the ntoskrnl exports ntsim emulates
    ntsim imports <driver.sys> [--json]
                             which of the driver's imports ntsim emulates; exit 0 when all
                             are (the driver can load), 2 when some are missing
    ntsim imports --markdown the emulated exports as the README's table
    ntsim bench [--iterations N] [--json]
                             work-item cycles/s (init+uninit; queue->routine->uninit),
                             verifier on and off
    ntsim --help

run: load the image, call DriverEntry, send each --ioctl, --read (IRP_MJ_READ of LEN bytes at
offset 0) and --write (IRP_MJ_WRITE of the HEX bytes at offset 0) in command-line order (each on
its own handle opened with read+write access, then closed), call DriverUnload, audit what the
driver still owns. LEN is a ULONG like OUTPUT_LEN; HEX is like INPUT_HEX.
A request spec ending in ,overlapped is sent as on a handle opened with FILE_FLAG_OVERLAPPED:
the run goes on when its dispatch routine returns; one left pending (STATUS_PENDING) completes
later, and its handle stays open until after the last step (then IRP_MJ_CLEANUP, cancellation
of what is still pending as at thread exit, IRP_MJ_CLOSE). --cancel N is CancelIoEx on request
N (0-based, counting --ioctl/--read/--write), which must be an earlier overlapped one.
CODE, OUTPUT_LEN (ULONGs) and N are decimal digits or 0x and hex digits, nothing else (no sign,
spaces or separators); INPUT_HEX is two hex digits per byte and may be empty; OUTPUT_LEN
defaults to 0. The driver file must be a regular file of at most 256 MiB.
--size-of-work-item: 0x20..=0x1000, a multiple of 8 (default 0x58).
The machine runs in a child process that streams the report to this one, so a driver that
corrupts ntsim's memory cannot take the report with it (verdict \"host_corrupted\").
--verifier: standard (default, all options), off, or a comma-separated list of special_pool,
pool_tracking, irql_checking, io_verification, misc_checks, deadlock_detection,
security_checks.
--special-pool: where special pool
puts the guard page (overrun = after the block, the default; underrun = before it).
--debugger: a kernel debugger is attached, answering every break with \"ignore\": breakpoints
(int3, DbgBreakPoint, DbgBreakPointWithStatus, KdBreakPoint), NT_ASSERT and failed ASSERTs
(RtlAssert) are reported in \"debugger\" and continued. Without it, as on Windows with no
debugger, they are STATUS_BREAKPOINT exceptions: unhandled, a bug check (0x7E/0x3B/0x1E,
p1 0x80000003).
--dbg-filter COMPONENT=MASK (repeatable): a Kd_<COMPONENT>_Mask at boot (IHVDRIVER, DEFAULT,
WIN2000, any dpfilter.h name or id), like the Debug Print Filter registry key. DbgPrintEx
messages reach \"dbgprint\" when their level bit (Level 0..31 = 1<<Level, else Level itself)
is in the component's mask or in WIN2000 (default 1: error level); DbgPrint/KdPrint are
DEFAULT/INFO (3), filtered out unless e.g. DEFAULT=0xF.
--timeout (default 600, 0 = none): a run that does not finish in time (a driver deadlock) is
killed and ends with verdict \"timeout\" and the step in progress in \"timed_out_in\".

EXIT CODES:
    0  clean
    1  usage error, DriverEntry failed (\"start_failed\"), a timeout, leaks without a bug check
       (\"leaks\"), or an --ioctl's device could not be opened (\"open_failed\")
    2  the image was refused (\"load_error\": not a regular file, malformed, not x64/NATIVE,
       missing imports)
    3  bug check
    4  the process running the machine died before the report was complete
       (\"host_corrupted\"; \"bugcheck\" holds the last bug check raised before, if any)

--json prints one object:
    {\"driver\", \"load_error\", \"driver_entry\": {\"status\", \"status_name\"},
     \"ioctls\": [{\"device\", \"major\", \"code\", \"length\", \"status\", \"status_name\", \"open_status\",
                 \"information\", \"output_hex\", \"overlapped\": null | {\"pending\",
                 \"cancel_routine_called\": null | bool}}]  (every --ioctl, --read, --write, in order),
     \"dbgprint\": [...], \"dbgprint_filtered\": n, \"debugger\": null | [{\"kind\", \"code\",
     \"address\", \"context\", \"text\", \"expression\", \"file\", \"line\", \"message\"}],
     \"bugcheck\": {\"code\", \"parameters\", \"name\", \"meaning\", \"address\",
     \"context\", \"documented_only\", \"verifier_rule\"} | null, \"leaks\": {...} | null,
     \"timed_out_in\": null | \"step\", \"host_error\": null | \"how the machine's process ended\",
     \"verdict\": \"clean\"|\"leaks\"|\"bugcheck\"|\"load_error\"|\"start_failed\"|\"timeout\"
                |\"open_failed\"|\"host_corrupted\"}
";

fn usage(msg: &str) -> ! {
    eprintln!("ntsim: {msg}\n\n{HELP}");
    exit(1)
}

/// Print to stdout without panicking when stdout is closed (`ntsim run … | head -0`).
fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

fn parse_num(what: &str, s: &str) -> Result<u64, String> {
    text::parse_u64(s).map_err(|e| format!("bad {what} {s:?}: {e}"))
}

#[derive(Debug)]
struct IoctlSpec {
    device: String,
    /// IRP_MJ_DEVICE_CONTROL (`--ioctl`), IRP_MJ_READ (`--read`: `out_len` bytes) or
    /// IRP_MJ_WRITE (`--write`: `input`).
    major: u8,
    code: u32,
    input: Vec<u8>,
    /// A ULONG, as `DeviceIoControl`'s nOutBufferSize (or ReadFile's nNumberOfBytesToRead).
    out_len: u32,
    /// Sent overlapped (the spec ended in `,overlapped`).
    overlapped: bool,
}

/// One step of `ntsim run`, in command-line order.
#[derive(Debug)]
enum Step {
    Request(IoctlSpec),
    /// `--cancel N`: CancelIoEx on overlapped request N.
    Cancel(usize),
}

/// The `,overlapped` suffix of a request spec.
const OVERLAPPED_SUFFIX: &str = ",overlapped";

/// Parse a request spec with its optional `,overlapped` suffix.
fn parse_request(
    s: &str,
    parse: fn(&str) -> Result<IoctlSpec, String>,
) -> Result<IoctlSpec, String> {
    match s.strip_suffix(OVERLAPPED_SUFFIX) {
        Some(base) => parse(base).map(|mut spec| {
            spec.overlapped = true;
            spec
        }),
        None => parse(s),
    }
}

/// `--cancel N`: N must name an earlier request sent overlapped.
fn parse_cancel(v: &str, steps: &[Step]) -> Result<Step, String> {
    let n = text::parse_u64(v).map_err(|e| format!("bad --cancel {v:?}: {e}"))?;
    let requests: Vec<&IoctlSpec> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Request(r) => Some(r),
            Step::Cancel(_) => None,
        })
        .collect();
    match requests.get(n as usize) {
        Some(r) if r.overlapped => Ok(Step::Cancel(n as usize)),
        Some(_) => Err(format!(
            "bad --cancel {v}: request #{n} is not overlapped (end its spec in {OVERLAPPED_SUFFIX})"
        )),
        None => Err(format!(
            "bad --cancel {v}: only {} request(s) come before it (N counts --ioctl, --read and --write from 0)",
            requests.len()
        )),
    }
}

/// `--read \\.\NAME:LEN` (LEN a ULONG, like ReadFile's nNumberOfBytesToRead).
fn parse_read(s: &str) -> Result<IoctlSpec, String> {
    let (device, len) = s
        .split_once(':')
        .filter(|(d, _)| !d.is_empty())
        .ok_or_else(|| format!("bad --read {s:?}: expected \\\\.\\NAME:LEN"))?;
    let out_len = text::parse_ulong(len).map_err(|e| {
        format!("bad --read LEN {len:?} (a ULONG, like ReadFile's nNumberOfBytesToRead): {e}")
    })?;
    Ok(IoctlSpec {
        device: device.to_string(),
        major: IRP_MJ_READ,
        code: 0,
        input: Vec::new(),
        out_len,
        overlapped: false,
    })
}

/// `--write \\.\NAME:HEX` (two hex digits per byte; may be empty: a zero-length write).
fn parse_write(s: &str) -> Result<IoctlSpec, String> {
    let (device, h) = s
        .split_once(':')
        .filter(|(d, _)| !d.is_empty())
        .ok_or_else(|| format!("bad --write {s:?}: expected \\\\.\\NAME:HEX"))?;
    let input: Vec<u8> = text::parse_hex_bytes(h)
        .map_err(|e| format!("bad --write HEX {h:?}: {e}"))?
        .collect();
    Ok(IoctlSpec {
        device: device.to_string(),
        major: IRP_MJ_WRITE,
        code: 0,
        input,
        out_len: 0,
        overlapped: false,
    })
}

fn parse_ioctl(s: &str) -> Result<IoctlSpec, String> {
    let parts: Vec<&str> = s.splitn(4, ':').collect();
    if parts.len() < 2 || parts[0].is_empty() {
        return Err(format!(
            "bad --ioctl {s:?}: expected \\\\.\\NAME:CODE[:INPUT_HEX[:OUTPUT_LEN]]"
        ));
    }
    let code = text::parse_ulong(parts[1])
        .map_err(|e| format!("bad IOCTL code {:?} (a ULONG): {e}", parts[1]))?;
    let input = match parts.get(2) {
        Some(h) => text::parse_hex_bytes(h)
            .map_err(|e| format!("bad INPUT_HEX {h:?}: {e}"))?
            .collect(),
        None => Vec::new(),
    };
    let out_len = match parts.get(3) {
        Some(n) if !n.is_empty() => text::parse_ulong(n).map_err(|e| {
            format!("bad OUTPUT_LEN {n:?} (a ULONG, like DeviceIoControl's nOutBufferSize): {e}")
        })?,
        _ => 0,
    };
    Ok(IoctlSpec {
        device: parts[0].to_string(),
        major: IRP_MJ_DEVICE_CONTROL,
        code,
        input,
        out_len,
        overlapped: false,
    })
}

fn finish(report: &Report, json: bool) -> ! {
    if json {
        out(&format!("{}\n", report.to_json()));
    } else {
        out(&report.to_human());
    }
    exit(report.verdict.exit_code())
}

/// `--timeout` default, seconds (0 = none).
const DEFAULT_TIMEOUT_SECS: u64 = 600;

/// `ntsim run` arguments.
struct RunOpts {
    path: String,
    steps: Vec<Step>,
    cfg: Config,
    json: bool,
    timeout: u64,
}

fn parse_run(args: &[String]) -> RunOpts {
    let mut path: Option<String> = None;
    let mut ioctls: Vec<Step> = Vec::new();
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
                let r = parse_request(&v, parse_ioctl).unwrap_or_else(|e| usage(&e));
                ioctls.push(Step::Request(r));
            }
            "--read" => {
                let v = value("--read");
                let r = parse_request(&v, parse_read).unwrap_or_else(|e| usage(&e));
                ioctls.push(Step::Request(r));
            }
            "--write" => {
                let v = value("--write");
                let r = parse_request(&v, parse_write).unwrap_or_else(|e| usage(&e));
                ioctls.push(Step::Request(r));
            }
            "--cancel" => {
                let v = value("--cancel");
                let c = parse_cancel(&v, &ioctls).unwrap_or_else(|e| usage(&e));
                ioctls.push(c);
            }
            "--size-of-work-item" => {
                let v = value("--size-of-work-item");
                let n = parse_num("--size-of-work-item", &v).unwrap_or_else(|e| usage(&e));
                if !is_emulated_io_workitem_size(n) {
                    usage(&format!(
                        "bad --size-of-work-item {v:?}: IoSizeofWorkItem must be \
                         {EMULATED_IO_WORKITEM_SIZE_MIN:#x}..={EMULATED_IO_WORKITEM_SIZE_MAX:#x} \
                         and a multiple of {EMULATED_IO_WORKITEM_SIZE_ALIGN} (shipped x64 \
                         Windows: 0x40, 0x58, 0x60)"
                    ));
                }
                cfg.size_of_work_item = n as u32;
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
            "--debugger" => cfg.debugger = true,
            "--dbg-filter" => {
                let v = value("--dbg-filter");
                cfg.dbg_filter
                    .push(ntsim::DbgFilter::parse(&v).unwrap_or_else(|e| usage(&e)));
            }
            "--timeout" => {
                let v = value("--timeout");
                timeout = parse_num("--timeout", &v).unwrap_or_else(|e| usage(&e));
            }
            "-h" | "--help" => {
                out(HELP);
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
    RunOpts {
        path,
        steps: ioctls,
        cfg,
        json,
        timeout,
    }
}

/// `ntsim run`: supervise a child that runs the machine (see `supervise.rs`).
fn cmd_run(args: &[String]) -> ! {
    let o = parse_run(args);
    let mut report = supervise::supervise(args, &o.path, o.timeout);
    if o.cfg.debugger {
        report.debugger.get_or_insert_with(Vec::new);
    } else {
        report.debugger = None;
    }
    if !o.json
        && let Some(e) = &report.load_error
    {
        eprintln!("ntsim: {e}");
    }
    finish(&report, o.json)
}

/// The supervised child: run the machine, streaming the report to the supervisor.
fn cmd_run_child(args: &[String]) -> ! {
    let o = parse_run(args);
    let s = ChildStream::start();
    let machine = std::sync::Arc::new(Machine::new(o.cfg));
    s.monitor(machine.clone());
    let driver = match machine.load_driver(&o.path) {
        Ok(d) => d,
        Err(e) => {
            s.load_error(&e.to_string());
            s.finish(None, Verdict::LoadError)
        }
    };
    let done = |v: Verdict| -> ! {
        let v = if machine.bugcheck().is_some() {
            Verdict::Bugcheck
        } else {
            v
        };
        s.finish(Some(&machine), v)
    };
    s.step("DriverEntry");
    match driver.start() {
        Err(_) => done(Verdict::Bugcheck),
        Ok(st) => {
            s.driver_entry(st);
            if !nt_success(st) {
                // Windows unloads the image without calling DriverUnload: whatever the failed
                // DriverEntry left behind is reported.
                s.leaks(&driver.audit());
                done(Verdict::StartFailed);
            }
        }
    }
    let mut open_failed = false;
    // Records are streamed in request order as each becomes final (an overlapped request's
    // when it has completed, after the last step).
    let mut recs: Vec<IoctlRecord> = Vec::new();
    let mut sent = 0usize;
    // Overlapped requests still in flight: (request number, its handle, the request).
    let mut inflight: Vec<(usize, ntsim::Handle, ntsim::Pending)> = Vec::new();
    let flush = |recs: &[IoctlRecord], sent: &mut usize, upto: usize| {
        while *sent < upto.min(recs.len()) {
            s.ioctl(&recs[*sent]);
            *sent += 1;
        }
    };
    let fill = |rec: &mut IoctlRecord, r: ntsim::IoResult| {
        rec.status = Some(r.status);
        rec.information = r.information;
        rec.output = r.output;
    };
    for step in &o.steps {
        let spec = match step {
            Step::Request(spec) => spec,
            Step::Cancel(n) => {
                s.step(&format!("cancel #{n}"));
                let called = match inflight.iter().find(|(i, _, _)| i == n) {
                    Some((_, _, p)) => match p.cancel() {
                        Ok(c) => c,
                        Err(_) => {
                            flush(&recs, &mut sent, usize::MAX);
                            done(Verdict::Bugcheck)
                        }
                    },
                    // Completed already (or its open failed): nothing to cancel.
                    None => false,
                };
                if let Some(ov) = recs[*n].overlapped.as_mut() {
                    ov.cancel_routine_called = Some(called);
                }
                continue;
            }
        };
        let n = recs.len();
        s.step(&match spec.major {
            IRP_MJ_READ => format!("read #{n} ({})", spec.device),
            IRP_MJ_WRITE => format!("write #{n} ({})", spec.device),
            _ => format!("IOCTL #{n} ({:#x})", spec.code),
        });
        let mut rec = IoctlRecord {
            device: spec.device.clone(),
            major: spec.major,
            code: spec.code,
            length: if spec.major == IRP_MJ_WRITE {
                spec.input.len()
            } else {
                spec.out_len as usize
            },
            status: None,
            open_status: None,
            information: 0,
            output: Vec::new(),
            overlapped: None,
        };
        match machine.open(&spec.device, GENERIC_READ | GENERIC_WRITE) {
            Err(OpenError::Status(st)) => {
                rec.open_status = Some(st);
                open_failed = true;
            }
            Err(OpenError::BugCheck(_)) => {
                recs.push(rec);
                flush(&recs, &mut sent, usize::MAX);
                done(Verdict::Bugcheck);
            }
            Ok(h) => {
                // The I/O manager allocates the system buffer (or the output buffer) before
                // the driver sees the IRP; when that allocation fails, DeviceIoControl fails
                // with STATUS_INSUFFICIENT_RESOURCES and the driver is never called (ReactOS
                // ntoskrnl/io/iomgr/iofunc.c, IopDeviceFsIoControl).
                let buffer = spec.input.len().max(spec.out_len as usize);
                let mut keep = None;
                if Vec::<u8>::new().try_reserve_exact(buffer).is_err() {
                    rec.status = Some(STATUS_INSUFFICIENT_RESOURCES);
                } else if spec.overlapped {
                    let p = match spec.major {
                        IRP_MJ_READ => h.read_overlapped(0, spec.out_len as usize),
                        IRP_MJ_WRITE => h.write_overlapped(0, &spec.input),
                        _ => h.device_io_control_overlapped(
                            spec.code,
                            &spec.input,
                            spec.out_len as usize,
                        ),
                    };
                    match p {
                        Ok(p) => {
                            rec.overlapped = Some(ntsim::OverlappedRecord {
                                pending: p.returned_pending(),
                                cancel_routine_called: None,
                            });
                            match p.irp() {
                                // Completed by the time the dispatch routine returned.
                                None => {
                                    if let Some(r) = p.try_result() {
                                        fill(&mut rec, r);
                                    }
                                }
                                Some(_) => keep = Some(p),
                            }
                        }
                        Err(_) => {
                            recs.push(rec);
                            flush(&recs, &mut sent, usize::MAX);
                            done(Verdict::Bugcheck);
                        }
                    }
                } else {
                    let r = match spec.major {
                        IRP_MJ_READ => h.read(spec.out_len as usize),
                        IRP_MJ_WRITE => h.write(&spec.input),
                        _ => h.device_io_control(spec.code, &spec.input, spec.out_len as usize),
                    };
                    match r {
                        Ok(r) => fill(&mut rec, r),
                        Err(_) => {
                            recs.push(rec);
                            flush(&recs, &mut sent, usize::MAX);
                            done(Verdict::Bugcheck);
                        }
                    }
                }
                match keep {
                    // Its handle stays open while it is in flight.
                    Some(p) => inflight.push((n, h, p)),
                    None => {
                        if h.close().is_err() {
                            recs.push(rec);
                            flush(&recs, &mut sent, usize::MAX);
                            done(Verdict::Bugcheck);
                        }
                    }
                }
            }
        }
        recs.push(rec);
        let first_inflight = inflight.first().map_or(usize::MAX, |(i, _, _)| *i);
        flush(&recs, &mut sent, first_inflight);
    }
    // The requesting "process" ends: each overlapped request's handle is closed (IRP_MJ_CLEANUP,
    // the rundown that cancels what is still pending, IRP_MJ_CLOSE), then its result is read.
    for (n, h, p) in inflight {
        s.step(&format!("completion of #{n}"));
        if h.close().is_err() {
            flush(&recs, &mut sent, usize::MAX);
            done(Verdict::Bugcheck);
        }
        if let Some(r) = p.try_result() {
            fill(&mut recs[n], r);
        }
        flush(&recs, &mut sent, n + 1);
    }
    flush(&recs, &mut sent, usize::MAX);
    s.step("DriverUnload");
    // Every handle is closed above, so the unload is not held up by an open handle.
    match driver.unload() {
        Err(ntsim::UnloadError::OpenHandles(open)) => {
            s.timed_out_in(&format!(
                "DriverUnload ({})",
                ntsim::UnloadError::OpenHandles(open)
            ));
            done(Verdict::Timeout)
        }
        Err(ntsim::UnloadError::BugCheck(_)) => {
            if let Some(l) = machine.last_unload_audit() {
                s.leaks(&l);
            }
            done(Verdict::Bugcheck)
        }
        Ok(r) => {
            s.leaks(&r);
            done(if !r.is_clean() {
                Verdict::Leaks
            } else if open_failed {
                Verdict::OpenFailed
            } else {
                Verdict::Clean
            })
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
                    .and_then(|s| text::parse_u64(s).ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage("bad --iterations (a number above 0)"));
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
        out(&format!("[{}]\n", arr.join(",")));
    } else {
        for r in &results {
            out(&format!(
                "verifier {:<8} init+uninit: {:>12.0} cycles/s   queue->routine->uninit: {:>10.0} cycles/s   ioctl: {:>8.0}/s   ({} iterations)\n",
                if r.verifier == Verifier::Standard {
                    "standard"
                } else {
                    "off"
                },
                r.init_uninit_per_sec,
                r.queue_cycle_per_sec,
                r.ioctl_per_sec,
                r.iterations
            ));
        }
    }
    exit(0)
}

/// `ntsim imports [<driver.sys> [--json] | --markdown]`.
fn cmd_imports(args: &[String]) -> ! {
    let mut path: Option<&str> = None;
    let (mut json, mut markdown) = (false, false);
    for a in args {
        match a.as_str() {
            "--json" => json = true,
            "--markdown" => markdown = true,
            "-h" | "--help" => {
                out(HELP);
                exit(0)
            }
            s if s.starts_with("--") => usage(&format!("unknown imports option {s}")),
            s if path.is_none() => path = Some(s),
            s => usage(&format!("unexpected argument {s}")),
        }
    }
    match (path, markdown) {
        (Some(_), true) => usage("imports: --markdown lists the emulated exports; give no driver"),
        (None, true) if json => usage("imports: --markdown and --json exclude each other"),
        (None, true) => {
            out(&ntsim::imports::markdown());
            exit(0)
        }
        (None, false) if json => usage("imports --json needs a driver path"),
        (None, false) => {
            for n in ntsim::exports::names() {
                out(&format!("ntoskrnl.exe!{n}\n"));
            }
            exit(0)
        }
        (Some(p), false) => {
            let r = ntsim::imports::ImportsReport::of(std::path::Path::new(p));
            if json {
                out(&format!("{}\n", r.to_json()));
            } else {
                out(&r.to_human());
            }
            exit(r.exit_code())
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            out(HELP);
            exit(if args.is_empty() { 1 } else { 0 })
        }
        Some("run") => cmd_run(&args[1..]),
        Some(supervise::CHILD_COMMAND) => cmd_run_child(&args[1..]),
        Some("bench") => cmd_bench(&args[1..]),
        Some("imports") => cmd_imports(&args[1..]),
        Some(other) => usage(&format!("unknown command {other}")),
    }
}
