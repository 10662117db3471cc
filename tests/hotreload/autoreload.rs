//! IPython's autoreload test-suite, in our terms: modes, `aimport` marks and skips,
//! `now`, errors reported once, output flags, settings that outlive a session.

use crate::harness::{hotreload, hotreload_command, Fixture, Session, RELOAD};
use std::time::Duration;

/// Long enough for a patch that should not happen to have happened.
const QUIET: Duration = Duration::from_secs(3);

#[test]
fn mode_names_numbers_and_mistakes() {
    let fx = Fixture::new("multi");
    for (given, shown) in [("1", "explicit"), ("ALL", "all"), ("0", "off"), ("Explicit", "explicit"), ("2", "all")] {
        let out = hotreload(&fx, &["mode", given, "--save"]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(out.stderr.contains("no `cargo hotreload run` session is running"), "{}", out.stderr);
        assert_eq!(hotreload(&fx, &["mode"]).stdout.trim(), shown);
    }
    // Without a session, a setting that is not saved would go nowhere.
    let out = hotreload(&fx, &["mode", "off"]);
    assert_eq!(out.code, Some(3));
    assert!(out.stderr.contains("`--save` keeps the setting"), "{}", out.stderr);
    for bad in ["4", "complete", "expilcit"] {
        let out = hotreload(&fx, &["mode", bad]);
        assert_eq!(out.code, Some(2));
        assert!(out.stderr.contains("is not a mode; use one of off, explicit, all (or 0, 1, 2)"), "{}", out.stderr);
    }
    // Saved where a user can read it, the rest of the manifest as it was.
    let manifest = std::fs::read_to_string(fx.path("Cargo.toml")).unwrap();
    assert!(manifest.starts_with("# Two independent hot crates"), "{manifest}");
    assert!(manifest.contains("[workspace.metadata.hotreload]\nmode = \"all\""), "{manifest}");
}

#[test]
fn aimport_marks_skips_and_lists_like_ipython() {
    let fx = Fixture::new("multi");
    let out = hotreload(&fx, &["aimport"]);
    assert_eq!(out.stdout, "Crates to reload:\nall-except-skipped\n\nCrates to skip:\n(none)\n");
    let out = hotreload(&fx, &["aimport", "-alpha,", "beta", "--save"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    hotreload(&fx, &["mode", "explicit", "--save"]);
    assert_eq!(hotreload(&fx, &["aimport"]).stdout, "Crates to reload:\nbeta\n\nCrates to skip:\nalpha\n");
    hotreload(&fx, &["aimport", "--save", "alpha", "-beta"]);
    assert_eq!(hotreload(&fx, &["aimport"]).stdout, "Crates to reload:\nalpha\n\nCrates to skip:\nbeta\n");
    let out = hotreload(&fx, &["aimport", "nosuch"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains(
            "`nosuch` is not a library crate of this workspace; its reloadable crates are: alpha, beta, gamma"
        ),
        "{}",
        out.stderr
    );
    // Without `#[hot]` too: its changed functions switch at their entries.
    let out = hotreload(&fx, &["aimport", "gamma", "--save"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(hotreload(&fx, &["aimport"]).stdout, "Crates to reload:\nalpha gamma\n\nCrates to skip:\nbeta\n");
}

#[test]
fn explicit_mode_reloads_only_aimported_crates_even_when_set_before_the_session() {
    let fx = Fixture::new("multi");
    // Settings made while no session runs are honoured by the next run.
    assert_eq!(hotreload(&fx, &["mode", "explicit", "--save"]).code, Some(0));
    assert_eq!(hotreload(&fx, &["aimport", "alpha", "--save"]).code, Some(0));
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("alpha=alpha-0 beta=beta-0", RELOAD);
    fx.replace("beta/src/lib.rs", "beta-0", "beta-1");
    fx.replace("alpha/src/lib.rs", "alpha-0", "alpha-1");
    s.wait_stdout("alpha=alpha-1 beta=beta-0", RELOAD);
    // Asked for what already holds: the command says so; the session says nothing.
    let again = hotreload(&fx, &["mode", "explicit"]);
    assert!(again.stderr.contains("nothing changed (mode explicit)"), "{}", again.stderr);
    s.assert_no_stderr_for("Reloaded beta", QUIET);
    s.assert_stderr_count("Reloaded beta", 0);
    s.assert_stderr_count("nothing changed", 0);
    assert!(s.last_stdout().contains("beta=beta-0"));
    // Marking it applies the change that waited.
    assert_eq!(hotreload(&fx, &["aimport", "beta"]).code, Some(0));
    s.wait_stdout("alpha=alpha-1 beta=beta-1", RELOAD);
}

#[test]
fn a_skipped_crate_waits_while_others_reload_and_unskipping_applies_it() {
    let fx = Fixture::new("multi");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("alpha=alpha-0 beta=beta-0", RELOAD);
    let out = hotreload(&fx, &["aimport", "-beta"]);
    assert!(out.stderr.contains("the running session"), "{}", out.stderr);
    // For this session only: the manifest is left as the user wrote it.
    let manifest = std::fs::read_to_string(fx.path("Cargo.toml")).unwrap();
    assert!(!manifest.contains("metadata.hotreload"), "{manifest}");
    assert_eq!(hotreload(&fx, &["aimport"]).stdout, "Crates to reload:\nall-except-skipped\n\nCrates to skip:\nbeta\n");
    fx.replace("beta/src/lib.rs", "beta-0", "beta-1");
    fx.replace("alpha/src/lib.rs", "alpha-0", "alpha-1");
    s.wait_stdout("alpha=alpha-1 beta=beta-0", RELOAD);
    s.assert_no_stderr_for("Reloaded beta", QUIET);
    s.assert_stderr_count("Reloaded beta", 0);
    s.assert_stderr_count("restart needed", 0);
    hotreload(&fx, &["aimport", "beta"]);
    s.wait_stdout("alpha=alpha-1 beta=beta-1", RELOAD);
}

#[test]
fn off_then_now_applies_exactly_once_and_all_resumes() {
    let fx = Fixture::new("multi");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("alpha=alpha-0 ", RELOAD);
    assert_eq!(hotreload(&fx, &["mode", "off"]).code, Some(0));
    fx.replace("alpha/src/lib.rs", "alpha-0", "alpha-1");
    s.assert_no_stderr_for("Compiling alpha (hot patch)", QUIET);
    let out = hotreload(&fx, &["now"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("alpha: applied"), "{}", out.stderr);
    s.wait_stdout("alpha=alpha-1 ", RELOAD);
    // Nothing pending: `now` says so, and reloads nothing more.
    let out = hotreload(&fx, &["now"]);
    assert!(out.stderr.contains("note: nothing to reload"), "{}", out.stderr);
    s.assert_stderr_count("Reloaded alpha", 1);
    // Still off for the next save; `all` resumes and applies it.
    fx.replace("alpha/src/lib.rs", "alpha-1", "alpha-2");
    s.assert_no_stderr_for("Compiling alpha (hot patch)", QUIET);
    assert_eq!(hotreload(&fx, &["mode", "all"]).code, Some(0));
    s.wait_stdout("alpha=alpha-2 ", RELOAD);
    fx.replace("alpha/src/lib.rs", "alpha-2", "alpha-3");
    s.wait_stdout("alpha=alpha-3 ", RELOAD);
}

/// In mode explicit, a marked crate's change whose running copy another, unmarked,
/// crate compiled (a generic only the binary instantiates) is held for that crate as
/// its own change would be: said, pending, and applied by `now`. It was announced as
/// reloaded, said to keep its old code until a restart, and `now` had nothing to do.
#[test]
fn a_copy_an_unmarked_crate_holds_waits_for_now() {
    let fx = Fixture::new("entry");
    let s = Session::start(&fx, &["-p", "app", "--mode", "explicit"]);
    s.wait_stdout("wrapped=(2) ", RELOAD);
    let out = hotreload(&fx, &["aimport", "logic"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // What changed is said, not the mode, which did not.
    assert!(out.stderr.contains("reloads `logic`") && !out.stderr.contains("now uses mode"), "{}", out.stderr);
    s.wait_stderr("Settings reloads `logic` (set by `cargo hotreload`)", RELOAD);
    fx.replace("logic/src/lib.rs", "format!(\"({t})\")", "format!(\"[{t}]\")");
    s.wait_stderr("Holding `app`, which holds copies of `logic::wrap` (mode explicit; `cargo hotreload now`", RELOAD);
    s.assert_no_stderr_for("(hot patch)", QUIET);
    assert!(s.last_stdout().contains("wrapped=(2) "), "{}", s.last_stdout());
    s.assert_stderr_count("keeps its old code", 0);
    let out = hotreload(&fx, &["now"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    s.wait_stdout("wrapped=[2] ", RELOAD);
}

#[test]
fn now_fails_loudly_when_a_crate_does_not_build() {
    let fx = Fixture::new("multi");
    let s = Session::start(&fx, &["-p", "app", "--mode", "off"]);
    s.wait_stdout("alpha=alpha-0 ", RELOAD);
    fx.replace("alpha/src/lib.rs", "\"alpha-0\"", "alpha-0");
    fx.replace("beta/src/lib.rs", "beta-0", "beta-1");
    s.assert_no_stderr_for("(hot patch)", QUIET);
    let out = hotreload(&fx, &["now"]);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.stderr.contains("alpha: build failed"), "{}", out.stderr);
    assert!(out.stderr.contains("beta: applied"), "{}", out.stderr);
    s.wait_stdout("beta=beta-1", RELOAD);
    let out = hotreload(&fx, &["now"]);
    assert!(out.stderr.contains("nothing to reload") || out.code == Some(4), "{}", out.stderr);
}

#[test]
fn a_broken_edit_is_reported_once_across_unrelated_saves() {
    let fx = Fixture::new("multi");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("alpha=alpha-0 ", RELOAD);
    fx.replace("alpha/src/lib.rs", "\"alpha-0\"", "alpha-0");
    s.wait_stderr("could not compile `alpha`", RELOAD);
    for i in 1..=3 {
        fx.replace("beta/src/lib.rs", &format!("beta-{}", i - 1), &format!("beta-{i}"));
        s.wait_stdout(&format!("beta=beta-{i}"), RELOAD);
    }
    s.assert_stderr_count("could not compile `alpha`;", 1);
    s.assert_stderr_count("error[E0425]", 1);
    fx.replace("alpha/src/lib.rs", "alpha-0", "\"alpha-fixed\"");
    s.wait_stdout("alpha=alpha-fixed beta=beta-3", RELOAD);
}

#[test]
fn deleting_a_source_file_is_a_build_error_like_any_other() {
    let fx = Fixture::new("multi");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("extra=7", RELOAD);
    let extra = std::fs::read_to_string(fx.path("alpha/src/extra.rs")).unwrap();
    std::fs::remove_file(fx.path("alpha/src/extra.rs")).unwrap();
    s.wait_stderr("could not compile `alpha`", RELOAD);
    std::fs::write(fx.path("alpha/src/extra.rs"), extra.replace('7', "8")).unwrap();
    s.wait_stdout("extra=8", RELOAD);
}

#[test]
fn print_and_log_announce_each_reload() {
    let fx = Fixture::new("multi");
    let s = Session::start(&fx, &["-p", "app", "--print", "--log"]);
    s.wait_stdout("alpha=alpha-0 ", RELOAD);
    fx.replace("alpha/src/lib.rs", "alpha-0", "alpha-1");
    s.wait_stdout("alpha=alpha-1 ", RELOAD);
    s.wait_stderr("Reloading 'alpha'.", RELOAD);
    s.wait_stderr("[INFO hotreload] Reloading 'alpha'.", RELOAD);
}

#[test]
fn hide_errors_keeps_compiler_output_out() {
    let fx = Fixture::new("multi");
    let s = Session::start(&fx, &["-p", "app", "--hide-errors"]);
    s.wait_stdout("alpha=alpha-0 ", RELOAD);
    fx.replace("alpha/src/lib.rs", "\"alpha-0\"", "alpha-0");
    fx.replace("beta/src/lib.rs", "beta-0", "beta-1");
    s.wait_stdout("beta=beta-1", RELOAD);
    s.assert_no_stderr_for("error", QUIET);
    let status = hotreload(&fx, &["status"]);
    assert!(status.stdout.contains("build failed"), "{}", status.stdout);
}

#[test]
fn status_reports_the_running_session() {
    let fx = Fixture::new("multi");
    let out = hotreload(&fx, &["status"]);
    assert_eq!(out.code, Some(3));
    assert!(out.stderr.contains("no `cargo hotreload run` session is running"), "{}", out.stderr);
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("alpha=alpha-0 ", RELOAD);
    fx.replace("alpha/src/lib.rs", "alpha-0", "alpha-1");
    s.wait_stdout("alpha=alpha-1 ", RELOAD);
    s.wait_stderr("Reloaded alpha", RELOAD);
    let out = hotreload(&fx, &["status", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["running"], true);
    assert_eq!(json["mode"], "all");
    assert!(json["app_pid"].as_u64().is_some());
    let alpha = json["crates"].as_array().unwrap().iter().find(|c| c["name"] == "alpha").unwrap();
    assert_eq!(alpha["generation"], 1);
    assert_eq!(alpha["last_result"], "applied");
    assert!(alpha["last_detail"].as_str().unwrap().ends_with("ms after the save, linked"), "{alpha}");
    assert_eq!(alpha["recent_ms"].as_array().unwrap().len(), 1);
    let beta = json["crates"].as_array().unwrap().iter().find(|c| c["name"] == "beta").unwrap();
    assert_eq!(beta["generation"], 0);
    let human = hotreload(&fx, &["status"]).stdout;
    assert!(human.contains("program: pid") && human.contains("mode:    all"), "{human}");
    assert!(human.contains("save → applied"), "{human}");
}

#[test]
fn a_second_session_on_the_same_workspace_refuses_to_start() {
    let fx = Fixture::new("multi");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("alpha=alpha-0 ", RELOAD);
    let second = hotreload(&fx, &["run", "-p", "app"]);
    assert_eq!(second.code, Some(5));
    assert!(second.stderr.contains("is already running for"), "{}", second.stderr);
    // The first one is untouched.
    fx.replace("alpha/src/lib.rs", "alpha-0", "alpha-1");
    s.wait_stdout("alpha=alpha-1 ", RELOAD);
}

#[test]
fn with_check_changes_that_are_not_applied_are_still_compiled() {
    let fx = Fixture::new("multi");
    let s = Session::start(&fx, &["-p", "app", "--mode", "off", "--check"]);
    s.wait_stdout("alpha=alpha-0 ", RELOAD);
    fx.replace("alpha/src/lib.rs", "\"alpha-0\"", "alpha-0");
    s.wait_stderr("could not compile `alpha`", RELOAD);
    fx.replace("alpha/src/lib.rs", "alpha-0", "\"alpha-1\"");
    s.wait_stderr_nth("Checking alpha (not applied: mode off)", 2, RELOAD);
    s.assert_no_stderr_for("Reloaded", QUIET);
    assert_eq!(hotreload(&fx, &["now"]).code, Some(0));
    s.wait_stdout("alpha=alpha-1 ", RELOAD);
}

#[test]
fn a_single_package_reloads_its_library_and_keeps_settings_in_package_metadata() {
    let fx = Fixture::new("single");
    let s = Session::start(&fx, &[]);
    s.wait_stdout("message=one", RELOAD);
    fx.replace("src/lib.rs", "\"one\"", "\"two\"");
    s.wait_stdout("message=two", RELOAD);
    // The binary's own source is a crate of its own, patched too; its running `main`
    // keeps its body, and that is said (with no `Reloaded` line: nothing else changed).
    fx.replace("src/main.rs", "from_millis(5)", "from_millis(4)");
    s.wait_stderr("Compiling single (bin) (hot patch)", RELOAD);
    s.wait_stderr("`single::main` keeps its old code: it is running", RELOAD);
    s.assert_stderr_count("Reloaded single (bin)", 0);
    // Saved settings go to [package.metadata.hotreload] and reach the session.
    assert_eq!(hotreload(&fx, &["aimport", "-single", "--save"]).code, Some(0));
    let manifest = std::fs::read_to_string(fx.path("Cargo.toml")).unwrap();
    assert!(manifest.contains("[package.metadata.hotreload]"), "{manifest}");
    fx.replace("src/lib.rs", "\"two\"", "\"three\"");
    s.assert_no_stderr_for("Reloaded single", QUIET);
    s.assert_stderr_count("restart needed: `Cargo.toml`", 0);
    assert_eq!(hotreload(&fx, &["aimport", "single"]).code, Some(0));
    s.wait_stdout("message=three", RELOAD);
}

/// `now` right after a save, before the watcher reports it (its burst still open),
/// applies that save; the report that follows is no new change. It said "nothing to
/// reload" (a CI failure under load, where the report came late).
#[test]
fn now_applies_a_save_the_watcher_has_not_reported_yet() {
    let fx = Fixture::new("multi");
    let s = Session::start(&fx, &["-p", "app", "--mode", "off", "--debounce", "4000"]);
    s.wait_stdout("alpha=alpha-0 ", RELOAD);
    fx.replace("alpha/src/lib.rs", "alpha-0", "alpha-1");
    let out = hotreload(&fx, &["now"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("alpha: applied"), "{}", out.stderr);
    s.wait_stdout("alpha=alpha-1 ", RELOAD);
    // The watcher's report, 4 s after the save: held again, it would wait for a second `now`.
    s.assert_no_stderr_for("Holding alpha", Duration::from_secs(6));
}

/// `now` times a reload from the save it applies, not from the command; `status` says
/// when the program needs a restart, and forgets it once the source is back.
#[test]
fn now_times_from_the_save_and_status_says_when_a_restart_is_needed() {
    let fx = Fixture::new("multi");
    let s = Session::start(&fx, &["-p", "app", "--mode", "off"]);
    s.wait_stdout("alpha=alpha-0 ", RELOAD);
    fx.replace("alpha/src/lib.rs", "alpha-0", "alpha-1");
    // Held, and said so.
    s.wait_stderr("Holding alpha (mode off; `cargo hotreload now` applies it)", RELOAD);
    std::thread::sleep(Duration::from_millis(1500));
    let out = hotreload(&fx, &["now"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let ms: u64 = out
        .stderr
        .split("alpha: applied (")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no time in {:?}", out.stderr));
    assert!(ms >= 1500, "{ms} ms after a save 1.5 s old: {}", out.stderr);
    s.wait_stdout("alpha=alpha-1 ", RELOAD);

    // A signature change: refused, and `status` says a restart is needed.
    fx.replace(
        "alpha/src/lib.rs",
        "pub fn value() -> &'static str {\n    \"alpha-1\"",
        "pub fn value() -> String {\n    \"alpha-2\".into()",
    );
    let out = hotreload(&fx, &["now"]);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    let alpha = crate_status(&fx, "alpha");
    assert!(alpha["restart_needed"].as_str().unwrap_or("").contains("its signature changed"), "{alpha}");
    assert!(hotreload(&fx, &["status"]).stdout.contains("restart needed: `alpha::value`"));
    // Back as the program has it: nothing to restart for, and nothing to load.
    fx.replace(
        "alpha/src/lib.rs",
        "pub fn value() -> String {\n    \"alpha-2\".into()",
        "pub fn value() -> &'static str {\n    \"alpha-1\"",
    );
    let out = hotreload(&fx, &["now"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    s.wait_stderr("`alpha` is back to the source the program runs", RELOAD);
    let alpha = crate_status(&fx, "alpha");
    assert!(alpha["restart_needed"].is_null(), "{alpha}");
    assert_eq!(alpha["last_result"], "unchanged", "{alpha}");
}

/// A manifest edit needs a restart: `status` says so for its crate, also after a body
/// edit of that crate applied, and forgets it once the manifest is back.
#[test]
fn status_says_a_changed_manifest_needs_a_restart() {
    let fx = Fixture::new("multi");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("alpha=alpha-0 ", RELOAD);
    let manifest = std::fs::read_to_string(fx.root.join("alpha/Cargo.toml")).unwrap();
    fx.edit("alpha/Cargo.toml", |src| format!("{src}\n[features]\nextra = []\n"));
    s.wait_stderr("restart needed: `alpha/Cargo.toml` changed", RELOAD);
    fx.replace("alpha/src/lib.rs", "alpha-0", "alpha-1");
    s.wait_stdout("alpha=alpha-1 ", RELOAD);
    let alpha = crate_status(&fx, "alpha");
    assert_eq!(alpha["restart_needed"], "`alpha/Cargo.toml` changed", "{alpha}");
    std::fs::write(fx.root.join("alpha/Cargo.toml"), manifest).unwrap();
    s.wait_stderr("`alpha/Cargo.toml` is back to what the program was built from", RELOAD);
    let alpha = crate_status(&fx, "alpha");
    assert!(alpha["restart_needed"].is_null(), "{alpha}");
}

/// `now` applies a crate whose last build failed, fixed meanwhile, together with a
/// crate below it: once each, with no `Retrying` of the one it has just applied.
#[test]
fn now_applies_a_fixed_crate_once() {
    let fx = Fixture::new("layered");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("show=upper(1) size=big", RELOAD);
    fx.replace("upper/src/lib.rs", "format!(\"upper(", "format!(\"upper(\" +");
    s.wait_stderr("could not compile `upper`", RELOAD);
    assert_eq!(hotreload(&fx, &["mode", "off"]).code, Some(0));
    fx.replace("upper/src/lib.rs", "format!(\"upper(\" +", "format!(\"top(");
    fx.replace("lower/src/lib.rs", "    1\n", "    2\n");
    s.wait_stderr("Holding upper", RELOAD);
    s.wait_stderr("Holding lower", RELOAD);
    let out = hotreload(&fx, &["now"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    s.wait_stdout("show=top(2) size=big", RELOAD);
    s.assert_stderr_count("Retrying", 0);
    assert_eq!(out.stderr.matches("upper:").count(), 1, "{}", out.stderr);
}

/// One crate's entry in `status --format json`.
fn crate_status(fx: &Fixture, name: &str) -> serde_json::Value {
    let status = hotreload(fx, &["status", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    json["crates"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone()
}

/// The README's `run --manifest-path demo/Cargo.toml`, then `status` from the same
/// directory: the session running below it is the one meant.
#[test]
fn control_commands_find_the_session_running_below_this_directory() {
    let fx = Fixture::new("multi");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("alpha=alpha-0 ", RELOAD);
    let above = fx.root.parent().unwrap();
    let out = crate::harness::hotreload_in(above, &["status", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["running"], true, "{json}");
    let out = crate::harness::hotreload_in(above, &["mode", "off"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(hotreload(&fx, &["mode"]).stdout.trim(), "off");
    // From a directory that is in no workspace and above no session: "no session" (3),
    // not cargo's complaint about a missing manifest.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = crate::harness::hotreload_in(elsewhere.path(), &["status"]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("not inside a cargo workspace"), "{}", out.stderr);
}

/// The only user file the tool writes is the manifest's settings table: killed at any
/// moment of 60 `--save`s, the tool leaves a whole manifest, old or new, every time.
#[test]
fn a_tool_killed_while_saving_settings_never_truncates_the_manifest() {
    let fx = Fixture::new("multi");
    let original = std::fs::read_to_string(fx.path("Cargo.toml")).unwrap();
    for i in 0..60u64 {
        let mode = ["off", "explicit", "all"][i as usize % 3];
        let mut child = hotreload_command(&fx.root, &["mode", mode, "--save"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Somewhere between start-up and the write: a few milliseconds in.
        std::thread::sleep(Duration::from_micros(500 * (i % 40)));
        let _ = child.kill();
        child.wait().unwrap();
        let text = std::fs::read_to_string(fx.path("Cargo.toml")).unwrap();
        assert!(text.starts_with("# Two independent hot crates"), "kill {i} left: {text:?}");
        assert!(text.parse::<toml_edit::DocumentMut>().is_ok(), "kill {i} left: {text:?}");
        assert!(text.contains("members = [\"app\", \"alpha\", \"beta\", \"gamma\"]"), "{text}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&fx.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".hotreload-"))
        .collect();
    assert!(leftovers.len() <= 1, "temporary files left: {leftovers:?}");
    // The settings table is all that changed.
    let now = std::fs::read_to_string(fx.path("Cargo.toml")).unwrap();
    assert_eq!(crate::harness::without_settings(&now), crate::harness::without_settings(&original));
}

/// A `--bin` the workspace lacks is a usage error (exit 2) that lists the binaries, as
/// cargo's own message does; nothing is built.
#[test]
fn an_unknown_bin_is_a_usage_error_that_lists_the_binaries() {
    let fx = Fixture::new("plain");
    let out = hotreload(&fx, &["run", "--bin", "nosuch"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("no bin target named `nosuch`"), "{}", out.stderr);
    assert!(out.stderr.contains("available bin targets: app"), "{}", out.stderr);
    assert!(!out.stderr.contains("Compiling"), "{}", out.stderr);
}
