//! A Spin SDK HTTP component: any path says hello; `?headers` (on any path)
//! lists the request headers, including Spin's `spin-*` ones; `/echo` streams
//! the request body back chunk by chunk, echoing `x-echo` and the content type.

use futures::{SinkExt, StreamExt};
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    let path_with_query = request.path_with_query().unwrap_or_default();
    let (path, query) = path_with_query
        .split_once('?')
        .unwrap_or((path_with_query.as_str(), ""));
    let path = path.to_owned();
    let list_headers = query.split('&').any(|p| p == "headers");
    match path.as_str() {
        "/echo" => echo(request, response_out).await,
        _ if list_headers => {
            let mut listing = String::new();
            for (name, value) in request.headers().entries() {
                listing.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(&value)));
            }
            respond(response_out, 200, "text/plain", listing.into_bytes()).await;
        }
        _ => {
            let body = format!("Hello, Flint! ({path})\n");
            respond(response_out, 200, "text/plain", body.into_bytes()).await;
        }
    }
}

async fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: Vec<u8>) {
    let headers =
        Fields::from_list(&[("content-type".to_owned(), content_type.as_bytes().to_vec())])
            .expect("valid header");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("valid status");
    let mut sink = response.take_body();
    out.set(response);
    sink.send(body).await.expect("body written");
}

async fn echo(request: IncomingRequest, out: ResponseOutparam) {
    let mut headers = vec![("x-flint".to_owned(), b"echo".to_vec())];
    for (name, value) in request.headers().entries() {
        if name == "content-type" || name == "x-echo" {
            headers.push((name, value));
        }
    }
    let response = OutgoingResponse::new(Fields::from_list(&headers).expect("valid headers"));
    let mut sink = response.take_body();
    out.set(response);
    let mut stream = request.into_body_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => sink.send(chunk).await.expect("body written"),
            Err(e) => panic!("reading the request body: {e:?}"),
        }
    }
}
