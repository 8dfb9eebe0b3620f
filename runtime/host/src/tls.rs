//! TLS for connections out (guests' `https://` and `mqtts://`, the MQTT
//! trigger and the outbox): rustls with the ring provider, configured with
//! Spin's `[[client_tls]]` entries. Roots are the device's CA store, or
//! Mozilla's compiled-in roots where the device has none; SNI and hostname
//! verification are always on, and nothing can turn verification off.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use flint_config::ClientTlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{config}:{line}:{column}: client_tls: cannot read {}: {source}", file.display())]
    Read {
        config: PathBuf,
        line: usize,
        column: usize,
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{config}:{line}:{column}: client_tls: {} {problem}", file.display())]
    Pem {
        config: PathBuf,
        line: usize,
        column: usize,
        file: PathBuf,
        problem: String,
    },
    #[error("{config}:{line}:{column}: client_tls: {problem}")]
    Config {
        config: PathBuf,
        line: usize,
        column: usize,
        problem: String,
    },
}

/// The ring provider, given explicitly to every configuration: no process
/// default is needed, and aws-lc-rs is never compiled in.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The TLS configurations of an app: one per `[[client_tls]]` entry, and
/// the default for hosts no entry names.
pub struct TlsConfigs {
    entries: Vec<Entry>,
    /// Built on first use: reading the device's CA store costs start-up time.
    default: OnceLock<Arc<ClientConfig>>,
}

struct Entry {
    component_ids: Vec<String>,
    hosts: Vec<String>,
    config: Arc<ClientConfig>,
}

impl TlsConfigs {
    /// Loads every entry's files now, so a bad certificate or key stops
    /// start-up naming the file. `config` is the runtime-config file.
    pub fn load(entries: &[ClientTlsConfig], config: &Path) -> Result<Self, TlsError> {
        let entries = entries
            .iter()
            .map(|entry| {
                Ok(Entry {
                    component_ids: entry.component_ids.clone(),
                    hosts: entry.hosts.clone(),
                    config: Arc::new(client_config(entry, config)?),
                })
            })
            .collect::<Result<_, TlsError>>()?;
        Ok(Self {
            entries,
            default: OnceLock::new(),
        })
    }

    pub fn none() -> Self {
        Self {
            entries: Vec::new(),
            default: OnceLock::new(),
        }
    }

    /// The configuration for `component` connecting to `host`.
    pub fn for_component(&self, component: &str, host: &str) -> Arc<ClientConfig> {
        self.find(|e| e.component_ids.iter().any(|c| c == component), host)
    }

    /// The configuration for the MQTT trigger and the outbox: the first entry
    /// naming `host`, with or without `component_ids` (a Flint extension: the
    /// trigger is not a component).
    pub fn for_broker(&self, host: &str) -> Arc<ClientConfig> {
        self.find(|_| true, host)
    }

    fn find(&self, applies: impl Fn(&Entry) -> bool, host: &str) -> Arc<ClientConfig> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.entries
            .iter()
            .find(|e| applies(e) && e.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
            .map(|e| e.config.clone())
            .unwrap_or_else(|| self.default.get_or_init(default_config).clone())
    }
}

/// The device's CA store, or Mozilla's roots when it has none.
fn default_roots() -> RootCertStore {
    let mut roots = platform_roots();
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

fn default_config() -> Arc<ClientConfig> {
    Arc::new(
        builder()
            .with_root_certificates(default_roots())
            .with_no_client_auth(),
    )
}

/// The default roots and the certificates of `pem`: a guest's own root
/// (Spin's PostgreSQL `connection-builder.set-ca-root`, which adds to the
/// system's roots), or why `pem` holds none rustls can use.
pub fn with_extra_roots(pem: &str) -> Result<Arc<ClientConfig>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    let mut roots = default_roots();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("a certificate rustls cannot use as a root: {e}"))?;
    }
    Ok(Arc::new(
        builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

fn platform_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(target: "flint::tls", "reading the device's CA certificates: {error}");
    }
    let mut roots = RootCertStore::empty();
    let (_added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::warn!(target: "flint::tls", ignored, "some of the device's CA certificates could not be used");
    }
    roots
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("the ring provider supports TLS 1.2 and 1.3")
}

fn client_config(entry: &ClientTlsConfig, config: &Path) -> Result<ClientConfig, TlsError> {
    let at = |problem: String| TlsError::Config {
        config: config.to_owned(),
        line: entry.location.line,
        column: entry.location.column,
        problem,
    };
    let read = |file: &Path| {
        std::fs::read(file).map_err(|source| TlsError::Read {
            config: config.to_owned(),
            line: entry.location.line,
            column: entry.location.column,
            file: file.to_owned(),
            source,
        })
    };
    let pem = |file: &Path, problem: String| TlsError::Pem {
        config: config.to_owned(),
        line: entry.location.line,
        column: entry.location.column,
        file: file.to_owned(),
        problem,
    };
    let certs = |file: &Path| -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let bytes = read(file)?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem(file, format!("is not a valid PEM certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(pem(file, "holds no PEM certificate".into()));
        }
        Ok(certs)
    };
    let mut roots = RootCertStore::empty();
    if entry.ca_use_platform_roots {
        roots = platform_roots();
    }
    if entry.ca_use_webpki_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(file) = &entry.ca_roots_file {
        for cert in certs(file)? {
            roots.add(cert).map_err(|e| {
                pem(
                    file,
                    format!("holds a certificate rustls cannot use as a root: {e}"),
                )
            })?;
        }
    }
    if roots.is_empty() {
        return Err(at(
            "no trusted roots: the device has no CA store and neither ca_roots_file nor ca_use_webpki_roots is given".into(),
        ));
    }
    let builder = builder().with_root_certificates(roots);
    let mut tls = match &entry.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert_file, key_file)) => {
            let chain = certs(cert_file)?;
            let key = PrivateKeyDer::from_pem_slice(&read(key_file)?).map_err(|e| {
                pem(
                    key_file,
                    format!("is not a PKCS#8, PKCS#1 or SEC1 PEM private key: {e}"),
                )
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                pem(
                    key_file,
                    format!("does not fit {}: {e}", cert_file.display()),
                )
            })?
        }
    };
    tls.alpn_protocols = entry.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(tls)
}

/// How a TLS failure reaches a guest and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server's certificate did not verify (unknown issuer, name
    /// mismatch, expired, ...).
    Certificate(String),
    /// The server sent an alert (for example: it required a client certificate).
    Alert { id: Option<u8>, description: String },
    /// Anything else the handshake or the record layer refused.
    Protocol(String),
}

impl TlsFailure {
    /// Classifies an I/O error from a TLS stream; `None` if it is not TLS's.
    pub fn of(e: &std::io::Error) -> Option<Self> {
        let rustls_error = e.get_ref()?.downcast_ref::<rustls::Error>()?;
        Some(match rustls_error {
            rustls::Error::InvalidCertificate(why) => Self::Certificate(format!("{why:?}")),
            rustls::Error::AlertReceived(alert) => Self::Alert {
                id: Some(u8::from(*alert)),
                description: format!("{alert:?}"),
            },
            other => Self::Protocol(other.to_string()),
        })
    }
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsFailure::Certificate(why) => {
                write!(f, "the server's certificate is not valid: {why}")
            }
            TlsFailure::Alert { description, .. } => {
                write!(f, "the server sent TLS alert {description}")
            }
            TlsFailure::Protocol(why) => write!(f, "TLS failed: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(components: &[&str], hosts: &[&str]) -> ClientTlsConfig {
        ClientTlsConfig {
            component_ids: components.iter().map(|c| c.to_string()).collect(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ca_use_platform_roots: false,
            ca_use_webpki_roots: true,
            ca_roots_file: None,
            client_cert: None,
            alpn: vec!["x-test".into()],
            location: flint_config::Location { line: 1, column: 1 },
        }
    }

    #[test]
    fn entries_apply_to_their_components_and_the_broker_to_any() {
        let configs = TlsConfigs::load(
            &[
                entry(&["a"], &["api.example.com"]),
                entry(&[], &["broker.example.com"]),
            ],
            Path::new("runtime-config.toml"),
        )
        .expect("no files to read");
        let for_a = configs.for_component("a", "API.example.com");
        assert_eq!(
            for_a.alpn_protocols,
            [b"x-test".to_vec()],
            "hosts match without case"
        );
        assert!(
            configs
                .for_component("b", "api.example.com")
                .alpn_protocols
                .is_empty()
        );
        assert!(
            configs
                .for_component("a", "broker.example.com")
                .alpn_protocols
                .is_empty()
        );
        assert!(Arc::ptr_eq(
            &configs.for_broker("broker.example.com"),
            &configs.for_broker("broker.example.com")
        ));
        assert_eq!(
            configs.for_broker("api.example.com").alpn_protocols,
            [b"x-test".to_vec()]
        );
        // Hosts no entry names share one default configuration.
        assert!(Arc::ptr_eq(
            &configs.for_component("b", "x"),
            &configs.for_broker("y")
        ));
    }

    #[test]
    fn an_entry_without_roots_is_refused_naming_where_it_is() {
        let mut none = entry(&["a"], &["h"]);
        none.ca_use_webpki_roots = false;
        let err = TlsConfigs::load(&[none], Path::new("rc.toml"))
            .err()
            .expect("refused");
        assert!(
            err.to_string()
                .starts_with("rc.toml:1:1: client_tls: no trusted roots"),
            "{err}"
        );
    }
}
