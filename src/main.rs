//! `cargo hotreload`: see the crate's README.

fn main() {
    std::process::exit(cargo_hotreload::main());
}
