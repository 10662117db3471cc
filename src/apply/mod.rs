//! Applying patches: the session's directory, where patches are placed, and the
//! control socket they reach the running program through, and the agent preloaded into
//! a program that does not start its own.

pub mod inject;
pub mod session;
