//! `fermyon:spin/mysql@2.0.0` against a real MariaDB (`mariadb-server`,
//! started on a free port in a temp datadir): every value type through a
//! Spin SDK 3 core module and a Spin SDK 5 component (`apps/spin-mysql`,
//! `apps/components/mysql-component`, the same routes), and Spin's errors:
//! a host outside `allowed_outbound_hosts`, a bad password, a failed
//! statement, a column type Spin does not convert, a result set over the
//! instance's memory limit.

use std::path::PathBuf;

use flint_e2e::mariadb::{Mariadb, PASSWORD};
use flint_e2e::services::TestCa;
use flint_e2e::{Flint, apps_dir, workspace_root};

/// The component, built by `scripts/build-components` (which `scripts/test`
/// runs before the tests).
fn component_manifest() -> PathBuf {
    let wasm =
        workspace_root().join("apps/components/target/wasm32-wasip2/release/mysql_component.wasm");
    assert!(
        wasm.is_file(),
        "{} is not built: run scripts/build-components",
        wasm.display()
    );
    workspace_root().join("apps/components/mysql-component/spin.toml")
}

fn core_manifest() -> PathBuf {
    apps_dir().join("spin-mysql/spin.toml")
}

/// The app on `db`: its address from the Spin variable, its host allowed.
fn start(manifest: PathBuf, db: &Mariadb, runtime_config: &str) -> Flint {
    let mut builder = Flint::builder(manifest)
        .variable("mysql_address", &db.address())
        .variable("mysql_host", &format!("mysql://127.0.0.1:{}", db.port()));
    if !runtime_config.is_empty() {
        builder = builder.runtime_config(runtime_config);
    }
    builder.start()
}

const EVERY_TYPE: &str = "\
b: int8
i8: int8
i16: int16
i24: int32
i32: int32
i64: int64
u8: uint8
u16: uint16
u32: uint32
u64: uint64
f32: floating32
f64: floating64
vc: str
txt: str
ch: str
vb: binary
bl: binary
bn: binary
int8(1), int8(-128), int16(-32768), int32(-8388608), int32(-2147483648), \
int64(-9223372036854775808), uint8(255), uint16(65535), uint32(4294967295), \
uint64(18446744073709551615), floating32(1.5), floating64(-2.25), \
str(\"héllo, wörld\"), str(\"a longer text\"), str(\"abcd\"), binary([0, 1, 254, 255]), \
binary([98, 108, 111, 98, 0, 98, 121, 116, 101, 115]), binary([9, 8, 7, 6])
db-null, db-null, db-null, db-null, db-null, db-null, db-null, db-null, db-null, \
db-null, db-null, db-null, db-null, db-null, db-null, db-null, db-null, db-null
";

fn round_trip(flint: &Flint, db: &Mariadb) {
    let post = |path| flint.request("POST", path, &[], "");
    post("/create").assert_status(200);
    post("/insert").assert_status(200);
    let select = flint.get("/select");
    assert_eq!((select.status, select.text().as_str()), (200, EVERY_TYPE));
    // What the guest stored is what the server holds.
    assert_eq!(
        db.sql("SELECT vc, HEX(vb), u64, i24 FROM spin.every_type WHERE b IS NOT NULL"),
        "héllo, wörld\t0001FEFF\t18446744073709551615\t-8388608\n"
    );
}

#[test]
fn every_value_type_round_trips_in_a_core_module_and_a_component() {
    let db = Mariadb::start();
    for manifest in [core_manifest(), component_manifest()] {
        let flint = start(manifest, &db, "");
        round_trip(&flint, &db);
    }
}

#[test]
fn errors_are_spins() {
    let db = Mariadb::start();
    let flint = start(core_manifest(), &db, "");
    let open = |address: &str| flint.get(&format!("/open?address={address}"));

    // A host outside allowed_outbound_hosts: Spin's text, logged without
    // the password.
    let denied = open("mysql://spin:hunter2@192.0.2.1:3306/spin");
    assert_eq!(denied.status, 500);
    assert_eq!(
        denied.text(),
        "connection-failed: address mysql://spin:hunter2@192.0.2.1:3306/spin is not permitted\n"
    );
    let line = flint.wait_for_log_line(&["outbound MySQL denied", "mysql://192.0.2.1:3306"]);
    assert!(!line.contains("hunter2"), "{line}");
    // The same host on another port is another host.
    let other_port = open(&format!("mysql://spin:x@127.0.0.1:{}/spin", db.port() + 1));
    assert!(
        other_port.text().contains("is not permitted"),
        "{}",
        other_port.text()
    );

    // A bad password: the server's words, as Spin (mysql_async) gives them.
    let bad = open(&db.address_with("wrong"));
    assert_eq!(bad.status, 500);
    let text = bad.text();
    assert!(
        text.starts_with(
            "connection-failed: Server error: `ERROR 28000 (1045): Access denied for user 'spin'@'127.0.0.1' (using password: YES)'"
        ),
        "{text}"
    );
    open(&db.address()).assert_status(200);
    assert_ne!(PASSWORD, "wrong");

    // A statement the server refuses, and a value Spin does not convert.
    let query = |sql: &str| flint.request("POST", "/query", &[], sql).text();
    assert_eq!(
        query("SELECT * FROM nope"),
        "query-failed: Server(ServerError { code: 1146, message: \"Table 'spin.nope' doesn't exist\", state: \"42S02\" })\n"
    );
    assert_eq!(
        query("SELECT CAST(12.5 AS DECIMAL(5,2)) AS price"),
        "value-conversion-failed: Cannot convert value Bytes(\"12.50\") in column price data type Other\n"
    );
    // NULL converts whatever the column's type.
    assert_eq!(
        query("SELECT CAST(NULL AS DATE) AS d"),
        "d: other\ndb-null\n"
    );
    // A statement without a result set is an empty one, as in Spin.
    flint
        .request("POST", "/execute", &[], "CREATE TABLE t (n INT)")
        .assert_status(200);
    assert_eq!(query("INSERT INTO t VALUES (1)"), "");
}

#[test]
fn result_sets_are_bounded_by_the_instance_memory() {
    let db = Mariadb::start();
    let limit = 4 * 1024 * 1024;
    let flint = start(
        core_manifest(),
        &db,
        &format!("[limits]\ninstance_memory_bytes = {limit}\n"),
    );
    let query = |sql: &str| flint.request("POST", "/query", &[], sql);
    let small = query("SELECT REPEAT('x', 1000) AS x");
    assert_eq!(small.status, 200, "{}", small.text());
    let big = query("SELECT REPEAT('x', 5000000) AS x");
    assert_eq!(
        (big.status, big.text()),
        (
            500,
            format!("other: query result exceeds limit of {limit} bytes\n")
        )
    );
    // The next connection works (the abandoned one was closed).
    query("SELECT 1").assert_status(200);
}

/// The server offers TLS with a certificate for `localhost` from a test CA,
/// and user `tls` may log in only over it. `ssl-mode` in the address asks
/// for TLS (Spin's rule); the certificate is checked against the
/// component's `[[client_tls]]` roots.
#[test]
fn tls_when_the_address_asks_for_it() {
    let ca = TestCa::new();
    let file = |name: &str| ca.file(name).display().to_string();
    let db = Mariadb::start_with(&[
        format!("--ssl-cert={}", file("server.pem")),
        format!("--ssl-key={}", file("server.key")),
        format!("--ssl-ca={}", file("ca.pem")),
    ]);
    db.sql("CREATE USER 'tls'@'%' IDENTIFIED BY 'tls-pass' REQUIRE SSL; GRANT ALL ON spin.* TO 'tls'@'%';");
    let client_tls = format!(
        "[[client_tls]]\ncomponent_ids = [\"spin-mysql\"]\nhosts = [\"localhost\"]\nca_roots_file = \"{}\"\n",
        file("ca.pem")
    );
    let flint = Flint::builder(core_manifest())
        .variable("mysql_address", &db.address())
        .variable("mysql_host", &format!("mysql://localhost:{}", db.port()))
        .runtime_config(&client_tls)
        .start();
    let address = |query: &str| {
        format!("mysql://tls:tls-pass@localhost:{}/spin{query}", db.port()).replace('?', "%3F")
    };
    let version = "SELECT VARIABLE_VALUE AS v FROM information_schema.SESSION_STATUS \
                   WHERE VARIABLE_NAME = 'SSL_VERSION'";
    let over_tls = flint.request(
        "POST",
        &format!("/query?address={}", address("?ssl-mode=REQUIRED")),
        &[],
        version,
    );
    assert_eq!(over_tls.status, 200, "{}", over_tls.text());
    assert!(
        over_tls.text().starts_with("v: str\nstr(\"TLSv1."),
        "{}",
        over_tls.text()
    );
    // Without ssl-mode the connection is plain, which this user may not use.
    let plain = flint.get(&format!("/open?address={}", address("")));
    assert!(
        plain.text().contains("Access denied for user 'tls'"),
        "{}",
        plain.text()
    );
    drop(flint);

    // Without the test CA the server's certificate is not trusted.
    let flint = start(core_manifest(), &db, "");
    let untrusted = flint.get(&format!(
        "/open?address={}",
        address("?ssl-mode=REQUIRED").replace("localhost", "127.0.0.1")
    ));
    assert!(
        untrusted
            .text()
            .starts_with("connection-failed: TLS with 127.0.0.1"),
        "{}",
        untrusted.text()
    );
}
