//! Turning a manifest into a runnable app: limits from the board profile and
//! runtime config, variables resolved, key-value stores opened, every module
//! compiled and checked, the route table built. `flint check` and `flint up`
//! share this, so they reject the same inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use flint_config::{Executor, Limits, Manifest, Route, load_manifest, load_runtime_config};

use flint_executor::{Component, GuestKind, MQTT_TRIGGER, REDIS_TRIGGER, SPIN_ROUTE, WAGI_ROUTE};
use flint_host::Engine;
use flint_host::blocked_networks::BlockedNetworks;
use flint_host::capabilities::{Capabilities, OutboundMetrics, Services};
use flint_host::http1::is_valid_header;
use flint_host::kv_store::KvStores;
use flint_host::outbound_hosts::AllowedHosts;
use flint_host::outbox::{Budget, Outbox};
use flint_host::sqlite_db::{self, SqliteDatabases};
use flint_host::tls::TlsConfigs;
use flint_host::wasi::files;
use flint_host::{outbound_http, variables};
use flint_trigger_http::router::{RouteEntry, Router, StaticReply, Target};
use flint_trigger_mqtt::{DeadLetterSink, SessionConfig, Subscription};

use crate::cli::AppArgs;

pub struct LoadedApp {
    pub manifest_path: PathBuf,
    /// `[application]` name and version.
    pub name: String,
    pub version: String,
    /// Every component, once, in id order.
    pub components: Vec<Arc<Component>>,
    /// The stores, outbox and outbound bounds every component shares.
    pub services: Arc<Services>,
    /// Where the app's state lives (`flint up` only).
    pub state_dir: Option<PathBuf>,
    pub router: Router,
    pub engine: Arc<Engine>,
    pub limits: Limits,
    pub board: String,
    /// The MQTT trigger, when the manifest has `[[trigger.mqtt]]` and Flint serves.
    pub mqtt: Option<MqttPlan>,
    /// The Redis trigger's servers, when the manifest has `[[trigger.redis]]` and Flint serves.
    pub redis: Vec<flint_trigger_redis::Server>,
    pub outbox: Option<Arc<Outbox>>,
    /// The runtime config's `[deploy]`: the health check a new version passes.
    pub deploy: flint_config::DeployConfig,
}

/// Everything the MQTT trigger needs to start.
pub struct MqttPlan {
    pub session: SessionConfig,
    pub subscriptions: Vec<Subscription>,
    pub max_payload_bytes: usize,
}

/// What only `flint up` has: where state lives, `-e` and `--variable`.
pub struct ServeOptions<'a> {
    pub state_dir: Option<&'a Path>,
    pub env: &'a [(String, String)],
    pub variables: &'a [(String, String)],
    /// A running app's engine and services, for loading its next version
    /// beside it: the stores and the outbox stay open and stay the app's.
    pub reuse: Option<&'a Reuse>,
}

/// What a new version of a running app takes over from the one serving.
pub struct Reuse {
    pub engine: Arc<Engine>,
    pub services: Arc<Services>,
}

/// The key-value label every app has without configuring it.
const DEFAULT_STORE: &str = "default";

pub fn load(args: &AppArgs, serve: Option<ServeOptions<'_>>) -> anyhow::Result<LoadedApp> {
    let manifest_path = args.manifest_path();
    let manifest = load_manifest(&manifest_path)?;
    let runtime_config = match &args.runtime_config_file {
        Some(path) => load_runtime_config(path)?,
        None => Default::default(),
    };
    let board = crate::board::select(args.board.as_deref().or(runtime_config.board.as_deref()))?;
    let mut limits = board.limits.clone();
    limits.apply(&runtime_config.limits);
    crate::startup::mark("config");
    let reuse = serve.as_ref().and_then(|s| s.reuse);
    let engine = match reuse {
        Some(r) => r.engine.clone(),
        None => Arc::new(flint_host::engine(limits.fuel_per_invocation > 0)?),
    };
    crate::startup::mark("engine");
    let state_dir = match &serve {
        Some(opts) => Some(state_dir(&manifest, opts.state_dir)?),
        None => None,
    };

    // `flint check` runs without the deployment's variables and secrets, so
    // it checks what it can with defaults and the environment.
    let env_lookup = |name: &str| std::env::var(name).ok();
    let app_variables = match &serve {
        Some(opts) => Some(variables::resolve_app(
            &manifest,
            opts.variables,
            env_lookup,
        )?),
        None => None,
    };

    // Key-value stores: `default`, plus the runtime config's labels.
    let mut kv_paths: BTreeMap<String, Option<PathBuf>> =
        BTreeMap::from([(DEFAULT_STORE.to_owned(), None)]);
    for (label, store) in &runtime_config.key_value_stores {
        kv_paths.insert(label.clone(), store.path.clone());
    }
    let mut errors: Vec<String> = Vec::new();
    let mut used_labels = BTreeSet::new();
    for trigger in &manifest.mqtt_triggers {
        if let flint_config::DeadLetter::Store(label) = &trigger.dead_letter {
            if kv_paths.contains_key(label) {
                used_labels.insert(label.clone());
            } else {
                errors.push(format!(
                    "{}:{}:{}: MQTT trigger `{}`: dead_letter_store `{label}` is not defined; define it as [key_value_store.{label}] in the runtime-config file",
                    manifest.path.display(),
                    trigger.location.line,
                    trigger.location.column,
                    trigger.id
                ));
            }
        }
    }
    for component in manifest.components.values() {
        for label in &component.key_value_stores {
            if kv_paths.contains_key(label) {
                used_labels.insert(label.clone());
            } else {
                errors.push(undefined_label(
                    &manifest,
                    component,
                    "key_value_stores",
                    "key_value_store",
                    label,
                ));
            }
        }
    }
    // SQLite databases: `default`, plus the runtime config's labels.
    let mut sqlite_used = BTreeSet::new();
    for component in manifest.components.values() {
        for label in &component.sqlite_databases {
            if label == sqlite_db::DEFAULT_LABEL
                || runtime_config.sqlite_databases.contains_key(label)
            {
                sqlite_used.insert(label.as_str());
            } else {
                errors.push(undefined_label(
                    &manifest,
                    component,
                    "sqlite_databases",
                    "sqlite_database",
                    label,
                ));
            }
        }
    }
    let (services, outbox) = match reuse {
        Some(r) => {
            for label in &sqlite_used {
                if r.services.sqlite.get(label).is_none() {
                    errors.push(format!(
                        "SQLite database `{label}` is new in this version: the running Flint did not open it; restart Flint to serve this version"
                    ));
                }
            }
            for label in &used_labels {
                if !matches!(
                    r.services.kv.lookup(label),
                    flint_host::kv_store::Lookup::Open(_)
                ) {
                    errors.push(format!(
                        "key-value store `{label}` is new in this version: the running Flint did not open it; restart Flint to serve this version"
                    ));
                }
            }
            (r.services.clone(), r.services.outbox.clone())
        }
        None => open_services(
            &manifest,
            &runtime_config,
            args,
            &limits,
            state_dir.as_deref(),
            &UsedStores {
                kv: &used_labels,
                kv_paths: &kv_paths,
                sqlite: &sqlite_used,
            },
        )?,
    };
    crate::startup::mark("services");
    let env = serve.as_ref().map_or(&[][..], |s| s.env);
    let staging = state_dir.as_ref().map(|d| d.join("files"));
    let mut loader = ComponentLoader {
        engine: &engine,
        manifest: &manifest,
        extra_env: env,
        staging: staging.as_deref(),
        memory_limit: limits.instance_memory_bytes,
        app_variables: app_variables.as_ref(),
        services: services.clone(),
        modules: BTreeMap::new(),
        components: BTreeMap::new(),
    };
    let mut entries = Vec::new();
    for trigger in &manifest.http_triggers {
        // Private routes are not served (only service chaining reaches them),
        // but their components are still checked.
        let (pattern, route_name) = match &trigger.route {
            Route::Pattern(p) => (Some(p), p.raw().to_owned()),
            Route::Private => (None, format!("(private, trigger `{}`)", trigger.id)),
        };
        let target = if let Some(response) = &trigger.static_response {
            match static_reply(response) {
                Ok(reply) => Target::Static(reply),
                Err(e) => {
                    errors.push(format!("route `{route_name}`: {e}"));
                    continue;
                }
            }
        } else {
            let Some(component) = trigger
                .component
                .as_deref()
                .and_then(|id| manifest.components.get(id))
            else {
                continue; // Reported by manifest validation.
            };
            let accepted = match &trigger.executor {
                Executor::Wagi { .. } => WAGI_ROUTE,
                Executor::Spin => SPIN_ROUTE,
            };
            let compiled = match loader.component(component, accepted) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(format!("route `{route_name}`: {e:#}"));
                    continue;
                }
            };
            match &trigger.executor {
                Executor::Wagi { argv, .. } => Target::Wagi {
                    component: compiled,
                    argv: argv.clone(),
                },
                // A WASI 0.3 handler answers while it runs.
                Executor::Spin if compiled.kind == GuestKind::SpinHttpAsync => Target::Streaming {
                    component: compiled,
                    run: Arc::new(flint_executor::run_spin_http_async),
                },
                Executor::Spin => Target::Spin {
                    component: compiled,
                },
            }
        };
        if let Some(pattern) = pattern {
            entries.push(RouteEntry::new(pattern.clone(), target));
        }
    }
    let mut subscriptions = Vec::new();
    for trigger in &manifest.mqtt_triggers {
        let Some(component) = manifest.components.get(&trigger.component) else {
            continue; // Reported by manifest validation.
        };
        match loader.component(component, MQTT_TRIGGER) {
            Ok(compiled) => subscriptions.push((trigger, compiled)),
            Err(e) => errors.push(format!("MQTT trigger `{}`: {e:#}", trigger.id)),
        }
    }
    let broker = manifest.application.mqtt.as_ref();
    let mqtt = match (&serve, broker, subscriptions.is_empty()) {
        (Some(_), Some(broker), false) => {
            match mqtt_plan(
                &manifest,
                broker,
                subscriptions,
                app_variables.as_ref(),
                &limits,
                &services,
                outbox.as_ref(),
            ) {
                Ok(plan) => Some(plan),
                Err(e) => {
                    errors.push(format!("{e:#}"));
                    None
                }
            }
        }
        _ => None,
    };
    let mut redis_triggers = Vec::new();
    for trigger in &manifest.redis_triggers {
        let Some(component) = manifest.components.get(&trigger.component) else {
            continue; // Reported by manifest validation.
        };
        match loader.component(component, REDIS_TRIGGER) {
            Ok(compiled) => redis_triggers.push((trigger, compiled)),
            Err(e) => errors.push(format!("Redis trigger `{}`: {e:#}", trigger.id)),
        }
    }
    let redis = match (&serve, app_variables.as_ref()) {
        (Some(_), Some(values)) => redis_servers(&manifest, redis_triggers, values, &services)
            .unwrap_or_else(|e| {
                errors.push(format!("{e:#}"));
                Vec::new()
            }),
        _ => Vec::new(),
    };
    crate::startup::mark("components");
    if !errors.is_empty() {
        bail!(
            "{} problem(s) in {}:\n{}",
            errors.len(),
            manifest.path.display(),
            errors.join("\n")
        );
    }
    Ok(LoadedApp {
        manifest_path,
        name: manifest.application.name.clone(),
        version: manifest.application.version.clone().unwrap_or_default(),
        components: loader.components.values().cloned().collect(),
        services,
        state_dir,
        router: Router::new(entries),
        engine,
        limits,
        board: board.name,
        mqtt,
        redis,
        outbox,
        deploy: runtime_config.deploy.clone(),
    })
}

/// The key-value stores, the outbox and the outbound settings an app's
/// components share, opened for the app's first version.
/// A component's `field` names `label`, which no `[section.<label>]` of the
/// runtime config defines (only `default` is built in).
fn undefined_label(
    manifest: &Manifest,
    component: &flint_config::Component,
    field: &str,
    section: &str,
    label: &str,
) -> String {
    format!(
        "{}:{}:{}: component `{}`: {field} names `{label}`, which is not defined; \
         only `default` is built in: define others as [{section}.{label}] in the \
         runtime-config file (--runtime-config-file)",
        manifest.path.display(),
        component.location.line,
        component.location.column,
        component.id
    )
}

/// The stores the app's components (and triggers) use.
struct UsedStores<'a> {
    /// Key-value labels, and where each defined label's store lives.
    kv: &'a BTreeSet<String>,
    kv_paths: &'a BTreeMap<String, Option<PathBuf>>,
    sqlite: &'a BTreeSet<&'a str>,
}

fn open_services(
    manifest: &Manifest,
    runtime_config: &flint_config::RuntimeConfig,
    args: &AppArgs,
    limits: &Limits,
    state_dir: Option<&Path>,
    used: &UsedStores<'_>,
) -> anyhow::Result<(Arc<Services>, Option<Arc<Outbox>>)> {
    let (used_labels, kv_paths) = (used.kv, used.kv_paths);
    let kv = match state_dir {
        Some(dir) => {
            let paths = used_labels
                .iter()
                .map(|label| {
                    let path = kv_paths[label]
                        .clone()
                        .unwrap_or_else(|| dir.join("key_value").join(label));
                    (label.clone(), path)
                })
                .collect();
            KvStores::open(
                &paths,
                limits.kv_cache_bytes,
                kv_paths.keys().cloned().collect(),
            )?
        }
        None => KvStores::empty(),
    };
    let sqlite = SqliteDatabases::open(
        &runtime_config.sqlite_databases,
        &used.sqlite.iter().copied().collect::<Vec<_>>(),
        state_dir,
        limits.max_sqlite_bytes,
    )?;
    let broker = manifest.application.mqtt.as_ref();
    let budget = Budget {
        max_bytes: broker.map_or(64 << 20, |b| b.outbox_max_bytes),
        max_messages: broker.map_or(100_000, |b| b.outbox_max_messages),
        window: broker.map_or(32, |b| usize::from(b.max_inflight)),
    };
    let tls = match &args.runtime_config_file {
        Some(path) => TlsConfigs::load(&runtime_config.client_tls, path)?,
        None => TlsConfigs::none(),
    };
    let outbox = match state_dir {
        Some(dir) if needs_outbox(manifest, dir) => Some(
            Outbox::open(
                &dir.join("mqtt-outbox"),
                budget,
                limits.kv_cache_bytes,
                &tls,
            )
            .context("opening the MQTT outbox")?,
        ),
        _ => None,
    };
    let services = Arc::new(Services {
        kv,
        sqlite,
        outbox: outbox.clone(),
        outbound: outbound_http::Bounds {
            connect_timeout: Duration::from_millis(limits.outbound_timeout_ms),
            io_timeout: Duration::from_millis(limits.outbound_timeout_ms),
            max_head_bytes: 64 * 1024,
            max_body_bytes: usize::try_from(limits.max_outbound_response_bytes)
                .unwrap_or(usize::MAX),
        },
        tls,
        blocked: BlockedNetworks::new(&runtime_config.block_networks),
    });
    Ok((services, outbox))
}

/// Whether the app may publish over MQTT (or did, and left messages behind),
/// which is when the outbox is opened.
fn needs_outbox(manifest: &Manifest, state_dir: &Path) -> bool {
    !manifest.mqtt_triggers.is_empty()
        || state_dir.join("mqtt-outbox").exists()
        || manifest.components.values().any(|c| {
            c.allowed_outbound_hosts.iter().any(|h| {
                ["mqtt://", "mqtts://", "*://"]
                    .iter()
                    .any(|s| h.starts_with(s))
            })
        })
}

/// The MQTT session and subscriptions, with `{{ var }}` templates expanded.
fn mqtt_plan(
    manifest: &Manifest,
    broker: &flint_config::MqttBroker,
    triggers: Vec<(&flint_config::MqttTrigger, Arc<Component>)>,
    app_variables: Option<&BTreeMap<String, String>>,
    limits: &Limits,
    services: &Services,
    outbox: Option<&Arc<Outbox>>,
) -> anyhow::Result<MqttPlan> {
    let empty = BTreeMap::new();
    let values = app_variables.unwrap_or(&empty);
    let at = |location: &flint_config::Location| {
        format!(
            "{}:{}:{}",
            manifest.path.display(),
            location.line,
            location.column
        )
    };
    let expand = |what: &str, template: &str, location: &flint_config::Location| {
        variables::expand(template, values).with_context(|| format!("{}: {what}", at(location)))
    };
    let address = expand("MQTT address", &broker.address, &broker.address_location)?;
    let parsed = flint_config::MqttAddress::parse(&address)
        .with_context(|| format!("{}: MQTT address `{address}`", at(&broker.address_location)))?;
    let client_id = broker
        .client_id
        .clone()
        .unwrap_or_else(|| format!("flint-{}", manifest.application.name));
    let max_payload_bytes = broker
        .max_payload_bytes
        .unwrap_or(limits.max_request_body_bytes);
    let max_payload_bytes = usize::try_from(max_payload_bytes).unwrap_or(usize::MAX);
    let target = flint_host::outbox::Target {
        tls: parsed
            .tls
            .then(|| flint_host::mqtt_tls::TlsClient(services.tls.for_broker(&parsed.host))),
        host: parsed.host.clone(),
        port: parsed.port,
        client_id: client_id.clone(),
        username: expand("MQTT username", &broker.username, &broker.location)?,
        password: expand("MQTT password", &broker.password, &broker.location)?,
        keep_alive_secs: broker.keep_alive_secs,
    };
    let session = SessionConfig {
        broker: target.clone(),
        clean_session: broker.clean_session,
        max_inflight: broker.max_inflight,
        // Messages up to 1 MiB over the limit are read and dead-lettered
        // rather than breaking the connection (and coming back forever).
        max_packet_bytes: max_payload_bytes.saturating_add(1 << 20),
    };
    let mut subscriptions = Vec::new();
    for (trigger, component) in triggers {
        let filter = expand("topic", &trigger.topic, &trigger.topic_location)?;
        flint_config::check_filter(&filter)
            .with_context(|| format!("{}: topic `{filter}`", at(&trigger.topic_location)))?;
        let dead_letter = match &trigger.dead_letter {
            flint_config::DeadLetter::Store(label) => match services.kv.lookup(label) {
                flint_host::kv_store::Lookup::Open(store) => DeadLetterSink::Store {
                    label: label.clone(),
                    store: store.clone(),
                },
                _ => bail!(
                    "MQTT trigger `{}`: dead_letter_store `{label}` is not open",
                    trigger.id
                ),
            },
            flint_config::DeadLetter::Topic(topic) => {
                let outbox = outbox.context("the MQTT outbox is not open")?;
                let sender = outbox.sender(&flint_host::outbox::Target {
                    client_id: format!("{client_id}-outbox"),
                    ..target.clone()
                })?;
                DeadLetterSink::Topic {
                    topic: topic.clone(),
                    outbox: outbox.clone(),
                    sender,
                }
            }
        };
        subscriptions.push(Subscription {
            trigger: trigger.id.clone(),
            filter,
            qos: trigger.qos,
            component,
            concurrency: trigger.concurrency,
            max_attempts: trigger.max_attempts,
            retry_backoff: Duration::from_millis(trigger.retry_backoff_ms),
            dead_letter,
        });
    }
    Ok(MqttPlan {
        session,
        subscriptions,
        max_payload_bytes,
    })
}

/// The Redis trigger's servers, each with the triggers subscribing on it:
/// addresses and channels with `{{ var }}` templates expanded, triggers
/// grouped by the address they expand to (as Spin does).
fn redis_servers(
    manifest: &Manifest,
    triggers: Vec<(&flint_config::RedisTrigger, Arc<Component>)>,
    values: &BTreeMap<String, String>,
    services: &Services,
) -> anyhow::Result<Vec<flint_trigger_redis::Server>> {
    let at = |location: &flint_config::Location| {
        format!(
            "{}:{}:{}",
            manifest.path.display(),
            location.line,
            location.column
        )
    };
    let mut servers: Vec<(String, flint_trigger_redis::Server)> = Vec::new();
    for (trigger, component) in triggers {
        let (template, location) = match (&trigger.address, &trigger.address_location) {
            (Some(address), Some(location)) => (address, location),
            _ => match &manifest.application.redis {
                Some(server) => (&server.address, &server.address_location),
                None => continue, // Reported by manifest validation.
            },
        };
        let address = variables::expand(template, values)
            .with_context(|| format!("{}: Redis address", at(location)))?;
        let channel = variables::expand(&trigger.channel, values)
            .with_context(|| format!("{}: channel", at(&trigger.channel_location)))?;
        let redis_trigger = flint_trigger_redis::Trigger {
            id: trigger.id.clone(),
            channel,
            component,
        };
        if let Some((_, server)) = servers.iter_mut().find(|(a, _)| *a == address) {
            server.triggers.push(redis_trigger);
            continue;
        }
        let parsed = flint_config::RedisAddress::parse(&address).with_context(|| {
            format!(
                "{}: Redis address of trigger `{}`",
                at(location),
                trigger.id
            )
        })?;
        let server = flint_trigger_redis::Server {
            tls: parsed.tls.then(|| services.tls.for_broker(&parsed.host)),
            address: parsed,
            connect_timeout: services.outbound.connect_timeout,
            io_timeout: services.outbound.io_timeout,
            triggers: vec![redis_trigger],
        };
        servers.push((address, server));
    }
    Ok(servers.into_iter().map(|(_, server)| server).collect())
}

/// `--state-dir`, or `.flint` beside the manifest; created so that a
/// read-only location fails at startup rather than on first use.
fn state_dir(manifest: &Manifest, given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = given.map_or_else(|| manifest.dir.join(".flint"), Path::to_path_buf);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create state directory {}", dir.display()))?;
    Ok(dir)
}

/// Loads each component once, however many routes name it, and each module
/// once, however many components share it (one binary behind several routes),
/// which keeps startup time and idle memory flat.
struct ComponentLoader<'a> {
    engine: &'a Engine,
    manifest: &'a Manifest,
    extra_env: &'a [(String, String)],
    staging: Option<&'a Path>,
    memory_limit: usize,
    /// `None` under `flint check`, which has no deployment values.
    app_variables: Option<&'a BTreeMap<String, String>>,
    services: Arc<Services>,
    modules: BTreeMap<PathBuf, (flint_executor::Code, GuestKind)>,
    components: BTreeMap<String, Arc<Component>>,
}

impl ComponentLoader<'_> {
    fn component(
        &mut self,
        component: &flint_config::Component,
        accepted: &'static [GuestKind],
    ) -> anyhow::Result<Arc<Component>> {
        if let Some(loaded) = self.components.get(&component.id) {
            if !accepted.contains(&loaded.kind) {
                bail!(
                    "component `{}` ({:?}) cannot serve both an HTTP route and an MQTT trigger",
                    component.id,
                    loaded.kind
                );
            }
            return Ok(loaded.clone());
        }
        let (module, kind) = match self.modules.get(&component.source) {
            Some((module, kind)) if accepted.contains(kind) => (module.clone(), *kind),
            _ => {
                let began = std::time::Instant::now();
                let (module, kind) = flint_executor::load_module(
                    self.engine,
                    &component.id,
                    &component.source,
                    accepted,
                    self.memory_limit,
                )?;
                crate::startup::module_loaded(&component.id, &component.source, began);
                // `flint up` leaves function bodies to their first call; `flint
                // check` is where an invalid one is worth the time to find.
                if self.app_variables.is_none() {
                    self.engine
                        .validate_bodies(&component.id, &component.source)?;
                }
                self.modules
                    .insert(component.source.clone(), (module.clone(), kind));
                (module, kind)
            }
        };
        let mut environment: Vec<(String, String)> = component
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // `flint up -e` overrides the manifest's value for the same name.
        environment.retain(|(k, _)| !self.extra_env.iter().any(|(e, _)| e == k));
        environment.extend(self.extra_env.iter().cloned());
        if let Some((key, _)) = environment
            .iter()
            .find(|(k, v)| k.is_empty() || k.contains(['=', '\0']) || v.contains('\0'))
        {
            bail!(
                "component `{}`: environment variable `{key}` cannot be passed to a guest",
                component.id
            );
        }
        let preopens = files::preopens(&self.manifest.dir, component, self.staging)
            .with_context(|| format!("component `{}`: files", component.id))?;
        let caps = self.capabilities(component)?;
        let loaded = Arc::new(Component {
            id: component.id.as_str().into(),
            code: module,
            kind,
            environment,
            preopens,
            caps: Arc::new(caps),
            running: Default::default(),
            metrics: Default::default(),
        });
        self.components.insert(component.id.clone(), loaded.clone());
        Ok(loaded)
    }

    /// The component's permissions, with `{{ var }}` templates expanded.
    fn capabilities(&self, component: &flint_config::Component) -> anyhow::Result<Capabilities> {
        let expand = |what: &str, template: &str| -> anyhow::Result<Option<String>> {
            match self.app_variables {
                Some(values) => variables::expand(template, values)
                    .map(Some)
                    .with_context(|| format!("component `{}`: {what}", component.id)),
                None => Ok(None),
            }
        };
        let mut variables = BTreeMap::new();
        for (name, template) in &component.variables {
            if let Some(value) = expand(&format!("variable `{name}`"), template)? {
                variables.insert(name.clone(), value);
            }
        }
        let mut hosts = Vec::new();
        for entry in component
            .allowed_outbound_hosts
            .iter()
            .chain(&component.allowed_http_hosts)
        {
            let expanded = expand(&format!("allowed_outbound_hosts entry `{entry}`"), entry)?;
            // Under `flint check`, templated entries are checked for form only.
            let entry = expanded.unwrap_or_else(|| entry.clone());
            if flint_config::template_names(&entry).is_ok_and(|names| !names.is_empty()) {
                continue;
            }
            hosts.push(entry);
        }
        let allowed_hosts = AllowedHosts::parse(hosts.iter().map(String::as_str))
            .with_context(|| format!("component `{}`: allowed_outbound_hosts", component.id))?;
        Ok(Capabilities {
            component: component.id.as_str().into(),
            outbound_metrics: OutboundMetrics::new(allowed_hosts.len()),
            allowed_hosts,
            key_value_stores: component.key_value_stores.clone(),
            sqlite_databases: component.sqlite_databases.clone(),
            ai_models: component.ai_models.clone(),
            variables,
            services: self.services.clone(),
        })
    }
}

/// `flint up --sqlite`, as `spin up --sqlite`: `@FILE` runs the file's
/// statements against `default`, `@FILE:LABEL` against `LABEL`, anything
/// else is one statement against `default`; in order, before serving.
pub fn run_sqlite_statements(services: &Services, statements: &[String]) -> anyhow::Result<()> {
    let database = |label: &str, why: &str| {
        services.sqlite.get(label).with_context(|| {
            format!(
                "--sqlite {why}: no component uses the SQLite database `{label}` (sqlite_databases)"
            )
        })
    };
    for statement in statements {
        if let Some(file) = statement.strip_prefix('@') {
            let (file, label) = match file.split_once(':') {
                Some((_, label)) if label.trim().is_empty() => {
                    bail!("--sqlite {statement}: the database label is empty")
                }
                Some((file, label)) => (file.trim(), label.trim()),
                None => (file.trim(), sqlite_db::DEFAULT_LABEL),
            };
            if file.is_empty() {
                bail!("--sqlite {statement}: the file path is empty");
            }
            let sql = std::fs::read_to_string(file)
                .with_context(|| format!("--sqlite {statement}: cannot read {file}"))?;
            sqlite_db::execute_batch(database(label, statement)?, &sql).map_err(|e| {
                anyhow::anyhow!("--sqlite {statement}: running {file} against `{label}`: {e}")
            })?;
        } else {
            let default = database(sqlite_db::DEFAULT_LABEL, "")?;
            sqlite_db::execute_batch(default, statement).map_err(|e| {
                anyhow::anyhow!(
                    "--sqlite: failed to execute the statement `{statement}` against the default database: {e}"
                )
            })?;
        }
    }
    Ok(())
}

fn static_reply(response: &flint_config::StaticResponse) -> anyhow::Result<StaticReply> {
    if response.status_code < 200 {
        bail!(
            "static_response status_code {} is an interim (1xx) status",
            response.status_code
        );
    }
    let mut headers = Vec::new();
    for (name, value) in &response.headers {
        if !is_valid_header(name, value) {
            bail!("static_response header `{name}` is not a valid HTTP header");
        }
        headers.push((name.clone(), value.clone()));
    }
    Ok(StaticReply {
        status: response.status_code,
        headers,
        body: response.body.clone().unwrap_or_default().into_bytes(),
    })
}

/// One line per route of `router` for the startup banner, as `spin up`
/// prints them.
pub fn route_summaries(router: &Router, addr: SocketAddr) -> Vec<String> {
    router
        .entries()
        .iter()
        .map(|e| {
            let name = e
                .target
                .component()
                .map_or("(static response)", |component| &component.id);
            let wildcard = if e.pattern.is_wildcard() {
                " (wildcard)"
            } else {
                ""
            };
            format!(
                "{name}: http://{addr}{}{wildcard}",
                e.pattern.component_route()
            )
        })
        .collect()
}

/// `flint up --build`: each component's `build.command`, run in its `workdir`.
pub fn build_components(manifest_path: &Path) -> anyhow::Result<()> {
    let manifest = load_manifest(manifest_path)?;
    for component in manifest.components.values() {
        let Some(build) = &component.build else {
            continue;
        };
        let workdir = manifest.dir.join(build.workdir.as_deref().unwrap_or("."));
        for command in &build.commands {
            tracing::info!(component = %component.id, workdir = %workdir.display(), "building: {command}");
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&workdir)
                .status()
                .with_context(|| {
                    format!(
                        "component `{}`: cannot run build command `{command}`",
                        component.id
                    )
                })?;
            if !status.success() {
                bail!(
                    "component `{}`: build command `{command}` failed ({status})",
                    component.id
                );
            }
        }
    }
    Ok(())
}
