//! The registry cache in a state directory:
//!
//! ```text
//! <state-dir>/oci/blobs/sha256/<hex>      every blob (manifests too), by digest
//! <state-dir>/oci/refs/<registry>/<repo>/<tag>   the manifest digest a tag had
//! <state-dir>/oci/apps/<manifest hex>/    a pulled app, materialized (spin.toml)
//! ```
//!
//! Every file is written atomically (a temporary file, fsync, rename, fsync
//! of the directory), so a power cut leaves each blob whole or absent. A
//! blob is written only after its digest was checked, and checked again when
//! read back; a tag is recorded only once every blob of its manifest is here.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{Digest, Error, Reference, Result};

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache of `state_dir` (`<state_dir>/oci`), created when missing.
    pub fn open(state_dir: &Path) -> Result<Cache> {
        let root = state_dir.join("oci");
        for dir in [
            root.join("blobs").join("sha256"),
            root.join("refs"),
            root.join("apps"),
        ] {
            fs::create_dir_all(&dir).map_err(Error::io("creating", &dir))?;
        }
        Ok(Cache { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    pub(crate) fn apps_dir(&self) -> PathBuf {
        self.root.join("apps")
    }

    /// The blob, if it is here and still matches its digest. One that does
    /// not (a disk fault, a hand edit) is removed so it is fetched again.
    pub fn read(&self, digest: &Digest, max_bytes: u64) -> Result<Option<Vec<u8>>> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("opening", &path)(e)),
        };
        let mut bytes = Vec::new();
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(Error::io("reading", &path))?;
        if bytes.len() as u64 > max_bytes || Digest::of(&bytes) != *digest {
            tracing::warn!(
                target: "flint::oci",
                "cached blob {digest} does not match its digest; removing it"
            );
            let _ = fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores `bytes`, which the caller has checked against `digest`.
    pub fn write(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        debug_assert_eq!(&Digest::of(bytes), digest);
        write_atomic(&self.blob_path(digest), bytes)
    }

    fn ref_path(&self, reference: &Reference) -> Option<PathBuf> {
        let tag = reference.tag_or_latest()?;
        // Every part was validated by the reference grammar: no `..`, no
        // empty components, no separators but `/` between repository parts.
        let mut path = self.root.join("refs").join(&reference.registry);
        for part in reference.repository.split('/') {
            path.push(part);
        }
        path.push(format!("{tag}.digest"));
        Some(path)
    }

    /// Records the manifest digest `reference`'s tag had.
    pub fn record(&self, reference: &Reference, manifest: &Digest) -> Result<()> {
        let Some(path) = self.ref_path(reference) else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
        }
        write_atomic(&path, format!("{manifest}\n").as_bytes())
    }

    /// The manifest digest `reference` names: its own digest, or the one its
    /// tag had when last pulled.
    pub fn recorded(&self, reference: &Reference) -> Option<Digest> {
        if let Some(digest) = &reference.digest {
            return Some(digest.clone());
        }
        let text = fs::read_to_string(self.ref_path(reference)?).ok()?;
        Digest::parse(text.trim())
    }
}

/// A temporary file beside `path`, fsynced, renamed over it, the directory fsynced.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "blob".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(Error::io("creating", &tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(Error::io("writing", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(Error::io("renaming into place", path))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("syncing directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_checked_when_read_back_and_tags_recorded() {
        let dir = std::env::temp_dir().join(format!("flint-oci-cache-{}", std::process::id()));
        let cache = Cache::open(&dir).expect("open");
        let blob = b"hello blob";
        let digest = Digest::of(blob);
        assert_eq!(cache.read(&digest, 100).expect("read"), None);
        cache.write(&digest, blob).expect("write");
        assert_eq!(
            cache.read(&digest, 100).expect("read").as_deref(),
            Some(&blob[..])
        );
        assert_eq!(
            cache.read(&digest, 3).expect("read"),
            None,
            "over the bound"
        );
        cache.write(&digest, blob).expect("write again");
        fs::write(cache.blob_path(&digest), b"hellO blob").expect("tamper");
        assert_eq!(cache.read(&digest, 100).expect("read"), None);
        assert!(!cache.contains(&digest), "a bad blob is removed");

        let reference = Reference::parse("127.0.0.1:5000/team/app:v1").expect("ref");
        assert_eq!(cache.recorded(&reference), None);
        cache.record(&reference, &digest).expect("record");
        assert_eq!(cache.recorded(&reference), Some(digest.clone()));
        let latest = Reference::parse("127.0.0.1:5000/team/app").expect("ref");
        assert_eq!(cache.recorded(&latest), None);
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
