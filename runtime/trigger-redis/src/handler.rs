//! One trigger's handler: a thread taking messages from its bounded queue
//! in order and running the component for each. A failure is logged and
//! the next message handled, as Spin does (Redis cannot take a message back).

use std::panic::AssertUnwindSafe;
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
        // A thread name with a NUL in it (a TOML string may hold one) would
        // make `spawn` panic.
        let name = format!("flint-redis-{}", self.trigger.replace('\0', ""));
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                while let Ok(message) = queue.recv() {
                    // A panic while handling must not end this thread: its
                    // queue would go with it, and with the queue the server's
                    // session, which stops when it has nowhere to deliver.
                    // (Release builds abort on a panic instead; this is for
                    // the builds that unwind.)
                    let handled =
                        std::panic::catch_unwind(AssertUnwindSafe(|| self.handle(&message)));
                    if handled.is_err() {
                        self.status.failed.inc();
                        tracing::error!(target: "flint::redis", trigger = %self.trigger, component = %self.component.id, channel = %message.channel, "handler panicked; handling the next message");
                    }
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
