//! The load: the patch sent to the program's agent, and its answer.

use super::plan::Plan;
use super::verify::Verified;
use super::Stop;
use crate::apply::session::Incoming;
use crate::run::{Driver, Event, REPLY_TIMEOUT};
use anyhow::{bail, Context};
use hotreload_protocol::message::{self, AgentMessage, FunctionInfo, LoadRequest, RefusalKind, ToolMessage};
use hotreload_protocol::record::crate_of;
use std::io::Write;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Instant;

/// A patch the program switched to.
pub(super) struct Applied {
    /// The checked patch.
    pub(super) verified: Verified,
    /// Slots switched.
    pub(super) switched: usize,
    /// Time the agent took to map and check it, in microseconds.
    pub(super) load_micros: u64,
    /// Time the switch took, in microseconds.
    pub(super) apply_micros: u64,
    /// Function entries redirected.
    pub(super) redirected: usize,
    /// Time the program's other threads were held for the redirects, in microseconds.
    pub(super) held_micros: u64,
    /// Redirected functions a thread was running at the switch (demangled): that call
    /// goes on in the old code.
    pub(super) running: Vec<String>,
}

impl Driver {
    /// Sends the patch and waits for the agent's answer.
    pub(super) fn load(&mut self, plan: &Plan, verified: Verified) -> Result<Applied, Stop> {
        self.announce(&plan.krate.package);
        let crate_name = &plan.krate.crate_name;
        let functions: Vec<FunctionInfo> = verified
            .library
            .functions
            .iter()
            .filter(|(id, _)| crate_of(id) == crate_name)
            .map(|(id, r)| FunctionInfo::new(id.clone(), r.signature))
            .collect();
        let request = self.next_request;
        self.next_request += 1;
        let placed = verified.placed.clone();
        let mut load =
            LoadRequest::new(request, plan.krate.unit(), verified.generation, placed, functions, verified.toolchain);
        if verified.route.route() == super::Route::Linked {
            load = load.linked();
        }
        if let Some(entries) = &verified.entries {
            load = load.with_redirects(entries.redirects.clone());
        }
        let line = message::encode(&ToolMessage::Load(load));
        if line.len() > message::MAX_LINE {
            return Err(Stop::Refused(vec![format!(
                "the load request is {} KiB, more than the agent reads ({} KiB): too many functions changed at once",
                line.len() >> 10,
                message::MAX_LINE >> 10
            )]));
        }
        let Some(agent) = self.agent.as_mut() else { return Err(Stop::Waiting) };
        let sent = agent.writer.write_all(&line);
        // Sent, it may crash the program: the save is then not news to a restart.
        self.state(&plan.krate.package).running.sent = Some(plan.sources);
        sent.context("failed to send the patch to the program")?;
        match self.wait_reply(request)? {
            AgentMessage::Applied { switched, load_micros, apply_micros, redirected, held_micros, running, .. } => {
                Ok(Applied { verified, switched, load_micros, apply_micros, redirected, held_micros, running })
            }
            AgentMessage::Refused { kind: RefusalKind::Incompatible, reason, .. } => Err(Stop::Refused(vec![reason])),
            AgentMessage::Refused { reason, .. } => Err(Stop::ProgramRefused(reason)),
            other => Err(Stop::Error(anyhow::anyhow!("unexpected answer from the program: {other:?}"))),
        }
    }

    /// IPython's `--print` and `--log`: one line per reload.
    fn announce(&self, name: &str) {
        if self.config.output.print {
            anstream::eprintln!("Reloading '{name}'.");
        }
        if self.config.output.log {
            log::info!("Reloading '{name}'.");
        }
    }

    /// Waits for the agent's answer to `request`; other events wait their turn.
    pub(super) fn wait_reply(&mut self, request: u64) -> anyhow::Result<AgentMessage> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let conn = self.agent.as_ref().map(|a| a.conn);
            match self.events.rx.recv_timeout(left) {
                Ok(Event::Session(Incoming::Message { conn: from, message })) if Some(from) == conn => {
                    // Request 0: the agent could not read the line as a request at all
                    // (malformed, or too long); the only one in flight is this one.
                    if message.request() == Some(request) || message.request() == Some(0) {
                        return Ok(message);
                    }
                    self.shell.warn(format_args!("unexpected message from the program: {message:?}"));
                }
                Ok(Event::Session(Incoming::Closed { conn: from })) if Some(from) == conn => {
                    self.agent = None;
                    bail!("the program disconnected before applying the patch");
                }
                Ok(Event::AppExited { pid, status }) => {
                    self.events.deferred.push_back(Event::AppExited { pid, status });
                    // A program stopped for a restart may report its exit late.
                    if self.app.as_ref().map(|app| app.pid()) == Some(pid) {
                        bail!("the program exited before applying the patch");
                    }
                }
                Ok(event) => self.events.deferred.push_back(event),
                Err(RecvTimeoutError::Timeout) => bail!(
                    "the program did not answer within {}s (is it calling hotreload::safepoint()?)",
                    REPLY_TIMEOUT.as_secs()
                ),
                Err(RecvTimeoutError::Disconnected) => bail!("all event sources stopped"),
            }
        }
    }
}
