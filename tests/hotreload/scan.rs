//! What the compiler sees, the tool sees: of `#[cfg]` twins only the compiled one,
//! `#[cfg_attr(…, hotreload::hot)]` as hot, and `#[hot]` in any edition under any name
//! the manifest gives the runtime.

use crate::harness::{Fixture, Session, RELOAD};

const LIB: &str = "logic/src/lib.rs";

#[test]
fn cfg_twins_and_cfg_attr_hot_functions_reload_and_count_right() {
    let fx = Fixture::new("layout");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("kind: debug v0 twice=6", RELOAD);
    // The active twin; the inactive one hides nothing.
    fx.replace(LIB, "\"debug v0\"", "\"debug v1\"");
    s.wait_stdout("kind: debug v1 twice=6", RELOAD);
    let reloaded = s.wait_stderr("Reloaded logic", RELOAD);
    assert!(reloaded.contains("1 updated, 0 added, 0 removed"), "{:#?}", s.stderr.all());
    // Hot through `cfg_attr`.
    fx.replace(LIB, "n * 2", "n * 3");
    s.wait_stdout("kind: debug v1 twice=9", RELOAD);
    let reloaded = s.wait_stderr_nth("Reloaded logic", 2, RELOAD);
    assert!(reloaded.contains("1 updated, 0 added, 0 removed"), "{:#?}", s.stderr.all());
    // The inactive twin is not compiled: editing it changes nothing the program runs.
    fx.replace(LIB, "\"release v0\"", "\"release v1\"");
    s.assert_no_stderr_for("error", std::time::Duration::from_secs(3));
    s.assert_stderr_count("records disagree", 0);
}

/// `#[hot]` in an edition-2015 crate whose manifest names the runtime `hr`
/// (`fixtures/multi/beta`): the expansion compiles, and the crate reloads.
#[test]
fn an_edition_2015_crate_with_a_renamed_runtime_reloads() {
    let fx = Fixture::new("multi");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("beta=beta-0", RELOAD);
    fx.replace("beta/src/lib.rs", "beta-0", "beta-1");
    s.wait_stdout("beta=beta-1", RELOAD);
    assert!(s.wait_stderr("Reloaded beta", RELOAD).contains("1 updated"));
}

/// Twins by a feature the program's build turns on (`--features`): the tool learns the
/// features from that first build, and reads the source as compiled, not as a build
/// without them would be (a twin's differently named parameter was a "changed
/// signature", which blocked every later edit of the crate).
#[test]
fn a_feature_twin_is_read_as_the_program_was_built() {
    let fx = Fixture::new("plain");
    fx.edit("logic/Cargo.toml", |s| format!("{s}\n[features]\nfancy = []\n"));
    fx.edit("logic/src/lib.rs", |s| {
        format!(
            "{s}\n/// With the feature.\n#[cfg(feature = \"fancy\")]\npub fn style(n: u64) -> u64 {{\n    n + 100\n}}\n\n\
             /// Without it.\n#[cfg(not(feature = \"fancy\"))]\npub fn style(_n: u64) -> u64 {{\n    0\n}}\n"
        )
    });
    let s = Session::start(&fx, &["-p", "app", "--features", "logic/fancy"]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    fx.replace("logic/src/lib.rs", "    1\n}", "    2\n}");
    s.wait_stdout("value=2 label=bin-old", RELOAD);
    s.assert_stderr_count("restart needed", 0);
}
