//! cargo builds: the program, and the libraries self-contained patches link.

use super::output::{run_with, Forward};
use super::{BuildError, Features, Invocation, Profile, LINKED_PATCHES};
use crate::shell::Shell;
use anyhow::Context;
use cargo_metadata::Message;
use hotreload_protocol::ENV_BUILD;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A built program.
#[derive(Clone, Debug)]
pub struct ProgramBuild {
    /// The executable.
    pub executable: PathBuf,
    /// How rustc compiled each library into the program, by crate name: linked
    /// patches are compiled the same way, so their symbols have the same names.
    pub invocations: HashMap<String, Invocation>,
    /// How rustc compiled the binary itself: patches of its functions are compiled the
    /// same way, to objects.
    pub binary: Option<Invocation>,
    /// The rlibs of libraries whose rustc command neither this build printed (cargo
    /// found them fresh, from a plain `cargo build`) nor an earlier one recorded, by
    /// crate name: [`record_fresh`] records them.
    pub unrecorded: HashMap<String, PathBuf>,
}

/// Builds the program as `cargo build` does (the same flags, so a plain `cargo build`
/// left nothing to compile), with the runtime's hot build, and records how rustc was
/// run for each crate it compiled.
/// A `quiet` build shows none of cargo's output: one run only to record commands, of
/// sources the user's own build already compiled.
pub fn build_program(
    profile: &Profile,
    package: &str,
    target: (&str, &str),
    features: &Features,
    shell: &Shell,
    quiet: bool,
) -> Result<ProgramBuild, BuildError> {
    let cargo = super::output::spawn(program_command(profile, package, target, features, shell), shell)?;
    run_program_build(cargo, None, profile, target.1, shell, quiet)
}

/// The cargo command that builds the program (see [`build_program`]).
pub(super) fn program_command(
    profile: &Profile,
    package: &str,
    target: (&str, &str),
    features: &Features,
    shell: &Shell,
) -> Command {
    let mut cmd = cargo(profile, &profile.program_dir(), Build::Hot, shell, "build");
    cmd.args(["--package", package]).arg(format!("--{}", target.0)).arg(target.1);
    features.add_to(&mut cmd);
    if LINKED_PATCHES {
        // `-vv`: cargo prints each rustc invocation with its environment.
        cmd.arg("-vv");
    }
    cmd
}

/// Reads the build `cargo` runs (a [`program_command`]) of the executable `target`,
/// its output past `gate`.
pub(super) fn run_program_build(
    cargo: std::process::Child,
    gate: Option<super::output::Gate>,
    profile: &Profile,
    target: &str,
    shell: &Shell,
    quiet: bool,
) -> Result<ProgramBuild, BuildError> {
    let mut executable = None;
    let mut rlibs = HashMap::new();
    let mut lines = Vec::new();
    super::output::read_with(
        cargo,
        shell,
        if quiet { Forward::Nothing } else { Forward::Everything },
        gate,
        |line| lines.push(line.to_string()),
        |message| {
            if let Message::CompilerArtifact(artifact) = message {
                if artifact.target.is_lib() || artifact.target.kind.iter().any(|k| k.to_string() == "lib") {
                    if let Some(rlib) = artifact.filenames.iter().find(|f| f.extension() == Some("rlib")) {
                        rlibs.insert(artifact.target.name.replace('-', "_"), rlib.clone().into_std_path_buf());
                    }
                }
                if let Some(exe) = artifact.executable {
                    if artifact.target.name == target {
                        executable = Some(exe.into_std_path_buf());
                    }
                }
            }
        },
    )?;
    let executable = executable.context("cargo built no executable")?;
    let mut invocations = HashMap::new();
    let mut binary = None;
    let mut unrecorded = HashMap::new();
    if LINKED_PATCHES {
        let records = Records { dir: records_dir(profile), lines: &lines };
        for (crate_name, rlib) in rlibs {
            let built_this = |d: &Invocation| d.output_rlib(&crate_name).as_deref() == Some(rlib.as_path());
            match records.take(&crate_name, "lib", built_this) {
                Some(direct) => {
                    invocations.insert(crate_name, direct);
                }
                None => {
                    unrecorded.insert(crate_name, rlib);
                }
            }
        }
        let bin_crate = target.replace('-', "_");
        binary = records.take(&bin_crate, "bin", |d| d.output_executable(&bin_crate).is_some_and(|p| p.is_file()));
    }
    Ok(ProgramBuild { executable, invocations, binary, unrecorded })
}

/// Where the rustc commands [`build_program`] saw are kept, one file per crate.
fn records_dir(profile: &Profile) -> PathBuf {
    profile.target_dir.join("rustc-commands")
}

/// The recorded command that compiled `crate_name` as `crate_type`, if one is kept in `dir`.
fn read_record(dir: &Path, crate_name: &str, crate_type: &str) -> Option<Invocation> {
    let bytes = std::fs::read(dir.join(format!("{crate_name}.{crate_type}.json"))).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The rustc commands of a program's build, as cargo printed them or, for a crate it
/// did not compile again, as an earlier session recorded them in `dir`.
struct Records<'a> {
    dir: PathBuf,
    lines: &'a [String],
}

impl Records<'_> {
    /// The command that compiled `crate_name` as `crate_type`: recorded when cargo ran
    /// it, else read from the record if `built_this` says it built the artifact cargo
    /// reported.
    fn take(&self, crate_name: &str, crate_type: &str, built_this: impl Fn(&Invocation) -> bool) -> Option<Invocation> {
        let record = self.dir.join(format!("{crate_name}.{crate_type}.json"));
        match self.lines.iter().rev().find_map(|l| Invocation::parse(l, crate_name, crate_type)) {
            Some(direct) => {
                let _ = std::fs::create_dir_all(&self.dir);
                let _ = std::fs::write(&record, serde_json::to_vec(&direct).unwrap_or_default());
                Some(direct)
            }
            None => read_record(&self.dir, crate_name, crate_type).filter(built_this),
        }
    }
}

/// Builds the program again, quietly, so that cargo runs (and prints) rustc for the
/// crates whose `outputs` are given (a library's rlib, the binary's executable in
/// `deps/`), and records how it compiles them: each output is set aside first (cargo
/// compiles a crate whose output is missing; `cargo clean -p` would delete every
/// artifact of the package, its other binaries too), and put back if the build did not
/// write it again. Dependencies keep their artifacts.
pub fn record_fresh(
    profile: &Profile,
    package: &str,
    target: (&str, &str),
    features: &Features,
    shell: &Shell,
    outputs: &[PathBuf],
) -> Result<ProgramBuild, BuildError> {
    let mut aside = Vec::new();
    for rlib in outputs {
        let name = rlib.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let moved = rlib.with_file_name(format!("{name}.hotreload-aside"));
        match std::fs::rename(rlib, &moved) {
            Ok(()) => aside.push((rlib, moved)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot move {}", rlib.display())).into()),
        }
    }
    let built = build_program(profile, package, target, features, shell, true);
    for (rlib, moved) in aside {
        // Written again: the one set aside is the same build of the same source.
        let _ = match rlib.exists() {
            true => std::fs::remove_file(&moved),
            false => std::fs::rename(&moved, rlib),
        };
    }
    built
}

/// The file in `deps/` that rustc wrote and cargo linked to `executable`
/// (`target/debug/app` is a hard link to `target/debug/deps/app-HASH`): what a build
/// must find missing to compile the binary's crate again.
pub fn compiled_executable(executable: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(executable).ok()?.ino();
    let stem = executable.file_name()?.to_string_lossy().replace('-', "_");
    let deps = executable.parent()?.join("deps");
    std::fs::read_dir(deps).ok()?.flatten().map(|e| e.path()).find(|path| {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        name.starts_with(&format!("{stem}-"))
            && !name.contains('.')
            && std::fs::metadata(path).is_ok_and(|m| m.ino() == inode)
    })
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
) -> Result<(), BuildError> {
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
        Err(BuildError::Failed) if library_errors.is_empty() => Ok(()),
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
    // Every patch build runs `#[hot]` again: optimised, it expands faster. The runtime
    // works while the program's threads wait for it (a switch of 1,000 entries took
    // 2.5 ms in a debug build, 1.8 of it in debug-built hash maps). Only our own crates:
    // any other crate's settings stay as `cargo build` has them, so its artifacts are
    // shared.
    for profile in ["dev", "release"] {
        for package in ["hotreload-macros", "hotreload-runtime", "hotreload-protocol"] {
            cmd.args(["--config", &format!("profile.{profile}.package.{package}.opt-level=3")]);
        }
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
