//! A response that leaves while its guest still runs (WASI 0.3 handlers):
//! the guest's host functions send the head and then the body, piece by
//! piece, through a [`Responder`] on the worker thread; the connection's I/O
//! thread takes them from the [`ResponseStream`] and writes them as they come.
//!
//! The two are joined by a bounded channel of at most [`QUEUED_CHUNKS`]
//! pieces of at most [`MAX_CHUNK`] bytes, so a response never costs more
//! memory than that however large it is: a client that reads slowly makes
//! the guest's writes wait (backpressure) instead of growing a buffer, and
//! the wait ends at the invocation's deadline.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_channel::{Receiver, Sender, TrySendError};

/// The largest piece of body sent at once; a longer write is split.
pub const MAX_CHUNK: usize = 64 * 1024;

/// Pieces that may wait for the connection before the guest's writes block.
pub const QUEUED_CHUNKS: usize = 4;

/// What the client gets before the body: status and headers, and the body's
/// length when the guest knows it (`None`: chunked, or close-delimited for
/// HTTP/1.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub content_length: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespondError {
    #[error("the client went away")]
    Closed,
    #[error("the invocation's deadline passed while the client was not reading the response")]
    Deadline,
    #[error("the response body is over {0} bytes (max_response_bytes)")]
    TooLarge(usize),
    #[error("the response head was already sent")]
    HeadAlreadySent,
    #[error("the response body was written before its head")]
    NoHead,
    #[error(
        "the response body is {written} bytes, but its head declared content-length {declared}"
    )]
    Length { declared: u64, written: u64 },
}

enum Message {
    Head(ResponseHead),
    Chunk(Vec<u8>),
    /// The body is complete. A channel that closes without it is an abort.
    End,
}

/// Why a response stopped before its end, for the I/O thread's log line.
type AbortReason = Arc<Mutex<Option<String>>>;

/// A response's two ends. `max_body_bytes` bounds the body (the app's
/// `max_response_bytes`); `deadline` bounds every wait for the client
/// (`None`: the invocation has no deadline, and only the connection's write
/// timeout ends a wait, by closing the stream).
pub fn channel(max_body_bytes: usize, deadline: Option<Instant>) -> (Responder, ResponseStream) {
    let (send, recv) = async_channel::bounded(QUEUED_CHUNKS);
    let reason = AbortReason::default();
    let responder = Responder {
        send,
        deadline,
        max_body_bytes,
        declared: None,
        head_sent: false,
        written: 0,
        broken: None,
        reason: reason.clone(),
    };
    (responder, ResponseStream { recv, reason })
}

/// The guest's end, used on its worker thread; every call blocks while the
/// connection's buffer is full. Dropped without [`Responder::finish`] after
/// the head, the response is aborted: the client sees it end incomplete.
pub struct Responder {
    send: Sender<Message>,
    deadline: Option<Instant>,
    max_body_bytes: usize,
    declared: Option<u64>,
    head_sent: bool,
    written: u64,
    /// The error that made the response unusable: every later call returns it.
    broken: Option<RespondError>,
    reason: AbortReason,
}

impl Responder {
    /// Sends the status and headers; once.
    pub fn send_head(&mut self, head: ResponseHead) -> Result<(), RespondError> {
        self.usable()?;
        if self.head_sent {
            return Err(RespondError::HeadAlreadySent);
        }
        if let Some(length) = head.content_length
            && length > self.max_body_bytes as u64
        {
            return self.fail_with(RespondError::TooLarge(self.max_body_bytes));
        }
        self.declared = head.content_length;
        self.head_sent = true;
        self.send(Message::Head(head))
    }

    /// Sends the next bytes of the body, waiting while the client is behind.
    pub fn send_body(&mut self, bytes: &[u8]) -> Result<(), RespondError> {
        self.usable()?;
        if !self.head_sent {
            return Err(RespondError::NoHead);
        }
        let written = self.written.saturating_add(bytes.len() as u64);
        if written > self.max_body_bytes as u64 {
            return self.fail_with(RespondError::TooLarge(self.max_body_bytes));
        }
        if let Some(declared) = self.declared
            && written > declared
        {
            return self.fail_with(RespondError::Length { declared, written });
        }
        for piece in bytes.chunks(MAX_CHUNK) {
            self.send(Message::Chunk(piece.to_vec()))?;
            self.written += piece.len() as u64;
        }
        Ok(())
    }

    /// Ends the body; the client sees a complete response once it has read
    /// what is queued. A body shorter than its declared length is an abort.
    pub fn finish(mut self) -> Result<(), RespondError> {
        self.usable()?;
        if !self.head_sent {
            return Err(RespondError::NoHead);
        }
        if let Some(declared) = self.declared
            && self.written != declared
        {
            let written = self.written;
            return self.fail_with(RespondError::Length { declared, written });
        }
        self.send(Message::End)
    }

    /// Aborts the response (the guest failed mid-body); `reason` is logged
    /// with the request.
    pub fn fail(self, reason: impl std::fmt::Display) {
        self.record(reason.to_string());
    }

    fn usable(&self) -> Result<(), RespondError> {
        self.broken.clone().map_or(Ok(()), Err)
    }

    /// Marks the response unusable: the stream ends in an abort, saying why.
    fn fail_with(&mut self, error: RespondError) -> Result<(), RespondError> {
        if error != RespondError::Closed {
            self.record(error.to_string());
        }
        self.broken = Some(error.clone());
        Err(error)
    }

    fn record(&self, reason: String) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(reason);
    }

    fn send(&mut self, message: Message) -> Result<(), RespondError> {
        // Most sends find room; only a full channel needs a timer.
        let message = match self.send.try_send(message) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(_)) => return self.fail_with(RespondError::Closed),
            Err(TrySendError::Full(message)) => message,
        };
        let sent = block_until(self.deadline, self.send.send(message));
        match sent {
            Some(Ok(())) => Ok(()),
            Some(Err(_)) => self.fail_with(RespondError::Closed),
            None => self.fail_with(RespondError::Deadline),
        }
    }
}

/// Blocks the worker thread on `wait` until it is ready (`Some`) or the
/// invocation's deadline passes (`None`; without a deadline, it waits).
pub(crate) fn block_until<T>(
    deadline: Option<Instant>,
    wait: impl std::future::Future<Output = T>,
) -> Option<T> {
    let expire = async {
        match deadline {
            Some(deadline) => smol::Timer::at(deadline).await,
            None => smol::future::pending().await,
        };
        None
    };
    smol::future::block_on(smol::future::or(async { Some(wait.await) }, expire))
}

/// The connection's end, on its I/O thread.
pub struct ResponseStream {
    recv: Receiver<Message>,
    reason: AbortReason,
}

/// What comes next in a streamed body.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyEvent {
    Chunk(Vec<u8>),
    /// The body is complete.
    End,
    /// The body stopped before its end; the reason is for the log.
    Aborted(String),
}

impl ResponseStream {
    /// The response head; `None` when the guest ended without sending one.
    pub async fn head(&mut self) -> Option<ResponseHead> {
        match self.recv.recv().await {
            Ok(Message::Head(head)) => Some(head),
            // A Responder sends nothing before its head.
            _ => None,
        }
    }

    /// The next piece of the body, after [`ResponseStream::head`]; call it
    /// until `End` or `Aborted`.
    pub async fn next(&mut self) -> BodyEvent {
        match self.recv.recv().await {
            Ok(Message::Chunk(bytes)) => BodyEvent::Chunk(bytes),
            Ok(Message::End) => BodyEvent::End,
            // A Responder sends one head; this cannot come.
            Ok(Message::Head(_)) | Err(_) => BodyEvent::Aborted(
                self.reason
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .unwrap_or_else(|| {
                        "the guest ended without finishing the response body".to_owned()
                    }),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn head(content_length: Option<u64>) -> ResponseHead {
        ResponseHead {
            status: 200,
            headers: vec![("content-type".into(), b"text/plain".to_vec())],
            content_length,
        }
    }

    fn far() -> Option<Instant> {
        Some(Instant::now() + Duration::from_secs(60))
    }

    #[test]
    fn head_body_and_end_arrive_in_order() {
        let (mut r, mut s) = channel(1 << 20, far());
        let guest = std::thread::spawn(move || {
            r.send_head(head(None))?;
            r.send_body(b"hello ")?;
            r.send_body(b"")?;
            r.send_body(b"world")?;
            r.finish()
        });
        smol::block_on(async {
            assert_eq!(s.head().await, Some(head(None)));
            let mut body = Vec::new();
            loop {
                match s.next().await {
                    BodyEvent::Chunk(c) => body.extend(c),
                    BodyEvent::End => break,
                    BodyEvent::Aborted(why) => panic!("aborted: {why}"),
                }
            }
            assert_eq!(body, b"hello world");
        });
        assert_eq!(guest.join().expect("guest"), Ok(()));
    }

    #[test]
    fn a_long_write_is_split_into_bounded_pieces() {
        let (mut r, mut s) = channel(1 << 20, far());
        let guest = std::thread::spawn(move || {
            r.send_head(head(Some(3 * MAX_CHUNK as u64)))?;
            r.send_body(&vec![7; 3 * MAX_CHUNK])?;
            r.finish()
        });
        smol::block_on(async {
            s.head().await.expect("head");
            for _ in 0..3 {
                match s.next().await {
                    BodyEvent::Chunk(c) => assert_eq!(c.len(), MAX_CHUNK),
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(s.next().await, BodyEvent::End);
        });
        assert_eq!(guest.join().expect("guest"), Ok(()));
    }

    #[test]
    fn a_reader_that_does_not_read_blocks_the_writer_until_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(300);
        let (mut r, mut s) = channel(1 << 20, Some(deadline));
        let (sent, progress) = std::sync::mpsc::channel();
        let guest = std::thread::spawn(move || {
            r.send_head(head(None))?;
            loop {
                r.send_body(&[1; 1000])?;
                sent.send(()).expect("progress");
            }
        });
        // The head takes one place in the channel, each write one more.
        let result: Result<(), RespondError> = guest.join().expect("guest");
        assert_eq!(result, Err(RespondError::Deadline));
        assert!(Instant::now() >= deadline);
        assert_eq!(progress.try_iter().count(), QUEUED_CHUNKS - 1);
        smol::block_on(async {
            s.head().await.expect("head");
            for _ in 0..QUEUED_CHUNKS - 1 {
                assert!(matches!(s.next().await, BodyEvent::Chunk(_)));
            }
            match s.next().await {
                BodyEvent::Aborted(why) => assert!(why.contains("deadline"), "{why}"),
                other => panic!("{other:?}"),
            }
        });
    }

    #[test]
    fn a_dropped_stream_closes_the_responder() {
        let (mut r, s) = channel(1 << 20, far());
        r.send_head(head(None)).expect("head");
        drop(s);
        assert_eq!(r.send_body(b"x"), Err(RespondError::Closed));
        // Every later call says the same.
        assert_eq!(r.send_body(b"x"), Err(RespondError::Closed));
        assert_eq!(r.finish(), Err(RespondError::Closed));
    }

    #[test]
    fn a_body_past_the_bound_is_refused_and_aborts() {
        let (mut r, mut s) = channel(10, far());
        r.send_head(head(None)).expect("head");
        r.send_body(&[0; 6]).expect("first 6 bytes");
        assert_eq!(r.send_body(&[0; 5]), Err(RespondError::TooLarge(10)));
        assert_eq!(r.send_body(&[0; 1]), Err(RespondError::TooLarge(10)));
        drop(r);
        smol::block_on(async {
            s.head().await.expect("head");
            assert_eq!(s.next().await, BodyEvent::Chunk(vec![0; 6]));
            match s.next().await {
                BodyEvent::Aborted(why) => assert!(why.contains("over 10 bytes"), "{why}"),
                other => panic!("{other:?}"),
            }
        });
        let (mut r, _s) = channel(10, far());
        assert_eq!(r.send_head(head(Some(11))), Err(RespondError::TooLarge(10)));
    }

    #[test]
    fn a_responder_dropped_mid_body_is_an_abort() {
        let (mut r, mut s) = channel(1 << 20, far());
        r.send_head(head(None)).expect("head");
        r.send_body(b"part").expect("body");
        drop(r);
        smol::block_on(async {
            s.head().await.expect("head");
            assert_eq!(s.next().await, BodyEvent::Chunk(b"part".to_vec()));
            assert_eq!(
                s.next().await,
                BodyEvent::Aborted("the guest ended without finishing the response body".into())
            );
        });
        let (mut r, mut s) = channel(1 << 20, far());
        r.send_head(head(None)).expect("head");
        r.fail("trapped: unreachable");
        smol::block_on(async {
            s.head().await.expect("head");
            assert_eq!(
                s.next().await,
                BodyEvent::Aborted("trapped: unreachable".into())
            );
        });
    }

    #[test]
    fn a_declared_length_must_be_kept() {
        let (mut r, mut s) = channel(1 << 20, far());
        r.send_head(head(Some(4))).expect("head");
        r.send_body(b"abc").expect("body");
        assert_eq!(
            r.finish(),
            Err(RespondError::Length {
                declared: 4,
                written: 3
            })
        );
        smol::block_on(async {
            s.head().await.expect("head");
            assert_eq!(s.next().await, BodyEvent::Chunk(b"abc".to_vec()));
            assert!(matches!(s.next().await, BodyEvent::Aborted(_)));
        });
        let (mut r, _s) = channel(1 << 20, far());
        r.send_head(head(Some(2))).expect("head");
        assert_eq!(
            r.send_body(b"abc"),
            Err(RespondError::Length {
                declared: 2,
                written: 3
            })
        );
    }

    #[test]
    fn the_head_is_sent_once_and_first() {
        let (mut r, mut s) = channel(1 << 20, far());
        assert_eq!(r.send_body(b"x"), Err(RespondError::NoHead));
        r.send_head(head(None)).expect("head");
        assert_eq!(r.send_head(head(None)), Err(RespondError::HeadAlreadySent));
        drop(r);
        smol::block_on(async {
            assert_eq!(s.head().await, Some(head(None)));
        });
        // A guest that ends before its head leaves the stream without one.
        let (r, mut s) = channel(1 << 20, far());
        drop(r);
        assert_eq!(smol::block_on(s.head()), None);
    }
}
