//! `fermyon:spin/mqtt@2.0.0` and `spin:mqtt/mqtt@3.0.0`: outbound publish
//! through the durable outbox.
//! `open` checks the address (which must carry a `client_id`, as in Spin) and
//! the component's `allowed_outbound_hosts`; `publish` returns once the
//! message is on disk, and the outbox's sender delivers it in order, across
//! broker outages and restarts. Spin's `publish` instead waits for the
//! broker, and fails while it is away.

use std::sync::Arc;

use wasmi::Error;

use super::{GuestState, drop_fn, host_fn};
use crate::capabilities::OutboundOutcome;
use crate::mqtt_tls::TlsClient;
use crate::outbox::{OutboxError, Sender, Target};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::result_ty;

const ERROR: Ty = Ty::Variant(&[
    None,             // invalid-address
    None,             // too-many-connections
    Some(Ty::String), // connection-failed
    Some(Ty::String), // other
]);
const QOS: Ty = Ty::Variant(&[None, None, None]);

pub struct Connection {
    sender: Arc<Sender>,
    /// The allow-list entry that permitted the broker, for the metrics.
    pattern: usize,
}

fn error_case(case: u32, message: String) -> Value {
    Value::err(Value::case(case, Some(Value::string(message))))
}

fn open(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let address = args.string()?;
    let username = args.string()?;
    let password = args.string()?;
    let keep_alive = args.u64()?;
    let caps = &state.host.caps;
    // Spin's order: permission first (an address whose host cannot be read is
    // not permitted either), with Spin's wording and the address as the guest
    // gave it; then the form of the address (`client_id`).
    let allowed = broker_authority(&address).and_then(|b| {
        let scheme = if b.tls { "mqtts" } else { "mqtt" };
        caps.allowed_hosts.matching(scheme, &b.host, b.port)
    });
    let Some(pattern) = allowed else {
        tracing::warn!(target: "flint::outbound", component = %caps.component, %address, "outbound MQTT denied: not in allowed_outbound_hosts");
        caps.outbound_metrics.denied();
        return Ok(error_case(2, format!("address {address} is not permitted")));
    };
    let Some(broker) = BrokerAddress::parse(&address) else {
        return Ok(Value::err(Value::case(0, None)));
    };
    let blocked = &caps.services.blocked;
    if !blocked.is_empty() {
        use std::net::ToSocketAddrs as _;
        let resolved: Vec<_> = (broker.host.as_str(), broker.port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .unwrap_or_default();
        if resolved
            .iter()
            .any(|a: &std::net::SocketAddr| blocked.is_blocked(a.ip()))
        {
            tracing::warn!(target: "flint::outbound", component = %caps.component, %address, "outbound MQTT denied: the broker resolves to a network in block_networks");
            caps.outbound_metrics.denied();
            return Ok(error_case(
                2,
                format!("address {address} is in a blocked network (block_networks)"),
            ));
        }
    }
    let Some(outbox) = &caps.services.outbox else {
        return Ok(error_case(
            3,
            "outbound MQTT needs a state directory".into(),
        ));
    };
    let tls = broker.tls.then(|| {
        TlsClient(
            caps.services
                .tls
                .for_component(&caps.component, &broker.host),
        )
    });
    let sender = outbox.sender(&Target {
        tls,
        host: broker.host,
        port: broker.port,
        client_id: broker.client_id,
        username,
        password,
        keep_alive_secs: keep_alive.clamp(5, 65535),
    });
    match sender {
        Ok(sender) => Ok(Value::ok(Value::Handle(
            state.host.resources.push(Connection { sender, pattern })?,
        ))),
        Err(OutboxError::TooManyTargets(_)) => Ok(Value::err(Value::case(1, None))),
        Err(e) => Ok(error_case(2, e.to_string())),
    }
}

fn publish(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let connection = state.host.resources.get::<Connection>(args.handle()?)?;
    let (sender, pattern) = (connection.sender.clone(), connection.pattern);
    let topic = args.string()?;
    let payload = args.bytes()?;
    let qos = crate::outbox::Qos::from_level(args.variant()?.0 as u8).into();
    if let Err(e) = flint_config::check_topic_name(&topic) {
        return Ok(error_case(3, format!("topic `{topic}`: {e}")));
    }
    let caps = &state.host.caps;
    let Some(outbox) = &caps.services.outbox else {
        return Ok(error_case(
            3,
            "outbound MQTT needs a state directory".into(),
        ));
    };
    let enqueued = outbox.enqueue(&sender, &topic, &payload, qos);
    let counted = match enqueued {
        Ok(()) => OutboundOutcome::Ok,
        Err(_) => OutboundOutcome::Error,
    };
    caps.outbound_metrics.record(pattern, counted);
    Ok(match enqueued {
        Ok(()) => Value::ok_unit(),
        Err(e) => {
            tracing::warn!(target: "flint::outbound", component = %caps.component, %topic, "outbound MQTT publish refused: {e}");
            error_case(3, e.to_string())
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
    /// `mqtts://`.
    tls: bool,
}

/// The host and port of a guest's broker address, for the permission check.
fn broker_authority(address: &str) -> Option<flint_config::MqttAddress> {
    let address = address.split_once('?').map_or(address, |(a, _)| a);
    flint_config::MqttAddress::parse(address.strip_suffix('/').unwrap_or(address)).ok()
}

impl BrokerAddress {
    /// The host and port follow the trigger's own address rules
    /// (`flint_config::MqttAddress`); only the `client_id` query is added.
    fn parse(address: &str) -> Option<Self> {
        let broker = broker_authority(address)?;
        let query = address.split_once('?').map_or("", |(_, q)| q);
        let client_id = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("client_id="))
            .filter(|id| !id.is_empty())?;
        Some(Self {
            host: broker.host,
            port: broker.port,
            client_id: client_id.to_owned(),
            tls: broker.tls,
        })
    }
}

pub const FUNCTIONS: &[HostFn<GuestState>] = &[
    host_fn!("[static]connection.open", [Ty::String, Ty::String, Ty::String, Ty::U64] -> result_ty!(Ty::Handle, ERROR), open),
    host_fn!("[method]connection.publish", [Ty::Handle, Ty::String, Ty::List(&Ty::U8), QOS] -> result_ty!(_, ERROR), publish),
    drop_fn!("connection", Connection),
];

/// `spin:mqtt/mqtt@3.0.0` (Spin's `wit/deps/spin-mqtt@3.0.0`): the same
/// resource, `error`, `qos` and semantics as 2.0.0 (Spin's `v3` host checks
/// and connects as its `v2` does). `open` and `publish` are declared
/// `async`; these are their synchronous lowering, whose core signatures are
/// those of 2.0.0's.
pub const FUNCTIONS_V3: &[HostFn<GuestState>] = FUNCTIONS;

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
                client_id: "app".into(),
                tls: false,
            })
        );
        assert_eq!(
            BrokerAddress::parse("mqtt://broker?client_id=x").map(|b| b.port),
            Some(1883)
        );
        assert_eq!(
            BrokerAddress::parse("mqtts://broker?client_id=x").map(|b| (b.port, b.tls)),
            Some((8883, true))
        );
        for bad in [
            "mqtt://localhost:1883",
            "localhost?client_id=x",
            "mqtt://:1883?client_id=x",
            "mqtt://h:notaport?client_id=x",
        ] {
            assert_eq!(BrokerAddress::parse(bad), None, "{bad}");
        }
    }
}
