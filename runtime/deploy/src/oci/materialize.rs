//! A pulled locked app as a directory Flint's loader serves:
//!
//! ```text
//! <state-dir>/oci/apps/<manifest hex>/spin.toml        manifest v2, converted
//! <state-dir>/oci/apps/<manifest hex>/wasm/<hex>.wasm  each Wasm layer
//! <state-dir>/oci/apps/<manifest hex>/files/<id>/…     each component's files
//! ```
//!
//! The conversion keeps what Spin's loader put into the locked app:
//! application name, version, description, authors and trigger settings
//! (`[application.trigger.<type>]`), application variables, every trigger
//! (`[[trigger.<type>]]` with its id and configuration), and per component
//! its source, description, environment, variables, `allowed_outbound_hosts`,
//! `key_value_stores`, `sqlite_databases`, `ai_models` and files (mounted at
//! their paths under `/`). What Flint cannot honour is refused by name:
//! component dependencies (Spin composes them before pushing unless told
//! `--compose=false`), host requirements (service chaining, middleware).
//!
//! The directory is built beside its final name and renamed into place, so
//! a directory under `apps/` is always complete; the next start reuses it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::cache::{Cache, sync_dir, write_atomic};
use super::locked::{ContentRef, LockedApp};
use super::pull::{Pulled, pull};
use super::{
    Connect, DATA_MEDIA_TYPE, Digest, Error, Limits, Reference, Result, WASM_LAYER_MEDIA_TYPE,
    WASM_LAYER_MEDIA_TYPE_WKG,
};

/// What [`materialize`] made.
#[derive(Debug, Clone)]
pub struct Materialized {
    /// The directory holding `spin.toml`.
    pub dir: PathBuf,
    pub manifest_digest: Digest,
    /// `Some(why)` when the registry was unreachable and the cache served.
    pub from_cache: Option<String>,
    /// How many blobs were downloaded.
    pub downloaded: usize,
}

/// Pulls `reference` into the cache of `state_dir` and makes the app
/// directory; for `flint up --from REF` and `flint deploy --from REF`.
pub fn materialize(
    reference: &Reference,
    state_dir: &Path,
    connect: Connect,
    limits: &Limits,
) -> Result<Materialized> {
    let cache = Cache::open(state_dir)?;
    let pulled = pull(reference, &cache, connect, limits)?;
    materialize_pulled(&pulled, limits)
}

/// Makes (or reuses) the app directory of a pulled app.
pub fn materialize_pulled(pulled: &Pulled, limits: &Limits) -> Result<Materialized> {
    let apps = pulled.cache.apps_dir();
    let dir = apps.join(pulled.manifest_digest.hex());
    let done = |dir: PathBuf| Materialized {
        dir,
        manifest_digest: pulled.manifest_digest.clone(),
        from_cache: pulled.from_cache.clone(),
        downloaded: pulled.downloaded,
    };
    if dir.join("spin.toml").is_file() {
        return Ok(done(dir));
    }
    let tmp = apps.join(format!(
        ".tmp-{}-{}",
        pulled.manifest_digest.hex(),
        std::process::id()
    ));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(Error::io("removing", &tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(Error::io("creating", &tmp))?;
    let built = build(pulled, &tmp, limits);
    if let Err(e) = built {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    match fs::rename(&tmp, &dir) {
        Ok(()) => {}
        // Another process made it first: theirs is as good.
        Err(_) if dir.join("spin.toml").is_file() => {
            let _ = fs::remove_dir_all(&tmp);
        }
        Err(e) => return Err(Error::io("renaming into place", &dir)(e)),
    }
    sync_dir(&apps)?;
    Ok(done(dir))
}

fn build(pulled: &Pulled, dir: &Path, limits: &Limits) -> Result<()> {
    let locked = &pulled.locked;
    check_understood(locked)?;
    for (what, count) in [
        ("components", locked.components.len()),
        ("triggers", locked.triggers.len()),
    ] {
        if count > limits.max_entries {
            return Err(Error::Limit(format!(
                "the app has {count} {what}; at most {} are accepted",
                limits.max_entries
            )));
        }
    }
    let layers: BTreeMap<&Digest, &str> = pulled
        .layers
        .iter()
        .map(|l| (&l.digest, l.media_type.as_str()))
        .collect();
    let content = |content: &ContentRef, what: &str, wasm: bool| -> Result<Vec<u8>> {
        if let Some(inline) = &content.inline {
            return Ok(inline.clone());
        }
        let text = content.digest.as_deref().ok_or_else(|| {
            Error::Format(format!("{what} has neither inline content nor a digest"))
        })?;
        let digest = Digest::parse(text).ok_or_else(|| {
            Error::Format(format!("{what} has digest `{text}`, not a sha256 digest"))
        })?;
        let media_type = layers.get(&digest).ok_or_else(|| {
            Error::Format(format!(
                "{what} names {digest}, which is not a layer of the manifest"
            ))
        })?;
        let expected: &[&str] = if wasm {
            &[WASM_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE_WKG]
        } else {
            &[DATA_MEDIA_TYPE]
        };
        if !expected.contains(media_type) {
            return Err(Error::Format(format!(
                "{what} names layer {digest} of type {media_type}, expected {}",
                expected.join(" or ")
            )));
        }
        pulled
            .cache
            .read(&digest, limits.max_blob_bytes)?
            .ok_or_else(|| Error::Format(format!("{what}: layer {digest} is not in the cache")))
    };

    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "# Made by Flint from {} ({}), Spin's locked app converted to a manifest.",
        pulled.reference, pulled.manifest_digest
    );
    toml.push_str("spin_manifest_version = 2\n\n[application]\n");
    let meta = &locked.metadata;
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            pulled
                .reference
                .repository
                .rsplit('/')
                .next()
                .unwrap_or("app")
                .to_owned()
        });
    kv(&mut toml, "name", &Value::String(name));
    for key in ["version", "description", "authors"] {
        if let Some(value) = meta.get(key) {
            kv(&mut toml, key, value);
        }
    }
    if let Some(Value::Object(triggers)) = meta.get("triggers") {
        for (kind, settings) in triggers {
            let Value::Object(settings) = settings else {
                continue;
            };
            if settings.is_empty() {
                continue;
            }
            let _ = writeln!(toml, "\n[application.trigger.{}]", key(kind));
            for (k, v) in settings {
                kv(&mut toml, k, v);
            }
        }
    }
    if !locked.variables.is_empty() {
        toml.push_str("\n[variables]\n");
        for (name, variable) in &locked.variables {
            let mut table = serde_json::Map::new();
            if let Some(description) = &variable.description {
                table.insert("description".into(), description.clone().into());
            }
            match &variable.default {
                Some(default) => {
                    table.insert("default".into(), default.clone().into());
                }
                None => {
                    table.insert("required".into(), true.into());
                }
            }
            if variable.secret {
                table.insert("secret".into(), true.into());
            }
            kv(&mut toml, name, &Value::Object(table));
        }
    }
    for trigger in &locked.triggers {
        let Value::Object(config) = &trigger.trigger_config else {
            return Err(Error::Format(format!(
                "trigger `{}`: its configuration is not a table",
                trigger.id
            )));
        };
        if !trigger.trigger_dependencies.is_empty() {
            return Err(Error::Format(format!(
                "trigger `{}` has trigger dependencies (middleware), which Flint does not run",
                trigger.id
            )));
        }
        let _ = writeln!(toml, "\n[[trigger.{}]]", key(&trigger.trigger_type));
        kv(&mut toml, "id", &Value::String(trigger.id.clone()));
        for (k, v) in config {
            if k != "id" {
                kv(&mut toml, k, v);
            }
        }
    }

    let wasm_dir = dir.join("wasm");
    let files_root = dir.join("files");
    let mut written_wasm = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for component in &locked.components {
        let id = &component.id;
        if !ids.insert(id.as_str()) {
            return Err(Error::Format(format!("component `{id}` is listed twice")));
        }
        if !is_kebab_id(id) {
            return Err(Error::Format(format!(
                "component id `{}` is not a Spin id (lower-case letters, digits and `-`)",
                super::url::printable(id)
            )));
        }
        if !component.dependencies.is_empty() {
            return Err(Error::Format(format!(
                "component `{id}` has component dependencies, which Flint does not compose; \
                 push it with Spin's default `--compose` so they are composed in"
            )));
        }
        let what = format!("component `{id}`'s source");
        let wasm = content(&component.source.content, &what, true)?;
        if !wasm.starts_with(b"\0asm") {
            return Err(Error::Format(format!("{what} is not a Wasm binary")));
        }
        let wasm_name = format!("{}.wasm", Digest::of(&wasm).hex());
        if written_wasm.insert(wasm_name.clone()) {
            fs::create_dir_all(&wasm_dir).map_err(Error::io("creating", &wasm_dir))?;
            write_atomic(&wasm_dir.join(&wasm_name), &wasm)?;
        }

        let _ = writeln!(toml, "\n[component.{}]", key(id));
        kv(
            &mut toml,
            "source",
            &Value::String(format!("wasm/{wasm_name}")),
        );
        let meta = &component.metadata;
        if let Some(description) = meta.get("description") {
            kv(&mut toml, "description", description);
        }
        if !component.env.is_empty() {
            kv(&mut toml, "environment", &serde_json::json!(component.env));
        }
        if !component.config.is_empty() {
            kv(&mut toml, "variables", &serde_json::json!(component.config));
        }
        for (from, to) in [
            ("allowed_outbound_hosts", "allowed_outbound_hosts"),
            ("key_value_stores", "key_value_stores"),
            ("databases", "sqlite_databases"),
            ("ai_models", "ai_models"),
        ] {
            if let Some(Value::Array(values)) = meta.get(from)
                && !values.is_empty()
            {
                kv(&mut toml, to, &Value::Array(values.clone()));
            }
        }
        if component.files.len() > limits.max_entries {
            return Err(Error::Limit(format!(
                "component `{id}` mounts {} files; at most {} are accepted",
                component.files.len(),
                limits.max_entries
            )));
        }
        if !component.files.is_empty() {
            let root = files_root.join(id);
            fs::create_dir_all(&root).map_err(Error::io("creating", &root))?;
            for file in &component.files {
                let relative = safe_relative(&file.path).ok_or_else(|| {
                    Error::Format(format!(
                        "component `{id}`: file path `{}` leaves its mount",
                        super::url::printable(&file.path)
                    ))
                })?;
                let what = format!("component `{id}`'s file `{}`", relative.display());
                let bytes = content(&file.content, &what, false)?;
                let target = root.join(&relative);
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
                }
                fs::write(&target, &bytes).map_err(Error::io("writing", &target))?;
            }
            kv(
                &mut toml,
                "files",
                &serde_json::json!([{ "source": format!("files/{id}"), "destination": "/" }]),
            );
        }
    }
    write_atomic(&dir.join("spin.toml"), toml.as_bytes())?;
    sync_tree(dir)
}

/// Refuses what the app says Flint must understand but does not.
fn check_understood(locked: &LockedApp) -> Result<()> {
    if locked.spin_lock_version > 1 {
        return Err(Error::Format(format!(
            "spin_lock_version {} is newer than the versions Flint reads (0 and 1)",
            locked.spin_lock_version
        )));
    }
    for item in &locked.must_understand {
        if item != "host_requirements" && item != "component_host_requirements" {
            return Err(Error::Format(format!(
                "the app requires the host to understand `{}`, which Flint does not",
                super::url::printable(item)
            )));
        }
    }
    let required = |requirements: &serde_json::Map<String, Value>| -> Vec<String> {
        requirements
            .iter()
            .filter(|(_, v)| v.as_str() != Some("optional"))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let mut unmet = required(&locked.host_requirements);
    for component in &locked.components {
        unmet.extend(required(&component.host_requirements));
    }
    if !unmet.is_empty() {
        unmet.sort();
        unmet.dedup();
        return Err(Error::Format(format!(
            "the app requires features Flint does not support: {}",
            unmet.join(", ")
        )));
    }
    Ok(())
}

/// A mount path as a relative path of normal components (a leading `/`
/// allowed), as Spin's loader requires (`is_safe_to_join`).
fn safe_relative(path: &str) -> Option<PathBuf> {
    let relative = Path::new(path.trim_start_matches('/'));
    let ok = !path.contains('\0')
        && relative.components().next().is_some()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| relative.to_path_buf())
}

fn is_kebab_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn sync_tree(root: &Path) -> Result<()> {
    for entry in fs::read_dir(root).map_err(Error::io("reading", root))? {
        let entry = entry.map_err(Error::io("reading", root))?;
        let path = entry.path();
        if entry
            .file_type()
            .map_err(Error::io("reading", &path))?
            .is_dir()
        {
            sync_tree(&path)?;
        } else {
            fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(Error::io("syncing", &path))?;
        }
    }
    sync_dir(root)
}

/// `key = value` on one line.
fn kv(out: &mut String, name: &str, value: &Value) {
    if value.is_null() {
        return;
    }
    let _ = writeln!(out, "{} = {}", key(name), inline(value));
}

/// A bare key when TOML allows one, else a quoted key.
fn key(name: &str) -> String {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        name.to_owned()
    } else {
        string(name)
    }
}

/// A JSON value as an inline TOML value (objects as inline tables; nulls
/// dropped, as TOML has none).
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().filter(|v| !v.is_null()).map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect();
            if items.is_empty() {
                "{}".into()
            } else {
                format!("{{ {} }}", items.join(", "))
            }
        }
    }
}

/// A TOML basic string.
fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_values_are_escaped_and_parse_back() {
        let value = serde_json::json!({
            "route": "/a \"b\"\n",
            "executor": { "type": "wagi", "argv": "${SCRIPT_NAME}" },
            "list": [1, true, "x\\y", null],
            "odd key": "\u{1}",
        });
        let mut out = String::new();
        for (k, v) in value.as_object().expect("object") {
            kv(&mut out, k, v);
        }
        let parsed: toml::Table = toml::from_str(&out).expect("valid TOML");
        assert_eq!(parsed["route"].as_str(), Some("/a \"b\"\n"));
        assert_eq!(parsed["executor"]["type"].as_str(), Some("wagi"));
        assert_eq!(parsed["list"].as_array().map(Vec::len), Some(3));
        assert_eq!(parsed["odd key"].as_str(), Some("\u{1}"));
    }

    #[test]
    fn mount_paths_stay_inside() {
        assert_eq!(
            safe_relative("static/index.html"),
            Some(PathBuf::from("static/index.html"))
        );
        assert_eq!(safe_relative("/x"), Some(PathBuf::from("x")));
        for bad in ["../x", "a/../../x", "", "/", ".", "a/./b/.."] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
    }
}
