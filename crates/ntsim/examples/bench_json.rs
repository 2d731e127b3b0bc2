//! `cargo run --release -p ntsim --example bench_json -- [ITERATIONS]`: ntsim's in-process
//! benchmark (init+uninit, queue→routine→uninit through IoQueueWorkItem and IoQueueWorkItemEx
//! side by side, IOCTL round trips), verifier on and off, as one JSON array on stdout. This is
//! what `cargo xtask bench` reads.
fn main() {
    let iterations = match std::env::args().nth(1) {
        None => 20_000,
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("bench_json: ITERATIONS must be a positive integer, got {s:?}");
                std::process::exit(1);
            }
        },
    };
    let rows: Vec<String> = [ntsim::Verifier::Standard, ntsim::Verifier::Off]
        .into_iter()
        .map(|v| ntsim::bench::run(v, iterations).to_json())
        .collect();
    println!("[{}]", rows.join(","));
}
