//! Unmodified Spin SDK HTTP components (spin-sdk 3, wasm32-wasip1) served
//! through the wasi:http imports, and a guest that abuses those imports.

use flint_e2e::{Flint, TempDir, apps_dir, run_flint, wasm_path};

fn hello() -> Flint {
    Flint::start(apps_dir().join("spin-hello"))
}

/// Deterministic bytes covering every value, without an RNG dependency.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn hello_answers_with_status_headers_and_body() {
    let flint = hello();
    let resp = flint.get("/some/path?q=1");
    resp.assert_status(200);
    assert_eq!(resp.text(), "Hello, Flint! (/some/path)\n");
    assert_eq!(resp.header("content-type"), Some("text/plain"));
    flint.wait_for_log_line(&["GET", "/some/path", "200", "spin-hello"]);
}

#[test]
fn request_headers_include_spins_extras() {
    let flint = hello();
    let resp = flint.request("GET", "/users/42?headers", &[("X-Custom", "v1")], []);
    resp.assert_status(200);
    let text = resp.text();
    let port = flint.port();
    for expected in [
        "x-custom: v1".to_owned(),
        format!("spin-full-url: http://127.0.0.1:{port}/users/42?headers"),
        "spin-path-info: \n".to_owned(),
        "spin-matched-route: /users/:id".to_owned(),
        "spin-raw-component-route: /users/:id".to_owned(),
        "spin-component-route: /users/:id".to_owned(),
        "spin-base-path: /".to_owned(),
        "spin-client-addr: 127.0.0.1:".to_owned(),
        "spin-path-match-id: 42".to_owned(),
    ] {
        assert!(text.contains(&expected), "missing `{expected}` in:\n{text}");
    }
    // A client cannot spoof what Flint tells the guest about the request.
    let spoofed = flint
        .request(
            "GET",
            "/x?headers",
            &[
                ("Spin-Client-Addr", "6.6.6.6:1"),
                ("spin-path-match-id", "7"),
            ],
            [],
        )
        .text();
    assert!(!spoofed.contains("6.6.6.6"), "{spoofed}");
    assert!(!spoofed.contains("spin-path-match-id"), "{spoofed}");
    let wildcard = flint.get("/a/b?headers").text();
    assert!(wildcard.contains("spin-path-info: /a/b\n"), "{wildcard}");
    assert!(
        wildcard.contains("spin-raw-component-route: /...\n"),
        "{wildcard}"
    );
    assert!(wildcard.contains("spin-component-route: \n"), "{wildcard}");
}

#[test]
fn large_bodies_stream_in_and_out_intact() {
    let flint = hello();
    let body = pattern(3 * 1024 * 1024 / 2);
    let resp = flint.request(
        "POST",
        "/echo",
        &[
            ("Content-Type", "application/x-test"),
            ("X-Echo", "round-trip"),
        ],
        &body,
    );
    resp.assert_status(200);
    assert!(
        resp.body == body,
        "echo differs: {} bytes back",
        resp.body.len()
    );
    assert_eq!(resp.header("content-type"), Some("application/x-test"));
    assert_eq!(resp.header("x-echo"), Some("round-trip"));
    assert_eq!(resp.header("x-flint"), Some("echo"));
}

#[test]
fn chunked_and_empty_request_bodies_reach_the_guest() {
    let flint = hello();
    let resp = flint.request(
        "POST",
        "/echo",
        &[("Transfer-Encoding", "chunked")],
        "5\r\nhello\r\n6\r\n flint\r\n0\r\n\r\n",
    );
    resp.assert_status(200);
    assert_eq!(resp.text(), "hello flint");
    let empty = flint.request("POST", "/echo", &[], []);
    empty.assert_status(200);
    assert!(empty.body.is_empty(), "{empty:?}");
}

#[test]
fn abusive_host_calls_fail_only_their_own_request() {
    let flint = Flint::start(apps_dir().join("hostile"));
    let cases = [
        ("/forged-handle", "invalid `fields` handle"),
        ("/wrong-type", "invalid `fields` handle"),
        ("/bad-pointer", "out-of-bounds pointer"),
        ("/bad-retptr", "out-of-bounds return pointer"),
        ("/huge-list", ""),
        ("/bad-utf8", "not valid UTF-8"),
        ("/kv-bad-pointer", "out-of-bounds pointer"),
        ("/double-set", "invalid `response-outparam` handle"),
        ("/no-response", "without setting a response"),
    ];
    for (path, reason) in cases {
        flint.get(path).assert_status(500);
        flint.wait_for_log_line(&["hostile", reason]);
        // The server and other requests are unharmed.
        flint.get("/ok").assert_status(200);
    }
}

#[test]
fn module_kind_must_match_the_executor() {
    let dir = TempDir::new("kinds");
    let spin_as_wagi = dir.one_component_manifest(
        "wagi.toml",
        &wasm_path("spin_hello"),
        "executor = { type = \"wagi\" }",
        "",
    );
    let out = run_flint(["check".into(), spin_as_wagi.into_os_string()]);
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stderr.contains("Spin SDK component"), "{out:?}");
    assert!(out.stderr.contains("remove `executor"), "{out:?}");

    let wagi_as_spin = dir.one_component_manifest("spin.toml", &wasm_path("hello"), "", "");
    let out = run_flint(["check".into(), wagi_as_spin.into_os_string()]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        out.stderr
            .contains("wasi:http/incoming-handler@0.2.0#handle"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("executor = { type = \"wagi\" }"),
        "{out:?}"
    );
}
