//! One crate's way from a change to new code: source → build → library → diff →
//! message → apply.

use super::{Driver, Event, REPLY_TIMEOUT};
use crate::compile::{self, BuildFailed};
use crate::diff;
use crate::layout::Layouts;
use crate::library::Library;
use crate::session::Incoming;
use crate::shell::Verbosity;
use crate::source;
use crate::watch;
use anyhow::{Context, Result};
use hotreload_protocol::message::{self, AgentMessage, FunctionInfo, LoadRequest, ToolMessage};
use hotreload_protocol::record::crate_of;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Instant;

/// How a patch attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The program runs the new code; save → applied in milliseconds, and the route
    /// the patch took (`linked` or `self-contained`).
    Applied(u64, &'static str),
    /// Not applied, and why (a restart is needed, or the program said no).
    Refused(String),
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
        matches!(self, Outcome::Applied(..) | Outcome::Disabled | Outcome::Waiting | Outcome::Unchanged)
    }

    /// For `status`: a short word and a detail.
    pub(super) fn describe(&self) -> (&'static str, Option<String>) {
        match self {
            Outcome::Applied(ms, route) => ("applied", Some(format!("{ms} ms after the save, {route}"))),
            Outcome::Refused(why) => ("refused", Some(why.clone())),
            Outcome::BuildFailed | Outcome::StillFailing => ("build failed", None),
            Outcome::Disabled => ("not applied", Some("reloading was turned off meanwhile".into())),
            Outcome::Waiting => ("waiting", Some("applied when the program connects".into())),
            Outcome::Unchanged => ("unchanged", Some("the source is as the program runs it".into())),
            Outcome::Error(e) => ("error", Some(e.clone())),
        }
    }
}

impl Driver {
    /// Builds and applies `name`'s patch (`force`: whatever the mode, as `now` does).
    pub(super) fn patch(&mut self, name: &str, saved: Instant, force: bool) -> Outcome {
        let outcome = match self.try_patch(name, saved, force) {
            Ok(outcome) => outcome,
            Err(e) => {
                self.shell.error(format_args!("{e:#}"));
                Outcome::Error(format!("{e:#}"))
            }
        };
        let state = self.crates.entry(name.to_string()).or_default();
        match &outcome {
            Outcome::Refused(why) => {
                state.restart_needed = why.strip_prefix("restart needed: ").map(String::from);
            }
            Outcome::Unchanged if state.restart_needed.is_some() => {
                // The edit that needed a restart was undone.
                state.restart_needed = None;
                state.last = Some((Outcome::Unchanged, Instant::now()));
                self.shell.note(format_args!("`{name}` is back to the source the program runs"));
            }
            Outcome::Applied(..) | Outcome::Unchanged => state.restart_needed = None,
            _ => {}
        }
        if !matches!(outcome, Outcome::StillFailing | Outcome::Unchanged) {
            let state = self.crates.entry(name.to_string()).or_default();
            state.last = Some((outcome.clone(), Instant::now()));
            if let Outcome::Applied(ms, _) = outcome {
                state.recent_ms.push_back(ms);
                if state.recent_ms.len() > 10 {
                    state.recent_ms.pop_front();
                }
            }
        }
        outcome
    }

    fn try_patch(&mut self, name: &str, saved: Instant, force: bool) -> Result<Outcome> {
        let Some((crate_name, root)) = self.ws.members.get(name).and_then(|m| m.lib.clone()) else {
            return Ok(Outcome::Error(format!("`{name}` has no library")));
        };
        // Start rustc on a guess of what changed, from the files' text; the scan below,
        // while it compiles, says whether the guess holds.
        let early = self.start_on_guess(name, &crate_name);
        // Hashed before the scan reads the files: if they change before the build ends
        // (the rest of an editor's save), the scan and the build may have read different
        // text, and the patch is dropped for the newer save's.
        let sources_hash_at_start = sources_hash(&self.ws.members[name].dir.join("src"));
        let scan_started = Instant::now();
        let scanned = source::scan(&crate_name, &root, &self.cfg_of(&crate_name));
        let scan_time = scan_started.elapsed();
        let state = self.crates.entry(name.to_string()).or_default();
        if state.failed == Some(sources_hash_at_start) {
            if let Some(started) = early {
                started.cancel();
            }
            return Ok(Outcome::StillFailing);
        }
        let mut edited = None;
        // A body-only edit: the hot functions that need their whole form in a linked
        // patch (edited, and any the program's own build lacks); the rest are stubs.
        let mut full: Option<BTreeSet<String>> = None;
        // Debug info, for the layout check, only when what decides layouts changed (or
        // the scan could not tell).
        let mut debuginfo = true;
        if let Ok(new) = &scanned {
            let diff = source::compare(&state.snapshot, new);
            for (id, reason) in &diff.not_hot {
                if state.reported_not_hot.insert(id.clone()) {
                    self.shell.note(format_args!("not hot: `{id}`: {reason}"));
                }
            }
            if !diff.blockers.is_empty() {
                if let Some(started) = early {
                    started.cancel();
                }
                let reasons: Vec<String> =
                    diff.blockers.iter().map(|b| format!("`{}`: {}", b.item, b.reason)).collect();
                return Ok(self.refuse_or_restart(reasons));
            }
            for warning in &diff.warnings {
                self.shell.warn(warning);
            }
            if diff.bodies_only && diff.edited.is_empty() {
                if let Some(started) = early {
                    started.cancel();
                }
                self.shell.verbose_status("Unchanged", format_args!("{name}: nothing the program runs changed"));
                self.crates.entry(name.to_string()).or_default().snapshot = new.clone();
                return Ok(Outcome::Unchanged);
            }
            debuginfo = diff.layouts_may_change;
            if let (true, Some(agent)) = (diff.bodies_only, &self.agent) {
                full = Some(whole_form(diff.edited.clone(), new, &agent.program));
            }
            edited = Some(diff.edited);
        }

        let quiet = self.output.hide_errors;
        // Still the sources this patch is built from? A failed build of a file that was
        // written again meanwhile (half of an editor's save) is dropped quietly.
        let src = self.ws.members[name].dir.join("src");
        let current = move || sources_hash(&src) == sources_hash_at_start;
        let module_statics = scanned.as_ref().map(|s| s.statics()).unwrap_or_default();
        let full_env = full.as_ref().map(|ids| full_form_env(&crate_name, ids));
        let (route, build_started) = match early {
            Some(started) if started.full == full_env && started.debuginfo == debuginfo => {
                let at = started.started;
                (self.finish_linked(started, &module_statics, quiet, &current), at)
            }
            early => {
                match early {
                    Some(started) => started.cancel(),
                    None => self.shell.status("Compiling", format_args!("{name} (hot patch)")),
                }
                let at = Instant::now();
                let form = super::linked::Form { full: full_env.as_deref(), debuginfo };
                (self.build_linked(name, &crate_name, &module_statics, form, quiet, &current), at)
            }
        };
        let waited = build_started.saturating_duration_since(saved);
        if let Ok(Err(why)) = &route {
            if let Some(refusal) = split_state(why, &module_statics) {
                return Ok(self.refuse_or_restart(vec![format!("`{name}`: {refusal}")]));
            }
        }
        let route = route.and_then(|route| match route {
            Ok(linked) => Ok(Route::Linked(linked)),
            Err(why) => {
                self.say_self_contained(name, &why);
                let lock = compile::BuildLock::acquire(&self.profile.patch_dir())?;
                let file = self.build_library(name, &crate_name, debuginfo, quiet, &current)?;
                Ok(Route::SelfContained { file, debuginfo, _lock: lock })
            }
        });
        let route = match route {
            Ok(route) => route,
            Err(e) if e.downcast_ref::<BuildFailed>().is_some() => {
                self.crates.entry(name.to_string()).or_default().failed = Some(sources_hash_at_start);
                if !self.output.hide_errors {
                    self.shell
                        .error(format_args!("could not compile `{name}`; the program keeps running the previous code"));
                }
                return Ok(Outcome::BuildFailed);
            }
            Err(e) if e.downcast_ref::<compile::Superseded>().is_some() => return Ok(self.superseded(name)),
            Err(e) if e.downcast_ref::<compile::IdentityLost>().is_some() => {
                let why = e.to_string();
                return Ok(self.refuse_or_restart(vec![format!(
                    "`{name}`: a self-contained library of it would give its types new identities (`TypeId`, \
                     `dyn Any` downcasts), since {why}"
                )]));
            }
            Err(e) => return Err(e),
        };
        if !current() {
            return Ok(self.superseded(name));
        }
        let built = match &route {
            Route::Linked(l) => l.file.clone(),
            Route::SelfContained { file, .. } => file.clone(),
        };
        let build_time = build_started.elapsed();
        let layout_started = Instant::now();
        if let Some(reasons) = self.layout_changes(&route) {
            return Ok(self.refuse_or_restart(reasons));
        }
        let layout_time = layout_started.elapsed();
        let generation = self.crates.get(name).map_or(0, |c| c.generation) + 1;
        let placed = self.session.place(&built, &crate_name, generation)?;
        // Placed: the build directory's lock can go.
        let route = route.unlocked();
        self.crates.entry(name.to_string()).or_default().failed = None;

        let diff_started = Instant::now();
        let library = Library::read(&placed)?;
        let Some(agent) = &self.agent else {
            // It disconnected during the build (a restart, a crash): applied when the
            // program that runs next connects, unless that one was built with it.
            self.pending.insert(name.to_string());
            return Ok(Outcome::Waiting);
        };
        let state = self.crates.entry(name.to_string()).or_default();
        let mut patch = diff::diff(&agent.known, &state.current, &crate_name, &library);
        // A patch of stubs holds only what changed: removed is what the source lost.
        let partial = matches!(route, Placed::Linked(..)) && full.is_some();
        if partial {
            let now: BTreeSet<String> = scanned.as_ref().map(|s| hot_ids(s).collect()).unwrap_or_default();
            patch.removed = state.current.iter().filter(|id| !now.contains(*id)).cloned().collect();
            // Every slot of the patch but those of functions new to the program must be
            // the program's: a stub with a slot of its own would call nothing.
            let new_to_program = library.functions.keys().filter(|id| !agent.program.contains(*id)).count();
            if let Placed::Linked(linked, ..) = &route {
                if linked.own_slots.len() > new_to_program {
                    let _ = std::fs::remove_file(&placed);
                    let why = format!(
                        "the patch of `{name}` has {} trampoline slots the program lacks ({}), {new_to_program} \
                         expected; not applied (please report this)",
                        linked.own_slots.len(),
                        linked.own_slots.join(", ")
                    );
                    self.shell.error(&why);
                    return Ok(Outcome::Error(why));
                }
            }
        }
        // Checks before loading: the records' diff and the layouts'.
        let diff_time = diff_started.elapsed() + layout_time;
        if !patch.applicable() {
            let _ = std::fs::remove_file(&placed);
            let reasons =
                patch.refused.iter().map(|id| format!("`{id}`: its signature or a type in it changed")).collect();
            return Ok(self.refuse_or_restart(reasons));
        }
        let own_functions = library.functions.keys().filter(|id| crate_of(id) == crate_name).count();
        if own_functions == 0 && patch.removed.is_empty() {
            let _ = std::fs::remove_file(&placed);
            self.shell.verbose_status("Unchanged", format_args!("{name}: the patch changes no hot function"));
            return Ok(Outcome::Unchanged);
        }
        let toolchain = match library.toolchain() {
            Some(toolchain) => toolchain,
            None if own_functions == 0 => agent.toolchain,
            None => {
                anyhow::bail!("the patch of `{name}` was compiled by several rustc versions (its records disagree)")
            }
        };

        // Settings may have changed while it was built: never apply a crate that is
        // skipped, or any in `off` mode, from then on.
        self.absorb_settings();
        if !force && !self.settings.enabled(name) || force && self.settings.skip.contains(name) {
            self.pending.insert(name.to_string());
            return Ok(Outcome::Disabled);
        }
        self.announce(name);

        let functions: Vec<FunctionInfo> = library
            .functions
            .iter()
            .filter(|(id, _)| crate_of(id) == crate_name)
            .map(|(id, r)| FunctionInfo::new(id.clone(), r.signature))
            .collect();
        let request = self.next_request;
        self.next_request += 1;
        let mut load = LoadRequest::new(request, crate_name.clone(), generation, placed, functions, toolchain);
        if matches!(route, Placed::Linked(..)) {
            load = load.linked();
        }
        let load = ToolMessage::Load(load);
        let agent = self.agent.as_mut().expect("checked above");
        agent.writer.write_all(&message::encode(&load)).context("failed to send the patch to the program")?;
        match self.wait_reply(request)? {
            AgentMessage::Applied { switched, load_micros, apply_micros, .. } => {
                let elapsed = saved.elapsed();
                let agent = self.agent.as_mut().expect("still connected");
                for (id, record) in &library.functions {
                    if crate_of(id) == crate_name {
                        agent.known.insert(id.clone(), record.signature);
                    }
                }
                let state = self.crates.entry(name.to_string()).or_default();
                state.generation = generation;
                let in_patch = library.functions.keys().filter(|id| crate_of(id) == crate_name).cloned();
                if partial {
                    state.current.extend(in_patch);
                    for id in &patch.removed {
                        state.current.remove(id);
                    }
                } else {
                    state.current = in_patch.collect();
                }
                if let Ok(new) = scanned {
                    state.snapshot = new;
                }
                let updated = match &edited {
                    Some(edited) => patch.updated.iter().filter(|id| edited.contains(*id)).count(),
                    None => patch.updated.len(),
                };
                let how = match &route {
                    Placed::Linked(l, ..) => format!("linked, {}", shared_state(l)),
                    Placed::SelfContained => "self-contained".to_string(),
                };
                self.shell.status(
                    "Reloaded",
                    format_args!(
                        "{name}: {updated} updated, {} added, {} removed ({} ms, {how})",
                        patch.added.len(),
                        patch.removed.len(),
                        elapsed.as_millis()
                    ),
                );
                if self.shell.verbosity() >= Verbosity::Verbose {
                    if let Placed::Linked(l, ..) = &route {
                        for path in &l.fresh {
                            self.shell.status("own copy", format_args!("{path} (a static the program does not share)"));
                        }
                    }
                    for id in patch.updated.iter().filter(|id| edited.as_ref().is_none_or(|e| e.contains(*id))) {
                        self.shell.status("updated", id);
                    }
                    for id in &patch.added {
                        self.shell.status("added", id);
                    }
                    for id in &patch.removed {
                        self.shell.status("removed", format_args!("{id} (existing callers keep the old code)"));
                    }
                    self.shell.status(
                        "Timing",
                        format_args!(
                            "wait {} ms (source scan {:.1} ms), build {} ms ({}), diff {:.1} ms, load {:.1} ms, \
                             switch {:.3} ms ({switched} slots), generation {generation}",
                            waited.as_millis(),
                            scan_time.as_secs_f64() * 1e3,
                            build_time.as_millis(),
                            match &route {
                                Placed::Linked(_, compiled, linked) => format!(
                                    "linked: rustc {} ms, link {} ms",
                                    compiled.as_millis(),
                                    linked.as_millis()
                                ),
                                Placed::SelfContained => "self-contained".to_string(),
                            },
                            diff_time.as_secs_f64() * 1e3,
                            load_micros as f64 / 1e3,
                            apply_micros as f64 / 1e3,
                        ),
                    );
                }
                let route = if matches!(route, Placed::Linked(..)) { "linked" } else { "self-contained" };
                Ok(Outcome::Applied(elapsed.as_millis() as u64, route))
            }
            AgentMessage::Refused { reason, .. } => {
                self.shell.warn(format_args!(
                    "the program refused the patch of `{name}`: {reason}; it keeps running the previous code"
                ));
                Ok(Outcome::Refused(reason))
            }
            other => Ok(Outcome::Error(format!("unexpected answer from the program: {other:?}"))),
        }
    }

    /// Builds `name`'s self-contained patch library from the current sources; call with
    /// the patch directory's lock held. Compiled by rustc with the program's own command
    /// for the crate (see [`compile::Direct::for_self_contained`]), so the library keeps
    /// the program's type identities; its dependencies are built first when they are
    /// missing or a workspace crate below it changed. Returns a file this session wrote.
    fn build_library(
        &mut self,
        name: &str,
        crate_name: &str,
        debuginfo: bool,
        quiet: bool,
        current: &dyn Fn() -> bool,
    ) -> Result<PathBuf> {
        let Some(program) = self.host.as_ref().and_then(|h| h.invocations.get(crate_name)).cloned() else {
            let why = "there is no record of how the program's build compiled it";
            return Err(compile::IdentityLost(why.into()).into());
        };
        let out_dir = self.profile.patch_dir().join("self-contained").join(self.profile.kind()).join(crate_name);
        let program = program
            .with_env(hotreload_protocol::ENV_RUNTIME_NAMES, &self.profile.runtime_names)
            .with_debuginfo(if debuginfo { 2 } else { 0 });
        let (invocation, needs) = program.for_self_contained(
            &self.profile.host_dir(),
            &self.profile.patch_dir(),
            &out_dir,
            &out_dir.join("incremental"),
        );
        if self.patch_deps_stale(name) || needs.iter().any(|rlib| !rlib.exists()) {
            self.build_patch_deps(quiet)?;
            if let Some(missing) = needs.iter().find(|rlib| !rlib.exists()) {
                let why = format!("the patch directory has no build of {} like the program's", missing.display());
                return Err(compile::IdentityLost(why).into());
            }
        }
        let library = compile::build_direct(&invocation, &self.ws.root, &self.shell, quiet, current)?;
        self.session.keep_latest(&library, crate_name)
    }

    /// Whether a workspace crate `name` depends on changed since the patch directory's
    /// libraries were built.
    fn patch_deps_stale(&self, name: &str) -> bool {
        let Some(built) = &self.patch_deps else { return true };
        self.ws.dependencies_of(name).iter().any(|dep| {
            let now = sources_hash(&self.ws.members[dep].dir.join("src"));
            built.get(dep) != Some(&now)
        })
    }

    /// [`compile::build_patch_deps`], remembering the sources it was built from.
    pub(super) fn build_patch_deps(&mut self, quiet: bool) -> Result<()> {
        let hashes = self.member_hashes();
        let (package, kind, bin) = (&self.binary.package, self.binary.kind, &self.binary.name);
        compile::build_patch_deps(&self.profile, package, (kind, bin), &self.features, &self.shell, quiet)?;
        self.patch_deps = Some(hashes);
        Ok(())
    }

    /// `--check`: builds a change that is not applied, once per content, to report
    /// compile errors early. The crate stays pending.
    pub(super) fn check(&mut self, name: &str) {
        let sources_hash = sources_hash(&self.ws.members[name].dir.join("src"));
        let state = self.crates.entry(name.to_string()).or_default();
        if state.checked == Some(sources_hash) || state.failed == Some(sources_hash) {
            return;
        }
        state.checked = Some(sources_hash);
        self.shell.status("Checking", format_args!("{name} (not applied: mode {})", self.settings.mode));
        let Some((crate_name, _)) = self.ws.members.get(name).and_then(|m| m.lib.clone()) else { return };
        let Ok(_lock) = compile::BuildLock::acquire(&self.profile.patch_dir()) else { return };
        match self.build_library(name, &crate_name, false, self.output.hide_errors, &|| true) {
            Ok(_) => {}
            Err(e) if e.downcast_ref::<BuildFailed>().is_some() => {
                self.crates.entry(name.to_string()).or_default().failed = Some(sources_hash);
                if !self.output.hide_errors {
                    self.shell.error(format_args!("could not compile `{name}`"));
                }
            }
            Err(e) => self.shell.error(format_args!("{e:#}")),
        }
    }

    /// Starts a linked patch build on [`source::guess_edited`]'s guess, when there is
    /// one and the route is open; says `Compiling` then.
    fn start_on_guess(&mut self, name: &str, crate_name: &str) -> Option<super::linked::StartedBuild> {
        let agent = self.agent.as_ref()?;
        let state = self.crates.get(name)?;
        let ids = whole_form(source::guess_edited(&state.snapshot)?, &state.snapshot, &agent.program);
        let env = full_form_env(crate_name, &ids);
        let form = super::linked::Form { full: Some(&env), debuginfo: false };
        let started = self.start_linked(name, crate_name, form).ok()?.ok()?;
        self.shell.status("Compiling", format_args!("{name} (hot patch)"));
        Some(started)
    }

    /// Says, once per reason, why `name` reloads through a self-contained library.
    fn say_self_contained(&mut self, name: &str, why: &str) {
        if why == "--self-contained" {
            return;
        }
        let state = self.crates.entry(name.to_string()).or_default();
        if state.self_contained_because.as_deref() != Some(why) {
            state.self_contained_because = Some(why.to_string());
            self.shell.note(format_args!(
                "`{name}` reloads as a self-contained library, with its own copies of statics and thread-locals: {why}"
            ));
        }
    }

    /// What the new code lays out differently from the running program (see
    /// [`crate::layout`]), as refusal reasons; `None` when nothing does. Without the
    /// program's or the patch's debug info nothing can be compared: said, and refused.
    fn layout_changes(&mut self, route: &Route) -> Option<Vec<String>> {
        let patch = match route {
            // Nothing that decides layouts changed: built without debug info.
            Route::Linked(l) if !l.debuginfo => return None,
            Route::Linked(l) => Layouts::read_rlib(&l.rlib),
            Route::SelfContained { debuginfo: false, .. } => return None,
            Route::SelfContained { file, .. } => Layouts::read_file(file),
        };
        let program = self.layouts.get();
        let why = match (&*program, patch) {
            (Ok(program), Ok(patch)) if !program.is_empty() && !patch.is_empty() => {
                let found = patch.mismatches(program);
                if found.is_empty() {
                    return None;
                }
                return Some(found.into_iter().map(|m| format!("`{}`: {}", m.item, m.reason)).collect());
            }
            (Ok(program), Ok(_)) if program.is_empty() => "the program has no debug info".to_string(),
            (Ok(_), Ok(_)) => "the patch has no debug info".to_string(),
            (Err(e), _) => format!("the program's debug info cannot be read: {e}"),
            (_, Err(e)) => format!("the patch's debug info cannot be read: {e:#}"),
        };
        Some(vec![format!("type layouts cannot be compared ({why})")])
    }

    /// A patch built while its sources changed again: dropped for the newer save's, which
    /// the watcher delivers next.
    fn superseded(&self, name: &str) -> Outcome {
        self.shell.verbose_status("Superseded", format_args!("{name}: its sources changed during the build"));
        Outcome::Unchanged
    }

    /// A change the program cannot take: restart with `--restart`, else say so.
    fn refuse_or_restart(&mut self, reasons: Vec<String>) -> Outcome {
        let why = reasons.join("; ");
        if self.restart {
            self.restart(&why);
            return Outcome::Refused(format!("restarted: {why}"));
        }
        for reason in &reasons {
            self.shell.warn(format_args!("restart needed: {reason}; {}", super::RESTART_HINT));
        }
        Outcome::Refused(format!("restart needed: {why}"))
    }

    /// IPython's `--print` and `--log`: one line per reload.
    fn announce(&self, name: &str) {
        if self.output.print {
            anstream::eprintln!("Reloading '{name}'.");
        }
        if self.output.log {
            log::info!("Reloading '{name}'.");
        }
    }

    /// Waits for the agent's answer to `request`; other events wait their turn.
    fn wait_reply(&mut self, request: u64) -> Result<AgentMessage> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Event::Session(Incoming::Message { conn, message }))
                    if self.agent.as_ref().map(|a| a.conn) == Some(conn) =>
                {
                    match &message {
                        AgentMessage::Applied { request: r, .. } | AgentMessage::Refused { request: r, .. }
                            if *r == request =>
                        {
                            return Ok(message)
                        }
                        _ => self.shell.warn(format_args!("unexpected message from the program: {message:?}")),
                    }
                }
                Ok(Event::Session(Incoming::Closed { conn })) if self.agent.as_ref().map(|a| a.conn) == Some(conn) => {
                    self.agent = None;
                    anyhow::bail!("the program disconnected before applying the patch");
                }
                Ok(event @ Event::AppExited { .. }) => {
                    self.deferred.push_back(event);
                    anyhow::bail!("the program exited before applying the patch");
                }
                Ok(event) => self.deferred.push_back(event),
                Err(RecvTimeoutError::Timeout) => anyhow::bail!(
                    "the program did not answer within {}s (is it calling hotreload::safepoint()?)",
                    REPLY_TIMEOUT.as_secs()
                ),
                Err(RecvTimeoutError::Disconnected) => anyhow::bail!("all event sources stopped"),
            }
        }
    }
}

/// The hot function ids of a snapshot.
fn hot_ids(snapshot: &source::Snapshot) -> impl Iterator<Item = String> + '_ {
    snapshot.items.iter().filter(|(_, e)| matches!(e, source::Entry::Hot { .. })).map(|(id, _)| id.clone())
}

/// The hot functions a linked patch compiles whole: the `edited` ones, and every one
/// the program's own build lacks (its slot is not the program's, so no stub can reach it).
fn whole_form(
    mut edited: BTreeSet<String>,
    snapshot: &source::Snapshot,
    program: &BTreeSet<String>,
) -> BTreeSet<String> {
    edited.extend(hot_ids(snapshot).filter(|id| !program.contains(id)));
    edited
}

/// `ENV_FULL_FORM`'s value for `ids`: every `::`-suffix of each id below the crate,
/// since the attribute knows a function only by its name and impl, not its module.
/// More whole forms than needed only cost compile time.
fn full_form_env(crate_name: &str, ids: &BTreeSet<String>) -> String {
    let mut tails = BTreeSet::new();
    for id in ids {
        let rest = id.strip_prefix(crate_name).unwrap_or(id);
        let mut at = 0;
        while let Some(found) = rest[at..].find("::") {
            tails.insert(rest[at + found..].to_string());
            at += found + 2;
        }
    }
    tails.into_iter().collect::<Vec<_>>().join(",")
}

/// How a patch was built.
enum Route {
    /// Linked against the running program: it shares the program's state.
    Linked(super::linked::LinkedBuild),
    /// A self-contained library at this path, with the patch directory's lock.
    SelfContained {
        /// The library.
        file: PathBuf,
        /// Whether it has debug info (see `LinkedBuild::debuginfo`).
        debuginfo: bool,
        /// Held until it is placed.
        _lock: compile::BuildLock,
    },
}

/// A placed patch: how it was built, locks released.
enum Placed {
    Linked(crate::link::Linked, std::time::Duration, std::time::Duration),
    SelfContained,
}

impl Route {
    fn unlocked(self) -> Placed {
        match self {
            Route::Linked(l) => Placed::Linked(l.linked, l.compiled, l.link_time),
            Route::SelfContained { .. } => Placed::SelfContained,
        }
    }
}

/// Why a crate whose linked route closed for `why` must not fall back to a
/// self-contained library: it has statics or thread-locals (`module_statics`), and the
/// library would have its own fresh copies of them, silently splitting the crate's
/// state. `None` when it has none, or when `--self-contained` chose that route.
fn split_state(why: &str, module_statics: &std::collections::HashSet<String>) -> Option<String> {
    if why == "--self-contained" || module_statics.is_empty() {
        return None;
    }
    let mut names: Vec<&str> = module_statics.iter().map(String::as_str).collect();
    names.sort_unstable();
    let shown = names.iter().take(3).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    let more = if names.len() > 3 { format!(" and {} more", names.len() - 3) } else { String::new() };
    Some(format!(
        "the new code cannot be linked against the running program ({why}), and a self-contained library \
         would start its statics and thread-locals ({shown}{more}) afresh"
    ))
}

/// `3 statics and 1 thread-local shared` for the `Reloaded` line.
fn shared_state(linked: &crate::link::Linked) -> String {
    let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    format!("{} and {} shared", plural(linked.statics, "static"), plural(linked.thread_locals, "thread-local"))
}

/// A hash over every `.rs` file below `dir`, names and contents.
pub(super) fn sources_hash(dir: &Path) -> u64 {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let mut text = Vec::new();
    for file in files {
        text.extend_from_slice(file.as_os_str().as_encoded_bytes());
        text.extend_from_slice(&watch::content_hash(&file).unwrap_or(0).to_le_bytes());
    }
    hotreload_protocol::record::fnv1a(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_form_ids_are_every_module_suffix() {
        let ids: BTreeSet<String> = ["logic::score", "logic::inner::Counter~Named::name"].map(String::from).into();
        assert_eq!(full_form_env("logic", &ids), "::Counter~Named::name,::inner::Counter~Named::name,::name,::score");
        assert_eq!(full_form_env("logic", &BTreeSet::new()), "");
    }
}
