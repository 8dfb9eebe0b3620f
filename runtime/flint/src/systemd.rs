//! systemd's readiness protocol (`Type=notify`) without libsystemd: one
//! datagram to `$NOTIFY_SOCKET`, which may be an abstract socket (`@name`).
//! Outside systemd the variable is unset and this does nothing.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (e.g. `READY=1`) to the service manager, if there is one.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let bytes = path.as_bytes();
    let sent = UnixDatagram::unbound().and_then(|socket| {
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None => SocketAddr::from_pathname(&path)?,
        };
        socket.send_to_addr(state.as_bytes(), &addr)
    });
    if let Err(e) = sent {
        tracing::warn!(
            "cannot notify systemd ({state}) at {}: {e}",
            path.to_string_lossy()
        );
    }
}
