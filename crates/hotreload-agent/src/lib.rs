//! The agent `cargo hotreload run` preloads (`LD_PRELOAD`) into a program that does not
//! depend on `hotreload-runtime`: a shared library whose constructor starts the same
//! agent `hotreload::init()` starts, before the program's `main`.
//!
//! Nothing here runs unless the tool started the process (see
//! `hotreload::inject::start_injected`): a library preloaded by hand, or inherited by a
//! child, only takes itself out of the environment.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod constructor {
    /// Run by the dynamic loader once the library is loaded, before `main`.
    extern "C" fn start() {
        // SAFETY: a constructor of a library loaded at start-up runs before `main`,
        // on the process's only thread, so nothing else reads the environment meanwhile.
        unsafe { hotreload::inject::start_injected() };
    }

    /// The ELF constructor list: `ld.so` calls each entry of a loaded object's
    /// `.init_array` in order (System V gABI, "Initialization and Termination Functions").
    #[used]
    #[link_section = ".init_array"]
    static START: extern "C" fn() = start;
}
