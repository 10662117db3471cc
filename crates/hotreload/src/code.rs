//! Where code lives in this process, for checking redirects before any is written: the
//! program's own executable text, and the code segments of each linked patch the
//! agent mapped. A redirect is written only from an entry in one of these to an entry
//! in the patch being loaded; a message naming any other address is refused.

use crate::redirect::{Site, JUMP_LEN};
use hotreload_protocol::message::{Redirect, Refusal};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// For each entry that redirects lead to now, the entries that jump there. When that
/// entry is redirected in turn, they are rewritten with it, so every older copy of a
/// function keeps reaching the newest in one jump while the tool names only the
/// newest copy: a request stays the size of what changed, however long the session.
static LEADS: Mutex<BTreeMap<u64, BTreeSet<u64>>> = Mutex::new(BTreeMap::new());

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

/// The sites that write `redirects`, each checked: its old entry lies, with the whole
/// jump, in the program's code or an earlier patch's, and its new entry in
/// `new_code`, the code of the patch being loaded. Each redirect also rewrites the
/// entries that lead to its old entry now (earlier copies, checked when first
/// written); a site named twice is written once.
pub(crate) fn sites(redirects: &[Redirect], new_code: &[(u64, u64)]) -> Result<Vec<Site>, Refusal> {
    if redirects.is_empty() {
        return Ok(Vec::new());
    }
    let mut old_code = program_code();
    old_code.extend(PATCHES.lock().unwrap_or_else(|e| e.into_inner()).iter().copied());
    let inside = |ranges: &[(u64, u64)], at: u64, len: u64| ranges.iter().any(|&(s, e)| at >= s && at + len <= e);
    let leads = LEADS.lock().unwrap_or_else(|e| e.into_inner());
    let mut written = BTreeSet::new();
    let mut sites = Vec::new();
    for r in redirects {
        if !inside(&old_code, r.from, JUMP_LEN) {
            return Err(Refusal::invalid(format!("`{}`: {:#x} is not in the program's code", r.name, r.from)));
        }
        if !inside(new_code, r.to, 1) {
            return Err(Refusal::invalid(format!("`{}`: {:#x} is not in the patch's code", r.name, r.to)));
        }
        let earlier = leads.get(&r.from).into_iter().flatten().copied();
        for from in std::iter::once(r.from).chain(earlier).filter(|&f| written.insert(f)) {
            let site = Site::jump(from, r.to)
                .ok_or_else(|| Refusal::invalid(format!("`{}`: the new code is out of a jump's reach", r.name)))?;
            sites.push(site);
        }
    }
    Ok(sites)
}

/// Records `redirects` as written: their old entries, and every entry that led to
/// them, now lead to their new ones.
pub(crate) fn redirected(redirects: &[Redirect]) {
    let mut leads = LEADS.lock().unwrap_or_else(|e| e.into_inner());
    for r in redirects {
        let mut moved = leads.remove(&r.from).unwrap_or_default();
        moved.insert(r.from);
        leads.entry(r.to).or_default().extend(moved);
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
        let redirect = |from, to| Redirect { name: "f".into(), from, to };
        assert_eq!(sites(&[redirect(entry, entry + 128)], &patch).unwrap().len(), 1);
        let stack = 0u8;
        let err = sites(&[redirect(&stack as *const u8 as u64, entry + 128)], &patch).unwrap_err();
        assert!(err.reason.contains("not in the program's code"), "{err:?}");
        let err = sites(&[redirect(entry, entry + 8192)], &patch).unwrap_err();
        assert!(err.reason.contains("not in the patch's code"), "{err:?}");
    }

    #[test]
    fn redirecting_the_newest_copy_rewrites_every_entry_that_led_to_it() {
        // Three "generations" of one function, all inside this executable's code.
        let base = redirecting_the_newest_copy_rewrites_every_entry_that_led_to_it as *const () as u64;
        let (program, first, second, third) = (base, base + 256, base + 512, base + 768);
        let patch = [(base + 128, base + 4096)];
        let redirect = |from, to| Redirect { name: "f".into(), from, to };
        let at = |sites: Vec<Site>| sites.iter().map(|s| s.at).collect::<Vec<_>>();
        assert_eq!(at(sites(&[redirect(program, first)], &patch).unwrap()), [program]);
        redirected(&[redirect(program, first)]);
        assert_eq!(at(sites(&[redirect(first, second)], &patch).unwrap()), [first, program]);
        redirected(&[redirect(first, second)]);
        // Each site jumps to the newest copy: one jump, not a chain.
        let last = sites(&[redirect(second, third)], &patch).unwrap();
        assert_eq!(at(last.clone()), [second, program, first]);
        assert!(last.iter().all(|s| Site::jump(s.at, third) == Some(*s)));
        // A tool naming the older copies too writes each site once.
        let named = [redirect(program, third), redirect(first, third), redirect(second, third)];
        assert_eq!(sites(&named, &patch).unwrap().len(), 3);
    }
}
