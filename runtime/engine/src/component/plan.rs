//! Reading a component into a [`Plan`]: its core modules, the core instances
//! to create in order, where every core function, memory, table and global
//! comes from, and which lifted functions it exports. Everything is resolved
//! here, once per component, so that instantiation is a walk over indices.
//!
//! The component is validated by wasmparser first, so the index spaces and
//! types below can be trusted; what remains to refuse is what Flint does not
//! implement, each with the reason.

use std::collections::HashMap;
use std::ops::Range;

use std::rc::Rc;

use wasmparser::{
    CanonicalFunction, CanonicalOption, ComponentAlias, ComponentDefinedType, ComponentExternName,
    ComponentExternalKind, ComponentOuterAliasKind, ComponentType, ComponentTypeRef,
    ComponentValType, ExternalKind, Instance, InstanceTypeDeclaration, Parser, Payload,
    PrimitiveValType, TypeBounds,
};

use super::concurrent::{Builtin, ChannelOp, Elem};
use super::types::{intern, intern_cases, intern_fields};
use crate::canon::{StringEncoding, Ty};

/// Why a component cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Invalid(String),
    #[error("imports {interface}#{function}, which Flint does not provide")]
    MissingImport { interface: String, function: String },
    #[error("uses {0}, which Flint does not implement for components")]
    Unsupported(String),
    #[error("imports {import} as {expected}, a core type that does not match its WIT type")]
    Signature { import: String, expected: String },
}

fn invalid(e: impl std::fmt::Display) -> PlanError {
    PlanError::Invalid(e.to_string())
}

fn unsupported(what: impl Into<String>) -> PlanError {
    PlanError::Unsupported(what.into())
}

/// Where a core function comes from.
#[derive(Debug, Clone)]
pub(crate) enum CoreFunc {
    /// An export of a core instance.
    Export { instance: u32, name: String },
    /// `canon lower` of an imported function: the host binding (interface,
    /// function) and the lowering's options.
    Lower {
        interface: String,
        function: String,
        options: Options,
    },
    /// `canon resource.drop` of a resource type an imported interface defines:
    /// the host's `[resource-drop]<name>`.
    HostResourceDrop { interface: String, resource: String },
    /// `canon resource.new|rep|drop` of a resource the component defines.
    GuestResource { op: ResourceOp, resource: u32 },
    /// One of the async ABI's built-ins (tasks, waitables, streams, futures).
    Builtin { op: Builtin, options: Options },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResourceOp {
    New,
    Rep,
    Drop,
}

/// A core memory, table or global: always an export of a core instance.
#[derive(Debug, Clone)]
pub(crate) struct CoreExport {
    pub instance: u32,
    pub name: String,
}

/// One item of a core instance made from exports.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CoreItem {
    Func(u32),
    Memory(u32),
    Table(u32),
    Global(u32),
}

#[derive(Debug, Clone)]
pub(crate) enum CoreInstance {
    Instantiate {
        module: u32,
        args: Vec<(String, u32)>,
    },
    FromExports(Vec<(String, CoreItem)>),
}

/// `canon` options, with indices into the core index spaces.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub memory: Option<u32>,
    pub realloc: Option<u32>,
    pub post_return: Option<u32>,
    pub encoding: StringEncoding,
    /// `async`: a lowered import returns a status instead of its result, a
    /// lifted export delivers its result through `task.return`.
    pub async_: bool,
    /// The core function an async export's event loop calls back.
    pub callback: Option<u32>,
}

/// A resource type the component defines, with its destructor.
#[derive(Debug, Clone)]
pub(crate) struct GuestResourceType {
    pub dtor: Option<u32>,
}

/// A function the component exports, lifted from a core function.
#[derive(Debug, Clone)]
pub(crate) struct LiftedExport {
    pub core_func: u32,
    pub options: Options,
}

/// The component, resolved.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Byte ranges of the core modules, in module index order.
    pub modules: Vec<Range<usize>>,
    pub core_instances: Vec<CoreInstance>,
    pub core_funcs: Vec<CoreFunc>,
    pub core_memories: Vec<CoreExport>,
    pub core_tables: Vec<CoreExport>,
    pub core_globals: Vec<CoreExport>,
    pub guest_resources: Vec<GuestResourceType>,
    /// Every `canon lift`, in order; exports refer to them by index.
    lifts: Vec<LiftedExport>,
    /// Exported functions by `interface#function` (or `function` for a
    /// function the component exports directly).
    pub exports: HashMap<String, LiftedExport>,
    /// Every interface the component imports.
    pub imports: Vec<String>,
}

/// A component-level item, as the index spaces of the outermost component see it.
#[derive(Debug, Clone)]
enum Item {
    Func(FuncDef),
    Instance(InstanceDef),
    Type(TypeDef),
    /// Something Flint never needs to look into (a value, a component type…).
    Opaque,
}

#[derive(Debug, Clone)]
enum FuncDef {
    /// `function` of imported interface `interface`.
    Imported {
        interface: String,
        function: String,
    },
    Lifted(u32),
    /// An imported function that is not part of an interface.
    Bare(String),
}

#[derive(Debug, Clone)]
enum InstanceDef {
    /// An imported interface, with the types its instance type exports.
    Imported(String, Rc<HashMap<String, TypeDef>>),
    Exports(HashMap<String, Item>),
}

#[derive(Debug, Clone)]
enum TypeDef {
    HostResource {
        interface: String,
        resource: String,
    },
    GuestResource(u32),
    /// A value type whose layout Flint knows (what stream and future
    /// elements need when they are copied).
    Value(&'static Ty),
    /// `stream<T>` or `future<T>`.
    Channel {
        future: bool,
        elem: Elem,
    },
    /// An instance type: the types it exports, by name.
    Instance(Rc<HashMap<String, TypeDef>>),
    Other,
}

/// The component-level index spaces of one component (the outermost one, or
/// a nested one being inlined).
#[derive(Default)]
struct Scope<'a> {
    funcs: Vec<Item>,
    instances: Vec<Item>,
    types: Vec<Item>,
    components: Vec<&'a [u8]>,
    /// A nested component's imports, by name, as the instantiation supplied them.
    args: HashMap<String, Item>,
    exports: HashMap<String, Item>,
}

impl<'a> Scope<'a> {
    fn push(&mut self, kind: ComponentExternalKind, item: Item) -> Result<(), PlanError> {
        match kind {
            ComponentExternalKind::Func => self.funcs.push(item),
            ComponentExternalKind::Instance => self.instances.push(item),
            ComponentExternalKind::Type => self.types.push(item),
            ComponentExternalKind::Component => {
                return Err(unsupported("a component passed as a value"));
            }
            ComponentExternalKind::Module => return Err(unsupported("a core module import")),
            ComponentExternalKind::Value => return Err(unsupported("component values")),
        }
        Ok(())
    }

    fn get(&self, kind: ComponentExternalKind, index: u32) -> Result<Item, PlanError> {
        let space = match kind {
            ComponentExternalKind::Func => &self.funcs,
            ComponentExternalKind::Instance => &self.instances,
            ComponentExternalKind::Type => &self.types,
            _ => return Ok(Item::Opaque),
        };
        space
            .get(index as usize)
            .cloned()
            .ok_or_else(|| invalid(format!("{kind:?} index {index} out of range")))
    }
}

fn instance_export(instance: &Item, name: &str) -> Result<Item, PlanError> {
    match instance {
        Item::Instance(InstanceDef::Imported(interface, _)) => Ok(Item::Func(FuncDef::Imported {
            interface: interface.clone(),
            function: name.to_owned(),
        })),
        Item::Instance(InstanceDef::Exports(items)) => items
            .get(name)
            .cloned()
            .ok_or_else(|| invalid(format!("instance has no export `{name}`"))),
        _ => Err(invalid("alias of a non-instance")),
    }
}

/// An alias of a type exported by an imported interface: a value type its
/// instance type defines, or else one of its resources.
fn type_export(instance: &Item, name: &str) -> Result<Item, PlanError> {
    match instance {
        Item::Instance(InstanceDef::Imported(interface, types)) => {
            Ok(Item::Type(match types.get(name) {
                Some(def @ (TypeDef::Value(_) | TypeDef::Channel { .. })) => def.clone(),
                _ => TypeDef::HostResource {
                    interface: interface.clone(),
                    resource: name.to_owned(),
                },
            }))
        }
        Item::Instance(InstanceDef::Exports(items)) => Ok(items
            .get(name)
            .cloned()
            .unwrap_or(Item::Type(TypeDef::Other))),
        _ => Err(invalid("alias of a non-instance")),
    }
}

/// Builds the plan of the component in `bytes` (already validated).
pub(crate) fn plan(bytes: &[u8]) -> Result<Plan, PlanError> {
    let mut plan = Plan {
        modules: Vec::new(),
        core_instances: Vec::new(),
        core_funcs: Vec::new(),
        core_memories: Vec::new(),
        core_tables: Vec::new(),
        core_globals: Vec::new(),
        guest_resources: Vec::new(),
        lifts: Vec::new(),
        exports: HashMap::new(),
        imports: Vec::new(),
    };
    let scope = walk(bytes, 0, &mut plan, Scope::default(), &[])?;
    for (name, item) in scope.exports {
        match item {
            Item::Func(FuncDef::Lifted(index)) => export_lifted(&mut plan, name, index)?,
            Item::Instance(InstanceDef::Exports(items)) => {
                for (function, item) in items {
                    if let Item::Func(FuncDef::Lifted(index)) = item {
                        export_lifted(&mut plan, format!("{name}#{function}"), index)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(plan)
}

fn export_lifted(plan: &mut Plan, name: String, index: u32) -> Result<(), PlanError> {
    let lift = plan.lifts.get(index as usize).cloned();
    let lift = lift.ok_or_else(|| invalid("lifted function index out of range"))?;
    plan.exports.insert(name, lift);
    Ok(())
}

fn options(options: &[CanonicalOption], what: &str) -> Result<Options, PlanError> {
    let mut out = Options::default();
    for option in options {
        match option {
            CanonicalOption::UTF8 => out.encoding = StringEncoding::Utf8,
            CanonicalOption::UTF16 => out.encoding = StringEncoding::Utf16,
            CanonicalOption::CompactUTF16 => out.encoding = StringEncoding::CompactUtf16,
            CanonicalOption::Memory(m) => out.memory = Some(*m),
            CanonicalOption::Realloc(f) => out.realloc = Some(*f),
            CanonicalOption::PostReturn(f) => out.post_return = Some(*f),
            CanonicalOption::Async => out.async_ = true,
            CanonicalOption::Callback(f) => out.callback = Some(*f),
            CanonicalOption::CoreType(_) | CanonicalOption::Gc => {
                return Err(unsupported(format!("GC-typed canonical options ({what})")));
            }
        }
    }
    Ok(out)
}

/// Walks one component's sections. `depth` 0 is the outermost component,
/// whose core index spaces are the plan's; a nested component may only
/// re-export what it is given (as wit-component's type-ascribing wrappers
/// do), so it has no core items of its own.
fn walk<'a>(
    bytes: &'a [u8],
    depth: usize,
    plan: &mut Plan,
    mut scope: Scope<'a>,
    outer: &[&Scope<'a>],
) -> Result<Scope<'a>, PlanError> {
    let mut parser = Parser::new(0);
    let mut offset = 0;
    loop {
        let (consumed, payload) = match parser.parse(&bytes[offset..], true).map_err(invalid)? {
            wasmparser::Chunk::Parsed { consumed, payload } => (consumed, payload),
            wasmparser::Chunk::NeedMoreData(_) => return Err(invalid("truncated component")),
        };
        offset += consumed;
        let core_allowed = |what: &str| match depth {
            0 => Ok(()),
            _ => Err(unsupported(format!("a nested component with {what}"))),
        };
        match payload {
            Payload::Version { .. } | Payload::CustomSection(_) => {}
            Payload::End(_) => break,
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                core_allowed("core modules")?;
                // The parser has stepped over the module; the bytes are ours to skip.
                let range = usize_range(&unchecked_range)?;
                offset += range.len();
                plan.modules.push(range);
            }
            Payload::ComponentSection {
                unchecked_range, ..
            } => {
                let range = usize_range(&unchecked_range)?;
                offset += range.len();
                scope.components.push(&bytes[range]);
            }
            Payload::CoreTypeSection(_) => {}
            Payload::InstanceSection(reader) => {
                core_allowed("core instances")?;
                for instance in reader {
                    plan.core_instances.push(match instance.map_err(invalid)? {
                        Instance::Instantiate { module_index, args } => CoreInstance::Instantiate {
                            module: module_index,
                            args: args.iter().map(|a| (a.name.to_owned(), a.index)).collect(),
                        },
                        Instance::FromExports(exports) => CoreInstance::FromExports(
                            exports
                                .iter()
                                .map(|e| {
                                    let item = match e.kind {
                                        ExternalKind::Func | ExternalKind::FuncExact => {
                                            CoreItem::Func(e.index)
                                        }
                                        ExternalKind::Memory => CoreItem::Memory(e.index),
                                        ExternalKind::Table => CoreItem::Table(e.index),
                                        ExternalKind::Global => CoreItem::Global(e.index),
                                        ExternalKind::Tag => {
                                            return Err(unsupported("exception tags"));
                                        }
                                    };
                                    Ok((e.name.to_owned(), item))
                                })
                                .collect::<Result<_, _>>()?,
                        ),
                    });
                }
            }
            Payload::ComponentTypeSection(reader) => {
                for ty in reader {
                    let def = match ty.map_err(invalid)? {
                        ComponentType::Resource { dtor, .. } => {
                            core_allowed("resource types")?;
                            plan.guest_resources.push(GuestResourceType { dtor });
                            TypeDef::GuestResource(plan.guest_resources.len() as u32 - 1)
                        }
                        ComponentType::Defined(def) => defined(&scope.types, &def),
                        ComponentType::Instance(decls) => instance_type(&scope, &decls),
                        _ => TypeDef::Other,
                    };
                    scope.types.push(Item::Type(def));
                }
            }
            Payload::ComponentImportSection(reader) => {
                for import in reader {
                    let import = import.map_err(invalid)?;
                    let name = import_name(&import.name);
                    let name = name.as_ref();
                    if depth > 0 {
                        let item = scope.args.get(name).cloned().unwrap_or(Item::Opaque);
                        let item = match (import.ty, item) {
                            // A type import without a matching argument is a
                            // type bound Flint does not need to track.
                            (ComponentTypeRef::Type(_), Item::Opaque) => Item::Type(TypeDef::Other),
                            (_, item) => item,
                        };
                        push_typed(&mut scope, import.ty, item)?;
                        continue;
                    }
                    let item = match import.ty {
                        ComponentTypeRef::Instance(ty) => {
                            plan.imports.push(name.to_owned());
                            let types = match scope.types.get(ty as usize) {
                                Some(Item::Type(TypeDef::Instance(types))) => types.clone(),
                                _ => Rc::default(),
                            };
                            Item::Instance(InstanceDef::Imported(name.to_owned(), types))
                        }
                        ComponentTypeRef::Func(_) => Item::Func(FuncDef::Bare(name.to_owned())),
                        ComponentTypeRef::Type(_) => Item::Type(TypeDef::Other),
                        other => {
                            return Err(unsupported(format!(
                                "importing `{name}` as {other:?} (only instances, functions and types)"
                            )));
                        }
                    };
                    push_typed(&mut scope, import.ty, item)?;
                }
            }
            Payload::ComponentAliasSection(reader) => {
                for alias in reader {
                    match alias.map_err(invalid)? {
                        ComponentAlias::InstanceExport {
                            kind,
                            instance_index,
                            name,
                        } => {
                            let instance =
                                scope.get(ComponentExternalKind::Instance, instance_index)?;
                            let item = match kind {
                                ComponentExternalKind::Type => type_export(&instance, name)?,
                                ComponentExternalKind::Func | ComponentExternalKind::Instance => {
                                    instance_export(&instance, name)?
                                }
                                _ => Item::Opaque,
                            };
                            scope.push(kind, item)?;
                        }
                        ComponentAlias::CoreInstanceExport {
                            kind,
                            instance_index,
                            name,
                        } => {
                            core_allowed("core aliases")?;
                            let export = CoreExport {
                                instance: instance_index,
                                name: name.to_owned(),
                            };
                            match kind {
                                ExternalKind::Func | ExternalKind::FuncExact => {
                                    plan.core_funcs.push(CoreFunc::Export {
                                        instance: export.instance,
                                        name: export.name,
                                    })
                                }
                                ExternalKind::Memory => plan.core_memories.push(export),
                                ExternalKind::Table => plan.core_tables.push(export),
                                ExternalKind::Global => plan.core_globals.push(export),
                                ExternalKind::Tag => return Err(unsupported("exception tags")),
                            }
                        }
                        ComponentAlias::Outer { kind, count, index } => {
                            let target = outer
                                .len()
                                .checked_sub(count as usize)
                                .and_then(|i| outer.get(i));
                            match kind {
                                ComponentOuterAliasKind::Type => {
                                    let item = match (count, target) {
                                        (0, _) => scope.get(ComponentExternalKind::Type, index)?,
                                        (_, Some(outer)) => {
                                            outer.get(ComponentExternalKind::Type, index)?
                                        }
                                        _ => Item::Type(TypeDef::Other),
                                    };
                                    scope.types.push(item);
                                }
                                ComponentOuterAliasKind::Component => {
                                    let component = match (count, target) {
                                        (0, _) => scope.components.get(index as usize).copied(),
                                        (_, Some(outer)) => {
                                            outer.components.get(index as usize).copied()
                                        }
                                        _ => None,
                                    };
                                    scope.components.push(component.ok_or_else(|| {
                                        invalid("outer alias of a component out of range")
                                    })?);
                                }
                                ComponentOuterAliasKind::CoreModule
                                | ComponentOuterAliasKind::CoreType => {
                                    if kind == ComponentOuterAliasKind::CoreModule {
                                        return Err(unsupported("outer aliases of core modules"));
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Payload::ComponentCanonicalSection(reader) => {
                for canon in reader {
                    canonical(canon.map_err(invalid)?, depth, plan, &mut scope)?;
                }
            }
            Payload::ComponentInstanceSection(reader) => {
                for instance in reader {
                    let def = match instance.map_err(invalid)? {
                        wasmparser::ComponentInstance::FromExports(exports) => {
                            let mut items = HashMap::new();
                            for e in exports.iter() {
                                items.insert(
                                    e.name.full_name().into_owned(),
                                    scope.get(e.kind, e.index)?,
                                );
                            }
                            InstanceDef::Exports(items)
                        }
                        wasmparser::ComponentInstance::Instantiate {
                            component_index,
                            args,
                        } => {
                            let nested = *scope
                                .components
                                .get(component_index as usize)
                                .ok_or_else(|| invalid("component index out of range"))?;
                            let mut inner = Scope::default();
                            for arg in args.iter() {
                                inner
                                    .args
                                    .insert(arg.name.to_owned(), scope.get(arg.kind, arg.index)?);
                            }
                            let mut chain: Vec<&Scope<'a>> = outer.to_vec();
                            chain.push(&scope);
                            let inner = walk(nested, depth + 1, plan, inner, &chain)?;
                            InstanceDef::Exports(inner.exports)
                        }
                    };
                    scope.instances.push(Item::Instance(def));
                }
            }
            Payload::ComponentExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    let item = scope.get(export.kind, export.index)?;
                    scope
                        .exports
                        .insert(export.name.full_name().into_owned(), item.clone());
                    // An export introduces a new index (the exported item, possibly
                    // with an ascribed type), as in the binary format.
                    scope.push(export.kind, item)?;
                }
            }
            Payload::ComponentStartSection { .. } => {
                return Err(unsupported("a component start function"));
            }
            other => {
                if depth == 0 {
                    return Err(invalid(format!(
                        "unexpected section in a component: {:?}",
                        section_name(&other)
                    )));
                }
            }
        }
    }
    Ok(scope)
}

fn usize_range(range: &Range<u64>) -> Result<Range<usize>, PlanError> {
    let start = usize::try_from(range.start).map_err(invalid)?;
    let end = usize::try_from(range.end).map_err(invalid)?;
    Ok(start..end)
}

fn section_name(payload: &Payload<'_>) -> String {
    let debug = format!("{payload:?}");
    debug
        .split([' ', '(', '{'])
        .next()
        .unwrap_or("?")
        .to_owned()
}

/// Puts an imported item into the index space its type names.
fn push_typed<'a>(
    scope: &mut Scope<'a>,
    ty: ComponentTypeRef,
    item: Item,
) -> Result<(), PlanError> {
    match ty {
        ComponentTypeRef::Func(_) => scope.funcs.push(item),
        ComponentTypeRef::Instance(_) => scope.instances.push(item),
        ComponentTypeRef::Type(TypeBounds::Eq(_) | TypeBounds::SubResource) => {
            scope.types.push(item)
        }
        ComponentTypeRef::Component(_) => {
            return Err(unsupported("a component import"));
        }
        ComponentTypeRef::Module(_) => return Err(unsupported("a core module import")),
        ComponentTypeRef::Value(_) => return Err(unsupported("component values")),
    }
    Ok(())
}

fn canonical(
    canon: CanonicalFunction,
    depth: usize,
    plan: &mut Plan,
    scope: &mut Scope<'_>,
) -> Result<(), PlanError> {
    if depth > 0 {
        return Err(unsupported("canonical functions in a nested component"));
    }
    let resource = |scope: &Scope<'_>, index: u32| scope.get(ComponentExternalKind::Type, index);
    match canon {
        CanonicalFunction::Lift {
            core_func_index,
            options: opts,
            ..
        } => {
            let options = options(&opts, "a lifted export")?;
            plan.lifts.push(LiftedExport {
                core_func: core_func_index,
                options,
            });
            scope
                .funcs
                .push(Item::Func(FuncDef::Lifted(plan.lifts.len() as u32 - 1)));
        }
        CanonicalFunction::Lower {
            func_index,
            options: opts,
        } => {
            let func = match scope.get(ComponentExternalKind::Func, func_index)? {
                Item::Func(FuncDef::Imported {
                    interface,
                    function,
                }) => {
                    let options = options(&opts, &format!("{interface}#{function}"))?;
                    CoreFunc::Lower {
                        interface,
                        function,
                        options,
                    }
                }
                Item::Func(FuncDef::Bare(name)) => {
                    return Err(unsupported(format!("the imported function `{name}`")));
                }
                Item::Func(FuncDef::Lifted(_)) => {
                    return Err(unsupported(
                        "lowering its own lifted function (component-internal calls)",
                    ));
                }
                _ => return Err(invalid("lowering a non-function")),
            };
            plan.core_funcs.push(func);
        }
        CanonicalFunction::ResourceDrop { resource: index } => {
            let func = match resource(scope, index)? {
                Item::Type(TypeDef::HostResource {
                    interface,
                    resource,
                }) => CoreFunc::HostResourceDrop {
                    interface,
                    resource,
                },
                Item::Type(TypeDef::GuestResource(resource)) => CoreFunc::GuestResource {
                    op: ResourceOp::Drop,
                    resource,
                },
                _ => return Err(invalid("resource.drop of a non-resource type")),
            };
            plan.core_funcs.push(func);
        }
        CanonicalFunction::ResourceNew { resource: index }
        | CanonicalFunction::ResourceRep { resource: index } => {
            let op = match canon {
                CanonicalFunction::ResourceNew { .. } => ResourceOp::New,
                _ => ResourceOp::Rep,
            };
            let Item::Type(TypeDef::GuestResource(resource)) = resource(scope, index)? else {
                return Err(invalid(
                    "resource.new/rep of a resource the component does not define",
                ));
            };
            plan.core_funcs
                .push(CoreFunc::GuestResource { op, resource });
        }
        other => {
            let op = builtin(scope, &other)?;
            let options = match &other {
                CanonicalFunction::TaskReturn { options: o, .. }
                | CanonicalFunction::StreamRead { options: o, .. }
                | CanonicalFunction::StreamWrite { options: o, .. }
                | CanonicalFunction::FutureRead { options: o, .. }
                | CanonicalFunction::FutureWrite { options: o, .. }
                | CanonicalFunction::ErrorContextNew { options: o }
                | CanonicalFunction::ErrorContextDebugMessage { options: o } => {
                    options(o, "an async built-in")?
                }
                CanonicalFunction::WaitableSetWait { memory }
                | CanonicalFunction::WaitableSetPoll { memory } => Options {
                    memory: Some(*memory),
                    ..Options::default()
                },
                _ => Options::default(),
            };
            plan.core_funcs.push(CoreFunc::Builtin { op, options });
        }
    }
    Ok(())
}

/// The async ABI's built-in `canon` describes, or why Flint refuses it.
fn builtin(scope: &Scope<'_>, canon: &CanonicalFunction) -> Result<Builtin, PlanError> {
    use CanonicalFunction as C;
    let channel = |ty: u32, op: ChannelOp| -> Result<Builtin, PlanError> {
        match scope.get(ComponentExternalKind::Type, ty)? {
            Item::Type(TypeDef::Channel { future, elem }) => {
                Ok(Builtin::Channel { future, op, elem })
            }
            _ => Err(invalid("a stream or future built-in of another type")),
        }
    };
    Ok(match *canon {
        C::TaskReturn { .. } => Builtin::TaskReturn,
        C::TaskCancel => Builtin::TaskCancel,
        C::ContextGet { slot, .. } => Builtin::ContextGet(slot),
        C::ContextSet { slot, .. } => Builtin::ContextSet(slot),
        C::BackpressureInc | C::BackpressureDec => Builtin::Backpressure,
        C::ThreadYield => Builtin::Yield,
        C::SubtaskDrop => Builtin::SubtaskDrop,
        C::SubtaskCancel { .. } => Builtin::SubtaskCancel,
        C::StreamNew { ty } | C::FutureNew { ty } => channel(ty, ChannelOp::New)?,
        C::StreamRead { ty, .. } | C::FutureRead { ty, .. } => channel(ty, ChannelOp::Read)?,
        C::StreamWrite { ty, .. } | C::FutureWrite { ty, .. } => channel(ty, ChannelOp::Write)?,
        C::StreamCancelRead { ty, .. } | C::FutureCancelRead { ty, .. } => {
            channel(ty, ChannelOp::CancelRead)?
        }
        C::StreamCancelWrite { ty, .. } | C::FutureCancelWrite { ty, .. } => {
            channel(ty, ChannelOp::CancelWrite)?
        }
        C::StreamDropReadable { ty } | C::FutureDropReadable { ty } => {
            channel(ty, ChannelOp::DropReadable)?
        }
        C::StreamDropWritable { ty } | C::FutureDropWritable { ty } => {
            channel(ty, ChannelOp::DropWritable)?
        }
        C::ErrorContextNew { .. } => Builtin::ErrorContextNew,
        C::ErrorContextDebugMessage { .. } => Builtin::ErrorContextDebugMessage,
        C::ErrorContextDrop => Builtin::ErrorContextDrop,
        C::WaitableSetNew => Builtin::SetNew,
        C::WaitableSetWait { .. } => Builtin::SetWait,
        C::WaitableSetPoll { .. } => Builtin::SetPoll,
        C::WaitableSetDrop => Builtin::SetDrop,
        C::WaitableJoin => Builtin::Join,
        ref other => {
            let name = format!("{other:?}");
            let name = name.split([' ', '(', '{']).next().unwrap_or("?").to_owned();
            return Err(unsupported(format!(
                "the canonical built-in `{name}` (threads and stream forwarding are not supported)"
            )));
        }
    })
}

/// The name an import is bound by: the interface it implements when it is
/// a labelled import of one (`[implements=<a:b/c>]label`), else its name.
fn import_name<'a>(name: &ComponentExternName<'a>) -> std::borrow::Cow<'a, str> {
    name.full_implements().unwrap_or_else(|| name.full_name())
}

/// A defined type, as far as Flint needs to know it.
fn defined(types: &[Item], def: &ComponentDefinedType<'_>) -> TypeDef {
    let channel = |future, elem: &Option<ComponentValType>| TypeDef::Channel {
        future,
        elem: match elem {
            None => Elem::Unit,
            Some(ty) => val_ty(types, ty).map_or(Elem::Unknown, |t| Elem::Known(intern(t))),
        },
    };
    let ty = match def {
        ComponentDefinedType::Future(elem) => return channel(true, elem),
        ComponentDefinedType::Stream(elem) => return channel(false, elem),
        ComponentDefinedType::Primitive(p) => Some(primitive(*p)),
        ComponentDefinedType::Record(fields) => fields
            .iter()
            .map(|(_, t)| val_ty(types, t))
            .collect::<Option<Vec<_>>>()
            .map(|f| Ty::Tuple(intern_fields(f))),
        ComponentDefinedType::Tuple(fields) => fields
            .iter()
            .map(|t| val_ty(types, t))
            .collect::<Option<Vec<_>>>()
            .map(|f| Ty::Tuple(intern_fields(f))),
        ComponentDefinedType::Variant(cases) => cases
            .iter()
            .map(|c| match &c.ty {
                None => Some(None),
                Some(t) => val_ty(types, t).map(Some),
            })
            .collect::<Option<Vec<_>>>()
            .map(|c| Ty::Variant(intern_cases(c))),
        ComponentDefinedType::List(t) => val_ty(types, t).map(|t| Ty::List(intern(t))),
        ComponentDefinedType::Flags(names) => u8::try_from(names.len()).ok().map(Ty::Flags),
        ComponentDefinedType::Enum(names) => {
            Some(Ty::Variant(intern_cases(vec![None; names.len()])))
        }
        ComponentDefinedType::Option(t) => {
            val_ty(types, t).map(|t| Ty::Variant(intern_cases(vec![None, Some(t)])))
        }
        ComponentDefinedType::Result { ok, err } => {
            let case = |t: &Option<ComponentValType>| match t {
                None => Some(None),
                Some(t) => val_ty(types, t).map(Some),
            };
            match (case(ok), case(err)) {
                (Some(ok), Some(err)) => Some(Ty::Variant(intern_cases(vec![ok, err]))),
                _ => None,
            }
        }
        ComponentDefinedType::Own(_) | ComponentDefinedType::Borrow(_) => Some(Ty::Handle),
        ComponentDefinedType::Map(..) | ComponentDefinedType::FixedLengthList(..) => None,
    };
    ty.map_or(TypeDef::Other, |t| TypeDef::Value(intern(t)))
}

/// A value type's layout, when Flint knows it.
fn val_ty(types: &[Item], ty: &ComponentValType) -> Option<Ty> {
    match ty {
        ComponentValType::Primitive(p) => Some(primitive(*p)),
        ComponentValType::Type(index) => match types.get(*index as usize)? {
            Item::Type(TypeDef::Value(ty)) => Some(**ty),
            // Stream and future ends are handles.
            Item::Type(TypeDef::Channel { .. }) => Some(Ty::Handle),
            _ => None,
        },
    }
}

fn primitive(p: PrimitiveValType) -> Ty {
    match p {
        PrimitiveValType::Bool => Ty::Bool,
        PrimitiveValType::S8 => Ty::S8,
        PrimitiveValType::U8 => Ty::U8,
        PrimitiveValType::S16 => Ty::S16,
        PrimitiveValType::U16 => Ty::U16,
        PrimitiveValType::S32 => Ty::S32,
        PrimitiveValType::U32 => Ty::U32,
        PrimitiveValType::S64 => Ty::S64,
        PrimitiveValType::U64 => Ty::U64,
        PrimitiveValType::F32 => Ty::F32,
        PrimitiveValType::F64 => Ty::F64,
        PrimitiveValType::Char => Ty::Char,
        PrimitiveValType::String => Ty::String,
        PrimitiveValType::ErrorContext => Ty::Handle,
    }
}

/// The types an instance type exports (an imported interface's value types,
/// which its stream and future elements may use), in the instance type's own
/// index space.
fn instance_type(scope: &Scope<'_>, decls: &[InstanceTypeDeclaration<'_>]) -> TypeDef {
    let mut types: Vec<Item> = Vec::new();
    let mut exports = HashMap::new();
    for decl in decls {
        match decl {
            InstanceTypeDeclaration::Type(ComponentType::Defined(def)) => {
                types.push(Item::Type(defined(&types, def)));
            }
            InstanceTypeDeclaration::Type(_) => types.push(Item::Type(TypeDef::Other)),
            InstanceTypeDeclaration::Alias(ComponentAlias::Outer {
                kind: ComponentOuterAliasKind::Type,
                count: 1,
                index,
            }) => types.push(
                scope
                    .types
                    .get(*index as usize)
                    .cloned()
                    .unwrap_or(Item::Type(TypeDef::Other)),
            ),
            InstanceTypeDeclaration::Alias(ComponentAlias::Outer {
                kind: ComponentOuterAliasKind::Type,
                ..
            })
            | InstanceTypeDeclaration::Alias(ComponentAlias::InstanceExport {
                kind: ComponentExternalKind::Type,
                ..
            }) => types.push(Item::Type(TypeDef::Other)),
            InstanceTypeDeclaration::Export {
                name,
                ty: ComponentTypeRef::Type(bounds),
            } => {
                let item = match bounds {
                    TypeBounds::Eq(index) => types
                        .get(*index as usize)
                        .cloned()
                        .unwrap_or(Item::Type(TypeDef::Other)),
                    TypeBounds::SubResource => Item::Type(TypeDef::Other),
                };
                if let Item::Type(def) = &item {
                    exports.insert(name.full_name().into_owned(), def.clone());
                }
                types.push(item);
            }
            _ => {}
        }
    }
    TypeDef::Instance(Rc::new(exports))
}
