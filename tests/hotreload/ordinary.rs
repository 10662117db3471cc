//! Outside `cargo hotreload run` the runtime costs next to nothing: an ordinary build of
//! a program that depends on it compiles only small crates, and `#[hot]` items are the
//! items unchanged.

use crate::harness::{Fixture, Session, RELOAD};
use std::process::Command;

#[test]
fn an_ordinary_build_compiles_only_small_crates() {
    let fx = Fixture::new("basic");
    let tree = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-p", "app", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(&fx.root)
        .output()
        .unwrap();
    assert!(tree.status.success(), "{}", String::from_utf8_lossy(&tree.stderr));
    let mut packages: Vec<String> = String::from_utf8_lossy(&tree.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    packages.sort();
    packages.dedup();
    assert_eq!(packages, ["app", "hotreload-macros", "hotreload-protocol", "hotreload-runtime", "libc", "logic"]);
    // And it builds: the attribute's item unchanged, `init` a no-op.
    let target = tempfile::tempdir().unwrap();
    let build = Command::new(env!("CARGO"))
        .args(["build", "--offline", "-q", "-p", "app"])
        .env("CARGO_TARGET_DIR", target.path())
        .env_remove("CARGO_HOTRELOAD_BUILD")
        .current_dir(&fx.root)
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", String::from_utf8_lossy(&build.stderr));
}

/// A hot build turns the runtime's `agent` feature on; the lock file a plain build wrote
/// stays as it is (the feature's crates are pinned in it).
#[test]
fn a_session_leaves_the_lock_file_as_a_plain_build_wrote_it() {
    let fx = Fixture::new("basic");
    let tree = Command::new(env!("CARGO")).args(["tree", "--offline", "-q"]).current_dir(&fx.root).output().unwrap();
    assert!(tree.status.success(), "{}", String::from_utf8_lossy(&tree.stderr));
    let before = std::fs::read(fx.path("Cargo.lock")).unwrap();
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("score=", RELOAD);
    fx.replace("logic/src/lib.rs", "points * 2", "points * 3");
    s.wait_stderr("Reloaded logic", RELOAD);
    assert!(std::fs::read(fx.path("Cargo.lock")).unwrap() == before, "the session rewrote Cargo.lock");
    // Nothing to resolve anew: cargo had no reason to fetch the registry's index.
    s.assert_stderr_count("Updating crates.io index", 0);
}
