//! A small blocking PostgreSQL client (frontend/backend protocol 3.0) for
//! guests' `postgres` interfaces, on [`crate::outbound_tcp`]: it runs on
//! the worker thread of the invocation that opened it, like the outbound
//! HTTP client, so no async runtime is needed.
//!
//! - Connecting: each host of the address in turn (tokio-postgres's rule),
//!   `SSLRequest` unless `sslmode=disable` and TLS when the server agrees
//!   (`prefer`, the default, as in Spin; `require` refuses a server that
//!   does not), with the component's TLS configuration and no fallback to
//!   plain text after a failed handshake; then cleartext, MD5 or
//!   SCRAM-SHA-256 authentication ([`auth`]).
//! - Statements: the extended protocol as tokio-postgres uses it (Parse and
//!   Describe, then Bind and Execute, results in binary), so parameter
//!   types are the server's and Spin's type checks apply ([`types`]).
//! - Bounds: every length from the server is checked before anything is
//!   allocated for it; a result larger than the caller's limit (the
//!   instance's memory) is refused with Spin's text and the rest of it read
//!   past, not stored, so the connection stays usable.

pub mod address;
mod auth;
mod json;
mod types;

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use crate::blocked_networks::BlockedNetworks;
use crate::interfaces::rdbms::{Column, DbError, DbValue, Error, QueryError, RowSet};
use crate::outbound_tcp::{self, Conn};
pub use address::{Address, SslMode};
pub use types::NO_UNSIGNED;

/// Messages other than data rows (errors, descriptions, authentication)
/// are small; a server sending more is refused.
const MAX_CONTROL_MESSAGE: usize = 1 << 20;
/// A `pg_type.typname` is a `name`: at most 63 bytes (`NAMEDATALEN - 1`).
/// A longer one is a lie, and, copied into every column of every result,
/// would cost the host far more than the result's budget.
const MAX_TYPE_NAME: usize = 63;
/// Type names kept per connection: a server inventing types cannot grow
/// the cache without bound (past it, names are looked up each time).
const MAX_CACHED_TYPE_NAMES: usize = 4096;
/// PostgreSQL's `SSLRequest` code.
const SSL_REQUEST: i32 = 80_877_103;
const PROTOCOL_3_0: i32 = 196_608;

/// Where and how a client may connect.
pub struct Network<'a> {
    pub blocked: &'a BlockedNetworks,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    /// The TLS configuration for a host.
    pub tls: &'a dyn Fn(&str) -> Arc<rustls::ClientConfig>,
}

/// An open, authenticated session.
pub struct Client {
    io: BufReader<Conn>,
    /// `host:port`, for errors.
    peer: String,
    /// `pg_type.typname` of types [`types::type_name`] does not know, as
    /// the server named them on this connection.
    type_names: HashMap<u32, String>,
    /// Set after an I/O error: the session's state is unknown.
    broken: bool,
}

/// A message from the server, or the tag of one read past.
enum Message {
    Body(u8, Vec<u8>),
    Skipped(u8),
}

/// Why a statement failed, before the interface says which `error` case:
/// a parameter's own value is `bad-parameter` for `query` but
/// `value-conversion-failed` for `execute`, as in Spin.
pub enum Failure {
    Conversion(String),
    Query(QueryError),
}

impl Failure {
    fn text(text: impl Into<String>) -> Self {
        Failure::Query(QueryError::Text(text.into()))
    }
}

fn connection_failed(text: impl Into<String>) -> Error {
    Error::ConnectionFailed(text.into())
}

/// A reader over a message body that never reads past it.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn cstr(&mut self) -> Option<String> {
        let end = self.0.iter().position(|b| *b == 0)?;
        let s = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0 = &self.0[end + 1..];
        Some(s)
    }
}

fn malformed(what: &str) -> String {
    format!("the server sent a malformed {what} message")
}

/// An `ErrorResponse`'s fields as Spin's `db-error`, its text in
/// tokio-postgres's words (`db error: ERROR: message`, then `DETAIL:` and
/// `HINT:` lines).
fn db_error(body: &[u8]) -> DbError {
    let mut fields = Body(body);
    let mut by_code = Vec::new();
    while let Some(code) = fields.take(1).map(|c| c[0]).filter(|c| *c != 0) {
        let Some(value) = fields.cstr() else { break };
        by_code.push((code, value));
    }
    let field = |code: u8| {
        by_code
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.clone())
    };
    // `V` is never localised; `S` is for servers before 9.6.
    let severity = field(b'V').or_else(|| field(b'S')).unwrap_or_default();
    let message = field(b'M').unwrap_or_default();
    let detail = field(b'D');
    let hint = field(b'H');
    let mut as_text = format!("db error: {severity}: {message}");
    if let Some(detail) = &detail {
        as_text.push_str(&format!("\nDETAIL: {detail}"));
    }
    if let Some(hint) = &hint {
        as_text.push_str(&format!("\nHINT: {hint}"));
    }
    // Spin's extras, by tokio-postgres's accessor names and in its order.
    let extras = [
        ("column", b'c'),
        ("constraint", b'n'),
        ("routine", b'R'),
        ("hint", b'H'),
        ("table", b't'),
        ("datatype", b'd'),
        ("schema", b's'),
        ("file", b'F'),
        ("line", b'L'),
        ("where_", b'W'),
    ]
    .into_iter()
    .filter_map(|(name, code)| Some((name.to_owned(), field(code)?)))
    .collect();
    DbError {
        as_text,
        severity,
        code: field(b'C').unwrap_or_default(),
        message,
        detail,
        extras,
    }
}

/// A frontend message. Its length (with itself) must fit the `Int32` that
/// frames it: truncated, it would make the rest of the body (a guest's SQL
/// or parameters) read as further messages.
fn message(out: &mut Vec<u8>, tag: u8, body: &[u8]) -> Result<(), String> {
    let len = framed_len(body.len())?;
    out.push(tag);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// A body's length with the 4 bytes of the length itself, as framed.
fn framed_len(body: usize) -> Result<i32, String> {
    body.checked_add(4)
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| format!("a message of {body} bytes is too large for PostgreSQL"))
}

/// A NUL-terminated string: one with a NUL of its own would end early and
/// the rest be read as the message's next fields (tokio-postgres's
/// refusal, in its words).
fn cstr(out: &mut Vec<u8>, s: &str) -> Result<(), String> {
    if s.contains('\0') {
        return Err("error encoding message to server: string contains embedded null".into());
    }
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

impl Client {
    /// Connects to the first of the address's hosts that accepts the
    /// session, or reports the last one's failure.
    pub fn connect(address: &Address, network: &Network) -> Result<Self, Error> {
        let user = address
            .user
            .as_deref()
            .ok_or_else(|| connection_failed("invalid configuration: user missing"))?;
        if address.hosts.is_empty() {
            return Err(connection_failed("invalid configuration: host missing"));
        }
        let mut last = None;
        for (i, host) in address.hosts.iter().enumerate() {
            match Self::connect_one(address, user, host, address.port(i), network) {
                Ok(client) => return Ok(client),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| connection_failed("no host answered")))
    }

    fn connect_one(
        address: &Address,
        user: &str,
        host: &str,
        port: u16,
        network: &Network,
    ) -> Result<Self, Error> {
        let connect_timeout = address
            .connect_timeout
            .map(Duration::from_secs)
            .map_or(network.connect_timeout, |t| t.min(network.connect_timeout));
        let mut tcp = outbound_tcp::connect(
            host,
            port,
            network.blocked,
            connect_timeout,
            network.io_timeout,
        )
        .map_err(|e| connection_failed(e.to_string()))?;
        let io_failed = |e: std::io::Error| connection_failed(io_text(host, &e));
        let conn = if address.ssl_mode == SslMode::Disable {
            Conn::Plain(tcp)
        } else {
            let mut request = Vec::with_capacity(8);
            request.extend_from_slice(&8i32.to_be_bytes());
            request.extend_from_slice(&SSL_REQUEST.to_be_bytes());
            tcp.write_all(&request).map_err(io_failed)?;
            let mut answer = [0u8];
            tcp.read_exact(&mut answer).map_err(io_failed)?;
            match answer[0] {
                b'S' => Conn::Tls(Box::new(
                    outbound_tcp::tls_handshake((network.tls)(host), host, tcp)
                        .map_err(|e| connection_failed(e.to_string()))?,
                )),
                b'N' if address.ssl_mode == SslMode::Require => {
                    return Err(connection_failed(format!(
                        "{host}:{port} does not support TLS (sslmode=require)"
                    )));
                }
                b'N' => Conn::Plain(tcp),
                other => {
                    return Err(connection_failed(format!(
                        "{host}:{port} answered the TLS request with {other:#04x}: is it a PostgreSQL server?"
                    )));
                }
            }
        };
        let mut client = Client {
            io: BufReader::new(conn),
            peer: format!("{host}:{port}"),
            type_names: HashMap::new(),
            broken: false,
        };
        client.startup(address, user).map_err(|e| {
            // I/O and framing errors name the server already.
            if e.starts_with(&client.peer) {
                connection_failed(e)
            } else {
                connection_failed(format!("{}: {e}", client.peer))
            }
        })?;
        Ok(client)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let result = self
            .io
            .get_mut()
            .write_all(bytes)
            .and_then(|()| self.io.get_mut().flush());
        result.map_err(|e| {
            self.broken = true;
            io_text(&self.peer, &e)
        })
    }

    /// The next message; one longer than `max` is read past, not kept.
    fn read(&mut self, max: usize) -> Result<Message, String> {
        let mut head = [0u8; 5];
        let result = self.io.read_exact(&mut head);
        result.map_err(|e| {
            self.broken = true;
            io_text(&self.peer, &e)
        })?;
        let tag = head[0];
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        let len = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_sub(4))
            .ok_or_else(|| {
                self.broken = true;
                format!("{} sent a message with length {len}", self.peer)
            })?;
        if len > max {
            let skipped = std::io::copy(&mut (&mut self.io).take(len as u64), &mut std::io::sink());
            return match skipped {
                Ok(n) if n == len as u64 => Ok(Message::Skipped(tag)),
                Ok(_) => {
                    self.broken = true;
                    Err("connection closed".into())
                }
                Err(e) => {
                    self.broken = true;
                    Err(io_text(&self.peer, &e))
                }
            };
        }
        let mut body = vec![0u8; len];
        let result = self.io.read_exact(&mut body);
        result.map_err(|e| {
            self.broken = true;
            io_text(&self.peer, &e)
        })?;
        Ok(Message::Body(tag, body))
    }

    /// The next message that is not asynchronous news (parameter changes,
    /// notices, notifications).
    fn next(&mut self, max: usize) -> Result<Message, String> {
        loop {
            match self.read(max)? {
                Message::Body(b'S' | b'N' | b'A', _) | Message::Skipped(b'S' | b'N' | b'A') => {}
                other => return Ok(other),
            }
        }
    }

    fn control(&mut self) -> Result<(u8, Vec<u8>), String> {
        match self.next(MAX_CONTROL_MESSAGE)? {
            Message::Body(tag, body) => Ok((tag, body)),
            Message::Skipped(tag) => {
                self.broken = true;
                Err(format!(
                    "{} sent a `{}` message over {MAX_CONTROL_MESSAGE} bytes",
                    self.peer,
                    char::from(tag)
                ))
            }
        }
    }

    fn startup(&mut self, address: &Address, user: &str) -> Result<(), String> {
        let mut body = PROTOCOL_3_0.to_be_bytes().to_vec();
        let mut param = |k: &str, v: &str| {
            cstr(&mut body, k)?;
            cstr(&mut body, v)
        };
        param("user", user)?;
        if let Some(db) = &address.dbname {
            param("database", db)?;
        }
        // Text columns arrive in UTF-8 whatever the database's encoding.
        param("client_encoding", "UTF8")?;
        if let Some(name) = &address.application_name {
            param("application_name", name)?;
        }
        if let Some(options) = &address.options {
            param("options", options)?;
        }
        body.push(0);
        let mut out = framed_len(body.len())?.to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        self.send(&out)?;

        let password = || {
            address
                .password
                .as_deref()
                .ok_or_else(|| "the server asks for a password and the address has none".to_owned())
        };
        let mut scram: Option<auth::Scram> = None;
        let mut scram_verified = false;
        loop {
            let (tag, body) = self.control()?;
            let mut b = Body(&body);
            match tag {
                b'R' => {
                    let code = b.i32().ok_or_else(|| malformed("authentication"))?;
                    let mut out = Vec::new();
                    match code {
                        0 => {
                            if scram.is_some() && !scram_verified {
                                return Err("the server accepted SCRAM without proving it knows the password".into());
                            }
                        }
                        3 => {
                            let mut pw = Vec::new();
                            cstr(&mut pw, password()?)?;
                            message(&mut out, b'p', &pw)?;
                        }
                        5 => {
                            let salt: [u8; 4] = b
                                .take(4)
                                .and_then(|s| s.try_into().ok())
                                .ok_or_else(|| malformed("MD5 authentication"))?;
                            let mut pw = Vec::new();
                            cstr(&mut pw, &auth::md5_password(user, password()?, salt))?;
                            message(&mut out, b'p', &pw)?;
                        }
                        10 => {
                            let mut mechanisms = Vec::new();
                            while let Some(m) = b.cstr().filter(|m| !m.is_empty()) {
                                mechanisms.push(m);
                            }
                            if !mechanisms.iter().any(|m| m == auth::SCRAM_SHA_256) {
                                return Err(format!(
                                    "the server offers SASL mechanisms {} and Flint supports only {}",
                                    mechanisms.join(", "),
                                    auth::SCRAM_SHA_256
                                ));
                            }
                            let mut nonce = [0u8; 18];
                            ring::rand::SecureRandom::fill(
                                &ring::rand::SystemRandom::new(),
                                &mut nonce,
                            )
                            .map_err(|_| "no random numbers for SCRAM's nonce".to_owned())?;
                            let exchange = auth::Scram::new(password()?, nonce);
                            let first = exchange.client_first();
                            let mut m = Vec::new();
                            cstr(&mut m, auth::SCRAM_SHA_256)?;
                            // A few dozen bytes: its length fits.
                            let first_len = i32::try_from(first.len()).unwrap_or(i32::MAX);
                            m.extend_from_slice(&first_len.to_be_bytes());
                            m.extend_from_slice(first.as_bytes());
                            message(&mut out, b'p', &m)?;
                            scram = Some(exchange);
                        }
                        11 => {
                            let exchange = scram
                                .as_mut()
                                .ok_or("the server continued a SASL exchange that never began")?;
                            let last = exchange.client_final(b.0)?;
                            message(&mut out, b'p', last.as_bytes())?;
                        }
                        12 => {
                            scram
                                .as_ref()
                                .ok_or("the server finished a SASL exchange that never began")?
                                .verify(b.0)?;
                            scram_verified = true;
                        }
                        other => {
                            return Err(format!(
                                "the server asks for authentication method {other}, which Flint does not support (it supports password, md5 and scram-sha-256)"
                            ));
                        }
                    }
                    if !out.is_empty() {
                        self.send(&out)?;
                    }
                }
                b'K' => {}
                b'E' => return Err(db_error(&body).as_text),
                b'Z' => return Ok(()),
                other => {
                    return Err(format!(
                        "the server sent an unexpected `{}` message while connecting",
                        char::from(other)
                    ));
                }
            }
        }
    }

    /// Runs `statement` with `params` and returns its rows (at most
    /// `max_bytes` of them by [`DbValue::memory_size`]).
    pub fn query(
        &mut self,
        statement: &str,
        params: &[DbValue],
        max_bytes: usize,
    ) -> Result<RowSet, Failure> {
        let (columns, rows, _) = self.run(statement, params, Some(max_bytes))?;
        let columns = columns
            .into_iter()
            .map(|(name, oid)| Column {
                name,
                data_type: types::data_type(oid),
                type_name: self.type_name(oid),
            })
            .collect();
        Ok(RowSet { columns, rows })
    }

    /// Runs `statement` with `params` for its effect: the number of rows it
    /// affected, as its command tag says.
    pub fn execute(&mut self, statement: &str, params: &[DbValue]) -> Result<u64, Failure> {
        Ok(self.run(statement, params, None)?.2)
    }

    /// A type's name: known, looked up once per connection, or its oid.
    fn type_name(&mut self, oid: u32) -> String {
        if let Some(name) = types::type_name(oid) {
            return name.to_owned();
        }
        if let Some(name) = self.type_names.get(&oid) {
            return name.clone();
        }
        let found = self
            .run(
                "SELECT typname::text FROM pg_catalog.pg_type WHERE oid = $1::text::oid",
                &[DbValue::Str(oid.to_string())],
                Some(MAX_CONTROL_MESSAGE),
            )
            .ok()
            .and_then(
                |(_, rows, _)| match rows.into_iter().next()?.into_iter().next()? {
                    DbValue::Str(name) if name.len() <= MAX_TYPE_NAME => Some(name),
                    _ => None,
                },
            );
        let name = found.unwrap_or_else(|| format!("oid {oid}"));
        if self.type_names.len() < MAX_CACHED_TYPE_NAMES {
            self.type_names.insert(oid, name.clone());
        }
        name
    }

    /// One statement: Parse and Describe to learn its parameter and column
    /// types, then Bind and Execute. `max_bytes` is `None` when the rows are
    /// not wanted (`execute`).
    #[allow(clippy::type_complexity)]
    fn run(
        &mut self,
        statement: &str,
        params: &[DbValue],
        max_bytes: Option<usize>,
    ) -> Result<(Vec<(String, u32)>, Vec<Vec<DbValue>>, u64), Failure> {
        if self.broken {
            return Err(Failure::text("connection closed"));
        }
        // Spin converts every parameter before the statement is sent.
        for value in params {
            types::convert(value).map_err(Failure::Conversion)?;
        }
        let mut out = Vec::new();
        let mut parse = Vec::new();
        cstr(&mut parse, "").map_err(Failure::text)?;
        cstr(&mut parse, statement).map_err(Failure::text)?;
        parse.extend_from_slice(&0i16.to_be_bytes());
        message(&mut out, b'P', &parse).map_err(Failure::text)?;
        message(&mut out, b'D', b"S\0").map_err(Failure::text)?;
        message(&mut out, b'S', &[]).map_err(Failure::text)?;
        self.send(&out).map_err(Failure::text)?;

        let mut param_types = Vec::new();
        let mut columns = Vec::new();
        let mut failed = None;
        loop {
            let (tag, body) = self.control().map_err(Failure::text)?;
            let mut b = Body(&body);
            match tag {
                b'1' | b'n' => {}
                b't' => {
                    // An Int16 that the server counts up to 65535.
                    let n = b
                        .u16()
                        .ok_or_else(|| Failure::text(malformed("parameter description")))?;
                    for _ in 0..n {
                        param_types
                            .push(b.u32().ok_or_else(|| {
                                Failure::text(malformed("parameter description"))
                            })?);
                    }
                }
                b'T' => columns = row_description(&body).map_err(Failure::text)?,
                b'E' => failed = Some(Failure::Query(QueryError::Db(Box::new(db_error(&body))))),
                b'Z' => break,
                other => return Err(self.unexpected(other)),
            }
        }
        if let Some(failure) = failed {
            return Err(failure);
        }
        if param_types.len() != params.len() {
            return Err(Failure::text(format!(
                "expected {} parameters but got {}",
                param_types.len(),
                params.len()
            )));
        }
        let encoded = params
            .iter()
            .zip(&param_types)
            .enumerate()
            .map(|(i, (value, oid))| {
                types::encode(i, value, *oid).map_err(|e| match e {
                    types::ParamError::Conversion(text) => Failure::Conversion(text),
                    types::ParamError::WrongType(text) => Failure::text(text),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        // As many as the server's 16-bit count described.
        let count = u16::try_from(encoded.len())
            .map_err(|_| Failure::text("more than 65535 parameters"))?
            .to_be_bytes();
        // The unnamed portal, of the unnamed statement.
        let mut bind = b"\0\0".to_vec();
        bind.extend_from_slice(&count);
        for e in &encoded {
            bind.extend_from_slice(&i16::from(!e.text).to_be_bytes());
        }
        bind.extend_from_slice(&count);
        for e in &encoded {
            match &e.bytes {
                None => bind.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(bytes) => {
                    let len = i32::try_from(bytes.len())
                        .map_err(|_| Failure::Conversion("a parameter over 2 GiB".into()))?;
                    bind.extend_from_slice(&len.to_be_bytes());
                    bind.extend_from_slice(bytes);
                }
            }
        }
        // Every result column in binary.
        bind.extend_from_slice(&1i16.to_be_bytes());
        bind.extend_from_slice(&1i16.to_be_bytes());
        let mut out = Vec::new();
        message(&mut out, b'B', &bind).map_err(Failure::text)?;
        // The unnamed portal, all its rows.
        message(&mut out, b'E', &[0, 0, 0, 0, 0]).map_err(Failure::text)?;
        message(&mut out, b'S', &[]).map_err(Failure::text)?;
        self.send(&out).map_err(Failure::text)?;

        let mut rows = Vec::new();
        let mut bytes = std::mem::size_of::<RowSet>();
        let mut affected = 0;
        loop {
            // Rows are read within the result's budget; once it is spent,
            // or after an error, the rest is read past.
            let max = match (&failed, max_bytes) {
                (None, Some(max)) => max.saturating_sub(bytes).max(MAX_CONTROL_MESSAGE),
                _ => MAX_CONTROL_MESSAGE,
            };
            match self.next(max).map_err(Failure::text)? {
                Message::Body(b'D', body) => {
                    let Some(max) = max_bytes.filter(|_| failed.is_none()) else {
                        continue;
                    };
                    match data_row(&body, &columns, max.saturating_sub(bytes)) {
                        Ok(row) => {
                            bytes += row.iter().map(DbValue::memory_size).sum::<usize>();
                            if bytes > max {
                                failed = Some(too_large(max));
                                rows = Vec::new();
                            } else {
                                rows.push(row);
                            }
                        }
                        Err(RowError::TooLarge) => {
                            failed = Some(too_large(max));
                            rows = Vec::new();
                        }
                        Err(RowError::Malformed(e)) => failed = Some(Failure::text(e)),
                    }
                }
                Message::Skipped(b'D') => {
                    if let (None, Some(max)) = (&failed, max_bytes) {
                        failed = Some(too_large(max));
                        rows = Vec::new();
                    }
                }
                Message::Body(b'C', body) => {
                    let tag = Body(&body).cstr().unwrap_or_default();
                    affected = tag
                        .rsplit(' ')
                        .next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                }
                Message::Body(b'2' | b'I' | b's', _) => {}
                Message::Body(b'E', body) => {
                    failed.get_or_insert(Failure::Query(QueryError::Db(Box::new(db_error(&body)))));
                }
                // COPY FROM STDIN: refuse it so the server ends the statement.
                Message::Body(b'G', _) => {
                    let mut out = Vec::new();
                    message(
                        &mut out,
                        b'f',
                        b"COPY is not supported through Spin's postgres interface\0",
                    )
                    .map_err(Failure::text)?;
                    self.send(&out).map_err(Failure::text)?;
                }
                // COPY TO STDOUT: its data is read past.
                Message::Body(b'H' | b'd' | b'c', _) | Message::Skipped(b'd') => {}
                Message::Body(b'Z', _) => break,
                Message::Body(other, _) | Message::Skipped(other) => {
                    return Err(self.unexpected(other));
                }
            }
        }
        match failed {
            Some(failure) => Err(failure),
            None => Ok((columns, rows, affected)),
        }
    }

    /// A message the protocol does not allow here: the session cannot be
    /// trusted any more.
    fn unexpected(&mut self, tag: u8) -> Failure {
        self.broken = true;
        Failure::text(format!(
            "{} sent an unexpected `{}` message",
            self.peer,
            char::from(tag)
        ))
    }
}

impl Drop for Client {
    /// Says goodbye (`Terminate`), so the server ends the session at once.
    fn drop(&mut self) {
        if !self.broken {
            let _ = self.io.get_mut().write_all(&[b'X', 0, 0, 0, 4]);
            let _ = self.io.get_mut().flush();
        }
    }
}

fn row_description(body: &[u8]) -> Result<Vec<(String, u32)>, String> {
    let bad = || malformed("row description");
    let mut b = Body(body);
    let n = b.i16().ok_or_else(bad)?;
    let mut columns = Vec::new();
    for _ in 0..n.max(0) {
        let name = b.cstr().ok_or_else(bad)?;
        // table oid, column number
        b.take(6).ok_or_else(bad)?;
        let oid = b.u32().ok_or_else(bad)?;
        // type size, modifier, format
        b.take(8).ok_or_else(bad)?;
        columns.push((name, oid));
    }
    Ok(columns)
}

/// Spin's text for a result over its budget.
fn too_large(max: usize) -> Failure {
    Failure::text(format!("query result exceeds limit of {max} bytes"))
}

/// Why a data row gave no values.
#[derive(Debug, PartialEq)]
enum RowError {
    Malformed(String),
    /// Its values would not fit the room left for the result.
    TooLarge,
}

/// A data row's values, decoded within `room` bytes (see
/// [`types::decode`]).
fn data_row(
    body: &[u8],
    columns: &[(String, u32)],
    mut room: usize,
) -> Result<Vec<DbValue>, RowError> {
    let bad = || RowError::Malformed(malformed("data row"));
    let mut b = Body(body);
    let n = b.i16().ok_or_else(bad)?;
    if usize::try_from(n).ok() != Some(columns.len()) {
        return Err(RowError::Malformed(format!(
            "the server sent a row of {n} columns for {} columns",
            columns.len()
        )));
    }
    columns
        .iter()
        .enumerate()
        .map(|(i, (name, oid))| {
            let len = b.i32().ok_or_else(bad)?;
            // -1 is NULL; any other negative length is not a length.
            if len == -1 {
                return Ok(DbValue::DbNull);
            }
            let len = usize::try_from(len).map_err(|_| bad())?;
            let raw = b.take(len).ok_or_else(bad)?;
            types::decode(*oid, raw, &mut room).map_err(|e| {
                if e == types::TOO_LARGE {
                    RowError::TooLarge
                } else {
                    RowError::Malformed(format!("error retrieving column {i} ({name}): {e}"))
                }
            })
        })
        .collect()
}

/// An I/O error in words, timeouts named as the outbound timeout.
fn io_text(peer: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("{peer} did not answer within the outbound timeout")
        }
        std::io::ErrorKind::UnexpectedEof => "connection closed".into(),
        _ => match crate::tls::TlsFailure::of(e) {
            Some(tls) => format!("TLS with {peer}: {tls}"),
            None => format!("error communicating with {peer}: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_become_spins_db_error() {
        let mut body = Vec::new();
        for (code, value) in [
            (b'S', "FEHLER"),
            (b'V', "ERROR"),
            (b'C', "42P01"),
            (b'M', "relation \"nope\" does not exist"),
            (b'H', "create it"),
            (b't', "nope"),
        ] {
            body.push(code);
            cstr(&mut body, value).unwrap();
        }
        body.push(0);
        let e = db_error(&body);
        assert_eq!(e.severity, "ERROR");
        assert_eq!(e.code, "42P01");
        assert_eq!(
            e.as_text,
            "db error: ERROR: relation \"nope\" does not exist\nHINT: create it"
        );
        assert_eq!(
            e.extras,
            [
                ("hint".into(), "create it".into()),
                ("table".into(), "nope".into())
            ]
        );
        // A truncated body still gives what it has.
        assert_eq!(db_error(b"Mhalf").message, "");
    }

    #[test]
    fn rows_are_checked_against_their_description() {
        let columns = vec![("a".to_owned(), types::INT4), ("b".to_owned(), types::TEXT)];
        let mut row = 2i16.to_be_bytes().to_vec();
        row.extend_from_slice(&4i32.to_be_bytes());
        row.extend_from_slice(&7i32.to_be_bytes());
        row.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            data_row(&row, &columns, 1 << 20),
            Ok(vec![DbValue::Int32(7), DbValue::DbNull])
        );
        assert!(data_row(&row[..row.len() - 1], &columns, 1 << 20).is_err());
        let mut long = 2i16.to_be_bytes().to_vec();
        long.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(data_row(&long, &columns, 1 << 20).is_err());
        assert!(data_row(&row, &columns[..1], 1 << 20).is_err());
        // Only -1 is NULL.
        let mut odd = 1i16.to_be_bytes().to_vec();
        odd.extend_from_slice(&(-2i32).to_be_bytes());
        assert!(data_row(&odd, &columns[..1], 1 << 20).is_err());
        // 8-byte numerics whose text is 131 KB each: refused as over the
        // room left before their text is built.
        let numerics = vec![("n".to_owned(), types::NUMERIC); 100];
        // One digit group, weight 32767, positive, no scale: the digit 1.
        let huge = [0, 1, 0x7f, 0xff, 0, 0, 0, 0, 0, 1];
        let row = row_of(&vec![huge.to_vec(); 100]);
        assert_eq!(data_row(&row, &numerics, 1 << 20), Err(RowError::TooLarge));
        assert!(data_row(&row, &numerics, 100 << 20).is_ok());
    }

    #[test]
    fn frontend_messages_never_misframe() {
        let mut out = Vec::new();
        assert!(cstr(&mut out, "SELECT 1;\0Q").is_err());
        assert!(out.is_empty());
        assert_eq!(framed_len(0), Ok(4));
        assert!(framed_len(i32::MAX as usize - 3).is_err());
        assert!(framed_len(usize::MAX).is_err());
    }

    /// Every type the decoder knows, and one it does not.
    const OIDS: &[u32] = &[
        types::BOOL,
        types::BYTEA,
        types::INT2,
        types::INT4,
        types::INT8,
        types::TEXT,
        types::FLOAT4,
        types::FLOAT8,
        types::DATE,
        types::TIME,
        types::TIMESTAMP,
        types::TIMESTAMPTZ,
        types::INTERVAL,
        types::NUMERIC,
        types::UUID,
        types::JSONB,
        types::INT4RANGE,
        types::INT8RANGE,
        types::NUMRANGE,
        types::INT4_ARRAY,
        types::INT8_ARRAY,
        types::NUMERIC_ARRAY,
        types::TEXT_ARRAY,
        424_242,
    ];

    /// A data row of `values`.
    fn row_of(values: &[Vec<u8>]) -> Vec<u8> {
        let mut row = (values.len() as i16).to_be_bytes().to_vec();
        for v in values {
            row.extend_from_slice(&(v.len() as i32).to_be_bytes());
            row.extend_from_slice(v);
        }
        row
    }

    /// Runs `SELECT 1` against a server that has sent `bytes`.
    fn run_against(bytes: &[u8]) -> Result<(), Failure> {
        let (tcp, _server) = crate::interfaces::rdbms::loopback_serving(bytes);
        let mut client = Client {
            io: BufReader::new(Conn::Plain(tcp)),
            peer: "fuzz:5432".into(),
            type_names: HashMap::new(),
            broken: false,
        };
        client.run("SELECT 1", &[], Some(1 << 20)).map(drop)
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any bytes, or a valid message's bytes cut and flipped, are parsed
        /// to a value or an error, never a panic.
        #[test]
        fn hostile_messages_never_panic(
            noise in prop::collection::vec(any::<u8>(), 0..64),
            values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), OIDS.len()),
            flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            cut in any::<usize>(),
        ) {
            let columns: Vec<(String, u32)> =
                OIDS.iter().map(|oid| (format!("c{oid}"), *oid)).collect();
            let mut row = row_of(&values);
            for (at, byte) in &flips {
                let len = row.len();
                row[at % len] ^= byte;
            }
            row.truncate(cut % (row.len() + 1));
            let _ = data_row(&row, &columns, 1 << 20);
            let _ = data_row(&noise, &columns, 1 << 20);
            for (oid, value) in OIDS.iter().zip(&values) {
                let _ = types::decode(*oid, value, &mut 4096);
                let _ = types::decode(*oid, &noise, &mut 4096);
            }
            let _ = row_description(&noise);
            let _ = db_error(&noise);
            let _ = json::compact(&noise);
            let mut scram = auth::Scram::new("pw", [1; 18]);
            let _ = scram.client_final(&noise);
            let _ = scram.verify(&noise);
            let _ = Address::parse(&String::from_utf8_lossy(&noise));
        }

        /// A server answering a statement with any bytes, or with valid
        /// messages cut short, fails the statement without a panic.
        #[test]
        fn hostile_servers_never_panic(
            noise in prop::collection::vec(any::<u8>(), 0..256),
            cut in any::<usize>(),
        ) {
            let _ = run_against(&noise);
            // ParseComplete, a description of no parameters and one text
            // column, ReadyForQuery, then a row and the end.
            let mut script = Vec::new();
            message(&mut script, b'1', &[]).unwrap();
            message(&mut script, b't', &0i16.to_be_bytes()).unwrap();
            let mut description = 1i16.to_be_bytes().to_vec();
            cstr(&mut description, "a").unwrap();
            description.extend_from_slice(&[0; 6]);
            description.extend_from_slice(&types::TEXT.to_be_bytes());
            description.extend_from_slice(&[0; 8]);
            message(&mut script, b'T', &description).unwrap();
            message(&mut script, b'Z', b"I").unwrap();
            message(&mut script, b'2', &[]).unwrap();
            message(&mut script, b'D', &row_of(&[b"x".to_vec()])).unwrap();
            message(&mut script, b'C', b"SELECT 1\0").unwrap();
            message(&mut script, b'Z', b"I").unwrap();
            prop_assert!(run_against(&script).is_ok());
            script.truncate(cut % script.len());
            script.extend_from_slice(&noise);
            let _ = run_against(&script);
        }
    }

    #[test]
    fn implausible_type_names_are_not_believed() {
        // The lookup's answer: a text parameter, a text column, a 64 KB name.
        let mut script = Vec::new();
        message(&mut script, b'1', &[]).unwrap();
        let mut parameters = 1i16.to_be_bytes().to_vec();
        parameters.extend_from_slice(&types::TEXT.to_be_bytes());
        message(&mut script, b't', &parameters).unwrap();
        let mut description = 1i16.to_be_bytes().to_vec();
        cstr(&mut description, "typname").unwrap();
        description.extend_from_slice(&[0; 6]);
        description.extend_from_slice(&types::TEXT.to_be_bytes());
        description.extend_from_slice(&[0; 8]);
        message(&mut script, b'T', &description).unwrap();
        message(&mut script, b'Z', b"I").unwrap();
        message(&mut script, b'2', &[]).unwrap();
        message(&mut script, b'D', &row_of(&[vec![b'x'; 64 * 1024]])).unwrap();
        message(&mut script, b'C', b"SELECT 1\0").unwrap();
        message(&mut script, b'Z', b"I").unwrap();
        let (tcp, _server) = crate::interfaces::rdbms::loopback_serving(&script);
        let mut client = Client {
            io: BufReader::new(Conn::Plain(tcp)),
            peer: "fuzz:5432".into(),
            type_names: HashMap::new(),
            broken: false,
        };
        assert_eq!(client.type_name(424_242), "oid 424242");
    }

    #[test]
    fn protocol_errors_name_the_server() {
        let mut script = Vec::new();
        message(&mut script, b'W', &[]).unwrap();
        let Err(Failure::Query(e)) = run_against(&script) else {
            panic!("a CopyBoth response is unexpected here");
        };
        assert_eq!(e.text(), "fuzz:5432 sent an unexpected `W` message");
    }
}
