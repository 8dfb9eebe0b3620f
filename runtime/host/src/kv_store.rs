//! The app's key-value stores: one backend per label. On Linux each is a
//! sled database with a cache sized for the board, checked at startup and
//! opened on its first use (see [`OpenOnFirstUse`]); a board
//! without a filesystem brings its own [`KvBackend`] (with the `embedded-svc`
//! feature, any `embedded_svc::storage::RawStorage`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use flint_engine::metrics::{Counter, MetricsWriter};

/// What the key-value interfaces and dead letters need of a store. Every
/// change (`set`, `delete`, a successful `compare_and_swap`, `increment`,
/// the batches) returns only once it is durable, so that what a guest hears
/// succeeded survives a crash or power loss.
pub trait KvBackend: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    fn delete(&self, key: &str) -> Result<(), KvError>;
    fn exists(&self, key: &str) -> Result<bool, KvError>;
    /// Calls `visit` with each key in byte order until it returns `false`.
    fn keys(&self, visit: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), KvError>;
    /// Sets `key` to `new` only if its value is still `current` (`None`:
    /// the key is absent), atomically with respect to every other change to
    /// the store. `Ok(false)` when the value had changed, and nothing was written.
    fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError>;
    /// Adds `delta` to the counter under `key` (0 when absent) and returns
    /// the new value, atomically: a compare-and-swap loop unless the backend
    /// has better. Counters are Spin's encoding, an `i64` in 8 little-endian bytes.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        for _ in 0..MAX_INCREMENT_ATTEMPTS {
            let current = self.get(key)?;
            let next = add_to_counter(key, current.as_deref(), delta)?;
            if self.compare_and_swap(key, current.as_deref(), &next.to_le_bytes())? {
                return Ok(next);
            }
        }
        Err(KvError(format!(
            "increment of `{key}`: the value kept changing ({MAX_INCREMENT_ATTEMPTS} attempts)"
        )))
    }
    /// Sets each key in turn; not atomic (nor is `wasi:keyvalue/batch`).
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        entries.iter().try_for_each(|(k, v)| self.set(k, v))
    }
    /// Deletes each key in turn; absent keys are skipped.
    fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        keys.iter().try_for_each(|k| self.delete(k))
    }
    /// Bytes the store takes on disk, where the backend knows.
    fn size_on_disk(&self) -> Option<u64> {
        None
    }
}

/// A backend's failure, as the guest sees it (`error::other`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KvError(pub String);

/// Attempts of the default `increment` before it gives up under contention.
const MAX_INCREMENT_ATTEMPTS: usize = 100;

/// The counter `current` (absent: 0) plus `delta`, refusing a value that is
/// not a counter (Spin's SQLite store panics there) and overflow.
pub fn add_to_counter(key: &str, current: Option<&[u8]>, delta: i64) -> Result<i64, KvError> {
    let value = match current {
        None => 0,
        Some(bytes) => i64::from_le_bytes(bytes.try_into().map_err(|_| {
            KvError(format!(
                "`{key}` holds {} bytes, not a counter (an i64 in 8 little-endian bytes)",
                bytes.len()
            ))
        })?),
    };
    value
        .checked_add(delta)
        .ok_or_else(|| KvError(format!("increment of `{key}` by {delta} overflows an i64")))
}

impl From<sled::Error> for KvError {
    fn from(e: sled::Error) -> Self {
        KvError(e.to_string())
    }
}

impl KvBackend for sled::Db {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(sled::Tree::get(self, key.as_bytes())?.map(|v| v.to_vec()))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.insert(key.as_bytes(), value)?;
        self.flush()?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.remove(key.as_bytes())?;
        self.flush()?;
        Ok(())
    }

    fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.contains_key(key.as_bytes())?)
    }

    fn keys(&self, visit: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), KvError> {
        for key in self.iter().keys() {
            if !visit(&key?) {
                break;
            }
        }
        Ok(())
    }

    fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        match sled::Tree::compare_and_swap(self, key.as_bytes(), current, Some(new))? {
            Ok(()) => {
                self.flush()?;
                Ok(true)
            }
            Err(_changed) => Ok(false),
        }
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        let mut batch = sled::Batch::default();
        for (key, value) in entries {
            batch.insert(key.as_bytes(), value.as_slice());
        }
        self.apply_batch(batch)?;
        self.flush()?;
        Ok(())
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        let mut batch = sled::Batch::default();
        for key in keys {
            batch.remove(key.as_bytes());
        }
        self.apply_batch(batch)?;
        self.flush()?;
        Ok(())
    }

    fn size_on_disk(&self) -> Option<u64> {
        sled::Db::size_on_disk(self).ok()
    }
}

/// A key-value operation, as the metrics count it.
#[derive(Debug, Clone, Copy)]
pub enum KvOp {
    Open,
    Get,
    Set,
    Delete,
    Exists,
    /// `get-keys`, and `wasi:keyvalue`'s `list-keys` (one per page).
    GetKeys,
    /// `wasi:keyvalue/atomics`.
    Increment,
    /// `cas.new` and `cas.current`: the reads a compare-and-swap compares against.
    CasRead,
    CasSwap,
    /// `wasi:keyvalue/batch`.
    GetMany,
    SetMany,
    DeleteMany,
}

const KV_OPS: [&str; 12] = [
    "open",
    "get",
    "set",
    "delete",
    "exists",
    "get_keys",
    "increment",
    "cas_read",
    "cas_swap",
    "get_many",
    "set_many",
    "delete_many",
];

/// How an operation ended.
#[derive(Debug, Clone, Copy)]
pub enum KvOutcome {
    Ok,
    Error,
    /// `open` of a label the component does not list.
    Denied,
}

const KV_OUTCOMES: [&str; 3] = ["ok", "error", "denied"];

/// One store's operations by kind and outcome.
#[derive(Default)]
pub struct KvCounters([[Counter; KV_OUTCOMES.len()]; KV_OPS.len()]);

impl KvCounters {
    pub fn record(&self, op: KvOp, outcome: KvOutcome) {
        self.0[op as usize][outcome as usize].inc();
    }
}

/// The `store` label of denied opens of labels the app does not define (the
/// guest chooses the label, so it cannot be a label value).
const UNDEFINED_STORE: &str = "(undefined)";

/// A store as the host holds it: shared by every instance that opened it.
pub type SharedStore = Arc<dyn KvBackend>;

pub struct KvStores {
    /// Stores some component may open.
    stores: BTreeMap<String, SharedStore>,
    /// Every label the app defines, opened or not, with its counters.
    defined: BTreeMap<String, KvCounters>,
    undefined: KvCounters,
}

/// What a label names.
pub enum Lookup<'a> {
    Open(&'a SharedStore),
    /// Defined, but no component lists it, so it was not opened.
    Unused,
    Unknown,
}

#[derive(Debug, thiserror::Error)]
#[error("key-value store `{label}`: cannot open {}: {source}", path.display())]
pub struct OpenError {
    label: String,
    path: PathBuf,
    source: std::io::Error,
}

impl KvStores {
    /// Each labelled store at its path, as a sled database opened on first
    /// use. What would stop it opening later is checked now, so that it
    /// fails at startup: the directory can be created and written, and no
    /// other process holds the database (sled's lock).
    pub fn open(
        paths: &BTreeMap<String, PathBuf>,
        cache_bytes: u64,
        defined: BTreeSet<String>,
    ) -> Result<Self, OpenError> {
        let mut stores = BTreeMap::new();
        for (label, path) in paths {
            check_openable(path).map_err(|source| OpenError {
                label: label.clone(),
                path: path.clone(),
                source,
            })?;
            let (label_, path_) = (label.clone(), path.clone());
            let store = OpenOnFirstUse::new(move || {
                open_db(&path_, cache_bytes)
                    .map(|db| Arc::new(db) as SharedStore)
                    .map_err(|e| {
                        KvError(format!(
                            "key-value store `{label_}`: cannot open {}: {e}",
                            path_.display()
                        ))
                    })
            });
            stores.insert(label.clone(), Arc::new(store) as SharedStore);
        }
        Ok(Self::with(stores, defined))
    }

    /// Stores a board brings itself, each already open, every one defined.
    pub fn from_backends(stores: BTreeMap<String, SharedStore>) -> Self {
        let defined = stores.keys().cloned().collect();
        Self::with(stores, defined)
    }

    fn with(stores: BTreeMap<String, SharedStore>, defined: BTreeSet<String>) -> Self {
        Self {
            stores,
            defined: defined
                .into_iter()
                .map(|l| (l, KvCounters::default()))
                .collect(),
            undefined: KvCounters::default(),
        }
    }

    pub fn empty() -> Self {
        Self::with(BTreeMap::new(), BTreeSet::new())
    }

    pub fn lookup(&self, label: &str) -> Lookup<'_> {
        match self.stores.get(label) {
            Some(store) => Lookup::Open(store),
            None if self.defined.contains_key(label) => Lookup::Unused,
            None => Lookup::Unknown,
        }
    }

    /// The counters of `label` (a shared bucket for labels the app does not define).
    pub fn counters(&self, label: &str) -> &KvCounters {
        self.defined.get(label).unwrap_or(&self.undefined)
    }

    /// `flint_kv_operations_total` and `flint_kv_store_size_bytes`.
    pub fn write_metrics(&self, w: &mut MetricsWriter) {
        w.counter(
            "flint_kv_operations",
            "Key-value operations by store, operation and outcome.",
        );
        let stores = self
            .defined
            .iter()
            .map(|(label, c)| (label.as_str(), c))
            .chain([(UNDEFINED_STORE, &self.undefined)]);
        for (label, counters) in stores {
            for (op, by_outcome) in KV_OPS.iter().zip(&counters.0) {
                for (outcome, counter) in KV_OUTCOMES.iter().zip(by_outcome) {
                    if counter.get() > 0 {
                        w.value(
                            &[("store", label), ("operation", op), ("outcome", outcome)],
                            counter.get(),
                        );
                    }
                }
            }
        }
        w.gauge(
            "flint_kv_store_size_bytes",
            "Bytes each open key-value store takes on disk.",
        );
        for (label, store) in &self.stores {
            if let Some(bytes) = store.size_on_disk() {
                w.value(&[("store", label)], bytes);
            }
        }
    }
}

/// Whether sled could open a database at `path` now: the directory exists
/// (or is created) and takes a new file, and its `db` file, if any, is not
/// locked by another process (sled holds an exclusive `flock` on it).
fn check_openable(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    let probe = path.join(".flint-write-check");
    std::fs::File::create(&probe)?;
    std::fs::remove_file(&probe)?;
    let db = path.join("db");
    if db.exists() {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&db)?;
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => std::io::Error::other(
                "the database is in use by another process (another Flint with the same state directory?)",
            ),
            std::fs::TryLockError::Error(e) => e,
        })?;
    }
    Ok(())
}

/// A store opened when an operation first needs it rather than at startup:
/// opening a sled database (its files, a flusher thread) is most of what
/// starting an app with a store costs, and many requests never touch one.
/// A failed open is reported to that operation and tried again by the next.
pub struct OpenOnFirstUse {
    open: Box<dyn Fn() -> Result<SharedStore, KvError> + Send + Sync>,
    store: OnceLock<SharedStore>,
    /// Held while opening, so two first uses do not both open the store.
    opening: Mutex<()>,
}

impl OpenOnFirstUse {
    pub fn new(open: impl Fn() -> Result<SharedStore, KvError> + Send + Sync + 'static) -> Self {
        Self {
            open: Box::new(open),
            store: OnceLock::new(),
            opening: Mutex::new(()),
        }
    }

    fn store(&self) -> Result<&SharedStore, KvError> {
        if let Some(store) = self.store.get() {
            return Ok(store);
        }
        let _opening = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = self.store.get() {
            return Ok(store);
        }
        let store = (self.open)()?;
        Ok(self.store.get_or_init(|| store))
    }
}

impl KvBackend for OpenOnFirstUse {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.store()?.get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.store()?.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.store()?.delete(key)
    }
    fn exists(&self, key: &str) -> Result<bool, KvError> {
        self.store()?.exists(key)
    }
    fn keys(&self, visit: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), KvError> {
        self.store()?.keys(visit)
    }
    fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        self.store()?.compare_and_swap(key, current, new)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.store()?.increment(key, delta)
    }
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        self.store()?.set_many(entries)
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        self.store()?.delete_many(keys)
    }
    /// Only once open: asking must not open it.
    fn size_on_disk(&self) -> Option<u64> {
        self.store.get()?.size_on_disk()
    }
}

fn open_db(path: &Path, cache_bytes: u64) -> sled::Result<sled::Db> {
    sled::Config::new()
        .path(path)
        .cache_capacity(cache_bytes)
        // Writes are flushed explicitly before a guest hears of them; the
        // background flush only bounds what an unacknowledged write risks.
        .flush_every_ms(Some(500))
        .mode(sled::Mode::LowSpace)
        .open()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> sled::Db {
        sled::Config::new().temporary(true).open().expect("sled")
    }

    #[test]
    fn compare_and_swap_writes_only_over_the_value_it_was_given() {
        let db = db();
        let kv: &dyn KvBackend = &db;
        assert!(kv.compare_and_swap("k", None, b"1").expect("cas"));
        assert!(
            !kv.compare_and_swap("k", None, b"2").expect("cas"),
            "no longer absent"
        );
        assert!(!kv.compare_and_swap("k", Some(b"0"), b"2").expect("cas"));
        assert!(kv.compare_and_swap("k", Some(b"1"), b"2").expect("cas"));
        assert_eq!(kv.get("k").expect("get"), Some(b"2".to_vec()));
    }

    #[test]
    fn counters_start_at_zero_and_refuse_what_is_not_a_counter() {
        let db = db();
        let kv: &dyn KvBackend = &db;
        assert_eq!(kv.increment("n", 5).expect("incr"), 5);
        assert_eq!(kv.increment("n", -7).expect("incr"), -2);
        assert_eq!(
            kv.get("n").expect("get"),
            Some((-2i64).to_le_bytes().to_vec())
        );
        kv.set("s", b"text").expect("set");
        assert!(kv.increment("s", 1).is_err());
        kv.set("max", &i64::MAX.to_le_bytes()).expect("set");
        assert!(kv.increment("max", 1).is_err(), "overflow");
        assert_eq!(
            kv.get("max").expect("get"),
            Some(i64::MAX.to_le_bytes().to_vec())
        );
    }

    #[test]
    fn batches_set_and_delete_every_key() {
        let db = db();
        let kv: &dyn KvBackend = &db;
        kv.set_many(&[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())])
            .expect("set_many");
        assert_eq!(kv.get("b").expect("get"), Some(b"2".to_vec()));
        kv.delete_many(&["a".into(), "absent".into()])
            .expect("delete_many");
        let mut keys = Vec::new();
        kv.keys(&mut |k| {
            keys.push(k.to_vec());
            true
        })
        .expect("keys");
        assert_eq!(keys, vec![b"b".to_vec()]);
    }

    /// A fresh directory under the system's temp dir, for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("flint-kv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    fn open_one(path: &Path) -> Result<KvStores, OpenError> {
        let paths = BTreeMap::from([("default".to_owned(), path.to_owned())]);
        KvStores::open(&paths, 1 << 20, BTreeSet::from(["default".to_owned()]))
    }

    #[test]
    fn stores_are_opened_on_first_use() {
        let dir = scratch("lazy");
        let path = dir.join("default");
        let stores = open_one(&path).expect("open");
        assert!(!path.join("db").exists(), "sled was not opened at startup");
        let Lookup::Open(store) = stores.lookup("default") else {
            panic!("default is open");
        };
        assert_eq!(
            store.size_on_disk(),
            None,
            "asking the size does not open it"
        );
        store.set("k", b"v").expect("set");
        assert!(path.join("db").exists());
        assert_eq!(store.get("k").expect("get"), Some(b"v".to_vec()));
        drop(stores);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn what_would_stop_a_store_opening_is_reported_at_startup() {
        let dir = scratch("refused");
        let held = dir.join("held");
        let db = open_db(&held, 1 << 20).expect("sled");
        let err = open_one(&held).err().expect("a held store is refused");
        assert!(
            err.to_string().contains("in use by another process"),
            "{err}"
        );
        drop(db);
        open_one(&held).expect("free again");

        std::fs::write(dir.join("file"), b"").expect("file");
        let err = open_one(&dir.join("file/store"))
            .err()
            .expect("not a directory");
        assert!(
            err.to_string()
                .starts_with("key-value store `default`: cannot open"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
