//! Control requests: `cargo hotreload mode|now|aimport|status` talking to a running
//! `cargo hotreload run` over the same socket as the agent, one request per connection.

use serde::{Deserialize, Serialize};

/// Which hot crates are reloaded, as IPython's `%autoreload 0|1|2`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Watch, but apply nothing (`0`).
    Off,
    /// Only crates marked with `aimport` (`1`).
    Explicit,
    /// Every hot crate except those skipped (`2`).
    #[default]
    All,
}

impl Mode {
    /// Every spelling `mode` accepts, for error messages.
    pub const VALUES: &'static str = "off, explicit, all (or 0, 1, 2)";

    /// Parses `off|explicit|all|0|1|2`, case-insensitive.
    pub fn parse(text: &str) -> Option<Mode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" | "0" => Some(Mode::Off),
            "explicit" | "1" => Some(Mode::Explicit),
            "all" | "2" => Some(Mode::All),
            _ => None,
        }
    }

    /// `off`, `explicit` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Explicit => "explicit",
            Mode::All => "all",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sent by a control client, as the first and only message of its connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ControlRequest {
    /// Settings changed (and were saved in the manifest): take them now.
    Settings {
        /// The mode.
        mode: Mode,
        /// Crates marked for reloading (package names).
        reload: Vec<String>,
        /// Crates never reloaded (package names).
        skip: Vec<String>,
    },
    /// Rebuild and apply every changed hot crate once, whatever the mode.
    Now,
    /// Report the session's state.
    Status,
}

/// The session's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ControlReply {
    /// Done; lines to show the user.
    Done {
        /// Whether everything asked for succeeded.
        ok: bool,
        /// What happened, one line each.
        lines: Vec<String>,
    },
    /// The session's state.
    Status(Status),
}

/// A running session, as `cargo hotreload status` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Status {
    /// The tool's process id.
    pub session_pid: u32,
    /// The program's process id, while it runs.
    pub app_pid: Option<u32>,
    /// How long the program has been running, in seconds.
    pub app_uptime_secs: Option<f64>,
    /// The mode.
    pub mode: Mode,
    /// Every hot crate.
    pub crates: Vec<CrateStatus>,
}

/// A crate's `aimport` mark (IPython's `%aimport name` and `%aimport -name`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrateMark {
    /// Reloaded in mode `explicit`.
    Reload,
    /// Never reloaded, whatever the mode (but by `now`, neither).
    Skip,
    /// Neither.
    #[serde(rename = "-")]
    None,
}

impl std::fmt::Display for CrateMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            CrateMark::Reload => "reload",
            CrateMark::Skip => "skip",
            CrateMark::None => "-",
        })
    }
}

/// One hot crate in [`Status`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CrateStatus {
    /// Package name.
    pub name: String,
    /// Its `aimport` mark.
    pub mark: CrateMark,
    /// Generation the program runs; 0 is the build it started with.
    pub generation: u64,
    /// Whether a change waits to be applied.
    pub pending: bool,
    /// Why the running program cannot take the crate's current source without a
    /// restart, when it cannot.
    #[serde(default)]
    pub restart_needed: Option<String>,
    /// `applied`, `refused`, `build failed`, or none yet.
    pub last_result: Option<String>,
    /// Detail of the last result (a refusal's reason).
    pub last_detail: Option<String>,
    /// Seconds since the last result.
    pub last_secs_ago: Option<f64>,
    /// Save → applied times of recent reloads, newest last, in milliseconds.
    pub recent_ms: Vec<u64>,
}

impl CrateStatus {
    /// A crate with nothing to report yet.
    pub fn new(name: impl Into<String>, mark: CrateMark) -> Self {
        CrateStatus {
            name: name.into(),
            mark,
            generation: 0,
            pending: false,
            restart_needed: None,
            last_result: None,
            last_detail: None,
            last_secs_ago: None,
            recent_ms: Vec::new(),
        }
    }
}

impl Status {
    /// A status report.
    pub fn new(session_pid: u32, mode: Mode) -> Self {
        Status { session_pid, app_pid: None, app_uptime_secs: None, mode, crates: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_and_numbers_are_the_same_settings() {
        for (names, mode) in [
            (["off", "0", "OFF", "Off"], Mode::Off),
            (["explicit", "1", "EXPLICIT", "Explicit"], Mode::Explicit),
            (["all", "2", "ALL", "All"], Mode::All),
        ] {
            for name in names {
                assert_eq!(Mode::parse(name), Some(mode), "{name}");
            }
        }
        for bad in ["3", "4", "complete", "expilcit", "", "-1"] {
            assert_eq!(Mode::parse(bad), None, "{bad}");
        }
    }
}
