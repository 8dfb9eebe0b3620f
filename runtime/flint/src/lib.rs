//! The `flint` binary's library half: the CLI, app loading (manifest +
//! runtime config + board → components, routes, subscriptions), board
//! profiles, the status document, systemd readiness, and the bundle and
//! deploy commands. `main.rs` wires them to the triggers; the benchmarks in
//! `benches/` load apps through the same code.

pub mod app;
pub mod board;
pub mod cli;
pub mod deploy;
pub mod logging;
pub mod mqtt_deploy;
pub mod registry;
pub mod reload;
pub mod startup;
pub mod status;
pub mod status_client;
pub mod systemd;
