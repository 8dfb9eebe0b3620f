//! `flint registry push`: an app as Spin's `Client::push` writes it
//! (`crates/oci/src/client.rs`, `ComposeMode::All` with nothing to compose,
//! `AssemblyMode::Simple`): the locked app Spin's loader would make of the
//! manifest (`crates/loader/src/local.rs`), one Wasm layer per distinct
//! source, one data layer per distinct file over 128 bytes (smaller ones
//! inlined), the locked app as the last layer, the OCI image config with
//! the `com.fermyon.spin.lockedAppDigest` label, and the manifest with the
//! inferred annotations. Blobs go up monolithically (`POST …/blobs/uploads/`,
//! `PUT <location>?digest=…`), skipped when the registry has them already.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use flint_config::{FilesMount, Manifest};
use serde_json::{Map, Value, json};

use super::http::{Access, Client, error_text};
use super::json::{ConfigLabels, Descriptor, ImageConfig, RootFs, manifest_json};
use super::locked::{
    ContentPath, ContentRef, LockedApp, LockedComponent, LockedComponentSource, LockedTrigger,
    Variable,
};
use super::{
    Connect, DATA_MEDIA_TYPE, Digest, Error, INLINE_MAX_BYTES, LOCKED_APP_DIGEST_LABEL, Limits,
    MAX_LAYERS, OCI_CONFIG_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, Reference, Result,
    SPIN_APPLICATION_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, auth,
};

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub connect: Connect,
    /// `--annotation KEY=VALUE`: beats the inferred ones of the same name.
    pub annotations: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest (`Pushed with digest …`).
    pub digest: Digest,
    pub layers: usize,
    /// Blobs sent (the others were in the registry already).
    pub uploaded: usize,
    pub bytes: u64,
}

struct Layer {
    media_type: &'static str,
    data: Vec<u8>,
    digest: Digest,
}

/// Pushes the app of `manifest_path` to `reference`.
pub fn push(manifest_path: &Path, reference: &Reference, options: &PushOptions) -> Result<Pushed> {
    let manifest =
        flint_config::load_manifest(manifest_path).map_err(|e| Error::App(e.to_string()))?;
    let text = fs::read_to_string(manifest_path).map_err(Error::io("reading", manifest_path))?;
    let raw: toml::Table = toml::from_str(&text).map_err(|e| Error::App(e.to_string()))?;

    let mut layers: Vec<Layer> = Vec::new();
    let mut add_layer = |media_type: &'static str, data: Vec<u8>| -> ContentRef {
        let digest = Digest::of(&data);
        let inline = (data.len() <= INLINE_MAX_BYTES).then(|| data.clone());
        // Files small enough to inline are not pushed (Spin's workaround for
        // registries that refuse tiny blobs); Wasm layers always are.
        let pushed = inline.is_none() || media_type == WASM_LAYER_MEDIA_TYPE;
        if pushed
            && !layers
                .iter()
                .any(|l| l.digest == digest && l.media_type == media_type)
        {
            layers.push(Layer {
                media_type,
                data,
                digest: digest.clone(),
            });
        }
        ContentRef {
            source: None,
            inline,
            digest: Some(digest.to_string()),
        }
    };

    let mut components = Vec::new();
    for component in manifest.components.values() {
        let wasm = fs::read(&component.source).map_err(Error::io("reading", &component.source))?;
        if !wasm.starts_with(b"\0asm") {
            return Err(Error::App(format!(
                "component `{}`: `{}` is not a Wasm binary",
                component.id,
                component.source.display()
            )));
        }
        let source = LockedComponentSource {
            content_type: "application/wasm".into(),
            content: add_layer(WASM_LAYER_MEDIA_TYPE, wasm),
        };
        let mut files = Vec::new();
        for (path, data) in component_files(&manifest, component)? {
            files.push(ContentPath {
                content: add_layer(DATA_MEDIA_TYPE, data),
                path,
            });
        }
        components.push(LockedComponent {
            id: component.id.clone(),
            metadata: component_metadata(component),
            source,
            env: component.environment.clone(),
            files,
            config: component.variables.clone(),
            dependencies: Map::new(),
            trigger_dependencies: Map::new(),
            host_requirements: Map::new(),
        });
    }
    if layers.len() > MAX_LAYERS - 1 {
        return Err(Error::Limit(format!(
            "the app needs {} layers; registries accept {MAX_LAYERS} with the locked app, \
             and Spin's archive layers for larger apps are not written by Flint",
            layers.len()
        )));
    }

    let locked = LockedApp {
        spin_lock_version: 0,
        must_understand: Vec::new(),
        metadata: app_metadata(&manifest, &raw),
        host_requirements: Map::new(),
        variables: manifest
            .variables
            .iter()
            .map(|(name, v)| {
                (
                    name.clone(),
                    Variable {
                        description: v.description.clone(),
                        default: v.default.clone(),
                        secret: v.secret,
                    },
                )
            })
            .collect(),
        triggers: triggers(&manifest, &raw),
        components,
    };
    let locked_json = serde_json::to_vec(&locked).map_err(|e| Error::App(e.to_string()))?;
    let locked_digest = Digest::of(&locked_json);
    layers.push(Layer {
        media_type: SPIN_APPLICATION_MEDIA_TYPE,
        data: locked_json,
        digest: locked_digest.clone(),
    });

    let config = serde_json::to_vec(&ImageConfig {
        architecture: "wasm",
        os: "Wasip1",
        config: ConfigLabels {
            labels: BTreeMap::from([(
                LOCKED_APP_DIGEST_LABEL.to_owned(),
                locked_digest.to_string(),
            )]),
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: Vec::new(),
        },
    })
    .map_err(|e| Error::App(e.to_string()))?;
    let config_digest = Digest::of(&config);
    let descriptor = |media_type: &str, digest: &Digest, size: usize| Descriptor {
        media_type: media_type.to_owned(),
        digest: digest.to_string(),
        size: size as i64,
        annotations: None,
    };
    let layer_descriptors: Vec<Descriptor> = layers
        .iter()
        .map(|l| descriptor(l.media_type, &l.digest, l.data.len()))
        .collect();
    let annotations = annotations(&manifest, &options.annotations);
    let manifest_bytes = manifest_json(
        &descriptor(OCI_CONFIG_MEDIA_TYPE, &config_digest, config.len()),
        &layer_descriptors,
        &annotations,
    );
    let total: u64 = layers.iter().map(|l| l.data.len() as u64).sum::<u64>() + config.len() as u64;
    let limits = Limits::default();
    if total > limits.max_total_bytes {
        return Err(Error::Limit(format!(
            "the app is {total} bytes; Flint pulls at most {}",
            limits.max_total_bytes
        )));
    }

    let credentials = auth::lookup_credentials(&reference.registry);
    let mut client = Client::new(reference, options.connect, Access::Push, credentials)?;
    let mut uploaded = 0;
    let mut bytes = 0;
    for (digest, data) in layers
        .iter()
        .map(|l| (&l.digest, l.data.as_slice()))
        .chain(std::iter::once((&config_digest, config.as_slice())))
    {
        if upload_blob(&mut client, digest, data)? {
            uploaded += 1;
            bytes += data.len() as u64;
        }
    }
    let target = reference.target();
    let url = client.url(&format!("manifests/{target}"))?;
    let response = client.send(
        "PUT",
        &url,
        &[("content-type", OCI_MANIFEST_MEDIA_TYPE)],
        &manifest_bytes,
        64 * 1024,
    )?;
    if response.status != 201 && response.status != 200 {
        return Err(client.error(format!(
            "pushing the manifest: PUT {url} answered {}: {}",
            response.status,
            error_text(&response.body)
        )));
    }
    Ok(Pushed {
        digest: Digest::of(&manifest_bytes),
        layers: layers.len(),
        uploaded,
        bytes,
    })
}

/// Sends one blob unless the registry has it; `true` if it was sent.
fn upload_blob(client: &mut Client, digest: &Digest, data: &[u8]) -> Result<bool> {
    let blob_url = client.url(&format!("blobs/{digest}"))?;
    let head = client.send("HEAD", &blob_url, &[], &[], 0)?;
    if head.status == 200 {
        return Ok(false);
    }
    let start = client.url("blobs/uploads/")?;
    let response = client.send("POST", &start, &[("content-length", "0")], &[], 64 * 1024)?;
    if response.status != 202 {
        return Err(client.error(format!(
            "starting an upload: POST {start} answered {}: {}",
            response.status,
            error_text(&response.body)
        )));
    }
    let location = response
        .header("location")
        .ok_or_else(|| client.error("the upload session has no Location"))?;
    let upload = start
        .join(&location)
        .map_err(|m| client.error(format!("upload Location: {m}")))?
        .with_query("digest", &digest.to_string());
    let response = client.send(
        "PUT",
        &upload,
        &[("content-type", "application/octet-stream")],
        data,
        64 * 1024,
    )?;
    if response.status != 201 {
        return Err(client.error(format!(
            "uploading {digest}: PUT answered {}: {}",
            response.status,
            error_text(&response.body)
        )));
    }
    Ok(true)
}

/// Every file a component mounts, as (guest path relative to `/`, its
/// bytes), resolved as Flint mounts them: globs and single files through
/// the host's own staging (`flint_host::wasi::files`), directories walked.
fn component_files(
    manifest: &Manifest,
    component: &flint_config::Component,
) -> Result<Vec<(String, Vec<u8>)>> {
    if component.files.is_empty() {
        return Ok(Vec::new());
    }
    let scratch = std::env::temp_dir().join(format!(
        "flint-push-{}-{}",
        std::process::id(),
        component.id
    ));
    let _ = fs::remove_dir_all(&scratch);
    let result = (|| {
        let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
        flint_host::wasi::files::preopens(&manifest.dir, component, Some(&scratch))
            .map_err(|e| Error::App(format!("component `{}`: files: {e:#}", component.id)))?;
        let staged = scratch.join(&component.id);
        if staged.is_dir() {
            walk(&staged, "", &mut found, 0)?;
        }
        for mount in &component.files {
            if let FilesMount::Placement {
                source,
                destination,
                ..
            } = mount
            {
                let host = manifest.dir.join(source);
                if host.is_dir() {
                    walk(&host, destination.trim_matches('/'), &mut found, 0)?;
                }
            }
        }
        let mut total = 0u64;
        let mut files = Vec::with_capacity(found.len());
        for (path, host) in found {
            let bytes = fs::read(&host).map_err(Error::io("reading", &host))?;
            total += bytes.len() as u64;
            if total > crate::MAX_TOTAL_BYTES {
                return Err(Error::Limit(format!(
                    "component `{}`: its files are over {} bytes",
                    component.id,
                    crate::MAX_TOTAL_BYTES
                )));
            }
            files.push((path, bytes));
        }
        Ok(files)
    })();
    let _ = fs::remove_dir_all(&scratch);
    result
}

fn walk(
    dir: &Path,
    prefix: &str,
    found: &mut BTreeMap<String, PathBuf>,
    depth: usize,
) -> Result<()> {
    if depth > 64 {
        return Err(Error::App(format!(
            "`{}`: directories nested more than 64 deep",
            dir.display()
        )));
    }
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(Error::io("reading", dir))?
        .collect::<std::io::Result<_>>()
        .map_err(Error::io("reading", dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(Error::App(format!(
                "`{}`: file names must be UTF-8",
                entry.path().display()
            )));
        };
        let path = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let host = entry.path();
        let meta = fs::metadata(&host).map_err(Error::io("reading", &host))?;
        if meta.is_dir() {
            walk(&host, &path, found, depth + 1)?;
        } else if meta.is_file() {
            found.insert(path, host);
            if found.len() > crate::MAX_ENTRIES {
                return Err(Error::Limit(format!(
                    "more than {} files to push",
                    crate::MAX_ENTRIES
                )));
            }
        }
    }
    Ok(())
}

/// Spin's component metadata: description, allowed hosts (with the
/// deprecated `allowed_http_hosts` converted), stores, databases, models,
/// build; empty values left out.
fn component_metadata(component: &flint_config::Component) -> Map<String, Value> {
    let mut meta = Map::new();
    if let Some(description) = component.description.as_deref().filter(|d| !d.is_empty()) {
        meta.insert("description".into(), description.into());
    }
    let mut hosts = component.allowed_outbound_hosts.clone();
    hosts.extend(converted_http_hosts(&component.allowed_http_hosts));
    for (key, values) in [
        ("allowed_outbound_hosts", &hosts),
        ("key_value_stores", &component.key_value_stores),
        ("databases", &component.sqlite_databases),
        ("ai_models", &component.ai_models),
    ] {
        if !values.is_empty() {
            meta.insert(key.into(), json!(values));
        }
    }
    if let Some(build) = &component.build {
        let mut table = Map::new();
        table.insert(
            "command".into(),
            match build.commands.as_slice() {
                [one] => json!(one),
                many => json!(many),
            },
        );
        if let Some(workdir) = &build.workdir {
            table.insert("workdir".into(), json!(workdir));
        }
        if !build.watch.is_empty() {
            table.insert("watch".into(), json!(build.watch));
        }
        meta.insert("build".into(), Value::Object(table));
    }
    meta
}

/// Spin's `convert_allowed_http_to_allowed_hosts`.
fn converted_http_hosts(hosts: &[String]) -> Vec<String> {
    if hosts.iter().any(|h| h == "insecure:allow-all") {
        return vec![
            "http://*:*".into(),
            "https://*:*".into(),
            "http://self".into(),
        ];
    }
    hosts
        .iter()
        .flat_map(|h| {
            let bare = h
                .strip_prefix("https://")
                .or_else(|| h.strip_prefix("http://"))
                .unwrap_or(h)
                .trim_end_matches('/');
            if bare == "self" {
                vec!["http://self".to_owned()]
            } else {
                vec![format!("http://{bare}"), format!("https://{bare}")]
            }
        })
        .collect()
}

/// Spin's `locked_metadata`: name, version, description, authors, the
/// trigger settings by type, and (for a single trigger type) the old
/// `trigger` entry with its `type`.
fn app_metadata(manifest: &Manifest, raw: &toml::Table) -> Map<String, Value> {
    let app = &manifest.application;
    let mut meta = Map::new();
    meta.insert("name".into(), json!(app.name));
    for (key, value) in [("version", &app.version), ("description", &app.description)] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            meta.insert(key.into(), json!(value));
        }
    }
    if !app.authors.is_empty() {
        meta.insert("authors".into(), json!(app.authors));
    }
    let settings: Map<String, Value> = raw
        .get("application")
        .and_then(|a| a.get("trigger"))
        .and_then(toml::Value::as_table)
        .map(|t| {
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect()
        })
        .unwrap_or_default();
    let mut types = Vec::new();
    if !manifest.http_triggers.is_empty() {
        types.push("http");
    }
    if !manifest.mqtt_triggers.is_empty() {
        types.push("mqtt");
    }
    if !manifest.redis_triggers.is_empty() {
        types.push("redis");
    }
    if let [only] = types.as_slice() {
        let mut single = settings
            .get(*only)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        single.insert("type".into(), json!(only));
        meta.insert("trigger".into(), Value::Object(single));
    }
    meta.insert("triggers".into(), Value::Object(settings));
    meta
}

/// Each `[[trigger.<type>]]` table as written, less its `id` (the locked
/// trigger's own field), its `component` replaced by the id Flint's loader
/// gave it (inline components are moved out, as Spin's normalisation does).
fn triggers(manifest: &Manifest, raw: &toml::Table) -> Vec<LockedTrigger> {
    let raw_of = |kind: &str| -> Vec<toml::Table> {
        raw.get("trigger")
            .and_then(|t| t.get(kind))
            .and_then(toml::Value::as_array)
            .map(|a| a.iter().filter_map(|t| t.as_table().cloned()).collect())
            .unwrap_or_default()
    };
    let locked = |kind: &str, id: &str, component: Option<&str>, table: Option<toml::Table>| {
        let mut config: Map<String, Value> = table
            .unwrap_or_default()
            .iter()
            .filter(|(k, _)| k.as_str() != "id")
            .map(|(k, v)| (k.clone(), toml_to_json(v)))
            .collect();
        if let Some(component) = component {
            config.insert("component".into(), json!(component));
        }
        LockedTrigger {
            id: id.to_owned(),
            trigger_type: kind.to_owned(),
            trigger_config: Value::Object(config),
            trigger_dependencies: Map::new(),
        }
    };
    let mut out = Vec::new();
    let mut http = raw_of("http").into_iter();
    for trigger in &manifest.http_triggers {
        out.push(locked(
            "http",
            &trigger.id,
            trigger.component.as_deref(),
            http.next(),
        ));
    }
    let mut mqtt = raw_of("mqtt").into_iter();
    for trigger in &manifest.mqtt_triggers {
        out.push(locked(
            "mqtt",
            &trigger.id,
            Some(&trigger.component),
            mqtt.next(),
        ));
    }
    let mut redis = raw_of("redis").into_iter();
    for trigger in &manifest.redis_triggers {
        out.push(locked(
            "redis",
            &trigger.id,
            Some(&trigger.component),
            redis.next(),
        ));
    }
    out
}

fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => json!(s),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        toml::Value::Datetime(d) => json!(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// Spin's `all_annotations` with `InferPredefinedAnnotations::All`: the
/// explicit ones, then authors, title, description, version and created,
/// each unless given explicitly (or empty).
fn annotations(manifest: &Manifest, explicit: &[(String, String)]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = explicit.iter().cloned().collect();
    let app = &manifest.application;
    let mut infer = |key: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.entry(key.to_owned()).or_insert(value);
        }
    };
    if !app.authors.is_empty() {
        infer(
            "org.opencontainers.image.authors",
            Some(app.authors.join(", ")),
        );
    }
    infer("org.opencontainers.image.title", Some(app.name.clone()));
    infer(
        "org.opencontainers.image.description",
        app.description.clone(),
    );
    infer("org.opencontainers.image.version", app.version.clone());
    infer("org.opencontainers.image.created", Some(rfc3339_now()));
    out
}

/// The current UTC time as RFC 3339 (`2024-05-01T12:00:00+00:00`, chrono's
/// `to_rfc3339` form).
fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

fn rfc3339(secs: u64) -> String {
    let rem = secs % 86_400;
    let (year, month, day) = flint_config::date::civil_from_days((secs / 86_400) as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00+00:00");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20+00:00");
    }

    #[test]
    fn http_hosts_convert_as_spin_does() {
        assert_eq!(
            converted_http_hosts(&["example.com:8080".into(), "self".into()]),
            [
                "http://example.com:8080",
                "https://example.com:8080",
                "http://self"
            ]
        );
        assert_eq!(
            converted_http_hosts(&["insecure:allow-all".into()]).len(),
            3
        );
    }
}
