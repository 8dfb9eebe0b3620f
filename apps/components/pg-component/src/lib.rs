//! PostgreSQL from a Spin SDK 5 component (wasm32-wasip2) through
//! `spin:postgres/postgres@4.0.0` (`spin_sdk::pg4`), on the database the
//! `pg_address` variable names.
//!
//! - `GET /v4/types`: (re)creates a table with a column of every type 4.x
//!   maps, inserts one row of parameters of every case (and one of NULLs),
//!   selects it back and prints each column as `name: data-type = value`,
//!   one per line, rows separated by `--` (`jsonb` as its text).
//! - `POST /v4/query`, `POST /v4/execute`: runs the body as a statement
//!   without parameters and prints the rows or the count.
//! - `POST /v4/builder`: connects through 4.1's `connection-builder`, with
//!   the body (if any) as `set-ca-root`'s PEM, and prints whether the
//!   session is encrypted (`ssl true`).
//!
//! Any error answers 500 with the error in Rust's `Debug` form (the WIT case
//! and its fields).

use spin_sdk::http::{Request, Response};
use spin_sdk::pg4::{Connection, DbValue, Interval, ParameterValue as P, RangeBoundKind, RowSet};
use spin_sdk::{http_component, variables};

#[http_component]
fn handle(req: Request) -> Response {
    let address = match variables::get("pg_address") {
        Ok(a) => a,
        Err(e) => return Response::new(500, format!("pg_address: {e:?}\n")),
    };
    let sql = String::from_utf8_lossy(req.body()).into_owned();
    let answer = match req.path() {
        "/v4/types" => types(&address),
        "/v4/query" => Connection::open(&address)
            .and_then(|c| c.query(&sql, &[]))
            .map(|rows| show(&rows))
            .map_err(|e| format!("{e:?}")),
        "/v4/builder" => builder(&address, &sql),
        "/v4/execute" => Connection::open(&address)
            .and_then(|c| c.execute(&sql, &[]))
            .map(|n| format!("{n}\n"))
            .map_err(|e| format!("{e:?}")),
        _ => return Response::new(404, "no such route\n"),
    };
    match answer {
        Ok(text) => Response::new(200, text),
        Err(e) => Response::new(500, format!("{e}\n")),
    }
}

/// Bindings for `spin:postgres/postgres@4.1.0` (wit/).
mod pg41 {
    wit_bindgen::generate!({
        world: "builder",
        path: "wit",
        generate_all,
    });
}

fn builder(address: &str, pem: &str) -> Result<String, String> {
    use pg41::spin::postgres::postgres::{ConnectionBuilder, DbValue};
    let builder = ConnectionBuilder::new(address);
    if !pem.is_empty() {
        builder.set_ca_root(pem).map_err(|e| format!("{e:?}"))?;
    }
    let db = builder.build().map_err(|e| format!("{e:?}"))?;
    let rows = db
        .query(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .map_err(|e| format!("{e:?}"))?;
    match rows.rows.first().and_then(|row| row.first()) {
        Some(DbValue::Boolean(ssl)) => Ok(format!("ssl {ssl}\n")),
        other => Err(format!("unexpected {other:?}")),
    }
}

fn types(address: &str) -> Result<String, String> {
    let db = Connection::open(address).map_err(|e| format!("{e:?}"))?;
    let run = |sql: &str, params: &[P]| db.execute(sql, params).map_err(|e| format!("{e:?}"));
    run("DROP TABLE IF EXISTS v4_types", &[])?;
    run(
        "CREATE TABLE v4_types (b bool, i16 int2, i32 int4, i64 int8, f32 float4, f64 float8, \
         s text, bin bytea, d date, t time, dt timestamp, ts timestamptz, u uuid, j jsonb, \
         n numeric, r4 int4range, r8 int8range, rn numrange, a4 int4[], a8 int8[], an numeric[], \
         at text[], iv interval)",
        &[],
    )?;
    let placeholders: Vec<String> = (1..=23).map(|i| format!("${i}")).collect();
    let insert = format!("INSERT INTO v4_types VALUES ({})", placeholders.join(", "));
    let inserted = run(
        &insert,
        &[
            P::Boolean(true),
            P::Int16(i16::MIN),
            P::Int32(i32::MIN),
            P::Int64(i64::MIN),
            P::Floating32(-0.25),
            P::Floating64(3.5),
            P::Str("four".into()),
            P::Binary(vec![4, 4]),
            P::Date((1, 1, 1)),
            P::Time((0, 0, 0, 1000)),
            P::Datetime((2038, 1, 19, 3, 14, 8, 0)),
            P::Timestamp(0),
            P::Uuid("67E55044-10B1-426F-9247-BB680E5FE0C8".into()),
            P::Jsonb(br#"{"b": [1, 2], "a": null}"#.to_vec()),
            P::Decimal("-12345678901234567890.0500".into()),
            P::RangeInt32((
                Some((1, RangeBoundKind::Inclusive)),
                Some((10, RangeBoundKind::Inclusive)),
            )),
            P::RangeInt64((None, Some((5, RangeBoundKind::Exclusive)))),
            P::RangeDecimal((
                Some(("1.5".into(), RangeBoundKind::Exclusive)),
                Some(("2.25".into(), RangeBoundKind::Inclusive)),
            )),
            P::ArrayInt32(vec![Some(1), None, Some(3)]),
            P::ArrayInt64(vec![]),
            P::ArrayDecimal(vec![Some("0.1".into()), None]),
            P::ArrayStr(vec![Some("a \"quoted\", {braced}".into()), None]),
            P::Interval(Interval {
                micros: 1_500_000,
                days: 2,
                months: 14,
            }),
        ],
    )?;
    run(&insert, &[(); 23].map(|_| P::DbNull))?;
    let rows = db
        .query("SELECT * FROM v4_types ORDER BY b", &[])
        .map_err(|e| format!("{e:?}"))?;
    Ok(format!("inserted {inserted}\n{}", show(&rows)))
}

fn show(rows: &RowSet) -> String {
    let mut out = String::new();
    for (i, row) in rows.rows.iter().enumerate() {
        if i > 0 {
            out.push_str("--\n");
        }
        for (column, value) in rows.columns.iter().zip(row) {
            let value = match value {
                DbValue::Jsonb(text) => format!("Jsonb({})", String::from_utf8_lossy(text)),
                other => format!("{other:?}"),
            };
            out.push_str(&format!(
                "{}: {:?} = {value}\n",
                column.name, column.data_type
            ));
        }
    }
    if out.is_empty() {
        let names: Vec<_> = rows.columns.iter().map(|c| c.name.as_str()).collect();
        out = format!("no rows; columns {}\n", names.join(", "));
    }
    out
}
