//! Prepared statements' binary protocol: column definitions, rows
//! (`ProtocolBinary::ResultsetRow`) and the parameters of
//! `COM_STMT_EXECUTE`. Values keep the server's types, as mysql_common
//! decodes them.

use super::wire::{Buf, WireError, put_lenenc_bytes};

/// Column types (`enum_field_types`) this module decodes by name.
pub mod column_type {
    pub const DECIMAL: u8 = 0x00;
    pub const TINY: u8 = 0x01;
    pub const SHORT: u8 = 0x02;
    pub const LONG: u8 = 0x03;
    pub const FLOAT: u8 = 0x04;
    pub const DOUBLE: u8 = 0x05;
    pub const NULL: u8 = 0x06;
    pub const TIMESTAMP: u8 = 0x07;
    pub const LONGLONG: u8 = 0x08;
    pub const INT24: u8 = 0x09;
    pub const DATE: u8 = 0x0a;
    pub const TIME: u8 = 0x0b;
    pub const DATETIME: u8 = 0x0c;
    pub const YEAR: u8 = 0x0d;
    pub const NEWDATE: u8 = 0x0e;
    pub const VARCHAR: u8 = 0x0f;
    pub const BIT: u8 = 0x10;
    pub const VECTOR: u8 = 0xf2;
    pub const JSON: u8 = 0xf5;
    pub const NEWDECIMAL: u8 = 0xf6;
    pub const ENUM: u8 = 0xf7;
    pub const SET: u8 = 0xf8;
    pub const TINY_BLOB: u8 = 0xf9;
    pub const MEDIUM_BLOB: u8 = 0xfa;
    pub const LONG_BLOB: u8 = 0xfb;
    pub const BLOB: u8 = 0xfc;
    pub const VAR_STRING: u8 = 0xfd;
    pub const STRING: u8 = 0xfe;
    pub const GEOMETRY: u8 = 0xff;
}

/// Column flags this client looks at.
pub mod column_flag {
    pub const UNSIGNED: u16 = 0x0020;
    pub const BINARY: u16 = 0x0080;
}

/// One column of a result set (`ColumnDefinition41`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The name (or alias) the statement gives it.
    pub name: String,
    pub column_type: u8,
    pub flags: u16,
}

impl Column {
    pub(super) fn parse(payload: &[u8]) -> Result<Self, WireError> {
        let mut buf = Buf::new(payload, "column definition");
        for _ in ["catalog", "schema", "table", "org_table"] {
            buf.lenenc_bytes()?;
        }
        let name = String::from_utf8_lossy(buf.lenenc_bytes()?).into_owned();
        buf.lenenc_bytes()?; // org_name
        buf.lenenc()?; // length of the fixed fields
        buf.u16()?; // character set
        buf.u32()?; // column length
        let column_type = buf.u8()?;
        let flags = buf.u16()?;
        Ok(Self {
            name,
            column_type,
            flags,
        })
    }

    fn unsigned(&self) -> bool {
        self.flags & column_flag::UNSIGNED != 0
    }
}

/// A value as mysql_common's `Value` holds it: integers widened to 64 bits
/// (unsigned 64-bit ones that do not fit `i64` as `UInt`), text, blobs and
/// decimals as bytes, dates and times in their parts.
#[derive(Clone, PartialEq)]
pub enum Value {
    Null,
    Bytes(Vec<u8>),
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    /// year, month, day, hour, minute, second, microsecond
    Date(u16, u8, u8, u8, u8, u8, u32),
    /// negative, days, hours, minutes, seconds, microseconds
    Time(bool, u32, u8, u8, u8, u32),
}

/// mysql_common's `Debug`, which Spin's conversion errors print.
impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Null => f.write_str("Null"),
            Value::Bytes(ref bytes) => {
                let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(8)]);
                let shown = shown.replace('\n', "\\n");
                if bytes.len() <= 8 {
                    f.debug_tuple("Bytes").field(&shown).finish()
                } else {
                    f.debug_tuple("Bytes").field(&format!("{shown}..")).finish()
                }
            }
            Value::Int(n) => f.debug_tuple("Int").field(&n).finish(),
            Value::UInt(n) => f.debug_tuple("UInt").field(&n).finish(),
            Value::Float(x) => f.debug_tuple("Float").field(&x).finish(),
            Value::Double(x) => f.debug_tuple("Double").field(&x).finish(),
            Value::Date(y, mo, d, h, mi, s, us) => {
                let mut text = format!("'{y:04}-{mo:02}-{d:02}");
                if (h, mi, s, us) != (0, 0, 0, 0) {
                    text += &format!(" {h:02}:{mi:02}:{s:02}");
                }
                if us != 0 {
                    text += &format!(".{us:06}");
                }
                text.push('\'');
                f.debug_tuple("Date").field(&text).finish()
            }
            Value::Time(negative, days, h, mi, s, us) => {
                let sign = if negative { "-" } else { "" };
                let hours = u64::from(days) * 24 + u64::from(h);
                let mut text = format!("'{sign}{hours:03}:{mi:02}:{s:02}");
                if us != 0 {
                    text += &format!(".{us:06}");
                }
                text.push('\'');
                f.debug_tuple("Time").field(&text).finish()
            }
        }
    }
}

impl Value {
    /// The value of `column` at the front of `buf`.
    fn decode(column: &Column, buf: &mut Buf<'_>) -> Result<Self, WireError> {
        use column_type::*;
        let unsigned = column.unsigned();
        Ok(match column.column_type {
            STRING | VAR_STRING | BLOB | TINY_BLOB | MEDIUM_BLOB | LONG_BLOB | SET | ENUM
            | DECIMAL | VARCHAR | BIT | NEWDECIMAL | GEOMETRY | VECTOR | JSON => {
                Value::Bytes(buf.lenenc_bytes()?.to_vec())
            }
            TINY if unsigned => Value::Int(buf.u8()?.into()),
            TINY => Value::Int((buf.u8()? as i8).into()),
            SHORT | YEAR if unsigned => Value::Int(buf.u16()?.into()),
            SHORT | YEAR => Value::Int((buf.u16()? as i16).into()),
            LONG | INT24 if unsigned => Value::Int(buf.u32()?.into()),
            LONG | INT24 => Value::Int((buf.u32()? as i32).into()),
            LONGLONG if unsigned => {
                let n = buf.u64()?;
                i64::try_from(n).map_or(Value::UInt(n), Value::Int)
            }
            LONGLONG => Value::Int(buf.u64()? as i64),
            FLOAT => Value::Float(f32::from_bits(buf.u32()?)),
            DOUBLE => Value::Double(f64::from_bits(buf.u64()?)),
            TIMESTAMP | DATE | NEWDATE | DATETIME => {
                let len = buf.u8()?;
                let mut part = Buf::new(buf.bytes(len.into())?, "date value");
                let (mut date, mut time, mut micros) = ((0, 0, 0), (0, 0, 0), 0);
                if len >= 4 {
                    date = (part.u16()?, part.u8()?, part.u8()?);
                }
                if len >= 7 {
                    time = (part.u8()?, part.u8()?, part.u8()?);
                }
                if len >= 11 {
                    micros = part.u32()?;
                }
                Value::Date(date.0, date.1, date.2, time.0, time.1, time.2, micros)
            }
            TIME => {
                let len = buf.u8()?;
                let mut part = Buf::new(buf.bytes(len.into())?, "time value");
                let (mut negative, mut days, mut hms, mut micros) = (false, 0, (0, 0, 0), 0);
                if len >= 8 {
                    negative = part.u8()? == 1;
                    days = part.u32()?;
                    hms = (part.u8()?, part.u8()?, part.u8()?);
                }
                if len >= 12 {
                    micros = part.u32()?;
                }
                Value::Time(negative, days, hms.0, hms.1, hms.2, micros)
            }
            NULL => Value::Null,
            _ => return Err(WireError::Malformed("row: a column of an unknown type")),
        })
    }
}

/// A binary result row: `0x00`, the NULL bitmap (offset by two bits), then
/// the values of the non-NULL columns.
pub(super) fn decode_row(payload: &[u8], columns: &[Column]) -> Result<Vec<Value>, WireError> {
    let mut buf = Buf::new(payload, "row");
    if buf.u8()? != 0 {
        return Err(WireError::Malformed("row"));
    }
    let bitmap = buf.bytes((columns.len() + 7 + 2) / 8)?;
    columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let bit = i + 2;
            if bitmap[bit / 8] & (1 << (bit % 8)) != 0 {
                Ok(Value::Null)
            } else {
                Value::decode(column, &mut buf)
            }
        })
        .collect()
}

/// A statement parameter, as mysql_common sends each kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param<'a> {
    Null,
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    Bytes(&'a [u8]),
}

/// The parameter part of `COM_STMT_EXECUTE`: the NULL bitmap, "types
/// follow", each parameter's type and signedness, then the values.
pub(super) fn put_params(out: &mut Vec<u8>, params: &[Param<'_>]) {
    use column_type::*;
    if params.is_empty() {
        return;
    }
    let mut bitmap = vec![0u8; params.len().div_ceil(8)];
    for (i, param) in params.iter().enumerate() {
        if matches!(param, Param::Null) {
            bitmap[i / 8] |= 1 << (i % 8);
        }
    }
    out.extend_from_slice(&bitmap);
    out.push(1);
    for param in params {
        let (ty, unsigned) = match param {
            Param::Null => (NULL, false),
            Param::Int(_) => (LONGLONG, false),
            Param::UInt(_) => (LONGLONG, true),
            Param::Float(_) => (FLOAT, false),
            Param::Double(_) => (DOUBLE, false),
            Param::Bytes(_) => (VAR_STRING, false),
        };
        out.extend_from_slice(&[ty, if unsigned { 0x80 } else { 0 }]);
    }
    for param in params {
        match *param {
            Param::Null => {}
            Param::Int(n) => out.extend_from_slice(&n.to_le_bytes()),
            Param::UInt(n) => out.extend_from_slice(&n.to_le_bytes()),
            Param::Float(x) => out.extend_from_slice(&x.to_le_bytes()),
            Param::Double(x) => out.extend_from_slice(&x.to_le_bytes()),
            Param::Bytes(b) => put_lenenc_bytes(out, b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::column_type::*;
    use super::*;

    fn column(column_type: u8, flags: u16) -> Column {
        Column {
            name: "c".into(),
            column_type,
            flags,
        }
    }

    #[test]
    fn column_definitions() {
        let mut packet = Vec::new();
        for field in ["def", "db", "t", "t", "price", "price"] {
            put_lenenc_bytes(&mut packet, field.as_bytes());
        }
        packet.push(0x0c);
        packet.extend_from_slice(&45u16.to_le_bytes());
        packet.extend_from_slice(&11u32.to_le_bytes());
        packet.push(LONG);
        packet.extend_from_slice(&0x0020u16.to_le_bytes());
        packet.extend_from_slice(&[0, 0, 0]);
        assert_eq!(
            Column::parse(&packet).unwrap(),
            Column {
                name: "price".into(),
                column_type: LONG,
                flags: 0x20
            }
        );
        for cut in 0..packet.len() - 3 {
            assert!(Column::parse(&packet[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn rows_keep_their_types() {
        let columns = [
            column(TINY, 0),
            column(TINY, column_flag::UNSIGNED),
            column(SHORT, 0),
            column(LONG, column_flag::UNSIGNED),
            column(LONGLONG, column_flag::UNSIGNED),
            column(FLOAT, 0),
            column(DOUBLE, 0),
            column(VAR_STRING, 0),
            column(BLOB, column_flag::BINARY),
            column(DATETIME, 0),
            column(TIME, 0),
        ];
        let mut row = vec![0x00];
        // 11 columns + 2 bits: 2 bytes; column 8 (the blob) is NULL.
        let mut bitmap = [0u8; 2];
        bitmap[(8 + 2) / 8] |= 1 << ((8 + 2) % 8);
        row.extend_from_slice(&bitmap);
        row.push(0xff); // -1
        row.push(0xff); // 255
        row.extend_from_slice(&(-2i16).to_le_bytes());
        row.extend_from_slice(&u32::MAX.to_le_bytes());
        row.extend_from_slice(&u64::MAX.to_le_bytes());
        row.extend_from_slice(&1.5f32.to_le_bytes());
        row.extend_from_slice(&(-0.25f64).to_le_bytes());
        put_lenenc_bytes(&mut row, "héllo".as_bytes());
        row.extend_from_slice(&[7, 0xe8, 0x07, 2, 29, 13, 14, 15]);
        row.extend_from_slice(&[12, 1, 1, 0, 0, 0, 2, 3, 4, 5, 0, 0, 0]);
        assert_eq!(
            decode_row(&row, &columns).unwrap(),
            vec![
                Value::Int(-1),
                Value::Int(255),
                Value::Int(-2),
                Value::Int(u32::MAX.into()),
                Value::UInt(u64::MAX),
                Value::Float(1.5),
                Value::Double(-0.25),
                Value::Bytes("héllo".as_bytes().to_vec()),
                Value::Null,
                Value::Date(2024, 2, 29, 13, 14, 15, 0),
                Value::Time(true, 1, 2, 3, 4, 5),
            ]
        );
        // Every truncation is an error, never a panic.
        for cut in 0..row.len() {
            assert!(decode_row(&row[..cut], &columns).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn hostile_rows_are_errors() {
        let columns = [column(VAR_STRING, 0)];
        // A string claiming more bytes than the packet has.
        assert!(decode_row(&[0, 0, 0xfd, 0xff, 0xff, 0xff, b'a'], &columns).is_err());
        // A date claiming 200 bytes.
        assert!(decode_row(&[0, 0, 200, 1, 2], &[column(DATE, 0)]).is_err());
        // A type the protocol does not define.
        assert!(decode_row(&[0, 0, 1], &[column(0x42, 0)]).is_err());
        // Not a binary row.
        assert!(decode_row(&[1, 0], &columns).is_err());
    }

    #[test]
    fn values_print_as_mysql_common_does() {
        assert_eq!(
            format!("{:?}", Value::Bytes(b"12.50".to_vec())),
            r#"Bytes("12.50")"#
        );
        assert_eq!(
            format!("{:?}", Value::Bytes(b"0123456789".to_vec())),
            r#"Bytes("01234567..")"#
        );
        assert_eq!(
            format!("{:?}", Value::Date(2024, 2, 29, 0, 0, 0, 0)),
            r#"Date("'2024-02-29'")"#
        );
        assert_eq!(
            format!("{:?}", Value::Date(2024, 2, 29, 1, 2, 3, 4)),
            r#"Date("'2024-02-29 01:02:03.000004'")"#
        );
        assert_eq!(
            format!("{:?}", Value::Time(true, 1, 2, 3, 4, 0)),
            r#"Time("'-026:03:04'")"#
        );
        assert_eq!(format!("{:?}", Value::Int(2024)), "Int(2024)");
    }

    #[test]
    fn parameters_carry_their_types() {
        let mut out = Vec::new();
        put_params(
            &mut out,
            &[
                Param::Int(-1),
                Param::Null,
                Param::UInt(7),
                Param::Bytes(b"ab"),
            ],
        );
        let mut expected = vec![0b0000_0010, 1];
        expected.extend_from_slice(&[LONGLONG, 0, NULL, 0, LONGLONG, 0x80, VAR_STRING, 0]);
        expected.extend_from_slice(&(-1i64).to_le_bytes());
        expected.extend_from_slice(&7u64.to_le_bytes());
        expected.extend_from_slice(&[2, b'a', b'b']);
        assert_eq!(out, expected);
    }
}
