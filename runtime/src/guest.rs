//! Running one invocation: a fresh, isolated instance per call, with only the
//! component's read-only `files`, its environment and its capabilities.
//! WAGI guests get the request body as stdin and a bounded stdout; Spin SDK
//! guests get the request as `wasi:http` resources.

use std::io::Write;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use wasmi::{Func, Module, ResumableCall, Store, Val};
use wasmi_wasi::WasiCtxBuilder;
use wasmi_wasi::sync::Dir;
use wasmi_wasi::wasi_common::pipe::{ReadPipe, WritePipe};

use crate::canon::{self, Ty, Value};
use crate::capabilities::Capabilities;
use crate::engine::{Engine, GuestKind, GuestState, SPIN_HTTP_EXPORT, SPIN_MQTT_EXPORT};
use crate::host::{BodyError, HostState, IncomingRequest, ResponseOutparam};
use crate::limiter::{GuestLimiter, MemoryBudget};
use crate::readonly_dir::ReadOnlyDir;
use crate::result_ty;

/// A directory from the component's `files`, opened once at startup.
pub struct Preopen {
    pub dir: Dir,
    pub guest_path: String,
}

/// A compiled component and everything fixed about its instances.
pub struct Component {
    pub id: Arc<str>,
    pub module: Module,
    pub kind: GuestKind,
    /// The component's `environment` plus `flint up -e`, applied after the CGI variables.
    pub environment: Vec<(String, String)>,
    pub preopens: Vec<Preopen>,
    pub caps: Arc<Capabilities>,
    /// HTTP invocations running or queued now, for `max_instances_per_component`.
    pub running: std::sync::atomic::AtomicUsize,
}

/// One counted invocation of a component; uncounted when dropped.
pub struct RunningSlot<'a>(&'a std::sync::atomic::AtomicUsize);

impl Component {
    /// Counts an invocation in, unless `max` are already running or queued.
    pub fn try_start(&self, max: usize) -> Option<RunningSlot<'_>> {
        use std::sync::atomic::Ordering;
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| RunningSlot(&self.running))
    }
}

impl Drop for RunningSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// What changes from one WAGI invocation to the next.
pub struct Invocation {
    pub stdin: Vec<u8>,
    pub env: Vec<(String, String)>,
    pub argv: Vec<String>,
}

/// Bounds applied to every instance.
#[derive(Clone)]
pub struct InstanceLimits {
    pub memory_bytes: usize,
    pub stdout_bytes: usize,
    pub table_elements: usize,
    /// 0: fuel metering is off (and with it the deadline).
    pub fuel: u64,
    pub max_execution: Duration,
    /// Shared by every instance running at once.
    pub memory_budget: Option<Arc<MemoryBudget>>,
}

impl InstanceLimits {
    /// The per-instance bounds of the app's limits, with one memory budget
    /// that every instance created from them shares.
    pub fn from_limits(limits: &flint_config::Limits) -> Self {
        Self {
            memory_bytes: limits.instance_memory_bytes,
            stdout_bytes: usize::try_from(limits.max_response_bytes).unwrap_or(usize::MAX),
            table_elements: limits.instance_table_elements,
            fuel: limits.fuel_per_invocation,
            max_execution: Duration::from_millis(limits.max_execution_ms),
            memory_budget: Some(MemoryBudget::new(limits.guest_memory_budget_bytes)),
        }
    }
}

/// Fuel is handed to a guest in slices; between slices the deadline is checked.
const FUEL_SLICE: u64 = 10_000_000;

/// Which CPU bound an invocation hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    Fuel(u64),
    Deadline(Duration),
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::Fuel(fuel) => {
                write!(f, "used up its CPU budget (fuel_per_invocation = {fuel})")
            }
            LimitHit::Deadline(limit) => {
                write!(
                    f,
                    "ran longer than max_execution_ms = {}",
                    limit.as_millis()
                )
            }
        }
    }
}

/// What is left of one invocation's CPU budget.
pub struct RunBudget {
    metered: bool,
    fuel: u64,
    fuel_left: u64,
    started: Instant,
    max_execution: Duration,
    hit: Option<LimitHit>,
}

impl RunBudget {
    pub fn unlimited() -> Self {
        Self {
            metered: false,
            fuel: 0,
            fuel_left: 0,
            started: Instant::now(),
            max_execution: Duration::MAX,
            hit: None,
        }
    }

    fn new(limits: &InstanceLimits) -> Self {
        Self {
            metered: limits.fuel > 0,
            fuel: limits.fuel,
            fuel_left: limits.fuel,
            started: Instant::now(),
            max_execution: limits.max_execution,
            hit: None,
        }
    }

    /// The next slice of fuel, or the limit that forbids one.
    fn next_slice(&mut self) -> Result<u64, LimitHit> {
        if self.fuel_left == 0 {
            return Err(LimitHit::Fuel(self.fuel));
        }
        if self.started.elapsed() > self.max_execution {
            return Err(LimitHit::Deadline(self.max_execution));
        }
        let slice = self.fuel_left.min(FUEL_SLICE);
        self.fuel_left -= slice;
        Ok(slice)
    }
}

/// Calls guest code within the invocation's fuel and deadline: fuel is given
/// in slices and the call resumed after each, so one invocation can neither
/// spin forever nor outlive its deadline, and the host stays in control.
pub fn call_guest(
    store: &mut Store<GuestState>,
    func: &Func,
    params: &[Val],
    results: &mut [Val],
) -> Result<(), wasmi::Error> {
    if !store.data().run.metered {
        return func.call(&mut *store, params, results);
    }
    let mut call = match store.data_mut().run.next_slice() {
        Ok(slice) => {
            store.set_fuel(slice)?;
            func.call_resumable(&mut *store, params, results)?
        }
        Err(hit) => return Err(limit_error(store, hit)),
    };
    loop {
        match call {
            ResumableCall::Finished => return Ok(()),
            ResumableCall::HostTrap(trap) => return Err(trap.into_host_error()),
            ResumableCall::OutOfFuel(out) => match store.data_mut().run.next_slice() {
                Ok(slice) => {
                    store.set_fuel(slice)?;
                    call = out.resume(&mut *store, results)?;
                }
                Err(hit) => return Err(limit_error(store, hit)),
            },
        }
    }
}

fn limit_error(store: &mut Store<GuestState>, hit: LimitHit) -> wasmi::Error {
    store.data_mut().run.hit = Some(hit);
    wasmi::Error::new(hit.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum GuestFailure {
    #[error("trapped: {0}")]
    Trap(String),
    #[error("exited with status {0}")]
    Exit(i32),
    #[error("wrote more than {0} bytes to stdout")]
    OutputTooLarge(usize),
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    #[error("could not be given its environment: {0}")]
    Setup(String),
    #[error("returned without setting a response (`response-outparam.set` not called)")]
    NoResponse,
    #[error("set an error response: {0}")]
    ErrorResponse(String),
    #[error("response body: {0}")]
    Body(#[from] BodyError),
    #[error("returned an error: {0}")]
    Handler(String),
    #[error("{0}")]
    Limit(LimitHit),
    #[error(
        "could not start: the guest memory budget (guest_memory_budget_bytes) is in use by other instances"
    )]
    MemoryBudget,
}

/// An MQTT message for a handler.
pub struct MqttMessage {
    pub topic: Arc<str>,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    pub message_id: u16,
}

/// A Spin guest's answer.
pub struct SpinResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

fn setup(e: &dyn std::fmt::Display) -> GuestFailure {
    GuestFailure::Setup(e.to_string())
}

/// A new store for one invocation of `component`.
fn new_store(
    engine: &Engine,
    component: &Component,
    mut wasi: WasiCtxBuilder,
    limits: &InstanceLimits,
) -> Result<Store<GuestState>, GuestFailure> {
    let wasi = wasi.build();
    for preopen in &component.preopens {
        let dir = preopen.dir.try_clone().map_err(|e| setup(&e))?;
        let dir = wasmi_wasi::sync::dir::Dir::from_cap_std(dir);
        wasi.push_preopened_dir(Box::new(ReadOnlyDir(Box::new(dir))), &preopen.guest_path)
            .map_err(|e| setup(&e))?;
    }
    let state = GuestState {
        wasi,
        limits: GuestLimiter::new(
            limits.memory_bytes,
            limits.table_elements,
            limits.memory_budget.clone(),
        ),
        host: HostState::new(
            component.caps.clone(),
            limits.stdout_bytes,
            limits.memory_bytes,
        ),
        run: RunBudget::new(limits),
    };
    let mut store = Store::new(&engine.engine, state);
    store.limiter(|s| &mut s.limits);
    Ok(store)
}

fn instantiate(
    engine: &Engine,
    store: &mut Store<GuestState>,
    module: &Module,
) -> Result<wasmi::Instance, GuestFailure> {
    engine
        .linker
        .instantiate_and_start(&mut *store, module)
        .map_err(|e| match store.data().limits.budget_refused {
            true => GuestFailure::MemoryBudget,
            false => GuestFailure::Instantiate(e.to_string()),
        })
}

/// A store for a Spin guest: stdout and stderr go to the log.
fn spin_store(
    engine: &Engine,
    component: &Component,
    limits: &InstanceLimits,
) -> Result<Store<GuestState>, GuestFailure> {
    let log = || Box::new(WritePipe::new(GuestLog::new(component.id.clone())));
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(log())
        .stderr(log())
        .envs(&component.environment)
        .map_err(|e| setup(&e))?;
    new_store(engine, component, wasi, limits)
}

/// A reactor module (`wasm32-wasip1` cdylib) may need its constructors run first.
fn initialize(
    store: &mut Store<GuestState>,
    instance: &wasmi::Instance,
) -> Result<(), GuestFailure> {
    match instance.get_func(&*store, "_initialize") {
        Some(_) => call_entry(store, instance, "_initialize"),
        None => Ok(()),
    }
}

/// Maps the end of a guest call: `proc_exit(0)` is a normal return; a CPU
/// bound hit is reported as such, not as the trap it was delivered as.
fn finished(
    store: &mut Store<GuestState>,
    result: Result<(), wasmi::Error>,
) -> Result<(), GuestFailure> {
    if let Some(hit) = store.data_mut().run.hit.take() {
        return Err(GuestFailure::Limit(hit));
    }
    match result {
        Ok(()) => Ok(()),
        Err(e) => match e.i32_exit_status() {
            Some(0) => Ok(()),
            Some(code) => Err(GuestFailure::Exit(code)),
            None => Err(GuestFailure::Trap(e.to_string())),
        },
    }
}

/// Calls an export that takes and returns nothing (`_start`, `_initialize`).
fn call_entry(
    store: &mut Store<GuestState>,
    instance: &wasmi::Instance,
    name: &str,
) -> Result<(), GuestFailure> {
    let func = instance
        .get_func(&*store, name)
        .ok_or_else(|| GuestFailure::Instantiate(format!("no export `{name}`")))?;
    let result = call_guest(store, &func, &[], &mut []);
    finished(store, result)
}

/// Runs `_start` in a new instance and returns what the guest wrote to stdout.
pub fn run_wagi(
    engine: &Engine,
    component: &Component,
    invocation: Invocation,
    limits: &InstanceLimits,
) -> Result<Vec<u8>, GuestFailure> {
    let stdout = Arc::new(RwLock::new(CappedBuffer {
        data: Vec::new(),
        limit: limits.stdout_bytes,
        overflowed: false,
    }));
    // wasi-libc's getenv returns the first match, so configured variables
    // replace same-named CGI ones (a client cannot shadow them with a header).
    let mut env = invocation.env;
    env.retain(|(k, _)| !component.environment.iter().any(|(c, _)| c == k));
    env.extend(component.environment.iter().cloned());
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdin(Box::new(ReadPipe::from(invocation.stdin)))
        .stdout(Box::new(WritePipe::from_shared(stdout.clone())))
        .stderr(Box::new(WritePipe::new(GuestLog::new(
            component.id.clone(),
        ))))
        .envs(&env)
        .map_err(|e| setup(&e))?
        .args(&invocation.argv)
        .map_err(|e| setup(&e))?;
    let mut store = new_store(engine, component, wasi, limits)?;
    let instance = instantiate(engine, &mut store, &component.module)?;
    let result = call_entry(&mut store, &instance, "_start");
    // Dropping the store flushes the guest's last stderr line.
    drop(store);
    let mut out = stdout.write().unwrap_or_else(|e| e.into_inner());
    if out.overflowed {
        return Err(GuestFailure::OutputTooLarge(limits.stdout_bytes));
    }
    result?;
    Ok(std::mem::take(&mut out.data))
}

/// Calls a Spin SDK component's `wasi:http/incoming-handler#handle` with the
/// request and collects the response it sets.
pub fn run_spin_http(
    engine: &Engine,
    component: &Component,
    request: IncomingRequest,
    limits: &InstanceLimits,
) -> Result<SpinResponse, GuestFailure> {
    let mut store = spin_store(engine, component, limits)?;
    let instance = instantiate(engine, &mut store, &component.module)?;
    initialize(&mut store, &instance)?;
    let handle = instance
        .get_func(&store, SPIN_HTTP_EXPORT)
        .ok_or_else(|| GuestFailure::Instantiate(format!("no export `{SPIN_HTTP_EXPORT}`")))?;
    let resources = &mut store.data_mut().host.resources;
    let setup_handle = |e: wasmi::Error| GuestFailure::Setup(e.to_string());
    let request = resources.push(request).map_err(setup_handle)?;
    let outparam = resources.push(ResponseOutparam).map_err(setup_handle)?;
    let args = [Val::I32(request as i32), Val::I32(outparam as i32)];
    let result = call_guest(&mut store, &handle, &args, &mut []);
    finished(&mut store, result)?;
    let host = &mut store.data_mut().host;
    let head = host
        .response
        .take()
        .ok_or(GuestFailure::NoResponse)?
        .map_err(GuestFailure::ErrorResponse)?;
    let body = host.bodies.take(head.body)?;
    Ok(SpinResponse {
        status: head.status,
        headers: head.headers,
        body,
    })
}

/// Runs an MQTT handler: a Spin MQTT guest's `handle-message`, or a WAGI
/// module with the payload on stdin and `MQTT_*` variables (exit 0 is success).
pub fn run_mqtt(
    engine: &Engine,
    component: &Component,
    message: &MqttMessage,
    limits: &InstanceLimits,
) -> Result<(), GuestFailure> {
    if component.kind == GuestKind::Wagi {
        let env = [
            ("MQTT_TOPIC", message.topic.to_string()),
            ("MQTT_QOS", message.qos.to_string()),
            ("MQTT_RETAIN", message.retain.to_string()),
            ("MQTT_MESSAGE_ID", message.message_id.to_string()),
        ];
        let invocation = Invocation {
            stdin: message.payload.clone(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            argv: vec![component.id.to_string()],
        };
        return run_wagi(engine, component, invocation, limits).map(drop);
    }
    const PARAMS: &[Ty] = &[Ty::List(&Ty::U8), Ty::Tuple(&[Ty::String])];
    const RESULT: Ty = result_ty!(_, Ty::Variant(&[Some(Ty::String)]));
    let mut store = spin_store(engine, component, limits)?;
    let instance = instantiate(engine, &mut store, &component.module)?;
    initialize(&mut store, &instance)?;
    let args = [
        Value::Bytes(message.payload.clone()),
        Value::Tuple(vec![Value::string(message.topic.as_ref())]),
    ];
    let outcome = canon::call_export(
        &mut store,
        &instance,
        SPIN_MQTT_EXPORT,
        PARAMS,
        &args,
        Some(RESULT),
        call_guest,
    );
    if let Some(hit) = store.data_mut().run.hit.take() {
        return Err(GuestFailure::Limit(hit));
    }
    match outcome {
        Ok(Some(Value::Variant(0, _))) => Ok(()),
        Ok(Some(Value::Variant(_, Some(error)))) => {
            let message = match *error {
                Value::Variant(_, Some(text)) => match *text {
                    Value::String(text) => text,
                    other => format!("{other:?}"),
                },
                other => format!("{other:?}"),
            };
            Err(GuestFailure::Handler(message))
        }
        Ok(other) => Err(GuestFailure::Handler(format!(
            "unexpected result {other:?}"
        ))),
        Err(e) => finished(&mut store, Err(e)),
    }
}

/// Guest stdout, cut off at the response limit rather than buffered whole.
struct CappedBuffer {
    data: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl Write for CappedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.data.len() + buf.len() > self.limit {
            self.overflowed = true;
            return Err(std::io::Error::other("response size limit reached"));
        }
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Guest stderr (and a Spin guest's stdout), logged line by line with the component id.
struct GuestLog {
    component: Arc<str>,
    line: Vec<u8>,
}

/// Longer lines are logged in pieces, so a guest cannot grow this buffer.
const MAX_LOG_LINE: usize = 4096;

impl GuestLog {
    fn new(component: Arc<str>) -> Self {
        Self {
            component,
            line: Vec::new(),
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.line);
        tracing::info!(target: "flint::guest", component = %self.component, "{}", line.trim_end());
        self.line.clear();
    }
}

impl Write for GuestLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            if b == b'\n' {
                self.emit();
            } else {
                self.line.push(b);
                if self.line.len() >= MAX_LOG_LINE {
                    self.emit();
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for GuestLog {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}
