//! A WAGI guest built as a wasip2 command component (exports
//! `wasi:cli/run@0.2.0`): a CGI-style header block, a blank line, then a body
//! listing REQUEST_METHOD, PATH_INFO, QUERY_STRING, the arguments, every
//! environment variable, and the request body (stdin) echoed back.
//!
//! Body layout (one item a line):
//!   method=<REQUEST_METHOD>
//!   path_info=<PATH_INFO>
//!   query=<QUERY_STRING>
//!   args=<args joined by spaces, argv[0] included>
//!   env <NAME>=<value>            (sorted by name)
//!   body-bytes=<n>
//!   <the body, unchanged>

use std::io::{Read, Write};

fn main() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .expect("reading stdin");

    let mut out = String::from("Content-Type: text/plain\n\n");
    out.push_str(&format!("method={}\n", var("REQUEST_METHOD")));
    out.push_str(&format!("path_info={}\n", var("PATH_INFO")));
    out.push_str(&format!("query={}\n", var("QUERY_STRING")));
    let args: Vec<String> = std::env::args().collect();
    out.push_str(&format!("args={}\n", args.join(" ")));
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.sort();
    for (name, value) in env {
        out.push_str(&format!("env {name}={value}\n"));
    }
    out.push_str(&format!("body-bytes={}\n", body.len()));

    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes()).expect("writing stdout");
    stdout.write_all(&body).expect("writing stdout");
    stdout.flush().expect("flushing stdout");
}
