//! One trigger's handler: a thread taking messages from its bounded queue
//! in order and running the component for each. A failure is logged and
//! the next message handled, as Spin does (Redis cannot take a message back).

use std::sync::Arc;
use std::sync::mpsc::Receiver;

use flint_engine::InstanceLimits;
use flint_executor::{Component, RedisMessage, run_redis};
use flint_host::Engine;

use crate::status::TriggerStatus;

pub struct Handler {
    pub trigger: String,
    pub component: Arc<Component>,
    pub engine: Arc<Engine>,
    pub limits: InstanceLimits,
    pub status: Arc<TriggerStatus>,
}

impl Handler {
    pub fn spawn(self, queue: Receiver<Arc<RedisMessage>>) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name(format!("flint-redis-{}", self.trigger))
            .spawn(move || {
                while let Ok(message) = queue.recv() {
                    self.handle(&message);
                }
            })
            .map(drop)
    }

    fn handle(&self, message: &RedisMessage) {
        let started = std::time::Instant::now();
        let outcome = run_redis(&self.engine, &self.component, message, &self.limits);
        self.status.duration.observe_duration(started.elapsed());
        match outcome {
            Ok(()) => {
                self.status.handled.inc();
                tracing::debug!(target: "flint::redis", trigger = %self.trigger, component = %self.component.id, channel = %message.channel, duration = ?started.elapsed(), "handled");
            }
            Err(failure) => {
                self.status.failed.inc();
                tracing::warn!(target: "flint::redis", trigger = %self.trigger, component = %self.component.id, channel = %message.channel, "handler failed: {failure}");
            }
        }
    }
}
