//! Flint's runtime: the wasmi engine, the host interfaces, the HTTP and MQTT
//! triggers. The `flint` binary (main.rs) drives it; the benchmarks in
//! benches/ call the same invocation functions without sockets.

pub mod app;
pub mod board;
mod canon;
mod capabilities;
pub mod cli;
pub mod engine;
mod files;
pub mod guest;
pub mod host;
pub mod http;
mod kv_store;
mod limiter;
pub mod mqtt;
mod outbound_hosts;
mod outbound_http;
pub mod pool;
mod readonly_dir;
pub mod systemd;
mod variables;
mod wagi;

#[cfg(test)]
mod fuzz_tests;
