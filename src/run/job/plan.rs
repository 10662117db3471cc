//! The plan: what changed in the crate's source, whether it can be applied at all, and
//! what the patch must compile.

use super::build::{Form, StartedBuild};
use super::Stop;
use crate::detect::source::{self, Entry, Snapshot, Switch};
use crate::detect::sources_hash;
use crate::run::Driver;
use crate::workspace::HotCrate;
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

/// What a job knows before it builds.
pub(super) struct Plan {
    /// The crate.
    pub(super) krate: HotCrate,
    /// When the first save this job applies was made.
    pub(super) saved: Instant,
    /// `now`: applied whatever the mode (not if skipped).
    pub(super) force: bool,
    /// The sources' hash before they were read: if it changes before the build ends,
    /// the scan and the build may have read different text.
    pub(super) sources: u64,
    /// The source as scanned, or why it could not be.
    pub(super) scanned: Result<Snapshot, String>,
    /// Time the scan took.
    pub(super) scan_time: Duration,
    /// The hot functions whose source changed; `None` when the scan failed.
    pub(super) edited: Option<BTreeSet<String>>,
    /// For a body-only edit: the hot functions a linked patch compiles whole (the
    /// others are stubs). `None`: all whole.
    pub(super) whole: Option<BTreeSet<String>>,
    /// Build with debug info and compare layouts: something that decides layouts
    /// changed (or the scan could not tell).
    pub(super) debuginfo: bool,
    /// The crate's statics and thread-locals, by path.
    pub(super) statics: HashSet<String>,
    /// A linked build started on a guess before the scan, if there is one.
    pub(super) early: Option<StartedBuild>,
}

impl Plan {
    /// Whether the sources are still those the job started from.
    pub(super) fn current(&self) -> impl Fn() -> bool {
        let (src, at_start) = (self.krate.src.clone(), self.sources);
        move || sources_hash(&src) == at_start
    }

    /// What the linked build compiles: `ENV_FULL_FORM`'s value and debug info.
    pub(super) fn form(&self) -> (Option<String>, bool) {
        let full = self.whole.as_ref().map(|ids| hotreload_protocol::full_form::encode(&self.krate.crate_name, ids));
        (full, self.debuginfo)
    }

    /// Whether a linked patch of it holds only what changed (stubs for the rest).
    pub(super) fn partial(&self) -> bool {
        self.whole.is_some()
    }
}

impl Driver {
    /// Whether `package` is hot (depends on the runtime, so `#[hot]` may be in it).
    pub(super) fn is_hot(&self, package: &str) -> bool {
        self.ws.members.get(package).is_some_and(|m| m.hot)
    }

    /// Reads what changed and decides what to build. Stops when nothing the program
    /// runs changed, when the change cannot be applied, or when the sources are those
    /// that failed last time.
    pub(super) fn plan(&mut self, krate: HotCrate, saved: Instant, force: bool) -> Result<Plan, Stop> {
        // Start rustc on a guess of what changed, from the files' text; the scan below,
        // while it compiles, says whether the guess holds. Dropped, it is stopped.
        let early = self.start_on_guess(&krate);
        // Hashed before the scan reads the files (see `Plan::sources`).
        let sources = sources_hash(&krate.src);
        self.state(&krate.package).running.seen = Some(sources);
        let scan_started = Instant::now();
        let scanned = source::scan(&krate.crate_name, &krate.root, &self.cfg_of(&krate.crate_name));
        let scan_time = scan_started.elapsed();
        if self.state(&krate.package).cache.failed == Some(sources) {
            return Err(Stop::StillFailing);
        }
        let statics = scanned.as_ref().map(Snapshot::statics).unwrap_or_default();
        let mut plan = Plan {
            krate,
            saved,
            force,
            sources,
            scanned,
            scan_time,
            edited: None,
            whole: None,
            debuginfo: true,
            statics,
            early,
        };
        if let Ok(new) = plan.scanned.clone() {
            self.compare_source(&mut plan, new)?;
        }
        Ok(plan)
    }

    /// Compares the scanned source with the one the program runs, and fills in what
    /// the plan builds.
    fn compare_source(&mut self, plan: &mut Plan, new: Snapshot) -> Result<(), Stop> {
        let name = plan.krate.package.clone();
        let (entries, hot) = (self.entries_enabled(), self.is_hot(&name));
        let state = self.state(&name);
        let switch = if entries { Switch::Entries } else { Switch::Slots };
        let diff = source::compare_as(&state.running.snapshot, &new, switch);
        let unsaid: Vec<_> = diff.not_hot.iter().filter(|(id, _)| state.said.not_hot.insert(id.clone())).collect();
        for (id, reason) in unsaid {
            self.shell.note(format_args!("not hot: `{id}`: {reason}"));
        }
        if !diff.blockers.is_empty() {
            return Err(Stop::Refused(diff.blockers.iter().map(|b| format!("`{}`: {}", b.item, b.reason)).collect()));
        }
        for warning in &diff.warnings {
            self.shell.warn(warning);
        }
        self.warn_of_consts(&name, &diff.public_consts);
        // A linked patch refuses them, with its reason: warning of fresh copies first
        // contradicted that.
        if !self.linked_open(&plan.krate) {
            for id in &diff.new_thread_locals {
                self.shell.warn(format_args!(
                    "thread-local `{id}` is new: the running program's threads have no storage for it, so \
                     reloaded code gets a fresh copy with each reload until the program restarts"
                ));
            }
        }
        // A crate holding copies of another's changed code, calling a function it
        // removed, or retried after a failure is rebuilt unchanged.
        let against_new = self.copies_held.contains_key(&name) || self.rebuild_unchanged.contains(&name);
        if diff.bodies_only && diff.edited.is_empty() && !against_new {
            self.state(&name).running.snapshot = new;
            return Err(Stop::Unchanged("nothing the program runs changed".into()));
        }
        // With entries redirected, always: closures and `async` bodies made before the
        // edit run new code on their old environments, whose layouts are compared; and
        // debug info changes the code rustc generates, so every patch of the crate must
        // have it for only what changed to compare unequal.
        plan.debuginfo = diff.layouts_may_change || entries;
        if let (true, true, Some(agent)) = (diff.bodies_only, hot, &self.agent) {
            plan.whole = Some(whole_form(diff.edited.clone(), &new, &agent.program));
        }
        plan.edited = Some(diff.edited);
        Ok(())
    }

    /// Says `Compiling` for `package`'s patch, unless a superseded job already did.
    pub(super) fn say_compiling(&mut self, package: &str) {
        let said = &mut self.state(package).said.compiling;
        if !*said {
            *said = true;
            self.shell.status("Compiling", format_args!("{package} (hot patch)"));
        }
    }

    /// Warns of each changed `pub` const of `package` that a crate depending on it
    /// names in its sources: that crate has the old value compiled in. A const no other
    /// crate names is this crate's alone, and its new value is all there is.
    fn warn_of_consts(&mut self, package: &str, consts: &[String]) {
        if consts.is_empty() {
            return;
        }
        let texts: Vec<(String, String)> = self
            .dependents(package)
            .into_iter()
            .filter_map(|d| Some((d.clone(), self.krate(&d)?)))
            .flat_map(|(d, krate)| {
                crate::detect::read_sources(&krate.src).texts.into_values().map(move |t| (d.clone(), t))
            })
            .collect();
        for id in consts {
            let name = id.rsplit("::").next().unwrap_or(id);
            let users: BTreeSet<&str> =
                texts.iter().filter(|(_, text)| names_word(text, name)).map(|(d, _)| d.as_str()).collect();
            if users.is_empty() {
                continue;
            }
            let verb = if users.len() == 1 { "keeps" } else { "keep" };
            let users = users.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", ");
            self.shell.warn(format_args!(
                "const `{id}` changed: this crate's functions switch to the new value; {users}, which \
                 name{} it, {verb} the old one until the program restarts",
                if verb == "keeps" { "s" } else { "" }
            ));
        }
    }

    /// Starts a linked patch build on [`source::guess_edited`]'s guess, when there is
    /// one and the route is open; says `Compiling` then.
    fn start_on_guess(&mut self, krate: &HotCrate) -> Option<StartedBuild> {
        let agent = self.agent.as_ref()?;
        let state = self.crates.get(&krate.package)?;
        let ids = whole_form(source::guess_edited(&state.running.snapshot)?, &state.running.snapshot, &agent.program);
        // A crate without `#[hot]` compiles as it is written: no stubs.
        let full = self.is_hot(&krate.package).then(|| hotreload_protocol::full_form::encode(&krate.crate_name, &ids));
        let debuginfo = self.entries_enabled();
        let started = self.start_linked(krate, Form { full: full.as_deref(), debuginfo }).ok()?;
        self.say_compiling(&krate.package);
        Some(started)
    }
}

/// Whether `text` has `word` as a whole identifier (`SLOTS`, not `MAX_SLOTS`).
fn names_word(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back().is_none_or(|c| !ident(c));
        let after = text[at + word.len()..].chars().next().is_none_or(|c| !ident(c));
        before && after
    })
}

/// The hot function ids of a snapshot.
pub(super) fn hot_ids(snapshot: &Snapshot) -> impl Iterator<Item = String> + '_ {
    snapshot.items.iter().filter(|(_, e)| matches!(e, Entry::Hot { .. })).map(|(id, _)| id.clone())
}

/// The hot functions a linked patch compiles whole: the `edited` ones, and every one
/// the program's own build lacks (its slot is not the program's, so no stub can reach it).
fn whole_form(mut edited: BTreeSet<String>, snapshot: &Snapshot, program: &BTreeSet<String>) -> BTreeSet<String> {
    edited.extend(hot_ids(snapshot).filter(|id| !program.contains(id)));
    edited
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::source::snapshot_of as snapshot;

    #[test]
    fn a_partial_patch_compiles_the_edited_and_the_new_whole() {
        let now = snapshot(
            "#[hotreload::hot] pub fn old() -> u32 { 1 }\n\
             #[hotreload::hot] pub fn edited() -> u32 { 2 }\n\
             #[hotreload::hot] pub fn added() -> u32 { 3 }",
        );
        let program: BTreeSet<String> = ["logic::old", "logic::edited"].map(String::from).into();
        let edited: BTreeSet<String> = ["logic::edited".to_string()].into();
        let whole = whole_form(edited, &now, &program);
        assert_eq!(whole, ["logic::added", "logic::edited"].map(String::from).into());
    }

    #[test]
    fn a_word_is_a_whole_identifier() {
        assert!(names_word("let n = logic::SLOTS - 1;", "SLOTS"));
        assert!(names_word("SLOTS", "SLOTS"));
        assert!(!names_word("let n = MAX_SLOTS;", "SLOTS"));
        assert!(!names_word("let n = SLOTS2;", "SLOTS"));
    }
}
