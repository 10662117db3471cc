//! Messages on the control socket: one JSON object per line.
//!
//! The tool listens; the agent in the running program connects, says
//! [`AgentMessage::Hello`], and then answers each [`ToolMessage::Load`] with
//! [`AgentMessage::Applied`] or [`AgentMessage::Refused`].

use serde::{Deserialize, Serialize};
use std::io::{self, BufRead};
use std::path::PathBuf;

/// Longest line either end accepts; a longer one is a malformed message.
pub const MAX_LINE: usize = 4 << 20;

/// A hot function as the running program knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionInfo {
    /// Module path and name, e.g. `logic::Counter::bump`.
    pub id: String,
    /// Signature hash from its [`Record`](crate::record::Record).
    pub signature: u64,
}

impl FunctionInfo {
    /// A function id with its signature hash.
    pub fn new(id: impl Into<String>, signature: u64) -> Self {
        FunctionInfo { id: id.into(), signature }
    }
}

/// Sent by the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentMessage {
    /// First message after connecting.
    Hello {
        /// [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION) of the agent.
        protocol: u32,
        /// The program's process id (also checked against the socket's peer credentials).
        pid: u32,
        /// Hash of the rustc version the program was built with.
        toolchain: u64,
        /// Every hot function compiled into the program.
        functions: Vec<FunctionInfo>,
    },
    /// A patch was applied: every slot of its crate now points into it.
    Applied {
        /// The request this answers.
        request: u64,
        /// Functions whose slots were switched.
        switched: usize,
        /// Microseconds spent mapping the library.
        load_micros: u64,
        /// Microseconds spent checking and switching slots.
        apply_micros: u64,
        /// Function entries redirected to the new code.
        #[serde(default)]
        redirected: usize,
        /// Microseconds the program's other threads were held for the redirects.
        #[serde(default)]
        held_micros: u64,
        /// Redirected functions ([`Redirect::name`]) that a thread was running when
        /// they were redirected: that call finishes in the old code (a loop that never
        /// returns keeps it); later calls run the new one.
        #[serde(default)]
        running: Vec<String>,
    },
    /// The addresses of C functions in the process ([`ToolMessage::Resolve`]).
    Resolved {
        /// The request this answers.
        request: u64,
        /// Each name's address in the process, in the request's order; 0: not found.
        addresses: Vec<u64>,
    },
    /// A patch was not applied; the program runs the code it ran before.
    Refused {
        /// The request this answers; 0 when the line could not be read as a request
        /// (malformed, or longer than [`MAX_LINE`]). Tools number requests from 1.
        request: u64,
        /// What kind of refusal it is (absent from older agents: `invalid`).
        #[serde(default)]
        kind: RefusalKind,
        /// Why, naming the item.
        reason: String,
    },
}

impl AgentMessage {
    /// The request an answer answers; `None` for other messages.
    pub fn request(&self) -> Option<u64> {
        match self {
            AgentMessage::Applied { request, .. }
            | AgentMessage::Refused { request, .. }
            | AgentMessage::Resolved { request, .. } => Some(*request),
            AgentMessage::Hello { .. } => None,
        }
    }

    /// The answer to `request` that refuses it.
    pub fn refused(request: u64, refusal: Refusal) -> AgentMessage {
        AgentMessage::Refused { request, kind: refusal.kind, reason: refusal.reason }
    }
}

/// What kind of refusal an agent's answer is, so the tool acts on it without reading
/// its prose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefusalKind {
    /// The patch does not fit the running program (another rustc, a changed signature
    /// or layout): only a restart takes the change.
    Incompatible,
    /// The request or the file is not what the tool sends (outside the session, not a
    /// patch, records that disagree with the request): a bug, or not our tool.
    #[default]
    Invalid,
    /// The program could not load a valid patch (mapping, the unwinder), or stopped
    /// reaching its safepoints.
    Failed,
}

/// Why an agent does not apply a patch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What kind of refusal.
    pub kind: RefusalKind,
    /// Why, naming the item.
    pub reason: String,
}

impl Refusal {
    /// An [`RefusalKind::Incompatible`] refusal.
    pub fn incompatible(reason: impl Into<String>) -> Refusal {
        Refusal { kind: RefusalKind::Incompatible, reason: reason.into() }
    }

    /// An [`RefusalKind::Invalid`] refusal.
    pub fn invalid(reason: impl Into<String>) -> Refusal {
        Refusal { kind: RefusalKind::Invalid, reason: reason.into() }
    }

    /// A [`RefusalKind::Failed`] refusal.
    pub fn failed(reason: impl Into<String>) -> Refusal {
        Refusal { kind: RefusalKind::Failed, reason: reason.into() }
    }
}

/// Sent by the tool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolMessage {
    /// Load a patch library and switch the crate's slots to it.
    Load(LoadRequest),
    /// Look up C functions a patch calls that the program's executable never imported,
    /// as the process's dynamic linker finds them (`dlsym(RTLD_DEFAULT, name)`, which
    /// also picks an IFUNC's implementation, as `memcmp`'s). Answered with
    /// [`AgentMessage::Resolved`]; at most [`MAX_RESOLVE`] names.
    Resolve {
        /// Echoed in the answer.
        request: u64,
        /// Symbol names, without version.
        names: Vec<String>,
    },
}

/// The most names one [`ToolMessage::Resolve`] may ask for.
pub const MAX_RESOLVE: usize = 256;

/// A patch to load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoadRequest {
    /// Echoed in the answer.
    pub request: u64,
    /// The crate being patched, as it appears in function ids (`my_crate`).
    pub crate_name: String,
    /// Generation number of this crate's code; the original build is 0.
    pub generation: u64,
    /// The library file; must lie inside the session directory.
    pub path: PathBuf,
    /// The crate's functions as the tool read them from the file.
    pub functions: Vec<FunctionInfo>,
    /// Toolchain hash the tool read from the file's records.
    pub toolchain: u64,
    /// A linked patch (a static image bound to the program's addresses, mapped by the
    /// agent itself) rather than a self-contained shared library.
    #[serde(default)]
    pub linked: bool,
    /// For a linked patch: function entries to redirect to its new copies, written
    /// while the program's other threads are stopped, with the slot switch.
    #[serde(default)]
    pub redirects: Vec<Redirect>,
}

/// One function entry to redirect: a 5-byte `jmp` at `from` (the entry of the newest
/// copy of the function that runs now: the program's, or an earlier patch's) to `to`
/// (its entry in the patch being loaded). The agent also rewrites every entry it sent
/// to `from` before, so older copies need not be named: a request's size depends on
/// what changed, not on how many reloads came before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// The function, demangled, for messages.
    pub name: String,
    /// The old copy's entry address.
    pub from: u64,
    /// The new copy's entry address.
    pub to: u64,
    /// The old copy's size in bytes (0: not known): a thread whose stack holds a return
    /// address inside it, or stopped inside it, runs it still (see
    /// [`AgentMessage::Applied::running`]).
    #[serde(default)]
    pub len: u64,
}

impl LoadRequest {
    /// A request to load `path` as generation `generation` of `crate_name`.
    pub fn new(
        request: u64,
        crate_name: impl Into<String>,
        generation: u64,
        path: PathBuf,
        functions: Vec<FunctionInfo>,
        toolchain: u64,
    ) -> Self {
        LoadRequest {
            request,
            crate_name: crate_name.into(),
            generation,
            path,
            functions,
            toolchain,
            linked: false,
            redirects: Vec::new(),
        }
    }

    /// The same request for a linked patch.
    pub fn linked(mut self) -> Self {
        self.linked = true;
        self
    }

    /// The same request, redirecting these function entries.
    pub fn with_redirects(mut self, redirects: Vec<Redirect>) -> Self {
        self.redirects = redirects;
        self
    }
}

/// Serialises `message` as one line, newline included.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(message).expect("protocol messages always serialise");
    line.push(b'\n');
    line
}

/// Why a line could not be read as a message.
#[derive(Debug)]
pub enum ReadError {
    /// The connection failed or was closed mid-line.
    Io(io::Error),
    /// The line was longer than [`MAX_LINE`].
    TooLong,
    /// The line was not a message of the expected kind.
    Malformed(serde_json::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "connection failed: {e}"),
            ReadError::TooLong => write!(f, "message longer than {MAX_LINE} bytes"),
            ReadError::Malformed(e) => write!(f, "malformed message: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads one message; `Ok(None)` at a clean end of stream.
pub fn read<T: for<'de> Deserialize<'de>>(reader: &mut impl BufRead) -> Result<Option<T>, ReadError> {
    match read_line(reader)? {
        Some(line) => decode(&line).map(Some),
        None => Ok(None),
    }
}

/// Parses a line read with [`read_line`].
pub fn decode<T: for<'de> Deserialize<'de>>(line: &[u8]) -> Result<T, ReadError> {
    serde_json::from_slice(line).map_err(ReadError::Malformed)
}

/// Reads one line, at most [`MAX_LINE`] bytes; `Ok(None)` at a clean end of stream.
pub fn read_line(reader: &mut impl BufRead) -> Result<Option<Vec<u8>>, ReadError> {
    let mut line = Vec::new();
    let mut limited = io::Read::take(&mut *reader, MAX_LINE as u64 + 1);
    let n = limited.read_until(b'\n', &mut line).map_err(ReadError::Io)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if line.len() > MAX_LINE {
            ReadError::TooLong
        } else {
            ReadError::Io(io::ErrorKind::UnexpectedEof.into())
        });
    }
    Ok(Some(line))
}

/// After [`ReadError::TooLong`], reads and drops the rest of that line, so that a peer
/// that goes on is answered once per line, not once per [`MAX_LINE`] piece. Blocks
/// until the line ends (or the reader's timeout, or the end of the stream).
pub fn skip_rest_of_line(reader: &mut impl BufRead) -> io::Result<()> {
    reader.skip_until(b'\n').map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let hello =
            AgentMessage::Hello { protocol: 1, pid: 7, toolchain: 9, functions: vec![FunctionInfo::new("a::f", 3)] };
        let load = ToolMessage::Load(LoadRequest::new(1, "a", 2, "/x/a.so".into(), vec![], 9));
        let mut bytes = encode(&hello);
        bytes.extend(encode(&load));
        let mut reader = io::Cursor::new(bytes);
        assert_eq!(read::<AgentMessage>(&mut reader).unwrap(), Some(hello));
        assert_eq!(read::<ToolMessage>(&mut reader).unwrap(), Some(load));
        assert!(read::<ToolMessage>(&mut reader).unwrap().is_none());
    }

    #[test]
    fn malformed_and_truncated_lines_are_errors() {
        let mut reader = io::Cursor::new(b"{\"type\":\"nope\"}\n".to_vec());
        assert!(matches!(read::<ToolMessage>(&mut reader), Err(ReadError::Malformed(_))));
        let mut reader = io::Cursor::new(b"{\"type\":".to_vec());
        assert!(matches!(read::<ToolMessage>(&mut reader), Err(ReadError::Io(_))));
        let mut reader = io::Cursor::new(vec![b'x'; MAX_LINE + 10]);
        assert!(matches!(read::<ToolMessage>(&mut reader), Err(ReadError::TooLong)));
    }
}
