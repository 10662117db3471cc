//! The running program's executable, as a linked patch binds to it.
//!
//! A linked patch (see [`crate::link`]) is a relocatable build of one crate whose
//! every outside reference, and every mutable static it shares with the program, is
//! resolved to an address in the program. Those addresses come from here: the
//! executable's full symbol table (private statics and functions are local symbols,
//! absent from the dynamic table), the GOT slots of the functions it imports from
//! shared libraries, and its TLS segment. Only a position-dependent (non-PIE) x86-64
//! ELF executable has addresses that hold in the running process.

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

/// The program's executable, read once per session.
#[derive(Debug, Default)]
pub struct ProgramImage {
    symbols: HashMap<String, ProgramSymbol>,
    /// GOT slots of imported functions (`_Unwind_Resume`, libc), by name: fixed
    /// addresses in a non-PIE program that the dynamic linker fills at start-up.
    imports: HashMap<String, u64>,
    /// Where the image ends: patches go above it.
    pub end: u64,
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
        if header.e_type(endian) != elf::ET_EXEC {
            bail!("the program is position-independent (PIE), so its addresses change at every start");
        }
        let mut end = 0;
        let mut tls = None;
        for ph in header.program_headers(endian, data)? {
            match ph.p_type(endian) {
                elf::PT_LOAD => end = end.max(ph.p_vaddr(endian) + ph.p_memsz(endian)),
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
        Ok(ProgramImage { symbols, imports, end })
    }

    /// A defined symbol named `name`.
    pub fn symbol(&self, name: &str) -> Option<&ProgramSymbol> {
        self.symbols.get(name)
    }

    /// The GOT slot through which the program calls the imported function `name`.
    pub fn import(&self, name: &str) -> Option<u64> {
        self.imports.get(name).copied()
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

    #[test]
    fn position_independent_programs_are_refused() {
        // The test binary itself is a PIE (cargo's default).
        let exe = std::env::current_exe().unwrap();
        let err = ProgramImage::read(&exe).unwrap_err();
        assert!(format!("{err:#}").contains("position-independent"), "{err:#}");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(ProgramImage::parse(b"not an elf file").is_err());
    }
}
