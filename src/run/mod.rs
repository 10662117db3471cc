//! `cargo hotreload run`: build, start, watch, patch — in one loop.
//!
//! Everything the session knows lives in one `Driver`, and only the loop's thread
//! touches it; watcher, socket and process threads send [`Event`]s.

mod control;
mod linked;
mod patch;

use crate::app::{self, App};
use crate::cli::{GlobalArgs, RunArgs};
use crate::compile::{self, BuildFailed, Features, HostBuild, Profile};
use crate::layout;
use crate::session::{Incoming, Session};
use crate::settings::{self, Settings};
use crate::shell::Shell;
use crate::source::{self, Snapshot};
use crate::watch::{self, Batch};
use crate::workspace::{Binary, Workspace};
use anyhow::{Context, Result};
use patch::Outcome;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
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
    /// [`CONNECT_DEADLINE`] after the program with this pid started.
    ConnectDeadline {
        /// Its pid.
        pid: u32,
    },
}

/// What every "restart needed" warning ends with.
const RESTART_HINT: &str = "the program keeps running the previous code (`--restart` restarts it on such changes)";

/// How long a started program may take to connect before the session says it has not.
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

/// A program built and not yet started.
struct BuiltProgram {
    host: HostBuild,
    /// Each hot crate's package name, source snapshot and source hash, taken before the build.
    sources: Vec<(String, Snapshot, u64)>,
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
            "no workspace library depends on `hotreload-runtime`, so nothing can be reloaded; \
             add `hotreload-runtime` to a library's [dependencies] and mark functions with #[hotreload::hot]",
        );
    }
    let profile = Profile {
        manifest_path: global.manifest_path.clone().unwrap_or_else(|| ws.root.join("Cargo.toml")),
        target_dir: hot_target_dir(global, &ws),
        cargo_target_dir: ws.target_dir.clone(),
        release: args.release,
        members: ws.members.keys().cloned().collect(),
        runtime_names: ws.runtime_names(),
    };
    let root_manifest = ws.root.join("Cargo.toml");
    let mut settings = Settings::load(&root_manifest)?;
    if let Some(mode) = &args.mode {
        settings.mode = hotreload_protocol::control::Mode::parse(mode).with_context(|| {
            format!("`{mode}` is not a mode; use one of {}", hotreload_protocol::control::Mode::VALUES)
        })?;
    }
    if args.log {
        log::set_boxed_logger(Box::new(StderrLogger)).ok();
        log::set_max_level(log::LevelFilter::Info);
    }
    let (tx, rx) = mpsc::channel();

    let session_tx = tx.clone();
    let session = Session::open(&profile.target_dir, &ws.root, move |incoming| {
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

    let manifest_rest = settings::without_settings(&std::fs::read_to_string(&root_manifest).unwrap_or_default());
    let mut driver = Driver {
        settings,
        root_manifest,
        manifest_rest,
        output: Output { print: args.print, log: args.log, hide_errors: args.hide_errors, check: args.check },
        shell: shell.clone(),
        features: Features {
            features: args.features.clone(),
            all: args.all_features,
            no_default: args.no_default_features,
            runtime: binary.runtime.clone(),
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
        pending_since: BTreeMap::new(),
        next_request: 1,
        linking: linked::Linking { disabled: args.self_contained, ..Default::default() },
        layouts: layout::ProgramLayouts::default(),
        patch_deps: None,
        base_cfg: crate::cfg::Cfg::for_build(&std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()), !args.release),
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

/// `--target-dir`, or `<cargo's target dir>/hotreload`.
pub fn hot_target_dir(global: &GlobalArgs, ws: &Workspace) -> PathBuf {
    global.target_dir.clone().unwrap_or_else(|| ws.target_dir.join("hotreload"))
}

/// `--log`: the tool's reload lines through the `log` facade, printed at info.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            anstream::eprintln!("[{} hotreload] {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

/// IPython's output flags.
#[derive(Clone, Copy, Debug, Default)]
struct Output {
    /// `--print`: `Reloading 'logic'.`
    print: bool,
    /// `--log`: the same through `log` at info.
    log: bool,
    /// `--hide-errors`: no diagnostics for failed patch builds.
    hide_errors: bool,
    /// `--check`: build changes that are not applied, to report errors.
    check: bool,
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
    /// Content hash of the sources when the running program's build started.
    built_from: u64,
    /// Content hash of the sources last checked with `--check`.
    checked: Option<u64>,
    /// Why the last self-contained patch was not linked (said once per reason).
    self_contained_because: Option<String>,
    /// The last patch attempt and when it ended.
    last: Option<(Outcome, Instant)>,
    /// Why the running program needs a restart to take this crate's source, if it does.
    restart_needed: Option<String>,
    /// Save → applied times of recent reloads, in milliseconds.
    recent_ms: VecDeque<u64>,
}

/// The connected agent.
struct Agent {
    conn: u64,
    writer: UnixStream,
    /// Signature of every function the program has ever had.
    known: BTreeMap<String, u64>,
    /// The functions of the program's own build, whose slots it has.
    program: BTreeSet<String>,
    /// The hash of the rustc that built the program's runtime.
    toolchain: u64,
}

struct Driver {
    settings: Settings,
    root_manifest: PathBuf,
    /// The root manifest without its hotreload settings, to tell their edits apart.
    manifest_rest: String,
    output: Output,
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
    /// When the oldest save each pending crate waits with was made.
    pending_since: BTreeMap<String, Instant>,
    next_request: u64,
    linking: linked::Linking,
    /// The running program's type layouts, read in the background at each start.
    layouts: layout::ProgramLayouts,
    /// The sources of each workspace crate when the libraries self-contained patches
    /// link were last built; `None` before that.
    patch_deps: Option<BTreeMap<String, u64>>,
    /// The target's and the profile's cfgs, for the source scan.
    base_cfg: crate::cfg::Cfg,
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
                Event::ConnectDeadline { pid } => {
                    if self.app.as_ref().map(App::pid) == Some(pid) && self.agent.is_none() {
                        self.shell.warn(format_args!(
                            "`{}` has not connected after {}s: does its `main` call `hotreload::init()`? \
                             Changes wait until it connects",
                            self.binary.name,
                            CONNECT_DEADLINE.as_secs()
                        ));
                    }
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
        let built = self.build_program()?;
        self.start_program(built)
    }

    /// Builds the program from the sources as they are now. Each hot crate's source is
    /// scanned *before* the build starts: a save that lands during the build is then
    /// newer than what the program runs, and is patched once it connects.
    fn build_program(&mut self) -> Result<BuiltProgram> {
        let hot: Vec<(String, String, PathBuf)> =
            self.ws.hot().filter_map(|m| m.lib.clone().map(|(c, root)| (m.name.clone(), c, root))).collect();
        let sources = hot
            .into_iter()
            .map(|(name, crate_name, root)| {
                let hash = patch::sources_hash(&self.ws.members[&name].dir.join("src"));
                let snapshot = source::scan(&crate_name, &root, &self.cfg_of(&crate_name)).unwrap_or_default();
                (name, snapshot, hash)
            })
            .collect();
        let started = Instant::now();
        let lock = compile::BuildLock::acquire(&self.profile.host_lock_dir())?;
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
        Ok(BuiltProgram { host, sources })
    }

    /// Starts a built program; what it runs becomes each crate's state.
    fn start_program(&mut self, built: BuiltProgram) -> Result<()> {
        let BuiltProgram { host, sources } = built;
        self.pending.clear();
        self.pending_since.clear();
        for (name, snapshot, hash) in sources {
            let mut state = CrateState::default();
            // Said once per session, not at every restart; history stays for `status`.
            if let Some(old) = self.crates.remove(&name) {
                state.reported_not_hot = old.reported_not_hot;
                // A refusal is moot once the program runs the source it refused.
                state.last = old.last.filter(|(outcome, _)| !matches!(outcome, Outcome::Refused(_)));
                state.recent_ms = old.recent_ms;
            }
            for (id, reason) in source::compare(&Snapshot::default(), &snapshot).not_hot {
                if state.reported_not_hot.insert(id.clone()) {
                    self.shell.note(format_args!("not hot: `{id}`: {reason}"));
                }
            }
            state.snapshot = snapshot;
            state.built_from = hash;
            self.crates.insert(name, state);
        }
        self.shell.status("Running", format_args!("`{}`", host.executable.display()));
        let tx = self.tx.clone();
        let app = App::spawn(&host.executable, &self.args, &self.session.env(), move |pid, status| {
            let _ = tx.send(Event::AppExited { pid, status });
        })?;
        let (tx, pid) = (self.tx.clone(), app.pid());
        std::thread::spawn(move || {
            std::thread::sleep(CONNECT_DEADLINE);
            let _ = tx.send(Event::ConnectDeadline { pid });
        });
        self.layouts = layout::ProgramLayouts::read(&host.executable);
        self.host = Some(host);
        // A new program: its addresses are read again when a patch is linked.
        self.linking.host = None;
        self.linking.next_base = 0;
        self.app = Some(app);
        self.agent = None;
        Ok(())
    }

    /// Rebuilds the program and, once it built, stops the running one and starts the
    /// new one. A build that fails leaves the running program as it is.
    fn restart(&mut self, why: &str) {
        self.shell.status("Restarting", why);
        match self.build_program() {
            Ok(built) => {
                if let Some(app) = self.app.take() {
                    app.stop(Duration::from_secs(3));
                }
                self.agent = None;
                if let Err(e) = self.start_program(built) {
                    self.shell.error(format_args!("{e:#}"));
                }
            }
            Err(e) if e.downcast_ref::<BuildFailed>().is_some() => {
                let what = if self.app.is_some() {
                    "the running program keeps its previous build"
                } else {
                    "the program stays stopped until the next change"
                };
                self.shell.error(format_args!("could not compile `{}`; {what}", self.binary.package));
            }
            Err(e) => self.shell.error(format_args!("{e:#}")),
        }
    }

    /// Prepares patch builds before the first edit: a linked patch's compile of each hot
    /// crate (warming rustc's incremental cache). When linked patches are closed
    /// (`--self-contained`, another platform), the self-contained route's libraries are
    /// built instead; otherwise only once a patch needs that fallback.
    fn warm_patches(&mut self) {
        let names: BTreeSet<String> = self.crates.keys().cloned().collect();
        if names.is_empty() {
            return;
        }
        let started = Instant::now();
        let listed = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let order = self.ws.dependency_order(&names);
        let crates: Vec<(String, String)> =
            order.iter().filter_map(|name| Some((name.clone(), self.ws.members.get(name)?.lib.clone()?.0))).collect();
        let linked = crates.iter().all(|(name, crate_name)| self.linked_open(name, crate_name));
        if linked {
            for (name, crate_name) in &crates {
                self.prime_linked(name, crate_name);
            }
            // The self-contained fallback's libraries are built when a patch first
            // needs them, not now: the first edits get both cores.
            self.shell.status(
                "Watching",
                format_args!("{listed} for changes (linked patches ready in {:.2}s)", started.elapsed().as_secs_f64()),
            );
            return;
        }
        self.shell.status(
            "Preparing",
            format_args!("patch builds of {listed} (a first session compiles their dependencies once)"),
        );
        let _lock = compile::BuildLock::acquire(&self.profile.patch_dir());
        match self.build_patch_deps(false) {
            Ok(()) => {}
            Err(e) if e.downcast_ref::<BuildFailed>().is_some() => {}
            Err(e) => self.shell.warn(format_args!("could not prepare hot patches: {e:#}")),
        }
        self.shell.status(
            "Watching",
            format_args!("{listed} for changes (patch builds ready in {:.2}s)", started.elapsed().as_secs_f64()),
        );
    }

    /// The cfgs `crate_name` is compiled with: the target's, the profile's, and its
    /// features as the program's build has them (none known before the first build).
    pub(super) fn cfg_of(&self, crate_name: &str) -> crate::cfg::Cfg {
        let invocation = self.host.as_ref().and_then(|h| h.invocations.get(crate_name));
        self.base_cfg.with_features(invocation.into_iter().flat_map(compile::Direct::features))
    }

    /// Each workspace crate's source hash, by package name.
    fn member_hashes(&self) -> BTreeMap<String, u64> {
        self.ws.members.iter().map(|(name, m)| (name.clone(), patch::sources_hash(&m.dir.join("src")))).collect()
    }

    fn on_session(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Hello { conn, peer, toolchain, functions, writer } => {
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
                let program = known.keys().cloned().collect();
                self.agent = Some(Agent { conn, writer, known, program, toolchain });
                self.catch_up();
            }
            Incoming::Closed { conn } => {
                if self.agent.as_ref().map(|a| a.conn) == Some(conn) {
                    self.agent = None;
                }
            }
            Incoming::Rejected { reason } => {
                self.shell.warn(format_args!("refused a control connection: {reason}"));
            }
            Incoming::Control { request, writer } => self.on_control(request, writer),
            Incoming::Message { message, .. } => {
                self.shell.warn(format_args!("unexpected message from the program: {message:?}"));
            }
        }
    }

    fn on_change(&mut self, batch: Batch) {
        // The program died while we were busy (a build, Ctrl-C in its terminal): take
        // its exit first, so Ctrl-C quits and a crash restarts, rather than patching a
        // dead process.
        if self.app.as_ref().is_some_and(|app| app.status().is_some()) {
            // Its exit event is sent right after the status is set: wait for it.
            while !self.deferred.iter().any(|e| matches!(e, Event::AppExited { .. })) {
                match self.rx.recv() {
                    Ok(event) => self.deferred.push_back(event),
                    Err(_) => break,
                }
            }
            let (exits, others): (VecDeque<Event>, VecDeque<Event>) =
                self.deferred.drain(..).partition(|e| matches!(e, Event::AppExited { .. }));
            self.deferred = exits;
            self.deferred.push_back(Event::Changed(batch));
            self.deferred.extend(others);
            return;
        }
        let mut restart_reasons = Vec::new();
        let mut changed = BTreeSet::new();
        let mut settings_changed = false;
        for path in &batch.paths {
            let shown = path.strip_prefix(&self.ws.root).unwrap_or(path).display().to_string();
            if *path == self.root_manifest {
                // Our own `aimport`/`mode` edits, or the user's by hand, change only the
                // settings: take them. Anything else in it needs a restart.
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let rest = settings::without_settings(&text);
                if rest == self.manifest_rest {
                    match Settings::parse(&text) {
                        Ok(new) if new != self.settings => {
                            self.settings = new;
                            settings_changed = true;
                        }
                        Ok(_) => {}
                        Err(e) => self.shell.warn(format_args!("ignored the hotreload settings in {shown}: {e:#}")),
                    }
                    continue;
                }
                self.manifest_rest = rest;
            }
            let Some(member) = self.ws.owner_of(path) else {
                restart_reasons.push((shown, "changed"));
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
                restart_reasons.push((shown, "changed"));
            } else {
                restart_reasons.push((shown, "is not in a hot crate"));
            }
        }
        if self.app.is_none() {
            self.restart("the program after a change");
            return;
        }
        if !restart_reasons.is_empty() {
            if self.restart {
                let changed: Vec<String> =
                    restart_reasons.iter().map(|(file, _)| format!("`{file}` changed")).collect();
                self.restart(&changed.join(", "));
                return;
            }
            for (file, why) in &restart_reasons {
                self.shell.warn(format_args!("restart needed: `{file}` {why}; {RESTART_HINT}"));
            }
        }
        if settings_changed {
            self.shell.status("Mode", format_args!("{} (set in Cargo.toml)", self.settings.mode));
        }
        for name in changed {
            self.pending_since.entry(name.clone()).or_insert(batch.first_event);
            self.make_pending(name);
        }
        self.apply_pending(batch.first_event, false);
    }

    /// Builds and applies pending crates in dependency order: those the settings
    /// enable, or with `force` (`now`) all but the skipped ones.
    fn apply_pending(&mut self, saved: Instant, force: bool) -> Vec<(String, Outcome)> {
        let mut outcomes = Vec::new();
        let mut retry = BTreeSet::new();
        let order = self.ws.dependency_order(&self.pending);
        for name in order {
            let enabled = if force { !self.settings.skip.contains(&name) } else { self.settings.enabled(&name) };
            if !enabled {
                if self.output.check && !force {
                    self.check(&name);
                }
                continue;
            }
            let waiting_on = self
                .ws
                .dependencies_of(&name)
                .into_iter()
                .find(|dep| self.crates.get(dep).is_some_and(|c| c.failed.is_some()));
            if let Some(dep) = waiting_on {
                self.shell.note(format_args!("`{name}` will be rebuilt once `{dep}` builds again"));
                outcomes.push((name, Outcome::BuildFailed));
                continue;
            }
            if self.agent.is_none() && self.app.is_some() {
                // Starting up: applied once it connects.
                continue;
            }
            self.pending.remove(&name);
            // Timed from the first save it applies, however long it waited.
            let saved = self.pending_since.remove(&name).unwrap_or(saved);
            let outcome = self.patch(&name, saved, force);
            if let Outcome::Applied(..) = outcome {
                retry.extend(self.failed_dependents(&name));
            }
            outcomes.push((name, outcome));
        }
        if !retry.is_empty() {
            for name in &retry {
                self.shell.status("Retrying", format_args!("`{name}`, whose last build failed, against the new code"));
                self.crates.entry(name.clone()).or_default().failed = None;
            }
            self.pending.extend(retry);
            outcomes.extend(self.apply_pending(saved, force));
        }
        outcomes
    }

    /// Marks `name` as changed; one that the settings hold is said so once per change,
    /// so that a save never goes unanswered.
    fn make_pending(&mut self, name: String) {
        if !self.settings.enabled(&name) && !self.pending.contains(&name) {
            let why = if self.settings.skip.contains(&name) {
                "skipped".into()
            } else {
                format!("mode {}", self.settings.mode)
            };
            self.shell.status("Holding", format_args!("{name} ({why}; `cargo hotreload now` applies it)"));
        }
        self.pending.insert(name);
    }

    /// Crates that depend on `name` and whose last build failed: the failure may have
    /// been `name`'s missing function or type.
    fn failed_dependents(&self, name: &str) -> BTreeSet<String> {
        let dependents = self.ws.dependents_of(name);
        dependents.into_iter().filter(|d| self.crates.get(d).is_some_and(|c| c.failed.is_some())).collect()
    }

    /// The program connected: every crate whose sources changed since its build began
    /// (saves while it was built or starting) is applied now.
    fn catch_up(&mut self) {
        let changed: Vec<String> = self
            .crates
            .iter()
            .filter(|(name, state)| patch::sources_hash(&self.ws.members[*name].dir.join("src")) != state.built_from)
            .map(|(name, _)| name.clone())
            .collect();
        for name in changed {
            self.make_pending(name);
        }
        if !self.pending.is_empty() {
            self.apply_pending(Instant::now(), false);
        }
    }
}
