//! `wasi:cli`, `wasi:clocks` and `wasi:random` at WASI 0.3 (`0.3.0` and
//! the release candidates SDKs still import): the 0.2 tables wherever the
//! WIT did not change, and the standard streams and clock waits the async
//! ABI gave new shapes. Every function finishes before it returns (the
//! engine adapts an async lowering), so a wait sleeps the worker thread,
//! bounded by the invocation's deadline as `wasi:io/poll` is.

use wasmi::Error;

use super::io::wait_for_clock;
use super::wasi_cli::{get_arguments, get_environment, initial_cwd};
use super::wasi_clocks::{monotonic_now, monotonic_resolution};
use super::wasi_random::insecure_seed;
use super::{GuestState, host_fn};
use crate::wasi::stdio::Sink;
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::component::{SinkClosed, SourceRead, StreamSink, StreamSource};
use flint_engine::{option_ty, result_ty};

/// `wasi:cli/types.error-code`: `io`, `illegal-byte-sequence`, `pipe`.
const CLI_ERROR_CODE: Ty = Ty::Variant(&[None; 3]);
pub(super) const CLI_RESULT: Ty = result_ty!(_, CLI_ERROR_CODE);

pub const ENVIRONMENT: &[HostFn<GuestState>] = &[
    host_fn!("get-environment", [] -> Ty::List(&Ty::Tuple(&[Ty::String, Ty::String])), get_environment),
    host_fn!("get-arguments", [] -> Ty::List(&Ty::String), get_arguments),
    host_fn!("get-initial-cwd", [] -> option_ty!(Ty::String), initial_cwd),
];

/// A stream of bytes the host already holds (stdin), then its end.
pub(super) struct BytesSource(pub(super) Vec<u8>);

impl StreamSource for BytesSource {
    fn read(&mut self, max: usize) -> SourceRead {
        if self.0.is_empty() {
            return SourceRead::End;
        }
        let rest = self.0.split_off(max.min(self.0.len()));
        SourceRead::Bytes(std::mem::replace(&mut self.0, rest))
    }
}

/// A future that is already `value`, as a handle the guest reads.
pub(super) fn ready_future(
    state: &mut GuestState,
    ty: &'static Ty,
    value: Value,
) -> Result<Value, Error> {
    let handle = state.tasks.new_future_from(Some(ty), value)?;
    Ok(Value::Handle(handle))
}

/// `read-via-stream`: what is left of the instance's stdin (a WAGI body,
/// an MQTT payload; nothing for an HTTP handler), shared with 0.2's stdin,
/// and a result that is `ok` (reading bytes the host holds cannot fail).
fn read_stdin(state: &mut GuestState, _: Args) -> Result<Value, Error> {
    let bytes = state
        .host
        .wasi_state
        .read_stdin(usize::MAX)
        .unwrap_or_default();
    let stream = state
        .tasks
        .new_stream_from(Some(&Ty::U8), Box::new(BytesSource(bytes)))?;
    let result = ready_future(state, &CLI_RESULT, Value::ok_unit())?;
    Ok(Value::Tuple(vec![Value::Handle(stream), result]))
}

pub const STDIN: &[HostFn<GuestState>] = &[host_fn!(
    "read-via-stream",
    [] -> Ty::Tuple(&[Ty::Handle, Ty::Handle]),
    read_stdin
)];

/// The host end of a guest's stdout or stderr stream: where 0.2's goes.
struct StdioSink(Sink);

impl StreamSink for StdioSink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), SinkClosed> {
        // Past a WAGI buffer's limit the buffer remembers the overflow (the
        // executor reports it); the guest sees its stream closed.
        self.0.write(bytes).map_err(|_| SinkClosed)
    }

    fn close(&mut self) {
        // Dropping a log sink logs its last, unterminated line.
        self.0 = Sink::Discard;
    }
}

/// Takes the guest's `stream<u8>` argument and sends what it writes to `sink`.
fn attach_stdio(state: &mut GuestState, args: &mut Args, sink: Sink) -> Result<(), Error> {
    let id = state.tasks.take_reader(args.handle()?, false)?;
    state.tasks.attach_sink(id, Box::new(StdioSink(sink)));
    Ok(())
}

/// `write-via-stream` (0.3.0): the result is a future, `ok` at once: the
/// guest's writes land in the log or buffer synchronously and never fail
/// in a way the result could report after the stream has closed.
fn write_stdout(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let sink = state.host.wasi_state.stdout.share();
    attach_stdio(state, &mut args, sink)?;
    ready_future(state, &CLI_RESULT, Value::ok_unit())
}

fn write_stderr(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let sink = state.host.wasi_state.stderr.share();
    attach_stdio(state, &mut args, sink)?;
    ready_future(state, &CLI_RESULT, Value::ok_unit())
}

pub const STDOUT: &[HostFn<GuestState>] =
    &[host_fn!("write-via-stream", [Ty::Handle] -> Ty::Handle, write_stdout)];
pub const STDERR: &[HostFn<GuestState>] =
    &[host_fn!("write-via-stream", [Ty::Handle] -> Ty::Handle, write_stderr)];

/// `0.3.0-rc-2026-01-06`: `write-via-stream` is an `async func` returning
/// the result itself.
fn write_stdout_rc(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let sink = state.host.wasi_state.stdout.share();
    attach_stdio(state, &mut args, sink)?;
    Ok(Value::ok_unit())
}

fn write_stderr_rc(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let sink = state.host.wasi_state.stderr.share();
    attach_stdio(state, &mut args, sink)?;
    Ok(Value::ok_unit())
}

pub const STDOUT_RC_2026_01_06: &[HostFn<GuestState>] =
    &[host_fn!("write-via-stream", [Ty::Handle] -> CLI_RESULT, write_stdout_rc)];
pub const STDERR_RC_2026_01_06: &[HostFn<GuestState>] =
    &[host_fn!("write-via-stream", [Ty::Handle] -> CLI_RESULT, write_stderr_rc)];

/// `wait-until(mark)`: sleeps until the monotonic clock reads `mark`; past
/// the deadline the invocation ends at once.
fn wait_until(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let when = args.u64()?;
    wait_for_clock(state, when)?;
    Ok(Value::unit())
}

fn wait_for(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let duration = args.u64()?;
    let when = state
        .host
        .wasi_state
        .monotonic_now()
        .saturating_add(duration);
    wait_for_clock(state, when)?;
    Ok(Value::unit())
}

pub const MONOTONIC_CLOCK: &[HostFn<GuestState>] = &[
    host_fn!("now", [] -> Ty::U64, monotonic_now),
    host_fn!("get-resolution", [] -> Ty::U64, monotonic_resolution),
    host_fn!("wait-until", [Ty::U64], wait_until),
    host_fn!("wait-for", [Ty::U64], wait_for),
];

/// `system-clock.instant`: seconds (signed) and nanoseconds since the epoch.
pub(super) const INSTANT: Ty = Ty::Tuple(&[Ty::S64, Ty::U32]);

fn system_now(_: &mut GuestState, _: Args) -> Result<Value, Error> {
    // Before 1970 (a board without a real-time clock) reads as 1970.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    Ok(Value::Tuple(vec![
        Value::S64(seconds),
        Value::U32(since.subsec_nanos()),
    ]))
}

pub const SYSTEM_CLOCK: &[HostFn<GuestState>] = &[
    host_fn!("now", [] -> INSTANT, system_now),
    // A duration in nanoseconds, as the monotonic clock's.
    host_fn!("get-resolution", [] -> Ty::U64, monotonic_resolution),
];

/// Flint's guests live in UTC, as with 0.2's `timezone`.
fn iana_id(_: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::some(Value::string("UTC")))
}

fn utc_offset(_: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    args.value()?;
    Ok(Value::some(Value::S64(0)))
}

fn timezone_debug(_: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::string("UTC"))
}

pub const TIMEZONE: &[HostFn<GuestState>] = &[
    host_fn!("iana-id", [] -> option_ty!(Ty::String), iana_id),
    host_fn!("utc-offset", [INSTANT] -> option_ty!(Ty::S64), utc_offset),
    host_fn!("to-debug-string", [] -> Ty::String, timezone_debug),
];

/// `insecure-seed` was renamed `get-insecure-seed`; `random` and `insecure`
/// are 0.2's tables.
pub const INSECURE_SEED: &[HostFn<GuestState>] = &[host_fn!(
    "get-insecure-seed",
    [] -> Ty::Tuple(&[Ty::U64, Ty::U64]),
    insecure_seed
)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_source_hands_out_at_most_what_is_asked_then_ends() {
        let mut source = BytesSource(b"hello".to_vec());
        assert!(matches!(source.read(3), SourceRead::Bytes(b) if b == b"hel"));
        assert!(matches!(source.read(10), SourceRead::Bytes(b) if b == b"lo"));
        assert!(matches!(source.read(10), SourceRead::End));
    }

    #[test]
    fn a_stdio_sink_writes_where_the_instance_stdout_goes() {
        let (sink, buffer) = Sink::buffer(4);
        let mut stream = StdioSink(sink.share());
        assert_eq!(stream.write(b"abc"), Ok(()));
        // Past the buffer's limit the guest sees its stream closed.
        assert_eq!(stream.write(b"de"), Err(SinkClosed));
        stream.close();
        let buffer = buffer.read().expect("lock");
        assert_eq!(buffer.room(), 1);
    }

    #[test]
    fn layouts_match_the_wit() {
        // result<_, error-code>: a discriminant byte and the enum's byte.
        assert_eq!(CLI_RESULT.size(), 2);
        // instant: s64 seconds, u32 nanoseconds, 8-aligned.
        assert_eq!(INSTANT.size(), 16);
        assert_eq!(option_ty!(Ty::S64).size(), 16);
    }
}
