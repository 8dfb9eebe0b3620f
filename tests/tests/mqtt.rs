//! The MQTT trigger against a real mosquitto: routing (wildcards, shared
//! subscriptions), payloads, the three loss tests (broker restart, `kill -9`,
//! failing handlers) counted message by message, and bad input.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use flint_e2e::services::{Mosquitto, free_port};
use flint_e2e::{Flint, FlintBuilder, Signal, TempDir, poll_until, wasm_path};

/// How long a loss test may take to see every message (generous: a 2-core
/// machine runs the broker, flint and the clients at once).
const DRAIN: Duration = Duration::from_secs(120);

/// A manifest for the wit-bindgen handler (apps/mqtt-ingest) and the WAGI
/// handler (apps/wagi-spin), with `extra` TOML lines for the `ingest` trigger.
fn manifest(dir: &TempDir, broker_port: u16, broker_extra: &str, ingest_extra: &str) -> PathBuf {
    let ingest = wasm_path("mqtt_ingest");
    let wagi = wasm_path("wagi-spin");
    let kv = wasm_path("spin_kv");
    dir.write(
        "spin.toml",
        format!(
            r#"spin_manifest_version = 2
[application]
name = "mqtt-test"
[application.trigger.mqtt]
address = "mqtt://127.0.0.1:{broker_port}"
username = ""
password = ""
keep_alive_interval = "5"
client_id = "flint-test-{broker_port}"
{broker_extra}

[[trigger.mqtt]]
id = "ingest"
component = "ingest"
topic = "sensors/+/temp"
qos = "1"
{ingest_extra}

[[trigger.mqtt]]
id = "jobs"
component = "ingest"
topic = "$share/workers/jobs/#"
qos = "1"

[[trigger.mqtt]]
id = "flaky"
component = "ingest"
topic = "flaky/#"
qos = "1"
max_attempts = 5
retry_backoff_ms = 1
concurrency = 8

[[trigger.mqtt]]
id = "failing"
component = "ingest"
topic = "fail/#"
qos = "1"
max_attempts = 2
retry_backoff_ms = 1

[[trigger.mqtt]]
id = "wagi"
component = "wagi"
topic = "wagi/#"
qos = "1"

[[trigger.http]]
route = "/kv/..."
component = "kv"

[component.ingest]
source = "{ingest}"
key_value_stores = ["default"]
allowed_outbound_hosts = ["mqtt://127.0.0.1:{broker_port}"]
[component.ingest.variables]
mqtt_address = "mqtt://127.0.0.1:{broker_port}?client_id=flint-test-out-{broker_port}"

[component.wagi]
source = "{wagi}"
key_value_stores = ["default"]

[component.kv]
source = "{kv}"
key_value_stores = ["default"]
"#,
            ingest = ingest.display(),
            wagi = wagi.display(),
            kv = kv.display(),
        ),
    )
}

fn app(dir: &TempDir, broker: &Mosquitto) -> FlintBuilder {
    Flint::builder(manifest(dir, broker.port(), "", ""))
}

/// Keys under `prefix` in the app's default store.
fn keys(flint: &Flint, prefix: &str) -> BTreeSet<String> {
    flint
        .get("/kv")
        .text()
        .lines()
        .filter_map(|k| k.strip_prefix(prefix).map(str::to_owned))
        .collect()
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("m{i:05}")).collect()
}

/// Waits until every id was handled (its `seen/` key written) and published
/// back (seen by the subscriber); asserts with the counts otherwise.
fn assert_all_handled_and_published(
    flint: &Flint,
    published: &flint_e2e::services::Subscriber,
    expected: &[String],
) {
    let want: BTreeSet<String> = expected.iter().cloned().collect();
    poll_until(DRAIN, || {
        keys(flint, "seen/").is_superset(&want) && published.distinct_payloads().is_superset(&want)
    });
    let seen = keys(flint, "seen/");
    let out = published.distinct_payloads();
    let missing_seen: Vec<_> = want.difference(&seen).take(10).collect();
    let missing_out: Vec<_> = want.difference(&out).take(10).collect();
    // The counts a closing note quotes: `cargo test --test mqtt -- --nocapture`.
    eprintln!(
        "{} messages: {} handled, {} published back; status {}",
        want.len(),
        want.intersection(&seen).count(),
        want.intersection(&out).count(),
        flint.get("/.well-known/flint/status").text().trim()
    );
    assert!(
        missing_seen.is_empty() && missing_out.is_empty(),
        "of {} messages: {} handled, {} published back; first missing handled {missing_seen:?}, published {missing_out:?}\n--- flint stderr ---\n{}",
        want.len(),
        want.intersection(&seen).count(),
        want.intersection(&out).count(),
        flint.stderr()
    );
}

#[test]
fn wildcards_shared_subscriptions_and_payloads_route_intact() {
    let broker = Mosquitto::start();
    let dir = TempDir::new("mqtt-route");
    let flint = app(&dir, &broker).start();
    // The banner's later lines follow the `Serving` line the harness waited for.
    assert!(
        poll_until(Duration::from_secs(5), || flint
            .stdout()
            .contains("MQTT Subscriptions:")),
        "{}",
        flint.stdout()
    );
    flint.wait_for_log_line(&["flint::mqtt", "subscribing"]);

    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    broker.publish_bytes("sensors/empty/temp", &[], 1);
    broker.publish_bytes("sensors/binary/temp", &binary, 1);
    broker.publish_bytes("sensors/big/temp", &big, 1);
    broker.publish_bytes("jobs/a/b", b"job", 1);
    broker.publish_bytes("sensors/not/matching/temp", b"nope", 1);
    broker.publish_bytes("wagi/w1", b"for the WAGI handler", 1);

    let want = [
        "sensors/empty/temp",
        "sensors/binary/temp",
        "sensors/big/temp",
        "jobs/a/b",
    ];
    assert!(
        poll_until(DRAIN, || {
            let k = keys(&flint, "payload/");
            want.iter().all(|t| k.contains(*t))
        }),
        "handled: {:?}\n{}",
        keys(&flint, "payload/"),
        flint.stderr()
    );
    assert_eq!(flint.get("/kv/payload/sensors/empty/temp").body, b"");
    assert!(flint.get("/kv/payload/sensors/binary/temp").body == binary);
    assert!(
        flint.get("/kv/payload/sensors/big/temp").body == big,
        "1 MiB payload changed"
    );
    assert!(poll_until(DRAIN, || flint.get("/kv/wagi/wagi/w1").status == 200));
    assert_eq!(flint.get("/kv/wagi/wagi/w1").text(), "for the WAGI handler");
    assert!(!keys(&flint, "payload/").contains("sensors/not/matching/temp"));
}

#[test]
fn no_loss_across_a_broker_restart() {
    let mut broker = Mosquitto::start();
    let dir = TempDir::new("mqtt-broker-restart");
    let published = broker.subscribe_as("processed/#", Some("test-observer-a"));
    let flint = app(&dir, &broker).start();
    flint.wait_for_log_line(&["flint::mqtt", "subscribing"]);
    let all = ids(0..1200);
    broker.publish_lines("sensors/loss/temp", &all[..600], 1);
    broker.stop_gracefully();
    flint.wait_for_log_line(&["flint::mqtt", "disconnected"]);
    std::thread::sleep(Duration::from_millis(500));
    broker.restart();
    broker.publish_lines("sensors/loss/temp", &all[600..], 1);
    assert_all_handled_and_published(&flint, &published, &all);
    flint.wait_for_log_line(&["flint::mqtt", "connected", "session_present=true"]);
}

#[test]
fn no_loss_across_kill_9_of_flint() {
    let broker = Mosquitto::start();
    let dir = TempDir::new("mqtt-kill");
    let state = TempDir::new("mqtt-kill-state");
    let published = broker.subscribe_as("processed/#", Some("test-observer-b"));
    let flint = app(&dir, &broker).state_dir(state.path()).start();
    flint.wait_for_log_line(&["flint::mqtt", "subscribing"]);
    let all = ids(0..1200);
    broker.publish_lines("sensors/loss/temp", &all, 1);
    // Kill mid-stream: some messages handled, some in flight, most queued at the broker.
    poll_until(DRAIN, || keys(&flint, "seen/").len() >= 100);
    flint.signal(Signal::Kill);
    drop(flint);

    let flint = app(&dir, &broker).state_dir(state.path()).start();
    assert_all_handled_and_published(&flint, &published, &all);
}

#[test]
fn failing_handlers_are_retried_then_dead_lettered() {
    let broker = Mosquitto::start();
    let dir = TempDir::new("mqtt-flaky");
    let published = broker.subscribe("processed/#");
    let flint = app(&dir, &broker).start();
    flint.wait_for_log_line(&["flint::mqtt", "subscribing"]);
    let all = ids(0..1000);
    broker.publish_lines("flaky/loss", &all, 1);
    assert_all_handled_and_published(&flint, &published, &all);
    // Each failed twice, then succeeded on the third attempt.
    assert_eq!(flint.get(&format!("/kv/attempts/{}", all[0])).text(), "3");

    broker.publish_bytes("fail/x", b"doomed", 1);
    let line = flint.wait_for_log_line(&["dead-lettered", "failing", "fail/x"]);
    let key = line
        .split("key `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .expect("the log names the dead-letter key");
    let record = flint.get(&format!("/kv/{key}")).text();
    assert!(record.starts_with("topic: fail/x\nerror: "), "{record}");
    assert!(record.contains("attempts: 2"), "{record}");
    assert!(record.ends_with("\n\ndoomed"), "{record}");
}

#[test]
fn an_unreachable_broker_does_not_stop_http_and_is_retried() {
    let port = free_port();
    let dir = TempDir::new("mqtt-unreachable");
    let flint = Flint::builder(manifest(&dir, port, "", "")).start();
    flint.get("/kv").assert_status(200);
    flint.wait_for_log_line(&["flint::mqtt", "disconnected", "reconnecting"]);
    // The broker appears later, on that port: Flint connects by itself.
    let broker = Mosquitto::start_on(port);
    flint.wait_for_log_line(&["flint::mqtt", "connected", "session_present"]);
    broker.publish_bytes("sensors/late/temp", b"late", 1);
    assert!(poll_until(DRAIN, || keys(&flint, "seen/").contains("late")));
}

#[test]
fn wrong_credentials_are_logged_clearly() {
    let broker = Mosquitto::start_with("allow_anonymous false\npassword_file /dev/null\n");
    let dir = TempDir::new("mqtt-creds");
    let flint = Flint::builder(manifest(&dir, broker.port(), "", "")).start();
    let line = flint.wait_for_log_line(&["flint::mqtt", "refused the connection"]);
    assert!(line.contains("username"), "{line}");
    flint.get("/kv").assert_status(200);
}

#[test]
fn oversized_payloads_are_dead_lettered_not_handled() {
    let broker = Mosquitto::start();
    let dir = TempDir::new("mqtt-oversize");
    let flint = Flint::builder(manifest(
        &dir,
        broker.port(),
        "max_payload_bytes = 1000",
        "",
    ))
    .start();
    flint.wait_for_log_line(&["flint::mqtt", "subscribing"]);
    broker.publish_bytes("sensors/huge/temp", &[b'x'; 5000], 1);
    broker.publish_bytes("sensors/small/temp", b"small", 1);
    flint.wait_for_log_line(&["exceeds max_payload_bytes", "sensors/huge/temp"]);
    assert!(poll_until(DRAIN, || keys(&flint, "seen/").contains("small")));
    assert!(!keys(&flint, "payload/").contains("sensors/huge/temp"));
}
