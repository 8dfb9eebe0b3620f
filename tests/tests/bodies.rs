//! Request bodies: the showcase's `/echo` returns stdin byte for byte, so what
//! comes back is exactly what the host decoded and handed to the guest.

use flint_e2e::{Flint, Response};

/// Asserts `/echo` returned `body` unchanged, with the headers it derives from it.
#[track_caller]
fn assert_echo(resp: &Response, method: &str, body: &[u8], content_type: &str) {
    resp.assert_status(200);
    assert!(
        resp.body == body,
        "echoed body differs ({} bytes sent, {} received)",
        body.len(),
        resp.body.len()
    );
    assert_eq!(
        resp.header("x-body-length"),
        Some(body.len().to_string().as_str()),
        "{resp:?}"
    );
    assert_eq!(resp.header("x-request-method"), Some(method), "{resp:?}");
    assert_eq!(resp.header("content-type"), Some(content_type), "{resp:?}");
}

#[test]
fn echo_returns_body_and_content_type() {
    let flint = Flint::showcase();
    let resp = flint.request(
        "POST",
        "/echo",
        &[("Content-Type", "text/x-test")],
        "hello, flint",
    );
    assert_echo(&resp, "POST", b"hello, flint", "text/x-test");
}

/// 1 MiB of every byte value (NUL, CR, LF, invalid UTF-8 ...) fits the default
/// limits and must survive stdin -> stdout untouched.
#[test]
fn echo_mebibyte_of_binary() {
    let flint = Flint::showcase();
    let body: Vec<u8> = (0..1024 * 1024)
        .map(|i: u32| (i.wrapping_mul(31) % 256) as u8)
        .collect();
    let resp = flint.request("PUT", "/echo", &[], &body);
    assert_echo(&resp, "PUT", &body, "application/octet-stream");
}

#[test]
fn chunked_request_body_is_decoded() {
    let flint = Flint::showcase();
    // Includes a chunk extension and a trailer, both of which must be dropped.
    let wire = "5\r\nhello\r\n6;ext=1\r\n, chun\r\n3\r\nked\r\n0\r\nX-Trailer: t\r\n\r\n";
    let resp = flint.request(
        "POST",
        "/echo",
        &[
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", "text/plain"),
        ],
        wire,
    );
    assert_echo(&resp, "POST", b"hello, chunked", "text/plain");
}

#[test]
fn malformed_chunked_body_is_400() {
    let flint = Flint::showcase();
    for wire in [
        "zz\r\nhello\r\n0\r\n\r\n", // chunk size is not hex
        "5\r\nhelloXX0\r\n\r\n",    // chunk data not followed by CRLF
        "-5\r\nhello\r\n0\r\n\r\n", // negative size
    ] {
        let resp = flint.request("POST", "/echo", &[("Transfer-Encoding", "chunked")], wire);
        assert_eq!(resp.status, 400, "chunked body {wire:?}: {resp:?}");
    }
    // A bad request must not take the server down.
    flint.get("/hello").assert_status(200);
}

/// The client sends only the head and waits for `100 Continue` before the body:
/// a server that never sends it would leave this test waiting until the read
/// timeout, and fail.
#[test]
fn expect_100_continue() {
    let flint = Flint::showcase();
    let mut conn = flint.connect();
    let host = flint.addr().to_string();
    conn.write_raw(
        format!("POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n").as_bytes(),
    );
    let interim = conn.read_response();
    assert_eq!(interim.status, 100, "{interim:?}");
    assert!(
        interim.head.starts_with("HTTP/1.1 100 Continue"),
        "{interim:?}"
    );
    conn.write_raw(b"hello");
    assert_echo(
        &conn.read_response(),
        "POST",
        b"hello",
        "application/octet-stream",
    );
}
