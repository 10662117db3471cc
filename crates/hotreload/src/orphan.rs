//! What the agent does when the session that started its program died without ending
//! (`cargo hotreload` killed with SIGKILL): the session cannot remove its files any
//! more, so the agent removes those its program no longer needs — the control socket,
//! the socket's listing, the patch files (mapped already, so the program keeps their
//! code) and the compiled crates the tool kept for later patches. The program's own executable stays while it runs (a program may start
//! itself again from it); the next session removes what is left.

use hotreload_protocol::APPLIED_DIR;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long to wait, after the connection closed, for the kernel to hand this process
/// to a new parent: the tool's files are closed before its children are reparented.
const REPARENT_WAIT: Duration = Duration::from_secs(2);

/// The session's tool, as this program saw it when the agent started.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tool {
    pid: u32,
}

impl Tool {
    /// The tool listening on `socket` (named `<pid>.sock` by the session), when it is
    /// this process's parent, as it is for a program `cargo hotreload run` started.
    pub(crate) fn parent_listening_on(socket: &Path) -> Option<Tool> {
        let pid: u32 = socket.file_name()?.to_str()?.strip_suffix(".sock")?.parse().ok()?;
        (parent() == pid).then_some(Tool { pid })
    }

    /// Whether the tool died: this process got another parent within [`REPARENT_WAIT`].
    fn died(self) -> bool {
        let started = Instant::now();
        while started.elapsed() < REPARENT_WAIT {
            if parent() != self.pid {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

fn parent() -> u32 {
    // SAFETY: `getppid` has no preconditions and cannot fail.
    unsafe { libc::getppid() as u32 }
}

/// Called once the connection to `tool` closed: when the tool died, removes the
/// session's files this program no longer needs. A tool that is alive removes them
/// itself. Errors are ignored: the program must not notice.
pub(crate) fn tidy_after(tool: Tool, socket: &Path, session_dir: Option<&Path>) {
    if !tool.died() {
        return;
    }
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(socket).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(socket);
        let _ = std::fs::remove_file(socket.with_extension("json"));
    }
    if let Some(dir) = session_dir {
        remove_patches(dir);
    }
}

/// Removes the patch libraries in `dir` (`lib<crate>-<generation or latest>.so`, as
/// the session names them) and the tool's [`APPLIED_DIR`], and `dir` too when nothing
/// else is left in it.
fn remove_patches(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir.join(APPLIED_DIR));
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_patch = name.to_str().is_some_and(|n| n.starts_with("lib") && n.ends_with(".so") && n.contains('-'));
        if is_patch && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    // Fails while the program's executable is in it.
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_parent_listening_counts_as_the_tool() {
        let parent = parent();
        assert!(Tool::parent_listening_on(Path::new(&format!("/tmp/x/{parent}.sock"))).is_some());
        assert!(Tool::parent_listening_on(Path::new(&format!("/tmp/x/{}.sock", parent + 1))).is_none());
        assert!(Tool::parent_listening_on(Path::new(&format!("/tmp/x/{parent}.json"))).is_none());
    }

    #[test]
    fn patches_go_and_other_files_stay() {
        let dir = tempfile_dir();
        for name in ["liblogic-1.so", "liblogic-latest.so", "app", "notes.txt"] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        std::fs::create_dir_all(dir.join(APPLIED_DIR).join("logic").join("1")).unwrap();
        remove_patches(&dir);
        let mut left: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["app", "notes.txt"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hotreload-orphan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
