//! Connections out for guests' clients (HTTP, Redis, PostgreSQL, MySQL): a
//! TCP connection to an allowed host that avoids `block_networks`, bounded by
//! the outbound timeouts, optionally upgraded to TLS with the component's
//! `[[client_tls]]` configuration. Blocking: the clients run on the worker
//! thread of the invocation that asked for them.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::blocked_networks::BlockedNetworks;
use crate::tls::TlsFailure;

/// Why no connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve {host}: {reason}")]
    Dns { host: String, reason: String },
    #[error("{0} resolves only to addresses in block_networks")]
    Prohibited(String),
    #[error("connecting to {0} timed out")]
    Timeout(String),
    #[error("connecting to {host}: {reason}")]
    Refused { host: String, reason: String },
    #[error("TLS with {host}: {reason}")]
    Tls {
        host: String,
        reason: String,
        failure: Option<TlsFailure>,
    },
}

/// Connects to the first address of `host:port` outside `blocked` that
/// answers within `connect_timeout`; reads and writes then time out after
/// `io_timeout` each.
pub fn connect(
    host: &str,
    port: u16,
    blocked: &BlockedNetworks,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let mut addrs: Vec<_> = (bare, port)
        .to_socket_addrs()
        .map_err(|e| ConnectError::Dns {
            host: host.to_owned(),
            reason: e.to_string(),
        })?
        .collect();
    let resolved = addrs.len();
    addrs.retain(|addr| !blocked.is_blocked(addr.ip()));
    if resolved > 0 && addrs.is_empty() {
        return Err(ConnectError::Prohibited(host.to_owned()));
    }
    let mut last = ConnectError::Dns {
        host: host.to_owned(),
        reason: format!("{host} has no address"),
    };
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, connect_timeout) {
            Ok(tcp) => {
                let io = |e: std::io::Error| ConnectError::Refused {
                    host: host.to_owned(),
                    reason: e.to_string(),
                };
                tcp.set_read_timeout(Some(io_timeout)).map_err(io)?;
                tcp.set_write_timeout(Some(io_timeout)).map_err(io)?;
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = ConnectError::Timeout(format!("{host}:{port}"))
            }
            Err(e) => {
                last = ConnectError::Refused {
                    host: format!("{host}:{port}"),
                    reason: e.to_string(),
                }
            }
        }
    }
    Err(last)
}

/// Runs the TLS handshake over `tcp` to completion before anything is sent,
/// so that certificate problems are reported as such; the server name is
/// `host`.
pub fn tls_handshake(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    mut tcp: TcpStream,
) -> Result<TlsStream, ConnectError> {
    let tls_error = |reason: String, failure| ConnectError::Tls {
        host: host.to_owned(),
        reason,
        failure,
    };
    let name = ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    )
    .map_err(|e| tls_error(format!("invalid server name: {e}"), None))?;
    let mut conn =
        rustls::ClientConnection::new(config, name).map_err(|e| tls_error(e.to_string(), None))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| tls_error(e.to_string(), TlsFailure::of(&e)))?;
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A connection out, plain or TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Conn {
    /// The TCP connection under it (for timeouts).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}
