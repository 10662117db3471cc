//! Checking a built patch before anything is loaded: its exports and records, its type
//! layouts against the running program's, and what it changes against the running code.

pub mod diff;
pub mod layout;
pub mod library;
