//! A Spin SDK 7 HTTP component (wasm32-wasip2, a WASI 0.3 component exporting
//! `wasi:http/handler@0.3.0#handle` as an `async` lift with a callback). The
//! routes of ../components/component-hello, answered the same way so the
//! tests are shared, plus the ones only an async guest can serve:
//!
//! - `/hello`: 200 `Hello from a wasip3 component\n`
//! - `/request`: the request as JSON (method, uri, path, query, body length and
//!   every header, Spin's `spin-*` ones included)
//! - `/kv/<key>`: GET / PUT / DELETE on the `default` store, 404 when missing
//! - `/kv-denied`: opens the ungranted store `secret`: 403 `access-denied`
//! - `/counter`: increments `counter` in the `default` store, answers the new
//!   value
//! - `/var/<name>`: a component variable, 500 `undefined: <text>` when undefined
//!   (errors are written as the WIT case name, `: payload` when it has one)
//! - `/echo`: the request body back, streamed through as it arrives
//! - `/stream`: `chunk 0\n` .. `chunk 4\n`, each written after a timer await
//! - `/stream-slow`: `first\n`, then a 1.5 s timer, then `last\n`
//! - `/stream-until/<key>`: `first\n`, then waits (polling every 20 ms) until
//!   `<key>` exists in the `default` store, deletes it and ends with `last\n`:
//!   a test can read the first chunk while the guest is provably still
//!   running, then release it
//! - `/never`: awaits a `future` whose writer the guest keeps but never
//!   writes: only the host's deadline ends it
//!
//! Every response body is written by a task the SDK spawns after the handler
//! has returned the response (`task.return`), so the body streams.

use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, Stream};
use http::{Method, Response};
use http_body::{Body, Frame};
use http_body_util::StreamBody;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;
use spin_sdk::key_value::{Error as KvError, Store};
use spin_sdk::time::sleep;
use spin_sdk::variables::{self, Error as VarError};
use spin_sdk::wasip3::http::types::ErrorCode;
use spin_sdk::wasip3::wit_future;

/// How many chunks `/stream` writes.
const STREAM_CHUNKS: usize = 5;
/// How long `/stream-until` sleeps between looks at its key.
const POLL: Duration = Duration::from_millis(20);
/// How many looks `/stream-until` takes before giving up (60 s): a bound for
/// a host without a deadline.
const POLL_LIMIT: usize = 3000;

/// Any response this component sends: a boxed body, since the routes stream
/// bodies of different types (and not `Send` ones: the futures of a wasm
/// guest's imports stay on its one thread).
type Reply = Response<Pin<Box<dyn Body<Data = Bytes, Error = Infallible>>>>;

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/hello" => text(200, "Hello from a wasip3 component\n"),
        "/request" => request_json(req).await,
        "/echo" => echo(req),
        "/kv-denied" => match Store::open("secret").await {
            Ok(_) => text(200, "opened store secret (should have been denied)\n"),
            Err(e) => text(403, format!("{}\n", kv_error(&e))),
        },
        "/counter" => counter().await,
        "/stream" => streamed(stream::unfold(0, |i| async move {
            if i == STREAM_CHUNKS {
                return None;
            }
            sleep(Duration::from_millis(10)).await;
            Some((Bytes::from(format!("chunk {i}\n")), i + 1))
        })),
        "/stream-slow" => streamed(stream::unfold(0, |step| async move {
            match step {
                0 => Some((Bytes::from_static(b"first\n"), 1)),
                1 => {
                    sleep(Duration::from_millis(1500)).await;
                    Some((Bytes::from_static(b"last\n"), 2))
                }
                _ => None,
            }
        })),
        "/never" => never().await,
        _ => {
            if let Some(key) = path.strip_prefix("/stream-until/") {
                stream_until(key.to_owned())
            } else if let Some(key) = path.strip_prefix("/kv/") {
                let key = key.to_owned();
                kv(req, &key).await
            } else if let Some(name) = path.strip_prefix("/var/") {
                match variables::get(name).await {
                    Ok(value) => text(200, value),
                    Err(e) => text(500, format!("{}\n", var_error(&e))),
                }
            } else {
                text(404, format!("no route for {path}\n"))
            }
        }
    }
}

fn reply(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Box::pin(http_body_util::Full::new(body.into())) as _)
        .expect("a valid status and header")
}

fn text(status: u16, body: impl Into<String>) -> Reply {
    reply(status, "text/plain", body.into().into_bytes())
}

/// A 200 whose body is `chunks`, each sent as its own frame once produced.
fn streamed(chunks: impl Stream<Item = Bytes> + 'static) -> Reply {
    use futures::StreamExt;
    let frames = chunks.map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(Box::pin(StreamBody::new(frames)) as _)
        .expect("a valid status and header")
}

async fn request_json(req: Request) -> Reply {
    let mut headers = serde_json::Map::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            // A repeated header: joined as HTTP would fold it.
            Some(serde_json::Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), value.into());
            }
        }
    }
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let body_len = match req.into_body().bytes().await {
        Ok(body) => body.len(),
        Err(e) => return text(500, format!("reading the body: {e:?}\n")),
    };
    let json = serde_json::json!({
        "method": method,
        "uri": uri,
        "path": path,
        "query": query,
        "body_len": body_len,
        "headers": headers,
    });
    reply(200, "application/json", format!("{json}\n"))
}

/// The request body, streamed back frame by frame as it arrives.
fn echo(req: Request) -> Reply {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    // A broken request body ends the response body early: the client sees
    // a truncated echo.
    let chunks =
        futures::StreamExt::filter_map(req.into_body().stream(), |chunk| async move { chunk.ok() });
    let mut resp = streamed(chunks);
    resp.headers_mut().insert(
        "content-type",
        content_type.parse().expect("a header value read as one"),
    );
    resp
}

async fn kv(req: Request, key: &str) -> Reply {
    let store = match Store::open("default").await {
        Ok(store) => store,
        Err(e) => return text(500, format!("{}\n", kv_error(&e))),
    };
    let method = req.method().clone();
    let result: Result<Reply, KvError> = async {
        Ok(match method {
            Method::GET => match store.get(key).await? {
                Some(value) => reply(200, "application/octet-stream", value),
                None => text(404, format!("no key {key}\n")),
            },
            Method::PUT | Method::POST => {
                let body = match req.into_body().bytes().await {
                    Ok(body) => body,
                    Err(e) => return Ok(text(500, format!("reading the body: {e:?}\n"))),
                };
                store.set(key, &body).await?;
                text(200, format!("stored {key} ({} bytes)\n", body.len()))
            }
            Method::DELETE => {
                if !store.exists(key).await? {
                    return Ok(text(404, format!("no key {key}\n")));
                }
                store.delete(key).await?;
                text(200, format!("deleted {key}\n"))
            }
            _ => text(405, "GET, PUT or DELETE\n"),
        })
    }
    .await;
    result.unwrap_or_else(|e| text(500, format!("{}\n", kv_error(&e))))
}

/// `counter` + 1 in the `default` store (a missing or unreadable value counts
/// as 0), answered as the new value.
async fn counter() -> Reply {
    let result: Result<u64, KvError> = async {
        let store = Store::open_default().await?;
        let current = store
            .get("counter")
            .await?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let next = current + 1;
        store.set("counter", next.to_string()).await?;
        Ok(next)
    }
    .await;
    match result {
        Ok(n) => text(200, format!("{n}\n")),
        Err(e) => text(500, format!("{}\n", kv_error(&e))),
    }
}

/// `first\n` at once; `last\n` once `key` exists in the `default` store.
fn stream_until(key: String) -> Reply {
    streamed(stream::unfold(Some(0), move |step| {
        let key = key.clone();
        async move {
            match step? {
                0 => Some((Bytes::from_static(b"first\n"), Some(1))),
                _ => Some((Bytes::from(wait_for_key(&key).await), None)),
            }
        }
    }))
}

async fn wait_for_key(key: &str) -> String {
    let store = match Store::open_default().await {
        Ok(store) => store,
        Err(e) => return format!("{}\n", kv_error(&e)),
    };
    for _ in 0..POLL_LIMIT {
        match store.exists(key).await {
            Ok(true) => {
                return match store.delete(key).await {
                    Ok(()) => "last\n".to_owned(),
                    Err(e) => format!("{}\n", kv_error(&e)),
                };
            }
            Ok(false) => sleep(POLL).await,
            Err(e) => return format!("{}\n", kv_error(&e)),
        }
    }
    format!("gave up waiting for {key}\n")
}

/// Awaits the readable end of a `future` whose writable end this task holds
/// and never writes: the task blocks in the host's waitable set for good.
async fn never() -> Reply {
    let (writer, reader) = wit_future::new::<Result<(), ErrorCode>>(|| Ok(()));
    let result = reader.await;
    // Reached only if the host completed a future nobody wrote.
    drop(writer);
    text(500, format!("the unwritten future completed: {result:?}\n"))
}

/// The WIT case name, with its payload: `access-denied`, `other: <text>`.
fn kv_error(e: &KvError) -> String {
    match e {
        KvError::StoreTableFull => "store-table-full".into(),
        KvError::NoSuchStore => "no-such-store".into(),
        KvError::AccessDenied => "access-denied".into(),
        KvError::Other(s) => format!("other: {s}"),
    }
}

/// The WIT case name with its payload, e.g. `undefined: <text>`.
fn var_error(e: &VarError) -> String {
    match e {
        VarError::InvalidName(s) => format!("invalid-name: {s}"),
        VarError::Undefined(s) => format!("undefined: {s}"),
        VarError::Provider(s) => format!("provider: {s}"),
        VarError::Other(s) => format!("other: {s}"),
    }
}
