//! One crate's rustc command as cargo ran it, changed for a patch, and run directly.

use super::output::strip_ansi;
use super::{BuildError, PATCH_LINK_FLAGS};
use crate::shell::Shell;
use crate::workspace::CrateKind;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// it directly skips cargo's own ~25 ms of work per patch. Valid while the crate's
/// manifest and its workspace dependencies stay as they were.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Invocation {
    env: Vec<(String, String)>,
    program: String,
    args: Vec<String>,
}

impl Invocation {
    /// Reads `     Running `ENV=v ... rustc --crate-name NAME ... --crate-type TYPE ...``
    /// for `crate_name` and `crate_type`; `None` for any other line.
    pub fn parse(line: &str, crate_name: &str, crate_type: &str) -> Option<Invocation> {
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
        Some(Invocation { env, program: words[program_at].clone(), args })
    }

    /// The package directory cargo ran it for (its `CARGO_MANIFEST_DIR`).
    pub fn manifest_dir(&self) -> Option<&Path> {
        self.env.iter().find(|(k, _)| k == "CARGO_MANIFEST_DIR").map(|(_, v)| Path::new(v.as_str()))
    }

    /// The same command with `key=value` added to its environment.
    pub fn with_env(mut self, key: &str, value: &str) -> Invocation {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The same command with `-C debuginfo=LEVEL` in place of its own.
    pub fn with_debuginfo(mut self, level: u8) -> Invocation {
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
    pub fn with_args(mut self, args: &[&str]) -> Invocation {
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

    /// The directories its `-L dependency=DIR` options name: where cargo put the
    /// libraries of every crate the program links.
    pub fn dependency_dirs(&self) -> Vec<PathBuf> {
        let values = self.args.windows(2).filter(|w| w[0] == "-L").map(|w| w[1].as_str());
        values.filter_map(|v| v.strip_prefix("dependency=")).map(PathBuf::from).collect()
    }

    /// The rlibs its `--extern` options name (`--extern name=path.rlib`; an `.rmeta`
    /// stands for the rlib beside it).
    pub fn extern_rlibs(&self) -> Vec<PathBuf> {
        let mut rlibs = Vec::new();
        for pair in self.args.windows(2).filter(|w| w[0] == "--extern") {
            let Some((_, path)) = pair[1].split_once('=') else { continue };
            let stem = path.strip_suffix(".rmeta").or_else(|| path.strip_suffix(".rlib"));
            if let Some(stem) = stem {
                rlibs.push(PathBuf::from(format!("{stem}.rlib")));
            }
        }
        rlibs
    }

    /// The executable a binary invocation writes (`deps/app-1234abcd`).
    pub fn output_executable(&self, crate_name: &str) -> Option<PathBuf> {
        let dir = self.value("--out-dir")?;
        let extra = self.value("-C extra-filename").unwrap_or("");
        Some(Path::new(dir).join(format!("{crate_name}{extra}")))
    }

    /// The same command compiling against `rlib` wherever it named a library of the same
    /// file stem (`libbase-1234abcd`, as `.rlib` or `.rmeta`): a newer build of that
    /// crate with the same identity. Its directory is searched first too, for crates
    /// that reach it only through another dependency (rustc picks the build whose hash
    /// that dependency was compiled against).
    pub fn with_extern_build(mut self, rlib: &Path) -> Invocation {
        let stem = rlib.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let mut words = self.args.iter_mut().peekable();
        while let Some(word) = words.next() {
            if word != "--extern" {
                continue;
            }
            let Some(value) = words.next() else { break };
            let Some((name, path)) = value.split_once('=') else { continue };
            if Path::new(path).file_stem().is_some_and(|s| s.to_string_lossy() == stem) {
                *value = format!("{name}={}", rlib.display());
            }
        }
        if let Some(dir) = rlib.parent() {
            self.args.splice(0..0, ["-L".to_string(), format!("dependency={}", dir.display())]);
        }
        self
    }

    /// This invocation turned into the build of a linked patch (see [`crate::link`]):
    /// written to `out_dir` with its own incremental cache, as code for an executable
    /// (`-C relocation-model=pie`), every static kept global. A library is built as an
    /// rlib; a binary keeps its crate type (which is part of its symbols' hashes) and is
    /// compiled to one object file per codegen unit, not linked. Its debug info is the caller's choice
    /// ([`Invocation::with_debuginfo`]).
    pub fn for_linked_patch(&self, out_dir: &Path, incremental: &Path, kind: CrateKind) -> Invocation {
        let (crate_type, emit) = match kind {
            CrateKind::Lib => ("rlib", "--emit=link"),
            CrateKind::Bin => ("bin", "--emit=obj"),
        };
        let mut args = Vec::with_capacity(self.args.len() + 4);
        let mut words = self.args.iter();
        while let Some(word) = words.next() {
            if word == "--crate-type" {
                // Only the rlib: a `crate-type = ["cdylib"]` of the crate's own would
                // link std, and cannot link code built for an executable.
                words.next();
            } else if word.starts_with("--emit=") {
                args.push(emit.to_string());
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
        args.extend(["--crate-type", crate_type].map(String::from));
        args.extend(PATCH_LINK_FLAGS.iter().map(|s| s.to_string()));
        Invocation { env: self.env.clone(), program: self.program.clone(), args }
    }
}

impl Invocation {
    /// This library invocation of the program's build turned into the build of a
    /// self-contained patch library: the same crate identity (`-C metadata`, so the
    /// same `TypeId`s and symbol names), compiled as a `cdylib` into `out_dir` with its
    /// own incremental cache, against the libraries [`super::build_patch_deps`] wrote below
    /// `patch_dir` in place of the program's below `program_dir`. Proc macros stay the
    /// program's: they run in the compiler. Returns the libraries it needs.
    pub fn for_self_contained(
        &self,
        program_dir: &Path,
        patch_dir: &Path,
        out_dir: &Path,
        incremental: &Path,
    ) -> (Invocation, Vec<PathBuf>) {
        let moved = |path: &str| -> Option<String> {
            let rest = Path::new(path).strip_prefix(program_dir).ok()?;
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
        (Invocation { env: self.env.clone(), program: self.program.clone(), args }, needs)
    }
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// Builds a patch with rustc directly, in `cwd` (the workspace root, as
/// cargo runs it); renders rustc's diagnostics unless `hide_diagnostics`.
/// `current` says whether the sources are still those the build started from (see
/// [`Rustc::wait`]).
pub fn build_direct(
    direct: &Invocation,
    cwd: &Path,
    shell: &Shell,
    hide_diagnostics: bool,
    current: &dyn Fn() -> bool,
) -> Result<PathBuf, BuildError> {
    Rustc::spawn(direct, cwd)?.wait(shell, hide_diagnostics, std::env::consts::DLL_SUFFIX, current)
}

/// A rustc started with [`Rustc::spawn`], compiling while the caller does other work.
/// Dropped before [`Rustc::wait`], it is killed and reaped: a build whose output is
/// not wanted never outlives the lock of the directory it writes to.
pub struct Rustc {
    child: std::process::Child,
    /// Taken by `wait`.
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Drop for Rustc {
    fn drop(&mut self) {
        if let Some(stderr) = self.stderr.take() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = stderr.join();
        }
    }
}

/// As cargo shows a command at `-vv`: `ENV=value ... rustc ARGS`, each word quoted
/// for a POSIX shell where it needs it.
impl std::fmt::Display for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env = self.env.iter().map(|(k, v)| format!("{k}={}", shell_words::quote(v)));
        let words = std::iter::once(shell_words::quote(&self.program).into_owned())
            .chain(self.args.iter().map(|a| shell_words::quote(a).into_owned()));
        f.write_str(&env.chain(words).collect::<Vec<_>>().join(" "))
    }
}

impl Rustc {
    /// Starts `direct` in `cwd`.
    pub fn spawn(direct: &Invocation, cwd: &Path) -> Result<Rustc, BuildError> {
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
        Ok(Rustc { child, stderr: Some(stderr) })
    }

    /// Waits for it, renders its diagnostics unless `hide_diagnostics`, and returns
    /// the artifact whose name ends with `suffix`.
    ///
    /// A failed build whose sources are no longer `current` (an editor wrote the file
    /// in two steps, and the build took the first half) is [`BuildError::Superseded`]: its errors
    /// are not shown, since the newer sources get a build of their own.
    pub fn wait(
        mut self,
        shell: &Shell,
        hide_diagnostics: bool,
        suffix: &str,
        current: &dyn Fn() -> bool,
    ) -> Result<PathBuf, BuildError> {
        let status = self.child.wait().context("failed to wait for rustc")?;
        let stderr = self.stderr.take().map(|s| s.join().unwrap_or_default()).unwrap_or_default();
        // Killed (the OOM killer, a user's `kill`): not the source's fault, so not
        // remembered as a failed build of it; the next save builds again.
        if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
            return Err(BuildError::Tool(anyhow::anyhow!(
                "rustc was killed by signal {signal} ({}) while compiling the patch; the next save builds it again",
                crate::run::app::signal_name(signal)
            )));
        }
        if !status.success() && !current() {
            return Err(BuildError::Superseded);
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
            return Err(BuildError::Failed);
        }
        Ok(library.context("rustc reported no library")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargos_rustc_invocation_is_captured_for_the_crate_only() {
        let line = "     Running `CARGO_CRATE_NAME=logic CARGO_PKG_AUTHORS='' LD_LIBRARY_PATH='/t/deps:/x' \
                    /bin/rustc --crate-name logic --edition=2021 logic/src/lib.rs --error-format=json \
                    --crate-type cdylib --check-cfg 'cfg(docsrs,test)' --cfg hotreload`";
        let direct = Invocation::parse(line, "logic", "cdylib").unwrap();
        assert_eq!(direct.program, "/bin/rustc");
        assert_eq!(direct.env[1], ("CARGO_PKG_AUTHORS".to_string(), String::new()));
        assert_eq!(direct.env[2].1, "/t/deps:/x");
        assert!(direct.args.contains(&"cfg(docsrs,test)".to_string()));
        assert_eq!(direct.args.last().unwrap(), "hotreload");
        assert!(Invocation::parse(line, "other", "cdylib").is_none());
        assert!(Invocation::parse(&line.replace("cdylib", "lib"), "logic", "cdylib").is_none());
        assert!(Invocation::parse("   Compiling logic v0.1.0", "logic", "cdylib").is_none());
        let multi = "     Running `CARGO_PKG_DESCRIPTION='one\ntwo' /bin/rustc --crate-name logic \
                     --error-format=json --crate-type cdylib`";
        assert_eq!(Invocation::parse(multi, "logic", "cdylib").unwrap().env[0].1, "one\ntwo");
    }

    #[test]
    fn a_linked_patch_build_is_the_programs_rlib_build_made_position_dependent() {
        let line = "     Running `CARGO_PKG_NAME=logic rustc --crate-name logic --edition=2021 logic/src/lib.rs \
                    --error-format=json --crate-type lib --crate-type cdylib --emit=dep-info,metadata,link \
                    -C debuginfo=2 -C metadata=abc -C extra-filename=-abc --out-dir /t/deps \
                    -C incremental=/t/incremental`";
        let program = Invocation::parse(line, "logic", "lib").unwrap();
        assert_eq!(program.output_rlib("logic").unwrap(), Path::new("/t/deps/liblogic-abc.rlib"));
        let patch = program.for_linked_patch(Path::new("/p/logic"), Path::new("/p/inc"), CrateKind::Lib);
        let args = patch.args.join(" ");
        assert!(args.contains("--emit=link") && args.contains("--out-dir /p/logic"), "{args}");
        assert!(args.contains("-C incremental=/p/inc") && args.contains("-C debuginfo=2"), "{args}");
        assert!(args.contains("-C metadata=abc -C extra-filename=-abc"), "{args}");
        assert_eq!(args.matches("--crate-type").count(), 1, "{args}");
        assert!(args.ends_with("--crate-type rlib -C relocation-model=pie -C link-dead-code"), "{args}");
        assert_eq!(patch.env, program.env);
    }

    #[test]
    fn a_binarys_patch_keeps_its_crate_type_and_is_compiled_to_objects() {
        let line = "     Running `rustc --crate-name app --edition=2021 app/src/main.rs --error-format=json \
                    --crate-type bin --emit=dep-info,link -C metadata=abc -C extra-filename=-abc \
                    --out-dir /t/deps -C incremental=/t/incremental -C relocation-model=static`";
        let program = Invocation::parse(line, "app", "bin").unwrap();
        assert_eq!(program.output_executable("app").unwrap(), Path::new("/t/deps/app-abc"));
        let patch = program.for_linked_patch(Path::new("/p/app-bin/objects"), Path::new("/p/inc"), CrateKind::Bin);
        let args = patch.args.join(" ");
        assert!(args.contains("--emit=obj") && args.contains("--out-dir /p/app-bin/objects"), "{args}");
        assert!(args.contains("-C metadata=abc -C extra-filename=-abc"), "{args}");
        assert_eq!(args.matches("--crate-type").count(), 1, "{args}");
        assert!(args.contains("--crate-type bin -C relocation-model=pie -C link-dead-code"), "{args}");
    }

    #[test]
    fn a_self_contained_build_keeps_the_programs_identity() {
        let program = Invocation::parse(
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
            program.for_self_contained(Path::new("/h"), Path::new("/p"), Path::new("/p/out"), Path::new("/p/inc"));
        let args = patch.args.join(" ");
        assert!(args.contains("--crate-type cdylib --emit=link -C metadata=aaa -C extra-filename=-aaa"), "{args}");
        assert!(args.contains("-C incremental=/p/inc --out-dir /p/out -L dependency=/p/debug/deps"), "{args}");
        assert!(args.contains("--extern hotreload=/p/debug/deps/libhotreload-111.rlib"), "{args}");
        assert!(args.contains("--extern macros=/h/debug/deps/libmacros-222.so -L native=/usr/lib"), "{args}");
        assert_eq!(needs, [PathBuf::from("/p/debug/deps/libhotreload-111.rlib")]);
    }

    #[test]
    fn a_failed_build_of_sources_that_changed_meanwhile_is_superseded() {
        let failing = Invocation {
            env: Vec::new(),
            program: "sh".into(),
            args: vec!["-c".into(), r#"echo '{"rendered":"error: half a file"}' >&2; exit 1"#.into()],
        };
        let crate::cli::Cargo::Hotreload(args) =
            <crate::cli::Cargo as clap::Parser>::parse_from(["cargo", "hotreload", "status"]);
        let shell = Shell::new(&args.global);
        let cwd = Path::new(".");
        let err = build_direct(&failing, cwd, &shell, true, &|| false).unwrap_err();
        assert!(matches!(err, BuildError::Superseded), "{err:#}");
        let err = build_direct(&failing, cwd, &shell, true, &|| true).unwrap_err();
        assert!(matches!(err, BuildError::Failed), "{err:#}");
    }

    #[test]
    fn a_dependency_is_swapped_for_its_newer_build_by_file_stem() {
        let program = Invocation {
            env: Vec::new(),
            program: "rustc".into(),
            args: ["--extern", "b=/t/deps/libbase-12.rmeta", "--extern", "h=/t/deps/libhot-34.rmeta"]
                .map(String::from)
                .to_vec(),
        };
        let patched = program.with_extern_build(Path::new("/p/current/base/libbase-12.rlib"));
        assert_eq!(patched.args[..2], ["-L", "dependency=/p/current/base"]);
        assert_eq!(patched.args[3], "b=/p/current/base/libbase-12.rlib");
        assert_eq!(patched.args[5], "h=/t/deps/libhot-34.rmeta");
    }

    #[test]
    fn debuginfo_is_replaced() {
        let d = Invocation {
            env: Vec::new(),
            program: "rustc".into(),
            args: ["-C", "debuginfo=2", "--cfg", "x"].map(String::from).to_vec(),
        };
        assert_eq!(d.with_debuginfo(0).args.join(" "), "--cfg x -C debuginfo=0");
    }
}
