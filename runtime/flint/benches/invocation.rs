//! Per-invocation cost: a fresh instance, the guest's run and the teardown,
//! through the functions the HTTP trigger calls on a worker (no sockets, no
//! worker pool), for the hello WAGI module, the Spin SDK hello (a core
//! module), and the same hello as a Rust component and a JavaScript one.
//! Build the guests first: `cd apps && cargo build --release` and
//! `scripts/build-components`.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use flint::app::{self, LoadedApp, ServeOptions};
use flint::cli::AppArgs;
use flint_engine::InstanceLimits;
use flint_executor::{Component, Invocation, run_spin_http, run_wagi};
use flint_host::IncomingRequest;
use flint_trigger_http::router::Target;

fn load(app: &str, state_dir: &std::path::Path) -> LoadedApp {
    let args = AppArgs {
        app: Some(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../apps")
                .join(app),
        ),
        from: None,
        runtime_config_file: None,
        board: None,
    };
    let serve = ServeOptions {
        state_dir: Some(state_dir),
        env: &[],
        variables: &[],
        reuse: None,
    };
    app::load(&args, Some(serve)).unwrap_or_else(|e| panic!("loading apps/{app}: {e:#}"))
}

fn component(app: &LoadedApp, path: &str) -> Arc<Component> {
    match app.router.find(path).map(|(entry, _)| &entry.target) {
        Some(Target::Wagi { component, .. } | Target::Spin { component }) => component.clone(),
        _ => panic!("no component serves {path}"),
    }
}

/// The CGI variables a `GET /hello` brings, so the guest's environment is
/// as large as in service.
fn hello_environment() -> Vec<(String, String)> {
    [
        ("REQUEST_METHOD", "GET"),
        ("QUERY_STRING", ""),
        ("PATH_INFO", ""),
        ("X_RAW_PATH_INFO", ""),
        ("PATH_TRANSLATED", ""),
        ("SCRIPT_NAME", "/hello"),
        ("SERVER_NAME", "127.0.0.1"),
        ("SERVER_PORT", "3000"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_SOFTWARE", "WAGI/1"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_HOST", "127.0.0.1"),
        ("CONTENT_LENGTH", "0"),
        ("X_FULL_URL", "http://127.0.0.1:3000/hello"),
        ("X_MATCHED_ROUTE", "/hello"),
        ("HTTP_HOST", "127.0.0.1:3000"),
        ("HTTP_USER_AGENT", "criterion"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn invocation(c: &mut Criterion) {
    let state = std::env::temp_dir().join(format!("flint-bench-{}", std::process::id()));
    let wagi_app = load("hello", &state.join("wagi"));
    let spin_app = load("spin-hello", &state.join("spin"));
    let mut group = c.benchmark_group("invocation");

    let hello = component(&wagi_app, "/hello");
    let limits = InstanceLimits::from_limits(&wagi_app.limits);
    let env = hello_environment();
    group.bench_function("wagi_hello", |b| {
        b.iter(|| {
            let invocation = Invocation {
                stdin: Vec::new(),
                env: env.clone(),
                argv: vec!["/hello".to_owned()],
            };
            let stdout =
                run_wagi(&wagi_app.engine, &hello, invocation, &limits).expect("hello.wasm runs");
            assert!(stdout.ends_with(b"Hello, Flint!\n"), "unexpected output");
        })
    });

    // The same request through each Spin HTTP guest: the core-module Spin
    // SDK hello, the Rust wasm32-wasip2 component and the JavaScript one.
    let rust_app = load("components/component-hello", &state.join("rust"));
    let js_app = load("js-hello", &state.join("js"));
    for (name, app, path) in [
        ("spin_sdk_hello", &spin_app, "/"),
        ("component_hello", &rust_app, "/hello"),
        ("js_hello", &js_app, "/hello"),
    ] {
        let guest = component(app, path);
        let limits = InstanceLimits::from_limits(&app.limits);
        group.bench_function(name, |b| {
            b.iter(|| {
                let request = IncomingRequest {
                    method: "GET".to_owned(),
                    path_with_query: path.to_owned(),
                    scheme: "http".to_owned(),
                    authority: "127.0.0.1:3000".to_owned(),
                    headers: vec![("host".to_owned(), b"127.0.0.1:3000".to_vec())],
                    body: Some(Vec::new()),
                };
                let response = run_spin_http(&app.engine, &guest, request, &limits)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(response.status, 200);
            })
        });
    }
    group.finish();
    drop((wagi_app, spin_app, rust_app, js_app));
    let _ = std::fs::remove_dir_all(&state);
}

criterion_group!(benches, invocation);
criterion_main!(benches);
