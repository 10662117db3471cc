//! What the user sees when a command fails, and the exit code it ends with.
//!
//! One enum for every failure a command can end with, rendered once (in
//! [`crate::main`]): `error:` with the message, then each cause on a `Caused by:` line,
//! as cargo does. Errors the session survives (a patch that does not build, a refused
//! edit) never get here: the loop says them and goes on.

use std::path::PathBuf;

/// Exit codes, by what went wrong. Documented in the README.
pub mod exit {
    /// The command did what was asked.
    pub const OK: i32 = 0;
    /// Something failed that is not one of the kinds below (I/O, a child process).
    pub const FAILED: i32 = 1;
    /// The input cannot be used: an unknown mode or crate, an ambiguous choice (clap
    /// uses the same code for malformed arguments).
    pub const USAGE: i32 = 2;
    /// No `cargo hotreload run` session runs for the workspace.
    pub const NO_SESSION: i32 = 3;
    /// `now`: at least one crate could not be reloaded.
    pub const NOT_RELOADED: i32 = 4;
    /// Another session already runs for the workspace.
    pub const BUSY: i32 = 5;
    /// The hot target directory cannot be written (read-only, full, not ours).
    pub const TARGET_DIR: i32 = 6;
    /// The program did not compile (cargo's own code for that).
    pub const BUILD_FAILED: i32 = 101;
    /// Ctrl-C (128 + SIGINT, as a shell reports it).
    pub const INTERRUPTED: i32 = 130;
}

/// Why a `cargo hotreload` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input cannot be used; the message says what would be.
    #[error("{0}")]
    Usage(String),
    /// No session runs for `workspace`; `hint` says what to do instead (may be empty).
    #[error("no `cargo hotreload run` session is running for {}{hint}", workspace.display())]
    NoSession {
        /// The workspace's root.
        workspace: PathBuf,
        /// A sentence starting with `; `, or nothing.
        hint: &'static str,
    },
    /// `now` could not reload every crate (the lines above say which).
    #[error("not every changed crate could be reloaded")]
    NotReloaded,
    /// Another session runs for `workspace`.
    #[error(
        "another `cargo hotreload run`{} is already running for {}; stop it first, or steer it with \
         `cargo hotreload mode|aimport|now|status`",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        workspace.display()
    )]
    Busy {
        /// The other session's pid, if its record says.
        pid: Option<u32>,
        /// The workspace's root.
        workspace: PathBuf,
    },
    /// The hot target directory `dir` (named by `origin`) cannot be written; `source`
    /// says why.
    #[error(
        "cannot write to the hot target directory {}{origin}; {}",
        dir.display(),
        target_dir_hint(source.kind(), !origin.is_empty())
    )]
    TargetDir {
        /// The directory.
        dir: PathBuf,
        /// Where the path came from, as ` (set by …)`, or nothing.
        origin: String,
        /// The system's answer.
        #[source]
        source: std::io::Error,
    },
    /// The program did not compile; cargo showed why.
    #[error("could not compile `{package}`")]
    BuildFailed {
        /// The program's package.
        package: String,
    },
    /// Anything else, with its causes.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    /// The process's exit code for it (see [`exit`]).
    pub fn process_exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::NoSession { .. } => exit::NO_SESSION,
            Error::NotReloaded => exit::NOT_RELOADED,
            Error::Busy { .. } => exit::BUSY,
            Error::TargetDir { .. } => exit::TARGET_DIR,
            Error::BuildFailed { .. } => exit::BUILD_FAILED,
            Error::Other(_) => exit::FAILED,
        }
    }

    /// The message and its causes, one per line after the first.
    pub fn render(&self) -> String {
        let mut out = self.to_string();
        let mut source = match self {
            // Transparent: its own chain, starting below its message.
            Error::Other(e) => e.source(),
            other => std::error::Error::source(other),
        };
        while let Some(cause) = source {
            out.push_str(&format!("\n\nCaused by:\n  {cause}"));
            source = cause.source();
        }
        out
    }
}

/// What to do about a hot target directory that failed with `kind`, set by
/// `CARGO_HOTRELOAD_TARGET_DIR` (`from_env`) or below cargo's target directory.
fn target_dir_hint(kind: std::io::ErrorKind, from_env: bool) -> &'static str {
    use std::io::ErrorKind::*;
    match (kind, from_env) {
        (StorageFull | QuotaExceeded, true) => "free some space, or choose another with `CARGO_HOTRELOAD_TARGET_DIR`",
        (StorageFull | QuotaExceeded, false) => "free some space, or choose another with `--target-dir DIR`",
        (_, true) => "choose another with `CARGO_HOTRELOAD_TARGET_DIR`",
        (_, false) => "choose another with `--target-dir DIR`",
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Other(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_exit_code_and_causes_are_listed() {
        let codes = [
            Error::Usage("x".into()).process_exit_code(),
            Error::NoSession { workspace: "/w".into(), hint: "" }.process_exit_code(),
            Error::NotReloaded.process_exit_code(),
            Error::Busy { pid: None, workspace: "/w".into() }.process_exit_code(),
            Error::TargetDir {
                dir: "/t".into(),
                origin: String::new(),
                source: std::io::ErrorKind::ReadOnlyFilesystem.into(),
            }
            .process_exit_code(),
            Error::BuildFailed { package: "app".into() }.process_exit_code(),
            Error::Other(anyhow::anyhow!("x")).process_exit_code(),
        ];
        let distinct: std::collections::BTreeSet<i32> = codes.into();
        assert_eq!(distinct.len(), codes.len(), "{codes:?}");
        assert!(!distinct.contains(&exit::OK));
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = Error::Other(anyhow::Error::new(io).context("failed to create /t"));
        assert_eq!(e.render(), "failed to create /t\n\nCaused by:\n  denied");
        let busy = Error::Busy { pid: Some(7), workspace: "/w".into() };
        assert!(busy.render().starts_with("another `cargo hotreload run` (pid 7) is already running for /w;"));
    }
}
