//! Redis against a real `redis-server` on a free port: every outbound
//! operation (`fermyon:spin/redis@2.0.0`) from a spin-sdk 3 core module and
//! a spin-sdk 5 component, permissions, `publish` seen by `redis-cli
//! subscribe`, the Redis trigger handling a burst of messages counted one
//! by one (core module, component and WAGI handlers), its reconnection
//! after the server restarts, and `rediss://` over Flint's TLS.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flint_e2e::services::{TestCa, free_port};
use flint_e2e::{Flint, FlintBuilder, TempDir, poll_until, run_flint, wasm_path, workspace_root};

/// How long the trigger may take to handle a burst (generous: a 2-core
/// machine runs redis, flint and the clients at once, maybe a debug build).
const DRAIN: Duration = Duration::from_secs(180);
const SHORT: Duration = Duration::from_secs(30);

/// A `redis-server` on a free loopback port, without persistence, in a temp
/// dir; optionally also on a TLS port with the test CA's `localhost`
/// certificate. Killed on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
    tls: Option<(u16, PathBuf)>,
    /// `--requirepass`, which `redis-cli` is then given too.
    password: Option<String>,
    dir: TempDir,
}

impl Redis {
    fn start() -> Self {
        Self::launch(None, None)
    }

    /// Also listening for TLS, with `ca`'s server certificate.
    fn start_tls(ca: &TestCa) -> Self {
        Self::launch(Some((free_port(), ca.dir.path().to_owned())), None)
    }

    /// Refusing clients that do not `AUTH` with `password`.
    fn start_with_password(password: &str) -> Self {
        Self::launch(None, Some(password.to_owned()))
    }

    fn launch(tls: Option<(u16, PathBuf)>, password: Option<String>) -> Self {
        let mut redis = Self {
            child: None,
            port: free_port(),
            tls,
            password,
            dir: TempDir::new("redis"),
        };
        redis.restart();
        redis
    }

    /// Starts (again) on the same ports; the data is gone (no persistence).
    fn restart(&mut self) {
        self.stop();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path());
        if let Some((port, ca)) = &self.tls {
            command
                .args(["--tls-port", &port.to_string()])
                .arg("--tls-cert-file")
                .arg(ca.join("server.pem"))
                .arg("--tls-key-file")
                .arg(ca.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(ca.join("ca.pem"))
                .args(["--tls-auth-clients", "no"]);
        }
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        self.child = Some(child);
        assert!(
            poll_until(SHORT, || self.cli(&["PING"]) == "PONG"),
            "redis-server did not answer on port {}",
            self.port
        );
    }

    /// `kill -9`: the server vanishes without a goodbye.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `redis-cli` for this server (authenticated if it needs it).
    fn redis_cli(&self) -> Command {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &self.port.to_string()]);
        if let Some(password) = &self.password {
            command.args(["--no-auth-warning", "-a", password]);
        }
        command
    }

    /// `redis-cli` with `args`, its output trimmed.
    fn cli(&self, args: &[&str]) -> String {
        let output = self
            .redis_cli()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli (apt-get install redis-tools)");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Subscribers of `channel` (`PUBSUB NUMSUB`).
    fn subscribers(&self, channel: &str) -> u64 {
        let out = self.cli(&["PUBSUB", "NUMSUB", channel]);
        out.lines().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
    }

    fn wait_for_subscriber(&self, channel: &str) {
        assert!(
            poll_until(SHORT, || self.subscribers(channel) == 1),
            "nobody subscribed to `{channel}`"
        );
    }

    /// `PUBLISH channel payload` for every payload, through one `redis-cli`
    /// reading commands on stdin; the number of subscribers that received
    /// each.
    fn publish_all(&self, channel: &str, payloads: &[String]) -> Vec<String> {
        let mut child = self
            .redis_cli()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli");
        let mut stdin = child.stdin.take().expect("stdin");
        let script: String = payloads
            .iter()
            .map(|p| format!("PUBLISH {channel} {p}\n"))
            .collect();
        let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
        let output = child.wait_with_output().expect("redis-cli output");
        writer
            .join()
            .expect("writer")
            .expect("writing to redis-cli");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn int(&self, key: &str) -> u64 {
        self.cli(&["GET", key]).parse().unwrap_or(0)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A guest built by `scripts/build-components`.
fn component(name: &str) -> PathBuf {
    let path = workspace_root()
        .join("apps/components/target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is not built: run scripts/build-components",
        path.display()
    );
    path
}

/// The guests of one app: the HTTP component doing outbound Redis and the
/// trigger handler.
struct Guests {
    web: PathBuf,
    handler: PathBuf,
}

fn core_guests() -> Guests {
    Guests {
        web: wasm_path("spin_redis"),
        handler: wasm_path("redis_trigger"),
    }
}

fn component_guests() -> Guests {
    Guests {
        web: component("redis_component"),
        handler: component("redis_trigger_component"),
    }
}

/// An app whose `web` component (routes `/...`) and trigger handler (channel
/// `events`, counting under `events:`) reach `address`, plus a WAGI handler
/// on channel `wagi` (its default store read back at `/wagi-kv/<key>`), which
/// also calls `spin:redis/redis@3.0.0` by hand at `/wagi-redis3/<key>`.
fn manifest(dir: &TempDir, guests: &Guests, address: &str, allowed: &str) -> PathBuf {
    dir.write(
        "spin.toml",
        format!(
            r#"spin_manifest_version = 2
[application]
name = "redis-test"
[variables]
redis_address = {{ default = "{address}" }}
[application.trigger.redis]
address = "{{{{ redis_address }}}}"

[[trigger.http]]
route = "/wagi-kv/..."
component = "wagi"
executor = {{ type = "wagi" }}

[[trigger.http]]
route = "/wagi-redis3/..."
component = "wagi"
executor = {{ type = "wagi" }}

[[trigger.http]]
route = "/..."
component = "web"

[[trigger.redis]]
channel = "events"
component = "handler"

[[trigger.redis]]
channel = "wagi"
component = "wagi"

[component.web]
source = "{web}"
allowed_outbound_hosts = [{allowed}]
[component.web.variables]
redis_address = "{{{{ redis_address }}}}"

[component.handler]
source = "{handler}"
allowed_outbound_hosts = [{allowed}]
[component.handler.variables]
redis_address = "{{{{ redis_address }}}}"
prefix = "events"

[component.wagi]
source = "{wagi}"
key_value_stores = ["default"]
allowed_outbound_hosts = [{allowed}]
[component.wagi.variables]
redis_address = "{{{{ redis_address }}}}"
"#,
            web = guests.web.display(),
            handler = guests.handler.display(),
            wagi = wasm_path("wagi-spin").display(),
        ),
    )
}

fn app(dir: &TempDir, guests: &Guests, redis: &Redis) -> FlintBuilder {
    let address = format!("redis://127.0.0.1:{}", redis.port);
    Flint::builder(manifest(dir, guests, &address, &format!("\"{address}\"")))
}

/// What `GET /ops/<prefix>` answers when every operation behaves as Spin's.
fn expected_ops() -> String {
    [
        "set: Ok(())",
        "get: Ok(Some(Ok(\"value\")))",
        "get missing: Ok(None)",
        "incr: Ok(1)",
        "incr: Ok(2)",
        "incr string: Err(Error::Other(\"An error was signalled by the server - ResponseError: value is not an integer or out of range\"))",
        "sadd: Ok(3)",
        "sadd again: Ok(0)",
        "srem: Ok(1)",
        "smembers: Ok([\"a\", \"c\"])",
        "sadd on string: Err(Error::Other(\"WRONGTYPE: Operation against a key holding the wrong kind of value\"))",
        "del: Ok(2)",
        "get deleted: Ok(None)",
        "execute set: status OK",
        "execute incrby: int 42",
        "execute mget: binary 42, nil",
        "execute unknown: Error::Other(\"An error was signalled by the server - ResponseError: unknown command 'NOSUCHCOMMAND', with args beginning with: \")",
        "execute del: int 1",
        "",
    ]
    .join("\n")
}

#[test]
fn every_outbound_operation_answers_as_in_spin() {
    let redis = Redis::start();
    for (name, guests) in [
        ("core module", core_guests()),
        ("component", component_guests()),
    ] {
        let dir = TempDir::new("redis-ops");
        let flint = app(&dir, &guests, &redis).start();
        let prefix = name.replace(' ', "-");
        let response = flint.get(&format!("/ops/{prefix}"));
        assert_eq!(
            (response.status, response.text()),
            (200, expected_ops()),
            "{name}\n--- flint stderr ---\n{}",
            flint.stderr()
        );
        // The writes reached the server; the set is what the guest left.
        assert_eq!(
            redis
                .cli(&["SMEMBERS", &format!("{prefix}:set")])
                .lines()
                .count(),
            2
        );
        assert_eq!(redis.cli(&["EXISTS", &format!("{prefix}:s")]), "0");
        // Binary values round-trip.
        let body = flint.get(&format!("/get/{prefix}:missing"));
        assert_eq!(body.text(), "(nil)\n");
        redis.cli(&["SET", &format!("{prefix}:bin"), "a\r\nb"]);
        assert_eq!(flint.get(&format!("/get/{prefix}:bin")).text(), "a\r\nb\n");
    }
}

#[test]
fn spin_redis_3_0_0_is_served_like_2_0_0() {
    let redis = Redis::start();
    let dir = TempDir::new("redis-v3");
    let flint = app(&dir, &core_guests(), &redis).start();
    let response = flint.request("PUT", "/wagi-redis3/v3key", &[], "three");
    assert_eq!(
        (response.status, response.text()),
        (200, "three".to_owned())
    );
    assert_eq!(redis.cli(&["GET", "v3key"]), "three");
}

#[test]
fn the_address_gives_the_password_and_the_database() {
    let redis = Redis::start_with_password("s3cret");
    let dir = TempDir::new("redis-auth");
    let allowed = format!("\"redis://127.0.0.1:{}\"", redis.port);
    let address = format!("redis://:s3cret@127.0.0.1:{}/3", redis.port);
    let flint = Flint::builder(manifest(&dir, &core_guests(), &address, &allowed)).start();
    let response = flint.get("/ops/auth");
    assert_eq!((response.status, response.text()), (200, expected_ops()));
    assert_eq!(redis.cli(&["-n", "3", "SCARD", "auth:set"]), "2");
    assert_eq!(redis.cli(&["SCARD", "auth:set"]), "0");
    // The trigger authenticates too; its handler counts in database 3.
    redis.wait_for_subscriber("events");
    let payloads: Vec<String> = (0..10).map(|i| format!("a{i}")).collect();
    assert!(
        redis
            .publish_all("events", &payloads)
            .iter()
            .all(|r| r == "1")
    );
    assert!(
        poll_until(DRAIN, || redis.cli(&["-n", "3", "GET", "events:handled"])
            == "10"),
        "{}",
        flint.stderr()
    );
    // A wrong password is the server's error, as `other`.
    let wrong = format!("redis://:nope@127.0.0.1:{}", redis.port);
    let response = flint.get(&format!("/open?address={wrong}"));
    assert_eq!(response.status, 502);
    assert!(response.text().contains("WRONGPASS"), "{}", response.text());
    assert!(!flint.stderr().contains("s3cret"));
}

#[test]
fn a_server_outside_allowed_outbound_hosts_is_an_invalid_address_and_logged() {
    let redis = Redis::start();
    let dir = TempDir::new("redis-denied");
    let flint = app(&dir, &core_guests(), &redis).start();
    let other = free_port();
    for address in [
        format!("redis://127.0.0.1:{other}"),
        format!("rediss://127.0.0.1:{}", redis.port),
        format!("redis://localhost:{}", redis.port),
    ] {
        let response = flint.get(&format!("/open?address={address}"));
        assert_eq!(
            (response.status, response.text()),
            (502, "open: Error::InvalidAddress\n".to_owned()),
            "{address}"
        );
    }
    flint.wait_for_log_line(&[
        "outbound Redis denied: not in allowed_outbound_hosts",
        &format!("add allowed_outbound_hosts = [\"redis://127.0.0.1:{other}\"]"),
        "component=web",
    ]);
    // The credentials of an address never reach the log.
    flint.get(&format!(
        "/open?address=redis://user:hunter2@127.0.0.1:{other}"
    ));
    flint.wait_for_log_line(&[
        "outbound Redis denied",
        &format!("redis://127.0.0.1:{other}"),
    ]);
    assert!(!flint.stderr().contains("hunter2"));
    // An address the client cannot read is one too.
    let response = flint.get("/open?address=http://127.0.0.1");
    assert_eq!(response.text(), "open: Error::InvalidAddress\n");
    // An allowed server that is down is `other`, naming it.
    redis.cli(&["SHUTDOWN", "NOSAVE"]);
    let response = flint.get("/open");
    assert_eq!(response.status, 502);
    assert!(
        response
            .text()
            .starts_with("open: Error::Other(\"connecting to 127.0.0.1:"),
        "{}",
        response.text()
    );
}

#[test]
fn block_networks_bounds_guests_not_the_trigger() {
    let redis = Redis::start();
    let dir = TempDir::new("redis-blocked");
    let flint = app(&dir, &core_guests(), &redis)
        .runtime_config("[outbound_networking]\nblock_networks = [\"127.0.0.0/8\"]\n")
        .start();
    let response = flint.get("/open");
    assert_eq!(
        (response.status, response.text()),
        (
            502,
            "open: Error::Other(\"127.0.0.1 resolves only to addresses in block_networks\")\n"
                .to_owned()
        )
    );
    flint.wait_for_log_line(&[
        "outbound Redis denied: the server resolves to a network in block_networks",
    ]);
    // The trigger's server is the operator's: it still subscribes.
    redis.wait_for_subscriber("events");
}

#[test]
fn publish_reaches_a_redis_cli_subscriber() {
    let redis = Redis::start();
    let dir = TempDir::new("redis-publish");
    let flint = app(&dir, &core_guests(), &redis).start();
    let mut subscriber = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "SUBSCRIBE", "news"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli subscribe");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let stdout = subscriber.stdout.take().expect("stdout");
    let seen = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            seen.lock().unwrap().push(line);
        }
    });
    redis.wait_for_subscriber("news");
    let response = flint.request("POST", "/publish/news", &[], "breaking\nnews");
    assert_eq!(response.text(), "published\n");
    let delivered = poll_until(SHORT, || {
        let lines = lines.lock().unwrap();
        lines
            .windows(3)
            .any(|w| w == ["message", "news", "breaking"])
    });
    let _ = subscriber.kill();
    let _ = subscriber.wait();
    assert!(delivered, "redis-cli saw {:?}", lines.lock().unwrap());
}

/// Publishes `count` distinct messages on `events` while the trigger is
/// subscribed and waits until each was handled exactly once; returns the
/// rate, for the closing note.
fn burst(redis: &Redis, flint: &Flint, prefix: &str, count: usize) -> f64 {
    let payloads: Vec<String> = (0..count).map(|i| format!("{prefix}{i:05}")).collect();
    let started = Instant::now();
    let receivers = redis.publish_all("events", &payloads);
    // Each was delivered to one subscriber: Flint, connected throughout.
    assert_eq!(receivers.len(), count);
    assert!(receivers.iter().all(|r| r == "1"), "{receivers:?}");
    let done = poll_until(DRAIN, || redis.int("events:handled") >= count as u64);
    let elapsed = started.elapsed();
    let handled = redis.int("events:handled");
    let seen = redis.cli(&["SCARD", "events:seen"]);
    assert!(
        done && handled == count as u64 && seen == count.to_string(),
        "{count} published: handled {handled} times, {seen} distinct\n--- flint stderr ---\n{}",
        flint.stderr()
    );
    let rate = count as f64 / elapsed.as_secs_f64();
    eprintln!("Redis trigger: {count} messages handled in {elapsed:?}: {rate:.0} messages/s");
    rate
}

#[test]
fn the_trigger_handles_every_message_of_a_burst_once() {
    let redis = Redis::start();
    let dir = TempDir::new("redis-burst");
    let flint = app(&dir, &core_guests(), &redis).start();
    redis.wait_for_subscriber("events");
    // A failing handler is logged, and the next message handled.
    redis.cli(&["PUBLISH", "events", "fail"]);
    flint.wait_for_log_line(&[
        "handler failed: returned an error: Redis handler returned an error",
        "trigger=handler-redis-trigger",
        "channel=events",
    ]);
    burst(&redis, &flint, "m", 1000);
    // Nothing more arrives later: no duplicates were queued.
    let status = flint.get("/.well-known/flint/status").text();
    assert!(
        status.contains("\"channel\":\"events\",\"component\":\"handler\",\"received\":1001,\"handled\":1000,\"failed\":1"),
        "{status}"
    );
    assert_eq!(redis.int("events:handled"), 1000);
}

#[test]
fn a_payload_over_the_limit_is_dropped_and_logged_and_the_next_one_handled() {
    let redis = Redis::start();
    let dir = TempDir::new("redis-oversize");
    let flint = app(&dir, &core_guests(), &redis)
        .runtime_config("[limits]\nmax_request_body_bytes = 1024\n")
        .start();
    redis.wait_for_subscriber("events");
    redis.cli(&["PUBLISH", "events", &"x".repeat(4096)]);
    flint.wait_for_log_line(&["dropped a message of 4096 bytes: over the limit of 1024"]);
    burst(&redis, &flint, "small", 3);
    let status = flint.get("/.well-known/flint/status").text();
    assert!(
        status.contains("\"oversize\":1,\"reconnects\":0"),
        "{status}"
    );
}

#[test]
fn an_idle_subscription_is_kept_with_pings() {
    let redis = Redis::start();
    let dir = TempDir::new("redis-idle");
    // Reads time out after 200 ms: every idle one sends a PING, which the
    // server answers; only an unanswered one would end the connection.
    let flint = app(&dir, &core_guests(), &redis)
        .runtime_config("[limits]\noutbound_timeout_ms = 200\n")
        .start();
    redis.wait_for_subscriber("events");
    let pings = || {
        let stats = redis.cli(&["INFO", "commandstats"]);
        stats
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_ping:calls="))
            .and_then(|rest| rest.split(',').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = pings();
    std::thread::sleep(Duration::from_secs(2));
    assert!(pings() >= before + 3, "Flint sent no PINGs while idle");
    burst(&redis, &flint, "idle", 3);
    let status = flint.get("/.well-known/flint/status").text();
    assert!(status.contains("\"reconnects\":0"), "{status}");
}

#[test]
fn an_unanswered_ping_ends_the_connection_and_flint_subscribes_again() {
    let redis = Redis::start();
    let dir = TempDir::new("redis-paused");
    let flint = app(&dir, &core_guests(), &redis)
        .runtime_config("[limits]\noutbound_timeout_ms = 200\n")
        .start();
    redis.wait_for_subscriber("events");
    // The server stops answering for a while, as one behind a dead link would.
    redis.cli(&["CLIENT", "PAUSE", "1500", "ALL"]);
    flint.wait_for_log_line(&["flint::redis", "disconnected", "no answer to PING"]);
    redis.wait_for_subscriber("events");
    burst(&redis, &flint, "resumed", 3);
}

#[test]
fn component_and_wagi_handlers_get_their_channel_messages() {
    let redis = Redis::start();
    let dir = TempDir::new("redis-handlers");
    let flint = app(&dir, &component_guests(), &redis).start();
    redis.wait_for_subscriber("events");
    redis.wait_for_subscriber("wagi");
    burst(&redis, &flint, "c", 100);
    // The WAGI guest gets the payload on stdin and the channel in REDIS_CHANNEL.
    redis.cli(&["PUBLISH", "wagi", "over stdin"]);
    assert!(
        poll_until(SHORT, || flint.get("/wagi-kv/wagi/wagi").status == 200),
        "{}",
        flint.stderr()
    );
    assert_eq!(flint.get("/wagi-kv/wagi/wagi").text(), "over stdin");
}

#[test]
fn the_trigger_subscribes_again_after_redis_server_restarts() {
    let mut redis = Redis::start();
    let dir = TempDir::new("redis-restart");
    let flint = app(&dir, &core_guests(), &redis).start();
    redis.wait_for_subscriber("events");
    burst(&redis, &flint, "before", 20);
    redis.stop();
    // Flint keeps trying while the server is away.
    flint.wait_for_log_line(&["flint::redis", "disconnected"]);
    redis.restart();
    redis.wait_for_subscriber("events");
    // The restarted server has no data: the counters start again.
    burst(&redis, &flint, "after", 20);
    let status = flint.get("/.well-known/flint/status").text();
    assert!(status.contains("\"connected\":true"), "{status}");
    assert!(status.contains("\"reconnects\":1"), "{status}");
}

#[test]
fn rediss_goes_over_flint_tls_with_the_client_tls_roots() {
    let ca = TestCa::new();
    let redis = Redis::start_tls(&ca);
    let (tls_port, _) = redis.tls.clone().expect("tls");
    let dir = TempDir::new("redis-tls");
    let address = format!("rediss://localhost:{tls_port}");
    let manifest = manifest(&dir, &core_guests(), &address, &format!("\"{address}\""));
    // The trigger, not a component, takes the first entry naming its host.
    let flint = Flint::builder(&manifest)
        .runtime_config(&format!(
            "[[client_tls]]\ncomponent_ids = [\"web\", \"handler\"]\nhosts = [\"localhost\"]\nca_roots_file = \"{}\"\n",
            ca.file("ca.pem").display()
        ))
        .start();
    let response = flint.get("/ops/tls");
    assert_eq!((response.status, response.text()), (200, expected_ops()));
    redis.wait_for_subscriber("events");
    burst(&redis, &flint, "t", 20);
    // Without the CA the handshake fails, and says why.
    let dir = TempDir::new("redis-tls-untrusted");
    let manifest = self::manifest(&dir, &core_guests(), &address, &format!("\"{address}\""));
    let untrusted = Flint::builder(&manifest).start();
    let response = untrusted.get("/open");
    assert_eq!(response.status, 502);
    assert!(
        response.text().contains("TLS with localhost"),
        "{}",
        response.text()
    );
}

#[test]
fn a_handler_of_the_wrong_kind_or_a_bad_address_stops_startup() {
    let dir = TempDir::new("redis-check");
    let guests = Guests {
        web: core_guests().handler,
        handler: core_guests().web,
    };
    let manifest = manifest(&dir, &guests, "redis://127.0.0.1:6379", "");
    let out = run_flint([OsStr::new("check"), OsStr::new("-f"), manifest.as_os_str()]);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains(
            "Redis trigger `handler-redis-trigger`: component `handler`: "
        ) && out.stderr.contains("does not export `fermyon:spin/inbound-redis#handle-message` or `_start`, which a Redis trigger calls; it is a Spin HTTP component"),
        "{}",
        out.stderr
    );
    let bad = std::fs::read_to_string(&manifest)
        .expect("manifest")
        .replace("{{ redis_address }}\"\n\n", "redis://h/x\"\n\n");
    let manifest = dir.write("bad.toml", bad);
    let out = run_flint([OsStr::new("check"), OsStr::new("-f"), manifest.as_os_str()]);
    assert!(
        out.stderr
            .contains("invalid Redis address `redis://h/x`: `x` is not a database number"),
        "{}",
        out.stderr
    );
}

/// The Redis trigger's rate with the release binary, for the closing note:
/// `FLINT_BIN=target/release/flint cargo test -p flint-e2e --test redis --
/// --ignored --nocapture trigger_rate`.
#[test]
#[ignore = "a measurement, not a check"]
fn trigger_rate() {
    let redis = Redis::start();
    let dir = TempDir::new("redis-rate");
    let flint = app(&dir, &core_guests(), &redis).start();
    redis.wait_for_subscriber("events");
    burst(&redis, &flint, "r", 5000);
}
