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
use flint_executor::{Component, GuestFailure, Invocation, SpinResponse, run_spin_http, run_wagi};
use flint_host::http1::is_valid_header;
use flint_host::{Engine, IncomingRequest};

use crate::router::{Router, Target};

const HEALTH_ROUTE: &str = "/.well-known/spin/health";
const STATUS_ROUTE: &str = "/.well-known/flint/status";

/// Everything the HTTP trigger shares across connections and threads.
pub struct HttpApp {
    pub router: Router,
    pub engine: Arc<Engine>,
    pub pool: WorkerPool,
    pub instance_limits: InstanceLimits,
    /// Bounds writing a response body, which picoserve's own write timeout does not cover.
    pub write_timeout: Duration,
    /// The JSON document at `GET /.well-known/flint/status`, which the
    /// binary composes from every layer's counters.
    pub status: Box<dyn Fn() -> String + Send + Sync>,
    pub max_instances_per_component: usize,
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

        // The framer has already bounded the length; bodies are streamed in.
        let content_length = request.body_connection.content_length();
        let mut body = Vec::with_capacity(content_length.min(64 * 1024));
        let mut reader = request.body_connection.body().reader();
        let mut chunk = [0u8; 8192];
        loop {
            match reader.read(&mut chunk).await? {
                0 => break,
                n => body.extend_from_slice(&chunk[..n]),
            }
        }

        let (reply, component) = if body.len() == content_length {
            self.dispatch(method, raw_path, query, http_version, &headers, body)
                .await
        } else {
            // The client closed mid-body: a guest must never see a truncated body as whole.
            (
                Reply::text(400, "Bad Request: the request body ended early"),
                None,
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

    async fn dispatch(
        &self,
        method: &str,
        raw_path: &str,
        query: &str,
        http_version: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> (Reply, Option<Arc<str>>) {
        if raw_path == HEALTH_ROUTE {
            return (Reply::text(200, "OK"), None);
        }
        if raw_path == STATUS_ROUTE {
            let body = (self.app.status)();
            let reply = Reply {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: body.into_bytes(),
            };
            return (reply, None);
        }
        let Some((entry, route_match)) = self.app.router.find(raw_path) else {
            return (Reply::text(404, "Not Found"), None);
        };
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
                return (reply, None);
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
                return (reply, Some(component.id.clone()));
            }
        };
        let env = info.environment();
        let invocation = Invocation {
            stdin: body,
            env,
            argv: wagi::argv(argv_template, raw_path, query),
        };
        let reply = self.invoke(component.clone(), invocation).await;
        (reply, Some(component.id.clone()))
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
                    GuestFailure::MemoryBudget => Reply::text(
                        503,
                        "Service Unavailable: guest memory is exhausted, retry later",
                    ),
                    _ => Reply::text(500, "Internal Server Error"),
                })
            }
            Err(e @ PoolError::Busy { .. }) => {
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
