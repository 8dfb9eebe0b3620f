//! Spin's relational value model, shared by the PostgreSQL and MySQL
//! interfaces of every version: `fermyon:spin/rdbms-types@2.0.0` (used by
//! `fermyon:spin/{postgres,mysql}@2.0.0`), `spin:mysql/mysql@3.0.0` (the same
//! cases), `spin:postgres/postgres@3.0.0` (adds dates and times) and
//! `spin:postgres/postgres@4.x` (adds uuid, jsonb, decimal, ranges, arrays,
//! intervals, named `other` types, raw `unsupported` values and structured
//! database errors).
//!
//! A client works only with the client-neutral Rust types here: it receives
//! parameters as [`DbValue`]s and returns a [`RowSet`] or an [`Error`]. Each
//! WIT version is a [`Dialect`]: the order of its variant cases and the `Ty`
//! descriptors built from that order, so a case can never be lowered under
//! another version's discriminant. Values a version cannot carry become its
//! `unsupported` case, data types its `other` case, and a structured database
//! error its text, as Spin's `spin-world` conversions do.
//!
//! How a client plugs in (an interface table, e.g. `postgres.rs`):
//! 1. declare the functions with the dialect's descriptors:
//!    `[Ty::Handle, Ty::String, Ty::List(&V2.parameter_value)] -> result_ty!(V2.row_set, V2.error)`;
//! 2. turn the guest's list into parameters with [`Dialect::params`] (a trap
//!    only on a host bug: the engine has already checked the shape);
//! 3. run the statement with its own client, counting [`DbValue::memory_size`]
//!    against the instance's memory limit while rows arrive;
//! 4. answer with [`Dialect::row_set`] or [`Dialect::error`] (the `err`
//!    payload; wrap it in `Value::err`).

use crate::capabilities::OutboundOutcome;
use flint_engine::canon::{Ty, Value};
use flint_engine::option_ty;

/// For the clients' tests: a loopback connection (the client's end, with a
/// read timeout, and the server's) whose server has sent `bytes` and shut
/// down its half. The server's end is kept open by the caller, so that
/// what the client sends does not reset the connection before the client
/// has read them.
#[cfg(test)]
pub(crate) fn loopback_serving(bytes: &[u8]) -> (std::net::TcpStream, std::net::TcpStream) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let (mut server, _) = listener.accept().unwrap();
    server.write_all(bytes).unwrap();
    server.shutdown(std::net::Shutdown::Write).unwrap();
    (client, server)
}

/// A statement's or connection's outcome, for the outbound metrics.
pub fn outcome<T, E>(result: &Result<T, E>) -> OutboundOutcome {
    match result {
        Ok(_) => OutboundOutcome::Ok,
        Err(_) => OutboundOutcome::Error,
    }
}

/// A column's type, as every version's `db-data-type` names it. A version
/// without a case lowers it as `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Floating32,
    Floating64,
    Str,
    Binary,
    Date,
    Time,
    Datetime,
    Timestamp,
    Uuid,
    Jsonb,
    Decimal,
    RangeInt32,
    RangeInt64,
    RangeDecimal,
    ArrayInt32,
    ArrayInt64,
    ArrayDecimal,
    ArrayStr,
    Interval,
    /// A type no case names; 4.x carries the server's name for it.
    Other,
}

/// Whether a range bound includes its value (`range-bound-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundKind {
    Inclusive,
    Exclusive,
}

/// A range's bounds; `None` is unbounded on that side.
#[derive(Debug, Clone, PartialEq)]
pub struct Range<T> {
    pub lower: Option<(T, BoundKind)>,
    pub upper: Option<(T, BoundKind)>,
}

/// PostgreSQL's `interval`, as its binary form and 4.x's record hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub micros: i64,
    pub days: i32,
    pub months: i32,
}

/// A value in either direction: a `parameter-value` going to the database
/// or a `db-value` coming back. Dates and times are Spin's tuples: `(year,
/// month, day)`, `(hour, minute, second, nanosecond)`, both for datetimes
/// (always UTC); timestamps are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq)]
pub enum DbValue {
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Uint8(u8),
    Uint16(u16),
    Uint32(u32),
    Uint64(u64),
    Floating32(f32),
    Floating64(f64),
    Str(String),
    Binary(Vec<u8>),
    Date((i32, u8, u8)),
    Time((u8, u8, u8, u32)),
    Datetime((i32, u8, u8, u8, u8, u8, u32)),
    Timestamp(i64),
    Uuid(String),
    Jsonb(Vec<u8>),
    /// Base 10 text, as 4.x carries it.
    Decimal(String),
    RangeInt32(Range<i32>),
    RangeInt64(Range<i64>),
    RangeDecimal(Range<String>),
    ArrayInt32(Vec<Option<i32>>),
    ArrayInt64(Vec<Option<i64>>),
    ArrayDecimal(Vec<Option<String>>),
    ArrayStr(Vec<Option<String>>),
    Interval(Interval),
    DbNull,
    /// A value of a type no case carries: the server's bytes for it (4.x
    /// hands them to the guest; older versions say only `unsupported`).
    Unsupported(Vec<u8>),
}

/// One result column: its name, its type and the server's name for the type
/// (what 4.x's `other(string)` carries).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub data_type: DataType,
    pub type_name: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<DbValue>>,
}

/// Spin's `error` variant; its cases are the same in every version, only
/// `query-failed` is structured in PostgreSQL 4.x.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("connection failed: {0}")]
    ConnectionFailed(String),
    #[error("bad parameter: {0}")]
    BadParameter(String),
    #[error("query failed: {}", .0.text())]
    QueryFailed(QueryError),
    #[error("value conversion failed: {0}")]
    ValueConversionFailed(String),
    #[error("error: {0}")]
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum QueryError {
    Text(String),
    /// Boxed: it is large, and errors travel in every `Result`.
    Db(Box<DbError>),
}

/// A database's own error report (PostgreSQL's ErrorResponse fields).
#[derive(Debug, Clone, PartialEq)]
pub struct DbError {
    /// What versions without structured errors receive.
    pub as_text: String,
    pub severity: String,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    /// The other fields the server sent, by name.
    pub extras: Vec<(String, String)>,
}

impl QueryError {
    pub fn text(&self) -> &str {
        match self {
            QueryError::Text(text) => text,
            QueryError::Db(e) => &e.as_text,
        }
    }
}

impl DbValue {
    /// About what the value costs in host memory, and so in the guest's once
    /// lowered: what a client counts against the instance's memory limit.
    pub fn memory_size(&self) -> usize {
        fn opt_strings(items: &[Option<String>]) -> usize {
            items
                .iter()
                .map(|s| 24 + s.as_ref().map_or(0, String::len))
                .sum()
        }
        let heap = match self {
            DbValue::Str(s) | DbValue::Uuid(s) | DbValue::Decimal(s) => s.len(),
            DbValue::Binary(b) | DbValue::Jsonb(b) | DbValue::Unsupported(b) => b.len(),
            DbValue::RangeDecimal(r) => {
                r.lower.as_ref().map_or(0, |b| b.0.len())
                    + r.upper.as_ref().map_or(0, |b| b.0.len())
            }
            DbValue::ArrayInt32(a) => a.len() * 8,
            DbValue::ArrayInt64(a) => a.len() * 16,
            DbValue::ArrayDecimal(a) | DbValue::ArrayStr(a) => opt_strings(a),
            _ => 0,
        };
        std::mem::size_of::<DbValue>() + heap
    }

    fn case(&self) -> Case {
        use DataType as T;
        Case::Of(match self {
            DbValue::Boolean(_) => T::Boolean,
            DbValue::Int8(_) => T::Int8,
            DbValue::Int16(_) => T::Int16,
            DbValue::Int32(_) => T::Int32,
            DbValue::Int64(_) => T::Int64,
            DbValue::Uint8(_) => T::Uint8,
            DbValue::Uint16(_) => T::Uint16,
            DbValue::Uint32(_) => T::Uint32,
            DbValue::Uint64(_) => T::Uint64,
            DbValue::Floating32(_) => T::Floating32,
            DbValue::Floating64(_) => T::Floating64,
            DbValue::Str(_) => T::Str,
            DbValue::Binary(_) => T::Binary,
            DbValue::Date(_) => T::Date,
            DbValue::Time(_) => T::Time,
            DbValue::Datetime(_) => T::Datetime,
            DbValue::Timestamp(_) => T::Timestamp,
            DbValue::Uuid(_) => T::Uuid,
            DbValue::Jsonb(_) => T::Jsonb,
            DbValue::Decimal(_) => T::Decimal,
            DbValue::RangeInt32(_) => T::RangeInt32,
            DbValue::RangeInt64(_) => T::RangeInt64,
            DbValue::RangeDecimal(_) => T::RangeDecimal,
            DbValue::ArrayInt32(_) => T::ArrayInt32,
            DbValue::ArrayInt64(_) => T::ArrayInt64,
            DbValue::ArrayDecimal(_) => T::ArrayDecimal,
            DbValue::ArrayStr(_) => T::ArrayStr,
            DbValue::Interval(_) => T::Interval,
            DbValue::DbNull => return Case::DbNull,
            DbValue::Unsupported(_) => return Case::Unsupported,
        })
    }
}

/// One case of a `db-value` or `parameter-value` variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Of(DataType),
    DbNull,
    Unsupported,
}

const BOUND_KIND: Ty = Ty::Variant(&[None, None]);
const DATE: Ty = Ty::Tuple(&[Ty::S32, Ty::U8, Ty::U8]);
const TIME: Ty = Ty::Tuple(&[Ty::U8, Ty::U8, Ty::U8, Ty::U32]);
const DATETIME: Ty = Ty::Tuple(&[Ty::S32, Ty::U8, Ty::U8, Ty::U8, Ty::U8, Ty::U8, Ty::U32]);
const BYTES: Ty = Ty::List(&Ty::U8);

/// `tuple<option<tuple<T, range-bound-kind>>, option<tuple<T, range-bound-kind>>>`.
macro_rules! range_ty {
    ($t:expr) => {
        Ty::Tuple(&[
            option_ty!(Ty::Tuple(&[$t, BOUND_KIND])),
            option_ty!(Ty::Tuple(&[$t, BOUND_KIND])),
        ])
    };
}

/// The payload of a case, the same in every version that has it.
const fn payload(case: Case, unsupported_raw: bool) -> Option<Ty> {
    use DataType as T;
    let data_type = match case {
        Case::Of(t) => t,
        Case::DbNull => return None,
        Case::Unsupported if unsupported_raw => return Some(BYTES),
        Case::Unsupported => return None,
    };
    Some(match data_type {
        T::Boolean => Ty::Bool,
        T::Int8 => Ty::S8,
        T::Int16 => Ty::S16,
        T::Int32 => Ty::S32,
        T::Int64 => Ty::S64,
        T::Uint8 => Ty::U8,
        T::Uint16 => Ty::U16,
        T::Uint32 => Ty::U32,
        T::Uint64 => Ty::U64,
        T::Floating32 => Ty::F32,
        T::Floating64 => Ty::F64,
        T::Str | T::Uuid | T::Decimal => Ty::String,
        T::Binary | T::Jsonb => BYTES,
        T::Date => DATE,
        T::Time => TIME,
        T::Datetime => DATETIME,
        T::Timestamp => Ty::S64,
        T::RangeInt32 => range_ty!(Ty::S32),
        T::RangeInt64 => range_ty!(Ty::S64),
        T::RangeDecimal => range_ty!(Ty::String),
        T::ArrayInt32 => Ty::List(&option_ty!(Ty::S32)),
        T::ArrayInt64 => Ty::List(&option_ty!(Ty::S64)),
        T::ArrayDecimal | T::ArrayStr => Ty::List(&option_ty!(Ty::String)),
        T::Interval => Ty::Tuple(&[Ty::S64, Ty::S32, Ty::S32]),
        // Never a value case: a version without a type's case says `unsupported`.
        T::Other => return None,
    })
}

const fn payloads<const N: usize>(cases: [Case; N], unsupported_raw: bool) -> [Option<Ty>; N] {
    let mut out = [None; N];
    let mut i = 0;
    while i < N {
        out[i] = payload(cases[i], unsupported_raw);
        i += 1;
    }
    out
}

/// `db-data-type`: an enum, or in 4.x a variant whose `other` names the type.
const fn type_cases<const N: usize>(types: [DataType; N], other_named: bool) -> [Option<Ty>; N] {
    let mut out = [None; N];
    let mut i = 0;
    while i < N {
        if other_named && matches!(types[i], DataType::Other) {
            out[i] = Some(Ty::String);
        }
        i += 1;
    }
    out
}

/// One WIT version of the model: the order of its cases and the type
/// descriptors for its function tables.
pub struct Dialect {
    values: &'static [Case],
    params: &'static [Case],
    types: &'static [DataType],
    /// `unsupported(list<u8>)` and `other(string)` (4.x) rather than bare cases.
    raw_unsupported: bool,
    /// `query-failed(query-error)` (PostgreSQL 4.x) rather than `query-failed(string)`.
    structured_errors: bool,
    pub parameter_value: Ty,
    pub row_set: Ty,
    pub error: Ty,
}

/// Builds a [`Dialect`] from its case lists, deriving the descriptors from
/// the same lists the conversions index, so the two cannot disagree.
macro_rules! dialect {
    (values: $values:expr, params: $params:expr, types: $types:expr, raw: $raw:expr, error: $error:expr $(,)?) => {{
        const VALUES: &[Case] = &$values;
        const DB_VALUE: Ty = Ty::Variant(&payloads($values, $raw));
        const COLUMN: Ty = Ty::Tuple(&[Ty::String, Ty::Variant(&type_cases($types, $raw))]);
        Dialect {
            values: VALUES,
            params: &$params,
            types: &$types,
            raw_unsupported: $raw,
            structured_errors: $raw,
            parameter_value: Ty::Variant(&payloads($params, false)),
            row_set: Ty::Tuple(&[Ty::List(&COLUMN), Ty::List(&Ty::List(&DB_VALUE))]),
            error: $error,
        }
    }};
}

/// `variant error { connection-failed(string), bad-parameter(string),
/// query-failed(string), value-conversion-failed(string), other(string) }`.
const TEXT_ERROR: Ty = Ty::Variant(&[Some(Ty::String); 5]);

const DB_ERROR: Ty = Ty::Tuple(&[
    Ty::String,                                      // as-text
    Ty::String,                                      // severity
    Ty::String,                                      // code
    Ty::String,                                      // message
    option_ty!(Ty::String),                          // detail
    Ty::List(&Ty::Tuple(&[Ty::String, Ty::String])), // extras
]);
const STRUCTURED_ERROR: Ty = Ty::Variant(&[
    Some(Ty::String),
    Some(Ty::String),
    Some(Ty::Variant(&[Some(Ty::String), Some(DB_ERROR)])), // query-error
    Some(Ty::String),
    Some(Ty::String),
]);

mod cases {
    use super::Case::{self, DbNull, Of};
    use super::DataType::{self, *};

    pub(super) const V2_PARAMS: [Case; 14] = [
        Of(Boolean),
        Of(Int8),
        Of(Int16),
        Of(Int32),
        Of(Int64),
        Of(Uint8),
        Of(Uint16),
        Of(Uint32),
        Of(Uint64),
        Of(Floating32),
        Of(Floating64),
        Of(Str),
        Of(Binary),
        DbNull,
    ];
    pub(super) const V2_VALUES: [Case; 15] = super::with_unsupported(V2_PARAMS);
    pub(super) const V2_TYPES: [DataType; 14] = [
        Boolean, Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64, Floating32, Floating64,
        Str, Binary, Other,
    ];

    pub(super) const PG3_PARAMS: [Case; 14] = [
        Of(Boolean),
        Of(Int8),
        Of(Int16),
        Of(Int32),
        Of(Int64),
        Of(Floating32),
        Of(Floating64),
        Of(Str),
        Of(Binary),
        Of(Date),
        Of(Time),
        Of(Datetime),
        Of(Timestamp),
        DbNull,
    ];
    pub(super) const PG3_VALUES: [Case; 15] = super::with_unsupported(PG3_PARAMS);
    pub(super) const PG3_TYPES: [DataType; 14] = [
        Boolean, Int8, Int16, Int32, Int64, Floating32, Floating64, Str, Binary, Date, Time,
        Datetime, Timestamp, Other,
    ];

    pub(super) const PG4_PARAMS: [Case; 25] = [
        Of(Boolean),
        Of(Int8),
        Of(Int16),
        Of(Int32),
        Of(Int64),
        Of(Floating32),
        Of(Floating64),
        Of(Str),
        Of(Binary),
        Of(Date),
        Of(Time),
        Of(Datetime),
        Of(Timestamp),
        Of(Uuid),
        Of(Jsonb),
        Of(Decimal),
        Of(RangeInt32),
        Of(RangeInt64),
        Of(RangeDecimal),
        Of(ArrayInt32),
        Of(ArrayInt64),
        Of(ArrayDecimal),
        Of(ArrayStr),
        Of(Interval),
        DbNull,
    ];
    pub(super) const PG4_VALUES: [Case; 26] = super::with_unsupported(PG4_PARAMS);
    pub(super) const PG4_TYPES: [DataType; 25] = [
        Boolean,
        Int8,
        Int16,
        Int32,
        Int64,
        Floating32,
        Floating64,
        Str,
        Binary,
        Date,
        Time,
        Datetime,
        Timestamp,
        Uuid,
        Jsonb,
        Decimal,
        RangeInt32,
        RangeInt64,
        RangeDecimal,
        ArrayInt32,
        ArrayInt64,
        ArrayDecimal,
        ArrayStr,
        Interval,
        Other,
    ];
}

/// A `db-value`'s cases: the `parameter-value`'s and then `unsupported`.
const fn with_unsupported<const N: usize, const M: usize>(params: [Case; N]) -> [Case; M] {
    let mut out = [Case::Unsupported; M];
    let mut i = 0;
    while i < N {
        out[i] = params[i];
        i += 1;
    }
    out
}

/// `fermyon:spin/rdbms-types@2.0.0`, also the cases of `spin:mysql/mysql@3.0.0`.
pub const V2: Dialect = dialect!(
    values: cases::V2_VALUES,
    params: cases::V2_PARAMS,
    types: cases::V2_TYPES,
    raw: false,
    error: TEXT_ERROR,
);

/// `spin:postgres/postgres@3.0.0`.
pub const PG3: Dialect = dialect!(
    values: cases::PG3_VALUES,
    params: cases::PG3_PARAMS,
    types: cases::PG3_TYPES,
    raw: false,
    error: TEXT_ERROR,
);

/// `spin:postgres/postgres@4.0.0` to `4.2.0` (the types did not change).
pub const PG4: Dialect = dialect!(
    values: cases::PG4_VALUES,
    params: cases::PG4_PARAMS,
    types: cases::PG4_TYPES,
    raw: true,
    error: STRUCTURED_ERROR,
);

/// A lifted value of the wrong shape: the engine checked it against the
/// descriptor, so this is a bug in Flint.
fn bug(what: &str, got: &Value) -> wasmi::Error {
    wasmi::Error::new(format!("host bug: expected {what}, got {got:?}"))
}

impl Dialect {
    /// The guest's `list<parameter-value>` as values.
    pub fn params(&self, list: Vec<Value>) -> Result<Vec<DbValue>, wasmi::Error> {
        list.into_iter().map(|v| self.param(v)).collect()
    }

    fn param(&self, value: Value) -> Result<DbValue, wasmi::Error> {
        let (disc, payload) = value.into_variant()?;
        let case = *self
            .params
            .get(disc as usize)
            .ok_or_else(|| wasmi::Error::new(format!("host bug: parameter case {disc}")))?;
        let data_type = match case {
            Case::Of(t) => t,
            Case::DbNull | Case::Unsupported => return Ok(DbValue::DbNull),
        };
        let payload = payload.ok_or_else(|| bug("a payload", &Value::unit()))?;
        lift(data_type, payload)
    }

    /// A row set as this version's `row-set`.
    pub fn row_set(&self, rows: RowSet) -> Value {
        let columns = rows.columns.into_iter().map(|c| self.column(c)).collect();
        let rows = rows
            .rows
            .into_iter()
            .map(|row| Value::List(row.into_iter().map(|v| self.value(v)).collect()))
            .collect();
        Value::Tuple(vec![Value::List(columns), Value::List(rows)])
    }

    fn column(&self, column: Column) -> Value {
        let position = |t| self.types.iter().position(|&c| c == t);
        let (index, data_type) = match position(column.data_type) {
            Some(i) if column.data_type != DataType::Other => (i, None),
            // Spin: a type this version has no case for is `other`, which
            // in 4.x carries the server's name for it.
            _ => (
                position(DataType::Other).unwrap_or(self.types.len() - 1),
                self.raw_unsupported
                    .then_some(Value::String(column.type_name)),
            ),
        };
        Value::Tuple(vec![
            Value::String(column.name),
            Value::case(index as u32, data_type),
        ])
    }

    /// A value as this version's `db-value`: one it has no case for is
    /// `unsupported`, as Spin's conversions between versions make it.
    pub fn value(&self, value: DbValue) -> Value {
        let unsupported = || {
            let index = self.values.iter().position(|&c| c == Case::Unsupported);
            index.unwrap_or(self.values.len() - 1) as u32
        };
        let Some(index) = self.values.iter().position(|&c| c == value.case()) else {
            return Value::case(
                unsupported(),
                self.raw_unsupported.then(|| Value::Bytes(Vec::new())),
            );
        };
        let index = index as u32;
        Value::case(index, lower(value, self.raw_unsupported))
    }

    /// An error as this version's `error` (the payload of `err`).
    pub fn error(&self, error: Error) -> Value {
        let (index, payload) = match error {
            Error::ConnectionFailed(t) => (0, Value::String(t)),
            Error::BadParameter(t) => (1, Value::String(t)),
            Error::QueryFailed(q) => (2, self.query_error(q)),
            Error::ValueConversionFailed(t) => (3, Value::String(t)),
            Error::Other(t) => (4, Value::String(t)),
        };
        Value::case(index, Some(payload))
    }

    fn query_error(&self, error: QueryError) -> Value {
        if !self.structured_errors {
            return Value::String(match error {
                QueryError::Text(t) => t,
                QueryError::Db(e) => e.as_text,
            });
        }
        match error {
            QueryError::Text(t) => Value::case(0, Some(Value::String(t))),
            QueryError::Db(e) => Value::case(
                1,
                Some(Value::Tuple(vec![
                    Value::String(e.as_text),
                    Value::String(e.severity),
                    Value::String(e.code),
                    Value::String(e.message),
                    Value::option(e.detail.map(Value::String)),
                    Value::List(
                        e.extras
                            .into_iter()
                            .map(|(k, v)| Value::Tuple(vec![Value::String(k), Value::String(v)]))
                            .collect(),
                    ),
                ])),
            ),
        }
    }
}

fn lift(data_type: DataType, payload: Value) -> Result<DbValue, wasmi::Error> {
    use DataType as T;
    let p = payload;
    Ok(match data_type {
        T::Boolean => DbValue::Boolean(match p {
            Value::Bool(b) => b,
            other => return Err(bug("bool", &other)),
        }),
        T::Int8 => DbValue::Int8(match p {
            Value::S8(n) => n,
            other => return Err(bug("s8", &other)),
        }),
        T::Int16 => DbValue::Int16(match p {
            Value::S16(n) => n,
            other => return Err(bug("s16", &other)),
        }),
        T::Int32 => DbValue::Int32(s32(p)?),
        T::Int64 => DbValue::Int64(s64(p)?),
        T::Uint8 => DbValue::Uint8(match p {
            Value::U8(n) => n,
            other => return Err(bug("u8", &other)),
        }),
        T::Uint16 => DbValue::Uint16(match p {
            Value::U16(n) => n,
            other => return Err(bug("u16", &other)),
        }),
        T::Uint32 => DbValue::Uint32(u32_of(p)?),
        T::Uint64 => DbValue::Uint64(match p {
            Value::U64(n) => n,
            other => return Err(bug("u64", &other)),
        }),
        T::Floating32 => DbValue::Floating32(match p {
            Value::F32(bits) => f32::from_bits(bits),
            other => return Err(bug("f32", &other)),
        }),
        T::Floating64 => DbValue::Floating64(match p {
            Value::F64(bits) => f64::from_bits(bits),
            other => return Err(bug("f64", &other)),
        }),
        T::Str => DbValue::Str(p.into_string()?),
        T::Uuid => DbValue::Uuid(p.into_string()?),
        T::Decimal => DbValue::Decimal(p.into_string()?),
        T::Binary => DbValue::Binary(p.into_bytes()?),
        T::Jsonb => DbValue::Jsonb(p.into_bytes()?),
        T::Date => {
            let [y, m, d] = fields::<3>(p)?;
            DbValue::Date((s32(y)?, u8_of(m)?, u8_of(d)?))
        }
        T::Time => {
            let [h, m, s, ns] = fields::<4>(p)?;
            DbValue::Time((u8_of(h)?, u8_of(m)?, u8_of(s)?, u32_of(ns)?))
        }
        T::Datetime => {
            let [y, mo, d, h, mi, s, ns] = fields::<7>(p)?;
            DbValue::Datetime((
                s32(y)?,
                u8_of(mo)?,
                u8_of(d)?,
                u8_of(h)?,
                u8_of(mi)?,
                u8_of(s)?,
                u32_of(ns)?,
            ))
        }
        T::Timestamp => DbValue::Timestamp(s64(p)?),
        T::RangeInt32 => DbValue::RangeInt32(range(p, s32)?),
        T::RangeInt64 => DbValue::RangeInt64(range(p, s64)?),
        T::RangeDecimal => DbValue::RangeDecimal(range(p, Value::into_string)?),
        T::ArrayInt32 => DbValue::ArrayInt32(array(p, s32)?),
        T::ArrayInt64 => DbValue::ArrayInt64(array(p, s64)?),
        T::ArrayDecimal => DbValue::ArrayDecimal(array(p, Value::into_string)?),
        T::ArrayStr => DbValue::ArrayStr(array(p, Value::into_string)?),
        T::Interval => {
            let [micros, days, months] = fields::<3>(p)?;
            DbValue::Interval(Interval {
                micros: s64(micros)?,
                days: s32(days)?,
                months: s32(months)?,
            })
        }
        T::Other => return Err(bug("a parameter case", &p)),
    })
}

fn s32(v: Value) -> Result<i32, wasmi::Error> {
    match v {
        Value::S32(n) => Ok(n),
        other => Err(bug("s32", &other)),
    }
}
fn s64(v: Value) -> Result<i64, wasmi::Error> {
    match v {
        Value::S64(n) => Ok(n),
        other => Err(bug("s64", &other)),
    }
}
fn u8_of(v: Value) -> Result<u8, wasmi::Error> {
    match v {
        Value::U8(n) => Ok(n),
        other => Err(bug("u8", &other)),
    }
}
fn u32_of(v: Value) -> Result<u32, wasmi::Error> {
    match v {
        Value::U32(n) => Ok(n),
        other => Err(bug("u32", &other)),
    }
}

fn fields<const N: usize>(v: Value) -> Result<[Value; N], wasmi::Error> {
    let fields = v.into_tuple()?;
    let n = fields.len();
    fields
        .try_into()
        .map_err(|_| wasmi::Error::new(format!("host bug: expected {N} fields, got {n}")))
}

fn bound_kind(v: Value) -> Result<BoundKind, wasmi::Error> {
    Ok(match v.into_variant()?.0 {
        0 => BoundKind::Inclusive,
        _ => BoundKind::Exclusive,
    })
}

fn range<T>(
    v: Value,
    item: impl Fn(Value) -> Result<T, wasmi::Error>,
) -> Result<Range<T>, wasmi::Error> {
    let bound = |b: Value| -> Result<Option<(T, BoundKind)>, wasmi::Error> {
        b.into_option()?
            .map(|pair| {
                let [value, kind] = fields::<2>(pair)?;
                Ok((item(value)?, bound_kind(kind)?))
            })
            .transpose()
    };
    let [lower, upper] = fields::<2>(v)?;
    Ok(Range {
        lower: bound(lower)?,
        upper: bound(upper)?,
    })
}

fn array<T>(
    v: Value,
    item: impl Fn(Value) -> Result<T, wasmi::Error>,
) -> Result<Vec<Option<T>>, wasmi::Error> {
    let Value::List(items) = v else {
        return Err(bug("a list", &v));
    };
    items
        .into_iter()
        .map(|i| i.into_option()?.map(&item).transpose())
        .collect()
}

fn lower(value: DbValue, raw_unsupported: bool) -> Option<Value> {
    fn range_value<T>(r: Range<T>, item: impl Fn(T) -> Value) -> Value {
        let bound = |b: Option<(T, BoundKind)>| {
            Value::option(b.map(|(v, kind)| {
                let kind = Value::case(matches!(kind, BoundKind::Exclusive) as u32, None);
                Value::Tuple(vec![item(v), kind])
            }))
        };
        Value::Tuple(vec![bound(r.lower), bound(r.upper)])
    }
    fn array_value<T>(a: Vec<Option<T>>, item: impl Fn(T) -> Value) -> Value {
        Value::List(a.into_iter().map(|i| Value::option(i.map(&item))).collect())
    }
    Some(match value {
        DbValue::Boolean(b) => Value::Bool(b),
        DbValue::Int8(n) => Value::S8(n),
        DbValue::Int16(n) => Value::S16(n),
        DbValue::Int32(n) => Value::S32(n),
        DbValue::Int64(n) => Value::S64(n),
        DbValue::Uint8(n) => Value::U8(n),
        DbValue::Uint16(n) => Value::U16(n),
        DbValue::Uint32(n) => Value::U32(n),
        DbValue::Uint64(n) => Value::U64(n),
        DbValue::Floating32(f) => Value::F32(f.to_bits()),
        DbValue::Floating64(f) => Value::F64(f.to_bits()),
        DbValue::Str(s) | DbValue::Uuid(s) | DbValue::Decimal(s) => Value::String(s),
        DbValue::Binary(b) | DbValue::Jsonb(b) => Value::Bytes(b),
        DbValue::Date((y, m, d)) => Value::Tuple(vec![Value::S32(y), Value::U8(m), Value::U8(d)]),
        DbValue::Time((h, m, s, ns)) => Value::Tuple(vec![
            Value::U8(h),
            Value::U8(m),
            Value::U8(s),
            Value::U32(ns),
        ]),
        DbValue::Datetime((y, mo, d, h, mi, s, ns)) => Value::Tuple(vec![
            Value::S32(y),
            Value::U8(mo),
            Value::U8(d),
            Value::U8(h),
            Value::U8(mi),
            Value::U8(s),
            Value::U32(ns),
        ]),
        DbValue::Timestamp(t) => Value::S64(t),
        DbValue::RangeInt32(r) => range_value(r, Value::S32),
        DbValue::RangeInt64(r) => range_value(r, Value::S64),
        DbValue::RangeDecimal(r) => range_value(r, Value::String),
        DbValue::ArrayInt32(a) => array_value(a, Value::S32),
        DbValue::ArrayInt64(a) => array_value(a, Value::S64),
        DbValue::ArrayDecimal(a) | DbValue::ArrayStr(a) => array_value(a, Value::String),
        DbValue::Interval(i) => Value::Tuple(vec![
            Value::S64(i.micros),
            Value::S32(i.days),
            Value::S32(i.months),
        ]),
        DbValue::DbNull => return None,
        DbValue::Unsupported(raw) => return raw_unsupported.then_some(Value::Bytes(raw)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case_count(ty: Ty) -> usize {
        match ty {
            Ty::Variant(cases) => cases.len(),
            other => panic!("not a variant: {other:?}"),
        }
    }

    /// `db-value`, from inside `row-set`.
    fn db_value(dialect: &Dialect) -> Ty {
        match dialect.row_set {
            Ty::Tuple(&[_, Ty::List(&Ty::List(value))]) => *value,
            other => panic!("not a row-set: {other:?}"),
        }
    }

    #[test]
    fn descriptors_have_each_versions_cases() {
        assert_eq!(case_count(V2.parameter_value), 14);
        assert_eq!(case_count(db_value(&V2)), 15);
        assert_eq!(case_count(PG3.parameter_value), 14);
        assert_eq!(case_count(db_value(&PG3)), 15);
        assert_eq!(case_count(PG4.parameter_value), 25);
        assert_eq!(case_count(db_value(&PG4)), 26);
        let Ty::Variant(pg4) = db_value(&PG4) else {
            unreachable!()
        };
        assert!(
            matches!(pg4[25], Some(Ty::List(_))),
            "unsupported(list<u8>)"
        );
        assert!(pg4[24].is_none(), "db-null");
    }

    #[test]
    fn parameters_are_lifted_by_their_versions_case() {
        // PG3's case 9 is `date`, V2's is `uint64`.
        let date = Value::case(
            9,
            Some(Value::Tuple(vec![
                Value::S32(2024),
                Value::U8(2),
                Value::U8(29),
            ])),
        );
        assert_eq!(
            PG3.params(vec![date]).unwrap(),
            vec![DbValue::Date((2024, 2, 29))]
        );
        let uint = Value::case(8, Some(Value::U64(7)));
        assert_eq!(V2.params(vec![uint]).unwrap(), vec![DbValue::Uint64(7)]);
        let null = Value::case(24, None);
        assert_eq!(PG4.params(vec![null]).unwrap(), vec![DbValue::DbNull]);
        let range = Value::case(
            16,
            Some(Value::Tuple(vec![
                Value::some(Value::Tuple(vec![Value::S32(1), Value::case(0, None)])),
                Value::none(),
            ])),
        );
        assert_eq!(
            PG4.params(vec![range]).unwrap(),
            vec![DbValue::RangeInt32(Range {
                lower: Some((1, BoundKind::Inclusive)),
                upper: None
            })]
        );
    }

    #[test]
    fn values_a_version_lacks_are_unsupported() {
        let uuid = DbValue::Uuid("x".into());
        assert_eq!(PG3.value(uuid.clone()), Value::case(14, None));
        assert_eq!(
            PG4.value(uuid),
            Value::case(13, Some(Value::String("x".into())))
        );
        assert_eq!(V2.value(DbValue::Date((1, 1, 1))), Value::case(14, None));
        assert_eq!(V2.value(DbValue::DbNull), Value::case(13, None));
        assert_eq!(
            PG4.value(DbValue::Unsupported(vec![1])),
            Value::case(25, Some(Value::Bytes(vec![1])))
        );
    }

    #[test]
    fn columns_of_unknown_types_are_other() {
        let column = |data_type| Column {
            name: "c".into(),
            data_type,
            type_name: "uuid".into(),
        };
        let other = |v: Value| v.into_tuple().unwrap().pop().unwrap();
        assert_eq!(
            other(PG3.column(column(DataType::Uuid))),
            Value::case(13, None)
        );
        assert_eq!(
            other(PG4.column(column(DataType::Uuid))),
            Value::case(13, None)
        );
        assert_eq!(
            other(PG4.column(column(DataType::Other))),
            Value::case(24, Some(Value::String("uuid".into())))
        );
        assert_eq!(
            other(V2.column(column(DataType::Date))),
            Value::case(13, None)
        );
    }

    #[test]
    fn database_errors_are_text_before_4() {
        let error = Error::QueryFailed(QueryError::Db(Box::new(DbError {
            as_text: "ERROR: boom".into(),
            severity: "ERROR".into(),
            code: "42P01".into(),
            message: "boom".into(),
            detail: None,
            extras: vec![],
        })));
        assert_eq!(
            V2.error(error.clone()),
            Value::case(2, Some(Value::String("ERROR: boom".into())))
        );
        let Value::Variant(2, Some(query_error)) = PG4.error(error) else {
            panic!()
        };
        assert!(matches!(*query_error, Value::Variant(1, Some(_))));
    }
}
