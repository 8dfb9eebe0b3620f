//! Request framing in front of picoserve.
//!
//! picoserve understands only `Content-Length` bodies, never answers
//! `Expect: 100-continue`, and reports an oversized head as a misleading 400.
//! Rather than special-casing each gap in the handler, every byte a connection
//! reads passes through this framer, which sees one request at a time:
//! - it holds back a request head until it is complete, answering 431 (and
//!   closing) when it outgrows `max_head_bytes`;
//! - it answers 413 for a declared body over `max_body_bytes`, 400 for a
//!   malformed `Content-Length`, 501 for transfer codings other than `chunked`;
//! - it decodes a chunked body (bounded by `max_body_bytes`) and hands picoserve
//!   the same request rewritten with a `Content-Length`;
//! - it sends `100 Continue` when the client asked for it and the body is acceptable;
//! - it never returns bytes past the end of the current request, so picoserve
//!   only reads the next head after it has written the current response, which
//!   makes the interim and error responses written here safe on pipelined
//!   connections.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use flint_host::chunked::{ChunkError, ChunkedDecoder};

use crate::metrics::{HttpMetrics, Refusal};
use flint_host::http1::is_token;

const READ_CHUNK: usize = 4096;

/// The bounds the framer enforces.
#[derive(Clone, Copy, Debug)]
pub struct FrameLimits {
    pub max_head_bytes: usize,
    /// Header fields in one head.
    pub max_headers: usize,
    pub max_body_bytes: usize,
    /// How long a keep-alive connection may sit idle before its next request.
    pub keep_alive: Duration,
    /// How long a client may take over a head (and a chunked body) once it has
    /// started one, and to start its first request.
    pub read_timeout: Duration,
}

enum State {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Handing picoserve a head (and a decoded chunked body), then `body` raw bytes.
    Emit {
        out: Vec<u8>,
        pos: usize,
        body: u64,
    },
    /// Passing through the rest of a `Content-Length` body.
    Body {
        remaining: u64,
    },
    Closed,
}

/// A rejection decided by the framer: status, reason phrase and explanation.
#[derive(Debug, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub reason: &'static str,
    pub message: String,
}

impl Reject {
    fn new(status: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            reason,
            message: message.into(),
        }
    }
}

/// How the body of a complete head is framed.
#[derive(Debug, PartialEq, Eq)]
pub struct Framing {
    pub chunked: bool,
    pub content_length: u64,
    pub expect_continue: bool,
}

/// Whether a connection is idle (waiting for a request to start), and since
/// when, so that a full server can close the longest-idle connection to
/// admit a new one: idle connections cannot starve real clients.
#[derive(Default)]
pub struct Activity {
    /// Milliseconds since `epoch` when the connection went idle; 0 while busy.
    idle_since_ms: std::sync::atomic::AtomicU64,
}

impl Activity {
    fn set_idle(&self, epoch: Instant, idle: bool) {
        let ms = if idle {
            (epoch.elapsed().as_millis() as u64).max(1)
        } else {
            0
        };
        self.idle_since_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// When the connection went idle (ms since the epoch), if it is idle.
    pub fn idle_since(&self) -> Option<u64> {
        match self
            .idle_since_ms
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => None,
            ms => Some(ms),
        }
    }
}

pub struct RequestFramer<S> {
    stream: S,
    peer: SocketAddr,
    limits: FrameLimits,
    activity: std::sync::Arc<Activity>,
    /// Where refusals are counted.
    metrics: std::sync::Arc<HttpMetrics>,
    epoch: Instant,
    /// Bytes read from the socket but not yet handed on.
    input: Vec<u8>,
    state: State,
    served_one: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> RequestFramer<S> {
    pub fn new(
        stream: S,
        peer: SocketAddr,
        limits: FrameLimits,
        activity: std::sync::Arc<Activity>,
        metrics: std::sync::Arc<HttpMetrics>,
        epoch: Instant,
    ) -> Self {
        Self {
            stream,
            peer,
            limits,
            activity,
            metrics,
            epoch,
            input: Vec::new(),
            state: State::Head,
            served_one: false,
        }
    }

    /// Reads the next bytes of the current request for picoserve; `Ok(0)` ends the connection.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match &mut self.state {
                State::Closed => return Ok(0),
                State::Head => match self.next_head().await? {
                    Some(state) => self.state = state,
                    None => self.state = State::Closed,
                },
                State::Emit { out, pos, body } => {
                    let n = (out.len() - *pos).min(buf.len());
                    buf[..n].copy_from_slice(&out[*pos..*pos + n]);
                    *pos += n;
                    if *pos == out.len() {
                        self.state = match *body {
                            0 => State::Head,
                            remaining => State::Body { remaining },
                        };
                    }
                    return Ok(n);
                }
                State::Body { remaining } => {
                    let want = buf
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    let n = if self.input.is_empty() {
                        self.stream.read(&mut buf[..want]).await?
                    } else {
                        let n = want.min(self.input.len());
                        buf[..n].copy_from_slice(&self.input[..n]);
                        self.input.drain(..n);
                        n
                    };
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::Head;
                    }
                    return Ok(n);
                }
            }
        }
    }

    /// Reads a whole head and decides what picoserve sees next; `None` closes.
    async fn next_head(&mut self) -> io::Result<Option<State>> {
        // The framer owns these timeouts because picoserve's "start reading"
        // timeout would otherwise also cover holding back a whole head and
        // decoding a chunked body.
        let idle = if self.served_one {
            self.limits.keep_alive
        } else {
            self.limits.read_timeout
        };
        self.served_one = true;
        if self.input.is_empty() {
            self.activity.set_idle(self.epoch, true);
            let filled = self.fill_before(Instant::now() + idle).await?;
            self.activity.set_idle(self.epoch, false);
            match filled {
                // Idle too long, or the client went away between requests: nothing to answer.
                None | Some(0) => return Ok(None),
                Some(_) => {}
            }
        }
        let deadline = Instant::now() + self.limits.read_timeout;
        let mut scanned = 0;
        let head_len = loop {
            if let Some(len) = head_end(&self.input, &mut scanned) {
                break len;
            }
            if self.input.len() > self.limits.max_head_bytes {
                return self.reject(&[], head_too_large(self.limits)).await;
            }
            match self.fill_before(deadline).await? {
                None => return self.reject(&[], request_timeout(self.limits)).await,
                // The client went away mid-head: nothing to answer.
                Some(0) => return Ok(None),
                Some(_) => {}
            }
        };
        if head_len > self.limits.max_head_bytes {
            return self.reject(&[], head_too_large(self.limits)).await;
        }
        let head: Vec<u8> = self.input.drain(..head_len).collect();
        let framing = match frame(&head, self.limits) {
            Ok(f) => f,
            Err(r) => return self.reject(&head, r).await,
        };
        if framing.expect_continue {
            self.stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await?;
            self.stream.flush().await?;
        }
        if !framing.chunked {
            return Ok(Some(State::Emit {
                out: head,
                pos: 0,
                body: framing.content_length,
            }));
        }
        let body = match self.decode_chunked(deadline).await? {
            Ok(body) => body,
            Err(r) => return self.reject(&head, r).await,
        };
        let mut out = rewrite_head_with_length(&head, body.len());
        out.extend_from_slice(&body);
        Ok(Some(State::Emit {
            out,
            pos: 0,
            body: 0,
        }))
    }

    async fn decode_chunked(&mut self, deadline: Instant) -> io::Result<Result<Vec<u8>, Reject>> {
        let mut decoder =
            ChunkedDecoder::new(self.limits.max_body_bytes, self.limits.max_head_bytes);
        let mut body = Vec::new();
        loop {
            match decoder.feed(&self.input, &mut body) {
                Ok(consumed) => {
                    self.input.drain(..consumed);
                    if decoder.is_done() {
                        return Ok(Ok(body));
                    }
                }
                Err(ChunkError::TooLarge) => {
                    return Ok(Err(Reject::new(
                        413,
                        "Payload Too Large",
                        format!(
                            "the chunked request body exceeds {} bytes",
                            self.limits.max_body_bytes
                        ),
                    )));
                }
                Err(e) => {
                    return Ok(Err(Reject::new(
                        400,
                        "Bad Request",
                        format!("bad chunked body: {e}"),
                    )));
                }
            }
            match self.fill_before(deadline).await? {
                None => return Ok(Err(request_timeout(self.limits))),
                Some(0) => {
                    return Ok(Err(Reject::new(
                        400,
                        "Bad Request",
                        "connection closed inside a chunked body",
                    )));
                }
                Some(_) => {}
            }
        }
    }

    /// Reads more input, or `None` once `deadline` passes. Cancel-safe: a
    /// dropped read leaves `input` as it was.
    async fn fill_before(&mut self, deadline: Instant) -> io::Result<Option<usize>> {
        let mut chunk = [0u8; READ_CHUNK];
        let read = async { Some(self.stream.read(&mut chunk).await) };
        let expire = async {
            smol::Timer::at(deadline).await;
            None
        };
        match smol::future::or(read, expire).await {
            None => Ok(None),
            Some(n) => {
                let n = n?;
                self.input.extend_from_slice(&chunk[..n]);
                Ok(Some(n))
            }
        }
    }

    /// Logs and answers a refused request, then closes: after a framing error
    /// the byte stream cannot be trusted. `head` is empty when none was read.
    async fn reject(&mut self, head: &[u8], reject: Reject) -> io::Result<Option<State>> {
        let line = String::from_utf8_lossy(head.split(|&b| b == b'\n').next().unwrap_or_default());
        let mut words = line.split_whitespace();
        let (method, path) = (words.next().unwrap_or("-"), words.next().unwrap_or("-"));
        tracing::warn!(target: "flint::http", peer = %self.peer, method, path, status = reject.status, "rejected: {}", reject.message);
        self.metrics.refused(match reject.status {
            408 => Refusal::Timeout,
            413 => Refusal::BodyTooLarge,
            431 => Refusal::HeadTooLarge,
            _ => Refusal::BadRequest,
        });
        let body = format!("{}\n", reject.message);
        let response = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            reject.status,
            reject.reason,
            body.len()
        );
        self.stream.write_all(response.as_bytes()).await?;
        self.stream.flush().await?;
        self.input.clear();
        Ok(None)
    }
}

fn request_timeout(limits: FrameLimits) -> Reject {
    Reject::new(
        408,
        "Request Timeout",
        format!(
            "the request was not received within {} ms",
            limits.read_timeout.as_millis()
        ),
    )
}

fn head_too_large(limits: FrameLimits) -> Reject {
    Reject::new(
        431,
        "Request Header Fields Too Large",
        format!(
            "the request line and headers exceed {} bytes",
            limits.max_head_bytes
        ),
    )
}

/// The length of the head (through its blank line) once `input` holds all of it.
/// Like picoserve, the first line is always the request line and the head ends at
/// the first later line that is empty or whitespace. `scanned` resumes the search.
fn head_end(input: &[u8], scanned: &mut usize) -> Option<usize> {
    let mut line_start = 0;
    let mut first = true;
    for (i, &b) in input.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        let line = &input[line_start..i];
        if !first && line.iter().all(u8::is_ascii_whitespace) && i >= *scanned {
            return Some(i + 1);
        }
        first = false;
        line_start = i + 1;
    }
    *scanned = input.len();
    None
}

/// Header lines of a head: (name, value), skipping the request line.
fn header_lines(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        Some((trim(&line[..colon]), trim(&line[colon + 1..])))
    })
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Decides how a request's body is framed, or why the request is refused.
pub fn frame(head: &[u8], limits: FrameLimits) -> Result<Framing, Reject> {
    let bad = |m: &str| Reject::new(400, "Bad Request", m);
    let request_line = trim(head.split(|&b| b == b'\n').next().unwrap_or_default());
    if !valid_request_line(request_line) {
        return Err(bad("malformed request line"));
    }
    // picoserve silently deletes NUL bytes from headers and trusts any name;
    // refusing what the two parsers could read differently keeps framing in one place.
    let mut lines = head.split(|&b| b == b'\n').skip(1);
    if header_lines(head).count() > limits.max_headers {
        return Err(Reject::new(
            431,
            "Request Header Fields Too Large",
            format!(
                "more than {} header fields (max_request_headers)",
                limits.max_headers
            ),
        ));
    }
    if lines.any(|line| {
        let line = trim(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return !line.is_empty();
        };
        !is_token(&line[..colon])
            || line[colon..]
                .iter()
                .any(|&b| b.is_ascii_control() && b != b'\t')
    }) {
        return Err(bad("malformed header line"));
    }
    let mut content_length: Option<u64> = None;
    let mut transfer_encodings: Vec<&[u8]> = Vec::new();
    let mut expect_continue = false;
    for (name, value) in header_lines(head) {
        if name.eq_ignore_ascii_case(b"content-length") {
            let len = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| bad("malformed Content-Length header"))?;
            if content_length.is_some_and(|l| l != len) {
                return Err(bad("conflicting Content-Length headers"));
            }
            content_length = Some(len);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encodings.extend(value.split(|&b| b == b',').map(trim));
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    let http11 = request_line.ends_with(b"HTTP/1.1");
    let chunked = match transfer_encodings.as_slice() {
        [] => false,
        [te] if te.eq_ignore_ascii_case(b"chunked") => true,
        _ => {
            return Err(Reject::new(
                501,
                "Not Implemented",
                "only the chunked transfer coding is supported",
            ));
        }
    };
    let content_length = if chunked {
        0
    } else {
        content_length.unwrap_or(0)
    };
    if content_length > limits.max_body_bytes as u64 {
        return Err(Reject::new(
            413,
            "Payload Too Large",
            format!(
                "the request body of {content_length} bytes exceeds {} bytes",
                limits.max_body_bytes
            ),
        ));
    }
    Ok(Framing {
        chunked,
        content_length,
        expect_continue: expect_continue && http11 && (chunked || content_length > 0),
    })
}

/// `METHOD SP origin-form SP HTTP/1.x` (RFC 9112 §3), checked here because
/// picoserve accepts any three words.
fn valid_request_line(line: &[u8]) -> bool {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    is_token(method)
        && target.first() == Some(&b'/')
        && target.iter().all(|b| b.is_ascii_graphic())
        && (version == b"HTTP/1.1" || version == b"HTTP/1.0")
}

/// The head with its framing headers replaced by the decoded body's length.
fn rewrite_head_with_length(head: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + 24);
    let mut lines = head.split_inclusive(|&b| b == b'\n');
    if let Some(request_line) = lines.next() {
        out.extend_from_slice(request_line);
    }
    for line in lines {
        let name = line
            .split(|&b| b == b':')
            .next()
            .map(trim)
            .unwrap_or_default();
        let framing = name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"content-length");
        if trim(line).is_empty() {
            out.extend_from_slice(format!("content-length: {len}\r\n").as_bytes());
            out.extend_from_slice(line);
        } else if !framing {
            out.extend_from_slice(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    const LIMITS: FrameLimits = FrameLimits {
        max_head_bytes: 256,
        max_headers: 8,
        max_body_bytes: 64,
        keep_alive: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
    };

    /// A socket that yields its input in small pieces and records what is written.
    struct FakeSocket {
        input: Vec<u8>,
        pos: usize,
        piece: usize,
        written: Vec<u8>,
    }

    impl AsyncRead for FakeSocket {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.piece).min(self.input.len() - self.pos);
            let pos = self.pos;
            buf[..n].copy_from_slice(&self.input[pos..pos + n]);
            self.pos += n;
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for FakeSocket {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.written.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Everything picoserve would read, and everything the framer wrote itself.
    fn run(input: &[u8], piece: usize) -> (Vec<u8>, String) {
        let socket = FakeSocket {
            input: input.to_vec(),
            pos: 0,
            piece,
            written: Vec::new(),
        };
        let mut framer = RequestFramer::new(
            socket,
            "127.0.0.1:9".parse().expect("addr"),
            LIMITS,
            std::sync::Arc::default(),
            std::sync::Arc::default(),
            Instant::now(),
        );
        let mut seen = Vec::new();
        smol::block_on(async {
            let mut buf = [0u8; 7];
            loop {
                let n = framer.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
        });
        (
            seen,
            String::from_utf8_lossy(&framer.stream.written).into_owned(),
        )
    }

    #[test]
    fn passes_length_framed_requests_through_in_order() {
        let input = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n";
        for piece in [1, 5, 4096] {
            let (seen, written) = run(input, piece);
            assert_eq!(seen, input, "piece {piece}");
            assert_eq!(written, "");
        }
    }

    #[test]
    fn decodes_chunked_bodies_into_content_length() {
        let input = b"POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: t\r\n\r\nGET /n HTTP/1.1\r\n\r\n";
        for piece in [1, 3, 4096] {
            let (seen, written) = run(input, piece);
            assert_eq!(
                String::from_utf8_lossy(&seen),
                "POST /e HTTP/1.1\r\nHost: x\r\ncontent-length: 9\r\n\r\nWikipediaGET /n HTTP/1.1\r\n\r\n"
            );
            assert_eq!(written, "");
        }
    }

    #[test]
    fn answers_expect_continue_only_for_acceptable_bodies() {
        let (_, written) = run(
            b"PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
            4096,
        );
        assert_eq!(written, "HTTP/1.1 100 Continue\r\n\r\n");
        let (seen, written) = run(
            b"PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 65\r\n\r\n",
            4096,
        );
        assert!(seen.is_empty());
        assert!(written.starts_with("HTTP/1.1 413 "), "{written}");
    }

    #[test]
    fn rejects_and_closes() {
        let cases: [(&[u8], &str); 13] = [
            (b"GARBAGE\r\n\r\n", "HTTP/1.1 400 "),
            (
                b"POST / HTTP/1.1\r\nContent-Length\0: 99\r\n\r\n",
                "HTTP/1.1 400 ",
            ),
            (b"POST / HTTP/1.1\r\nBad Name: 1\r\n\r\n", "HTTP/1.1 400 "),
            (b"POST / HTTP/1.1\r\nNoColon\r\n\r\n", "HTTP/1.1 400 "),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
                "HTTP/1.1 501 ",
            ),
            (b"GET /a HTTP/1.1 junk\r\n\r\n", "HTTP/1.1 400 "),
            (b"G\x01T /a HTTP/1.1\r\n\r\n", "HTTP/1.1 400 "),
            (b"GET /a FTP/1.1\r\n\r\n", "HTTP/1.1 400 "),
            (
                b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                "HTTP/1.1 400 ",
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "HTTP/1.1 400 ",
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                "HTTP/1.1 501 ",
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "HTTP/1.1 400 ",
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n",
                "HTTP/1.1 413 ",
            ),
        ];
        for (input, status) in cases {
            let (seen, written) = run(input, 4096);
            assert!(seen.is_empty(), "{}", String::from_utf8_lossy(input));
            assert!(written.starts_with(status), "{written}");
            assert!(written.contains("connection: close"));
        }
    }

    #[test]
    fn oversized_heads_get_431() {
        let mut input = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        input.extend(std::iter::repeat_n(b'a', 300));
        input.extend_from_slice(b"\r\n\r\n");
        for piece in [1, 4096] {
            let (seen, written) = run(&input, piece);
            assert!(seen.is_empty());
            assert!(written.starts_with("HTTP/1.1 431 "), "{written}");
        }
    }

    #[test]
    fn eof_between_requests_is_a_clean_close() {
        let (seen, written) = run(b"", 4096);
        assert!(seen.is_empty() && written.is_empty());
    }
}

/// Property tests: request heads come from clients and must never panic the host.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::{FrameLimits, frame};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn request_heads_never_panic(head in "[ -~\t]{0,60}(\r\n[ -~\t]{0,40}){0,6}\r\n\r\n") {
            let limits = FrameLimits {
                max_head_bytes: 8192,
                max_headers: 4,
                max_body_bytes: 1024,
                keep_alive: std::time::Duration::from_secs(1),
                read_timeout: std::time::Duration::from_secs(1),
            };
            let _ = frame(head.as_bytes(), limits);
        }
    }
}
