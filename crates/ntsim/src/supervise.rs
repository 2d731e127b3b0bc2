//! `ntsim run` as a supervisor: a driver shares the address space of the process that runs it,
//! so a wild driver can corrupt ntsim's own memory and kill that process (SIGSEGV, SIGABRT
//! from the allocator) after the bug check it caused was raised. The verdict must survive
//! that, so the CLI re-executes itself as a child that runs the emulated machine and streams the
//! report as it forms over a pipe; the parent rebuilds the report from the stream, and always
//! prints it and exits with a documented code:
//!
//! - the child finished the report: its verdict;
//! - the child died before that (a signal, an abort, a panic): verdict `host_corrupted` with
//!   the last bug check the stream carried and `host_error` saying how the child ended;
//! - the child outlived `--timeout`: the parent kills it (SIGKILL) and reports `timeout`, with
//!   the step in progress in `timed_out_in` (or `bugcheck`, if one was raised first).
//!
//! The stream is one event per line: a keyword, then space-separated fields; numbers are
//! decimal, strings and bytes are lowercase hex (so no field contains a space or a newline).
//! A partial last line (the child died mid-write) is ignored. The child writes the stream on a
//! duplicate of its original stdout and points fd 1 at stderr, so nothing else it prints can
//! interleave with the stream; stderr (e.g. `--echo-dbgprint`) is inherited.
//!
//! Fault injection for the supervisor's own tests: with `NTSIM_TEST_HOST_FAULT=after-bugcheck`
//! in its environment, the child kills itself with SIGSEGV right after it has streamed a bug
//! check — what a driver that corrupted the heap does to it, deterministically.
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use ntsim::{
    BugCheck, IoctlRecord, LeakedBlock, Machine, PendingItem, Report, UnloadReport, Verdict,
};

/// The hidden subcommand the supervisor runs itself with.
pub const CHILD_COMMAND: &str = "__run-supervised";
/// Environment variable carrying the supervisor's pid to the child (for the parent-death check).
const PARENT_PID_ENV: &str = "NTSIM_SUPERVISOR_PID";
/// How often the child's monitor thread forwards new DbgPrint lines and a new bug check.
const MONITOR_PERIOD: Duration = Duration::from_millis(2);
/// Longest event line the supervisor reads (a longer one ends the stream, as a torn line).
const MAX_EVENT_BYTES: u64 = 1 << 30;
/// See the module docs.
const FAULT_ENV: &str = "NTSIM_TEST_HOST_FAULT";

/// Die by SIGSEGV, as a process whose heap a driver corrupted does.
fn die_by_segv() -> ! {
    // SAFETY: restoring the default action and raising a signal on this thread; the process
    // ends with it.
    unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
    // SAFETY: as above.
    unsafe { libc::raise(libc::SIGSEGV) };
    // SAFETY: not reached unless the signal is blocked; end the process anyway.
    unsafe { libc::_exit(139) }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    nt_abi::text::parse_hex_bytes(s).ok().map(Iterator::collect)
}

fn unhex_str(s: &str) -> Option<String> {
    unhex(s).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn opt(v: Option<i32>) -> String {
    v.map_or("-".to_string(), |s| s.to_string())
}

// ---------------------------------------------------------------- child side

struct Stream {
    out: std::fs::File,
    dbg_sent: usize,
    kd_sent: usize,
    dbgf_sent: u64,
    bug_sent: bool,
}

static STREAM: Mutex<Option<Stream>> = Mutex::new(None);

/// The child's half: sends events to the supervisor.
pub struct ChildStream;

impl ChildStream {
    /// Take over stdout for the stream (see the module docs); arrange to die with the parent.
    pub fn start() -> ChildStream {
        // SAFETY: plain fd syscalls on the process's own standard descriptors; `dup` returns a
        // fresh descriptor that only the `File` below owns.
        let fd = unsafe { libc::dup(1) };
        if fd < 0 {
            // SAFETY: `_exit` ends the process; no Rust state is touched afterwards.
            unsafe { libc::_exit(101) };
        }
        // SAFETY: fd 1 and 2 are the process's own; pointing stdout at stderr only redirects
        // where stray prints go.
        unsafe { libc::dup2(2, 1) };
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        let out = unsafe { std::fs::File::from_raw_fd(fd) };
        *STREAM.lock().unwrap_or_else(|e| e.into_inner()) = Some(Stream {
            out,
            dbg_sent: 0,
            kd_sent: 0,
            dbgf_sent: 0,
            bug_sent: false,
        });
        // Die with the supervisor (a killed `ntsim run` must not leave a machine running), and
        // leave no core dump of a process a driver corrupted.
        // SAFETY: PR_SET_PDEATHSIG with a valid signal number has no memory effects.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        let parent = std::env::var(PARENT_PID_ENV)
            .ok()
            .and_then(|p| p.parse::<i32>().ok());
        // SAFETY: getppid has no preconditions.
        let ppid = unsafe { libc::getppid() };
        if parent.is_some_and(|p| p != ppid) {
            // The supervisor died before PR_SET_PDEATHSIG took effect.
            // SAFETY: as above.
            unsafe { libc::_exit(1) };
        }
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `no_core` is a valid rlimit for the duration of the call.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
        ChildStream
    }

    fn send(&self, line: &str) {
        let mut g = STREAM.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = g.as_mut() {
            Self::write(s, line);
        }
    }

    fn write(s: &mut Stream, line: &str) {
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        if s.out.write_all(buf.as_bytes()).is_err() {
            // The supervisor is gone: nobody will read the report.
            // SAFETY: `_exit` ends the process immediately.
            unsafe { libc::_exit(1) };
        }
    }

    pub fn step(&self, name: &str) {
        self.send(&format!("step {}", hex(name.as_bytes())));
    }
    pub fn load_error(&self, msg: &str) {
        self.send(&format!("load_error {}", hex(msg.as_bytes())));
    }
    pub fn driver_entry(&self, status: i32) {
        self.send(&format!("entry {status}"));
    }
    pub fn ioctl(&self, r: &IoctlRecord) {
        self.send(&format!(
            "ioctl {} {} {} {} {} {} {} {} {}",
            hex(r.device.as_bytes()),
            r.code,
            opt(r.status),
            opt(r.open_status),
            r.information,
            hex(&r.output),
            r.major,
            r.length,
            overlapped_field(r.overlapped)
        ));
    }
    pub fn timed_out_in(&self, step: &str) {
        self.send(&format!("timed_out_in {}", hex(step.as_bytes())));
    }
    pub fn leaks(&self, l: &UnloadReport) {
        let mut lines = vec![format!("leaks {}", l.unload_routine as u8)];
        for b in &l.pool {
            lines.push(format!(
                "pool {} {} {} {}",
                b.address, b.size, b.tag, b.flags
            ));
        }
        for d in &l.devices {
            lines.push(format!("dev {}", hex(d.as_bytes())));
        }
        for d in &l.links {
            lines.push(format!("link {}", hex(d.as_bytes())));
        }
        for w in &l.work_items {
            lines.push(format!("wi {} {} {}", w.item, w.routine, w.running as u8));
        }
        for a in &l.initialized_work_items {
            lines.push(format!("init {a}"));
        }
        let mut g = STREAM.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = g.as_mut() {
            for l in &lines {
                Self::write(s, l);
            }
        }
    }

    /// Forward DbgPrint lines not sent yet, and the bug check once it is raised.
    pub fn sync(&self, m: &Machine) {
        let bug = m.bugcheck();
        let mut g = STREAM.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = g.as_mut() else { return };
        if let Some(b) = bug.as_ref().filter(|_| !s.bug_sent) {
            // The bug check first: it is what must survive if the process dies next.
            s.bug_sent = true;
            let [p1, p2, p3, p4] = b.parameters;
            Self::write(
                s,
                &format!(
                    "bug {} {p1} {p2} {p3} {p4} {} {} {} {} {} {}",
                    b.code,
                    hex(b.name.as_bytes()),
                    hex(b.meaning.as_bytes()),
                    hex(b.address.as_bytes()),
                    hex(b.context.as_bytes()),
                    b.documented_only as u8,
                    b.verifier_rule as u8
                ),
            );
            if std::env::var_os(FAULT_ENV).is_some_and(|v| v == "after-bugcheck") {
                die_by_segv();
            }
        }
        let lines = m.dbgprint_lines();
        for l in lines.iter().skip(s.dbg_sent) {
            Self::write(s, &format!("dbg {}", hex(l.as_bytes())));
        }
        s.dbg_sent = s.dbg_sent.max(lines.len());
        let events = m.debugger_events();
        let h = |v: &Option<String>| v.as_ref().map_or("-".to_string(), |x| hex(x.as_bytes()));
        for e in events.iter().skip(s.kd_sent) {
            Self::write(
                s,
                &format!(
                    "kd {} {} {} {} {} {} {} {} {}",
                    hex(e.kind.as_bytes()),
                    e.code,
                    hex(e.address.as_bytes()),
                    hex(e.context.as_bytes()),
                    hex(e.text.as_bytes()),
                    h(&e.expression),
                    h(&e.file),
                    e.line.map_or("-".to_string(), |l| l.to_string()),
                    h(&e.message),
                ),
            );
        }
        s.kd_sent = s.kd_sent.max(events.len());
        let filtered = m.dbgprint_filtered();
        if filtered != s.dbgf_sent {
            s.dbgf_sent = filtered;
            Self::write(s, &format!("dbgf {filtered}"));
        }
    }

    /// Forward the bug check and DbgPrint output as they happen, from a thread of their own
    /// (the thread driving the run may be the one a corrupted heap kills).
    pub fn monitor(&self, m: Arc<Machine>) {
        std::thread::spawn(move || {
            let me = ChildStream;
            let mut n = 0u32;
            let mut bug_sent = false;
            loop {
                // The bug check within a period of being raised; DbgPrint lines every 10.
                let bug_now = !bug_sent && m.bugcheck().is_some();
                if bug_now || n.is_multiple_of(10) {
                    bug_sent |= bug_now;
                    me.sync(&m);
                }
                n = n.wrapping_add(1);
                std::thread::sleep(MONITOR_PERIOD);
            }
        });
    }

    /// The report is complete: send the verdict and leave without running destructors (a
    /// driver may have corrupted the heap they would walk).
    pub fn finish(&self, m: Option<&Machine>, verdict: Verdict) -> ! {
        if let Some(m) = m {
            self.sync(m);
        }
        self.send(&format!("verdict {}", verdict.as_str()));
        self.send("end");
        // SAFETY: `_exit` ends the process; the stream was written with unbuffered writes.
        unsafe { libc::_exit(0) }
    }
}

// ---------------------------------------------------------------- parent side

/// What the stream has told the supervisor so far.
struct Partial {
    report: Report,
    step: String,
    complete: bool,
}

fn field<'a>(f: &[&'a str], i: usize) -> Option<&'a str> {
    f.get(i).copied()
}

fn num<T: std::str::FromStr>(f: &[&str], i: usize) -> Option<T> {
    field(f, i)?.parse().ok()
}

fn opt_status(f: &[&str], i: usize) -> Option<Option<i32>> {
    match field(f, i)? {
        "-" => Some(None),
        s => s.parse().ok().map(Some),
    }
}

/// An overlapped record as one field: `-` (not overlapped), else `P` + `C` with P = 0/1
/// (pending) and C = `-` (no cancel) / 0 / 1 (cancel routine called).
fn overlapped_field(o: Option<ntsim::OverlappedRecord>) -> String {
    match o {
        None => "-".into(),
        Some(o) => format!(
            "{}{}",
            o.pending as u8,
            o.cancel_routine_called
                .map_or("-".into(), |c| (c as u8).to_string())
        ),
    }
}

fn parse_overlapped(s: &str) -> Option<Option<ntsim::OverlappedRecord>> {
    let b = s.as_bytes();
    let bit = |c: u8| match c {
        b'0' => Some(false),
        b'1' => Some(true),
        _ => None,
    };
    match b {
        [b'-'] => Some(None),
        [p, b'-'] => Some(Some(ntsim::OverlappedRecord {
            pending: bit(*p)?,
            cancel_routine_called: None,
        })),
        [p, c] => Some(Some(ntsim::OverlappedRecord {
            pending: bit(*p)?,
            cancel_routine_called: Some(bit(*c)?),
        })),
        _ => None,
    }
}

/// Apply one event; `None` if it is malformed (ignored: it can only be a torn last line).
fn apply(p: &mut Partial, line: &str) -> Option<()> {
    let f: Vec<&str> = line.split(' ').collect();
    let r = &mut p.report;
    match f[0] {
        "step" => p.step = unhex_str(field(&f, 1)?)?,
        "load_error" => r.load_error = Some(unhex_str(field(&f, 1)?)?),
        "entry" => r.driver_entry = Some(num(&f, 1)?),
        "ioctl" => r.ioctls.push(IoctlRecord {
            device: unhex_str(field(&f, 1)?)?,
            code: num(&f, 2)?,
            status: opt_status(&f, 3)?,
            open_status: opt_status(&f, 4)?,
            information: num(&f, 5)?,
            output: unhex(field(&f, 6)?)?,
            major: num(&f, 7)?,
            length: num(&f, 8)?,
            overlapped: parse_overlapped(field(&f, 9)?)?,
        }),
        "dbg" => r.dbgprint.push(unhex_str(field(&f, 1)?)?),
        "dbgf" => r.dbgprint_filtered = num(&f, 1)?,
        "kd" => {
            let o = |i: usize| -> Option<Option<String>> {
                match field(&f, i)? {
                    "-" => Some(None),
                    x => unhex_str(x).map(Some),
                }
            };
            let e = ntsim::DebuggerEvent {
                kind: unhex_str(field(&f, 1)?)?,
                code: num(&f, 2)?,
                address: unhex_str(field(&f, 3)?)?,
                context: unhex_str(field(&f, 4)?)?,
                text: unhex_str(field(&f, 5)?)?,
                expression: o(6)?,
                file: o(7)?,
                line: match field(&f, 8)? {
                    "-" => None,
                    x => Some(x.parse().ok()?),
                },
                message: o(9)?,
            };
            r.debugger.get_or_insert_with(Vec::new).push(e);
        }
        "bug" => {
            let name = unhex_str(field(&f, 6)?)?;
            r.bugcheck = Some(BugCheck {
                code: num(&f, 1)?,
                parameters: [num(&f, 2)?, num(&f, 3)?, num(&f, 4)?, num(&f, 5)?],
                // One bug check per run: the supervisor leaks this one name.
                name: Box::leak(name.into_boxed_str()),
                meaning: unhex_str(field(&f, 7)?)?,
                address: unhex_str(field(&f, 8)?)?,
                context: unhex_str(field(&f, 9)?)?,
                documented_only: field(&f, 10)? == "1",
                verifier_rule: field(&f, 11)? == "1",
            });
        }
        "leaks" => {
            r.leaks = Some(UnloadReport {
                unload_routine: field(&f, 1)? == "1",
                ..UnloadReport::default()
            })
        }
        "pool" => r.leaks.as_mut()?.pool.push(LeakedBlock {
            address: num(&f, 1)?,
            size: num(&f, 2)?,
            tag: num(&f, 3)?,
            flags: num(&f, 4)?,
        }),
        "dev" => r.leaks.as_mut()?.devices.push(unhex_str(field(&f, 1)?)?),
        "link" => r.leaks.as_mut()?.links.push(unhex_str(field(&f, 1)?)?),
        "wi" => r.leaks.as_mut()?.work_items.push(PendingItem {
            item: num(&f, 1)?,
            routine: num(&f, 2)?,
            running: field(&f, 3)? == "1",
        }),
        "init" => r.leaks.as_mut()?.initialized_work_items.push(num(&f, 1)?),
        "timed_out_in" => r.timed_out_in = Some(unhex_str(field(&f, 1)?)?),
        "verdict" => r.verdict = Verdict::from_name(field(&f, 1)?)?,
        "end" => p.complete = true,
        _ => return None,
    }
    Some(())
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSYS => "SIGSYS",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

fn describe_death(st: ExitStatus, had_bugcheck: bool) -> String {
    let after = if had_bugcheck {
        " after the bug check below was raised (a driver that corrupts ntsim's memory can \
         kill it this way; the bug check is the driver's fault)"
    } else {
        " before the report was complete"
    };
    match (st.signal(), st.code()) {
        (Some(sig), _) => format!(
            "the process running the emulated machine died by signal {sig} ({}){after}",
            signal_name(sig)
        ),
        (None, Some(101)) => format!(
            "the process running the emulated machine panicked (exit status 101){after}; \
             its message is on stderr"
        ),
        (None, Some(c)) => {
            format!("the process running the emulated machine exited with status {c}{after}")
        }
        (None, None) => format!("the process running the emulated machine ended{after}"),
    }
}

fn empty_report(driver: &str) -> Report {
    Report {
        driver: driver.to_string(),
        load_error: None,
        driver_entry: None,
        ioctls: Vec::new(),
        dbgprint: Vec::new(),
        dbgprint_filtered: 0,
        debugger: None,
        bugcheck: None,
        leaks: None,
        timed_out_in: None,
        host_error: None,
        verdict: Verdict::HostCorrupted,
    }
}

fn wait_until(child: &mut Child, deadline: Option<Instant>) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) => {}
            Err(_) => return child.wait().ok(),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Run `ntsim run <args>` in a child process and return the report, whatever happens to it.
/// `timeout` 0 = none.
pub fn supervise(args: &[String], driver: &str, timeout: u64) -> Report {
    let started = Instant::now();
    // 0 = none; so is a timeout too far away for `Instant` to hold.
    let deadline = (timeout > 0)
        .then(|| started.checked_add(Duration::from_secs(timeout)))
        .flatten();
    // /proc/self/exe names this very binary even if its file was replaced or deleted since.
    let exe = std::path::PathBuf::from("/proc/self/exe");
    let exe = if exe.exists() {
        exe
    } else {
        std::env::current_exe().unwrap_or(exe)
    };
    let spawned = Command::new(&exe)
        .arg(CHILD_COMMAND)
        .args(args)
        .env(PARENT_PID_ENV, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let mut r = empty_report(driver);
            r.host_error = Some(format!(
                "cannot start the process that runs the emulated machine ({}): {e}",
                exe.display()
            ));
            return r;
        }
    };
    let partial = Arc::new(Mutex::new(Partial {
        report: empty_report(driver),
        step: "loading".to_string(),
        complete: false,
    }));
    let (eof_tx, eof_rx) = mpsc::channel::<()>();
    if let Some(out) = child.stdout.take() {
        let p = partial.clone();
        std::thread::spawn(move || {
            let mut rd = BufReader::new(out);
            let mut line = Vec::new();
            loop {
                line.clear();
                // Bounded: a corrupted child must not make the supervisor read without end.
                match rd
                    .by_ref()
                    .take(MAX_EVENT_BYTES)
                    .read_until(b'\n', &mut line)
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.last() == Some(&b'\n') => {
                        let text = String::from_utf8_lossy(&line[..line.len() - 1]);
                        let mut g = p.lock().unwrap_or_else(|e| e.into_inner());
                        let _ = apply(&mut g, &text);
                    }
                    Ok(_) => break, // a torn last line
                }
            }
            let _ = eof_tx.send(());
        });
    }
    let timed_out = match deadline {
        Some(d) => eof_rx
            .recv_timeout(d.saturating_duration_since(Instant::now()))
            .is_err_and(|e| e == mpsc::RecvTimeoutError::Timeout),
        None => {
            let _ = eof_rx.recv();
            false
        }
    };
    let status = if timed_out {
        None
    } else {
        // The stream is closed: the child is exiting (or closed it by dying).
        wait_until(&mut child, deadline)
    };
    let status = match status {
        Some(st) => Some(st),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    };
    let g = partial.lock().unwrap_or_else(|e| e.into_inner());
    let mut r = g.report.clone();
    match status {
        _ if g.complete => {}
        None => {
            r.timed_out_in = Some(g.step.clone());
            r.verdict = if r.bugcheck.is_some() {
                Verdict::Bugcheck
            } else {
                Verdict::Timeout
            };
        }
        Some(st) => {
            r.host_error = Some(describe_death(st, r.bugcheck.is_some()));
            r.verdict = Verdict::HostCorrupted;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let mut p = Partial {
            report: empty_report("d.sys"),
            step: String::new(),
            complete: false,
        };
        let lines = [
            format!("step {}", hex(b"IOCTL #0 (0x1)")),
            "entry 0".to_string(),
            format!(
                "ioctl {} 34 -1073741811 - 4 0a0b 3 7 11",
                hex(br"\\.\X".as_slice())
            ),
            format!("dbg {}", hex("héllo".as_bytes())),
            "dbgf 3".to_string(),
            format!(
                "kd {} 2147483651 {} {} {} {} {} 12 -",
                hex(b"assertion"),
                hex(b"d.sys+0x20"),
                hex(b"DriverEntry"),
                hex(b"t"),
                hex(b"x == 1"),
                hex(b"a.c")
            ),
            format!(
                "bug 196 98 2 3 4 {} {} {} {} 0 1",
                hex(b"DRIVER_VERIFIER_DETECTED_VIOLATION"),
                hex(b"m"),
                hex(b"d.sys+0x10"),
                hex(b"DriverUnload")
            ),
            "leaks 1".to_string(),
            "pool 16 32 1 64".to_string(),
            "verdict bugcheck".to_string(),
        ];
        for l in &lines {
            assert!(apply(&mut p, l).is_some(), "{l}");
        }
        assert!(!p.complete);
        assert!(apply(&mut p, "end").is_some());
        assert!(p.complete);
        let r = &p.report;
        assert_eq!(p.step, "IOCTL #0 (0x1)");
        assert_eq!(r.ioctls[0].status, Some(-1073741811));
        assert_eq!(r.ioctls[0].open_status, None);
        assert_eq!(r.ioctls[0].output, [10, 11]);
        assert_eq!(
            (r.ioctls[0].major, r.ioctls[0].length),
            (nt_abi::IRP_MJ_READ, 7)
        );
        assert_eq!(
            r.ioctls[0].overlapped,
            Some(ntsim::OverlappedRecord {
                pending: true,
                cancel_routine_called: Some(true)
            })
        );
        assert_eq!(r.dbgprint, ["héllo"]);
        assert_eq!(r.dbgprint_filtered, 3);
        let e = &r.debugger.as_ref().unwrap()[0];
        assert_eq!(
            (
                e.kind.as_str(),
                e.code,
                e.expression.as_deref(),
                e.line,
                e.message.as_deref()
            ),
            ("assertion", 0x8000_0003, Some("x == 1"), Some(12), None)
        );
        let b = r.bugcheck.as_ref().unwrap();
        assert_eq!((b.code, b.parameters), (196, [98, 2, 3, 4]));
        assert!(b.verifier_rule && !b.documented_only);
        assert_eq!(r.leaks.as_ref().unwrap().pool[0].tag, 1);
        assert_eq!(r.verdict, Verdict::Bugcheck);
        // Torn or unknown lines are refused, not half-applied.
        assert!(apply(&mut p, "ioctl 5c").is_none());
        assert!(apply(&mut p, "entry x").is_none());
        assert!(apply(&mut p, "bogus").is_none());
        assert!(apply(&mut p, "verdict maybe").is_none());
        assert_eq!(p.report.ioctls.len(), 1);
    }
}
