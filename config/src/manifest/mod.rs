//! The Spin application manifest (`spin.toml`), version 2.
//!
//! Parsing happens in two stages. Deserialization (`schema.rs`) rejects
//! malformed TOML, unknown keys and wrongly typed values, one at a time as
//! serde allows. Validation (`validate.rs` and its helpers) then checks
//! everything that relates values to each other and reports every problem it
//! finds together.

mod component;
mod mqtt;
mod redis;
mod schema;
mod setting;
mod trigger;
mod trigger_ids;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::{ConfigError, Diagnostic, Location};
use crate::mqtt::{MqttBroker, MqttTrigger};
use crate::redis::{RedisServer, RedisTrigger};
use crate::route::Route;
use crate::source::{self, Source};

pub use crate::template::{TemplateError, expand_template, template_names};

/// A validated manifest. Inline components have been moved into
/// `components`, so every trigger names its component by id.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The manifest file, as given.
    pub path: PathBuf,
    /// The directory relative paths in the manifest are resolved against.
    pub dir: PathBuf,
    pub application: Application,
    pub variables: BTreeMap<String, Variable>,
    pub http_triggers: Vec<HttpTrigger>,
    pub mqtt_triggers: Vec<MqttTrigger>,
    pub redis_triggers: Vec<RedisTrigger>,
    pub components: BTreeMap<String, Component>,
}

impl Manifest {
    /// A diagnostic pointing into this manifest, for problems the runtime
    /// finds with a value later (a missing Wasm file, say).
    pub fn diagnostic(&self, location: Location, message: impl Into<String>) -> Diagnostic {
        location.diagnostic(&self.path, message)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub authors: Vec<String>,
    pub targets: Vec<String>,
    /// `[application.trigger.http] base`: a prefix for every route. Spin 2
    /// only; Spin 3 removed it.
    pub http_base: Option<String>,
    /// `[application.trigger.mqtt]`, if it gives an `address`; required
    /// when there are MQTT triggers.
    pub mqtt: Option<MqttBroker>,
    /// `[application.trigger.redis]`: the server of Redis triggers that do
    /// not name their own.
    pub redis: Option<RedisServer>,
}

/// An application variable (`[variables]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub description: Option<String>,
    /// Present exactly when `required` is false.
    pub default: Option<String>,
    pub required: bool,
    /// Its value must not be logged.
    pub secret: bool,
}

/// A `[[trigger.http]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTrigger {
    /// As written, or generated the way Spin does it:
    /// `<component>-http-trigger`, else `http-trigger<n>`.
    pub id: String,
    pub route: Route,
    pub route_location: Location,
    /// The component that handles the route; `None` for a static response.
    pub component: Option<String>,
    /// Where the trigger names (or defines) its component.
    pub component_location: Option<Location>,
    pub executor: Executor,
    pub static_response: Option<StaticResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executor {
    /// Spin's HTTP interface; the default, also written `type = "http"`.
    Spin,
    /// WAGI (CGI over WASI): the request comes in on stdin and environment
    /// variables, the response goes out on stdout.
    Wagi {
        /// The guest's argv, before `${SCRIPT_NAME}` and `${ARGS}` are
        /// replaced; `"${SCRIPT_NAME} ${ARGS}"` unless set.
        argv: String,
        /// Honoured up to Spin 2.7; Spin 3 always calls `_start`.
        entrypoint: Option<String>,
    },
}

/// A response the runtime sends itself, without running a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticResponse {
    pub status_code: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
}

/// A `[component.<id>]` table, or an inline component moved out of its
/// trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub id: String,
    /// Where the component is defined: its id in `[component.<id>]`, or the
    /// inline table.
    pub location: Location,
    /// The Wasm file, joined to the manifest's directory.
    pub source: PathBuf,
    pub source_location: Location,
    pub description: Option<String>,
    pub files: Vec<FilesMount>,
    /// Globs, relative to the manifest's directory, excluded from `files`.
    pub exclude_files: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// May contain `{{ variable }}` templates.
    pub allowed_outbound_hosts: Vec<String>,
    /// Deprecated Spin 1 form of `allowed_outbound_hosts`.
    pub allowed_http_hosts: Vec<String>,
    pub key_value_stores: Vec<String>,
    pub sqlite_databases: Vec<String>,
    pub ai_models: Vec<String>,
    /// Component variables; values may contain `{{ variable }}` templates.
    pub variables: BTreeMap<String, String>,
    pub build: Option<BuildConfig>,
    pub dependencies_inherit_configuration: bool,
    /// Component-model dependencies, not interpreted by Flint.
    pub dependencies: toml::Table,
    pub targets: Vec<String>,
    /// Settings for other tools, ignored.
    pub tool: toml::Table,
    /// Build profiles, ignored: Flint runs `source`.
    pub profile: toml::Table,
}

/// An entry of a component's `files`. Paths are relative to the manifest's
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilesMount {
    /// `"assets/**/*.png"`: matching files, at the same relative path under
    /// the guest's `/`.
    Pattern { glob: String, location: Location },
    /// `{ source = "static", destination = "/static" }`: a directory mapped
    /// to an absolute guest path.
    Placement {
        source: String,
        destination: String,
        location: Location,
    },
}

impl FilesMount {
    pub fn location(&self) -> Location {
        match self {
            Self::Pattern { location, .. } | Self::Placement { location, .. } => *location,
        }
    }
}

/// How `spin build` builds a component. Flint keeps it for tooling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildConfig {
    /// Run in order.
    pub commands: Vec<String>,
    pub workdir: Option<String>,
    pub watch: Vec<String>,
}

pub fn load_manifest(path: &Path) -> Result<Manifest, ConfigError> {
    parse_manifest(&source::read(path)?, path)
}

pub fn parse_manifest(text: &str, path: &Path) -> Result<Manifest, ConfigError> {
    validate::validate(&Source::new(text, path))
}

#[cfg(test)]
mod tests;
