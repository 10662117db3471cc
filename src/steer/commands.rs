//! `cargo hotreload mode|now|aimport|status`: settings for the running session, kept
//! in the manifest only with `--save`. Without `--manifest-path` the session is the
//! one of the workspace here, else the only one running below this directory.

use crate::apply::session::{self, SessionRecord};
use crate::cli::{Format, GlobalArgs};
use crate::error::{exit, Error};
use crate::run::hot_target_dir;
use crate::shell::Shell;
use crate::steer::settings::{self, Settings};
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use hotreload_protocol::control::{ControlReply, ControlRequest, Mode, Status};
use hotreload_protocol::{message, peer};
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;

/// The workspace, its settings, and its running session if any.
struct Target {
    ws: Workspace,
    settings: Settings,
    session: Option<SessionRecord>,
}

fn target(global: &GlobalArgs) -> Result<Target, Error> {
    let here = Workspace::load(global.manifest_path.as_deref(), global.target_dir.as_deref());
    if let Ok(ws) = &here {
        if let Some(session) = session::find(&hot_target_dir(ws), &ws.root) {
            return Ok(Target::of(here?, Some(session))?);
        }
    }
    if global.manifest_path.is_none() {
        // `run --manifest-path demo/Cargo.toml` typed here: the session runs below.
        let dir = std::env::current_dir()?.canonicalize()?;
        let below: Vec<SessionRecord> =
            session::running().into_iter().filter(|r| r.workspace.starts_with(&dir)).collect();
        match below.as_slice() {
            [one] => {
                let ws = Workspace::load(Some(&one.workspace.join("Cargo.toml")), global.target_dir.as_deref())?;
                return Ok(Target::of(ws, Some(one.clone()))?);
            }
            // Neither in a workspace nor above a session: nothing to talk to.
            [] if here.is_err() => {
                let hint = " or below it (and it is not inside a cargo workspace: name one with --manifest-path)";
                return Err(Error::NoSession { workspace: dir, hint });
            }
            [] => {}
            many => {
                let listed: Vec<String> =
                    many.iter().map(|r| format!("{} (pid {})", r.workspace.display(), r.pid)).collect();
                return Err(Error::Usage(format!(
                    "sessions run for {} workspaces below this directory: {}; choose one with --manifest-path",
                    many.len(),
                    listed.join(", ")
                )));
            }
        }
    }
    Ok(Target::of(here?, None)?)
}

impl Target {
    /// The workspace with its settings: the running session's, else those saved.
    fn of(ws: Workspace, session: Option<SessionRecord>) -> Result<Target> {
        let mut settings = Settings::load(&ws.root.join("Cargo.toml"))?;
        if let Some(record) = &session {
            if let ControlReply::Status(status) = ask(record, &ControlRequest::Status)? {
                settings = Settings::from_status(&status);
            }
        }
        Ok(Target { ws, settings, session })
    }
}

/// Sends one request to a session and reads its answer.
fn ask(record: &SessionRecord, request: &ControlRequest) -> Result<ControlReply> {
    let mut stream = UnixStream::connect(&record.socket)
        .with_context(|| format!("failed to reach the session at {}", record.socket.display()))?;
    // The session must be ours as much as we must be its user.
    peer::check_same_user(&stream).context("the session's socket belongs to another user")?;
    stream.write_all(&message::encode(request))?;
    let mut reader = BufReader::new(stream);
    message::read::<ControlReply>(&mut reader)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .context("the session closed the connection without answering")
}

/// Tells the running session, and with `save` writes the manifest; prints what happened.
fn apply(t: &Target, settings: &Settings, save: bool, shell: &Shell) -> Result<(), Error> {
    let manifest = t.ws.root.join("Cargo.toml");
    if save {
        settings.save(&manifest)?;
        shell.status("Saved", format_args!("the settings in {}", manifest.display()));
    } else if t.session.is_none() {
        let hint = "; `--save` keeps the setting in its Cargo.toml for the next one";
        return Err(Error::NoSession { workspace: t.ws.root.clone(), hint });
    }
    match &t.session {
        Some(record) => {
            let request = ControlRequest::Settings {
                mode: settings.mode,
                reload: settings.reload.iter().cloned().collect(),
                skip: settings.skip.iter().cloned().collect(),
            };
            if let ControlReply::Done { lines, .. } = ask(record, &request)? {
                for line in lines {
                    shell.note(line);
                }
            }
        }
        None => shell.note("no `cargo hotreload run` session is running; the next one starts with this setting"),
    }
    Ok(())
}

/// `cargo hotreload mode [VALUE]`
pub fn mode(global: &GlobalArgs, value: Option<&str>, save: bool, shell: &Shell) -> Result<i32, Error> {
    let t = target(global)?;
    let Some(value) = value else {
        // The live session's, which can differ from the saved one.
        println!("{}", t.settings.mode);
        return Ok(exit::OK);
    };
    let Some(mode) = Mode::parse(value) else {
        return Err(Error::Usage(format!("`{value}` is not a mode; use one of {}", Mode::VALUES)));
    };
    let mut settings = t.settings.clone();
    settings.mode = mode;
    apply(&t, &settings, save, shell)?;
    if t.session.is_none() {
        // A running session's answer already said it.
        shell.status("Mode", mode);
    }
    Ok(exit::OK)
}

/// `cargo hotreload aimport [CRATES]`
pub fn aimport(global: &GlobalArgs, crates: &[String], save: bool, shell: &Shell) -> Result<i32, Error> {
    let t = target(global)?;
    // `aimport a -b --save`: taken for a crate list by its hyphen-friendly parsing.
    let save = save || crates.iter().any(|c| c == "--save");
    let crates: Vec<String> = crates.iter().filter(|c| *c != "--save").cloned().collect();
    let marks = settings::parse_aimport(&crates).map_err(|e| Error::Usage(format!("{e:#}")))?;
    if marks.is_empty() {
        print!("{}", t.settings.listing());
        return Ok(exit::OK);
    }
    let entries = crate::build::LINKED_PATCHES;
    let hot: Vec<String> = t.ws.reloadable(entries).map(|m| m.name.clone()).collect();
    let mut resolved = Vec::new();
    for mark in marks {
        let name = mark.name().to_string();
        let member =
            t.ws.members
                .values()
                .find(|m| m.name == name || m.lib.as_ref().is_some_and(|(c, _)| *c == name.replace('-', "_")));
        let Some(member) = member.filter(|m| m.lib.is_some()) else {
            return Err(Error::Usage(format!(
                "`{name}` is not a library crate of this workspace; its reloadable crates are: {}",
                if hot.is_empty() { "none".to_string() } else { hot.join(", ") }
            )));
        };
        if !member.reloadable(entries) {
            return Err(Error::Usage(format!(
                "`{}` does not use hotreload; to make it hot, add `hotreload-runtime` to its [dependencies] \
                 and put #[hotreload::hot] on the functions or impl blocks to reload",
                member.name
            )));
        }
        resolved.push(match mark {
            settings::Mark::Reload(_) => settings::Mark::Reload(member.name.clone()),
            settings::Mark::Skip(_) => settings::Mark::Skip(member.name.clone()),
        });
    }
    let mut settings = t.settings.clone();
    settings.mark(&resolved);
    apply(&t, &settings, save, shell)?;
    print!("{}", settings.listing());
    Ok(exit::OK)
}

/// `cargo hotreload now`
pub fn now(global: &GlobalArgs, shell: &Shell) -> Result<i32, Error> {
    let t = target(global)?;
    let Some(record) = &t.session else {
        return Err(Error::NoSession { workspace: t.ws.root.clone(), hint: "" });
    };
    match ask(record, &ControlRequest::Now)? {
        ControlReply::Done { ok, lines } => {
            if ok && lines.is_empty() {
                shell.note("nothing to reload: no crate changed since it was last applied");
            }
            for line in &lines {
                if ok {
                    shell.status("Reload", line);
                } else {
                    shell.error(line);
                }
            }
            if ok {
                Ok(exit::OK)
            } else {
                Err(Error::NotReloaded)
            }
        }
        other => Err(anyhow::anyhow!("unexpected answer from the session: {other:?}").into()),
    }
}

/// `cargo hotreload status`
pub fn status(global: &GlobalArgs, format: Format, _shell: &Shell) -> Result<i32, Error> {
    let t = target(global)?;
    let Some(record) = &t.session else {
        match format {
            Format::Json => println!("{}", serde_json::json!({ "running": false, "mode": t.settings.mode })),
            // What the next `run` starts with: the manifest's settings, or the default.
            Format::Human => println!("mode: {} (for the next `run`)", t.settings.mode),
        }
        return Err(Error::NoSession { workspace: t.ws.root.clone(), hint: "" });
    };
    let ControlReply::Status(status) = ask(record, &ControlRequest::Status)? else {
        return Err(anyhow::anyhow!("unexpected answer from the session").into());
    };
    match format {
        Format::Json => {
            let mut value = serde_json::to_value(&status).context("failed to write the status")?;
            value["running"] = true.into();
            println!("{}", serde_json::to_string_pretty(&value).context("failed to write the status")?);
        }
        Format::Human => print!("{}", human(&status)),
    }
    Ok(exit::OK)
}

fn human(s: &Status) -> String {
    let mut out = format!("session: pid {}\n", s.session_pid);
    match (s.app_pid, s.app_uptime_secs) {
        (Some(pid), Some(up)) => out += &format!("program: pid {pid}, up {}\n", duration(up)),
        _ => out += "program: not running\n",
    }
    out += &format!("mode:    {}\n\n", s.mode);
    out += &format!("{:<20} {:<7} {:>4}  {:<8} {}\n", "crate", "mark", "gen", "pending", "last reload");
    for c in &s.crates {
        let last = match (&c.last_result, c.last_secs_ago) {
            (Some(word), Some(ago)) => {
                // A refusal for a restart is said on the line below: once.
                let said_below = |d: &&str| c.restart_needed.as_deref().is_some_and(|why| d.contains(why));
                let detail = c.last_detail.as_deref().filter(|d| !said_below(d));
                let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
                format!("{word}{detail}, {} ago", duration(ago))
            }
            _ => "-".into(),
        };
        let pending = match (&c.restart_needed, c.pending) {
            (Some(_), _) => "restart",
            (None, true) => "yes",
            (None, false) => "no",
        };
        out += &format!("{:<20} {:<7} {:>4}  {:<8} {last}\n", c.name, c.mark, c.generation, pending);
        if let Some(why) = &c.restart_needed {
            out += &format!("{:<20} restart needed: {why}\n", "");
        }
        if !c.recent_ms.is_empty() {
            let times: Vec<String> = c.recent_ms.iter().map(|ms| format!("{ms} ms")).collect();
            out += &format!("{:<20} save → applied: {}\n", "", times.join(", "));
        }
    }
    out
}

fn duration(secs: f64) -> String {
    match secs {
        s if s < 60.0 => format!("{s:.0}s"),
        s if s < 3600.0 => format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64),
        s => format!("{}h{:02}m", (s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64),
    }
}
