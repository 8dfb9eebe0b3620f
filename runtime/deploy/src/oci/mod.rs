//! Apps in an OCI registry, in Spin's artifact format, so that what `spin
//! registry push` wrote is what `flint up --from REF` runs, and what `flint
//! registry push` writes is what `spin up --from REF` runs.
//!
//! The format (Spin's `crates/oci/src/client.rs`, `crates/locked-app`):
//!
//! - an OCI image manifest (`application/vnd.oci.image.manifest.v1+json`,
//!   canonical JSON) with the inferred `org.opencontainers.image.*`
//!   annotations;
//! - its config, an OCI image config (`application/vnd.oci.image.config.v1+json`):
//!   architecture `wasm`, os `Wasip1`, and the label
//!   `com.fermyon.spin.lockedAppDigest` naming the locked-app layer;
//! - one layer per distinct Wasm source (`application/vnd.wasm.content.layer.v1+wasm`),
//!   one per distinct file over 128 bytes (`application/vnd.wasm.content.layer.v1+data`;
//!   smaller files are inlined into the locked app, base64), and last the
//!   locked app itself (`application/vnd.fermyon.spin.application.v1+config`),
//!   Spin's resolved form of the manifest, whose sources and files name
//!   those layers by digest.
//!
//! Pulling ([`pull`]) checks every blob against its SHA-256 digest before it
//! is used or cached, bounds what a registry can make Flint download
//! ([`Limits`]), and keeps every blob by digest in `<state-dir>/oci/` with
//! each tag's manifest digest, so a device without an uplink starts from
//! its cache. [`materialize`] turns the locked app back into a directory with
//! a `spin.toml` that Flint's loader serves.

mod auth;
mod cache;
mod http;
mod json;
mod locked;
mod materialize;
mod pull;
mod push;
mod reference;
mod url;

#[cfg(test)]
mod registry_tests;

use std::fmt;

pub use auth::{
    Credentials, docker_config_path, flint_auth_path, login, lookup_credentials, spin_auth_path,
};
pub use cache::Cache;
pub use materialize::{Materialized, materialize, materialize_pulled};
pub use pull::{Pulled, pull};
pub use push::{PushOptions, Pushed, push};
pub use reference::Reference;

/// The locked app's media type (a layer today; the config in early Spin releases).
pub const SPIN_APPLICATION_MEDIA_TYPE: &str = "application/vnd.fermyon.spin.application.v1+config";
/// A file a component mounts.
pub const DATA_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+data";
/// A gzipped tar of a component's files, which Spin writes instead of data
/// layers for apps of more than 499 layers (or with `SPIN_OCI_ARCHIVE_LAYERS`).
pub const ARCHIVE_MEDIA_TYPE: &str = "application/vnd.wasm.content.bundle.v1.tar+gzip";
/// A component's Wasm.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// A Wasm binary pushed by `wkg`, which Spin also accepts.
pub const WASM_LAYER_MEDIA_TYPE_WKG: &str = "application/wasm";
/// The OCI image manifest.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker's image manifest (v2 schema 2), which registries may convert to.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Multi-platform indexes: asked for (so a registry answers), then refused.
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// The OCI image config.
pub const OCI_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The config label naming the locked-app layer's digest.
pub const LOCKED_APP_DIGEST_LABEL: &str = "com.fermyon.spin.lockedAppDigest";

/// The most layers a Spin app has (Spin's `MAX_LAYER_COUNT`, the lowest limit
/// of well-known registries, ECR's).
pub const MAX_LAYERS: usize = 500;
/// Content up to this size is inlined into the locked app instead of being
/// a layer (Spin's `DEFAULT_CONTENT_REF_INLINE_MAX_SIZE`).
pub const INLINE_MAX_BYTES: usize = 128;

/// What a registry can make Flint download. Checked against the manifest's
/// declared sizes before any blob is fetched, and each blob is read only up
/// to its declared size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The manifest document (the distribution spec has registries accept 4 MiB).
    pub max_manifest_bytes: usize,
    pub max_layers: usize,
    /// Any one blob: a layer or the config.
    pub max_blob_bytes: u64,
    /// All blobs of one manifest together.
    pub max_total_bytes: u64,
    /// Components, triggers and files in the locked app, each.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_manifest_bytes: 4 << 20,
            max_layers: MAX_LAYERS,
            max_blob_bytes: crate::MAX_FILE_BYTES,
            max_total_bytes: crate::MAX_TOTAL_BYTES,
            max_entries: crate::MAX_ENTRIES,
        }
    }
}

/// How to reach a registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Connect {
    /// Plain HTTP instead of HTTPS, as Spin's `--insecure` (`-k`) does (it
    /// switches the OCI client to `ClientProtocol::Http`). TLS is never
    /// half-verified: HTTPS always checks the certificate.
    pub insecure: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry could not be reached or answered with a server error:
    /// the case where a device falls back to its cache.
    #[error("registry {registry} is unreachable: {reason}")]
    Unreachable { registry: String, reason: String },
    /// The registry answered, but not with what was asked for.
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
    /// Authentication failed or is needed.
    #[error("registry {registry}: {message}")]
    Auth { registry: String, message: String },
    /// A blob or manifest that does not match its digest: refused, not cached.
    #[error(
        "digest mismatch: {what} {digest} does not match its SHA-256 digest (the registry's copy was altered); refused"
    )]
    Digest { what: String, digest: String },
    #[error("{0}")]
    Limit(String),
    /// The artifact is not a Spin app Flint can run.
    #[error("{0}")]
    Format(String),
    #[error("{action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    App(String),
}

/// The durable file steps (`crate::fsutil`) report the crate's error.
impl From<crate::Error> for Error {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Io {
                action,
                path,
                source,
            } => Error::Io {
                action,
                path,
                source,
            },
            other => Error::App(other.to_string()),
        }
    }
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A `sha256:<64 hex>` digest, the only algorithm Flint accepts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    hex: String,
}

impl Digest {
    pub fn parse(text: &str) -> Option<Digest> {
        let hex = text.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then(
            || Digest {
                hex: hex.to_owned(),
            },
        )
    }

    pub fn of(bytes: &[u8]) -> Digest {
        Digest {
            hex: crate::hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref()),
        }
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// Whether `text` should be read as a registry reference rather than a path:
/// it is not an existing path, and it parses as `registry[:port]/repo[:tag|@sha256:…]`
/// with an explicit registry (a name with a dot or a port, or `localhost`).
pub fn is_reference(text: &str) -> bool {
    !std::path::Path::new(text).exists() && Reference::parse_explicit(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_lower_hex() {
        let d = Digest::of(b"abc");
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::parse(&d.to_string()), Some(d.clone()));
        assert!(Digest::parse("sha512:ab").is_none());
        assert!(Digest::parse(&d.to_string().to_uppercase()).is_none());
        assert!(Digest::parse("sha256:abc").is_none());
    }
}
