//! The Redis trigger, as Spin's: each `[[trigger.redis]]` subscribes to one
//! channel on its server and runs its component for every message. One
//! connection per server, reconnecting forever with backoff; a bounded
//! queue and one handler thread per trigger, so each trigger sees its
//! channel's messages in order and a slow handler holds back only the
//! reading of its server's connection (backpressure), never memory.
//!
//! Redis pub/sub keeps nothing for a subscriber that is away: messages
//! published while Flint is disconnected are lost. Every message that
//! arrives while connected reaches its handlers.

mod handler;
mod session;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use flint_config::RedisAddress;
use flint_engine::InstanceLimits;
use flint_executor::Component;
use flint_host::Engine;

use handler::Handler;
use status::{RedisStatus, ServerStatus, TriggerStatus};

/// One Redis server and how to reach it.
pub struct Server {
    pub address: RedisAddress,
    /// `rediss://`: the TLS configuration; the server name is the host.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub connect_timeout: Duration,
    /// Bounds each write and each read of a reply; an idle subscription is
    /// checked with a `PING` after this long.
    pub io_timeout: Duration,
    pub triggers: Vec<Trigger>,
}

/// One `[[trigger.redis]]`, resolved: its channel expanded, its component loaded.
pub struct Trigger {
    pub id: String,
    pub channel: String,
    pub component: Arc<Component>,
}

/// Messages a trigger's queue holds beyond the one its handler is running.
/// When it is full the server's connection is not read until there is
/// room: Redis then buffers for Flint, up to its `client-output-buffer-limit
/// pubsub`, past which it closes the connection.
const QUEUE: usize = 64;

/// Starts a handler thread per trigger and a session thread per server;
/// returns at once, with the trigger's counters. Payloads over
/// `max_payload_bytes` are read past, logged and not handled.
pub fn start(
    servers: Vec<Server>,
    engine: Arc<Engine>,
    limits: InstanceLimits,
    max_payload_bytes: usize,
) -> anyhow::Result<Arc<RedisStatus>> {
    let mut sessions = Vec::new();
    let mut server_statuses = Vec::new();
    let mut trigger_statuses = Vec::new();
    for server in servers {
        let server_status = Arc::new(ServerStatus::new(server.address.display()));
        let mut routes = Vec::new();
        for trigger in server.triggers {
            let status = Arc::new(TriggerStatus::new(
                &trigger.id,
                &trigger.channel,
                trigger.component.id.clone(),
            ));
            let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
            let handler = Handler {
                trigger: trigger.id.clone(),
                component: trigger.component,
                engine: engine.clone(),
                limits: limits.clone(),
                status: status.clone(),
            };
            handler.spawn(rx).with_context(|| {
                format!("starting the handler of Redis trigger `{}`", trigger.id)
            })?;
            routes.push(session::Route {
                channel: trigger.channel,
                queue: tx,
                status: status.clone(),
            });
            trigger_statuses.push(status);
        }
        let config = session::SessionConfig {
            address: server.address,
            tls: server.tls,
            connect_timeout: server.connect_timeout,
            io_timeout: server.io_timeout,
            max_payload_bytes,
        };
        sessions.push((config, routes, server_status.clone()));
        server_statuses.push(server_status);
    }
    for (config, routes, status) in sessions {
        std::thread::Builder::new()
            .name("flint-redis".into())
            .spawn(move || session::run(config, routes, status))
            .context("starting a Redis session thread")?;
    }
    Ok(Arc::new(RedisStatus {
        servers: server_statuses,
        triggers: trigger_statuses,
    }))
}
