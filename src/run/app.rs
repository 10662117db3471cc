//! The running program: its own process group, the terminal handed to it, stopped
//! as a group (SIGTERM, a grace period, SIGKILL). Unix-specific.

use anyhow::{Context, Result};
use std::io::IsTerminal;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A started program.
pub struct App {
    pid: u32,
    started: Instant,
    exit: Arc<(Mutex<Option<ExitStatus>>, Condvar)>,
    foreground: bool,
}

impl App {
    /// Starts `executable` with stdin, stdout and stderr passed through, in a process
    /// group of its own; `on_exit` is called from another thread when it exits.
    pub fn spawn(
        executable: &Path,
        args: &[String],
        env: &[(&str, std::ffi::OsString)],
        on_exit: impl FnOnce(u32, ExitStatus) + Send + 'static,
    ) -> Result<App> {
        let mut cmd = Command::new(executable);
        cmd.args(args).process_group(0);
        for (key, value) in env {
            cmd.env(key, value);
        }
        let mut child = cmd.spawn().with_context(|| format!("failed to start {}", executable.display()))?;
        let pid = child.id();
        // An interactive program reads the terminal: make its group the foreground one,
        // so it gets keystrokes and Ctrl-C directly.
        let foreground = std::io::stdin().is_terminal();
        if foreground {
            // SAFETY: plain syscalls on fd 0; SIGTTOU is ignored so we may call this
            // from a background group later.
            unsafe {
                libc::signal(libc::SIGTTOU, libc::SIG_IGN);
                libc::tcsetpgrp(0, pid as libc::pid_t);
            }
        }
        let exit = Arc::new((Mutex::new(None), Condvar::new()));
        let shared = exit.clone();
        std::thread::Builder::new().name("hotreload-app-wait".into()).spawn(move || {
            let status = child.wait().unwrap_or_else(|_| ExitStatus::from_raw(1 << 8));
            *shared.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
            shared.1.notify_all();
            on_exit(pid, status);
        })?;
        Ok(App { pid, started: Instant::now(), exit, foreground })
    }

    /// The program's process id (and process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How long it has been running.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Sends `signal` to the program's whole process group.
    pub fn signal(&self, signal: i32) {
        if self.status().is_none() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(-(self.pid as libc::pid_t), signal) };
        }
    }

    /// Its exit status, once it has exited.
    pub fn status(&self) -> Option<ExitStatus> {
        *self.exit.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait(&self, timeout: Duration) -> Option<ExitStatus> {
        let (lock, cvar) = &*self.exit;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = cvar.wait_timeout_while(guard, timeout, |s| s.is_none()).unwrap_or_else(|e| e.into_inner());
        *guard
    }

    /// Stops the whole group: SIGTERM, up to `grace` to exit, then SIGKILL.
    pub fn stop(&self, grace: Duration) -> ExitStatus {
        self.signal(libc::SIGTERM);
        if let Some(status) = self.wait(grace) {
            // Children it left behind in its group go too.
            // SAFETY: as in `signal`.
            unsafe { libc::kill(-(self.pid as libc::pid_t), libc::SIGKILL) };
            return status;
        }
        // SAFETY: as in `signal`.
        unsafe { libc::kill(-(self.pid as libc::pid_t), libc::SIGKILL) };
        self.wait(Duration::from_secs(10)).unwrap_or_else(|| ExitStatus::from_raw(libc::SIGKILL))
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if self.status().is_none() {
            self.stop(Duration::from_secs(2));
        }
        if self.foreground {
            // SAFETY: plain syscalls; SIGTTOU is ignored (see `spawn`).
            unsafe { libc::tcsetpgrp(0, libc::getpgrp()) };
        }
    }
}

/// `exit status: 3`, `signal: 9 (SIGKILL)`, as cargo words it.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status: {code}"),
        (None, Some(signal)) => format!("signal: {signal} ({})", signal_name(signal)),
        _ => status.to_string(),
    }
}

/// The name of a signal the tool reports (`SIGKILL`), or `signal` for others.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        _ => "signal",
    }
}
