//! One WAGI module behind many routes (see `../spin.toml`), to exercise the host.
//!
//! The host tells the guest which route matched through `X_RAW_COMPONENT_ROUTE`
//! (pattern incl. wildcard, e.g. `/env/...`) or `X_COMPONENT_ROUTE` (without it).
//! We dispatch on the first segment of that pattern, which is the same in both,
//! so the guest works whichever of the two a host sets.

use std::env;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};

fn main() {
    let route = env::var("X_RAW_COMPONENT_ROUTE")
        .or_else(|_| env::var("X_COMPONENT_ROUTE"))
        .unwrap_or_default();
    match first_segment(&route) {
        "greet" => text(200, &format!("Hello, {}!\n", var("X_PATH_MATCH_NAME"))),
        "echo" => echo(),
        "env" => dump_env(),
        "status" => {
            let code = var("X_PATH_MATCH_CODE");
            text_with(&format!("Status: {code}\n"), &format!("status {code}\n"));
        }
        // No Content-Type and no Status: the host must turn a lone Location into a 302.
        "redirect" => emit("Location: /hello\n", b""),
        "static" => serve_static(),
        "static-write" => try_write(),
        // With panic = "abort" this compiles to a wasm `unreachable` trap.
        "trap" => panic!("boom"),
        "exit" => {
            let code: i32 = var("X_PATH_MATCH_CODE").parse().unwrap_or(1);
            // A valid response is already on stdout: only the exit code should decide.
            text(200, &format!("exiting with {code}\n"));
            std::process::exit(code);
        }
        // Nothing on stdout at all: a WAGI error (500).
        "empty" => {}
        // No blank line, so no header block: a WAGI error (500).
        "no-headers" => emit_raw(b"just a body"),
        "slow" => {
            let ms = query_param("ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(500u64);
            // A marker hosts may forward to their log: tests use it to know the
            // request is in flight before doing something to the server.
            eprintln!("showcase: sleeping {ms} ms");
            std::thread::sleep(std::time::Duration::from_millis(ms));
            text(200, &format!("slept {ms}\n"));
        }
        "fib" => {
            let n: u32 = var("X_PATH_MATCH_N").parse().unwrap_or(0);
            text(200, &format!("{}\n", fib(n)));
        }
        _ => text(404, &format!("showcase: no handler for route {route:?}\n")),
    }
}

/// `/greet/:name` -> `greet`, `/env/...` -> `env`, `/static-write` -> `static-write`.
fn first_segment(route: &str) -> &str {
    route
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
}

fn var(name: &str) -> String {
    env::var(name).unwrap_or_default()
}

fn query_param(key: &str) -> Option<String> {
    var("QUERY_STRING")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_owned())
}

/// Writes a complete WAGI response: header lines (each ending in `\n`), the
/// blank line that ends the header block, then the body bytes.
fn emit(headers: &str, body: &[u8]) {
    let mut out = io::stdout().lock();
    out.write_all(headers.as_bytes()).unwrap();
    out.write_all(b"\n").unwrap();
    out.write_all(body).unwrap();
    out.flush().unwrap();
}

fn emit_raw(bytes: &[u8]) {
    let mut out = io::stdout().lock();
    out.write_all(bytes).unwrap();
    out.flush().unwrap();
}

fn text(status: u16, body: &str) {
    let status = if status == 200 {
        String::new()
    } else {
        format!("Status: {status}\n")
    };
    text_with(&status, body);
}

fn text_with(extra_headers: &str, body: &str) {
    emit(
        &format!("Content-Type: text/plain\n{extra_headers}"),
        body.as_bytes(),
    );
}

/// Echoes the request body (stdin) byte for byte, plus what the host told us about it.
fn echo() {
    let mut body = Vec::new();
    io::stdin().read_to_end(&mut body).unwrap();
    // Spin fills CONTENT_TYPE from a header literally named `CONTENT_TYPE`, so the
    // real Content-Type usually only arrives as HTTP_CONTENT_TYPE.
    let content_type = [var("HTTP_CONTENT_TYPE"), var("CONTENT_TYPE")]
        .into_iter()
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let headers = format!(
        "Content-Type: {content_type}\nX-Request-Method: {}\nX-Body-Length: {}\n",
        var("REQUEST_METHOD"),
        body.len()
    );
    emit(&headers, &body);
}

/// Every env var as `KEY=VALUE`, sorted by key, then `ARGV=<argv joined by ' '>`.
fn dump_env() {
    let mut vars: Vec<(String, String)> = env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    vars.sort();
    let mut body = String::new();
    for (k, v) in vars {
        body.push_str(&format!("{k}={v}\n"));
    }
    let argv: Vec<String> = env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    body.push_str(&format!("ARGV={}\n", argv.join(" ")));
    text(200, &body);
}

/// Serves `PATH_TRANSLATED` (the decoded `PATH_INFO`) from the component's
/// `files` preopen, mounted at `/`.
fn serve_static() {
    // No `..` filtering here on purpose: the host's preopen is the sandbox
    // boundary, and the tests check that it holds for `/static/..%2Fspin.toml`.
    let path = var("PATH_TRANSLATED");
    match fs::read(&path) {
        Ok(bytes) => emit(
            &format!("Content-Type: {}\n", content_type_for(&path)),
            &bytes,
        ),
        Err(e) => text(404, &format!("not found: {path}: {e}\n")),
    }
}

fn content_type_for(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("css") => "text/css",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// Tries to write into the read-only `files` preopen. Neither attempt changes the
/// file content if the host wrongly allows it: the existing file is opened for
/// writing without truncation, and a newly created file is removed again.
fn try_write() {
    let existing = OpenOptions::new().write(true).open("/hello.txt").map(drop);
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open("/new.txt")
        .map(|_| {
            let _ = fs::remove_file("/new.txt");
        });
    match (existing, created) {
        (Err(e1), Err(e2)) => text(200, &format!("write denied: {e1}; {e2}\n")),
        _ => text(200, "write succeeded\n"),
    }
}

fn fib(n: u32) -> u64 {
    if n < 2 {
        n as u64
    } else {
        fib(n - 1) + fib(n - 2)
    }
}
