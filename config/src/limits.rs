//! Resource limits. A board profile sets every one of them; a runtime-config
//! file's `[limits]` table may override any of them for one deployment.

use serde::Deserialize;
use toml::Spanned;

use crate::source::Problems;

/// Declares, from one list of fields, [`Limits`], [`LimitsOverride`],
/// `Limits::apply`, and the located forms the parsers read and validate, so
/// that adding a limit is a one-line change.
macro_rules! limits {
    ($(
        $(#[doc = $doc:literal])+
        $field:ident: $ty:ty, at_least $min:literal;
    )+) => {
        /// The resource limits Flint runs under. Every field is required in a
        /// board profile.
        #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Limits {
            $( $(#[doc = $doc])+ pub $field: $ty, )+
        }

        /// Overrides for some of the [`Limits`] (the runtime config's
        /// `[limits]` table); `None` keeps the board's value.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct LimitsOverride {
            $( $(#[doc = $doc])+ pub $field: Option<$ty>, )+
        }

        impl Limits {
            /// Replaces each limit the override sets.
            pub fn apply(&mut self, overrides: &LimitsOverride) {
                $( if let Some(value) = overrides.$field { self.$field = value; } )+
            }
        }

        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct RawLimits {
            $( $field: Spanned<$ty>, )+
        }

        #[derive(Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct RawLimitsOverride {
            $( #[serde(default)] $field: Option<Spanned<$ty>>, )+
        }

        impl RawLimits {
            pub(crate) fn validate(self, problems: &mut Problems<'_>) -> Limits {
                $( check_min(problems, stringify!($field), &self.$field, $min); )+
                Limits { $( $field: self.$field.into_inner(), )+ }
            }
        }

        impl RawLimitsOverride {
            pub(crate) fn validate(self, problems: &mut Problems<'_>) -> LimitsOverride {
                $( if let Some(value) = &self.$field {
                    check_min(problems, stringify!($field), value, $min);
                } )+
                LimitsOverride { $( $field: self.$field.map(Spanned::into_inner), )+ }
            }
        }
    };
}

limits! {
    /// Threads that accept connections and move bytes between sockets and
    /// requests.
    io_threads: usize, at_least 1;
    /// Threads that run guest code: at most this many requests execute at
    /// once.
    workers: usize, at_least 1;
    /// Client connections open at the same time.
    max_connections: usize, at_least 1;
    /// Requests received and waiting for a free worker.
    max_queued_requests: usize, at_least 1;
    /// Size of a request's line and headers, in bytes.
    max_request_head_bytes: usize, at_least 1024;
    /// Size of a request body, in bytes.
    max_request_body_bytes: u64, at_least 1;
    /// Size of a response body a guest produces, in bytes.
    max_response_bytes: u64, at_least 1;
    /// Linear memory one guest instance may grow to, in bytes.
    instance_memory_bytes: usize, at_least 1;
    /// How long a client may take to send the rest of a request, in
    /// milliseconds.
    read_timeout_ms: u64, at_least 1;
    /// How long a client may take to accept response bytes, in milliseconds.
    write_timeout_ms: u64, at_least 1;
    /// How long an idle keep-alive connection stays open, in milliseconds.
    keep_alive_timeout_ms: u64, at_least 1;
    /// How long a guest's outbound HTTP request may take to connect, and
    /// then to send or receive each piece, in milliseconds.
    outbound_timeout_ms: u64, at_least 1;
    /// Size of a response body a guest's outbound HTTP request may receive,
    /// in bytes.
    max_outbound_response_bytes: u64, at_least 1;
    /// Memory sled may use to cache key-value pages, in bytes.
    kv_cache_bytes: u64, at_least 0;
    /// Size one SQLite database may grow to, in bytes; a write past it
    /// fails with the interface's `database-full`.
    max_sqlite_bytes: u64, at_least 65536;
    /// CPU budget of one invocation in wasmi fuel units (about one per
    /// instruction); 0 turns fuel metering, and with it `max_execution_ms`, off.
    fuel_per_invocation: u64, at_least 0;
    /// Wall-clock time one invocation may run, in milliseconds (checked as
    /// fuel is spent, so it needs fuel metering).
    max_execution_ms: u64, at_least 1;
    /// Linear memory all running instances together may hold, in bytes.
    guest_memory_budget_bytes: usize, at_least 1;
    /// Table elements one instance may grow its tables to.
    instance_table_elements: usize, at_least 1;
    /// Instances of one component running at once (HTTP).
    max_instances_per_component: usize, at_least 1;
    /// Header fields in one request.
    max_request_headers: usize, at_least 1;
}

fn check_min<T>(problems: &mut Problems<'_>, field: &str, value: &Spanned<T>, min: T)
where
    T: PartialOrd + std::fmt::Display,
{
    if *value.get_ref() < min {
        problems.report(
            &value.span(),
            format!("`{field}` must be at least {min}, not {}", value.get_ref()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_set() {
        let mut limits = Limits {
            io_threads: 1,
            workers: 2,
            max_connections: 256,
            max_queued_requests: 64,
            max_request_head_bytes: 8192,
            max_request_body_bytes: 10,
            max_response_bytes: 20,
            instance_memory_bytes: 30,
            read_timeout_ms: 40,
            write_timeout_ms: 50,
            keep_alive_timeout_ms: 60,
            outbound_timeout_ms: 70,
            max_outbound_response_bytes: 80,
            kv_cache_bytes: 90,
            max_sqlite_bytes: 95,
            fuel_per_invocation: 100,
            max_execution_ms: 110,
            guest_memory_budget_bytes: 120,
            instance_table_elements: 130,
            max_instances_per_component: 140,
            max_request_headers: 150,
        };
        let before = limits.clone();
        limits.apply(&LimitsOverride::default());
        assert_eq!(limits, before);

        limits.apply(&LimitsOverride {
            workers: Some(4),
            keep_alive_timeout_ms: Some(1),
            ..LimitsOverride::default()
        });
        assert_eq!(
            limits,
            Limits {
                workers: 4,
                keep_alive_timeout_ms: 1,
                ..before
            }
        );
    }
}
