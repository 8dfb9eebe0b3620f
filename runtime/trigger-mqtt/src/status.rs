//! What the MQTT trigger is doing, for `GET /.well-known/flint/status` and
//! for tests and benchmarks that count.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
