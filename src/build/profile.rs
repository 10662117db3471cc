//! Where builds go, and which features they select.

use std::path::PathBuf;
use std::process::Command;

/// Build settings shared by the program and its patches.
#[derive(Clone, Debug)]
pub struct Profile {
    /// `--manifest-path` of the workspace.
    pub manifest_path: PathBuf,
    /// Base directory for patch builds and sessions (`target/hotreload`).
    pub target_dir: PathBuf,
    /// Cargo's own target directory of the workspace: the program is built there, next
    /// to `cargo build`'s artifacts, so the dependencies a normal build made are reused
    /// (the runtime's feature and cfg, and the workspace crates' debug info, give those
    /// crates artifacts of their own, beside the normal ones).
    pub cargo_target_dir: PathBuf,
    /// `--release`
    pub release: bool,
    /// The workspace's packages: hot builds compile them with full debug info, whatever
    /// their profile says, so that type layouts can be compared (see [`crate::check::layout`]).
    pub members: Vec<String>,
    /// `hotreload_protocol::ENV_RUNTIME_NAMES` for every build.
    pub runtime_names: String,
}

impl Profile {
    /// Where the program is built: cargo's own target directory.
    pub fn program_dir(&self) -> PathBuf {
        self.cargo_target_dir.clone()
    }

    /// Held while the program is built, so that sessions sharing the hot directory
    /// never place each other's executable.
    pub fn program_lock_dir(&self) -> PathBuf {
        self.target_dir.join("program")
    }

    /// Where patch libraries are built: `patch/<hash of the workspace's manifest>`, one
    /// directory per workspace. Workspaces sharing a target directory often have crates
    /// of the same name (`app`), whose patch objects would otherwise be each other's: a
    /// session read another workspace's binary as its own.
    pub fn patch_dir(&self) -> PathBuf {
        let manifest = self.manifest_path.canonicalize().unwrap_or_else(|_| self.manifest_path.clone());
        let hash = hotreload_protocol::record::fnv1a(manifest.as_os_str().as_encoded_bytes());
        self.target_dir.join("patch").join(format!("{hash:016x}"))
    }

    /// `debug` or `release`, as cargo names the profile's output directory.
    pub fn kind(&self) -> &'static str {
        if self.release {
            "release"
        } else {
            "debug"
        }
    }
}

/// Feature selection for the program's build, as on cargo's command line.
#[derive(Clone, Debug, Default)]
pub struct Features {
    /// `--features`
    pub features: Vec<String>,
    /// `--all-features`
    pub all: bool,
    /// `--no-default-features`
    pub no_default: bool,
    /// The program's package's name for the runtime dependency, whose `agent` feature
    /// hot builds turn on (the agent and `#[hot]`'s expansion; see the runtime's
    /// manifest). `None` when the package does not depend on it.
    pub runtime: Option<String>,
}

impl Features {
    /// Adds the selection to a cargo command.
    pub(super) fn add_to(&self, cmd: &mut Command) {
        if self.all {
            cmd.arg("--all-features");
        }
        if self.no_default {
            cmd.arg("--no-default-features");
        }
        for f in &self.features {
            cmd.args(["--features", f]);
        }
        if let Some(runtime) = &self.runtime {
            cmd.args(["--features", &format!("{runtime}/agent")]);
        }
    }
}
