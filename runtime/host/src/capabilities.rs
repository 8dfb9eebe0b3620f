//! What one component may reach beyond its own memory, fixed at startup:
//! outbound hosts, key-value store labels and its resolved variables, plus
//! the process-wide services those permissions open onto.

use std::collections::BTreeMap;
use std::sync::Arc;

use flint_engine::metrics::{Counter, MetricsWriter};

use crate::kv_store::KvStores;
use crate::outbound_hosts::AllowedHosts;
use crate::outbound_http;

pub struct Capabilities {
    pub component: Arc<str>,
    pub allowed_hosts: AllowedHosts,
    /// Labels from the component's `key_value_stores`.
    pub key_value_stores: Vec<String>,
    /// Labels from the component's `sqlite_databases`.
    pub sqlite_databases: Vec<String>,
    /// Models from the component's `ai_models` (`fermyon:spin/llm`).
    pub ai_models: Vec<String>,
    /// The component's variables with templates expanded. Values may be secrets.
    pub variables: BTreeMap<String, String>,
    pub services: Arc<Services>,
    /// Outbound calls, by the `allowed_hosts` entry that permitted them.
    pub outbound_metrics: OutboundMetrics,
}

/// How an outbound call ended.
#[derive(Debug, Clone, Copy)]
pub enum OutboundOutcome {
    Ok,
    Error,
}

/// One component's outbound calls (HTTP and MQTT): per allow-list entry,
/// those that succeeded and those that failed, and the denied ones.
pub struct OutboundMetrics {
    allowed: Box<[[Counter; 2]]>,
    denied: Counter,
}

/// The `host` label of denied calls: they match no entry.
const DENIED_HOST: &str = "(not allowed)";

impl OutboundMetrics {
    /// Counters for `entries` allow-list entries.
    pub fn new(entries: usize) -> Self {
        Self {
            allowed: (0..entries).map(|_| Default::default()).collect(),
            denied: Counter::default(),
        }
    }

    /// A call allowed by entry `pattern` ended with `outcome`.
    pub fn record(&self, pattern: usize, outcome: OutboundOutcome) {
        if let Some(counters) = self.allowed.get(pattern) {
            counters[outcome as usize].inc();
        }
    }

    pub fn denied(&self) {
        self.denied.inc();
    }
}

/// `flint_outbound_calls_total` for every component.
pub fn write_outbound_metrics(w: &mut MetricsWriter, components: &[&Capabilities]) {
    w.counter(
        "flint_outbound_calls",
        "Outbound HTTP and MQTT calls by component, allow-list entry and outcome.",
    );
    for caps in components {
        let component = &*caps.component;
        for (entry, counters) in caps
            .allowed_hosts
            .entries()
            .zip(&caps.outbound_metrics.allowed)
        {
            for (outcome, counter) in ["ok", "error"].iter().zip(counters) {
                w.value(
                    &[
                        ("component", component),
                        ("host", entry),
                        ("outcome", outcome),
                    ],
                    counter.get(),
                );
            }
        }
        w.value(
            &[
                ("component", component),
                ("host", DENIED_HOST),
                ("outcome", "denied"),
            ],
            caps.outbound_metrics.denied.get(),
        );
    }
}

/// Shared by every component of the app.
pub struct Services {
    pub kv: KvStores,
    pub sqlite: crate::sqlite_db::SqliteDatabases,
    /// Guests' MQTT publishes; `None` when the app cannot publish.
    pub outbox: Option<Arc<crate::outbox::Outbox>>,
    pub outbound: outbound_http::Bounds,
    /// `[[client_tls]]` and the default TLS configuration.
    pub tls: crate::tls::TlsConfigs,
    /// `[outbound_networking] block_networks`.
    pub blocked: crate::blocked_networks::BlockedNetworks,
}

impl Capabilities {
    /// No permissions and no services: what a module is linked against when
    /// it is checked at startup.
    pub fn none(component: &str) -> Self {
        Self {
            component: component.into(),
            allowed_hosts: AllowedHosts::default(),
            key_value_stores: Vec::new(),
            sqlite_databases: Vec::new(),
            ai_models: Vec::new(),
            variables: BTreeMap::new(),
            outbound_metrics: OutboundMetrics::new(0),
            services: Arc::new(Services {
                kv: KvStores::empty(),
                sqlite: Default::default(),
                outbox: None,
                outbound: outbound_http::Bounds {
                    connect_timeout: std::time::Duration::ZERO,
                    io_timeout: std::time::Duration::ZERO,
                    max_head_bytes: 0,
                    max_body_bytes: 0,
                },
                tls: crate::tls::TlsConfigs::none(),
                blocked: Default::default(),
            }),
        }
    }
}
