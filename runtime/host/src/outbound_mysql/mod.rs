//! A small blocking MySQL/MariaDB client for guests' `mysql` interfaces:
//! the v10 handshake (TLS through `SSLRequest` when the address asks for it),
//! `mysql_native_password` and `caching_sha2_password` (with an auth
//! switch), and prepared statements (`COM_STMT_PREPARE`, `_EXECUTE` with
//! typed parameters, `_CLOSE`) so that values keep their types in the binary
//! result protocol. It runs on the worker thread of the invocation over
//! [`outbound_tcp`](crate::outbound_tcp); every read is bounded by the
//! outbound I/O timeout and every size by what the caller allows.
//!
//! Addresses are Spin's (mysql_async's URL): `mysql://user:password@host:port/database`,
//! with `ssl-mode` (or `sslmode`) anything but `disabled`, or
//! `require_ssl=true`, asking for TLS; the certificate is verified, with the
//! component's `[[client_tls]]` if it has one for the host.

mod auth;
pub mod binary;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use crate::blocked_networks::BlockedNetworks;
use crate::outbound_tcp::{self, Conn, ConnectError};
pub use binary::{Column, Param, Value};
pub use wire::ServerError;
use wire::{Buf, Packets, WireError};

use auth::Plugin;

/// Capability flags (`CLIENT_*`).
mod capability {
    pub const LONG_PASSWORD: u32 = 0x1;
    pub const LONG_FLAG: u32 = 0x4;
    pub const CONNECT_WITH_DB: u32 = 0x8;
    pub const PROTOCOL_41: u32 = 0x200;
    pub const SSL: u32 = 0x800;
    pub const TRANSACTIONS: u32 = 0x2000;
    pub const SECURE_CONNECTION: u32 = 0x8000;
    pub const MULTI_RESULTS: u32 = 0x2_0000;
    pub const PS_MULTI_RESULTS: u32 = 0x4_0000;
    pub const PLUGIN_AUTH: u32 = 0x8_0000;
    pub const PLUGIN_AUTH_LENENC_DATA: u32 = 0x20_0000;
    pub const DEPRECATE_EOF: u32 = 0x100_0000;
}

/// What Flint asks for; the connection uses what the server also offers.
const CLIENT_CAPABILITIES: u32 = capability::LONG_PASSWORD
    | capability::LONG_FLAG
    | capability::PROTOCOL_41
    | capability::TRANSACTIONS
    | capability::SECURE_CONNECTION
    | capability::MULTI_RESULTS
    | capability::PS_MULTI_RESULTS
    | capability::PLUGIN_AUTH
    | capability::PLUGIN_AUTH_LENENC_DATA
    | capability::DEPRECATE_EOF;

/// `utf8mb4_general_ci`, which both MySQL (5.5.3 on) and MariaDB know: text
/// arrives as UTF-8 whatever the columns' own character sets.
const UTF8MB4_GENERAL_CI: u8 = 45;

/// The largest packet Flint announces it accepts (mysql_async's default).
const MAX_PACKET: u32 = 16 * 1024 * 1024;

/// The largest handshake-phase packet read (greetings, auth exchanges).
const MAX_HANDSHAKE_PACKET: usize = 64 * 1024;

/// The largest column definition or statement-prepare answer read.
const MAX_META_PACKET: usize = 64 * 1024;

/// The most bytes of column definitions one result set may have (4096
/// columns with long names take a few hundred KiB).
const MAX_METADATA: usize = 4 * 1024 * 1024;

const COM_QUIT: u8 = 0x01;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_CLOSE: u8 = 0x19;

/// Why an address cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("URL error: `Unsupported connection URL scheme `{0}''")]
    Scheme(String),
    #[error("URL error: `Invalid or incomplete connection URL'")]
    Invalid,
    #[error("URL error: `Invalid value `{value}' for connection URL parameter `{param}''")]
    Param { param: String, value: String },
}

/// A parsed `mysql://` address. Its `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct Opts {
    /// As written (an IPv6 address in brackets).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: Option<String>,
    pub tls: bool,
}

impl std::fmt::Debug for Opts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opts")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("database", &self.database)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Opts {
    /// `mysql://[user[:password]@]host[:port][/database][?query]`; user,
    /// password and database are percent-decoded. Query parameters other
    /// than the TLS ones are accepted and ignored (they tune mysql_async's
    /// pool, which Flint does not have).
    pub fn parse(address: &str) -> Result<Self, AddressError> {
        let parts = Parts::split(address).ok_or(AddressError::Invalid)?;
        if parts.scheme != "mysql" {
            return Err(AddressError::Scheme(parts.scheme.to_owned()));
        }
        let (user, password) = parts
            .userinfo
            .split_once(':')
            .unwrap_or((parts.userinfo, ""));
        let database = parts.path.split('/').next().unwrap_or("");
        let mut tls = false;
        for pair in parts.query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (key, value) = (percent_decode(key), percent_decode(value));
            // Spin's own parameter (the MySQL connectors' spelling), then
            // mysql_async's.
            if ["ssl-mode", "sslmode"].contains(&key.to_ascii_lowercase().as_str()) {
                tls = !value.eq_ignore_ascii_case("disabled");
            } else if key == "require_ssl" {
                tls = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(AddressError::Param { param: key, value });
                    }
                };
            }
        }
        Ok(Self {
            host: parts.host.to_owned(),
            port: parts.port.unwrap_or(3306),
            user: percent_decode(user),
            password: percent_decode(password),
            database: Some(percent_decode(database)).filter(|d| !d.is_empty()),
            tls,
        })
    }
}

/// The scheme (lowercase), host and port (if given) of any
/// `scheme://…host…` address, for the permission check, which Spin makes
/// before the address is read as MySQL's.
pub fn authority(address: &str) -> Option<(String, &str, Option<u16>)> {
    let parts = Parts::split(address)?;
    Some((parts.scheme, parts.host, parts.port))
}

/// An address cut at its delimiters.
struct Parts<'a> {
    scheme: String,
    userinfo: &'a str,
    host: &'a str,
    port: Option<u16>,
    path: &'a str,
    query: &'a str,
}

impl<'a> Parts<'a> {
    fn split(address: &'a str) -> Option<Self> {
        let (scheme, rest) = address.split_once("://")?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
        let (host, port) = split_host_port(hostport)?;
        Some(Self {
            scheme: scheme.to_ascii_lowercase(),
            userinfo,
            host,
            port,
            path,
            query,
        })
    }
}

/// `host[:port]` or `[v6][:port]`.
fn split_host_port(hostport: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        let (host, after) = hostport.split_at(end + 1);
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(p.parse().ok()?),
    };
    (!host.is_empty() && !host.contains(['@', '/', ' '])).then_some((host, port))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The server's ERR packet, in mysql_async's words.
    #[error("Server error: `{0}'")]
    Server(ServerError),
    #[error("MySQL server {server}: {error}")]
    Wire { server: String, error: WireError },
    #[error(
        "MySQL server {server} asks for the `{plugin}` authentication plugin, which Flint does not support (mysql_native_password and caching_sha2_password are)"
    )]
    UnsupportedPlugin { server: String, plugin: String },
    #[error(
        "MySQL server {server} needs the password sent in full for caching_sha2_password, which Flint does only over TLS: add `?ssl-mode=REQUIRED` to the address (or log in once with another client so that the server caches the password)"
    )]
    FullAuthNeedsTls { server: String },
    #[error("Driver error: `Client asked for SSL but server does not have this capability'")]
    NoTlsOnServer,
    #[error("Driver error: `Statement takes {required} parameters but {supplied} was supplied.'")]
    ParamCount { required: u16, supplied: usize },
    #[error("query result exceeds limit of {limit} bytes")]
    ResultTooLarge { limit: usize },
    #[error("Driver error: `Connection to the server is closed.'")]
    Closed,
}

/// How to reach the server: the component's networking bounds.
pub struct Dial<'a> {
    pub blocked: &'a BlockedNetworks,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    /// The TLS configuration for the host, asked for only if the address
    /// wants TLS.
    pub tls: &'a dyn Fn() -> Arc<rustls::ClientConfig>,
}

/// A result set: its columns and rows, in the server's types.
#[derive(Debug, Default, PartialEq)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

/// One authenticated connection. After an I/O or protocol error, or a
/// result set abandoned for its size, the connection is closed and every
/// later call fails.
pub struct Client {
    packets: Option<Packets>,
    server: String,
    capabilities: u32,
}

impl Client {
    pub fn connect(opts: &Opts, dial: Dial<'_>) -> Result<Self, MysqlError> {
        let tcp = outbound_tcp::connect(
            &opts.host,
            opts.port,
            dial.blocked,
            dial.connect_timeout,
            dial.io_timeout,
        )?;
        let server = format!("{}:{}", opts.host, opts.port);
        let mut packets = Packets::new(Conn::Plain(tcp));
        let wire = |error| MysqlError::Wire {
            server: server.clone(),
            error,
        };
        let greeting = packets.read(MAX_HANDSHAKE_PACKET).map_err(wire)?;
        if greeting.first() == Some(&0xff) {
            return Err(MysqlError::Server(
                ServerError::parse(&greeting).map_err(wire)?,
            ));
        }
        let greeting = Greeting::parse(&greeting).map_err(wire)?;
        let mut capabilities = CLIENT_CAPABILITIES & greeting.capabilities;
        if opts.database.is_some() {
            capabilities |= capability::CONNECT_WITH_DB & greeting.capabilities;
        }
        if capabilities & capability::PROTOCOL_41 == 0 {
            return Err(wire(WireError::Malformed(
                "greeting: the server does not speak protocol 4.1",
            )));
        }
        let mut secure = false;
        if opts.tls {
            if greeting.capabilities & capability::SSL == 0 {
                return Err(MysqlError::NoTlsOnServer);
            }
            capabilities |= capability::SSL;
            packets.write(&login_prefix(capabilities)).map_err(wire)?;
            let (conn, seq) = packets.into_parts().ok_or_else(|| {
                wire(WireError::Malformed(
                    "greeting: data before the TLS handshake",
                ))
            })?;
            let Conn::Plain(tcp) = conn else {
                return Err(wire(WireError::Malformed("greeting")));
            };
            let tls = outbound_tcp::tls_handshake((dial.tls)(), &opts.host, tcp)?;
            packets = Packets::with_seq(Conn::Tls(Box::new(tls)), seq);
            secure = true;
        }
        let mut client = Client {
            packets: Some(packets),
            server,
            capabilities,
        };
        client.authenticate(opts, &greeting, secure)?;
        Ok(client)
    }

    fn wire(&mut self, error: WireError) -> MysqlError {
        // An I/O or framing failure leaves the connection in an unknown state.
        self.packets = None;
        MysqlError::Wire {
            server: self.server.clone(),
            error,
        }
    }

    fn packets(&mut self) -> Result<&mut Packets, MysqlError> {
        self.packets.as_mut().ok_or(MysqlError::Closed)
    }

    fn read(&mut self, limit: usize) -> Result<Vec<u8>, MysqlError> {
        let read = self.packets()?.read(limit);
        read.map_err(|e| self.wire(e))
    }

    fn write(&mut self, payload: &[u8]) -> Result<(), MysqlError> {
        let written = self.packets()?.write(payload);
        written.map_err(|e| self.wire(e))
    }

    fn malformed(&mut self, what: &'static str) -> MysqlError {
        self.wire(WireError::Malformed(what))
    }

    /// The handshake response and whatever exchange the plugin needs, until
    /// the server's OK (or ERR).
    fn authenticate(
        &mut self,
        opts: &Opts,
        greeting: &Greeting,
        secure: bool,
    ) -> Result<(), MysqlError> {
        // As mysql_async: answer with the server's plugin if it is
        // caching_sha2_password, else with mysql_native_password, and let the
        // server switch.
        let mut plugin = match Plugin::by_name(&greeting.plugin) {
            Some(Plugin::CachingSha2Password) => Plugin::CachingSha2Password,
            _ => Plugin::NativePassword,
        };
        let mut nonce = greeting.nonce.clone();
        let password = opts.password.as_bytes();
        let mut response = login_prefix(self.capabilities);
        response.extend_from_slice(opts.user.as_bytes());
        response.push(0);
        let scramble = plugin.scramble(password, &nonce);
        if self.capabilities & capability::PLUGIN_AUTH_LENENC_DATA != 0 {
            wire::put_lenenc_bytes(&mut response, &scramble);
        } else {
            // At most 32 bytes: the length fits in its byte.
            response.push(scramble.len() as u8);
            response.extend_from_slice(&scramble);
        }
        if self.capabilities & capability::CONNECT_WITH_DB != 0 {
            response.extend_from_slice(opts.database.as_deref().unwrap_or("").as_bytes());
            response.push(0);
        }
        if self.capabilities & capability::PLUGIN_AUTH != 0 {
            response.extend_from_slice(plugin.name().as_bytes());
            response.push(0);
        }
        self.write(&response)?;
        let mut switched = false;
        loop {
            let packet = self.read(MAX_HANDSHAKE_PACKET)?;
            match packet.first() {
                Some(0x00) => return Ok(()),
                Some(0xff) => {
                    let error = ServerError::parse(&packet).map_err(|e| self.wire(e))?;
                    return Err(MysqlError::Server(error));
                }
                // An auth switch request: the plugin to use and its nonce,
                // answered once.
                Some(0xfe) if !switched => {
                    switched = true;
                    let mut buf = Buf::new(&packet[1..], "auth switch request");
                    let name = buf.nul_bytes().map_err(|e| self.wire(e))?;
                    let Some(next) = Plugin::by_name(name) else {
                        let plugin = String::from_utf8_lossy(name).into_owned();
                        self.packets = None;
                        return Err(MysqlError::UnsupportedPlugin {
                            server: self.server.clone(),
                            plugin,
                        });
                    };
                    plugin = next;
                    nonce = auth::nonce(buf.rest());
                    self.write(&plugin.scramble(password, &nonce))?;
                }
                // caching_sha2_password's verdict on the scramble.
                Some(0x01) if plugin == Plugin::CachingSha2Password => match packet.get(1) {
                    // Fast authentication succeeded: the OK follows.
                    Some(0x03) => {}
                    // The server has no cached hash: the password itself.
                    Some(0x04) if secure => {
                        let mut clear = password.to_vec();
                        clear.push(0);
                        self.write(&clear)?;
                    }
                    Some(0x04) => {
                        self.packets = None;
                        return Err(MysqlError::FullAuthNeedsTls {
                            server: self.server.clone(),
                        });
                    }
                    _ => return Err(self.malformed("caching_sha2_password exchange")),
                },
                _ => return Err(self.malformed("authentication reply")),
            }
        }
    }

    /// Runs `statement` and returns its first result set (empty for a
    /// statement without one), holding at most `budget` bytes of rows
    /// (about what they cost once lowered into the guest: each value's
    /// 16-byte slot and its bytes).
    pub fn query(
        &mut self,
        statement: &str,
        params: &[Param<'_>],
        budget: usize,
    ) -> Result<ResultSet, MysqlError> {
        self.run(statement, params, Rows::Keep(budget))
    }

    /// Runs `statement`, discarding any result set (read a row at a time,
    /// none larger than `budget`).
    pub fn execute(
        &mut self,
        statement: &str,
        params: &[Param<'_>],
        budget: usize,
    ) -> Result<(), MysqlError> {
        self.run(statement, params, Rows::Drop(budget)).map(drop)
    }

    /// Prepare, execute, close. The statement is closed whatever the
    /// outcome (while the connection lives).
    fn run(
        &mut self,
        statement: &str,
        params: &[Param<'_>],
        rows: Rows,
    ) -> Result<ResultSet, MysqlError> {
        let prepared = self.prepare(statement)?;
        let result = if usize::from(prepared.params) != params.len() {
            Err(MysqlError::ParamCount {
                required: prepared.params,
                supplied: params.len(),
            })
        } else {
            self.execute_prepared(prepared.id, params, rows)
        };
        if self.packets.is_some() {
            let mut close = vec![COM_STMT_CLOSE];
            close.extend_from_slice(&prepared.id.to_le_bytes());
            self.packets()?.begin_command();
            // No reply: a failure shows on the next command.
            self.write(&close)?;
        }
        result
    }

    fn prepare(&mut self, statement: &str) -> Result<Prepared, MysqlError> {
        let mut command = Vec::with_capacity(statement.len() + 1);
        command.push(COM_STMT_PREPARE);
        command.extend_from_slice(statement.as_bytes());
        self.packets()?.begin_command();
        self.write(&command)?;
        let reply = self.read(MAX_META_PACKET)?;
        if reply.first() == Some(&0xff) {
            let error = ServerError::parse(&reply).map_err(|e| self.wire(e))?;
            return Err(MysqlError::Server(error));
        }
        let parsed = (|| {
            let mut buf = Buf::new(&reply, "statement prepare reply");
            if buf.u8()? != 0 {
                return Err(WireError::Malformed("statement prepare reply"));
            }
            let id = buf.u32()?;
            let columns = buf.u16()?;
            let params = buf.u16()?;
            Ok((id, columns, params))
        })();
        let (id, columns, params) = parsed.map_err(|e| self.wire(e))?;
        // The definitions of the parameters and the columns; execution sends
        // the columns again, so these are only read past.
        for count in [params, columns] {
            if count > 0 {
                for _ in 0..count {
                    self.read(MAX_META_PACKET)?;
                }
                self.end_of_metadata()?;
            }
        }
        Ok(Prepared { id, params })
    }

    /// The EOF packet after column definitions, unless `CLIENT_DEPRECATE_EOF`
    /// dropped it.
    fn end_of_metadata(&mut self) -> Result<(), MysqlError> {
        if self.capabilities & capability::DEPRECATE_EOF == 0 {
            let eof = self.read(MAX_META_PACKET)?;
            if !wire::is_eof(&eof) {
                return Err(self.malformed("end of column definitions"));
            }
        }
        Ok(())
    }

    fn execute_prepared(
        &mut self,
        id: u32,
        params: &[Param<'_>],
        rows: Rows,
    ) -> Result<ResultSet, MysqlError> {
        let mut command = vec![COM_STMT_EXECUTE];
        command.extend_from_slice(&id.to_le_bytes());
        command.push(0); // no cursor
        command.extend_from_slice(&1u32.to_le_bytes()); // iteration count
        binary::put_params(&mut command, params);
        self.packets()?.begin_command();
        self.write(&command)?;
        let mut first = None;
        loop {
            // Only the first result is kept, as in Spin.
            let rows = match rows {
                Rows::Keep(_) if first.is_none() => rows,
                Rows::Keep(budget) | Rows::Drop(budget) => Rows::Drop(budget),
            };
            let (set, status) = self.read_result(rows)?;
            first.get_or_insert(set);
            if status & wire::MORE_RESULTS_EXIST == 0 {
                return Ok(first.unwrap_or_default());
            }
        }
    }

    /// One result (an OK or a result set) and the server status after it.
    fn read_result(&mut self, rows: Rows) -> Result<(ResultSet, u16), MysqlError> {
        let head = self.read(MAX_META_PACKET)?;
        match head.first() {
            Some(0x00) => {
                let status = wire::ok_status(&head).map_err(|e| self.wire(e))?;
                return Ok((ResultSet::default(), status));
            }
            Some(0xff) => {
                let error = ServerError::parse(&head).map_err(|e| self.wire(e))?;
                return Err(MysqlError::Server(error));
            }
            _ => {}
        }
        let count = Buf::new(&head, "result set header")
            .lenenc()
            .map_err(|e| self.wire(e))?;
        // A statement's columns are counted in a 16-bit field.
        if count == 0 || count > u64::from(u16::MAX) {
            return Err(self.malformed("result set header"));
        }
        let mut columns = Vec::new();
        let mut metadata = 0usize;
        for _ in 0..count {
            let definition = self.read(MAX_META_PACKET)?;
            metadata += definition.len();
            if metadata > MAX_METADATA {
                return Err(self.malformed("result set: column definitions too long"));
            }
            let column = Column::parse(&definition).map_err(|e| self.wire(e))?;
            columns.push(column);
        }
        self.end_of_metadata()?;
        let (keep, budget) = match rows {
            Rows::Keep(budget) => (true, budget),
            Rows::Drop(budget) => (false, budget),
        };
        let mut rows = Vec::new();
        let mut used = 0usize;
        let row_cost = 16 * columns.len();
        loop {
            // A row never needs more than the budget left (with room for the
            // OK packet that ends the rows).
            let limit = budget.saturating_sub(used).max(1024);
            let packet = match self.read(limit) {
                Err(MysqlError::Wire {
                    error: WireError::TooLarge { .. },
                    ..
                }) => return Err(MysqlError::ResultTooLarge { limit: budget }),
                other => other?,
            };
            if wire::is_eof(&packet) {
                let status = if self.capabilities & capability::DEPRECATE_EOF != 0 {
                    wire::ok_status(&packet)
                } else {
                    wire::eof_status(&packet)
                };
                let status = status.map_err(|e| self.wire(e))?;
                return Ok((ResultSet { columns, rows }, status));
            }
            if packet.first() == Some(&0xff) {
                // The rest of the result is not coming: the connection
                // remains usable.
                let error = ServerError::parse(&packet).map_err(|e| self.wire(e))?;
                return Err(MysqlError::Server(error));
            }
            if !keep {
                continue;
            }
            used = used.saturating_add(packet.len() + row_cost);
            if used > budget {
                // The rest of the rows are not read: the connection is given up.
                self.packets = None;
                return Err(MysqlError::ResultTooLarge { limit: budget });
            }
            let row = binary::decode_row(&packet, &columns).map_err(|e| self.wire(e))?;
            rows.push(row);
        }
    }
}

impl Drop for Client {
    /// Says goodbye, so that the server does not log an aborted connection.
    fn drop(&mut self) {
        if let Some(packets) = self.packets.as_mut() {
            packets.begin_command();
            let _ = packets.write(&[COM_QUIT]);
        }
    }
}

/// What to do with a result's rows: keep them, within a budget of bytes,
/// or read and drop them, none larger than the budget.
#[derive(Clone, Copy)]
enum Rows {
    Keep(usize),
    Drop(usize),
}

struct Prepared {
    id: u32,
    params: u16,
}

/// What a v10 greeting (`Protocol::HandshakeV10`) says.
#[derive(Debug, PartialEq, Eq)]
struct Greeting {
    capabilities: u32,
    /// The 20-byte scramble.
    nonce: Vec<u8>,
    /// The server's default authentication plugin (may be empty).
    plugin: Vec<u8>,
}

impl Greeting {
    fn parse(payload: &[u8]) -> Result<Self, WireError> {
        let mut buf = Buf::new(payload, "greeting");
        if buf.u8()? != 10 {
            return Err(WireError::Malformed("greeting: not protocol version 10"));
        }
        buf.nul_bytes()?; // server version
        buf.u32()?; // connection id
        let mut nonce = buf.bytes(8)?.to_vec();
        buf.u8()?; // filler
        let mut capabilities = u32::from(buf.u16()?);
        let mut plugin = Vec::new();
        if !buf.is_empty() {
            buf.u8()?; // character set
            buf.u16()?; // status
            capabilities |= u32::from(buf.u16()?) << 16;
            let data_len = usize::from(buf.u8()?);
            buf.bytes(10)?; // reserved (MariaDB's extended capabilities)
            if capabilities & capability::SECURE_CONNECTION != 0 {
                let len = data_len.saturating_sub(8).max(13);
                nonce.extend_from_slice(buf.bytes(len)?);
            }
            if capabilities & capability::PLUGIN_AUTH != 0 {
                // Some servers omit the final NUL.
                let rest = buf.rest();
                plugin = rest.split(|&b| b == 0).next().unwrap_or(&[]).to_vec();
            }
        }
        nonce.truncate(20);
        Ok(Self {
            capabilities,
            nonce: auth::nonce(&nonce),
            plugin,
        })
    }
}

/// The fixed start of a handshake response, which alone is the
/// `SSLRequest`: capabilities, maximum packet, character set, 23 zeros.
fn login_prefix(capabilities: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&capabilities.to_le_bytes());
    out.extend_from_slice(&MAX_PACKET.to_le_bytes());
    out.push(UTF8MB4_GENERAL_CI);
    out.extend_from_slice(&[0; 23]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            Opts::parse("mysql://spin:p%40ss@db.example:3307/shop?ssl-mode=REQUIRED").unwrap(),
            Opts {
                host: "db.example".into(),
                port: 3307,
                user: "spin".into(),
                password: "p@ss".into(),
                database: Some("shop".into()),
                tls: true,
            }
        );
        let secret = Opts::parse("mysql://u:hunter2@h/db").unwrap();
        assert!(!format!("{secret:?}").contains("hunter2"));
        let plain = Opts::parse("mysql://root@127.0.0.1/db").unwrap();
        assert_eq!(
            (plain.port, plain.tls, plain.password.as_str()),
            (3306, false, "")
        );
        let v6 = Opts::parse("mysql://u:p@[::1]:3310").unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.port, v6.database),
            ("[::1]", 3310, None)
        );
        for (address, tls) in [
            ("mysql://h/db?sslmode=disabled", false),
            ("mysql://h/db?SsLmOdE=VERIFY_CA&pool_max=10", true),
            ("mysql://h/db?require_ssl=true", true),
            ("mysql://h/db?ssl-mode=DISABLED", false),
        ] {
            assert_eq!(Opts::parse(address).unwrap().tls, tls, "{address}");
        }
        assert_eq!(
            Opts::parse("postgres://h/db"),
            Err(AddressError::Scheme("postgres".into()))
        );
        for bad in [
            "mysql://",
            "mysql://:3306/db",
            "mysql://h:port/db",
            "mysql://[::1/db",
            "h/db",
        ] {
            assert!(Opts::parse(bad).is_err(), "{bad}");
            assert!(authority(bad).is_none(), "{bad}");
        }
        assert_eq!(
            authority("MySQL://u:p@Db.example:3307/x"),
            Some(("mysql".into(), "Db.example", Some(3307)))
        );
        assert_eq!(
            authority("postgres://h"),
            Some(("postgres".into(), "h", None))
        );
        assert!(matches!(
            Opts::parse("mysql://h/db?require_ssl=yes"),
            Err(AddressError::Param { .. })
        ));
    }

    /// A MariaDB 10.11 greeting as captured from the wire.
    fn mariadb_greeting() -> Vec<u8> {
        let mut g = vec![10];
        g.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
        g.extend_from_slice(&7u32.to_le_bytes());
        g.extend_from_slice(b"abcdefgh");
        g.push(0);
        g.extend_from_slice(&0xf7feu16.to_le_bytes());
        g.push(45);
        g.extend_from_slice(&2u16.to_le_bytes());
        g.extend_from_slice(&0x81bfu16.to_le_bytes());
        g.push(21);
        g.extend_from_slice(&[0; 6]);
        g.extend_from_slice(&[0x1d, 0, 0, 0]);
        g.extend_from_slice(b"ijklmnopqrst\0");
        g.extend_from_slice(b"mysql_native_password\0");
        g
    }

    #[test]
    fn greetings() {
        let greeting = Greeting::parse(&mariadb_greeting()).unwrap();
        assert_eq!(greeting.nonce, b"abcdefghijklmnopqrst");
        assert_eq!(greeting.plugin, b"mysql_native_password");
        assert_eq!(greeting.capabilities, 0x81bf_f7fe);
        let g = mariadb_greeting();
        // Cut right after the lower capabilities it is a pre-4.1 greeting
        // (refused by `connect`); cut anywhere else before the plugin name it
        // is malformed.
        let short = 1 + 32 + 4 + 8 + 1 + 2;
        assert!(Greeting::parse(&g[..short]).is_ok());
        for cut in (1..short).chain(short + 1..g.len() - 22) {
            assert!(Greeting::parse(&g[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Greeting::parse(&[9, 0]).is_err());
    }

    /// A scripted server on a loopback port: `script` gets the accepted
    /// connection after the greeting (with `plugin` as the default) is sent.
    fn fake_server(
        plugin: &'static str,
        script: impl FnOnce(&mut Packets) + Send + 'static,
    ) -> (u16, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let mut packets = Packets::new(Conn::Plain(tcp));
            let mut greeting = mariadb_greeting();
            let name = greeting.len() - "mysql_native_password\0".len();
            greeting.truncate(name);
            greeting.extend_from_slice(plugin.as_bytes());
            greeting.push(0);
            packets.write(&greeting).unwrap();
            script(&mut packets);
        });
        (port, server)
    }

    fn connect_to(port: u16, address: &str) -> Result<Client, MysqlError> {
        connect_within(port, address, Duration::from_secs(5))
    }

    fn connect_within(
        port: u16,
        address: &str,
        io_timeout: Duration,
    ) -> Result<Client, MysqlError> {
        let blocked = BlockedNetworks::default();
        let no_tls = || -> Arc<rustls::ClientConfig> { unreachable!("no TLS in these tests") };
        let opts = Opts::parse(&format!("mysql://{address}@127.0.0.1:{port}/db")).unwrap();
        Client::connect(
            &opts,
            Dial {
                blocked: &blocked,
                connect_timeout: Duration::from_secs(5),
                io_timeout,
                tls: &no_tls,
            },
        )
    }

    const OK: &[u8] = &[0, 0, 0, 2, 0, 0, 0];

    #[test]
    fn caching_sha2_fast_authentication() {
        let (port, server) = fake_server("caching_sha2_password", |p| {
            let response = p.read(1 << 16).unwrap();
            let expected = Plugin::CachingSha2Password.scramble(b"pw", b"abcdefghijklmnopqrst");
            assert!(response.windows(32).any(|w| w == expected));
            p.write(&[0x01, 0x03]).unwrap();
            p.write(OK).unwrap();
        });
        assert!(connect_to(port, "u:pw").is_ok());
        server.join().unwrap();
    }

    #[test]
    fn caching_sha2_full_authentication_needs_tls() {
        let (port, server) = fake_server("caching_sha2_password", |p| {
            p.read(1 << 16).unwrap();
            p.write(&[0x01, 0x04]).unwrap();
        });
        let error = connect_to(port, "u:pw").err().unwrap();
        assert!(
            matches!(error, MysqlError::FullAuthNeedsTls { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("ssl-mode=REQUIRED"), "{error}");
        server.join().unwrap();
    }

    #[test]
    fn auth_switches() {
        // To mysql_native_password with a new nonce: answered with it.
        let (port, server) = fake_server("client_ed25519", |p| {
            p.read(1 << 16).unwrap();
            let mut switch = vec![0xfe];
            switch.extend_from_slice(b"mysql_native_password\0ABCDEFGHIJKLMNOPQRST\0");
            p.write(&switch).unwrap();
            let answer = p.read(1 << 16).unwrap();
            assert_eq!(
                answer,
                Plugin::NativePassword.scramble(b"pw", b"ABCDEFGHIJKLMNOPQRST")
            );
            p.write(OK).unwrap();
        });
        assert!(connect_to(port, "u:pw").is_ok());
        server.join().unwrap();
        // To a plugin Flint does not have: named in the error.
        let (port, server) = fake_server("mysql_native_password", |p| {
            p.read(1 << 16).unwrap();
            p.write(b"\xfeclient_ed25519\0nonce").unwrap();
        });
        let error = connect_to(port, "u:pw").err().unwrap();
        assert!(error.to_string().contains("`client_ed25519`"), "{error}");
        server.join().unwrap();
    }

    #[test]
    fn a_silent_server_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let error = connect_within(port, "u:pw", Duration::from_millis(50))
            .err()
            .unwrap();
        assert_eq!(
            error.to_string(),
            format!("MySQL server 127.0.0.1:{port}: no answer within the outbound timeout")
        );
        drop(listener);
    }

    #[test]
    fn hostile_servers_are_errors() {
        // A packet out of sequence.
        let (port, server) = fake_server("mysql_native_password", |p| {
            p.read(1 << 16).unwrap();
            p.begin_command();
            p.write(OK).unwrap();
        });
        let error = connect_to(port, "u:pw").err().unwrap();
        assert!(
            error.to_string().contains("packet 0 where 2 was due"),
            "{error}"
        );
        server.join().unwrap();
        // A packet longer than anything the handshake needs.
        let (port, server) = fake_server("mysql_native_password", |p| {
            p.read(1 << 16).unwrap();
            p.write(&vec![0; 100_000]).unwrap();
        });
        let error = connect_to(port, "u:pw").err().unwrap();
        assert!(
            error.to_string().contains("more than 65536 bytes"),
            "{error}"
        );
        server.join().unwrap();
        // A result set whose header claims more columns than a statement has.
        let (port, server) = fake_server("mysql_native_password", |p| {
            p.read(1 << 16).unwrap();
            p.write(OK).unwrap();
            // Each command starts a sequence.
            p.begin_command();
            p.read(1 << 16).unwrap(); // prepare: statement 1, no columns, no parameters
            p.write(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
            p.begin_command();
            p.read(1 << 16).unwrap(); // execute
            p.write(&[0xfd, 0xff, 0xff, 0xff]).unwrap();
        });
        let mut client = connect_to(port, "u:pw").unwrap();
        let error = client.query("SELECT 1", &[], 1 << 20).err().unwrap();
        assert!(error.to_string().contains("result set header"), "{error}");
        // The connection is given up.
        assert!(matches!(
            client.query("SELECT 1", &[], 1 << 20),
            Err(MysqlError::Closed)
        ));
        server.join().unwrap();
    }

    /// `payload` as one packet numbered `seq`.
    fn frame(out: &mut Vec<u8>, seq: u8, payload: &[u8]) {
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
        out.push(seq);
        out.extend_from_slice(payload);
    }

    /// A valid answer to preparing and executing `SELECT 'x'`: the
    /// statement (one column, no parameters), then its result set of one
    /// row (`CLIENT_DEPRECATE_EOF`: no EOF packets).
    fn select_script() -> Vec<u8> {
        let mut column = Vec::new();
        for field in ["def", "", "", "", "a", ""] {
            wire::put_lenenc_bytes(&mut column, field.as_bytes());
        }
        column.push(0x0c);
        column.extend_from_slice(&45u16.to_le_bytes());
        column.extend_from_slice(&4u32.to_le_bytes());
        column.push(binary::column_type::VAR_STRING);
        column.extend_from_slice(&[0, 0, 0, 0, 0]);
        let mut script = Vec::new();
        frame(&mut script, 1, &[0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        frame(&mut script, 2, &column);
        frame(&mut script, 1, &[1]);
        frame(&mut script, 2, &column);
        frame(&mut script, 3, &[0, 0, 1, b'x']);
        frame(&mut script, 4, &[0xfe, 0, 0, 2, 0, 0, 0]);
        script
    }

    /// Runs `SELECT 'x'` against a server that has sent `bytes`.
    fn query_against(bytes: &[u8], capabilities: u32) -> Result<ResultSet, MysqlError> {
        let (tcp, _server) = crate::interfaces::rdbms::loopback_serving(bytes);
        let mut client = Client {
            packets: Some(Packets::new(Conn::Plain(tcp))),
            server: "fuzz:3306".into(),
            capabilities,
        };
        client.query("SELECT 'x'", &[], 1 << 20)
    }

    #[test]
    fn the_scripted_select_answers() {
        let set = query_against(&select_script(), CLIENT_CAPABILITIES).unwrap();
        assert_eq!(set.rows, [[Value::Bytes(b"x".to_vec())]]);
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any payload, or a valid one cut and flipped, is parsed to a value
        /// or an error, never a panic.
        #[test]
        fn hostile_payloads_never_panic(
            noise in prop::collection::vec(any::<u8>(), 0..96),
            types in prop::collection::vec((any::<u8>(), any::<u16>()), 0..12),
            flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            cut in any::<usize>(),
        ) {
            let _ = Greeting::parse(&noise);
            let mut greeting = mariadb_greeting();
            for (at, byte) in &flips {
                let len = greeting.len();
                greeting[at % len] ^= byte;
            }
            greeting.truncate(cut % (greeting.len() + 1));
            let _ = Greeting::parse(&greeting);
            let _ = ServerError::parse(&noise);
            let _ = wire::ok_status(&noise);
            let _ = wire::eof_status(&noise);
            let _ = Column::parse(&noise);
            let columns: Vec<Column> = types
                .iter()
                .map(|&(column_type, flags)| Column {
                    name: "c".into(),
                    column_type,
                    flags,
                })
                .collect();
            let _ = binary::decode_row(&noise, &columns);
            // A row header with no NULLs, so that every value is decoded.
            let mut row = vec![0; 1 + (columns.len() + 9) / 8];
            row.extend_from_slice(&noise);
            let _ = binary::decode_row(&row, &columns);
            let _ = Opts::parse(&String::from_utf8_lossy(&noise));
        }

        /// A server answering a statement with noise, or with a valid
        /// exchange cut and flipped, fails it without a panic.
        #[test]
        fn hostile_servers_never_panic(
            noise in prop::collection::vec(any::<u8>(), 0..256),
            flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            cut in any::<usize>(),
            deprecate_eof in any::<bool>(),
        ) {
            let capabilities = if deprecate_eof {
                CLIENT_CAPABILITIES
            } else {
                CLIENT_CAPABILITIES & !capability::DEPRECATE_EOF
            };
            let _ = query_against(&noise, capabilities);
            let mut script = select_script();
            for (at, byte) in &flips {
                let len = script.len();
                script[at % len] ^= byte;
            }
            script.truncate(cut % (script.len() + 1));
            script.extend_from_slice(&noise);
            let _ = query_against(&script, capabilities);
        }
    }

    #[test]
    fn the_ssl_request_is_the_login_prefix() {
        let prefix = login_prefix(CLIENT_CAPABILITIES | capability::SSL);
        assert_eq!(prefix.len(), 32);
        assert_eq!(prefix[8], UTF8MB4_GENERAL_CI);
    }
}
