//! The workspace read from its manifests alone, without a cargo process (well under a
//! millisecond, where `cargo metadata` takes 13–20 ms): enough to start the program's
//! build while cargo answers.
//!
//! It follows cargo's common rules only: members listed in `[workspace] members`
//! (expanded with the `glob` crate, as cargo does) less `exclude`, path dependencies
//! inside the root, the root package; targets declared or found at cargo's automatic
//! places; dependencies by name, `package =` renames and `workspace = true`. Anything
//! else gives up (`None`). A sketch is never trusted: a build started from it is kept
//! only when the workspace `cargo metadata` reads asks for the very same command (see
//! `crate::build::Speculation`).

use super::{Member, Workspace};
use hotreload_protocol::{RUNTIME_LIB, RUNTIME_PACKAGE};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item, Table};

impl Workspace {
    /// Sketches the workspace whose manifest is `manifest_path` (else the one cargo
    /// would find from the current directory); cargo's target directory is `target_dir`
    /// (`--target-dir`), else `CARGO_TARGET_DIR` (or `CARGO_BUILD_TARGET_DIR`), else
    /// `build.target-dir` of cargo's configuration files, else `target` below the root.
    /// `None` when the manifests use what the sketch does not follow.
    pub fn sketch(manifest_path: Option<&Path>, target_dir: Option<&Path>) -> Option<Workspace> {
        let cwd = std::env::current_dir().ok()?;
        let start = match manifest_path {
            Some(path) => normal(&cwd.join(path)),
            None => cwd.ancestors().map(|d| d.join("Cargo.toml")).find(|m| m.is_file())?,
        };
        let start_doc = read(&start)?;
        let (root_manifest, root_doc) = match start_doc.get("workspace") {
            Some(_) => (start.clone(), start_doc.clone()),
            None if package(&start_doc)?.get("workspace").is_some() => return None,
            // A package the enclosing workspace excludes is a workspace of its own.
            None => enclosing_workspace(&start).unwrap_or_else(|| (start.clone(), start_doc.clone())),
        };
        let root = root_manifest.parent()?.to_path_buf();
        let manifests = member_manifests(&root, &root_doc)?;
        if start != root_manifest && !manifests.contains_key(start.parent()?) {
            return None;
        }
        let workspace = root_doc.get("workspace");
        let inherited = workspace.and_then(|w| w.get("dependencies")).and_then(Item::as_table_like);
        let edition = workspace.and_then(|w| w.get("package")?.get("edition")?.as_str());
        let names: BTreeSet<String> = manifests
            .values()
            .map(|doc| Some(package(doc)?.get("name")?.as_str()?.to_string()))
            .collect::<Option<_>>()?;
        let defaults = default_members(&root, &root_doc, start.parent()?)?;
        let members = manifests
            .iter()
            .map(|(dir, doc)| {
                let mut member = member(dir, doc, &Dependencies { doc, inherited, edition }, &names)?;
                member.default_member = defaults.as_ref().is_none_or(|d| d.contains(dir));
                Some((member.name.clone(), member))
            })
            .collect::<Option<BTreeMap<_, _>>>()?;
        let target_dir = match (target_dir, env_target_dir()?) {
            // As `Workspace::load` hands `--target-dir` to cargo.
            (Some(dir), _) => std::path::absolute(dir).ok()?,
            (None, Some(dir)) => cwd.join(dir),
            (None, None) => config_target_dir(&cwd)?.unwrap_or_else(|| root.join("target")),
        };
        Some(Workspace { root, target_dir, members })
    }
}

/// A manifest, parsed; `None` if it cannot be read or parsed (cargo will say why).
fn read(path: &Path) -> Option<DocumentMut> {
    std::fs::read_to_string(path).ok()?.parse().ok()
}

/// Its `[package]` table.
fn package(doc: &DocumentMut) -> Option<&Table> {
    doc.get("package")?.as_table()
}

/// `CARGO_TARGET_DIR`, else `CARGO_BUILD_TARGET_DIR`: `Some(None)` when neither is
/// set; `None` when the one that is set is empty (cargo refuses it).
fn env_target_dir() -> Option<Option<PathBuf>> {
    let set = ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"].into_iter().find_map(std::env::var_os);
    match set {
        Some(dir) if dir.is_empty() => None,
        dir => Some(dir.map(PathBuf::from)),
    }
}

/// `build.target-dir` as cargo's configuration files set it, the nearest to `cwd`
/// first, then `$CARGO_HOME`'s (relative to the directory holding `.cargo`): `Some(None)`
/// when none sets it; `None` when a file cannot be read.
fn config_target_dir(cwd: &Path) -> Option<Option<PathBuf>> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(std::env::var_os("HOME")?).join(".cargo")));
    let dirs = cwd.ancestors().map(|d| d.join(".cargo")).chain(home);
    for dir in dirs {
        for name in ["config", "config.toml"] {
            let file = dir.join(name);
            if !file.is_file() {
                continue;
            }
            let doc = read(&file)?;
            if let Some(value) = doc.get("build").and_then(|b| b.get("target-dir")) {
                return Some(Some(dir.parent()?.join(value.as_str()?)));
            }
            // Of `config` and `config.toml`, cargo reads the first.
            break;
        }
    }
    Some(None)
}

/// The nearest manifest above `package_manifest`'s directory with a `[workspace]`
/// that does not exclude it (cargo looks further up past one that does).
fn enclosing_workspace(package_manifest: &Path) -> Option<(PathBuf, DocumentMut)> {
    let dir = package_manifest.parent()?;
    dir.ancestors().skip(1).map(|d| d.join("Cargo.toml")).filter(|m| m.is_file()).find_map(|m| {
        let doc = read(&m)?;
        (doc.get("workspace").is_some() && !excluded(&m, &doc, dir)).then_some((m, doc))
    })
}

/// The default members' directories, as `cargo metadata` lists them for a command
/// that names `start`: the package of `start` when it is a member's, else
/// `default-members`, else the root package alone when there is one; `Some(None)`:
/// every member; `None` when a pattern is a glob.
fn default_members(root: &Path, root_doc: &DocumentMut, start: &Path) -> Option<Option<BTreeSet<PathBuf>>> {
    if start != root {
        return Some(Some(BTreeSet::from([start.to_path_buf()])));
    }
    match root_doc.get("workspace").and_then(|w| w.get("default-members")) {
        Some(item) => {
            let dirs = item.as_array()?.iter().map(|v| v.as_str().filter(|p| !p.contains(['*', '?', '['])));
            Some(Some(dirs.map(|p| Some(normal(&root.join(p?)))).collect::<Option<_>>()?))
        }
        None if package(root_doc).is_some() => Some(Some(BTreeSet::from([root.to_path_buf()]))),
        None => Some(None),
    }
}

/// Whether the workspace of `root_manifest` excludes `dir`.
fn excluded(root_manifest: &Path, root_doc: &DocumentMut, dir: &Path) -> bool {
    let Some(root) = root_manifest.parent() else { return false };
    exclude_dirs(root, root_doc).unwrap_or_default().iter().any(|e| dir.starts_with(e))
}

/// The folders `[workspace] exclude` names, below `root`; `None` when one is not a
/// string.
fn exclude_dirs(root: &Path, root_doc: &DocumentMut) -> Option<Vec<PathBuf>> {
    let Some(exclude) = root_doc.get("workspace").and_then(|w| w.get("exclude")) else { return Some(Vec::new()) };
    exclude.as_array()?.iter().map(|e| Some(normal(&root.join(e.as_str()?)))).collect()
}

/// The dependency `key` as `spec` gives it, or for `workspace = true` as
/// `[workspace.dependencies]` does, and whether it was inherited (its `path` is then the
/// root's).
fn inherit<'a>(key: &str, spec: &'a Item, inherited: Option<&'a dyn toml_edit::TableLike>) -> (&'a Item, bool) {
    match spec.get("workspace").and_then(|w| w.as_bool()) {
        Some(true) => inherited.and_then(|t| t.get(key)).map_or((spec, false), |i| (i, true)),
        _ => (spec, false),
    }
}

/// Every member's directory and manifest: `members` expanded, less `exclude`, with the
/// root package and the path dependencies inside the root; `None` for a pattern the
/// sketch does not follow or a member without a manifest.
fn member_manifests(root: &Path, root_doc: &DocumentMut) -> Option<BTreeMap<PathBuf, DocumentMut>> {
    let Some(workspace) = root_doc.get("workspace") else {
        return Some(BTreeMap::from([(root.to_path_buf(), root_doc.clone())]));
    };
    let excluded = exclude_dirs(root, root_doc)?;
    let inherited = workspace.get("dependencies").and_then(Item::as_table_like);
    let mut dirs = BTreeSet::new();
    let members = match workspace.get("members") {
        None => Vec::new(),
        Some(item) => item.as_array()?.iter().map(|v| v.as_str()).collect::<Option<Vec<_>>>()?,
    };
    for pattern in members {
        let full = root.join(pattern);
        match pattern.contains(['*', '?', '[']) {
            // What a glob finds, `exclude` takes out (and files are no packages); a
            // member listed by name stays one.
            true => {
                let found: Vec<PathBuf> = glob::glob(full.to_str()?).ok()?.collect::<Result<_, _>>().ok()?;
                let found = found.iter().filter(|p| p.is_dir()).map(|p| normal(p));
                dirs.extend(found.filter(|p| !excluded.iter().any(|e| p.starts_with(e))));
            }
            false => {
                dirs.insert(normal(&full));
            }
        }
    }
    if package(root_doc).is_some() {
        dirs.insert(root.to_path_buf());
    }
    // Path dependencies inside the root are members too, transitively.
    let mut manifests = BTreeMap::new();
    let mut todo: Vec<PathBuf> = dirs.iter().cloned().collect();
    while let Some(dir) = todo.pop() {
        let doc = if dir == root { root_doc.clone() } else { read(&dir.join("Cargo.toml"))? };
        for table in dependency_tables(&doc, &["dependencies", "dev-dependencies", "build-dependencies"]) {
            for (key, spec) in table.iter() {
                let (spec, from_root) = inherit(key, spec, inherited);
                let Some(path) = spec.get("path").and_then(|p| p.as_str()) else { continue };
                let dep = normal(&if from_root { root } else { &dir }.join(path));
                if dep.starts_with(root) && !excluded.iter().any(|e| dep.starts_with(e)) && dirs.insert(dep.clone()) {
                    todo.push(dep);
                }
            }
        }
        manifests.insert(dir, doc);
    }
    Some(manifests)
}

/// `path` with `.` and `..` taken out, as cargo lists members' directories.
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The tables named `kinds` of a manifest, plain and under each `[target.'…']`.
fn dependency_tables<'a>(doc: &'a DocumentMut, kinds: &'a [&'a str]) -> Vec<&'a dyn toml_edit::TableLike> {
    let mut tables: Vec<&dyn toml_edit::TableLike> = Vec::new();
    let mut add = |holder: &'a dyn toml_edit::TableLike| {
        for kind in kinds {
            // cargo still reads `dev_dependencies` and `build_dependencies`.
            let keys = BTreeSet::from([kind.to_string(), kind.replace('-', "_")]);
            tables.extend(keys.iter().filter_map(|key| holder.get(key)?.as_table_like()));
        }
    };
    add(doc.as_table());
    if let Some(targets) = doc.get("target").and_then(Item::as_table_like) {
        for (_, target) in targets.iter() {
            if let Some(t) = target.as_table_like() {
                add(t);
            }
        }
    }
    tables
}

/// A member's dependencies, with `[workspace.dependencies]` for `workspace = true`.
struct Dependencies<'a> {
    doc: &'a DocumentMut,
    inherited: Option<&'a dyn toml_edit::TableLike>,
    /// `[workspace.package] edition`, for `edition.workspace = true`.
    edition: Option<&'a str>,
}

impl Dependencies<'_> {
    /// Each dependency of `kinds` as (the name its code uses, its package, whether it
    /// has a `path`).
    fn of(&self, kinds: &[&str]) -> Vec<(String, String, bool)> {
        let mut out = Vec::new();
        for table in dependency_tables(self.doc, kinds) {
            for (key, spec) in table.iter() {
                let (spec, _) = inherit(key, spec, self.inherited);
                let package = spec.get("package").and_then(|p| p.as_str()).unwrap_or(key).to_string();
                out.push((key.to_string(), package, spec.get("path").is_some()));
            }
        }
        out
    }
}

/// A member as [`Workspace::load`] describes it, from its manifest.
fn member(dir: &Path, doc: &DocumentMut, deps: &Dependencies, members: &BTreeSet<String>) -> Option<Member> {
    let pkg = package(doc)?;
    let name = pkg.get("name")?.as_str()?.to_string();
    let lib = lib(dir, doc, &name, pkg.get("autolib").and_then(|v| v.as_bool()).unwrap_or(true))?;
    let normal = deps.of(&["dependencies"]);
    let runtime = normal.iter().find(|(_, p, _)| p == RUNTIME_PACKAGE);
    let runtime_name = runtime.map(|(key, p, _)| if key == p { RUNTIME_LIB.to_string() } else { key.clone() });
    let depends_on = normal.iter().filter(|(_, p, path)| *path && members.contains(p)).map(|(_, p, _)| p.clone());
    let binary_runtime = deps
        .of(&["dependencies", "dev-dependencies"])
        .into_iter()
        .find(|(_, p, _)| p == RUNTIME_PACKAGE)
        .map(|(key, _, _)| key);
    // Edition 2015 finds no target of a kind when any is declared.
    let edition = match pkg.get("edition") {
        Some(e) if e.get("workspace").and_then(|w| w.as_bool()) == Some(true) => deps.edition?,
        Some(e) => e.as_str()?,
        None => "2015",
    };
    let auto = |key: &str, kind: &str| match pkg.get(key) {
        Some(v) => v.as_bool(),
        None => Some(edition != "2015" || doc.get(kind).is_none()),
    };
    let mut runnables = targets(dir, doc, "bin", &name, auto("autobins", "bin")?)?;
    runnables.extend(targets(dir, doc, "example", &name, auto("autoexamples", "example")?)?);
    runnables.sort();
    let default_run = match pkg.get("default-run") {
        Some(v) => Some(v.as_str()?.to_string()),
        None => None,
    };
    Some(Member {
        hot: lib.is_some() && runtime.is_some(),
        default_run,
        default_member: true,
        lib,
        runtime_name,
        depends_on: depends_on.collect(),
        runnables,
        binary_runtime,
        dir: dir.to_path_buf(),
        name,
    })
}

/// The library target as [`Workspace::load`] keeps it (a `lib`, `rlib` or `cdylib`):
/// `Some(None)` when there is none; `None` when the sketch cannot tell.
fn lib(dir: &Path, doc: &DocumentMut, package: &str, auto: bool) -> Option<Option<(String, PathBuf)>> {
    let table = doc.get("lib");
    let path = match table.and_then(|t| t.get("path")) {
        Some(p) => dir.join(p.as_str()?),
        None => dir.join("src/lib.rs"),
    };
    if table.is_none() && !(auto && path.is_file()) {
        return Some(None);
    }
    let proc_macro = ["proc-macro", "proc_macro"]
        .iter()
        .any(|k| table.and_then(|t| t.get(k)).and_then(|v| v.as_bool()) == Some(true));
    let kept = match table.and_then(|t| t.get("crate-type").or_else(|| t.get("crate_type"))) {
        Some(types) => types.as_array()?.iter().any(|t| matches!(t.as_str(), Some("lib" | "rlib" | "cdylib"))),
        None => !proc_macro,
    };
    let name = match table.and_then(|t| t.get("name")) {
        Some(n) => n.as_str()?.to_string(),
        None => package.replace('-', "_"),
    };
    Some(kept.then_some((name, path)))
}

/// The `bin` or `example` targets: declared (`[[bin]]`), and found where cargo looks
/// (`src/main.rs`, `src/bin/*.rs`, `src/bin/*/main.rs`; `examples/…` alike) unless
/// `auto` is off. `None` when the sketch cannot tell.
fn targets(
    dir: &Path,
    doc: &DocumentMut,
    kind: &'static str,
    package: &str,
    auto: bool,
) -> Option<Vec<(&'static str, String, PathBuf)>> {
    let folder = if kind == "bin" { dir.join("src/bin") } else { dir.join("examples") };
    // Where cargo finds targets: also where a declared one without a `path` is.
    let mut inferred: BTreeMap<String, PathBuf> = BTreeMap::new();
    if kind == "bin" && dir.join("src/main.rs").is_file() {
        inferred.insert(package.to_string(), dir.join("src/main.rs"));
    }
    for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = path.file_stem()?.to_str()?.to_string();
        if path.extension().is_some_and(|e| e == "rs") && path.is_file() {
            inferred.insert(name, path);
        } else if path.join("main.rs").is_file() {
            inferred.insert(name, path.join("main.rs"));
        }
    }
    let mut found = if auto { inferred.clone() } else { BTreeMap::new() };
    let declared = match doc.get(kind) {
        None => Vec::new(),
        Some(item) => item.as_array_of_tables()?.iter().collect(),
    };
    let mut out = Vec::new();
    for table in declared {
        let name = table.get("name")?.as_str()?.to_string();
        let path = match table.get("path") {
            Some(p) => dir.join(p.as_str()?),
            None => inferred
                .get(&name)
                .cloned()
                .or_else(|| (kind == "bin" && name == package).then(|| dir.join("src/main.rs")))?,
        };
        // A declared target takes the place of the one found at its path.
        found.retain(|n, p| *n != name && *p != path);
        out.push((kind, name, path));
    }
    out.extend(found.into_iter().map(|(name, path)| (kind, name, path)));
    out.sort();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn a_sketch_finds_members_targets_and_the_runtime_as_cargo_does() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        write(
            &root,
            &[
                (
                    "Cargo.toml",
                    "[workspace]\nmembers = [\"crates/*\", \"app\"]\nexclude = [\"crates/skip\"]\n\
                     [workspace.dependencies]\nhr = { package = \"hotreload-runtime\", version = \"0.1\" }\n",
                ),
                ("app/Cargo.toml", "[package]\nname = \"app\"\nedition = \"2021\"\n[dependencies]\nlogic-core = { path = \"../crates/logic\" }\nextra = { path = \"../extra\" }\n[[bin]]\nname = \"tool\"\npath = \"src/tool.rs\"\n"),
                ("app/src/main.rs", ""),
                ("app/src/tool.rs", ""),
                ("app/src/bin/second.rs", ""),
                ("app/examples/demo/main.rs", ""),
                ("crates/logic/Cargo.toml", "[package]\nname = \"logic-core\"\n[dependencies]\nhr.workspace = true\n"),
                ("crates/logic/src/lib.rs", ""),
                ("crates/skip/Cargo.toml", "[package]\nname = \"skip\"\n"),
                ("extra/Cargo.toml", "[package]\nname = \"extra\"\n[lib]\nproc-macro = true\n[[bin]]\nname = \"x\"\npath = \"x.rs\"\n"),
                ("extra/x.rs", ""),
                ("extra/src/main.rs", ""),
                ("extra/src/lib.rs", ""),
            ],
        );
        let ws = Workspace::sketch(Some(&root.join("app/Cargo.toml")), None).unwrap();
        assert_eq!(ws.root, root);
        assert_eq!(ws.target_dir, root.join("target"));
        assert_eq!(ws.members.keys().collect::<Vec<_>>(), ["app", "extra", "logic-core"]);
        let logic = &ws.members["logic-core"];
        assert_eq!(logic.lib, Some(("logic_core".into(), root.join("crates/logic/src/lib.rs"))));
        assert_eq!(logic.runtime_name.as_deref(), Some("hr"));
        assert!(logic.hot);
        assert_eq!(ws.members["extra"].lib, None, "a proc-macro is not a library a program links");
        let app = &ws.members["app"];
        assert_eq!(app.depends_on, BTreeSet::from(["extra".to_string(), "logic-core".to_string()]));
        let runnables: Vec<_> = app
            .runnables
            .iter()
            .map(|(k, n, p)| (*k, n.as_str(), p.strip_prefix(&root).unwrap().to_str().unwrap()))
            .collect();
        assert_eq!(
            runnables,
            [
                ("bin", "app", "app/src/main.rs"),
                ("bin", "second", "app/src/bin/second.rs"),
                ("bin", "tool", "app/src/tool.rs"),
                ("example", "demo", "app/examples/demo/main.rs")
            ]
        );
        assert_eq!(ws.binary(None, Some("second"), None).unwrap().package, "app");
        assert_eq!(Workspace::load(Some(&root.join("app/Cargo.toml")), None).unwrap(), ws);
    }

    #[test]
    fn every_fixture_sketches_as_cargo_metadata_reads_it() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        fn copy(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for entry in std::fs::read_dir(from).unwrap().flatten() {
                let (path, name) = (entry.path(), entry.file_name());
                match path.is_dir() {
                    true if name != "target" => copy(&path, &to.join(name)),
                    true => {}
                    // The runtime's path, as the tests' harness rewrites it.
                    false => {
                        let runtime = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/hotreload");
                        let text = std::fs::read_to_string(&path).unwrap();
                        let text =
                            text.replace("\"../../crates/hotreload\"", &format!("{:?}", runtime.display().to_string()));
                        std::fs::write(to.join(name), text).unwrap();
                    }
                }
            }
        }
        let mut compared = 0;
        for entry in std::fs::read_dir(fixtures).unwrap() {
            // Outside this repository's workspace, as the tests run them.
            let dir = tempfile::tempdir().unwrap();
            let work = dir.path().canonicalize().unwrap().join("ws");
            copy(&entry.unwrap().path(), &work);
            let manifest = work.join("Cargo.toml");
            // `realworld` gets its vendored dependencies when its test copies it.
            let Ok(loaded) = Workspace::load(Some(&manifest), None) else { continue };
            assert_eq!(Workspace::sketch(Some(&manifest), None).as_ref(), Some(&loaded), "{}", manifest.display());
            compared += 1;
        }
        assert!(compared >= 11, "only {compared} fixtures read");
    }

    #[test]
    fn a_package_its_enclosing_workspace_excludes_is_a_workspace_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        write(
            &root,
            &[
                ("Cargo.toml", "[workspace]\nmembers = [\"a\"]\nexclude = [\"tools\"]\n"),
                ("a/Cargo.toml", "[package]\nname = \"a\"\n"),
                ("a/src/lib.rs", ""),
                ("tools/t/Cargo.toml", "[package]\nname = \"t\"\nedition = \"2021\"\n"),
                ("tools/t/src/main.rs", "fn main() {}\n"),
            ],
        );
        let manifest = root.join("tools/t/Cargo.toml");
        let sketch = Workspace::sketch(Some(&manifest), None).unwrap();
        assert_eq!(sketch.root, root.join("tools/t"));
        assert_eq!(Workspace::load(Some(&manifest), None).unwrap(), sketch);
    }

    /// Asserts the sketch of `manifest` is what `cargo metadata` reads.
    fn same_as_cargo(manifest: &Path) {
        let loaded = Workspace::load(Some(manifest), None).map_err(|e| format!("{e:#}")).unwrap();
        assert_eq!(Workspace::sketch(Some(manifest), None), Some(loaded), "{}", manifest.display());
    }

    /// Layouts a new user's trial found the sketch reading otherwise than cargo.
    #[test]
    fn workspaces_a_trial_found_read_as_cargo_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let lib = |name: &str| format!("[package]\nname = \"{name}\"\nedition = \"2021\"\n");
        write(
            &root,
            &[
                // A member only through `[workspace.dependencies]`'s path.
                (
                    "p/Cargo.toml",
                    "[workspace]\nmembers = [\"app\"]\n[workspace.dependencies]\nlogic = { path = \"logic\" }\n",
                ),
                ("p/app/Cargo.toml", &(lib("app") + "[dependencies]\nlogic.workspace = true\n")),
                ("p/app/src/main.rs", ""),
                ("p/logic/Cargo.toml", &lib("logic")),
                ("p/logic/src/lib.rs", ""),
                // Members listed by name inside an excluded folder; a file beside globbed packages.
                ("g/Cargo.toml", "[workspace]\nmembers = [\"crates/a\", \"more/*\"]\nexclude = [\"crates\"]\n"),
                ("g/crates/a/Cargo.toml", &lib("a")),
                ("g/crates/a/src/lib.rs", ""),
                ("g/more/b/Cargo.toml", &lib("b")),
                ("g/more/b/src/lib.rs", ""),
                ("g/more/README.md", ""),
                // A nested workspace excluding the package: cargo looks further up.
                ("h/Cargo.toml", "[workspace]\nmembers = [\"inner/tools/t\"]\n"),
                ("h/inner/Cargo.toml", "[workspace]\nmembers = []\nexclude = [\"tools\"]\n"),
                ("h/inner/tools/t/Cargo.toml", &lib("t")),
                ("h/inner/tools/t/src/main.rs", ""),
                // `default-members` picks among two binaries.
                ("w/Cargo.toml", "[workspace]\nmembers = [\"x\", \"y\"]\ndefault-members = [\"y\"]\n"),
                ("w/x/Cargo.toml", &lib("x")),
                ("w/x/src/main.rs", ""),
                ("w/y/Cargo.toml", &lib("y")),
                ("w/y/src/main.rs", ""),
                // Edition 2015, a declared bin without a path; `default-run`.
                ("n/Cargo.toml", "[package]\nname = \"n\"\ndefault-run = \"tool\"\n[[bin]]\nname = \"tool\"\n"),
                ("n/src/bin/tool.rs", ""),
                ("n/src/main.rs", ""),
            ],
        );
        for manifest in ["p/Cargo.toml", "g/Cargo.toml", "h/inner/tools/t/Cargo.toml", "n/Cargo.toml", "w/Cargo.toml"] {
            same_as_cargo(&root.join(manifest));
        }
        // `..` in the path given, as cargo takes it out.
        same_as_cargo(&root.join("g/more/../Cargo.toml"));
        assert_eq!(
            Workspace::sketch(Some(&root.join("h/inner/tools/t/Cargo.toml")), None).unwrap().root,
            root.join("h")
        );
        let n = Workspace::sketch(Some(&root.join("n/Cargo.toml")), None).unwrap();
        assert_eq!(n.binary(None, None, None).unwrap().name, "tool", "default-run picks among several");
        let w = Workspace::sketch(Some(&root.join("w/Cargo.toml")), None).unwrap();
        assert_eq!(w.binary(None, None, None).unwrap().name, "y", "so do the default members");
        // From a member, that member is the default (`cargo run` in its directory).
        same_as_cargo(&root.join("w/x/Cargo.toml"));
        let x = Workspace::sketch(Some(&root.join("w/x/Cargo.toml")), None).unwrap();
        assert_eq!(x.binary(None, None, None).unwrap().name, "x");
    }

    #[test]
    fn a_sketch_gives_up_on_what_it_does_not_follow() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        write(
            &root,
            &[("Cargo.toml", "[package]\nname = \"a\"\nworkspace = \"..\"\n"), ("b/Cargo.toml", "not toml [")],
        );
        assert!(Workspace::sketch(Some(&root.join("Cargo.toml")), None).is_none());
        assert!(Workspace::sketch(Some(&root.join("b/Cargo.toml")), None).is_none());
    }
}
