//! Save → new code, measured on real sessions of generated crates of several sizes.
//!
//! `cargo bench --bench latency [-- SIZE...]` generates a workspace per size (a hot
//! library and a program that prints what it returns), runs `cargo hotreload run -v`
//! on it, makes one-line edits and times each from the write to the program's first
//! output from the new code. The tool's `Timing` line splits that into wait (debounce
//! and source scan), build (rustc, and the link of a linked patch), diff, load and
//! switch. `small` and `mid` run a second session with `--self-contained` for
//! comparison. Then it times a bare `cargo rustc --crate-type cdylib` of the same
//! edits, with and without the hot cfgs, and a bare `cargo build` of the program (a
//! cdylib of code without `#[hot]` exports nothing, so rustc generates no code for it:
//! the `cargo build` row is the fair yardstick there).
//!
//! Sizes: `small` (~100 lines, 5 hot fns), `mid` (~2,000 lines, 100), `large` (~8,000
//! lines, 400), and `apply` (1,000 tiny hot fns and an edit outside them, so every
//! function is rebuilt whole and switched: the time to switch 1,000 slots). Edits of
//! the other sizes change one body, so a linked patch compiles that function whole
//! and the others as stubs. `mid` and `unannotated-mid` also reload 1,000 times
//! (`LATENCY_SOAK`) and report the program's memory, mappings, threads and descriptors,
//! and save → new code at the end against the start. `load` runs 16 threads calling
//! reloaded code while a save lands every 100 ms for 60 s. `unannotated-small` and `unannotated-mid` are the
//! same crates without `#[hot]` and without a hotreload dependency (every changed
//! function switches at its entry), `unannotated-outside` edits a `const` of the
//! unannotated `mid` crate, and `unannotated-apply` a `const` that each of 1,000
//! functions reads: the time to redirect 1,000 functions. `startup` times a session's
//! start against `cargo run`, after a plain `cargo build`.
//!
//! `LATENCY_EDITS` sets the edits per size (10); `LATENCY_VERBOSE` prints the tool's
//! timing line for each edit. With `BENCHMARKS_MD=FILE`, the results
//! (and `calls`' and `agent`'s if they ran first, as `cargo bench` does) are written to FILE:
//! `BENCHMARKS_MD=BENCHMARKS.md cargo bench` regenerates the repository's report.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Size {
    name: &'static str,
    fns: usize,
    lines_per_fn: usize,
    /// Functions marked `#[hot]`; without, the library does not depend on hotreload
    /// and every changed function switches at its entry.
    hot: bool,
    /// The edit is to a `const` outside any function body.
    outside: bool,
    /// The program does not depend on the runtime either (no `hotreload::init()`): the
    /// tool preloads its agent.
    preloaded: bool,
}

const SIZES: [Size; 9] = [
    Size { name: "small", fns: 5, lines_per_fn: 18, hot: true, outside: false, preloaded: false },
    Size { name: "mid", fns: 100, lines_per_fn: 19, hot: true, outside: false, preloaded: false },
    Size { name: "large", fns: 400, lines_per_fn: 19, hot: true, outside: false, preloaded: false },
    Size { name: "apply", fns: 1000, lines_per_fn: 3, hot: true, outside: true, preloaded: false },
    Size { name: "unannotated-small", fns: 5, lines_per_fn: 18, hot: false, outside: false, preloaded: false },
    Size { name: "preloaded-small", fns: 5, lines_per_fn: 18, hot: false, outside: false, preloaded: true },
    Size { name: "unannotated-mid", fns: 100, lines_per_fn: 19, hot: false, outside: false, preloaded: false },
    Size { name: "unannotated-outside", fns: 100, lines_per_fn: 19, hot: false, outside: true, preloaded: false },
    Size { name: "unannotated-apply", fns: 1000, lines_per_fn: 3, hot: false, outside: true, preloaded: false },
];

fn main() {
    let edits: usize = std::env::var("LATENCY_EDITS").ok().and_then(|n| n.parse().ok()).unwrap_or(10);
    let wanted: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let results = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-results");
    std::fs::create_dir_all(&results).unwrap();
    let mut report = String::new();
    for size in SIZES.iter().filter(|s| wanted.is_empty() || wanted.iter().any(|w| w == s.name)) {
        report += &run_size(&repo, size, edits);
    }
    if wanted.is_empty() || wanted.iter().any(|w| w == "load") {
        report += &run_load(&repo);
    }
    if wanted.is_empty() || wanted.iter().any(|w| w == "startup") {
        report += &run_startup(&repo);
    }
    std::fs::write(results.join("latency.md"), &report).unwrap();
    if let Ok(path) = std::env::var("BENCHMARKS_MD") {
        let calls = std::fs::read_to_string(results.join("calls.md")).unwrap_or_default();
        let agent = std::fs::read_to_string(results.join("agent.md")).unwrap_or_default();
        let doc = format!("{}{calls}{agent}{report}", header());
        std::fs::write(repo.join(&path), doc).unwrap();
        println!("wrote {path}");
    }
}

fn header() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap().trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let rustc =
        Command::new("rustc").arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    format!(
        "# Benchmarks\n\nRegenerate with `BENCHMARKS_MD=BENCHMARKS.md cargo bench`. Debug builds unless noted.\n\n\
         Machine: {cpu}, {cores} cores; {}; {}.\n\n",
        rustc.unwrap_or_default(),
        date.unwrap_or_default()
    )
}

/// Generates the workspace for a size.
fn generate(repo: &Path, dir: &Path, size: &Size) {
    std::fs::create_dir_all(dir.join("app/src")).unwrap();
    std::fs::create_dir_all(dir.join("gen/src")).unwrap();
    let runtime = format!("{:?}", repo.join("crates/hotreload").display().to_string());
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[workspace]\nmembers = [\"app\", \"gen\"]\nresolver = \"2\"\n\n[workspace.dependencies]\nhotreload-runtime = {{ path = {runtime} }}\n"),
    )
    .unwrap();
    std::fs::copy(repo.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let runtime_dependency = if size.hot { "\n[dependencies]\nhotreload-runtime.workspace = true\n" } else { "" };
    std::fs::write(
        dir.join("gen/Cargo.toml"),
        format!("[package]\nname = \"gen\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{runtime_dependency}"),
    )
    .unwrap();
    let (app_runtime, init) = match size.preloaded {
        false => ("hotreload-runtime.workspace = true\n", "    hotreload::init();\n"),
        true => ("", ""),
    };
    std::fs::write(
        dir.join("app/Cargo.toml"),
        format!("[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n{app_runtime}gen = {{ path = \"../gen\" }}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("app/src/main.rs"),
        String::from("fn main() {\n") + init + "    let mut last = String::new();\n    loop {\n        let line = format!(\"probe={} {}\", gen::probe(), gen::f0(3).len());\n        if line != last {\n            println!(\"{line}\");\n            last = line;\n        }\n        std::thread::sleep(std::time::Duration::from_millis(1));\n    }\n}\n",
    )
    .unwrap();
    let mut src = if size.outside {
        // The edit is to a `const`, outside any body: with `#[hot]`, every function of
        // the patch is compiled whole and all 1,001 slots switch.
        String::from("//! Generated for the latency benchmark.\n\nconst PROBE: &str = \"v0\";\n\n/// Returns what the benchmark edits.\n#[hotreload::hot]\npub fn probe() -> &'static str {\n    PROBE\n}\n\n")
    } else {
        String::from("//! Generated for the latency benchmark.\n\n/// The line the benchmark edits.\n#[hotreload::hot]\npub fn probe() -> &'static str {\n    \"v0\"\n}\n\n")
    };
    for i in 0..size.fns {
        let next = (i + 1) % size.fns;
        if size.lines_per_fn <= 3 && !size.hot {
            // Each reads the edited `const`: all 1,000 change, and are redirected.
            let _ = write!(src, "pub fn f{i}(x: u64) -> String {{ format!(\"{{}}{{}}\", PROBE.len(), x + {i}) }}\n\n");
            continue;
        }
        if size.lines_per_fn <= 3 {
            let _ =
                write!(src, "#[hotreload::hot]\npub fn f{i}(x: u64) -> String {{ format!(\"{{}}\", x + {i}) }}\n\n");
            continue;
        }
        let _ = write!(
            src,
            "/// Function {i}.\n#[hotreload::hot]\npub fn f{i}(x: u64) -> String {{\n    let mut total = 0u64;\n    for k in 0..x {{\n        total = total.wrapping_mul(31).wrapping_add(k ^ {i});\n    }}\n    let words: Vec<String> = (0..x % 4).map(|w| format!(\"w{{w}}\")).collect();\n    let tag = match total % 3 {{\n        0 => \"zero\",\n        1 => \"one\",\n        _ => \"two\",\n    }};\n    if x > 1000 {{\n        return f{next}(x / 2);\n    }}\n    format!(\"{{tag}}-{{}}-{{}}\", words.join(\",\"), total)\n}}\n\n"
        );
    }
    if !size.hot {
        src = src.replace("#[hotreload::hot]\n", "");
    }
    std::fs::write(dir.join("gen/src/lib.rs"), src).unwrap();
}

/// One edit's numbers: save → seen, then [wait, build, diff, load, switch, threads
/// held] in ms.
type Row = (f64, [f64; 6]);

fn run_size(repo: &Path, size: &Size, edits: usize) -> String {
    let work = tempfile::tempdir().unwrap();
    let ws = work.path().join(size.name);
    generate(repo, &ws, size);
    let manifest = ws.join("Cargo.toml");
    let lib = ws.join("gen/src/lib.rs");
    let lines = std::fs::read_to_string(&lib).unwrap().lines().count();
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("latency");
    let kind = if size.hot { "hot" } else { "unannotated" };
    println!("== {}: {} {kind} fns, {lines} lines", size.name, size.fns + 1);

    let (rows, memory, mut generation) = run_session(&manifest, &lib, &target, size, edits, &[], 0);
    let self_contained = matches!(size.name, "small" | "mid")
        .then(|| run_session(&manifest, &lib, &target, size, edits, &["--self-contained"], generation));
    if let Some((_, _, g)) = &self_contained {
        generation = *g;
    }

    // The same edits as bare builds, in target directories of their own.
    let mut g = generation;
    let bare_cold = bare_builds(&manifest, &lib, &target.join("bare"), (CDYLIB, &[]), edits, &mut g);
    let hot_cfgs = (CDYLIB, &[("CARGO_HOTRELOAD_BUILD", "patch")][..]);
    let bare_hot = bare_builds(&manifest, &lib, &target.join("bare-hot"), hot_cfgs, edits, &mut g);
    let program = bare_builds(&manifest, &lib, &target.join("bare-build"), (PROGRAM, &[]), edits, &mut g);

    let edit = if size.outside { "edits of a `const` outside any body" } else { "one-line edits of a body" };
    let mut out = format!(
        "## `{}`: {} {kind} functions, {lines} lines, {edits} {edit}\n\n| ms | median | p90 | max |\n|---|---:|---:|---:|\n",
        size.name,
        size.fns + 1
    );
    let mut line = |name: &str, values: Vec<f64>| -> f64 {
        let (median, p90, max) = stats(values);
        let _ = writeln!(out, "| {name} | {median:.1} | {p90:.1} | {max:.1} |");
        println!("{name:<40} median {median:>8.1}  p90 {p90:>8.1}  max {max:>8.1}");
        median
    };
    let total = line("save → new code seen by the program (linked patch)", rows.iter().map(|r| r.0).collect());
    line("  wait (debounce + source scan)", rows.iter().map(|r| r.1[0]).collect());
    let build = line("  patch build (rustc + link)", rows.iter().map(|r| r.1[1]).collect());
    line("  diff (read records and type layouts + compare)", rows.iter().map(|r| r.1[2]).collect());
    line("  load (map the image)", rows.iter().map(|r| r.1[3]).collect());
    line("  switch (slots and entries)", rows.iter().map(|r| r.1[4]).collect());
    line("    of which the program's threads were held", rows.iter().map(|r| r.1[5]).collect());
    let contained = self_contained.map(|(rows, _, _)| {
        let total = line("save → new code (`--self-contained`)", rows.iter().map(|r| r.0).collect());
        line("  patch build (rustc, cdylib)", rows.iter().map(|r| r.1[1]).collect());
        total
    });
    let cold = line("bare `cargo rustc --crate-type cdylib`", bare_cold);
    let hot = line("the same with the hot cfgs", bare_hot);
    let rebuild = line("bare `cargo build` of the program (what a restart compiles)", program);
    let mut summary = format!(
        "\nOur overhead (all but the patch build): {:.1} ms median. Save → new code / bare build: {:.2} \
         (with the hot cfgs: {:.2}); / `cargo build` of the program: {:.2}.",
        total - build,
        total / cold,
        total / hot,
        total / rebuild
    );
    if let Some(contained) = contained {
        let _ = write!(summary, " Self-contained: {:.2} of the bare build.", contained / cold);
    }
    summary.push('\n');
    println!("{}", summary.trim());
    out + &summary + &memory + "\n"
}

/// Start-up against `cargo run`, on `preloaded-small` (a workspace that never mentions
/// the tool) after a plain `cargo build`: the program's first line, timed from the
/// command's start. Each case runs `STARTUP_RUNS` times (5); the first-session case in
/// a fresh target directory each time.
fn run_startup(repo: &Path) -> String {
    let runs: usize = std::env::var("STARTUP_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(5);
    let mut out = format!(
        "## Start-up (after `cargo build`, {runs} runs; `cargo bench --bench latency -- startup`)\n\n\
         Time to the program's first line, from the command's start; both commands run through the same \
         `cargo`, so `cargo hotreload run` also pays cargo's dispatch of an external subcommand. A first \
         session is one with no state of the tool's in the target directory (`target/hotreload` removed); \
         nothing is compiled before the program starts in any row.\n\n"
    );
    for dependencies in [false, true] {
        out += &startup_rows(repo, runs, dependencies);
    }
    out
}

/// crates.io dependencies of the start-up bench's second workspace, all in this
/// repository's lock file (so in cargo's cache once the tool is built): 70 units of a
/// fresh `cargo build`'s check, as a small real program has.
const STARTUP_DEPENDENCIES: &str = "clap = { version = \"4\", features = [\"derive\"] }\nserde_json = \"1\"\n\
    toml_edit = \"0.22\"\nnotify = \"8\"\nindicatif = \"0.17\"\nignore = \"0.4\"\nsyn = { version = \"2\", features = [\"full\"] }\n";

/// Writes the start-up workspace at `ws`: `preloaded-small`, with
/// [`STARTUP_DEPENDENCIES`] when `dependencies`; returns its name.
fn generate_startup(repo: &Path, ws: &Path, dependencies: bool) -> &'static str {
    let size = Size { name: "startup", fns: 5, lines_per_fn: 18, hot: false, outside: false, preloaded: true };
    generate(repo, ws, &size);
    if !dependencies {
        return "preloaded-small";
    }
    let manifest = ws.join("app/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap() + STARTUP_DEPENDENCIES;
    std::fs::write(&manifest, text).unwrap();
    // Each linked into the program, as a real one uses them.
    let main = ws.join("app/src/main.rs");
    let uses = "    let _ = (clap::Command::new(\"app\"), serde_json::json!(1), toml_edit::DocumentMut::new(), \
        notify::Config::default(), indicatif::ProgressBar::hidden(), ignore::WalkBuilder::new(\".\"), \
        syn::parse_str::<syn::Expr>(\"1\"));\n";
    let text = std::fs::read_to_string(&main).unwrap().replacen("fn main() {\n", &format!("fn main() {{\n{uses}"), 1);
    std::fs::write(&main, text).unwrap();
    "preloaded-small with 7 crates.io dependencies"
}

/// One start-up table: `preloaded-small`, with [`STARTUP_DEPENDENCIES`] when
/// `dependencies`.
fn startup_rows(repo: &Path, runs: usize, dependencies: bool) -> String {
    let work = tempfile::tempdir().unwrap();
    let ws = work.path().join("startup");
    let name = generate_startup(repo, &ws, dependencies);
    let manifest = ws.join("Cargo.toml");
    let lib = ws.join("gen/src/lib.rs");
    println!("== startup: {name} after `cargo build`, {runs} runs each");
    let target = work.path().join("target");
    let cargo_build = || {
        let built = Command::new(env!("CARGO"))
            .args(["build", "--offline", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .unwrap();
        assert!(built.success(), "cargo build of the startup workspace failed");
    };
    let first_line = |mut cmd: Command| -> f64 {
        let started = Instant::now();
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let took = ms(started.elapsed());
        assert!(line.starts_with("probe="), "the program printed {line:?}");
        // SIGTERM: the tool stops the program's process group too.
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
        took
    };
    let cargo_run = || {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["run", "--offline", "--quiet", "--manifest-path"]).arg(&manifest).env("CARGO_TARGET_DIR", &target);
        first_line(cmd)
    };
    // As a user runs it: through the same cargo as `cargo run`, which finds the
    // subcommand on `PATH` and tells it where cargo is (`CARGO`).
    let tool_dir = Path::new(env!("CARGO_BIN_EXE_cargo-hotreload")).parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(tool_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let hotreload_run = || {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["hotreload", "run", "-q", "--manifest-path"]).arg(&manifest).env("CARGO_TARGET_DIR", &target);
        cmd.env("PATH", &path);
        first_line(cmd)
    };
    // What no session can avoid: cargo's dispatch of the subcommand (before the tool
    // runs), then a second cargo's check that the program is built.
    let dispatch = || {
        let started = Instant::now();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["hotreload", "--version"]).env("PATH", &path);
        let status = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
        assert!(status.success(), "{cmd:?} failed");
        ms(started.elapsed())
    };
    let check = || {
        let started = Instant::now();
        cargo_build();
        ms(started.elapsed())
    };
    // The agent library is built once per installation, not per session: not timed.
    cargo_build();
    hotreload_run();
    let (mut run, mut first, mut later, mut edited, mut run_edited) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut dispatched, mut checked) = (vec![], vec![]);
    for i in 0..runs {
        dispatched.push(dispatch());
        checked.push(check());
        run.push(cargo_run());
        later.push(hotreload_run());
        std::fs::remove_dir_all(target.join("hotreload")).unwrap();
        first.push(hotreload_run());
        // A first session compiles the workspace's crates again once the program runs,
        // to record their commands; stopped midway, it may leave them to compile.
        cargo_build();
        // An edit the user built with `cargo build`, then ran both ways.
        let src = std::fs::read_to_string(&lib).unwrap();
        std::fs::write(&lib, src.replace(&format!("\"v{i}\""), &format!("\"v{}\"", i + 1))).unwrap();
        cargo_build();
        run_edited.push(cargo_run());
        cargo_build();
        edited.push(hotreload_run());
    }
    let rows = [
        ("`cargo run`", run),
        ("`cargo hotreload run`, first session after `cargo build`", first),
        ("`cargo hotreload run`, a later session, nothing changed", later),
        ("`cargo run` after a `cargo build` of an edit", run_edited),
        ("`cargo hotreload run` after a `cargo build` of an edit", edited),
    ];
    startup_table(name, rows, (dispatched, checked))
}

/// The start-up table of workspace `name`: each row's times against the first row's
/// (`cargo run`), then the floor from the times of cargo's dispatch and build check.
fn startup_table(name: &str, rows: [(&str, Vec<f64>); 5], (dispatched, checked): (Vec<f64>, Vec<f64>)) -> String {
    let mut out = format!("### `{name}`\n\n| ms | median | p90 | max | / `cargo run` |\n|---|---:|---:|---:|---:|\n");
    let base = stats(rows[0].1.clone()).0;
    for (name, values) in rows {
        let (median, p90, max) = stats(values);
        let _ = writeln!(out, "| {name} | {median:.1} | {p90:.1} | {max:.1} | {:.2}× |", median / base);
        println!("{name:<60} median {median:>8.1}  p90 {p90:>8.1}  max {max:>8.1}");
    }
    let (dispatch, check) = (stats(dispatched).0, stats(checked).0);
    let floor = dispatch + check;
    let _ = writeln!(
        out,
        "\nThe floor: cargo's dispatch of `cargo hotreload --version` ({dispatch:.1} ms) plus a `cargo build` \
         with nothing to do ({check:.1} ms) = {floor:.1} ms, {:.2}× `cargo run`, before the program starts.",
        floor / base
    );
    println!("floor: dispatch {dispatch:.1} + build check {check:.1} = {floor:.1} ms ({:.2}x cargo run)", floor / base);
    out.push('\n');
    out
}

/// Threads calling reloaded code (`LOAD_THREADS`).
const LOAD_THREADS: usize = 16;

/// The load run: a program whose 16 threads call `gen::version()` in tight loops and
/// check that each answer is a version no older than their last (old or new code, never
/// anything else), while the bench saves a new version as soon as the last one runs,
/// at most every 100 ms, for 60 s (`LOAD_SECONDS`).
fn run_load(repo: &Path) -> String {
    let seconds: u64 = std::env::var("LOAD_SECONDS").ok().and_then(|n| n.parse().ok()).unwrap_or(60);
    let work = tempfile::tempdir().unwrap();
    let ws = work.path().join("load");
    let size = Size { name: "load", fns: 5, lines_per_fn: 18, hot: false, outside: false, preloaded: true };
    generate(repo, &ws, &size);
    let lib = ws.join("gen/src/lib.rs");
    let mut src = std::fs::read_to_string(&lib).unwrap();
    src.push_str("/// The version the bench last saved.\npub fn version() -> u64 {\n    0\n}\n");
    std::fs::write(&lib, &src).unwrap();
    let main = format!(
        "use std::sync::atomic::{{AtomicU64, Ordering}};\n\
         static CALLS: AtomicU64 = AtomicU64::new(0);\nstatic BAD: AtomicU64 = AtomicU64::new(0);\n\
         static NEWEST: AtomicU64 = AtomicU64::new(0);\n\
         fn main() {{\n    for _ in 0..{LOAD_THREADS} {{\n        std::thread::spawn(|| {{\n            let mut last = 0;\n            \
         loop {{\n                let v = gen::version();\n                if v < last || v > 100_000 {{ BAD.fetch_add(1, Ordering::Relaxed); }}\n                \
         last = last.max(v);\n                NEWEST.fetch_max(v, Ordering::Relaxed);\n                \
         CALLS.fetch_add(1, Ordering::Relaxed);\n            }}\n        }});\n    }}\n    \
         println!(\"probe={{}} \", gen::probe());\n    loop {{\n        std::thread::sleep(std::time::Duration::from_millis(20));\n        \
         println!(\"version={{}} calls={{}} bad={{}}\", NEWEST.load(Ordering::Relaxed), CALLS.load(Ordering::Relaxed), \
         BAD.load(Ordering::Relaxed));\n    }}\n}}\n"
    );
    std::fs::write(ws.join("app/src/main.rs"), main).unwrap();
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("latency");
    println!("== load: {LOAD_THREADS} threads, a save every 100 ms for {seconds} s");
    let mut session = Session::start(&ws.join("Cargo.toml"), &target, &[]);
    session.wait_err("Watching", Duration::from_secs(900));
    session.wait_out("probe=v0 ", Duration::from_secs(60));
    let connected = session.wait_err("Connected to process", Duration::from_secs(60));
    let pid = connected.split("Connected to process ").nth(1).and_then(|r| r.split(' ').next()).unwrap().to_string();
    // On a 2-core machine 16 spinning threads would starve rustc: they run at the lowest
    // priority, busy whenever the compiler is not.
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let tid = task.unwrap().file_name().to_string_lossy().into_owned();
        let _ = Command::new("renice").args(["-n", "19", "-p", &tid]).stdout(Stdio::null()).status();
    }
    let started = Instant::now();
    let mut version = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        // A save as soon as the last one is running, and at most every 100 ms: a save
        // during a build supersedes it, so saves faster than builds would land none.
        let saved = Instant::now();
        version += 1;
        let src = std::fs::read_to_string(&lib).unwrap();
        let next = src.replace(&format!("    {}\n}}\n", version - 1), &format!("    {version}\n}}\n"));
        std::fs::write(&lib, next).unwrap();
        session.wait_out(&format!("version={version} "), Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(100).saturating_sub(saved.elapsed()));
    }
    // The next line: every thread has run the newest code.
    let (calls, bad) = session.last_load_line(Duration::from_secs(5));
    let reloads = session.count_err("Reloaded gen");
    assert_eq!(bad, 0, "threads saw code that was neither old nor new");
    let summary = format!(
        "## `load`: {LOAD_THREADS} threads calling reloaded code, a save at most every 100 ms for {seconds} s\n\n\
         {version} saves, each applied before the next ({reloads} patches); {calls} calls, {bad} answers other \
         than an old or a new version, no crash.\n\n"
    );
    println!("{}", summary.trim());
    summary
}

/// Times `cargo ARGS` (with `env`) in `target_dir` for `edits` edits of `lib` (after one
/// untimed build), continuing from version `generation`: the bare builds that save →
/// new code is compared with.
fn bare_builds(
    manifest: &Path,
    lib: &Path,
    target_dir: &Path,
    (args, env): (&[&str], &[(&str, &str)]),
    edits: usize,
    generation: &mut usize,
) -> Vec<f64> {
    let cargo = || {
        let start = Instant::now();
        let status = Command::new(env!("CARGO"))
            .args(args)
            .arg("--manifest-path")
            .arg(manifest)
            .env_remove("CARGO_HOTRELOAD_BUILD")
            .envs(env.iter().copied())
            .env("CARGO_TARGET_DIR", target_dir)
            .status()
            .unwrap();
        assert!(status.success());
        ms(start.elapsed())
    };
    cargo();
    (0..edits)
        .map(|_| {
            *generation += 1;
            let src = std::fs::read_to_string(lib).unwrap();
            let next = src.replace(&format!("\"v{}\"", *generation - 1), &format!("\"v{generation}\""));
            std::fs::write(lib, next).unwrap();
            cargo()
        })
        .collect()
}

/// A bare cdylib build of the library; with `CARGO_HOTRELOAD_BUILD=patch`
/// (`hotreload_protocol::ENV_BUILD`), with the runtime's hot cfgs.
const CDYLIB: &[&str] = &["rustc", "-q", "-p", "gen", "--lib", "--crate-type", "cdylib"];

/// A bare `cargo build` of the program (the library and the binary's link): a fairer
/// yardstick than a cdylib for code without `#[hot]`, since a cdylib exports no
/// Rust-ABI function and rustc then generates no code for any of them.
const PROGRAM: &[&str] = &["build", "-q", "-p", "app"];

/// One session of `size` with `flags`, `edits` timed edits (and, for `mid`, reloads up
/// to 100 with a memory sample), starting from version `generation`. Returns the
/// timed rows, the memory report and the last version written.
fn run_session(
    manifest: &Path,
    lib: &Path,
    target: &Path,
    size: &Size,
    edits: usize,
    flags: &[&str],
    mut generation: usize,
) -> (Vec<Row>, String, usize) {
    let mut session = Session::start(manifest, target, flags);
    session.wait_err("Watching", Duration::from_secs(900));
    session.wait_out(&format!("probe=v{generation} "), Duration::from_secs(60));
    let connected = session.wait_err("Connected to process", Duration::from_secs(60));
    let app_pid: u32 = connected
        .split("Connected to process ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("the tool says which process connected (-v)");

    let mut rows: Vec<Row> = Vec::new();
    let mut edit = |session: &mut Session, timed: bool| -> Option<Row> {
        generation += 1;
        std::thread::sleep(Duration::from_millis(if timed { 300 } else { 30 }));
        let src = std::fs::read_to_string(lib).unwrap();
        let saved = Instant::now();
        std::fs::write(lib, src.replace(&format!("\"v{}\"", generation - 1), &format!("\"v{generation}\""))).unwrap();
        let seen = session.wait_out(&format!("probe=v{generation} "), Duration::from_secs(120));
        let timing = session.wait_err("Timing", Duration::from_secs(120));
        if std::env::var_os("LATENCY_VERBOSE").is_some() {
            println!("{}", timing.trim());
        }
        timed.then(|| (ms(seen.duration_since(saved)), parse_timing(&timing)))
    };
    for _ in 0..edits {
        rows.push(edit(&mut session, true).unwrap());
    }
    let mut memory = String::new();
    if matches!(size.name, "mid" | "unannotated-mid") && flags.is_empty() {
        // The long session: reloads up to `LATENCY_SOAK` (1,000), then as many timed
        // edits as at the start, to compare save → new code early and late.
        let soak: usize = std::env::var("LATENCY_SOAK").ok().and_then(|n| n.parse().ok()).unwrap_or(1000);
        let before = ProcessSample::take(app_pid);
        let more = soak.saturating_sub(2 * edits);
        for _ in 0..more {
            edit(&mut session, false);
        }
        let late_rows: Vec<Row> = (0..edits).map(|_| edit(&mut session, true).unwrap()).collect();
        let late: Vec<f64> = late_rows.iter().map(|r| r.0).collect();
        let after = ProcessSample::take(app_pid);
        let reloads = ((more + edits) as f64).max(1.0);
        let (early, late) = (stats(rows.iter().map(|r| r.0).collect()).0, stats(late).0);
        memory = format!(
            "\nA long session of `{}`: {} reloads. From reload {} to {}: RSS {:.1} → {:.1} MiB ({:+.0} KiB per \
             reload); patches mapped {:.1} → {:.1} MiB ({:+.0} KiB per reload); mappings {} → {}; threads {} → {}; \
             file descriptors {} → {}. Save → new code, median: reloads 1–{edits} {early:.1} ms, reloads {}–{} \
             {late:.1} ms.\n",
            size.name,
            soak.max(2 * edits),
            edits,
            edits + more + edits,
            before.rss_kib as f64 / 1024.0,
            after.rss_kib as f64 / 1024.0,
            (after.rss_kib as f64 - before.rss_kib as f64) / reloads,
            before.patch_mapped_kib as f64 / 1024.0,
            after.patch_mapped_kib as f64 / 1024.0,
            (after.patch_mapped_kib as f64 - before.patch_mapped_kib as f64) / reloads,
            before.mappings,
            after.mappings,
            before.threads,
            after.threads,
            before.fds,
            after.fds,
            edits + more + 1,
            edits + more + edits,
        );
        // Where a drift comes from: each stage's median, early and late.
        let stages = |rows: &[Row]| -> Vec<String> {
            let names = ["wait", "build", "diff", "load", "switch"];
            let median = |i: usize| stats(rows.iter().map(|r| r.1[i]).collect()).0;
            names.iter().enumerate().map(|(i, name)| format!("{name} {:.1}", median(i))).collect()
        };
        let _ = writeln!(
            memory,
            "Stage medians, ms: early {}; late {}.",
            stages(&rows).join(", "),
            stages(&late_rows).join(", ")
        );
        println!("{}", memory.trim());
    }
    drop(session);
    (rows, memory, generation)
}

struct Session {
    child: Child,
    out: mpsc::Receiver<(Instant, String)>,
    err: mpsc::Receiver<String>,
}

impl Session {
    fn start(manifest: &Path, target: &Path, flags: &[&str]) -> Session {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-hotreload"))
            .args(["hotreload", "run", "-v"])
            .args(flags)
            .arg("--manifest-path")
            .arg(manifest)
            .arg("--target-dir")
            .arg(target)
            .env("CARGO_TERM_COLOR", "never")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cargo-hotreload starts");
        let (out_tx, out) = mpsc::channel();
        let (err_tx, err) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = out_tx.send((Instant::now(), line));
            }
        });
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        Session { child, out, err }
    }

    fn wait_err(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self
                .err
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

    fn wait_out(&mut self, needle: &str, timeout: Duration) -> Instant {
        let deadline = Instant::now() + timeout;
        loop {
            let Ok((at, line)) = self.out.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
                // What the tool said since it was last asked: why the program did not.
                let said: Vec<String> = self.err.try_iter().collect();
                panic!("the program never printed {needle:?}; the tool said:\n{}", said.join("\n"));
            };
            if line.contains(needle) {
                return at;
            }
        }
    }
}

impl Session {
    /// `calls` and `bad` of the load program's next `version=… calls=… bad=…` line.
    fn last_load_line(&mut self, timeout: Duration) -> (u64, u64) {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, line) = self
                .out
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the load program reports every 20 ms");
            let field = |name: &str| -> Option<u64> {
                line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            };
            if let (Some(calls), Some(bad)) = (field("calls"), field("bad")) {
                return (calls, bad);
            }
        }
    }

    /// How many of the tool's lines so far contain `needle` (drains them).
    fn count_err(&mut self, needle: &str) -> usize {
        self.err.try_iter().filter(|l| l.contains(needle)).count()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SIGTERM: the tool stops the program's process group too.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// The program's memory and handles, from /proc.
struct ProcessSample {
    rss_kib: u64,
    patch_mapped_kib: u64,
    /// Lines of `/proc/PID/maps`.
    mappings: usize,
    threads: usize,
    fds: usize,
}

impl ProcessSample {
    fn take(pid: u32) -> ProcessSample {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss_kib = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        // Self-contained patches are mapped from the session's files; linked ones are
        // anonymous mappings the agent makes between 1 and 2 GiB.
        let patch_mapped_kib = maps
            .lines()
            .filter_map(|l| {
                let (start, end) = l.split_whitespace().next()?.split_once('-')?;
                let (start, end) = (u64::from_str_radix(start, 16).ok()?, u64::from_str_radix(end, 16).ok()?);
                let library = l.contains("/session-") && l.contains(".so");
                let linked = (0x4000_0000..0x8000_0000).contains(&start) && !l.contains('[') && !l.contains('/');
                (library || linked).then_some((end - start) / 1024)
            })
            .sum();
        let count = |dir: String| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        ProcessSample {
            rss_kib,
            patch_mapped_kib,
            mappings: maps.lines().count(),
            threads: count(format!("/proc/{pid}/task")),
            fds: count(format!("/proc/{pid}/fd")),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn stats(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let p90 = values[((values.len() as f64 * 0.9).ceil() as usize).saturating_sub(1)];
    (values[values.len() / 2], p90, values[values.len() - 1])
}

/// `wait W ms, build B ms, diff D ms, load L ms, switch S ms (…; threads held H µs)`
/// → [W, B, D, L, S, H / 1000]
fn parse_timing(line: &str) -> [f64; 6] {
    let mut out = [0.0; 6];
    for (i, key) in ["wait ", "build ", "diff ", "load ", "switch ", "threads held "].iter().enumerate() {
        let rest = &line[line.find(key).unwrap_or_else(|| panic!("no {key} in {line}")) + key.len()..];
        out[i] = rest.split(' ').next().unwrap().parse().unwrap();
    }
    out[5] /= 1000.0;
    out
}
