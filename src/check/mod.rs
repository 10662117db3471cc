//! Checking a built patch before anything is loaded: its exports and records, its type
//! layouts against the running program's, what it changes against the running code
//! (`diff` by records, `code` by compiled code), and whether each changed function's
//! entry can take a jump (`entries`).

pub mod code;
pub mod diff;
pub mod entries;
pub mod layout;
pub mod library;
