//! Outbound HTTP with the Spin SDK: `/proxy?url=<url>` sends the request's
//! method and body to `<url>` and answers with the upstream's status, body and
//! `content-type`; a failed send answers 502 with the error.
//! `/raw?url=<url>` sends a GET through `wasi:http/outgoing-handler` itself
//! and says which step failed: `handle` or the future's `get`.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types};

#[http_component]
async fn handle(req: Request) -> Response {
    let Some(url) = req.query().split('&').find_map(|p| p.strip_prefix("url=")) else {
        return Response::new(400, "missing ?url=\n");
    };
    if req.path() == "/raw" {
        return raw_get(url);
    }
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

/// A GET of `url` (`scheme://authority/path`) through the interface's own
/// calls, so the answer tells where a failure came from.
fn raw_get(url: &str) -> Response {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let request = types::OutgoingRequest::new(types::Fields::new());
    let scheme = match scheme {
        "http" => types::Scheme::Http,
        "https" => types::Scheme::Https,
        other => types::Scheme::Other(other.to_owned()),
    };
    let built = request.set_scheme(Some(&scheme)).is_ok()
        && request.set_authority(Some(authority)).is_ok()
        && request
            .set_path_with_query(Some(if path.is_empty() { "/" } else { path }))
            .is_ok();
    if !built {
        return Response::new(400, "the URL does not fit an outgoing-request\n");
    }
    let future = match outgoing_handler::handle(request, None) {
        Ok(future) => future,
        Err(e) => return Response::new(500, format!("outgoing-handler/handle: {e:?}")),
    };
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => Response::new(response.status(), "sent\n"),
        Some(Ok(Err(e))) => Response::new(500, format!("incoming-response#get: {e:?}")),
        Some(Err(())) => Response::new(500, "incoming-response#get: taken twice"),
        None => Response::new(500, "incoming-response#get: not ready after block"),
    }
}
