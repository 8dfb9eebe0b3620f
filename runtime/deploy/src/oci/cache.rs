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

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use std::collections::BTreeSet;

use super::json::ImageManifest;
use super::{Digest, Error, Limits, Reference, Result};

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

    fn ref_path(&self, reference: &Reference) -> PathBuf {
        // Every part was validated by the reference grammar: no `..`, no
        // empty components, no separators but `/` between repository parts;
        // `@` is in no tag, so a digest's record cannot collide with one.
        let name = match (&reference.tag, &reference.digest) {
            (Some(tag), _) => format!("{tag}.digest"),
            (None, Some(digest)) => format!("@sha256-{}.digest", digest.hex()),
            (None, None) => "latest.digest".to_owned(),
        };
        let mut path = self.root.join("refs").join(&reference.registry);
        for part in reference.repository.split('/') {
            path.push(part);
        }
        path.push(name);
        path
    }

    /// Records the manifest digest `reference` (its tag, or its digest) had;
    /// what [`Cache::prune`] keeps.
    pub fn record(&self, reference: &Reference, manifest: &Digest) -> Result<()> {
        let path = self.ref_path(reference);
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
        let text = fs::read_to_string(self.ref_path(reference)).ok()?;
        Digest::parse(text.trim())
    }

    /// Removes every blob and materialized app that no recorded reference
    /// needs (what older versions of a tag left), and the leftovers of
    /// writers that died. Keeps everything if a recorded manifest cannot be
    /// read, rather than guess what it needs.
    pub fn prune(&self) -> Result<Pruned> {
        let mut manifests = BTreeSet::new();
        collect_records(&self.root.join("refs"), &mut manifests, 0);
        let mut keep = manifests.clone();
        let mut complete = true;
        for manifest in &manifests {
            let limits = Limits::default();
            match self.read(manifest, limits.max_manifest_bytes as u64)? {
                Some(bytes) => match ImageManifest::parse(&bytes, &limits) {
                    Ok((_, config, layers)) => {
                        keep.insert(config.digest);
                        keep.extend(layers.into_iter().map(|l| l.digest));
                    }
                    Err(_) => complete = false,
                },
                None => complete = false,
            }
        }
        let mut pruned = Pruned::default();
        let blobs = self.root.join("blobs").join("sha256");
        for (name, path) in entries(&blobs)? {
            let stale = match name.strip_prefix('.') {
                Some(temp) => writer_is_gone(temp),
                None => {
                    complete
                        && Digest::parse(&format!("sha256:{name}"))
                            .is_none_or(|d| !keep.contains(&d))
                }
            };
            if stale && fs::remove_file(&path).is_ok() {
                pruned.blobs += 1;
            }
        }
        for (name, path) in entries(&self.apps_dir())? {
            let stale = match name.strip_prefix('.') {
                Some(temp) => writer_is_gone(temp),
                None => {
                    Digest::parse(&format!("sha256:{name}")).is_none_or(|d| !manifests.contains(&d))
                }
            };
            if stale && fs::remove_dir_all(&path).is_ok() {
                pruned.apps += 1;
            }
        }
        if pruned.blobs + pruned.apps > 0 {
            sync_dir(&blobs)?;
            sync_dir(&self.apps_dir())?;
        }
        Ok(pruned)
    }
}

/// What [`Cache::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub blobs: usize,
    pub apps: usize,
}

/// The manifest digests recorded under `dir`.
fn collect_records(dir: &Path, out: &mut BTreeSet<Digest>, depth: usize) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if depth < 64 {
                collect_records(&path, out, depth + 1);
            }
        } else if path.extension().is_some_and(|e| e == "digest")
            && let Some(digest) = fs::read_to_string(&path)
                .ok()
                .and_then(|text| Digest::parse(text.trim()))
        {
            out.insert(digest);
        }
    }
}

fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(Error::io("reading", dir))? {
        let entry = entry.map_err(Error::io("reading", dir))?;
        if let Some(name) = entry.file_name().to_str() {
            out.push((name.to_owned(), entry.path()));
        }
    }
    Ok(out)
}

/// Whether the process that named a temporary `…-<pid>` or `…tmp-<pid>` has exited.
fn writer_is_gone(name: &str) -> bool {
    let pid = name.rsplit(['-']).next().unwrap_or("");
    match pid.parse::<u32>() {
        Ok(pid) if pid == std::process::id() => false,
        Ok(pid) => !Path::new("/proc").join(pid.to_string()).exists(),
        Err(_) => false,
    }
}

/// [`crate::fsutil::write_atomic`], reporting the registry module's error.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(crate::fsutil::write_atomic(path, bytes)?)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    Ok(crate::fsutil::sync_dir(dir)?)
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

    #[test]
    fn pruning_keeps_what_recorded_references_need() {
        let dir = std::env::temp_dir().join(format!("flint-oci-prune-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let cache = Cache::open(&dir).expect("open");
        let put = |bytes: &[u8]| {
            let digest = Digest::of(bytes);
            cache.write(&digest, bytes).expect("write");
            digest
        };
        let (config, layer, old) = (put(b"config"), put(b"layer"), put(b"old layer"));
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"c","digest":"{config}","size":6}},"layers":[{{"mediaType":"l","digest":"{layer}","size":5}}]}}"#
        );
        let manifest = put(manifest.as_bytes());
        let reference = Reference::parse("r.example/app:v2").expect("ref");
        cache.record(&reference, &manifest).expect("record");
        for app in [manifest.hex(), old.hex()] {
            fs::create_dir_all(cache.apps_dir().join(app)).expect("app dir");
        }
        // A dead writer's temporary file goes too; pid 0 is never a process.
        fs::write(dir.join("oci/blobs/sha256/.x.tmp-0"), b"partial").expect("temp");
        let pruned = cache.prune().expect("prune");
        assert_eq!(pruned, Pruned { blobs: 2, apps: 1 });
        for kept in [&config, &layer, &manifest] {
            assert!(cache.contains(kept));
        }
        assert!(!cache.contains(&old));
        assert!(cache.apps_dir().join(manifest.hex()).is_dir());

        // A recorded manifest that cannot be read keeps every blob.
        let lost = Digest::of(b"not cached");
        cache
            .record(&Reference::parse("r.example/other:1").expect("ref"), &lost)
            .expect("record");
        let extra = put(b"extra");
        assert_eq!(cache.prune().expect("prune").blobs, 0);
        assert!(cache.contains(&extra));
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
