//! The source scan sees what the compiler sees: of `#[cfg]` twins only the compiled
//! one, and `#[cfg_attr(…, hotreload::hot)]` as hot (the `layout` fixture).

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
    assert!(reloaded.contains("1 updated, 0 added, 0 removed"), "{reloaded}");
    // Hot through `cfg_attr`.
    fx.replace(LIB, "n * 2", "n * 3");
    s.wait_stdout("kind: debug v1 twice=9", RELOAD);
    let reloaded = s.wait_stderr_nth("Reloaded logic", 2, RELOAD);
    assert!(reloaded.contains("1 updated, 0 added, 0 removed"), "{reloaded}");
    // The inactive twin is not compiled: editing it changes nothing the program runs.
    fx.replace(LIB, "\"release v0\"", "\"release v1\"");
    s.assert_no_stderr_for("error", std::time::Duration::from_secs(3));
    s.assert_stderr_count("records disagree", 0);
}
