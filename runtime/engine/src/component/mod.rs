//! Components (the component model's binary format) on wasmi, which runs
//! core modules only: a component is read once into a [`plan`] of core
//! instances, and each instantiation walks it, creating the core instances
//! in the component's order with `canon lower`ed imports bound to the host
//! function tables (the same tables core-module guests import) and `canon
//! lift`ed exports called through the same canonical ABI layer.
//!
//! Async exports (WASI 0.3) run as a task with its event loop in
//! [`concurrent`]; what Flint does not implement (threads, stream
//! forwarding, stackful async exports) is refused at load time by name.

mod concurrent;
mod instance;
mod plan;
mod resources;
mod types;

use std::borrow::Cow;
use std::collections::HashMap;

pub(crate) use concurrent::SUBTASK_RETURNED;
pub use concurrent::{
    ChannelId, FutureSink, OnReturn, SinkClosed, SourceFailure, SourceRead, StreamSink,
    StreamSource, Tasks,
};
pub use instance::ComponentInstance;
pub use plan::PlanError;
pub use resources::GuestResources;

use crate::canon::{HostFn, Lifted, Lowering, Ty, Value};
use crate::{GuestState, Host};

/// A component, validated, compiled and resolved against the host's
/// interfaces, ready to instantiate any number of times.
pub struct ComponentImage<H: Host> {
    plan: plan::Plan,
    modules: Vec<wasmi::Module>,
    /// For each core function, the host function a `canon lower` or
    /// `resource.drop` of an imported resource binds it to.
    lowerings: Vec<Option<Lowering<GuestState<H>>>>,
    /// Where every core import comes from.
    resolved: instance::Resolved,
    /// Exports by [`interface_key`] of their interface, then function name.
    exports: HashMap<String, HashMap<String, plan::LiftedExport>>,
    /// Some core module has a start function (guest code at instantiation).
    has_start: bool,
}

/// The name an interface is matched by: `wasi:http/types@0.2.6` and
/// `@0.2.0` are one interface (any 0.x.y serves 0.x, any x.y.z serves x, as
/// in wasmtime); pre-release versions match exactly.
pub fn interface_key(name: &str) -> Cow<'_, str> {
    let Some((path, version)) = name.split_once('@') else {
        return Cow::Borrowed(name);
    };
    if version.contains('-') {
        return Cow::Borrowed(name);
    }
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some(minor)) => Cow::Owned(format!("{path}@0.{minor}")),
        (Some(major), _) => Cow::Owned(format!("{path}@{major}")),
        _ => Cow::Borrowed(name),
    }
}

/// Host interfaces by [`interface_key`].
pub(crate) type Interfaces<H> = HashMap<String, &'static [HostFn<GuestState<H>>]>;

/// Reads, validates and resolves a component. Core function bodies are
/// left to wasmi, which validates each as it compiles it, on its first call.
pub(crate) fn load<H: Host>(
    engine: &wasmi::Engine,
    interfaces: &Interfaces<H>,
    bytes: &[u8],
) -> Result<ComponentImage<H>, PlanError> {
    validate(bytes, false)?;
    let plan = plan::plan(bytes)?;
    let mut modules = Vec::with_capacity(plan.modules.len());
    for (index, range) in plan.modules.iter().enumerate() {
        let module = wasmi::Module::new(engine, &bytes[range.clone()])
            .map_err(|e| PlanError::Invalid(format!("core module {index}: {e}")))?;
        modules.push(module);
    }
    let lowerings: Vec<_> = plan
        .core_funcs
        .iter()
        .map(|f| {
            let async_ = matches!(f, plan::CoreFunc::Lower { options, .. } if options.async_);
            Ok(bind(interfaces, f)?.map(|host| Lowering::new(host, async_)))
        })
        .collect::<Result<_, PlanError>>()?;
    let resolved = instance::resolve(&plan, &modules, &lowerings)?;
    let mut exports: HashMap<String, HashMap<String, plan::LiftedExport>> = HashMap::new();
    for (name, lifted) in &plan.exports {
        let (interface, function) = name.rsplit_once('#').unwrap_or(("", name));
        exports
            .entry(interface_key(interface).into_owned())
            .or_default()
            .insert(function.to_owned(), lifted.clone());
    }
    let has_start = plan
        .modules
        .iter()
        .any(|range| crate::has_start_section(&bytes[range.clone()]));
    Ok(ComponentImage {
        plan,
        modules,
        lowerings,
        resolved,
        exports,
        has_start,
    })
}

fn bind<H: Host>(
    interfaces: &Interfaces<H>,
    func: &plan::CoreFunc,
) -> Result<Option<&'static HostFn<GuestState<H>>>, PlanError> {
    let (interface, function) = match func {
        plan::CoreFunc::Lower {
            interface,
            function,
            ..
        } => (interface, Cow::Borrowed(function.as_str())),
        plan::CoreFunc::HostResourceDrop {
            interface,
            resource,
        } => (interface, Cow::Owned(format!("[resource-drop]{resource}"))),
        _ => return Ok(None),
    };
    interfaces
        .get(interface_key(interface).as_ref())
        .and_then(|table| table.iter().find(|f| f.name == function))
        .map(Some)
        .ok_or_else(|| PlanError::MissingImport {
            interface: interface.clone(),
            function: function.into_owned(),
        })
}

/// Validates the component section by section. Function bodies are wasmi's
/// to validate on each function's first call, unless `bodies` (`flint check`).
pub(crate) fn validate(bytes: &[u8], bodies: bool) -> Result<(), PlanError> {
    let invalid = |e: wasmparser::BinaryReaderError| PlanError::Invalid(e.to_string());
    let mut validator = wasmparser::Validator::new_with_features(
        wasmparser::WasmFeatures::default() | wasmparser::WasmFeatures::CM_ERROR_CONTEXT,
    );
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(invalid)?;
        if let wasmparser::ValidPayload::Func(func, body) =
            validator.payload(&payload).map_err(invalid)?
            && bodies
        {
            func.into_validator(Default::default())
                .validate(&body)
                .map_err(invalid)?;
        }
    }
    Ok(())
}

impl<H: Host> ComponentImage<H> {
    /// Every interface the component imports.
    pub fn imports(&self) -> &[String] {
        &self.plan.imports
    }

    /// Whether instantiating runs guest code (a core module's start function).
    pub fn has_start(&self) -> bool {
        self.has_start
    }

    /// Its core modules, in the component's order.
    pub fn modules(&self) -> &[wasmi::Module] {
        &self.modules
    }

    /// Whether the component exports `function` of `interface` (any
    /// compatible version), or `function` itself when `interface` is empty.
    pub fn exports(&self, interface: &str, function: &str) -> bool {
        self.export(interface, function).is_some()
    }

    /// The names the component exports, for errors that list them.
    pub fn export_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.plan.exports.keys().cloned().collect();
        names.sort();
        names
    }

    /// The export, or the error a call of a missing one is.
    fn exported(
        &self,
        interface: &str,
        function: &str,
    ) -> Result<&plan::LiftedExport, wasmi::Error> {
        self.export(interface, function).ok_or_else(|| {
            wasmi::Error::new(format!(
                "the component does not export {interface}#{function}"
            ))
        })
    }

    fn export(&self, interface: &str, function: &str) -> Option<&plan::LiftedExport> {
        self.exports
            .get(interface_key(interface).as_ref())
            .and_then(|functions| functions.get(function))
    }

    /// Creates the component's core instances in `store`.
    pub fn instantiate(
        &self,
        store: &mut wasmi::Store<GuestState<H>>,
    ) -> Result<ComponentInstance, wasmi::Error> {
        ComponentInstance::new(store, self)
    }
}

impl ComponentInstance {
    /// Calls exported `function` of `interface` with WIT-typed arguments
    /// through `invoke` (which meters it).
    #[allow(clippy::too_many_arguments)]
    pub fn call<H: Host>(
        &mut self,
        store: &mut wasmi::Store<GuestState<H>>,
        image: &ComponentImage<H>,
        interface: &str,
        function: &str,
        params: &'static [Ty],
        args: &[Value],
        result: Option<Ty>,
        invoke: crate::canon::Invoke<GuestState<H>>,
    ) -> Result<Option<Value>, wasmi::Error> {
        let export = image.exported(interface, function)?;
        if export.options.async_ {
            return Err(wasmi::Error::new(format!(
                "{interface}#{function} is an async export"
            )));
        }
        let lifted: Lifted = self.lifted(store, image, export)?;
        crate::canon::call_lifted(store, &lifted, function, params, args, result, invoke)
    }

    /// Calls an async export (lifted with a callback) and runs its task to
    /// the end; `on_return` gets its result when the guest returns it.
    #[allow(clippy::too_many_arguments)]
    pub fn call_async<H: Host>(
        &mut self,
        store: &mut wasmi::Store<GuestState<H>>,
        image: &ComponentImage<H>,
        interface: &str,
        function: &str,
        params: &'static [Ty],
        args: &[Value],
        result: Option<&'static Ty>,
        invoke: crate::canon::Invoke<GuestState<H>>,
        on_return: &mut concurrent::OnReturn<'_, H>,
    ) -> Result<(), wasmi::Error> {
        let export = image.exported(interface, function)?;
        let callback = export.options.callback.ok_or_else(|| {
            wasmi::Error::new(format!(
                "{interface}#{function} is not an async export with a callback"
            ))
        })?;
        let lifted: Lifted = self.lifted(store, image, export)?;
        let callback = self.core_func(store, image, callback)?;
        let flat = crate::canon::lower_args(store, &lifted, function, params, args)?;
        concurrent::run_task(
            store,
            &lifted.func,
            &callback,
            &flat,
            result,
            invoke,
            on_return,
        )
    }
}
