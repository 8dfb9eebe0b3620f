//! `fermyon:spin/sqlite@2.0.0` and `spin:sqlite/sqlite@3.x` over the app's
//! [`SqliteDatabases`](crate::sqlite_db::SqliteDatabases). A connection is a
//! resource holding its own SQLite connection, so a transaction spans that
//! connection's statements only; a write outside a transaction, or a
//! `COMMIT`, returns once it is on disk.

use rusqlite::types::Value as SqlValue;
use wasmi::Error;

use super::{GuestState, drop_fn, host_fn, row_stream};
use crate::sqlite_db::{Lease, StatementError};
use flint_engine::canon::{Args, HostFn, Ty, Value};
use flint_engine::result_ty;

const ERROR: Ty = Ty::Variant(&[
    None,             // no-such-database
    None,             // access-denied
    None,             // invalid-connection
    None,             // database-full
    Some(Ty::String), // io
]);
const VALUE: Ty = Ty::Variant(&[
    Some(Ty::S64),           // integer
    Some(Ty::F64),           // real
    Some(Ty::String),        // text
    Some(Ty::List(&Ty::U8)), // blob
    None,                    // null
]);
/// `record query-result { columns: list<string>, rows: list<row-result> }`
/// with `record row-result { values: list<value> }`.
const QUERY_RESULT: Ty = Ty::Tuple(&[
    Ty::List(&Ty::String),
    Ty::List(&Ty::Tuple(&[Ty::List(&VALUE)])),
]);

/// An open database connection.
pub struct SqliteConnection(Lease);

fn failure(case: u32) -> Value {
    Value::err(Value::case(case, None))
}

/// `[static]connection.open`, with Spin's order: a label the component does
/// not list is `access-denied` whether or not it exists; then
/// `no-such-database`.
fn open(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let label = args.string()?;
    let caps = &state.host.caps;
    if !caps.sqlite_databases.contains(&label) {
        tracing::warn!(target: "flint::sqlite", component = %caps.component, database = %label, "SQLite database access denied: not in sqlite_databases");
        return Ok(failure(1));
    }
    let Some(database) = caps.services.sqlite.get(&label) else {
        return Ok(failure(0));
    };
    match database.checkout() {
        Ok(lease) => Ok(Value::ok(Value::Handle(
            state.host.resources.push(SqliteConnection(lease))?,
        ))),
        Err(e) => Ok(statement_failure(state, e)?),
    }
}

fn execute(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let handle = args.handle()?;
    let sql = args.string()?;
    let params = args
        .list()?
        .into_iter()
        .map(parameter)
        .collect::<Result<Vec<_>, _>>()?;
    let deadline = state.host.wasi_state.deadline;
    let max_bytes = state.host.memory_limit;
    let connection = state.host.resources.get::<SqliteConnection>(handle)?;
    match connection.0.execute(&sql, params, deadline, max_bytes) {
        Ok(rows) => Ok(Value::ok(Value::Tuple(vec![
            Value::List(rows.columns.into_iter().map(Value::String).collect()),
            Value::List(
                rows.rows
                    .into_iter()
                    .map(|row| {
                        Value::Tuple(vec![Value::List(row.into_iter().map(value).collect())])
                    })
                    .collect(),
            ),
        ]))),
        Err(e) => statement_failure(state, e),
    }
}

/// A failed statement as `error`; one stopped at the deadline ends the
/// invocation as a deadline hit (504), as every wait past it does.
fn statement_failure(state: &mut GuestState, e: StatementError) -> Result<Value, Error> {
    match e {
        StatementError::DatabaseFull => Ok(failure(3)),
        StatementError::Deadline => Err(state.run.deadline_hit()),
        StatementError::Io(message) => Ok(Value::err(Value::case(4, Some(Value::String(message))))),
    }
}

fn parameter(value: Value) -> Result<SqlValue, Error> {
    Ok(match value.into_variant()? {
        (0, Some(Value::S64(n))) => SqlValue::Integer(n),
        (1, Some(Value::F64(bits))) => SqlValue::Real(f64::from_bits(bits)),
        (2, Some(text)) => SqlValue::Text(text.into_string()?),
        (3, Some(blob)) => SqlValue::Blob(blob.into_bytes()?),
        (4, None) => SqlValue::Null,
        (case, _) => return Err(Error::new(format!("invalid sqlite value case {case}"))),
    })
}

fn value(value: SqlValue) -> Value {
    match value {
        SqlValue::Integer(n) => Value::case(0, Some(Value::S64(n))),
        SqlValue::Real(x) => Value::case(1, Some(Value::F64(x.to_bits()))),
        SqlValue::Text(text) => Value::case(2, Some(Value::String(text))),
        SqlValue::Blob(blob) => Value::case(3, Some(Value::Bytes(blob))),
        SqlValue::Null => Value::case(4, None),
    }
}

fn last_insert_rowid(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let connection = state
        .host
        .resources
        .get::<SqliteConnection>(args.handle()?)?;
    Ok(Value::S64(connection.0.last_insert_rowid()))
}

fn changes(state: &mut GuestState, mut args: Args) -> Result<Value, Error> {
    let connection = state
        .host
        .resources
        .get::<SqliteConnection>(args.handle()?)?;
    Ok(Value::U64(connection.0.changes()))
}

const OPEN: HostFn<GuestState> =
    host_fn!("[static]connection.open", [Ty::String] -> result_ty!(Ty::Handle, ERROR), open);
const EXECUTE: HostFn<GuestState> = host_fn!("[method]connection.execute", [Ty::Handle, Ty::String, Ty::List(&VALUE)] -> result_ty!(QUERY_RESULT, ERROR), execute);
const DROP: HostFn<GuestState> = drop_fn!("connection", SqliteConnection);

/// `fermyon:spin/sqlite@2.0.0`.
pub const FUNCTIONS: &[HostFn<GuestState>] = &[OPEN, EXECUTE, DROP];

/// 3.1's `execute-async`: `execute`, its rows then handed out as a stream.
fn execute_streamed(state: &mut GuestState, args: Args) -> Result<Value, Error> {
    let answer = execute(state, args)?;
    row_stream::streamed(state, answer, ROW, &DONE)
}

const ROW: &Ty = row_stream::row_of(&QUERY_RESULT);
const DONE: Ty = result_ty!(_, ERROR);
const STREAMED: Ty = Ty::Tuple(&[
    row_stream::columns_of(&QUERY_RESULT),
    Ty::Handle,
    Ty::Handle,
]);

/// `spin:sqlite/sqlite@3.1.0`, which also serves 3.0.0 imports: 2.0.0's
/// functions plus `last-insert-rowid` and `changes`, and 3.1.0's `-async`
/// forms, the same functions lowered `async` by the engine; `execute-async`
/// returns the columns, a `stream<row-result>` and a `future`.
pub const FUNCTIONS_V3: &[HostFn<GuestState>] = &[
    host_fn!("[method]connection.execute-async", [Ty::Handle, Ty::String, Ty::List(&VALUE)] -> result_ty!(STREAMED, ERROR), execute_streamed),
    OPEN,
    EXECUTE,
    host_fn!("[method]connection.last-insert-rowid", [Ty::Handle] -> Ty::S64, last_insert_rowid),
    host_fn!("[method]connection.changes", [Ty::Handle] -> Ty::U64, changes),
    host_fn!("[static]connection.open-async", [Ty::String] -> result_ty!(Ty::Handle, ERROR), open),
    host_fn!("[method]connection.last-insert-rowid-async", [Ty::Handle] -> Ty::S64, last_insert_rowid),
    host_fn!("[method]connection.changes-async", [Ty::Handle] -> Ty::U64, changes),
    DROP,
];
