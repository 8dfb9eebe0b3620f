//! Property tests: guest output, request heads and guests' outbound
//! addresses are input from outside; none of them may panic the host.

use proptest::prelude::*;

use crate::http::framing::{FrameLimits, frame};
use crate::outbound_hosts::AllowedHosts;

fn header_block() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        "(?i:content-type|status|location|x-[a-z]{1,8}): ?[ -~]{0,30}",
        "Status: [0-9]{0,4}[ -~]{0,10}",
        "[ -~]{0,40}",
    ];
    (
        proptest::collection::vec(line, 0..8),
        prop_oneof![Just("\n"), Just("\r\n")],
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(lines, eol, body)| {
            let mut out = lines.join(eol).into_bytes();
            out.extend_from_slice(eol.as_bytes());
            out.extend_from_slice(eol.as_bytes());
            out.extend(body);
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn wagi_output_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = crate::wagi::parse_output(&bytes);
    }

    #[test]
    fn wagi_header_blocks_parse_without_panics(out in header_block()) {
        if let Ok(response) = crate::wagi::parse_output(&out) {
            prop_assert!(response.body_offset <= out.len());
            prop_assert!((200..=999).contains(&response.status));
        }
    }

    #[test]
    fn request_heads_never_panic(head in "[ -~\t]{0,60}(\r\n[ -~\t]{0,40}){0,6}\r\n\r\n") {
        let limits = FrameLimits {
            max_head_bytes: 8192,
            max_headers: 4,
            max_body_bytes: 1024,
            keep_alive: std::time::Duration::from_secs(1),
            read_timeout: std::time::Duration::from_secs(1),
        };
        let _ = frame(head.as_bytes(), limits);
    }

    #[test]
    fn outbound_host_patterns_never_panic(pattern in "[a-z*:/.0-9\\[\\]]{0,40}", host in "[a-z0-9.\\[\\]:]{0,20}", port: u16) {
        if let Ok(allowed) = AllowedHosts::parse([pattern.as_str()]) {
            let _ = allowed.allows("http", &host, port);
        }
    }
}
