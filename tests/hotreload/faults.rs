//! The machine says no, or the tool dies: faults injected at fixed points of a patch
//! by a `RUSTC` wrapper, on the `plain` fixture. Each ends in one clear message; the
//! program keeps running its old code, whole, and the session (or the next one) goes on.

use crate::harness::{alive, Fixture, Session, RELOAD};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

const LIB: &str = "logic/src/lib.rs";

/// rustc, with a fault for patch builds (their output goes below `patch/*/linked/`) as
/// the file `$FAULTS` says: `kill` (SIGKILL), `ice` (an internal compiler error),
/// `hang` (writes its pid to `$FAULTS.pid` and sleeps); or, with `nolinker`, a sysroot
/// without `rust-lld`; with `fakelinker`, one whose `rust-lld` hangs as `hang` does
/// while the file `$FAULTS.linkhang` exists, and is the real one otherwise.
const WRAPPER: &str = r#"#!/bin/sh
fault="$(cat "$FAULTS" 2>/dev/null)"
case "$*" in
*/patch/*/linked/*)
    case "$fault" in
    kill) kill -9 $$ ;;
    ice) echo "error: internal compiler error: injected by the test" >&2; exit 101 ;;
    hang) echo $$ > "$FAULTS.pid"; exec sleep 600 ;;
    esac ;;
*"--print sysroot"*)
    if [ "$fault" = nolinker ]; then echo /nonexistent; exit 0; fi
    if [ "$fault" = fakelinker ]; then echo "$FAKE_SYSROOT"; exit 0; fi ;;
esac
exec "$REAL_RUSTC" "$@"
"#;

/// The fixture, the fault file, and the environment that runs rustc through the wrapper.
struct Faulty {
    fx: Fixture,
    faults: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Faulty {
    fn new() -> Faulty {
        let fx = Fixture::new("plain");
        let wrapper = fx.path("rustc-with-faults");
        std::fs::write(&wrapper, WRAPPER).unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sysroot = std::process::Command::new("rustc").args(["--print", "sysroot"]).output().unwrap();
        let real = PathBuf::from(String::from_utf8(sysroot.stdout).unwrap().trim()).join("bin/rustc");
        let faults = fx.path("faults");
        let fake_sysroot = fx.path("fake-sysroot");
        let bin = fake_sysroot.join(format!("lib/rustlib/{}-unknown-linux-gnu/bin", std::env::consts::ARCH));
        std::fs::create_dir_all(&bin).unwrap();
        let lld = bin.join("rust-lld");
        let real_lld = real.parent().unwrap().parent().unwrap().join(lld.strip_prefix(&fake_sysroot).unwrap());
        let script = format!(
            "#!/bin/sh\nif [ -e \"$FAULTS.linkhang\" ]; then echo $$ > \"$FAULTS.pid\"; exec sleep 600; fi\nexec {:?} \"$@\"\n",
            real_lld.display().to_string()
        );
        std::fs::write(&lld, script).unwrap();
        std::fs::set_permissions(&lld, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = vec![
            ("RUSTC", wrapper.display().to_string()),
            ("REAL_RUSTC", real.display().to_string()),
            ("FAULTS", faults.display().to_string()),
            ("FAKE_SYSROOT", fake_sysroot.display().to_string()),
        ];
        Faulty { fx, faults, env }
    }

    fn start(&self) -> Session {
        self.start_with(&["-p", "app"])
    }

    fn start_with(&self, args: &[&str]) -> Session {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Session::start_with_env(&self.fx, args, &env)
    }

    fn inject(&self, fault: &str) {
        std::fs::write(&self.faults, fault).unwrap();
    }

    fn clear(&self) {
        let _ = std::fs::remove_file(&self.faults);
    }
}

#[test]
fn a_killed_or_crashing_rustc_is_one_clear_error_and_the_session_goes_on() {
    let f = Faulty::new();
    let s = f.start();
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    f.inject("kill");
    f.fx.replace(LIB, "    1\n}", "    2\n}");
    s.wait_stderr(
        "rustc was killed by signal 9 (SIGKILL) while compiling the patch; the next save builds it again",
        RELOAD,
    );
    f.inject("ice");
    f.fx.replace(LIB, "    2\n}", "    3\n}");
    s.wait_stderr("error: internal compiler error: injected by the test", RELOAD);
    s.wait_stderr("could not compile `logic`; the program keeps running the previous code", RELOAD);
    assert!(s.last_stdout().contains("value=1 label=bin-old"), "{}", s.last_stdout());
    f.clear();
    f.fx.replace(LIB, "    3\n}", "    4\n}");
    s.wait_stdout("value=4 label=bin-old", RELOAD);
    s.assert_stderr_count("panicked", 0);
}

#[test]
fn without_a_linker_the_cause_is_named_and_the_program_keeps_running() {
    let f = Faulty::new();
    f.inject("nolinker");
    let s = f.start();
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    f.fx.replace(LIB, "    1\n}", "    2\n}");
    // `logic` has a static: a self-contained library would start it afresh.
    s.wait_stderr("no `rust-lld` in the toolchain, nor `ld.lld` on PATH", RELOAD);
    s.wait_stderr("restart needed: `logic`: the new code cannot be linked against the running program", RELOAD);
    f.fx.replace("app/src/main.rs", "\"bin-old\"", "\"bin-new\"");
    s.wait_stderr("`app` is the binary: its new code reaches the running program only as a linked patch", RELOAD);
    s.assert_no_stderr_for("Reloaded", Duration::from_millis(300));
    assert!(s.last_stdout().contains("value=1 label=bin-old"), "{}", s.last_stdout());
}

/// Killed while rustc compiles a patch: nothing of it reaches the program, which runs
/// on whole; the next session on the workspace starts cleanly and applies the edit.
#[test]
fn a_tool_killed_while_a_patch_compiles_leaves_the_program_whole_and_the_next_session_clean() {
    killed_while("compile");
}

/// The same, killed while the linker links the patch.
#[test]
fn a_tool_killed_while_a_patch_links_leaves_the_program_whole_and_the_next_session_clean() {
    killed_while("link");
}

/// Kills the tool while a patch build is held — in rustc (`compile`) or in the linker
/// (`link`), whose process writes its pid and sleeps — then the held process; a second
/// session applies the edit.
fn killed_while(step: &str) {
    let f = Faulty::new();
    if step == "link" {
        f.inject("fakelinker");
    }
    let mut first = f.start();
    first.wait_stdout("value=1 label=bin-old", RELOAD);
    match step {
        "link" => std::fs::write(format!("{}.linkhang", f.faults.display()), "").unwrap(),
        _ => f.inject("hang"),
    }
    f.fx.replace(LIB, "    1\n}", "    2\n}");
    let pid_file = PathBuf::from(format!("{}.pid", f.faults.display()));
    let deadline = std::time::Instant::now() + RELOAD;
    while !pid_file.exists() {
        assert!(std::time::Instant::now() < deadline, "the patch build never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill_tool();
    let held: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    // SAFETY: the held build's `sleep`, which outlived the tool.
    unsafe { libc::kill(held, libc::SIGKILL) };
    f.clear();
    let _ = std::fs::remove_file(format!("{}.linkhang", f.faults.display()));
    std::thread::sleep(Duration::from_millis(200));
    assert!(first.last_stdout().contains("value=1 label=bin-old"), "{}", first.last_stdout());
    let second = f.start();
    second.wait_stdout("value=2 label=bin-old", RELOAD);
    f.fx.replace(LIB, "    2\n}", "    5\n}");
    second.wait_stdout("value=5 label=bin-old", RELOAD);
    // The first program never took a patch.
    assert_eq!(first.stdout.count(|l| l.starts_with("value=")), 1, "{:?}", first.stdout.all());
}

/// Killed between sending a patch and the program's reply: the program, frozen while
/// the patch is sent, takes the request it finds once it runs again, and switches
/// every function of it — or none. `value` and `helper` change together: a line
/// mixing old and new code would show 10 or 2.
#[test]
fn a_tool_killed_between_sending_a_patch_and_the_reply_leaves_every_function_switched_or_none() {
    let f = Faulty::new();
    let mut s = f.start_with(&["-p", "app", "-v"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    let running = s.wait_stderr("Running `", RELOAD);
    let program = PathBuf::from(running.split('`').nth(1).unwrap());
    let session_dir = program.parent().unwrap().to_path_buf();
    let pid: i32 = s.wait_stderr("Connected to process", RELOAD).split_whitespace().nth(3).unwrap().parse().unwrap();
    // SAFETY: signalling the program this test's session started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    f.fx.edit(LIB, |src| src.replace("    helper()\n}", "    helper() * 10\n}").replace("    1\n}", "    2\n}"));
    let deadline = std::time::Instant::now() + RELOAD;
    while !session_dir.join("liblogic-1.so").exists() {
        assert!(std::time::Instant::now() < deadline, "the patch was never placed");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    // The program's process group, with a stopped member, would be orphaned when the
    // tool dies, and the kernel would hang it up (POSIX job control): this test process
    // adopts it instead, as its parent in the same session.
    // SAFETY: a process-wide flag; orphans of other tests are reaped when it exits.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    s.kill_tool();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    std::thread::sleep(Duration::from_millis(1500));
    let lines: Vec<String> = s.stdout.all().into_iter().filter(|l| l.starts_with("value=")).collect();
    let last = lines.last().unwrap();
    assert!(last.starts_with("value=1 ") || last.starts_with("value=20 "), "half a patch: {lines:?}");
    assert!(alive(pid as u32), "the program died: {lines:?}\n{}", s.stderr.all().join("\n"));
    drop(s);
    // SAFETY: reaping the adopted program, which exits once its stdin closes.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
}

/// The program killed (SIGKILL) while the tool waits for its answer to a patch: said
/// with the signal, once; the session directory holds no half-written file; the next
/// save restarts the program, which runs the new code.
#[test]
fn a_program_killed_during_an_apply_is_reported_and_the_next_save_restarts_it() {
    let f = Faulty::new();
    let s = f.start_with(&["-p", "app", "-v"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    let running = s.wait_stderr("Running `", RELOAD);
    let session_dir = PathBuf::from(running.split('`').nth(1).unwrap()).parent().unwrap().to_path_buf();
    let pid: i32 = s.wait_stderr("Connected to process", RELOAD).split_whitespace().nth(3).unwrap().parse().unwrap();
    // SAFETY: signalling the program this test's session started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    f.fx.replace(LIB, "    1\n}", "    2\n}");
    let deadline = std::time::Instant::now() + RELOAD;
    while !session_dir.join("liblogic-1.so").exists() {
        assert!(std::time::Instant::now() < deadline, "the patch was never placed");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: as above; a stopped process dies of SIGKILL at once.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    s.wait_stderr("Exited `app` (signal: 9 (SIGKILL))", RELOAD);
    s.wait_stderr("waiting for a change to rebuild and restart the program", RELOAD);
    s.assert_stderr_count("Exited `app`", 1);
    for entry in std::fs::read_dir(&session_dir).unwrap().map(Result::unwrap) {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp") && !name.starts_with('.'), "left half-written: {name}");
    }
    f.fx.replace(LIB, "    2\n}", "    3\n}");
    s.wait_stderr("Restarting", RELOAD);
    s.wait_stdout("value=3 label=bin-old", RELOAD);
    s.assert_stderr_count("panicked", 0);
}

/// New code that overflows the stack kills the program: said with the signal, and the
/// next save rebuilds and restarts it.
#[test]
fn a_stack_overflow_in_new_code_is_reported_and_the_next_save_restarts_the_program() {
    let f = Faulty::new();
    let s = f.start();
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    f.fx.replace(
        LIB,
        "fn helper() -> u32 {\n    1\n}",
        "fn helper() -> u32 {\n    std::hint::black_box(helper()) + 1\n}",
    );
    let exited = s.wait_stderr("Exited `app` (signal: ", RELOAD);
    assert!(exited.contains("SIGABRT") || exited.contains("SIGSEGV"), "{exited}");
    s.wait_stderr("waiting for a change to rebuild and restart the program", RELOAD);
    f.fx.replace(LIB, "    std::hint::black_box(helper()) + 1\n}", "    6\n}");
    s.wait_stdout("value=6 label=bin-old", RELOAD);
}
