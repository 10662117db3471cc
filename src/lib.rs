//! `cargo hotreload`: edit a workspace library crate and the running program uses the
//! new code.
//!
//! The modules follow the data, from a saved file to new code running — one folder per
//! step:
//!
//! | step | module |
//! |---|---|
//! | command line | [`cli`] |
//! | which crates are hot, which binary runs | [`workspace`] |
//! | a saved file, and what changed in a crate's source | [`detect`] (`watch`, `source`, `cfg`) |
//! | building the program and patches | [`build`] |
//! | binding a patch to the running program's symbols | [`link`] (`program`: its executable's image) |
//! | checking a patch before it loads: exports, type layouts, what it changes | [`check`] |
//! | the session directory and the control socket patches reach the program through | [`apply`] |
//! | `mode`, `now`, `aimport`, `status`, and the settings in `Cargo.toml` | [`steer`] |
//! | the running program, and the session loop that drives every step | [`run`] |
//!
//! Beside the pipeline: [`error`] (what the user sees when a command fails, and its exit
//! code), [`lockfile`] (one session per workspace, one build at a time per directory)
//! and [`shell`] (status output in cargo's style).

pub mod apply;
pub mod build;
pub mod check;
pub mod cli;
pub mod detect;
pub mod error;
pub mod link;
pub mod lockfile;
pub mod run;
pub mod shell;
pub mod steer;
pub mod workspace;

use clap::Parser;

/// Runs the subcommand with the process's arguments; returns the exit code (see
/// [`error::exit`]).
pub fn main() -> i32 {
    let cli::Cargo::Hotreload(args) = cli::Cargo::parse();
    let shell = shell::Shell::new(&args.global);
    let global = &args.global;
    let result = match args.command {
        cli::Command::Run(run) => run::run(global, &run, &shell),
        cli::Command::Mode { value, save } => steer::commands::mode(global, value.as_deref(), save, &shell),
        cli::Command::Now => steer::commands::now(global, &shell),
        cli::Command::Aimport { crates, save } => steer::commands::aimport(global, &crates, save, &shell),
        cli::Command::Status { format } => steer::commands::status(global, format, &shell),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            shell.error(e.render());
            e.process_exit_code()
        }
    }
}
