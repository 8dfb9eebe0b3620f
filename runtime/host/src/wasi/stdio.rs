//! Where a guest's standard streams go: a capped buffer the executor reads
//! back (WAGI stdout), or the log, line by line with the component id.
//! Shared by WASI preview 1 (descriptors 1 and 2) and WASI 0.2's
//! `wasi:cli/stdout|stderr`.

use std::io::Write;
use std::sync::{Arc, RwLock};

/// Guest stdout, cut off at the response limit rather than buffered whole.
pub struct CappedBuffer {
    pub data: Vec<u8>,
    pub limit: usize,
    /// The guest tried to write past `limit`: the output is incomplete.
    pub overflowed: bool,
}

impl CappedBuffer {
    pub fn new(limit: usize) -> Self {
        Self {
            data: Vec::new(),
            limit,
            overflowed: false,
        }
    }

    /// Bytes that may still be written.
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.data.len())
    }
}

impl Write for CappedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.room() {
            self.overflowed = true;
            return Err(std::io::Error::other("response size limit reached"));
        }
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Guest stderr (and a Spin guest's stdout), logged line by line with the component id.
pub struct GuestLog {
    component: Arc<str>,
    line: Vec<u8>,
}

/// Longer lines are logged in pieces, so a guest cannot grow this buffer.
pub const MAX_LOG_LINE: usize = 4096;

impl GuestLog {
    pub fn new(component: Arc<str>) -> Self {
        Self {
            component,
            line: Vec::new(),
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.line);
        tracing::info!(target: "flint::guest", component = %self.component, "{}", line.trim_end());
        self.line.clear();
    }

    /// Takes `buf`, logging every complete line (and every full piece of a long one).
    pub fn push(&mut self, buf: &[u8]) {
        for &b in buf {
            if b == b'\n' {
                self.emit();
            } else {
                self.line.push(b);
                if self.line.len() >= MAX_LOG_LINE {
                    self.emit();
                }
            }
        }
    }

    /// The unfinished line, for tests.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> &[u8] {
        &self.line
    }
}

impl Write for GuestLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for GuestLog {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}

/// Where one of a guest's output streams goes.
pub enum Sink {
    /// Kept for the executor, which reads it back (WAGI's response).
    Buffer(Arc<RwLock<CappedBuffer>>),
    /// The log, line by line.
    Log(GuestLog),
    /// Nowhere (a link check).
    Discard,
}

/// Why a write to a [`Sink`] did not happen.
#[derive(Debug, PartialEq, Eq)]
pub struct SinkFull {
    pub limit: usize,
}

impl Sink {
    /// A fresh capped buffer and the sink writing to it.
    pub fn buffer(limit: usize) -> (Self, Arc<RwLock<CappedBuffer>>) {
        let buffer = Arc::new(RwLock::new(CappedBuffer::new(limit)));
        (Sink::Buffer(buffer.clone()), buffer)
    }

    /// Another sink writing where this one does (WASI 0.3's stdout is a
    /// stream the host keeps apart from the instance's state): the same
    /// buffer, or the same log with a line of its own.
    pub fn share(&self) -> Sink {
        match self {
            Sink::Buffer(buffer) => Sink::Buffer(buffer.clone()),
            Sink::Log(log) => Sink::Log(GuestLog::new(log.component.clone())),
            Sink::Discard => Sink::Discard,
        }
    }

    /// Bytes that may be written now; `None` when there is no limit.
    pub fn room(&self) -> Option<usize> {
        match self {
            Sink::Buffer(buffer) => Some(buffer.read().unwrap_or_else(|e| e.into_inner()).room()),
            Sink::Log(_) | Sink::Discard => None,
        }
    }

    /// Writes all of `bytes` or nothing; past a buffer's limit the buffer is
    /// marked as overflowed, so the executor reports the output as too large.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), SinkFull> {
        match self {
            Sink::Buffer(buffer) => {
                let mut buffer = buffer.write().unwrap_or_else(|e| e.into_inner());
                let limit = buffer.limit;
                buffer.write_all(bytes).map_err(|_| SinkFull { limit })
            }
            Sink::Log(log) => {
                log.push(bytes);
                Ok(())
            }
            Sink::Discard => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_buffer_refuses_what_does_not_fit_and_remembers() {
        let (mut sink, buffer) = Sink::buffer(5);
        assert_eq!(sink.room(), Some(5));
        sink.write(b"abc").expect("fits");
        assert_eq!(sink.room(), Some(2));
        assert_eq!(sink.write(b"def"), Err(SinkFull { limit: 5 }));
        let buffer = buffer.read().expect("lock");
        assert_eq!(buffer.data, b"abc");
        assert!(buffer.overflowed);
    }

    #[test]
    fn the_log_keeps_at_most_one_bounded_line() {
        let mut log = GuestLog::new("c".into());
        log.push(b"one\ntwo");
        assert_eq!(log.pending(), b"two");
        log.push(&vec![b'x'; 3 * MAX_LOG_LINE]);
        assert!(log.pending().len() < MAX_LOG_LINE);
    }
}
