//! Outside `cargo hotreload run` the runtime costs next to nothing: an ordinary build of
//! a program that depends on it compiles only small crates, and `#[hot]` items are the
//! items unchanged.

use crate::harness::Fixture;
use std::process::Command;

#[test]
fn an_ordinary_build_compiles_only_small_crates() {
    let fx = Fixture::new("basic");
    let tree = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-p", "app", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(&fx.root)
        .output()
        .unwrap();
    assert!(tree.status.success(), "{}", String::from_utf8_lossy(&tree.stderr));
    let mut packages: Vec<String> = String::from_utf8_lossy(&tree.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    packages.sort();
    packages.dedup();
    assert_eq!(packages, ["app", "hotreload-macros", "hotreload-protocol", "hotreload-runtime", "libc", "logic"]);
    // And it builds: the attribute's item unchanged, `init` a no-op.
    let target = tempfile::tempdir().unwrap();
    let build = Command::new(env!("CARGO"))
        .args(["build", "--offline", "-q", "-p", "app"])
        .env("CARGO_TARGET_DIR", target.path())
        .env_remove("CARGO_HOTRELOAD_BUILD")
        .current_dir(&fx.root)
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", String::from_utf8_lossy(&build.stderr));
}
