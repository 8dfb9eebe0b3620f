//! App updates over MQTT, end to end: `flint up --app-dir` with `[deploy]
//! mqtt_topic` against a real mosquitto; deploy messages naming a bundle URL
//! (served by a small HTTP server in this file) or an OCI reference (a real
//! `docker-registry`); results read from the status topic with
//! `mosquitto_sub`; what the app answers checked over HTTP.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use flint_e2e::services::{HttpsUpstream, Mosquitto, Subscriber, TestCa, free_port};
use flint_e2e::{Flint, FlintBuilder, FlintOutput, TempDir, apps_dir, poll_until, run_flint};

/// A deploy (download, check, health check, switch) on a busy 2-core machine.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(90);

/// What version A (apps/showcase) and version B (apps/spin-hello) answer on `/hello`.
const A_HELLO: &str = "Hello, Flint!\n";
const B_HELLO: &str = "Hello, Flint! (/hello)\n";

macro_rules! flint {
    ($($arg:expr),* $(,)?) => {
        run_flint([$(OsString::from(AsRef::<std::ffi::OsStr>::as_ref(&$arg))),*])
    };
}

#[track_caller]
fn ok(out: FlintOutput) -> FlintOutput {
    assert!(out.status.success(), "{out:?}");
    out
}

/// `flint bundle APP -o FILE`; returns the version id it printed.
fn bundle(app: &str, output: &Path) -> String {
    let out = ok(flint!("bundle", apps_dir().join(app), "-o", output));
    out.stdout
        .split("version ")
        .nth(1)
        .and_then(|rest| rest.get(..16))
        .unwrap_or_else(|| panic!("no version id in {out:?}"))
        .to_owned()
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    let text = String::from_utf8_lossy(&out.stdout);
    format!(
        "sha256:{}",
        text.split_whitespace().next().expect("a digest")
    )
}

/// The runtime config of the device: deploys on `flint/{{ device_id }}/deploy`
/// from the broker on `port` (neither app has a broker of its own).
fn runtime_config(port: u16) -> String {
    format!(
        "[deploy]\nmqtt_topic = \"flint/{{{{ device_id }}}}/deploy\"\nmqtt_address = \"mqtt://127.0.0.1:{port}\"\n"
    )
}

/// `flint up --app-dir DIR` with the deploy channel, once it has subscribed.
fn up(
    app_dir: &Path,
    builder: impl FnOnce(FlintBuilder) -> FlintBuilder,
    device: &str,
    port: u16,
) -> Flint {
    let flint = builder(
        Flint::builder_app_dir(app_dir)
            .runtime_config(&runtime_config(port))
            .variable("device_id", device),
    )
    .start();
    let topic = format!("flint/{device}/deploy");
    assert!(
        poll_until(DEPLOY_TIMEOUT, || flint.stderr().lines().any(|l| l
            .contains("subscribed to the deploy topic")
            && l.contains(&topic))),
        "the deploy channel did not subscribe to {topic}\n--- stderr ---\n{}",
        flint.stderr()
    );
    flint
}

/// `mosquitto_pub` of one message, retained or not.
fn publish(broker: &Mosquitto, topic: &str, payload: &str, retain: bool) {
    let port = broker.port().to_string();
    let mut args = vec![
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-q",
        "1",
        "-t",
        topic,
        "-m",
        payload,
    ];
    if retain {
        args.push("-r");
    }
    let out = Command::new("mosquitto_pub")
        .args(&args)
        .output()
        .expect("mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `n`th (from 1) status message's payload, waiting for it.
#[track_caller]
fn nth_status(status: &Subscriber, n: usize, flint: &Flint) -> String {
    let lines = status.wait_for(n, DEPLOY_TIMEOUT);
    let Some(line) = lines.get(n - 1) else {
        panic!(
            "status message {n} did not arrive (got {lines:?})\n--- flint stderr ---\n{}",
            flint.stderr()
        );
    };
    line.split_once(' ')
        .map_or_else(String::new, |(_, payload)| payload.to_owned())
}

#[track_caller]
fn assert_field(status: &str, field: &str, value: &str) {
    let wanted = format!("\"{field}\":\"{value}\"");
    assert!(
        status.contains(&wanted),
        "{wanted} not in the status {status}"
    );
}

/// An HTTP server for bundles: `/b.flint` is the bundle (counted), `/latest`
/// redirects to it, anything else is 404.
struct BundleServer {
    port: u16,
    downloads: Arc<AtomicUsize>,
}

impl BundleServer {
    fn start(bundle: Vec<u8>) -> BundleServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the bundle server");
        let port = listener.local_addr().expect("address").port();
        let downloads = Arc::new(AtomicUsize::new(0));
        let counted = downloads.clone();
        thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                loop {
                    let mut header = String::new();
                    match reader.read_line(&mut header) {
                        Ok(n) if n > 2 => {}
                        _ => break,
                    }
                }
                let (head, body): (String, &[u8]) = match path.as_str() {
                    "/b.flint" => {
                        counted.fetch_add(1, Ordering::SeqCst);
                        (
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                                bundle.len()
                            ),
                            &bundle,
                        )
                    }
                    "/latest" => (
                        "HTTP/1.1 302 Found\r\nlocation: /b.flint\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned(),
                        &[],
                    ),
                    _ => (
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned(),
                        &[],
                    ),
                };
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body);
            }
        });
        BundleServer { port, downloads }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn downloads(&self) -> usize {
        self.downloads.load(Ordering::SeqCst)
    }
}

/// Version A deployed into a fresh app directory; returns (dir, A's id).
fn app_dir_with_a(dir: &TempDir) -> (PathBuf, String) {
    let a = dir.path().join("a.flint");
    let a_id = bundle("showcase", &a);
    let app_dir = dir.path().join("app");
    ok(flint!("deploy", &a, "--app-dir", &app_dir));
    (app_dir, a_id)
}

#[test]
fn a_bundle_url_deploys_a_wrong_digest_changes_nothing_and_a_retained_message_stays_unchanged() {
    let dir = TempDir::new("mqtt-deploy-url");
    let broker = Mosquitto::start();
    let (app_dir, a_id) = app_dir_with_a(&dir);
    let b = dir.path().join("b.flint");
    let b_id = bundle("spin-hello", &b);
    let b_digest = sha256(&b);
    let server = BundleServer::start(std::fs::read(&b).expect("reading b.flint"));

    let device = format!("gw-{}", broker.port());
    let topic = format!("flint/{device}/deploy");
    let status = broker.subscribe(&format!("{topic}/status"));
    let flint = up(&app_dir, |b| b, &device, broker.port());
    assert_eq!(flint.get("/hello").text(), A_HELLO);

    // A digest that is not the bundle's: refused before anything else, A serves on.
    let wrong = format!("sha256:{}", "0".repeat(64));
    publish(
        &broker,
        &topic,
        &format!(
            r#"{{"url": "{}", "digest": "{wrong}"}}"#,
            server.url("/b.flint")
        ),
        false,
    );
    let failed = nth_status(&status, 1, &flint);
    assert_field(&failed, "status", "failed");
    assert_field(&failed, "digest", &wrong);
    assert_field(&failed, "version", &a_id);
    assert_field(&failed, "device", &device);
    assert!(failed.contains("digest mismatch"), "{failed}");
    assert_eq!(flint.get("/hello").text(), A_HELLO);
    assert_eq!(server.downloads(), 1);

    // The right digest, through a redirect, retained as a fleet's group message is.
    publish(
        &broker,
        &topic,
        &format!(
            r#"{{"url": "{}", "digest": "{b_digest}"}}"#,
            server.url("/latest")
        ),
        true,
    );
    let deployed = nth_status(&status, 2, &flint);
    assert_field(&deployed, "status", "deployed");
    assert_field(&deployed, "digest", &b_digest);
    assert_field(&deployed, "version", &b_id);
    assert!(!deployed.contains("\"error\""), "{deployed}");
    assert_eq!(flint.get("/hello").text(), B_HELLO);
    assert_eq!(server.downloads(), 2);

    // Not JSON: answered, acknowledged, nothing changes.
    publish(&broker, &topic, "deploy please", false);
    let garbage = nth_status(&status, 3, &flint);
    assert_field(&garbage, "status", "failed");
    assert!(garbage.contains("not a deploy message"), "{garbage}");
    assert_eq!(flint.get("/hello").text(), B_HELLO);

    // A restart gets the retained message again: its version is serving, so
    // it is `unchanged`, without a download.
    drop(flint);
    let flint = up(&app_dir, |b| b, &device, broker.port());
    assert_eq!(flint.get("/hello").text(), B_HELLO);
    let unchanged = nth_status(&status, 4, &flint);
    assert_field(&unchanged, "status", "unchanged");
    assert_field(&unchanged, "digest", &b_digest);
    assert_field(&unchanged, "version", &b_id);
    assert_eq!(
        server.downloads(),
        2,
        "the retained message was downloaded again"
    );
    assert_eq!(
        status.wait_for(5, Duration::from_secs(2)).len(),
        4,
        "one answer per message"
    );
}

/// A `docker-registry` on a free port with its storage in a temp dir.
struct Registry {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Registry {
    fn start() -> Registry {
        let dir = TempDir::new("mqtt-deploy-registry");
        let port = free_port();
        let config = dir.write(
            "config.yml",
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("storage").display()
            ),
        );
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running docker-registry (scripts/test installs it)");
        assert!(
            poll_until(Duration::from_secs(20), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "the registry did not listen on {port}"
        );
        Registry {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_oci_reference_deploys_pinned_to_its_digest() {
    let dir = TempDir::new("mqtt-deploy-oci");
    // Credentials are looked up in the home directory: never the real one.
    let home: Vec<(String, String)> = ["HOME", "XDG_CONFIG_HOME", "DOCKER_CONFIG"]
        .iter()
        .map(|k| ((*k).to_owned(), dir.path().join(k).display().to_string()))
        .collect();
    let registry = Registry::start();
    let broker = Mosquitto::start();
    let reference = format!("127.0.0.1:{}/flint/hello:v2", registry.port);
    let push = Command::new(flint_e2e::flint_bin())
        .args(["registry", "push", &reference, "-k", "-f"])
        .arg(apps_dir().join("spin-hello/spin.toml"))
        .envs(home.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("flint registry push");
    let stdout = String::from_utf8_lossy(&push.stdout).into_owned();
    assert!(
        push.status.success(),
        "push: {stdout}\n{}",
        String::from_utf8_lossy(&push.stderr)
    );
    let digest = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Pushed with digest "))
        .unwrap_or_else(|| panic!("no digest in {stdout:?}"))
        .trim()
        .to_owned();

    let (app_dir, a_id) = app_dir_with_a(&dir);
    let device = format!("oci-{}", broker.port());
    let topic = format!("flint/{device}/deploy");
    let status = broker.subscribe(&format!("{topic}/status"));
    let flint = up(
        &app_dir,
        |mut b| {
            b = b.arg("-k");
            for (k, v) in &home {
                b = b.process_env(k, v);
            }
            b
        },
        &device,
        broker.port(),
    );

    // The tag exists, but the message pins another manifest: refused.
    let wrong = format!("sha256:{}", "1".repeat(64));
    publish(
        &broker,
        &topic,
        &format!(r#"{{"reference": "{reference}", "digest": "{wrong}"}}"#),
        false,
    );
    let failed = nth_status(&status, 1, &flint);
    assert_field(&failed, "status", "failed");
    assert_field(&failed, "version", &a_id);
    assert_eq!(flint.get("/hello").text(), A_HELLO);

    publish(
        &broker,
        &topic,
        &format!(r#"{{"reference": "{reference}", "digest": "{digest}"}}"#),
        false,
    );
    let deployed = nth_status(&status, 2, &flint);
    assert_field(&deployed, "status", "deployed");
    assert_field(&deployed, "digest", &digest);
    assert!(
        !deployed.contains(&format!("\"version\":\"{a_id}\"")),
        "{deployed}"
    );
    assert_eq!(flint.get("/hello").text(), B_HELLO);
    assert!(
        app_dir.join("state/oci/blobs/sha256").is_dir(),
        "the pull is cached in the app's state"
    );
}

#[test]
fn an_https_bundle_url_goes_through_flints_tls_stack() {
    let dir = TempDir::new("mqtt-deploy-https");
    let ca = TestCa::new();
    let server = HttpsUpstream::start(&ca, false);
    let broker = Mosquitto::start();
    let (app_dir, a_id) = app_dir_with_a(&dir);
    let device = format!("tls-{}", broker.port());
    let topic = format!("flint/{device}/deploy");
    let status = broker.subscribe(&format!("{topic}/status"));
    let client_tls = format!(
        "[[client_tls]]\nhosts = [\"localhost\"]\nca_roots_file = \"{}\"\n",
        ca.file("ca.pem").display()
    );
    let port = broker.port();
    let flint = up(
        &app_dir,
        |b| b.runtime_config(&format!("{}{client_tls}", runtime_config(port))),
        &device,
        port,
    );

    // The server answers `tls saw <path>`: downloaded over TLS with the
    // `[[client_tls]]` roots, its digest verified, then refused as a bundle.
    let body = dir.write("body", "tls saw /b.flint");
    let digest = sha256(&body);
    let url = format!("https://localhost:{}/b.flint", server.port());
    publish(
        &broker,
        &topic,
        &format!(r#"{{"url": "{url}", "digest": "{digest}"}}"#),
        false,
    );
    let refused = nth_status(&status, 1, &flint);
    assert_field(&refused, "status", "failed");
    assert_field(&refused, "version", &a_id);
    assert!(refused.contains("not a Flint bundle"), "{refused}");

    // The certificate names `localhost` only: by address, verification fails.
    let url = format!("https://127.0.0.1:{}/b.flint", server.port());
    publish(
        &broker,
        &topic,
        &format!(r#"{{"url": "{url}", "digest": "{digest}"}}"#),
        false,
    );
    let untrusted = nth_status(&status, 2, &flint);
    assert_field(&untrusted, "status", "failed");
    assert!(untrusted.contains("certificate"), "{untrusted}");
    assert_eq!(flint.get("/hello").text(), A_HELLO);
}
