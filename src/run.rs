//! `cargo hotreload run`: build, start, watch, patch — in one loop.
//!
//! Everything the session knows lives in one `Driver`, and only the loop's thread
//! touches it; watcher, socket and process threads send [`Event`]s.

use crate::app::{self, App};
use crate::cli::{GlobalArgs, RunArgs};
use crate::compile::{self, BuildFailed, Features, HostBuild, Profile};
use crate::diff;
use crate::library::Library;
use crate::session::{Incoming, Session};
use crate::shell::{Shell, Verbosity};
use crate::source::{self, Snapshot};
use crate::watch::{self, Batch};
use crate::workspace::{Binary, Workspace};
use anyhow::{Context, Result};
use hotreload_protocol::message::{self, AgentMessage, FunctionInfo, LoadRequest, ToolMessage};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// What the loop reacts to.
#[derive(Debug)]
pub enum Event {
    /// Files changed.
    Changed(Batch),
    /// Something arrived on the control socket.
    Session(Incoming),
    /// The program exited.
    AppExited {
        /// Its pid.
        pid: u32,
        /// How.
        status: std::process::ExitStatus,
    },
    /// Ctrl-C or SIGTERM.
    Interrupt,
}

/// How long the agent may take to answer a load.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the session until interrupted (or until the program exits, with
/// `--exit-with-app`); returns the exit code.
pub fn run(global: &GlobalArgs, args: &RunArgs, shell: &Shell) -> Result<i32> {
    let ws = Workspace::load(global.manifest_path.as_deref())?;
    let binary = ws.binary(args.package.as_deref(), args.bin.as_deref(), args.example.as_deref())?;
    if ws.hot().next().is_none() {
        shell.warn(
            "no workspace library depends on `hotreload`, so nothing can be reloaded; \
             add `hotreload` to a library's [dependencies] and mark functions with #[hotreload::hot]",
        );
    }
    let profile = Profile {
        manifest_path: global.manifest_path.clone().unwrap_or_else(|| ws.root.join("Cargo.toml")),
        target_dir: args.target_dir.clone().unwrap_or_else(|| ws.target_dir.join("hotreload")),
        release: args.release,
    };
    let (tx, rx) = mpsc::channel();

    let session_tx = tx.clone();
    let session = Session::open(&profile.target_dir, move |incoming| {
        let _ = session_tx.send(Event::Session(incoming));
    })?;
    shell.verbose_status("Listening", format_args!("on {}", session.socket().display()));

    let interrupt_tx = tx.clone();
    ctrlc::set_handler(move || {
        let _ = interrupt_tx.send(Event::Interrupt);
    })
    .context("failed to install the Ctrl-C handler")?;

    // Watch before building, so a save during the first build is not lost.
    let member_dirs: Vec<PathBuf> = ws.members.values().map(|m| m.dir.clone()).collect();
    let extra: Vec<PathBuf> = binary.src.parent().map(Path::to_path_buf).into_iter().collect();
    let mut excluded = vec![ws.target_dir.clone(), profile.target_dir.clone()];
    excluded.dedup();
    let filter = watch::Filter::new(&ws.root, &member_dirs, excluded);
    let watch_tx = tx.clone();
    let _watcher = watch::start(
        &watch::roots(&member_dirs, &extra),
        filter,
        Duration::from_millis(args.debounce),
        move |batch| {
            let _ = watch_tx.send(Event::Changed(batch));
        },
    )?;

    let mut driver = Driver {
        shell: shell.clone(),
        features: Features {
            features: args.features.clone(),
            all: args.all_features,
            no_default: args.no_default_features,
        },
        ws,
        binary,
        profile,
        args: args.args.clone(),
        restart: args.restart,
        session,
        tx,
        rx,
        deferred: VecDeque::new(),
        app: None,
        host: None,
        agent: None,
        crates: BTreeMap::new(),
        pending: BTreeSet::new(),
        next_request: 1,
    };
    if let Err(e) = driver.build_and_start() {
        if e.downcast_ref::<BuildFailed>().is_some() {
            return Err(e.context(format!("could not compile `{}`", driver.binary.package)));
        }
        return Err(e);
    }
    driver.warm_patches();
    driver.event_loop(args.exit_with_app)
}

/// What the session knows of one hot crate.
#[derive(Default)]
struct CrateState {
    /// Its source as the program runs it.
    snapshot: Snapshot,
    /// The generation the program runs; 0 is the build it started with.
    generation: u64,
    /// Function ids in that generation.
    current: BTreeSet<String>,
    /// Content hash of the sources that last failed to build: not rebuilt until it
    /// changes (reported once).
    failed: Option<u64>,
    /// Functions reported as not hot, so each is reported once.
    reported_not_hot: BTreeSet<String>,
}

/// The connected agent.
struct Agent {
    conn: u64,
    writer: UnixStream,
    /// Signature of every function the program has ever had.
    known: BTreeMap<String, u64>,
}

struct Driver {
    shell: Shell,
    ws: Workspace,
    binary: Binary,
    profile: Profile,
    features: Features,
    args: Vec<String>,
    restart: bool,
    session: Session,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    deferred: VecDeque<Event>,
    app: Option<App>,
    host: Option<HostBuild>,
    agent: Option<Agent>,
    crates: BTreeMap<String, CrateState>,
    pending: BTreeSet<String>,
    next_request: u64,
}

impl Driver {
    fn event_loop(&mut self, exit_with_app: bool) -> Result<i32> {
        loop {
            let event = match self.deferred.pop_front() {
                Some(event) => event,
                None => self.rx.recv().context("all event sources stopped")?,
            };
            match event {
                Event::Changed(batch) => self.on_change(batch),
                Event::Session(incoming) => self.on_session(incoming),
                Event::AppExited { pid, status } => {
                    if self.app.as_ref().map(App::pid) != Some(pid) {
                        continue;
                    }
                    self.app = None;
                    self.agent = None;
                    self.shell.status("Exited", format_args!("`{}` ({})", self.binary.name, app::describe(status)));
                    if exit_with_app {
                        use std::os::unix::process::ExitStatusExt;
                        return Ok(status.code().unwrap_or(128 + status.signal().unwrap_or(0)));
                    }
                    use std::os::unix::process::ExitStatusExt;
                    if status.signal() == Some(libc::SIGINT) {
                        // Ctrl-C went to the program (it had the terminal): the user is done.
                        return Ok(130);
                    }
                    self.shell.note("waiting for a change to rebuild and restart the program");
                }
                Event::Interrupt => {
                    if let Some(app) = self.app.take() {
                        app.signal(libc::SIGINT);
                        if app.wait(Duration::from_secs(3)).is_none() {
                            app.stop(Duration::from_secs(2));
                        }
                    }
                    return Ok(130);
                }
            }
        }
    }

    /// Builds the program, then starts it; on a build failure the program stays stopped.
    fn build_and_start(&mut self) -> Result<()> {
        let started = Instant::now();
        let lock = compile::BuildLock::acquire(&self.profile.target_dir)?;
        let mut host = compile::build_host(
            &self.profile,
            &self.binary.package,
            (self.binary.kind, &self.binary.name),
            &self.features,
            &self.shell,
        )?;
        host.executable = self.session.place_program(&host.executable)?;
        drop(lock);
        self.shell.status(
            "Finished",
            format_args!("hot build of `{}` in {:.2}s", self.binary.name, started.elapsed().as_secs_f64()),
        );
        self.pending.clear();
        let hot: Vec<(String, String, PathBuf)> =
            self.ws.hot().filter_map(|m| m.lib.clone().map(|(c, root)| (m.name.clone(), c, root))).collect();
        for (name, crate_name, root) in hot {
            let snapshot = source::scan(&crate_name, &root).unwrap_or_default();
            let mut state = CrateState::default();
            // Said once per session, not at every restart.
            let reported = self.crates.get(&name).map(|c| c.reported_not_hot.clone()).unwrap_or_default();
            state.reported_not_hot = reported;
            for (id, reason) in source::compare(&Snapshot::default(), &snapshot).not_hot {
                if state.reported_not_hot.insert(id.clone()) {
                    self.shell.note(format_args!("not hot: `{id}`: {reason}"));
                }
            }
            state.snapshot = snapshot;
            self.crates.insert(name, state);
        }
        self.shell.status("Running", format_args!("`{}`", host.executable.display()));
        let tx = self.tx.clone();
        let app = App::spawn(&host.executable, &self.args, &self.session.env(), move |pid, status| {
            let _ = tx.send(Event::AppExited { pid, status });
        })?;
        self.host = Some(host);
        self.app = Some(app);
        self.agent = None;
        Ok(())
    }

    /// Stops the program, rebuilds and starts it again.
    fn restart(&mut self, why: &str) {
        self.shell.status("Restarting", why);
        if let Some(app) = self.app.take() {
            app.stop(Duration::from_secs(3));
        }
        self.agent = None;
        if let Err(e) = self.build_and_start() {
            if e.downcast_ref::<BuildFailed>().is_none() {
                self.shell.error(format_args!("{e:#}"));
            } else {
                self.shell.error(format_args!(
                    "could not compile `{}`; the program stays stopped until the next change",
                    self.binary.package
                ));
            }
        }
    }

    /// Builds every hot crate's patch library once, so that dependencies are compiled
    /// for patch builds before the first edit.
    fn warm_patches(&mut self) {
        let names: BTreeSet<String> = self.crates.keys().cloned().collect();
        if names.is_empty() {
            return;
        }
        let started = Instant::now();
        for name in self.ws.dependency_order(&names) {
            let features = self.features_of(&name);
            let _lock = compile::BuildLock::acquire(&self.profile.target_dir);
            if let Err(e) = compile::build_patch(&self.profile, &name, &features, &self.shell) {
                if e.downcast_ref::<BuildFailed>().is_none() {
                    self.shell.warn(format_args!("could not prepare hot patches of `{name}`: {e:#}"));
                }
            }
        }
        self.shell.status(
            "Watching",
            format_args!(
                "{} for changes (patch builds ready in {:.2}s)",
                names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                started.elapsed().as_secs_f64()
            ),
        );
    }

    fn features_of(&self, package: &str) -> Vec<String> {
        let crate_name = self.ws.members.get(package).and_then(|m| m.lib.as_ref()).map(|(c, _)| c.as_str());
        crate_name.and_then(|c| self.host.as_ref()?.features.get(c)).cloned().unwrap_or_default()
    }

    fn on_session(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Hello { conn, peer, toolchain: _, functions, writer } => {
                if self.app.as_ref().map(App::pid) != Some(peer.pid) {
                    self.shell.warn(format_args!(
                        "ignored a connection from process {}: it is not the program this session started",
                        peer.pid
                    ));
                    return;
                }
                let known: BTreeMap<String, u64> = functions.iter().map(|f| (f.id.clone(), f.signature)).collect();
                for (name, state) in &mut self.crates {
                    if let Some(crate_name) = self.ws.members.get(name).and_then(|m| m.lib.as_ref()).map(|l| &l.0) {
                        state.current = known
                            .keys()
                            .filter(|id| hotreload_protocol::record::crate_of(id) == crate_name)
                            .cloned()
                            .collect();
                    }
                }
                self.shell.verbose_status(
                    "Connected",
                    format_args!("to process {} ({} hot functions)", peer.pid, known.len()),
                );
                self.agent = Some(Agent { conn, writer, known });
            }
            Incoming::Closed { conn } => {
                if self.agent.as_ref().map(|a| a.conn) == Some(conn) {
                    self.agent = None;
                }
            }
            Incoming::Rejected { reason } => {
                self.shell.warn(format_args!("refused a control connection: {reason}"));
            }
            Incoming::Message { message, .. } => {
                self.shell.warn(format_args!("unexpected message from the program: {message:?}"));
            }
        }
    }

    fn on_change(&mut self, batch: Batch) {
        let mut restart_reasons = Vec::new();
        let mut changed = BTreeSet::new();
        for path in &batch.paths {
            let shown = path.strip_prefix(&self.ws.root).unwrap_or(path).display().to_string();
            let Some(member) = self.ws.owner_of(path) else {
                restart_reasons.push(format!("`{shown}` changed"));
                continue;
            };
            let src = member.dir.join("src");
            let is_lib_source = member.hot
                && path.starts_with(&src)
                && path != &self.binary.src
                && !path.starts_with(src.join("bin"))
                && !path.ends_with("main.rs");
            if is_lib_source {
                changed.insert(member.name.clone());
            } else if path.ends_with("Cargo.toml") || path.ends_with("build.rs") {
                restart_reasons.push(format!("`{shown}` changed"));
            } else {
                restart_reasons.push(format!("`{shown}` is not in a hot crate"));
            }
        }
        if self.app.is_none() {
            self.restart("the program after a change");
            return;
        }
        if !restart_reasons.is_empty() {
            if self.restart {
                self.restart(&restart_reasons.join(", "));
                return;
            }
            for reason in &restart_reasons {
                self.shell.warn(format_args!("restart needed: {reason}; run with --restart to restart automatically"));
            }
        }
        self.pending.extend(changed);
        self.apply_pending(batch.first_event);
    }

    fn apply_pending(&mut self, saved: Instant) {
        let order = self.ws.dependency_order(&self.pending);
        for name in order {
            let waiting_on = self
                .ws
                .dependencies_of(&name)
                .into_iter()
                .find(|dep| self.crates.get(dep).is_some_and(|c| c.failed.is_some()));
            if let Some(dep) = waiting_on {
                self.shell.note(format_args!("`{name}` will be rebuilt once `{dep}` builds again"));
                continue;
            }
            self.pending.remove(&name);
            if let Err(e) = self.patch(&name, saved) {
                self.shell.error(format_args!("{e:#}"));
            }
        }
    }

    /// Source → build → library → diff → message → apply, for one crate.
    fn patch(&mut self, name: &str, saved: Instant) -> Result<()> {
        let Some((crate_name, root)) = self.ws.members.get(name).and_then(|m| m.lib.clone()) else {
            return Ok(());
        };
        let scanned = source::scan(&crate_name, &root);
        let sources_hash = sources_hash(&self.ws.members[name].dir.join("src"));
        let state = self.crates.entry(name.to_string()).or_default();
        if state.failed == Some(sources_hash) {
            return Ok(());
        }
        let mut edited = None;
        if let Ok(new) = &scanned {
            let diff = source::compare(&state.snapshot, new);
            for (id, reason) in &diff.not_hot {
                if state.reported_not_hot.insert(id.clone()) {
                    self.shell.note(format_args!("not hot: `{id}`: {reason}"));
                }
            }
            if !diff.blockers.is_empty() {
                let reasons: Vec<String> =
                    diff.blockers.iter().map(|b| format!("`{}`: {}", b.item, b.reason)).collect();
                if self.restart {
                    self.restart(&reasons.join("; "));
                } else {
                    for reason in reasons {
                        self.shell.warn(format_args!(
                            "restart needed: {reason}; the program keeps running the previous code"
                        ));
                    }
                }
                return Ok(());
            }
            for warning in &diff.warnings {
                self.shell.warn(warning);
            }
            edited = Some(diff.edited);
        }

        self.shell.status("Compiling", format_args!("{name} (hot patch)"));
        let build_started = Instant::now();
        let waited = build_started.saturating_duration_since(saved);
        let features = self.features_of(name);
        let lock = compile::BuildLock::acquire(&self.profile.target_dir)?;
        let mut build = compile::build_patch(&self.profile, name, &features, &self.shell);
        if matches!(&build, Ok(b) if b.fresh) {
            // The sources changed, yet cargo calls the library up to date: another
            // workspace with the same layout shares this target directory and built
            // last (cargo hashes path packages by relative path). Make ours newer.
            let _ = std::fs::File::options()
                .append(true)
                .open(&root)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            build = compile::build_patch(&self.profile, name, &features, &self.shell);
        }
        let built = match build {
            Ok(build) => build.library,
            Err(e) if e.downcast_ref::<BuildFailed>().is_some() => {
                self.crates.entry(name.to_string()).or_default().failed = Some(sources_hash);
                self.shell
                    .error(format_args!("could not compile `{name}`; the program keeps running the previous code"));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let build_time = build_started.elapsed();
        let generation = self.crates.get(name).map_or(0, |c| c.generation) + 1;
        let placed = self.session.place(&built, &crate_name, generation)?;
        drop(lock);
        let diff_started = Instant::now();
        let library = Library::read(&placed)?;
        let Some(agent) = &self.agent else {
            self.shell.warn(format_args!(
                "`{name}` built, but the program is not connected (does its `main` call `hotreload::init()`?)"
            ));
            self.crates.entry(name.to_string()).or_default().failed = None;
            return Ok(());
        };
        let state = self.crates.entry(name.to_string()).or_default();
        state.failed = None;
        let patch = diff::diff(&agent.known, &state.current, &crate_name, &library);
        let diff_time = diff_started.elapsed();
        if !patch.applicable() {
            let _ = std::fs::remove_file(&placed);
            let items: Vec<String> = patch.refused.iter().map(|id| format!("`{id}`")).collect();
            let reason = format!("{}: signature or type layout changed (restart needed)", items.join(", "));
            if self.restart {
                self.restart(&reason);
            } else {
                self.shell.warn(format_args!(
                    "refused to reload `{name}`: {reason}; the program keeps running the previous code"
                ));
            }
            return Ok(());
        }
        let toolchain = library.toolchain().context("the library's records disagree on the compiler")?;
        let functions: Vec<FunctionInfo> = library
            .functions
            .iter()
            .filter(|(id, _)| hotreload_protocol::record::crate_of(id) == crate_name)
            .map(|(id, r)| FunctionInfo::new(id.clone(), r.signature))
            .collect();
        let request = self.next_request;
        self.next_request += 1;
        let load =
            ToolMessage::Load(LoadRequest::new(request, crate_name.clone(), generation, placed, functions, toolchain));
        let agent = self.agent.as_mut().expect("checked above");
        agent.writer.write_all(&message::encode(&load)).context("failed to send the patch to the program")?;
        match self.wait_reply(request)? {
            AgentMessage::Applied { switched, load_micros, apply_micros, .. } => {
                let elapsed = saved.elapsed();
                let agent = self.agent.as_mut().expect("still connected");
                for (id, record) in &library.functions {
                    if hotreload_protocol::record::crate_of(id) == crate_name {
                        agent.known.insert(id.clone(), record.signature);
                    }
                }
                let state = self.crates.entry(name.to_string()).or_default();
                state.generation = generation;
                state.current = library
                    .functions
                    .keys()
                    .filter(|id| hotreload_protocol::record::crate_of(id) == crate_name)
                    .cloned()
                    .collect();
                if let Ok(new) = scanned {
                    state.snapshot = new;
                }
                let updated = match &edited {
                    Some(edited) => patch.updated.iter().filter(|id| edited.contains(*id)).count(),
                    None => patch.updated.len(),
                };
                self.shell.status(
                    "Reloaded",
                    format_args!(
                        "{name}: {updated} updated, {} added, {} removed ({} ms)",
                        patch.added.len(),
                        patch.removed.len(),
                        elapsed.as_millis()
                    ),
                );
                if self.shell.verbosity() >= Verbosity::Verbose {
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
                            "wait {} ms, build {} ms, diff {:.1} ms, load {:.1} ms, switch {:.3} ms \
                             ({switched} slots), generation {generation}",
                            waited.as_millis(),
                            build_time.as_millis(),
                            diff_time.as_secs_f64() * 1e3,
                            load_micros as f64 / 1e3,
                            apply_micros as f64 / 1e3,
                        ),
                    );
                }
            }
            AgentMessage::Refused { reason, .. } => {
                self.shell.warn(format_args!(
                    "the program refused the patch of `{name}`: {reason}; it keeps running the previous code"
                ));
            }
            other => self.shell.warn(format_args!("unexpected answer from the program: {other:?}")),
        }
        Ok(())
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

/// A hash over every `.rs` file below `dir`, names and contents.
fn sources_hash(dir: &Path) -> u64 {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
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
