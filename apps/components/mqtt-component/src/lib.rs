//! An MQTT handler for the `spin:mqtt-trigger` world as a wasip2 component,
//! built with wit-bindgen over ../../wit/spin-mqtt.wit: the component form of
//! ../../mqtt-ingest (same behaviour, same keys and topics).
//!
//! For each message it records `seen/<id>` (the payload length) and
//! `payload/<topic>` (the payload) in the default key-value store, then
//! publishes `<id>` to `processed/<topic>` through `fermyon:spin/mqtt`, where
//! `<id>` is the payload when it is short text, else the topic. Topics under
//! `flaky/` fail their first two attempts (counted in the store); topics under
//! `fail/` always fail.

wit_bindgen::generate!({
    world: "spin-mqtt-platform",
    path: "../../wit",
    generate_all,
});

use fermyon::spin::key_value::Store;
use fermyon::spin::mqtt::{Connection, Qos};
use fermyon::spin::variables;

struct Ingest;

fn other(e: impl std::fmt::Debug) -> Error {
    Error::Other(format!("{e:?}"))
}

impl Guest for Ingest {
    fn handle_message(message: Vec<u8>, metadata: Metadata) -> Result<(), Error> {
        let topic = metadata.topic;
        let store = Store::open("default").map_err(other)?;
        let id = match std::str::from_utf8(&message) {
            Ok(text) if !text.is_empty() && text.len() <= 64 && !text.contains('/') => {
                text.to_owned()
            }
            _ => topic.clone(),
        };
        if topic.starts_with("fail/") {
            return Err(Error::Other(format!("{topic} always fails")));
        }
        if topic.starts_with("flaky/") {
            let key = format!("attempts/{id}");
            let attempts = store
                .get(&key)
                .map_err(other)?
                .and_then(|v| String::from_utf8(v).ok()?.parse::<u32>().ok())
                .unwrap_or(0)
                + 1;
            store
                .set(&key, attempts.to_string().as_bytes())
                .map_err(other)?;
            if attempts <= 2 {
                return Err(Error::Other(format!("attempt {attempts} fails on purpose")));
            }
        }
        store
            .set(&format!("payload/{topic}"), &message)
            .map_err(other)?;
        store
            .set(&format!("seen/{id}"), message.len().to_string().as_bytes())
            .map_err(other)?;
        let address = variables::get("mqtt_address").map_err(other)?;
        let connection = Connection::open(&address, "", "", 30).map_err(other)?;
        connection
            .publish(
                &format!("processed/{topic}"),
                &id.into_bytes(),
                Qos::AtLeastOnce,
            )
            .map_err(other)
    }
}

export!(Ingest);
