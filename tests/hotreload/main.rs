//! End-to-end tests: the real `cargo hotreload run` on copies of `fixtures/`, real
//! edits, and assertions on what the running program prints.

mod autoreload;
mod harness;
mod reload;
mod safety;
mod state;
