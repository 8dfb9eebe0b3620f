//! The executors: how an event becomes an invocation of a component. WAGI
//! (the CGI contract: environment, argv, stdin, stdout), the Spin SDK's
//! `wasi:http/incoming-handler`, the Spin MQTT trigger's guest world and
//! Spin's Redis trigger world (`fermyon:spin/inbound-redis`).
//! Each invocation gets a fresh, isolated instance with only the
//! component's read-only `files`, its environment and its capabilities.
//! Shared by the HTTP, MQTT and Redis triggers.

#[cfg(feature = "embedded-svc")]
pub mod embedded;
mod instance;
mod load;
pub mod request_body;
pub mod respond;
mod run;
pub mod wagi;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use flint_engine::LimitHit;
use flint_engine::component::ComponentImage;
use flint_engine::metrics::{Counter, Histogram, MetricsWriter};
use flint_host::BodyError;
use flint_host::HostState;
use flint_host::capabilities::Capabilities;
use flint_host::wasi::Preopen;
use wasmi::Module;

pub use load::{
    GuestKind, LoadError, MQTT_TRIGGER, REDIS_TRIGGER, SPIN_HTTP_EXPORT, SPIN_MQTT_EXPORT,
    SPIN_ROUTE, WAGI_ROUTE, load_module,
};
pub use run::{
    Invocation, MqttMessage, RedisMessage, SpinResponse, probe, run_mqtt, run_redis, run_spin_http,
    run_spin_http_async, run_wagi,
};

/// A component's code: a core module (`wasm32-wasip1`) or a component.
#[derive(Clone)]
pub enum Code {
    Module(Module),
    Component(Arc<ComponentImage<HostState>>),
}

/// A compiled component and everything fixed about its instances.
pub struct Component {
    pub id: Arc<str>,
    pub code: Code,
    pub kind: GuestKind,
    /// The component's `environment` plus `flint up -e`, applied after the CGI variables.
    pub environment: Vec<(String, String)>,
    pub preopens: Vec<Preopen>,
    pub caps: Arc<Capabilities>,
    /// HTTP invocations running or queued now, for `max_instances_per_component`.
    pub running: AtomicUsize,
    pub metrics: ComponentMetrics,
}

/// How an invocation ended, as the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A trap, a non-zero exit or any other failure of the guest.
    Trap,
    FuelExhausted,
    Deadline,
    /// No room in the guest memory budget.
    Memory,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Trap,
        Outcome::FuelExhausted,
        Outcome::Deadline,
        Outcome::Memory,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Trap => "trap",
            Outcome::FuelExhausted => "fuel_exhausted",
            Outcome::Deadline => "deadline",
            Outcome::Memory => "memory",
        }
    }

    fn of(failure: Option<&GuestFailure>) -> Self {
        match failure {
            None => Outcome::Ok,
            Some(GuestFailure::Limit(LimitHit::Fuel(_))) => Outcome::FuelExhausted,
            Some(GuestFailure::Limit(LimitHit::Deadline(_))) => Outcome::Deadline,
            Some(GuestFailure::MemoryBudget) => Outcome::Memory,
            Some(_) => Outcome::Trap,
        }
    }
}

/// One component's invocation counts by outcome and its fuel per invocation.
pub struct ComponentMetrics {
    invocations: [Counter; Outcome::ALL.len()],
    fuel: Histogram,
}

impl Default for ComponentMetrics {
    fn default() -> Self {
        Self {
            invocations: Default::default(),
            fuel: Histogram::fuel(),
        }
    }
}

impl ComponentMetrics {
    fn record(&self, failure: Option<&GuestFailure>, fuel: Option<u64>) {
        self.invocations[Outcome::of(failure) as usize].inc();
        if let Some(fuel) = fuel {
            self.fuel.observe(fuel);
        }
    }

    pub fn invocations(&self, outcome: Outcome) -> u64 {
        self.invocations[outcome as usize].get()
    }
}

/// `flint_invocations_total` and `flint_fuel_used` for every component.
pub fn write_metrics(w: &mut MetricsWriter, components: &[&Component]) {
    w.counter(
        "flint_invocations",
        "Guest invocations by component and outcome.",
    );
    for c in components {
        for outcome in Outcome::ALL {
            w.value(
                &[("component", &c.id), ("outcome", outcome.label())],
                c.metrics.invocations(outcome),
            );
        }
    }
    w.histogram(
        "flint_fuel_used",
        "Fuel (about one unit per guest instruction) used per invocation.",
    );
    for c in components {
        w.histogram_value(&[("component", &c.id)], &c.metrics.fuel);
    }
}

/// One counted invocation of a component; uncounted when dropped.
pub struct RunningSlot<'a>(&'a AtomicUsize);

impl Component {
    /// Counts an invocation in, unless `max` are already running or queued.
    pub fn try_start(&self, max: usize) -> Option<RunningSlot<'_>> {
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
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
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
