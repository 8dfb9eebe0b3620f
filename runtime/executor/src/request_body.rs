//! A request body that reaches its guest while it arrives (WASI 0.3
//! handlers): the connection's I/O thread puts each piece it reads into a
//! [`BodyFeeder`], and the guest's reads of its body stream take them from
//! the [`BodyReader`] on the worker thread.
//!
//! The two are joined by a bounded channel of at most [`QUEUED_PIECES`]
//! pieces, so a body costs no more memory than that however large it is: a
//! guest that reads slowly leaves the connection unread (TCP's own flow
//! control then holds the client back), and a guest that waits for a piece
//! that has not arrived waits until the invocation's deadline.

use std::time::Instant;

use async_channel::{Receiver, Sender};
use flint_engine::component::{SourceFailure, SourceRead, StreamSource};

use crate::respond::block_until;

/// Pieces that may wait for the guest before the connection stops reading.
pub const QUEUED_PIECES: usize = 4;

enum Piece {
    Bytes(Vec<u8>),
    /// The body is complete. A channel that closes without it is a body
    /// that ended early.
    End,
    /// The body stopped arriving; the text says why.
    Broken(String),
}

/// A body's two ends; `deadline` bounds every wait of the guest for the
/// next piece (`None`: the invocation has no deadline, and the connection's
/// read timeout ends a wait, by breaking the body).
pub fn channel(deadline: Option<Instant>) -> (BodyFeeder, BodyReader) {
    let (send, recv) = async_channel::bounded(QUEUED_PIECES);
    let reader = BodyReader {
        recv,
        deadline,
        held: Vec::new(),
        at: 0,
    };
    (BodyFeeder { send }, reader)
}

/// The connection's end, on its I/O thread.
pub struct BodyFeeder {
    send: Sender<Piece>,
}

impl BodyFeeder {
    /// Hands the guest the next piece, waiting while it has not taken the
    /// ones before. `false`: the guest no longer reads its body (it dropped
    /// the stream, or its invocation ended).
    pub async fn send(&self, bytes: Vec<u8>) -> bool {
        self.send.send(Piece::Bytes(bytes)).await.is_ok()
    }

    /// The body is complete.
    pub async fn finish(self) {
        let _ = self.send.send(Piece::End).await;
    }

    /// The body stopped before its end: the guest's next read ends its
    /// invocation with `why`.
    pub async fn fail(self, why: impl Into<String>) {
        let _ = self.send.send(Piece::Broken(why.into())).await;
    }
}

/// The guest's end: the source of the stream its body is read from.
pub struct BodyReader {
    recv: Receiver<Piece>,
    deadline: Option<Instant>,
    /// What is left of a piece larger than the read that took it.
    held: Vec<u8>,
    at: usize,
}

impl StreamSource for BodyReader {
    fn read(&mut self, max: usize) -> SourceRead {
        let max = max.max(1);
        if self.at >= self.held.len() {
            // A piece already waiting is taken at once: `block_until` polls it first.
            let piece = match block_until(self.deadline, self.recv.recv()) {
                Some(received) => received.map_err(drop),
                None => return SourceRead::Failed(SourceFailure::Deadline),
            };
            match piece {
                Ok(Piece::Bytes(bytes)) if bytes.len() <= max => return SourceRead::Bytes(bytes),
                Ok(Piece::Bytes(bytes)) => {
                    self.held = bytes;
                    self.at = 0;
                }
                Ok(Piece::End) => return SourceRead::End,
                Ok(Piece::Broken(why)) => return SourceRead::Failed(SourceFailure::Broken(why)),
                Err(()) => {
                    return SourceRead::Failed(SourceFailure::Broken(
                        "the request body ended before it was complete".into(),
                    ));
                }
            }
        }
        let end = self.held.len().min(self.at + max);
        let bytes = self.held[self.at..end].to_vec();
        self.at = end;
        SourceRead::Bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn bytes(read: SourceRead) -> Vec<u8> {
        match read {
            SourceRead::Bytes(bytes) => bytes,
            _ => panic!("expected bytes"),
        }
    }

    #[test]
    fn pieces_reach_the_reader_in_the_sizes_it_asks_for() {
        let (feeder, mut reader) = channel(None);
        smol::block_on(async {
            assert!(feeder.send(b"hello".to_vec()).await);
            assert!(feeder.send(b"!".to_vec()).await);
            feeder.finish().await;
        });
        assert_eq!(bytes(reader.read(3)), b"hel");
        assert_eq!(bytes(reader.read(10)), b"lo");
        assert_eq!(bytes(reader.read(10)), b"!");
        assert!(matches!(reader.read(10), SourceRead::End));
    }

    #[test]
    fn a_read_waits_for_a_piece_that_is_still_arriving() {
        let (feeder, mut reader) = channel(None);
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            smol::block_on(async {
                assert!(feeder.send(b"late".to_vec()).await);
                feeder.finish().await;
            });
        });
        assert_eq!(bytes(reader.read(64)), b"late");
        assert!(matches!(reader.read(64), SourceRead::End));
        writer.join().unwrap();
    }

    #[test]
    fn a_body_that_stops_early_fails_the_read_and_never_looks_complete() {
        let (feeder, mut reader) = channel(None);
        smol::block_on(async {
            assert!(feeder.send(b"part".to_vec()).await);
            feeder.fail("the client closed the connection").await;
        });
        assert_eq!(bytes(reader.read(64)), b"part");
        assert!(matches!(
            reader.read(64),
            SourceRead::Failed(SourceFailure::Broken(why)) if why == "the client closed the connection"
        ));
        // A feeder dropped without finishing (its connection went away).
        let (feeder, mut reader) = channel(None);
        drop(feeder);
        assert!(matches!(
            reader.read(64),
            SourceRead::Failed(SourceFailure::Broken(_))
        ));
    }

    #[test]
    fn a_read_that_waits_past_the_deadline_is_a_deadline_hit() {
        let (_feeder, mut reader) = channel(Some(Instant::now() + Duration::from_millis(30)));
        assert!(matches!(
            reader.read(64),
            SourceRead::Failed(SourceFailure::Deadline)
        ));
    }

    #[test]
    fn the_feeder_hears_when_the_guest_stops_reading() {
        let (feeder, reader) = channel(None);
        drop(reader);
        assert!(!smol::block_on(feeder.send(b"unread".to_vec())));
    }

    #[test]
    fn the_channel_holds_a_bounded_number_of_pieces() {
        let (feeder, _reader) = channel(None);
        smol::block_on(async {
            for _ in 0..QUEUED_PIECES {
                assert!(feeder.send(vec![0; 16]).await);
            }
            let blocked = smol::future::or(
                async {
                    feeder.send(vec![0; 16]).await;
                    false
                },
                async {
                    smol::Timer::after(Duration::from_millis(30)).await;
                    true
                },
            );
            assert!(blocked.await, "a full channel makes the feeder wait");
        });
    }
}
