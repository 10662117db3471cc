//! What a linked patch image is, as the tool links it and the agent maps it.
//!
//! The tool links each patch as a static x86-64 image at an address it chose in the
//! running program (see the tool's `link` module); the agent checks the same rules
//! again before it maps one (the runtime's `loader`), since the file crosses a trust
//! boundary. Both read the rules from here.

/// One past the highest address a patch beside a position-dependent (non-PIE) program
/// may occupy: code there reaches the program, and the program reaches it, with a
/// signed 32-bit displacement, and its own addresses fit a sign-extended 32-bit field.
pub const ADDRESS_LIMIT: u64 = 0x8000_0000;

/// How far above the start of a position-independent (PIE) program a patch may end:
/// a signed 32-bit displacement's reach, so a call or a `jmp rel32` either way arrives.
pub const REACH: u64 = 1 << 31;

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
/// mapped into a program whose code starts at `program`, if it cannot. It fits below
/// 2 GiB ([`ADDRESS_LIMIT`]) beside a program loaded there, or above the program within
/// [`REACH`] of its start (beside a PIE, wherever it was loaded); never below 64 KiB.
pub fn out_of_range(start: u64, end: u64, program: u64) -> Option<String> {
    let low = end <= ADDRESS_LIMIT && program < ADDRESS_LIMIT;
    let near = start >= program && end <= program.saturating_add(REACH);
    (start < LOWEST_ADDRESS || start >= end || !(low || near)).then(|| {
        format!("the image ({start:#x}..{end:#x}) lies neither below 2 GiB nor within 2 GiB above the program ({program:#x})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialisers_and_addresses_outside_the_window_are_refused() {
        assert!(forbidden_section(b".init_array").is_some());
        assert!(forbidden_section(b".text").is_none());
        // Beside a non-PIE program at 4 MiB.
        let low = 0x40_0000;
        assert!(out_of_range(0x4000_0000, 0x4020_0000, low).is_none());
        assert!(out_of_range(0x4000_0000, low + REACH + 1, low).is_some());
        assert!(out_of_range(0, 0x1000, low).is_some());
        assert!(out_of_range(0x2000, 0x1000, low).is_some());
        // Beside a PIE: above it, within reach of its start.
        let pie = 0x5555_5555_4000;
        assert!(out_of_range(pie + (1 << 30), pie + (1 << 30) + 0x1000, pie).is_none());
        assert!(out_of_range(pie + REACH - 0x1000, pie + REACH, pie).is_none());
        assert!(out_of_range(pie + REACH - 0x1000, pie + REACH + 1, pie).is_some());
        assert!(out_of_range(pie - 0x10_0000, pie - 0x1000, pie).is_some());
        assert!(out_of_range(0x4000_0000, 0x4020_0000, pie).is_some());
        assert!(out_of_range(u64::MAX - 0x1000, u64::MAX, u64::MAX - 0x2000).is_none());
    }
}
