//! The agent library (`crates/hotreload-agent`) that `cargo hotreload run` preloads into
//! a program that does not depend on the runtime: built from the tool's own sources,
//! once per version of them (cargo's freshness check decides), into the tool's own
//! target directory, never the user's.

use super::output::{run_with, Forward};
use super::BuildError;
use crate::shell::Shell;
use anyhow::Context;
use cargo_metadata::Message;
use std::path::{Path, PathBuf};
use std::process::Command;

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
    let target_dir = Path::new(SOURCES).join("target").join(PACKAGE);
    let library = target_dir.join("release").join("libhotreload_agent.so");
    if !library.is_file() {
        shell.status("Preparing", "the agent library (once per version of cargo-hotreload)");
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
    Ok(built.context("cargo built no agent library")?.into_std_path_buf())
}
