//! Hot reload for Rust: the runtime that `cargo hotreload run` talks to.
//!
//! Call [`init`] once at the start of `main`; your library crates need nothing:
//!
//! ```no_run
//! // crates/logic/src/lib.rs — no dependency on this crate
//! pub fn greeting(name: &str) -> String {
//!     format!("hello, {name}")
//! }
//!
//! // src/main.rs
//! fn main() {
//!     hotreload::init();
//!     loop {
//!         # let greeting = |s: &str| s.to_string();
//!         println!("{}", greeting("world"));
//!         std::thread::sleep(std::time::Duration::from_secs(1));
//!     }
//! }
//! ```
//!
//! Then `cargo hotreload run`, edit `greeting`, save: the loop prints the new text
//! without restarting. Outside a hot session [`init`] does nothing.
//!
//! # How a call reaches new code
//!
//! On Linux x86-64, each function whose compiled code changed is redirected at its
//! entry: the agent writes a 5-byte jump to the new copy over the first bytes of every
//! copy that runs, while the program's other threads are stopped (see the crate's
//! `redirect` module for how, and why it is safe). Callers are never recompiled, so
//! `fn` pointers, trait objects and objects created before the edit all reach the
//! newest code.
//!
//! `#[hot]` (optional) gives a function a slot, an atomic pointer in its crate's
//! trampoline table: the function you call loads the slot and calls through it, and a
//! patch switches the slot. That works where entries are not redirected (other
//! platforms, self-contained patches) and survives cross-crate inlining in release
//! builds. In an ordinary `cargo build` it expands to the item unchanged.
//!
//! A patch is checked against the running program (signatures, type layouts, the
//! compiler version, every redirect's addresses) before it is mapped, and it is never
//! unloaded.

#[doc(hidden)]
pub mod __rt;
#[cfg(feature = "agent")]
mod agent;
#[cfg(all(feature = "agent", target_os = "linux", target_arch = "x86_64"))]
mod code;
mod events;
/// The start of the preloaded agent (`hotreload-agent`); not for programs.
#[cfg(all(feature = "agent", target_os = "linux", target_arch = "x86_64"))]
#[doc(hidden)]
pub mod inject;
#[cfg(all(feature = "agent", target_os = "linux", target_arch = "x86_64"))]
mod loader;
#[cfg(feature = "agent")]
mod orphan;
#[cfg(hotreload_patch)]
mod patch;
#[cfg(all(feature = "agent", target_os = "linux", target_arch = "x86_64"))]
mod redirect;
#[cfg(feature = "agent")]
mod registry;

pub use events::{on_reload, ReloadEvent};
pub use hotreload_macros::hot;

/// When patches are switched in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Apply {
    /// As soon as the patch is checked, from the agent's own thread (the default).
    #[default]
    Immediately,
    /// Only inside [`safepoint`], called by the program where it is safe (once per frame,
    /// between requests, ...). Every slot of a patch switches there together.
    AtSafepoints,
}

/// How [`init_with`] sets up the agent.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Options {
    /// When patches are switched in.
    pub apply: Apply,
}

impl Options {
    /// The defaults: apply immediately.
    pub fn new() -> Options {
        Options::default()
    }

    /// Applies patches only at [`safepoint`] calls.
    pub fn apply_at_safepoints(mut self) -> Options {
        self.apply = Apply::AtSafepoints;
        self
    }
}

/// Connects to the `cargo hotreload run` session that started this program.
///
/// Call it once, early in `main`. It does nothing (and costs nothing) when the program
/// was built without `cargo hotreload`, or was not started by it. Calling it again is
/// harmless. If the session cannot be reached, it prints one warning to stderr and the
/// program runs on without reloading.
pub fn init() {
    init_with(Options::new());
}

/// [`init`], with options.
pub fn init_with(options: Options) {
    #[cfg(feature = "agent")]
    if __rt::HOT {
        agent::start(options);
    }
    #[cfg(not(feature = "agent"))]
    let _ = options;
}

/// Applies patches that are waiting, when the agent was started with
/// [`Options::apply_at_safepoints`]. Cheap when nothing is waiting: one atomic load.
///
/// Returns the number of patches applied.
pub fn safepoint() -> usize {
    #[cfg(feature = "agent")]
    if __rt::HOT {
        return agent::safepoint();
    }
    0
}
