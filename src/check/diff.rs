//! What a patch changes against the code the program runs.

use crate::check::library::Library;
use hotreload_protocol::record::crate_of;
use std::collections::{BTreeMap, BTreeSet};

/// One crate's patch against the running program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatchDiff {
    /// Functions the program has, in the patch with the same signature.
    pub updated: Vec<String>,
    /// Functions new in the patch.
    pub added: Vec<String>,
    /// Functions the program has that the patch lacks; callers keep the old code.
    pub removed: Vec<String>,
    /// Functions whose signature or type layout differs: the patch cannot apply.
    pub refused: Vec<String>,
}

impl PatchDiff {
    /// Whether the patch can be applied.
    pub fn applicable(&self) -> bool {
        self.refused.is_empty()
    }
}

/// Compares `library`'s functions of `crate_name` with the program's: `known` holds the
/// signature of every function the program has ever had (its slots stay), `current`
/// the ids in the generation it runs now.
pub fn diff(
    known: &BTreeMap<String, u64>,
    current: &BTreeSet<String>,
    crate_name: &str,
    library: &Library,
) -> PatchDiff {
    let mut out = PatchDiff::default();
    let new: BTreeSet<&str> =
        library.functions.keys().map(String::as_str).filter(|id| crate_of(id) == crate_name).collect();
    for id in &new {
        let record = &library.functions[*id];
        match known.get(*id) {
            None => out.added.push(id.to_string()),
            Some(signature) if *signature == record.signature && !current.contains(*id) => {
                out.added.push(id.to_string())
            }
            Some(signature) if *signature == record.signature => out.updated.push(id.to_string()),
            Some(_) => out.refused.push(id.to_string()),
        }
    }
    for id in current.iter().filter(|id| crate_of(id) == crate_name) {
        if !new.contains(id.as_str()) {
            out.removed.push(id.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotreload_protocol::record::Record;

    fn library(functions: &[(&str, u64)]) -> Library {
        Library { functions: functions.iter().map(|(id, sig)| (id.to_string(), Record::new(*sig, 1))).collect() }
    }

    #[test]
    fn updated_added_removed_and_refused() {
        let running: BTreeMap<String, u64> =
            [("a::f", 1), ("a::g", 2), ("a::h", 3), ("b::x", 9)].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let lib = library(&[("a::f", 1), ("a::g", 20), ("a::new", 4), ("b::x", 10)]);
        let current: BTreeSet<String> = running.keys().cloned().collect();
        let d = diff(&running, &current, "a", &lib);
        assert_eq!(d.updated, ["a::f"]);
        assert_eq!(d.refused, ["a::g"]);
        assert_eq!(d.added, ["a::new"]);
        assert_eq!(d.removed, ["a::h"]);
        assert!(!d.applicable());
        // Another crate's functions linked into the library are not this patch's business.
        let d = diff(&running, &current, "b", &library(&[("b::x", 9), ("a::g", 77)]));
        assert_eq!(d, PatchDiff { updated: vec!["b::x".into()], ..Default::default() });
    }
}
