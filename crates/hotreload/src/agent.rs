//! The agent: a thread that talks to the `cargo hotreload run` session, loads patch
//! libraries and switches slots.

use crate::__rt::{Entry, HostApi, TOOLCHAIN};
use crate::events::{self, ReloadEvent};
use crate::{registry, Apply, Options};
use hotreload_protocol::message::{self, AgentMessage, LoadRequest, ReadError, Refusal, ToolMessage};
use hotreload_protocol::peer;
use hotreload_protocol::record::{INIT_SYMBOL, TABLE_SYMBOL};
use hotreload_protocol::{ENV_SESSION_DIR, ENV_SOCKET, PROTOCOL_VERSION};
use std::io::{BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

static STARTED: AtomicBool = AtomicBool::new(false);

pub(crate) fn start(options: Options) {
    let Some(socket) = std::env::var_os(ENV_SOCKET) else {
        return;
    };
    let session_dir = std::env::var_os(ENV_SESSION_DIR).map(PathBuf::from);
    start_at(Path::new(&socket), session_dir, options, Voice::Warn);
}

/// Whether the agent may write to the program's stderr when it cannot start.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Voice {
    /// One line (the program asked for the agent with `init()`).
    Warn,
    /// Nothing: a preloaded agent must not disturb the program; the session says it
    /// has not connected.
    Silent,
}

/// Starts the agent for the session listening on `socket` (once per process image of
/// the runtime: later calls do nothing).
pub(crate) fn start_at(socket: &Path, session_dir: Option<PathBuf>, options: Options, voice: Voice) {
    if STARTED.swap(true, Ordering::SeqCst) {
        return;
    }
    // Connect and say hello before returning, so the session knows this program's
    // functions before `main` goes on.
    let tool = crate::orphan::Tool::parent_listening_on(socket);
    let socket = socket.to_path_buf();
    match connect(&socket) {
        Ok(stream) => {
            let spawned = std::thread::Builder::new().name("hotreload-agent".into()).spawn(move || {
                serve(stream, session_dir.as_deref(), options);
                if let Some(tool) = tool {
                    crate::orphan::tidy_after(tool, &socket, session_dir.as_deref());
                }
            });
            if let (Err(e), Voice::Warn) = (spawned, voice) {
                eprintln!("hotreload: cannot start the agent thread ({e}); running without reloading");
            }
        }
        Err(e) if voice == Voice::Warn => {
            eprintln!("hotreload: cannot reach the cargo hotreload session ({e}); running without reloading")
        }
        Err(_) => {}
    }
}

fn connect(socket: &Path) -> std::io::Result<UnixStream> {
    let mut stream = UnixStream::connect(socket)?;
    peer::check_same_user(&stream)?;
    let functions = registry::with(|r| r.functions());
    let hello =
        AgentMessage::Hello { protocol: PROTOCOL_VERSION, pid: std::process::id(), toolchain: TOOLCHAIN, functions };
    stream.write_all(&message::encode(&hello))?;
    Ok(stream)
}

/// Answers the session's requests until the connection closes.
fn serve(stream: UnixStream, session_dir: Option<&Path>, options: Options) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let reply = match message::read::<ToolMessage>(&mut reader) {
            Ok(Some(ToolMessage::Load(request))) => {
                let id = request.request;
                match load(request, session_dir, options.apply) {
                    Ok(reply) => reply,
                    Err(refusal) => AgentMessage::refused(id, refusal),
                }
            }
            Ok(Some(ToolMessage::Resolve { request, names })) => resolve(request, &names),
            Ok(Some(_)) => AgentMessage::refused(0, Refusal::invalid("unknown request")),
            Err(ReadError::TooLong) => {
                // One answer for the whole line: the tool waits for one.
                if message::skip_rest_of_line(&mut reader).is_err() {
                    return;
                }
                AgentMessage::refused(0, Refusal::invalid(ReadError::TooLong.to_string()))
            }
            // The session ended: the program runs on with the code it has.
            Ok(None) | Err(ReadError::Io(_)) => return,
            Err(e) => AgentMessage::refused(0, Refusal::invalid(e.to_string())),
        };
        if writer.write_all(&message::encode(&reply)).is_err() {
            return;
        }
    }
}

/// The addresses of C functions `names` in this process, as its dynamic linker finds
/// them (0: not found, or a name that is not one).
fn resolve(request: u64, names: &[String]) -> AgentMessage {
    if names.len() > hotreload_protocol::message::MAX_RESOLVE {
        return AgentMessage::refused(request, Refusal::invalid("too many names to resolve"));
    }
    let addresses = names
        .iter()
        .map(|name| {
            let Ok(name) = std::ffi::CString::new(name.as_str()) else { return 0 };
            // SAFETY: `name` is a NUL-terminated string that outlives the call;
            // `dlsym` only reads it, and with `RTLD_DEFAULT` searches the objects the
            // process already loaded, in their load order, without loading any. The
            // result is an address, never dereferenced here.
            unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as u64 }
        })
        .collect();
    AgentMessage::Resolved { request, addresses }
}

/// A checked, mapped patch waiting to be switched in.
struct Prepared {
    crate_name: String,
    generation: u64,
    table: &'static [Entry],
    /// Function entries to redirect, checked.
    sites: Sites,
    /// The redirects they write, recorded once written.
    redirects: Vec<hotreload_protocol::message::Redirect>,
    request: u64,
    load_micros: u64,
    started: Instant,
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
type Sites = Vec<crate::redirect::Site>;
/// No redirects elsewhere: requests with any are refused.
#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
type Sites = Vec<()>;

fn load(request: LoadRequest, session_dir: Option<&Path>, apply: Apply) -> Result<AgentMessage, Refusal> {
    let started = Instant::now();
    let session_dir = session_dir.ok_or_else(|| Refusal::invalid("no session directory was given to this program"))?;
    let path = checked_path(&request.path, session_dir).map_err(Refusal::invalid)?;
    registry::with(|r| r.check_claims(&request))?;

    let loaded = Instant::now();
    let (table, sites) = if request.linked {
        map_linked(&path, &request)?
    } else if !request.redirects.is_empty() {
        return Err(Refusal::invalid("redirects are for linked patches only"));
    } else {
        let table = open_library(&path)?;
        registry::with(|r| r.check_table(&request, table))?;
        (table, Vec::new())
    };
    let load_micros = loaded.elapsed().as_micros() as u64;

    let prepared = Prepared {
        crate_name: request.crate_name,
        generation: request.generation,
        table,
        sites,
        redirects: request.redirects,
        request: request.request,
        load_micros,
        started,
    };
    match apply {
        Apply::Immediately => Ok(switch(prepared)),
        Apply::AtSafepoints => {
            let (tx, rx) = mpsc::channel();
            PENDING.lock().unwrap_or_else(|e| e.into_inner()).push((prepared, tx));
            WAITING.fetch_add(1, Ordering::Release);
            rx.recv().map_err(|_| Refusal::failed("the program stopped calling hotreload::safepoint()"))
        }
    }
}

/// Maps a linked patch and checks its table and redirects: kept if they pass,
/// unmapped (nothing in it having run) if not.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn map_linked(path: &Path, request: &LoadRequest) -> Result<(&'static [Entry], Sites), Refusal> {
    let mapped = crate::loader::map(path)?;
    let checked = registry::with(|r| r.check_table(request, mapped.table))
        .and_then(|()| crate::code::sites(&request.redirects, &mapped.code));
    match checked {
        Ok(sites) => Ok((mapped.commit(), sites)),
        Err(why) => {
            mapped.discard();
            Err(why)
        }
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn map_linked(_: &Path, _: &LoadRequest) -> Result<(&'static [Entry], Sites), Refusal> {
    Err(Refusal::invalid("linked patches are not supported on this platform"))
}

/// Opens a self-contained patch library and returns its table.
fn open_library(path: &Path) -> Result<&'static [Entry], Refusal> {
    // SAFETY: the file lies in the session's private directory, was written by the
    // tool from the crate's own build, and its records were checked above. It is never
    // unloaded (`into_raw`), so code and data it hands out stay valid.
    unsafe {
        let library = libloading::os::unix::Library::open(
            Some(path),
            libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
        )
        .map_err(|e| Refusal::failed(format!("cannot load {}: {e}", path.display())))?;
        let init = library
            .get::<unsafe extern "C" fn(*const HostApi) -> u64>(INIT_SYMBOL.as_bytes())
            .map_err(|_| Refusal::invalid("the library is not a hotreload patch (no initialiser)"))?;
        let table_fn = library
            .get::<unsafe extern "C" fn(*mut usize) -> *const Entry>(TABLE_SYMBOL.as_bytes())
            .map_err(|_| Refusal::invalid("the library is not a hotreload patch (no table)"))?;
        let (init, table_fn) = (*init, *table_fn);
        let _ = library.into_raw();
        if init(&HOST_API) != TOOLCHAIN {
            return Err(Refusal::incompatible("the patch was built by another rustc"));
        }
        let mut len = 0;
        let ptr = table_fn(&mut len);
        Ok(if len == 0 { &[][..] } else { std::slice::from_raw_parts(ptr, len) })
    }
}

/// Redirects the patch's function entries, then switches its slots: all of it, or
/// (when the program's threads cannot be stopped) none.
fn switch(p: Prepared) -> AgentMessage {
    // The old copies, where a thread may still be running: only compared with
    // instruction pointers and stack words, never read.
    let old: Vec<(u64, u64)> =
        p.redirects.iter().map(|r| (r.from, r.from.saturating_add(r.len.min(1 << 24)))).collect();
    let (held_micros, running) = match redirect(&p.sites, &old) {
        Ok(stats) => stats,
        Err(why) => return AgentMessage::refused(p.request, Refusal::failed(why)),
    };
    let running = p.redirects.iter().zip(running).filter(|(_, r)| *r).map(|(r, _)| r.name.clone()).collect();
    record_redirects(&p.redirects);
    let switched = registry::with(|r| r.apply(&p.crate_name, p.generation, p.table));
    let apply_micros = (p.started.elapsed().as_micros() as u64).saturating_sub(p.load_micros);
    let count = switched.len();
    events::fire(&ReloadEvent { crate_name: p.crate_name, generation: p.generation, functions: switched });
    let (request, load_micros, redirected) = (p.request, p.load_micros, p.sites.len());
    AgentMessage::Applied { request, switched: count, load_micros, apply_micros, redirected, held_micros, running }
}

/// Writes the redirects; returns how long the other threads were held, in
/// microseconds, and for each range of `old` whether a thread was running in it.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn redirect(sites: &Sites, old: &[(u64, u64)]) -> Result<(u64, Vec<bool>), String> {
    // SAFETY: each site was checked by `code::sites`: an entry in the program's or an
    // earlier patch's code, jumping to the new copy of the same function or to that
    // function's anchor, whose jump leads there (the tool pairs copies by symbol, and
    // checked that every copy it names has room for the jump and no branch into it), in
    // a patch whose unwind tables are registered. The anchor and the copy that was the
    // newest were each named by the tool, and checked, when first redirected or now;
    // loads are applied one at a time (this thread waits for each), so the record of
    // them that `code::sites` read is still the one `record_redirects` updates.
    let stats = unsafe { crate::redirect::write_sites(sites, old) }?;
    Ok((stats.held_micros, stats.running))
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn redirect(_: &Sites, old: &[(u64, u64)]) -> Result<(u64, Vec<bool>), String> {
    Ok((0, vec![false; old.len()]))
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn record_redirects(redirects: &[hotreload_protocol::message::Redirect]) {
    crate::code::redirected(redirects);
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn record_redirects(_: &[hotreload_protocol::message::Redirect]) {}

type Waiting = (Prepared, mpsc::Sender<AgentMessage>);

static PENDING: Mutex<Vec<Waiting>> = Mutex::new(Vec::new());
static WAITING: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn safepoint() -> usize {
    if WAITING.load(Ordering::Acquire) == 0 {
        return 0;
    }
    let batch: Vec<Waiting> = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|e| e.into_inner()));
    WAITING.fetch_sub(batch.len(), Ordering::AcqRel);
    let n = batch.len();
    for (prepared, reply) in batch {
        let _ = reply.send(switch(prepared));
    }
    n
}

/// The library must be a regular file of ours inside the session's private directory.
fn checked_path(path: &Path, session_dir: &Path) -> Result<PathBuf, String> {
    let refuse = |why: &str| Err(format!("refused to load {}: {why}", path.display()));
    if !path.is_absolute() {
        return refuse("not an absolute path");
    }
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return refuse("no such file");
    };
    if !meta.file_type().is_file() {
        return refuse("not a regular file");
    }
    if meta.uid() != peer::current_uid() || meta.permissions().mode() & 0o022 != 0 {
        return refuse("not owned by this user, or writable by others");
    }
    let (Ok(file), Ok(dir)) = (path.canonicalize(), session_dir.canonicalize()) else {
        return refuse("cannot resolve the path");
    };
    match std::fs::metadata(&dir) {
        Ok(m) if m.uid() == peer::current_uid() && m.permissions().mode() & 0o077 == 0 => {}
        _ => return refuse("the session directory is not private to this user"),
    }
    if !file.starts_with(&dir) {
        return refuse("outside the session directory");
    }
    Ok(file)
}

unsafe extern "C" fn host_alloc(size: usize, align: usize) -> *mut u8 {
    // SAFETY: the patch passes the layout of a valid allocation request.
    unsafe { std::alloc::alloc(std::alloc::Layout::from_size_align_unchecked(size, align)) }
}

unsafe extern "C" fn host_alloc_zeroed(size: usize, align: usize) -> *mut u8 {
    // SAFETY: as in `host_alloc`.
    unsafe { std::alloc::alloc_zeroed(std::alloc::Layout::from_size_align_unchecked(size, align)) }
}

unsafe extern "C" fn host_dealloc(ptr: *mut u8, size: usize, align: usize) {
    // SAFETY: `ptr` was allocated through this allocator with this layout.
    unsafe { std::alloc::dealloc(ptr, std::alloc::Layout::from_size_align_unchecked(size, align)) }
}

unsafe extern "C" fn host_realloc(ptr: *mut u8, size: usize, align: usize, new_size: usize) -> *mut u8 {
    // SAFETY: as in `host_dealloc`; `new_size` is valid for `align`.
    unsafe { std::alloc::realloc(ptr, std::alloc::Layout::from_size_align_unchecked(size, align), new_size) }
}

static HOST_API: HostApi = HostApi {
    version: 1,
    alloc: host_alloc,
    alloc_zeroed: host_alloc_zeroed,
    dealloc: host_dealloc,
    realloc: host_realloc,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_session_are_refused() {
        let dir = std::env::temp_dir().join(format!("hotreload-agent-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let inside = dir.join("p.so");
        std::fs::write(&inside, b"x").unwrap();
        std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(checked_path(&inside, &dir).is_ok());
        assert!(checked_path(&dir.join("../p.so"), &dir).is_err());
        assert!(checked_path(Path::new("/etc/hostname"), &dir).unwrap_err().contains("refused"));
        assert!(checked_path(Path::new("relative.so"), &dir).is_err());
        std::os::unix::fs::symlink(&inside, dir.join("link.so")).unwrap();
        assert!(checked_path(&dir.join("link.so"), &dir).unwrap_err().contains("regular file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
