//! The one `PathRouterService` behind every connection: route lookup, the
//! request body, dispatch to a static response or a guest on the worker
//! pool, the response (whole, or streamed while a WASI 0.3 guest runs), and
//! one log line per request.

use std::future::Future;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use picoserve::ResponseSent;
use picoserve::io::Read;
use picoserve::request::{Path, Request};
use picoserve::response::{
    ForEachHeader, HeadersIter, IntoResponse, Response, ResponseWriter, StatusCode,
};
use smol::io::AsyncWriteExt;
use smol::net::TcpStream;

use flint_config::RouteMatch;
use flint_engine::InstanceLimits;
use flint_engine::pool::{PoolError, WorkerPool};
use flint_executor::request_body::{self, BodyFeeder, BodyReader};
use flint_executor::respond::{self, BodyEvent, ResponseHead, ResponseStream};
use flint_executor::wagi::{self, WagiRequest};
use flint_executor::{Component, GuestFailure, Invocation, SpinResponse, run_spin_http, run_wagi};
use flint_host::http1::is_valid_header;
use flint_host::{Engine, IncomingRequest};

use flint_engine::metrics::{Format, MetricsWriter};

use crate::metrics::{HttpMetrics, LabelledRoute, Refusal, RouteMetrics};
use crate::router::{RouteEntry, Router, RouterSlot, StreamingRun, Target};
use crate::socket::HeadWritten;

const HEALTH_ROUTE: &str = "/.well-known/spin/health";
const STATUS_ROUTE: &str = "/.well-known/flint/status";
const METRICS_ROUTE: &str = "/.well-known/flint/metrics";
const STATUS_PAGE_ROUTE: &str = "/.well-known/flint/";

/// How much of a request body is read at once.
const BODY_SLICE: usize = 64 * 1024;

/// The status page: plain HTML and a little script that polls the status route.
const STATUS_PAGE: &str = include_str!("status.html");

/// Everything the HTTP trigger shares across connections and threads.
pub struct HttpApp {
    pub router: RouterSlot,
    pub engine: Arc<Engine>,
    pub pool: WorkerPool,
    pub instance_limits: InstanceLimits,
    /// Bounds writing a response body, which picoserve's own write timeout does not cover.
    pub write_timeout: Duration,
    /// How long a client may spend sending a body that a WASI 0.3 guest
    /// reads as it arrives, not counting the time the guest takes to read
    /// it (picoserve's own read timeout would count that too).
    pub read_timeout: Duration,
    pub operator: Arc<dyn Operator>,
    pub max_instances_per_component: usize,
    pub metrics: Arc<HttpMetrics>,
}

/// What the operator's routes (`/.well-known/flint/...`) show, composed by
/// the binary from every layer's numbers (the HTTP trigger's among them).
pub trait Operator: Send + Sync {
    /// The document at `/.well-known/flint/status`.
    fn status(&self, app: &HttpApp, format: StatusFormat) -> String;
    /// Every metric family but the HTTP trigger's own.
    fn write_metrics(&self, app: &HttpApp, w: &mut MetricsWriter);
}

/// The status document as JSON (the default) or, for `Accept: text/plain`,
/// as the summary `flint status` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFormat {
    Json,
    Text,
}

/// Which routes a listener serves: the app's, Flint's operator routes, or
/// both (`--metrics-listen` puts the operator routes on a listener of their own).
#[derive(Clone, Copy, Debug)]
pub struct Role {
    pub app_routes: bool,
    pub operator_routes: bool,
}

impl HttpApp {
    /// Every route of `router` with its metric labels, Flint's own and the
    /// unmatched included.
    pub fn labelled_routes<'a>(&'a self, router: &'a Router) -> Vec<LabelledRoute<'a>> {
        let mut routes: Vec<LabelledRoute<'a>> = router
            .entries()
            .iter()
            .map(|e| LabelledRoute {
                component: e.component_label(),
                route: e.pattern.raw(),
                metrics: &e.metrics,
            })
            .collect();
        routes.push(LabelledRoute {
            component: "(flint)",
            route: "/.well-known/...",
            metrics: &self.metrics.flint_routes,
        });
        routes.push(LabelledRoute {
            component: "(none)",
            route: "(unmatched)",
            metrics: &self.metrics.unmatched,
        });
        routes
    }

    /// The HTTP trigger's metric families and the worker pool's.
    pub fn write_metrics(&self, w: &mut MetricsWriter) {
        let router = self.router.current();
        crate::metrics::write_metrics(w, &self.metrics, &self.labelled_routes(&router));
        w.gauge("flint_worker_queue_depth", "Requests waiting for a worker.");
        w.value(&[], self.pool.queued() as u64);
        w.gauge(
            "flint_worker_queue_capacity",
            "Requests that may wait for a worker (max_queued_requests).",
        );
        w.value(&[], self.pool.capacity() as u64);
        w.gauge("flint_workers", "Worker threads running guests.");
        w.value(&[], self.pool.workers() as u64);
    }
}

/// A response ready to write: status, headers and body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: format!("{body}\n").into_bytes(),
        }
    }

    /// RFC 9110 §6.4.1: 204 and 304 responses end after their headers.
    fn has_body(&self) -> bool {
        has_body(self.status)
    }
}

fn has_body(status: u16) -> bool {
    !matches!(status, 204 | 304)
}

/// What a request is answered with.
enum Answer<'a> {
    Whole(Reply),
    /// A head from a guest that is still writing the body.
    Streamed(Streamed<'a>),
}

impl From<Reply> for Answer<'_> {
    fn from(reply: Reply) -> Self {
        Answer::Whole(reply)
    }
}

/// The invocation of a streaming guest, on the worker pool.
type Job<'a> = Pin<Box<dyn Future<Output = Result<(), Reply>> + 'a>>;

struct Streamed<'a> {
    status: u16,
    headers: Vec<(String, String)>,
    content_length: Option<u64>,
    stream: ResponseStream,
    /// The invocation when it is still running: awaited after the body, so
    /// that it keeps its `max_instances_per_component` slot until it ends and
    /// a failure after the head is logged like any other.
    job: Option<Job<'a>>,
}

/// How a response body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body follows the head (HEAD without a known length, 204, 304).
    Empty,
    Length(u64),
    /// HTTP/1.1 with no known length.
    Chunked,
    /// HTTP/1.0 with no known length: the body ends when the connection closes.
    Close,
}

impl Framing {
    fn of_stream(status: u16, length: Option<u64>, is_head: bool, http_version: &str) -> Self {
        match length {
            _ if !has_body(status) => Framing::Empty,
            Some(length) => Framing::Length(length),
            None if is_head => Framing::Empty,
            None if http_version == "HTTP/1.1" => Framing::Chunked,
            None => Framing::Close,
        }
    }
}

/// How a streamed body ended.
enum StreamOutcome {
    Complete,
    ClientGone,
    Aborted(String),
}

/// Per-connection service: the stream clone writes response bodies, because
/// picoserve's `Content` only carries a `&'static str` content type and Flint's
/// content types come from guests.
pub struct FlintService {
    pub app: Arc<HttpApp>,
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub role: Role,
    /// Set when this service writes a response head itself ([`HeadWritten`]).
    pub head_written: HeadWritten,
}

/// A route answered by a WASI 0.3 guest, which reads its request body as
/// the client sends it.
struct StreamingRoute<'a> {
    entry: &'a RouteEntry,
    route_match: RouteMatch,
    component: &'a Arc<Component>,
    run: &'a StreamingRun,
}

/// How a request body sent to a streaming guest arrived.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arrival {
    Whole,
    /// The client closed the connection before the end.
    EndedEarly,
    /// The client took longer than `read_timeout_ms` to send it.
    TimedOut,
}

impl picoserve::routing::PathRouterService<()> for FlintService {
    async fn call_path_router_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        _params: (),
        path: Path<'_>,
        mut request: Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let started = Instant::now();
        let parts = &request.parts;
        let method = parts.method();
        let raw_path = path.encoded();
        let query = parts.query().map(|q| q.0).unwrap_or_default();
        let http_version = parts.http_version();
        let headers: Vec<(String, String)> = parts
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    String::from_utf8_lossy(name.as_raw()).to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_raw()).into_owned(),
                )
            })
            .collect();

        // This request is answered by the app current now, even if a reload
        // switches the router while it runs.
        let router = self.app.router.current();
        let content_length = request.body_connection.content_length();
        let is_head = method == "HEAD";
        // A WASI 0.3 guest starts at once and reads its body as it arrives.
        if content_length > 0
            && let Some(streaming) = self.streaming_route(&router, raw_path)
        {
            let info = WagiRequest {
                method,
                raw_path,
                query,
                http_version,
                headers: &headers,
                body_len: content_length,
                client_addr: self.peer,
                route: &streaming.entry.pattern,
                route_match: &streaming.route_match,
            };
            let component = streaming.component.id.clone();
            let route = &streaming.entry.metrics;
            let (status, sent, outcome, duration) = self
                .exchange(&streaming, &info, request.body_connection, response_writer)
                .await?;
            self.log_request(
                method, raw_path, status, &component, route, &outcome, duration,
            );
            return Ok(sent);
        }

        // The framer has already bounded the length. The body is read straight
        // into its Vec, a slice at a time, so memory follows what arrived, not
        // what was declared; and no read buffer lives in this future, which
        // picoserve moves (memcpy) as a whole when the future is large.
        let mut body = Vec::with_capacity(content_length.min(BODY_SLICE));
        let mut reader = request.body_connection.body().reader();
        while body.len() < content_length {
            let start = body.len();
            body.resize(start + (content_length - start).min(BODY_SLICE), 0);
            let n = reader.read(&mut body[start..]).await?;
            body.truncate(start + n);
            if n == 0 {
                break;
            }
        }

        let (answer, component, route) = if body.len() == content_length {
            self.dispatch(
                &router,
                method,
                raw_path,
                query,
                http_version,
                &headers,
                body,
            )
            .await
        } else {
            // The client closed mid-body: a guest must never see a truncated body as whole.
            (
                Reply::text(400, "Bad Request: the request body ended early").into(),
                None,
                &self.app.metrics.unmatched,
            )
        };
        let connection = request.body_connection.finalize().await?;
        let (status, sent, outcome, duration) = match answer {
            Answer::Whole(reply) => {
                let (sent, outcome) = self
                    .write_whole(&reply, connection, response_writer, is_head)
                    .await?;
                (reply.status, sent, outcome, started.elapsed())
            }
            Answer::Streamed(streamed) => {
                let framing = Framing::of_stream(
                    streamed.status,
                    streamed.content_length,
                    is_head,
                    http_version,
                );
                let sent = Response::empty(StatusCode::new(streamed.status))
                    .with_headers(ReplyHeaders {
                        headers: &streamed.headers,
                        framing,
                    })
                    .write_to(connection, response_writer)
                    .await?;
                let (outcome, duration) = self
                    .body_then_end(streamed.stream, streamed.job, framing, is_head, started)
                    .await;
                (streamed.status, sent, outcome, duration)
            }
        };
        let component = component.as_deref().unwrap_or("-");
        self.log_request(
            method, raw_path, status, component, route, &outcome, duration,
        );
        Ok(sent)
    }
}

impl FlintService {
    /// Counts a request under its route and logs its one line.
    #[allow(clippy::too_many_arguments)]
    fn log_request(
        &self,
        method: &str,
        path: &str,
        status: u16,
        component: &str,
        route: &RouteMetrics,
        outcome: &StreamOutcome,
        duration: Duration,
    ) {
        route.record(method, status, duration);
        let note = match outcome {
            StreamOutcome::Complete => String::new(),
            StreamOutcome::ClientGone => " (client went away while writing)".to_owned(),
            StreamOutcome::Aborted(why) => format!(" (response aborted mid-body: {why})"),
        };
        tracing::info!(
            target: "flint::http",
            method,
            path,
            status,
            component,
            duration = ?duration,
            "request{note}"
        );
    }

    /// Writes a whole reply: picoserve writes the head, the service the body.
    async fn write_whole<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        reply: &Reply,
        connection: picoserve::response::Connection<'_, R>,
        response_writer: W,
        is_head: bool,
    ) -> Result<(ResponseSent, StreamOutcome), W::Error> {
        let framing = if reply.has_body() {
            Framing::Length(reply.body.len() as u64)
        } else {
            Framing::Empty
        };
        let sent = Response::empty(StatusCode::new(reply.status))
            .with_headers(ReplyHeaders {
                headers: &reply.headers,
                framing,
            })
            .write_to(connection, response_writer)
            .await?;
        // picoserve has flushed the head; HEAD responses carry no body.
        let write_ok = is_head || !reply.has_body() || self.write_body(&reply.body).await;
        let outcome = if write_ok {
            StreamOutcome::Complete
        } else {
            StreamOutcome::ClientGone
        };
        Ok((sent, outcome))
    }

    /// After a streamed head: the body as the guest writes it, then the
    /// invocation's end. Returns how the body ended and the request's
    /// duration up to its last byte.
    async fn body_then_end(
        &self,
        mut stream: ResponseStream,
        job: Option<Job<'_>>,
        framing: Framing,
        is_head: bool,
        started: Instant,
    ) -> (StreamOutcome, Duration) {
        let outcome = self.stream_body(&mut stream, framing, !is_head).await;
        let duration = started.elapsed();
        // A client gone mid-body closes the guest's channel: its next write fails.
        drop(stream);
        if let Some(job) = job {
            // Its failure, if any, is logged by `on_worker`; the response is already out.
            let _ = job.await;
        }
        (outcome, duration)
    }

    /// The route that answers `raw_path` when a WASI 0.3 guest does (not
    /// Flint's own routes, which come first).
    fn streaming_route<'a>(
        &self,
        router: &'a Router,
        raw_path: &str,
    ) -> Option<StreamingRoute<'a>> {
        let flint_route = raw_path == HEALTH_ROUTE
            || (self.role.operator_routes
                && [STATUS_ROUTE, METRICS_ROUTE, STATUS_PAGE_ROUTE].contains(&raw_path));
        if flint_route || !self.role.app_routes {
            return None;
        }
        let (entry, route_match) = router.find(raw_path)?;
        let Target::Streaming { component, run } = &entry.target else {
            return None;
        };
        Some(StreamingRoute {
            entry,
            route_match,
            component,
            run,
        })
    }

    /// A request to a WASI 0.3 guest whose body is still arriving: the guest
    /// runs while the body is read into its stream, and a head it sends
    /// goes out at once, written here (picoserve writes a head only after
    /// the body), with its body following as the guest writes it. Once the
    /// body has been read to its end, picoserve ends the exchange with a
    /// head that is dropped ([`HeadWritten`]). An answer that is not
    /// streamed (the guest failed first) is written after the body.
    async fn exchange<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        route: &StreamingRoute<'_>,
        info: &WagiRequest<'_>,
        mut body: picoserve::request::RequestBodyConnection<'_, R>,
        response_writer: W,
    ) -> Result<(u16, ResponseSent, StreamOutcome, Duration), W::Error> {
        let started = Instant::now();
        let is_head = info.method == "HEAD";
        let (feeder, arriving) = request_body::channel(self.invocation_deadline());
        let length = body.content_length();
        let reader = body.body().reader();
        // The body's time is bounded by `feed_body`'s own budget instead.
        let mut reader = reader.with_different_timeout_signal(smol::future::pending());
        let read_body = feed_body(&mut reader, length, feeder, self.app.read_timeout);
        let request = spin_request(info, None);
        let answer = async {
            match self
                .invoke_streaming(route.component, request, Some(arriving), route.run.clone())
                .await
            {
                Answer::Whole(reply) => Err(reply),
                Answer::Streamed(streamed) => {
                    let framing = Framing::of_stream(
                        streamed.status,
                        streamed.content_length,
                        is_head,
                        info.http_version,
                    );
                    let head = ReplyHeaders {
                        headers: &streamed.headers,
                        framing,
                    }
                    .for_each_header(HeadLines::new(
                        streamed.status,
                        closes_after(info.http_version, info.headers),
                    ))
                    .await;
                    let written = match head {
                        Ok(head) => self.write_body(&head).await,
                    };
                    if !written {
                        // The client is gone: the guest's next write fails.
                        drop(streamed.stream);
                        if let Some(job) = streamed.job {
                            let _ = job.await;
                        }
                        return Ok((
                            streamed.status,
                            StreamOutcome::ClientGone,
                            started.elapsed(),
                        ));
                    }
                    let (outcome, duration) = self
                        .body_then_end(streamed.stream, streamed.job, framing, is_head, started)
                        .await;
                    Ok((streamed.status, outcome, duration))
                }
            }
        };
        let (arrival, answer) = smol::future::zip(read_body, answer).await;
        let arrival = match arrival {
            Ok(arrival) => arrival,
            Err(e) => {
                // The connection ends; a response already out is still logged.
                if let Ok((status, outcome, duration)) = &answer {
                    self.log_request(
                        info.method,
                        info.raw_path,
                        *status,
                        &route.component.id,
                        &route.entry.metrics,
                        outcome,
                        *duration,
                    );
                }
                return Err(e);
            }
        };
        // What is left of a body that did not arrive whole must never be
        // read as the next request: the connection ends after this answer
        // (reading stops now, so picoserve drains nothing).
        let whole = arrival == Arrival::Whole;
        if !whole {
            let _ = self.stream.shutdown(Shutdown::Read);
        }
        if arrival == Arrival::TimedOut {
            self.app.metrics.refused(Refusal::Timeout);
        }
        let connection = body.finalize().await?;
        let answered = self
            .answer_exchange(
                answer,
                arrival,
                connection,
                response_writer,
                is_head,
                started,
            )
            .await;
        if !whole {
            let _ = self.stream.shutdown(Shutdown::Both);
        }
        answered
    }

    /// The end of [`FlintService::exchange`], once the body has been read:
    /// a streamed answer is already out (picoserve's head for it is
    /// dropped), any other is written now.
    async fn answer_exchange<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        answer: Result<(u16, StreamOutcome, Duration), Reply>,
        arrival: Arrival,
        connection: picoserve::response::Connection<'_, R>,
        response_writer: W,
        is_head: bool,
        started: Instant,
    ) -> Result<(u16, ResponseSent, StreamOutcome, Duration), W::Error> {
        match answer {
            Ok((status, outcome, duration)) => {
                self.head_written.set();
                let sent = Response::empty(StatusCode::new(status))
                    .write_to(connection, response_writer)
                    .await?;
                Ok((status, sent, outcome, duration))
            }
            Err(reply) => {
                // The guest failed because its body ended early; as for a
                // buffered guest, that is the client's error.
                let reply = match arrival {
                    Arrival::EndedEarly => {
                        Reply::text(400, "Bad Request: the request body ended early")
                    }
                    Arrival::TimedOut => Reply::text(408, "Request Timeout"),
                    Arrival::Whole => reply,
                };
                let (sent, outcome) = self
                    .write_whole(&reply, connection, response_writer, is_head)
                    .await?;
                Ok((reply.status, sent, outcome, started.elapsed()))
            }
        }
    }

    /// The invocation's deadline, when the engine keeps one (it needs fuel
    /// metering); without it only the connection's timeouts bound a wait
    /// for the client.
    fn invocation_deadline(&self) -> Option<Instant> {
        let limits = &self.app.instance_limits;
        (limits.fuel > 0)
            .then(|| Instant::now().checked_add(limits.max_execution))
            .flatten()
    }

    /// Writes a response body within the write timeout; on failure the
    /// connection is shut down, since a partial body cannot be followed by another response.
    async fn write_body(&self, body: &[u8]) -> bool {
        let mut stream = self.stream.clone();
        let write =
            async { Some(stream.write_all(body).await.is_ok() && stream.flush().await.is_ok()) };
        let expire = async {
            smol::Timer::after(self.app.write_timeout).await;
            None
        };
        let ok = smol::future::or(write, expire).await == Some(true);
        if !ok {
            let _ = self.stream.shutdown(Shutdown::Both);
        }
        ok
    }

    /// Copies a streamed body to the client as the guest writes it, each
    /// piece flushed within the write timeout. `write` is false when the
    /// response has no body (HEAD): the guest's pieces are then read and
    /// dropped, so that it runs to its end as it would for GET. An abort
    /// closes the connection, so the client sees an incomplete response
    /// (no terminating chunk, or fewer bytes than the Content-Length).
    async fn stream_body(
        &self,
        stream: &mut ResponseStream,
        framing: Framing,
        write: bool,
    ) -> StreamOutcome {
        let write = write && framing != Framing::Empty;
        let mut framed = Vec::new();
        loop {
            match stream.next().await {
                BodyEvent::Chunk(bytes) if write => {
                    let wire = if framing == Framing::Chunked {
                        framed.clear();
                        framed.extend_from_slice(format!("{:x}\r\n", bytes.len()).as_bytes());
                        framed.extend_from_slice(&bytes);
                        framed.extend_from_slice(b"\r\n");
                        &framed
                    } else {
                        &bytes
                    };
                    if !wire.is_empty() && !self.write_body(wire).await {
                        return StreamOutcome::ClientGone;
                    }
                }
                BodyEvent::Chunk(_) => {}
                BodyEvent::End => {
                    if !write {
                        return StreamOutcome::Complete;
                    }
                    return match framing {
                        Framing::Chunked if !self.write_body(b"0\r\n\r\n").await => {
                            StreamOutcome::ClientGone
                        }
                        Framing::Close => {
                            // The close is the end of the body.
                            let _ = self.stream.shutdown(Shutdown::Write);
                            StreamOutcome::Complete
                        }
                        _ => StreamOutcome::Complete,
                    };
                }
                BodyEvent::Aborted(why) => {
                    if write {
                        let _ = self.stream.shutdown(Shutdown::Both);
                    }
                    return StreamOutcome::Aborted(why);
                }
            }
        }
    }

    /// The reply, the component that made it, and the route it is counted under.
    #[allow(clippy::too_many_arguments)]
    async fn dispatch<'a>(
        &'a self,
        router: &'a Router,
        method: &str,
        raw_path: &str,
        query: &str,
        http_version: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> (Answer<'a>, Option<Arc<str>>, &'a RouteMetrics) {
        let flint = &self.app.metrics.flint_routes;
        if raw_path == HEALTH_ROUTE {
            return (Reply::text(200, "OK").into(), None, flint);
        }
        if let Some(reply) = self.operator_route(raw_path, headers) {
            return (reply.into(), None, flint);
        }
        let unmatched = &self.app.metrics.unmatched;
        if !self.role.app_routes {
            return (Reply::text(404, "Not Found").into(), None, unmatched);
        }
        let Some((entry, route_match)) = router.find(raw_path) else {
            return (Reply::text(404, "Not Found").into(), None, unmatched);
        };
        let route = &entry.metrics;
        let info = WagiRequest {
            method,
            raw_path,
            query,
            http_version,
            headers,
            body_len: body.len(),
            client_addr: self.peer,
            route: &entry.pattern,
            route_match: &route_match,
        };
        let (component, argv_template) = match &entry.target {
            Target::Static(s) => {
                let reply = Reply {
                    status: s.status,
                    headers: s.headers.clone(),
                    body: s.body.clone(),
                };
                return (reply.into(), None, route);
            }
            Target::Wagi { component, argv } => (component, argv),
            Target::Spin { component } => {
                let request = spin_request(&info, Some(body));
                let reply = self.invoke_spin(component.clone(), request).await;
                return (reply.into(), Some(component.id.clone()), route);
            }
            Target::Streaming { component, run } => {
                let request = spin_request(&info, Some(body));
                let answer = self
                    .invoke_streaming(component, request, None, run.clone())
                    .await;
                return (answer, Some(component.id.clone()), route);
            }
        };
        let env = info.environment();
        let invocation = Invocation {
            stdin: body,
            env,
            argv: wagi::argv(argv_template, raw_path, query),
        };
        let reply = self.invoke(component.clone(), invocation).await;
        (reply.into(), Some(component.id.clone()), route)
    }

    /// Flint's operator routes, on a listener that serves them.
    fn operator_route(&self, raw_path: &str, headers: &[(String, String)]) -> Option<Reply> {
        if !self.role.operator_routes {
            return None;
        }
        let accept = headers
            .iter()
            .find(|(name, _)| name == "accept")
            .map(|(_, value)| value.as_str());
        let (content_type, body) = match raw_path {
            STATUS_ROUTE if accept.is_some_and(|a| a.contains("text/plain")) => (
                "text/plain; charset=utf-8",
                self.app.operator.status(&self.app, StatusFormat::Text),
            ),
            STATUS_ROUTE => (
                "application/json",
                self.app.operator.status(&self.app, StatusFormat::Json),
            ),
            METRICS_ROUTE => {
                let format = Format::from_accept(accept);
                let mut w = MetricsWriter::new(format);
                self.app.write_metrics(&mut w);
                self.app.operator.write_metrics(&self.app, &mut w);
                (format.content_type(), w.finish())
            }
            STATUS_PAGE_ROUTE => ("text/html; charset=utf-8", STATUS_PAGE.to_owned()),
            _ => return None,
        };
        Some(Reply {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into_bytes(),
        })
    }

    /// Runs `run` on the worker pool; a failure is logged and becomes the reply.
    async fn on_worker<T: Send + 'static>(
        &self,
        component: &Arc<Component>,
        run: impl FnOnce(&Engine) -> Result<T, GuestFailure> + Send + 'static,
    ) -> Result<T, Reply> {
        let id = &component.id;
        let max = self.app.max_instances_per_component;
        let Some(_slot) = component.try_start(max) else {
            self.app.metrics.refused(Refusal::InstanceLimit);
            tracing::warn!(target: "flint::http", component = %id, "refused: {max} instances of this component are running or queued (max_instances_per_component)");
            return Err(Reply::text(503, "Service Unavailable"));
        };
        let engine = self.app.engine.clone();
        match self.app.pool.run(move || run(&engine)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(failure)) => Err(self.failure_reply(id, failure)),
            Err(e @ PoolError::Busy { .. }) => {
                self.app.metrics.refused(Refusal::QueueFull);
                tracing::warn!(target: "flint::http", component = %id, "refused: {e}");
                Err(Reply::text(503, "Service Unavailable"))
            }
            Err(e @ PoolError::Closed) => {
                tracing::error!(target: "flint::http", component = %id, "{e}");
                Err(Reply::text(503, "Service Unavailable"))
            }
        }
    }

    /// Logs a guest's failure and says what the client gets for it.
    fn failure_reply(&self, id: &str, failure: GuestFailure) -> Reply {
        tracing::error!(target: "flint::http", component = %id, "guest {failure}");
        match failure {
            GuestFailure::Limit(hit) => {
                Reply::text(504, &format!("Gateway Timeout: the component {hit}"))
            }
            GuestFailure::MemoryBudget => {
                self.app.metrics.refused(Refusal::MemoryBudget);
                Reply::text(
                    503,
                    "Service Unavailable: guest memory is exhausted, retry later",
                )
            }
            _ => Reply::text(500, "Internal Server Error"),
        }
    }

    /// Runs a streaming guest with a `Responder` and waits for its head or
    /// its end, whichever comes first. A head makes a streamed answer (the
    /// guest still running); an end without one is answered like a buffered
    /// guest's failure (504, 503, 500), and one that reports no failure is
    /// a guest that set no response.
    async fn invoke_streaming<'a>(
        &'a self,
        component: &'a Arc<Component>,
        request: IncomingRequest,
        arriving: Option<BodyReader>,
        run: StreamingRun,
    ) -> Answer<'a> {
        let limits = self.app.instance_limits.clone();
        let (responder, mut stream) =
            respond::channel(limits.stdout_bytes, self.invocation_deadline());
        let guest = component.clone();
        let mut job: Job<'a> = Box::pin(self.on_worker(component, move |engine| {
            run(engine, &guest, request, arriving, &limits, responder)
        }));
        // The head is polled first: a guest sends it before it ends.
        let first = smol::future::or(async { Ok(stream.head().await) }, async {
            Err((&mut job).await)
        })
        .await;
        let (head, ended) = match first {
            Ok(head) => (head, None),
            // The Responder is gone with the job, so this does not wait.
            Err(ended) => (stream.head().await, Some(ended)),
        };
        let Some(ResponseHead {
            status,
            headers,
            content_length,
        }) = head
        else {
            let ended = match ended {
                Some(ended) => ended,
                None => job.await,
            };
            let reply = match ended {
                Ok(()) => self.failure_reply(&component.id, GuestFailure::NoResponse),
                Err(reply) => reply,
            };
            return reply.into();
        };
        Answer::Streamed(Streamed {
            status,
            headers: valid_headers(&component.id, headers),
            content_length,
            stream,
            job: ended.is_none().then_some(job),
        })
    }

    async fn invoke_spin(&self, component: Arc<Component>, request: IncomingRequest) -> Reply {
        let limits = self.app.instance_limits.clone();
        let id = component.id.clone();
        let response = self
            .on_worker(&component.clone(), move |engine| {
                run_spin_http(engine, &component, request, &limits)
            })
            .await;
        let SpinResponse {
            status,
            headers,
            body,
        } = match response {
            Ok(response) => response,
            Err(reply) => return reply,
        };
        Reply {
            status,
            headers: valid_headers(&id, headers),
            body,
        }
    }

    async fn invoke(&self, component: Arc<Component>, invocation: Invocation) -> Reply {
        let limits = self.app.instance_limits.clone();
        let id = component.id.clone();
        let outcome = self
            .on_worker(&component.clone(), move |engine| {
                run_wagi(engine, &component, invocation, &limits)
            })
            .await;
        let stdout = match outcome {
            Ok(stdout) => stdout,
            Err(reply) => return reply,
        };
        match wagi::parse_output(&stdout) {
            Ok(response) => {
                let mut body = stdout;
                body.drain(..response.body_offset);
                Reply {
                    status: response.status,
                    headers: response.headers,
                    body,
                }
            }
            Err(e) => {
                tracing::error!(target: "flint::http", component = %id, "bad WAGI response: {e}");
                let status = if matches!(e, wagi::WagiError::BadStatus(_)) {
                    502
                } else {
                    500
                };
                Reply::text(status, "Internal Server Error")
            }
        }
    }
}

/// The request a Spin guest (and a streaming one) gets: the client's
/// headers and Flint's `spin-*` ones; `body` is `None` when the guest reads
/// it as it arrives.
fn spin_request(info: &WagiRequest<'_>, body: Option<Vec<u8>>) -> IncomingRequest {
    let spin_headers = info.spin_headers();
    // A client must not be able to spoof what Flint says about the request.
    let request_headers = info
        .headers
        .iter()
        .filter(|(name, _)| {
            !name.starts_with("spin-path-match-")
                && !spin_headers.iter().any(|(spin, _)| spin == name)
        })
        .cloned()
        .chain(spin_headers.iter().cloned())
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    IncomingRequest {
        method: info.method.to_owned(),
        path_with_query: if info.query.is_empty() {
            info.raw_path.to_owned()
        } else {
            format!("{}?{}", info.raw_path, info.query)
        },
        scheme: "http".to_owned(),
        authority: info.host(),
        headers: request_headers,
        body,
    }
}

/// Reads a request body of `length` bytes into `feeder` as the client sends
/// it, a slice at a time, waiting while the guest has not taken what came
/// before. Once the guest no longer reads its body, the rest is read and
/// dropped, so that the connection is ready for its next request. The
/// client has `budget` in all for its reads; the time spent waiting for the
/// guest does not count.
async fn feed_body<R: Read>(
    reader: &mut R,
    length: usize,
    feeder: BodyFeeder,
    mut budget: Duration,
) -> Result<Arrival, R::Error> {
    let mut left = length;
    let mut feeder = Some(feeder);
    let mut dropped = Vec::new();
    while left > 0 {
        let size = left.min(BODY_SLICE);
        let mut piece = if feeder.is_some() {
            vec![0; size]
        } else {
            std::mem::take(&mut dropped)
        };
        piece.resize(size, 0);
        let began = Instant::now();
        let read = async { Some(reader.read(&mut piece).await) };
        let expire = async {
            smol::Timer::after(budget).await;
            None
        };
        let n = match smol::future::or(read, expire).await {
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                if let Some(feeder) = feeder {
                    feeder.fail("reading the request body failed").await;
                }
                return Err(e);
            }
            None => {
                if let Some(feeder) = feeder {
                    feeder
                        .fail(
                            "the client took longer than read_timeout_ms to send the request body",
                        )
                        .await;
                }
                return Ok(Arrival::TimedOut);
            }
        };
        budget = budget.saturating_sub(began.elapsed());
        if n == 0 {
            if let Some(feeder) = feeder {
                feeder
                    .fail("the client closed the connection before the end of the request body")
                    .await;
            }
            return Ok(Arrival::EndedEarly);
        }
        left -= n;
        piece.truncate(n);
        match &feeder {
            Some(f) => {
                if !f.send(piece).await {
                    feeder = None;
                }
            }
            None => dropped = piece,
        }
    }
    if let Some(feeder) = feeder {
        feeder.finish().await;
    }
    Ok(Arrival::Whole)
}

/// Whether picoserve closes the connection after this response (its
/// `KeepAlive::from_request`, which is private): HTTP/1.0, `Connection:
/// close`, or an upgrade that Flint does not make.
fn closes_after(http_version: &str, headers: &[(String, String)]) -> bool {
    let connection = headers
        .iter()
        .find(|(name, _)| name == "connection")
        .map(|(_, value)| value.as_str());
    http_version != "HTTP/1.1"
        || connection.is_some_and(|c| {
            c.eq_ignore_ascii_case("close")
                || c.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
}

/// A response head as picoserve writes it and `BufferedWriter` sends it:
/// the status line, the headers, and `Connection: close` when the
/// connection ends after the response (the default keep-alive is not sent).
struct HeadLines {
    out: Vec<u8>,
    closes: bool,
    connection: bool,
}

impl HeadLines {
    fn new(status: u16, closes: bool) -> Self {
        Self {
            out: format!("HTTP/1.1 {status} \r\n").into_bytes(),
            closes,
            connection: false,
        }
    }
}

impl ForEachHeader for HeadLines {
    type Output = Vec<u8>;
    type Error = std::convert::Infallible;

    async fn call<Value: std::fmt::Display>(
        &mut self,
        name: &str,
        value: Value,
    ) -> Result<(), Self::Error> {
        self.connection |= name.eq_ignore_ascii_case("connection");
        self.out
            .extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        Ok(())
    }

    async fn finalize(mut self) -> Result<Vec<u8>, Self::Error> {
        if self.closes && !self.connection {
            self.out.extend_from_slice(b"Connection: close\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        Ok(self.out)
    }
}

/// A guest's response headers that can be sent: a value that is not valid
/// header text is dropped (and logged).
fn valid_headers(component: &str, headers: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
    let mut valid = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        match String::from_utf8(value) {
            Ok(value) if is_valid_header(&name, &value) => valid.push((name, value)),
            _ => {
                tracing::warn!(target: "flint::http", component, header = %name, "dropped a response header whose value is not valid text")
            }
        }
    }
    valid
}

/// Response headers with the server's framing; framing headers from a
/// guest are dropped because the server owns the framing.
struct ReplyHeaders<'a> {
    headers: &'a [(String, String)],
    framing: Framing,
}

impl HeadersIter for ReplyHeaders<'_> {
    async fn for_each_header<F: ForEachHeader>(self, mut f: F) -> Result<F::Output, F::Error> {
        for (name, value) in self.headers {
            let framing = ["content-length", "transfer-encoding", "connection"]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h));
            if !framing {
                f.call(name, value).await?;
            }
        }
        match self.framing {
            Framing::Empty => {}
            Framing::Length(length) => f.call("Content-Length", length).await?,
            Framing::Chunked => f.call("Transfer-Encoding", "chunked").await?,
            // picoserve writes no Connection header of its own after this one.
            Framing::Close => f.call("Connection", "close").await?,
        }
        f.finalize().await
    }
}
