//! Saved files, as one batch per burst of saves.
//!
//! Watchers users trust: directories are watched (so editors' rename-over saves are
//! seen), a burst of events is one batch, `target/`, `.git/` and ignored files never
//! count, and a save that leaves a file's content as it was is no change at all.

use anyhow::{Context, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use notify::event::{EventKind, ModifyKind};
use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Files whose content changed in one burst.
#[derive(Debug)]
pub struct Batch {
    /// The files, sorted; a deleted file is listed too.
    pub paths: BTreeSet<PathBuf>,
    /// When the first event of the burst happened (start of save → new code).
    pub first_event: Instant,
}

/// A directory to watch.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Root {
    /// The directory.
    pub dir: PathBuf,
    /// Whether to watch below it too.
    pub recursive: bool,
}

/// Which files count.
pub struct Filter {
    ignore: Gitignore,
    excluded: Vec<PathBuf>,
}

impl Filter {
    /// `.gitignore` and `.ignore` files of the workspace root and the given member
    /// directories, plus `excluded` directories (target dirs) that never count.
    pub fn new(root: &Path, member_dirs: &[PathBuf], excluded: Vec<PathBuf>) -> Filter {
        let mut builder = GitignoreBuilder::new(root);
        for dir in std::iter::once(root).chain(member_dirs.iter().map(|d| d.as_path())) {
            for name in [".gitignore", ".ignore"] {
                let file = dir.join(name);
                if file.is_file() {
                    // A malformed line is skipped, as git does.
                    let _ = builder.add(file);
                }
            }
        }
        let ignore = builder.build().unwrap_or_else(|_| Gitignore::empty());
        Filter { ignore, excluded }
    }

    /// Whether a change to `path` can matter: a Rust source or a manifest, not in a
    /// target or hidden directory, not ignored, not an editor's temporary file.
    pub fn counts(&self, path: &Path) -> bool {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        let relevant = name.ends_with(".rs") || name == "Cargo.toml";
        if !relevant || name.starts_with('.') {
            return false;
        }
        if self.excluded.iter().any(|d| path.starts_with(d)) {
            return false;
        }
        if path.components().any(|c| matches!(c.as_os_str().to_str(), Some("target" | ".git"))) {
            return false;
        }
        !self.ignore.matched_path_or_any_parents(path, false).is_ignore()
    }
}

/// Keeps the watch alive; dropping it stops watching.
pub struct Watcher {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

/// Watches `roots`; sends a [`Batch`] to `send` for every burst that changed content.
///
/// `known` seeds the content hashes (files as they were built), so the first save of
/// an unchanged file is not a change either.
pub fn start(
    roots: &[Root],
    filter: Filter,
    debounce: Duration,
    send: impl Fn(Batch) + Send + 'static,
) -> Result<Watcher> {
    let mut hashes: HashMap<PathBuf, Option<u64>> = HashMap::new();
    for root in roots {
        seed(&root.dir, root.recursive, &filter, &mut hashes);
    }
    let mut debouncer = new_debouncer(debounce, None, move |result: DebounceEventResult| {
        let Ok(events) = result else { return };
        let mut paths = BTreeSet::new();
        let mut first_event: Option<Instant> = None;
        for event in events {
            if matches!(event.kind, EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_))) {
                continue;
            }
            for path in &event.paths {
                if !filter.counts(path) {
                    continue;
                }
                let now = content_hash(path);
                let before = hashes.insert(path.clone(), now);
                if before != Some(now) {
                    paths.insert(path.clone());
                    first_event = Some(first_event.map_or(event.time, |t: Instant| t.min(event.time)));
                }
            }
        }
        if let Some(first_event) = first_event {
            send(Batch { paths, first_event });
        }
    })
    .context("failed to start watching files")?;
    for root in roots {
        let mode = if root.recursive { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
        debouncer.watch(&root.dir, mode).with_context(|| format!("failed to watch {}", root.dir.display()))?;
    }
    Ok(Watcher { _debouncer: debouncer })
}

fn seed(dir: &Path, recursive: bool, filter: &Filter, hashes: &mut HashMap<PathBuf, Option<u64>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() && recursive && !filter.excluded.iter().any(|d| path.starts_with(d)) => {
                seed(&path, true, filter, hashes)
            }
            Ok(t) if t.is_file() && filter.counts(&path) => {
                hashes.insert(path.clone(), content_hash(&path));
            }
            _ => {}
        }
    }
}

/// FNV-1a of the file's bytes; `None` when it cannot be read (deleted).
pub fn content_hash(path: &Path) -> Option<u64> {
    std::fs::read(path).ok().map(|bytes| hotreload_protocol::record::fnv1a(&bytes))
}

/// Directories to watch for a set of member directories and source folders: each
/// member's `src/` (recursively) and its own directory (for `Cargo.toml` and `build.rs`),
/// and each of `extra_dirs` (recursively, unless a member's directory is in it).
pub fn roots(member_dirs: &[PathBuf], extra_dirs: &[PathBuf]) -> Vec<Root> {
    let mut roots = BTreeSet::new();
    for dir in member_dirs {
        roots.insert(Root { dir: dir.clone(), recursive: false });
        let src = dir.join("src");
        if src.is_dir() {
            roots.insert(Root { dir: src, recursive: true });
        }
    }
    for dir in extra_dirs {
        // Not below a folder holding a package (its `target/` may be there).
        let recursive = !member_dirs.iter().any(|m| m.starts_with(dir));
        roots.insert(Root { dir: dir.clone(), recursive });
    }
    // A directory inside a recursive root is already watched.
    let recursive: Vec<PathBuf> = roots.iter().filter(|r| r.recursive).map(|r| r.dir.clone()).collect();
    roots.into_iter().filter(|r| !recursive.iter().any(|d| r.dir.starts_with(d) && r.dir != *d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_counts_sources_and_manifests_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitignore"), "generated/\n*.bak.rs\n").unwrap();
        let target = dir.path().join("target");
        let filter = Filter::new(dir.path(), &[], vec![target.clone()]);
        assert!(filter.counts(&dir.path().join("src/lib.rs")));
        assert!(filter.counts(&dir.path().join("Cargo.toml")));
        assert!(!filter.counts(&dir.path().join("src/lib.rs~")));
        assert!(!filter.counts(&dir.path().join("src/.lib.rs.swp")));
        assert!(!filter.counts(&dir.path().join("README.md")));
        assert!(!filter.counts(&target.join("debug/build/x/out/gen.rs")));
        assert!(!filter.counts(&dir.path().join("crates/a/target/gen.rs")));
        assert!(!filter.counts(&dir.path().join("generated/gen.rs")));
        assert!(!filter.counts(&dir.path().join("src/old.bak.rs")));
    }

    #[test]
    fn roots_inside_recursive_roots_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/src")).unwrap();
        let a = dir.path().join("a");
        let roots = roots(std::slice::from_ref(&a), &[a.join("src/bin")]);
        assert_eq!(
            roots,
            vec![Root { dir: a.clone(), recursive: false }, Root { dir: a.join("src"), recursive: true }]
        );
        // A library's folder outside `src/` is watched below; a package's own folder not.
        let roots = super::roots(std::slice::from_ref(&a), &[a.join("code"), a.clone()]);
        assert_eq!(
            roots,
            vec![
                Root { dir: a.clone(), recursive: false },
                Root { dir: a.join("code"), recursive: true },
                Root { dir: a.join("src"), recursive: true }
            ]
        );
    }

    #[test]
    fn a_save_that_changes_nothing_is_no_batch() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        let file = src.join("lib.rs");
        std::fs::write(&file, "fn a() {}").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let filter = Filter::new(dir.path(), &[], vec![]);
        let _w = start(&[Root { dir: src.clone(), recursive: true }], filter, Duration::from_millis(20), move |b| {
            tx.send(b).unwrap()
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(&file, "fn a() {}").unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(500)).is_err(), "same content must not count");
        // Several writes in a burst, through a rename-over save: one batch.
        for i in 0..3 {
            let tmp = src.join(format!("lib.rs.tmp{i}"));
            std::fs::write(&tmp, format!("fn a() {{ {i} }}")).unwrap();
            std::fs::rename(&tmp, &file).unwrap();
        }
        let batch = rx.recv_timeout(Duration::from_secs(5)).expect("a changed file is a batch");
        assert_eq!(batch.paths.into_iter().collect::<Vec<_>>(), vec![file.clone()]);
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "one burst, one batch");
    }
}
