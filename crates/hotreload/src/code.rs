//! Where code lives in this process, for checking redirects before any is written: the
//! program's own executable text, and the code segments of each linked patch the
//! agent mapped. A redirect is written only from an entry in one of these to an entry
//! in the patch being loaded; a message naming any other address is refused.

use crate::redirect::{Site, JUMP_LEN};
use hotreload_protocol::message::{Redirect, Refusal};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// Where every copy of a redirected function leads. Each function has an *anchor*: the
/// first entry ever redirected (the program's own copy, or the first copy of a function
/// a patch added), which jumps to the newest copy; every other earlier copy jumps to
/// the anchor. A reload then writes two entries per changed function — the anchor, and
/// the copy that was the newest until now — whatever the number of generations, and
/// any earlier copy reaches the newest in at most two jumps (a chain that never grows).
/// Writing every earlier copy instead cost 10,000 sites (2.9 MB of code pages copied
/// and written) at the tenth reload of a 1,000-function crate.
#[derive(Default)]
struct Redirects {
    /// For each copy redirected at least once, or that is a function's newest copy,
    /// its function's anchor.
    anchor_of: HashMap<u64, u64>,
    /// For each anchor, the newest copy it jumps to.
    newest: HashMap<u64, u64>,
}

/// `None` until the first redirect (a `HashMap` cannot be made in a `static`).
static REDIRECTS: Mutex<Option<Redirects>> = Mutex::new(None);

/// Code ranges of committed patches, `[start, end)`.
static PATCHES: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// Records a committed patch's code ranges.
pub(crate) fn add_patch(ranges: &[(u64, u64)]) {
    PATCHES.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(ranges);
}

/// The executable segments of the program's own executable, `[start, end)`.
fn program_code() -> Vec<(u64, u64)> {
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _: libc::size_t, out: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `dl_iterate_phdr` passes a valid info for the object, and `out` is the
        // vector given below. The first object is the executable.
        unsafe {
            let ranges = &mut *(out as *mut Vec<(u64, u64)>);
            let info = &*info;
            for i in 0..info.dlpi_phnum as usize {
                let ph = &*info.dlpi_phdr.add(i);
                if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_X != 0 {
                    let start = info.dlpi_addr + ph.p_vaddr;
                    ranges.push((start, start + ph.p_memsz));
                }
            }
        }
        1 // the executable only
    }
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    // SAFETY: the callback only reads the headers it is given and writes `ranges`.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut ranges as *mut Vec<(u64, u64)>).cast()) };
    ranges
}

/// Where the program's own code starts: patches are mapped within reach of it (see
/// [`hotreload_protocol::image::out_of_range`]).
pub(crate) fn program_start() -> u64 {
    program_code().iter().map(|r| r.0).min().unwrap_or(0)
}

/// The sites that write `redirects`, each checked: its old entry lies, with the whole
/// jump, in the program's code or an earlier patch's, and its new entry in
/// `new_code`, the code of the patch being loaded. Each redirect writes its function's
/// anchor (see [`Redirects`]) to the new entry, and the copy that was the newest until
/// now to the anchor; a site named twice is written once.
pub(crate) fn sites(redirects: &[Redirect], new_code: &[(u64, u64)]) -> Result<Vec<Site>, Refusal> {
    if redirects.is_empty() {
        return Ok(Vec::new());
    }
    let mut old_code = program_code();
    old_code.extend(PATCHES.lock().unwrap_or_else(|e| e.into_inner()).iter().copied());
    let inside = |ranges: &[(u64, u64)], at: u64, len: u64| ranges.iter().any(|&(s, e)| at >= s && at + len <= e);
    let mut known = REDIRECTS.lock().unwrap_or_else(|e| e.into_inner());
    let known = known.get_or_insert_with(Redirects::default);
    let mut written = BTreeSet::new();
    let mut sites = Vec::new();
    for r in redirects {
        if !inside(&old_code, r.from, JUMP_LEN) {
            return Err(Refusal::invalid(format!("`{}`: {:#x} is not in the program's code", r.name, r.from)));
        }
        if !inside(new_code, r.to, 1) {
            return Err(Refusal::invalid(format!("`{}`: {:#x} is not in the patch's code", r.name, r.to)));
        }
        let out_of_reach = || Refusal::invalid(format!("`{}`: the new code is out of a jump's reach", r.name));
        let anchor = known.anchor_of.get(&r.from).copied().unwrap_or(r.from);
        if written.insert(anchor) {
            sites.push(Site::jump(anchor, r.to).ok_or_else(out_of_reach)?);
        }
        // The copy that was the newest: from now on it leads to the anchor, like every
        // older one. (Already in the code checked above: the tool names it.)
        let previous = known.newest.get(&anchor).copied().filter(|&p| p != anchor);
        for copy in previous.into_iter().chain([r.from]).filter(|&c| c != anchor) {
            if written.insert(copy) {
                sites.push(Site::jump(copy, anchor).ok_or_else(out_of_reach)?);
            }
        }
    }
    Ok(sites)
}

/// Records `redirects` as written: each function's anchor now leads to its new entry.
pub(crate) fn redirected(redirects: &[Redirect]) {
    let mut known = REDIRECTS.lock().unwrap_or_else(|e| e.into_inner());
    let known = known.get_or_insert_with(Redirects::default);
    for r in redirects {
        let anchor = known.anchor_of.get(&r.from).copied().unwrap_or(r.from);
        known.anchor_of.insert(anchor, anchor);
        known.anchor_of.insert(r.from, anchor);
        known.anchor_of.insert(r.to, anchor);
        known.newest.insert(anchor, r.to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_from_outside_the_programs_code_or_to_outside_the_patch_are_refused() {
        let main_code = program_code();
        assert!(!main_code.is_empty());
        let entry = sites as *const () as u64;
        let patch = [(entry + 64, entry + 4096)];
        let redirect = |from, to| Redirect { name: "f".into(), from, to, len: 0 };
        assert_eq!(sites(&[redirect(entry, entry + 128)], &patch).unwrap().len(), 1);
        let stack = 0u8;
        let err = sites(&[redirect(&stack as *const u8 as u64, entry + 128)], &patch).unwrap_err();
        assert!(err.reason.contains("not in the program's code"), "{err:?}");
        let err = sites(&[redirect(entry, entry + 8192)], &patch).unwrap_err();
        assert!(err.reason.contains("not in the patch's code"), "{err:?}");
    }

    #[test]
    fn every_copy_reaches_the_newest_through_the_anchor_and_a_reload_writes_two_entries() {
        // Four "generations" of one function, all inside this executable's code.
        let base = every_copy_reaches_the_newest_through_the_anchor_and_a_reload_writes_two_entries as *const () as u64;
        let (program, first, second, third) = (base, base + 256, base + 512, base + 768);
        let patch = [(base + 128, base + 4096)];
        let redirect = |from, to| Redirect { name: "f".into(), from, to, len: 0 };
        let jumps = |sites: Vec<Site>| {
            sites
                .iter()
                .map(|s| {
                    (
                        s.at,
                        s.at.wrapping_add(5).wrapping_add(i32::from_le_bytes(s.bytes[1..].try_into().unwrap()) as u64),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(jumps(sites(&[redirect(program, first)], &patch).unwrap()), [(program, first)]);
        redirected(&[redirect(program, first)]);
        // The program's entry is the anchor: it moves on, and the copy it led to leads back to it.
        assert_eq!(jumps(sites(&[redirect(first, second)], &patch).unwrap()), [(program, second), (first, program)]);
        redirected(&[redirect(first, second)]);
        // However many generations, two entries: `first` already leads to the anchor.
        assert_eq!(jumps(sites(&[redirect(second, third)], &patch).unwrap()), [(program, third), (second, program)]);
        redirected(&[redirect(second, third)]);
        // A tool naming the older copies too writes each site once, none to itself.
        let fourth = base + 1024;
        let named = [redirect(program, fourth), redirect(first, fourth), redirect(third, fourth)];
        let written = jumps(sites(&named, &patch).unwrap());
        assert_eq!(written, [(program, fourth), (third, program), (first, program)]);
    }

    /// Sites of a function that a patch added: its first copy is its anchor.
    #[test]
    fn a_function_a_patch_added_is_anchored_at_its_first_copy() {
        let base = a_function_a_patch_added_is_anchored_at_its_first_copy as *const () as u64;
        let (added, next, last) = (base + 64, base + 320, base + 576);
        let patch = [(base + 128, base + 4096)];
        let redirect = |from, to| Redirect { name: "g".into(), from, to, len: 0 };
        assert_eq!(sites(&[redirect(added, next)], &patch).unwrap().iter().map(|s| s.at).collect::<Vec<_>>(), [added]);
        redirected(&[redirect(added, next)]);
        let at: Vec<u64> = sites(&[redirect(next, last)], &patch).unwrap().iter().map(|s| s.at).collect();
        assert_eq!(at, [added, next]);
    }
}
