//! What a call through a trampoline costs, next to a direct call and a plain `fn`
//! pointer. `cargo bench --bench calls`; prints ns/call (median and spread of rounds).
//!
//! The hot functions here are in their hot form (the runtime's `always-hot`
//! feature), calling the program's own forwarder: the cost every call pays in a
//! `cargo hotreload run` session before and after reloads.

use std::hint::black_box;
use std::time::Instant;

#[inline(never)]
fn direct(x: u64) -> u64 {
    x.wrapping_mul(3).wrapping_add(1)
}

#[hotreload::hot]
fn hot(x: u64) -> u64 {
    x.wrapping_mul(3).wrapping_add(1)
}

struct Acc(u64);

#[hotreload::hot]
impl Acc {
    fn add(&mut self, x: u64) -> u64 {
        self.0 = self.0.wrapping_add(x);
        self.0
    }
}

impl Acc {
    #[inline(never)]
    fn add_direct(&mut self, x: u64) -> u64 {
        self.0 = self.0.wrapping_add(x);
        self.0
    }
}

const CALLS: u64 = 50_000_000;
const ROUNDS: usize = 9;

/// Markdown rows for BENCHMARKS.md.
static ROWS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn measure(name: &str, mut body: impl FnMut(u64) -> u64) -> f64 {
    let mut per_call: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let mut acc = 0u64;
            for i in 0..CALLS {
                acc = acc.wrapping_add(body(black_box(i)));
            }
            black_box(acc);
            start.elapsed().as_nanos() as f64 / CALLS as f64
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    let median = per_call[ROUNDS / 2];
    ROWS.lock().unwrap().push(format!("| {name} | {median:.2} | {:.2} | {:.2} |", per_call[0], per_call[ROUNDS - 1]));
    println!(
        "{name:<32} {median:>6.2} ns/call  (min {:.2}, max {:.2}, {ROUNDS} rounds of {CALLS} calls)",
        per_call[0],
        per_call[ROUNDS - 1]
    );
    median
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    println!("hot form of #[hot]: {}", hotreload::__rt::HOT);
    let baseline = measure("direct #[inline(never)] fn", direct);
    let pointer: fn(u64) -> u64 = black_box(direct);
    measure("plain fn pointer", pointer);
    let trampoline = measure("#[hot] fn (trampoline)", hot);
    let mut a = Acc(0);
    measure("direct #[inline(never)] method", |x| a.add_direct(x));
    let mut b = Acc(0);
    let method = measure("#[hot] method (trampoline)", |x| b.add(x));
    let threads: Vec<_> =
        (0..4).map(|t| std::thread::spawn(move || measure(&format!("#[hot] fn, thread {t} of 4"), hot))).collect();
    let parallel: Vec<f64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut parallel = parallel;
    parallel.sort_by(f64::total_cmp);
    let summary = format!(
        "Trampoline overhead over a direct call: {:+.2} ns/call; hot method vs hot fn: {:+.2} ns/call; \
         4 threads at once on {} cores, median of medians: {:.2} ns/call.",
        trampoline - baseline,
        method - trampoline,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        parallel[2]
    );
    println!("\n{summary}");
    let rows = ROWS.lock().unwrap().join("\n");
    let markdown = format!(
        "## Calls (`cargo bench --bench calls`, release)\n\n| ns/call | median | min | max |\n|---|---:|---:|---:|\n\
         {rows}\n\n{summary}\n\n"
    );
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("calls.md"), markdown).unwrap();
}
