//! The handlers of one subscription: `concurrency` threads taking messages
//! from its bounded queue, running the component, retrying failures with
//! backoff, and dead-lettering a message that exhausted its attempts. A
//! message is acknowledged only after one of those outcomes is durable.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumqttc::QoS;

use flint_engine::InstanceLimits;
use flint_executor::{Component, MqttMessage, run_mqtt};
use flint_host::Engine;
use flint_host::kv_store::SharedStore;
use flint_host::outbox::{Outbox, Sender};

use crate::queue::Receiver;
use crate::session::Delivery;
use crate::status::{MqttStatus, SubscriptionStatus};

/// Where messages go when every attempt failed.
pub enum DeadLetterSink {
    /// A key-value store: key `mqtt-dead-letter/<trigger>/<ms>-<id>`.
    Store { label: String, store: SharedStore },
    /// A topic, through the durable outbox.
    Topic {
        topic: String,
        outbox: Arc<Outbox>,
        sender: Arc<Sender>,
    },
}

pub struct Handler {
    pub trigger: String,
    pub component: Arc<Component>,
    pub engine: Arc<Engine>,
    pub limits: InstanceLimits,
    pub max_attempts: u32,
    pub retry_backoff: Duration,
    pub max_payload_bytes: usize,
    pub dead_letter: DeadLetterSink,
    pub status: Arc<MqttStatus>,
    pub subscription: Arc<SubscriptionStatus>,
}

/// Longest wait between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

impl Handler {
    pub fn spawn(
        self: Arc<Self>,
        queue: Receiver<Delivery>,
        concurrency: usize,
    ) -> std::io::Result<()> {
        for n in 0..concurrency {
            let (handler, queue) = (self.clone(), queue.clone());
            std::thread::Builder::new()
                .name(format!("flint-mqtt-{}-{n}", self.trigger))
                .spawn(move || {
                    while let Some(delivery) = queue.pop() {
                        let processed = handler.process(&delivery);
                        delivery.finish(processed);
                    }
                })?;
        }
        Ok(())
    }

    /// True once the message was handled or dead-lettered.
    fn process(&self, delivery: &Delivery) -> bool {
        let publish = &delivery.publish;
        let topic = &delivery.topic;
        if publish.payload.len() > self.max_payload_bytes {
            let reason = format!(
                "payload of {} bytes exceeds max_payload_bytes ({})",
                publish.payload.len(),
                self.max_payload_bytes
            );
            tracing::warn!(target: "flint::mqtt", trigger = %self.trigger, %topic, "{reason}; dead-lettering without running the handler");
            return self.dead_letter(delivery, &reason, 0, &[]);
        }
        let message = MqttMessage {
            topic: topic.clone(),
            payload: publish.payload.to_vec(),
            qos: publish.qos as u8,
            retain: publish.retain,
            message_id: publish.pkid,
        };
        let mut delay = self.retry_backoff;
        for attempt in 1..=self.max_attempts {
            let started = std::time::Instant::now();
            let outcome = run_mqtt(&self.engine, &self.component, &message, &self.limits);
            self.subscription
                .duration
                .observe_duration(started.elapsed());
            match outcome {
                Ok(()) => {
                    MqttStatus::add(&self.status.handled);
                    self.subscription.handled.inc();
                    tracing::debug!(target: "flint::mqtt", trigger = %self.trigger, component = %self.component.id, %topic, duration = ?started.elapsed(), "handled");
                    return true;
                }
                Err(failure) => {
                    MqttStatus::add(&self.status.failed_attempts);
                    self.subscription.failed_attempts.inc();
                    tracing::warn!(target: "flint::mqtt", trigger = %self.trigger, component = %self.component.id, %topic, attempt, max_attempts = self.max_attempts, "handler failed: {failure}");
                    if attempt == self.max_attempts {
                        return self.dead_letter(
                            delivery,
                            &failure.to_string(),
                            attempt,
                            &message.payload,
                        );
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(MAX_RETRY_DELAY);
                }
            }
        }
        false
    }

    fn dead_letter(&self, delivery: &Delivery, error: &str, attempts: u32, payload: &[u8]) -> bool {
        let topic = &delivery.topic;
        let mut record =
            format!("topic: {topic}\nerror: {error}\nattempts: {attempts}\n\n").into_bytes();
        record.extend_from_slice(payload);
        let stored = match &self.dead_letter {
            DeadLetterSink::Store { label, store } => {
                let millis = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                let key = format!(
                    "mqtt-dead-letter/{}/{millis:020}-{}",
                    self.trigger, delivery.publish.pkid
                );
                store
                    .set(&key, &record)
                    .map(|()| format!("key-value store `{label}`, key `{key}`"))
                    .map_err(|e| e.to_string())
            }
            DeadLetterSink::Topic {
                topic: dead_topic,
                outbox,
                sender,
            } => outbox
                .enqueue(sender, dead_topic, &record, QoS::AtLeastOnce)
                .map(|()| format!("topic `{dead_topic}`"))
                .map_err(|e| e.to_string()),
        };
        match stored {
            Ok(place) => {
                MqttStatus::add(&self.status.dead_lettered);
                self.subscription.dead_lettered.inc();
                tracing::error!(target: "flint::mqtt", trigger = %self.trigger, %topic, attempts, "message dead-lettered to {place}: {error}");
                true
            }
            Err(e) => {
                tracing::error!(target: "flint::mqtt", trigger = %self.trigger, %topic, "cannot dead-letter ({e}); leaving the message unacknowledged so the broker delivers it again");
                false
            }
        }
    }
}
