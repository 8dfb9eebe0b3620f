//! `wasi:sockets@0.3.x`, linked and denied as 0.2's is (a guest reaches
//! the network only through `wasi:http` and the Spin interfaces, where
//! `allowed_outbound_hosts` applies): creating a socket or resolving a
//! name is `access-denied`, so no socket exists and a method called on one
//! is a forged handle, a trap.
//!
//! `0.3.0` and `0.3.0-rc-2026-03-15` share [`TYPES`]; the 2026-01-06
//! candidate's `error-code`s are enums with `unknown` first (so
//! `access-denied` is case 1) and its `send` an `async func` returning the
//! result: [`types_table`] writes the table once for both.

use wasmi::Error;

use super::wasi_sockets::{IP_ADDRESS, IP_ADDRESS_FAMILY, IP_SOCKET_ADDRESS, method};
use super::wasi_sockets::{TcpSocket, UdpSocket};
use super::{GuestState, drop_fn, host_fn};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::{option_ty, result_ty};

/// 0.3.0's `types.error-code`: 14 named cases (`access-denied` first),
/// then `other(option<string>)`.
const ERROR_CODE: Ty = Ty::Variant(&[
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    Some(option_ty!(Ty::String)),
]);
/// The 2026-01-06 candidate's: `unknown`, then 13 (no `connection-broken`).
const ERROR_CODE_RC: Ty = Ty::Variant(&[None; 14]);

/// `ip-name-lookup.error-code`: five named cases and `other`, or (the
/// candidate) `unknown` and five.
const LOOKUP_ERROR_CODE: Ty =
    Ty::Variant(&[None, None, None, None, None, Some(option_ty!(Ty::String))]);
const LOOKUP_ERROR_CODE_RC: Ty = Ty::Variant(&[None; 6]);

/// `err(access-denied)`: case 0, or 1 after the candidate's `unknown`.
fn denied<const RC: bool>() -> Value {
    Value::err(Value::case(u32::from(RC), None))
}

fn create<const RC: bool>(_: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    args.variant()?;
    Ok(denied::<RC>())
}

fn resolve_addresses<const RC: bool>(_: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    args.string()?;
    Ok(denied::<RC>())
}

const TCP: fn(&mut GuestState, Args) -> Result<Value, Error> = method::<TcpSocket>;
const UDP: fn(&mut GuestState, Args) -> Result<Value, Error> = method::<UdpSocket>;

/// `tcp-socket` and `udp-socket` with the error type `$error`; `$send` is
/// what `tcp-socket.send` returns.
macro_rules! types_table {
    ($rc:literal, $error:expr, $send:expr) => {{
        const E: Ty = $error;
        const UNIT: Ty = result_ty!(_, E);
        const ADDRESS: Ty = result_ty!(IP_SOCKET_ADDRESS, E);
        const U64: Ty = result_ty!(Ty::U64, E);
        &[
            host_fn!("[static]tcp-socket.create", [IP_ADDRESS_FAMILY] -> result_ty!(Ty::Handle, E), create::<$rc>),
            host_fn!("[method]tcp-socket.bind", [Ty::Handle, IP_SOCKET_ADDRESS] -> UNIT, TCP),
            host_fn!("[method]tcp-socket.connect", [Ty::Handle, IP_SOCKET_ADDRESS] -> UNIT, TCP),
            host_fn!("[method]tcp-socket.listen", [Ty::Handle] -> result_ty!(Ty::Handle, E), TCP),
            host_fn!("[method]tcp-socket.send", [Ty::Handle, Ty::Handle] -> $send, TCP),
            host_fn!("[method]tcp-socket.receive", [Ty::Handle] -> Ty::Tuple(&[Ty::Handle, Ty::Handle]), TCP),
            host_fn!("[method]tcp-socket.get-local-address", [Ty::Handle] -> ADDRESS, TCP),
            host_fn!("[method]tcp-socket.get-remote-address", [Ty::Handle] -> ADDRESS, TCP),
            host_fn!("[method]tcp-socket.get-is-listening", [Ty::Handle] -> Ty::Bool, TCP),
            host_fn!("[method]tcp-socket.get-address-family", [Ty::Handle] -> IP_ADDRESS_FAMILY, TCP),
            host_fn!("[method]tcp-socket.set-listen-backlog-size", [Ty::Handle, Ty::U64] -> UNIT, TCP),
            host_fn!("[method]tcp-socket.get-keep-alive-enabled", [Ty::Handle] -> result_ty!(Ty::Bool, E), TCP),
            host_fn!("[method]tcp-socket.set-keep-alive-enabled", [Ty::Handle, Ty::Bool] -> UNIT, TCP),
            host_fn!("[method]tcp-socket.get-keep-alive-idle-time", [Ty::Handle] -> U64, TCP),
            host_fn!("[method]tcp-socket.set-keep-alive-idle-time", [Ty::Handle, Ty::U64] -> UNIT, TCP),
            host_fn!("[method]tcp-socket.get-keep-alive-interval", [Ty::Handle] -> U64, TCP),
            host_fn!("[method]tcp-socket.set-keep-alive-interval", [Ty::Handle, Ty::U64] -> UNIT, TCP),
            host_fn!("[method]tcp-socket.get-keep-alive-count", [Ty::Handle] -> result_ty!(Ty::U32, E), TCP),
            host_fn!("[method]tcp-socket.set-keep-alive-count", [Ty::Handle, Ty::U32] -> UNIT, TCP),
            host_fn!("[method]tcp-socket.get-hop-limit", [Ty::Handle] -> result_ty!(Ty::U8, E), TCP),
            host_fn!("[method]tcp-socket.set-hop-limit", [Ty::Handle, Ty::U8] -> UNIT, TCP),
            host_fn!("[method]tcp-socket.get-receive-buffer-size", [Ty::Handle] -> U64, TCP),
            host_fn!("[method]tcp-socket.set-receive-buffer-size", [Ty::Handle, Ty::U64] -> UNIT, TCP),
            host_fn!("[method]tcp-socket.get-send-buffer-size", [Ty::Handle] -> U64, TCP),
            host_fn!("[method]tcp-socket.set-send-buffer-size", [Ty::Handle, Ty::U64] -> UNIT, TCP),
            drop_fn!("tcp-socket", TcpSocket),
            host_fn!("[static]udp-socket.create", [IP_ADDRESS_FAMILY] -> result_ty!(Ty::Handle, E), create::<$rc>),
            host_fn!("[method]udp-socket.bind", [Ty::Handle, IP_SOCKET_ADDRESS] -> UNIT, UDP),
            host_fn!("[method]udp-socket.connect", [Ty::Handle, IP_SOCKET_ADDRESS] -> UNIT, UDP),
            host_fn!("[method]udp-socket.disconnect", [Ty::Handle] -> UNIT, UDP),
            host_fn!("[method]udp-socket.send", [Ty::Handle, Ty::List(&Ty::U8), option_ty!(IP_SOCKET_ADDRESS)] -> UNIT, UDP),
            host_fn!("[method]udp-socket.receive", [Ty::Handle] -> result_ty!(Ty::Tuple(&[Ty::List(&Ty::U8), IP_SOCKET_ADDRESS]), E), UDP),
            host_fn!("[method]udp-socket.get-local-address", [Ty::Handle] -> ADDRESS, UDP),
            host_fn!("[method]udp-socket.get-remote-address", [Ty::Handle] -> ADDRESS, UDP),
            host_fn!("[method]udp-socket.get-address-family", [Ty::Handle] -> IP_ADDRESS_FAMILY, UDP),
            host_fn!("[method]udp-socket.get-unicast-hop-limit", [Ty::Handle] -> result_ty!(Ty::U8, E), UDP),
            host_fn!("[method]udp-socket.set-unicast-hop-limit", [Ty::Handle, Ty::U8] -> UNIT, UDP),
            host_fn!("[method]udp-socket.get-receive-buffer-size", [Ty::Handle] -> U64, UDP),
            host_fn!("[method]udp-socket.set-receive-buffer-size", [Ty::Handle, Ty::U64] -> UNIT, UDP),
            host_fn!("[method]udp-socket.get-send-buffer-size", [Ty::Handle] -> U64, UDP),
            host_fn!("[method]udp-socket.set-send-buffer-size", [Ty::Handle, Ty::U64] -> UNIT, UDP),
            drop_fn!("udp-socket", UdpSocket),
        ]
    }};
}

/// `tcp-socket.send` returns a future of its result.
pub const TYPES: &[HostFn<GuestState>] = types_table!(false, ERROR_CODE, Ty::Handle);
pub const TYPES_RC_2026_01_06: &[HostFn<GuestState>] =
    types_table!(true, ERROR_CODE_RC, result_ty!(_, ERROR_CODE_RC));

pub const IP_NAME_LOOKUP: &[HostFn<GuestState>] = &[host_fn!(
    "resolve-addresses",
    [Ty::String] -> result_ty!(Ty::List(&IP_ADDRESS), LOOKUP_ERROR_CODE),
    resolve_addresses::<false>
)];
pub const IP_NAME_LOOKUP_RC_2026_01_06: &[HostFn<GuestState>] = &[host_fn!(
    "resolve-addresses",
    [Ty::String] -> result_ty!(Ty::List(&IP_ADDRESS), LOOKUP_ERROR_CODE_RC),
    resolve_addresses::<true>
)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_is_the_case_each_layout_names() {
        assert_eq!(denied::<false>(), Value::err(Value::case(0, None)));
        assert_eq!(denied::<true>(), Value::err(Value::case(1, None)));
    }

    #[test]
    fn layouts_match_the_wit() {
        // A discriminant byte, then option<string> (4-aligned, 12 bytes).
        assert_eq!(ERROR_CODE.size(), 16);
        assert_eq!(ERROR_CODE_RC.size(), 1);
        assert_eq!(LOOKUP_ERROR_CODE.size(), 16);
        // ipv6-socket-address: port, flow-info, 8 × u16, scope-id.
        assert_eq!(IP_SOCKET_ADDRESS.size(), 32);
        assert_eq!(TYPES.len(), TYPES_RC_2026_01_06.len());
        for (a, b) in TYPES.iter().zip(TYPES_RC_2026_01_06) {
            assert_eq!(a.name, b.name);
        }
    }
}
