//! `cargo hotreload`: edit a workspace library crate and the running program uses the
//! new code.
//!
//! The modules follow the data, from a saved file to new code running:
//!
//! | step | module |
//! |---|---|
//! | command line | [`cli`] |
//! | which crates are hot, which binary runs | [`workspace`] |
//! | a saved file | [`watch`] |
//! | what changed in the crate's source, and can it be applied | [`source`], with [`cfg`] |
//! | building the program and patch libraries | [`compile`] |
//! | linked patches: the program's symbols, and binding new code to them | [`host`], [`link`] |
//! | the patch library's exports and type layouts, read before loading | [`library`], [`layout`] |
//! | what a patch changes against the running code | [`diff`] |
//! | the control socket to the running program | [`session`] |
//! | the running program itself | [`app`] |
//! | all of it, in a loop | [`run`] |
//!
//! Beside the pipeline: [`settings`] (mode, aimport marks, kept in `Cargo.toml`),
//! [`control`] (`mode`, `now`, `aimport`, `status` talking to a running session), and
//! [`lockfile`] (one session per workspace, one build at a time per target dir).
//! Status output in cargo's style lives in [`shell`].

pub mod app;
pub mod cfg;
pub mod cli;
pub mod compile;
pub mod control;
pub mod diff;
pub mod host;
pub mod layout;
pub mod library;
pub mod link;
pub mod lockfile;
pub mod run;
pub mod session;
pub mod settings;
pub mod shell;
pub mod source;
pub mod watch;
pub mod workspace;

use clap::Parser;

/// Runs the subcommand with the process's arguments; returns the exit code.
pub fn main() -> i32 {
    let cli::Cargo::Hotreload(args) = cli::Cargo::parse();
    let shell = shell::Shell::new(&args.global);
    let result = match args.command {
        cli::Command::Run(run) => run::run(&args.global, &run, &shell),
        cli::Command::Mode { value, save } => control::mode(&args.global, value.as_deref(), save, &shell),
        cli::Command::Now => control::now(&args.global, &shell),
        cli::Command::Aimport { crates, save } => control::aimport(&args.global, &crates, save, &shell),
        cli::Command::Status { format } => control::status(&args.global, format, &shell),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            shell.error(format_args!("{e:#}"));
            1
        }
    }
}
