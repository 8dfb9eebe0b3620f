//! The routes of the SQLite example, over whichever SDK's API `crate::sql` is.
//! Every route takes `?db=<label>` (`default` when absent).
//!
//! - `GET /open`: `ok`, or the error opening the database (`AccessDenied`, ...).
//! - `POST /script`: the body's statements (separated by `;` at the end of a
//!   line), one after another on one connection, so `BEGIN … COMMIT` works;
//!   each row printed as `a|b|c`. A failing statement answers 500 with the
//!   error after what ran before it.
//! - `POST /types`: inserts one value of every SQLite type as parameters and
//!   reads them back, one `type:value` per column.
//! - `POST /insert?v=<text>`: inserts `v` into `log` (create it with
//!   `flint up --sqlite`), answers the new row id.
//! - `GET /get?id=<n>`: the `v` of row `n` of `log` (empty when absent).
//! - `GET /count`: the rows in `log`.

use crate::sql::{Connection, Error, Value};

pub fn serve(method: &str, path: &str, query: &str, body: &[u8]) -> (u16, String) {
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
    };
    let label = param("db").unwrap_or("default");
    let db = match Connection::open(label) {
        Ok(db) => db,
        Err(e) => return (500, format!("open {label}: {e:?}\n")),
    };
    let result = match (method, path) {
        ("GET", "/open") => Ok("ok\n".to_owned()),
        ("POST", "/script") => return script(&db, &String::from_utf8_lossy(body)),
        ("POST", "/types") => types(&db),
        ("POST", "/insert") => {
            let v = param("v").unwrap_or("").to_owned();
            db.execute("INSERT INTO log (v) VALUES (?)", &[Value::Text(v)])
                .and_then(|_| db.execute("SELECT last_insert_rowid()", &[]))
                .map(|r| format!("{}\n", show_rows(&r.rows)))
        }
        ("GET", "/get") => {
            let id = param("id").and_then(|id| id.parse().ok()).unwrap_or(0);
            db.execute("SELECT v FROM log WHERE id = ?", &[Value::Integer(id)])
                .map(|r| format!("{}\n", show_rows(&r.rows)))
        }
        ("GET", "/count") => db
            .execute("SELECT count(*) FROM log", &[])
            .map(|r| format!("{}\n", show_rows(&r.rows))),
        _ => return (404, "not found\n".to_owned()),
    };
    match result {
        Ok(text) => (200, text),
        Err(e) => (500, format!("{e:?}\n")),
    }
}

fn script(db: &Connection, text: &str) -> (u16, String) {
    let mut out = String::new();
    for statement in text.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
        match db.execute(statement.trim_end_matches(';'), &[]) {
            Ok(result) => {
                if !result.rows.is_empty() {
                    out.push_str(&show_rows(&result.rows));
                    out.push('\n');
                }
            }
            Err(e) => return (500, format!("{out}error: {e:?}\n")),
        }
    }
    (200, out)
}

fn types(db: &Connection) -> Result<String, Error> {
    db.execute(
        "CREATE TABLE IF NOT EXISTS types (i INTEGER, r REAL, t TEXT, b BLOB, n)",
        &[],
    )?;
    let values = [
        Value::Integer(i64::MIN),
        Value::Real(-1.5e300),
        Value::Text("héllo, 世界".to_owned()),
        Value::Blob(vec![0, 1, 254, 255]),
        Value::Null,
    ];
    db.execute("INSERT INTO types VALUES (?, ?, ?, ?, ?)", &values)?;
    let result = db.execute(
        "SELECT i, r, t, b, n FROM types WHERE rowid = last_insert_rowid()",
        &[],
    )?;
    let row = result
        .rows
        .first()
        .map(|r| r.values.as_slice())
        .unwrap_or(&[]);
    let typed: Vec<String> = row
        .iter()
        .map(|v| match v {
            Value::Integer(n) => format!("integer:{n}"),
            Value::Real(x) => format!("real:{x:e}"),
            Value::Text(t) => format!("text:{t}"),
            Value::Blob(b) => format!("blob:{}", hex(b)),
            Value::Null => "null".to_owned(),
        })
        .collect();
    Ok(format!("{}\n", typed.join(" ")))
}

fn show_rows(rows: &[crate::sql::RowResult]) -> String {
    rows.iter()
        .map(|row| {
            row.values
                .iter()
                .map(|v| match v {
                    Value::Integer(n) => n.to_string(),
                    Value::Real(x) => x.to_string(),
                    Value::Text(t) => t.clone(),
                    Value::Blob(b) => hex(b),
                    Value::Null => "NULL".to_owned(),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
