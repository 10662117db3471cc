//! A session's start: the program's build begins from the manifests while cargo reads
//! the workspace, and is kept only when cargo's reading asks for the same build.

use crate::harness::{Fixture, Session, RELOAD};

/// The build started from the manifests goes where cargo's configuration sends it:
/// one that guessed `target/` would compile the program, and every dependency, where
/// the user's builds never look. (A sketch that guesses a directory cargo never made
/// does not start a build at all.)
#[test]
fn the_first_build_starts_from_the_manifests_and_goes_where_cargo_config_says() {
    let fx = Fixture::new("plain");
    std::fs::create_dir_all(fx.path(".cargo")).unwrap();
    std::fs::write(fx.path(".cargo/config.toml"), "[build]\ntarget-dir = \"elsewhere\"\n").unwrap();
    // The user's own build first: a build from the manifests goes only into a target
    // directory cargo made.
    let built = std::process::Command::new(env!("CARGO"))
        .args(["build", "--offline", "-q", "-p", "app"])
        .env_remove("CARGO_TARGET_DIR")
        .current_dir(&fx.root)
        .status()
        .unwrap();
    assert!(built.success());
    let s = Session::start_in_configured_target(&fx, &["-p", "app", "-vv"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    s.wait_stderr("Kept the build started from the manifests alone", RELOAD);
    s.assert_stderr_count("Discarded", 0);
    assert!(fx.path("elsewhere/debug/app").is_file(), "the program was not built in the configured directory");
    assert!(!fx.path("target").exists(), "a build went to `target/`, which cargo's configuration does not use");
    // And it reloads as any session does.
    fx.replace("logic/src/lib.rs", "    1\n}", "    2\n}");
    s.wait_stdout("value=2 label=bin-old", RELOAD);
}

/// A manifest cargo rejects: the build started from the manifests fails on it too, and
/// its output is dropped: the user reads cargo's error once, not twice.
#[test]
fn a_manifest_cargo_rejects_is_reported_once() {
    let fx = Fixture::new("plain");
    fx.replace("app/Cargo.toml", "edition = \"2021\"", "edition = \"2077\"");
    let out = crate::harness::hotreload(&fx, &["run", "-p", "app"]);
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stderr.matches("2077").count(), 1, "the error is said once:\n{}", out.stderr);
}

/// A second `run` of a workspace whose session runs is refused (exit code 5) before it
/// builds anything: the build from the manifests must not relink the running
/// session's program with the edits it has hot-patched.
#[test]
fn a_second_run_while_a_session_runs_builds_nothing() {
    let fx = Fixture::new("plain");
    std::fs::create_dir_all(fx.path(".cargo")).unwrap();
    std::fs::write(fx.path(".cargo/config.toml"), "[build]\ntarget-dir = \"own\"\n").unwrap();
    let s = Session::start_in_configured_target(&fx, &["-p", "app"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    fx.replace("logic/src/lib.rs", "    1\n}", "    2\n}");
    s.wait_stdout("value=2 label=bin-old", RELOAD);
    let executable = fx.path("own/debug/app");
    let built = std::fs::metadata(&executable).unwrap().modified().unwrap();
    let mut second = crate::harness::hotreload_command(&fx.root, &["run", "-p", "app"]);
    second.env_remove("CARGO_TARGET_DIR").env_remove("CARGO_HOTRELOAD_TARGET_DIR");
    let out = second.output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    let now = std::fs::metadata(&executable).unwrap().modified().unwrap();
    assert_eq!(now, built, "the refused run built the program again");
}

/// The start warms rustc's incremental cache for each crate's patches; the first patch
/// must be compiled with the very arguments it was warmed with, or rustc throws the
/// cache away and the first reload is a whole compile (on mini-redis 2.6 s instead of
/// 1.3 s). Priming used stub lint arguments a crate without `#[hot]` never gets.
/// `-vv` shows each patch build's rustc command, as cargo shows its own.
#[test]
fn the_first_patch_compiles_with_the_arguments_the_start_warmed_its_cache_with() {
    let fx = Fixture::new("plain");
    let s = Session::start(&fx, &["-p", "app", "-vv"]);
    s.wait_stdout("value=1", RELOAD);
    fx.replace("logic/src/lib.rs", "    1\n}", "    2\n}");
    s.wait_stdout("value=2", RELOAD);
    let runs: Vec<String> = s
        .stderr
        .all()
        .into_iter()
        .filter(|l| l.contains("Running `") && l.contains("--crate-name logic") && l.contains("linked"))
        .collect();
    assert_eq!(runs.len(), 2, "one warming compile and one patch of `logic`:\n{}", runs.join("\n"));
    assert_eq!(runs[0], runs[1], "the patch's rustc arguments differ from the warming compile's");
}
