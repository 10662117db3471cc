//! What `#[hotreload::hot]` expands to refers to these items. Not a public API.

use std::any::Any;
use std::sync::atomic::{AtomicPtr, Ordering};

pub use hotreload_protocol::record::{fnv1a, signature_hash, Record};

/// Hash of the rustc version this crate was built with (see `build.rs`).
pub const TOOLCHAIN: u64 = const_parse(env!("HOTRELOAD_TOOLCHAIN_HASH"));

/// Whether `#[hot]` items are in their hot form in this build.
pub const HOT: bool = cfg!(any(hotreload, feature = "always-hot"));

const fn const_parse(s: &str) -> u64 {
    let bytes = s.as_bytes();
    let mut value: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        value = value * 10 + (bytes[i] - b'0') as u64;
        i += 1;
    }
    value
}

/// Chooses between the hot and the cold expansion of a `#[hot]` item.
#[cfg(any(hotreload, feature = "always-hot"))]
#[macro_export]
#[doc(hidden)]
macro_rules! __hot_or_cold {
    ({ $($hot:tt)* } { $($cold:tt)* }) => { $($hot)* };
}

/// Chooses between the hot and the cold expansion of a `#[hot]` item.
#[cfg(not(any(hotreload, feature = "always-hot")))]
#[macro_export]
#[doc(hidden)]
macro_rules! __hot_or_cold {
    ({ $($hot:tt)* } { $($cold:tt)* }) => { $($cold)* };
}

/// One trampoline slot: the address of the forwarder that calls currently reach.
#[repr(transparent)]
pub struct Slot(AtomicPtr<()>);

impl Slot {
    /// A slot pointing at `forwarder`.
    pub const fn new(forwarder: *const ()) -> Slot {
        Slot(AtomicPtr::new(forwarder as *mut ()))
    }

    /// The current forwarder. Acquire pairs with [`Slot::set`]: a thread that sees a
    /// new forwarder also sees the library it lives in fully mapped and relocated.
    #[inline(always)]
    pub fn get(&self) -> *const () {
        self.0.load(Ordering::Acquire)
    }

    /// Switches the slot (the agent does, when a patch applies).
    #[cfg(any(feature = "agent", hotreload_patch))]
    pub(crate) fn set(&self, forwarder: *const ()) {
        self.0.store(forwarder as *mut (), Ordering::Release);
    }
}

/// A hot function's row in its image's trampoline table.
///
/// `repr(C)` because the agent reads the rows of a loaded patch library.
#[repr(C)]
pub struct Entry {
    id_ptr: *const u8,
    id_len: usize,
    pub(crate) slot: &'static Slot,
    pub(crate) forwarder: *const (),
    pub(crate) record: &'static Record,
}

// SAFETY: every field is immutable after construction; the slot is atomic.
unsafe impl Sync for Entry {}

impl Entry {
    /// A row for function `id`.
    pub const fn new(id: &'static str, slot: &'static Slot, forwarder: *const (), record: &'static Record) -> Entry {
        Entry { id_ptr: id.as_ptr(), id_len: id.len(), slot, forwarder, record }
    }

    /// The function id: module path and name.
    pub fn id(&self) -> &'static str {
        // SAFETY: built from a `&'static str` in `new`; libraries are never unloaded.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.id_ptr, self.id_len)) }
    }
}

/// Every hot function linked into this image (the program, or one patch library).
///
/// Each `#[hot]` function puts its [`Entry`] in the `hotreload_fns` section; the
/// linker lays them out back to back (40 bytes, 8-aligned: no padding) and defines
/// `__start_`/`__stop_` symbols around them in every image it links.
pub fn hot_fns() -> &'static [Entry] {
    // SAFETY: the section holds only `Entry` statics (the macro's, and the empty array
    // below, which makes sure it exists); both symbols lie in this image.
    unsafe {
        let start = (&raw const SECTION_START).cast::<Entry>();
        let stop = (&raw const SECTION_STOP).cast::<Entry>();
        std::slice::from_raw_parts(start, stop.offset_from(start) as usize)
    }
}

unsafe extern "C" {
    #[link_name = concat!("__start_", hotreload_protocol::table_section!())]
    static SECTION_START: u8;
    #[link_name = concat!("__stop_", hotreload_protocol::table_section!())]
    static SECTION_STOP: u8;
}

#[used]
#[unsafe(link_section = hotreload_protocol::table_section!())]
static NO_ENTRIES: [Entry; 0] = [];

/// The body of a stub forwarder in a linked patch, which is never called: the stub's
/// slot is the program's, pointing at real code.
#[cold]
pub fn stub_called() -> ! {
    panic!("hotreload: a stub of a linked patch was called; please report this bug")
}

/// What a forwarder returns: the value, or the panic it caught.
pub enum Outcome<T> {
    /// The body returned.
    Ok(T),
    /// The body panicked; re-raised by [`finish`] in the caller's image. The flag says
    /// whether no panic hook has reported it yet (a patch library's hook stays silent
    /// inside hot calls, so the program's hook reports it once).
    Panicked(Box<dyn Any + Send + 'static>, bool),
}

/// A caught panic: its payload, and whether no panic hook has reported it yet.
pub type Caught = (Box<dyn Any + Send + 'static>, bool);

/// Runs `run(data)`, catching a panic: unwinding from one image's std through another's
/// frames aborts, so every forwarder hands a panic back as a value instead.
///
/// Deliberately not generic: a generic helper instantiated once per hot function would
/// nest in rustc's monomorphization walk along every chain of hot functions referring
/// to each other, and hit the recursion limit in large crates.
///
/// # Safety
///
/// `run` must be safe to call with `data`.
#[cfg_attr(not(debug_assertions), inline)]
pub unsafe fn catch(run: unsafe fn(*mut ()), data: *mut ()) -> Option<Caught> {
    #[cfg(hotreload_patch)]
    {
        // SAFETY: the caller's contract.
        unsafe { crate::patch::catch(run, data) }
    }
    #[cfg(not(hotreload_patch))]
    {
        // The program's own hook has already reported the panic where it started.
        // SAFETY: the caller's contract.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { run(data) })).err().map(|p| (p, false))
    }
}

/// A forwarder's result from what [`catch`] left.
#[inline(always)]
pub fn outcome<T>(value: Option<T>, caught: Option<Caught>) -> Outcome<T> {
    match (value, caught) {
        (_, Some((payload, unreported))) => Outcome::Panicked(payload, unreported),
        (Some(value), None) => Outcome::Ok(value),
        (None, None) => unreachable!("a hot function's body neither returned nor panicked"),
    }
}

/// Unwraps a forwarder's result, re-raising a caught panic as a panic of this image, so
/// its panic hook runs and `catch_unwind` sees the original payload.
#[inline(always)]
#[track_caller]
pub fn finish<T>(outcome: Outcome<T>) -> T {
    match outcome {
        Outcome::Ok(value) => value,
        Outcome::Panicked(payload, unreported) => resume(payload, unreported),
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn resume(payload: Box<dyn Any + Send>, unreported: bool) -> ! {
    if !unreported {
        std::panic::resume_unwind(payload);
    }
    // Raise it afresh so this image's hook reports it. A `&'static str` from a patch
    // stays valid: patches are never unloaded.
    let payload = match payload.downcast::<&'static str>() {
        Ok(message) => std::panic::panic_any(*message),
        Err(other) => other,
    };
    match payload.downcast::<String>() {
        Ok(message) => std::panic::panic_any(*message),
        Err(other) => std::panic::resume_unwind(other),
    }
}

/// Reads a slot's address as the forwarder's own `fn` pointer type.
///
/// # Safety
///
/// `address` must be a function of exactly the type `F`.
#[inline(always)]
pub unsafe fn reinterpret<F: Copy>(_like: F, address: *const ()) -> F {
    const { assert!(std::mem::size_of::<F>() == std::mem::size_of::<*const ()>()) };
    // SAFETY: same size (checked above); the caller guarantees the type.
    unsafe { std::mem::transmute_copy(&address) }
}

/// Allocation entry points of the program, handed to each patch library so that every
/// allocation is served by the program's `#[global_allocator]`.
#[repr(C)]
pub struct HostApi {
    /// Layout version; 1.
    pub version: u32,
    /// `std::alloc::alloc`
    pub alloc: unsafe extern "C" fn(usize, usize) -> *mut u8,
    /// `std::alloc::alloc_zeroed`
    pub alloc_zeroed: unsafe extern "C" fn(usize, usize) -> *mut u8,
    /// `std::alloc::dealloc`
    pub dealloc: unsafe extern "C" fn(*mut u8, usize, usize),
    /// `std::alloc::realloc`
    pub realloc: unsafe extern "C" fn(*mut u8, usize, usize, usize) -> *mut u8,
}
