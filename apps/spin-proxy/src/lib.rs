//! Outbound HTTP with the Spin SDK: `/proxy?url=<url>` sends the request's
//! method and body to `<url>` and answers with the upstream's status, body and
//! `content-type`; a failed send answers 502 with the error.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: Request) -> Response {
    let Some(url) = req.query().split('&').find_map(|p| p.strip_prefix("url=")) else {
        return Response::new(400, "missing ?url=\n");
    };
    let outbound = Request::builder()
        .method(req.method().clone())
        .uri(url)
        .header("x-forwarded-by", "flint-proxy")
        .body(req.body().to_vec())
        .build();
    match spin_sdk::http::send::<_, Response>(outbound).await {
        Ok(upstream) => {
            let mut response = Response::builder();
            response.status(*upstream.status());
            if let Some(ct) = upstream.header("content-type").and_then(|v| v.as_str()) {
                response.header("content-type", ct);
            }
            response.body(upstream.into_body()).build()
        }
        Err(e) => Response::new(502, format!("outbound request failed: {e:?}\n")),
    }
}
