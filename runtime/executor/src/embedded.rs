//! The device seam (cargo feature `embedded-svc`): an MQTT client on a board
//! without Linux (ESP-IDF's `EspMqttClient`) hands Flint `embedded-svc`
//! events; a received one becomes the [`MqttMessage`] a handler runs with.

use std::sync::Arc;

use embedded_svc::mqtt::client::{Details, EventPayload, QoS};

use crate::MqttMessage;

/// Why an event is not a message a handler can run with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotAMessage {
    #[error("the event is `{0}`, not a received message")]
    OtherEvent(String),
    #[error("the message has no topic")]
    NoTopic,
    #[error("the message arrived in chunks; handlers take whole messages")]
    Chunked,
    #[error("message id {0} is not an MQTT packet id")]
    BadId(u32),
}

/// A received event and the QoS it was subscribed with (embedded-svc's
/// events do not carry it).
impl<E: std::fmt::Debug> TryFrom<(EventPayload<'_, E>, QoS)> for MqttMessage {
    type Error = NotAMessage;

    fn try_from((event, qos): (EventPayload<'_, E>, QoS)) -> Result<Self, NotAMessage> {
        let EventPayload::Received {
            id,
            topic,
            data,
            details,
        } = event
        else {
            return Err(NotAMessage::OtherEvent(event.to_string()));
        };
        if details != Details::Complete {
            return Err(NotAMessage::Chunked);
        }
        Ok(MqttMessage {
            topic: Arc::from(topic.ok_or(NotAMessage::NoTopic)?),
            payload: data.to_vec(),
            qos: qos as u8,
            retain: false,
            message_id: u16::try_from(id).map_err(|_| NotAMessage::BadId(id))?,
        })
    }
}

/// A message as an `embedded-svc` event, for a board's own client to publish
/// or for tests that drive a handler with device events.
impl<'a, E> From<&'a MqttMessage> for EventPayload<'a, E> {
    fn from(message: &'a MqttMessage) -> Self {
        EventPayload::Received {
            id: u32::from(message.message_id),
            topic: Some(&message.topic),
            data: &message.payload,
            details: Details::Complete,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_events() {
        let message = MqttMessage {
            topic: "sensors/1/temp".into(),
            payload: b"21.5".to_vec(),
            qos: 1,
            retain: false,
            message_id: 7,
        };
        let event: EventPayload<'_, std::io::Error> = (&message).into();
        let back = MqttMessage::try_from((event, QoS::AtLeastOnce)).expect("a message");
        assert_eq!(
            (&*back.topic, &back.payload[..], back.qos, back.message_id),
            ("sensors/1/temp", &b"21.5"[..], 1, 7)
        );
        let other = MqttMessage::try_from((
            EventPayload::<std::io::Error>::Connected(true),
            QoS::AtMostOnce,
        ));
        assert!(matches!(other, Err(NotAMessage::OtherEvent(_))));
    }
}
