//! One instance's life: a store with a fresh WASI state and host state,
//! instantiation, reactor initialisation, the call of an entry point, and how
//! its end maps to a [`GuestFailure`].

use std::sync::Arc;
use std::time::Instant;

use flint_engine::InstanceLimits;
use flint_engine::InstantiateError;
use flint_engine::canon::{self, Ty, Value};
use flint_engine::component::{ComponentImage, ComponentInstance};
pub(crate) use flint_host::wasi::CappedBuffer;
use flint_host::{Engine, GuestState, HostState};
use wasmi::{Module, Store};

use crate::{Code, Component, GuestFailure};

/// A new store for one invocation of `component`: its WASI state (preview 1
/// and 0.2 alike) has the component's environment and `files`, no
/// arguments or stdin, and stdout and stderr going to the log.
pub(crate) fn new_store(
    engine: &Engine,
    component: &Component,
    limits: &InstanceLimits,
) -> Store<GuestState> {
    let mut host = HostState::new(
        component.caps.clone(),
        limits.stdout_bytes,
        limits.memory_bytes,
    );
    let wasi = &mut host.wasi_state;
    wasi.env = component.environment.clone();
    wasi.preopens = component.preopens.clone();
    // The engine checks the deadline only when it meters fuel.
    wasi.deadline = (limits.fuel > 0)
        .then(|| Instant::now().checked_add(limits.max_execution))
        .flatten();
    engine.new_store(host, limits)
}

pub(crate) fn instantiate(
    engine: &Engine,
    store: &mut Store<GuestState>,
    module: &Module,
) -> Result<wasmi::Instance, GuestFailure> {
    engine.instantiate(store, module).map_err(|e| match e {
        InstantiateError::MemoryBudget => GuestFailure::MemoryBudget,
        InstantiateError::Failed(message) => GuestFailure::Instantiate(message),
    })
}

/// A live instance of a component's code.
pub(crate) enum Live {
    Module(wasmi::Instance),
    Component(ComponentInstance, Arc<ComponentImage<HostState>>),
}

/// An export Flint calls, with its WIT signature.
pub(crate) struct Export {
    /// The interface it is in (`""` for a function the world exports directly).
    pub interface: &'static str,
    pub function: &'static str,
    /// Its name as a core module exports it (`interface#function`), spelled
    /// out so that no call builds it.
    pub core_name: &'static str,
    pub params: &'static [Ty],
    pub result: Option<Ty>,
}

/// Instantiates `component`'s code (a reactor module's constructors
/// included) for one invocation.
pub(crate) fn start(
    engine: &Engine,
    store: &mut Store<GuestState>,
    component: &Component,
) -> Result<Live, GuestFailure> {
    match &component.code {
        Code::Module(module) => {
            let instance = instantiate(engine, store, module)?;
            initialize(store, &instance)?;
            Ok(Live::Module(instance))
        }
        Code::Component(image) => {
            let instance = image.instantiate(store).map_err(|e| {
                if let Some(hit) = store.data_mut().take_limit_hit() {
                    return GuestFailure::Limit(hit);
                }
                match store.data().limits.budget_refused {
                    true => GuestFailure::MemoryBudget,
                    false => GuestFailure::Instantiate(e.to_string()),
                }
            })?;
            Ok(Live::Component(instance, image.clone()))
        }
    }
}

impl Live {
    /// Calls `export` with WIT-typed `args`, metered.
    pub(crate) fn call(
        &mut self,
        store: &mut Store<GuestState>,
        export: &Export,
        args: &[Value],
    ) -> Result<Option<Value>, wasmi::Error> {
        match self {
            Live::Module(instance) => canon::call_export(
                store,
                instance,
                export.core_name,
                export.params,
                args,
                export.result,
                flint_engine::call_guest,
            ),
            Live::Component(instance, image) => instance.call(
                store,
                image,
                export.interface,
                export.function,
                export.params,
                args,
                export.result,
                flint_engine::call_guest,
            ),
        }
    }
}

/// A store for a Spin guest: stdout and stderr go to the log.
pub(crate) fn spin_store(
    engine: &Engine,
    component: &Component,
    limits: &InstanceLimits,
) -> Result<Store<GuestState>, GuestFailure> {
    Ok(new_store(engine, component, limits))
}

/// A reactor module (`wasm32-wasip1` cdylib) may need its constructors run first.
pub(crate) fn initialize(
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
pub(crate) fn finished(
    store: &mut Store<GuestState>,
    result: Result<(), wasmi::Error>,
) -> Result<(), GuestFailure> {
    if let Some(hit) = store.data_mut().take_limit_hit() {
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
pub(crate) fn call_entry(
    store: &mut Store<GuestState>,
    instance: &wasmi::Instance,
    name: &str,
) -> Result<(), GuestFailure> {
    let func = instance
        .get_func(&*store, name)
        .ok_or_else(|| GuestFailure::Instantiate(format!("no export `{name}`")))?;
    let result = flint_engine::call_guest(store, &func, &[], &mut []);
    finished(store, result)
}
