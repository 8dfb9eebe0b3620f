//! The key-value host interface (`fermyon:spin/key-value@2.0.0`) run by a
//! real guest module against an `embedded_svc::storage::RawStorage` that is
//! not sled: what a board without Linux would plug in.
#![cfg(feature = "embedded-svc")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use embedded_svc::storage::{RawStorage, StorageBase};
use flint_engine::InstanceLimits;
use flint_host::HostState;
use flint_host::capabilities::{Capabilities, OutboundMetrics, Services};
use flint_host::embedded::{KEY_INDEX, RawStorageStore};
use flint_host::kv_store::{KvStores, SharedStore};
use flint_host::outbound_hosts::AllowedHosts;
use flint_host::outbound_http::Bounds;

/// Names to bytes in memory, standing in for a device's NVS partition.
#[derive(Clone, Default)]
struct MapStorage(Arc<Mutex<BTreeMap<String, Vec<u8>>>>);

impl StorageBase for MapStorage {
    type Error = std::convert::Infallible;
    fn contains(&self, name: &str) -> Result<bool, Self::Error> {
        Ok(self.0.lock().unwrap().contains_key(name))
    }
    fn remove(&mut self, name: &str) -> Result<bool, Self::Error> {
        Ok(self.0.lock().unwrap().remove(name).is_some())
    }
}

impl RawStorage for MapStorage {
    fn len(&self, name: &str) -> Result<Option<usize>, Self::Error> {
        Ok(self.0.lock().unwrap().get(name).map(Vec::len))
    }
    fn get_raw<'a>(&self, name: &str, buf: &'a mut [u8]) -> Result<Option<&'a [u8]>, Self::Error> {
        Ok(self.0.lock().unwrap().get(name).map(|v| {
            buf[..v.len()].copy_from_slice(v);
            &buf[..v.len()]
        }))
    }
    fn set_raw(&mut self, name: &str, buf: &[u8]) -> Result<bool, Self::Error> {
        self.0.lock().unwrap().insert(name.to_owned(), buf.to_vec());
        Ok(true)
    }
}

/// A guest that opens `default`, sets `k` to `v1`, reads it back, checks
/// `exists`, deletes `gone`, lists the keys, and is refused an unlisted store.
/// `run` returns 0, or the number of the step that went wrong.
const GUEST: &str = r#"
(module
  (import "fermyon:spin/key-value@2.0.0" "[static]store.open" (func $open (param i32 i32 i32)))
  (import "fermyon:spin/key-value@2.0.0" "[method]store.set" (func $set (param i32 i32 i32 i32 i32 i32)))
  (import "fermyon:spin/key-value@2.0.0" "[method]store.get" (func $get (param i32 i32 i32 i32)))
  (import "fermyon:spin/key-value@2.0.0" "[method]store.exists" (func $exists (param i32 i32 i32 i32)))
  (import "fermyon:spin/key-value@2.0.0" "[method]store.delete" (func $delete (param i32 i32 i32 i32)))
  (import "fermyon:spin/key-value@2.0.0" "[method]store.get-keys" (func $keys (param i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 0) "default")
  (data (i32.const 16) "k")
  (data (i32.const 32) "v1")
  (data (i32.const 40) "gone")
  (data (i32.const 48) "other")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "run") (result i32)
    (local $h i32)
    (call $open (i32.const 0) (i32.const 7) (i32.const 64))
    (if (i32.load8_u (i32.const 64)) (then (return (i32.const 1))))
    (local.set $h (i32.load (i32.const 68)))
    (call $set (local.get $h) (i32.const 16) (i32.const 1) (i32.const 32) (i32.const 2) (i32.const 96))
    (if (i32.load8_u (i32.const 96)) (then (return (i32.const 2))))
    (call $get (local.get $h) (i32.const 16) (i32.const 1) (i32.const 128))
    (if (i32.load8_u (i32.const 128)) (then (return (i32.const 3))))
    (if (i32.ne (i32.load8_u (i32.const 132)) (i32.const 1)) (then (return (i32.const 4))))
    (if (i32.ne (i32.load (i32.const 140)) (i32.const 2)) (then (return (i32.const 5))))
    (if (i32.ne (i32.load16_u (i32.load (i32.const 136))) (i32.load16_u (i32.const 32)))
      (then (return (i32.const 6))))
    (call $exists (local.get $h) (i32.const 16) (i32.const 1) (i32.const 160))
    (if (i32.load8_u (i32.const 160)) (then (return (i32.const 7))))
    (if (i32.ne (i32.load8_u (i32.const 164)) (i32.const 1)) (then (return (i32.const 8))))
    (call $set (local.get $h) (i32.const 40) (i32.const 4) (i32.const 32) (i32.const 2) (i32.const 96))
    (call $delete (local.get $h) (i32.const 40) (i32.const 4) (i32.const 192))
    (if (i32.load8_u (i32.const 192)) (then (return (i32.const 9))))
    (call $keys (local.get $h) (i32.const 224))
    (if (i32.load8_u (i32.const 224)) (then (return (i32.const 10))))
    (if (i32.ne (i32.load (i32.const 232)) (i32.const 1)) (then (return (i32.const 11))))
    (call $open (i32.const 48) (i32.const 5) (i32.const 256))
    (if (i32.ne (i32.load8_u (i32.const 256)) (i32.const 1)) (then (return (i32.const 12))))
    ;; error::access-denied is case 2: `other` is not in key_value_stores
    (if (i32.ne (i32.load8_u (i32.const 260)) (i32.const 2)) (then (return (i32.const 13))))
    (i32.const 0))
)
"#;

#[test]
fn key_value_interface_runs_on_a_raw_storage() {
    let storage = MapStorage::default();
    let store: SharedStore = Arc::new(RawStorageStore::new(storage.clone()).expect("open"));
    let kv = KvStores::from_backends(BTreeMap::from([("default".to_owned(), store)]));
    let caps = Capabilities {
        component: "device".into(),
        allowed_hosts: AllowedHosts::default(),
        key_value_stores: vec!["default".to_owned()],
        sqlite_databases: Vec::new(),
        ai_models: Vec::new(),
        variables: BTreeMap::new(),
        outbound_metrics: OutboundMetrics::new(0),
        services: Arc::new(Services {
            kv,
            sqlite: Default::default(),
            outbox: None,
            outbound: Bounds {
                connect_timeout: Duration::ZERO,
                io_timeout: Duration::ZERO,
                max_head_bytes: 0,
                max_body_bytes: 0,
            },
            tls: flint_host::tls::TlsConfigs::none(),
            blocked: Default::default(),
        }),
    };

    let dir = std::env::temp_dir().join(format!("flint-raw-storage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("guest.wasm");
    std::fs::write(&path, wat::parse_str(GUEST).expect("guest WAT")).expect("write guest");

    let engine = flint_host::engine(true).expect("engine");
    let compiled = engine.compile("device", &path, 1 << 20).expect("compile");
    let limits = InstanceLimits {
        memory_bytes: 1 << 20,
        stdout_bytes: 1 << 20,
        table_elements: 1000,
        fuel: 10_000_000,
        max_execution: Duration::from_secs(5),
        memory_budget: None,
    };
    let host = HostState::new(Arc::new(caps), 1 << 20, 1 << 20);
    let mut store = engine.new_store(host, &limits);
    let instance = engine
        .instantiate(&mut store, &compiled.module)
        .expect("instantiate");
    let run = instance.get_func(&store, "run").expect("run export");
    let mut result = [wasmi::Val::I32(-1)];
    flint_engine::call_guest(&mut store, &run, &[], &mut result).expect("run");
    assert_eq!(result[0].i32(), Some(0), "the step that failed");

    let map = storage.0.lock().unwrap();
    assert_eq!(map.get("k").map(Vec::as_slice), Some(&b"v1"[..]));
    assert!(!map.contains_key("gone"));
    // The key list lives beside the values, and a fresh store reads it back.
    assert!(map.contains_key(KEY_INDEX));
    drop(map);
    let reopened = RawStorageStore::new(storage).expect("reopen");
    let mut keys = Vec::new();
    flint_host::kv_store::KvBackend::keys(&reopened, &mut |k| {
        keys.push(k.to_vec());
        true
    })
    .expect("keys");
    assert_eq!(keys, vec![b"k".to_vec()]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn raw_storage_stores_do_atomics_and_batches() {
    use flint_host::kv_store::KvBackend;
    let storage = MapStorage::default();
    let store = RawStorageStore::new(storage.clone()).expect("open");
    assert!(store.compare_and_swap("k", None, b"1").expect("cas"));
    assert!(!store.compare_and_swap("k", None, b"2").expect("cas"));
    assert!(store.compare_and_swap("k", Some(b"1"), b"2").expect("cas"));
    assert_eq!(store.increment("n", 4).expect("incr"), 4);
    assert_eq!(store.increment("n", -1).expect("incr"), 3);
    assert!(store.increment("k", 1).is_err(), "not a counter");
    assert!(store.increment(KEY_INDEX, 1).is_err(), "reserved");
    store
        .set_many(&[("a".into(), b"x".to_vec()), ("b".into(), b"y".to_vec())])
        .expect("set_many");
    store
        .delete_many(&["a".into(), "absent".into()])
        .expect("delete_many");
    // The key list on the storage agrees, read back by a fresh store.
    let reopened = RawStorageStore::new(storage).expect("reopen");
    let mut keys = Vec::new();
    reopened
        .keys(&mut |k| {
            keys.push(String::from_utf8(k.to_vec()).unwrap());
            true
        })
        .expect("keys");
    assert_eq!(keys, ["b", "k", "n"]);
    assert_eq!(
        reopened.get("n").expect("get"),
        Some(3i64.to_le_bytes().to_vec())
    );
}
