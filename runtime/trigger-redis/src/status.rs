//! What the Redis trigger is doing, for the status document, the metrics
//! and for tests and benchmarks that count: each server's connection, and
//! per trigger the messages it received, handled and failed on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use flint_engine::metrics::{Counter, Histogram, MetricsWriter};

pub struct RedisStatus {
    pub servers: Vec<Arc<ServerStatus>>,
    pub triggers: Vec<Arc<TriggerStatus>>,
}

pub struct ServerStatus {
    /// The address without credentials.
    pub address: String,
    pub connected: AtomicBool,
    /// Messages the server delivered on any subscribed channel.
    pub received: Counter,
    /// Messages read past because their payload was over the limit.
    pub oversize: Counter,
    /// Times the connection was lost after subscribing.
    pub reconnects: Counter,
}

impl ServerStatus {
    pub fn new(address: String) -> Self {
        Self {
            address,
            connected: AtomicBool::new(false),
            received: Counter::default(),
            oversize: Counter::default(),
            reconnects: Counter::default(),
        }
    }
}

/// One `[[trigger.redis]]`'s numbers.
pub struct TriggerStatus {
    pub trigger: String,
    pub channel: String,
    pub component: Arc<str>,
    /// Messages put on this trigger's queue.
    pub received: Counter,
    pub handled: Counter,
    pub failed: Counter,
    /// One handler run, start to end.
    pub duration: Histogram,
}

impl TriggerStatus {
    pub fn new(trigger: &str, channel: &str, component: Arc<str>) -> Self {
        Self {
            trigger: trigger.to_owned(),
            channel: channel.to_owned(),
            component,
            received: Counter::default(),
            handled: Counter::default(),
            failed: Counter::default(),
            duration: Histogram::seconds(),
        }
    }
}

impl RedisStatus {
    /// The counters as JSON object members (no braces); `quote` turns a
    /// string into a JSON string literal.
    pub fn json_members(&self, quote: impl Fn(&str) -> String) -> String {
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|s| {
                format!(
                    "{{\"address\":{},\"connected\":{},\"received\":{},\"oversize\":{},\"reconnects\":{}}}",
                    quote(&s.address),
                    s.connected.load(Ordering::Relaxed),
                    s.received.get(),
                    s.oversize.get(),
                    s.reconnects.get(),
                )
            })
            .collect();
        let triggers: Vec<String> = self
            .triggers
            .iter()
            .map(|t| {
                format!(
                    "{{\"trigger\":{},\"channel\":{},\"component\":{},\"received\":{},\"handled\":{},\"failed\":{}}}",
                    quote(&t.trigger),
                    quote(&t.channel),
                    quote(&t.component),
                    t.received.get(),
                    t.handled.get(),
                    t.failed.get(),
                )
            })
            .collect();
        format!(
            "\"servers\":[{}],\"triggers\":[{}]",
            servers.join(","),
            triggers.join(",")
        )
    }

    /// The trigger's metric families.
    pub fn write_metrics(&self, w: &mut MetricsWriter) {
        w.gauge(
            "flint_redis_connected",
            "1 while the Redis trigger's subscription to a server is up.",
        );
        for s in &self.servers {
            w.value(
                &[("server", &s.address)],
                u64::from(s.connected.load(Ordering::Relaxed)),
            );
        }
        w.counter(
            "flint_redis_reconnects",
            "Times the Redis trigger lost a server's connection.",
        );
        for s in &self.servers {
            w.value(&[("server", &s.address)], s.reconnects.get());
        }
        w.counter(
            "flint_redis_messages_oversize",
            "Messages dropped unhandled because their payload was over the limit.",
        );
        for s in &self.servers {
            w.value(&[("server", &s.address)], s.oversize.get());
        }
        type Family = (&'static str, &'static str, fn(&TriggerStatus) -> &Counter);
        let families: [Family; 3] = [
            (
                "flint_redis_messages_received",
                "Messages put on a Redis trigger's queue.",
                |t| &t.received,
            ),
            (
                "flint_redis_messages_handled",
                "Messages a Redis trigger's handler succeeded on.",
                |t| &t.handled,
            ),
            (
                "flint_redis_handler_failures",
                "Messages a Redis trigger's handler failed on (not retried).",
                |t| &t.failed,
            ),
        ];
        for (name, help, counter) in families {
            w.counter(name, help);
            for t in &self.triggers {
                w.value(
                    &[
                        ("trigger", &t.trigger),
                        ("channel", &t.channel),
                        ("component", &t.component),
                    ],
                    counter(t).get(),
                );
            }
        }
        w.histogram(
            "flint_redis_handler_duration_seconds",
            "One Redis handler run, by trigger.",
        );
        for t in &self.triggers {
            w.histogram_value(
                &[
                    ("trigger", &t.trigger),
                    ("channel", &t.channel),
                    ("component", &t.component),
                ],
                &t.duration,
            );
        }
    }
}
