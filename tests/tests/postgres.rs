//! Guests' PostgreSQL (`fermyon:spin/postgres@2.0.0`, `spin:postgres/postgres@3.0.0`
//! and `@4.x`) against a real server: each test runs its own PostgreSQL
//! (`initdb` and `pg_ctl` from the `postgresql` package, in a temp dir, on a
//! free port, SCRAM-SHA-256 passwords), stopped when the test ends. The
//! guests are apps/spin-pg (a core module, spin-sdk 3) and
//! apps/components/pg-component (a component, spin-sdk 5).

use std::path::{Path, PathBuf};
use std::process::Command;

use flint_e2e::services::{TestCa, free_port};
use flint_e2e::{Flint, TempDir, apps_dir, wasm_path};

const PASSWORD: &str = "s3cret pass";

/// A PostgreSQL server of its own, with user `flint` (password [`PASSWORD`]),
/// listening on 127.0.0.1 only.
struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
}

impl Postgres {
    fn start() -> Self {
        Self::start_with(None)
    }

    /// With a CA, the server also offers TLS (`ssl=on`) with the CA's
    /// `localhost` certificate.
    fn start_with(ca: Option<&TestCa>) -> Self {
        let bin = pg_bin();
        let dir = TempDir::new("postgres");
        let pw = dir.write("pw", PASSWORD);
        let data = dir.path().join("data");
        let port = free_port();
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.path().display()
        );
        if let Some(ca) = ca {
            // The server refuses a key others can read.
            let cert = dir.path().join("server.pem");
            let key = dir.path().join("server.key");
            std::fs::copy(ca.file("server.pem"), &cert).unwrap();
            std::fs::copy(ca.file("server.key"), &key).unwrap();
            run("chmod", &["600".as_ref(), key.as_os_str()]);
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert.display(),
                key.display()
            ));
        }
        give_to_server_user(dir.path());
        server_command(
            &bin.join("initdb"),
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "flint".as_ref(),
                format!("--pwfile={}", pw.display()).as_ref(),
                "--auth=scram-sha-256".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        let log = dir.path().join("log");
        server_command(
            &bin.join("pg_ctl"),
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        );
        Self { dir, bin, port }
    }

    /// `postgres://flint:<password>@<host>:<port>/postgres<query>`.
    fn address(&self, host: &str, password: &str, query: &str) -> String {
        let password = password.replace(' ', "%20");
        format!(
            "postgres://flint:{password}@{host}:{}/postgres{query}",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = server_command_status(
            &self.bin.join("pg_ctl"),
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "stop".as_ref(),
            ],
        );
    }
}

/// The newest installed PostgreSQL's programs (Debian keeps them out of PATH).
fn pg_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("/usr/lib/postgresql: install the postgresql package")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let version = path.file_name()?.to_str()?.parse().ok()?;
            Some((version, path.join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no /usr/lib/postgresql/*/bin/initdb: install the postgresql package")
        .1
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// initdb and the server refuse to run as root: as root, they run as the
/// `postgres` user the package creates, on a directory it owns.
fn give_to_server_user(dir: &Path) {
    if is_root() {
        run(
            "chown",
            &["-R".as_ref(), "postgres".as_ref(), dir.as_os_str()],
        );
    }
}

fn server_command_status(program: &Path, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    command
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

fn server_command(program: &Path, args: &[&std::ffi::OsStr]) {
    let out = server_command_status(program, args);
    assert!(
        out.status.success(),
        "{} failed:\n{}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(program: &str, args: &[&std::ffi::OsStr]) {
    let status = Command::new(program).args(args).status().expect(program);
    assert!(status.success(), "{program} failed");
}

fn component_wasm() -> PathBuf {
    apps_dir().join("components/target/wasm32-wasip2/release/pg_component.wasm")
}

/// A one-component app (component `c`) running `source`, allowed to reach
/// `allowed`, with `address` as its `pg_address` variable.
fn app(dir: &TempDir, source: &Path, allowed: &str, address: &str) -> PathBuf {
    dir.one_component_manifest(
        "spin.toml",
        source,
        "",
        &format!(
            "allowed_outbound_hosts = [\"{allowed}\"]\n[component.c.variables]\npg_address = \"{address}\""
        ),
    )
}

fn start(source: &Path, pg: &Postgres, address: &str) -> (TempDir, Flint) {
    let dir = TempDir::new("pg-app");
    let manifest = app(
        &dir,
        source,
        &format!("postgres://127.0.0.1:{}", pg.port),
        address,
    );
    let flint = Flint::start(manifest);
    (dir, flint)
}

/// `body`'s lines, for comparing one column at a time.
fn lines(body: &str) -> Vec<&str> {
    body.lines().collect()
}

#[test]
fn a_core_module_round_trips_every_2_0_and_3_0_type() {
    let pg = Postgres::start();
    let (_dir, flint) = start(
        &wasm_path("spin_pg"),
        &pg,
        &pg.address("127.0.0.1", PASSWORD, ""),
    );

    let v2 = flint.get("/v2/types");
    v2.assert_status(200);
    let text = v2.text();
    assert_eq!(
        lines(&text)[..11],
        [
            "inserted 1",
            "b: DbDataType::Boolean = DbValue::Boolean(true)",
            // Spin maps `"char"` to no case.
            "c: DbDataType::Other = DbValue::Unsupported",
            "i16: DbDataType::Int16 = DbValue::Int16(-16)",
            "i32: DbDataType::Int32 = DbValue::Int32(-32)",
            "i64: DbDataType::Int64 = DbValue::Int64(-64)",
            "f32: DbDataType::Floating32 = DbValue::Floating32(1.5)",
            "f64: DbDataType::Floating64 = DbValue::Floating64(-2.25)",
            "s: DbDataType::Str = DbValue::Str(\"text ü\")",
            "v: DbDataType::Str = DbValue::Str(\"varchar\")",
            "bin: DbDataType::Binary = DbValue::Binary([0, 1, 255])",
        ],
        "{text}"
    );
    assert_eq!(lines(&text)[11], "--");
    assert!(
        lines(&text)[12..]
            .iter()
            .all(|l| l.ends_with("= DbValue::DbNull")),
        "{text}"
    );

    let v3 = flint.get("/v3/types");
    v3.assert_status(200);
    let text = v3.text();
    assert_eq!(
        lines(&text)[..13],
        [
            "inserted 1",
            "b: DbDataType::Boolean = DbValue::Boolean(false)",
            "i16: DbDataType::Int16 = DbValue::Int16(16)",
            "i32: DbDataType::Int32 = DbValue::Int32(32)",
            "i64: DbDataType::Int64 = DbValue::Int64(9223372036854775807)",
            "f32: DbDataType::Floating32 = DbValue::Floating32(0.5)",
            "f64: DbDataType::Floating64 = DbValue::Floating64(1e100)",
            "s: DbDataType::Str = DbValue::Str(\"three\")",
            "bin: DbDataType::Binary = DbValue::Binary([98, 121, 116, 101, 115])",
            "d: DbDataType::Date = DbValue::Date((2024, 2, 29))",
            "t: DbDataType::Time = DbValue::Time((13, 14, 15, 123456000))",
            "dt: DbDataType::Datetime = DbValue::Datetime((1999, 12, 31, 23, 59, 58, 999999000))",
            // 1,700,000,000 seconds after the epoch, read back from timestamptz in UTC.
            "ts: DbDataType::Datetime = DbValue::Datetime((2023, 11, 14, 22, 13, 20, 0))",
        ],
        "{text}"
    );
}

#[test]
fn a_component_round_trips_every_4_x_type() {
    let pg = Postgres::start();
    let (_dir, flint) = start(
        &component_wasm(),
        &pg,
        &pg.address("127.0.0.1", PASSWORD, ""),
    );
    let resp = flint.get("/v4/types");
    resp.assert_status(200);
    let text = resp.text();
    assert_eq!(
        lines(&text)[..24],
        [
            "inserted 1",
            "b: DbDataType::Boolean = DbValue::Boolean(true)",
            "i16: DbDataType::Int16 = DbValue::Int16(-32768)",
            "i32: DbDataType::Int32 = DbValue::Int32(-2147483648)",
            "i64: DbDataType::Int64 = DbValue::Int64(-9223372036854775808)",
            "f32: DbDataType::Floating32 = DbValue::Floating32(-0.25)",
            "f64: DbDataType::Floating64 = DbValue::Floating64(3.5)",
            "s: DbDataType::Str = DbValue::Str(\"four\")",
            "bin: DbDataType::Binary = DbValue::Binary([4, 4])",
            "d: DbDataType::Date = DbValue::Date((1, 1, 1))",
            "t: DbDataType::Time = DbValue::Time((0, 0, 0, 1000))",
            "dt: DbDataType::Datetime = DbValue::Datetime((2038, 1, 19, 3, 14, 8, 0))",
            "ts: DbDataType::Datetime = DbValue::Datetime((1970, 1, 1, 0, 0, 0, 0))",
            "u: DbDataType::Uuid = DbValue::Uuid(\"67e55044-10b1-426f-9247-bb680e5fe0c8\")",
            // jsonb's own key order, re-serialised compactly as Spin does.
            "j: DbDataType::Jsonb = Jsonb({\"a\":null,\"b\":[1,2]})",
            "n: DbDataType::Decimal = DbValue::Decimal(\"-12345678901234567890.0500\")",
            // The server's canonical form of [1,10].
            "r4: DbDataType::RangeInt32 = DbValue::RangeInt32((Some((1, RangeBoundKind::Inclusive)), Some((11, RangeBoundKind::Exclusive))))",
            "r8: DbDataType::RangeInt64 = DbValue::RangeInt64((None, Some((5, RangeBoundKind::Exclusive))))",
            "rn: DbDataType::RangeDecimal = DbValue::RangeDecimal((Some((\"1.5\", RangeBoundKind::Exclusive)), Some((\"2.25\", RangeBoundKind::Inclusive))))",
            "a4: DbDataType::ArrayInt32 = DbValue::ArrayInt32([Some(1), None, Some(3)])",
            "a8: DbDataType::ArrayInt64 = DbValue::ArrayInt64([])",
            "an: DbDataType::ArrayDecimal = DbValue::ArrayDecimal([Some(\"0.1\"), None])",
            "at: DbDataType::ArrayStr = DbValue::ArrayStr([Some(\"a \\\"quoted\\\", {braced}\"), None])",
            "iv: DbDataType::Interval = DbValue::Interval(Interval { micros: 1500000, days: 2, months: 14 })",
        ],
        "{text}"
    );
    assert!(
        lines(&text)[25..]
            .iter()
            .all(|l| l.ends_with("= DbValue::DbNull")),
        "{text}"
    );

    // Types no case names: 4.x says which, and hands over the bytes.
    let resp = flint.request(
        "POST",
        "/v4/query",
        &[],
        "SELECT 'x'::name AS nm, point(1, 2) AS p",
    );
    resp.assert_status(200);
    assert_eq!(
        resp.text(),
        "nm: DbDataType::Other(\"name\") = DbValue::Unsupported([120])\n\
         p: DbDataType::Other(\"point\") = DbValue::Unsupported([63, 240, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0])\n"
    );
}

#[test]
fn database_errors_are_text_before_4_and_structured_in_4() {
    let pg = Postgres::start();
    let address = pg.address("127.0.0.1", PASSWORD, "");
    let (_dir, core) = start(&wasm_path("spin_pg"), &pg, &address);
    let resp = core.request("POST", "/v2/query", &[], "SELECT * FROM missing");
    resp.assert_status(500);
    assert_eq!(
        resp.text(),
        "Error::QueryFailed(\"db error: ERROR: relation \\\"missing\\\" does not exist\")\n"
    );

    let (_dir, component) = start(&component_wasm(), &pg, &address);
    let resp = component.request("POST", "/v4/execute", &[], "SELECT * FROM missing");
    resp.assert_status(500);
    let text = resp.text();
    assert!(
        text.starts_with(
            "Error::QueryFailed(QueryError::DbError(DbError { as-text: \"db error: ERROR: relation \\\"missing\\\" does not exist\", severity: \"ERROR\", code: \"42P01\", message: \"relation \\\"missing\\\" does not exist\", detail: None, extras: ["
        ),
        "{text}"
    );
}

#[test]
fn a_host_not_in_allowed_outbound_hosts_is_denied_with_spins_text() {
    let pg = Postgres::start();
    let dir = TempDir::new("pg-denied");
    // Allowed: another port of the same host.
    let manifest = app(
        &dir,
        &wasm_path("spin_pg"),
        &format!("postgres://127.0.0.1:{}", free_port()),
        &pg.address("127.0.0.1", PASSWORD, ""),
    );
    let flint = Flint::start(manifest);
    let resp = flint.request("POST", "/v2/query", &[], "SELECT 1");
    resp.assert_status(500);
    assert_eq!(
        resp.text(),
        format!(
            "Error::ConnectionFailed(\"address postgres://127.0.0.1:{} is not permitted\")\n",
            pg.port
        )
    );
    flint.wait_for_log_line(&[
        "outbound PostgreSQL denied",
        "component=c",
        &format!("127.0.0.1:{}", pg.port),
    ]);
}

#[test]
fn a_bad_password_names_the_problem() {
    let pg = Postgres::start();
    let (_dir, flint) = start(
        &wasm_path("spin_pg"),
        &pg,
        &pg.address("127.0.0.1", "wrong", ""),
    );
    let resp = flint.request("POST", "/v3/query", &[], "SELECT 1");
    resp.assert_status(500);
    let text = resp.text();
    assert!(text.starts_with("Error::ConnectionFailed("), "{text}");
    assert!(
        text.contains("password authentication failed for user \\\"flint\\\""),
        "{text}"
    );
}

#[test]
fn results_over_the_instance_memory_are_refused() {
    let pg = Postgres::start();
    let (_dir, flint) = start(
        &component_wasm(),
        &pg,
        &pg.address("127.0.0.1", PASSWORD, ""),
    );
    // 100 rows of 1 MB: more than the board's 64 MiB instance memory.
    let resp = flint.request(
        "POST",
        "/v4/query",
        &[],
        "SELECT repeat('x', 1000000) FROM generate_series(1, 100)",
    );
    resp.assert_status(500);
    let text = resp.text();
    assert!(
        text.contains("QueryError::Text(\"query result exceeds limit of"),
        "{text}"
    );
}

/// `sslmode=require` with a server that offers TLS: the session is
/// encrypted, with the server's certificate checked against
/// `[[client_tls]]`'s roots; without them the handshake fails, and nothing
/// falls back to plain text.
#[test]
fn tls_is_used_when_the_server_offers_it() {
    let ca = TestCa::new();
    let pg = Postgres::start_with(Some(&ca));
    let dir = TempDir::new("pg-tls");
    let manifest = app(
        &dir,
        &wasm_path("spin_pg"),
        &format!("postgres://localhost:{}", pg.port),
        &pg.address("localhost", PASSWORD, "?sslmode=require"),
    );
    let client_tls = format!(
        "[[client_tls]]\ncomponent_ids = [\"c\"]\nhosts = [\"localhost\"]\nca_roots_file = \"{}\"\n",
        ca.file("ca.pem").display()
    );
    let flint = Flint::builder(&manifest)
        .runtime_config(&client_tls)
        .start();
    let resp = flint.request(
        "POST",
        "/v2/query",
        &[],
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    );
    resp.assert_status(200);
    assert_eq!(
        resp.text(),
        "ssl: DbDataType::Boolean = DbValue::Boolean(true)\n"
    );

    let untrusting = Flint::start(&manifest);
    let resp = untrusting.request("POST", "/v2/query", &[], "SELECT 1");
    resp.assert_status(500);
    let text = resp.text();
    assert!(
        text.starts_with("Error::ConnectionFailed(\"TLS with localhost"),
        "{text}"
    );
    assert!(text.contains("certificate"), "{text}");
}

/// 4.1's `connection-builder`: `set-ca-root` trusts the guest's CA for the
/// connection it builds; `build` checks `allowed_outbound_hosts` as `open`
/// does (Spin's synchronous `build` does not).
#[test]
fn a_connection_builder_trusts_its_own_root_and_is_checked() {
    let ca = TestCa::new();
    let pg = Postgres::start_with(Some(&ca));
    let dir = TempDir::new("pg-builder");
    let manifest = app(
        &dir,
        &component_wasm(),
        &format!("postgres://localhost:{}", pg.port),
        &pg.address("localhost", PASSWORD, "?sslmode=require"),
    );
    let flint = Flint::start(&manifest);
    let pem = std::fs::read_to_string(ca.file("ca.pem")).unwrap();
    let resp = flint.request("POST", "/v4/builder", &[], &pem);
    resp.assert_status(200);
    assert_eq!(resp.text(), "ssl true\n");

    let resp = flint.request("POST", "/v4/builder", &[], "");
    resp.assert_status(500);
    let text = resp.text();
    assert!(
        text.starts_with("Error::ConnectionFailed(\"TLS with localhost"),
        "{text}"
    );

    let resp = flint.request("POST", "/v4/builder", &[], "not a certificate");
    resp.assert_status(500);
    assert_eq!(
        resp.text(),
        "Error::Other(\"invalid root certificate: no PEM certificate found\")\n"
    );

    let denied = TempDir::new("pg-builder-denied");
    let manifest = app(
        &denied,
        &component_wasm(),
        "postgres://localhost:1",
        &pg.address("localhost", PASSWORD, ""),
    );
    let flint = Flint::start(&manifest);
    let resp = flint.request("POST", "/v4/builder", &[], &pem);
    resp.assert_status(500);
    assert_eq!(
        resp.text(),
        format!(
            "Error::ConnectionFailed(\"address postgres://localhost:{} is not permitted\")\n",
            pg.port
        )
    );
}

/// libpq's `key=value` form with two hosts: the first refuses, the second
/// serves (tokio-postgres tries each in turn); every host must be allowed.
#[test]
fn a_key_value_address_tries_each_host_in_turn() {
    let pg = Postgres::start();
    let closed = free_port();
    let dir = TempDir::new("pg-hosts");
    let address = format!(
        "host=127.0.0.1,127.0.0.1 port={closed},{} user=flint password='{PASSWORD}' dbname=postgres",
        pg.port
    );
    let manifest = dir.one_component_manifest(
        "spin.toml",
        &wasm_path("spin_pg"),
        "",
        &format!(
            "allowed_outbound_hosts = [\"postgres://127.0.0.1:{closed}\", \"postgres://127.0.0.1:{}\"]\n\
             [component.c.variables]\npg_address = \"{address}\"",
            pg.port
        ),
    );
    let flint = Flint::start(manifest);
    let resp = flint.request("POST", "/v2/query", &[], "SELECT 41 + 1 AS answer");
    resp.assert_status(200);
    assert_eq!(
        resp.text(),
        "answer: DbDataType::Int32 = DbValue::Int32(42)\n"
    );
}
