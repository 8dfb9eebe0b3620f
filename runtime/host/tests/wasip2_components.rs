//! The `wasm32-wasip2` components under `apps/components` and the Spin JS
//! SDK's `apps/js-hello` (built by `scripts/build-components`), loaded and
//! instantiated against
//! `flint_host::engine()`: every WASI 0.2 import binds to a table whose core
//! signature is what `wit-component` generated for it.

use std::path::PathBuf;

use flint_engine::Loaded;

fn built(name: &str) -> PathBuf {
    let apps = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../apps");
    let path = match name {
        "js-hello.wasm" => apps.join("js-hello/dist").join(name),
        _ => apps
            .join("components/target/wasm32-wasip2/release")
            .join(name),
    };
    assert!(
        path.is_file(),
        "{} is not built: run scripts/build-components",
        path.display()
    );
    path
}

#[test]
fn wasip2_components_link_against_the_wasi_tables() {
    let engine = flint_host::engine(true).expect("engine");
    let mut checked = 0;
    for name in [
        "wagi-wasip2.wasm",
        "component_hello.wasm",
        "mqtt_component.wasm",
        "mysql_component.wasm",
        "js-hello.wasm",
    ] {
        let path = built(name);
        let loaded = engine.load(name, &path, 64 << 20).expect("load");
        let Loaded::Component(image) = loaded else {
            panic!("{name} is not a component");
        };
        eprintln!("{name} imports {:?}", image.imports());
        engine
            .link_check_component(name, &path, &image, 64 << 20)
            .expect("instantiate");
        checked += 1;
    }
    assert_eq!(checked, 5);
}

/// `wagi-wasip2` (Rust std on `wasm32-wasip2`) run through `wasi:cli/run`:
/// its environment, arguments and stdin come from the `WasiState`, and what
/// it prints lands in the capped stdout buffer.
#[test]
fn a_wasip2_program_runs_with_its_environment_stdin_and_stdout() {
    use std::sync::Arc;
    use std::time::Duration;

    use flint_engine::InstanceLimits;
    use flint_host::HostState;
    use flint_host::capabilities::Capabilities;
    use flint_host::wasi::Sink;

    let path = built("wagi-wasip2.wasm");
    let engine = flint_host::engine(true).expect("engine");
    let Loaded::Component(image) = engine.load("wagi", &path, 64 << 20).expect("load") else {
        panic!("not a component");
    };
    let limits = InstanceLimits {
        memory_bytes: 64 << 20,
        stdout_bytes: 1 << 20,
        table_elements: 10_000,
        fuel: 1_000_000_000,
        max_execution: Duration::from_secs(10),
        memory_budget: None,
    };
    let caps = Arc::new(Capabilities::none("wagi"));
    let mut host = HostState::new(caps, 1 << 20, 64 << 20);
    let (sink, stdout) = Sink::buffer(1 << 20);
    host.wasi_state.stdout = sink;
    host.wasi_state.env = vec![
        ("REQUEST_METHOD".into(), "POST".into()),
        ("PATH_INFO".into(), "/x".into()),
    ];
    host.wasi_state.args = vec!["wagi".into(), "a=b".into()];
    host.wasi_state.set_stdin(b"the body".to_vec());
    let mut store = engine.new_store(host, &limits);
    let mut instance = image.instantiate(&mut store).expect("instantiate");
    let result = instance.call(
        &mut store,
        &image,
        "wasi:cli/run@0.2.0",
        "run",
        &[],
        &[],
        Some(flint_engine::result_ty!(_, _)),
        flint_engine::call_guest,
    );
    // `main` returning is `run` returning ok; `std::process::exit` would be an i32 exit.
    match result {
        Ok(value) => assert_eq!(value, Some(flint_engine::canon::Value::ok_unit())),
        Err(e) => assert_eq!(e.i32_exit_status(), Some(0), "{e}"),
    }
    let out = stdout.read().expect("stdout");
    let text = String::from_utf8_lossy(&out.data);
    assert!(text.starts_with("Content-Type: text/plain\n\n"), "{text}");
    assert!(text.contains("method=POST\n"), "{text}");
    assert!(text.contains("path_info=/x\n"), "{text}");
    assert!(text.contains("args=wagi a=b\n"), "{text}");
    assert!(text.contains("body-bytes=8\n"), "{text}");
    assert!(text.ends_with("the body"), "{text}");
}
