//! The manifest as written, mirroring Spin's v2 schema
//! (crates/manifest/src/schema/v2.rs and common.rs, crates/http/src/config.rs).
//!
//! Like Spin, every table denies unknown keys, so typos are errors rather
//! than silently ignored settings. Values that later checks must point at are
//! `Spanned`. Spin's untagged enums (string-or-table fields) are hand-written
//! visitors here instead: serde buffers untagged input, which would lose
//! every location inside it.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

/// Read first, on its own, so that a manifest of another version gets one
/// clear error instead of a list of keys that version 2 does not know.
#[derive(Deserialize)]
pub(super) struct VersionProbe {
    pub spin_manifest_version: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    /// Already checked by [`VersionProbe`].
    #[serde(rename = "spin_manifest_version")]
    _version: IgnoredAny,
    pub application: RawApplication,
    #[serde(default)]
    pub variables: BTreeMap<Spanned<String>, Spanned<RawVariable>>,
    pub trigger: RawTriggers,
    #[serde(default)]
    pub component: BTreeMap<Spanned<String>, RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApplication {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub trigger: RawAppTriggers,
    /// Settings for other tools; Spin ignores them and so does Flint.
    #[serde(default, rename = "tool")]
    _tool: IgnoredAny,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAppTriggers {
    pub http: Option<RawAppHttp>,
    pub mqtt: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAppHttp {
    pub base: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVariable {
    pub description: Option<String>,
    pub default: Option<Spanned<String>>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

/// `[[trigger.<type>]]` arrays by type. Spin allows any type (triggers are
/// plugins); Flint records the ones it does not run so that each can be
/// reported where it is written.
#[derive(Default)]
pub(super) struct RawTriggers {
    pub http: Vec<Spanned<RawHttpTrigger>>,
    /// Opaque until the MQTT trigger is typed.
    pub mqtt: Vec<toml::Table>,
    pub unsupported: Vec<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawTriggers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TriggersVisitor;

        impl<'de> Visitor<'de> for TriggersVisitor {
            type Value = RawTriggers;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of trigger types, such as `[[trigger.http]]`")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTriggers, A::Error> {
                let mut triggers = RawTriggers::default();
                while let Some(kind) = map.next_key::<Spanned<String>>()? {
                    match kind.get_ref().as_str() {
                        "http" => triggers.http = map.next_value()?,
                        "mqtt" => triggers.mqtt = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            triggers.unsupported.push(kind);
                        }
                    }
                }
                Ok(triggers)
            }
        }

        deserializer.deserialize_map(TriggersVisitor)
    }
}

/// Spin's `HttpTriggerConfig` plus the generic trigger `id` and `component`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttpTrigger {
    pub id: Option<Spanned<String>>,
    pub route: Spanned<StringOrTable<RawPrivateRoute>>,
    pub component: Option<Spanned<StringOrTable<Box<RawComponent>>>>,
    pub executor: Option<RawExecutor>,
    pub static_response: Option<Spanned<RawStaticResponse>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrivateRoute {
    pub private: bool,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub(super) enum RawExecutor {
    /// Spin's name for it is `http`, with `spin` as an alias.
    #[serde(alias = "spin")]
    Http,
    Wagi(RawWagi),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWagi {
    pub argv: Option<String>,
    pub entrypoint: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStaticResponse {
    pub status_code: Option<Spanned<u16>>,
    #[serde(default)]
    pub headers: BTreeMap<Spanned<String>, Spanned<String>>,
    pub body: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawComponent {
    pub source: Spanned<StringOrTable<toml::Table>>,
    pub description: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub files: Vec<Spanned<StringOrTable<RawPlacement>>>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub allowed_http_hosts: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<Spanned<String>>,
    #[serde(default)]
    pub sqlite_databases: Vec<Spanned<String>>,
    #[serde(default)]
    pub ai_models: Vec<Spanned<String>>,
    pub build: Option<RawBuild>,
    #[serde(default)]
    pub dependencies_inherit_configuration: bool,
    #[serde(default)]
    pub dependencies: toml::Table,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub tool: toml::Table,
    #[serde(default)]
    pub profile: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlacement {
    pub source: String,
    pub destination: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuild {
    pub command: Commands,
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
}

/// A value written either as a string or as a table.
pub(super) enum StringOrTable<T> {
    String(String),
    Table(T),
}

/// What a table-or-string field expects, for serde's "invalid type" errors.
pub(super) trait Expecting {
    const EXPECTING: &'static str;
}

impl Expecting for RawPrivateRoute {
    const EXPECTING: &'static str = "a route string or `{ private = true }`";
}

impl Expecting for Box<RawComponent> {
    const EXPECTING: &'static str = "a component id or an inline component table";
}

impl Expecting for toml::Table {
    const EXPECTING: &'static str = "a path to a Wasm file";
}

impl Expecting for RawPlacement {
    const EXPECTING: &'static str =
        "a glob string or `{ source = \"...\", destination = \"/...\" }`";
}

impl<'de, T: Deserialize<'de> + Expecting> Deserialize<'de> for StringOrTable<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StringOrTableVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de> + Expecting> Visitor<'de> for StringOrTableVisitor<T> {
            type Value = StringOrTable<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::EXPECTING)
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(StringOrTable::String(value.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                // Handing toml's own map access on keeps the spans inside.
                T::deserialize(MapAccessDeserializer::new(map)).map(StringOrTable::Table)
            }
        }

        deserializer.deserialize_any(StringOrTableVisitor(PhantomData))
    }
}

/// `build.command`: one command or several run in order.
pub(super) struct Commands(pub Vec<String>);

impl<'de> Deserialize<'de> for Commands {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CommandsVisitor;

        impl<'de> Visitor<'de> for CommandsVisitor {
            type Value = Commands;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command string or an array of command strings")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Commands, E> {
                Ok(Commands(vec![value.to_owned()]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Commands, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(Commands)
            }
        }

        deserializer.deserialize_any(CommandsVisitor)
    }
}
