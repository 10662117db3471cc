//! Status output in cargo's shape: right-aligned green words, `warning:` and `error:`
//! in colour on stderr, `-q` and `-v`.

use crate::cli::{ColorChoice, GlobalArgs};
use anstyle::{AnsiColor, Effects, Style};
use std::fmt::Display;
use std::io::IsTerminal;

const STATUS: Style = AnsiColor::Green.on_default().effects(Effects::BOLD);
const NOTE: Style = AnsiColor::Cyan.on_default().effects(Effects::BOLD);
const WARNING: Style = AnsiColor::Yellow.on_default().effects(Effects::BOLD);
const ERROR: Style = AnsiColor::Red.on_default().effects(Effects::BOLD);

/// How much to say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: warnings and errors only.
    Quiet,
    /// The default.
    Normal,
    /// `-v`
    Verbose,
    /// `-vv`
    VeryVerbose,
}

/// Where status lines go.
#[derive(Clone, Debug)]
pub struct Shell {
    verbosity: Verbosity,
    color: bool,
}

impl Shell {
    /// From the global options; also sets the colour choice for everything printed.
    pub fn new(args: &GlobalArgs) -> Shell {
        let color = match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        };
        let choice = if color { anstream::ColorChoice::Always } else { anstream::ColorChoice::Never };
        choice.write_global();
        let verbosity = match (args.quiet, args.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            _ => Verbosity::VeryVerbose,
        };
        Shell { verbosity, color }
    }

    /// The verbosity chosen.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// Whether output is coloured (passed on to cargo as `--color`).
    pub fn color(&self) -> bool {
        self.color
    }

    /// Whether a person is watching: progress bars only then.
    pub fn interactive(&self) -> bool {
        self.verbosity != Verbosity::Quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
    }

    /// `   Compiling logic (hot patch)`
    pub fn status(&self, word: &str, message: impl Display) {
        if self.verbosity >= Verbosity::Normal {
            self.line(STATUS, &format!("{word:>12}"), " ", message);
        }
    }

    /// A status line printed only with `-v`.
    pub fn verbose_status(&self, word: &str, message: impl Display) {
        if self.verbosity >= Verbosity::Verbose {
            self.line(STATUS, &format!("{word:>12}"), " ", message);
        }
    }

    /// A status line printed only with `-vv`.
    pub fn very_verbose_status(&self, word: &str, message: impl Display) {
        if self.verbosity >= Verbosity::VeryVerbose {
            self.line(STATUS, &format!("{word:>12}"), " ", message);
        }
    }

    /// `note: ...`, not in quiet mode.
    pub fn note(&self, message: impl Display) {
        if self.verbosity >= Verbosity::Normal {
            self.line(NOTE, "note", ": ", message);
        }
    }

    /// `warning: ...`
    pub fn warn(&self, message: impl Display) {
        self.line(WARNING, "warning", ": ", message);
    }

    /// `error: ...`
    pub fn error(&self, message: impl Display) {
        self.line(ERROR, "error", ": ", message);
    }

    /// One line, `word` in `style` when colours are on, written to stderr in one
    /// `write`: the program shares the stream, and a line written in pieces would take
    /// the program's output in between (`Reloaded shared[INFO  shared] logged v3`).
    fn line(&self, style: Style, word: &str, separator: &str, message: impl Display) {
        use std::io::Write as _;
        let line = match self.color {
            true => format!("{style}{word}{style:#}{separator}{message}\n"),
            false => format!("{word}{separator}{message}\n"),
        };
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}
