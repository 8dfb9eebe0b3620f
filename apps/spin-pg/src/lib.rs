//! PostgreSQL with the Spin SDK 3 (a core module): `fermyon:spin/postgres@2.0.0`
//! (`spin_sdk::pg`) and `spin:postgres/postgres@3.0.0` (`spin_sdk::pg3`), on
//! the database the `pg_address` variable names.
//!
//! - `GET /v2/types`, `GET /v3/types`: (re)creates a table with a column of
//!   every type the version has, inserts one row of parameters of every case
//!   (and one of NULLs), selects it back and prints each column as
//!   `name: data-type = value`, one per line, rows separated by `--`.
//! - `POST /v2/query`, `POST /v2/execute` (and `/v3/...`): runs the body as a
//!   statement without parameters and prints the rows or the count.
//!
//! Any error answers 500 with the error in Rust's `Debug` form (the WIT case
//! and its text).

use spin_sdk::http::{Request, Response};
use spin_sdk::{http_component, pg, pg3, variables};

#[http_component]
fn handle(req: Request) -> Response {
    let address = match variables::get("pg_address") {
        Ok(a) => a,
        Err(e) => return Response::new(500, format!("pg_address: {e:?}\n")),
    };
    let sql = String::from_utf8_lossy(req.body()).into_owned();
    let answer = match req.path() {
        "/v2/types" => v2_types(&address),
        "/v3/types" => v3_types(&address),
        "/v2/query" => pg::Connection::open(&address)
            .and_then(|c| c.query(&sql, &[]))
            .map(|rows| show_v2(&rows))
            .map_err(|e| format!("{e:?}")),
        "/v2/execute" => pg::Connection::open(&address)
            .and_then(|c| c.execute(&sql, &[]))
            .map(|n| format!("{n}\n"))
            .map_err(|e| format!("{e:?}")),
        "/v3/query" => pg3::Connection::open(&address)
            .and_then(|c| c.query(&sql, &[]))
            .map(|rows| show_v3(&rows))
            .map_err(|e| format!("{e:?}")),
        "/v3/execute" => pg3::Connection::open(&address)
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

fn v2_types(address: &str) -> Result<String, String> {
    use pg::ParameterValue as P;
    let db = pg::Connection::open(address).map_err(|e| format!("{e:?}"))?;
    let run = |sql: &str, params: &[P]| db.execute(sql, params).map_err(|e| format!("{e:?}"));
    run("DROP TABLE IF EXISTS v2_types", &[])?;
    run(
        "CREATE TABLE v2_types (b bool, c \"char\", i16 int2, i32 int4, i64 int8, f32 float4, \
         f64 float8, s text, v varchar(20), bin bytea)",
        &[],
    )?;
    let insert = "INSERT INTO v2_types VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    let inserted = run(
        insert,
        &[
            P::Boolean(true),
            P::Int8(65),
            P::Int16(-16),
            P::Int32(-32),
            P::Int64(-64),
            P::Floating32(1.5),
            P::Floating64(-2.25),
            P::Str("text ü".into()),
            P::Str("varchar".into()),
            P::Binary(vec![0, 1, 255]),
        ],
    )?;
    run(insert, &[(); 10].map(|_| P::DbNull))?;
    let rows = db
        .query("SELECT * FROM v2_types ORDER BY b", &[])
        .map_err(|e| format!("{e:?}"))?;
    Ok(format!("inserted {inserted}\n{}", show_v2(&rows)))
}

fn v3_types(address: &str) -> Result<String, String> {
    use pg3::ParameterValue as P;
    let db = pg3::Connection::open(address).map_err(|e| format!("{e:?}"))?;
    let run = |sql: &str, params: &[P]| db.execute(sql, params).map_err(|e| format!("{e:?}"));
    run("DROP TABLE IF EXISTS v3_types", &[])?;
    run(
        "CREATE TABLE v3_types (b bool, i16 int2, i32 int4, i64 int8, f32 float4, f64 float8, \
         s text, bin bytea, d date, t time, dt timestamp, ts timestamptz)",
        &[],
    )?;
    let insert = "INSERT INTO v3_types VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    let inserted = run(
        insert,
        &[
            P::Boolean(false),
            P::Int16(16),
            P::Int32(32),
            P::Int64(i64::MAX),
            P::Floating32(0.5),
            P::Floating64(1e100),
            P::Str("three".into()),
            P::Binary(b"bytes".to_vec()),
            P::Date((2024, 2, 29)),
            P::Time((13, 14, 15, 123_456_000)),
            P::Datetime((1999, 12, 31, 23, 59, 58, 999_999_000)),
            P::Timestamp(1_700_000_000),
        ],
    )?;
    run(insert, &[(); 12].map(|_| P::DbNull))?;
    let rows = db
        .query("SELECT * FROM v3_types ORDER BY b", &[])
        .map_err(|e| format!("{e:?}"))?;
    Ok(format!("inserted {inserted}\n{}", show_v3(&rows)))
}

fn show_v2(rows: &pg::RowSet) -> String {
    let columns: Vec<_> = rows
        .columns
        .iter()
        .map(|c| format!("{}: {:?}", c.name, c.data_type))
        .collect();
    show(
        &columns,
        rows.rows
            .iter()
            .map(|r| r.iter().map(|v| format!("{v:?}")).collect()),
    )
}

fn show_v3(rows: &pg3::RowSet) -> String {
    let columns: Vec<_> = rows
        .columns
        .iter()
        .map(|c| format!("{}: {:?}", c.name, c.data_type))
        .collect();
    show(
        &columns,
        rows.rows
            .iter()
            .map(|r| r.iter().map(|v| format!("{v:?}")).collect()),
    )
}

fn show(columns: &[String], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut out = String::new();
    for (i, row) in rows.enumerate() {
        if i > 0 {
            out.push_str("--\n");
        }
        for (column, value) in columns.iter().zip(row) {
            out.push_str(&format!("{column} = {value}\n"));
        }
    }
    if out.is_empty() {
        out = format!("no rows; columns {}\n", columns.join(", "));
    }
    out
}
