//! What makes a function hot-able: the attribute expands only functions that pass, and
//! the tool reports the others inside hot items as "not hot", with the same reason.

use syn::visit::Visit;
use syn::{GenericParam, ReturnType, Signature};

/// Why a function with this signature cannot be hot, if it cannot.
pub fn not_hot_reason(sig: &Signature) -> Option<&'static str> {
    if sig.constness.is_some() {
        return Some("a `const fn` is evaluated at compile time");
    }
    if sig.asyncness.is_some() {
        return Some("an `async fn` returns a compiler-generated future whose layout changes with its body");
    }
    if sig.variadic.is_some() {
        return Some("variadic functions cannot be forwarded");
    }
    if sig.generics.params.iter().any(|p| !matches!(p, GenericParam::Lifetime(_))) {
        return Some("generic functions are compiled into their callers, one copy per type");
    }
    let mut finder = ImplTraitFinder(false);
    for input in &sig.inputs {
        finder.visit_fn_arg(input);
    }
    if finder.0 {
        return Some("`impl Trait` in argument position makes the function generic");
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        finder.visit_type(ty);
        if finder.0 {
            return Some("an `impl Trait` return type is a compiler-chosen type that can change with the body");
        }
    }
    None
}

struct ImplTraitFinder(bool);

impl<'ast> Visit<'ast> for ImplTraitFinder {
    fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
        self.0 = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_names_its_reason() {
        let reason = |text: &str| not_hot_reason(&syn::parse_str::<syn::ItemFn>(text).unwrap().sig);
        assert_eq!(reason("fn f(x: u32) -> u32 { x }"), None);
        assert_eq!(reason("fn f<'a>(x: &'a str) -> &'a str { x }"), None);
        assert!(reason("const fn f() {}").unwrap().contains("const fn"));
        assert!(reason("async fn f() {}").unwrap().contains("async fn"));
        assert!(reason("unsafe extern \"C\" fn f(x: i32, ...) {}").unwrap().contains("variadic"));
        assert!(reason("fn f<T>(t: T) {}").unwrap().contains("generic"));
        assert!(reason("fn f(t: impl Copy) {}").unwrap().contains("argument position"));
        assert!(reason("fn f() -> impl Copy { 1 }").unwrap().contains("return type"));
    }
}
