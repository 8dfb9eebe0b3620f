//! `fermyon:spin/key-value@2.0.0` on sled. A `set` or `delete` returns to the
//! guest only after it is flushed to disk.

use wasmi::Error;

use super::{GuestState, drop_fn, host_fn};
use crate::canon::{Args, HostFn, Ty, Value};
use crate::kv_store::Lookup;
use crate::{option_ty, result_ty};

const ERROR: Ty = Ty::Variant(&[
    None,             // store-table-full
    None,             // no-such-store
    None,             // access-denied
    Some(Ty::String), // other
]);
const BYTES: Ty = Ty::List(&Ty::U8);

/// An open store: the label (for logs) and the sled database.
pub struct Store {
    label: String,
    db: sled::Db,
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
    let listed = caps.key_value_stores.contains(&label);
    let db = match caps.services.kv.lookup(&label) {
        Lookup::Unknown => return Ok(Value::err(Value::case(1, None))),
        Lookup::Open(db) if listed => db,
        Lookup::Open(_) | Lookup::Unused => {
            tracing::warn!(target: "flint::kv", component = %caps.component, store = %label, "key-value store access denied: not in key_value_stores");
            return Ok(Value::err(Value::case(2, None)));
        }
    };
    let store = Store {
        label,
        db: db.clone(),
    };
    Ok(Value::ok(Value::Handle(state.host.resources.push(store)?)))
}

fn get(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = state.host.resources.get::<Store>(args.handle()?)?;
    let key = args.string()?;
    Ok(match store.db.get(key.as_bytes()) {
        Ok(value) => Value::ok(Value::option(value.map(|v| Value::Bytes(v.to_vec())))),
        Err(e) => other(store, e),
    })
}

/// Makes a change durable before the guest hears it succeeded.
fn durable(store: &Store, change: sled::Result<()>) -> Value {
    match change.and_then(|()| store.db.flush().map(drop)) {
        Ok(()) => Value::ok_unit(),
        Err(e) => other(store, e),
    }
}

fn set(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = state.host.resources.get::<Store>(args.handle()?)?;
    let key = args.string()?;
    let value = args.bytes()?;
    let change = store.db.insert(key.as_bytes(), value).map(drop);
    Ok(durable(store, change))
}

fn delete(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = state.host.resources.get::<Store>(args.handle()?)?;
    let key = args.string()?;
    let change = store.db.remove(key.as_bytes()).map(drop);
    Ok(durable(store, change))
}

fn exists(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = state.host.resources.get::<Store>(args.handle()?)?;
    let key = args.string()?;
    Ok(match store.db.contains_key(key.as_bytes()) {
        Ok(found) => Value::ok(Value::Bool(found)),
        Err(e) => other(store, e),
    })
}

fn get_keys(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let budget = state.host.memory_limit;
    let store = state.host.resources.get::<Store>(args.handle()?)?;
    let mut keys = Vec::new();
    let mut bytes = 0usize;
    for key in store.db.iter().keys() {
        let key = match key {
            Ok(key) => key,
            Err(e) => return Ok(other(store, e)),
        };
        // The list must fit in the guest's memory; stop early rather than
        // building a host-side copy the guest could never receive.
        bytes += key.len() + 8;
        if bytes > budget {
            return Ok(other(
                store,
                "the keys do not fit in the guest's memory limit",
            ));
        }
        keys.push(Value::string(String::from_utf8_lossy(&key)));
    }
    Ok(Value::ok(Value::List(keys)))
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
