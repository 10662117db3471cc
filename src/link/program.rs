//! The running program's executable, as a linked patch binds to it.
//!
//! A linked patch (see [`crate::link`]) is a relocatable build of one crate whose
//! every outside reference, and every mutable static it shares with the program, is
//! resolved to an address in the program. Those addresses come from here: the
//! executable's full symbol table (private statics and functions are local symbols,
//! absent from the dynamic table), the GOT slots of the functions it imports from
//! shared libraries, and its TLS segment. A position-independent executable (PIE)
//! lies in the process at its link-time addresses plus a *load bias* chosen at every
//! start; [`load_bias`] reads it from the process, and [`ProgramImage::loaded_at`]
//! adds it to every address. x86-64 ELF only.

use anyhow::{bail, Context, Result};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, Rela, SectionHeader, Sym};
use object::Endianness;
use std::collections::HashMap;
use std::path::Path;

/// A defined symbol of the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramSymbol {
    /// Its address; for a thread-local, its offset from the thread pointer.
    pub address: u64,
    /// Its size in bytes, as the symbol table says.
    pub size: u64,
    /// A thread-local (`address` is then thread-pointer relative).
    pub tls: bool,
    /// Lies in writable, non-TLS memory (`.data`, `.bss`): a mutable static.
    pub writable: bool,
    /// Several symbols of this name with different addresses (local symbols of several
    /// codegen units): fine for a function, ambiguous for a static.
    pub ambiguous: bool,
}

/// The program's executable, read once per program start.
#[derive(Debug, Default)]
pub struct ProgramImage {
    /// At link-time addresses.
    symbols: HashMap<String, ProgramSymbol>,
    /// GOT slots of imported functions (`_Unwind_Resume`, libc), by name, at link-time
    /// addresses: slots the dynamic linker fills at start-up.
    imports: HashMap<String, u64>,
    /// The lowest and one past the highest link-time address of its loaded segments.
    span: (u64, u64),
    /// Its entry point's link-time address (`e_entry`), by which [`load_bias`] finds
    /// where it was loaded.
    pub entry: u64,
    /// Position-independent (`ET_DYN`): loaded at a bias chosen at every start.
    pub pie: bool,
    /// What was added to every link-time address when it was loaded: zero for a
    /// position-dependent executable.
    bias: u64,
    /// The demangled paths (without the hash) of its functions, built when first asked.
    paths: std::sync::OnceLock<std::collections::HashSet<String>>,
}

impl ProgramImage {
    /// Reads the executable at `path`.
    pub fn read(path: &Path) -> Result<ProgramImage> {
        let data = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
        ProgramImage::parse(&data).with_context(|| format!("cannot link patches against {}", path.display()))
    }

    /// Reads an executable from its bytes; an error says why patches cannot be linked to it.
    pub fn parse(data: &[u8]) -> Result<ProgramImage> {
        let header = elf::FileHeader64::<Endianness>::parse(data)?;
        let endian = header.endian()?;
        if header.e_machine(endian) != elf::EM_X86_64 {
            bail!("not an x86-64 executable");
        }
        let pie = match header.e_type(endian) {
            elf::ET_EXEC => false,
            elf::ET_DYN => true,
            _ => bail!("not an executable"),
        };
        let (mut start, mut end) = (u64::MAX, 0);
        let mut tls = None;
        for ph in header.program_headers(endian, data)? {
            match ph.p_type(endian) {
                elf::PT_LOAD => {
                    start = start.min(ph.p_vaddr(endian));
                    end = end.max(ph.p_vaddr(endian) + ph.p_memsz(endian));
                }
                elf::PT_TLS => {
                    let block =
                        TlsBlock { vaddr: ph.p_vaddr(endian), memsz: ph.p_memsz(endian), align: ph.p_align(endian) };
                    tls = Some(block);
                }
                _ => {}
            }
        }
        let sections = header.sections(endian, data)?;
        let symbols = symbols(&sections, endian, data, tls)?;
        let imports = imports(&sections, endian, data)?;
        if start > end {
            bail!("the executable has no loadable segment");
        }
        let entry = header.e_entry(endian);
        Ok(ProgramImage { symbols, imports, span: (start, end), entry, pie, bias: 0, paths: Default::default() })
    }

    /// This image as loaded with `bias` added to its link-time addresses (see
    /// [`load_bias`]); a position-dependent executable is always loaded at zero.
    pub fn loaded_at(mut self, bias: u64) -> Result<ProgramImage> {
        if bias != 0 && !self.pie {
            bail!("a position-dependent executable was loaded {bias:#x} bytes away from its addresses");
        }
        self.bias = bias;
        Ok(self)
    }

    /// A defined symbol named `name`, at its address in the running process (a
    /// thread-local's offset is the same in every process).
    pub fn symbol(&self, name: &str) -> Option<ProgramSymbol> {
        let mut symbol = *self.symbols.get(name)?;
        if !symbol.tls {
            symbol.address = symbol.address.wrapping_add(self.bias);
        }
        Some(symbol)
    }

    /// An image holding only the functions `named` (symbol name, address), for tests.
    #[cfg(test)]
    pub(super) fn with_functions(named: &[(&str, u64)]) -> ProgramImage {
        let symbol = |address| ProgramSymbol { address, size: 1, tls: false, writable: false, ambiguous: false };
        let symbols = named.iter().map(|(name, address)| (name.to_string(), symbol(*address))).collect();
        ProgramImage { symbols, ..Default::default() }
    }

    /// Whether a function whose demangled path (without the hash) is `path` runs in the
    /// program: a closure or generic instance another crate compiled has the path of
    /// the item, and another symbol hash.
    pub fn has_path(&self, path: &str) -> bool {
        let paths = self.paths.get_or_init(|| {
            let functions = self.symbols.iter().filter(|(_, s)| !s.tls && !s.writable);
            functions.map(|(name, _)| super::demangle(name)).collect()
        });
        paths.contains(path)
    }

    /// The GOT slot, in the running process, through which the program calls the
    /// imported function `name`.
    pub fn import(&self, name: &str) -> Option<u64> {
        Some(self.imports.get(name)?.wrapping_add(self.bias))
    }

    /// Where the loaded program starts and ends, in the running process.
    pub fn range(&self) -> (u64, u64) {
        (self.span.0.wrapping_add(self.bias), self.span.1.wrapping_add(self.bias))
    }

    /// What was added to every link-time address (zero unless a PIE).
    pub fn bias(&self) -> u64 {
        self.bias
    }

    /// Where patches go in the running process: the first address to try, and one past
    /// the last one usable (see [`hotreload_protocol::image::out_of_range`]). Beside a
    /// position-dependent program, 1 GiB to 2 GiB; beside a PIE, 1 GiB above its start to
    /// 2 GiB above it, leaving its heap, which `brk` grows from just above it, room.
    pub fn window(&self) -> (u64, u64) {
        use hotreload_protocol::image::{ADDRESS_LIMIT, REACH};
        let (start, end) = self.range();
        match self.pie {
            false => (super::FIRST_BASE.max(end), ADDRESS_LIMIT),
            true => (start.saturating_add(super::FIRST_BASE).max(end), start.saturating_add(REACH)),
        }
    }
}

/// The load bias of process `pid`'s executable, whose entry point's link-time address
/// is `entry`: the kernel's `AT_ENTRY` for the process (`/proc/PID/auxv`, readable by
/// the same user) less `entry`; else, from `/proc/PID/maps`, where the mapping of
/// `executable` at file offset 0 starts, less `start` (the image's lowest link-time
/// address). Both are empty once the process has exited.
pub fn load_bias(pid: u32, image: &ProgramImage, executable: &Path) -> Result<u64> {
    let auxv = std::fs::read(format!("/proc/{pid}/auxv")).unwrap_or_default();
    let at_entry = auxv
        .chunks_exact(16)
        .map(|pair| {
            let word = |at: usize| u64::from_ne_bytes(pair[at..at + 8].try_into().expect("8 bytes"));
            (word(0), word(8))
        })
        .find(|(kind, _)| *kind == libc::AT_ENTRY)
        .map(|(_, value)| value);
    if let Some(at_entry) = at_entry {
        return Ok(at_entry.wrapping_sub(image.entry));
    }
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let path = executable.to_string_lossy();
    let mapped = maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (range, _, offset) = (fields.next()?, fields.next()?, fields.next()?);
        let file = fields.nth(2)?;
        (file == path && u64::from_str_radix(offset, 16).ok()? == 0)
            .then(|| u64::from_str_radix(range.split_once('-')?.0, 16).ok())
            .flatten()
    });
    match mapped {
        Some(start) => Ok(start.wrapping_sub(image.span.0 & !0xfff)),
        None => bail!(
            "cannot tell where process {pid} loaded {} ({} bytes of auxiliary vector, no mapping of it; has it \
             exited?)",
            executable.display(),
            auxv.len()
        ),
    }
}

type Sections<'data> = object::read::elf::SectionTable<'data, elf::FileHeader64<Endianness>>;

/// The executable's TLS segment.
#[derive(Clone, Copy)]
struct TlsBlock {
    vaddr: u64,
    memsz: u64,
    align: u64,
}

impl TlsBlock {
    /// The thread-pointer offset of the thread-local at `value`: x86-64 keeps the
    /// executable's TLS block just below the thread pointer.
    fn offset(&self, value: u64) -> u64 {
        let offset = value.checked_sub(self.vaddr).unwrap_or(value);
        offset.wrapping_sub(self.memsz.next_multiple_of(self.align.max(1)))
    }
}

/// Every defined function, object and thread-local of the full symbol table.
fn symbols(
    sections: &Sections<'_>,
    endian: Endianness,
    data: &[u8],
    tls: Option<TlsBlock>,
) -> Result<HashMap<String, ProgramSymbol>> {
    let symtab = sections.symbols(endian, data, elf::SHT_SYMTAB)?;
    if symtab.is_empty() {
        bail!("the program's symbol table was stripped");
    }
    let mut symbols: HashMap<String, ProgramSymbol> = HashMap::with_capacity(symtab.len());
    for sym in symtab.iter() {
        let kind = sym.st_type();
        if sym.st_shndx(endian) == elf::SHN_UNDEF || !matches!(kind, elf::STT_FUNC | elf::STT_OBJECT | elf::STT_TLS) {
            continue;
        }
        let Ok(name) = std::str::from_utf8(symtab.symbol_name(endian, sym)?) else { continue };
        let section = sections.section(object::SectionIndex(sym.st_shndx(endian).into())).ok();
        let flags = section.map_or(0, |s| s.sh_flags(endian));
        let is_tls = kind == elf::STT_TLS;
        let address = match (is_tls, tls) {
            (true, Some(block)) => block.offset(sym.st_value(endian)),
            (true, None) => bail!("thread-local `{name}` without a TLS segment"),
            (false, _) => sym.st_value(endian),
        };
        let new = ProgramSymbol {
            address,
            size: sym.st_size(endian),
            tls: is_tls,
            writable: !is_tls && flags & u64::from(elf::SHF_WRITE) != 0,
            ambiguous: false,
        };
        let global = sym.st_bind() != elf::STB_LOCAL;
        symbols
            .entry(name.to_string())
            .and_modify(|old| {
                if old.address != new.address && global {
                    // A global definition wins over local ones of the same name.
                    *old = new;
                } else if old.address != new.address {
                    old.ambiguous = true;
                }
            })
            .or_insert(new);
    }
    Ok(symbols)
}

/// The GOT slot of every function the executable imports, by bare name.
fn imports(sections: &Sections<'_>, endian: Endianness, data: &[u8]) -> Result<HashMap<String, u64>> {
    let mut imports = HashMap::new();
    let Some((index, dynsym_section)) = sections.iter().enumerate().find(|(_, s)| s.sh_type(endian) == elf::SHT_DYNSYM)
    else {
        return Ok(imports);
    };
    let dynsym =
        object::read::elf::SymbolTable::parse(endian, data, sections, object::SectionIndex(index), dynsym_section)?;
    for section in sections.iter().filter(|s| s.sh_type(endian) == elf::SHT_RELA) {
        if section.sh_link(endian) as usize != index {
            continue;
        }
        for rela in section.data_as_array::<elf::Rela64<Endianness>, _>(endian, data)? {
            if !matches!(rela.r_type(endian, false), elf::R_X86_64_GLOB_DAT | elf::R_X86_64_JUMP_SLOT) {
                continue;
            }
            let Ok(sym) = dynsym.symbol(object::SymbolIndex(rela.r_sym(endian, false) as usize)) else { continue };
            if sym.st_shndx(endian) != elf::SHN_UNDEF {
                continue;
            }
            if let Ok(name) = std::str::from_utf8(dynsym.symbol_name(endian, sym)?) {
                // Versioned names (`memcpy@GLIBC_2.14`) are stored bare.
                imports.insert(name.to_string(), rela.r_offset(endian));
            }
        }
    }
    Ok(imports)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function whose address the test takes in this process.
    #[inline(never)]
    fn marker() -> u32 {
        7
    }

    #[test]
    fn a_pie_s_symbols_are_found_where_they_run() {
        // The test binary itself is a PIE (cargo's default).
        let exe = std::env::current_exe().unwrap();
        let image = ProgramImage::read(&exe).unwrap();
        assert!(image.pie);
        let bias = load_bias(std::process::id(), &image, &exe).unwrap();
        // From the mappings, as when the auxiliary vector says nothing.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let line = maps.lines().find(|l| l.ends_with(&*exe.to_string_lossy())).expect("the test binary is mapped");
        let start = u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap();
        assert_eq!(start.wrapping_sub(image.span.0 & !0xfff), bias);
        assert_ne!(bias, 0, "the kernel loads a PIE away from zero");
        let image = image.loaded_at(bias).unwrap();
        let name = image
            .symbols
            .keys()
            .find(|n| crate::link::demangle(n).ends_with("program::tests::marker"))
            .expect("the marker's symbol")
            .clone();
        let at = marker as *const () as u64;
        assert_eq!(image.symbol(&name).unwrap().address, at);
        let (start, end) = image.range();
        assert!(start <= at && at < end);
        let (first, limit) = image.window();
        assert!(first >= end && limit == start + (1 << 31), "{first:#x} {limit:#x}");
        // Its GOT slots are where the process keeps them: the dynamic linker filled
        // each with its library's function.
        let (slot_name, slot) = image.imports.iter().next().map(|(n, s)| (n.clone(), *s)).expect("an import");
        assert_eq!(image.import(&slot_name), Some(slot + bias));
    }

    #[test]
    fn a_position_dependent_program_is_not_moved() {
        let image = ProgramImage { span: (0x40_0000, 0x50_0000), ..Default::default() };
        assert!(image.loaded_at(0x1000).is_err());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(ProgramImage::parse(b"not an elf file").is_err());
    }
}
