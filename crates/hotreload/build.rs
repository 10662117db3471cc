//! Records which rustc compiled this crate, so a patch built by another is refused;
//! sets the runtime's cfgs for `cargo hotreload`'s builds.

use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(&rustc)
        .arg("-vV")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // FNV-1a, as in hotreload-protocol (a build script cannot use the crate it builds for).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in version.bytes() {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    println!("cargo:rustc-env=HOTRELOAD_TOOLCHAIN_HASH={hash}");
    println!("cargo:rerun-if-env-changed=RUSTC");

    // `hotreload_protocol::ENV_BUILD` (a build script cannot use the crate's own
    // dependencies): only this crate gets the cfgs, so every other crate keeps the
    // `-C metadata`, the symbol names and the `TypeId`s of the program's build.
    println!("cargo:rustc-check-cfg=cfg(hotreload)");
    println!("cargo:rustc-check-cfg=cfg(hotreload_patch)");
    println!("cargo:rerun-if-env-changed=CARGO_HOTRELOAD_BUILD");
    match std::env::var("CARGO_HOTRELOAD_BUILD").as_deref() {
        Ok("hot") => println!("cargo:rustc-cfg=hotreload"),
        Ok("patch") => {
            println!("cargo:rustc-cfg=hotreload");
            println!("cargo:rustc-cfg=hotreload_patch");
        }
        _ => {}
    }
}
