//! Outbound HTTPS for guests against a real TLS server (Python's `ssl`) with
//! certificates from a CA made by the test: Spin's `[[client_tls]]` roots,
//! name checks, and device certificates for mutual TLS.

use flint_e2e::services::{HttpsUpstream, TestCa};
use flint_e2e::{Flint, TempDir, wasm_path};

/// spin-proxy as component `c`, allowed to reach `host:port` over https,
/// with `client_tls` as the runtime config (empty: none).
fn proxy(dir: &TempDir, host: &str, port: u16, client_tls: &str) -> Flint {
    let manifest = dir.one_component_manifest(
        "spin.toml",
        &wasm_path("spin_proxy"),
        "",
        &format!("allowed_outbound_hosts = [\"https://{host}:{port}\"]"),
    );
    let mut builder = Flint::builder(manifest);
    if !client_tls.is_empty() {
        builder = builder.runtime_config(client_tls);
    }
    builder.start()
}

fn client_tls(ca: &TestCa, host: &str, extra: &str) -> String {
    format!(
        "[[client_tls]]\ncomponent_ids = [\"c\"]\nhosts = [\"{host}\"]\nca_roots_file = \"{}\"\n{extra}\n",
        ca.file("ca.pem").display()
    )
}

#[test]
fn https_with_the_ca_from_client_tls_succeeds() {
    let ca = TestCa::new();
    let upstream = HttpsUpstream::start(&ca, false);
    let dir = TempDir::new("tls-ok");
    let flint = proxy(
        &dir,
        "localhost",
        upstream.port(),
        &client_tls(&ca, "localhost", ""),
    );
    let resp = flint.get(&format!(
        "/proxy?url=https://localhost:{}/hello",
        upstream.port()
    ));
    resp.assert_status(200);
    assert_eq!(resp.text(), "tls saw /hello");
}

/// `alpn` (a Flint extension) offers protocols; the server picks one.
#[test]
fn alpn_protocols_are_offered() {
    let ca = TestCa::new();
    let upstream = HttpsUpstream::start(&ca, false);
    let dir = TempDir::new("tls-alpn");
    let tls = client_tls(&ca, "localhost", "alpn = [\"x-flint-test\"]");
    let flint = proxy(&dir, "localhost", upstream.port(), &tls);
    let resp = flint.get(&format!(
        "/proxy?url=https://localhost:{}/a",
        upstream.port()
    ));
    resp.assert_status(200);
    assert_eq!(resp.text(), "tls saw /a alpn=x-flint-test");
}

#[test]
fn an_unknown_issuer_is_a_tls_certificate_error() {
    let ca = TestCa::new();
    let upstream = HttpsUpstream::start(&ca, false);
    let dir = TempDir::new("tls-unknown");
    // No client_tls: the device's CA store does not know the test CA.
    let flint = proxy(&dir, "localhost", upstream.port(), "");
    let resp = flint.get(&format!(
        "/proxy?url=https://localhost:{}/x",
        upstream.port()
    ));
    resp.assert_status(502);
    assert!(resp.text().contains("TlsCertificateError"), "{resp:?}");
    flint.wait_for_log_line(&["flint::tls", "component=c", "localhost", "UnknownIssuer"]);
}

#[test]
fn a_name_the_certificate_does_not_carry_is_refused() {
    let ca = TestCa::new();
    let upstream = HttpsUpstream::start(&ca, false);
    let dir = TempDir::new("tls-name");
    // The certificate names `localhost`; the request names 127.0.0.1.
    let flint = proxy(
        &dir,
        "127.0.0.1",
        upstream.port(),
        &client_tls(&ca, "127.0.0.1", ""),
    );
    let resp = flint.get(&format!(
        "/proxy?url=https://127.0.0.1:{}/x",
        upstream.port()
    ));
    resp.assert_status(502);
    assert!(resp.text().contains("TlsCertificateError"), "{resp:?}");
    flint.wait_for_log_line(&["flint::tls", "NotValidForName"]);
}

#[test]
fn mutual_tls_needs_the_device_certificate() {
    let ca = TestCa::new();
    let upstream = HttpsUpstream::start(&ca, true);
    let url = format!("/proxy?url=https://localhost:{}/device", upstream.port());

    let dir = TempDir::new("tls-mtls-none");
    let without = proxy(
        &dir,
        "localhost",
        upstream.port(),
        &client_tls(&ca, "localhost", ""),
    );
    let resp = without.get(&url);
    resp.assert_status(502);
    assert!(
        resp.text().contains("TlsAlertReceived") || resp.text().contains("TlsProtocolError"),
        "{resp:?}"
    );

    let dir = TempDir::new("tls-mtls");
    let device = format!(
        "client_cert_file = \"{}\"\nclient_private_key_file = \"{}\"",
        ca.file("client.pem").display(),
        ca.file("client.key").display()
    );
    let with = proxy(
        &dir,
        "localhost",
        upstream.port(),
        &client_tls(&ca, "localhost", &device),
    );
    let resp = with.get(&url);
    resp.assert_status(200);
    assert_eq!(resp.text(), "tls saw /device");
}

/// `flint check` and `flint up` with this runtime config; both must refuse it.
fn refused(
    manifest: &std::path::Path,
    config: &std::path::Path,
    state: &std::path::Path,
) -> Vec<String> {
    let common: [std::ffi::OsString; 3] = [
        manifest.into(),
        "--runtime-config-file".into(),
        config.into(),
    ];
    let check = flint_e2e::run_flint(std::iter::once("check".into()).chain(common.clone()));
    let up = flint_e2e::run_flint(
        std::iter::once(std::ffi::OsString::from("up"))
            .chain(common)
            .chain([
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--state-dir".into(),
                state.into(),
            ]),
    );
    for out in [&check, &up] {
        assert!(!out.status.success(), "{out:?}");
    }
    vec![check.stderr, up.stderr]
}

#[test]
fn unreadable_or_malformed_certificate_files_stop_startup_naming_them() {
    let ca = TestCa::new();
    let dir = TempDir::new("tls-bad-files");
    let garbage = dir.write("garbage.pem", "not a certificate");
    let manifest = dir.one_component_manifest("spin.toml", &wasm_path("spin_proxy"), "", "");
    let state = dir.path().join("state");
    let entry = "[[client_tls]]\ncomponent_ids = [\"c\"]\nhosts = [\"localhost\"]\n";
    for (extra, expect) in [
        (
            "ca_roots_file = \"/nonexistent/ca.pem\"".to_owned(),
            "cannot read /nonexistent/ca.pem".to_owned(),
        ),
        (
            format!("ca_roots_file = \"{}\"", garbage.display()),
            format!("{} holds no PEM certificate", garbage.display()),
        ),
        (
            // The CA's certificate where the key belongs.
            format!(
                "client_cert_file = \"{}\"\nclient_private_key_file = \"{}\"",
                ca.file("client.pem").display(),
                ca.file("ca.pem").display()
            ),
            "is not a PKCS#8, PKCS#1 or SEC1 PEM private key".to_owned(),
        ),
    ] {
        let config = dir.write("runtime-config.toml", format!("{entry}{extra}\n"));
        for stderr in refused(&manifest, &config, &state) {
            assert!(stderr.contains(&expect), "{expect} in {stderr}");
            assert!(
                stderr.contains("runtime-config.toml:1:1: client_tls"),
                "{stderr}"
            );
        }
    }
}

/// `[outbound_networking] block_networks`: the addresses a name resolves to
/// are checked, so neither an address nor a name for it gets through.
#[test]
fn block_networks_refuses_addresses_and_names_that_resolve_to_them() {
    let upstream =
        flint_e2e::services::Upstream::start(|r| (200, "text/plain", r.path.clone().into_bytes()));
    let dir = TempDir::new("blocked");
    let port = upstream.port();
    let manifest = dir.one_component_manifest(
        "spin.toml",
        &wasm_path("spin_proxy"),
        "",
        &format!(
            "allowed_outbound_hosts = [\"http://127.0.0.1:{port}\", \"http://localhost:{port}\"]"
        ),
    );
    for networks in ["\"private\"", "\"127.0.0.0/8\", \"::1/128\""] {
        let flint = Flint::builder(manifest.clone())
            .runtime_config(&format!(
                "[outbound_networking]\nblock_networks = [{networks}]\n"
            ))
            .start();
        for host in ["127.0.0.1", "localhost"] {
            let resp = flint.get(&format!("/proxy?url=http://{host}:{port}/x"));
            resp.assert_status(502);
            assert!(
                resp.text().contains("DestinationIpProhibited"),
                "{networks} {host}: {resp:?}"
            );
        }
    }
    assert!(
        upstream.requests().is_empty(),
        "a blocked request reached the network"
    );
    // Without the block the same requests go through.
    let open = Flint::start(manifest);
    open.get(&format!("/proxy?url=http://localhost:{port}/x"))
        .assert_status(200);
}

/// A mosquitto with a TLS listener that requires a device certificate
/// from the test CA (started as root, so it can read the files).
fn tls_broker(ca: &TestCa) -> flint_e2e::services::Mosquitto {
    flint_e2e::services::Mosquitto::start_with(&format!(
        "allow_anonymous true\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
        ca.file("ca.pem").display(),
        ca.file("server.pem").display(),
        ca.file("server.key").display()
    ))
}

/// The MQTT trigger and a publishing guest on `mqtts://localhost:<port>`,
/// `client_tls` as the runtime config.
fn mqtts_app(dir: &TempDir, port: u16, client_tls: &str) -> Flint {
    let manifest =
        flint_e2e::trigger_and_publisher_manifest(dir, "mqtts", "mqtts", "localhost", port);
    Flint::builder(manifest).runtime_config(client_tls).start()
}

fn metric(flint: &Flint, name: &str) -> Option<f64> {
    let text = flint.get("/.well-known/flint/metrics").text();
    text.lines()
        .find(|l| l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b' ' | b'{')))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

/// The device's own client_tls entry: the trigger and outbox use it through
/// `hosts` (no component_ids), the guests through theirs.
fn device_tls(ca: &TestCa, roots: &std::path::Path) -> String {
    let entry = |components: &str| {
        format!(
            "[[client_tls]]\n{components}hosts = [\"localhost\"]\nca_roots_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_private_key_file = \"{}\"\n",
            roots.display(),
            ca.file("client.pem").display(),
            ca.file("client.key").display()
        )
    };
    format!(
        "{}\n{}",
        entry("component_ids = [\"ingest\", \"publisher\"]\n"),
        entry("")
    )
}

#[test]
fn mqtts_with_a_device_certificate_carries_the_trigger_and_the_outbox() {
    let ca = TestCa::new();
    let broker = tls_broker(&ca);
    let dir = TempDir::new("mqtts");
    let flint = mqtts_app(&dir, broker.port(), &device_tls(&ca, &ca.file("ca.pem")));
    assert!(
        flint_e2e::poll_until(std::time::Duration::from_secs(20), || metric(
            &flint,
            "flint_mqtt_connected"
        ) == Some(1.0)),
        "the trigger never connected over TLS: {}",
        flint.stderr()
    );
    // A message published over TLS by a device client reaches the handler.
    let published = std::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            "localhost",
            "-p",
            &broker.port().to_string(),
            "-q",
            "1",
            "-t",
            "sensors/7/temp",
            "-m",
            "21.5",
        ])
        .arg("--cafile")
        .arg(ca.file("ca.pem"))
        .arg("--cert")
        .arg(ca.file("client.pem"))
        .arg("--key")
        .arg(ca.file("client.key"))
        .status()
        .expect("mosquitto_pub");
    assert!(published.success());
    assert!(
        flint_e2e::poll_until(std::time::Duration::from_secs(20), || {
            metric(&flint, "flint_mqtt_messages_handled_total") == Some(1.0)
        }),
        "not handled: {}",
        flint.stderr()
    );
    // Many at once: PUBACKs flow back over the same bridge while messages
    // keep coming, and each handler publishes through the outbox over TLS.
    let mut pub_many = std::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            "localhost",
            "-p",
            &broker.port().to_string(),
            "-q",
            "1",
            "-t",
            "sensors/8/temp",
            "-l",
        ])
        .arg("--cafile")
        .arg(ca.file("ca.pem"))
        .arg("--cert")
        .arg(ca.file("client.pem"))
        .arg("--key")
        .arg(ca.file("client.key"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_pub");
    {
        use std::io::Write as _;
        let mut stdin = pub_many.stdin.take().expect("stdin");
        for i in 0..300 {
            writeln!(stdin, "m{i:05}").expect("write");
        }
    }
    assert!(pub_many.wait().expect("mosquitto_pub").success());
    assert!(
        flint_e2e::poll_until(std::time::Duration::from_secs(60), || {
            metric(&flint, "flint_mqtt_messages_handled_total") == Some(301.0)
        }),
        "not all handled over TLS: {:?}\n{}",
        metric(&flint, "flint_mqtt_messages_handled_total"),
        flint
            .stderr()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // A guest's publish goes out through the outbox over TLS.
    flint
        .request("POST", "/publish/out/1", &[], "over tls")
        .assert_status(200);
    assert!(
        flint_e2e::poll_until(std::time::Duration::from_secs(20), || {
            metric(&flint, "flint_mqtt_outbox_messages") == Some(0.0)
        }),
        "the outbox did not drain over TLS: {}",
        flint.stderr()
    );
}

#[test]
fn mqtts_without_the_device_certificate_is_refused_and_http_keeps_serving() {
    let ca = TestCa::new();
    let broker = tls_broker(&ca);
    let dir = TempDir::new("mqtts-nocert");
    let roots_only = format!(
        "[[client_tls]]\nhosts = [\"localhost\"]\nca_roots_file = \"{}\"\n",
        ca.file("ca.pem").display()
    );
    let flint = mqtts_app(&dir, broker.port(), &roots_only);
    flint.wait_for_log_line(&["flint::tls", "MQTT over TLS", "localhost"]);
    assert_eq!(metric(&flint, "flint_mqtt_connected"), Some(0.0));
    flint.get("/.well-known/spin/health").assert_status(200);
}

#[test]
fn mqtts_with_the_wrong_ca_is_refused() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let broker = tls_broker(&ca);
    let dir = TempDir::new("mqtts-wrong-ca");
    let flint = mqtts_app(&dir, broker.port(), &device_tls(&ca, &other.file("ca.pem")));
    // Both test CAs are named alike, so rustls sees a bad signature.
    flint.wait_for_log_line(&["flint::tls", "localhost", "certificate is not valid"]);
    assert_eq!(metric(&flint, "flint_mqtt_connected"), Some(0.0));
}
