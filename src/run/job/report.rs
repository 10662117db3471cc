//! The lines an applied patch shows: one `Reloaded` line, and at `-v` what changed and
//! where the time went.

use super::record::Report;
use super::verify::Placed;
use crate::link::Linked;
use crate::run::Driver;
use crate::shell::Verbosity;

impl Driver {
    /// Says what `report` applied.
    pub(super) fn report(&self, report: &Report) {
        let verified = &report.applied.verified;
        let how = match &verified.route {
            Placed::Linked(l, ..) => format!("linked, {}", shared_state(l)),
            Placed::SelfContained => "self-contained".to_string(),
        };
        let nothing = report.updated.is_empty() && report.added.is_empty() && report.removed.is_empty();
        // Only copies other crates hold changed: their `Updating` and `Reloaded` lines
        // follow ("0 updated" here would say the edit did not reach the program, and
        // "Reloaded" that it already had).
        if nothing && report.kept.is_empty() && report.holders > 0 {
            self.shell.status(
                "Loaded",
                format_args!(
                    "{}: its changed code runs as copies other crates hold, updated next ({} ms, {how})",
                    report.name,
                    report.elapsed.as_millis()
                ),
            );
            return;
        }
        // Only functions that keep their old code (a running `main`): "Reloaded …: 0
        // updated" above their warning would say the edit reached the program.
        if nothing && !report.kept.is_empty() {
            for (name, why) in &report.kept {
                self.shell.warn(format_args!("`{name}` keeps its old code: {why}"));
            }
            return;
        }
        self.shell.status(
            "Reloaded",
            format_args!(
                "{}: {} updated, {} added, {} removed ({} ms, {how})",
                report.name,
                report.updated.len(),
                report.added.len(),
                report.removed.len(),
                report.elapsed.as_millis()
            ),
        );
        for (name, why) in &report.kept {
            self.shell.warn(format_args!("`{name}` keeps its old code: {why}"));
        }
        for name in &report.applied.running {
            self.shell.warn(format_args!(
                "`{name}` was running in a thread when it switched: that call goes on in its old code (a loop that \
                 never returns keeps the body it started with; move the loop's body into a function to edit it \
                 live); calls from now on run the new code"
            ));
        }
        if self.shell.verbosity() >= Verbosity::Verbose {
            self.report_functions(report);
            self.report_timing(report);
        }
    }

    /// `-v`: each function, and each static the patch does not share.
    fn report_functions(&self, report: &Report) {
        let verified = &report.applied.verified;
        if let Placed::Linked(l, ..) = &verified.route {
            // `tracing`'s macros declare two per event or span: listed, they were most
            // of a reload's lines.
            let (sites, others): (Vec<&String>, Vec<&String>) = l.fresh.iter().partition(|p| is_call_site(p));
            for path in others {
                self.shell.status("own copy", format_args!("{path} (a static the program does not share)"));
            }
            if !sites.is_empty() {
                let sites = plural(sites.len(), "`tracing` call-site static");
                self.shell.status("own copy", format_args!("of {sites} (they describe the new code, registered anew)"));
            }
            if l.reused > 0 {
                let n = l.reused;
                self.shell
                    .status("reused", format_args!("{n} unchanged functions: their running copies, not mapped again"));
            }
        }
        for id in &report.updated {
            self.shell.status("updated", id);
        }
        for id in &report.added {
            self.shell.status("added", id);
        }
        for id in &report.removed {
            self.shell.status("removed", format_args!("{id} (existing callers keep the old code)"));
        }
    }

    /// `-v`: where the time went.
    fn report_timing(&self, report: &Report) {
        let (verified, applied) = (&report.applied.verified, &report.applied);
        let route = match &verified.route {
            Placed::Linked(_, compiled, linked) => {
                format!("linked: rustc {} ms, link {} ms", compiled.as_millis(), linked.as_millis())
            }
            Placed::SelfContained => "self-contained".to_string(),
        };
        self.shell.status(
            "Timing",
            format_args!(
                "wait {} ms (source scan {:.1} ms), build {} ms ({route}), diff {:.1} ms, load {:.1} ms, \
                 switch {:.3} ms ({} slots, {} entries; threads held {} µs), generation {}",
                report.waited.as_millis(),
                report.scan_time.as_secs_f64() * 1e3,
                verified.build_time.as_millis(),
                verified.check_time.as_secs_f64() * 1e3,
                applied.load_micros as f64 / 1e3,
                applied.apply_micros as f64 / 1e3,
                applied.switched,
                applied.redirected,
                applied.held_micros,
                verified.generation,
            ),
        );
    }
}

/// `3 statics and 1 thread-local shared` for the `Reloaded` line.
fn shared_state(linked: &Linked) -> String {
    format!("{} and {} shared", plural(linked.statics, "static"), plural(linked.thread_locals, "thread-local"))
}

/// `1 static`, `2 statics`.
fn plural(n: usize, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

/// Whether static `path` (demangled) is one of the records `tracing`'s macros declare
/// for each event and span (`…::__CALLSITE`, `…::CALLSITE`, `…::CALLSITE::META`).
fn is_call_site(path: &str) -> bool {
    let path = path.strip_suffix("::META").unwrap_or(path);
    path.ends_with("::CALLSITE") || path.ends_with("::__CALLSITE")
}

#[cfg(test)]
mod tests {
    use super::is_call_site;

    #[test]
    fn tracing_call_sites_are_told_apart() {
        assert!(is_call_site("mini_redis::db::Db::get::CALLSITE"));
        assert!(is_call_site("mini_redis::db::Db::get::{{closure}}::CALLSITE::META"));
        assert!(!is_call_site("logic::COUNTER"));
        assert!(is_call_site("shared::traced::__hotreload_body::__CALLSITE"));
        assert!(!is_call_site("logic::CALLSITES"));
        assert!(!is_call_site("logic::META"));
    }
}
