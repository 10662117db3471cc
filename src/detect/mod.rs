//! Detecting a change: which files were saved, and what changed in a crate's source.

pub mod cfg;
pub mod source;
pub mod watch;

use std::path::{Path, PathBuf};

/// A hash over every `.rs` file below `dir`, names and contents: whether a crate's
/// sources are still those a build started from.
pub fn sources_hash(dir: &Path) -> u64 {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let mut text = Vec::new();
    for file in files {
        text.extend_from_slice(file.as_os_str().as_encoded_bytes());
        text.extend_from_slice(&watch::content_hash(&file).unwrap_or(0).to_le_bytes());
    }
    hotreload_protocol::record::fnv1a(&text)
}
