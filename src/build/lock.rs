//! One build at a time per hot build directory.

use anyhow::{Context, Result};
use std::path::Path;

/// An exclusive lock on one hot build directory (`program` or `patch`), held from the
/// start of a build until its output is placed in a session: another session sharing
/// the directory could otherwise overwrite the output in between. Released on drop.
pub struct BuildLock {
    _file: std::fs::File,
}

impl BuildLock {
    /// Waits for the lock of `dir`.
    pub fn acquire(dir: &Path) -> Result<BuildLock> {
        fs_err::create_dir_all(dir)?;
        let file = crate::lockfile::lock(&dir.join(".hotreload-lock"), true)
            .context("failed to lock the hot target directory")?
            .expect("a waiting lock is always taken");
        Ok(BuildLock { _file: file })
    }

    /// Takes the lock of `dir` if no one holds it: `Ok(None)` when someone does.
    pub fn try_acquire(dir: &Path) -> Result<Option<BuildLock>> {
        fs_err::create_dir_all(dir)?;
        let file = crate::lockfile::lock(&dir.join(".hotreload-lock"), false)
            .context("failed to lock the hot target directory")?;
        Ok(file.map(|file| BuildLock { _file: file }))
    }
}
