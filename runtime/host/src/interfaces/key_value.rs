//! `fermyon:spin/key-value@2.0.0` over the app's [`KvBackend`](crate::kv_store::KvBackend)s (sled on
//! Linux). A `set` or `delete` returns to the guest only once it is durable.

use wasmi::Error;

use super::{GuestState, drop_fn, host_fn};
use crate::kv_store::{KvOp, KvOutcome, Lookup, SharedStore};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::{option_ty, result_ty};

const ERROR: Ty = Ty::Variant(&[
    None,             // store-table-full
    None,             // no-such-store
    None,             // access-denied
    Some(Ty::String), // other
]);
const BYTES: Ty = Ty::List(&Ty::U8);

/// An open store: the label (for errors and metrics) and its backend.
pub struct Store {
    label: String,
    backend: SharedStore,
    services: std::sync::Arc<crate::capabilities::Services>,
}

impl Store {
    /// Counts `op`, whose guest-facing result is `value` (`err` is case 1).
    fn counted(&self, op: KvOp, value: Value) -> Value {
        let outcome = match &value {
            Value::Variant(0, _) => KvOutcome::Ok,
            _ => KvOutcome::Error,
        };
        self.services.kv.counters(&self.label).record(op, outcome);
        value
    }
}

fn other(store: &Store, e: impl std::fmt::Display) -> Value {
    Value::err(Value::case(
        3,
        Some(Value::string(format!("store `{}`: {e}", store.label))),
    ))
}

fn open(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let label = args.string()?;
    let caps = &state.host.caps;
    // Spin's order: a label the component does not list is `access-denied`,
    // whether or not the app defines it; `no-such-store` is for a listed
    // label that no store backs.
    let counters = caps.services.kv.counters(&label);
    if !caps.key_value_stores.contains(&label) {
        tracing::warn!(target: "flint::kv", component = %caps.component, store = %label, "key-value store access denied: not in key_value_stores");
        counters.record(KvOp::Open, KvOutcome::Denied);
        return Ok(Value::err(Value::case(2, None)));
    }
    let Lookup::Open(backend) = caps.services.kv.lookup(&label) else {
        counters.record(KvOp::Open, KvOutcome::Error);
        return Ok(Value::err(Value::case(1, None)));
    };
    counters.record(KvOp::Open, KvOutcome::Ok);
    let store = Store {
        label,
        backend: backend.clone(),
        services: caps.services.clone(),
    };
    Ok(Value::ok(Value::Handle(state.host.resources.push(store)?)))
}

fn get(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = state.host.resources.get::<Store>(args.handle()?)?;
    let key = args.string()?;
    let value = match store.backend.get(&key) {
        Ok(value) => Value::ok(Value::option(value.map(Value::Bytes))),
        Err(e) => other(store, e),
    };
    Ok(store.counted(KvOp::Get, value))
}

/// The guest's answer to a change the backend has made durable (or not).
fn durable(store: &Store, change: Result<(), crate::kv_store::KvError>) -> Value {
    match change {
        Ok(()) => Value::ok_unit(),
        Err(e) => other(store, e),
    }
}

fn set(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = state.host.resources.get::<Store>(args.handle()?)?;
    let key = args.string()?;
    let value = args.bytes()?;
    let change = store.backend.set(&key, &value);
    Ok(store.counted(KvOp::Set, durable(store, change)))
}

fn delete(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = state.host.resources.get::<Store>(args.handle()?)?;
    let key = args.string()?;
    let change = store.backend.delete(&key);
    Ok(store.counted(KvOp::Delete, durable(store, change)))
}

fn exists(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = state.host.resources.get::<Store>(args.handle()?)?;
    let key = args.string()?;
    let value = match store.backend.exists(&key) {
        Ok(found) => Value::ok(Value::Bool(found)),
        Err(e) => other(store, e),
    };
    Ok(store.counted(KvOp::Exists, value))
}

fn get_keys(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let budget = state.host.memory_limit;
    let store = state.host.resources.get::<Store>(args.handle()?)?;
    let mut keys = Vec::new();
    let mut bytes = 0usize;
    let listed = store.backend.keys(&mut |key| {
        // The list must fit in the guest's memory; stop early rather than
        // building a host-side copy the guest could never receive.
        bytes += key.len() + 8;
        if bytes > budget {
            return false;
        }
        keys.push(Value::string(String::from_utf8_lossy(key)));
        true
    });
    let value = match listed {
        Err(e) => other(store, e),
        Ok(()) if bytes > budget => other(store, "the keys do not fit in the guest's memory limit"),
        Ok(()) => Value::ok(Value::List(keys)),
    };
    Ok(store.counted(KvOp::GetKeys, value))
}

pub const FUNCTIONS: &[HostFn<GuestState>] = &[
    host_fn!("[static]store.open", [Ty::String] -> result_ty!(Ty::Handle, ERROR), open),
    host_fn!("[method]store.get", [Ty::Handle, Ty::String] -> result_ty!(option_ty!(BYTES), ERROR), get),
    host_fn!("[method]store.set", [Ty::Handle, Ty::String, BYTES] -> result_ty!(_, ERROR), set),
    host_fn!("[method]store.delete", [Ty::Handle, Ty::String] -> result_ty!(_, ERROR), delete),
    host_fn!("[method]store.exists", [Ty::Handle, Ty::String] -> result_ty!(Ty::Bool, ERROR), exists),
    host_fn!("[method]store.get-keys", [Ty::Handle] -> result_ty!(Ty::List(&Ty::String), ERROR), get_keys),
    drop_fn!("store", Store),
];
