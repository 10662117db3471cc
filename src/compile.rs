//! Building the program and patch libraries with cargo.
//!
//! Hot builds live in their own target directory, so they never wait on (or
//! invalidate) `cargo build` and rust-analyzer: `<dir>/host` for the program, built
//! with `--cfg hotreload`, and `<dir>/patch` for patch libraries, which add
//! `--cfg hotreload_patch` (the runtime then forwards allocations to the program and
//! catches panics at the boundary). Diagnostics are cargo's own; artifacts come from
//! its JSON messages.

use crate::shell::{Shell, Verbosity};
use anyhow::{bail, Context, Result};
use cargo_metadata::Message;
use hotreload_protocol::ENV_BUILD;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Build settings shared by the program and its patches.
#[derive(Clone, Debug)]
pub struct Profile {
    /// `--manifest-path` of the workspace.
    pub manifest_path: PathBuf,
    /// Base directory for patch builds and sessions (`target/hotreload`).
    pub target_dir: PathBuf,
    /// Cargo's own target directory of the workspace: the program is built there, next
    /// to `cargo build`'s artifacts, so the dependencies a normal build made are reused
    /// (the runtime's feature and cfg, and the workspace crates' debug info, give those
    /// crates artifacts of their own, beside the normal ones).
    pub cargo_target_dir: PathBuf,
    /// `--release`
    pub release: bool,
    /// The workspace's packages: hot builds compile them with full debug info, whatever
    /// their profile says, so that type layouts can be compared (see [`crate::layout`]).
    pub members: Vec<String>,
    /// `hotreload_protocol::ENV_RUNTIME_NAMES` for every build.
    pub runtime_names: String,
}

impl Profile {
    /// Where the program is built: cargo's own target directory.
    pub fn host_dir(&self) -> PathBuf {
        self.cargo_target_dir.clone()
    }

    /// Held while the program is built, so that sessions sharing the hot directory
    /// never place each other's executable.
    pub fn host_lock_dir(&self) -> PathBuf {
        self.target_dir.join("host")
    }

    /// Where patch libraries are built.
    pub fn patch_dir(&self) -> PathBuf {
        self.target_dir.join("patch")
    }

    /// `debug` or `release`, as cargo names the profile's output directory.
    pub fn kind(&self) -> &'static str {
        if self.release {
            "release"
        } else {
            "debug"
        }
    }
}

/// Feature selection for the program's build, as on cargo's command line.
#[derive(Clone, Debug, Default)]
pub struct Features {
    /// `--features`
    pub features: Vec<String>,
    /// `--all-features`
    pub all: bool,
    /// `--no-default-features`
    pub no_default: bool,
    /// The program's package's name for the runtime dependency, whose `agent` feature
    /// hot builds turn on (the agent and `#[hot]`'s expansion; see the runtime's
    /// manifest). `None` when the package does not depend on it.
    pub runtime: Option<String>,
}

impl Features {
    /// Adds the selection to a cargo command.
    fn add_to(&self, cmd: &mut Command) {
        if self.all {
            cmd.arg("--all-features");
        }
        if self.no_default {
            cmd.arg("--no-default-features");
        }
        for f in &self.features {
            cmd.args(["--features", f]);
        }
        if let Some(runtime) = &self.runtime {
            cmd.args(["--features", &format!("{runtime}/agent")]);
        }
    }
}

/// A built program.
#[derive(Clone, Debug)]
pub struct HostBuild {
    /// The executable.
    pub executable: PathBuf,
    /// How rustc compiled each library into the program, by crate name: linked
    /// patches are compiled the same way, so their symbols have the same names.
    pub invocations: HashMap<String, Direct>,
}

/// An exclusive lock on one hot build directory (`host` or `patch`), held from the
/// start of a build until its output is placed in a session: another session sharing
/// the directory could otherwise overwrite the output in between. Released on drop.
pub struct BuildLock {
    _file: std::fs::File,
}

impl BuildLock {
    /// Waits for the lock of `dir`.
    pub fn acquire(dir: &Path) -> Result<BuildLock> {
        std::fs::create_dir_all(dir)?;
        let file = crate::lockfile::lock(&dir.join(".hotreload-lock"), true)
            .context("failed to lock the hot target directory")?
            .expect("a waiting lock is always taken");
        Ok(BuildLock { _file: file })
    }
}

/// A self-contained patch would not keep the program's type identities; why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IdentityLost(pub String);

/// A build failed while its sources changed under it: nothing was shown.
#[derive(Debug, thiserror::Error)]
#[error("the sources changed during the build")]
pub struct Superseded;

/// A build failed; cargo has printed why.
#[derive(Debug, thiserror::Error)]
#[error("build failed")]
pub struct BuildFailed;

/// Whether patches can be linked against the program on this platform (see
/// [`crate::link`]): the program is then built position-dependent.
pub const LINKED_PATCHES: bool = cfg!(all(target_os = "linux", target_arch = "x86_64"));

/// Flags for the program's own crate when patches are linked against it: a fixed
/// load address, and every function of every crate kept (new code may call one the
/// program never did).
const HOST_LINK_FLAGS: [&str; 4] = ["-C", "relocation-model=static", "-C", "link-dead-code"];

/// Builds the program with `--cfg hotreload` (`cargo rustc`, so the position-dependent
/// flags reach only the executable), and records how rustc was run for each library.
pub fn build_host(
    profile: &Profile,
    package: &str,
    target: (&str, &str),
    features: &Features,
    shell: &Shell,
) -> Result<HostBuild> {
    let subcommand = if LINKED_PATCHES { "rustc" } else { "build" };
    let mut cmd = cargo(profile, &profile.host_dir(), Build::Hot, shell, subcommand);
    cmd.args(["--package", package]).arg(format!("--{}", target.0)).arg(target.1);
    features.add_to(&mut cmd);
    if LINKED_PATCHES {
        // `-vv`: cargo prints each rustc invocation with its environment.
        cmd.arg("-vv").arg("--").args(HOST_LINK_FLAGS);
    }
    let mut executable = None;
    let mut rlibs = HashMap::new();
    let mut lines = Vec::new();
    run_with(
        cmd,
        shell,
        Forward::Everything,
        |line| lines.push(line.to_string()),
        |message| {
            if let Message::CompilerArtifact(artifact) = message {
                if artifact.target.is_lib() || artifact.target.kind.iter().any(|k| k.to_string() == "lib") {
                    if let Some(rlib) = artifact.filenames.iter().find(|f| f.extension() == Some("rlib")) {
                        rlibs.insert(artifact.target.name.replace('-', "_"), rlib.clone().into_std_path_buf());
                    }
                }
                if let Some(exe) = artifact.executable {
                    if artifact.target.name == target.1 {
                        executable = Some(exe.into_std_path_buf());
                    }
                }
            }
        },
    )?;
    let executable = executable.context("cargo built no executable")?;
    let mut invocations = HashMap::new();
    if LINKED_PATCHES {
        let record_dir = profile.target_dir.join("rustc-commands");
        for (crate_name, rlib) in rlibs {
            let record = record_dir.join(format!("{crate_name}.json"));
            let compiled = lines.iter().rev().find_map(|l| Direct::parse(l, &crate_name, "lib"));
            let direct = match compiled {
                Some(direct) => {
                    let _ = std::fs::create_dir_all(&record_dir);
                    let _ = std::fs::write(&record, serde_json::to_vec(&direct).unwrap_or_default());
                    Some(direct)
                }
                // Built by an earlier session: its record holds the command, if it
                // built this very rlib.
                None => std::fs::read(&record)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<Direct>(&bytes).ok())
                    .filter(|d| d.output_rlib(&crate_name).as_deref() == Some(rlib.as_path())),
            };
            if let Some(direct) = direct {
                invocations.insert(crate_name, direct);
            }
        }
    }
    Ok(HostBuild { executable, invocations })
}

/// A rustc invocation as cargo ran it (`cargo -vv` prints it): rebuilding a patch with
/// it directly skips cargo's own ~25 ms of work per patch. Valid while the crate's
/// manifest and its workspace dependencies stay as they were.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Direct {
    env: Vec<(String, String)>,
    program: String,
    args: Vec<String>,
}

impl Direct {
    /// Reads `     Running `ENV=v ... rustc --crate-name NAME ... --crate-type TYPE ...``
    /// for `crate_name` and `crate_type`; `None` for any other line.
    pub fn parse(line: &str, crate_name: &str, crate_type: &str) -> Option<Direct> {
        let command = line.trim_start().strip_prefix("Running `")?.strip_suffix('`')?;
        let words = shell_words::split(command).ok()?;
        let program_at = words.iter().position(|w| !is_assignment(w))?;
        let args = words[program_at + 1..].to_vec();
        let named = args.windows(2).any(|w| w[0] == "--crate-name" && w[1] == crate_name);
        let typed = args.windows(2).any(|w| w[0] == "--crate-type" && w[1] == crate_type);
        if !named || !typed || !args.iter().any(|a| a.starts_with("--error-format=json")) {
            return None;
        }
        let env = words[..program_at]
            .iter()
            .filter_map(|w| w.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        Some(Direct { env, program: words[program_at].clone(), args })
    }

    /// The same command with `key=value` added to its environment.
    pub fn with_env(mut self, key: &str, value: &str) -> Direct {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The same command with `-C debuginfo=LEVEL` in place of its own.
    pub fn with_debuginfo(mut self, level: u8) -> Direct {
        let mut args = self.args.iter();
        let mut kept = Vec::with_capacity(self.args.len());
        while let Some(arg) = args.next() {
            match args.as_slice().first() {
                Some(value) if arg == "-C" && value.starts_with("debuginfo=") => {
                    args.next();
                }
                _ => kept.push(arg.clone()),
            }
        }
        kept.extend(["-C".to_string(), format!("debuginfo={level}")]);
        self.args = kept;
        self
    }

    /// The same command with `args` added at the end.
    pub fn with_args(mut self, args: &[&str]) -> Direct {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// The features it compiles the crate with (`--cfg 'feature="big"'`).
    pub fn features(&self) -> impl Iterator<Item = &str> + '_ {
        self.args
            .windows(2)
            .filter(|w| w[0] == "--cfg")
            .filter_map(|w| w[1].strip_prefix("feature=\"")?.strip_suffix('"'))
    }

    /// The rustc program it runs.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The value after `flag` (`--out-dir`), or of `-C key=value` when `flag` is `-C key`.
    fn value(&self, flag: &str) -> Option<&str> {
        match flag.strip_prefix("-C ") {
            Some(key) => self
                .args
                .windows(2)
                .find_map(|w| (w[0] == "-C").then(|| w[1].strip_prefix(key)?.strip_prefix('=')).flatten()),
            None => self.args.windows(2).find(|w| w[0] == flag).map(|w| w[1].as_str()),
        }
    }

    /// The rlib a library invocation writes.
    pub fn output_rlib(&self, crate_name: &str) -> Option<PathBuf> {
        let dir = self.value("--out-dir")?;
        let extra = self.value("-C extra-filename").unwrap_or("");
        Some(Path::new(dir).join(format!("lib{crate_name}{extra}.rlib")))
    }

    /// This library invocation turned into the build of a linked patch's rlib (see
    /// [`crate::link`]): written to `out_dir` with its own incremental cache,
    /// position-dependent, every static kept global. Its debug info is the caller's
    /// choice ([`Direct::with_debuginfo`]).
    pub fn for_linked_patch(&self, out_dir: &Path, incremental: &Path) -> Direct {
        let mut args = Vec::with_capacity(self.args.len() + 4);
        let mut words = self.args.iter();
        while let Some(word) = words.next() {
            if word == "--crate-type" {
                // Only the rlib: a `crate-type = ["cdylib"]` of the crate's own would
                // link std, and cannot link position-dependent code at all.
                words.next();
            } else if word.starts_with("--emit=") {
                args.push("--emit=link".to_string());
            } else if word == "--out-dir" {
                words.next();
                args.push(word.clone());
                args.push(out_dir.display().to_string());
            } else if word == "-C" {
                let Some(value) = words.next() else { break };
                args.push(word.clone());
                if value.starts_with("incremental=") {
                    args.push(format!("incremental={}", incremental.display()));
                } else {
                    args.push(value.clone());
                }
            } else {
                args.push(word.clone());
            }
        }
        args.extend(["--crate-type", "rlib"].map(String::from));
        args.extend(HOST_LINK_FLAGS.iter().map(|s| s.to_string()));
        Direct { env: self.env.clone(), program: self.program.clone(), args }
    }
}

impl Direct {
    /// This library invocation of the program's build turned into the build of a
    /// self-contained patch library: the same crate identity (`-C metadata`, so the
    /// same `TypeId`s and symbol names), compiled as a `cdylib` into `out_dir` with its
    /// own incremental cache, against the libraries [`build_patch_deps`] wrote below
    /// `patch_dir` in place of the program's below `host_dir`. Proc macros stay the
    /// program's: they run in the compiler. Returns the libraries it needs.
    pub fn for_self_contained(
        &self,
        host_dir: &Path,
        patch_dir: &Path,
        out_dir: &Path,
        incremental: &Path,
    ) -> (Direct, Vec<PathBuf>) {
        let moved = |path: &str| -> Option<String> {
            let rest = Path::new(path).strip_prefix(host_dir).ok()?;
            Some(patch_dir.join(rest).display().to_string())
        };
        let mut needs = Vec::new();
        let mut args = Vec::with_capacity(self.args.len());
        let mut words = self.args.iter();
        let mut typed = false;
        while let Some(word) = words.next() {
            let value = match word.as_str() {
                "--crate-type" | "--out-dir" | "-L" | "--extern" | "-C" => words.next(),
                _ => None,
            };
            match (word.as_str(), value) {
                ("--crate-type", Some(_)) if typed => {}
                ("--crate-type", Some(_)) => {
                    typed = true;
                    args.extend([word.clone(), "cdylib".into()]);
                }
                ("--out-dir", Some(_)) => args.extend([word.clone(), out_dir.display().to_string()]),
                ("-L", Some(value)) => {
                    let moved = value.split_once('=').and_then(|(kind, p)| Some(format!("{kind}={}", moved(p)?)));
                    args.extend([word.clone(), moved.unwrap_or_else(|| value.clone())]);
                }
                ("--extern", Some(value)) => {
                    let library = value.split_once('=').and_then(|(name, p)| {
                        let stem = p.strip_suffix(".rmeta").or_else(|| p.strip_suffix(".rlib"))?;
                        Some((name, moved(&format!("{stem}.rlib"))?))
                    });
                    match library {
                        Some((name, rlib)) => {
                            needs.push(PathBuf::from(&rlib));
                            args.extend([word.clone(), format!("{name}={rlib}")]);
                        }
                        None => args.extend([word.clone(), value.clone()]),
                    }
                }
                ("-C", Some(value)) if value.starts_with("incremental=") => {
                    args.extend([word.clone(), format!("incremental={}", incremental.display())]);
                }
                (_, Some(value)) => args.extend([word.clone(), value.clone()]),
                _ if word.starts_with("--emit=") => args.push("--emit=link".into()),
                _ => args.push(word.clone()),
            }
        }
        (Direct { env: self.env.clone(), program: self.program.clone(), args }, needs)
    }
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// Rebuilds a patch library with rustc directly, in `cwd` (the workspace root, as
/// cargo runs it); renders rustc's diagnostics unless `hide_diagnostics`.
/// `current` says whether the sources are still those the build started from (see
/// [`Rustc::wait`]).
pub fn build_direct(
    direct: &Direct,
    cwd: &Path,
    shell: &Shell,
    hide_diagnostics: bool,
    current: &dyn Fn() -> bool,
) -> Result<PathBuf> {
    Rustc::spawn(direct, cwd)?.wait(shell, hide_diagnostics, std::env::consts::DLL_SUFFIX, current)
}

/// A rustc started with [`Rustc::spawn`], compiling while the caller does other work.
pub struct Rustc {
    child: std::process::Child,
    stderr: std::thread::JoinHandle<Vec<u8>>,
}

impl Rustc {
    /// Starts `direct` in `cwd`.
    pub fn spawn(direct: &Direct, cwd: &Path) -> Result<Rustc> {
        let mut child = Command::new(&direct.program)
            .args(&direct.args)
            .envs(direct.env.iter().map(|(k, v)| (k, v)))
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("failed to run rustc")?;
        let mut pipe = child.stderr.take().expect("piped");
        // Read as it comes, so a long diagnostic never blocks rustc on a full pipe.
        let stderr = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = std::io::Read::read_to_end(&mut pipe, &mut bytes);
            bytes
        });
        Ok(Rustc { child, stderr })
    }

    /// Stops it; its output is dropped.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.stderr.join();
    }

    /// Waits for it, renders its diagnostics unless `hide_diagnostics`, and returns
    /// the artifact whose name ends with `suffix`.
    ///
    /// A failed build whose sources are no longer `current` (an editor wrote the file
    /// in two steps, and the build took the first half) is [`Superseded`]: its errors
    /// are not shown, since the newer sources get a build of their own.
    pub fn wait(
        mut self,
        shell: &Shell,
        hide_diagnostics: bool,
        suffix: &str,
        current: &dyn Fn() -> bool,
    ) -> Result<PathBuf> {
        let status = self.child.wait().context("failed to wait for rustc")?;
        let stderr = self.stderr.join().unwrap_or_default();
        if !status.success() && !current() {
            bail!(Superseded);
        }
        let mut library = None;
        for line in String::from_utf8_lossy(&stderr).lines() {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(message) if message["$message_type"] == "artifact" => {
                    if let Some(path) = message["artifact"].as_str().filter(|p| p.ends_with(suffix)) {
                        library = Some(PathBuf::from(path));
                    }
                }
                Ok(message) => {
                    if let Some(rendered) = message["rendered"].as_str().filter(|_| !hide_diagnostics) {
                        let rendered = if shell.color() { rendered.to_string() } else { strip_ansi(rendered) };
                        anstream::eprint!("{rendered}");
                    }
                }
                Err(_) if !hide_diagnostics => eprintln!("{line}"),
                Err(_) => {}
            }
        }
        if !status.success() {
            bail!(BuildFailed);
        }
        library.context("rustc reported no library")
    }
}

/// Builds the program's libraries in the patch directory, with the runtime's patch
/// cfgs, for self-contained patches to link: each gets the program's features and
/// `-C metadata` (the cfgs reach the runtime alone, through its build script), so its
/// types keep the program's `TypeId`s. The executable itself is not needed, and may
/// not build at all (its own `#[global_allocator]` conflicts with the patch runtime's):
/// cargo keeps going past it, and only a library's errors fail the build.
pub fn build_patch_deps(
    profile: &Profile,
    package: &str,
    target: (&str, &str),
    features: &Features,
    shell: &Shell,
    hide_diagnostics: bool,
) -> Result<()> {
    let mut cmd = cargo(profile, &profile.patch_dir(), Build::Patch, shell, "build");
    cmd.args(["--package", package, "--keep-going"]).arg(format!("--{}", target.0)).arg(target.1);
    features.add_to(&mut cmd);
    let mut library_errors = Vec::new();
    let built = run_with(
        cmd,
        shell,
        Forward::Nothing,
        |_| {},
        |message| {
            if let Message::CompilerMessage(m) = message {
                let program = m.target.name == target.1 && !m.target.is_lib();
                if !program && m.message.level == cargo_metadata::diagnostic::DiagnosticLevel::Error {
                    library_errors.extend(m.message.rendered);
                }
            }
        },
    );
    match built {
        Err(e) if e.downcast_ref::<BuildFailed>().is_some() && library_errors.is_empty() => Ok(()),
        Err(e) => {
            if !hide_diagnostics {
                for rendered in &library_errors {
                    anstream::eprint!("{rendered}");
                }
            }
            Err(e)
        }
        Ok(()) => Ok(()),
    }
}

/// Which hot build a cargo command is: the runtime's cfgs follow (see
/// [`hotreload_protocol::ENV_BUILD`]).
#[derive(Clone, Copy, Debug)]
enum Build {
    /// The program.
    Hot,
    /// A self-contained patch library.
    Patch,
}

fn cargo(profile: &Profile, target_dir: &Path, build: Build, shell: &Shell, subcommand: &str) -> Command {
    let profile_of = profile;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg(subcommand);
    cmd.env(hotreload_protocol::ENV_RUNTIME_NAMES, &profile.runtime_names);
    cmd.env(
        ENV_BUILD,
        match build {
            Build::Hot => "hot",
            Build::Patch => "patch",
        },
    );
    cmd.env("CARGO_TARGET_DIR", target_dir);
    cmd.env("CARGO_TERM_COLOR", if shell.color() { "always" } else { "never" });
    cmd.env("CARGO_TERM_PROGRESS_WHEN", "never");
    cmd.arg("--manifest-path").arg(&profile.manifest_path);
    // Every patch build runs `#[hot]` again: optimised, it expands faster. Only our
    // own proc macro: any other crate's settings stay as `cargo build` has them, so
    // its artifacts are shared.
    for profile in ["dev", "release"] {
        cmd.args(["--config", &format!("profile.{profile}.package.hotreload-macros.opt-level=3")]);
        for member in &profile_of.members {
            cmd.args(["--config", &format!("profile.{profile}.package.{member:?}.debug=2")]);
        }
    }
    // Diagnostics come as JSON and are shown by `run_with`: the `-vv` we pass for
    // rustc commands would otherwise make cargo print dependencies' warnings too.
    let format = if shell.color() { "json-diagnostic-rendered-ansi" } else { "json" };
    cmd.args(["--message-format", format]);
    if profile.release {
        cmd.arg("--release");
    }
    cmd
}

/// Which of cargo's stderr to pass on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Forward {
    /// Status lines and diagnostics, with a progress bar on a terminal (program builds).
    Everything,
    /// Nothing: the caller shows what matters (libraries for self-contained patches).
    Nothing,
}

/// Runs cargo, passing its stderr through as `forward` says and JSON messages from
/// stdout to `on_message`; also shows every stderr line to `on_line` (on this thread, after cargo exits).
fn run_with(
    mut cmd: Command,
    shell: &Shell,
    forward: Forward,
    mut on_line: impl FnMut(&str),
    mut on_message: impl FnMut(Message),
) -> Result<()> {
    let patch = forward != Forward::Everything;
    let hide_all = forward == Forward::Nothing;
    if shell.verbosity() >= Verbosity::VeryVerbose {
        shell.status("Running", format_args!("{cmd:?}"));
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .context("failed to run cargo")?;
    let stderr = child.stderr.take().expect("piped");
    let quiet = shell.verbosity() == Verbosity::Quiet;
    let very_verbose = shell.verbosity() >= Verbosity::VeryVerbose;
    let show_status = !patch || very_verbose;
    let progress = progress_bar(shell, patch);
    let bar = progress.clone();
    let forward = std::thread::spawn(move || {
        let mut seen = Vec::new();
        // A `Running` command spans lines when an environment value holds a newline.
        let mut command: Option<String> = None;
        // `Caused by: process didn't exit successfully: `rustc …`` after a failed
        // build: `-vv` makes cargo add it, the diagnostics above already say it all.
        let mut failed_command = false;
        let mut lines = BufReader::new(stderr).lines().map_while(Result::ok).peekable();
        while let Some(line) = lines.next() {
            let mut status = is_status_line(&line);
            let mut chatter = is_script_echo(&line) || is_warning_summary(&line) || is_verbose_only(&line);
            // Only after `Caused by:` wait for the next line to know what it is.
            let caused_by = strip_ansi(&line).trim() == "Caused by:";
            if caused_by && lines.peek().is_some_and(|next| is_failed_command(next)) || is_failed_command(&line) {
                failed_command = true;
            }
            if failed_command {
                chatter = true;
                let plain = strip_ansi(&line);
                failed_command = !(plain.contains("(exit status: ") || plain.contains("(signal: "));
            }
            if let Some(mut text) = command.take() {
                text.push('\n');
                text.push_str(&line);
                if line.ends_with('`') {
                    seen.push(text);
                } else {
                    command = Some(text);
                }
                status = true;
                chatter = true;
            } else if line.trim_start().starts_with("Running `") {
                chatter = true;
                if line.ends_with('`') {
                    seen.push(line.clone());
                } else {
                    command = Some(line.clone());
                }
            }
            // Commands and build scripts' output, which `-vv` makes cargo print, only
            // when the user asked for `-vv` too.
            if hide_all || status && (quiet || !show_status) || chatter && !very_verbose {
                continue;
            }
            match &bar {
                Some(bar) if status => {
                    bar.set_message(line.trim().to_string());
                    bar.println(&line);
                }
                Some(bar) => bar.println(&line),
                None => eprintln!("{line}"),
            }
        }
        seen
    });
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    for message in Message::parse_stream(stdout) {
        let message = message.context("failed to read cargo's output")?;
        if let (Some(bar), Message::CompilerArtifact(a)) = (&progress, &message) {
            bar.inc(1);
            bar.set_message(a.target.name.clone());
        }
        if let Message::CompilerMessage(m) = &message {
            // As cargo does: diagnostics of path packages only, dependencies' at `-vv`.
            let ours = m.package_id.repr.starts_with("path+") || very_verbose;
            if let Some(rendered) = m.message.rendered.as_deref().filter(|_| ours && !hide_all) {
                match &progress {
                    Some(bar) => bar.println(rendered.trim_end()),
                    None => anstream::eprint!("{rendered}"),
                }
            }
        }
        on_message(message);
    }
    let status = child.wait().context("failed to wait for cargo")?;
    for line in forward.join().unwrap_or_default() {
        on_line(&line);
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        bail!("cargo was stopped by signal {signal}");
    }
    if !status.success() {
        bail!(BuildFailed);
    }
    Ok(())
}

/// `warning: `dep` (lib) generated 3 warnings`: about diagnostics not shown.
fn is_warning_summary(line: &str) -> bool {
    let plain = strip_ansi(line);
    plain.starts_with("warning: `") && plain.contains(" generated ") && plain.contains(" warning")
}

fn is_script_echo(line: &str) -> bool {
    let plain = strip_ansi(line);
    plain.starts_with('[') && plain.contains("] ")
}

/// `  process didn't exit successfully: `rustc …` (exit status: 1)`, the command
/// cargo shows after a failed build at `-v`.
fn is_failed_command(line: &str) -> bool {
    strip_ansi(line).trim_start().starts_with("process didn't exit successfully: ")
}

/// `Fresh serde v1.0.0` and `Dirty logic v0.1.0 (…): the file … has changed`: lines
/// cargo prints only because we pass `-vv`; a plain `cargo build` shows neither.
fn is_verbose_only(line: &str) -> bool {
    let plain = strip_ansi(line);
    plain.starts_with(' ') && matches!(plain.trim_start().split(' ').next(), Some("Fresh" | "Dirty"))
}

fn is_status_line(line: &str) -> bool {
    let plain = strip_ansi(line);
    // `-vv` echoes build scripts' output as `[pkg 0.1.0] cargo:...`.
    if plain.starts_with('[') && plain.contains("] ") {
        return true;
    }
    let word = plain.trim_start().split(' ').next().unwrap_or("");
    plain.starts_with(' ')
        && matches!(
            word,
            "Compiling"
                | "Finished"
                | "Fresh"
                | "Dirty"
                | "Running"
                | "Checking"
                | "Building"
                | "Locking"
                | "Adding"
                | "Updating"
                | "Downloading"
                | "Downloaded"
        )
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn progress_bar(shell: &Shell, patch: bool) -> Option<indicatif::ProgressBar> {
    if patch || !shell.interactive() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>12.cyan.bold} [{elapsed}] {pos} crates built: {wide_msg}")
            .expect("valid template"),
    );
    bar.set_prefix("Building");
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_only_lines_are_recognised() {
        assert!(is_verbose_only("       Fresh serde v1.0.229"));
        assert!(is_verbose_only("\u{1b}[1m\u{1b}[32m       Dirty\u{1b}[0m logic v0.1.0 (/x): the file changed"));
        assert!(!is_verbose_only("   Compiling logic v0.1.0 (/x)"));
        assert!(!is_verbose_only("Fresh ideas"));
    }

    #[test]
    fn cargo_status_lines_are_recognised() {
        assert!(is_status_line("   Compiling logic v0.1.0 (/x)"));
        assert!(is_status_line("     Running `rustc --crate-name x`"));
        assert!(is_status_line("[serde 1.0.0] cargo:rerun-if-changed=build.rs"));
        assert!(is_status_line("\u{1b}[1m\u{1b}[32m    Finished\u{1b}[0m `dev` profile"));
        assert!(!is_status_line("error[E0308]: mismatched types"));
        assert!(!is_status_line("warning: unused variable"));
    }

    #[test]
    fn cargos_rustc_invocation_is_captured_for_the_crate_only() {
        let line = "     Running `CARGO_CRATE_NAME=logic CARGO_PKG_AUTHORS='' LD_LIBRARY_PATH='/t/deps:/x' \
                    /bin/rustc --crate-name logic --edition=2021 logic/src/lib.rs --error-format=json \
                    --crate-type cdylib --check-cfg 'cfg(docsrs,test)' --cfg hotreload`";
        let direct = Direct::parse(line, "logic", "cdylib").unwrap();
        assert_eq!(direct.program, "/bin/rustc");
        assert_eq!(direct.env[1], ("CARGO_PKG_AUTHORS".to_string(), String::new()));
        assert_eq!(direct.env[2].1, "/t/deps:/x");
        assert!(direct.args.contains(&"cfg(docsrs,test)".to_string()));
        assert_eq!(direct.args.last().unwrap(), "hotreload");
        assert!(Direct::parse(line, "other", "cdylib").is_none());
        assert!(Direct::parse(&line.replace("cdylib", "lib"), "logic", "cdylib").is_none());
        assert!(Direct::parse("   Compiling logic v0.1.0", "logic", "cdylib").is_none());
        let multi = "     Running `CARGO_PKG_DESCRIPTION='one\ntwo' /bin/rustc --crate-name logic \
                     --error-format=json --crate-type cdylib`";
        assert_eq!(Direct::parse(multi, "logic", "cdylib").unwrap().env[0].1, "one\ntwo");
    }

    #[test]
    fn a_linked_patch_build_is_the_programs_rlib_build_made_position_dependent() {
        let line = "     Running `CARGO_PKG_NAME=logic rustc --crate-name logic --edition=2021 logic/src/lib.rs \
                    --error-format=json --crate-type lib --crate-type cdylib --emit=dep-info,metadata,link \
                    -C debuginfo=2 -C metadata=abc -C extra-filename=-abc --out-dir /t/deps \
                    -C incremental=/t/incremental`";
        let host = Direct::parse(line, "logic", "lib").unwrap();
        assert_eq!(host.output_rlib("logic").unwrap(), Path::new("/t/deps/liblogic-abc.rlib"));
        let patch = host.for_linked_patch(Path::new("/p/logic"), Path::new("/p/inc"));
        let args = patch.args.join(" ");
        assert!(args.contains("--emit=link") && args.contains("--out-dir /p/logic"), "{args}");
        assert!(args.contains("-C incremental=/p/inc") && args.contains("-C debuginfo=2"), "{args}");
        assert!(args.contains("-C metadata=abc -C extra-filename=-abc"), "{args}");
        assert_eq!(args.matches("--crate-type").count(), 1, "{args}");
        assert!(args.ends_with("--crate-type rlib -C relocation-model=static -C link-dead-code"), "{args}");
        assert_eq!(patch.env, host.env);
    }

    #[test]
    fn a_self_contained_build_keeps_the_programs_identity() {
        let host = Direct::parse(
            "     Running `rustc --crate-name logic --error-format=json --crate-type lib \\
             --emit=dep-info,metadata,link -C metadata=aaa -C extra-filename=-aaa \\
             -C incremental=/h/debug/incremental --out-dir /h/debug/deps -L dependency=/h/debug/deps \\
             --extern hotreload=/h/debug/deps/libhotreload-111.rmeta \\
             --extern macros=/h/debug/deps/libmacros-222.so -L native=/usr/lib`",
            "logic",
            "lib",
        )
        .unwrap();
        let (patch, needs) =
            host.for_self_contained(Path::new("/h"), Path::new("/p"), Path::new("/p/out"), Path::new("/p/inc"));
        let args = patch.args.join(" ");
        assert!(args.contains("--crate-type cdylib --emit=link -C metadata=aaa -C extra-filename=-aaa"), "{args}");
        assert!(args.contains("-C incremental=/p/inc --out-dir /p/out -L dependency=/p/debug/deps"), "{args}");
        assert!(args.contains("--extern hotreload=/p/debug/deps/libhotreload-111.rlib"), "{args}");
        assert!(args.contains("--extern macros=/h/debug/deps/libmacros-222.so -L native=/usr/lib"), "{args}");
        assert_eq!(needs, [PathBuf::from("/p/debug/deps/libhotreload-111.rlib")]);
    }

    #[test]
    fn a_failed_build_of_sources_that_changed_meanwhile_is_superseded() {
        let failing = Direct {
            env: Vec::new(),
            program: "sh".into(),
            args: vec!["-c".into(), r#"echo '{"rendered":"error: half a file"}' >&2; exit 1"#.into()],
        };
        let crate::cli::Cargo::Hotreload(args) =
            <crate::cli::Cargo as clap::Parser>::parse_from(["cargo", "hotreload", "status"]);
        let shell = Shell::new(&args.global);
        let cwd = Path::new(".");
        let err = build_direct(&failing, cwd, &shell, true, &|| false).unwrap_err();
        assert!(err.downcast_ref::<Superseded>().is_some(), "{err:#}");
        let err = build_direct(&failing, cwd, &shell, true, &|| true).unwrap_err();
        assert!(err.downcast_ref::<BuildFailed>().is_some(), "{err:#}");
    }

    #[test]
    fn debuginfo_is_replaced() {
        let d = Direct {
            env: Vec::new(),
            program: "rustc".into(),
            args: ["-C", "debuginfo=2", "--cfg", "x"].map(String::from).to_vec(),
        };
        assert_eq!(d.with_debuginfo(0).args.join(" "), "--cfg x -C debuginfo=0");
    }
}
