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
    pub mqtt: Option<Spanned<RawAppMqtt>>,
    pub redis: Option<RawAppRedis>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAppHttp {
    pub base: Option<Spanned<String>>,
}

/// The settings of Spin's MQTT trigger plugin (`address`, `username`,
/// `password`, `keep_alive_interval`), then Flint's own. `address` is
/// optional here so that its absence can be reported where MQTT triggers
/// need it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAppMqtt {
    pub address: Option<Spanned<String>>,
    pub username: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
    pub keep_alive_interval: Option<Spanned<Whole>>,
    pub client_id: Option<Spanned<String>>,
    pub clean_session: Option<Spanned<Flag>>,
    pub max_inflight: Option<Spanned<Whole>>,
    pub max_payload_bytes: Option<Spanned<Whole>>,
    pub outbox_max_bytes: Option<Spanned<Whole>>,
    pub outbox_max_messages: Option<Spanned<Whole>>,
}

/// Spin's Redis trigger metadata: the server every `[[trigger.redis]]`
/// without its own `address` subscribes on.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAppRedis {
    pub address: Spanned<String>,
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
    pub mqtt: Vec<Spanned<RawMqttTrigger>>,
    pub redis: Vec<Spanned<RawRedisTrigger>>,
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
                        "redis" => triggers.redis = map.next_value()?,
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

/// The MQTT plugin's `MqttTriggerConfig` plus the generic trigger `id`, then
/// Flint's delivery settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMqttTrigger {
    pub id: Option<Spanned<String>>,
    pub component: Spanned<StringOrTable<InlineComponent>>,
    pub topic: Spanned<String>,
    pub qos: Option<Spanned<Whole>>,
    pub concurrency: Option<Spanned<Whole>>,
    pub max_attempts: Option<Spanned<Whole>>,
    pub retry_backoff_ms: Option<Spanned<Whole>>,
    pub dead_letter_store: Option<Spanned<String>>,
    pub dead_letter_topic: Option<Spanned<String>>,
}

/// Spin's Redis `TriggerConfig` plus the generic trigger `id`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedisTrigger {
    pub id: Option<Spanned<String>>,
    pub component: Spanned<StringOrTable<InlineComponent>>,
    pub channel: Spanned<String>,
    pub address: Option<Spanned<String>>,
}

/// An inline component where Flint does not take one: read only to be
/// reported where it is written.
pub(super) struct InlineComponent;

impl<'de> Deserialize<'de> for InlineComponent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| InlineComponent)
    }
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

impl Expecting for InlineComponent {
    const EXPECTING: &'static str = "a component id";
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

/// A whole number as Spin's MQTT plugin writes it, in a string (`"30"`), or
/// as a TOML integer. Parsed during validation, so that a bad one is reported
/// along with every other problem.
pub(super) enum Whole {
    Text(String),
    Integer(i64),
}

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WholeVisitor;

        impl Visitor<'_> for WholeVisitor {
            type Value = Whole;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number, such as `30` or `\"30\"`")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Whole, E> {
                Ok(Whole::Text(value.to_owned()))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Whole, E> {
                Ok(Whole::Integer(value))
            }
        }

        deserializer.deserialize_any(WholeVisitor)
    }
}

/// A boolean as Spin's MQTT plugin would write it (`"true"`), or as a TOML
/// boolean.
pub(super) enum Flag {
    Text(String),
    Bool(bool),
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagVisitor;

        impl Visitor<'_> for FlagVisitor {
            type Value = Flag;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`true` or `false`, or the same in a string")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Flag, E> {
                Ok(Flag::Text(value.to_owned()))
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Flag, E> {
                Ok(Flag::Bool(value))
            }
        }

        deserializer.deserialize_any(FlagVisitor)
    }
}
