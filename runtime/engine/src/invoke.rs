//! Running guest code under limits: fuel handed out in slices, with the
//! wall-clock deadline checked between slices, so that no invocation can keep
//! a worker and the host stays in control.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmi::{Func, ResumableCall, Store, Val};

use crate::GuestState;
use crate::limiter::MemoryBudget;

/// Bounds applied to every instance.
#[derive(Clone)]
pub struct InstanceLimits {
    pub memory_bytes: usize,
    /// What an instance may output: its stdout, or the response body it writes.
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
pub(crate) const FUEL_SLICE: u64 = 10_000_000;

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
    pub(crate) hit: Option<LimitHit>,
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

    pub(crate) fn new(limits: &InstanceLimits) -> Self {
        Self {
            metered: limits.fuel > 0,
            fuel: limits.fuel,
            fuel_left: limits.fuel,
            started: Instant::now(),
            max_execution: limits.max_execution,
            hit: None,
        }
    }

    /// When the invocation must end, if it is metered.
    pub fn deadline(&self) -> Option<Instant> {
        self.metered
            .then(|| self.started.checked_add(self.max_execution))
            .flatten()
    }

    /// Records that host code found the deadline passed (or a wait that
    /// would pass it), so the invocation is reported as over its time like
    /// one stopped between fuel slices; the error ends the call.
    pub fn deadline_hit(&mut self) -> wasmi::Error {
        let hit = LimitHit::Deadline(self.max_execution);
        self.hit = Some(hit);
        wasmi::Error::new(hit.to_string())
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
/// spin forever nor outlive its deadline.
pub fn call_guest<H>(
    store: &mut Store<GuestState<H>>,
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

/// Fuel the invocation in `store` has used so far; `None` when metering is off.
pub fn fuel_used<H>(store: &Store<GuestState<H>>) -> Option<u64> {
    let run = &store.data().run;
    if !run.metered {
        return None;
    }
    let granted = run.fuel - run.fuel_left;
    Some(granted.saturating_sub(store.get_fuel().unwrap_or(0)))
}

fn limit_error<H>(store: &mut Store<GuestState<H>>, hit: LimitHit) -> wasmi::Error {
    store.data_mut().run.hit = Some(hit);
    wasmi::Error::new(hit.to_string())
}
