//! `wasi:sockets@0.2.x`, linked so that components importing it load, and
//! denied: a guest reaches the network only through `wasi:http` and
//! `fermyon:spin/mqtt`, where `allowed_outbound_hosts` applies. Creating a
//! socket or resolving a name is `access-denied`, so no socket, datagram
//! stream or lookup stream ever exists, and a method called on one is a
//! handle the guest forged: a trap. The only resource handed out is the
//! instance's `network`, which nothing accepts.

use wasmi::Error;

use super::io::IoError;
use super::{GuestState, drop_fn, host_fn};
use flint_engine::canon::{Args, HostFn, TableEntry, Ty, Value};
use flint_engine::{option_ty, result_ty};

use crate::Resource;

/// `network`: the one capability handle, good for nothing here.
pub struct Network;
/// `tcp-socket`: never created.
pub enum TcpSocket {}
/// `udp-socket`: never created.
pub enum UdpSocket {}
/// `incoming-datagram-stream`: never created.
pub enum IncomingDatagramStream {}
/// `outgoing-datagram-stream`: never created.
pub enum OutgoingDatagramStream {}
/// `resolve-address-stream`: never created.
pub enum ResolveAddressStream {}

/// `network.error-code`: 21 cases, `access-denied` is case 1.
const ERROR_CODE: Ty = Ty::Variant(&[None; 21]);
const ACCESS_DENIED: u32 = 1;
pub(super) const IP_ADDRESS_FAMILY: Ty = Ty::Variant(&[None, None]);
const IPV4_ADDRESS: Ty = Ty::Tuple(&[Ty::U8; 4]);
const IPV6_ADDRESS: Ty = Ty::Tuple(&[Ty::U16; 8]);
pub(super) const IP_ADDRESS: Ty = Ty::Variant(&[Some(IPV4_ADDRESS), Some(IPV6_ADDRESS)]);
/// `ipv4-socket-address`: `port`, `address`.
const IPV4_SOCKET_ADDRESS: Ty = Ty::Tuple(&[Ty::U16, IPV4_ADDRESS]);
/// `ipv6-socket-address`: `port`, `flow-info`, `address`, `scope-id`.
const IPV6_SOCKET_ADDRESS: Ty = Ty::Tuple(&[Ty::U16, Ty::U32, IPV6_ADDRESS, Ty::U32]);
pub(super) const IP_SOCKET_ADDRESS: Ty =
    Ty::Variant(&[Some(IPV4_SOCKET_ADDRESS), Some(IPV6_SOCKET_ADDRESS)]);
/// `shutdown-type`: `receive`, `send`, `both`.
const SHUTDOWN_TYPE: Ty = Ty::Variant(&[None; 3]);
const INCOMING_DATAGRAM: Ty = Ty::Tuple(&[Ty::List(&Ty::U8), IP_SOCKET_ADDRESS]);
const OUTGOING_DATAGRAM: Ty = Ty::Tuple(&[Ty::List(&Ty::U8), option_ty!(IP_SOCKET_ADDRESS)]);

const UNIT_RESULT: Ty = result_ty!(_, ERROR_CODE);
const ADDRESS_RESULT: Ty = result_ty!(IP_SOCKET_ADDRESS, ERROR_CODE);
const U64_RESULT: Ty = result_ty!(Ty::U64, ERROR_CODE);

fn denied() -> Value {
    Value::err(Value::case(ACCESS_DENIED, None))
}

/// A method on a resource of type `K`, which never exists: checking the
/// handle always fails, so the call traps.
pub(super) fn method<K: TableEntry<Resource> + Uninhabited>(
    state: &mut GuestState,
    mut args: Args,
) -> Result<Value, Error> {
    let resource = state.host.resources.get::<K>(args.handle()?)?;
    K::absurd(resource)
}

/// A resource type with no values.
pub(super) trait Uninhabited {
    fn absurd(&mut self) -> !;
}

macro_rules! uninhabited {
    ($($kind:ty),+) => {
        $(impl Uninhabited for $kind {
            fn absurd(&mut self) -> ! {
                match *self {}
            }
        })+
    };
}
uninhabited!(
    TcpSocket,
    UdpSocket,
    IncomingDatagramStream,
    OutgoingDatagramStream,
    ResolveAddressStream
);

fn instance_network(state: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::Handle(state.host.resources.push(Network)?))
}

pub const INSTANCE_NETWORK: &[HostFn<GuestState>] =
    &[host_fn!("instance-network", [] -> Ty::Handle, instance_network)];

/// `network-error-code` (unstable `network-error-code`): stream errors
/// never come from a socket.
fn network_error_code(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    state.host.resources.get::<IoError>(args.handle()?)?;
    Ok(Value::none())
}

pub const NETWORK: &[HostFn<GuestState>] = &[
    drop_fn!("network", Network),
    host_fn!("network-error-code", [Ty::Handle] -> option_ty!(ERROR_CODE), network_error_code),
];

fn create_socket(_: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    args.variant()?;
    Ok(denied())
}

pub const TCP_CREATE_SOCKET: &[HostFn<GuestState>] = &[host_fn!(
    "create-tcp-socket",
    [IP_ADDRESS_FAMILY] -> result_ty!(Ty::Handle, ERROR_CODE),
    create_socket
)];

pub const UDP_CREATE_SOCKET: &[HostFn<GuestState>] = &[host_fn!(
    "create-udp-socket",
    [IP_ADDRESS_FAMILY] -> result_ty!(Ty::Handle, ERROR_CODE),
    create_socket
)];

const TCP: fn(&mut GuestState, Args) -> Result<Value, Error> = method::<TcpSocket>;

pub const TCP_FUNCTIONS: &[HostFn<GuestState>] = &[
    host_fn!("[method]tcp-socket.start-bind", [Ty::Handle, Ty::Handle, IP_SOCKET_ADDRESS] -> UNIT_RESULT, TCP),
    host_fn!("[method]tcp-socket.finish-bind", [Ty::Handle] -> UNIT_RESULT, TCP),
    host_fn!("[method]tcp-socket.start-connect", [Ty::Handle, Ty::Handle, IP_SOCKET_ADDRESS] -> UNIT_RESULT, TCP),
    host_fn!("[method]tcp-socket.finish-connect", [Ty::Handle] -> result_ty!(Ty::Tuple(&[Ty::Handle, Ty::Handle]), ERROR_CODE), TCP),
    host_fn!("[method]tcp-socket.start-listen", [Ty::Handle] -> UNIT_RESULT, TCP),
    host_fn!("[method]tcp-socket.finish-listen", [Ty::Handle] -> UNIT_RESULT, TCP),
    host_fn!("[method]tcp-socket.accept", [Ty::Handle] -> result_ty!(Ty::Tuple(&[Ty::Handle, Ty::Handle, Ty::Handle]), ERROR_CODE), TCP),
    host_fn!("[method]tcp-socket.local-address", [Ty::Handle] -> ADDRESS_RESULT, TCP),
    host_fn!("[method]tcp-socket.remote-address", [Ty::Handle] -> ADDRESS_RESULT, TCP),
    host_fn!("[method]tcp-socket.is-listening", [Ty::Handle] -> Ty::Bool, TCP),
    host_fn!("[method]tcp-socket.address-family", [Ty::Handle] -> IP_ADDRESS_FAMILY, TCP),
    host_fn!("[method]tcp-socket.set-listen-backlog-size", [Ty::Handle, Ty::U64] -> UNIT_RESULT, TCP),
    host_fn!("[method]tcp-socket.keep-alive-enabled", [Ty::Handle] -> result_ty!(Ty::Bool, ERROR_CODE), TCP),
    host_fn!("[method]tcp-socket.set-keep-alive-enabled", [Ty::Handle, Ty::Bool] -> UNIT_RESULT, TCP),
    host_fn!("[method]tcp-socket.keep-alive-idle-time", [Ty::Handle] -> U64_RESULT, TCP),
    host_fn!("[method]tcp-socket.set-keep-alive-idle-time", [Ty::Handle, Ty::U64] -> UNIT_RESULT, TCP),
    host_fn!("[method]tcp-socket.keep-alive-interval", [Ty::Handle] -> U64_RESULT, TCP),
    host_fn!("[method]tcp-socket.set-keep-alive-interval", [Ty::Handle, Ty::U64] -> UNIT_RESULT, TCP),
    host_fn!("[method]tcp-socket.keep-alive-count", [Ty::Handle] -> result_ty!(Ty::U32, ERROR_CODE), TCP),
    host_fn!("[method]tcp-socket.set-keep-alive-count", [Ty::Handle, Ty::U32] -> UNIT_RESULT, TCP),
    host_fn!("[method]tcp-socket.hop-limit", [Ty::Handle] -> result_ty!(Ty::U8, ERROR_CODE), TCP),
    host_fn!("[method]tcp-socket.set-hop-limit", [Ty::Handle, Ty::U8] -> UNIT_RESULT, TCP),
    host_fn!("[method]tcp-socket.receive-buffer-size", [Ty::Handle] -> U64_RESULT, TCP),
    host_fn!("[method]tcp-socket.set-receive-buffer-size", [Ty::Handle, Ty::U64] -> UNIT_RESULT, TCP),
    host_fn!("[method]tcp-socket.send-buffer-size", [Ty::Handle] -> U64_RESULT, TCP),
    host_fn!("[method]tcp-socket.set-send-buffer-size", [Ty::Handle, Ty::U64] -> UNIT_RESULT, TCP),
    host_fn!("[method]tcp-socket.subscribe", [Ty::Handle] -> Ty::Handle, TCP),
    host_fn!("[method]tcp-socket.shutdown", [Ty::Handle, SHUTDOWN_TYPE] -> UNIT_RESULT, TCP),
    drop_fn!("tcp-socket", TcpSocket),
];

const UDP: fn(&mut GuestState, Args) -> Result<Value, Error> = method::<UdpSocket>;
const INCOMING: fn(&mut GuestState, Args) -> Result<Value, Error> =
    method::<IncomingDatagramStream>;
const OUTGOING: fn(&mut GuestState, Args) -> Result<Value, Error> =
    method::<OutgoingDatagramStream>;

pub const UDP_FUNCTIONS: &[HostFn<GuestState>] = &[
    host_fn!("[method]udp-socket.start-bind", [Ty::Handle, Ty::Handle, IP_SOCKET_ADDRESS] -> UNIT_RESULT, UDP),
    host_fn!("[method]udp-socket.finish-bind", [Ty::Handle] -> UNIT_RESULT, UDP),
    host_fn!("[method]udp-socket.stream", [Ty::Handle, option_ty!(IP_SOCKET_ADDRESS)] -> result_ty!(Ty::Tuple(&[Ty::Handle, Ty::Handle]), ERROR_CODE), UDP),
    host_fn!("[method]udp-socket.local-address", [Ty::Handle] -> ADDRESS_RESULT, UDP),
    host_fn!("[method]udp-socket.remote-address", [Ty::Handle] -> ADDRESS_RESULT, UDP),
    host_fn!("[method]udp-socket.address-family", [Ty::Handle] -> IP_ADDRESS_FAMILY, UDP),
    host_fn!("[method]udp-socket.unicast-hop-limit", [Ty::Handle] -> result_ty!(Ty::U8, ERROR_CODE), UDP),
    host_fn!("[method]udp-socket.set-unicast-hop-limit", [Ty::Handle, Ty::U8] -> UNIT_RESULT, UDP),
    host_fn!("[method]udp-socket.receive-buffer-size", [Ty::Handle] -> U64_RESULT, UDP),
    host_fn!("[method]udp-socket.set-receive-buffer-size", [Ty::Handle, Ty::U64] -> UNIT_RESULT, UDP),
    host_fn!("[method]udp-socket.send-buffer-size", [Ty::Handle] -> U64_RESULT, UDP),
    host_fn!("[method]udp-socket.set-send-buffer-size", [Ty::Handle, Ty::U64] -> UNIT_RESULT, UDP),
    host_fn!("[method]udp-socket.subscribe", [Ty::Handle] -> Ty::Handle, UDP),
    host_fn!("[method]incoming-datagram-stream.receive", [Ty::Handle, Ty::U64] -> result_ty!(Ty::List(&INCOMING_DATAGRAM), ERROR_CODE), INCOMING),
    host_fn!("[method]incoming-datagram-stream.subscribe", [Ty::Handle] -> Ty::Handle, INCOMING),
    host_fn!("[method]outgoing-datagram-stream.check-send", [Ty::Handle] -> U64_RESULT, OUTGOING),
    host_fn!("[method]outgoing-datagram-stream.send", [Ty::Handle, Ty::List(&OUTGOING_DATAGRAM)] -> U64_RESULT, OUTGOING),
    host_fn!("[method]outgoing-datagram-stream.subscribe", [Ty::Handle] -> Ty::Handle, OUTGOING),
    drop_fn!("udp-socket", UdpSocket),
    drop_fn!("incoming-datagram-stream", IncomingDatagramStream),
    drop_fn!("outgoing-datagram-stream", OutgoingDatagramStream),
];

/// `resolve-addresses`: no name is looked up for a guest.
fn resolve_addresses(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    state.host.resources.get::<Network>(args.handle()?)?;
    Ok(denied())
}

const LOOKUP: fn(&mut GuestState, Args) -> Result<Value, Error> = method::<ResolveAddressStream>;

pub const IP_NAME_LOOKUP: &[HostFn<GuestState>] = &[
    host_fn!("resolve-addresses", [Ty::Handle, Ty::String] -> result_ty!(Ty::Handle, ERROR_CODE), resolve_addresses),
    host_fn!("[method]resolve-address-stream.resolve-next-address", [Ty::Handle] -> result_ty!(option_ty!(IP_ADDRESS), ERROR_CODE), LOOKUP),
    host_fn!("[method]resolve-address-stream.subscribe", [Ty::Handle] -> Ty::Handle, LOOKUP),
    drop_fn!("resolve-address-stream", ResolveAddressStream),
];
