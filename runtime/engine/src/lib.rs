//! Flint's Wasm engine: one `wasmi::Engine` and `Linker` for the process,
//! module loading with startup checks, the canonical ABI ([`canon`]),
//! invocation under limits ([`invoke`], [`limiter`]) and the worker pool
//! ([`pool`]). It knows nothing of Spin, HTTP or MQTT: the per-instance host
//! state is the type parameter `H`, and host interfaces arrive through
//! [`Engine::register`], one function table per interface.

pub mod canon;
pub mod component;
pub mod invoke;
pub mod limiter;
pub mod metrics;
pub mod pool;

use std::path::{Path, PathBuf};

use wasmi::errors::LinkerError;
use wasmi::{CompilationMode, Config, Instance, Linker, Module, Store};

pub use invoke::{InstanceLimits, LimitHit, RunBudget, call_guest, fuel_used};
use limiter::GuestLimiter;

/// What the host layer's per-instance state must offer the engine.
pub trait Host: Send + Sized + 'static {
    /// State with no permissions and no guest I/O, which a module is linked
    /// against when it is checked at startup.
    fn for_link_check(component: &str, memory_limit: usize) -> Self;
}

/// Per-invocation state inside a `Store`: the engine's limits and CPU budget,
/// and the host's state `H`. A guest sees only what `H` gives it.
pub struct GuestState<H> {
    pub limits: GuestLimiter,
    pub run: RunBudget,
    pub host: H,
    /// Resources a component defines itself (empty for a core module).
    pub guest_resources: component::GuestResources,
    /// The async ABI's state: the task, streams, futures, waitable sets.
    pub tasks: component::Tasks,
}

impl<H> canon::HasTasks for GuestState<H> {
    fn tasks_mut(&mut self) -> &mut component::Tasks {
        &mut self.tasks
    }
}

impl<H> GuestState<H> {
    /// The CPU bound this invocation hit, if any (taken, so it is reported once).
    pub fn take_limit_hit(&mut self) -> Option<LimitHit> {
        self.run.hit.take()
    }
}

pub struct Engine<H: 'static> {
    engine: wasmi::Engine,
    linker: Linker<GuestState<H>>,
    /// The registered interfaces, for binding components' imports.
    interfaces: component::Interfaces<H>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("component `{component}`: cannot read {}: {source}", path.display())]
    Read {
        component: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("component `{component}`: {} is not a WebAssembly file (no `\\0asm` header)", path.display())]
    NotWasm { component: String, path: PathBuf },
    #[error("component `{component}`: {}: {reason}", path.display())]
    Component {
        component: String,
        path: PathBuf,
        reason: component::PlanError,
    },
    #[error("component `{component}`: {} is not valid WebAssembly: {message}", path.display())]
    Invalid {
        component: String,
        path: PathBuf,
        message: String,
    },
    #[error(
        "component `{component}`: {} declares {declared} bytes of initial memory ({pages} pages), more than instance_memory_bytes = {memory_limit}",
        path.display()
    )]
    MemoryTooLarge {
        component: String,
        path: PathBuf,
        pages: u64,
        declared: u64,
        memory_limit: usize,
    },
    #[error(
        "component `{component}`: {} cannot be instantiated (imports Flint provides, instance_memory_bytes = {memory_limit}): {message}",
        path.display()
    )]
    Instantiate {
        component: String,
        path: PathBuf,
        memory_limit: usize,
        message: String,
    },
}

/// A validated, compiled module, ready for [`Engine::link_check`].
pub struct Compiled {
    pub module: Module,
    has_start: bool,
}

/// Why a new instance did not start.
#[derive(Debug, thiserror::Error)]
pub enum InstantiateError {
    /// The shared guest memory budget had no room: the request was unlucky,
    /// not the guest wrong.
    #[error("the guest memory budget is in use by other instances")]
    MemoryBudget,
    #[error("{0}")]
    Failed(String),
}

impl<H: Host> Engine<H> {
    /// An engine whose linker has no imports yet. `fuel`: meter
    /// instructions, so invocations can be bounded in CPU and time.
    pub fn new(fuel: bool) -> Self {
        let mut config = Config::default();
        // Each function is validated and translated on its first call, in one
        // pass: validating every body up front was most of the start-up of a
        // large module (two thirds of loading a 12 MB JavaScript component),
        // for functions most requests never call. What loading still checks
        // (the module's structure: sections, types, imports, exports, the
        // bounds of every body) is what a corrupt or truncated file breaks.
        // `flint check` (and a deploy's check) validates every body too
        // (`validate_bodies`); under `flint up` an invalid body is refused
        // when first called, with wasmi's validation error, trapping that
        // invocation.
        config.compilation_mode(CompilationMode::Lazy);
        config.consume_fuel(fuel);
        let engine = wasmi::Engine::new(&config);
        let linker = Linker::new(&engine);
        Self {
            engine,
            linker,
            interfaces: Default::default(),
        }
    }

    /// Adds one host interface: every function of its table under the import
    /// module `interface` (e.g. `wasi:http/types@0.2.0`).
    pub fn register(
        &mut self,
        interface: &str,
        functions: &'static [canon::HostFn<GuestState<H>>],
    ) -> Result<(), LinkerError> {
        self.interfaces
            .insert(component::interface_key(interface).into_owned(), functions);
        canon::register(&mut self.linker, interface, functions)
    }

    /// The linker, for interfaces that bring their own wasmi bindings (WASI
    /// preview 1, `wasi_snapshot_preview1`, as plain wasmi host functions).
    pub fn linker_mut(&mut self) -> &mut Linker<GuestState<H>> {
        &mut self.linker
    }

    /// Reads, validates and compiles a core module or a component, refusing
    /// one that declares more initial memory than an instance may have.
    pub fn load(
        &self,
        component: &str,
        path: &Path,
        memory_limit: usize,
    ) -> Result<Loaded<H>, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            component: component.to_owned(),
            path: path.to_owned(),
            source,
        })?;
        let err_ctx = || (component.to_owned(), path.to_owned());
        if bytes.get(..4) != Some(b"\0asm") {
            let (component, path) = err_ctx();
            return Err(LoadError::NotWasm { component, path });
        }
        // Bytes 4..8 are version + layer; layer 1 marks a component-model binary.
        if bytes.get(6..8) != Some(&[1, 0]) {
            return self
                .compile_module(component, path, &bytes, memory_limit)
                .map(Loaded::Module);
        }
        let image = component::load(&self.engine, &self.interfaces, &bytes).map_err(|e| {
            let (component, path) = err_ctx();
            LoadError::Component {
                component,
                path,
                reason: e,
            }
        })?;
        for module in image.modules() {
            check_memory(module, memory_limit).map_err(|(pages, declared)| {
                let (component, path) = err_ctx();
                LoadError::MemoryTooLarge {
                    component,
                    path,
                    pages,
                    declared,
                    memory_limit,
                }
            })?;
        }
        Ok(Loaded::Component(Box::new(image)))
    }

    /// Validates every function body of the core module or component at
    /// `path`, which loading leaves to each function's first call, so that
    /// `flint check` refuses a module a request would find invalid.
    pub fn validate_bodies(&self, component: &str, path: &Path) -> Result<(), LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            component: component.to_owned(),
            path: path.to_owned(),
            source,
        })?;
        let result = match bytes.get(6..8) == Some(&[1, 0]) {
            true => component::validate(&bytes, true).map_err(|e| e.to_string()),
            false => Module::validate(&self.engine, &bytes).map_err(|e| e.to_string()),
        };
        result.map_err(|message| LoadError::Invalid {
            component: component.to_owned(),
            path: path.to_owned(),
            message,
        })
    }

    /// [`Engine::load`] for a file that must be a core module.
    pub fn compile(
        &self,
        component: &str,
        path: &Path,
        memory_limit: usize,
    ) -> Result<Compiled, LoadError> {
        match self.load(component, path, memory_limit)? {
            Loaded::Module(compiled) => Ok(compiled),
            Loaded::Component(_) => Err(LoadError::Invalid {
                component: component.to_owned(),
                path: path.to_owned(),
                message: "a component where a core module is needed".to_owned(),
            }),
        }
    }

    fn compile_module(
        &self,
        component: &str,
        path: &Path,
        bytes: &[u8],
        memory_limit: usize,
    ) -> Result<Compiled, LoadError> {
        let err_ctx = || (component.to_owned(), path.to_owned());
        let module = Module::new(&self.engine, bytes).map_err(|e| {
            let (component, path) = err_ctx();
            LoadError::Invalid {
                component,
                path,
                message: e.to_string(),
            }
        })?;
        check_memory(&module, memory_limit).map_err(|(pages, declared)| {
            let (component, path) = err_ctx();
            LoadError::MemoryTooLarge {
                component,
                path,
                pages,
                declared,
                memory_limit,
            }
        })?;
        Ok(Compiled {
            module,
            has_start: has_start_section(bytes),
        })
    }

    /// Instantiates a component once with no permissions, so that an import
    /// whose core signature differs from Flint's fails at startup. As for
    /// core modules, a component with a start function is left to its
    /// first request.
    pub fn link_check_component(
        &self,
        component: &str,
        path: &Path,
        image: &component::ComponentImage<H>,
        memory_limit: usize,
    ) -> Result<(), LoadError> {
        if image.has_start() {
            return Ok(());
        }
        let mut store = self.check_store(component, memory_limit);
        image
            .instantiate(&mut store)
            .map(drop)
            .map_err(|e| LoadError::Instantiate {
                component: component.to_owned(),
                path: path.to_owned(),
                memory_limit,
                message: e.to_string(),
            })
    }

    fn check_store(&self, component: &str, memory_limit: usize) -> Store<GuestState<H>> {
        let mut store = Store::new(
            &self.engine,
            GuestState {
                limits: GuestLimiter::new(memory_limit, usize::MAX, None),
                run: RunBudget::unlimited(),
                host: H::for_link_check(component, memory_limit),
                guest_resources: Default::default(),
                tasks: Default::default(),
            },
        );
        store.limiter(|s| &mut s.limits);
        store
    }

    /// Links every import by instantiating once, so that a missing host
    /// function fails at startup rather than on the first request. It runs no
    /// guest code unless the module has a start section, in which case
    /// linking is left to the first request: a hostile start function must
    /// not run (or hang) at startup.
    pub fn link_check(
        &self,
        component: &str,
        path: &Path,
        compiled: &Compiled,
        memory_limit: usize,
    ) -> Result<(), LoadError> {
        if compiled.has_start {
            return Ok(());
        }
        let mut store = self.check_store(component, memory_limit);
        match self
            .linker
            .instantiate_and_start(&mut store, &compiled.module)
        {
            Ok(_) => Ok(()),
            Err(e) => Err(LoadError::Instantiate {
                component: component.to_owned(),
                path: path.to_owned(),
                memory_limit,
                message: e.to_string(),
            }),
        }
    }

    /// A store for one invocation: `host` plus the instance's memory and
    /// table caps, its share of the memory budget and its CPU budget.
    pub fn new_store(&self, host: H, limits: &InstanceLimits) -> Store<GuestState<H>> {
        let state = GuestState {
            limits: GuestLimiter::new(
                limits.memory_bytes,
                limits.table_elements,
                limits.memory_budget.clone(),
            ),
            run: RunBudget::new(limits),
            host,
            guest_resources: Default::default(),
            tasks: Default::default(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store
    }

    /// Instantiates `module` in `store` and runs its start section, if any.
    pub fn instantiate(
        &self,
        store: &mut Store<GuestState<H>>,
        module: &Module,
    ) -> Result<Instance, InstantiateError> {
        self.linker
            .instantiate_and_start(&mut *store, module)
            .map_err(|e| match store.data().limits.budget_refused {
                true => InstantiateError::MemoryBudget,
                false => InstantiateError::Failed(e.to_string()),
            })
    }
}

/// A module's exported memory that declares more initial memory than
/// `memory_limit`, as (pages, bytes).
fn check_memory(module: &Module, memory_limit: usize) -> Result<(), (u64, u64)> {
    for export in module.exports() {
        if let wasmi::ExternType::Memory(memory) = export.ty() {
            let pages = memory.minimum();
            // Flint does not enable custom page sizes: pages are 64 KiB.
            let declared = pages.saturating_mul(64 * 1024);
            if declared > memory_limit as u64 {
                return Err((pages, declared));
            }
        }
    }
    Ok(())
}

/// A core module or a component, as [`Engine::load`] read it.
pub enum Loaded<H: Host> {
    Module(Compiled),
    Component(Box<component::ComponentImage<H>>),
}

/// Whether a (validated) module has a start section (id 8), found by walking
/// the top-level sections.
pub(crate) fn has_start_section(bytes: &[u8]) -> bool {
    let mut pos = 8;
    while let Some(&id) = bytes.get(pos) {
        let Some((size, len)) = read_leb_u32(&bytes[pos + 1..]) else {
            return false;
        };
        if id == 8 {
            return true;
        }
        pos += 1 + len + size as usize;
    }
    false
}

fn read_leb_u32(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    for (i, &b) in bytes.iter().take(5).enumerate() {
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_start_sections() {
        let header = b"\0asm\x01\0\0\0".to_vec();
        assert!(!has_start_section(&header));
        // A custom section (id 0, 3 bytes), then a start section (id 8).
        let mut with_start = header.clone();
        with_start.extend_from_slice(&[0, 3, 1, b'x', 0, 8, 1, 0]);
        assert!(has_start_section(&with_start));
        let mut custom_only = header;
        custom_only.extend_from_slice(&[0, 3, 1, b'x', 0]);
        assert!(!has_start_section(&custom_only));
    }
}
