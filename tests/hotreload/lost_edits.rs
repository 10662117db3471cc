//! Every save reaches the program that runs next: a crate that failed for want of
//! another is retried when that one reloads, a save during a restart is applied once the
//! new program connects, and a restart whose build fails leaves the running program be
//! (the `layered` fixture: `app` → `upper` → `lower`).

use crate::harness::{Fixture, Session, RELOAD, STARTUP};

const UPPER: &str = "upper/src/lib.rs";
const LOWER: &str = "lower/src/lib.rs";

#[test]
fn a_crate_that_failed_for_want_of_another_is_retried_when_that_one_reloads() {
    let fx = Fixture::new("layered");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("show=upper(1) size=big", RELOAD);
    // `upper` calls a function `lower` does not have yet (E0425).
    fx.replace(
        UPPER,
        r#"format!("upper({}) size={}", lower::base(), lower::size())"#,
        r#"format!("upper({}) size={} perimeter={}", lower::base(), lower::size(), lower::perimeter())"#,
    );
    s.wait_stderr("could not compile `upper`", RELOAD);
    fx.edit(LOWER, |src| format!("{src}\n/// New.\n#[hotreload::hot]\npub fn perimeter() -> u32 {{\n    12\n}}\n"));
    s.wait_stderr("Reloaded lower", RELOAD);
    s.wait_stderr("Retrying `upper`", RELOAD);
    s.wait_stdout("show=upper(1) size=big perimeter=12", RELOAD);
}

#[test]
fn a_save_during_a_restart_reaches_the_restarted_program() {
    let fx = Fixture::new("layered");
    let s = Session::start(&fx, &["-p", "app", "--restart"]);
    s.wait_stdout("show=upper(1) size=big", RELOAD);
    fx.replace("app/src/main.rs", r#"format!("show={}""#, r#"format!("shown={}""#);
    // `main` runs, so only a restart runs its new body.
    let restarting = s.wait_stderr("Restarting", RELOAD);
    assert!(restarting.contains("`app::main` changed, and the program runs in its old body"), "{restarting}");
    // While cargo rebuilds the program.
    fx.replace(LOWER, "    1\n", "    5\n");
    s.wait_stdout("shown=upper(5) size=big", RELOAD);
    s.assert_stderr_count("not connected", 0);
    // A warm rebuild shows what a plain `cargo build` would: no `-vv` chatter.
    s.assert_stderr_count("Fresh ", 0);
    s.assert_stderr_count("Dirty ", 0);
}

#[test]
fn a_restart_whose_build_fails_keeps_the_running_program() {
    let fx = Fixture::new("layered");
    let s = Session::start(&fx, &["-p", "app", "--restart"]);
    s.wait_stdout("show=upper(1) size=big", RELOAD);
    fx.replace("app/src/main.rs", "let mut last = String::new();", "let mut last = String::new() +;");
    s.wait_stderr("could not compile `app`; the program keeps running the previous code", RELOAD);
    // A change that needs a restart: the program is built first, fails, and the running
    // one stays.
    fx.edit("app/Cargo.toml", |src| format!("{src}\n# a restart\n"));
    s.wait_stderr("could not compile `app`; the running program keeps its previous build", RELOAD);
    s.assert_stderr_count("Caused by", 0);
    // Still running, and still patched.
    fx.replace(LOWER, "    1\n", "    2\n");
    s.wait_stdout("show=upper(2) size=big", RELOAD);
}

#[test]
fn a_program_that_never_connects_is_reported_at_start_up() {
    let fx = Fixture::new("layered");
    fx.replace("app/src/main.rs", "    hotreload::init();\n", "");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("show=upper(1) size=big", RELOAD);
    s.wait_stderr("`app` has not connected after 5s: does its `main` call `hotreload::init()`?", RELOAD);
}

/// A manifest saved since the build (here a dependency the code then uses) does not
/// reach patches: when the patch then fails to compile, the tool says which manifest
/// changed, so rustc's advice to add the dependency does not mislead.
#[test]
fn a_failed_patch_after_a_manifest_change_names_the_manifest() {
    let fx = Fixture::new("plain");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    fx.edit("logic/Cargo.toml", |s| format!("{s}\n[dependencies]\nnot_yet = {{ path = \"../not_yet\" }}\n"));
    s.wait_stderr("restart needed: `logic/Cargo.toml`", RELOAD);
    fx.replace("logic/src/lib.rs", "    1\n}", "    not_yet::one()\n}");
    s.wait_stderr("could not compile `logic`", RELOAD);
    s.wait_stderr("`logic/Cargo.toml` changed since", RELOAD);
}

/// A function removed while another crate still calls it: the patch applies (the old
/// copy keeps serving the old callers), but a build of the caller fails now, as
/// `cargo build` would say; the caller is rebuilt to show it, and retried once the
/// function is back. A removed function nobody else calls rebuilds nothing.
#[test]
fn a_removed_function_another_crate_still_calls_is_reported_with_its_error() {
    let fx = Fixture::new("plain");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    // `helper` is renamed where it is called: only `logic` called it.
    fx.edit("logic/src/lib.rs", |src| src.replace("helper()", "helper2()"));
    s.wait_stderr("Reloaded logic", RELOAD);
    // `calls` is still called by `app`.
    fx.replace("logic/src/lib.rs", "pub fn calls() -> u64", "pub fn calls_made() -> u64");
    s.wait_stderr("Updating `app`, which calls `logic::calls`, gone from `logic`", RELOAD);
    s.wait_stderr("cannot find function `calls` in crate `logic`", RELOAD);
    s.wait_stderr("could not compile `app`", RELOAD);
    s.assert_stderr_count("Updating", 1);
    // The program runs on, and takes the next edit of `logic` (`app` is retried, and
    // fails again).
    fx.replace("logic/src/lib.rs", "    1\n}", "    7\n}");
    s.wait_stdout("value=7 label=bin-old", RELOAD);
    s.wait_stderr_nth("could not compile `app`", 2, RELOAD);
    // Back: `app` builds again.
    fx.replace("logic/src/lib.rs", "pub fn calls_made() -> u64", "pub fn calls() -> u64");
    s.wait_stderr_nth("Retrying `app`", 2, RELOAD);
    fx.replace("logic/src/lib.rs", "    7\n}", "    8\n}");
    s.wait_stdout("value=8 label=bin-old", RELOAD);
    s.assert_stderr_count("could not compile `app`", 2);
}

/// A function removed and then restored is the program's function again: its callers
/// in the program (here `main`'s running loop) reach the restored copy, and every
/// later edit of it. It counted as added, and the program ran its first body forever.
#[test]
fn a_function_removed_and_restored_takes_later_edits() {
    let fx = Fixture::new("plain");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    fx.replace("logic/src/lib.rs", "pub fn value() -> u32", "pub fn value_now() -> u32");
    s.wait_stderr("could not compile `app`", RELOAD);
    fx.replace("logic/src/lib.rs", "pub fn value_now() -> u32", "pub fn value() -> u32");
    let restored = s.wait_stderr_nth("Reloaded logic", 2, RELOAD);
    assert!(restored.contains("1 updated, 0 added"), "{restored}");
    fx.replace("logic/src/lib.rs", "    helper()\n}", "    helper() + 40\n}");
    s.wait_stdout("value=41 label=bin-old", RELOAD);
}

/// A library whose broken edit is reverted is back to the code that runs: the crates
/// that waited for it build again (they were held for good, and `now` said "build
/// failed").
#[test]
fn reverting_a_broken_library_lets_the_crates_above_it_build() {
    let fx = Fixture::new("plain");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    fx.replace("logic/src/lib.rs", "    1\n}", "    1 + \"x\"\n}");
    s.wait_stderr("could not compile `logic`", RELOAD);
    fx.replace("app/src/main.rs", "\"bin-old\"", "\"bin-new\"");
    s.wait_stderr("`app` will be rebuilt once `logic` builds again", RELOAD);
    fx.replace("logic/src/lib.rs", "    1 + \"x\"\n}", "    1\n}");
    s.wait_stdout("value=1 label=bin-new", RELOAD);
    s.assert_stderr_count("will be rebuilt once", 1);
}

/// A session whose first build fails waits for the fix, as it does after the program
/// exits, instead of ending: the save that fixes it starts the program.
#[test]
fn a_first_build_that_fails_waits_for_the_fix() {
    let fx = Fixture::new("plain");
    fx.replace("logic/src/lib.rs", "    1\n}", "    1 +\n}");
    let s = Session::spawn(&fx, &["-p", "app"], &[]);
    s.wait_stderr("could not compile `app`; waiting for a change to build it again", STARTUP);
    fx.replace("logic/src/lib.rs", "    1 +\n}", "    4\n}");
    s.wait_stderr("Restarting `app`: a change was saved after its build failed", RELOAD);
    s.wait_stdout("value=4 label=bin-old", RELOAD);
}

/// A library whose root is outside `src/` (`[lib] path = "code/logic.rs"`, a module
/// beside it): its saves reach the program (they were ignored, silently).
#[test]
fn a_library_outside_src_reloads() {
    let fx = Fixture::new("plain");
    std::fs::create_dir_all(fx.path("logic/code")).unwrap();
    let lib = std::fs::read_to_string(fx.path("logic/src/lib.rs")).unwrap();
    let lib = lib.replace("fn helper() -> u32 {\n    1\n}", "mod inner;\nuse inner::helper;");
    std::fs::write(fx.path("logic/code/logic.rs"), lib).unwrap();
    std::fs::write(fx.path("logic/code/inner.rs"), "pub fn helper() -> u32 {\n    1\n}\n").unwrap();
    std::fs::remove_dir_all(fx.path("logic/src")).unwrap();
    fx.edit("logic/Cargo.toml", |t| format!("{t}\n[lib]\npath = \"code/logic.rs\"\n"));
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    fx.replace("logic/code/inner.rs", "    1\n}", "    2\n}");
    s.wait_stdout("value=2 label=bin-old", RELOAD);
    fx.replace("logic/code/logic.rs", "    helper()\n}", "    helper() + 10\n}");
    s.wait_stdout("value=12 label=bin-old", RELOAD);
}

/// A library edit that changes no function (a new `pub const`, a new type) builds but
/// loads nothing; the crates above it must still compile against that build. They
/// compiled against the program's own build of the library: `cannot find value `BONUS`
/// in crate `logic`` on every save of the binary, until a function of the library changed.
#[test]
fn a_crate_above_a_library_edit_that_changes_no_function_compiles_against_it() {
    let fx = Fixture::new("plain");
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    fx.edit("logic/src/lib.rs", |t| format!("{t}\n/// New, used by no function yet.\npub const BONUS: u32 = 9;\n"));
    s.wait_stderr("Unchanged logic", RELOAD);
    fx.replace(
        "app/src/main.rs",
        "    \"bin-old\"",
        "    if logic::BONUS == 9 { \"bin-bonus\" } else { \"bin-other\" }",
    );
    s.wait_stdout("value=1 label=bin-bonus", RELOAD);
    s.assert_stderr_count("error", 0);
}

/// Two workspaces sharing a target directory, with crates of the same names: each
/// session's patch builds are its own. They shared one patch directory, and the second
/// session's warming compile replaced the first's binary objects: a function removed
/// from the first's library was not seen to be called by its binary, whose error never
/// came (the program kept calling the removed function's old copy in silence).
#[test]
fn workspaces_sharing_a_target_directory_keep_their_patch_builds_apart() {
    let target = tempfile::tempdir().unwrap();
    let dir = target.path().display().to_string();
    let env = [("CARGO_HOTRELOAD_TARGET_DIR", dir.as_str())];
    let (first, second) = (Fixture::new("plain"), Fixture::new("plain"));
    let a = Session::start_with_env(&first, &["-p", "app"], &env);
    a.wait_stdout("value=1 label=bin-old", RELOAD);
    let b = Session::start_with_env(&second, &["-p", "app"], &env);
    b.wait_stdout("value=1 label=bin-old", RELOAD);
    first.replace("logic/src/lib.rs", "pub fn value() -> u32", "pub fn value_now() -> u32");
    a.wait_stderr("could not compile `app`", RELOAD);
    b.assert_stderr_count("could not compile", 0);
}

/// One edit across two crates: a struct of the library gains a field the program's
/// values lack (refused, restart needed), and the binary fills it in. The binary cannot
/// compile against the running library: that is said as the restart it needs, not as
/// an error a `cargo build` of the same sources never gives ("has no field named `b`").
/// (An edit of the binary that compiles against the running library goes on as usual.)
#[test]
fn a_crate_above_a_change_that_needs_a_restart_is_held_without_a_false_error() {
    let fx = Fixture::new("plain");
    fx.edit("logic/src/lib.rs", |t| {
        format!("{t}\n/// A pair the program keeps.\npub struct Pair {{\n    pub a: u32,\n}}\n")
    });
    fx.replace(
        "app/src/main.rs",
        "    \"bin-old\"",
        "    static PAIR: std::sync::OnceLock<logic::Pair> = std::sync::OnceLock::new();\n    \
         if PAIR.get_or_init(|| logic::Pair { a: 1 }).a == 1 { \"bin-old\" } else { \"bin-odd\" }",
    );
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    fx.replace("logic/src/lib.rs", "    pub a: u32,\n}", "    pub a: u32,\n    pub b: u64,\n}");
    fx.replace("app/src/main.rs", "logic::Pair { a: 1 }", "logic::Pair { a: 1, b: 2 }");
    s.wait_stderr(
        "restart needed: `app` does not compile against the running `logic`, whose change needs a restart",
        RELOAD,
    );
    s.assert_stderr_count("has no field named", 0);
    s.assert_stderr_count("could not compile", 0);
}
