//! The board profiles compiled into the binary, so one file runs anywhere.

use std::path::Path;

use anyhow::{Context as _, bail};
use flint_config::{BoardProfile, parse_board};

const PROFILES: &[(&str, &str)] = &[
    (
        "rpi-zero-2w",
        include_str!("../../../boards/rpi-zero-2w.toml"),
    ),
    ("rpi-4", include_str!("../../../boards/rpi-4.toml")),
    ("armv7", include_str!("../../../boards/armv7.toml")),
    ("riscv64", include_str!("../../../boards/riscv64.toml")),
    ("vm-x86_64", include_str!("../../../boards/vm-x86_64.toml")),
    (
        "vm-aarch64",
        include_str!("../../../boards/vm-aarch64.toml"),
    ),
];

/// The profile for the architecture this binary was built for.
fn default_name() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "rpi-4"
    } else if cfg!(target_arch = "arm") {
        "armv7"
    } else if cfg!(target_arch = "riscv64") {
        "riscv64"
    } else {
        "vm-x86_64"
    }
}

/// Every built-in profile, for `flint boards`.
pub fn all() -> anyhow::Result<Vec<BoardProfile>> {
    PROFILES
        .iter()
        .map(|(name, _)| select(Some(name)))
        .collect()
}

/// `flint boards`: one block per profile with the values that differ by device.
pub fn describe(boards: &[BoardProfile]) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let mut out = String::new();
    for b in boards {
        let l = &b.limits;
        let default = if b.name == default_name() {
            " (default here)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{}{default}: {}\n  target {}{}\n  workers {}, io_threads {}, max_connections {}, max_queued_requests {}\n  \
             instance memory {:.0} MiB, guest memory budget {:.0} MiB, key-value cache {:.0} MiB, SQLite database {:.0} MiB\n  \
             request body {:.0} MiB, response {:.0} MiB, fuel {} per invocation, {} ms per invocation\n",
            b.name,
            b.description,
            b.target,
            b.linker.as_deref().map(|l| format!(" (linker {l})")).unwrap_or_default(),
            l.workers,
            l.io_threads,
            l.max_connections,
            l.max_queued_requests,
            l.instance_memory_bytes as f64 / MIB,
            l.guest_memory_budget_bytes as f64 / MIB,
            l.kv_cache_bytes as f64 / MIB,
            l.max_sqlite_bytes as f64 / MIB,
            l.max_request_body_bytes as f64 / MIB,
            l.max_response_bytes as f64 / MIB,
            l.fuel_per_invocation,
            l.max_execution_ms,
        ));
    }
    out
}

/// The profile named, or the one for the architecture this binary was built for.
pub fn select(name: Option<&str>) -> anyhow::Result<BoardProfile> {
    let name = name.unwrap_or(default_name());
    let Some((file, text)) = PROFILES.iter().find(|(n, _)| *n == name) else {
        let known: Vec<&str> = PROFILES.iter().map(|(n, _)| *n).collect();
        bail!("unknown board `{name}`; known boards: {}", known.join(", "));
    };
    parse_board(text, Path::new(&format!("boards/{file}.toml")))
        .with_context(|| format!("built-in board profile `{name}`"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_built_in_profile_parses_and_names_itself() {
        for (name, _) in super::PROFILES {
            let board = super::select(Some(name)).expect("profile parses");
            assert_eq!(board.name, *name);
        }
        assert!(super::select(Some("toaster")).is_err());
    }
}
