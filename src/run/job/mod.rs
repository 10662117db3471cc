//! One crate's patch job, as stages: plan → build → check → load → record.
//!
//! | stage | module | gives |
//! |---|---|---|
//! | what changed in the source, what to compile | `plan` | [`plan::Plan`] |
//! | compile and link, by the linked route or the self-contained one | `build` | [`build::Built`] |
//! | layouts, the records' diff, slots, settings: everything before loading | `verify` | [`verify::Verified`] |
//! | which functions changed in compiled code, and the entries to redirect | `entries` | [`entries::Entries`] |
//! | send it to the program and wait for its answer | `load` | [`load::Applied`] |
//! | what the session now knows, and the lines the user sees | `record`, `report` | [`Outcome`] |
//!
//! A stage that ends the job returns a [`Stop`]; what each stop means for the crate's
//! state and for the user is decided in one place, [`Driver::stopped`].

mod build;
mod entries;
mod load;
mod plan;
mod record;
mod report;
mod verify;

pub(super) use build::Linking;

use super::Driver;
use crate::build::BuildError;
use crate::shell::Verbosity;
use crate::workspace::HotCrate;
use std::fmt;
use std::time::Instant;

/// How a patch reaches the running program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// Linked against the running program: it shares the program's statics,
    /// thread-locals and dependencies.
    Linked,
    /// A library of its own, with its own copies of the crate's state.
    SelfContained,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Route::Linked => "linked",
            Route::SelfContained => "self-contained",
        })
    }
}

/// How a patch attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The program runs the new code.
    Applied {
        /// Save → applied, in milliseconds.
        ms: u64,
        /// The way it went.
        route: Route,
        /// Changed functions that keep their old code (a running `main`), by path.
        kept: Vec<String>,
    },
    /// Not applied, and why.
    Refused(Refusal),
    /// rustc failed; its diagnostics were shown.
    BuildFailed,
    /// Sources unchanged since they last failed to build: nothing done.
    StillFailing,
    /// The settings changed while it was built: not applied, still pending.
    Disabled,
    /// The program disconnected while it was built: pending until it connects.
    Waiting,
    /// Nothing the program runs changed (a comment, code `#[cfg]` leaves out).
    Unchanged,
    /// Something else went wrong.
    Error(String),
}

impl Outcome {
    /// Whether `now` counts it as success.
    pub(super) fn ok(&self) -> bool {
        matches!(self, Outcome::Applied { .. } | Outcome::Disabled | Outcome::Waiting | Outcome::Unchanged)
    }

    /// For `status`: a short word and a detail.
    pub(super) fn describe(&self) -> (&'static str, Option<String>) {
        match self {
            Outcome::Applied { ms, route, kept } => {
                let mut detail = format!("{ms} ms after the save, {route}");
                if !kept.is_empty() {
                    let names = kept.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
                    detail += &format!("; {names} keep{} its old code", if kept.len() == 1 { "s" } else { "" });
                }
                ("applied", Some(detail))
            }
            Outcome::Refused(refusal) => ("refused", Some(refusal.to_string())),
            Outcome::BuildFailed | Outcome::StillFailing => ("build failed", None),
            Outcome::Disabled => ("not applied", Some("reloading was turned off meanwhile".into())),
            Outcome::Waiting => ("waiting", Some("applied when the program connects".into())),
            Outcome::Unchanged => ("unchanged", Some("the source is as the program runs it".into())),
            Outcome::Error(e) => ("error", Some(e.clone())),
        }
    }
}

/// Why a patch was not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The running program cannot take the change (these reasons): it needs a restart.
    RestartNeeded(String),
    /// The program was restarted for it (`--restart`).
    Restarted(String),
    /// The program's agent refused the patch, for this reason.
    ByProgram(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::RestartNeeded(why) => write!(f, "restart needed: {why}"),
            Refusal::Restarted(why) => write!(f, "restarted: {why}"),
            Refusal::ByProgram(why) => f.write_str(why),
        }
    }
}

/// Why a job ended before the program ran the new code.
#[derive(Debug)]
pub(super) enum Stop {
    /// The change cannot be applied to the running program, for these reasons: a
    /// restart is needed (or done, with `--restart`).
    Refused(Vec<String>),
    /// The program's agent refused a patch it should have taken (a malformed request,
    /// a failed mapping): the reason.
    ProgramRefused(String),
    /// The build failed on these sources (their hash); diagnostics were shown.
    BuildFailed(u64),
    /// The sources are those whose build failed last time.
    StillFailing,
    /// The sources changed during the build: the newer save's job follows.
    Superseded,
    /// Nothing the program runs changed; `why` is said at `-v`.
    Unchanged(String),
    /// The settings turned the crate off during the build.
    Disabled,
    /// The program disconnected during the build.
    Waiting,
    /// The tool failed (I/O, a child process, a malformed answer).
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Self {
        Stop::Error(e)
    }
}

impl Stop {
    /// A failed build of sources whose hash was `sources`.
    fn from_build(e: BuildError, sources: u64) -> Stop {
        match e {
            BuildError::Failed => Stop::BuildFailed(sources),
            BuildError::Superseded => Stop::Superseded,
            BuildError::Tool(e) => Stop::Error(e),
        }
    }
}

impl Driver {
    /// Builds and applies `name`'s patch (`force`: whatever the mode, as `now` does).
    pub(super) fn patch(&mut self, name: &str, saved: Instant, force: bool) -> Outcome {
        let (mut superseded, mut unchanged) = (false, None);
        let outcome = match self.krate(name) {
            Some(krate) => self.run_job(krate, saved, force).unwrap_or_else(|stop| {
                superseded = matches!(stop, Stop::Superseded);
                if let Stop::Unchanged(why) = &stop {
                    unchanged = Some(why.clone());
                }
                self.stopped(name, stop)
            }),
            None => Outcome::Error(format!("`{name}` has no library")),
        };
        let said_compiling = self.state(name).said.compiling;
        if !superseded {
            self.state(name).said.compiling = false;
        }
        if self.state(name).history.record(&outcome) {
            self.shell.note(format_args!("`{name}` is back to the source the program runs"));
        } else if let Some(why) = unchanged.filter(|_| said_compiling && self.shell.verbosity() < Verbosity::Verbose) {
            // A `Compiling` line gets its outcome (`-v` said `Unchanged` already).
            self.shell.note(format_args!("`{name}`: {why}; nothing to reload"));
        }
        outcome
    }

    /// The stages, in order.
    fn run_job(&mut self, krate: HotCrate, saved: Instant, force: bool) -> Result<Outcome, Stop> {
        let mut plan = self.plan(krate, saved, force)?;
        let built = self.build(&mut plan)?;
        let verified = self.verify(&plan, built)?;
        let applied = self.load(&plan, verified)?;
        let report = self.record(plan, applied);
        self.report(&report);
        let kept = report.kept.iter().map(|(name, _)| name.clone()).collect();
        Ok(Outcome::Applied { ms: report.elapsed.as_millis() as u64, route: report.route, kept })
    }

    /// What a stop means for `name`, said to the user once, here.
    fn stopped(&mut self, name: &str, stop: Stop) -> Outcome {
        match stop {
            Stop::Refused(reasons) => self.refuse_or_restart(reasons),
            Stop::ProgramRefused(reason) => {
                self.shell.warn(format_args!(
                    "the program refused the patch of `{name}`: {reason}; it keeps running the previous code"
                ));
                Outcome::Refused(Refusal::ByProgram(reason))
            }
            Stop::BuildFailed(sources) => {
                self.state(name).cache.failed = Some(sources);
                // Compiled against the running code of a crate whose change was refused:
                // its errors (hidden) are that change's absence, an error `cargo build`
                // of the same sources would not give.
                if let Some(dep) = self.held_by_restart(name) {
                    self.shell.warn(format_args!(
                        "restart needed: `{name}` does not compile against the running `{dep}`, whose change needs \
                         a restart; the program keeps running the previous code"
                    ));
                    let why = format!("it does not compile against the running `{dep}`, whose change needs a restart");
                    return Outcome::Refused(Refusal::RestartNeeded(why));
                }
                if !self.config.output.hide_errors {
                    self.shell
                        .error(format_args!("could not compile `{name}`; the program keeps running the previous code"));
                    self.explain_failure(name);
                }
                Outcome::BuildFailed
            }
            Stop::StillFailing => Outcome::StillFailing,
            Stop::Superseded => {
                self.shell.verbose_status("Superseded", format_args!("{name}: its sources changed during the build"));
                Outcome::Unchanged
            }
            Stop::Unchanged(why) => {
                // Back to what the program runs (an edit that failed, reverted): it builds,
                // and the crates that waited for it may build again.
                self.state(name).cache.failed = None;
                self.shell.verbose_status("Unchanged", format_args!("{name}: {why}"));
                Outcome::Unchanged
            }
            Stop::Disabled => {
                self.pending.insert(name.to_string());
                Outcome::Disabled
            }
            Stop::Waiting => {
                // Applied when the program that runs next connects, unless that one
                // was built with it.
                self.shell.verbose_status("Waiting", format_args!("{name}: applied when the program connects"));
                self.pending.insert(name.to_string());
                Outcome::Waiting
            }
            Stop::Error(e) => {
                self.shell.error(format_args!("{e:#}"));
                Outcome::Error(format!("{e:#}"))
            }
        }
    }

    /// A patch is compiled against the code the program runs: when a crate it depends on
    /// has a change the program could not take, its errors may be about that change
    /// (a field the running type lacks), which a plain `cargo build` would not show.
    fn explain_failure(&mut self, name: &str) {
        // A manifest saved since the build (a dependency added) is not what patches
        // compile with: rustc's "add it to your Cargo.toml" would mislead.
        let changed: Vec<String> = self
            .restart_said
            .iter()
            .map(|path| path.strip_prefix(&self.ws.root).unwrap_or(path).display().to_string())
            .map(|file| format!("`{file}`"))
            .collect();
        if !changed.is_empty() {
            self.shell.note(format_args!(
                "patches compile with the manifests and build scripts the program was built from, and {} changed \
                 since; {}",
                changed.join(", "),
                super::RESTART_HINT
            ));
        }
        for dep in self.dependencies(name) {
            let Some(why) = self.crates.get(&dep).and_then(|c| c.history.restart_needed.clone()) else { continue };
            self.shell.note(format_args!(
                "`{name}` is compiled against the `{dep}` the program runs, which lacks a change that needs a \
                 restart ({why}); {}",
                super::RESTART_HINT
            ));
        }
    }

    /// A change the program cannot take: restart with `--restart`, else say so.
    fn refuse_or_restart(&mut self, reasons: Vec<String>) -> Outcome {
        let why = reasons.join("; ");
        if self.config.restart {
            self.restart(&why);
            return Outcome::Refused(Refusal::Restarted(why));
        }
        for reason in &reasons {
            self.shell.warn(format_args!("restart needed: {reason}; {}", super::RESTART_HINT));
        }
        Outcome::Refused(Refusal::RestartNeeded(why))
    }
}

impl Driver {
    /// `--check`: builds a change that is not applied, once per content, to report
    /// compile errors early. The crate stays pending.
    pub(super) fn check(&mut self, name: &str) {
        let Some(krate) = self.ws.hot_crate(name) else { return };
        let sources = crate::detect::sources_hash(&krate.src);
        let cache = &mut self.state(name).cache;
        if cache.checked == Some(sources) || cache.failed == Some(sources) {
            return;
        }
        cache.checked = Some(sources);
        self.shell.status("Checking", format_args!("{name} (not applied: mode {})", self.steer.settings.mode));
        let Ok(_lock) = crate::build::BuildLock::acquire(&self.profile.patch_dir()) else { return };
        match self.build_library(&krate, false, &|| true, sources) {
            Ok(_) => {}
            Err(Stop::BuildFailed(sources)) => {
                self.state(name).cache.failed = Some(sources);
                if !self.config.output.hide_errors {
                    self.shell.error(format_args!("could not compile `{name}`"));
                }
            }
            Err(Stop::Refused(reasons)) => self.shell.warn(format_args!("`{name}`: {}", reasons.join("; "))),
            Err(Stop::Error(e)) => self.shell.error(format_args!("{e:#}")),
            // Nothing else stops a build whose sources are always `current`.
            Err(_) => {}
        }
    }
}
