//! The runtime-config file (`--runtime-config-file`): Spin's
//! `[key_value_store.<label>]` tables, restricted to the `spin` (SQLite file)
//! type, plus Flint's own `[limits]` overrides.

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
    pub limits: LimitsOverride,
    /// `board = "rpi-4"`: the profile whose limits `[limits]` overrides
    /// (`flint up --board` wins over it).
    pub board: Option<String>,
}

/// A key-value store kept in a SQLite file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvStoreConfig {
    /// The database file, resolved against the runtime-config file's
    /// directory. `None` when the table gives no `path`: Spin then uses a
    /// file in its state directory, and so should the runtime.
    pub path: Option<PathBuf>,
}

/// Keys of a table in the file, with the location of every key and value.
type RawTable = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntimeConfig {
    #[serde(default)]
    key_value_store: BTreeMap<Spanned<String>, Spanned<RawTable>>,
    #[serde(default)]
    limits: RawLimitsOverride,
    board: Option<String>,
    // Spin sections Flint does not implement. Naming them here, rather than
    // leaving them to `deny_unknown_fields`, lets each one be reported as
    // unsupported (and all of them at once) while a typo in any other key
    // still gets serde's precise "unknown field" error.
    sqlite_database: Option<Spanned<IgnoredAny>>,
    variables_provider: Option<Spanned<IgnoredAny>>,
    config_provider: Option<Spanned<IgnoredAny>>,
    llm_compute: Option<Spanned<IgnoredAny>>,
    outbound_http: Option<Spanned<IgnoredAny>>,
    outbound_mqtt: Option<Spanned<IgnoredAny>>,
    outbound_networking: Option<Spanned<IgnoredAny>>,
    client_tls: Option<Spanned<IgnoredAny>>,
}

impl RawRuntimeConfig {
    fn unsupported(&self) -> impl Iterator<Item = (&'static str, &Spanned<IgnoredAny>)> {
        [
            ("sqlite_database", &self.sqlite_database),
            ("variables_provider", &self.variables_provider),
            ("config_provider", &self.config_provider),
            ("llm_compute", &self.llm_compute),
            ("outbound_http", &self.outbound_http),
            ("outbound_mqtt", &self.outbound_mqtt),
            ("outbound_networking", &self.outbound_networking),
            ("client_tls", &self.client_tls),
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
    let limits = raw.limits.validate(&mut problems);
    problems.finish(RuntimeConfig {
        key_value_stores,
        limits,
        board: raw.board,
    })
}

fn kv_store(
    label: &Spanned<String>,
    table: &RawTable,
    dir: &Path,
    problems: &mut Problems<'_>,
) -> Option<KvStoreConfig> {
    let name = label.get_ref();
    if let Err(why) = ids::check_label(name) {
        problems.report(
            &label.span(),
            format!("invalid key-value store label `{name}`: {why}"),
        );
    }
    let Some(kind) = table.get("type") else {
        problems.report(
            &label.span(),
            format!("key-value store `{name}` needs `type = \"spin\"`"),
        );
        return None;
    };
    match kind.get_ref() {
        toml::Value::String(kind) if kind == "spin" => {}
        toml::Value::String(other) => {
            // The other keys belong to that type (`url`, `account`, ...), so
            // they are not worth reporting on their own.
            problems.report(
                &kind.span(),
                format!(
                    "key-value store `{name}`: type `{other}` is not supported by Flint; \
                     use type = \"spin\""
                ),
            );
            return None;
        }
        _ => {
            problems.report(&kind.span(), "`type` must be a string");
            return None;
        }
    }

    let mut path = None;
    for (key, value) in table {
        match (key.get_ref().as_str(), value.get_ref()) {
            ("type", _) => {}
            ("path", toml::Value::String(file)) if !file.is_empty() => path = Some(dir.join(file)),
            ("path", _) => problems.report(&value.span(), "`path` must be a non-empty string"),
            (other, _) => problems.report(
                &key.span(),
                format!(
                    "unknown field `{other}` in key-value store `{name}`, expected `type` or `path`"
                ),
            ),
        }
    }
    Some(KvStoreConfig { path })
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
type = "spin"

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
                "/etc/flint/runtime-config.toml:9:2: `sqlite_database` is not supported by Flint",
                "/etc/flint/runtime-config.toml:12:1: `config_provider` is not supported by Flint",
                "/etc/flint/runtime-config.toml:16:11: `workers` must be at least 1, not 0",
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
}
