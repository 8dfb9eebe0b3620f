//! The app's key-value stores: one backend per label. On Linux each is a
//! sled database opened at startup with a cache sized for the board; a board
//! without a filesystem brings its own [`KvBackend`] (with the `embedded-svc`
//! feature, any `embedded_svc::storage::RawStorage`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flint_engine::metrics::{Counter, MetricsWriter};

/// What the `key-value` interface and dead letters need of a store. `set`
/// and `delete` return only once the change is durable, so that what a
/// guest hears succeeded survives a crash or power loss.
pub trait KvBackend: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    fn delete(&self, key: &str) -> Result<(), KvError>;
    fn exists(&self, key: &str) -> Result<bool, KvError>;
    /// Calls `visit` with each key in order until it returns `false`.
    fn keys(&self, visit: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), KvError>;
    /// Bytes the store takes on disk, where the backend knows.
    fn size_on_disk(&self) -> Option<u64> {
        None
    }
}

/// A backend's failure, as the guest sees it (`error::other`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KvError(pub String);

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
    GetKeys,
}

const KV_OPS: [&str; 6] = ["open", "get", "set", "delete", "exists", "get_keys"];

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
    source: sled::Error,
}

impl KvStores {
    /// Opens each labelled store at its path as a sled database.
    pub fn open(
        paths: &BTreeMap<String, PathBuf>,
        cache_bytes: u64,
        defined: BTreeSet<String>,
    ) -> Result<Self, OpenError> {
        let mut stores = BTreeMap::new();
        for (label, path) in paths {
            let db = open_db(path, cache_bytes).map_err(|source| OpenError {
                label: label.clone(),
                path: path.clone(),
                source,
            })?;
            stores.insert(label.clone(), Arc::new(db) as SharedStore);
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
