//! Callbacks run after a patch is applied.

use std::sync::{Arc, Mutex};

/// What changed in a reload, passed to [`on_reload`] callbacks.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReloadEvent {
    /// The crate that was patched (`my_crate`, as in paths).
    pub crate_name: String,
    /// Its new generation; the code the program started with is generation 0.
    pub generation: u64,
    /// Ids (module path and name) of the functions whose slots now reach new code.
    pub functions: Vec<String>,
}

type Callback = Arc<dyn Fn(&ReloadEvent) + Send + Sync>;

static CALLBACKS: Mutex<Vec<Callback>> = Mutex::new(Vec::new());

/// Runs `callback` after every applied patch (to clear caches, redraw, ...).
///
/// It runs on the thread that applied the patch: the agent's thread, or the one
/// calling [`safepoint`](crate::safepoint). Every slot of the patch has already been
/// switched, so the callback itself already calls new code.
pub fn on_reload(callback: impl Fn(&ReloadEvent) + Send + Sync + 'static) {
    CALLBACKS.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::new(callback));
}

#[cfg(feature = "agent")]
pub(crate) fn fire(event: &ReloadEvent) {
    // Cloned out so a callback may register another without deadlocking.
    let callbacks = CALLBACKS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for callback in callbacks {
        callback(event);
    }
}
