//! Outbound HTTP (`wasi:http/outgoing-handler`) and MQTT
//! (`fermyon:spin/mqtt@2.0.0`) from unmodified Spin SDK apps, against a real
//! HTTP server and a real mosquitto, with `allowed_outbound_hosts` enforced.

use std::time::Duration;

use flint_e2e::services::{Mosquitto, Recorded, Upstream, free_port};
use flint_e2e::{Flint, TempDir, apps_dir, wasm_path};

fn upstream_answer(request: &Recorded) -> (u16, &'static str, Vec<u8>) {
    match request.path.as_str() {
        "/big" => (200, "application/octet-stream", vec![b'x'; 1024 * 1024 + 3]),
        "/teapot" => (418, "text/plain", b"short and stout".to_vec()),
        _ => (
            200,
            "text/plain",
            format!("upstream saw {} {}", request.method, request.path).into_bytes(),
        ),
    }
}

fn proxy(upstream: &Upstream) -> Flint {
    Flint::builder(apps_dir().join("spin-proxy"))
        .variable("upstream_port", &upstream.port().to_string())
        .start()
}

#[test]
fn allowed_requests_reach_the_upstream() {
    let upstream = Upstream::start(upstream_answer);
    let flint = proxy(&upstream);
    let url = format!("http://127.0.0.1:{}", upstream.port());

    let resp = flint.get(&format!("/proxy?url={url}/hello"));
    resp.assert_status(200);
    assert_eq!(resp.text(), "upstream saw GET /hello");

    let resp = flint.request("POST", &format!("/proxy?url={url}/submit"), &[], "payload");
    resp.assert_status(200);
    let seen = upstream.requests();
    let post = seen
        .iter()
        .find(|r| r.path == "/submit")
        .expect("upstream got the POST");
    assert_eq!(post.body, b"payload");
    assert_eq!(post.header("x-forwarded-by"), Some("flint-proxy"));

    flint
        .get(&format!("/proxy?url={url}/teapot"))
        .assert_status(418);
    let big = flint.get(&format!("/proxy?url={url}/big"));
    big.assert_status(200);
    assert_eq!(big.body.len(), 1024 * 1024 + 3);
}

#[test]
fn denied_requests_never_reach_the_network() {
    let upstream = Upstream::start(upstream_answer);
    let other = Upstream::start(upstream_answer);
    let flint = proxy(&upstream);
    for url in [
        format!("http://127.0.0.1:{}/x", other.port()),
        format!("http://localhost:{}/x", upstream.port()),
        format!("https://127.0.0.1:{}/x", upstream.port()),
    ] {
        let resp = flint.get(&format!("/proxy?url={url}"));
        resp.assert_status(502);
        assert!(resp.text().contains("HttpRequestDenied"), "{url}: {resp:?}");
        flint.wait_for_log_line(&["outbound HTTP denied", "spin-proxy", &url]);
    }
    assert!(
        other.requests().is_empty(),
        "a denied request reached the network"
    );
    assert!(
        upstream.requests().is_empty(),
        "a denied request reached the network"
    );
}

#[test]
fn guests_publish_to_a_real_broker() {
    let broker = Mosquitto::start();
    let subscriber = broker.subscribe("sensors/#");
    let flint = Flint::builder(apps_dir().join("spin-mqtt"))
        .variable("mqtt_port", &broker.port().to_string())
        .start();
    for i in 0..5 {
        flint
            .request(
                "POST",
                &format!("/publish/sensors/t{i}"),
                &[],
                format!("reading {i}"),
            )
            .assert_status(200);
    }
    let got = subscriber.wait_for(5, Duration::from_secs(10));
    let expected: Vec<String> = (0..5)
        .map(|i| format!("sensors/t{i} reading {i}"))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn publishing_to_a_broker_not_allowed_is_refused() {
    let broker = Mosquitto::start();
    let subscriber = broker.subscribe("#");
    let dir = TempDir::new("mqtt-denied");
    // The guest is pointed at the real broker, but only another port is allowed.
    let manifest = dir.one_component_manifest(
        "spin.toml",
        &wasm_path("spin_mqtt"),
        "",
        &format!(
            "allowed_outbound_hosts = [\"mqtt://127.0.0.1:{other}\"]\n\
             [component.c.variables]\n\
             mqtt_address = \"mqtt://127.0.0.1:{port}?client_id=denied\"",
            other = free_port(),
            port = broker.port()
        ),
    );
    let flint = Flint::start(manifest);
    let resp = flint.request("POST", "/publish/x", &[], "nope");
    resp.assert_status(502);
    assert!(resp.text().contains("ConnectionFailed"), "{resp:?}");
    assert!(resp.text().contains("is not permitted"), "{resp:?}");
    flint.wait_for_log_line(&["outbound MQTT denied", "component=c"]);
    assert!(
        subscriber
            .wait_for(1, Duration::from_millis(500))
            .is_empty()
    );
}
