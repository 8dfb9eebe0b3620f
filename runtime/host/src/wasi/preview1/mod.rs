//! WASI preview 1 (`wasi_snapshot_preview1`) for core modules, as a layer
//! over the same [`WasiState`] and [`fs`](super::fs) code that WASI 0.2's
//! tables use, the way wasmtime's preview 1 is a layer over its preview 2.
//!
//! File descriptors 0-2 are the state's stdin, stdout and stderr; 3 on are
//! the component's `files` preopens, in order; descriptors the guest opens
//! take the lowest free number. Files open for reading only: asking to
//! write, create, truncate or append is `EPERM`, as is every change to a
//! directory (the errno wasi-common's read-only directory gave). Sockets are
//! never handed out, so every `sock_*` call is `EBADF`.
//!
//! Every pointer and length from the guest is checked against its `memory`
//! export before use: out of bounds or misaligned traps the invocation (as
//! the witx rules say), invalid enum or flag values are `EINVAL`, a path
//! that is not UTF-8 is `EILSEQ`. Host memory a call allocates is bounded by
//! the guest's memory; one read or write moves its first buffer whole and
//! further buffers only while the total stays within [`MAX_IO`] bytes.

mod fd;
mod path;
mod poll;

use std::ops::Range;
use std::sync::Arc;

use cap_std::fs::Dir;
use wasmi::errors::LinkerError;
use wasmi::{Caller, Error, Extern, Linker};

use super::WasiState;
use super::fs::{Descriptor, DescriptorType, ErrorCode, MAX_OPEN_FILES};
use crate::GuestState;

const MODULE: &str = "wasi_snapshot_preview1";

/// Bytes one `fd_read`/`fd_write` moves through buffers after its first
/// non-empty one; fewer than asked is allowed, and libc loops.
const MAX_IO: usize = 1 << 20;

/// `errno`, as the witx numbers it (only the values Flint returns).
pub(crate) mod errno {
    pub const SUCCESS: u16 = 0;
    pub const ACCES: u16 = 2;
    pub const AGAIN: u16 = 6;
    pub const ALREADY: u16 = 7;
    pub const BADF: u16 = 8;
    pub const BUSY: u16 = 10;
    pub const DEADLK: u16 = 16;
    pub const DQUOT: u16 = 19;
    pub const EXIST: u16 = 20;
    pub const FBIG: u16 = 22;
    pub const ILSEQ: u16 = 25;
    pub const INPROGRESS: u16 = 26;
    pub const INTR: u16 = 27;
    pub const INVAL: u16 = 28;
    pub const IO: u16 = 29;
    pub const ISDIR: u16 = 31;
    pub const LOOP: u16 = 32;
    pub const MFILE: u16 = 33;
    pub const MLINK: u16 = 34;
    pub const MSGSIZE: u16 = 35;
    pub const NAMETOOLONG: u16 = 37;
    pub const NODEV: u16 = 43;
    pub const NOENT: u16 = 44;
    pub const NOLCK: u16 = 46;
    pub const NOMEM: u16 = 48;
    pub const NOSPC: u16 = 51;
    pub const NOTDIR: u16 = 54;
    pub const NOTEMPTY: u16 = 55;
    pub const NOTRECOVERABLE: u16 = 56;
    pub const NOTSUP: u16 = 58;
    pub const NOTTY: u16 = 59;
    pub const NXIO: u16 = 60;
    pub const OVERFLOW: u16 = 61;
    pub const PERM: u16 = 63;
    pub const PIPE: u16 = 64;
    pub const ROFS: u16 = 69;
    pub const SPIPE: u16 = 70;
    pub const TXTBSY: u16 = 74;
    pub const XDEV: u16 = 75;
}

/// `filetype`.
mod filetype {
    pub const UNKNOWN: u8 = 0;
    pub const BLOCK_DEVICE: u8 = 1;
    pub const CHARACTER_DEVICE: u8 = 2;
    pub const DIRECTORY: u8 = 3;
    pub const REGULAR_FILE: u8 = 4;
    pub const SOCKET_STREAM: u8 = 6;
    pub const SYMBOLIC_LINK: u8 = 7;
}

/// `rights` bits.
mod rights {
    pub const FD_DATASYNC: u64 = 1 << 0;
    pub const FD_READ: u64 = 1 << 1;
    pub const FD_SEEK: u64 = 1 << 2;
    pub const FD_FDSTAT_SET_FLAGS: u64 = 1 << 3;
    pub const FD_SYNC: u64 = 1 << 4;
    pub const FD_TELL: u64 = 1 << 5;
    pub const FD_WRITE: u64 = 1 << 6;
    pub const FD_ADVISE: u64 = 1 << 7;
    pub const FD_ALLOCATE: u64 = 1 << 8;
    pub const PATH_CREATE_DIRECTORY: u64 = 1 << 9;
    pub const PATH_CREATE_FILE: u64 = 1 << 10;
    pub const PATH_LINK_SOURCE: u64 = 1 << 11;
    pub const PATH_LINK_TARGET: u64 = 1 << 12;
    pub const PATH_OPEN: u64 = 1 << 13;
    pub const FD_READDIR: u64 = 1 << 14;
    pub const PATH_READLINK: u64 = 1 << 15;
    pub const PATH_RENAME_SOURCE: u64 = 1 << 16;
    pub const PATH_RENAME_TARGET: u64 = 1 << 17;
    pub const PATH_FILESTAT_GET: u64 = 1 << 18;
    pub const PATH_FILESTAT_SET_TIMES: u64 = 1 << 20;
    pub const FD_FILESTAT_GET: u64 = 1 << 21;
    pub const FD_FILESTAT_SET_SIZE: u64 = 1 << 22;
    pub const FD_FILESTAT_SET_TIMES: u64 = 1 << 23;
    pub const PATH_SYMLINK: u64 = 1 << 24;
    pub const PATH_REMOVE_DIRECTORY: u64 = 1 << 25;
    pub const PATH_UNLINK_FILE: u64 = 1 << 26;
    pub const POLL_FD_READWRITE: u64 = 1 << 27;
    /// Every defined bit.
    pub const ALL: u64 = (1 << 30) - 1;

    /// What a directory reports, as wasi-common did (and some guests expect):
    /// its own rights ...
    pub const DIRECTORY_BASE: u64 = PATH_CREATE_DIRECTORY
        | PATH_CREATE_FILE
        | PATH_LINK_SOURCE
        | PATH_LINK_TARGET
        | PATH_OPEN
        | FD_READDIR
        | PATH_READLINK
        | PATH_RENAME_SOURCE
        | PATH_RENAME_TARGET
        | PATH_SYMLINK
        | PATH_REMOVE_DIRECTORY
        | PATH_UNLINK_FILE
        | PATH_FILESTAT_GET
        | PATH_FILESTAT_SET_TIMES
        | FD_FILESTAT_GET
        | FD_FILESTAT_SET_TIMES;
    /// ... and those of what is opened beneath it. wasi-libc asks `path_open`
    /// for these minus what the access mode excludes, so a write must stay
    /// in here to be refused at the open rather than at the first write.
    pub const DIRECTORY_INHERITING: u64 = FD_DATASYNC
        | FD_READ
        | FD_SEEK
        | FD_FDSTAT_SET_FLAGS
        | FD_SYNC
        | FD_TELL
        | FD_WRITE
        | FD_ADVISE
        | FD_ALLOCATE
        | FD_FILESTAT_GET
        | FD_FILESTAT_SET_SIZE
        | FD_FILESTAT_SET_TIMES
        | POLL_FD_READWRITE
        | DIRECTORY_BASE;
}

/// `fdflags` bits.
mod fdflags {
    pub const APPEND: u16 = 1 << 0;
    pub const DSYNC: u16 = 1 << 1;
    pub const NONBLOCK: u16 = 1 << 2;
    pub const RSYNC: u16 = 1 << 3;
    pub const SYNC: u16 = 1 << 4;
    pub const ALL: u16 = (1 << 5) - 1;
}

/// Why a call did not succeed: an errno the guest sees, or a trap.
pub(crate) enum Fail {
    Errno(u16),
    Trap(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Trap(e)
    }
}

impl From<ErrorCode> for Fail {
    fn from(code: ErrorCode) -> Self {
        Fail::Errno(errno_of(code))
    }
}

type Res<T> = Result<T, Fail>;

fn fail<T>(errno: u16) -> Res<T> {
    Err(Fail::Errno(errno))
}

fn trap(message: String) -> Fail {
    Fail::Trap(Error::new(format!("WASI: {message}")))
}

/// A value the witx defines only some bits or cases of: others are `EINVAL`.
fn valid<T: Into<u64> + Copy>(value: T, all: u64) -> Res<T> {
    if value.into() & !all != 0 {
        return fail(errno::INVAL);
    }
    Ok(value)
}

/// The preview 1 errno for a WASI 0.2 `error-code`.
fn errno_of(code: ErrorCode) -> u16 {
    use ErrorCode as E;
    match code {
        E::Access => errno::ACCES,
        E::WouldBlock => errno::AGAIN,
        E::Already => errno::ALREADY,
        E::BadDescriptor => errno::BADF,
        E::Busy => errno::BUSY,
        E::Deadlock => errno::DEADLK,
        E::Quota => errno::DQUOT,
        E::Exist => errno::EXIST,
        E::FileTooLarge => errno::FBIG,
        E::IllegalByteSequence => errno::ILSEQ,
        E::InProgress => errno::INPROGRESS,
        E::Interrupted => errno::INTR,
        E::Invalid => errno::INVAL,
        E::Io => errno::IO,
        E::IsDirectory => errno::ISDIR,
        E::Loop => errno::LOOP,
        E::TooManyLinks => errno::MLINK,
        E::MessageSize => errno::MSGSIZE,
        E::NameTooLong => errno::NAMETOOLONG,
        E::NoDevice => errno::NODEV,
        E::NoEntry => errno::NOENT,
        E::NoLock => errno::NOLCK,
        E::InsufficientMemory => errno::NOMEM,
        E::InsufficientSpace => errno::NOSPC,
        E::NotDirectory => errno::NOTDIR,
        E::NotEmpty => errno::NOTEMPTY,
        E::NotRecoverable => errno::NOTRECOVERABLE,
        E::Unsupported => errno::NOTSUP,
        E::NoTty => errno::NOTTY,
        E::NoSuchDevice => errno::NXIO,
        E::Overflow => errno::OVERFLOW,
        E::NotPermitted => errno::PERM,
        E::Pipe => errno::PIPE,
        E::ReadOnly => errno::ROFS,
        E::InvalidSeek => errno::SPIPE,
        E::TextFileBusy => errno::TXTBSY,
        E::CrossDevice => errno::XDEV,
    }
}

/// A descriptor that ran into the instance's open-file limit is `EMFILE`.
fn open_failed(state: &WasiState, code: ErrorCode) -> Fail {
    if code == ErrorCode::InsufficientMemory && state.files.open() >= MAX_OPEN_FILES {
        return Fail::Errno(errno::MFILE);
    }
    code.into()
}

fn filetype_of(kind: DescriptorType) -> u8 {
    match kind {
        DescriptorType::Unknown | DescriptorType::Fifo => filetype::UNKNOWN,
        DescriptorType::BlockDevice => filetype::BLOCK_DEVICE,
        DescriptorType::CharacterDevice => filetype::CHARACTER_DEVICE,
        DescriptorType::Directory => filetype::DIRECTORY,
        DescriptorType::SymbolicLink => filetype::SYMBOLIC_LINK,
        DescriptorType::RegularFile => filetype::REGULAR_FILE,
        DescriptorType::Socket => filetype::SOCKET_STREAM,
    }
}

/// The guest's linear memory, every access checked.
pub(crate) struct Mem<'a>(&'a mut [u8]);

impl Mem<'_> {
    fn range(&self, ptr: u32, len: u64) -> Res<Range<usize>> {
        let end = u64::from(ptr).saturating_add(len);
        if end > self.0.len() as u64 {
            return Err(trap(format!(
                "out-of-bounds pointer {ptr:#x} (+{len} bytes, memory is {} bytes)",
                self.0.len()
            )));
        }
        Ok(ptr as usize..end as usize)
    }

    /// `len` bytes at `ptr` are in bounds and `ptr` is aligned to `align`.
    fn check(&self, ptr: u32, len: u64, align: u32) -> Res<()> {
        if !ptr.is_multiple_of(align) {
            return Err(trap(format!(
                "misaligned pointer {ptr:#x} (needs {align}-byte alignment)"
            )));
        }
        self.range(ptr, len).map(drop)
    }

    fn bytes(&self, ptr: u32, len: u32) -> Res<&[u8]> {
        let range = self.range(ptr, u64::from(len))?;
        Ok(&self.0[range])
    }

    fn bytes_mut(&mut self, ptr: u32, len: u32) -> Res<&mut [u8]> {
        let range = self.range(ptr, u64::from(len))?;
        Ok(&mut self.0[range])
    }

    fn read<const N: usize>(&self, ptr: u32, align: u32) -> Res<[u8; N]> {
        self.check(ptr, N as u64, align)?;
        let mut out = [0; N];
        out.copy_from_slice(&self.0[ptr as usize..ptr as usize + N]);
        Ok(out)
    }

    fn u32(&self, ptr: u32) -> Res<u32> {
        self.read(ptr, 4).map(u32::from_le_bytes)
    }

    fn put(&mut self, ptr: u32, align: u32, bytes: &[u8]) -> Res<()> {
        self.check(ptr, bytes.len() as u64, align)?;
        self.0[ptr as usize..ptr as usize + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    fn put_u32(&mut self, ptr: u32, value: u32) -> Res<()> {
        self.put(ptr, 4, &value.to_le_bytes())
    }

    fn put_u64(&mut self, ptr: u32, value: u64) -> Res<()> {
        self.put(ptr, 8, &value.to_le_bytes())
    }

    /// A path or other string argument: in bounds, and UTF-8 or `EILSEQ`.
    fn str(&self, ptr: u32, len: u32) -> Res<&str> {
        std::str::from_utf8(self.bytes(ptr, len)?).map_err(|_| Fail::Errno(errno::ILSEQ))
    }

    /// An `iovec`/`ciovec` array: (pointer, length) pairs, each buffer in bounds.
    fn iovecs(&self, ptr: u32, count: u32) -> Res<Vec<(u32, u32)>> {
        // The array itself is in memory, so the list is bounded by it.
        self.check(ptr, u64::from(count) * 8, 4)?;
        (0..count)
            .map(|i| {
                let at = ptr + i * 8;
                let (buf, len) = (self.u32(at)?, self.u32(at + 4)?);
                self.range(buf, u64::from(len))?;
                Ok((buf, len))
            })
            .collect()
    }
}

/// Which of the standard streams.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stdio {
    In,
    Out,
    Err,
}

/// One open file descriptor.
pub(crate) enum Fd {
    Stdio(Stdio),
    Dir {
        desc: Descriptor,
        /// The path the guest sees a preopen at; `None` for one it opened.
        preopen: Option<String>,
    },
    File {
        desc: Descriptor,
        pos: u64,
        /// Opened with `fd_read` rights (without them reads are `EBADF`).
        read: bool,
        nonblock: bool,
    },
}

/// The instance's preview 1 descriptors, made from its [`WasiState`] on the
/// first call. Bounded: what a guest opens counts against the state's
/// open-file limit, and renumbering only moves descriptors.
#[derive(Default)]
pub(crate) struct FdTable {
    slots: Vec<Option<Fd>>,
    ready: bool,
}

impl FdTable {
    fn get(&self, fd: u32) -> Res<&Fd> {
        match self.slots.get(fd as usize) {
            Some(Some(entry)) => Ok(entry),
            _ => fail(errno::BADF),
        }
    }

    fn get_mut(&mut self, fd: u32) -> Res<&mut Fd> {
        match self.slots.get_mut(fd as usize) {
            Some(Some(entry)) => Ok(entry),
            _ => fail(errno::BADF),
        }
    }

    /// The lowest free descriptor, as POSIX gives out.
    fn push(&mut self, entry: Fd) -> u32 {
        match self.slots.iter().position(Option::is_none) {
            Some(free) => {
                self.slots[free] = Some(entry);
                free as u32
            }
            None => {
                self.slots.push(Some(entry));
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn remove(&mut self, fd: u32) -> Res<Fd> {
        match self.slots.get_mut(fd as usize).and_then(Option::take) {
            Some(entry) => Ok(entry),
            None => fail(errno::BADF),
        }
    }

    /// Moves `from` to `to`, closing what was there; both must be open.
    fn renumber(&mut self, from: u32, to: u32) -> Res<()> {
        self.get(from)?;
        self.get(to)?;
        if from != to {
            let entry = self.slots[from as usize].take();
            self.slots[to as usize] = entry;
        }
        Ok(())
    }

    /// A directory descriptor to work on without holding the table: the
    /// same directory, not counted again. Not a directory: `EBADF` (as
    /// wasi-common's table answered).
    fn dir(&self, fd: u32) -> Res<Descriptor> {
        match self.get(fd)? {
            Fd::Dir { desc, .. } => Ok(view(desc)),
            _ => fail(errno::BADF),
        }
    }
}

/// Another handle on the directory or file `desc` is, holding no slot of its own.
fn view(desc: &Descriptor) -> Descriptor {
    match desc {
        Descriptor::Dir { dir, .. } => Descriptor::preopen(dir.clone()),
        Descriptor::File(file) => Descriptor::File(file.clone()),
    }
}

/// The instance's descriptor table, set up from its state on first use
/// (the executor fills the state before the guest runs).
fn fds(state: &mut WasiState) -> &mut FdTable {
    if !state.fds.ready {
        let preopens: Vec<(Arc<Dir>, String)> = state
            .preopens
            .iter()
            .map(|p| (p.dir.clone(), p.guest_path.clone()))
            .collect();
        let table = &mut state.fds;
        table.ready = true;
        table.slots = vec![
            Some(Fd::Stdio(Stdio::In)),
            Some(Fd::Stdio(Stdio::Out)),
            Some(Fd::Stdio(Stdio::Err)),
        ];
        for (dir, path) in preopens {
            table.slots.push(Some(Fd::Dir {
                desc: Descriptor::preopen(dir),
                preopen: Some(path),
            }));
        }
    }
    &mut state.fds
}

/// Runs one call with the guest's memory and state: its result is the
/// errno the guest gets, or a trap.
fn call(
    caller: &mut Caller<'_, GuestState>,
    f: impl FnOnce(&mut Mem<'_>, &mut GuestState) -> Res<()>,
) -> Result<i32, Error> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Err(Error::new(
            "WASI: the module exports no `memory`, which preview 1 needs",
        ));
    };
    let (data, state) = memory.data_and_store_mut(caller);
    match f(&mut Mem(data), state) {
        Ok(()) => Ok(i32::from(errno::SUCCESS)),
        Err(Fail::Errno(errno)) => Ok(i32::from(errno)),
        Err(Fail::Trap(e)) => Err(e),
    }
}

type Ret = Result<i32, Error>;
type Cx<'a> = Caller<'a, GuestState>;

/// Adds every function of `wasi_snapshot_preview1` to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> Result<(), LinkerError> {
    use fd::*;
    use path::*;
    use poll::*;
    macro_rules! link {
        ($($name:ident),+ $(,)?) => {
            $( linker.func_wrap(MODULE, stringify!($name), $name)?; )+
        };
    }
    link!(
        args_get,
        args_sizes_get,
        environ_get,
        environ_sizes_get,
        clock_res_get,
        clock_time_get,
        fd_advise,
        fd_allocate,
        fd_close,
        fd_datasync,
        fd_fdstat_get,
        fd_fdstat_set_flags,
        fd_fdstat_set_rights,
        fd_filestat_get,
        fd_filestat_set_size,
        fd_filestat_set_times,
        fd_pread,
        fd_prestat_get,
        fd_prestat_dir_name,
        fd_pwrite,
        fd_read,
        fd_readdir,
        fd_renumber,
        fd_seek,
        fd_sync,
        fd_tell,
        fd_write,
        path_create_directory,
        path_filestat_get,
        path_filestat_set_times,
        path_link,
        path_open,
        path_readlink,
        path_remove_directory,
        path_rename,
        path_symlink,
        path_unlink_file,
        poll_oneoff,
        proc_exit,
        proc_raise,
        sched_yield,
        random_get,
        sock_accept,
        sock_recv,
        sock_send,
        sock_shutdown,
    );
    Ok(())
}

/// Writes `strings` as C strings into `buf` and their addresses into `ptrs`.
fn write_strings<'s>(
    mem: &mut Mem<'_>,
    ptrs: u32,
    buf: u32,
    strings: impl ExactSizeIterator<Item = [&'s str; 3]> + Clone,
) -> Res<()> {
    let (count, size) = sizes(strings.clone())?;
    mem.check(ptrs, u64::from(count) * 4, 4)?;
    mem.range(buf, u64::from(size))?;
    let mut at = buf;
    for (i, parts) in strings.enumerate() {
        mem.put_u32(ptrs + 4 * i as u32, at)?;
        for part in parts {
            mem.put(at, 1, part.as_bytes())?;
            at += part.len() as u32;
        }
        mem.put(at, 1, &[0])?;
        at += 1;
    }
    Ok(())
}

/// How many strings and how many bytes they take as C strings.
fn sizes<'s>(strings: impl ExactSizeIterator<Item = [&'s str; 3]>) -> Res<(u32, u32)> {
    let count = u32::try_from(strings.len()).map_err(|_| Fail::Errno(errno::OVERFLOW))?;
    let size = strings.fold(0u64, |n, parts| {
        n + parts.iter().map(|p| p.len() as u64).sum::<u64>() + 1
    });
    let size = u32::try_from(size).map_err(|_| Fail::Errno(errno::OVERFLOW))?;
    Ok((count, size))
}

fn args(state: &WasiState) -> impl ExactSizeIterator<Item = [&str; 3]> + Clone {
    state.args.iter().map(|a| [a.as_str(), "", ""])
}

/// `KEY=VALUE`, in the state's order (wasi-libc's `getenv` takes the first).
fn environ(state: &WasiState) -> impl ExactSizeIterator<Item = [&str; 3]> + Clone {
    state.env.iter().map(|(k, v)| [k.as_str(), "=", v.as_str()])
}

fn args_get(mut caller: Cx<'_>, argv: i32, buf: i32) -> Ret {
    call(&mut caller, |mem, state| {
        write_strings(mem, argv as u32, buf as u32, args(&state.host.wasi_state))
    })
}

fn args_sizes_get(mut caller: Cx<'_>, count: i32, size: i32) -> Ret {
    call(&mut caller, |mem, state| {
        mem.check(count as u32, 4, 4)?;
        mem.check(size as u32, 4, 4)?;
        let (n, bytes) = sizes(args(&state.host.wasi_state))?;
        mem.put_u32(count as u32, n)?;
        mem.put_u32(size as u32, bytes)
    })
}

fn environ_get(mut caller: Cx<'_>, environ_ptr: i32, buf: i32) -> Ret {
    call(&mut caller, |mem, state| {
        let env = environ(&state.host.wasi_state);
        write_strings(mem, environ_ptr as u32, buf as u32, env)
    })
}

fn environ_sizes_get(mut caller: Cx<'_>, count: i32, size: i32) -> Ret {
    call(&mut caller, |mem, state| {
        mem.check(count as u32, 4, 4)?;
        mem.check(size as u32, 4, 4)?;
        let (n, bytes) = sizes(environ(&state.host.wasi_state))?;
        mem.put_u32(count as u32, n)?;
        mem.put_u32(size as u32, bytes)
    })
}

/// `clockid`: realtime and monotonic; the CPU-time clocks are `EBADF` (as
/// in wasi-common), anything else `EINVAL`.
mod clockid {
    pub const REALTIME: u32 = 0;
    pub const MONOTONIC: u32 = 1;
    pub const THREAD_CPUTIME_ID: u32 = 3;
}

fn check_clock(id: i32) -> Res<u32> {
    match id as u32 {
        id @ (clockid::REALTIME | clockid::MONOTONIC) => Ok(id),
        id if id <= clockid::THREAD_CPUTIME_ID => fail(errno::BADF),
        _ => fail(errno::INVAL),
    }
}

/// Nanoseconds since the Unix epoch; 0 on a board whose clock is before it.
fn realtime_now() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

fn clock_res_get(mut caller: Cx<'_>, id: i32, ret: i32) -> Ret {
    call(&mut caller, |mem, _| {
        mem.check(ret as u32, 8, 8)?;
        check_clock(id)?;
        mem.put_u64(ret as u32, 1)
    })
}

/// The monotonic clock is the instance's (the one `wasi:clocks` reads).
fn clock_time_get(mut caller: Cx<'_>, id: i32, _precision: i64, ret: i32) -> Ret {
    call(&mut caller, |mem, state| {
        mem.check(ret as u32, 8, 8)?;
        let now = match check_clock(id)? {
            clockid::REALTIME => realtime_now(),
            _ => state.host.wasi_state.monotonic_now(),
        };
        mem.put_u64(ret as u32, now)
    })
}

/// Ends the invocation with `status`; the executor counts 0 as success.
/// Outside WASI's range `[0, 126)` it is a trap, as in wasi-common.
fn proc_exit(_: Cx<'_>, status: i32) -> Result<(), Error> {
    if (0..126).contains(&status) {
        return Err(Error::i32_exit(status));
    }
    Err(Error::new(format!(
        "WASI: proc_exit({}) is outside the exit status range [0, 126)",
        status as u32
    )))
}

/// `signal` has 31 cases; raising any of them traps (wasi-common did too).
fn proc_raise(mut caller: Cx<'_>, signal: i32) -> Ret {
    call(&mut caller, |_, _| {
        if signal as u32 > 30 {
            return fail(errno::INVAL);
        }
        Err(trap(format!("proc_raise({signal}) is not supported")))
    })
}

fn sched_yield(mut caller: Cx<'_>) -> Ret {
    call(&mut caller, |_, _| Ok(()))
}

/// The operating system's CSPRNG, as `wasi:random`, straight into guest memory.
fn random_get(mut caller: Cx<'_>, buf: i32, len: i32) -> Ret {
    call(&mut caller, |mem, _| {
        let bytes = mem.bytes_mut(buf as u32, len as u32)?;
        crate::interfaces::wasi_random::fill(bytes)?;
        Ok(())
    })
}

/// No descriptor is ever a socket: `EBADF`, as wasi-common answered for
/// every descriptor that is not one (after checking the flags).
fn not_a_socket(state: &mut GuestState, fd: i32) -> Res<()> {
    fds(&mut state.host.wasi_state).get(fd as u32)?;
    fail(errno::BADF)
}

fn sock_accept(mut caller: Cx<'_>, fd: i32, flags: i32, _ret: i32) -> Ret {
    call(&mut caller, |_, state| {
        valid(flags as u32, u64::from(fdflags::ALL))?;
        not_a_socket(state, fd)
    })
}

fn sock_recv(
    mut caller: Cx<'_>,
    fd: i32,
    _iovs: i32,
    _iovs_len: i32,
    flags: i32,
    _ret_size: i32,
    _ret_flags: i32,
) -> Ret {
    call(&mut caller, |_, state| {
        // `riflags`: `recv_peek`, `recv_waitall`.
        valid(flags as u32, 0b11)?;
        not_a_socket(state, fd)
    })
}

fn sock_send(
    mut caller: Cx<'_>,
    fd: i32,
    _iovs: i32,
    _iovs_len: i32,
    flags: i32,
    _ret: i32,
) -> Ret {
    call(&mut caller, |_, state| {
        // `siflags` has no members.
        valid(flags as u32, 0)?;
        not_a_socket(state, fd)
    })
}

fn sock_shutdown(mut caller: Cx<'_>, fd: i32, how: i32) -> Ret {
    call(&mut caller, |_, state| {
        // `sdflags`: `rd`, `wr`.
        valid(how as u32, 0b11)?;
        not_a_socket(state, fd)
    })
}
