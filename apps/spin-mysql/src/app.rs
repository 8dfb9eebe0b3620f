//! The routes, each on a connection to the address in the component
//! variable `address` (or `?address=`, for the error routes):
//!
//! - `POST /create`: (re)creates table `every_type`, a column per MySQL type
//!   that Spin maps to its own (`BOOLEAN` is `TINYINT(1)`, so `int8`).
//! - `POST /insert`: inserts one row of every parameter type and one of NULLs.
//! - `GET /select`: the table's columns (`name: data-type`) and rows.
//! - `POST /execute`, `POST /query`: the statement in the body.
//! - `GET /open?address=...`: opens the address and says `opened`.
//!
//! Any error answers 500 with the WIT case name and its text
//! (`connection-failed: ...`).

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::mysql::{
    Connection, DbDataType, DbValue, MysqlError as Error, ParameterValue, RowSet,
};

pub fn handle(req: &Request) -> Response {
    match serve(req) {
        Ok(text) => Response::new(200, text),
        Err(e) => Response::new(500, format!("{}\n", error(&e))),
    }
}

fn serve(req: &Request) -> Result<String, Error> {
    let query_address = req
        .query()
        .split('&')
        .find_map(|p| p.strip_prefix("address="))
        .map(percent_decode);
    let address = match query_address {
        Some(address) => address,
        None => spin_sdk::variables::get("address")
            .map_err(|e| Error::Other(format!("variable `address`: {e}")))?,
    };
    let db = Connection::open(&address)?;
    let body = String::from_utf8_lossy(req.body()).into_owned();
    match (req.method(), req.path()) {
        (_, "/open") => Ok("opened\n".into()),
        (Method::Post, "/create") => {
            db.execute("DROP TABLE IF EXISTS every_type", &[])?;
            db.execute(CREATE, &[])?;
            Ok("created\n".into())
        }
        (Method::Post, "/insert") => {
            db.execute(INSERT, &every_parameter())?;
            db.execute(INSERT, &[const { ParameterValue::DbNull }; COLUMNS])?;
            Ok("inserted 2 rows\n".into())
        }
        (Method::Get, "/select") => Ok(rows(&db.query("SELECT * FROM every_type", &[])?)),
        (Method::Post, "/execute") => {
            db.execute(&body, &[])?;
            Ok("executed\n".into())
        }
        (Method::Post, "/query") => Ok(rows(&db.query(&body, &[])?)),
        _ => Ok("no such route\n".into()),
    }
}

const COLUMNS: usize = 18;

const CREATE: &str = "CREATE TABLE every_type (
    b BOOLEAN, i8 TINYINT, i16 SMALLINT, i24 MEDIUMINT, i32 INT, i64 BIGINT,
    u8 TINYINT UNSIGNED, u16 SMALLINT UNSIGNED, u32 INT UNSIGNED, u64 BIGINT UNSIGNED,
    f32 FLOAT, f64 DOUBLE,
    vc VARCHAR(32), txt TEXT, ch CHAR(4),
    vb VARBINARY(16), bl BLOB, bn BINARY(4)
) CHARACTER SET utf8mb4";

const INSERT: &str =
    "INSERT INTO every_type VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

fn every_parameter() -> [ParameterValue; COLUMNS] {
    [
        ParameterValue::Boolean(true),
        ParameterValue::Int8(-128),
        ParameterValue::Int16(-32768),
        ParameterValue::Int32(-8388608),
        ParameterValue::Int32(i32::MIN),
        ParameterValue::Int64(i64::MIN),
        ParameterValue::Uint8(u8::MAX),
        ParameterValue::Uint16(u16::MAX),
        ParameterValue::Uint32(u32::MAX),
        ParameterValue::Uint64(u64::MAX),
        ParameterValue::Floating32(1.5),
        ParameterValue::Floating64(-2.25),
        ParameterValue::Str("héllo, wörld".into()),
        ParameterValue::Str("a longer text".into()),
        ParameterValue::Str("abcd".into()),
        ParameterValue::Binary(vec![0, 1, 254, 255]),
        ParameterValue::Binary(b"blob\0bytes".to_vec()),
        ParameterValue::Binary(vec![9, 8, 7, 6]),
    ]
}

/// One line per column (`name: data-type`), then one per row.
fn rows(set: &RowSet) -> String {
    let mut out = String::new();
    for column in &set.columns {
        out += &format!("{}: {}\n", column.name, data_type(&column.data_type));
    }
    for row in &set.rows {
        let values: Vec<String> = row.iter().map(value).collect();
        out += &values.join(", ");
        out.push('\n');
    }
    out
}

fn data_type(t: &DbDataType) -> &'static str {
    match t {
        DbDataType::Boolean => "boolean",
        DbDataType::Int8 => "int8",
        DbDataType::Int16 => "int16",
        DbDataType::Int32 => "int32",
        DbDataType::Int64 => "int64",
        DbDataType::Uint8 => "uint8",
        DbDataType::Uint16 => "uint16",
        DbDataType::Uint32 => "uint32",
        DbDataType::Uint64 => "uint64",
        DbDataType::Floating32 => "floating32",
        DbDataType::Floating64 => "floating64",
        DbDataType::Str => "str",
        DbDataType::Binary => "binary",
        DbDataType::Other => "other",
    }
}

fn value(v: &DbValue) -> String {
    match v {
        DbValue::Boolean(b) => format!("boolean({b})"),
        DbValue::Int8(n) => format!("int8({n})"),
        DbValue::Int16(n) => format!("int16({n})"),
        DbValue::Int32(n) => format!("int32({n})"),
        DbValue::Int64(n) => format!("int64({n})"),
        DbValue::Uint8(n) => format!("uint8({n})"),
        DbValue::Uint16(n) => format!("uint16({n})"),
        DbValue::Uint32(n) => format!("uint32({n})"),
        DbValue::Uint64(n) => format!("uint64({n})"),
        DbValue::Floating32(x) => format!("floating32({x})"),
        DbValue::Floating64(x) => format!("floating64({x})"),
        DbValue::Str(s) => format!("str({s:?})"),
        DbValue::Binary(b) => format!("binary({b:?})"),
        DbValue::DbNull => "db-null".into(),
        DbValue::Unsupported => "unsupported".into(),
    }
}

fn error(e: &Error) -> String {
    match e {
        Error::ConnectionFailed(t) => format!("connection-failed: {t}"),
        Error::BadParameter(t) => format!("bad-parameter: {t}"),
        Error::QueryFailed(t) => format!("query-failed: {t}"),
        Error::ValueConversionFailed(t) => format!("value-conversion-failed: {t}"),
        Error::Other(t) => format!("other: {t}"),
    }
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        let hex = |b: Option<u8>| b.and_then(|b| (b as char).to_digit(16));
        out.push(match b {
            b'%' => {
                let (h, l) = (hex(bytes.next()), hex(bytes.next()));
                (h.unwrap_or(0) * 16 + l.unwrap_or(0)) as u8
            }
            b'+' => b' ',
            b => b,
        });
    }
    String::from_utf8_lossy(&out).into_owned()
}
