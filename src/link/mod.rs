//! Linked patches: one crate's new code, bound to the running program's state.
//!
//! A self-contained cdylib brings its own copy of every static, thread-local and
//! dependency (so a counter restarts at zero and `log` has no logger). A linked patch
//! holds only the crate's own code and resolves everything else to the program:
//!
//! 1. the crate is compiled as the program's build compiled it (same `-C metadata`,
//!    so the same symbol names), plus `-C relocation-model=pie` (code for an
//!    executable: direct calls, thread-locals by initial- or local-exec, which
//!    the `tls` module can rewrite) and `-C link-dead-code` (private statics keep global
//!    symbols, so the linker can rebind them);
//! 2. [`link`] reads its objects, and writes a linker script that sets every
//!    undefined symbol, and every mutable static the program also has, to the
//!    program's address (see [`crate::link::program`]); thread-local accesses are rewritten
//!    in the objects to the program's thread-pointer offsets; calls to shared
//!    libraries go through stubs that jump via the program's GOT;
//! 3. `rust-lld` links it as a static executable at a free address within 2 GiB of
//!    the program's start (the program is a PIE, wherever the kernel loaded it:
//!    [`ProgramImage::window`]), which the agent maps there itself (see
//!    `hotreload::loader`).
//!
//! The program is the user's own build, whose link kept only the code it reaches:
//! a function the new code calls and the program lacks is pulled from the workspace
//! library that defines it, else from the libraries outside the workspace
//! (the `provide` module). Anything this cannot bind is a reason to fall back to the
//! self-contained route.
//! Linux x86-64 only.

mod bind;
pub mod image;
pub mod program;
mod provide;
mod tls;

pub use provide::Providers;

use anyhow::{Context, Result};
use bind::Plan;
use hotreload_protocol::image::{self as rules, TABLE_START, TABLE_STOP};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;
use program::ProgramImage;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use hotreload_protocol::image::ADDRESS_LIMIT;

/// How far up the first patch goes: to 1 GiB beside a program loaded low, to 1 GiB
/// above the start of a PIE; far above the program and below its heap's usual reach
/// (see [`ProgramImage::window`]).
pub const FIRST_BASE: u64 = 0x4000_0000;

/// How patches are aligned, and the least room looked for first: 64 KiB, so that the
/// 1 GiB between [`FIRST_BASE`] and [`ADDRESS_LIMIT`] holds thousands of them (at
/// 2 MiB apart, a session ran out of room after 512 reloads).
pub const PLACEMENT: u64 = 64 << 10;

/// Why a patch was not linked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// This crate's new code cannot be bound to the program (a symbol it lacks, a
    /// thread-local access of an unknown form, ...): the reason.
    #[error("{0}")]
    Unlinkable(String),
    /// The program has no free address range in its window for it (see
    /// [`ProgramImage::window`]).
    #[error("the program has no room for the patch within 2 GiB of its code")]
    NoRoom,
    /// New code calls C functions the program's executable never imported (`memcmp`):
    /// their addresses in the process are needed ([`Request::c_functions`]), then a link again.
    #[error("new code calls C functions the program never imported: {}", .0.join(", "))]
    NeedsC(Vec<String>),
    /// Reading, writing or running the linker failed.
    #[error(transparent)]
    Tool(#[from] anyhow::Error),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Tool(e.into())
    }
}

/// What to link.
pub struct Request<'a> {
    /// The crate's rlib, built as described in the module docs.
    pub rlib: &'a Path,
    /// The running program.
    pub program: &'a ProgramImage,
    /// The patches already loaded into it, oldest first: functions only they define
    /// are bound to their copies.
    pub earlier: &'a [std::sync::Arc<image::CodeImage>],
    /// Functions whose compiled code is the same as the code that runs: not kept in
    /// the image, but bound to their running copy (the newest patch's, else the
    /// program's), so a reload maps only what changed.
    pub unchanged: &'a HashSet<String>,
    /// The lowest address to link at.
    pub base: u64,
    /// The patch file to write.
    pub output: &'a Path,
    /// A directory for the linker's inputs.
    pub work_dir: &'a Path,
    /// Module-level statics of the crate (`my_crate::COUNTER`): shared with the
    /// program even when their initialiser holds pointers.
    pub module_statics: &'a HashSet<String>,
    /// The linker (`rust-lld`).
    pub linker: &'a Path,
    /// The workspace libraries the crate depends on, as the program runs them (their
    /// newest patch's rlib, else the program's): where a function the new code calls
    /// and the program never linked is found.
    pub libraries: &'a [PathBuf],
    /// The libraries outside the workspace, where such a function is looked for next.
    pub providers: &'a Providers,
    /// C functions the executable never imported, at their addresses in the process (as
    /// its dynamic linker found them): called through stubs. One the patch needs that is
    /// not here is [`Error::NeedsC`].
    pub c_functions: &'a std::collections::BTreeMap<String, u64>,
}

/// A linked patch.
#[derive(Debug, Default)]
pub struct Linked {
    /// Its lowest address.
    pub start: u64,
    /// One past its highest address.
    pub end: u64,
    /// Statics bound to the program's.
    pub statics: usize,
    /// Thread-locals bound to the program's, as declared (one `thread_local!` is one).
    pub thread_locals: usize,
    /// Statics the new code has its own copy of (new ones, or function-local ones
    /// describing code, such as `tracing` call sites), demangled.
    pub fresh: Vec<String>,
    /// Unchanged functions bound to their running copy instead of kept in the image.
    pub reused: usize,
    /// Trampoline slots the program lacks, so the patch keeps its own: one per hot
    /// function the program's build did not have, and never a stub's.
    pub own_slots: Vec<String>,
}

/// Links a patch where process `pid` has room for it, at or above `request.base`:
/// linked once at the first free address, and once more where the program has room
/// if the image turned out larger than that gap.
pub fn link_in_room(mut request: Request<'_>, pid: u32) -> Result<Linked, Error> {
    let limit = request.program.window().1;
    request.base = free_range(pid, request.base, PLACEMENT, limit)?.ok_or(Error::NoRoom)?;
    for _ in 0..2 {
        let linked = link(&request)?;
        let free = free_range(pid, linked.start, linked.end - linked.start, limit)?.ok_or(Error::NoRoom)?;
        if free == linked.start {
            return Ok(linked);
        }
        request.base = free;
    }
    Err(Error::NoRoom)
}

pub use provide::c_function_missing;

/// Links a patch at `request.base`.
pub fn link(request: &Request) -> Result<Linked, Error> {
    let mut objects = crate::build::rlib::objects(request.rlib)?;
    let mut plan = Plan::default();
    for object in &objects {
        plan.survey(object.bytes())?;
    }
    let earlier = bind::Newest::of(request.earlier);
    let running_elsewhere = pull_missing(&mut plan, &mut objects, request, &earlier)?;
    let missing: std::collections::BTreeSet<String> = plan.missing(request.program, &earlier).into_iter().collect();
    let mut pulled = match missing.is_empty() {
        true => provide::Pulled::default(),
        false => request.providers.pull(&missing, request.program, &earlier, request.c_functions),
    };
    let unknown: Vec<String> =
        pulled.c_wanted.iter().filter(|n| !request.c_functions.contains_key(*n)).cloned().collect();
    if !unknown.is_empty() {
        return Err(Error::NeedsC(unknown));
    }
    plan.take_pulled(&pulled);
    let declined = std::mem::take(&mut pulled.declined);
    plan.resolve(request.program, &earlier, request.module_statics, request.c_functions).map_err(Error::Unlinkable)?;
    let mut unchanged = request.unchanged.clone();
    unchanged.extend(running_elsewhere);
    plan.reuse(request.program, &earlier, &unchanged).map_err(Error::Unlinkable)?;
    plan.root_running(request.program, &earlier, &unchanged);
    empty_dir(request.work_dir)?;
    let mut inputs = Vec::new();
    for object in &mut objects {
        tls::rewrite_tls(object.bytes_mut(), request.program).map_err(Error::Unlinkable)?;
        let path = request.work_dir.join(object.name.replace('/', "_"));
        fs_err::write(&path, object.bytes())?;
        inputs.push(path);
    }
    for (i, pulled) in pulled.objects.into_iter().enumerate() {
        let mut object = pulled.member;
        provide::bind_local_state(object.bytes_mut(), &pulled.state).map_err(Error::Unlinkable)?;
        tls::rewrite_tls(object.bytes_mut(), request.program).map_err(Error::Unlinkable)?;
        provide::exclude_initialisers(object.bytes_mut()).map_err(Error::Unlinkable)?;
        let path = request.work_dir.join(format!("pulled-{i}-{}", object.name.replace('/', "_")));
        fs_err::write(&path, object.bytes())?;
        inputs.push(path);
    }
    if !plan.stubs.is_empty() {
        let path = request.work_dir.join("hotreload-stubs.o");
        fs_err::write(&path, bind::stubs_object(&plan.stubs)?)?;
        inputs.push(path);
    }
    let script = request.work_dir.join("bind.ld");
    fs_err::write(&script, plan.script())?;
    run_linker(request, &script, &inputs).map_err(|e| match e {
        // Live code names what nothing here defines.
        Error::Unlinkable(why) => match undefined_symbol(&why) {
            Some(name) if plan.tls.contains(name) => Error::Unlinkable(tls::new_thread_local(&demangle(name))),
            Some(name) => Error::Unlinkable(declined.get(name).cloned().unwrap_or_else(|| provide::not_linked(name))),
            None => Error::Unlinkable(why),
        },
        e => e,
    })?;
    let data = fs_err::read(request.output)?;
    let (start, end) = check_output(&data, request.program.range().0).map_err(Error::Unlinkable)?;
    Ok(Linked {
        start,
        end,
        statics: plan.bound_statics,
        thread_locals: tls::declarations(&plan.tls),
        fresh: plan.fresh.into_iter().collect(),
        reused: plan.reused,
        own_slots: plan.own_slots.into_iter().collect(),
    })
}

/// Adds to `objects` the objects of `request.libraries` that define functions the new
/// code calls and neither the program nor an earlier patch has: a library's function
/// that no code of the program called, whose object the program's link never pulled
/// from its rlib. Their other functions are returned, to be bound to their running
/// copies like unchanged ones; what they need is bound as the patch's own needs are.
fn pull_missing(
    plan: &mut Plan,
    objects: &mut Vec<crate::build::rlib::Member>,
    request: &Request,
    earlier: &bind::Newest,
) -> Result<HashSet<String>, Error> {
    let mut elsewhere = HashSet::new();
    // Each library object with the functions it defines, read once.
    let mut libraries: Option<Vec<(crate::build::rlib::Member, HashSet<String>)>> = None;
    let mut pulled = HashSet::new();
    // Each round may need what the last one pulled in; a chain longer than this is not
    // a function someone just started calling.
    for _ in 0..8 {
        let missing = plan.missing(request.program, earlier);
        if missing.is_empty() {
            break;
        }
        let members = match &mut libraries {
            Some(members) => members,
            None => {
                let mut all = Vec::new();
                for rlib in request.libraries.iter().filter(|r| r.is_file()) {
                    for member in crate::build::rlib::objects(rlib)? {
                        let defined = bind::defined_functions(member.bytes())?;
                        all.push((member, defined));
                    }
                }
                libraries.insert(all)
            }
        };
        let mut progress = false;
        for (member, defined) in members.iter() {
            if pulled.contains(&member.name) || !missing.iter().any(|name| defined.contains(name)) {
                continue;
            }
            pulled.insert(member.name.clone());
            plan.survey(member.bytes())?;
            elsewhere.extend(defined.iter().filter(|name| !missing.contains(*name)).cloned());
            objects.push(member.clone());
            progress = true;
        }
        if !progress {
            break;
        }
    }
    Ok(elsewhere)
}

/// The symbol a linker error says is undefined (`… undefined symbol: NAME`).
fn undefined_symbol(error: &str) -> Option<&str> {
    let name = error.split("undefined symbol: ").nth(1)?;
    Some(name.split_whitespace().next().unwrap_or(name))
}

/// Makes `dir` an empty directory. The linker's inputs are the rlib's members, whose
/// names rustc makes unique per invocation: kept, every reload would add its objects.
fn empty_dir(dir: &Path) -> std::io::Result<()> {
    match fs_err::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    fs_err::create_dir_all(dir)
}

/// Runs the linker on `inputs` with `script`: a static image at `request.base` with
/// the trampoline table kept.
fn run_linker(request: &Request, script: &Path, inputs: &[PathBuf]) -> Result<(), Error> {
    let status = Command::new(request.linker)
        // Sections nothing uses are dropped (the crate's own thread-local storage, whose
        // accesses now reach the program's); the script keeps the image's roots (see
        // `Plan::root_running`).
        .args(["-flavor", "gnu", "-static", "--no-dynamic-linker", "-e", "0", "--gc-sections", "--no-demangle"])
        .args(["-z", "nostart-stop-gc", "-z", "noexecstack", "-z", "norelro", "--build-id=none", "--strip-debug"])
        .args(["-u", TABLE_START, "-u", TABLE_STOP])
        .arg(format!("--image-base={:#x}", request.base))
        .arg("-o")
        .arg(request.output)
        .arg(script)
        .args(inputs)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("failed to run {}", request.linker.display()))?;
    if !status.status.success() {
        let stderr = String::from_utf8_lossy(&status.stderr);
        let first = stderr.lines().next().unwrap_or("no output").trim().to_string();
        return Err(Error::Unlinkable(format!("the linker failed: {first}")));
    }
    Ok(())
}

/// Checks what the linker wrote against the rules the agent's loader applies again
/// ([`hotreload_protocol::image`]): a static image in the address window with no
/// interpreter, dynamic section, TLS or initialisers, within reach of the program
/// starting at `program`. Returns its address range.
fn check_output(data: &[u8], program: u64) -> Result<(u64, u64), String> {
    let fail = |e: object::Error| e.to_string();
    let header = elf::FileHeader64::<Endianness>::parse(data).map_err(fail)?;
    let endian = header.endian().map_err(fail)?;
    let (mut start, mut end) = (u64::MAX, 0);
    for ph in header.program_headers(endian, data).map_err(fail)? {
        match ph.p_type(endian) {
            elf::PT_LOAD => {
                start = start.min(ph.p_vaddr(endian));
                end = end.max(ph.p_vaddr(endian) + ph.p_memsz(endian));
            }
            elf::PT_TLS => return Err(new_thread_locals(header, endian, data)),
            elf::PT_INTERP | elf::PT_DYNAMIC => return Err("the linker produced a dynamic image".into()),
            _ => {}
        }
    }
    let sections = header.sections(endian, data).map_err(fail)?;
    for section in sections.iter() {
        let name = sections.section_name(endian, section).unwrap_or_default();
        if let Some(why) = rules::forbidden_section(name) {
            return Err(format!("the new code cannot be loaded: {why}"));
        }
    }
    match rules::out_of_range(start, end, program) {
        Some(why) => Err(why),
        None => Ok((start, end)),
    }
}

/// Why an image with a TLS segment cannot be loaded, naming a thread-local in it: the
/// program's threads have no storage for one the program never had.
fn new_thread_locals(header: &elf::FileHeader64<Endianness>, endian: Endianness, data: &[u8]) -> String {
    let named = || -> Option<String> {
        let sections = header.sections(endian, data).ok()?;
        let symtab = sections.symbols(endian, data, elf::SHT_SYMTAB).ok()?;
        let tls = symtab.iter().find(|s| s.st_type() == elf::STT_TLS)?;
        Some(demangle(std::str::from_utf8(symtab.symbol_name(endian, tls).ok()?).ok()?))
    };
    match named() {
        Some(name) => tls::new_thread_local(&name),
        None => "the new code defines thread-locals the program does not have".into(),
    }
}

/// `my_crate::COUNTER` for `_ZN8my_crate7COUNTER17h0123456789abcdefE`.
pub fn demangle(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

/// The `rust-lld` of the toolchain `rustc` belongs to, or an `ld.lld` on `PATH`.
pub fn find_linker(rustc: &str) -> Option<PathBuf> {
    let output = Command::new(rustc).args(["--print", "sysroot"]).stdin(Stdio::null()).output().ok()?;
    let sysroot = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let bundled = sysroot.join("lib/rustlib").join(host).join("bin/rust-lld");
    if bundled.is_file() {
        return Some(bundled);
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("ld.lld")).find(|p| p.is_file()))
}

/// The lowest address at or above `from` where `size` bytes are free in process
/// `pid`, ending at or below `limit` (see [`ProgramImage::window`]), aligned to
/// [`PLACEMENT`]; `None` when there is none.
pub fn free_range(pid: u32, from: u64, size: u64, limit: u64) -> Result<Option<u64>> {
    let maps = fs_err::read_to_string(format!("/proc/{pid}/maps")).context("cannot read the program's memory map")?;
    let mut used: Vec<(u64, u64)> = maps
        .lines()
        .filter_map(|line| {
            let (range, _) = line.split_once(' ')?;
            let (a, b) = range.split_once('-')?;
            Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?))
        })
        .collect();
    used.sort();
    const ALIGN: u64 = PLACEMENT;
    let mut candidate = from.next_multiple_of(ALIGN);
    for (a, b) in used {
        if b <= candidate {
            continue;
        }
        if a >= candidate + size {
            break;
        }
        candidate = b.next_multiple_of(ALIGN);
    }
    if candidate.saturating_add(size) > limit {
        return Ok(None);
    }
    Ok(Some(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_demangled_without_hashes() {
        assert_eq!(demangle("_ZN6shared7COUNTER17h0f445ecc55ded808E"), "shared::COUNTER");
        assert_eq!(demangle("__rust_alloc"), "__rust_alloc");
    }

    #[test]
    fn free_ranges_skip_mappings() {
        let pid = std::process::id();
        let base = free_range(pid, FIRST_BASE, 1 << 20, ADDRESS_LIMIT).unwrap().unwrap();
        assert!(base >= FIRST_BASE && base % PLACEMENT == 0 && base + (1 << 20) <= ADDRESS_LIMIT);
        // Map something at that address; the next answer avoids it.
        // SAFETY: a fresh anonymous mapping at an address reported free.
        let p = unsafe {
            libc::mmap(
                base as *mut libc::c_void,
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        assert_eq!(p as u64, base);
        assert_ne!(free_range(pid, base, 1 << 20, ADDRESS_LIMIT).unwrap(), Some(base));
        assert_eq!(free_range(pid, ADDRESS_LIMIT - 4096, 1 << 20, ADDRESS_LIMIT).unwrap(), None);
        // SAFETY: unmapping what was mapped above.
        unsafe { libc::munmap(p, 4096) };
    }
}
