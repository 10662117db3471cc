//! Records which rustc compiled this crate, so a patch built by another is refused.

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
}
