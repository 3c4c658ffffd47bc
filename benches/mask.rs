//! `cargo bench --bench mask`: the masker on the log hot path (`src/mask.rs`). Every captured
//! line passes it twice — on the worker and again in the server's log store — so its cost per
//! line, with and without a secret in the line, for mask sets of 1, 5 and 50 values, is what a
//! flooding step pays. Lines of about 60 bytes, as a typical log.

use std::hint::black_box;
use std::time::{Duration, Instant};

use stroem::mask::Masker;

const LINES: usize = 1_000_000;

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    println!("| values | lines | ns per line, no secret | ns per line, one secret |");
    println!("|---|---|---|---|");
    for values in [1, 5, 50] {
        let secrets: Vec<String> = (0..values)
            .map(|i| format!("s3cr3t-token-value-{i:03}"))
            .collect();
        let masker = Masker::new(&secrets);
        let clean: Vec<String> = (0..LINES)
            .map(|i| format!("a line of log output, about sixty bytes long, number {i}"))
            .collect();
        let dirty: Vec<String> = (0..LINES)
            .map(|i| format!("token={} number {i}", secrets[i % values]))
            .collect();
        let per_line = |lines: &[String]| {
            let started = Instant::now();
            for line in lines {
                black_box(masker.mask(black_box(line)));
            }
            per(started.elapsed())
        };
        println!(
            "| {values} | {LINES} | {:.0} | {:.0} |",
            per_line(&clean),
            per_line(&dirty)
        );
    }
}

fn per(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e9 / LINES as f64
}
