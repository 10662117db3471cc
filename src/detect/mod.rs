//! Detecting a change: which files were saved, and what changed in a crate's source.

pub mod cfg;
pub mod source;
pub mod watch;

use std::path::{Path, PathBuf};

/// A hash over every `.rs` file below `dir`, names and contents: whether a crate's
/// sources are still those a build started from.
pub fn sources_hash(dir: &Path) -> u64 {
    hash_sources(dir, |_, _| {})
}

/// Every `.rs` file below a crate's source directory, as read at one moment: what a
/// build started from, scanned later ([`source::scan_read`]) without reading the files
/// again (they may have been saved since).
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// [`sources_hash`] of these files.
    pub hash: u64,
    /// Each file's text (files that are not UTF-8 are left out: the scan reads them,
    /// and fails, as before).
    pub texts: std::collections::BTreeMap<PathBuf, String>,
}

/// Reads every `.rs` file below `dir` (see [`Sources`]).
pub fn read_sources(dir: &Path) -> Sources {
    let mut texts = std::collections::BTreeMap::new();
    let hash = hash_sources(dir, |file, bytes| {
        if let Ok(text) = String::from_utf8(bytes) {
            texts.insert(file, text);
        }
    });
    Sources { hash, texts }
}

/// [`sources_hash`], handing each file's bytes to `keep` as it is read.
fn hash_sources(dir: &Path, mut keep: impl FnMut(PathBuf, Vec<u8>)) -> u64 {
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
    let mut named = Vec::new();
    for file in files {
        named.extend_from_slice(file.as_os_str().as_encoded_bytes());
        let bytes = std::fs::read(&file).ok();
        named.extend_from_slice(&bytes.as_deref().map_or(0, hotreload_protocol::record::fnv1a).to_le_bytes());
        if let Some(bytes) = bytes {
            keep(file, bytes);
        }
    }
    hotreload_protocol::record::fnv1a(&named)
}
