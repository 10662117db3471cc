//! Applying patches: the session's directory, where patches are placed, and the
//! control socket they reach the running program through.

pub mod session;
