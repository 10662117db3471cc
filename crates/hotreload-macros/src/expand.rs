//! Turning items into their hot form.

use crate::signature::{self, hash_expr, not_hot_reason, param_types, return_type};
use hotreload_protocol::record::{FORWARDER_PREFIX, RECORD_PREFIX};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, Item, ItemFn, ItemImpl, ItemMod, Pat, Signature, Type};

/// Which functions get the whole hot form. `cargo hotreload` compiles a linked patch
/// with `hotreload_protocol::ENV_FULL_FORM` set to the ids (module-relative, `::score`,
/// `::Counter::bump`) of the functions that changed: the others become *stubs*, a
/// wrapper calling through the program's slot without a body, forwarder export,
/// record or table row, which is most of what a patch build would otherwise compile.
/// Unset (every other build), every function gets the whole form.
#[derive(Clone, Debug, Default)]
pub struct Full(Option<std::collections::HashSet<String>>);

impl Full {
    /// From the environment of the compiler running the macro.
    pub fn from_env() -> Full {
        Full(
            std::env::var(hotreload_protocol::ENV_FULL_FORM)
                .ok()
                .map(|list| hotreload_protocol::full_form::decode(&list)),
        )
    }

    /// Only these ids get the whole form.
    #[cfg(test)]
    fn only(ids: &[&str]) -> Full {
        Full(Some(ids.iter().map(|s| s.to_string()).collect()))
    }

    fn is_full(&self, id_tail: &str) -> bool {
        self.0.as_ref().is_none_or(|ids| ids.contains(id_tail))
    }
}

/// Entry point: both forms of the item, the `hotreload` crate picks one.
pub fn hot(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    hot_with(args, input, &Full::from_env())
}

/// [`hot`] with the choice of whole forms given.
pub fn hot_with(args: TokenStream, input: TokenStream, full: &Full) -> syn::Result<TokenStream> {
    if !args.is_empty() {
        return Err(syn::Error::new(args.span(), "`#[hotreload::hot]` takes no arguments"));
    }
    let item: Item = syn::parse2(input.clone())?;
    let hot = match item {
        Item::Fn(f) => free_fn(f, full)?,
        Item::Impl(i) => impl_block(i, full),
        Item::Mod(m) => module(m, full)?,
        other => {
            return Err(syn::Error::new(
                other.span(),
                "`#[hotreload::hot]` goes on a `fn`, an `impl` block or an inline `mod`",
            ))
        }
    };
    if full.0.is_some() {
        // Only a linked patch build sets the list, and it is a hot build: no cold copy
        // for `__hot_or_cold!` to match and throw away.
        return Ok(hot);
    }
    let runtime = runtime_name();
    Ok(quote! { #runtime::__hot_or_cold! { { #hot } { #input } } })
}

/// How the calling crate names the runtime: as its manifest names the dependency
/// (`hotreload`, its library name, unless renamed), which the tool tells every build
/// it runs (`hotreload_protocol::ENV_RUNTIME_NAMES`). Only those builds expand `#[hot]`
/// (the runtime's `agent` feature), so without the variable the name is `hotreload`.
/// Paths start with it, never with `::`, which in an edition-2015 crate means that
/// crate's root; a macro or an `extern crate` path finds it in the extern prelude in
/// every edition.
fn runtime_name() -> proc_macro2::Ident {
    use hotreload_protocol::{ENV_RUNTIME_NAMES, RUNTIME_LIB};
    let told = std::env::var(ENV_RUNTIME_NAMES).ok().and_then(|names| {
        let krate = std::env::var("CARGO_CRATE_NAME").ok()?;
        names.split(',').find_map(|pair| Some(pair.split_once('=').filter(|(c, _)| *c == krate)?.1.to_string()))
    });
    let name = told.unwrap_or_else(|| RUNTIME_LIB.to_string());
    proc_macro2::Ident::new(&name, proc_macro2::Span::call_site())
}

/// A free function: an error if it cannot be hot, since the user asked for exactly this one.
fn free_fn(f: ItemFn, full: &Full) -> syn::Result<TokenStream> {
    if let Some(reason) = not_hot_reason(&f.sig) {
        return Err(syn::Error::new(
            f.sig.ident.span(),
            format!(
                "`{}` cannot be hot: {reason}; make a plain (non-generic, non-async, non-const) function \
                 that it calls hot instead, or remove `#[hotreload::hot]`",
                f.sig.ident
            ),
        ));
    }
    if f.sig.receiver().is_some() || signature::mentions_self_type(f.sig.to_token_stream()) {
        return Err(syn::Error::new(
            f.sig.ident.span(),
            "methods are made hot through their `impl` block: put `#[hotreload::hot]` on the `impl`",
        ));
    }
    Ok(hot_fn(&f.attrs, &f.vis, &f.sig, None, Body::Free(&f.block), full))
}

fn module(mut m: ItemMod, full: &Full) -> syn::Result<TokenStream> {
    let Some((_, items)) = m.content.take() else {
        return Err(syn::Error::new(
            m.span(),
            "`#[hotreload::hot]` on a module needs its items inline: `mod name { ... }`",
        ));
    };
    let items = items.into_iter().map(|item| match item {
        Item::Fn(f) if hot_able_free(&f) => hot_fn(&f.attrs, &f.vis, &f.sig, None, Body::Free(&f.block), full),
        Item::Impl(i) => impl_block(i, full),
        Item::Mod(inner) if inner.content.is_some() => module(inner, full).unwrap_or_else(|e| e.to_compile_error()),
        other => other.into_token_stream(),
    });
    let (attrs, vis, unsafety, ident) = (&m.attrs, &m.vis, &m.unsafety, &m.ident);
    Ok(quote! { #(#attrs)* #vis #unsafety mod #ident { #(#items)* } })
}

fn hot_able_free(f: &ItemFn) -> bool {
    not_hot_reason(&f.sig).is_none() && !signature::mentions_self_type(f.sig.to_token_stream())
}

/// An impl block: hot-able methods become trampolines; generic ones stay as they are.
fn impl_block(mut imp: ItemImpl, full: &Full) -> TokenStream {
    // A generic impl is compiled per instantiation: nothing in it can be hot.
    if !imp.generics.params.is_empty() || imp.defaultness.is_some() {
        return imp.into_token_stream();
    }
    let self_ty = (*imp.self_ty).clone();
    let trait_path = imp.trait_.as_ref().map(|(_, path, _)| path.clone());
    // A trait method of `Counter` for `Named` is `Counter~Named::name`.
    let id_tail = hotreload_protocol::record::impl_id(
        &self_ty.to_token_stream().to_string(),
        trait_path.as_ref().map(|p| p.to_token_stream().to_string()).as_deref(),
    );
    let bodies_trait = format_ident!(
        "__HotreloadBodies_{:016x}",
        hotreload_protocol::record::fnv1a(imp.to_token_stream().to_string().as_bytes())
    );

    let mut decls = Vec::new();
    let mut bodies = Vec::new();
    let mut converted = false;
    for item in &mut imp.items {
        let ImplItem::Fn(method) = item else { continue };
        if not_hot_reason(&method.sig).is_some() {
            continue;
        }
        let body_ident = format_ident!("__hot_body_{}", method.sig.ident);
        let mut body_sig = method.sig.clone();
        body_sig.ident = body_ident.clone();
        let mut decl_sig = body_sig.clone();
        for input in decl_sig.inputs.iter_mut() {
            match input {
                FnArg::Typed(t) => *t.pat = Pat::Verbatim(quote!(_)),
                // `mut self` binds mutably; `&mut self` is a reference type.
                FnArg::Receiver(r) if r.reference.is_none() => r.mutability = None,
                FnArg::Receiver(_) => {}
            }
        }
        let keep: Vec<_> =
            method.attrs.iter().filter(|a| a.path().is_ident("cfg") || a.path().is_ident("allow")).collect();
        let block = &method.block;
        let stub = !full.is_full(&format!("::{id_tail}::{}", method.sig.ident));
        if !stub {
            decls.push(quote! { #(#keep)* #decl_sig; });
            bodies.push(quote! { #(#keep)* #[inline(always)] #body_sig #block });
        }

        let call_target = quote! { <#self_ty as #bodies_trait>::#body_ident };
        let wrapper = hot_fn(
            &method.attrs,
            &method.vis,
            &method.sig,
            Some((&self_ty, &id_tail)),
            Body::Method(call_target),
            full,
        );
        *item = ImplItem::Verbatim(wrapper);
        converted = true;
    }
    if !converted {
        return imp.into_token_stream();
    }
    // The companion impl is emitted even when every method is a stub: impl blocks are
    // told apart by their order in the module, and that order is part of the symbol
    // names of every later impl's items, which a linked patch must share with the program.
    quote! {
        #imp
        #[doc(hidden)]
        #[allow(non_camel_case_types, clippy::all)]
        trait #bodies_trait { #(#decls)* }
        #[allow(clippy::all)]
        impl #bodies_trait for #self_ty { #(#bodies)* }
    }
}

enum Body<'a> {
    /// A free function's block, moved into a nested function.
    Free(&'a syn::Block),
    /// A path to the companion trait method holding a method's body.
    Method(TokenStream),
}

/// The trampoline for one function: wrapper with the original signature, forwarder,
/// record, slot and table entry; or, for a stub (see [`Full`]), the wrapper and slot
/// alone.
fn hot_fn(
    attrs: &[syn::Attribute],
    vis: &syn::Visibility,
    sig: &Signature,
    method_of: Option<(&Type, &str)>,
    body: Body<'_>,
    full: &Full,
) -> TokenStream {
    let parts = Parts::new(sig, method_of, &body);
    let block = if full.is_full(&parts.id_tail) { whole_form(&parts) } else { stub_form(&parts) };
    let wrapper_sig = &parts.wrapper_sig;
    quote! { #(#attrs)* #vis #wrapper_sig #block }
}

/// What both forms of a trampoline are made of.
struct Parts {
    /// `::name` or `::Type~Trait::name`: the id below the module.
    id_tail: String,
    /// The signature and layout hash expression.
    hash: TokenStream,
    /// `__hr0`, `__hr1`, ...: the wrapper's parameter names.
    args: Vec<syn::Ident>,
    /// The forwarder's parameter and return types (elided lifetimes spelled out).
    params: Vec<Type>,
    ret: Type,
    generics: syn::Generics,
    where_clause: Option<syn::WhereClause>,
    unsafety: Option<syn::token::Unsafe>,
    /// The forwarder's state as its nested `run` names it.
    state_ty: Type,
    /// The original signature, every parameter but the receiver named `__hrN`.
    wrapper_sig: Signature,
    /// The body as an inner function (free functions only), and the call of it.
    body_item: TokenStream,
    call: TokenStream,
    /// The call through the slot, and what returns its outcome.
    finish: TokenStream,
    /// How the crate names the runtime.
    runtime: syn::Ident,
    /// The slot's static.
    slot: syn::Ident,
}

impl Parts {
    fn new(sig: &Signature, method_of: Option<(&Type, &str)>, body: &Body<'_>) -> Parts {
        let self_ty = method_of.map(|(ty, _)| ty);
        let params = param_types(sig, self_ty);
        let ret = return_type(sig, self_ty);
        let hash = hash_expr(sig, &params, &ret);
        let name = sig.ident.to_string();
        let id_tail = match method_of {
            Some((_, tail)) => format!("::{tail}::{name}"),
            None => format!("::{name}"),
        };
        let args: Vec<_> = (0..params.len()).map(|i| format_ident!("__hr{}", i)).collect();
        // A forwarder is a free function, so a method's elided output lifetimes, which
        // tie to `self`, must be spelled out.
        let (params, ret, generics) = signature::tie_elided_to_receiver(sig, params, ret);
        // Lifetimes left to inference: the nested function cannot see the forwarder's.
        let state_ty = signature::erase_lifetimes(&syn::parse_quote! {
            (::core::option::Option<(#(#params,)*)>, ::core::option::Option<#ret>)
        });
        let (wrapper_sig, call_args) = wrapper(sig, &args);
        let (body_item, call) = body_call(sig, body, &args);
        let underscores = params.iter().map(|_| quote!(_));
        let unsafety = sig.unsafety;
        let call_slot = quote! { __hotreload_f(#(#call_args),*) };
        let call_slot = if unsafety.is_some() { quote!(unsafe { #call_slot }) } else { call_slot };
        let slot = format_ident!("{}", hotreload_protocol::image::SLOT_STATIC);
        let finish_call = quote_spanned! {sig.ident.span()=> __hotreload_rt::__rt::finish(#call_slot) };
        let finish = quote! {
            let __hotreload_f = __hotreload_forwarder as #unsafety fn(#(#underscores),*) -> _;
            // SAFETY: the slot only ever holds forwarders of this function id, whose
            // records (signature and layout) were checked equal before the switch.
            let __hotreload_f = unsafe { __hotreload_rt::__rt::reinterpret(__hotreload_f, #slot.get()) };
            #finish_call
        };
        Parts {
            id_tail,
            hash,
            args,
            params,
            ret,
            generics,
            where_clause: sig.generics.where_clause.clone(),
            unsafety,
            state_ty,
            wrapper_sig,
            body_item,
            call,
            finish,
            runtime: runtime_name(),
            slot,
        }
    }
}

/// The wrapper's signature: the receiver kept, every other parameter named, so that
/// patterns in the original signature need not be rebuilt; and the slot call's arguments.
fn wrapper(sig: &Signature, args: &[syn::Ident]) -> (Signature, Vec<TokenStream>) {
    let mut wrapper_sig = sig.clone();
    let mut call_args = Vec::new();
    for (i, input) in wrapper_sig.inputs.iter_mut().enumerate() {
        match input {
            FnArg::Receiver(r) => {
                if r.reference.is_none() {
                    r.mutability = None;
                }
                call_args.push(quote!(self));
            }
            FnArg::Typed(t) => {
                let ident = &args[i];
                *t.pat = Pat::Verbatim(quote!(#ident));
                call_args.push(quote!(#ident));
            }
        }
    }
    (wrapper_sig, call_args)
}

/// The body as an inner function (a free function's), and the call that runs it.
fn body_call(sig: &Signature, body: &Body<'_>, args: &[syn::Ident]) -> (TokenStream, TokenStream) {
    let (item, call) = match body {
        Body::Free(block) => {
            let mut body_sig = sig.clone();
            body_sig.ident = syn::Ident::new("__hotreload_body", Span::call_site());
            (quote! { #[inline(always)] #body_sig #block }, quote! { __hotreload_body(#(#args),*) })
        }
        Body::Method(target) => (quote! {}, quote! { #target(#(#args),*) }),
    };
    let call = if sig.unsafety.is_some() { quote!(unsafe { #call }) } else { call };
    (item, call)
}

/// A stub: the wrapper and a slot bound to the program's, which points at the current code.
fn stub_form(p: &Parts) -> TokenStream {
    let Parts { args, params, ret, generics, where_clause, unsafety, finish, runtime, slot, .. } = p;
    quote! {
        {
            extern crate #runtime as __hotreload_rt;
            #[allow(unused_variables)]
            #unsafety fn __hotreload_forwarder #generics (#(#args: #params),*) -> __hotreload_rt::__rt::Outcome<#ret> #where_clause {
                __hotreload_rt::__rt::stub_called()
            }
            static #slot: __hotreload_rt::__rt::Slot =
                __hotreload_rt::__rt::Slot::new(__hotreload_forwarder as *const ());
            #finish
        }
    }
}

/// The whole form: forwarder, record, slot and table row.
fn whole_form(p: &Parts) -> TokenStream {
    let Parts { id_tail, hash, args, params, ret, generics, where_clause, unsafety, state_ty, .. } = p;
    let Parts { body_item, call, finish, runtime, slot, .. } = p;
    let (fwd_name, rec_name) = (FORWARDER_PREFIX, RECORD_PREFIX);
    let section = hotreload_protocol::image::TABLE_SECTION;
    quote! {
        {
            // Every path below starts here: found under the manifest's name for the
            // runtime in every edition (see `runtime_name`), and shadowed by nothing.
            extern crate #runtime as __hotreload_rt;
            #body_item
            #[doc(hidden)]
            #[unsafe(export_name = concat!(#fwd_name, module_path!(), #id_tail))]
            #unsafety fn __hotreload_forwarder #generics (#(#args: #params),*) -> __hotreload_rt::__rt::Outcome<#ret> #where_clause {
                // The body runs in a nested, non-generic function, handed to a non-generic
                // `catch`: see `hotreload::__rt::catch` for why nothing here is generic.
                unsafe fn __hotreload_run(__hotreload_data: *mut ()) {
                    // SAFETY: `__hotreload_data` is the forwarder's `state` below.
                    let __hotreload_state = unsafe { &mut *(__hotreload_data as *mut #state_ty) };
                    let (#(#args,)*) = __hotreload_state.0.take().expect("called once");
                    __hotreload_state.1 = ::core::option::Option::Some(#call);
                }
                let mut __hotreload_state: #state_ty = (::core::option::Option::Some((#(#args,)*)), ::core::option::Option::None);
                // SAFETY: `__hotreload_run` reads exactly this state.
                let __hotreload_caught = unsafe {
                    __hotreload_rt::__rt::catch(__hotreload_run, &mut __hotreload_state as *mut #state_ty as *mut ())
                };
                __hotreload_rt::__rt::outcome(__hotreload_state.1, __hotreload_caught)
            }
            #[unsafe(export_name = concat!(#rec_name, module_path!(), #id_tail))]
            static __HOTRELOAD_RECORD: __hotreload_rt::__rt::Record =
                __hotreload_rt::__rt::Record::new(#hash, __hotreload_rt::__rt::TOOLCHAIN);
            static #slot: __hotreload_rt::__rt::Slot =
                __hotreload_rt::__rt::Slot::new(__hotreload_forwarder as *const ());
            #[used]
            #[unsafe(link_section = #section)]
            static __HOTRELOAD_ENTRY: __hotreload_rt::__rt::Entry = __hotreload_rt::__rt::Entry::new(
                concat!(module_path!(), #id_tail),
                &#slot,
                __hotreload_forwarder as *const (),
                &__HOTRELOAD_RECORD,
            );
            #finish
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `{ hot } { cold }` groups of an expansion.
    fn forms(input: TokenStream) -> (String, String) {
        split(hot(TokenStream::new(), input).unwrap())
    }

    fn split(expansion: TokenStream) -> (String, String) {
        let out: syn::ItemMacro = syn::parse2(expansion).unwrap();
        let groups: Vec<_> = out
            .mac
            .tokens
            .into_iter()
            .filter_map(|tt| match tt {
                proc_macro2::TokenTree::Group(g) => Some(g.stream().to_string()),
                _ => None,
            })
            .collect();
        (groups[0].clone(), groups[1].clone())
    }

    #[test]
    fn the_cold_form_is_the_item_unchanged() {
        for item in [
            quote! { pub fn score(points: u32) -> u32 { points * 2 } },
            quote! { impl Counter { pub fn bump(&mut self) -> u32 { self.n += 1; self.n } } },
            quote! { mod m { pub fn f() {} fn g<T>(t: T) -> T { t } } },
        ] {
            let (hot, cold) = forms(item.clone());
            assert_eq!(cold, item.to_string(), "an ordinary build sees exactly the item");
            assert_ne!(hot, cold);
        }
    }

    #[test]
    fn stubs_have_a_wrapper_and_a_slot_only() {
        let item = quote! {
            impl Counter {
                pub fn bump(&mut self) -> u32 { self.n += 1; self.n }
                pub fn label(&self) -> &str { "counter" }
            }
        };
        let out = hot_with(TokenStream::new(), item, &Full::only(&["::Counter::bump"])).unwrap().to_string();
        // `bump` whole: its body, forwarder export, record and row; `label` a stub.
        assert!(out.contains("__hot_body_bump") && !out.contains("__hot_body_label"), "{out}");
        assert_eq!(out.matches("__HOTRELOAD_RECORD :").count(), 1, "{out}");
        assert_eq!(out.matches("__HOTRELOAD_ENTRY :").count(), 1, "{out}");
        assert_eq!(out.matches("__HOTRELOAD_SLOT :").count(), 2, "{out}");
        assert!(out.contains("stub_called"), "{out}");
        assert!(!out.contains("\"counter\""), "a stub's body is not compiled: {out}");
        // All stubs: the companion impl is still there, keeping later impls' symbol names.
        let item = quote! { impl Counter { pub fn label(&self) -> &str { "counter" } } };
        let out = hot_with(TokenStream::new(), item, &Full::only(&[])).unwrap().to_string();
        assert_eq!(out.matches("impl __HotreloadBodies_").count(), 1, "{out}");
        let all = hot_with(TokenStream::new(), quote! { fn f() {} }, &Full::default()).unwrap().to_string();
        assert!(!all.contains("stub_called"));
    }

    #[test]
    fn ids_and_export_names_are_symbol_safe() {
        let (hot, _) = forms(quote! { impl Named for Counter { fn name(&self) -> String { String::new() } } });
        assert!(hot.contains("\"::Counter~Named::name\""), "{hot}");
    }
}
