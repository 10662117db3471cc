//! The linked route of a patch: the crate compiled as the program's build compiled it,
//! then linked against the running program (see [`crate::link`]). When it cannot be
//! taken, the reason is said and the patch is built self-contained instead.

use super::Driver;
use crate::compile::{self, LINKED_PATCHES};
use crate::host::HostImage;
use crate::link;
use anyhow::Result;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Lints allowed in a build with stubs: each fires on items (a helper, an import, a
/// static, a macro) used only inside functions compiled as stubs.
const STUB_LINTS: [&str; 8] =
    ["-A", "dead_code", "-A", "unused_imports", "-A", "unused_macros", "-A", "unused_macro_rules"];

/// What a linked patch build compiles.
#[derive(Clone, Copy, Debug)]
pub(super) struct Form<'a> {
    /// The hot functions to compile in full (`hotreload_protocol::ENV_FULL_FORM`'s
    /// value), the others as stubs; `None`: all in full.
    pub(super) full: Option<&'a str>,
    /// With debug info, for [`crate::layout`] to compare: only when something that
    /// decides type layouts changed, since generating it costs rustc time.
    pub(super) debuginfo: bool,
}

impl Form<'static> {
    /// Every hot function a stub, no debug info: what priming the incremental cache compiles.
    pub(super) const STUBS: Form<'static> = Form { full: Some(""), debuginfo: false };
}

/// What the session keeps for linking patches.
#[derive(Default)]
pub(super) struct Linking {
    /// `--self-contained`: never link.
    pub(super) disabled: bool,
    /// The program's executable as read for the running program, or why it cannot be
    /// linked against; reset at every (re)start.
    pub(super) host: Option<Result<HostImage, String>>,
    /// `rust-lld`, once looked for.
    pub(super) linker: Option<Option<PathBuf>>,
    /// Where the next patch goes in the running program.
    pub(super) next_base: u64,
}

/// A patch linked against the running program.
pub(super) struct LinkedBuild {
    /// The image file, ready to place in the session.
    pub(super) file: PathBuf,
    /// The rlib it was linked from.
    pub(super) rlib: PathBuf,
    /// Whether the rlib has debug info: only when something that decides type layouts
    /// changed, so only then are layouts compared.
    pub(super) debuginfo: bool,
    /// What was bound.
    pub(super) linked: link::Linked,
    /// Time in rustc.
    pub(super) compiled: Duration,
    /// Time reading, binding and linking.
    pub(super) link_time: Duration,
    /// Held until the file is placed in the session.
    _lock: compile::BuildLock,
}

impl Driver {
    /// The rustc command for `name`'s linked patch, or why the linked route is closed.
    fn linked_invocation(&self, name: &str, crate_name: &str, form: Form<'_>) -> Result<compile::Direct, String> {
        if !LINKED_PATCHES || self.linking.disabled {
            return Err("--self-contained".into());
        }
        let Some(host) = &self.host else { return Err("the program is not built".into()) };
        let Some(invocation) = host.invocations.get(crate_name).cloned() else {
            return Err(format!(
                "there is no record of how the program's build compiled `{name}`; `cargo clean` of {} restores it",
                self.profile.host_dir().display()
            ));
        };
        if let Some(dep) =
            self.ws.dependencies_of(name).into_iter().find(|dep| self.crates.get(dep).is_some_and(|c| c.generation > 0))
        {
            return Err(format!(
                "it depends on `{dep}`, which was reloaded: only a self-contained build has its new code"
            ));
        }
        let invocation = invocation
            .for_linked_patch(&self.linked_dir().join(crate_name), &self.linked_dir().join("incremental"))
            .with_debuginfo(if form.debuginfo { 2 } else { 0 })
            .with_env(hotreload_protocol::ENV_RUNTIME_NAMES, &self.profile.runtime_names);
        Ok(match form.full {
            // Stubs have no bodies, so whatever only those bodies used looks unused to
            // rustc: lints a build of the whole source would not raise.
            Some(ids) => invocation.with_env(hotreload_protocol::ENV_FULL_FORM, ids).with_args(&STUB_LINTS),
            None => invocation,
        })
    }

    /// Whether `name` can take the linked route as things stand.
    pub(super) fn linked_open(&self, name: &str, crate_name: &str) -> bool {
        self.linked_invocation(name, crate_name, Form::STUBS).is_ok()
    }

    /// Where linked patches are built (under a lock of its own: self-contained builds
    /// in the patch directory never hold them up).
    fn linked_dir(&self) -> PathBuf {
        self.profile.patch_dir().join("linked").join(if self.profile.release { "release" } else { "debug" })
    }

    /// Compiles `name` once for the linked route, so the first real patch finds rustc's
    /// incremental cache warm (all stubs, as most of a typical patch is), the program's
    /// image read (~20 ms for a 10 MB debug program) and the linker found. Quiet: errors
    /// show when a patch is built.
    pub(super) fn prime_linked(&mut self, name: &str, crate_name: &str) {
        if let Ok(Ok(started)) = self.start_linked(name, crate_name, Form::STUBS) {
            let _ = started.rustc.wait(&self.shell, true, ".rlib", &|| true);
        }
    }

    /// The running program's executable as patches bind to it, read once per program.
    fn host_image(&mut self) -> &Result<HostImage, String> {
        let executable = self.host.as_ref().map(|h| h.executable.clone()).unwrap_or_default();
        self.linking.host.get_or_insert_with(|| HostImage::read(&executable).map_err(|e| format!("{e:#}")))
    }

    /// Builds `name`'s patch by the linked route. `Ok(Err(why))` when the route is
    /// not open for it (the patch is then built self-contained); a compile error is
    /// an `Err` as on the other route; a failed build of sources that are no longer
    /// `current` is [`compile::Superseded`].
    pub(super) fn build_linked(
        &mut self,
        name: &str,
        crate_name: &str,
        module_statics: &HashSet<String>,
        form: Form<'_>,
        quiet: bool,
        current: &dyn Fn() -> bool,
    ) -> Result<Result<LinkedBuild, String>> {
        match self.start_linked(name, crate_name, form)? {
            Ok(started) => self.finish_linked(started, module_statics, quiet, current),
            Err(why) => Ok(Err(why)),
        }
    }

    /// Starts rustc on `name`'s linked patch and returns while it compiles.
    pub(super) fn start_linked(
        &mut self,
        name: &str,
        crate_name: &str,
        form: Form<'_>,
    ) -> Result<Result<StartedBuild, String>> {
        let invocation = match self.linked_invocation(name, crate_name, form) {
            Ok(invocation) => invocation,
            Err(why) => return Ok(Err(why)),
        };
        let Some(pid) = self.app.as_ref().map(|a| a.pid()) else {
            return Ok(Err("the program is not running".into()));
        };
        if let Err(why) = self.host_image() {
            return Ok(Err(why.clone()));
        }
        let linker = self.linking.linker.get_or_insert_with(|| link::find_linker(invocation.program())).clone();
        let Some(linker) = linker else {
            return Ok(Err("no `rust-lld` in the toolchain, nor `ld.lld` on PATH".into()));
        };
        let dir = self.linked_dir();
        let lock = compile::BuildLock::acquire(&dir)?;
        let out_dir = dir.join(crate_name);
        std::fs::create_dir_all(&out_dir)?;
        let started = Instant::now();
        let rustc = compile::Rustc::spawn(&invocation, &self.ws.root)?;
        let (full, debuginfo) = (form.full.map(String::from), form.debuginfo);
        Ok(Ok(StartedBuild { rustc, full, debuginfo, pid, linker, out_dir, started, lock }))
    }

    /// Waits for a started build and links it.
    pub(super) fn finish_linked(
        &mut self,
        build: StartedBuild,
        module_statics: &HashSet<String>,
        quiet: bool,
        current: &dyn Fn() -> bool,
    ) -> Result<Result<LinkedBuild, String>> {
        let StartedBuild { rustc, pid, linker, out_dir, started, lock, debuginfo, .. } = build;
        let rlib = rustc.wait(&self.shell, quiet, ".rlib", current)?;
        let compiled = started.elapsed();

        let work_dir = out_dir.join("link");
        let output = out_dir.join("patch.elf");
        let Some(Ok(image)) = &self.linking.host else {
            anyhow::bail!("the program's image was read before the build")
        };
        let mut base = link::free_range(pid, self.linking.next_base.max(image.end).max(link::FIRST_BASE), 2 << 20)?;
        let mut linked = None;
        for _ in 0..2 {
            let request = link::Request {
                rlib: &rlib,
                host: image,
                base,
                output: &output,
                work_dir: &work_dir,
                module_statics,
                linker: &linker,
            };
            let candidate = match link::link(&request)? {
                Ok(candidate) => candidate,
                Err(why) => return Ok(Err(why)),
            };
            // Linked where the program has room? Otherwise once more where it has.
            let free = link::free_range(pid, candidate.start, candidate.end - candidate.start)?;
            if free == candidate.start {
                linked = Some(candidate);
                break;
            }
            base = free;
        }
        let Some(linked) = linked else { return Ok(Err("the program has no room for the patch below 2 GiB".into())) };
        self.linking.next_base = linked.end.next_multiple_of(2 << 20);
        let link_time = started.elapsed() - compiled;
        Ok(Ok(LinkedBuild { file: output, rlib, debuginfo, linked, compiled, link_time, _lock: lock }))
    }
}

/// A linked patch's rustc, running.
pub(super) struct StartedBuild {
    rustc: compile::Rustc,
    /// The `ENV_FULL_FORM` it was started with.
    pub(super) full: Option<String>,
    /// Whether it generates debug info.
    pub(super) debuginfo: bool,
    pid: u32,
    linker: PathBuf,
    out_dir: PathBuf,
    /// When rustc started.
    pub(super) started: Instant,
    lock: compile::BuildLock,
}

impl StartedBuild {
    /// Stops it: its guess was wrong, or the change cannot be applied.
    pub(super) fn cancel(self) {
        self.rustc.kill();
    }
}
