//! Binding a patch's objects to the running program: what they define and need, and
//! the linker script that sets each need to the program's address.

use super::demangle;
use super::image::{CodeImage, Function};
use super::program::ProgramImage;
use anyhow::{bail, Result};
use object::elf;
use object::read::elf::{FileHeader, Rela, SectionHeader, Sym};
use object::write::{Object, Relocation, Symbol, SymbolSection};
use object::{Endianness, RelocationFlags, SectionIndex};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

/// The end of every linker script: ends `.eh_frame` with the zero word the unwinder's
/// `__register_frame` looks for (a shared object gets one from crtend.o; this is no
/// shared object).
const EH_FRAME_END: &str = include_str!("../../templates/bind.ld");

/// Where a stub jumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stub {
    /// Through this GOT slot of the program's (a function it imports).
    Got(u64),
    /// To this address (a C function the executable never imported, as the process's
    /// dynamic linker found it), held in the stub itself.
    Address(u64),
}

/// What binding a patch's objects to the program takes, read from the objects.
#[derive(Default)]
pub(super) struct Plan {
    /// Names defined by the patch's objects (global or weak).
    defined: HashSet<String>,
    /// Functions among them: all kept in the image, since a changed function that only
    /// the program's code calls is referenced by nothing in the patch, yet its entry
    /// is redirected to it.
    functions: BTreeSet<String>,
    /// Names referenced but not defined, with whether the reference is weak.
    undefined: BTreeMap<String, bool>,
    /// Writable statics the patch defines: name → (size, initialiser holds pointers).
    statics: BTreeMap<String, (u64, bool)>,
    /// Thread-locals referenced or defined.
    pub(super) tls: BTreeSet<String>,
    /// `name = address` lines.
    bindings: BTreeMap<String, u64>,
    /// Functions outside the program's executable, reached through a stub.
    pub(super) stubs: BTreeMap<String, Stub>,
    /// Statics bound to the program's.
    pub(super) bound_statics: usize,
    /// Trampoline slots the program lacks.
    pub(super) own_slots: BTreeSet<String>,
    /// Statics the new code has its own copy of.
    pub(super) fresh: BTreeSet<String>,
    /// Functions bound to their running copy.
    pub(super) reused: usize,
}

/// The functions an object defines for other objects (global or weak).
pub(super) fn defined_functions(data: &[u8]) -> Result<HashSet<String>> {
    let header = elf::FileHeader64::<Endianness>::parse(data)?;
    let endian = header.endian()?;
    let sections = header.sections(endian, data)?;
    let symtab = sections.symbols(endian, data, elf::SHT_SYMTAB)?;
    let mut names = HashSet::new();
    for sym in symtab.iter() {
        let global = matches!(sym.st_bind(), elf::STB_GLOBAL | elf::STB_WEAK);
        if global && sym.st_type() == elf::STT_FUNC && sym.st_shndx(endian) != elf::SHN_UNDEF {
            names.insert(String::from_utf8_lossy(symtab.symbol_name(endian, sym)?).into_owned());
        }
    }
    Ok(names)
}

impl Plan {
    /// Notes what one object defines and needs.
    pub(super) fn survey(&mut self, data: &[u8]) -> Result<()> {
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
            if sym.st_type() == elf::STT_FUNC {
                self.functions.insert(name.clone());
            }
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

    /// What the objects need that nothing provides: not defined by them, not in the
    /// program (nor imported by it), not in an earlier patch, and not weak.
    pub(super) fn missing(&self, program: &ProgramImage, earlier: &Newest) -> HashSet<String> {
        let provided = |name: &String| {
            self.defined.contains(name)
                || self.tls.contains(name)
                || program.symbol(name).is_some()
                || earlier.copy(name).is_some()
                || program.import(name).is_some()
        };
        let needed = |name: &String| name != super::provide::TLS_GET_ADDR;
        let missing = self.undefined.iter().filter(|(name, weak)| !**weak && needed(name) && !provided(name));
        missing.map(|(n, _)| n.clone()).collect()
    }

    /// Decides every binding; `Err` names what the program lacks.
    pub(super) fn resolve(
        &mut self,
        program: &ProgramImage,
        earlier: &Newest,
        module_statics: &HashSet<String>,
        c_functions: &BTreeMap<String, u64>,
    ) -> Result<(), String> {
        for name in self.undefined.keys() {
            // `__tls_get_addr`: its calls are rewritten away (see `tls::rewrite_tls`).
            if self.defined.contains(name) || self.tls.contains(name) || name == super::provide::TLS_GET_ADDR {
                continue;
            }
            // A function only an earlier patch has: a generic instance that a rebuilt
            // dependency now exports (shared generics), which its dependents use.
            let in_earlier = || earlier.copy(name);
            match program.symbol(name) {
                Some(symbol) if !symbol.tls => {
                    self.bindings.insert(name.clone(), symbol.address);
                }
                Some(_) => {}
                None if in_earlier().is_some() => {
                    self.bindings.insert(name.clone(), in_earlier().expect("found"));
                }
                // Left undefined: the linker refuses it if live code names it (see
                // `provide::Providers::pull`).
                None => {
                    if let Some(got) = program.import(name) {
                        self.stubs.insert(name.clone(), Stub::Got(got));
                    } else if let Some(&address) = c_functions.get(name) {
                        self.stubs.insert(name.clone(), Stub::Address(address));
                    }
                }
            }
        }
        // A thread-local the program lacks is refused only if live code uses it (see
        // `tls::rewrite_tls`).
        for (name, (size, pointers)) in &self.statics {
            let path = demangle(name);
            let module_level = module_statics.contains(&path);
            let slot = name.contains(hotreload_protocol::image::SLOT_STATIC);
            match program.symbol(name) {
                Some(p) if p.writable && !p.ambiguous && p.size == *size && (slot || module_level || !pointers) => {
                    self.bindings.insert(name.clone(), p.address);
                    if !slot {
                        self.bound_statics += 1;
                    }
                }
                Some(p) if module_level && p.size != *size => {
                    return Err(format!("static `{path}` changed its type ({} → {size} bytes): restart needed", p.size))
                }
                Some(p) if module_level && (!p.writable || p.ambiguous) => {
                    return Err(format!("static `{path}` cannot be found unambiguously in the running program"))
                }
                _ if slot => {
                    self.own_slots.insert(path);
                }
                // A static an earlier patch added: the copy its code has used since.
                None if module_level || !pointers => match earlier.static_copy(name) {
                    Some(copy) if copy.size == *size => {
                        self.bindings.insert(name.clone(), copy.address);
                        self.bound_statics += 1;
                    }
                    _ => {
                        self.fresh.insert(path);
                    }
                },
                _ => {
                    self.fresh.insert(path);
                }
            }
        }
        Ok(())
    }

    /// Takes in what linking objects pulled from libraries takes: what they define and
    /// need, and their symbols bound to running copies (a binding the patch's own
    /// objects made stays).
    pub(super) fn take_pulled(&mut self, pulled: &super::provide::Pulled) {
        self.defined.extend(pulled.defined.iter().cloned());
        for name in &pulled.needs {
            self.undefined.entry(name.clone()).or_insert(false);
        }
        for (name, address) in &pulled.bindings {
            self.bindings.entry(name.clone()).or_insert(*address);
        }
    }

    /// Keeps as roots of the image only the functions of which a copy runs: the
    /// program's or an earlier patch's, by symbol, or — for a changed function — by
    /// path, a closure or generic instance another crate compiled (its hash is that
    /// crate's). A redirect switches the first kind; the second is what that crate's
    /// patch, rebuilt against this one, binds in place of its own copy, and what later
    /// patches redirect. The others — code the program's link dropped as unused, which
    /// the patch's `-C link-dead-code` compiled again — are linked only if live code
    /// calls them: as roots, their references would reach state the program never
    /// linked (an unchanged thread-local's accessor of another crate's hash).
    pub(super) fn root_running(&mut self, program: &ProgramImage, earlier: &Newest, unchanged: &HashSet<String>) {
        self.functions.retain(|name| {
            program.symbol(name).is_some_and(|s| !s.tls)
                || earlier.copy(name).is_some()
                || !unchanged.contains(name) && program.has_path(&super::demangle(name))
        });
    }

    /// Binds each function of `unchanged` that the objects define to its running copy
    /// — the newest earlier patch's, else the program's — instead of keeping the
    /// objects' copy: a linker script's assignment overrides an object's definition,
    /// and `--gc-sections` then drops the unused body. One with no single running copy
    /// is kept.
    pub(super) fn reuse(
        &mut self,
        program: &ProgramImage,
        earlier: &Newest,
        unchanged: &HashSet<String>,
    ) -> Result<(), String> {
        let names: Vec<String> = self.functions.iter().filter(|n| unchanged.contains(*n)).cloned().collect();
        for name in names {
            let running = earlier
                .copy(&name)
                .or_else(|| program.symbol(&name).filter(|s| !s.tls && !s.ambiguous).map(|s| s.address));
            if let Some(address) = running {
                self.functions.remove(&name);
                self.bindings.insert(name, address);
                self.reused += 1;
            }
        }
        Ok(())
    }

    /// The linker script: every binding, the GOT slots stubs jump through, and the
    /// end of `.eh_frame`.
    pub(super) fn script(&self) -> String {
        let mut script = String::new();
        for (name, address) in &self.bindings {
            let _ = writeln!(script, "\"{name}\" = {address:#x};");
        }
        for (i, (_, stub)) in self.stubs.iter().enumerate() {
            if let Stub::Got(got) = stub {
                let _ = writeln!(script, "\"__hotreload_got{i}\" = {got:#x};");
            }
        }
        for name in &self.functions {
            let _ = writeln!(script, "EXTERN(\"{name}\")");
        }
        script.push_str(&EH_FRAME_END.replace("{eh_end}", hotreload_protocol::image::EH_END_SECTION));
        script
    }
}

/// The newest copy of each function the earlier patches define, read once per link:
/// a patch holds only what changed, so this is small, while a search of every
/// generation for each of the crate's functions grew with the session.
pub(super) struct Newest {
    functions: HashMap<String, u64>,
    statics: HashMap<String, Function>,
}

impl Newest {
    /// From `earlier`, oldest first: a later patch's copy replaces an earlier one's; a
    /// name a patch defines at several addresses leaves the older copy in place.
    pub(super) fn of(earlier: &[Arc<CodeImage>]) -> Newest {
        let (mut functions, mut statics) = (HashMap::new(), HashMap::new());
        for image in earlier {
            for (name, f) in image.functions() {
                functions.insert(name.to_string(), f.address);
            }
            for (name, s) in image.statics() {
                statics.insert(name.to_string(), s);
            }
        }
        Newest { functions, statics }
    }

    /// The address of function `name` in the newest earlier patch that defines it.
    pub(super) fn copy(&self, name: &str) -> Option<u64> {
        self.functions.get(name).copied()
    }

    /// Static `name` as the newest earlier patch that has its own copy defines it (a
    /// static the program lacks: later patches bind to that copy, not defining theirs).
    pub(super) fn static_copy(&self, name: &str) -> Option<Function> {
        self.statics.get(name).copied()
    }
}

/// `jmp *GOT(%rip)` for each imported function, so `call _Unwind_Resume` lands in
/// the library the program loaded; for a C function the executable never imported,
/// `jmp *0(%rip)` followed by its address.
pub(super) fn stubs_object(stubs: &BTreeMap<String, Stub>) -> Result<Vec<u8>> {
    let mut obj = Object::new(object::BinaryFormat::Elf, object::Architecture::X86_64, Endianness::Little);
    let text = obj.add_section(Vec::new(), b".text.hotreload_stubs".to_vec(), object::SectionKind::Text);
    for (i, (name, stub)) in stubs.iter().enumerate() {
        if let Stub::Address(address) = stub {
            let mut bytes = vec![0xff, 0x25, 0, 0, 0, 0];
            bytes.extend(address.to_le_bytes());
            bytes.extend([0xcc, 0xcc]);
            let offset = obj.append_section_data(text, &bytes, 8);
            obj.add_symbol(Symbol {
                name: name.clone().into_bytes(),
                value: offset,
                size: 14,
                kind: object::SymbolKind::Text,
                scope: object::SymbolScope::Linkage,
                weak: false,
                section: SymbolSection::Section(text),
                flags: object::SymbolFlags::None,
            });
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_binds_and_ends_eh_frame_where_the_loader_looks() {
        let mut plan = Plan::default();
        plan.bindings.insert("_ZN5logic5COUNT17h0E".into(), 0x40_2000);
        plan.stubs.insert("_Unwind_Resume".into(), Stub::Got(0x40_1000));
        plan.stubs.insert("memcmp".into(), Stub::Address(0x7f00_0000_1000));
        let script = plan.script();
        assert!(script.starts_with("\"_ZN5logic5COUNT17h0E\" = 0x402000;\n\"__hotreload_got0\" = 0x401000;\n"));
        let end = format!(
            "SECTIONS {{ {} : {{ LONG(0) }} }} INSERT AFTER .eh_frame;",
            hotreload_protocol::image::EH_END_SECTION
        );
        assert!(script.trim_end().ends_with(&end), "{script}");
    }

    /// mini-redis's `Ping::apply` closure: the binary compiled its own copy (its hash),
    /// and the program's link dropped the library's. Changed, the library's patch must
    /// still hold its copy, which the binary's patch then binds to and a later patch of
    /// the library redirects; code no copy of which runs is left to the linker's gc.
    #[test]
    fn roots_are_the_functions_of_which_a_copy_runs_by_symbol_or_by_path() {
        let closure = |hash: &str| format!("_ZN5logic3run28_$u7b$$u7b$closure$u7d$$u7d$17h{hash}E");
        let used = "_ZN5logic4used17h2222222222222222E".to_string();
        let dead = "_ZN5logic4dead17h4444444444444444E".to_string();
        let in_binary = closure("1111111111111111");
        let program = ProgramImage::with_functions(&[(&in_binary, 0x1000), (&used, 0x2000)]);
        let own = closure("3333333333333333");
        let functions: BTreeSet<String> = [own.clone(), used.clone(), dead].into();
        let mut plan = Plan { functions: functions.clone(), ..Plan::default() };
        plan.root_running(&program, &Newest::of(&[]), &HashSet::new());
        assert_eq!(plan.functions, [own.clone(), used.clone()].into());
        // Unchanged, the library's copy stays out: its callers run the binary's.
        let mut plan = Plan { functions, ..Plan::default() };
        plan.root_running(&program, &Newest::of(&[]), &[own].into());
        assert_eq!(plan.functions, [used].into());
    }

    #[test]
    fn stubs_jump_through_the_got() {
        let mut stubs = BTreeMap::new();
        stubs.insert("_Unwind_Resume".to_string(), Stub::Got(0x40_1000));
        stubs.insert("memcmp".to_string(), Stub::Address(0x7f00_0000_1000));
        let bytes = stubs_object(&stubs).unwrap();
        // The C function's stub holds its address after `jmp *0(%rip)`.
        let address = 0x7f00_0000_1000u64.to_le_bytes();
        assert!(bytes.windows(14).any(|w| w[..6] == [0xff, 0x25, 0, 0, 0, 0] && w[6..] == address), "no direct stub");
        let header = elf::FileHeader64::<Endianness>::parse(&*bytes).unwrap();
        assert_eq!(header.e_type(Endianness::Little), elf::ET_REL);
    }
}
