//! Durable file-system steps: fsync of files and directories, atomic
//! replacement of small files.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// fsync(2) on a directory, so that the names created, renamed or removed in
/// it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("syncing directory", dir))
}

/// fsync(2) on every file and directory under `root` (children first), and
/// on `root` itself.
pub(crate) fn sync_tree(root: &Path) -> Result<()> {
    let entries = fs::read_dir(root).map_err(Error::io("reading directory", root))?;
    for entry in entries {
        let entry = entry.map_err(Error::io("reading directory", root))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(Error::io("reading file type of", &path))?;
        if kind.is_dir() {
            sync_tree(&path)?;
        } else {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(Error::io("syncing", &path))?;
        }
    }
    sync_dir(root)
}

/// Replaces `path` with `contents` atomically: a temporary file beside it,
/// fsynced, renamed over it, and the directory fsynced.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = parent(path);
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(Error::io("creating", &tmp))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(Error::io("writing", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(Error::io("renaming into place", path))?;
    sync_dir(dir)
}

/// The directory holding `path` (`.` for a bare name).
pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}
