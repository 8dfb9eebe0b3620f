//! The route table: manifest routes ordered so that the first match is the one
//! Spin would choose (exact beats wildcard, the longest prefix wins).

use std::sync::{Arc, RwLock};

use flint_config::{RouteMatch, RoutePattern};

use flint_engine::InstanceLimits;
use flint_executor::request_body::BodyReader;
use flint_executor::respond::Responder;
use flint_executor::{Component, GuestFailure};
use flint_host::{Engine, IncomingRequest};

use crate::metrics::RouteMetrics;

pub struct StaticReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub enum Target {
    Static(StaticReply),
    Wagi {
        component: Arc<Component>,
        /// The executor's argv template.
        argv: String,
    },
    Spin {
        component: Arc<Component>,
    },
    /// A guest that answers while it runs (a WASI 0.3 handler): `run`
    /// executes it on a worker, and it sends its response through the
    /// `Responder` as it produces it.
    Streaming {
        component: Arc<Component>,
        run: StreamingRun,
    },
}

/// How a [`Target::Streaming`] route's guest is run on a worker thread; the
/// request is what a Spin guest gets (with the `spin-*` headers), and its
/// body is the `BodyReader` while the client is still sending it (then the
/// request's own `body` is `None`). It returns when the guest's invocation
/// ends, and the `Responder` must not outlive it: the service takes the
/// invocation's end as the response's end.
/// Its failure before the head is answered as a buffered guest's (504 for a
/// CPU or deadline limit, 503 for the memory budget, 500 otherwise).
pub type StreamingRun = Arc<
    dyn Fn(
            &Engine,
            &Component,
            IncomingRequest,
            Option<BodyReader>,
            &InstanceLimits,
            Responder,
        ) -> Result<(), GuestFailure>
        + Send
        + Sync,
>;

impl Target {
    /// The component that answers, unless the response is static.
    pub fn component(&self) -> Option<&Arc<Component>> {
        match self {
            Target::Static(_) => None,
            Target::Wagi { component, .. }
            | Target::Spin { component }
            | Target::Streaming { component, .. } => Some(component),
        }
    }
}

pub struct RouteEntry {
    pub pattern: RoutePattern,
    pub target: Target,
    pub metrics: RouteMetrics,
}

impl RouteEntry {
    pub fn new(pattern: RoutePattern, target: Target) -> Self {
        Self {
            pattern,
            target,
            metrics: RouteMetrics::default(),
        }
    }

    /// The `component` label of this route's metrics.
    pub fn component_label(&self) -> &str {
        self.target
            .component()
            .map_or("(static)", |component| &component.id)
    }
}

pub struct Router {
    entries: Vec<RouteEntry>,
}

impl Router {
    pub fn new(mut entries: Vec<RouteEntry>) -> Self {
        entries.sort_by_cached_key(|e| e.pattern.specificity());
        Self { entries }
    }

    /// The winning route for a raw (still percent-encoded) path.
    pub fn find(&self, path: &str) -> Option<(&RouteEntry, RouteMatch)> {
        self.entries
            .iter()
            .find_map(|e| e.pattern.matches(path).map(|m| (e, m)))
    }

    pub fn entries(&self) -> &[RouteEntry] {
        &self.entries
    }
}

/// The route table a running server answers from, replaceable while it
/// serves: each request takes the table current when it arrives and keeps it
/// to the end, so a reload never changes the app under a request in flight.
pub struct RouterSlot(RwLock<Arc<Router>>);

impl RouterSlot {
    pub fn new(router: impl Into<Arc<Router>>) -> Self {
        Self(RwLock::new(router.into()))
    }

    pub fn current(&self) -> Arc<Router> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Switches every later request to `router`; returns the one it replaced.
    pub fn replace(&self, router: Arc<Router>) -> Arc<Router> {
        let mut slot = self.0.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *slot, router)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[&str]) -> Router {
        Router::new(
            routes
                .iter()
                .map(|r| {
                    RouteEntry::new(
                        RoutePattern::parse(r).expect("route"),
                        Target::Static(StaticReply {
                            status: 200,
                            headers: vec![],
                            body: r.as_bytes().to_vec(),
                        }),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn spin_precedence() {
        let r = router(&[
            "/...",
            "/a/...",
            "/a",
            "/a/b/...",
            "/a/:x",
            "/a/lit",
            "/u/:id/edit",
        ]);
        let winner = |p: &str| r.find(p).map(|(e, _)| e.pattern.raw().to_owned());
        let cases = [
            ("/a", "/a"),
            ("/a/", "/a"),
            ("/a/lit", "/a/lit"),
            ("/a/other", "/a/:x"),
            ("/a/b/c", "/a/b/..."),
            ("/a/z/y", "/a/..."),
            ("/ab", "/..."),
            ("/", "/..."),
            ("/u/7/edit", "/u/:id/edit"),
        ];
        for (path, expected) in cases {
            assert_eq!(winner(path).as_deref(), Some(expected), "{path}");
        }
        assert!(router(&["/only"]).find("/other").is_none());
    }
}
