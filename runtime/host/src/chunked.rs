//! An incremental decoder for `Transfer-Encoding: chunked` request bodies
//! (RFC 9112 §7.1), bounded so that a client cannot grow memory without limit.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("invalid chunk size line")]
    BadSize,
    #[error("chunk data not followed by CRLF")]
    MissingCrlf,
    #[error("chunk size line or trailer section too long")]
    LineTooLong,
    #[error("body too large")]
    TooLarge,
}

enum Step {
    Size {
        value: Option<u64>,
        in_ext: bool,
        len: usize,
    },
    Data(u64),
    DataCr,
    DataLf,
    Trailers {
        line_len: usize,
        total: usize,
    },
    Done,
}

pub struct ChunkedDecoder {
    step: Step,
    max_body: usize,
    /// Bounds chunk-size lines (with extensions) and the trailer section.
    max_line: usize,
}

const NEXT_SIZE: Step = Step::Size {
    value: None,
    in_ext: false,
    len: 0,
};

impl ChunkedDecoder {
    pub fn new(max_body: usize, max_line: usize) -> Self {
        Self {
            step: NEXT_SIZE,
            max_body,
            max_line,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.step, Step::Done)
    }

    /// Decodes as much of `input` as possible into `body`; returns the bytes
    /// consumed. Bytes after the final chunk are left for the next request.
    pub fn feed(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, ChunkError> {
        let (max_body, max_line) = (self.max_body, self.max_line);
        let mut i = 0;
        while i < input.len() {
            if let Step::Data(remaining) = &mut self.step {
                let n = (input.len() - i).min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                body.extend_from_slice(&input[i..i + n]);
                i += n;
                *remaining -= n as u64;
                if *remaining == 0 {
                    self.step = Step::DataCr;
                }
                continue;
            }
            let b = input[i];
            let next = match &mut self.step {
                Step::Done => break,
                Step::Size { value, in_ext, len } => {
                    *len += 1;
                    if *len > max_line {
                        return Err(ChunkError::LineTooLong);
                    }
                    match b {
                        b'\n' => match *value {
                            None => return Err(ChunkError::BadSize),
                            Some(0) => Some(Step::Trailers {
                                line_len: 0,
                                total: 0,
                            }),
                            // `body.len() <= max_body` always holds, so this cannot wrap.
                            Some(v) if v > (max_body - body.len()) as u64 => {
                                return Err(ChunkError::TooLarge);
                            }
                            Some(v) => Some(Step::Data(v)),
                        },
                        b'\r' => None,
                        _ if *in_ext => None,
                        b';' | b' ' | b'\t' if value.is_some() => {
                            *in_ext = true;
                            None
                        }
                        _ => {
                            let digit = (b as char).to_digit(16).ok_or(ChunkError::BadSize)?;
                            *value = Some(
                                value
                                    .unwrap_or(0)
                                    .checked_mul(16)
                                    .and_then(|v| v.checked_add(u64::from(digit)))
                                    .ok_or(ChunkError::BadSize)?,
                            );
                            None
                        }
                    }
                }
                Step::DataCr if b == b'\r' => Some(Step::DataLf),
                Step::DataCr | Step::DataLf if b == b'\n' => Some(NEXT_SIZE),
                Step::DataCr | Step::DataLf => return Err(ChunkError::MissingCrlf),
                Step::Trailers { line_len, total } => {
                    *total += 1;
                    if *total > max_line {
                        return Err(ChunkError::LineTooLong);
                    }
                    match b {
                        b'\n' if *line_len == 0 => Some(Step::Done),
                        b'\n' => Some(Step::Trailers {
                            line_len: 0,
                            total: *total,
                        }),
                        b'\r' => None,
                        _ => {
                            *line_len += 1;
                            None
                        }
                    }
                }
                // Handled before the match.
                Step::Data(_) => None,
            };
            i += 1;
            if let Some(next) = next {
                self.step = next;
            }
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8], max: usize) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut d = ChunkedDecoder::new(max, 64);
        let mut body = Vec::new();
        // Feed one byte at a time to exercise every resumption point.
        let mut consumed = 0;
        for i in 0..input.len() {
            consumed += d.feed(&input[i..=i], &mut body)?;
            if d.is_done() {
                break;
            }
        }
        assert!(d.is_done(), "not done");
        Ok((body, consumed))
    }

    #[test]
    fn decodes() {
        let (body, used) =
            decode(b"3\r\nabc\r\nA;x=y\r\n0123456789\r\n0\r\n\r\nNEXT", 100).expect("ok");
        assert_eq!(body, b"abc0123456789");
        assert_eq!(used, 32);
        let (body, _) = decode(b"1\nz\n0\nT: 1\n\n", 100).expect("bare LF");
        assert_eq!(body, b"z");
    }

    #[test]
    fn rejects() {
        let run = |input: &[u8], max| {
            let mut d = ChunkedDecoder::new(max, 32);
            d.feed(input, &mut Vec::new())
        };
        assert_eq!(run(b"g\r\n", 100), Err(ChunkError::BadSize));
        assert_eq!(run(b"\r\n", 100), Err(ChunkError::BadSize));
        assert_eq!(run(b"2\r\nabX", 100), Err(ChunkError::MissingCrlf));
        assert_eq!(
            run(b"ffffffffffffffffff\r\n", 100),
            Err(ChunkError::BadSize)
        );
        assert_eq!(run(b"5\r\n", 4), Err(ChunkError::TooLarge));
        // A huge second chunk must not wrap the size check around.
        assert_eq!(
            run(b"1\r\na\r\nffffffffffffffff\r\n", 100),
            Err(ChunkError::TooLarge)
        );
        assert_eq!(
            run(b"1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 100),
            Err(ChunkError::LineTooLong)
        );
    }
}
