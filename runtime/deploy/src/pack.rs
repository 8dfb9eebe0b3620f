//! `flint bundle`: an app and everything it reads, in one archive.
//!
//! Layout inside the bundle (and so inside every deployed version):
//!
//! ```text
//! flint-bundle.sha256        the digest manifest (first member)
//! flint-bundle.sig           the signature (second member, when signed)
//! spin.toml                  the manifest, `source` and `files` rewritten
//! runtime-config.toml        when `--runtime-config-file` was given
//! components/<name>.wasm     each distinct module once
//! files/<path>               what `files` mounts, at its path relative to
//!                            the manifest's directory (or under
//!                            `files/external-<n>/` when outside it)
//! ```
//!
//! Globs are resolved by the host's own `files` code (into a scratch
//! directory), so the bundle holds exactly the files a guest would see.
//! Members are written in path order with fixed metadata (mode, owner,
//! mtime 0), so the same app gives the same bytes and the same version id.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::path::{Component as PathPart, Path, PathBuf};

use flint_config::{Component, FilesMount, Manifest};
use toml::de::{DeTable, DeValue};

use crate::digests::{Digests, Hasher};
use crate::keys::{SigningKey, key_id};
use crate::rewrite::{self, ComponentLayout, Mount};
use crate::{Error, Limits, Result, fsutil, paths};

/// What to bundle, and where to.
pub struct BundleSpec<'a> {
    /// The app's `spin.toml`.
    pub manifest: &'a Path,
    pub runtime_config: Option<&'a Path>,
    pub signing_key: Option<&'a SigningKey>,
    pub output: &'a Path,
    pub limits: Limits,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// The version id a deploy of this bundle gets.
    pub id: String,
    pub files: usize,
    pub bytes: u64,
    /// The signing key's id, when signed.
    pub signed_by: Option<String>,
    /// Things that will not work as the author may expect (relative paths in
    /// the runtime config, skipped links).
    pub warnings: Vec<String>,
}

/// A member's data: a file on disk, or bytes made here.
enum Content {
    Host(PathBuf),
    Bytes(Vec<u8>),
}

/// Directory nesting followed in a `files` directory (links included).
const MAX_DEPTH: usize = 32;

pub fn bundle(spec: &BundleSpec<'_>) -> Result<Packed> {
    let manifest = flint_config::load_manifest(spec.manifest)?;
    let text = fs::read_to_string(spec.manifest).map_err(Error::io("reading", spec.manifest))?;
    let scratch = scratch_dir(spec.output)?;
    let planned = (|| {
        let mut layout = Layout::new(&manifest, spec.limits, scratch.clone());
        for component in manifest.components.values() {
            layout.component(component)?;
        }
        Ok::<_, Error>(layout)
    })();
    let _ = fs::remove_dir_all(&scratch);
    let layout = planned?;

    let rewritten =
        rewrite::rewrite(&text, &manifest, &layout.components).map_err(|reason| Error::Pack {
            path: spec.manifest.to_path_buf(),
            reason,
        })?;
    check_rewritten(&rewritten, &manifest, &layout.components).map_err(|reason| Error::Pack {
        path: spec.manifest.to_path_buf(),
        reason: format!("the rewritten manifest is wrong (a bug in flint bundle): {reason}"),
    })?;

    let mut warnings = layout.warnings;
    let mut members: BTreeMap<String, Content> = layout
        .files
        .into_iter()
        .map(|(path, host)| (path, Content::Host(host)))
        .collect();
    members.insert(
        paths::MANIFEST.into(),
        Content::Bytes(rewritten.into_bytes()),
    );
    if let Some(config) = spec.runtime_config {
        flint_config::load_runtime_config(config)?;
        let bytes = fs::read(config).map_err(Error::io("reading", config))?;
        warnings.extend(runtime_config_warnings(config, &bytes));
        members.insert(paths::RUNTIME_CONFIG.into(), Content::Bytes(bytes));
    }
    if members.len() + layout.dirs.len() > spec.limits.max_entries {
        return Err(Error::Pack {
            path: spec.manifest.to_path_buf(),
            reason: format!(
                "the app has {} files, over the bundle limit of {}",
                members.len(),
                spec.limits.max_entries
            ),
        });
    }

    // Pass one: every digest (the digest manifest comes first in the archive).
    let mut digests = Digests {
        files: BTreeMap::new(),
        dirs: layout.dirs,
    };
    let mut total: u64 = 0;
    let mut sizes = BTreeMap::new();
    for (path, content) in &members {
        let (digest, size) = match content {
            Content::Bytes(bytes) => {
                let mut hasher = Hasher::new();
                hasher.update(bytes);
                (hasher.finish(), bytes.len() as u64)
            }
            Content::Host(host) => hash_file(host, spec.limits.max_file_bytes)?,
        };
        total += size;
        if total > spec.limits.max_total_bytes {
            return Err(Error::Pack {
                path: spec.manifest.to_path_buf(),
                reason: format!(
                    "the app's files add up to more than the bundle limit of {} bytes (at `{path}`)",
                    spec.limits.max_total_bytes
                ),
            });
        }
        digests.files.insert(path.clone(), digest);
        sizes.insert(path.clone(), size);
    }
    digests.check_tree().map_err(|reason| Error::Pack {
        path: spec.manifest.to_path_buf(),
        reason,
    })?;
    let digests_text = digests.render();
    let signature = spec
        .signing_key
        .map(|key| key.sign(digests_text.as_bytes()));

    // Pass two: the archive, beside the output and renamed over it when whole.
    let dir = fsutil::parent(spec.output);
    let name = spec
        .output
        .file_name()
        .map_or_else(|| "bundle".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = write_archive(
        &tmp,
        digests_text.as_bytes(),
        signature.as_ref().map(|s| s.render()),
        &digests,
        &members,
        &sizes,
    )
    .and_then(|()| fs::rename(&tmp, spec.output).map_err(Error::io("writing", spec.output)))
    .and_then(|()| fsutil::sync_dir(dir));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    Ok(Packed {
        id: Digests::id_of(digests_text.as_bytes()),
        files: members.len(),
        bytes: total,
        signed_by: signature.map(|s| key_id(&s.key)),
        warnings,
    })
}

fn write_archive(
    tmp: &Path,
    digests_text: &[u8],
    signature: Option<String>,
    digests: &Digests,
    members: &BTreeMap<String, Content>,
    sizes: &BTreeMap<String, u64>,
) -> Result<()> {
    let file = File::create(tmp).map_err(Error::io("creating", tmp))?;
    let mut archive = tar::Builder::new(BufWriter::new(file));
    let mut append = |path: &str, size: u64, data: &mut dyn Read, dir: bool| -> Result<()> {
        let header = header(path, size, dir).map_err(|reason| Error::Pack {
            path: PathBuf::from(path),
            reason,
        })?;
        archive
            .append(&header, data)
            .map_err(Error::io("writing", tmp))
    };
    append(
        paths::DIGESTS,
        digests_text.len() as u64,
        &mut &digests_text[..],
        false,
    )?;
    if let Some(signature) = signature {
        append(
            paths::SIGNATURE,
            signature.len() as u64,
            &mut signature.as_bytes(),
            false,
        )?;
    }
    for dir in &digests.dirs {
        append(dir, 0, &mut io::empty(), true)?;
    }
    for (path, content) in members {
        let size = sizes[path];
        match content {
            Content::Bytes(bytes) => append(path, size, &mut &bytes[..], false)?,
            Content::Host(host) => {
                let file = File::open(host).map_err(Error::io("reading", host))?;
                let mut reader = HashingReader {
                    inner: file.take(size),
                    hasher: Hasher::new(),
                    count: 0,
                };
                append(path, size, &mut reader, false)?;
                if reader.count != size || reader.hasher.finish() != digests.files[path] {
                    return Err(Error::Pack {
                        path: host.clone(),
                        reason: "the file changed while it was being bundled".into(),
                    });
                }
            }
        }
    }
    let out = archive.into_inner().map_err(Error::io("writing", tmp))?;
    let file = out
        .into_inner()
        .map_err(|e| Error::io("writing", tmp)(e.into_error()))?;
    file.sync_all().map_err(Error::io("syncing", tmp))
}

/// A ustar header with fixed metadata, so bundles are reproducible.
fn header(path: &str, size: u64, dir: bool) -> Result<tar::Header, String> {
    let mut header = tar::Header::new_ustar();
    let name = if dir {
        format!("{path}/")
    } else {
        path.to_owned()
    };
    header
        .set_path(&name)
        .map_err(|e| format!("cannot be stored in a ustar header: {e}"))?;
    header.set_size(size);
    header.set_mode(if dir { 0o755 } else { 0o644 });
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    header.set_cksum();
    Ok(header)
}

struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

fn hash_file(path: &Path, max: u64) -> Result<([u8; 32], u64)> {
    let mut file = File::open(path).map_err(Error::io("reading", path))?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size: u64 = 0;
    loop {
        let n = file.read(&mut buf).map_err(Error::io("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
        if size > max {
            return Err(Error::Pack {
                path: path.to_path_buf(),
                reason: format!("over the bundle limit of {max} bytes per file"),
            });
        }
    }
    Ok((hasher.finish(), size))
}

/// A scratch directory for resolving globs, beside the output.
fn scratch_dir(output: &Path) -> Result<PathBuf> {
    let name = output
        .file_name()
        .map_or_else(|| "bundle".into(), |n| n.to_string_lossy().into_owned());
    let dir = fsutil::parent(output).join(format!(".{name}.files-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(Error::io("creating", &dir))?;
    Ok(dir)
}

/// Where every file goes, and each component's rewritten `source` and `files`.
struct Layout<'m> {
    manifest: &'m Manifest,
    limits: Limits,
    scratch: PathBuf,
    /// The manifest's directory, normalised.
    base: PathBuf,
    /// Bundle path → the file on disk.
    files: BTreeMap<String, PathBuf>,
    /// Directories that hold no file but are mounted (or inside a mount).
    dirs: BTreeSet<String>,
    /// Normalised module path → bundle path.
    sources: BTreeMap<PathBuf, String>,
    /// Normalised path outside the manifest's directory → bundle path.
    external: BTreeMap<PathBuf, String>,
    components: BTreeMap<String, ComponentLayout>,
    warnings: Vec<String>,
}

impl<'m> Layout<'m> {
    fn new(manifest: &'m Manifest, limits: Limits, scratch: PathBuf) -> Self {
        Self {
            manifest,
            limits,
            scratch,
            base: normalise(&manifest.dir),
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
            sources: BTreeMap::new(),
            external: BTreeMap::new(),
            components: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    fn fail(&self, path: &Path, reason: impl Into<String>) -> Error {
        Error::Pack {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    fn component(&mut self, component: &Component) -> Result<()> {
        let source = self.source(component)?;
        let mut mounts = Vec::new();
        for mount in &component.files {
            match mount {
                FilesMount::Pattern { glob, .. } => {
                    for relative in self.glob(component, mount, glob)? {
                        let host = self.manifest.dir.join(&relative);
                        let path = self.add_file(&host)?;
                        mounts.push(Mount {
                            source: path,
                            destination: format!("/{relative}"),
                        });
                    }
                }
                FilesMount::Placement {
                    source,
                    destination,
                    ..
                } => {
                    let host = self.manifest.dir.join(source);
                    let meta = fs::metadata(&host).map_err(|e| {
                        self.fail(
                            &host,
                            format!("component `{}`: files source: {e}", component.id),
                        )
                    })?;
                    let path = if meta.is_dir() {
                        self.add_dir(&host)?
                    } else {
                        self.add_file(&host)?
                    };
                    mounts.push(Mount {
                        source: path,
                        destination: destination.clone(),
                    });
                }
            }
        }
        self.components.insert(
            component.id.clone(),
            ComponentLayout {
                source,
                files: mounts,
            },
        );
        Ok(())
    }

    /// `components/<file name>`, once per module however many components
    /// share it.
    fn source(&mut self, component: &Component) -> Result<String> {
        let host = &component.source;
        let meta = fs::metadata(host)
            .map_err(|e| self.fail(host, format!("component `{}`: source: {e}", component.id)))?;
        if !meta.is_file() {
            return Err(self.fail(
                host,
                format!("component `{}`: source is not a file", component.id),
            ));
        }
        let key = normalise(host);
        if let Some(path) = self.sources.get(&key) {
            return Ok(path.clone());
        }
        let name = host
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| paths::check(n).is_ok())
            .map_or_else(|| format!("{}.wasm", component.id), str::to_owned);
        let taken: BTreeSet<&String> = self.sources.values().collect();
        let mut path = format!("{}/{name}", paths::COMPONENTS_DIR);
        let mut n = 2;
        while taken.contains(&path) {
            path = format!("{}/{n}/{name}", paths::COMPONENTS_DIR);
            n += 1;
        }
        self.check_path(&path, host)?;
        self.files.insert(path.clone(), host.clone());
        self.sources.insert(key, path.clone());
        Ok(path)
    }

    /// The files one glob matches, relative to the manifest's directory, as
    /// the host resolves them for a guest: staged into the scratch directory
    /// by `flint_host::wasi::files` and read back.
    fn glob(
        &mut self,
        component: &Component,
        mount: &FilesMount,
        glob: &str,
    ) -> Result<Vec<String>> {
        let mut only = component.clone();
        only.files = vec![mount.clone()];
        flint_host::wasi::files::preopens(&self.manifest.dir, &only, Some(&self.scratch)).map_err(
            |e| {
                self.fail(
                    &self.manifest.path,
                    format!("component `{}`: files `{glob}`: {e:#}", component.id),
                )
            },
        )?;
        let root = self.scratch.join(&component.id);
        let mut found = Vec::new();
        if root.is_dir() {
            list_files(&root, "", &mut found, 0).map_err(|e| self.fail(&root, e))?;
            fs::remove_dir_all(&root).map_err(Error::io("removing", &root))?;
        }
        found.sort();
        Ok(found)
    }

    /// A directory mount: every file below it, empty directories recorded.
    fn add_dir(&mut self, host: &Path) -> Result<String> {
        let path = self.bundle_path(host)?;
        let root = fs::canonicalize(host).map_err(Error::io("resolving", host))?;
        self.walk(host, &path, &root, 0)?;
        Ok(path)
    }

    fn walk(&mut self, dir: &Path, path: &str, root: &Path, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.fail(
                dir,
                format!("nested more than {MAX_DEPTH} directories deep (a symbolic-link loop?)"),
            ));
        }
        let mut children = Vec::new();
        for entry in fs::read_dir(dir).map_err(Error::io("reading directory", dir))? {
            let entry = entry.map_err(Error::io("reading directory", dir))?;
            children.push(entry.path());
        }
        children.sort();
        if children.is_empty() {
            self.check_path(path, dir)?;
            self.dirs.insert(path.to_owned());
            return Ok(());
        }
        for child in children {
            let name = child.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                self.fail(&child, "the name is not UTF-8, which a bundle cannot hold")
            })?;
            let child_path = format!("{path}/{name}");
            let link = fs::symlink_metadata(&child)
                .map_err(Error::io("reading", &child))?
                .file_type()
                .is_symlink();
            if link {
                // A guest follows a link only within its mount; so does the bundle.
                match fs::canonicalize(&child) {
                    Ok(target) if target.starts_with(root) => {}
                    _ => {
                        self.warnings.push(format!(
                            "`{}` is a symbolic link that does not resolve inside `{}`: a guest cannot follow it, so it is not bundled",
                            child.display(),
                            root.display()
                        ));
                        continue;
                    }
                }
            }
            let meta = fs::metadata(&child).map_err(Error::io("reading", &child))?;
            if meta.is_dir() {
                self.walk(&child, &child_path, root, depth + 1)?;
            } else if meta.is_file() {
                self.insert_file(child_path, &child)?;
            } else {
                return Err(self.fail(&child, "is neither a file nor a directory"));
            }
        }
        Ok(())
    }

    fn add_file(&mut self, host: &Path) -> Result<String> {
        let path = self.bundle_path(host)?;
        let meta = fs::metadata(host).map_err(Error::io("reading", host))?;
        if !meta.is_file() {
            return Err(self.fail(host, "is not a regular file"));
        }
        self.insert_file(path.clone(), host)?;
        Ok(path)
    }

    fn insert_file(&mut self, path: String, host: &Path) -> Result<()> {
        self.check_path(&path, host)?;
        match self.files.get(&path) {
            Some(existing) if normalise(existing) != normalise(host) => Err(self.fail(
                host,
                format!(
                    "would be stored as `{path}`, as `{}` already is",
                    existing.display()
                ),
            )),
            Some(_) => Ok(()),
            None => {
                if self.files.len() >= self.limits.max_entries {
                    return Err(self.fail(
                        host,
                        format!(
                            "the app has more than {} files, the bundle limit",
                            self.limits.max_entries
                        ),
                    ));
                }
                self.files.insert(path, host.to_path_buf());
                Ok(())
            }
        }
    }

    /// `files/<path relative to the manifest's directory>`, or
    /// `files/external-<n>/<name>` for a path outside it.
    fn bundle_path(&mut self, host: &Path) -> Result<String> {
        let normal = normalise(host);
        let inside = normal
            .strip_prefix(&self.base)
            .ok()
            .filter(|rel| rel.components().all(|c| matches!(c, PathPart::Normal(_))));
        if let Some(relative) = inside {
            let mut path = paths::FILES_DIR.to_owned();
            for part in relative.components() {
                let part = part.as_os_str().to_str().ok_or_else(|| {
                    self.fail(host, "the name is not UTF-8, which a bundle cannot hold")
                })?;
                path.push('/');
                path.push_str(part);
            }
            return Ok(path);
        }
        if let Some(path) = self.external.get(&normal) {
            return Ok(path.clone());
        }
        let name = normal
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| paths::check(n).is_ok())
            .unwrap_or("files");
        let path = format!(
            "{}/external-{}/{name}",
            paths::FILES_DIR,
            self.external.len() + 1
        );
        self.external.insert(normal, path.clone());
        Ok(path)
    }

    fn check_path(&self, path: &str, host: &Path) -> Result<()> {
        paths::check(path)
            .map_err(|why| self.fail(host, format!("its path in the bundle, `{path}`, {why}")))
    }
}

/// Files under `dir`, as `/`-joined paths relative to it.
fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested more than {MAX_DEPTH} directories deep"));
    }
    let entries = fs::read_dir(dir).map_err(|e| e.to_string())?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name();
        let name = name.to_str().ok_or_else(|| {
            format!(
                "`{}` is not UTF-8, which a bundle cannot hold",
                entry.path().display()
            )
        })?;
        let path = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        if entry.file_type().map_err(|e| e.to_string())?.is_dir() {
            list_files(&entry.path(), &path, out, depth + 1)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// `a/./b/../c` → `a/c`, lexically (no file-system access).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            PathPart::CurDir => {}
            PathPart::ParentDir => {
                if matches!(out.components().next_back(), Some(PathPart::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The rewritten manifest must parse, and give every component the planned
/// module and placements.
fn check_rewritten(
    text: &str,
    original: &Manifest,
    layouts: &BTreeMap<String, ComponentLayout>,
) -> Result<(), String> {
    let base = Path::new("bundle");
    let parsed = flint_config::parse_manifest(text, &base.join(paths::MANIFEST))
        .map_err(|e| e.to_string())?;
    if parsed.components.keys().ne(original.components.keys()) {
        return Err("the components differ".into());
    }
    for (id, component) in &parsed.components {
        let layout = &layouts[id];
        if component.source != base.join(&layout.source) {
            return Err(format!("component `{id}`: source"));
        }
        let placed: Vec<Mount> = component
            .files
            .iter()
            .filter_map(|m| match m {
                FilesMount::Placement {
                    source,
                    destination,
                    ..
                } => Some(Mount {
                    source: source.clone(),
                    destination: destination.clone(),
                }),
                FilesMount::Pattern { .. } => None,
            })
            .collect();
        if placed != layout.files || placed.len() != component.files.len() {
            return Err(format!("component `{id}`: files"));
        }
    }
    Ok(())
}

/// Paths in the runtime config that a deployed version resolves against its
/// own directory.
fn runtime_config_warnings(config: &Path, bytes: &[u8]) -> Vec<String> {
    let mut warnings = Vec::new();
    let Ok(text) = std::str::from_utf8(bytes) else {
        return warnings;
    };
    let Ok(doc) = DeTable::parse(text) else {
        return warnings;
    };
    let relative = |v: &DeValue<'_>| {
        v.as_str()
            .filter(|s| !s.starts_with('/'))
            .map(str::to_owned)
    };
    for (key, value) in doc.get_ref().iter() {
        match (key.get_ref().as_ref(), value.get_ref()) {
            (section @ ("key_value_store" | "sqlite_database"), DeValue::Table(stores)) => {
                let what = if section == "key_value_store" {
                    "key-value store"
                } else {
                    "SQLite database"
                };
                for (label, store) in stores.iter() {
                    let Some(store) = store.get_ref().as_table() else {
                        continue;
                    };
                    for (field, value) in store.iter() {
                        if field.get_ref().as_ref() == "path"
                            && let Some(path) = relative(value.get_ref())
                        {
                            warnings.push(format!(
                                "runtime config `{}`: {what} `{}` has the relative path `{path}`: \
                                 a deployed version resolves it inside its own directory, so the data \
                                 would not carry over to the next version; give an absolute path",
                                config.display(),
                                label.get_ref()
                            ));
                        }
                    }
                }
            }
            ("client_tls", DeValue::Array(entries)) => {
                for entry in entries.iter() {
                    let Some(entry) = entry.get_ref().as_table() else {
                        continue;
                    };
                    for (field, value) in entry.iter() {
                        if field.get_ref().ends_with("_file")
                            && let Some(path) = relative(value.get_ref())
                        {
                            warnings.push(format!(
                                "runtime config `{}`: `client_tls` file `{path}` is not bundled and is \
                                 relative: a deployed version looks for it inside its own directory; \
                                 give an absolute path to the file on the device",
                                config.display()
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::normalise;
    use std::path::{Path, PathBuf};

    #[test]
    fn normalise_is_lexical() {
        assert_eq!(normalise(Path::new("a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(normalise(Path::new("./a")), PathBuf::from("a"));
        assert_eq!(normalise(Path::new("../a")), PathBuf::from("../a"));
        assert_eq!(normalise(Path::new("/x/../y")), PathBuf::from("/y"));
        assert_eq!(normalise(Path::new("a/../../b")), PathBuf::from("../b"));
    }
}
