//! What one component may reach beyond its own memory, fixed at startup:
//! outbound hosts, key-value store labels and its resolved variables, plus
//! the process-wide services those permissions open onto.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::kv_store::KvStores;
use crate::outbound_hosts::AllowedHosts;
use crate::outbound_http;

pub struct Capabilities {
    pub component: Arc<str>,
    pub allowed_hosts: AllowedHosts,
    /// Labels from the component's `key_value_stores`.
    pub key_value_stores: Vec<String>,
    /// The component's variables with templates expanded. Values may be secrets.
    pub variables: BTreeMap<String, String>,
    pub services: Arc<Services>,
}

/// Shared by every component of the app.
pub struct Services {
    pub kv: KvStores,
    /// Guests' MQTT publishes; `None` when the app cannot publish.
    pub outbox: Option<Arc<crate::outbox::Outbox>>,
    pub outbound: outbound_http::Bounds,
}

impl Capabilities {
    /// No permissions and no services: what a module is linked against when
    /// it is checked at startup.
    pub fn none(component: &str) -> Self {
        Self {
            component: component.into(),
            allowed_hosts: AllowedHosts::default(),
            key_value_stores: Vec::new(),
            variables: BTreeMap::new(),
            services: Arc::new(Services {
                kv: KvStores::empty(),
                outbox: None,
                outbound: outbound_http::Bounds {
                    connect_timeout: std::time::Duration::ZERO,
                    io_timeout: std::time::Duration::ZERO,
                    max_head_bytes: 0,
                    max_body_bytes: 0,
                },
            }),
        }
    }
}
