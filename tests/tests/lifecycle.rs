//! Process lifecycle: graceful shutdown on signals, `flint check`, and
//! fail-fast startup on invalid manifests and modules.

use std::path::Path;
use std::time::Duration;

use flint_e2e::{Flint, FlintOutput, Request, Signal, TempDir, apps_dir, run_flint, wasm_path};

/// A request in flight when the signal arrives still gets its full response;
/// then flint exits 0. The client keeps its (now idle) keep-alive connection
/// open while waiting for the exit on purpose: shutdown must not wait for idle
/// clients, or any open browser tab could stall a service stop.
fn graceful_shutdown(signal: Signal) {
    let mut flint = Flint::showcase();
    let mut slow = flint.connect();
    slow.send(&Request::new("GET", "/slow?ms=2000", &[], []));
    flint.wait_until_slow_is_running();
    flint.signal(signal);
    assert_eq!(
        slow.read_response().assert_status(200).text(),
        "slept 2000\n"
    );
    let status = flint.wait_exit(Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after {signal:?}: {status}\n{}",
        flint.stderr()
    );
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_0() {
    graceful_shutdown(Signal::Term);
}

#[test]
fn sigint_drains_in_flight_requests_and_exits_0() {
    graceful_shutdown(Signal::Int);
}

fn check(manifest: &Path) -> FlintOutput {
    run_flint([
        Path::new("check").as_os_str(),
        "-f".as_ref(),
        manifest.as_os_str(),
    ])
}

#[test]
fn check_accepts_the_example_apps() {
    for app in ["hello/spin.toml", "showcase/spin.toml", "hello"] {
        let out = check(&apps_dir().join(app));
        assert!(out.status.success(), "flint check {app}: {out:?}");
    }
}

/// A `<file>:<line>:<column>: <message>` diagnostic about a spin.toml.
#[derive(Debug)]
struct Diagnostic {
    line: usize,
    column: usize,
    message: String,
}

fn diagnostics(stderr: &str) -> Vec<Diagnostic> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find("spin.toml:")? + "spin.toml:".len()..];
            let mut parts = rest.splitn(3, ':');
            Some(Diagnostic {
                line: parts.next()?.parse().ok()?,
                column: parts.next()?.parse().ok()?,
                message: parts.next()?.trim().to_owned(),
            })
        })
        .collect()
}

/// 1-based line number of the first line of `text` starting with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .expect("prefix is in the manifest")
        + 1
}

/// Writes `manifest` as spin.toml into a temp app dir.
fn temp_app(label: &str, manifest: &str) -> TempDir {
    let dir = TempDir::new(label);
    dir.write("spin.toml", manifest);
    dir
}

/// A TOML literal string holding the built hello.wasm path, so manifests in
/// temp dirs point at a valid module.
fn hello_wasm() -> String {
    format!("'{}'", wasm_path("hello").display())
}

#[test]
fn unknown_key_is_reported_at_its_position() {
    let manifest = format!(
        r#"spin_manifest_version = 2

[application]
name = "bad-key"
colour = "blue"

[[trigger.http]]
route = "/hello"
component = "hello"
executor = {{ type = "wagi" }}

[component.hello]
source = {wasm}
"#,
        wasm = hello_wasm()
    );
    let app = temp_app("bad-key", &manifest);
    let out = check(&app.path().join("spin.toml"));
    assert!(!out.status.success(), "{out:?}");
    // Columns are 1-based and point at the offending key.
    let expected = format!("spin.toml:{}:1:", line_of(&manifest, "colour"));
    assert!(
        out.stderr.contains(&expected),
        "expected {expected:?} in {out:?}"
    );
    assert!(
        out.stderr.contains("colour"),
        "message should name the key: {out:?}"
    );
}

/// Validation does not stop at the first problem: each one gets its own line.
#[test]
fn every_validation_error_is_reported() {
    let manifest = format!(
        r#"spin_manifest_version = 2

[application]
name = "many-errors"

[[trigger.http]]
route = "/ghost"
component = "ghost"
executor = {{ type = "wagi" }}

[[trigger.http]]
route = "/both"
component = "real"
static_response = {{ status_code = 200, body = "component and static_response are exclusive" }}

[component.real]
source = {wasm}
files = [{{ source = "static", destination = "not-absolute" }}]
"#,
        wasm = hello_wasm()
    );
    let app = temp_app("many-errors", &manifest);
    let out = check(&app.path().join("spin.toml"));
    assert!(!out.status.success(), "{out:?}");
    let diags = diagnostics(&out.stderr);
    let lines: std::collections::BTreeSet<usize> = diags.iter().map(|d| d.line).collect();
    assert!(
        lines.len() >= 3,
        "expected 3 errors on distinct lines, got {diags:#?}\n{out:?}"
    );
    let total_lines = manifest.lines().count();
    for d in &diags {
        assert!(
            (1..=total_lines).contains(&d.line) && d.column >= 1,
            "position out of range: {d:?}"
        );
    }
    for needle in ["ghost", "not-absolute"] {
        assert!(
            diags.iter().any(|d| d.message.contains(needle)),
            "no error mentions {needle:?}: {diags:#?}"
        );
    }
}

/// Each broken module must stop both `check` and `up`, naming the component
/// and the file.
#[test]
fn bad_modules_fail_startup_naming_component_and_file() {
    let cases: [(&str, &str, Option<&[u8]>); 4] = [
        ("missing-file", "missing.wasm", None),
        (
            "garbage-bytes",
            "garbage.wasm",
            Some(b"this is not a wasm module"),
        ),
        // Valid header, then a type section claiming more bytes than there are.
        (
            "invalid-wasm",
            "truncated.wasm",
            Some(b"\0asm\x01\0\0\0\x01\x05\x01"),
        ),
        // The 8-byte header alone is a valid, empty module: no `_start`.
        ("no-start", "empty.wasm", Some(b"\0asm\x01\0\0\0")),
    ];
    for (component, file, bytes) in cases {
        let app = temp_app(
            component,
            &format!(
                r#"spin_manifest_version = 2

[application]
name = "broken"

[[trigger.http]]
route = "/x"
component = "{component}"
executor = {{ type = "wagi" }}

[component.{component}]
source = "{file}"
"#
            ),
        );
        if let Some(bytes) = bytes {
            app.write(file, bytes);
        }
        let manifest = app.path().join("spin.toml");
        let state = app.path().join("state");
        let checked = check(&manifest);
        let upped = run_flint([
            "up".as_ref(),
            "-f".as_ref(),
            manifest.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--state-dir".as_ref(),
            state.as_os_str(),
        ]);
        for (cmd, out) in [("check", checked), ("up", upped)] {
            assert!(
                !out.status.success(),
                "flint {cmd} accepted {component}: {out:?}"
            );
            for needle in [component, file] {
                assert!(
                    out.stderr.contains(needle),
                    "flint {cmd} for {component}: {needle:?} not in {out:?}"
                );
            }
        }
    }
}
