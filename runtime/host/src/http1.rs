//! HTTP/1.1 wire rules shared by the outbound client, the `wasi:http` types
//! and the HTTP trigger.

/// RFC 9110 token characters: methods and header names, from clients,
/// guests and manifests alike.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

/// A header a guest or manifest may send: a token name and a value without
/// control characters, so nothing can split or inject response lines.
pub fn is_valid_header(name: &str, value: &str) -> bool {
    is_token(name.as_bytes()) && !value.bytes().any(|b| b.is_ascii_control() && b != b'\t')
}
