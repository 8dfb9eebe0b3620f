//! The `path_*` functions: paths beneath a directory descriptor, resolved
//! by [`fs`] (cap-std) so that none leaves its preopen. Opening and reading
//! work; every change is `EPERM`, after the descriptor and the path were
//! checked, as wasi-common's read-only directory answered.

use super::fd::{check_fstflags, ino, put_filestat};
use super::{
    Cx, Fd, Res, Ret, call, errno, fail, fdflags, fds, filetype_of, open_failed, rights, valid,
    view,
};
use crate::GuestState;
use crate::wasi::fs::{self, Descriptor};

/// `lookupflags.symlink_follow`, its only member.
const SYMLINK_FOLLOW: u32 = 1;
/// `oflags`.
const O_CREAT: u16 = 1 << 0;
const O_DIRECTORY: u16 = 1 << 1;
const O_EXCL: u16 = 1 << 2;
const O_TRUNC: u16 = 1 << 3;

fn follow(flags: i32) -> Res<bool> {
    Ok(valid(flags as u32, u64::from(SYMLINK_FOLLOW))? != 0)
}

/// The directory `fd` (`EBADF` if it is none) and the path beneath it.
fn dir_and_path(
    mem: &super::Mem<'_>,
    state: &mut GuestState,
    fd: i32,
    path: i32,
    len: i32,
) -> Res<(Descriptor, String)> {
    let dir = fds(&mut state.host.wasi_state).dir(fd as u32)?;
    let path = mem.str(path as u32, len as u32)?.to_owned();
    Ok((dir, path))
}

/// Opens a file or directory for reading. Write rights, `O_CREAT`,
/// `O_EXCL`, `O_TRUNC` or `O_APPEND` are `EPERM` whether or not the path
/// exists; the sync flags are `ENOTSUP` (as in wasi-common). A standard
/// stream or file as the directory is `ENOTDIR`.
#[allow(clippy::too_many_arguments)]
pub(super) fn path_open(
    mut caller: Cx<'_>,
    fd: i32,
    dirflags: i32,
    path: i32,
    path_len: i32,
    oflags: i32,
    base: i64,
    inheriting: i64,
    flags: i32,
    ret: i32,
) -> Ret {
    call(&mut caller, |mem, state| {
        mem.check(ret as u32, 4, 4)?;
        let follow = follow(dirflags)?;
        let oflags = valid(oflags as u16, 0b1111)?;
        let base = valid(base as u64, rights::ALL)?;
        valid(inheriting as u64, rights::ALL)?;
        let flags = valid(flags as u16, u64::from(fdflags::ALL))?;
        let wasi = &mut state.host.wasi_state;
        let dir = match fds(wasi).get(fd as u32)? {
            Fd::Dir { desc, .. } => view(desc),
            _ => return fail(errno::NOTDIR),
        };
        let path = mem.str(path as u32, path_len as u32)?;
        if base & rights::FD_WRITE != 0
            || oflags & (O_CREAT | O_EXCL | O_TRUNC) != 0
            || flags & fdflags::APPEND != 0
        {
            return fail(errno::PERM);
        }
        if flags & (fdflags::DSYNC | fdflags::RSYNC | fdflags::SYNC) != 0 {
            return fail(errno::NOTSUP);
        }
        let open = if oflags & O_DIRECTORY != 0 {
            fs::open_flags::DIRECTORY
        } else {
            0
        };
        let desc = dir
            .open_at(follow, path, open, fs::flags::READ, &wasi.files)
            .map_err(|code| open_failed(wasi, code))?;
        let entry = match desc {
            Descriptor::Dir { .. } => Fd::Dir {
                desc,
                preopen: None,
            },
            Descriptor::File(_) => Fd::File {
                desc,
                pos: 0,
                read: base & rights::FD_READ != 0,
                nonblock: flags & fdflags::NONBLOCK != 0,
            },
        };
        let new = fds(wasi).push(entry);
        mem.put_u32(ret as u32, new)
    })
}

pub(super) fn path_filestat_get(
    mut caller: Cx<'_>,
    fd: i32,
    flags: i32,
    path: i32,
    path_len: i32,
    ret: i32,
) -> Ret {
    call(&mut caller, |mem, state| {
        mem.check(ret as u32, 64, 8)?;
        let follow = follow(flags)?;
        let (dir, path) = dir_and_path(mem, state, fd, path, path_len)?;
        let stat = dir.stat_at(follow, &path)?;
        let ino = ino(&state.host.wasi_state, dir.identity_at(follow, &path));
        put_filestat(mem, ret as u32, ino, filetype_of(stat.kind), Some(&stat))
    })
}

/// A symbolic link's target, cut to `buf_len` bytes as POSIX `readlink`
/// does; one pointing at an absolute path is `EPERM` (it leads outside).
pub(super) fn path_readlink(
    mut caller: Cx<'_>,
    fd: i32,
    path: i32,
    path_len: i32,
    buf: i32,
    buf_len: i32,
    ret: i32,
) -> Ret {
    call(&mut caller, |mem, state| {
        mem.check(ret as u32, 4, 4)?;
        let (dir, path) = dir_and_path(mem, state, fd, path, path_len)?;
        let target = dir.readlink_at(&path)?;
        let n = target.len().min(buf_len as u32 as usize);
        mem.put(buf as u32, 1, &target.as_bytes()[..n])?;
        mem.put_u32(ret as u32, n as u32)
    })
}

/// A change beneath directory `fd` at `path`: never allowed.
fn refuse(mem: &super::Mem<'_>, state: &mut GuestState, fd: i32, path: i32, len: i32) -> Res<()> {
    dir_and_path(mem, state, fd, path, len)?;
    fail(errno::PERM)
}

pub(super) fn path_create_directory(mut caller: Cx<'_>, fd: i32, path: i32, len: i32) -> Ret {
    call(&mut caller, |mem, state| refuse(mem, state, fd, path, len))
}

pub(super) fn path_remove_directory(mut caller: Cx<'_>, fd: i32, path: i32, len: i32) -> Ret {
    call(&mut caller, |mem, state| refuse(mem, state, fd, path, len))
}

pub(super) fn path_unlink_file(mut caller: Cx<'_>, fd: i32, path: i32, len: i32) -> Ret {
    call(&mut caller, |mem, state| refuse(mem, state, fd, path, len))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn path_filestat_set_times(
    mut caller: Cx<'_>,
    fd: i32,
    flags: i32,
    path: i32,
    len: i32,
    _atim: i64,
    _mtim: i64,
    fst_flags: i32,
) -> Ret {
    call(&mut caller, |mem, state| {
        follow(flags)?;
        check_fstflags(fst_flags)?;
        refuse(mem, state, fd, path, len)
    })
}

/// Following a symbolic link at the source is `EINVAL`, as in wasi-common.
#[allow(clippy::too_many_arguments)]
pub(super) fn path_link(
    mut caller: Cx<'_>,
    old_fd: i32,
    old_flags: i32,
    old_path: i32,
    old_len: i32,
    new_fd: i32,
    new_path: i32,
    new_len: i32,
) -> Ret {
    call(&mut caller, |mem, state| {
        let follow = follow(old_flags)?;
        let table = fds(&mut state.host.wasi_state);
        table.dir(old_fd as u32)?;
        table.dir(new_fd as u32)?;
        if follow {
            return fail(errno::INVAL);
        }
        mem.str(old_path as u32, old_len as u32)?;
        refuse(mem, state, new_fd, new_path, new_len)
    })
}

pub(super) fn path_rename(
    mut caller: Cx<'_>,
    old_fd: i32,
    old_path: i32,
    old_len: i32,
    new_fd: i32,
    new_path: i32,
    new_len: i32,
) -> Ret {
    call(&mut caller, |mem, state| {
        let table = fds(&mut state.host.wasi_state);
        table.dir(old_fd as u32)?;
        table.dir(new_fd as u32)?;
        mem.str(old_path as u32, old_len as u32)?;
        refuse(mem, state, new_fd, new_path, new_len)
    })
}

pub(super) fn path_symlink(
    mut caller: Cx<'_>,
    old_path: i32,
    old_len: i32,
    fd: i32,
    new_path: i32,
    new_len: i32,
) -> Ret {
    call(&mut caller, |mem, state| {
        fds(&mut state.host.wasi_state).dir(fd as u32)?;
        mem.str(old_path as u32, old_len as u32)?;
        refuse(mem, state, fd, new_path, new_len)
    })
}
