//! `flint status` asking a running instance for its human summary
//! (`GET /.well-known/flint/status` with `Accept: text/plain`), over the
//! same small HTTP client guests' outbound requests use.

use std::time::Duration;

use anyhow::{Context as _, bail};
use flint_host::outbound_http::{self, Bounds, Request};

/// The summary from the instance at `url` (`http://HOST:PORT`).
pub fn fetch_text(url: &str) -> anyhow::Result<String> {
    let authority = url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .with_context(|| format!("`{url}` is not an http://HOST:PORT address"))?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().ok()),
        None => (authority, Some(80)),
    };
    let Some(port) = port.filter(|_| !host.is_empty()) else {
        bail!("`{url}` is not an http://HOST:PORT address");
    };
    let headers = vec![("accept".to_owned(), b"text/plain".to_vec())];
    let response = outbound_http::send(
        &Request {
            method: "GET",
            host: host.trim_start_matches('[').trim_end_matches(']'),
            port,
            authority,
            path_with_query: "/.well-known/flint/status",
            headers: &headers,
            body: &[],
            tls: None,
            blocked: &Default::default(),
        },
        Bounds {
            connect_timeout: Duration::from_secs(3),
            io_timeout: Duration::from_secs(5),
            max_head_bytes: 64 * 1024,
            max_body_bytes: 4 << 20,
        },
    )
    .map_err(|e| anyhow::anyhow!("asking {url} for its status: {e:?}"))?;
    if response.status != 200 {
        bail!(
            "{url} answered {} to /.well-known/flint/status (is it the listener given to --metrics-listen?)",
            response.status
        );
    }
    String::from_utf8(response.body).context("the status summary is not UTF-8")
}
