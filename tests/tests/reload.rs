//! A running `flint up --app-dir` switching versions: through `flint deploy`
//! (the control socket) and a change of `current` (picked up by the watcher
//! or SIGHUP), with wrk running across the switch; and the rollbacks: a
//! version whose component traps when instantiated, or whose `health_route`
//! answers 500, never serves, is recorded as failed, and the old version
//! keeps answering.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use flint_e2e::{Flint, FlintOutput, Signal, TempDir, flint, poll_until, run_flint, wasm_path};

/// A version whose `/hello` says which one it is (a WAGI module printing
/// its `VERSION` environment variable would need a new guest: the showcase
/// `/env` route prints the environment, so the component's `environment`
/// carries the version). `extra` adds TOML to the component.
fn app(dir: &TempDir, name: &str, extra: &str, runtime_config: Option<&str>) -> PathBuf {
    let manifest = dir.write(
        &format!("{name}/spin.toml"),
        format!(
            r#"spin_manifest_version = 2
[application]
name = "reloaded"

[[trigger.http]]
route = "/hello"
component = "hello"
executor = {{ type = "wagi" }}

[[trigger.http]]
route = "/env/..."
component = "showcase"
executor = {{ type = "wagi" }}

[[trigger.http]]
route = "/trap"
component = "showcase"
executor = {{ type = "wagi" }}

[component.hello]
source = "{hello}"
{extra}

[component.showcase]
source = "{showcase}"
environment = {{ APP_VERSION = "{name}" }}
"#,
            hello = wasm_path("hello").display(),
            showcase = wasm_path("showcase").display(),
        ),
    );
    let out = dir.path().join(format!("{name}.flint"));
    let mut args: Vec<PathBuf> = vec!["bundle".into(), manifest.clone(), "-o".into(), out.clone()];
    if let Some(rc) = runtime_config {
        let rc = dir.write(&format!("{name}/runtime-config.toml"), rc);
        args.extend(["--runtime-config-file".into(), rc]);
    }
    let bundled = run_flint(args);
    assert!(bundled.status.success(), "{bundled:?}");
    out
}

fn version_of(flint: &Flint) -> String {
    let text = flint.get("/env/x").text();
    text.lines()
        .find_map(|l| l.strip_prefix("APP_VERSION="))
        .unwrap_or("")
        .to_owned()
}

fn current(app_dir: &Path) -> String {
    std::fs::read_link(app_dir.join("current"))
        .expect("current")
        .file_name()
        .expect("an id")
        .to_string_lossy()
        .into_owned()
}

/// Runs wrk on `/hello` for `seconds` in the background; returns its output.
fn wrk(flint: &Flint, seconds: u32) -> std::thread::JoinHandle<String> {
    let url = format!("http://{}/hello", flint.addr());
    std::thread::spawn(move || {
        let out = Command::new("wrk")
            .args(["-t2", "-c8", &format!("-d{seconds}s"), &url])
            .output()
            .expect("wrk (scripts/test installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
}

fn assert_no_failures(wrk_output: &str) {
    assert!(
        !wrk_output.contains("Non-2xx") && !wrk_output.contains("Socket errors"),
        "requests failed across the reload:\n{wrk_output}"
    );
    assert!(wrk_output.contains("requests in"), "{wrk_output}");
}

fn deployed(dir: &TempDir, bundle: &Path) -> PathBuf {
    let app_dir = dir.path().join("app-dir");
    let out = flint!("deploy", bundle, "--app-dir", app_dir);
    assert!(out.status.success(), "{out:?}");
    app_dir
}

#[test]
fn a_deploy_to_a_running_flint_switches_without_failing_a_request() {
    let dir = TempDir::new("reload-deploy");
    let a = app(&dir, "a", "", None);
    let b = app(&dir, "b", "", None);
    let app_dir = deployed(&dir, &a);
    let flint = Flint::builder_app_dir(&app_dir).start();
    assert_eq!(version_of(&flint), "a");
    let load = wrk(&flint, 4);
    std::thread::sleep(Duration::from_secs(1));
    let out = flint!("deploy", b, "--app-dir", app_dir);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.contains("switched from version"), "{out:?}");
    assert_eq!(version_of(&flint), "b");
    assert_no_failures(&load.join().expect("wrk"));
    flint.wait_for_log_line(&["switched to the new version"]);
}

#[test]
fn a_change_of_current_or_sighup_switches_without_failing_a_request() {
    let dir = TempDir::new("reload-sighup");
    let a = app(&dir, "a", "", None);
    let b = app(&dir, "b", "", None);
    let app_dir = deployed(&dir, &a);
    let id_a = current(&app_dir);
    // Deploy b while nothing serves, then point `current` back at a.
    let out = flint!("deploy", b, "--app-dir", app_dir);
    assert!(out.status.success(), "{out:?}");
    let id_b = current(&app_dir);
    let relink = |id: &str| {
        let tmp = app_dir.join("current.test");
        std::os::unix::fs::symlink(format!("versions/{id}"), &tmp).expect("symlink");
        std::fs::rename(&tmp, app_dir.join("current")).expect("rename");
    };
    relink(&id_a);
    let flint = Flint::builder_app_dir(&app_dir).start();
    assert_eq!(version_of(&flint), "a");
    let load = wrk(&flint, 4);
    std::thread::sleep(Duration::from_secs(1));
    relink(&id_b);
    flint.signal(Signal::Hup);
    assert!(
        poll_until(Duration::from_secs(10), || version_of(&flint) == "b"),
        "{}",
        flint.stderr()
    );
    assert_no_failures(&load.join().expect("wrk"));
}

/// A module whose start function traps: it passes `flint check` (start
/// functions do not run at startup checks) but cannot be instantiated.
fn trapping_module(dir: &TempDir) -> PathBuf {
    let wat = dir.write(
        "trap.wat",
        "(module (func $boom unreachable) (start $boom) (func (export \"_start\")))",
    );
    let wasm = dir.path().join("trap.wasm");
    let status = Command::new("wat2wasm")
        .arg(&wat)
        .arg("-o")
        .arg(&wasm)
        .status()
        .expect("wat2wasm");
    assert!(status.success());
    wasm
}

fn assert_rolled_back(app_dir: &Path, good: &str, out: &FlintOutput, reason: &str) {
    assert!(
        !out.status.success(),
        "the bad version was accepted: {out:?}"
    );
    assert!(out.stderr.contains("rolled back"), "{out:?}");
    assert!(out.stderr.contains(reason), "{out:?}");
    assert_eq!(current(app_dir), good, "current is the good version again");
    let failed = std::fs::read_to_string(app_dir.join("failed")).expect("failed");
    assert_eq!(failed.lines().count(), 1, "{failed}");
}

#[test]
fn a_version_whose_component_traps_at_instantiation_is_rolled_back() {
    let dir = TempDir::new("reload-trap");
    let a = app(&dir, "a", "", None);
    let app_dir = deployed(&dir, &a);
    let good = current(&app_dir);
    let flint = Flint::builder_app_dir(&app_dir).start();
    let trap = trapping_module(&dir);
    dir.write(
        "bad/spin.toml",
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"bad\"\n\
             [[trigger.http]]\nroute = \"/hello\"\ncomponent = \"c\"\nexecutor = {{ type = \"wagi\" }}\n\
             [component.c]\nsource = \"{}\"\n",
            trap.display()
        ),
    );
    let bundle = dir.path().join("bad.flint");
    let out = flint!("bundle", dir.path().join("bad/spin.toml"), "-o", bundle);
    assert!(out.status.success(), "{out:?}");
    let out = flint!("deploy", bundle, "--app-dir", app_dir);
    assert_rolled_back(&app_dir, &good, &out, "component `c`");
    assert_eq!(version_of(&flint), "a");
    flint.get("/hello").assert_status(200);
    // The failed version is never deployed again.
    let again = flint!("deploy", bundle, "--app-dir", app_dir);
    assert!(!again.status.success(), "{again:?}");
}

#[test]
fn a_version_whose_health_route_fails_is_rolled_back_at_deploy_and_at_startup() {
    let dir = TempDir::new("reload-health");
    let a = app(&dir, "a", "", None);
    let unhealthy = app(
        &dir,
        "b",
        "",
        Some("[deploy]\nhealth_route = \"/trap\"\nhealth_timeout_ms = 3000\n"),
    );
    let app_dir = deployed(&dir, &a);
    let good = current(&app_dir);
    {
        let flint = Flint::builder_app_dir(&app_dir).start();
        let out = flint!("deploy", unhealthy, "--app-dir", app_dir);
        assert_rolled_back(&app_dir, &good, &out, "health check `/trap` answered 500");
        assert_eq!(version_of(&flint), "a");
    }
    // Deployed while no Flint runs, the version is checked when Flint
    // starts: it rolls back and serves the good one.
    let app_dir2 = dir.path().join("app-dir-2");
    for bundle in [&a, &unhealthy] {
        let out = flint!("deploy", bundle, "--app-dir", app_dir2);
        assert!(out.status.success(), "{out:?}");
    }
    let flint = Flint::builder_app_dir(&app_dir2).start();
    assert_eq!(version_of(&flint), "a");
    flint.wait_for_log_line(&["failed its health check", "rolled back"]);
    let failed = std::fs::read_to_string(app_dir2.join("failed")).expect("failed");
    assert_eq!(failed.lines().count(), 1, "{failed}");
}
