//! What guest memory, the MQTT trigger and the outbox are doing, for
//! `GET /.well-known/flint/status` and for tests and benchmarks that count.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::outbox::Outbox;
use crate::limiter::MemoryBudget;

#[derive(Default)]
pub struct MqttStatus {
    pub connected: AtomicBool,
    /// Messages delivered by the broker (duplicates included).
    pub received: AtomicU64,
    /// Messages whose handler succeeded and which were then acknowledged.
    pub handled: AtomicU64,
    /// Handler attempts that failed (each retry counts).
    pub failed_attempts: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub reconnects: AtomicU64,
}

impl MqttStatus {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as JSON object members (no braces).
    pub fn json_members(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "\"connected\":{},\"received\":{},\"handled\":{},\"failed_attempts\":{},\"dead_lettered\":{},\"reconnects\":{}",
            self.connected.load(Ordering::Relaxed),
            get(&self.received),
            get(&self.handled),
            get(&self.failed_attempts),
            get(&self.dead_lettered),
            get(&self.reconnects),
        )
    }
}

/// The JSON document at `GET /.well-known/flint/status`.
pub fn report(
    memory: Option<&MemoryBudget>,
    mqtt: Option<&MqttStatus>,
    outbox: Option<&Arc<Outbox>>,
) -> String {
    let mut members = Vec::new();
    if let Some(memory) = memory {
        members.push(format!(
            "\"guest_memory\":{{\"used\":{},\"budget\":{}}}",
            memory.used(),
            memory.total()
        ));
    }
    if let Some(mqtt) = mqtt {
        members.push(format!("\"mqtt\":{{{}}}", mqtt.json_members()));
    }
    if let Some(outbox) = outbox {
        let (depth, bytes) = outbox.depth();
        members.push(format!(
            "\"outbox\":{{\"depth\":{depth},\"bytes\":{bytes}}}"
        ));
    }
    format!("{{{}}}\n", members.join(","))
}
