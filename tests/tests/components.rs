//! Guests built as WebAssembly components (WASI 0.2), unmodified: a Rust
//! `spin-sdk` 5 HTTP component, a JavaScript one from the Spin JS SDK's
//! tools, a `wasm32-wasip2` program as a WAGI guest, and an MQTT-trigger
//! component; the startup refusals, and durability of a component's writes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flint_e2e::components::{component, http_app, serves_like_spin};
use flint_e2e::services::Mosquitto;
use flint_e2e::{Flint, Signal, TempDir, poll_until, run_flint, workspace_root};

fn rust_hello() -> PathBuf {
    component("components/target/wasm32-wasip2/release/component_hello.wasm")
}

fn js_hello() -> PathBuf {
    component("js-hello/dist/js-hello.wasm")
}

fn wagi_wasip2() -> PathBuf {
    component("components/target/wasm32-wasip2/release/wagi-wasip2.wasm")
}

#[test]
fn a_rust_wasip2_component_serves_like_spin() {
    serves_like_spin(rust_hello(), "Hello from a wasip2 component\n");
}

#[test]
fn a_javascript_component_serves_like_spin() {
    // StarlingMonkey answers one request per instance: every request here
    // gets a fresh one, so a second request works as the first did.
    serves_like_spin(js_hello(), "Hello from JavaScript\n");
}

#[test]
fn a_wasip2_program_is_a_wagi_guest() {
    let dir = TempDir::new("component-wagi");
    let manifest = dir.one_component_manifest(
        "spin.toml",
        &wagi_wasip2(),
        "executor = { type = \"wagi\" }",
        "",
    );
    let flint = Flint::start(manifest);
    let resp = flint.request("POST", "/wagi/x?y=1", &[], "from stdin");
    resp.assert_status(200);
    let text = resp.text();
    for expected in [
        "REQUEST_METHOD=POST",
        "PATH_INFO=/wagi/x",
        "QUERY_STRING=y=1",
        "from stdin",
    ] {
        assert!(text.contains(expected), "missing {expected} in {text}");
    }
}

#[test]
fn a_components_acknowledged_writes_survive_kill_9() {
    let dir = TempDir::new("component-kv-durable");
    let state = TempDir::new("component-kv-state");
    let manifest = http_app(&dir, &rust_hello());
    let flint = Flint::builder(&manifest).state_dir(state.path()).start();
    let mut conn = flint.connect();
    for i in 0..100 {
        conn.request("PUT", &format!("/kv/key{i}"), &[], format!("value {i}"))
            .assert_status(200);
    }
    flint.signal(Signal::Kill);
    drop(flint);
    let flint = Flint::builder(&manifest).state_dir(state.path()).start();
    for i in 0..100 {
        assert_eq!(
            flint.get(&format!("/kv/key{i}")).text(),
            format!("value {i}")
        );
    }
}

#[test]
fn an_mqtt_trigger_component_handles_messages() {
    let broker = Mosquitto::start();
    let manifest = workspace_root().join("apps/components/mqtt-component/spin.toml");
    component("components/target/wasm32-wasip2/release/mqtt_component.wasm");
    let flint = Flint::builder(&manifest)
        .variable("mqtt_port", &broker.port().to_string())
        .start();
    flint.wait_for_log_line(&["flint::mqtt", "subscribing"]);
    broker.publish_bytes("sensors/a/temp", b"21.5", 1);
    assert!(
        poll_until(Duration::from_secs(60), || flint
            .get("/kv/payload/sensors/a/temp")
            .status
            == 200),
        "{}",
        flint.stderr()
    );
    assert_eq!(flint.get("/kv/payload/sensors/a/temp").text(), "21.5");
}

fn check(manifest: &Path) -> String {
    let out = run_flint(["check".into(), "-f".into(), manifest.as_os_str().to_owned()]);
    assert!(!out.status.success(), "flint check accepted it: {out:?}");
    out.stderr
}

#[test]
fn an_import_flint_does_not_provide_is_refused_by_name() {
    let dir = TempDir::new("component-missing-import");
    // The same component with one interface renamed (same length, so the
    // binary stays valid): `fermyon:spin/variables` becomes `variablez`.
    let mut bytes = std::fs::read(rust_hello()).expect("component");
    let from = b"fermyon:spin/variables@2.0.0";
    let to = b"fermyon:spin/variablez@2.0.0";
    let mut replaced = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            replaced += 1;
        }
        i += 1;
    }
    assert!(replaced > 0, "the component imports fermyon:spin/variables");
    let source = dir.write("renamed.wasm", &bytes);
    let manifest = dir.one_component_manifest("spin.toml", &source, "", "");
    let stderr = check(&manifest);
    assert!(
        stderr.contains("imports fermyon:spin/variablez@2.0.0#get, which Flint does not provide"),
        "{stderr}"
    );
    assert!(stderr.contains("component `c`"), "{stderr}");
}

#[test]
fn a_truncated_component_is_refused_naming_file_and_component() {
    let dir = TempDir::new("component-truncated");
    let bytes = std::fs::read(rust_hello()).expect("component");
    let source = dir.write("cut.wasm", &bytes[..bytes.len() / 2]);
    let manifest = dir.one_component_manifest("spin.toml", &source, "", "");
    let stderr = check(&manifest);
    assert!(stderr.contains("component `c`"), "{stderr}");
    assert!(stderr.contains("cut.wasm"), "{stderr}");
}

#[test]
fn exports_that_do_not_match_the_trigger_are_refused_with_the_fix() {
    let dir = TempDir::new("component-kind");
    let http_as_wagi = dir.one_component_manifest(
        "a.toml",
        &rust_hello(),
        "executor = { type = \"wagi\" }",
        "",
    );
    let stderr = check(&http_as_wagi);
    assert!(
        stderr.contains("remove `executor = { type = \"wagi\" }`"),
        "{stderr}"
    );
    let wagi_as_spin = dir.one_component_manifest("b.toml", &wagi_wasip2(), "", "");
    let stderr = check(&wagi_as_spin);
    assert!(
        stderr.contains("add `executor = { type = \"wagi\" }`"),
        "{stderr}"
    );
}
