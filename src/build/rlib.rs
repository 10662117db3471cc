//! The object files of a patch build — an rlib's members, or the objects a binary crate
//! was compiled to — as the linker, the code comparison and the layout check read them.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// One object file of an rlib, copied so that it is aligned for ELF headers: an archive
/// member starts at any even offset, and `object` reads headers in place.
#[derive(Clone)]
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

/// Every object file (`*.o`) of the rlib at `path` or, when `path` is a directory, in
/// it (a binary crate's codegen units, see [`crate::build::Invocation::for_linked_patch`]).
pub fn objects(path: &Path) -> Result<Vec<Member>> {
    if path.is_dir() {
        return directory_objects(path);
    }
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

/// The object file at archive offset `offset` of the rlib at `path` (an offset its
/// archive index gives for a symbol).
pub fn member_at(path: &Path, offset: u64) -> Result<Member> {
    let data = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    let archive = object::read::archive::ArchiveFile::parse(&*data)
        .with_context(|| format!("{} is not an rlib", path.display()))?;
    let member = archive.member(object::read::archive::ArchiveOffset(offset))?;
    Ok(Member::new(String::from_utf8_lossy(member.name()).into_owned(), member.data(&*data)?))
}

fn directory_objects(dir: &Path) -> Result<Vec<Member>> {
    let mut objects = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "o") {
            let bytes = std::fs::read(&path).with_context(|| format!("failed to read {}", path.display()))?;
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            objects.push(Member::new(name, &bytes));
        }
    }
    if objects.is_empty() {
        bail!("{} holds no object files", dir.display());
    }
    // Listed in a stable order, as an archive's members are.
    objects.sort_by(|a, b| a.name.cmp(&b.name));
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

    #[test]
    fn a_directory_gives_its_object_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.rcgu.o"), [2]).unwrap();
        std::fs::write(dir.path().join("a.rcgu.o"), [1]).unwrap();
        std::fs::write(dir.path().join("app.d"), [0]).unwrap();
        let names: Vec<String> = objects(dir.path()).unwrap().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["a.rcgu.o", "b.rcgu.o"]);
        std::fs::remove_file(dir.path().join("a.rcgu.o")).unwrap();
        std::fs::remove_file(dir.path().join("b.rcgu.o")).unwrap();
        assert!(objects(dir.path()).is_err());
    }
}
