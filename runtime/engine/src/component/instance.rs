//! Instantiating a component's plan in a store: core instances in the order
//! the component gives, each import found through the instance it was given
//! as, lowered functions made into host functions bound to their options.

use wasmi::{Extern, ExternType, Func, FuncType, Instance, Memory, Store};

use super::plan::{CoreFunc, CoreInstance, CoreItem, Options, ResourceOp};
use super::{ComponentImage, Lifted};
use crate::canon::{self, StringEncoding};
use crate::{GuestState, Host};

/// A core instance: a real wasmi instance, or one made of exports.
enum Made {
    Real(Instance),
    Exports(Vec<(String, Extern)>),
}

/// A live component: its core instances, and what its exports need.
pub struct ComponentInstance {
    instances: Vec<Made>,
    funcs: Vec<Option<Func>>,
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

impl<H: Host> Builder<'_, '_, H> {
    fn export(
        &self,
        store: &Store<GuestState<H>>,
        instance: u32,
        name: &str,
    ) -> Result<Extern, wasmi::Error> {
        let made =
            self.made.instances.get(instance as usize).ok_or_else(|| {
                fail(format!("core instance {instance} is used before it exists"))
            })?;
        let found = match made {
            Made::Real(instance) => instance.get_export(store, name),
            Made::Exports(items) => items.iter().find(|(n, _)| n == name).map(|(_, e)| *e),
        };
        found.ok_or_else(|| fail(format!("core instance {instance} has no export `{name}`")))
    }

    fn memory(&self, store: &Store<GuestState<H>>, index: u32) -> Result<Memory, wasmi::Error> {
        let def = self.image.plan.core_memories.get(index as usize);
        let def = def.ok_or_else(|| fail("memory index out of range"))?;
        self.export(store, def.instance, &def.name)?
            .into_memory()
            .ok_or_else(|| fail(format!("`{}` is not a memory", def.name)))
    }

    fn func(&mut self, store: &mut Store<GuestState<H>>, index: u32) -> Result<Func, wasmi::Error> {
        if let Some(Some(func)) = self.made.funcs.get(index as usize) {
            return Ok(*func);
        }
        let plan = &self.image.plan;
        let def = plan.core_funcs.get(index as usize);
        let func = match def.ok_or_else(|| fail("core function index out of range"))? {
            CoreFunc::Export { instance, name } => self
                .export(store, *instance, name)?
                .into_func()
                .ok_or_else(|| fail(format!("`{name}` is not a function")))?,
            CoreFunc::Lower { options, .. } => {
                let host = self.image.bindings[index as usize]
                    .ok_or_else(|| fail("lowered function without a host binding"))?;
                let (memory, realloc, encoding) = self.lowering(store, options)?;
                canon::lowered(store, host, memory, realloc, encoding)
            }
            CoreFunc::HostResourceDrop { .. } => {
                let host = self.image.bindings[index as usize]
                    .ok_or_else(|| fail("resource.drop without a host binding"))?;
                canon::lowered(store, host, None, None, StringEncoding::Utf8)
            }
            CoreFunc::GuestResource { op, resource } => {
                let dtor = match (op, plan.guest_resources[*resource as usize].dtor) {
                    (ResourceOp::Drop, Some(dtor)) => Some(self.func(store, dtor)?),
                    _ => None,
                };
                super::resources::builtin(store, *op, *resource, dtor)
            }
        };
        if let Some(slot) = self.made.funcs.get_mut(index as usize) {
            *slot = Some(func);
        }
        Ok(func)
    }

    fn lowering(
        &mut self,
        store: &mut Store<GuestState<H>>,
        options: &Options,
    ) -> Result<(Option<Memory>, Option<Func>, StringEncoding), wasmi::Error> {
        let memory = options.memory.map(|m| self.memory(store, m)).transpose()?;
        let realloc = options.realloc.map(|f| self.func(store, f)).transpose()?;
        Ok((memory, realloc, options.encoding))
    }

    fn item(
        &mut self,
        store: &mut Store<GuestState<H>>,
        item: CoreItem,
    ) -> Result<Extern, wasmi::Error> {
        let plan = &self.image.plan;
        let aliased = |defs: &[super::plan::CoreExport], index: u32| {
            defs.get(index as usize)
                .cloned()
                .ok_or_else(|| fail("core index out of range"))
        };
        Ok(match item {
            CoreItem::Func(index) => Extern::Func(self.func(store, index)?),
            CoreItem::Memory(index) => Extern::Memory(self.memory(store, index)?),
            CoreItem::Table(index) => {
                let def = aliased(&plan.core_tables, index)?;
                self.export(store, def.instance, &def.name)?
            }
            CoreItem::Global(index) => {
                let def = aliased(&plan.core_globals, index)?;
                self.export(store, def.instance, &def.name)?
            }
        })
    }

    fn instantiate(
        &mut self,
        store: &mut Store<GuestState<H>>,
        module: u32,
        args: &[(String, u32)],
    ) -> Result<Instance, wasmi::Error> {
        let module = self
            .image
            .modules
            .get(module as usize)
            .ok_or_else(|| fail("module index out of range"))?;
        let mut imports = Vec::new();
        for import in module.imports() {
            let (_, instance) = args
                .iter()
                .find(|(name, _)| name == import.module())
                .ok_or_else(|| {
                    fail(format!(
                        "core import `{}` has no instantiation argument",
                        import.module()
                    ))
                })?;
            let found = self.export(store, *instance, import.name())?;
            if let (ExternType::Func(want), Extern::Func(func)) = (import.ty(), &found) {
                let got = func.ty(&*store);
                if !same_signature(want, &got) {
                    return Err(fail(format!(
                        "`{}` `{}` is imported as {want:?}, but Flint implements it as {got:?}",
                        import.module(),
                        import.name()
                    )));
                }
            }
            imports.push(found);
        }
        // wasmi runs the module's start function, if any, as part of this.
        Instance::new(&mut *store, module, &imports)
    }
}

fn same_signature(a: &FuncType, b: &FuncType) -> bool {
    a.params() == b.params() && a.results() == b.results()
}

impl ComponentInstance {
    /// Creates every core instance of `image` in `store`.
    pub(super) fn new<H: Host>(
        store: &mut Store<GuestState<H>>,
        image: &ComponentImage<H>,
    ) -> Result<Self, wasmi::Error> {
        let plan = &image.plan;
        let mut made = ComponentInstance {
            instances: Vec::with_capacity(plan.core_instances.len()),
            funcs: vec![None; plan.core_funcs.len()],
        };
        let mut builder = Builder {
            image,
            made: &mut made,
        };
        store
            .data_mut()
            .guest_resources
            .reset(plan.guest_resources.len());
        for instance in &plan.core_instances {
            let made = match instance {
                CoreInstance::Instantiate { module, args } => {
                    Made::Real(builder.instantiate(store, *module, args)?)
                }
                CoreInstance::FromExports(items) => {
                    let mut exports = Vec::with_capacity(items.len());
                    for (name, item) in items {
                        exports.push((name.clone(), builder.item(store, *item)?));
                    }
                    Made::Exports(exports)
                }
            };
            builder.made.instances.push(made);
        }
        Ok(made)
    }

    /// The lifted function `name` (`interface#function`) with its options
    /// bound to this instance.
    pub(super) fn lifted<H: Host>(
        &mut self,
        store: &mut Store<GuestState<H>>,
        image: &ComponentImage<H>,
        export: &super::plan::LiftedExport,
    ) -> Result<Lifted, wasmi::Error> {
        let mut builder = Builder { image, made: self };
        let func = builder.func(store, export.core_func)?;
        let (memory, realloc, encoding) = builder.lowering(store, &export.options)?;
        let post_return = export
            .options
            .post_return
            .map(|f| builder.func(store, f))
            .transpose()?;
        Ok(Lifted {
            func,
            memory,
            realloc,
            post_return,
            encoding,
        })
    }
}
