//! Steering a running session: `mode`, `now`, `aimport` and `status` (IPython's
//! `%autoreload` and `%aimport`), and the settings kept in `Cargo.toml`.

pub mod commands;
pub mod settings;
