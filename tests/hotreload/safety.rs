//! Edits and messages that must not be applied, and what happens instead.

use crate::harness::{without_aslr, Fixture, Session, RELOAD, STARTUP};
use hotreload_protocol::message::{self, AgentMessage, FunctionInfo, LoadRequest, RefusalKind, ToolMessage};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The text between the first pair of backticks in a line.
fn quoted(line: &str) -> String {
    line.split('`').nth(1).unwrap_or_else(|| panic!("no `...` in {line:?}")).to_string()
}

#[test]
fn a_compile_error_is_reported_once_and_the_old_code_keeps_running() {
    let fx = Fixture::new("basic");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("score=6 ", RELOAD);
    fx.edit("logic/src/lib.rs", |src| format!("{src}\npub fn broken( {{\n"));
    s.wait_stderr("could not compile `logic`; the program keeps running the previous code", RELOAD);
    // Saves elsewhere do not rebuild the broken crate.
    fx.edit("app/Cargo.toml", |src| format!("{src}\n# an unrelated save\n"));
    s.wait_stderr("restart needed: `app/Cargo.toml` changed", RELOAD);
    fx.edit("app/Cargo.toml", |src| format!("{src}# another one\n"));
    s.wait_stderr_nth("restart needed: `app/Cargo.toml`", 2, RELOAD);
    s.assert_stderr_count("could not compile `logic`;", 1);
    s.assert_stderr_count("error: this file contains an unclosed delimiter", 1);
    assert!(s.last_stdout().contains("score=6 "), "{}", s.last_stdout());
    // The fix applies normally.
    fx.edit("logic/src/lib.rs", |src| src.replace("\npub fn broken( {\n", "").replace("points * 2", "points * 7"));
    s.wait_stdout("score=21 ptr=21", RELOAD);
    s.assert_stderr_count("could not compile `logic`;", 1);
}

#[test]
fn signature_and_layout_changes_are_refused_by_name() {
    let fx = Fixture::new("basic");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("score=6 ", RELOAD);
    fx.edit("logic/src/lib.rs", |src| {
        src.replace("pub fn score(points: u32) -> u32", "pub fn score(points: u64) -> u64")
            .replace("points * 2", "points * 5")
    });
    s.wait_stderr("restart needed: `logic::score`: its signature changed", RELOAD);
    fx.replace("logic/src/lib.rs", "    pub n: u32,\n", "    pub n: u32,\n    pub extra: u8,\n");
    s.wait_stderr("restart needed: `logic::Counter`: its definition changed", RELOAD);
    assert!(s.last_stdout().starts_with("score=6 ptr=6 "), "{}", s.last_stdout());
    s.assert_stderr_count("Reloaded", 0);
    // Put both back: the body edit made meanwhile applies.
    fx.edit("logic/src/lib.rs", |src| {
        src.replace("pub fn score(points: u64) -> u64", "pub fn score(points: u32) -> u32")
            .replace("    pub extra: u8,\n", "")
    });
    s.wait_stdout("score=15 ptr=15", RELOAD);
}

#[test]
fn with_restart_a_layout_change_restarts_the_program() {
    let fx = Fixture::new("basic");
    let s = Session::start(&fx, &["-p", "app", "--restart"]);
    s.wait_stdout("label=counter ", RELOAD);
    fx.edit("logic/src/lib.rs", |src| {
        src.replace("    pub n: u32,\n", "    pub n: u32,\n    pub extra: u8,\n")
            .replace("Counter { n: 0 }", "Counter { n: 0, extra: 1 }")
            .replace("\"counter\"\n", "\"restarted\"\n")
    });
    s.wait_stderr("Restarting", RELOAD);
    s.wait_stdout("label=restarted ", RELOAD);
}

#[test]
fn a_crashed_program_is_reported_and_restarted_on_the_next_change() {
    let fx = Fixture::new("basic");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("score=6 ", RELOAD);
    fx.replace("logic/src/lib.rs", "points * 2", "std::process::abort()");
    s.wait_stderr("Exited `app` (signal: 6 (SIGABRT))", RELOAD);
    fx.replace("logic/src/lib.rs", "std::process::abort()", "points * 3");
    s.wait_stderr("Restarting", RELOAD);
    s.wait_stdout("score=9 ptr=9", RELOAD);
    // `status` tells of the program that runs: no patch yet, not the old one's.
    let status = crate::harness::hotreload(&fx, &["status", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let logic = json["crates"].as_array().unwrap().iter().find(|c| c["name"] == "logic").unwrap().clone();
    assert_eq!(logic["generation"], 0, "{logic}");
    assert!(logic["last_result"].is_null(), "{logic}");
}

/// A save the program took as it connected (the catch-up of a save made while the
/// tool was still starting), whose patch crashed it, is seen by the watcher only
/// after the exit: it is no new change, so the program stays stopped until one
/// comes, which then restarts it once, on a build of that change.
#[test]
fn a_save_the_crashed_program_already_took_does_not_restart_it() {
    let fx = Fixture::new("basic");
    // The watcher's batch comes long after the catch-up at the connection.
    let s = Session::spawn(&fx, &["-p", "app", "-v", "--debounce", "4000"], &[]);
    s.wait_stderr("Running", STARTUP);
    fx.replace("logic/src/lib.rs", "points * 2", "std::process::abort()");
    s.wait_stderr("Exited `app` (signal: 6 (SIGABRT))", RELOAD);
    // The batch, once it comes: taken after the exit (or, if the program was slow to
    // call the new code, before it, as nothing new) — never a restart.
    let seen = ["a save seen after the exit", "Unchanged logic", "Restarting"];
    let line = s.wait_stderr_any(&seen, RELOAD);
    assert!(!line.contains("Restarting"), "restarted for the change that crashed it: {line}");
    fx.replace("logic/src/lib.rs", "std::process::abort()", "points * 3");
    s.wait_stdout("score=9 ptr=9", RELOAD);
    s.assert_stderr_count("Restarting", 1);
    s.assert_stderr_count("Exited", 1);
    let status = crate::harness::hotreload(&fx, &["status", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let logic = json["crates"].as_array().unwrap().iter().find(|c| c["name"] == "logic").unwrap().clone();
    assert_eq!(logic["generation"], 0, "the restart was built from the fix: {logic}");
}

#[test]
fn hostile_clients_on_the_control_socket_are_refused() {
    let fx = Fixture::new("basic");
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    let socket = PathBuf::from(s.wait_stderr("Listening on", RELOAD).split("on ").nth(1).unwrap().trim());
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the socket is owner-only");
    let dir_mode = std::fs::metadata(socket.parent().unwrap()).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o077, 0, "the socket's directory is private");

    let mut garbage = UnixStream::connect(&socket).unwrap();
    garbage.write_all(b"this is not json\n").unwrap();
    s.wait_stderr("refused a control connection", RELOAD);
    assert!(s.wait_stderr("refused a control connection", RELOAD).contains("malformed"));

    let mut liar = UnixStream::connect(&socket).unwrap();
    let hello = AgentMessage::Hello { protocol: 1, pid: 1, toolchain: 0, functions: vec![] };
    liar.write_all(&message::encode(&hello)).unwrap();
    s.wait_stderr("claims to be process 1", RELOAD);

    let mut impostor = UnixStream::connect(&socket).unwrap();
    let hello = AgentMessage::Hello { protocol: 1, pid: std::process::id(), toolchain: 0, functions: vec![] };
    impostor.write_all(&message::encode(&hello)).unwrap();
    s.wait_stderr("it is not the program this session started", RELOAD);

    let mut huge = UnixStream::connect(&socket).unwrap();
    let _ = huge.write_all(&vec![b'x'; 5 << 20]);
    s.wait_stderr("longer than", RELOAD);

    // The real program is untouched and still reloads.
    fx.replace("logic/src/lib.rs", "points * 2", "points * 10");
    s.wait_stdout("score=30 ptr=30", RELOAD);
}

fn encoded(request: LoadRequest) -> Vec<u8> {
    message::encode(&ToolMessage::Load(request))
}

/// `n` lines a hostile or broken tool might send, from a small generator seeded
/// alike on every run: random bytes, lines shaped like messages with values of the
/// wrong kind, `sample` (a load request) cut short, and `sample` with its fields
/// replaced (another crate, generation 0, a path elsewhere, redirects from and to
/// arbitrary addresses). None names a patch the agent may apply.
fn hostile_lines(sample: &LoadRequest, n: usize) -> Vec<Vec<u8>> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let encoded = message::encode(&ToolMessage::Load(sample.clone()));
    let json = String::from_utf8(encoded.clone()).unwrap();
    let keys = ["type", "request", "crate_name", "generation", "path", "functions", "toolchain", "linked", "redirects"];
    let values =
        ["null", "-1", "1e400", "\"load\"", "[]", "{}", "[{\"name\":\"f\",\"from\":1,\"to\":2}]", "\"/etc/passwd\""];
    (0..n)
        .map(|i| {
            let mut line = match i % 4 {
                0 => (0..next() % 200).map(|_| (next() % 255) as u8 + 1).filter(|b| *b != b'\n').collect(),
                1 => {
                    let fields: Vec<String> = (0..next() % 8)
                        .map(|_| {
                            let (k, v) = (keys[next() as usize % keys.len()], values[next() as usize % values.len()]);
                            format!("\"{k}\":{v}")
                        })
                        .collect();
                    format!("{{{}}}", fields.join(",")).into_bytes()
                }
                2 => encoded[..(next() as usize % (encoded.len() - 1))].to_vec(),
                _ => {
                    let (from, to) = (next(), next());
                    let replaced = match next() % 4 {
                        0 => json.replace("\"logic\"", "\"std\""),
                        1 => json.replace("\"generation\":11", "\"generation\":0"),
                        2 => json.replace("session/liblogic-9.so", "../../../../etc/passwd"),
                        _ => json.replace(
                            "\"redirects\":[]",
                            &format!("\"redirects\":[{{\"name\":\"x\",\"from\":{from},\"to\":{to}}}]"),
                        ),
                    };
                    replaced.trim_end().as_bytes().to_vec()
                }
            };
            line.retain(|b| *b != b'\n');
            line.push(b'\n');
            line
        })
        .collect()
}

/// Plays the tool's part against the agent of a program started by hand.
#[test]
fn the_agent_refuses_bad_requests_and_applies_a_good_one() {
    let fx = Fixture::new("basic");
    // A patch is linked for the addresses of the process it is built for: this test's
    // own process of the same executable gets the same ones with randomization off.
    let s = Session::start_without_aslr(&fx, &["-p", "app"]);
    let exe = PathBuf::from(quoted(&s.wait_stderr("Running", RELOAD)));

    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let session_dir = dir.path().join("session");
    std::fs::create_dir(&session_dir).unwrap();
    std::fs::set_permissions(&session_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = dir.path().join("test.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let mut app = Command::new(&exe);
    without_aslr(&mut app);
    let mut app = app
        .env(hotreload_protocol::ENV_SOCKET, &socket)
        .env(hotreload_protocol::ENV_SESSION_DIR, &session_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let Some(AgentMessage::Hello { toolchain, functions, pid, .. }) = message::read(&mut reader).unwrap() else {
        panic!("no hello")
    };
    assert_eq!(pid, app.id());
    assert!(functions.iter().any(|f| f.id == "logic::score"), "{functions:?}");
    let logic: Vec<FunctionInfo> = functions.iter().filter(|f| f.id.starts_with("logic::")).cloned().collect();
    // Sends one line, returns the answer.
    let mut send = |line: &[u8]| -> AgentMessage {
        writer.write_all(line).unwrap();
        message::read(&mut reader).unwrap().expect("an answer")
    };
    // A refusal of the kind the tool acts on, for the reason given.
    let refused = |answer: AgentMessage, expected: RefusalKind, why: &str| match answer {
        AgentMessage::Refused { reason, kind, .. } => {
            assert!(reason.contains(why), "{reason:?} lacks {why:?}");
            assert_eq!(kind, expected, "{reason}");
        }
        other => panic!("expected a refusal ({why}), got {other:?}"),
    };
    use RefusalKind::{Failed, Incompatible, Invalid};

    // A file outside the session directory, directly or through `..` or a link.
    let outside = dir.path().join("outside.so");
    std::fs::write(&outside, b"not a library").unwrap();
    let load = |n: u64, path: &Path, functions: Vec<FunctionInfo>, toolchain: u64| {
        LoadRequest::new(n, "logic", n, path.to_path_buf(), functions, toolchain)
    };
    refused(send(&encoded(load(1, &outside, logic.clone(), toolchain))), Invalid, "outside the session directory");
    refused(
        send(&encoded(load(2, &session_dir.join("../outside.so"), logic.clone(), toolchain))),
        Invalid,
        "outside the session directory",
    );
    std::os::unix::fs::symlink(&outside, session_dir.join("link.so")).unwrap();
    refused(
        send(&encoded(load(3, &session_dir.join("link.so"), logic.clone(), toolchain))),
        Invalid,
        "not a regular file",
    );
    // Inside, but claims a different signature or compiler.
    let inside = session_dir.join("liblogic-9.so");
    std::fs::write(&inside, b"not a library either").unwrap();
    std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut wrong = logic.clone();
    let score = wrong.iter_mut().find(|f| f.id == "logic::score").unwrap();
    *score = FunctionInfo::new("logic::score", 12345);
    refused(
        send(&encoded(load(4, &inside, wrong, toolchain))),
        Incompatible,
        "`logic::score`: its signature or a type in it changed",
    );
    refused(send(&encoded(load(5, &inside, logic.clone(), toolchain ^ 1))), Incompatible, "another rustc");
    // Inside and plausible, but not a library, nor a linked patch.
    refused(send(&encoded(load(6, &inside, logic.clone(), toolchain))), Failed, "cannot load");
    refused(send(&encoded(load(7, &inside, logic.clone(), toolchain).linked())), Invalid, "is not a linked patch");
    // Not a message at all.
    refused(send(b"{\"type\":\"load\",\"oops\":1}\n"), Invalid, "malformed");
    // Generated lines: each is answered with one refusal.
    let sample = load(11, &inside, logic.clone(), toolchain).linked();
    for (i, line) in hostile_lines(&sample, 600).iter().enumerate() {
        match send(line) {
            AgentMessage::Refused { .. } => {}
            other => panic!("line {i} ({:?}) was answered with {other:?}", String::from_utf8_lossy(line)),
        }
    }
    // A line longer than the agent reads: one refusal, and the next line is read whole.
    let mut huge = vec![b'{'; message::MAX_LINE + 4096];
    huge.push(b'\n');
    refused(send(&huge), Invalid, "longer than");
    refused(send(&encoded(load(12, &outside, logic.clone(), toolchain))), Invalid, "outside the session directory");
    assert!(app.try_wait().unwrap().is_none(), "the program survived every refusal");

    // Now a real patch, built by the session from a real edit.
    fx.replace("logic/src/lib.rs", "points * 2", "points * 4");
    s.wait_stderr("Reloaded logic", RELOAD);
    let session_patches = exe.parent().unwrap();
    let built = session_patches.join("liblogic-1.so");
    let good = session_dir.join("liblogic-1.so");
    std::fs::copy(&built, &good).unwrap();
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The edit touched one body: the linked patch holds `score` in full, the rest as
    // stubs bound to the program's slots. Claim what the file holds, as the tool does.
    let in_file: Vec<FunctionInfo> = cargo_hotreload::check::library::Library::read(&good)
        .unwrap()
        .functions
        .iter()
        .map(|(id, r)| FunctionInfo::new(id.clone(), r.signature))
        .collect();
    assert_eq!(in_file.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["logic::score"]);
    // Claiming more than the file holds is refused once it is mapped.
    refused(
        send(&encoded(load(8, &good, logic.clone(), toolchain).linked())),
        Invalid,
        "lacks functions the tool read from its file",
    );
    // A linked patch (the session's default) is no shared library.
    refused(send(&encoded(load(9, &good, in_file.clone(), toolchain))), Failed, "cannot load");
    // Linked for the session's program, whose executable this is: its addresses hold here.
    match send(&encoded(load(10, &good, in_file, toolchain).linked())) {
        AgentMessage::Applied { switched, .. } => assert_eq!(switched, 1),
        other => panic!("expected the patch to apply, got {other:?}"),
    }
    let mut out = BufReader::new(app.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the program ended");
        if line.starts_with("score=12 ptr=12") {
            break;
        }
    }
    // An older generation of the same crate is refused.
    refused(send(&encoded(load(1, &good, logic, toolchain))), Invalid, "not newer");
    drop(app.stdin.take());
    app.wait().unwrap();
}

#[test]
fn with_exit_with_app_the_tool_exits_with_the_program() {
    let fx = Fixture::new("basic");
    let mut s = Session::start(&fx, &["-p", "app", "--exit-with-app"]);
    s.wait_stdout("score=6 ", RELOAD);
    // The fixture exits with status 0 when its stdin closes.
    assert_eq!(s.close_stdin_and_wait(RELOAD), Some(0));
    s.wait_stderr("Exited `app` (exit status: 0)", RELOAD);
}

/// Two identical worktrees sharing a hot target directory get the same artifacts from
/// cargo (it hashes path packages by relative path), and a cdylib's file name has no
/// hash at all: each session must still load only what its own sources built.
#[test]
fn twin_workspaces_sharing_a_target_dir_each_load_their_own_code() {
    let (a, b) = (Fixture::twin("layered"), Fixture::twin("layered"));
    let sa = Session::start(&a, &["-p", "app", "--mode", "off", "--check"]);
    let sb = Session::start(&b, &["-p", "app"]);
    sa.wait_stdout("show=upper(1)", RELOAD);
    sb.wait_stdout("show=upper(1)", RELOAD);
    // a's edit is built (`--check`) but waits (mode off), while b's newer edit of the
    // same crate is built over the same files...
    a.replace("lower/src/lib.rs", "    1\n", "    2\n");
    sa.wait_stderr("Checking lower", RELOAD);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    b.replace("lower/src/lib.rs", "    1\n", "    20\n");
    sb.wait_stdout("show=upper(20)", RELOAD);
    sb.wait_stderr("Reloaded lower", RELOAD);
    // ...so for a's build cargo finds the shared artifacts newer than a's sources.
    let out = crate::harness::hotreload(&a, &["now"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    sa.wait_stdout("show=upper(2)", RELOAD);
    assert_eq!(sa.stdout.count(|l| l.contains("upper(20)")), 0, "a ran b's code: {:?}", sa.stdout.all());
    // And b keeps its own, too.
    b.replace("lower/src/lib.rs", "    20\n", "    30\n");
    sb.wait_stdout("show=upper(30)", RELOAD);
    assert_eq!(sb.stdout.count(|l| l.contains("upper(2)")), 0, "b ran a's code: {:?}", sb.stdout.all());
}

/// Connects to the Unix socket at `path` as user `nobody`; returns what the attempt printed.
fn connect_as_nobody(path: &Path) -> String {
    use std::os::unix::process::CommandExt;
    let probe = "use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]); \
                 print defined $s ? \"connected\" : \"refused: $!\"";
    let out = Command::new("/usr/bin/perl")
        .args(["-e", probe])
        .arg(path)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("perl runs as nobody");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Another user cannot even reach the session's socket; the same probe reaches a socket
/// that is open to everyone, so it would tell.
#[test]
fn a_client_of_another_user_cannot_reach_the_session() {
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: dropping to another user needs root (CI runs as root)");
        return;
    }
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let public = open.path().join("public.sock");
    let _listener = UnixListener::bind(&public).unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(connect_as_nobody(&public), "connected", "the probe reaches an open socket");

    let fx = Fixture::new("basic");
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    let socket = PathBuf::from(s.wait_stderr("Listening on", RELOAD).split("on ").nth(1).unwrap().trim());
    let answer = connect_as_nobody(&socket);
    assert!(answer.starts_with("refused: Permission denied"), "{answer}");
    s.assert_no_stderr_for("refused a control connection", Duration::from_millis(300));
    fx.replace("logic/src/lib.rs", "points * 2", "points * 10");
    s.wait_stdout("score=30 ptr=30", RELOAD);
}

/// A socket directory another user could enter is never used.
#[test]
fn a_socket_directory_open_to_others_is_refused() {
    let runtime = tempfile::tempdir().unwrap();
    let dir = runtime.path().join("cargo-hotreload");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let fx = Fixture::new("basic");
    let out = crate::harness::hotreload_command(&fx.root, &["run", "-p", "app"])
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("must be a directory owned by you and closed to others (mode 700)"), "{stderr}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing was created in it");
}

/// A tool killed mid-session (SIGKILL: nothing cleaned up) leaves its session directory,
/// socket and records behind; the next session on the workspace starts, removes them,
/// and reloads. The program is killed first: its agent would otherwise clean up after
/// the tool, sooner or later (a race this test lost once).
#[test]
fn the_next_session_after_a_killed_tool_starts_clean() {
    let fx = Fixture::new("basic");
    let mut first = Session::start(&fx, &["-p", "app", "-v"]);
    let socket = PathBuf::from(first.wait_stderr("Listening on", RELOAD).split("on ").nth(1).unwrap().trim());
    first.wait_stdout("score=6 ptr=6", RELOAD);
    fx.replace("logic/src/lib.rs", "points * 2", "points * 10");
    first.wait_stdout("score=30 ptr=30", RELOAD);
    let running = first.wait_stderr("Running `", RELOAD);
    let executable = PathBuf::from(running.split('`').nth(1).unwrap());
    let session_dir = executable.parent().unwrap().to_path_buf();
    let connected = first.wait_stderr("Connected to process ", RELOAD);
    let pid: i32 = connected.split("process ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    // SAFETY: signalling the program this session started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    first.wait_stderr("Exited `app`", RELOAD);
    first.kill_tool();
    assert!(session_dir.is_dir() && socket.exists(), "a killed tool cleans nothing up");

    let second = Session::start(&fx, &["-p", "app"]);
    assert!(!session_dir.exists(), "the dead session's directory is removed");
    assert!(!socket.exists() && !socket.with_extension("json").exists(), "and its socket and record");
    fx.replace("logic/src/lib.rs", "points * 10", "points * 11");
    second.wait_stdout("score=33 ptr=33", RELOAD);
    drop(first);
}

/// A manifest edit needs a restart and is said to; saved again unchanged it says
/// nothing more, and put back as the program was built from it, that is noted instead
/// of another warning. Library edits go on reloading throughout.
#[test]
fn a_manifest_put_back_needs_no_restart() {
    let fx = Fixture::new("plain");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    let original = std::fs::read_to_string(fx.path("app/Cargo.toml")).unwrap();
    fx.edit("app/Cargo.toml", |text| format!("{text}# a comment\n"));
    s.wait_stderr("restart needed: `app/Cargo.toml` changed", RELOAD);
    let edited = std::fs::read_to_string(fx.path("app/Cargo.toml")).unwrap();
    std::fs::write(fx.path("app/Cargo.toml"), &edited).unwrap();
    fx.replace("logic/src/lib.rs", "    1\n}", "    2\n}");
    s.wait_stdout("value=2 label=bin-old", RELOAD);
    s.assert_stderr_count("restart needed", 1);
    std::fs::write(fx.path("app/Cargo.toml"), &original).unwrap();
    s.wait_stderr("note: `app/Cargo.toml` is back to what the program was built from", RELOAD);
    fx.replace("logic/src/lib.rs", "    2\n}", "    3\n}");
    s.wait_stdout("value=3 label=bin-old", RELOAD);
    s.assert_stderr_count("restart needed", 1);
    s.assert_stderr_count("is back to", 1);
}
