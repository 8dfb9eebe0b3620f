//! A Spin SDK 5 HTTP component (wasm32-wasip2, a real WebAssembly component
//! exporting `wasi:http/incoming-handler@0.2.0`). One wildcard route,
//! dispatched on the path:
//!
//! - `/hello`: 200 `Hello from a wasip2 component\n`
//! - `/request`: the request as JSON (method, uri, path, query, body length and
//!   every header, Spin's `spin-*` ones included)
//! - `/kv/<key>`: GET / PUT / DELETE on the `default` store, 404 when missing
//! - `/kv-denied`: opens the ungranted store `secret`: 403 `access-denied`
//! - `/var/<name>`: a component variable, 500 `undefined: <text>` when undefined
//!   (errors are written as the WIT case name, `: payload` when it has one)
//! - `/echo`: the request body back, unchanged

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::{Error as KvError, Store};
use spin_sdk::variables::{self, Error as VarError};

#[http_component]
fn handle(req: Request) -> Response {
    let path = req.path().to_owned();
    if path == "/hello" {
        return text(200, "Hello from a wasip2 component\n");
    }
    if path == "/request" {
        return request_json(&req);
    }
    if path == "/echo" {
        return echo(req);
    }
    if path == "/kv-denied" {
        return match Store::open("secret") {
            Ok(_) => text(200, "opened store secret (should have been denied)\n"),
            Err(e) => text(403, format!("{}\n", kv_error(&e))),
        };
    }
    if let Some(key) = path.strip_prefix("/kv/") {
        return kv(&req, key);
    }
    if let Some(name) = path.strip_prefix("/var/") {
        return match variables::get(name) {
            Ok(value) => text(200, value),
            Err(e) => text(500, format!("{}\n", var_error(&e))),
        };
    }
    text(404, format!("no route for {path}\n"))
}

fn text(status: u16, body: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body.into())
        .build()
}

fn request_json(req: &Request) -> Response {
    let mut headers = serde_json::Map::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name) {
            // A repeated header: joined as HTTP would fold it.
            Some(serde_json::Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&value);
            }
            _ => {
                headers.insert(name.to_owned(), value.into());
            }
        }
    }
    let json = serde_json::json!({
        "method": req.method().to_string(),
        "uri": req.uri(),
        "path": req.path(),
        "query": req.query(),
        "body_len": req.body().len(),
        "headers": headers,
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(format!("{json}\n"))
        .build()
}

fn echo(req: Request) -> Response {
    let content_type = req
        .header("content-type")
        .and_then(|v| v.as_str())
        .unwrap_or("application/octet-stream")
        .to_owned();
    Response::builder()
        .status(200)
        .header("content-type", content_type)
        .body(req.into_body())
        .build()
}

fn kv(req: &Request, key: &str) -> Response {
    let store = match Store::open("default") {
        Ok(store) => store,
        Err(e) => return text(500, format!("{}\n", kv_error(&e))),
    };
    let result: Result<Response, KvError> = (|| {
        Ok(match req.method() {
            Method::Get => match store.get(key)? {
                Some(value) => Response::builder()
                    .status(200)
                    .header("content-type", "application/octet-stream")
                    .body(value)
                    .build(),
                None => text(404, format!("no key {key}\n")),
            },
            Method::Put | Method::Post => {
                store.set(key, req.body())?;
                text(200, format!("stored {key} ({} bytes)\n", req.body().len()))
            }
            Method::Delete => {
                if !store.exists(key)? {
                    return Ok(text(404, format!("no key {key}\n")));
                }
                store.delete(key)?;
                text(200, format!("deleted {key}\n"))
            }
            _ => text(405, "GET, PUT or DELETE\n"),
        })
    })();
    result.unwrap_or_else(|e| text(500, format!("{}\n", kv_error(&e))))
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
