//! A small blocking Redis client speaking RESP2: guests' outbound
//! connections (`fermyon:spin/redis`, `spin:redis/redis`) and the Redis
//! trigger's subscription. It connects through [`outbound_tcp`] (plain for
//! `redis://`, TLS for `rediss://`), authenticates and selects the database
//! as Spin's client (the `redis` crate) does, and reads every reply within
//! a byte budget the caller gives, so that a hostile or broken server can
//! neither exhaust memory nor the stack.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use flint_config::RedisAddress;

use crate::blocked_networks::BlockedNetworks;
use crate::outbound_tcp::{self, Conn, ConnectError};

/// A reply, as the `redis` crate's `Value` for RESP2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Nil,
    Status(String),
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<Reply>),
    /// `-CODE detail`, as the server sent it.
    Error(String),
}

/// The most of a reply [`Reply::brief`] quotes.
const BRIEF: usize = 200;

impl Reply {
    /// The reply's `Debug` form cut at [`BRIEF`] characters, for an error:
    /// the whole of one may be as large as the instance's memory (and its
    /// `Debug` several times that), and its content is the server's.
    pub fn brief(&self) -> String {
        /// Refuses to grow past `BRIEF`, which stops the formatting there.
        struct Capped(String);
        impl std::fmt::Write for Capped {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                let room = BRIEF.saturating_sub(self.0.len());
                match s.char_indices().nth(room) {
                    None => {
                        self.0.push_str(s);
                        Ok(())
                    }
                    Some((cut, _)) => {
                        self.0.push_str(&s[..cut]);
                        Err(std::fmt::Error)
                    }
                }
            }
        }
        let mut out = Capped(String::new());
        match std::fmt::write(&mut out, format_args!("{self:?}")) {
            Ok(()) => out.0,
            Err(_) => out.0 + "…",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{address}: {reason}")]
    Io { address: String, reason: String },
    #[error("{address}: not a RESP2 reply: {what}")]
    Protocol { address: String, what: String },
    #[error("{address}: query result exceeds limit of {limit} bytes")]
    TooLarge { address: String, limit: usize },
    /// The server answered with an error, worded as the `redis` crate words it.
    #[error("{0}")]
    Server(String),
    #[error("{address}: the connection broke earlier ({reason}); open a new one")]
    Broken { address: String, reason: String },
}

impl RedisError {
    /// Whether the connection can still be used after this.
    fn keeps_connection(&self) -> bool {
        matches!(self, RedisError::Server(_))
    }
}

/// Longest status, error or number line read, whatever the budget.
const MAX_LINE: usize = 64 * 1024;
/// Deepest nesting of arrays read (replies of `EXEC` or `COMMAND` nest two
/// or three levels); deeper is refused rather than recursed into.
const MAX_DEPTH: usize = 8;
/// What one element of a reply costs in the budget beyond its bytes, so
/// that a million empty strings cannot pass as small.
const ELEMENT_COST: usize = std::mem::size_of::<Reply>();

/// How to reach the server.
pub struct Connect<'a> {
    pub address: &'a RedisAddress,
    pub blocked: &'a BlockedNetworks,
    pub connect_timeout: Duration,
    /// Bounds each read and write.
    pub io_timeout: Duration,
    /// `rediss://`: the TLS configuration; the server name is the host.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// One connection, used by one caller at a time.
pub struct Client {
    stream: BufReader<Conn>,
    /// The address without credentials, for errors.
    address: String,
    /// Why the connection is unusable, once a read or write failed midway.
    broken: Option<String>,
}

/// Budget for the replies of AUTH and SELECT.
const HANDSHAKE_BUDGET: usize = 4096;

impl Client {
    /// Connects, then `AUTH [user] password` and `SELECT db` when the
    /// address asks for them, as the `redis` crate does.
    pub fn connect(how: &Connect<'_>) -> Result<Self, RedisError> {
        let address = how.address;
        let tcp = outbound_tcp::connect(
            &address.host,
            address.port,
            how.blocked,
            how.connect_timeout,
            how.io_timeout,
        )?;
        let conn = match &how.tls {
            Some(config) => Conn::Tls(Box::new(outbound_tcp::tls_handshake(
                config.clone(),
                &address.host,
                tcp,
            )?)),
            None => Conn::Plain(tcp),
        };
        let mut client = Client {
            stream: BufReader::new(conn),
            address: address.display(),
            broken: None,
        };
        if let Some(password) = &address.password {
            let mut auth: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &address.username {
                auth.push(user.as_bytes());
            }
            auth.push(password.as_bytes());
            client.command(&auth, HANDSHAKE_BUDGET)?;
        }
        if address.db != 0 {
            let db = address.db.to_string();
            client.command(&[b"SELECT", db.as_bytes()], HANDSHAKE_BUDGET)?;
        }
        Ok(client)
    }

    /// The address without credentials.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends one command and reads its reply within `budget` bytes. A server
    /// error, anywhere in the reply, is `RedisError::Server`.
    pub fn command(&mut self, args: &[&[u8]], budget: usize) -> Result<Reply, RedisError> {
        self.send(args)?;
        let reply = self.read(budget)?;
        match first_error(&reply) {
            Some(error) => Err(RedisError::Server(server_error(error))),
            None => Ok(reply),
        }
    }

    fn send(&mut self, args: &[&[u8]]) -> Result<(), RedisError> {
        let mut frame = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            frame.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            frame.extend_from_slice(arg);
            frame.extend_from_slice(b"\r\n");
        }
        self.usable()?;
        let written = self.stream.get_mut().write_all(&frame);
        let flushed = written.and_then(|()| self.stream.get_mut().flush());
        flushed.map_err(|e| {
            self.fail(RedisError::Io {
                address: self.address.clone(),
                reason: format!("sending: {e}"),
            })
        })
    }

    /// Reads one reply; any failure but a server error leaves the connection
    /// unusable (the rest of the reply is still on the wire).
    fn read(&mut self, budget: usize) -> Result<Reply, RedisError> {
        self.read_with(budget, None).map(|(reply, _)| reply)
    }

    /// [`Self::read`]; a bulk string longer than `skip_over` is read past
    /// and left empty, its length returned, rather than counted against the
    /// budget (the trigger's messages, which nobody can ask for again).
    fn read_with(
        &mut self,
        budget: usize,
        skip_over: Option<usize>,
    ) -> Result<(Reply, Option<usize>), RedisError> {
        self.usable()?;
        let mut reader = ReplyReader {
            stream: &mut self.stream,
            address: &self.address,
            budget,
            limit: budget,
            skip_over,
            skipped: None,
        };
        let reply = reader.reply(0);
        let skipped = reader.skipped;
        reply.map(|r| (r, skipped)).map_err(|e| self.fail(e))
    }

    fn usable(&self) -> Result<(), RedisError> {
        match &self.broken {
            Some(reason) => Err(RedisError::Broken {
                address: self.address.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn fail(&mut self, error: RedisError) -> RedisError {
        if !error.keeps_connection() {
            self.broken = Some(error.to_string());
        }
        error
    }

    /// `SUBSCRIBE` to `channels` (literal names, as Spin's trigger does), and
    /// waits for every confirmation.
    pub fn subscribe(mut self, channels: &[String]) -> Result<Subscriber, RedisError> {
        let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
        args.extend(channels.iter().map(|c| c.as_bytes()));
        self.send(&args)?;
        // A confirmation or a message is a few words besides its channel.
        let framing =
            HANDSHAKE_BUDGET.saturating_add(channels.iter().map(String::len).max().unwrap_or(0));
        for _ in channels {
            let reply = self.read(framing)?;
            match &reply {
                Reply::Array(items)
                    if items.first() == Some(&Reply::Bulk(b"subscribe".to_vec())) => {}
                Reply::Error(error) => return Err(RedisError::Server(server_error(error))),
                other => {
                    return Err(RedisError::Protocol {
                        address: self.address.clone(),
                        what: format!("expected a subscribe confirmation, got {}", other.brief()),
                    });
                }
            }
        }
        Ok(Subscriber {
            client: self,
            framing,
            ping_sent: false,
        })
    }
}

/// The first `-ERR` in a reply, at any depth.
fn first_error(reply: &Reply) -> Option<&str> {
    match reply {
        Reply::Error(error) => Some(error),
        Reply::Array(items) => items.iter().find_map(first_error),
        _ => None,
    }
}

/// A server error as the `redis` crate's `Display` words it (what Spin
/// hands guests in `error::other`): the known codes as
/// `An error was signalled by the server - <Kind>: <detail>`, any other as
/// `<CODE>: <detail>`.
fn server_error(line: &str) -> String {
    let (code, detail) = line.split_once(' ').unwrap_or((line, ""));
    let kind = match code {
        "ERR" => "ResponseError",
        "EXECABORT" => "ExecAbortError",
        "LOADING" => "BusyLoadingError",
        "NOSCRIPT" => "NoScriptError",
        "READONLY" => "ReadOnly",
        "MASTERDOWN" => "MasterDown",
        "TRYAGAIN" => "TryAgain",
        "CLUSTERDOWN" => "ClusterDown",
        "CROSSSLOT" => "CrossSlot",
        _ => return format!("{code}: {detail}"),
    };
    format!("An error was signalled by the server - {kind}: {detail}")
}

/// Reads RESP2 off a stream, charging every element to a budget.
struct ReplyReader<'a, R> {
    stream: &'a mut R,
    address: &'a str,
    budget: usize,
    limit: usize,
    skip_over: Option<usize>,
    /// The length of a bulk string read past because of `skip_over`.
    skipped: Option<usize>,
}

impl<R: BufRead> ReplyReader<'_, R> {
    fn charge(&mut self, bytes: usize) -> Result<(), RedisError> {
        match self.budget.checked_sub(bytes.saturating_add(ELEMENT_COST)) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(RedisError::TooLarge {
                address: self.address.to_owned(),
                limit: self.limit,
            }),
        }
    }

    fn protocol(&self, what: impl Into<String>) -> RedisError {
        RedisError::Protocol {
            address: self.address.to_owned(),
            what: what.into(),
        }
    }

    fn io(&self, e: std::io::Error) -> RedisError {
        let reason = match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                "timed out waiting for the reply".to_owned()
            }
            std::io::ErrorKind::UnexpectedEof => "the server closed the connection".to_owned(),
            _ => format!("reading: {e}"),
        };
        RedisError::Io {
            address: self.address.to_owned(),
            reason,
        }
    }

    /// One line without its CRLF, at most [`MAX_LINE`] bytes.
    fn line(&mut self) -> Result<Vec<u8>, RedisError> {
        let mut line = Vec::new();
        let read = (&mut *self.stream)
            .take(MAX_LINE as u64 + 2)
            .read_until(b'\n', &mut line)
            .map_err(|e| self.io(e))?;
        if read == 0 {
            return Err(self.io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        match line.strip_suffix(b"\r\n") {
            Some(body) => Ok(body.to_vec()),
            None if line.len() > MAX_LINE => Err(self.protocol("a line longer than 64 KiB")),
            None if line.ends_with(b"\n") => Err(self.protocol("a line not ended by CRLF")),
            None => Err(self.io(std::io::ErrorKind::UnexpectedEof.into())),
        }
    }

    fn text(&self, bytes: Vec<u8>) -> Result<String, RedisError> {
        String::from_utf8(bytes).map_err(|_| self.protocol("a status line that is not UTF-8"))
    }

    fn number(&self, bytes: &[u8]) -> Result<i64, RedisError> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                self.protocol(format!(
                    "`{}` is not a number",
                    String::from_utf8_lossy(bytes)
                ))
            })
    }

    /// A bulk string's length or an array's count; `None` for -1, nil.
    /// Another negative one is no reply a server sends.
    fn length(&self, bytes: &[u8]) -> Result<Option<usize>, RedisError> {
        match self.number(bytes)? {
            -1 => Ok(None),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| self.protocol(format!("a negative length, {n}"))),
        }
    }

    fn reply(&mut self, depth: usize) -> Result<Reply, RedisError> {
        let line = self.line()?;
        let Some((&kind, rest)) = line.split_first() else {
            return Err(self.protocol("an empty line"));
        };
        match kind {
            b'+' => {
                self.charge(rest.len())?;
                Ok(Reply::Status(self.text(rest.to_vec())?))
            }
            b'-' => {
                self.charge(rest.len())?;
                Ok(Reply::Error(String::from_utf8_lossy(rest).into_owned()))
            }
            b':' => {
                self.charge(0)?;
                Ok(Reply::Int(self.number(rest)?))
            }
            b'$' => {
                let Some(len) = self.length(rest)? else {
                    self.charge(0)?;
                    return Ok(Reply::Nil);
                };
                if self.skip_over.is_some_and(|limit| len > limit) {
                    self.charge(0)?;
                    self.skip(len)?;
                    self.skipped = Some(len);
                    return Ok(Reply::Bulk(Vec::new()));
                }
                self.charge(len)?;
                Ok(Reply::Bulk(self.bulk(len)?))
            }
            b'*' => {
                let Some(count) = self.length(rest)? else {
                    self.charge(0)?;
                    return Ok(Reply::Nil);
                };
                if depth >= MAX_DEPTH {
                    return Err(self.protocol(format!("arrays nested deeper than {MAX_DEPTH}")));
                }
                // Every element costs at least ELEMENT_COST, so the count is
                // checked against the budget before anything is reserved.
                self.charge(count.saturating_mul(ELEMENT_COST))?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.reply(depth + 1)?);
                }
                Ok(Reply::Array(items))
            }
            other => Err(self.protocol(format!("unknown reply type `{}`", other.escape_ascii()))),
        }
    }

    /// Reads past a bulk string's `len` bytes and its CRLF, keeping none.
    fn skip(&mut self, len: usize) -> Result<(), RedisError> {
        let wanted = len as u64 + 2;
        let skipped = std::io::copy(&mut (&mut *self.stream).take(wanted), &mut std::io::sink())
            .map_err(|e| self.io(e))?;
        if skipped < wanted {
            return Err(self.io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(())
    }

    /// A bulk string's `len` bytes and its CRLF.
    fn bulk(&mut self, len: usize) -> Result<Vec<u8>, RedisError> {
        let mut data = Vec::new();
        // `take` + `read_to_end` grows the buffer as bytes arrive rather than
        // trusting the announced length with one allocation.
        (&mut *self.stream)
            .take(len as u64)
            .read_to_end(&mut data)
            .map_err(|e| self.io(e))?;
        let mut crlf = [0u8; 2];
        if data.len() < len {
            return Err(self.io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        self.stream.read_exact(&mut crlf).map_err(|e| self.io(e))?;
        if &crlf != b"\r\n" {
            return Err(self.protocol("a bulk string longer than announced"));
        }
        Ok(data)
    }
}

/// A connection in subscribed mode: the trigger's.
pub struct Subscriber {
    client: Client,
    /// The budget of a message beyond its payload: its channel (the
    /// longest subscribed) and framing.
    framing: usize,
    /// A `PING` is out because the connection was idle for a read timeout;
    /// another timeout before anything arrives means it is dead.
    ping_sent: bool,
}

/// What a subscribed connection delivered.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A message published on a subscribed channel.
    Message { channel: String, payload: Vec<u8> },
    /// A message whose payload of `bytes` exceeded the budget: read past
    /// and dropped, the connection kept.
    Oversize { channel: String, bytes: usize },
    /// Nothing arrived for a read timeout (a `PING` has gone out to check
    /// the server is there), or something other than a message did.
    Idle,
}

impl Subscriber {
    /// What arrives next; a payload over `budget` bytes is dropped, and read
    /// past without being kept when it is longer than the framing.
    pub fn next(&mut self, budget: usize) -> Result<Event, RedisError> {
        // Waiting for the first byte is the only place where a timeout means
        // idleness, not a broken reply: nothing has been consumed yet.
        let client = &mut self.client;
        client.usable()?;
        match client.stream.fill_buf() {
            Ok([]) => {
                return Err(client.fail(RedisError::Io {
                    address: client.address.clone(),
                    reason: "the server closed the connection".into(),
                }));
            }
            Ok(_) => self.ping_sent = false,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if std::mem::replace(&mut self.ping_sent, true) {
                    return Err(client.fail(RedisError::Io {
                        address: client.address.clone(),
                        reason: "no answer to PING".into(),
                    }));
                }
                client.send(&[b"PING"])?;
                return Ok(Event::Idle);
            }
            Err(e) => {
                return Err(client.fail(RedisError::Io {
                    address: client.address.clone(),
                    reason: format!("reading: {e}"),
                }));
            }
        }
        // Only a bulk string longer than any but a payload can be (the
        // kind, the channel) is read past: with a smaller bound a short
        // `message` or channel would be too. A payload between the two is
        // read, then dropped below. The channel name and the framing are
        // not the payload's budget.
        let skip_over = budget.max(self.framing);
        let (reply, skipped) =
            client.read_with(skip_over.saturating_add(self.framing), Some(skip_over))?;
        let Reply::Array(items) = reply else {
            return Err(client.fail(RedisError::Protocol {
                address: client.address.clone(),
                what: format!("expected a push message, got {}", reply.brief()),
            }));
        };
        let mut items = items.into_iter();
        match (items.next(), items.next(), items.next(), items.next()) {
            (
                Some(Reply::Bulk(kind)),
                Some(Reply::Bulk(channel)),
                Some(Reply::Bulk(payload)),
                None,
            ) if kind == b"message" => {
                let channel = String::from_utf8_lossy(&channel).into_owned();
                Ok(match skipped {
                    Some(bytes) => Event::Oversize { channel, bytes },
                    None if payload.len() > budget => Event::Oversize {
                        channel,
                        bytes: payload.len(),
                    },
                    None => Event::Message { channel, payload },
                })
            }
            // The answer to our PING, and anything else a subscribed
            // connection may push (`subscribe` confirmations).
            _ => Ok(Event::Idle),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A client connected to a fake server that sends `script` after
    /// reading the first command.
    fn against(script: &'static [u8]) -> Client {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf);
            let _ = socket.write_all(script);
            std::thread::sleep(Duration::from_millis(300));
        });
        let address = RedisAddress::parse(&format!("redis://127.0.0.1:{port}")).expect("address");
        Client::connect(&Connect {
            address: &address,
            blocked: &BlockedNetworks::default(),
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(2),
            tls: None,
        })
        .expect("connect")
    }

    #[test]
    fn replies_of_every_type() {
        let mut c = against(b"*5\r\n+OK\r\n:-7\r\n$3\r\na\r\n\r\n$-1\r\n*2\r\n*0\r\n$0\r\n\r\n");
        assert_eq!(
            c.command(&[b"X"], 1 << 20).expect("reply"),
            Reply::Array(vec![
                Reply::Status("OK".into()),
                Reply::Int(-7),
                Reply::Bulk(b"a\r\n".to_vec()),
                Reply::Nil,
                Reply::Array(vec![Reply::Array(vec![]), Reply::Bulk(vec![])]),
            ])
        );
    }

    #[test]
    fn server_errors_keep_the_connection_and_read_as_the_redis_crate_words_them() {
        let mut c = against(b"-ERR value is not an integer or out of range\r\n");
        let e = c.command(&[b"INCR", b"k"], 1024).expect_err("error");
        assert_eq!(
            e.to_string(),
            "An error was signalled by the server - ResponseError: value is not an integer or out of range"
        );
        assert!(c.broken.is_none());
        assert_eq!(
            server_error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            "WRONGTYPE: Operation against a key holding the wrong kind of value"
        );
    }

    #[test]
    fn hostile_replies_are_bounded_and_break_the_connection() {
        // A bulk string announcing more than the budget is refused before it is read.
        let mut c = against(b"$999999999999\r\n");
        assert!(matches!(
            c.command(&[b"GET", b"k"], 1024),
            Err(RedisError::TooLarge { .. })
        ));
        assert!(matches!(
            c.command(&[b"GET", b"k"], 1024),
            Err(RedisError::Broken { .. })
        ));
        // So is an array of many elements, however small each.
        let mut c = against(b"*100000000\r\n");
        assert!(matches!(
            c.command(&[b"X"], 1 << 20),
            Err(RedisError::TooLarge { .. })
        ));
        // Nesting is bounded, not recursed into.
        let mut c = against(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n");
        assert!(matches!(
            c.command(&[b"X"], 1 << 20),
            Err(RedisError::Protocol { .. })
        ));
        for script in [
            &b"?\r\n"[..],
            b"$3\r\nabcd\r\n",
            b":12x\r\n",
            b"$5\r\nab",
            b"$-2\r\n",
            b"*-5\r\n",
            b"+OK\n",
        ] {
            let leaked: &'static [u8] = Box::leak(script.to_vec().into_boxed_slice());
            let mut c = against(leaked);
            assert!(c.command(&[b"X"], 1 << 20).is_err(), "{script:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// Whatever a server sends, reading it ends in a reply or an
        /// error, within the budget: never a panic.
        #[test]
        fn any_bytes_are_a_reply_or_an_error(bytes in proptest::collection::vec(
            proptest::sample::select(b"*$+-:\r\n0123456789-x".to_vec()), 0..200)
        ) {
            let mut stream = &bytes[..];
            let mut reader = ReplyReader {
                stream: &mut stream,
                address: "fake",
                budget: 4096,
                limit: 4096,
                skip_over: Some(64),
                skipped: None,
            };
            if let Ok(reply) = reader.reply(0) {
                proptest::prop_assert!(size(&reply) <= 4096);
            }
        }
    }

    fn size(reply: &Reply) -> usize {
        ELEMENT_COST
            + match reply {
                Reply::Status(s) | Reply::Error(s) => s.len(),
                Reply::Bulk(b) => b.len(),
                Reply::Array(items) => items.iter().map(size).sum(),
                Reply::Nil | Reply::Int(_) => 0,
            }
    }

    #[test]
    fn a_long_channel_name_is_framing_not_payload() {
        let channel = "c".repeat(3 * HANDSHAKE_BUDGET);
        let n = channel.len();
        let script = format!(
            "*3\r\n$9\r\nsubscribe\r\n${n}\r\n{channel}\r\n:1\r\n*3\r\n$7\r\nmessage\r\n${n}\r\n{channel}\r\n$2\r\nhi\r\n"
        );
        let c = against(Box::leak(script.into_bytes().into_boxed_slice()));
        let mut s = c
            .subscribe(std::slice::from_ref(&channel))
            .expect("subscribe");
        assert_eq!(
            s.next(2).expect("message"),
            Event::Message {
                channel,
                payload: b"hi".to_vec()
            }
        );
    }

    #[test]
    fn a_payload_limit_below_the_framing_still_reads_messages() {
        let c = against(
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nxy\r\n",
        );
        let mut s = c.subscribe(&["c".to_owned()]).expect("subscribe");
        assert_eq!(
            s.next(1).expect("message"),
            Event::Message {
                channel: "c".into(),
                payload: b"x".to_vec()
            }
        );
        assert_eq!(
            s.next(1).expect("oversize"),
            Event::Oversize {
                channel: "c".into(),
                bytes: 2
            }
        );
    }

    #[test]
    fn errors_quote_a_reply_briefly() {
        let huge = Reply::Array(vec![Reply::Bulk(vec![b'x'; 1 << 20]); 4]);
        let brief = huge.brief();
        assert!(brief.chars().count() <= BRIEF + 1, "{}", brief.len());
        assert!(brief.starts_with("Array([Bulk([120, 120") && brief.ends_with('…'));
        assert_eq!(Reply::Int(3).brief(), "Int(3)");
        let wide = Reply::Status("é".repeat(BRIEF));
        assert!(wide.brief().ends_with('…'));
    }

    #[test]
    fn subscribed_connections_read_messages_and_ignore_other_pushes() {
        let c = against(
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$13\r\nlarge-payload\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n",
        );
        let mut s = c.subscribe(&["c".to_owned()]).expect("subscribe");
        assert_eq!(
            s.next(1024).expect("message"),
            Event::Message {
                channel: "c".into(),
                payload: b"hi".to_vec()
            }
        );
        assert_eq!(
            s.next(8).expect("oversize"),
            Event::Oversize {
                channel: "c".into(),
                bytes: 13
            }
        );
        assert_eq!(s.next(1024).expect("pong"), Event::Idle);
        // The server then goes away.
        assert!(s.next(1024).is_err());
    }
}
