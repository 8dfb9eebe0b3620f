//! picoserve's runtime glue for smol: a timer, and a connection whose read half
//! is the request framer and whose write half buffers until picoserve flushes.

use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use picoserve::io::{BaseWrite, ErrorType, Read, Write};
use smol::io::AsyncWriteExt;
use smol::net::TcpStream;

use crate::framing::{FrameLimits, RequestFramer};

/// Marker for picoserve's `Runtime` type parameter.
pub struct SmolRuntime;

pub struct SmolTimer;

impl picoserve::Timer<SmolRuntime> for SmolTimer {
    async fn delay(&self, duration: picoserve::time::Duration) {
        smol::Timer::after(Duration::from_millis(duration.as_millis())).await;
    }
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct IoError(#[from] pub std::io::Error);

impl picoserve::io::Error for IoError {
    fn kind(&self) -> picoserve::io::ErrorKind {
        picoserve::io::ErrorKind::Other
    }
}

pub struct FramedReader(RequestFramer<TcpStream>);

impl ErrorType for FramedReader {
    type Error = IoError;
}

impl Read for FramedReader {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        Ok(self.0.read(buf).await?)
    }
}

/// Collects a response head and writes it on `flush`: picoserve writes header
/// lines one by one and flushes after the head (the service writes bodies on
/// the stream itself).
pub struct BufferedWriter {
    stream: TcpStream,
    buf: Vec<u8>,
    head_written: HeadWritten,
}

/// Says that the service has written the current response's head itself.
/// A WASI 0.3 guest may answer while its request body is still arriving,
/// and picoserve can write a head only once the body has been read; so the
/// service writes that head on the stream, and the head picoserve writes
/// afterwards for the same response (to end the exchange) is dropped.
#[derive(Clone, Default)]
pub struct HeadWritten(Arc<AtomicBool>);

impl HeadWritten {
    /// The next head picoserve writes is dropped.
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

impl ErrorType for BufferedWriter {
    type Error = IoError;
}

impl BaseWrite for BufferedWriter {
    async fn write(&mut self, data: &[u8]) -> Result<usize, IoError> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    async fn flush(&mut self) -> Result<(), IoError> {
        if self.head_written.take() {
            self.buf.clear();
        }
        if !self.buf.is_empty() {
            strip_default_keep_alive(&mut self.buf);
            self.stream.write_all(&self.buf).await?;
            self.buf.clear();
        }
        Ok(self.stream.flush().await?)
    }
}

impl Write for BufferedWriter {
    async fn write_with<F: FnOnce(picoserve::mem::BorrowedCursor<'_>) -> R, R>(
        &mut self,
        f: F,
    ) -> Result<R, IoError> {
        let mut scratch = [0u8; 256];
        let mut scratch = picoserve::mem::BorrowedBuffer::new(&mut scratch);
        let out = f(scratch.unfilled());
        self.buf.extend_from_slice(scratch.filled());
        Ok(out)
    }
}

/// The header picoserve adds to every HTTP/1.1 response that keeps the
/// connection open.
const KEEP_ALIVE_LINE: &[u8] = b"Connection: keep-alive\r\n";

/// Drops `Connection: keep-alive` from a response head: it is HTTP/1.1's
/// default, Spin does not send it, and clients that compare response
/// headers (Spin's conformance runner) refuse a header they did not expect.
/// `Connection: close` stays.
fn strip_default_keep_alive(head: &mut Vec<u8>) {
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(head.len(), |at| at + 2);
    if let Some(at) = head[..end]
        .windows(KEEP_ALIVE_LINE.len())
        .position(|w| w == KEEP_ALIVE_LINE)
        .filter(|&at| at >= 2 && &head[at - 2..at] == b"\r\n")
    {
        head.drain(at..at + KEEP_ALIVE_LINE.len());
    }
}

pub struct Connection {
    stream: TcpStream,
    reader: FramedReader,
    writer: BufferedWriter,
}

impl Connection {
    pub fn new(
        stream: TcpStream,
        peer: SocketAddr,
        limits: FrameLimits,
        activity: Arc<crate::framing::Activity>,
        metrics: Arc<crate::metrics::HttpMetrics>,
        epoch: std::time::Instant,
        head_written: HeadWritten,
    ) -> Self {
        Self {
            reader: FramedReader(RequestFramer::new(
                stream.clone(),
                peer,
                limits,
                activity,
                metrics,
                epoch,
            )),
            writer: BufferedWriter {
                stream: stream.clone(),
                buf: Vec::new(),
                head_written,
            },
            stream,
        }
    }
}

impl picoserve::io::Socket<SmolRuntime> for Connection {
    type Error = IoError;
    type ReadHalf<'a> = &'a mut FramedReader;
    type WriteHalf<'a> = &'a mut BufferedWriter;

    fn split(&mut self) -> (Self::ReadHalf<'_>, Self::WriteHalf<'_>) {
        (&mut self.reader, &mut self.writer)
    }

    async fn abort<T: picoserve::Timer<SmolRuntime>>(
        self,
        _timeouts: &picoserve::Timeouts,
        _timer: &T,
    ) -> Result<(), picoserve::Error<IoError>> {
        // Already closed by the peer is as good as aborted.
        let _ = self.stream.shutdown(Shutdown::Both);
        Ok(())
    }

    async fn shutdown<T: picoserve::Timer<SmolRuntime>>(
        mut self,
        timeouts: &picoserve::Timeouts,
        timer: &T,
    ) -> Result<(), picoserve::Error<IoError>> {
        let _ = self.stream.shutdown(Shutdown::Write);
        // Drain until the client closes so that it sees our FIN before any RST.
        let mut buf = [0u8; 256];
        let drain = async {
            use smol::io::AsyncReadExt;
            while matches!(self.stream.read(&mut buf).await, Ok(n) if n > 0) {}
        };
        let _ = timer.run_with_timeout(timeouts.read_request, drain).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_default_keep_alive_header_is_dropped() {
        let mut head = b"HTTP/1.1 200 \r\nx: 1\r\nConnection: keep-alive\r\n\r\n".to_vec();
        strip_default_keep_alive(&mut head);
        assert_eq!(head, b"HTTP/1.1 200 \r\nx: 1\r\n\r\n");
        let close = b"HTTP/1.1 200 \r\nConnection: close\r\n\r\n".to_vec();
        let mut kept = close.clone();
        strip_default_keep_alive(&mut kept);
        assert_eq!(kept, close);
        // Only a whole header line, never part of another header's value.
        let value = b"HTTP/1.1 200 \r\nx-note: Connection: keep-alive\r\n\r\n".to_vec();
        let mut untouched = value.clone();
        strip_default_keep_alive(&mut untouched);
        assert_eq!(untouched, value);
    }
}
