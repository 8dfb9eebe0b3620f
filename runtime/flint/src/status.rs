//! `GET /.well-known/flint/status`: guest memory (engine), the MQTT trigger's
//! counters and the outbox depth (host), composed here because only the
//! binary sees every layer.

use std::sync::Arc;

use flint_engine::limiter::MemoryBudget;
use flint_host::outbox::Outbox;
use flint_trigger_mqtt::status::MqttStatus;

/// The status document's producer, for the HTTP trigger to call per request.
pub fn report(
    memory: Option<Arc<MemoryBudget>>,
    mqtt: Option<Arc<MqttStatus>>,
    outbox: Option<Arc<Outbox>>,
) -> Box<dyn Fn() -> String + Send + Sync> {
    Box::new(move || document(memory.as_deref(), mqtt.as_deref(), outbox.as_deref()))
}

/// The JSON document.
fn document(
    memory: Option<&MemoryBudget>,
    mqtt: Option<&MqttStatus>,
    outbox: Option<&Outbox>,
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
