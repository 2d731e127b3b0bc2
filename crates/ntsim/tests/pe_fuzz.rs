//! A bounded, seeded PE mutation fuzz of the real `wdm_workitem.sys` through `ntsim run` (the
//! supervised CLI): mutants of the headers, the section table, the imports and the relocations.
//! Every mutant must end with a documented exit code and one JSON report — never a signal, a
//! panic, or a run that outlives `--timeout` (issue 8 §4).
//!
//! Deterministic: the same seed makes the same mutants (`NTSIM_PE_FUZZ_SEED` overrides it,
//! `NTSIM_PE_FUZZ_COUNT` the number of mutants). A failing mutant is kept under
//! `target/tmp/cli-hardening/` with its arguments in the failure message.
mod cli_support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cli_support::*;

const SEED: u64 = 0x5EED_0008_F422_0001;
const MUTANTS: usize = 3000;
/// Mutants run at once (each is a supervisor and its child).
const WORKERS: usize = 4;
/// `--timeout` for each mutant, seconds.
const TIMEOUT: u64 = 1;
/// How long past `--timeout` a run may take before it counts as a hang (a loaded machine).
const SLACK: Duration = Duration::from_secs(20);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
}

fn rd16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn rd32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn rd64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Where the structures of the original image are (file offsets).
struct Layout {
    oh: usize,
    fields: Vec<(usize, usize)>,
    /// Section headers: (offset of the header, rva, virtual size, raw offset, raw size).
    sections: Vec<(usize, u32, u32, u32, u32)>,
    size_of_image: u32,
    /// Import descriptors (file offsets).
    descriptors: Vec<usize>,
    /// ILT/IAT entries (file offsets, 8 bytes each) and hint/name entries (file offsets).
    thunks: Vec<usize>,
    names: Vec<usize>,
    /// The relocation directory's entry in the optional header, and the file range of the
    /// .reloc section (where new blocks are written).
    reloc_dir: usize,
    reloc_raw: (usize, usize),
    reloc_rva: u32,
    text: (u32, u32),
}

fn rva_to_off(sections: &[(usize, u32, u32, u32, u32)], rva: u32) -> Option<usize> {
    sections.iter().find_map(|&(_, va, vs, ro, rs)| {
        (rva >= va && rva < va + vs.max(rs)).then(|| (ro + (rva - va)) as usize)
    })
}

fn layout(b: &[u8]) -> Layout {
    let nt = rd32(b, 0x3C) as usize;
    let fh = nt + 4;
    let nsec = rd16(b, fh + 2) as usize;
    let opt = rd16(b, fh + 16) as usize;
    let oh = fh + 20;
    // (offset, width) of every header field the loader reads or Windows defines.
    let mut fields = vec![(0x3C, 4), (fh, 2), (fh + 2, 2), (fh + 16, 2), (fh + 18, 2)];
    for (o, w) in [
        (0, 2),
        (16, 4),
        (24, 8),
        (32, 4),
        (36, 4),
        (56, 4),
        (60, 4),
        (68, 2),
        (70, 2),
        (108, 4),
    ] {
        fields.push((oh + o, w));
    }
    for i in 0..16 {
        fields.push((oh + 112 + i * 8, 4));
        fields.push((oh + 116 + i * 8, 4));
    }
    let mut sections = Vec::new();
    for i in 0..nsec {
        let s = oh + opt + i * 40;
        sections.push((
            s,
            rd32(b, s + 12),
            rd32(b, s + 8),
            rd32(b, s + 20),
            rd32(b, s + 16),
        ));
    }
    let text = sections
        .iter()
        .find(|s| &b[s.0..s.0 + 5] == b".text")
        .map(|s| (s.1, s.2))
        .expect(".text");
    let (irva, _) = (rd32(b, oh + 112 + 8), rd32(b, oh + 116 + 8));
    let mut descriptors = Vec::new();
    let mut thunks = Vec::new();
    let mut names = Vec::new();
    let mut d = rva_to_off(&sections, irva).expect("import directory");
    while rd32(b, d + 12) != 0 {
        descriptors.push(d);
        names.push(rva_to_off(&sections, rd32(b, d + 12)).unwrap());
        for table in [rd32(b, d), rd32(b, d + 16)] {
            let Some(mut t) = rva_to_off(&sections, table) else {
                continue;
            };
            while rd64(b, t) != 0 {
                thunks.push(t);
                if let Some(n) = rva_to_off(&sections, rd64(b, t) as u32) {
                    names.push(n);
                }
                t += 8;
            }
        }
        d += 20;
    }
    let reloc_dir = oh + 112 + 5 * 8;
    let reloc_rva = rd32(b, reloc_dir);
    let reloc_sec = sections
        .iter()
        .find(|s| s.1 == reloc_rva)
        .expect(".reloc section");
    Layout {
        oh,
        fields,
        size_of_image: rd32(b, oh + 56),
        sections: sections.clone(),
        descriptors,
        thunks,
        names,
        reloc_dir,
        reloc_raw: (reloc_sec.3 as usize, reloc_sec.4 as usize),
        reloc_rva,
        text,
    }
}

fn interesting(r: &mut Rng, orig: u64, width: usize, l: &Layout) -> u64 {
    let mask = if width == 8 {
        u64::MAX
    } else {
        (1u64 << (width * 8)) - 1
    };
    let v = match r.below(14) {
        0 => 0,
        1 => 1,
        2 => mask,
        3 => mask >> 1,
        4 => (mask >> 1) + 1,
        5 => orig.wrapping_add(1),
        6 => orig.wrapping_sub(1),
        7 => orig.wrapping_add(0x1000),
        8 => orig.wrapping_sub(0x1000),
        9 => orig.wrapping_mul(2),
        10 => r.next() % 0x10000,
        11 => l.size_of_image as u64 - r.below(0x20) as u64,
        12 => orig ^ (1 << r.below(width * 8)),
        _ => r.next(),
    };
    v & mask
}

fn put(b: &mut [u8], at: usize, width: usize, v: u64) {
    b[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
}

fn get(b: &[u8], at: usize, width: usize) -> u64 {
    let mut x = [0u8; 8];
    x[..width].copy_from_slice(&b[at..at + width]);
    u64::from_le_bytes(x)
}

fn mutate_field(b: &mut [u8], r: &mut Rng, at: usize, width: usize, l: &Layout) {
    let v = interesting(r, get(b, at, width), width, l);
    put(b, at, width, v);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Headers,
    SectionTable,
    Imports,
    Relocations,
    Bytes,
}

const KINDS: [Kind; 5] = [
    Kind::Headers,
    Kind::SectionTable,
    Kind::Imports,
    Kind::Relocations,
    Kind::Bytes,
];

/// Write 1–3 relocation blocks into the .reloc section and point the directory at them:
/// DIR64 (and other types) at pages in .text, in other sections, in the headers, past the image.
fn mutate_relocs(b: &mut [u8], r: &mut Rng, l: &Layout) {
    let (raw, raw_len) = l.reloc_raw;
    let mut at = raw;
    let blocks = 1 + r.below(3);
    for _ in 0..blocks {
        let entries = 1 + r.below(24);
        let page = match r.below(6) {
            0 | 1 => l.text.0 + (r.below(l.text.1 as usize) as u32 & !0xFFF),
            2 => l.sections[r.below(l.sections.len())].1,
            3 => 0,
            4 => l.size_of_image - 0x1000 + r.below(2) as u32 * 0x1000,
            _ => r.next() as u32,
        };
        let mut size = 8 + entries * 2;
        if r.below(8) == 0 {
            size = r.pick(&[0, 4, 7, 9, 0xFFFF_FFF0, 0x1000]);
        }
        if at + 8 + entries * 2 > raw + raw_len {
            break;
        }
        put(b, at, 4, page as u64);
        put(b, at + 4, 4, size as u64);
        for k in 0..entries {
            let ty: u16 = match r.below(10) {
                0 => 0,
                1 => 3,
                2 => r.below(16) as u16,
                _ => 10,
            };
            let off = match r.below(3) {
                0 => 0xFF8 + r.below(8) as u16,
                _ => r.below(0x1000) as u16,
            };
            put(b, at + 8 + k * 2, 2, ((ty << 12) | (off & 0xFFF)) as u64);
        }
        at += 8 + entries * 2;
    }
    let mut dir_size = (at - raw) as u64;
    if r.below(6) == 0 {
        dir_size = interesting(r, dir_size, 4, l);
    }
    put(b, l.reloc_dir, 4, l.reloc_rva as u64);
    put(b, l.reloc_dir + 4, 4, dir_size);
}

fn mutant(original: &[u8], l: &Layout, seed: u64, i: usize) -> (Kind, Vec<u8>) {
    let mut r = Rng(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    r.next();
    let kind = KINDS[i % KINDS.len()];
    let mut b = original.to_vec();
    let n = 1 + r.below(3);
    for _ in 0..n {
        match kind {
            Kind::Headers => {
                let (at, w) = l.fields[r.below(l.fields.len())];
                mutate_field(&mut b, &mut r, at, w, l);
            }
            Kind::SectionTable => {
                let s = l.sections[r.below(l.sections.len())].0;
                let (o, w) = r.pick(&[(0, 8), (8, 4), (12, 4), (16, 4), (20, 4), (36, 4)]);
                if o == 36 && r.below(2) == 0 {
                    // Flip the write/execute/discardable bits specifically.
                    let bit = r.pick(&[0x8000_0000u32, 0x2000_0000, 0x0200_0000, 0x20, 0x40]);
                    let v = rd32(&b, s + 36) ^ bit;
                    put(&mut b, s + 36, 4, v as u64);
                } else {
                    mutate_field(&mut b, &mut r, s + o, w, l);
                }
            }
            Kind::Imports => match r.below(3) {
                0 => {
                    let d = l.descriptors[r.below(l.descriptors.len())];
                    let o = r.pick(&[0, 4, 8, 12, 16]);
                    mutate_field(&mut b, &mut r, d + o, 4, l);
                }
                1 => {
                    let t = l.thunks[r.below(l.thunks.len())];
                    let v = match r.below(5) {
                        0 => 0x8000_0000_0000_0000 | r.below(0x10000) as u64,
                        1 => 0,
                        2 => rd64(&b, l.thunks[r.below(l.thunks.len())]),
                        _ => interesting(&mut r, rd64(&b, t), 8, l),
                    };
                    put(&mut b, t, 8, v);
                }
                _ => {
                    let n = l.names[r.below(l.names.len())];
                    let k = r.below(12);
                    b[n + k] = match r.below(3) {
                        0 => 0,
                        1 => 0xFF,
                        _ => b'A' + r.below(26) as u8,
                    };
                }
            },
            Kind::Relocations => mutate_relocs(&mut b, &mut r, l),
            Kind::Bytes => {
                let at = r.below(b.len());
                b[at] = r.next() as u8;
            }
        }
    }
    (kind, b)
}

#[test]
fn every_pe_mutant_ends_with_a_documented_exit_code() {
    let original = std::fs::read(wdm_sys()).unwrap();
    let l = layout(&original);
    assert!(l.thunks.len() > 10 && !l.descriptors.is_empty() && l.oh > 0);
    let seed = std::env::var("NTSIM_PE_FUZZ_SEED")
        .ok()
        .and_then(|s| nt_abi::text::parse_u64(&s).ok())
        .unwrap_or(SEED);
    let count = std::env::var("NTSIM_PE_FUZZ_COUNT")
        .ok()
        .and_then(|s| nt_abi::text::parse_u64(&s).ok())
        .map_or(MUTANTS, |n| n as usize);
    // Determinism: the same seed makes the same bytes.
    for i in [0, 1, 7, 123] {
        assert_eq!(
            mutant(&original, &l, seed, i).1,
            mutant(&original, &l, seed, i).1
        );
    }
    let next = AtomicUsize::new(0);
    let tally: Mutex<BTreeMap<(Kind, String), usize>> = Mutex::new(BTreeMap::new());
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let query = format!(
        "{DEVICE}:{:#x}:0100000008000000:72",
        ioctl::IOCTL_QUERY_INFO
    );
    // A short run of cycles too, so mutated work-item code runs on worker threads.
    let cycles = {
        use ioctl::Wire;
        let req = ioctl::RunCyclesRequest::new(64, 8, ioctl::Mode::RequeueChain, 1, 0, 2);
        let hex: String = req.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{DEVICE}:{:#x}:{hex}:{}",
            ioctl::IOCTL_RUN_CYCLES,
            ioctl::RunCyclesResponse::SIZE
        )
    };
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for w in 0..WORKERS {
            let (next, tally, failures, original, l, query, cycles) =
                (&next, &tally, &failures, &original, &l, &query, &cycles);
            s.spawn(move || {
                let path = tmp(&format!("pe-fuzz-{w}.sys"));
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count || failures.lock().unwrap().len() >= 5 {
                        break;
                    }
                    let (kind, bytes) = mutant(original, l, seed, i);
                    std::fs::write(&path, &bytes).unwrap();
                    let p = path.to_str().unwrap();
                    let args = [
                        "run",
                        p,
                        "--ioctl",
                        query,
                        "--ioctl",
                        cycles,
                        "--json",
                        "--timeout",
                        &TIMEOUT.to_string(),
                    ];
                    let run = ntsim_env(&args, &[], Duration::from_secs(TIMEOUT) + SLACK * 2);
                    let verdict = serde_json::from_str::<serde_json::Value>(run.stdout.trim())
                        .ok()
                        .and_then(|v| v["verdict"].as_str().map(str::to_string));
                    // A panic inside the child is acceptable only as the symptom of a driver
                    // that corrupted the host (its heap checks firing): verdict host_corrupted.
                    let corrupted = verdict.as_deref() == Some("host_corrupted");
                    let documented = run.exit.is_some_and(|c| DOCUMENTED_EXIT_CODES.contains(&c))
                        && (corrupted || !run.stderr.contains("panicked"));
                    if corrupted {
                        let head: String =
                            run.stderr.lines().take(30).collect::<Vec<_>>().join("\n");
                        eprintln!("pe fuzz: mutant {i} ({kind:?}) corrupted its host:\n{head}");
                    }
                    let in_time = run.elapsed < Duration::from_secs(TIMEOUT) + SLACK;
                    match verdict {
                        Some(v) if documented && in_time => {
                            *tally.lock().unwrap().entry((kind, v)).or_default() += 1;
                        }
                        _ => {
                            let keep = tmp(&format!("pe-fuzz-failed-{i}.sys"));
                            std::fs::write(&keep, &bytes).unwrap();
                            failures.lock().unwrap().push(format!(
                                "mutant {i} ({kind:?}, seed {seed:#x}) kept as {}: exit {:?}, \
                                 signal {:?}, {:?}\nstdout: {}\nstderr: {}",
                                keep.display(),
                                run.exit,
                                run.signal,
                                run.elapsed,
                                run.stdout,
                                run.stderr
                            ));
                        }
                    }
                }
            });
        }
    });
    let tally = tally.into_inner().unwrap();
    let failures = failures.into_inner().unwrap();
    let mut by_verdict: BTreeMap<&str, usize> = BTreeMap::new();
    for ((_, v), n) in &tally {
        *by_verdict.entry(v.as_str()).or_default() += n;
    }
    eprintln!(
        "pe fuzz: {} mutants in {:?}: {by_verdict:?}\n{tally:#?}",
        count.min(tally.values().sum::<usize>() + failures.len()),
        t0.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(tally.values().sum::<usize>(), count);
    // The mutants reach every outcome that matters: refused at load, ran clean, crashed the
    // emulated machine (mutated code or data really executed).
    // A driver that writes past its pool blocks corrupts ntsim's heap (pool blocks live there):
    // the supervisor reports that, but it must stay the exception, not the rule.
    let corrupted = by_verdict.get("host_corrupted").copied().unwrap_or(0);
    assert!(
        corrupted * 100 <= count,
        "{corrupted} host_corrupted of {count}"
    );
    for v in ["load_error", "clean", "bugcheck"] {
        assert!(by_verdict.get(v).is_some_and(|&n| n > 0), "no {v} mutant");
    }
    for k in KINDS {
        assert!(
            tally.keys().filter(|(kk, _)| *kk == k).count() >= 2,
            "{k:?} mutants reach more than one outcome"
        );
    }
}
