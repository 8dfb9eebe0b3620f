//! `wasi:http/types@0.2.0`: requests, responses, fields and bodies.

use wasmi::Error;

use super::io::{BodyId, InputStream, OutputStream, Pollable};
use super::{GuestState, drop_fn, host_fn};
use crate::http1::{is_token, is_valid_header};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::{option_ty, result_ty};

pub const METHOD: Ty = Ty::Variant(&[
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    Some(Ty::String),
]);
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];
pub const SCHEME: Ty = Ty::Variant(&[None, None, Some(Ty::String)]);
/// `header-error` at 0.2; 0.3 adds two cases (`HEADER_ERROR_P3`).
pub(super) const HEADER_ERROR: Ty = Ty::Variant(&[None, None, None]);
pub(super) const BYTES: Ty = Ty::List(&Ty::U8);
pub(super) const ENTRY: Ty = Ty::Tuple(&[Ty::String, BYTES]);
pub(super) const OPT_STRING: Ty = option_ty!(Ty::String);
const OPT_U32: Ty = option_ty!(Ty::U32);
pub(super) const OPT_U64: Ty = option_ty!(Ty::U64);
const FIELD_SIZE: Ty = Ty::Tuple(&[OPT_STRING, OPT_U32]);
pub const ERROR_CODE: Ty = Ty::Variant(&[
    None,                                                // DNS-timeout
    Some(Ty::Tuple(&[OPT_STRING, option_ty!(Ty::U16)])), // DNS-error
    None,                                                // destination-not-found
    None,                                                // destination-unavailable
    None,                                                // destination-IP-prohibited
    None,                                                // destination-IP-unroutable
    None,                                                // connection-refused
    None,                                                // connection-terminated
    None,                                                // connection-timeout
    None,                                                // connection-read-timeout
    None,                                                // connection-write-timeout
    None,                                                // connection-limit-reached
    None,                                                // TLS-protocol-error
    None,                                                // TLS-certificate-error
    Some(Ty::Tuple(&[option_ty!(Ty::U8), OPT_STRING])),  // TLS-alert-received
    None,                                                // HTTP-request-denied
    None,                                                // HTTP-request-length-required
    Some(OPT_U64),                                       // HTTP-request-body-size
    None,                                                // HTTP-request-method-invalid
    None,                                                // HTTP-request-URI-invalid
    None,                                                // HTTP-request-URI-too-long
    Some(OPT_U32),                                       // HTTP-request-header-section-size
    Some(option_ty!(FIELD_SIZE)),                        // HTTP-request-header-size
    Some(OPT_U32),                                       // HTTP-request-trailer-section-size
    Some(FIELD_SIZE),                                    // HTTP-request-trailer-size
    None,                                                // HTTP-response-incomplete
    Some(OPT_U32),                                       // HTTP-response-header-section-size
    Some(FIELD_SIZE),                                    // HTTP-response-header-size
    Some(OPT_U64),                                       // HTTP-response-body-size
    Some(OPT_U32),                                       // HTTP-response-trailer-section-size
    Some(FIELD_SIZE),                                    // HTTP-response-trailer-size
    Some(OPT_STRING),                                    // HTTP-response-transfer-coding
    Some(OPT_STRING),                                    // HTTP-response-content-coding
    None,                                                // HTTP-response-timeout
    None,                                                // HTTP-upgrade-failed
    None,                                                // HTTP-protocol-error
    None,                                                // loop-detected
    None,                                                // configuration-error
    Some(OPT_STRING),                                    // internal-error
]);

/// The `error-code` cases Flint produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    DnsError(String),
    DestinationIpProhibited,
    ConnectionRefused,
    ConnectionTerminated,
    ConnectionTimeout,
    ConnectionReadTimeout,
    RequestDenied,
    RequestUriInvalid,
    ResponseIncomplete,
    ResponseHeaderSectionSize,
    ResponseBodySize(u64),
    /// An outbound request body over what Flint will hold, at this many bytes.
    RequestBodySize(u64),
    ProtocolError,
    Tls(crate::tls::TlsFailure),
    Internal(String),
}

impl ErrorCode {
    pub fn to_value(&self) -> Value {
        let none = Value::none;
        match self {
            ErrorCode::DnsError(rcode) => Value::case(
                1,
                Some(Value::Tuple(vec![
                    Value::some(Value::string(rcode.clone())),
                    none(),
                ])),
            ),
            ErrorCode::DestinationIpProhibited => Value::case(4, None),
            ErrorCode::ConnectionRefused => Value::case(6, None),
            ErrorCode::ConnectionTerminated => Value::case(7, None),
            ErrorCode::ConnectionTimeout => Value::case(8, None),
            ErrorCode::ConnectionReadTimeout => Value::case(9, None),
            ErrorCode::RequestDenied => Value::case(15, None),
            ErrorCode::RequestBodySize(n) => Value::case(17, Some(Value::some(Value::U64(*n)))),
            ErrorCode::RequestUriInvalid => Value::case(19, None),
            ErrorCode::ResponseIncomplete => Value::case(25, None),
            ErrorCode::ResponseHeaderSectionSize => Value::case(26, Some(none())),
            ErrorCode::ResponseBodySize(n) => Value::case(28, Some(Value::some(Value::U64(*n)))),
            ErrorCode::ProtocolError => Value::case(35, None),
            ErrorCode::Tls(crate::tls::TlsFailure::Protocol(_)) => Value::case(12, None),
            ErrorCode::Tls(crate::tls::TlsFailure::Certificate(_)) => Value::case(13, None),
            ErrorCode::Tls(crate::tls::TlsFailure::Alert { id, description }) => Value::case(
                14,
                Some(Value::Tuple(vec![
                    Value::option(id.map(Value::U8)),
                    Value::some(Value::string(description.clone())),
                ])),
            ),
            ErrorCode::Internal(message) => {
                Value::case(38, Some(Value::some(Value::string(message.clone()))))
            }
        }
    }
}

pub type HeaderList = Vec<(String, Vec<u8>)>;

pub struct Fields {
    pub(super) entries: HeaderList,
    pub(super) immutable: bool,
}

fn header_bytes(entries: &HeaderList) -> usize {
    entries.iter().map(|(k, v)| k.len() + v.len() + 32).sum()
}

/// Pushes a fields resource, charging its bytes to the instance.
pub(super) fn push_fields(
    state: &mut GuestState,
    entries: HeaderList,
    immutable: bool,
) -> Result<u32, Error> {
    state.host.charge(header_bytes(&entries))?;
    state.host.resources.push(Fields { entries, immutable })
}

/// A request as the HTTP trigger hands it to a guest.
pub struct IncomingRequest {
    pub method: String,
    pub path_with_query: String,
    pub scheme: String,
    pub authority: String,
    pub headers: HeaderList,
    pub body: Option<Vec<u8>>,
}

pub struct IncomingResponse {
    pub status: u16,
    pub headers: HeaderList,
    pub body: Option<Vec<u8>>,
}

pub struct IncomingBody {
    data: Option<Vec<u8>>,
}

pub struct FutureTrailers;

pub struct OutgoingResponse {
    status: u16,
    headers: HeaderList,
    body: Option<BodyId>,
}

pub struct OutgoingBody {
    body: BodyId,
    stream_taken: bool,
}

/// An outbound request while the guest builds it.
pub struct OutgoingRequest {
    pub method: String,
    pub path_with_query: Option<String>,
    pub scheme: Option<String>,
    pub authority: Option<String>,
    pub headers: HeaderList,
    pub body: Option<BodyId>,
}

#[derive(Default, Clone, Copy)]
pub struct RequestOptions {
    pub connect_timeout_ns: Option<u64>,
    pub first_byte_timeout_ns: Option<u64>,
    pub between_bytes_timeout_ns: Option<u64>,
}

pub struct ResponseOutparam;

/// An outbound response: the request waits here until the guest asks for the
/// response (so that its body has been written), then the answer does.
pub enum FutureIncomingResponse {
    /// The request, its options, and the allow-list entry that permitted it.
    Pending(Box<(OutgoingRequest, RequestOptions, usize)>),
    Ready(Result<IncomingResponse, ErrorCode>),
    Taken,
}

/// What `response-outparam.set` delivered.
pub struct ResponseHead {
    pub status: u16,
    pub headers: HeaderList,
    pub body: BodyId,
}

// ---- values ----

pub fn method_value(method: &str) -> Value {
    match METHODS.iter().position(|m| *m == method) {
        Some(i) => Value::case(i as u32, None),
        None => Value::case(9, Some(Value::string(method))),
    }
}

pub(super) fn method_from(value: Value) -> Result<Option<String>, Error> {
    let (disc, payload) = value.into_variant()?;
    Ok(match (METHODS.get(disc as usize), payload) {
        (Some(m), _) => Some((*m).to_owned()),
        (None, Some(other)) => Some(other.into_string()?).filter(|m| is_token(m.as_bytes())),
        (None, None) => None,
    })
}

pub(super) fn scheme_value(scheme: &str) -> Value {
    match scheme {
        "http" => Value::case(0, None),
        "https" => Value::case(1, None),
        other => Value::case(2, Some(Value::string(other))),
    }
}

pub(super) fn scheme_from(value: Value) -> Result<String, Error> {
    let (disc, payload) = value.into_variant()?;
    Ok(match (disc, payload) {
        (0, _) => "http".to_owned(),
        (1, _) => "https".to_owned(),
        (_, Some(other)) => other.into_string()?.to_ascii_lowercase(),
        _ => String::new(),
    })
}

pub(super) fn headers_value(entries: &HeaderList) -> Value {
    Value::List(
        entries
            .iter()
            .map(|(k, v)| Value::Tuple(vec![Value::string(k.clone()), Value::Bytes(v.clone())]))
            .collect(),
    )
}

fn opt_string(value: Option<&String>) -> Value {
    Value::option(value.map(|s| Value::string(s.clone())))
}

// ---- fields ----

/// Hop-by-hop fields belong to the connection, which the host owns.
const FORBIDDEN: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// `header-error` discriminants.
const INVALID_SYNTAX: u32 = 0;
const FORBIDDEN_FIELD: u32 = 1;
const IMMUTABLE: u32 = 2;

pub(super) fn check_field(name: &str, value: &[u8]) -> Result<String, u32> {
    let value_ok = std::str::from_utf8(value)
        .map_or(!value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)), |v| {
            is_valid_header(name, v)
        });
    if !is_token(name.as_bytes()) || !value_ok {
        return Err(INVALID_SYNTAX);
    }
    let name = name.to_ascii_lowercase();
    if FORBIDDEN.contains(&name.as_str()) {
        return Err(FORBIDDEN_FIELD);
    }
    Ok(name)
}

pub(super) fn header_result(result: Result<(), u32>) -> Value {
    match result {
        Ok(()) => Value::ok_unit(),
        Err(e) => Value::err(Value::case(e, None)),
    }
}

pub(super) fn fields_new(state: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::Handle(push_fields(state, Vec::new(), false)?))
}

pub(super) fn fields_from_list(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let mut entries = Vec::new();
    for entry in args.list()? {
        let mut pair = entry.into_tuple()?.into_iter();
        let (Some(name), Some(value)) = (pair.next(), pair.next()) else {
            return Err(Error::new("host bug: malformed field entry"));
        };
        let value = value.into_bytes()?;
        match check_field(&name.into_string()?, &value) {
            Ok(name) => entries.push((name, value)),
            Err(e) => return Ok(Value::err(Value::case(e, None))),
        }
    }
    Ok(Value::ok(Value::Handle(push_fields(
        state, entries, false,
    )?)))
}

pub(super) fn fields_get(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let fields = state.host.resources.get::<Fields>(args.handle()?)?;
    let name = args.string()?;
    Ok(Value::List(
        fields
            .entries
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(&name))
            .map(|(_, v)| Value::Bytes(v.clone()))
            .collect(),
    ))
}

pub(super) fn fields_has(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let fields = state.host.resources.get::<Fields>(args.handle()?)?;
    let name = args.string()?;
    Ok(Value::Bool(
        fields
            .entries
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(&name)),
    ))
}

/// `set`, `delete` and `append`: one checked edit of mutable fields.
pub(super) fn edit_fields(
    state: &mut GuestState,
    handle: u32,
    name: &str,
    values: &[Vec<u8>],
    replace: bool,
) -> Result<Value, Error> {
    if state.host.resources.get::<Fields>(handle)?.immutable {
        return Ok(header_result(Err(IMMUTABLE)));
    }
    let mut checked = Vec::with_capacity(values.len());
    for value in values {
        match check_field(name, value) {
            Ok(name) => checked.push((name, value.clone())),
            Err(e) => return Ok(header_result(Err(e))),
        }
    }
    if !is_token(name.as_bytes()) {
        return Ok(header_result(Err(INVALID_SYNTAX)));
    }
    state.host.charge(header_bytes(&checked))?;
    let fields = state.host.resources.get::<Fields>(handle)?;
    if replace {
        fields
            .entries
            .retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }
    fields.entries.extend(checked);
    Ok(header_result(Ok(())))
}

pub(super) fn fields_set(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let name = args.string()?;
    let values = args
        .list()?
        .into_iter()
        .map(Value::into_bytes)
        .collect::<Result<Vec<_>, _>>()?;
    edit_fields(state, handle, &name, &values, true)
}

pub(super) fn fields_delete(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let name = args.string()?;
    edit_fields(state, handle, &name, &[], true)
}

pub(super) fn fields_append(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let name = args.string()?;
    let value = args.bytes()?;
    edit_fields(state, handle, &name, &[value], false)
}

pub(super) fn fields_entries(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let fields = state.host.resources.get::<Fields>(args.handle()?)?;
    Ok(headers_value(&fields.entries))
}

pub(super) fn fields_clone(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let entries = state
        .host
        .resources
        .get::<Fields>(args.handle()?)?
        .entries
        .clone();
    let fields = Fields {
        entries,
        immutable: false,
    };
    Ok(Value::Handle(state.host.resources.push(fields)?))
}

// ---- incoming requests, responses and bodies ----

fn request_method(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = state
        .host
        .resources
        .get::<IncomingRequest>(args.handle()?)?;
    Ok(method_value(&request.method))
}

fn request_path_with_query(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = state
        .host
        .resources
        .get::<IncomingRequest>(args.handle()?)?;
    Ok(Value::some(Value::string(request.path_with_query.clone())))
}

fn request_scheme(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = state
        .host
        .resources
        .get::<IncomingRequest>(args.handle()?)?;
    Ok(Value::some(scheme_value(&request.scheme)))
}

fn request_authority(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = state
        .host
        .resources
        .get::<IncomingRequest>(args.handle()?)?;
    Ok(Value::some(Value::string(request.authority.clone())))
}

fn request_headers(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = state
        .host
        .resources
        .get::<IncomingRequest>(args.handle()?)?;
    let entries = request.headers.clone();
    Ok(Value::Handle(push_fields(state, entries, true)?))
}

/// `consume` hands the body out once; later calls fail.
fn consume_body(state: &mut GuestState, body: Option<Vec<u8>>) -> Result<Value, Error> {
    Ok(match body {
        Some(data) => {
            let body = IncomingBody { data: Some(data) };
            Value::ok(Value::Handle(state.host.resources.push(body)?))
        }
        None => Value::err_unit(),
    })
}

fn request_consume(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let body = state
        .host
        .resources
        .get::<IncomingRequest>(args.handle()?)?
        .body
        .take();
    consume_body(state, body)
}

fn response_status(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let response = state
        .host
        .resources
        .get::<IncomingResponse>(args.handle()?)?;
    Ok(Value::U16(response.status))
}

fn response_headers(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let response = state
        .host
        .resources
        .get::<IncomingResponse>(args.handle()?)?;
    let entries = response.headers.clone();
    Ok(Value::Handle(push_fields(state, entries, true)?))
}

fn response_consume(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let body = state
        .host
        .resources
        .get::<IncomingResponse>(args.handle()?)?
        .body
        .take();
    consume_body(state, body)
}

fn body_stream(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let body = state.host.resources.get::<IncomingBody>(args.handle()?)?;
    Ok(match body.data.take() {
        Some(data) => Value::ok(Value::Handle(
            state.host.resources.push(InputStream::new(data))?,
        )),
        None => Value::err_unit(),
    })
}

fn body_finish(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    state.host.resources.take::<IncomingBody>(args.handle()?)?;
    Ok(Value::Handle(state.host.resources.push(FutureTrailers)?))
}

fn trailers_subscribe(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    state.host.resources.get::<FutureTrailers>(args.handle()?)?;
    Ok(Value::Handle(state.host.resources.push(Pollable::Ready)?))
}

/// HTTP/1.1 requests through Flint carry no trailers.
fn trailers_get(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    state.host.resources.get::<FutureTrailers>(args.handle()?)?;
    Ok(Value::some(Value::ok(Value::ok(Value::none()))))
}

// ---- outgoing responses and bodies ----

pub(super) fn take_fields(state: &mut GuestState, handle: u32) -> Result<HeaderList, Error> {
    Ok(state.host.resources.take::<Fields>(handle)?.entries)
}

fn response_new(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let headers = take_fields(state, args.handle()?)?;
    let response = OutgoingResponse {
        status: 200,
        headers,
        body: None,
    };
    Ok(Value::Handle(state.host.resources.push(response)?))
}

fn response_status_code(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let response = state
        .host
        .resources
        .get::<OutgoingResponse>(args.handle()?)?;
    Ok(Value::U16(response.status))
}

fn response_set_status_code(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let response = state
        .host
        .resources
        .get::<OutgoingResponse>(args.handle()?)?;
    let status = args.u16()?;
    if !(200..=999).contains(&status) {
        return Ok(Value::err_unit());
    }
    response.status = status;
    Ok(Value::ok_unit())
}

fn outgoing_response_headers(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let response = state
        .host
        .resources
        .get::<OutgoingResponse>(args.handle()?)?;
    let entries = response.headers.clone();
    Ok(Value::Handle(push_fields(state, entries, true)?))
}

/// `body` on a request or response: the body is created once.
fn open_body(state: &mut GuestState, slot: Option<BodyId>) -> Result<(Value, BodyId), Error> {
    if let Some(id) = slot {
        return Ok((Value::err_unit(), id));
    }
    let id = state.host.bodies.create();
    let body = OutgoingBody {
        body: id,
        stream_taken: false,
    };
    let handle = state.host.resources.push(body)?;
    Ok((Value::ok(Value::Handle(handle)), id))
}

fn response_body(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let slot = state.host.resources.get::<OutgoingResponse>(handle)?.body;
    let (value, id) = open_body(state, slot)?;
    state.host.resources.get::<OutgoingResponse>(handle)?.body = Some(id);
    Ok(value)
}

fn body_write(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let body = state.host.resources.get::<OutgoingBody>(args.handle()?)?;
    if std::mem::replace(&mut body.stream_taken, true) {
        return Ok(Value::err_unit());
    }
    let stream = OutputStream::body(body.body);
    Ok(Value::ok(Value::Handle(state.host.resources.push(stream)?)))
}

fn outgoing_body_finish(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let body = state.host.resources.take::<OutgoingBody>(args.handle()?)?;
    // HTTP/1.1 with a Content-Length has no place for trailers; they are dropped.
    if let Some(trailers) = args.option()? {
        state
            .host
            .resources
            .take::<Fields>(trailers.into_handle()?)?;
    }
    state.host.bodies.finish(body.body);
    Ok(Value::ok_unit())
}

fn outparam_set(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    state
        .host
        .resources
        .take::<ResponseOutparam>(args.handle()?)?;
    let (disc, payload) = args.variant()?;
    let delivered = match (disc, payload) {
        (0, Some(response)) => {
            let response = state
                .host
                .resources
                .take::<OutgoingResponse>(response.into_handle()?)?;
            let body = response.body.unwrap_or_else(|| {
                // A response whose body was never opened is empty.
                let id = state.host.bodies.create();
                state.host.bodies.finish(id);
                id
            });
            Ok(ResponseHead {
                status: response.status,
                headers: response.headers,
                body,
            })
        }
        (_, code) => Err(format!("the guest answered with error-code {code:?}")),
    };
    state.host.response = Some(delivered);
    Ok(Value::unit())
}

// ---- outgoing requests ----

fn request_new(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let headers = take_fields(state, args.handle()?)?;
    let request = OutgoingRequest {
        method: "GET".to_owned(),
        path_with_query: None,
        scheme: None,
        authority: None,
        headers,
        body: None,
    };
    Ok(Value::Handle(state.host.resources.push(request)?))
}

fn outgoing_request<'s>(
    state: &'s mut GuestState,
    args: &mut Args,
) -> Result<&'s mut OutgoingRequest, Error> {
    state.host.resources.get::<OutgoingRequest>(args.handle()?)
}

fn request_body(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let slot = state.host.resources.get::<OutgoingRequest>(handle)?.body;
    let (value, id) = open_body(state, slot)?;
    state.host.resources.get::<OutgoingRequest>(handle)?.body = Some(id);
    Ok(value)
}

fn out_method(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    Ok(method_value(&outgoing_request(state, &mut args)?.method))
}

fn out_set_method(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = outgoing_request(state, &mut args)?;
    Ok(match method_from(args.value()?)? {
        Some(method) => {
            request.method = method;
            Value::ok_unit()
        }
        None => Value::err_unit(),
    })
}

fn out_path(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    Ok(opt_string(
        outgoing_request(state, &mut args)?.path_with_query.as_ref(),
    ))
}

fn out_set_path(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = outgoing_request(state, &mut args)?;
    let path = args.option()?.map(Value::into_string).transpose()?;
    if path
        .as_deref()
        .is_some_and(|p| p.contains(['\r', '\n', ' ', '\0']))
    {
        return Ok(Value::err_unit());
    }
    request.path_with_query = path;
    Ok(Value::ok_unit())
}

fn out_scheme(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = outgoing_request(state, &mut args)?;
    Ok(Value::option(request.scheme.as_deref().map(scheme_value)))
}

fn out_set_scheme(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = outgoing_request(state, &mut args)?;
    let scheme = args.option()?.map(scheme_from).transpose()?;
    // RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    let valid = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    };
    if scheme.as_deref().is_some_and(|s| !valid(s)) {
        return Ok(Value::err_unit());
    }
    request.scheme = scheme;
    Ok(Value::ok_unit())
}

fn out_authority(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    Ok(opt_string(
        outgoing_request(state, &mut args)?.authority.as_ref(),
    ))
}

fn out_set_authority(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = outgoing_request(state, &mut args)?;
    let authority = args.option()?.map(Value::into_string).transpose()?;
    let valid = |a: &str| {
        a.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b"/?#@".contains(&b))
    };
    if authority.as_deref().is_some_and(|a| !valid(a)) {
        return Ok(Value::err_unit());
    }
    request.authority = authority;
    Ok(Value::ok_unit())
}

fn out_headers(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let entries = outgoing_request(state, &mut args)?.headers.clone();
    Ok(Value::Handle(push_fields(state, entries, true)?))
}

pub(super) fn options_new(state: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::Handle(
        state.host.resources.push(RequestOptions::default())?,
    ))
}

/// Getters and setters of the three `request-options` timeouts.
macro_rules! timeout_accessors {
    ($($get:ident, $set:ident => $field:ident;)+) => {$(
        pub(super) fn $get(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
            let options = state.host.resources.get::<RequestOptions>(args.handle()?)?;
            Ok(Value::option(options.$field.map(Value::U64)))
        }
        pub(super) fn $set(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
            let options = state.host.resources.get::<RequestOptions>(args.handle()?)?;
            options.$field = match args.option()? {
                Some(Value::U64(ns)) => Some(ns),
                _ => None,
            };
            Ok(Value::ok_unit())
        }
    )+};
}

timeout_accessors! {
    connect_timeout, set_connect_timeout => connect_timeout_ns;
    first_byte_timeout, set_first_byte_timeout => first_byte_timeout_ns;
    between_bytes_timeout, set_between_bytes_timeout => between_bytes_timeout_ns;
}

fn future_subscribe(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    state.host.resources.get::<FutureIncomingResponse>(handle)?;
    Ok(Value::Handle(
        state.host.resources.push(Pollable::Response(handle))?,
    ))
}

fn future_get(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    if !super::outgoing_handler::resolve(state, handle)? {
        // The request body is not finished yet: the response is not ready.
        return Ok(Value::none());
    }
    let future = state.host.resources.get::<FutureIncomingResponse>(handle)?;
    Ok(
        match std::mem::replace(future, FutureIncomingResponse::Taken) {
            FutureIncomingResponse::Ready(Ok(response)) => {
                let handle = state.host.resources.push(response)?;
                Value::some(Value::ok(Value::ok(Value::Handle(handle))))
            }
            FutureIncomingResponse::Ready(Err(code)) => {
                Value::some(Value::ok(Value::err(code.to_value())))
            }
            FutureIncomingResponse::Taken | FutureIncomingResponse::Pending(_) => {
                Value::some(Value::err_unit())
            }
        },
    )
}

/// A guest that drops the future without waiting still gets its request
/// sent (fire and forget), as when the host sends it concurrently.
fn drop_future(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    super::outgoing_handler::resolve(state, handle)?;
    state
        .host
        .resources
        .take::<FutureIncomingResponse>(handle)?;
    Ok(Value::unit())
}

/// Flint's `wasi:io` errors carry no HTTP error code.
fn http_error_code(_: &mut GuestState, _: Args) -> Result<Value, Error> {
    Ok(Value::none())
}

const OPT_TIMEOUT: Ty = OPT_U64;

pub const FUNCTIONS: &[HostFn<GuestState>] = &[
    host_fn!("[constructor]fields", [] -> Ty::Handle, fields_new),
    host_fn!("[static]fields.from-list", [Ty::List(&ENTRY)] -> result_ty!(Ty::Handle, HEADER_ERROR), fields_from_list),
    host_fn!("[method]fields.get", [Ty::Handle, Ty::String] -> Ty::List(&BYTES), fields_get),
    host_fn!("[method]fields.has", [Ty::Handle, Ty::String] -> Ty::Bool, fields_has),
    host_fn!("[method]fields.set", [Ty::Handle, Ty::String, Ty::List(&BYTES)] -> result_ty!(_, HEADER_ERROR), fields_set),
    host_fn!("[method]fields.delete", [Ty::Handle, Ty::String] -> result_ty!(_, HEADER_ERROR), fields_delete),
    host_fn!("[method]fields.append", [Ty::Handle, Ty::String, BYTES] -> result_ty!(_, HEADER_ERROR), fields_append),
    host_fn!("[method]fields.entries", [Ty::Handle] -> Ty::List(&ENTRY), fields_entries),
    host_fn!("[method]fields.clone", [Ty::Handle] -> Ty::Handle, fields_clone),
    host_fn!("[method]incoming-request.method", [Ty::Handle] -> METHOD, request_method),
    host_fn!("[method]incoming-request.path-with-query", [Ty::Handle] -> OPT_STRING, request_path_with_query),
    host_fn!("[method]incoming-request.scheme", [Ty::Handle] -> option_ty!(SCHEME), request_scheme),
    host_fn!("[method]incoming-request.authority", [Ty::Handle] -> OPT_STRING, request_authority),
    host_fn!("[method]incoming-request.headers", [Ty::Handle] -> Ty::Handle, request_headers),
    host_fn!("[method]incoming-request.consume", [Ty::Handle] -> result_ty!(Ty::Handle, _), request_consume),
    host_fn!("[method]incoming-response.status", [Ty::Handle] -> Ty::U16, response_status),
    host_fn!("[method]incoming-response.headers", [Ty::Handle] -> Ty::Handle, response_headers),
    host_fn!("[method]incoming-response.consume", [Ty::Handle] -> result_ty!(Ty::Handle, _), response_consume),
    host_fn!("[method]incoming-body.stream", [Ty::Handle] -> result_ty!(Ty::Handle, _), body_stream),
    host_fn!("[static]incoming-body.finish", [Ty::Handle] -> Ty::Handle, body_finish),
    host_fn!("[method]future-trailers.subscribe", [Ty::Handle] -> Ty::Handle, trailers_subscribe),
    host_fn!("[method]future-trailers.get", [Ty::Handle] -> option_ty!(result_ty!(result_ty!(option_ty!(Ty::Handle), ERROR_CODE), _)), trailers_get),
    host_fn!("[constructor]outgoing-response", [Ty::Handle] -> Ty::Handle, response_new),
    host_fn!("[method]outgoing-response.status-code", [Ty::Handle] -> Ty::U16, response_status_code),
    host_fn!("[method]outgoing-response.set-status-code", [Ty::Handle, Ty::U16] -> result_ty!(_, _), response_set_status_code),
    host_fn!("[method]outgoing-response.headers", [Ty::Handle] -> Ty::Handle, outgoing_response_headers),
    host_fn!("[method]outgoing-response.body", [Ty::Handle] -> result_ty!(Ty::Handle, _), response_body),
    host_fn!("[method]outgoing-body.write", [Ty::Handle] -> result_ty!(Ty::Handle, _), body_write),
    host_fn!("[static]outgoing-body.finish", [Ty::Handle, option_ty!(Ty::Handle)] -> result_ty!(_, ERROR_CODE), outgoing_body_finish),
    host_fn!(
        "[static]response-outparam.set",
        [Ty::Handle, result_ty!(Ty::Handle, ERROR_CODE)],
        outparam_set
    ),
    host_fn!("[constructor]outgoing-request", [Ty::Handle] -> Ty::Handle, request_new),
    host_fn!("[method]outgoing-request.body", [Ty::Handle] -> result_ty!(Ty::Handle, _), request_body),
    host_fn!("[method]outgoing-request.method", [Ty::Handle] -> METHOD, out_method),
    host_fn!("[method]outgoing-request.set-method", [Ty::Handle, METHOD] -> result_ty!(_, _), out_set_method),
    host_fn!("[method]outgoing-request.path-with-query", [Ty::Handle] -> OPT_STRING, out_path),
    host_fn!("[method]outgoing-request.set-path-with-query", [Ty::Handle, OPT_STRING] -> result_ty!(_, _), out_set_path),
    host_fn!("[method]outgoing-request.scheme", [Ty::Handle] -> option_ty!(SCHEME), out_scheme),
    host_fn!("[method]outgoing-request.set-scheme", [Ty::Handle, option_ty!(SCHEME)] -> result_ty!(_, _), out_set_scheme),
    host_fn!("[method]outgoing-request.authority", [Ty::Handle] -> OPT_STRING, out_authority),
    host_fn!("[method]outgoing-request.set-authority", [Ty::Handle, OPT_STRING] -> result_ty!(_, _), out_set_authority),
    host_fn!("[method]outgoing-request.headers", [Ty::Handle] -> Ty::Handle, out_headers),
    host_fn!("[constructor]request-options", [] -> Ty::Handle, options_new),
    host_fn!("[method]request-options.connect-timeout", [Ty::Handle] -> OPT_TIMEOUT, connect_timeout),
    host_fn!("[method]request-options.set-connect-timeout", [Ty::Handle, OPT_TIMEOUT] -> result_ty!(_, _), set_connect_timeout),
    host_fn!("[method]request-options.first-byte-timeout", [Ty::Handle] -> OPT_TIMEOUT, first_byte_timeout),
    host_fn!("[method]request-options.set-first-byte-timeout", [Ty::Handle, OPT_TIMEOUT] -> result_ty!(_, _), set_first_byte_timeout),
    host_fn!("[method]request-options.between-bytes-timeout", [Ty::Handle] -> OPT_TIMEOUT, between_bytes_timeout),
    host_fn!("[method]request-options.set-between-bytes-timeout", [Ty::Handle, OPT_TIMEOUT] -> result_ty!(_, _), set_between_bytes_timeout),
    host_fn!("[method]future-incoming-response.subscribe", [Ty::Handle] -> Ty::Handle, future_subscribe),
    host_fn!("[method]future-incoming-response.get", [Ty::Handle] -> option_ty!(result_ty!(result_ty!(Ty::Handle, ERROR_CODE), _)), future_get),
    host_fn!("http-error-code", [Ty::Handle] -> option_ty!(ERROR_CODE), http_error_code),
    drop_fn!("fields", Fields),
    drop_fn!("incoming-request", IncomingRequest),
    drop_fn!("incoming-response", IncomingResponse),
    drop_fn!("incoming-body", IncomingBody),
    drop_fn!("future-trailers", FutureTrailers),
    drop_fn!("outgoing-request", OutgoingRequest),
    drop_fn!("outgoing-response", OutgoingResponse),
    drop_fn!("outgoing-body", OutgoingBody),
    drop_fn!("request-options", RequestOptions),
    drop_fn!("response-outparam", ResponseOutparam),
    host_fn!(
        "[resource-drop]future-incoming-response",
        [Ty::Handle],
        drop_future
    ),
];
