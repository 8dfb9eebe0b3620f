//! Behaviours where Spin's conformance suite (fermyon/conformance-tests)
//! holds Flint to Spin's rules; each test is named after the rule. The
//! guests are Flint's own, built from apps/, exercising the same behaviours.

use flint_e2e::services::{Recorded, Upstream, free_port};
use flint_e2e::{Flint, TempDir, apps_dir, parse_env_dump, wasm_path};

/// A manifest serving `source` on `route` (with `extra` trigger lines) as component `c`.
fn route_manifest(dir: &TempDir, route: &str, source: &str, extra: &str) -> std::path::PathBuf {
    dir.write(
        "spin.toml",
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"parity\"\n\
             [[trigger.http]]\nroute = \"{route}\"\ncomponent = \"c\"\n{extra}\n\
             [component.c]\nsource = \"{}\"\n",
            wasm_path(source).display()
        ),
    )
}

/// `request-shape`: Spin names the header after `SPIN_PATH_MATCH_<NAME>`,
/// lower-cased with `-` for `_`, so `:path_segment` is
/// `spin-path-match-path-segment`; every `spin-*` header appears once.
#[test]
fn route_parameter_headers_turn_underscores_into_dashes() {
    let dir = TempDir::new("parity-shape");
    let manifest = route_manifest(&dir, "/base/:path_segment/:path_end/...", "spin_hello", "");
    let flint = Flint::start(manifest);
    let resp = flint.request(
        "GET",
        "/base/path/end/rest?key=value&headers",
        &[("User-Agent", "my-agent")],
        [],
    );
    resp.assert_status(200);
    let text = resp.text();
    let port = flint.port();
    let expected = [
        (
            "spin-full-url",
            format!("http://127.0.0.1:{port}/base/path/end/rest?key=value&headers"),
        ),
        ("spin-path-info", "/rest".to_owned()),
        (
            "spin-matched-route",
            "/base/:path_segment/:path_end/...".to_owned(),
        ),
        ("spin-base-path", "/".to_owned()),
        (
            "spin-raw-component-route",
            "/base/:path_segment/:path_end/...".to_owned(),
        ),
        (
            "spin-component-route",
            "/base/:path_segment/:path_end".to_owned(),
        ),
        ("spin-path-match-path-segment", "path".to_owned()),
        ("spin-path-match-path-end", "end".to_owned()),
    ];
    let spin_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("spin")).collect();
    for (name, value) in &expected {
        let line = format!("{name}: {value}");
        assert_eq!(
            spin_lines.iter().filter(|l| **l == line).count(),
            1,
            "`{line}` once in:\n{text}"
        );
    }
    // The client address is there too; nothing else starting with `spin`.
    assert_eq!(spin_lines.len(), expected.len() + 1, "{text}");
    assert!(text.contains("spin-client-addr: 127.0.0.1:"), "{text}");
}

/// The WAGI side of the same rule: `X_PATH_MATCH_<NAME>` only upper-cases
/// the name, and its value, like `PATH_INFO`, is the raw segment.
#[test]
fn wagi_route_parameters_are_upper_cased_and_raw() {
    let dir = TempDir::new("parity-wagi-shape");
    let manifest = route_manifest(
        &dir,
        "/env/:path_segment/:path_end/...",
        "showcase",
        "executor = { type = \"wagi\" }",
    );
    let flint = Flint::start(manifest);
    let resp = flint.get("/env/a%20b/end/rest%21");
    resp.assert_status(200);
    let env: std::collections::BTreeMap<String, String> =
        parse_env_dump(&resp.text()).into_iter().collect();
    for (key, value) in [
        ("X_PATH_MATCH_PATH_SEGMENT", "a%20b"),
        ("X_PATH_MATCH_PATH_END", "end"),
        ("PATH_INFO", "/rest%21"),
        ("X_RAW_PATH_INFO", "/rest%21"),
        ("PATH_TRANSLATED", "/rest!"),
        ("SCRIPT_NAME", "/env/:path_segment/:path_end"),
    ] {
        assert_eq!(
            env.get(key).map(String::as_str),
            Some(value),
            "{key} in {env:#?}"
        );
    }
}

/// `key-value` and `key-value-no-permission`: a label the component does
/// not list is `access-denied`, whether or not the app defines it.
#[test]
fn unlisted_store_is_access_denied() {
    let flint = Flint::builder(apps_dir().join("spin-kv"))
        .runtime_config(
            "[key_value_store.other]\ntype = \"spin\"\n\n[key_value_store.elsewhere]\ntype = \"spin\"\n",
        )
        .start();
    // `elsewhere` is defined by the runtime config; `nowhere` by nothing.
    for store in ["elsewhere", "nowhere"] {
        let resp = flint.get(&format!("/kv/k?store={store}"));
        resp.assert_status(500);
        assert!(resp.text().contains("AccessDenied"), "{store}: {resp:?}");
        flint.wait_for_log_line(&["access denied", "spin-kv", store]);
    }
    // A component with no key_value_stores may not open even `default`.
    let dir = TempDir::new("parity-kv-none");
    let manifest = dir.one_component_manifest("spin.toml", &wasm_path("spin_kv"), "", "");
    let none = Flint::start(manifest);
    let resp = none.get("/kv/k");
    resp.assert_status(500);
    assert!(resp.text().contains("AccessDenied"), "{resp:?}");
}

fn answer(request: &Recorded) -> (u16, &'static str, Vec<u8>) {
    (
        200,
        "text/plain",
        format!("saw {}", request.path).into_bytes(),
    )
}

/// `outbound-wasi-http-v0.2.0-no-perms`: `handle` accepts a request to a
/// host outside `allowed_outbound_hosts`; its future resolves to
/// `HTTP-request-denied`. Only a request that cannot be built fails in
/// `handle` itself.
#[test]
fn denied_outbound_http_is_refused_by_the_future_not_by_handle() {
    let upstream = Upstream::start(answer);
    let other = Upstream::start(answer);
    let flint = Flint::builder(apps_dir().join("spin-proxy"))
        .variable("upstream_port", &upstream.port().to_string())
        .start();
    let denied = flint.get(&format!("/raw?url=http://127.0.0.1:{}/x", other.port()));
    denied.assert_status(500);
    assert_eq!(
        denied.text(),
        "incoming-response#get: ErrorCode::HttpRequestDenied"
    );
    // No authority: for Spin a request to the app itself, not permitted here.
    let local = flint.get("/raw?url=http:///x");
    assert_eq!(
        local.text(),
        "incoming-response#get: ErrorCode::HttpRequestDenied"
    );
    let unbuildable = flint.get(&format!("/raw?url=ftp://127.0.0.1:{}/x", upstream.port()));
    assert_eq!(
        unbuildable.text(),
        "outgoing-handler/handle: ErrorCode::HttpProtocolError"
    );
    assert!(
        other.requests().is_empty(),
        "a denied request reached the network"
    );
    let allowed = flint.get(&format!("/raw?url=http://127.0.0.1:{}/x", upstream.port()));
    allowed.assert_status(200);
    assert_eq!(upstream.requests().len(), 1);
}

/// `outbound-mqtt-no-permission`: `connection-failed` with Spin's text,
/// the address exactly as the guest gave it.
#[test]
fn denied_mqtt_open_names_the_address_as_given() {
    let dir = TempDir::new("parity-mqtt");
    let address = format!("mqtt://localhost:{}?client_id=spintest", free_port());
    let manifest = dir.write(
        "spin.toml",
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"parity\"\n\
             [[trigger.http]]\nroute = \"/publish/...\"\ncomponent = \"c\"\n\
             [component.c]\nsource = \"{}\"\n\
             [component.c.variables]\nmqtt_address = \"{address}\"\n",
            wasm_path("spin_mqtt").display()
        ),
    );
    let flint = Flint::start(manifest);
    let resp = flint.request("POST", "/publish/x", &[], "nope");
    resp.assert_status(502);
    let expected = format!("ConnectionFailed(\"address {address} is not permitted\")");
    assert!(resp.text().contains(&expected), "{resp:?}");
    flint.wait_for_log_line(&["outbound MQTT denied", "component=c"]);
}

/// Spin's conformance runner refuses any response header it did not expect:
/// Flint adds only `Content-Length` to what the guest set (no
/// `Connection: keep-alive`, HTTP/1.1's default), and `Connection: close`
/// only when it closes.
#[test]
fn responses_carry_only_the_guests_headers_and_content_length() {
    let flint = Flint::start(apps_dir().join("spin-hello"));
    let resp = flint.get("/x");
    resp.assert_status(200);
    let mut names: Vec<String> = resp
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    assert_eq!(names, ["content-length", "content-type"], "{resp:?}");
    let closing = flint.request("GET", "/x", &[("Connection", "close")], []);
    assert_eq!(closing.header("connection"), Some("close"), "{closing:?}");
}
