//! MQTT triggers: the broker connection they share
//! (`[application.trigger.mqtt]`), the subscriptions that run components
//! (`[[trigger.mqtt]]`), and the MQTT rules for broker addresses and topics.
//!
//! Those rules are public because a templated address or topic can only be
//! checked once the runtime has expanded it.

mod address;
mod topic;

pub(crate) use address::strip_scheme;
pub use address::{AddressError, MqttAddress};
pub use topic::{TopicError, check_filter, check_topic_name, filter_matches};

use crate::diagnostic::Location;

/// `[application.trigger.mqtt]`: Spin's MQTT trigger plugin settings plus
/// Flint's. Present exactly when the table gives an `address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttBroker {
    /// `mqtt://host[:port]`, possibly with `{{ variable }}` templates.
    pub address: String,
    pub address_location: Location,
    /// May contain templates; empty means none is sent.
    pub username: String,
    /// May contain templates; empty means none is sent.
    pub password: String,
    pub keep_alive_secs: u64,
    /// `None`: the runtime derives one, so that replicas of an app do not
    /// take over each other's sessions.
    pub client_id: Option<String>,
    /// `false` keeps the broker session, and with it the QoS 1/2 messages
    /// that arrive while Flint is down.
    pub clean_session: bool,
    /// QoS 1/2 publishes awaiting acknowledgement, per connection.
    pub max_inflight: u16,
    /// `None`: the runtime decides.
    pub max_payload_bytes: Option<u64>,
    /// Disk budget of the durable outbox of guest publishes.
    pub outbox_max_bytes: u64,
    pub outbox_max_messages: u64,
    pub location: Location,
}

/// A `[[trigger.mqtt]]` entry: a subscription whose messages run a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttTrigger {
    /// As written, or generated the way Spin does it:
    /// `<component>-mqtt-trigger`, else `mqtt-trigger<n>`.
    pub id: String,
    pub component: String,
    pub component_location: Location,
    /// A topic filter, possibly with `{{ variable }}` templates; checked with
    /// [`check_filter`] unless it has templates.
    pub topic: String,
    pub topic_location: Location,
    /// 0, 1 or 2.
    pub qos: u8,
    /// Handlers of this subscription running at once; 1 keeps the order of
    /// each topic's messages.
    pub concurrency: usize,
    /// Handler attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// The first retry's delay; it doubles with each attempt.
    pub retry_backoff_ms: u64,
    pub dead_letter: DeadLetter,
    pub location: Location,
}

/// Where a message goes once its handler has failed `max_attempts` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetter {
    /// A key-value store, by label.
    Store(String),
    /// A topic on the same broker.
    Topic(String),
}
