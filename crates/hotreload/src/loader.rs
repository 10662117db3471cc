//! Maps a linked patch into this process (Linux x86-64).
//!
//! A linked patch is a static ELF executable image that `cargo hotreload` linked for
//! this very process: every reference to the program's code and state is already an
//! absolute address in it, so there is nothing for a dynamic loader to do but map
//! its segments at the addresses it was linked for, and tell the unwinder about its
//! `.eh_frame` so panics unwind through it. `dlopen` cannot do this (it refuses
//! executables), so this module does it: about what `ld.so` does for a static
//! image, no more.

use crate::__rt::Entry;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym};
use object::LittleEndian as LE;
use std::path::Path;

use hotreload_protocol::image;
use hotreload_protocol::message::Refusal;

const PAGE: u64 = 4096;

/// A linked patch mapped but not yet in use: [`Mapped::commit`] makes it live (for
/// ever), [`Mapped::discard`] unmaps it, as when its table fails the registry's checks.
pub(crate) struct Mapped {
    start: u64,
    len: usize,
    eh_frame: u64,
    register: RegisterFrame,
    /// The patch's trampoline table.
    pub(crate) table: &'static [Entry],
    /// Its executable segments, `[start, end)`: where redirects may lead.
    pub(crate) code: Vec<(u64, u64)>,
}

impl Mapped {
    /// Registers the image's unwind tables; from now on it is never unmapped, so code
    /// and data it hands out stay valid for the process's life.
    pub(crate) fn commit(self) -> &'static [Entry] {
        // SAFETY: `.eh_frame` was linked for this address and ends with a zero
        // terminator (checked by `Image::parse`); it stays mapped for ever.
        unsafe { (self.register)(self.eh_frame as *const u8) };
        crate::code::add_patch(&self.code);
        self.table
    }

    /// Unmaps the image; nothing of it has run or been referenced.
    pub(crate) fn discard(self) {
        // SAFETY: the mapping `map` made; `table` is dropped with `self`.
        unsafe { libc::munmap(self.start as *mut libc::c_void, self.len) };
    }
}

/// Maps the linked patch at `path`, without running or registering anything in it.
/// A file that is not a linked patch is refused as invalid; one that cannot be
/// mapped, as failed.
pub(crate) fn map(path: &Path) -> Result<Mapped, Refusal> {
    let data = std::fs::read(path).map_err(|e| Refusal::failed(format!("cannot read {}: {e}", path.display())))?;
    let image = Image::parse(&data, crate::code::program_start())
        .map_err(|e| Refusal::invalid(format!("{} is not a linked patch: {e}", path.display())))?;
    let register = register_frame().ok_or_else(|| Refusal::failed("the unwinder has no `__register_frame`"))?;
    map_image(&image, &data, register).map_err(Refusal::failed)
}

/// Maps a checked image at its addresses.
fn map_image(image: &Image, data: &[u8], register: RegisterFrame) -> Result<Mapped, String> {
    let len = (image.end - image.start) as usize;
    // SAFETY: an anonymous private mapping at a fixed address that must be free
    // (MAP_FIXED_NOREPLACE never replaces an existing mapping).
    let at = unsafe {
        libc::mmap(
            image.start as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if at == libc::MAP_FAILED {
        return Err(format!("cannot map the patch at {:#x}: {}", image.start, std::io::Error::last_os_error()));
    }
    if at as u64 != image.start {
        // A kernel without MAP_FIXED_NOREPLACE took it as a hint.
        // SAFETY: unmapping the mapping just made, which nothing uses.
        unsafe { libc::munmap(at, len) };
        return Err(format!("cannot map the patch at {:#x}: the range is in use", image.start));
    }
    for segment in &image.segments {
        let bytes = &data[segment.offset as usize..(segment.offset + segment.file_size) as usize];
        // SAFETY: the segment lies inside the writable mapping made above (checked by
        // `Image::parse`); the rest of it stays zero, as `.bss` must.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), segment.address as *mut u8, bytes.len()) };
    }
    for (start, end, prot) in image.protections() {
        // SAFETY: page ranges inside the mapping made above.
        if unsafe { libc::mprotect(start as *mut libc::c_void, (end - start) as usize, prot) } != 0 {
            let err = std::io::Error::last_os_error();
            // SAFETY: as above; nothing of the image is in use yet.
            unsafe { libc::munmap(at, len) };
            return Err(format!("cannot protect the patch's pages: {err}"));
        }
    }
    let count = ((image.table.1 - image.table.0) as usize) / std::mem::size_of::<Entry>();
    let table = match count {
        0 => &[][..],
        // SAFETY: the table's bounds lie in the mapped image, are aligned and hold
        // whole `Entry` rows written by `#[hot]` (checked by `Image::parse` and, for
        // their contents, by the registry before any slot switches). 'static once
        // committed; `discard` drops it with the mapping.
        _ => unsafe { std::slice::from_raw_parts(image.table.0 as *const Entry, count) },
    };
    let code = image
        .segments
        .iter()
        .filter(|s| s.flags & elf::PF_X != 0)
        .map(|s| (s.address, s.address + s.memory_size))
        .collect();
    Ok(Mapped { start: image.start, len, eh_frame: image.eh_frame, register, table, code })
}

type RegisterFrame = unsafe extern "C" fn(*const u8);

/// libgcc's `__register_frame`, which Rust's unwinder on Linux uses.
fn register_frame() -> Option<RegisterFrame> {
    let this = libloading::os::unix::Library::this();
    // SAFETY: libgcc's documented signature; the symbol is looked up, not called.
    let symbol = unsafe { this.get::<RegisterFrame>(b"__register_frame\0") }.ok()?;
    Some(*symbol)
}

#[derive(Debug)]
struct Segment {
    address: u64,
    offset: u64,
    file_size: u64,
    memory_size: u64,
    flags: u32,
}

#[derive(Debug)]
struct Image {
    start: u64,
    end: u64,
    segments: Vec<Segment>,
    eh_frame: u64,
    table: (u64, u64),
}

impl Image {
    /// Reads and checks a linked patch: the rules of [`hotreload_protocol::image`],
    /// which the tool checked too, checked again since the file crosses a trust
    /// boundary. `program` is where the program's code starts (see
    /// [`image::out_of_range`]).
    fn parse(data: &[u8], program: u64) -> Result<Image, String> {
        let err = |e: object::read::Error| e.to_string();
        let header = elf::FileHeader64::<LE>::parse(data).map_err(err)?;
        if header.e_type(LE) != elf::ET_EXEC || header.e_machine(LE) != elf::EM_X86_64 {
            return Err("not an x86-64 static image".into());
        }
        let segments = segments(header, data, program)?;
        let start = segments.iter().map(|s| s.address).min().ok_or("no segments")? / PAGE * PAGE;
        let end = segments.iter().map(|s| s.address + s.memory_size).max().unwrap_or(start).next_multiple_of(PAGE);
        let sections = Sections::read(header, data)?;
        let inside = |address: u64, size: u64| address >= start && address.saturating_add(size) <= end;
        let (eh_frame, eh_size) = sections.eh_frame.ok_or("no .eh_frame")?;
        match sections.eh_end {
            Some((at, 4)) if at == eh_frame + eh_size && inside(eh_frame, eh_size + 4) => {}
            _ => return Err("its .eh_frame has no terminator".into()),
        }
        let (t0, t1) = match sections.table {
            (Some(t0), Some(t1)) => (t0, t1),
            // A crate without `#[hot]` functions: its functions switch at their entries.
            (None, None) => (0, 0),
            _ => return Err("its trampoline table is malformed".into()),
        };
        let row = std::mem::size_of::<Entry>() as u64;
        if t1 < t0 || (t1 - t0) % row != 0 || t0 % 8 != 0 || t1 > t0 && !inside(t0, t1 - t0) {
            return Err("its trampoline table is malformed".into());
        }
        Ok(Image { start, end, segments, eh_frame, table: (t0, t1) })
    }

    /// Page ranges with their protection: the union of the segments on each page.
    fn protections(&self) -> Vec<(u64, u64, libc::c_int)> {
        let pages = ((self.end - self.start) / PAGE) as usize;
        let mut prot = vec![libc::PROT_NONE; pages];
        for s in &self.segments {
            let mut p = libc::PROT_NONE;
            if s.flags & elf::PF_R != 0 {
                p |= libc::PROT_READ;
            }
            if s.flags & elf::PF_W != 0 {
                p |= libc::PROT_WRITE;
            }
            if s.flags & elf::PF_X != 0 {
                p |= libc::PROT_EXEC;
            }
            let first = ((s.address / PAGE * PAGE - self.start) / PAGE) as usize;
            let last = (((s.address + s.memory_size).next_multiple_of(PAGE) - self.start) / PAGE) as usize;
            for page in &mut prot[first..last] {
                *page |= p;
            }
        }
        let mut runs: Vec<(u64, u64, libc::c_int)> = Vec::new();
        for (i, p) in prot.into_iter().enumerate() {
            let at = self.start + i as u64 * PAGE;
            match runs.last_mut() {
                Some(run) if run.2 == p && run.1 == at => run.1 = at + PAGE,
                _ => runs.push((at, at + PAGE, p)),
            }
        }
        runs
    }
}

/// The loadable segments, each inside the file and the address window beside a
/// program whose code starts at `program`.
fn segments(header: &elf::FileHeader64<LE>, data: &[u8], program: u64) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    for ph in header.program_headers(LE, data).map_err(|e| e.to_string())? {
        match ph.p_type(LE) {
            elf::PT_LOAD => {
                let s = Segment {
                    address: ph.p_vaddr(LE),
                    offset: ph.p_offset(LE),
                    file_size: ph.p_filesz(LE),
                    memory_size: ph.p_memsz(LE),
                    flags: ph.p_flags(LE),
                };
                let in_file = s.offset.checked_add(s.file_size).is_some_and(|e| e <= data.len() as u64);
                let in_range = s
                    .address
                    .checked_add(s.memory_size)
                    .is_some_and(|e| image::out_of_range(s.address, e, program).is_none());
                if !in_file || !in_range || s.file_size > s.memory_size {
                    return Err("a segment lies outside the file or the allowed range".into());
                }
                segments.push(s);
            }
            elf::PT_INTERP | elf::PT_DYNAMIC | elf::PT_TLS => {
                return Err("it needs a dynamic loader or thread-local storage".into())
            }
            _ => {}
        }
    }
    Ok(segments)
}

/// What the loader needs from the section and symbol tables.
struct Sections {
    /// `.eh_frame`'s address and size.
    eh_frame: Option<(u64, u64)>,
    /// The terminator's address and size.
    eh_end: Option<(u64, u64)>,
    /// The trampoline table's start and stop symbols.
    table: (Option<u64>, Option<u64>),
}

impl Sections {
    fn read(header: &elf::FileHeader64<LE>, data: &[u8]) -> Result<Sections, String> {
        let err = |e: object::read::Error| e.to_string();
        let sections = header.sections(LE, data).map_err(err)?;
        let mut out = Sections { eh_frame: None, eh_end: None, table: (None, None) };
        for section in sections.iter() {
            let name = sections.section_name(LE, section).map_err(err)?;
            if let Some(why) = image::forbidden_section(name) {
                return Err(why.into());
            }
            let range = Some((section.sh_addr(LE), section.sh_size(LE)));
            match name {
                b".eh_frame" => out.eh_frame = range,
                n if n == image::EH_END_SECTION.as_bytes() => out.eh_end = range,
                _ => {}
            }
        }
        let symtab = sections.symbols(LE, data, elf::SHT_SYMTAB).map_err(err)?;
        for sym in symtab.iter() {
            match symtab.symbol_name(LE, sym).map_err(err)? {
                n if n == image::TABLE_START.as_bytes() => out.table.0 = Some(sym.st_value(LE)),
                n if n == image::TABLE_STOP.as_bytes() => out.table.1 = Some(sym.st_value(LE)),
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Real linked patches, as `cargo hotreload run` wrote them for the test fixtures:
    /// one of a crate without `#[hot]` (no table), one with a trampoline table.
    const SEEDS: [&[u8]; 2] =
        [include_bytes!("../tests/patches/entries-only.elf"), include_bytes!("../tests/patches/with-table.elf")];

    /// The byte ranges that describe an image rather than hold its code: the ELF
    /// header, the program and section header tables, and every section that is not
    /// loaded (symbols, their names, section names).
    fn structure(data: &[u8]) -> Vec<std::ops::Range<usize>> {
        let header = elf::FileHeader64::<LE>::parse(data).unwrap();
        let (phoff, phnum) = (header.e_phoff(LE) as usize, header.e_phnum(LE) as usize);
        let (shoff, shnum) = (header.e_shoff(LE) as usize, header.e_shnum(LE) as usize);
        let mut ranges = vec![0..64, phoff..phoff + phnum * 56, shoff..shoff + shnum * 64];
        for section in header.sections(LE, data).unwrap().iter() {
            if section.sh_flags(LE) & u64::from(elf::SHF_ALLOC) == 0 && section.sh_type(LE) != elf::SHT_NOBITS {
                let (at, size) = (section.sh_offset(LE) as usize, section.sh_size(LE) as usize);
                ranges.push(at..(at + size).min(data.len()));
            }
        }
        ranges
    }

    /// Where a non-PIE program's code starts: the seeds were linked below 2 GiB.
    const LOW_PROGRAM: u64 = 0x40_0000;

    /// The invariants `map_image` relies on, checked independently of `Image::parse`.
    fn sound(image: &Image, len: usize) -> Result<(), String> {
        if image.start % PAGE != 0 || image.end <= image.start || image.end % PAGE != 0 {
            return Err(format!("bounds {:#x}..{:#x}", image.start, image.end));
        }
        if image::out_of_range(image.start, image.end, LOW_PROGRAM).is_some() {
            return Err("outside the address window".into());
        }
        for s in &image.segments {
            let in_file = s.offset.checked_add(s.file_size).is_some_and(|e| e <= len as u64);
            let in_image = s.address >= image.start && s.address + s.memory_size <= image.end;
            if !in_file || !in_image || s.file_size > s.memory_size {
                return Err(format!("segment {s:?}"));
            }
        }
        Ok(())
    }

    /// Whether any page of `[start, end)` is mapped in this process.
    fn mapped(start: u64, end: u64) -> bool {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines().filter_map(|l| l.split_once(' ')?.0.split_once('-')).any(|(a, b)| {
            let (a, b) = (u64::from_str_radix(a, 16).unwrap(), u64::from_str_radix(b, 16).unwrap());
            a < end && start < b
        })
    }

    /// Held while a test maps: the seed test and the fuzz test map the same patches at
    /// the same fixed addresses, and would find each other's mappings there.
    static MAPPING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Registering unwind tables of a fuzzed image would let the unwinder read it: the
    /// fuzz test maps and discards, and never commits.
    unsafe extern "C" fn not_registered(_: *const u8) {}

    #[test]
    fn the_seed_patches_are_accepted_and_map_at_their_addresses() {
        for seed in SEEDS {
            // Read as the agent reads a file: into a heap buffer, aligned for ELF headers.
            let seed = seed.to_vec();
            let image = Image::parse(&seed, LOW_PROGRAM).unwrap();
            sound(&image, seed.len()).unwrap();
            // Linked for a program loaded low: out of reach of one loaded elsewhere.
            let err = Image::parse(&seed, 0x5555_5555_4000).unwrap_err();
            assert!(err.contains("outside the file or the allowed range"), "{err}");
            let _one = MAPPING.lock().unwrap_or_else(|e| e.into_inner());
            let mapped_image = map_image(&image, &seed, not_registered).unwrap();
            assert!(mapped(image.start, image.end));
            mapped_image.discard();
            assert!(!mapped(image.start, image.end));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

        /// A real patch with 1 to 6 bytes of its structure replaced, or cut short: the
        /// loader refuses it, or accepts an image whose every segment lies in the file
        /// and the address window; mapped, it is discarded without a trace. Nothing of
        /// it runs.
        #[test]
        fn mutated_patches_are_refused_or_map_soundly(
            seed in 0..SEEDS.len(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..=6),
            cut in proptest::option::weighted(0.1, any::<prop::sample::Index>()),
        ) {
            let mut data = SEEDS[seed].to_vec();
            let ranges = structure(&data);
            let bytes: Vec<usize> = ranges.into_iter().flatten().filter(|&i| i < data.len()).collect();
            for (at, value) in edits {
                data[bytes[at.index(bytes.len())]] = value;
            }
            if let Some(cut) = cut {
                data.truncate(cut.index(data.len()));
            }
            if let Ok(image) = Image::parse(&data, LOW_PROGRAM) {
                prop_assert_eq!(sound(&image, data.len()), Ok(()));
                let _one = MAPPING.lock().unwrap_or_else(|e| e.into_inner());
                if let Ok(mapped_image) = map_image(&image, &data, not_registered) {
                    mapped_image.discard();
                    prop_assert!(!mapped(image.start, image.end), "left mapped");
                }
            }
        }
    }

    #[test]
    fn other_files_are_refused() {
        assert!(Image::parse(b"\x7fELF but not really", LOW_PROGRAM).is_err());
        // This test binary is a PIE: an ET_DYN, not a linked patch.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(Image::parse(&exe, LOW_PROGRAM).unwrap_err().contains("static image"));
    }
}
