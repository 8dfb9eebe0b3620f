//! The `fd_*` functions: the standard streams, the preopens and what the
//! guest opened beneath them.

use std::sync::Arc;

use super::{
    Cx, Fail, Fd, MAX_IO, Mem, Res, Ret, Stdio, call, errno, fail, fdflags, fds, filetype,
    filetype_of, open_failed, rights, trap, valid,
};
use crate::wasi::WasiState;
use crate::wasi::fs::{self, Descriptor, DescriptorType, OpenFile, Stat};

/// `advice` has 6 cases.
const ADVICE_CASES: u32 = 6;
/// `whence`: `set`, `cur`, `end`.
const WHENCE_SET: i32 = 0;
const WHENCE_CUR: i32 = 1;
const WHENCE_END: i32 = 2;
/// `fstflags`.
pub(super) const FST_ATIM: u16 = 1 << 0;
pub(super) const FST_ATIM_NOW: u16 = 1 << 1;
pub(super) const FST_MTIM: u16 = 1 << 2;
pub(super) const FST_MTIM_NOW: u16 = 1 << 3;

/// `fstflags` that set a time both to a value and to now are `EINVAL`.
pub(super) fn check_fstflags(flags: i32) -> Res<()> {
    let flags = valid(flags as u16, 0b1111)?;
    if flags & (FST_ATIM | FST_ATIM_NOW) == FST_ATIM | FST_ATIM_NOW
        || flags & (FST_MTIM | FST_MTIM_NOW) == FST_MTIM | FST_MTIM_NOW
    {
        return fail(errno::INVAL);
    }
    Ok(())
}

fn table(state: &mut crate::GuestState) -> &mut super::FdTable {
    fds(&mut state.host.wasi_state)
}

/// What a read or write works on, taken out of the table so that the
/// state is free for the I/O.
enum Target {
    Stdin,
    Stdout,
    Stderr,
    File { file: Arc<OpenFile>, pos: u64 },
}

/// The target of `fd_read`/`fd_pread` (`positioned`: at an offset, which
/// the standard streams cannot do: `ESPIPE`).
fn readable(wasi: &mut WasiState, fd: u32, positioned: bool) -> Res<Target> {
    match fds(wasi).get(fd)? {
        Fd::Stdio(Stdio::In) if positioned => fail(errno::SPIPE),
        Fd::Stdio(Stdio::In) => Ok(Target::Stdin),
        Fd::File {
            desc: Descriptor::File(file),
            pos,
            read: true,
            ..
        } => Ok(Target::File {
            file: file.clone(),
            pos: *pos,
        }),
        // Not open for reading (stdout, a directory, no read rights).
        _ => fail(errno::BADF),
    }
}

/// The target of `fd_write`/`fd_pwrite`: only stdout and stderr are
/// writable; files are open for reading only (`EBADF`, as a file opened
/// without write access is).
fn writable(wasi: &mut WasiState, fd: u32, positioned: bool) -> Res<Target> {
    match fds(wasi).get(fd)? {
        Fd::Stdio(Stdio::Out | Stdio::Err) if positioned => fail(errno::SPIPE),
        Fd::Stdio(Stdio::Out) => Ok(Target::Stdout),
        Fd::Stdio(Stdio::Err) => Ok(Target::Stderr),
        _ => fail(errno::BADF),
    }
}

/// Whether to go on to the next buffer after `total` bytes: the first
/// non-empty buffer is always taken whole, later ones while the total stays
/// within [`MAX_IO`].
fn next_buffer(total: usize, len: u32) -> bool {
    total == 0 || total.saturating_add(len as usize) <= MAX_IO
}

/// Reads into `iovs` from stdin or a file at `offset`; how many bytes.
fn read(
    mem: &mut Mem<'_>,
    wasi: &mut WasiState,
    target: &Target,
    iovs: &[(u32, u32)],
) -> Res<usize> {
    let mut total = 0usize;
    for &(buf, len) in iovs.iter().filter(|(_, len)| *len > 0) {
        if !next_buffer(total, len) {
            break;
        }
        let dst = mem.bytes_mut(buf, len)?;
        let n = match target {
            Target::Stdin => match wasi.read_stdin(dst.len()) {
                Some(bytes) => {
                    dst[..bytes.len()].copy_from_slice(&bytes);
                    bytes.len()
                }
                None => 0,
            },
            Target::File { file, pos } => {
                let at = pos.saturating_add(total as u64);
                match fs::read_into(file.file(), at, dst) {
                    Ok(n) => n,
                    // What was read is returned; the error comes next time.
                    Err(_) if total > 0 => break,
                    Err(e) => return Err(fs::code(e).into()),
                }
            }
            Target::Stdout | Target::Stderr => return fail(errno::BADF),
        };
        total += n;
        if n < len as usize {
            break;
        }
    }
    Ok(total)
}

pub(super) fn fd_read(mut caller: Cx<'_>, fd: i32, iovs: i32, iovs_len: i32, ret: i32) -> Ret {
    call(&mut caller, |mem, state| {
        mem.check(ret as u32, 4, 4)?;
        let iovs = mem.iovecs(iovs as u32, iovs_len as u32)?;
        let wasi = &mut state.host.wasi_state;
        let target = readable(wasi, fd as u32, false)?;
        let n = read(mem, wasi, &target, &iovs)?;
        if let Target::File { .. } = target
            && let Fd::File { pos, .. } = fds(wasi).get_mut(fd as u32)?
        {
            *pos = pos.saturating_add(n as u64);
        }
        mem.put_u32(ret as u32, n as u32)
    })
}

pub(super) fn fd_pread(
    mut caller: Cx<'_>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    offset: i64,
    ret: i32,
) -> Ret {
    call(&mut caller, |mem, state| {
        mem.check(ret as u32, 4, 4)?;
        let iovs = mem.iovecs(iovs as u32, iovs_len as u32)?;
        let wasi = &mut state.host.wasi_state;
        let target = match readable(wasi, fd as u32, true)? {
            Target::File { file, .. } => Target::File {
                file,
                pos: offset as u64,
            },
            other => other,
        };
        let n = read(mem, wasi, &target, &iovs)?;
        mem.put_u32(ret as u32, n as u32)
    })
}

/// Writes `iovs` to stdout or stderr. Output past its limit (WAGI's
/// `max_response_bytes`) traps, as it did through wasi-common; the buffer
/// remembers, so the executor reports the response as too large.
fn write(mem: &Mem<'_>, wasi: &mut WasiState, target: &Target, iovs: &[(u32, u32)]) -> Res<usize> {
    let sink = match target {
        Target::Stdout => &mut wasi.stdout,
        Target::Stderr => &mut wasi.stderr,
        Target::Stdin | Target::File { .. } => return fail(errno::BADF),
    };
    let mut total = 0usize;
    for &(buf, len) in iovs.iter().filter(|(_, len)| *len > 0) {
        if !next_buffer(total, len) {
            break;
        }
        sink.write(mem.bytes(buf, len)?).map_err(|full| {
            trap(format!(
                "the guest wrote more than its output limit of {} bytes",
                full.limit
            ))
        })?;
        total += len as usize;
    }
    Ok(total)
}

pub(super) fn fd_write(mut caller: Cx<'_>, fd: i32, iovs: i32, iovs_len: i32, ret: i32) -> Ret {
    call(&mut caller, |mem, state| {
        mem.check(ret as u32, 4, 4)?;
        let iovs = mem.iovecs(iovs as u32, iovs_len as u32)?;
        let wasi = &mut state.host.wasi_state;
        let target = writable(wasi, fd as u32, false)?;
        let n = write(mem, wasi, &target, &iovs)?;
        mem.put_u32(ret as u32, n as u32)
    })
}

pub(super) fn fd_pwrite(
    mut caller: Cx<'_>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    _offset: i64,
    ret: i32,
) -> Ret {
    call(&mut caller, |mem, state| {
        mem.check(ret as u32, 4, 4)?;
        mem.iovecs(iovs as u32, iovs_len as u32)?;
        writable(&mut state.host.wasi_state, fd as u32, true).map(drop)
    })
}

/// A file's position after `fd_seek`; negative is `EINVAL`.
fn seek(file: &OpenFile, pos: u64, offset: i64, whence: i32) -> Res<u64> {
    let base = match whence {
        WHENCE_SET => 0,
        WHENCE_CUR => i128::from(pos),
        WHENCE_END => i128::from(file.file().metadata().map_err(fs::code)?.len()),
        _ => return fail(errno::INVAL),
    };
    let new = base + i128::from(offset);
    if new < 0 {
        return fail(errno::INVAL);
    }
    i64::try_from(new)
        .map(|n| n as u64)
        .map_err(|_| Fail::Errno(errno::OVERFLOW))
}

pub(super) fn fd_seek(mut caller: Cx<'_>, fd: i32, offset: i64, whence: i32, ret: i32) -> Ret {
    call(&mut caller, |mem, state| {
        mem.check(ret as u32, 8, 8)?;
        if !(WHENCE_SET..=WHENCE_END).contains(&whence) {
            return fail(errno::INVAL);
        }
        let new = match table(state).get_mut(fd as u32)? {
            Fd::File {
                desc: Descriptor::File(file),
                pos,
                ..
            } => {
                *pos = seek(file, *pos, offset, whence)?;
                *pos
            }
            Fd::Stdio(_) => return fail(errno::SPIPE),
            _ => return fail(errno::BADF),
        };
        mem.put_u64(ret as u32, new)
    })
}

pub(super) fn fd_tell(mut caller: Cx<'_>, fd: i32, ret: i32) -> Ret {
    call(&mut caller, |mem, state| {
        mem.check(ret as u32, 8, 8)?;
        let pos = match table(state).get(fd as u32)? {
            Fd::File { pos, .. } => *pos,
            Fd::Stdio(_) => return fail(errno::SPIPE),
            Fd::Dir { .. } => return fail(errno::BADF),
        };
        mem.put_u64(ret as u32, pos)
    })
}

pub(super) fn fd_close(mut caller: Cx<'_>, fd: i32) -> Ret {
    call(&mut caller, |_, state| {
        table(state).remove(fd as u32).map(drop)
    })
}

/// `fd_renumber(from, to)`: both must be open; `to` is closed, `from` moves.
pub(super) fn fd_renumber(mut caller: Cx<'_>, from: i32, to: i32) -> Ret {
    call(&mut caller, |_, state| {
        table(state).renumber(from as u32, to as u32)
    })
}

/// A file or a standard stream (`fd_advise`, `fd_sync`, ...): a directory
/// is `EBADF`, as wasi-common answered.
fn not_dir(state: &mut crate::GuestState, fd: i32) -> Res<&mut Fd> {
    match table(state).get_mut(fd as u32)? {
        Fd::Dir { .. } => fail(errno::BADF),
        entry => Ok(entry),
    }
}

pub(super) fn fd_advise(mut caller: Cx<'_>, fd: i32, _offset: i64, _len: i64, advice: i32) -> Ret {
    call(&mut caller, |_, state| {
        if advice as u32 >= ADVICE_CASES {
            return fail(errno::INVAL);
        }
        match not_dir(state, fd)? {
            // Advice is only advice: nothing to do for a file read in place.
            Fd::File { .. } => Ok(()),
            _ => fail(errno::BADF),
        }
    })
}

/// Removed from WASI 0.2, and never possible on read-only files.
pub(super) fn fd_allocate(mut caller: Cx<'_>, fd: i32, _offset: i64, _len: i64) -> Ret {
    call(&mut caller, |_, state| {
        not_dir(state, fd)?;
        fail(errno::NOTSUP)
    })
}

/// Nothing was written, so there is nothing to sync.
pub(super) fn fd_datasync(mut caller: Cx<'_>, fd: i32) -> Ret {
    call(&mut caller, |_, state| not_dir(state, fd).map(drop))
}

pub(super) fn fd_sync(mut caller: Cx<'_>, fd: i32) -> Ret {
    call(&mut caller, |_, state| not_dir(state, fd).map(drop))
}

/// `fdstat`: filetype u8 at 0, flags u16 at 2, rights at 8 and 16.
pub(super) fn fd_fdstat_get(mut caller: Cx<'_>, fd: i32, ret: i32) -> Ret {
    call(&mut caller, |mem, state| {
        let ret = ret as u32;
        mem.check(ret, 24, 8)?;
        let (kind, flags, base, inheriting) = match table(state).get(fd as u32)? {
            // Pipes, not terminals, as wasi-common reported them.
            Fd::Stdio(Stdio::In) => (filetype::UNKNOWN, 0, rights::FD_READ, 0),
            Fd::Stdio(_) => (filetype::UNKNOWN, fdflags::APPEND, rights::FD_WRITE, 0),
            Fd::Dir { .. } => (
                filetype::DIRECTORY,
                0,
                rights::DIRECTORY_BASE,
                rights::DIRECTORY_INHERITING,
            ),
            Fd::File {
                desc,
                read,
                nonblock,
                ..
            } => (
                filetype_of(desc.get_type()?),
                if *nonblock { fdflags::NONBLOCK } else { 0 },
                if *read { rights::FD_READ } else { 0 },
                0,
            ),
        };
        let mut bytes = [0u8; 24];
        bytes[0] = kind;
        bytes[2..4].copy_from_slice(&flags.to_le_bytes());
        bytes[8..16].copy_from_slice(&base.to_le_bytes());
        bytes[16..24].copy_from_slice(&inheriting.to_le_bytes());
        mem.put(ret, 8, &bytes)
    })
}

/// Only `nonblock` can be set (and means nothing for a regular file):
/// `append` would be a write, the sync flags are `EINVAL` (as wasi-common
/// refused them); the standard streams and directories are `EBADF`.
pub(super) fn fd_fdstat_set_flags(mut caller: Cx<'_>, fd: i32, flags: i32) -> Ret {
    call(&mut caller, |_, state| {
        let flags = valid(flags as u16, u64::from(fdflags::ALL))?;
        match table(state).get_mut(fd as u32)? {
            Fd::File { .. } if flags & (fdflags::DSYNC | fdflags::RSYNC | fdflags::SYNC) != 0 => {
                fail(errno::INVAL)
            }
            Fd::File { .. } if flags & fdflags::APPEND != 0 => fail(errno::PERM),
            Fd::File { nonblock, .. } => {
                *nonblock = flags & fdflags::NONBLOCK != 0;
                Ok(())
            }
            _ => fail(errno::BADF),
        }
    })
}

/// Rights are not enforced beyond the access mode, so dropping some is a no-op.
pub(super) fn fd_fdstat_set_rights(mut caller: Cx<'_>, fd: i32, base: i64, inheriting: i64) -> Ret {
    call(&mut caller, |_, state| {
        valid(base as u64, rights::ALL)?;
        valid(inheriting as u64, rights::ALL)?;
        table(state).get(fd as u32).map(drop)
    })
}

/// Nanoseconds since the Unix epoch, 0 when unknown.
fn nanos(t: Option<fs::Timestamp>) -> u64 {
    t.map_or(0, |(s, n)| {
        s.saturating_mul(1_000_000_000).saturating_add(u64::from(n))
    })
}

/// Writes a `filestat`. The inode is the state's keyed hash of the file's
/// identity (as `metadata-hash`), so numbers from the host are not revealed;
/// the device is 1.
pub(super) fn put_filestat(
    mem: &mut Mem<'_>,
    ptr: u32,
    ino: u64,
    kind: u8,
    stat: Option<&Stat>,
) -> Res<()> {
    let mut bytes = [0u8; 64];
    if let Some(stat) = stat {
        bytes[0..8].copy_from_slice(&1u64.to_le_bytes());
        bytes[8..16].copy_from_slice(&ino.to_le_bytes());
        bytes[24..32].copy_from_slice(&stat.link_count.to_le_bytes());
        bytes[32..40].copy_from_slice(&stat.size.to_le_bytes());
        bytes[40..48].copy_from_slice(&nanos(stat.accessed).to_le_bytes());
        bytes[48..56].copy_from_slice(&nanos(stat.modified).to_le_bytes());
        bytes[56..64].copy_from_slice(&nanos(stat.status_changed).to_le_bytes());
    }
    bytes[16] = kind;
    mem.put(ptr, 8, &bytes)
}

/// The `ino` of a file identity, keyed per instance.
pub(super) fn ino(wasi: &WasiState, identity: Result<(u64, u64), fs::ErrorCode>) -> u64 {
    identity.map_or(0, |id| wasi.identity_hash(id).0)
}

pub(super) fn fd_filestat_get(mut caller: Cx<'_>, fd: i32, ret: i32) -> Ret {
    call(&mut caller, |mem, state| {
        let ret = ret as u32;
        mem.check(ret, 64, 8)?;
        let wasi = &mut state.host.wasi_state;
        let desc = match fds(wasi).get(fd as u32)? {
            // A pipe has nothing to report but its (unknown) type.
            Fd::Stdio(_) => return put_filestat(mem, ret, 0, filetype::UNKNOWN, None),
            Fd::Dir { desc, .. } | Fd::File { desc, .. } => super::view(desc),
        };
        let stat = desc.stat()?;
        let ino = ino(wasi, desc.identity());
        put_filestat(mem, ret, ino, filetype_of(stat.kind), Some(&stat))
    })
}

/// Truncating a file open for reading is `EINVAL`, what the host's
/// `ftruncate` said through wasi-common.
pub(super) fn fd_filestat_set_size(mut caller: Cx<'_>, fd: i32, _size: i64) -> Ret {
    call(&mut caller, |_, state| {
        match table(state).get(fd as u32)? {
            Fd::File { .. } => fail(errno::INVAL),
            _ => fail(errno::BADF),
        }
    })
}

/// The files are read-only, their times too (`EPERM`).
pub(super) fn fd_filestat_set_times(
    mut caller: Cx<'_>,
    fd: i32,
    _atim: i64,
    _mtim: i64,
    flags: i32,
) -> Ret {
    call(&mut caller, |_, state| {
        check_fstflags(flags)?;
        match table(state).get(fd as u32)? {
            Fd::Stdio(_) => fail(errno::BADF),
            Fd::Dir { .. } | Fd::File { .. } => fail(errno::PERM),
        }
    })
}

/// `prestat`: tag 0 (a directory) and the length of its name.
pub(super) fn fd_prestat_get(mut caller: Cx<'_>, fd: i32, ret: i32) -> Ret {
    call(&mut caller, |mem, state| {
        mem.check(ret as u32, 8, 4)?;
        let len = match table(state).get(fd as u32)? {
            Fd::Dir {
                preopen: Some(path),
                ..
            } => path.len(),
            Fd::Dir { preopen: None, .. } => return fail(errno::NOTSUP),
            _ => return fail(errno::BADF),
        };
        let mut bytes = [0u8; 8];
        bytes[4..].copy_from_slice(&(len as u32).to_le_bytes());
        mem.put(ret as u32, 4, &bytes)
    })
}

/// The preopen's path, without a NUL. wasi-common answered `ENOTDIR` for a
/// descriptor that is no directory, and so does this.
pub(super) fn fd_prestat_dir_name(mut caller: Cx<'_>, fd: i32, path: i32, len: i32) -> Ret {
    call(&mut caller, |mem, state| {
        let name = match table(state).get(fd as u32) {
            Ok(Fd::Dir {
                preopen: Some(path),
                ..
            }) => path.as_bytes(),
            Ok(Fd::Dir { preopen: None, .. }) => return fail(errno::NOTSUP),
            _ => return fail(errno::NOTDIR),
        };
        if name.len() > len as u32 as usize {
            return fail(errno::NAMETOOLONG);
        }
        mem.put(path as u32, 1, name)
    })
}

/// `dirent`: `d_next` u64, `d_ino` u64, `d_namlen` u32, `d_type` u8, padded to 24.
const DIRENT_SIZE: usize = 24;

/// `fd_readdir`: `.` and `..`, then the directory's entries (names that
/// are not UTF-8 skipped); each entry's cookie is its index plus one. As
/// many entries as fit, the last one cut off if need be, in which case the
/// whole buffer counts as used (so libc knows there is more). The listing
/// is read again from the start on each call, never held for the guest.
pub(super) fn fd_readdir(
    mut caller: Cx<'_>,
    fd: i32,
    buf: i32,
    buf_len: i32,
    cookie: i64,
    ret: i32,
) -> Ret {
    call(&mut caller, |mem, state| {
        let (buf, buf_len, cookie) = (buf as u32, buf_len as u32, cookie as u64);
        mem.check(ret as u32, 4, 4)?;
        mem.bytes(buf, buf_len)?;
        let wasi = &mut state.host.wasi_state;
        let dir = fds(wasi).dir(fd as u32)?;
        let mut entries = dir
            .read_directory(&wasi.files)
            .map_err(|code| open_failed(wasi, code))?;
        let own_ino = ino(wasi, dir.identity());
        let mut used = 0u32;
        for index in 0u64.. {
            let (kind, name) = match index {
                0 => (DescriptorType::Directory, ".".to_owned()),
                1 => (DescriptorType::Directory, "..".to_owned()),
                _ => match entries.next_entry()? {
                    Some(entry) => entry,
                    None => break,
                },
            };
            if index < cookie {
                continue;
            }
            let d_ino = match index {
                0 | 1 => own_ino,
                _ => ino(wasi, dir.identity_at(false, &name)),
            };
            let mut dirent = [0u8; DIRENT_SIZE];
            dirent[0..8].copy_from_slice(&(index + 1).to_le_bytes());
            dirent[8..16].copy_from_slice(&d_ino.to_le_bytes());
            dirent[16..20].copy_from_slice(&(name.len() as u32).to_le_bytes());
            dirent[20] = filetype_of(kind);
            for part in [&dirent[..], name.as_bytes()] {
                let room = (buf_len - used) as usize;
                let n = part.len().min(room);
                mem.put(buf + used, 1, &part[..n])?;
                used += n as u32;
                if n < part.len() {
                    return mem.put_u32(ret as u32, buf_len);
                }
            }
        }
        mem.put_u32(ret as u32, used)
    })
}
