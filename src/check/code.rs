//! What changed in a crate's compiled code: each function of the new objects compared
//! with the one that runs now.
//!
//! A function's fingerprint is its bytes with every relocated field zeroed, plus its
//! relocations, each named by what it refers to: a symbol by name, anonymous data (a
//! string literal, a constant the compiler numbered per codegen unit) by its content.
//! So a helper whose change was inlined into a caller changes that caller too, and a
//! function moved to another codegen unit, or data renumbered, does not count as
//! changed. Read from an rlib's objects, whose relocations the linker has not applied.

use anyhow::{Context, Result};
use object::read::elf::{FileHeader, Rela, SectionHeader, Sym};
use object::{elf, Endianness, SectionIndex, SymbolIndex};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// A crate's functions by symbol name, with their fingerprints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Functions {
    fingerprints: BTreeMap<String, u64>,
}

/// How a crate's compiled functions differ from the ones that run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodeDiff {
    /// In both, with different code.
    pub changed: BTreeSet<String>,
    /// New.
    pub added: BTreeSet<String>,
    /// Gone.
    pub removed: BTreeSet<String>,
}

impl Functions {
    /// Reads the functions of every object in the rlib at `path`.
    pub fn read_rlib(path: &Path) -> Result<Functions> {
        let mut fingerprints = BTreeMap::new();
        for object in crate::build::rlib::objects(path)? {
            read_object(object.bytes(), &mut fingerprints)
                .with_context(|| format!("failed to read {}", object.name))?;
        }
        Ok(Functions { fingerprints })
    }

    /// How `new` differs from these, the functions that run.
    pub fn diff(&self, new: &Functions) -> CodeDiff {
        let mut diff = CodeDiff::default();
        for (name, fingerprint) in &new.fingerprints {
            match self.fingerprints.get(name) {
                Some(old) if old == fingerprint => {}
                Some(_) => {
                    diff.changed.insert(name.clone());
                }
                None => {
                    diff.added.insert(name.clone());
                }
            }
        }
        diff.removed = self.fingerprints.keys().filter(|n| !new.fingerprints.contains_key(*n)).cloned().collect();
        diff
    }

    /// The functions of `new` whose code is the same as these (the ones that run).
    pub fn unchanged_in(&self, new: &Functions) -> std::collections::HashSet<String> {
        new.fingerprints.iter().filter(|(n, f)| self.fingerprints.get(*n) == Some(f)).map(|(n, _)| n.clone()).collect()
    }

    /// These functions as a diff from code that is not known: every one changed.
    pub fn diff_from_unknown(&self) -> CodeDiff {
        CodeDiff { changed: self.fingerprints.keys().cloned().collect(), ..CodeDiff::default() }
    }

    /// The functions among these that `new` does not have, by symbol.
    pub fn missing_from<'a>(&'a self, new: &'a Functions) -> impl Iterator<Item = &'a String> + 'a {
        self.fingerprints.keys().filter(|n| !new.fingerprints.contains_key(*n))
    }

    /// Whether a function of this name is among them.
    pub fn contains(&self, name: &str) -> bool {
        self.fingerprints.contains_key(name)
    }
}

/// Which of `symbols` the objects at `path` (an rlib, or a directory of a binary's
/// objects) use without defining: the code there that calls them, or takes their address.
pub fn uses_of(path: &Path, symbols: &BTreeSet<String>) -> Result<BTreeSet<String>> {
    use object::{Object, ObjectSymbol};
    let mut used = BTreeSet::new();
    for member in crate::build::rlib::objects(path)? {
        let file = object::File::parse(member.bytes()).with_context(|| format!("failed to read {}", member.name))?;
        for symbol in file.symbols().filter(|s| s.is_undefined()) {
            if let Some(name) = symbol.name().ok().filter(|n| symbols.contains(*n)) {
                used.insert(name.to_string());
            }
        }
    }
    Ok(used)
}

/// Adds the fingerprint of every function one object defines. A name defined twice
/// (local symbols of two codegen units) gets a fingerprint of both.
fn read_object(data: &[u8], out: &mut BTreeMap<String, u64>) -> Result<()> {
    let header = elf::FileHeader64::<Endianness>::parse(data)?;
    let endian = header.endian()?;
    let sections = header.sections(endian, data)?;
    let symtab = sections.symbols(endian, data, elf::SHT_SYMTAB)?;
    // Relocations by the section they apply to.
    let mut relocations: Relocations = HashMap::new();
    for section in sections.iter().filter(|s| s.sh_type(endian) == elf::SHT_RELA) {
        let list = relocations.entry(section.sh_info(endian) as usize).or_default();
        for rela in section.data_as_array::<elf::Rela64<Endianness>, _>(endian, data)? {
            let (offset, kind) = (rela.r_offset(endian), rela.r_type(endian, false));
            list.push((offset, rela.r_sym(endian, false), kind, rela.r_addend(endian)));
        }
    }
    for sym in symtab.iter() {
        if sym.st_type() != elf::STT_FUNC || sym.st_shndx(endian) == elf::SHN_UNDEF {
            continue;
        }
        let name = String::from_utf8_lossy(symtab.symbol_name(endian, sym)?).into_owned();
        if is_generated(&name) {
            continue;
        }
        let index = sym.st_shndx(endian) as usize;
        let section = sections.section(SectionIndex(index))?;
        let bytes = section.data(endian, data).unwrap_or_default();
        let (start, size) = (sym.st_value(endian), sym.st_size(endian));
        let Some(original) = bytes.get(start as usize..(start + size) as usize) else { continue };
        let mut code = original.to_vec();
        let mut text = Vec::new();
        let relocs = relocations.get(&index).map(Vec::as_slice).unwrap_or_default();
        let relocs: Vec<_> = relocs.iter().filter(|r| r.0 >= start && r.0 < start + size).collect();
        if relocs.iter().any(|r| reaches_slot(&symtab, endian, r.1)) {
            // A `#[hot]` function's wrapper: it switches through its slot.
            continue;
        }
        // Decoded only for a RIP-relative read of a pooled constant: most functions have none.
        let ends = std::cell::OnceCell::new();
        for &&(offset, target, kind, addend) in &relocs {
            let at = (offset - start) as usize;
            let width = field_width(kind).min(code.len() - at);
            code[at..at + width].fill(0);
            text.extend_from_slice(&(offset - start).to_le_bytes());
            text.extend_from_slice(&kind.to_le_bytes());
            let reads = || reads_at(kind, addend, at, || ends.get_or_init(|| instruction_ends(original)));
            match referent(data, &sections, &symtab, endian, target, reads, &relocations)? {
                Referent::Exact(hash) => {
                    text.extend_from_slice(&addend.to_le_bytes());
                    text.extend_from_slice(&hash.to_le_bytes());
                }
                Referent::Content(hash) => text.extend_from_slice(&hash.to_le_bytes()),
            }
        }
        code.extend_from_slice(&text);
        let fingerprint = hotreload_protocol::record::fnv1a(&code);
        out.entry(name).and_modify(|f| *f = f.rotate_left(7) ^ fingerprint).or_insert(fingerprint);
    }
    Ok(())
}

/// What a relocation refers to, as a hash.
enum Referent {
    /// A symbol's name, or a section's whole content: with the addend, exact.
    Exact(u64),
    /// The one constant it reads in a section whose constants the assembler pools and
    /// orders as it likes (`.rodata.cst4`, `.rodata.str1.1`): by its bytes, since it
    /// moves when another constant of the pool changes.
    Content(u64),
}

/// Where each instruction of `code` ends, in order; empty if it does not decode.
/// Relocation fields are displacements and immediates, so the unrelocated bytes decode
/// to the same lengths as the linked ones.
fn instruction_ends(code: &[u8]) -> Vec<usize> {
    let decoder = iced_x86::Decoder::new(64, code, iced_x86::DecoderOptions::NONE);
    let mut ends = Vec::new();
    for instruction in decoder {
        if instruction.is_invalid() {
            return Vec::new();
        }
        ends.push(instruction.next_ip() as usize);
    }
    ends
}

/// The offset from its symbol that a relocation of `kind` with `addend`, whose field
/// starts at byte `at` of code whose instructions end at `ends()`, makes the code read:
/// the addend for an absolute field; for a RIP-relative one also the field's 4 bytes
/// and what follows the field in its instruction (an immediate), since the CPU adds
/// the address of the next instruction. `None` when not known.
fn reads_at<'a>(kind: u32, addend: i64, at: usize, ends: impl FnOnce() -> &'a [usize]) -> Option<i64> {
    match kind {
        elf::R_X86_64_32 | elf::R_X86_64_32S | elf::R_X86_64_64 => Some(addend),
        elf::R_X86_64_PC32 => {
            let end = ends().iter().find(|&&end| end > at)?;
            Some(addend + (end - at) as i64)
        }
        _ => None,
    }
}

/// An object's relocations by the index of the section they apply to, each as
/// (offset, symbol, type, addend).
type Relocations = HashMap<usize, Vec<(u64, u32, u32, i64)>>;

/// What relocation target `target` refers to: a named symbol by its name; a section,
/// or a compiler-numbered local (`.L…`, `anon.…`), by the bytes of its section — in a
/// pooled section, by the bytes of the constant at offset `reads()` (when known; asked
/// only then); any panic location alike (see [`is_location`]).
fn referent(
    data: &[u8],
    sections: &object::read::elf::SectionTable<'_, elf::FileHeader64<Endianness>>,
    symtab: &object::read::elf::SymbolTable<'_, elf::FileHeader64<Endianness>>,
    endian: Endianness,
    target: u32,
    reads: impl FnOnce() -> Option<i64>,
    relocations: &Relocations,
) -> Result<Referent> {
    let sym = symtab.symbol(SymbolIndex(target as usize))?;
    let name = symtab.symbol_name(endian, sym)?;
    let numbered = name.is_empty() || name.starts_with(b".L") || name.starts_with(b"anon.");
    if !numbered || sym.st_shndx(endian) == elf::SHN_UNDEF || sym.st_shndx(endian) >= elf::SHN_LORESERVE {
        return Ok(Referent::Exact(hotreload_protocol::record::fnv1a(name)));
    }
    let section = sections.section(SectionIndex(sym.st_shndx(endian) as usize))?;
    let flags = section.sh_flags(endian);
    if flags & u64::from(elf::SHF_EXECINSTR) != 0 {
        // Code of the same section (a jump table's target): the function's own bytes
        // already say it.
        return Ok(Referent::Exact(0));
    }
    let bytes = section.data(endian, data).unwrap_or_default();
    let (start, size) = (sym.st_value(endian) as usize, sym.st_size(endian) as usize);
    let pooled = (flags & u64::from(elf::SHF_MERGE) != 0 && size == 0)
        .then(|| constant(bytes, start as i64 + reads()?, flags, section.sh_entsize(endian)))
        .flatten();
    if let Some(content) = pooled {
        return Ok(Referent::Content(hotreload_protocol::record::fnv1a(&content)));
    }
    let content = match size {
        0 => bytes,
        _ => bytes.get(start..start + size).unwrap_or(bytes),
    };
    let own = relocations.get(&(sym.st_shndx(endian) as usize)).map(Vec::as_slice).unwrap_or_default();
    let within = |r: &&(u64, u32, u32, i64)| r.0 >= start as u64 && r.0 < (start + content.len()) as u64;
    let own: Vec<_> = own.iter().filter(within).map(|&(offset, t, k, a)| (offset - start as u64, t, k, a)).collect();
    let location = is_location(content, &own, |target, addend, len| {
        let sym = symtab.symbol(SymbolIndex(target as usize)).ok()?;
        let section = sections.section(SectionIndex(sym.st_shndx(endian) as usize)).ok()?;
        let from = usize::try_from(sym.st_value(endian) as i64 + addend).ok()?;
        section.data(endian, data).ok()?.get(from..from.checked_add(len)?).map(<[u8]>::to_vec)
    });
    if location {
        // Not by its file either: a patch's stubs are compiled from files of their own.
        return Ok(Referent::Exact(hotreload_protocol::record::fnv1a(b"panic location")));
    }
    Ok(Referent::Exact(hotreload_protocol::record::fnv1a(content)))
}

/// Whether data `content` is a `core::panic::Location` (`{ file: &str, line: u32, col:
/// u32 }`: a relocated pointer, a length, two `u32`s; rustc 1.95), given its
/// `relocations` (offsets from the content's start) and a reader of `len` bytes at a
/// relocation's target and addend; only a file whose name ends in `.rs` counts. Code
/// whose only change is the place its `unwrap()` or index would report (lines added
/// above it) is the same code: compared by its location's line, every function below
/// an edit counted as changed and was redirected (a running `main` was said to keep
/// its old code). Its panics name the old line until it changes for real.
fn is_location(
    content: &[u8],
    relocations: &[(u64, u32, u32, i64)],
    read: impl FnOnce(u32, i64, usize) -> Option<Vec<u8>>,
) -> bool {
    let [(0, target, elf::R_X86_64_64, addend)] = *relocations else { return false };
    let Some(len) = content.get(8..16).filter(|_| content.len() == 24) else { return false };
    let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    let Some(len) = usize::try_from(len).ok().filter(|len| (3..=4096).contains(len)) else { return false };
    read(target, addend, len).is_some_and(|file| std::str::from_utf8(&file).is_ok() && file.ends_with(b".rs"))
}

/// The constant of pooled section `bytes` at `offset`, with where in it `offset` is:
/// its `entsize` bytes, or in a string pool (`SHF_STRINGS`) the string up to its NUL.
fn constant(bytes: &[u8], offset: i64, flags: u64, entsize: u64) -> Option<Vec<u8>> {
    let offset = usize::try_from(offset).ok()?;
    let (from, to) = if flags & u64::from(elf::SHF_STRINGS) != 0 {
        (offset, offset + bytes.get(offset..)?.iter().position(|b| *b == 0)? + 1)
    } else {
        let entsize = usize::try_from(entsize).ok().filter(|e| *e > 0)?;
        let from = offset / entsize * entsize;
        (from, from + entsize)
    };
    let mut content = bytes.get(from..to)?.to_vec();
    content.extend_from_slice(&(offset - from).to_le_bytes());
    Some(content)
}

/// Whether relocation target `target` is a `#[hot]` function's slot.
fn reaches_slot(
    symtab: &object::read::elf::SymbolTable<'_, elf::FileHeader64<Endianness>>,
    endian: Endianness,
    target: u32,
) -> bool {
    let name = symtab.symbol(SymbolIndex(target as usize)).and_then(|s| symtab.symbol_name(endian, s));
    let slot = hotreload_protocol::image::SLOT_STATIC.as_bytes();
    name.is_ok_and(|n| n.windows(slot.len()).any(|w| w == slot))
}

/// Bytes a relocation of type `kind` writes.
fn field_width(kind: u32) -> usize {
    match kind {
        elf::R_X86_64_64 | elf::R_X86_64_DTPOFF64 | elf::R_X86_64_TPOFF64 | elf::R_X86_64_DTPMOD64 => 8,
        elf::R_X86_64_16 | elf::R_X86_64_PC16 => 2,
        elf::R_X86_64_8 | elf::R_X86_64_PC8 => 1,
        _ => 4,
    }
}

/// Functions `#[hot]` generates (forwarders, their nested bodies, stubs): they switch
/// through their slots, and stubs in a partial patch are not the crate's code.
fn is_generated(name: &str) -> bool {
    use hotreload_protocol::record::{FORWARDER_PREFIX, RECORD_PREFIX};
    // Forwarders, records, nested bodies (`__hotreload_body`), and impl blocks' body
    // traits (`__HotreloadBodies_…::__hot_body_…`).
    name.starts_with(FORWARDER_PREFIX)
        || name.starts_with(RECORD_PREFIX)
        || name.contains("__hotreload_")
        || name.contains("__HotreloadBodies")
        || name.contains("__hot_body_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn functions(list: &[(&str, u64)]) -> Functions {
        Functions { fingerprints: list.iter().map(|(n, f)| (n.to_string(), *f)).collect() }
    }

    #[test]
    fn uses_are_the_symbols_called_not_the_ones_defined() {
        use object::write::{Object, Relocation, Symbol, SymbolSection};
        use object::{Architecture, BinaryFormat, RelocationFlags, SectionKind, SymbolFlags, SymbolKind, SymbolScope};
        let mut obj = Object::new(BinaryFormat::Elf, Architecture::X86_64, object::Endianness::Little);
        let text = obj.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
        // `value`: call calls; ret.
        obj.append_section_data(text, &[0xe8, 0, 0, 0, 0, 0xc3], 16);
        let symbol = |name: &str, section, size| Symbol {
            name: name.as_bytes().to_vec(),
            value: 0,
            size,
            kind: SymbolKind::Text,
            scope: SymbolScope::Linkage,
            weak: false,
            section,
            flags: SymbolFlags::None,
        };
        obj.add_symbol(symbol("value", SymbolSection::Section(text), 6));
        let calls = obj.add_symbol(symbol("calls", SymbolSection::Undefined, 0));
        let flags = RelocationFlags::Elf { r_type: elf::R_X86_64_PLT32 };
        obj.add_relocation(text, Relocation { offset: 1, symbol: calls, addend: -4, flags }).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.rcgu.o"), obj.write().unwrap()).unwrap();
        let asked: BTreeSet<String> = ["calls", "value", "other"].map(String::from).into();
        assert_eq!(uses_of(dir.path(), &asked).unwrap(), ["calls".to_string()].into());
    }

    #[test]
    fn changed_added_and_removed_are_told_apart() {
        let old = functions(&[("a", 1), ("b", 2), ("c", 3)]);
        let new = functions(&[("a", 1), ("b", 5), ("d", 4)]);
        let diff = old.diff(&new);
        assert_eq!(diff.changed, ["b".to_string()].into());
        assert_eq!(diff.added, ["d".to_string()].into());
        assert_eq!(diff.removed, ["c".to_string()].into());
        assert_eq!(new.diff(&new), CodeDiff::default());
    }

    /// An object with functions `f` reading the 4-byte constant at offset 0 and `g`
    /// and `h` the one at 4 of a pooled `.rodata.cst4` holding `pool`, as LLVM emits
    /// string literals of 4 bytes: by the section's symbol and an addend; `h` through
    /// a RIP-relative field with an immediate after it.
    fn pooled_object(pool: &[u8; 8]) -> Functions {
        use object::write::{Object, Relocation, Symbol, SymbolSection};
        use object::{Architecture, BinaryFormat, RelocationFlags, SectionKind, SymbolFlags, SymbolKind, SymbolScope};
        let mut obj = Object::new(BinaryFormat::Elf, Architecture::X86_64, object::Endianness::Little);
        let text = obj.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
        // `f`, `g`: mov eax, [abs32]; ret. `h`: cmp dword [rip + disp32], imm32; ret.
        let code = [0x8b, 0x04, 0x25, 0, 0, 0, 0, 0xc3, 0x8b, 0x04, 0x25, 0, 0, 0, 0, 0xc3];
        obj.append_section_data(text, &code, 16);
        obj.append_section_data(text, &[0x81, 0x3d, 0, 0, 0, 0, 0x44, 0x33, 0x22, 0x11, 0xc3], 1);
        let cst = obj.add_section(Vec::new(), b".rodata.cst4".to_vec(), SectionKind::ReadOnlyData);
        obj.section_mut(cst).flags = object::SectionFlags::Elf { sh_flags: u64::from(elf::SHF_ALLOC | elf::SHF_MERGE) };
        obj.append_section_data(cst, pool, 1);
        let pool_symbol = obj.section_symbol(cst);
        for (i, name) in ["f", "g"].iter().enumerate() {
            let at = 8 * i as u64;
            obj.add_symbol(Symbol {
                name: name.as_bytes().to_vec(),
                value: at,
                size: 8,
                kind: SymbolKind::Text,
                scope: SymbolScope::Linkage,
                weak: false,
                section: SymbolSection::Section(text),
                flags: SymbolFlags::None,
            });
            let flags = RelocationFlags::Elf { r_type: elf::R_X86_64_32 };
            let relocation = Relocation { offset: at + 3, symbol: pool_symbol, addend: 4 * i as i64, flags };
            obj.add_relocation(text, relocation).unwrap();
        }
        obj.add_symbol(Symbol {
            name: b"h".to_vec(),
            value: 16,
            size: 11,
            kind: SymbolKind::Text,
            scope: SymbolScope::Linkage,
            weak: false,
            section: SymbolSection::Section(text),
            flags: SymbolFlags::None,
        });
        // Reads offset 4: the CPU adds the end of the instruction, 8 bytes past the field.
        let flags = RelocationFlags::Elf { r_type: elf::R_X86_64_PC32 };
        obj.add_relocation(text, Relocation { offset: 18, symbol: pool_symbol, addend: 4 - 8, flags }).unwrap();
        let mut data = obj.write().unwrap();
        // `object` writes no entry size but for strings: set the pool's to 4.
        let header = elf::FileHeader64::<Endianness>::parse(&*data).unwrap();
        let (shoff, e) = (header.e_shoff(Endianness::Little) as usize, Endianness::Little);
        let index = header.sections(e, &*data).unwrap().section_by_name(e, b".rodata.cst4").unwrap().0;
        let entsize = shoff + index.0 * 64 + 56;
        data[entsize..entsize + 8].copy_from_slice(&4u64.to_le_bytes());
        let mut out = BTreeMap::new();
        read_object(&data, &mut out).unwrap();
        Functions { fingerprints: out }
    }

    #[test]
    fn a_pooled_constant_counts_by_its_bytes_not_by_its_neighbours() {
        let before = pooled_object(b"zerov100");
        // `g`'s constant changed; `f`'s did not, though it shares the pool.
        let diff = before.diff(&pooled_object(b"zerov101"));
        assert_eq!(diff.changed, ["g".to_string(), "h".to_string()].into());
        // `f`'s constant changed.
        let diff = before.diff(&pooled_object(b"zer0v100"));
        assert_eq!(diff.changed, ["f".to_string()].into());
    }

    /// The functions rustc compiles from `source`, as an rlib of crate `loc`.
    fn compiled(source: &str) -> Functions {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("loc.rs"), source).unwrap();
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let status = std::process::Command::new(rustc)
            .args(["--edition", "2021", "--crate-type", "rlib", "-C", "debuginfo=0", "loc.rs"])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        Functions::read_rlib(&dir.path().join("libloc.rlib")).unwrap()
    }

    #[test]
    fn a_panic_location_that_only_moved_is_no_change() {
        let code = "pub fn f(x: Option<u32>) -> u32 {\n    x.unwrap() + 1\n}\n";
        let before = compiled(code);
        let moved = compiled(&format!("// Lines added above.\n\n{code}"));
        assert!(before.diff(&moved).changed.is_empty(), "{:?}", before.diff(&moved));
        let other = compiled(&code.replace("+ 1", "+ 2"));
        assert_eq!(before.diff(&other).changed.len(), 1);
        // The same shape of constant that is not a location: its numbers count.
        let data = "pub fn t() -> &'static (&'static str, u32, u32) { &(\"abc\", 1, 2) }\n";
        assert_eq!(compiled(data).diff(&compiled(&data.replace("1, 2", "1, 3"))).changed.len(), 1);
    }

    #[test]
    fn generated_functions_are_left_to_their_slots() {
        assert!(is_generated("_ZN5logic5score22__hotreload_forwarder17h0123456789abcdefE"));
        assert!(!is_generated("_ZN5logic5score17h0123456789abcdefE"));
    }
}
