//! Guests built as WASI 0.3 (async) components, unmodified: `p3-hello` and
//! `p3-hostile` from spin-sdk 7 (apps/p3) and a Python component from
//! componentize-py with the Spin Python SDK 5 (apps/py-hello). They serve the
//! same routes as the WASI 0.2 components (tests/tests/components.rs), and
//! what only an async guest does: a body streamed while the guest runs, a
//! guest waiting forever (ended by the deadline), and misuse of the async
//! canonical built-ins (each traps only its own invocation).

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;

use flint_e2e::components::{component, http_app, pattern, serves_like_spin};
use flint_e2e::{Conn, Flint, Request, TempDir, run_flint, workspace_root};

fn p3_hello() -> PathBuf {
    component("p3/target/wasm32-wasip2/release/p3_hello.wasm")
}

fn py_hello() -> PathBuf {
    component("py-hello/target/app.wasm")
}

/// apps/p3/spin.toml (`p3-hello` on `/...`, `p3-hostile` on `/hostile/...`),
/// once both components are built.
fn p3_manifest() -> PathBuf {
    p3_hello();
    component("p3/target/wasm32-wasip2/release/p3_hostile.wasm");
    workspace_root().join("apps/p3/spin.toml")
}

#[test]
fn both_apps_pass_flint_check() {
    py_hello();
    for manifest in [
        p3_manifest(),
        workspace_root().join("apps/py-hello/spin.toml"),
    ] {
        let out = run_flint(["check".into(), "-f".into(), manifest.as_os_str().to_owned()]);
        assert!(out.status.success(), "{}: {out:?}", manifest.display());
    }
}

#[test]
fn a_spin_sdk_7_component_serves_like_spin() {
    serves_like_spin(p3_hello(), "Hello from a wasip3 component\n");
}

/// spin-sdk 6 (Spin 4.0's template) exports the handler at the release
/// candidate `0.3.0-rc-2026-03-15`; its `/echo` hands the request body on
/// unread as the response's.
#[test]
fn a_spin_sdk_6_component_answers_and_passes_its_body_on() {
    let dir = TempDir::new("p3-sdk6");
    let source = component("p3/target/wasm32-wasip2/release/p3_sdk6.wasm");
    let flint = Flint::start(http_app(&dir, &source));
    let hello = flint.get("/hello");
    assert_eq!(hello.assert_status(200).text(), "Hello from spin-sdk 6\n");
    let body = pattern(1_500_000);
    let echo = flint.request("POST", "/echo", &[], &body);
    echo.assert_status(200);
    assert!(echo.body == body, "1.5 MB echo changed");
}

#[test]
fn a_python_component_starts_and_serves_like_spin() {
    // Starting it (25 MB, a whole CPython) is part of the test: it must
    // load within `Flint::start`'s usual startup timeout.
    serves_like_spin(py_hello(), "Hello from Python\n");
}

/// `/counter` counts in the `default` store across requests, each of which
/// gets a fresh instance.
fn counts(source: PathBuf) {
    let dir = TempDir::new("p3-counter");
    let flint = Flint::start(http_app(&dir, &source));
    for n in 1..=3 {
        let resp = flint.get("/counter");
        resp.assert_status(200);
        assert_eq!(resp.text(), format!("{n}\n"));
    }
    assert_eq!(flint.get("/kv/counter").text(), "3");
}

#[test]
fn a_spin_sdk_7_component_counts_in_the_default_store() {
    counts(p3_hello());
}

#[test]
fn a_python_component_counts_in_the_default_store() {
    counts(py_hello());
}

#[test]
fn a_body_written_in_chunks_arrives_whole_and_chunked() {
    let flint = Flint::start(p3_manifest());
    let resp = flint.get("/stream");
    resp.assert_status(200);
    assert_eq!(
        resp.header("transfer-encoding"),
        Some("chunked"),
        "{resp:?}"
    );
    let expected: String = (0..5).map(|i| format!("chunk {i}\n")).collect();
    assert_eq!(resp.text(), expected);

    // A timer await of 1.5 s between the two chunks, well inside the
    // default deadline.
    let slow = flint.get("/stream-slow");
    slow.assert_status(200);
    assert_eq!(slow.text(), "first\nlast\n");
}

/// Chunks of a chunked body until `want` bytes have come (`usize::MAX`: to
/// the last chunk); a body that ends before `want` fails the test.
fn read_chunks(conn: &mut Conn, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        let chunk = conn.read_chunk();
        if chunk.is_empty() {
            assert_eq!(want, usize::MAX, "the body ended after {got:?}");
            break;
        }
        got.extend(chunk);
    }
    got
}

#[test]
fn the_first_chunk_reaches_the_client_while_the_guest_still_runs() {
    let flint = Flint::start(p3_manifest());
    let mut conn = flint.connect();
    // The guest writes `first\n`, then cannot finish until `release` exists
    // in the store, which only this test writes, after it has read the
    // first chunk: a host that held the body back until the guest returned
    // would never send it (the read below fails at the client's timeout).
    conn.send(&Request::new("GET", "/stream-until/release", &[], []));
    let head = conn.read_chunked_head();
    head.assert_status(200);
    assert_eq!(read_chunks(&mut conn, b"first\n".len()), b"first\n");
    assert!(
        !conn.has_data_ready(),
        "more of the body came before the guest was released"
    );

    flint
        .request("PUT", "/kv/release", &[], "go")
        .assert_status(200);
    let rest = read_chunks(&mut conn, usize::MAX);
    assert_eq!(String::from_utf8_lossy(&rest), "last\n");
    // The guest deleted the key once it saw it.
    flint.get("/kv/release").assert_status(404);
}

#[test]
fn the_request_body_reaches_the_guest_as_the_client_sends_it() {
    let flint = Flint::start(p3_manifest());
    let mut conn = flint.connect();
    // `/echo` writes back each piece of its body as it reads it. Only the
    // first half is sent until its echo has come back: a host that waited
    // for the whole body before starting the guest would never answer
    // (the read below fails at the client's timeout).
    conn.write_raw(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 12\r\n\r\nhello, ");
    let head = conn.read_chunked_head();
    head.assert_status(200);
    assert_eq!(read_chunks(&mut conn, b"hello, ".len()), b"hello, ");
    conn.write_raw(b"world");
    assert_eq!(read_chunks(&mut conn, usize::MAX), b"world");
    // The connection goes on with the next request.
    let hello = conn.request("GET", "/hello", &[], []);
    hello.assert_status(200);
    assert_eq!(hello.text(), "Hello from a wasip3 component\n");
}

#[test]
fn a_guest_that_leaves_its_body_unread_does_not_hold_the_client_back() {
    let flint = Flint::start(p3_manifest());
    let mut conn = flint.connect();
    // More than the socket buffers and the guest's channel hold. The guest
    // never reads it and cannot finish until the test writes `go`, which it
    // does only once the whole body is written: the rest of the body must be
    // read (and dropped) while the guest still runs.
    let body = vec![b'x'; 8 << 20];
    conn.write_raw(
        format!(
            "POST /stream-until/go HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    conn.write_raw(&body);
    let head = conn.read_chunked_head();
    head.assert_status(200);
    assert_eq!(read_chunks(&mut conn, b"first\n".len()), b"first\n");
    flint.request("PUT", "/kv/go", &[], "go").assert_status(200);
    assert_eq!(read_chunks(&mut conn, usize::MAX), b"last\n");
    let hello = conn.request("GET", "/hello", &[], []);
    assert_eq!(
        hello.assert_status(200).text(),
        "Hello from a wasip3 component\n"
    );
}

#[test]
fn a_guest_awaiting_forever_gets_504_at_the_deadline_while_others_answer() {
    let flint = Flint::builder(p3_manifest())
        .runtime_config("[limits]\nmax_execution_ms = 1000\n")
        .start();
    let addr = flint.addr();
    let (sent, was_sent) = mpsc::channel();
    let never = thread::spawn(move || {
        let mut conn = flint_e2e::Conn::open(addr);
        conn.send(&Request::new("GET", "/never", &[], []));
        sent.send(()).expect("the test waits for the request");
        conn.read_response()
    });
    was_sent.recv().expect("the /never client");
    // The waiting guest holds one instance; the others still serve.
    let hello = flint.get("/hello");
    hello.assert_status(200);
    assert_eq!(hello.text(), "Hello from a wasip3 component\n");

    let resp = never.join().expect("the /never client");
    resp.assert_status(504);
    assert!(resp.text().contains("max_execution_ms = 1000"), "{resp:?}");
    flint.wait_for_log_line(&["p3-hello", "max_execution_ms = 1000"]);
    flint.get("/hello").assert_status(200);
}

/// Each misuse of the async built-ins traps its own invocation (500, logged
/// naming the component), twice in a row so a fresh instance is contained the
/// same way, and both components keep answering after each.
#[test]
fn every_hostile_async_route_traps_only_its_own_invocation() {
    for route in [
        "/hostile/double-drop",
        "/hostile/write-after-drop",
        "/hostile/double-return",
        "/hostile/forge-waitable",
    ] {
        let flint = Flint::start(p3_manifest());
        let ok = flint.get("/hostile/ok");
        ok.assert_status(200);
        assert_eq!(ok.text(), "still serving\n");
        for _ in 0..2 {
            let resp = flint.get(route);
            assert_eq!(
                resp.status,
                500,
                "{route}: {resp:?}\n--- stderr ---\n{}",
                flint.stderr()
            );
            flint.get("/hostile/ok").assert_status(200);
            flint.get("/hello").assert_status(200);
        }
        flint.wait_for_log_line(&["GET", route, "500", "p3-hostile"]);
        flint.wait_for_log_line(&["ERROR", "component=p3-hostile", "trapped"]);
    }
}
