//! The one `PathRouterService` behind every connection: route lookup, the
//! request body, dispatch to a static response or a WAGI guest on the worker
//! pool, the response, and one log line per request.

use std::net::SocketAddr;
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

use flint_engine::InstanceLimits;
use flint_engine::pool::{PoolError, WorkerPool};
use flint_executor::wagi::{self, WagiRequest};
use flint_executor::{
    Component, GuestFailure, GuestKind, Invocation, SpinResponse, run_spin_http,
    run_spin_http_async, run_wagi,
};
use flint_host::http1::is_valid_header;
use flint_host::{Engine, IncomingRequest};

use flint_engine::metrics::{Format, MetricsWriter};

use crate::metrics::{HttpMetrics, LabelledRoute, Refusal, RouteMetrics};
use crate::router::{Router, RouterSlot, Target};

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
        !matches!(self.status, 204 | 304)
    }
}

/// Per-connection service: the stream clone writes response bodies, because
/// picoserve's `Content` only carries a `&'static str` content type and Flint's
/// content types come from guests.
pub struct FlintService {
    pub app: Arc<HttpApp>,
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub role: Role,
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

        // The framer has already bounded the length. The body is read straight
        // into its Vec, a slice at a time, so memory follows what arrived, not
        // what was declared; and no read buffer lives in this future, which
        // picoserve moves (memcpy) as a whole when the future is large.
        let content_length = request.body_connection.content_length();
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

        // This request is answered by the app current now, even if a reload
        // switches the router while it runs.
        let router = self.app.router.current();
        let (reply, component, route) = if body.len() == content_length {
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
                Reply::text(400, "Bad Request: the request body ended early"),
                None,
                &self.app.metrics.unmatched,
            )
        };
        let connection = request.body_connection.finalize().await?;
        let is_head = method == "HEAD";
        let sent = Response::empty(StatusCode::new(reply.status))
            .with_headers(ReplyHeaders {
                headers: &reply.headers,
                content_length: reply.has_body().then_some(reply.body.len()),
            })
            .write_to(connection, response_writer)
            .await?;
        // picoserve has flushed the head; HEAD responses carry no body.
        let write_ok = is_head || !reply.has_body() || self.write_body(&reply.body).await;
        let component = component.as_deref().unwrap_or("-");
        let duration = started.elapsed();
        route.record(method, reply.status, duration);
        tracing::info!(
            target: "flint::http",
            method,
            path = raw_path,
            status = reply.status,
            component,
            duration = ?duration,
            "{}",
            if write_ok { "request" } else { "request (client went away while writing)" }
        );
        Ok(sent)
    }
}

impl FlintService {
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
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
        }
        ok
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
    ) -> (Reply, Option<Arc<str>>, &'a RouteMetrics) {
        let flint = &self.app.metrics.flint_routes;
        if raw_path == HEALTH_ROUTE {
            return (Reply::text(200, "OK"), None, flint);
        }
        if let Some(reply) = self.operator_route(raw_path, headers) {
            return (reply, None, flint);
        }
        let unmatched = &self.app.metrics.unmatched;
        if !self.role.app_routes {
            return (Reply::text(404, "Not Found"), None, unmatched);
        }
        let Some((entry, route_match)) = router.find(raw_path) else {
            return (Reply::text(404, "Not Found"), None, unmatched);
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
                return (reply, None, route);
            }
            Target::Wagi { component, argv } => (component, argv),
            Target::Spin { component } => {
                let spin_headers = info.spin_headers();
                // A client must not be able to spoof what Flint says about the request.
                let request_headers = headers
                    .iter()
                    .filter(|(name, _)| {
                        !name.starts_with("spin-path-match-")
                            && !spin_headers.iter().any(|(spin, _)| spin == name)
                    })
                    .cloned()
                    .chain(spin_headers.iter().cloned())
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                let request = IncomingRequest {
                    method: method.to_owned(),
                    path_with_query: if query.is_empty() {
                        raw_path.to_owned()
                    } else {
                        format!("{raw_path}?{query}")
                    },
                    scheme: "http".to_owned(),
                    authority: info.host(),
                    headers: request_headers,
                    body: Some(body),
                };
                let reply = self.invoke_spin(component.clone(), request).await;
                return (reply, Some(component.id.clone()), route);
            }
        };
        let env = info.environment();
        let invocation = Invocation {
            stdin: body,
            env,
            argv: wagi::argv(argv_template, raw_path, query),
        };
        let reply = self.invoke(component.clone(), invocation).await;
        (reply, Some(component.id.clone()), route)
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
            Ok(Err(failure)) => {
                tracing::error!(target: "flint::http", component = %id, "guest {failure}");
                Err(match failure {
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
                })
            }
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

    async fn invoke_spin(&self, component: Arc<Component>, request: IncomingRequest) -> Reply {
        let limits = self.app.instance_limits.clone();
        let id = component.id.clone();
        let response = self
            .on_worker(&component.clone(), move |engine| match component.kind {
                GuestKind::SpinHttpAsync => {
                    run_spin_http_async(engine, &component, request, &limits)
                }
                _ => run_spin_http(engine, &component, request, &limits),
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
        let mut reply_headers = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            match String::from_utf8(value) {
                Ok(value) if is_valid_header(&name, &value) => reply_headers.push((name, value)),
                _ => {
                    tracing::warn!(target: "flint::http", component = %id, header = %name, "dropped a response header whose value is not valid text")
                }
            }
        }
        Reply {
            status,
            headers: reply_headers,
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

/// Response headers with a computed `Content-Length`; framing headers from a
/// guest are dropped because the server owns the framing.
struct ReplyHeaders<'a> {
    headers: &'a [(String, String)],
    /// `None` for responses that must not carry a body.
    content_length: Option<usize>,
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
        if let Some(length) = self.content_length {
            f.call("Content-Length", length).await?;
        }
        f.finalize().await
    }
}
