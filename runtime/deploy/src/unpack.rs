//! Reading a bundle: the digest manifest and signature first, then every
//! member checked as it streams past.
//!
//! A bundle is read twice: [`read_head`] takes only its first members (the
//! digest manifest and the signature), so the signature and the version id
//! can be judged before anything is parsed or written; [`unpack`] then reads
//! the whole archive again, checks that its head is byte for byte the one
//! judged, parses the digest manifest and checks every other member. Nothing in the archive is trusted before it is
//! checked:
//!
//! - only regular files and directories (no links, devices, FIFOs, GNU or PAX
//!   extension headers); paths follow [`crate::paths::check`] (no `..`, no
//!   absolute path), each appears once;
//! - every file is listed in the digest manifest and matches its digest,
//!   every listed file and directory is present, nothing else is;
//! - entry count, per-file and total bytes are bounded ([`Limits`]), checked
//!   from each header before its data is read.
//!
//! Files are created with `O_EXCL` under a fresh directory, so nothing
//! outside it is touched whatever the archive says.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use tar::EntryType;

use crate::digests::{Digests, Hasher};
use crate::keys::{PublicKey, Signature, key_id};
use crate::{Error, Limits, Problem, Result, paths};

/// The largest digest manifest read: 10,000 lines of the longest paths.
const MAX_DIGESTS_BYTES: u64 = 4 << 20;
/// The largest signature member read (a real one is 202 bytes).
const MAX_SIGNATURE_BYTES: u64 = 1024;

/// Which signatures are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// No trusted keys configured: an unsigned bundle is accepted, and a
    /// signed one is checked against the key it names (which proves only
    /// that it was not altered since someone signed it).
    Any,
    /// Only bundles signed by one of these keys.
    Keys(Vec<PublicKey>),
}

impl Trust {
    /// [`Trust::Any`] without keys, else [`Trust::Keys`].
    pub fn from_keys(keys: Vec<PublicKey>) -> Self {
        if keys.is_empty() {
            Trust::Any
        } else {
            Trust::Keys(keys)
        }
    }
}

/// Who signed a bundle, as far as verification established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    Unsigned,
    /// Signed, and the signature verifies with the key it names, but no
    /// trusted key was given to compare that key with.
    Unchecked {
        key: String,
    },
    /// Signed by this trusted key.
    Trusted {
        name: String,
        key: String,
    },
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signer::Unsigned => f.write_str("unsigned"),
            Signer::Unchecked { key } => {
                write!(f, "signed by key {key} (not checked against a trusted key)")
            }
            Signer::Trusted { name, key } => write!(f, "signed by trusted key `{name}` ({key})"),
        }
    }
}

/// The first members of a bundle: its digest manifest, not yet parsed (a
/// signature is judged before anything reads it), and its signature.
#[derive(Debug, Clone)]
pub struct Head {
    /// `flint-bundle.sha256`, exactly as stored (the signature covers these bytes).
    pub digests_bytes: Vec<u8>,
    /// `flint-bundle.sig`, exactly as stored.
    pub signature_bytes: Option<Vec<u8>>,
    pub signature: Option<Signature>,
    /// The version id: derived from `digests_bytes`.
    pub id: String,
}

impl Head {
    /// Judges the signature: an unsigned bundle is refused when keys are
    /// trusted, a signature must verify, and its key must be trusted.
    pub fn check_trust(&self, bundle: &Path, trust: &Trust) -> Result<Signer> {
        let refuse = |problem| Err(Error::bundle(bundle, problem));
        let Some(signature) = &self.signature else {
            return match trust {
                Trust::Keys(_) => refuse(Problem::Unsigned),
                Trust::Any => Ok(Signer::Unsigned),
            };
        };
        let key = key_id(&signature.key);
        let trusted = match trust {
            Trust::Any => None,
            Trust::Keys(keys) => match keys.iter().find(|k| k.bytes() == &signature.key) {
                Some(found) => Some(found),
                None => {
                    let names: Vec<String> = keys
                        .iter()
                        .map(|k| format!("`{}` {}", k.name(), k.id()))
                        .collect();
                    return refuse(Problem::UnknownKey {
                        key,
                        trusted: names.join(", "),
                    });
                }
            },
        };
        if !signature.verifies(&self.digests_bytes) {
            return refuse(Problem::BadSignature { key });
        }
        Ok(match trusted {
            Some(found) => Signer::Trusted {
                name: found.name().to_owned(),
                key,
            },
            None => Signer::Unchecked { key },
        })
    }
}

/// What a complete read established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The digest manifest, parsed.
    pub digests: Digests,
    pub files: usize,
    pub bytes: u64,
}

/// Reads the digest manifest and the signature.
pub fn read_head(bundle: &Path, limits: &Limits) -> Result<Head> {
    read(bundle, limits, None, None).map(|(head, _)| head)
}

/// Reads the whole bundle, checking every member against `head` (which
/// [`read_head`] gave and the caller judged), and writes its files under
/// `into` when given, with the digest manifest and signature beside them
/// (so `sha256sum -c flint-bundle.sha256` there checks them again). `into`
/// must be a fresh, empty directory.
pub fn unpack(
    bundle: &Path,
    head: &Head,
    limits: &Limits,
    into: Option<&Path>,
) -> Result<Verified> {
    let (_, verified) = read(bundle, limits, Some(head), into)?;
    let verified = verified.ok_or_else(|| {
        Error::bundle(
            bundle,
            Problem::NotABundle("it was not read to the end".into()),
        )
    })?;
    if let Some(into) = into {
        let mut metadata = vec![(paths::DIGESTS, &head.digests_bytes)];
        if let Some(signature) = &head.signature_bytes {
            metadata.push((paths::SIGNATURE, signature));
        }
        for (name, bytes) in metadata {
            let path = into.join(name);
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .and_then(|mut file| file.write_all(bytes))
                .map_err(Error::io("writing", &path))?;
        }
    }
    Ok(verified)
}

/// `flint bundle verify`: the signature under `trust`, then every member.
pub fn verify(bundle: &Path, trust: &Trust, limits: &Limits) -> Result<(Head, Signer, Verified)> {
    let head = read_head(bundle, limits)?;
    let signer = head.check_trust(bundle, trust)?;
    let verified = unpack(bundle, &head, limits, None)?;
    Ok((head, signer, verified))
}

fn read(
    bundle: &Path,
    limits: &Limits,
    expected: Option<&Head>,
    into: Option<&Path>,
) -> Result<(Head, Option<Verified>)> {
    let fail = |problem| Error::bundle(bundle, problem);
    let damaged = |e: io::Error| {
        fail(Problem::NotABundle(format!(
            "the archive is damaged or truncated: {e}"
        )))
    };
    let entry_problem = |entry: &str, reason: String| {
        fail(Problem::Entry {
            entry: entry.to_owned(),
            reason,
        })
    };

    let file = File::open(bundle).map_err(Error::io("opening bundle", bundle))?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    // Raw: GNU long names and PAX headers come through as the entries they
    // are (and are refused), rather than being applied to the next one.
    let entries = archive.entries().map_err(damaged)?.raw(true);

    let mut digests: Option<Vec<u8>> = None;
    let mut signature: Option<(Vec<u8>, Signature)> = None;
    // Parsed once the head is known to be the one judged.
    let mut listed: Option<Digests> = None;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut total: u64 = 0;
    let mut files = 0usize;

    for (index, entry) in entries.enumerate() {
        if index >= limits.max_entries.saturating_add(2) {
            return Err(fail(Problem::Limit(format!(
                "the bundle has more than {} entries",
                limits.max_entries
            ))));
        }
        let mut entry = entry.map_err(damaged)?;
        let kind = entry.header().entry_type();
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(entry_problem(&shown, refused_kind(kind)));
        }
        let Ok(path) = String::from_utf8(raw_path) else {
            return Err(entry_problem(&shown, "path is not UTF-8".into()));
        };
        let path = if kind.is_dir() {
            path.strip_suffix('/').map(str::to_owned).unwrap_or(path)
        } else {
            path
        };
        if let Err(why) = paths::check(&path) {
            return Err(entry_problem(&path, format!("path {why}")));
        }
        let size = entry.size();

        // The head: the digest manifest first, the signature second if any.
        if index == 0 {
            if path != paths::DIGESTS || !kind.is_file() {
                return Err(fail(Problem::NotABundle(format!(
                    "its first member is `{path}`, not the digest manifest `{}`",
                    paths::DIGESTS
                ))));
            }
            let bytes = read_small(&mut entry, size, MAX_DIGESTS_BYTES)
                .map_err(|why| entry_problem(&path, why))?;
            digests = Some(bytes);
            continue;
        }
        if index == 1 && path == paths::SIGNATURE && kind.is_file() {
            let bytes = read_small(&mut entry, size, MAX_SIGNATURE_BYTES)
                .map_err(|why| entry_problem(&path, why))?;
            let parsed = Signature::parse(&bytes).map_err(|why| {
                fail(Problem::NotABundle(format!(
                    "its signature `{}` is invalid: {why}",
                    paths::SIGNATURE
                )))
            })?;
            signature = Some((bytes, parsed));
            continue;
        }
        if paths::is_metadata(&path) {
            return Err(entry_problem(
                &path,
                "must be the bundle's first member (the digest manifest) or second (the signature), and appear once"
                    .into(),
            ));
        }

        // Past the head.
        let Some(expected) = expected else {
            break;
        };
        if listed.is_none() {
            listed = Some(judged_digests(
                bundle, limits, expected, &digests, &signature,
            )?);
        }
        let Some(listed) = &listed else {
            continue;
        };
        if !seen.insert(path.clone()) {
            return Err(entry_problem(&path, "appears twice in the bundle".into()));
        }
        if kind.is_dir() {
            if !listed.dirs.contains(&path) && !is_ancestor_of_listed(listed, &path) {
                return Err(entry_problem(
                    &path,
                    "is a directory not listed in the digest manifest".into(),
                ));
            }
            if size != 0 {
                return Err(entry_problem(&path, "is a directory with data".into()));
            }
            if let Some(into) = into {
                let dir = into.join(&path);
                fs::create_dir_all(&dir).map_err(Error::io("creating directory", &dir))?;
            }
            continue;
        }
        let Some(digest) = listed.files.get(&path) else {
            return Err(entry_problem(
                &path,
                "is not listed in the digest manifest (an unlisted file)".into(),
            ));
        };
        if size > limits.max_file_bytes {
            return Err(fail(Problem::Limit(format!(
                "`{path}` is {size} bytes, over the limit of {} bytes per file",
                limits.max_file_bytes
            ))));
        }
        total = total.saturating_add(size);
        if total > limits.max_total_bytes {
            return Err(fail(Problem::Limit(format!(
                "the files add up to more than the limit of {} bytes (at `{path}`)",
                limits.max_total_bytes
            ))));
        }
        let actual = match into {
            Some(into) => write_file(&mut entry, size, &into.join(&path))?,
            None => hash_only(&mut entry, size),
        }
        .map_err(|why| entry_problem(&path, why))?;
        if &actual != digest {
            return Err(fail(Problem::Digest { file: path }));
        }
        files += 1;
    }

    let Some(digests_bytes) = digests.clone() else {
        return Err(fail(Problem::NotABundle("it is empty".into())));
    };
    let (signature_bytes, signature_parsed) = signature.clone().unzip();
    let head = Head {
        id: Digests::id_of(&digests_bytes),
        digests_bytes,
        signature_bytes,
        signature: signature_parsed,
    };
    let Some(expected) = expected else {
        return Ok((head, None));
    };
    let listed = match listed {
        Some(listed) => listed,
        None => judged_digests(bundle, limits, expected, &digests, &signature)?,
    };
    if let Some(missing) = listed
        .files
        .keys()
        .chain(&listed.dirs)
        .find(|p| !seen.contains(*p))
    {
        return Err(fail(Problem::Missing {
            file: missing.clone(),
        }));
    }
    Ok((
        head,
        Some(Verified {
            digests: listed,
            files,
            bytes: total,
        }),
    ))
}

/// The digest manifest, parsed, once the head read now is known to be the
/// one judged before (byte for byte).
fn judged_digests(
    bundle: &Path,
    limits: &Limits,
    expected: &Head,
    digests: &Option<Vec<u8>>,
    signature: &Option<(Vec<u8>, Signature)>,
) -> Result<Digests> {
    check_same_head(bundle, expected, digests, signature)?;
    Digests::parse(&expected.digests_bytes, limits.max_entries).map_err(|why| {
        Error::bundle(
            bundle,
            Problem::NotABundle(format!(
                "its digest manifest `{}` is invalid: {why}",
                paths::DIGESTS
            )),
        )
    })
}

/// The head read now must be the one judged before.
fn check_same_head(
    bundle: &Path,
    expected: &Head,
    digests: &Option<Vec<u8>>,
    signature: &Option<(Vec<u8>, Signature)>,
) -> Result<()> {
    let same = digests.as_ref() == Some(&expected.digests_bytes)
        && signature.as_ref().map(|(b, _)| b) == expected.signature_bytes.as_ref();
    if same {
        Ok(())
    } else {
        Err(Error::bundle(
            bundle,
            Problem::NotABundle("it changed while being read".into()),
        ))
    }
}

fn is_ancestor_of_listed(listed: &Digests, dir: &str) -> bool {
    let prefix = format!("{dir}/");
    listed
        .files
        .keys()
        .chain(&listed.dirs)
        .any(|p| p.starts_with(&prefix))
}

fn refused_kind(kind: EntryType) -> String {
    let what = match kind {
        EntryType::Symlink => "a symbolic link",
        EntryType::Link => "a hard link",
        EntryType::Char => "a character device",
        EntryType::Block => "a block device",
        EntryType::Fifo => "a FIFO",
        EntryType::Continuous => "a contiguous file",
        EntryType::GNULongName | EntryType::GNULongLink => "a GNU long-name header",
        EntryType::GNUSparse => "a GNU sparse file",
        EntryType::XHeader | EntryType::XGlobalHeader => "a PAX extension header",
        _ => "an entry of an unknown type",
    };
    format!("is {what}: a bundle may hold only regular files and directories")
}

fn read_small(entry: &mut impl Read, size: u64, max: u64) -> Result<Vec<u8>, String> {
    if size > max {
        return Err(format!("is {size} bytes, over the limit of {max}"));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    entry
        .take(max)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() as u64 != size {
        return Err("is truncated".into());
    }
    Ok(bytes)
}

/// Streams `size` bytes of `entry` through SHA-256 into `sink`.
fn copy_hashed(
    entry: &mut impl Read,
    size: u64,
    sink: &mut impl Write,
) -> Result<[u8; 32], String> {
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = entry
            .read(&mut buf[..want])
            .map_err(|e| format!("cannot be read: {e}"))?;
        if n == 0 {
            return Err("is truncated".into());
        }
        hasher.update(&buf[..n]);
        sink.write_all(&buf[..n])
            .map_err(|e| format!("cannot be written: {e}"))?;
        left -= n as u64;
    }
    Ok(hasher.finish())
}

fn hash_only(entry: &mut impl Read, size: u64) -> Result<[u8; 32], String> {
    copy_hashed(entry, size, &mut io::sink())
}

fn write_file(entry: &mut impl Read, size: u64, target: &Path) -> Result<Result<[u8; 32], String>> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(Error::io("creating directory", parent))?;
    }
    // O_EXCL: never follow or replace anything already there.
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)
        .map_err(Error::io("creating", target))?;
    let mut out = BufWriter::new(file);
    let digest = copy_hashed(entry, size, &mut out);
    out.flush().map_err(Error::io("writing", target))?;
    Ok(digest)
}
