//! Linked patches: one crate's new code, bound to the running program's state.
//!
//! A self-contained cdylib brings its own copy of every static, thread-local and
//! dependency (so a counter restarts at zero and `log` has no logger). A linked patch
//! holds only the crate's own code and resolves everything else to the program:
//!
//! 1. the crate is compiled as the program's build compiled it (same `-C metadata`,
//!    so the same symbol names), plus `-C relocation-model=static` (every address
//!    fits in 32 bits next to a non-PIE program) and `-C link-dead-code` (private
//!    statics keep global symbols, so the linker can rebind them);
//! 2. [`link`] reads its objects, and writes a linker script that sets every
//!    undefined symbol, and every mutable static the program also has, to the
//!    program's address (see [`crate::host`]); thread-local accesses are rewritten
//!    in the objects to the program's thread-pointer offsets; calls to shared
//!    libraries go through stubs that jump via the program's GOT;
//! 3. `rust-lld` links it as a static executable at a free address below 2 GiB,
//!    which the agent maps there itself (see `hotreload::loader`).
//!
//! Anything this cannot bind is a reason to fall back to the self-contained route.
//! Linux x86-64 only.

use crate::host::HostImage;
use anyhow::{bail, Context, Result};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, Rela, SectionHeader, Sym};
use object::write::{Object, Relocation, Symbol, SymbolSection};
use object::{Endianness, RelocationFlags, SectionIndex, SymbolIndex};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Linked patches need addresses that fit in a signed 32-bit displacement.
pub const ADDRESS_LIMIT: u64 = 0x8000_0000;

/// Where the first patch goes when the program leaves room: 1 GiB, far above the
/// program and below its heap's usual reach.
pub const FIRST_BASE: u64 = 0x4000_0000;

/// What to link.
pub struct Request<'a> {
    /// The crate's rlib, built as described in the module docs.
    pub rlib: &'a Path,
    /// The running program.
    pub host: &'a HostImage,
    /// The address to link at.
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
}

/// A linked patch.
#[derive(Debug)]
pub struct Linked {
    /// Its lowest address.
    pub start: u64,
    /// One past its highest address.
    pub end: u64,
    /// Statics bound to the program's.
    pub statics: usize,
    /// Thread-locals bound to the program's.
    pub thread_locals: usize,
    /// Statics the new code has its own copy of (new ones, or function-local ones
    /// describing code, such as `tracing` call sites), demangled.
    pub fresh: Vec<String>,
    /// Trampoline slots the program lacks, so the patch keeps its own: one per hot
    /// function the program's build did not have, and never a stub's.
    pub own_slots: Vec<String>,
}

/// Links a patch. `Ok(Err(why))` when this crate cannot be linked against the
/// program (a symbol it lacks, a thread-local access of an unknown form, ...).
pub fn link(request: &Request) -> Result<Result<Linked, String>> {
    let archive_data =
        std::fs::read(request.rlib).with_context(|| format!("failed to read {}", request.rlib.display()))?;
    let archive = object::read::archive::ArchiveFile::parse(&*archive_data)?;
    let mut objects = Vec::new();
    for member in archive.members() {
        let member = member?;
        let name = String::from_utf8_lossy(member.name()).into_owned();
        if name.ends_with(".o") {
            objects.push((name, member.data(&*archive_data)?.to_vec()));
        }
    }
    if objects.is_empty() {
        bail!("{} holds no object files", request.rlib.display());
    }
    let mut plan = Plan::default();
    for (_, data) in &objects {
        plan.survey(data)?;
    }
    if let Err(why) = plan.resolve(request.host, request.module_statics) {
        return Ok(Err(why));
    }
    std::fs::create_dir_all(request.work_dir)?;
    let mut inputs = Vec::new();
    for (name, data) in &mut objects {
        if let Err(why) = rewrite_tls(data, request.host) {
            return Ok(Err(why));
        }
        let path = request.work_dir.join(name.replace('/', "_"));
        std::fs::write(&path, &data)?;
        inputs.push(path);
    }
    if !plan.stubs.is_empty() {
        let path = request.work_dir.join("hotreload-stubs.o");
        std::fs::write(&path, stubs_object(&plan.stubs)?)?;
        inputs.push(path);
    }
    let script = request.work_dir.join("bind.ld");
    std::fs::write(&script, plan.script())?;
    let status = Command::new(request.linker)
        .args(["-flavor", "gnu", "-static", "--no-dynamic-linker", "-e", "0", "--gc-sections"])
        .args(["-z", "nostart-stop-gc", "-z", "noexecstack", "-z", "norelro", "--build-id=none", "--strip-debug"])
        .args(["-u", "__start_hotreload_fns", "-u", "__stop_hotreload_fns"])
        .arg(format!("--image-base={:#x}", request.base))
        .arg("-o")
        .arg(request.output)
        .arg(&script)
        .args(&inputs)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("failed to run {}", request.linker.display()))?;
    if !status.status.success() {
        let stderr = String::from_utf8_lossy(&status.stderr);
        let first = stderr.lines().next().unwrap_or("no output").trim().to_string();
        return Ok(Err(format!("the linker failed: {first}")));
    }
    let data = std::fs::read(request.output)?;
    let (start, end) = match check_output(&data) {
        Ok(range) => range,
        Err(why) => return Ok(Err(why)),
    };
    Ok(Ok(Linked {
        start,
        end,
        statics: plan.bound_statics,
        thread_locals: plan.tls.len(),
        fresh: plan.fresh.into_iter().collect(),
        own_slots: plan.own_slots.into_iter().collect(),
    }))
}

/// The end of every linker script: ends `.eh_frame` with the zero word the unwinder's
/// `__register_frame` looks for (a shared object gets one from crtend.o; this is no
/// shared object).
const EH_FRAME_END: &str = include_str!("../templates/bind.ld");

#[derive(Default)]
struct Plan {
    /// Names defined by the patch's objects (global or weak).
    defined: HashSet<String>,
    /// Names referenced but not defined, with whether the reference is weak.
    undefined: BTreeMap<String, bool>,
    /// Writable statics the patch defines: name → (size, initialiser holds pointers).
    statics: BTreeMap<String, (u64, bool)>,
    /// Thread-locals referenced or defined.
    tls: BTreeSet<String>,
    /// `name = address` lines.
    bindings: BTreeMap<String, u64>,
    /// Imported functions reached through a stub: name → GOT slot.
    stubs: BTreeMap<String, u64>,
    bound_statics: usize,
    own_slots: BTreeSet<String>,
    fresh: BTreeSet<String>,
}

impl Plan {
    /// Notes what one object defines and needs.
    fn survey(&mut self, data: &[u8]) -> Result<()> {
        let header = elf::FileHeader64::<Endianness>::parse(data)?;
        let endian = header.endian()?;
        if header.e_machine(endian) != elf::EM_X86_64 || header.e_type(endian) != elf::ET_REL {
            bail!("not an x86-64 relocatable object");
        }
        let sections = header.sections(endian, data)?;
        let symtab = sections.symbols(endian, data, elf::SHT_SYMTAB)?;
        // Which bytes of which sections relocations touch: a static whose initialiser
        // holds pointers describes code (a `tracing` call site) unless it is a
        // module-level static.
        let mut relocated: HashMap<usize, Vec<u64>> = HashMap::new();
        for section in sections.iter() {
            if section.sh_type(endian) == elf::SHT_RELA {
                let target = section.sh_info(endian) as usize;
                let offsets = relocated.entry(target).or_default();
                for rela in section.data_as_array::<elf::Rela64<Endianness>, _>(endian, data)? {
                    offsets.push(rela.r_offset(endian));
                }
            }
        }
        for sym in symtab.iter() {
            let bind = sym.st_bind();
            if bind != elf::STB_GLOBAL && bind != elf::STB_WEAK {
                continue;
            }
            let name = String::from_utf8_lossy(symtab.symbol_name(endian, sym)?).into_owned();
            let shndx = sym.st_shndx(endian);
            if sym.st_type() == elf::STT_TLS {
                self.tls.insert(name.clone());
            }
            if shndx == elf::SHN_UNDEF {
                let weak = bind == elf::STB_WEAK;
                self.undefined.entry(name).and_modify(|w| *w &= weak).or_insert(weak);
                continue;
            }
            self.defined.insert(name.clone());
            if sym.st_type() != elf::STT_OBJECT || shndx >= elf::SHN_LORESERVE {
                continue;
            }
            let section = sections.section(SectionIndex(shndx.into()))?;
            let section_name = sections.section_name(endian, section).unwrap_or_default();
            let flags = section.sh_flags(endian);
            let writable = flags & u64::from(elf::SHF_WRITE) != 0
                && flags & u64::from(elf::SHF_TLS) == 0
                && !section_name.starts_with(b".data.rel.ro");
            if writable {
                let (start, size) = (sym.st_value(endian), sym.st_size(endian));
                let pointers = relocated
                    .get(&(shndx as usize))
                    .is_some_and(|offsets| offsets.iter().any(|o| (start..start + size).contains(o)));
                self.statics.insert(name, (size, pointers));
            }
        }
        Ok(())
    }

    /// Decides every binding; `Err` names what the program lacks.
    fn resolve(&mut self, host: &HostImage, module_statics: &HashSet<String>) -> Result<(), String> {
        for (name, weak) in &self.undefined {
            if self.defined.contains(name) || self.tls.contains(name) {
                continue;
            }
            match host.symbol(name) {
                Some(symbol) if !symbol.tls => {
                    self.bindings.insert(name.clone(), symbol.address);
                }
                Some(_) => {}
                None => match host.import(name) {
                    Some(got) => {
                        self.stubs.insert(name.clone(), got);
                    }
                    None if *weak => {}
                    None => {
                        return Err(format!(
                            "the running program does not contain `{}` (new code calls what the program never linked)",
                            demangle(name)
                        ))
                    }
                },
            }
        }
        for name in &self.tls {
            if !host.symbol(name).is_some_and(|s| s.tls) {
                return Err(new_thread_local(&demangle(name)));
            }
        }
        for (name, (size, pointers)) in &self.statics {
            let path = demangle(name);
            let module_level = module_statics.contains(&path);
            let slot = name.contains("__HOTRELOAD_SLOT");
            match host.symbol(name) {
                Some(h) if h.writable && !h.ambiguous && h.size == *size && (slot || module_level || !pointers) => {
                    self.bindings.insert(name.clone(), h.address);
                    if !slot {
                        self.bound_statics += 1;
                    }
                }
                Some(h) if module_level && h.size != *size => {
                    return Err(format!("static `{path}` changed its type ({} → {size} bytes): restart needed", h.size))
                }
                Some(h) if module_level && (!h.writable || h.ambiguous) => {
                    return Err(format!("static `{path}` cannot be found unambiguously in the running program"))
                }
                _ if slot => {
                    self.own_slots.insert(path);
                }
                _ => {
                    self.fresh.insert(path);
                }
            }
        }
        Ok(())
    }

    fn script(&self) -> String {
        let mut script = String::new();
        for (name, address) in &self.bindings {
            let _ = writeln!(script, "\"{name}\" = {address:#x};");
        }
        for (i, (_, got)) in self.stubs.iter().enumerate() {
            let _ = writeln!(script, "\"__hotreload_got{i}\" = {got:#x};");
        }
        script.push_str(EH_FRAME_END);
        script
    }
}

/// `jmp *GOT(%rip)` for each imported function, so `call _Unwind_Resume` lands in
/// the library the program loaded.
fn stubs_object(stubs: &BTreeMap<String, u64>) -> Result<Vec<u8>> {
    let mut obj = Object::new(object::BinaryFormat::Elf, object::Architecture::X86_64, Endianness::Little);
    let text = obj.add_section(Vec::new(), b".text.hotreload_stubs".to_vec(), object::SectionKind::Text);
    for (i, name) in stubs.keys().enumerate() {
        let offset = obj.append_section_data(text, &[0xff, 0x25, 0, 0, 0, 0, 0xcc, 0xcc], 8);
        let got = obj.add_symbol(Symbol {
            name: format!("__hotreload_got{i}").into_bytes(),
            value: 0,
            size: 0,
            kind: object::SymbolKind::Data,
            scope: object::SymbolScope::Linkage,
            weak: false,
            section: SymbolSection::Undefined,
            flags: object::SymbolFlags::None,
        });
        obj.add_relocation(
            text,
            Relocation {
                offset: offset + 2,
                symbol: got,
                addend: -4,
                flags: RelocationFlags::Elf { r_type: elf::R_X86_64_PC32 },
            },
        )?;
        obj.add_symbol(Symbol {
            name: name.clone().into_bytes(),
            value: offset,
            size: 8,
            kind: object::SymbolKind::Text,
            scope: object::SymbolScope::Linkage,
            weak: false,
            section: SymbolSection::Section(text),
            flags: object::SymbolFlags::None,
        });
    }
    Ok(obj.write()?)
}

/// Rewrites, in place, every access to a thread-local so that it reaches the
/// program's: the local-exec offsets (`%fs:OFFSET`) are written in, and
/// initial-exec loads from the GOT become immediate moves (the linker's own IE→LE
/// relaxation, with the program's offsets).
fn rewrite_tls(data: &mut [u8], host: &HostImage) -> Result<(), String> {
    let fail = |e: object::Error| e.to_string();
    let header = elf::FileHeader64::<Endianness>::parse(&*data).map_err(fail)?;
    let endian = header.endian().map_err(fail)?;
    let sections = header.sections(endian, &*data).map_err(fail)?;
    let symtab = sections.symbols(endian, &*data, elf::SHT_SYMTAB).map_err(fail)?;
    // (rela entry offset, place offset, new place bytes start, bytes)
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    for section in sections.iter().filter(|s| s.sh_type(endian) == elf::SHT_RELA) {
        let target = sections.section(SectionIndex(section.sh_info(endian) as usize)).map_err(fail)?;
        if target.sh_flags(endian) & u64::from(elf::SHF_ALLOC) == 0 {
            continue; // debug info: dropped by --strip-debug
        }
        let relas = section.data_as_array::<elf::Rela64<Endianness>, _>(endian, &*data).map_err(fail)?;
        for (i, rela) in relas.iter().enumerate() {
            let r_type = rela.r_type(endian, false);
            let is_tls = matches!(
                r_type,
                elf::R_X86_64_TPOFF32
                    | elf::R_X86_64_GOTTPOFF
                    | elf::R_X86_64_TLSGD
                    | elf::R_X86_64_TLSLD
                    | elf::R_X86_64_DTPOFF32
                    | elf::R_X86_64_DTPOFF64
                    | elf::R_X86_64_TPOFF64
                    | elf::R_X86_64_DTPMOD64
                    | elf::R_X86_64_GOTPC32_TLSDESC
                    | elf::R_X86_64_TLSDESC_CALL
                    | elf::R_X86_64_TLSDESC
            );
            if !is_tls {
                continue;
            }
            let sym = symtab.symbol(SymbolIndex(rela.r_sym(endian, false) as usize)).map_err(fail)?;
            let name = String::from_utf8_lossy(symtab.symbol_name(endian, sym).map_err(fail)?).into_owned();
            let Some(host_tls) = host.symbol(&name).filter(|s| s.tls) else {
                return Err(new_thread_local(&demangle(&name)));
            };
            let rela_at = section.sh_offset(endian) as usize + i * std::mem::size_of::<elf::Rela64<Endianness>>();
            let place = target.sh_offset(endian) as usize + rela.r_offset(endian) as usize;
            let value = host_tls.address as i64 + rela.r_addend(endian);
            match r_type {
                elf::R_X86_64_TPOFF32 => {
                    let value = i32::try_from(value).map_err(|_| format!("thread-local `{name}` is out of range"))?;
                    edits.push((rela_at, place, value.to_le_bytes().to_vec()));
                }
                elf::R_X86_64_GOTTPOFF if place >= 3 => {
                    // mov/add foo@gottpoff(%rip), %reg  →  mov/add $offset, %reg
                    let (rex, opcode, modrm) = (data[place - 3], data[place - 2], data[place - 1]);
                    if modrm & 0xc7 != 0x05 || rex & 0xf8 != 0x48 {
                        return Err(format!("an access to thread-local `{}` has an unknown form", demangle(&name)));
                    }
                    let reg = (modrm >> 3) & 7;
                    let rex = 0x48 | ((rex >> 2) & 1);
                    let (opcode, modrm) = match opcode {
                        0x8b => (0xc7, 0xc0 | reg),
                        0x03 => (0x81, 0xc0 | reg),
                        _ => {
                            return Err(format!("an access to thread-local `{}` has an unknown form", demangle(&name)))
                        }
                    };
                    let offset = i32::try_from(host_tls.address as i64)
                        .map_err(|_| format!("thread-local `{name}` is out of range"))?;
                    let mut bytes = vec![rex, opcode, modrm];
                    bytes.extend_from_slice(&offset.to_le_bytes());
                    edits.push((rela_at, place - 3, bytes));
                }
                _ => {
                    return Err(format!(
                        "an access to thread-local `{}` of a kind linked patches do not handle (relocation {r_type})",
                        demangle(&name)
                    ))
                }
            }
        }
    }
    for (rela_at, place, bytes) in edits {
        data[place..place + bytes.len()].copy_from_slice(&bytes);
        // r_info = symbol << 32 | type: R_X86_64_NONE against no symbol, so the
        // patch's own copy of the thread-local is unreferenced and collected.
        let info_at = rela_at + 8;
        data[info_at..info_at + 8].copy_from_slice(&0u64.to_le_bytes());
    }
    Ok(())
}

/// Checks what the linker wrote: a static image below [`ADDRESS_LIMIT`] with nothing
/// the agent's loader does not do (no interpreter, dynamic section, TLS or
/// initialisers). Returns its address range.
fn check_output(data: &[u8]) -> Result<(u64, u64), String> {
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
            elf::PT_TLS => return Err("the new code defines thread-locals the program does not have".into()),
            elf::PT_INTERP | elf::PT_DYNAMIC => return Err("the linker produced a dynamic image".into()),
            _ => {}
        }
    }
    let sections = header.sections(endian, data).map_err(fail)?;
    for section in sections.iter() {
        let name = sections.section_name(endian, section).unwrap_or_default();
        if matches!(name, b".init_array" | b".fini_array" | b".preinit_array" | b".ctors" | b".dtors") {
            return Err("the new code has static initialisers (`.init_array`)".into());
        }
    }
    if start == u64::MAX || end > ADDRESS_LIMIT {
        return Err(format!("the image ({start:#x}..{end:#x}) does not fit below 2 GiB"));
    }
    Ok((start, end))
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
/// `pid`, below [`ADDRESS_LIMIT`], aligned to 2 MiB.
pub fn free_range(pid: u32, from: u64, size: u64) -> Result<u64> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).context("cannot read the program's memory map")?;
    let mut used: Vec<(u64, u64)> = maps
        .lines()
        .filter_map(|line| {
            let (range, _) = line.split_once(' ')?;
            let (a, b) = range.split_once('-')?;
            Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?))
        })
        .collect();
    used.sort();
    const ALIGN: u64 = 2 << 20;
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
    if candidate + size > ADDRESS_LIMIT {
        bail!("no free address range below 2 GiB in the program");
    }
    Ok(candidate)
}

/// Why a thread-local the program lacks cannot be linked: the program's threads have
/// no storage for it. Named as the user declared it (`logic::SEEN`), not as the
/// symbol std's `thread_local!` makes of it (`logic::SEEN::{{constant}}::…::VAL`).
fn new_thread_local(symbol: &str) -> String {
    let declared = symbol.split("::{{").next().unwrap_or(symbol);
    format!("it adds thread-local `{declared}`, which the running program's threads have no storage for")
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
        let base = free_range(pid, FIRST_BASE, 1 << 20).unwrap();
        assert!(base >= FIRST_BASE && base % (2 << 20) == 0 && base + (1 << 20) <= ADDRESS_LIMIT);
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
        assert_ne!(free_range(pid, base, 1 << 20).unwrap(), base);
        // SAFETY: unmapping what was mapped above.
        unsafe { libc::munmap(p, 4096) };
    }

    #[test]
    fn stubs_jump_through_the_got() {
        let mut stubs = BTreeMap::new();
        stubs.insert("_Unwind_Resume".to_string(), 0x40_1000);
        let bytes = stubs_object(&stubs).unwrap();
        let header = elf::FileHeader64::<Endianness>::parse(&*bytes).unwrap();
        assert_eq!(header.e_type(Endianness::Little), elf::ET_REL);
    }
}
