//! The HTTP trigger: picoserve on smol, with Flint's framing in front of it.

mod chunked;
pub mod framing;
pub mod router;
pub mod server;
pub mod service;
mod socket;
