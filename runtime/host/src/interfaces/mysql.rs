//! `fermyon:spin/mysql@2.0.0` and `spin:mysql/mysql@3.0.0`: a `connection`
//! resource over Flint's MySQL client ([`crate::outbound_mysql`]), with
//! Spin's order of checks (`factor-outbound-mysql`): the address against
//! `allowed_outbound_hosts` first (scheme `mysql`), then the connection.
//! Column types, values and error texts are Spin's, which come from
//! mysql_async: its conversions (`client.rs`) are followed case by case, and
//! its errors' `Debug` and `Display` are what the guest reads.

use wasmi::Error;

use super::rdbms::{self, DataType, DbValue, V2, outcome};
use super::{GuestState, drop_fn, host_fn, row_stream};
use crate::capabilities::Capabilities;
use crate::outbound_mysql::binary::{column_flag, column_type};
use crate::outbound_mysql::{self as client, Client, Dial, MysqlError, Opts, Param, Value};
use flint_engine::canon::{Args, HostFn, Ty, Value as Canon};
use flint_engine::result_ty;

/// An open connection and the allow-list entry that permitted it (for the
/// metrics).
pub struct MysqlConnection {
    client: Client,
    pattern: usize,
}

/// `[static]connection.open`. A full handle table traps, as for every
/// resource in Flint.
fn open(state: &mut GuestState, mut args: Args) -> Result<Canon, Error> {
    let address = args.string()?;
    Ok(match connect(&state.host.caps, &address) {
        Ok(connection) => Canon::ok(Canon::Handle(state.host.resources.push(connection)?)),
        Err(e) => Canon::err(V2.error(e)),
    })
}

fn connect(caps: &Capabilities, address: &str) -> Result<MysqlConnection, rdbms::Error> {
    // Spin reads the address as a URL of any scheme for the check (an
    // address that is not one is not permitted), and only then as MySQL's.
    let authority = client::authority(address);
    let allowed = authority.as_ref().and_then(|(scheme, host, port)| {
        let port = port.or_else(|| crate::outbound_hosts::default_port(scheme))?;
        caps.allowed_hosts.matching(scheme, host, port)
    });
    // The address holds the password: the log names only the server.
    let server = match &authority {
        Some((scheme, host, Some(port))) => format!("{scheme}://{host}:{port}"),
        Some((scheme, host, None)) => format!("{scheme}://{host}"),
        None => "(not a URL)".to_owned(),
    };
    let Some(pattern) = allowed else {
        tracing::warn!(target: "flint::outbound", component = %caps.component, %server, "outbound MySQL denied: not in allowed_outbound_hosts");
        caps.outbound_metrics.denied();
        return Err(rdbms::Error::ConnectionFailed(format!(
            "address {address} is not permitted"
        )));
    };
    let opts = Opts::parse(address).map_err(|e| connect_failed(&e))?;
    let outbound = &caps.services.outbound;
    let tls = || caps.services.tls.for_component(&caps.component, &opts.host);
    let dial = Dial {
        blocked: &caps.services.blocked,
        connect_timeout: outbound.connect_timeout,
        io_timeout: outbound.io_timeout,
        tls: &tls,
    };
    let connected = Client::connect(&opts, dial);
    caps.outbound_metrics.record(pattern, outcome(&connected));
    match connected {
        Ok(client) => Ok(MysqlConnection { client, pattern }),
        Err(MysqlError::Connect(e @ crate::outbound_tcp::ConnectError::Prohibited(_))) => {
            tracing::warn!(target: "flint::outbound", component = %caps.component, %server, "outbound MySQL denied: the server resolves to a network in block_networks");
            caps.outbound_metrics.denied();
            Err(rdbms::Error::ConnectionFailed(e.to_string()))
        }
        Err(e) => Err(connect_failed(&e)),
    }
}

/// Spin's text for a failed open: the `Debug` of the `anyhow::Error` around
/// mysql_async's error, which is its message and then its cause.
fn connect_failed(error: &(dyn std::error::Error + 'static)) -> rdbms::Error {
    let mut text = error.to_string();
    let cause = match error.downcast_ref::<MysqlError>() {
        Some(MysqlError::Server(server)) => Some(server.to_string()),
        Some(MysqlError::NoTlsOnServer) => {
            Some("Client asked for SSL but server does not have this capability".to_owned())
        }
        _ => match error.downcast_ref::<client::AddressError>() {
            Some(client::AddressError::Param { param, value }) => Some(format!(
                "Invalid value `{value}' for connection URL parameter `{param}'"
            )),
            Some(client::AddressError::Scheme(scheme)) => {
                Some(format!("Unsupported connection URL scheme `{scheme}'"))
            }
            _ => None,
        },
    };
    if let Some(cause) = cause {
        text += &format!("\n\nCaused by:\n    {cause}");
    }
    rdbms::Error::ConnectionFailed(text)
}

/// Spin's error for a failed statement: `query-failed` with the `Debug` of
/// mysql_async's error (Flint's own words for failures only Flint has),
/// `other` for a result over the limit.
fn statement_failed(error: MysqlError) -> rdbms::Error {
    let text = match error {
        MysqlError::Server(e) => format!("Server({e:?})"),
        MysqlError::ParamCount { required, supplied } => {
            format!("Driver(StmtParamsMismatch {{ required: {required}, supplied: {supplied} }})")
        }
        e @ MysqlError::ResultTooLarge { .. } => return rdbms::Error::Other(e.to_string()),
        e => e.to_string(),
    };
    rdbms::Error::QueryFailed(rdbms::QueryError::Text(text))
}

/// The connection, statement and parameters a `query` or `execute` takes.
fn statement_args(
    state: &mut GuestState,
    args: &mut Args,
) -> Result<(u32, String, Vec<DbValue>), Error> {
    let handle = args.handle()?;
    state.host.resources.get::<MysqlConnection>(handle)?;
    let statement = args.string()?;
    let params = V2.params(args.list()?)?;
    Ok((handle, statement, params))
}

/// mysql_async's value for each parameter (`to_sql_parameter`).
fn param(value: &DbValue) -> Result<Param<'_>, Error> {
    Ok(match *value {
        DbValue::Boolean(b) => Param::Int(b.into()),
        DbValue::Int8(n) => Param::Int(n.into()),
        DbValue::Int16(n) => Param::Int(n.into()),
        DbValue::Int32(n) => Param::Int(n.into()),
        DbValue::Int64(n) => Param::Int(n),
        DbValue::Uint8(n) => Param::UInt(n.into()),
        DbValue::Uint16(n) => Param::UInt(n.into()),
        DbValue::Uint32(n) => Param::UInt(n.into()),
        DbValue::Uint64(n) => Param::UInt(n),
        DbValue::Floating32(x) => Param::Float(x),
        DbValue::Floating64(x) => Param::Double(x),
        DbValue::Str(ref s) => Param::Bytes(s.as_bytes()),
        DbValue::Binary(ref b) => Param::Bytes(b),
        DbValue::DbNull => Param::Null,
        ref other => {
            return Err(Error::new(format!(
                "host bug: {other:?} is not a MySQL parameter"
            )));
        }
    })
}

/// Runs one statement on the connection behind `handle`, counting it for
/// the allow-list entry that permitted the connection.
fn run<T>(
    state: &mut GuestState,
    handle: u32,
    call: impl FnOnce(&mut Client, usize) -> Result<T, MysqlError>,
) -> Result<Result<T, MysqlError>, Error> {
    let budget = state.host.memory_limit;
    let connection = state.host.resources.get::<MysqlConnection>(handle)?;
    let result = call(&mut connection.client, budget);
    let pattern = connection.pattern;
    state
        .host
        .caps
        .outbound_metrics
        .record(pattern, outcome(&result));
    Ok(result)
}

fn query(state: &mut GuestState, mut args: Args) -> Result<Canon, Error> {
    let (handle, statement, values) = statement_args(state, &mut args)?;
    let params = values.iter().map(param).collect::<Result<Vec<_>, _>>()?;
    let result = run(state, handle, |client, budget| {
        client.query(&statement, &params, budget)
    })?;
    Ok(match result.map_err(statement_failed).and_then(row_set) {
        Ok(rows) => Canon::ok(V2.row_set(rows)),
        Err(e) => Canon::err(V2.error(e)),
    })
}

fn execute(state: &mut GuestState, mut args: Args) -> Result<Canon, Error> {
    let (handle, statement, values) = statement_args(state, &mut args)?;
    let params = values.iter().map(param).collect::<Result<Vec<_>, _>>()?;
    let result = run(state, handle, |client, budget| {
        client.execute(&statement, &params, budget)
    })?;
    Ok(match result {
        Ok(()) => Canon::ok_unit(),
        Err(e) => Canon::err(V2.error(statement_failed(e))),
    })
}

/// Spin's `convert_data_type`: by mysql_common's numeric and character type
/// groups, then by type, signedness and the binary flag. Everything else
/// (decimals, dates and times, years, bits, JSON, `VARCHAR` as a wire type)
/// is `other`.
fn data_type(column: &client::Column) -> DataType {
    use column_type::*;
    let unsigned = column.flags & column_flag::UNSIGNED != 0;
    let binary = column.flags & column_flag::BINARY != 0;
    match column.column_type {
        DOUBLE => DataType::Floating64,
        FLOAT => DataType::Floating32,
        INT24 | LONG if unsigned => DataType::Uint32,
        INT24 | LONG => DataType::Int32,
        LONGLONG if unsigned => DataType::Uint64,
        LONGLONG => DataType::Int64,
        SHORT if unsigned => DataType::Uint16,
        SHORT => DataType::Int16,
        TINY if unsigned => DataType::Uint8,
        TINY => DataType::Int8,
        // TEXT and BLOB both arrive as BLOB; BINARY and VARBINARY as
        // STRING and VAR_STRING with the binary flag.
        BLOB | STRING | VAR_STRING if binary => DataType::Binary,
        BLOB | STRING | VAR_STRING => DataType::Str,
        _ => DataType::Other,
    }
}

/// mysql_common's refusal to convert a value to the column's type.
fn unconvertible(value: &Value) -> rdbms::Error {
    rdbms::Error::ValueConversionFailed(format!(
        "Couldn't convert the value `{value:?}` to a desired type"
    ))
}

/// An integer of type `T` from mysql_common's widened integers.
fn int<T: TryFrom<i64> + TryFrom<u64>>(value: &Value) -> Result<T, rdbms::Error> {
    match *value {
        Value::Int(n) => T::try_from(n).ok(),
        Value::UInt(n) => T::try_from(n).ok(),
        _ => None,
    }
    .ok_or_else(|| unconvertible(value))
}

/// Spin's `convert_value`: NULL is `db-null` whatever the column, any other
/// value in an `other` column fails the query.
fn db_value(value: Value, column: &rdbms::Column) -> Result<DbValue, rdbms::Error> {
    Ok(match (column.data_type, value) {
        (_, Value::Null) => DbValue::DbNull,
        (DataType::Binary, Value::Bytes(b)) => DbValue::Binary(b),
        (DataType::Str, Value::Bytes(b)) => match String::from_utf8(b) {
            Ok(s) => DbValue::Str(s),
            Err(e) => return Err(unconvertible(&Value::Bytes(e.into_bytes()))),
        },
        (DataType::Floating32, Value::Float(x)) => DbValue::Floating32(x),
        (DataType::Floating64, Value::Double(x)) => DbValue::Floating64(x),
        (DataType::Floating64, Value::Float(x)) => DbValue::Floating64(x.into()),
        (DataType::Int8, ref v) => DbValue::Int8(int(v)?),
        (DataType::Int16, ref v) => DbValue::Int16(int(v)?),
        (DataType::Int32, ref v) => DbValue::Int32(int(v)?),
        (DataType::Int64, ref v) => DbValue::Int64(int(v)?),
        (DataType::Uint8, ref v) => DbValue::Uint8(int(v)?),
        (DataType::Uint16, ref v) => DbValue::Uint16(int(v)?),
        (DataType::Uint32, ref v) => DbValue::Uint32(int(v)?),
        (DataType::Uint64, ref v) => DbValue::Uint64(int(v)?),
        (DataType::Other, v) => {
            return Err(rdbms::Error::ValueConversionFailed(format!(
                "Cannot convert value {v:?} in column {} data type Other",
                column.name
            )));
        }
        (_, v) => return Err(unconvertible(&v)),
    })
}

fn row_set(result: client::ResultSet) -> Result<rdbms::RowSet, rdbms::Error> {
    let columns: Vec<rdbms::Column> = result
        .columns
        .iter()
        .map(|c| rdbms::Column {
            name: c.name.clone(),
            data_type: data_type(c),
            // Only PostgreSQL 4.x names the server's type.
            type_name: String::new(),
        })
        .collect();
    let rows = result
        .rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .zip(&columns)
                .map(|(value, column)| db_value(value, column))
                .collect()
        })
        .collect::<Result<_, _>>()?;
    Ok(rdbms::RowSet { columns, rows })
}

const OPEN: HostFn<GuestState> =
    host_fn!("[static]connection.open", [Ty::String] -> result_ty!(Ty::Handle, V2.error), open);
const EXECUTE: HostFn<GuestState> = host_fn!(
    "[method]connection.execute",
    [Ty::Handle, Ty::String, Ty::List(&V2.parameter_value)] -> result_ty!(_, V2.error),
    execute
);
const DROP: HostFn<GuestState> = drop_fn!("connection", MysqlConnection);

/// `fermyon:spin/mysql@2.0.0`.
pub const FUNCTIONS: &[HostFn<GuestState>] = &[
    OPEN,
    host_fn!(
        "[method]connection.query",
        [Ty::Handle, Ty::String, Ty::List(&V2.parameter_value)] -> result_ty!(V2.row_set, V2.error),
        query
    ),
    EXECUTE,
    DROP,
];

/// 3.0.0's `query`: 2.0.0's, its rows then handed out as a stream.
fn query_streamed(state: &mut GuestState, args: Args) -> Result<Canon, Error> {
    let answer = query(state, args)?;
    row_stream::streamed(state, answer, ROW, &DONE)
}

const ROW: &Ty = row_stream::row_of(&V2.row_set);
const DONE: Ty = result_ty!(_, V2.error);
const STREAMED: Ty = Ty::Tuple(&[row_stream::columns_of(&V2.row_set), Ty::Handle, Ty::Handle]);

/// `spin:mysql/mysql@3.0.0`: the same cases, resource and semantics as 2.0.0
/// (Spin's `v3` host opens and executes as its `v2` does). Every function is
/// declared `async`, which the engine lowers onto these; `query` returns the
/// columns, a `stream<row>` and a `future`.
pub const FUNCTIONS_V3: &[HostFn<GuestState>] = &[
    OPEN,
    host_fn!(
        "[method]connection.query",
        [Ty::Handle, Ty::String, Ty::List(&V2.parameter_value)] -> result_ty!(STREAMED, V2.error),
        query_streamed
    ),
    EXECUTE,
    DROP,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn column(column_type: u8, flags: u16) -> client::Column {
        client::Column {
            name: "c".into(),
            column_type,
            flags,
        }
    }

    #[test]
    fn spins_column_types() {
        use column_type::*;
        const U: u16 = column_flag::UNSIGNED;
        const B: u16 = column_flag::BINARY;
        for (ty, flags, expected) in [
            (TINY, 0, DataType::Int8),
            (TINY, U, DataType::Uint8),
            (SHORT, 0, DataType::Int16),
            (SHORT, U, DataType::Uint16),
            (INT24, 0, DataType::Int32),
            (LONG, U, DataType::Uint32),
            (LONGLONG, 0, DataType::Int64),
            (LONGLONG, U, DataType::Uint64),
            (FLOAT, 0, DataType::Floating32),
            (DOUBLE, U, DataType::Floating64),
            (BLOB, 0x10, DataType::Str),
            (BLOB, 0x10 | B, DataType::Binary),
            (STRING, B, DataType::Binary),
            (VAR_STRING, 0, DataType::Str),
            (VAR_STRING, B, DataType::Binary),
            (NEWDECIMAL, 0, DataType::Other),
            (YEAR, U, DataType::Other),
            (DATE, B, DataType::Other),
            (DATETIME, B, DataType::Other),
            (JSON, 0, DataType::Other),
            (BIT, U, DataType::Other),
        ] {
            assert_eq!(
                data_type(&column(ty, flags)),
                expected,
                "{ty:#x} {flags:#x}"
            );
        }
    }

    fn rdbms_column(data_type: DataType) -> rdbms::Column {
        rdbms::Column {
            name: "price".into(),
            data_type,
            type_name: String::new(),
        }
    }

    #[test]
    fn spins_value_conversions() {
        let convert = |v, t| db_value(v, &rdbms_column(t));
        assert_eq!(
            convert(Value::Int(-3), DataType::Int8),
            Ok(DbValue::Int8(-3))
        );
        assert_eq!(
            convert(Value::UInt(u64::MAX), DataType::Uint64),
            Ok(DbValue::Uint64(u64::MAX))
        );
        assert_eq!(convert(Value::Null, DataType::Other), Ok(DbValue::DbNull));
        assert_eq!(
            convert(Value::Bytes(b"x".to_vec()), DataType::Str),
            Ok(DbValue::Str("x".into()))
        );
        assert_eq!(
            convert(Value::Bytes(b"12.50".to_vec()), DataType::Other),
            Err(rdbms::Error::ValueConversionFailed(
                r#"Cannot convert value Bytes("12.50") in column price data type Other"#.into()
            ))
        );
        assert_eq!(
            convert(Value::Bytes(vec![0xff]), DataType::Str),
            Err(rdbms::Error::ValueConversionFailed(
                "Couldn't convert the value `Bytes(\"\u{fffd}\")` to a desired type".into()
            ))
        );
        assert!(convert(Value::Int(300), DataType::Int8).is_err());
    }

    #[test]
    fn spins_error_texts() {
        let server = client::ServerError {
            code: 1146,
            message: "Table 'spin.nope' doesn't exist".into(),
            state: "42S02".into(),
        };
        assert_eq!(
            statement_failed(MysqlError::Server(server.clone())),
            rdbms::Error::QueryFailed(rdbms::QueryError::Text(
                r#"Server(ServerError { code: 1146, message: "Table 'spin.nope' doesn't exist", state: "42S02" })"#.into()
            ))
        );
        assert_eq!(
            statement_failed(MysqlError::ParamCount {
                required: 2,
                supplied: 1
            }),
            rdbms::Error::QueryFailed(rdbms::QueryError::Text(
                "Driver(StmtParamsMismatch { required: 2, supplied: 1 })".into()
            ))
        );
        assert_eq!(
            connect_failed(&MysqlError::Server(server)),
            rdbms::Error::ConnectionFailed(
                "Server error: `ERROR 42S02 (1146): Table 'spin.nope' doesn't exist'\n\nCaused by:\n    ERROR 42S02 (1146): Table 'spin.nope' doesn't exist".into()
            )
        );
        assert_eq!(
            connect_failed(&client::AddressError::Scheme("pg".into())),
            rdbms::Error::ConnectionFailed(
                "URL error: `Unsupported connection URL scheme `pg''\n\nCaused by:\n    Unsupported connection URL scheme `pg'".into()
            )
        );
    }

    #[test]
    fn parameters_as_mysql_async_sends_them() {
        assert_eq!(param(&DbValue::Boolean(true)).unwrap(), Param::Int(1));
        assert_eq!(param(&DbValue::Uint16(7)).unwrap(), Param::UInt(7));
        assert_eq!(param(&DbValue::Floating32(1.5)).unwrap(), Param::Float(1.5));
        assert_eq!(
            param(&DbValue::Str("s".into())).unwrap(),
            Param::Bytes(b"s")
        );
        assert_eq!(param(&DbValue::DbNull).unwrap(), Param::Null);
    }
}
