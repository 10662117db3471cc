//! What `cargo hotreload` and the `hotreload` runtime agree on.
//!
//! Four things cross the boundary between the tool and a running program, and each
//! has its own module:
//!
//! - [`record`]: the fixed-size [`Record`](record::Record) that every hot function
//!   exports next to its forwarder, readable from a library file *before* it is loaded;
//! - [`message`]: the newline-delimited JSON messages on the control socket;
//! - [`peer`]: who is on the other end of that socket (same user only);
//! - [`control`]: requests from `cargo hotreload mode|now|aimport|status` to a running session.
//!
//! And the rules both sides apply: [`image`] (what a linked patch image may hold and
//! where), [`full_form`] (which functions a linked patch compiles whole), and, with the
//! `rules` feature, `rules` (what makes a function hot-able).
//!
//! This crate is an implementation detail of `cargo-hotreload`; its API follows the
//! tool's version, not semver of its own.

#[cfg(feature = "messages")]
pub mod control;
pub mod full_form;
pub mod image;
#[cfg(feature = "messages")]
pub mod message;
pub mod peer;
pub mod record;
#[cfg(feature = "rules")]
pub mod rules;

/// The runtime's package name (`hotreload` on crates.io is another project); its
/// library is named `hotreload`, so code writes `#[hotreload::hot]` unless the
/// manifest renames the dependency.
pub const RUNTIME_PACKAGE: &str = "hotreload-runtime";

/// The runtime's library name: how code names it when the manifest does not rename it.
pub const RUNTIME_LIB: &str = "hotreload";

/// Environment variable the tool sets for its builds: how each workspace crate names
/// the runtime in code, as `crate=name` pairs separated by commas (`logic=hotreload,
/// beta=hr`). `#[hot]` reads its crate's entry (by `CARGO_CRATE_NAME`) instead of
/// asking cargo where the workspace is, which would cost every patch build a cargo run.
pub const ENV_RUNTIME_NAMES: &str = "CARGO_HOTRELOAD_RUNTIME_NAMES";

/// Version of the control protocol; both ends refuse a peer that speaks another.
pub const PROTOCOL_VERSION: u32 = 1;

/// Environment variable holding the control socket path the tool listens on.
pub const ENV_SOCKET: &str = "CARGO_HOTRELOAD_SOCKET";

/// Environment variable holding the session directory; every patch library the
/// agent is asked to load must lie inside it.
pub const ENV_SESSION_DIR: &str = "CARGO_HOTRELOAD_SESSION_DIR";

/// The folder of the session directory where the tool keeps each applied patch's
/// compiled crate (`applied/<unit>/<generation>/`), for later patches to compile against.
pub const APPLIED_DIR: &str = "applied";

/// Environment variable set, with [`ENV_TOOL_PID`], for a program the tool starts with
/// its agent library preloaded (`LD_PRELOAD`): the library's path, which the agent
/// removes from `LD_PRELOAD` before `main` so that the program's children never load it.
pub const ENV_AGENT_LIBRARY: &str = "CARGO_HOTRELOAD_AGENT_LIBRARY";

/// Environment variable holding the tool's process id: a preloaded agent starts only in
/// a process whose parent it is (the program the tool started, not a child of it that
/// kept the environment).
pub const ENV_TOOL_PID: &str = "CARGO_HOTRELOAD_TOOL_PID";

/// The cfg the `hotreload` runtime is compiled with in a `cargo hotreload run` build.
pub const CFG_HOT: &str = "hotreload";

/// The cfg the runtime is compiled with, in addition, in a self-contained patch build.
pub const CFG_PATCH: &str = "hotreload_patch";

/// Environment variable the tool sets for its cargo builds: `hot` for the program,
/// `patch` for self-contained patches. The runtime's build script turns it into
/// [`CFG_HOT`] and [`CFG_PATCH`] for the runtime alone. Passing the cfgs in
/// `RUSTFLAGS` instead would change cargo's `-C metadata` of every crate, and with it
/// every `TypeId` and symbol name: a patch would no longer share the program's types.
pub const ENV_BUILD: &str = "CARGO_HOTRELOAD_BUILD";

/// Set for the compile of a linked patch to the comma-separated ids, relative to their
/// module (`::score`, `::Counter::bump`), of the functions `#[hot]` must expand in
/// full; the others become stubs that call through the program's slots. Unset in
/// every other build: everything in full.
pub const ENV_FULL_FORM: &str = "HOTRELOAD_FULL_FORM";
