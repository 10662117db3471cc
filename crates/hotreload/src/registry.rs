//! The program's view of every hot function: which forwarder is current, and every
//! slot (in the program and in loaded patches) that must point at it.

use crate::__rt::{hot_fns, Entry, Record, Slot, TOOLCHAIN};
use hotreload_protocol::message::{FunctionInfo, LoadRequest, Refusal};
use hotreload_protocol::record::crate_of;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

struct FnState {
    record: Record,
    current: *const (),
    slots: Vec<&'static Slot>,
}

// SAFETY: the raw pointer is a function address, never dereferenced as data.
unsafe impl Send for FnState {}

impl FnState {
    fn add_slot(&mut self, slot: &'static Slot) {
        if !self.slots.iter().any(|s| std::ptr::eq(*s, slot)) {
            self.slots.push(slot);
        }
    }
}

pub(crate) struct Registry {
    fns: HashMap<&'static str, FnState>,
    generations: HashMap<String, u64>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

pub(crate) fn lock() -> MutexGuard<'static, Option<Registry>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The registry, built from the program's own table on first use.
pub(crate) fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut guard = lock();
    f(guard.get_or_insert_with(Registry::from_program))
}

impl Registry {
    fn from_program() -> Registry {
        let mut fns = HashMap::new();
        for entry in hot_fns() {
            fns.insert(
                entry.id(),
                FnState { record: *entry.record, current: entry.forwarder, slots: vec![entry.slot] },
            );
        }
        Registry { fns, generations: HashMap::new() }
    }

    pub(crate) fn functions(&self) -> Vec<FunctionInfo> {
        let mut list: Vec<_> = self.fns.iter().map(|(id, f)| FunctionInfo::new(*id, f.record.signature)).collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// Checks what the tool claims about a library, before it is mapped.
    pub(crate) fn check_claims(&self, request: &LoadRequest) -> Result<(), Refusal> {
        if request.toolchain != TOOLCHAIN {
            return Err(Refusal::incompatible("the patch was built by another rustc than the running program"));
        }
        if let Some(last) = self.generations.get(&request.crate_name) {
            if request.generation <= *last {
                return Err(Refusal::invalid(format!(
                    "generation {} of `{}` is not newer than the loaded generation {last}",
                    request.generation, request.crate_name
                )));
            }
        }
        for f in &request.functions {
            if crate_of(&f.id) != request.crate_name {
                return Err(Refusal::invalid(format!(
                    "`{}` is not a function of crate `{}`",
                    f.id, request.crate_name
                )));
            }
            if let Some(state) = self.fns.get(f.id.as_str()) {
                if state.record.signature != f.signature {
                    return Err(Refusal::incompatible(format!("`{}`: its signature or a type in it changed", f.id)));
                }
            }
        }
        Ok(())
    }

    /// Checks a mapped library's own table against the claims it was loaded on.
    pub(crate) fn check_table(&self, request: &LoadRequest, table: &[Entry]) -> Result<(), Refusal> {
        let claimed: HashMap<&str, u64> = request.functions.iter().map(|f| (f.id.as_str(), f.signature)).collect();
        let mut seen = 0;
        for entry in table {
            let id = entry.id();
            if entry.record.toolchain != TOOLCHAIN {
                return Err(Refusal::incompatible(format!("`{id}` was built by another rustc")));
            }
            if let Some(state) = self.fns.get(id) {
                if state.record.signature != entry.record.signature {
                    // Only the patched crate's functions switch; a stale copy of another
                    // crate's function inside the library is repointed, never called.
                    if crate_of(id) == request.crate_name {
                        return Err(Refusal::incompatible(format!("`{id}`: its signature or a type in it changed")));
                    }
                }
            }
            if crate_of(id) == request.crate_name {
                match claimed.get(id) {
                    Some(signature) if *signature == entry.record.signature => seen += 1,
                    _ => {
                        return Err(Refusal::invalid(format!(
                            "`{id}` in the loaded library differs from the file the tool read"
                        )))
                    }
                }
            }
        }
        if seen != claimed.len() {
            return Err(Refusal::invalid("the loaded library lacks functions the tool read from its file"));
        }
        Ok(())
    }

    /// Switches every slot of `crate_name` to the library's forwarders; returns the ids
    /// switched. Cannot fail: everything was checked before.
    pub(crate) fn apply(&mut self, crate_name: &str, generation: u64, table: &'static [Entry]) -> Vec<String> {
        // First point the library's copies of other crates' slots at the current code, so
        // new code calling them reaches what the program calls.
        for entry in table.iter().filter(|e| crate_of(e.id()) != crate_name) {
            let state = self.fns.entry(entry.id()).or_insert_with(|| FnState {
                record: *entry.record,
                current: entry.forwarder,
                slots: Vec::new(),
            });
            entry.slot.set(state.current);
            state.add_slot(entry.slot);
        }
        let mut switched = Vec::new();
        for entry in table.iter().filter(|e| crate_of(e.id()) == crate_name) {
            let state = self.fns.entry(entry.id()).or_insert_with(|| FnState {
                record: *entry.record,
                current: entry.forwarder,
                slots: Vec::new(),
            });
            state.record = *entry.record;
            state.current = entry.forwarder;
            // A linked patch's rows name the program's own slots.
            state.add_slot(entry.slot);
            for slot in &state.slots {
                slot.set(entry.forwarder);
            }
            switched.push(entry.id().to_string());
        }
        self.generations.insert(crate_name.to_string(), generation);
        switched
    }
}
