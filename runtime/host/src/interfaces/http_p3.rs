//! `wasi:http@0.3.0` (WASI 0.3): `types` with bodies as `stream<u8>` and
//! trailers as a `future`, and `client` for outbound requests.
//!
//! Fields, methods, schemes and error codes are the 0.2 interface's
//! (`http_types`); what changes is the body. A body the host has (the
//! client's request, an outbound response) reaches the guest as a stream
//! fed from host memory; a body the guest writes (its response, an outbound
//! request) is a stream whose readable end the host takes, and the executor
//! decides where its bytes go (to the client as they come, for a response).

use std::sync::{Arc, Mutex};

use wasmi::Error;

use super::http_types::{
    self, BYTES, ENTRY, ERROR_CODE, ErrorCode, Fields, HeaderList, METHOD, OPT_STRING,
    OutgoingRequest, RequestOptions, SCHEME,
};
use super::wasi_p3::ready_future;
use super::{GuestState, drop_fn, host_fn};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::component::{
    ChannelId, SinkClosed, SourceFailure, SourceRead, StreamSink, StreamSource,
};
use flint_engine::{option_ty, result_ty};

/// `header-error` at 0.3: `invalid-syntax`, `forbidden`, `immutable`,
/// `size-exceeded`, `other(option<string>)`.
const HEADER_ERROR: Ty = Ty::Variant(&[None, None, None, None, Some(OPT_STRING)]);
/// `request-options-error`: `not-supported`, `immutable`, `other(option<string>)`.
const OPTIONS_ERROR: Ty = Ty::Variant(&[None, None, Some(OPT_STRING)]);
const OPT_DURATION: Ty = option_ty!(Ty::U64);
/// `result<option<trailers>, error-code>`: what a body's trailers future holds.
pub const TRAILERS: Ty = result_ty!(option_ty!(Ty::Handle), ERROR_CODE);
/// `result<_, error-code>`: a transmission's outcome.
pub const OUTCOME: Ty = result_ty!(_, ERROR_CODE);
/// `result<response, error-code>`: what `handler.handle` and `client.send` return.
pub const RESPONSE_RESULT: Ty = result_ty!(Ty::Handle, ERROR_CODE);

/// A body: bytes the host holds, bytes still arriving, or a stream the
/// guest writes.
pub enum Contents {
    None,
    Bytes(Vec<u8>),
    /// The client's request body as it arrives.
    Arriving(Box<dyn StreamSource>),
    /// The guest's stream (the host holds its readable end), its trailers
    /// future, and the bytes collected from it once the host reads it.
    Guest {
        stream: Option<ChannelId>,
        trailers: ChannelId,
        collected: Option<Arc<Mutex<Collected>>>,
    },
    Consumed,
}

/// A request: the client's (to the handler) or one the guest builds.
pub struct Request {
    pub method: String,
    pub path_with_query: Option<String>,
    pub scheme: Option<String>,
    pub authority: Option<String>,
    pub headers: HeaderList,
    pub contents: Contents,
    pub options: Option<RequestOptions>,
}

impl Request {
    /// The request the HTTP trigger received; its body is `request.body`,
    /// or read from `arriving` as the client sends it.
    pub fn incoming(
        request: http_types::IncomingRequest,
        arriving: Option<Box<dyn StreamSource>>,
    ) -> Self {
        let contents = match arriving {
            Some(source) => Contents::Arriving(source),
            None => request.body.map_or(Contents::None, Contents::Bytes),
        };
        Self {
            method: request.method,
            path_with_query: Some(request.path_with_query),
            scheme: Some(request.scheme),
            authority: Some(request.authority),
            headers: request.headers,
            contents,
            options: None,
        }
    }
}

/// A response: the guest's (from the handler) or an outbound one.
pub struct Response {
    pub status: u16,
    pub headers: HeaderList,
    pub contents: Contents,
}

fn bytes_source(data: Vec<u8>) -> Box<dyn StreamSource> {
    Box::new(BytesSource { data, at: 0 })
}

/// Bytes the host holds, read by the guest in the sizes it asks for.
struct BytesSource {
    data: Vec<u8>,
    at: usize,
}

impl StreamSource for BytesSource {
    fn read(&mut self, max: usize) -> SourceRead {
        if self.at >= self.data.len() {
            return SourceRead::End;
        }
        let end = self.data.len().min(self.at + max.max(1));
        let chunk = self.data[self.at..end].to_vec();
        self.at = end;
        SourceRead::Bytes(chunk)
    }
}

/// A body the host gives the guest: a stream from `source` and trailers
/// that are already known (none: a body that fails before its end fails
/// the guest's read instead).
fn body_to_guest(state: &mut GuestState, source: Box<dyn StreamSource>) -> Result<Value, Error> {
    let stream = state.tasks.new_stream_from(Some(&Ty::U8), source)?;
    let trailers = ready_future(state, &TRAILERS, Value::ok(Value::none()))?;
    Ok(Value::Tuple(vec![Value::Handle(stream), trailers]))
}

/// What a [`CollectSink`] has gathered (a body written by the guest that
/// `client.send` reads).
#[derive(Default)]
pub struct Collected {
    bytes: Vec<u8>,
    /// The size the body reached when it went over the limit: what was
    /// gathered is not the whole body.
    over_limit: Option<u64>,
    /// The stream ended whole (its writer finished it). A stream that
    /// stopped otherwise (a body passed on that broke) is not whole.
    closed: bool,
}

/// A sink that collects what the guest writes, up to `limit` bytes; past
/// it, the guest's write sees the stream dropped.
struct CollectSink {
    into: Arc<Mutex<Collected>>,
    limit: usize,
}

impl StreamSink for CollectSink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), SinkClosed> {
        let mut collected = self.into.lock().unwrap_or_else(|e| e.into_inner());
        let size = collected.bytes.len() + bytes.len();
        if size > self.limit {
            collected.over_limit = Some(size as u64);
            return Err(SinkClosed);
        }
        collected.bytes.extend_from_slice(bytes);
        Ok(())
    }
    fn close(&mut self) {
        self.into.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
    }
}

/// Takes a body the guest passes (`option<stream<u8>>` and its trailers
/// future): the host reads both from now on. Trailers are not sent on
/// (HTTP/1.1 responses from Flint carry none), so their value is dropped.
fn contents_from_guest(
    state: &mut GuestState,
    stream: Option<Value>,
    trailers: u32,
) -> Result<Contents, Error> {
    let stream = match stream {
        Some(handle) => Some(state.tasks.take_reader(handle.into_handle()?, false)?),
        None => None,
    };
    let trailers = state.tasks.take_reader(trailers, true)?;
    state.tasks.attach_future_sink(trailers, Box::new(drop));
    Ok(Contents::Guest {
        stream,
        trailers,
        collected: None,
    })
}

/// The `future<result<_, error-code>>` a new request or response returns:
/// it resolves once the body has been sent, which for Flint is when the
/// guest has finished writing it.
fn transmitted_future(state: &mut GuestState) -> Result<u32, Error> {
    let handle = state
        .tasks
        .new_future_from(Some(&OUTCOME), Value::ok_unit())?;
    Ok(handle)
}

// ---- requests ----

fn request<'s>(state: &'s mut GuestState, args: &mut Args) -> Result<&'s mut Request, Error> {
    state.host.resources.get::<Request>(args.handle()?)
}

fn request_new(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let headers = http_types::take_fields(state, args.handle()?)?;
    let stream = args.option()?;
    let trailers = args.handle()?;
    let options = match args.option()? {
        Some(h) => Some(
            state
                .host
                .resources
                .take::<RequestOptions>(h.into_handle()?)?,
        ),
        None => None,
    };
    let contents = contents_from_guest(state, stream, trailers)?;
    let request = Request {
        method: "GET".to_owned(),
        path_with_query: None,
        scheme: None,
        authority: None,
        headers,
        contents,
        options,
    };
    let handle = state.host.resources.push(request)?;
    let transmitted = transmitted_future(state)?;
    Ok(Value::Tuple(vec![
        Value::Handle(handle),
        Value::Handle(transmitted),
    ]))
}

fn get_method(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    Ok(http_types::method_value(&request(state, &mut args)?.method))
}

fn set_method(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = request(state, &mut args)?;
    Ok(match http_types::method_from(args.value()?)? {
        Some(method) => {
            request.method = method;
            Value::ok_unit()
        }
        None => Value::err_unit(),
    })
}

fn get_path(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = request(state, &mut args)?;
    Ok(Value::option(
        request.path_with_query.clone().map(Value::String),
    ))
}

fn set_path(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = request(state, &mut args)?;
    let path = args.option()?.map(Value::into_string).transpose()?;
    if path
        .as_deref()
        .is_some_and(|p| p.bytes().any(|b| b.is_ascii_control() || b == b' '))
    {
        return Ok(Value::err_unit());
    }
    request.path_with_query = path;
    Ok(Value::ok_unit())
}

fn get_scheme(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = request(state, &mut args)?;
    Ok(Value::option(
        request.scheme.as_deref().map(http_types::scheme_value),
    ))
}

fn set_scheme(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = request(state, &mut args)?;
    request.scheme = args.option()?.map(http_types::scheme_from).transpose()?;
    Ok(Value::ok_unit())
}

fn get_authority(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = request(state, &mut args)?;
    Ok(Value::option(request.authority.clone().map(Value::String)))
}

fn set_authority(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = request(state, &mut args)?;
    let authority = args.option()?.map(Value::into_string).transpose()?;
    if authority.as_deref().is_some_and(|a| {
        a.bytes()
            .any(|b| b.is_ascii_control() || b"/ ?#".contains(&b))
    }) {
        return Ok(Value::err_unit());
    }
    request.authority = authority;
    Ok(Value::ok_unit())
}

fn get_options(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let options = request(state, &mut args)?.options;
    Ok(match options {
        Some(options) => Value::some(Value::Handle(state.host.resources.push(options)?)),
        None => Value::none(),
    })
}

fn request_headers(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let entries = request(state, &mut args)?.headers.clone();
    Ok(Value::Handle(http_types::push_fields(
        state, entries, true,
    )?))
}

/// `consume-body` of a body the host holds; a body the guest is writing
/// itself cannot be handed back to it.
fn consume(state: &mut GuestState, contents: Contents, res: u32) -> Result<Value, Error> {
    let res = state.tasks.take_reader(res, true)?;
    state.tasks.attach_future_sink(res, Box::new(drop));
    match contents {
        Contents::None => body_to_guest(state, bytes_source(Vec::new())),
        Contents::Bytes(data) => body_to_guest(state, bytes_source(data)),
        Contents::Arriving(source) => body_to_guest(state, source),
        Contents::Guest { .. } => Err(Error::new(
            "consume-body of a body the component writes itself is not supported",
        )),
        Contents::Consumed => Err(Error::new("consume-body of a body already consumed")),
    }
}

fn request_consume(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = state.host.resources.take::<Request>(args.handle()?)?;
    consume(state, request.contents, args.handle()?)
}

// ---- request options ----

fn options_clone(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let options = *state.host.resources.get::<RequestOptions>(args.handle()?)?;
    Ok(Value::Handle(state.host.resources.push(options)?))
}

// ---- responses ----

fn response_new(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let headers = http_types::take_fields(state, args.handle()?)?;
    let stream = args.option()?;
    let trailers = args.handle()?;
    let contents = contents_from_guest(state, stream, trailers)?;
    let handle = state.host.resources.push(Response {
        status: 200,
        headers,
        contents,
    })?;
    let transmitted = transmitted_future(state)?;
    Ok(Value::Tuple(vec![
        Value::Handle(handle),
        Value::Handle(transmitted),
    ]))
}

fn response_status(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let response = state.host.resources.get::<Response>(args.handle()?)?;
    Ok(Value::U16(response.status))
}

fn response_set_status(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let response = state.host.resources.get::<Response>(args.handle()?)?;
    let status = args.u16()?;
    if !(100..=999).contains(&status) {
        return Ok(Value::err_unit());
    }
    response.status = status;
    Ok(Value::ok_unit())
}

fn response_headers(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let entries = state
        .host
        .resources
        .get::<Response>(args.handle()?)?
        .headers
        .clone();
    Ok(Value::Handle(http_types::push_fields(
        state, entries, true,
    )?))
}

fn response_consume(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let response = state.host.resources.take::<Response>(args.handle()?)?;
    consume(state, response.contents, args.handle()?)
}

// ---- client ----

/// `client.send`: the 0.2 outgoing handler's checks and client, once the
/// request's body is complete ([`send_ready`]).
fn send(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = state.host.resources.take::<Request>(args.handle()?)?;
    let body = match request.contents {
        Contents::None | Contents::Consumed => Vec::new(),
        Contents::Bytes(data) => data,
        // The client's request, passed on: its body is read to its end first.
        Contents::Arriving(source) => match read_all(state, source)? {
            Ok(body) => body,
            Err(size) => return Ok(Value::err(ErrorCode::RequestBodySize(size).to_value())),
        },
        Contents::Guest {
            stream, collected, ..
        } => {
            let collected = collected
                .map(|c| std::mem::take(&mut *c.lock().unwrap_or_else(|e| e.into_inner())))
                .unwrap_or_default();
            // A body cut at the limit must not go out as if it were whole.
            if let Some(size) = collected.over_limit {
                return Ok(Value::err(ErrorCode::RequestBodySize(size).to_value()));
            }
            if !collected.closed && stream.is_some() {
                return Err(Error::new(
                    "the body passed to client.send ended before it was complete",
                ));
            }
            collected.bytes
        }
    };
    let outgoing = OutgoingRequest {
        method: request.method,
        path_with_query: request.path_with_query,
        scheme: request.scheme,
        authority: request.authority,
        headers: request.headers,
        body: None,
    };
    let options = request.options.unwrap_or_default();
    match super::outgoing_handler::send_checked(state, outgoing, options, &body)? {
        Ok(response) => {
            let contents = response.body.map_or(Contents::None, Contents::Bytes);
            let handle = state.host.resources.push(Response {
                status: response.status,
                headers: response.headers,
                contents,
            })?;
            Ok(Value::ok(Value::Handle(handle)))
        }
        Err(code) => Ok(Value::err(code.to_value())),
    }
}

/// The rest of an arriving body, bounded by the instance's memory limit
/// (`Err`: the size it reached past the limit).
fn read_all(
    state: &mut GuestState,
    mut source: Box<dyn StreamSource>,
) -> Result<Result<Vec<u8>, u64>, Error> {
    let limit = state.host.memory_limit;
    let mut body = Vec::new();
    loop {
        match source.read(64 * 1024) {
            SourceRead::Bytes(bytes) if body.len() + bytes.len() <= limit => {
                body.extend_from_slice(&bytes);
            }
            SourceRead::Bytes(bytes) => return Ok(Err((body.len() + bytes.len()) as u64)),
            SourceRead::End => return Ok(Ok(body)),
            SourceRead::Failed(SourceFailure::Deadline) => return Err(state.run.deadline_hit()),
            SourceRead::Failed(SourceFailure::Broken(why)) => return Err(Error::new(why)),
            // An arriving body is bytes.
            SourceRead::Values(_) => return Err(Error::new("host bug: a body of values")),
        }
    }
}

/// Whether a request can be sent: its body, if the guest writes one, is
/// complete. The first check starts collecting it (bounded by the
/// instance's memory limit; past it the guest's write sees the stream
/// dropped), so the guest can go on writing while `send` waits.
fn send_ready(state: &mut GuestState, args: &[Value]) -> bool {
    let Some(Value::Handle(handle)) = args.first() else {
        return true;
    };
    let limit = state.host.memory_limit;
    let Ok(request) = state.host.resources.get::<Request>(*handle) else {
        // `send` reports the bad handle.
        return true;
    };
    let Contents::Guest {
        stream: Some(stream),
        collected,
        ..
    } = &mut request.contents
    else {
        return true;
    };
    let stream = *stream;
    if collected.is_none() {
        let into = Arc::new(Mutex::new(Collected::default()));
        *collected = Some(into.clone());
        state
            .tasks
            .attach_sink(stream, Box::new(CollectSink { into, limit }));
    }
    state.tasks.writer_done(stream)
}

const FIELDS_RESULT: Ty = result_ty!(Ty::Handle, HEADER_ERROR);
const UNIT_RESULT: Ty = result_ty!(_, HEADER_ERROR);
const BODY: Ty = Ty::Tuple(&[Ty::Handle, Ty::Handle]);

#[rustfmt::skip]
pub const TYPES: &[HostFn<GuestState>] = &[
    host_fn!("[constructor]fields", [] -> Ty::Handle, http_types::fields_new),
    host_fn!("[static]fields.from-list", [Ty::List(&ENTRY)] -> FIELDS_RESULT, http_types::fields_from_list),
    host_fn!("[method]fields.get", [Ty::Handle, Ty::String] -> Ty::List(&BYTES), http_types::fields_get),
    host_fn!("[method]fields.has", [Ty::Handle, Ty::String] -> Ty::Bool, http_types::fields_has),
    host_fn!("[method]fields.set", [Ty::Handle, Ty::String, Ty::List(&BYTES)] -> UNIT_RESULT, http_types::fields_set),
    host_fn!("[method]fields.delete", [Ty::Handle, Ty::String] -> UNIT_RESULT, http_types::fields_delete),
    host_fn!("[method]fields.get-and-delete", [Ty::Handle, Ty::String] -> result_ty!(Ty::List(&BYTES), HEADER_ERROR), fields_get_and_delete),
    host_fn!("[method]fields.append", [Ty::Handle, Ty::String, BYTES] -> UNIT_RESULT, http_types::fields_append),
    host_fn!("[method]fields.copy-all", [Ty::Handle] -> Ty::List(&ENTRY), http_types::fields_entries),
    host_fn!("[method]fields.clone", [Ty::Handle] -> Ty::Handle, http_types::fields_clone),
    host_fn!("[static]request.new", [Ty::Handle, option_ty!(Ty::Handle), Ty::Handle, option_ty!(Ty::Handle)] -> BODY, request_new),
    host_fn!("[method]request.get-method", [Ty::Handle] -> METHOD, get_method),
    host_fn!("[method]request.set-method", [Ty::Handle, METHOD] -> result_ty!(_, _), set_method),
    host_fn!("[method]request.get-path-with-query", [Ty::Handle] -> OPT_STRING, get_path),
    host_fn!("[method]request.set-path-with-query", [Ty::Handle, OPT_STRING] -> result_ty!(_, _), set_path),
    host_fn!("[method]request.get-scheme", [Ty::Handle] -> option_ty!(SCHEME), get_scheme),
    host_fn!("[method]request.set-scheme", [Ty::Handle, option_ty!(SCHEME)] -> result_ty!(_, _), set_scheme),
    host_fn!("[method]request.get-authority", [Ty::Handle] -> OPT_STRING, get_authority),
    host_fn!("[method]request.set-authority", [Ty::Handle, OPT_STRING] -> result_ty!(_, _), set_authority),
    host_fn!("[method]request.get-options", [Ty::Handle] -> option_ty!(Ty::Handle), get_options),
    host_fn!("[method]request.get-headers", [Ty::Handle] -> Ty::Handle, request_headers),
    host_fn!("[static]request.consume-body", [Ty::Handle, Ty::Handle] -> BODY, request_consume),
    host_fn!("[constructor]request-options", [] -> Ty::Handle, http_types::options_new),
    host_fn!("[method]request-options.get-connect-timeout", [Ty::Handle] -> OPT_DURATION, http_types::connect_timeout),
    host_fn!("[method]request-options.set-connect-timeout", [Ty::Handle, OPT_DURATION] -> result_ty!(_, OPTIONS_ERROR), http_types::set_connect_timeout),
    host_fn!("[method]request-options.get-first-byte-timeout", [Ty::Handle] -> OPT_DURATION, http_types::first_byte_timeout),
    host_fn!("[method]request-options.set-first-byte-timeout", [Ty::Handle, OPT_DURATION] -> result_ty!(_, OPTIONS_ERROR), http_types::set_first_byte_timeout),
    host_fn!("[method]request-options.get-between-bytes-timeout", [Ty::Handle] -> OPT_DURATION, http_types::between_bytes_timeout),
    host_fn!("[method]request-options.set-between-bytes-timeout", [Ty::Handle, OPT_DURATION] -> result_ty!(_, OPTIONS_ERROR), http_types::set_between_bytes_timeout),
    host_fn!("[method]request-options.clone", [Ty::Handle] -> Ty::Handle, options_clone),
    host_fn!("[static]response.new", [Ty::Handle, option_ty!(Ty::Handle), Ty::Handle] -> BODY, response_new),
    host_fn!("[method]response.get-status-code", [Ty::Handle] -> Ty::U16, response_status),
    host_fn!("[method]response.set-status-code", [Ty::Handle, Ty::U16] -> result_ty!(_, _), response_set_status),
    host_fn!("[method]response.get-headers", [Ty::Handle] -> Ty::Handle, response_headers),
    host_fn!("[static]response.consume-body", [Ty::Handle, Ty::Handle] -> BODY, response_consume),
    drop_fn!("fields", Fields),
    drop_fn!("request", Request),
    drop_fn!("request-options", RequestOptions),
    drop_fn!("response", Response),
];

pub const CLIENT: &[HostFn<GuestState>] = &[host_fn!(
    "send",
    [Ty::Handle] -> RESPONSE_RESULT,
    send,
    ready = send_ready
)];

fn fields_get_and_delete(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let name = args.string()?;
    let fields = state.host.resources.get::<Fields>(handle)?;
    if fields.immutable {
        return Ok(Value::err(Value::case(2, None)));
    }
    let mut taken = Vec::new();
    fields.entries.retain(|(k, v)| {
        let matches = k.eq_ignore_ascii_case(&name);
        if matches {
            taken.push(Value::Bytes(v.clone()));
        }
        !matches
    });
    Ok(Value::ok(Value::List(taken)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_body_is_read_in_the_sizes_asked_for() {
        let mut source = BytesSource {
            data: b"hello".to_vec(),
            at: 0,
        };
        assert!(matches!(source.read(3), SourceRead::Bytes(b) if b == b"hel"));
        assert!(matches!(source.read(10), SourceRead::Bytes(b) if b == b"lo"));
        assert!(matches!(source.read(10), SourceRead::End));
    }

    #[test]
    fn collecting_stops_at_the_limit_and_says_so() {
        let into = Arc::new(Mutex::new(Collected::default()));
        let mut sink = CollectSink {
            into: into.clone(),
            limit: 4,
        };
        assert_eq!(sink.write(b"abc"), Ok(()));
        assert_eq!(into.lock().unwrap().over_limit, None);
        assert_eq!(sink.write(b"de"), Err(SinkClosed));
        let collected = into.lock().unwrap();
        assert_eq!(collected.bytes, b"abc");
        assert_eq!(collected.over_limit, Some(5));
    }
}
