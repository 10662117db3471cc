//! The record: what the session knows once the program runs a patch.

use super::load::Applied;
use super::plan::Plan;
use super::verify::Placed;
use super::Route;
use crate::run::Driver;
use hotreload_protocol::record::crate_of;
use std::time::Duration;

/// What the user is told of an applied patch.
pub(super) struct Report {
    /// The package.
    pub(super) name: String,
    /// Save → applied.
    pub(super) elapsed: Duration,
    /// The route it took.
    pub(super) route: Route,
    /// The patch, its checks and the agent's answer.
    pub(super) applied: Applied,
    /// Functions whose code changed and switched (the edited ones of a partial patch,
    /// and those redirected at their entries).
    pub(super) updated: Vec<String>,
    /// Functions new to the program.
    pub(super) added: Vec<String>,
    /// Functions the new source lacks (existing callers keep the old code).
    pub(super) removed: Vec<String>,
    /// Changed functions that keep their old code, and why.
    pub(super) kept: Vec<(String, &'static str)>,
    /// Crates rebuilt next because they hold copies of its changed code.
    pub(super) holders: usize,
    /// Save → the build's start.
    pub(super) waited: Duration,
    /// Time the source scan took.
    pub(super) scan_time: Duration,
}

impl Driver {
    /// Takes an applied patch into the session's state: the functions the program now
    /// knows, the crate's generation, functions and source.
    pub(super) fn record(&mut self, plan: Plan, mut applied: Applied) -> Report {
        let elapsed = plan.saved.elapsed();
        let entries = applied.verified.entries.take();
        let crate_name = &plan.krate.crate_name;
        let verified = &applied.verified;
        let in_patch: Vec<String> =
            verified.library.functions.keys().filter(|id| crate_of(id) == crate_name).cloned().collect();
        if let Some(agent) = self.agent.as_mut() {
            for id in &in_patch {
                agent.known.insert(id.clone(), verified.library.functions[id].signature);
            }
        }
        let running = &mut self.state(&plan.krate.package).running;
        running.generation = verified.generation;
        let partial = plan.partial() && matches!(verified.route, Placed::Linked(..));
        if partial {
            running.current.extend(in_patch);
            for id in &verified.diff.removed {
                running.current.remove(id);
            }
        } else {
            running.current = in_patch.into_iter().collect();
        }
        if let Ok(new) = plan.scanned {
            running.snapshot = new;
        }
        let mut updated: Vec<String> = match &plan.edited {
            Some(edited) => verified.diff.updated.iter().filter(|id| edited.contains(*id)).cloned().collect(),
            None => verified.diff.updated.clone(),
        };
        let (mut added, mut removed) = (verified.diff.added.clone(), verified.diff.removed.clone());
        let mut kept = Vec::new();
        let mut holders = 0;
        if let Some(entries) = entries {
            let running = &mut self.state(&plan.krate.package).running;
            running.replace_rlib(entries.rlib);
            if let Some(old) = &running.code {
                running.dropped.extend(old.missing_from(&entries.code).cloned());
            }
            running.code = Some(entries.code);
            updated.extend(entries.updated);
            added.extend(entries.added.into_iter().filter(|n| !added.contains(n)).collect::<Vec<_>>());
            removed.extend(entries.removed.into_iter().filter(|n| !removed.contains(n)).collect::<Vec<_>>());
            kept = entries.kept;
            self.removed_symbols.insert(plan.krate.package.clone(), entries.removed_symbols);
            self.linking.generations.push(entries.image);
            holders = entries.holders.len();
            for (holder, names) in entries.holders {
                self.copies_held.entry(holder).or_default().extend(names);
            }
        }
        Report {
            name: plan.krate.package,
            elapsed,
            route: verified.route.route(),
            waited: verified.build_started.saturating_duration_since(plan.saved),
            scan_time: plan.scan_time,
            updated,
            added,
            removed,
            kept,
            holders,
            applied,
        }
    }
}
