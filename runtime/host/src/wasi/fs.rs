//! The component's `files`, read-only, for WASI 0.2's `wasi:filesystem` and
//! WASI preview 1 (`super::preview1`) alike.
//!
//! Every path is resolved by cap-std beneath the directory it is relative to:
//! a path starting with `/`, a `..` out of the directory, or a symlink
//! leading outside it fails with `not-permitted`. Only reading opens
//! anything; every change fails with `read-only`, after the checks that
//! would have failed first anyway (the descriptor's kind, the path).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::UNIX_EPOCH;

use cap_fs_ext::{DirExt, FollowSymlinks, MetadataExt, OpenOptionsFollowExt};
use cap_std::fs::{Dir, FileType, Metadata, OpenOptions};

/// `wasi:filesystem/types.error-code`, by case index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorCode {
    Access = 0,
    WouldBlock,
    Already,
    BadDescriptor,
    Busy,
    Deadlock,
    Quota,
    Exist,
    FileTooLarge,
    IllegalByteSequence,
    InProgress,
    Interrupted,
    Invalid,
    Io,
    IsDirectory,
    Loop,
    TooManyLinks,
    MessageSize,
    NameTooLong,
    NoDevice,
    NoEntry,
    NoLock,
    InsufficientMemory,
    InsufficientSpace,
    NotDirectory,
    NotEmpty,
    NotRecoverable,
    Unsupported,
    NoTty,
    NoSuchDevice,
    Overflow,
    NotPermitted,
    Pipe,
    ReadOnly,
    InvalidSeek,
    TextFileBusy,
    CrossDevice,
}

/// How many cases `error-code` has.
pub const ERROR_CODES: usize = ErrorCode::CrossDevice as usize + 1;

/// `descriptor-type`, by case index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DescriptorType {
    Unknown = 0,
    BlockDevice,
    CharacterDevice,
    Directory,
    Fifo,
    SymbolicLink,
    RegularFile,
    Socket,
}

/// `descriptor-flags` members.
pub mod flags {
    pub const READ: u32 = 1 << 0;
    pub const WRITE: u32 = 1 << 1;
    pub const FILE_INTEGRITY_SYNC: u32 = 1 << 2;
    pub const DATA_INTEGRITY_SYNC: u32 = 1 << 3;
    pub const REQUESTED_WRITE_SYNC: u32 = 1 << 4;
    pub const MUTATE_DIRECTORY: u32 = 1 << 5;
}

/// `open-flags` members.
pub mod open_flags {
    pub const CREATE: u32 = 1 << 0;
    pub const DIRECTORY: u32 = 1 << 1;
    pub const EXCLUSIVE: u32 = 1 << 2;
    pub const TRUNCATE: u32 = 1 << 3;
}

/// `path-flags.symlink-follow`.
pub const SYMLINK_FOLLOW: u32 = 1;

/// Seconds and nanoseconds since the Unix epoch (`wall-clock.datetime`).
pub type Timestamp = (u64, u32);

/// `descriptor-stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub kind: DescriptorType,
    pub link_count: u64,
    pub size: u64,
    pub accessed: Option<Timestamp>,
    pub modified: Option<Timestamp>,
    pub status_changed: Option<Timestamp>,
}

/// Host file descriptors one instance may hold open at once (files,
/// directories and listings it opened; its preopens do not count). Without
/// it, a guest holding thousands of handles could use up the process's
/// descriptors, which connections need too.
pub const MAX_OPEN_FILES: usize = 64;

/// One instance's count of open host file descriptors.
#[derive(Clone, Default)]
pub struct FileLimit(Arc<AtomicUsize>);

/// One counted host file descriptor; uncounted when dropped.
pub struct FdSlot(Arc<AtomicUsize>);

impl FileLimit {
    /// A slot for one more descriptor, or `insufficient-memory` (POSIX's
    /// `EMFILE` has no WASI 0.2 code) when the instance holds its limit.
    pub fn take(&self) -> Result<FdSlot, ErrorCode> {
        if self.0.fetch_add(1, Ordering::Relaxed) >= MAX_OPEN_FILES {
            self.0.fetch_sub(1, Ordering::Relaxed);
            return Err(ErrorCode::InsufficientMemory);
        }
        Ok(FdSlot(self.0.clone()))
    }

    pub fn open(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for FdSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A file opened for reading, shared by its descriptor and the streams
/// reading it; its slot is freed when the last of them is dropped.
pub struct OpenFile {
    file: std::fs::File,
    _slot: FdSlot,
}

impl OpenFile {
    pub fn file(&self) -> &std::fs::File {
        &self.file
    }
}

/// An open `descriptor`: a directory (a preopen or one opened beneath it)
/// or a file, always opened for reading only.
pub enum Descriptor {
    Dir {
        dir: Arc<Dir>,
        /// `None` for a preopen, which the component holds open anyway.
        slot: Option<FdSlot>,
    },
    File(Arc<OpenFile>),
}

/// A `directory-entry-stream`: one pass over a directory's entries.
pub struct DirectoryEntryStream {
    entries: cap_std::fs::ReadDir,
    _slot: FdSlot,
}

/// Refuses what no call may be given: a path naming the root of the host.
pub fn check_path(path: &str) -> Result<(), ErrorCode> {
    if path.starts_with('/') || path.starts_with('\\') {
        return Err(ErrorCode::NotPermitted);
    }
    if path.contains('\0') {
        return Err(ErrorCode::Invalid);
    }
    Ok(())
}

impl Descriptor {
    /// A descriptor for one of the component's preopened directories.
    pub fn preopen(dir: Arc<Dir>) -> Self {
        Descriptor::Dir { dir, slot: None }
    }

    pub fn dir(&self) -> Result<&Dir, ErrorCode> {
        match self {
            Descriptor::Dir { dir, .. } => Ok(dir),
            Descriptor::File(_) => Err(ErrorCode::NotDirectory),
        }
    }

    pub fn file(&self) -> Result<&Arc<OpenFile>, ErrorCode> {
        match self {
            Descriptor::File(file) => Ok(file),
            Descriptor::Dir { .. } => Err(ErrorCode::IsDirectory),
        }
    }

    /// A change to the data of this file (`write`, `set-size`, streams for
    /// writing): never allowed.
    pub fn refuse_file_change(&self) -> ErrorCode {
        match self.file() {
            Ok(_) => ErrorCode::ReadOnly,
            Err(code) => code,
        }
    }

    /// A change beneath this directory at `paths` (create, remove, rename,
    /// link, set times): never allowed.
    pub fn refuse_dir_change(&self, paths: &[&str]) -> ErrorCode {
        if let Err(code) = self.dir() {
            return code;
        }
        match paths.iter().try_for_each(|p| check_path(p)) {
            Ok(()) => ErrorCode::ReadOnly,
            Err(code) => code,
        }
    }

    fn metadata(&self) -> Result<Metadata, ErrorCode> {
        match self {
            Descriptor::Dir { dir, .. } => dir.dir_metadata(),
            Descriptor::File(open) => Metadata::from_file(&open.file),
        }
        .map_err(code)
    }

    fn metadata_at(&self, follow: bool, path: &str) -> Result<Metadata, ErrorCode> {
        let dir = self.dir()?;
        check_path(path)?;
        if follow {
            dir.metadata(path)
        } else {
            dir.symlink_metadata(path)
        }
        .map_err(code)
    }

    pub fn stat(&self) -> Result<Stat, ErrorCode> {
        Ok(stat_of(&self.metadata()?))
    }

    pub fn stat_at(&self, follow: bool, path: &str) -> Result<Stat, ErrorCode> {
        Ok(stat_of(&self.metadata_at(follow, path)?))
    }

    pub fn get_type(&self) -> Result<DescriptorType, ErrorCode> {
        Ok(type_of(self.metadata()?.file_type()))
    }

    /// What identifies the object (device and inode), for `is-same-object`
    /// and `metadata-hash`.
    pub fn identity(&self) -> Result<(u64, u64), ErrorCode> {
        let meta = self.metadata()?;
        Ok((meta.dev(), meta.ino()))
    }

    pub fn identity_at(&self, follow: bool, path: &str) -> Result<(u64, u64), ErrorCode> {
        let meta = self.metadata_at(follow, path)?;
        Ok((meta.dev(), meta.ino()))
    }

    /// `open-at`: a directory or regular file beneath this directory, for
    /// reading, counted against `limit`. Asking for anything that could
    /// change it is `read-only`.
    pub fn open_at(
        &self,
        follow: bool,
        path: &str,
        open: u32,
        requested: u32,
        limit: &FileLimit,
    ) -> Result<Descriptor, ErrorCode> {
        let dir = self.dir()?;
        check_path(path)?;
        let changing = open_flags::CREATE | open_flags::EXCLUSIVE | open_flags::TRUNCATE;
        if open & changing != 0 || requested & (flags::WRITE | flags::MUTATE_DIRECTORY) != 0 {
            return Err(ErrorCode::ReadOnly);
        }
        let meta = self.metadata_at(follow, path)?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            // Not following the link that ends the path: POSIX's `O_NOFOLLOW`.
            return Err(ErrorCode::Loop);
        }
        if !kind.is_dir() && open & open_flags::DIRECTORY != 0 {
            return Err(ErrorCode::NotDirectory);
        }
        // A FIFO or device would block or reach beyond the files.
        if !kind.is_dir() && !kind.is_file() {
            return Err(ErrorCode::NotPermitted);
        }
        let slot = limit.take()?;
        if kind.is_dir() {
            let opened = if follow {
                dir.open_dir(path)
            } else {
                dir.open_dir_nofollow(path)
            };
            return Ok(Descriptor::Dir {
                dir: Arc::new(opened.map_err(code)?),
                slot: Some(slot),
            });
        }
        let mut options = OpenOptions::new();
        options.read(true).follow(if follow {
            FollowSymlinks::Yes
        } else {
            FollowSymlinks::No
        });
        let file = dir.open_with(path, &options).map_err(code)?.into_std();
        // The path could have been replaced between the check and the open.
        if !file.metadata().map_err(code)?.is_file() {
            return Err(ErrorCode::NotPermitted);
        }
        Ok(Descriptor::File(Arc::new(OpenFile { file, _slot: slot })))
    }

    /// `read`: up to `max` bytes at `offset`, and whether the end of the
    /// file was reached.
    pub fn read(&self, max: usize, offset: u64) -> Result<(Vec<u8>, bool), ErrorCode> {
        let bytes = read_at(&self.file()?.file, offset, max).map_err(code)?;
        let end = bytes.len() < max;
        Ok((bytes, end))
    }

    /// `read-directory`, counted against `limit` (a listing holds a descriptor).
    pub fn read_directory(&self, limit: &FileLimit) -> Result<DirectoryEntryStream, ErrorCode> {
        let dir = self.dir()?;
        let slot = limit.take()?;
        Ok(DirectoryEntryStream {
            entries: dir.entries().map_err(code)?,
            _slot: slot,
        })
    }

    /// `readlink-at`: a link pointing at an absolute path is `not-permitted`.
    pub fn readlink_at(&self, path: &str) -> Result<String, ErrorCode> {
        let dir = self.dir()?;
        check_path(path)?;
        let target = dir.read_link(path).map_err(code)?;
        target
            .into_os_string()
            .into_string()
            .map_err(|_| ErrorCode::IllegalByteSequence)
    }
}

impl DirectoryEntryStream {
    /// The next entry, skipping names that are not UTF-8 (which WASI cannot
    /// name) and `.`/`..`.
    pub fn next_entry(&mut self) -> Result<Option<(DescriptorType, String)>, ErrorCode> {
        loop {
            let Some(entry) = self.entries.next() else {
                return Ok(None);
            };
            let entry = entry.map_err(code)?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let kind = entry.file_type().map_or(DescriptorType::Unknown, type_of);
            return Ok(Some((kind, name)));
        }
    }
}

/// Up to `max` bytes of `file` from `offset` (fewer only at its end). The
/// buffer is sized by what the file holds, not by what was asked for.
pub fn read_at(file: &std::fs::File, offset: u64, max: usize) -> io::Result<Vec<u8>> {
    let available = file.metadata()?.len().saturating_sub(offset);
    // A file that grows while read is read as far as it was long.
    let want = max.min(usize::try_from(available).unwrap_or(usize::MAX));
    let mut buf = vec![0; want];
    let filled = read_into(file, offset, &mut buf)?;
    buf.truncate(filled);
    Ok(buf)
}

/// Fills `buf` from `file` at `offset` as far as the file goes (preview 1
/// reads straight into guest memory); how many bytes were read.
pub fn read_into(file: &std::fs::File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(at) = offset.checked_add(filled as u64) else {
            break;
        };
        match pread(file, &mut buf[filled..], at) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(unix)]
fn pread(file: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn pread(file: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

fn type_of(kind: FileType) -> DescriptorType {
    if kind.is_dir() {
        return DescriptorType::Directory;
    }
    if kind.is_file() {
        return DescriptorType::RegularFile;
    }
    if kind.is_symlink() {
        return DescriptorType::SymbolicLink;
    }
    #[cfg(unix)]
    {
        use cap_std::fs::FileTypeExt;
        if kind.is_block_device() {
            return DescriptorType::BlockDevice;
        }
        if kind.is_char_device() {
            return DescriptorType::CharacterDevice;
        }
        if kind.is_fifo() {
            return DescriptorType::Fifo;
        }
        if kind.is_socket() {
            return DescriptorType::Socket;
        }
    }
    DescriptorType::Unknown
}

fn timestamp(time: io::Result<cap_std::time::SystemTime>) -> Option<Timestamp> {
    let since = time.ok()?.into_std().duration_since(UNIX_EPOCH).ok()?;
    Some((since.as_secs(), since.subsec_nanos()))
}

fn stat_of(meta: &Metadata) -> Stat {
    #[cfg(unix)]
    let status_changed = {
        let secs = cap_std::fs::MetadataExt::ctime(meta);
        let nanos = cap_std::fs::MetadataExt::ctime_nsec(meta);
        u64::try_from(secs)
            .ok()
            .zip(u32::try_from(nanos).ok())
            .filter(|(_, n)| *n < 1_000_000_000)
    };
    #[cfg(not(unix))]
    let status_changed = None;
    Stat {
        kind: type_of(meta.file_type()),
        link_count: meta.nlink(),
        size: meta.len(),
        accessed: timestamp(meta.accessed()),
        modified: timestamp(meta.modified()),
        status_changed,
    }
}

/// The `error-code` for a host I/O error. cap-std reports a path that would
/// leave its directory as `PermissionDenied` without an OS error.
pub fn code(e: io::Error) -> ErrorCode {
    #[cfg(unix)]
    if let Some(errno) = e.raw_os_error() {
        return errno_code(errno);
    }
    use io::ErrorKind as K;
    match e.kind() {
        K::NotFound => ErrorCode::NoEntry,
        K::PermissionDenied => ErrorCode::NotPermitted,
        K::AlreadyExists => ErrorCode::Exist,
        K::InvalidInput => ErrorCode::Invalid,
        K::InvalidData => ErrorCode::IllegalByteSequence,
        K::NotADirectory => ErrorCode::NotDirectory,
        K::IsADirectory => ErrorCode::IsDirectory,
        K::DirectoryNotEmpty => ErrorCode::NotEmpty,
        K::ReadOnlyFilesystem => ErrorCode::ReadOnly,
        K::Interrupted => ErrorCode::Interrupted,
        K::WouldBlock => ErrorCode::WouldBlock,
        K::OutOfMemory => ErrorCode::InsufficientMemory,
        K::Unsupported => ErrorCode::Unsupported,
        K::InvalidFilename => ErrorCode::NameTooLong,
        _ => ErrorCode::Io,
    }
}

#[cfg(unix)]
fn errno_code(errno: i32) -> ErrorCode {
    match errno {
        libc::EACCES => ErrorCode::Access,
        libc::EAGAIN => ErrorCode::WouldBlock,
        libc::EALREADY => ErrorCode::Already,
        libc::EBADF => ErrorCode::BadDescriptor,
        libc::EBUSY => ErrorCode::Busy,
        libc::EDEADLK => ErrorCode::Deadlock,
        libc::EDQUOT => ErrorCode::Quota,
        libc::EEXIST => ErrorCode::Exist,
        libc::EFBIG => ErrorCode::FileTooLarge,
        libc::EILSEQ => ErrorCode::IllegalByteSequence,
        libc::EINPROGRESS => ErrorCode::InProgress,
        libc::EINTR => ErrorCode::Interrupted,
        libc::EINVAL => ErrorCode::Invalid,
        libc::EISDIR => ErrorCode::IsDirectory,
        libc::ELOOP => ErrorCode::Loop,
        libc::EMLINK => ErrorCode::TooManyLinks,
        libc::EMFILE | libc::ENFILE => ErrorCode::InsufficientMemory,
        libc::EMSGSIZE => ErrorCode::MessageSize,
        libc::ENAMETOOLONG => ErrorCode::NameTooLong,
        libc::ENODEV => ErrorCode::NoDevice,
        libc::ENOENT => ErrorCode::NoEntry,
        libc::ENOLCK => ErrorCode::NoLock,
        libc::ENOMEM => ErrorCode::InsufficientMemory,
        libc::ENOSPC => ErrorCode::InsufficientSpace,
        libc::ENOTDIR => ErrorCode::NotDirectory,
        libc::ENOTEMPTY => ErrorCode::NotEmpty,
        libc::ENOTSUP => ErrorCode::Unsupported,
        libc::ENOTTY => ErrorCode::NoTty,
        libc::ENXIO => ErrorCode::NoSuchDevice,
        libc::EOVERFLOW => ErrorCode::Overflow,
        libc::EPERM => ErrorCode::NotPermitted,
        libc::EPIPE => ErrorCode::Pipe,
        libc::EROFS => ErrorCode::ReadOnly,
        libc::ESPIPE => ErrorCode::InvalidSeek,
        libc::ETXTBSY => ErrorCode::TextFileBusy,
        // openat2's RESOLVE_BENEATH refusal, should it arrive unmapped.
        libc::EXDEV => ErrorCode::NotPermitted,
        _ => ErrorCode::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;

    /// A directory tree for one test: `a.txt`, `sub/b.txt`, `inside` → `a.txt`,
    /// `outside` → `../..`, `abs` → `/etc/passwd`; returns the tree's root
    /// (the "preopen") and a file beside it the guest must not reach.
    fn tree(name: &str) -> (std::path::PathBuf, Descriptor) {
        let base = std::env::temp_dir().join(format!("flint-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("a.txt"), b"hello world").expect("write");
        std::fs::write(root.join("sub/b.txt"), b"b").expect("write");
        std::fs::write(base.join("secret"), b"secret").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            symlink("a.txt", root.join("inside")).expect("symlink");
            symlink("../secret", root.join("outside")).expect("symlink");
            symlink("/etc/passwd", root.join("abs")).expect("symlink");
        }
        let dir = Dir::open_ambient_dir(&root, ambient_authority()).expect("open");
        (base, Descriptor::preopen(Arc::new(dir)))
    }

    #[test]
    fn paths_stay_inside_the_preopen() {
        let (base, root) = tree("confine");
        let open = |path: &str| {
            root.open_at(true, path, 0, flags::READ, &FileLimit::default())
                .map(|_| ())
        };
        assert_eq!(open("a.txt"), Ok(()));
        assert_eq!(open("sub/../a.txt"), Ok(()));
        assert_eq!(open("/etc/passwd"), Err(ErrorCode::NotPermitted));
        assert_eq!(open("../secret"), Err(ErrorCode::NotPermitted));
        assert_eq!(open("sub/../../secret"), Err(ErrorCode::NotPermitted));
        assert_eq!(open("missing"), Err(ErrorCode::NoEntry));
        assert_eq!(
            root.stat_at(true, "../secret").map(|_| ()),
            Err(ErrorCode::NotPermitted)
        );
        assert_eq!(
            root.read_directory(&FileLimit::default()).map(|_| ()),
            Ok(())
        );
        #[cfg(unix)]
        {
            assert_eq!(open("inside"), Ok(()));
            assert_eq!(open("outside"), Err(ErrorCode::NotPermitted));
            assert_eq!(open("abs"), Err(ErrorCode::NotPermitted));
            assert_eq!(
                root.open_at(false, "inside", 0, flags::READ, &FileLimit::default())
                    .map(|_| ()),
                Err(ErrorCode::Loop)
            );
            assert_eq!(
                root.stat_at(false, "outside").map(|s| s.kind),
                Ok(DescriptorType::SymbolicLink)
            );
            assert_eq!(root.readlink_at("inside").as_deref(), Ok("a.txt"));
            assert_eq!(root.readlink_at("abs"), Err(ErrorCode::NotPermitted));
        }
        // A subdirectory confines as its parent does.
        let sub = root
            .open_at(true, "sub", 0, flags::READ, &FileLimit::default())
            .expect("sub");
        assert_eq!(
            sub.open_at(true, "../a.txt", 0, flags::READ, &FileLimit::default())
                .map(|_| ()),
            Err(ErrorCode::NotPermitted)
        );
        assert_eq!(
            sub.open_at(true, "b.txt", 0, flags::READ, &FileLimit::default())
                .map(|_| ()),
            Ok(())
        );
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn nothing_can_be_changed() {
        let (base, root) = tree("readonly");
        let open = |o: u32, f: u32| {
            root.open_at(true, "a.txt", o, f, &FileLimit::default())
                .map(|_| ())
        };
        assert_eq!(open(0, flags::WRITE), Err(ErrorCode::ReadOnly));
        assert_eq!(
            open(0, flags::READ | flags::MUTATE_DIRECTORY),
            Err(ErrorCode::ReadOnly)
        );
        assert_eq!(
            open(open_flags::CREATE, flags::READ),
            Err(ErrorCode::ReadOnly)
        );
        assert_eq!(
            open(open_flags::TRUNCATE, flags::READ),
            Err(ErrorCode::ReadOnly)
        );
        assert_eq!(
            open(open_flags::EXCLUSIVE, flags::READ),
            Err(ErrorCode::ReadOnly)
        );
        assert_eq!(
            open(open_flags::DIRECTORY, flags::READ),
            Err(ErrorCode::NotDirectory)
        );
        assert_eq!(root.refuse_dir_change(&["new"]), ErrorCode::ReadOnly);
        assert_eq!(root.refuse_dir_change(&["/new"]), ErrorCode::NotPermitted);
        assert_eq!(root.refuse_file_change(), ErrorCode::IsDirectory);
        let file = root
            .open_at(true, "a.txt", 0, flags::READ, &FileLimit::default())
            .expect("open");
        assert_eq!(file.refuse_file_change(), ErrorCode::ReadOnly);
        assert_eq!(file.refuse_dir_change(&["x"]), ErrorCode::NotDirectory);
        // The file is as it was.
        assert_eq!(
            std::fs::read(base.join("root/a.txt")).expect("read"),
            b"hello world"
        );
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn reads_stats_and_listings() {
        let (base, root) = tree("read");
        let file = root
            .open_at(true, "a.txt", 0, flags::READ, &FileLimit::default())
            .expect("open");
        assert_eq!(file.read(5, 0), Ok((b"hello".to_vec(), false)));
        assert_eq!(file.read(100, 6), Ok((b"world".to_vec(), true)));
        assert_eq!(file.read(100, 11), Ok((Vec::new(), true)));
        assert_eq!(file.read(100, u64::MAX), Ok((Vec::new(), true)));
        assert_eq!(root.read(1, 0), Err(ErrorCode::IsDirectory));
        let stat = file.stat().expect("stat");
        assert_eq!(
            (stat.kind, stat.size, stat.link_count),
            (DescriptorType::RegularFile, 11, 1)
        );
        assert!(stat.modified.is_some());
        assert_eq!(root.get_type(), Ok(DescriptorType::Directory));
        assert_eq!(
            root.stat_at(true, "sub").map(|s| s.kind),
            Ok(DescriptorType::Directory)
        );
        let again = root
            .open_at(true, "a.txt", 0, flags::READ, &FileLimit::default())
            .expect("open");
        assert_eq!(file.identity(), again.identity());
        assert_eq!(root.identity_at(true, "a.txt"), file.identity());
        assert_ne!(root.identity(), file.identity());

        let mut entries = Vec::new();
        let mut stream = root.read_directory(&FileLimit::default()).expect("list");
        while let Some(entry) = stream.next_entry().expect("entry") {
            entries.push(entry);
        }
        entries.sort_by(|a, b| a.1.cmp(&b.1));
        let names: Vec<&str> = entries.iter().map(|(_, n)| n.as_str()).collect();
        #[cfg(unix)]
        assert_eq!(names, ["a.txt", "abs", "inside", "outside", "sub"]);
        assert!(entries.contains(&(DescriptorType::Directory, "sub".into())));
        assert!(entries.contains(&(DescriptorType::RegularFile, "a.txt".into())));
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn open_descriptors_are_bounded_and_freed() {
        let (base, root) = tree("limit");
        let limit = FileLimit::default();
        let mut open = Vec::new();
        for _ in 0..MAX_OPEN_FILES {
            open.push(
                root.open_at(true, "a.txt", 0, flags::READ, &limit)
                    .expect("open"),
            );
        }
        assert_eq!(limit.open(), MAX_OPEN_FILES);
        let refused = |r: Result<Descriptor, ErrorCode>| r.map(|_| ()).expect_err("refused");
        assert_eq!(
            refused(root.open_at(true, "sub", 0, flags::READ, &limit)),
            ErrorCode::InsufficientMemory
        );
        assert_eq!(
            root.read_directory(&limit)
                .map(|_| ())
                .expect_err("refused"),
            ErrorCode::InsufficientMemory
        );
        // A failed open gives its slot back; so does a dropped descriptor,
        // once nothing else (a stream) holds its file.
        let file = open.pop().expect("one").file().expect("a file").clone();
        assert_eq!(limit.open(), MAX_OPEN_FILES);
        drop(file);
        assert_eq!(limit.open(), MAX_OPEN_FILES - 1);
        assert_eq!(
            refused(root.open_at(true, "missing", 0, flags::READ, &limit)),
            ErrorCode::NoEntry
        );
        assert_eq!(limit.open(), MAX_OPEN_FILES - 1);
        open.clear();
        assert_eq!(limit.open(), 0);
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn read_at_allocates_by_the_file_not_the_request() {
        let (base, root) = tree("alloc");
        let file = root
            .open_at(true, "a.txt", 0, flags::READ, &FileLimit::default())
            .expect("open");
        let bytes = read_at(file.file().expect("file").file(), 0, usize::MAX).expect("read");
        assert_eq!(bytes, b"hello world");
        assert_eq!(bytes.capacity(), 11);
        let _ = std::fs::remove_dir_all(&base);
    }
}
