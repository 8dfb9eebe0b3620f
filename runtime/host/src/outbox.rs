//! The durable outbox for MQTT publishes from guests (and dead letters sent
//! to a topic): a publish is on disk before the guest hears it succeeded; a
//! sender per broker delivers in order and deletes a message only once the
//! broker acknowledged it (PUBACK, or PUBCOMP for QoS 2). Messages survive
//! broker outages and `kill -9`; after a restart, senders resume from the
//! oldest message.
//!
//! Layout: one sled database under the state dir; a tree per broker target
//! (keys are sled-generated, increasing ids, big-endian, so tree order is
//! publish order) and a `targets` tree that remembers how to reach each one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rumqttc::{Client, ConnectionError, Event, MqttOptions, Outgoing, Packet, QoS};

use crate::backoff::Backoff;
use crate::mqtt_tls::TlsClient;
use crate::tls::TlsConfigs;

/// An MQTT quality of service as guests (the WIT `qos` enum) and manifests
/// (`qos = "1"`) give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos {
    AtMostOnce,
    AtLeastOnce,
    ExactlyOnce,
}

impl Qos {
    /// Level 0, 1 or 2; validation upstream keeps the level in range, and
    /// anything above is treated as the strongest.
    pub fn from_level(level: u8) -> Self {
        match level {
            0 => Qos::AtMostOnce,
            1 => Qos::AtLeastOnce,
            _ => Qos::ExactlyOnce,
        }
    }
}

impl From<Qos> for QoS {
    fn from(qos: Qos) -> Self {
        match qos {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
            Qos::ExactlyOnce => QoS::ExactlyOnce,
        }
    }
}

/// Where and as whom a sender connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub username: String,
    pub password: String,
    pub keep_alive_secs: u64,
    /// `mqtts://`: the TLS configuration to connect with.
    pub tls: Option<TlsClient>,
}

impl Target {
    /// rumqttc options for this broker and identity; callers add the rest.
    /// A TLS target goes through a bridge (see [`crate::mqtt_tls`]).
    pub fn options(&self) -> MqttOptions {
        let mut options = match &self.tls {
            None => MqttOptions::new(self.client_id.clone(), self.host.clone(), self.port),
            Some(tls) => {
                let socket = crate::mqtt_tls::bridge(&self.host, self.port, tls).unwrap_or_else(|e| {
                    tracing::error!(target: "flint::tls", broker = %self.url(), "cannot start the TLS bridge: {e}; the connection will keep failing");
                    std::path::PathBuf::from("/nonexistent/flint-mqtt-tls.sock")
                });
                let mut options =
                    MqttOptions::new(self.client_id.clone(), socket.to_string_lossy(), 0);
                options.set_transport(rumqttc::Transport::Unix);
                options
            }
        };
        options.set_keep_alive(Duration::from_secs(self.keep_alive_secs.max(5)));
        if !self.username.is_empty() {
            options.set_credentials(self.username.clone(), self.password.clone());
        }
        options
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    /// The sender's identity, and its tree's name. Plain targets keep the
    /// form earlier outboxes were written with.
    fn key(&self) -> String {
        let scheme = if self.tls.is_some() { "mqtts://" } else { "" };
        format!("{scheme}{}:{}/{}", self.host, self.port, self.client_id)
    }

    fn encode(&self) -> Vec<u8> {
        let fields = [
            self.host.as_str(),
            &self.port.to_string(),
            &self.client_id,
            &self.username,
            &self.password,
            &self.keep_alive_secs.to_string(),
            if self.tls.is_some() { "tls" } else { "" },
        ];
        fields.join("\0").into_bytes()
    }

    /// A stored target; a TLS one gets its configuration from `tls` (records
    /// written before TLS existed have six fields and are plain).
    fn decode(bytes: &[u8], tls: &TlsConfigs) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let f: Vec<&str> = text.split('\0').collect();
        let (fields, secure) = match f.as_slice() {
            [fields @ .., "tls"] if fields.len() == 6 => (fields, true),
            [fields @ .., ""] if fields.len() == 6 => (fields, false),
            fields if fields.len() == 6 => (fields, false),
            _ => return None,
        };
        let [host, port, client_id, username, password, keep_alive] = fields else {
            return None;
        };
        Some(Self {
            tls: secure.then(|| TlsClient(tls.for_broker(host))),
            host: (*host).to_owned(),
            port: port.parse().ok()?,
            client_id: (*client_id).to_owned(),
            username: (*username).to_owned(),
            password: (*password).to_owned(),
            keep_alive_secs: keep_alive.parse().ok()?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(
        "the outbox is full ({depth} messages, {bytes} bytes; limits {max_messages} messages, {max_bytes} bytes): new messages are refused until the broker takes some"
    )]
    Full {
        depth: u64,
        bytes: u64,
        max_messages: u64,
        max_bytes: u64,
    },
    #[error("more than {0} different MQTT brokers or client ids")]
    TooManyTargets(usize),
    #[error("the outbox on disk failed: {0}")]
    Disk(#[from] sled::Error),
}

/// Bounds of the outbox, from `[application.trigger.mqtt]`.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub max_bytes: u64,
    pub max_messages: u64,
    /// Messages handed to the broker and not yet acknowledged, per sender.
    pub window: usize,
}

/// Distinct broker targets one app may publish to.
const MAX_TARGETS: usize = 8;

pub struct Outbox {
    db: sled::Db,
    targets_tree: sled::Tree,
    budget: Budget,
    totals: Arc<Totals>,
    senders: Mutex<HashMap<String, Arc<Sender>>>,
}

#[derive(Default)]
struct Totals {
    depth: AtomicU64,
    bytes: AtomicU64,
    /// Serialises the budget check with the insert.
    admit: Mutex<()>,
}

impl Outbox {
    /// Opens the outbox and starts a sender for every target that still has
    /// messages from an earlier run.
    pub fn open(
        dir: &Path,
        budget: Budget,
        cache_bytes: u64,
        tls: &TlsConfigs,
    ) -> Result<Arc<Self>, OutboxError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::LowSpace)
            .open()?;
        let targets_tree = db.open_tree("targets")?;
        let outbox = Arc::new(Self {
            db,
            targets_tree,
            budget,
            totals: Arc::default(),
            senders: Mutex::new(HashMap::new()),
        });
        for entry in outbox.targets_tree.iter() {
            let (_, value) = entry?;
            if let Some(target) = Target::decode(&value, tls) {
                let sender = outbox.sender(&target)?;
                let (depth, bytes) = sender
                    .tree
                    .iter()
                    .values()
                    .flatten()
                    .fold((0u64, 0u64), |(d, b), v| (d + 1, b + v.len() as u64));
                outbox.totals.depth.fetch_add(depth, Ordering::Relaxed);
                outbox.totals.bytes.fetch_add(bytes, Ordering::Relaxed);
                if depth > 0 {
                    tracing::info!(target: "flint::mqtt", broker = %target.key(), depth, "outbox: resuming delivery of messages from an earlier run");
                }
            }
        }
        Ok(outbox)
    }

    /// The sender for `target`, started on first use.
    pub fn sender(&self, target: &Target) -> Result<Arc<Sender>, OutboxError> {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        let key = target.key();
        if let Some(sender) = senders.get(&key) {
            return Ok(sender.clone());
        }
        if senders.len() >= MAX_TARGETS {
            return Err(OutboxError::TooManyTargets(MAX_TARGETS));
        }
        self.targets_tree.insert(key.as_bytes(), target.encode())?;
        let tree = self.db.open_tree(format!("outbox:{key}"))?;
        let sender = Sender::start(
            target.clone(),
            tree,
            self.totals.clone(),
            self.budget.window,
        );
        senders.insert(key, sender.clone());
        Ok(sender)
    }

    /// Appends a message for `sender`; returns once it is on disk.
    pub fn enqueue(
        &self,
        sender: &Sender,
        topic: &str,
        payload: &[u8],
        qos: QoS,
    ) -> Result<(), OutboxError> {
        let record = encode(topic, payload, qos, now_ms());
        let size = record.len() as u64;
        {
            let _admit = self.totals.admit.lock().unwrap_or_else(|e| e.into_inner());
            let depth = self.totals.depth.load(Ordering::Relaxed);
            let bytes = self.totals.bytes.load(Ordering::Relaxed);
            if depth + 1 > self.budget.max_messages || bytes + size > self.budget.max_bytes {
                return Err(OutboxError::Full {
                    depth,
                    bytes,
                    max_messages: self.budget.max_messages,
                    max_bytes: self.budget.max_bytes,
                });
            }
            let id = self.db.generate_id()?;
            sender.tree.insert(id.to_be_bytes(), record)?;
            self.totals.depth.fetch_add(1, Ordering::Relaxed);
            self.totals.bytes.fetch_add(size, Ordering::Relaxed);
        }
        self.db.flush()?;
        sender.wake.notify_all();
        Ok(())
    }

    /// The configured bounds.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// How long the oldest message still waiting has waited.
    pub fn oldest_age(&self) -> Option<std::time::Duration> {
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = senders
            .values()
            .filter_map(|s| s.tree.first().ok().flatten())
            .filter_map(|(_, record)| enqueued_ms(&record))
            .min()?;
        Some(std::time::Duration::from_millis(
            now_ms().saturating_sub(oldest),
        ))
    }

    /// The outbox's gauges: depth, bytes, budget, the oldest message's age.
    pub fn write_metrics(&self, w: &mut flint_engine::metrics::MetricsWriter) {
        let (depth, bytes) = self.depth();
        w.gauge(
            "flint_mqtt_outbox_messages",
            "Messages in the MQTT outbox, not yet acknowledged by their broker.",
        );
        w.value(&[], depth);
        w.gauge(
            "flint_mqtt_outbox_bytes",
            "Bytes of the messages in the MQTT outbox.",
        );
        w.value(&[], bytes);
        w.gauge(
            "flint_mqtt_outbox_max_messages",
            "Messages the MQTT outbox may hold (outbox_max_messages).",
        );
        w.value(&[], self.budget.max_messages);
        w.gauge(
            "flint_mqtt_outbox_max_bytes",
            "Bytes the MQTT outbox may hold (outbox_max_bytes).",
        );
        w.value(&[], self.budget.max_bytes);
        w.gauge(
            "flint_mqtt_outbox_oldest_age_seconds",
            "How long the oldest message in the MQTT outbox has waited (0 when empty).",
        );
        w.value_f64(&[], self.oldest_age().map_or(0.0, |age| age.as_secs_f64()));
    }

    /// Messages waiting and their bytes, across all targets.
    pub fn depth(&self) -> (u64, u64) {
        (
            self.totals.depth.load(Ordering::Relaxed),
            self.totals.bytes.load(Ordering::Relaxed),
        )
    }
}

fn qos_byte(qos: QoS) -> u8 {
    match qos {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

/// Marks a record that carries its enqueue time (records written before
/// that was recorded start with the bare QoS byte, 0..=2, and still decode).
const TIMED: u8 = 0x80;

/// `[TIMED | qos][enqueued ms, u64 LE][topic length, u32 LE][topic][payload]`.
fn encode(topic: &str, payload: &[u8], qos: QoS, enqueued_ms: u64) -> Vec<u8> {
    let mut record = Vec::with_capacity(13 + topic.len() + payload.len());
    record.push(TIMED | qos_byte(qos));
    record.extend_from_slice(&enqueued_ms.to_le_bytes());
    record.extend_from_slice(&(topic.len() as u32).to_le_bytes());
    record.extend_from_slice(topic.as_bytes());
    record.extend_from_slice(payload);
    record
}

fn decode(record: &[u8]) -> Option<(QoS, &str, &[u8])> {
    let first = *record.first()?;
    let qos = match first & !TIMED {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    let at = if first & TIMED != 0 { 9 } else { 1 };
    let len = u32::from_le_bytes(record.get(at..at + 4)?.try_into().ok()?) as usize;
    let topic = std::str::from_utf8(record.get(at + 4..at + 4 + len)?).ok()?;
    Some((qos, topic, record.get(at + 4 + len..)?))
}

/// When a record was enqueued (ms since the Unix epoch), if it says.
fn enqueued_ms(record: &[u8]) -> Option<u64> {
    match record.first()? & TIMED {
        0 => None,
        _ => Some(u64::from_le_bytes(record.get(1..9)?.try_into().ok()?)),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Delivers one target's messages over its own connection.
pub struct Sender {
    target: Target,
    tree: sled::Tree,
    totals: Arc<Totals>,
    state: Mutex<SendState>,
    wake: Condvar,
    pub connected: AtomicBool,
}

/// Messages between the outbox and the broker's acknowledgement. Only the
/// event thread and the feeder touch it, always under the lock, so the order
/// in which the feeder hands messages to rumqttc is the order in which
/// rumqttc reports them sent.
#[derive(Default)]
struct SendState {
    connected: bool,
    /// Handed to rumqttc, not yet reported sent: (key, qos).
    queued: VecDeque<(u64, QoS)>,
    /// Sent, awaiting PUBACK/PUBCOMP: packet id → key.
    unacked: BTreeMap<u16, u64>,
    /// The last key handed to rumqttc in this connection.
    cursor: Option<u64>,
}

impl Sender {
    fn start(target: Target, tree: sled::Tree, totals: Arc<Totals>, window: usize) -> Arc<Self> {
        let sender = Arc::new(Self {
            target,
            tree,
            totals,
            state: Mutex::new(SendState::default()),
            wake: Condvar::new(),
            connected: AtomicBool::new(false),
        });
        let mut options = sender.target.options();
        options
            // The outbox, not the session, owns redelivery: after any reconnect
            // the sender starts again from the oldest unacknowledged message.
            .set_clean_session(true)
            .set_inflight(u16::try_from(window).unwrap_or(u16::MAX))
            .set_max_packet_size(usize::MAX >> 1, usize::MAX >> 1);
        if !sender.target.username.is_empty() {
            options.set_credentials(
                sender.target.username.clone(),
                sender.target.password.clone(),
            );
        }
        let (client, connection) = Client::new(options, window * 2 + 8);
        let events = sender.clone();
        let _ = std::thread::Builder::new()
            .name("flint-outbox-events".into())
            .spawn(move || events.run_events(connection));
        let feeder = sender.clone();
        let _ = std::thread::Builder::new()
            .name("flint-outbox-feed".into())
            .spawn(move || feeder.run_feeder(client, window));
        sender
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SendState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drives the connection: marks messages sent and acknowledged, and on a
    /// disconnect forgets everything in flight so the feeder starts over.
    fn run_events(&self, mut connection: rumqttc::Connection) {
        let broker = self.target.key();
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let mut reported_down = false;
        while let Ok(event) = connection.recv() {
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!(target: "flint::mqtt", %broker, "outbox: connected");
                    backoff.reset();
                    reported_down = false;
                    let mut state = self.lock();
                    *state = SendState {
                        connected: true,
                        ..SendState::default()
                    };
                    self.connected.store(true, Ordering::Relaxed);
                    self.wake.notify_all();
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    let mut state = self.lock();
                    match state.queued.pop_front() {
                        Some((key, QoS::AtMostOnce)) => self.delete(key),
                        Some((key, _)) => {
                            state.unacked.insert(pkid, key);
                        }
                        None => {}
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => self.acked(ack.pkid),
                Ok(Event::Incoming(Packet::PubComp(ack))) => self.acked(ack.pkid),
                Ok(_) => {}
                Err(e) => {
                    {
                        let mut state = self.lock();
                        *state = SendState::default();
                        // Requests the feeder queued after rumqttc noticed the
                        // failure would otherwise go out on the next connection,
                        // unaccounted for.
                        connection.eventloop.clean();
                    }
                    self.connected.store(false, Ordering::Relaxed);
                    let delay = backoff.next_delay();
                    if !reported_down {
                        tracing::warn!(target: "flint::mqtt", %broker, "outbox: cannot reach the broker ({}); retrying with backoff, messages wait on disk", describe(&e));
                        reported_down = true;
                    }
                    std::thread::sleep(delay);
                }
            }
        }
    }

    fn acked(&self, pkid: u16) {
        let key = self.lock().unacked.remove(&pkid);
        if let Some(key) = key {
            self.delete(key);
            self.wake.notify_all();
        }
    }

    fn delete(&self, key: u64) {
        match self.tree.remove(key.to_be_bytes()) {
            Ok(Some(old)) => {
                self.totals.depth.fetch_sub(1, Ordering::Relaxed);
                self.totals
                    .bytes
                    .fetch_sub(old.len() as u64, Ordering::Relaxed);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(target: "flint::mqtt", "outbox: cannot delete a delivered message (it will be sent again): {e}")
            }
        }
    }

    /// Hands messages to rumqttc in key order, at most `window` in flight.
    fn run_feeder(&self, client: Client, window: usize) {
        let mut state = self.lock();
        loop {
            let room = state.connected && state.queued.len() + state.unacked.len() < window;
            let next = if room {
                let from = state.cursor.map_or(0, |c| c + 1);
                self.tree.range(from.to_be_bytes()..).next()
            } else {
                None
            };
            match next {
                Some(Ok((key, record))) => {
                    let key = u64::from_be_bytes(key.as_ref().try_into().unwrap_or([0xff; 8]));
                    let previous = state.cursor.replace(key);
                    let Some((qos, topic, payload)) = decode(&record) else {
                        tracing::error!(target: "flint::mqtt", "outbox: dropping an unreadable record");
                        self.delete(key);
                        continue;
                    };
                    if client
                        .try_publish(topic, qos, false, payload.to_vec())
                        .is_ok()
                    {
                        state.queued.push_back((key, qos));
                    } else {
                        // The request channel is full: retry this one shortly.
                        state.cursor = previous;
                        state = self
                            .wake
                            .wait_timeout(state, Duration::from_millis(10))
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
                Some(Err(e)) => {
                    tracing::error!(target: "flint::mqtt", "outbox: cannot read: {e}");
                    state = self.wait(state);
                }
                None => state = self.wait(state),
            }
        }
    }

    fn wait<'a>(
        &'a self,
        state: std::sync::MutexGuard<'a, SendState>,
    ) -> std::sync::MutexGuard<'a, SendState> {
        self.wake
            .wait_timeout(state, Duration::from_secs(1))
            .unwrap_or_else(|e| e.into_inner())
            .0
    }
}

/// A connection error in words a user can act on.
pub fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => format!(
            "the broker refused the connection: {code:?} (check username, password and client id)"
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_targets_round_trip() {
        let record = encode("a/b", b"\0payload", QoS::AtLeastOnce, 1234);
        assert_eq!(
            decode(&record),
            Some((QoS::AtLeastOnce, "a/b", &b"\0payload"[..]))
        );
        assert_eq!(enqueued_ms(&record), Some(1234));
        assert_eq!(decode(&record[..3]), None);
        // A record written before enqueue times were kept.
        let old = [&[1u8][..], &3u32.to_le_bytes(), b"a/b", b"x"].concat();
        assert_eq!(decode(&old), Some((QoS::AtLeastOnce, "a/b", &b"x"[..])));
        assert_eq!(enqueued_ms(&old), None);
        let target = Target {
            host: "h".into(),
            port: 1,
            client_id: "c".into(),
            username: String::new(),
            password: "p".into(),
            keep_alive_secs: 30,
            tls: None,
        };
        let none = TlsConfigs::none();
        assert_eq!(
            Target::decode(&target.encode(), &none),
            Some(target.clone())
        );
        // A record from before TLS: six fields, plain.
        assert_eq!(
            Target::decode(b"h\x001\x00c\x00\x00p\x0030", &none),
            Some(target.clone())
        );
        let secure = Target {
            tls: Some(TlsClient(none.for_broker("h"))),
            ..target
        };
        let back = Target::decode(&secure.encode(), &none).expect("a TLS target");
        assert!(
            back.tls.is_some() && back.url() == "mqtts://h:1",
            "{back:?}"
        );
    }
}
