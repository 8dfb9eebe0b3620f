//! The Wasm engine: one `wasmi::Engine` and `Linker` for the process, and the
//! startup checks that turn a component's `source` into a compiled module.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmi::{CompilationMode, Config, Linker, Module};
use wasmi_wasi::WasiCtx;

use crate::capabilities::Capabilities;
use crate::guest::RunBudget;
use crate::host::HostState;
use crate::limiter::GuestLimiter;

/// Per-invocation host state: a guest sees only what is put here.
pub struct GuestState {
    pub wasi: WasiCtx,
    pub limits: GuestLimiter,
    pub host: HostState,
    pub run: RunBudget,
}

/// The export a Spin SDK HTTP component is called through.
pub const SPIN_HTTP_EXPORT: &str = "wasi:http/incoming-handler@0.2.0#handle";

/// The export a Spin MQTT trigger guest (`spin:mqtt-trigger` world) is called through.
pub const SPIN_MQTT_EXPORT: &str = "handle-message";

/// How a module is entered: decided by its exports, checked against what
/// its trigger accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GuestKind {
    /// WAGI: `_start`, CGI environment (or MQTT variables), stdin and stdout.
    Wagi,
    /// Spin SDK: `wasi:http/incoming-handler@0.2.0#handle`.
    SpinHttp,
    /// Spin MQTT trigger plugin world: `handle-message`.
    SpinMqtt,
}

/// What an HTTP route with the WAGI executor runs.
pub const WAGI_ROUTE: &[GuestKind] = &[GuestKind::Wagi];
/// What an HTTP route with the Spin executor runs.
pub const SPIN_ROUTE: &[GuestKind] = &[GuestKind::SpinHttp];
/// What an MQTT trigger runs.
pub const MQTT_TRIGGER: &[GuestKind] = &[GuestKind::SpinMqtt, GuestKind::Wagi];

pub struct Engine {
    pub engine: wasmi::Engine,
    pub linker: Linker<GuestState>,
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
    #[error(
        "component `{component}`: {} is a WebAssembly component; Flint runs core modules on wasmi, so build it for `wasm32-wasip1` instead",
        path.display()
    )]
    ComponentBinary { component: String, path: PathBuf },
    #[error("component `{component}`: {} is not valid WebAssembly: {message}", path.display())]
    Invalid {
        component: String,
        path: PathBuf,
        message: String,
    },
    #[error(
        "component `{component}`: {} does not export {}, which {} calls{}",
        path.display(),
        expected.iter().map(|k| format!("`{}`", entry_point(*k))).collect::<Vec<_>>().join(" or "),
        caller_name(expected),
        kind_hint(expected, *found)
    )]
    WrongKind {
        component: String,
        path: PathBuf,
        expected: &'static [GuestKind],
        found: Option<GuestKind>,
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

impl Engine {
    /// `fuel`: meter instructions, so invocations can be bounded in CPU and time.
    pub fn new(fuel: bool) -> anyhow::Result<Self> {
        let mut config = Config::default();
        // Validate everything at startup, translate each function on its first call.
        config.compilation_mode(CompilationMode::LazyTranslation);
        config.consume_fuel(fuel);
        let engine = wasmi::Engine::new(&config);
        let mut linker = Linker::new(&engine);
        wasmi_wasi::add_to_linker(&mut linker, |state: &mut GuestState| &mut state.wasi)?;
        crate::host::add_to_linker(&mut linker)?;
        Ok(Self { engine, linker })
    }

    /// Reads, validates and compiles a module of the given kind, checking
    /// every import against the linker so that a missing host function fails
    /// at startup, not on the first request.
    pub fn load_module(
        &self,
        component: &str,
        path: &Path,
        accepted: &'static [GuestKind],
        memory_limit: usize,
    ) -> Result<(Module, GuestKind), LoadError> {
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
        if bytes.get(6..8) == Some(&[1, 0]) {
            let (component, path) = err_ctx();
            return Err(LoadError::ComponentBinary { component, path });
        }
        let module = Module::new(&self.engine, &bytes).map_err(|e| {
            let (component, path) = err_ctx();
            LoadError::Invalid {
                component,
                path,
                message: e.to_string(),
            }
        })?;
        for export in module.exports() {
            if let wasmi::ExternType::Memory(memory) = export.ty() {
                let pages = memory.minimum();
                // Flint does not enable custom page sizes: pages are 64 KiB.
                let declared = pages.saturating_mul(64 * 1024);
                if declared > memory_limit as u64 {
                    let (component, path) = err_ctx();
                    return Err(LoadError::MemoryTooLarge {
                        component,
                        path,
                        pages,
                        declared,
                        memory_limit,
                    });
                }
            }
        }
        let found = module_kind(&module);
        let Some(kind) = found.filter(|k| accepted.contains(k)) else {
            let (component, path) = err_ctx();
            return Err(LoadError::WrongKind {
                component,
                path,
                expected: accepted,
                found,
            });
        };
        // Instantiating links every import, so a missing host function fails
        // here rather than on the first request. It runs no guest code unless the
        // module has a start section, in which case linking is left to the first
        // request: a hostile start function must not run (or hang) at startup.
        if !has_start_section(&bytes) {
            let mut store = wasmi::Store::new(
                &self.engine,
                GuestState {
                    wasi: wasmi_wasi::WasiCtxBuilder::new().build(),
                    limits: GuestLimiter::new(memory_limit, usize::MAX, None),
                    host: HostState::new(Arc::new(Capabilities::none(component)), 0, memory_limit),
                    run: RunBudget::unlimited(),
                },
            );
            store.limiter(|s| &mut s.limits);
            if let Err(e) = self.linker.instantiate_and_start(&mut store, &module) {
                let (component, path) = err_ctx();
                return Err(LoadError::Instantiate {
                    component,
                    path,
                    memory_limit,
                    message: e.to_string(),
                });
            }
        }
        Ok((module, kind))
    }
}

/// What a module's exports say it is; a module exporting both entry points
/// counts as a Spin component.
fn module_kind(module: &Module) -> Option<GuestKind> {
    let exports = |name| matches!(module.get_export(name), Some(wasmi::ExternType::Func(_)));
    if exports(SPIN_HTTP_EXPORT) {
        Some(GuestKind::SpinHttp)
    } else if exports(SPIN_MQTT_EXPORT) {
        Some(GuestKind::SpinMqtt)
    } else if exports("_start") {
        Some(GuestKind::Wagi)
    } else {
        None
    }
}

fn entry_point(kind: GuestKind) -> &'static str {
    match kind {
        GuestKind::Wagi => "_start",
        GuestKind::SpinHttp => SPIN_HTTP_EXPORT,
        GuestKind::SpinMqtt => SPIN_MQTT_EXPORT,
    }
}

fn caller_name(accepted: &[GuestKind]) -> &'static str {
    if accepted == MQTT_TRIGGER {
        "an MQTT trigger"
    } else if accepted == WAGI_ROUTE {
        "the WAGI executor"
    } else {
        "the Spin executor (the default when a trigger has no `executor`)"
    }
}

fn kind_hint(accepted: &[GuestKind], found: Option<GuestKind>) -> &'static str {
    match (accepted, found) {
        (SPIN_ROUTE, Some(GuestKind::Wagi)) => {
            "; it is a WAGI module (it exports `_start`): add `executor = { type = \"wagi\" }` to its trigger"
        }
        (WAGI_ROUTE, Some(GuestKind::SpinHttp)) => {
            "; it is a Spin SDK component: remove `executor = { type = \"wagi\" }` from its trigger"
        }
        (_, Some(GuestKind::SpinMqtt)) => {
            "; it is an MQTT trigger component (it exports `handle-message`): use it from a [[trigger.mqtt]]"
        }
        (MQTT_TRIGGER, Some(GuestKind::SpinHttp)) => {
            "; it is a Spin HTTP component: use it from a [[trigger.http]]"
        }
        _ => "",
    }
}

/// Whether a (validated) module has a start section (id 8), found by walking
/// the top-level sections.
fn has_start_section(bytes: &[u8]) -> bool {
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
