//! `[limits]` from the runtime-config file.

use flint_e2e::{Flint, showcase_manifest};

fn with_limits(limits: &str) -> Flint {
    Flint::builder(showcase_manifest())
        .runtime_config(&format!("[limits]\n{limits}\n"))
        .start()
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    for chunk in body.chunks(256) {
        wire.extend(format!("{:x}\r\n", chunk.len()).into_bytes());
        wire.extend_from_slice(chunk);
        wire.extend(b"\r\n");
    }
    wire.extend(b"0\r\n\r\n");
    wire
}

#[test]
fn request_body_limit_gives_413() {
    let flint = with_limits("max_request_body_bytes = 1024");
    // At the limit is fine; one byte over is not, however the body is framed.
    let at_limit = vec![b'a'; 1024];
    assert_eq!(
        flint
            .request("POST", "/echo", &[], &at_limit)
            .assert_status(200)
            .body,
        at_limit
    );
    flint
        .request("POST", "/echo", &[], vec![b'a'; 1025])
        .assert_status(413);
    flint
        .request(
            "POST",
            "/echo",
            &[("Transfer-Encoding", "chunked")],
            chunked(&[b'a'; 2000]),
        )
        .assert_status(413);
    flint.get("/hello").assert_status(200);
}

#[test]
fn request_head_limit_gives_431() {
    let flint = with_limits("max_request_head_bytes = 2048");
    let small = "a".repeat(1000);
    flint
        .request("GET", "/hello", &[("X-Padding", &small)], [])
        .assert_status(200);
    let big = "a".repeat(4096);
    flint
        .request("GET", "/hello", &[("X-Padding", &big)], [])
        .assert_status(431);
    flint.get("/hello").assert_status(200);
}

/// A guest response over the limit is a server-side failure, not a truncated 200.
#[test]
fn response_limit_fails_the_request() {
    let flint = with_limits("max_response_bytes = 512");
    flint
        .request("POST", "/echo", &[], "small")
        .assert_status(200);
    let resp = flint.request("POST", "/echo", &[], vec![b'a'; 2000]);
    assert!(
        (500..600).contains(&resp.status),
        "expected a 5xx for an oversize response: {resp:?}"
    );
    flint.get("/hello").assert_status(200);
}
