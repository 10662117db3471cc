//! What a session leaves on disk: a long session's patch directory stays the size of
//! one patch, and a target directory that cannot take a patch is one clear error.

use crate::harness::{Fixture, Session, RELOAD};
use std::path::Path;

const LIB: &str = "logic/src/lib.rs";

/// Files below `dir`, and their bytes.
fn footprint(dir: &Path) -> (usize, u64) {
    let mut files = (0, 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().map_while(Result::ok) {
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            let (n, bytes) = footprint(&entry.path());
            files = (files.0 + n, files.1 + bytes);
        } else {
            files = (files.0 + 1, files.1 + meta.len());
        }
    }
    files
}

/// Each patch's linker inputs replace the last one's: 12 more reloads leave the patch
/// directory as it was after the first (it held every reload's objects before).
#[test]
fn a_long_session_keeps_one_patch_worth_of_files() {
    let fx = Fixture::new("plain");
    let target = tempfile::tempdir().unwrap();
    let dir = target.path().display().to_string();
    let s = Session::start_with_env(&fx, &["-p", "app"], &[("CARGO_HOTRELOAD_TARGET_DIR", &dir)]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    let linked = target.path().join("patch/linked");
    let mut after_first = (0, 0);
    for i in 2..=14 {
        fx.replace(LIB, &format!("    {}\n}}", i - 1), &format!("    {i}\n}}"));
        s.wait_stdout(&format!("value={i} "), RELOAD);
        s.wait_stderr_nth("Reloaded logic", (i - 1) as usize, RELOAD);
        if i == 2 {
            after_first = footprint(&linked);
            assert!(after_first.0 > 0, "the patch was built in {}", linked.display());
        }
    }
    let after_all = footprint(&linked);
    // Incremental compilation keeps a few sessions of its own; allow for them.
    assert!(
        after_all.0 <= after_first.0 + 16 && after_all.1 <= after_first.1 * 2,
        "after 1 reload: {after_first:?} (files, bytes); after 13: {after_all:?}"
    );
}
