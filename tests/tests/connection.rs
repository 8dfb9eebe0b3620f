//! HTTP/1.1 connection handling: HEAD framing, keep-alive, pipelining,
//! malformed requests, concurrency, and slow guests not blocking others.

use std::thread;

use flint_e2e::{Conn, Flint, Request};

/// A HEAD response must carry no body bytes. If it did, they would sit in front
/// of the next response on the connection and the GET would fail to parse.
#[test]
fn head_has_no_body_and_connection_stays_usable() {
    let flint = Flint::showcase();
    let mut conn = flint.connect();
    let head = conn.request("HEAD", "/hello", &[], []);
    head.assert_status(200);
    let get = conn.request("GET", "/hello", &[], []);
    assert_eq!(get.assert_status(200).text(), "Hello, Flint!\n");
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let flint = Flint::showcase();
    let mut conn = flint.connect();
    for name in ["first", "second", "third"] {
        let resp = conn.request("GET", &format!("/greet/{name}"), &[], []);
        assert_eq!(resp.assert_status(200).text(), format!("Hello, {name}!\n"));
    }
}

/// Three requests in a single write; the responses must come back complete
/// and in request order.
#[test]
fn pipelined_requests_are_answered_in_order() {
    let flint = Flint::showcase();
    let reqs = [
        Request::new("GET", "/greet/one", &[], []),
        Request::new("POST", "/echo", &[("Content-Type", "text/plain")], "two"),
        Request::new("GET", "/greet/three", &[], []),
    ];
    let resps = flint.connect().pipeline(&reqs);
    let bodies: Vec<String> = resps.iter().map(|r| r.assert_status(200).text()).collect();
    assert_eq!(bodies, ["Hello, one!\n", "two", "Hello, three!\n"]);
}

#[test]
fn malformed_request_line_is_400() {
    let flint = Flint::showcase();
    for raw in [
        "GARBAGE\r\n\r\n",
        "GET /hello HTTP/1.1 trailing-junk\r\nHost: x\r\n\r\n",
        "G\x01T /hello HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /hello FTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut conn = flint.connect();
        conn.write_raw(raw.as_bytes());
        let resp = conn.read_response();
        assert_eq!(resp.status, 400, "request {raw:?}: {resp:?}");
    }
    flint.get("/hello").assert_status(200);
}

/// Many clients at once, each on its own connection, each getting its own answer.
#[test]
fn concurrent_requests_all_succeed() {
    const CLIENTS: usize = 120;
    let flint = Flint::showcase();
    let addr = flint.addr();
    thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                s.spawn(move || {
                    let resp =
                        Conn::open(addr).request("GET", &format!("/greet/client-{i}"), &[], []);
                    (i, resp)
                })
            })
            .collect();
        for h in handles {
            let (i, resp) = h.join().expect("client thread panicked");
            assert_eq!(
                resp.assert_status(200).text(),
                format!("Hello, client-{i}!\n")
            );
        }
    });
}

/// While one guest sleeps, another request completes: checked by ordering
/// (the slow response has not arrived when /hello's has), not by timing.
#[test]
fn slow_request_does_not_block_others() {
    let flint = Flint::showcase();
    let mut slow = flint.connect();
    slow.send(&Request::new("GET", "/slow?ms=2000", &[], []));
    flint.wait_until_slow_is_running();
    assert_eq!(
        flint.get("/hello").assert_status(200).text(),
        "Hello, Flint!\n"
    );
    assert!(
        !slow.has_data_ready(),
        "/slow answered before /hello: requests are serialised"
    );
    assert_eq!(
        slow.read_response().assert_status(200).text(),
        "slept 2000\n"
    );
}
