//! Pulling an app: the manifest (with the OCI and Docker `Accept` types),
//! then every blob it lists, each checked against its SHA-256 digest and
//! size before it is cached or used. When the registry cannot be reached,
//! the manifest recorded for the reference in the cache is used instead.

use super::cache::Cache;
use super::http::{Access, Client, error_text};
use super::json::{Blob, ImageManifest};
use super::locked::LockedApp;
use super::{
    ARCHIVE_MEDIA_TYPE, Connect, DOCKER_LIST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, Digest, Error,
    Limits, OCI_INDEX_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, Reference, Result,
    SPIN_APPLICATION_MEDIA_TYPE, auth,
};

/// A pulled app: every blob of its manifest is in the cache.
#[derive(Debug)]
pub struct Pulled {
    pub reference: Reference,
    pub manifest_digest: Digest,
    /// `Some(why)` when the registry was unreachable and the cache served.
    pub from_cache: Option<String>,
    /// How many blobs were downloaded (the rest were cached already).
    pub downloaded: usize,
    pub cache: Cache,
    pub(crate) layers: Vec<Blob>,
    pub(crate) locked: LockedApp,
}

/// Pulls `reference` into `cache`. When the registry is unreachable (at
/// any point), the manifest last recorded for the reference is used, if
/// every blob of it is cached.
pub fn pull(
    reference: &Reference,
    cache: &Cache,
    connect: Connect,
    limits: &Limits,
) -> Result<Pulled> {
    let credentials = auth::lookup_credentials(&reference.registry);
    let mut client = Client::new(reference, connect, Access::Pull, credentials)?;
    let online = fetch_manifest(&mut client, reference, limits)
        .and_then(|bytes| complete(reference, cache, limits, bytes, Some(&mut client), None));
    let (registry, reason) = match online {
        Err(Error::Unreachable { registry, reason }) => (registry, reason),
        other => return other,
    };
    let unreachable = format!("registry {registry} is unreachable: {reason}");
    let Some(digest) = cache.recorded(reference) else {
        return Err(Error::Unreachable {
            registry,
            reason: format!(
                "{reason}; and {} holds no manifest for {reference}",
                cache.root().display()
            ),
        });
    };
    let Some(bytes) = cache.read(&digest, limits.max_manifest_bytes as u64)? else {
        return Err(Error::Unreachable {
            registry,
            reason: format!(
                "{reason}; and the cached manifest {digest} for {reference} is missing"
            ),
        });
    };
    complete(reference, cache, limits, bytes, None, Some(unreachable))
}

/// The blobs of a manifest, from the cache or (with a client) the registry.
fn complete(
    reference: &Reference,
    cache: &Cache,
    limits: &Limits,
    manifest_bytes: Vec<u8>,
    mut client: Option<&mut Client>,
    from_cache: Option<String>,
) -> Result<Pulled> {
    let manifest_digest = Digest::of(&manifest_bytes);
    if let Some(expected) = reference.digest.as_ref().filter(|d| **d != manifest_digest) {
        return Err(Error::Digest {
            what: "the manifest".into(),
            digest: expected.to_string(),
        });
    }
    let (_, config, layers) = ImageManifest::parse(&manifest_bytes, limits)?;
    if let Some(archive) = layers.iter().find(|l| l.media_type == ARCHIVE_MEDIA_TYPE) {
        return Err(Error::Format(format!(
            "layer {} is an archive layer ({ARCHIVE_MEDIA_TYPE}), which Spin writes for apps \
             of more than 499 files (or with SPIN_OCI_ARCHIVE_LAYERS); Flint reads only \
             per-file data layers",
            archive.digest
        )));
    }

    let mut downloaded = 0;
    let mut locked_bytes = None;
    for (i, blob) in std::iter::once(&config).chain(&layers).enumerate() {
        let what = if i == 0 {
            format!("the config ({})", blob.media_type)
        } else {
            format!("layer {} ({})", i - 1, blob.media_type)
        };
        let is_locked = blob.media_type == SPIN_APPLICATION_MEDIA_TYPE;
        if cache.contains(&blob.digest) && !is_locked {
            continue;
        }
        let bytes = match cache.read(&blob.digest, blob.size)? {
            Some(bytes) => bytes,
            None => match client.as_deref_mut() {
                Some(client) => {
                    downloaded += 1;
                    fetch_blob(client, blob, &what, cache)?
                }
                None => {
                    return Err(Error::Format(format!(
                        "{}; and {what} {} of the cached manifest is not in the cache",
                        from_cache.as_deref().unwrap_or_default(),
                        blob.digest
                    )));
                }
            },
        };
        if is_locked {
            locked_bytes = Some(bytes);
        }
    }
    // Spin's early releases carried the locked app as the config; today it
    // is the last layer and the config is an OCI image config.
    let locked_bytes = match locked_bytes {
        Some(bytes) => bytes,
        None => {
            let bytes = cache.read(&config.digest, config.size)?.ok_or_else(|| {
                Error::Format(format!(
                    "the config {} vanished from the cache",
                    config.digest
                ))
            })?;
            let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            if value.get("spin_lock_version").is_none() {
                return Err(Error::Format(format!(
                    "{reference} is not a Spin app: it has no layer of type {SPIN_APPLICATION_MEDIA_TYPE}"
                )));
            }
            bytes
        }
    };
    let locked: LockedApp = serde_json::from_slice(&locked_bytes)
        .map_err(|e| Error::Format(format!("the locked app of {reference} is not valid: {e}")))?;

    if from_cache.is_none() {
        if !cache.contains(&manifest_digest) {
            cache.write(&manifest_digest, &manifest_bytes)?;
        }
        cache.record(reference, &manifest_digest)?;
        match cache.prune() {
            Ok(pruned) if pruned != Default::default() => tracing::info!(
                target: "flint::oci",
                blobs = pruned.blobs,
                apps = pruned.apps,
                "removed cached blobs and apps no recorded reference needs"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(target: "flint::oci", "pruning the cache: {e}"),
        }
    }
    Ok(Pulled {
        reference: reference.clone(),
        manifest_digest,
        from_cache,
        downloaded,
        cache: cache.clone(),
        layers,
        locked,
    })
}

fn fetch_manifest(client: &mut Client, reference: &Reference, limits: &Limits) -> Result<Vec<u8>> {
    let url = client.url(&format!("manifests/{}", reference.target()))?;
    let accept = [
        OCI_MANIFEST_MEDIA_TYPE,
        DOCKER_MANIFEST_MEDIA_TYPE,
        OCI_INDEX_MEDIA_TYPE,
        DOCKER_LIST_MEDIA_TYPE,
    ]
    .join(", ");
    let response = client.send(
        "GET",
        &url,
        &[("accept", &accept)],
        &[],
        limits.max_manifest_bytes,
    )?;
    match response.status {
        200 => Ok(response.body),
        404 => Err(client.error(format!(
            "{reference} is not in the registry ({})",
            error_text(&response.body)
        ))),
        status => Err(client.error(format!(
            "GET {url} answered {status}: {}",
            error_text(&response.body)
        ))),
    }
}

/// Downloads a blob, reading at most its declared size, and caches it once
/// its digest matches.
fn fetch_blob(client: &mut Client, blob: &Blob, what: &str, cache: &Cache) -> Result<Vec<u8>> {
    let url = client.url(&format!("blobs/{}", blob.digest))?;
    let max = usize::try_from(blob.size).unwrap_or(usize::MAX);
    let response = client.send("GET", &url, &[], &[], max)?;
    if response.status != 200 {
        return Err(client.error(format!(
            "GET {url} answered {}: {}",
            response.status,
            error_text(&response.body)
        )));
    }
    if response.body.len() as u64 != blob.size || Digest::of(&response.body) != blob.digest {
        return Err(Error::Digest {
            what: what.to_owned(),
            digest: blob.digest.to_string(),
        });
    }
    cache.write(&blob.digest, &response.body)?;
    tracing::debug!(target: "flint::oci", digest = %blob.digest, bytes = blob.size, "pulled {what}");
    Ok(response.body)
}
