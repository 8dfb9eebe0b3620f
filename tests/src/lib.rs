//! End-to-end test harness: builds the guest apps, starts the real `flint`
//! binary as a child process, and talks HTTP/1.1 to it over raw sockets.
//!
//! std only, on purpose: the edge cases under test (pipelining, `Expect:
//! 100-continue`, malformed chunking, oversize heads) are exactly what
//! full-featured HTTP clients normalise away, and no dependencies keeps the
//! test build cheap on a 2-core machine.
//!
//! Entry points:
//! - [`Flint::showcase`] / [`Flint::builder`] / [`Flint::builder_app_dir`]: a
//!   running server, killed on drop.
//! - [`Flint::request`] / [`Flint::get`] / [`Flint::connect`] + [`Conn`]: HTTP.
//! - [`run_flint`]: run a `flint` subcommand to completion (`check`, failing `up`).
//! - [`TempDir`], [`apps_dir`], [`wasm_path`]: fixtures.
//! - [`services::Mosquitto`], [`services::Upstream`]: a real MQTT broker and a
//!   real HTTP server for outbound calls, on free ports.

pub mod components;
pub mod mariadb;
pub mod services;

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long `flint up` may take to print its `Serving` line. Generous because
/// parallel tests on a small machine all start servers at once.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Socket read/write timeout: a hung server fails the test instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to poll for an expected log line (it is written after the response).
pub const LOG_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a `flint` command that should exit by itself may run.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Paths and fixtures
// ---------------------------------------------------------------------------

/// The root of the main Cargo workspace (this package lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// `$FLINT_BIN`, else `<root>/target/release/flint`. The binary is built by
/// `scripts/test`, not here: building the runtime from inside a test would fight
/// the outer `cargo test` for the target-dir lock.
pub fn flint_bin() -> PathBuf {
    let bin = std::env::var_os("FLINT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/release/flint"));
    if !bin.is_file() {
        panic!(
            "flint binary not found at {}: run `cargo build --release -p flint` \
             (scripts/test does this)",
            bin.display()
        );
    }
    bin
}

/// `<root>/apps`, after making sure the guest modules are built.
pub fn apps_dir() -> PathBuf {
    build_apps();
    workspace_root().join("apps")
}

/// `apps/showcase/spin.toml`: the many-routes app most tests run.
pub fn showcase_manifest() -> PathBuf {
    apps_dir().join("showcase/spin.toml")
}

/// A built guest module, e.g. `wasm_path("hello")`.
pub fn wasm_path(name: &str) -> PathBuf {
    apps_dir().join(format!("target/wasm32-wasip1/release/{name}.wasm"))
}

/// A module of the hostile corpus (`tests/corpus/<name>.wat`), compiled with
/// `wat2wasm` into a directory shared by the test process.
pub fn corpus_wasm(name: &str) -> PathBuf {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    static COMPILING: Mutex<()> = Mutex::new(());
    let dir = DIR.get_or_init(|| TempDir::new("corpus"));
    let out = dir.path().join(format!("{name}.wasm"));
    let _one_at_a_time = COMPILING.lock().unwrap_or_else(|e| e.into_inner());
    if !out.exists() {
        let source = workspace_root().join(format!("tests/corpus/{name}.wat"));
        let status = Command::new("wat2wasm")
            .arg(&source)
            .arg("-o")
            .arg(&out)
            .status()
            .expect("running wat2wasm (scripts/setup.sh installs wabt)");
        assert!(status.success(), "wat2wasm {}", source.display());
    }
    out
}

/// Builds the `apps` workspace once per test process. It is a separate
/// workspace with its own target dir, so this does not contend for the lock the
/// outer `cargo test` holds.
fn build_apps() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--release"])
            .current_dir(workspace_root().join("apps"))
            // Settings meant for the outer build would redirect or break this one:
            // the apps' own .cargo/config.toml must decide target and rustflags.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .output()
            .expect("failed to run cargo to build the apps workspace");
        if !out.status.success() {
            panic!(
                "building apps/ failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
}

/// A fresh directory under the system temp dir, removed (recursively) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "flint-e2e-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating temp dir {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `rel` (creating parent dirs) and returns the full path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Writes a manifest `file` with one component `c` (module `source`) on
    /// route `/...`; `trigger_extra` and `component_extra` are TOML lines added
    /// to the trigger and component tables.
    pub fn one_component_manifest(
        &self,
        file: &str,
        source: &Path,
        trigger_extra: &str,
        component_extra: &str,
    ) -> PathBuf {
        self.write(
            file,
            format!(
                "spin_manifest_version = 2\n[application]\nname = \"test\"\n\
                 [[trigger.http]]\nroute = \"/...\"\ncomponent = \"c\"\n{trigger_extra}\n\
                 [component.c]\nsource = \"{}\"\n{component_extra}\n",
                source.display()
            ),
        )
    }
}

/// A manifest with the MQTT trigger on `scheme://host:port` (handler
/// apps/mqtt-ingest on `sensors/+/temp`) and a `/publish/...` route whose
/// guest (apps/spin-mqtt) publishes to the same broker; both may reach it.
pub fn trigger_and_publisher_manifest(
    dir: &TempDir,
    name: &str,
    scheme: &str,
    host: &str,
    port: u16,
) -> PathBuf {
    dir.write(
        "spin.toml",
        format!(
            r#"spin_manifest_version = 2
[application]
name = "{name}"
[application.trigger.mqtt]
address = "{scheme}://{host}:{port}"
username = ""
password = ""
keep_alive_interval = "5"

[[trigger.mqtt]]
id = "ingest"
component = "ingest"
topic = "sensors/+/temp"
qos = "1"

[[trigger.http]]
route = "/publish/..."
component = "publisher"

[component.ingest]
source = "{ingest}"
key_value_stores = ["default"]
allowed_outbound_hosts = ["{scheme}://{host}:{port}"]
[component.ingest.variables]
mqtt_address = "{scheme}://{host}:{port}?client_id={name}-ingest"

[component.publisher]
source = "{publisher}"
allowed_outbound_hosts = ["{scheme}://{host}:{port}"]
[component.publisher.variables]
mqtt_address = "{scheme}://{host}:{port}?client_id={name}-publisher"
"#,
            ingest = wasm_path("mqtt_ingest").display(),
            publisher = wasm_path("spin_mqtt").display(),
        ),
    )
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Running flint
// ---------------------------------------------------------------------------

/// Output collected from a child stream by a background thread. Draining in
/// the background also keeps the child from blocking on a full pipe.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<String>>);

impl SharedBuf {
    fn push_line(&self, line: &str) {
        let mut buf = self.0.lock().unwrap();
        buf.push_str(line);
        buf.push('\n');
    }

    fn snapshot(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Reads `stream` line by line into the buffer until EOF; each line is also
    /// offered to `on_line`.
    fn drain(
        &self,
        stream: impl Read + Send + 'static,
        mut on_line: impl FnMut(&str) + Send + 'static,
    ) -> JoinHandle<()> {
        let buf = self.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&raw);
                        let line = line.trim_end_matches(['\r', '\n']);
                        buf.push_line(line);
                        on_line(line);
                    }
                }
            }
        })
    }
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
/// Used instead of fixed sleeps wherever there is something to observe.
pub fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The result of a `flint` invocation that ran to completion.
pub struct FlintOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Debug for FlintOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "flint exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `flint <args>` until it exits (at most [`EXIT_TIMEOUT`]) and returns its output.
///
/// Meant for commands that must terminate by themselves: `check`, and `up` on
/// an app that must fail to load. If the process prints a `Serving` line it is
/// killed and the test fails at once, rather than waiting out the timeout.
/// [`run_flint`] with arguments of any string or path type:
/// `flint!("deploy", &bundle, "--app-dir", &dir)`.
#[macro_export]
macro_rules! flint {
    ($($arg:expr),* $(,)?) => {
        $crate::run_flint([$(std::ffi::OsString::from(AsRef::<std::ffi::OsStr>::as_ref(&$arg))),*])
    };
}

pub fn run_flint<I, S>(args: I) -> FlintOutput
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let scratch = TempDir::new("run");
    let mut child = Command::new(flint_bin())
        .args(&args)
        .current_dir(scratch.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning flint {args:?}: {e}"));
    let (stdout, stderr) = (SharedBuf::default(), SharedBuf::default());
    let readers = [
        stdout.drain(child.stdout.take().unwrap(), |_| {}),
        stderr.drain(child.stderr.take().unwrap(), |_| {}),
    ];
    let deadline = Instant::now() + EXIT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let serving = stdout
            .snapshot()
            .lines()
            .any(|l| l.starts_with("Serving http://"));
        if serving || Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "flint {args:?} {} instead of exiting\n--- stdout ---\n{}\n--- stderr ---\n{}",
                if serving {
                    "started serving"
                } else {
                    "did not exit in time"
                },
                stdout.snapshot(),
                stderr.snapshot()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    // The pipes close when the process exits, so the readers finish promptly.
    for r in readers {
        let _ = r.join();
    }
    FlintOutput {
        status,
        stdout: stdout.snapshot(),
        stderr: stderr.snapshot(),
    }
}

/// Options for `flint up`; finish with [`FlintBuilder::start`].
pub struct FlintBuilder {
    manifest: PathBuf,
    /// `flint up --app-dir <manifest>` instead of `-f <manifest>`.
    app_dir: bool,
    runtime_config: Option<String>,
    guest_env: Vec<(String, String)>,
    process_env: Vec<(String, String)>,
    variables: Vec<(String, String)>,
    state_dir: Option<PathBuf>,
    extra_args: Vec<OsString>,
}

impl FlintBuilder {
    /// Any other `flint up` argument (`--metrics-listen`, `--log-format`, ...).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Contents for a `--runtime-config-file` (written to a temp file).
    pub fn runtime_config(mut self, toml: &str) -> Self {
        self.runtime_config = Some(toml.to_owned());
        self
    }

    /// `-e K=V`: an env var for every guest.
    pub fn guest_env(mut self, key: &str, value: &str) -> Self {
        self.guest_env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// An env var of the flint process itself (guests must not see it).
    pub fn process_env(mut self, key: &str, value: &str) -> Self {
        self.process_env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// `--variable NAME=VALUE`.
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        self.variables.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `--state-dir DIR`, kept after the server stops (for restart tests);
    /// by default each server gets a fresh one that is deleted with it.
    pub fn state_dir(mut self, dir: &Path) -> Self {
        self.state_dir = Some(dir.to_owned());
        self
    }

    /// The arguments after `flint up`, for tests that expect startup to fail.
    pub fn up_args(&self) -> Vec<OsString> {
        let app_flag = if self.app_dir { "--app-dir" } else { "-f" };
        let mut args: Vec<OsString> =
            vec!["up".into(), app_flag.into(), self.manifest.clone().into()];
        for (k, v) in &self.variables {
            args.push("--variable".into());
            args.push(format!("{k}={v}").into());
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// Starts `flint up` and waits for its `Serving http://...` line.
    pub fn start(self) -> Flint {
        let state = TempDir::new("state");
        // An app directory keeps its state in DIR/state unless told otherwise.
        let pass_state_dir = !self.app_dir || self.state_dir.is_some();
        let state_dir = self.state_dir.clone().unwrap_or_else(|| {
            if self.app_dir {
                self.manifest.join("state")
            } else {
                state.path().join("state")
            }
        });
        let mut cmd = Command::new(flint_bin());
        cmd.args(self.up_args()).args(["--listen", "127.0.0.1:0"]);
        if pass_state_dir {
            cmd.arg("--state-dir").arg(&state_dir);
        }
        if let Some(toml) = &self.runtime_config {
            cmd.arg("--runtime-config-file")
                .arg(state.write("runtime-config.toml", toml));
        }
        for (k, v) in &self.guest_env {
            cmd.arg("-e").arg(format!("{k}={v}"));
        }
        cmd.envs(self.process_env.iter().map(|(k, v)| (k, v)))
            // The cwd must not matter: manifest paths resolve against the manifest's
            // directory. A scratch cwd also keeps stray files out of the repo.
            .current_dir(state.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));

        let (stdout, stderr) = (SharedBuf::default(), SharedBuf::default());
        let (tx, rx) = mpsc::channel();
        let stdout_reader = stdout.drain(child.stdout.take().unwrap(), move |line| {
            if let Some(rest) = line.strip_prefix("Serving http://") {
                let _ = tx.send(rest.trim().trim_end_matches('/').to_owned());
            }
        });
        let stderr_reader = stderr.drain(child.stderr.take().unwrap(), |_| {});

        let mut flint = Flint {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout,
            stderr,
            readers: vec![stdout_reader, stderr_reader],
            state_dir,
            _state: state,
        };
        // The sender lives in the stdout reader, so a disconnect means stdout hit
        // EOF (flint exited) without ever printing the Serving line.
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(addr) => match addr.parse() {
                Ok(addr) => {
                    flint.addr = addr;
                    flint
                }
                Err(e) => flint.fail(&format!("unparsable Serving address {addr:?}: {e}")),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => flint.fail(&format!(
                "no `Serving http://` line within {STARTUP_TIMEOUT:?}"
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = flint.child.wait().unwrap();
                flint.join_readers();
                flint.fail(&format!("flint exited with {status} before serving"))
            }
        }
    }
}

/// Signals a test sends to flint.
#[derive(Clone, Copy, Debug)]
pub enum Signal {
    Hup = 1,
    Int = 2,
    Kill = 9,
    Term = 15,
}

unsafe extern "C" {
    // libc's kill(2); std already links libc, so no crate is needed for it.
    fn kill(pid: i32, sig: i32) -> i32;
}

/// A running `flint up` child process. Killed (SIGKILL) on drop.
pub struct Flint {
    child: Child,
    addr: SocketAddr,
    stdout: SharedBuf,
    stderr: SharedBuf,
    readers: Vec<JoinHandle<()>>,
    state_dir: PathBuf,
    // Holds the state dir and runtime-config file; deleted after the child dies
    // (fields drop after `Drop::drop` has killed it).
    _state: TempDir,
}

impl Flint {
    /// Options for `flint up -f <manifest or app dir>`.
    pub fn builder(manifest: impl Into<PathBuf>) -> FlintBuilder {
        FlintBuilder {
            manifest: manifest.into(),
            app_dir: false,
            runtime_config: None,
            guest_env: Vec::new(),
            process_env: Vec::new(),
            variables: Vec::new(),
            state_dir: None,
            extra_args: Vec::new(),
        }
    }

    /// Options for `flint up --app-dir <dir>`: the current version of an app
    /// directory that `flint deploy` fills.
    pub fn builder_app_dir(dir: impl Into<PathBuf>) -> FlintBuilder {
        FlintBuilder {
            app_dir: true,
            ..Flint::builder(dir)
        }
    }

    /// `flint up -f <manifest or app dir>` with default options.
    pub fn start(manifest: impl Into<PathBuf>) -> Flint {
        Flint::builder(manifest).start()
    }

    /// The showcase app with default options.
    pub fn showcase() -> Flint {
        Flint::start(showcase_manifest())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `--state-dir` this instance runs with.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything flint wrote to stdout so far (Serving line, route list, ...).
    pub fn stdout(&self) -> String {
        self.stdout.snapshot()
    }

    /// Everything flint wrote to stderr (its logs) so far.
    pub fn stderr(&self) -> String {
        self.stderr.snapshot()
    }

    /// Whether stderr contains `needle`, polling for up to [`LOG_TIMEOUT`]
    /// because log lines may be written after the response is sent.
    pub fn stderr_contains(&self, needle: &str) -> bool {
        poll_until(LOG_TIMEOUT, || self.stderr().contains(needle))
    }

    /// Waits (up to [`LOG_TIMEOUT`]) for one stderr line containing every part,
    /// e.g. `["GET", "/trap", "500", "trap"]` for a request log line, and
    /// returns it; panics with the whole log otherwise.
    pub fn wait_for_log_line(&self, parts: &[&str]) -> String {
        let mut found = None;
        poll_until(LOG_TIMEOUT, || {
            found = self
                .stderr()
                .lines()
                .find(|line| parts.iter().all(|p| line.contains(p)))
                .map(str::to_owned);
            found.is_some()
        });
        found.unwrap_or_else(|| {
            panic!(
                "no stderr line contains all of {parts:?}\n--- stderr ---\n{}",
                self.stderr()
            )
        })
    }

    /// Waits until a showcase `/slow` request is known to be executing, for
    /// tests that must act while a request is in flight. The guest writes a
    /// marker to stderr, which flint may forward to its log: an exact sync point.
    /// The contract does not promise that forwarding, so after a bounded wait
    /// this returns regardless; callers ask `/slow` to sleep well beyond it.
    pub fn wait_until_slow_is_running(&self) {
        poll_until(Duration::from_millis(1000), || {
            self.stderr().contains("showcase: sleeping")
        });
    }

    /// Sends `signal` to the flint process.
    pub fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("pid fits in i32");
        // SAFETY: kill(2) takes plain integers and touches no memory of ours; the
        // pid is our own unreaped child, so it cannot have been recycled.
        let rc = unsafe { kill(pid, signal as i32) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {signal:?}) failed: {}",
            io::Error::last_os_error()
        );
    }

    /// Waits for flint to exit on its own (e.g. after [`Flint::signal`]); panics
    /// with the logs if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut status = None;
        poll_until(timeout, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        match status {
            Some(status) => {
                self.join_readers();
                status
            }
            None => self.fail(&format!(
                "flint still running {timeout:?} after being asked to stop"
            )),
        }
    }

    /// Opens a new keep-alive connection to the server.
    pub fn connect(&self) -> Conn {
        Conn::open(self.addr)
    }

    /// One request on a fresh connection.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> Response {
        self.connect().request(method, path, headers, body)
    }

    /// `GET path` on a fresh connection.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], [])
    }

    fn join_readers(&mut self) {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }

    /// Kills the child and panics with `msg` plus all captured output.
    fn fail(&mut self, msg: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_readers();
        panic!(
            "{msg}\n--- flint stdout ---\n{}\n--- flint stderr ---\n{}",
            self.stdout(),
            self.stderr()
        )
    }
}

impl Drop for Flint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// HTTP/1.1 client
// ---------------------------------------------------------------------------

/// A request as the client serialises it. `Host` and `Content-Length` are added
/// unless already present (or `Transfer-Encoding` is), so tests only spell out
/// the headers they care about; the body is sent verbatim (pre-encode chunked
/// bodies yourself).
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: &str, path: &str, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Self {
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_ref().to_vec(),
        }
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// The bytes on the wire, with `host` as the default Host header.
    pub fn to_bytes(&self, host: &str) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        if !self.has_header("host") {
            head.push_str(&format!("Host: {host}\r\n"));
        }
        let wants_length =
            !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        if wants_length
            && !self.has_header("content-length")
            && !self.has_header("transfer-encoding")
        {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// A parsed response. Header names are lowercased; the body is de-chunked.
#[derive(Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The raw status line and header lines, as received (without the blank line).
    pub head: String,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the status code, showing the whole response on failure.
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(self.status, expected, "unexpected status in {self:?}");
        self
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 2048;
        let text = self.text();
        let shown: String = text.chars().take(MAX).collect();
        let more = if text.chars().count() > MAX {
            format!("... ({} bytes in total)", self.body.len())
        } else {
            String::new()
        };
        write!(f, "Response {{\n{}\n\n{shown}{more}\n}}", self.head)
    }
}

/// One client connection. Requests can be sent back to back (pipelining) and
/// responses read in order; the connection remembers which requests were HEAD,
/// since a HEAD response carries framing headers but no body.
pub struct Conn {
    stream: TcpStream,
    host: String,
    /// Bytes received but not yet consumed (the start of the next response).
    buf: Vec<u8>,
    /// Methods of requests sent whose final response has not been read yet.
    pending: VecDeque<String>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream =
            TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        // Small writes (a head, then a body) must not wait for Nagle.
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            host: addr.to_string(),
            buf: Vec::new(),
            pending: VecDeque::new(),
        }
    }

    /// Sends `req` and reads its response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> Response {
        self.send(&Request::new(method, path, headers, body));
        self.read_response()
    }

    /// Writes a request without reading anything back.
    pub fn send(&mut self, req: &Request) {
        self.write_raw(&req.to_bytes(&self.host));
        self.pending.push_back(req.method.clone());
    }

    /// Writes several requests in a single write, then reads their responses in
    /// order: HTTP/1.1 pipelining.
    pub fn pipeline(&mut self, reqs: &[Request]) -> Vec<Response> {
        let bytes: Vec<u8> = reqs.iter().flat_map(|r| r.to_bytes(&self.host)).collect();
        self.write_raw(&bytes);
        self.pending.extend(reqs.iter().map(|r| r.method.clone()));
        reqs.iter().map(|_| self.read_response()).collect()
    }

    /// Writes arbitrary bytes (malformed requests, a head without its body, ...).
    /// Responses to raw writes are read as non-HEAD.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("writing request: {e}"));
    }

    /// Reads the next response, interim (1xx) ones included; panics with the
    /// bytes received so far if the server closes or sends something that is not
    /// an HTTP/1.1 response.
    pub fn read_response(&mut self) -> Response {
        let mut resp = self.read_head();
        let status = resp.status;
        // Interim responses precede the final one for the same request.
        if (100..200).contains(&status) {
            return resp;
        }
        let method = self.pending.pop_front().unwrap_or_default();
        if method == "HEAD" || status == 204 || status == 304 {
            return resp;
        }
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        resp.body = if chunked {
            self.read_chunked()
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len
                .parse()
                .unwrap_or_else(|_| panic!("bad content-length in {:?}", resp.head));
            self.take_exact(len)
        } else {
            // No framing: the body runs until the server closes the connection.
            self.read_until_close()
        };
        resp
    }

    /// Reads the head (status line and headers) of the next response into a
    /// [`Response`] with an empty body.
    fn read_head(&mut self) -> Response {
        let head_end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos;
            }
            self.fill("response head");
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end + 4);

        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let (version, code, reason) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
        let status = match (version, code.and_then(|c| c.parse::<u16>().ok())) {
            (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code,
            _ => panic!("not an HTTP/1.x status line: {status_line:?} (head: {head:?})"),
        };
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (k, v) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header line {line:?} in {head:?}"));
                (k.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        Response {
            status,
            reason: reason.to_owned(),
            headers,
            body: Vec::new(),
            head,
        }
    }

    /// Reads the head of the next final response, whose body must be chunked,
    /// and leaves the body to [`Conn::read_chunk`]: lets a test see the first
    /// part of a streamed body while the server is still producing the rest.
    pub fn read_chunked_head(&mut self) -> Response {
        let resp = loop {
            let resp = self.read_head();
            if !(100..200).contains(&resp.status) {
                break resp;
            }
        };
        self.pending.pop_front();
        assert!(
            resp.header("transfer-encoding")
                .is_some_and(|te| te.to_ascii_lowercase().contains("chunked")),
            "not a chunked response: {resp:?}"
        );
        resp
    }

    /// The data of the next chunk of a chunked body; empty for the last chunk
    /// (its trailer fields are read and dropped).
    pub fn read_chunk(&mut self) -> Vec<u8> {
        let size_line = self.take_line();
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {size_line:?}"));
        if size == 0 {
            // Trailer fields, then the empty line that ends the message.
            while !self.take_line().is_empty() {}
            return Vec::new();
        }
        let data = self.take_exact(size);
        let crlf = self.take_line();
        assert!(
            crlf.is_empty(),
            "chunk data not followed by CRLF (got {crlf:?})"
        );
        data
    }

    /// Whether response bytes are waiting to be read, without blocking: lets a
    /// test check that a response has *not* arrived yet (ordering, not timing).
    pub fn has_data_ready(&mut self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        self.stream.set_nonblocking(true).unwrap();
        let mut probe = [0u8; 1];
        let ready = match self.stream.peek(&mut probe) {
            Ok(_) => true, // data, or 0 = EOF: either way, something happened
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        };
        self.stream.set_nonblocking(false).unwrap();
        ready
    }

    /// Reads until the server closes the connection (or the read timeout hits)
    /// and returns everything not yet consumed.
    pub fn read_until_close(&mut self) -> Vec<u8> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                // A reset after the server's final write still ends the stream.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!(
                    "reading until close: {e}; received so far: {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
        std::mem::take(&mut self.buf)
    }

    fn fill(&mut self, what: &str) {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => panic!(
                "connection closed while reading {what}; unconsumed bytes: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            // A signal (a server the test started exiting) interrupted the
            // read: the callers loop, so this is a retry.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A read timeout surfaces as WouldBlock (EAGAIN) on Unix.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                panic!(
                    "no data within {IO_TIMEOUT:?} while reading {what}; unconsumed bytes: {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            }
            Err(e) => panic!(
                "reading {what}: {e}; unconsumed bytes: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    fn take_exact(&mut self, len: usize) -> Vec<u8> {
        while self.buf.len() < len {
            self.fill("response body");
        }
        self.buf.drain(..len).collect()
    }

    fn take_line(&mut self) -> String {
        let end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n") {
                break pos;
            }
            self.fill("chunked framing");
        };
        let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 2);
        line
    }

    fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let chunk = self.read_chunk();
            if chunk.is_empty() {
                return body;
            }
            body.extend(chunk);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses `/env/...` output (`KEY=VALUE` lines, then `ARGV=...`) into pairs.
pub fn parse_env_dump(body: &str) -> Vec<(String, String)> {
    body.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
