//! The HTTP trigger: picoserve on smol, with Flint's framing in front of it.

mod chunked;
pub mod framing;
pub mod router;
pub mod server;
pub mod service;
mod socket;

/// RFC 9110 token characters: methods and header names, from clients,
/// guests and manifests alike.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}
