//! SQLite for guests, as Spin gives it: `apps/spin-sqlite` (Spin SDK 3, a
//! core module importing `fermyon:spin/sqlite@2.0.0`) and the same routes
//! as a component (Spin SDK 5, `spin:sqlite/sqlite@3.0.0`). Every value
//! type through parameters, `access-denied`, labels from the runtime
//! config, transactions, `--sqlite`, durability across `kill -9`, and the
//! deadline and size limits.

use std::path::{Path, PathBuf};

use flint_e2e::{Flint, FlintBuilder, Signal, TempDir, run_flint, wasm_path, workspace_root};

const CREATE_LOG: &str = "CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, v TEXT)";

fn core_module() -> PathBuf {
    wasm_path("spin_sqlite")
}

/// Built by `scripts/build-components` (which `scripts/test` runs first).
fn component() -> PathBuf {
    let path =
        workspace_root().join("apps/components/target/wasm32-wasip2/release/sqlite_component.wasm");
    assert!(
        path.is_file(),
        "{} is not built: run scripts/build-components",
        path.display()
    );
    path
}

/// One component `c` on `/...` running `source` with `sqlite_databases`.
fn app(dir: &TempDir, source: &Path, databases: &str) -> PathBuf {
    dir.one_component_manifest(
        "spin.toml",
        source,
        "",
        &format!("sqlite_databases = {databases}\n"),
    )
}

fn serve(manifest: &Path) -> FlintBuilder {
    Flint::builder(manifest).arg("--sqlite").arg(CREATE_LOG)
}

/// What both guest kinds answer alike.
fn conformance(source: &Path) {
    let dir = TempDir::new("sqlite-conformance");
    let flint = serve(&app(&dir, source, "[\"default\"]")).start();
    assert_eq!(flint.get("/open").assert_status(200).text(), "ok\n");
    // Not in sqlite_databases: denied whether or not the database exists.
    for label in ["readings", "default2"] {
        let denied = flint.get(&format!("/open?db={label}"));
        assert_eq!(denied.status, 500);
        assert_eq!(
            denied.text(),
            format!("open {label}: Error::AccessDenied\n")
        );
    }
    let typed = flint.request("POST", "/types", &[], "");
    assert_eq!(
        typed.assert_status(200).text(),
        "integer:-9223372036854775808 real:-1.5e300 text:héllo, 世界 blob:0001feff null\n"
    );
    for expected in 1..=3 {
        let id = flint.request("POST", &format!("/insert?v=reading{expected}"), &[], "");
        assert_eq!(id.assert_status(200).text(), format!("{expected}\n"));
    }
    assert_eq!(flint.get("/count").text(), "3\n");
    let rows = flint.request(
        "POST",
        "/script",
        &[],
        "SELECT id, v FROM log ORDER BY id DESC LIMIT 2;\n",
    );
    assert_eq!(rows.assert_status(200).text(), "3|reading3\n2|reading2\n");
    let bad = flint.request("POST", "/script", &[], "SELECT * FROM missing;\n");
    assert_eq!(bad.status, 500);
    assert!(
        bad.text().contains("Error::Io(") && bad.text().contains("no such table: missing"),
        "{}",
        bad.text()
    );
}

#[test]
fn a_core_module_has_spins_sqlite() {
    conformance(&core_module());
}

#[test]
fn a_component_has_spins_sqlite() {
    conformance(&component());
}

#[test]
fn statements_of_one_connection_share_a_transaction() {
    let dir = TempDir::new("sqlite-transactions");
    let flint = serve(&app(&dir, &core_module(), "[\"default\"]")).start();
    let script = |body: &str| flint.request("POST", "/script", &[], body);
    script("CREATE TABLE t (x INTEGER);\n").assert_status(200);
    let committed = script(
        "BEGIN;\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\nCOMMIT;\nSELECT count(*) FROM t;\n",
    );
    assert_eq!(committed.assert_status(200).text(), "2\n");
    let rolled_back =
        script("BEGIN;\nINSERT INTO t VALUES (3);\nROLLBACK;\nSELECT count(*) FROM t;\n");
    assert_eq!(rolled_back.assert_status(200).text(), "2\n");
    // A guest that ends with its transaction open leaves nothing behind,
    // and the next guest's connection is not inside it.
    script("BEGIN;\nINSERT INTO t VALUES (4);\n").assert_status(200);
    assert_eq!(script("SELECT count(*) FROM t;\n").text(), "2\n");
    assert_eq!(
        script("BEGIN;\nINSERT INTO t VALUES (5);\nCOMMIT;\nSELECT count(*) FROM t;\n").text(),
        "3\n"
    );
}

#[test]
fn labels_come_from_the_runtime_config_in_spins_syntax() {
    let dir = TempDir::new("sqlite-labels");
    let data = TempDir::new("sqlite-labels-data");
    let manifest = app(&dir, &core_module(), "[\"default\", \"readings\"]");
    let readings = data.path().join("nested/readings.db");
    let flint = serve(&manifest)
        .runtime_config(&format!(
            "[sqlite_database.readings]\ntype = \"spin\"\npath = \"{}\"\n",
            readings.display()
        ))
        .start();
    let script =
        |db: &str, body: &str| flint.request("POST", &format!("/script?db={db}"), &[], body);
    script(
        "readings",
        "CREATE TABLE r (x);\nINSERT INTO r VALUES (42);\n",
    )
    .assert_status(200);
    assert_eq!(script("readings", "SELECT x FROM r;\n").text(), "42\n");
    // A database of its own: `default` has no table `r`.
    assert_eq!(script("default", "SELECT x FROM r;\n").status, 500);
    assert!(readings.is_file(), "{} was not created", readings.display());
    assert!(flint.state_dir().join("sqlite_db.db").is_file());

    // A listed label that nothing defines stops startup, naming both.
    let undefined = app(&dir, &core_module(), "[\"default\", \"archive\"]");
    let out = run_flint([
        "up",
        "-f",
        undefined.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        out.stderr
            .contains("component `c`: sqlite_databases names `archive`, which is not defined")
            && out.stderr.contains("[sqlite_database.archive]"),
        "{out:?}"
    );
}

#[test]
fn sqlite_flag_runs_statements_and_files_before_serving() {
    let dir = TempDir::new("sqlite-flag");
    let data = TempDir::new("sqlite-flag-data");
    let manifest = app(&dir, &core_module(), "[\"default\", \"readings\"]");
    let migration = dir.write(
        "migration.sql",
        "CREATE TABLE m (x);\nINSERT INTO m VALUES ('from the file');\n",
    );
    let flint = Flint::builder(&manifest)
        .runtime_config(&format!(
            "[sqlite_database.readings]\ntype = \"spin\"\npath = \"{}\"\n",
            data.path().join("readings.db").display()
        ))
        .arg("--sqlite")
        .arg(format!("@{}", migration.display()))
        .arg("--sqlite")
        .arg("INSERT INTO m VALUES ('inline')")
        .arg("--sqlite")
        .arg(format!("@{}:readings", migration.display()))
        .start();
    let rows = flint.request("POST", "/script", &[], "SELECT x FROM m;\n");
    assert_eq!(rows.text(), "from the file\ninline\n");
    let rows = flint.request("POST", "/script?db=readings", &[], "SELECT x FROM m;\n");
    assert_eq!(rows.text(), "from the file\n");

    let only_default = app(&dir, &core_module(), "[\"default\"]");
    let out = run_flint([
        "up",
        "-f",
        only_default.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--sqlite",
        "SELEKT 1",
    ]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains("SELEKT 1") && out.stderr.contains("syntax error"),
        "{out:?}"
    );
}

#[test]
fn acknowledged_commits_survive_kill_9() {
    let dir = TempDir::new("sqlite-durable");
    let state = TempDir::new("sqlite-durable-state");
    let manifest = app(&dir, &core_module(), "[\"default\"]");
    let flint = serve(&manifest).state_dir(state.path()).start();
    let mut conn = flint.connect();
    for i in 1..=200 {
        let id = conn.request("POST", &format!("/insert?v=v{i}"), &[], "");
        assert_eq!(id.assert_status(200).text(), format!("{i}\n"));
    }
    let committed = conn.request(
        "POST",
        "/script",
        &[],
        "BEGIN;\nINSERT INTO log (v) VALUES ('in a transaction');\nCOMMIT;\n",
    );
    committed.assert_status(200);
    flint.signal(Signal::Kill);
    drop(flint);
    let flint = serve(&manifest).state_dir(state.path()).start();
    assert_eq!(flint.get("/count").text(), "201\n");
    let last = flint.request(
        "POST",
        "/script",
        &[],
        "SELECT v FROM log WHERE id = 201;\n",
    );
    assert_eq!(last.text(), "in a transaction\n");
}

#[test]
fn a_runaway_query_ends_at_the_deadline() {
    let dir = TempDir::new("sqlite-runaway");
    let flint = serve(&app(&dir, &core_module(), "[\"default\"]"))
        .runtime_config("[limits]\nmax_execution_ms = 1000\n")
        .start();
    let forever =
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n;\n";
    let stopped = flint.request("POST", "/script", &[], forever);
    assert_eq!(stopped.status, 504, "{}", stopped.text());
    // The database and the other routes go on.
    assert_eq!(flint.get("/count").assert_status(200).text(), "0\n");
}

#[test]
fn a_database_at_its_size_limit_is_full() {
    let dir = TempDir::new("sqlite-full");
    let flint = serve(&app(&dir, &component(), "[\"default\"]"))
        .runtime_config("[limits]\nmax_sqlite_bytes = 262144\n")
        .start();
    let script = |body: &str| flint.request("POST", "/script", &[], body);
    script("CREATE TABLE big (b BLOB);\n").assert_status(200);
    let full = script("INSERT INTO big VALUES (zeroblob(400000));\n");
    assert_eq!(full.status, 500);
    assert_eq!(full.text(), "error: Error::DatabaseFull\n");
    // What fits still does.
    script("INSERT INTO big VALUES (zeroblob(1000));\n").assert_status(200);
    assert_eq!(script("SELECT count(*) FROM big;\n").text(), "1\n");
}

#[test]
fn results_are_bounded_by_the_instance_memory() {
    let dir = TempDir::new("sqlite-large-result");
    let flint = serve(&app(&dir, &core_module(), "[\"default\"]"))
        .runtime_config("[limits]\ninstance_memory_bytes = 4194304\n")
        .start();
    let rows = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100) \
                SELECT zeroblob(100000) FROM n;\n";
    let refused = flint.request("POST", "/script", &[], rows);
    assert_eq!(refused.status, 500);
    assert!(
        refused
            .text()
            .contains("query result exceeds limit of 4194304 bytes"),
        "{}",
        refused.text()
    );
}

#[test]
fn guests_cannot_attach_other_files() {
    let dir = TempDir::new("sqlite-attach");
    let flint = serve(&app(&dir, &core_module(), "[\"default\"]")).start();
    let target = dir.path().join("elsewhere.db");
    let attach = flint.request(
        "POST",
        "/script",
        &[],
        format!("ATTACH DATABASE '{}' AS other;\n", target.display()),
    );
    assert_eq!(attach.status, 500);
    assert!(
        attach.text().contains("not authorized"),
        "{}",
        attach.text()
    );
    assert!(!target.exists());
}
