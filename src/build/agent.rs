//! The agent library (`crates/hotreload-agent`) that `cargo hotreload run` preloads into
//! a program that does not depend on the runtime: built from the tool's own sources,
//! once per version of them, into the tool's own target directory, never the user's.
//! cargo's freshness check decides, unless the agent's inputs are as the last build
//! left them (a stamp): a fresh check alone took ~80 ms of every session's start.

use super::output::{run_with, Forward};
use super::BuildError;
use crate::shell::Shell;
use anyhow::Context;
use cargo_metadata::Message;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The tool's source tree, which holds the agent's crate.
const SOURCES: &str = env!("CARGO_MANIFEST_DIR");

/// The agent's package.
const PACKAGE: &str = "hotreload-agent";

/// Builds the agent library (if its sources changed since the last build) and returns
/// its path: `<tool sources>/target/hotreload-agent/release/libhotreload_agent.so`.
/// Optimised and stripped: 0.6 MB, which `ld.so` maps in ~0.1 ms (BENCHMARKS.md).
///
/// # Errors
/// [`BuildError::Tool`] when the tool's sources are gone (the tool was installed from a
/// clone that was since moved or deleted) or cargo cannot run; [`BuildError::Failed`]
/// when the agent does not compile (its diagnostics shown).
pub fn build_agent(shell: &Shell) -> Result<PathBuf, BuildError> {
    let manifest = Path::new(SOURCES).join("crates").join(PACKAGE).join("Cargo.toml");
    if !manifest.is_file() {
        return Err(BuildError::Tool(anyhow::anyhow!(
            "the agent's sources are not at {} (the clone cargo-hotreload was installed from); reinstall it, \
             or add `hotreload-runtime` to the program and call `hotreload::init()`",
            manifest.display()
        )));
    }
    if let Some(library) = built_agent() {
        return Ok(library);
    }
    let target_dir = Path::new(SOURCES).join("target").join(PACKAGE);
    let library = target_dir.join("release").join("libhotreload_agent.so");
    let stamp = target_dir.join("inputs.stamp");
    if !library.is_file() {
        shell.status("Preparing", "the agent library (once per installation of cargo-hotreload)");
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--lib", "--package", PACKAGE, "--message-format", "json"])
        .args(["--config", "profile.release.debug=0", "--config", "profile.release.strip=true"])
        .arg("--manifest-path")
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target_dir)
        // The runtime's `hot` build: the agent compiled in (see `hotreload_protocol::ENV_BUILD`).
        .env(hotreload_protocol::ENV_BUILD, "hot")
        .env("CARGO_TERM_PROGRESS_WHEN", "never")
        // The user's flags are for the user's program.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .current_dir(SOURCES);
    let mut built = None;
    run_with(
        cmd,
        shell,
        Forward::Nothing,
        |_| {},
        |message| {
            if let Message::CompilerArtifact(artifact) = message {
                if artifact.target.name.replace('-', "_") == "hotreload_agent" {
                    built = artifact.filenames.iter().find(|f| f.extension() == Some("so")).cloned();
                }
            }
        },
    )?;
    let built = built.context("cargo built no agent library")?.into_std_path_buf();
    if built == library {
        if let Some(now) = inputs(Path::new(SOURCES), &library) {
            let _ = std::fs::write(&stamp, now);
        }
    }
    Ok(built)
}

/// The agent library, when its inputs are as its last build left them (its stamp):
/// no cargo run needed. A walk of the tool's sources (~5 ms), which `cargo hotreload
/// run` starts on a thread while cargo reads the workspace.
pub fn built_agent() -> Option<PathBuf> {
    let target_dir = Path::new(SOURCES).join("target").join(PACKAGE);
    let library = target_dir.join("release").join("libhotreload_agent.so");
    let stamp = std::fs::read_to_string(target_dir.join("inputs.stamp")).ok()?;
    (inputs(Path::new(SOURCES), &library)? == stamp).then_some(library)
}

/// What the agent library at `library` is built from, under the tool's sources `root`:
/// this tool (its version and executable), the newest modification time of the crates
/// it compiles and of the workspace's manifest and lock file, and the library itself.
/// `None` when one of them cannot be read.
fn inputs(root: &Path, library: &Path) -> Option<String> {
    let modified = |path: &Path| path.metadata().and_then(|m| m.modified()).ok();
    let mut newest = SystemTime::UNIX_EPOCH;
    for krate in ["hotreload-agent", "hotreload", "hotreload-protocol", "hotreload-macros"] {
        // Directories too: removing a file changes its directory's time.
        for entry in ignore::WalkBuilder::new(root.join("crates").join(krate)).build() {
            newest = newest.max(modified(entry.ok()?.path())?);
        }
    }
    for file in ["Cargo.toml", "Cargo.lock"] {
        newest = newest.max(modified(&root.join(file))?);
    }
    let tool = std::env::current_exe().ok()?;
    let built = library.metadata().ok()?;
    Some(format!(
        "{} {:?} {:?} {:?} {}",
        env!("CARGO_PKG_VERSION"),
        modified(&tool)?,
        newest,
        built.modified().ok()?,
        built.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::inputs;
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    fn touch(path: &Path, at: SystemTime) {
        std::fs::File::options().write(true).open(path).unwrap().set_modified(at).unwrap();
    }

    #[test]
    fn the_agents_inputs_change_with_its_sources_and_its_library() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        for krate in ["hotreload-agent", "hotreload", "hotreload-protocol", "hotreload-macros"] {
            std::fs::create_dir_all(root.join("crates").join(krate).join("src")).unwrap();
            std::fs::write(root.join("crates").join(krate).join("src/lib.rs"), "").unwrap();
        }
        for file in ["Cargo.toml", "Cargo.lock", "agent.so"] {
            std::fs::write(root.join(file), "").unwrap();
        }
        let library = root.join("agent.so");
        let before = inputs(root, &library).unwrap();
        assert_eq!(inputs(root, &library).as_ref(), Some(&before), "nothing changed");

        let later = SystemTime::now() + Duration::from_secs(5);
        touch(&root.join("crates/hotreload/src/lib.rs"), later);
        let edited = inputs(root, &library).unwrap();
        assert_ne!(edited, before, "a runtime source was saved");

        std::fs::write(&library, "rebuilt").unwrap();
        assert_ne!(inputs(root, &library).unwrap(), edited, "the library was replaced");

        std::fs::remove_file(&library).unwrap();
        assert_eq!(inputs(root, &library), None, "no library");
    }
}
