//! The `flint` binary's library half: the CLI, app loading (manifest +
//! runtime config + board → components, routes, subscriptions), board
//! profiles, the status document and systemd readiness. `main.rs` wires
//! them to the triggers; the benchmarks in `benches/` load apps through
//! the same code.

pub mod app;
pub mod board;
pub mod cli;
pub mod logging;
pub mod status;
pub mod status_client;
pub mod systemd;
