//! Reloaded code shares the running program's state: statics, thread-locals, the
//! `log` logger and the `tracing` subscriber set up in `main`, a `OnceLock` the
//! program filled (the `state` fixture).

use crate::harness::{Fixture, Session, RELOAD};

/// Replaces `v{from}` by `v{to}` throughout `shared`.
fn bump_version(fx: &Fixture, from: u32, to: u32) {
    fx.edit("shared/src/lib.rs", |src| src.replace(&format!("v{from}"), &format!("v{to}")));
}

#[test]
fn reloaded_code_shares_statics_thread_locals_logger_and_subscriber() {
    let fx = Fixture::new("state");
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    s.wait_stdout("tick: v0 count=1", RELOAD);
    s.wait_stdout("b: 2", RELOAD);
    s.wait_stderr("frame{reload=0}: shared: traced v0", RELOAD);
    let mut items = vec!["v0".to_string()];
    for i in 1..=5u32 {
        bump_version(&fx, i - 1, i);
        // The counter static keeps counting; the Mutex<Vec> keeps what it held.
        s.wait_stdout(&format!("tick: v{i} count={}", i + 1), RELOAD);
        items.push(format!("v{i}"));
        s.wait_stdout(&format!("items: {}", items.join(",")), RELOAD);
        // The OnceLock and the environment the program set before the first reload.
        s.wait_stdout(&format!("config: from-main env=yes v{i}"), RELOAD);
        // Each thread's own thread-local: `a` calls once per reload, `b` twice.
        s.wait_stdout(&format!("a: {}", i + 1), RELOAD);
        s.wait_stdout(&format!("b: {}", 2 * (i + 1)), RELOAD);
        // env_logger from `main` prints new code's record; the tracing subscriber
        // prints new code's event inside the program's span.
        s.wait_stderr(&format!("logged v{i}"), RELOAD);
        s.wait_stderr(&format!("frame{{reload={i}}}: shared: traced v{i}"), RELOAD);
        let reloaded = s.wait_stderr_nth("Reloaded shared", i as usize, RELOAD);
        assert!(reloaded.contains("linked, 3 statics and 1 thread-local shared"), "{reloaded}");
    }
    // `-v` counts the call sites `tracing` declares for the new code, on one line each
    // reload, instead of listing them.
    s.wait_stderr_nth("own copy of 1 `tracing` call-site static (", 5, RELOAD);
    s.assert_stderr_count("CALLSITE", 0);
}

/// The same edit through self-contained libraries: every static starts afresh. This
/// is what the linked route is for, and shows the test above can tell them apart.
#[test]
fn self_contained_patches_have_their_own_statics() {
    let fx = Fixture::new("state");
    let s = Session::start(&fx, &["-p", "app", "--self-contained"]);
    s.wait_stdout("tick: v0 count=1", RELOAD);
    bump_version(&fx, 0, 1);
    s.wait_stdout("tick: v1 count=1", RELOAD);
    s.wait_stdout("items: v1", RELOAD);
    s.wait_stdout("config: unset env=yes v1", RELOAD);
    assert!(s.wait_stderr("Reloaded shared", RELOAD).contains("self-contained"));
}

#[test]
fn a_static_or_thread_local_of_another_type_is_refused_by_name() {
    let fx = Fixture::new("state");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("tick: v0 count=1", RELOAD);
    fx.edit("shared/src/lib.rs", |src| {
        src.replace("static COUNTER: AtomicU64 = AtomicU64::new(0);", "static COUNTER: AtomicU32 = AtomicU32::new(0);")
            .replace("use std::sync::atomic::{AtomicU64", "use std::sync::atomic::{AtomicU32")
            .replace("v0", "v1")
    });
    s.wait_stderr("restart needed: `shared::COUNTER`: its type changed", RELOAD);
    fx.edit("shared/src/lib.rs", |src| {
        src.replace("static COUNTER: AtomicU32 = AtomicU32::new(0);", "static COUNTER: AtomicU64 = AtomicU64::new(0);")
            .replace("use std::sync::atomic::{AtomicU32", "use std::sync::atomic::{AtomicU64")
            .replace("Cell<u32> = const { Cell::new(0) }", "Cell<u64> = const { Cell::new(0) }")
            .replace("pub fn per_thread() -> u32", "pub fn per_thread() -> u64")
    });
    s.wait_stderr("restart needed: `shared::CALLS`: its type changed", RELOAD);
    s.assert_stderr_count("Reloaded", 0);
    // The program kept its code and state all along.
    assert!(s.last_stdout().starts_with("b: 2"), "{}", s.last_stdout());

    // Back to the old types, and only a new initialiser: applied with a warning,
    // and the program's value kept.
    fx.edit("shared/src/lib.rs", |src| {
        src.replace("Cell<u64> = const { Cell::new(0) }", "Cell<u32> = const { Cell::new(0) }")
            .replace("pub fn per_thread() -> u64", "pub fn per_thread() -> u32")
            .replace("AtomicU64::new(0);", "AtomicU64::new(100);")
    });
    s.wait_stderr("static `shared::COUNTER`: only its initialiser changed; the running program keeps", RELOAD);
    s.wait_stdout("tick: v1 count=2", RELOAD);
}

/// A static an edit adds lives in that edit's patch, from its initial value; later
/// patches share that copy instead of each starting a fresh one (a `OnceLock` set by
/// the first keeps its value through the next, whose initialiser differs).
#[test]
fn a_static_a_patch_adds_is_shared_by_later_patches() {
    let fx = Fixture::new("plain");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    fx.edit("logic/src/lib.rs", |src| {
        assert!(src.contains("fn helper() -> u32 {\n    1\n}"));
        src.replace(
            "fn helper() -> u32 {\n    1\n}",
            "static FIRST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();\n\n\
             fn helper() -> u32 {\n    1 + *FIRST.get_or_init(|| 4)\n}",
        )
    });
    s.wait_stdout("value=5 label=bin-old", RELOAD);
    s.wait_stderr("static `logic::FIRST` is new", RELOAD);
    fx.replace("logic/src/lib.rs", "    1 + *FIRST.get_or_init(|| 4)", "    2 + *FIRST.get_or_init(|| 8)");
    // 2 + 4: the copy the first patch set; a fresh one would say 2 + 8.
    s.wait_stdout("value=6 label=bin-old", RELOAD);
    let line = s.wait_stderr_nth("Reloaded logic", 2, RELOAD);
    assert!(line.contains("linked, 2 statics"), "{line}");
}
