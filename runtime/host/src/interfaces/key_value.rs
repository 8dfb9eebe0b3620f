//! `fermyon:spin/key-value@2.0.0` and `spin:key-value/key-value@3.0.0` over
//! the app's [`KvBackend`](crate::kv_store::KvBackend)s (sled on Linux). A
//! `set` or `delete` returns to the guest only once it is durable.
//!
//! The operations are written once, generic over an [`Api`]: which resource
//! type holds an open store and how the interface spells an error.
//! `wasi:keyvalue/store` ([`super::wasi_keyvalue`]) uses the same `open`,
//! `get`, `set`, `delete` and `exists` with its own [`Api`], so permissions,
//! Spin's error order and the metrics are the same whichever interface a
//! guest imports.

use std::sync::Arc;

use wasmi::Error;

use super::wasi_p3::ready_future;
use super::{GuestState, drop_fn, host_fn};
use crate::Resource;
use crate::capabilities::{Capabilities, Services};
use crate::kv_store::{KvError, KvOp, KvOutcome, Lookup, SharedStore};
use flint_engine::canon::{Args, HostFn, TableEntry, Ty, Value};
use flint_engine::component::{SourceFailure, SourceRead, StreamSource};
use flint_engine::{option_ty, result_ty};

const ERROR: Ty = Ty::Variant(&[
    None,             // store-table-full
    None,             // no-such-store
    None,             // access-denied
    Some(Ty::String), // other
]);
pub(super) const BYTES: Ty = Ty::List(&Ty::U8);

/// An open store: the label (for errors and metrics) and its backend.
#[derive(Clone)]
pub struct Store {
    pub(super) label: String,
    pub(super) backend: SharedStore,
    services: Arc<Services>,
}

impl Store {
    /// Counts `op`, whose guest-facing result is `value` (`err` is case 1).
    pub(super) fn counted(&self, op: KvOp, value: Value) -> Value {
        self.record(op, matches!(value, Value::Variant(0, _)));
        value
    }

    pub(super) fn record(&self, op: KvOp, ok: bool) {
        let outcome = if ok { KvOutcome::Ok } else { KvOutcome::Error };
        self.services.kv.counters(&self.label).record(op, outcome);
    }

    /// The backend's failure as `error::other`, naming the store.
    pub(super) fn failure(&self, e: impl std::fmt::Display) -> Failure {
        Failure::Other(format!("store `{}`: {e}", self.label))
    }
}

impl AsRef<Store> for Store {
    fn as_ref(&self) -> &Store {
        self
    }
}

/// Why an operation failed, before an interface spells it.
pub(super) enum Failure {
    NoSuchStore,
    AccessDenied,
    Other(String),
}

/// How one key-value interface differs from another: the resource an open
/// store is (so that a handle of one interface's type is refused by another's
/// functions) and the cases of its `error` variant.
pub(super) trait Api: 'static {
    type Handle: TableEntry<Resource> + From<Store> + AsRef<Store>;
    /// `err(e)` of a `result<_, error>`.
    fn err(failure: Failure) -> Value;
}

/// `fermyon:spin/key-value@2.0.0` and `spin:key-value/key-value@3.0.0`: one
/// `error` (`store-table-full`, `no-such-store`, `access-denied`, `other`).
pub(super) struct Spin;

impl Api for Spin {
    type Handle = Store;
    fn err(failure: Failure) -> Value {
        Value::err(match failure {
            Failure::NoSuchStore => Value::case(1, None),
            Failure::AccessDenied => Value::case(2, None),
            Failure::Other(message) => Value::case(3, Some(Value::string(message))),
        })
    }
}

/// Opens `label` for the component, with Spin's order (`factor-key-value`'s
/// `open` for every interface version): a label the component does not list
/// is `access-denied`, whether or not the app defines it; `no-such-store` is
/// for a listed label that no store backs.
fn open_store(caps: &Capabilities, label: String) -> Result<Store, Failure> {
    let counters = caps.services.kv.counters(&label);
    if !caps.key_value_stores.contains(&label) {
        tracing::warn!(target: "flint::kv", component = %caps.component, store = %label, "key-value store access denied: not in key_value_stores");
        counters.record(KvOp::Open, KvOutcome::Denied);
        return Err(Failure::AccessDenied);
    }
    let Lookup::Open(backend) = caps.services.kv.lookup(&label) else {
        counters.record(KvOp::Open, KvOutcome::Error);
        return Err(Failure::NoSuchStore);
    };
    counters.record(KvOp::Open, KvOutcome::Ok);
    Ok(Store {
        label,
        backend: backend.clone(),
        services: caps.services.clone(),
    })
}

/// `[static]store.open` and `wasi:keyvalue/store`'s `open`. A full handle
/// table (4096 live resources of any kind) traps, as for every resource in
/// Flint, rather than answering `store-table-full`.
pub(super) fn open<A: Api>(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let label = args.string()?;
    match open_store(&state.host.caps, label) {
        Ok(store) => {
            let handle = state.host.resources.push(A::Handle::from(store))?;
            Ok(Value::ok(Value::Handle(handle)))
        }
        Err(failure) => Ok(A::err(failure)),
    }
}

/// The open store behind the handle that is the next argument.
pub(super) fn store<'a, A: Api>(
    state: &'a mut GuestState,
    args: &mut Args,
) -> Result<&'a Store, Error> {
    let handle = args.handle()?;
    let open: &'a A::Handle = state.host.resources.get::<A::Handle>(handle)?;
    Ok(open.as_ref())
}

/// The guest's answer: `ok` of the backend's result, or its failure as
/// `error::other`.
pub(super) fn answer<A: Api, T>(
    store: &Store,
    result: Result<T, KvError>,
    ok: impl FnOnce(T) -> Value,
) -> Value {
    match result {
        Ok(value) => ok(value),
        Err(e) => A::err(store.failure(e)),
    }
}

/// `ok` of a `result<_, error>`, for a change the backend has made durable.
pub(super) fn durable(_: ()) -> Value {
    Value::ok_unit()
}

pub(super) fn get<A: Api>(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = store::<A>(state, &mut args)?;
    let key = args.string()?;
    let value = answer::<A, _>(store, store.backend.get(&key), |v| {
        Value::ok(Value::option(v.map(Value::Bytes)))
    });
    Ok(store.counted(KvOp::Get, value))
}

pub(super) fn set<A: Api>(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = store::<A>(state, &mut args)?;
    let key = args.string()?;
    let value = args.bytes()?;
    let change = store.backend.set(&key, &value);
    Ok(store.counted(KvOp::Set, answer::<A, _>(store, change, durable)))
}

pub(super) fn delete<A: Api>(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = store::<A>(state, &mut args)?;
    let key = args.string()?;
    let change = store.backend.delete(&key);
    Ok(store.counted(KvOp::Delete, answer::<A, _>(store, change, durable)))
}

pub(super) fn exists<A: Api>(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let store = store::<A>(state, &mut args)?;
    let key = args.string()?;
    let value = answer::<A, _>(store, store.backend.exists(&key), |found| {
        Value::ok(Value::Bool(found))
    });
    Ok(store.counted(KvOp::Exists, value))
}

/// Keys listed by [`list_keys`].
pub(super) struct Keys {
    pub keys: Vec<String>,
    /// Some keys were left out.
    pub more: bool,
    /// What the listed keys cost.
    pub bytes: usize,
}

/// The keys after `after` (all of them for `None`), in order, while they fit
/// in `budget` bytes of guest memory (a key costs its length and 8), and at
/// most `max` of them. At least one key is listed if any follows `after`, so
/// that a cursor always moves.
pub(super) fn list_keys(
    store: &Store,
    after: Option<&str>,
    budget: usize,
    max: usize,
) -> Result<Keys, KvError> {
    keys_after(&*store.backend, after, budget, max)
}

fn keys_after(
    backend: &dyn crate::kv_store::KvBackend,
    after: Option<&str>,
    budget: usize,
    max: usize,
) -> Result<Keys, KvError> {
    let mut keys = Vec::new();
    let mut bytes = 0usize;
    let mut more = false;
    backend.keys(&mut |key| {
        if after.is_some_and(|after| key <= after.as_bytes()) {
            return true;
        }
        let cost = key.len() + 8;
        if !keys.is_empty() && (bytes + cost > budget || keys.len() >= max) {
            more = true;
            return false;
        }
        bytes += cost;
        keys.push(String::from_utf8_lossy(key).into_owned());
        true
    })?;
    Ok(Keys { keys, more, bytes })
}

/// `get-keys` (2.0.0 only): every key, or an error when they do not fit in
/// the guest's memory limit (the list must fit in the guest's memory; stop
/// early rather than building a host-side copy the guest could never receive).
fn get_keys(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let budget = state.host.memory_limit;
    let store = store::<Spin>(state, &mut args)?;
    let value = match list_keys(store, None, budget, usize::MAX) {
        Err(e) => Spin::err(store.failure(e)),
        Ok(listed) if listed.more || listed.bytes > budget => {
            Spin::err(store.failure("the keys do not fit in the guest's memory limit"))
        }
        Ok(listed) => Value::ok(Value::List(
            listed.keys.into_iter().map(Value::String).collect(),
        )),
    };
    Ok(store.counted(KvOp::GetKeys, value))
}

const OPEN: HostFn<GuestState> =
    host_fn!("[static]store.open", [Ty::String] -> result_ty!(Ty::Handle, ERROR), open::<Spin>);
const GET: HostFn<GuestState> = host_fn!("[method]store.get", [Ty::Handle, Ty::String] -> result_ty!(option_ty!(BYTES), ERROR), get::<Spin>);
const SET: HostFn<GuestState> = host_fn!("[method]store.set", [Ty::Handle, Ty::String, BYTES] -> result_ty!(_, ERROR), set::<Spin>);
const DELETE: HostFn<GuestState> = host_fn!("[method]store.delete", [Ty::Handle, Ty::String] -> result_ty!(_, ERROR), delete::<Spin>);
const EXISTS: HostFn<GuestState> = host_fn!("[method]store.exists", [Ty::Handle, Ty::String] -> result_ty!(Ty::Bool, ERROR), exists::<Spin>);
const DROP: HostFn<GuestState> = drop_fn!("store", Store);

/// `fermyon:spin/key-value@2.0.0`.
pub const FUNCTIONS: &[HostFn<GuestState>] = &[
    OPEN,
    GET,
    SET,
    DELETE,
    EXISTS,
    host_fn!("[method]store.get-keys", [Ty::Handle] -> result_ty!(Ty::List(&Ty::String), ERROR), get_keys),
    DROP,
];

/// The keys of a store as a `stream<string>`, read page by page (each
/// read lists at most what the guest asked for, after the last key sent),
/// so a large store never sits in host memory at once.
struct KeysSource {
    backend: SharedStore,
    after: Option<String>,
    budget: usize,
    /// The store's label, for the error when listing fails.
    label: String,
}

impl StreamSource for KeysSource {
    fn read(&mut self, max: usize) -> SourceRead {
        match keys_after(&*self.backend, self.after.as_deref(), self.budget, max) {
            // A list cut short must not look whole: the guest's read fails.
            Err(e) => SourceRead::Failed(SourceFailure::Broken(format!(
                "key-value store `{}`: listing keys failed: {e}",
                self.label
            ))),
            Ok(listed) => match listed.keys.last() {
                None => SourceRead::End,
                Some(last) => {
                    self.after = Some(last.clone());
                    SourceRead::Values(listed.keys.into_iter().map(Value::String).collect())
                }
            },
        }
    }
}

/// `get-keys` (3.0.0): `tuple<stream<string>, future<result<_, error>>>`.
/// The future says whether listing failed, once the stream has ended; it is
/// resolved now as `ok`, and a failure while listing fails the guest's read
/// of the stream, naming the store.
fn get_keys_v3(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let budget = state.host.memory_limit;
    let store = store::<Spin>(state, &mut args)?;
    let source = KeysSource {
        backend: store.backend.clone(),
        after: None,
        budget,
        label: store.label.clone(),
    };
    store.record(KvOp::GetKeys, true);
    let stream = state
        .tasks
        .new_stream_from(Some(&Ty::String), Box::new(source))?;
    let done = ready_future(state, &result_ty!(_, ERROR), Value::ok_unit())?;
    Ok(Value::Tuple(vec![Value::Handle(stream), done]))
}

/// `spin:key-value/key-value@3.0.0` (Spin's `wit/deps/spin-key-value@3.0.0`):
/// the same resource, `error` and semantics as 2.0.0 (Spin's `v3` host shares
/// the store table and `open`'s checks). Its functions are declared `async`;
/// the engine lowers them onto these, whose core signatures are those of
/// the 2.0.0 functions; `get-keys` streams the keys.
pub const FUNCTIONS_V3: &[HostFn<GuestState>] = &[
    OPEN,
    GET,
    SET,
    DELETE,
    EXISTS,
    host_fn!("[method]store.get-keys", [Ty::Handle] -> Ty::Tuple(&[Ty::Handle, Ty::Handle]), get_keys_v3),
    DROP,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv_store::{KvStores, SledStore};
    use std::collections::BTreeMap;

    fn caps(listed: &[&str]) -> Capabilities {
        let db = sled::Config::new().temporary(true).open().expect("sled");
        let kv = KvStores::from_backends(BTreeMap::from([(
            "default".to_owned(),
            Arc::new(SledStore::new(db)) as SharedStore,
        )]));
        let mut caps = Capabilities::none("c");
        caps.key_value_stores = listed.iter().map(|l| l.to_string()).collect();
        Arc::get_mut(&mut caps.services).expect("unshared").kv = kv;
        caps
    }

    #[test]
    fn open_checks_the_component_list_before_the_stores() {
        let caps = caps(&["default", "missing"]);
        assert!(matches!(
            open_store(&caps, "elsewhere".into()),
            Err(Failure::AccessDenied)
        ));
        // Defined by the app but not listed: still denied.
        let unlisted = self::caps(&[]);
        assert!(matches!(
            open_store(&unlisted, "default".into()),
            Err(Failure::AccessDenied)
        ));
        assert!(matches!(
            open_store(&caps, "missing".into()),
            Err(Failure::NoSuchStore)
        ));
        assert!(open_store(&caps, "default".into()).is_ok());
        // Each interface spells the same failure its own way.
        assert_eq!(
            Spin::err(Failure::AccessDenied),
            Value::err(Value::case(2, None))
        );
        assert_eq!(
            Spin::err(Failure::NoSuchStore),
            Value::err(Value::case(1, None))
        );
    }

    #[test]
    fn keys_are_listed_in_pages_after_a_cursor() {
        let caps = caps(&["default"]);
        let store = open_store(&caps, "default".into()).ok().expect("open");
        for key in ["a", "b", "c", "d"] {
            store.backend.set(key, b"v").expect("set");
        }
        // Two keys of 1 byte cost 18 bytes.
        let page = list_keys(&store, None, 18, usize::MAX).expect("list");
        assert_eq!(
            (page.keys.as_slice(), page.more),
            (&["a".to_owned(), "b".to_owned()][..], true)
        );
        let page = list_keys(&store, Some("b"), 18, usize::MAX).expect("list");
        assert_eq!(
            (page.keys.as_slice(), page.more),
            (&["c".to_owned(), "d".to_owned()][..], false)
        );
        // A key larger than the page is still listed, alone.
        let page = list_keys(&store, None, 1, usize::MAX).expect("list");
        assert_eq!((page.keys.len(), page.more), (1, true));
        let page = list_keys(&store, Some("d"), 18, usize::MAX).expect("list");
        assert_eq!((page.keys.len(), page.more), (0, false));
    }
}
