//! The command line, in cargo's conventions.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// `cargo` invokes us as `cargo-hotreload hotreload ...`; `cargo-hotreload --version`
/// typed by hand says the version too.
#[derive(Debug, Parser)]
#[command(name = "cargo", display_name = "cargo-hotreload", bin_name = "cargo", version, about = None, long_about = None)]
#[command(styles = clap_cargo_styles())]
pub enum Cargo {
    /// Hot reload for Rust workspaces.
    #[command(version, about, long_about = None, display_name = "cargo-hotreload")]
    Hotreload(HotreloadArgs),
}

/// `cargo hotreload`
#[derive(Debug, Args)]
pub struct HotreloadArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Options every subcommand takes, listed after each subcommand's own.
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build and run a binary, and reload the crates of the workspace (libraries and the
    /// binary itself) in the running program when their sources change.
    Run(RunArgs),
    /// Show or set which crates reload: off, explicit (aimported only) or all (0, 1, 2).
    Mode {
        /// `off`, `explicit` or `all` (also `0`, `1`, `2`); none prints the current mode.
        value: Option<String>,
        /// Also write it to the workspace's `Cargo.toml`, for later sessions.
        #[arg(long)]
        save: bool,
    },
    /// Rebuild and apply every changed crate (libraries and the binary) once, whatever the mode.
    Now,
    /// List, mark (`aimport logic`) or skip (`aimport -logic`) library crates; `-a, b` mixes.
    Aimport {
        /// Crate names, `-NAME` to skip, separated by commas or spaces.
        #[arg(allow_hyphen_values = true, value_name = "CRATES")]
        crates: Vec<String>,
        /// Also write the marks to the workspace's `Cargo.toml`, for later sessions.
        #[arg(long)]
        save: bool,
    },
    /// Show the running session: program, mode, each crate and its last reload.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
}

/// `status --format`
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Human,
    /// For tools and editors.
    Json,
}

/// Options every subcommand takes, listed after each subcommand's own.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose", display_order = 100)]
    pub quiet: bool,
    /// Say more: every function of each patch, and every cargo line (-vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, display_order = 101)]
    pub verbose: u8,
    /// When to color the output: auto (on a terminal), always, never.
    #[arg(long, global = true, value_enum, env = "CARGO_TERM_COLOR", default_value = "auto", display_order = 102)]
    pub color: ColorChoice,
    /// Path to the workspace's (or a member's) Cargo.toml.
    #[arg(long, global = true, value_name = "PATH", display_order = 103)]
    pub manifest_path: Option<PathBuf>,
    /// Directory for all generated artifacts, as cargo's `--target-dir`; patches and
    /// sessions go in `<DIR>/hotreload` (or `CARGO_HOTRELOAD_TARGET_DIR`).
    #[arg(long, global = true, value_name = "DIR", display_order = 104)]
    pub target_dir: Option<PathBuf>,
}

/// `--color`
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Color when writing to a terminal.
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

/// `cargo hotreload run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Package with the binary to run.
    #[arg(short, long, value_name = "SPEC")]
    pub package: Option<String>,
    /// Name of the binary to run.
    #[arg(long, value_name = "NAME", conflicts_with = "example")]
    pub bin: Option<String>,
    /// Name of the example to run.
    #[arg(long, value_name = "NAME")]
    pub example: Option<String>,
    /// Build in release mode, with optimizations.
    #[arg(short, long)]
    pub release: bool,
    /// Features to activate (space- or comma-separated).
    #[arg(short = 'F', long, value_name = "FEATURES")]
    pub features: Vec<String>,
    /// Activate all available features.
    #[arg(long)]
    pub all_features: bool,
    /// Do not activate the `default` feature.
    #[arg(long)]
    pub no_default_features: bool,
    /// Rebuild and restart the program when a change cannot be reloaded.
    #[arg(long)]
    pub restart: bool,
    /// Reload through self-contained libraries only, which have their own copies of
    /// statics and thread-locals, instead of linking new code against the program.
    #[arg(long)]
    pub self_contained: bool,
    /// Exit when the program exits, with its exit code.
    #[arg(long)]
    pub exit_with_app: bool,
    /// Which crates reload: off, explicit, all (or 0, 1, 2) [default: from Cargo.toml, else all].
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// Still build changes that are not applied (mode off, skipped or unmarked crates),
    /// to report compile errors; they are applied later by `now` or another mode.
    #[arg(long)]
    pub check: bool,
    /// Print `Reloading 'crate'.` for each reload.
    #[arg(long)]
    pub print: bool,
    /// Emit `Reloading 'crate'.` through the `log` facade at info.
    #[arg(long)]
    pub log: bool,
    /// Do not show the compiler's errors when a patch fails to build.
    #[arg(long)]
    pub hide_errors: bool,
    /// Milliseconds to wait for a burst of saves to end.
    #[arg(long, value_name = "MS", default_value_t = 15)]
    pub debounce: u64,
    /// Arguments for the program.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

fn clap_cargo_styles() -> clap::builder::Styles {
    use anstyle::{AnsiColor, Effects};
    clap::builder::Styles::styled()
        .header(AnsiColor::Green.on_default().effects(Effects::BOLD))
        .usage(AnsiColor::Green.on_default().effects(Effects::BOLD))
        .literal(AnsiColor::Cyan.on_default().effects(Effects::BOLD))
        .placeholder(AnsiColor::Cyan.on_default())
        .error(AnsiColor::Red.on_default().effects(Effects::BOLD))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cargo::command().debug_assert();
    }

    #[test]
    fn the_version_is_said_by_cargo_and_by_hand() {
        let version = format!("cargo-hotreload {}\n", env!("CARGO_PKG_VERSION"));
        for args in [&["cargo", "hotreload", "-V"][..], &["cargo-hotreload", "--version"]] {
            let said = Cargo::try_parse_from(args).unwrap_err();
            assert_eq!(said.kind(), clap::error::ErrorKind::DisplayVersion);
            assert_eq!(said.to_string(), version, "{args:?}");
        }
    }

    #[test]
    fn run_takes_cargo_style_options() {
        let Cargo::Hotreload(args) = Cargo::try_parse_from([
            "cargo",
            "hotreload",
            "run",
            "-p",
            "app",
            "--release",
            "-F",
            "a,b",
            "-v",
            "--",
            "--flag",
        ])
        .unwrap();
        let Command::Run(run) = args.command else { panic!("parsed as run") };
        assert_eq!(run.package.as_deref(), Some("app"));
        assert!(run.release);
        assert_eq!(run.features, ["a,b"]);
        assert_eq!(run.args, ["--flag"]);
        assert_eq!(args.global.verbose, 1);
    }
}
