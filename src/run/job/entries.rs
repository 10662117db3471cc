//! The entry stage of a linked patch: which functions changed in compiled code (see
//! [`crate::check::code`]), and the redirects that send every copy of each — the
//! program's, and each earlier patch's — to the new one.

use super::build::Built;
use super::plan::Plan;
use super::Stop;
use crate::check::code::Functions;
use crate::check::entries::unfit_in;
use crate::link::demangle;
use crate::link::image::CodeImage;
use crate::run::Driver;
use crate::workspace::CrateKind;
use anyhow::Context;
use hotreload_protocol::message::Redirect;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Why a closure or `async` body whose environment was not compared keeps its code.
const CLOSURE: &str = "a closure or `async` body whose environment was not compared: values made before the \
                       edit run the code they were made with, new ones the new code";

/// Why copies of a changed function that other crates compiled keep their code.
const ELSEWHERE: &str = "a copy of it compiled into another crate (an instance for other types, or a closure that \
                         crate's generic code runs) keeps the old code until the program restarts";

/// Why an edited function of which no copy runs on its own keeps its old body.
const INLINED: &str = "no copy of it runs on its own: this release build compiled it into its callers (or nothing \
                       calls it), and they keep the old body until the program restarts; `#[hotreload::hot]` \
                       keeps a function reloadable in release builds";

/// Whether the scanned source says `id` is generic (instances of it are compiled only
/// where it is used, so having none is no sign of inlining).
fn is_generic(plan: &Plan, id: &str) -> bool {
    let entry = plan.scanned.as_ref().ok().and_then(|s| s.items.get(id));
    !matches!(entry, Some(crate::detect::source::Entry::Plain { generic: false, .. }))
}

/// Why a changed `main` of the binary keeps its body for the program that runs.
const RUNNING_MAIN: &str = "it is running, and a running frame keeps its body until it returns (as IPython's \
                            cell that is running does); restart to run the new one, or run with `--restart`";

/// Whether a function is a closure's or an `async` body's: it runs on an environment
/// made by other code.
fn is_environment_code(shown: &str) -> bool {
    shown.contains("{{closure}}")
}

/// What a patch changes, function by function, and how the program switches to it.
pub(super) struct Entries {
    /// The writes, each checked.
    pub(super) redirects: Vec<Redirect>,
    /// The crate's own changed functions whose every copy is redirected, demangled
    /// (generic instances of other crates' code it compiled are redirected too, and
    /// counted only in `redirects`).
    pub(super) updated: Vec<String>,
    /// The crate's own functions new in the patch, demangled.
    pub(super) added: Vec<String>,
    /// The crate's own functions gone from it, demangled: the old code keeps them.
    pub(super) removed: Vec<String>,
    /// The same, by symbol: crates that still call them are rebuilt once it applies.
    pub(super) removed_symbols: std::collections::BTreeSet<String>,
    /// Changed functions that keep their old code, and why.
    pub(super) kept: Vec<(String, &'static str)>,
    /// The crate's compiled functions once the patch is applied.
    pub(super) code: Functions,
    /// The patch's image, where later redirects find this generation's copies.
    pub(super) image: Arc<CodeImage>,
    /// Crates whose compiled code holds copies of changed functions (another crate's
    /// instances of a generic, closures its generic code runs): rebuilt against the new
    /// code once this patch applies, so those copies switch too. By crate, the copies'
    /// demangled names.
    pub(super) holders: std::collections::BTreeMap<String, Vec<String>>,
    /// A copy of the rlib it was linked from, for crates above it to compile against
    /// once it applies (see `Running::rlib`); `None` for a binary, or if it could not
    /// be copied (crates above it then take the self-contained route).
    pub(super) rlib: Option<std::path::PathBuf>,
}

impl Entries {
    /// Whether the patch changes no function at all, here or in the crates that hold
    /// copies of its code.
    pub(super) fn is_empty(&self) -> bool {
        self.redirects.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.kept.is_empty()
            && self.holders.is_empty()
    }
}

impl Driver {
    /// Whether changed functions are redirected at their entries.
    pub(in crate::run) fn entries_enabled(&self) -> bool {
        crate::build::LINKED_PATCHES && !self.linking.disabled
    }

    /// The entry stage, for a linked patch when redirects are on; `None` otherwise.
    pub(super) fn entries(&mut self, plan: &Plan, built: &Built) -> Result<Option<Entries>, Stop> {
        let Built::Linked(linked) = built else { return Ok(None) };
        if !self.entries_enabled() {
            return Ok(None);
        }
        let new = match &linked.code {
            Some(code) => code.clone(),
            None => Functions::read_rlib(&linked.rlib)?,
        };
        // Without a record of the running code compiled as patches are, every function
        // counts as changed: redirecting an unchanged one costs a jump, never a wrong result.
        let baseline = self.state(&plan.krate.package).running.code.is_some();
        let diff = match &self.state(&plan.krate.package).running.code {
            Some(old) => old.diff(&new),
            None => new.diff_from_unknown(),
        };
        let image = Arc::new(CodeImage::read(&linked.file)?);
        let mut copies_in = vec![self.program_code()?];
        copies_in.extend(self.linking.generations.iter().cloned());
        let hot: std::collections::HashSet<String> =
            plan.scanned.as_ref().map(|s| super::plan::hot_ids(s).collect()).unwrap_or_default();
        let own_prefix = format!("{}::", plan.krate.crate_name);
        let own = |shown: &String| shown.contains(&own_prefix);
        // A function of its own an earlier patch removed, now back, of which a copy runs
        // all the same (its callers kept the old one): its entries are redirected like a
        // changed function's, or they would run the old copy forever.
        let dropped = &self.state(&plan.krate.package).running.dropped;
        let runs = |name: &String| copies_in.iter().any(|c| c.function(name).is_some() || c.ambiguous(name));
        let back = |name: &String| dropped.contains(name) && own(&demangle(name)) && runs(name);
        let (revived, added): (BTreeSet<String>, BTreeSet<String>) = diff.added.iter().cloned().partition(back);
        let changed: BTreeSet<&String> = diff.changed.iter().chain(&revived).collect();
        let mut entries = Entries {
            redirects: Vec::new(),
            updated: Vec::new(),
            added: added.iter().map(|n| demangle(n)).filter(own).collect(),
            removed: diff.removed.iter().map(|n| demangle(n)).filter(own).collect(),
            removed_symbols: diff.removed.iter().filter(|n| own(&demangle(n))).cloned().collect(),
            kept: Vec::new(),
            holders: Default::default(),
            code: new.clone(),
            image: image.clone(),
            rlib: self.keep_rlib(plan, &linked.rlib),
        };
        for name in changed {
            let shown = demangle(name);
            if is_environment_code(&shown) && !linked.debuginfo {
                entries.kept.push((shown, CLOSURE));
                continue;
            }
            match redirect_of(name, &shown, &image, &copies_in) {
                Ok(redirect) => {
                    let redirected = redirect.is_some();
                    entries.redirects.extend(redirect);
                    let own = shown.contains(&format!("{}::", plan.krate.crate_name));
                    // Copies of the same path the crate does not compile itself: other
                    // crates' instances of it.
                    let elsewhere = |other: &&String| *other != name && !new.contains(other);
                    let others: Vec<&String> = copies_in[0].named(&shown).iter().filter(elsewhere).collect();
                    // Another crate's copy of a `#[hot]` function is its forwarder, which
                    // calls through the slot: it reaches the new code as it is.
                    if own && !others.is_empty() && !hot.contains(&shown) {
                        self.find_holders(plan, &shown, &others, &mut entries);
                    }
                    // Not run at all, its change reaches the program only through the
                    // holders of other copies, rebuilt next.
                    if redirected {
                        entries.updated.push(shown);
                    }
                }
                Err(why) => entries.kept.push((shown, why)),
            }
        }
        if baseline {
            self.running_main(plan, &mut entries)?;
        }
        self.uncompiled_edits(plan, &new, &copies_in[0], &hot, &mut entries);
        Ok(Some(entries))
    }

    /// Edited functions of which the crate compiled no copy of its own (a generic it
    /// never instantiates, a trait's default method): the compiled-code diff cannot see
    /// them, yet other crates' instances run the old body. Their holders are rebuilt
    /// against the new code, as those of a changed function are.
    fn uncompiled_edits(
        &self,
        plan: &Plan,
        new: &Functions,
        program: &CodeImage,
        hot: &std::collections::HashSet<String>,
        entries: &mut Entries,
    ) {
        let Some(edited) = &plan.edited else { return };
        let own_prefix = format!("{}::", plan.krate.crate_name);
        for id in edited {
            let handled = entries.updated.contains(id) || entries.kept.iter().any(|(name, _)| name == id);
            if handled || hot.contains(id) || entries.holders.values().any(|names| names.contains(id)) {
                continue;
            }
            let copies = program.named_in_source(id);
            // A copy the crate compiles itself was compared with the running one.
            if copies.iter().any(|copy| new.contains(copy)) || !id.starts_with(&own_prefix) {
                continue;
            }
            if !copies.is_empty() {
                self.find_holders(plan, id, &copies, entries);
            } else if self.profile.release && !is_generic(plan, id) {
                entries.kept.push((id.clone(), INLINED));
            }
        }
    }

    /// Notes which crates compiled `copies` of changed function `shown`, for them to be
    /// rebuilt once the patch applies (or, when the settings hold them, once `now` asks);
    /// a copy that no reloadable crate, or only a skipped one, holds is named as keeping
    /// its old code. A copy a patched crate's new code dropped is held only if that code
    /// still calls it: otherwise nothing that runs reaches it (the crate now calls its
    /// upstream crate's copy, which the patch redirects).
    fn find_holders(&self, plan: &Plan, shown: &str, copies: &[&String], entries: &mut Entries) {
        let mut held = vec![false; copies.len()];
        for (name, state) in &self.crates {
            let Some(code) = state.running.code.as_ref().filter(|_| *name != plan.krate.package) else { continue };
            if self.steer.settings.skip.contains(name) {
                continue;
            }
            for (i, copy) in copies.iter().enumerate() {
                let compiled = code.contains(copy);
                if !compiled && !state.running.dropped.contains(*copy) {
                    continue;
                }
                held[i] = true;
                if compiled || self.still_calls(name, copy) {
                    entries.holders.entry(name.clone()).or_default().push(shown.to_string());
                }
            }
        }
        if held.contains(&false) {
            entries.kept.push((shown.to_string(), ELSEWHERE));
        }
        for names in entries.holders.values_mut() {
            names.dedup();
        }
    }

    /// Whether the code crate `package` runs now calls (or takes the address of)
    /// function `symbol`; unknown counts as calling.
    fn still_calls(&self, package: &str, symbol: &str) -> bool {
        let Some(objects) = self.running_objects(package) else { return true };
        let symbols = std::collections::BTreeSet::from([symbol.to_string()]);
        crate::check::code::uses_of(&objects, &symbols).map_or(true, |used| !used.is_empty())
    }

    /// A binary's changed `main` is redirected like any function, but nothing calls it
    /// again: the program's loop runs on in its old body. With `--restart` the program
    /// restarts; otherwise that is said. Only asked when the code that runs is known:
    /// without it every function counts as changed.
    ///
    /// # Errors
    /// With `--restart`, [`Stop::Refused`], which restarts the program.
    fn running_main(&self, plan: &Plan, entries: &mut Entries) -> Result<(), Stop> {
        let main = format!("{}::main", plan.krate.crate_name);
        if plan.krate.kind != CrateKind::Bin || !entries.updated.contains(&main) {
            return Ok(());
        }
        // In a debug build, only an edit of its own source counts (its compiled code
        // changes with the layout of what it calls, say). In a release build, a callee
        // LLVM inlined into it changes it too.
        let edited = plan.edited.as_ref().is_none_or(|edited| edited.contains(&main));
        if !edited && !self.profile.release {
            return Ok(());
        }
        if self.config.restart {
            return Err(Stop::Refused(vec![format!("`{main}` changed, and the program runs in its old body")]));
        }
        entries.updated.retain(|f| *f != main);
        entries.kept.push((main, RUNNING_MAIN));
        Ok(())
    }

    /// A copy of a library patch's `rlib` in the session directory, one per generation:
    /// the build directory's is overwritten by the next build (of any session sharing
    /// the target directory), and a patch that fails to load must not replace the
    /// copy of the one that runs.
    fn keep_rlib(&mut self, plan: &Plan, rlib: &std::path::Path) -> Option<std::path::PathBuf> {
        if plan.krate.kind == CrateKind::Bin {
            return None;
        }
        let generation = self.state(&plan.krate.package).running.generation + 1;
        let dir = self
            .session
            .dir()
            .join(hotreload_protocol::APPLIED_DIR)
            .join(plan.krate.unit())
            .join(generation.to_string());
        let kept = dir.join(rlib.file_name()?);
        std::fs::create_dir_all(&dir).ok()?;
        std::fs::copy(rlib, &kept).ok()?;
        Some(kept)
    }

    /// The running program's executable, as redirects find its functions.
    fn program_code(&mut self) -> Result<Arc<CodeImage>, Stop> {
        if let Some(code) = &self.linking.code {
            return Ok(code.clone());
        }
        let executable = self.program.as_ref().map(|p| p.executable.clone()).context("no program")?;
        let bias = match self.program_image() {
            Ok(image) => image.bias(),
            Err(why) => return Err(anyhow::anyhow!("{why}").into()),
        };
        let code = Arc::new(CodeImage::read_loaded(&executable, bias)?);
        self.linking.code = Some(code.clone());
        Ok(code)
    }
}

/// The redirect of function `name` (shown as `shown`), when a copy of it runs: from
/// its newest copy in `copies_in` (the program, then every applied patch's image) to its
/// copy in `image`; the agent moves the older copies' jumps with it (see
/// [`Redirect`]), so the request does not grow with the session. Every copy is
/// checked. `Err` says why it keeps its old code: no copy in the patch, or a copy
/// whose entry cannot take the jump.
fn redirect_of(
    name: &str,
    shown: &str,
    image: &CodeImage,
    copies_in: &[Arc<CodeImage>],
) -> Result<Option<Redirect>, &'static str> {
    let mut newest: Option<crate::link::image::Function> = None;
    for old in copies_in {
        if old.ambiguous(name) {
            return Err("the running code has several copies of it");
        }
        let Some(from) = old.function(name) else { continue };
        if let Some(why) = unfit_in(old, from) {
            return Err(why);
        }
        newest = Some(from);
    }
    // No copy runs (the program's link left it out: other crates' copies run, if
    // any), so none is redirected, and the image need not hold it.
    let Some(from) = newest else { return Ok(None) };
    let to = image.function(name).ok_or("the patch holds no single copy of it")?;
    Ok(Some(Redirect { name: shown.to_string(), from: from.address, to: to.address, len: from.size }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function of this test binary, which stands in for the program and for every
    /// generation of a patch.
    #[no_mangle]
    #[inline(never)]
    extern "C" fn hotreload_test_changed(x: u64) -> u64 {
        std::hint::black_box(x).wrapping_mul(3) ^ 7
    }

    #[test]
    fn a_function_changed_in_every_reload_is_one_redirect_from_its_newest_copy() {
        assert_eq!(hotreload_test_changed(1), 4);
        let exe = Arc::new(CodeImage::read(&std::env::current_exe().unwrap()).unwrap());
        let name = "hotreload_test_changed";
        let entry = exe.function(name).expect("in the symbol table").address;
        // The program and 900 generations, each with its own copy (here all the same).
        let copies: Vec<_> = (0..901).map(|_| exe.clone()).collect();
        let redirect = redirect_of(name, name, &exe, &copies).unwrap();
        let len = exe.function(name).unwrap().size;
        assert_eq!(redirect, Some(Redirect { name: name.into(), from: entry, to: entry, len }));
    }
}
