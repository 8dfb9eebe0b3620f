//! `fermyon:spin/variables@2.0.0` and `spin:variables/variables@3.0.0`: the
//! component's own variables, resolved at startup. Values are never logged:
//! some are secrets. `wasi:config/store` ([`super::wasi_config`]) reads them
//! through the same [`lookup`].

use wasmi::Error;

use super::{GuestState, host_fn};
use crate::capabilities::Capabilities;
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::result_ty;

const ERROR: Ty = Ty::Variant(&[
    Some(Ty::String), // invalid-name
    Some(Ty::String), // undefined
    Some(Ty::String), // provider
    Some(Ty::String), // other
]);

/// Why a variable has no value.
pub(super) enum Missing {
    /// Not a variable name at all (Spin's `spin_expressions::Key` rules).
    InvalidName,
    /// The component defines no such variable.
    Undefined,
}

/// The component's value of `name`.
pub(super) fn lookup<'a>(caps: &'a Capabilities, name: &str) -> Result<&'a str, Missing> {
    if !crate::variables::is_valid_name(name) {
        return Err(Missing::InvalidName);
    }
    caps.variables
        .get(name)
        .map(String::as_str)
        .ok_or(Missing::Undefined)
}

fn get(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let name = args.string()?;
    let caps = &state.host.caps;
    Ok(match lookup(caps, &name) {
        Ok(value) => Value::ok(Value::string(value)),
        Err(Missing::InvalidName) => Value::err(Value::case(0, Some(Value::string(name)))),
        Err(Missing::Undefined) => Value::err(Value::case(
            1,
            Some(Value::string(format!(
                "no variable `{name}` in component `{}`",
                caps.component
            ))),
        )),
    })
}

/// `fermyon:spin/variables@2.0.0`.
pub const FUNCTIONS: &[HostFn<GuestState>] =
    &[host_fn!("get", [Ty::String] -> result_ty!(Ty::String, ERROR), get)];

/// `spin:variables/variables@3.0.0` (Spin's `wit/deps/spin-variables@3.0.0`):
/// the same `get` and `error`, declared `async`; this is its synchronous
/// lowering, whose core signature is that of 2.0.0's.
pub const FUNCTIONS_V3: &[HostFn<GuestState>] = FUNCTIONS;
