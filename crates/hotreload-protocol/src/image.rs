//! What a linked patch image is, as the tool links it and the agent maps it.
//!
//! The tool links each patch as a static x86-64 image at an address it chose in the
//! running program (see the tool's `link` module); the agent checks the same rules
//! again before it maps one (the runtime's `loader`), since the file crosses a trust
//! boundary. Both read the rules from here.

/// One past the highest address a patch may occupy: code there reaches the (non-PIE)
/// program, and the program reaches it, with a signed 32-bit displacement.
pub const ADDRESS_LIMIT: u64 = 0x8000_0000;

/// The lowest address a patch may occupy: above the null-page guard.
pub const LOWEST_ADDRESS: u64 = 0x10000;

/// The section every `#[hot]` function's table row lives in, as a literal for
/// attributes (`#[link_section = table_section!()]`); [`TABLE_SECTION`] elsewhere.
#[macro_export]
macro_rules! table_section {
    () => {
        "hotreload_fns"
    };
}

/// The section every `#[hot]` function's table row lives in.
pub const TABLE_SECTION: &str = table_section!();

/// The linker's symbol for the start of [`TABLE_SECTION`].
pub const TABLE_START: &str = concat!("__start_", table_section!());

/// The linker's symbol for the end of [`TABLE_SECTION`].
pub const TABLE_STOP: &str = concat!("__stop_", table_section!());

/// The name of the static that holds a `#[hot]` function's slot: how the linker
/// recognises slots among a patch's statics.
pub const SLOT_STATIC: &str = "__HOTRELOAD_SLOT";

/// The section the tool's linker script puts after `.eh_frame`: the zero word that
/// ends it for `__register_frame` (the script's text, `templates/bind.ld`, names it
/// `{eh_end}`).
pub const EH_END_SECTION: &str = ".hotreload_eh_end";

/// Why a section of this name may not be in a patch: initialisers would need running,
/// and nothing in a patch runs before it is switched in.
pub fn forbidden_section(name: &[u8]) -> Option<&'static str> {
    matches!(name, b".init_array" | b".fini_array" | b".preinit_array" | b".ctors" | b".dtors")
        .then_some("it has static initialisers (`.init_array`)")
}

/// Why an image whose lowest address is `start` and whose end is `end` cannot be
/// mapped, if it cannot.
pub fn out_of_range(start: u64, end: u64) -> Option<String> {
    (start < LOWEST_ADDRESS || end > ADDRESS_LIMIT || start >= end)
        .then(|| format!("the image ({start:#x}..{end:#x}) does not fit between 64 KiB and 2 GiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialisers_and_addresses_outside_the_window_are_refused() {
        assert!(forbidden_section(b".init_array").is_some());
        assert!(forbidden_section(b".text").is_none());
        assert!(out_of_range(0x4000_0000, 0x4020_0000).is_none());
        assert!(out_of_range(0x4000_0000, ADDRESS_LIMIT + 1).is_some());
        assert!(out_of_range(0, 0x1000).is_some());
    }
}
