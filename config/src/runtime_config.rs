//! The runtime-config file (`--runtime-config-file`): Spin's
//! `[key_value_store.<label>]` and `[sqlite_database.<label>]` tables,
//! restricted to the `spin` (local file) type, Spin's `[[client_tls]]` entries and `[outbound_networking]
//! block_networks`, plus Flint's own `[limits]` overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use crate::ConfigError;
use crate::ids;
use crate::limits::{LimitsOverride, RawLimitsOverride};
use crate::source::{self, Problems, Source};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// By label, as components name them in `key_value_stores`.
    pub key_value_stores: BTreeMap<String, KvStoreConfig>,
    /// `[sqlite_database.<label>]`, by label, as components name them in
    /// `sqlite_databases`. `default` is always defined, by Flint if not here.
    pub sqlite_databases: BTreeMap<String, SqliteDatabaseConfig>,
    /// `[[client_tls]]`, in file order (the first entry matching wins).
    pub client_tls: Vec<ClientTlsConfig>,
    /// `[outbound_networking] block_networks`.
    pub block_networks: BlockNetworks,
    pub limits: LimitsOverride,
    /// `board = "rpi-4"`: the profile whose limits `[limits]` overrides
    /// (`flint up --board` wins over it).
    pub board: Option<String>,
    /// `[deploy]`: how a new app version is checked and received (Flint's own).
    pub deploy: DeployConfig,
}

/// `[deploy]`: what a new version must pass before it serves, how many
/// versions an app directory keeps, and where updates arrive over MQTT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployConfig {
    /// A route of the app that must answer 2xx before a new version serves.
    pub health_route: Option<String>,
    pub health_timeout_ms: u64,
    pub keep_versions: usize,
    /// The topic deploy messages arrive on; `{{ device_id }}` is expanded.
    pub mqtt_topic: Option<String>,
    /// Where results are published; by default `<mqtt_topic>/status`.
    pub status_topic: Option<String>,
    /// `mqtt://host[:port]` or `mqtts://…`: the broker deploy messages come
    /// from; by default the manifest's `[application.trigger.mqtt] address`.
    pub mqtt_address: Option<String>,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            health_route: None,
            health_timeout_ms: 5000,
            keep_versions: 3,
            mqtt_topic: None,
            status_topic: None,
            mqtt_address: None,
        }
    }
}

/// A key-value store kept in a SQLite file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvStoreConfig {
    /// The database file, resolved against the runtime-config file's
    /// directory. `None` when the table gives no `path`: Spin then uses a
    /// file in its state directory, and so should the runtime.
    pub path: Option<PathBuf>,
}

/// A SQLite database of Spin's `spin` type: a file on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteDatabaseConfig {
    /// The database file, resolved against the runtime-config file's
    /// directory; `None` (no `path`) is an in-memory database, as in Spin.
    pub path: Option<PathBuf>,
    /// Spin's `allow_attach_file`: guests may `ATTACH` other files.
    pub allow_attach_file: bool,
}

/// One `[[client_tls]]` entry: how to reach some hosts over TLS, for some
/// components (Spin's syntax; see `crates/factor-outbound-networking`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsConfig {
    /// Components it applies to. Empty only for entries meant for the MQTT
    /// trigger's broker, which is not a component (a Flint extension).
    pub component_ids: Vec<String>,
    /// Host names (no ports), lower-cased.
    pub hosts: Vec<String>,
    pub ca_use_platform_roots: bool,
    pub ca_use_webpki_roots: bool,
    /// Resolved against the runtime-config file's directory.
    pub ca_roots_file: Option<PathBuf>,
    /// The device certificate and its key, both or neither.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// ALPN protocols to offer (a Flint extension, e.g. `x-amzn-mqtt-ca`).
    pub alpn: Vec<String>,
    /// Where the entry is, for errors about its files.
    pub location: crate::Location,
}

/// Networks guests may not connect to, checked on resolved addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockNetworks {
    /// `"private"`: loopback, RFC 1918, link-local, unique-local and the like.
    pub private: bool,
    /// CIDR ranges as written (`10.0.0.0/8`, `fd00::/8`), checked at parse time.
    pub cidrs: Vec<(std::net::IpAddr, u8)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientTls {
    #[serde(default)]
    component_ids: Vec<String>,
    #[serde(default)]
    hosts: Vec<Spanned<String>>,
    ca_use_platform_roots: Option<bool>,
    ca_use_webpki_roots: Option<bool>,
    ca_roots_file: Option<String>,
    client_cert_file: Option<String>,
    client_private_key_file: Option<String>,
    #[serde(default)]
    alpn: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeploy {
    health_route: Option<Spanned<String>>,
    health_timeout_ms: Option<Spanned<u64>>,
    keep_versions: Option<Spanned<usize>>,
    mqtt_topic: Option<Spanned<String>>,
    status_topic: Option<Spanned<String>>,
    mqtt_address: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutboundNetworking {
    #[serde(default)]
    block_networks: Vec<Spanned<String>>,
    // Spin's connection caps; Flint bounds connections with its own limits.
    max_socket_connections: Option<Spanned<IgnoredAny>>,
    max_total_connections: Option<Spanned<IgnoredAny>>,
}

/// Keys of a table in the file, with the location of every key and value.
type RawTable = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntimeConfig {
    #[serde(default)]
    key_value_store: BTreeMap<Spanned<String>, Spanned<RawTable>>,
    #[serde(default)]
    sqlite_database: BTreeMap<Spanned<String>, Spanned<RawTable>>,
    #[serde(default)]
    limits: RawLimitsOverride,
    board: Option<String>,
    // Spin sections Flint does not implement. Naming them here, rather than
    // leaving them to `deny_unknown_fields`, lets each one be reported as
    // unsupported (and all of them at once) while a typo in any other key
    // still gets serde's precise "unknown field" error.
    variables_provider: Option<Spanned<IgnoredAny>>,
    config_provider: Option<Spanned<IgnoredAny>>,
    llm_compute: Option<Spanned<IgnoredAny>>,
    outbound_http: Option<Spanned<IgnoredAny>>,
    outbound_mqtt: Option<Spanned<IgnoredAny>>,
    /// Spin's `max_connections` for guests' Redis connections; Flint's
    /// bound is its own.
    outbound_redis: Option<Spanned<IgnoredAny>>,
    outbound_networking: Option<RawOutboundNetworking>,
    #[serde(default)]
    client_tls: Vec<Spanned<RawClientTls>>,
    deploy: Option<RawDeploy>,
}

impl RawRuntimeConfig {
    fn unsupported(&self) -> impl Iterator<Item = (&'static str, &Spanned<IgnoredAny>)> {
        [
            ("variables_provider", &self.variables_provider),
            ("config_provider", &self.config_provider),
            ("llm_compute", &self.llm_compute),
            ("outbound_http", &self.outbound_http),
            ("outbound_mqtt", &self.outbound_mqtt),
            ("outbound_redis", &self.outbound_redis),
        ]
        .into_iter()
        .filter_map(|(name, section)| Some((name, section.as_ref()?)))
    }
}

pub fn load_runtime_config(path: &Path) -> Result<RuntimeConfig, ConfigError> {
    parse_runtime_config(&source::read(path)?, path)
}

pub fn parse_runtime_config(text: &str, path: &Path) -> Result<RuntimeConfig, ConfigError> {
    let source = Source::new(text, path);
    let raw: RawRuntimeConfig = source.deserialize()?;
    let mut problems = Problems::new(&source);
    for (name, section) in raw.unsupported() {
        problems.report(
            &section.span(),
            format!("`{name}` is not supported by Flint"),
        );
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    let key_value_stores = raw
        .key_value_store
        .iter()
        .filter_map(|(label, table)| {
            let store = kv_store(label, table.get_ref(), dir, &mut problems)?;
            Some((label.get_ref().clone(), store))
        })
        .collect();
    let sqlite_databases = raw
        .sqlite_database
        .iter()
        .filter_map(|(label, table)| {
            let database = sqlite_database(label, table.get_ref(), dir, &mut problems)?;
            Some((label.get_ref().clone(), database))
        })
        .collect();
    let limits = raw.limits.validate(&mut problems);
    let client_tls = raw
        .client_tls
        .iter()
        .filter_map(|entry| client_tls(entry, dir, &source, &mut problems))
        .collect();
    let block_networks = match &raw.outbound_networking {
        Some(networking) => block_networks(networking, &mut problems),
        None => BlockNetworks::default(),
    };
    let deploy = match &raw.deploy {
        Some(deploy) => deploy_config(deploy, &mut problems),
        None => DeployConfig::default(),
    };
    problems.finish(RuntimeConfig {
        key_value_stores,
        sqlite_databases,
        client_tls,
        block_networks,
        limits,
        board: raw.board,
        deploy,
    })
}

fn deploy_config(raw: &RawDeploy, problems: &mut Problems<'_>) -> DeployConfig {
    let defaults = DeployConfig::default();
    if let Some(route) = &raw.health_route
        && !route.get_ref().starts_with('/')
    {
        problems.report(
            &route.span(),
            format!(
                "`deploy.health_route` `{}` must be a path starting with `/`",
                route.get_ref()
            ),
        );
    }
    if let Some(n) = &raw.keep_versions
        && *n.get_ref() < 2
    {
        problems.report(
            &n.span(),
            "`deploy.keep_versions` must be at least 2: the version serving and the one to roll back to".to_owned(),
        );
    }
    if let Some(ms) = &raw.health_timeout_ms
        && *ms.get_ref() == 0
    {
        problems.report(
            &ms.span(),
            "`deploy.health_timeout_ms` must be above 0".to_owned(),
        );
    }
    deploy_topics(raw, problems);
    let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
    DeployConfig {
        health_route: text(&raw.health_route),
        health_timeout_ms: raw
            .health_timeout_ms
            .as_ref()
            .map_or(defaults.health_timeout_ms, |v| *v.get_ref()),
        keep_versions: raw
            .keep_versions
            .as_ref()
            .map_or(defaults.keep_versions, |v| *v.get_ref()),
        mqtt_topic: text(&raw.mqtt_topic),
        status_topic: text(&raw.status_topic),
        mqtt_address: text(&raw.mqtt_address),
    }
}

/// The template variable a deploy topic may name.
pub const DEVICE_ID_VARIABLE: &str = "device_id";

/// `mqtt_topic` and `status_topic` are topic names (no wildcards: a device
/// receives its own or its group's deploys) whose only template is
/// `{{ device_id }}`; `status_topic` and `mqtt_address` need `mqtt_topic`.
fn deploy_topics(raw: &RawDeploy, problems: &mut Problems<'_>) {
    for (key, topic) in [
        ("mqtt_topic", &raw.mqtt_topic),
        ("status_topic", &raw.status_topic),
    ] {
        let Some(topic) = topic else { continue };
        let text = topic.get_ref();
        let problem = match crate::template::template_names(text) {
            Err(e) => Some(e.to_string()),
            Ok(names) => match names.iter().find(|n| **n != DEVICE_ID_VARIABLE) {
                Some(other) => Some(format!(
                    "`{{{{ {other} }}}}` is not known here; the only variable is `{{{{ {DEVICE_ID_VARIABLE} }}}}`"
                )),
                None => crate::mqtt::check_topic_name(text)
                    .err()
                    .map(|e| e.to_string()),
            },
        };
        if let Some(problem) = problem {
            problems.report(&topic.span(), format!("`deploy.{key}` `{text}`: {problem}"));
        }
    }
    if let (Some(topic), Some(status)) = (&raw.mqtt_topic, &raw.status_topic)
        && topic.get_ref() == status.get_ref()
    {
        problems.report(
            &status.span(),
            "`deploy.status_topic` must differ from `deploy.mqtt_topic` (results would arrive as deploy messages)".to_owned(),
        );
    }
    if raw.mqtt_topic.is_none() {
        for (key, value) in [
            ("status_topic", &raw.status_topic),
            ("mqtt_address", &raw.mqtt_address),
        ] {
            if let Some(value) = value {
                problems.report(
                    &value.span(),
                    format!("`deploy.{key}` needs `deploy.mqtt_topic`, the topic deploy messages arrive on"),
                );
            }
        }
    }
    if let Some(address) = &raw.mqtt_address
        && let Err(e) = crate::mqtt::MqttAddress::parse(address.get_ref())
    {
        problems.report(
            &address.span(),
            format!("`deploy.mqtt_address` `{}`: {e}", address.get_ref()),
        );
    }
}

fn client_tls(
    entry: &Spanned<RawClientTls>,
    dir: &Path,
    source: &Source<'_>,
    problems: &mut Problems<'_>,
) -> Option<ClientTlsConfig> {
    let raw = entry.get_ref();
    let mut ok = true;
    if raw.hosts.is_empty() {
        problems.report(&entry.span(), "`client_tls`: `hosts` may not be empty");
        ok = false;
    }
    for host in &raw.hosts {
        let name = host.get_ref();
        if name.is_empty() || name.contains(['/', ':', ' ', '@']) {
            problems.report(
                &host.span(),
                format!(
                    "`client_tls`: `{name}` is not a host name (give names without scheme or port)"
                ),
            );
            ok = false;
        }
    }
    let file = |name: &Option<String>| name.as_ref().map(|f| dir.join(f));
    let client_cert = match (&raw.client_cert_file, &raw.client_private_key_file) {
        (Some(cert), Some(key)) => Some((dir.join(cert), dir.join(key))),
        (None, None) => None,
        (Some(_), None) => {
            problems.report(
                &entry.span(),
                "`client_tls`: `client_cert_file` needs `client_private_key_file`",
            );
            ok = false;
            None
        }
        (None, Some(_)) => {
            problems.report(
                &entry.span(),
                "`client_tls`: `client_private_key_file` needs `client_cert_file`",
            );
            ok = false;
            None
        }
    };
    // Spin's defaults: platform roots unless a roots file is given; webpki roots off.
    let (platform, webpki) = match (raw.ca_use_platform_roots, raw.ca_use_webpki_roots) {
        (Some(platform), Some(webpki)) => (platform, webpki),
        (Some(platform), None) => (platform, false),
        (None, Some(webpki)) => (false, webpki),
        (None, None) => (raw.ca_roots_file.is_none(), false),
    };
    ok.then(|| ClientTlsConfig {
        component_ids: raw.component_ids.clone(),
        hosts: raw
            .hosts
            .iter()
            .map(|h| h.get_ref().to_ascii_lowercase())
            .collect(),
        ca_use_platform_roots: platform,
        ca_use_webpki_roots: webpki,
        ca_roots_file: file(&raw.ca_roots_file),
        client_cert,
        alpn: raw.alpn.clone(),
        location: source.location(&entry.span()),
    })
}

fn block_networks(raw: &RawOutboundNetworking, problems: &mut Problems<'_>) -> BlockNetworks {
    for (name, value) in [
        ("max_socket_connections", &raw.max_socket_connections),
        ("max_total_connections", &raw.max_total_connections),
    ] {
        if let Some(value) = value {
            problems.report(
                &value.span(),
                format!("`outbound_networking.{name}` is not supported by Flint (its limits bound connections)"),
            );
        }
    }
    let mut networks = BlockNetworks::default();
    for entry in &raw.block_networks {
        let text = entry.get_ref();
        if text == "private" {
            networks.private = true;
            continue;
        }
        let parsed = text.split_once('/').and_then(|(addr, bits)| {
            let addr: std::net::IpAddr = addr.parse().ok()?;
            let bits: u8 = bits.parse().ok()?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            (bits <= max).then_some((addr, bits))
        });
        match parsed {
            Some(cidr) => networks.cidrs.push(cidr),
            None => problems.report(
                &entry.span(),
                format!("`block_networks`: `{text}` is neither `private` nor a CIDR range like `10.0.0.0/8`"),
            ),
        }
    }
    networks
}

/// What a `[key_value_store.<label>]` or `[sqlite_database.<label>]` table
/// holds, as Flint reads it: Spin's `spin` type, a local file.
struct LocalTable {
    /// How errors name the table (`key-value store`, `SQLite database`).
    what: &'static str,
    /// Boolean keys the table may set besides `type` and `path`.
    flags: &'static [&'static str],
}

const KV_TABLE: LocalTable = LocalTable {
    what: "key-value store",
    flags: &[],
};
const SQLITE_TABLE: LocalTable = LocalTable {
    what: "SQLite database",
    flags: &["allow_attach_file"],
};

/// The file (resolved against `dir`) and the flags set to `true`, or `None`
/// after reporting why the table is unusable.
fn local_table(
    kind: &LocalTable,
    label: &Spanned<String>,
    table: &RawTable,
    dir: &Path,
    problems: &mut Problems<'_>,
) -> Option<(Option<PathBuf>, Vec<&'static str>)> {
    let (what, name) = (kind.what, label.get_ref());
    if let Err(why) = ids::check_label(name) {
        problems.report(
            &label.span(),
            format!("invalid {what} label `{name}`: {why}"),
        );
    }
    let Some(type_) = table.get("type") else {
        problems.report(
            &label.span(),
            format!("{what} `{name}` needs `type = \"spin\"`"),
        );
        return None;
    };
    match type_.get_ref() {
        toml::Value::String(type_) if type_ == "spin" => {}
        toml::Value::String(other) => {
            // The other keys belong to that type (`url`, `account`, ...), so
            // they are not worth reporting on their own.
            problems.report(
                &type_.span(),
                format!(
                    "{what} `{name}`: type `{other}` is not supported by Flint; \
                     use type = \"spin\""
                ),
            );
            return None;
        }
        _ => {
            problems.report(&type_.span(), "`type` must be a string");
            return None;
        }
    }

    let mut path = None;
    let mut flags = Vec::new();
    for (key, value) in table {
        match (key.get_ref().as_str(), value.get_ref()) {
            ("type", _) => {}
            ("path", toml::Value::String(file)) if !file.is_empty() => path = Some(dir.join(file)),
            ("path", _) => problems.report(&value.span(), "`path` must be a non-empty string"),
            (key_name, raw) => match (kind.flags.iter().find(|f| **f == key_name), raw) {
                (Some(flag), toml::Value::Boolean(set)) => {
                    if *set {
                        flags.push(*flag);
                    }
                }
                (Some(flag), _) => {
                    problems.report(&value.span(), format!("`{flag}` must be true or false"))
                }
                (None, _) => {
                    let expected = match kind.flags {
                        [] => "`type` or `path`".to_owned(),
                        more => format!("`type`, `path` or `{}`", more.join("`, `")),
                    };
                    problems.report(
                        &key.span(),
                        format!(
                            "unknown field `{key_name}` in {what} `{name}`, expected {expected}"
                        ),
                    )
                }
            },
        }
    }
    Some((path, flags))
}

fn kv_store(
    label: &Spanned<String>,
    table: &RawTable,
    dir: &Path,
    problems: &mut Problems<'_>,
) -> Option<KvStoreConfig> {
    let (path, _) = local_table(&KV_TABLE, label, table, dir, problems)?;
    Some(KvStoreConfig { path })
}

fn sqlite_database(
    label: &Spanned<String>,
    table: &RawTable,
    dir: &Path,
    problems: &mut Problems<'_>,
) -> Option<SqliteDatabaseConfig> {
    let (path, flags) = local_table(&SQLITE_TABLE, label, table, dir, problems)?;
    Some(SqliteDatabaseConfig {
        path,
        allow_attach_file: flags.contains(&"allow_attach_file"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuntimeConfig, ConfigError> {
        parse_runtime_config(text, Path::new("/etc/flint/runtime-config.toml"))
    }

    fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Err(ConfigError::Invalid(d)) => d.0.iter().map(ToString::to_string).collect(),
            other => panic!("expected diagnostics, got {other:?}"),
        }
    }

    #[test]
    fn kv_stores_and_limits_parse() {
        let config = parse(
            r#"
[key_value_store.default]
type = "spin"
path = ".spin/precious-data.db"

[key_value_store.user_data]
type = "spin"

[key_value_store.abs]
type = "spin"
path = "/data/abs.db"

[limits]
workers = 4
instance_memory_bytes = 33554432
"#,
        )
        .unwrap();
        let path = |label: &str| config.key_value_stores[label].path.clone();
        assert_eq!(
            path("default"),
            Some(PathBuf::from("/etc/flint/.spin/precious-data.db"))
        );
        assert_eq!(path("user_data"), None);
        assert_eq!(path("abs"), Some(PathBuf::from("/data/abs.db")));
        assert_eq!(
            config.limits,
            LimitsOverride {
                workers: Some(4),
                instance_memory_bytes: Some(33_554_432),
                ..LimitsOverride::default()
            }
        );
        assert_eq!(parse("").unwrap(), RuntimeConfig::default());
    }

    #[test]
    fn unsupported_sections_and_store_types_are_all_reported() {
        let text = r#"[key_value_store.default]
type = "spin"
path = "kv.db"

[key_value_store.user_data]
type = "redis"
url = "redis://localhost"

[sqlite_database.default]
type = "libsql"

[[config_provider]]
type = "vault"

[limits]
workers = 0
"#;
        assert_eq!(
            errors(text),
            [
                "/etc/flint/runtime-config.toml:6:8: key-value store `user_data`: type `redis` \
                 is not supported by Flint; use type = \"spin\"",
                "/etc/flint/runtime-config.toml:10:8: SQLite database `default`: type `libsql` \
                 is not supported by Flint; use type = \"spin\"",
                "/etc/flint/runtime-config.toml:12:1: `config_provider` is not supported by Flint",
                "/etc/flint/runtime-config.toml:16:11: `workers` must be at least 1, not 0",
            ]
        );
    }

    #[test]
    fn spin_outbound_redis_settings_are_reported_not_ignored() {
        assert_eq!(
            errors("[outbound_redis]\nmax_connections = 10\n"),
            ["/etc/flint/runtime-config.toml:1:1: `outbound_redis` is not supported by Flint"]
        );
    }

    #[test]
    fn sqlite_databases_are_files_beside_the_runtime_config() {
        let config = parse(
            "[sqlite_database.readings]\ntype = \"spin\"\npath = \"data/readings.db\"\n\
             allow_attach_file = true\n[sqlite_database.scratch]\ntype = \"spin\"\n",
        )
        .unwrap();
        assert_eq!(
            config.sqlite_databases["readings"],
            SqliteDatabaseConfig {
                path: Some(PathBuf::from("/etc/flint/data/readings.db")),
                allow_attach_file: true,
            }
        );
        assert_eq!(
            config.sqlite_databases["scratch"],
            SqliteDatabaseConfig {
                path: None,
                allow_attach_file: false,
            }
        );
        assert_eq!(
            errors("[sqlite_database.x]\ntype = \"spin\"\nallow_attach_file = 1\nurl = \"u\"\n"),
            [
                "/etc/flint/runtime-config.toml:3:21: `allow_attach_file` must be true or false",
                "/etc/flint/runtime-config.toml:4:1: unknown field `url` in SQLite database `x`, \
                 expected `type`, `path` or `allow_attach_file`",
            ]
        );
    }

    #[test]
    fn unknown_keys_are_precise() {
        let e = errors("[limits]\nworkers = 2\nwrokers = 3\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("/etc/flint/runtime-config.toml:3:1: unknown field `wrokers`"),
            "{e:?}"
        );

        let e = errors("[key_value_stores.default]\ntype = \"spin\"\n");
        assert!(
            e[0].starts_with(
                "/etc/flint/runtime-config.toml:1:2: unknown field `key_value_stores`"
            ),
            "{e:?}"
        );

        assert_eq!(
            errors("[key_value_store.default]\ntype = \"spin\"\npath = \"a.db\"\nurl = \"x\"\n"),
            [
                "/etc/flint/runtime-config.toml:4:1: unknown field `url` in key-value store \
              `default`, expected `type` or `path`"
            ]
        );
        assert_eq!(
            errors("[key_value_store.default]\npath = \"a.db\"\n"),
            [
                "/etc/flint/runtime-config.toml:1:18: key-value store `default` needs `type = \"spin\"`"
            ]
        );
    }

    #[test]
    fn deploy_settings_parse_with_defaults_and_checks() {
        let config = parse(
            "[deploy]\nhealth_route = \"/healthz\"\nkeep_versions = 5\nmqtt_topic = \"flint/{{ device_id }}/deploy\"\n",
        )
        .expect("valid");
        assert_eq!(config.deploy.health_route.as_deref(), Some("/healthz"));
        assert_eq!(config.deploy.health_timeout_ms, 5000);
        assert_eq!(config.deploy.keep_versions, 5);
        assert_eq!(
            config.deploy.mqtt_topic.as_deref(),
            Some("flint/{{ device_id }}/deploy")
        );
        let err = parse("[deploy]\nhealth_route = \"healthz\"\nkeep_versions = 1\n")
            .expect_err("invalid")
            .to_string();
        assert!(err.contains("must be a path"), "{err}");
        assert!(err.contains("at least 2"), "{err}");
        assert_eq!(parse("").expect("empty").deploy, DeployConfig::default());
    }

    #[test]
    fn deploy_over_mqtt_settings_are_checked() {
        let config = parse(
            "[deploy]\nmqtt_topic = \"fleet/{{ device_id }}/deploy\"\nstatus_topic = \"fleet/status/{{device_id}}\"\nmqtt_address = \"mqtts://broker.example.com\"\n",
        )
        .expect("valid");
        assert_eq!(
            config.deploy.mqtt_address.as_deref(),
            Some("mqtts://broker.example.com")
        );
        assert_eq!(
            config.deploy.status_topic.as_deref(),
            Some("fleet/status/{{device_id}}")
        );
        assert_eq!(
            errors(
                "[deploy]\nmqtt_topic = \"fleet/+/deploy\"\nstatus_topic = \"s/{{ site }}\"\nmqtt_address = \"tcp://broker:1883\"\n"
            ),
            [
                "/etc/flint/runtime-config.toml:2:14: `deploy.mqtt_topic` `fleet/+/deploy`: a topic to publish to must not contain the wildcards `+` or `#`",
                "/etc/flint/runtime-config.toml:3:16: `deploy.status_topic` `s/{{ site }}`: `{{ site }}` is not known here; the only variable is `{{ device_id }}`",
                "/etc/flint/runtime-config.toml:4:16: `deploy.mqtt_address` `tcp://broker:1883`: a broker address must start with `mqtt://` or `mqtts://`",
            ]
        );
        assert_eq!(
            errors("[deploy]\nmqtt_address = \"mqtt://broker\"\nstatus_topic = \"s\"\n"),
            [
                "/etc/flint/runtime-config.toml:2:16: `deploy.mqtt_address` needs `deploy.mqtt_topic`, the topic deploy messages arrive on",
                "/etc/flint/runtime-config.toml:3:16: `deploy.status_topic` needs `deploy.mqtt_topic`, the topic deploy messages arrive on",
            ]
        );
        assert_eq!(
            errors("[deploy]\nmqtt_topic = \"a\"\nstatus_topic = \"a\"\n"),
            [
                "/etc/flint/runtime-config.toml:3:16: `deploy.status_topic` must differ from `deploy.mqtt_topic` (results would arrive as deploy messages)"
            ]
        );
    }

    #[test]
    fn client_tls_and_block_networks_parse_as_spin_writes_them() {
        let config = parse(
            r#"
[[client_tls]]
component_ids = ["ingest"]
hosts = ["Broker.example.com"]
ca_roots_file = "certs/ca.pem"
client_cert_file = "certs/device.pem"
client_private_key_file = "certs/device.key"
alpn = ["x-amzn-mqtt-ca"]

[[client_tls]]
hosts = ["api.example.com"]

[outbound_networking]
block_networks = ["private", "203.0.113.0/24"]
"#,
        )
        .unwrap();
        let first = &config.client_tls[0];
        assert_eq!(first.hosts, ["broker.example.com"]);
        assert_eq!(
            first.ca_roots_file,
            Some(PathBuf::from("/etc/flint/certs/ca.pem"))
        );
        assert!(
            !first.ca_use_platform_roots,
            "a roots file replaces the platform roots"
        );
        assert_eq!(
            first.client_cert,
            Some((
                PathBuf::from("/etc/flint/certs/device.pem"),
                PathBuf::from("/etc/flint/certs/device.key")
            ))
        );
        assert_eq!(first.alpn, ["x-amzn-mqtt-ca"]);
        assert_eq!(first.location.line, 2);
        assert!(config.client_tls[1].ca_use_platform_roots);
        assert!(config.client_tls[1].component_ids.is_empty());
        assert!(config.block_networks.private);
        assert_eq!(
            config.block_networks.cidrs,
            [("203.0.113.0".parse().unwrap(), 24)]
        );
    }

    #[test]
    fn client_tls_mistakes_are_reported_where_they_are() {
        assert_eq!(
            errors(
                "[[client_tls]]\nhosts = [\"h:443\"]\nclient_cert_file = \"c.pem\"\n\n[outbound_networking]\nblock_networks = [\"10.0.0.0/33\"]\n"
            ),
            [
                "/etc/flint/runtime-config.toml:1:1: `client_tls`: `client_cert_file` needs `client_private_key_file`",
                "/etc/flint/runtime-config.toml:2:10: `client_tls`: `h:443` is not a host name (give names without scheme or port)",
                "/etc/flint/runtime-config.toml:6:19: `block_networks`: `10.0.0.0/33` is neither `private` nor a CIDR range like `10.0.0.0/8`",
            ]
        );
    }
}
