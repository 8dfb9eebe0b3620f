//! The digest manifest, `flint-bundle.sha256`: what a bundle holds.
//!
//! ```text
//! # flint-bundle 1
//! 3f0a…e1  components/showcase.wasm
//! 9b2c…07  spin.toml
//! # dir files/static/empty
//! ```
//!
//! One line per file, in `sha256sum` format (so `sha256sum -c
//! flint-bundle.sha256` checks an unpacked bundle), sorted by path; `# dir`
//! lines (comments to `sha256sum`) name directories that hold no file, which
//! a `files` mount may still need. The first line names the format. The
//! version id of a bundle is derived from these exact bytes, and the
//! signature covers them.

use std::collections::{BTreeMap, BTreeSet};

use ring::digest::{Context, SHA256};

use crate::{hex, paths};

const HEADER: &str = "# flint-bundle 1";
const DIR_PREFIX: &str = "# dir ";

/// Every file of a bundle with its SHA-256 digest, and its empty directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digests {
    pub files: BTreeMap<String, [u8; 32]>,
    pub dirs: BTreeSet<String>,
}

impl Digests {
    /// The manifest's text. Deterministic: the same files give the same bytes.
    pub fn render(&self) -> String {
        let mut out = format!("{HEADER}\n");
        for (path, digest) in &self.files {
            out.push_str(&format!("{}  {path}\n", hex::encode(digest)));
        }
        for dir in &self.dirs {
            out.push_str(&format!("{DIR_PREFIX}{dir}\n"));
        }
        out
    }

    /// Parses a digest manifest, refusing anything but the format
    /// [`render`](Self::render) writes: unknown lines, bad paths, duplicates,
    /// a path that is both a file and a directory, more than `max_entries`.
    pub fn parse(bytes: &[u8], max_entries: usize) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8".to_owned())?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("its first line is not `{HEADER}`"));
        }
        let mut digests = Digests::default();
        for (index, line) in lines.enumerate() {
            let number = index + 2;
            if digests.files.len() + digests.dirs.len() >= max_entries {
                return Err(format!("it lists more than {max_entries} entries"));
            }
            let (path, fresh) = if let Some(dir) = line.strip_prefix(DIR_PREFIX) {
                (dir, digests.dirs.insert(dir.to_owned()))
            } else {
                let Some((digest, path)) = line.split_once("  ") else {
                    return Err(format!(
                        "line {number} is neither `<sha256>  <path>` nor `# dir <path>`"
                    ));
                };
                let Some(digest) = hex::decode::<32>(digest) else {
                    return Err(format!(
                        "line {number}: `{digest}` is not a SHA-256 digest (64 lower-case hex digits)"
                    ));
                };
                (
                    path,
                    digests.files.insert(path.to_owned(), digest).is_none(),
                )
            };
            if let Err(why) = paths::check(path) {
                return Err(format!("line {number}: path `{path}` {why}"));
            }
            if paths::is_metadata(path) {
                return Err(format!("line {number}: `{path}` cannot be listed"));
            }
            if !fresh {
                return Err(format!("line {number}: `{path}` is listed twice"));
            }
        }
        if !digests.files.contains_key(paths::MANIFEST) {
            return Err(format!("it does not list `{}`", paths::MANIFEST));
        }
        digests.check_tree()?;
        Ok(digests)
    }

    /// No listed path may lie inside a listed file, and no directory may also
    /// be a file.
    pub(crate) fn check_tree(&self) -> Result<(), String> {
        for path in self.files.keys().chain(&self.dirs) {
            if self.dirs.contains(path) && self.files.contains_key(path) {
                return Err(format!(
                    "`{path}` is listed both as a file and as a directory"
                ));
            }
            let mut prefix = path.as_str();
            while let Some((parent, _)) = prefix.rsplit_once('/') {
                if self.files.contains_key(parent) {
                    return Err(format!("`{path}` is listed inside the file `{parent}`"));
                }
                prefix = parent;
            }
        }
        Ok(())
    }

    /// The version id of the bundle whose digest manifest is `bytes`: the
    /// first 16 hex digits of its SHA-256.
    pub fn id_of(bytes: &[u8]) -> String {
        let digest = ring::digest::digest(&SHA256, bytes);
        hex::encode(&digest.as_ref()[..8])
    }
}

/// SHA-256 over data written in pieces.
pub(crate) struct Hasher(Context);

impl Hasher {
    pub fn new() -> Self {
        Self(Context::new(&SHA256))
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }
}

/// Whether `id` has the form [`Digests::id_of`] gives.
pub fn is_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Digests {
        let mut d = Digests::default();
        d.files.insert("spin.toml".into(), [1; 32]);
        d.files.insert("components/a.wasm".into(), [2; 32]);
        d.dirs.insert("files/empty".into());
        d
    }

    #[test]
    fn render_parse_round_trip() {
        let d = sample();
        let text = d.render();
        assert!(text.starts_with("# flint-bundle 1\n"));
        assert_eq!(Digests::parse(text.as_bytes(), 10), Ok(d));
        assert!(is_id(&Digests::id_of(text.as_bytes())));
    }

    #[test]
    fn refuses_what_it_does_not_write() {
        let ok = sample().render();
        let cases = [
            ("", "first line"),
            ("# flint-bundle 2\n", "first line"),
            (&format!("{ok}junk\n"), "neither"),
            (&format!("{ok}{}  ../x\n", "0".repeat(64)), "`..`"),
            (&format!("{ok}{}  /x\n", "0".repeat(64)), "absolute"),
            (&format!("{ok}{}  spin.toml\n", "0".repeat(64)), "twice"),
            (
                &format!("{ok}{}  flint-bundle.sig\n", "0".repeat(64)),
                "cannot be listed",
            ),
            (
                &format!("{ok}{}  spin.toml/x\n", "0".repeat(64)),
                "inside the file",
            ),
            (&format!("{ok}# dir spin.toml\n"), "both"),
            (&format!("{ok}{}  x\n", "0".repeat(63)), "not a SHA-256"),
            ("# flint-bundle 1\n", "does not list `spin.toml`"),
        ];
        for (text, expected) in cases {
            let err = Digests::parse(text.as_bytes(), 10).expect_err(text);
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        let err = Digests::parse(ok.as_bytes(), 2).expect_err("limit");
        assert!(err.contains("more than 2"), "{err}");
        assert!(Digests::parse(b"\xff", 10).is_err());
    }
}
