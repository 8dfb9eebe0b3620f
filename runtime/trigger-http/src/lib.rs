//! The HTTP trigger: picoserve on smol, with Flint's framing in front of it,
//! the route table, and the service that dispatches a request to a static
//! response or an executor on the worker pool.

pub mod framing;
pub mod metrics;
pub mod router;
pub mod server;
pub mod service;
mod socket;
