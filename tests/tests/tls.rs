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
