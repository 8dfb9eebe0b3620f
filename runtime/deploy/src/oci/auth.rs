//! Registry credentials: Flint's own file, written by `flint registry login`
//! (`$XDG_CONFIG_HOME/flint/registry-auth.json`, else
//! `~/.config/flint/registry-auth.json`, mode 0600), in the format of Spin's
//! (`crates/oci/src/auth.rs`: `{"auths": {"<registry>": "<base64 user:pass>"}}`),
//! then Docker's (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`:
//! `auths.<registry>.auth`), the order Spin looks them up in. Spin's own file
//! (`$XDG_CONFIG_HOME/fermyon/registry-auth.json`) is read between the two,
//! so a `spin registry login` serves Flint too.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::http::{Access, Client, error_text};
use super::reference::check_registry;
use super::{Connect, Error, Result};
// The one base64 implementation, in flint-host; locked.rs reaches it through here.
pub(crate) use flint_host::base64::{decode as base64_decode, encode as base64_encode};

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// Where they came from, for messages (never the secret itself).
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// `Basic <base64 user:pass>`.
pub(crate) fn basic_header(credentials: &Credentials) -> String {
    format!(
        "Basic {}",
        base64_encode(
            format!("{}:{}", credentials.username, credentials.password).as_bytes(),
            true
        )
    )
}

/// Flint's credentials file.
pub fn flint_auth_path() -> Option<PathBuf> {
    Some(config_dir()?.join("flint").join("registry-auth.json"))
}

/// Spin's (`spin registry login`), read after Flint's.
pub fn spin_auth_path() -> Option<PathBuf> {
    Some(config_dir()?.join("fermyon").join("registry-auth.json"))
}

/// `$XDG_CONFIG_HOME`, else `~/.config` (what Spin's `dirs::config_dir` is on Linux).
fn config_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            Some(PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".config"))
        }
    }
}

/// Docker's configuration file.
pub fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => Some(
            PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?)
                .join(".docker")
                .join("config.json"),
        ),
    }
}

/// The key a registry's credentials are stored under, as Spin normalises
/// what `spin registry login` is given: `https://ghcr.io` and `ghcr.io`
/// are the same, and `docker.io` is `index.docker.io`.
pub(crate) fn registry_key(server: &str) -> String {
    let server = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let server = server.split('/').next().unwrap_or(server);
    match server {
        "docker.io" | "registry-1.docker.io" => "index.docker.io".to_owned(),
        other => other.to_ascii_lowercase(),
    }
}

/// The credentials for `registry`: Flint's file first, then Spin's (same
/// format), then Docker's.
pub fn lookup_credentials(registry: &str) -> Option<Credentials> {
    let key = registry_key(registry);
    for path in [flint_auth_path(), spin_auth_path()].into_iter().flatten() {
        if let Some(found) = from_flint_file(&path, &key) {
            return Some(found);
        }
    }
    let path = docker_config_path()?;
    from_docker_file(&path, &key)
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    let text = fs::read(path).ok()?;
    match serde_json::from_slice(&text) {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::warn!(target: "flint::oci", "ignoring {}: not JSON: {e}", path.display());
            None
        }
    }
}

fn from_flint_file(path: &Path, key: &str) -> Option<Credentials> {
    let value = read_json(path)?;
    let auths = value.get("auths")?.as_object()?;
    let encoded = auths
        .iter()
        .find(|(server, _)| registry_key(server) == key)?
        .1
        .as_str()?;
    decode_pair(encoded, path)
}

fn from_docker_file(path: &Path, key: &str) -> Option<Credentials> {
    let value = read_json(path)?;
    let entry = value
        .get("auths")?
        .as_object()?
        .iter()
        .find(|(server, _)| registry_key(server) == key)?
        .1;
    if let Some(encoded) = entry
        .get("auth")
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
    {
        return decode_pair(encoded, path);
    }
    if let (Some(username), Some(password)) = (
        entry.get("username").and_then(|u| u.as_str()),
        entry.get("password").and_then(|p| p.as_str()),
    ) {
        return Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
            source: path.display().to_string(),
        });
    }
    if value.get("credsStore").is_some() || value.get("credHelpers").is_some() {
        tracing::warn!(
            target: "flint::oci",
            "{}: credential helpers (credsStore, credHelpers) are not supported; use `flint registry login`",
            path.display()
        );
    }
    None
}

fn decode_pair(encoded: &str, path: &Path) -> Option<Credentials> {
    let decoded = base64_decode(encoded.trim())?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some(Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
        source: path.display().to_string(),
    })
}

/// `flint registry login`: checks the credentials against the registry (as
/// Spin does before saving them), then stores them in Flint's file.
/// Returns the file.
pub fn login(server: &str, username: &str, password: &str, connect: Connect) -> Result<PathBuf> {
    let key = registry_key(server);
    check_registry(&key).map_err(|why| Error::App(format!("`{server}`: {why}")))?;
    if username.is_empty() || username.contains(':') {
        return Err(Error::App(
            "the user name must not be empty or contain `:`".into(),
        ));
    }
    let credentials = Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
        source: "the command line".to_owned(),
    };
    validate(&key, &credentials, connect)?;
    let path = flint_auth_path().ok_or_else(|| {
        Error::App("neither XDG_CONFIG_HOME nor HOME is set: nowhere to store credentials".into())
    })?;
    store(&path, &key, &credentials)?;
    Ok(path)
}

/// `GET /v2/` with the credentials, answering a Basic or Bearer challenge.
fn validate(registry: &str, credentials: &Credentials, connect: Connect) -> Result<()> {
    let api = if registry == "index.docker.io" {
        "index.docker.io"
    } else {
        registry
    };
    let mut client = Client::for_registry(
        registry,
        api,
        "",
        connect,
        Access::Pull,
        Some(credentials.clone()),
    )?;
    let url = client.base.clone();
    let first = client.send_once("GET", &url)?;
    match first.status {
        200 => Ok(()),
        401 => {
            let challenge = first.header("www-authenticate").unwrap_or_default();
            let (scheme, params) = super::http::parse_challenge(&challenge);
            if scheme.eq_ignore_ascii_case("bearer") {
                let realm = params
                    .iter()
                    .find(|(k, _)| k == "realm")
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| Error::Auth {
                        registry: registry.to_owned(),
                        message: "a Bearer challenge without a realm".into(),
                    })?;
                let service = params
                    .iter()
                    .find(|(k, _)| k == "service")
                    .map(|(_, v)| v.clone());
                client.token(&realm, service.as_deref(), None).map(|_| ())
            } else {
                let retried = client.send_with("GET", &url, &basic_header(credentials))?;
                match retried.status {
                    200 => Ok(()),
                    status => Err(Error::Auth {
                        registry: registry.to_owned(),
                        message: format!(
                            "cannot log in as `{}`: the registry answered {status} ({})",
                            credentials.username,
                            error_text(&retried.body)
                        ),
                    }),
                }
            }
        }
        status => Err(Error::Registry {
            registry: registry.to_owned(),
            message: format!("GET /v2/ answered {status}: {}", error_text(&first.body)),
        }),
    }
}

/// Adds or replaces `registry`'s entry, keeping the others; the file is
/// replaced atomically and readable by its owner only.
fn store(path: &Path, registry: &str, credentials: &Credentials) -> Result<()> {
    let mut value = read_json(path).unwrap_or_else(|| serde_json::json!({}));
    if !value.is_object() {
        value = serde_json::json!({});
    }
    let object = value.as_object_mut().expect("made an object above");
    let auths = object
        .entry("auths")
        .or_insert_with(|| serde_json::json!({}));
    if !auths.is_object() {
        *auths = serde_json::json!({});
    }
    let encoded = base64_encode(
        format!("{}:{}", credentials.username, credentials.password).as_bytes(),
        true,
    );
    if let Some(auths) = auths.as_object_mut() {
        auths.retain(|server, _| registry_key(server) != registry);
        auths.insert(registry.to_owned(), serde_json::Value::String(encoded));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    let text = serde_json::to_vec_pretty(&value).map_err(|e| Error::App(e.to_string()))?;
    let tmp = dir.join(format!(".registry-auth.json.tmp-{}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(Error::io("creating", &tmp))?;
    // An existing temp file keeps its mode: set it either way.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(&text))
        .and_then(|()| file.sync_all())
        .map_err(Error::io("writing", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(Error::io("replacing", path))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_keys_are_normalised_as_spin_does() {
        assert_eq!(registry_key("https://ghcr.io"), "ghcr.io");
        assert_eq!(
            registry_key("https://index.docker.io/v1/"),
            "index.docker.io"
        );
        assert_eq!(registry_key("docker.io"), "index.docker.io");
        assert_eq!(registry_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn the_store_keeps_other_entries_and_is_private() {
        let dir = std::env::temp_dir().join(format!("flint-oci-auth-{}", std::process::id()));
        let path = dir.join("flint/registry-auth.json");
        let creds = |u: &str| Credentials {
            username: u.into(),
            password: "secret".into(),
            source: String::new(),
        };
        store(&path, "a.example", &creds("one")).expect("store");
        store(&path, "b.example:5000", &creds("two")).expect("store");
        store(&path, "a.example", &creds("three")).expect("store");
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            from_flint_file(&path, "a.example").map(|c| c.username),
            Some("three".into())
        );
        assert_eq!(
            from_flint_file(&path, "b.example:5000").map(|c| c.password),
            Some("secret".into())
        );
        let docker = dir.join("docker.json");
        fs::write(
            &docker,
            format!(
                r#"{{"auths":{{"https://c.example":{{"auth":"{}"}}}}}}"#,
                base64_encode(b"dock:er", true)
            ),
        )
        .expect("write");
        assert_eq!(
            from_docker_file(&docker, "c.example").map(|c| (c.username, c.password)),
            Some(("dock".into(), "er".into()))
        );
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
