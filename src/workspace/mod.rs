//! The workspace as cargo sees it: which members are hot, which binary to run.
//!
//! Read with `cargo metadata` ([`Workspace::load`]), or sketched from the manifests
//! alone ([`Workspace::sketch`]) so that the program's build can start before cargo
//! answers.

mod sketch;

use anyhow::{bail, Context, Result};
use cargo_metadata::{DependencyKind, MetadataCommand, Package, TargetKind};
use hotreload_protocol::{RUNTIME_LIB, RUNTIME_PACKAGE};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A workspace member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Package name (`my-crate`).
    pub name: String,
    /// Directory holding its `Cargo.toml`.
    pub dir: PathBuf,
    /// Its library target, if it has one: crate name (`my_crate`) and root file.
    pub lib: Option<(String, PathBuf)>,
    /// Whether it is hot: a library that depends on `hotreload-runtime`.
    pub hot: bool,
    /// How its code names the runtime (`hotreload`, or the manifest's rename).
    pub runtime_name: Option<String>,
    /// Names of the workspace members it depends on.
    pub depends_on: BTreeSet<String>,
    /// Its binaries and examples: `bin` or `example`, target name, root file.
    pub runnables: Vec<(&'static str, String, PathBuf)>,
    /// `default-run`: the binary `cargo run` picks among several.
    pub default_run: Option<String>,
    /// Whether it is a default member, what `cargo run` without `-p` looks at: the
    /// package the command runs in, else `default-members`, else every member.
    pub default_member: bool,
    /// What it calls the runtime among its normal and dev dependencies (its name,
    /// `hotreload-runtime`, or the rename): a binary's hot build turns on its `agent`.
    pub binary_runtime: Option<String>,
}

impl Member {
    /// Where its library's sources are: `src/`, or the library root's folder when
    /// that is elsewhere (see [`Member::lib_dir`]).
    pub fn src_dir(&self) -> PathBuf {
        self.lib_dir().unwrap_or_else(|| self.dir.join("src"))
    }

    /// The folder of its library's root when that is not below `src/` (`[lib] path =
    /// "code/logic.rs"`): its sources are there. Not the package's own folder, which
    /// holds `target/` in a one-package workspace.
    pub fn lib_dir(&self) -> Option<PathBuf> {
        let (_, root) = self.lib.as_ref()?;
        let dir = root.parent()?;
        (!root.starts_with(self.dir.join("src")) && dir.starts_with(&self.dir) && dir != self.dir).then(|| dir.into())
    }

    /// Whether a running program can take new code of its library (see
    /// [`Workspace::reloadable`]).
    pub fn reloadable(&self, entries: bool) -> bool {
        self.lib.is_some() && (self.hot || entries)
    }
}

/// Which of a package's crates a patch job builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrateKind {
    /// Its library.
    Lib,
    /// The binary `run` started: compiled to objects only, and reloaded only by
    /// redirecting entries (nothing links against a binary).
    Bin,
}

/// A crate whose new code a running program can take, as a patch job knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HotCrate {
    /// What the user, the settings and the session call it: the package name
    /// (`my-crate`); for a binary whose package also has a library, `my-crate (bin)`.
    pub package: String,
    /// Library or binary.
    pub kind: CrateKind,
    /// Crate name (`my_crate`): what rustc, symbols and function ids call it.
    pub crate_name: String,
    /// Its root file (`src/lib.rs`, `src/main.rs`).
    pub root: PathBuf,
    /// The folder of its sources (`src/`, see [`Member::src_dir`]), whose files decide
    /// whether a build is still current.
    pub src: PathBuf,
}

impl HotCrate {
    /// What its patches are placed and loaded as, distinct for a package's library and
    /// binary (which share a crate name): the crate name, or `<crate>-bin` (no crate
    /// name holds a `-`).
    pub fn unit(&self) -> String {
        match self.kind {
            CrateKind::Lib => self.crate_name.clone(),
            CrateKind::Bin => format!("{}-bin", self.crate_name),
        }
    }
}

/// The binary `run` builds and starts.
#[derive(Clone, Debug)]
pub struct Binary {
    /// Its package.
    pub package: String,
    /// `bin` or `example`.
    pub kind: &'static str,
    /// Target name.
    pub name: String,
    /// Its root source file.
    pub src: PathBuf,
    /// What its package calls the runtime in `[dependencies]` (`hotreload-runtime`, or
    /// the name it renamed it to); hot builds turn on that dependency's `agent` feature.
    pub runtime: Option<String>,
}

/// What `run` needs to know of the workspace.
#[derive(Debug, PartialEq, Eq)]
pub struct Workspace {
    /// The workspace root.
    pub root: PathBuf,
    /// Cargo's target directory.
    pub target_dir: PathBuf,
    /// Members by package name.
    pub members: BTreeMap<String, Member>,
}

impl Workspace {
    /// Reads the workspace with `cargo metadata --no-deps`, whose target directory is
    /// `target_dir` when given (`--target-dir`, as cargo takes it). Only the members
    /// are read: without the dependency graph cargo neither resolves it nor waits for
    /// the package cache another cargo holds (10–20 ms instead of 25–150 ms on
    /// tokio-rs/mini-redis, on every session's start).
    pub fn load(manifest_path: Option<&Path>, target_dir: Option<&Path>) -> Result<Workspace> {
        let mut command = MetadataCommand::new();
        command.no_deps();
        if let Some(path) = manifest_path {
            command.manifest_path(path);
        }
        if let Some(dir) = target_dir {
            // Relative to where the command runs, as cargo reads it.
            command.env("CARGO_TARGET_DIR", std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()));
        }
        let metadata = command.exec().context("failed to read the workspace with `cargo metadata`")?;
        let member_ids: BTreeSet<_> = metadata.workspace_members.iter().collect();
        let packages: Vec<&Package> = metadata.packages.iter().filter(|p| member_ids.contains(&p.id)).collect();
        let names: BTreeSet<String> = packages.iter().map(|p| p.name.to_string()).collect();
        let members = packages
            .iter()
            .map(|p| {
                let lib = p
                    .targets
                    .iter()
                    .find(|t| {
                        t.kind.iter().any(|k| matches!(k, TargetKind::Lib | TargetKind::RLib | TargetKind::CDyLib))
                    })
                    .map(|t| (t.name.replace('-', "_"), t.src_path.clone().into_std_path_buf()));
                let runtime =
                    p.dependencies.iter().find(|d| d.name == RUNTIME_PACKAGE && d.kind == DependencyKind::Normal);
                let hot = lib.is_some() && runtime.is_some();
                let runtime_name = runtime.map(|d| d.rename.clone().unwrap_or_else(|| RUNTIME_LIB.to_string()));
                let depends_on = p
                    .dependencies
                    .iter()
                    .filter(|d| d.kind == DependencyKind::Normal && names.contains(&d.name) && d.path.is_some())
                    .map(|d| d.name.clone())
                    .collect();
                let mut runnables: Vec<_> = p
                    .targets
                    .iter()
                    .filter_map(|t| {
                        let kind = match () {
                            _ if t.kind.contains(&TargetKind::Bin) => "bin",
                            _ if t.kind.contains(&TargetKind::Example) => "example",
                            _ => return None,
                        };
                        Some((kind, t.name.clone(), t.src_path.clone().into_std_path_buf()))
                    })
                    .collect();
                runnables.sort();
                let binary_runtime = p
                    .dependencies
                    .iter()
                    .find(|d| d.name == RUNTIME_PACKAGE && d.kind != DependencyKind::Build)
                    .map(|d| d.rename.clone().unwrap_or_else(|| d.name.clone()));
                let defaults = &metadata.workspace_default_members;
                let member = Member {
                    default_member: !defaults.is_available() || defaults.contains(&p.id),
                    default_run: p.default_run.clone(),
                    name: p.name.to_string(),
                    dir: p.manifest_path.parent().expect("a manifest has a directory").into(),
                    lib,
                    hot,
                    runtime_name,
                    depends_on,
                    runnables,
                    binary_runtime,
                };
                (member.name.clone(), member)
            })
            .collect();
        Ok(Workspace {
            root: metadata.workspace_root.clone().into_std_path_buf(),
            target_dir: metadata.target_directory.clone().into_std_path_buf(),
            members,
        })
    }

    /// `package`'s library, as a patch job knows it; `None` when it has none.
    pub fn hot_crate(&self, package: &str) -> Option<HotCrate> {
        let member = self.members.get(package)?;
        let (crate_name, root) = member.lib.clone()?;
        Some(HotCrate { package: package.to_string(), kind: CrateKind::Lib, crate_name, src: member.src_dir(), root })
    }

    /// The binary's crate, as a patch job knows it: named after its package, or
    /// `package (bin)` when the package also has a library (which keeps the name); an
    /// example after itself, `hello (example)`.
    pub fn binary_crate(&self, binary: &Binary) -> HotCrate {
        let has_lib = self.members.get(&binary.package).is_some_and(|m| m.lib.is_some());
        let package = match (binary.kind, has_lib) {
            ("example", _) => format!("{} (example)", binary.name),
            (_, true) => format!("{} (bin)", binary.package),
            (_, false) => binary.package.clone(),
        };
        let src = binary.src.parent().map_or_else(|| binary.src.clone(), Path::to_path_buf);
        HotCrate {
            package,
            kind: CrateKind::Bin,
            crate_name: binary.name.replace('-', "_"),
            root: binary.src.clone(),
            src,
        }
    }

    /// The hot members: those depending on the runtime, whose `#[hot]` functions
    /// switch through slots.
    pub fn hot(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|m| m.hot)
    }

    /// The members whose library a running program can take new code of: every one
    /// when changed functions are redirected at their entries (`entries`), else the
    /// hot ones.
    pub fn reloadable(&self, entries: bool) -> impl Iterator<Item = &Member> {
        self.members.values().filter(move |m| m.reloadable(entries))
    }

    /// The member a file belongs to: the one whose directory is the longest prefix.
    pub fn owner_of(&self, path: &Path) -> Option<&Member> {
        self.members.values().filter(|m| path.starts_with(&m.dir)).max_by_key(|m| m.dir.as_os_str().len())
    }

    /// The member with this crate name (`my_crate`).
    pub fn by_crate_name(&self, crate_name: &str) -> Option<&Member> {
        self.members.values().find(|m| m.lib.as_ref().is_some_and(|(c, _)| c == crate_name))
    }

    /// `names` ordered so that every member comes after the members it depends on.
    pub fn dependency_order(&self, names: &BTreeSet<String>) -> Vec<String> {
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        fn visit(ws: &Workspace, name: &str, done: &mut BTreeSet<String>, order: &mut Vec<String>) {
            if !done.insert(name.to_string()) {
                return;
            }
            if let Some(m) = ws.members.get(name) {
                for dep in &m.depends_on {
                    visit(ws, dep, done, order);
                }
            }
            order.push(name.to_string());
        }
        for name in names {
            visit(self, name, &mut done, &mut order);
        }
        order.retain(|n| names.contains(n));
        order
    }

    /// Every workspace member `name` depends on, directly or not.
    pub fn dependencies_of(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![name.to_string()];
        while let Some(n) = stack.pop() {
            if let Some(m) = self.members.get(&n) {
                for dep in &m.depends_on {
                    if seen.insert(dep.clone()) {
                        stack.push(dep.clone());
                    }
                }
            }
        }
        seen
    }

    /// The workspace libraries `binary` depends on, directly or not, that depend on
    /// `hotreload-runtime` (sorted).
    pub fn runtime_users(&self, binary: &Binary) -> Vec<String> {
        let packages = self.dependencies_of(&binary.package).into_iter().chain([binary.package.clone()]);
        packages.filter(|p| self.members.get(p).is_some_and(|m| m.lib.is_some() && m.runtime_name.is_some())).collect()
    }

    /// Every workspace member that depends on `name`, directly or not.
    pub fn dependents_of(&self, name: &str) -> BTreeSet<String> {
        self.members.keys().filter(|m| self.dependencies_of(m).contains(name)).cloned().collect()
    }

    /// `hotreload_protocol::ENV_RUNTIME_NAMES`'s value: how each member's crates name
    /// the runtime in code, by crate name (its library's, and its package's for binaries).
    pub fn runtime_names(&self) -> String {
        let mut pairs = BTreeSet::new();
        for member in self.members.values() {
            let Some(name) = &member.runtime_name else { continue };
            pairs.insert(format!("{}={name}", member.name.replace('-', "_")));
            if let Some((crate_name, _)) = &member.lib {
                pairs.insert(format!("{crate_name}={name}"));
            }
        }
        pairs.into_iter().collect::<Vec<_>>().join(",")
    }

    /// Picks the binary to run, as `cargo run` would: among several, those of the
    /// default members (the package the command runs in, when it runs in one), and of
    /// those the one `default-run` names.
    pub fn binary(&self, package: Option<&str>, bin: Option<&str>, example: Option<&str>) -> Result<Binary> {
        let candidates: Vec<&Member> =
            self.members.values().filter(|m| package.is_none_or(|name| m.name == name)).collect();
        if let Some(name) = package {
            if candidates.is_empty() {
                bail!("package `{name}` is not a member of the workspace at {}", self.root.display());
            }
        }
        let (kind, wanted) = match (bin, example) {
            (_, Some(e)) => ("example", Some(e)),
            (b, None) => ("bin", b),
        };
        let mut found = Vec::new();
        for m in &candidates {
            for (k, name, src) in &m.runnables {
                if *k == kind && wanted.is_none_or(|w| name == w) {
                    found.push(Binary {
                        package: m.name.clone(),
                        kind,
                        name: name.clone(),
                        src: src.clone(),
                        runtime: m.binary_runtime.clone(),
                    });
                }
            }
        }
        // Among several, as `cargo run` narrows them.
        if found.len() > 1 && wanted.is_none() {
            let default = |b: &Binary| package.is_none() && self.members[&b.package].default_member;
            let default_run = |b: &Binary| self.members[&b.package].default_run.as_deref() == Some(b.name.as_str());
            for prefer in [&default as &dyn Fn(&Binary) -> bool, &default_run] {
                if found.iter().any(prefer) {
                    found.retain(prefer);
                }
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => match wanted {
                Some(w) => {
                    let available: Vec<String> = candidates
                        .iter()
                        .flat_map(|m| m.runnables.iter().filter(|(k, ..)| *k == kind))
                        .map(|(_, name, _)| name.clone())
                        .collect();
                    match available.is_empty() {
                        true => bail!("no {kind} target named `{w}` in the selected packages"),
                        false => bail!(
                            "no {kind} target named `{w}` in the selected packages\navailable {kind} targets: {}",
                            available.join(", ")
                        ),
                    }
                }
                None => bail!("no binary to run in the selected packages; pass `-p PACKAGE` or `--bin NAME`"),
            },
            _ => {
                let names: Vec<_> = found.iter().map(|b| format!("{} ({})", b.name, b.package)).collect();
                bail!(
                    "more than one binary could run; pass `--bin NAME` or `-p PACKAGE`\navailable binaries: {}",
                    names.join(", ")
                )
            }
        }
    }
}
