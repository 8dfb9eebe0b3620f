//! `fermyon:spin/postgres@2.0.0`, `spin:postgres/postgres@3.0.0` and
//! `spin:postgres/postgres@4.x` over Flint's own blocking client
//! ([`crate::outbound_pg`]). The operations are written once; each version
//! is its [`rdbms::Dialect`] (which cases its values, types and errors
//! have).
//!
//! As in Spin (`factor-outbound-pg`): `open` parses the address and checks
//! every host in it against `allowed_outbound_hosts` (scheme `postgres`)
//! before anything is sent, with Spin's `connection-failed` text; then it
//! connects and authenticates. Statements are prepared so the server says
//! what each parameter must be; a result is bounded by the instance's
//! memory limit.

use std::sync::Arc;

use wasmi::Error as Trap;

use super::rdbms::{self, DbValue, Dialect, Error};
use super::{GuestState, drop_fn, host_fn, row_stream};
use crate::capabilities::OutboundOutcome;
use crate::outbound_pg::{self, Address, Client, Failure, Network};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::result_ty;

/// An open session and the allow-list entry that permitted it (for the
/// outbound metrics).
pub struct PgConnection {
    client: Client,
    pattern: usize,
}

/// 4.1's `connection-builder`: an address and, once set, the TLS
/// configuration with the guest's root.
pub struct PgConnectionBuilder {
    address: String,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// Parses `address`, checks it, and connects.
fn connect(
    state: &mut GuestState,
    address: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<PgConnection, Error> {
    let caps = &state.host.caps;
    let parsed = Address::parse(address).map_err(Error::ConnectionFailed)?;
    let mut pattern = None;
    for (i, host) in parsed.hosts.iter().enumerate() {
        let allowed = caps
            .allowed_hosts
            .matching("postgres", host, parsed.port(i));
        let Some(allowed) = allowed else {
            // Spin names the host, and the port only if the address has one.
            let url = match parsed.explicit_port(i) {
                Some(port) => format!("{host}:{port}"),
                None => host.clone(),
            };
            tracing::warn!(target: "flint::outbound", component = %caps.component, host = %url, "outbound PostgreSQL denied: not in allowed_outbound_hosts");
            caps.outbound_metrics.denied();
            return Err(Error::ConnectionFailed(format!(
                "address postgres://{url} is not permitted"
            )));
        };
        pattern.get_or_insert(allowed);
    }
    let services = &caps.services;
    let component = caps.component.clone();
    let tls_for = |host: &str| match &tls {
        Some(config) => config.clone(),
        None => services.tls.for_component(&component, host),
    };
    let network = Network {
        blocked: &services.blocked,
        connect_timeout: services.outbound.connect_timeout,
        io_timeout: services.outbound.io_timeout,
        tls: &tls_for,
    };
    let connected = Client::connect(&parsed, &network);
    // With no host, `connect` has refused the address before any I/O.
    let pattern = pattern.unwrap_or(usize::MAX);
    match connected {
        Ok(client) => Ok(PgConnection { client, pattern }),
        Err(e) => {
            tracing::warn!(target: "flint::outbound", component = %caps.component, "outbound PostgreSQL connection failed: {e}");
            caps.outbound_metrics
                .record(pattern, OutboundOutcome::Error);
            Err(e)
        }
    }
}

fn answer(dialect: &Dialect, result: Result<Value, Error>) -> Value {
    match result {
        Ok(value) => Value::ok(value),
        Err(e) => Value::err(dialect.error(e)),
    }
}

fn open_with(state: &mut GuestState, dialect: &Dialect, mut args: Args) -> Result<Value, Trap> {
    let address = args.string()?;
    let opened = connect(state, &address, None)
        .and_then(|c| push(state, c).map_err(|e| Error::ConnectionFailed(e.to_string())));
    Ok(answer(dialect, opened))
}

fn push(state: &mut GuestState, connection: PgConnection) -> Result<Value, Trap> {
    Ok(Value::Handle(state.host.resources.push(connection)?))
}

/// What a statement is run for.
#[derive(Clone, Copy)]
enum Run {
    Query,
    Execute,
}

fn statement(
    state: &mut GuestState,
    dialect: &Dialect,
    run: Run,
    mut args: Args,
) -> Result<Value, Trap> {
    let handle = args.handle()?;
    let statement = args.string()?;
    let params = dialect.params(args.list()?)?;
    // Spin converts 2.0.0's parameters before it looks at the connection.
    if params.iter().any(|p| {
        matches!(
            p,
            DbValue::Uint8(_) | DbValue::Uint16(_) | DbValue::Uint32(_) | DbValue::Uint64(_)
        )
    }) {
        return Ok(Value::err(dialect.error(Error::ValueConversionFailed(
            outbound_pg::NO_UNSIGNED.into(),
        ))));
    }
    let memory_limit = state.host.memory_limit;
    let caps = state.host.caps.clone();
    let connection = state.host.resources.get::<PgConnection>(handle)?;
    let result = match run {
        Run::Query => connection
            .client
            .query(&statement, &params, memory_limit)
            .map(|rows| dialect.row_set(rows)),
        Run::Execute => connection
            .client
            .execute(&statement, &params)
            .map(Value::U64),
    };
    caps.outbound_metrics
        .record(connection.pattern, rdbms::outcome(&result));
    Ok(answer(
        dialect,
        result.map_err(|failure| match (failure, run) {
            (Failure::Conversion(text), Run::Query) => Error::BadParameter(text),
            (Failure::Conversion(text), Run::Execute) => Error::ValueConversionFailed(text),
            (Failure::Query(q), _) => Error::QueryFailed(q),
        }),
    ))
}

/// One version's table: `open`, `query`, `execute` and the drop, each
/// bound to that version's dialect.
macro_rules! connection_fns {
    ($dialect:path $(, $extra:expr)* $(,)?) => {{
        const D: &Dialect = &$dialect;
        const PARAMS: Ty = Ty::List(&D.parameter_value);
        [
            host_fn!("[static]connection.open", [Ty::String] -> result_ty!(Ty::Handle, D.error),
                |s, a| open_with(s, D, a)),
            host_fn!("[method]connection.query", [Ty::Handle, Ty::String, PARAMS] -> result_ty!(D.row_set, D.error),
                |s, a| statement(s, D, Run::Query, a)),
            host_fn!("[method]connection.execute", [Ty::Handle, Ty::String, PARAMS] -> result_ty!(Ty::U64, D.error),
                |s, a| statement(s, D, Run::Execute, a)),
            drop_fn!("connection", PgConnection),
            $($extra),*
        ]
    }};
}

/// `fermyon:spin/postgres@2.0.0`, over `fermyon:spin/rdbms-types@2.0.0`.
pub const FUNCTIONS_V2: &[HostFn<GuestState>] = &connection_fns!(rdbms::V2);

/// `spin:postgres/postgres@3.0.0`.
pub const FUNCTIONS_V3: &[HostFn<GuestState>] = &connection_fns!(rdbms::PG3);

fn builder_new(state: &mut GuestState, mut args: Args) -> Result<Value, Trap> {
    let address = args.string()?;
    push_builder(state, PgConnectionBuilder { address, tls: None })
}

fn push_builder(state: &mut GuestState, builder: PgConnectionBuilder) -> Result<Value, Trap> {
    Ok(Value::Handle(state.host.resources.push(builder)?))
}

fn set_ca_root(state: &mut GuestState, mut args: Args) -> Result<Value, Trap> {
    let builder = state
        .host
        .resources
        .get::<PgConnectionBuilder>(args.handle()?)?;
    let pem = args.string()?;
    Ok(match crate::tls::with_extra_roots(&pem) {
        Ok(config) => {
            builder.tls = Some(config);
            Value::ok_unit()
        }
        Err(e) => {
            Value::err(rdbms::PG4.error(Error::Other(format!("invalid root certificate: {e}"))))
        }
    })
}

/// Unlike Spin's synchronous `build`, which skips it, the address is
/// checked against `allowed_outbound_hosts` as `open` checks it.
fn build(state: &mut GuestState, mut args: Args) -> Result<Value, Trap> {
    let builder = state
        .host
        .resources
        .get::<PgConnectionBuilder>(args.handle()?)?;
    let (address, tls) = (builder.address.clone(), builder.tls.clone());
    let opened = connect(state, &address, tls)
        .and_then(|c| push(state, c).map_err(|e| Error::ConnectionFailed(e.to_string())));
    Ok(answer(&rdbms::PG4, opened))
}

/// 4.2's `query-async`: `query`, its rows then handed out as a stream.
fn query_streamed(state: &mut GuestState, args: Args) -> Result<Value, Trap> {
    let answer = statement(state, &rdbms::PG4, Run::Query, args)?;
    row_stream::streamed(state, answer, PG4_ROW, &PG4_DONE)
}

const PG4_ROW: &Ty = row_stream::row_of(&rdbms::PG4.row_set);
const PG4_DONE: Ty = result_ty!(_, rdbms::PG4.error);
const PG4_STREAMED: Ty = Ty::Tuple(&[
    row_stream::columns_of(&rdbms::PG4.row_set),
    Ty::Handle,
    Ty::Handle,
]);
const PG4_PARAMS: Ty = Ty::List(&rdbms::PG4.parameter_value);

/// `spin:postgres/postgres@4.2.0`, which serves every 4.x import (4.0 and
/// 4.1 are subsets with the same types). 4.2's `*-async` forms are the
/// same functions, lowered `async` by the engine; `query-async` returns
/// the columns, a `stream<row>` and a `future`.
pub const FUNCTIONS_V4: &[HostFn<GuestState>] = &connection_fns!(
    rdbms::PG4,
    host_fn!("[constructor]connection-builder", [Ty::String] -> Ty::Handle, builder_new),
    host_fn!("[method]connection-builder.set-ca-root", [Ty::Handle, Ty::String] -> result_ty!(_, rdbms::PG4.error), set_ca_root),
    host_fn!("[method]connection-builder.build", [Ty::Handle] -> result_ty!(Ty::Handle, rdbms::PG4.error), build),
    host_fn!("[method]connection-builder.build-async", [Ty::Handle] -> result_ty!(Ty::Handle, rdbms::PG4.error), build),
    host_fn!("[static]connection.open-async", [Ty::String] -> result_ty!(Ty::Handle, rdbms::PG4.error),
        |s, a| open_with(s, &rdbms::PG4, a)),
    host_fn!("[method]connection.query-async", [Ty::Handle, Ty::String, PG4_PARAMS] -> result_ty!(PG4_STREAMED, rdbms::PG4.error),
        query_streamed),
    host_fn!("[method]connection.execute-async", [Ty::Handle, Ty::String, PG4_PARAMS] -> result_ty!(Ty::U64, rdbms::PG4.error),
        |s, a| statement(s, &rdbms::PG4, Run::Execute, a)),
    drop_fn!("connection-builder", PgConnectionBuilder),
);
