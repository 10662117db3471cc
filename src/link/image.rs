//! An executable image's code as it lies in the running process: the program's
//! executable, or a linked patch. Read for redirects: where each function's copy is,
//! and its bytes, to check that its entry can take a jump.

use anyhow::{Context, Result};
use memmap2::Mmap;
use object::read::elf::{FileHeader, ProgramHeader, Sym};
use object::{elf, Endianness};
use std::collections::HashMap;
use std::path::Path;

/// One function's copy in an image (or a static's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    /// Its entry address (a static's address).
    pub address: u64,
    /// Its size in bytes, as the symbol table says.
    pub size: u64,
}

/// The code of an executable image.
pub struct CodeImage {
    map: Mmap,
    /// Loadable segments: address, file offset, file size.
    loads: Vec<(u64, u64, u64)>,
    /// Functions by symbol name; `None` for a name defined at several addresses.
    functions: HashMap<String, Option<Function>>,
    /// Every function's entry, sorted: where the next one starts.
    starts: Vec<u64>,
    /// Symbol names by demangled name (without the hash): the copies of one function
    /// that several crates compiled.
    by_path: HashMap<String, Vec<String>>,
    /// Data objects it defines itself (a static the program does not have), by symbol
    /// name; `None` for a name defined at several addresses.
    statics: HashMap<String, Option<Function>>,
}

impl CodeImage {
    /// Reads the image at `path`, at its link-time addresses (a patch's).
    pub fn read(path: &Path) -> Result<CodeImage> {
        CodeImage::read_loaded(path, 0)
    }

    /// Reads the image at `path` as loaded with `bias` added to its link-time addresses
    /// (the program's executable, see [`crate::link::program::load_bias`]).
    pub fn read_loaded(path: &Path, bias: u64) -> Result<CodeImage> {
        let file = std::fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
        // SAFETY: a file this session wrote (a patch) or built (the program), which
        // nothing changes while the session runs; a change would only make the
        // comparison wrong, never unsafe in this process.
        let map = unsafe { Mmap::map(&file) }.with_context(|| format!("failed to map {}", path.display()))?;
        let (loads, functions, statics) =
            parse(&map, bias).with_context(|| format!("failed to read {}", path.display()))?;
        let mut starts: Vec<u64> = functions.values().flatten().map(|f| f.address).collect();
        starts.sort_unstable();
        starts.dedup();
        let mut by_path: HashMap<String, Vec<String>> = HashMap::new();
        for name in functions.keys() {
            by_path.entry(super::demangle(name)).or_default().push(name.clone());
        }
        Ok(CodeImage { map, loads, functions, starts, by_path, statics })
    }

    /// Every data object defined at one address (its address and size), by symbol name.
    pub fn statics(&self) -> impl Iterator<Item = (&str, Function)> {
        self.statics.iter().filter_map(|(name, f)| Some((name.as_str(), (*f)?)))
    }

    /// The function named `name`, when exactly one copy of it is defined.
    pub fn function(&self, name: &str) -> Option<Function> {
        self.functions.get(name).copied().flatten()
    }

    /// Every function defined at one address, by symbol name.
    pub fn functions(&self) -> impl Iterator<Item = (&str, Function)> {
        self.functions.iter().filter_map(|(name, f)| Some((name.as_str(), (*f)?)))
    }

    /// Whether `name` is defined at several addresses.
    pub fn ambiguous(&self, name: &str) -> bool {
        matches!(self.functions.get(name), Some(None))
    }

    /// The symbols whose demangled name is `path`: every copy of a function, generic
    /// instances and closures compiled into other crates included.
    pub fn named(&self, path: &str) -> &[String] {
        self.by_path.get(path).map(Vec::as_slice).unwrap_or_default()
    }

    /// The symbols of item `path` as the source names it (`logic::Wrapper::get`): those
    /// [`CodeImage::named`] finds, else those whose demangled name is `path` once both
    /// leave their generic arguments out (`logic::Wrapper<T>::get` for
    /// `logic::Wrapper<U>::get`, a method of a generic impl); a trait impl's method
    /// (`logic::Point~Named::name`) by `is_trait_method`.
    pub fn named_in_source(&self, path: &str) -> Vec<&String> {
        let exact = self.named(path);
        if !exact.is_empty() {
            return exact.iter().collect();
        }
        if path.contains('~') {
            let found = self.by_path.iter().filter(|(shown, _)| is_trait_method(path, shown));
            return found.flat_map(|(_, names)| names).collect();
        }
        let path = without_generics(path);
        let loose = self.by_path.iter().filter(|(shown, _)| shown.contains('<') && without_generics(shown) == path);
        loose.flat_map(|(_, names)| names).collect()
    }

    /// Where the next function after `address` starts.
    pub fn next_start(&self, address: u64) -> Option<u64> {
        let at = self.starts.partition_point(|s| *s <= address);
        self.starts.get(at).copied()
    }

    /// The `len` bytes at `address`, when the file holds them.
    pub fn bytes(&self, address: u64, len: u64) -> Option<&[u8]> {
        let (vaddr, offset, size) = self.loads.iter().find(|(v, _, s)| address >= *v && address + len <= v + s)?;
        let start = (offset + (address - vaddr)) as usize;
        let _ = size;
        self.map.get(start..start + len as usize)
    }
}

/// Whether demangled name `shown` (`<logic::Point as logic::Named>::name`) is the
/// method that source id `id` (`logic::Point~Named::name`, see
/// [`hotreload_protocol::record::impl_id`]) names: the same method, self type and trait
/// by their last path segments, generic arguments aside, in the id's crate.
fn is_trait_method(id: &str, shown: &str) -> bool {
    let Some((left, right)) = id.split_once('~') else { return false };
    let Some((trait_path, method)) = right.rsplit_once("::") else { return false };
    // The id spells generic arguments as dots (`Wrapper.T.`).
    let last = |path: &str| -> String {
        let bare = without_generics(path);
        let segment = bare.rsplit("::").next().unwrap_or(&bare).to_string();
        segment.split('.').next().unwrap_or_default().to_string()
    };
    let Some(inner) = shown.strip_prefix('<').and_then(|s| s.strip_suffix(&format!(">::{method}"))) else {
        return false;
    };
    let Some((self_ty, shown_trait)) = inner.split_once(" as ") else { return false };
    let krate = hotreload_protocol::record::crate_of(id);
    let in_crate = self_ty.starts_with(&format!("{krate}::")) || shown_trait.starts_with(&format!("{krate}::"));
    in_crate && last(self_ty) == last(left) && last(shown_trait) == last(trait_path)
}

/// `path` without its generic arguments (`a::B<T>::c` → `a::B::c`).
fn without_generics(path: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

type Symbols = HashMap<String, Option<Function>>;
type Parsed = (Vec<(u64, u64, u64)>, Symbols, Symbols);

fn parse(data: &[u8], bias: u64) -> Result<Parsed> {
    let header = elf::FileHeader64::<Endianness>::parse(data)?;
    let endian = header.endian()?;
    let loads = header
        .program_headers(endian, data)?
        .iter()
        .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
        .map(|ph| (ph.p_vaddr(endian).wrapping_add(bias), ph.p_offset(endian), ph.p_filesz(endian)))
        .collect();
    let sections = header.sections(endian, data)?;
    let symtab = sections.symbols(endian, data, elf::SHT_SYMTAB)?;
    let (mut functions, mut statics) = (Symbols::new(), Symbols::new());
    // What a patch binds to a running copy is an absolute symbol there: not its own.
    let defined = |s: &&elf::Sym64<Endianness>| {
        matches!(s.st_type(), elf::STT_FUNC | elf::STT_OBJECT)
            && !matches!(s.st_shndx(endian), elf::SHN_UNDEF | elf::SHN_ABS)
    };
    for sym in symtab.iter().filter(defined) {
        let Ok(name) = std::str::from_utf8(symtab.symbol_name(endian, sym)?) else { continue };
        let new = Function { address: sym.st_value(endian).wrapping_add(bias), size: sym.st_size(endian) };
        let table = if sym.st_type() == elf::STT_FUNC { &mut functions } else { &mut statics };
        table
            .entry(name.to_string())
            .and_modify(|old| {
                if *old != Some(new) {
                    *old = None;
                }
            })
            .or_insert(Some(new));
    }
    Ok((loads, functions, statics))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trait_methods_id_finds_its_demangled_name() {
        assert!(is_trait_method(
            "shop_core::Standard~Pricing::label",
            "<shop_core::Standard as shop_core::Pricing>::label"
        ));
        assert!(is_trait_method("logic::Wrapper.T.~Named::name", "<logic::Wrapper<u8> as logic::Named>::name"));
        assert!(!is_trait_method(
            "shop_core::Standard~Pricing::label",
            "<shop_core::Discount as shop_core::Pricing>::label"
        ));
        assert!(!is_trait_method(
            "shop_core::Standard~Pricing::label",
            "<shop_core::Standard as shop_core::Pricing>::price"
        ));
        assert!(!is_trait_method("shop_core::Standard~Pricing::label", "<other::Standard as other::Pricing>::label"));
        assert!(!is_trait_method("shop_core::Standard::label", "<shop_core::Standard as shop_core::Pricing>::label"));
    }

    #[test]
    fn generic_arguments_are_left_out_at_any_depth() {
        assert_eq!(without_generics("logic::Wrapper<T>::get"), "logic::Wrapper::get");
        assert_eq!(without_generics("logic::Parser<'a>::new"), "logic::Parser::new");
        assert_eq!(without_generics("a::B<Vec<u8>, C<D>>::e"), "a::B::e");
        assert_eq!(without_generics("logic::value"), "logic::value");
    }

    #[test]
    fn this_test_binarys_functions_and_their_bytes_are_found() {
        let image = CodeImage::read(&std::env::current_exe().unwrap()).unwrap();
        let main = image.function("main").expect("a `main` symbol");
        assert!(main.size > 0);
        let bytes = image.bytes(main.address, main.size).expect("in a loadable segment");
        assert_eq!(bytes.len() as u64, main.size);
        assert!(image.next_start(main.address).is_some_and(|next| next > main.address));
        assert!(image.function("no_such_function").is_none());
    }
}
