//! Streamed responses through the real server (listener, framer, picoserve,
//! `PathRouterService`) over real sockets. The guest side is a test job on
//! the worker pool that drives the `Responder` as a WASI 0.3 guest's host
//! functions will.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flint_config::{Limits, RoutePattern};
use flint_engine::component::{SourceRead, StreamSource};
use flint_engine::metrics::MetricsWriter;
use flint_engine::pool::WorkerPool;
use flint_engine::{InstanceLimits, LimitHit};
use flint_executor::request_body::BodyReader;
use flint_executor::respond::{MAX_CHUNK, QUEUED_CHUNKS, RespondError, Responder, ResponseHead};
use flint_executor::{Code, Component, GuestFailure, GuestKind};
use flint_host::capabilities::Capabilities;
use flint_host::{Engine, IncomingRequest};
use flint_trigger_http::metrics::HttpMetrics;
use flint_trigger_http::router::{
    RouteEntry, Router, RouterSlot, StaticReply, StreamingRun, Target,
};
use flint_trigger_http::server::{self, ShutdownHandle};
use flint_trigger_http::service::{HttpApp, Operator, Role, StatusFormat};

/// Only a safety net, so that a broken test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

fn limits() -> Limits {
    Limits {
        io_threads: 1,
        workers: 2,
        max_connections: 16,
        max_queued_requests: 4,
        max_request_head_bytes: 8192,
        max_request_body_bytes: 1 << 20,
        max_response_bytes: 1 << 20,
        instance_memory_bytes: 1 << 20,
        read_timeout_ms: 10_000,
        write_timeout_ms: 10_000,
        keep_alive_timeout_ms: 10_000,
        outbound_timeout_ms: 1000,
        max_outbound_response_bytes: 1 << 20,
        kv_cache_bytes: 0,
        max_sqlite_bytes: 1 << 20,
        fuel_per_invocation: 1_000_000_000,
        max_execution_ms: 10_000,
        guest_memory_budget_bytes: 1 << 24,
        instance_table_elements: 1000,
        max_instances_per_component: 4,
        max_request_headers: 100,
    }
}

struct NoOperator;

impl Operator for NoOperator {
    fn status(&self, _app: &HttpApp, _format: StatusFormat) -> String {
        String::new()
    }
    fn write_metrics(&self, _app: &HttpApp, _w: &mut MetricsWriter) {}
}

/// The guest side of a route: what the lead's WASI 0.3 host functions do
/// with the `Responder`.
type Job = dyn Fn(Responder) -> Result<(), GuestFailure> + Send + Sync;

struct Server {
    addr: SocketAddr,
    app: Arc<HttpApp>,
    _handle: ShutdownHandle,
}

fn start(limits: Limits, routes: Vec<(&str, Arc<Job>)>) -> Server {
    start_with(limits, routes, Vec::new())
}

/// `routes` run test jobs; `runs` are routes with a `StreamingRun` of their own.
fn start_with(
    limits: Limits,
    routes: Vec<(&str, Arc<Job>)>,
    runs: Vec<(&str, StreamingRun)>,
) -> Server {
    let engine = Arc::new(flint_host::engine(true).expect("engine"));
    // The jobs run no Wasm, but a route needs a component: the smallest module.
    let dir = std::env::temp_dir().join(format!("flint-streaming-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // One file per server: tests run in parallel, and one writing the file
    // while another compiles it would read it half-written.
    static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("empty-{n}.wasm"));
    std::fs::write(&path, b"\0asm\x01\0\0\0").expect("module");
    let module = engine
        .compile("streamer", &path, 1 << 20)
        .expect("compile")
        .module;
    let component = Arc::new(Component {
        id: "streamer".into(),
        code: Code::Module(module),
        kind: GuestKind::SpinHttp,
        environment: Vec::new(),
        preopens: Vec::new(),
        caps: Arc::new(Capabilities::none("streamer")),
        running: Default::default(),
        metrics: Default::default(),
    });
    let mut entries: Vec<RouteEntry> = routes
        .into_iter()
        .map(|(route, job)| {
            let target = Target::Streaming {
                component: component.clone(),
                run: Arc::new(
                    move |_engine, _component, _request, _arriving, _limits, responder| {
                        job(responder)
                    },
                ),
            };
            RouteEntry::new(RoutePattern::parse(route).expect("route"), target)
        })
        .chain(runs.into_iter().map(|(route, run)| {
            let target = Target::Streaming {
                component: component.clone(),
                run,
            };
            RouteEntry::new(RoutePattern::parse(route).expect("route"), target)
        }))
        .collect();
    entries.push(RouteEntry::new(
        RoutePattern::parse("/static").expect("route"),
        Target::Static(StaticReply {
            status: 200,
            headers: Vec::new(),
            body: b"static".to_vec(),
        }),
    ));
    let app = Arc::new(HttpApp {
        router: RouterSlot::new(Router::new(entries)),
        engine,
        pool: WorkerPool::new(limits.workers, limits.max_queued_requests).expect("pool"),
        instance_limits: InstanceLimits::from_limits(&limits),
        write_timeout: Duration::from_millis(limits.write_timeout_ms),
        read_timeout: Duration::from_millis(limits.read_timeout_ms),
        operator: Arc::new(NoOperator),
        max_instances_per_component: limits.max_instances_per_component,
        metrics: Arc::new(HttpMetrics::default()),
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let role = Role {
        app_routes: true,
        operator_routes: false,
    };
    let handle = server::start(app.clone(), listener, &limits, role).expect("server");
    Server {
        addr,
        app,
        _handle: handle,
    }
}

fn job(f: impl Fn(Responder) -> Result<(), GuestFailure> + Send + Sync + 'static) -> Arc<Job> {
    Arc::new(f)
}

/// A job's signal from the test, shared by the job's invocations.
fn signal() -> (mpsc::Sender<()>, Arc<Mutex<mpsc::Receiver<()>>>) {
    let (tx, rx) = mpsc::channel();
    (tx, Arc::new(Mutex::new(rx)))
}

fn wait(rx: &Mutex<mpsc::Receiver<()>>) {
    rx.lock()
        .expect("signal")
        .recv_timeout(PATIENCE)
        .expect("the test's signal");
}

fn head(content_length: Option<u64>) -> ResponseHead {
    ResponseHead {
        status: 200,
        headers: vec![
            ("content-type".into(), b"text/plain".to_vec()),
            // Not valid header text: dropped.
            ("x-bad".into(), b"a\nb".to_vec()),
            // The server owns the framing.
            ("Transfer-Encoding".into(), b"gzip".to_vec()),
        ],
        content_length,
    }
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream
}

fn send(stream: &mut TcpStream, request: &str) {
    stream.write_all(request.as_bytes()).expect("request");
}

/// Reads until `seen` holds `needle`; panics if the connection ends first.
fn read_until(stream: &mut TcpStream, seen: &mut Vec<u8>, needle: &[u8]) {
    let mut buf = [0u8; 4096];
    while !contains(seen, needle) {
        let n = stream.read(&mut buf).expect("read");
        assert!(
            n > 0,
            "the connection ended before {:?}; got {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
}

fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    // A reset after the last byte is an end too.
    let _ = stream.read_to_end(&mut all);
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn head_of(response: &[u8]) -> String {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole head");
    String::from_utf8_lossy(&response[..end]).to_ascii_lowercase()
}

const GET: &str = "GET /stream HTTP/1.1\r\nHost: test\r\n\r\n";

#[test]
fn a_streamed_response_reaches_the_client_before_the_guest_finishes() {
    let (go, wait_for_go) = signal();
    let server = start(
        limits(),
        vec![(
            "/stream",
            job(move |mut r| {
                let respond = |e: RespondError| GuestFailure::Handler(e.to_string());
                r.send_head(head(None)).map_err(respond)?;
                r.send_body(b"first").map_err(respond)?;
                wait(&wait_for_go);
                r.send_body(b"second").map_err(respond)?;
                r.finish().map_err(respond)
            }),
        )],
    );
    let mut client = connect(&server);
    send(&mut client, GET);
    let mut seen = Vec::new();
    read_until(&mut client, &mut seen, b"5\r\nfirst\r\n");
    let head = head_of(&seen);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("\r\ntransfer-encoding: chunked"), "{head}");
    assert!(head.contains("\r\ncontent-type: text/plain"), "{head}");
    assert!(!head.contains("gzip") && !head.contains("x-bad"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    // The guest is still waiting: nothing past the first chunk has come.
    assert!(seen.ends_with(b"5\r\nfirst\r\n"));
    go.send(()).expect("go");
    read_until(&mut client, &mut seen, b"0\r\n\r\n");
    assert!(seen.ends_with(b"5\r\nfirst\r\n6\r\nsecond\r\n0\r\n\r\n"));
    // The connection is still good for the next request.
    send(&mut client, "GET /static HTTP/1.1\r\nHost: test\r\n\r\n");
    let mut next = Vec::new();
    read_until(&mut client, &mut next, b"static");
    assert!(head_of(&next).starts_with("http/1.1 200"));
    // The streamed request was counted on its route, as every other is,
    // once its guest ended (the client may have been answered just before).
    let router = server.app.router.current();
    let (entry, _) = router.find("/stream").expect("route");
    let counted = std::time::Instant::now();
    while entry.metrics.total() != 1 {
        assert!(counted.elapsed() < PATIENCE, "the request was not counted");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_guest_that_fails_mid_body_leaves_the_response_incomplete() {
    let server = start(
        limits(),
        vec![
            (
                "/chunked",
                job(|mut r| {
                    r.send_head(head(None)).expect("head");
                    r.send_body(b"first").expect("body");
                    // The guest traps: its Responder is dropped unfinished.
                    Err(GuestFailure::Trap("unreachable".into()))
                }),
            ),
            (
                "/length",
                job(|mut r| {
                    r.send_head(head(Some(10))).expect("head");
                    r.send_body(b"first").expect("body");
                    r.fail("the guest's body stream ended with an error");
                    Ok(())
                }),
            ),
        ],
    );
    let mut client = connect(&server);
    send(&mut client, "GET /chunked HTTP/1.1\r\nHost: test\r\n\r\n");
    let response = read_to_end(&mut client);
    assert!(head_of(&response).contains("transfer-encoding: chunked"));
    assert!(response.ends_with(b"5\r\nfirst\r\n"), "{response:?}");
    assert!(!contains(&response, b"0\r\n\r\n"));

    let mut client = connect(&server);
    send(&mut client, "GET /length HTTP/1.1\r\nHost: test\r\n\r\n");
    let response = read_to_end(&mut client);
    assert!(head_of(&response).contains("\r\ncontent-length: 10"));
    // Five of the ten bytes, then the connection closed.
    assert!(response.ends_with(b"\r\n\r\nfirst"), "{response:?}");
}

#[test]
fn a_client_that_stops_reading_stops_the_guest_at_its_deadline() {
    let mut limits = limits();
    limits.max_response_bytes = 1 << 30;
    limits.max_execution_ms = 1500;
    let (report, reported) = mpsc::channel();
    let report = Mutex::new(report);
    let server = start(
        limits,
        vec![(
            "/flood",
            job(move |mut r| {
                r.send_head(head(None)).expect("head");
                let piece = vec![b'x'; MAX_CHUNK];
                let mut sent = 0usize;
                let error = loop {
                    match r.send_body(&piece) {
                        Ok(()) => sent += piece.len(),
                        Err(e) => break e,
                    }
                };
                let _ = report.lock().expect("report").send((sent, error));
                // What the lead's host maps a `Deadline` to.
                Err(GuestFailure::Limit(LimitHit::Deadline(
                    Duration::from_millis(1500),
                )))
            }),
        )],
    );
    let mut client = connect(&server);
    send(&mut client, "GET /flood HTTP/1.1\r\nHost: test\r\n\r\n");
    // The client reads nothing until the guest has given up.
    let (sent, error) = reported.recv_timeout(PATIENCE).expect("the guest's report");
    assert_eq!(error, RespondError::Deadline);
    // Without backpressure the guest would have written its whole 1 GiB
    // allowance; with it, it wrote what the sockets' buffers and the
    // channel hold.
    let queued = QUEUED_CHUNKS * MAX_CHUNK;
    eprintln!(
        "the guest wrote {sent} bytes before the deadline ({queued} of them may wait in the channel)"
    );
    assert!(
        sent < 64 << 20,
        "{sent} bytes written to a client that reads nothing"
    );
    let response = read_to_end(&mut client);
    let body_start = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head")
        + 4;
    assert!(response.len() - body_start <= sent + sent / MAX_CHUNK * 16 + 16);
    assert!(!response.ends_with(b"0\r\n\r\n"));
}

#[test]
fn a_guest_blocked_until_its_deadline_gets_504_while_other_routes_answer() {
    let (release, wait_for_release) = signal();
    let server = start(
        limits(),
        vec![
            (
                "/blocked",
                job(move |_r| {
                    // A guest waiting on a future that never completes; the
                    // lead's host ends the wait at the deadline.
                    wait(&wait_for_release);
                    Err(GuestFailure::Limit(LimitHit::Deadline(
                        Duration::from_secs(10),
                    )))
                }),
            ),
            (
                "/quick",
                job(|mut r| {
                    r.send_head(head(Some(2))).expect("head");
                    r.send_body(b"ok").expect("body");
                    r.finish().expect("finish");
                    Ok(())
                }),
            ),
            ("/nothing", job(|_r| Ok(()))),
            ("/memory", job(|_r| Err(GuestFailure::MemoryBudget))),
        ],
    );
    let mut blocked = connect(&server);
    send(&mut blocked, "GET /blocked HTTP/1.1\r\nHost: test\r\n\r\n");
    let mut client = connect(&server);
    send(&mut client, "GET /quick HTTP/1.1\r\nHost: test\r\n\r\n");
    let mut seen = Vec::new();
    read_until(&mut client, &mut seen, b"\r\n\r\nok");
    assert!(head_of(&seen).contains("\r\ncontent-length: 2"));
    for (route, status) in [("/static", "200"), ("/nothing", "500"), ("/memory", "503")] {
        send(
            &mut client,
            &format!("GET {route} HTTP/1.1\r\nHost: test\r\n\r\n"),
        );
        let mut seen = Vec::new();
        read_until(&mut client, &mut seen, b"\r\n\r\n");
        assert!(
            head_of(&seen).starts_with(&format!("http/1.1 {status}")),
            "{route}: {}",
            head_of(&seen)
        );
        // Each of these bodies is short: drain it before the next request.
        let length: usize = head_of(&seen)
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse().ok())
            .expect("content-length");
        let body_start = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
        let mut body = seen[body_start..].to_vec();
        while body.len() < length {
            let mut buf = [0u8; 256];
            let n = client.read(&mut buf).expect("body");
            assert!(n > 0);
            body.extend_from_slice(&buf[..n]);
        }
    }
    release.send(()).expect("release");
    let mut seen = Vec::new();
    read_until(&mut blocked, &mut seen, b"Gateway Timeout");
    assert!(
        head_of(&seen).starts_with("http/1.1 504"),
        "{}",
        head_of(&seen)
    );
}

#[test]
fn http_1_0_gets_a_body_that_ends_with_the_connection_and_head_gets_none() {
    let server = start(
        limits(),
        vec![
            (
                "/stream",
                job(|mut r| {
                    r.send_head(head(None)).expect("head");
                    r.send_body(b"first").expect("body");
                    r.send_body(b"second").expect("body");
                    r.finish().expect("finish");
                    Ok(())
                }),
            ),
            (
                "/known",
                job(|mut r| {
                    r.send_head(head(Some(11))).expect("head");
                    r.send_body(b"first").expect("body");
                    r.send_body(b"second").expect("body");
                    r.finish().expect("finish");
                    Ok(())
                }),
            ),
        ],
    );
    let mut client = connect(&server);
    send(&mut client, "GET /stream HTTP/1.0\r\n\r\n");
    let response = read_to_end(&mut client);
    let head = head_of(&response);
    assert!(head.contains("\r\nconnection: close"), "{head}");
    assert!(!head.contains("transfer-encoding") && !head.contains("content-length"));
    assert!(response.ends_with(b"\r\n\r\nfirstsecond"));

    let mut client = connect(&server);
    for route in ["/stream", "/known"] {
        send(
            &mut client,
            &format!("HEAD {route} HTTP/1.1\r\nHost: test\r\n\r\n"),
        );
        let mut seen = Vec::new();
        read_until(&mut client, &mut seen, b"\r\n\r\n");
        let head = head_of(&seen);
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert_eq!(
            head.contains("content-length: 11"),
            route == "/known",
            "{head}"
        );
        assert!(seen.ends_with(b"\r\n\r\n"), "no body for HEAD");
    }
    // Nothing was written after the heads: the next response follows at once.
    send(&mut client, "GET /known HTTP/1.1\r\nHost: test\r\n\r\n");
    let mut seen = Vec::new();
    read_until(&mut client, &mut seen, b"\r\n\r\nfirstsecond");
    assert!(head_of(&seen).starts_with("http/1.1 200"));
}

/// The shape of the executor function a streaming route is wired to
/// (`Target::Streaming { run: Arc::new(flint_executor::run_spin_http_async), .. }`):
/// this one answers with what it was asked, in two pieces.
fn echo(
    _engine: &Engine,
    component: &Component,
    request: IncomingRequest,
    arriving: Option<BodyReader>,
    _limits: &InstanceLimits,
    mut responder: Responder,
) -> Result<(), GuestFailure> {
    let respond = |e: RespondError| GuestFailure::Handler(e.to_string());
    responder
        .send_head(ResponseHead {
            status: 201,
            headers: Vec::new(),
            content_length: None,
        })
        .map_err(respond)?;
    let route = request
        .headers
        .iter()
        .find(|(name, _)| name == "spin-component-route")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    let said = format!("{} {} ", component.id, request.path_with_query);
    responder.send_body(said.as_bytes()).map_err(respond)?;
    let body = match arriving {
        Some(mut arriving) => read_all(&mut arriving)?,
        None => request.body.unwrap_or_default(),
    };
    responder.send_body(&body).map_err(respond)?;
    responder.send_body(b" ").map_err(respond)?;
    responder.send_body(&route).map_err(respond)?;
    responder.finish().map_err(respond)
}

#[test]
fn a_streaming_route_runs_an_executor_function_with_the_spin_request() {
    let server = start_with(limits(), Vec::new(), vec![("/echo/...", Arc::new(echo))]);
    let mut client = connect(&server);
    send(
        &mut client,
        "POST /echo/x?q=1 HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\n\r\nbody",
    );
    let mut seen = Vec::new();
    read_until(&mut client, &mut seen, b"0\r\n\r\n");
    assert!(head_of(&seen).starts_with("http/1.1 201"));
    let body = String::from_utf8_lossy(&seen);
    for piece in ["streamer /echo/x?q=1 ", "\r\nbody\r\n", "\r\n/echo\r\n"] {
        assert!(body.contains(piece), "{piece:?} in {body:?}");
    }
}

#[test]
fn a_client_gone_mid_body_closes_the_guests_responder() {
    let mut limits = limits();
    limits.max_response_bytes = 1 << 30;
    let (go, wait_for_go) = signal();
    let (report, reported) = mpsc::channel();
    let report = Mutex::new(report);
    let server = start(
        limits,
        vec![(
            "/stream",
            job(move |mut r| {
                r.send_head(head(None)).expect("head");
                r.send_body(b"first").expect("body");
                wait(&wait_for_go);
                let error = loop {
                    if let Err(e) = r.send_body(&[b'x'; 1000]) {
                        break e;
                    }
                };
                let _ = report.lock().expect("report").send(error.clone());
                Err(GuestFailure::Handler(error.to_string()))
            }),
        )],
    );
    let mut client = connect(&server);
    send(&mut client, GET);
    let mut seen = Vec::new();
    read_until(&mut client, &mut seen, b"5\r\nfirst\r\n");
    drop(client);
    go.send(()).expect("go");
    let error = reported.recv_timeout(PATIENCE).expect("the guest's report");
    assert_eq!(error, RespondError::Closed);
    // The server still answers.
    let mut client = connect(&server);
    send(&mut client, "GET /static HTTP/1.1\r\nHost: test\r\n\r\n");
    read_until(&mut client, &mut Vec::new(), b"static");
}

/// What a guest's reads of its arriving body give, to the end.
fn read_all(arriving: &mut BodyReader) -> Result<Vec<u8>, GuestFailure> {
    let mut body = Vec::new();
    loop {
        match arriving.read(64 * 1024) {
            SourceRead::Bytes(bytes) => body.extend_from_slice(&bytes),
            SourceRead::End => return Ok(body),
            SourceRead::Failed(why) => return Err(GuestFailure::Handler(format!("{why:?}"))),
            SourceRead::Values(_) => unreachable!("a body is bytes"),
        }
    }
}

/// A streaming route whose run is `f(arriving body, responder)`.
fn arriving_run(
    f: impl Fn(Option<BodyReader>, Responder) -> Result<(), GuestFailure> + Send + Sync + 'static,
) -> StreamingRun {
    Arc::new(
        move |_engine, _component, _request, arriving, _limits, responder| f(arriving, responder),
    )
}

#[test]
fn a_guest_answers_while_its_request_body_arrives() {
    let server = start_with(
        limits(),
        Vec::new(),
        vec![(
            "/echo",
            arriving_run(|arriving, mut r| {
                let mut arriving = arriving.expect("a body still arriving");
                r.send_head(head(None)).expect("head");
                // Each piece goes back before the next one is read.
                loop {
                    match arriving.read(1024) {
                        SourceRead::Bytes(bytes) => r.send_body(&bytes).expect("body"),
                        SourceRead::End => break,
                        _ => return Err(GuestFailure::Handler("the body failed".into())),
                    }
                }
                r.finish().expect("finish");
                Ok(())
            }),
        )],
    );
    let mut client = connect(&server);
    send(
        &mut client,
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\nfirst",
    );
    // The head and the first piece arrive while the client has not sent the rest.
    let mut seen = Vec::new();
    read_until(&mut client, &mut seen, b"5\r\nfirst\r\n");
    let head = head_of(&seen);
    assert!(head.starts_with("http/1.1 200 "), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(head.contains("content-type: text/plain"), "{head}");
    assert!(!head.contains("connection"), "{head}");
    send(&mut client, "second");
    read_until(&mut client, &mut seen, b"6\r\nsecond\r\n0\r\n\r\n");
    // The connection takes its next request, and nothing else came between:
    // picoserve's own head for the exchange was not sent.
    send(&mut client, "GET /static HTTP/1.1\r\nHost: test\r\n\r\n");
    read_until(&mut client, &mut seen, b"static");
    let text = String::from_utf8_lossy(&seen);
    assert_eq!(text.matches("HTTP/1.1 ").count(), 2, "{text}");
    let second = &text[text.find("0\r\n\r\n").expect("the end") + 5..];
    assert!(second.starts_with("HTTP/1.1 200 "), "{second}");
}

#[test]
fn a_guest_that_never_reads_its_body_leaves_the_connection_usable() {
    let server = start_with(
        limits(),
        Vec::new(),
        vec![(
            "/ignore",
            arriving_run(|_arriving, mut r| {
                r.send_head(head(Some(4))).expect("head");
                r.send_body(b"done").expect("body");
                r.finish().expect("finish");
                Ok(())
            }),
        )],
    );
    let mut client = connect(&server);
    // Far more than the channel holds: the rest is read and dropped.
    let body = vec![b'x'; 900 * 1024];
    let mut writer = client.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        send(
            &mut writer,
            &format!(
                "POST /ignore HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
                body.len()
            ),
        );
        writer.write_all(&body).expect("body");
        send(&mut writer, "GET /static HTTP/1.1\r\nHost: test\r\n\r\n");
    });
    let mut seen = Vec::new();
    read_until(&mut client, &mut seen, b"done");
    read_until(&mut client, &mut seen, b"static");
    sender.join().expect("sender");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("Content-Length: 4\r\n\r\ndone"), "{text}");
    assert_eq!(text.matches("HTTP/1.1 ").count(), 2, "{text}");
}

/// A server whose `/read` guest reads its whole body and reports how the
/// read failed (`None`: it did not), then fails.
fn reading_server(limits: Limits) -> (Server, mpsc::Receiver<Option<GuestFailure>>) {
    let (report, reported) = mpsc::channel();
    let report = Mutex::new(report);
    let server = start_with(
        limits,
        Vec::new(),
        vec![(
            "/read",
            arriving_run(move |arriving, _r| {
                let failure = read_all(&mut arriving.expect("a body still arriving")).err();
                let _ = report.lock().expect("report").send(failure);
                Err(GuestFailure::Handler("the body failed".into()))
            }),
        )],
    );
    (server, reported)
}

const PART_OF_A_BODY: &str = "POST /read HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\npart";

#[test]
fn a_body_cut_short_fails_the_guests_read_and_answers_400() {
    let (server, reported) = reading_server(limits());
    let mut client = connect(&server);
    send(&mut client, PART_OF_A_BODY);
    client
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let failure = reported.recv_timeout(PATIENCE).expect("the guest's report");
    assert!(
        matches!(&failure, Some(GuestFailure::Handler(why)) if why.contains("closed the connection")),
        "{failure:?}"
    );
    let all = String::from_utf8_lossy(&read_to_end(&mut client)).into_owned();
    assert!(all.starts_with("HTTP/1.1 400 "), "{all}");
}

#[test]
fn the_read_timeout_counts_the_clients_time_not_the_guests() {
    let mut limits = limits();
    limits.read_timeout_ms = 300;
    let server = start_with(
        limits,
        Vec::new(),
        vec![(
            "/slow-reader",
            arriving_run(|arriving, mut r| {
                let mut arriving = arriving.expect("a body still arriving");
                // Longer than read_timeout_ms before the first read: the
                // client is not to blame for it.
                std::thread::sleep(Duration::from_millis(600));
                let body = read_all(&mut arriving)?;
                r.send_head(head(Some(body.len() as u64))).expect("head");
                r.send_body(&body).expect("body");
                r.finish().expect("finish");
                Ok(())
            }),
        )],
    );
    // 600 KiB: more than the channel holds, so the reads wait for the guest.
    let body = vec![b'y'; 600 * 1024];
    let mut client = connect(&server);
    let mut writer = client.try_clone().expect("clone");
    let sent = body.clone();
    let sender = std::thread::spawn(move || {
        send(
            &mut writer,
            &format!(
                "POST /slow-reader HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
                sent.len()
            ),
        );
        writer.write_all(&sent).expect("body");
    });
    let mut seen = Vec::new();
    read_until(&mut client, &mut seen, b"\r\n\r\n");
    assert!(
        head_of(&seen).starts_with("http/1.1 200"),
        "{}",
        head_of(&seen)
    );
    let start = seen
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head")
        + 4;
    while seen.len() - start < body.len() {
        let mut buf = [0u8; 65536];
        let n = client.read(&mut buf).expect("read");
        assert!(n > 0, "the body ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(seen[start..] == body[..], "the echo changed");
    sender.join().expect("sender");
}

#[test]
fn a_client_that_stalls_mid_body_gets_408_and_fails_the_guests_read() {
    let mut limits = limits();
    limits.read_timeout_ms = 300;
    let (server, reported) = reading_server(limits);
    let mut client = connect(&server);
    send(&mut client, PART_OF_A_BODY);
    let failure = reported.recv_timeout(PATIENCE).expect("the guest's report");
    assert!(
        matches!(&failure, Some(GuestFailure::Handler(why)) if why.contains("read_timeout_ms")),
        "{failure:?}"
    );
    let mut seen = Vec::new();
    read_until(&mut client, &mut seen, b"\r\n\r\n");
    assert!(
        head_of(&seen).starts_with("http/1.1 408"),
        "{}",
        head_of(&seen)
    );
    // The connection ends: the rest of the body, sent late, is never read
    // as a request (it would be answered).
    let _ = client.write_all(&[b'x'; 96]);
    let _ = client.write_all(b"GET /static HTTP/1.1\r\nHost: test\r\n\r\n");
    let mut rest = Vec::new();
    if let Err(e) = client.read_to_end(&mut rest) {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    assert!(
        !contains(&rest, b"HTTP/1.1"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
}
