//! The object files of an rlib, as the linker, the code comparison and the layout check
//! read them.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// One object file of an rlib, copied so that it is aligned for ELF headers: an archive
/// member starts at any even offset, and `object` reads headers in place.
pub struct Member {
    /// Its name in the archive (`logic-1234.logic.abcd-cgu.0.rcgu.o`).
    pub name: String,
    words: Vec<u64>,
    len: usize,
}

impl Member {
    fn new(name: String, bytes: &[u8]) -> Member {
        let mut member = Member { name, words: vec![0u64; bytes.len().div_ceil(8)], len: bytes.len() };
        member.bytes_mut().copy_from_slice(bytes);
        member
    }

    /// Its bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: u64 has no padding and any byte is a valid u8; `len` is at most the
        // byte length of the allocation.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast(), self.len) }
    }

    /// Its bytes, to rewrite in place.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; every byte pattern is a valid u64, so writes keep the
        // words valid.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast(), self.len) }
    }
}

/// Every object file (`*.o`) of the rlib at `path`.
pub fn objects(path: &Path) -> Result<Vec<Member>> {
    let data = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    let archive = object::read::archive::ArchiveFile::parse(&*data)
        .with_context(|| format!("{} is not an rlib", path.display()))?;
    let mut objects = Vec::new();
    for member in archive.members() {
        let member = member?;
        if member.name().ends_with(b".o") {
            objects.push(Member::new(String::from_utf8_lossy(member.name()).into_owned(), member.data(&*data)?));
        }
    }
    if objects.is_empty() {
        bail!("{} holds no object files", path.display());
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_aligned_copies() {
        let member = Member::new("a.o".into(), &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(member.bytes(), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(member.bytes().as_ptr() as usize % 8, 0);
    }
}
