//! What of cargo's output the user sees: as a plain `cargo build` shows it, without
//! what our `-vv` (for rustc commands) adds.

use super::BuildError;
use crate::shell::{Shell, Verbosity};
use anyhow::Context;
use cargo_metadata::Message;
use indicatif::ProgressBar;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

/// Holds a build's output until it is known whether the build counts (a speculative
/// build's, until the workspace `cargo metadata` reads agrees): then what it held is
/// shown in order and the rest as it comes ([`Gate::open`]), or all of it is dropped
/// ([`Gate::close`]).
#[derive(Clone, Default)]
pub struct Gate(Arc<Mutex<GateState>>);

enum GateState {
    /// Deciding: the lines so far, each a rendered diagnostic (`true`, printed as is)
    /// or a line of cargo's stderr.
    Holding(Vec<(bool, String)>),
    Open,
    Closed,
}

impl Default for GateState {
    fn default() -> Self {
        GateState::Holding(Vec::new())
    }
}

impl Gate {
    /// Shows what was held, and lets the rest through.
    pub fn open(&self) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let GateState::Holding(lines) = std::mem::replace(&mut *state, GateState::Open) {
            for (rendered, text) in lines {
                match rendered {
                    true => anstream::eprint!("{text}"),
                    false => eprintln!("{text}"),
                }
            }
        }
    }

    /// Drops what was held, and all that comes.
    pub fn close(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = GateState::Closed;
    }
}

/// Where the output a build shows goes: to stderr, through the progress bar when there
/// is one, past a [`Gate`] when there is one.
#[derive(Clone)]
struct Out {
    bar: Option<ProgressBar>,
    gate: Option<Gate>,
}

impl Out {
    /// A line of cargo's stderr (a `status` line also names what is being built).
    fn line(&self, line: &str, status: bool) {
        if self.held(false, line) {
            return;
        }
        match &self.bar {
            Some(bar) => {
                if status {
                    bar.set_message(line.trim().to_string());
                }
                bar.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    /// A rendered diagnostic, which ends with its own newline.
    fn diagnostic(&self, rendered: &str) {
        if self.held(true, rendered) {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(rendered.trim_end()),
            None => anstream::eprint!("{rendered}"),
        }
    }

    /// Whether the gate took `text` (holding or dropping it).
    fn held(&self, rendered: bool, text: &str) -> bool {
        let Some(gate) = &self.gate else { return false };
        let mut state = gate.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *state {
            GateState::Open => false,
            GateState::Closed => true,
            GateState::Holding(lines) => {
                lines.push((rendered, text.to_string()));
                true
            }
        }
    }
}

/// Which of cargo's stderr to pass on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Forward {
    /// Status lines and diagnostics, with a progress bar on a terminal (program builds).
    Everything,
    /// Nothing: the caller shows what matters (libraries for self-contained patches).
    Nothing,
}

/// What of cargo's output a build shows, by the user's verbosity and the build's kind.
#[derive(Clone, Copy)]
struct View {
    /// Nothing at all (the caller shows what matters).
    hide_all: bool,
    /// `-q`: no status lines.
    quiet: bool,
    /// `-vv`: commands, build scripts' output, dependencies' diagnostics.
    very_verbose: bool,
    /// Status lines (`Compiling …`): for the program's build, or at `-vv`.
    show_status: bool,
}

impl View {
    fn new(shell: &Shell, forward: Forward) -> View {
        let very_verbose = shell.verbosity() >= Verbosity::VeryVerbose;
        View {
            hide_all: forward == Forward::Nothing,
            quiet: shell.verbosity() == Verbosity::Quiet,
            very_verbose,
            show_status: forward == Forward::Everything || very_verbose,
        }
    }
}

/// Runs cargo, passing its stderr through as `forward` says and JSON messages from
/// stdout to `on_message`; also shows every stderr line to `on_line` (on this thread,
/// after cargo exits).
pub(super) fn run_with(
    cmd: Command,
    shell: &Shell,
    forward: Forward,
    on_line: impl FnMut(&str),
    on_message: impl FnMut(Message),
) -> Result<(), BuildError> {
    read_with(spawn(cmd, shell)?, shell, forward, None, on_line, on_message)
}

/// Starts cargo with its output piped, for [`read_with`].
pub(super) fn spawn(mut cmd: Command, shell: &Shell) -> Result<Child, BuildError> {
    if shell.verbosity() >= Verbosity::VeryVerbose {
        shell.status("Running", format_args!("{cmd:?}"));
    }
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).spawn();
    Ok(child.context("failed to run cargo")?)
}

/// [`run_with`] for a cargo already started by [`spawn`], its output past `gate`.
pub(super) fn read_with(
    mut child: Child,
    shell: &Shell,
    forward: Forward,
    gate: Option<Gate>,
    mut on_line: impl FnMut(&str),
    on_message: impl FnMut(Message),
) -> Result<(), BuildError> {
    let stderr = child.stderr.take().expect("piped");
    let view = View::new(shell, forward);
    let progress = progress_bar(shell, forward != Forward::Everything);
    let out = Out { bar: progress.clone(), gate };
    let err_out = out.clone();
    let forwarding = std::thread::spawn(move || forward_stderr(stderr, view, &err_out));
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    read_messages(stdout, view, &out, on_message)?;
    let status = child.wait().context("failed to wait for cargo")?;
    for line in forwarding.join().unwrap_or_default() {
        on_line(&line);
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return Err(anyhow::anyhow!("cargo was stopped by signal {signal}").into());
    }
    if !status.success() {
        return Err(BuildError::Failed);
    }
    Ok(())
}

/// Passes cargo's JSON messages to `on_message`, showing diagnostics of path packages
/// (and dependencies' at `-vv`) as cargo does.
fn read_messages(
    stdout: impl BufRead,
    view: View,
    out: &Out,
    mut on_message: impl FnMut(Message),
) -> Result<(), BuildError> {
    for message in Message::parse_stream(stdout) {
        let message = message.context("failed to read cargo's output")?;
        if let (Some(bar), Message::CompilerArtifact(a)) = (&out.bar, &message) {
            bar.inc(1);
            bar.set_message(a.target.name.clone());
        }
        if let Message::CompilerMessage(m) = &message {
            let ours = m.package_id.repr.starts_with("path+") || view.very_verbose;
            if let Some(rendered) = m.message.rendered.as_deref().filter(|_| ours && !view.hide_all) {
                out.diagnostic(rendered);
            }
        }
        on_message(message);
    }
    Ok(())
}

/// Shows cargo's stderr as `view` says, and returns every `Running` command it printed
/// (one entry per command, even when an environment value spans lines).
fn forward_stderr(stderr: impl std::io::Read, view: View, out: &Out) -> Vec<String> {
    let mut filter = StderrFilter::default();
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok).peekable();
    while let Some(line) = lines.next() {
        let (status, chatter) = filter.classify(&line, lines.peek().map(String::as_str));
        // Commands and build scripts' output, which `-vv` makes cargo print, only
        // when the user asked for `-vv` too.
        if view.hide_all || status && (view.quiet || !view.show_status) || chatter && !view.very_verbose {
            continue;
        }
        out.line(&line, status);
    }
    filter.commands
}

/// Tells cargo's stderr lines apart, line by line.
#[derive(Default)]
struct StderrFilter {
    /// Every complete `Running` command.
    commands: Vec<String>,
    /// A `Running` command that spans lines (an environment value holds a newline).
    command: Option<String>,
    /// Inside `Caused by: process didn't exit successfully: `rustc …``, which `-vv`
    /// makes cargo add after a failed build: the diagnostics above already say it all.
    failed_command: bool,
}

impl StderrFilter {
    /// Whether `line` (followed by `next`) is a status line, and whether it is
    /// chatter that only `-vv` shows.
    fn classify(&mut self, line: &str, next: Option<&str>) -> (bool, bool) {
        let mut status = is_status_line(line);
        let mut chatter =
            is_script_echo(line) || is_warning_summary(line) || is_verbose_only(line) || is_cargo_finished(line);
        // Only after `Caused by:` wait for the next line to know what it is.
        let caused_by = strip_ansi(line).trim() == "Caused by:";
        if caused_by && next.is_some_and(is_failed_command) || is_failed_command(line) {
            self.failed_command = true;
        }
        if self.failed_command {
            chatter = true;
            let plain = strip_ansi(line);
            self.failed_command = !(plain.contains("(exit status: ") || plain.contains("(signal: "));
        }
        // In a terminal cargo colours its status word (`\x1b[1m\x1b[32mRunning\x1b[0m`):
        // commands are read from the plain text.
        let plain = strip_ansi(line);
        if let Some(mut text) = self.command.take() {
            text.push('\n');
            text.push_str(&plain);
            if plain.ends_with('`') {
                self.commands.push(text);
            } else {
                self.command = Some(text);
            }
            status = true;
            chatter = true;
        } else if plain.trim_start().starts_with("Running `") {
            chatter = true;
            if plain.ends_with('`') {
                self.commands.push(plain);
            } else {
                self.command = Some(plain);
            }
        }
        (status, chatter)
    }
}

/// Cargo's `Finished `dev` profile … in 0.23s`: the tool says `Finished `dev` hot build
/// of …` itself, once the program is ready; two `Finished` lines in a row were noise.
fn is_cargo_finished(line: &str) -> bool {
    let plain = strip_ansi(line);
    plain.starts_with(' ') && plain.trim_start().starts_with("Finished `") && plain.contains("` profile [")
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

pub(super) fn strip_ansi(line: &str) -> String {
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

fn progress_bar(shell: &Shell, patch: bool) -> Option<ProgressBar> {
    if patch || !shell.interactive() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
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
    fn a_gate_holds_lines_until_opened_and_drops_them_once_closed() {
        let gate = Gate::default();
        let out = Out { bar: None, gate: Some(gate.clone()) };
        assert!(out.held(false, "   Compiling app"));
        assert!(out.held(true, "error: no\n"));
        let held = |gate: &Gate| match &*gate.0.lock().unwrap() {
            GateState::Holding(lines) => lines.clone(),
            _ => Vec::new(),
        };
        assert_eq!(held(&gate), [(false, "   Compiling app".to_string()), (true, "error: no\n".to_string())]);
        gate.open();
        assert!(held(&gate).is_empty());
        assert!(!out.held(false, "shown at once"), "an open gate lets lines through");
        let closed = Gate::default();
        let out = Out { bar: None, gate: Some(closed.clone()) };
        assert!(out.held(false, "a"));
        closed.close();
        assert!(held(&closed).is_empty() && out.held(false, "b"), "a closed gate drops everything");
        assert!(!Out { bar: None, gate: None }.held(false, "c"), "no gate, nothing held");
    }

    #[test]
    fn a_failed_commands_block_and_a_multi_line_command_are_chatter() {
        let mut filter = StderrFilter::default();
        assert_eq!(filter.classify("error: could not compile `logic`", Some("")), (false, false));
        assert_eq!(filter.classify("Caused by:", Some("  process didn't exit successfully: `rustc`")), (false, true));
        assert_eq!(
            filter.classify("  process didn't exit successfully: `rustc …` (exit status: 1)", None),
            (false, true)
        );
        assert_eq!(filter.classify("warning: build failed, waiting for other jobs to finish...", None), (false, false));
        assert_eq!(filter.classify("     Running `X='a", None), (true, true));
        assert_eq!(filter.classify("b' rustc --crate-name x`", None), (true, true));
        assert_eq!(filter.commands, ["     Running `X='a\nb' rustc --crate-name x`"]);
        // Coloured, as cargo prints it in a terminal: the same command.
        let mut filter = StderrFilter::default();
        assert_eq!(filter.classify("\u{1b}[1m\u{1b}[32m     Running\u{1b}[0m `X='a", None), (true, true));
        assert_eq!(filter.classify("b' rustc --crate-name x`", None), (true, true));
        assert_eq!(
            filter.classify("\u{1b}[1m\u{1b}[32m     Running\u{1b}[0m `rustc --crate-name y`", None),
            (true, true)
        );
        assert_eq!(
            filter.commands,
            ["     Running `X='a\nb' rustc --crate-name x`", "     Running `rustc --crate-name y`"]
        );
    }

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
        assert!(is_cargo_finished("\u{1b}[1m\u{1b}[32m    Finished\u{1b}[0m `dev` profile [unoptimized] in 0.2s"));
        assert!(!is_cargo_finished("    Finished `dev` hot build of `app` in 0.24s"));
        assert!(!is_status_line("error[E0308]: mismatched types"));
        assert!(!is_status_line("warning: unused variable"));
    }
}
