//! The start-up timeline: each phase of `flint up` (and `flint check`) logged
//! at debug level under the target `flint::startup` with the µs since `main`
//! began, so where start-up time goes can be seen without strace:
//! `RUST_LOG=flint::startup=debug flint up ...`. The first line also gives
//! `main`'s wall-clock time (`unix_us`), from which a caller that noted when
//! it ran `exec` can tell the time before `main` (loading, relocation).

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// When `main` began: as an `Instant` for the phases, as wall-clock µs for
/// the first line.
static MAIN: OnceLock<(Instant, u64)> = OnceLock::new();

/// Notes when `main` began; called first thing in `main`.
pub fn begin() {
    let unix_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    MAIN.get_or_init(|| (Instant::now(), unix_us));
}

/// µs since `main` began (0 when `begin` was not called, as in benchmarks).
fn elapsed_us() -> u64 {
    MAIN.get().map_or(0, |(t, _)| {
        u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
    })
}

/// The first line, once logging is set up: when `main` began, as wall-clock µs.
pub fn main_line() {
    let unix_us = MAIN.get().map_or(0, |(_, us)| *us);
    tracing::debug!(target: "flint::startup", phase = "main", us = 0u64, unix_us, "start-up: main");
}

/// Logs the end of `phase`. The event costs nothing measurable when its
/// target is filtered out (the default).
pub fn mark(phase: &str) {
    tracing::debug!(target: "flint::startup", phase, us = elapsed_us(), "start-up: {phase}");
}

/// A module read, parsed, compiled (bodies left to their first call) and link-checked: `load_us` since
/// `began`, for the one component that loaded it first.
pub fn module_loaded(component: &str, path: &Path, began: Instant) {
    let load_us = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::debug!(
        target: "flint::startup",
        phase = "module",
        us = elapsed_us(),
        load_us,
        component,
        path = %path.display(),
        "start-up: module"
    );
}
