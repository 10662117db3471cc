//! Which `#[cfg]`s the program's build has on, so the source scan sees what the
//! compiler sees: of two functions `#[cfg(debug_assertions)]` and
//! `#[cfg(not(debug_assertions))]`, only the one that is compiled.

use std::collections::BTreeSet;
use std::process::Command;
use syn::punctuated::Punctuated;
use syn::{Attribute, Meta, Token};

/// The target's cfgs ([`Cfg::for_build`]), read by the first use (the source scan's
/// thread, once the program's first build is done: `rustc --print cfg` beside the
/// build slowed a small workspace's start by ~13 ms on 2 cores); later uses wait for it.
#[derive(Debug)]
pub struct PendingCfg {
    /// The rustc to ask.
    rustc: String,
    /// Whether `debug_assertions` is on.
    debug_assertions: bool,
    cfg: std::sync::OnceLock<Cfg>,
}

impl PendingCfg {
    /// The cfgs of `rustc` (see [`Cfg::for_build`]), not read yet.
    pub fn new(rustc: String, debug_assertions: bool) -> PendingCfg {
        PendingCfg { rustc, debug_assertions, cfg: std::sync::OnceLock::new() }
    }

    /// The cfgs, read on first use (only the `RUSTFLAGS` ones if rustc failed).
    pub fn get(&self) -> &Cfg {
        self.cfg.get_or_init(|| Cfg::for_build(&self.rustc, self.debug_assertions))
    }
}

/// A set of active cfgs: names (`unix`, `debug_assertions`) and name-value pairs
/// (`target_os = "linux"`, `feature = "big"`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cfg {
    names: BTreeSet<String>,
    pairs: BTreeSet<(String, String)>,
}

impl Cfg {
    /// The target's cfgs as `rustc --print cfg` gives them (with `debug_assertions`
    /// when `debug_assertions` is true), plus the user's `--cfg` flags from
    /// `RUSTFLAGS`. Without a working rustc: only the flags.
    pub fn for_build(rustc: &str, debug_assertions: bool) -> Cfg {
        let mut cfg = Cfg::default();
        let mut cmd = Command::new(rustc);
        cmd.args(["--print", "cfg"]);
        if debug_assertions {
            cmd.args(["-C", "debug-assertions=on"]);
        }
        if let Ok(out) = cmd.output() {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                cfg.insert(line);
            }
        }
        let flags = std::env::var("RUSTFLAGS").unwrap_or_default();
        let mut words = flags.split_whitespace();
        while let Some(word) = words.next() {
            if word == "--cfg" {
                if let Some(value) = words.next() {
                    cfg.insert(value);
                }
            }
        }
        cfg
    }

    /// This set with `feature = "…"` on for each of `features`.
    pub fn with_features<'a>(&self, features: impl IntoIterator<Item = &'a str>) -> Cfg {
        let mut cfg = self.clone();
        cfg.pairs.extend(features.into_iter().map(|f| ("feature".to_string(), f.to_string())));
        cfg
    }

    /// Adds `name` or `name="value"`.
    fn insert(&mut self, spec: &str) {
        match spec.split_once('=') {
            Some((key, value)) => {
                self.pairs.insert((key.trim().into(), value.trim().trim_matches('"').into()));
            }
            None => {
                self.names.insert(spec.trim().into());
            }
        }
    }

    /// Whether every `#[cfg(…)]` among `attrs` holds. A predicate that cannot be read
    /// counts as holding: rustc reports it.
    pub fn enabled(&self, attrs: &[Attribute]) -> bool {
        attrs.iter().filter(|a| a.path().is_ident("cfg")).all(|a| a.parse_args::<Meta>().is_ok_and(|m| self.holds(&m)))
    }

    /// The attributes `#[cfg_attr(…)]`s among `attrs` add under this cfg.
    pub fn expanded_attrs(&self, attrs: &[Attribute]) -> Vec<Meta> {
        let mut out = Vec::new();
        for attr in attrs.iter().filter(|a| a.path().is_ident("cfg_attr")) {
            let Ok(list) = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) else { continue };
            let mut parts = list.into_iter();
            if parts.next().is_some_and(|predicate| self.holds(&predicate)) {
                out.extend(parts);
            }
        }
        out
    }

    /// Evaluates one predicate: `name`, `name = "value"`, `all(…)`, `any(…)`, `not(…)`.
    pub fn holds(&self, predicate: &Meta) -> bool {
        match predicate {
            Meta::Path(path) => path.get_ident().is_some_and(|i| self.names.contains(&i.to_string())),
            Meta::NameValue(nv) => {
                let key = nv.path.get_ident().map(ToString::to_string).unwrap_or_default();
                let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(value), .. }) = &nv.value else { return false };
                self.pairs.contains(&(key, value.value()))
            }
            Meta::List(list) => {
                let Ok(inner) = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) else {
                    return true;
                };
                match list.path.get_ident().map(ToString::to_string).as_deref() {
                    Some("all") => inner.iter().all(|m| self.holds(m)),
                    Some("any") => inner.iter().any(|m| self.holds(m)),
                    Some("not") => !inner.iter().any(|m| self.holds(m)),
                    _ => false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(text: &str) -> Vec<Attribute> {
        syn::parse_str::<syn::ItemFn>(&format!("{text} fn f() {{}}")).unwrap().attrs
    }

    fn debug() -> Cfg {
        let mut cfg = Cfg::default();
        for spec in ["debug_assertions", "unix", "target_os=\"linux\"", "feature=\"big\""] {
            cfg.insert(spec);
        }
        cfg
    }

    #[test]
    fn predicates_are_evaluated() {
        let cfg = debug();
        assert!(cfg.enabled(&attrs("#[cfg(debug_assertions)]")));
        assert!(!cfg.enabled(&attrs("#[cfg(not(debug_assertions))]")));
        assert!(cfg.enabled(&attrs("#[cfg(all(unix, target_os = \"linux\", feature = \"big\"))]")));
        assert!(!cfg.enabled(&attrs("#[cfg(any(windows, feature = \"small\"))]")));
        assert!(!cfg.enabled(&attrs("#[cfg(test)]")));
        assert!(cfg.enabled(&attrs("#[inline]")));
        assert!(!cfg.enabled(&attrs("#[cfg(unix)] #[cfg(windows)]")));
    }

    #[test]
    fn cfg_attr_adds_attributes_when_its_predicate_holds() {
        let cfg = debug();
        let added = cfg.expanded_attrs(&attrs("#[cfg_attr(debug_assertions, hotreload::hot, inline)]"));
        assert_eq!(added.len(), 2);
        assert!(added[0].path().segments.last().is_some_and(|s| s.ident == "hot"));
        assert!(cfg.expanded_attrs(&attrs("#[cfg_attr(windows, hotreload::hot)]")).is_empty());
    }
}
