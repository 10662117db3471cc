//! The build: the crate compiled as the program's build compiled it and linked against
//! the running program (see [`crate::link`]), or, when that route is closed, a
//! self-contained library (said, with the reason).

use super::plan::Plan;
use super::Stop;
use crate::build::{self, BuildError, BuildLock, LINKED_PATCHES};
use crate::detect::sources_hash;
use crate::link::{self, program::ProgramImage};
use crate::run::Driver;
use crate::workspace::{CrateKind, HotCrate};
use anyhow::Context as _;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Lints allowed in a build with stubs: each fires on items (a helper, an import, a
/// static, a macro) used only inside functions compiled as stubs.
const STUB_LINTS: [&str; 8] =
    ["-A", "dead_code", "-A", "unused_imports", "-A", "unused_macros", "-A", "unused_macro_rules"];

/// Why the linked route is closed to a crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Closed {
    /// `--self-contained`, or a platform where patches are not linked.
    NotChosen,
    /// No program was built yet.
    NotBuilt,
    /// The program's build left no record of the crate's rustc command.
    NoRecord {
        /// The directory whose `cargo clean` restores it.
        dir: PathBuf,
    },
    /// It depends on a crate that was reloaded: only a self-contained build has that
    /// crate's new code.
    AboveReloaded(String),
    /// The program is not running.
    NotRunning,
    /// The program's executable cannot be linked against.
    Program(String),
    /// No linker.
    NoLinker,
    /// The patch cannot be bound to the program's symbols.
    Unlinkable(String),
    /// No free address range within reach of the program.
    NoRoom,
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Closed::NotChosen => f.write_str("linked patches are off (`--self-contained`, or not Linux x86-64)"),
            Closed::NotBuilt => f.write_str("the program is not built"),
            Closed::NoRecord { dir } => write!(
                f,
                "there is no record of how the program's build compiled it; `cargo clean` of {} restores it",
                dir.display()
            ),
            Closed::AboveReloaded(dep) => {
                write!(f, "it depends on `{dep}`, which was reloaded: only a self-contained build has its new code")
            }
            Closed::NotRunning => f.write_str("the program is not running"),
            Closed::Program(why) | Closed::Unlinkable(why) => f.write_str(why),
            Closed::NoLinker => f.write_str("no `rust-lld` in the toolchain, nor `ld.lld` on PATH"),
            Closed::NoRoom => f.write_str("the program has no room for the patch within 2 GiB of its code"),
        }
    }
}

/// Why a linked build gave nothing.
#[derive(Debug)]
pub(crate) enum RouteError {
    /// The route is closed: the patch is built self-contained (or refused).
    Closed(Closed),
    /// The build failed.
    Build(BuildError),
}

impl From<BuildError> for RouteError {
    fn from(e: BuildError) -> Self {
        RouteError::Build(e)
    }
}

impl From<anyhow::Error> for RouteError {
    fn from(e: anyhow::Error) -> Self {
        RouteError::Build(BuildError::Tool(e))
    }
}

impl From<std::io::Error> for RouteError {
    fn from(e: std::io::Error) -> Self {
        RouteError::Build(e.into())
    }
}

/// What a linked patch build compiles.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Form<'a> {
    /// The hot functions to compile in full (`hotreload_protocol::ENV_FULL_FORM`'s
    /// value), the others as stubs; `None`: all in full.
    pub(crate) full: Option<&'a str>,
    /// With debug info, for [`crate::check::layout`] to compare: only when something
    /// that decides type layouts changed, since generating it costs rustc time.
    pub(crate) debuginfo: bool,
}

impl Form<'static> {
    /// Every hot function a stub, no debug info.
    pub(crate) const STUBS: Form<'static> = Form { full: Some(""), debuginfo: false };

    /// What priming a crate's incremental cache compiles: what its first body edit's
    /// patch will (see `compare_source`): stubs in a `hot` crate, the crate as written in
    /// another. rustc discards an incremental cache built with other arguments, and
    /// stubs bring lint arguments ([`STUB_LINTS`]): a primed cache the first patch
    /// cannot use leaves it a whole compile (2.6 s instead of 1.3 s on mini-redis).
    pub(crate) fn prime(hot: bool, debuginfo: bool) -> Form<'static> {
        Form { full: hot.then_some(""), debuginfo }
    }
}

/// What the session keeps for linking patches.
#[derive(Default)]
pub(crate) struct Linking {
    /// `--self-contained`: never link.
    pub(crate) disabled: bool,
    /// The program's executable as read for the running program, or why it cannot be
    /// linked against; reset at every (re)start.
    pub(crate) image: Option<Result<ProgramImage, String>>,
    /// `rust-lld`, once looked for.
    pub(crate) linker: Option<Option<PathBuf>>,
    /// Where the next patch goes in the running program.
    pub(crate) next_base: u64,
    /// The sources of each workspace crate when the libraries self-contained patches
    /// link were last built; `None` before that.
    pub(crate) patch_deps: Option<BTreeMap<String, u64>>,
    /// The program's executable as redirects find its functions; reset at every start.
    pub(crate) code: Option<std::sync::Arc<crate::link::image::CodeImage>>,
    /// Where functions the program's link left out are found; reset at every start.
    pub(crate) providers: Option<link::Providers>,
    /// C functions the executable never imported, at their addresses in the running
    /// process (the agent's answer); reset at every start.
    pub(crate) c_functions: BTreeMap<String, u64>,
    /// The image of every applied linked patch, of every crate, in the order applied;
    /// reset at every start. A crate's functions have copies in other crates' images
    /// too (one a binary's patch took from the library, as the program had none), and
    /// the last one applied is the newest.
    pub(crate) generations: Vec<std::sync::Arc<crate::link::image::CodeImage>>,
}

/// A built patch, not yet placed.
pub(super) enum Built {
    /// Linked against the running program: it shares the program's state.
    Linked(LinkedBuild),
    /// A self-contained library.
    SelfContained {
        /// The library.
        file: PathBuf,
        /// Whether it has debug info (see [`LinkedBuild::debuginfo`]).
        debuginfo: bool,
        /// When its build started.
        started: Instant,
        /// The patch directory's, held until the file is placed.
        _lock: BuildLock,
    },
}

impl Built {
    /// The file to place.
    pub(super) fn file(&self) -> &PathBuf {
        match self {
            Built::Linked(l) => &l.file,
            Built::SelfContained { file, .. } => file,
        }
    }

    /// Whether it has debug info: built so when something that decides layouts changed.
    pub(super) fn debuginfo(&self) -> bool {
        match self {
            Built::Linked(l) => l.debuginfo,
            Built::SelfContained { debuginfo, .. } => *debuginfo,
        }
    }

    /// When its build started.
    pub(super) fn started(&self) -> Instant {
        match self {
            Built::Linked(l) => l.started,
            Built::SelfContained { started, .. } => *started,
        }
    }
}

/// A patch linked against the running program.
pub(crate) struct LinkedBuild {
    /// The image file, ready to place in the session.
    pub(crate) file: PathBuf,
    /// The rlib it was linked from.
    pub(crate) rlib: PathBuf,
    /// Its compiled functions, when entries are redirected (read once, for the link and
    /// the entry stage).
    pub(crate) code: Option<crate::check::code::Functions>,
    /// Whether the rlib has debug info: only when something that decides type layouts
    /// changed, so only then are layouts compared.
    pub(crate) debuginfo: bool,
    /// What was bound.
    pub(crate) linked: link::Linked,
    /// When rustc started.
    pub(crate) started: Instant,
    /// Time in rustc.
    pub(crate) compiled: Duration,
    /// Time reading, binding and linking.
    pub(crate) link_time: Duration,
    /// Held until the file is placed in the session.
    pub(crate) _lock: BuildLock,
}

/// A linked patch's rustc, running. Dropped before it is finished, it is stopped.
pub(crate) struct StartedBuild {
    rustc: Option<build::Rustc>,
    /// Library (an rlib) or binary (objects).
    kind: CrateKind,
    /// The crate's name in the session, whose running code the patch is compared with.
    package: String,
    /// The `ENV_FULL_FORM` it was started with.
    full: Option<String>,
    /// Whether it generates debug info.
    debuginfo: bool,
    pid: u32,
    linker: PathBuf,
    out_dir: PathBuf,
    started: Instant,
    lock: BuildLock,
}

impl StartedBuild {
    /// Waits for rustc (see [`build::Rustc::wait`]) and returns what the linker reads:
    /// the rlib, or the directory of a binary's objects.
    fn wait(
        &mut self,
        shell: &crate::shell::Shell,
        hide: bool,
        current: &dyn Fn() -> bool,
    ) -> Result<PathBuf, BuildError> {
        let rustc = self.rustc.take().ok_or_else(|| anyhow::anyhow!("the build was already waited for"))?;
        match self.kind {
            CrateKind::Lib => rustc.wait(shell, hide, ".rlib", current),
            CrateKind::Bin => {
                let object = rustc.wait(shell, hide, ".o", current)?;
                Ok(object.parent().map(PathBuf::from).unwrap_or(object))
            }
        }
    }
}

impl Driver {
    /// Builds the plan's patch: by the linked route when it is open (finishing the
    /// build started on a guess when the guess held), else self-contained, unless
    /// that would split the crate's state.
    pub(super) fn build(&mut self, plan: &mut Plan) -> Result<Built, Stop> {
        let current = plan.current();
        let linked = match (plan.early.take(), plan.form()) {
            (Some(started), (full, debuginfo)) if started.full == full && started.debuginfo == debuginfo => {
                self.finish_linked(started, &plan.statics, &current)
            }
            (early, (full, debuginfo)) => {
                if early.is_none() {
                    self.say_compiling(&plan.krate.package);
                }
                drop(early);
                let form = Form { full: full.as_deref(), debuginfo };
                self.start_linked(&plan.krate, form).and_then(|s| self.finish_linked(s, &plan.statics, &current))
            }
        };
        let built = match linked {
            Ok(linked) => Built::Linked(linked),
            Err(RouteError::Build(e)) => return Err(Stop::from_build(e, plan.sources)),
            Err(RouteError::Closed(why)) => self.fall_back(plan, why)?,
        };
        if !current() {
            return Err(Stop::Superseded);
        }
        Ok(built)
    }

    /// The self-contained route, for a crate whose linked route is closed for `why`.
    fn fall_back(&mut self, plan: &Plan, why: Closed) -> Result<Built, Stop> {
        if plan.krate.kind == CrateKind::Bin {
            return Err(Stop::Refused(vec![format!(
                "`{}` is the binary: its new code reaches the running program only as a linked patch, and {why}",
                plan.krate.package
            )]));
        }
        if let Some(refusal) = split_state(&why, &plan.statics) {
            return Err(Stop::Refused(vec![format!("`{}`: {refusal}", plan.krate.package)]));
        }
        // A self-contained library is loaded through the runtime's entry point, which
        // only a crate that depends on the runtime (or a workspace crate below it does)
        // compiles in.
        let package = &plan.krate.package;
        let mut below = std::iter::once(package.clone()).chain(self.ws.dependencies_of(package));
        if !below.any(|p| self.ws.members.get(&p).is_some_and(|m| m.runtime_name.is_some())) {
            return Err(Stop::Refused(vec![format!(
                "`{package}`: {why}, and a self-contained library, the other way in, needs `hotreload-runtime` in its \
                 dependencies"
            )]));
        }
        self.say_self_contained(&plan.krate.package, &why);
        let lock = BuildLock::acquire(&self.profile.patch_dir())?;
        let started = Instant::now();
        let current = plan.current();
        let file = self.build_library(&plan.krate, plan.debuginfo, &current, plan.sources)?;
        Ok(Built::SelfContained { file, debuginfo: plan.debuginfo, started, _lock: lock })
    }

    /// Says, once per reason, why `name` reloads through a self-contained library.
    fn say_self_contained(&mut self, name: &str, why: &Closed) {
        if *why == Closed::NotChosen {
            return;
        }
        let why = why.to_string();
        let said = &mut self.state(name).said.self_contained_because;
        if said.as_deref() != Some(why.as_str()) {
            *said = Some(why.clone());
            self.shell.note(format_args!(
                "`{name}` reloads as a self-contained library, with its own copies of statics and thread-locals: {why}"
            ));
        }
    }

    /// Builds the crate's self-contained patch library from the current sources (whose
    /// hash is `sources`); call with the patch directory's lock held. Compiled by rustc
    /// with the program's own command for the crate (see
    /// [`build::Invocation::for_self_contained`]), so the library keeps the program's
    /// type identities; its dependencies are built first when they are missing or a
    /// workspace crate below it changed. Returns a file this session wrote.
    pub(in crate::run) fn build_library(
        &mut self,
        krate: &HotCrate,
        debuginfo: bool,
        current: &dyn Fn() -> bool,
        sources: u64,
    ) -> Result<PathBuf, Stop> {
        let identity_lost = |why: &str| {
            Stop::Refused(vec![format!(
                "`{}`: a self-contained library of it would give its types new identities (`TypeId`, `dyn Any` \
                 downcasts), since {why}",
                krate.package
            )])
        };
        let Some(program) = self.program.as_ref().and_then(|h| h.invocations.get(&krate.crate_name)).cloned() else {
            return Err(identity_lost("there is no record of how the program's build compiled it"));
        };
        let out_dir = self.profile.patch_dir().join("self-contained").join(self.profile.kind()).join(&krate.crate_name);
        let program = program
            .with_env(hotreload_protocol::ENV_RUNTIME_NAMES, &self.profile.runtime_names)
            .with_debuginfo(if debuginfo { 2 } else { 0 });
        let (invocation, needs) = program.for_self_contained(
            &self.profile.program_dir(),
            &self.profile.patch_dir(),
            &out_dir,
            &out_dir.join("incremental"),
        );
        let quiet = self.config.output.hide_errors;
        if self.patch_deps_stale(&krate.package) || needs.iter().any(|rlib| !rlib.exists()) {
            self.build_patch_deps(quiet).map_err(|e| Stop::from_build(e, sources))?;
            if let Some(missing) = needs.iter().find(|rlib| !rlib.exists()) {
                return Err(identity_lost(&format!(
                    "the patch directory has no build of {} like the program's",
                    missing.display()
                )));
            }
        }
        let library = build::build_direct(&invocation, &self.ws.root, &self.shell, quiet, current)
            .map_err(|e| Stop::from_build(e, sources))?;
        Ok(self.session.keep_latest(&library, &krate.crate_name)?)
    }

    /// Whether a workspace crate `name` depends on changed since the patch directory's
    /// libraries were built.
    fn patch_deps_stale(&self, name: &str) -> bool {
        let Some(built) = &self.linking.patch_deps else { return true };
        self.ws.dependencies_of(name).iter().any(|dep| {
            let now = sources_hash(&self.ws.members[dep].dir.join("src"));
            built.get(dep) != Some(&now)
        })
    }

    /// [`build::build_patch_deps`], remembering the sources it was built from.
    pub(in crate::run) fn build_patch_deps(&mut self, quiet: bool) -> Result<(), BuildError> {
        let hashes = self.member_hashes();
        let (package, kind, bin) = (&self.binary.package, self.binary.kind, &self.binary.name);
        build::build_patch_deps(&self.profile, package, (kind, bin), &self.config.features, &self.shell, quiet)?;
        self.linking.patch_deps = Some(hashes);
        Ok(())
    }

    /// The rustc command for the crate's linked patch, or why the linked route is closed.
    fn linked_invocation(&self, krate: &HotCrate, form: Form<'_>) -> Result<build::Invocation, Closed> {
        let reloaded: Vec<String> = self
            .dependencies(&krate.package)
            .into_iter()
            .filter(|dep| self.crates.get(dep).is_some_and(|c| c.running.generation > 0 || c.running.rlib.is_some()))
            .collect();
        // With entries redirected, the program's copies of a reloaded dependency's
        // functions lead to its newest code, and the patch compiles against its newest
        // build: the linked route stays open.
        let newest: Option<Vec<PathBuf>> = reloaded
            .iter()
            .map(|dep| self.crates.get(dep).and_then(|c| c.running.rlib.clone()))
            .collect::<Option<Vec<_>>>()
            .filter(|_| self.entries_enabled());
        let facts = RouteFacts {
            chosen: LINKED_PATCHES && !self.linking.disabled,
            built: self.program.is_some(),
            recorded: self.program_invocation(krate).is_some(),
            reloaded_dependency: if newest.is_some() { None } else { reloaded.first().cloned() },
        };
        if let Some(closed) = facts.closed(&self.profile.program_dir()) {
            return Err(closed);
        }
        let invocation = self.program_invocation(krate).expect("recorded");
        let mut invocation = invocation
            .for_linked_patch(&self.linked_out_dir(krate), &self.linked_dir().join("incremental"), krate.kind)
            .with_debuginfo(if form.debuginfo { 2 } else { 0 })
            .with_env(hotreload_protocol::ENV_RUNTIME_NAMES, &self.profile.runtime_names);
        for rlib in newest.iter().flatten() {
            invocation = invocation.with_extern_build(rlib);
        }
        Ok(match form.full {
            // Stubs have no bodies, so whatever only those bodies used looks unused to
            // rustc: lints a build of the whole source would not raise.
            Some(ids) => invocation.with_env(hotreload_protocol::ENV_FULL_FORM, ids).with_args(&STUB_LINTS),
            None => invocation,
        })
    }

    /// How the program's build ran rustc for `krate`.
    fn program_invocation(&self, krate: &HotCrate) -> Option<&build::Invocation> {
        let program = self.program.as_ref()?;
        match krate.kind {
            CrateKind::Lib => program.invocations.get(&krate.crate_name),
            CrateKind::Bin => program.binary.as_ref(),
        }
    }

    /// Where rustc writes `krate`'s linked patch build: a library's rlib, or a binary's
    /// objects (in a directory of their own, emptied before each build, since the
    /// objects' names change with their content).
    fn linked_out_dir(&self, krate: &HotCrate) -> PathBuf {
        let dir = self.linked_dir().join(krate.unit());
        match krate.kind {
            CrateKind::Lib => dir,
            CrateKind::Bin => dir.join("objects"),
        }
    }

    /// Whether `krate` can take the linked route as things stand.
    pub(in crate::run) fn linked_open(&self, krate: &HotCrate) -> bool {
        self.linked_invocation(krate, Form::STUBS).is_ok()
    }

    /// Where linked patches are built (under a lock of its own: self-contained builds
    /// in the patch directory never hold them up).
    fn linked_dir(&self) -> PathBuf {
        self.profile.patch_dir().join("linked").join(self.profile.kind())
    }

    /// Compiles `krate` once for the linked route, so the first real patch finds rustc's
    /// incremental cache warm (built with that patch's arguments: [`Form::prime`]), the program's
    /// image read (~20 ms for a 10 MB debug program), its objects' type layouts compared
    /// with the program's, and the linker found. Quiet: errors
    /// show when a patch is built. Its functions, compiled exactly as patches are, are
    /// what the first patch's are compared with (see [`crate::check::code`]) — when
    /// the sources are still those the program was built from.
    pub(in crate::run) fn prime_linked(&mut self, krate: &HotCrate) {
        let form = Form::prime(self.is_hot(&krate.package), self.entries_enabled());
        let Ok(mut started) = self.start_linked(krate, form) else { return };
        let Ok(rlib) = started.wait(&self.shell, true, &|| true) else { return };
        if form.debuginfo {
            // Most objects of the first patch will be these, byte for byte (rustc's
            // incremental cache): compared now, that patch reads only what it changed.
            let program = self.layouts.get();
            if let Ok(program) = &*program {
                let _ = self.layouts.check_rlib(program, &rlib, self.entries_enabled());
            }
        }
        let built_from = self.state(&krate.package).running.built_from;
        if self.entries_enabled() && sources_hash(&krate.src) == built_from {
            match crate::check::code::Functions::read_rlib(&rlib) {
                Ok(code) => self.state(&krate.package).running.code = Some(code),
                Err(e) => self.shell.verbose_status("Skipped", format_args!("reading {}: {e:#}", rlib.display())),
            }
        }
    }

    /// The running program's executable as patches bind to it, at its addresses in the
    /// running process, read once per program start.
    pub(super) fn program_image(&mut self) -> &Result<ProgramImage, String> {
        let executable = self.program.as_ref().map(|h| h.executable.clone()).unwrap_or_default();
        let pid = self.app.as_ref().map(|a| a.pid());
        self.linking.image.get_or_insert_with(|| {
            let read = || {
                let image = ProgramImage::read(&executable)?;
                let pid = pid.context("the program is not running")?;
                let bias = link::program::load_bias(pid, &image, &executable)?;
                image.loaded_at(bias)
            };
            read().map_err(|e| format!("{e:#}"))
        })
    }

    /// Starts rustc on the crate's linked patch and returns while it compiles.
    pub(super) fn start_linked(&mut self, krate: &HotCrate, form: Form<'_>) -> Result<StartedBuild, RouteError> {
        let invocation = self.linked_invocation(krate, form).map_err(RouteError::Closed)?;
        let pid = self.app.as_ref().map(|a| a.pid()).ok_or(RouteError::Closed(Closed::NotRunning))?;
        if let Err(why) = self.program_image() {
            return Err(RouteError::Closed(Closed::Program(why.clone())));
        }
        let linker = self.linking.linker.get_or_insert_with(|| link::find_linker(invocation.program())).clone();
        let linker = linker.ok_or(RouteError::Closed(Closed::NoLinker))?;
        let dir = self.linked_dir();
        let lock = BuildLock::acquire(&dir)?;
        let out_dir = dir.join(krate.unit());
        if krate.kind == CrateKind::Bin {
            let objects = self.linked_out_dir(krate);
            if objects.exists() {
                fs_err::remove_dir_all(&objects)?;
            }
            fs_err::create_dir_all(objects)?;
        }
        fs_err::create_dir_all(&out_dir)?;
        self.shell.very_verbose_status("Running", format_args!("`{invocation}`"));
        let started = Instant::now();
        let rustc = build::Rustc::spawn(&invocation, &self.ws.root)?;
        let (full, debuginfo) = (form.full.map(String::from), form.debuginfo);
        Ok(StartedBuild {
            rustc: Some(rustc),
            kind: krate.kind,
            package: krate.package.clone(),
            full,
            debuginfo,
            pid,
            linker,
            out_dir,
            started,
            lock,
        })
    }

    /// Waits for a started build and links it where the program has room.
    fn finish_linked(
        &mut self,
        mut build: StartedBuild,
        statics: &HashSet<String>,
        current: &dyn Fn() -> bool,
    ) -> Result<LinkedBuild, RouteError> {
        // Its errors may be only the refused change's absence: said as such, if it fails.
        let hide = self.config.output.hide_errors || self.held_by_restart(&build.package).is_some();
        let rlib = build.wait(&self.shell, hide, current)?;
        let StartedBuild { pid, linker, out_dir, started, lock, debuginfo, .. } = build;
        let compiled = started.elapsed();
        let Some(Ok(image)) = &self.linking.image else {
            return Err(anyhow::anyhow!("the program's image was read before the build").into());
        };
        let output = out_dir.join("patch.elf");
        let base = self.linking.next_base.max(image.window().0);
        let earlier = self.linking.generations.clone();
        // Read once here for the entry stage too. Functions compiled as the running ones
        // are bound to them, not mapped again.
        let code = match self.entries_enabled() {
            true => Some(crate::check::code::Functions::read_rlib(&rlib)?),
            false => None,
        };
        let running = self.crates.get(&build.package).and_then(|c| c.running.code.as_ref());
        let unchanged = match (running, &code) {
            (Some(old), Some(new)) => old.unchanged_in(new),
            _ => HashSet::new(),
        };
        let libraries = self.running_libraries(&build.package);
        let work_dir = out_dir.join("link");
        // A C function new code calls that the executable never imported is looked up
        // in the process, then the patch is linked again (a few rounds at most: each
        // may reach library code that calls more).
        let mut rounds = 0;
        let linked = loop {
            let Some(Ok(image)) = &self.linking.image else {
                return Err(anyhow::anyhow!("the program's image was read before the build").into());
            };
            let providers = self.linking.providers.get_or_insert_with(|| providers(self.program.as_ref(), &self.ws));
            let request = link::Request {
                rlib: &rlib,
                program: image,
                earlier: &earlier,
                unchanged: &unchanged,
                base,
                output: &output,
                work_dir: &work_dir,
                module_statics: statics,
                linker: &linker,
                libraries: &libraries,
                providers,
                c_functions: &self.linking.c_functions,
            };
            match link::link_in_room(request, pid) {
                Err(link::Error::NeedsC(names)) if rounds < 4 => {
                    rounds += 1;
                    if !self.resolve_c_functions(&names)? {
                        break Err(link::Error::NeedsC(names));
                    }
                }
                other => break other,
            }
        };
        let linked = linked.map_err(|e| match e {
            link::Error::Unlinkable(why) => RouteError::Closed(Closed::Unlinkable(why)),
            link::Error::NeedsC(names) => RouteError::Closed(Closed::Unlinkable(
                names.iter().map(|n| link::c_function_missing(n)).collect::<Vec<_>>().join("; "),
            )),
            link::Error::NoRoom => RouteError::Closed(Closed::NoRoom),
            link::Error::Tool(e) => e.into(),
        })?;
        self.linking.next_base = linked.end.next_multiple_of(link::PLACEMENT);
        let link_time = started.elapsed() - compiled;
        Ok(LinkedBuild { file: output, rlib, code, debuginfo, linked, started, compiled, link_time, _lock: lock })
    }
}

/// The rlibs outside the workspace that `program` links: the ones the crates whose
/// rustc command it recorded name as `--extern`, then every other one in their
/// dependency directories (transitive dependencies), then the toolchain's.
fn providers(program: Option<&build::ProgramBuild>, ws: &crate::workspace::Workspace) -> link::Providers {
    let Some(program) = program else { return link::Providers::default() };
    let invocations = program.invocations.values().chain(program.binary.as_ref());
    // A member's rlib (`liblogic-HASH.rlib`) is one of the workspace libraries,
    // looked in first, as the program runs them.
    let member = |rlib: &std::path::Path| {
        let file = rlib.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        ws.members.values().filter_map(|m| m.lib.as_ref()).any(|(name, _)| file.starts_with(&format!("lib{name}-")))
    };
    let invocations: Vec<&build::Invocation> = invocations.collect();
    let mut rlibs: Vec<std::path::PathBuf> = Vec::new();
    let mut dirs: Vec<std::path::PathBuf> = Vec::new();
    for dir in invocations.iter().flat_map(|i| i.dependency_dirs()) {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    let in_dirs = dirs.iter().flat_map(|dir| {
        let mut found: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "rlib")).collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    });
    for rlib in invocations.iter().flat_map(|i| i.extern_rlibs()).chain(in_dirs) {
        if !rlibs.contains(&rlib) && !member(&rlib) {
            rlibs.push(rlib);
        }
    }
    let rustc = invocations.first().map_or("rustc", |i| i.program());
    rlibs.extend(link::Providers::toolchain_rlibs(rustc));
    link::Providers::new(rlibs)
}

impl Driver {
    /// Asks the program's agent where C functions `names` are in the process
    /// (`ToolMessage::Resolve`); those found join `Linking::c_functions`. Whether any
    /// was found: one that is not stays missing, and the link says so. An agent that
    /// does not know the request (an older runtime crate) finds none.
    fn resolve_c_functions(&mut self, names: &[String]) -> anyhow::Result<bool> {
        use hotreload_protocol::message::{self, AgentMessage, ToolMessage, MAX_RESOLVE};
        let names: Vec<String> = names.iter().take(MAX_RESOLVE).cloned().collect();
        let request = self.next_request;
        self.next_request += 1;
        let line = message::encode(&ToolMessage::Resolve { request, names: names.clone() });
        let agent = self.agent.as_mut().context("the program is not connected")?;
        std::io::Write::write_all(&mut agent.writer, &line).context("failed to ask the program")?;
        match self.wait_reply(request)? {
            AgentMessage::Resolved { addresses, .. } if addresses.len() == names.len() => {
                let mut found = false;
                for (name, address) in names.into_iter().zip(addresses) {
                    if address != 0 {
                        self.linking.c_functions.insert(name, address);
                        found = true;
                    } else {
                        self.shell.verbose_status("Missing", format_args!("`{name}` in the program's process"));
                    }
                }
                Ok(found)
            }
            AgentMessage::Refused { .. } => Ok(false),
            other => anyhow::bail!("unexpected answer from the program: {other:?}"),
        }
    }

    /// The rlibs of the workspace libraries `package` depends on, as the program runs
    /// them: each one's newest patch, else the program's build of it.
    fn running_libraries(&self, package: &str) -> Vec<std::path::PathBuf> {
        self.dependencies(package).iter().filter_map(|dep| self.running_rlib(dep)).collect()
    }

    /// The rlib of library `package` as the program runs it: its newest patch's, else
    /// the program build's.
    fn running_rlib(&self, package: &str) -> Option<std::path::PathBuf> {
        let running = self.crates.get(package).and_then(|c| c.running.rlib.clone());
        running.or_else(|| {
            let crate_name = self.ws.members.get(package)?.lib.as_ref()?.0.clone();
            self.program.as_ref()?.invocations.get(&crate_name)?.output_rlib(&crate_name)
        })
    }

    /// Where the code of `package` that the program runs can be read: a library's rlib
    /// ([`Driver::running_rlib`]), the binary's objects from its last patch build.
    pub(in crate::run) fn running_objects(&self, package: &str) -> Option<std::path::PathBuf> {
        let krate = self.krate(package)?;
        match krate.kind {
            CrateKind::Bin => Some(self.linked_out_dir(&krate)).filter(|dir| dir.is_dir()),
            CrateKind::Lib => self.running_rlib(package),
        }
    }
}

/// What decides whether a crate's linked route is open, before anything is built.
#[derive(Clone, Debug, Default)]
struct RouteFacts {
    /// Linked patches are on: this platform, no `--self-contained`.
    chosen: bool,
    /// The program was built.
    built: bool,
    /// Its build recorded the crate's rustc command.
    recorded: bool,
    /// A workspace crate it depends on that was reloaded.
    reloaded_dependency: Option<String>,
}

impl RouteFacts {
    /// Why the route is closed (`program_dir`: where the program is built); `None`: open.
    fn closed(&self, program_dir: &std::path::Path) -> Option<Closed> {
        if !self.chosen {
            return Some(Closed::NotChosen);
        }
        if !self.built {
            return Some(Closed::NotBuilt);
        }
        if !self.recorded {
            return Some(Closed::NoRecord { dir: program_dir.to_path_buf() });
        }
        self.reloaded_dependency.clone().map(Closed::AboveReloaded)
    }
}

/// Why a crate whose linked route closed for `why` must not fall back to a
/// self-contained library: it has statics or thread-locals (`statics`), and the
/// library would have its own fresh copies of them, silently splitting the crate's
/// state. `None` when it has none, or when the user chose that route.
fn split_state(why: &Closed, statics: &HashSet<String>) -> Option<String> {
    if *why == Closed::NotChosen || statics.is_empty() {
        return None;
    }
    let mut names: Vec<&str> = statics.iter().map(String::as_str).collect();
    names.sort_unstable();
    let shown = names.iter().take(3).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    let more = if names.len() > 3 { format!(" and {} more", names.len() - 3) } else { String::new() };
    Some(format!(
        "the new code cannot be linked against the running program ({why}), and a self-contained library \
         would start its statics and thread-locals ({shown}{more}) afresh"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn open() -> RouteFacts {
        RouteFacts { chosen: true, built: true, recorded: true, reloaded_dependency: None }
    }

    #[test]
    fn the_linked_route_is_open_only_when_every_fact_allows_it() {
        let dir = Path::new("/t");
        assert_eq!(open().closed(dir), None);
        assert_eq!(RouteFacts { chosen: false, ..open() }.closed(dir), Some(Closed::NotChosen));
        assert_eq!(RouteFacts { built: false, ..open() }.closed(dir), Some(Closed::NotBuilt));
        assert_eq!(RouteFacts { recorded: false, ..open() }.closed(dir), Some(Closed::NoRecord { dir: dir.into() }));
        let above = RouteFacts { reloaded_dependency: Some("shapes".into()), ..open() };
        assert_eq!(above.closed(dir), Some(Closed::AboveReloaded("shapes".into())));
        // The user's choice wins over every other reason.
        assert_eq!(RouteFacts { chosen: false, built: false, ..open() }.closed(dir), Some(Closed::NotChosen));
    }

    #[test]
    fn a_fallback_that_would_split_state_is_refused_unless_chosen() {
        let statics: HashSet<String> = ["logic::COUNT", "logic::SEEN"].map(String::from).into();
        let why = split_state(&Closed::Unlinkable("it adds thread-local `logic::SEEN`".into()), &statics).unwrap();
        assert!(why.contains("(`logic::COUNT`, `logic::SEEN`) afresh"), "{why}");
        assert_eq!(split_state(&Closed::NotChosen, &statics), None);
        assert_eq!(split_state(&Closed::NoLinker, &HashSet::new()), None);
    }
}
