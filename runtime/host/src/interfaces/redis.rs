//! `fermyon:spin/redis@2.0.0` and `spin:redis/redis@3.0.0`: a guest's
//! connections to Redis servers through [`crate::outbound_redis`].
//!
//! `open` checks as Spin's `factor-outbound-redis` does: the address must
//! be permitted by `allowed_outbound_hosts` (else `invalid-address`, with
//! nothing sent), then a connection slot must be free
//! (`too-many-connections`), then the address must be one the client reads
//! (`invalid-address`), then the connection is made (`other` with the
//! reason). A connection is opened once and reused for the resource's life.
//! Every reply is read within the instance's memory limit.

use std::sync::atomic::{AtomicUsize, Ordering};

use flint_config::RedisAddress;
use wasmi::Error;

use super::{GuestState, drop_fn, host_fn};
use crate::capabilities::{Capabilities, OutboundOutcome};
use crate::outbound_redis::{Client, Connect, RedisError, Reply};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::{option_ty, result_ty};

const ERROR: Ty = Ty::Variant(&[
    None,             // invalid-address
    None,             // too-many-connections
    None,             // type-error
    Some(Ty::String), // other
]);
const PAYLOAD: Ty = Ty::List(&Ty::U8);
const STRINGS: Ty = Ty::List(&Ty::String);
const REDIS_PARAMETER: Ty = Ty::Variant(&[Some(Ty::S64), Some(PAYLOAD)]);
const REDIS_RESULT: Ty = Ty::Variant(&[None, Some(Ty::String), Some(Ty::S64), Some(PAYLOAD)]);

/// Guests' Redis connections open at once, across the process: each is a
/// socket, and an instance could otherwise open one per handle.
const MAX_CONNECTIONS: usize = 1024;
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// One of the [`MAX_CONNECTIONS`], given back when the resource is dropped.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        OPEN.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_CONNECTIONS).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An open connection (WIT `connection`).
pub struct RedisConnection {
    client: Client,
    /// The allow-list entry that permitted the server, for the metrics.
    pattern: usize,
    _slot: Slot,
}

/// Why an operation failed, as the WIT `error` spells it.
enum Failure {
    InvalidAddress,
    TooManyConnections,
    TypeError,
    Other(String),
}

impl From<RedisError> for Failure {
    fn from(e: RedisError) -> Self {
        Failure::Other(e.to_string())
    }
}

fn err(failure: Failure) -> Value {
    Value::err(match failure {
        Failure::InvalidAddress => Value::case(0, None),
        Failure::TooManyConnections => Value::case(1, None),
        Failure::TypeError => Value::case(2, None),
        Failure::Other(message) => Value::case(3, Some(Value::string(message))),
    })
}

fn open(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let address = args.string()?;
    Ok(match connect(&state.host.caps, &address) {
        Ok(connection) => Value::ok(Value::Handle(state.host.resources.push(connection)?)),
        Err(failure) => err(failure),
    })
}

fn connect(caps: &Capabilities, address: &str) -> Result<RedisConnection, Failure> {
    let component = &caps.component;
    // The address is logged only without its credentials.
    let parsed = RedisAddress::parse(address).map_err(|e| {
        tracing::warn!(target: "flint::outbound", %component, "outbound Redis refused: invalid address: {e}");
        Failure::InvalidAddress
    })?;
    let server = parsed.display();
    let scheme = if parsed.tls { "rediss" } else { "redis" };
    let Some(pattern) = caps
        .allowed_hosts
        .matching(scheme, &parsed.host, parsed.port)
    else {
        // Spin's hint, with the entry that would allow it.
        let entry = server.split('/').take(3).collect::<Vec<_>>().join("/");
        tracing::warn!(target: "flint::outbound", %component, %server, "outbound Redis denied: not in allowed_outbound_hosts (to allow it, add allowed_outbound_hosts = [\"{entry}\"] to the component)");
        caps.outbound_metrics.denied();
        return Err(Failure::InvalidAddress);
    };
    let slot = Slot::take().ok_or(Failure::TooManyConnections)?;
    let services = &caps.services;
    let connected = Client::connect(&Connect {
        address: &parsed,
        blocked: &services.blocked,
        connect_timeout: services.outbound.connect_timeout,
        io_timeout: services.outbound.io_timeout,
        tls: parsed
            .tls
            .then(|| services.tls.for_component(component, &parsed.host)),
    });
    match connected {
        Ok(client) => Ok(RedisConnection {
            client,
            pattern,
            _slot: slot,
        }),
        Err(e) => {
            if matches!(
                e,
                RedisError::Connect(crate::outbound_tcp::ConnectError::Prohibited(_))
            ) {
                tracing::warn!(target: "flint::outbound", %component, %server, "outbound Redis denied: the server resolves to a network in block_networks");
                caps.outbound_metrics.denied();
            } else {
                tracing::warn!(target: "flint::outbound", %component, %server, "outbound Redis failed: {e}");
                caps.outbound_metrics
                    .record(pattern, OutboundOutcome::Error);
            }
            Err(e.into())
        }
    }
}

/// Runs `args` as a command on the connection behind the first argument
/// and turns its reply into the guest's value with `answer`, counting the
/// outcome. The reply is read within the instance's memory limit.
fn run(
    state: &mut GuestState,
    handle: u32,
    args: &[&[u8]],
    answer: impl FnOnce(Reply) -> Result<Value, Failure>,
) -> Result<Value, Error> {
    let budget = state.host.memory_limit;
    let connection = state.host.resources.get::<RedisConnection>(handle)?;
    let pattern = connection.pattern;
    let result = connection
        .client
        .command(args, budget)
        .map_err(Failure::from)
        .and_then(answer);
    let server = connection.client.address();
    let caps = &state.host.caps;
    let outcome = match &result {
        Ok(_) => OutboundOutcome::Ok,
        Err(Failure::Other(message)) => {
            tracing::debug!(target: "flint::outbound", component = %caps.component, %server, "outbound Redis command failed: {message}");
            OutboundOutcome::Error
        }
        Err(_) => OutboundOutcome::Error,
    };
    caps.outbound_metrics.record(pattern, outcome);
    Ok(result.unwrap_or_else(err))
}

/// The wording the `redis` crate uses when a reply does not convert.
fn incompatible(reply: &Reply, wanted: &str) -> Failure {
    Failure::Other(format!(
        "Response was of incompatible type - TypeError: {wanted} (response was {})",
        reply.brief()
    ))
}

fn count(reply: Reply, type_error: bool) -> Result<Value, Failure> {
    match reply {
        Reply::Int(n) => match u32::try_from(n) {
            Ok(n) => Ok(Value::ok(Value::U32(n))),
            Err(_) => Err(incompatible(&reply, "a count that fits in u32")),
        },
        _ if type_error => Err(Failure::TypeError),
        other => Err(incompatible(&other, "an integer")),
    }
}

fn unit(_: Reply) -> Result<Value, Failure> {
    Ok(Value::ok_unit())
}

/// The `list<string>` argument that comes next.
fn strings(args: &mut Args) -> Result<Vec<String>, Error> {
    args.list()?.into_iter().map(Value::into_string).collect()
}

/// `first`, then each string as one argument.
fn with_strings<'a>(first: &[&'a [u8]], rest: &'a [String]) -> Vec<&'a [u8]> {
    let mut args = first.to_vec();
    args.extend(rest.iter().map(|s| s.as_bytes()));
    args
}

fn publish(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let channel = args.string()?;
    let payload = args.bytes()?;
    run(
        state,
        handle,
        &[b"PUBLISH", channel.as_bytes(), &payload],
        unit,
    )
}

fn get(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let key = args.string()?;
    run(
        state,
        handle,
        &[b"GET", key.as_bytes()],
        |reply| match reply {
            Reply::Nil => Ok(Value::ok(Value::none())),
            Reply::Bulk(value) => Ok(Value::ok(Value::some(Value::Bytes(value)))),
            other => Err(incompatible(&other, "a string")),
        },
    )
}

fn set(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let key = args.string()?;
    let value = args.bytes()?;
    run(state, handle, &[b"SET", key.as_bytes(), &value], unit)
}

/// `INCRBY key 1`, as Spin sends it.
fn incr(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let key = args.string()?;
    run(
        state,
        handle,
        &[b"INCRBY", key.as_bytes(), b"1"],
        |reply| match reply {
            Reply::Int(n) => Ok(Value::ok(Value::S64(n))),
            other => Err(incompatible(&other, "an integer")),
        },
    )
}

fn del(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let keys = strings(&mut args)?;
    run(state, handle, &with_strings(&[b"DEL"], &keys), |r| {
        count(r, false)
    })
}

/// Only `sadd` answers `type-error` for a reply of the wrong type, as in Spin.
fn sadd(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let key = args.string()?;
    let values = strings(&mut args)?;
    let command = with_strings(&[b"SADD", key.as_bytes()], &values);
    run(state, handle, &command, |r| count(r, true))
}

fn srem(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let key = args.string()?;
    let values = strings(&mut args)?;
    let command = with_strings(&[b"SREM", key.as_bytes()], &values);
    run(state, handle, &command, |r| count(r, false))
}

fn smembers(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let key = args.string()?;
    run(state, handle, &[b"SMEMBERS", key.as_bytes()], |reply| {
        let Reply::Array(members) = reply else {
            return Err(incompatible(&reply, "a set"));
        };
        let mut strings = Vec::with_capacity(members.len());
        for member in members {
            match member {
                Reply::Bulk(bytes) => match String::from_utf8(bytes) {
                    Ok(s) => strings.push(Value::String(s)),
                    Err(e) => {
                        return Err(incompatible(
                            &Reply::Bulk(e.into_bytes()),
                            "a UTF-8 set member",
                        ));
                    }
                },
                other => return Err(incompatible(&other, "a string")),
            }
        }
        Ok(Value::ok(Value::List(strings)))
    })
}

fn execute(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let command = args.string()?;
    let mut parameters = Vec::new();
    for parameter in args.list()? {
        parameters.push(match parameter.into_variant()? {
            (0, Some(Value::S64(n))) => n.to_string().into_bytes(),
            (_, Some(Value::Bytes(bytes))) => bytes,
            other => return Err(Error::new(format!("host bug: redis-parameter {other:?}"))),
        });
    }
    let mut command_args: Vec<&[u8]> = vec![command.as_bytes()];
    command_args.extend(parameters.iter().map(Vec::as_slice));
    run(state, handle, &command_args, |reply| {
        let mut results = Vec::new();
        flatten(reply, &mut results);
        Ok(Value::ok(Value::List(results)))
    })
}

/// A reply as `redis-result`s, arrays flattened in order, as Spin's
/// `RedisResults` does. (A server error never gets here: it is the call's.)
fn flatten(reply: Reply, out: &mut Vec<Value>) {
    match reply {
        Reply::Nil | Reply::Error(_) => out.push(Value::case(0, None)),
        Reply::Status(s) => out.push(Value::case(1, Some(Value::String(s)))),
        Reply::Int(n) => out.push(Value::case(2, Some(Value::S64(n)))),
        Reply::Bulk(b) => out.push(Value::case(3, Some(Value::Bytes(b)))),
        Reply::Array(items) => {
            out.reserve(items.len());
            for item in items {
                flatten(item, out);
            }
        }
    }
}

pub const FUNCTIONS: &[HostFn<GuestState>] = &[
    host_fn!("[static]connection.open", [Ty::String] -> result_ty!(Ty::Handle, ERROR), open),
    host_fn!("[method]connection.publish", [Ty::Handle, Ty::String, PAYLOAD] -> result_ty!(_, ERROR), publish),
    host_fn!("[method]connection.get", [Ty::Handle, Ty::String] -> result_ty!(option_ty!(PAYLOAD), ERROR), get),
    host_fn!("[method]connection.set", [Ty::Handle, Ty::String, PAYLOAD] -> result_ty!(_, ERROR), set),
    host_fn!("[method]connection.incr", [Ty::Handle, Ty::String] -> result_ty!(Ty::S64, ERROR), incr),
    host_fn!("[method]connection.del", [Ty::Handle, STRINGS] -> result_ty!(Ty::U32, ERROR), del),
    host_fn!("[method]connection.sadd", [Ty::Handle, Ty::String, STRINGS] -> result_ty!(Ty::U32, ERROR), sadd),
    host_fn!("[method]connection.smembers", [Ty::Handle, Ty::String] -> result_ty!(STRINGS, ERROR), smembers),
    host_fn!("[method]connection.srem", [Ty::Handle, Ty::String, STRINGS] -> result_ty!(Ty::U32, ERROR), srem),
    host_fn!("[method]connection.execute", [Ty::Handle, Ty::String, Ty::List(&REDIS_PARAMETER)] -> result_ty!(Ty::List(&REDIS_RESULT), ERROR), execute),
    drop_fn!("connection", RedisConnection),
];

/// `spin:redis/redis@3.0.0` (Spin's `wit/deps/spin-redis@3.0.0`): the same
/// resource, types and semantics as 2.0.0 (Spin's `v3` host opens and runs
/// commands as its `v2` does). Its functions are declared `async`; these
/// are their synchronous lowering, whose core signatures are those of
/// 2.0.0's.
pub const FUNCTIONS_V3: &[HostFn<GuestState>] = FUNCTIONS;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound_hosts::AllowedHosts;

    #[test]
    fn permission_comes_before_any_connection() {
        let mut caps = Capabilities::none("c");
        caps.allowed_hosts = AllowedHosts::parse(["redis://127.0.0.1:1"]).expect("hosts");
        // Not allowed (another port, or rediss:// for a redis:// entry): no
        // connection is tried, and the answer is `invalid-address`.
        for address in [
            "redis://127.0.0.1:2",
            "rediss://127.0.0.1:1",
            "not an address",
        ] {
            assert!(
                matches!(connect(&caps, address), Err(Failure::InvalidAddress)),
                "{address}"
            );
        }
        // Allowed, nothing listening: `other`, naming the server.
        match connect(&caps, "redis://127.0.0.1:1") {
            Err(Failure::Other(message)) => assert!(message.contains("127.0.0.1:1"), "{message}"),
            _ => panic!("expected `other`"),
        }
        assert_eq!(OPEN.load(Ordering::Acquire), 0, "the slot was given back");
    }

    #[test]
    fn execute_results_are_flattened_in_order() {
        let mut out = Vec::new();
        flatten(
            Reply::Array(vec![
                Reply::Status("OK".into()),
                Reply::Array(vec![Reply::Int(1), Reply::Nil]),
                Reply::Bulk(b"b".to_vec()),
            ]),
            &mut out,
        );
        assert_eq!(
            out,
            [
                Value::case(1, Some(Value::string("OK"))),
                Value::case(2, Some(Value::S64(1))),
                Value::case(0, None),
                Value::case(3, Some(Value::Bytes(b"b".to_vec()))),
            ]
        );
        assert!(matches!(
            count(Reply::Int(-1), false),
            Err(Failure::Other(_))
        ));
        assert!(matches!(count(Reply::Nil, true), Err(Failure::TypeError)));
    }
}
