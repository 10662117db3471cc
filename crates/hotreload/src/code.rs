//! Where code lives in this process, for checking redirects before any is written: the
//! program's own executable text, and the code segments of each linked patch the
//! agent mapped. A redirect is written only from an entry in one of these to an entry
//! in the patch being loaded; a message naming any other address is refused.

use crate::redirect::{Site, JUMP_LEN};
use hotreload_protocol::message::{Redirect, Refusal};
use std::sync::Mutex;

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
/// `new_code`, the code of the patch being loaded.
pub(crate) fn sites(redirects: &[Redirect], new_code: &[(u64, u64)]) -> Result<Vec<Site>, Refusal> {
    if redirects.is_empty() {
        return Ok(Vec::new());
    }
    let mut old_code = program_code();
    old_code.extend(PATCHES.lock().unwrap_or_else(|e| e.into_inner()).iter().copied());
    let inside = |ranges: &[(u64, u64)], at: u64, len: u64| ranges.iter().any(|&(s, e)| at >= s && at + len <= e);
    redirects
        .iter()
        .map(|r| {
            if !inside(&old_code, r.from, JUMP_LEN) {
                return Err(Refusal::invalid(format!("`{}`: {:#x} is not in the program's code", r.name, r.from)));
            }
            if !inside(new_code, r.to, 1) {
                return Err(Refusal::invalid(format!("`{}`: {:#x} is not in the patch's code", r.name, r.to)));
            }
            Site::jump(r.from, r.to)
                .ok_or_else(|| Refusal::invalid(format!("`{}`: the new code is out of a jump's reach", r.name)))
        })
        .collect()
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
}
