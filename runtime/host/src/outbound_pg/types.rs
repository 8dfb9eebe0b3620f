//! PostgreSQL's binary formats for the types Spin maps, both ways, with
//! Spin's mapping (`factor-outbound-pg/src/types.rs`): which column types
//! become which `db-value` case, and which parameter case a column type
//! accepts (tokio-postgres's `ToSql::accepts`). Any other type arrives as
//! `unsupported` with its bytes. A few parameters go in text format
//! (decimals, JSON, string arrays): the server parses them for every type
//! that accepts them, and the text is what the guest gave.

use crate::interfaces::rdbms::{BoundKind, DataType, DbValue, Interval, Range};

use super::json;

pub const BOOL: u32 = 16;
pub const BYTEA: u32 = 17;
pub const CHAR: u32 = 18;
pub const NAME: u32 = 19;
pub const INT8: u32 = 20;
pub const INT2: u32 = 21;
pub const INT4: u32 = 23;
pub const TEXT: u32 = 25;
pub const JSON: u32 = 114;
pub const FLOAT4: u32 = 700;
pub const FLOAT8: u32 = 701;
pub const UNKNOWN: u32 = 705;
pub const BPCHAR: u32 = 1042;
pub const VARCHAR: u32 = 1043;
pub const DATE: u32 = 1082;
pub const TIME: u32 = 1083;
pub const TIMESTAMP: u32 = 1114;
pub const TIMESTAMPTZ: u32 = 1184;
pub const INTERVAL: u32 = 1186;
pub const NUMERIC: u32 = 1700;
pub const UUID: u32 = 2950;
pub const JSONB: u32 = 3802;
pub const INT4RANGE: u32 = 3904;
pub const NUMRANGE: u32 = 3906;
pub const INT8RANGE: u32 = 3926;
pub const NAME_ARRAY: u32 = 1003;
pub const INT4_ARRAY: u32 = 1007;
pub const TEXT_ARRAY: u32 = 1009;
pub const BPCHAR_ARRAY: u32 = 1014;
pub const VARCHAR_ARRAY: u32 = 1015;
pub const INT8_ARRAY: u32 = 1016;
pub const NUMERIC_ARRAY: u32 = 1231;

/// `pg_type.typname` of the types named here, so that most columns need
/// no catalog lookup.
pub fn type_name(oid: u32) -> Option<&'static str> {
    Some(match oid {
        BOOL => "bool",
        BYTEA => "bytea",
        CHAR => "char",
        NAME => "name",
        INT8 => "int8",
        INT2 => "int2",
        INT4 => "int4",
        TEXT => "text",
        26 => "oid",
        JSON => "json",
        FLOAT4 => "float4",
        FLOAT8 => "float8",
        UNKNOWN => "unknown",
        BPCHAR => "bpchar",
        VARCHAR => "varchar",
        DATE => "date",
        TIME => "time",
        TIMESTAMP => "timestamp",
        TIMESTAMPTZ => "timestamptz",
        INTERVAL => "interval",
        1266 => "timetz",
        NUMERIC => "numeric",
        UUID => "uuid",
        JSONB => "jsonb",
        INT4RANGE => "int4range",
        NUMRANGE => "numrange",
        INT8RANGE => "int8range",
        NAME_ARRAY => "_name",
        INT4_ARRAY => "_int4",
        TEXT_ARRAY => "_text",
        BPCHAR_ARRAY => "_bpchar",
        VARCHAR_ARRAY => "_varchar",
        INT8_ARRAY => "_int8",
        NUMERIC_ARRAY => "_numeric",
        _ => return None,
    })
}

/// Spin's `convert_data_type`.
pub fn data_type(oid: u32) -> DataType {
    match oid {
        BOOL => DataType::Boolean,
        BYTEA => DataType::Binary,
        FLOAT4 => DataType::Floating32,
        FLOAT8 => DataType::Floating64,
        INT2 => DataType::Int16,
        INT4 => DataType::Int32,
        INT8 => DataType::Int64,
        TEXT | VARCHAR | BPCHAR => DataType::Str,
        TIMESTAMP | TIMESTAMPTZ => DataType::Datetime,
        DATE => DataType::Date,
        TIME => DataType::Time,
        UUID => DataType::Uuid,
        JSONB => DataType::Jsonb,
        NUMERIC => DataType::Decimal,
        INT4RANGE => DataType::RangeInt32,
        INT8RANGE => DataType::RangeInt64,
        NUMRANGE => DataType::RangeDecimal,
        INT4_ARRAY => DataType::ArrayInt32,
        INT8_ARRAY => DataType::ArrayInt64,
        NUMERIC_ARRAY => DataType::ArrayDecimal,
        TEXT_ARRAY | VARCHAR_ARRAY | BPCHAR_ARRAY => DataType::ArrayStr,
        INTERVAL => DataType::Interval,
        _ => DataType::Other,
    }
}

/// 2000-01-01, PostgreSQL's epoch, in days since 1970-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A parameter ready for Bind: its format and bytes (`None` is NULL).
#[derive(Debug, PartialEq)]
pub struct Encoded {
    pub text: bool,
    pub bytes: Option<Vec<u8>>,
}

/// Why a parameter cannot be sent.
#[derive(Debug, PartialEq)]
pub enum ParamError {
    /// The value itself is invalid (a date that does not exist, a malformed
    /// UUID, decimal or JSON): Spin's conversion errors.
    Conversion(String),
    /// The statement wants another type here.
    WrongType(String),
}

/// The `parameter-value` case a value came in, for messages.
fn case_name(value: &DbValue) -> &'static str {
    match value {
        DbValue::Boolean(_) => "boolean",
        DbValue::Int8(_) => "int8",
        DbValue::Int16(_) => "int16",
        DbValue::Int32(_) => "int32",
        DbValue::Int64(_) => "int64",
        DbValue::Uint8(_) | DbValue::Uint16(_) | DbValue::Uint32(_) | DbValue::Uint64(_) => {
            "unsigned"
        }
        DbValue::Floating32(_) => "floating32",
        DbValue::Floating64(_) => "floating64",
        DbValue::Str(_) => "str",
        DbValue::Binary(_) => "binary",
        DbValue::Date(_) => "date",
        DbValue::Time(_) => "time",
        DbValue::Datetime(_) => "datetime",
        DbValue::Timestamp(_) => "timestamp",
        DbValue::Uuid(_) => "uuid",
        DbValue::Jsonb(_) => "jsonb",
        DbValue::Decimal(_) => "decimal",
        DbValue::RangeInt32(_) => "range-int32",
        DbValue::RangeInt64(_) => "range-int64",
        DbValue::RangeDecimal(_) => "range-decimal",
        DbValue::ArrayInt32(_) => "array-int32",
        DbValue::ArrayInt64(_) => "array-int64",
        DbValue::ArrayDecimal(_) => "array-decimal",
        DbValue::ArrayStr(_) => "array-str",
        DbValue::Interval(_) => "interval",
        DbValue::DbNull => "db-null",
        DbValue::Unsupported(_) => "unsupported",
    }
}

/// Whether a parameter of this case may fill a slot of type `oid`
/// (tokio-postgres's `accepts`; a datetime and a timestamp each also
/// fill the other's column type, which tokio-postgres refuses).
fn accepts(value: &DbValue, oid: u32) -> bool {
    match value {
        DbValue::DbNull => true,
        DbValue::Boolean(_) => oid == BOOL,
        DbValue::Int8(_) => oid == CHAR,
        DbValue::Int16(_) => oid == INT2,
        DbValue::Int32(_) => oid == INT4,
        DbValue::Int64(_) => oid == INT8,
        DbValue::Floating32(_) => oid == FLOAT4,
        DbValue::Floating64(_) => oid == FLOAT8,
        DbValue::Str(_) => matches!(oid, TEXT | VARCHAR | BPCHAR | NAME | UNKNOWN),
        DbValue::Binary(_) => oid == BYTEA,
        DbValue::Date(_) => oid == DATE,
        DbValue::Time(_) => oid == TIME,
        DbValue::Datetime(_) | DbValue::Timestamp(_) => matches!(oid, TIMESTAMP | TIMESTAMPTZ),
        DbValue::Uuid(_) => oid == UUID,
        DbValue::Jsonb(_) => matches!(oid, JSON | JSONB),
        DbValue::Decimal(_) => oid == NUMERIC,
        DbValue::RangeInt32(_) => oid == INT4RANGE,
        DbValue::RangeInt64(_) => oid == INT8RANGE,
        DbValue::RangeDecimal(_) => oid == NUMRANGE,
        DbValue::ArrayInt32(_) => oid == INT4_ARRAY,
        DbValue::ArrayInt64(_) => oid == INT8_ARRAY,
        DbValue::ArrayDecimal(_) => oid == NUMERIC_ARRAY,
        DbValue::ArrayStr(_) => {
            matches!(oid, TEXT_ARRAY | VARCHAR_ARRAY | BPCHAR_ARRAY | NAME_ARRAY)
        }
        DbValue::Interval(_) => oid == INTERVAL,
        DbValue::Uint8(_)
        | DbValue::Uint16(_)
        | DbValue::Uint32(_)
        | DbValue::Uint64(_)
        | DbValue::Unsupported(_) => false,
    }
}

/// Spin's text for the unsigned cases of `fermyon:spin/rdbms-types`.
pub const NO_UNSIGNED: &str = "Postgres does not support unsigned integers";

/// Checks a parameter's value on its own, as Spin converts every parameter
/// before the statement is sent.
pub fn convert(value: &DbValue) -> Result<Encoded, String> {
    let binary = |bytes: Vec<u8>| Encoded {
        text: false,
        bytes: Some(bytes),
    };
    let text = |s: String| Encoded {
        text: true,
        bytes: Some(s.into_bytes()),
    };
    Ok(match value {
        DbValue::DbNull => Encoded {
            text: false,
            bytes: None,
        },
        DbValue::Boolean(b) => binary(vec![u8::from(*b)]),
        DbValue::Int8(n) => binary(n.to_be_bytes().to_vec()),
        DbValue::Int16(n) => binary(n.to_be_bytes().to_vec()),
        DbValue::Int32(n) => binary(n.to_be_bytes().to_vec()),
        DbValue::Int64(n) => binary(n.to_be_bytes().to_vec()),
        DbValue::Floating32(f) => binary(f.to_be_bytes().to_vec()),
        DbValue::Floating64(f) => binary(f.to_be_bytes().to_vec()),
        DbValue::Str(s) => binary(s.clone().into_bytes()),
        DbValue::Binary(b) => binary(b.clone()),
        DbValue::Date(d) => binary(pg_days(*d)?.to_be_bytes().to_vec()),
        DbValue::Time(t) => binary(time_micros(*t)?.to_be_bytes().to_vec()),
        DbValue::Datetime((y, mo, d, h, mi, s, ns)) => {
            let micros = pg_days((*y, *mo, *d))
                .ok()
                .and_then(|days| i64::from(days).checked_mul(MICROS_PER_DAY))
                .zip(time_micros((*h, *mi, *s, *ns)).ok())
                .and_then(|(day, time)| day.checked_add(time))
                .ok_or_else(|| format!("invalid datetime {y}-{mo}-{d} {h}:{mi}:{s}.{ns}"))?;
            binary(micros.to_be_bytes().to_vec())
        }
        DbValue::Timestamp(seconds) => {
            let micros = seconds
                .checked_sub(PG_EPOCH_DAYS * 86_400)
                .and_then(|s| s.checked_mul(1_000_000))
                .ok_or_else(|| format!("invalid epoch timestamp {seconds}"))?;
            binary(micros.to_be_bytes().to_vec())
        }
        DbValue::Uuid(u) => binary(
            parse_uuid(u)
                .ok_or_else(|| format!("invalid UUID {u}"))?
                .to_vec(),
        ),
        DbValue::Jsonb(j) => {
            let compact = json::compact(j)
                .map_err(|e| format!("invalid JSON {}: {e}", String::from_utf8_lossy(j)))?;
            // Checked UTF-8 by `compact`.
            text(String::from_utf8_lossy(&compact).into_owned())
        }
        DbValue::Decimal(d) => text(decimal(d)?.to_owned()),
        DbValue::RangeInt32(r) => binary(range_bytes(r, |n| n.to_be_bytes().to_vec())),
        DbValue::RangeInt64(r) => binary(range_bytes(r, |n| n.to_be_bytes().to_vec())),
        DbValue::RangeDecimal(r) => {
            let bound = |b: &Option<(String, BoundKind)>| -> Result<(String, BoundKind), String> {
                match b {
                    Some((d, kind)) => Ok((decimal(d)?.to_owned(), *kind)),
                    None => Ok((String::new(), BoundKind::Exclusive)),
                }
            };
            let (lower, lower_kind) = bound(&r.lower)?;
            let (upper, upper_kind) = bound(&r.upper)?;
            let open = if lower_kind == BoundKind::Inclusive {
                '['
            } else {
                '('
            };
            let close = if upper_kind == BoundKind::Inclusive {
                ']'
            } else {
                ')'
            };
            text(format!("{open}{lower},{upper}{close}"))
        }
        DbValue::ArrayInt32(a) => binary(array_bytes(a, INT4, |n| n.to_be_bytes().to_vec())),
        DbValue::ArrayInt64(a) => binary(array_bytes(a, INT8, |n| n.to_be_bytes().to_vec())),
        DbValue::ArrayDecimal(a) => {
            for d in a.iter().flatten() {
                decimal(d)?;
            }
            text(array_text(a))
        }
        DbValue::ArrayStr(a) => text(array_text(a)),
        DbValue::Interval(i) => {
            let mut bytes = i.micros.to_be_bytes().to_vec();
            bytes.extend_from_slice(&i.days.to_be_bytes());
            bytes.extend_from_slice(&i.months.to_be_bytes());
            binary(bytes)
        }
        DbValue::Uint8(_) | DbValue::Uint16(_) | DbValue::Uint32(_) | DbValue::Uint64(_) => {
            return Err(NO_UNSIGNED.into());
        }
        DbValue::Unsupported(_) => return Err("an unsupported value cannot be a parameter".into()),
    })
}

/// The `index`th parameter for a slot of type `oid`.
pub fn encode(index: usize, value: &DbValue, oid: u32) -> Result<Encoded, ParamError> {
    let encoded = convert(value).map_err(ParamError::Conversion)?;
    if !accepts(value, oid) {
        let name = type_name(oid).map_or_else(|| format!("oid {oid}"), str::to_owned);
        return Err(ParamError::WrongType(format!(
            "error serializing parameter {index}: cannot convert between the parameter type `{}` and the Postgres type `{name}`",
            case_name(value)
        )));
    }
    Ok(encoded)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`), or `None` if the date does not exist.
fn days_from_civil(y: i32, m: u8, d: u8) -> Option<i64> {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d == 0 || d > month_days[usize::from(m - 1)] {
        return None;
    }
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> Option<(i32, u8, u8)> {
    let z = z.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + i64::from(m <= 2);
    Some((i32::try_from(y).ok()?, m, d))
}

fn pg_days((y, m, d): (i32, u8, u8)) -> Result<i32, String> {
    days_from_civil(y, m, d)
        .and_then(|days| i32::try_from(days - PG_EPOCH_DAYS).ok())
        .ok_or_else(|| format!("invalid date y={y}, m={m}, d={d}"))
}

fn time_micros((h, m, s, ns): (u8, u8, u8, u32)) -> Result<i64, String> {
    if h > 23 || m > 59 || s > 59 || ns > 999_999_999 {
        return Err(format!("invalid time {h}:{m}:{s}:{ns}"));
    }
    Ok(((i64::from(h) * 60 + i64::from(m)) * 60 + i64::from(s)) * 1_000_000 + i64::from(ns / 1000))
}

/// Hours, minutes, seconds and nanoseconds of a time of day in
/// microseconds. A server's value outside the day (or negative) wraps, as
/// chrono's `NaiveTime + Duration` does in tokio-postgres; without the wrap
/// a negative remainder cast to `u32` overflows the multiplication.
fn split_time(micros: i64) -> (u8, u8, u8, u32) {
    let micros = micros.rem_euclid(MICROS_PER_DAY);
    let seconds = micros / 1_000_000;
    (
        (seconds / 3600) as u8,
        (seconds / 60 % 60) as u8,
        (seconds % 60) as u8,
        (micros % 1_000_000) as u32 * 1000,
    )
}

/// The uuid crate's accepted forms: hyphenated, simple, braced, URN.
fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let inner = text
        .strip_prefix("urn:uuid:")
        .or_else(|| text.strip_prefix('{').and_then(|t| t.strip_suffix('}')))
        .unwrap_or(text);
    let hex: String = match inner.len() {
        32 => inner.to_owned(),
        36 if [8, 13, 18, 23].iter().all(|&i| inner.as_bytes()[i] == b'-') => {
            inner.chars().filter(|c| *c != '-').collect()
        }
        _ => return None,
    };
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A base-10 decimal as Spin accepts one (`-12.50`, `3`, `.5`).
fn decimal(text: &str) -> Result<&str, String> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return Err(format!("invalid decimal {text}"));
    }
    Ok(text)
}

/// Range flags of PostgreSQL's binary range format.
const RANGE_EMPTY: u8 = 0x01;
const RANGE_LB_INC: u8 = 0x02;
const RANGE_UB_INC: u8 = 0x04;
const RANGE_LB_INF: u8 = 0x08;
const RANGE_UB_INF: u8 = 0x10;

fn range_bytes<T>(range: &Range<T>, item: impl Fn(&T) -> Vec<u8>) -> Vec<u8> {
    let mut flags = 0;
    let mut body = Vec::new();
    for (bound, inf, inc) in [
        (&range.lower, RANGE_LB_INF, RANGE_LB_INC),
        (&range.upper, RANGE_UB_INF, RANGE_UB_INC),
    ] {
        match bound {
            None => flags |= inf,
            Some((value, kind)) => {
                if *kind == BoundKind::Inclusive {
                    flags |= inc;
                }
                let bytes = item(value);
                body.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                body.extend_from_slice(&bytes);
            }
        }
    }
    let mut out = vec![flags];
    out.extend_from_slice(&body);
    out
}

/// A one-dimensional binary array (an empty one has no dimensions).
fn array_bytes<T>(items: &[Option<T>], element: u32, item: impl Fn(&T) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    let dimensions: i32 = if items.is_empty() { 0 } else { 1 };
    out.extend_from_slice(&dimensions.to_be_bytes());
    out.extend_from_slice(&i32::from(items.iter().any(Option::is_none)).to_be_bytes());
    out.extend_from_slice(&element.to_be_bytes());
    if !items.is_empty() {
        out.extend_from_slice(&(items.len() as i32).to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
    }
    for i in items {
        match i {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                let bytes = item(v);
                out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                out.extend_from_slice(&bytes);
            }
        }
    }
    out
}

/// An array literal, `{"a","b \"c\"",NULL}`: every element quoted, so any
/// text survives.
fn array_text(items: &[Option<String>]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            None => out.push_str("NULL"),
            Some(s) => {
                out.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    out.push('}');
    out
}

/// A reader over one value's bytes that never reads past them.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("the server sent a truncated value".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().unwrap_or([0; N]))
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    /// A length-prefixed item (`None` for -1, NULL).
    fn item(&mut self) -> Result<Option<&'a [u8]>, String> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(None);
        }
        self.take(len as usize).map(Some)
    }
    fn end(self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("the server sent a value longer than its type".into())
        }
    }
}

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], String> {
    raw.try_into()
        .map_err(|_| format!("the server sent {} bytes for a {N}-byte value", raw.len()))
}

fn utf8(raw: &[u8]) -> Result<String, String> {
    String::from_utf8(raw.to_vec()).map_err(|_| "the server sent text that is not UTF-8".into())
}

/// The error of a value whose text would not fit the room left: the
/// caller reports the result as over its limit.
pub const TOO_LARGE: &str = "the value exceeds the memory left for the result";

/// A non-NULL value of type `oid` in binary format. `room` is what is left
/// of the result's budget: what a value allocates beyond its bytes is taken
/// from it first, so that a server's row cannot make the host allocate far
/// more than it sent: a numeric's text (a weight and a scale of a few bytes
/// stand for up to ~200 KB of digits) and an array's slots.
pub fn decode(oid: u32, raw: &[u8], room: &mut usize) -> Result<DbValue, String> {
    Ok(match oid {
        BOOL => DbValue::Boolean(fixed::<1>(raw)?[0] != 0),
        INT2 => DbValue::Int16(i16::from_be_bytes(fixed(raw)?)),
        INT4 => DbValue::Int32(i32::from_be_bytes(fixed(raw)?)),
        INT8 => DbValue::Int64(i64::from_be_bytes(fixed(raw)?)),
        FLOAT4 => DbValue::Floating32(f32::from_be_bytes(fixed(raw)?)),
        FLOAT8 => DbValue::Floating64(f64::from_be_bytes(fixed(raw)?)),
        TEXT | VARCHAR | BPCHAR => DbValue::Str(utf8(raw)?),
        BYTEA => DbValue::Binary(raw.to_vec()),
        DATE => {
            let days = i32::from_be_bytes(fixed(raw)?);
            DbValue::Date(
                civil_from_days(i64::from(days) + PG_EPOCH_DAYS)
                    .filter(|_| days != i32::MAX && days != i32::MIN)
                    .ok_or("the server sent an infinite date, which has no date value")?,
            )
        }
        TIME => DbValue::Time(split_time(i64::from_be_bytes(fixed(raw)?))),
        // Spin reads timestamptz as a naive datetime too (UTC: the binary
        // value is UTC).
        TIMESTAMP | TIMESTAMPTZ => {
            let micros = i64::from_be_bytes(fixed(raw)?);
            if micros == i64::MAX || micros == i64::MIN {
                return Err(
                    "the server sent an infinite timestamp, which has no datetime value".into(),
                );
            }
            let (y, mo, d) = civil_from_days(micros.div_euclid(MICROS_PER_DAY) + PG_EPOCH_DAYS)
                .ok_or("the server sent a timestamp out of range")?;
            let (h, mi, s, ns) = split_time(micros.rem_euclid(MICROS_PER_DAY));
            DbValue::Datetime((y, mo, d, h, mi, s, ns))
        }
        UUID => DbValue::Uuid(uuid_text(fixed(raw)?)),
        JSONB => {
            let (&version, text) = raw.split_first().ok_or("the server sent an empty jsonb")?;
            if version != 1 {
                return Err(format!("unsupported jsonb version {version}"));
            }
            DbValue::Jsonb(json::compact(text)?)
        }
        NUMERIC => DbValue::Decimal(numeric(raw, room)?),
        INT4RANGE => DbValue::RangeInt32(range(raw, |b| Ok(i32::from_be_bytes(fixed(b)?)))?),
        INT8RANGE => DbValue::RangeInt64(range(raw, |b| Ok(i64::from_be_bytes(fixed(b)?)))?),
        NUMRANGE => DbValue::RangeDecimal(range(raw, |b| numeric(b, room))?),
        INT4_ARRAY => {
            DbValue::ArrayInt32(array(raw, room, |b, _| Ok(i32::from_be_bytes(fixed(b)?)))?)
        }
        INT8_ARRAY => {
            DbValue::ArrayInt64(array(raw, room, |b, _| Ok(i64::from_be_bytes(fixed(b)?)))?)
        }
        NUMERIC_ARRAY => DbValue::ArrayDecimal(array(raw, room, numeric)?),
        TEXT_ARRAY | VARCHAR_ARRAY | BPCHAR_ARRAY => {
            DbValue::ArrayStr(array(raw, room, |b, _| utf8(b))?)
        }
        INTERVAL => {
            let mut b = Bytes(raw);
            let interval = Interval {
                micros: b.i64()?,
                days: b.i32()?,
                months: b.i32()?,
            };
            b.end()?;
            DbValue::Interval(interval)
        }
        _ => DbValue::Unsupported(raw.to_vec()),
    })
}

fn uuid_text(b: [u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `numeric`'s binary form (base-10000 digits, a weight, a sign and the
/// display scale) as its exact decimal text, its length taken from `room`.
fn numeric(raw: &[u8], room: &mut usize) -> Result<String, String> {
    let mut b = Bytes(raw);
    let ndigits = b.i16()?;
    let weight = i32::from(b.i16()?);
    let sign = b.i16()? as u16;
    let dscale = b.i16()? as u16;
    let digits: Vec<i16> = (0..ndigits.max(0))
        .map(|_| b.i16())
        .collect::<Result<_, _>>()?;
    b.end()?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => return Err(format!("the server sent a numeric with sign {sign:#x}")),
    }
    if digits.iter().any(|d| !(0..10_000).contains(d)) {
        return Err("the server sent a numeric digit out of range".into());
    }
    // At most: a sign, four digits per group up to the weight, a point and
    // the scale's digits.
    let integer = usize::try_from(weight).map_or(1, |w| 4 * (w + 1));
    let len = 1 + integer + 1 + usize::from(dscale);
    *room = room.checked_sub(len).ok_or(TOO_LARGE)?;
    let group = |i: i32| -> i16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out.push_str(&group(0).to_string());
        for i in 1..=weight {
            out.push_str(&format!("{:04}", group(i)));
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut fraction = String::new();
        let mut i = weight + 1;
        while fraction.len() < usize::from(dscale) {
            fraction.push_str(&format!("{:04}", group(i)));
            i += 1;
        }
        fraction.truncate(usize::from(dscale));
        out.push_str(&fraction);
    }
    Ok(out)
}

fn range<T>(
    raw: &[u8],
    mut item: impl FnMut(&[u8]) -> Result<T, String>,
) -> Result<Range<T>, String> {
    let mut b = Bytes(raw);
    let flags = b.take(1)?[0];
    // Spin: an empty range has neither bound.
    if flags & RANGE_EMPTY != 0 {
        b.end()?;
        return Ok(Range {
            lower: None,
            upper: None,
        });
    }
    let mut bound = |inf: u8, inc: u8| -> Result<Option<(T, BoundKind)>, String> {
        if flags & inf != 0 {
            return Ok(None);
        }
        let value = b.item()?.ok_or("the server sent a NULL range bound")?;
        let kind = if flags & inc != 0 {
            BoundKind::Inclusive
        } else {
            BoundKind::Exclusive
        };
        Ok(Some((item(value)?, kind)))
    };
    let lower = bound(RANGE_LB_INF, RANGE_LB_INC)?;
    let upper = bound(RANGE_UB_INF, RANGE_UB_INC)?;
    b.end()?;
    Ok(Range { lower, upper })
}

/// A one-dimensional array, its elements' slots taken from `room` before
/// they are allocated (an empty string's 4 bytes are a 24-byte slot) and
/// passed on to `item`.
fn array<T>(
    raw: &[u8],
    room: &mut usize,
    mut item: impl FnMut(&[u8], &mut usize) -> Result<T, String>,
) -> Result<Vec<Option<T>>, String> {
    let mut b = Bytes(raw);
    let dimensions = b.i32()?;
    let _has_nulls = b.i32()?;
    let _element = b.u32()?;
    match dimensions {
        0 => return Ok(Vec::new()),
        1 => {}
        // tokio-postgres's refusal, which Spin passes on.
        _ => return Err("array contains too many dimensions".into()),
    }
    let len = b.i32()?;
    let _lower_bound = b.i32()?;
    // Each element takes at least its 4-byte length: a count the bytes
    // cannot hold is refused before anything is allocated for it.
    let len = usize::try_from(len)
        .ok()
        .filter(|n| n.saturating_mul(4) <= b.0.len())
        .ok_or("the server sent an array longer than its bytes")?;
    *room = len
        .checked_mul(std::mem::size_of::<Option<T>>())
        .and_then(|slots| room.checked_sub(slots))
        .ok_or(TOO_LARGE)?;
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        out.push(b.item()?.map(|b| item(b, room)).transpose()?);
    }
    b.end()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unbounded(oid: u32, raw: &[u8]) -> Result<DbValue, String> {
        let mut room = usize::MAX;
        decode(oid, raw, &mut room)
    }

    fn numeric_text(raw: &[u8]) -> Result<String, String> {
        let mut room = usize::MAX;
        numeric(raw, &mut room)
    }

    #[test]
    fn dates_round_trip_through_days() {
        for (date, days) in [
            ((2000, 1, 1), 0),
            ((1970, 1, 1), -10_957),
            ((2024, 2, 29), 8_825),
            ((1, 1, 1), -730_119),
        ] {
            assert_eq!(pg_days(date), Ok(days), "{date:?}");
            assert_eq!(civil_from_days(i64::from(days) + PG_EPOCH_DAYS), Some(date));
        }
        assert!(pg_days((2023, 2, 29)).is_err());
        assert!(pg_days((2023, 13, 1)).is_err());
    }

    #[test]
    fn timestamps() {
        let micros = 86_400_000_000i64 + 3_723_000_004;
        assert_eq!(
            unbounded(TIMESTAMP, &micros.to_be_bytes()),
            Ok(DbValue::Datetime((2000, 1, 2, 1, 2, 3, 4000)))
        );
        assert_eq!(
            unbounded(TIMESTAMPTZ, &(-1i64).to_be_bytes()),
            Ok(DbValue::Datetime((1999, 12, 31, 23, 59, 59, 999_999_000)))
        );
        let epoch = convert(&DbValue::Timestamp(946_684_800)).unwrap();
        assert_eq!(epoch.bytes, Some(0i64.to_be_bytes().to_vec()));
        assert!(unbounded(TIMESTAMP, &i64::MAX.to_be_bytes()).is_err());
        // A time outside the day wraps instead of overflowing.
        assert_eq!(
            unbounded(TIME, &(-1i64).to_be_bytes()),
            Ok(DbValue::Time((23, 59, 59, 999_999_000)))
        );
        assert_eq!(
            unbounded(TIME, &MICROS_PER_DAY.to_be_bytes()),
            Ok(DbValue::Time((0, 0, 0, 0)))
        );
        assert!(unbounded(TIME, &i64::MIN.to_be_bytes()).is_ok());
    }

    #[test]
    fn numerics_are_exact() {
        let numeric_bytes = |weight: i16, sign: u16, dscale: u16, digits: &[i16]| {
            let mut out = Vec::new();
            for v in [digits.len() as i16, weight, sign as i16, dscale as i16] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            for d in digits {
                out.extend_from_slice(&d.to_be_bytes());
            }
            out
        };
        // 12345.678 = 1|2345|6780, weight 1, dscale 3.
        assert_eq!(
            numeric_text(&numeric_bytes(1, 0, 3, &[1, 2345, 6780])).unwrap(),
            "12345.678"
        );
        assert_eq!(
            numeric_text(&numeric_bytes(-1, 0x4000, 2, &[500])).unwrap(),
            "-0.05"
        );
        assert_eq!(
            numeric_text(&numeric_bytes(2, 0, 0, &[1])).unwrap(),
            "100000000"
        );
        assert_eq!(numeric_text(&numeric_bytes(0, 0, 2, &[])).unwrap(), "0.00");
        assert_eq!(
            numeric_text(&numeric_bytes(0, 0xC000, 0, &[])).unwrap(),
            "NaN"
        );
        assert!(numeric_text(&numeric_bytes(0, 0, 0, &[10_000])).is_err());
        assert!(
            numeric_text(&[0, 5, 0, 0, 0, 0, 0, 0]).is_err(),
            "digits missing"
        );
        // The text is taken from the room before it is built: 8 bytes
        // that would be 131 KB of digits.
        let huge = numeric_bytes(i16::MAX, 0, 0, &[1]);
        let mut room = 1000;
        assert_eq!(numeric(&huge, &mut room), Err(TOO_LARGE.into()));
        assert_eq!(room, 1000);
        let mut room = 1000;
        numeric(&numeric_bytes(0, 0, 2, &[7]), &mut room).unwrap();
        assert!(room < 1000);
    }

    #[test]
    fn arrays_and_ranges() {
        let bytes = array_bytes(&[Some(1), None, Some(3)], INT4, |n: &i32| {
            n.to_be_bytes().to_vec()
        });
        assert_eq!(
            unbounded(INT4_ARRAY, &bytes),
            Ok(DbValue::ArrayInt32(vec![Some(1), None, Some(3)]))
        );
        assert_eq!(
            unbounded(INT4_ARRAY, &array_bytes::<i32>(&[], INT4, |_| vec![])),
            Ok(DbValue::ArrayInt32(vec![]))
        );
        let mut huge = array_bytes(&[Some(1)], INT4, |n: &i32| n.to_be_bytes().to_vec());
        huge[12..16].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(unbounded(INT4_ARRAY, &huge).is_err());

        let r = Range {
            lower: Some((1i64, BoundKind::Inclusive)),
            upper: None,
        };
        let bytes = range_bytes(&r, |n| n.to_be_bytes().to_vec());
        assert_eq!(unbounded(INT8RANGE, &bytes), Ok(DbValue::RangeInt64(r)));
        assert_eq!(
            unbounded(INT4RANGE, &[RANGE_EMPTY]),
            Ok(DbValue::RangeInt32(Range {
                lower: None,
                upper: None
            }))
        );
        assert_eq!(array_text(&[Some("a\"b".into()), None]), r#"{"a\"b",NULL}"#);
        // 1000 empty strings are 4000 bytes and 24000 of slots.
        let empties = array_bytes(&vec![Some(()); 1000], TEXT, |_| vec![]);
        let mut room = 10_000;
        assert_eq!(
            decode(TEXT_ARRAY, &empties, &mut room),
            Err(TOO_LARGE.into())
        );
        assert!(decode(TEXT_ARRAY, &empties, &mut 100_000).is_ok());
    }

    #[test]
    fn parameters_check_values_then_types() {
        assert_eq!(
            encode(0, &DbValue::Uuid("nope".into()), UUID),
            Err(ParamError::Conversion("invalid UUID nope".into()))
        );
        let e = encode(2, &DbValue::Int32(1), INT8).unwrap_err();
        assert_eq!(
            e,
            ParamError::WrongType("error serializing parameter 2: cannot convert between the parameter type `int32` and the Postgres type `int8`".into())
        );
        assert!(encode(0, &DbValue::DbNull, UUID).unwrap().bytes.is_none());
        let uuid = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        let bytes = encode(0, &DbValue::Uuid(uuid.to_uppercase()), UUID)
            .unwrap()
            .bytes
            .unwrap();
        assert_eq!(uuid_text(bytes.try_into().unwrap()), uuid);
        assert_eq!(
            convert(&DbValue::Decimal("1e5".into())),
            Err("invalid decimal 1e5".into())
        );
        assert_eq!(convert(&DbValue::Uint8(1)), Err(NO_UNSIGNED.into()));
    }
}
