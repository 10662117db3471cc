//! The agent in a program that does not depend on the runtime: preloaded with
//! `LD_PRELOAD` (the library [`crate::build::build_agent`] builds), which `ld.so` loads
//! before the program's own code runs. A program that depends on the runtime starts
//! its own agent with `hotreload::init()` and is never given a second one.

use hotreload_protocol::{ENV_AGENT_LIBRARY, ENV_TOOL_PID};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Why `executable` cannot take a preloaded agent, with what to do instead; `None`
/// when it can. `ld.so` preloads nothing into a statically linked program (it is not
/// involved) nor, from an ordinary user's environment, into a setuid or setgid one
/// (ld.so(8), "secure-execution mode").
pub fn unfit(executable: &Path) -> Option<String> {
    const INSTEAD: &str = "add `hotreload-runtime` to its [dependencies] and call `hotreload::init()` in `main`";
    let mode = std::fs::metadata(executable).ok()?.permissions().mode();
    if mode & 0o6000 != 0 {
        return Some(format!("it is setuid or setgid, and ld.so preloads nothing into it; {INSTEAD}"));
    }
    // Only the headers are read: a debug build's executable is tens of megabytes, and
    // reading it all was most of the time from build to start (30 ms of mini-redis's).
    let data = object::read::ReadCache::new(std::fs::File::open(executable).ok()?);
    let header = elf::FileHeader64::<Endianness>::parse(&data).ok()?;
    let endian = header.endian().ok()?;
    let dynamic = header.program_headers(endian, &data).ok()?.iter().any(|ph| ph.p_type(endian) == elf::PT_INTERP);
    (!dynamic).then(|| format!("it is statically linked (musl?), so no library can be preloaded into it; {INSTEAD}"))
}

/// The environment that preloads `library` into the program the tool (this process)
/// starts: ahead of any `LD_PRELOAD` the user set, which is kept.
pub fn preload_env(library: &Path) -> Vec<(&'static str, OsString)> {
    let mut preload = library.as_os_str().to_owned();
    if let Some(user) = std::env::var_os("LD_PRELOAD").filter(|p| !p.is_empty()) {
        preload.push(":");
        preload.push(user);
    }
    vec![
        ("LD_PRELOAD", preload),
        (ENV_AGENT_LIBRARY, library.as_os_str().to_owned()),
        (ENV_TOOL_PID, std::process::id().to_string().into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_executable_can_take_the_agent_and_a_setuid_one_cannot() {
        let this = std::env::current_exe().unwrap();
        assert_eq!(unfit(&this), None);
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("setuid");
        std::fs::copy(&this, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o4755)).unwrap();
        assert!(unfit(&copy).unwrap().contains("setuid"));
    }

    #[test]
    fn a_static_executable_cannot_take_the_agent() {
        // An ELF header with no program headers at all: nothing for ld.so to read.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("static");
        let mut obj =
            object::write::Object::new(object::BinaryFormat::Elf, object::Architecture::X86_64, Endianness::Little);
        obj.add_file_symbol(b"x".to_vec());
        std::fs::write(&path, obj.write().unwrap()).unwrap();
        assert!(unfit(&path).unwrap().contains("statically linked"));
    }

    #[test]
    fn the_users_preload_is_kept_behind_the_agent() {
        let env = preload_env(Path::new("/t/libhotreload_agent.so"));
        assert_eq!(env[1], (ENV_AGENT_LIBRARY, OsString::from("/t/libhotreload_agent.so")));
        assert!(env[0].1.to_string_lossy().starts_with("/t/libhotreload_agent.so"));
        assert_eq!(env[2].1, OsString::from(std::process::id().to_string()));
    }
}
