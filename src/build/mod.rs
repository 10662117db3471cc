//! Building: the program with cargo, patches with rustc run as cargo ran it.
//!
//! The program is built in cargo's own target directory (with the runtime's `hot`
//! build, see [`hotreload_protocol::ENV_BUILD`]), so a normal build's dependencies are
//! reused; patch libraries are built below the hot directory (`target/hotreload`).
//! Diagnostics are cargo's and rustc's own; artifacts come from their JSON messages.
//!
//! | piece | module |
//! |---|---|
//! | where builds go, feature selection | `profile` |
//! | cargo builds of the program and of self-contained patches' libraries | `cargo` |
//! | one crate's rustc command, as cargo ran it, and running it | `rustc` |
//! | what of cargo's output the user sees | `output` |
//! | one build at a time per directory | `lock` |
//! | the program's build started before `cargo metadata` answers | `speculate` |
//! | the object files of a built rlib | `rlib` |
//! | the agent library preloaded into programs without the runtime | `agent` |

mod agent;
mod cargo;
mod lock;
mod output;
mod profile;
pub mod rlib;
mod rustc;
mod speculate;

pub use agent::{build_agent, built_agent};
pub use cargo::{build_patch_deps, build_program, compiled_executable, record_fresh, ProgramBuild};
pub use lock::BuildLock;
pub use profile::{Features, Profile};
pub use rustc::{build_direct, Invocation, Rustc};
pub use speculate::{Kept, Speculation};

/// Why a build produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The compiler said no; its diagnostics were shown (unless hidden).
    #[error("build failed")]
    Failed,
    /// The build failed while its sources changed under it: nothing was shown, since
    /// the newer sources get a build of their own.
    #[error("the sources changed during the build")]
    Superseded,
    /// cargo or rustc could not be run, or stopped unexpectedly.
    #[error(transparent)]
    Tool(#[from] anyhow::Error),
}

impl From<std::io::Error> for BuildError {
    fn from(e: std::io::Error) -> Self {
        BuildError::Tool(e.into())
    }
}

/// Whether patches can be linked against the program on this platform (see
/// [`crate::link`]).
pub const LINKED_PATCHES: bool = cfg!(all(target_os = "linux", target_arch = "x86_64"));

/// Flags for a linked patch's crate (see [`crate::link`]): code for an executable, and
/// every static kept global.
const PATCH_LINK_FLAGS: [&str; 4] = ["-C", "relocation-model=pie", "-C", "link-dead-code"];
