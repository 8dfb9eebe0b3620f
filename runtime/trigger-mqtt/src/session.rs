//! The app's one MQTT connection for its subscriptions: a persistent session
//! (by default) under a stable client id, reconnecting forever with backoff,
//! resubscribing when the broker lost the session, and acknowledging a
//! message only when every handler it was routed to is done with it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{Client, Event, Packet, Publish, QoS, SubscribeFilter};

use flint_host::backoff::Backoff;
use flint_host::outbox::{Target, describe};

use crate::queue::Sender;
use crate::status::{MqttStatus, SubscriptionStatus};

/// How to connect, with templates expanded.
pub struct SessionConfig {
    pub broker: Target,
    pub clean_session: bool,
    pub max_inflight: u16,
    /// The largest MQTT packet rumqttc will read.
    pub max_packet_bytes: usize,
}

/// One subscription and the queue of its handlers.
pub struct Route {
    pub trigger: String,
    pub filter: String,
    pub qos: QoS,
    pub queue: Sender<Delivery>,
    pub status: Arc<SubscriptionStatus>,
}

/// A message on its way to one handler. The broker hears PUBACK when the
/// last of the handlers it was routed to finishes.
pub struct Delivery {
    pub publish: Arc<Publish>,
    pub topic: Arc<str>,
    ack: Arc<AckGroup>,
}

struct AckGroup {
    acks: Arc<Acks>,
    remaining: AtomicUsize,
    /// A handler could neither process nor dead-letter the message: it must
    /// come back from the broker, so it is not acknowledged.
    keep: AtomicBool,
}

impl Delivery {
    /// Marks this handler's part done; `processed` is false when the message
    /// must not be acknowledged (it was neither handled nor dead-lettered).
    pub fn finish(self, processed: bool) {
        if !processed {
            self.ack.keep.store(true, Ordering::Relaxed);
        }
        if self.ack.remaining.fetch_sub(1, Ordering::AcqRel) == 1
            && !self.ack.keep.load(Ordering::Relaxed)
        {
            self.ack.acks.send(&self.publish);
        }
    }
}

/// PUBACKs on their way to rumqttc. rumqttc reads incoming publishes in
/// batches and takes one request per turn, so under load acks can fill its
/// request channel; a handler must never block on that (the session thread
/// may be waiting for the handler's queue), so what does not fit waits here
/// and the session thread moves it on after each event. It holds at most the
/// messages the broker sent and Flint handled.
struct Acks {
    client: Client,
    overflow: Mutex<VecDeque<Publish>>,
}

impl Acks {
    fn send(&self, publish: &Publish) {
        let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        // Behind earlier overflow, to keep acks in order.
        if !overflow.is_empty() || self.client.try_ack(publish).is_err() {
            overflow.push_back(publish.clone());
        }
    }

    fn flush(&self) {
        let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(publish) = overflow.front() {
            if self.client.try_ack(publish).is_err() {
                return;
            }
            overflow.pop_front();
        }
    }
}

/// Runs the session on the current thread, forever.
pub fn run(config: SessionConfig, routes: Vec<Route>, status: Arc<MqttStatus>) {
    let broker = config.broker.url();
    let mut options = config.broker.options();
    options
        .set_clean_session(config.clean_session)
        .set_manual_acks(true)
        .set_inflight(config.max_inflight)
        .set_max_packet_size(config.max_packet_bytes, config.max_packet_bytes);
    let capacity = 1024;
    let (client, mut connection) = Client::new(options, capacity);
    let acks = Arc::new(Acks {
        client: client.clone(),
        overflow: Mutex::new(VecDeque::new()),
    });
    let filters: Vec<SubscribeFilter> = routes
        .iter()
        .map(|r| SubscribeFilter::new(r.filter.clone(), r.qos))
        .collect();
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut subscribed_once = false;
    let mut down_since_logged = false;
    tracing::info!(target: "flint::mqtt", %broker, client_id = %config.broker.client_id, clean_session = config.clean_session, "connecting");
    while let Ok(event) = connection.recv() {
        acks.flush();
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                status.connected.store(true, Ordering::Relaxed);
                backoff.reset();
                down_since_logged = false;
                tracing::info!(target: "flint::mqtt", %broker, session_present = ack.session_present, "connected");
                // A new session has no subscriptions; this process's first
                // connection subscribes anyway, in case the manifest changed.
                if !ack.session_present || !subscribed_once {
                    if let Err(e) = client.try_subscribe_many(filters.clone()) {
                        tracing::error!(target: "flint::mqtt", "cannot subscribe: {e}");
                    } else {
                        subscribed_once = true;
                        tracing::info!(target: "flint::mqtt", topics = ?routes.iter().map(|r| r.filter.as_str()).collect::<Vec<_>>(), "subscribing");
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                for (code, route) in ack.return_codes.iter().zip(&routes) {
                    if matches!(code, rumqttc::SubscribeReasonCode::Failure) {
                        tracing::error!(target: "flint::mqtt", trigger = %route.trigger, topic = %route.filter, "the broker refused the subscription");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                MqttStatus::add(&status.received);
                route(&acks, &routes, publish);
            }
            Ok(_) => {}
            Err(e) => {
                if status.connected.swap(false, Ordering::Relaxed) {
                    MqttStatus::add(&status.reconnects);
                }
                let delay = backoff.next_delay();
                if !down_since_logged {
                    tracing::warn!(target: "flint::mqtt", %broker, "disconnected: {}; reconnecting with backoff (next try in {delay:?})", describe(&e));
                    down_since_logged = true;
                } else {
                    tracing::debug!(target: "flint::mqtt", %broker, "still disconnected: {}; next try in {delay:?}", describe(&e));
                }
                std::thread::sleep(delay);
            }
        }
    }
}

/// Hands a message to the queue of every subscription it matches. A full
/// queue blocks here until its handlers took half of it, which stops reading
/// from the broker: backpressure instead of memory.
fn route(acks: &Arc<Acks>, routes: &[Route], publish: Publish) {
    // rumqttc has already refused a topic that is not UTF-8 (MQTT requires it).
    let topic: Arc<str> = Arc::from(publish.topic.as_str());
    let matching: Vec<&Route> = routes
        .iter()
        .filter(|r| flint_config::filter_matches(&r.filter, &topic))
        .collect();
    if matching.is_empty() {
        acks.send(&publish);
        return;
    }
    let publish = Arc::new(publish);
    let ack = Arc::new(AckGroup {
        acks: acks.clone(),
        remaining: AtomicUsize::new(matching.len()),
        keep: AtomicBool::new(false),
    });
    for route in matching {
        route.status.received.inc();
        let delivery = Delivery {
            publish: publish.clone(),
            topic: topic.clone(),
            ack: ack.clone(),
        };
        if let Err(lost) = route.queue.push(delivery) {
            // The handler threads are gone (shutting down): leave it unacknowledged.
            lost.finish(false);
        }
    }
}
