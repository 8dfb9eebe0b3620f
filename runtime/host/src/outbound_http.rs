//! A small blocking HTTP/1.1 client for guests' outbound requests: one
//! connection per request (`Connection: close`), every phase bounded by a
//! timeout and the response by a size limit. Runs on the worker thread of the
//! invocation that asked for it.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::blocked_networks::BlockedNetworks;
use crate::chunked::ChunkedDecoder;
use crate::interfaces::http_types::ErrorCode;
use crate::outbound_tcp::{self, Conn, ConnectError};
use crate::tls::TlsFailure;

pub struct Request<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub port: u16,
    /// The `Host` header: the request's authority as the guest gave it.
    pub authority: &'a str,
    pub path_with_query: &'a str,
    pub headers: &'a Headers,
    pub body: &'a [u8],
    /// `https`: the TLS configuration; the server name is `host`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Addresses the request may not connect to, whatever `host` resolves to.
    pub blocked: &'a BlockedNetworks,
}

/// Header names (lower-cased) and raw values.
pub type Headers = Vec<(String, Vec<u8>)>;

pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub connect_timeout: Duration,
    /// Bounds each read and write, and (times four) the whole exchange.
    pub io_timeout: Duration,
    pub max_head_bytes: usize,
    pub max_body_bytes: usize,
}

/// Request headers the client sets itself.
const OWN_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "expect",
];

pub fn send(request: &Request<'_>, bounds: Bounds) -> Result<Response, ErrorCode> {
    let started = Instant::now();
    let tcp = outbound_tcp::connect(
        request.host,
        request.port,
        request.blocked,
        bounds.connect_timeout,
        bounds.io_timeout,
    )
    .map_err(error_code)?;
    let mut stream = match &request.tls {
        None => Conn::Plain(tcp),
        Some(config) => Conn::Tls(Box::new(
            outbound_tcp::tls_handshake(config.clone(), request.host, tcp).map_err(error_code)?,
        )),
    };

    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
        request.method, request.path_with_query, request.authority
    )
    .into_bytes();
    for (name, value) in request.headers {
        if OWN_HEADERS.contains(&name.as_str()) {
            continue;
        }
        // Fields from a guest were checked when set, but a guest may forward
        // an upstream's: nothing may split the request head.
        if !is_field(name, value) {
            return Err(ErrorCode::Internal(format!(
                "invalid request header `{name}`"
            )));
        }
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    if !request.body.is_empty() || !matches!(request.method, "GET" | "HEAD" | "DELETE" | "OPTIONS")
    {
        head.extend_from_slice(format!("content-length: {}\r\n", request.body.len()).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    stream
        .write_all(&head)
        .and_then(|()| stream.write_all(request.body))
        .map_err(|e| timeout_or(e, ErrorCode::ConnectionTerminated))?;

    let deadline = started + bounds.io_timeout * 4;
    let mut reader = Reader {
        stream,
        buf: Vec::new(),
        deadline,
    };
    loop {
        let (status, headers) = reader.head(bounds.max_head_bytes)?;
        // Interim responses (100 Continue, 103 Early Hints) precede the real one.
        if (100..200).contains(&status) {
            continue;
        }
        let no_body = request.method == "HEAD" || matches!(status, 204 | 304);
        let body = if no_body {
            Vec::new()
        } else {
            reader.body(&headers, bounds.max_body_bytes)?
        };
        return Ok(Response {
            status,
            headers,
            body,
        });
    }
}

/// A token name and a value without control characters (tab allowed).
fn is_field(name: &str, value: &[u8]) -> bool {
    crate::http1::is_token(name.as_bytes())
        && !value
            .iter()
            .any(|b| (b.is_ascii_control() && *b != b'\t') || *b == 0x7f)
}

/// A failed connection as the guest's error code.
fn error_code(e: ConnectError) -> ErrorCode {
    match e {
        ConnectError::Dns { reason, .. } => ErrorCode::DnsError(reason),
        ConnectError::Prohibited(_) => ErrorCode::DestinationIpProhibited,
        ConnectError::Timeout(_) => ErrorCode::ConnectionTimeout,
        ConnectError::Refused { .. } => ErrorCode::ConnectionRefused,
        ConnectError::Tls {
            failure: Some(failure),
            ..
        } => ErrorCode::Tls(failure),
        ConnectError::Tls { reason, .. } => ErrorCode::Internal(format!("TLS: {reason}")),
    }
}

/// An I/O error as the guest's error code: TLS failures as the TLS cases,
/// timeouts as read timeouts, anything else as `other`.
fn timeout_or(e: std::io::Error, other: ErrorCode) -> ErrorCode {
    if let Some(failure) = TlsFailure::of(&e) {
        return ErrorCode::Tls(failure);
    }
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            ErrorCode::ConnectionReadTimeout
        }
        _ => other,
    }
}

struct Reader {
    stream: Conn,
    /// Bytes read but not yet consumed.
    buf: Vec<u8>,
    deadline: Instant,
}

impl Reader {
    /// Reads more bytes; `Ok(0)` at end of stream.
    fn fill(&mut self) -> Result<usize, ErrorCode> {
        if Instant::now() > self.deadline {
            return Err(ErrorCode::ConnectionReadTimeout);
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = self
            .stream
            .read(&mut chunk)
            .map_err(|e| timeout_or(e, ErrorCode::ConnectionTerminated))?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn head(&mut self, max: usize) -> Result<(u16, Headers), ErrorCode> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if self.buf.len() > max {
                return Err(ErrorCode::ResponseHeaderSectionSize);
            }
            if self.fill()? == 0 {
                return Err(ErrorCode::ResponseIncomplete);
            }
        };
        let head: Vec<u8> = self.buf.drain(..end + 4).collect();
        let head = std::str::from_utf8(&head[..end]).map_err(|_| ErrorCode::ProtocolError)?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (100..=999).contains(s) && version.starts_with("HTTP/1."))
            .ok_or(ErrorCode::ProtocolError)?;
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':').ok_or(ErrorCode::ProtocolError)?;
            let (name, value) = (name.to_ascii_lowercase(), value.trim().as_bytes().to_vec());
            if !is_field(&name, &value) {
                return Err(ErrorCode::ProtocolError);
            }
            headers.push((name, value));
        }
        Ok((status, headers))
    }

    fn body(&mut self, headers: &[(String, Vec<u8>)], max: usize) -> Result<Vec<u8>, ErrorCode> {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
        };
        let too_large = ErrorCode::ResponseBodySize(max as u64);
        if header("transfer-encoding").is_some_and(|te| te.trim().ends_with("chunked")) {
            let mut decoder = ChunkedDecoder::new(max, 8 * 1024);
            let mut body = Vec::new();
            loop {
                let used = decoder.feed(&self.buf, &mut body).map_err(|e| match e {
                    crate::chunked::ChunkError::TooLarge => too_large.clone(),
                    _ => ErrorCode::ProtocolError,
                })?;
                self.buf.drain(..used);
                if decoder.is_done() {
                    return Ok(body);
                }
                if self.fill()? == 0 {
                    return Err(ErrorCode::ResponseIncomplete);
                }
            }
        }
        let length = match header("content-length") {
            Some(v) => Some(
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| ErrorCode::ProtocolError)?,
            ),
            None => None,
        };
        if length.is_some_and(|n| n > max) {
            return Err(too_large);
        }
        loop {
            match length {
                Some(n) if self.buf.len() >= n => {
                    self.buf.truncate(n);
                    return Ok(std::mem::take(&mut self.buf));
                }
                _ if self.buf.len() > max => return Err(too_large),
                _ => {}
            }
            if self.fill()? == 0 {
                return match length {
                    Some(_) => Err(ErrorCode::ResponseIncomplete),
                    None => Ok(std::mem::take(&mut self.buf)),
                };
            }
        }
    }
}
