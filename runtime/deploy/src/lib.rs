//! App bundles and the app directory they deploy into.
//!
//! A **bundle** (`flint bundle`) is one ustar archive holding a Spin app that
//! runs from wherever it is unpacked: the manifest (rewritten so every
//! component `source` and `files` entry points inside the bundle), the
//! component modules, the files they mount and optionally a runtime-config
//! file. Its first member, `flint-bundle.sha256`, lists the SHA-256 digest of
//! every other file; the optional second, `flint-bundle.sig`, is an Ed25519
//! signature over exactly those bytes. Reading a bundle ([`unpack`]) checks
//! every member against the digest list while it streams, and refuses
//! anything a hostile archive could use to escape its directory or fill the
//! disk (see [`Limits`] and [`paths`]).
//!
//! An **app directory** ([`AppDir`]) holds complete, checked versions side by
//! side and a `current` symlink that is only ever replaced by `rename(2)`, so
//! a power cut at any moment leaves the old or the new version selected, each
//! complete.

pub mod app_dir;
pub mod digests;
mod fsutil;
mod hex;
pub mod keys;
pub mod oci;
pub mod pack;
pub mod paths;
mod rewrite;
pub mod unpack;

#[cfg(test)]
mod proptests;

use std::io;
use std::path::{Path, PathBuf};

pub use app_dir::{AppDir, DeployOptions, Deployed, Step};
pub use digests::Digests;
pub use keys::{PublicKey, SigningKey, keygen, load_trusted_dir};
pub use pack::{BundleSpec, Packed, bundle};
pub use unpack::{Head, Signer, Trust, Verified, read_head, unpack, verify};

/// Entries a bundle may have, files and directories together.
pub const MAX_ENTRIES: usize = 10_000;
/// The bytes of all files in a bundle together.
pub const MAX_TOTAL_BYTES: u64 = 256 << 20;
/// The bytes of any one file.
pub const MAX_FILE_BYTES: u64 = 128 << 20;

/// What a bundle may hold. Checked from each entry's header before its data
/// is read, so a hostile bundle is refused before it fills a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: usize,
    pub max_total_bytes: u64,
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: MAX_ENTRIES,
            max_total_bytes: MAX_TOTAL_BYTES,
            max_file_bytes: MAX_FILE_BYTES,
        }
    }
}

/// Why a bundle was refused. Each names the member involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("not a Flint bundle: {0}")]
    NotABundle(String),
    #[error("entry `{entry}`: {reason}")]
    Entry { entry: String, reason: String },
    #[error(
        "digest mismatch: `{file}` does not match its SHA-256 digest in the digest manifest (the file was altered)"
    )]
    Digest { file: String },
    #[error("`{file}` is listed in the digest manifest but missing from the bundle")]
    Missing { file: String },
    #[error(
        "the bundle is unsigned (it has no signature), but trusted keys are configured: only bundles signed by one of them are accepted"
    )]
    Unsigned,
    #[error("signed by an unknown key {key}: it is not one of the trusted keys ({trusted})")]
    UnknownKey { key: String, trusted: String },
    #[error(
        "bad signature: the Ed25519 signature does not verify with key {key} (the digest manifest or the signature was altered)"
    )]
    BadSignature { key: String },
    #[error("{0}")]
    Limit(String),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cause is the `source` (printed as the next line of the chain).
    #[error("{action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{}: {problem}", bundle.display())]
    Bundle { bundle: PathBuf, problem: Problem },
    #[error("key file `{}`: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error(transparent)]
    Config(#[from] flint_config::ConfigError),
    #[error("cannot bundle `{}`: {reason}", path.display())]
    Pack { path: PathBuf, reason: String },
    #[error("app directory `{}`: {reason}", path.display())]
    AppDir { path: PathBuf, reason: String },
    #[error("version {id} failed the check, so it was not deployed:\n{message}")]
    Check { id: String, message: String },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn bundle(bundle: &Path, problem: Problem) -> Error {
        Error::Bundle {
            bundle: bundle.to_path_buf(),
            problem,
        }
    }

    /// The bundle problem, when this is one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Bundle { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
