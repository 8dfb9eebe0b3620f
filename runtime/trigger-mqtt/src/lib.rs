//! The MQTT trigger: one session for the app's subscriptions, a bounded
//! queue and handler threads per subscription, retries and dead letters.
//! Guests' publishes (and dead letters sent to a topic) go through the
//! host's durable outbox.

mod handler;
mod queue;
mod session;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use flint_engine::InstanceLimits;
use flint_executor::Component;
use flint_host::Engine;
use flint_host::outbox::Qos;

pub use handler::DeadLetterSink;
use handler::Handler;
pub use session::SessionConfig;
use status::{MqttStatus, SubscriptionStatus};

/// One `[[trigger.mqtt]]`, resolved: its topic expanded, its component loaded.
pub struct Subscription {
    pub trigger: String,
    pub filter: String,
    pub qos: u8,
    pub component: Arc<Component>,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub retry_backoff: Duration,
    pub dead_letter: DeadLetterSink,
}

/// Messages a subscription's queue holds beyond its running handlers.
const QUEUE_PER_HANDLER: usize = 8;

/// Starts the handler threads and the session thread; returns at once,
/// with the counters the trigger keeps.
pub fn start(
    session: SessionConfig,
    subscriptions: Vec<Subscription>,
    engine: Arc<Engine>,
    limits: InstanceLimits,
    max_payload_bytes: usize,
) -> anyhow::Result<Arc<MqttStatus>> {
    let statuses: Vec<Arc<SubscriptionStatus>> = subscriptions
        .iter()
        .map(|s| {
            Arc::new(SubscriptionStatus::new(
                &s.trigger,
                &s.filter,
                s.component.id.clone(),
            ))
        })
        .collect();
    let status = Arc::new(MqttStatus::new(session.broker.url(), statuses.clone()));
    let mut routes = Vec::new();
    for (s, subscription) in subscriptions.into_iter().zip(statuses) {
        let (tx, rx) = queue::bounded(s.concurrency * QUEUE_PER_HANDLER);
        let handler = Arc::new(Handler {
            trigger: s.trigger.clone(),
            component: s.component,
            engine: engine.clone(),
            limits: limits.clone(),
            max_attempts: s.max_attempts,
            retry_backoff: s.retry_backoff,
            max_payload_bytes,
            dead_letter: s.dead_letter,
            status: status.clone(),
            subscription: subscription.clone(),
        });
        handler
            .spawn(rx, s.concurrency)
            .with_context(|| format!("starting the handlers of MQTT trigger `{}`", s.trigger))?;
        routes.push(session::Route {
            trigger: s.trigger,
            filter: s.filter,
            qos: Qos::from_level(s.qos).into(),
            queue: tx,
            status: subscription,
        });
    }
    let session_status = status.clone();
    std::thread::Builder::new()
        .name("flint-mqtt".into())
        .spawn(move || session::run(session, routes, session_status))
        .context("starting the MQTT session thread")?;
    Ok(status)
}
