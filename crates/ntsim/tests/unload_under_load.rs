//! Unload under load, repeated: 100 rounds, each with request threads running cycles on their
//! own handles and a thread opening and closing handles, and DriverUnload requested at a random
//! moment. Windows semantics every time: new opens fail once the unload is pending, requests on
//! open handles complete normally, DriverUnload runs after the last handle closes, drains, and
//! leaves nothing behind — and no bug check, ever (issue 8 §4). Seeded: the same seed times the
//! same way (as far as the scheduler lets it).
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ioctl::{IOCTL_RUN_CYCLES, Mode, RunCyclesRequest, RunCyclesResponse, USER_PATH, Wire};
use nt_abi::*;
use ntsim::{Config, Machine, OpenError};

const ROUNDS: u64 = 100;
const SEED: u64 = 0x0DD5_EED5_0008_0004;

fn wdm_sys() -> &'static Path {
    static SYS: OnceLock<PathBuf> = OnceLock::new();
    SYS.get_or_init(|| {
        let tc = xbuild::locate_toolchain(false).unwrap_or_else(|e| panic!("{e}"));
        xbuild::build_driver(&tc, true, false).expect("build wdm_workitem.sys")
    })
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One round; the number of requests that ran (on handles opened before the unload).
fn round(round: u64, r: &mut Rng) -> usize {
    let m = Machine::new(Config {
        unload_grace: Duration::from_millis(500),
        unload_wait: Duration::from_secs(30),
        // "unloaded:" is an INFO-level message: widen Kd_IHVDRIVER_Mask so it is logged.
        dbg_filter: vec![ntsim::DbgFilter {
            component: nt_abi::dbg::DPFLTR_IHVDRIVER_ID,
            mask: 0xF,
        }],
        ..Config::default()
    });
    let d = m.load_driver(wdm_sys()).expect("load");
    assert_eq!(d.start().expect("no bug check"), STATUS_SUCCESS);
    let unloaded = AtomicBool::new(false);
    let requesters = 1 + r.below(3);
    let plans: Vec<(u64, Vec<RunCyclesRequest>)> = (0..requesters)
        .map(|_| {
            let seed = r.next();
            let reqs = (0..1 + r.below(4))
                .map(|_| {
                    let mode = Mode::ALL[r.below(Mode::ALL.len() as u64) as usize];
                    let depth = if mode == Mode::RequeueChain {
                        1 + r.below(3)
                    } else {
                        0
                    };
                    RunCyclesRequest::new(
                        1 + r.below(3000) as u32,
                        1 + r.below(32) as u32,
                        mode,
                        r.below(7) as u32,
                        0,
                        depth as u32,
                    )
                })
                .collect();
            (seed, reqs)
        })
        .collect();
    let unload_after = Duration::from_micros(r.below(20_000));
    let opener_pause = Duration::from_micros(r.below(500));
    let report = std::thread::scope(|s| {
        let (m, unloaded) = (&m, &unloaded);
        // Request threads: open, run their requests, close.
        let workers: Vec<_> = plans
            .into_iter()
            .map(|(seed, reqs)| {
                s.spawn(move || {
                    let mut r = Rng(seed | 1);
                    std::thread::sleep(Duration::from_micros(r.below(5_000)));
                    let h = match m.open(USER_PATH, GENERIC_READ | GENERIC_WRITE) {
                        Ok(h) => h,
                        // Opened after the unload became pending (or completed): refused, as on
                        // Windows.
                        Err(OpenError::Status(
                            STATUS_NO_SUCH_DEVICE | STATUS_OBJECT_NAME_NOT_FOUND,
                        )) => return 0,
                        Err(e) => panic!("round {round}: open: {e}"),
                    };
                    for req in &reqs {
                        let out = h
                            .device_io_control(
                                IOCTL_RUN_CYCLES,
                                req.as_bytes(),
                                RunCyclesResponse::SIZE,
                            )
                            .unwrap_or_else(|b| panic!("round {round}: {b}"));
                        assert_eq!(out.status, STATUS_SUCCESS, "round {round}: {req:?}");
                        let resp = RunCyclesResponse::from_bytes(&out.output).unwrap();
                        assert_eq!(
                            resp.stats.cycles_completed, req.iterations as u64,
                            "round {round}: {req:?}"
                        );
                    }
                    h.close().unwrap_or_else(|b| panic!("round {round}: {b}"));
                    reqs.len()
                })
            })
            .collect();
        // A thread opening and closing handles throughout.
        let opener = s.spawn(move || {
            let mut statuses = Vec::new();
            while !unloaded.load(Ordering::SeqCst) {
                match m.open(USER_PATH, GENERIC_READ) {
                    Ok(h) => {
                        std::thread::sleep(opener_pause);
                        h.close().unwrap_or_else(|b| panic!("round {round}: {b}"));
                    }
                    Err(OpenError::Status(st)) => statuses.push(st),
                    Err(OpenError::BugCheck(b)) => panic!("round {round}: {b}"),
                }
                std::thread::sleep(opener_pause);
            }
            statuses
        });
        std::thread::sleep(unload_after);
        let report = d.unload();
        unloaded.store(true, Ordering::SeqCst);
        let ran: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
        for st in opener.join().unwrap() {
            assert!(
                st == STATUS_NO_SUCH_DEVICE || st == STATUS_OBJECT_NAME_NOT_FOUND,
                "round {round}: open failed with {st:#x}"
            );
        }
        (report, ran)
    });
    let (report, ran) = report;
    let report = report.unwrap_or_else(|e| panic!("round {round}: unload: {e:?}"));
    assert!(report.is_clean(), "round {round}: {report:?}");
    assert!(m.bugcheck().is_none(), "round {round}: {:?}", m.bugcheck());
    assert!(
        m.dbgprint_lines()
            .iter()
            .any(|l| l.contains("wdm-workitem: unloaded:")),
        "round {round}: DriverUnload did not run"
    );
    assert_eq!(
        m.open(USER_PATH, GENERIC_READ).err(),
        Some(OpenError::Status(STATUS_OBJECT_NAME_NOT_FOUND)),
        "round {round}: the device is gone"
    );
    ran
}

#[test]
fn unload_under_load_a_hundred_times() {
    let t0 = Instant::now();
    let mut r = Rng(SEED);
    let mut busy = 0;
    for n in 0..ROUNDS {
        if round(n, &mut r) > 0 {
            busy += 1;
        }
    }
    eprintln!(
        "{ROUNDS} unloads under load in {:?}; {busy} with requests served",
        t0.elapsed()
    );
    // Most rounds really had requests running when the unload came.
    assert!(busy * 2 > ROUNDS, "only {busy} rounds served requests");
}
