//! `wasi:filesystem@0.2.x` (`types` and `preopens`) over the component's
//! `files`, read-only, every path confined to its preopen: the rules live in
//! [`crate::wasi::fs`]; this module is the table and the value conversions.

use wasmi::Error;

use super::io::{InputStream, IoError};
use super::wasi_clocks::{DATETIME, datetime};
use super::{GuestState, drop_fn, host_fn};
use crate::wasi::fs::{
    Descriptor, DirectoryEntryStream, ERROR_CODES, ErrorCode, SYMLINK_FOLLOW, Stat, Timestamp,
    flags,
};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::{option_ty, result_ty};

const ERROR_CODE: Ty = Ty::Variant(&[None; ERROR_CODES]);
const DESCRIPTOR_TYPE: Ty = Ty::Variant(&[None; 8]);
pub(super) const DESCRIPTOR_FLAGS: Ty = Ty::Flags(6);
pub(super) const PATH_FLAGS: Ty = Ty::Flags(1);
pub(super) const OPEN_FLAGS: Ty = Ty::Flags(4);
pub(super) const ADVICE: Ty = Ty::Variant(&[None; 6]);
/// `new-timestamp`: `no-change`, `now`, `timestamp(datetime)`.
const NEW_TIMESTAMP: Ty = Ty::Variant(&[None, None, Some(DATETIME)]);
const DESCRIPTOR_STAT: Ty = Ty::Tuple(&[
    DESCRIPTOR_TYPE,
    Ty::U64, // link-count
    Ty::U64, // size
    option_ty!(DATETIME),
    option_ty!(DATETIME),
    option_ty!(DATETIME),
]);
const DIRECTORY_ENTRY: Ty = Ty::Tuple(&[DESCRIPTOR_TYPE, Ty::String]);
pub(super) const METADATA_HASH_VALUE: Ty = Ty::Tuple(&[Ty::U64, Ty::U64]);
const BYTES: Ty = Ty::List(&Ty::U8);

/// Largest chunk one `read` hands to a guest.
pub(super) const MAX_READ: u64 = 1 << 20;

fn error(code: ErrorCode) -> Value {
    Value::err(Value::case(code as u32, None))
}

fn unit_result(code: ErrorCode) -> Result<Value, Error> {
    Ok(error(code))
}

fn result(value: Result<Value, ErrorCode>) -> Result<Value, Error> {
    Ok(value.map_or_else(error, Value::ok))
}

fn flag_bits(args: &mut Args) -> Result<u32, Error> {
    match args.value()? {
        Value::Flags(bits) => Ok(bits),
        other => Err(Error::new(format!(
            "host bug: expected flags, got {other:?}"
        ))),
    }
}

fn follow(args: &mut Args) -> Result<bool, Error> {
    Ok(flag_bits(args)? & SYMLINK_FOLLOW != 0)
}

pub(super) fn descriptor<'s>(
    state: &'s mut GuestState,
    args: &mut Args,
) -> Result<&'s mut Descriptor, Error> {
    state.host.resources.get::<Descriptor>(args.handle()?)
}

fn timestamp(t: Option<Timestamp>) -> Value {
    Value::option(t.map(|(s, n)| datetime(s, n)))
}

fn stat_value(stat: Stat) -> Value {
    Value::Tuple(vec![
        Value::case(stat.kind as u32, None),
        Value::U64(stat.link_count),
        Value::U64(stat.size),
        timestamp(stat.accessed),
        timestamp(stat.modified),
        timestamp(stat.status_changed),
    ])
}

fn push_descriptor(
    state: &mut GuestState,
    d: Result<Descriptor, ErrorCode>,
) -> Result<Value, Error> {
    match d {
        Ok(d) => Ok(Value::ok(Value::Handle(state.host.resources.push(d)?))),
        Err(code) => unit_result(code),
    }
}

fn read_via_stream(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let file = descriptor(state, &mut args)?.file().cloned();
    let offset = args.u64()?;
    match file {
        Ok(file) => {
            let stream = state.host.resources.push(InputStream::file(file, offset))?;
            Ok(Value::ok(Value::Handle(stream)))
        }
        Err(code) => unit_result(code),
    }
}

/// `write-via-stream`, `append-via-stream`, `set-size`, `write`: never.
fn refuse_file_change(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    unit_result(descriptor(state, &mut args)?.refuse_file_change())
}

/// `set-times`: on a file or a directory, never.
pub(super) fn refuse_change(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    descriptor(state, &mut args)?;
    unit_result(ErrorCode::ReadOnly)
}

/// `create-directory-at`, `remove-directory-at`, `unlink-file-at`: never.
pub(super) fn refuse_change_at(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let path = args.string()?;
    let d = state.host.resources.get::<Descriptor>(handle)?;
    unit_result(d.refuse_dir_change(&[&path]))
}

pub(super) fn set_times_at(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    follow(&mut args)?;
    let path = args.string()?;
    let d = state.host.resources.get::<Descriptor>(handle)?;
    unit_result(d.refuse_dir_change(&[&path]))
}

/// `link-at` and `rename-at`: two directories, two paths, never.
fn refuse_between(
    state: &mut GuestState,
    handle: u32,
    old: &str,
    new_handle: u32,
    new: &str,
) -> Result<Value, Error> {
    let resources = &mut state.host.resources;
    let old_code = resources
        .get::<Descriptor>(handle)?
        .refuse_dir_change(&[old]);
    let new_code = resources
        .get::<Descriptor>(new_handle)?
        .refuse_dir_change(&[new]);
    unit_result(match old_code {
        ErrorCode::ReadOnly => new_code,
        code => code,
    })
}

pub(super) fn link_at(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    follow(&mut args)?;
    let old = args.string()?;
    let new_handle = args.handle()?;
    let new = args.string()?;
    refuse_between(state, handle, &old, new_handle, &new)
}

pub(super) fn rename_at(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let old = args.string()?;
    let new_handle = args.handle()?;
    let new = args.string()?;
    refuse_between(state, handle, &old, new_handle, &new)
}

/// `symlink-at`: a link to an absolute path is `not-permitted`; any other, `read-only`.
pub(super) fn symlink_at(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let old = args.string()?;
    let new = args.string()?;
    let d = state.host.resources.get::<Descriptor>(handle)?;
    unit_result(match d.refuse_dir_change(&[&new]) {
        ErrorCode::ReadOnly if old.starts_with('/') => ErrorCode::NotPermitted,
        code => code,
    })
}

/// `advise`, `sync-data`, `sync`: nothing to do for files read in place.
pub(super) fn nothing_to_do(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    descriptor(state, &mut args)?;
    Ok(Value::ok_unit())
}

/// Every descriptor is open for reading only; a directory never for mutation.
pub(super) fn get_flags(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    descriptor(state, &mut args)?;
    Ok(Value::ok(Value::Flags(flags::READ)))
}

pub(super) fn get_type(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let kind = descriptor(state, &mut args)?.get_type();
    result(kind.map(|k| Value::case(k as u32, None)))
}

fn read(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let len = args.u64()?;
    let offset = args.u64()?;
    let max = len.min(MAX_READ).min(state.host.memory_limit as u64) as usize;
    let d = state.host.resources.get::<Descriptor>(handle)?;
    result(
        d.read(max, offset)
            .map(|(bytes, end)| Value::Tuple(vec![Value::Bytes(bytes), Value::Bool(end)])),
    )
}

fn read_directory(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let d = state.host.resources.get::<Descriptor>(args.handle()?)?;
    let stream = d.read_directory(&state.host.wasi_state.files);
    match stream {
        Ok(stream) => Ok(Value::ok(Value::Handle(state.host.resources.push(stream)?))),
        Err(code) => unit_result(code),
    }
}

pub(super) fn stat(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    result(descriptor(state, &mut args)?.stat().map(stat_value))
}

pub(super) fn stat_at(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let follow = follow(&mut args)?;
    let path = args.string()?;
    let d = state.host.resources.get::<Descriptor>(handle)?;
    result(d.stat_at(follow, &path).map(stat_value))
}

pub(super) fn open_at(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let follow = follow(&mut args)?;
    let path = args.string()?;
    let open = flag_bits(&mut args)?;
    let requested = flag_bits(&mut args)?;
    let d = state.host.resources.get::<Descriptor>(handle)?;
    let opened = d.open_at(follow, &path, open, requested, &state.host.wasi_state.files);
    push_descriptor(state, opened)
}

pub(super) fn readlink_at(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let path = args.string()?;
    let d = state.host.resources.get::<Descriptor>(handle)?;
    result(d.readlink_at(&path).map(Value::String))
}

pub(super) fn is_same_object(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let a = descriptor(state, &mut args)?.identity();
    let b = descriptor(state, &mut args)?.identity();
    Ok(Value::Bool(matches!((a, b), (Ok(a), Ok(b)) if a == b)))
}

fn hash_value(state: &GuestState, identity: (u64, u64)) -> Value {
    let (lower, upper) = state.host.wasi_state.identity_hash(identity);
    Value::Tuple(vec![Value::U64(lower), Value::U64(upper)])
}

pub(super) fn metadata_hash(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let identity = descriptor(state, &mut args)?.identity();
    result(identity.map(|id| hash_value(state, id)))
}

pub(super) fn metadata_hash_at(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let follow = follow(&mut args)?;
    let path = args.string()?;
    let d = state.host.resources.get::<Descriptor>(handle)?;
    let identity = d.identity_at(follow, &path);
    result(identity.map(|id| hash_value(state, id)))
}

fn read_directory_entry(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let stream = state
        .host
        .resources
        .get::<DirectoryEntryStream>(args.handle()?)?;
    result(stream.next_entry().map(|entry| {
        Value::option(entry.map(|(kind, name)| {
            Value::Tuple(vec![Value::case(kind as u32, None), Value::String(name)])
        }))
    }))
}

/// Stream errors carry no filesystem error code.
fn filesystem_error_code(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    state.host.resources.get::<IoError>(args.handle()?)?;
    Ok(Value::none())
}

const UNIT_RESULT: Ty = result_ty!(_, ERROR_CODE);
const HANDLE_RESULT: Ty = result_ty!(Ty::Handle, ERROR_CODE);

pub const TYPES: &[HostFn<GuestState>] = &[
    host_fn!("[method]descriptor.read-via-stream", [Ty::Handle, Ty::U64] -> HANDLE_RESULT, read_via_stream),
    host_fn!("[method]descriptor.write-via-stream", [Ty::Handle, Ty::U64] -> HANDLE_RESULT, refuse_file_change),
    host_fn!("[method]descriptor.append-via-stream", [Ty::Handle] -> HANDLE_RESULT, refuse_file_change),
    host_fn!("[method]descriptor.advise", [Ty::Handle, Ty::U64, Ty::U64, ADVICE] -> UNIT_RESULT, nothing_to_do),
    host_fn!("[method]descriptor.sync-data", [Ty::Handle] -> UNIT_RESULT, nothing_to_do),
    host_fn!("[method]descriptor.get-flags", [Ty::Handle] -> result_ty!(DESCRIPTOR_FLAGS, ERROR_CODE), get_flags),
    host_fn!("[method]descriptor.get-type", [Ty::Handle] -> result_ty!(DESCRIPTOR_TYPE, ERROR_CODE), get_type),
    host_fn!("[method]descriptor.set-size", [Ty::Handle, Ty::U64] -> UNIT_RESULT, refuse_file_change),
    host_fn!("[method]descriptor.set-times", [Ty::Handle, NEW_TIMESTAMP, NEW_TIMESTAMP] -> UNIT_RESULT, refuse_change),
    host_fn!("[method]descriptor.read", [Ty::Handle, Ty::U64, Ty::U64] -> result_ty!(Ty::Tuple(&[BYTES, Ty::Bool]), ERROR_CODE), read),
    host_fn!("[method]descriptor.write", [Ty::Handle, BYTES, Ty::U64] -> result_ty!(Ty::U64, ERROR_CODE), refuse_file_change),
    host_fn!("[method]descriptor.read-directory", [Ty::Handle] -> HANDLE_RESULT, read_directory),
    host_fn!("[method]descriptor.sync", [Ty::Handle] -> UNIT_RESULT, nothing_to_do),
    host_fn!("[method]descriptor.create-directory-at", [Ty::Handle, Ty::String] -> UNIT_RESULT, refuse_change_at),
    host_fn!("[method]descriptor.stat", [Ty::Handle] -> result_ty!(DESCRIPTOR_STAT, ERROR_CODE), stat),
    host_fn!("[method]descriptor.stat-at", [Ty::Handle, PATH_FLAGS, Ty::String] -> result_ty!(DESCRIPTOR_STAT, ERROR_CODE), stat_at),
    host_fn!("[method]descriptor.set-times-at", [Ty::Handle, PATH_FLAGS, Ty::String, NEW_TIMESTAMP, NEW_TIMESTAMP] -> UNIT_RESULT, set_times_at),
    host_fn!("[method]descriptor.link-at", [Ty::Handle, PATH_FLAGS, Ty::String, Ty::Handle, Ty::String] -> UNIT_RESULT, link_at),
    host_fn!("[method]descriptor.open-at", [Ty::Handle, PATH_FLAGS, Ty::String, OPEN_FLAGS, DESCRIPTOR_FLAGS] -> HANDLE_RESULT, open_at),
    host_fn!("[method]descriptor.readlink-at", [Ty::Handle, Ty::String] -> result_ty!(Ty::String, ERROR_CODE), readlink_at),
    host_fn!("[method]descriptor.remove-directory-at", [Ty::Handle, Ty::String] -> UNIT_RESULT, refuse_change_at),
    host_fn!("[method]descriptor.rename-at", [Ty::Handle, Ty::String, Ty::Handle, Ty::String] -> UNIT_RESULT, rename_at),
    host_fn!("[method]descriptor.symlink-at", [Ty::Handle, Ty::String, Ty::String] -> UNIT_RESULT, symlink_at),
    host_fn!("[method]descriptor.unlink-file-at", [Ty::Handle, Ty::String] -> UNIT_RESULT, refuse_change_at),
    host_fn!("[method]descriptor.is-same-object", [Ty::Handle, Ty::Handle] -> Ty::Bool, is_same_object),
    host_fn!("[method]descriptor.metadata-hash", [Ty::Handle] -> result_ty!(METADATA_HASH_VALUE, ERROR_CODE), metadata_hash),
    host_fn!("[method]descriptor.metadata-hash-at", [Ty::Handle, PATH_FLAGS, Ty::String] -> result_ty!(METADATA_HASH_VALUE, ERROR_CODE), metadata_hash_at),
    host_fn!("[method]directory-entry-stream.read-directory-entry", [Ty::Handle] -> result_ty!(option_ty!(DIRECTORY_ENTRY), ERROR_CODE), read_directory_entry),
    host_fn!("filesystem-error-code", [Ty::Handle] -> option_ty!(ERROR_CODE), filesystem_error_code),
    drop_fn!("descriptor", Descriptor),
    drop_fn!("directory-entry-stream", DirectoryEntryStream),
];

/// A descriptor for each of the component's `files` directories, with the
/// path the guest sees it at.
fn get_directories(state: &mut GuestState, _: Args) -> Result<Value, Error> {
    let preopens: Vec<_> = state
        .host
        .wasi_state
        .preopens
        .iter()
        .map(|p| (p.dir.clone(), p.guest_path.clone()))
        .collect();
    let mut entries = Vec::with_capacity(preopens.len());
    for (dir, path) in preopens {
        let handle = state.host.resources.push(Descriptor::preopen(dir))?;
        entries.push(Value::Tuple(vec![
            Value::Handle(handle),
            Value::String(path),
        ]));
    }
    Ok(Value::List(entries))
}

pub const PREOPENS: &[HostFn<GuestState>] = &[host_fn!(
    "get-directories",
    [] -> Ty::List(&Ty::Tuple(&[Ty::Handle, Ty::String])),
    get_directories
)];
