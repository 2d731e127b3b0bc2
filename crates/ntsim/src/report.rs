//! The run report the CLI prints (`--json` or human-readable).
use nt_abi::status_name;

use crate::json::Json;
use crate::{BugCheck, DebuggerEvent, UnloadReport};

/// Overall outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Loaded, ran, unloaded, nothing left behind. Exit code 0.
    Clean,
    /// Leaks found without a bug check (verifier off, or devices/links/items left). Exit 1.
    Leaks,
    /// The machine bug-checked. Exit 3.
    Bugcheck,
    /// The image was refused. Exit 2.
    LoadError,
    /// DriverEntry failed (the driver is not started; no unload). Exit 1.
    StartFailed,
    /// A step did not finish within `--timeout` (a driver hang or deadlock). Exit 1.
    Timeout,
    /// An `--ioctl`'s device could not be opened (e.g. no such device), so that IOCTL was never
    /// sent: the run did not do what was asked. Exit 1.
    OpenFailed,
    /// The process running the emulated machine died (a signal, an abort, a panic) before the
    /// report was complete: typically a wild driver corrupted host memory it shares with ntsim.
    /// `bugcheck` holds the last bug check seen before, `host_error` how it died. Exit 4.
    HostCorrupted,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Leaks => "leaks",
            Verdict::Bugcheck => "bugcheck",
            Verdict::LoadError => "load_error",
            Verdict::StartFailed => "start_failed",
            Verdict::Timeout => "timeout",
            Verdict::OpenFailed => "open_failed",
            Verdict::HostCorrupted => "host_corrupted",
        }
    }
    /// Every verdict, in [`Verdict::exit_code`] order of appearance in the docs.
    pub const ALL: [Verdict; 8] = [
        Verdict::Clean,
        Verdict::Leaks,
        Verdict::Bugcheck,
        Verdict::LoadError,
        Verdict::StartFailed,
        Verdict::Timeout,
        Verdict::OpenFailed,
        Verdict::HostCorrupted,
    ];
    /// The verdict [`Verdict::as_str`] names.
    pub fn from_name(s: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == s)
    }
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Clean => 0,
            Verdict::Leaks | Verdict::StartFailed | Verdict::Timeout | Verdict::OpenFailed => 1,
            Verdict::LoadError => 2,
            Verdict::Bugcheck => 3,
            Verdict::HostCorrupted => 4,
        }
    }
}

/// The JSON name of a request's major function.
pub fn major_name(mj: u8) -> &'static str {
    match mj {
        nt_abi::IRP_MJ_READ => "IRP_MJ_READ",
        nt_abi::IRP_MJ_WRITE => "IRP_MJ_WRITE",
        _ => "IRP_MJ_DEVICE_CONTROL",
    }
}

/// One request sent by `ntsim run`: an IOCTL (`--ioctl`), a read (`--read`) or a write
/// (`--write`).
#[derive(Clone, Debug)]
pub struct IoctlRecord {
    pub device: String,
    /// IRP_MJ_DEVICE_CONTROL, IRP_MJ_READ or IRP_MJ_WRITE.
    pub major: u8,
    /// The IOCTL code (0 for a read or write).
    pub code: u32,
    /// The IOCTL's output length, the read's length, or the number of bytes written.
    pub length: usize,
    /// None when the open itself failed (see `open_status`) or a bug check intervened.
    pub status: Option<i32>,
    pub open_status: Option<i32>,
    pub information: usize,
    pub output: Vec<u8>,
    /// Sent overlapped (`,overlapped`): what happened to it asynchronously.
    pub overlapped: Option<OverlappedRecord>,
}

/// The asynchronous side of an overlapped request (`--ioctl …,overlapped`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OverlappedRecord {
    /// The dispatch routine returned STATUS_PENDING (the caller saw ERROR_IO_PENDING; the
    /// status is the IRP's final one, read when it completed).
    pub pending: bool,
    /// A `--cancel` for it ran: whether IoCancelIrp called a cancel routine (None: no cancel).
    pub cancel_routine_called: Option<bool>,
}

#[derive(Clone, Debug)]
pub struct Report {
    pub driver: String,
    pub load_error: Option<String>,
    pub driver_entry: Option<i32>,
    pub ioctls: Vec<IoctlRecord>,
    /// DbgPrint output that passed the component/level filter (what an attached debugger
    /// shows; see `Config::dbg_filter`).
    pub dbgprint: Vec<String>,
    /// Messages the filter kept out of `dbgprint`.
    pub dbgprint_filtered: u64,
    /// `Some` with a kernel debugger attached (`--debugger`): what it saw, in order.
    pub debugger: Option<Vec<DebuggerEvent>>,
    pub bugcheck: Option<BugCheck>,
    pub leaks: Option<UnloadReport>,
    /// With verdict `timeout`: the step that did not finish (`DriverEntry`, `IOCTL #n`, …).
    pub timed_out_in: Option<String>,
    /// With verdict `host_corrupted`: how the process running the machine ended.
    pub host_error: Option<String>,
    pub verdict: Verdict,
}

fn status_json(s: i32) -> (Json, Json) {
    (
        Json::Num(s as u32 as i128),
        status_name(s).map(Json::str).unwrap_or(Json::Null),
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Report {
    pub fn to_json_value(&self) -> Json {
        let entry = match self.driver_entry {
            Some(s) => {
                let (n, name) = status_json(s);
                Json::obj(vec![("status", n), ("status_name", name)])
            }
            None => Json::Null,
        };
        let ioctls = self
            .ioctls
            .iter()
            .map(|r| {
                let (st, name) = match r.status {
                    Some(s) => status_json(s),
                    None => (Json::Null, Json::Null),
                };
                let open = match r.open_status {
                    Some(s) => status_json(s).0,
                    None => Json::Null,
                };
                Json::obj(vec![
                    ("device", Json::str(&r.device)),
                    ("major", Json::str(major_name(r.major))),
                    ("code", Json::Num(r.code as i128)),
                    ("length", Json::Num(r.length as i128)),
                    ("status", st),
                    ("status_name", name),
                    ("open_status", open),
                    ("information", Json::Num(r.information as i128)),
                    ("output_hex", Json::str(hex(&r.output))),
                    (
                        "overlapped",
                        match r.overlapped {
                            None => Json::Null,
                            Some(o) => Json::obj(vec![
                                ("pending", Json::Bool(o.pending)),
                                (
                                    "cancel_routine_called",
                                    o.cancel_routine_called.map_or(Json::Null, Json::Bool),
                                ),
                            ]),
                        },
                    ),
                ])
            })
            .collect();
        let bc = match &self.bugcheck {
            Some(b) => Json::obj(vec![
                ("code", Json::Num(b.code as i128)),
                (
                    "parameters",
                    Json::Arr(b.parameters.iter().map(|&p| Json::Num(p as i128)).collect()),
                ),
                ("name", Json::str(b.name)),
                ("meaning", Json::str(&b.meaning)),
                ("address", Json::str(&b.address)),
                ("context", Json::str(&b.context)),
                ("documented_only", Json::Bool(b.documented_only)),
                ("verifier_rule", Json::Bool(b.verifier_rule)),
            ]),
            None => Json::Null,
        };
        let leaks = match &self.leaks {
            Some(l) => Json::obj(vec![
                ("unload_routine", Json::Bool(l.unload_routine)),
                (
                    "pool",
                    Json::Arr(
                        l.pool
                            .iter()
                            .map(|b| {
                                Json::obj(vec![
                                    ("address", Json::Num(b.address as i128)),
                                    ("size", Json::Num(b.size as i128)),
                                    ("tag", Json::str(b.tag_str())),
                                    ("flags", Json::Num(b.flags as i128)),
                                ])
                            })
                            .collect(),
                    ),
                ),
                (
                    "devices",
                    Json::Arr(l.devices.iter().map(Json::str).collect()),
                ),
                ("links", Json::Arr(l.links.iter().map(Json::str).collect())),
                (
                    "work_items",
                    Json::Arr(
                        l.work_items
                            .iter()
                            .map(|w| {
                                Json::obj(vec![
                                    ("item", Json::Num(w.item as i128)),
                                    ("routine", Json::Num(w.routine as i128)),
                                    ("running", Json::Bool(w.running)),
                                ])
                            })
                            .collect(),
                    ),
                ),
                (
                    "initialized_work_items",
                    Json::Arr(
                        l.initialized_work_items
                            .iter()
                            .map(|&a| Json::Num(a as i128))
                            .collect(),
                    ),
                ),
            ]),
            None => Json::Null,
        };
        let opt_str = |v: &Option<String>| v.as_ref().map(Json::str).unwrap_or(Json::Null);
        let debugger = match &self.debugger {
            Some(events) => Json::Arr(
                events
                    .iter()
                    .map(|e| {
                        Json::obj(vec![
                            ("kind", Json::str(&e.kind)),
                            ("code", Json::Num(e.code as i128)),
                            ("address", Json::str(&e.address)),
                            ("context", Json::str(&e.context)),
                            ("text", Json::str(&e.text)),
                            ("expression", opt_str(&e.expression)),
                            ("file", opt_str(&e.file)),
                            (
                                "line",
                                e.line.map(|l| Json::Num(l as i128)).unwrap_or(Json::Null),
                            ),
                            ("message", opt_str(&e.message)),
                        ])
                    })
                    .collect(),
            ),
            None => Json::Null,
        };
        Json::obj(vec![
            ("driver", Json::str(&self.driver)),
            (
                "load_error",
                self.load_error
                    .as_ref()
                    .map(Json::str)
                    .unwrap_or(Json::Null),
            ),
            ("driver_entry", entry),
            ("ioctls", Json::Arr(ioctls)),
            (
                "dbgprint",
                Json::Arr(self.dbgprint.iter().map(Json::str).collect()),
            ),
            (
                "dbgprint_filtered",
                Json::Num(self.dbgprint_filtered as i128),
            ),
            ("debugger", debugger),
            ("bugcheck", bc),
            ("leaks", leaks),
            (
                "timed_out_in",
                self.timed_out_in
                    .as_ref()
                    .map(Json::str)
                    .unwrap_or(Json::Null),
            ),
            (
                "host_error",
                self.host_error
                    .as_ref()
                    .map(Json::str)
                    .unwrap_or(Json::Null),
            ),
            ("verdict", Json::str(self.verdict.as_str())),
        ])
    }

    /// One JSON object, no trailing newline.
    pub fn to_json(&self) -> String {
        self.to_json_value().to_string()
    }

    pub fn to_human(&self) -> String {
        let mut s = format!("driver: {}\n", self.driver);
        if let Some(e) = &self.load_error {
            s += &format!("load error: {e}\n");
        }
        if let Some(st) = self.driver_entry {
            s += &format!("DriverEntry: {}\n", crate::status_text(st));
        }
        for r in &self.ioctls {
            let what = match r.major {
                nt_abi::IRP_MJ_READ => format!("read {} length={}", r.device, r.length),
                nt_abi::IRP_MJ_WRITE => format!("write {} length={}", r.device, r.length),
                _ => format!("ioctl {} {:#010x}", r.device, r.code),
            };
            match (r.open_status, r.status) {
                (Some(o), _) => s += &format!("{what}: open failed: {}\n", crate::status_text(o)),
                (None, Some(st)) => {
                    s += &format!(
                        "{what}: {} information={} output={}\n",
                        crate::status_text(st),
                        r.information,
                        hex(&r.output)
                    )
                }
                (None, None) => s += &format!("{what}: (interrupted)\n"),
            }
            if let Some(o) = r.overlapped {
                s += &format!(
                    "  overlapped: {}{}\n",
                    if o.pending {
                        "pending, completed later"
                    } else {
                        "completed in its dispatch routine"
                    },
                    match o.cancel_routine_called {
                        None => "",
                        Some(true) => "; cancelled: cancel routine called",
                        Some(false) => "; cancelled: no cancel routine was set",
                    }
                );
            }
        }
        for l in &self.dbgprint {
            s += &format!("dbgprint: {l}\n");
        }
        if self.dbgprint_filtered > 0 {
            s += &format!(
                "filtered: {} DbgPrint message(s) kept out by the component/level masks \
                 (DbgPrint and KdPrint are DEFAULT/INFO; widen with --dbg-filter, e.g. \
                 DEFAULT=0xF or IHVDRIVER=0xF)\n",
                self.dbgprint_filtered
            );
        }
        for e in self.debugger.iter().flatten() {
            s += &format!(
                "debugger: {} at {} ({}): {}\n",
                e.kind, e.address, e.context, e.text
            );
        }
        if let Some(b) = &self.bugcheck {
            s += &format!("{b}\n");
        }
        if let Some(l) = &self.leaks {
            if !l.unload_routine {
                s += "unload: the driver has no DriverUnload routine\n";
            }
            for b in &l.pool {
                s += &format!(
                    "leak: pool {:#x} size {} tag '{}'\n",
                    b.address,
                    b.size,
                    b.tag_str()
                );
            }
            for d in &l.devices {
                s += &format!("leak: device {d}\n");
            }
            for d in &l.links {
                s += &format!("leak: symbolic link {d}\n");
            }
            for w in &l.work_items {
                s += &format!(
                    "leak: work item {:#x} ({})\n",
                    w.item,
                    if w.running { "running" } else { "queued" }
                );
            }
            for w in &l.initialized_work_items {
                s += &format!("leak: work item {w:#x} initialized, never uninitialized\n");
            }
        }
        if let Some(t) = &self.timed_out_in {
            s += &format!("timeout: {t} did not finish\n");
        }
        if let Some(h) = &self.host_error {
            s += &format!("host: {h}\n");
        }
        s += &format!("verdict: {}\n", self.verdict.as_str());
        s
    }
}
