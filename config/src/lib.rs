//! Flint's configuration: the Spin manifest (v2), the runtime-config file and
//! board profiles, parsed and validated up front so that every mistake a user
//! can fix is reported with its file, line and column before anything runs.
//!
//! Nothing here touches Wasm or the network. The only I/O is reading the file a
//! `load_*` function is given; each has a pure `parse_*` twin for tests and
//! for callers that already hold the text.

pub mod board;
pub mod date;
pub mod diagnostic;
mod ids;
pub mod limits;
pub mod manifest;
pub mod mqtt;
pub mod redis;
pub mod route;
pub mod runtime_config;
mod source;
pub mod template;

#[cfg(test)]
mod fuzz_tests;

pub use board::{BoardProfile, load_board, parse_board};
pub use diagnostic::{ConfigError, Diagnostic, Diagnostics, Location};
pub use limits::{Limits, LimitsOverride};
pub use manifest::{
    Application, BuildConfig, Component, Executor, FilesMount, HttpTrigger, Manifest,
    StaticResponse, Variable, load_manifest, parse_manifest,
};
pub use mqtt::{
    AddressError, DeadLetter, MqttAddress, MqttBroker, MqttTrigger, TopicError, check_filter,
    check_topic_name, filter_matches,
};
pub use redis::{RedisAddress, RedisAddressError, RedisServer, RedisTrigger};
pub use route::{Route, RouteError, RouteMatch, RoutePattern, Specificity};
pub use runtime_config::{
    BlockNetworks, ClientTlsConfig, DeployConfig, KvStoreConfig, RuntimeConfig,
    SqliteDatabaseConfig, load_runtime_config, parse_runtime_config,
};
pub use template::{TemplateError, expand_template, template_names};

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Whatever the input, parsing ends in a value or an error, never a panic.
    #[test]
    fn odd_input_is_an_error_not_a_panic() {
        let deep = format!("x = {}{}", "[".repeat(200), "]".repeat(200));
        let inputs = [
            "",
            "\0\u{1}\u{7f}",
            "= = =",
            "[[[",
            "x = \"\\u{d800}\"",
            "spin_manifest_version = 2\napplication = 5\ntrigger = []\n",
            "spin_manifest_version = 2\n[application]\nname = \"é\"\n[trigger]\nhttp = 1\n",
            "spin_manifest_version = 9999999999999999999999",
            "limits = { workers = -1 }",
            "key_value_store = []",
            deep.as_str(),
        ];
        let path = Path::new("odd.toml");
        for input in inputs {
            assert!(crate::parse_manifest(input, path).is_err(), "{input:?}");
            assert!(crate::parse_board(input, path).is_err(), "{input:?}");
            let _ = crate::parse_runtime_config(input, path);
        }
    }
}
