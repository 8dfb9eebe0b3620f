//! The app's key-value stores: one backend per label. On Linux each is a
//! sled database opened at startup with a cache sized for the board; a board
//! without a filesystem brings its own [`KvBackend`] (with the `embedded-svc`
//! feature, any `embedded_svc::storage::RawStorage`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
}

/// A store as the host holds it: shared by every instance that opened it.
pub type SharedStore = Arc<dyn KvBackend>;

pub struct KvStores {
    /// Stores some component may open.
    stores: BTreeMap<String, SharedStore>,
    /// Every label the app defines, opened or not.
    defined: BTreeSet<String>,
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
        Ok(Self { stores, defined })
    }

    /// Stores a board brings itself, each already open, every one defined.
    pub fn from_backends(stores: BTreeMap<String, SharedStore>) -> Self {
        let defined = stores.keys().cloned().collect();
        Self { stores, defined }
    }

    pub fn empty() -> Self {
        Self {
            stores: BTreeMap::new(),
            defined: BTreeSet::new(),
        }
    }

    pub fn lookup(&self, label: &str) -> Lookup<'_> {
        match self.stores.get(label) {
            Some(store) => Lookup::Open(store),
            None if self.defined.contains(label) => Lookup::Unused,
            None => Lookup::Unknown,
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
