//! Data the program already holds keeps its meaning in new code: an edit that changes a
//! type's layout in a way the source comparison cannot see is refused by name, a
//! self-contained patch keeps the program's type identities, and a patch that cannot
//! share the crate's statics is refused rather than given fresh copies (the `layout`
//! fixture).

use crate::harness::{Fixture, Session, RELOAD};

const LIB: &str = "logic/src/lib.rs";

#[test]
fn a_layout_change_through_a_const_is_refused_by_name() {
    let fx = Fixture::new("layout");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("stamp: 1 last=1 tag=2 mark=1", RELOAD);
    // An array length: `Row` grows, and the program's `Vec<Row>` holds 20-byte rows.
    fx.replace(LIB, "pub const SLOTS: usize = 4;", "pub const SLOTS: usize = 8;");
    s.wait_stderr("restart needed: `logic::Row`: its layout changed (size 20 → 36 bytes)", RELOAD);
    // A const-generic argument behind a pointer: `Board` keeps its size, its field's
    // type changes.
    fx.replace(LIB, "pub const SLOTS: usize = 8;", "pub const SLOTS: usize = 4;");
    fx.replace(LIB, "pub const WIDTH: usize = 2;", "pub const WIDTH: usize = 3;");
    let refused = s.wait_stderr("restart needed: `logic::Board`: its layout changed", RELOAD);
    assert!(refused.contains("Grid<2>") && refused.contains("Grid<3>"), "{refused}");
    s.assert_stderr_count("Reloaded", 0);
    // Back as the program has it: the next body edit applies, and the program's data
    // was never written through another layout.
    fx.replace(LIB, "pub const WIDTH: usize = 3;", "pub const WIDTH: usize = 2;");
    fx.replace(LIB, "lookup v0", "lookup v1");
    s.wait_stdout("lookup v1: Pos downcasts=1", RELOAD);
    s.wait_stdout("stamp: 2 last=2 tag=2 mark=2", RELOAD);
    // That patch compiled `lookup` alone, the rest as stubs: rustc must not call the
    // static and the imports only the stubbed bodies use unused.
    s.assert_stderr_count("never used", 0);
    s.assert_stderr_count("unused import", 0);
}

#[test]
fn a_self_contained_patch_keeps_the_programs_type_identities() {
    let fx = Fixture::new("layout");
    let s = Session::start(&fx, &["-p", "app", "--self-contained"]);
    s.wait_stdout("lookup v0: Pos downcasts=1", RELOAD);
    fx.replace(LIB, "lookup v0", "lookup v1");
    // The program's `TypeId` of `Pos` finds its map entry, and its boxes downcast.
    s.wait_stdout("lookup v1: Pos downcasts=1", RELOAD);
    assert!(s.wait_stderr("Reloaded logic", RELOAD).contains("self-contained"));
}

#[test]
fn a_new_thread_local_is_refused_rather_than_splitting_the_crates_state() {
    let fx = Fixture::new("layout");
    let s = Session::start(&fx, &["-p", "app"]);
    s.wait_stdout("stamp: 1 last=1", RELOAD);
    let with_thread_local = |src: &str| {
        src.replace(
            "static STAMPS: AtomicU64 = AtomicU64::new(0);",
            "static STAMPS: AtomicU64 = AtomicU64::new(0);\n\nthread_local! {\n    \
             static SEEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };\n}",
        )
        .replace(
            "        STAMPS.fetch_add(1, Ordering::Relaxed) + 1",
            "        SEEN.with(|seen| seen.set(seen.get() + 1));\n        STAMPS.fetch_add(1, Ordering::Relaxed) + 1",
        )
        .replace("lookup v0", "lookup v1")
    };
    fx.edit(LIB, with_thread_local);
    let refused = s.wait_stderr("restart needed: `logic`", RELOAD);
    assert!(refused.contains("it adds thread-local `logic::SEEN`"), "{refused}");
    assert!(refused.contains("`logic::STAMPS`"), "{refused}");
    s.assert_stderr_count("Reloaded", 0);
    // Said once, by the link's reason: no warning of fresh copies before it.
    s.assert_stderr_count("is new", 0);
    // Without it, the edit applies, and the counter static is the program's own.
    fx.edit(LIB, |src| {
        src.replace("        SEEN.with(|seen| seen.set(seen.get() + 1));\n", "").replace(
            "\n\nthread_local! {\n    static SEEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };\n}",
            "",
        )
    });
    s.wait_stdout("lookup v1: Pos downcasts=1", RELOAD);
    s.wait_stdout("stamp: 2 last=2", RELOAD);
}
