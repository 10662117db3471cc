//! What an edit changed in a hot crate's source, and whether trampolines can carry it.
//!
//! A [`Snapshot`] is the crate's items as the running program has them; [`compare`]
//! says what a new snapshot changes. Function ids are the ones `#[hotreload::hot]`
//! gives (module path and name, `Type::method`, `Type~Trait::method`), so they line up
//! with the records in a patch library.

use crate::detect::cfg::Cfg;
use quote::ToTokens;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::{Attribute, ImplItem, Item};

/// An item of the crate, reduced to what a comparison needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A struct, enum, union, type alias or trait: its definition's text.
    Type(String),
    /// A hot function: its signature's text, and its whole text.
    Hot {
        /// The signature.
        signature: String,
        /// The whole function.
        text: String,
    },
    /// A function `#[hot]` left alone, and why.
    NotHot {
        /// The signature.
        signature: String,
        /// Why it is not hot.
        reason: &'static str,
        /// The whole function.
        text: String,
    },
    /// A function without `#[hot]`.
    Plain {
        /// `pub` or not.
        public: bool,
        /// Generic over types or consts (its own parameters, or its impl's): compiled
        /// into the crates that instantiate it.
        generic: bool,
        /// The signature.
        signature: String,
        /// The whole function.
        text: String,
    },
    /// A `static` or a `thread_local!` value: the running program's storage, which
    /// new code shares when its patch is linked.
    Static {
        /// Its type (and `mut`), normalised.
        ty: String,
        /// Its initialiser, normalised.
        init: String,
        /// Declared in `thread_local!`.
        thread_local: bool,
    },
    /// A `const`: inlined where it is used.
    Const(String),
}

/// A crate's items by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Items by id.
    pub items: BTreeMap<String, Entry>,
    /// Every file read.
    pub files: Vec<PathBuf>,
    /// The text of everything but hot functions' bodies: when it is unchanged, an edit
    /// touched hot function bodies only, and only those need recompiling in full.
    pub rest: String,
    /// What decides type layouts: everything but function bodies, except the items a
    /// body defines. When it is unchanged no layout can have changed, and a patch needs
    /// no debug info for [`crate::check::layout`] to compare.
    pub shape: String,
    /// Each file's text as read, for [`guess_edited`].
    texts: BTreeMap<PathBuf, String>,
    /// Each file's hot function bodies: id and the byte range from `{` to `}`.
    bodies: BTreeMap<PathBuf, Vec<(String, std::ops::Range<usize>)>>,
}

impl Snapshot {
    /// The ids of the crate's module-level statics and thread-locals (`my_crate::COUNTER`).
    pub fn statics(&self) -> std::collections::HashSet<String> {
        self.items.iter().filter(|(_, e)| matches!(e, Entry::Static { .. })).map(|(id, _)| id.clone()).collect()
    }
}

/// A change the running program cannot take without a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    /// The item, e.g. `logic::Counter`.
    pub item: String,
    /// Why.
    pub reason: String,
}

/// What a new snapshot changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceDiff {
    /// Changes that need a restart.
    pub blockers: Vec<Blocker>,
    /// Changes that apply, but not everywhere.
    pub warnings: Vec<String>,
    /// Hot functions whose text changed.
    pub edited: BTreeSet<String>,
    /// Functions inside hot items that stay as they are, with why.
    pub not_hot: Vec<(String, &'static str)>,
    /// Only hot function bodies changed (or hot functions were added): a linked patch
    /// needs only `edited` and new functions in full (see [`SourceDiff::edited`]).
    pub bodies_only: bool,
    /// Something that decides type layouts changed ([`Snapshot::shape`]): the patch
    /// must be built with debug info and its layouts compared.
    pub layouts_may_change: bool,
    /// Thread-locals the running program does not have: a linked patch refuses them (the
    /// program's threads have no storage for them); a self-contained one gives them
    /// fresh storage, which the caller warns of.
    pub new_thread_locals: Vec<String>,
    /// `pub` consts whose value changed, with functions redirected at their entries:
    /// other crates that use one have its old value compiled in (see
    /// `Driver::warn_of_consts`).
    pub public_consts: Vec<String>,
}

/// Reads a crate from its root file, following `mod` declarations, as the compiler
/// sees it under `cfg`: items whose `#[cfg]` does not hold are left out, and a
/// `#[cfg_attr(…, hotreload::hot)]` whose predicate holds makes its item hot.
pub fn scan(crate_name: &str, root: &Path, cfg: &Cfg) -> Result<Snapshot, String> {
    scan_read(crate_name, root, cfg, &BTreeMap::new())
}

/// [`scan`], with the files of `texts` as they were read into it (the others from disk).
pub fn scan_read(
    crate_name: &str,
    root: &Path,
    cfg: &Cfg,
    texts: &BTreeMap<PathBuf, String>,
) -> Result<Snapshot, String> {
    let mut snapshot = Snapshot::default();
    let scanned = scan_file(root, crate_name, true, &Context { cfg, texts }, &mut snapshot);
    // Spans were only needed for body ranges: free the text proc-macro2 keeps for them.
    proc_macro2::extra::invalidate_current_thread_spans();
    scanned.map(|()| snapshot)
}

/// What a scan reads with: the build's cfgs, and the files read before it.
struct Context<'a> {
    cfg: &'a Cfg,
    texts: &'a BTreeMap<PathBuf, String>,
}

impl Context<'_> {
    fn read(&self, file: &Path) -> Result<String, String> {
        match self.texts.get(file) {
            Some(text) => Ok(text.clone()),
            None => std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display())),
        }
    }

    fn exists(&self, file: &Path) -> bool {
        self.texts.contains_key(file) || file.is_file()
    }
}

fn scan_file(file: &Path, module: &str, owns_dir: bool, cx: &Context<'_>, out: &mut Snapshot) -> Result<(), String> {
    let text = cx.read(file)?;
    let parsed = syn::parse_file(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    out.files.push(file.to_path_buf());
    out.texts.insert(file.to_path_buf(), text.clone());
    // Where `mod child;` looks: next to lib.rs/main.rs/mod.rs, else in a folder named
    // after this file.
    let dir = if owns_dir { file.parent().unwrap_or(Path::new(".")).to_path_buf() } else { file.with_extension("") };
    let scope = Scope { module, dir: &dir, file, in_hot: false, cx };
    scan_items(&parsed.items, &scope, out)
}

/// Where items being scanned are.
struct Scope<'a> {
    /// Their module path (`logic::inner`).
    module: &'a str,
    /// Where their `mod child;` files are.
    dir: &'a Path,
    /// Their file.
    file: &'a Path,
    /// Inside a hot module.
    in_hot: bool,
    /// The build's cfgs, and where files are read.
    cx: &'a Context<'a>,
}

fn scan_items(items: &[Item], scope: &Scope<'_>, out: &mut Snapshot) -> Result<(), String> {
    let module = scope.module;
    for item in items {
        if !scope.cx.cfg.enabled(attrs_of(item)) {
            continue;
        }
        // `out.rest` gets every item's text, but only the signature of a hot function.
        match item {
            Item::Struct(s) => type_entry(out, module, &s.ident, item),
            Item::Enum(e) => type_entry(out, module, &e.ident, item),
            Item::Union(u) => type_entry(out, module, &u.ident, item),
            Item::Type(t) => type_entry(out, module, &t.ident, item),
            Item::Trait(t) => scan_trait(t, scope, out),
            Item::Static(s) => {
                let mutability = if matches!(s.mutability, syn::StaticMutability::Mut(_)) { "mut " } else { "" };
                let ty = format!("{mutability}{}", normalised(&s.ty));
                let init = normalised(&s.expr);
                push_both(out, &format!("static {}:{ty}={init}", s.ident));
                out.items.insert(format!("{module}::{}", s.ident), Entry::Static { ty, init, thread_local: false });
            }
            Item::Macro(m) if m.mac.path.segments.last().is_some_and(|s| s.ident == "thread_local") => {
                push_both(out, &text_of(item));
                // Unparsable bodies are rustc's to report.
                for (name, ty, init) in thread_locals(m.mac.tokens.clone()).unwrap_or_default() {
                    out.items.insert(format!("{module}::{name}"), Entry::Static { ty, init, thread_local: true });
                }
            }
            Item::Const(c) => {
                let text = text_of(item);
                push_both(out, &text);
                out.items.insert(format!("{module}::{}", c.ident), Entry::Const(text));
            }
            Item::Fn(f) => {
                let hot = scope.in_hot || has_hot(&f.attrs, scope.cx.cfg);
                let public = matches!(f.vis, syn::Visibility::Public(_));
                let entry = fn_entry(hot, &f.sig, item, public, false);
                add_fn(out, scope.file, format!("{module}::{}", f.sig.ident), entry, &f.sig, &f.block);
            }
            Item::Impl(imp) => scan_impl(imp, scope, out),
            Item::Mod(m) => scan_mod(m, scope, out)?,
            other => push_both(out, &text_of(other)),
        }
        push_both(out, "\n");
    }
    Ok(())
}

/// A function's entry, its shape and, when hot, where its body lies.
fn add_fn(out: &mut Snapshot, file: &Path, id: String, entry: Entry, sig: &syn::Signature, block: &syn::Block) {
    push_rest(&mut out.rest, &entry);
    out.shape.push_str(&fn_shape(sig, block));
    note_body(out, file, &id, &entry, block);
    out.items.insert(id, entry);
}

/// An impl block's methods, by the ids the attribute gives them.
fn scan_impl(imp: &syn::ItemImpl, scope: &Scope<'_>, out: &mut Snapshot) {
    let module = scope.module;
    let hot = scope.in_hot || has_hot(&imp.attrs, scope.cx.cfg);
    let trait_path = imp.trait_.as_ref().map(|(_, path, _)| path.to_token_stream().to_string());
    let mut header = imp.clone();
    header.items.clear();
    push_both(out, &text_of(&header));
    let generic_impl = !imp.generics.params.is_empty();
    // A generic impl's methods are never hot, so their ids need not be symbol-safe:
    // shown as written (`Parser<'a>::new`).
    let prefix = match generic_impl {
        true => format!("{module}::{}", readable(&imp.self_ty)),
        false => {
            let self_ty = imp.self_ty.to_token_stream().to_string();
            format!("{module}::{}", hotreload_protocol::record::impl_id(&self_ty, trait_path.as_deref()))
        }
    };
    for member in &imp.items {
        let ImplItem::Fn(m) = member else {
            push_both(out, &text_of(member));
            continue;
        };
        if !scope.cx.cfg.enabled(&m.attrs) {
            continue;
        }
        let public = imp.trait_.is_some() || matches!(m.vis, syn::Visibility::Public(_));
        let entry = if hot && generic_impl {
            Entry::NotHot { signature: normalised(&m.sig), reason: "in a generic impl", text: text_of(member) }
        } else {
            let generic_impl = imp.generics.params.iter().any(|p| !matches!(p, syn::GenericParam::Lifetime(_)));
            fn_entry(hot, &m.sig, member, public, generic_impl)
        };
        add_fn(out, scope.file, format!("{prefix}::{}", m.sig.ident), entry, &m.sig, &m.block);
    }
}

/// A trait: its definition without the bodies of its default methods (which decide no
/// layout and no vtable slot), and each default method as a function of its own,
/// generic over the implementing type.
fn scan_trait(t: &syn::ItemTrait, scope: &Scope<'_>, out: &mut Snapshot) {
    let mut definition = t.clone();
    let mut defaults = Vec::new();
    for member in &mut definition.items {
        if let syn::TraitItem::Fn(f) = member {
            if let Some(body) = f.default.take() {
                f.semi_token = Some(Default::default());
                defaults.push((f.clone(), body));
            }
        }
    }
    type_entry(out, scope.module, &t.ident, &Item::Trait(definition));
    for (f, body) in defaults {
        if !scope.cx.cfg.enabled(&f.attrs) {
            continue;
        }
        let whole = syn::TraitItemFn { default: Some(body.clone()), semi_token: None, ..f.clone() };
        let entry = fn_entry(false, &f.sig, &whole, true, true);
        add_fn(out, scope.file, format!("{}::{}::{}", scope.module, t.ident, f.sig.ident), entry, &f.sig, &body);
    }
}

/// A module, inline or in its own file.
fn scan_mod(m: &syn::ItemMod, scope: &Scope<'_>, out: &mut Snapshot) -> Result<(), String> {
    let mut header = m.clone();
    header.content = None;
    push_both(out, &text_of(&header));
    let in_hot = scope.in_hot || has_hot(&m.attrs, scope.cx.cfg);
    let child = format!("{}::{}", scope.module, m.ident);
    if let Some((_, items)) = &m.content {
        let dir = scope.dir.join(m.ident.to_string());
        let inner = Scope { module: &child, dir: &dir, file: scope.file, in_hot, cx: scope.cx };
        scan_items(items, &inner, out)?;
    } else if !is_cfg_test(&m.attrs) {
        let (file, owns_dir) = module_file(scope.dir, &m.ident.to_string(), &m.attrs, scope.cx)?;
        scan_file(&file, &child, owns_dir, scope.cx, out)?;
    }
    Ok(())
}

/// Where a hot function's body lies in its file.
fn note_body(out: &mut Snapshot, file: &Path, id: &str, entry: &Entry, block: &syn::Block) {
    if matches!(entry, Entry::Hot { .. }) {
        let span = block.brace_token.span;
        let range = span.open().byte_range().start..span.close().byte_range().end;
        out.bodies.entry(file.to_path_buf()).or_default().push((id.to_string(), range));
    }
}

/// The hot functions an edit changed, told from the files' text alone, before any
/// parsing: `Some` when every changed file differs from its text in `old` in one
/// stretch lying inside one hot function's braces. The patch build can start on this
/// guess while [`scan`] and [`compare`] run; their answer decides.
pub fn guess_edited(old: &Snapshot) -> Option<BTreeSet<String>> {
    let mut edited = BTreeSet::new();
    for (file, before) in &old.texts {
        let after = std::fs::read_to_string(file).ok()?;
        if after == *before {
            continue;
        }
        let (a, b) = (before.as_bytes(), after.as_bytes());
        let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let room = a.len().min(b.len()) - prefix;
        let suffix = a.iter().rev().zip(b.iter().rev()).take(room).take_while(|(x, y)| x == y).count();
        let changed = prefix..a.len() - suffix;
        let (id, _) =
            old.bodies.get(file)?.iter().find(|(_, body)| body.start < changed.start && changed.end < body.end)?;
        edited.insert(id.clone());
    }
    (!edited.is_empty()).then_some(edited)
}

/// Text that belongs to both [`Snapshot::rest`] and [`Snapshot::shape`].
fn push_both(out: &mut Snapshot, text: &str) {
    out.rest.push_str(text);
    out.shape.push_str(text);
}

/// A function's share of [`Snapshot::shape`]: its signature, and the items (a local
/// `struct`, `const`, `static`, `impl`) its body defines.
fn fn_shape(sig: &syn::Signature, block: &syn::Block) -> String {
    struct Items(String);
    impl<'ast> syn::visit::Visit<'ast> for Items {
        fn visit_item(&mut self, item: &'ast Item) {
            self.0.push_str(&text_of(item));
        }
    }
    let mut items = Items(format!("fn {}", normalised(sig)));
    syn::visit::Visit::visit_block(&mut items, block);
    items.0
}

/// A function's share of [`Snapshot::rest`]: a hot one's signature, any other's text.
fn push_rest(rest: &mut String, entry: &Entry) {
    match entry {
        Entry::Hot { signature, .. } => {
            rest.push_str("hot ");
            rest.push_str(signature);
        }
        Entry::NotHot { text, .. } | Entry::Plain { text, .. } => rest.push_str(text),
        _ => {}
    }
}

fn module_file(dir: &Path, name: &str, attrs: &[Attribute], cx: &Context<'_>) -> Result<(PathBuf, bool), String> {
    for attr in attrs {
        if attr.path().is_ident("path") {
            if let syn::Meta::NameValue(nv) = &attr.meta {
                if let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) = &nv.value {
                    return Ok((dir.join(s.value()), true));
                }
            }
        }
    }
    let flat = dir.join(format!("{name}.rs"));
    if cx.exists(&flat) {
        return Ok((flat, false));
    }
    let nested = dir.join(name).join("mod.rs");
    if cx.exists(&nested) {
        return Ok((nested, true));
    }
    Err(format!("file not found for module `{name}` (looked for {})", flat.display()))
}

fn is_cfg_test(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| a.path().is_ident("cfg") && normalised(&a.meta) == "cfg(test)")
}

fn type_entry(out: &mut Snapshot, module: &str, ident: &syn::Ident, item: &Item) {
    // The whole text, so that a change of what a derive generates is a change; the
    // entry, which refuses, only what decides a layout or an identity.
    push_both(out, &text_of(item));
    out.items.insert(format!("{module}::{ident}"), Entry::Type(definition_text(item)));
}

fn fn_entry(hot: bool, sig: &syn::Signature, item: &impl ToTokens, public: bool, generic_impl: bool) -> Entry {
    let text = text_of(item);
    if !hot {
        let generic = generic_impl || sig.generics.params.iter().any(|p| !matches!(p, syn::GenericParam::Lifetime(_)));
        return Entry::Plain { public, generic, signature: normalised(sig), text };
    }
    match hotreload_protocol::rules::not_hot_reason(sig) {
        Some(reason) => Entry::NotHot { signature: normalised(sig), reason, text },
        None => Entry::Hot { signature: normalised(sig), text },
    }
}

/// `#[hotreload::hot]`, directly or through a `#[cfg_attr]` whose predicate holds.
fn has_hot(attrs: &[Attribute], cfg: &Cfg) -> bool {
    let is_hot = |path: &syn::Path| path.segments.last().is_some_and(|s| s.ident == "hot");
    attrs.iter().any(|a| is_hot(a.path())) || cfg.expanded_attrs(attrs).iter().any(|m| is_hot(m.path()))
}

/// An item's attributes, for its `#[cfg]`s.
fn attrs_of(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// Item text without doc comments, in a canonical spacing: docs never need a restart.
/// Walks the tokens once; no second parse.
fn text_of(item: &impl ToTokens) -> String {
    text_without(item, |name| name == "doc")
}

/// A type's definition as far as its layout and identity go: [`text_of`] without the
/// attributes that decide neither (`#[serde(…)]`, `#[derive(…)]`, lints), whose effect
/// is code, compared as code. `repr`, `cfg` and `cfg_attr` stay.
fn definition_text(item: &impl ToTokens) -> String {
    text_without(item, |name| !matches!(name, "repr" | "cfg" | "cfg_attr"))
}

/// An item's tokens as text, without the attributes whose name `skip` says.
fn text_without(item: &impl ToTokens, skip: fn(&str) -> bool) -> String {
    let skipped = |tt: Option<&proc_macro2::TokenTree>| {
        matches!(tt, Some(proc_macro2::TokenTree::Group(g)) if g.delimiter() == proc_macro2::Delimiter::Bracket
            && matches!(g.stream().into_iter().next(), Some(proc_macro2::TokenTree::Ident(i)) if skip(&i.to_string())))
    };
    walk(item.to_token_stream(), &skipped)
}

fn walk(tokens: proc_macro2::TokenStream, skipped: &dyn Fn(Option<&proc_macro2::TokenTree>) -> bool) -> String {
    let mut out = String::new();
    walk_into(tokens, skipped, &mut out);
    out
}

/// Appends `tokens` as text to `out`, leaving out each `#[…]` or `#![…]` whose group
/// `skipped` says (what `///` and `//!` become, among others).
fn walk_into(
    tokens: proc_macro2::TokenStream,
    skipped: &dyn Fn(Option<&proc_macro2::TokenTree>) -> bool,
    out: &mut String,
) {
    use proc_macro2::TokenTree;
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Punct(p) if p.as_char() == '#' => {
                let bang = matches!(tokens.get(i + 1), Some(TokenTree::Punct(b)) if b.as_char() == '!');
                let group = i + 1 + usize::from(bang);
                if skipped(tokens.get(group)) {
                    i = group + 1;
                    continue;
                }
                out.push('#');
            }
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    proc_macro2::Delimiter::Parenthesis => ('(', ')'),
                    proc_macro2::Delimiter::Brace => ('{', '}'),
                    proc_macro2::Delimiter::Bracket => ('[', ']'),
                    proc_macro2::Delimiter::None => (' ', ' '),
                };
                out.push(open);
                walk_into(g.stream(), skipped, out);
                out.push(close);
            }
            TokenTree::Punct(p) => out.push(p.as_char()),
            other => {
                out.push(' ');
                out.push_str(&other.to_string());
            }
        }
        i += 1;
    }
}

/// The `static NAME: TYPE = INIT;` declarations of a `thread_local!` body, with the
/// type and initialiser normalised.
fn thread_locals(tokens: proc_macro2::TokenStream) -> syn::Result<Vec<(String, String, String)>> {
    use syn::parse::{ParseStream, Parser};
    let parser = |input: ParseStream| {
        let mut out = Vec::new();
        while !input.is_empty() {
            input.call(Attribute::parse_outer)?;
            input.parse::<syn::Visibility>()?;
            input.parse::<syn::Token![static]>()?;
            let name: syn::Ident = input.parse()?;
            input.parse::<syn::Token![:]>()?;
            let ty: syn::Type = input.parse()?;
            input.parse::<syn::Token![=]>()?;
            let init: syn::Expr = input.parse()?;
            out.push((name.to_string(), normalised(&ty), normalised(&init)));
            if !input.is_empty() {
                input.parse::<syn::Token![;]>()?;
            }
        }
        Ok(out)
    };
    parser.parse2(tokens)
}

/// A type as a person writes it: `Parser<'a>`, `&'a Wrapper<'b>`.
fn readable(ty: &syn::Type) -> String {
    let text = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let after = out.chars().last();
        let tight = matches!(next, Some('<' | '>' | ',' | ':')) || matches!(after, Some('<' | '&' | ':' | '\''));
        if c == ' ' && tight {
            continue;
        }
        out.push(c);
    }
    out
}

fn normalised(tokens: &impl ToTokens) -> String {
    normalised_str(&tokens.to_token_stream().to_string())
}

fn normalised_str(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// What `new` changes against `old` (the source the program runs).
/// How the running program switches to a crate's new code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// Through `#[hot]` slots only: other functions keep their old code for callers
    /// outside hot functions.
    Slots,
    /// Every changed function is also redirected at its entry: callers everywhere reach
    /// the new code, so a changed signature is refused for any function.
    Entries,
}

/// [`compare_as`] for a crate that switches through its slots only.
pub fn compare(old: &Snapshot, new: &Snapshot) -> SourceDiff {
    compare_as(old, new, Switch::Slots)
}

/// What changed from `old` to `new`, and what of it the running program can take when
/// it switches as `switch` says.
pub fn compare_as(old: &Snapshot, new: &Snapshot, switch: Switch) -> SourceDiff {
    let mut diff = SourceDiff {
        bodies_only: old.rest == new.rest,
        layouts_may_change: old.shape != new.shape,
        ..SourceDiff::default()
    };
    for (id, entry) in &new.items {
        if let Entry::NotHot { reason, .. } = entry {
            diff.not_hot.push((id.clone(), reason));
        }
        let Some(before) = old.items.get(id) else {
            if matches!(entry, Entry::Static { thread_local: true, .. }) {
                diff.new_thread_locals.push(id.clone());
            } else if matches!(entry, Entry::Static { .. }) {
                diff.warnings.push(format!(
                    "static `{id}` is new: the running program has no storage for it, so it starts at its \
                     initial value in this patch (later linked patches share that copy; a self-contained one \
                     gets its own)"
                ));
            }
            continue;
        };
        if before == entry {
            continue;
        }
        let blocker = |reason: &str| Blocker { item: id.clone(), reason: reason.to_string() };
        match (before, entry) {
            (Entry::Type(_), Entry::Type(_)) => {
                diff.blockers.push(blocker("its definition changed, so its layout or vtable may differ"))
            }
            (Entry::Hot { signature: a, .. }, Entry::Hot { signature: b, .. }) if a != b => {
                diff.blockers.push(blocker("its signature changed"))
            }
            (Entry::Hot { .. }, Entry::Hot { .. }) => {
                diff.edited.insert(id.clone());
            }
            (Entry::Hot { .. }, Entry::NotHot { reason, .. }) => {
                diff.blockers.push(blocker(&format!("it is no longer hot-able ({reason})")))
            }
            (_, Entry::Plain { .. } | Entry::NotHot { .. }) if switch == Switch::Entries => {
                entries_change(id, before, entry, &mut diff)
            }
            (Entry::NotHot { .. } | Entry::Plain { .. }, Entry::NotHot { reason, .. }) => diff.warnings.push(format!(
                "`{id}` is not hot ({reason}): code outside hot functions keeps calling the old version"
            )),
            (_, Entry::Plain { public: true, .. }) => diff
                .warnings
                .push(format!("`{id}` is not #[hot]: code outside hot functions keeps calling the old version")),
            // Only a `pub` one can be in other crates' code.
            (Entry::Const(_), Entry::Const(text)) if switch == Switch::Entries => {
                let public = text.split("const").next().is_some_and(|head| head.contains("pub"));
                if public {
                    diff.public_consts.push(id.clone());
                }
            }
            (Entry::Const(_), Entry::Const(_)) => {
                diff.warnings.push(format!("const `{id}` changed: code outside hot functions keeps the old value"))
            }
            (Entry::Static { ty: a, .. }, Entry::Static { ty: b, .. }) if a != b => {
                diff.blockers.push(blocker("its type changed, and the running program holds a value of the old type"))
            }
            (Entry::Static { thread_local: false, .. }, Entry::Static { .. }) => diff.warnings.push(format!(
                "static `{id}`: only its initialiser changed; the running program keeps its current value \
                 (a static is initialised once; restart to start from the new initialiser)"
            )),
            (Entry::Static { thread_local: true, .. }, Entry::Static { .. }) => diff.warnings.push(format!(
                "thread-local `{id}`: only its initialiser changed; the program's threads keep their current \
                 values (each is initialised once; restart to start from the new initialiser)"
            )),
            _ => {}
        }
    }
    diff
}

/// A changed function that is not hot, when changed functions are redirected at their
/// entry: its signature must stay (callers in the running program pass the old
/// arguments).
fn entries_change(id: &str, before: &Entry, after: &Entry, diff: &mut SourceDiff) {
    let signature = |e: &Entry| match e {
        Entry::Plain { signature, .. } | Entry::NotHot { signature, .. } | Entry::Hot { signature, .. } => {
            Some(signature.clone())
        }
        _ => None,
    };
    if signature(before) != signature(after) {
        let reason = "its signature changed, and callers in the running program pass the old arguments";
        diff.blockers.push(Blocker { item: id.to_string(), reason: reason.into() });
        return;
    }
    // Copies other crates compiled (a generic's instances for their types) are found
    // in the compiled code, and named there.
    diff.edited.insert(id.to_string());
}

/// The snapshot of crate `logic` whose `lib.rs` is `text`, with no cfgs set: for tests.
#[cfg(test)]
pub(crate) fn snapshot_of(text: &str) -> Snapshot {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lib.rs");
    std::fs::write(&file, text).unwrap();
    scan("logic", &file, &Cfg::default()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(text: &str) -> Snapshot {
        snapshot_of(text)
    }

    const BASE: &str = r#"
        /// A point.
        pub struct Point { pub x: u32 }
        #[hotreload::hot]
        pub fn score(p: u32) -> u32 { p * 2 }
        #[hotreload::hot]
        impl Point { pub fn len(&self) -> u32 { self.x } pub fn map<T>(&self, t: T) -> T { t } }
        pub fn helper() -> u32 { 1 }
        pub trait Named { fn name(&self) -> String; }
        #[hotreload::hot]
        impl Named for Point { fn name(&self) -> String { "p".into() } }
    "#;

    #[test]
    fn a_scan_of_sources_read_earlier_sees_them_as_read_not_as_saved_since() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("inner")).unwrap();
        std::fs::write(src.join("lib.rs"), "pub mod inner;\npub fn one() -> u32 { 1 }\n").unwrap();
        std::fs::write(src.join("inner/mod.rs"), "pub fn two() -> u32 { 2 }\n").unwrap();
        let read = crate::detect::read_sources(&src);
        assert_eq!(read.hash, crate::detect::sources_hash(&src));
        // Saved after the build started: a module gone, a function added.
        std::fs::remove_dir_all(src.join("inner")).unwrap();
        std::fs::write(src.join("lib.rs"), "pub fn one() -> u32 { 1 }\npub fn three() -> u32 { 3 }\n").unwrap();
        let cfg = Cfg::default();
        let as_read = scan_read("logic", &src.join("lib.rs"), &cfg, &read.texts).unwrap();
        assert!(as_read.items.contains_key("logic::inner::two") && !as_read.items.contains_key("logic::three"));
        let now = scan("logic", &src.join("lib.rs"), &cfg).unwrap();
        assert!(now.items.contains_key("logic::three") && !now.items.contains_key("logic::inner::two"));
        assert_ne!(read.hash, crate::detect::sources_hash(&src));
    }

    #[test]
    fn generic_impls_read_as_written() {
        let ty: syn::Type = syn::parse_str("Parser < 'a >").unwrap();
        assert_eq!(readable(&ty), "Parser<'a>");
        let ty: syn::Type = syn::parse_str("& 'a Wrapper < 'b , T >").unwrap();
        assert_eq!(readable(&ty), "&'a Wrapper<'b, T>");
        let s = snapshot("#[hotreload::hot] impl<'a> Parser<'a> { pub fn new(s: &'a str) -> u32 { 1 } }");
        assert!(s.items.contains_key("logic::Parser<'a>::new"), "{:?}", s.items.keys());
    }

    #[test]
    fn only_what_decides_layouts_asks_for_a_layout_check() {
        let old = snapshot(BASE);
        let body = compare(&old, &snapshot(&BASE.replace("p * 2", "p * 3")));
        assert!(!body.layouts_may_change);
        let helper =
            compare(&old, &snapshot(&BASE.replace("pub fn helper() -> u32 { 1 }", "pub fn helper() -> u32 { 2 }")));
        assert!(!helper.layouts_may_change && !helper.bodies_only);
        let local = compare(&old, &snapshot(&BASE.replace("p * 2", "{ struct L([u8; 4]); p * 2 }")));
        assert!(local.layouts_may_change);
        let constant = compare(&old, &snapshot(&format!("{BASE}\npub const N: usize = 4;")));
        assert!(constant.layouts_may_change);
    }

    #[test]
    fn attributes_that_decide_no_layout_are_no_change_of_a_definition() {
        let base = "#[derive(Debug)] pub struct Config { pub name: String }";
        let old = snapshot(base);
        let serde = snapshot(&base.replace("pub name", "#[serde(rename = \"label\")] pub name"));
        let diff = compare_as(&old, &serde, Switch::Entries);
        assert!(diff.blockers.is_empty(), "{diff:?}");
        assert!(!diff.bodies_only, "what the derive generates may change: built and compared as code");
        let repr = compare_as(
            &old,
            &snapshot(&base.replace("#[derive(Debug)]", "#[derive(Debug)] #[repr(C)]")),
            Switch::Entries,
        );
        assert_eq!(repr.blockers.len(), 1, "{repr:?}");
    }

    #[test]
    fn a_default_method_is_a_function_and_the_trait_its_definition() {
        let base = "pub trait Shout { fn name(&self) -> u32; fn shout(&self) -> u32 { 1 } }";
        let old = snapshot(base);
        assert!(matches!(old.items["logic::Shout::shout"], Entry::Plain { generic: true, .. }));
        let body = compare_as(&old, &snapshot(&base.replace("{ 1 }", "{ 2 }")), Switch::Entries);
        assert!(body.blockers.is_empty(), "{body:?}");
        assert_eq!(body.edited.iter().collect::<Vec<_>>(), ["logic::Shout::shout"]);
        let added = snapshot(&base.replace("fn name(&self) -> u32;", "fn name(&self) -> u32; fn more(&self);"));
        let added = compare_as(&old, &added, Switch::Entries);
        assert_eq!(added.blockers.len(), 1, "{added:?}");
        assert_eq!(added.blockers[0].item, "logic::Shout");
    }

    #[test]
    fn ids_match_the_attribute() {
        let s = snapshot(BASE);
        let ids: Vec<_> = s.items.keys().cloned().collect();
        assert!(ids.contains(&"logic::score".to_string()));
        assert!(ids.contains(&"logic::Point::len".to_string()));
        assert!(ids.contains(&"logic::Point~Named::name".to_string()));
        assert!(matches!(s.items["logic::Point::map"], Entry::NotHot { reason, .. } if reason.starts_with("generic")));
    }

    #[test]
    fn a_body_edit_is_an_edit_and_docs_are_nothing() {
        let old = snapshot(BASE);
        let new = snapshot(&BASE.replace("p * 2", "p * 3").replace("/// A point.", "/// A 2-D point."));
        let diff = compare(&old, &new);
        assert!(diff.blockers.is_empty(), "{diff:?}");
        assert_eq!(diff.edited.iter().collect::<Vec<_>>(), ["logic::score"]);
        assert_eq!(diff.not_hot.len(), 1, "{diff:?}");
        assert_eq!(diff.not_hot[0].0, "logic::Point::map");
        assert!(diff.not_hot[0].1.starts_with("generic functions"), "{diff:?}");
    }

    #[test]
    fn signature_and_layout_changes_are_blockers() {
        let old = snapshot(BASE);
        let new =
            snapshot(&BASE.replace("score(p: u32)", "score(p: u64)").replace("pub x: u32", "pub x: u32, pub y: u32"));
        let diff = compare(&old, &new);
        let items: Vec<_> = diff.blockers.iter().map(|b| b.item.as_str()).collect();
        assert_eq!(items, ["logic::Point", "logic::score"]);
    }

    #[test]
    fn a_changed_plain_pub_fn_is_a_warning() {
        let diff = compare(&snapshot(BASE), &snapshot(&BASE.replace("{ 1 }", "{ 2 }")));
        assert!(diff.blockers.is_empty());
        assert_eq!(diff.warnings.len(), 1);
        assert!(diff.warnings[0].contains("logic::helper"));
    }

    #[test]
    fn statics_and_thread_locals_changes() {
        const STATE: &str = r#"
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            thread_local! {
                /// Calls.
                pub static CALLS: Cell<u32> = const { Cell::new(0) };
                static NAME: RefCell<String> = RefCell::new(String::new())
            }
        "#;
        let old = snapshot(STATE);
        assert_eq!(old.statics().len(), 3);
        let retyped = compare(&old, &snapshot(&STATE.replace("Cell<u32>", "Cell<u64>")));
        assert_eq!(retyped.blockers.len(), 1, "{retyped:?}");
        assert_eq!(retyped.blockers[0].item, "logic::CALLS");
        assert!(retyped.blockers[0].reason.contains("type changed"));
        let mutable = compare(&old, &snapshot(&STATE.replace("static COUNTER", "static mut COUNTER")));
        assert_eq!(mutable.blockers[0].item, "logic::COUNTER");
        let reinit = compare(&old, &snapshot(&STATE.replace("new(0)", "new(7)")));
        assert!(reinit.blockers.is_empty(), "{reinit:?}");
        assert_eq!(reinit.warnings.len(), 2);
        assert!(reinit.warnings.iter().all(|w| w.contains("only its initialiser changed")));
        assert!(reinit.warnings.iter().any(|w| w.starts_with("static `logic::COUNTER`")), "{reinit:?}");
        assert!(reinit.warnings.iter().any(|w| w.starts_with("thread-local `logic::CALLS`")), "{reinit:?}");
        let added = compare(&old, &snapshot(&format!("{STATE} static FRESH: u8 = 0;")));
        assert!(added.warnings[0].contains("`logic::FRESH` is new"), "{added:?}");
        let tls = "thread_local! { static SEEN: std::cell::Cell<u8> = const { std::cell::Cell::new(0) }; }";
        let added = compare(&old, &snapshot(&format!("{STATE} {tls}")));
        assert!(added.warnings.is_empty(), "{added:?}");
        assert_eq!(added.new_thread_locals, ["logic::SEEN"]);
        let docs = compare(&old, &snapshot(&STATE.replace("/// Calls.", "/// Calls so far.")));
        assert_eq!(docs, SourceDiff { bodies_only: true, ..SourceDiff::default() });
    }

    #[test]
    fn edited_bodies_are_guessed_from_text() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lib.rs");
        std::fs::write(&file, BASE).unwrap();
        let old = scan("logic", &file, &Cfg::default()).unwrap();
        let guess = |text: &str| {
            std::fs::write(&file, text).unwrap();
            guess_edited(&old).map(|ids| ids.into_iter().collect::<Vec<_>>())
        };
        assert_eq!(guess(&BASE.replace("p * 2", "p * 30")), Some(vec!["logic::score".to_string()]));
        assert_eq!(guess(&BASE.replace("{ self.x }", "{ self.x + 1 }")), Some(vec!["logic::Point::len".to_string()]));
        assert_eq!(guess(&BASE.replace("{ 1 }", "{ 2 }")), None, "a plain fn");
        assert_eq!(guess(&BASE.replace("score(p: u32)", "score(q: u32)")), None, "a signature");
        assert_eq!(guess(&BASE.replace("p * 2", "p * 3").replace("{ self.x }", "{ self.x + 1 }")), None, "two");
        assert_eq!(guess(BASE), None, "nothing changed");
    }

    #[test]
    fn body_only_edits_are_told_apart() {
        let old = snapshot(BASE);
        assert!(compare(&old, &snapshot(&BASE.replace("p * 2", "p * 3"))).bodies_only);
        assert!(compare(&old, &snapshot(&BASE.replace("self.x }", "self.x + 1 }"))).bodies_only);
        assert!(!compare(&old, &snapshot(&BASE.replace("{ 1 }", "{ 2 }"))).bodies_only, "a plain fn");
        assert!(!compare(&old, &snapshot(&BASE.replace("{ t }", "{ let u = t; u }"))).bodies_only, "not hot");
        assert!(!compare(&old, &snapshot(&format!("use std::fmt;{BASE}"))).bodies_only);
        assert!(!compare(&old, &snapshot(&format!("{BASE} macro_rules! m {{ () => {{}} }}"))).bodies_only);
    }

    #[test]
    fn modules_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lib.rs"), "mod a; #[hotreload::hot] mod b { pub fn f() {} }").unwrap();
        std::fs::write(dir.path().join("a.rs"), "mod c; #[hotreload::hot] pub fn g() {}").unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/c.rs"), "pub struct S;").unwrap();
        let s = scan("k", &dir.path().join("lib.rs"), &Cfg::default()).unwrap();
        let ids: Vec<_> = s.items.keys().cloned().collect();
        assert_eq!(ids, ["k::a::c::S", "k::a::g", "k::b::f"]);
        assert_eq!(s.files.len(), 3);
    }
}
