//! Save → new code, measured on a real session of the bundled demo.
//!
//! `cargo bench --bench latency` copies `demo/` to a temporary directory, runs
//! `cargo hotreload run -v` on it, makes ten one-line edits and times each from the
//! write to the program's first output from the new code. It splits the time with the
//! tool's own `Timing` line (wait = debounce and source scan, build = `cargo rustc`,
//! diff, load, switch), then times a bare `cargo rustc --crate-type cdylib` of the same
//! edits for comparison. Set `LATENCY_EDITS` to change the number of edits.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn main() {
    let edits: usize = std::env::var("LATENCY_EDITS").ok().and_then(|n| n.parse().ok()).unwrap_or(10);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();
    let demo = work.path().join("demo");
    copy_dir(&repo.join("demo"), &demo);
    let manifest = demo.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let runtime = format!("{:?}", repo.join("crates/hotreload").display().to_string());
    std::fs::write(&manifest, text.replace("\"../crates/hotreload\"", &runtime)).unwrap();
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("latency");
    let lib = demo.join("logic/src/lib.rs");

    let mut tool = Command::new(env!("CARGO_BIN_EXE_cargo-hotreload"))
        .args(["hotreload", "run", "-v", "--manifest-path"])
        .arg(&manifest)
        .args(["--target-dir"])
        .arg(&target)
        .args(["--", "2"])
        .env("CARGO_TERM_COLOR", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo-hotreload starts");
    let (out_tx, out_rx) = mpsc::channel::<(Instant, String)>();
    let (err_tx, err_rx) = mpsc::channel::<String>();
    let stdout = tool.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send((Instant::now(), line));
        }
    });
    let stderr = tool.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    wait_for(&err_rx, "Watching", Duration::from_secs(600));
    wait_out(&out_rx, "Hello, world!", Duration::from_secs(60));

    let mut rows: Vec<Row> = Vec::new();
    let mut previous = "Hello".to_string();
    for i in 1..=edits {
        let word = format!("Hello{i}");
        std::thread::sleep(Duration::from_millis(300));
        let src = std::fs::read_to_string(&lib).unwrap();
        let saved = Instant::now();
        std::fs::write(&lib, src.replace(&format!("\"{previous}, {{name}}!\""), &format!("\"{word}, {{name}}!\"")))
            .unwrap();
        let seen = wait_out(&out_rx, &format!("{word}, world!"), Duration::from_secs(60));
        let timing = wait_for(&err_rx, "Timing", Duration::from_secs(60));
        rows.push((seen.duration_since(saved), parse_timing(&timing)));
        previous = word;
    }
    let _ = Command::new("kill").arg(tool.id().to_string()).status();
    let _ = tool.wait();

    // The same edits, as a bare cargo rustc of a cdylib in a target dir of its own.
    let bare_target = target.join("bare");
    let bare = |edit: Option<(&str, &str)>, hot_flags: bool| -> Duration {
        if let Some((from, to)) = edit {
            let src = std::fs::read_to_string(&lib).unwrap();
            std::fs::write(&lib, src.replace(from, to)).unwrap();
        }
        let start = Instant::now();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["rustc", "-q", "-p", "logic", "--lib", "--crate-type", "cdylib", "--manifest-path"]).arg(&manifest);
        if hot_flags {
            // The code our patch builds compile: `#[hot]` in its hot form.
            cmd.env("RUSTFLAGS", "--cfg hotreload --cfg hotreload_patch")
                .env("CARGO_TARGET_DIR", bare_target.join("hot"));
        } else {
            cmd.env("CARGO_TARGET_DIR", &bare_target);
        }
        let status = cmd.status().unwrap();
        assert!(status.success());
        start.elapsed()
    };
    bare(None, false);
    bare(None, true);
    let (mut bare_times, mut bare_hot_times) = (Vec::new(), Vec::new());
    for i in 1..=edits {
        let (from, to) = (format!("\"{previous}, {{name}}!\""), format!("\"Bare{i}, {{name}}!\""));
        bare_times.push(bare(Some((&from, &to)), false));
        bare_hot_times.push(bare(None, true));
        previous = format!("Bare{i}");
    }

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let column = |f: &dyn Fn(&Row) -> f64| -> Vec<f64> { rows.iter().map(f).collect() };
    println!("save → new code on the demo, {edits} one-line edits (ms):");
    println!("{:<34} {:>8} {:>8} {:>8}", "", "median", "p90", "max");
    let report = |name: &str, mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        let p90 = values[((values.len() as f64 * 0.9).ceil() as usize).saturating_sub(1)];
        println!("{name:<34} {:>8.1} {:>8.1} {:>8.1}", median(&values), p90, values[values.len() - 1]);
        median(&values)
    };
    let total = report("save → new code seen by the app", column(&|r| ms(r.0)));
    report("  wait (debounce + source scan)", column(&|r| r.1[0]));
    let build = report("  cargo rustc (patch build)", column(&|r| r.1[1]));
    report("  diff (object read + compare)", column(&|r| r.1[2]));
    report("  load (dlopen)", column(&|r| r.1[3]));
    report("  switch slots", column(&|r| r.1[4]));
    let bare = report("bare cargo rustc --crate-type cdylib", bare_times.iter().map(|d| ms(*d)).collect());
    let bare_hot = report("  the same, with the hot cfgs", bare_hot_times.iter().map(|d| ms(*d)).collect());
    println!();
    println!("our overhead (all but the patch build): {:.1} ms median", total - build);
    println!("save → new code / bare cdylib build: {:.2} (same flags: {:.2})", total / bare, total / bare_hot);
}

/// One edit: save → seen, and the tool's timing split [wait, build, diff, load, switch].
type Row = (Duration, [f64; 5]);

fn median(sorted: &[f64]) -> f64 {
    sorted[sorted.len() / 2]
}

/// `wait W ms, build B ms, diff D ms, load L ms, switch S ms` → [W, B, D, L, S]
fn parse_timing(line: &str) -> [f64; 5] {
    let mut out = [0.0; 5];
    for (i, key) in ["wait ", "build ", "diff ", "load ", "switch "].iter().enumerate() {
        let rest = &line[line.find(key).unwrap_or_else(|| panic!("no {key} in {line}")) + key.len()..];
        out[i] = rest.split(' ').next().unwrap().parse().unwrap();
    }
    out
}

fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("cargo hotreload never printed {needle:?}"));
        if line.contains("error") || line.contains("warning") {
            eprintln!("{line}");
        }
        if line.contains(needle) {
            return line;
        }
    }
}

fn wait_out(rx: &mpsc::Receiver<(Instant, String)>, needle: &str, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        let (at, line) = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the demo never printed {needle:?}"));
        if line.contains(needle) {
            return at;
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "target" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
