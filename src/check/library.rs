//! A patch library's exports, read from the file before anything is loaded.
//!
//! The records hot functions export are plain bytes (see
//! [`hotreload_protocol::record`]); `object` finds them among the dynamic symbols of
//! a self-contained library, or the symbol table of a linked patch (see
//! [`crate::link`]), and reads them from the section they live in.

use anyhow::{bail, Context, Result};
use hotreload_protocol::record::{Record, FORWARDER_PREFIX, INIT_SYMBOL, RECORD_PREFIX, RECORD_SIZE};
use object::{Object, ObjectSection, ObjectSymbol};
use std::collections::BTreeMap;
use std::path::Path;

/// What a library file says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Library {
    /// Every hot function's record, by id.
    pub functions: BTreeMap<String, Record>,
}

impl Library {
    /// Reads `path`: only the pages holding the symbol tables and records are touched.
    pub fn read(path: &Path) -> Result<Library> {
        let file = std::fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
        // SAFETY: the file lies in the session's private directory and nothing writes
        // to it (cargo's next build writes a new file; the session only links it).
        let data = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("failed to map {}", path.display()))?;
        Library::parse(&data).with_context(|| format!("failed to read the exports of {}", path.display()))
    }

    /// Reads a library from its bytes.
    pub fn parse(data: &[u8]) -> Result<Library> {
        let file = object::File::parse(data)?;
        let linked = file.kind() == object::ObjectKind::Executable;
        let mut functions = BTreeMap::new();
        let mut forwarders = 0;
        let mut has_init = linked;
        let symbols = if linked { file.symbols() } else { file.dynamic_symbols() };
        for symbol in symbols {
            let Ok(name) = symbol.name() else { continue };
            if name == INIT_SYMBOL {
                has_init = true;
            }
            if name.starts_with(FORWARDER_PREFIX) {
                forwarders += 1;
            }
            let Some(id) = name.strip_prefix(RECORD_PREFIX) else {
                continue;
            };
            let Some(index) = symbol.section_index() else { bail!("record of `{id}` has no section") };
            let section = file.section_by_index(index)?;
            let bytes = section
                .data_range(symbol.address(), RECORD_SIZE as u64)?
                .with_context(|| format!("record of `{id}` lies outside its section"))?;
            let record = Record::from_bytes(bytes)
                .with_context(|| format!("record of `{id}` is not a version-1 hotreload record"))?;
            functions.insert(id.to_string(), record);
        }
        if !has_init {
            bail!("not a hotreload patch library (no `{INIT_SYMBOL}`)");
        }
        if forwarders != functions.len() {
            bail!("{forwarders} forwarders but {} records", functions.len());
        }
        Ok(Library { functions })
    }

    /// The toolchain hash every record carries, if they agree.
    pub fn toolchain(&self) -> Option<u64> {
        let mut hashes = self.functions.values().map(|r| r.toolchain);
        let first = hashes.next()?;
        hashes.all(|h| h == first).then_some(first)
    }
}
