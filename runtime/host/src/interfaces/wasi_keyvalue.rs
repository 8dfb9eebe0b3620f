//! `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2` as Spin's
//! `factor-key-value` serves them: `open(identifier)` opens one of the
//! component's `key_value_stores` labels with the same checks, order and
//! counters as `fermyon:spin/key-value` (the `get`, `set`, `delete` and
//! `exists` are [`super::key_value`]'s, with this interface's `error`), over
//! the same [`KvBackend`](crate::kv_store::KvBackend)s. Every change returns
//! only once it is durable.

use wasmi::Error;

use super::key_value::{self as kv, Api, BYTES, Failure, Store, answer, durable};
use super::{GuestState, drop_fn, host_fn};
use crate::kv_store::KvOp;
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::{option_ty, result_ty};

const ERROR: Ty = Ty::Variant(&[
    None,             // no-such-store
    None,             // access-denied
    Some(Ty::String), // other
]);
const KEY_RESPONSE: Ty = Ty::Tuple(&[
    Ty::List(&Ty::String),  // keys
    option_ty!(Ty::String), // cursor
]);
const CAS_ERROR: Ty = Ty::Variant(&[
    Some(ERROR),      // store-error
    Some(Ty::Handle), // cas-failed(cas)
]);

/// An open `bucket`: a store as `fermyon:spin/key-value` opens it, under
/// its own resource type.
pub struct Bucket(Store);

impl From<Store> for Bucket {
    fn from(store: Store) -> Self {
        Self(store)
    }
}

impl AsRef<Store> for Bucket {
    fn as_ref(&self) -> &Store {
        &self.0
    }
}

/// `wasi:keyvalue`: `error` is `no-such-store`, `access-denied`, `other`.
struct Wasi;

impl Api for Wasi {
    type Handle = Bucket;
    fn err(failure: Failure) -> Value {
        Value::err(wasi_error(failure))
    }
}

fn wasi_error(failure: Failure) -> Value {
    match failure {
        Failure::NoSuchStore => Value::case(0, None),
        Failure::AccessDenied => Value::case(1, None),
        Failure::Other(message) => Value::case(2, Some(Value::string(message))),
    }
}

/// What one `list-keys` answer may hold at most (bounded by the guest's
/// memory limit too): the interface asks for pages a small device can carry.
const LIST_PAGE_BYTES: usize = 64 * 1024;

/// `list-keys`: a page of keys in order, with the last one as the cursor of
/// the next page. Spin's stores return every key at once and refuse any
/// cursor (`list_keys: cursor not supported`); a guest that never passes a
/// cursor sees the same unless the keys fill more than a page.
fn list_keys(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let budget = LIST_PAGE_BYTES.min(state.host.memory_limit);
    let store = kv::store::<Wasi>(state, &mut args)?;
    let cursor = args.option()?.map(Value::into_string).transpose()?;
    let value = answer::<Wasi, _>(
        store,
        kv::list_keys(store, cursor.as_deref(), budget, usize::MAX),
        |page| {
            let next = page.keys.last().filter(|_| page.more);
            let next = next.map(|key| Value::string(key.clone()));
            let keys = page.keys.into_iter().map(Value::String).collect();
            Value::ok(Value::Tuple(vec![Value::List(keys), Value::option(next)]))
        },
    );
    Ok(store.counted(KvOp::GetKeys, value))
}

/// `wasi:keyvalue/store@0.2.0-draft2`.
pub const STORE: &[HostFn<GuestState>] = &[
    host_fn!("open", [Ty::String] -> result_ty!(Ty::Handle, ERROR), kv::open::<Wasi>),
    host_fn!("[method]bucket.get", [Ty::Handle, Ty::String] -> result_ty!(option_ty!(BYTES), ERROR), kv::get::<Wasi>),
    host_fn!("[method]bucket.set", [Ty::Handle, Ty::String, BYTES] -> result_ty!(_, ERROR), kv::set::<Wasi>),
    host_fn!("[method]bucket.delete", [Ty::Handle, Ty::String] -> result_ty!(_, ERROR), kv::delete::<Wasi>),
    host_fn!("[method]bucket.exists", [Ty::Handle, Ty::String] -> result_ty!(Ty::Bool, ERROR), kv::exists::<Wasi>),
    host_fn!("[method]bucket.list-keys", [Ty::Handle, option_ty!(Ty::String)] -> result_ty!(KEY_RESPONSE, ERROR), list_keys),
    drop_fn!("bucket", Bucket),
];

/// A compare-and-swap under way: the key, and the value it was read as
/// (`None`: absent), which `swap` requires to be unchanged. Spin's SQLite
/// store reads only in `current` (a `swap` without it overwrites); Flint
/// also reads in `new`, so a `swap` always compares.
pub struct Cas {
    store: Store,
    key: String,
    seen: Option<Vec<u8>>,
}

/// Reads `key` for a new or renewed compare-and-swap.
fn read_cas(store: &Store, key: String) -> Result<Cas, Failure> {
    let read = store.backend.get(&key);
    store.record(KvOp::CasRead, read.is_ok());
    match read {
        Ok(seen) => Ok(Cas {
            store: store.clone(),
            key,
            seen,
        }),
        Err(e) => Err(store.failure(e)),
    }
}

fn cas_new(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = kv::store::<Wasi>(state, &mut args)?;
    let key = args.string()?;
    match read_cas(store, key) {
        Ok(cas) => Ok(Value::ok(Value::Handle(state.host.resources.push(cas)?))),
        Err(failure) => Ok(Wasi::err(failure)),
    }
}

fn cas_current(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let cas = state.host.resources.get::<Cas>(args.handle()?)?;
    let value = match cas.store.backend.get(&cas.key) {
        Ok(seen) => {
            cas.seen.clone_from(&seen);
            Value::ok(Value::option(seen.map(Value::Bytes)))
        }
        Err(e) => Wasi::err(cas.store.failure(e)),
    };
    Ok(cas.store.counted(KvOp::CasRead, value))
}

/// `swap` consumes the `cas`. When the value has changed, the answer is
/// `cas-failed` with a new `cas` already read at the latest value, as the
/// interface requires and Spin does.
fn swap(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let cas = state.host.resources.take::<Cas>(args.handle()?)?;
    let value = args.bytes()?;
    let swapped = cas
        .store
        .backend
        .compare_and_swap(&cas.key, cas.seen.as_deref(), &value);
    let store_error = |failure| Value::err(Value::case(0, Some(wasi_error(failure))));
    let answer = match swapped {
        Ok(true) => Value::ok_unit(),
        Ok(false) => match read_cas(&cas.store, cas.key.clone()) {
            Ok(renewed) => {
                let handle = state.host.resources.push(renewed)?;
                Value::err(Value::case(1, Some(Value::Handle(handle))))
            }
            Err(failure) => store_error(failure),
        },
        Err(e) => store_error(cas.store.failure(e)),
    };
    Ok(cas.store.counted(KvOp::CasSwap, answer))
}

fn increment(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = kv::store::<Wasi>(state, &mut args)?;
    let key = args.string()?;
    let delta = match args.value()? {
        Value::S64(n) => n,
        other => return Err(Error::new(format!("host bug: expected s64, got {other:?}"))),
    };
    let value = answer::<Wasi, _>(store, store.backend.increment(&key, delta), |n| {
        Value::ok(Value::S64(n))
    });
    Ok(store.counted(KvOp::Increment, value))
}

/// `wasi:keyvalue/atomics@0.2.0-draft2`.
pub const ATOMICS: &[HostFn<GuestState>] = &[
    host_fn!("[static]cas.new", [Ty::Handle, Ty::String] -> result_ty!(Ty::Handle, ERROR), cas_new),
    host_fn!("[method]cas.current", [Ty::Handle] -> result_ty!(option_ty!(BYTES), ERROR), cas_current),
    host_fn!("increment", [Ty::Handle, Ty::String, Ty::S64] -> result_ty!(Ty::S64, ERROR), increment),
    host_fn!("swap", [Ty::Handle, BYTES] -> result_ty!(_, CAS_ERROR), swap),
    drop_fn!("cas", Cas),
];

fn strings(list: Vec<Value>) -> Result<Vec<String>, Error> {
    list.into_iter().map(Value::into_string).collect()
}

/// `get-many`: each key with its value, `none` for an absent key (as the
/// interface says; Spin's SQLite store leaves absent keys out). The values
/// must fit in the guest's memory limit, as Spin bounds them by its buffer
/// limit.
fn get_many(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let budget = state.host.memory_limit;
    let store = kv::store::<Wasi>(state, &mut args)?;
    let keys = strings(args.list()?)?;
    let mut bytes = 0usize;
    let mut found = Vec::with_capacity(keys.len());
    let mut failure = None;
    for key in keys {
        match store.backend.get(&key) {
            Ok(value) => {
                bytes += key.len() + value.as_ref().map_or(0, Vec::len) + 20;
                if bytes > budget {
                    failure =
                        Some(store.failure("the values do not fit in the guest's memory limit"));
                    break;
                }
                found.push(Value::Tuple(vec![
                    Value::String(key),
                    Value::option(value.map(Value::Bytes)),
                ]));
            }
            Err(e) => {
                failure = Some(store.failure(e));
                break;
            }
        }
    }
    let value = match failure {
        Some(failure) => Wasi::err(failure),
        None => Value::ok(Value::List(found)),
    };
    Ok(store.counted(KvOp::GetMany, value))
}

fn set_many(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = kv::store::<Wasi>(state, &mut args)?;
    let entries = args
        .list()?
        .into_iter()
        .map(|entry| {
            let mut pair = entry.into_tuple()?.into_iter();
            let (Some(key), Some(value)) = (pair.next(), pair.next()) else {
                return Err(Error::new("host bug: expected a (key, value) tuple"));
            };
            Ok((key.into_string()?, value.into_bytes()?))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let change = match entries.is_empty() {
        true => Ok(()),
        false => store.backend.set_many(&entries),
    };
    Ok(store.counted(KvOp::SetMany, answer::<Wasi, _>(store, change, durable)))
}

fn delete_many(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = kv::store::<Wasi>(state, &mut args)?;
    let keys = strings(args.list()?)?;
    let change = match keys.is_empty() {
        true => Ok(()),
        false => store.backend.delete_many(&keys),
    };
    Ok(store.counted(KvOp::DeleteMany, answer::<Wasi, _>(store, change, durable)))
}

/// `wasi:keyvalue/batch@0.2.0-draft2`. Not atomic, as the interface allows:
/// a failure may leave some keys changed.
pub const BATCH: &[HostFn<GuestState>] = &[
    host_fn!("get-many", [Ty::Handle, Ty::List(&Ty::String)] -> result_ty!(Ty::List(&Ty::Tuple(&[Ty::String, option_ty!(BYTES)])), ERROR), get_many),
    host_fn!("set-many", [Ty::Handle, Ty::List(&Ty::Tuple(&[Ty::String, BYTES]))] -> result_ty!(_, ERROR), set_many),
    host_fn!("delete-many", [Ty::Handle, Ty::List(&Ty::String)] -> result_ty!(_, ERROR), delete_many),
];
