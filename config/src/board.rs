//! Board profiles: what a device class is built for and the limits Flint runs
//! under on it.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::ConfigError;
use crate::limits::RawLimits;
pub use crate::limits::{Limits, LimitsOverride};
use crate::source::{self, Problems, Source};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardProfile {
    pub name: String,
    pub description: String,
    /// The Rust target triple to build for, e.g. `aarch64-unknown-linux-musl`.
    pub target: String,
    /// The linker to build with, when the target's default will not do.
    pub linker: Option<String>,
    pub limits: Limits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    name: Spanned<String>,
    description: String,
    target: Spanned<String>,
    linker: Option<String>,
    limits: RawLimits,
}

pub fn load_board(path: &Path) -> Result<BoardProfile, ConfigError> {
    parse_board(&source::read(path)?, path)
}

pub fn parse_board(text: &str, path: &Path) -> Result<BoardProfile, ConfigError> {
    let source = Source::new(text, path);
    let raw: RawBoard = source.deserialize()?;
    let mut problems = Problems::new(&source);
    for (field, value) in [("name", &raw.name), ("target", &raw.target)] {
        if value.get_ref().trim().is_empty() {
            problems.report(&value.span(), format!("`{field}` must not be empty"));
        }
    }
    let limits = raw.limits.validate(&mut problems);
    problems.finish(BoardProfile {
        name: raw.name.into_inner(),
        description: raw.description,
        target: raw.target.into_inner(),
        linker: raw.linker,
        limits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM: &str = r#"name = "vm-x86_64"
description = "x86_64 virtual machine (64 MB and up)"
target = "x86_64-unknown-linux-musl"
linker = "rust-lld"
[limits]
io_threads = 1
workers = 2
max_connections = 256
max_queued_requests = 64
max_request_head_bytes = 8192
max_request_body_bytes = 10485760
max_response_bytes = 10485760
instance_memory_bytes = 67108864
read_timeout_ms = 5000
write_timeout_ms = 5000
keep_alive_timeout_ms = 5000
outbound_timeout_ms = 10000
max_outbound_response_bytes = 4194304
kv_cache_bytes = 1048576
max_sqlite_bytes = 67108864
fuel_per_invocation = 1000000000
max_execution_ms = 5000
guest_memory_budget_bytes = 268435456
instance_table_elements = 100000
max_instances_per_component = 256
max_request_headers = 100
"#;

    fn parse(text: &str) -> Result<BoardProfile, ConfigError> {
        parse_board(text, Path::new("boards/vm.toml"))
    }

    fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Err(ConfigError::Invalid(d)) => d.0.iter().map(ToString::to_string).collect(),
            other => panic!("expected diagnostics, got {other:?}"),
        }
    }

    #[test]
    fn a_complete_profile_parses() {
        let board = parse(VM).unwrap();
        assert_eq!(board.name, "vm-x86_64");
        assert_eq!(board.target, "x86_64-unknown-linux-musl");
        assert_eq!(board.linker.as_deref(), Some("rust-lld"));
        assert_eq!(
            board.limits,
            Limits {
                io_threads: 1,
                workers: 2,
                max_connections: 256,
                max_queued_requests: 64,
                max_request_head_bytes: 8192,
                max_request_body_bytes: 10_485_760,
                max_response_bytes: 10_485_760,
                instance_memory_bytes: 67_108_864,
                read_timeout_ms: 5000,
                write_timeout_ms: 5000,
                keep_alive_timeout_ms: 5000,
                outbound_timeout_ms: 10000,
                max_outbound_response_bytes: 4194304,
                kv_cache_bytes: 1048576,
                max_sqlite_bytes: 67108864,
                fuel_per_invocation: 1_000_000_000,
                max_execution_ms: 5000,
                guest_memory_budget_bytes: 268_435_456,
                instance_table_elements: 100_000,
                max_instances_per_component: 256,
                max_request_headers: 100,
            }
        );
        let without_linker = VM.replace("linker = \"rust-lld\"\n", "");
        assert_eq!(parse(&without_linker).unwrap().linker, None);
    }

    #[test]
    fn every_limit_is_required() {
        let text = VM.replace("workers = 2\n", "");
        assert_eq!(
            errors(&text),
            ["boards/vm.toml:5:1: missing field `workers`"]
        );
    }

    #[test]
    fn out_of_range_limits_are_all_reported_where_they_are() {
        let text = VM
            .replace("workers = 2", "workers = 0")
            .replace(
                "max_request_head_bytes = 8192",
                "max_request_head_bytes = 512",
            )
            .replace("read_timeout_ms = 5000", "read_timeout_ms = 0");
        assert_eq!(
            errors(&text),
            [
                "boards/vm.toml:7:11: `workers` must be at least 1, not 0",
                "boards/vm.toml:10:26: `max_request_head_bytes` must be at least 1024, not 512",
                "boards/vm.toml:14:19: `read_timeout_ms` must be at least 1, not 0",
            ]
        );
    }

    #[test]
    fn unknown_keys_and_bad_types_are_located() {
        let text = VM.replace("workers = 2", "workers = 2\nthreads = 3");
        let e = errors(&text);
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("boards/vm.toml:8:1: unknown field `threads`"),
            "{e:?}"
        );

        let text = VM.replace("workers = 2", "workers = -2");
        let e = errors(&text);
        assert!(
            e[0].starts_with("boards/vm.toml:7:11: invalid value"),
            "{e:?}"
        );

        let text = VM.replace("name = \"vm-x86_64\"", "name = \"\"");
        assert_eq!(
            errors(&text),
            ["boards/vm.toml:1:8: `name` must not be empty"]
        );
    }
}
