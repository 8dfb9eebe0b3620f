//! The app's key-value stores: one sled database per label, opened at
//! startup with a cache sized for the board.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub struct KvStores {
    /// Stores some component may open.
    stores: BTreeMap<String, sled::Db>,
    /// Every label the app defines, opened or not.
    defined: BTreeSet<String>,
}

/// What a label names.
pub enum Lookup<'a> {
    Open(&'a sled::Db),
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
    /// Opens each labelled store at its path.
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
            stores.insert(label.clone(), db);
        }
        Ok(Self { stores, defined })
    }

    pub fn empty() -> Self {
        Self {
            stores: BTreeMap::new(),
            defined: BTreeSet::new(),
        }
    }

    pub fn lookup(&self, label: &str) -> Lookup<'_> {
        match self.stores.get(label) {
            Some(db) => Lookup::Open(db),
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
