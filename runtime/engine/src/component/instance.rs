//! Instantiating a component in a store. Everything that can be decided
//! without a store was decided at load time ([`Resolved`]): which item each
//! core import is, through whatever instances of exports it was passed in,
//! and that every host function has the core type its importer declares. Per
//! instantiation this is a walk over indices: host functions bound to their
//! options, then the core instances in the component's order.

use std::collections::HashMap;

use wasmi::{Extern, ExternType, Func, FuncType, Instance, Memory, Store};

use super::ComponentImage;
use super::plan::{CoreFunc, CoreInstance, CoreItem, Plan, PlanError, ResourceOp};
use crate::canon::{Lifted, Lowering, StringEncoding};
use crate::{GuestState, Host};

/// Where a core import (or an item of the plan) really comes from, once
/// instances made of exports are seen through.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A core function the component makes: a lowering or a resource built-in.
    Made(u32),
    /// An export of a core instance created from a module.
    Export { instance: u32, name: String },
}

/// One step of instantiation: a module's instance with its imports in the
/// module's import order. Instances made of exports need no step.
#[derive(Debug)]
pub(crate) struct Step {
    pub instance: u32,
    pub module: u32,
    pub imports: Vec<Source>,
}

/// The plan resolved for instantiation.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub steps: Vec<Step>,
    pub memories: Vec<Source>,
    /// The core type each async built-in is imported as (`task.return`'s
    /// is its results', which only its importer declares).
    pub builtin_types: HashMap<u32, FuncType>,
}

/// Where a core item really comes from, through instances of exports.
fn item_source(plan: &Plan, item: CoreItem, depth: usize) -> Result<Source, PlanError> {
    let invalid = |what: &str| PlanError::Invalid(format!("{what} index out of range"));
    let export = |defs: &[super::plan::CoreExport], index: u32, what: &str| {
        let def = defs.get(index as usize).ok_or_else(|| invalid(what))?;
        export_source(plan, def.instance, &def.name, depth)
    };
    match item {
        CoreItem::Func(index) => match plan.core_funcs.get(index as usize) {
            Some(CoreFunc::Export { instance, name }) => {
                export_source(plan, *instance, name, depth)
            }
            Some(_) => Ok(Source::Made(index)),
            None => Err(invalid("core function")),
        },
        CoreItem::Memory(index) => export(&plan.core_memories, index, "memory"),
        CoreItem::Table(index) => export(&plan.core_tables, index, "table"),
        CoreItem::Global(index) => export(&plan.core_globals, index, "global"),
    }
}

fn export_source(
    plan: &Plan,
    instance: u32,
    name: &str,
    depth: usize,
) -> Result<Source, PlanError> {
    // Instances of exports only refer to earlier items, so this ends; the
    // bound guards against a plan that would not.
    if depth > plan.core_instances.len() {
        return Err(PlanError::Invalid("core aliases form a cycle".into()));
    }
    match plan.core_instances.get(instance as usize) {
        Some(CoreInstance::Instantiate { .. }) => Ok(Source::Export {
            instance,
            name: name.to_owned(),
        }),
        Some(CoreInstance::FromExports(items)) => {
            let (_, item) = items.iter().find(|(n, _)| n == name).ok_or_else(|| {
                PlanError::Invalid(format!("core instance {instance} has no export `{name}`"))
            })?;
            item_source(plan, *item, depth + 1)
        }
        None => Err(PlanError::Invalid(format!(
            "core instance {instance} out of range"
        ))),
    }
}

/// Resolves every core import of `plan`, checking the core type of each host
/// function against what its importing module declares.
pub(crate) fn resolve<H: Host>(
    plan: &Plan,
    modules: &[wasmi::Module],
    lowerings: &[Option<Lowering<GuestState<H>>>],
) -> Result<Resolved, PlanError> {
    let mut steps = Vec::new();
    let mut builtin_types = HashMap::new();
    for (index, instance) in plan.core_instances.iter().enumerate() {
        let CoreInstance::Instantiate { module, args } = instance else {
            continue;
        };
        let wasm = modules
            .get(*module as usize)
            .ok_or_else(|| PlanError::Invalid("module index out of range".into()))?;
        let mut imports = Vec::new();
        for import in wasm.imports() {
            let (_, arg) = args
                .iter()
                .find(|(name, _)| name == import.module())
                .ok_or_else(|| {
                    PlanError::Invalid(format!(
                        "core import `{}` has no instantiation argument",
                        import.module()
                    ))
                })?;
            let source = export_source(plan, *arg, import.name(), 0)?;
            let mismatch = || PlanError::Signature {
                import: format!("{}#{}", import.module(), import.name()),
                expected: format!("{:?}", import.ty()),
            };
            if let (Source::Made(f), ExternType::Func(want)) = (&source, import.ty()) {
                if let Some(Some(lowering)) = lowerings.get(*f as usize)
                    && !lowering.has_type(want)
                {
                    return Err(mismatch());
                }
                if let Some(CoreFunc::Builtin { op, .. }) = plan.core_funcs.get(*f as usize) {
                    if op.core_type().is_some_and(|t| &t != want) {
                        return Err(mismatch());
                    }
                    match builtin_types.get(f) {
                        Some(known) if known != want => return Err(mismatch()),
                        _ => {
                            builtin_types.insert(*f, want.clone());
                        }
                    }
                }
            }
            imports.push(source);
        }
        steps.push(Step {
            instance: index as u32,
            module: *module,
            imports,
        });
    }
    let memories = (0..plan.core_memories.len() as u32)
        .map(|m| item_source(plan, CoreItem::Memory(m), 0))
        .collect::<Result<_, _>>()?;
    Ok(Resolved {
        steps,
        memories,
        builtin_types,
    })
}

/// A live component: its core instances, and the functions made for it.
pub struct ComponentInstance {
    instances: Vec<Option<Instance>>,
    funcs: Vec<Option<Func>>,
    /// The memories found so far: most lowerings name the same one, and
    /// each lookup is one by export name.
    memories: Vec<Option<Memory>>,
}

fn fail(message: impl Into<String>) -> wasmi::Error {
    wasmi::Error::new(message.into())
}

/// A component instance being built (or its lifts being bound): what is
/// made so far, and the image it is made from.
struct Builder<'p, 'm, H: Host> {
    image: &'p ComponentImage<H>,
    made: &'m mut ComponentInstance,
}

impl<'p, H: Host> Builder<'p, '_, H> {
    fn source(
        &mut self,
        store: &mut Store<GuestState<H>>,
        source: &Source,
    ) -> Result<Extern, wasmi::Error> {
        match source {
            Source::Made(index) => Ok(Extern::Func(self.func(store, *index)?)),
            Source::Export { instance, name } => self.export(store, *instance, name),
        }
    }

    fn export(
        &self,
        store: &Store<GuestState<H>>,
        instance: u32,
        name: &str,
    ) -> Result<Extern, wasmi::Error> {
        self.made
            .instances
            .get(instance as usize)
            .copied()
            .flatten()
            .and_then(|i| i.get_export(store, name))
            .ok_or_else(|| fail(format!("core instance {instance} has no export `{name}`")))
    }

    fn memory(
        &mut self,
        store: &mut Store<GuestState<H>>,
        index: u32,
    ) -> Result<Memory, wasmi::Error> {
        if let Some(Some(memory)) = self.made.memories.get(index as usize) {
            return Ok(*memory);
        }
        let source = self.image.resolved.memories.get(index as usize);
        let source = source.ok_or_else(|| fail("memory index out of range"))?;
        let memory = self
            .source(store, source)?
            .into_memory()
            .ok_or_else(|| fail("a memory option that is not a memory"))?;
        if let Some(slot) = self.made.memories.get_mut(index as usize) {
            *slot = Some(memory);
        }
        Ok(memory)
    }

    fn func(&mut self, store: &mut Store<GuestState<H>>, index: u32) -> Result<Func, wasmi::Error> {
        if let Some(Some(func)) = self.made.funcs.get(index as usize) {
            return Ok(*func);
        }
        let image: &'p ComponentImage<H> = self.image;
        let plan = &image.plan;
        let def = plan.core_funcs.get(index as usize);
        let func = match def.ok_or_else(|| fail("core function index out of range"))? {
            CoreFunc::Export { instance, name } => self
                .export(store, *instance, name)?
                .into_func()
                .ok_or_else(|| fail(format!("`{name}` is not a function")))?,
            CoreFunc::Lower { options, .. } => {
                let lowering = lowering_of(image, index)?;
                let memory = options.memory.map(|m| self.memory(store, m)).transpose()?;
                let realloc = options.realloc.map(|f| self.func(store, f)).transpose()?;
                lowering.func(store, memory, realloc, options.encoding)
            }
            CoreFunc::HostResourceDrop { .. } => {
                let lowering = lowering_of(image, index)?;
                lowering.func(store, None, None, StringEncoding::Utf8)
            }
            CoreFunc::GuestResource { op, resource } => {
                let dtor = match (op, plan.guest_resources[*resource as usize].dtor) {
                    (ResourceOp::Drop, Some(dtor)) => Some(self.func(store, dtor)?),
                    _ => None,
                };
                super::resources::builtin(store, *op, *resource, dtor)
            }
            CoreFunc::Builtin { op, options } => {
                let ty = image
                    .resolved
                    .builtin_types
                    .get(&index)
                    .cloned()
                    .or_else(|| op.core_type())
                    .ok_or_else(|| fail("an async built-in no core module imports"))?;
                let memory = options.memory.map(|m| self.memory(store, m)).transpose()?;
                let realloc = options.realloc.map(|f| self.func(store, f)).transpose()?;
                super::concurrent::builtin(store, *op, ty, memory, realloc, options.encoding)
            }
        };
        if let Some(slot) = self.made.funcs.get_mut(index as usize) {
            *slot = Some(func);
        }
        Ok(func)
    }
}

fn lowering_of<H: Host>(
    image: &ComponentImage<H>,
    index: u32,
) -> Result<&Lowering<GuestState<H>>, wasmi::Error> {
    image
        .lowerings
        .get(index as usize)
        .and_then(Option::as_ref)
        .ok_or_else(|| fail("a lowered function without a host binding"))
}

impl ComponentInstance {
    /// Creates every core instance of `image` in `store`.
    pub(super) fn new<H: Host>(
        store: &mut Store<GuestState<H>>,
        image: &ComponentImage<H>,
    ) -> Result<Self, wasmi::Error> {
        let plan = &image.plan;
        let mut made = ComponentInstance {
            instances: vec![None; plan.core_instances.len()],
            funcs: vec![None; plan.core_funcs.len()],
            memories: vec![None; plan.core_memories.len()],
        };
        let mut builder = Builder {
            image,
            made: &mut made,
        };
        store
            .data_mut()
            .guest_resources
            .reset(plan.guest_resources.len());
        store.data_mut().tasks.reset();
        let mut imports = Vec::new();
        for step in &image.resolved.steps {
            imports.clear();
            for source in &step.imports {
                imports.push(builder.source(store, source)?);
            }
            // wasmi runs the module's start function, if any, as part of this.
            let instance =
                Instance::new(&mut *store, &image.modules[step.module as usize], &imports)?;
            builder.made.instances[step.instance as usize] = Some(instance);
        }
        Ok(made)
    }

    /// Core function `index` of the component, made for this instance.
    pub(super) fn core_func<H: Host>(
        &mut self,
        store: &mut Store<GuestState<H>>,
        image: &ComponentImage<H>,
        index: u32,
    ) -> Result<Func, wasmi::Error> {
        Builder { image, made: self }.func(store, index)
    }

    /// The lifted function `export` with its options bound to this instance.
    pub(super) fn lifted<H: Host>(
        &mut self,
        store: &mut Store<GuestState<H>>,
        image: &ComponentImage<H>,
        export: &super::plan::LiftedExport,
    ) -> Result<Lifted, wasmi::Error> {
        let mut builder = Builder { image, made: self };
        let func = builder.func(store, export.core_func)?;
        let options = &export.options;
        let memory = options
            .memory
            .map(|m| builder.memory(store, m))
            .transpose()?;
        let realloc = options
            .realloc
            .map(|f| builder.func(store, f))
            .transpose()?;
        let post_return = options
            .post_return
            .map(|f| builder.func(store, f))
            .transpose()?;
        Ok(Lifted {
            func,
            memory,
            realloc,
            post_return,
            encoding: options.encoding,
        })
    }
}
