//! What makes a signature hot-able, and the record hash of one that is.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::visit_mut::VisitMut;
use syn::{FnArg, ReturnType, Signature, Type};

pub use hotreload_protocol::rules::not_hot_reason;

/// Does `Self` (the type) appear anywhere in these tokens?
pub fn mentions_self_type(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tt| match tt {
        proc_macro2::TokenTree::Ident(i) => i == "Self",
        proc_macro2::TokenTree::Group(g) => mentions_self_type(g.stream()),
        _ => false,
    })
}

/// Replaces the `Self` type with a concrete type, so forwarders can live outside the impl.
pub struct ReplaceSelf<'a>(pub &'a Type);

impl VisitMut for ReplaceSelf<'_> {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::Path(p) = ty {
            if p.qself.is_none() && p.path.is_ident("Self") {
                *ty = self.0.clone();
                return;
            }
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }

    fn visit_path_mut(&mut self, path: &mut syn::Path) {
        // `Self::Assoc` in a path: rewrite the leading segment as `<Ty>::Assoc` is not
        // expressible on a plain path, so only the type form above is handled.
        syn::visit_mut::visit_path_mut(self, path);
    }
}

/// Turns every named lifetime into `'static`, so a type can be named in a `static`'s
/// initialiser, where the function's lifetimes are not in scope. Sizes do not change.
struct StaticLifetimes;

impl VisitMut for StaticLifetimes {
    fn visit_lifetime_mut(&mut self, lt: &mut syn::Lifetime) {
        if lt.ident != "static" {
            *lt = syn::Lifetime::new("'static", lt.span());
        }
    }

    fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
        r.lifetime = Some(syn::Lifetime::new("'static", Span::call_site()));
        syn::visit_mut::visit_type_reference_mut(self, r);
    }
}

/// The parameter types of a signature, receiver included, with `Self` made concrete.
pub fn param_types(sig: &Signature, self_ty: Option<&Type>) -> Vec<Type> {
    sig.inputs
        .iter()
        .map(|input| {
            let mut ty: Type = match input {
                FnArg::Receiver(r) => (*r.ty).clone(),
                FnArg::Typed(t) => (*t.ty).clone(),
            };
            if let Some(self_ty) = self_ty {
                ReplaceSelf(self_ty).visit_type_mut(&mut ty);
            }
            ty
        })
        .collect()
}

/// The return type with `Self` made concrete (`()` when there is none).
pub fn return_type(sig: &Signature, self_ty: Option<&Type>) -> Type {
    let mut ty: Type = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    if let Some(self_ty) = self_ty {
        ReplaceSelf(self_ty).visit_type_mut(&mut ty);
    }
    ty
}

/// Whitespace-free token text: the same for the macro and for the tool's source scan.
pub fn normalised(tokens: impl ToTokens) -> String {
    tokens.to_token_stream().to_string().chars().filter(|c| !c.is_whitespace()).collect()
}

/// A constant expression for the record's signature hash: the normalised signature
/// text, then size and alignment of every parameter and return type and of what each
/// reference or `Box` points to when that is sized.
pub fn hash_expr(sig: &Signature, params: &[Type], ret: &Type) -> TokenStream {
    let text = format!(
        "{}{}fn({})->{}",
        if sig.unsafety.is_some() { "unsafe " } else { "" },
        sig.abi.as_ref().map(normalised).unwrap_or_default(),
        params.iter().map(normalised).collect::<Vec<_>>().join(","),
        normalised(ret),
    );
    let text_hash = hotreload_protocol::record::fnv1a(text.as_bytes());
    let mut measured = Vec::new();
    for ty in params.iter().chain(std::iter::once(ret)) {
        let mut ty = ty.clone();
        StaticLifetimes.visit_type_mut(&mut ty);
        if let Some(pointee) = sized_pointee(&ty) {
            measured.push(pointee.clone());
        }
        measured.push(ty);
    }
    let sizes = measured.iter().map(|ty| {
        quote! { ::core::mem::size_of::<#ty>(), ::core::mem::align_of::<#ty>() }
    });
    quote! { __hotreload_rt::__rt::signature_hash(#text_hash, &[#(#sizes),*]) }
}

/// What a reference, raw pointer or `Box` points to, when that is syntactically sized.
fn sized_pointee(ty: &Type) -> Option<&Type> {
    let inner = match ty {
        Type::Reference(r) => &*r.elem,
        Type::Ptr(p) => &*p.elem,
        Type::Path(p) => {
            let last = p.path.segments.last()?;
            if last.ident != "Box" {
                return None;
            }
            match &last.arguments {
                syn::PathArguments::AngleBracketed(a) => match a.args.first()? {
                    syn::GenericArgument::Type(t) => t,
                    _ => return None,
                },
                _ => return None,
            }
        }
        _ => return None,
    };
    match inner {
        Type::Slice(_) | Type::TraitObject(_) | Type::ImplTrait(_) => None,
        Type::Path(p) if p.path.is_ident("str") => None,
        Type::Path(p)
            if p.path.segments.last().is_some_and(|s| s.ident == "Path" || s.ident == "OsStr" || s.ident == "CStr") =>
        {
            None
        }
        _ => Some(inner),
    }
}

/// For a method taking `&self`/`&mut self` with an elided lifetime, names that lifetime
/// `'__hr_self` in the receiver and in every elided place of the return type; other
/// signatures come back unchanged. Returns the forwarder's parameters, return type and
/// generics.
pub fn tie_elided_to_receiver(
    sig: &Signature,
    mut params: Vec<Type>,
    mut ret: Type,
) -> (Vec<Type>, Type, syn::Generics) {
    let mut generics = sig.generics.clone();
    let elided_ref_receiver = matches!(
        sig.receiver(),
        Some(r) if r.reference.as_ref().is_some_and(|(_, lt)| lt.is_none())
    );
    if !elided_ref_receiver {
        return (params, ret, generics);
    }
    let lt = syn::Lifetime::new("'__hr_self", Span::call_site());
    if let Type::Reference(r) = &mut params[0] {
        r.lifetime = Some(lt.clone());
    }
    NameElided(&lt).visit_type_mut(&mut ret);
    generics.params.insert(0, syn::parse_quote!(#lt));
    (params, ret, generics)
}

struct NameElided<'a>(&'a syn::Lifetime);

impl VisitMut for NameElided<'_> {
    fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
        if r.lifetime.is_none() {
            r.lifetime = Some(self.0.clone());
        }
        syn::visit_mut::visit_type_reference_mut(self, r);
    }

    fn visit_lifetime_mut(&mut self, lt: &mut syn::Lifetime) {
        if lt.ident == "_" {
            *lt = self.0.clone();
        }
    }

    fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {
        // Elision inside a fn pointer type is its own.
    }
}

/// The type with every named lifetime but `'static` replaced by `'_`, for use in a
/// nested function's body where the outer function's lifetimes are not in scope.
pub fn erase_lifetimes(ty: &Type) -> Type {
    struct Erase;
    impl VisitMut for Erase {
        fn visit_lifetime_mut(&mut self, lt: &mut syn::Lifetime) {
            if lt.ident != "static" {
                *lt = syn::Lifetime::new("'_", lt.span());
            }
        }
    }
    let mut ty = ty.clone();
    Erase.visit_type_mut(&mut ty);
    ty
}
