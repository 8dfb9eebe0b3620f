//! `fermyon:spin/mqtt@2.0.0`: outbound publish. As in Spin, `open` connects
//! (the address must carry a `client_id`) and `publish` returns once the
//! broker has acknowledged the message at the requested QoS.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS};
use wasmi::Error;

use super::{GuestState, drop_fn, host_fn};
use crate::canon::{Args, HostFn, Ty, Value};
use crate::outbound_hosts::default_port;
use crate::result_ty;

const ERROR: Ty = Ty::Variant(&[
    None,             // invalid-address
    None,             // too-many-connections
    Some(Ty::String), // connection-failed
    Some(Ty::String), // other
]);
const QOS: Ty = Ty::Variant(&[None, None, None]);
/// How long `open` waits for CONNACK and `publish` for its acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Connection {
    client: Client,
    events: Receiver<Progress>,
    broker: String,
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.client.try_disconnect();
    }
}

/// What the connection's event loop reports back.
enum Progress {
    Connected,
    Sent(u16),
    Acked(u16),
    Completed(u16),
    Failed(String),
}

fn connection_failed(message: String) -> Value {
    Value::err(Value::case(2, Some(Value::string(message))))
}

fn open(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let address = args.string()?;
    let username = args.string()?;
    let password = args.string()?;
    let keep_alive = args.u64()?;
    let caps = &state.host.caps;
    let Some(broker) = BrokerAddress::parse(&address) else {
        return Ok(Value::err(Value::case(0, None)));
    };
    let BrokerAddress {
        host,
        port,
        client_id,
    } = broker;
    let target = format!("mqtt://{host}:{port}");
    if !caps.allowed_hosts.allows("mqtt", &host, port) {
        tracing::warn!(target: "flint::outbound", component = %caps.component, broker = %target, "outbound MQTT denied: not in allowed_outbound_hosts");
        return Ok(connection_failed(format!(
            "{target} is not in allowed_outbound_hosts"
        )));
    }
    let mut options = MqttOptions::new(client_id, host.clone(), port);
    options.set_keep_alive(Duration::from_secs(keep_alive.clamp(5, 65535)));
    if !username.is_empty() {
        options.set_credentials(username, password);
    }
    let (client, mut connection) = Client::new(options, 16);
    let (tx, events) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("flint-mqtt-out".into())
        .spawn(move || {
            for event in connection.iter() {
                let progress = match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => Progress::Connected,
                    Ok(Event::Outgoing(Outgoing::Publish(id))) => Progress::Sent(id),
                    Ok(Event::Incoming(Packet::PubAck(ack))) => Progress::Acked(ack.pkid),
                    Ok(Event::Incoming(Packet::PubComp(ack))) => Progress::Completed(ack.pkid),
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => continue,
                    Err(e) => Progress::Failed(e.to_string()),
                };
                let failed = matches!(progress, Progress::Failed(_));
                if tx.send(progress).is_err() || failed {
                    break;
                }
            }
        });
    if let Err(e) = spawned {
        return Ok(Value::err(Value::case(
            3,
            Some(Value::string(e.to_string())),
        )));
    }
    let connection = Connection {
        client,
        events,
        broker: target,
    };
    if let Err(message) = wait(&connection, |p| matches!(p, Progress::Connected)) {
        tracing::warn!(target: "flint::outbound", component = %caps.component, broker = %connection.broker, "outbound MQTT connection failed: {message}");
        return Ok(connection_failed(message));
    }
    Ok(Value::ok(Value::Handle(
        state.host.resources.push(connection)?,
    )))
}

/// Waits for the event `done` accepts, within [`ACK_TIMEOUT`].
fn wait(connection: &Connection, mut done: impl FnMut(&Progress) -> bool) -> Result<(), String> {
    let deadline = Instant::now() + ACK_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match connection.events.recv_timeout(left) {
            Ok(Progress::Failed(e)) => return Err(e),
            Ok(p) if done(&p) => return Ok(()),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "no answer from {} within {ACK_TIMEOUT:?}",
                    connection.broker
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!("the connection to {} closed", connection.broker));
            }
        }
    }
}

fn publish(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let connection = state.host.resources.get::<Connection>(args.handle()?)?;
    let topic = args.string()?;
    let payload = args.bytes()?;
    let qos = match args.variant()?.0 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    if let Err(e) = connection.client.publish(topic, qos, false, payload) {
        return Ok(Value::err(Value::case(
            3,
            Some(Value::string(e.to_string())),
        )));
    }
    // The event loop numbers the publish as it sends it; then its ack follows.
    let mut sent = None;
    let outcome = wait(connection, |p| match (p, qos) {
        (Progress::Sent(id), QoS::AtMostOnce) => {
            sent = Some(*id);
            true
        }
        (Progress::Sent(id), _) => {
            sent = Some(*id);
            false
        }
        (Progress::Acked(id), QoS::AtLeastOnce) | (Progress::Completed(id), QoS::ExactlyOnce) => {
            sent == Some(*id)
        }
        _ => false,
    });
    Ok(match outcome {
        Ok(()) => Value::ok_unit(),
        Err(message) => {
            let component = &state.host.caps.component;
            tracing::warn!(target: "flint::outbound", %component, "outbound MQTT publish failed: {message}");
            Value::err(Value::case(3, Some(Value::string(message))))
        }
    })
}

/// `mqtt://host[:port]?client_id=ID`, the form Spin accepts (rumqttc's URL
/// syntax); `client_id` is required, as in Spin.
#[derive(Debug, PartialEq, Eq)]
struct BrokerAddress {
    host: String,
    port: u16,
    client_id: String,
}

impl BrokerAddress {
    fn parse(address: &str) -> Option<Self> {
        let rest = address.strip_prefix("mqtt://")?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !authority.ends_with(']') => (host, port.parse().ok()?),
            _ => (authority, default_port("mqtt")?),
        };
        let client_id = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("client_id="))
            .filter(|id| !id.is_empty())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (!host.is_empty() && !host.contains(['/', '@'])).then(|| Self {
            host: host.to_owned(),
            port,
            client_id: client_id.to_owned(),
        })
    }
}

pub const FUNCTIONS: &[HostFn<GuestState>] = &[
    host_fn!("[static]connection.open", [Ty::String, Ty::String, Ty::String, Ty::U64] -> result_ty!(Ty::Handle, ERROR), open),
    host_fn!("[method]connection.publish", [Ty::Handle, Ty::String, Ty::List(&Ty::U8), QOS] -> result_ty!(_, ERROR), publish),
    drop_fn!("connection", Connection),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addresses_need_a_client_id() {
        assert_eq!(
            BrokerAddress::parse("mqtt://localhost:1884?client_id=app"),
            Some(BrokerAddress {
                host: "localhost".into(),
                port: 1884,
                client_id: "app".into()
            })
        );
        assert_eq!(
            BrokerAddress::parse("mqtt://broker?client_id=x").map(|b| b.port),
            Some(1883)
        );
        for bad in [
            "mqtt://localhost:1883",
            "mqtts://localhost?client_id=x",
            "localhost?client_id=x",
            "mqtt://:1883?client_id=x",
            "mqtt://h:notaport?client_id=x",
        ] {
            assert_eq!(BrokerAddress::parse(bad), None, "{bad}");
        }
    }
}
