//! Malformed and random requests, each with the NTSTATUS the driver must answer; seeded and
//! reproducible. Every case must be rejected with exactly its expected status, return no bytes,
//! and leave the cumulative statistics unchanged.
use std::collections::BTreeMap;

use ioctl::*;
use nt_abi::status::*;
use nt_abi::{FILE_ANY_ACCESS, FILE_DEVICE_UNKNOWN, FILE_READ_ACCESS, FILE_WRITE_ACCESS, ctl_code};
use serde::Serialize;

use crate::backend::{Access, DeviceHandle};
use crate::client::{Client, Failure};
use crate::status::status_code;

/// SplitMix64: small, seedable, identical on every platform.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi);
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        lo + self.next_u64() % (span + 1)
    }

    pub fn range32(&mut self, lo: u32, hi: u32) -> u32 {
        self.range(u64::from(lo), u64::from(hi)) as u32
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64 - 1) as usize]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// One request and the status it must get.
#[derive(Clone, Debug, Serialize)]
pub struct Case {
    pub class: &'static str,
    pub code: u32,
    #[serde(serialize_with = "hex")]
    pub input: Vec<u8>,
    pub out_len: u32,
    pub access: Access,
    pub expected: i32,
}

fn hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&to_hex(bytes))
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every malformed-request class, in the order `fuzz` cycles through them.
pub const CLASSES: &[&str] = &[
    "short-input",
    "oversized-input",
    "wrong-version",
    "wrong-size-field",
    "short-output",
    "iterations",
    "concurrency",
    "mode",
    "queue-type",
    "flags",
    "requeue-depth",
    "work-bound",
    "unknown-code",
    "write-on-read-only",
    "random",
];

/// A request well formed in every respect (the starting point each class breaks one way).
fn good_run(rng: &mut Rng, capacity: u32) -> RunCyclesRequest {
    let mode = *rng.pick(&Mode::ALL);
    let depth = if mode == Mode::RequeueChain {
        rng.range32(1, MAX_REQUEUE_DEPTH)
    } else {
        0
    };
    let queue_type = if rng.range(0, 1) == 0 {
        rng.range32(0, 6)
    } else {
        rng.range32(32, 63)
    };
    RunCyclesRequest::new(
        rng.range32(1, 1000),
        rng.range32(1, capacity.max(1)),
        mode,
        queue_type,
        rng.range32(0, RUN_FLAGS_ALL),
        depth,
    )
}

/// One of our codes with the request and response sizes it uses, and a well-formed input.
fn good_any(rng: &mut Rng, capacity: u32) -> (u32, Vec<u8>, usize) {
    match rng.range(0, 3) {
        0 => (
            IOCTL_QUERY_INFO,
            QueryInfoRequest::new().as_bytes().to_vec(),
            InfoResponse::SIZE,
        ),
        1 => (
            IOCTL_QUERY_STATS,
            QueryStatsRequest::new().as_bytes().to_vec(),
            StatsResponse::SIZE,
        ),
        2 => (
            IOCTL_RESET_STATS,
            ResetStatsRequest::new().as_bytes().to_vec(),
            StatsResponse::SIZE,
        ),
        _ => (
            IOCTL_RUN_CYCLES,
            good_run(rng, capacity).as_bytes().to_vec(),
            RunCyclesResponse::SIZE,
        ),
    }
}

/// What the driver must answer, by the protocol's own validation functions.
pub fn oracle(code: u32, input: &[u8], out_len: u32, access: Access, capacity: u32) -> Option<i32> {
    if !ALL_IOCTLS.contains(&code) {
        // The I/O manager checks the code's access bits against the handle before the driver
        // sees the request.
        if access == Access::Read && nt_abi::ctl_access(code) & FILE_WRITE_ACCESS != 0 {
            return Some(STATUS_ACCESS_DENIED);
        }
        return Some(STATUS_INVALID_DEVICE_REQUEST);
    }
    if access == Access::Read && nt_abi::ctl_access(code) & FILE_WRITE_ACCESS != 0 {
        return Some(STATUS_ACCESS_DENIED);
    }
    let limits = Limits {
        slab_capacity: capacity,
    };
    let r = match code {
        IOCTL_QUERY_INFO => validate_query_info(input, out_len).map(|_| ()),
        IOCTL_QUERY_STATS => validate_query_stats(input, out_len).map(|_| ()),
        IOCTL_RESET_STATS => validate_reset_stats(input, out_len).map(|_| ()),
        _ => validate_run_cycles(input, out_len, &limits).map(|_| ()),
    };
    r.err()
}

/// Build one case of `class`.
pub fn make_case(class: &'static str, rng: &mut Rng, capacity: u32) -> Case {
    let rw = Access::ReadWrite;
    let invalid = STATUS_INVALID_PARAMETER;
    let run_case = |rng: &mut Rng, f: &mut dyn FnMut(&mut Rng, &mut RunCyclesRequest)| {
        let mut r = good_run(rng, capacity);
        f(rng, &mut r);
        r.as_bytes().to_vec()
    };
    let (code, input, out_len, access, expected) = match class {
        "short-input" => {
            let (code, good, out) = good_any(rng, capacity);
            let len = rng.range(0, good.len() as u64 - 1) as usize;
            (
                code,
                good[..len].to_vec(),
                out as u32,
                rw,
                STATUS_BUFFER_TOO_SMALL,
            )
        }
        "oversized-input" => {
            let (code, mut good, out) = good_any(rng, capacity);
            let extra = rng.range(1, 64) as usize;
            good.extend(rng.bytes(extra));
            (code, good, out as u32, rw, invalid)
        }
        "wrong-version" => {
            let (code, mut good, out) = good_any(rng, capacity);
            let mut v = rng.next_u32();
            if v == PROTOCOL_VERSION {
                v = 0;
            }
            good[0..4].copy_from_slice(&v.to_le_bytes());
            (code, good, out as u32, rw, STATUS_REVISION_MISMATCH)
        }
        "wrong-size-field" => {
            let (code, mut good, out) = good_any(rng, capacity);
            let mut s = if rng.range(0, 1) == 0 {
                rng.range32(0, 128)
            } else {
                rng.next_u32()
            };
            if s as usize == good.len() {
                s += 1;
            }
            good[4..8].copy_from_slice(&s.to_le_bytes());
            (code, good, out as u32, rw, invalid)
        }
        "short-output" => {
            let (code, good, out) = good_any(rng, capacity);
            let out_len = rng.range(0, out as u64 - 1) as u32;
            (code, good, out_len, rw, STATUS_BUFFER_TOO_SMALL)
        }
        "iterations" => {
            let input = run_case(rng, &mut |rng, r| {
                r.iterations = if rng.range(0, 1) == 0 {
                    0
                } else {
                    rng.range32(MAX_ITERATIONS + 1, u32::MAX)
                };
            });
            (
                IOCTL_RUN_CYCLES,
                input,
                RunCyclesResponse::SIZE as u32,
                rw,
                invalid,
            )
        }
        "concurrency" => {
            let input = run_case(rng, &mut |rng, r| {
                r.concurrency = if rng.range(0, 1) == 0 {
                    0
                } else {
                    rng.range32(capacity + 1, u32::MAX)
                };
            });
            (
                IOCTL_RUN_CYCLES,
                input,
                RunCyclesResponse::SIZE as u32,
                rw,
                invalid,
            )
        }
        "mode" => {
            let input = run_case(rng, &mut |rng, r| {
                r.mode = if rng.range(0, 1) == 0 {
                    rng.range32(6, 64)
                } else {
                    rng.range32(6, u32::MAX)
                };
            });
            (
                IOCTL_RUN_CYCLES,
                input,
                RunCyclesResponse::SIZE as u32,
                rw,
                invalid,
            )
        }
        "queue-type" => {
            let input = run_case(rng, &mut |rng, r| {
                r.queue_type = match rng.range(0, 2) {
                    0 => rng.range32(7, 31),
                    1 => rng.range32(64, 127),
                    _ => rng.range32(64, u32::MAX),
                };
            });
            (
                IOCTL_RUN_CYCLES,
                input,
                RunCyclesResponse::SIZE as u32,
                rw,
                invalid,
            )
        }
        "flags" => {
            let input = run_case(rng, &mut |rng, r| {
                let bad = 1u32 << rng.range32(RUN_FLAGS_ALL.count_ones(), 31);
                r.flags = (rng.next_u32() & RUN_FLAGS_ALL) | bad;
            });
            (
                IOCTL_RUN_CYCLES,
                input,
                RunCyclesResponse::SIZE as u32,
                rw,
                invalid,
            )
        }
        "requeue-depth" => {
            let input = run_case(rng, &mut |rng, r| {
                if r.mode == Mode::RequeueChain as u32 {
                    r.requeue_depth = if rng.range(0, 1) == 0 {
                        0
                    } else {
                        rng.range32(MAX_REQUEUE_DEPTH + 1, u32::MAX)
                    };
                } else {
                    r.requeue_depth = rng.range32(1, u32::MAX);
                }
            });
            (
                IOCTL_RUN_CYCLES,
                input,
                RunCyclesResponse::SIZE as u32,
                rw,
                invalid,
            )
        }
        "work-bound" => {
            let input = run_case(rng, &mut |rng, r| {
                r.mode = Mode::RequeueChain as u32;
                r.requeue_depth = rng.range32(4, MAX_REQUEUE_DEPTH);
                let min = (MAX_ROUTINES_PER_REQUEST / (1 + u64::from(r.requeue_depth))) as u32 + 1;
                r.iterations = rng.range32(min, MAX_ITERATIONS);
            });
            (
                IOCTL_RUN_CYCLES,
                input,
                RunCyclesResponse::SIZE as u32,
                rw,
                invalid,
            )
        }
        "unknown-code" => {
            let code = loop {
                let c = match rng.range(0, 3) {
                    // Our function numbers with another method, access or device type.
                    0 => {
                        let f = FUNCTION_BASE + rng.range32(0, 3);
                        let method = rng.range32(1, 3);
                        ctl_code(FILE_DEVICE_UNKNOWN, f, method, rng.range32(0, 3))
                    }
                    1 => ctl_code(
                        FILE_DEVICE_UNKNOWN,
                        FUNCTION_BASE + rng.range32(0, 3),
                        0,
                        *rng.pick(&[FILE_ANY_ACCESS, FILE_READ_ACCESS | FILE_WRITE_ACCESS]),
                    ),
                    // Vendor functions we do not define, and Microsoft's range.
                    2 => ctl_code(
                        FILE_DEVICE_UNKNOWN,
                        rng.range32(4, 0xFFF) ^ 0x800,
                        0,
                        rng.range32(0, 3),
                    ),
                    _ => rng.next_u32(),
                };
                if !ALL_IOCTLS.contains(&c) && nt_abi::ctl_device_type(c) != 9 {
                    break c;
                }
            };
            let len = rng.range(0, 64) as usize;
            (
                code,
                rng.bytes(len),
                rng.range32(0, 128),
                rw,
                STATUS_INVALID_DEVICE_REQUEST,
            )
        }
        "write-on-read-only" => {
            let (code, input, out) = if rng.range(0, 1) == 0 {
                (
                    IOCTL_RESET_STATS,
                    ResetStatsRequest::new().as_bytes().to_vec(),
                    StatsResponse::SIZE,
                )
            } else {
                (
                    IOCTL_RUN_CYCLES,
                    good_run(rng, capacity).as_bytes().to_vec(),
                    RunCyclesResponse::SIZE,
                )
            };
            (code, input, out as u32, Access::Read, STATUS_ACCESS_DENIED)
        }
        "random" => loop {
            let (code, mut input, out) = good_any(rng, capacity);
            // Flip some bits of a good request, maybe change its length, maybe the output size.
            for _ in 0..rng.range(1, 4) {
                let i = rng.range(0, input.len() as u64 - 1) as usize;
                input[i] ^= 1 << rng.range(0, 7);
            }
            if rng.range(0, 3) == 0 {
                let len = rng.range(0, input.len() as u64 + 16) as usize;
                input.resize(len, rng.next_u64() as u8);
            }
            let out_len = if rng.range(0, 3) == 0 {
                rng.range32(0, 256)
            } else {
                out as u32
            };
            let access = if rng.range(0, 3) == 0 {
                Access::Read
            } else {
                rw
            };
            // Keep only requests the driver must reject (a valid one would change state).
            if let Some(expected) = oracle(code, &input, out_len, access, capacity) {
                break (code, input, out_len, access, expected);
            }
        },
        other => panic!("unknown fuzz class {other}"),
    };
    Case {
        class,
        code,
        input,
        out_len,
        access,
        expected,
    }
}

/// Result of one case that did not behave.
#[derive(Clone, Debug, Serialize)]
pub struct Mismatch {
    pub index: u64,
    pub case: Case,
    pub status: Option<i32>,
    pub information: Option<usize>,
    pub problem: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ClassTally {
    pub cases: u64,
    pub passed: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FuzzReport {
    pub seed: u64,
    pub cases: u64,
    pub passed: u64,
    pub classes: BTreeMap<&'static str, ClassTally>,
    pub mismatches: Vec<Mismatch>,
}

/// Run `count` cases (classes in rotation, contents from `seed`). `on_case` is called after each.
pub fn run_fuzz(
    rw: &dyn DeviceHandle,
    ro: &dyn DeviceHandle,
    seed: u64,
    count: u64,
    classes: &[&'static str],
    mut on_case: impl FnMut(u64),
) -> Result<FuzzReport, Failure> {
    let capacity = Client::new(rw).info()?.slab_capacity;
    let mut rng = Rng::new(seed);
    let mut report = FuzzReport {
        seed,
        cases: 0,
        passed: 0,
        classes: BTreeMap::new(),
        mismatches: Vec::new(),
    };
    let mut before = Client::new(rw).stats()?;
    for index in 0..count {
        let class = classes[(index % classes.len() as u64) as usize];
        let case = make_case(class, &mut rng, capacity);
        // The generator and the protocol's validation functions must agree on every case.
        let oracle = oracle(case.code, &case.input, case.out_len, case.access, capacity);
        assert_eq!(
            oracle,
            Some(case.expected),
            "fuzz generator bug: class {class} case {index} expects {} but validation says {oracle:?}",
            status_code(case.expected)
        );
        let handle = if case.access == Access::Read { ro } else { rw };
        let reply = handle.ioctl(case.code, &case.input, case.out_len)?;
        let after = Client::new(rw).stats()?;
        let mut problems = Vec::new();
        if reply.status != case.expected {
            problems.push(format!(
                "status {} (expected {})",
                status_code(reply.status),
                status_code(case.expected)
            ));
        }
        if reply.information != 0 {
            problems.push(format!("returned {} bytes (expected 0)", reply.information));
        }
        if after != before {
            problems.push(format!(
                "statistics changed: {:?} -> {:?}",
                before.totals, after.totals
            ));
        }
        let tally = report.classes.entry(class).or_default();
        tally.cases += 1;
        report.cases += 1;
        if problems.is_empty() {
            tally.passed += 1;
            report.passed += 1;
        } else {
            report.mismatches.push(Mismatch {
                index,
                case,
                status: Some(reply.status),
                information: Some(reply.information),
                problem: problems.join("; "),
            });
        }
        before = after;
        on_case(index + 1);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_generates_what_validation_rejects() {
        let mut rng = Rng::new(7);
        for &class in CLASSES {
            for _ in 0..500 {
                let c = make_case(class, &mut rng, 64);
                assert_eq!(
                    oracle(c.code, &c.input, c.out_len, c.access, 64),
                    Some(c.expected),
                    "{class}: {c:?}"
                );
            }
        }
    }

    #[test]
    fn seeded_generation_is_reproducible() {
        let gen_all = |seed| {
            let mut rng = Rng::new(seed);
            CLASSES
                .iter()
                .map(|&c| {
                    let case = make_case(c, &mut rng, 64);
                    (case.code, case.input, case.out_len, case.expected)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(gen_all(42), gen_all(42));
        assert_ne!(gen_all(42), gen_all(43));
    }

    #[test]
    fn oracle_accepts_good_requests() {
        let r = RunCyclesRequest::new(10, 4, Mode::QueueEx, 1, 0, 0);
        assert_eq!(
            oracle(IOCTL_RUN_CYCLES, r.as_bytes(), 96, Access::ReadWrite, 64),
            None
        );
        assert_eq!(
            oracle(IOCTL_RUN_CYCLES, r.as_bytes(), 96, Access::Read, 64),
            Some(STATUS_ACCESS_DENIED)
        );
        let q = QueryInfoRequest::new();
        assert_eq!(
            oracle(IOCTL_QUERY_INFO, q.as_bytes(), 72, Access::Read, 64),
            None
        );
    }
}
