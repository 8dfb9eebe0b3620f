//! A spin-sdk 6 HTTP component (`spin new -t http-rust` with Spin 4.0): it
//! speaks WASI 0.3's release candidate `0.3.0-rc-2026-03-15`.
//!
//! - `/hello`: `Hello from spin-sdk 6\n`
//! - `/echo`: the request body handed on unread as the response body

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_service;

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    match req.uri().path() {
        "/hello" => Response::builder()
            .header("content-type", "text/plain")
            .body("Hello from spin-sdk 6\n".to_owned())
            .into_response(),
        "/echo" => Response::new(req.into_body()).into_response(),
        _ => Response::builder()
            .status(404)
            .body(String::new())
            .into_response(),
    }
}
