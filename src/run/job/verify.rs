//! Everything checked before a patch is loaded: type layouts against the running
//! program's, the records' diff, the slots a partial patch uses, its toolchain, and
//! the settings, which may have changed while it was built.

use super::build::Built;
use super::entries::Entries;
use super::plan::{hot_ids, Plan};
use super::{Route, Stop};
use crate::check::diff::{self, PatchDiff};
use crate::check::layout::Layouts;
use crate::check::library::Library;
use crate::link::Linked;
use crate::run::Driver;
use hotreload_protocol::record::crate_of;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A patch that passed every check: ready to load.
pub(super) struct Verified {
    /// The placed file, in the session directory.
    pub(super) placed: PathBuf,
    /// Its generation.
    pub(super) generation: u64,
    /// Its exports and records.
    pub(super) library: Library,
    /// What it changes against the running code.
    pub(super) diff: PatchDiff,
    /// The route it took, and for a linked one what was bound and its times.
    pub(super) route: Placed,
    /// The rustc that built it, by hash.
    pub(super) toolchain: u64,
    /// When its build started.
    pub(super) build_started: Instant,
    /// Build time (rustc and link).
    pub(super) build_time: Duration,
    /// Time comparing layouts and records.
    pub(super) check_time: Duration,
    /// For a linked patch with redirects on: what changed, function by function.
    pub(super) entries: Option<Entries>,
}

/// How a placed patch was built (its build directory's lock released).
pub(super) enum Placed {
    /// Linked: what was bound, time in rustc, time linking.
    Linked(Linked, Duration, Duration),
    /// Self-contained.
    SelfContained,
}

impl Placed {
    /// Its route.
    pub(super) fn route(&self) -> Route {
        match self {
            Placed::Linked(..) => Route::Linked,
            Placed::SelfContained => Route::SelfContained,
        }
    }
}

/// A placed file that is removed unless it is loaded.
struct Unloaded(Option<PathBuf>);

impl Unloaded {
    fn keep(mut self) -> PathBuf {
        self.0.take().expect("kept once")
    }
}

impl Drop for Unloaded {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Driver {
    /// Checks a built patch; places it in the session directory on the way.
    pub(super) fn verify(&mut self, plan: &Plan, built: Built) -> Result<Verified, Stop> {
        let (build_started, build_time) = (built.started(), built.started().elapsed());
        let check_started = Instant::now();
        if let Some(reasons) = self.layout_changes(&built) {
            return Err(Stop::Refused(reasons));
        }
        let entries = self.entries(plan, &built)?;
        let layout_time = check_started.elapsed();
        let name = &plan.krate.package;
        let generation = self.state(name).running.generation + 1;
        let placed = Unloaded(Some(self.session.place(built.file(), &plan.krate.unit(), generation)?));
        // Placed: the build directory's lock can go.
        let route = match built {
            Built::Linked(l) => Placed::Linked(l.linked, l.compiled, l.link_time),
            Built::SelfContained { .. } => Placed::SelfContained,
        };
        self.state(name).cache.failed = None;
        let diff_started = Instant::now();
        let library = Library::read(placed.0.as_ref().expect("placed"))?;
        let diff = match self.records_diff(plan, &library, &route, entries.as_ref()) {
            Err(Stop::Unchanged(why)) => {
                self.adopt_unchanged(plan, entries);
                return Err(Stop::Unchanged(why));
            }
            diff => diff?,
        };
        let toolchain = self.toolchain_of(plan, &library)?;
        self.settings_allow(plan)?;
        let check_time = layout_time + diff_started.elapsed();
        Ok(Verified {
            placed: placed.keep(),
            generation,
            library,
            diff,
            route,
            toolchain,
            build_started,
            build_time,
            check_time,
            entries,
        })
    }

    /// What the patch changes against the running code, refused when a signature
    /// changed, and unchanged when it changes no hot function.
    fn records_diff(
        &mut self,
        plan: &Plan,
        library: &Library,
        route: &Placed,
        entries: Option<&Entries>,
    ) -> Result<PatchDiff, Stop> {
        let crate_name = &plan.krate.crate_name;
        let Some(agent) = &self.agent else { return Err(Stop::Waiting) };
        let current = &self.crates[&plan.krate.package].running.current;
        let mut patch = diff::diff(&agent.known, current, crate_name, library);
        if let (Placed::Linked(linked, ..), true) = (route, plan.partial()) {
            // A patch of stubs holds only what changed: removed is what the source lost.
            let now: BTreeSet<String> = plan.scanned.as_ref().map(|s| hot_ids(s).collect()).unwrap_or_default();
            patch.removed = removed(current, &now);
            let new_to_program = library.functions.keys().filter(|id| !agent.program.contains(*id)).count();
            check_own_slots(&plan.krate.package, linked, new_to_program)?;
        }
        if !patch.applicable() {
            let reasons =
                patch.refused.iter().map(|id| format!("`{id}`: its signature or a type in it changed")).collect();
            return Err(Stop::Refused(reasons));
        }
        let own = library.functions.keys().filter(|id| crate_of(id) == crate_name).count();
        if own == 0 && patch.removed.is_empty() && entries.is_none_or(Entries::is_empty) {
            return Err(Stop::Unchanged("the patch changes no function".into()));
        }
        Ok(patch)
    }

    /// A linked patch that changes no function loads nothing, yet it may add what
    /// crates above it use (a `pub const`, a type): they compile against it from now on,
    /// as against an applied patch, or rustc would not find what the edit added. Its
    /// code is the running code, so the program runs what they link against.
    fn adopt_unchanged(&mut self, plan: &Plan, entries: Option<Entries>) {
        let Some(entries) = entries.filter(|e| e.rlib.is_some()) else { return };
        let running = &mut self.state(&plan.krate.package).running;
        running.replace_rlib(entries.rlib);
        running.code = Some(entries.code);
        if let Ok(new) = &plan.scanned {
            running.snapshot = new.clone();
        }
    }

    /// The rustc that built the patch (by its records), the program's when it has no
    /// function of its own.
    fn toolchain_of(&self, plan: &Plan, library: &Library) -> Result<u64, Stop> {
        let Some(agent) = &self.agent else { return Err(Stop::Waiting) };
        let own = library.functions.keys().any(|id| crate_of(id) == plan.krate.crate_name);
        match library.toolchain() {
            Some(toolchain) => Ok(toolchain),
            None if !own => Ok(agent.toolchain),
            None => Err(Stop::Error(anyhow::anyhow!(
                "the patch of `{}` was compiled by several rustc versions (its records disagree)",
                plan.krate.package
            ))),
        }
    }

    /// Settings may have changed while it was built: never apply a crate that is
    /// skipped, or any in `off` mode, from then on.
    fn settings_allow(&mut self, plan: &Plan) -> Result<(), Stop> {
        self.absorb_settings();
        match self.steer.settings.allows(&plan.krate.package, plan.force) {
            true => Ok(()),
            false => Err(Stop::Disabled),
        }
    }

    /// What the new code lays out differently from the running program (see
    /// [`crate::check::layout`]), as refusal reasons; `None` when nothing does. Without
    /// the program's or the patch's debug info nothing can be compared: said, and refused.
    fn layout_changes(&mut self, built: &Built) -> Option<Vec<String>> {
        // Nothing that decides layouts changed: built without debug info.
        if !built.debuginfo() {
            return None;
        }
        let program = self.layouts.get();
        let environments = self.entries_enabled();
        let program = match &*program {
            Ok(program) if !program.is_empty() => program,
            Ok(_) => return Some(cannot_compare("the program has no debug info")),
            Err(e) => return Some(cannot_compare(&format!("the program's debug info cannot be read: {e}"))),
        };
        let checked = match built {
            Built::Linked(l) => self.layouts.check_rlib(program, &l.rlib, environments).map(|c| {
                self.shell.very_verbose_status(
                    "Compared",
                    format_args!("type layouts: {} of {} objects read, the others as before", c.read, c.objects),
                );
                (c.units, c.mismatches)
            }),
            Built::SelfContained { file, .. } => Layouts::read_file(file).map(|patch| {
                let units = if patch.is_empty() { 0 } else { 1 };
                (units, patch.mismatches(program, environments))
            }),
        };
        match checked {
            Ok((0, _)) => Some(cannot_compare("the patch has no debug info")),
            Ok((_, found)) if found.is_empty() => None,
            Ok((_, found)) => Some(found.into_iter().map(|m| format!("`{}`: {}", m.item, m.reason)).collect()),
            Err(e) => Some(cannot_compare(&format!("the patch's debug info cannot be read: {e:#}"))),
        }
    }
}

/// The refusal when layouts cannot be compared, and `why`.
fn cannot_compare(why: &str) -> Vec<String> {
    vec![format!("type layouts cannot be compared ({why})")]
}

/// The functions the running code has that the source no longer does.
fn removed(current: &BTreeSet<String>, now: &BTreeSet<String>) -> Vec<String> {
    current.iter().filter(|id| !now.contains(*id)).cloned().collect()
}

/// Every slot of a partial patch but those of functions new to the program must be
/// the program's: a stub with a slot of its own would call nothing.
fn check_own_slots(name: &str, linked: &Linked, new_to_program: usize) -> Result<(), Stop> {
    if linked.own_slots.len() <= new_to_program {
        return Ok(());
    }
    Err(Stop::Error(anyhow::anyhow!(
        "the patch of `{name}` has {} trampoline slots the program lacks ({}), {new_to_program} expected; not \
         applied (please report this)",
        linked.own_slots.len(),
        linked.own_slots.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_partial_patch_removes_what_the_source_lost() {
        let current = ids(&["logic::a", "logic::b", "logic::c"]);
        assert_eq!(removed(&current, &ids(&["logic::a", "logic::c", "logic::d"])), ["logic::b"]);
        assert!(removed(&current, &current).is_empty());
    }

    #[test]
    fn a_partial_patch_may_own_slots_only_for_new_functions() {
        let linked = Linked { own_slots: vec!["logic::d".into()], ..Linked::default() };
        assert!(check_own_slots("logic", &linked, 1).is_ok());
        let Err(Stop::Error(e)) = check_own_slots("logic", &linked, 0) else { panic!("accepted") };
        assert!(e.to_string().contains("1 trampoline slots the program lacks (logic::d), 0 expected"), "{e}");
    }
}
