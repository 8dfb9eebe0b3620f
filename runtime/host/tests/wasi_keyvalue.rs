//! `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2`, `wasi:config/store`
//! and the `spin:*@3.0.0` interfaces, called by a real guest module through
//! `flint_host::engine()` over a sled store: the import signatures in the
//! guest are the canonical ABI's, so a wrong WIT type in a table fails to link.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use flint_engine::InstanceLimits;
use flint_engine::metrics::{Format, MetricsWriter};
use flint_host::HostState;
use flint_host::capabilities::{Capabilities, OutboundMetrics, Services};
use flint_host::kv_store::{KvStores, SharedStore, SledStore};
use flint_host::outbound_hosts::AllowedHosts;
use flint_host::outbound_http::Bounds;

/// `run` returns 0, or the number of the step that went wrong. Return areas
/// are at 512; strings and lists are laid out in the data segments.
const GUEST: &str = r#"
(module
  (import "wasi:keyvalue/store@0.2.0-draft2" "open" (func $open (param i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft2" "[method]bucket.get" (func $get (param i32 i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft2" "[method]bucket.set" (func $set (param i32 i32 i32 i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft2" "[method]bucket.exists" (func $exists (param i32 i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft2" "[method]bucket.list-keys" (func $list (param i32 i32 i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft2" "[resource-drop]bucket" (func $drop_bucket (param i32)))
  (import "wasi:keyvalue/atomics@0.2.0-draft2" "increment" (func $incr (param i32 i32 i32 i64 i32)))
  (import "wasi:keyvalue/atomics@0.2.0-draft2" "[static]cas.new" (func $cas_new (param i32 i32 i32 i32)))
  (import "wasi:keyvalue/atomics@0.2.0-draft2" "[method]cas.current" (func $cas_current (param i32 i32)))
  (import "wasi:keyvalue/atomics@0.2.0-draft2" "swap" (func $swap (param i32 i32 i32 i32)))
  (import "wasi:keyvalue/atomics@0.2.0-draft2" "[resource-drop]cas" (func $drop_cas (param i32)))
  (import "wasi:keyvalue/batch@0.2.0-draft2" "get-many" (func $get_many (param i32 i32 i32 i32)))
  (import "wasi:keyvalue/batch@0.2.0-draft2" "set-many" (func $set_many (param i32 i32 i32 i32)))
  (import "wasi:keyvalue/batch@0.2.0-draft2" "delete-many" (func $delete_many (param i32 i32 i32 i32)))
  (import "spin:key-value/key-value@3.0.0" "[static]store.open" (func $open3 (param i32 i32 i32)))
  (import "spin:variables/variables@3.0.0" "get" (func $var3 (param i32 i32 i32)))
  (import "wasi:config/store@0.2.0-draft-2024-09-27" "get" (func $config (param i32 i32 i32)))
  (import "wasi:config/store@0.2.0-draft-2024-09-27" "get-all" (func $config_all (param i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 0) "default")
  (data (i32.const 16) "other")
  (data (i32.const 24) "missing")
  (data (i32.const 32) "n")
  (data (i32.const 36) "k")
  (data (i32.const 40) "v1")
  (data (i32.const 44) "v2")
  (data (i32.const 48) "v3")
  (data (i32.const 52) "a")
  (data (i32.const 56) "b")
  (data (i32.const 60) "zz")
  (data (i32.const 64) "undefined")
  (data (i32.const 80) "greeting")
  (data (i32.const 96) "x")
  (data (i32.const 100) "y")
  ;; list<string> [a, zz]
  (data (i32.const 128) "\34\00\00\00\01\00\00\00\3c\00\00\00\02\00\00\00")
  ;; list<tuple<string, list<u8>>> [(a, x), (b, y)]
  (data (i32.const 144) "\34\00\00\00\01\00\00\00\60\00\00\00\01\00\00\00")
  (data (i32.const 160) "\38\00\00\00\01\00\00\00\64\00\00\00\01\00\00\00")
  ;; list<string> [a, b]
  (data (i32.const 176) "\34\00\00\00\01\00\00\00\38\00\00\00\01\00\00\00")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func $disc (result i32) (i32.load8_u (i32.const 512)))
  (func $at (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "run") (result i32)
    (local $b i32) (local $c i32) (local $p i32)
    ;; store: open, access-denied (case 1), no-such-store (case 0)
    (call $open (i32.const 0) (i32.const 7) (i32.const 512))
    (if (call $disc) (then (return (i32.const 1))))
    (local.set $b (call $at (i32.const 516)))
    (call $open (i32.const 16) (i32.const 5) (i32.const 512))
    (if (i32.ne (call $disc) (i32.const 1)) (then (return (i32.const 2))))
    (if (i32.ne (i32.load8_u (i32.const 516)) (i32.const 1)) (then (return (i32.const 3))))
    (call $open (i32.const 24) (i32.const 7) (i32.const 512))
    (if (i32.ne (call $disc) (i32.const 1)) (then (return (i32.const 4))))
    (if (i32.ne (i32.load8_u (i32.const 516)) (i32.const 0)) (then (return (i32.const 5))))
    ;; spin:key-value@3.0.0: access-denied is case 2, no-such-store case 1
    (call $open3 (i32.const 16) (i32.const 5) (i32.const 512))
    (if (i32.ne (call $disc) (i32.const 1)) (then (return (i32.const 6))))
    (if (i32.ne (i32.load8_u (i32.const 516)) (i32.const 2)) (then (return (i32.const 7))))
    (call $open3 (i32.const 24) (i32.const 7) (i32.const 512))
    (if (i32.ne (call $disc) (i32.const 1)) (then (return (i32.const 8))))
    (if (i32.ne (i32.load8_u (i32.const 516)) (i32.const 1)) (then (return (i32.const 9))))
    ;; atomics: increment an absent key, then by a negative delta
    (call $incr (local.get $b) (i32.const 32) (i32.const 1) (i64.const 5) (i32.const 512))
    (if (call $disc) (then (return (i32.const 10))))
    (if (i64.ne (i64.load (i32.const 520)) (i64.const 5)) (then (return (i32.const 11))))
    (call $incr (local.get $b) (i32.const 32) (i32.const 1) (i64.const -2) (i32.const 512))
    (if (call $disc) (then (return (i32.const 12))))
    (if (i64.ne (i64.load (i32.const 520)) (i64.const 3)) (then (return (i32.const 13))))
    ;; compare-and-swap: a change after `new` fails the swap with a fresh cas
    (call $set (local.get $b) (i32.const 36) (i32.const 1) (i32.const 40) (i32.const 2) (i32.const 512))
    (if (call $disc) (then (return (i32.const 14))))
    (call $cas_new (local.get $b) (i32.const 36) (i32.const 1) (i32.const 512))
    (if (call $disc) (then (return (i32.const 15))))
    (local.set $c (call $at (i32.const 516)))
    (call $set (local.get $b) (i32.const 36) (i32.const 1) (i32.const 44) (i32.const 2) (i32.const 512))
    (call $swap (local.get $c) (i32.const 48) (i32.const 2) (i32.const 512))
    (if (i32.ne (call $disc) (i32.const 1)) (then (return (i32.const 16))))
    (if (i32.ne (i32.load8_u (i32.const 516)) (i32.const 1)) (then (return (i32.const 17))))
    (local.set $c (call $at (i32.const 520)))
    ;; the fresh cas has read v2
    (call $cas_current (local.get $c) (i32.const 512))
    (if (call $disc) (then (return (i32.const 18))))
    (if (i32.ne (i32.load16_u (call $at (i32.const 520))) (i32.load16_u (i32.const 44)))
      (then (return (i32.const 19))))
    (call $swap (local.get $c) (i32.const 48) (i32.const 2) (i32.const 512))
    (if (call $disc) (then (return (i32.const 20))))
    (call $get (local.get $b) (i32.const 36) (i32.const 1) (i32.const 512))
    (if (call $disc) (then (return (i32.const 21))))
    (if (i32.ne (i32.load8_u (i32.const 516)) (i32.const 1)) (then (return (i32.const 22))))
    (if (i32.ne (call $at (i32.const 524)) (i32.const 2)) (then (return (i32.const 23))))
    (if (i32.ne (i32.load16_u (call $at (i32.const 520))) (i32.load16_u (i32.const 48)))
      (then (return (i32.const 24))))
    ;; batch: set a and b, get a and the absent zz, delete a and b
    (call $set_many (local.get $b) (i32.const 144) (i32.const 2) (i32.const 512))
    (if (call $disc) (then (return (i32.const 25))))
    (call $get_many (local.get $b) (i32.const 128) (i32.const 2) (i32.const 512))
    (if (call $disc) (then (return (i32.const 26))))
    (if (i32.ne (call $at (i32.const 520)) (i32.const 2)) (then (return (i32.const 27))))
    (local.set $p (call $at (i32.const 516)))
    (if (i32.ne (i32.load8_u (i32.add (local.get $p) (i32.const 8))) (i32.const 1)) (then (return (i32.const 28))))
    (if (i32.ne (i32.load8_u (call $at (i32.add (local.get $p) (i32.const 12)))) (i32.const 0x78))
      (then (return (i32.const 29))))
    (if (i32.ne (i32.load8_u (i32.add (local.get $p) (i32.const 28))) (i32.const 0)) (then (return (i32.const 30))))
    (call $delete_many (local.get $b) (i32.const 176) (i32.const 2) (i32.const 512))
    (if (call $disc) (then (return (i32.const 31))))
    (call $exists (local.get $b) (i32.const 52) (i32.const 1) (i32.const 512))
    (if (call $disc) (then (return (i32.const 32))))
    (if (i32.load8_u (i32.const 516)) (then (return (i32.const 33))))
    ;; list-keys without a cursor: k and n, and no next page
    (call $list (local.get $b) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 512))
    (if (call $disc) (then (return (i32.const 34))))
    (if (i32.ne (call $at (i32.const 520)) (i32.const 2)) (then (return (i32.const 35))))
    (if (i32.load8_u (i32.const 524)) (then (return (i32.const 36))))
    ;; wasi:config: an undefined variable is ok(none); a defined one ok(some)
    (call $config (i32.const 64) (i32.const 9) (i32.const 512))
    (if (call $disc) (then (return (i32.const 37))))
    (if (i32.load8_u (i32.const 516)) (then (return (i32.const 38))))
    (call $config (i32.const 80) (i32.const 8) (i32.const 512))
    (if (call $disc) (then (return (i32.const 39))))
    (if (i32.ne (i32.load8_u (i32.const 516)) (i32.const 1)) (then (return (i32.const 40))))
    (if (i32.ne (call $at (i32.const 524)) (i32.const 2)) (then (return (i32.const 41))))
    (call $config_all (i32.const 512))
    (if (call $disc) (then (return (i32.const 42))))
    (if (i32.ne (call $at (i32.const 520)) (i32.const 1)) (then (return (i32.const 43))))
    ;; spin:variables@3.0.0: undefined is error case 1
    (call $var3 (i32.const 64) (i32.const 9) (i32.const 512))
    (if (i32.ne (call $disc) (i32.const 1)) (then (return (i32.const 44))))
    (if (i32.ne (i32.load8_u (i32.const 516)) (i32.const 1)) (then (return (i32.const 45))))
    (call $drop_bucket (local.get $b))
    (i32.const 0))
  ;; A cas handle passed as a bucket: refused (a trap), not reinterpreted.
  (func (export "confused") (result i32)
    (call $open (i32.const 0) (i32.const 7) (i32.const 512))
    (call $cas_new (call $at (i32.const 516)) (i32.const 36) (i32.const 1) (i32.const 512))
    (call $incr (call $at (i32.const 516)) (i32.const 32) (i32.const 1) (i64.const 1) (i32.const 512))
    (i32.const 0))
  ;; increment of a value that is not a counter: error::other (case 2)
  (func (export "not_a_counter") (result i32)
    (local $b i32)
    (call $open (i32.const 0) (i32.const 7) (i32.const 512))
    (local.set $b (call $at (i32.const 516)))
    (call $incr (local.get $b) (i32.const 36) (i32.const 1) (i64.const 1) (i32.const 512))
    (if (i32.ne (call $disc) (i32.const 1)) (then (return (i32.const 1))))
    (if (i32.ne (i32.load8_u (i32.const 520)) (i32.const 2)) (then (return (i32.const 2))))
    (call $drop_cas (i32.const 999))
    (i32.const 0))
)
"#;

struct Guest {
    engine: flint_host::Engine,
    module: wasmi::Module,
    caps: Arc<Capabilities>,
}

fn guest(store: SharedStore) -> Guest {
    let kv = KvStores::from_backends(BTreeMap::from([("default".to_owned(), store)]));
    let caps = Arc::new(Capabilities {
        component: "c".into(),
        allowed_hosts: AllowedHosts::default(),
        // `missing` is listed but no store backs it.
        key_value_stores: vec!["default".to_owned(), "missing".to_owned()],
        sqlite_databases: Vec::new(),
        ai_models: Vec::new(),
        variables: BTreeMap::from([("greeting".to_owned(), "hi".to_owned())]),
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
    });
    static GUESTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = GUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("flint-wasi-kv-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("guest.wasm");
    std::fs::write(&path, wat::parse_str(GUEST).expect("guest WAT")).expect("write guest");
    let engine = flint_host::engine(true).expect("engine");
    let module = engine.compile("c", &path, 1 << 20).expect("compile").module;
    let _ = std::fs::remove_dir_all(&dir);
    Guest {
        engine,
        module,
        caps,
    }
}

impl Guest {
    fn call(&self, export: &str) -> Result<i32, wasmi::Error> {
        let limits = InstanceLimits {
            memory_bytes: 1 << 20,
            stdout_bytes: 1 << 20,
            table_elements: 1000,
            fuel: 10_000_000,
            max_execution: Duration::from_secs(5),
            memory_budget: None,
        };
        let host = HostState::new(self.caps.clone(), 1 << 20, 1 << 20);
        let mut store = self.engine.new_store(host, &limits);
        let instance = self
            .engine
            .instantiate(&mut store, &self.module)
            .expect("instantiate");
        let func = instance.get_func(&store, export).expect("export");
        let mut result = [wasmi::Val::I32(-1)];
        flint_engine::call_guest(&mut store, &func, &[], &mut result)?;
        Ok(result[0].i32().expect("i32"))
    }

    fn metrics(&self) -> String {
        let mut w = MetricsWriter::new(Format::Prometheus);
        self.caps.services.kv.write_metrics(&mut w);
        w.finish()
    }
}

#[test]
fn wasi_keyvalue_config_and_spin_v3_run_over_the_same_store() {
    let db = sled::Config::new().temporary(true).open().expect("sled");
    let backend: SharedStore = Arc::new(SledStore::new(db));
    let guest = guest(backend.clone());
    assert_eq!(guest.call("run").expect("run"), 0, "the step that failed");

    assert_eq!(backend.get("k").expect("get"), Some(b"v3".to_vec()));
    // Spin's counter encoding: an i64 in 8 little-endian bytes.
    assert_eq!(
        backend.get("n").expect("get"),
        Some(3i64.to_le_bytes().to_vec())
    );
    assert!(!backend.exists("a").expect("exists") && !backend.exists("b").expect("exists"));

    let metrics = guest.metrics();
    for sample in [
        r#"flint_kv_operations_total{store="default",operation="open",outcome="ok"} 1"#,
        r#"flint_kv_operations_total{store="(undefined)",operation="open",outcome="denied"} 2"#,
        r#"flint_kv_operations_total{store="(undefined)",operation="open",outcome="error"} 2"#,
        r#"flint_kv_operations_total{store="default",operation="increment",outcome="ok"} 2"#,
        r#"flint_kv_operations_total{store="default",operation="cas_swap",outcome="error"} 1"#,
        r#"flint_kv_operations_total{store="default",operation="cas_swap",outcome="ok"} 1"#,
        r#"flint_kv_operations_total{store="default",operation="get_many",outcome="ok"} 1"#,
        r#"flint_kv_operations_total{store="default",operation="get_keys",outcome="ok"} 1"#,
    ] {
        assert!(metrics.contains(sample), "{sample} in\n{metrics}");
    }
}

#[test]
fn handles_keep_their_type_and_counters_are_checked() {
    let db = sled::Config::new().temporary(true).open().expect("sled");
    db.insert("k", &b"v1"[..]).expect("insert");
    let guest = guest(Arc::new(SledStore::new(db)));
    let trap = guest.call("confused").expect_err("a cas is not a bucket");
    assert!(
        trap.to_string().contains("invalid `bucket` handle"),
        "{trap}"
    );
    let trap = guest
        .call("not_a_counter")
        .expect_err("drop of a forged cas");
    assert!(trap.to_string().contains("invalid `cas` handle"), "{trap}");
}
