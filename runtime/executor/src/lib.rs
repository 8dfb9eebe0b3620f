//! The executors: how an event becomes an invocation of a component. WAGI
//! (the CGI contract: environment, argv, stdin, stdout), the Spin SDK's
//! `wasi:http/incoming-handler`, and the Spin MQTT trigger's guest world.
//! Each invocation gets a fresh, isolated instance with only the
//! component's read-only `files`, its environment and its capabilities.
//! Shared by the HTTP and MQTT triggers.

#[cfg(feature = "embedded-svc")]
pub mod embedded;
mod instance;
mod load;
mod run;
pub mod wagi;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use flint_engine::LimitHit;
use flint_host::BodyError;
use flint_host::capabilities::Capabilities;
use flint_host::wasi::Preopen;
use wasmi::Module;

pub use load::{
    GuestKind, LoadError, MQTT_TRIGGER, SPIN_HTTP_EXPORT, SPIN_MQTT_EXPORT, SPIN_ROUTE, WAGI_ROUTE,
    load_module,
};
pub use run::{Invocation, MqttMessage, SpinResponse, run_mqtt, run_spin_http, run_wagi};

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
    pub running: AtomicUsize,
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
