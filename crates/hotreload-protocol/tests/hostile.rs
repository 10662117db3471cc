//! Hostile input on the control channel, generated: whatever arrives, each side either
//! reads a message it knows or refuses the line with a typed error — it never panics,
//! and what it sends it reads back unchanged.
#![cfg(feature = "messages")]

use hotreload_protocol::control::{ControlReply, ControlRequest};
use hotreload_protocol::message::{self, AgentMessage, LoadRequest, ReadError, Redirect, ToolMessage};
use proptest::prelude::*;
use std::io::Cursor;

/// Generated cases per property: thousands, as a fuzzer's short run would try.
fn config() -> ProptestConfig {
    ProptestConfig { cases: 4000, ..ProptestConfig::default() }
}

/// Lines shaped like our messages: the right braces and keys, values of every kind.
fn json_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("type"),
        Just("request"),
        Just("crate_name"),
        Just("generation"),
        Just("path"),
        Just("functions"),
        Just("toolchain"),
        Just("linked"),
        Just("redirects"),
        Just("from"),
        Just("to"),
        Just("kind"),
        Just("reason"),
        Just("protocol"),
        Just("pid"),
        Just("mode"),
    ];
    let value = prop_oneof![
        Just("\"load\"".to_string()),
        Just("\"hello\"".to_string()),
        Just("\"applied\"".to_string()),
        Just("\"refused\"".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("[{\"name\":\"f\",\"from\":1,\"to\":2}]".to_string()),
        Just("\"/tmp/../etc/passwd\"".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[a-z/._]{0,12}".prop_map(|s| format!("\"{s}\"")),
        Just("18446744073709551616".to_string()),
        Just("1e400".to_string()),
        Just("{\"a\":[[[[]]]]}".to_string()),
    ];
    proptest::collection::vec((key, value), 0..8).prop_map(|fields| {
        let body: Vec<String> = fields.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

/// Each kind of message decoded from `line`: refused or read, never a panic.
fn decode_all(line: &[u8]) {
    let _ = message::decode::<ToolMessage>(line);
    let _ = message::decode::<AgentMessage>(line);
    let _ = message::decode::<ControlRequest>(line);
    let _ = message::decode::<ControlReply>(line);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_are_refused_or_read(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_all(&bytes);
        let mut reader = Cursor::new(bytes);
        while let Ok(Some(_)) = message::read::<ToolMessage>(&mut reader) {}
    }

    #[test]
    fn message_shaped_lines_are_refused_or_read(line in json_like()) {
        decode_all(line.as_bytes());
        // Truncated anywhere: refused, never read as something else.
        for cut in (0..line.len()).step_by(7) {
            let result = message::decode::<ToolMessage>(&line.as_bytes()[..cut]);
            prop_assert!(result.is_err() || cut == line.len());
        }
    }

    #[test]
    fn load_requests_read_back_unchanged(
        request in any::<u64>(),
        crate_name in "[a-z_]{1,20}",
        generation in any::<u64>(),
        path in "/[a-z/]{0,40}",
        toolchain in any::<u64>(),
        redirects in proptest::collection::vec((any::<u64>(), any::<u64>(), "[a-z:_]{0,20}"), 0..20),
    ) {
        let redirects = redirects.into_iter().map(|(from, to, name)| Redirect { name, from, to, len: 0 }).collect();
        let load = LoadRequest::new(request, crate_name, generation, path.into(), Vec::new(), toolchain)
            .linked()
            .with_redirects(redirects);
        let sent = ToolMessage::Load(load);
        let mut reader = Cursor::new(message::encode(&sent));
        let read = message::read::<ToolMessage>(&mut reader).unwrap().unwrap();
        prop_assert_eq!(read, sent);
    }
}

#[test]
fn a_line_longer_than_the_limit_is_refused_without_reading_it_all() {
    let mut reader = Cursor::new(vec![b'{'; message::MAX_LINE + 1]);
    assert!(matches!(message::read::<ToolMessage>(&mut reader), Err(ReadError::TooLong)));
}

/// One answer per line: the rest of a too-long line can be skipped, and the line after
/// it is read whole.
#[test]
fn after_a_too_long_line_the_next_line_is_read_whole() {
    let next = ToolMessage::Load(LoadRequest::new(7, "a", 1, "/s/a.so".into(), vec![], 1));
    let mut bytes = vec![b'x'; message::MAX_LINE + 5000];
    bytes.push(b'\n');
    bytes.extend(message::encode(&next));
    let mut reader = Cursor::new(bytes);
    assert!(matches!(message::read::<ToolMessage>(&mut reader), Err(ReadError::TooLong)));
    message::skip_rest_of_line(&mut reader).unwrap();
    assert_eq!(message::read::<ToolMessage>(&mut reader).unwrap(), Some(next));
    assert!(message::read::<ToolMessage>(&mut reader).unwrap().is_none());
}
