//! Nothing of one request is visible to the next: the core module
//! (tests/corpus/isolation.wat) looks for a secret in linear memory, a
//! mutable global, a table slot and an open file descriptor, then leaves
//! one in each; the component (apps/components/hostile-component,
//! `/isolation`) does the same with a static and a leaked handle. However
//! instances are made and reused underneath, every request must find none
//! of them.

use std::net::SocketAddr;
use std::thread;

use flint_e2e::{Conn, Flint, TempDir, corpus_wasm, workspace_root};

const FRESH: &str = "before=0000 after=1111\n";

fn isolation_app(dir: &TempDir) -> std::path::PathBuf {
    dir.write("files/secret.txt", "a file the guest leaves open\n");
    dir.one_component_manifest(
        "spin.toml",
        &corpus_wasm("isolation"),
        "executor = { type = \"wagi\" }",
        "files = [{ source = \"files\", destination = \"/\" }]",
    )
}

/// `requests` requests in turn on one connection, so each follows the one
/// before on whichever worker ran it, then as many spread over four
/// connections at once, so every worker serves many; each answer must be
/// `expected`.
fn assert_every_answer(addr: SocketAddr, path: &'static str, expected: &'static str) {
    let mut conn = Conn::open(addr);
    for i in 0..100 {
        let response = conn.request("GET", path, &[], []);
        response.assert_status(200);
        assert_eq!(response.text(), expected, "request {i}");
    }
    let clients: Vec<_> = (0..4)
        .map(|client| {
            thread::spawn(move || {
                let mut conn = Conn::open(addr);
                for i in 0..50 {
                    let response = conn.request("GET", path, &[], []);
                    response.assert_status(200);
                    assert_eq!(response.text(), expected, "client {client}, request {i}");
                }
            })
        })
        .collect();
    for client in clients {
        client
            .join()
            .expect("a client saw another request's secret");
    }
}

#[test]
fn no_request_sees_what_the_one_before_left() {
    let dir = TempDir::new("isolation");
    let flint = Flint::start(isolation_app(&dir));
    assert_every_answer(flint.addr(), "/", FRESH);
}

#[test]
fn no_component_request_sees_what_the_one_before_left() {
    let manifest = workspace_root().join("apps/components/hostile-component/spin.toml");
    let flint = Flint::start(manifest);
    // The first request's answer is what a fresh instance says; every later
    // one must say the same (a leaked handle would raise the number).
    let first = flint.get("/isolation");
    first.assert_status(200);
    let text = first.text();
    assert!(
        text.starts_with("memory=0 handle=") && text.ends_with(" after=1\n"),
        "{text:?}"
    );
    assert_every_answer(flint.addr(), "/isolation", text.leak());
}
