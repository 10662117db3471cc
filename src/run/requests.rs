//! Requests from `cargo hotreload mode|aimport|now|status` to the running session.

use super::job::Outcome;
use super::{Driver, Event};
use crate::apply::session::Incoming;
use crate::steer::settings::Settings;
use hotreload_protocol::control::{ControlReply, ControlRequest, CrateMark, CrateStatus, Status};
use hotreload_protocol::message;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Instant;

impl Driver {
    pub(super) fn on_control(&mut self, request: ControlRequest, mut writer: UnixStream) {
        match request {
            ControlRequest::Settings { .. } => {
                let lines = self.take_settings(request);
                let _ = writer.write_all(&message::encode(&ControlReply::Done { ok: true, lines }));
                // A crate just enabled (unskipped, marked, or mode back on) gets its
                // waiting change now.
                self.apply_pending(Instant::now(), false);
            }
            ControlRequest::Now => {
                // A save the watcher has not reported yet (its burst is still open) is
                // one the user asked to apply.
                let now = Instant::now();
                for name in self.unseen_changes() {
                    self.pending_since.entry(name.clone()).or_insert(now);
                    self.pending.insert(name);
                }
                let outcomes = self.apply_pending(now, true);
                // `now` asks for the change to be applied: one that waits is not.
                let ok = outcomes.iter().all(|(_, o)| o.ok() && !matches!(o, Outcome::Waiting));
                // None: nothing was pending, which the client says.
                let lines: Vec<String> = outcomes
                    .iter()
                    .map(|(name, outcome)| match outcome.describe() {
                        (word, Some(detail)) => format!("{name}: {word} ({detail})"),
                        (word, None) => format!("{name}: {word}"),
                    })
                    .collect();
                let _ = writer.write_all(&message::encode(&ControlReply::Done { ok, lines }));
            }
            ControlRequest::Status => {
                let _ = writer.write_all(&message::encode(&ControlReply::Status(self.status())));
            }
            other => {
                let lines = vec![format!("this session does not understand {other:?}")];
                let _ = writer.write_all(&message::encode(&ControlReply::Done { ok: false, lines }));
            }
        }
    }

    fn take_settings(&mut self, request: ControlRequest) -> Vec<String> {
        let ControlRequest::Settings { mode, reload, skip } = request else { return Vec::new() };
        let new = Settings { mode, reload: reload.into_iter().collect(), skip: skip.into_iter().collect() };
        let changes = new.changes_from(&self.steer.settings);
        // The command that asked says it either way; the session's own output only
        // when something changed (`-v`: always).
        if new == self.steer.settings {
            self.shell.verbose_status("Settings", format_args!("{changes} (set by `cargo hotreload`)"));
        } else {
            self.shell.status("Settings", format_args!("{changes} (set by `cargo hotreload`)"));
        }
        self.steer.settings = new;
        vec![format!("the running session (pid {}): {changes}", std::process::id())]
    }

    /// Takes settings changes that arrived while a patch was built, so a crate skipped
    /// meanwhile (or mode `off`) is not applied; other events wait their turn.
    pub(super) fn absorb_settings(&mut self) {
        while let Ok(event) = self.events.rx.try_recv() {
            match event {
                Event::Session(Incoming::Control {
                    request: request @ ControlRequest::Settings { .. },
                    mut writer,
                }) => {
                    let lines = self.take_settings(request);
                    let _ = writer.write_all(&message::encode(&ControlReply::Done { ok: true, lines }));
                }
                other => self.events.deferred.push_back(other),
            }
        }
    }

    fn status(&self) -> Status {
        let mut status = Status::new(std::process::id(), self.steer.settings.mode);
        if let Some(app) = &self.app {
            status.app_pid = Some(app.pid());
            status.app_uptime_secs = Some(app.uptime().as_secs_f64());
        }
        for (name, state) in &self.crates {
            let mark = if self.steer.settings.skip.contains(name) {
                CrateMark::Skip
            } else if self.steer.settings.reload.contains(name) {
                CrateMark::Reload
            } else {
                CrateMark::None
            };
            let mut c = CrateStatus::new(name.clone(), mark);
            c.generation = state.running.generation;
            c.pending = self.pending.contains(name);
            // A manifest or build script changed since the program was built: only a
            // restart takes it, whatever patches applied since.
            let changed_file =
                self.restart_said.iter().find(|path| self.ws.owner_of(path).is_some_and(|m| m.name == *name));
            c.restart_needed = match changed_file {
                Some(path) => Some(format!("`{}` changed", path.strip_prefix(&self.ws.root).unwrap_or(path).display())),
                None => state.history.restart_needed.clone(),
            };
            if let Some((outcome, at)) = &state.history.last {
                let (word, detail) = outcome.describe();
                c.last_result = Some(word.to_string());
                c.last_detail = detail;
                c.last_secs_ago = Some(at.elapsed().as_secs_f64());
            }
            c.recent_ms = state.history.recent_ms.iter().copied().collect();
            status.crates.push(c);
        }
        status
    }
}
