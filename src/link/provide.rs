//! Library functions the program's link left out, taken from the rlibs outside the
//! workspace: the toolchain's (std, core, alloc, …) and the program's other
//! dependencies.
//!
//! A plain build links only the code its program reaches (`--gc-sections`), so new
//! code may call a library function the running program does not contain. The rlib's
//! object holds it: the patch links that object too, the linker's garbage collection
//! keeps only what the new calls reach (its initialiser arrays left out), and every
//! global symbol of the object that a running copy has is bound to that copy by the
//! linker script — the program's
//! statics stay the only ones. The walk the linker's collection makes is made here
//! first, to refuse by name what would not be the program's: a thread-local, or
//! private state (a `static` of std's) that cannot be bound to the program's copy.
//! Private state the program has under the same Rust symbol name (a local symbol, as
//! `std::io::stdio::STDOUT` is) is bound to it: the object's references are pointed at
//! the program's copy ([`bind_local_state`]) and its own is left out.

use super::bind::Newest;
use super::demangle;
use super::program::ProgramImage;
use crate::build::rlib::{self, Member};
use object::elf;
use object::read::elf::{FileHeader, SectionHeader, Sym};
use object::{Endianness, SectionIndex, SymbolIndex};
use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The rlibs outside the workspace the program links, and which of their objects
/// defines each global symbol (their archive indexes), read on first need.
#[derive(Default)]
pub struct Providers {
    rlibs: Vec<PathBuf>,
    index: OnceCell<HashMap<String, (usize, u64)>>,
}

impl Providers {
    /// Functions are looked for in `rlibs`, in this order.
    pub fn new(rlibs: Vec<PathBuf>) -> Providers {
        Providers { rlibs, index: OnceCell::new() }
    }

    /// The toolchain's rlibs (`SYSROOT/lib/rustlib/HOST/lib/*.rlib`) of `rustc`.
    pub fn toolchain_rlibs(rustc: &str) -> Vec<PathBuf> {
        let output =
            std::process::Command::new(rustc).args(["--print", "sysroot"]).stdin(std::process::Stdio::null()).output();
        let Ok(output) = output else { return Vec::new() };
        let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
        let dir = sysroot.join("lib/rustlib").join(host).join("lib");
        let mut rlibs: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| is_rlib(p)).collect())
            .unwrap_or_default();
        rlibs.sort();
        rlibs
    }

    /// Which rlib and member defines each global symbol.
    fn index(&self) -> &HashMap<String, (usize, u64)> {
        self.index.get_or_init(|| {
            let mut index = HashMap::new();
            for (i, path) in self.rlibs.iter().enumerate() {
                for (name, offset) in archive_index(path).unwrap_or_default() {
                    index.entry(name).or_insert((i, offset));
                }
            }
            index
        })
    }

    /// The objects that define `missing` and what they reach, with what linking them
    /// takes. Each missing name is walked on its own: one that cannot come this way
    /// (found nowhere, or reaching state or a thread-local it cannot share) is declined
    /// with the reason and left undefined, since the patch's code that names it may be
    /// code nothing live reaches, which the linker drops; the linker's error for a live
    /// one is then told with that reason.
    pub(super) fn pull(
        &self,
        missing: &BTreeSet<String>,
        program: &ProgramImage,
        earlier: &Newest,
        c_functions: &BTreeMap<String, u64>,
    ) -> Pulled {
        let index = self.index();
        let (mut objects, mut by_key) = (Vec::new(), HashMap::new());
        let mut pulled = Pulled::default();
        let mut used = BTreeSet::new();
        let mut bound: BTreeMap<usize, BTreeMap<usize, u64>> = BTreeMap::new();
        for name in missing {
            // A C function the patch's own code calls (`memcmp`): in the process, not
            // in an rlib.
            if c_functions.contains_key(name) {
                pulled.needs.insert(name.clone());
                continue;
            }
            let mut walk = Walk {
                program,
                earlier,
                c_functions,
                c_wanted: &mut pulled.c_wanted,
                objects: &mut objects,
                by_key: &mut by_key,
                found: Found::default(),
            };
            match walk.from(name, &self.rlibs, index) {
                Ok(()) => {
                    let found = walk.found;
                    pulled.defined.extend(found.defined);
                    pulled.needs.extend(found.needs);
                    used.extend(found.objects);
                    for (object, sections) in found.state {
                        bound.entry(object).or_default().extend(sections);
                    }
                }
                Err(why) => {
                    pulled.declined.insert(name.clone(), why);
                }
            }
        }
        let objects: Vec<(Object, BTreeMap<usize, u64>)> = objects
            .into_iter()
            .enumerate()
            .filter(|(i, _)| used.contains(i))
            .map(|(i, o)| (o, bound.remove(&i).unwrap_or_default()))
            .collect();
        for (object, _) in &objects {
            for name in object.globals().unwrap_or_default() {
                if let Some(address) = running_copy(&name, program, earlier) {
                    pulled.bindings.insert(name, address);
                }
            }
        }
        pulled.objects = objects.into_iter().map(|(o, state)| PulledObject { member: o.member, state }).collect();
        pulled
    }
}

/// The function a position-independent library's thread-local accesses call, which
/// the rewrite to the program's thread-locals removes (see `tls::rewrite_tls`).
pub(super) const TLS_GET_ADDR: &str = "__tls_get_addr";

/// The archive index of the rlib at `path` (its first member, in the GNU format rustc
/// writes: a big-endian count, as many member offsets, then as many NUL-terminated
/// names), read alone: a dependency directory holds hundreds of rlibs, and a member is
/// read only when it is pulled. `None` for a file that has none.
fn archive_index(path: &Path) -> Option<Vec<(String, u64)>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut head = [0u8; 8 + 60];
    file.read_exact(&mut head).ok()?;
    let (magic, header) = head.split_at(8);
    let wide = match &header[..16] {
        b"/               " => false,
        b"/SYM64/         " => true,
        _ => return None,
    };
    if magic != b"!<arch>\n" {
        return None;
    }
    let size: usize = std::str::from_utf8(&header[48..58]).ok()?.trim().parse().ok()?;
    let mut table = vec![0u8; size];
    file.read_exact(&mut table).ok()?;
    let width = if wide { 8 } else { 4 };
    let word = |at: usize| -> Option<u64> {
        let bytes = table.get(at..at + width)?;
        Some(bytes.iter().fold(0u64, |n, b| n << 8 | u64::from(*b)))
    };
    let count = usize::try_from(word(0)?).ok()?;
    let names_at = width.checked_mul(count.checked_add(1)?)?;
    let names = table.get(names_at..)?.split(|b| *b == 0);
    let mut index = Vec::with_capacity(count.min(1 << 20));
    for (i, name) in names.take(count).enumerate() {
        index.push((String::from_utf8_lossy(name).into_owned(), word(width * (i + 1))?));
    }
    Some(index)
}

/// Marks the initialiser arrays of pulled object `data` `SHF_EXCLUDE`, which the
/// linker leaves out (it keeps them otherwise, unreached or not): they ran in the
/// program at start-up, for the program's copy of the state the patch binds to, and
/// nothing in a patch runs them again.
pub(super) fn exclude_initialisers(data: &mut [u8]) -> Result<(), String> {
    let (shoff, size, count) = {
        let (header, endian) = parse(data)?;
        (header.e_shoff(endian) as usize, header.e_shentsize(endian) as usize, header.e_shnum(endian) as usize)
    };
    for i in 0..count {
        let at = shoff + i * size;
        let Some(kind) = data.get(at + 4..at + 8) else {
            return Err("a section header lies outside the object".into());
        };
        let kind = u32::from_le_bytes(kind.try_into().expect("4 bytes"));
        if matches!(kind, elf::SHT_INIT_ARRAY | elf::SHT_FINI_ARRAY | elf::SHT_PREINIT_ARRAY) {
            exclude_section(data, at);
        }
    }
    Ok(())
}

/// Marks the section whose `Elf64_Shdr` starts at `header_at` (inside `data`)
/// `SHF_EXCLUDE`: the linker leaves it out.
fn exclude_section(data: &mut [u8], header_at: usize) {
    let flags = &mut data[header_at + 8..header_at + 16];
    let value = u64::from_le_bytes((&*flags).try_into().expect("8 bytes")) | u64::from(elf::SHF_EXCLUDE);
    flags.copy_from_slice(&value.to_le_bytes());
}

/// What linking pulled objects takes.
#[derive(Default)]
pub(super) struct Pulled {
    /// The objects, linked like the patch's own.
    pub(super) objects: Vec<PulledObject>,
    /// Names their linked part defines for the patch (functions the program lacks).
    pub(super) defined: BTreeSet<String>,
    /// Names their linked part needs from outside them: bound as the patch's needs are.
    pub(super) needs: BTreeSet<String>,
    /// Every global symbol of theirs that a running copy has, with its address: bound
    /// to it, so the linker uses that copy.
    pub(super) bindings: BTreeMap<String, u64>,
    /// Missing names not pulled, with why.
    pub(super) declined: BTreeMap<String, String>,
    /// C functions that code reached calls, which neither the executable imports nor
    /// the request's `c_functions` holds.
    pub(super) c_wanted: BTreeSet<String>,
}

/// One pulled object.
pub(super) struct PulledObject {
    pub(super) member: Member,
    /// Its sections of private state the program has, each with the address of the
    /// program's copy: to be bound to it ([`bind_local_state`]).
    pub(super) state: BTreeMap<usize, u64>,
}

/// What one missing name's walk found.
#[derive(Default)]
struct Found {
    defined: BTreeSet<String>,
    needs: BTreeSet<String>,
    /// Indexes of the objects it reached.
    objects: BTreeSet<usize>,
    /// By object, its sections of private state the program has, with the address of
    /// the program's copy: not walked, since the program's copy is what runs.
    state: BTreeMap<usize, BTreeMap<usize, u64>>,
}

/// The address of `name`'s running copy: the newest earlier patch's, else the program's.
fn running_copy(name: &str, program: &ProgramImage, earlier: &Newest) -> Option<u64> {
    earlier.copy(name).or_else(|| program.symbol(name).filter(|s| !s.tls).map(|s| s.address))
}

/// Why a C function `name` cannot be called: neither the executable nor, by the
/// program's agent, the process has it.
pub fn c_function_missing(name: &str) -> String {
    format!("new code calls `{name}`, a C function the running process does not have")
}

pub(super) fn not_linked(name: &str) -> String {
    if !is_rust_symbol(name) {
        // Looked for in the process before the link (`Request::c_functions`): said
        // only when it could not be.
        return format!("new code calls `{name}`, a C function the program never imported");
    }
    format!("the running program does not contain `{}` (new code calls what the program never linked)", demangle(name))
}

fn is_rlib(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "rlib")
}

/// The walk over sections the linker's garbage collection makes, from one missing
/// name; objects read are kept for the next walks.
struct Walk<'a> {
    program: &'a ProgramImage,
    earlier: &'a Newest,
    c_functions: &'a BTreeMap<String, u64>,
    c_wanted: &'a mut BTreeSet<String>,
    objects: &'a mut Vec<Object>,
    by_key: &'a mut HashMap<(usize, u64), usize>,
    found: Found,
}

impl Walk<'_> {
    /// Walks from the definition of `name`.
    fn from(&mut self, name: &str, rlibs: &[PathBuf], index: &HashMap<String, (usize, u64)>) -> Result<(), String> {
        let Some(&key) = index.get(name) else { return Err(self.unfound(name)) };
        let object = self.object(rlibs, key)?;
        let mut queue = vec![(object, self.objects[object].section_of(name)?)];
        self.found.defined.insert(name.to_string());
        let mut seen = BTreeSet::new();
        while let Some((object, section)) = queue.pop() {
            if seen.insert((object, section)) {
                self.found.objects.insert(object);
                self.visit(object, section, &mut queue, rlibs, index)?;
            }
        }
        Ok(())
    }

    /// Why `name`, found in no rlib, cannot be linked; a C function is also noted as
    /// wanted, to be looked for in the process.
    fn unfound(&mut self, name: &str) -> String {
        if !is_rust_symbol(name) {
            self.c_wanted.insert(name.to_string());
        }
        not_linked(name)
    }

    /// The object at `key` (rlib, member offset), read once.
    fn object(&mut self, rlibs: &[PathBuf], key: (usize, u64)) -> Result<usize, String> {
        if let Some(&i) = self.by_key.get(&key) {
            return Ok(i);
        }
        let member = rlib::member_at(&rlibs[key.0], key.1).map_err(|e| format!("{e:#}"))?;
        let object = Object::read(member)?;
        self.objects.push(object);
        self.by_key.insert(key, self.objects.len() - 1);
        Ok(self.objects.len() - 1)
    }

    /// Follows the relocations of `section` of object `at`.
    fn visit(
        &mut self,
        at: usize,
        section: usize,
        queue: &mut Vec<(usize, usize)>,
        rlibs: &[PathBuf],
        index: &HashMap<String, (usize, u64)>,
    ) -> Result<(), String> {
        if let State::Program(address) = self.objects[at].check_state(section, self.program)? {
            self.found.state.entry(at).or_default().insert(section, address);
            return Ok(());
        }
        for target in self.objects[at].targets(section)? {
            match target {
                Target::Section(s) => queue.push((at, s)),
                Target::Global(name, s) => {
                    if running_copy(&name, self.program, self.earlier).is_none() {
                        self.found.defined.insert(name);
                        queue.push((at, s));
                    }
                }
                // Its calls are rewritten away with their sequences.
                Target::Undefined(name, _) if name == TLS_GET_ADDR => {}
                Target::Undefined(name, weak) => {
                    let runs = running_copy(&name, self.program, self.earlier).is_some()
                        || self.program.import(&name).is_some()
                        || self.c_functions.contains_key(&name);
                    if runs {
                        self.found.needs.insert(name);
                    } else if let Some(&key) = index.get(&name) {
                        let object = self.object(rlibs, key)?;
                        let s = self.objects[object].section_of(&name)?;
                        self.found.defined.insert(name);
                        queue.push((object, s));
                    } else if !weak {
                        return Err(self.unfound(&name));
                    }
                }
                // Rewritten to the program's (see `tls::rewrite_tls`), if it has it.
                Target::ThreadLocal(name) if self.program.symbol(&name).is_some_and(|s| s.tls) => {}
                Target::ThreadLocal(name) => {
                    return Err(format!(
                        "new code calls library code the program never linked that uses thread-local `{}`, which the \
                         running program's threads have no storage for",
                        demangle(&name)
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Where one relocation leads.
enum Target {
    /// A section of the same object (a local symbol's, or the section itself).
    Section(usize),
    /// A global symbol the object defines, in that section.
    Global(String, usize),
    /// A symbol defined elsewhere; whether the reference is weak.
    Undefined(String, bool),
    /// A thread-local, however defined.
    ThreadLocal(String),
}

type Header = elf::FileHeader64<Endianness>;

/// One pulled object.
struct Object {
    member: Member,
    /// For each section with relocations, the index of its `SHT_RELA` section.
    relas: HashMap<usize, usize>,
}

impl Object {
    fn read(member: Member) -> Result<Object, String> {
        let mut relas = HashMap::new();
        {
            let data = member.bytes();
            let (header, endian) = parse(data)?;
            let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
            for (i, section) in sections.iter().enumerate() {
                if section.sh_type(endian) == elf::SHT_RELA {
                    relas.insert(section.sh_info(endian) as usize, i);
                }
            }
        }
        Ok(Object { member, relas })
    }

    /// The section global `name` is defined in.
    fn section_of(&self, name: &str) -> Result<usize, String> {
        let data = self.member.bytes();
        let (header, endian) = parse(data)?;
        let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
        let symtab = sections.symbols(endian, data, elf::SHT_SYMTAB).map_err(|e| e.to_string())?;
        for sym in symtab.iter() {
            let shndx = sym.st_shndx(endian);
            let defined = sym.st_bind() != elf::STB_LOCAL && shndx != elf::SHN_UNDEF && shndx < elf::SHN_LORESERVE;
            if defined && symtab.symbol_name(endian, sym).map_err(|e| e.to_string())? == name.as_bytes() {
                return Ok(shndx as usize);
            }
        }
        Err(format!("{} does not define `{}` as its index says", self.member.name, demangle(name)))
    }

    /// Every global symbol the object defines.
    fn globals(&self) -> Result<Vec<String>, String> {
        let data = self.member.bytes();
        let (header, endian) = parse(data)?;
        let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
        let symtab = sections.symbols(endian, data, elf::SHT_SYMTAB).map_err(|e| e.to_string())?;
        let mut names = Vec::new();
        for sym in symtab.iter() {
            let shndx = sym.st_shndx(endian);
            let defined = shndx != elf::SHN_UNDEF && shndx < elf::SHN_LORESERVE;
            if sym.st_bind() != elf::STB_LOCAL && defined && sym.st_type() != elf::STT_TLS {
                names.push(String::from_utf8_lossy(symtab.symbol_name(endian, sym).map_err(|e| e.to_string())?).into());
            }
        }
        Ok(names)
    }

    /// What `section` is: code or constants, or state. State the program also has
    /// (by symbol name) is the program's when it is one Rust static the program has
    /// once, of the same size (a Rust symbol name holds its crate's hash, so the same
    /// name is the same static); any other is refused: the linked copy would be state of
    /// its own, beside the program's.
    fn check_state(&self, section: usize, program: &ProgramImage) -> Result<State, String> {
        let data = self.member.bytes();
        let (header, endian) = parse(data)?;
        let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
        let header_of = sections.section(SectionIndex(section)).map_err(|e| e.to_string())?;
        let flags = header_of.sh_flags(endian);
        let name = sections.section_name(endian, header_of).unwrap_or_default();
        let writable = flags & u64::from(elf::SHF_WRITE) != 0 && !name.starts_with(b".data.rel.ro");
        if flags & u64::from(elf::SHF_TLS) != 0 {
            return Err("new code calls library code the program never linked that uses thread-locals".into());
        }
        if !writable {
            return Ok(State::Code);
        }
        let symtab = sections.symbols(endian, data, elf::SHT_SYMTAB).map_err(|e| e.to_string())?;
        let named: Vec<_> = symtab
            .iter()
            .filter(|s| s.st_shndx(endian) as usize == section && s.st_type() != elf::STT_SECTION)
            .map(|s| Ok((String::from_utf8_lossy(symtab.symbol_name(endian, s)?).into_owned(), s.st_size(endian))))
            .collect::<Result<_, object::Error>>()
            .map_err(|e| e.to_string())?;
        let shared = named.iter().find_map(|(n, size)| Some((n, size, program.symbol(n).filter(|_| !n.is_empty())?)));
        let Some((first, size, theirs)) = shared else { return Ok(State::Code) };
        // (A section index past `SHN_LORESERVE` is in an extended table, not bound.)
        let bindable = named.len() == 1
            && section < usize::from(elf::SHN_LORESERVE)
            && is_rust_symbol(first)
            && !theirs.tls
            && !theirs.ambiguous
            && theirs.writable
            && theirs.size == *size;
        if bindable {
            return Ok(State::Program(theirs.address));
        }
        Err(format!(
            "new code calls library code the program never linked, which would get its own copy of `{}`",
            demangle(first)
        ))
    }

    /// Where each relocation of `section` leads.
    fn targets(&self, section: usize) -> Result<Vec<Target>, String> {
        let Some(&rela_section) = self.relas.get(&section) else { return Ok(Vec::new()) };
        let data = self.member.bytes();
        let fail = |e: object::Error| e.to_string();
        let (header, endian) = parse(data)?;
        let sections = header.sections(endian, data).map_err(fail)?;
        let symtab = sections.symbols(endian, data, elf::SHT_SYMTAB).map_err(fail)?;
        let rela = sections.section(SectionIndex(rela_section)).map_err(fail)?;
        let mut targets = Vec::new();
        for r in rela.data_as_array::<elf::Rela64<Endianness>, _>(endian, data).map_err(fail)? {
            let index = r.r_sym(endian, false) as usize;
            if index == 0 {
                continue;
            }
            let sym = symtab.symbol(SymbolIndex(index)).map_err(fail)?;
            let name = || String::from_utf8_lossy(symtab.symbol_name(endian, sym).unwrap_or_default()).into_owned();
            let shndx = sym.st_shndx(endian);
            let target = if sym.st_type() == elf::STT_TLS || super::tls::is_tls(r.r_type(endian, false)) {
                Target::ThreadLocal(name())
            } else if shndx == elf::SHN_UNDEF {
                Target::Undefined(name(), sym.st_bind() == elf::STB_WEAK)
            } else if shndx >= elf::SHN_LORESERVE {
                continue;
            } else if sym.st_bind() == elf::STB_LOCAL {
                Target::Section(shndx as usize)
            } else {
                Target::Global(name(), shndx as usize)
            };
            targets.push(target);
        }
        Ok(targets)
    }
}

/// What a section reached by the walk is.
enum State {
    /// Code or constants: walked and linked.
    Code,
    /// A static the program has, at this address: bound to it, not linked.
    Program(u64),
}

/// A Rust symbol name (v0 `_R…`, or legacy `_ZN…17h<hash>E`): it names its crate's
/// hash, so a program's local symbol of that name is the same static. A C static's
/// name (`count`) may be another file's.
fn is_rust_symbol(name: &str) -> bool {
    name.starts_with("_R") || name.starts_with("_ZN") && name.ends_with('E') && name.contains("17h")
}

/// Binds the private statics `state` names (section → the program's copy's address)
/// in pulled object `data`, in place: the static's local symbol becomes absolute, at
/// the program's copy; relocations against its section's symbol are moved to it
/// (their addend less the static's offset); the section is marked `SHF_EXCLUDE`, so a
/// reference left to it fails the link rather than link a second copy.
pub(super) fn bind_local_state(data: &mut [u8], state: &BTreeMap<usize, u64>) -> Result<(), String> {
    if state.is_empty() {
        return Ok(());
    }
    let (symtab_at, entsize, count, relas, shoff, shentsize) = layout_for_binding(data)?;
    let sym_at = |i: usize| symtab_at + i * entsize;
    let read_u16 = |d: &[u8], at: usize| u16::from_le_bytes(d[at..at + 2].try_into().expect("2 bytes"));
    let read_u64 = |d: &[u8], at: usize| u64::from_le_bytes(d[at..at + 8].try_into().expect("8 bytes"));
    for (&section, &address) in state {
        // Elf64_Sym: st_name u32, st_info u8, st_other u8, st_shndx u16, st_value u64, st_size u64.
        let (mut named, mut section_symbol) = (None, None);
        for i in 1..count {
            let at = sym_at(i);
            if usize::from(read_u16(data, at + 6)) != section {
                continue;
            }
            match data[at + 4] & 0xf {
                elf::STT_SECTION => section_symbol = Some(i),
                _ => named = Some((i, read_u64(data, at + 8))),
            }
        }
        let (symbol, offset) = named.ok_or("a bound static lost its symbol")?;
        let at = sym_at(symbol);
        data[at + 6..at + 8].copy_from_slice(&elf::SHN_ABS.to_le_bytes());
        data[at + 8..at + 16].copy_from_slice(&address.to_le_bytes());
        if let Some(section_symbol) = section_symbol {
            for &(rela_at, rela_len) in &relas {
                // Elf64_Rela: r_offset u64, r_info u64 (symbol << 32 | type), r_addend i64.
                for entry in (rela_at..rela_at + rela_len).step_by(24) {
                    let info = read_u64(data, entry + 8);
                    if (info >> 32) as usize == section_symbol {
                        let info = (symbol as u64) << 32 | (info & 0xffff_ffff);
                        let addend = i64::from_le_bytes(data[entry + 16..entry + 24].try_into().expect("8 bytes"));
                        data[entry + 8..entry + 16].copy_from_slice(&info.to_le_bytes());
                        let addend = addend.wrapping_sub(offset as i64);
                        data[entry + 16..entry + 24].copy_from_slice(&addend.to_le_bytes());
                    }
                }
            }
        }
        exclude_section(data, shoff + section * shentsize);
    }
    Ok(())
}

/// Where [`bind_local_state`] writes: the symbol table (offset, entry size, count),
/// every `SHT_RELA` section's entries (offset, length), and the section headers
/// (offset, entry size), each checked to lie inside `data`.
#[allow(clippy::type_complexity)]
fn layout_for_binding(data: &[u8]) -> Result<(usize, usize, usize, Vec<(usize, usize)>, usize, usize), String> {
    let (header, endian) = parse(data)?;
    if endian != Endianness::Little {
        return Err("a big-endian object".into());
    }
    let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
    let inside = |at: u64, len: u64| at.checked_add(len).is_some_and(|end| end <= data.len() as u64);
    let (mut symtab, mut relas) = (None, Vec::new());
    for section in sections.iter() {
        let (at, len) = (section.sh_offset(endian), section.sh_size(endian));
        match section.sh_type(endian) {
            elf::SHT_SYMTAB if section.sh_entsize(endian) == 24 && inside(at, len) => {
                symtab = Some((at as usize, 24, (len / 24) as usize));
            }
            elf::SHT_RELA if section.sh_entsize(endian) == 24 && len % 24 == 0 && inside(at, len) => {
                relas.push((at as usize, len as usize));
            }
            elf::SHT_SYMTAB | elf::SHT_RELA => return Err("a symbol or relocation table of an unknown shape".into()),
            _ => {}
        }
    }
    let (symtab_at, entsize, count) = symtab.ok_or("an object without a symbol table")?;
    let (shoff, shentsize) = (header.e_shoff(endian) as usize, usize::from(header.e_shentsize(endian)));
    if shentsize != 64 || !inside(shoff as u64, (shentsize * sections.len()) as u64) {
        return Err("section headers of an unknown shape".into());
    }
    Ok((symtab_at, entsize, count, relas, shoff, shentsize))
}

fn parse(data: &[u8]) -> Result<(&Header, Endianness), String> {
    let header = Header::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    Ok((header, endian))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_c_function_is_named_as_one() {
        assert!(not_linked("memcmp").contains("`memcmp`, a C function the program never imported"));
        let rust = not_linked("_ZN5extra5forty17h0123456789abcdefE");
        assert!(rust.contains("does not contain `extra::forty`"), "{rust}");
    }

    #[test]
    fn only_rust_symbol_names_are_bound_by_name() {
        assert!(is_rust_symbol("_RNvNtNtCsjrHSEGnQ3l9_3std2io5stdio6STDOUT"));
        assert!(is_rust_symbol("_ZN3std2io5stdio6STDOUT17h0123456789abcdefE"));
        // A C static's name may be another file's static.
        assert!(!is_rust_symbol("count"));
        assert!(!is_rust_symbol("_ZN5state"));
    }

    #[test]
    fn an_rlibs_index_names_the_member_of_each_symbol() {
        let rlibs = Providers::toolchain_rlibs("rustc");
        let alloc = rlibs.iter().find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("liballoc-")));
        let std = alloc.expect("the toolchain's alloc");
        let index = archive_index(std).expect("an index");
        let (name, offset) = index.iter().find(|(n, _)| demangle(n).contains("to_uppercase")).expect("to_uppercase");
        let member = rlib::member_at(std, *offset).unwrap();
        assert!(member.name.ends_with(".o"), "{}", member.name);
        let object = Object::read(member).unwrap();
        assert!(object.section_of(name).is_ok());
        assert!(archive_index(Path::new("/dev/null")).is_none());
    }
}
