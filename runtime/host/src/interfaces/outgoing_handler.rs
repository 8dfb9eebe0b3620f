//! `wasi:http/outgoing-handler@0.2.0`: outbound HTTP, checked against the
//! component's `allowed_outbound_hosts` before anything touches the network.
//!
//! Which failure comes from where follows Spin (wasmtime's `handle`, then
//! Spin's request sender): `handle` itself refuses only a request that
//! cannot be built (a scheme other than `http`/`https`: `HTTP-protocol-error`;
//! an unreadable authority: `HTTP-request-URI-invalid`). Everything else,
//! the permission check first (`HTTP-request-denied`), then connecting and
//! the exchange, is what the returned future resolves to.

use wasmi::Error;

use super::http_types::{
    ERROR_CODE, ErrorCode, FutureIncomingResponse, IncomingResponse, OutgoingRequest,
    RequestOptions,
};
use super::{GuestState, host_fn};
use crate::capabilities::{Capabilities, OutboundOutcome};
use crate::outbound_hosts::default_port;
use crate::outbound_http::{self, Bounds};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::{option_ty, result_ty};

fn handle(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let request = state
        .host
        .resources
        .take::<OutgoingRequest>(args.handle()?)?;
    let options = match args.option()? {
        Some(handle) => state
            .host
            .resources
            .take::<RequestOptions>(handle.into_handle()?)?,
        None => RequestOptions::default(),
    };
    let future = match admit(&state.host.caps, &request) {
        Ok(pattern) => FutureIncomingResponse::Pending(Box::new((request, options, pattern))),
        Err(refused @ (ErrorCode::ProtocolError | ErrorCode::RequestUriInvalid)) => {
            return Ok(Value::err(refused.to_value()));
        }
        Err(denied) => FutureIncomingResponse::Ready(Err(denied)),
    };
    Ok(Value::ok(Value::Handle(state.host.resources.push(future)?)))
}

/// Whether `request` may go out, and through which allow-list entry: a
/// scheme other than http/https is `HTTP-protocol-error`, an authority
/// without a host `HTTP-request-URI-invalid`, a host not in
/// `allowed_outbound_hosts` `HTTP-request-denied` (each logged).
fn admit(caps: &Capabilities, request: &OutgoingRequest) -> Result<usize, ErrorCode> {
    let scheme = request.scheme.as_deref().unwrap_or("https");
    let authority = request.authority.as_deref().unwrap_or_default();
    let url = format!(
        "{scheme}://{authority}{}",
        request.path_with_query.as_deref().unwrap_or("/")
    );
    if !matches!(scheme, "http" | "https") {
        tracing::warn!(target: "flint::outbound", component = %caps.component, %url, "outbound HTTP refused: scheme `{scheme}` is not http or https");
        return Err(ErrorCode::ProtocolError);
    }
    // No authority is, for Spin, a request to the app itself (service
    // chaining), which Flint does not offer: refused as not permitted.
    let allowed = match split_authority(authority, scheme) {
        Some((host, port)) => caps.allowed_hosts.matching(scheme, host, port),
        None if authority.is_empty() => None,
        None => {
            tracing::warn!(target: "flint::outbound", component = %caps.component, %url, "outbound HTTP refused: no host or port in the URL");
            return Err(ErrorCode::RequestUriInvalid);
        }
    };
    allowed.ok_or_else(|| {
        tracing::warn!(target: "flint::outbound", component = %caps.component, %url, "outbound HTTP denied: not in allowed_outbound_hosts");
        caps.outbound_metrics.denied();
        ErrorCode::RequestDenied
    })
}

/// Checks and sends a request whose body is complete (WASI 0.3's
/// `client.send`): the outcome the guest gets, or a trap.
pub fn send_checked(
    state: &mut GuestState,
    request: OutgoingRequest,
    options: RequestOptions,
    body: &[u8],
) -> Result<Result<IncomingResponse, ErrorCode>, Error> {
    match admit(&state.host.caps, &request) {
        Ok(pattern) => {
            deliver::<std::convert::Infallible>(state, &request, options, pattern, Ok(body))
        }
        Err(code) => Ok(Err(code)),
    }
}

/// `host[:port]`, with the scheme's default port.
fn split_authority<'a>(authority: &'a str, scheme: &str) -> Option<(&'a str, u16)> {
    let port_at = match authority.rfind(']') {
        Some(end) => authority[end..].find(':').map(|i| end + i),
        None => authority.rfind(':'),
    };
    let (host, port) = match port_at {
        Some(i) => (&authority[..i], authority[i + 1..].parse().ok()?),
        None => (authority, default_port(scheme)?),
    };
    (!host.is_empty()).then_some((host, port))
}

/// Sends a pending outbound request once its body is finished and stores the
/// outcome in its future. False while the body is still being written.
pub fn resolve(state: &mut GuestState, handle: u32) -> Result<bool, Error> {
    let future = state.host.resources.get::<FutureIncomingResponse>(handle)?;
    let FutureIncomingResponse::Pending(pending) = future else {
        return Ok(true);
    };
    if pending
        .0
        .body
        .is_some_and(|id| !state.host.bodies.is_finished(id))
    {
        return Ok(false);
    }
    let FutureIncomingResponse::Pending(pending) =
        std::mem::replace(future, FutureIncomingResponse::Taken)
    else {
        unreachable!("matched above");
    };
    let (request, options, pattern) = *pending;
    let body = match request.body {
        Some(id) => state.host.bodies.take(id),
        None => Ok(Vec::new()),
    };
    let outcome = deliver(state, &request, options, pattern, body.as_deref())?;
    *state.host.resources.get::<FutureIncomingResponse>(handle)? =
        FutureIncomingResponse::Ready(outcome);
    Ok(true)
}

/// Sends an admitted request, counts the outcome for its allow-list entry
/// and charges the response to the instance.
fn deliver<E: std::fmt::Display>(
    state: &mut GuestState,
    request: &OutgoingRequest,
    options: RequestOptions,
    pattern: usize,
    body: Result<&[u8], E>,
) -> Result<Result<IncomingResponse, ErrorCode>, Error> {
    let caps = state.host.caps.clone();
    let outcome = match body {
        Err(e) => Err(ErrorCode::Internal(format!("request body: {e}"))),
        Ok(body) => send(&caps, request, options, body),
    };
    let counted = match outcome {
        Ok(_) => OutboundOutcome::Ok,
        Err(_) => OutboundOutcome::Error,
    };
    caps.outbound_metrics.record(pattern, counted);
    match &outcome {
        Err(code) => {
            tracing::warn!(target: "flint::outbound", component = %caps.component, authority = request.authority.as_deref().unwrap_or_default(), "outbound HTTP failed: {code:?}");
        }
        Ok(response) => state.host.charge(
            response.body.as_ref().map_or(0, Vec::len)
                + response
                    .headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>(),
        )?,
    }
    Ok(outcome)
}

fn send(
    caps: &Capabilities,
    request: &OutgoingRequest,
    options: RequestOptions,
    body: &[u8],
) -> Result<IncomingResponse, ErrorCode> {
    let bounds = &caps.services.outbound;
    let scheme = request.scheme.as_deref().unwrap_or("https");
    let authority = request.authority.as_deref().unwrap_or_default();
    let (host, port) = split_authority(authority, scheme).ok_or(ErrorCode::RequestUriInvalid)?;
    // `handle` admitted only http and https.
    let tls = (scheme == "https").then(|| caps.services.tls.for_component(&caps.component, host));
    // A guest may shorten the host's timeouts, never extend them.
    let shorter = |limit: std::time::Duration, ns: Option<u64>| {
        ns.map_or(limit, |ns| limit.min(std::time::Duration::from_nanos(ns)))
    };
    let bounds = Bounds {
        connect_timeout: shorter(bounds.connect_timeout, options.connect_timeout_ns),
        io_timeout: shorter(
            bounds.io_timeout,
            options
                .first_byte_timeout_ns
                .or(options.between_bytes_timeout_ns),
        ),
        ..*bounds
    };
    let response = outbound_http::send(
        &outbound_http::Request {
            method: &request.method,
            host: host.trim_start_matches('[').trim_end_matches(']'),
            port,
            authority,
            path_with_query: request.path_with_query.as_deref().unwrap_or("/"),
            headers: &request.headers,
            body,
            tls,
            blocked: &caps.services.blocked,
        },
        bounds,
    )
    .inspect_err(|e| {
        if let ErrorCode::Tls(failure) = e {
            tracing::warn!(target: "flint::tls", component = %caps.component, %host, port, "{failure}");
        }
    })?;
    Ok(IncomingResponse {
        status: response.status,
        headers: response.headers,
        body: Some(response.body),
    })
}

pub const FUNCTIONS: &[HostFn<GuestState>] = &[host_fn!(
    "handle",
    [Ty::Handle, option_ty!(Ty::Handle)] -> result_ty!(Ty::Handle, ERROR_CODE),
    handle
)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_get_the_schemes_default_port() {
        assert_eq!(
            split_authority("example.com", "http"),
            Some(("example.com", 80))
        );
        assert_eq!(
            split_authority("example.com:8080", "http"),
            Some(("example.com", 8080))
        );
        assert_eq!(split_authority("[::1]:9", "http"), Some(("[::1]", 9)));
        assert_eq!(split_authority("", "http"), None);
        assert_eq!(split_authority("h:notaport", "http"), None);
    }
}
