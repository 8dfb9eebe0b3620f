//! Nothing of one request is visible to the next: the guest
//! (tests/corpus/isolation.wat) looks for a secret in linear memory, a
//! mutable global, a table slot and an open file descriptor, then leaves
//! one in each. However instances are made and reused underneath, every
//! request must find none of them.

use std::thread;

use flint_e2e::{Flint, TempDir, corpus_wasm};

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

#[test]
fn no_request_sees_what_the_one_before_left() {
    let dir = TempDir::new("isolation");
    let flint = Flint::start(isolation_app(&dir));
    // One connection: requests in turn, so each follows the previous one on
    // whichever worker ran it.
    let mut conn = flint.connect();
    for i in 0..100 {
        let response = conn.request("GET", "/", &[], []);
        response.assert_status(200);
        assert_eq!(response.text(), FRESH, "request {i}");
    }
    // Several connections at once, so every worker serves many requests.
    let addr = flint.addr();
    let clients: Vec<_> = (0..4)
        .map(|client| {
            thread::spawn(move || {
                let mut conn = flint_e2e::Conn::open(addr);
                for i in 0..50 {
                    let response = conn.request("GET", "/", &[], []);
                    response.assert_status(200);
                    assert_eq!(response.text(), FRESH, "client {client}, request {i}");
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client saw another request's secret");
    }
}
