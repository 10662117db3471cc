//! Per-function records and the symbol names they are exported under.
//!
//! Every hot function `id` (its module path and name, e.g. `logic::Counter::bump`)
//! exports two symbols from a patch library:
//!
//! | symbol | what |
//! |---|---|
//! | `hotreload$1$f$<id>` | the forwarder: the function's body behind a Rust-ABI entry point |
//! | `hotreload$1$r$<id>` | a [`Record`]: plain bytes, no pointers, so no relocations |
//!
//! The tool reads the records straight from the file with `object` and refuses a patch
//! whose signatures do not match the running program, before anything is mapped.

/// Prefix of a forwarder's export name; the function id follows.
pub const FORWARDER_PREFIX: &str = "hotreload$1$f$";

/// Prefix of a record's export name; the function id follows.
pub const RECORD_PREFIX: &str = "hotreload$1$r$";

/// Export name of the patch library's table accessor (see the `hotreload` runtime).
pub const TABLE_SYMBOL: &str = "hotreload_v1_patch_table";

/// Export name of the patch library's initialiser (see the `hotreload` runtime).
pub const INIT_SYMBOL: &str = "hotreload_v1_patch_init";

/// First eight bytes of every record: `HOTRLD01`, little-endian.
pub const RECORD_MAGIC: u64 = u64::from_le_bytes(*b"HOTRLD01");

/// Size of a [`Record`] in bytes.
pub const RECORD_SIZE: usize = 32;

/// What a hot function publishes about itself, readable without loading the library.
///
/// `#[repr(C)]` and pointer-free on purpose: its bytes in the file are its value.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// Always [`RECORD_MAGIC`].
    pub magic: u64,
    /// Layout version of this struct; 1.
    pub version: u32,
    /// Reserved, zero.
    pub flags: u32,
    /// Hash of the normalised signature and the size and alignment of every type in it.
    pub signature: u64,
    /// Hash of the rustc version the crate was compiled with.
    pub toolchain: u64,
}

impl Record {
    /// A version-1 record.
    pub const fn new(signature: u64, toolchain: u64) -> Record {
        Record { magic: RECORD_MAGIC, version: 1, flags: 0, signature, toolchain }
    }

    /// Reads a record from the little-endian bytes of a library file.
    ///
    /// Returns `None` unless `bytes` is at least [`RECORD_SIZE`] long and starts
    /// with a version-1 record.
    pub fn from_bytes(bytes: &[u8]) -> Option<Record> {
        let bytes = bytes.get(..RECORD_SIZE)?;
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        let record = Record {
            magic: u64_at(0),
            version: u32_at(8),
            flags: u32_at(12),
            signature: u64_at(16),
            toolchain: u64_at(24),
        };
        (record.magic == RECORD_MAGIC && record.version == 1).then_some(record)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over `bytes`, usable in constant expressions.
pub const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    hash
}

/// Folds `values` (sizes and alignments) into a signature's text hash.
pub const fn signature_hash(text_hash: u64, values: &[usize]) -> u64 {
    let mut hash = text_hash;
    let mut i = 0;
    while i < values.len() {
        let bytes = (values[i] as u64).to_le_bytes();
        let mut j = 0;
        while j < 8 {
            hash ^= bytes[j] as u64;
            hash = hash.wrapping_mul(FNV_PRIME);
            j += 1;
        }
        i += 1;
    }
    hash
}

/// The middle of a method's id, from the token text of its `impl`'s self type and
/// trait: `Counter`, or `Counter~Named` for a trait impl. Ids double as symbol names,
/// which linker version scripts restrict, so whitespace goes and anything but letters,
/// digits, `_` and `:` becomes `.`. The attribute and the tool's source scan both spell
/// ids with this, so they always agree.
pub fn impl_id(self_ty: &str, trait_path: Option<&str>) -> String {
    fn symbol_safe(text: &str) -> String {
        text.chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '.' })
            .collect()
    }
    match trait_path {
        Some(path) => format!("{}~{}", symbol_safe(self_ty), symbol_safe(path)),
        None => symbol_safe(self_ty),
    }
}

/// The crate a function id belongs to: its first path segment.
pub fn crate_of(id: &str) -> &str {
    id.split("::").next().unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_through_bytes() {
        let record = Record::new(0x1234_5678_9abc_def0, 42);
        assert_eq!(std::mem::size_of::<Record>(), RECORD_SIZE);
        // SAFETY: Record is repr(C), plain integers, no padding.
        let bytes: [u8; RECORD_SIZE] = unsafe { std::mem::transmute(record) };
        assert_eq!(Record::from_bytes(&bytes), Some(record));
        assert_eq!(Record::from_bytes(&bytes[..31]), None);
        let mut bad = bytes;
        bad[0] ^= 1;
        assert_eq!(Record::from_bytes(&bad), None);
    }

    #[test]
    fn signature_hash_depends_on_every_size() {
        let base = fnv1a(b"fn(u32) -> u32");
        assert_ne!(signature_hash(base, &[4, 4]), signature_hash(base, &[4, 8]));
        assert_ne!(signature_hash(base, &[4, 4]), signature_hash(fnv1a(b"fn(i32) -> u32"), &[4, 4]));
        assert_eq!(crate_of("logic::Counter::bump"), "logic");
        assert_eq!(impl_id("Vec < u8 >", None), "Vec.u8.");
        assert_eq!(impl_id("Counter", Some("fmt :: Display")), "Counter~fmt::Display");
    }
}
