//! The SQLite databases guests open by label (`sqlite_databases`): Spin's
//! `default` in the state directory (`<state-dir>/sqlite_db.db`) and the
//! `[sqlite_database.<label>]` tables of the runtime config, on the bundled
//! SQLite.
//!
//! Durability: every file is in WAL mode with `synchronous = FULL`, so a
//! `COMMIT` (or a statement outside a transaction) returns only once it is on
//! disk and survives `kill -9` and power loss.
//!
//! Each guest `open` gets a connection of its own (so `BEGIN … COMMIT` spans
//! the statements of that connection only), taken from a small pool of idle
//! connections; one left inside a transaction is rolled back before it is
//! reused. A statement is bounded by the invocation's deadline (SQLite's
//! progress handler interrupts it), its result by the instance's memory
//! limit, and a database by `max_sqlite_bytes` (`max_page_count`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};

use flint_config::SqliteDatabaseConfig;

/// Spin's file name for the `default` database in the state directory.
pub const DEFAULT_FILE: &str = "sqlite_db.db";
/// The database every app has, whether or not the runtime config defines it.
pub const DEFAULT_LABEL: &str = "default";
/// Idle connections kept per database for the next `open`.
const IDLE_CONNECTIONS: usize = 4;
/// SQLite calls the progress handler every this many virtual-machine steps.
const PROGRESS_STEPS: i32 = 1000;
/// How long a statement waits for another connection's write lock when the
/// invocation has no deadline.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("SQLite database `{label}` ({location}): {source}")]
    Open {
        label: String,
        location: String,
        source: rusqlite::Error,
    },
    #[error("SQLite database `{label}`: cannot create {}: {source}", dir.display())]
    Dir {
        label: String,
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Why a statement failed, before an interface spells it.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum StatementError {
    /// `max_sqlite_bytes` reached (`SQLITE_FULL`).
    #[error("the database is full (max_sqlite_bytes)")]
    DatabaseFull,
    /// Interrupted at the invocation's deadline: the invocation ends.
    #[error("interrupted at the invocation's deadline")]
    Deadline,
    /// Anything else, as SQLite words it.
    #[error("{0}")]
    Io(String),
}

/// Where a database lives.
#[derive(Debug, Clone)]
enum Location {
    File(PathBuf),
    /// No `path`: in memory, shared by the app's connections for the life of
    /// the process (SQLite's `memdb` VFS under this name).
    Memory(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Memory(_) => f.write_str("in memory"),
        }
    }
}

/// One database and its idle connections.
pub struct Database {
    label: String,
    location: Location,
    allow_attach_file: bool,
    max_bytes: u64,
    idle: Mutex<Vec<Connection>>,
}

/// The app's databases, by label.
#[derive(Default)]
pub struct SqliteDatabases {
    databases: BTreeMap<String, Arc<Database>>,
}

impl SqliteDatabases {
    /// Opens the databases components use (`used`), so that a bad path or a
    /// file that is not a database stops startup: `default` at
    /// `state_dir/sqlite_db.db` unless `configured` defines it, the others
    /// as `configured` says.
    pub fn open(
        configured: &BTreeMap<String, SqliteDatabaseConfig>,
        used: &[&str],
        state_dir: Option<&Path>,
        max_bytes: u64,
    ) -> Result<Self, SqliteError> {
        let mut databases = BTreeMap::new();
        for &label in used {
            let (location, allow_attach_file) = match configured.get(label) {
                Some(config) => (
                    config
                        .path
                        .clone()
                        .map_or_else(|| Location::Memory(label.to_owned()), Location::File),
                    config.allow_attach_file,
                ),
                None => (
                    state_dir.map_or_else(
                        || Location::Memory(label.to_owned()),
                        |dir| Location::File(dir.join(DEFAULT_FILE)),
                    ),
                    false,
                ),
            };
            if let Location::File(path) = &location
                && let Some(dir) = path.parent()
            {
                std::fs::create_dir_all(dir).map_err(|source| SqliteError::Dir {
                    label: label.to_owned(),
                    dir: dir.to_owned(),
                    source,
                })?;
            }
            let database = Database {
                label: label.to_owned(),
                location,
                allow_attach_file,
                max_bytes,
                idle: Mutex::new(Vec::new()),
            };
            let first = database.connect().map_err(|source| SqliteError::Open {
                label: label.to_owned(),
                location: database.location.to_string(),
                source,
            })?;
            database.checkin(first);
            databases.insert(label.to_owned(), Arc::new(database));
        }
        Ok(Self { databases })
    }

    pub fn get(&self, label: &str) -> Option<&Arc<Database>> {
        self.databases.get(label)
    }
}

impl Database {
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A connection for one guest `open`: an idle one, or a new one.
    pub fn checkout(self: &Arc<Self>) -> Result<Lease, StatementError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self
                .connect()
                .map_err(|e| StatementError::Io(format!("opening `{}`: {e}", self.label)))?,
        };
        Ok(Lease {
            conn: Some(conn),
            database: self.clone(),
        })
    }

    /// Returns a connection to the pool, rolling back what its guest left
    /// open: nothing of one guest's transaction reaches the next.
    fn checkin(&self, conn: Connection) {
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(conn);
        }
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let mut conn = match &self.location {
            Location::File(path) => {
                let conn = Connection::open_with_flags(path, flags)?;
                // WAL: readers do not block the writer; FULL: each commit is
                // synced before it returns.
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn
            }
            Location::Memory(name) => {
                Connection::open_with_flags(format!("file:/flint-{name}?vfs=memdb"), flags)?
            }
        };
        conn.pragma_update(None, "synchronous", "FULL")?;
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
        let pages = self.max_bytes / page_size.max(512).unsigned_abs();
        conn.pragma_update(
            None,
            "max_page_count",
            i64::try_from(pages.max(1)).unwrap_or(i64::MAX),
        )?;
        if !self.allow_attach_file {
            conn.authorizer(Some(|ctx: rusqlite::hooks::AuthContext<'_>| {
                use rusqlite::hooks::{AuthAction, Authorization};
                match ctx.action {
                    // As in Spin: only temporary and in-memory databases.
                    AuthAction::Attach { filename } if !matches!(filename, "" | ":memory:") => {
                        Authorization::Deny
                    }
                    _ => Authorization::Allow,
                }
            }))?;
        }
        Ok(conn)
    }
}

/// A connection a guest holds; back to its pool when dropped.
pub struct Lease {
    conn: Option<Connection>,
    database: Arc<Database>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.database.checkin(conn);
        }
    }
}

/// Rows of a statement.
#[derive(Debug, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

impl Lease {
    fn conn(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a lease holds its connection until dropped")
    }

    fn conn_mut(&mut self) -> &mut Connection {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }

    /// Runs one statement with `params` and collects its rows, while they
    /// fit in `max_bytes`; interrupted once `deadline` passes.
    pub fn execute(
        &mut self,
        sql: &str,
        params: Vec<SqlValue>,
        deadline: Option<Instant>,
        max_bytes: usize,
    ) -> Result<Rows, StatementError> {
        let conn = self.conn_mut();
        let wait = deadline.map_or(BUSY_TIMEOUT, |d| {
            d.saturating_duration_since(Instant::now())
        });
        let result = conn
            .progress_handler(
                PROGRESS_STEPS,
                Some(move || deadline.is_some_and(|d| Instant::now() >= d)),
            )
            .and_then(|()| conn.busy_timeout(wait))
            .map_err(Failure::Sqlite)
            .and_then(|()| run(&*conn, sql, params, max_bytes));
        // Removing a handler cannot fail (SQLite's call returns nothing);
        // the next statement sets its own either way.
        let _ = conn.progress_handler(0, None::<fn() -> bool>);
        result.map_err(|e| match e {
            Failure::Sqlite(e) => statement_error(e, deadline),
            Failure::TooLarge => {
                StatementError::Io(format!("query result exceeds limit of {max_bytes} bytes"))
            }
            Failure::NotUtf8(column) => {
                StatementError::Io(format!("column `{column}` holds text that is not UTF-8"))
            }
        })
    }

    pub fn last_insert_rowid(&self) -> i64 {
        self.conn().last_insert_rowid()
    }

    pub fn changes(&self) -> u64 {
        self.conn().changes()
    }
}

/// Runs a whole script (`flint up --sqlite`), statement after statement.
pub fn execute_batch(database: &Arc<Database>, sql: &str) -> Result<(), String> {
    let lease = database.checkout().map_err(|e| e.to_string())?;
    lease.conn().execute_batch(sql).map_err(|e| e.to_string())
}

enum Failure {
    Sqlite(rusqlite::Error),
    TooLarge,
    NotUtf8(String),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sqlite(e)
    }
}

fn run(
    conn: &Connection,
    sql: &str,
    params: Vec<SqlValue>,
    max_bytes: usize,
) -> Result<Rows, Failure> {
    let mut statement = conn.prepare(sql)?;
    let columns: Vec<String> = statement.column_names().map(str::to_owned).collect();
    let mut bytes: usize = columns.iter().map(|c| c.len() + 8).sum();
    let mut out = Vec::new();
    let mut rows = statement.query(rusqlite::params_from_iter(params))?;
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            let value = match row.get_ref(i)? {
                ValueRef::Null => SqlValue::Null,
                ValueRef::Integer(n) => SqlValue::Integer(n),
                ValueRef::Real(x) => SqlValue::Real(x),
                ValueRef::Text(text) => SqlValue::Text(
                    std::str::from_utf8(text)
                        .map_err(|_| Failure::NotUtf8(column.clone()))?
                        .to_owned(),
                ),
                ValueRef::Blob(blob) => SqlValue::Blob(blob.to_vec()),
            };
            // What the value costs in the guest's memory: its payload and
            // the variant around it.
            bytes = bytes.saturating_add(
                16 + match &value {
                    SqlValue::Text(t) => t.len(),
                    SqlValue::Blob(b) => b.len(),
                    _ => 0,
                },
            );
            if bytes > max_bytes {
                return Err(Failure::TooLarge);
            }
            values.push(value);
        }
        out.push(values);
    }
    Ok(Rows { columns, rows: out })
}

fn statement_error(e: rusqlite::Error, deadline: Option<Instant>) -> StatementError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => StatementError::DatabaseFull,
        Some(rusqlite::ErrorCode::OperationInterrupted)
            if deadline.is_some_and(|d| Instant::now() >= d) =>
        {
            StatementError::Deadline
        }
        _ => StatementError::Io(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(label: &str, max_bytes: u64) -> Arc<Database> {
        let configured = BTreeMap::from([(
            label.to_owned(),
            SqliteDatabaseConfig {
                path: None,
                allow_attach_file: false,
            },
        )]);
        SqliteDatabases::open(&configured, &[label], None, max_bytes)
            .expect("open")
            .get(label)
            .expect("listed")
            .clone()
    }

    #[test]
    fn values_of_every_type_round_trip() {
        let db = memory("types", 1 << 20);
        let mut conn = db.checkout().expect("checkout");
        conn.execute(
            "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n)",
            vec![],
            None,
            1 << 20,
        )
        .expect("create");
        let row = vec![
            SqlValue::Integer(-7),
            SqlValue::Real(2.5),
            SqlValue::Text("héllo".into()),
            SqlValue::Blob(vec![0, 255]),
            SqlValue::Null,
        ];
        conn.execute(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            row.clone(),
            None,
            1 << 20,
        )
        .expect("insert");
        assert_eq!((conn.changes(), conn.last_insert_rowid()), (1, 1));
        let rows = conn
            .execute("SELECT * FROM t", vec![], None, 1 << 20)
            .expect("select");
        assert_eq!(rows.columns, ["i", "r", "s", "b", "n"]);
        assert_eq!(rows.rows, [row]);
    }

    #[test]
    fn a_transaction_left_open_is_rolled_back_before_reuse() {
        let db = memory("tx", 1 << 20);
        let mut conn = db.checkout().expect("checkout");
        conn.execute("CREATE TABLE t (x)", vec![], None, 1 << 20)
            .expect("create");
        conn.execute("BEGIN", vec![], None, 1 << 20).expect("begin");
        conn.execute("INSERT INTO t VALUES (1)", vec![], None, 1 << 20)
            .expect("insert");
        drop(conn);
        let mut next = db.checkout().expect("checkout");
        let rows = next
            .execute("SELECT count(*) FROM t", vec![], None, 1 << 20)
            .expect("count");
        assert_eq!(rows.rows, [[SqlValue::Integer(0)]]);
    }

    #[test]
    fn limits_bound_results_time_and_size() {
        let db = memory("limits", 65536);
        let mut conn = db.checkout().expect("checkout");
        let rows = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 10) \
                    SELECT zeroblob(1000) FROM n";
        assert_eq!(
            conn.execute(rows, vec![], None, 5000),
            Err(StatementError::Io(
                "query result exceeds limit of 5000 bytes".into()
            ))
        );
        let forever = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) \
                       SELECT count(*) FROM n";
        let soon = Instant::now() + Duration::from_millis(50);
        assert_eq!(
            conn.execute(forever, vec![], Some(soon), 1 << 20),
            Err(StatementError::Deadline)
        );
        conn.execute("CREATE TABLE t (b BLOB)", vec![], None, 1 << 20)
            .expect("create");
        let fill = conn.execute(
            "INSERT INTO t VALUES (zeroblob(100000))",
            vec![],
            None,
            1 << 20,
        );
        assert_eq!(fill, Err(StatementError::DatabaseFull));
    }
}
