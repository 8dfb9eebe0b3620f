//! `wasi:config/store@0.2.0-draft-2024-09-27` over the component's variables,
//! as Spin's `factor-variables` serves it: `get` is the Spin variables `get`
//! with an undefined or invalid name answered `ok(none)` (the guidance of
//! WebAssembly/wasi-runtime-config#19), and `get-all` lists every variable
//! of the component. Flint resolves variables at startup, so the `upstream`
//! and `io` errors of a live provider never occur. Values are never logged.

use wasmi::Error;

use super::variables::lookup;
use super::{GuestState, host_fn};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::{option_ty, result_ty};

const ERROR: Ty = Ty::Variant(&[
    Some(Ty::String), // upstream
    Some(Ty::String), // io
]);

fn get(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let key = args.string()?;
    let value = lookup(&state.host.caps, &key).ok().map(Value::string);
    Ok(Value::ok(Value::option(value)))
}

fn get_all(state: &mut GuestState, _: Args) -> Result<Value, Error> {
    let all = state.host.caps.variables.iter().map(|(name, value)| {
        Value::Tuple(vec![
            Value::string(name.clone()),
            Value::string(value.clone()),
        ])
    });
    Ok(Value::ok(Value::List(all.collect())))
}

/// `wasi:config/store@0.2.0-draft-2024-09-27`.
pub const STORE: &[HostFn<GuestState>] = &[
    host_fn!("get", [Ty::String] -> result_ty!(option_ty!(Ty::String), ERROR), get),
    host_fn!("get-all", [] -> result_ty!(Ty::List(&Ty::Tuple(&[Ty::String, Ty::String])), ERROR), get_all),
];
