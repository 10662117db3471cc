//! A workspace that does not depend on the runtime: the tool preloads its agent. The
//! `plain` fixture never mentions the tool; its program starts a child of its own
//! binary and one of `sh`, and prints what each saw.

use crate::harness::{alive, Fixture, Session, RELOAD};
use std::time::Duration;

/// The number after `name=` in a program line.
fn field(line: &str, name: &str) -> u64 {
    let at = line.find(&format!(" {name}=")).unwrap_or_else(|| panic!("no {name} in {line:?}"));
    line[at + name.len() + 2..].split(' ').next().unwrap().parse().unwrap()
}

/// The program's pid, from `Connected to process N` (`-v`).
fn program_pid(s: &Session) -> u32 {
    let line = s.wait_stderr("Connected to process ", RELOAD);
    line.split("process ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap()
}

/// How many libraries named like the agent `pid` has mapped.
fn agents_in(pid: u32) -> usize {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut libraries: Vec<&str> =
        maps.lines().filter_map(|l| l.split_whitespace().nth(5)).filter(|p| p.contains("hotreload_agent")).collect();
    libraries.dedup();
    libraries.len()
}

/// The names of `pid`'s threads.
fn threads_of(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok()).map(|c| c.trim().into()).collect()
}

#[test]
fn a_workspace_that_never_mentions_the_tool_reloads_through_the_preloaded_agent() {
    let fx = Fixture::new("plain");
    for file in ["Cargo.toml", "app/Cargo.toml", "logic/Cargo.toml", "app/src/main.rs", "logic/src/lib.rs"] {
        let text = std::fs::read_to_string(fx.path(file)).unwrap();
        assert!(!text.to_lowercase().contains("hotreload"), "{file} mentions the tool");
    }
    let mut s = Session::start(&fx, &["-p", "app", "-v"]);
    let running = s.wait_stderr("Running `", RELOAD);
    let executable = std::path::PathBuf::from(running.split('`').nth(1).unwrap());
    let listening = s.wait_stderr("Listening on ", RELOAD);
    let socket = std::path::PathBuf::from(listening.split("Listening on ").nth(1).unwrap().trim());
    // Neither child loaded the agent, nor saw the variables that would load it.
    let first = s.wait_stdout("value=1 label=bin-old child=clean sh=[]", RELOAD);
    let pid = program_pid(&s);
    assert_eq!(agents_in(pid), 1, "exactly one agent in the program");
    s.wait_stderr("(its functions reload at their entries)", RELOAD);
    // A library crate, with its static.
    fx.replace("logic/src/lib.rs", "    1\n}", "    2\n}");
    let line = s.wait_stdout("value=2 label=bin-old", RELOAD);
    assert!(field(&line, "calls") > field(&first, "calls"), "the static started afresh: {line}");
    // The binary crate.
    fx.replace("app/src/main.rs", "\"bin-old\"", "\"bin-new\"");
    let next = s.wait_stdout("value=2 label=bin-new", RELOAD);
    // The binary's first patch is compared with the running code too: one function.
    let reloaded = s.wait_stderr("Reloaded app", RELOAD);
    assert!(reloaded.contains("1 updated, 0 added, 0 removed"), "{reloaded}");
    assert!(field(&next, "calls") > field(&line, "calls"), "the static started afresh: {next}");
    s.assert_stderr_count("refused a control connection", 0);
    s.assert_stderr_count("self-contained", 0);
    // The tool killed: the program runs on, its agent thread gone with the session, and
    // of the session's files only the program's executable is left while it runs.
    assert!(threads_of(pid).iter().any(|t| t == "hotreload-agent"), "{:?}", threads_of(pid));
    let session_dir = executable.parent().unwrap();
    assert!(socket.exists() && files_in(session_dir).len() > 1, "{:?}", files_in(session_dir));
    s.kill_tool();
    let deadline = std::time::Instant::now() + RELOAD;
    while threads_of(pid).iter().any(|t| t == "hotreload-agent") {
        assert!(std::time::Instant::now() < deadline, "the agent thread outlived the session");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(alive(pid), "the program died with the tool");
    assert!(!socket.exists(), "the socket was left behind");
    assert!(!socket.with_extension("json").exists(), "the socket's listing was left behind");
    assert_eq!(files_in(session_dir), ["app"], "files left in the session directory");
    // The program still starts itself, from its executable.
    let child = std::process::Command::new(&executable).arg("child").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&child.stdout), "clean");
}

/// The names of the files in `dir`, sorted.
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// A program that calls `hotreload::init()` starts its own agent, and gets no second;
/// its `on_reload` callback fires (the fixture recomputes `boom` only then).
#[test]
fn a_program_with_its_own_agent_is_not_given_another() {
    one_agent_and_on_reload_fires(Fixture::new("basic"));
}

/// Only a library depends on the runtime, and the binary calls `init()` through it:
/// hot builds cannot turn on the agent of the program's copy of the runtime (cargo
/// takes a dependency's feature for the built package only), so the program is given
/// the preloaded agent, exactly one, and the session says what the program's own
/// copy lacks. Reloads work.
#[test]
fn a_program_whose_libraries_alone_use_the_runtime_gets_one_agent_and_is_told_what_it_lacks() {
    let fx = Fixture::new("basic");
    fx.replace("app/Cargo.toml", "hotreload-runtime.workspace = true\n", "");
    fx.edit("logic/src/lib.rs", |src| format!("{src}\npub use hotreload;\n"));
    fx.edit("app/src/main.rs", |src| src.replace("hotreload::", "logic::hotreload::"));
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    s.wait_stderr("`logic` depends on `hotreload-runtime` but `app` does not", RELOAD);
    s.wait_stdout("score=6 ", RELOAD);
    let pid = program_pid(&s);
    assert_eq!(agents_in(pid), 1);
    assert_eq!(threads_of(pid).iter().filter(|t| *t == "hotreload-agent").count(), 1, "{:?}", threads_of(pid));
    fx.replace("logic/src/lib.rs", "panic!(\"boom in old code\")", "panic!(\"boom in new code\")");
    s.wait_stderr("Reloaded logic", RELOAD);
    s.assert_stderr_count("on `hotreload-runtime` but", 1);
}

fn one_agent_and_on_reload_fires(fx: Fixture) {
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    s.wait_stdout("score=6 ", RELOAD);
    let pid = program_pid(&s);
    assert_eq!(agents_in(pid), 0);
    assert_eq!(threads_of(pid).iter().filter(|t| *t == "hotreload-agent").count(), 1, "{:?}", threads_of(pid));
    fx.replace("logic/src/lib.rs", "panic!(\"boom in old code\")", "panic!(\"boom in new code\")");
    s.wait_stdout("boom=boom in new code ", RELOAD);
}

/// A library published on crates.io, unmodified, in a workspace that never mentions
/// the tool: one edit reaches the running program.
#[test]
fn a_published_crate_nobody_here_wrote_reloads_unmodified() {
    let fx = Fixture::new("realworld");
    fx.add_published("strsim", "0.11.1");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("levenshtein=3 jaro=0.944 hamming=Ok(3)", RELOAD);
    fx.replace(
        "strsim/src/lib.rs",
        "    generic_levenshtein(&StringWrapper(a), &StringWrapper(b))\n}",
        "    generic_levenshtein(&StringWrapper(a), &StringWrapper(b)) + 100\n}",
    );
    s.wait_stdout("levenshtein=103 jaro=0.944 hamming=Ok(3)", RELOAD);
    s.assert_stderr_count("self-contained", 0);
    s.assert_stderr_count("restart needed", 0);
}

/// A workspace the user built with `cargo build` first: its crates are fresh, so cargo
/// prints no command for them. The program that starts is the user's own executable,
/// compiled by nothing but that `cargo build`; the crates are rebuilt once, quietly,
/// after it started, to record the commands, and patches of the library and of the
/// binary stay linked. The user's other artifacts of those packages stay (`cargo clean
/// -p` took a library's binaries with it).
#[test]
fn a_workspace_built_by_cargo_build_first_reloads_linked() {
    let fx = Fixture::new("plain");
    std::fs::create_dir_all(fx.path("logic/src/bin")).unwrap();
    std::fs::write(fx.path("logic/src/bin/logic-cli.rs"), "fn main() {\n    println!(\"{}\", logic::value());\n}\n")
        .unwrap();
    let target = fx.cargo_build();
    let cli = target.join("debug/logic-cli");
    assert!(cli.is_file(), "cargo build made the library's binary");
    // The hot directory too: other tests' sessions of a `logic` would record over this
    // one's rustc command, and the next session would clean it again.
    let hot = target.join("hotreload");
    let env = [("CARGO_TARGET_DIR", target.to_str().unwrap()), ("CARGO_HOTRELOAD_TARGET_DIR", hot.to_str().unwrap())];
    let s = Session::start_with_env(&fx, &["-p", "app"], &env);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    let said = s.stderr.all();
    let running = said.iter().position(|l| l.contains("Running `")).expect("the program ran");
    let recording = said.iter().position(|l| l.contains("Recording")).expect("the commands were recorded");
    assert!(said[recording].contains("how cargo compiles `logic`, `app` for patches"), "{}", said[recording]);
    assert!(running < recording, "the program started before the recording build:\n{}", said.join("\n"));
    // Nothing was compiled before it ran; the recording build shows nothing of cargo's.
    s.assert_stderr_count("Compiling app v", 0);
    s.assert_stderr_count("Compiling logic v", 0);
    assert!(cli.is_file(), "the recording deleted the user's `logic-cli`");
    let ran = std::process::Command::new(&cli).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "1\n");
    // Calls into std that the program's link left out (`str::to_uppercase`,
    // `thread::panicking`, which reads a thread-local of std's): linked from std's rlib.
    let calls_std =
        "    \"hot-reload\".to_uppercase().split('-').count() as u32 + u32::from(!std::thread::panicking())\n}";
    fx.replace("logic/src/lib.rs", "    1\n}", calls_std);
    let line = s.wait_stderr("Reloaded logic", RELOAD);
    assert!(line.contains("linked, 1 static"), "{line}");
    s.wait_stdout("value=3 label=bin-old", RELOAD);
    fx.replace("app/src/main.rs", "bin-old", "bin-new");
    let line = s.wait_stderr("Reloaded app", RELOAD);
    assert!(line.contains("linked"), "{line}");
    s.wait_stdout("value=3 label=bin-new", RELOAD);
    s.assert_stderr_count("self-contained", 0);
    // The record is kept: the next session cleans nothing.
    drop(s);
    let s = Session::start_with_env(&fx, &["-p", "app"], &env);
    s.wait_stdout("value=3 label=bin-new", RELOAD);
    s.assert_stderr_count("Recording", 0);
}

/// The session ends with the program (`--exit-with-app`): the program exits as it would
/// without the tool, and neither the session directory nor its socket is left behind.
#[test]
fn with_the_preloaded_agent_the_program_exits_as_it_would_and_nothing_is_left_behind() {
    let fx = Fixture::new("plain");
    let mut s = Session::start(&fx, &["-p", "app", "-v", "--exit-with-app"]);
    let running = s.wait_stderr("Running `", RELOAD);
    let session_dir = std::path::PathBuf::from(running.split('`').nth(1).unwrap()).parent().unwrap().to_path_buf();
    let listening = s.wait_stderr("Listening on ", RELOAD);
    let socket = std::path::PathBuf::from(listening.split("Listening on ").nth(1).unwrap().trim());
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    fx.replace("logic/src/lib.rs", "    1\n}", "    2\n}");
    s.wait_stdout("value=2 ", RELOAD);
    // The fixture exits with status 0 when its stdin closes.
    assert_eq!(s.close_stdin_and_wait(RELOAD), Some(0));
    s.wait_stderr("Exited `app` (exit status: 0)", RELOAD);
    assert!(!session_dir.exists(), "the session directory was left behind");
    assert!(!socket.exists(), "the socket was left behind");
}

/// A program that runs another executable in its own process (`exec`, here itself with
/// an empty environment) leaves the preloaded agent behind: said once, by name, and the
/// program runs on unpatched; a save waits for it.
#[test]
fn a_program_that_runs_itself_again_is_said_to_have_lost_the_agent() {
    let fx = Fixture::new("plain");
    let s = Session::start_with_env(&fx, &["-p", "app", "-v"], &[("FIXTURE_EXEC", "1")]);
    let pid = program_pid(&s);
    s.wait_stderr("`app` still runs but the preloaded agent's connection closed: it ran another executable", RELOAD);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    assert_eq!(agents_in(pid), 0, "the agent followed the exec");
    fx.replace("logic/src/lib.rs", "    1\n}", "    2\n}");
    s.wait_stderr("Waiting logic: applied when the program connects", RELOAD);
    s.assert_no_stderr_for("Reloaded", Duration::from_millis(300));
    assert!(s.last_stdout().starts_with("value=1 "), "{}", s.last_stdout());
    s.assert_stderr_count("preloaded agent's connection closed", 1);
    assert!(alive(pid));
    // `now` does not pretend nothing changed: the change waits, and it exits 4.
    let now = crate::harness::hotreload(&fx, &["now"]);
    let said = format!("{}{}", now.stdout, now.stderr);
    assert_eq!(now.code, Some(4), "{said}");
    assert!(said.contains("logic: waiting"), "{said}");
    // The start-up check (5 s after the start) does not say it never connected.
    s.assert_no_stderr_for("has not connected", Duration::from_secs(5));
}

/// Ctrl-C ends the session: the program gets the interrupt as it would from the
/// terminal and dies of it, the tool exits with 130, and nothing is left behind.
#[test]
fn ctrl_c_ends_the_program_as_it_would_and_leaves_nothing_behind() {
    let fx = Fixture::new("plain");
    let mut s = Session::start(&fx, &["-p", "app", "-v"]);
    let running = s.wait_stderr("Running `", RELOAD);
    let session_dir = std::path::PathBuf::from(running.split('`').nth(1).unwrap()).parent().unwrap().to_path_buf();
    let listening = s.wait_stderr("Listening on ", RELOAD);
    let socket = std::path::PathBuf::from(listening.split("Listening on ").nth(1).unwrap().trim());
    let pid = program_pid(&s);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    fx.replace("logic/src/lib.rs", "    1\n}", "    2\n}");
    s.wait_stdout("value=2 ", RELOAD);
    assert_eq!(s.interrupt_and_wait(RELOAD), Some(130));
    assert!(!alive(pid), "the program outlived Ctrl-C");
    assert!(!session_dir.exists(), "the session directory was left behind");
    assert!(!socket.exists(), "the socket was left behind");
    assert!(!socket.with_extension("json").exists(), "the socket's listing was left behind");
}

/// The preloaded agent never writes to the program's output, even when it cannot reach
/// its session (the session says the program has not connected).
#[test]
fn a_preloaded_agent_that_cannot_reach_its_session_says_nothing_in_the_program() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let fx = Fixture::new("plain");
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    let running = s.wait_stderr("Running `", RELOAD);
    let executable = running.split('`').nth(1).unwrap().to_string();
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", program_pid(&s))).unwrap();
    let library = maps.lines().filter_map(|l| l.split_whitespace().nth(5)).find(|p| p.contains("hotreload_agent"));
    let library = library.expect("the agent is mapped").to_string();
    let dir = tempfile::tempdir().unwrap();
    // Started by this process, as if it were the tool, for a socket nobody listens on.
    let mut app = Command::new(&executable)
        .env("LD_PRELOAD", &library)
        .env(hotreload_protocol::ENV_AGENT_LIBRARY, &library)
        .env(hotreload_protocol::ENV_TOOL_PID, std::process::id().to_string())
        .env(hotreload_protocol::ENV_SOCKET, dir.path().join("nobody.sock"))
        .env(hotreload_protocol::ENV_SESSION_DIR, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(app.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("value=1 label=bin-old child=clean sh=[]"), "{first}");
    drop(app.stdin.take());
    let output = app.wait_with_output().unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    assert_eq!(String::from_utf8_lossy(&output.stderr), "", "the agent wrote to the program's stderr");
}
