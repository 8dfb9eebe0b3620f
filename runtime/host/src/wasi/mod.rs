//! What a guest's WASI sees: the component's `files` as read-only preopens
//! (for preview 1 through `wasmi_wasi`, for WASI 0.2 through [`fs`]), its
//! standard streams ([`stdio`]) and the per-instance [`WasiState`] that
//! WASI 0.2's `wasi:cli`, `wasi:clocks` and `wasi:filesystem` work on.

pub mod files;
pub mod fs;
mod readonly_dir;
mod state;
pub mod stdio;

use std::sync::Arc;

use wasmi_wasi::WasiCtx;
use wasmi_wasi::sync::Dir;

use readonly_dir::ReadOnlyDir;
pub use state::WasiState;
pub use stdio::{CappedBuffer, GuestLog, Sink};

/// A directory from the component's `files`, opened once at startup and
/// shared by every instance.
#[derive(Clone)]
pub struct Preopen {
    pub dir: Arc<Dir>,
    pub guest_path: String,
}

/// Gives `wasi` every preopen, each behind a wrapper that refuses mutation.
pub fn push_preopens(wasi: &WasiCtx, preopens: &[Preopen]) -> std::io::Result<()> {
    for preopen in preopens {
        let dir = preopen.dir.try_clone()?;
        let dir = wasmi_wasi::sync::dir::Dir::from_cap_std(dir);
        wasi.push_preopened_dir(Box::new(ReadOnlyDir(Box::new(dir))), &preopen.guest_path)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    Ok(())
}
