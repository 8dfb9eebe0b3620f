//! Accepting connections: one `smol::LocalExecutor` per I/O thread (picoserve's
//! futures are `!Send`), all sharing one listening socket, and a graceful stop.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context as _;
use flint_config::Limits;
use smol::LocalExecutor;
use smol::io::AsyncWriteExt;

use crate::framing::{Activity, FrameLimits};
use crate::metrics::Refusal;
use crate::service::{FlintService, HttpApp, Role};
use crate::socket::{Connection, HeadWritten, SmolTimer};

/// How long in-flight requests may run on after a stop is requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Stops the server when dropped or `stop`ped; every connection sees it.
pub struct ShutdownHandle {
    trigger: async_channel::Sender<()>,
    threads: Vec<JoinHandle<()>>,
}

impl ShutdownHandle {
    /// Stops accepting, lets in-flight requests finish, closes idle connections.
    pub fn stop(self) {
        drop(self.trigger);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// The connection-level settings derived from the limits.
#[derive(Clone)]
struct ConnectionSettings {
    frame: FrameLimits,
    buffer_bytes: usize,
    max_connections: usize,
    config: picoserve::Config,
    role: Role,
}

/// Serves `app` on `listener` with the routes `role` gives it.
pub fn start(
    app: Arc<HttpApp>,
    listener: TcpListener,
    limits: &Limits,
    role: Role,
) -> anyhow::Result<ShutdownHandle> {
    listener.set_nonblocking(true)?;
    let ms = picoserve::time::Duration::from_millis;
    let backstop = limits
        .read_timeout_ms
        .saturating_add(limits.keep_alive_timeout_ms)
        .saturating_add(1000);
    let settings = ConnectionSettings {
        frame: FrameLimits {
            max_head_bytes: limits.max_request_head_bytes,
            max_headers: limits.max_request_headers,
            max_body_bytes: usize::try_from(limits.max_request_body_bytes).unwrap_or(usize::MAX),
            keep_alive: Duration::from_millis(limits.keep_alive_timeout_ms),
            read_timeout: Duration::from_millis(limits.read_timeout_ms),
        },
        // Room for a whole head plus a useful slice of body per read.
        buffer_bytes: limits.max_request_head_bytes.saturating_add(4096),
        max_connections: limits.max_connections,
        config: picoserve::Config::new(picoserve::Timeouts {
            // Only a backstop: the framer times out idle connections and slow heads first.
            start_read_request: ms(backstop),
            persistent_start_read_request: ms(backstop),
            read_request: ms(limits.read_timeout_ms),
            write: ms(limits.write_timeout_ms),
        })
        .keep_connection_alive(),
        role,
    };
    let (trigger, stopped) = async_channel::bounded::<()>(1);
    let connections = Connections::new(limits.max_connections);
    let mut threads = Vec::new();
    for n in 0..limits.io_threads.max(1) {
        let listener = listener
            .try_clone()
            .context("cloning the listening socket")?;
        let (app, settings, stopped, connections) = (
            app.clone(),
            settings.clone(),
            stopped.clone(),
            connections.clone(),
        );
        let thread = std::thread::Builder::new()
            .name(format!("flint-io-{n}"))
            .spawn(move || io_thread(app, listener, settings, stopped, connections))?;
        threads.push(thread);
    }
    Ok(ShutdownHandle { trigger, threads })
}

fn io_thread(
    app: Arc<HttpApp>,
    listener: TcpListener,
    settings: ConnectionSettings,
    stopped: async_channel::Receiver<()>,
    connections: Arc<Connections>,
) {
    let listener = match smol::net::TcpListener::try_from(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot watch the listening socket: {e}");
            return;
        }
    };
    let ex = LocalExecutor::new();
    let accept_loop = async {
        loop {
            let accepted = smol::future::or(async { Some(listener.accept().await) }, async {
                let _ = stopped.recv().await;
                None
            })
            .await;
            match accepted {
                None => break,
                Some(Ok((stream, peer))) => {
                    let task = serve_connection(
                        app.clone(),
                        stream,
                        peer,
                        settings.clone(),
                        stopped.clone(),
                        connections.clone(),
                    );
                    ex.spawn(task).detach();
                }
                Some(Err(e)) => {
                    // Usually EMFILE: back off instead of spinning on the error.
                    tracing::warn!("accept failed: {e}");
                    smol::Timer::after(Duration::from_millis(50)).await;
                }
            }
        }
    };
    smol::block_on(ex.run(accept_loop));
    // Refuse new connections while the open ones drain.
    drop(listener);
    smol::block_on(async {
        while !ex.is_empty() {
            ex.tick().await;
        }
    });
}

/// The open connections, for `max_connections`. When the server is full, a
/// new connection takes the place of the one idle longest (closing it), so a
/// flood of idle or slow connections cannot lock real clients out; only when
/// none is idle is the newcomer refused.
pub struct Connections {
    open: Mutex<HashMap<u64, (smol::net::TcpStream, Arc<Activity>)>>,
    next_id: AtomicU64,
    max: usize,
    /// The time base of `Activity` marks.
    epoch: Instant,
}

/// One admitted connection; leaving the table when dropped.
struct OpenConnection {
    connections: Arc<Connections>,
    id: u64,
    activity: Arc<Activity>,
}

impl Connections {
    fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            max,
            epoch: Instant::now(),
        })
    }

    fn admit(self: &Arc<Self>, stream: &smol::net::TcpStream) -> Option<OpenConnection> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= self.max {
            let oldest_idle = open
                .iter()
                .filter_map(|(id, (_, activity))| activity.idle_since().map(|t| (t, *id)))
                .min();
            let (_, victim) = oldest_idle?;
            if let Some((victim_stream, _)) = open.remove(&victim) {
                let _ = victim_stream.shutdown(std::net::Shutdown::Both);
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::default());
        open.insert(id, (stream.clone(), activity.clone()));
        Some(OpenConnection {
            connections: self.clone(),
            id,
            activity,
        })
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.remove(&self.id);
    }
}

async fn serve_connection(
    app: Arc<HttpApp>,
    mut stream: smol::net::TcpStream,
    peer: SocketAddr,
    settings: ConnectionSettings,
    stopped: async_channel::Receiver<()>,
    connections: Arc<Connections>,
) {
    let Some(guard) = connections.admit(&stream) else {
        app.metrics.refused(Refusal::ConnectionLimit);
        tracing::warn!(target: "flint::http", %peer, "refused: {} connections are open and none is idle (max_connections)", settings.max_connections);
        let _ = stream
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    };
    let _ = stream.set_nodelay(true);
    let _counted = app.metrics.connection_opened();
    let metrics = app.metrics.clone();
    let head_written = HeadWritten::default();
    let service = FlintService {
        app,
        stream: stream.clone(),
        peer,
        role: settings.role,
        head_written: head_written.clone(),
    };
    let router = picoserve::Router::from_service(service);
    let connection = Connection::new(
        stream,
        peer,
        settings.frame,
        guard.activity.clone(),
        metrics.clone(),
        connections.epoch,
        head_written,
    );
    let mut buffer = vec![0u8; settings.buffer_bytes];
    let result = picoserve::Server::custom(&router, SmolTimer, &settings.config, &mut buffer)
        .with_graceful_shutdown(
            async move {
                let _ = stopped.recv().await;
            },
            picoserve::time::Duration::from_millis(SHUTDOWN_GRACE.as_millis() as u64),
        )
        .serve(connection)
        .await;
    if let Err(e) = result {
        tracing::debug!(target: "flint::http", %peer, "connection ended: {e:?}");
    }
}
