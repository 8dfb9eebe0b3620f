//! What a guest's WASI sees: the component's `files` as read-only preopens
//! ([`files`], [`fs`]), its standard streams ([`stdio`]) and the
//! per-instance [`WasiState`] that both WASI 0.2 (`wasi:cli`, `wasi:clocks`,
//! `wasi:filesystem`) and WASI preview 1 ([`preview1`]) work on.

pub mod files;
pub mod fs;
pub(crate) mod preview1;
mod state;
pub mod stdio;

use std::sync::Arc;

use cap_std::fs::Dir;

pub use state::WasiState;
pub use stdio::{CappedBuffer, GuestLog, Sink};

/// A directory from the component's `files`, opened once at startup and
/// shared by every instance.
#[derive(Clone)]
pub struct Preopen {
    pub dir: Arc<Dir>,
    pub guest_path: String,
}
