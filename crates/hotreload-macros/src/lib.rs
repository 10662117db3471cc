//! The `#[hot]` attribute of [`hotreload-runtime`](https://docs.rs/hotreload-runtime).
//!
//! Use it through `hotreload::hot` (the `hotreload-runtime` package); its output names the
//! runtime as the calling crate's manifest does.
//!
//! In an ordinary build the attribute expands to the item unchanged. In a
//! `cargo hotreload run` build (the `hotreload` cfg, decided inside the `hotreload`
//! crate so user crates need no cfg of their own) every hot-able function becomes:
//!
//! - a **forwarder**, an exported Rust-ABI function holding the original body
//!   (`hotreload$1$f$<module path>::<name>`);
//! - a **record** of its signature and the size and alignment of every type in it
//!   (`hotreload$1$r$…`), readable from the library file before it is loaded;
//! - a **slot**, an atomic pointer initialised to the forwarder, registered in the
//!   crate's trampoline table;
//! - the original function, now a call through its slot, so every caller — direct,
//!   through a `fn` pointer or a trait object — reaches the newest code.

#[cfg(feature = "expand")]
mod expand;
#[cfg(feature = "expand")]
mod signature;

use proc_macro::TokenStream;

/// Makes a function, or every hot-able function of an `impl` block or inline
/// module, replaceable while the program runs under `cargo hotreload run`.
///
/// ```ignore
/// #[hotreload::hot]
/// pub fn score(points: u32) -> u32 { points * 2 }
///
/// #[hotreload::hot]
/// impl Counter {
///     pub fn bump(&mut self) -> u32 { self.n += 1; self.n }
/// }
/// ```
///
/// Generic, `async` and `const` functions cannot be hot: on a single function that is
/// a compile error; inside an `impl` or module such functions are left as they are.
#[cfg(feature = "expand")]
#[proc_macro_attribute]
pub fn hot(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::hot(args.into(), input.into()).unwrap_or_else(|e| e.to_compile_error()).into()
}

/// Without the `expand` feature (an ordinary build, where the cold form is used
/// anyway): the item unchanged. What cannot be hot is reported by hot builds.
#[cfg(not(feature = "expand"))]
#[proc_macro_attribute]
pub fn hot(_args: TokenStream, input: TokenStream) -> TokenStream {
    input
}
