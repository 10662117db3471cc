//! What a session leaves on disk: a long session's patch directory stays the size of
//! one patch, and a target directory that cannot take a patch is one clear error.

use crate::harness::{Fixture, Session, RELOAD};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

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
    // One patch directory per workspace, below `patch/`.
    let linked = target.path().join("patch");
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

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Needs the right to mount (CI runs as root, as for the tests that drop to `nobody`).
    fn mount(megabytes: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let size = format!("size={megabytes}m");
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs"]).arg(dir.path()).status();
        assert!(status.is_ok_and(|s| s.success()), "mounting a tmpfs needs root (CAP_SYS_ADMIN)");
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) {
        let mut file = std::fs::File::create(self.path().join("filler")).unwrap();
        let block = vec![0u8; 1 << 16];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }

    fn remount(&self, mode: &str) {
        let status = Command::new("mount").args(["-o", &format!("remount,{mode}")]).arg(self.path()).status();
        assert!(status.unwrap().success(), "remount {mode}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// The patch directory on a disk that fills up: one error that names the cause, the
/// program runs its old code on, and once there is room again the next save reloads.
#[test]
fn a_full_target_dir_is_one_clear_error_and_the_session_goes_on() {
    let fx = Fixture::new("plain");
    let disk = SmallDisk::mount(64);
    let dir = disk.path().display().to_string();
    let s = Session::start_with_env(&fx, &["-p", "app"], &[("CARGO_HOTRELOAD_TARGET_DIR", &dir)]);
    s.wait_stdout("value=1 label=bin-old", RELOAD);
    fx.replace(LIB, "    1\n}", "    2\n}");
    s.wait_stdout("value=2 ", RELOAD);

    disk.fill();
    fx.replace(LIB, "    2\n}", "    3\n}");
    s.wait_stderr("No space left on device", RELOAD);
    s.assert_no_stderr_for("Reloaded logic: 1 updated", Duration::from_millis(300));
    assert!(s.last_stdout().contains("value=2 "), "{}", s.last_stdout());
    disk.free();
    fx.replace(LIB, "    3\n}", "    4\n}");
    s.wait_stdout("value=4 ", RELOAD);

    s.assert_stderr_count("panicked", 0);
}

/// A patch directory that cannot be written is named with the cause before the
/// program starts, and nothing runs half set up.
#[test]
fn a_read_only_target_dir_is_named_with_the_cause_at_start() {
    let fx = Fixture::new("plain");
    let disk = SmallDisk::mount(8);
    disk.remount("ro");
    let dir = disk.path().display().to_string();
    let out = crate::harness::hotreload_with_env(&fx, &["run", "-p", "app"], &[("CARGO_HOTRELOAD_TARGET_DIR", &dir)]);
    assert_eq!(out.code, Some(6), "{}", out.stderr);
    assert!(
        out.stderr.starts_with(&format!("error: cannot write to the hot target directory {dir} (set by CARGO_HOTRELOAD_TARGET_DIR); choose another with `CARGO_HOTRELOAD_TARGET_DIR`\n\nCaused by:\n  Read-only file system")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("Compiling"), "nothing is built first: {}", out.stderr);
}
