//! What a patch library carries besides the crate's code (built with `--cfg hotreload_patch`).
//!
//! A patch is a cdylib with its own copy of std. Three things keep it from
//! disagreeing with the program that loads it:
//!
//! - its `#[global_allocator]` forwards to the program's allocator, so memory can be
//!   freed on either side of a call;
//! - its panic hook stays silent inside hot calls, which hand the panic back to the
//!   caller's image to be reported and unwound there;
//! - it exports its trampoline table and an initialiser for the agent.

use crate::__rt::{hot_fns, Caught, Entry, HostApi, TOOLCHAIN};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, Ordering};

static HOST: AtomicPtr<HostApi> = AtomicPtr::new(std::ptr::null_mut());

struct Forwarding;

fn host() -> Option<&'static HostApi> {
    // SAFETY: set once by `hotreload_v1_patch_init` to a `&'static HostApi`.
    unsafe { HOST.load(Ordering::Acquire).as_ref() }
}

// SAFETY: forwards every call unchanged to the program's allocator, or to `System`
// before the agent has called the initialiser (nothing of the library runs before then).
unsafe impl GlobalAlloc for Forwarding {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match host() {
            Some(h) => unsafe { (h.alloc)(layout.size(), layout.align()) },
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match host() {
            Some(h) => unsafe { (h.alloc_zeroed)(layout.size(), layout.align()) },
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match host() {
            Some(h) => unsafe { (h.dealloc)(ptr, layout.size(), layout.align()) },
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match host() {
            Some(h) => unsafe { (h.realloc)(ptr, layout.size(), layout.align(), new_size) },
            None => unsafe { System.realloc(ptr, layout, new_size) },
        }
    }
}

#[global_allocator]
static ALLOCATOR: Forwarding = Forwarding;

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    static SWALLOWED: Cell<bool> = const { Cell::new(false) };
}

/// [`crate::__rt::catch`] in a patch: also notes whether this library's (silent) hook saw
/// the panic, so the caller's image reports it.
///
/// # Safety
///
/// `run` must be safe to call with `data`.
pub(crate) unsafe fn catch(run: unsafe fn(*mut ()), data: *mut ()) -> Option<Caught> {
    let outer = SWALLOWED.replace(false);
    DEPTH.set(DEPTH.get() + 1);
    // SAFETY: the caller's contract.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { run(data) }));
    DEPTH.set(DEPTH.get() - 1);
    let unreported = SWALLOWED.replace(outer);
    result.err().map(|payload| (payload, unreported))
}

/// Called by the agent right after mapping the library, before anything else in it.
///
/// # Safety
///
/// `api` must point to a `HostApi` that lives as long as the process.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hotreload_v1_patch_init(api: *const HostApi) -> u64 {
    HOST.store(api as *mut HostApi, Ordering::Release);
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if DEPTH.get() > 0 {
            SWALLOWED.set(true);
        } else {
            default(info);
        }
    }));
    TOOLCHAIN
}

/// The library's trampoline table: every hot function linked into it.
///
/// # Safety
///
/// `len` must be valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn hotreload_v1_patch_table(len: *mut usize) -> *const Entry {
    let table = hot_fns();
    unsafe { len.write(table.len()) };
    table.as_ptr()
}
