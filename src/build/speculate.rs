//! A speculative build: the program's build started from a sketch of the workspace
//! (`Workspace::sketch`) while `cargo metadata` reads the real one, so a session's
//! start waits for one cargo process instead of two in a row (13–20 ms less).
//!
//! The sketch is never trusted: the build is kept only when the workspace cargo read
//! asks for the very same command (program, arguments, environment) under the same
//! lock. Otherwise it is waited for (stopping cargo midway could leave its rustc
//! processes writing what the next build reads), its output is dropped, and the real
//! build runs after it. Its output is held until then.

use super::cargo::{program_command, run_program_build};
use super::output::{spawn, Gate};
use super::{BuildError, BuildLock, Features, Profile, ProgramBuild};
use crate::shell::Shell;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A program build under way, from a sketch.
pub struct Speculation {
    command: CommandKey,
    lock_dir: PathBuf,
    /// Holds cargo's output until the build is kept (shown) or not (dropped).
    gate: Gate,
    /// Taken by [`Speculation::keep`]; otherwise waited for on drop, so that no cargo
    /// outlives the session that started it.
    build: Option<JoinHandle<Kept>>,
}

/// What a command runs: program, arguments, and the environment it sets.
type CommandKey = (OsString, Vec<OsString>, Vec<(OsString, Option<OsString>)>);

fn key(cmd: &Command) -> CommandKey {
    let args = cmd.get_args().map(OsString::from).collect();
    let envs = cmd.get_envs().map(|(k, v)| (k.to_owned(), v.map(OsString::from))).collect();
    (cmd.get_program().to_owned(), args, envs)
}

/// A speculative build's outcome: the lock it holds (until its executable is placed),
/// what it built, and how long cargo took.
pub type Kept = Result<(BuildLock, ProgramBuild, Duration), BuildError>;

impl Speculation {
    /// Starts building `package`'s `target` (`("bin", name)`) as
    /// [`super::build_program`] would with these settings, under the program lock of
    /// `profile`'s hot directory; cargo starts on this thread (before whatever the
    /// caller starts next) and its output is read, and shown as it comes, on another.
    /// `None` when the lock is taken (another session builds: waiting for it is the
    /// real build's business) or cargo cannot be started.
    pub fn start(
        profile: &Profile,
        package: &str,
        target: (&str, &str),
        features: &Features,
        shell: &Shell,
    ) -> Option<Self> {
        let lock_dir = profile.program_lock_dir();
        let lock = BuildLock::try_acquire(&lock_dir).ok()??;
        let cmd = program_command(profile, package, target, features, shell);
        let command = key(&cmd);
        let started = Instant::now();
        let cargo = spawn(cmd, shell).ok()?;
        let (profile, name, shell, gate) = (profile.clone(), target.1.to_string(), shell.clone(), Gate::default());
        let output = Some(gate.clone());
        let build = std::thread::spawn(move || {
            let program = run_program_build(cargo, output, &profile, &name, &shell, false)?;
            Ok((lock, program, started.elapsed()))
        });
        Some(Speculation { command, lock_dir, gate, build: Some(build) })
    }

    /// The build's outcome if it ran the command [`super::build_program`] runs with
    /// these settings, under the same lock; otherwise `None`, once it has ended.
    pub fn keep(
        mut self,
        profile: &Profile,
        package: &str,
        target: (&str, &str),
        features: &Features,
        shell: &Shell,
    ) -> Option<Kept> {
        let same = key(&program_command(profile, package, target, features, shell)) == self.command
            && profile.program_lock_dir() == self.lock_dir;
        match same {
            true => self.gate.open(),
            false => self.gate.close(),
        }
        let build = self.build.take().expect("kept once");
        let outcome = build.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        same.then_some(outcome)
    }
}

impl Drop for Speculation {
    fn drop(&mut self) {
        // Not kept: the session ends before its build (say, `cargo metadata` failed and
        // told why; what cargo said of the same problem is not said twice).
        if let Some(build) = self.build.take() {
            self.gate.close();
            let _ = build.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{ColorChoice, GlobalArgs};

    #[test]
    fn a_speculative_build_is_kept_only_for_the_same_command_and_is_waited_for_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/plain");
        assert!(Command::new("cp").arg("-r").arg(&fixture).arg(dir.path()).status().unwrap().success());
        let quiet =
            GlobalArgs { quiet: true, verbose: 0, color: ColorChoice::Never, manifest_path: None, target_dir: None };
        let shell = Shell::new(&quiet);
        let profile = Profile {
            manifest_path: dir.path().join("plain/Cargo.toml"),
            target_dir: dir.path().join("hot"),
            cargo_target_dir: dir.path().join("target"),
            release: false,
            members: vec!["app".into(), "logic".into()],
            runtime_names: String::new(),
        };
        let (features, target) = (Features::default(), ("bin", "app"));
        // A sketch that missed a member: its command differs.
        let missed = Profile { members: vec!["app".into()], ..profile.clone() };
        let speculation = Speculation::start(&missed, "app", target, &features, &shell).unwrap();
        assert!(speculation.keep(&profile, "app", target, &features, &shell).is_none());
        // It ended, and let go of the lock, before `keep` answered.
        let lock = crate::lockfile::lock(&profile.program_lock_dir().join(".hotreload-lock"), false).unwrap();
        assert!(lock.is_some(), "the discarded build still holds the program lock");
        drop(lock);
        let speculation = Speculation::start(&profile, "app", target, &features, &shell).unwrap();
        let outcome = speculation.keep(&profile, "app", target, &features, &shell).expect("the same command is kept");
        let (_lock, program, _) = outcome.unwrap();
        assert!(program.executable.is_file());
    }
}
