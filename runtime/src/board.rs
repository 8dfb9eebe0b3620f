//! The board profiles compiled into the binary, so one file runs anywhere.

use std::path::Path;

use anyhow::{Context as _, bail};
use flint_config::{BoardProfile, parse_board};

const PROFILES: &[(&str, &str)] = &[
    ("vm-x86_64", include_str!("../../boards/vm-x86_64.toml")),
    ("rpi-4", include_str!("../../boards/rpi-4.toml")),
];

/// The profile named, or the one for the architecture this binary was built for.
pub fn select(name: Option<&str>) -> anyhow::Result<BoardProfile> {
    let name = name.unwrap_or(if cfg!(target_arch = "aarch64") {
        "rpi-4"
    } else {
        "vm-x86_64"
    });
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
