//! A session's start: the program's build begins from a sketch of the workspace while
//! `cargo metadata` reads it ([`Early`]), and is kept when the two agree.

use super::{hot_target_dir, RestartFiles};
use crate::build::{Features, Profile, Speculation};
use crate::cli::{GlobalArgs, RunArgs};
use crate::detect::Sources;
use crate::error::Error;
use crate::workspace::{Binary, Workspace};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What the program's build is run from, as a workspace gives it.
pub(super) struct ProgramPlan {
    pub binary: Binary,
    pub profile: Profile,
    pub features: Features,
}

impl ProgramPlan {
    /// The binary the command line selects in `ws`, and how it is built. Every way to
    /// fail is a selection the workspace cannot satisfy ([`Error::Usage`]).
    pub fn new(ws: &Workspace, global: &GlobalArgs, args: &RunArgs) -> Result<ProgramPlan, Error> {
        let binary = ws
            .binary(args.package.as_deref(), args.bin.as_deref(), args.example.as_deref())
            .map_err(|e| Error::Usage(format!("{e:#}")))?;
        let profile = Profile {
            manifest_path: global.manifest_path.clone().unwrap_or_else(|| ws.root.join("Cargo.toml")),
            target_dir: hot_target_dir(ws),
            cargo_target_dir: ws.target_dir.clone(),
            release: args.release,
            members: ws.members.keys().cloned().collect(),
            runtime_names: ws.runtime_names(),
        };
        let features = Features {
            features: args.features.clone(),
            all: args.all_features,
            no_default: args.no_default_features,
            runtime: binary.runtime.clone(),
        };
        Ok(ProgramPlan { binary, profile, features })
    }

    /// The executable's kind and name, as the build takes them.
    pub fn target(&self) -> (&str, &str) {
        (self.binary.kind, &self.binary.name)
    }
}

/// The program's build, started from the workspace's sketch, and what the sources were
/// just before it started.
pub(super) struct Early {
    pub build: Speculation,
    /// Each sketched member's sources folder, and the binary's, as read just before the
    /// build started, by folder.
    pub sources: BTreeMap<PathBuf, Sources>,
    /// The sketched workspace's files whose change needs a restart.
    pub restart_files: RestartFiles,
}

impl Early {
    /// Starts the program's build from the sketch of the workspace the command line
    /// names; `None` when it cannot be sketched (the build then waits for cargo's
    /// reading of it, as it always did).
    pub fn start(global: &GlobalArgs, args: &RunArgs, shell: &crate::shell::Shell) -> Option<Early> {
        let sketch = Workspace::sketch(global.manifest_path.as_deref(), global.target_dir.as_deref())?;
        // Only into a target directory cargo made (a wrong sketch must not build where
        // cargo never would; a first build is long enough not to miss 15 ms), and not
        // while a session runs (this one will stop at that, before building).
        if !sketch.target_dir.is_dir() || crate::apply::session::is_held(&hot_target_dir(&sketch), &sketch.root) {
            return None;
        }
        let plan = ProgramPlan::new(&sketch, global, args).ok()?;
        let binary_src = plan.binary.src.parent().map(PathBuf::from);
        let dirs = sketch.members.values().map(crate::workspace::Member::src_dir).chain(binary_src);
        let sources = dirs.map(|dir| (dir.clone(), crate::detect::read_sources(&dir))).collect();
        let restart_files = super::restart_files(&sketch);
        let build = Speculation::start(&plan.profile, &plan.binary.package, plan.target(), &plan.features, shell)?;
        Some(Early { build, sources, restart_files })
    }
}
