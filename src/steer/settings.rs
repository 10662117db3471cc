//! The session's reload settings — mode, crates to reload, crates to skip — kept in the
//! workspace's `Cargo.toml` where a user can read and commit them:
//!
//! ```toml
//! [workspace.metadata.hotreload]   # or [package.metadata.hotreload] without a [workspace]
//! mode = "explicit"
//! reload = ["logic"]
//! skip = ["render"]
//! ```
//!
//! Edited with `toml_edit`, so the rest of the file keeps its formatting and comments.

use anyhow::{bail, Context, Result};
use hotreload_protocol::control::{CrateMark, Mode};
use std::collections::BTreeSet;
use std::path::Path;
use toml_edit::{DocumentMut, Item, Table};

/// Which hot crates reload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// `off`, `explicit` or `all`.
    pub mode: Mode,
    /// Crates marked with `aimport NAME` (package names).
    pub reload: BTreeSet<String>,
    /// Crates skipped with `aimport -NAME`.
    pub skip: BTreeSet<String>,
}

/// One item of an `aimport` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// `NAME`: reload it (in `explicit` mode), and stop skipping it.
    Reload(String),
    /// `-NAME`: never reload it.
    Skip(String),
}

impl Mark {
    /// The crate named.
    pub fn name(&self) -> &str {
        match self {
            Mark::Reload(n) | Mark::Skip(n) => n,
        }
    }
}

/// Parses `aimport` arguments as IPython does: `a, b` marks both, `-a, b` skips one and
/// marks the other; commas and spaces both separate.
pub fn parse_aimport(args: &[String]) -> Result<Vec<Mark>> {
    let line = args.join(" ");
    let mut marks = Vec::new();
    for token in line.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()) {
        match token.strip_prefix('-') {
            Some("") => bail!("`-` must be followed by a crate name, as in `-logic`"),
            Some(name) => marks.push(Mark::Skip(name.to_string())),
            None => marks.push(Mark::Reload(token.to_string())),
        }
    }
    Ok(marks)
}

impl Settings {
    /// What differs in these settings from `old`, in words (`mode explicit`, `reloads
    /// \`logic\``, `no longer skips \`net\``); `nothing changed (mode all)` when nothing.
    pub fn changes_from(&self, old: &Settings) -> String {
        let listed = |names: Vec<&String>| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let mut changes = Vec::new();
        if self.mode != old.mode {
            changes.push(format!("mode {}", self.mode));
        }
        let sets = [
            (&self.reload, &old.reload, "reloads", "no longer reloads"),
            (&self.skip, &old.skip, "skips", "no longer skips"),
        ];
        for (new, old, added, removed) in sets {
            let gained: Vec<&String> = new.difference(old).collect();
            let lost: Vec<&String> = old.difference(new).collect();
            if !gained.is_empty() {
                changes.push(format!("{added} {}", listed(gained)));
            }
            if !lost.is_empty() {
                changes.push(format!("{removed} {}", listed(lost)));
            }
        }
        match changes.is_empty() {
            true => format!("nothing changed (mode {})", self.mode),
            false => changes.join("; "),
        }
    }

    /// The settings a running session reports in its status.
    pub fn from_status(status: &hotreload_protocol::control::Status) -> Settings {
        let marked =
            |mark: CrateMark| status.crates.iter().filter(|c| c.mark == mark).map(|c| c.name.clone()).collect();
        Settings { mode: status.mode, reload: marked(CrateMark::Reload), skip: marked(CrateMark::Skip) }
    }

    /// Whether changes to `name` are applied without `now`.
    pub fn enabled(&self, name: &str) -> bool {
        match self.mode {
            Mode::Off => false,
            Mode::Explicit => self.reload.contains(name) && !self.skip.contains(name),
            Mode::All => !self.skip.contains(name),
        }
    }

    /// Whether a change to `name` is applied: as [`Settings::enabled`] says, or with
    /// `forced` (`now`) unless it is skipped.
    pub fn allows(&self, name: &str, forced: bool) -> bool {
        if forced {
            !self.skip.contains(name)
        } else {
            self.enabled(name)
        }
    }

    /// Applies `aimport` marks.
    pub fn mark(&mut self, marks: &[Mark]) {
        for mark in marks {
            match mark {
                Mark::Reload(name) => {
                    self.skip.remove(name);
                    self.reload.insert(name.clone());
                }
                Mark::Skip(name) => {
                    self.reload.remove(name);
                    self.skip.insert(name.clone());
                }
            }
        }
    }

    /// IPython's `%aimport` listing: what reloads, then what is skipped.
    pub fn listing(&self) -> String {
        let listed = |names: &BTreeSet<String>| match names.is_empty() {
            true => "(none)".to_string(),
            false => names.iter().cloned().collect::<Vec<_>>().join(" "),
        };
        let reload = match self.mode {
            Mode::All => "all-except-skipped".to_string(),
            Mode::Off => "none (mode is off)".to_string(),
            Mode::Explicit => listed(&self.reload),
        };
        let skip = listed(&self.skip);
        format!("Crates to reload:\n{reload}\n\nCrates to skip:\n{skip}\n")
    }

    /// Reads the settings from a manifest; defaults where it has none.
    pub fn load(manifest: &Path) -> Result<Settings> {
        let text =
            std::fs::read_to_string(manifest).with_context(|| format!("failed to read {}", manifest.display()))?;
        Settings::parse(&text).with_context(|| format!("in {}", manifest.display()))
    }

    /// Reads the settings from a manifest's text.
    pub fn parse(text: &str) -> Result<Settings> {
        let doc: DocumentMut = text.parse().context("not valid TOML")?;
        let mut settings = Settings::default();
        let Some(table) = table_of(&doc) else { return Ok(settings) };
        if let Some(mode) = table.get("mode") {
            let text = mode.as_str().map(str::to_string).or_else(|| mode.as_integer().map(|n| n.to_string()));
            settings.mode = text
                .as_deref()
                .and_then(Mode::parse)
                .with_context(|| format!("`hotreload.mode` must be one of {}", Mode::VALUES))?;
        }
        for (key, set) in [("reload", &mut settings.reload), ("skip", &mut settings.skip)] {
            if let Some(item) = table.get(key) {
                let array =
                    item.as_array().with_context(|| format!("`hotreload.{key}` must be a list of crate names"))?;
                for value in array {
                    set.insert(value.as_str().context("crate names are strings")?.to_string());
                }
            }
        }
        Ok(settings)
    }

    /// Writes the settings into the manifest, keeping everything else as it was.
    pub fn save(&self, manifest: &Path) -> Result<()> {
        let text =
            std::fs::read_to_string(manifest).with_context(|| format!("failed to read {}", manifest.display()))?;
        let updated = self.render_into(&text)?;
        if updated != text {
            write_atomically(manifest, &updated).with_context(|| format!("failed to write {}", manifest.display()))?;
        }
        Ok(())
    }

    /// The manifest text with these settings in it.
    pub fn render_into(&self, text: &str) -> Result<String> {
        let mut doc: DocumentMut = text.parse().context("the manifest is not valid TOML")?;
        let top = if doc.contains_table("workspace") { "workspace" } else { "package" };
        let root = doc.as_table_mut().entry(top).or_insert_with(|| Item::Table(Table::new()));
        let root = root.as_table_mut().context("`workspace`/`package` is not a table")?;
        let metadata = root.entry("metadata").or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        let metadata = metadata.as_table_mut().context("`metadata` is not a table")?;
        let table = metadata.entry("hotreload").or_insert_with(|| Item::Table(Table::new()));
        let table = table.as_table_mut().context("`metadata.hotreload` is not a table")?;
        table["mode"] = toml_edit::value(self.mode.as_str());
        for (key, set) in [("reload", &self.reload), ("skip", &self.skip)] {
            let array: toml_edit::Array = set.iter().map(String::as_str).collect();
            table[key] = toml_edit::value(array);
        }
        Ok(doc.to_string())
    }
}

/// The manifest without its hotreload settings: a change outside them needs a restart.
pub fn without_settings(text: &str) -> String {
    let Ok(mut doc) = text.parse::<DocumentMut>() else { return text.to_string() };
    for top in ["workspace", "package"] {
        if let Some(meta) = doc.get_mut(top).and_then(|t| t.get_mut("metadata")).and_then(Item::as_table_like_mut) {
            meta.remove("hotreload");
        }
    }
    doc.to_string()
}

fn table_of(doc: &DocumentMut) -> Option<&dyn toml_edit::TableLike> {
    ["workspace", "package"].iter().find_map(|top| doc.get(top)?.get("metadata")?.get("hotreload")?.as_table_like())
}

/// Removes temporary files `prefix<pid>` in `dir` whose writer is gone (killed between
/// writing and renaming).
fn remove_abandoned(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !crate::lockfile::process_exists(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Replaces `path`'s contents with `text` so that a crash at any moment leaves either
/// the old file or the new one, never a truncated one: the text goes to a temporary
/// file beside it (same directory, so the same file system), is flushed to disk, and is
/// renamed over it. The file's permissions are kept.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}.hotreload-");
    remove_abandoned(dir, &prefix);
    let temporary = dir.join(format!("{prefix}{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&temporary, meta.permissions())?;
        }
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_said_as_what_changed() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<BTreeSet<String>>();
        let old = Settings { mode: Mode::Explicit, reload: names(&["a"]), skip: names(&["z"]) };
        let marked = Settings { reload: names(&["a", "b"]), ..old.clone() };
        assert_eq!(marked.changes_from(&old), "reloads `b`");
        let new = Settings { mode: Mode::All, reload: names(&[]), skip: names(&["y"]) };
        assert_eq!(new.changes_from(&old), "mode all; no longer reloads `a`; skips `y`; no longer skips `z`");
        assert_eq!(old.changes_from(&old), "nothing changed (mode explicit)");
    }

    #[test]
    fn a_manifest_is_replaced_whole_and_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(&manifest, "# kept\n[workspace]\nmembers = []\n").unwrap();
        std::fs::set_permissions(&manifest, std::fs::Permissions::from_mode(0o640)).unwrap();
        let settings = Settings { mode: Mode::Explicit, ..Settings::default() };
        settings.save(&manifest).unwrap();
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(text.starts_with("# kept\n[workspace]") && text.contains("mode = \"explicit\""), "{text}");
        let mode = std::fs::metadata(&manifest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["Cargo.toml"], "no temporary file is left behind");
    }

    #[test]
    fn now_applies_all_but_skipped_whatever_the_mode() {
        let mut settings = Settings { mode: Mode::Off, ..Settings::default() };
        settings.skip.insert("beta".into());
        assert!(!settings.allows("alpha", false) && settings.allows("alpha", true));
        assert!(!settings.allows("beta", true));
        settings.mode = Mode::Explicit;
        settings.reload.insert("alpha".into());
        assert!(settings.allows("alpha", false) && !settings.allows("gamma", false));
        settings.mode = Mode::All;
        assert!(settings.allows("gamma", false) && !settings.allows("beta", false));
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn aimport_lines_mix_marks_and_skips() {
        assert_eq!(
            parse_aimport(&names(&["-os,", "math"])).unwrap(),
            [Mark::Skip("os".into()), Mark::Reload("math".into())]
        );
        assert_eq!(
            parse_aimport(&names(&["logic,", "physics"])).unwrap(),
            [Mark::Reload("logic".into()), Mark::Reload("physics".into())]
        );
        assert_eq!(parse_aimport(&names(&["-a,b"])).unwrap(), [Mark::Skip("a".into()), Mark::Reload("b".into())]);
        assert!(parse_aimport(&names(&["-"])).is_err());
        assert!(parse_aimport(&[]).unwrap().is_empty());
    }

    #[test]
    fn marks_and_modes_decide_what_reloads() {
        let mut s = Settings::default();
        assert!(s.enabled("a"));
        s.mark(&[Mark::Skip("a".into())]);
        assert!(!s.enabled("a") && s.enabled("b"));
        s.mode = Mode::Explicit;
        assert!(!s.enabled("b"));
        s.mark(&[Mark::Reload("a".into())]);
        assert!(s.enabled("a") && !s.skip.contains("a"));
        s.mode = Mode::Off;
        assert!(!s.enabled("a"));
        assert_eq!(
            Settings { mode: Mode::Explicit, reload: ["x".into()].into(), skip: ["y".into()].into() }.listing(),
            "Crates to reload:\nx\n\nCrates to skip:\ny\n"
        );
        // Nothing marked: said, not an empty heading.
        assert_eq!(
            Settings { mode: Mode::Explicit, ..Settings::default() }.listing(),
            "Crates to reload:\n(none)\n\nCrates to skip:\n(none)\n"
        );
    }

    #[test]
    fn settings_round_trip_and_keep_the_rest_of_the_file() {
        let manifest =
            "# my workspace\n[workspace]\nmembers = [\"a\"]  # the members\n\n[workspace.dependencies]\nx = \"1\"\n";
        let settings = Settings { mode: Mode::Explicit, reload: ["a".into()].into(), skip: ["b".into()].into() };
        let written = settings.render_into(manifest).unwrap();
        assert!(written.starts_with(manifest), "{written}");
        assert!(written.contains("[workspace.metadata.hotreload]"), "{written}");
        assert_eq!(Settings::parse(&written).unwrap(), settings);
        assert_eq!(without_settings(&written).trim_end(), without_settings(manifest).trim_end());
        // Without a [workspace] table, the package's metadata.
        let package = "[package]\nname = \"p\"\nversion = \"0.1.0\"\n";
        let written = Settings::default().render_into(package).unwrap();
        assert!(written.contains("[package.metadata.hotreload]"), "{written}");
        assert_eq!(Settings::parse(&written).unwrap(), Settings::default());
        assert!(Settings::parse("[workspace.metadata.hotreload]\nmode = \"sometimes\"\n").is_err());
        assert_eq!(Settings::parse("[workspace.metadata.hotreload]\nmode = 1\n").unwrap().mode, Mode::Explicit);
    }
}
