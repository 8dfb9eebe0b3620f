//! MQTT over TLS without rumqttc's TLS features (they pin a rustls-webpki
//! with published advisories). rumqttc's one transport hook is a Unix
//! socket: Flint gives it a socket in a private directory (mode 0700, so no
//! other local user can borrow the device's certificate), and for every
//! connection rumqttc opens there, connects to the broker, completes the TLS
//! handshake with Flint's rustls configuration, and carries the bytes both
//! ways. A failed handshake is logged with the broker and the reason, and
//! rumqttc sees its connection close and retries with its backoff.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use crate::tls::TlsFailure;

/// A TLS configuration a broker connection uses; compared by identity.
#[derive(Clone)]
pub struct TlsClient(pub Arc<ClientConfig>);

impl PartialEq for TlsClient {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TlsClient {}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsClient")
    }
}

/// Connecting and the handshake must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The private directory the bridges' sockets live in, made once per process.
fn socket_dir() -> std::io::Result<&'static PathBuf> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(dir) = DIR.get() {
        return Ok(dir);
    }
    use std::os::unix::fs::DirBuilderExt as _;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("flint-{}-{nanos}", std::process::id()));
    // `create` (not `create_all`) fails on an existing path: nobody can have
    // prepared it for us.
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(DIR.get_or_init(|| dir))
}

/// Starts a bridge to `host:port` and returns the socket rumqttc should use.
pub fn bridge(host: &str, port: u16, tls: &TlsClient) -> std::io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = socket_dir()?.join(format!(
        "broker-{}.sock",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let listener = UnixListener::bind(&path)?;
    let (host, config) = (host.to_owned(), tls.0.clone());
    std::thread::Builder::new()
        .name("flint-mqtt-tls".into())
        .spawn(move || {
            for local in listener.incoming().flatten() {
                let (broker, config) = (host.clone(), config.clone());
                let spawned = std::thread::Builder::new()
                    .name("flint-mqtt-tls".into())
                    .spawn(move || carry(local, &broker, port, config));
                if let Err(e) = spawned {
                    tracing::error!(target: "flint::tls", broker = %host, "cannot start a TLS bridge thread: {e}");
                }
            }
        })?;
    Ok(path)
}

/// One connection: handshake, then bytes both ways until either side closes.
///
/// Only this thread writes to the broker's socket, so TLS records leave in
/// the order rustls made them; and no thread writes to a socket while
/// holding the connection's lock, so a full socket in one direction can
/// never stop the other direction from being read (which could deadlock
/// with a broker that is itself blocked writing to us).
fn carry(local: UnixStream, host: &str, port: u16, config: Arc<ClientConfig>) {
    let broker = format!("{host}:{port}");
    let (conn, tcp) = match connect(host, port, config) {
        Ok(connected) => connected,
        Err(why) => {
            tracing::warn!(target: "flint::tls", %broker, "MQTT over TLS: {why}");
            return;
        }
    };
    let (Ok(mut tcp_out), Ok(local_out)) = (tcp.try_clone(), local.try_clone()) else {
        return;
    };
    let conn = Arc::new(Mutex::new(conn));
    let from_broker = {
        let conn = conn.clone();
        let (mut tcp_in, mut local_out) = (tcp, local_out);
        std::thread::Builder::new().name("flint-mqtt-tls".into()).spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            let mut plain = Vec::new();
            loop {
                let n = match tcp_in.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                // rustls takes at most its buffer's worth at a time: feed the
                // read in as many steps as it needs, decrypting after each.
                let mut failed = false;
                {
                    let mut c = lock(&conn);
                    let mut data = &buf[..n];
                    while !data.is_empty() {
                        if c.read_tls(&mut data).is_err() {
                            failed = true;
                            break;
                        }
                        if let Err(e) = c.process_new_packets() {
                            tracing::warn!(target: "flint::tls", broker = %broker, "MQTT over TLS: {e}");
                            failed = true;
                            break;
                        }
                        let _ = c.reader().read_to_end(&mut plain);
                    }
                }
                if failed {
                    break;
                }
                if !plain.is_empty() && local_out.write_all(&plain).is_err() {
                    break;
                }
                plain.clear();
            }
            let _ = local_out.shutdown(Shutdown::Both);
        })
    };
    let mut local_in = local;
    let mut buf = vec![0u8; 16 * 1024];
    let mut records = Vec::new();
    loop {
        let n = match local_in.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut c = lock(&conn);
            if c.writer().write_all(&buf[..n]).is_err() {
                break;
            }
            // Also carries what the reading side left queued (key updates).
            while c.wants_write() && c.write_tls(&mut records).is_ok() {}
        }
        if tcp_out.write_all(&records).is_err() {
            break;
        }
        records.clear();
    }
    {
        let mut c = lock(&conn);
        c.send_close_notify();
        while c.wants_write() && c.write_tls(&mut records).is_ok() {}
    }
    let _ = tcp_out.write_all(&records);
    let _ = tcp_out.shutdown(Shutdown::Both);
    if let Ok(thread) = from_broker {
        let _ = thread.join();
    }
}

fn lock(conn: &Mutex<ClientConnection>) -> std::sync::MutexGuard<'_, ClientConnection> {
    conn.lock().unwrap_or_else(|e| e.into_inner())
}

/// TCP to the broker and a finished TLS handshake.
fn connect(
    host: &str,
    port: u16,
    config: Arc<ClientConfig>,
) -> Result<(ClientConnection, TcpStream), String> {
    let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("`{host}`: {e}"))?;
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("{host} has no address");
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, HANDSHAKE_TIMEOUT) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    let mut tcp = tcp.ok_or(last)?;
    let _ = tcp.set_nodelay(true);
    let timeouts = |tcp: &TcpStream, t: Option<Duration>| {
        tcp.set_read_timeout(t)
            .and_then(|()| tcp.set_write_timeout(t))
    };
    timeouts(&tcp, Some(HANDSHAKE_TIMEOUT)).map_err(|e| e.to_string())?;
    let mut conn = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            return Err(match TlsFailure::of(&e) {
                Some(failure) => failure.to_string(),
                None => format!("the TLS handshake failed: {e}"),
            });
        }
    }
    timeouts(&tcp, None).map_err(|e| e.to_string())?;
    Ok((conn, tcp))
}
