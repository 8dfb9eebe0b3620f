//! What every HTTP component guest answers the same way, whatever its
//! language or its component-model ABI (WASI 0.2 in tests/tests/components.rs,
//! WASI 0.3 in tests/tests/p3.rs): the guests built by
//! `scripts/build-components` and the checks they share.

use std::path::{Path, PathBuf};
use std::thread;

use crate::{Conn, Flint, TempDir, workspace_root};

/// A component built by `scripts/build-components` (which `scripts/test` runs
/// before the tests), `rel` to apps/.
pub fn component(rel: &str) -> PathBuf {
    let path = workspace_root().join("apps").join(rel);
    assert!(
        path.is_file(),
        "{} is not built: run scripts/build-components",
        path.display()
    );
    path
}

/// The app of an HTTP component serving [`serves_like_spin`]'s routes: one
/// wildcard route, the `default` store, a `greeting` variable.
pub fn http_app(dir: &TempDir, source: &Path) -> PathBuf {
    dir.one_component_manifest(
        "spin.toml",
        source,
        "",
        "key_value_stores = [\"default\"]\n[component.c.variables]\ngreeting = \"hello from {{ who }}\"\n",
    );
    let manifest = dir.path().join("spin.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        format!("{text}\n[variables]\nwho = {{ default = \"flint\" }}\n"),
    )
    .expect("manifest");
    manifest
}

/// `len` bytes that are not a repeating short pattern.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// The routes of apps/components/component-hello, as Spin answers them:
/// `/hello` (text `hello`), `/request`, `/kv/<key>`, `/kv-denied`,
/// `/var/<name>`, a 1.5 MB `/echo`, and 100 requests at once.
pub fn serves_like_spin(source: PathBuf, hello: &str) {
    let dir = TempDir::new("component-http");
    let flint = Flint::start(http_app(&dir, &source));
    let resp = flint.get("/hello");
    resp.assert_status(200);
    assert_eq!(resp.text(), hello);
    assert_eq!(resp.header("content-type"), Some("text/plain"));

    let shape = flint
        .request("POST", "/request?a=1", &[("X-Custom", "v1")], "abc")
        .text();
    let port = flint.port();
    for expected in [
        "\"x-custom\":\"v1\"".to_owned(),
        format!("\"spin-full-url\":\"http://127.0.0.1:{port}/request?a=1\""),
        "\"spin-path-info\":\"/request\"".to_owned(),
        "\"spin-matched-route\":\"/...\"".to_owned(),
        "\"spin-component-route\":\"\"".to_owned(),
        "\"method\":\"POST\"".to_owned(),
    ] {
        assert!(shape.contains(&expected), "missing {expected} in {shape}");
    }

    flint.get("/kv/k").assert_status(404);
    flint
        .request("PUT", "/kv/k", &[], "value")
        .assert_status(200);
    assert_eq!(flint.get("/kv/k").text(), "value");
    let denied = flint.get("/kv-denied");
    denied.assert_status(403);
    assert!(
        denied.text().to_lowercase().contains("access"),
        "{}",
        denied.text()
    );
    flint.wait_for_log_line(&["access denied", "secret"]);

    assert_eq!(flint.get("/var/greeting").text(), "hello from flint");
    flint.get("/var/nope").assert_status(500);

    let body = pattern(3 * 1024 * 1024 / 2);
    let echo = flint.request(
        "POST",
        "/echo",
        &[("Content-Type", "application/x-test")],
        &body,
    );
    echo.assert_status(200);
    assert!(echo.body == body, "1.5 MB echo changed");
    assert_eq!(echo.header("content-type"), Some("application/x-test"));

    let addr = flint.addr();
    thread::scope(|s| {
        let clients: Vec<_> = (0..100)
            .map(|_| s.spawn(move || Conn::open(addr).request("GET", "/hello", &[], [])))
            .collect();
        for client in clients {
            let resp = client.join().expect("client thread");
            assert_eq!(resp.assert_status(200).text(), hello);
        }
    });
}
