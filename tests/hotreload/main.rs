//! End-to-end tests: the real `cargo hotreload run` on copies of `fixtures/`, real
//! edits, and assertions on what the running program prints.

mod autoreload;
mod disk;
mod entry;
mod faults;
mod harness;
mod inject;
mod layout;
mod lost_edits;
mod ordinary;
mod reload;
mod safety;
mod scan;
mod start;
mod state;
