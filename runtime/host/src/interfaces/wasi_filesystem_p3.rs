//! `wasi:filesystem@0.3.x` over the component's `files`, read-only and
//! confined exactly as 0.2's (`crate::wasi::fs` holds the rules; the 0.2
//! functions do the work). What changed is the shape of values: reads and
//! listings are streams with a future for their result, `error-code` and
//! `descriptor-type` lost `would-block`/`unknown` and gained
//! `other(option<string>)`, and timestamps are `system-clock.instant`s.
//!
//! `0.3.0-rc-2026-01-06` still has 0.2's enums and `async func`s returning
//! the result of a write; `0.3.0-rc-2026-03-15` is `0.3.0`. One table,
//! written once in [`types_table`], serves both layouts, chosen by the
//! const parameter `RC` (`true`: the 2026-01-06 candidate).

use std::sync::Arc;

use wasmi::Error;

use super::wasi_filesystem::{
    ADVICE, DESCRIPTOR_FLAGS, MAX_READ, METADATA_HASH_VALUE, OPEN_FLAGS, PATH_FLAGS, descriptor,
    get_flags, get_type, is_same_object, link_at, metadata_hash, metadata_hash_at, nothing_to_do,
    open_at, readlink_at, refuse_change, refuse_change_at, rename_at, set_times_at, stat, stat_at,
    symlink_at,
};
use super::wasi_p3::{INSTANT, ready_future};
use super::{GuestState, drop_fn, host_fn};
use crate::wasi::fs::{
    Descriptor, DescriptorType, DirectoryEntryStream, ERROR_CODES, ErrorCode, OpenFile, read_at,
};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::component::{SourceRead, StreamSource};
use flint_engine::{option_ty, result_ty};

/// `other(option<string>)`, the case 0.3.0 added to both enums.
const OTHER: Option<Ty> = Some(option_ty!(Ty::String));

/// 0.3.0's `error-code`: 0.2's cases without `would-block`, then `other`.
const ERROR_CODE: Ty = Ty::Variant(&ERROR_CASES);
const ERROR_CASES: [Option<Ty>; ERROR_CODES] = {
    let mut cases = [None; ERROR_CODES];
    cases[ERROR_CODES - 1] = OTHER;
    cases
};
/// The 2026-01-06 candidate's: 0.2's cases without `would-block`.
const ERROR_CODE_RC: Ty = Ty::Variant(&[None; ERROR_CODES - 1]);

/// 0.3.0's `descriptor-type`: 0.2's cases without `unknown`, then `other`.
const DESCRIPTOR_TYPE: Ty = Ty::Variant(&[None, None, None, None, None, None, None, OTHER]);
/// The 2026-01-06 candidate's: 0.2's `enum`, `unknown` first.
const DESCRIPTOR_TYPE_RC: Ty = Ty::Variant(&[None; 8]);

const NEW_TIMESTAMP: Ty = Ty::Variant(&[None, None, Some(INSTANT)]);

const UNIT_RESULT: Ty = result_ty!(_, ERROR_CODE);
const UNIT_RESULT_RC: Ty = result_ty!(_, ERROR_CODE_RC);

const fn unit_result(rc: bool) -> &'static Ty {
    if rc { &UNIT_RESULT_RC } else { &UNIT_RESULT }
}

/// 0.2's case index of `code` in 0.3's `error-code`. `would-block` is gone:
/// nothing Flint's files do can block, so it never arises; were it to, it
/// reads as `io`.
fn error_case(code: ErrorCode) -> u32 {
    match code {
        ErrorCode::Access => 0,
        ErrorCode::WouldBlock => ErrorCode::Io as u32 - 1,
        code => code as u32 - 1,
    }
}

/// `descriptor-type` of `kind` in the layout `rc` names.
fn descriptor_type<const RC: bool>(kind: u32) -> Value {
    match kind {
        _ if RC => Value::case(kind, None),
        0 => Value::case(7, Some(Value::none())), // unknown: other(none)
        kind => Value::case(kind - 1, None),
    }
}

fn descriptor_type_of<const RC: bool>(kind: DescriptorType) -> Value {
    descriptor_type::<RC>(kind as u32)
}

/// A 0.2 `error-code` value as 0.3's.
fn convert_error(value: Value) -> Value {
    match value {
        Value::Variant(code, None) => {
            let case = match code {
                0 => 0,
                1 => error_case(ErrorCode::WouldBlock),
                code => code - 1,
            };
            Value::case(case, None)
        }
        other => other,
    }
}

/// `err(code)`: the same case index in both layouts (the 2026-01-06
/// candidate only lacks `other`, the last case).
fn error(code: ErrorCode) -> Value {
    Value::err(Value::case(error_case(code), None))
}

/// A 0.2 `result<T, error-code>` as 0.3's, `ok` converted by `ok`.
fn convert_result(value: Value, ok: impl FnOnce(Value) -> Value) -> Value {
    match value {
        Value::Variant(0, Some(payload)) => Value::ok(ok(*payload)),
        Value::Variant(1, Some(code)) => Value::err(convert_error(*code)),
        other => other,
    }
}

/// 0.2's `datetime` (unsigned seconds) as an `instant`.
fn instant(value: Value) -> Value {
    match value {
        Value::Tuple(mut fields) if fields.len() == 2 => {
            if let Value::U64(seconds) = fields[0] {
                fields[0] = Value::S64(i64::try_from(seconds).unwrap_or(i64::MAX));
            }
            Value::Tuple(fields)
        }
        other => other,
    }
}

fn option_instant(value: Value) -> Value {
    match value {
        Value::Variant(1, Some(t)) => Value::some(instant(*t)),
        other => other,
    }
}

/// 0.2's `descriptor-stat` as 0.3's.
fn convert_stat<const RC: bool>(value: Value) -> Value {
    let Value::Tuple(fields) = value else {
        return value;
    };
    let fields = fields
        .into_iter()
        .enumerate()
        .map(|(i, field)| match (i, field) {
            (0, Value::Variant(kind, None)) => descriptor_type::<RC>(kind),
            (0, field) | (1 | 2, field) => field,
            (_, field) => option_instant(field),
        })
        .collect();
    Value::Tuple(fields)
}

/// A 0.3 entry that is the 0.2 function `inner` with its result converted.
macro_rules! converted {
    ($($name:ident => $inner:ident, $convert:expr;)+) => {
        $(fn $name<const RC: bool>(state: &mut GuestState, args: Args) -> Result<Value, Error> {
            $inner(state, args).map(|value| convert_result(value, $convert))
        })+
    };
}

converted! {
    unit_p3 => nothing_to_do, |v| v;
    refuse_change_p3 => refuse_change, |v| v;
    refuse_change_at_p3 => refuse_change_at, |v| v;
    set_times_at_p3 => set_times_at, |v| v;
    link_at_p3 => link_at, |v| v;
    rename_at_p3 => rename_at, |v| v;
    symlink_at_p3 => symlink_at, |v| v;
    get_flags_p3 => get_flags, |v| v;
    get_type_p3 => get_type, |v| match v {
        Value::Variant(kind, None) => descriptor_type::<RC>(kind),
        v => v,
    };
    stat_p3 => stat, convert_stat::<RC>;
    stat_at_p3 => stat_at, convert_stat::<RC>;
    open_at_p3 => open_at, |v| v;
    readlink_at_p3 => readlink_at, |v| v;
    metadata_hash_p3 => metadata_hash, |v| v;
    metadata_hash_at_p3 => metadata_hash_at, |v| v;
}

/// A file's bytes from an offset, as a `stream<u8>`.
struct FileSource {
    file: Arc<OpenFile>,
    offset: u64,
}

impl StreamSource for FileSource {
    fn read(&mut self, max: usize) -> SourceRead {
        let max = max.min(MAX_READ as usize);
        match read_at(self.file.file(), self.offset, max) {
            Ok(bytes) if !bytes.is_empty() => {
                self.offset += bytes.len() as u64;
                SourceRead::Bytes(bytes)
            }
            // The result future was settled when the stream was made; a
            // file that fails part-way (it lives on the host's own disk)
            // ends early, and the reader sees the end.
            Ok(_) | Err(_) => SourceRead::End,
        }
    }
}

/// What a read-only stream's result future says: `ok`, or why nothing
/// could be read at all.
fn stream_result(code: Option<ErrorCode>) -> Value {
    code.map_or_else(Value::ok_unit, error)
}

/// The pair `read-via-stream` and `read-directory` return.
fn stream_pair<const RC: bool>(
    state: &mut GuestState,
    elem: &'static Ty,
    source: Box<dyn StreamSource>,
    code: Option<ErrorCode>,
) -> Result<Value, Error> {
    let stream = state.tasks.new_stream_from(Some(elem), source)?;
    let result = ready_future(state, unit_result(RC), stream_result(code))?;
    Ok(Value::Tuple(vec![Value::Handle(stream), result]))
}

/// A stream with nothing in it (the result future says why).
struct Empty;

impl StreamSource for Empty {
    fn read(&mut self, _: usize) -> SourceRead {
        SourceRead::End
    }
}

fn read_via_stream<const RC: bool>(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let file = descriptor(state, &mut args)?.file().cloned();
    let offset = args.u64()?;
    match file {
        Ok(file) => stream_pair::<RC>(state, &Ty::U8, Box::new(FileSource { file, offset }), None),
        Err(code) => stream_pair::<RC>(state, &Ty::U8, Box::new(Empty), Some(code)),
    }
}

/// `write-via-stream` and `append-via-stream`: the data stream is dropped
/// unread (the guest's writes see the reader gone) and the result is 0.2's
/// answer: `read-only` for a file, `is-directory` for a directory.
fn refuse_write<const RC: bool>(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let code = descriptor(state, &mut args)?.refuse_file_change();
    let id = state.tasks.take_reader(args.handle()?, false)?;
    state.tasks.drop_reader(id);
    if RC {
        Ok(error(code))
    } else {
        ready_future(state, unit_result(RC), error(code))
    }
}

/// Entries one read of a listing hands over at most (each costs a host
/// call into the directory and the guest's allocations for its name).
const MAX_ENTRIES: usize = 64;

/// A directory's entries as a `stream<directory-entry>`.
struct EntrySource<const RC: bool>(DirectoryEntryStream);

impl<const RC: bool> StreamSource for EntrySource<RC> {
    fn read(&mut self, max: usize) -> SourceRead {
        let mut entries = Vec::new();
        while entries.len() < max.min(MAX_ENTRIES) {
            // An entry that cannot be read ends the listing, as with a file.
            let Ok(Some((kind, name))) = self.0.next_entry() else {
                break;
            };
            entries.push(Value::Tuple(vec![
                descriptor_type_of::<RC>(kind),
                Value::String(name),
            ]));
        }
        if entries.is_empty() {
            SourceRead::End
        } else {
            SourceRead::Values(entries)
        }
    }
}

const DIRECTORY_ENTRY: Ty = Ty::Tuple(&[DESCRIPTOR_TYPE, Ty::String]);
const DIRECTORY_ENTRY_RC: Ty = Ty::Tuple(&[DESCRIPTOR_TYPE_RC, Ty::String]);

fn read_directory<const RC: bool>(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let d = state.host.resources.get::<Descriptor>(args.handle()?)?;
    let listing = d.read_directory(&state.host.wasi_state.files);
    let elem = if RC {
        &DIRECTORY_ENTRY_RC
    } else {
        &DIRECTORY_ENTRY
    };
    match listing {
        Ok(listing) => stream_pair::<RC>(state, elem, Box::new(EntrySource::<RC>(listing)), None),
        Err(code) => stream_pair::<RC>(state, elem, Box::new(Empty), Some(code)),
    }
}

/// `descriptor`'s methods in the layout `$rc` names, with its types.
macro_rules! types_table {
    ($rc:literal, $error:expr, $kind:expr, $write:expr) => {{
        const E: Ty = $error;
        const UNIT: Ty = result_ty!(_, E);
        const STAT: Ty = Ty::Tuple(&[
            $kind,
            Ty::U64, // link-count
            Ty::U64, // size
            option_ty!(INSTANT),
            option_ty!(INSTANT),
            option_ty!(INSTANT),
        ]);
        const HASH: Ty = result_ty!(METADATA_HASH_VALUE, E);
        const PAIR: Ty = Ty::Tuple(&[Ty::Handle, Ty::Handle]);
        &[
            host_fn!("[method]descriptor.read-via-stream", [Ty::Handle, Ty::U64] -> PAIR, read_via_stream::<$rc>),
            host_fn!("[method]descriptor.write-via-stream", [Ty::Handle, Ty::Handle, Ty::U64] -> $write, refuse_write::<$rc>),
            host_fn!("[method]descriptor.append-via-stream", [Ty::Handle, Ty::Handle] -> $write, refuse_write::<$rc>),
            host_fn!("[method]descriptor.advise", [Ty::Handle, Ty::U64, Ty::U64, ADVICE] -> UNIT, unit_p3::<$rc>),
            host_fn!("[method]descriptor.sync-data", [Ty::Handle] -> UNIT, unit_p3::<$rc>),
            host_fn!("[method]descriptor.get-flags", [Ty::Handle] -> result_ty!(DESCRIPTOR_FLAGS, E), get_flags_p3::<$rc>),
            host_fn!("[method]descriptor.get-type", [Ty::Handle] -> result_ty!($kind, E), get_type_p3::<$rc>),
            host_fn!("[method]descriptor.set-size", [Ty::Handle, Ty::U64] -> UNIT, refuse_size::<$rc>),
            host_fn!("[method]descriptor.set-times", [Ty::Handle, NEW_TIMESTAMP, NEW_TIMESTAMP] -> UNIT, refuse_change_p3::<$rc>),
            host_fn!("[method]descriptor.read-directory", [Ty::Handle] -> PAIR, read_directory::<$rc>),
            host_fn!("[method]descriptor.sync", [Ty::Handle] -> UNIT, unit_p3::<$rc>),
            host_fn!("[method]descriptor.create-directory-at", [Ty::Handle, Ty::String] -> UNIT, refuse_change_at_p3::<$rc>),
            host_fn!("[method]descriptor.stat", [Ty::Handle] -> result_ty!(STAT, E), stat_p3::<$rc>),
            host_fn!("[method]descriptor.stat-at", [Ty::Handle, PATH_FLAGS, Ty::String] -> result_ty!(STAT, E), stat_at_p3::<$rc>),
            host_fn!("[method]descriptor.set-times-at", [Ty::Handle, PATH_FLAGS, Ty::String, NEW_TIMESTAMP, NEW_TIMESTAMP] -> UNIT, set_times_at_p3::<$rc>),
            host_fn!("[method]descriptor.link-at", [Ty::Handle, PATH_FLAGS, Ty::String, Ty::Handle, Ty::String] -> UNIT, link_at_p3::<$rc>),
            host_fn!("[method]descriptor.open-at", [Ty::Handle, PATH_FLAGS, Ty::String, OPEN_FLAGS, DESCRIPTOR_FLAGS] -> result_ty!(Ty::Handle, E), open_at_p3::<$rc>),
            host_fn!("[method]descriptor.readlink-at", [Ty::Handle, Ty::String] -> result_ty!(Ty::String, E), readlink_at_p3::<$rc>),
            host_fn!("[method]descriptor.remove-directory-at", [Ty::Handle, Ty::String] -> UNIT, refuse_change_at_p3::<$rc>),
            host_fn!("[method]descriptor.rename-at", [Ty::Handle, Ty::String, Ty::Handle, Ty::String] -> UNIT, rename_at_p3::<$rc>),
            host_fn!("[method]descriptor.symlink-at", [Ty::Handle, Ty::String, Ty::String] -> UNIT, symlink_at_p3::<$rc>),
            host_fn!("[method]descriptor.unlink-file-at", [Ty::Handle, Ty::String] -> UNIT, refuse_change_at_p3::<$rc>),
            host_fn!("[method]descriptor.is-same-object", [Ty::Handle, Ty::Handle] -> Ty::Bool, is_same_object),
            host_fn!("[method]descriptor.metadata-hash", [Ty::Handle] -> HASH, metadata_hash_p3::<$rc>),
            host_fn!("[method]descriptor.metadata-hash-at", [Ty::Handle, PATH_FLAGS, Ty::String] -> HASH, metadata_hash_at_p3::<$rc>),
            drop_fn!("descriptor", Descriptor),
        ]
    }};
}

/// `set-size`: 0.2's answer (`read-only`, `is-directory`).
fn refuse_size<const RC: bool>(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let code = descriptor(state, &mut args)?.refuse_file_change();
    Ok(error(code))
}

pub const TYPES: &[HostFn<GuestState>] =
    types_table!(false, ERROR_CODE, DESCRIPTOR_TYPE, Ty::Handle);
pub const TYPES_RC_2026_01_06: &[HostFn<GuestState>] =
    types_table!(true, ERROR_CODE_RC, DESCRIPTOR_TYPE_RC, UNIT_RESULT_RC);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_keep_their_names_across_the_layouts() {
        // 0.3 dropped `would-block` (0.2's case 1): later cases move down.
        assert_eq!(error_case(ErrorCode::Access), 0);
        assert_eq!(error_case(ErrorCode::Already), 1);
        assert_eq!(error_case(ErrorCode::ReadOnly), 32);
        assert_eq!(error_case(ErrorCode::NotPermitted), 30);
        assert_eq!(error_case(ErrorCode::CrossDevice), 35);
        assert_eq!(error_case(ErrorCode::WouldBlock), error_case(ErrorCode::Io));
        assert_eq!(
            convert_error(Value::case(ErrorCode::ReadOnly as u32, None)),
            Value::case(32, None)
        );
    }

    #[test]
    fn descriptor_types_follow_each_layout() {
        let dir = DescriptorType::Directory;
        assert_eq!(descriptor_type_of::<false>(dir), Value::case(2, None));
        assert_eq!(descriptor_type_of::<true>(dir), Value::case(3, None));
        assert_eq!(
            descriptor_type_of::<false>(DescriptorType::Unknown),
            Value::case(7, Some(Value::none()))
        );
        assert_eq!(
            descriptor_type_of::<true>(DescriptorType::Unknown),
            Value::case(0, None)
        );
    }

    #[test]
    fn a_stat_becomes_instants() {
        let stat = Value::Tuple(vec![
            Value::case(DescriptorType::RegularFile as u32, None),
            Value::U64(1),
            Value::U64(5),
            Value::some(Value::Tuple(vec![Value::U64(7), Value::U32(8)])),
            Value::none(),
            Value::none(),
        ]);
        let Value::Tuple(fields) = convert_stat::<false>(stat) else {
            panic!("a record");
        };
        assert_eq!(fields[0], Value::case(5, None));
        assert_eq!(fields[2], Value::U64(5));
        assert_eq!(
            fields[3],
            Value::some(Value::Tuple(vec![Value::S64(7), Value::U32(8)]))
        );
    }

    #[test]
    fn layouts_match_the_wit() {
        // 37 cases (36 of them empty) and an option<string> payload: a
        // byte of discriminant, then the option (4-aligned, 12 bytes).
        assert_eq!(ERROR_CODE.size(), 16);
        assert_eq!(ERROR_CODE_RC.size(), 1);
        assert_eq!(DESCRIPTOR_TYPE.size(), 16);
        assert_eq!(DESCRIPTOR_TYPE_RC.size(), 1);
        // directory-entry: the type, then a string (pointer and length).
        assert_eq!(DIRECTORY_ENTRY.size(), 24);
        assert_eq!(DIRECTORY_ENTRY_RC.size(), 12);
        // new-timestamp: discriminant, then an 8-aligned instant.
        assert_eq!(NEW_TIMESTAMP.size(), 24);
        // Both layouts name every function once.
        assert_eq!(TYPES.len(), TYPES_RC_2026_01_06.len());
        for (a, b) in TYPES.iter().zip(TYPES_RC_2026_01_06) {
            assert_eq!(a.name, b.name);
        }
    }
}
