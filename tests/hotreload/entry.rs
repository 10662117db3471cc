//! Every function switches at its entry: the `entry` fixture has no `#[hot]` anywhere,
//! and only the binary depends on hotreload (for `init()`). What `main` holds — a trait
//! object, a `fn` pointer, a boxed closure — was made before any edit; an `async fn` is
//! driven by a small executor in the library.

use crate::harness::{Fixture, Session, RELOAD};
use std::time::Duration;

const LIB: &str = "logic/src/lib.rs";
const MAIN: &str = "app/src/main.rs";

/// `nm NM_ARGS` of the executable the session runs.
fn program_symbols(s: &Session, nm_args: &[&str]) -> String {
    let running = s.wait_stderr("Running `", RELOAD);
    let executable = running.split('`').nth(1).unwrap().to_string();
    let out = std::process::Command::new("nm").args(nm_args).arg(&executable).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `plain` fixture's `app/src/main.rs`, replaced by one that never calls
/// `println!`: it writes each new value with `print` (statements using `out`, the locked
/// stdout, and `value`), and exits when its stdin closes.
fn write_main_without_println(fx: &Fixture, print: &str) {
    let main = format!(
        "use std::io::Write;\n\nfn main() {{\n    std::thread::spawn(|| {{\n        let mut sink = String::new();\n        \
         while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {{}}\n        std::process::exit(0);\n    }});\n    \
         let mut last = 0;\n    loop {{\n        let value = logic::value();\n        if value != last {{\n            \
         let mut out = std::io::stdout().lock();\n            {print}\n            last = value;\n        }}\n        \
         std::thread::sleep(std::time::Duration::from_millis(5));\n    }}\n}}\n"
    );
    std::fs::write(fx.path("app/src/main.rs"), main).unwrap();
}

/// The number after `name=` in a program line.
fn field(line: &str, name: &str) -> u64 {
    let at = line.find(&format!(" {name}=")).unwrap_or_else(|| panic!("no {name} in {line:?}"));
    let rest = &line[at + name.len() + 2..];
    rest.split(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("no number for {name} in {line:?}"))
}

/// The program's state across reloads: `logic`'s static and thread-local and the
/// binary's static keep counting.
struct Counters {
    ticks: u64,
    seen: u64,
    labelled: u64,
}

impl Counters {
    fn of(line: &str) -> Counters {
        Counters { ticks: field(line, "ticks"), seen: field(line, "seen"), labelled: field(line, "labelled") }
    }

    /// Takes a line printed after a reload: every counter went on from where it was.
    fn went_on(&mut self, line: &str) {
        let now = Counters::of(line);
        assert!(
            now.ticks > self.ticks && now.seen > self.seen && now.labelled > self.labelled,
            "a static or thread-local started afresh: {line}"
        );
        *self = now;
    }
}

#[test]
fn functions_without_annotations_switch_at_their_entries() {
    let fx = Fixture::new("entry");
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    let first = s.wait_stdout(
        "value=11 greet=hello double=42 evens=5 here=5 add=101 top=9 words=3 big=2.5 fetch=6 risky=risky-old",
        RELOAD,
    );
    let mut counters = Counters::of(&first);
    let mut edit = |file: &str, from: &str, to: &str, expect: &str| {
        fx.replace(file, from, to);
        counters.went_on(&s.wait_stdout(expect, RELOAD));
    };
    // A private helper.
    edit(LIB, "    10\n}", "    20\n}", "value=21 greet=hello");
    s.wait_stderr("updated logic::helper", RELOAD);
    // The other functions are the running ones: bound to them, not mapped again.
    s.wait_stderr("unchanged functions: their running copies, not mapped again", RELOAD);
    // A trait object's method; the object was made before the edit.
    edit(LIB, "\"hello\".to_string()", "\"ahoy\".to_string()", "value=21 greet=ahoy double=42");
    // A function the program holds as a `fn` pointer.
    edit(LIB, "x * 2", "x * 3", "greet=ahoy double=63 evens=5");
    // The closure of a function returning `impl Iterator`, run by this crate's own
    // code and by the binary's count of `evens(10)`: when rustc gave the binary a copy
    // of its own, the binary is rebuilt against the new code, and its copy switches too.
    edit(LIB, "x % 2 == 0", "x % 5 == 0", "double=63 evens=2 here=2 ");
    // A boxed closure made before the edit, with the same captures.
    edit(LIB, "move |x| x + k)", "move |x| x + k + 1)", "add=102 top=9");
    // A generic function: this crate's instance switches, and the binary, which holds
    // an instance of its own, is rebuilt against the new code.
    edit(LIB, "if x > best", "if x < best", "add=102 top=3 words=3 big=1.5");
    s.wait_stderr("Updating `app`, which holds copies of `logic::largest`", RELOAD);
    s.assert_stderr_count("keeps its old code: a copy of it compiled into another crate", 0);
    // An `async fn` body, its state unchanged.
    edit(LIB, "    n + 1\n}", "    n + 2\n}", "big=1.5 fetch=7");
    // A panic in redirected code unwinds to the program's `catch_unwind`.
    edit(LIB, "panic!(\"risky old\")", "panic!(\"risky new\")", "fetch=7 risky=risky-new");
    // A method of a lifetime-generic impl.
    edit(LIB, "split(' ').count()", "split(' ').count() + 1", "top=3 words=4");
    // A crate two levels below the program.
    edit("base/src/lib.rs", "    1\n}", "    2\n}", "value=22 greet=ahoy");
    // A crate above a reloaded one: linked against its newest build.
    edit(LIB, "    20\n}", "    30\n}", "value=32 greet=ahoy");
    // A function of the binary, called from `main`'s loop, with the binary's static.
    edit(MAIN, "\"bin-old\"", "\"bin-new\"", "risky=risky-new label=bin-new");
    s.wait_stderr("updated app::label", RELOAD);
    // A closure of the binary's.
    edit(MAIN, "s.replace(' ', \"-\")", "s.replace(' ', \"+\")", "risky=risky+new label=bin-new");
    // The program runs the new code before the tool reports it: count reloads only
    // once the report (its `-v` lines follow the `Reloaded` line) is out.
    s.wait_stderr("updated app::risky::{{closure}}", RELOAD);
    // A function added above `main` moves it down: its compiled code changes (its panic
    // locations name lines), its source does not, and nothing is said of it.
    fx.replace(
        MAIN,
        "/// How often `main`'s loop",
        "/// Moves `main` down.\n#[allow(dead_code)]\nfn spare() -> u32 {\n    1\n}\n\n/// How often `main`'s loop",
    );
    s.wait_stderr("added app::spare", RELOAD);
    s.assert_stderr_count("keeps its old code: it is running", 0);
    // `main` itself runs on in its old body, and that is said.
    let reloads = s.stderr.count(|l| l.contains("Reloaded app"));
    fx.replace(MAIN, "from_millis(5)", "from_millis(4)");
    s.wait_stderr("`app::main` keeps its old code: it is running", RELOAD);
    assert_eq!(s.stderr.count(|l| l.contains("Reloaded app")), reloads, "a reload of nothing was announced");
    // `status` says so too, not a bare "applied".
    let status = crate::harness::hotreload(&fx, &["status"]);
    assert!(status.stdout.contains("`app::main` keeps its old code"), "{}", status.stdout);
    s.assert_stderr_count("restart needed", 0);
    let reloaded = s.stderr.count(|l| l.contains("Reloaded logic"));
    let linked = s.stderr.count(|l| l.contains("Reloaded logic") && l.contains("1 static and 1 thread-local shared"));
    assert!(reloaded >= 4 && linked == reloaded, "every patch of logic linked, sharing its static and thread-locals");
    let binary = s.stderr.count(|l| l.contains("Reloaded app"));
    let shared = s.stderr.count(|l| l.contains("Reloaded app") && l.contains("1 static and 0 thread-locals shared"));
    assert!(binary >= 3 && shared == binary, "every patch of the binary linked, sharing its static");
    s.assert_stderr_count("self-contained", 0);
}

/// Code of which the edited crate compiles no copy: a generic only the binary
/// instantiates, one only the crate above does, and a trait's default method. The
/// crates holding the instances are rebuilt against the new code, and the instances
/// switch: nothing is left on the old code in silence.
#[test]
fn code_only_other_crates_compiled_switches_there() {
    let fx = Fixture::new("entry");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("wrapped=(2) bigger=7 shout=shout-old", RELOAD);
    fx.replace(LIB, "format!(\"({t})\")", "format!(\"[{t}]\")");
    s.wait_stderr("Updating `app`, which holds copies of `logic::wrap`", RELOAD);
    // The edited crate's reload is said, with where its new code runs.
    s.wait_stderr("Loaded logic: its changed code runs as copies other crates hold, updated next", RELOAD);
    s.wait_stdout("wrapped=[2] bigger=7 shout=shout-old", RELOAD);
    fx.replace("base/src/lib.rs", "if a > b {", "if a < b {");
    s.wait_stderr("Updating `logic`, which holds copies of `base::pick`", RELOAD);
    s.wait_stdout("wrapped=[2] bigger=3 shout=shout-old", RELOAD);
    fx.replace(LIB, "\"shout-old\"", "\"shout-new\"");
    s.wait_stdout("wrapped=[2] bigger=3 shout=shout-new", RELOAD);
    s.assert_stderr_count("restart needed", 0);
    s.assert_stderr_count("keeps its old code", 0);
    // The crates whose own compiled code did not change report nothing of their own.
    s.assert_stderr_count("0 updated, 0 added, 0 removed", 0);
}

/// New code calls a library's function that no code of the program called, so the
/// program's link never took its object from the rlib: the patch brings that object,
/// bound to the program like its own, and stays linked (it was "restart needed").
#[test]
fn a_function_the_program_never_linked_comes_with_the_patch() {
    let fx = Fixture::new("entry");
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    s.wait_stdout("value=11 greet=hello", RELOAD);
    assert!(!program_symbols(&s, &[]).contains("5extra5forty"), "the program has it already");
    fx.replace(LIB, "helper() + base::unit()", "helper() + base::unit() + base::extra::forty()");
    s.wait_stdout("value=51 greet=hello", RELOAD);
    let line = s.wait_stderr("Reloaded logic", RELOAD);
    assert!(line.contains("linked, 1 static and 1 thread-local shared"), "{line}");
    s.assert_stderr_count("restart needed", 0);
    s.assert_stderr_count("self-contained", 0);
}

#[test]
fn a_closure_whose_captures_change_or_a_changed_signature_is_refused_by_name() {
    let fx = Fixture::new("entry");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("add=101 ", RELOAD);
    // A boxed closure made before the edit holds one `u32`; the new one would read two.
    fx.replace(LIB, "    Box::new(move |x| x + k)", "    let extra = k / 100;\n    Box::new(move |x| x + k + extra)");
    s.wait_stderr("restart needed: `logic::adder::{closure_env#0}`: its layout changed (size 4 → 8 bytes)", RELOAD);
    fx.replace(LIB, "    let extra = k / 100;\n    Box::new(move |x| x + k + extra)", "    Box::new(move |x| x + k)");
    s.wait_stderr("`logic` is back to the source the program runs", RELOAD);
    // A future suspended before the edit would resume with a local it never stored.
    fx.replace(
        LIB,
        "    YieldOnce(false).await;\n    n + 1",
        "    let held = [n; 8];\n    YieldOnce(false).await;\n    held[7] + 1",
    );
    s.wait_stderr("restart needed: `logic::fetch::{async_fn_env#0}`: its layout changed (size", RELOAD);
    // One change of the future's state is said once, not once per state it can be in.
    s.assert_stderr_count("logic::fetch::{async_fn_env#0}", 1);
    fx.replace(
        LIB,
        "    let held = [n; 8];\n    YieldOnce(false).await;\n    held[7] + 1",
        "    YieldOnce(false).await;\n    n + 1",
    );
    s.wait_stderr_nth("`logic` is back to the source the program runs", 2, RELOAD);
    // Callers in the program pass a `u32`.
    fx.replace(LIB, "pub fn double(x: u32) -> u32 {\n    x * 2", "pub fn double(x: u64) -> u64 {\n    x * 2");
    s.wait_stderr("restart needed: `logic::double`: its signature changed, and callers in the running program", RELOAD);
    assert!(s.last_stdout().contains("double=42 evens=5 here=5 add=101"), "{}", s.last_stdout());
    // Put back, a body edit applies.
    fx.replace(LIB, "pub fn double(x: u64) -> u64 {\n    x * 2", "pub fn double(x: u32) -> u32 {\n    x * 4");
    s.wait_stdout("double=84 ", RELOAD);
    s.assert_no_stderr_for("panicked", Duration::from_millis(200));
}

/// With `apply_at_safepoints`, redirects are written where the program calls
/// `hotreload::safepoint()`, like slots.
#[test]
fn at_safepoints_entries_switch_where_the_program_says() {
    let fx = Fixture::new("entry");
    let s = Session::start_with_env(&fx, &["-p", "app"], &[("FIXTURE_SAFEPOINTS", "1")]);
    s.wait_stdout("value=11 ", RELOAD);
    assert!(s.last_stdout().contains("safepoints=0"), "{}", s.last_stdout());
    fx.replace(LIB, "    10\n}", "    20\n}");
    let line = s.wait_stdout("value=21 ", RELOAD);
    assert!(line.contains("safepoints=1"), "{line}");
    s.wait_stderr("Reloaded logic: 1 updated", RELOAD);
}

/// A caller compiled into one patch keeps calling that patch's copy of a helper; as
/// the helper changes again and again, that copy (and the program's) must lead to the
/// newest, though the tool names only the newest copy in each request, and a reload
/// writes two entries per function however many copies there are.
#[test]
fn every_earlier_copy_of_a_function_leads_to_its_newest() {
    let fx = Fixture::new("entry");
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    s.wait_stdout("value=11 greet=hello", RELOAD);
    // `value` and `helper` in one patch: that `value` calls that patch's `helper`.
    fx.edit(LIB, |src| {
        src.replace("    10\n}", "    20\n}").replace("helper() + base::unit()", "helper() + base::unit() + 100")
    });
    s.wait_stdout("value=121 greet=hello", RELOAD);
    for tens in 3..=6 {
        fx.replace(LIB, &format!("    {}0\n}}", tens - 1), &format!("    {tens}0\n}}"));
        s.wait_stdout(&format!("value=1{tens}1 greet=hello"), RELOAD);
    }
    // Generation 5 rewrote two entries of `helper`: the program's (its anchor, which
    // jumps to the newest copy) and generation 4's (which now jumps to the anchor, as
    // generations 1 to 3 already do), whatever the number of generations.
    let timing = s.wait_stderr("generation 5", RELOAD);
    assert!(timing.contains("(0 slots, 2 entries;"), "{timing}");
    s.assert_stderr_count("kept", 0);
}

/// A program started again (here after it was killed) runs code the tool has not
/// compared anything with yet: the next save must still change only what it changed,
/// not count (and redirect) every function of the crate.
#[test]
fn after_a_restart_a_save_changes_only_what_it_changed() {
    let fx = Fixture::new("plain");
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    let pid: i32 = s.wait_stderr("Connected to process", RELOAD).split_whitespace().nth(3).unwrap().parse().unwrap();
    // SAFETY: signalling the program this test's session started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    s.wait_stderr("waiting for a change to rebuild and restart the program", RELOAD);
    fx.replace(LIB, "    1\n}", "    2\n}");
    s.wait_stdout("value=2 label=bin-old", RELOAD);
    s.wait_stderr_nth("Connected to process", 2, RELOAD);
    fx.replace(LIB, "    2\n}", "    3\n}");
    s.wait_stdout("value=3 label=bin-old", RELOAD);
    let reloaded = s.wait_stderr("Reloaded logic", RELOAD);
    assert!(reloaded.contains("1 updated, 0 added, 0 removed"), "{reloaded}");
}

/// A closure a thread is running when its new code switches in (here the binary's
/// stdin reader, blocked in `read_line`): the call goes on in the old code, and the
/// session says so by name instead of only counting it as updated.
#[test]
fn a_function_a_thread_is_running_is_named_when_it_switches() {
    let fx = Fixture::new("plain");
    let mut s = Session::start(&fx, &["-p", "app", "--exit-with-app"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    fx.replace("app/src/main.rs", "std::process::exit(0);", "std::process::exit(3);");
    s.wait_stderr("Reloaded app: 1 updated", RELOAD);
    let warning = s.wait_stderr("was running in a thread when it switched", RELOAD);
    assert!(warning.contains("`app::main::{{closure}}`"), "{warning}");
    // As said: the reader that was running exits as its old code does.
    s.close_stdin_and_wait(RELOAD);
    s.wait_stderr("Exited `app` (exit status: 0)", RELOAD);
}

/// Lines added above code that can panic move the lines its panic locations name, and
/// nothing else: that code (here `main`, whose `unwrap()`s moved) is not counted as
/// changed. It was, and every function below an edit was redirected.
#[test]
fn lines_added_above_are_no_change_of_the_code_below() {
    let fx = Fixture::new("plain");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    fx.edit("app/src/main.rs", |src| {
        assert!(src.contains("use std::os") && src.contains("\"bin-old\""));
        src.replacen("use std::os", "// A note\n// on two lines.\nuse std::os", 1).replace("\"bin-old\"", "\"bin-new\"")
    });
    s.wait_stdout("value=1 label=bin-new", RELOAD);
    let line = s.wait_stderr("Reloaded app", RELOAD);
    assert!(line.contains("Reloaded app: 1 updated, 0 added, 0 removed"), "{line}");
}

/// An `async fn` only the binary polls: the binary's build compiled its state machine,
/// so its first edit rebuilds the binary; that build calls the library patch's copy
/// instead of compiling its own. Later edits switch through that copy alone, and the
/// binary's dropped copy, which nothing calls any more, is not said to keep old code.
#[test]
fn an_async_fn_only_the_binary_polls_reloads_edit_after_edit() {
    let fx = Fixture::new("asyncbin");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("reply=old-1", RELOAD);
    for (from, to) in [("old", "v1"), ("v1", "v2"), ("v2", "v3")] {
        fx.replace("work/src/lib.rs", &format!("\"{from}-{{n}}\""), &format!("\"{to}-{{n}}\""));
        s.wait_stdout(&format!("reply={to}-1"), RELOAD);
    }
    s.assert_stderr_count("keeps its old code", 0);
    s.assert_stderr_count("restart needed", 0);
}

/// An async block behind a generic wrapper that only the binary instantiates (as
/// `#[instrument]` wraps tokio-rs/mini-redis's handlers): the program runs the binary's
/// copy of it. Each edit switches it: the first through the binary's rebuild, the later
/// ones through the library's copy that rebuild binds to (the second edit was lost when
/// the library's patch left that copy out). A second such block, untouched until then,
/// runs after that rebuild as the copy the binary's patch took from the library: its
/// edits switch that copy (they were lost: "the patch changes no function").
#[test]
fn an_async_block_only_the_binary_wraps_reloads_edit_after_edit() {
    let fx = Fixture::new("asyncbin");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("wrapped=w-old-1 too=x-old-1", RELOAD);
    for (from, to) in [("old", "v1"), ("v1", "v2"), ("v2", "v3")] {
        fx.replace("work/src/lib.rs", &format!("\"w-{from}-{{n}}\""), &format!("\"w-{to}-{{n}}\""));
        s.wait_stdout(&format!("wrapped=w-{to}-1"), RELOAD);
    }
    for (from, to) in [("old", "v1"), ("v1", "v2")] {
        fx.replace("work/src/lib.rs", &format!("\"x-{from}-{{n}}\""), &format!("\"x-{to}-{{n}}\""));
        s.wait_stdout(&format!("wrapped=w-v3-1 too=x-{to}-1"), RELOAD);
    }
    s.assert_stderr_count("keeps its old code", 0);
    s.assert_stderr_count("restart needed", 0);
}

/// A package with a binary only: its functions reload, and the session does not start
/// by saying nothing can be.
#[test]
fn a_binary_without_any_library_reloads() {
    let fx = Fixture::new("binonly");
    let s = Session::start(&fx, &[]);
    s.wait_stdout("says=old", RELOAD);
    fx.replace("src/main.rs", "\"old\"", "\"new\"");
    s.wait_stdout("says=new", RELOAD);
    s.assert_stderr_count("nothing can be reloaded", 0);
}

/// With `--example`, the example reloads, and an edit of a target the program is not
/// built from (the package's binary) asks for nothing.
#[test]
fn an_example_reloads_and_other_targets_are_left_alone() {
    let fx = Fixture::new("binonly");
    let s = Session::start(&fx, &["--example", "hello"]);
    s.wait_stdout("example=old", RELOAD);
    fx.replace("src/main.rs", "\"old\"", "\"other\"");
    fx.replace("examples/hello.rs", "\"old\"", "\"new\"");
    s.wait_stdout("example=new", RELOAD);
    // Named as the example, not as the package's binary.
    s.wait_stderr("Reloaded hello (example): 1 updated", RELOAD);
    s.assert_stderr_count("Reloaded binonly", 0);
    s.assert_stderr_count("restart needed", 0);
    s.assert_stderr_count("nothing can be reloaded", 0);
}

/// The most common debugging edit, `println!` in code of a program that never printed
/// that way (it writes to `stdout()` itself): the patch brings std's `_print`, whose
/// code uses std's private statics (`STDOUT`, the capture flag). The program has them,
/// as local symbols; the patch's references are bound to those, never to copies of its
/// own (two `STDOUT`s would be two locks and two buffers). It was "restart needed: …
/// would get its own copy of `std::io::stdio::STDOUT`".
#[test]
fn println_in_a_program_that_never_called_it_prints_through_the_programs_stdout() {
    let fx = Fixture::new("plain");
    write_main_without_println(
        &fx,
        "let _ = writeln!(out, \"value={value}\");\n            let _ = write!(out, \"pending;\");",
    );
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    s.wait_stdout("value=1", RELOAD);
    let symbols = program_symbols(&s, &[]);
    assert!(!symbols.contains("5stdio6_print"), "the program calls `_print` already");
    assert!(symbols.contains("5stdio6STDOUT"), "the program has no `STDOUT` to share");
    fx.replace(
        "logic/src/lib.rs",
        "    helper()\n}",
        "    static SAID: std::sync::Once = std::sync::Once::new();\n    SAID.call_once(|| println!(\"said by new code\"));\n    \
         helper() + 1\n}",
    );
    // The program left `pending;` in its `STDOUT`'s line buffer: the new code's line
    // ends it only if it prints through that same `STDOUT`.
    s.wait_stdout("pending;said by new code", RELOAD);
    s.wait_stdout("value=2", RELOAD);
    s.assert_stderr_count("restart needed", 0);
    s.assert_stderr_count("STDOUT", 0);
}

/// A changed `pub const` is warned of only when a crate above names it (that crate has
/// the old value compiled in); one only its own crate uses has just the new value.
#[test]
fn a_changed_pub_const_is_warned_of_only_where_another_crate_names_it() {
    let fx = Fixture::new("plain");
    fx.replace(
        "logic/src/lib.rs",
        "fn helper() -> u32 {\n    1\n}",
        "/// A step.\npub const STEP: u32 = 1;\n\nfn helper() -> u32 {\n    STEP\n}",
    );
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("value=1 ", RELOAD);
    fx.replace("logic/src/lib.rs", "pub const STEP: u32 = 1;", "pub const STEP: u32 = 2;");
    s.wait_stdout("value=2 ", RELOAD);
    s.assert_stderr_count("const `logic::STEP` changed", 0);
    // The binary names it from now on: told that it keeps the value it was built with.
    fx.replace("app/src/main.rs", "    \"bin-old\"", "    if logic::STEP > 0 { \"bin-step\" } else { \"bin-none\" }");
    s.wait_stdout("label=bin-step", RELOAD);
    fx.replace("logic/src/lib.rs", "pub const STEP: u32 = 2;", "pub const STEP: u32 = 3;");
    s.wait_stdout("value=3 ", RELOAD);
    s.wait_stderr(
        "const `logic::STEP` changed: this crate's functions switch to the new value; `app`, which names it, keeps",
        RELOAD,
    );
}

/// New code's first string sort (`memcmp`, an IFUNC of glibc's) and first `Instant`
/// (`clock_gettime`) in a program whose executable imports neither: the agent finds
/// them in the process (`dlsym`) and the patch calls them through stubs. It was
/// "restart needed: … a C function the program never imported".
#[test]
fn c_functions_the_program_never_imported_are_found_in_the_process() {
    let fx = Fixture::new("plain");
    write_main_without_println(&fx, "let _ = writeln!(out, \"value={value}\");");
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    s.wait_stdout("value=1", RELOAD);
    let imports = program_symbols(&s, &["-D", "--undefined-only"]);
    for name in ["clock_gettime", "memcmp"] {
        assert!(!imports.lines().any(|l| l.trim_end().ends_with(&format!(" {name}"))), "the program imports {name}");
    }
    fx.replace(
        "logic/src/lib.rs",
        "    helper()\n}",
        "    let started = std::time::Instant::now();\n    let mut words = vec![String::from(\"pear\"), String::from(\"apple\")];\n    \
         words.sort();\n    let _ = started.elapsed();\n    if words[0] == \"apple\" { helper() + 1 } else { 0 }\n}",
    );
    s.wait_stdout("value=2", RELOAD);
    s.assert_stderr_count("restart needed", 0);
}
