//! `wasi:io@0.2.0`: streams, pollables and errors. Every body is complete in
//! host memory before a guest reads it and is collected whole before it is
//! sent, and stdin, stdout, stderr and files never make a guest wait, so
//! streams never block and their pollables are always ready. Two kinds of
//! pollable do wait: one on an outbound HTTP response, which polling sends,
//! and one on the monotonic clock, which polling sleeps for (never past the
//! invocation's deadline).

use std::sync::Arc;
use std::time::Instant;

use wasmi::Error;

use super::{GuestState, Resource, drop_fn, host_fn, outgoing_handler};
use crate::HostState;
use crate::wasi::fs::{self, OpenFile};
use flint_engine::canon::{Args, HandleTable, HostFn, Ty, Value};
use flint_engine::result_ty;

/// `stream-error`: `last-operation-failed(own<error>)` or `closed`.
const STREAM_ERROR: Ty = Ty::Variant(&[Some(Ty::Handle), None]);
const BYTES: Ty = Ty::List(&Ty::U8);
/// Largest chunk one `read` hands to a guest.
const MAX_READ: u64 = 1 << 20;

pub struct InputStream {
    source: Source,
}

enum Source {
    /// Bytes the host holds (an incoming body).
    Bytes { data: Vec<u8>, pos: usize },
    /// The instance's stdin, whose position every stdin stream shares.
    Stdin,
    /// A file of the component's `files`, from `offset` on.
    File { file: Arc<OpenFile>, offset: u64 },
}

/// What one read got.
enum Read {
    Data(Vec<u8>),
    Closed,
    Failed(String),
}

impl InputStream {
    pub fn new(data: Vec<u8>) -> Self {
        Self {
            source: Source::Bytes { data, pos: 0 },
        }
    }

    pub(crate) fn stdin() -> Self {
        Self {
            source: Source::Stdin,
        }
    }

    pub(crate) fn file(file: Arc<OpenFile>, offset: u64) -> Self {
        Self {
            source: Source::File { file, offset },
        }
    }
}

/// Reads up to `len` bytes (at most [`MAX_READ`], and never more than the
/// instance's memory could take) from input stream `handle`.
fn read_from(host: &mut HostState, handle: u32, len: u64) -> Result<Read, Error> {
    let max = len.min(MAX_READ).min(host.memory_limit as u64) as usize;
    let HostState {
        resources,
        wasi_state,
        ..
    } = host;
    let stream = resources.get::<InputStream>(handle)?;
    Ok(match &mut stream.source {
        Source::Bytes { data, pos } => {
            let rest = &data[*pos..];
            if rest.is_empty() {
                return Ok(Read::Closed);
            }
            let n = rest.len().min(max);
            *pos += n;
            Read::Data(rest[..n].to_vec())
        }
        Source::Stdin => wasi_state.read_stdin(max).map_or(Read::Closed, Read::Data),
        Source::File { file, offset } => match fs::read_at(file.file(), *offset, max) {
            Ok(bytes) if bytes.is_empty() && max > 0 => Read::Closed,
            Ok(bytes) => {
                *offset = offset.saturating_add(bytes.len() as u64);
                Read::Data(bytes)
            }
            Err(e) => Read::Failed(format!("reading a file: {e}")),
        },
    })
}

pub struct OutputStream {
    target: Target,
}

#[derive(Clone, Copy)]
enum Target {
    Body(BodyId),
    Stdout,
    Stderr,
}

impl OutputStream {
    /// A stream writing an outgoing body.
    pub fn body(body: BodyId) -> Self {
        Self {
            target: Target::Body(body),
        }
    }

    pub(crate) fn stdout() -> Self {
        Self {
            target: Target::Stdout,
        }
    }

    pub(crate) fn stderr() -> Self {
        Self {
            target: Target::Stderr,
        }
    }
}

/// What `check-write` offers a stream whose sink has no limit (the log).
const UNBOUNDED_ROOM: usize = 1 << 20;

fn target(host: &mut HostState, handle: u32) -> Result<Target, Error> {
    Ok(host.resources.get::<OutputStream>(handle)?.target)
}

/// Bytes `target` takes now; `None` when it is closed.
fn room(host: &mut HostState, target: Target) -> Option<usize> {
    match target {
        Target::Body(body) => host.bodies.room(body),
        Target::Stdout => Some(host.wasi_state.stdout.room().unwrap_or(UNBOUNDED_ROOM)),
        Target::Stderr => Some(host.wasi_state.stderr.room().unwrap_or(UNBOUNDED_ROOM)),
    }
}

fn write_to(host: &mut HostState, target: Target, bytes: &[u8]) -> Result<(), WriteError> {
    let sink = match target {
        Target::Body(body) => return host.bodies.write(body, bytes),
        Target::Stdout => &mut host.wasi_state.stdout,
        Target::Stderr => &mut host.wasi_state.stderr,
    };
    sink.write(bytes).map_err(|full| {
        WriteError::Limit(format!(
            "the output would exceed the limit of {} bytes",
            full.limit
        ))
    })
}

pub struct IoError {
    pub message: String,
}

/// What a pollable waits for.
pub enum Pollable {
    Ready,
    /// A `future-incoming-response`, by handle.
    Response(u32),
    /// The instance's monotonic clock reaching this many nanoseconds.
    Clock(u64),
}

pub type BodyId = usize;

/// Outgoing bodies (a response's or an outbound request's) while the guest
/// writes them. `limit` bounds all of one instance's bodies together, so
/// abandoning bodies and opening new ones gains a guest nothing.
pub struct Bodies {
    bodies: Vec<Body>,
    limit: usize,
    total: usize,
}

/// Why a write did not happen.
enum WriteError {
    /// The body is finished: the stream is `closed`.
    Closed,
    Limit(String),
}

#[derive(Default)]
struct Body {
    data: Vec<u8>,
    finished: bool,
    /// The guest tried to write past the limit: the body can never be whole.
    overflowed: bool,
}

/// Why a finished body cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("the body was never finished (`outgoing-body.finish` not called)")]
    Unfinished,
    #[error("the body exceeded the limit of {0} bytes")]
    TooLarge(usize),
}

impl Bodies {
    pub fn new(limit: usize) -> Self {
        Self {
            bodies: Vec::new(),
            limit,
            total: 0,
        }
    }

    pub fn create(&mut self) -> BodyId {
        self.bodies.push(Body::default());
        self.bodies.len() - 1
    }

    fn open(&mut self, id: BodyId) -> Option<&mut Body> {
        self.bodies.get_mut(id).filter(|b| !b.finished)
    }

    fn room(&mut self, id: BodyId) -> Option<usize> {
        let room = self.limit.saturating_sub(self.total);
        self.open(id).map(|_| room)
    }

    fn write(&mut self, id: BodyId, bytes: &[u8]) -> Result<(), WriteError> {
        let (limit, total) = (self.limit, self.total);
        let body = self.open(id).ok_or(WriteError::Closed)?;
        if total + bytes.len() > limit {
            body.overflowed = true;
            return Err(WriteError::Limit(format!(
                "the body would exceed the limit of {limit} bytes"
            )));
        }
        body.data.extend_from_slice(bytes);
        self.total += bytes.len();
        Ok(())
    }

    pub fn finish(&mut self, id: BodyId) {
        if let Some(body) = self.bodies.get_mut(id) {
            body.finished = true;
        }
    }

    /// The complete body, taken out.
    pub fn take(&mut self, id: BodyId) -> Result<Vec<u8>, BodyError> {
        let body = self.bodies.get_mut(id).ok_or(BodyError::Unfinished)?;
        if body.overflowed {
            return Err(BodyError::TooLarge(self.limit));
        }
        if !body.finished {
            return Err(BodyError::Unfinished);
        }
        let data = std::mem::take(&mut body.data);
        self.total -= data.len();
        Ok(data)
    }

    pub fn is_finished(&self, id: BodyId) -> bool {
        self.bodies.get(id).is_some_and(|b| b.finished)
    }
}

/// `result<_, stream-error>`'s error, with a fresh `error` resource.
fn failed(table: &mut HandleTable<Resource>, message: String) -> Result<Value, Error> {
    let handle = table.push(IoError { message })?;
    Ok(Value::err(Value::case(0, Some(Value::Handle(handle)))))
}

fn closed() -> Value {
    Value::err(Value::case(1, None))
}

fn stream_result(
    host: &mut HostState,
    read: Read,
    value: fn(Vec<u8>) -> Value,
) -> Result<Value, Error> {
    Ok(match read {
        Read::Data(bytes) => Value::ok(value(bytes)),
        Read::Closed => closed(),
        Read::Failed(message) => failed(&mut host.resources, message)?,
    })
}

fn read(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let read = read_from(&mut state.host, handle, args.u64()?)?;
    stream_result(&mut state.host, read, Value::Bytes)
}

fn skip(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let read = read_from(&mut state.host, handle, args.u64()?)?;
    stream_result(
        &mut state.host,
        read,
        |bytes| Value::U64(bytes.len() as u64),
    )
}

/// `subscribe` on a stream: streams never make a guest wait.
fn input_pollable(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    state.host.resources.get::<InputStream>(args.handle()?)?;
    Ok(Value::Handle(state.host.resources.push(Pollable::Ready)?))
}

fn output_pollable(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    state.host.resources.get::<OutputStream>(args.handle()?)?;
    Ok(Value::Handle(state.host.resources.push(Pollable::Ready)?))
}

fn check_write(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let target = target(&mut state.host, args.handle()?)?;
    match room(&mut state.host, target) {
        None => Ok(closed()),
        Some(0) => failed(
            &mut state.host.resources,
            "the output reached its size limit".to_owned(),
        ),
        Some(room) => Ok(Value::ok(Value::U64(room as u64))),
    }
}

fn write_bytes(state: &mut GuestState, handle: u32, bytes: &[u8]) -> Result<Value, Error> {
    let target = target(&mut state.host, handle)?;
    match write_to(&mut state.host, target, bytes) {
        Ok(()) => Ok(Value::ok_unit()),
        Err(WriteError::Closed) => Ok(closed()),
        Err(WriteError::Limit(message)) => failed(&mut state.host.resources, message),
    }
}

fn write(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let bytes = args.bytes()?;
    write_bytes(state, handle, &bytes)
}

fn write_zeroes(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let len = args.u64()?;
    let target = target(&mut state.host, handle)?;
    // Past the room the write fails anyway; do not allocate for it.
    let room = room(&mut state.host, target).unwrap_or(0) as u64;
    let zeroes = vec![0; len.min(room + 1) as usize];
    write_bytes(state, handle, &zeroes)
}

fn flush(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let target = target(&mut state.host, args.handle()?)?;
    Ok(match room(&mut state.host, target) {
        Some(_) => Value::ok_unit(),
        None => closed(),
    })
}

fn splice(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let out = args.handle()?;
    let src = args.handle()?;
    let len = args.u64()?;
    let target = target(&mut state.host, out)?;
    // Read no more than the output takes, so nothing read is lost.
    let len = match room(&mut state.host, target) {
        None => return Ok(closed()),
        Some(0) => {
            let message = "the output reached its size limit".to_owned();
            return failed(&mut state.host.resources, message);
        }
        Some(room) => len.min(room as u64),
    };
    let bytes = match read_from(&mut state.host, src, len)? {
        Read::Data(bytes) => bytes,
        read => return stream_result(&mut state.host, read, Value::Bytes),
    };
    let n = bytes.len() as u64;
    let (disc, payload) = write_bytes(state, out, &bytes)?.into_variant()?;
    Ok(match disc {
        0 => Value::ok(Value::U64(n)),
        _ => Value::case(1, payload),
    })
}

pub const STREAMS: &[HostFn<GuestState>] = &[
    host_fn!("[method]input-stream.read", [Ty::Handle, Ty::U64] -> result_ty!(BYTES, STREAM_ERROR), read),
    host_fn!("[method]input-stream.blocking-read", [Ty::Handle, Ty::U64] -> result_ty!(BYTES, STREAM_ERROR), read),
    host_fn!("[method]input-stream.skip", [Ty::Handle, Ty::U64] -> result_ty!(Ty::U64, STREAM_ERROR), skip),
    host_fn!("[method]input-stream.blocking-skip", [Ty::Handle, Ty::U64] -> result_ty!(Ty::U64, STREAM_ERROR), skip),
    host_fn!("[method]input-stream.subscribe", [Ty::Handle] -> Ty::Handle, input_pollable),
    host_fn!("[method]output-stream.check-write", [Ty::Handle] -> result_ty!(Ty::U64, STREAM_ERROR), check_write),
    host_fn!("[method]output-stream.write", [Ty::Handle, BYTES] -> result_ty!(_, STREAM_ERROR), write),
    host_fn!("[method]output-stream.blocking-write-and-flush", [Ty::Handle, BYTES] -> result_ty!(_, STREAM_ERROR), write),
    host_fn!("[method]output-stream.flush", [Ty::Handle] -> result_ty!(_, STREAM_ERROR), flush),
    host_fn!("[method]output-stream.blocking-flush", [Ty::Handle] -> result_ty!(_, STREAM_ERROR), flush),
    host_fn!("[method]output-stream.subscribe", [Ty::Handle] -> Ty::Handle, output_pollable),
    host_fn!("[method]output-stream.write-zeroes", [Ty::Handle, Ty::U64] -> result_ty!(_, STREAM_ERROR), write_zeroes),
    host_fn!("[method]output-stream.blocking-write-zeroes-and-flush", [Ty::Handle, Ty::U64] -> result_ty!(_, STREAM_ERROR), write_zeroes),
    host_fn!("[method]output-stream.splice", [Ty::Handle, Ty::Handle, Ty::U64] -> result_ty!(Ty::U64, STREAM_ERROR), splice),
    host_fn!("[method]output-stream.blocking-splice", [Ty::Handle, Ty::Handle, Ty::U64] -> result_ty!(Ty::U64, STREAM_ERROR), splice),
    drop_fn!("input-stream", InputStream),
    drop_fn!("output-stream", OutputStream),
];

/// Makes a pollable ready: sends the outbound request it waits on, or
/// waits for the clock. A request whose body the guest has not finished can
/// never be sent, so waiting on it would hang the guest: that is a trap.
fn settle(state: &mut GuestState, handle: u32) -> Result<(), Error> {
    match *state.host.resources.get::<Pollable>(handle)? {
        Pollable::Ready => Ok(()),
        Pollable::Response(future) => {
            if !outgoing_handler::resolve(state, future)? {
                return Err(Error::new(
                    "waiting for an outbound response whose request body was never finished",
                ));
            }
            Ok(())
        }
        Pollable::Clock(when) => wait_for_clock(state, when),
    }
}

/// Sleeps until the instance's monotonic clock reads `when` (for
/// `wasi:io/poll` and preview 1's `poll_oneoff`). A wait that would outlast
/// the invocation's deadline ends it at once: the guest could not be
/// resumed after it anyway, and the worker is free sooner.
pub(crate) fn wait_for_clock(state: &mut GuestState, when: u64) -> Result<(), Error> {
    let wait = state.host.wasi_state.until(when);
    if wait.is_zero() {
        return Ok(());
    }
    if let Some(deadline) = state.host.wasi_state.deadline
        && Instant::now()
            .checked_add(wait)
            .is_none_or(|end| end > deadline)
    {
        // Reported as the deadline it is (504), not as a trap.
        return Err(state.run.deadline_hit());
    }
    std::thread::sleep(wait);
    Ok(())
}

fn block(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    settle(state, args.handle()?)?;
    Ok(Value::unit())
}

/// Settling never waits on another party's progress, so every pollable but
/// the clock's is ready once settled; a guest that spins on `ready` makes
/// progress (or spends its fuel).
fn ready(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    if let Pollable::Clock(when) = *state.host.resources.get::<Pollable>(handle)? {
        return Ok(Value::Bool(state.host.wasi_state.monotonic_now() >= when));
    }
    settle(state, handle)?;
    Ok(Value::Bool(true))
}

/// Every pollable that is not the clock's is settled and ready; only if
/// there is none does `poll` wait, for the earliest clock.
fn poll(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handles = args.list()?;
    if handles.is_empty() {
        return Err(Error::new("`poll` called with an empty list"));
    }
    let mut ready = Vec::with_capacity(handles.len());
    let mut clocks = Vec::new();
    for (i, handle) in handles.into_iter().enumerate() {
        let handle = handle.into_handle()?;
        match *state.host.resources.get::<Pollable>(handle)? {
            Pollable::Clock(when) => clocks.push((i, when)),
            _ => {
                settle(state, handle)?;
                ready.push(i);
            }
        }
    }
    if ready.is_empty()
        && let Some(&(first, when)) = clocks.iter().min_by_key(|(_, when)| *when)
    {
        wait_for_clock(state, when)?;
        ready.push(first);
    }
    let now = state.host.wasi_state.monotonic_now();
    ready.extend(
        clocks
            .iter()
            .filter(|(_, when)| *when <= now)
            .map(|(i, _)| *i),
    );
    ready.sort_unstable();
    ready.dedup();
    Ok(Value::List(
        ready.into_iter().map(|i| Value::U32(i as u32)).collect(),
    ))
}

pub const POLL: &[HostFn<GuestState>] = &[
    host_fn!("[method]pollable.ready", [Ty::Handle] -> Ty::Bool, ready),
    host_fn!("[method]pollable.block", [Ty::Handle], block),
    host_fn!("poll", [Ty::List(&Ty::Handle)] -> Ty::List(&Ty::U32), poll),
    drop_fn!("pollable", Pollable),
];

fn to_debug_string(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let error = state.host.resources.get::<IoError>(args.handle()?)?;
    Ok(Value::string(error.message.clone()))
}

pub const ERROR: &[HostFn<GuestState>] = &[
    host_fn!("[method]error.to-debug-string", [Ty::Handle] -> Ty::String, to_debug_string),
    drop_fn!("error", IoError),
];
