//! The value of [`ENV_FULL_FORM`](crate::ENV_FULL_FORM): which hot functions a linked
//! patch compiles whole.
//!
//! The attribute knows a function only by its name and impl (`::score`,
//! `::Counter~Named::name`), not by its module, so the tool lists every `::`-suffix of
//! each id below the crate; more whole forms than needed only cost compile time.
//! Suffixes are separated by commas.

use std::collections::{BTreeSet, HashSet};

/// The value for the function ids `ids` of crate `crate_name` (`logic::inner::score`).
pub fn encode<'a>(crate_name: &str, ids: impl IntoIterator<Item = &'a String>) -> String {
    let mut tails = BTreeSet::new();
    for id in ids {
        let rest = id.strip_prefix(crate_name).unwrap_or(id);
        let mut at = 0;
        while let Some(found) = rest[at..].find("::") {
            tails.insert(&rest[at + found..]);
            at += found + 2;
        }
    }
    tails.into_iter().collect::<Vec<_>>().join(",")
}

/// The suffixes in a value, as the attribute looks its functions up.
pub fn decode(value: &str) -> HashSet<String> {
    value.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_suffix_is_listed_and_read_back() {
        let ids = ["logic::score", "logic::inner::Counter~Named::name"].map(String::from);
        let value = encode("logic", &ids);
        assert_eq!(value, "::Counter~Named::name,::inner::Counter~Named::name,::name,::score");
        assert!(decode(&value).contains("::Counter~Named::name"));
        assert_eq!(encode("logic", &[]), "");
        assert!(decode("").is_empty());
    }
}
