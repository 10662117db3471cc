//! The start of the agent that `cargo hotreload run` preloads (`LD_PRELOAD`) into a
//! program that does not depend on the runtime: the `hotreload-agent` library, whose
//! constructor calls [`start_injected`] before the program's `main`.

use crate::{agent, Options};
use hotreload_protocol::{ENV_AGENT_LIBRARY, ENV_SESSION_DIR, ENV_SOCKET, ENV_TOOL_PID};
use std::ffi::OsString;
use std::path::PathBuf;

/// Takes the session's variables out of the environment and starts the agent, if this
/// process is the one the tool started.
///
/// Whatever happens, the environment the program sees afterwards has neither the
/// session's variables nor the agent in `LD_PRELOAD`: a child the program starts
/// (`Command::new(...)`, its own binary again) never loads the agent, and the program's
/// own `hotreload::init()`, if it has one, finds no session and stays idle — one agent.
///
/// # Safety
///
/// Call only from a library constructor (`.init_array`), while no other thread of the
/// process reads or writes the environment: it edits the environment (see
/// [`std::env::set_var`]).
pub unsafe fn start_injected() {
    let Some(library) = std::env::var_os(ENV_AGENT_LIBRARY) else { return };
    let tool = std::env::var(ENV_TOOL_PID).ok().and_then(|p| p.parse::<u32>().ok());
    let socket = std::env::var_os(ENV_SOCKET);
    let session_dir = std::env::var_os(ENV_SESSION_DIR).map(PathBuf::from);
    // SAFETY: the caller guarantees no other thread touches the environment.
    unsafe { clear_environment(&library) };
    // SAFETY: `getppid` has no preconditions.
    let parent = unsafe { libc::getppid() } as u32;
    if tool != Some(parent) {
        return;
    }
    if let Some(socket) = socket {
        agent::start_at(socket.as_ref(), session_dir, Options::new(), agent::Voice::Silent);
    }
}

/// Removes the session's variables and `library` from `LD_PRELOAD`.
///
/// # Safety
///
/// As [`start_injected`].
unsafe fn clear_environment(library: &OsString) {
    for name in [ENV_AGENT_LIBRARY, ENV_TOOL_PID, ENV_SOCKET, ENV_SESSION_DIR] {
        std::env::remove_var(name);
    }
    let Some(preload) = std::env::var_os("LD_PRELOAD") else { return };
    match without_library(&preload.to_string_lossy(), &library.to_string_lossy()) {
        Some(rest) => std::env::set_var("LD_PRELOAD", rest),
        None => std::env::remove_var("LD_PRELOAD"),
    }
}

/// `preload` (entries separated by spaces or colons, as `ld.so` reads them) without
/// `library`; `None` when nothing else is left.
fn without_library(preload: &str, library: &str) -> Option<String> {
    let rest: Vec<&str> = preload.split([':', ' ']).filter(|e| !e.is_empty() && *e != library).collect();
    (!rest.is_empty()).then(|| rest.join(":"))
}

#[cfg(test)]
mod tests {
    use super::without_library;

    #[test]
    fn only_the_agent_leaves_ld_preload() {
        assert_eq!(without_library("/a/libagent.so", "/a/libagent.so"), None);
        assert_eq!(without_library("/a/libagent.so:/b/x.so", "/a/libagent.so").as_deref(), Some("/b/x.so"));
        assert_eq!(
            without_library("/b/x.so /a/libagent.so /c/y.so", "/a/libagent.so").as_deref(),
            Some("/b/x.so:/c/y.so")
        );
        assert_eq!(without_library("/b/libagent.so", "/a/libagent.so").as_deref(), Some("/b/libagent.so"));
    }
}
