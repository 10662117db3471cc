//! `cargo hotreload run`: build, start, watch, patch — in one loop.
//!
//! Everything the session knows lives in one `Driver`, and only the loop's thread
//! touches it; watcher, socket and process threads send [`Event`]s.

pub mod app;
mod job;
mod requests;
mod start;

use crate::apply::inject;
use crate::apply::session::{Incoming, Session};
use crate::build::{self, BuildError, Features, Profile, ProgramBuild};
use crate::check::layout;
use crate::cli::{GlobalArgs, RunArgs};
use crate::detect::source::{self, Snapshot};
use crate::detect::watch::{self, Batch};
use crate::detect::Sources;
use crate::error::{exit, Error};
use crate::shell::Shell;
use crate::steer::settings::{self, Settings};
use crate::workspace::{Binary, HotCrate, Workspace};
use anyhow::{Context, Result};
use app::App;
use hotreload_protocol::control::Mode;
use job::{Outcome, Refusal};
use start::{Early, ProgramPlan};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::OsString;
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
    /// `CONNECT_DEADLINE` (5 s) after the program with this pid started, or
    /// `RECONNECT_DEADLINE` (1 s) after its agent's connection closed while it ran.
    ConnectDeadline {
        /// Its pid.
        pid: u32,
        /// Whether its agent had connected and the connection closed.
        lost: bool,
    },
}

/// What every "restart needed" warning ends with.
const RESTART_HINT: &str = "the program keeps running the previous code (`--restart` restarts it on such changes)";

/// How long a started program may take to connect before the session says it has not.
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

/// How long a program whose agent's connection closed may take to connect again (an
/// agent of its own, started again after an `exec`) before the session says it has not.
const RECONNECT_DEADLINE: Duration = Duration::from_secs(1);

/// Files whose change needs a restart, by path: a hash of their content, `None` for
/// one that did not exist.
type RestartFiles = BTreeMap<PathBuf, Option<u64>>;

/// A program built and not yet started.
struct BuiltProgram {
    program: ProgramBuild,
    /// Each manifest and build script of the workspace as the build read it.
    restart_files: RestartFiles,
    /// Each hot crate's package name, source snapshot and source hash: read before the
    /// build, scanned on a thread once it was done (joined once the program started).
    sources: std::thread::JoinHandle<Vec<ScannedCrate>>,
}

/// A crate's package name, source snapshot and source hash.
type ScannedCrate = (String, Snapshot, u64);

/// How long the agent may take to answer a load.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the session until interrupted (or until the program exits, with
/// `--exit-with-app`); returns the exit code.
pub fn run(global: &GlobalArgs, args: &RunArgs, shell: &Shell) -> Result<i32, Error> {
    // The build starts from the manifests as they read, while cargo reads the workspace.
    let early = start::Early::start(global, args, shell);
    // A rustc run of ~14 ms, while cargo reads the workspace and builds the program:
    // the toolchain's own rustc beside cargo's, not rustup's proxy (~8 ms more).
    let beside_cargo = std::env::var_os("CARGO").map(|c| Path::new(&c).with_file_name("rustc")).filter(|r| r.is_file());
    let rustc = std::env::var("RUSTC").ok().or_else(|| Some(beside_cargo?.to_str()?.to_string()));
    let rustc = rustc.unwrap_or_else(|| "rustc".into());
    let base_cfg = std::sync::Arc::new(crate::detect::cfg::PendingCfg::new(rustc, !args.release));
    // Whether the agent library is built, in case the program needs it preloaded.
    let agent_built = std::thread::spawn(build::built_agent);
    let ws = Workspace::load(global.manifest_path.as_deref(), global.target_dir.as_deref())?;
    let ProgramPlan { binary, profile, features } = ProgramPlan::new(&ws, global, args)?;
    let entries = build::LINKED_PATCHES && !args.self_contained;
    // With entries redirected, the binary's own functions reload too.
    let binary_reloads = entries && matches!(binary.kind, "bin" | "example");
    if !binary_reloads && ws.reloadable(entries).next().is_none() {
        shell.warn(if entries {
            "the workspace has no library crate, so nothing can be reloaded"
        } else {
            "no workspace library depends on `hotreload-runtime`, so nothing can be reloaded; add \
             `hotreload-runtime` to a library's [dependencies] and mark functions with #[hotreload::hot]"
        });
    }
    let settings = initial_settings(&ws.root.join("Cargo.toml"), args)?;
    if args.log {
        log::set_boxed_logger(Box::new(StderrLogger)).ok();
        log::set_max_level(log::LevelFilter::Info);
    }
    writable(&profile.target_dir)?;
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
    let _watcher = watch_workspace(&ws, &binary, &profile, args, tx.clone())?;
    let preload = build::LINKED_PATCHES && binary.runtime.is_none();
    if preload {
        warn_runtime_without_agent(&ws, &binary, shell);
    }
    let plan = ProgramPlan { binary, profile, features };
    let mut driver = Driver::new(ws, plan, settings, base_cfg, session, (tx, rx), args, shell);
    if preload {
        let built = agent_built.join().ok().flatten().map(Ok);
        let library = built.unwrap_or_else(|| build::build_agent(shell)).map_err(|e| match e {
            BuildError::Failed => "the agent library did not compile".to_string(),
            e => format!("{e:#}"),
        });
        driver.config.agent = AgentSource::Preloaded(library);
    }
    match driver.build_and_start(early) {
        Ok(()) => driver.warm_patches(),
        // As after the program exits: the next save builds it again (a watcher that
        // quits over a typo is restarted by hand after every one).
        Err(Error::BuildFailed { package }) if !args.exit_with_app => {
            shell.error(format_args!("could not compile `{package}`; waiting for a change to build it again"));
        }
        Err(e) => return Err(e),
    }
    Ok(driver.event_loop(args.exit_with_app)?)
}

/// Hot builds turn on the runtime's agent through the binary's package (cargo takes
/// `--features dep/feature` for the built package only): when only libraries depend on
/// the runtime, the program's copy has no agent, and the preloaded one cannot reach
/// what was registered with that copy. Said once, at start.
fn warn_runtime_without_agent(ws: &Workspace, binary: &Binary, shell: &Shell) {
    let users = ws.runtime_users(binary);
    if users.is_empty() {
        return;
    }
    let verb = if users.len() == 1 { "depends" } else { "depend" };
    let users = users.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", ");
    shell.warn(format_args!(
        "{users} {verb} on `hotreload-runtime` but `{}` does not, so the program's runtime has no agent of its \
         own: `init()` and `safepoint()` do nothing and `on_reload` callbacks never run (the preloaded agent \
         reloads the program); add `hotreload-runtime` to `{}`'s [dependencies] to have them",
        binary.package, binary.package
    ));
}

/// The workspace's manifests and build scripts: files whose change needs a restart.
fn restart_paths(ws: &Workspace) -> Vec<PathBuf> {
    let files = ws.members.values().flat_map(|m| [m.dir.join("Cargo.toml"), m.dir.join("build.rs")]);
    let all: BTreeSet<PathBuf> = files.chain([ws.root.join("Cargo.toml")]).collect();
    all.into_iter().collect()
}

/// [`restart_paths`], each by a hash of its content (`None`: no such file).
fn restart_files(ws: &Workspace) -> RestartFiles {
    let root_manifest = ws.root.join("Cargo.toml");
    restart_paths(ws)
        .into_iter()
        .map(|path| {
            let hash = restart_fingerprint(&path, &root_manifest);
            (path, hash)
        })
        .collect()
}

/// A hash of what in `path` needs a restart when it changes: all of it, but the root
/// manifest's hotreload settings.
fn restart_fingerprint(path: &Path, root_manifest: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = match path == root_manifest {
        true => settings::without_settings(&text),
        false => text,
    };
    Some(hotreload_protocol::record::fnv1a(text.as_bytes()))
}

/// The settings a session starts with: the manifest's, `--mode` over them.
fn initial_settings(root_manifest: &Path, args: &RunArgs) -> Result<Settings, Error> {
    let mut settings = Settings::load(root_manifest)?;
    if let Some(mode) = &args.mode {
        settings.mode = Mode::parse(mode)
            .ok_or_else(|| Error::Usage(format!("`{mode}` is not a mode; use one of {}", Mode::VALUES)))?;
    }
    Ok(settings)
}

/// Starts watching every member, and the binary's directory, for saves.
fn watch_workspace(
    ws: &Workspace,
    binary: &Binary,
    profile: &Profile,
    args: &RunArgs,
    tx: Sender<Event>,
) -> Result<watch::Watcher> {
    let member_dirs: Vec<PathBuf> = ws.members.values().map(|m| m.dir.clone()).collect();
    // The binary's folder, and libraries' folders outside `src/`.
    let libs = ws.members.values().filter_map(crate::workspace::Member::lib_dir);
    let extra: Vec<PathBuf> = binary.src.parent().map(Path::to_path_buf).into_iter().chain(libs).collect();
    let mut excluded = vec![ws.target_dir.clone(), profile.target_dir.clone()];
    excluded.dedup();
    let filter = watch::Filter::new(&ws.root, &member_dirs, excluded);
    let debounce = Duration::from_millis(args.debounce);
    watch::start(&watch::roots(&member_dirs, &extra), filter, debounce, move |batch| {
        let _ = tx.send(Event::Changed(batch));
    })
}

/// What a batch of saved files means.
#[derive(Debug, Default)]
struct Changes {
    /// Hot crates whose library source changed, by package.
    crates: BTreeSet<String>,
    /// Files that need a restart, as shown, and why.
    restart: Vec<(String, &'static str)>,
    /// Whether the settings in the root manifest changed.
    settings: bool,
}

/// What an edit of the root manifest was.
enum ManifestEdit {
    /// Only the hotreload settings (whether they differ from the session's).
    Settings(bool),
    /// Something else.
    Other,
}

/// What one saved file is to the session.
#[derive(Debug, PartialEq, Eq)]
enum SavedFile {
    /// Library source of this hot crate.
    HotSource(String),
    /// Anything else the program is built from: a restart takes it; why.
    NeedsRestart(&'static str),
    /// The source of a target the program is not built from (another binary, an
    /// example, a test, a benchmark): nothing to do.
    OtherTarget,
}

/// What `path` is: a hot crate's library source (not its binaries, nor the program's
/// `main.rs`), the running binary's source, another target's source (ignored), or a
/// file only a restart takes.
fn saved_file(
    ws: &Workspace,
    binary: &Binary,
    binary_crate: Option<&HotCrate>,
    path: &Path,
    entries: bool,
) -> SavedFile {
    let Some(member) = ws.owner_of(path) else { return SavedFile::NeedsRestart("changed") };
    let src = member.dir.join("src");
    if let Some(krate) = binary_crate.filter(|_| is_binary_source(member, binary, path)) {
        return SavedFile::HotSource(krate.package.clone());
    }
    // Below `src/`, or below the library root's own folder when it is elsewhere.
    let in_lib_dir = member.lib_dir().is_some_and(|dir| path.starts_with(dir));
    let is_lib_source = member.reloadable(entries)
        && (path.starts_with(&src) || in_lib_dir)
        && path != binary.src
        && !path.starts_with(src.join("bin"))
        && !path.ends_with("main.rs");
    let other_target = path.ends_with("main.rs")
        || path.starts_with(src.join("bin"))
        || ["examples", "tests", "benches"].iter().any(|dir| path.starts_with(member.dir.join(dir)));
    if is_lib_source {
        SavedFile::HotSource(member.name.clone())
    } else if other_target && !is_binary_source(member, binary, path) {
        SavedFile::OtherTarget
    } else if path.ends_with("Cargo.toml") || path.ends_with("build.rs") {
        SavedFile::NeedsRestart("changed")
    } else if member.lib.as_ref().is_some_and(|(_, root)| root.parent() == Some(member.dir.as_path())) {
        // Its sources would be the whole package folder, `target/` and all: not read as
        // the library's (`Member::lib_dir`).
        SavedFile::NeedsRestart(
            "is in a library whose root is in its package's own folder (`[lib] path = \"lib.rs\"`), which is \
             not reloaded: move the library's files below a folder of their own (`src/`) to reload it",
        )
    } else {
        SavedFile::NeedsRestart("is not in a reloadable library crate")
    }
}

/// Whether `path`, a file of `member`, is the binary's source: its root, a module in
/// the root's own directory (`src/bin/tool/`), or, for a `src/main.rs` in a package with
/// no library, any file under `src/` but other binaries'.
fn is_binary_source(member: &crate::workspace::Member, binary: &Binary, path: &Path) -> bool {
    if member.name != binary.package || path.extension().is_none_or(|e| e != "rs") {
        return false;
    }
    let own_dir = match binary.src.file_name() {
        Some(name) if name == "main.rs" => binary.src.parent().map(Path::to_path_buf),
        _ => Some(binary.src.with_extension("")),
    };
    let src = member.dir.join("src");
    if path == binary.src || (binary.src != src.join("main.rs") && own_dir.is_some_and(|d| path.starts_with(d))) {
        return true;
    }
    binary.src == src.join("main.rs")
        && member.lib.is_none()
        && path.starts_with(&src)
        && !path.starts_with(src.join("bin"))
}

/// Checks, before anything is built or started, that patches can be written to
/// `dir`: created if missing, and a file written and removed in it.
fn writable(dir: &Path) -> Result<(), Error> {
    let probe = dir.join(format!(".hotreload-probe-{}", std::process::id()));
    let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&probe, b"probe"));
    let _ = std::fs::remove_file(&probe);
    // Set long ago in a shell profile, the variable is easily forgotten: name it.
    let from_env = std::env::var_os("CARGO_HOTRELOAD_TARGET_DIR")
        .is_some_and(|v| Path::new(&v) == dir || std::path::absolute(&v).is_ok_and(|v| v == dir));
    let origin = if from_env { " (set by CARGO_HOTRELOAD_TARGET_DIR)".to_string() } else { String::new() };
    written.map_err(|source| Error::TargetDir { dir: dir.to_path_buf(), origin, source })
}

/// `CARGO_HOTRELOAD_TARGET_DIR`, or `<cargo's target dir>/hotreload` (which
/// `--target-dir` moves with cargo's).
pub fn hot_target_dir(ws: &Workspace) -> PathBuf {
    match std::env::var_os("CARGO_HOTRELOAD_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => std::path::absolute(&dir).unwrap_or_else(|_| PathBuf::from(dir)),
        None => ws.target_dir.join("hotreload"),
    }
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

/// What the session knows of one hot crate, by what it is.
#[derive(Default)]
struct CrateState {
    /// The code the program runs.
    running: Running,
    /// What builds of it found.
    cache: BuildCache,
    /// What has been said of it, so each thing is said once.
    said: Said,
    /// Its patches' outcomes, for `status`.
    history: History,
}

/// The code the program runs for a crate.
#[derive(Default)]
struct Running {
    /// Its source.
    snapshot: Snapshot,
    /// Its generation; 0 is the build the program started with.
    generation: u64,
    /// Function ids in that generation.
    current: BTreeSet<String>,
    /// Content hash of the sources when the running program's build started.
    built_from: u64,
    /// Content hash of the sources of the last patch sent to the program, applied or
    /// not (it may have crashed the program).
    sent: Option<u64>,
    /// Content hash of the sources the last patch job read, whatever its outcome: a
    /// save it already took (`now` right after the save) is no change when the
    /// watcher reports it later.
    seen: Option<u64>,
    /// Its compiled functions, once read (from the program's build, then each patch's).
    code: Option<crate::check::code::Functions>,
    /// The rlib of its newest linked patch that applied or changed no function (a new
    /// `const` or type): crates above it compile against it.
    rlib: Option<PathBuf>,
    /// Every function, the crate's own or an instance of another's, that its code had
    /// and an applied patch's has not, by symbol: a copy the program still has, but
    /// that the crate's new code no longer calls (it calls an upstream crate's copy),
    /// or a function of its own removed (which, back, is the program's again).
    dropped: BTreeSet<String>,
}

impl Running {
    /// Makes `new` the rlib crates above compile against. Only the newest is compiled
    /// against: the older copy's folder goes, unless `new` was kept in it (a patch that
    /// changed no function took the next generation's folder, as the next applied one does).
    fn replace_rlib(&mut self, new: Option<PathBuf>) {
        let new_dir = new.as_deref().and_then(Path::parent);
        if let Some(dir) = self.rlib.as_deref().and_then(Path::parent).filter(|d| Some(*d) != new_dir) {
            let _ = std::fs::remove_dir_all(dir);
        }
        self.rlib = new;
    }
}

/// What builds of a crate found, by the content hash of its sources.
#[derive(Default)]
struct BuildCache {
    /// The sources that last failed to build: not rebuilt until they change.
    failed: Option<u64>,
    /// The sources last checked with `--check`.
    checked: Option<u64>,
}

/// What has been said of a crate.
#[derive(Default)]
struct Said {
    /// Functions reported as not hot.
    not_hot: BTreeSet<String>,
    /// Why the last self-contained patch was not linked.
    self_contained_because: Option<String>,
    /// `Compiling` was said for a patch job that a newer save superseded: the jobs
    /// that follow, until one ends, continue it and say nothing more (a burst of saves
    /// is one `Compiling`, one outcome).
    compiling: bool,
}

/// A crate's patch outcomes.
#[derive(Default)]
struct History {
    /// The last patch attempt and when it ended.
    last: Option<(Outcome, Instant)>,
    /// Why the running program needs a restart to take this crate's source, if it does.
    restart_needed: Option<String>,
    /// Save → applied times of recent reloads, in milliseconds.
    recent_ms: VecDeque<u64>,
}

impl History {
    /// How many reload times `recent_ms` keeps.
    const RECENT: usize = 10;

    /// Takes a patch's outcome; returns whether it undid an edit that needed a restart.
    fn record(&mut self, outcome: &Outcome) -> bool {
        // Back to the source the program runs after a refusal or a failed build: said,
        // and `status` forgets the failure.
        let failed_last = matches!(self.last, Some((Outcome::BuildFailed, _)));
        let undone = *outcome == Outcome::Unchanged && (self.restart_needed.is_some() || failed_last);
        match outcome {
            Outcome::Refused(Refusal::RestartNeeded(why)) => self.restart_needed = Some(why.clone()),
            Outcome::Applied { .. } | Outcome::Unchanged => self.restart_needed = None,
            _ => {}
        }
        if undone || !matches!(outcome, Outcome::StillFailing | Outcome::Unchanged) {
            self.last = Some((outcome.clone(), Instant::now()));
        }
        if let Outcome::Applied { ms, .. } = outcome {
            self.recent_ms.push_back(*ms);
            if self.recent_ms.len() > Self::RECENT {
                self.recent_ms.pop_front();
            }
        }
        undone
    }
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

/// What `run` was asked to do, fixed for the session.
struct Config {
    /// IPython's output flags, and `--check`.
    output: Output,
    /// `--restart`: restart the program on changes it cannot take.
    restart: bool,
    /// The program's arguments.
    args: Vec<String>,
    /// The program's feature selection.
    features: Features,
    /// The target's and the profile's cfgs, for the source scan.
    base_cfg: std::sync::Arc<crate::detect::cfg::PendingCfg>,
    /// Where the program's agent comes from.
    agent: AgentSource,
}

/// Where the program's agent comes from.
enum AgentSource {
    /// The program depends on the runtime: its `hotreload::init()` starts the agent.
    Own,
    /// Preloaded (see [`crate::apply::inject`]): the library, or why it could not be built.
    Preloaded(Result<PathBuf, String>),
}

/// The settings, and the root manifest they are kept in.
struct Steering {
    settings: Settings,
    root_manifest: PathBuf,
    /// The root manifest without its hotreload settings, to tell their edits apart.
    manifest_rest: String,
}

/// The loop's events: every source sends to `tx`; a handler that waits (for the
/// agent's answer) keeps what it is not waiting for in `deferred`, handled next.
struct Events {
    tx: Sender<Event>,
    rx: Receiver<Event>,
    deferred: VecDeque<Event>,
}

/// Everything a session knows; only the loop's thread touches it.
struct Driver {
    config: Config,
    steer: Steering,
    shell: Shell,
    ws: Workspace,
    binary: Binary,
    profile: Profile,
    session: Session,
    events: Events,
    /// The running program, its build, its agent, its type layouts, and what linking
    /// against it needs.
    app: Option<App>,
    program: Option<ProgramBuild>,
    agent: Option<Agent>,
    /// The running program's manifests and build scripts, as its build read them.
    restart_files: RestartFiles,
    /// Those of them said to have changed since.
    restart_said: BTreeSet<PathBuf>,
    /// The last program whose agent connected: one that lost it is said to have lost
    /// it, not to have never connected.
    connected_pid: Option<u32>,
    /// The last program that exited: its agent may have connected just before it
    /// did, and that hello arrives after the exit was seen.
    exited_pid: Option<u32>,
    layouts: layout::ProgramLayouts,
    linking: job::Linking,
    /// Each hot crate's state, by package.
    crates: BTreeMap<String, CrateState>,
    /// Crates with a change not yet applied.
    pending: BTreeSet<String>,
    /// When the oldest save each pending crate waits with was made.
    pending_since: BTreeMap<String, Instant>,
    /// Crates holding copies of functions a patch changed (instances of another crate's
    /// generics), with those functions: rebuilt against the new code, unchanged or not.
    copies_held: BTreeMap<String, BTreeSet<String>>,
    /// Functions the newest applied patch of each crate removed, by symbol: once it
    /// applies, the crates that still call them are rebuilt.
    removed_symbols: BTreeMap<String, BTreeSet<String>>,
    /// Crates built once more although their source did not change, against code that
    /// did: callers of functions a patch removed, crates whose last build failed.
    rebuild_unchanged: BTreeSet<String>,
    /// Libraries the program's last build found fresh, whose rustc command is not yet
    /// recorded, as (package, rlib) (see [`Driver::record_unrecorded`]).
    unrecorded: Vec<(String, PathBuf)>,
    next_request: u64,
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    fn new(
        ws: Workspace,
        ProgramPlan { binary, profile, features }: ProgramPlan,
        settings: Settings,
        base_cfg: std::sync::Arc<crate::detect::cfg::PendingCfg>,
        session: Session,
        (tx, rx): (Sender<Event>, Receiver<Event>),
        args: &RunArgs,
        shell: &Shell,
    ) -> Driver {
        let root_manifest = ws.root.join("Cargo.toml");
        let manifest_rest = settings::without_settings(&std::fs::read_to_string(&root_manifest).unwrap_or_default());
        let config = Config {
            output: Output { print: args.print, log: args.log, hide_errors: args.hide_errors, check: args.check },
            restart: args.restart,
            args: args.args.clone(),
            features,
            base_cfg,
            agent: AgentSource::Own,
        };
        Driver {
            config,
            steer: Steering { settings, root_manifest, manifest_rest },
            shell: shell.clone(),
            ws,
            binary,
            profile,
            session,
            events: Events { tx, rx, deferred: VecDeque::new() },
            app: None,
            program: None,
            agent: None,
            restart_files: RestartFiles::new(),
            restart_said: BTreeSet::new(),
            connected_pid: None,
            exited_pid: None,
            layouts: layout::ProgramLayouts::default(),
            linking: job::Linking { disabled: args.self_contained, ..Default::default() },
            crates: BTreeMap::new(),
            pending: BTreeSet::new(),
            pending_since: BTreeMap::new(),
            copies_held: BTreeMap::new(),
            removed_symbols: BTreeMap::new(),
            rebuild_unchanged: BTreeSet::new(),
            unrecorded: Vec::new(),
            next_request: 1,
        }
    }

    fn event_loop(&mut self, exit_with_app: bool) -> Result<i32> {
        loop {
            let event = match self.events.deferred.pop_front() {
                Some(event) => event,
                None => self.events.rx.recv().context("all event sources stopped")?,
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
                    self.exited_pid = Some(pid);
                    self.shell.status("Exited", format_args!("`{}` ({})", self.binary.name, app::describe(status)));
                    if exit_with_app {
                        use std::os::unix::process::ExitStatusExt;
                        return Ok(status.code().unwrap_or(128 + status.signal().unwrap_or(0)));
                    }
                    use std::os::unix::process::ExitStatusExt;
                    if status.signal() == Some(libc::SIGINT) {
                        // Ctrl-C went to the program (it had the terminal): the user is done.
                        return Ok(exit::INTERRUPTED);
                    }
                    self.shell.note("waiting for a change to rebuild and restart the program");
                }
                Event::ConnectDeadline { pid, lost } => self.check_connected(pid, lost),
                Event::Interrupt => {
                    if let Some(app) = self.app.take() {
                        app.signal(libc::SIGINT);
                        if app.wait(Duration::from_secs(3)).is_none() {
                            app.stop(Duration::from_secs(2));
                        }
                    }
                    return Ok(exit::INTERRUPTED);
                }
            }
        }
    }

    /// Builds the program (or keeps the build `early` started, when it is the same),
    /// then starts it; on a build failure the program stays stopped.
    fn build_and_start(&mut self, early: Option<Early>) -> Result<(), crate::error::Error> {
        let built = self.build_program(early).map_err(|e| match e {
            BuildError::Failed => crate::error::Error::BuildFailed { package: self.binary.package.clone() },
            e => crate::error::Error::Other(e.into()),
        })?;
        Ok(self.start_program(built)?)
    }

    /// Builds the program from the sources as they are now. Each hot crate's sources are
    /// read (and hashed) as the build starts, and scanned on a thread once it is done: a
    /// save that lands during the build is then newer than what the program runs, and
    /// is patched once it connects. The scan (and the target's cfgs it needs) is off the
    /// start's path.
    /// A build `early` started from the workspace's sketch is kept when it ran the same
    /// command, with the sources read before it.
    fn build_program(&mut self, early: Option<Early>) -> Result<BuiltProgram, BuildError> {
        let (speculation, mut early_sources, early_restart) = match early {
            Some(e) => (Some(e.build), e.sources, Some(e.restart_files)),
            None => (None, BTreeMap::new(), None),
        };
        let entries = self.entries_enabled();
        let mut hot: Vec<HotCrate> = self.ws.reloadable(entries).filter_map(|m| self.ws.hot_crate(&m.name)).collect();
        hot.extend(self.binary_crate());
        let read: Vec<(HotCrate, Sources)> = hot
            .into_iter()
            .map(|krate| {
                let sources = early_sources.remove(&krate.src);
                let sources = sources.unwrap_or_else(|| crate::detect::read_sources(&krate.src));
                (krate, sources)
            })
            .collect();
        // The sketch's, when it names the same files.
        let restart_files = match early_restart {
            Some(files) if files.keys().eq(restart_paths(&self.ws).iter()) => files,
            _ => restart_files(&self.ws),
        };
        let target = (self.binary.kind, self.binary.name.as_str());
        let (profile, package, features, shell) =
            (&self.profile, &self.binary.package, &self.config.features, &self.shell);
        let speculated = speculation.is_some();
        let kept = speculation.and_then(|s| s.keep(profile, package, target, features, shell));
        if speculated {
            let (word, verb) = if kept.is_some() { ("Kept", "the same") } else { ("Discarded", "another") };
            let why =
                format_args!("the build started from the manifests alone: `cargo metadata` asks for {verb} command");
            shell.very_verbose_status(word, why);
        }
        let (lock, mut program, took) = match kept {
            Some(outcome) => outcome?,
            None => {
                let started = Instant::now();
                let lock = build::BuildLock::acquire(&self.profile.program_lock_dir())?;
                let program = build::build_program(profile, package, target, features, shell, false)?;
                (lock, program, started.elapsed())
            }
        };
        // The scan, of the sources as read before the build, with the features it
        // compiled each crate with (a `#[cfg(feature = …)]` twin would otherwise stand
        // for the running code), and the cfgs it needs: while the program starts
        // (beside the build they slowed it).
        let to_scan: Vec<(HotCrate, Vec<String>, Sources)> = read
            .into_iter()
            .map(|(krate, sources)| {
                let invocation = program.invocations.get(&krate.crate_name).or(match krate.kind {
                    crate::workspace::CrateKind::Bin => program.binary.as_ref(),
                    crate::workspace::CrateKind::Lib => None,
                });
                let features = invocation.into_iter().flat_map(build::Invocation::features).map(String::from);
                (krate, features.collect(), sources)
            })
            .collect();
        let base = self.config.base_cfg.clone();
        let scan = std::thread::spawn(move || -> Vec<ScannedCrate> {
            let scan_one = |(krate, features, sources): (HotCrate, Vec<String>, Sources)| {
                let cfg = base.get().with_features(features.iter().map(String::as_str));
                let snapshot = source::scan_read(&krate.crate_name, &krate.root, &cfg, &sources.texts);
                (krate.package, snapshot.unwrap_or_default(), sources.hash)
            };
            to_scan.into_iter().map(scan_one).collect()
        });
        // Libraries a plain `cargo build` left fresh printed no rustc command: they are
        // rebuilt to record it once the program runs (see `record_unrecorded`), so the
        // program starts as soon as its own build is done.
        self.unrecorded = self.unrecorded(&program);
        program.executable = self.session.place_program(&program.executable)?;
        drop(lock);
        self.shell.status(
            "Finished",
            format_args!(
                "`{}` hot build of `{}` in {:.2}s",
                if self.profile.release { "release" } else { "dev" },
                self.binary.name,
                took.as_secs_f64()
            ),
        );
        Ok(BuiltProgram { program, restart_files, sources: scan })
    }

    /// Of `restart` (files and why they need a restart), those that differ from what the
    /// program was built from; one said to differ before and now back is noted.
    fn changed_since_build(&mut self, restart: Vec<(String, &'static str)>) -> Vec<(String, &'static str)> {
        let mut changed = Vec::new();
        for (file, why) in restart {
            let path = self.ws.root.join(&file);
            let as_built = self.restart_files.get(&path);
            if as_built.is_none_or(|hash| *hash != self.restart_fingerprint(&path)) {
                self.restart_said.insert(path);
                changed.push((file, why));
            } else if self.restart_said.remove(&path) {
                self.shell.note(format_args!("`{file}` is back to what the program was built from"));
            }
        }
        changed
    }

    /// A hash of what in `path` needs a restart when it changes.
    fn restart_fingerprint(&self, path: &Path) -> Option<u64> {
        restart_fingerprint(path, &self.steer.root_manifest)
    }

    /// The reloadable libraries whose rustc command `program`'s build did not record
    /// (found fresh from a plain `cargo build`, which printed no command), as (package,
    /// rlib).
    fn unrecorded(&self, program: &ProgramBuild) -> Vec<(String, PathBuf)> {
        let unrecorded = self.reloadable_libs().filter(|(_, crate_name)| !program.invocations.contains_key(crate_name));
        let mut unrecorded: Vec<(String, PathBuf)> = unrecorded
            .filter_map(|(package, crate_name)| Some((package, program.unrecorded.get(&crate_name)?.clone())))
            .collect();
        // The binary's own crate, which patches of its functions are compiled as.
        if program.binary.is_none() && self.binary_crate().is_some() {
            let package = &self.binary.package;
            if let Some(built) = build::compiled_executable(&program.executable) {
                if !unrecorded.iter().any(|(p, _)| p == package) {
                    unrecorded.push((package.clone(), built));
                }
            }
        }
        unrecorded
    }

    /// The program's reloadable libraries whose rustc command patches need (every one,
    /// when entries are redirected), as (package, crate name).
    fn reloadable_libs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        let dependencies = self.ws.dependencies_of(&self.binary.package);
        let reloadable = self.ws.reloadable(true).filter(move |m| {
            self.entries_enabled() && (dependencies.contains(&m.name) || m.name == self.binary.package)
        });
        reloadable.filter_map(|m| Some((m.name.clone(), m.lib.as_ref()?.0.clone())))
    }

    /// Records how cargo compiles the libraries the program's build found fresh (a
    /// first session after a plain `cargo build`): builds the program again, quietly,
    /// with their rlibs set aside (see [`build::record_fresh`]), while the program
    /// already runs; patches need the commands. The executable this build makes is not
    /// run: it is the one running, built again.
    fn record_unrecorded(&mut self) {
        let unrecorded = std::mem::take(&mut self.unrecorded);
        if unrecorded.is_empty() || self.program.is_none() {
            return;
        }
        let listed = unrecorded.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let them = if unrecorded.len() == 1 { "it" } else { "them" };
        self.shell
            .status("Recording", format_args!("how cargo compiles {listed} for patches (rebuilding {them} once)"));
        let target = (self.binary.kind, self.binary.name.as_str());
        let outputs: Vec<PathBuf> = unrecorded.iter().map(|(_, output)| output.clone()).collect();
        let recorded =
            build::BuildLock::acquire(&self.profile.program_lock_dir()).map_err(BuildError::Tool).and_then(|_lock| {
                let (features, shell) = (&self.config.features, &self.shell);
                build::record_fresh(&self.profile, &self.binary.package, target, features, shell, &outputs)
            });
        let recorded = match recorded {
            Ok(recorded) => recorded,
            Err(e) => {
                let why = match e {
                    BuildError::Failed | BuildError::Superseded => "the build failed".to_string(),
                    BuildError::Tool(e) => format!("{e:#}"),
                };
                self.shell.warn(format_args!("could not record how cargo compiles {listed}: {why}"));
                return;
            }
        };
        let Some(program) = self.program.as_mut() else { return };
        for (crate_name, invocation) in recorded.invocations {
            program.invocations.entry(crate_name).or_insert(invocation);
        }
        if program.binary.is_none() {
            program.binary = recorded.binary;
        }
        let packages: Vec<String> = unrecorded.into_iter().map(|(package, _)| package).collect();
        self.rescan_recorded(&packages);
    }

    /// Scans `packages` again with the features their recorded command compiled them
    /// with, when their sources are still the ones built: a `#[cfg(feature = …)]` twin
    /// would otherwise stand for the running code (a first session after a plain `cargo
    /// build` learns the features only now).
    fn rescan_recorded(&mut self, packages: &[String]) {
        for package in packages {
            let Some(krate) = self.krate(package) else { continue };
            let Some(state) = self.crates.get(package) else { continue };
            let unchanged = crate::detect::sources_hash(&krate.src) == state.running.built_from;
            if !unchanged {
                continue;
            }
            let cfg = self.cfg_of(&krate.crate_name);
            let Ok(snapshot) = source::scan(&krate.crate_name, &krate.root, &cfg) else { continue };
            if let Some(state) = self.crates.get_mut(package) {
                state.running.snapshot = snapshot;
            }
        }
    }

    /// Starts a built program; what it runs becomes each crate's state.
    fn start_program(&mut self, built: BuiltProgram) -> Result<()> {
        let BuiltProgram { program, restart_files, sources } = built;
        self.restart_files = restart_files;
        self.restart_said.clear();
        self.pending.clear();
        self.pending_since.clear();
        self.shell.status("Running", format_args!("`{}`", program.executable.display()));
        let tx = self.events.tx.clone();
        let mut env: Vec<(&str, OsString)> =
            self.session.env().iter().map(|(k, v)| (*k, v.as_os_str().to_owned())).collect();
        env.extend(self.preload_env(&program.executable));
        let app = App::spawn(&program.executable, &self.config.args, &env, move |pid, status| {
            let _ = tx.send(Event::AppExited { pid, status });
        })?;
        // The program starts first; its events wait in the channel until this is done.
        let sources = sources.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        for (name, snapshot, built_from) in sources {
            self.take_crate(name, snapshot, built_from);
        }
        self.connect_deadline(app.pid(), false);
        self.layouts = layout::ProgramLayouts::read(&program.executable);
        self.program = Some(program);
        // A new program: its addresses are read again when a patch is linked.
        self.linking.image = None;
        self.linking.code = None;
        self.linking.providers = None;
        self.linking.c_functions.clear();
        self.linking.next_base = 0;
        self.linking.generations.clear();
        self.app = Some(app);
        self.agent = None;
        Ok(())
    }

    /// Checks, after a deadline, that the program `pid` has an agent connected.
    fn connect_deadline(&self, pid: u32, lost: bool) {
        let tx = self.events.tx.clone();
        std::thread::spawn(move || {
            std::thread::sleep(if lost { RECONNECT_DEADLINE } else { CONNECT_DEADLINE });
            let _ = tx.send(Event::ConnectDeadline { pid, lost });
        });
    }

    /// Says why changes cannot reach the program `pid` when it still runs without an
    /// agent: it never connected, or (`lost`) its connection closed.
    fn check_connected(&mut self, pid: u32, lost: bool) {
        let Some(app) = self.app.as_ref().filter(|app| app.pid() == pid) else { return };
        if self.agent.is_some() || app.status().is_some() || !lost && self.connected_pid == Some(pid) {
            return;
        }
        let name = &self.binary.name;
        let preloaded = matches!(self.config.agent, AgentSource::Preloaded(_));
        let why = match (lost, preloaded) {
            (false, false) => {
                format!(
                    "`{name}` has not connected after {}s: does its `main` call `hotreload::init()`?",
                    CONNECT_DEADLINE.as_secs()
                )
            }
            (false, true) => format!(
                "`{name}` has not connected after {}s: the preloaded agent did not start in it (does it clear its \
                 environment, or run another executable?); adding `hotreload-runtime` and calling \
                 `hotreload::init()` in `main` starts one from inside.",
                CONNECT_DEADLINE.as_secs()
            ),
            (true, false) => format!(
                "`{name}` still runs but its agent's connection closed (did it run another executable with `exec`, \
                 or close the agent's socket?)."
            ),
            (true, true) => format!(
                "`{name}` still runs but the preloaded agent's connection closed: it ran another executable in its \
                 own process (`exec`), which the agent does not follow (it takes itself out of the environment so \
                 that programs `{name}` starts never load it), or it closed the agent's socket."
            ),
        };
        let wait = match lost {
            false => "Changes wait until it connects",
            true => "Changes wait until it connects again (stop it, and the next save restarts it)",
        };
        self.shell.warn(format_args!("{why} {wait}"));
    }

    /// The environment that preloads the agent into `executable`, when the program does
    /// not start its own; why it cannot is said once per reason.
    fn preload_env(&mut self, executable: &Path) -> Vec<(&'static str, OsString)> {
        let AgentSource::Preloaded(library) = &self.config.agent else { return Vec::new() };
        let why = match library.as_ref().map(|l| (l, inject::unfit(executable))) {
            Ok((library, None)) => return inject::preload_env(library),
            Ok((_, Some(why))) => format!("`{}` cannot take the agent: {why}", self.binary.name),
            Err(why) => format!("no agent for `{}`: {why}", self.binary.name),
        };
        self.shell.warn(format_args!("{why}; changes cannot reach it"));
        Vec::new()
    }

    /// A crate as the program that starts runs it. What was said of it stays said (once
    /// per session, not at every restart), and its history stays for `status`.
    fn take_crate(&mut self, name: String, snapshot: Snapshot, built_from: u64) {
        let old = self.crates.remove(&name).unwrap_or_default();
        let mut state = CrateState { said: old.said, history: old.history, ..CrateState::default() };
        // A new program runs the source as built: a refusal is moot, and no patch of
        // the old one (applied or not) is its last reload. Recent times stay: they are
        // the session's.
        state.history.restart_needed = None;
        state.history.last = None;
        for (id, reason) in source::compare(&Snapshot::default(), &snapshot).not_hot {
            if state.said.not_hot.insert(id.clone()) {
                self.shell.note(format_args!("not hot: `{id}`: {reason}"));
            }
        }
        state.running = Running { snapshot, built_from, ..Running::default() };
        self.crates.insert(name, state);
    }

    /// The crate the session calls `name`: a workspace library, or the binary.
    fn krate(&self, name: &str) -> Option<HotCrate> {
        self.binary_crate().filter(|b| b.package == name).or_else(|| self.ws.hot_crate(name))
    }

    /// The binary's crate, when changed functions are redirected at their entries (the
    /// only way a binary's new code reaches the program that runs it).
    fn binary_crate(&self) -> Option<HotCrate> {
        (self.entries_enabled() && matches!(self.binary.kind, "bin" | "example"))
            .then(|| self.ws.binary_crate(&self.binary))
    }

    /// Every workspace library crate `name` depends on, directly or not; for the binary,
    /// its package's library too.
    pub(super) fn dependencies(&self, name: &str) -> BTreeSet<String> {
        match self.binary_crate().filter(|b| b.package == name) {
            Some(_) => {
                let package = &self.binary.package;
                let mut deps = self.ws.dependencies_of(package);
                if self.ws.members.get(package).is_some_and(|m| m.lib.is_some()) {
                    deps.insert(package.clone());
                }
                deps
            }
            None => self.ws.dependencies_of(name),
        }
    }

    /// The state of hot crate `name`.
    fn state(&mut self, name: &str) -> &mut CrateState {
        self.crates.entry(name.to_string()).or_default()
    }

    /// Rebuilds the program and, once it built, stops the running one and starts the
    /// new one. A build that fails leaves the running program as it is.
    fn restart(&mut self, why: &str) {
        self.shell.status("Restarting", format_args!("`{}`: {why}", self.binary.name));
        match self.build_program(None) {
            Ok(built) => {
                if let Some(app) = self.app.take() {
                    app.stop(Duration::from_secs(3));
                }
                self.agent = None;
                match self.start_program(built) {
                    // The new program's code is what the next patch is compared with.
                    Ok(()) => self.warm_patches(),
                    Err(e) => self.shell.error(format_args!("{e:#}")),
                }
            }
            Err(BuildError::Failed) => {
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
        self.record_unrecorded();
        let names: BTreeSet<String> = self.crates.keys().cloned().collect();
        if names.is_empty() {
            return;
        }
        let started = Instant::now();
        let listed = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let order = self.ws.dependency_order(&names);
        let crates: Vec<HotCrate> = order.iter().filter_map(|name| self.krate(name)).collect();
        if crates.iter().all(|krate| self.linked_open(krate)) {
            for krate in &crates {
                self.prime_linked(krate);
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
        let _lock = build::BuildLock::acquire(&self.profile.patch_dir());
        match self.build_patch_deps(false) {
            Ok(()) => {}
            // Its diagnostics were shown; the patches that need it say so again.
            Err(BuildError::Failed) => {}
            Err(e) => self.shell.warn(format_args!("could not prepare hot patches: {e:#}")),
        }
        self.shell.status(
            "Watching",
            format_args!("{listed} for changes (patch builds ready in {:.2}s)", started.elapsed().as_secs_f64()),
        );
    }

    /// The cfgs `crate_name` is compiled with: the target's, the profile's, and its
    /// features as the program's build has them (none known before the first build).
    pub(super) fn cfg_of(&self, crate_name: &str) -> crate::detect::cfg::Cfg {
        self.cfg_compiled_by(self.program.as_ref().and_then(|h| h.invocations.get(crate_name)))
    }

    /// The cfgs of a crate `invocation` compiles: the target's, the profile's and its
    /// features.
    fn cfg_compiled_by(&self, invocation: Option<&build::Invocation>) -> crate::detect::cfg::Cfg {
        self.config.base_cfg.get().with_features(invocation.into_iter().flat_map(build::Invocation::features))
    }

    /// Each workspace crate's source hash, by package name.
    fn member_hashes(&self) -> BTreeMap<String, u64> {
        self.ws
            .members
            .iter()
            .map(|(name, m)| (name.clone(), crate::detect::sources_hash(&m.dir.join("src"))))
            .collect()
    }

    fn on_session(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Hello { conn, peer, toolchain, functions, writer } => {
                if self.app.as_ref().map(App::pid) != Some(peer.pid) {
                    if self.exited_pid == Some(peer.pid) {
                        return;
                    }
                    self.shell.warn(format_args!(
                        "ignored a connection from process {}: it is not the program this session started",
                        peer.pid
                    ));
                    return;
                }
                let known: BTreeMap<String, u64> = functions.iter().map(|f| (f.id.clone(), f.signature)).collect();
                for (name, state) in &mut self.crates {
                    if let Some(crate_name) = self.ws.members.get(name).and_then(|m| m.lib.as_ref()).map(|l| &l.0) {
                        state.running.current = known
                            .keys()
                            .filter(|id| hotreload_protocol::record::crate_of(id) == crate_name)
                            .cloned()
                            .collect();
                    }
                }
                // A preloaded program has no `#[hot]` slots: "0 hot functions" read as
                // "nothing reloads" to a new user.
                let what = match (known.len(), self.entries_enabled()) {
                    (0, true) => "its functions reload at their entries".to_string(),
                    (n, true) => format!("{n} `#[hot]` functions; the others reload at their entries"),
                    (n, false) => format!("{n} `#[hot]` functions"),
                };
                self.shell.verbose_status("Connected", format_args!("to process {} ({what})", peer.pid));
                let program = known.keys().cloned().collect();
                self.agent = Some(Agent { conn, writer, known, program, toolchain });
                self.connected_pid = Some(peer.pid);
                self.catch_up();
            }
            Incoming::Closed { conn } => {
                if self.agent.as_ref().map(|a| a.conn) == Some(conn) {
                    self.agent = None;
                    // A program that exits closes it too: said only if it still runs.
                    if let Some(pid) = self.app.as_ref().map(App::pid) {
                        self.connect_deadline(pid, true);
                    }
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
            self.defer_behind_exit(Event::Changed(batch));
            return;
        }
        let changes = self.classify(&batch.paths);
        if self.app.is_none() {
            let why = match self.exited_pid {
                Some(_) if self.all_taken(&changes) => {
                    let what = "the program that exited had taken the change";
                    self.shell.verbose_status("Ignored", format_args!("a save seen after the exit: {what}"));
                    return;
                }
                Some(_) => "a change was saved after it exited",
                None => "a change was saved after its build failed",
            };
            self.restart(why);
            return;
        }
        // A manifest or build script saved unchanged, or put back as the program was
        // built from it, needs nothing.
        let restart = self.changed_since_build(changes.restart);
        if !restart.is_empty() {
            if self.config.restart {
                let changed: Vec<String> = restart.iter().map(|(file, _)| format!("`{file}` changed")).collect();
                self.restart(&changed.join(", "));
                return;
            }
            for (file, why) in &restart {
                self.shell.warn(format_args!("restart needed: `{file}` {why}; {RESTART_HINT}"));
            }
        }
        if changes.settings {
            self.shell.status("Mode", format_args!("{} (set in Cargo.toml)", self.steer.settings.mode));
        }
        for name in changes.crates {
            if self.taken(&name) {
                let why = "a patch already read this save (`now`, or the catch-up at the connection)";
                self.shell.verbose_status("Unchanged", format_args!("{name}: {why}"));
                continue;
            }
            self.pending_since.entry(name.clone()).or_insert(batch.first_event);
            self.make_pending(name);
        }
        self.apply_pending(batch.first_event, false);
    }

    /// Whether the program that exited had already taken every change in `changes`: its
    /// last source of each crate, the last patch sent (which may be what crashed it) or
    /// else the build, is the one on disk. Such a save, seen only after the exit, is no
    /// reason to restart; a save back to the build's source after a patch is.
    fn all_taken(&self, changes: &Changes) -> bool {
        changes.restart.is_empty()
            && !changes.settings
            && changes.crates.iter().all(|name| {
                let (Some(krate), Some(state)) = (self.krate(name), self.crates.get(name)) else { return false };
                let last = state.running.sent.unwrap_or(state.running.built_from);
                crate::detect::sources_hash(&krate.src) == last
            })
    }

    /// Whether a patch job already read crate `name`'s sources as they are on disk: the
    /// watcher's report of that save came after (`now` ran first).
    fn taken(&self, name: &str) -> bool {
        let (Some(krate), Some(state)) = (self.krate(name), self.crates.get(name)) else { return false };
        state.running.seen == Some(crate::detect::sources_hash(&krate.src))
    }

    /// Crates whose sources on disk no patch job has read, nor the program's build: saved
    /// since, though the watcher may not have said so yet.
    pub(super) fn unseen_changes(&self) -> Vec<String> {
        let unseen = |(name, state): (&String, &CrateState)| {
            let krate = self.krate(name)?;
            let seen = state.running.seen.unwrap_or(state.running.built_from);
            (crate::detect::sources_hash(&krate.src) != seen).then(|| name.clone())
        };
        self.crates.iter().filter_map(unseen).collect()
    }

    /// Queues `event` behind the exit of the program, whose status is already set: its
    /// exit event is sent right after, so this waits for it.
    fn defer_behind_exit(&mut self, event: Event) {
        while !self.events.deferred.iter().any(|e| matches!(e, Event::AppExited { .. })) {
            match self.events.rx.recv() {
                Ok(event) => self.events.deferred.push_back(event),
                Err(_) => break,
            }
        }
        let (exits, others): (VecDeque<Event>, VecDeque<Event>) =
            self.events.deferred.drain(..).partition(|e| matches!(e, Event::AppExited { .. }));
        self.events.deferred = exits;
        self.events.deferred.push_back(event);
        self.events.deferred.extend(others);
    }

    /// What saved files mean: hot crates changed, files that need a restart, and the
    /// settings, taken here when only they changed in the root manifest.
    fn classify(&mut self, paths: &BTreeSet<PathBuf>) -> Changes {
        let mut changes = Changes::default();
        for path in paths {
            let shown = path.strip_prefix(&self.ws.root).unwrap_or(path).display().to_string();
            if *path == self.steer.root_manifest {
                match self.take_manifest(path, &shown) {
                    ManifestEdit::Settings(changed) => {
                        changes.settings |= changed;
                        continue;
                    }
                    ManifestEdit::Other => {}
                }
            }
            let binary = self.binary_crate();
            match saved_file(&self.ws, &self.binary, binary.as_ref(), path, self.entries_enabled()) {
                SavedFile::HotSource(name) => {
                    changes.crates.insert(name);
                }
                SavedFile::NeedsRestart(why) => changes.restart.push((shown, why)),
                SavedFile::OtherTarget => {
                    self.shell.verbose_status("Ignored", format_args!("`{shown}`: the program is not built from it"))
                }
            }
        }
        changes
    }

    /// Our own `aimport`/`mode` edits of the root manifest, or the user's by hand,
    /// change only the settings: taken. Anything else in it needs a restart.
    fn take_manifest(&mut self, path: &Path, shown: &str) -> ManifestEdit {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let rest = settings::without_settings(&text);
        if rest != self.steer.manifest_rest {
            self.steer.manifest_rest = rest;
            return ManifestEdit::Other;
        }
        match Settings::parse(&text) {
            Ok(new) if new != self.steer.settings => {
                self.steer.settings = new;
                ManifestEdit::Settings(true)
            }
            Ok(_) => ManifestEdit::Settings(false),
            Err(e) => {
                self.shell.warn(format_args!("ignored the hotreload settings in {shown}: {e:#}"));
                ManifestEdit::Settings(false)
            }
        }
    }

    /// Builds and applies pending crates in dependency order: those the settings
    /// enable, or with `force` (`now`) all but the skipped ones.
    fn apply_pending(&mut self, saved: Instant, force: bool) -> Vec<(String, Outcome)> {
        let mut outcomes = Vec::new();
        let mut retry = BTreeSet::new();
        let mut updating = BTreeSet::new();
        let mut order = self.ws.dependency_order(&self.pending);
        // The binary depends on the libraries, and nothing on it: last.
        if let Some(binary) = self.binary_crate() {
            order.sort_by_key(|name| *name == binary.package);
        }
        for name in order {
            if !self.steer.settings.allows(&name, force) {
                if self.config.output.check && !force {
                    self.check(&name);
                }
                continue;
            }
            let waiting_on = self
                .dependencies(&name)
                .into_iter()
                .find(|dep| self.crates.get(dep).is_some_and(|c| c.cache.failed.is_some()));
            if let Some(dep) = waiting_on {
                self.shell.note(format_args!("`{name}` will be rebuilt once `{dep}` builds again"));
                outcomes.push((name, Outcome::BuildFailed));
                continue;
            }
            if self.agent.is_none() && self.app.is_some() {
                // Starting up (or its agent is gone, which was said): applied once it connects.
                self.shell.verbose_status("Waiting", format_args!("{name}: applied when the program connects"));
                outcomes.push((name, Outcome::Waiting));
                continue;
            }
            self.pending.remove(&name);
            // Timed from the first save it applies, however long it waited.
            let saved = self.pending_since.remove(&name).unwrap_or(saved);
            let outcome = self.patch(&name, saved, force);
            self.copies_held.remove(&name);
            self.rebuild_unchanged.remove(&name);
            if let Outcome::Applied { .. } = outcome {
                self.after_applied(&name, saved, force, (&mut retry, &mut updating));
            }
            outcomes.push((name, outcome));
        }
        if !retry.is_empty() || !updating.is_empty() {
            for name in &retry {
                self.shell.status("Retrying", format_args!("`{name}`, whose last build failed, against the new code"));
                self.state(name).cache.failed = None;
                self.rebuild_unchanged.insert(name.clone());
            }
            self.pending.extend(retry);
            self.pending.extend(updating);
            outcomes.extend(self.apply_pending(saved, force));
        }
        outcomes
    }

    /// What follows the applied patch of `name`: crates whose last build failed are to be
    /// retried (`retry`), and those calling a function it removed or holding copies of
    /// its changed code rebuilt (`updating`; held ones wait for `now`, as said).
    fn after_applied(
        &mut self,
        name: &str,
        saved: Instant,
        force: bool,
        (retry, updating): (&mut BTreeSet<String>, &mut BTreeSet<String>),
    ) {
        // Not those still pending in this round: they build against the new code
        // anyway (`now` said `Retrying` of a crate it had just applied).
        let failed = self.failed_dependents(name);
        retry.extend(failed.into_iter().filter(|d| !self.pending.contains(d)));
        for (caller, calls) in self.callers_of_removed(name) {
            if !self.pending.contains(&caller) && !retry.contains(&caller) && updating.insert(caller.clone()) {
                self.rebuild_unchanged.insert(caller.clone());
                let listed = calls.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
                self.shell.status("Updating", format_args!("`{caller}`, which calls {listed}, gone from `{name}`"));
            }
        }
        for (holder, functions) in &self.copies_held {
            if !self.pending.contains(holder) && !retry.contains(holder) {
                let listed = functions.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
                if self.steer.settings.allows(holder, force) {
                    self.shell.status("Updating", format_args!("`{holder}`, which holds copies of {listed}"));
                } else {
                    // Pending, as a saved change of its own would be.
                    let mode = &self.steer.settings.mode;
                    let why = format!("mode {mode}; `cargo hotreload now` applies it");
                    self.shell.status("Holding", format_args!("`{holder}`, which holds copies of {listed} ({why})"));
                    self.pending_since.entry(holder.clone()).or_insert(saved);
                }
                updating.insert(holder.clone());
            }
        }
    }

    /// Marks `name` as changed; one that the settings hold is said so once per change,
    /// so that a save never goes unanswered.
    fn make_pending(&mut self, name: String) {
        if !self.steer.settings.enabled(&name) && !self.pending.contains(&name) {
            let why = if self.steer.settings.skip.contains(&name) {
                "skipped".into()
            } else {
                format!("mode {}", self.steer.settings.mode)
            };
            self.shell.status("Holding", format_args!("{name} ({why}; `cargo hotreload now` applies it)"));
        }
        self.pending.insert(name);
    }

    /// A workspace crate `name` builds on whose last change was refused as needing a
    /// restart: `name` is compiled against its running code, which lacks that change.
    pub(super) fn held_by_restart(&self, name: &str) -> Option<String> {
        self.dependencies(name)
            .into_iter()
            .find(|dep| self.crates.get(dep).is_some_and(|c| c.history.restart_needed.is_some()))
    }

    /// Crates that depend on `name` and whose last build failed: the failure may have
    /// been `name`'s missing function or type.
    fn failed_dependents(&self, name: &str) -> BTreeSet<String> {
        let dependents = self.dependents(name);
        dependents.into_iter().filter(|d| self.crates.get(d).is_some_and(|c| c.cache.failed.is_some())).collect()
    }

    /// The workspace crates that depend on `name`, directly or not, the binary's included.
    fn dependents(&self, name: &str) -> BTreeSet<String> {
        let mut dependents = self.ws.dependents_of(name);
        if let Some(binary) = self.binary_crate().filter(|b| self.dependencies(&b.package).contains(name)) {
            dependents.insert(binary.package);
        }
        dependents
    }

    /// The crates whose running code calls functions that the patch of `name` just
    /// applied removed, with those functions (demangled). They keep calling the old
    /// copies, but their source no longer builds: rebuilt against the new code, as
    /// `cargo build` would, they show the error, and are retried when `name` changes.
    fn callers_of_removed(&mut self, name: &str) -> BTreeMap<String, Vec<String>> {
        let Some(gone) = self.removed_symbols.remove(name).filter(|g| !g.is_empty()) else {
            return BTreeMap::new();
        };
        let mut callers = BTreeMap::new();
        for dependent in self.dependents(name) {
            let Some(objects) = self.running_objects(&dependent) else { continue };
            match crate::check::code::uses_of(&objects, &gone) {
                Ok(used) if !used.is_empty() => {
                    callers.insert(dependent, used.iter().map(|s| crate::link::demangle(s)).collect());
                }
                Ok(_) => {}
                Err(e) => self.shell.verbose_status("Skipped", format_args!("reading {}: {e:#}", objects.display())),
            }
        }
        callers
    }

    /// The program connected: every crate whose sources changed since its build began,
    /// or since a patch job last read them (saves while it was built, starting, or
    /// disconnected), is applied now.
    fn catch_up(&mut self) {
        for name in self.unseen_changes() {
            self.make_pending(name);
        }
        if !self.pending.is_empty() {
            self.apply_pending(Instant::now(), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_says_when_an_edit_that_needed_a_restart_is_undone() {
        let mut history = History::default();
        let refused = Outcome::Refused(Refusal::RestartNeeded("`logic::Row`: its layout changed".into()));
        assert!(!history.record(&refused));
        assert_eq!(history.restart_needed.as_deref(), Some("`logic::Row`: its layout changed"));
        // Still failing or unchanged sources leave no trace, but an undone refusal does.
        assert!(!history.record(&Outcome::StillFailing));
        assert!(history.record(&Outcome::Unchanged));
        assert_eq!(history.restart_needed, None);
        assert_eq!(history.last.as_ref().map(|(o, _)| o), Some(&Outcome::Unchanged));
        assert!(!history.record(&Outcome::Unchanged));
        // A refusal by the program itself needs no restart.
        history.record(&Outcome::Refused(Refusal::ByProgram("cannot map".into())));
        assert_eq!(history.restart_needed, None);
        for ms in 0..15 {
            history.record(&Outcome::Applied { ms, route: job::Route::Linked, kept: Vec::new() });
        }
        assert_eq!(history.recent_ms, (5..15).collect::<Vec<_>>());
        // A failed build, then the source the program runs again: said, and forgotten.
        assert!(!history.record(&Outcome::BuildFailed));
        assert!(history.record(&Outcome::Unchanged));
        assert_eq!(history.last.as_ref().map(|(o, _)| o), Some(&Outcome::Unchanged));
    }

    /// Member `name` in `/w/NAME`, with a library rooted at `lib` when there is one.
    fn member(name: &str, lib: Option<&str>) -> crate::workspace::Member {
        crate::workspace::Member {
            name: name.into(),
            dir: format!("/w/{name}").into(),
            lib: lib.map(|root| (name.into(), root.into())),
            hot: false,
            runtime_name: None,
            depends_on: BTreeSet::new(),
            runnables: Vec::new(),
            binary_runtime: None,
            default_run: None,
            default_member: true,
        }
    }

    #[test]
    fn the_binarys_sources_are_its_root_and_its_own_modules() {
        let member = |lib: bool| member("app", lib.then_some("/w/app/src/lib.rs"));
        let binary = |src: &str| Binary {
            package: "app".into(),
            kind: "bin",
            name: "tool".into(),
            src: src.into(),
            runtime: None,
        };
        let main = binary("/w/app/src/main.rs");
        let is = |m: &crate::workspace::Member, b: &Binary, p: &str| is_binary_source(m, b, Path::new(p));
        // `src/main.rs` and, with no library, every module beside it.
        assert!(is(&member(false), &main, "/w/app/src/main.rs"));
        assert!(is(&member(false), &main, "/w/app/src/ui/mod.rs"));
        assert!(!is(&member(false), &main, "/w/app/src/bin/other.rs"));
        assert!(!is(&member(false), &main, "/w/app/build.rs"));
        // With a library, the modules are the library's.
        assert!(is(&member(true), &main, "/w/app/src/main.rs"));
        assert!(!is(&member(true), &main, "/w/app/src/ui/mod.rs"));
        // A `src/bin/` binary: its root and its own directory.
        let tool = binary("/w/app/src/bin/tool.rs");
        assert!(is(&member(false), &tool, "/w/app/src/bin/tool.rs"));
        assert!(is(&member(false), &tool, "/w/app/src/bin/tool/args.rs"));
        assert!(!is(&member(false), &tool, "/w/app/src/bin/other.rs"));
        assert!(!is(&member(false), &tool, "/w/app/src/lib.rs"));
        let nested = binary("/w/app/src/bin/tool/main.rs");
        assert!(is(&member(false), &nested, "/w/app/src/bin/tool/args.rs"));
        // Another package's files never are.
        let other = crate::workspace::Member { name: "logic".into(), ..member(false) };
        assert!(!is(&other, &main, "/w/app/src/main.rs"));
    }

    /// A library rooted in its package's own folder is not read as reloadable source:
    /// its saves say so and what to do, not "not in a reloadable library crate".
    #[test]
    fn a_library_rooted_in_its_package_folder_says_what_to_do() {
        let logic = member("logic", Some("/w/logic/lib.rs"));
        let ws = Workspace {
            root: "/w".into(),
            target_dir: "/w/target".into(),
            members: [("logic".to_string(), logic)].into(),
        };
        let app = Binary {
            package: "app".into(),
            kind: "bin",
            name: "app".into(),
            src: "/w/app/src/main.rs".into(),
            runtime: None,
        };
        for file in ["/w/logic/lib.rs", "/w/logic/shapes.rs", "/w/logic/shapes/circle.rs"] {
            match saved_file(&ws, &app, None, Path::new(file), true) {
                SavedFile::NeedsRestart(why) => assert!(why.contains("package's own folder"), "{file}: {why}"),
                other => panic!("{file}: {other:?}"),
            }
        }
        assert_eq!(
            saved_file(&ws, &app, None, Path::new("/w/logic/build.rs"), true),
            SavedFile::NeedsRestart("changed")
        );
    }
}
