//! One server's subscription: connect, `SUBSCRIBE` to every channel its
//! triggers name, hand each message to the queue of every trigger on that
//! channel, and on any failure reconnect with backoff, forever.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use flint_config::RedisAddress;
use flint_executor::RedisMessage;
use flint_host::backoff::Backoff;
use flint_host::blocked_networks::BlockedNetworks;
use flint_host::outbound_redis::{Client, Connect, Event, RedisError, Subscriber};

use crate::status::{ServerStatus, TriggerStatus};

/// How long a subscription must hold for the reconnect backoff to start
/// again from its shortest delay.
const STABLE: Duration = Duration::from_secs(30);

pub struct SessionConfig {
    pub address: RedisAddress,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    pub max_payload_bytes: usize,
}

/// One trigger's channel and queue.
pub struct Route {
    pub channel: String,
    pub queue: SyncSender<Arc<RedisMessage>>,
    pub status: Arc<TriggerStatus>,
}

/// Runs the subscription on the current thread, forever (or until a
/// handler thread is gone).
pub fn run(config: SessionConfig, routes: Vec<Route>, status: Arc<ServerStatus>) {
    let server = config.address.display();
    let mut channels: Vec<String> = routes.iter().map(|r| r.channel.clone()).collect();
    channels.sort();
    channels.dedup();
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    let mut down_logged = false;
    loop {
        match subscribe(&config, &channels) {
            Ok(mut subscriber) => {
                status.connected.store(true, Ordering::Relaxed);
                tracing::info!(target: "flint::redis", %server, ?channels, "subscribed");
                let up = Instant::now();
                let error = receive(&mut subscriber, &config, &routes, &status);
                status.connected.store(false, Ordering::Relaxed);
                // Only a subscription that held restarts the backoff: a
                // server that accepts and drops it at once is otherwise
                // reconnected to at the shortest delay forever.
                if up.elapsed() >= STABLE {
                    backoff.reset();
                }
                status.reconnects.inc();
                match error {
                    Some(e) => {
                        tracing::warn!(target: "flint::redis", %server, "disconnected: {e}; reconnecting with backoff (messages published until then are lost: Redis keeps none for absent subscribers)");
                        down_logged = true;
                    }
                    // A handler thread is gone, so a message could not be
                    // delivered; better said loudly than lost quietly.
                    None => {
                        tracing::error!(target: "flint::redis", %server, "a trigger's handler thread is gone; this server's subscription stops");
                        return;
                    }
                }
            }
            Err(e) if !down_logged => {
                tracing::warn!(target: "flint::redis", %server, "cannot subscribe: {e}; retrying with backoff");
                down_logged = true;
            }
            Err(e) => {
                tracing::debug!(target: "flint::redis", %server, "still cannot subscribe: {e}")
            }
        }
        std::thread::sleep(backoff.next_delay());
    }
}

fn subscribe(config: &SessionConfig, channels: &[String]) -> Result<Subscriber, RedisError> {
    Client::connect(&Connect {
        address: &config.address,
        // The operator's server, from the manifest: `block_networks` bounds
        // guests, not it (nor the MQTT trigger's broker).
        blocked: &BlockedNetworks::default(),
        connect_timeout: config.connect_timeout,
        io_timeout: config.io_timeout,
        tls: config.tls.clone(),
    })?
    .subscribe(channels)
}

/// Delivers messages until the connection fails (`Some`) or a handler's
/// queue is gone (`None`).
fn receive(
    subscriber: &mut Subscriber,
    config: &SessionConfig,
    routes: &[Route],
    status: &ServerStatus,
) -> Option<RedisError> {
    loop {
        let (channel, payload) = match subscriber.next(config.max_payload_bytes) {
            Ok(Event::Message { channel, payload }) => (channel, payload),
            Ok(Event::Idle) => continue,
            Ok(Event::Oversize { channel, bytes }) => {
                status.oversize.inc();
                tracing::error!(target: "flint::redis", server = %config.address.display(), %channel, "dropped a message of {bytes} bytes: over the limit of {} (max_request_body_bytes)", config.max_payload_bytes);
                continue;
            }
            Err(e) => return Some(e),
        };
        status.received.inc();
        let message = Arc::new(RedisMessage {
            channel: channel.as_str().into(),
            payload,
        });
        for route in routes.iter().filter(|r| r.channel == channel) {
            route.status.received.inc();
            // Blocks while the queue is full: backpressure on the socket.
            if route.queue.send(message.clone()).is_err() {
                // Its handler thread is gone, which it never is while Flint
                // runs (it survives a handler's panic).
                return None;
            }
        }
    }
}
