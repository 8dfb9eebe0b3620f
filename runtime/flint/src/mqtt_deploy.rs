//! App updates over MQTT: with `[deploy] mqtt_topic` in the runtime config,
//! `flint up --app-dir DIR` subscribes (QoS 1) to that topic and deploys what
//! each message names, one message at a time, acknowledging it only once it
//! is handled:
//!
//! ```json
//! {"url": "https://updates.example.com/app.flint", "digest": "sha256:<hex of the bundle file>"}
//! {"reference": "ghcr.io/me/app:1.2", "digest": "sha256:<hex of the OCI manifest>"}
//! ```
//!
//! A bundle URL is fetched with Flint's own HTTP client over its TLS stack
//! (bounded in size and time) and its SHA-256 must equal `digest` before
//! anything else looks at it. A reference is pulled pinned to `digest` (the
//! manifest and every blob checked), materialized and packed into a bundle
//! as `flint deploy --from` does. Either bundle then goes through
//! [`Reloader::deploy_bundle`]: the verified deploy, the health check, the
//! switch, and the rollback when it fails. The result is published (QoS 1,
//! not retained) to `status_topic`, by default `<mqtt_topic>/status`:
//!
//! ```json
//! {"device": "gw-7", "digest": "sha256:…", "status": "deployed", "version": "<id>"}
//! {"device": "gw-7", "digest": "sha256:…", "status": "failed", "version": "<id still serving>", "error": "…"}
//! ```
//!
//! A fleet is updated by one retained message per device group. Each digest
//! deployed is recorded with its version id (`<state>/deploy-mqtt/digests`),
//! so the retained message, which the broker sends again at every restart,
//! answers `unchanged` without a download while its version is serving.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use anyhow::{Context as _, bail};
use flint_config::runtime_config::DEVICE_ID_VARIABLE;
use flint_config::{DeployConfig, MqttAddress};
use flint_deploy::oci::{Digest, Reference};
use flint_host::backoff::Backoff;
use flint_host::blocked_networks::BlockedNetworks;
use flint_host::outbound_http::{self, Bounds, Headers};
use flint_host::outbox::{Target, describe};
use flint_host::tls::TlsConfigs;
use flint_host::{ErrorCode, variables};
use rumqttc::{Client, Event, Packet, Publish, QoS};
use serde::Deserialize;

use crate::reload::{Reloaded, Reloader};

/// The largest deploy message handled; a larger one is answered `failed`.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// The largest MQTT packet read: anything between this and
/// [`MAX_MESSAGE_BYTES`] is still read (and refused), so an oversized
/// retained message does not break the connection at every reconnect.
const MAX_PACKET_BYTES: usize = 1 << 20;
/// The largest bundle downloaded from a URL (held in memory until its digest
/// is checked).
pub const MAX_DOWNLOAD_BYTES: usize = 64 << 20;
/// Redirects followed for a bundle URL (never from `https` to `http`).
const MAX_REDIRECTS: usize = 5;
/// Connecting to the bundle's server; each read and write then has
/// [`DOWNLOAD_IO_TIMEOUT`], and the whole download four times that.
const DOWNLOAD_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const DOWNLOAD_IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Keep-alive with a `[deploy] mqtt_address` broker.
const KEEP_ALIVE_SECS: u64 = 30;
/// Digests remembered with their version ids.
const MAX_RECORDED: usize = 32;

/// What the deploy channel is started from.
pub struct Settings<'a> {
    /// The runtime config's `[deploy]` section.
    pub deploy: &'a DeployConfig,
    /// The serving version's manifest: its `[application.trigger.mqtt]`
    /// broker, when `[deploy] mqtt_address` does not name one.
    pub manifest: &'a Path,
    /// `--variable`s: `device_id`, and the manifest's for its broker settings.
    pub variables: &'a [(String, String)],
    /// `[[client_tls]]`: for an `mqtts://` broker and `https://` bundle URLs.
    pub services: Arc<flint_host::capabilities::Services>,
    /// `-k`: pull references over plain HTTP.
    pub insecure: bool,
}

/// Where deploy messages come from and results go.
#[derive(Debug, Clone)]
pub struct Channel {
    pub broker: String,
    pub topic: String,
    pub status_topic: String,
    pub device_id: String,
}

/// Starts the deploy channel when `[deploy] mqtt_topic` is set: connects,
/// subscribes and deploys in threads of its own, reconnecting forever.
/// Returns what it listens to (`None` without `mqtt_topic`).
pub fn start(reloader: &Arc<Reloader>, settings: Settings<'_>) -> anyhow::Result<Option<Channel>> {
    let Some(template) = settings.deploy.mqtt_topic.as_deref() else {
        return Ok(None);
    };
    let env = |name: &str| std::env::var(name).ok();
    let device_id = device_id(settings.variables, env)?;
    let (topic, status_topic) = topics(
        template,
        settings.deploy.status_topic.as_deref(),
        &device_id,
    )?;
    let target = broker(&settings, &device_id)?;
    let channel = Channel {
        broker: target.url(),
        topic,
        status_topic,
        device_id,
    };

    let mut options = target.options();
    options
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    let (client, connection) = Client::new(options, 64);
    // One message at a time: the session thread keeps the connection alive
    // while a deploy runs, and waits when a few are queued.
    let (queue, messages) = sync_channel::<Publish>(8);
    let worker = Worker {
        reloader: reloader.clone(),
        client: client.clone(),
        channel: channel.clone(),
        services: settings.services,
        insecure: settings.insecure,
    };
    std::thread::Builder::new()
        .name("flint-deploy".into())
        .spawn(move || worker.run(messages))
        .context("starting the deploy thread")?;
    let session_channel = channel.clone();
    std::thread::Builder::new()
        .name("flint-deploy-mqtt".into())
        .spawn(move || session(client, connection, &session_channel, &queue))
        .context("starting the deploy channel's MQTT thread")?;
    tracing::info!(
        target: "flint::deploy",
        broker = %channel.broker,
        topic = %channel.topic,
        status_topic = %channel.status_topic,
        device_id = %channel.device_id,
        "receiving deploys over MQTT"
    );
    Ok(Some(channel))
}

/// `device_id`: `--variable device_id=…` (the last one), else
/// `SPIN_VARIABLE_DEVICE_ID`, else the machine's host name.
fn device_id(
    given: &[(String, String)],
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<String> {
    let id = given
        .iter()
        .rev()
        .find(|(name, _)| name == DEVICE_ID_VARIABLE)
        .map(|(_, value)| value.clone())
        .or_else(|| env(&variables::env_name(DEVICE_ID_VARIABLE)))
        .or_else(hostname)
        .context(
            "`[deploy] mqtt_topic` needs a device id: pass `--variable device_id=…` or set SPIN_VARIABLE_DEVICE_ID (the host name is unknown)",
        )?;
    if id.is_empty() {
        bail!("the device id is empty (`--variable device_id=…` or SPIN_VARIABLE_DEVICE_ID)");
    }
    Ok(id)
}

/// The machine's host name, as the kernel has it.
fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|file| {
            let name = std::fs::read_to_string(file).ok()?;
            let name = name.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
}

/// The deploy topic and the status topic, with `{{ device_id }}` expanded.
fn topics(
    template: &str,
    status_template: Option<&str>,
    device_id: &str,
) -> anyhow::Result<(String, String)> {
    let expand = |key: &str, template: &str| -> anyhow::Result<String> {
        let topic = flint_config::expand_template(template, |name| {
            (name == DEVICE_ID_VARIABLE).then(|| device_id.to_owned())
        })
        .with_context(|| format!("`[deploy] {key}` `{template}`"))?;
        flint_config::check_topic_name(&topic).with_context(|| {
            format!("`[deploy] {key}` `{template}` with device id `{device_id}` is `{topic}`")
        })?;
        Ok(topic)
    };
    let topic = expand("mqtt_topic", template)?;
    let status = match status_template {
        Some(template) => expand("status_topic", template)?,
        None => format!("{topic}/status"),
    };
    if status == topic {
        bail!(
            "`[deploy] status_topic` is the deploy topic `{topic}`: results would arrive as deploy messages"
        );
    }
    Ok((topic, status))
}

/// `[deploy] mqtt_address`, else the manifest's broker (with its
/// credentials and keep-alive); under client id `flint-deploy-<device id>`,
/// apart from the app's own MQTT session.
fn broker(settings: &Settings<'_>, device_id: &str) -> anyhow::Result<Target> {
    let client_id = format!("flint-deploy-{device_id}");
    let tls = |address: &MqttAddress| {
        address.tls.then(|| {
            flint_host::mqtt_tls::TlsClient(settings.services.tls.for_broker(&address.host))
        })
    };
    if let Some(text) = &settings.deploy.mqtt_address {
        let address = MqttAddress::parse(text)
            .with_context(|| format!("`[deploy] mqtt_address` `{text}`"))?;
        return Ok(Target {
            tls: tls(&address),
            host: address.host,
            port: address.port,
            client_id,
            username: String::new(),
            password: String::new(),
            keep_alive_secs: KEEP_ALIVE_SECS,
        });
    }
    let manifest = flint_config::load_manifest(settings.manifest)?;
    let Some(mqtt) = &manifest.application.mqtt else {
        bail!(
            "`[deploy] mqtt_topic` needs a broker: set `[deploy] mqtt_address = \"mqtt://host:port\"` in the runtime config, or `[application.trigger.mqtt] address` in {}",
            settings.manifest.display()
        );
    };
    let values = variables::resolve_app(&manifest, settings.variables, |name| {
        std::env::var(name).ok()
    })?;
    let expand = |what: &str, template: &str| {
        variables::expand(template, &values)
            .with_context(|| format!("{}: MQTT {what}", manifest.path.display()))
    };
    let text = expand("address", &mqtt.address)?;
    let address = MqttAddress::parse(&text)
        .with_context(|| format!("{}: MQTT address `{text}`", manifest.path.display()))?;
    Ok(Target {
        tls: tls(&address),
        host: address.host,
        port: address.port,
        client_id,
        username: expand("username", &mqtt.username)?,
        password: expand("password", &mqtt.password)?,
        keep_alive_secs: mqtt.keep_alive_secs,
    })
}

/// The connection, forever: a persistent session (deploys published while
/// Flint was away wait at the broker), subscribed again whenever the broker
/// lost it and once per process (which brings the retained message).
fn session(
    client: Client,
    mut connection: rumqttc::Connection,
    channel: &Channel,
    queue: &SyncSender<Publish>,
) {
    let broker = &channel.broker;
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut subscribed_once = false;
    let mut down_logged = false;
    while let Ok(event) = connection.recv() {
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                down_logged = false;
                tracing::info!(target: "flint::deploy", %broker, session_present = ack.session_present, "deploy channel connected");
                if !ack.session_present || !subscribed_once {
                    match client.try_subscribe(channel.topic.clone(), QoS::AtLeastOnce) {
                        Ok(()) => subscribed_once = true,
                        Err(e) => {
                            tracing::error!(target: "flint::deploy", topic = %channel.topic, "cannot subscribe: {e}")
                        }
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|code| matches!(code, rumqttc::SubscribeReasonCode::Failure))
                {
                    tracing::error!(target: "flint::deploy", %broker, topic = %channel.topic, "the broker refused the deploy topic's subscription");
                } else {
                    tracing::info!(target: "flint::deploy", %broker, topic = %channel.topic, "subscribed to the deploy topic");
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if queue.send(publish).is_err() {
                    return; // The deploy thread is gone.
                }
            }
            Ok(_) => {}
            Err(e) => {
                let delay = backoff.next_delay();
                if down_logged {
                    tracing::debug!(target: "flint::deploy", %broker, "deploy channel still disconnected: {}; next try in {delay:?}", describe(&e));
                } else {
                    tracing::warn!(target: "flint::deploy", %broker, "deploy channel disconnected: {}; reconnecting with backoff (next try in {delay:?})", describe(&e));
                    down_logged = true;
                }
                std::thread::sleep(delay);
            }
        }
    }
}

/// Handles deploy messages in order, one at a time.
struct Worker {
    reloader: Arc<Reloader>,
    client: Client,
    channel: Channel,
    services: Arc<flint_host::capabilities::Services>,
    insecure: bool,
}

/// A deploy message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    reference: Option<String>,
    url: Option<String>,
    digest: String,
}

/// How a message was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Deployed,
    Unchanged,
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Deployed => "deployed",
            Status::Unchanged => "unchanged",
            Status::Failed => "failed",
        }
    }
}

impl Worker {
    fn run(self, messages: Receiver<Publish>) {
        for publish in messages {
            let (digest, outcome) = self.handle(&publish.payload);
            let version = self.reloader.serving();
            let (status, error) = match outcome {
                Ok(status) => (status, None),
                Err(e) => (Status::Failed, Some(format!("{e:#}"))),
            };
            match &error {
                None => {
                    tracing::info!(target: "flint::deploy", digest = digest.as_deref().unwrap_or(""), %version, "deploy message: {}", status.as_str())
                }
                Some(e) => {
                    tracing::error!(target: "flint::deploy", digest = digest.as_deref().unwrap_or(""), %version, "deploy message failed: {e}")
                }
            }
            let report = status_document(
                &self.channel.device_id,
                digest.as_deref(),
                status,
                &version,
                error.as_deref(),
            );
            if let Err(e) = self.client.publish(
                self.channel.status_topic.clone(),
                QoS::AtLeastOnce,
                false,
                report,
            ) {
                tracing::error!(target: "flint::deploy", topic = %self.channel.status_topic, "cannot publish the deploy status: {e}");
            }
            if let Err(e) = self.client.ack(&publish) {
                tracing::error!(target: "flint::deploy", "cannot acknowledge the deploy message: {e}");
            }
        }
    }

    /// The message's digest (when it has one) and what became of it.
    fn handle(&self, payload: &[u8]) -> (Option<String>, anyhow::Result<Status>) {
        if payload.len() > MAX_MESSAGE_BYTES {
            return (
                None,
                Err(anyhow::anyhow!(
                    "the deploy message has {} bytes, over the limit of {MAX_MESSAGE_BYTES}",
                    payload.len()
                )),
            );
        }
        let message: Message = match serde_json::from_slice(payload) {
            Ok(message) => message,
            Err(e) => {
                // The digest, if that much can be read, so the sender can tell
                // which of its messages this answers.
                let digest = serde_json::from_slice::<serde_json::Value>(payload)
                    .ok()
                    .and_then(|v| v.get("digest")?.as_str().map(str::to_owned));
                return (
                    digest,
                    Err(anyhow::anyhow!(
                        "not a deploy message ({e}): expected {{\"url\": \"https://…\", \"digest\": \"sha256:…\"}} or {{\"reference\": \"registry/repo:tag\", \"digest\": \"sha256:…\"}}"
                    )),
                );
            }
        };
        let result = self.deploy(&message);
        (Some(message.digest), result)
    }

    fn deploy(&self, message: &Message) -> anyhow::Result<Status> {
        let Some(digest) = Digest::parse(&message.digest) else {
            bail!(
                "`digest` `{}` is not `sha256:` followed by 64 lower-case hex digits",
                message.digest
            );
        };
        let source = match (&message.url, &message.reference) {
            (Some(url), None) => Source::Url(url),
            (None, Some(reference)) => Source::Reference(reference),
            (Some(_), Some(_)) => bail!("give `url` or `reference`, not both"),
            (None, None) => bail!("the message names no `url` and no `reference`"),
        };
        let record = Record::new(&self.reloader.dir.state_dir());
        let serving = self.reloader.serving();
        if record.version_of(&digest).as_deref() == Some(serving.as_str()) {
            return Ok(Status::Unchanged);
        }
        let work = record.dir.clone();
        std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
        let bundle = work.join(format!("{}-{}.flint", digest.hex(), unique()));
        let result = (|| {
            match source {
                Source::Url(url) => self.fetch(url, &digest, &bundle)?,
                Source::Reference(reference) => self.pull(reference, &digest, &bundle)?,
            }
            self.reloader.deploy_bundle(&bundle)
        })();
        let _ = std::fs::remove_file(&bundle);
        let (status, version) = match result? {
            Reloaded::Unchanged(id) => (Status::Unchanged, id),
            Reloaded::Switched { to, .. } => (Status::Deployed, to),
        };
        if let Err(e) = record.remember(&digest, &version) {
            tracing::warn!(target: "flint::deploy", "cannot record the digest of version {version}: {e:#}");
        }
        Ok(status)
    }

    /// Downloads the bundle at `url` into `bundle`, once its SHA-256 is `digest`.
    fn fetch(&self, url: &str, digest: &Digest, bundle: &Path) -> anyhow::Result<()> {
        let bytes = download(url, &self.services.tls, MAX_DOWNLOAD_BYTES)?;
        let got = Digest::of(&bytes);
        if got != *digest {
            bail!(
                "digest mismatch: the bundle downloaded from {} has digest {got}, not {digest}; refused",
                HttpUrl::parse(url).map_or_else(|_| url.to_owned(), |u| u.to_string())
            );
        }
        let mut file = std::fs::File::create_new(bundle)
            .with_context(|| format!("creating {}", bundle.display()))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", bundle.display()))
    }

    /// Pulls `reference` pinned to `digest`, and packs it into `bundle` with
    /// the serving version's bundled runtime config.
    fn pull(&self, text: &str, digest: &Digest, bundle: &Path) -> anyhow::Result<()> {
        let mut reference = Reference::parse(text).map_err(anyhow::Error::msg)?;
        match &reference.digest {
            Some(named) if named != digest => {
                bail!("the reference `{text}` names digest {named}, the message {digest}")
            }
            _ => reference.digest = Some(digest.clone()),
        }
        let state = self.reloader.dir.state_dir();
        let made = crate::registry::materialize(&reference, &state, self.insecure)?;
        if made.manifest_digest != *digest {
            bail!(
                "digest mismatch: {reference} has manifest digest {}, not {digest}; refused",
                made.manifest_digest
            );
        }
        let serving = self.reloader.dir.version_dir(&self.reloader.serving());
        let runtime_config = serving.join(flint_deploy::paths::RUNTIME_CONFIG);
        let packed = flint_deploy::bundle(&flint_deploy::BundleSpec {
            manifest: &made.dir.join("spin.toml"),
            runtime_config: runtime_config.is_file().then_some(runtime_config.as_path()),
            signing_key: None,
            output: bundle,
            limits: flint_deploy::Limits::default(),
        })
        .with_context(|| format!("bundling {reference} ({})", made.dir.display()))?;
        for warning in &packed.warnings {
            tracing::warn!(target: "flint::deploy", "{reference}: {warning}");
        }
        Ok(())
    }
}

enum Source<'a> {
    Url(&'a str),
    Reference(&'a str),
}

/// A name for a temporary file no other deploy of this process uses.
fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The status message: `{"device", "digest", "status", "version"[, "error"]}`.
fn status_document(
    device_id: &str,
    digest: Option<&str>,
    status: Status,
    version: &str,
    error: Option<&str>,
) -> Vec<u8> {
    let mut doc = serde_json::json!({
        "device": device_id,
        "digest": digest,
        "status": status.as_str(),
        "version": version,
    });
    if let Some(error) = error {
        doc["error"] = error.into();
    }
    doc.to_string().into_bytes()
}

/// The digests deployed, each with its version id, most recent last.
struct Record {
    dir: PathBuf,
}

impl Record {
    fn new(state_dir: &Path) -> Record {
        Record {
            dir: state_dir.join("deploy-mqtt"),
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.join("digests")
    }

    fn entries(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.file())
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let (digest, id) = line.split_once(' ')?;
                Some((digest.to_owned(), id.to_owned()))
            })
            .collect()
    }

    fn version_of(&self, digest: &Digest) -> Option<String> {
        let digest = digest.to_string();
        self.entries()
            .into_iter()
            .rev()
            .find(|(d, _)| *d == digest)
            .map(|(_, id)| id)
    }

    fn remember(&self, digest: &Digest, version: &str) -> anyhow::Result<()> {
        let digest = digest.to_string();
        let mut entries = self.entries();
        entries.retain(|(d, _)| *d != digest);
        entries.push((digest, version.to_owned()));
        let skip = entries.len().saturating_sub(MAX_RECORDED);
        let text: String = entries
            .iter()
            .skip(skip)
            .map(|(d, id)| format!("{d} {id}\n"))
            .collect();
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".digests.tmp-{}", unique()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, self.file())?;
        Ok(())
    }
}

/// An `http://` or `https://` URL, split as a request needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpUrl {
    tls: bool,
    /// Without brackets for IPv6.
    host: String,
    port: u16,
    /// `Host:` as written in the URL.
    authority: String,
    /// From the first `/` (at least `/`), with the query, without a fragment.
    path_with_query: String,
}

impl HttpUrl {
    fn parse(text: &str) -> Result<HttpUrl, String> {
        let bad = |why: &str| format!("`{text}` is not a bundle URL: {why}");
        let (tls, rest) = if let Some(rest) = strip_prefix_ignore_case(text, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(text, "http://") {
            (false, rest)
        } else {
            return Err(bad("it must start with `https://` or `http://`"));
        };
        if text
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b >= 0x80)
        {
            return Err(bad(
                "it has spaces, control or non-ASCII characters (percent-encode them)",
            ));
        }
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| bad("unclosed `[`"))?;
                match after {
                    "" => (host, None),
                    _ => match after.strip_prefix(':') {
                        Some(port) => (host, Some(port)),
                        None => return Err(bad("unexpected text after the IPv6 address")),
                    },
                }
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(bad("it names no host"));
        }
        let port = match port {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad(&format!("`{port}` is not a port")))?,
        };
        let path_with_query = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(HttpUrl {
            tls,
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path_with_query,
        })
    }

    /// Where a redirect's `Location` points, from this URL.
    fn join(&self, location: &str) -> Result<HttpUrl, String> {
        let lower = location.to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            return HttpUrl::parse(location);
        }
        let scheme = if self.tls { "https" } else { "http" };
        if let Some(rest) = location.strip_prefix("//") {
            return HttpUrl::parse(&format!("{scheme}://{rest}"));
        }
        let path = if location.starts_with('/') {
            location.to_owned()
        } else {
            let base = self.path_with_query.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        HttpUrl::parse(&format!("{scheme}://{}{path}", self.authority))
    }
}

/// The URL without its query (which may hold a signed URL's secret).
impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        let path = self.path_with_query.split('?').next().unwrap_or("/");
        write!(f, "{scheme}://{}{path}", self.authority)
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `GET url` with Flint's HTTP client and TLS stack (the `[[client_tls]]`
/// entry naming the host, else the device's roots), following redirects:
/// the body of the `200` answer, at most `max` bytes.
fn download(url: &str, tls: &TlsConfigs, max: usize) -> anyhow::Result<Vec<u8>> {
    let mut url = HttpUrl::parse(url).map_err(anyhow::Error::msg)?;
    // Flint's own connection, not a guest's: `block_networks` does not apply.
    let blocked = BlockedNetworks::new(&Default::default());
    let headers: Headers = vec![
        (
            "accept".to_owned(),
            b"application/octet-stream, */*".to_vec(),
        ),
        (
            "user-agent".to_owned(),
            format!("flint/{}", env!("CARGO_PKG_VERSION")).into_bytes(),
        ),
    ];
    let bounds = Bounds {
        connect_timeout: DOWNLOAD_CONNECT_TIMEOUT,
        io_timeout: DOWNLOAD_IO_TIMEOUT,
        max_head_bytes: 64 * 1024,
        max_body_bytes: max,
    };
    for _ in 0..=MAX_REDIRECTS {
        let response = outbound_http::send(
            &outbound_http::Request {
                method: "GET",
                host: &url.host,
                port: url.port,
                authority: &url.authority,
                path_with_query: &url.path_with_query,
                headers: &headers,
                body: &[],
                tls: url.tls.then(|| tls.for_broker(&url.host)),
                blocked: &blocked,
            },
            bounds,
        )
        .map_err(|e| anyhow::anyhow!("downloading {url}: {}", describe_http(&e)))?;
        match response.status {
            200 => return Ok(response.body),
            301 | 302 | 303 | 307 | 308 => {
                let location = response
                    .headers
                    .iter()
                    .find(|(name, _)| name == "location")
                    .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
                    .with_context(|| {
                        format!(
                            "downloading {url}: redirect {} without a Location",
                            response.status
                        )
                    })?;
                let next = url.join(location.trim()).map_err(anyhow::Error::msg)?;
                if url.tls && !next.tls {
                    bail!("downloading {url}: refusing a redirect from https to {next}");
                }
                url = next;
            }
            status => bail!("downloading {url}: the server answered {status}"),
        }
    }
    bail!("downloading {url}: more than {MAX_REDIRECTS} redirects")
}

fn describe_http(e: &ErrorCode) -> String {
    match e {
        ErrorCode::DnsError(why) => format!("cannot resolve the host: {why}"),
        ErrorCode::DestinationIpProhibited => "the address is blocked".to_owned(),
        ErrorCode::ConnectionRefused => "connection refused".to_owned(),
        ErrorCode::ConnectionTerminated => "the connection was closed".to_owned(),
        ErrorCode::ConnectionTimeout => "connecting timed out".to_owned(),
        ErrorCode::ConnectionReadTimeout => "timed out".to_owned(),
        ErrorCode::ResponseIncomplete => "the response ended early".to_owned(),
        ErrorCode::ResponseHeaderSectionSize => "the response head is too large".to_owned(),
        ErrorCode::ResponseBodySize(max) => format!("the bundle is larger than {max} bytes"),
        ErrorCode::ProtocolError => "not a valid HTTP/1.1 response".to_owned(),
        ErrorCode::Tls(failure) => failure.to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_id_comes_from_the_flag_then_the_environment_then_the_host_name() {
        let given = vec![
            ("device_id".to_owned(), "first".to_owned()),
            ("other".to_owned(), "x".to_owned()),
            ("device_id".to_owned(), "gw-7".to_owned()),
        ];
        let env = |name: &str| (name == "SPIN_VARIABLE_DEVICE_ID").then(|| "from-env".to_owned());
        assert_eq!(device_id(&given, env).unwrap(), "gw-7");
        assert_eq!(device_id(&[], env).unwrap(), "from-env");
        if let Some(host) = hostname() {
            assert_eq!(device_id(&[], |_| None).unwrap(), host);
        }
        let empty = vec![("device_id".to_owned(), String::new())];
        assert!(device_id(&empty, |_| None).is_err());
    }

    #[test]
    fn topics_expand_the_device_id_and_default_the_status_topic() {
        assert_eq!(
            topics("flint/{{ device_id }}/deploy", None, "gw-7").unwrap(),
            (
                "flint/gw-7/deploy".to_owned(),
                "flint/gw-7/deploy/status".to_owned()
            )
        );
        assert_eq!(
            topics("fleet/group-a", Some("fleet/status/{{device_id}}"), "gw-7").unwrap(),
            ("fleet/group-a".to_owned(), "fleet/status/gw-7".to_owned())
        );
        let err = topics("flint/{{ device_id }}", None, "a+b").unwrap_err();
        assert!(format!("{err:#}").contains("wildcards"), "{err:#}");
        assert!(topics("t/{{ site }}", None, "x").is_err());
        assert!(topics("t", Some("t"), "x").is_err());
    }

    #[test]
    fn messages_are_parsed_strictly() {
        let ok: Message =
            serde_json::from_str(r#"{"url": "https://h/app.flint", "digest": "sha256:00"}"#)
                .unwrap();
        assert_eq!(ok.url.as_deref(), Some("https://h/app.flint"));
        assert!(ok.reference.is_none());
        assert!(
            serde_json::from_str::<Message>(r#"{"url": "u", "digest": "d", "force": true}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Message>(r#"{"url": "u"}"#).is_err());
    }

    #[test]
    fn the_status_document_has_every_field() {
        let doc: serde_json::Value = serde_json::from_slice(&status_document(
            "gw-7",
            Some("sha256:ab"),
            Status::Failed,
            "0123456789abcdef",
            Some("digest mismatch"),
        ))
        .unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "device": "gw-7",
                "digest": "sha256:ab",
                "status": "failed",
                "version": "0123456789abcdef",
                "error": "digest mismatch",
            })
        );
        let doc: serde_json::Value =
            serde_json::from_slice(&status_document("d", None, Status::Unchanged, "v", None))
                .unwrap();
        assert_eq!(doc["digest"], serde_json::Value::Null);
        assert!(doc.get("error").is_none());
    }

    #[test]
    fn urls_split_into_what_a_request_needs() {
        let url =
            HttpUrl::parse("https://updates.example.com/fleet/app.flint?sig=secret#x").unwrap();
        assert!(url.tls);
        assert_eq!(url.host, "updates.example.com");
        assert_eq!(url.port, 443);
        assert_eq!(url.authority, "updates.example.com");
        assert_eq!(url.path_with_query, "/fleet/app.flint?sig=secret");
        assert_eq!(
            url.to_string(),
            "https://updates.example.com/fleet/app.flint"
        );
        let url = HttpUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (url.tls, url.port, url.path_with_query.as_str()),
            (false, 8080, "/")
        );
        let url = HttpUrl::parse("HTTP://[::1]:81?x").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 81));
        assert_eq!(url.path_with_query, "/?x");
        for bad in [
            "ftp://h/x",
            "https://",
            "https://u:p@h/x",
            "https://h:0/x",
            "https://h:x/",
            "https://h/a b",
            "https://[::1/x",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirects_resolve_against_the_url() {
        let base = HttpUrl::parse("https://h:8443/a/b/app.flint?x=1").unwrap();
        let join = |l: &str| base.join(l).unwrap().to_string();
        assert_eq!(join("https://cdn/x.flint"), "https://cdn/x.flint");
        assert_eq!(join("//cdn/x.flint"), "https://cdn/x.flint");
        assert_eq!(join("/other.flint"), "https://h:8443/other.flint");
        assert_eq!(join("c/next.flint"), "https://h:8443/a/b/c/next.flint");
    }

    #[test]
    fn digests_are_recorded_with_their_versions_and_bounded() {
        let dir = std::env::temp_dir().join(format!("flint-record-{}", unique()));
        let record = Record::new(&dir);
        let digest = |n: u8| Digest::of(&[n]);
        assert_eq!(record.version_of(&digest(0)), None);
        for n in 0..40u8 {
            record.remember(&digest(n), &format!("v{n}")).unwrap();
        }
        record.remember(&digest(39), "again").unwrap();
        assert_eq!(record.version_of(&digest(39)).as_deref(), Some("again"));
        assert_eq!(record.version_of(&digest(38)).as_deref(), Some("v38"));
        assert_eq!(
            record.version_of(&digest(0)),
            None,
            "only the last {MAX_RECORDED} are kept"
        );
        assert_eq!(record.entries().len(), MAX_RECORDED);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
