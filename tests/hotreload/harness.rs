//! Drives the real `cargo hotreload` on copies of the fixture workspaces.
//!
//! Every session shares one hot target directory, so the fixtures' dependencies
//! (the runtime, its proc-macro, serde, ...) are built once for the whole suite.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Long enough for a first build of a fixture while other tests hold cargo's lock.
pub const STARTUP: Duration = Duration::from_secs(300);
/// Long enough for one patch while other tests build.
pub const RELOAD: Duration = Duration::from_secs(120);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shared_target() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixture-builds")
}

/// Cargo's target directory for every fixture, where their programs are built (as a
/// user's are in their workspace's `target/`): dependencies build once for the suite.
fn cargo_target() -> PathBuf {
    shared_target().join("cargo")
}

/// Crates from crates.io that tests copy into fixtures as members.
pub const PUBLISHED: &[&str] = &["strsim"];

/// Removes what test runs more than half an hour ago built for their copies of the
/// fixtures' own packages. Each copy has a version of its own, so cargo never reuses
/// those artifacts; without this, every run would add a few gigabytes to the shared
/// target directories. Dependencies (the runtime, serde, ...) stay built.
fn prune_earlier_copies() {
    let mut names: Vec<String> = PUBLISHED.iter().map(|n| n.to_string()).collect();
    let manifests = std::fs::read_dir(repo().join("fixtures")).unwrap().flat_map(|fixture| {
        let fixture = fixture.unwrap().path();
        let members = std::fs::read_dir(&fixture).into_iter().flatten().map(|m| m.unwrap().path().join("Cargo.toml"));
        members.chain([fixture.join("Cargo.toml")]).collect::<Vec<_>>()
    });
    for manifest in manifests {
        let text = std::fs::read_to_string(manifest).unwrap_or_default();
        let name = text.lines().find_map(|l| l.strip_prefix("name = \"")?.strip_suffix('"').map(String::from));
        names.extend(name.map(|n| n.replace('-', "_")));
    }
    let before = std::time::SystemTime::now() - Duration::from_secs(30 * 60);
    prune(&shared_target(), &names, before, 0);
}

/// Below `dir`, removes the entries of cargo's artifact directories (`deps`,
/// `.fingerprint`, `build`, `incremental`) named after one of `crates` and last
/// changed before `before`.
fn prune(dir: &Path, crates: &[String], before: std::time::SystemTime, depth: usize) {
    let artifacts =
        matches!(dir.file_name().and_then(|n| n.to_str()), Some("deps" | ".fingerprint" | "build" | "incremental"));
    for entry in std::fs::read_dir(dir).into_iter().flatten().map_while(Result::ok) {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if artifacts {
            let name = entry.file_name().to_string_lossy().replace('-', "_");
            let name = name.strip_prefix("lib").unwrap_or(&name);
            let ours = crates.iter().any(|c| name.starts_with(&format!("{c}_")) || name.starts_with(&format!("{c}.")));
            if ours && meta.modified().is_ok_and(|m| m < before) {
                let _ = if meta.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            }
        } else if meta.is_dir() && depth < 6 {
            prune(&path, crates, before, depth + 1);
        }
    }
}

/// A fixture workspace copied to a temporary directory.
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        Fixture::copy(name, true)
    }

    /// A copy whose packages keep the fixture's own versions, as two worktrees of one
    /// repository would: cargo then gives both copies the same artifacts.
    pub fn twin(name: &str) -> Fixture {
        Fixture::copy(name, false)
    }

    fn copy(name: &str, own_version: bool) -> Fixture {
        static PRUNED: std::sync::Once = std::sync::Once::new();
        PRUNED.call_once(prune_earlier_copies);
        let dir = tempfile::Builder::new().prefix(&format!("hotreload-{name}-")).tempdir().unwrap();
        let root = dir.path().join(name);
        copy_dir(&repo().join("fixtures").join(name), &root);
        let manifest = root.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let runtime = repo().join("crates/hotreload");
        let text = text.replace("\"../../crates/hotreload\"", &format!("{:?}", runtime.display().to_string()));
        assert!(!text.contains("../../crates"), "every runtime path of a fixture is in its root manifest");
        std::fs::write(&manifest, text).unwrap();
        // Cargo hashes path packages by their path relative to the workspace, so two
        // copies of one fixture would share artifacts in the shared target directory:
        // a version of its own gives each copy its own.
        static COPIES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let version = format!(
            "version = \"0.{}.{}\"",
            std::process::id(),
            COPIES.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let members = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path().join("Cargo.toml"));
        for member in members.chain([manifest.clone()]).filter(|_| own_version) {
            if member.is_file() {
                let text = std::fs::read_to_string(&member).unwrap();
                std::fs::write(&member, text.replace("version = \"0.1.0\"", &version)).unwrap();
            }
        }
        // The repository's lock file pins the runtime's dependencies to the versions the
        // suite was written against; cargo adds the fixture's own packages.
        std::fs::copy(repo().join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
        Fixture { _dir: dir, root }
    }

    /// Copies crate `name` `version`, as published on crates.io and unmodified, into
    /// the fixture as the member `name/`: from cargo's registry cache, filled with
    /// `cargo fetch` first when it lacks it.
    pub fn add_published(&self, name: &str, version: &str) {
        let source = published_source(name, version).unwrap_or_else(|| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("src")).unwrap();
            std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
            std::fs::write(
                dir.path().join("Cargo.toml"),
                format!(
                    "[package]\nname = \"fetch\"\nversion = \"0.0.0\"\n\n[dependencies]\n{name} = \"={version}\"\n"
                ),
            )
            .unwrap();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let fetched = Command::new(cargo).arg("fetch").current_dir(dir.path()).status().unwrap();
            assert!(fetched.success(), "cargo fetch of {name} {version} failed");
            published_source(name, version).expect("cargo fetch fills the registry cache")
        });
        copy_dir(&source, &self.root.join(name));
    }

    /// A plain `cargo build` of the fixture, as a user would have run before trying the
    /// tool, in the fixture's own `target/` (returned): in the suite's shared target
    /// directory, other tests' sessions would have recorded its crates' commands.
    pub fn cargo_build(&self) -> PathBuf {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let target = self.root.join("target");
        let built = Command::new(cargo)
            .args(["build", "--quiet"])
            .current_dir(&self.root)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .status()
            .unwrap();
        assert!(built.success(), "cargo build of the fixture failed");
        target
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Rewrites a file; the edit must change it.
    pub fn edit(&self, rel: &str, edit: impl FnOnce(&str) -> String) {
        let path = self.path(rel);
        let before = std::fs::read_to_string(&path).unwrap();
        let after = edit(&before);
        assert_ne!(before, after, "the edit of {rel} changed nothing");
        std::fs::write(&path, after).unwrap();
    }

    /// Replaces `from` by `to` in a file; `from` must be there.
    pub fn replace(&self, rel: &str, from: &str, to: &str) {
        self.edit(rel, |s| {
            assert!(s.contains(from), "{rel} does not contain {from:?}");
            s.replacen(from, to, 1)
        });
    }
}

/// Whether process `pid` runs: exists and is not a zombie (a test may adopt orphans
/// with `PR_SET_CHILD_SUBREAPER`, and an adopted process that died stays a zombie).
pub fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().is_empty() && !rest.trim_start().starts_with('Z'))
}

/// `$CARGO_HOME/registry/src/*/NAME-VERSION`, if cargo has unpacked it.
fn published_source(name: &str, version: &str) -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let registries = std::fs::read_dir(home.join("registry/src")).ok()?;
    registries.filter_map(|r| Some(r.ok()?.path().join(format!("{name}-{version}")))).find(|p| p.is_dir())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == "Cargo.lock" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// What a one-shot `cargo hotreload ...` printed.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Makes `command` start its process, and the processes it starts, with address space
/// randomization off (`personality(ADDR_NO_RANDOMIZE)`, inherited across exec).
pub fn without_aslr(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: `personality` is async-signal-safe and touches only the child's own flags.
    unsafe {
        command.pre_exec(|| {
            let current = libc::personality(0xffff_ffff);
            match libc::personality((current as libc::c_ulong) | libc::ADDR_NO_RANDOMIZE as libc::c_ulong) {
                -1 => Err(std::io::Error::last_os_error()),
                _ => Ok(()),
            }
        })
    };
}

/// Runs `cargo hotreload ARGS` to completion in the fixture (the control commands).
pub fn hotreload(fixture: &Fixture, args: &[&str]) -> Output {
    hotreload_in(&fixture.root, args)
}

/// `cargo hotreload ARGS` in `dir`, as a command to run.
pub fn hotreload_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-hotreload"));
    command
        .arg("hotreload")
        .args(args)
        .current_dir(dir)
        .env("CARGO_HOTRELOAD_TARGET_DIR", shared_target())
        .env("CARGO_TARGET_DIR", cargo_target())
        .env("CARGO_TERM_COLOR", "never")
        .stdin(Stdio::null());
    command
}

/// [`hotreload`] with more environment.
pub fn hotreload_with_env(fixture: &Fixture, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = hotreload_command(&fixture.root, args).envs(env.iter().copied()).output().expect("cargo-hotreload runs");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// [`hotreload`] in any directory.
pub fn hotreload_in(dir: &Path, args: &[&str]) -> Output {
    let out = hotreload_command(dir, args).output().expect("cargo-hotreload runs");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Lines a child wrote, as they arrive.
#[derive(Clone, Default)]
pub struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Lines {
    fn collect(self, stream: impl std::io::Read + Send + 'static, echo: &'static str) {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if std::env::var_os("HOTRELOAD_TEST_ECHO").is_some() {
                    eprintln!("{echo}| {line}");
                }
                self.0 .0.lock().unwrap().push(line);
                self.0 .1.notify_all();
            }
        });
    }

    pub fn all(&self) -> Vec<String> {
        self.0 .0.lock().unwrap().clone()
    }

    /// Waits for a line (after the first `from` lines) that satisfies `pred`; returns its index and text.
    fn wait(&self, from: usize, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<(usize, String)> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.0 .0.lock().unwrap();
        loop {
            if let Some(i) = (from..lines.len()).find(|&i| pred(&lines[i])) {
                return Some((i, lines[i].clone()));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = self.0 .1.wait_timeout(lines, left).unwrap().0;
        }
    }

    pub fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.0 .0.lock().unwrap().iter().filter(|l| pred(l)).count()
    }
}

/// A running `cargo hotreload run`.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Session {
    /// Starts `cargo hotreload run ARGS` in the fixture and waits until it watches.
    pub fn start(fixture: &Fixture, args: &[&str]) -> Session {
        Session::start_with_env(fixture, args, &[])
    }

    /// [`Session::start`] with extra environment variables (the program inherits them).
    pub fn start_with_env(fixture: &Fixture, args: &[&str], env: &[(&str, &str)]) -> Session {
        let session = Session::spawn(fixture, args, env);
        session.wait_stderr("Watching", STARTUP);
        session
    }

    pub fn spawn(fixture: &Fixture, args: &[&str], env: &[(&str, &str)]) -> Session {
        Session::spawn_command(Command::new(env!("CARGO_BIN_EXE_cargo-hotreload")), fixture, args, env, &[])
    }

    /// [`Session::start`] with address space randomization off for the tool and the
    /// program it runs (see [`without_aslr`]): another process of the same executable,
    /// started so too, has the same addresses, so a patch linked for one fits the other.
    pub fn start_without_aslr(fixture: &Fixture, args: &[&str]) -> Session {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-hotreload"));
        without_aslr(&mut command);
        let session = Session::spawn_command(command, fixture, args, &[], &[]);
        session.wait_stderr("Watching", STARTUP);
        session
    }

    /// [`Session::start`] with cargo's target directory left to the fixture's own
    /// configuration (no `CARGO_TARGET_DIR`), and the session's files in it: a build
    /// from scratch, under locks no other test takes.
    pub fn start_in_configured_target(fixture: &Fixture, args: &[&str]) -> Session {
        let command = Command::new(env!("CARGO_BIN_EXE_cargo-hotreload"));
        let remove = ["CARGO_TARGET_DIR", "CARGO_HOTRELOAD_TARGET_DIR"];
        let session = Session::spawn_command(command, fixture, args, &[], &remove);
        session.wait_stderr("Watching", STARTUP);
        session
    }

    fn spawn_command(
        mut command: Command,
        fixture: &Fixture,
        args: &[&str],
        env: &[(&str, &str)],
        remove: &[&str],
    ) -> Session {
        for name in remove {
            command.env_remove(name);
        }
        // `env` last: a test may give a session a target directory of its own.
        let mut child = command
            .arg("hotreload")
            .arg("run")
            .args(args)
            .current_dir(&fixture.root)
            .envs(
                Some(("CARGO_HOTRELOAD_TARGET_DIR", shared_target()))
                    .filter(|_| !remove.contains(&"CARGO_HOTRELOAD_TARGET_DIR")),
            )
            .envs(Some(("CARGO_TARGET_DIR", cargo_target())).filter(|_| !remove.contains(&"CARGO_TARGET_DIR")))
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("RUSTFLAGS")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("cargo-hotreload starts");
        let (stdout, stderr) = (Lines::default(), Lines::default());
        stdout.clone().collect(child.stdout.take().unwrap(), "app");
        stderr.clone().collect(child.stderr.take().unwrap(), "tool");
        Session { stdin: child.stdin.take(), child, stdout, stderr }
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n--- program output ---\n{}\n--- tool output ---\n{}",
            self.stdout.all().join("\n"),
            self.stderr.all().join("\n")
        )
    }

    /// Waits for a program output line containing `needle`.
    pub fn wait_stdout(&self, needle: &str, timeout: Duration) -> String {
        match self.stdout.wait(0, timeout, |l| l.contains(needle)) {
            Some((_, line)) => line,
            None => self.fail(&format!("the program never printed {needle:?}")),
        }
    }

    /// Waits for a tool output line containing `needle`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> String {
        match self.stderr.wait(0, timeout, |l| l.contains(needle)) {
            Some((_, line)) => line,
            None => self.fail(&format!("cargo hotreload never printed {needle:?}")),
        }
    }

    /// Waits for a tool output line containing any of `needles`; returns it.
    pub fn wait_stderr_any(&self, needles: &[&str], timeout: Duration) -> String {
        match self.stderr.wait(0, timeout, |l| needles.iter().any(|n| l.contains(n))) {
            Some((_, line)) => line,
            None => self.fail(&format!("cargo hotreload printed none of {needles:?}")),
        }
    }

    /// Waits for the `n`th tool output line containing `needle` (1-based).
    pub fn wait_stderr_nth(&self, needle: &str, n: usize, timeout: Duration) -> String {
        let mut from = 0;
        for _ in 0..n {
            match self.stderr.wait(from, timeout, |l| l.contains(needle)) {
                Some((i, _)) => from = i + 1,
                None => self.fail(&format!("cargo hotreload printed {needle:?} fewer than {n} times")),
            }
        }
        self.stderr.all()[from - 1].clone()
    }

    /// Closes the program's stdin (the fixtures exit then) and waits for the tool to
    /// exit; returns its exit code.
    pub fn close_stdin_and_wait(&mut self, timeout: Duration) -> Option<i32> {
        self.stdin.take();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.fail("cargo hotreload did not exit")
    }

    /// Sends the tool `SIGINT`, as Ctrl-C does when the program does not have the
    /// terminal, and waits for it to exit; returns its exit code.
    pub fn interrupt_and_wait(&mut self, timeout: Duration) -> Option<i32> {
        // SAFETY: signalling the tool this session started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.fail("cargo hotreload did not exit")
    }

    /// Asserts how many tool output lines contain `needle`.
    pub fn assert_stderr_count(&self, needle: &str, n: usize) {
        let count = self.stderr.count(|l| l.contains(needle));
        if count != n {
            self.fail(&format!("cargo hotreload printed {needle:?} {count} times, not {n}"));
        }
    }

    /// Asserts that no new tool output line containing `needle` appears for `quiet`.
    pub fn assert_no_stderr_for(&self, needle: &str, quiet: Duration) {
        let from = self.stderr.all().len();
        if let Some((_, line)) = self.stderr.wait(from, quiet, |l| l.contains(needle)) {
            self.fail(&format!("cargo hotreload printed {line:?}, and should not have"));
        }
    }

    /// Kills the tool with `SIGKILL`, as a crash would: it cleans nothing up. The
    /// program it started runs on until its stdin closes (when this is dropped).
    pub fn kill_tool(&mut self) {
        // SAFETY: signalling the tool this session started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    /// The last program line so far.
    pub fn last_stdout(&self) -> String {
        self.stdout.all().last().cloned().unwrap_or_default()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A failed assertion outside `fail` would otherwise leave CI with no trace of
        // what the tool said.
        if std::thread::panicking() {
            let tail = |lines: Vec<String>, n: usize| lines[lines.len().saturating_sub(n)..].join("\n");
            eprintln!("--- program output (last 10 lines) ---\n{}", tail(self.stdout.all(), 10));
            eprintln!("--- tool output (last 80 lines) ---\n{}", tail(self.stderr.all(), 80));
        }
        // Closing stdin ends the fixture program; SIGTERM ends the tool, which stops
        // the program's process group too.
        self.stdin.take();
        let pid = self.child.id() as i32;
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A manifest's text without its `[workspace.metadata.hotreload]` table.
pub fn without_settings(text: &str) -> String {
    cargo_hotreload::steer::settings::without_settings(text)
}
