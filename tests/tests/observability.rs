//! What an operator sees: Prometheus metrics (checked by promtool, parsed by
//! the Prometheus client library's OpenMetrics parser and scraped by a real
//! Prometheus server), exact counts after a mixed load, MQTT and outbox
//! gauges through a broker outage, `--metrics-listen`, `flint status`, JSON
//! logs, and the status page rendered by a headless Chromium.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use flint_e2e::services::{Mosquitto, free_port};
use flint_e2e::{Conn, Flint, TempDir, poll_until, run_flint, workspace_root};

/// One sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// The samples of a Prometheus text exposition (comments skipped).
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => {
                    let rest = rest.strip_suffix('}').expect("closing brace");
                    let labels = rest
                        .split("\",")
                        .filter(|p| !p.is_empty())
                        .map(|pair| {
                            let (k, v) = pair.split_once("=\"").expect("label");
                            (k.to_owned(), v.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
            };
            (name, labels, value)
        })
        .collect()
}

/// The value of the sample `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

fn scrape_at(addr: SocketAddr, accept: &str) -> flint_e2e::Response {
    let resp = Conn::open(addr).request(
        "GET",
        "/.well-known/flint/metrics",
        &[("Accept", accept)],
        [],
    );
    resp.assert_status(200);
    resp
}

fn scrape(flint: &Flint) -> String {
    scrape_at(flint.addr(), "text/plain").text()
}

/// Runs `cmd` with `input` on its stdin; asserts it succeeded and returns its stdout.
fn pipe_through(mut cmd: Command, what: &str, input: &str) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} (scripts/test installs it): {e}"));
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect(what);
    assert!(
        out.status.success(),
        "{what}: {}{}\n{input}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `promtool check metrics` (Debian's prometheus package) on an exposition.
fn promtool_check(text: &str) {
    let mut cmd = Command::new("promtool");
    cmd.args(["check", "metrics"]);
    pipe_through(cmd, "promtool check metrics", text);
}

/// The Python Prometheus client's OpenMetrics parser (scripts/test installs
/// it in a venv and points FLINT_PYTHON at it); prints `family type samples` lines.
fn openmetrics_parse(text: &str) -> String {
    let python = std::env::var("FLINT_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(python);
    cmd.args([
        "-c",
        "import sys\n\
         from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
         for f in text_string_to_metric_families(sys.stdin.read()):\n    print(f.name, f.type, len(f.samples))\n",
    ]);
    pipe_through(cmd, "the OpenMetrics parser (prometheus_client)", text)
}

/// A mixed load, then exact counts, well-formed families in both formats,
/// and consistent histograms.
#[test]
fn metrics_count_a_mixed_load_exactly_in_both_formats() {
    let flint = Flint::showcase();
    for _ in 0..7 {
        flint.get("/hello").assert_status(200);
    }
    for _ in 0..3 {
        flint.get("/fib/10").assert_status(200);
    }
    flint.get("/trap").assert_status(500);
    flint.get("/nowhere/at/all").assert_status(404);
    flint
        .request("POST", "/echo", &[], "abc")
        .assert_status(200);
    flint.request("HEAD", "/hello", &[], []).assert_status(200);
    // A head over the limit is refused by the framer, before any route.
    let big = "x".repeat(20 * 1024);
    let refused = flint.request("GET", "/hello", &[("X-Big", &big)], []);
    refused.assert_status(431);

    let text = scrape(&flint);
    promtool_check(&text);
    let s = samples(&text);
    let requests = |component: &str, method: &str, class: &str| {
        value(
            &s,
            "flint_requests_total",
            &[
                ("component", component),
                ("method", method),
                ("status_class", class),
            ],
        )
    };
    assert_eq!(requests("hello", "GET", "2xx"), Some(7.0), "{text}");
    assert_eq!(requests("hello", "HEAD", "2xx"), Some(1.0), "{text}");
    assert_eq!(requests("fib", "GET", "2xx"), Some(3.0), "{text}");
    assert_eq!(requests("panicking", "GET", "5xx"), Some(1.0), "{text}");
    assert_eq!(requests("echo", "POST", "2xx"), Some(1.0), "{text}");
    assert_eq!(
        value(
            &s,
            "flint_requests_total",
            &[("route", "(unmatched)"), ("status_class", "4xx")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "flint_requests_total", &[("route", "/fib/:n")]),
        Some(3.0),
        "routes are labelled by their pattern, never the raw path"
    );
    let outcome = |component: &str, outcome: &str| {
        value(
            &s,
            "flint_invocations_total",
            &[("component", component), ("outcome", outcome)],
        )
    };
    assert_eq!(outcome("hello", "ok"), Some(8.0));
    assert_eq!(outcome("panicking", "trap"), Some(1.0));
    assert_eq!(outcome("fib", "ok"), Some(3.0));
    assert_eq!(
        value(
            &s,
            "flint_http_refused_total",
            &[("reason", "head_too_large")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&s, "flint_instances", &[]), Some(0.0));
    assert!(value(&s, "flint_process_resident_memory_bytes", &[]).is_some_and(|v| v > 0.0));
    assert!(text.contains("flint_build_info{version=\""), "{text}");
    // Histograms: cumulative buckets, +Inf equal to the count.
    for (histogram, component, count) in [
        ("flint_request_duration_seconds", "hello", 8.0),
        ("flint_fuel_used", "fib", 3.0),
    ] {
        let buckets: Vec<f64> = s
            .iter()
            .filter(|(n, l, _)| {
                *n == format!("{histogram}_bucket")
                    && l.get("component").map(String::as_str) == Some(component)
            })
            .map(|(_, _, v)| *v)
            .collect();
        assert!(
            buckets.windows(2).all(|w| w[0] <= w[1]),
            "{histogram}: {buckets:?}"
        );
        assert_eq!(buckets.last(), Some(&count), "{histogram} +Inf");
        assert_eq!(
            value(
                &s,
                &format!("{histogram}_count"),
                &[("component", component)]
            ),
            Some(count)
        );
    }
    assert!(
        value(&s, "flint_fuel_used_sum", &[("component", "fib")]).is_some_and(|v| v > 1000.0),
        "fib uses fuel"
    );

    // OpenMetrics when the scraper asks for it, as Prometheus does.
    let open = scrape_at(
        flint.addr(),
        "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
    );
    assert!(
        open.header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text; version=1.0.0")),
        "{open:?}"
    );
    let open = open.text();
    assert!(open.ends_with("# EOF\n"));
    let families = openmetrics_parse(&open);
    for family in [
        "flint_requests counter",
        "flint_request_duration_seconds histogram",
        "flint_invocations counter",
        "flint_guest_memory_bytes gauge",
    ] {
        assert!(families.contains(family), "{family} in {families}");
    }
}

/// A real Prometheus server scrapes flint, and its query API answers with
/// `flint_requests_total` for a component.
#[test]
fn prometheus_scrapes_flint() {
    let flint = Flint::showcase();
    for _ in 0..3 {
        flint.get("/hello").assert_status(200);
    }
    let dir = TempDir::new("prometheus");
    let config = dir.write(
        "prometheus.yml",
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: flint\n    metrics_path: /.well-known/flint/metrics\n    static_configs:\n      - targets: ['{}']\n",
            flint.addr()
        ),
    );
    let port = free_port();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (scripts/test installs the prometheus package)");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let query = "/api/v1/query?query=flint_requests_total%7Bcomponent%3D%22hello%22%7D";
    let mut answer = String::new();
    let found = poll_until(Duration::from_secs(60), || {
        if std::net::TcpStream::connect(addr).is_err() {
            return false;
        }
        answer = Conn::open(addr).request("GET", query, &[], []).text();
        answer.contains("\"component\":\"hello\"")
    });
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert!(
        found,
        "Prometheus never returned flint_requests_total for `hello`: {answer}"
    );
    assert!(answer.contains("\"route\":\"/hello\""), "{answer}");
}

/// With `--metrics-listen`, the operator routes move off the app's port.
#[test]
fn metrics_listen_keeps_operator_routes_off_the_public_port() {
    let flint = Flint::builder(flint_e2e::showcase_manifest())
        .arg("--metrics-listen")
        .arg("127.0.0.1:0")
        .start();
    // The banner's last line; `start` returned at its first.
    poll_until(Duration::from_secs(10), || {
        flint.stdout().contains("Metrics: ")
    });
    let stdout = flint.stdout();
    let metrics: SocketAddr = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Metrics: http://"))
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no Metrics: line in {stdout}"));
    assert_ne!(metrics.port(), flint.port());
    flint.get("/hello").assert_status(200);
    for path in [
        "/.well-known/flint/metrics",
        "/.well-known/flint/status",
        "/.well-known/flint/",
    ] {
        flint.get(path).assert_status(404);
        Conn::open(metrics)
            .request("GET", path, &[], [])
            .assert_status(200);
    }
    // The operator listener serves no app routes, but counts the app's.
    Conn::open(metrics)
        .request("GET", "/hello", &[], [])
        .assert_status(404);
    let text = scrape_at(metrics, "text/plain").text();
    assert_eq!(
        value(
            &samples(&text),
            "flint_requests_total",
            &[("component", "hello")]
        ),
        Some(1.0),
        "{text}"
    );
    // `flint status` finds the operator listener through the state directory.
    let out = run_flint([
        OsString::from("status"),
        "--state-dir".into(),
        flint.state_dir().into(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.contains("showcase"), "{out:?}");
    assert!(out.stdout.contains("/hello"), "{out:?}");
    assert!(out.stdout.contains("requests:"), "{out:?}");
}

/// `flint status` prints the summary of the instance serving an app.
#[test]
fn flint_status_summarises_a_running_instance() {
    let flint = Flint::showcase();
    for _ in 0..4 {
        flint.get("/hello").assert_status(200);
    }
    let out = run_flint([
        "status".to_owned(),
        "--url".into(),
        format!("http://{}", flint.addr()),
    ]);
    assert!(out.status.success(), "{out:?}");
    let hello = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("/hello"))
        .unwrap_or_else(|| panic!("no /hello line in {}", out.stdout));
    assert!(
        hello.contains("hello") && hello.contains("4 requests"),
        "{hello}"
    );
    assert!(out.stdout.starts_with("showcase 0.1.0"), "{}", out.stdout);
    let nobody = run_flint(["status", "--state-dir", "/nonexistent/flint-state"]);
    assert!(!nobody.status.success());
    assert!(
        nobody.stderr.contains("/nonexistent/flint-state"),
        "{nobody:?}"
    );
}

/// `--log-format json`: every line is one JSON object with the usual fields.
#[test]
fn json_logs_are_one_object_per_line() {
    let flint = Flint::builder(flint_e2e::showcase_manifest())
        .arg("--log-format")
        .arg("json")
        .start();
    flint.get("/hello").assert_status(200);
    let line = flint.wait_for_log_line(&["\"path\":\"/hello\""]);
    let dir = TempDir::new("json-logs");
    let file = dir.write("stderr.log", flint.stderr());
    let python = std::env::var("FLINT_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .args([
            "-c",
            "import json, sys\n\
             lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]\n\
             hello = [l for l in lines if l.get('path') == '/hello']\n\
             assert hello and hello[0]['status'] == 200 and hello[0]['level'] == 'INFO', hello\n\
             assert all('timestamp' in l and 'target' in l for l in lines)\n\
             print(len(lines))",
        ])
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}\n{line}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The outbox and MQTT gauges follow a broker outage and its recovery.
#[test]
fn mqtt_and_outbox_gauges_follow_a_broker_outage() {
    let mut broker = Mosquitto::start();
    let port = broker.port();
    let dir = TempDir::new("outage-metrics");
    let manifest =
        flint_e2e::trigger_and_publisher_manifest(&dir, "outage", "mqtt", "127.0.0.1", port);
    let flint = Flint::start(manifest);
    let gauge = |name: &str| value(&samples(&scrape(&flint)), name, &[]);
    let connected = || value(&samples(&scrape(&flint)), "flint_mqtt_connected", &[]);
    assert!(poll_until(Duration::from_secs(20), || connected() == Some(1.0)));

    broker.stop();
    assert!(
        poll_until(Duration::from_secs(30), || connected() == Some(0.0)),
        "flint_mqtt_connected stays 1 with the broker gone"
    );
    for i in 0..5 {
        flint
            .request(
                "POST",
                &format!("/publish/out/{i}"),
                &[],
                format!("reading {i}"),
            )
            .assert_status(200);
    }
    assert_eq!(gauge("flint_mqtt_outbox_messages"), Some(5.0));
    assert!(gauge("flint_mqtt_outbox_bytes").is_some_and(|b| b > 0.0));
    std::thread::sleep(Duration::from_millis(1100));
    assert!(
        gauge("flint_mqtt_outbox_oldest_age_seconds").is_some_and(|age| age >= 1.0),
        "the oldest message's age grows while the broker is away"
    );
    assert!(gauge("flint_mqtt_outbox_max_messages").is_some_and(|m| m >= 5.0));

    broker.restart();
    assert!(
        poll_until(Duration::from_secs(60), || {
            connected() == Some(1.0) && gauge("flint_mqtt_outbox_messages") == Some(0.0)
        }),
        "after recovery the trigger reconnects and the outbox drains: {}",
        scrape(&flint)
    );
    let s = samples(&scrape(&flint));
    assert!(value(&s, "flint_mqtt_reconnects_total", &[]).is_some_and(|n| n >= 1.0));
    assert_eq!(
        value(&s, "flint_mqtt_outbox_oldest_age_seconds", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &s,
            "flint_outbound_calls_total",
            &[("component", "publisher"), ("outcome", "ok")]
        ),
        Some(5.0)
    );
    assert_eq!(broker.port(), port);
}

/// The headless Chromium Debian ships (scripts/test installs it).
fn chromium() -> Command {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=5000",
    ]);
    cmd
}

/// The page's DOM after its script ran, and a screenshot of it.
fn render(url: &str, profile: &Path, screenshot: Option<&Path>) -> String {
    let mut cmd = chromium();
    cmd.arg(format!("--user-data-dir={}", profile.display()));
    match screenshot {
        Some(path) => {
            cmd.arg("--window-size=1024,900")
                .arg(format!("--screenshot={}", path.display()));
        }
        None => {
            cmd.arg("--dump-dom");
        }
    }
    let out = cmd
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .expect("chromium");
    assert!(out.status.success(), "chromium failed on {url}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number inside `<b id="requests">N</b>`.
fn shown_requests(dom: &str) -> u64 {
    let at = dom
        .find("id=\"requests\">")
        .unwrap_or_else(|| panic!("no requests card in {dom}"));
    let rest = &dom[at + "id=\"requests\">".len()..];
    rest[..rest.find('<').expect("closing tag")]
        .parse()
        .unwrap_or_else(|_| panic!("no request count rendered: {}", &rest[..40.min(rest.len())]))
}

#[test]
fn status_page_renders_in_a_headless_browser() {
    let flint = Flint::showcase();
    for _ in 0..3 {
        flint.get("/hello").assert_status(200);
    }
    let profile = TempDir::new("chromium");
    let url = format!("http://{}/.well-known/flint/", flint.addr());
    let page = flint.get("/.well-known/flint/");
    assert!(
        page.body.len() < 16 * 1024,
        "a few KB, not {}",
        page.body.len()
    );
    let dom = render(&url, profile.path(), None);
    assert!(dom.contains("<h1 id=\"app-name\">showcase</h1>"), "{dom}");
    let before = shown_requests(&dom);
    assert!(before >= 3, "{before}");
    assert!(dom.contains("/fib/:n"), "the routes table is filled: {dom}");
    for _ in 0..5 {
        flint.get("/hello").assert_status(200);
    }
    let after = shown_requests(&render(&url, profile.path(), None));
    assert!(
        after >= before + 5,
        "the page shows new requests: {before} -> {after}"
    );
    let target = workspace_root().join("target");
    std::fs::create_dir_all(&target).expect("target dir");
    let shot = target.join("status-page.png");
    render(&url, profile.path(), Some(&shot));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "{} bytes",
        png.len()
    );
}
