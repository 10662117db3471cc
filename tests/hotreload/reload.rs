//! Edits that reload: functions, methods, trait objects, added and removed
//! functions, crates that depend on each other, panics, allocators, threads.

use crate::harness::{Fixture, Session, RELOAD};

#[test]
fn a_free_function_edit_reaches_direct_calls_and_old_fn_pointers() {
    let fx = Fixture::new("basic");
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    s.wait_stdout("score=6 ptr=6", RELOAD);
    fx.replace("logic/src/lib.rs", "points * 2", "points * 10");
    // `ptr` is a fn pointer taken before the edit.
    s.wait_stdout("score=30 ptr=30", RELOAD);
    let reloaded = s.wait_stderr("Reloaded logic", RELOAD);
    assert!(reloaded.contains("1 updated, 0 added, 0 removed"), "{reloaded}");
    assert!(reloaded.contains("linked"), "{reloaded}");
    s.wait_stderr("updated logic::score", RELOAD);
    fx.replace("logic/src/lib.rs", "points * 10", "points * 11");
    s.wait_stdout("score=33 ptr=33", RELOAD);
    assert!(s.wait_stderr_nth("Timing", 2, RELOAD).contains("(linked: rustc "), "{:?}", s.stderr.all());
}

/// A linked patch of a body-only edit compiles the edited functions whole and the
/// others as stubs calling the program's slots: nothing else may change.
#[test]
fn a_patch_of_one_body_leaves_every_other_function_as_it_runs() {
    let fx = Fixture::new("basic");
    let s = Session::start(&fx, &["-p", "app", "-v"]);
    s.wait_stdout("score=6 ptr=6 bump=1 label=counter", RELOAD);
    fx.replace("logic/src/lib.rs", "points * 2", "points * 10");
    s.wait_stdout("score=30 ptr=30 bump=1 label=counter", RELOAD);
    assert!(s.wait_stderr("Timing", RELOAD).contains("(1 slots, 0 entries;"), "{:?}", s.stderr.all());
    // Only `label` changes; `score` keeps its reloaded code through its stub.
    fx.replace("logic/src/lib.rs", "\"counter\"\n", "\"tally\"\n");
    s.wait_stdout("score=30 ptr=30 bump=1 label=tally", RELOAD);
    assert!(s.wait_stderr_nth("Reloaded logic", 2, RELOAD).contains("1 updated, 0 added, 0 removed"));
    // New code calling a function it did not change: a trait method whose impl comes
    // after other hot impls, reached through its stub and the program's slot.
    fx.replace("logic/src/lib.rs", "points * 10", "points + Counter { n: points }.name().len() as u32");
    // 3 + "counter at 3".len()
    s.wait_stdout("score=15 ptr=15 bump=1 label=tally", RELOAD);
    fx.replace("logic/src/lib.rs", "points + Counter { n: points }.name().len() as u32", "points * 10");
    s.wait_stdout("score=30 ptr=30 bump=1 label=tally", RELOAD);
    // A new helper that is not hot: every hot function is rebuilt whole, and so is
    // the one calling it when only the helper changes next.
    fx.edit("logic/src/lib.rs", |src| {
        src.replace("points * 10", "scale(points)") + "\nfn scale(p: u32) -> u32 {\n    p * 5\n}\n"
    });
    s.wait_stdout("score=15 ptr=15 bump=1 label=tally", RELOAD);
    fx.replace("logic/src/lib.rs", "p * 5\n", "p * 7\n");
    s.wait_stdout("score=21 ptr=21 bump=1 label=tally", RELOAD);
}

#[test]
fn self_contained_patches_keep_applying() {
    let fx = Fixture::new("basic");
    let s = Session::start(&fx, &["-p", "app", "-v", "--self-contained"]);
    s.wait_stdout("score=6 ptr=6", RELOAD);
    fx.replace("logic/src/lib.rs", "points * 2", "points * 10");
    s.wait_stdout("score=30 ptr=30", RELOAD);
    let reloaded = s.wait_stderr("Reloaded logic", RELOAD);
    assert!(reloaded.contains("self-contained"), "{reloaded}");
    // Each later patch runs rustc as the program's build did, without cargo.
    fx.replace("logic/src/lib.rs", "points * 10", "points * 11");
    s.wait_stdout("score=33 ptr=33", RELOAD);
    let second = s.wait_stderr_nth("Reloaded logic", 2, RELOAD);
    assert!(second.contains("1 updated") && second.contains("self-contained"), "{:?}", s.stderr.all());
    // Chosen by the user: no note about why.
    s.assert_stderr_count("reloads as a self-contained library", 0);
}

#[test]
fn methods_of_existing_objects_and_trait_objects_run_new_code() {
    let fx = Fixture::new("basic");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("bump=1 label=counter name=counter at 0", RELOAD);
    fx.edit("logic/src/lib.rs", |src| {
        src.replace("self.n += 1;", "self.n += 100;")
            .replace("\"counter\"\n", "\"COUNTER\"\n")
            .replace("format!(\"counter at {}\", self.n)", "format!(\"renamed at {}\", self.n)")
    });
    // `counter` and the boxed `dyn Named` were created before the edit.
    s.wait_stdout("bump=100 label=COUNTER name=renamed at 0", RELOAD);
    assert!(s.wait_stderr("Reloaded logic", RELOAD).contains("3 updated"));
}

#[test]
fn added_functions_are_called_and_removed_ones_keep_working() {
    let fx = Fixture::new("basic");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("legacy=legacy", RELOAD);
    fx.edit("logic/src/lib.rs", |src| {
        let src = src.replace("points * 2", "triple(points)");
        // Remove `legacy` entirely: the program still calls it.
        let start = src.find("/// An old function").unwrap();
        let mut src = src[..start].to_string();
        src.push_str("#[hotreload::hot]\npub fn triple(p: u32) -> u32 {\n    p * 3\n}\n");
        src
    });
    s.wait_stdout("score=9 ptr=9", RELOAD);
    let reloaded = s.wait_stderr("Reloaded logic", RELOAD);
    assert!(reloaded.contains("1 updated, 1 added, 1 removed"), "{reloaded}");
    // The removed function's existing callers run the code they ran before.
    assert!(s.last_stdout().contains("legacy=legacy"), "{}", s.last_stdout());
    // And a later patch still applies on top.
    fx.replace("logic/src/lib.rs", "p * 3", "p * 4");
    s.wait_stdout("score=12 ptr=12 ", RELOAD);
    assert!(s.last_stdout().contains("legacy=legacy"));
}

#[test]
fn an_edit_in_a_lower_crate_is_seen_through_the_upper_one() {
    let fx = Fixture::new("layered");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("show=upper(1) size=big", RELOAD);
    fx.replace("lower/src/lib.rs", "    1\n", "    2\n");
    // `upper` turns on `lower`'s `big` feature; the patch is built with it too.
    s.wait_stdout("show=upper(2) size=big", RELOAD);
    assert!(s.wait_stderr("Reloaded lower", RELOAD).contains("linked"));
    // Patch the upper crate: it is compiled against `lower`'s newest build and linked
    // to the program, whose copies of `lower`'s functions lead to the newest code.
    fx.replace("upper/src/lib.rs", "upper({})", "UPPER({})");
    s.wait_stdout("show=UPPER(2)", RELOAD);
    assert!(s.wait_stderr("Reloaded upper", RELOAD).contains("linked"));
    fx.replace("lower/src/lib.rs", "    2\n", "    3\n");
    s.wait_stdout("show=UPPER(3)", RELOAD);
    // Both changed in one save: built in dependency order.
    fx.replace("lower/src/lib.rs", "    3\n", "    4\n");
    fx.replace("upper/src/lib.rs", "UPPER({})", "Upper({})");
    s.wait_stdout("show=Upper(4) size=big", RELOAD);
    assert_eq!(s.stdout.count(|l| l.contains("small")), 0);
    s.assert_stderr_count("self-contained", 0);
}

#[test]
fn at_safepoints_patches_apply_where_the_program_says() {
    let fx = Fixture::new("basic");
    let s = Session::start_with_env(&fx, &["-p", "app"], &[("FIXTURE_SAFEPOINTS", "1")]);
    s.wait_stdout("score=6 ptr=6 ", RELOAD);
    assert!(s.last_stdout().ends_with("safepoints=0"), "{}", s.last_stdout());
    fx.replace("logic/src/lib.rs", "points * 2", "points * 10");
    let line = s.wait_stdout("score=30 ptr=30", RELOAD);
    assert!(line.ends_with("safepoints=1"), "{line}");
    s.wait_stderr("Reloaded logic", RELOAD);
}

#[test]
fn a_panic_in_new_code_reaches_the_programs_hook_and_catch_unwind() {
    let fx = Fixture::new("basic");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("boom=boom in old code hook=boom in old code", RELOAD);
    fx.replace("logic/src/lib.rs", "panic!(\"boom in old code\")", "panic!(\"boom in new code {}\", 7)");
    // The program's panic hook ran (once, with the message) and catch_unwind got the payload.
    s.wait_stdout("boom=boom in new code 7 hook=boom in new code 7", RELOAD);
    fx.replace("logic/src/lib.rs", "panic!(\"boom in new code {}\", 7)", "panic!(\"static message\")");
    s.wait_stdout("boom=static message hook=static message", RELOAD);
    assert!(s.stderr.count(|l| l.contains("panicked")) == 0, "the patch's own hook must stay silent");
}

#[test]
fn strings_cross_a_custom_global_allocator_over_20_reloads() {
    // Linked patches allocate with the program's allocator itself.
    let (_fx, s) = alloc_session(&[]);
    s.assert_stderr_count("self-contained", 0);
}

#[test]
fn strings_cross_a_custom_global_allocator_over_20_self_contained_reloads() {
    // Self-contained libraries forward their allocator to the program's.
    let (_fx, s) = alloc_session(&["--self-contained"]);
    s.assert_stderr_count("linked", 0);
}

/// 20 reloads of a crate whose strings the program's checking allocator frees.
fn alloc_session(flags: &[&str]) -> (Fixture, Session) {
    let fx = Fixture::new("stress");
    let mut args = vec!["-p", "app", "--bin", "alloc"];
    args.extend(flags);
    let s = Session::start(&fx, &args);
    s.wait_stdout("shout=!", RELOAD);
    let mut suffix = "!".to_string();
    for i in 1..=20 {
        let next = format!("!{i}");
        fx.replace("text/src/lib.rs", &format!("s.push_str(\"{suffix}\")"), &format!("s.push_str(\"{next}\")"));
        s.wait_stdout(&format!("shout={next} "), RELOAD);
        suffix = next;
    }
    // The program shows new code before the tool prints `Reloaded`.
    s.wait_stderr_nth("Reloaded text", 20, RELOAD);
    s.assert_stderr_count("Reloaded text", 20);
    s.assert_stderr_count("FATAL", 0);
    (fx, s)
}

/// Runs `bin` of the stress fixture, whose threads call a function returning the
/// number after `before` in `text`, and counts it up to `patches`, one patch at a time:
/// no thread ever sees a torn or stale-then-newer value.
fn count_up_under_threads(bin: &str, before: &str, patches: u32) -> (Fixture, Session) {
    let fx = Fixture::new("stress");
    let s = Session::start(&fx, &["-p", "app", "--bin", bin]);
    s.wait_stdout("value=0 bad=0", RELOAD);
    for i in 1..=patches {
        fx.replace("text/src/lib.rs", &format!("{before}{}\n}}", i - 1), &format!("{before}{i}\n}}"));
        s.wait_stdout(&format!("value={i} "), RELOAD);
    }
    let last = s.last_stdout();
    assert!(last.starts_with(&format!("value={patches} bad=0")), "{last}");
    assert_eq!(s.stdout.count(|l| !l.contains("bad=0")), 0);
    (fx, s)
}

#[test]
fn four_threads_calling_hot_code_survive_30_patches() {
    count_up_under_threads("threads", "    ", 30);
}

/// A function without `#[hot]`, called by 8 threads in tight loops (half through a
/// `fn` pointer), redirected by 200 patches: each redirects the program's copy and the
/// copy of every earlier generation, so most writes land on a function's original
/// first bytes.
#[test]
fn eight_threads_calling_redirected_code_survive_200_patches() {
    let (_fx, s) = count_up_under_threads("entries", "x + ", 200);
    s.assert_stderr_count("keeps its old code", 0);
}

#[test]
fn release_builds_reload_too() {
    let fx = Fixture::new("single");
    // Release artifacts share nothing with the debug ones: a target directory of their
    // own, so this long first build holds no other test's build lock.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixture-builds-release");
    let hot = dir.join("hotreload");
    let env = [("CARGO_HOTRELOAD_TARGET_DIR", hot.to_str().unwrap())];
    let s = Session::start_with_env(&fx, &["--release", "--target-dir", dir.to_str().unwrap()], &env);
    s.wait_stdout("message=one", RELOAD);
    // `--target-dir` as cargo takes it: the program was built there.
    assert!(dir.join("release/single").is_file(), "no program in {}", dir.display());
    fx.replace("src/lib.rs", "\"one\"", "\"optimised\"");
    s.wait_stdout("message=optimised", RELOAD);
    s.wait_stderr("Reloaded single", RELOAD);
    s.assert_stderr_count("Finished `release` hot build of `single`", 1);
    // A function the binary's code took in whole: no copy of it runs to redirect, and
    // that is said by name (it was "the patch changes no function", at `-v` only).
    fx.replace("src/lib.rs", "    17\n", "    18\n");
    s.wait_stderr("`single::factor` keeps its old code: no copy of it runs on its own", RELOAD);
    // A trait object's method has a copy of its own (the vtable's), which switches: it
    // is not said to be inlined (its id, `Standard~Rule::label`, found no copy).
    fx.replace("src/lib.rs", "format!(\"std-{}\", 1)", "format!(\"std-{}\", 2)");
    s.wait_stdout("rule=std-2", RELOAD);
    s.assert_stderr_count("keeps its old code", 1);
}

/// In a terminal cargo colours its status words, `Running` included: the tool must
/// still read the compiler commands it records for linked patches, and still hide them.
#[test]
fn with_colours_on_patches_are_linked_and_cargos_commands_stay_hidden() {
    let fx = Fixture::new("plain");
    let s = Session::start(&fx, &["-p", "app", "--color", "always"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    let watching = s.wait_stderr("Watching", RELOAD);
    assert!(watching.contains("linked patches ready"), "{watching}");
    fx.replace("logic/src/lib.rs", "    1\n}", "    2\n}");
    s.wait_stdout("value=2 label=bin-old", RELOAD);
    let reloaded = s.wait_stderr("Reloaded", RELOAD);
    assert!(reloaded.contains("linked"), "{reloaded}");
    s.assert_stderr_count("--crate-name", 0);
    s.assert_stderr_count("restart needed", 0);
}

/// A burst of saves, each landing while the last one's patch compiles: the jobs a newer
/// save supersedes are one `Compiling` with the job that finishes, so every
/// `Compiling` line has its outcome, and the last save is the code that runs.
#[test]
fn a_burst_of_saves_is_one_compiling_per_outcome() {
    let fx = Fixture::new("plain");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    for n in 2..=9 {
        fx.replace("logic/src/lib.rs", &format!("    {}\n}}", n - 1), &format!("    {n}\n}}"));
        std::thread::sleep(std::time::Duration::from_millis(40));
    }
    s.wait_stdout("value=9 label=bin-old", RELOAD);
    // The program runs the last save before the tool reports it: equal once every
    // report is out, and never equal while a `Compiling` has no outcome.
    let counts = || {
        let compiling = s.stderr.count(|l| l.contains("Compiling logic (hot patch)"));
        (compiling, s.stderr.count(|l| l.contains("Reloaded logic")))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while counts().0 != counts().1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (compiling, reloaded) = counts();
    assert_eq!(compiling, reloaded, "{}", s.stderr.all().join("\n"));
}

/// An edit inside a hot body that changes nothing the program runs (a comment): the
/// patch build starts on the text's guess, and its `Compiling` line gets an outcome.
#[test]
fn a_compiling_line_always_gets_its_outcome() {
    let fx = Fixture::new("basic");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("score=6 ", RELOAD);
    fx.replace("logic/src/lib.rs", "    points * 2\n", "    // Twice.\n    points * 2\n");
    s.wait_stderr("Compiling logic (hot patch)", RELOAD);
    s.wait_stderr("note: `logic`: nothing the program runs changed; nothing to reload", RELOAD);
    s.assert_stderr_count("Reloaded logic", 0);
}
