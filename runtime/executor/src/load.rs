//! Which executor a module is for, decided by its exports and checked
//! against what its trigger accepts, between the engine's compilation and
//! its link check.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use flint_engine::Loaded;
use flint_engine::component::ComponentImage;
use flint_host::{Engine, HostState};
use wasmi::Module;

use crate::Code;

/// The export a Spin SDK HTTP component is called through.
pub const SPIN_HTTP_EXPORT: &str = "wasi:http/incoming-handler@0.2.0#handle";

/// The export a Spin MQTT trigger guest (`spin:mqtt-trigger` world) is called through.
pub const SPIN_MQTT_EXPORT: &str = "handle-message";

/// The interface a Spin Redis trigger guest exports `handle-message` in:
/// unversioned, as both Spin SDKs build it and Spin calls it; the
/// `@2.0.0` spelling is taken as the same interface.
pub const SPIN_REDIS_INTERFACES: [&str; 2] = [
    "fermyon:spin/inbound-redis",
    "fermyon:spin/inbound-redis@2.0.0",
];
/// The same exports as a core module (spin-sdk 3's `#[redis_component]`) names them.
pub const SPIN_REDIS_EXPORTS: [&str; 2] = [
    "fermyon:spin/inbound-redis#handle-message",
    "fermyon:spin/inbound-redis@2.0.0#handle-message",
];

/// The interface a component's Spin HTTP handler is exported in (any 0.2.x).
pub const HTTP_HANDLER_INTERFACE: &str = "wasi:http/incoming-handler@0.2.0";
/// The WASI 0.3 HTTP export (an async function): at 0.3.0 (spin-sdk 7), or
/// at the release candidate spin-sdk 6 builds against (the same WIT).
pub const HTTP_ASYNC_HANDLER_INTERFACES: [&str; 2] = [
    "wasi:http/handler@0.3.0",
    "wasi:http/handler@0.3.0-rc-2026-03-15",
];

/// The interface a `wasm32-wasip2` program's `main` is exported in (any 0.2.x).
pub const CLI_RUN_INTERFACE: &str = "wasi:cli/run@0.2.0";

/// How a module is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GuestKind {
    /// WAGI: `_start`, CGI environment (or MQTT variables), stdin and stdout.
    Wagi,
    /// Spin SDK: `wasi:http/incoming-handler@0.2.0#handle`.
    SpinHttp,
    /// Spin SDK on WASI 0.3 (Spin 4 templates): `wasi:http/handler@0.3.0#handle`, async.
    SpinHttpAsync,
    /// Spin MQTT trigger plugin world: `handle-message`.
    SpinMqtt,
    /// Spin's Redis trigger: `fermyon:spin/inbound-redis#handle-message`.
    SpinRedis,
}

/// What an HTTP route with the WAGI executor runs.
pub const WAGI_ROUTE: &[GuestKind] = &[GuestKind::Wagi];
/// What an HTTP route with the Spin executor runs.
pub const SPIN_ROUTE: &[GuestKind] = &[GuestKind::SpinHttp, GuestKind::SpinHttpAsync];
/// What an MQTT trigger runs.
pub const MQTT_TRIGGER: &[GuestKind] = &[GuestKind::SpinMqtt, GuestKind::Wagi];
/// What a Redis trigger runs.
pub const REDIS_TRIGGER: &[GuestKind] = &[GuestKind::SpinRedis, GuestKind::Wagi];

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Engine(#[from] flint_engine::LoadError),
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
}

/// Reads, validates and compiles a core module or a component of an
/// accepted kind, checking every import against the host's interfaces so
/// that a missing host function fails at startup, not on the first request.
pub fn load_module(
    engine: &Engine,
    component: &str,
    path: &Path,
    accepted: &'static [GuestKind],
    memory_limit: usize,
) -> Result<(Code, GuestKind), LoadError> {
    let loaded = engine.load(component, path, memory_limit)?;
    let found = match &loaded {
        Loaded::Module(compiled) => module_kind(&compiled.module),
        Loaded::Component(image) => component_kind(image),
    };
    let Some(kind) = found.filter(|k| accepted.contains(k)) else {
        return Err(LoadError::WrongKind {
            component: component.to_owned(),
            path: path.to_owned(),
            expected: accepted,
            found,
        });
    };
    match loaded {
        Loaded::Module(compiled) => {
            engine.link_check(component, path, &compiled, memory_limit)?;
            Ok((Code::Module(compiled.module), kind))
        }
        Loaded::Component(image) => {
            engine.link_check_component(component, path, &image, memory_limit)?;
            Ok((Code::Component(Arc::from(image)), kind))
        }
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
    } else if SPIN_REDIS_EXPORTS.into_iter().any(exports) {
        Some(GuestKind::SpinRedis)
    } else if exports("_start") {
        Some(GuestKind::Wagi)
    } else {
        None
    }
}

/// The same for a component: `wasi:http/incoming-handler@0.2.x#handle`,
/// `handle-message`, `fermyon:spin/inbound-redis#handle-message`, or `wasi:cli/run@0.2.x#run` (a WAGI guest).
fn component_kind(image: &ComponentImage<HostState>) -> Option<GuestKind> {
    if image.exports(HTTP_HANDLER_INTERFACE, "handle") {
        Some(GuestKind::SpinHttp)
    } else if async_handler_interface(image).is_some() {
        Some(GuestKind::SpinHttpAsync)
    } else if image.exports("", SPIN_MQTT_EXPORT) {
        Some(GuestKind::SpinMqtt)
    } else if SPIN_REDIS_INTERFACES
        .iter()
        .any(|i| image.exports(i, "handle-message"))
    {
        Some(GuestKind::SpinRedis)
    } else if image.exports(CLI_RUN_INTERFACE, "run") {
        Some(GuestKind::Wagi)
    } else {
        None
    }
}

/// Which of [`HTTP_ASYNC_HANDLER_INTERFACES`] the component exports `handle` in.
pub(crate) fn async_handler_interface(image: &ComponentImage<HostState>) -> Option<&'static str> {
    HTTP_ASYNC_HANDLER_INTERFACES
        .into_iter()
        .find(|i| image.exports(i, "handle"))
}

fn entry_point(kind: GuestKind) -> &'static str {
    match kind {
        GuestKind::Wagi => "_start",
        GuestKind::SpinHttp => SPIN_HTTP_EXPORT,
        GuestKind::SpinHttpAsync => "wasi:http/handler@0.3.0#handle",
        GuestKind::SpinMqtt => SPIN_MQTT_EXPORT,
        GuestKind::SpinRedis => SPIN_REDIS_EXPORTS[0],
    }
}

fn caller_name(accepted: &[GuestKind]) -> &'static str {
    if accepted == MQTT_TRIGGER {
        "an MQTT trigger"
    } else if accepted == REDIS_TRIGGER {
        "a Redis trigger"
    } else if accepted == WAGI_ROUTE {
        "the WAGI executor"
    } else {
        "the Spin executor (the default when a trigger has no `executor`)"
    }
}

fn kind_hint(accepted: &[GuestKind], found: Option<GuestKind>) -> &'static str {
    match (accepted, found) {
        (SPIN_ROUTE, Some(GuestKind::Wagi)) => {
            "; it is a WAGI guest (it exports `_start` or `wasi:cli/run`): add `executor = { type = \"wagi\" }` to its trigger"
        }
        (WAGI_ROUTE, Some(GuestKind::SpinHttp)) => {
            "; it is a Spin SDK component: remove `executor = { type = \"wagi\" }` from its trigger"
        }
        (_, Some(GuestKind::SpinMqtt)) => {
            "; it is an MQTT trigger component (it exports `handle-message`): use it from a [[trigger.mqtt]]"
        }
        (_, Some(GuestKind::SpinRedis)) => {
            "; it is a Redis trigger component (it exports `fermyon:spin/inbound-redis#handle-message`): use it from a [[trigger.redis]]"
        }
        (MQTT_TRIGGER | REDIS_TRIGGER, Some(GuestKind::SpinHttp)) => {
            "; it is a Spin HTTP component: use it from a [[trigger.http]]"
        }
        _ => "",
    }
}
