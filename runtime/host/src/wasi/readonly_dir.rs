//! A WASI directory that refuses every change: a component's `files` are
//! mounted read-only, as in Spin, whatever the host permissions allow.

use std::any::Any;
use std::path::PathBuf;

use wasmi_wasi::wasi_common::dir::{OpenResult, ReaddirCursor, ReaddirEntity};
use wasmi_wasi::wasi_common::file::{FdFlags, Filestat, OFlags};
use wasmi_wasi::wasi_common::{Error, ErrorExt, SystemTimeSpec, WasiDir};

pub struct ReadOnlyDir(pub Box<dyn WasiDir>);

#[wiggle::async_trait]
impl WasiDir for ReadOnlyDir {
    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn open_file(
        &self,
        symlink_follow: bool,
        path: &str,
        oflags: OFlags,
        read: bool,
        write: bool,
        fdflags: FdFlags,
    ) -> Result<OpenResult, Error> {
        let mutating = OFlags::CREATE | OFlags::TRUNCATE | OFlags::EXCLUSIVE;
        if write || oflags.intersects(mutating) || fdflags.contains(FdFlags::APPEND) {
            return Err(Error::perm());
        }
        Ok(
            match self
                .0
                .open_file(symlink_follow, path, oflags, read, false, fdflags)
                .await?
            {
                // Subdirectories inherit the restriction.
                OpenResult::Dir(dir) => OpenResult::Dir(Box::new(ReadOnlyDir(dir))),
                file => file,
            },
        )
    }

    async fn create_dir(&self, _path: &str) -> Result<(), Error> {
        Err(Error::perm())
    }

    async fn readdir(
        &self,
        cursor: ReaddirCursor,
    ) -> Result<Box<dyn Iterator<Item = Result<ReaddirEntity, Error>> + Send>, Error> {
        self.0.readdir(cursor).await
    }

    async fn symlink(&self, _old: &str, _new: &str) -> Result<(), Error> {
        Err(Error::perm())
    }

    async fn remove_dir(&self, _path: &str) -> Result<(), Error> {
        Err(Error::perm())
    }

    async fn unlink_file(&self, _path: &str) -> Result<(), Error> {
        Err(Error::perm())
    }

    async fn read_link(&self, path: &str) -> Result<PathBuf, Error> {
        self.0.read_link(path).await
    }

    async fn get_filestat(&self) -> Result<Filestat, Error> {
        self.0.get_filestat().await
    }

    async fn get_path_filestat(&self, path: &str, follow: bool) -> Result<Filestat, Error> {
        self.0.get_path_filestat(path, follow).await
    }

    async fn rename(&self, _path: &str, _dir: &dyn WasiDir, _dest: &str) -> Result<(), Error> {
        Err(Error::perm())
    }

    async fn hard_link(&self, _path: &str, _dir: &dyn WasiDir, _dest: &str) -> Result<(), Error> {
        Err(Error::perm())
    }

    async fn set_times(
        &self,
        _path: &str,
        _atime: Option<SystemTimeSpec>,
        _mtime: Option<SystemTimeSpec>,
        _follow: bool,
    ) -> Result<(), Error> {
        Err(Error::perm())
    }
}
