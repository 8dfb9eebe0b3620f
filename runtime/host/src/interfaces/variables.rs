//! `fermyon:spin/variables@2.0.0`: the component's own variables, resolved at
//! startup. Values are never logged: some are secrets.

use wasmi::Error;

use super::{GuestState, host_fn};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::result_ty;

const ERROR: Ty = Ty::Variant(&[
    Some(Ty::String), // invalid-name
    Some(Ty::String), // undefined
    Some(Ty::String), // provider
    Some(Ty::String), // other
]);

fn get(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let name = args.string()?;
    if !crate::variables::is_valid_name(&name) {
        return Ok(Value::err(Value::case(0, Some(Value::string(name)))));
    }
    Ok(match state.host.caps.variables.get(&name) {
        Some(value) => Value::ok(Value::string(value.clone())),
        None => Value::err(Value::case(
            1,
            Some(Value::string(format!(
                "no variable `{name}` in component `{}`",
                state.host.caps.component
            ))),
        )),
    })
}

pub const FUNCTIONS: &[HostFn<GuestState>] =
    &[host_fn!("get", [Ty::String] -> result_ty!(Ty::String, ERROR), get)];
