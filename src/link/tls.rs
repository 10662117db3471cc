//! Thread-local accesses rewritten to reach the program's thread-locals.
//!
//! The program's threads have their thread-local blocks already; a patch gets none of
//! its own. Each access in the patch's objects is rewritten, before linking, to the
//! program's offset from the thread pointer: local-exec offsets (`%fs:OFFSET`) are
//! written in, initial-exec loads from the GOT become immediate moves, and the
//! general- and local-dynamic sequences of position-independent libraries (a call of
//! `__tls_get_addr`) become reads of the thread pointer: the linker's own relaxations
//! to local-exec (x86-64 psABI, "Thread-Local Storage"), with the program's offsets.

use super::demangle;
use super::program::ProgramImage;
use object::elf;
use object::read::elf::{FileHeader, Rela, SectionHeader};
use object::{Endianness, SectionIndex, SymbolIndex};

/// One rewrite: bytes at `place`, and the relocation at `rela_at` that no longer
/// applies, with the `__tls_get_addr` call's (`also`) of a dynamic sequence.
#[derive(Debug)]
struct Edit {
    rela_at: usize,
    place: usize,
    bytes: Vec<u8>,
    also: Option<usize>,
}

/// Rewrites, in place, every thread-local access of one relocatable object `data` so
/// that it reaches the program's thread-local. An access to one the program lacks is
/// left to the linker: in code nothing live reaches (the program's link dropped that
/// code and its thread-local; the patch compiles every function), it goes with that
/// code; from live code, the image gets a TLS segment of its own or the linker finds
/// the thread-local undefined, both of which [`super::link`] refuses by name. `Err`
/// names an access of an instruction form this does not know.
pub(super) fn rewrite_tls(data: &mut [u8], program: &ProgramImage) -> Result<(), String> {
    let edits = tls_edits(data, program).map_err(|e| match e {
        Why::Object(e) => e.to_string(),
        Why::Refused(why) => why,
    })?;
    for Edit { rela_at, place, bytes, also } in edits {
        data[place..place + bytes.len()].copy_from_slice(&bytes);
        // r_info = symbol << 32 | type: R_X86_64_NONE against no symbol, so the
        // patch's own copy of the thread-local is unreferenced and collected.
        for rela_at in std::iter::once(rela_at).chain(also) {
            let info_at = rela_at + 8;
            data[info_at..info_at + 8].copy_from_slice(&0u64.to_le_bytes());
        }
    }
    Ok(())
}

/// Why an object's thread-local accesses cannot be rewritten.
enum Why {
    Object(object::Error),
    Refused(String),
}

impl From<object::Error> for Why {
    fn from(e: object::Error) -> Self {
        Why::Object(e)
    }
}

/// The rewrites of every thread-local relocation in allocated sections.
fn tls_edits(data: &[u8], program: &ProgramImage) -> Result<Vec<Edit>, Why> {
    let header = elf::FileHeader64::<Endianness>::parse(data)?;
    let endian = header.endian()?;
    let sections = header.sections(endian, data)?;
    let symtab = sections.symbols(endian, data, elf::SHT_SYMTAB)?;
    let mut edits = Vec::new();
    for section in sections.iter().filter(|s| s.sh_type(endian) == elf::SHT_RELA) {
        let target = sections.section(SectionIndex(section.sh_info(endian) as usize))?;
        if target.sh_flags(endian) & u64::from(elf::SHF_ALLOC) == 0 {
            continue; // debug info: dropped by --strip-debug
        }
        let relas = section.data_as_array::<elf::Rela64<Endianness>, _>(endian, data)?;
        let rela_at =
            |i: usize| section.sh_offset(endian) as usize + i * std::mem::size_of::<elf::Rela64<Endianness>>();
        for (i, rela) in relas.iter().enumerate() {
            let r_type = rela.r_type(endian, false);
            if !is_tls(r_type) {
                continue;
            }
            let sym = symtab.symbol(SymbolIndex(rela.r_sym(endian, false) as usize))?;
            let name = String::from_utf8_lossy(symtab.symbol_name(endian, sym)?).into_owned();
            let Some(tls) = program.symbol(&name).filter(|s| s.tls) else { continue };
            // The relocation after a dynamic sequence's: its `__tls_get_addr` call.
            let call = relas.get(i + 1).map(|next| (rela_at(i + 1), next.r_offset(endian) - rela.r_offset(endian)));
            let access = Access {
                rela_at: rela_at(i),
                place: target.sh_offset(endian) as usize + rela.r_offset(endian) as usize,
                offset: tls.address as i64,
                addend: rela.r_addend(endian),
                name: &name,
                call,
            };
            edits.push(access.rewrite(r_type, data).map_err(Why::Refused)?);
        }
    }
    Ok(edits)
}

/// Whether a relocation type is a thread-local access of any model.
pub(super) fn is_tls(r_type: u32) -> bool {
    matches!(
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
    )
}

/// One thread-local access, and the program's thread-pointer offset of its variable.
struct Access<'a> {
    rela_at: usize,
    place: usize,
    /// The program's offset of the thread-local from the thread pointer.
    offset: i64,
    addend: i64,
    name: &'a str,
    /// The next relocation of the section: where its entry is, and how far past this
    /// one's place it applies.
    call: Option<(usize, u64)>,
}

impl Access<'_> {
    /// The rewrite of this access, for relocation type `r_type` in `data`.
    fn rewrite(&self, r_type: u32, data: &[u8]) -> Result<Edit, String> {
        let out_of_range = || format!("thread-local `{}` is out of range", self.name);
        let unknown = || format!("an access to thread-local `{}` has an unknown form", demangle(self.name));
        match r_type {
            elf::R_X86_64_TPOFF32 | elf::R_X86_64_DTPOFF32 => {
                // A local-dynamic access's offset in the block becomes the offset from
                // the thread pointer, which its sequence now starts from.
                let value = i32::try_from(self.offset + self.addend).map_err(|_| out_of_range())?;
                Ok(Edit { rela_at: self.rela_at, place: self.place, bytes: value.to_le_bytes().to_vec(), also: None })
            }
            elf::R_X86_64_TLSGD => {
                // lea x@tlsgd(%rip), %rdi; call __tls_get_addr (66 48 8d 3d R, 66 66 48 e8 R)
                // → mov %fs:0, %rax; lea x@tpoff(%rax), %rax
                let start = self.place.checked_sub(4).ok_or_else(unknown)?;
                let call = self.call.filter(|(_, distance)| *distance == 8).ok_or_else(unknown)?;
                let sequence = data.get(start..self.place + 8).ok_or_else(unknown)?;
                if sequence[..4] != [0x66, 0x48, 0x8d, 0x3d] || sequence[8..] != [0x66, 0x66, 0x48, 0xe8] {
                    return Err(unknown());
                }
                let offset = i32::try_from(self.offset).map_err(|_| out_of_range())?;
                let mut bytes = vec![0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0, 0x48, 0x8d, 0x80];
                bytes.extend_from_slice(&offset.to_le_bytes());
                Ok(Edit { rela_at: self.rela_at, place: start, bytes, also: Some(call.0) })
            }
            elf::R_X86_64_TLSLD => {
                // lea x@tlsld(%rip), %rdi; call __tls_get_addr (48 8d 3d R, e8 R)
                // → mov %fs:0, %rax, padded; each `x@dtpoff` then reads from there.
                let start = self.place.checked_sub(3).ok_or_else(unknown)?;
                let call = self.call.filter(|(_, distance)| *distance == 5).ok_or_else(unknown)?;
                let sequence = data.get(start..self.place + 5).ok_or_else(unknown)?;
                if sequence[..3] != [0x48, 0x8d, 0x3d] || sequence[7] != 0xe8 {
                    return Err(unknown());
                }
                let bytes = vec![0x66, 0x66, 0x66, 0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0];
                Ok(Edit { rela_at: self.rela_at, place: start, bytes, also: Some(call.0) })
            }
            elf::R_X86_64_GOTTPOFF if self.place >= 3 => {
                // mov/add foo@gottpoff(%rip), %reg  →  mov/add $offset, %reg
                let (rex, opcode, modrm) = (data[self.place - 3], data[self.place - 2], data[self.place - 1]);
                if modrm & 0xc7 != 0x05 || rex & 0xf8 != 0x48 {
                    return Err(unknown());
                }
                let reg = (modrm >> 3) & 7;
                let rex = 0x48 | ((rex >> 2) & 1);
                let (opcode, modrm) = match opcode {
                    0x8b => (0xc7, 0xc0 | reg),
                    0x03 => (0x81, 0xc0 | reg),
                    _ => return Err(unknown()),
                };
                let offset = i32::try_from(self.offset).map_err(|_| out_of_range())?;
                let mut bytes = vec![rex, opcode, modrm];
                bytes.extend_from_slice(&offset.to_le_bytes());
                Ok(Edit { rela_at: self.rela_at, place: self.place - 3, bytes, also: None })
            }
            _ => Err(format!(
                "an access to thread-local `{}` of a kind linked patches do not handle (relocation {r_type})",
                demangle(self.name)
            )),
        }
    }
}

/// Why a thread-local the program lacks cannot be linked: the program's threads have
/// no storage for it. Named as the user declared it (`logic::SEEN`), not as the
/// symbol std's `thread_local!` makes of it (`logic::SEEN::{{constant}}::…::VAL`).
pub(super) fn new_thread_local(symbol: &str) -> String {
    let declared = declared(symbol);
    // std's own (`RandomState::new`'s `KEYS`, behind every `HashMap::new`): the edit
    // did not declare it, it started using what declares it.
    let library = ["std::", "<std::", "core::", "<core::", "alloc::", "<alloc::"];
    if library.iter().any(|p| declared.starts_with(p)) {
        return format!(
            "new code uses std's thread-local `{declared}` (`HashMap::new` does, for one), which the running \
             program never used, so its threads have no storage for it"
        );
    }
    format!("it adds thread-local `{declared}`, which the running program's threads have no storage for")
}

/// How many declarations the thread-local symbols `symbols` (mangled) stand for: std's
/// `thread_local!` may define several per declaration, each under its path
/// (`logic::SEEN::{{constant}}::{{closure}}::__RUST_STD_INTERNAL_VAL`, twice in rustc
/// 1.95), so counting symbols said "2 thread-locals" of one.
pub(super) fn declarations<'a>(symbols: impl IntoIterator<Item = &'a String>) -> usize {
    let declared: std::collections::HashSet<String> = symbols.into_iter().map(|s| declared(&demangle(s))).collect();
    declared.len()
}

/// The path a thread-local symbol (demangled) was declared with.
fn declared(symbol: &str) -> String {
    symbol.split("::{{").next().unwrap_or(symbol).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_initial_exec_load_becomes_an_immediate_move() {
        // mov foo@gottpoff(%rip), %rax: 48 8b 05 <rel32>
        let data = [0x48, 0x8b, 0x05, 0, 0, 0, 0];
        let access = Access { rela_at: 0, place: 3, offset: -16, addend: -4, name: "foo", call: None };
        let edit = access.rewrite(elf::R_X86_64_GOTTPOFF, &data).unwrap();
        // mov $-16, %rax: 48 c7 c0 f0 ff ff ff
        assert_eq!((edit.place, edit.bytes), (0, vec![0x48, 0xc7, 0xc0, 0xf0, 0xff, 0xff, 0xff]));
        let local = access.rewrite(elf::R_X86_64_TPOFF32, &data).unwrap();
        assert_eq!(local.bytes, (-20i32).to_le_bytes());
        let other = [0x48, 0x8d, 0x05, 0, 0, 0, 0]; // lea: not a form the linker relaxes
        assert!(access.rewrite(elf::R_X86_64_GOTTPOFF, &other).unwrap_err().contains("unknown form"));
        assert!(access.rewrite(elf::R_X86_64_TLSGD, &data).unwrap_err().contains("unknown form"));
        assert!(access.rewrite(elf::R_X86_64_TLSDESC_CALL, &data).unwrap_err().contains("do not handle"));
    }

    #[test]
    fn dynamic_sequences_become_thread_pointer_reads() {
        // General dynamic, as std's objects have it: lea x@tlsgd(%rip), %rdi at 0,
        // its relocation at 4, then the call of __tls_get_addr (relocated at 12).
        let gd = [0x66, 0x48, 0x8d, 0x3d, 0, 0, 0, 0, 0x66, 0x66, 0x48, 0xe8, 0, 0, 0, 0];
        let access = Access { rela_at: 0, place: 4, offset: -16, addend: -4, name: "x", call: Some((24, 8)) };
        let edit = access.rewrite(elf::R_X86_64_TLSGD, &gd).unwrap();
        // mov %fs:0, %rax; lea -16(%rax), %rax
        let le = [0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0, 0x48, 0x8d, 0x80, 0xf0, 0xff, 0xff, 0xff];
        assert_eq!((edit.place, edit.bytes.as_slice(), edit.also), (0, &le[..], Some(24)));
        // Without its call right after, the sequence is not the one known.
        let far = Access { call: Some((24, 9)), ..access };
        assert!(far.rewrite(elf::R_X86_64_TLSGD, &gd).unwrap_err().contains("unknown form"));
        // Local dynamic: lea x@tlsld(%rip), %rdi at 0 (relocated at 3), call at 7 (8).
        let ld = [0x48, 0x8d, 0x3d, 0, 0, 0, 0, 0xe8, 0, 0, 0, 0];
        let access = Access { rela_at: 0, place: 3, offset: -16, addend: -4, name: "x", call: Some((24, 5)) };
        let edit = access.rewrite(elf::R_X86_64_TLSLD, &ld).unwrap();
        assert_eq!(edit.bytes, [0x66, 0x66, 0x66, 0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0]);
        assert_eq!((edit.place, edit.bytes.len(), edit.also), (0, ld.len(), Some(24)));
        // Each x@dtpoff after it: the offset from the thread pointer.
        let dtpoff = Access { rela_at: 0, place: 0, offset: -16, addend: 8, name: "x", call: None };
        assert_eq!(dtpoff.rewrite(elf::R_X86_64_DTPOFF32, &[0; 4]).unwrap().bytes, (-8i32).to_le_bytes());
    }

    #[test]
    fn thread_locals_are_counted_as_declared() {
        // One `thread_local!` each, as rustc 1.95 mangles them.
        let seen = [
            "_ZN5logic4SEEN29_$u7b$$u7b$constant$u7d$$u7d$28_$u7b$$u7b$closure$u7d$$u7d$23__RUST_STD_INTERNAL_VAL17hc449f0201391b0a7E",
            "_ZN5logic4SEEN29_$u7b$$u7b$constant$u7d$$u7d$28_$u7b$$u7b$closure$u7d$$u7d$23__RUST_STD_INTERNAL_VAL17hb8e212d1290c5c66E",
        ]
        .map(String::from);
        assert_eq!(declarations(&seen), 1);
        let other = "_ZN5logic5NAMES29_$u7b$$u7b$constant$u7d$$u7d$28_$u7b$$u7b$closure$u7d$$u7d$23__RUST_STD_INTERNAL_VAL17hba0a72977746ddbeE";
        assert_eq!(declarations(seen.iter().chain([&other.to_string()])), 2);
        assert_eq!(declarations(&[]), 0);
    }

    #[test]
    fn a_new_thread_local_is_named_as_declared() {
        let why = new_thread_local("logic::SEEN::{{constant}}::{{closure}}::VAL");
        assert!(why.starts_with("it adds thread-local `logic::SEEN`,"), "{why}");
    }
}
