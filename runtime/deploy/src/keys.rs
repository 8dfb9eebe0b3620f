//! Ed25519 keys (ring) and the bundle signature.
//!
//! Files are one line of text each:
//!
//! - `NAME.pub`: `ed25519 <64 hex digits> NAME`, the public key and a name
//!   for messages;
//! - `NAME.key`: `ed25519-pkcs8 <hex>`, the private key as PKCS#8 v2, mode
//!   0600;
//! - `flint-bundle.sig` in a bundle: `ed25519 <public key hex> <signature
//!   hex>`, the signature over the digest manifest's bytes. Carrying the
//!   public key lets verification tell "signed by a key you do not trust"
//!   from "altered".

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::{Error, Result, fsutil, hex};

const PUBLIC_TAG: &str = "ed25519";
const PRIVATE_TAG: &str = "ed25519-pkcs8";
/// The longest key or signature file read; real ones are under 200 bytes.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// A public key someone trusts, with the name its file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    bytes: [u8; 32],
    name: String,
}

impl PublicKey {
    pub fn new(bytes: [u8; 32], name: impl Into<String>) -> Self {
        Self {
            bytes,
            name: name.into(),
        }
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A short, stable name for messages: `ed25519:` and the first 16 hex
    /// digits of the key (the start of the `.pub` file's key).
    pub fn id(&self) -> String {
        key_id(&self.bytes)
    }

    /// The `.pub` file's line.
    pub fn render(&self) -> String {
        format!("{PUBLIC_TAG} {} {}\n", hex::encode(&self.bytes), self.name)
    }

    /// Parses a `.pub` file; a missing name becomes `default_name`.
    pub fn parse(text: &str, default_name: &str) -> Result<Self, String> {
        let mut words = text.split_whitespace();
        match (words.next(), words.next()) {
            (Some(PUBLIC_TAG), Some(key)) => {
                let bytes = hex::decode::<32>(key)
                    .ok_or("the key is not 64 lower-case hex digits (an Ed25519 public key)")?;
                let name = words.collect::<Vec<_>>().join(" ");
                let name = if name.is_empty() {
                    default_name.to_owned()
                } else {
                    name
                };
                Ok(Self { bytes, name })
            }
            _ => Err(format!(
                "not a Flint public key (expected `{PUBLIC_TAG} <64 hex digits> NAME`, as `flint keygen` writes)"
            )),
        }
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = read_small(path)?;
        let stem = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        Self::parse(&text, &stem).map_err(|reason| Error::Key {
            path: path.to_path_buf(),
            reason,
        })
    }
}

pub(crate) fn key_id(bytes: &[u8; 32]) -> String {
    format!("{PUBLIC_TAG}:{}", &hex::encode(bytes)[..16])
}

/// A private key that signs bundles.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl SigningKey {
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_small(path)?;
        let bad = |reason: &str| Error::Key {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        let mut words = text.split_whitespace();
        let pkcs8 = match (words.next(), words.next(), words.next()) {
            (Some(PRIVATE_TAG), Some(hex), None) => {
                hex::decode_vec(hex).ok_or_else(|| bad("the key is not lower-case hex"))?
            }
            _ => {
                return Err(bad(&format!(
                    "not a Flint private key (expected `{PRIVATE_TAG} <hex>`, as `flint keygen` writes)"
                )));
            }
        };
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|e| bad(&format!("not an Ed25519 PKCS#8 v2 key: {e}")))?;
        Ok(Self { pair })
    }

    pub fn public_key(&self, name: &str) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey::new(bytes, name)
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        let mut signature = [0u8; 64];
        signature.copy_from_slice(self.pair.sign(message).as_ref());
        Signature {
            key: *self.public_key("").bytes(),
            signature,
        }
    }
}

/// `flint-bundle.sig`: who signed, and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub key: [u8; 32],
    pub signature: [u8; 64],
}

impl Signature {
    pub fn render(&self) -> String {
        format!(
            "{PUBLIC_TAG} {} {}\n",
            hex::encode(&self.key),
            hex::encode(&self.signature)
        )
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "the signature is not UTF-8")?;
        let mut words = text.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some(PUBLIC_TAG), Some(key), Some(signature), None) => Ok(Self {
                key: hex::decode::<32>(key).ok_or("the signing key is not 64 hex digits")?,
                signature: hex::decode::<64>(signature)
                    .ok_or("the signature is not 128 hex digits")?,
            }),
            _ => Err(format!(
                "the signature is not `{PUBLIC_TAG} <key> <signature>`"
            )),
        }
    }

    /// Whether this signature over `message` verifies with its own key.
    pub fn verifies(&self, message: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.key)
            .verify(message, &self.signature)
            .is_ok()
    }
}

/// `flint keygen -o NAME`: writes `NAME.key` (mode 0600) and `NAME.pub`,
/// refusing to replace either. Returns both paths and the public key.
pub fn keygen(name: &Path) -> Result<(PathBuf, PathBuf, PublicKey)> {
    let with = |ext: &str| {
        let mut path = OsString::from(name.as_os_str());
        path.push(ext);
        PathBuf::from(path)
    };
    let (private, public) = (with(".key"), with(".pub"));
    for path in [&private, &public] {
        if fs::symlink_metadata(path).is_ok() {
            return Err(Error::Key {
                path: path.clone(),
                reason: "already exists; refusing to replace a key (remove it first)".into(),
            });
        }
    }
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| Error::Key {
        path: private.clone(),
        reason: "the system's random generator failed".into(),
    })?;
    let label = name
        .file_name()
        .map_or_else(|| "key".into(), |n| n.to_string_lossy().into_owned());
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| Error::Key {
        path: private.clone(),
        reason: format!("generated key rejected: {e}"),
    })?;
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(pair.public_key().as_ref());
    let key = PublicKey::new(bytes, label);

    write_new(
        &private,
        format!("{PRIVATE_TAG} {}\n", hex::encode(pkcs8.as_ref())).as_bytes(),
        0o600,
    )?;
    write_new(&public, key.render().as_bytes(), 0o644)?;
    fsutil::sync_dir(fsutil::parent(&private))?;
    Ok((private, public, key))
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(Error::io("creating", path))?;
    // The umask can only remove bits; set the mode exactly anyway.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all())
        .map_err(Error::io("writing", path))
}

/// Every `*.pub` in `dir`, sorted by file name. An empty directory is an
/// error: whoever names a key directory means to require signatures.
pub fn load_trusted_dir(dir: &Path) -> Result<Vec<PublicKey>> {
    let entries = fs::read_dir(dir).map_err(Error::io("reading trusted-key directory", dir))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(Error::io("reading trusted-key directory", dir))?
            .path();
        if path.extension().is_some_and(|e| e == "pub") {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(Error::Key {
            path: dir.to_path_buf(),
            reason: "holds no `*.pub` public key".into(),
        });
    }
    paths.iter().map(|p| PublicKey::load(p)).collect()
}

fn read_small(path: &Path) -> Result<String> {
    let len = fs::metadata(path)
        .map_err(Error::io("reading", path))?
        .len();
    if len > MAX_KEY_FILE_BYTES {
        return Err(Error::Key {
            path: path.to_path_buf(),
            reason: format!("{len} bytes is too large for a key file"),
        });
    }
    let bytes = fs::read(path).map_err(Error::io("reading", path))?;
    String::from_utf8(bytes).map_err(|_| Error::Key {
        path: path.to_path_buf(),
        reason: "not UTF-8 text".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("flint-deploy-keys-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    #[test]
    fn keygen_sign_verify() {
        let dir = scratch("keygen");
        let (private, public, key) = keygen(&dir.join("release")).expect("keygen");
        let mode = fs::metadata(&private).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(PublicKey::load(&public).expect("pub"), key);
        assert_eq!(key.name(), "release");
        let signing = SigningKey::load(&private).expect("load");
        let signature = signing.sign(b"message");
        assert_eq!(&signature.key, key.bytes());
        let parsed = Signature::parse(signature.render().as_bytes()).expect("parse");
        assert!(parsed.verifies(b"message"));
        assert!(!parsed.verifies(b"messagf"));
        let err = keygen(&dir.join("release")).expect_err("exists");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(load_trusted_dir(&dir).expect("dir"), [key]);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn bad_key_files_name_the_file() {
        let dir = scratch("bad");
        let file = dir.join("x.pub");
        fs::write(&file, "ssh-ed25519 AAAA").expect("write");
        let err = PublicKey::load(&file).expect_err("bad");
        assert!(err.to_string().contains("x.pub"), "{err}");
        fs::write(&file, "ed25519 1234").expect("write");
        assert!(PublicKey::load(&file).is_err());
        let key = dir.join("x.key");
        fs::write(&key, "ed25519-pkcs8 00").expect("write");
        assert!(SigningKey::load(&key).is_err());
        assert!(load_trusted_dir(&scratch("empty")).is_err());
        assert!(Signature::parse(b"ed25519 00 00").is_err());
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
