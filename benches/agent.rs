//! What the preloaded agent costs a program at start-up: a small program (prints its
//! resident memory in `main` and exits) run 300 times as it is and with the agent library in `LD_PRELOAD`,
//! as `cargo hotreload run` starts a program that does not depend on the runtime. The
//! agent is loaded but not started (no session): what every start pays; a started agent
//! also connects to the session's socket before `main`. Results go to
//! `bench-results/agent.md`, which the latency bench puts in BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const RUNS: usize = 300;

/// One run's wall time (µs) and the resident memory (KiB) the program reports in `main`.
fn run_once(program: &Path, preload: Option<&Path>) -> (f64, i64) {
    let mut cmd = Command::new(program);
    cmd.stdout(Stdio::piped());
    if let Some(library) = preload {
        cmd.env("LD_PRELOAD", library);
    }
    let started = Instant::now();
    let output = cmd.output().unwrap();
    let elapsed = started.elapsed().as_secs_f64() * 1e6;
    assert!(output.status.success());
    let rss = String::from_utf8_lossy(&output.stdout).trim().parse().unwrap();
    (elapsed, rss)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("agent-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("hello.rs");
    // Prints its resident memory (`VmRSS`, KiB) in `main`.
    let hello = "fn main() {\n    let status = std::fs::read_to_string(\"/proc/self/status\").unwrap();\n    \
                 let rss = status.lines().find_map(|l| l.strip_prefix(\"VmRSS:\")).unwrap();\n    \
                 println!(\"{}\", rss.trim().trim_end_matches(\" kB\"));\n}\n";
    std::fs::write(&source, hello).unwrap();
    let program = dir.join("hello");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let built = Command::new(rustc).arg("-O").arg(&source).arg("-o").arg(&program).status().unwrap();
    assert!(built.success());
    let cargo_hotreload::cli::Cargo::Hotreload(args) =
        <cargo_hotreload::cli::Cargo as clap::Parser>::parse_from(["cargo", "hotreload", "status"]);
    let shell = cargo_hotreload::shell::Shell::new(&args.global);
    let agent = cargo_hotreload::build::build_agent(&shell).expect("the agent library builds");
    let size = std::fs::metadata(&agent).unwrap().len();

    let mut rows = String::new();
    let mut results = Vec::new();
    for (name, preload) in [("plain", None), ("agent preloaded", Some(agent.as_path()))] {
        // Alternated with nothing else running: the first runs warm the page cache.
        let runs: Vec<(f64, i64)> = (0..RUNS + 20).map(|_| run_once(&program, preload)).skip(20).collect();
        let time = median(runs.iter().map(|r| r.0).collect());
        let rss = median(runs.iter().map(|r| r.1 as f64).collect());
        println!("{name:<20} start → exit median {time:>7.0} µs, RSS in main median {rss:>6.0} KiB");
        rows += &format!("| {name} | {time:.0} | {rss:.0} |\n");
        results.push((time, rss));
    }
    let summary = format!(
        "The agent library is {:.2} MB; preloading it adds {:+.0} µs and {:+.0} KiB to a program's start.",
        size as f64 / 1e6,
        results[1].0 - results[0].0,
        results[1].1 - results[0].1
    );
    println!("{summary}");
    let markdown = format!(
        "## The preloaded agent (`cargo bench --bench agent`)\n\nA program that prints its resident memory in `main`, run {RUNS} \
         times.\n\n| | start → exit, µs (median) | RSS in `main`, KiB (median) |\n|---|---:|---:|\n{rows}\n{summary}\n\n"
    );
    let results_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-results");
    std::fs::create_dir_all(&results_dir).unwrap();
    std::fs::write(results_dir.join("agent.md"), markdown).unwrap();
}
