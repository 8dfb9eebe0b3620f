//! The fixture the WASI tests (preview 1 and 0.2) share: a WAT guest
//! instantiated against `flint_host::engine()` with a `WasiState` holding an
//! environment, arguments, stdin, a capped stdout, a deadline and one
//! read-only preopen (`<base>/files` at `/`), in a fresh temp directory that
//! is removed afterwards.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use flint_engine::InstanceLimits;
use flint_host::capabilities::Capabilities;
use flint_host::wasi::{CappedBuffer, Preopen, Sink, WasiState};
use flint_host::{GuestState, HostState};
use wasmi::Store;

pub struct Fixture {
    pub base: PathBuf,
    pub store: Store<GuestState>,
    pub instance: wasmi::Instance,
    pub stdout: Arc<RwLock<CappedBuffer>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// What differs between the tests: the guest, its CPU and stdout limits, the
/// files under `<base>/files` (`populate` gets `base`), and the rest of the
/// WASI state (`setup`).
pub struct Spec<'a> {
    pub label: &'a str,
    pub guest: &'a str,
    pub fuel: u64,
    pub stdout_limit: usize,
    pub populate: &'a dyn Fn(&Path),
    pub setup: &'a dyn Fn(&mut WasiState),
}

pub fn fixture(spec: Spec<'_>) -> Fixture {
    let base = std::env::temp_dir().join(format!("flint-{}-{}", spec.label, std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let files = base.join("files");
    std::fs::create_dir_all(&files).expect("files dir");
    (spec.populate)(&base);
    let path = base.join("guest.wasm");
    std::fs::write(&path, wat::parse_str(spec.guest).expect("guest WAT")).expect("write guest");

    let engine = flint_host::engine(true).expect("engine");
    let compiled = engine.compile(spec.label, &path, 1 << 20).expect("compile");
    let limits = InstanceLimits {
        memory_bytes: 1 << 20,
        stdout_bytes: spec.stdout_limit,
        table_elements: 1000,
        fuel: spec.fuel,
        max_execution: Duration::from_secs(5),
        memory_budget: None,
    };
    let mut host = HostState::new(Arc::new(Capabilities::none(spec.label)), 1 << 20, 1 << 20);
    let (sink, stdout) = Sink::buffer(spec.stdout_limit);
    let state = &mut host.wasi_state;
    state.stdout = sink;
    state.deadline = Some(Instant::now() + Duration::from_secs(5));
    let dir = Dir::open_ambient_dir(&files, ambient_authority()).expect("open files");
    state.preopens = vec![Preopen {
        dir: Arc::new(dir),
        guest_path: "/".into(),
    }];
    (spec.setup)(state);
    let mut store = engine.new_store(host, &limits);
    let instance = engine
        .instantiate(&mut store, &compiled.module)
        .expect("instantiate");
    Fixture {
        base,
        store,
        instance,
        stdout,
    }
}
