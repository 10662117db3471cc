//! What of cargo's output the user sees: as a plain `cargo build` shows it, without
//! what our `-vv` (for rustc commands) adds.

use super::BuildError;
use crate::shell::{Shell, Verbosity};
use anyhow::Context;
use cargo_metadata::Message;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Which of cargo's stderr to pass on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Forward {
    /// Status lines and diagnostics, with a progress bar on a terminal (program builds).
    Everything,
    /// Nothing: the caller shows what matters (libraries for self-contained patches).
    Nothing,
}

/// Runs cargo, passing its stderr through as `forward` says and JSON messages from
/// stdout to `on_message`; also shows every stderr line to `on_line` (on this thread, after cargo exits).
pub(super) fn run_with(
    mut cmd: Command,
    shell: &Shell,
    forward: Forward,
    mut on_line: impl FnMut(&str),
    mut on_message: impl FnMut(Message),
) -> Result<(), BuildError> {
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
        return Err(anyhow::anyhow!("cargo was stopped by signal {signal}").into());
    }
    if !status.success() {
        return Err(BuildError::Failed);
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
}
