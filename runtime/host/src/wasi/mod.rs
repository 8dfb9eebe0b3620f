//! WASI preview 1 for guests: the component's `files` as read-only preopens.

pub mod files;
mod readonly_dir;

use wasmi_wasi::WasiCtx;
use wasmi_wasi::sync::Dir;

use readonly_dir::ReadOnlyDir;

/// A directory from the component's `files`, opened once at startup.
pub struct Preopen {
    pub dir: Dir,
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
