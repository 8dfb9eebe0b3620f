//! The MySQL client/server protocol's framing and field encodings: packets
//! (a 3-byte length, a sequence number, at most 16 MiB - 1 of payload, longer
//! payloads split), the integer and string encodings inside them, and the
//! OK, ERR and EOF packets. Everything read is checked against what is left
//! of the packet, so a short or lying packet is an error, never a panic.

use std::io::{Read, Write};

use crate::outbound_tcp::Conn;

/// The largest payload one packet carries; a payload this long continues in
/// the next packet.
pub(super) const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// Why a packet could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("no answer within the outbound timeout")]
    Timeout,
    #[error("the server sent packet {got} where {expected} was due")]
    OutOfOrder { expected: u8, got: u8 },
    #[error("the server sent a packet of more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("malformed {0}")]
    Malformed(&'static str),
}

impl From<std::io::Error> for WireError {
    fn from(e: std::io::Error) -> Self {
        // A socket timeout reads as "would block" on Unix.
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Self::Timeout,
            _ => Self::Io(e),
        }
    }
}

/// A connection's packets in both directions, with the sequence number of
/// the command in progress.
pub(super) struct Packets {
    conn: Conn,
    seq: u8,
    /// Bytes read from the connection but not yet consumed: reading a socket
    /// in large pieces rather than a header and a payload at a time.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Packets {
    pub(super) fn new(conn: Conn) -> Self {
        Self {
            conn,
            seq: 0,
            buf: vec![0; 16 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// A new command starts a new sequence.
    pub(super) fn begin_command(&mut self) {
        self.seq = 0;
    }

    /// The connection, for the TLS upgrade; `None` if the server has sent
    /// bytes that were not asked for yet (they would be lost under TLS).
    pub(super) fn into_parts(self) -> Option<(Conn, u8)> {
        (self.start == self.end).then_some((self.conn, self.seq))
    }

    pub(super) fn with_seq(conn: Conn, seq: u8) -> Self {
        let mut packets = Self::new(conn);
        packets.seq = seq;
        packets
    }

    fn read_exact(&mut self, mut out: &mut [u8]) -> std::io::Result<()> {
        while !out.is_empty() {
            if self.start == self.end {
                // Large reads go straight to their destination.
                if out.len() >= self.buf.len() {
                    let n = read_some(&mut self.conn, out)?;
                    out = &mut out[n..];
                    continue;
                }
                self.start = 0;
                self.end = read_some(&mut self.conn, &mut self.buf)?;
            }
            let n = out.len().min(self.end - self.start);
            out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
            self.start += n;
            out = &mut out[n..];
        }
        Ok(())
    }

    /// The next payload (joined across continuation packets), refused once
    /// it would exceed `limit` bytes, before anything is allocated for it.
    pub(super) fn read(&mut self, limit: usize) -> Result<Vec<u8>, WireError> {
        let mut payload = Vec::new();
        loop {
            let mut header = [0u8; 4];
            self.read_exact(&mut header)?;
            let len =
                usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
            if header[3] != self.seq {
                return Err(WireError::OutOfOrder {
                    expected: self.seq,
                    got: header[3],
                });
            }
            self.seq = self.seq.wrapping_add(1);
            if payload.len() + len > limit {
                return Err(WireError::TooLarge { limit });
            }
            let start = payload.len();
            payload.resize(start + len, 0);
            self.read_exact(&mut payload[start..])?;
            if len < MAX_PAYLOAD {
                return Ok(payload);
            }
        }
    }

    /// Sends `payload` as one or more packets.
    pub(super) fn write(&mut self, payload: &[u8]) -> Result<(), WireError> {
        let mut chunks = payload.chunks(MAX_PAYLOAD);
        let mut out = Vec::with_capacity(payload.len().min(MAX_PAYLOAD) + 4);
        loop {
            let chunk = chunks.next().unwrap_or(&[]);
            let len = chunk.len() as u32;
            out.clear();
            out.extend_from_slice(&len.to_le_bytes()[..3]);
            out.push(self.seq);
            out.extend_from_slice(chunk);
            self.seq = self.seq.wrapping_add(1);
            self.conn.write_all(&out)?;
            // A payload that fills its last packet ends with an empty one.
            if chunk.len() < MAX_PAYLOAD {
                break;
            }
        }
        self.conn.flush()?;
        Ok(())
    }
}

fn read_some(conn: &mut Conn, out: &mut [u8]) -> std::io::Result<usize> {
    match conn.read(out)? {
        0 => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        )),
        n => Ok(n),
    }
}

/// A cursor over one payload; every read is bounds-checked.
pub(super) struct Buf<'a> {
    data: &'a [u8],
    /// What is being parsed, for the error.
    what: &'static str,
}

impl<'a> Buf<'a> {
    pub(super) fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { data, what }
    }

    fn short(&self) -> WireError {
        WireError::Malformed(self.what)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.data.len() {
            return Err(self.short());
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(super) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    pub(super) fn u16(&mut self) -> Result<u16, WireError> {
        self.array().map(u16::from_le_bytes)
    }

    pub(super) fn u32(&mut self) -> Result<u32, WireError> {
        self.array().map(u32::from_le_bytes)
    }

    pub(super) fn u64(&mut self) -> Result<u64, WireError> {
        self.array().map(u64::from_le_bytes)
    }

    pub(super) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// A length-encoded integer. `0xfb` (NULL in a text row) and `0xff` (an
    /// ERR packet's header) are not integers.
    pub(super) fn lenenc(&mut self) -> Result<u64, WireError> {
        Ok(match self.u8()? {
            n @ 0..=0xfa => u64::from(n),
            0xfc => u64::from(self.u16()?),
            0xfd => {
                let [a, b, c] = self.array()?;
                u64::from(u32::from_le_bytes([a, b, c, 0]))
            }
            0xfe => self.u64()?,
            _ => return Err(self.short()),
        })
    }

    /// A length-encoded string: its length is checked against the packet
    /// before anything is taken.
    pub(super) fn lenenc_bytes(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.lenenc()?;
        let len = usize::try_from(len).map_err(|_| self.short())?;
        self.bytes(len)
    }

    /// A NUL-terminated string (the NUL is consumed, not returned).
    pub(super) fn nul_bytes(&mut self) -> Result<&'a [u8], WireError> {
        let end = self
            .data
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.short())?;
        let s = &self.data[..end];
        self.data = &self.data[end + 1..];
        Ok(s)
    }
}

/// Appends a length-encoded integer.
pub(super) fn put_lenenc(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfa => out.push(n as u8),
        0xfb..=0xffff => {
            out.push(0xfc);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xff_ffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Appends a length-encoded string.
pub(super) fn put_lenenc_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_lenenc(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// An ERR packet: what the server said went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ERROR {state} ({code}): {message}")]
pub struct ServerError {
    // The field order is mysql_async's, whose derived `Debug` is part of
    // Spin's error texts.
    pub code: u16,
    pub message: String,
    pub state: String,
}

impl ServerError {
    /// Parses an ERR packet (`0xff` first). A packet without a SQL state
    /// (servers send those before the handshake) has `HY000`, the general
    /// error.
    pub(super) fn parse(payload: &[u8]) -> Result<Self, WireError> {
        let mut buf = Buf::new(payload, "error packet");
        if buf.u8()? != 0xff {
            return Err(buf.short());
        }
        let code = buf.u16()?;
        let mut rest = buf.rest();
        let mut state = "HY000".to_owned();
        if let [b'#', s @ ..] = rest
            && s.len() >= 5
        {
            state = String::from_utf8_lossy(&s[..5]).into_owned();
            rest = &s[5..];
        }
        Ok(Self {
            code,
            message: String::from_utf8_lossy(rest).into_owned(),
            state,
        })
    }
}

/// The server status bit saying another result follows this one.
pub(super) const MORE_RESULTS_EXIST: u16 = 0x0008;

/// The status flags of an OK packet (`0x00`, or `0xfe` ending a result set
/// under `CLIENT_DEPRECATE_EOF`).
pub(super) fn ok_status(payload: &[u8]) -> Result<u16, WireError> {
    let mut buf = Buf::new(payload, "OK packet");
    buf.u8()?;
    buf.lenenc()?; // affected rows
    buf.lenenc()?; // last insert id
    buf.u16()
}

/// The status flags of an EOF packet (`0xfe`, before `CLIENT_DEPRECATE_EOF`).
pub(super) fn eof_status(payload: &[u8]) -> Result<u16, WireError> {
    let mut buf = Buf::new(payload, "EOF packet");
    buf.u8()?;
    buf.u16()?; // warnings
    buf.u16()
}

/// Whether `payload` is an EOF packet or the OK packet that replaces it
/// (`0xfe` first): after column definitions, or among binary rows, which
/// all start with `0x00`.
pub(super) fn is_eof(payload: &[u8]) -> bool {
    payload.first() == Some(&0xfe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_encoded_integers_round_trip() {
        for n in [
            0,
            1,
            0xfa,
            0xfb,
            0xfc,
            0xffff,
            0x1_0000,
            0xff_ffff,
            0x100_0000,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_lenenc(&mut out, n);
            let mut buf = Buf::new(&out, "test");
            assert_eq!(buf.lenenc().unwrap(), n, "{n:#x}");
            assert!(buf.is_empty());
        }
        assert_eq!(Buf::new(&[0xfc, 0x34, 0x12], "t").lenenc().unwrap(), 0x1234);
    }

    #[test]
    fn truncated_fields_are_errors() {
        for bad in [
            &[][..],
            &[0xfc, 1],
            &[0xfd, 1, 2],
            &[0xfe, 1, 2, 3, 4, 5, 6, 7],
            &[0xfb],
            &[0xff],
        ] {
            assert!(Buf::new(bad, "t").lenenc().is_err(), "{bad:?}");
        }
        // A string longer than what is left.
        assert!(Buf::new(&[5, b'a', b'b'], "t").lenenc_bytes().is_err());
        // A string claiming 2^64 - 1 bytes.
        let mut huge = vec![0xfe];
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(Buf::new(&huge, "t").lenenc_bytes().is_err());
        assert!(Buf::new(b"no nul", "t").nul_bytes().is_err());
        assert!(Buf::new(&[1, 2, 3], "t").u32().is_err());
    }

    #[test]
    fn error_packets_with_and_without_a_state() {
        let mut packet = vec![0xff, 0x15, 0x04];
        packet.extend_from_slice(b"#28000Access denied for user 'u'@'h'");
        let e = ServerError::parse(&packet).unwrap();
        assert_eq!(
            e.to_string(),
            "ERROR 28000 (1045): Access denied for user 'u'@'h'"
        );
        let early = [&[0xff, 0x69, 0x04][..], b"Host 'x' is not allowed"].concat();
        let e = ServerError::parse(&early).unwrap();
        assert_eq!((e.code, e.state.as_str()), (1129, "HY000"));
        assert_eq!(e.message, "Host 'x' is not allowed");
        assert!(ServerError::parse(&[0xff, 1]).is_err());
        assert!(ServerError::parse(&[0x00, 1, 1]).is_err());
    }

    #[test]
    fn ok_and_eof_packets() {
        assert_eq!(ok_status(&[0, 1, 0, 0x0a, 0, 0, 0]).unwrap(), 0x000a);
        assert_eq!(ok_status(&[0xfe, 0xfc, 1, 0, 0, 8, 0]).unwrap(), 8);
        assert!(ok_status(&[0, 1, 0, 0x0a]).is_err());
        assert_eq!(eof_status(&[0xfe, 0, 0, 0x22, 0]).unwrap(), 0x22);
        assert!(is_eof(&[0xfe, 0, 0, 2, 0]));
        assert!(!is_eof(&[0x00, 0xfe]));
    }
}
