//! `wasi:io@0.2.0`: streams, pollables and errors. Every body is complete in
//! host memory before a guest reads it and is collected whole before it is
//! sent, so streams never block and every pollable is ready, except one that
//! waits on an outbound HTTP response, which polling sends.

use wasmi::Error;

use super::{GuestState, Resource, drop_fn, host_fn, outgoing_handler};
use flint_engine::canon::{Args, HandleTable, HostFn, Ty, Value};
use flint_engine::result_ty;

/// `stream-error`: `last-operation-failed(own<error>)` or `closed`.
const STREAM_ERROR: Ty = Ty::Variant(&[Some(Ty::Handle), None]);
const BYTES: Ty = Ty::List(&Ty::U8);
/// Largest chunk one `read` hands to a guest.
const MAX_READ: u64 = 1 << 20;

pub struct InputStream {
    data: Vec<u8>,
    pos: usize,
}

impl InputStream {
    pub fn new(data: Vec<u8>) -> Self {
        Self { data, pos: 0 }
    }

    fn read(&mut self, len: u64) -> Option<Vec<u8>> {
        let rest = &self.data[self.pos..];
        if rest.is_empty() {
            return None;
        }
        let n = rest.len().min(len.min(MAX_READ) as usize);
        self.pos += n;
        Some(rest[..n].to_vec())
    }
}

pub struct OutputStream {
    pub body: BodyId,
}

pub struct IoError {
    pub message: String,
}

/// What a pollable waits for.
pub enum Pollable {
    Ready,
    /// A `future-incoming-response`, by handle.
    Response(u32),
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

fn read(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let stream = state.host.resources.get::<InputStream>(args.handle()?)?;
    Ok(match stream.read(args.u64()?) {
        Some(bytes) => Value::ok(Value::Bytes(bytes)),
        None => closed(),
    })
}

fn skip(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let stream = state.host.resources.get::<InputStream>(args.handle()?)?;
    Ok(match stream.read(args.u64()?) {
        Some(bytes) => Value::ok(Value::U64(bytes.len() as u64)),
        None => closed(),
    })
}

fn ready_pollable(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    args.handle()?;
    Ok(Value::Handle(state.host.resources.push(Pollable::Ready)?))
}

fn check_write(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let body = state
        .host
        .resources
        .get::<OutputStream>(args.handle()?)?
        .body;
    match state.host.bodies.room(body) {
        None => Ok(closed()),
        Some(0) => {
            let limit = state.host.bodies.limit;
            failed(
                &mut state.host.resources,
                format!("the body reached its limit of {limit} bytes"),
            )
        }
        Some(room) => Ok(Value::ok(Value::U64(room as u64))),
    }
}

fn write_bytes(state: &mut GuestState, handle: u32, bytes: &[u8]) -> Result<Value, Error> {
    let body = state.host.resources.get::<OutputStream>(handle)?.body;
    match state.host.bodies.write(body, bytes) {
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
    let room = state.host.bodies.limit as u64;
    // Past the limit the write fails anyway; do not allocate for it.
    let zeroes = vec![0; len.min(room + 1) as usize];
    write_bytes(state, handle, &zeroes)
}

fn flush(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let body = state
        .host
        .resources
        .get::<OutputStream>(args.handle()?)?
        .body;
    Ok(match state.host.bodies.room(body) {
        Some(_) => Value::ok_unit(),
        None => closed(),
    })
}

fn splice(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let out = args.handle()?;
    let src = args.handle()?;
    let len = args.u64()?;
    state.host.resources.get::<OutputStream>(out)?;
    let Some(bytes) = state.host.resources.get::<InputStream>(src)?.read(len) else {
        return Ok(closed());
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
    host_fn!("[method]input-stream.subscribe", [Ty::Handle] -> Ty::Handle, ready_pollable),
    host_fn!("[method]output-stream.check-write", [Ty::Handle] -> result_ty!(Ty::U64, STREAM_ERROR), check_write),
    host_fn!("[method]output-stream.write", [Ty::Handle, BYTES] -> result_ty!(_, STREAM_ERROR), write),
    host_fn!("[method]output-stream.blocking-write-and-flush", [Ty::Handle, BYTES] -> result_ty!(_, STREAM_ERROR), write),
    host_fn!("[method]output-stream.flush", [Ty::Handle] -> result_ty!(_, STREAM_ERROR), flush),
    host_fn!("[method]output-stream.blocking-flush", [Ty::Handle] -> result_ty!(_, STREAM_ERROR), flush),
    host_fn!("[method]output-stream.subscribe", [Ty::Handle] -> Ty::Handle, ready_pollable),
    host_fn!("[method]output-stream.write-zeroes", [Ty::Handle, Ty::U64] -> result_ty!(_, STREAM_ERROR), write_zeroes),
    host_fn!("[method]output-stream.blocking-write-zeroes-and-flush", [Ty::Handle, Ty::U64] -> result_ty!(_, STREAM_ERROR), write_zeroes),
    host_fn!("[method]output-stream.splice", [Ty::Handle, Ty::Handle, Ty::U64] -> result_ty!(Ty::U64, STREAM_ERROR), splice),
    host_fn!("[method]output-stream.blocking-splice", [Ty::Handle, Ty::Handle, Ty::U64] -> result_ty!(Ty::U64, STREAM_ERROR), splice),
    drop_fn!("input-stream", InputStream),
    drop_fn!("output-stream", OutputStream),
];

/// Makes a pollable ready: sends the outbound request it waits on, if any.
/// A request whose body the guest has not finished can never be sent, so
/// waiting on it would hang the guest: that is a trap.
fn settle(state: &mut GuestState, handle: u32) -> Result<(), Error> {
    if let Pollable::Response(future) = state.host.resources.get::<Pollable>(handle)? {
        let future = *future;
        if !outgoing_handler::resolve(state, future)? {
            return Err(Error::new(
                "waiting for an outbound response whose request body was never finished",
            ));
        }
    }
    Ok(())
}

fn block(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    settle(state, args.handle()?)?;
    Ok(Value::unit())
}

/// Settling never waits on another party's progress, so every pollable is
/// ready once settled; a guest that spins on `ready` makes progress.
fn ready(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    settle(state, args.handle()?)?;
    Ok(Value::Bool(true))
}

fn poll(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handles = args.list()?;
    if handles.is_empty() {
        return Err(Error::new("`poll` called with an empty list"));
    }
    let mut ready = Vec::with_capacity(handles.len());
    for (i, handle) in handles.into_iter().enumerate() {
        settle(state, handle.into_handle()?)?;
        ready.push(Value::U32(i as u32));
    }
    Ok(Value::List(ready))
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
