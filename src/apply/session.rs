//! The session's private directory and control socket.
//!
//! Loading code into a process is as powerful as running code in it, so only this
//! user's own program may be the agent: the socket lives in a directory only the user
//! can enter, is itself owner-only, every peer's uid is checked with `SO_PEERCRED`,
//! and `run` accepts as agent only the process it started. Patch files are placed in
//! a private session directory, and the agent refuses any path outside it.

use crate::error::Error;
use crate::lockfile::process_exists;
use anyhow::{bail, Context, Result};
use hotreload_protocol::control::ControlRequest;
use hotreload_protocol::message::{self, AgentMessage, FunctionInfo};
use hotreload_protocol::peer::{self, PeerCredentials};
use hotreload_protocol::{ENV_SESSION_DIR, ENV_SOCKET, PROTOCOL_VERSION};
use std::collections::HashSet;
use std::io::BufReader;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What the socket delivers to the session.
#[derive(Debug)]
pub enum Incoming {
    /// A program connected and said hello.
    Hello {
        /// Connection number.
        conn: u64,
        /// Who connected, from the kernel.
        peer: PeerCredentials,
        /// Hash of the rustc that built it.
        toolchain: u64,
        /// Its hot functions.
        functions: Vec<FunctionInfo>,
        /// Where to send requests.
        writer: UnixStream,
    },
    /// A message after hello.
    Message {
        /// Connection number.
        conn: u64,
        /// The message.
        message: AgentMessage,
    },
    /// A connection closed.
    Closed {
        /// Connection number.
        conn: u64,
    },
    /// A control client's request; answer on `writer`.
    Control {
        /// What it asks.
        request: ControlRequest,
        /// Where to answer.
        writer: UnixStream,
    },
    /// A connection was refused: wrong user, malformed hello, wrong protocol.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// A running session: directory and socket. Both are removed on drop.
pub struct Session {
    dir: PathBuf,
    socket: PathBuf,
    loaded_inodes: HashSet<(u64, u64)>,
    record: PathBuf,
    /// The record's copy in the socket directory.
    listed: PathBuf,
    _lock: std::fs::File,
}

/// Where a workspace's running session can be found, for the control commands.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    /// The session's (the tool's) process id.
    pub pid: u32,
    /// Its control socket.
    pub socket: PathBuf,
    /// The workspace it runs.
    pub workspace: PathBuf,
}

/// `<target_dir>/sessions/<hash of the workspace root>`: one session per workspace,
/// even when workspaces share a target directory.
fn session_key(target_dir: &Path, workspace: &Path) -> PathBuf {
    let root = workspace.canonicalize().unwrap_or_else(|_| workspace.to_path_buf());
    let hash = hotreload_protocol::record::fnv1a(root.as_os_str().as_encoded_bytes());
    target_dir.join("sessions").join(format!("{hash:016x}"))
}

/// Whether a session holds `workspace`'s session lock (one runs, or is starting).
pub fn is_held(target_dir: &Path, workspace: &Path) -> bool {
    let lock = session_key(target_dir, workspace).with_extension("lock");
    // No lock file: no session ever ran here.
    lock.is_file() && matches!(crate::lockfile::lock(&lock, false), Ok(None))
}

/// The running session of `workspace`, if there is one.
pub fn find(target_dir: &Path, workspace: &Path) -> Option<SessionRecord> {
    let key = session_key(target_dir, workspace);
    read_record(&key.with_extension("json"))
}

/// Every session of this user that is running, from the records next to their
/// sockets (a record whose process is gone is left out).
pub fn running() -> Vec<SessionRecord> {
    let Ok(dir) = socket_dir() else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<SessionRecord> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| read_record(&p))
        .collect();
    found.sort_by(|a, b| a.workspace.cmp(&b.workspace));
    found
}

fn read_record(path: &Path) -> Option<SessionRecord> {
    let text = std::fs::read_to_string(path).ok()?;
    let record: SessionRecord = serde_json::from_str(&text).ok()?;
    (process_exists(record.pid) && record.socket.exists()).then_some(record)
}

impl Session {
    /// Creates the session directory under `target_dir` and the socket, and starts
    /// accepting connections; everything they deliver goes to `send`.
    pub fn open(
        target_dir: &Path,
        workspace: &Path,
        send: impl Fn(Incoming) + Send + Sync + Clone + 'static,
    ) -> Result<Session, Error> {
        let pid = std::process::id();
        let key = session_key(target_dir, workspace);
        fs_err::create_dir_all(key.parent().expect("has a parent"))?;
        let lock = lock_session(&key, workspace)?;
        let dir = target_dir.join(format!("session-{pid}"));
        std::fs::create_dir_all(target_dir).with_context(|| format!("failed to create {}", target_dir.display()))?;
        let _ = std::fs::remove_dir_all(&dir);
        private_dir(&dir)?;
        let socket_dir = socket_dir()?;
        remove_abandoned(target_dir, &socket_dir);
        let socket = socket_dir.join(format!("{pid}.sock"));
        // A file left by a session that died with this pid.
        let _ = std::fs::remove_file(&socket);
        let listener =
            UnixListener::bind(&socket).with_context(|| format!("failed to listen on {}", socket.display()))?;
        fs_err::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
        std::thread::Builder::new().name("hotreload-accept".into()).spawn(move || accept(listener, send))?;
        let record = key.with_extension("json");
        let root = workspace.canonicalize().unwrap_or_else(|_| workspace.to_path_buf());
        let entry = SessionRecord { pid, socket: socket.clone(), workspace: root };
        let entry = serde_json::to_vec(&entry).context("failed to write the session record")?;
        fs_err::write(&record, &entry)?;
        // The same, where `cargo hotreload status` from any directory finds it.
        let listed = socket.with_extension("json");
        fs_err::write(&listed, &entry)?;
        Ok(Session { dir, socket, loaded_inodes: HashSet::new(), record, listed, _lock: lock })
    }

    /// The variables that tell the program where its session is.
    pub fn env(&self) -> [(&'static str, &Path); 2] {
        [(ENV_SOCKET, &self.socket), (ENV_SESSION_DIR, &self.dir)]
    }

    /// The control socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The private directory patch libraries are loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Puts the built program into the session directory, so a later build of the same
    /// target cannot change the file it runs from.
    pub fn place_program(&self, built: &Path) -> Result<PathBuf> {
        let name = built.file_name().context("the program has no file name")?;
        let placed = self.dir.join(name);
        link_or_copy(built, &placed, true)?;
        Ok(placed)
    }

    /// Keeps the library a build of this session just wrote, as `lib<crate>-latest`:
    /// the file cargo wrote is shared by every workspace using the target directory
    /// (a cdylib's name carries no hash), so a later "fresh" build must not trust it.
    pub fn keep_latest(&mut self, built: &Path, crate_name: &str) -> Result<PathBuf> {
        Session::keep_latest_in(&self.dir, built, crate_name)
    }

    /// [`Session::keep_latest`] for a session directory `dir`, from another thread.
    pub fn keep_latest_in(dir: &Path, built: &Path, crate_name: &str) -> Result<PathBuf> {
        let kept = Session::latest_in(dir, crate_name);
        link_or_copy(built, &kept, true)?;
        Ok(kept)
    }

    /// Where [`Session::keep_latest`] keeps a crate's library.
    pub fn latest(&self, crate_name: &str) -> PathBuf {
        Session::latest_in(&self.dir, crate_name)
    }

    fn latest_in(dir: &Path, crate_name: &str) -> PathBuf {
        dir.join(format!("lib{crate_name}-latest.{}", std::env::consts::DLL_EXTENSION))
    }

    /// Puts a built library into the session directory under a name of its own, as a
    /// file no generation loaded before: the dynamic loader returns the old handle for
    /// a file it has mapped already. A hard link when the build wrote a new file,
    /// otherwise a copy.
    pub fn place(&mut self, built: &Path, crate_name: &str, generation: u64) -> Result<PathBuf> {
        let placed = self.dir.join(format!("lib{crate_name}-{generation}.{}", std::env::consts::DLL_EXTENSION));
        let meta = std::fs::metadata(built).with_context(|| format!("failed to read {}", built.display()))?;
        link_or_copy(built, &placed, !self.loaded_inodes.contains(&(meta.dev(), meta.ino())))?;
        let placed_meta = fs_err::metadata(&placed)?;
        fs_err::set_permissions(&placed, std::fs::Permissions::from_mode(placed_meta.mode() & 0o755))?;
        self.loaded_inodes.insert((placed_meta.dev(), placed_meta.ino()));
        Ok(placed)
    }
}

/// Replaces `to` with a hard link to `from` (cheap on the same filesystem, as the
/// session directory and the build directories are), or with a copy when linking is
/// not wanted or fails.
fn link_or_copy(from: &Path, to: &Path, link: bool) -> Result<()> {
    let _ = std::fs::remove_file(to);
    if !link || std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).with_context(|| format!("failed to copy {}", from.display()))?;
    }
    Ok(())
}

/// Removes what sessions that were killed (`SIGKILL`, a crash) left behind: their
/// session directories under `target_dir`, and their sockets and records in
/// `socket_dir`. Recognised by a process id that no longer runs; never trusted, never
/// reused.
fn remove_abandoned(target_dir: &Path, socket_dir: &Path) {
    let pid_of = |name: &str, prefix: &str, suffix: &str| -> Option<u32> {
        name.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok()
    };
    let entries = |dir: &Path| std::fs::read_dir(dir).into_iter().flatten().flatten();
    for entry in entries(target_dir) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if pid_of(&name, "session-", "").is_some_and(|pid| !process_exists(pid)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    for entry in entries(socket_dir) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = pid_of(&name, "", ".sock").or_else(|| pid_of(&name, "", ".json"));
        if pid.is_some_and(|pid| !process_exists(pid)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Holds the workspace's session lock for as long as the session runs: two sessions
/// must never patch one workspace's program.
fn lock_session(key: &Path, workspace: &Path) -> Result<std::fs::File, Error> {
    let lock = crate::lockfile::lock(&key.with_extension("lock"), false).context("failed to take the session lock")?;
    let Some(file) = lock else {
        let other = std::fs::read_to_string(key.with_extension("json"))
            .ok()
            .and_then(|t| serde_json::from_str::<SessionRecord>(&t).ok())
            .map(|r| r.pid);
        return Err(Error::Busy { pid: other, workspace: workspace.to_path_buf() });
    };
    Ok(file)
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.record);
        let _ = std::fs::remove_file(&self.listed);
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates `dir` owner-only, or checks that an existing one is.
pub fn private_dir(dir: &Path) -> Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("failed to create {}", dir.display())),
    }
    let meta = fs_err::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != peer::current_uid() || meta.mode() & 0o077 != 0 {
        bail!("{} must be a directory owned by you and closed to others (mode 700)", dir.display());
    }
    Ok(())
}

/// `$XDG_RUNTIME_DIR/cargo-hotreload`, or `<tmp>/cargo-hotreload-<uid>`: short enough
/// for a socket path, private to the user.
fn socket_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(runtime) if runtime.is_dir() => runtime.join("cargo-hotreload"),
        _ => std::env::temp_dir().join(format!("cargo-hotreload-{}", peer::current_uid())),
    };
    private_dir(&dir)?;
    Ok(dir)
}

fn accept(listener: UnixListener, send: impl Fn(Incoming) + Send + Sync + Clone + 'static) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let send = send.clone();
        let conn = NEXT.fetch_add(1, Ordering::Relaxed);
        let _ =
            std::thread::Builder::new().name(format!("hotreload-conn-{conn}")).spawn(move || serve(conn, stream, send));
    }
}

fn serve(conn: u64, stream: UnixStream, send: impl Fn(Incoming)) {
    let peer = match peer::check_same_user(&stream) {
        Ok(peer) => peer,
        Err(e) => return send(Incoming::Rejected { reason: e.to_string() }),
    };
    let reject = |reason: String| Incoming::Rejected { reason: format!("process {}: {reason}", peer.pid) };
    // A client that connects and says nothing must not hold a thread forever.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let first = match message::read_line(&mut reader) {
        Ok(Some(line)) => line,
        Ok(None) => return,
        Err(e) => return send(reject(e.to_string())),
    };
    if let Ok(request) = message::decode::<ControlRequest>(&first) {
        return send(Incoming::Control { request, writer });
    }
    match message::decode::<AgentMessage>(&first).map(Some) {
        Ok(Some(AgentMessage::Hello { protocol, pid, toolchain, functions })) => {
            if protocol != PROTOCOL_VERSION {
                return send(reject(format!("speaks protocol {protocol}, this tool speaks {PROTOCOL_VERSION}")));
            }
            if pid != peer.pid {
                return send(reject(format!("claims to be process {pid}")));
            }
            send(Incoming::Hello { conn, peer, toolchain, functions, writer });
        }
        Ok(Some(other)) => return send(reject(format!("sent {other:?} before hello"))),
        Ok(None) => return,
        Err(e) => return send(reject(e.to_string())),
    }
    let _ = reader.get_ref().set_read_timeout(None);
    loop {
        match message::read::<AgentMessage>(&mut reader) {
            Ok(Some(message)) => send(Incoming::Message { conn, message }),
            Ok(None) | Err(message::ReadError::Io(_)) => break,
            Err(e) => {
                send(reject(e.to_string()));
                break;
            }
        }
    }
    send(Incoming::Closed { conn });
}
