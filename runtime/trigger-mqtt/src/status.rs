//! What the MQTT trigger is doing, for the status document, the metrics and
//! for tests and benchmarks that count: the connection, and per
//! subscription the messages it received, handled, failed and dead-lettered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use flint_engine::metrics::{Counter, Histogram, MetricsWriter};

pub struct MqttStatus {
    /// The broker's address, without credentials.
    pub broker: String,
    pub connected: AtomicBool,
    /// Messages delivered by the broker (duplicates included).
    pub received: AtomicU64,
    /// Messages whose handler succeeded and which were then acknowledged.
    pub handled: AtomicU64,
    /// Handler attempts that failed (each retry counts).
    pub failed_attempts: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub reconnects: AtomicU64,
    pub subscriptions: Vec<Arc<SubscriptionStatus>>,
}

/// One `[[trigger.mqtt]]`'s numbers.
pub struct SubscriptionStatus {
    pub trigger: String,
    pub filter: String,
    pub component: Arc<str>,
    /// Messages routed to this subscription's queue.
    pub received: Counter,
    pub handled: Counter,
    pub failed_attempts: Counter,
    pub dead_lettered: Counter,
    /// One handler attempt, start to end.
    pub duration: Histogram,
}

impl SubscriptionStatus {
    pub fn new(trigger: &str, filter: &str, component: Arc<str>) -> Self {
        Self {
            trigger: trigger.to_owned(),
            filter: filter.to_owned(),
            component,
            received: Counter::default(),
            handled: Counter::default(),
            failed_attempts: Counter::default(),
            dead_lettered: Counter::default(),
            duration: Histogram::seconds(),
        }
    }
}

impl MqttStatus {
    pub fn new(broker: String, subscriptions: Vec<Arc<SubscriptionStatus>>) -> Self {
        Self {
            broker,
            connected: AtomicBool::new(false),
            received: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            subscriptions,
        }
    }

    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as JSON object members (no braces); `quote` turns a
    /// string into a JSON string literal.
    pub fn json_members(&self, quote: impl Fn(&str) -> String) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let subscriptions: Vec<String> = self
            .subscriptions
            .iter()
            .map(|s| {
                format!(
                    "{{\"trigger\":{},\"topic\":{},\"component\":{},\"received\":{},\"handled\":{},\"failed_attempts\":{},\"dead_lettered\":{}}}",
                    quote(&s.trigger),
                    quote(&s.filter),
                    quote(&s.component),
                    s.received.get(),
                    s.handled.get(),
                    s.failed_attempts.get(),
                    s.dead_lettered.get(),
                )
            })
            .collect();
        format!(
            "\"broker\":{},\"connected\":{},\"received\":{},\"handled\":{},\"failed_attempts\":{},\"dead_lettered\":{},\"reconnects\":{},\"subscriptions\":[{}]",
            quote(&self.broker),
            self.connected.load(Ordering::Relaxed),
            get(&self.received),
            get(&self.handled),
            get(&self.failed_attempts),
            get(&self.dead_lettered),
            get(&self.reconnects),
            subscriptions.join(","),
        )
    }

    /// The trigger's metric families.
    pub fn write_metrics(&self, w: &mut MetricsWriter) {
        w.gauge(
            "flint_mqtt_connected",
            "1 while the MQTT trigger's connection to its broker is up.",
        );
        w.value(
            &[("broker", &self.broker)],
            u64::from(self.connected.load(Ordering::Relaxed)),
        );
        w.counter(
            "flint_mqtt_reconnects",
            "Times the MQTT trigger lost its broker connection.",
        );
        w.value(
            &[("broker", &self.broker)],
            self.reconnects.load(Ordering::Relaxed),
        );
        type Family = (
            &'static str,
            &'static str,
            fn(&SubscriptionStatus) -> &Counter,
        );
        let families: [Family; 4] = [
            (
                "flint_mqtt_messages_received",
                "Messages routed to a subscription.",
                |s| &s.received,
            ),
            (
                "flint_mqtt_messages_handled",
                "Messages a subscription's handler succeeded on.",
                |s| &s.handled,
            ),
            (
                "flint_mqtt_handler_failures",
                "Handler attempts that failed (each retry counts).",
                |s| &s.failed_attempts,
            ),
            (
                "flint_mqtt_messages_dead_lettered",
                "Messages dead-lettered after their last attempt.",
                |s| &s.dead_lettered,
            ),
        ];
        for (name, help, counter) in families {
            w.counter(name, help);
            for s in &self.subscriptions {
                w.value(
                    &[
                        ("trigger", &s.trigger),
                        ("topic", &s.filter),
                        ("component", &s.component),
                    ],
                    counter(s).get(),
                );
            }
        }
        w.histogram(
            "flint_mqtt_handler_duration_seconds",
            "One MQTT handler attempt, by subscription.",
        );
        for s in &self.subscriptions {
            w.histogram_value(
                &[
                    ("trigger", &s.trigger),
                    ("topic", &s.filter),
                    ("component", &s.component),
                ],
                &s.duration,
            );
        }
    }
}
